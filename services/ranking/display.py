"""Human units for the boards a person reads (the big screen, the board API's ``shown``).

Each indicator's unit comes from its source (``scoring.SOURCES``):

* money sources (``*_fen``, stored in 分) are shown in 元: ``8,765.43元`` below 1 万元,
  ``1.23万元`` from 1 万元 on (1 234 567 分 → ``1.23万元``); 亿元 from 1 亿元 on;
* areas in 亩 with at most two decimals (``1,234.5亩``);
* counts plainly with their unit (``12次``, ``3人``, ``2项``);
* a per-capita indicator shows the amount per resident (``1,234.56元/人``, ``0.52亩/人``);
* a growth indicator shows the period's amount and the change on the same period a year earlier
  (``1.23万元（同比+12.5%）``) unless a target or cap turned the value into something else.

The numbers a board scores with (``raw``, ``value``) are unchanged; ``shown`` is for reading only.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.ranking.scoring import SOURCES

WAN = Decimal(10_000)
YI = Decimal(100_000_000)
TWO = Decimal("0.01")


def _grouped(value: Decimal, places: Decimal = TWO, strip: bool = False) -> str:
    text = f"{value.quantize(places, rounding=ROUND_HALF_UP):,}"
    if strip and "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def money(fen: Decimal) -> str:
    """An amount of 分 in 元, 万元 or 亿元."""
    yuan = Decimal(fen) / 100
    if abs(yuan) >= YI:
        return f"{_grouped(yuan / YI)}亿元"
    if abs(yuan) >= WAN:
        return f"{_grouped(yuan / WAN)}万元"
    return f"{_grouped(yuan)}元"


def quantity(source: str, amount: Decimal) -> str:
    """An amount of a source in its human unit."""
    unit = SOURCES[source].unit
    if unit == "分":
        return money(amount)
    return f"{_grouped(Decimal(amount), strip=True)}{unit}"


def shown(indicator: dict[str, Any], cell: dict[str, Any], population: int) -> str:
    """What the screen shows in one indicator's cell of one row."""
    source = indicator["source"]
    raw = Decimal(cell["raw"])
    if indicator.get("per_capita"):
        if not population:
            return "—"
        text = quantity(source, raw / population) + "/人"
    else:
        text = quantity(source, raw)
    plain = indicator.get("target") is None and indicator.get("cap") is None
    if indicator.get("growth") and plain:
        change = Decimal(cell["value"]) * 100
        sign = "+" if change > 0 else ""
        text += f"（同比{sign}{change.quantize(Decimal('0.1'), rounding=ROUND_HALF_UP)}%）"
    return text
