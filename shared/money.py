"""Splitting an amount of fen by weights, exactly.

Largest remainder: everyone gets the floor of their exact share; the fen left over go one each
to the largest fractional remainders, ties to the earlier entry in the given order (so a caller
chooses its tie rule by the order in which it passes the weights). The parts always sum to the
total, and no part differs from its exact share by a fen or more.
"""

from __future__ import annotations

from collections.abc import Sequence
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


def percent_weights(shares: Sequence[Decimal | int]) -> list[int]:
    """Decimal shares (percentages, areas ...) as integer weights on a common scale (exact, no
    rounding), for ``allocate``."""
    decimals = [Decimal(s) for s in shares]
    places = max((-d.as_tuple().exponent for d in decimals), default=0)  # type: ignore[operator]
    scale = 10 ** max(places, 0)
    return [int(d * scale) for d in decimals]
