"""Land-right pledges from land events (a stub land service appends the contract's events),
and collective income fed by land, commerce and trusteeship events, exactly once."""

from __future__ import annotations

import pytest

from tests.test_finance_world import (
    StubCommerce,
    StubLand,
    StubTrusteeship,
    build_world,
    created,
    wait_for,
)

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def contract(world, contract_id: str, *, filed: bool = True, ends_on: str = "2029-12-31") -> None:
    signed = {
        "contract_id": contract_id,
        "parcel_id": f"P-{contract_id}",
        "village_id": world.villages[0],
        "district": "D1",
        "transferee_id": "coop-1",
        "transferee_type": "cooperative",
        "area_mu": "120.00",
        "starts_on": "2025-01-01",
        "ends_on": ends_on,
        "rent_fen_per_mu_year": 80_000,
        "signed_on": "2024-12-20",
    }
    world.raw("land", "TransferContract", contract_id, "TransferContractSigned", signed)
    if filed:
        filing = {
            "contract_id": contract_id,
            "parcel_id": f"P-{contract_id}",
            "village_id": world.villages[0],
            "filed_on": "2025-01-05",
        }
        world.raw("land", "TransferContract", contract_id, "TransferContractFiled", filing)


def known(world, contract_id: str, what: str = "signed") -> None:
    from sqlalchemy import create_engine, select

    from services.finance.projections import land_contracts

    def seen() -> bool:
        url = world.api.database_url.replace("{service}", "finance")
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as db:
                row = db.execute(
                    select(land_contracts).where(land_contracts.c.contract_id == contract_id)
                ).first()
            return row is not None and bool(getattr(row, what))
        finally:
            engine.dispose()

    wait_for(seen, what=f"contract {contract_id} {what}")


def pledge(world, loan_id: str, contract_id: str, **kwargs):
    body = {
        "id": f"PL-{loan_id}-{contract_id}",
        "contract_id": contract_id,
        "appraised_value_fen": 6_000_000,
        "amount_fen": 3_000_000,
        "owner_consent_on": "2026-02-15",
        "pledged_on": "2026-02-20",
        **kwargs,
    }
    return world.guarantor(f"/loans/{loan_id}/pledges", body)


def test_land_right_pledge_rules(start_services):
    world = build_world(start_services, StubLand)
    world.fund()
    world.scheme()
    world.product(requires_land_pledge=True, pledge_ltv_bp=5000, pledge_margin_days=365)
    contract(world, "TC1")
    contract(world, "TC-unfiled", filed=False)
    contract(world, "TC-short", ends_on="2027-12-31")
    contract(world, "TC-ended")
    world.raw(
        "land",
        "TransferContract",
        "TC-ended",
        "ContractTerminated",
        {
            "contract_id": "TC-ended",
            "parcel_id": "P-TC-ended",
            "village_id": world.villages[0],
            "area_mu": "120.00",
            "reason": "abandoned",
            "terminated_on": "2026-01-10",
        },
    )
    known(world, "TC-ended", "terminated")
    known(world, "TC1", "filed")
    world.approved("L1")
    created(world.guarantor("/loans/L1/guarantee-contract", {"id": "GC1"}))
    before = len(world.finance_events())
    # No disbursement before the required pledge.
    response = world.bank("BANKA", "/loans/L1/disbursement", {"disbursed_on": "2026-03-01"})
    world.rejected(response, "pledge", before)
    world.rejected(pledge(world, "L1", "TC-unknown"), "contract_id", before)
    world.rejected(pledge(world, "L1", "TC-unfiled"), "contract_id", before)
    world.rejected(pledge(world, "L1", "TC-ended"), "contract_id", before)
    # 12 months from 2026-02-20 ends after 2027-12-31 less 365 days.
    world.rejected(pledge(world, "L1", "TC-short"), "contract_id", before)
    world.rejected(pledge(world, "L1", "TC1", amount_fen=3_000_001), "amount_fen", before)
    created(pledge(world, "L1", "TC1"))
    pledged = world.finance_events()[-1]
    assert pledged["type"] == "LandRightPledged"
    assert pledged["stream_id"] == "pledge.TC1"
    for field in ("pledge_id", "loan_id", "contract_id", "bank_code", "pledged_on"):
        assert pledged["data"][field]
    world.approved("L2", borrower_id="B-other")
    before = len(world.finance_events())
    world.rejected(pledge(world, "L2", "TC1"), "contract_id", before)  # already pledged

    created(world.bank("BANKA", "/loans/L1/disbursement", {"disbursed_on": "2026-03-01"}))
    before = len(world.finance_events())
    world.rejected(world.guarantor("/loans/L1/pledge-release", {}), "loan_id", before)
    created(world.bank("BANKA", "/loans/L1/repayments", {"id": "R1", "principal_fen": 3_000_000}))
    created(world.guarantor("/loans/L1/pledge-release", {"released_on": "2026-12-01"}))
    assert world.types()[-1] == "PledgeReleased"
    created(pledge(world, "L2", "TC1", id="PL-2"))  # free again
    history = world.get("/api/v1/finance/loans/L1/history").json()["events"]
    assert [e["type"] for e in history if "Pledge" in e["type"]] == [
        "LandRightPledged",
        "PledgeReleased",
    ]


def test_collective_income_from_other_services_exactly_once(start_services):
    world = build_world(start_services, StubLand, StubCommerce, StubTrusteeship, villages=2)
    v1, v2 = world.villages
    fee = world.raw(
        "land",
        "TransferContract",
        "TC9",
        "ManagementFeeCollected",
        {
            "contract_id": "TC9",
            "village_id": v1,
            "amount_fen": 12_000,
            "collected_on": "2026-03-01",
        },
    )
    rent = world.raw(
        "land",
        "RentInvoice",
        "INV-1",
        "RentPaid",
        {
            "invoice_id": "INV-1",
            "contract_id": "TC9",
            "village_id": v1,
            "amount_fen": 100_000,
            "shares": [
                {"payee_id": "H1", "payee_type": "household", "amount_fen": 70_000},
                {"payee_id": v1, "payee_type": "collective", "amount_fen": 30_000},
            ],
            "paid_on": "2026-03-02",
        },
    )
    settled = {
        "settlement_id": "ST1",
        "producer_id": "coop",
        "village_id": v2,
        "net_revenue_fen": 50_000,
        "fees_fen": 5_000,
        "amount_fen": 45_000,
        "settled_on": "2026-03-03",
    }
    sale = world.raw(
        "commerce",
        "ProducerSettlement",
        "ST1",
        "ProducerSettled",
        {**settled, "producer_type": "collective"},
    )
    world.raw(
        "commerce",
        "ProducerSettlement",
        "ST2",
        "ProducerSettled",
        {**settled, "settlement_id": "ST2", "producer_type": "household"},
    )
    service = world.raw(
        "trusteeship",
        "Settlement",
        "SF1",
        "ServiceFeeSettled",
        {
            "settlement_id": "SF1",
            "order_id": "O1",
            "provider_id": "team-v2",
            "village_id": v1,
            "amount_fen": 8_000,
            "collective_village_id": v2,
            "settled_on": "2026-03-04",
        },
    )
    world.raw(
        "trusteeship",
        "Settlement",
        "SF2",
        "ServiceFeeSettled",
        {
            "settlement_id": "SF2",
            "order_id": "O2",
            "provider_id": "private",
            "village_id": v1,
            "amount_fen": 9_000,
            "collective_village_id": None,
            "settled_on": "2026-03-04",
        },
    )
    wait_for(lambda: world.types().count("IncomeRecorded") >= 4, what="four incomes")
    incomes = [e["data"] for e in world.finance_events() if e["type"] == "IncomeRecorded"]
    assert sorted((i["source"], i["source_event_id"], i["amount_fen"]) for i in incomes) == sorted(
        [
            ("land", fee, 12_000),
            ("land", rent, 30_000),
            ("commerce", sale, 45_000),
            ("trusteeship", service, 8_000),
        ]
    )
    cluster = world.get("/api/v1/finance/collective/clusters/C1", role="district_admin").json()
    assert cluster["income_fen"] == 95_000
    village = world.get(f"/api/v1/finance/collective/villages/{v2}", role="district_admin")
    assert village.json()["income_by_source"] == {"commerce": 45_000, "trusteeship": 8_000}
    # Catch-up re-reads the sources: still each income once.
    assert world.types().count("IncomeRecorded") == 4
