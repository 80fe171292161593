"""The land service's legal rules at equal terms and on deadlines, over HTTP: priority of the
parcel's own collective and of the previous transferee, the corporate review's 20 working
days, termination for abandonment backed by the ledger, and filing within 15 days."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from services.alliance.service import AllianceService
from services.land.service import LandService
from tests.test_land_support import (
    at,
    bid,
    created,
    entrust,
    land_events,
    make_village,
    open_listing,
    register_parcel,
    rejected,
    sweep,
)


def register(api: Any, listing_id: str, bidder_id: str, village_id: str | None = None) -> None:
    """A qualified bidder, a member of ``village_id``'s collective (or of none)."""
    created(
        api,
        f"/api/v1/land/listings/{listing_id}/bidders",
        {
            "bidder_id": bidder_id,
            "bidder_type": "household",
            "name": bidder_id,
            "member_of_village_id": village_id,
        },
    )
    created(
        api,
        f"/api/v1/land/listings/{listing_id}/bidders/{bidder_id}/deposits",
        {"amount_fen": 200000},
    )


def _bid(bidder_id: str, amount: int) -> dict[str, Any]:
    return {"bidder_id": bidder_id, "amount_fen_per_mu_year": amount}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_equal_bids_go_to_the_same_collective_then_the_previous_transferee(
    start_services: Any,
) -> None:
    """At an equal price a member of the parcel's collective may match an outsider's high bid
    and wins with it; the previous transferee of an expiring contract may match anyone. Nobody
    else may match, and nobody may match a bidder with an equal or stronger right."""
    api = start_services(LandService, AllianceService, LAND_MIN_BIDDERS=2)
    make_village(api, "V-1")
    make_village(api, "V-2")
    register_parcel(api, "P-1", "V-1")
    entrust(api, "P-1", "E-1")
    # The household's own contract with T-1 ends 2031-12-31; the new term starts the next day.
    created(
        api,
        "/api/v1/land/contracts",
        {
            "id": "C-1",
            "parcel_id": "P-1",
            "transferee_id": "T-1",
            "transferee_type": "family_farm",
            "area_mu": "10.00",
            "starts_on": "2027-01-01",
            "ends_on": "2031-12-31",
            "land_use": "grain",
            "rent_fen_per_mu_year": 80000,
            "entrustment_id": "E-1",
            "signed_on": "2026-11-25",
        },
    )
    open_listing(api, "LS-A", "P-1", timedelta(seconds=1.5), area_mu="10.00")
    open_listing(
        api,
        "LS-R",
        "P-1",
        timedelta(seconds=1.5),
        area_mu="10.00",
        starts_on="2032-01-01",
        ends_on="2036-12-31",
    )
    assert api.get("/api/v1/land/listings/LS-A").json()["terms"]["renewal_priority"] == []
    assert api.get("/api/v1/land/listings/LS-R").json()["terms"]["renewal_priority"] == ["T-1"]
    for listing in ("LS-A", "LS-R"):
        register(api, listing, "O-1")  # an outsider
        register(api, listing, "O-2", "V-2")  # a member of another collective
        register(api, listing, "M-1", "V-1")  # members of the parcel's collective
        register(api, listing, "M-2", "V-1")
    register(api, "LS-R", "T-1")
    time.sleep(1.6)
    sweep(api, at(timedelta(0)))

    bids = "/api/v1/land/listings/LS-A/bids"
    assert bid(api, "LS-A", "O-1", 80000).status_code == 201
    rejected(api, bids, _bid("O-2", 80000), "amount_fen_per_mu_year")  # no right to match
    matched = bid(api, "LS-A", "M-1", 80000)
    assert matched.status_code == 201, matched.text
    rejected(api, bids, _bid("M-2", 80000), "amount_fen_per_mu_year")  # an equal right
    rejected(api, bids, _bid("O-1", 80000), "amount_fen_per_mu_year")
    assert bid(api, "LS-A", "O-1", 81000).status_code == 201  # a higher price still wins...
    assert bid(api, "LS-A", "M-2", 81000).status_code == 201  # ...unless a member matches it

    renewal = "/api/v1/land/listings/LS-R/bids"
    assert bid(api, "LS-R", "M-1", 80000).status_code == 201
    rejected(api, renewal, _bid("M-2", 80000), "amount_fen_per_mu_year")
    assert bid(api, "LS-R", "T-1", 80000).status_code == 201  # renewal at equal terms
    rejected(api, renewal, _bid("M-1", 80000), "amount_fen_per_mu_year")

    sweep(api, at(timedelta(hours=1)))
    awards = {
        listing: api.get(f"/api/v1/land/listings/{listing}").json()["award"]
        for listing in ("LS-A", "LS-R")
    }
    assert (awards["LS-A"]["bidder_id"], awards["LS-A"]["amount_fen_per_mu_year"]) == (
        "M-2",
        81000,
    )
    assert (awards["LS-R"]["bidder_id"], awards["LS-R"]["amount_fen_per_mu_year"]) == (
        "T-1",
        80000,
    )
    placed = [e["data"] for e in land_events(api) if e["type"] == "TransferBidPlaced"]
    assert [b["priority"] for b in placed if b["listing_id"] == "LS-R"] == [None, "renewal"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_corporate_review_is_decided_within_20_working_days(start_services: Any) -> None:
    """Submitted on Monday 2 March 2026 with 4 March a holiday: the 20th working day after is
    31 March. The sweep flags an undecided review once, from 1 April; a decision is still taken
    after that, recorded as late; one on the last day is not late."""
    api = start_services(LandService, AllianceService, LAND_HOLIDAYS=["2026-03-04"])
    make_village(api, "V-3")
    for review_id in ("R-1", "R-2"):
        created(
            api,
            "/api/v1/land/corporate-reviews",
            {
                "id": review_id,
                "transferee_id": "CO-1",
                "village_id": "V-3",
                "area_mu": "100",
                "project": "rice",
                "submitted_on": "2026-03-02",
            },
        )

    def overdue() -> list[dict[str, Any]]:
        return [e["data"] for e in land_events(api) if e["type"] == "CorporateReviewOverdue"]

    sweep(api, "2026-03-31")
    assert overdue() == []
    decisions = "/api/v1/land/corporate-reviews/{}/decisions"
    decision = {"approved": True, "opinion": "capable"}
    rejected(api, decisions.format("R-2"), decision | {"decided_on": "2026-03-01"}, "decided_on")
    created(api, decisions.format("R-2"), decision | {"decided_on": "2026-03-31"})
    sweep(api, "2026-04-01")
    sweep(api, "2026-04-02")
    assert [(o["review_id"], o["due_on"]) for o in overdue()] == [("R-1", "2026-03-31")]
    created(api, decisions.format("R-1"), decision | {"decided_on": "2026-04-02"})
    decided = {
        e["data"]["review_id"]: e["data"]["decided_late"]
        for e in land_events(api)
        if e["type"] == "CorporateTransferApproved"
    }
    assert decided == {"R-1": True, "R-2": False}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_unfiled_contract_is_flagged_after_15_days(start_services: Any) -> None:
    """Signed on 25 November 2026: the last day to file is 10 December; the sweep flags the
    contract once from the 11th. A contract filed in time, or terminated, is never flagged."""
    api = start_services(LandService, AllianceService)
    make_village(api, "V-5")
    register_parcel(api, "P-5", "V-5", household_id=None, area_mu="30.00")
    direct = {
        "parcel_id": "P-5",
        "transferee_id": "F-1",
        "transferee_type": "family_farm",
        "area_mu": "10.00",
        "starts_on": "2027-01-01",
        "ends_on": "2030-12-31",
        "land_use": "grain",
        "rent_fen_per_mu_year": 90000,
        "signed_on": "2026-11-25",
    }
    for contract_id in ("C-1", "C-2", "C-3"):
        created(api, "/api/v1/land/contracts", direct | {"id": contract_id})
    created(api, "/api/v1/land/contracts/C-2/filings", {"filed_on": "2026-12-10"})
    created(
        api,
        "/api/v1/land/contracts/C-3/terminations",
        {"reason": "mutual_agreement", "terminated_on": "2027-01-01"},
    )

    def flagged() -> list[dict[str, Any]]:
        return [e["data"] for e in land_events(api) if e["type"] == "ContractFilingOverdue"]

    sweep(api, "2026-12-10")
    assert flagged() == []
    sweep(api, "2026-12-11")
    sweep(api, "2026-12-12")
    assert [(f["contract_id"], f["due_on"]) for f in flagged()] == [("C-1", "2026-12-10")]
    created(api, "/api/v1/land/contracts/C-1/filings", {"filed_on": "2026-12-14"})


@pytest.mark.parametrize("backend", ["sqlite"])
def test_termination_for_abandonment_needs_the_ledger(start_services: Any) -> None:
    """Terminating for two years' abandonment needs an open ledger item for the parcel,
    reported during the contract and at least two years before the termination."""
    api = start_services(LandService, AllianceService)
    make_village(api, "V-6")
    register_parcel(api, "P-6", "V-6", household_id=None, area_mu="30.00")
    register_parcel(api, "P-7", "V-6", household_id=None, area_mu="30.00")
    created(
        api,
        "/api/v1/land/contracts",
        {
            "id": "C-6",
            "parcel_id": "P-6",
            "transferee_id": "F-1",
            "transferee_type": "family_farm",
            "area_mu": "30.00",
            "starts_on": "2027-01-01",
            "ends_on": "2034-12-31",
            "land_use": "grain",
            "rent_fen_per_mu_year": 90000,
            "signed_on": "2026-11-25",
        },
    )
    termination = "/api/v1/land/contracts/C-6/terminations"
    abandoned = {"reason": "abandoned_two_years", "terminated_on": "2030-03-01"}
    rejected(api, termination, abandoned, "reason")  # nothing in the ledger
    report = {"village_id": "V-6", "area_mu": "30.00", "reason": "left fallow"}
    for case_id, parcel_id, reported_on in (
        ("AB-1", "P-7", "2027-06-01"),  # another parcel
        ("AB-2", "P-6", "2026-06-01"),  # before the contract
        ("AB-3", "P-6", "2028-03-02"),  # one day short of two years
    ):
        created(
            api,
            "/api/v1/land/abandoned-land",
            report | {"id": case_id, "parcel_id": parcel_id, "reported_on": reported_on},
        )
        rejected(api, termination, abandoned, "reason")
    created(
        api,
        "/api/v1/land/abandoned-land",
        report | {"id": "AB-4", "parcel_id": "P-6", "reported_on": "2028-03-01"},
    )
    created(api, termination, abandoned)
