"""Reporting periods named as a year ``2026``, a quarter ``2026-Q2`` or a month ``2026-05``.

Days are business days in Asia/Shanghai; a period is ``[start, end)``: its first day and the
first day after it.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import marshmallow as ma

PERIOD_PATTERN = r"^(\d{4})(?:-(?:Q([1-4])|(0[1-9]|1[0-2])))?$"
PERIOD_ERROR = "a year (2026), quarter (2026-Q2) or month (2026-05)"
PERIOD = ma.validate.Regexp(PERIOD_PATTERN, error=PERIOD_ERROR)
_PERIOD = re.compile(PERIOD_PATTERN)


def period_field(**kwargs: Any) -> ma.fields.String:
    """A request field holding a period name."""
    return ma.fields.String(validate=PERIOD, **kwargs)


def period_kind(name: str) -> str:
    """``year``, ``quarter`` or ``month``; ValueError if ``name`` is not a period."""
    match = _PERIOD.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not {PERIOD_ERROR}")
    _, quarter, month = match.groups()
    return "quarter" if quarter else "month" if month else "year"


def period_bounds(name: str) -> tuple[date, date]:
    """``[start, end)`` of a period: its first day and the first day after it; ValueError if
    ``name`` is not a period."""
    match = _PERIOD.match(name)
    if match is None:
        raise ValueError(f"{name!r} is not {PERIOD_ERROR}")
    year, quarter, month = (int(g) if g else None for g in match.groups())
    assert year is not None
    if quarter:
        first, months = 3 * quarter - 2, 3
    elif month:
        first, months = month, 1
    else:
        first, months = 1, 12
    after = first + months
    return date(year, first, 1), date(year + (after - 1) // 12, (after - 1) % 12 + 1, 1)
