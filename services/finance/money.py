"""Splitting an amount of fen by weights, exactly.

Largest remainder: everyone gets the floor of their exact share; the fen left over go one each
to the largest fractional remainders, ties to the earlier entry in the given order (the order of
the scheme's parties or the register's holders, which is fixed). The parts always sum to the
total, and no part differs from its exact share by a fen or more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal


def allocate(total_fen: int, weights: Sequence[int]) -> list[int]:
    """``total_fen`` split in proportion to non-negative integer ``weights``."""
    if total_fen < 0:
        raise ValueError("cannot allocate a negative amount")
    weight_sum = sum(weights)
    if weight_sum <= 0 or any(w < 0 for w in weights):
        raise ValueError("weights must be non-negative with a positive sum")
    exact = [total_fen * w for w in weights]
    parts = [e // weight_sum for e in exact]
    remainders = [e % weight_sum for e in exact]
    left = total_fen - sum(parts)
    # Largest remainder first; equal remainders keep the given order (sort is stable).
    for index in sorted(range(len(weights)), key=lambda i: -remainders[i])[:left]:
        parts[index] += 1
    return parts


def percent_weights(shares: Sequence[Decimal]) -> list[int]:
    """Decimal percentages as integer weights on a common scale (exact, no rounding)."""
    places = max((-s.as_tuple().exponent for s in shares), default=0)
    scale = 10 ** max(places, 0)
    return [int(s * scale) for s in shares]


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
