"""Splitting money to the fen (largest remainder) and the distribution of collective profit:
policy and register sums, the distributable amount, quorum, publicity, exact payouts."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from services.finance.money import add_months, fee_fen
from shared.money import allocate, percent_weights
from tests.test_finance_world import build_world, created

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def test_allocation_sums_exactly_and_stays_within_a_fen_of_the_exact_share():
    rng = random.Random(20260301)  # fixed seed: the same thousands of cases every run
    for _ in range(5000):
        weights = [rng.randint(0, 10_000) for _ in range(rng.randint(1, 12))]
        if not sum(weights):
            weights[0] = 1
        total = rng.choice([0, 1, 7, 99, rng.randint(0, 10**12)])
        parts = allocate(total, weights)
        assert sum(parts) == total
        for part, weight in zip(parts, weights, strict=True):
            exact = Decimal(total) * weight / sum(weights)
            assert exact - 1 < part < exact + 1
        assert allocate(total, weights) == parts  # deterministic


def test_ties_go_to_the_earlier_party():
    assert allocate(1, [1, 1, 1]) == [1, 0, 0]
    assert allocate(2, [1, 1, 1]) == [1, 1, 0]
    assert allocate(100, [3333, 3333, 3334]) == [33, 33, 34]
    assert allocate(1_999_999, [4000, 3000, 2000, 1000]) == [799_999, 600_000, 400_000, 200_000]


def test_percent_weights_fees_and_months():
    assert percent_weights([Decimal("33.333333"), Decimal("66.666667")]) == [33_333_333, 66_666_667]
    assert fee_fen(2_400_000, 50, 12) == 12_000
    assert fee_fen(1, 50, 1) == 0
    assert add_months(__import__("datetime").date(2026, 1, 31), 1).isoformat() == "2026-02-28"


def test_distribution_plan_rules_and_exact_payouts(start_services):
    world = build_world(start_services)
    api, village = world.api, world.villages[0]

    def cadre(path: str, body: dict):
        return api.post(f"/api/v1/finance{path}", body, role="village_cadre", village=village)

    created(
        cadre(
            "/collective/incomes",
            {"id": "I1", "village_id": village, "amount_fen": 1_000_003, "category": "rent"},
        )
    )
    created(
        cadre(
            "/collective/expenses",
            {"id": "E1", "village_id": village, "amount_fen": 2, "category": "office"},
        )
    )
    before = len(world.finance_events())
    bad_buckets = [
        {"bucket": "member_dividends", "share_bp": 5000},
        {"bucket": "redevelopment", "share_bp": 4999},
    ]
    world.rejected(
        cadre(
            "/distribution/policies", {"id": "POL", "village_id": village, "buckets": bad_buckets}
        ),
        "buckets",
        before,
    )
    holders = [
        {"holder_id": f"M{i}", "holder_type": "member", "share_pct": "33.333333"} for i in range(3)
    ]
    world.rejected(
        cadre("/distribution/registers", {"id": "REG", "village_id": village, "holders": holders}),
        "holders",
        before,
    )
    # The register of 2413-style buckets: 40 % re-development, 20 % dividends, 10 % rewards,
    # 30 % public welfare; three members holding a third each (the last holds the odd millionth).
    buckets = [
        {"bucket": "redevelopment", "share_bp": 4000},
        {"bucket": "member_dividends", "share_bp": 2000},
        {"bucket": "rewards", "share_bp": 1000},
        {"bucket": "public_welfare", "share_bp": 3000},
    ]
    created(
        cadre(
            "/distribution/policies",
            {"id": "POL", "village_id": village, "buckets": buckets, "publicity_days": 7},
        )
    )
    holders[2]["share_pct"] = "33.333334"
    created(
        cadre("/distribution/registers", {"id": "REG", "village_id": village, "holders": holders})
    )
    before = len(world.finance_events())
    plan = {
        "id": "PLAN1",
        "village_id": village,
        "policy_id": "POL",
        "register_id": "REG",
        "drafted_on": "2026-12-01",
    }
    world.rejected(
        cadre("/distribution/plans", {**plan, "distributable_fen": 1_000_002}),
        "distributable_fen",
        before,
    )
    drafted = created(cadre("/distribution/plans", {**plan, "distributable_fen": 1_000_001}))
    amounts = [b["amount_fen"] for b in drafted["buckets"]]
    assert sum(amounts) == 1_000_001
    dividends = drafted["buckets"][1]["amount_fen"]
    assert dividends == 200_000
    payouts = [p["amount_fen"] for p in drafted["payouts"]]
    assert sum(payouts) == dividends
    assert payouts == [66_667, 66_666, 66_667]

    before = len(world.finance_events())
    world.rejected(cadre("/distribution/plans/PLAN1/payouts", {}), "plan_id", before)
    meeting = {"meeting_type": "members", "eligible": 400, "present": 200, "in_favour": 150}
    world.rejected(cadre("/distribution/plans/PLAN1/approval", meeting), "present", before)
    reps = {"meeting_type": "representatives", "eligible": 30, "present": 20, "in_favour": 10}
    world.rejected(cadre("/distribution/plans/PLAN1/approval", reps), "in_favour", before)
    created(
        cadre(
            "/distribution/plans/PLAN1/approval",
            {**reps, "in_favour": 11, "approved_on": "2026-12-05"},
        )
    )
    before = len(world.finance_events())
    world.rejected(cadre("/distribution/plans/PLAN1/payouts", {}), "plan_id", before)
    created(cadre("/distribution/plans/PLAN1/publicity", {"publicised_on": "2026-12-06"}))
    before = len(world.finance_events())
    world.rejected(
        cadre("/distribution/plans/PLAN1/payouts", {"paid_on": "2026-12-12"}), "paid_on", before
    )
    created(cadre("/distribution/plans/PLAN1/payouts", {"paid_on": "2026-12-13"}))
    paid = [e["data"] for e in world.finance_events() if e["type"] == "DividendPaid"]
    assert [p["amount_fen"] for p in paid] == [66_667, 66_666, 66_667]
    view = world.get("/api/v1/finance/distribution/plans/PLAN1", role="district_admin").json()
    assert view["paid_fen"] == dividends
    # Everything distributable is planned now: a second plan has nothing left.
    before = len(world.finance_events())
    world.rejected(
        cadre("/distribution/plans", {**plan, "id": "PLAN2", "distributable_fen": 1}),
        "distributable_fen",
        before,
    )
    other = api.post(
        "/api/v1/finance/collective/incomes",
        {"id": "I9", "village_id": village, "amount_fen": 1, "category": "x"},
        role="village_cadre",
        village="V-other",
    )
    world.rejected(other, "village", before, status=403)
