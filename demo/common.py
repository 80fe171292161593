"""What every part of the demo shares: the roles it acts in, business dates, the run's state."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from demo.client import Client
from demo.district import District
from shared.config import LOCAL_TZ

ADMIN = "district_admin"
SECRETARY = "alliance_secretary"
CADRE = "village_cadre"
STAFF = "exchange_staff"
CENTRE = "trusteeship_centre"
GUARANTOR = "guarantor"
BANK = "bank"
MERCHANT = "merchant"


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def now() -> datetime:
    return datetime.now(LOCAL_TZ).replace(microsecond=0)


def months(since: date, until: date) -> list[tuple[int, int]]:
    """Every (year, month) from ``since``'s month to ``until``'s month."""
    found, year, month = [], since.year, since.month
    while (year, month) <= (until.year, until.month):
        found.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return found


def day_in(year: int, month: int, rng: random.Random, before: date) -> date:
    """A plausible business day of that month, never on or after ``before``."""
    day = date(year, month, rng.randint(3, 26))
    return min(day, before - timedelta(days=1))


def at(day: date, hour: int, minute: int = 0) -> str:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=LOCAL_TZ).isoformat()


def fen(yuan: float) -> int:
    return int(round(yuan * 100))


@dataclass
class Demo:
    """One run of the demo: the API, the district, today, and what the stream works with."""

    api: Client
    district: District
    rng: random.Random
    today: date
    history: bool = True
    #: open work the steady stream carries on: listings, tasks, loans, live sessions, orders ...
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def first_day(self) -> date:
        """The first business day of the history: 1 January of last year."""
        return date(self.today.year - 1, 1, 1)

    def bucket(self, name: str) -> list[Any]:
        return self.state.setdefault(name, [])

    def serial(self, prefix: str) -> str:
        """A fresh id for a fact of the stream (unique across runs)."""
        return f"{prefix}-{now():%y%m%d%H%M%S}-{self.rng.randint(0, 99999):05d}"
