"""Money and calendar arithmetic of loans: fees and monthly terms.

Splitting an amount by weights is ``shared.money.allocate``.
"""

from __future__ import annotations

from datetime import date, timedelta


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    next_month = date(year + month // 12, month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return date(year, month, min(day.day, last_day))


def fee_fen(guaranteed_fen: int, rate_bp: int, months: int) -> int:
    """Guaranteed x annual rate x months / 12, rounded half up to the fen."""
    numerator = guaranteed_fen * rate_bp * months
    denominator = 10_000 * 12
    return (2 * numerator + denominator) // (2 * denominator)
