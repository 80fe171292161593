"""Trusteeship: manual dispatch respects the machines' capacity; ledgers started by two
commands at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.commands import CommandContext, UnitOfWork, execute
from tests.conftest import new_id
from tests.sample import Ledger
from tests.test_trusteeship import World, at, ok, only_refusals, refused, start


@pytest.fixture
def world(start_services: Any) -> World:
    return World(start(start_services)).build()


def test_a_manual_dispatch_window_must_fit_the_task_at_the_machines_capacity(
    start_services: Any,
) -> None:
    # a working day of 8 to 16 (8 h): the harvester's 200 mu a day is 25 mu an hour
    world = World(start(start_services, work_day_start_hour=8, work_day_end_hour=16)).build()
    order = world.order([("PK-1", "60.00", "50.00")])
    task = world.task(order, "PK-1")
    before = len(world.events())
    body = refused(world.dispatch(task, at(8), at(9, 59)), "ends_at")  # 49.58 mu < 50 mu
    assert "50.00 mu left" in body["detail"], body
    # a tractor is dispatched too, but ploughs: it adds nothing to a harvest
    tractor = new_id("M")
    ok(
        world.post(
            "/machines",
            {
                "id": tractor,
                "team_id": world.team,
                "machine_type": "tractor",
                "capacity_mu_per_day": "400",
            },
        )
    )
    before = len(world.events())
    body = refused(
        world.dispatch(task, at(8), at(9), machine_ids=[world.machine, tractor]), "ends_at"
    )
    only_refusals(world, before, [(task, "ends_at", body)])
    ok(world.dispatch(task, at(8), at(10)))  # 2 h × 25 mu = 50 mu


def test_two_first_acceptances_of_one_parcel_stage_season_both_succeed(world: World) -> None:
    rival, rival_team = new_id("P"), new_id("T")
    rival_machine, rival_operator = new_id("M"), new_id("OP")
    world.register_provider(rival)
    world.register_team(rival_team, rival, [(rival_machine, "harvester")], [rival_operator])
    rivals = {"team": rival_team, "machine_ids": [rival_machine], "operator_ids": [rival_operator]}
    pairs = []
    for n in range(4):
        parcel = f"PR-{n}"
        mine = world.task(world.order([(parcel, "10.00", "4.00")]), parcel)
        theirs = world.task(world.order([(parcel, "10.00", "6.00")], provider=rival), parcel)
        world.work_done(mine, start=8 + 3 * n)
        ok(world.dispatch(theirs, at(8 + 3 * n), at(10 + 3 * n), **rivals))
        ok(world.post(f"/tasks/{theirs}/start", {"started_at": at(8 + 3 * n)}))
        ok(world.post(f"/tasks/{theirs}/completion", {"completed_at": at(10 + 3 * n)}))
        pairs += [(mine, "4.00"), (theirs, "6.00")]
    # no parcel has an accepted task yet: two acceptances start each parcel's ledger at once
    pool = ThreadPoolExecutor(len(pairs))
    answers = list(pool.map(lambda t: world.accept(*t), pairs))
    assert [a.status_code for a in answers] == [201] * len(pairs), [a.text for a in answers]
    # and two claims start each parcel's subsidy ledger of the season at once
    claims = [{"id": new_id("SC"), "task_id": t, "amount_fen": 1_000} for t, _ in pairs]
    answers = list(pool.map(lambda c: world.post("/subsidy-claims", c), claims))
    assert [a.status_code for a in answers] == [201] * len(pairs), [a.text for a in answers]
    claimed = [e for e in world.events() if e["type"] == "SubsidyClaimed"]
    assert sorted(e["data"]["task_id"] for e in claimed) == sorted(t for t, _ in pairs)
    accepted = [e for e in world.events() if e["type"] == "WorkAccepted"]
    assert sorted(e["data"]["accepted_area_mu"] for e in accepted) == ["4.00"] * 4 + ["6.00"] * 4


def test_a_claim_id_taken_concurrently_is_still_a_conflict(world: World) -> None:
    tasks = []
    for n in range(2):
        task = world.task(world.order([(f"PQ-{n}", "10.00", "10.00")]), f"PQ-{n}")
        world.work_done(task, start=8 + 3 * n)
        ok(world.accept(task, "10.00"))
        tasks.append(task)
    claim = new_id("SC")
    pool = ThreadPoolExecutor(2)
    answers = list(
        pool.map(
            lambda t: world.post(
                "/subsidy-claims", {"id": claim, "task_id": t, "amount_fen": 1_000}
            ),
            tasks,
        )
    )
    assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]


@pytest.mark.parametrize("backend", ["postgres"])  # SQLite has one writer: no interleaving
def test_a_ledger_started_by_a_concurrent_command_is_found_on_the_retry(store: Any) -> None:
    """The interleaving the HTTP test hopes for, made certain: another command starts the
    ledger after this one looked for it and before it commits."""
    context = CommandContext("corr", "cause", "tester", "D1")
    attempts = []

    def elsewhere(other_decide: Any) -> None:  # another command, on its own connection
        with ThreadPoolExecutor(1) as pool:
            pool.submit(execute, store, context, other_decide).result()

    def decide(uow: UnitOfWork) -> int:
        ledger = uow.find_or_create(Ledger, "shared")
        if not attempts:
            elsewhere(lambda other: other.create(Ledger, "shared").open("O", "D1"))
        attempts.append(ledger.version)
        if ledger.is_new:
            ledger.open("O", "D1")
        ledger.deposit(100)
        return ledger.version

    assert execute(store, context, decide).result == 2  # opened by the other, deposited here
    assert attempts == [0, 1]
