"""Concurrent guarantee approvals against the approval caps, through HTTP on both backends:
one borrower's outstanding-guarantee cap and the risk fund's leverage limit admit exactly as
many approvals as fit, whatever the interleaving; the rest are refused naming the field."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.test_finance_world import World, build_world, created, wait_for

RACERS = 8


def _race(world: World, loan_ids: list[str], guaranteed_fen: int) -> list[Any]:
    def approve(loan_id: str) -> Any:
        return world.approve(loan_id, guaranteed_fen)

    with ThreadPoolExecutor(len(loan_ids)) as pool:
        return list(pool.map(approve, loan_ids))


def _exposure(world: World, by: str) -> dict[str, int]:
    response = world.get("/api/v1/finance/exposure", params={"by": by})
    assert response.status_code == 200, response.text
    return {row["key"]: row["outstanding_guaranteed_fen"] for row in response.json()["exposure"]}


def _outcome(responses: list[Any], admitted: int) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses.count(201) == admitted, statuses
    refused = [r for r in responses if r.status_code != 201]
    for response in refused:
        assert response.status_code == 422, response.text
        assert "guaranteed_fen" in response.json()["errors"], response.text


def test_concurrent_approvals_never_exceed_the_borrower_cap_or_the_fund_leverage(
    start_services: Any,
) -> None:
    world = build_world(start_services, max_workers=RACERS)
    world.fund(balance_fen=1_100_000)  # 10x leverage: at most 11_000_000 fen outstanding
    world.scheme()
    world.product(borrower_cap_fen=5_000_000)

    # One borrower, eight applications of 1_000_000 each: the cap admits five.
    shared = [f"LB{n}" for n in range(RACERS)]
    for loan_id in shared:
        created(world.apply(loan_id, borrower_id="B-shared"))
        created(world.guarantor(f"/loans/{loan_id}/due-diligence", {"passed": True}))
    _outcome(_race(world, shared, 1_000_000), admitted=5)
    assert _exposure(world, "borrower") == {"B-shared": 5_000_000}

    # Eight borrowers of 2_000_000 each: the fund has 6_000_000 of headroom left, room for three.
    several = [f"LF{n}" for n in range(RACERS)]
    for loan_id in several:
        created(world.apply(loan_id))
        created(world.guarantor(f"/loans/{loan_id}/due-diligence", {"passed": True}))
    _outcome(_race(world, several, 2_000_000), admitted=3)

    assert _exposure(world, "fund") == {"F1": 11_000_000}
    borrowers = _exposure(world, "borrower")
    assert borrowers.pop("B-shared") == 5_000_000
    assert sorted(borrowers.values()) == [2_000_000] * 3
    fund = world.get("/api/v1/finance/funds/F1").json()
    assert fund["outstanding_guaranteed_fen"] == fund["limit_fen"] == 11_000_000

    def approved() -> list[dict[str, Any]]:
        return [e["data"] for e in world.finance_events() if e["type"] == "GuaranteeApproved"]

    # The notification log shows an event once no earlier one can still appear: wait for all.
    wait_for(lambda: len(approved()) >= 8, what="the approvals in the log")
    assert sum(a["guaranteed_fen"] for a in approved()) == 11_000_000
    assert len(approved()) == 8
