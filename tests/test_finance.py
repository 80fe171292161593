"""Finance over HTTP: a guaranteed loan from application to closing, and every guarantee rule
(a 422 naming the field, nothing written)."""

from __future__ import annotations

import pytest

from tests.test_finance_world import StubLand, build_world, created

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def test_loan_lifecycle_with_compensation_loss_sharing_and_recovery(start_services):
    world = build_world(start_services)
    world.fund()
    world.scheme()
    world.product()
    created(world.apply("L1"))
    created(
        world.api.post(
            "/api/v1/finance/loans/L1/recommendations",
            {"note": "白名单"},
            role="village_cadre",
        )
    )
    created(world.guarantor("/loans/L1/due-diligence", {"passed": True}))
    created(world.approve("L1", 2_400_000))
    created(world.guarantor("/loans/L1/guarantee-contract", {"id": "GC1", "signed_on": "2026-02-20"}))
    created(
        world.guarantor(
            "/loans/L1/counter-guarantees",
            {"id": "CG1", "kind": "machinery", "value_fen": 800_000},
        )
    )
    created(world.bank("BANKA", "/loans/L1/disbursement", {"disbursed_on": "2026-03-01"}))
    fee = created(world.guarantor("/loans/L1/fees", {"charged_on": "2026-03-01"}))
    assert fee["status"] == "disbursed"
    repaid = created(
        world.bank(
            "BANKA",
            "/loans/L1/repayments",
            {"id": "R1", "principal_fen": 1_000_001, "interest_fen": 9_000, "repaid_on": "2026-06-01"},
        )
    )
    assert repaid["outstanding_principal_fen"] == 1_999_999
    # 2_400_000 x 1_999_999 / 3_000_000, rounded down
    assert repaid["exposure_fen"] == 1_599_999

    # Matures 2027-03-01: overdue from the 2nd, compensation 90 days after maturity.
    assert world.sweep("2027-03-01")["events"] == 0
    assert world.sweep("2027-03-02")["events"] == 1
    assert world.sweep("2027-03-02")["events"] == 0
    overdue = world.api.get("/api/v1/finance/overdue", role="guarantor").json()["loans"]
    assert [o["loan_id"] for o in overdue] == ["L1"]
    assert world.sweep("2027-05-29")["events"] == 0  # day 89
    # paid, shared, the fund draws its share (and stays above its floor)
    assert world.sweep("2027-05-30")["events"] == 3
    assert world.sweep("2027-05-30")["events"] == 0
    events = world.finance_events()
    by_type = {e["type"]: e["data"] for e in events}
    loss = 1_999_999  # outstanding, within the 2_400_000 guaranteed
    shared = by_type["LossShared"]
    assert shared["loss_fen"] == loss
    parts = [s["amount_fen"] for s in shared["shares"]]
    assert sum(parts) == loss
    # 4:3:2:1 of 1_999_999: floors leave 3 fen, to the three largest remainders (.9, .8, .7)
    assert parts == [799_999, 600_000, 400_000, 200_000]
    assert by_type["CompensationPaid"]["amount_fen"] == loss - 400_000
    assert by_type["CompensationPaid"]["days_overdue"] == 90
    assert by_type["RiskFundDrawn"]["amount_fen"] == 200_000

    # Recoveries go back pro rata to the losses; never more than the loss.
    before = len(events)
    world.rejected(
        world.guarantor("/loans/L1/recoveries", {"id": "RC0", "amount_fen": loss + 1}),
        "amount_fen",
        before,
    )
    created(world.guarantor("/loans/L1/recoveries", {"id": "RC1", "amount_fen": 1_000_003}))
    recovery = world.finance_events()[-1]["data"]
    assert sum(s["amount_fen"] for s in recovery["shares"]) == 1_000_003
    created(world.guarantor("/loans/L1/write-off", {"written_off_on": "2027-09-01"}))
    loan = world.api.get("/api/v1/finance/loans/L1", role="guarantor").json()
    assert loan["status"] == "closed"
    assert world.types()[-2:] == ["LossWrittenOff", "LoanClosed"]
    assert world.finance_events()[-2]["data"]["amount_fen"] == loss - 1_000_003

    history = world.get("/api/v1/finance/loans/L1/history", role="bank", bank="BANKA")
    assert [e["type"] for e in history.json()["events"]] == [
        "LoanApplied",
        "ApplicantRecommended",
        "DueDiligenceCompleted",
        "GuaranteeApproved",
        "GuaranteeContractSigned",
        "CounterGuaranteeRegistered",
        "LoanDisbursed",
        "GuaranteeFeeCharged",
        "RepaymentReceived",
        "LoanOverdue",
        "CompensationPaid",
        "LossShared",
        "RecoveryReceived",
        "LossWrittenOff",
        "LoanClosed",
    ]
