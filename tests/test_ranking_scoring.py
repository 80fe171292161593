"""The scoring engine against hand-computed tables (no services: plain functions).

Every expected number below was worked out by hand from the rule it tests, not by the code."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal as D

import pytest

from services.ranking.projections import facts_of
from services.ranking.scoring import (
    ALL_TIME_START,
    ColourRules,
    Entity,
    Indicator,
    PointsRule,
    Rules,
    VetoRule,
    parse_period,
    previous_all_time,
    rule_errors,
    score_board,
    window_of,
)
from shared.eventstore import RecordedEvent


def table(rows):
    return [(r.rank, r.entity_id, str(r.score)) for r in rows]


LAND = Indicator("land", "土地流转", "land_transferred_mu", D("0.6"))
GMV = Indicator("gmv", "电商销售", "gmv_fen", D("0.4"))


def entity(entity_id, land=0, gmv=0, **kwargs):
    values = {"land_transferred_mu": D(land), "gmv_fen": D(gmv)}
    return Entity(entity_id, entity_id.upper(), values=values, **kwargs)


def test_min_max_to_60_100_and_weights() -> None:
    # land: min 0, max 100 -> a 100, b 80, c 60; gmv: min 0, max 1000 -> a 80, b 100, c 60
    # a = 0.6*100 + 0.4*80 = 92.00; b = 48.00 + 40.00 = 88.00; c = 36.00 + 24.00 = 60.00
    rows = score_board(
        Rules((LAND, GMV)),
        [entity("a", 100, 500), entity("b", 50, 1000), entity("c", 0, 0)],
    )
    assert table(rows) == [(1, "a", "92.00"), (2, "b", "88.00"), (3, "c", "60.00")]
    b = rows[1]
    assert [(i.key, str(i.normalised), str(i.contribution)) for i in b.indicators] == [
        ("land", "80.00", "48.00"),
        ("gmv", "100.00", "40.00"),
    ]


def test_min_max_rounds_half_up_and_lower_is_better() -> None:
    # overdue tasks, fewer is better: values 0, 1, 3 -> 60 + 40*(3-x)/3 = 100, 86.666.. -> 86.67, 60
    overdue = Indicator("overdue", "逾期", "tasks_overdue", D(1), direction="lower")
    entities = [
        Entity("x", "X", values={"tasks_overdue": D(0)}),
        Entity("y", "Y", values={"tasks_overdue": D(1)}),
        Entity("z", "Z", values={"tasks_overdue": D(3)}),
    ]
    assert table(score_board(Rules((overdue,)), entities)) == [
        (1, "x", "100.00"),
        (2, "y", "86.67"),
        (3, "z", "60.00"),
    ]


def test_everyone_equal_scores_100() -> None:
    rows = score_board(Rules((LAND, GMV)), [entity("a", 5, 5), entity("b", 5, 5)])
    assert [str(r.score) for r in rows] == ["100.00", "100.00"]


def test_rank_score_normalisation_shares_places() -> None:
    # 位次赋分 with a step of 5: values 20, 20, 10, 5 -> ranks 1, 1, 3, 4 -> 100, 100, 90, 85
    talent = Indicator("talent", "人才", "talent", D(1), normalise="rank", rank_step=D(5))
    entities = [
        Entity(name, name, values={"talent": D(v)})
        for name, v in (("p", 10), ("q", 20), ("r", 5), ("s", 20))
    ]
    rows = score_board(Rules((talent,)), entities)
    assert table(rows) == [
        (1, "q", "100.00"),
        (2, "s", "100.00"),
        (3, "p", "90.00"),
        (4, "r", "85.00"),
    ]


def test_rank_score_never_below_60() -> None:
    talent = Indicator("talent", "人才", "talent", D(1), normalise="rank", rank_step=D(25))
    entities = [Entity(n, n, values={"talent": D(v)}) for n, v in (("a", 3), ("b", 2), ("c", 1))]
    assert [str(r.score) for r in score_board(Rules((talent,)), entities)] == [
        "100.00",
        "75.00",
        "60.00",  # 100 - 2*25 = 50, floored at 60
    ]


def test_tie_break_chain_key_indicator_then_first_reached_then_id() -> None:
    # weights 0.5/0.5: a = 0.5*100 + 0.5*60 = 80.00, b = 0.5*60 + 0.5*100 = 80.00: a tie.
    land = Indicator("land", "土地", "land_transferred_mu", D("0.5"))
    gmv = Indicator("gmv", "电商", "gmv_fen", D("0.5"))
    a, b = entity("a", 100, 0), entity("b", 0, 100)
    by_gmv = Rules((land, gmv), tie_break=("score", "indicator:gmv", "entity_id"))
    assert table(score_board(by_gmv, [a, b])) == [(1, "b", "80.00"), (2, "a", "80.00")]
    by_land = Rules((land, gmv), tie_break=("score", "indicator:land", "entity_id"))
    assert table(score_board(by_land, [a, b]))[0][1] == "a"
    # first reached: whoever's last counted fact came earlier ranks first
    a.last_fact_on, b.last_fact_on = date(2026, 11, 20), date(2026, 11, 3)
    first = Rules((land, gmv), tie_break=("score", "first_reached", "entity_id"))
    assert table(score_board(first, [a, b]))[0][1] == "b"
    # and without any other tie-break the id decides, deterministically
    a.last_fact_on = b.last_fact_on = None
    assert table(score_board(Rules((land, gmv), tie_break=("score",)), [b, a]))[0][1] == "a"


def test_shared_ranks_1224() -> None:
    land = Indicator("land", "土地", "land_transferred_mu", D("0.5"))
    gmv = Indicator("gmv", "电商", "gmv_fen", D("0.5"))
    rules = Rules((land, gmv), shared_ranks=True)
    # a 80, b 80, c = 0.5*60 + 0.5*60 = 60 (land 0..100, gmv 0..100)
    rows = score_board(rules, [entity("a", 100, 0), entity("b", 0, 100), entity("c", 0, 0)])
    assert [r.rank for r in rows] == [1, 1, 3]


def test_veto_scores_zero_ranks_last_and_leaves_the_group() -> None:
    rules = Rules((LAND, GMV), vetoes=(VetoRule("tasks_overdue", D(2)),))
    a = entity("a", 100, 1000)
    a.values["tasks_overdue"] = D(2)  # reaches the veto threshold
    b, c = entity("b", 50, 500), entity("c", 0, 0)
    rows = score_board(rules, [a, b, c])
    # without a, land 0..50 -> b 100, c 60; gmv 0..500 -> b 100, c 60
    assert table(rows) == [(1, "b", "100.00"), (2, "c", "60.00"), (3, "a", "0.00")]
    assert rows[2].vetoed and rows[2].colour == "red"
    manual = entity("b", 50, 500, manual_veto=True)
    assert table(score_board(Rules((LAND, GMV)), [manual, c]))[-1] == (2, "b", "0.00")


def test_bonus_and_deduction_points_with_a_cap() -> None:
    rules = Rules(
        (LAND, GMV),
        bonuses=(PointsRule("talent", D("1.5"), D(4)),),
        deductions=(PointsRule("tasks_overdue", D(2)),),
    )
    a, b = entity("a", 100, 1000), entity("b", 0, 0)
    b.values["talent"] = D(5)  # 5 * 1.5 = 7.5, capped at 4
    a.values["tasks_overdue"] = D(3)  # 3 * 2 = 6 points off
    b.manual_bonus = D("0.5")
    rows = score_board(rules, [a, b])
    # a = 100 - 6 = 94.00; b = 60 + 4 + 0.5 = 64.50
    assert table(rows) == [(1, "a", "94.00"), (2, "b", "64.50")]
    assert (str(rows[0].deduction), str(rows[1].bonus)) == ("6.00", "4.50")


def test_per_capita() -> None:
    per_head = Indicator("land", "人均流转", "land_transferred_mu", D(1), per_capita=True)
    entities = [
        Entity("a", "A", 50, {"land_transferred_mu": D(100)}),  # 2 mu a head
        Entity("b", "B", 30, {"land_transferred_mu": D(90)}),  # 3
        Entity("c", "C", 0, {"land_transferred_mu": D(10)}),  # nobody lives there: 0
    ]
    # 0..3: a = 60 + 40*2/3 = 86.67, b 100, c 60
    assert table(score_board(Rules((per_head,)), entities)) == [
        (1, "b", "100.00"),
        (2, "a", "86.67"),
        (3, "c", "60.00"),
    ]


def test_growth_over_the_same_period_last_year() -> None:
    growth = Indicator("gmv", "电商增幅", "gmv_fen", D(1), growth=True)
    entities = [
        Entity("a", "A", values={"gmv_fen": D(150)}, base_values={"gmv_fen": D(100)}),  # +50 %
        Entity("b", "B", values={"gmv_fen": D(100)}, base_values={"gmv_fen": D(100)}),  # 0 %
        Entity("c", "C", values={"gmv_fen": D(50)}),  # no base: counts as +100 %
    ]
    # 0..1: a = 60 + 40*0.5 = 80, b 60, c 100  (不比基础比发展: the small one leads)
    assert table(score_board(Rules((growth,)), entities)) == [
        (1, "c", "100.00"),
        (2, "a", "80.00"),
        (3, "b", "60.00"),
    ]
    assert str(score_board(Rules((growth,)), entities)[1].indicator("gmv").value) == "0.5000"


def test_completion_against_target_with_a_cap() -> None:
    target = Indicator(
        "land", "流转完成率", "land_transferred_mu", D(1), target=D(100), cap=D("1.2")
    )
    entities = [
        Entity("a", "A", values={"land_transferred_mu": D(150)}),  # 1.5 -> capped 1.2
        Entity("b", "B", values={"land_transferred_mu": D(60)}),  # 0.6
        Entity("c", "C", values={"land_transferred_mu": D(0)}),  # 0
    ]
    # 0..1.2: a 100, b = 60 + 40*0.6/1.2 = 80, c 60
    rows = score_board(Rules((target,)), entities)
    assert table(rows) == [(1, "a", "100.00"), (2, "b", "80.00"), (3, "c", "60.00")]
    assert str(rows[0].indicator("land").value) == "1.2000"


def five(**land):
    return [Entity(k, k.upper(), values={"land_transferred_mu": D(v)}) for k, v in land.items()]


def test_colours_by_rank_band_bottom_red_then_yellow() -> None:
    land = Indicator("land", "土地", "land_transferred_mu", D(1))
    rules = Rules((land,), colours=ColourRules(red_bottom=1, yellow_bottom=1))
    rows = score_board(rules, five(a=50, b=40, c=30, d=20, e=10))
    assert [(r.entity_id, r.colour) for r in rows] == [
        ("a", "green"),
        ("b", "green"),
        ("c", "green"),
        ("d", "yellow"),
        ("e", "red"),
    ]


def test_colours_by_rank_movement_and_movement_itself() -> None:
    land = Indicator("land", "土地", "land_transferred_mu", D(1))
    rules = Rules((land,), colours=ColourRules(yellow_drop=2, red_drop=4))
    previous = {"a": 5, "b": 1, "c": 2, "d": 4}  # e is new
    rows = score_board(rules, five(a=50, b=40, c=30, d=20, e=10), previous_ranks=previous)
    # a 5 -> 1: ▲4 green; b 1 -> 2: ▼1 green; c 2 -> 3 ▼1; d 4 -> 4 =; e new: no movement
    assert [(r.entity_id, r.movement, r.colour) for r in rows] == [
        ("a", 4, "green"),
        ("b", -1, "green"),
        ("c", -1, "green"),
        ("d", 0, "green"),
        ("e", None, "green"),
    ]
    fallen = score_board(rules, five(a=10, b=20, c=30, d=40, e=50), previous_ranks=previous)
    by_id = {r.entity_id: (r.movement, r.colour) for r in fallen}
    # b 1 -> 4: ▼3 yellow; c 2 -> 3: ▼1 green; d 4 -> 2: ▲2; a 5 -> 5
    assert by_id["b"] == (-3, "yellow") and by_id["c"] == (-1, "green")
    assert score_board(rules, five(a=1, b=0), previous_ranks={"a": 1, "b": 6})[0].colour == "green"
    dropped = score_board(rules, five(x=9, y=8, z=7, w=6, v=5), previous_ranks={"v": 1})
    assert dropped[-1].movement == -4 and dropped[-1].colour == "red"


def test_colours_by_completion_against_the_time_elapsed_share() -> None:
    land = Indicator("land", "流转", "land_transferred_mu", D(1), target=D(100))
    rules = Rules((land,), colours=ColourRules(schedule_indicator="land"))
    rows = score_board(rules, five(a=50, b=45, c=30), schedule_share=D("0.5"))
    # a: 0.50/0.5 = 1.0 green; b: 0.45/0.5 = 0.9 < 0.95 yellow; c: 0.30/0.5 = 0.6 < 0.8 red
    assert [(r.entity_id, str(r.completion), r.colour) for r in rows] == [
        ("a", "0.5000", "green"),
        ("b", "0.4500", "yellow"),
        ("c", "0.3000", "red"),
    ]


def test_three_reds_in_a_row_escalate() -> None:
    land = Indicator("land", "土地", "land_transferred_mu", D(1))
    rules = Rules((land,), colours=ColourRules(red_bottom=2, escalate_after_reds=3))
    history = {"d": ["red", "red"], "e": ["red", "yellow"]}
    rows = score_board(rules, five(a=50, b=40, c=30, d=20, e=10), previous_colours=history)
    assert [(r.entity_id, r.colour, r.escalated) for r in rows][3:] == [
        ("d", "red", True),
        ("e", "red", False),
    ]


def test_rule_errors_name_the_field() -> None:
    bad = Rules(
        (
            Indicator("land", "土地", "land_transferred_mu", D("0.5")),
            Indicator("x", "X", "no_such_source", D("0.3")),
        ),
        tie_break=("score", "indicator:nope"),
    )
    errors = rule_errors(bad)
    assert errors["indicators.weight"] == "weights must sum to 1, not 0.8"
    assert "indicators.1.source" in errors and "tie_break.1" in errors


# -- windows in Asia/Shanghai business time ------------------------------------------------------


def test_period_boundaries() -> None:
    assert window_of("month", date(2026, 1, 31)).period == "2026-01"
    december = window_of("month", date(2026, 12, 31))
    assert (december.starts_on, december.ends_on) == (date(2026, 12, 1), date(2027, 1, 1))
    q4 = window_of("quarter", date(2026, 10, 1))
    assert (q4.period, q4.starts_on, q4.ends_on) == ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1))
    assert window_of("quarter", date(2026, 3, 31)).period == "2026-Q1"
    assert window_of("month", date(2026, 1, 5)).previous().period == "2025-12"
    assert window_of("quarter", date(2026, 2, 1)).year_earlier().period == "2025-Q1"
    assert window_of("year", date(2026, 6, 1)).year_earlier().period == "2025"
    assert parse_period("quarter", "2026-Q4") == q4
    with pytest.raises(ValueError):
        parse_period("quarter", "2026-Q5")
    # 序时进度: 15 November of 30 days = 0.5; the month's end instant is midnight in Shanghai
    november = window_of("month", date(2026, 11, 15))
    assert november.elapsed_share(date(2026, 11, 15)) == D("0.5")
    assert november.ends_at().isoformat() == "2026-12-01T00:00:00+08:00"
    assert november.elapsed_share(date(2027, 1, 1)) == D(1)


def envelope(type_, data):
    return RecordedEvent(
        position=1,
        event_id=uuid.uuid4(),
        stream_type="X",
        stream_id="s",
        version=1,
        type=type_,
        schema_version=1,
        data=data,
        metadata={},
        recorded_at=datetime.now(UTC),
    )


def test_facts_fall_on_the_shanghai_business_day() -> None:
    # 16:30 UTC on 31 October is 00:30 on 1 November in Shanghai: November's GMV
    paid = envelope(
        "OrderPaid",
        {
            "order_id": "o1",
            "paid_at": "2026-10-31T16:30:00+00:00",
            "total_fen": 300,
            "lines": [
                {"line_id": "1", "village_id": "v1", "amount_fen": 100},
                {"line_id": "2", "village_id": "v2", "amount_fen": 200},
            ],
        },
    )
    assert [(f["subject_id"], f["day"], f["amount"]) for f in facts_of(paid)] == [
        ("v1", date(2026, 11, 1), 100),
        ("v2", date(2026, 11, 1), 200),
    ]
    refunded = envelope(
        "RefundCompleted",
        {
            "refund_id": "r",
            "refunded_at": "2026-11-30T15:59:59+00:00",
            "lines": [{"line_id": "2", "village_id": "v2", "amount_fen": 50}],
        },
    )
    assert [(f["day"], f["amount"]) for f in facts_of(refunded)] == [(date(2026, 11, 30), -50)]
    signed = envelope(
        "TransferContractSigned",
        {"village_id": "v1", "area_mu": "12.50", "signed_on": "2026-11-02"},
    )
    assert facts_of(signed)[0]["amount"] == 1250  # hundredths of a mu
    task = envelope(
        "TaskVerified", {"cluster_id": "c1", "unit_id": None, "verified_on": "2026-11-03"}
    )
    assert facts_of(task)[0]["subject_kind"] == "cluster"


def test_values_are_shown_in_human_units() -> None:
    from services.ranking.display import money, quantity, shown

    assert money(D(1234567)) == "1.23万元"
    assert money(D(876543)) == "8,765.43元"
    assert money(D(-1500000)) == "-1.50万元"
    assert money(D(123456789012)) == "12.35亿元"
    assert quantity("land_transferred_mu", D("1234.50")) == "1,234.5亩"
    assert quantity("activities", D(12)) == "12次"
    assert quantity("talent", D(3)) == "3人"
    income = {"source": "collective_income_fen", "per_capita": True}
    assert shown(income, {"raw": "123456", "value": "1234.56"}, 100) == "12.35元/人"
    assert shown(income, {"raw": "123456", "value": "0"}, 0) == "—"
    gmv = {"source": "gmv_fen", "growth": True}
    assert shown(gmv, {"raw": "2250000", "value": "0.125"}, 0) == "2.25万元（同比+12.5%）"
    assert shown({**gmv, "target": "2"}, {"raw": "2250000", "value": "0.06"}, 0) == "2.25万元"


def test_all_time_movement_compares_with_the_end_of_the_previous_day() -> None:
    # the daily snapshot: every fact dated before today (ends_on is exclusive), whatever the
    # day of the month
    for day in (date(2026, 11, 17), date(2026, 11, 1), date(2027, 1, 1)):
        before = previous_all_time(day)
        assert (before.kind, before.starts_on, before.ends_on) == ("all", ALL_TIME_START, day)
        assert before.closed(day) and not before.contains(day)


def test_the_keeper_sums_facts_dated_before_today_once(tmp_path) -> None:
    """With the keeper's cache, a recompute sums only today's facts; facts dated before today are
    summed again only after the cache is cleared (a dirty mark dated before today, or midnight)."""
    from sqlalchemy import create_engine

    from services.ranking import boards
    from services.ranking.projections import facts, model
    from shared.directory import clusters, directory_model, memberships, units

    engine = create_engine(f"sqlite:///{tmp_path / 'sums.sqlite3'}")
    model.create_all(engine)
    directory_model.create_all(engine)
    today, yesterday = date(2026, 11, 17), date(2026, 11, 16)
    cv = boards.CompetitionVersion("c", 1, "D1", "c", {"entity": "cluster"}, "active", yesterday)
    window = window_of("all", today)

    def fact(n: int, day: date, amount: int) -> None:
        row = {"part": 0, "source": "land_transferred_mu", "subject_kind": "village"}
        row |= {"event_id": f"e{n}", "subject_id": "v1", "day": day, "amount": amount}
        db.execute(facts.insert().values(**row))

    def land(cache) -> int:
        got = boards._sums(db, cv, window, {"land_transferred_mu"}, today, cache)
        return got["c1"]["land_transferred_mu"][0]

    with engine.begin() as db:
        db.execute(
            clusters.insert().values(cluster_id="c1", alliance_id="a", district="D1", name="c1")
        )
        db.execute(
            units.insert().values(unit_id="v1", district="D1", name="v1", unit_type="village")
        )
        db.execute(
            memberships.insert().values(
                unit_id="v1", cluster_id="c1", joined_on=date(2020, 1, 1), alliance_id="a"
            )
        )
        fact(1, yesterday, 100)
        fact(2, today, 30)
        cache: dict = {}
        assert land(cache) == 130
        fact(3, today, 5)  # today's facts are summed on every recompute
        assert land(cache) == 135
        fact(4, yesterday, 1000)  # the keeper clears the cache when its dirty mark arrives
        assert land(cache) == 135
        cache.clear()
        assert land(cache) == 1135 == land(None)
