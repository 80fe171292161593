"""Activity records, talent, and the alliance's events on RabbitMQ."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.alliance.service import AllianceService
from shared.periods import period_bounds
from tests.conftest import Api, captured_events, new_id
from tests.test_alliance import (
    ADMIN,
    SECRETARY,
    A,
    form_cluster,
    found_alliance,
    join,
    leave,
    ok,
    problem,
    register_village,
)
from tests.test_alliance_tasks import assign, cadre, progress

CONTRACTS = Path(__file__).resolve().parent.parent / "docs" / "events" / "alliance"


@pytest.fixture
def api(start_services: Any) -> Api:
    return start_services(AllianceService)


def record(api: Api, unit: str, at: str, claims: dict[str, Any], **fields: Any) -> Any:
    body = {
        "id": new_id("ACT"),
        "unit_id": unit,
        "activity_type": "meeting",
        "title": "主题党日",
        "occurred_at": at,
    }
    body.update(fields)
    return api.post(f"{A}/activities", body, **claims)


def counts(api: Api, period: str, **params: Any) -> dict[str, Any]:
    return ok(api.get(f"{A}/activity-counts", params={"period": period, **params}), 200)


def test_activities_are_counted_per_period_in_shanghai_time(api: Api) -> None:
    cluster = form_cluster(api, found_alliance(api))
    village, other = register_village(api), register_village(api)
    ok(join(api, village, cluster, "2026-01-01"))
    ok(join(api, other, cluster, "2026-01-01"))
    ok(leave(api, other, cluster, "2026-04-01"))
    me = cadre(village)
    ok(record(api, village, "2026-03-31T23:30:00+08:00", me))  # March in Shanghai
    ok(record(api, village, "2026-03-31T16:30:00+00:00", me))  # 00:30 on 1 April in Shanghai
    ok(record(api, village, "2026-05-20T09:00:00+08:00", me, activity_type="livestream_help"))
    ok(record(api, other, "2026-02-10T09:00:00+08:00", cadre(other), activity_type="visit"))
    ok(record(api, other, "2026-04-10T09:00:00+08:00", cadre(other), activity_type="training"))

    march = counts(api, "2026-03")
    assert (march["from_on"], march["until_on"], march["total"]) == ("2026-03-01", "2026-03-31", 1)
    assert march["counts"] == [{"unit_id": village, "activity_type": "meeting", "count": 1}]
    q2 = counts(api, "2026-Q2")
    assert (q2["from_on"], q2["until_on"]) == ("2026-04-01", "2026-06-30")
    assert q2["by_type"] == {"meeting": 1, "livestream_help": 1, "training": 1}
    assert counts(api, "2026")["total"] == 5
    assert counts(api, "2026", unit_id=other)["by_type"] == {"visit": 1, "training": 1}
    # per cluster: a unit's activity counts while it was in the cluster
    in_cluster = counts(api, "2026", cluster_id=cluster)
    assert in_cluster["total"] == 4  # the other village's April training was after it left
    problem(api.get(f"{A}/activity-counts", params={"period": "2026-13"}), 422, "period")

    event = [e for e in api.events("alliance") if e["type"] == "ActivityRecorded"][1]
    # one stream per unit, type and instant: different activities of a unit never collide
    assert event["stream_id"] == f"{village}/activities/meeting@2026-04-01T00:30:00+08:00"
    assert event["data"]["occurred_at"] == "2026-04-01T00:30:00+08:00"
    assert event["data"]["occurred_on"] == "2026-04-01"
    assert event["data"]["unit_id"] == village


@pytest.mark.parametrize("backend", ["sqlite"])
def test_duplicate_activities_are_rejected(api: Api) -> None:
    village = register_village(api)
    me = cadre(village)
    first = ok(record(api, village, "2026-03-01T10:00:00+08:00", me))
    before = len(api.events("alliance"))
    # the same unit, type and instant, written in another zone: 409 naming occurred_at
    body = problem(record(api, village, "2026-03-01T02:00:00Z", me), 409, "occurred_at")
    assert first["activity_id"] in body["errors"]["occurred_at"][0]
    problem(
        record(api, village, "2026-03-02T10:00:00+08:00", me, id=first["activity_id"]), 409, "id"
    )
    assert len(api.events("alliance")) == before
    # another type at the same time, or the same type a minute later, is another activity
    ok(record(api, village, "2026-03-01T10:00:00+08:00", me, activity_type="training"))
    ok(record(api, village, "2026-03-01T10:01:00+08:00", me))
    # a retried POST with its Idempotency-Key gets the first answer and appends nothing
    retry = {"headers": {"Idempotency-Key": "act-42"}}
    payload = {
        "id": "ACT-42",
        "unit_id": village,
        "activity_type": "visit",
        "title": "走访",
        "occurred_at": "2026-03-05T10:00:00+08:00",
    }
    one = api.post(f"{A}/activities", payload, **me, **retry)
    two = api.post(f"{A}/activities", payload, **me, **retry)
    assert (one.status_code, two.status_code) == (201, 201)
    assert two.headers.get("Idempotent-Replayed") == "true" and one.json() == two.json()
    assert len(api.events("alliance")) == before + 3


@pytest.mark.parametrize("backend", ["sqlite"])
def test_activity_rules_and_scope(api: Api) -> None:
    cluster = form_cluster(api, found_alliance(api))
    village, neighbour = register_village(api), register_village(api)
    ok(join(api, village, cluster, "2026-01-01"))
    at = "2026-03-01T10:00:00+08:00"
    before = len(api.events("alliance"))
    problem(record(api, village, at, cadre(neighbour)), 403, "unit_id")  # for another unit
    problem(record(api, village, at, {**SECRETARY, "cluster": "CL-other"}), 403, "cluster")
    problem(record(api, village, at, {"role": "alliance_secretary", "district": "D2"}), 403)
    problem(record(api, village, at, {"role": "merchant"}), 403)
    problem(record(api, "nope", at, ADMIN), 422, "unit_id")
    problem(record(api, village, "2026-03-01T10:00:00", ADMIN), 422, "occurred_at")  # no zone
    problem(record(api, village, at, ADMIN, activity_type="party"), 422, "activity_type")
    assert len(api.events("alliance")) == before
    ok(record(api, village, at, {**SECRETARY, "cluster": cluster}, activity_type="joint_event"))


def test_talent_is_registered_to_a_cluster(api: Api) -> None:
    cluster = form_cluster(api, found_alliance(api))
    village, outsider = register_village(api), register_village(api)
    ok(join(api, village, cluster, "2026-01-01"))

    def talent(**fields: Any) -> Any:
        body = {
            "id": new_id("P"),
            "cluster_id": cluster,
            "name": "张三",
            "category": "returning_graduate",
            "registered_on": "2026-02-01",
        }
        body.update(fields)
        claims = body.pop("claims", SECRETARY)
        return api.post(f"{A}/talent", body, **claims)

    ok(talent(village_id=village))
    ok(talent(category="veteran"))
    ok(talent(category="veteran", claims={**SECRETARY, "cluster": cluster}))
    before = len(api.events("alliance"))
    problem(talent(village_id=outsider), 422, "village_id")
    problem(talent(village_id=village, registered_on="2025-12-31"), 422, "village_id")
    problem(talent(cluster_id="nope"), 422, "cluster_id")
    problem(talent(category="poet"), 422, "category")
    problem(talent(claims=cadre(village)), 403)
    problem(talent(claims={"role": "alliance_secretary", "district": "D2"}), 403, "district")
    assert len(api.events("alliance")) == before

    board = ok(api.get(f"{A}/clusters/{cluster}/talent"), 200)
    assert board["by_category"] == {"returning_graduate": 1, "veteran": 2}
    event = next(e for e in api.events("alliance") if e["type"] == "TalentRegistered")
    assert event["data"] == {
        "talent_id": event["stream_id"],
        "cluster_id": cluster,
        "village_id": village,
        "district": "D1",
        "name": "张三",
        "category": "returning_graduate",
        "registered_on": "2026-02-01",
    }


def test_period_bounds() -> None:
    assert period_bounds("2026-12") == (
        period_bounds("2026-Q4")[0].replace(month=12),
        period_bounds("2027")[0],
    )
    assert [d.isoformat() for d in period_bounds("2026-Q1")] == ["2026-01-01", "2026-04-01"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_events_arrive_on_rabbitmq_with_the_documented_envelope(
    start_services: Any, broker: str
) -> None:
    with captured_events(broker, "alliance") as take:
        api = start_services(AllianceService, amqp_uri=broker)
        alliance = found_alliance(api)
        cluster = form_cluster(api, alliance)
        village = register_village(api)
        ok(join(api, village, cluster, "2025-12-01"))
        task = ok(assign(api, cluster, village))["task_id"]
        ok(progress(api, task, "100", cadre(village)))
        ok(api.post(f"{A}/tasks/{task}/completion", {}, **cadre(village)))
        ok(api.post(f"{A}/tasks/{task}/return", {"reason": "补材料"}, **SECRETARY))
        late = ok(assign(api, cluster, None))["task_id"]
        ok(api.post(f"{A}/sweeps", {"as_of": "2026-01-05"}, role="ops"), 200)  # behind
        ok(progress(api, late, "100", SECRETARY))
        ok(api.post(f"{A}/sweeps", {"as_of": "2026-01-06"}, role="ops"), 200)  # back on track
        ok(api.post(f"{A}/sweeps", {"as_of": "2026-01-11"}, role="ops"), 200)  # both overdue
        ok(api.post(f"{A}/tasks/{task}/completion", {}, **cadre(village)))
        ok(api.post(f"{A}/tasks/{task}/verification", {}, **SECRETARY))
        ok(record(api, village, "2026-03-01T10:00:00+08:00", cadre(village)))
        talent = {"id": new_id("P"), "cluster_id": cluster, "name": "李四", "category": "expert"}
        ok(api.post(f"{A}/talent", talent, **SECRETARY))
        ok(leave(api, village, cluster, "2026-06-01"))
        stored = api.events("alliance")
        received = take(len(stored), timeout=20)

    assert sorted(e["event_id"] for e in received) == sorted(e["event_id"] for e in stored)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for envelope in received:
        contract = json.loads((CONTRACTS / f"{envelope['type']}.json").read_text())
        jsonschema.validate(envelope, contract, format_checker=checker)
    types = {e["type"] for e in received}
    assert types == {
        "AllianceFounded",
        "ClusterFormed",
        "MemberUnitRegistered",
        "MemberJoined",
        "MemberLeft",
        "TaskAssigned",
        "TaskProgressReported",
        "TaskCompletionSubmitted",
        "TaskReturned",
        "TaskVerified",
        "TaskFellBehind",
        "TaskBackOnTrack",
        "TaskOverdue",
        "ActivityRecorded",
        "TalentRegistered",
    }
    joined = next(e for e in received if e["type"] == "MemberJoined")
    assert joined["stream_id"] == village and joined["metadata"]["district"] == "D1"


def test_concurrent_duplicate_activities_record_one(api: Api) -> None:
    village = register_village(api)
    at = "2026-03-01T10:00:00+08:00"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: record(api, village, at, cadre(village)), range(4)))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    for loser in (a for a in answers if a.status_code == 409):
        assert "occurred_at" in loser.json()["errors"], loser.text
    # different activities of one unit, posted at once, are all recorded: each has its own
    # stream, so they do not use up each other's retries
    fresh = register_village(api)
    times = [f"2026-03-01T1{i}:00:00+08:00" for i in range(8)]
    with ThreadPoolExecutor(len(times)) as pool:
        answers = list(pool.map(lambda t: record(api, fresh, t, cadre(fresh)), times))
    assert [a.status_code for a in answers] == [201] * len(times), [a.text for a in answers]
    recorded = [e for e in api.events("alliance") if e["type"] == "ActivityRecorded"]
    assert len(recorded) == 1 + len(times)
    assert counts(api, "2026-03")["total"] == 1 + len(times)


def test_one_activity_id_sent_by_two_units_at_once_is_recorded_once(api: Api) -> None:
    units = [register_village(api) for _ in range(4)]
    at = "2026-03-01T10:00:00+08:00"
    same = {"id": new_id("ACT")}
    before = len(api.events("alliance"))
    with ThreadPoolExecutor(len(units)) as pool:
        answers = list(pool.map(lambda unit: record(api, unit, at, cadre(unit), **same), units))
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201, 409, 409, 409], [a.text for a in answers]
    for loser in (a for a in answers if a.status_code == 409):
        assert "id" in loser.json()["errors"], loser.text
    recorded = [e for e in api.events("alliance") if e["type"] == "ActivityRecorded"]
    assert len(api.events("alliance")) == before + 1 and len(recorded) == 1
    assert counts(api, "2026-03")["total"] == 1
