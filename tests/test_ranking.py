"""The ranking service through HTTP: competitions, boards fed by other services' events (from
stub producers through the real relay, broker and inbox), out-of-order and exactly-once delivery,
rule versions rebuilt from the notification logs, bulletins."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import requests

from services.ranking.service import RankingService
from shared.config import LOCAL_TZ
from tests.conftest import Api, run_services
from tests.test_ranking_support import (
    STUBS,
    board,
    cluster,
    competition_rules,
    define,
    district_of_three,
    join,
    leave,
    paid,
    signed,
    terminated,
    village,
    wait_active,
    wait_board,
    wait_for,
)


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def noon(day: date) -> str:
    return datetime(day.year, day.month, day.day, 12, tzinfo=LOCAL_TZ).isoformat()


def test_board_follows_facts_rolled_up_to_clusters(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "race")
    wait_active(api, "race")
    day = today()
    signed(api, "K1", "v1", "100.00", day)
    signed(api, "K2", "v2", "30.00", day)
    signed(api, "K3", "v3", "20.00", day)
    paid(api, "O1", [("v1", 500), ("v2", 1000)], noon(day))
    # land: c1 100, c2 50, c3 0 -> 100, 80, 60; gmv: c1 500, c2 1000, c3 0 -> 80, 100, 60
    # c1 = 0.6*100 + 0.4*80 = 92.00; c2 = 48.00 + 40.00 = 88.00; c3 = 36.00 + 24.00 = 60.00
    body = wait_board(api, "race", [(1, "c1", "92.00"), (2, "c2", "88.00"), (3, "c3", "60.00")])
    assert body["window"] == "month" and body["period"] == f"{day.year}-{day.month:02d}"
    assert body["ends_at"].endswith("+08:00") and body["version"] == 1
    c1 = body["rows"][0]
    assert c1["name"] == "茶香组团" and c1["colour"] == "green"
    assert [(i["key"], i["raw"], i["contribution"]) for i in c1["indicators"]] == [
        ("land", "100", "60.00"),
        ("gmv", "500", "32.00"),
    ]
    assert body["rows"][2]["colour"] == "red"  # the bottom place is red

    # the contract on c1's village ends: c1 land 0 -> 60; c2 land 50 -> 100
    # c1 = 36.00 + 32.00 = 68.00; c2 = 60.00 + 40.00 = 100.00; c3 = 60.00
    terminated(api, "K1", "v1", "100.00", day)
    wait_board(api, "race", [(1, "c2", "100.00"), (2, "c1", "68.00"), (3, "c3", "60.00")])
    assert [r["rank"] for r in board(api, "race", window="all")["rows"]] == [1, 2, 3]

    around = api.get("/api/v1/ranking/competitions/race/board/around/c1?radius=1", role="ops")
    assert [r["entity_id"] for r in around.json()["rows"]] == ["c2", "c1", "c3"]
    one = api.get("/api/v1/ranking/competitions/race/entities/c3", role="alliance_secretary")
    assert (one.json()["rank"], one.json()["of"], one.json()["score"]) == (3, 3, "60.00")
    top1 = board(api, "race", top=1)
    assert [r["entity_id"] for r in top1["rows"]] == ["c2"]
    assert api.get("/api/v1/ranking/competitions/nope/board", role="ops").status_code == 404
    wrong = api.get("/api/v1/ranking/competitions/race/board?window=year", role="ops")
    assert wrong.status_code == 422 and "window" in wrong.json()["errors"]
    assert api.get("/api/v1/ranking/competitions/race/board", role="household").status_code == 403


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bad_rules_are_refused_naming_the_field(start_services) -> None:
    api = start_services(RankingService)

    def refused(rules: dict, role: str = "district_admin") -> dict:
        response = api.post(
            "/api/v1/ranking/competitions",
            {"id": "bad", "name": "x", "district": "D1", "rules": rules},
            role=role,
        )
        assert response.status_code in (403, 422), response.text
        return response.json().get("errors", {})

    weights = competition_rules()
    weights["indicators"][1]["weight"] = "0.3"
    assert refused(weights) == {"indicators.weight": ["weights must sum to 1, not 0.9"]}
    unknown = competition_rules()
    unknown["indicators"][0]["source"] = "rainfall"
    assert "rules.indicators.0.source" in refused(unknown)
    assert "rules.windows.0" in refused(competition_rules(windows=["fortnight"]))
    assert "tie_break.0" in refused(competition_rules(tie_break=["luck"]))
    schedule = competition_rules(colours={"schedule_indicator": "land"})
    assert "colours.schedule_indicator" in refused(schedule)
    assert refused(competition_rules(), role="village_cadre") == {}
    other = api.post(
        "/api/v1/ranking/competitions",
        {"id": "x", "name": "x", "district": "D2", "rules": competition_rules()},
        role="district_admin",
        district="D1",
    )
    assert other.status_code == 403
    bad_id = api.post(
        "/api/v1/ranking/competitions",
        {"id": "a b", "name": "x", "district": "D1", "rules": competition_rules()},
        role="district_admin",
    )
    assert bad_id.status_code == 422 and "id" in bad_id.json()["errors"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_facts_before_membership_and_moves_between_clusters(start_services) -> None:
    """A village's facts count for the cluster it was in on the fact's day, whatever the order
    the events arrive in."""
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "moves", competition_rules(windows=["month"]))
    wait_active(api, "moves")
    # March 2025: v9 is not in the directory yet when its contracts arrive
    signed(api, "M1", "v9", "40.00", date(2025, 3, 10))
    signed(api, "M2", "v9", "10.00", date(2025, 3, 20))
    village(api, "v9", "新村")
    join(api, "v9", "c1", "2025-01-01")
    leave(api, "v9", "c1", "2025-03-15")  # first day outside c1
    join(api, "v9", "c3", "2025-03-15")

    def march() -> list:
        rows = board(api, "moves", period="2025-03")["rows"]
        return [(r["entity_id"], r["indicators"][0]["raw"]) for r in rows]

    # c1 has the 40 mu of 10 March, c3 the 10 mu of 20 March
    wait_for(lambda: march() == [("c1", "40"), ("c3", "10"), ("c2", "0")], what="roll-up")
    assert board(api, "moves", period="2025-03")["period"] == "2025-03"
    bad = api.get("/api/v1/ranking/competitions/moves/board?period=2025-13", role="ops")
    assert bad.status_code == 422 and "period" in bad.json()["errors"]


def test_a_redelivered_event_changes_nothing(start_services, broker) -> None:
    import json

    from kombu import Connection

    from shared import amqp

    api = start_services(RankingService, *STUBS, amqp_uri=broker)
    district_of_three(api)
    define(api, "once", competition_rules(windows=["all"]))
    wait_active(api, "once")
    day = today()
    envelope = signed(api, "E1", "v1", "10.00", day)
    wait_for(
        lambda: board(api, "once")["rows"][0]["indicators"][0]["raw"] == "10", what="first fact"
    )
    body = json.dumps(envelope).encode()
    with Connection(broker) as connection:
        for _ in range(2):  # the broker delivers it again, twice
            amqp.publish_raw(
                connection, body, exchange="land.events", routing_key="TransferContractSigned"
            )
    signed(api, "E2", "v2", "5.00", day)  # behind the duplicates on the same queue

    def raw() -> list:
        return [(r["entity_id"], r["indicators"][0]["raw"]) for r in board(api, "once")["rows"]]

    wait_for(lambda: raw()[:2] == [("c1", "10"), ("c2", "5")], what="the second fact")
    metrics = api.get("/metrics", role=None).text
    skipped = [
        line
        for line in metrics.splitlines()
        if line.startswith("clustergov_events_skipped_total") and "on_land_fact" in line
    ]
    assert skipped and float(skipped[0].split()[-1]) >= 2, skipped


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_rule_change_is_built_beside_the_shown_version_then_switched(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "versions")
    wait_active(api, "versions")
    day = today()
    signed(api, "R1", "v1", "100.00", day)
    paid(api, "R2", [("v4", 900)], noon(day))
    # v1: land 0.6, gmv 0.4 -> c1 = 60 + 24 = 84.00; c3 = 36 + 40 = 76.00; c2 = 36 + 24 = 60.00
    wait_board(api, "versions", [(1, "c1", "84.00"), (2, "c3", "76.00"), (3, "c2", "60.00")])
    gmv_only = competition_rules(
        indicators=[{"key": "gmv", "name": "电商销售", "source": "gmv_fen", "weight": "1"}]
    )
    changed = api.post(
        "/api/v1/ranking/competitions/versions/rules", {"rules": gmv_only}, role="district_admin"
    )
    assert changed.status_code == 201 and changed.json()["version"] == 2
    wait_active(api, "versions", 2)
    # v2: gmv alone -> c3 100.00, then c1 and c2 tie at 60.00; c1 has counted facts and c2 none,
    # so first_reached puts c1 first
    body = wait_board(
        api, "versions", [(1, "c3", "100.00"), (2, "c1", "60.00"), (3, "c2", "60.00")]
    )
    assert body["version"] == 2
    detail = api.get("/api/v1/ranking/competitions/versions", role="ops").json()
    assert [(v["version"], v["status"]) for v in detail["versions"]] == [
        (1, "retired"),
        (2, "active"),
    ]
    land = [e for e in api.events("ranking") if e["type"] == "CompetitionVersionActivated"]
    assert land[-1]["data"]["caught_up_to"]["commerce"] > 0


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bulletins_freeze_a_closed_period_as_csv(start_services, tmp_path) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "report", competition_rules(windows=["month"]), name="月度比拼")
    wait_active(api, "report")
    last_month = today().replace(day=1) - timedelta(days=1)
    period = f"{last_month.year}-{last_month.month:02d}"
    signed(api, "B1", "v2", "30.00", last_month)
    paid(api, "B2", [("v1", 200)], noon(last_month))
    # land: c2 30 -> 100, c1 0 -> 60, c3 60; gmv: c1 200 -> 100, others 60
    # c2 = 60 + 24 = 84.00; c1 = 36 + 40 = 76.00; c3 = 36 + 24 = 60.00
    wait_board(
        api, "report", [(1, "c2", "84.00"), (2, "c1", "76.00"), (3, "c3", "60.00")], period=period
    )
    issued = api.post(
        "/api/v1/ranking/competitions/report/bulletins",
        {"window": "month", "period": period},
        role="district_admin",
    )
    assert issued.status_code == 201, issued.text
    bulletin = issued.json()
    assert bulletin["rule_version"] == 1 and bulletin["period"] == period
    assert [(r["rank"], r["entity_id"], r["score"]) for r in bulletin["rows"]] == [
        (1, "c2", "84.00"),
        (2, "c1", "76.00"),
        (3, "c3", "60.00"),
    ]
    again = api.post(
        "/api/v1/ranking/competitions/report/bulletins",
        {"window": "month", "period": period},
        role="district_admin",
    )
    assert again.status_code == 409
    open_period = api.post(
        "/api/v1/ranking/competitions/report/bulletins",
        {"window": "month", "period": f"{today().year}-{today().month:02d}"},
        role="district_admin",
    )
    assert open_period.status_code == 422 and "period" in open_period.json()["errors"]

    csv = api.get(f"/api/v1/ranking/bulletins/{bulletin['id']}/csv", role="ops")
    assert csv.headers["Content-Type"].startswith("text/csv")
    assert csv.content.startswith("\ufeff".encode())
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("排名,编号,名称,得分")
    assert lines[1].startswith("1,c2,稻香组团,84.00")

    # reproducible from the event log: a ranking service with an empty database of its own
    # rebuilds the same competition from the producers' notification logs and scores the
    # closed period exactly as the bulletin froze it
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    runner, base = run_services(
        [RankingService], f"sqlite:///{fresh}/{{service}}.db", SERVICE_URL=api.base
    )
    try:
        with requests.Session() as session:
            again_api = Api(base, "", session)
            define(again_api, "report", competition_rules(windows=["month"]), name="月度比拼")
            wait_active(again_api, "report")
            rebuilt = wait_board(
                again_api,
                "report",
                [(r["rank"], r["entity_id"], r["score"]) for r in bulletin["rows"]],
                period=period,
                window="month",
            )
            assert rebuilt["rows"] == bulletin["rows"]
    finally:
        runner.stop()

    # a late fact moves the live history, never the bulletin
    signed(api, "B3", "v4", "90.00", last_month)
    wait_for(
        lambda: board(api, "report", period=period)["rows"][0]["entity_id"] == "c3",
        what="the late fact",
    )
    frozen = api.get(f"/api/v1/ranking/bulletins/{bulletin['id']}", role="ops").json()
    assert frozen["rows"] == bulletin["rows"]
    listed = api.get("/api/v1/ranking/competitions/report/bulletins", role="ops").json()
    assert [b["id"] for b in listed["bulletins"]] == [bulletin["id"]]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_period_close_issues_the_bulletin_by_itself(start_services) -> None:
    """A competition that ran through last month gets last month's bulletin from the keeper."""
    from sqlalchemy import create_engine, update

    from services.ranking.projections import competitions

    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "auto", competition_rules(windows=["month", "quarter"]))
    wait_active(api, "auto")
    engine = create_engine(api.database_url.replace("{service}", "ranking"))
    with engine.begin() as db:  # as if it had been defined a year ago
        db.execute(update(competitions).values(defined_at=datetime(2025, 1, 1, tzinfo=LOCAL_TZ)))
    engine.dispose()
    start_services(RankingService, SERVICE_URL=api.base)  # a replica's keeper closes periods
    last_month = today().replace(day=1) - timedelta(days=1)
    month = f"{last_month.year}-{last_month.month:02d}"

    def issued() -> list:
        body = api.get("/api/v1/ranking/competitions/auto/bulletins", role="ops").json()
        return sorted((b["window"], b["period"], b["rule_version"]) for b in body["bulletins"])

    q = (today().month - 1) // 3
    quarter = f"{today().year}-Q{q}" if q else f"{today().year - 1}-Q4"
    wait_for(lambda: issued() == [("month", month, 1), ("quarter", quarter, 1)], what="bulletins")


@pytest.mark.parametrize("backend", ["sqlite"])
def test_manual_bonus_deduction_and_veto(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "adjust", competition_rules(windows=["month"]))
    wait_active(api, "adjust")
    day = today()
    signed(api, "J1", "v1", "100.00", day)
    paid(api, "J2", [("v2", 1000)], noon(day))
    # c1 = 60 + 24 = 84.00; c2 = 36 + 40 = 76.00; c3 = 60.00
    wait_board(api, "adjust", [(1, "c1", "84.00"), (2, "c2", "76.00"), (3, "c3", "60.00")])

    def adjust(**body):
        body = {"effective_on": day.isoformat(), "reason": "督查", **body}
        return api.post(
            "/api/v1/ranking/competitions/adjust/adjustments", body, role="district_admin"
        )

    assert adjust(id="j1", entity_id="c2", kind="bonus", points="10").status_code == 201
    assert adjust(id="j2", entity_id="c1", kind="deduction", points="2.5").status_code == 201
    # c2 = 76 + 10 = 86.00; c1 = 84 - 2.5 = 81.50
    wait_board(api, "adjust", [(1, "c2", "86.00"), (2, "c1", "81.50"), (3, "c3", "60.00")])
    assert adjust(id="j3", entity_id="c2", kind="veto").status_code == 201
    # c2 leaves the group: land c1 100 vs c3 0 -> 100/60, gmv both 0 -> 100/100
    # c1 = 60 + 40 - 2.5 = 97.50; c3 = 36 + 40 = 76.00; c2 vetoed: 0.00, last, red
    body = wait_board(api, "adjust", [(1, "c1", "97.50"), (2, "c3", "76.00"), (3, "c2", "0.00")])
    assert body["rows"][2]["vetoed"] and body["rows"][2]["colour"] == "red"
    bad = adjust(id="j4", entity_id="c1", kind="veto", points="3")
    assert bad.status_code == 422 and "points" in bad.json()["errors"]
    assert adjust(id="j1", entity_id="c1", kind="bonus", points="1").status_code == 409
    assert adjust(id="j5", entity_id="c1", kind="fine", points="1").status_code == 422


@pytest.mark.parametrize("backend", ["sqlite"])
def test_movement_since_last_period_and_three_reds_in_a_row(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    rules = competition_rules(windows=["month"], colours={"red_bottom": 1})
    define(api, "history", rules)
    wait_active(api, "history")
    this_month = today().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    before_that = (last_month - timedelta(days=1)).replace(day=1)
    # two months ago and last month: c1 100 mu, c2 50 -> c1, c2, c3 (red)
    for n, month in enumerate((before_that, last_month)):
        signed(api, f"H{n}a", "v1", "100.00", month)
        signed(api, f"H{n}b", "v2", "50.00", month)
    # this month c2 alone: c2 = 60 + 40 = 100.00; c1 and c3 = 36 + 40 = 76.00, c1 first by id
    signed(api, "H9", "v2", "10.00", this_month)
    body = wait_board(api, "history", [(1, "c2", "100.00"), (2, "c1", "76.00"), (3, "c3", "76.00")])
    moves = {r["entity_id"]: (r["movement"], r["colour"], r["escalated"]) for r in body["rows"]}
    # c2 2nd -> 1st: ▲1; c1 1st -> 2nd: ▼1; c3 stays 3rd, red for the third month running: 约谈
    assert moves == {
        "c2": (1, "green", False),
        "c1": (-1, "green", False),
        "c3": (0, "red", True),
    }
    past = board(api, "history", period=f"{last_month.year}-{last_month.month:02d}")
    assert [(r["entity_id"], r["colour"], r["escalated"]) for r in past["rows"]][2] == (
        "c3",
        "red",
        False,  # only two reds by then
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_all_time_movement_since_the_end_of_yesterday(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "daily", competition_rules(windows=["all"]))
    wait_active(api, "daily")
    day = today()
    yesterday = day - timedelta(days=1)
    # the board as it stood at the end of yesterday: land c1 100, c2 50, c3 0 -> 100, 80, 60;
    # gmv all 0 -> 100 each: c1 = 60 + 40 = 100.00; c2 = 48 + 40 = 88.00; c3 = 36 + 40 = 76.00
    signed(api, "Y1", "v1", "100.00", yesterday)
    signed(api, "Y2", "v2", "50.00", yesterday)
    wait_board(api, "daily", [(1, "c1", "100.00"), (2, "c2", "88.00"), (3, "c3", "76.00")])
    # today c2 signs 100 more: c2 150 -> 100; c1 = 60 + 40 * 100 / 150 = 86.67; c3 60
    # c2 = 60 + 40 = 100.00; c1 = 0.6 * 86.67 + 40 = 92.00; c3 = 76.00
    signed(api, "T1", "v3", "100.00", day)
    body = wait_board(
        api, "daily", [(1, "c2", "100.00"), (2, "c1", "92.00"), (3, "c3", "76.00")], window="all"
    )
    # against yesterday's board: c2 2nd -> 1st ▲1, c1 1st -> 2nd ▼1, c3 stays
    assert {r["entity_id"]: r["movement"] for r in body["rows"]} == {"c2": 1, "c1": -1, "c3": 0}
    assert body["movement_since"] == yesterday.isoformat()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_weak_villages_compete_per_head(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    cluster(api, "c1", "茶香组团")
    for vid, people, weak in (
        ("w1", 100, True),
        ("w2", 200, True),
        ("w3", 50, True),
        ("s1", 10, False),
    ):
        village(api, vid, f"{vid}村", people, weak=weak)
        join(api, vid, "c1")
    rules = competition_rules(
        entity="village",
        group={"weak": True},
        windows=["year"],
        indicators=[
            {
                "key": "land",
                "name": "人均流转",
                "source": "land_transferred_mu",
                "weight": "1",
                "per_capita": True,
            }
        ],
    )
    define(api, "weak", rules)
    wait_active(api, "weak")
    day = today()
    signed(api, "P1", "w1", "10.00", day)  # 0.10 mu a head
    signed(api, "P2", "w2", "30.00", day)  # 0.15
    signed(api, "P3", "s1", "90.00", day)  # 9 a head, but not a weak village: not competing
    # 0 .. 0.15: w2 100.00; w1 = 60 + 40 * 0.10 / 0.15 = 86.67; w3 60.00
    body = wait_board(api, "weak", [(1, "w2", "100.00"), (2, "w1", "86.67"), (3, "w3", "60.00")])
    assert body["rows"][1]["indicators"][0]["value"] == "0.1000"
