"""Key task lists over HTTP: assignment, progress, completion, verification, return, and the
序时进度 sweep at period boundaries."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.alliance.domain import expected_share
from services.alliance.service import AllianceService
from tests.conftest import Api, new_id
from tests.test_alliance import (
    ADMIN,
    SECRETARY,
    A,
    form_cluster,
    found_alliance,
    join,
    ok,
    problem,
    register_village,
)


@pytest.fixture
def api(start_services: Any) -> Api:
    return start_services(AllianceService)


def cluster_with_village(api: Api) -> tuple[str, str]:
    cluster = form_cluster(api, found_alliance(api))
    village = register_village(api)
    ok(join(api, village, cluster, "2025-12-01"))
    return cluster, village


def assign(
    api: Api,
    cluster: str,
    unit: str | None = None,
    claims: dict[str, Any] | None = None,
    **fields: Any,
) -> Any:
    body = {
        "id": new_id("T"),
        "cluster_id": cluster,
        "unit_id": unit,
        "title": "土地流转",
        "indicator": "land_transferred",
        "measure_unit": "亩",
        "target_quantity": "100",
        "starts_on": "2026-01-01",
        "deadline_on": "2026-01-10",
    }
    body.update(fields)
    return api.post(f"{A}/tasks", body, **(claims or SECRETARY))


def cadre(village: str) -> dict[str, Any]:
    return {"role": "village_cadre", "district": "D1", "village": village}


def progress(
    api: Api, task: str, quantity: str, claims: dict[str, Any], on: str = "2026-01-03"
) -> Any:
    return api.post(
        f"{A}/tasks/{task}/progress",
        {"quantity": quantity, "evidence_note": "合同备案", "reported_on": on},
        **claims,
    )


def task_events(api: Api, task: str) -> list[dict[str, Any]]:
    return [e for e in api.events("alliance") if e["stream_id"] == task]


def sweep(api: Api, as_of: str, **extra: Any) -> dict[str, Any]:
    return ok(api.post(f"{A}/sweeps", {"as_of": as_of, **extra}, role="ops"), 200)


def test_a_task_is_reported_submitted_returned_and_verified(api: Api) -> None:
    cluster, village = cluster_with_village(api)
    task = ok(assign(api, cluster, village))["task_id"]
    me = cadre(village)
    ok(progress(api, task, "60.5", me))
    ok(progress(api, task, "-0.5", me))  # a correction
    problem(api.post(f"{A}/tasks/{task}/completion", {}, **me), 422, "task_id")  # 60 < 100
    ok(progress(api, task, "40", me, on="2026-01-08"))
    submitted = ok(api.post(f"{A}/tasks/{task}/completion", {"submitted_on": "2026-01-08"}, **me))
    assert submitted["status"] == "submitted"
    returned = ok(
        api.post(
            f"{A}/tasks/{task}/return",
            {"reason": "缺备案", "returned_on": "2026-01-09"},
            **SECRETARY,
        )
    )
    assert returned["status"] == "in_progress"
    ok(progress(api, task, "5", me, on="2026-01-09"))
    ok(api.post(f"{A}/tasks/{task}/completion", {"submitted_on": "2026-01-09"}, **me))
    verified = ok(
        api.post(f"{A}/tasks/{task}/verification", {"verified_on": "2026-01-10"}, **SECRETARY)
    )
    assert verified["status"] == "verified"

    events = task_events(api, task)
    assert [e["type"] for e in events] == [
        "TaskAssigned",
        "TaskProgressReported",
        "TaskProgressReported",
        "TaskProgressReported",
        "TaskCompletionSubmitted",
        "TaskReturned",
        "TaskProgressReported",
        "TaskCompletionSubmitted",
        "TaskVerified",
    ]
    assert events[2]["data"]["quantity"] == "-0.50"
    assert events[2]["data"]["cumulative_quantity"] == "60.00"
    assert events[2]["data"]["reporter"] == "village_cadre-user"
    assert events[-1]["data"] == {
        "task_id": task,
        "cluster_id": cluster,
        "unit_id": village,
        "indicator": "land_transferred",
        "target_quantity": "100.00",
        "completed_quantity": "105.00",
        "verified_on": "2026-01-10",
        "verifier": "alliance_secretary-user",
    }
    board = ok(api.get(f"{A}/clusters/{cluster}/tasks"), 200)
    assert [(t["task_id"], t["status"], t["progress_quantity"]) for t in board["tasks"]] == [
        (task, "verified", "105.00")
    ]
    assert (board["by_status"], board["by_schedule"]) == ({"verified": 1}, {})


@pytest.mark.parametrize("backend", ["sqlite"])
def test_task_rules_are_422s_naming_the_field_and_write_nothing(api: Api) -> None:
    cluster, village = cluster_with_village(api)
    outsider = register_village(api)
    before = len(api.events("alliance"))
    problem(assign(api, cluster, village, deadline_on="2025-12-31"), 422, "deadline_on")
    problem(assign(api, cluster, outsider), 422, "unit_id")  # not a member of the cluster
    problem(assign(api, cluster, village, starts_on="2025-11-30"), 422, "unit_id")  # not yet
    problem(assign(api, "nope", None), 422, "cluster_id")
    problem(assign(api, cluster, village, target_quantity="0"), 422, "target_quantity")
    problem(assign(api, cluster, village, target_quantity="1.001"), 422, "target_quantity")
    assert len(api.events("alliance")) == before

    task = ok(assign(api, cluster, village))["task_id"]
    me = cadre(village)
    ok(progress(api, task, "10", me))
    before = len(api.events("alliance"))
    body = problem(progress(api, task, "-10.01", me), 422, "quantity")  # can't go negative
    assert "negative" in body["errors"]["quantity"][0]
    problem(progress(api, task, "0", me), 422, "quantity")
    problem(api.post(f"{A}/tasks/{task}/verification", {}, **SECRETARY), 422, "task_id")
    problem(api.post(f"{A}/tasks/{task}/return", {"reason": "x"}, **SECRETARY), 422, "task_id")
    problem(progress(api, "T-nope", "1", me), 404)
    assert len(api.events("alliance")) == before

    ok(progress(api, task, "90", me))
    ok(api.post(f"{A}/tasks/{task}/completion", {}, **me))
    problem(progress(api, task, "1", me), 422, "task_id")  # awaiting verification
    ok(api.post(f"{A}/tasks/{task}/verification", {}, **SECRETARY))
    before = len(api.events("alliance"))
    body = problem(progress(api, task, "1", me), 422, "task_id")  # closed
    assert "closed" in body["detail"]
    problem(api.post(f"{A}/tasks/{task}/completion", {}, **me), 422, "task_id")
    problem(api.post(f"{A}/tasks/{task}/verification", {}, **SECRETARY), 422, "task_id")
    assert len(api.events("alliance")) == before


@pytest.mark.parametrize("backend", ["sqlite"])
def test_units_report_for_themselves_and_secretaries_manage_their_own(api: Api) -> None:
    cluster, village = cluster_with_village(api)
    other_cluster = form_cluster(api, found_alliance(api))
    neighbour = register_village(api)
    ok(join(api, neighbour, cluster, "2025-12-01"))
    task = ok(assign(api, cluster, village))["task_id"]
    whole = ok(assign(api, cluster, None))["task_id"]
    before = len(api.events("alliance"))

    problem(progress(api, task, "1", cadre(neighbour)), 403, "unit_id")  # another unit's task
    problem(progress(api, task, "1", {"role": "village_cadre"}), 403, "unit_id")  # no village
    problem(progress(api, whole, "1", cadre(village)), 403, "unit_id")  # the cluster's task
    problem(
        progress(api, task, "1", {"role": "alliance_secretary", "district": "D2"}), 403, "district"
    )
    problem(progress(api, task, "1", {**SECRETARY, "cluster": other_cluster}), 403, "cluster")
    problem(assign(api, cluster, village, claims=cadre(village)), 403)
    problem(
        assign(api, cluster, village, claims={**SECRETARY, "cluster": other_cluster}),
        403,
        "cluster",
    )
    problem(
        assign(api, cluster, village, claims={"role": "alliance_secretary", "district": "D2"}), 403
    )
    problem(api.post(f"{A}/tasks/{task}/verification", {}, **cadre(village)), 403)
    problem(api.post(f"{A}/sweeps", {"as_of": "2026-01-05"}, **SECRETARY), 403)
    assert len(api.events("alliance")) == before

    ok(progress(api, whole, "1", {**SECRETARY, "cluster": cluster}))
    ok(progress(api, task, "1", ADMIN))


def test_sweep_emits_each_schedule_change_once_at_period_boundaries(api: Api) -> None:
    cluster, village = cluster_with_village(api)
    # 10 days, 1 to 10 January; target 100; default tolerance 0.10
    task = ok(assign(api, cluster, village))["task_id"]
    me = cadre(village)

    def changes(as_of: str) -> list[tuple[str, str, str]]:
        seen = len(task_events(api, task))
        sweep(api, as_of)
        return [
            (e["type"], e["data"]["progress_share"], e["data"]["expected_share"])
            for e in task_events(api, task)[seen:]
        ]

    assert changes("2025-12-31") == []  # before the start: nothing is expected
    assert changes("2026-01-01") == []  # start day: 0.1 expected, within the tolerance
    assert changes("2026-01-02") == [("TaskFellBehind", "0.0000", "0.2000")]
    assert changes("2026-01-02") == []  # the same state is not emitted twice
    assert changes("2026-01-04") == []
    ok(progress(api, task, "50", me, on="2026-01-05"))
    assert changes("2026-01-05") == [("TaskBackOnTrack", "0.5000", "0.5000")]
    assert changes("2026-01-06") == []  # 0.5 >= 0.6 - 0.1
    assert changes("2026-01-07") == [("TaskFellBehind", "0.5000", "0.7000")]  # behind again
    assert changes("2026-01-10") == []  # deadline day: behind, not yet overdue
    assert changes("2026-01-11") == [("TaskOverdue", "0.5000", "1.0000")]  # the day after
    assert changes("2026-01-12") == []
    assert changes("2026-01-05") == []  # an older sweep changes nothing

    behind, overdue = task_events(api, task)[-2:]
    assert behind["data"] == {
        "task_id": task,
        "cluster_id": cluster,
        "unit_id": village,
        "as_of": "2026-01-07",
        "progress_share": "0.5000",
        "expected_share": "0.7000",
        "tolerance": "0.1000",
    }
    assert overdue["data"]["deadline_on"] == "2026-01-10"
    board = ok(api.get(f"{A}/clusters/{cluster}/tasks"), 200)
    assert board["tasks"][0]["schedule"] == "overdue"
    assert (board["by_status"], board["by_schedule"]) == ({"in_progress": 1}, {"overdue": 1})


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_task_verified_by_its_deadline_is_never_overdue(api: Api) -> None:
    cluster, village = cluster_with_village(api)
    done = ok(assign(api, cluster, village))["task_id"]
    pending = ok(assign(api, cluster, village))["task_id"]
    me = cadre(village)
    for task in (done, pending):
        ok(progress(api, task, "100", me, on="2026-01-10"))
        ok(api.post(f"{A}/tasks/{task}/completion", {"submitted_on": "2026-01-10"}, **me))
    ok(api.post(f"{A}/tasks/{done}/verification", {"verified_on": "2026-01-10"}, **SECRETARY))
    result = sweep(api, "2026-01-11")
    assert result["evaluated"] == 1
    assert result["overdue"] == [pending]  # not verified after its deadline
    assert [e["type"] for e in task_events(api, done)][-1] == "TaskVerified"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_tolerance_comes_from_the_request_or_the_setting(start_services: Any) -> None:
    api = start_services(AllianceService, ALLIANCE_BEHIND_TOLERANCE="0")
    cluster, village = cluster_with_village(api)
    task = ok(assign(api, cluster, village))["task_id"]
    assert sweep(api, "2026-01-01", tolerance="0.1")["fell_behind"] == []
    # a district admin sweeps its own district's tasks only
    elsewhere = api.post(
        f"{A}/sweeps", {"as_of": "2026-01-01"}, role="district_admin", district="D2"
    )
    assert ok(elsewhere, 200)["evaluated"] == 0
    assert sweep(api, "2026-01-01")["fell_behind"] == [task]  # 0 < 0.1 - 0
    problem(
        api.post(f"{A}/sweeps", {"as_of": "2026-01-02", "tolerance": "1.5"}, role="ops"),
        422,
        "tolerance",
    )
    problem(api.post(f"{A}/sweeps", {}, role="ops"), 422, "as_of")


def test_expected_share_counts_the_start_day_and_the_deadline_day() -> None:
    start, deadline = date(2026, 1, 1), date(2026, 3, 31)  # 90 days
    assert expected_share(start, deadline, date(2025, 12, 31)) == Decimal("0")
    assert expected_share(start, deadline, start) == Decimal("0.0111")
    assert expected_share(start, deadline, date(2026, 2, 14)) == Decimal("0.5000")
    assert expected_share(start, deadline, deadline) == Decimal("1")
    assert expected_share(start, deadline, date(2026, 4, 1)) == Decimal("1")
    assert expected_share(start, start, start) == Decimal("1")  # a one-day task
