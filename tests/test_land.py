"""The land service over HTTP: the listing-to-rent path and the rules of parcels, entrustments,
contracts, rent and abandoned land."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from services.alliance.service import AllianceService
from services.land.domain import add_working_days, split_fen
from services.land.service import LandService
from tests.test_land_support import (
    STAFF,
    FinanceStub,
    at,
    bid,
    created,
    entrust,
    land_events,
    listing_body,
    make_village,
    open_listing,
    qualify,
    register_parcel,
    rejected,
    sweep,
    wait_for,
)

FAST = {"LAND_MIN_BIDDERS": 2}


def of_type(events: list[dict[str, Any]], type_name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == type_name]


def test_listing_to_rent(start_services: Any) -> None:
    api = start_services(LandService, AllianceService, **FAST)
    make_village(api, "V-1")
    register_parcel(api, "P-1", "V-1")
    entrust(api, "P-1", "E-1")
    open_listing(api, "LS-1", "P-1", registration=timedelta(seconds=1.5))
    qualify(api, "LS-1", "B-1")
    qualify(api, "LS-1", "B-2")
    time.sleep(1.6)
    sweep(api, at(timedelta(0)))
    assert api.get("/api/v1/land/listings/LS-1").json()["state"] == "bidding"
    for bidder, amount in (("B-1", 80000), ("B-2", 81000), ("B-1", 83000)):
        assert bid(api, "LS-1", bidder, amount).status_code == 201
    listed = api.get("/api/v1/land/listings", params={"village_id": "V-1"}).json()
    assert listed[0]["high_bid_fen_per_mu_year"] == 83000
    assert listed[0]["high_bidder_id"] == "B-1"

    sweep(api, at(timedelta(hours=2)))
    listing = api.get("/api/v1/land/listings/LS-1").json()
    assert listing["state"] == "awarded"
    assert listing["award"]["bidder_id"] == "B-1"
    awarded_on = listing["award"]["awarded_on"]
    from datetime import date

    assert (
        listing["award"]["payment_due_on"]
        == add_working_days(date.fromisoformat(awarded_on), 3).isoformat()
    )
    first_year = 83000 * 2033 // 100  # 20.33 mu at 830 yuan
    created(api, "/api/v1/land/listings/LS-1/winner-payments", {"amount_fen": first_year})
    created(api, "/api/v1/land/listings/LS-1/bidders/B-2/refunds", {})
    rejected(api, "/api/v1/land/listings/LS-1/bidders/B-2/refunds", {}, "bidder_id")

    contract = created(
        api,
        "/api/v1/land/contracts",
        {
            "id": "C-1",
            "listing_id": "LS-1",
            "transferee_id": "B-1",
            "transferee_type": "cooperative",
            "management_fee_bp": 300,
            "signed_on": "2026-11-25",
        },
    )
    assert contract["facts"]["rent_fen_per_mu_year"] == 83000
    created(api, "/api/v1/land/listings/LS-1/bidders/B-1/refunds", {})  # converted after signing
    created(api, "/api/v1/land/contracts/C-1/filings", {"filed_on": "2026-11-26"})
    created(api, "/api/v1/land/contracts/C-1/certificates", {"certificate_no": "JZ-2026-1"})

    # Rent: invoiced 30 days ahead, paid in two parts, split to the fen.
    assert sweep(api, "2026-11-30")["events"] == 0
    sweep(api, "2026-12-05")
    invoice = api.get("/api/v1/land/contracts/C-1").json()["invoices"]["C-1/Y1"]
    assert invoice["amount_fen"] == first_year == 1687390
    for part in (1000001, 687389):
        created(
            api,
            "/api/v1/land/contracts/C-1/rent-payments",
            {"invoice_id": "C-1/Y1", "amount_fen": part, "paid_on": "2026-12-20"},
            role={"role": "village_cadre", "village": "V-1"},
        )
    events = land_events(api)
    paid = of_type(events, "RentPaid")
    fees = of_type(events, "ManagementFeeCollected")
    for payment in paid:
        assert (
            sum(s["amount_fen"] for s in payment["data"]["shares"]) == payment["data"]["amount_fen"]
        )
    assert [f["data"]["amount_fen"] for f in fees] == [30000, 20621]  # floor of 3 % cumulative
    assert sum(f["data"]["amount_fen"] for f in fees) == 1687390 * 300 // 10000
    household_total = sum(
        s["amount_fen"] for p in paid for s in p["data"]["shares"] if s["payee_type"] == "household"
    )
    assert household_total + 50621 == 1687390
    rejected(
        api,
        "/api/v1/land/contracts/C-1/rent-payments",
        {"invoice_id": "C-1/Y1", "amount_fen": 1},
        "amount_fen",
    )

    # The second year is invoiced and, unpaid after its due day, flagged overdue exactly once.
    sweep(api, "2028-01-02")
    assert sweep(api, "2028-01-02")["events"] == 0
    assert sweep(api, "2028-01-03")["events"] == 0
    overdue = api.get("/api/v1/land/rent/invoices", params={"status": "overdue"}).json()
    assert [i["invoice_id"] for i in overdue] == ["C-1/Y2"]
    assert len(of_type(land_events(api), "RentOverdue")) == 1

    # Queries: transfer rate, contracts by village and by cluster, availability.
    rate = api.get("/api/v1/land/villages/V-1/transfer-rate", params={"on": "2027-06-01"}).json()
    assert rate["transferred_mu"] == "20.33" and rate["transfer_rate"] == "0.0203"
    by_cluster = api.get(
        "/api/v1/land/contracts", params={"cluster_id": "C-1", "on": "2027-06-01"}
    ).json()
    assert [c["contract_id"] for c in by_cluster] == ["C-1"]
    by_village = api.get("/api/v1/land/contracts", params={"village_id": "V-1"}).json()
    assert by_village[0]["status"] == "certified"
    stretches = api.get(
        "/api/v1/land/parcels/P-1/availability", params={"from": "2026-12-01", "to": "2032-12-31"}
    ).json()
    assert [(s["from_on"], s["available_mu"]) for s in stretches] == [
        ("2026-12-01", "20.33"),
        ("2027-01-01", "0.00"),
        ("2032-01-01", "20.33"),
    ]

    signed = of_type(events, "TransferContractSigned")[0]["data"]
    for name in (
        "contract_id", "parcel_id", "village_id", "district", "transferee_id", "transferee_type",
        "area_mu", "starts_on", "ends_on", "rent_fen_per_mu_year", "signed_on",
    ):  # fmt: skip
        assert name in signed
    assert signed["area_mu"] == "20.33" and signed["district"] == "D1"
    filed = of_type(events, "TransferContractFiled")[0]["data"]
    assert filed == {
        "contract_id": "C-1",
        "parcel_id": "P-1",
        "village_id": "V-1",
        "filed_on": "2026-11-26",
    }


@pytest.mark.parametrize("backend", ["sqlite"])
def test_parcel_and_contract_rules(start_services: Any) -> None:
    api = start_services(LandService, AllianceService)
    make_village(api, "V-2")
    parcel = {
        "id": "P-2",
        "village_id": "V-9",
        "household_id": "H-1",
        "area_mu": "20.33",
        "land_class": "paddy",
        "basic_farmland": True,
        "contract_period_ends_on": "2040-12-31",
    }
    rejected(api, "/api/v1/land/parcels", parcel, "village_id")
    rejected(api, "/api/v1/land/parcels", parcel | {"area_mu": "1.234"}, "area_mu")
    rejected(api, "/api/v1/land/parcels", parcel | {"id": "bad id!"}, "id")
    register_parcel(api, "P-2", "V-2", basic_farmland=True)
    rejected(
        api,
        "/api/v1/land/parcels/P-2/entrustments",
        {
            "id": "E-x",
            "household_id": "H-2",
            "agent": "exchange",
            "area_mu": "10",
            "starts_on": "2027-01-01",
            "ends_on": "2030-12-31",
            "floor_fen_per_mu_year": 1,
        },
        "household_id",
    )
    # A household entrusts its own parcel only.
    rejected(
        api,
        "/api/v1/land/parcels/P-2/entrustments",
        {
            "id": "E-x",
            "household_id": "H-1",
            "agent": "exchange",
            "area_mu": "10",
            "starts_on": "2027-01-01",
            "ends_on": "2030-12-31",
            "floor_fen_per_mu_year": 1,
        },
        "household_id",
        status=403,
        role={"role": "household", "subject": "H-7"},
    )
    entrust(api, "P-2", "E-1", area_mu="15.00")

    listings = "/api/v1/land/listings"
    rejected(api, listings, listing_body("LS-2", "P-2", entrustment_id=None), "entrustment_id")
    rejected(api, listings, listing_body("LS-2", "P-2"), "area_mu")  # above the entrusted 15 mu
    rejected(
        api, listings, listing_body("LS-2", "P-2", area_mu="10", ends_on="2041-12-31"), "ends_on"
    )
    rejected(
        api,
        listings,
        listing_body("LS-2", "P-2", area_mu="10", reserve_fen_per_mu_year=60000),
        "reserve_fen_per_mu_year",
    )
    rejected(
        api, listings, listing_body("LS-2", "P-2", area_mu="10", land_use="orchard"), "land_use"
    )
    created(api, listings, listing_body("LS-2", "P-2", area_mu="10"))
    rejected(api, "/api/v1/land/parcels/P-2/entrustments/E-1/revocations", {}, "entrustment_id")

    # Double transfer: the listed 10 mu plus a contract for 11 mu overlapping by one year.
    direct = {
        "id": "C-2",
        "parcel_id": "P-2",
        "transferee_id": "F-1",
        "transferee_type": "family_farm",
        "area_mu": "11.00",
        "starts_on": "2031-01-01",
        "ends_on": "2033-12-31",
        "land_use": "grain",
        "rent_fen_per_mu_year": 90000,
        "entrustment_id": "E-1",
        "signed_on": "2026-11-25",
    }
    rejected(api, "/api/v1/land/contracts", direct, "area_mu")
    rejected(api, "/api/v1/land/contracts", direct | {"ends_on": "2041-01-01"}, "ends_on")
    rejected(api, "/api/v1/land/contracts", direct | {"reason": "x"}, "reason")
    # After the listing's term the whole parcel is free again; a partial area fits beside it.
    created(api, "/api/v1/land/contracts", direct | {"starts_on": "2032-01-01"})
    created(api, "/api/v1/land/contracts", direct | {"id": "C-3", "area_mu": "4.00"})
    # 11 + 4 mu of the 15 entrusted are in use in 2032: not one hundredth more.
    rejected(api, "/api/v1/land/contracts", direct | {"id": "C-4", "area_mu": "0.01"}, "area_mu")

    # Corporate transferees above the threshold need an approved review first.
    register_parcel(api, "P-3", "V-2", household_id=None, area_mu="120.00")
    company = direct | {
        "id": "C-5",
        "parcel_id": "P-3",
        "area_mu": "80.00",
        "transferee_id": "CO-1",
        "transferee_type": "company",
        "entrustment_id": None,
    }
    rejected(api, "/api/v1/land/contracts", company, "corporate_review_id")
    created(
        api,
        "/api/v1/land/corporate-reviews",
        {
            "id": "R-1",
            "transferee_id": "CO-1",
            "village_id": "V-2",
            "area_mu": "100",
            "project": "rice",
        },
    )
    rejected(
        api,
        "/api/v1/land/contracts",
        company | {"corporate_review_id": "R-1"},
        "corporate_review_id",
    )
    created(
        api,
        "/api/v1/land/corporate-reviews/R-1/decisions",
        {"approved": True, "opinion": "capable"},
        role={"role": "district_admin", "district": "D1"},
    )
    created(api, "/api/v1/land/contracts", company | {"corporate_review_id": "R-1"})

    # A household signs for its own parcel without an entrustment.
    register_parcel(api, "P-4", "V-2", household_id="H-4", area_mu="8.00")
    own = direct | {"id": "C-6", "parcel_id": "P-4", "area_mu": "8.00", "entrustment_id": None}
    rejected(api, "/api/v1/land/contracts", own, "entrustment_id")
    created(api, "/api/v1/land/contracts", own | {"household_signed": True}, role={
        "role": "household", "subject": "H-4"})  # fmt: skip

    # Termination only for a legal reason, inside the term, once.
    termination = "/api/v1/land/contracts/C-6/terminations"
    rejected(api, termination, {"reason": "found_a_better_offer"}, "reason")
    rejected(
        api,
        termination,
        {"reason": "serious_breach", "terminated_on": "2040-01-01"},
        "terminated_on",
    )
    created(api, termination, {"reason": "changed_agricultural_use", "terminated_on": "2032-06-01"})
    rejected(
        api, termination, {"reason": "serious_breach", "terminated_on": "2032-07-01"}, "contract_id"
    )
    free = api.get(
        "/api/v1/land/parcels/P-4/availability", params={"from": "2032-05-31", "to": "2032-06-01"}
    ).json()
    assert [s["available_mu"] for s in free] == ["0.00", "8.00"]

    # Amending and terminating a listing; then the entrustment it relied on may be revoked.
    amend = "/api/v1/land/listings/LS-2/amendments"
    rejected(api, amend, {"reason": "early", "reserve_fen_per_mu_year": 80000}, "listing_id")
    created(api, "/api/v1/land/listings/LS-2/reviews", {"approved": True, "opinion": "ok"})
    rejected(
        api, amend, {"reason": "lower", "reserve_fen_per_mu_year": 60000}, "reserve_fen_per_mu_year"
    )
    created(api, amend, {"reason": "lower", "reserve_fen_per_mu_year": 75000})
    created(api, "/api/v1/land/listings/LS-2/terminations", {"reason": "household withdrew"})
    assert "LS-2" not in api.get("/api/v1/land/parcels/P-2").json()["commitments"]
    created(api, "/api/v1/land/parcels/P-2/entrustments/E-1/revocations", {})


@pytest.mark.parametrize("backend", ["sqlite"])
def test_pledged_contract_cannot_be_terminated_or_retransferred(start_services: Any) -> None:
    api = start_services(LandService, AllianceService, FinanceStub)
    make_village(api, "V-3")
    register_parcel(api, "P-5", "V-3", household_id="H-5", area_mu="10.00")
    created(
        api,
        "/api/v1/land/contracts",
        {
            "id": "C-7",
            "parcel_id": "P-5",
            "transferee_id": "F-7",
            "transferee_type": "family_farm",
            "area_mu": "10.00",
            "starts_on": "2027-01-01",
            "ends_on": "2030-12-31",
            "land_use": "grain",
            "rent_fen_per_mu_year": 90000,
            "household_signed": True,
        },
        role={"role": "household", "subject": "H-5"},
    )
    created(api, "/api/v1/land/contracts/C-7/filings", {})
    pledge = {"pledge_id": "PL-1", "loan_id": "LN-1", "contract_id": "C-7", "bank_code": "B01"}
    created(
        api,
        "/api/v1/finance/raw-events",
        {"type": "LandRightPledged", "data": pledge | {"pledged_on": "2027-02-01"}},
        role={"role": "ops"},
    )
    wait_for(
        lambda: api.get("/api/v1/land/contracts/C-7/pledge").json()["pledge"],
        what="the pledge to reach land",
    )
    termination = {"reason": "serious_breach", "terminated_on": "2028-01-01"}
    problem = rejected(api, "/api/v1/land/contracts/C-7/terminations", termination, "contract_id")
    assert "pledged" in problem["detail"]
    reassignment = {
        "transferee_id": "F-8",
        "transferee_type": "family_farm",
        "household_consent": True,
    }
    rejected(api, "/api/v1/land/contracts/C-7/reassignments", reassignment, "contract_id")
    created(
        api,
        "/api/v1/finance/raw-events",
        {"type": "PledgeReleased", "data": pledge | {"released_on": "2027-12-01"}},
        role={"role": "ops"},
    )
    wait_for(
        lambda: api.get("/api/v1/land/contracts/C-7/pledge").json()["pledge"] is None,
        what="the release to reach land",
    )
    rejected(
        api,
        "/api/v1/land/contracts/C-7/reassignments",
        reassignment | {"household_consent": False},
        "household_consent",
    )
    created(api, "/api/v1/land/contracts/C-7/reassignments", reassignment)
    created(api, "/api/v1/land/contracts/C-7/terminations", termination)
    terminated = of_type(land_events(api), "ContractTerminated")[0]["data"]
    assert terminated == {
        "contract_id": "C-7",
        "parcel_id": "P-5",
        "village_id": "V-3",
        "area_mu": "10.00",
        "reason": "serious_breach",
        "terminated_on": "2028-01-01",
    }
    # A pledge that reaches land after the termination is refused on the contract's stream.
    late = pledge | {"pledge_id": "PL-2", "loan_id": "LN-2"}
    created(
        api,
        "/api/v1/finance/raw-events",
        {"type": "LandRightPledged", "data": late | {"pledged_on": "2028-02-01"}},
        role={"role": "ops"},
    )
    wait_for(
        lambda: of_type(land_events(api), "ContractPledgeRefused"), what="the late pledge refused"
    )
    assert api.get("/api/v1/land/contracts/C-7/pledge").json()["pledge"] is None
    # Every pledge fact is on the contract's own stream, in the order it was decided.
    stream = [e["type"] for e in land_events(api) if e["stream_id"] == "C-7"]
    assert stream == [
        "TransferContractSigned",
        "TransferContractFiled",
        "ContractPledgeRecorded",
        "ContractPledgeReleased",
        "ContractReassigned",
        "ContractTerminated",
        "ContractPledgeRefused",
    ]


def test_a_pledge_racing_a_termination_is_serialised(start_services: Any) -> None:
    """Pledges and terminations of the same contracts at the same moment: on each contract's
    stream either the pledge came first and the termination was refused, or the termination came
    first and the pledge was refused; never a terminated contract with a pledge in force."""
    api = start_services(LandService, AllianceService, FinanceStub)
    make_village(api, "V-8")
    contracts = [f"C-8{n}" for n in range(4)]
    register_parcel(api, "P-8", "V-8", household_id="H-8", area_mu="10.00")
    household = {"role": "household", "subject": "H-8"}
    for contract_id in contracts:
        created(
            api,
            "/api/v1/land/contracts",
            {
                "id": contract_id,
                "parcel_id": "P-8",
                "transferee_id": "F-8",
                "transferee_type": "family_farm",
                "area_mu": "2.50",
                "starts_on": "2027-01-01",
                "ends_on": "2030-12-31",
                "land_use": "grain",
                "rent_fen_per_mu_year": 90000,
                "household_signed": True,
            },
            role=household,
        )

    def pledge(contract_id: str) -> int:
        data = {
            "pledge_id": f"PL-{contract_id}",
            "loan_id": f"LN-{contract_id}",
            "contract_id": contract_id,
            "bank_code": "B01",
            "pledged_on": "2027-02-01",
        }
        return api.post(
            "/api/v1/finance/raw-events",
            {"type": "LandRightPledged", "data": data},
            role="ops",
        ).status_code

    def terminate(contract_id: str) -> Any:
        return api.post(
            f"/api/v1/land/contracts/{contract_id}/terminations",
            {"reason": "mutual_agreement", "terminated_on": "2028-01-01"},
            **household,
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        pledged = [pool.submit(pledge, c) for c in contracts]
        terminations = list(pool.map(terminate, contracts))
    assert [f.result() for f in pledged] == [201] * len(contracts)

    def decided() -> bool:
        outcomes = ("ContractPledgeRecorded", "ContractPledgeRefused")
        return sum(e["type"] in outcomes for e in land_events(api)) == len(contracts)

    wait_for(decided, what="every pledge decided by land")
    events = land_events(api)
    for contract_id, response in zip(contracts, terminations, strict=True):
        stream = [e for e in events if e["stream_id"] == contract_id]
        assert [e["version"] for e in stream] == list(range(1, len(stream) + 1))
        types = [e["type"] for e in stream][1:]
        if response.status_code == 201:
            assert types == ["ContractTerminated", "ContractPledgeRefused"], types
        else:
            assert response.status_code == 422, response.text
            assert "contract_id" in response.json()["errors"]
            assert types == ["ContractPledgeRecorded"], types


@pytest.mark.parametrize("backend", ["sqlite"])
def test_abandoned_land_ledger(start_services: Any) -> None:
    api = start_services(LandService, AllianceService)
    make_village(api, "V-4")
    cadre = {"role": "village_cadre", "village": "V-4"}
    report = {"id": "AB-1", "village_id": "V-4", "area_mu": "3.50", "reason": "labour left"}
    rejected(api, "/api/v1/land/abandoned-land", report | {"village_id": "V-5"}, "village_id")
    rejected(
        api,
        "/api/v1/land/abandoned-land",
        report,
        "village",
        status=403,
        role={"role": "village_cadre", "village": "V-5"},
    )
    created(api, "/api/v1/land/abandoned-land", report | {"reported_on": "2026-03-01"}, role=cadre)
    created(api, "/api/v1/land/abandoned-land", report | {"id": "AB-2", "area_mu": "1"}, role=cadre)
    rejected(api, "/api/v1/land/abandoned-land/AB-1/reclamations", {"area_mu": "3.5"}, "case_id")
    assignment = {"mode": "collective", "assignee_id": "V-4", "assigned_on": "2026-04-01"}
    rejected(
        api, "/api/v1/land/abandoned-land/AB-1/assignments", assignment | {"mode": "x"}, "mode"
    )
    created(api, "/api/v1/land/abandoned-land/AB-1/assignments", assignment, role=cadre)
    rejected(api, "/api/v1/land/abandoned-land/AB-1/reclamations", {"area_mu": "3"}, "area_mu")
    created(api, "/api/v1/land/abandoned-land/AB-1/reclamations", {"area_mu": "3.50"}, role=cadre)
    rejected(api, "/api/v1/land/abandoned-land/AB-1/reclamations", {"area_mu": "3.5"}, "case_id")
    ledger = api.get("/api/v1/land/villages/V-4/abandoned-land").json()
    assert ledger["open_items"] == 1
    assert (ledger["reported_mu"], ledger["reclaimed_mu"], ledger["open_mu"]) == (
        "4.50",
        "3.50",
        "1.00",
    )
    assert [i["status"] for i in ledger["items"]] == ["reclaimed", "reported"]


def test_split_adds_up_to_the_fen() -> None:
    shares = split_fen(100, {"a": 1, "b": 1, "c": 1})
    assert shares == {"a": 34, "b": 33, "c": 33}
    for total in (0, 1, 7, 99999, 1687391):
        assert sum(split_fen(total, {"x": 3, "y": 5, "z": 7}).values()) == total
    from datetime import date

    assert add_working_days(date(2026, 11, 27), 3) == date(2026, 12, 2)  # Friday + 3
    holiday = frozenset({date(2026, 11, 30)})
    assert add_working_days(date(2026, 11, 27), 3, holiday) == date(2026, 12, 3)


def test_rent_split_among_co_contractors(start_services: Any) -> None:
    """A family's contract split three ways: every payment is split to the fen, the fee first,
    then the households by share (largest remainder, ties in household id order)."""
    api = start_services(LandService, AllianceService)
    make_village(api, "V-6")
    parcel = {
        "id": "P-6",
        "village_id": "V-6",
        "household_id": "H-1",
        "area_mu": "10.00",
        "land_class": "paddy",
        "basic_farmland": False,
        "contract_period_ends_on": "2040-12-31",
    }
    family = [
        {"household_id": "H-1", "share_pct": "33.34"},
        {"household_id": "H-2", "share_pct": "33.33"},
        {"household_id": "H-3", "share_pct": "33.33"},
    ]
    parcels = "/api/v1/land/parcels"
    short = [family[0], family[1] | {"share_pct": "33.32"}, family[2]]
    rejected(api, parcels, parcel | {"co_contractors": short}, "co_contractors")  # 99.99 %
    long = [family[0] | {"share_pct": "33.35"}, *family[1:]]
    rejected(api, parcels, parcel | {"co_contractors": long}, "co_contractors")  # 100.01 %
    twice = [family[0], family[1], family[1] | {"share_pct": "33.33"}]
    rejected(api, parcels, parcel | {"co_contractors": twice}, "co_contractors")
    rejected(api, parcels, parcel | {"co_contractors": family[1:]}, "co_contractors")  # no rep.
    rejected(
        api,
        parcels,
        parcel | {"household_id": None, "co_contractors": family},
        "co_contractors",
    )
    rejected(
        api,
        parcels,
        parcel | {"co_contractors": [family[0] | {"share_pct": "100.001"}]},
        "co_contractors.0.share_pct",
    )
    registered = created(api, parcels, parcel | {"co_contractors": family})
    assert registered["co_contractors"] == family
    created(
        api,
        "/api/v1/land/contracts",
        {
            "id": "C-6",
            "parcel_id": "P-6",
            "transferee_id": "F-6",
            "transferee_type": "family_farm",
            "area_mu": "10.00",
            "starts_on": "2027-01-01",
            "ends_on": "2030-12-31",
            "land_use": "grain",
            "rent_fen_per_mu_year": 90000,
            "management_fee_bp": 300,
            "household_signed": True,
            "signed_on": "2026-11-25",
        },
        role={"role": "household", "subject": "H-1"},
    )
    sweep(api, "2026-12-15")
    for amount in (2, 100001, 799997):
        created(
            api,
            "/api/v1/land/contracts/C-6/rent-payments",
            {"invoice_id": "C-6/Y1", "amount_fen": amount, "paid_on": "2026-12-20"},
        )
    events = land_events(api)
    signed = of_type(events, "TransferContractSigned")[0]["data"]
    assert signed["household_shares"] == family
    paid = [p["data"] for p in of_type(events, "RentPaid")]
    split = [{s["payee_id"]: s["amount_fen"] for s in p["shares"]} for p in paid]
    assert split == [
        # 2 fen, no fee: 0.6668 / 0.6666 / 0.6666 -> the two largest remainders, H-2 before H-3.
        {"H-1": 1, "H-2": 1, "H-3": 0},
        # fee 3 % of 100003 so far = 3000; 97001 left: 32340.13 / 32330.43 / 32330.43.
        {"H-1": 32340, "H-2": 32331, "H-3": 32330, "V-6": 3000},
        # fee 27000 on the whole year less 3000; 775997 left: 258717.40 / 258639.80 twice.
        {"H-1": 258717, "H-2": 258640, "H-3": 258640, "V-6": 24000},
    ]
    for payment in paid:
        assert sum(s["amount_fen"] for s in payment["shares"]) == payment["amount_fen"]
        assert [s["payee_type"] for s in payment["shares"]][:3] == ["household"] * 3
    assert sum(sum(s.values()) for s in split) == 900000
    invoice = api.get("/api/v1/land/contracts/C-6").json()["invoices"]["C-6/Y1"]
    assert (invoice["paid_fen"], invoice["outstanding_fen"]) == (900000, 0)


def test_corporate_review_area_is_used_up(start_services: Any) -> None:
    """One review may cover several contracts, never more than the area it approved in all,
    even when contracts drawing on it are signed at the same moment."""
    api = start_services(LandService, AllianceService)
    make_village(api, "V-7")
    register_parcel(api, "P-7", "V-7", household_id=None, area_mu="400.00")
    created(
        api,
        "/api/v1/land/corporate-reviews",
        {
            "id": "R-7",
            "transferee_id": "CO-7",
            "village_id": "V-7",
            "area_mu": "130",
            "project": "greenhouses",
        },
    )
    created(
        api,
        "/api/v1/land/corporate-reviews/R-7/decisions",
        {"approved": True, "opinion": "capable"},
    )
    body = {
        "parcel_id": "P-7",
        "transferee_id": "CO-7",
        "transferee_type": "company",
        "area_mu": "60.00",
        "starts_on": "2027-01-01",
        "ends_on": "2030-12-31",
        "land_use": "vegetables",
        "rent_fen_per_mu_year": 90000,
        "corporate_review_id": "R-7",
        "signed_on": "2026-11-25",
    }
    created(api, "/api/v1/land/contracts", body | {"id": "C-71"})
    # 70 mu are left: two contracts of 60 at once, exactly one gets them.
    with ThreadPoolExecutor(max_workers=2) as pool:
        responses = list(
            pool.map(
                lambda cid: api.post("/api/v1/land/contracts", body | {"id": cid}, **STAFF),
                ("C-72", "C-73"),
            )
        )
    assert sorted(r.status_code for r in responses) == [201, 422], [r.text for r in responses]
    refused = next(r for r in responses if r.status_code == 422).json()
    assert "corporate_review_id" in refused["errors"]
    rejected(api, "/api/v1/land/contracts", body | {"id": "C-74"}, "corporate_review_id")
    used = [e["data"] for e in of_type(land_events(api), "CorporateReviewAreaUsed")]
    assert [(u["area_mu"], u["remaining_mu"]) for u in used] == [
        ("60.00", "70.00"),
        ("60.00", "10.00"),
    ]
    # 10 mu are left, but a contract that small needs no review at all.
    created(api, "/api/v1/land/contracts", body | {"id": "C-75", "area_mu": "50.00"})
    assert len(of_type(land_events(api), "CorporateReviewAreaUsed")) == 2
