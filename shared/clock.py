"""The district's clock: business days and instants in Asia/Shanghai (``config.LOCAL_TZ``).

Only the edges read the clock (request defaults, service endpoints, keepers); aggregates
receive today or now as arguments.
"""

from __future__ import annotations

from datetime import date, datetime

from shared.config import LOCAL_TZ


def now(given: datetime | None = None) -> datetime:
    """``given`` if there is one, else the current instant in the district's time zone."""
    return given or datetime.now(LOCAL_TZ)


def today(given: date | None = None) -> date:
    """``given`` if there is one, else today's date in the district's time zone."""
    return given or datetime.now(LOCAL_TZ).date()


def local_day(instant: datetime) -> date:
    """The business day of an aware instant, in the district's time zone."""
    return instant.astimezone(LOCAL_TZ).date()
