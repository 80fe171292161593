"""The scoring engine: plain functions from indicator values to a ranked, coloured board.

No I/O. The service gathers, per competing entity, the summed facts of a window (and of the same
window a year earlier) and hands them here; everything a rule means is decided in this module, so
the hand-computed tables in the tests pin it down.

Pipeline (per board):

1. **Transform** each indicator's raw value: per capita (÷ population), growth over the same period
   last year (``(now − base) / base``), completion against a target (÷ target), cap (封顶).
2. **Normalise** within the group: min-max mapped to 60–100 (功效系数法; all equal → 100) or rank
   score (位次赋分: 100 for the first, ``rank_step`` less per place, never below 60);
   direction-aware.
3. **Weigh**: each contribution is ``weight × normalised`` (2 places); the score is their sum plus
   bonus minus deduction. A veto (一票否决) scores 0 and ranks after everyone else.
4. **Rank** by an explicit tie-break chain; ranks are unique, or shared (1224) when asked.
5. **Colour**: green by default; red/yellow from rank bands at the bottom, rank movement since the
   previous period (all time: since the end of the previous day), completion against the
   time-elapsed share (序时进度) and a veto; the worst wins. A red that follows
   ``escalate_after_reds − 1`` reds is escalated (约谈).
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared import periods
from shared.config import LOCAL_TZ

CENT = Decimal("0.01")
PLACES = Decimal("0.0001")
ZERO = Decimal(0)
HUNDRED = Decimal(100)
FLOOR = Decimal(60)
SPAN = Decimal(40)


@dataclass(frozen=True)
class Source:
    """A kind of fact an indicator can be fed from; stored as integers of 1/``scale`` units."""

    key: str
    name: str
    unit: str
    scale: int = 1


SOURCES: dict[str, Source] = {
    s.key: s
    for s in (
        Source("land_transferred_mu", "土地流转面积", "亩", 100),
        Source("trusteeship_area_mu", "托管服务面积", "亩", 100),
        Source("guaranteed_loans_fen", "担保贷款", "分"),
        Source("loans_fen", "贷款发放", "分"),
        Source("gmv_fen", "电商销售额", "分"),
        Source("collective_income_fen", "村集体收入", "分"),
        Source("tasks_verified", "任务完成数", "项"),
        Source("tasks_behind", "任务滞后数", "项"),
        Source("tasks_overdue", "任务逾期数", "项"),
        Source("activities", "活动数", "次"),
        Source("talent", "人才数", "人"),
    )
}

WINDOW_KINDS = ("month", "quarter", "year", "all")
TIE_BREAKS = ("score", "first_reached", "entity_id")
COLOURS = ("green", "yellow", "red")
SEVERITY = {c: i for i, c in enumerate(COLOURS)}
#: Where an all-time window starts: before any fact the district has.
ALL_TIME_START = date(2000, 1, 1)


def quantize(value: Decimal, places: Decimal = CENT) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


# -- windows ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A period of business days in Asia/Shanghai: ``starts_on`` inclusive, ``ends_on`` exclusive
    (None: open, the all-time window)."""

    kind: str
    period: str
    starts_on: date
    ends_on: date | None

    def contains(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day < self.ends_on)

    def ends_at(self) -> datetime | None:
        """The instant the period ends, for the countdown on the screen."""
        if self.ends_on is None:
            return None
        return datetime.combine(self.ends_on, time(0), tzinfo=LOCAL_TZ)

    def elapsed_share(self, today: date) -> Decimal:
        """序时进度: the share of the period's days passed, counting today; 1 once it ended."""
        if self.ends_on is None:
            return Decimal(1)
        total = (self.ends_on - self.starts_on).days
        passed = (min(today, self.ends_on - timedelta(days=1)) - self.starts_on).days + 1
        return quantize(Decimal(max(0, passed)) / Decimal(total), PLACES)

    def closed(self, today: date) -> bool:
        return self.ends_on is not None and today >= self.ends_on

    def previous(self) -> Window:
        """The period before this one (for rank movement); all time compares with the end of
        the previous day instead (:func:`previous_all_time`)."""
        if self.kind == "all":
            return self
        return window_of(self.kind, self.starts_on - timedelta(days=1))

    def year_earlier(self) -> Window | None:
        """The same period a year earlier (the base of growth); none for all time."""
        if self.kind == "all":
            return None
        return window_of(self.kind, _shift_year(self.starts_on, -1))


def _shift_year(day: date, years: int) -> date:
    last = calendar.monthrange(day.year + years, day.month)[1]
    return day.replace(year=day.year + years, day=min(day.day, last))


def window_of(kind: str, day: date) -> Window:
    """The window of ``kind`` that contains ``day``."""
    if kind == "month":
        start = day.replace(day=1)
        end = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        return Window(kind, f"{day.year}-{day.month:02d}", start, end)
    if kind == "quarter":
        q = (day.month - 1) // 3
        start = date(day.year, 3 * q + 1, 1)
        end = date(day.year + (q == 3), (3 * q + 3) % 12 + 1, 1)
        return Window(kind, f"{day.year}-Q{q + 1}", start, end)
    if kind == "year":
        return Window(kind, str(day.year), date(day.year, 1, 1), date(day.year + 1, 1, 1))
    if kind == "all":
        return Window(kind, "all", ALL_TIME_START, None)
    raise ValueError(f"unknown window {kind!r}; one of {', '.join(WINDOW_KINDS)}")


def parse_period(kind: str, period: str) -> Window:
    """A window from its name: ``2026-11``, ``2026-Q4``, ``2026`` or ``all``."""
    if kind == "all" and period == "all":
        return window_of(kind, ALL_TIME_START)
    try:
        if kind in ("month", "quarter", "year") and periods.period_kind(period) == kind:
            return window_of(kind, periods.period_bounds(period)[0])
    except (ValueError, TypeError):
        pass
    raise ValueError(f"{period!r} is not a {kind} period")


def previous_all_time(today: date) -> Window:
    """All time until the end of the previous day (the daily snapshot): what rank movement of an
    all-time board compares with, so a wall display shows the day's moves."""
    return Window("all", "all", ALL_TIME_START, today)


# -- rules --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Indicator:
    key: str
    name: str
    source: str
    weight: Decimal
    direction: str = "higher"  # or "lower": fewer is better (e.g. overdue tasks)
    normalise: str = "minmax"  # or "rank"
    per_capita: bool = False
    growth: bool = False
    target: Decimal | None = None
    cap: Decimal | None = None
    rank_step: Decimal = Decimal(2)


@dataclass(frozen=True)
class PointsRule:
    """Bonus or deduction: ``points`` per unit of a source's value, at most ``max_points``."""

    source: str
    points: Decimal
    max_points: Decimal | None = None

    def apply(self, value: Decimal) -> Decimal:
        earned = self.points * value
        return min(earned, self.max_points) if self.max_points is not None else earned


@dataclass(frozen=True)
class VetoRule:
    """一票否决: vetoed once a source's value reaches ``at_least``."""

    source: str
    at_least: Decimal


@dataclass(frozen=True)
class ColourRules:
    red_bottom: int = 0
    yellow_bottom: int = 0
    yellow_drop: int | None = None
    red_drop: int | None = None
    schedule_indicator: str | None = None
    yellow_below: Decimal = Decimal("0.95")
    red_below: Decimal = Decimal("0.8")
    escalate_after_reds: int | None = 3


@dataclass(frozen=True)
class Rules:
    indicators: tuple[Indicator, ...]
    tie_break: tuple[str, ...] = ("score", "first_reached", "entity_id")
    shared_ranks: bool = False
    bonuses: tuple[PointsRule, ...] = ()
    deductions: tuple[PointsRule, ...] = ()
    vetoes: tuple[VetoRule, ...] = ()
    colours: ColourRules = field(default_factory=ColourRules)

    def sources(self) -> set[str]:
        used = {i.source for i in self.indicators}
        used |= {r.source for r in (*self.bonuses, *self.deductions, *self.vetoes)}
        return used


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def rules_from_dict(data: Mapping[str, Any]) -> Rules:
    """Rules from their stored (event) form."""
    colours = data.get("colours") or {}
    return Rules(
        indicators=tuple(
            Indicator(
                key=i["key"],
                name=i.get("name") or i["key"],
                source=i["source"],
                weight=Decimal(str(i["weight"])),
                direction=i.get("direction", "higher"),
                normalise=i.get("normalise", "minmax"),
                per_capita=bool(i.get("per_capita", False)),
                growth=bool(i.get("growth", False)),
                target=_dec(i.get("target")),
                cap=_dec(i.get("cap")),
                rank_step=Decimal(str(i.get("rank_step") or 2)),
            )
            for i in data["indicators"]
        ),
        tie_break=tuple(data.get("tie_break") or ("score", "first_reached", "entity_id")),
        shared_ranks=bool(data.get("shared_ranks", False)),
        bonuses=tuple(_points(r) for r in data.get("bonuses") or ()),
        deductions=tuple(_points(r) for r in data.get("deductions") or ()),
        vetoes=tuple(
            VetoRule(r["source"], Decimal(str(r["at_least"]))) for r in data.get("vetoes") or ()
        ),
        colours=ColourRules(
            red_bottom=int(colours.get("red_bottom") or 0),
            yellow_bottom=int(colours.get("yellow_bottom") or 0),
            yellow_drop=colours.get("yellow_drop"),
            red_drop=colours.get("red_drop"),
            schedule_indicator=colours.get("schedule_indicator"),
            yellow_below=Decimal(str(colours.get("yellow_below") or "0.95")),
            red_below=Decimal(str(colours.get("red_below") or "0.8")),
            escalate_after_reds=colours.get("escalate_after_reds", 3),
        ),
    )


def _points(r: Mapping[str, Any]) -> PointsRule:
    return PointsRule(r["source"], Decimal(str(r["points"])), _dec(r.get("max_points")))


def rule_errors(rules: Rules) -> dict[str, str]:
    """What is wrong with a rule set, by field; empty when it can be scored."""
    errors: dict[str, str] = {}
    keys = [i.key for i in rules.indicators]
    if not keys:
        errors["indicators"] = "at least one indicator is needed"
    if len(set(keys)) != len(keys):
        errors["indicators"] = "indicator keys must be unique"
    total = sum((i.weight for i in rules.indicators), ZERO)
    if keys and total != Decimal(1):
        errors["indicators.weight"] = f"weights must sum to 1, not {total}"
    for n, indicator in enumerate(rules.indicators):
        if indicator.source not in SOURCES:
            errors[f"indicators.{n}.source"] = f"unknown indicator source {indicator.source!r}"
        if indicator.target is not None and indicator.target <= 0:
            errors[f"indicators.{n}.target"] = "a target must be positive"
    for n, step in enumerate(rules.tie_break):
        known = step in TIE_BREAKS or (step.startswith("indicator:") and step[10:] in keys)
        if not known:
            errors[f"tie_break.{n}"] = f"unknown tie-break {step!r}"
    for name, group in (("bonuses", rules.bonuses), ("deductions", rules.deductions)):
        for n, rule in enumerate(group):
            if rule.source not in SOURCES:
                errors[f"{name}.{n}.source"] = f"unknown indicator source {rule.source!r}"
    for n, veto in enumerate(rules.vetoes):
        if veto.source not in SOURCES:
            errors[f"vetoes.{n}.source"] = f"unknown indicator source {veto.source!r}"
    schedule = rules.colours.schedule_indicator
    if schedule is not None:
        match = [i for i in rules.indicators if i.key == schedule]
        if not match or match[0].target is None:
            errors["colours.schedule_indicator"] = "must name an indicator that has a target"
    return errors


# -- scoring ------------------------------------------------------------------------------------


@dataclass
class Entity:
    """One competitor's inputs for one window."""

    entity_id: str
    name: str
    population: int = 0
    values: dict[str, Decimal] = field(default_factory=dict)
    base_values: dict[str, Decimal] = field(default_factory=dict)
    last_fact_on: date | None = None
    manual_bonus: Decimal = ZERO
    manual_deduction: Decimal = ZERO
    manual_veto: bool = False


@dataclass
class IndicatorScore:
    key: str
    raw: Decimal
    value: Decimal
    normalised: Decimal = ZERO
    contribution: Decimal = ZERO


@dataclass
class Row:
    entity_id: str
    name: str
    indicators: list[IndicatorScore]
    bonus: Decimal = ZERO
    deduction: Decimal = ZERO
    vetoed: bool = False
    score: Decimal = ZERO
    rank: int = 0
    movement: int | None = None
    colour: str = "green"
    escalated: bool = False
    completion: Decimal | None = None
    last_fact_on: date | None = None
    population: int = 0  # for showing per-capita values; not scored from here

    def indicator(self, key: str) -> IndicatorScore:
        return next(i for i in self.indicators if i.key == key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "entity_id": self.entity_id,
            "name": self.name,
            "score": str(self.score),
            "movement": self.movement,
            "colour": self.colour,
            "escalated": self.escalated,
            "vetoed": self.vetoed,
            "bonus": str(self.bonus),
            "deduction": str(self.deduction),
            "completion": None if self.completion is None else str(self.completion),
            "indicators": [
                {
                    "key": i.key,
                    "raw": str(i.raw),
                    "value": str(i.value),
                    "normalised": str(i.normalised),
                    "contribution": str(i.contribution),
                }
                for i in self.indicators
            ],
        }


def transform(indicator: Indicator, entity: Entity) -> tuple[Decimal, Decimal]:
    """(raw value, transformed value) of one indicator for one entity."""
    raw = entity.values.get(indicator.source, ZERO)
    value, base = raw, entity.base_values.get(indicator.source, ZERO)
    if indicator.per_capita:
        people = Decimal(entity.population)
        value = value / people if people else ZERO
        base = base / people if people else ZERO
    if indicator.growth:
        # No base to grow from: any positive value counts as doubling (100 %), none as 0 %.
        value = (value - base) / base if base else Decimal(value > 0) - Decimal(value < 0)
    if indicator.target is not None:
        value = value / indicator.target
    if indicator.cap is not None:
        value = min(value, indicator.cap)
    return raw, quantize(value, PLACES)


def normalise(indicator: Indicator, values: Sequence[Decimal]) -> list[Decimal]:
    """Scores in 60–100 for one indicator's transformed values across the group."""
    if not values:
        return []
    sign = 1 if indicator.direction == "higher" else -1
    if indicator.normalise == "rank":
        ordered = sorted(values, key=lambda v: -sign * v)
        rank = {v: ordered.index(v) + 1 for v in values}  # equal values share a rank
        return [quantize(max(FLOOR, HUNDRED - (rank[v] - 1) * indicator.rank_step)) for v in values]
    low, high = min(values), max(values)
    if high == low:
        return [HUNDRED for _ in values]
    return [
        quantize(FLOOR + SPAN * ((v - low) if sign > 0 else (high - v)) / (high - low))
        for v in values
    ]


def score_board(
    rules: Rules,
    entities: Sequence[Entity],
    *,
    schedule_share: Decimal = Decimal(1),
    previous_ranks: Mapping[str, int] | None = None,
    previous_colours: Mapping[str, Sequence[str]] | None = None,
) -> list[Row]:
    """The ranked board. ``previous_colours[id]`` lists earlier periods' colours, latest first."""
    rows = [_row(rules, e) for e in entities]
    competing = [r for r in rows if not r.vetoed]
    for n, indicator in enumerate(rules.indicators):
        scores = normalise(indicator, [r.indicators[n].value for r in competing])
        for row, normalised in zip(competing, scores, strict=True):
            cell = row.indicators[n]
            cell.normalised = normalised
            cell.contribution = quantize(indicator.weight * normalised)
    for row in rows:
        row.score = quantize(ZERO)  # a vetoed entity keeps 0.00
    for row in competing:
        total = sum((c.contribution for c in row.indicators), ZERO)
        row.score = quantize(total + row.bonus - row.deduction)
    _rank(rules, rows)
    for row in rows:
        previous = (previous_ranks or {}).get(row.entity_id)
        row.movement = None if previous is None else previous - row.rank
    _colour(rules, rows, schedule_share, previous_colours or {})
    return rows


def _row(rules: Rules, entity: Entity) -> Row:
    cells = []
    for indicator in rules.indicators:
        raw, value = transform(indicator, entity)
        cells.append(IndicatorScore(indicator.key, raw, value))
    values = entity.values
    bonus = entity.manual_bonus + sum(
        (r.apply(values.get(r.source, ZERO)) for r in rules.bonuses), ZERO
    )
    deduction = entity.manual_deduction + sum(
        (r.apply(values.get(r.source, ZERO)) for r in rules.deductions), ZERO
    )
    vetoed = entity.manual_veto or any(
        values.get(v.source, ZERO) >= v.at_least for v in rules.vetoes
    )
    return Row(
        entity.entity_id,
        entity.name,
        cells,
        bonus=quantize(bonus),
        deduction=quantize(deduction),
        vetoed=vetoed,
        last_fact_on=entity.last_fact_on,
        population=entity.population,
    )


def _sort_key(rules: Rules, row: Row) -> tuple[Any, ...]:
    key: list[Any] = [row.vetoed]  # vetoed entities after everyone else
    for step in rules.tie_break:
        if step == "score":
            key.append(-row.score)
        elif step == "first_reached":  # whoever's last counted fact came earlier got there first
            key.append(row.last_fact_on or date.max)
        elif step == "entity_id":
            key.append(row.entity_id)
        elif step.startswith("indicator:"):
            key.append(-row.indicator(step[10:]).normalised)
    key.append(row.entity_id)  # always deterministic
    return tuple(key)


def _rank(rules: Rules, rows: list[Row]) -> None:
    rows.sort(key=lambda r: _sort_key(rules, r))
    for n, row in enumerate(rows):
        row.rank = n + 1
        if rules.shared_ranks and n and not row.vetoed:
            before = rows[n - 1]
            if not before.vetoed and before.score == row.score:
                row.rank = before.rank  # 并列: 1, 2, 2, 4


def _colour(
    rules: Rules,
    rows: list[Row],
    schedule_share: Decimal,
    previous_colours: Mapping[str, Sequence[str]],
) -> None:
    c = rules.colours
    count = len(rows)
    schedule = next((i for i in rules.indicators if i.key == c.schedule_indicator), None)
    for position, row in enumerate(rows):
        from_bottom = count - position  # 1 for the last place
        colours = ["green"]
        if row.vetoed or from_bottom <= c.red_bottom:
            colours.append("red")
        elif from_bottom <= c.red_bottom + c.yellow_bottom:
            colours.append("yellow")
        drop = -(row.movement or 0)
        if c.red_drop is not None and drop >= c.red_drop:
            colours.append("red")
        elif c.yellow_drop is not None and drop >= c.yellow_drop:
            colours.append("yellow")
        if schedule is not None and schedule.target is not None:
            cell = row.indicator(schedule.key)
            row.completion = quantize(cell.raw / schedule.target, PLACES)
            ratio = row.completion / schedule_share if schedule_share else Decimal(1)
            if ratio < c.red_below:
                colours.append("red")
            elif ratio < c.yellow_below:
                colours.append("yellow")
        row.colour = max(colours, key=SEVERITY.__getitem__)
        streak = c.escalate_after_reds
        if row.colour == "red" and streak:
            earlier = list(previous_colours.get(row.entity_id, ()))[: streak - 1]
            row.escalated = len(earlier) == streak - 1 and all(x == "red" for x in earlier)
