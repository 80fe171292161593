"""Finance over HTTP: a guaranteed loan from application to closing, and every guarantee rule
(a 422 naming the field, nothing written)."""

from __future__ import annotations

import pytest

from tests.test_finance_world import build_world, created

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
    created(
        world.guarantor("/loans/L1/guarantee-contract", {"id": "GC1", "signed_on": "2026-02-20"})
    )
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
            {
                "id": "R1",
                "principal_fen": 1_000_001,
                "interest_fen": 9_000,
                "repaid_on": "2026-06-01",
            },
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


@sqlite_only
def test_catalogue_rules(start_services):
    world = build_world(start_services)
    world.fund()
    before = len(world.finance_events())
    base = {"id": "S-bad", "district": "D1", "name": "x", "fund_id": "F1"}
    parties = [
        {"party_id": "G1", "party_type": "guarantor", "share_bp": 4000},
        {"party_id": "BANKA", "party_type": "bank", "share_bp": 2000},
    ]
    world.rejected(world.guarantor("/schemes", {**base, "parties": parties}), "parties", before)
    national = [
        {"party_id": "G1", "party_type": "guarantor", "share_bp": 6500},
        {"party_id": "NF", "party_type": "national_fund", "share_bp": 2000},
        {"party_id": "BANKA", "party_type": "bank", "share_bp": 1500},
    ]
    world.rejected(world.guarantor("/schemes", {**base, "parties": national}), "parties", before)
    world.scheme()
    before = len(world.finance_events())
    product = {
        "id": "P-bad",
        "district": "D1",
        "name": "虾蟹贷",
        "purposes": ["aquaculture"],
        "min_amount_fen": 100,
        "max_amount_fen": 1_000,
        "max_term_months": 12,
        "max_fee_rate_bp": 80,
        "scheme_id": "S4321",
    }
    too_big = {**product, "borrower_cap_fen": 1_000_000_001}  # over 1000万元
    world.rejected(world.guarantor("/products", too_big), "borrower_cap_fen", before)
    inverted = {**product, "borrower_cap_fen": 1_000, "min_amount_fen": 2_000}
    world.rejected(world.guarantor("/products", inverted), "min_amount_fen", before)


def test_application_and_guarantee_rules(start_services):
    world = build_world(start_services, banks=("BANKA", "BANKB"))
    world.fund(balance_fen=1_000_000)  # 10x leverage: 10_000_000 fen of guarantees
    world.scheme()
    world.product()
    before = len(world.finance_events())
    world.rejected(world.apply("X", purpose="housing"), "purpose", before)
    world.rejected(world.apply("X", principal_fen=99_999), "principal_fen", before)
    world.rejected(world.apply("X", term_months=37), "term_months", before)
    world.rejected(world.apply("X", village_id="NOWHERE"), "village_id", before)
    world.rejected(world.apply("X", bank_code="NOBANK"), "bank_code", before)

    created(world.apply("L1", principal_fen=8_000_000, borrower_id="B1"))
    before = len(world.finance_events())
    world.rejected(world.approve("L1", 1_000_000), "loan_id", before)  # no due diligence yet
    created(world.guarantor("/loans/L1/due-diligence", {"passed": True}))
    before = len(world.finance_events())
    world.rejected(world.approve("L1", 8_000_001), "guaranteed_fen", before)  # over principal
    world.rejected(world.approve("L1", 6_000_000, fee_rate_bp=81), "fee_rate_bp", before)
    created(world.approve("L1", 6_000_000))

    # The same borrower's second loan: 6_000_000 outstanding + more than the 30_000_000 cap is
    # refused; first the fund's leverage (10 x 1_000_000) is the tighter limit.
    created(world.apply("L2", principal_fen=8_000_000, borrower_id="B1", purpose="land_transfer"))
    created(world.guarantor("/loans/L2/due-diligence", {"passed": True}))
    before = len(world.finance_events())
    world.rejected(world.approve("L2", 4_000_001), "guaranteed_fen", before)  # fund leverage
    world.rejected(world.approve("L2", 1_000_000, fee_rate_bp=51), "fee_rate_bp", before)
    created(world.guarantor("/funds/F1/top-ups", {"amount_fen": 10_000_000}))
    leverage = world.get("/api/v1/finance/funds/F1").json()
    assert leverage["limit_fen"] == 110_000_000
    assert leverage["outstanding_guaranteed_fen"] == 6_000_000
    created(world.apply("L3", principal_fen=50_000_000, borrower_id="B1"))
    created(world.guarantor("/loans/L3/due-diligence", {"passed": True}))
    before = len(world.finance_events())
    world.rejected(world.approve("L3", 24_000_001), "guaranteed_fen", before)  # borrower cap
    created(world.approve("L3", 24_000_000))

    # Rejected applications cannot be approved; other banks' tokens see nothing of L1.
    created(world.apply("L4"))
    created(world.guarantor("/loans/L4/rejection", {"reason": "insufficient cash flow"}))
    before = len(world.finance_events())
    world.rejected(world.approve("L4", 1_000), "loan_id", before)
    assert world.get("/api/v1/finance/loans/L1", role="bank", bank="BANKB").status_code == 403
    response = world.bank("BANKB", "/loans/L1/disbursement", {"disbursed_on": "2026-03-01"})
    world.rejected(response, "bank", before, status=403)
    exposure = world.get("/api/v1/finance/exposure", params={"by": "borrower"}).json()
    assert exposure["exposure"] == [
        {"key": "B1", "outstanding_guaranteed_fen": 30_000_000, "loans": 2}
    ]
    by_bank = world.get("/api/v1/finance/exposure", role="bank", bank="BANKB").json()
    assert by_bank["exposure"] == []


@sqlite_only
def test_disbursement_needs_the_guarantee_contract(start_services):
    world = build_world(start_services)
    world.fund()
    world.scheme()
    world.product()
    world.approved("L1")
    before = len(world.finance_events())
    response = world.bank("BANKA", "/loans/L1/disbursement", {"disbursed_on": "2026-03-01"})
    world.rejected(response, "loan_id", before)
    created(world.guarantor("/loans/L1/guarantee-contract", {"id": "GC1"}))
    created(world.bank("BANKA", "/loans/L1/disbursement", {"disbursed_on": "2026-03-01"}))
    before = len(world.finance_events())
    response = world.bank("BANKA", "/loans/L1/repayments", {"id": "R1", "principal_fen": 3_000_001})
    world.rejected(response, "principal_fen", before)
    created(
        world.bank(
            "BANKA",
            "/loans/L1/repayments",
            {"id": "R1", "principal_fen": 3_000_000, "repaid_on": "2026-09-01"},
        )
    )
    assert world.types()[-1] == "LoanClosed"
    assert world.sweep("2028-01-01")["events"] == 0  # a closed loan is never overdue


@sqlite_only
def test_fund_below_floor_blocks_new_guarantees_until_topped_up(start_services):
    world = build_world(start_services)
    # 20x leverage, 5 % floor: 350_000 covers 5_000_000 outstanding. The fund pays its 10 %
    # of a 3_000_000 loss and holds 50_000: below 5 % of the 2_000_000 still guaranteed.
    world.fund(balance_fen=350_000, leverage_times=20, floor_bp=500)
    world.scheme()
    world.product()
    world.disbursed("L1", guaranteed_fen=3_000_000)
    world.approved("L2", guaranteed_fen=2_000_000)
    assert world.sweep("2027-05-30")["events"] == 5  # overdue, paid, shared, drawn, below floor
    assert world.types()[-1] == "RiskFundBelowFloor"
    assert world.sweep("2027-06-30")["events"] == 0
    created(world.apply("L3"))
    created(world.guarantor("/loans/L3/due-diligence", {"passed": True}))
    before = len(world.finance_events())
    world.rejected(world.approve("L3", 100_000), "fund_id", before)
    created(world.guarantor("/funds/F1/top-ups", {"amount_fen": 1_000_000}))
    created(world.approve("L3", 100_000))


def test_a_fund_is_read_by_the_guarantor_the_district_and_ops_and_by_its_party_banks_only(
    start_services,
):
    world = build_world(start_services, banks=("BANKA", "BANKB"))
    world.fund()
    world.scheme(bank="BANKA")  # BANKA shares the risk of F1's guarantees
    world.fund("F2")
    world.scheme("S-F2", fund_id="F2", bank="BANKB")
    path = "/api/v1/finance/funds/F1"

    def status(role: str, **claims) -> int:
        return world.get(path, role=role, **claims).status_code

    assert status("guarantor", district="D1") == 200
    assert status("district_admin", district="D1") == 200
    assert status("ops") == 200
    assert world.get(path, role="bank", bank="BANKA").json()["fund_id"] == "F1"
    for role, claims, field in (
        ("bank", {"bank": "BANKB"}, "bank"),
        ("bank", {}, "bank"),
        ("guarantor", {"district": "D2"}, "district"),
        ("district_admin", {"district": "D2"}, "district"),
    ):
        response = world.get(path, role=role, **claims)
        assert response.status_code == 403, (role, claims, response.text)
        assert field in response.json()["errors"], response.text
    assert status("village_cadre", village=world.villages[0]) == 403
    assert status("household") == 403
    assert world.get("/api/v1/finance/funds/F2", role="bank", bank="BANKB").status_code == 200
    assert world.get("/api/v1/finance/funds/F2", role="bank", bank="BANKA").status_code == 403


def test_a_guarantor_profile_limits_its_guarantees_by_its_net_assets(start_services):
    world = build_world(start_services)
    world.fund()  # 10x 2_000_000: the fund is not the binding limit here
    world.scheme()
    world.product()
    # Guarantees G1 gave before it had a profile count against its limits once it has one.
    for loan_id, amount in (("L1", 3_000_000), ("L2", 3_000_000), ("L3", 3_000_000)):
        world.approved(loan_id, amount)
    world.approved("L4", 850_000)
    profile = {"id": "G1", "district": "D1", "name": "农担公司", "net_assets_fen": 1_000_000}
    before = len(world.finance_events())
    for field, bad in (
        ("leverage_times", {"leverage_times": 16}),
        ("leverage_times", {"leverage_times": 9}),
        ("net_assets_fen", {"net_assets_fen": 0}),
        ("net_assets_fen", {"net_assets_fen": "lots"}),
    ):
        world.rejected(world.guarantor("/guarantors", {**profile, **bad}), field, before)
    created(world.guarantor("/guarantors", profile))  # 10x: 10_000_000; one borrower 100_000
    assert world.guarantor("/guarantors", profile).status_code == 409

    created(world.apply("L5"))
    created(world.guarantor("/loans/L5/due-diligence", {"passed": True}))
    before = len(world.finance_events())
    world.rejected(world.approve("L5", 100_001), "guaranteed_fen", before)  # over 10 % of assets
    created(world.approve("L5", 100_000))  # 9_950_000 outstanding
    created(world.apply("L6"))
    created(world.guarantor("/loans/L6/due-diligence", {"passed": True}))
    before = len(world.finance_events())
    world.rejected(world.approve("L6", 60_000), "guaranteed_fen", before)  # over 10x assets
    created(world.approve("L6", 50_000))
    exposure = world.get("/api/v1/finance/exposure", params={"by": "guarantor"}).json()
    assert exposure["exposure"] == [
        {"key": "G1", "outstanding_guaranteed_fen": 10_000_000, "loans": 6}
    ]
    # Another guarantor without a profile keeps the limits it had: principal, borrower, fund.
    created(world.apply("L7"))
    created(world.guarantor("/loans/L7/due-diligence", {"passed": True}))
    body = {"guarantor_id": "G2", "guaranteed_fen": 3_000_000, "fee_rate_bp": 50}
    created(world.guarantor("/loans/L7/approval", body))
