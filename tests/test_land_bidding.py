"""Bidding on land listings over HTTP: the bidding rules, re-announcement and negotiation, the
winner's payment deadline, many bidders at once, and land's events on the real RabbitMQ."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.alliance.service import AllianceService
from services.land.service import LandService
from tests.conftest import captured_events
from tests.test_land_support import (
    at,
    bid,
    created,
    entrust,
    land_events,
    make_village,
    open_listing,
    qualify,
    register_parcel,
    rejected,
    sweep,
)

CONTRACTS = Path(__file__).resolve().parent.parent / "docs" / "events" / "land"


def listing_events(api: Any, listing_id: str) -> list[dict[str, Any]]:
    return [e for e in land_events(api) if e["stream_id"] == listing_id]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_bidding_rules(start_services: Any) -> None:
    api = start_services(LandService, AllianceService, LAND_MIN_BIDDERS=2)
    make_village(api, "V-1")
    register_parcel(api, "P-1", "V-1")
    entrust(api, "P-1", "E-1")
    # Two listings of 10 mu each; the second's auction lasts one second only.
    open_listing(api, "LS-A", "P-1", timedelta(seconds=1.5), area_mu="10.00")
    open_listing(api, "LS-B", "P-1", timedelta(seconds=1.5), timedelta(seconds=1), area_mu="10.00")
    for listing in ("LS-A", "LS-B"):
        qualify(api, listing, "B-1")
        qualify(api, listing, "B-2")
    created(
        api,
        "/api/v1/land/listings/LS-A/bidders",
        {"bidder_id": "B-3", "bidder_type": "household", "name": "no deposit"},
    )
    deposits = "/api/v1/land/listings/LS-A/bidders/B-3/deposits"
    rejected(api, deposits, {"amount_fen": 100}, "amount_fen")
    rejected(api, "/api/v1/land/listings/LS-A/bids", _bid("B-1", 80000), "listing_id")  # early
    time.sleep(1.6)
    rejected(api, deposits, {"amount_fen": 200000}, "received_at")  # registration closed
    rejected(
        api,
        "/api/v1/land/listings/LS-A/bidders",
        {"bidder_id": "B-4", "bidder_type": "household", "name": "late"},
        "listing_id",
    )
    sweep(api, at(timedelta(0)))

    bids = "/api/v1/land/listings/LS-A/bids"
    rejected(api, bids, _bid("B-3", 80000), "bidder_id")  # registered, no deposit
    rejected(api, bids, _bid("B-9", 80000), "bidder_id")  # not registered
    rejected(api, bids, _bid("B-1", 79000), "amount_fen_per_mu_year")  # below reserve
    rejected(api, bids, _bid("B-1", 80500), "amount_fen_per_mu_year")  # off the increment
    assert bid(api, "LS-A", "B-1", 80000).status_code == 201
    rejected(api, bids, _bid("B-2", 80000), "amount_fen_per_mu_year")  # a tie: earlier wins
    rejected(api, bids, _bid("B-2", 80000 + 500), "amount_fen_per_mu_year")
    household = {"role": "household", "subject": "B-1"}
    rejected(api, bids, _bid("B-2", 82000), "bidder_id", status=403, role=household)
    assert bid(api, "LS-A", "B-2", 82000).status_code == 201

    # The auction on LS-B has closed by now, even before any sweep ran.
    time.sleep(1.05)
    rejected(api, "/api/v1/land/listings/LS-B/bids", _bid("B-1", 80000), "listing_id")

    # A bid in the last five minutes moves the end of the auction.
    ends = at(timedelta(minutes=3))
    created(api, "/api/v1/land/listings/LS-A/suspensions", {"reason": "complaint"})
    rejected(api, bids, _bid("B-1", 90000), "listing_id")
    created(
        api,
        "/api/v1/land/listings/LS-A/resumptions",
        {
            "registration_closes_at": at(timedelta(seconds=-10)),
            "auction_starts_at": at(timedelta(seconds=-10)),
            "auction_ends_at": ends,
        },
    )
    assert bid(api, "LS-A", "B-1", 90000).status_code == 201
    extended = [e for e in listing_events(api, "LS-A") if e["type"] == "BiddingExtended"]
    assert len(extended) == 1 and extended[0]["data"]["auction_ends_at"] > ends

    # Award, refunds once, no refund for the winner before the contract.
    sweep(api, at(timedelta(hours=1)))
    sweep(api, at(timedelta(hours=1)))
    listing = api.get("/api/v1/land/listings/LS-A").json()
    assert listing["award"]["bidder_id"] == "B-1"
    assert listing["award"]["amount_fen_per_mu_year"] == 90000
    refunds = "/api/v1/land/listings/LS-A/bidders/{}/refunds"
    rejected(api, refunds.format("B-1"), {}, "bidder_id")
    rejected(api, refunds.format("B-3"), {}, "bidder_id")  # never paid one
    created(api, refunds.format("B-2"), {})
    rejected(api, refunds.format("B-2"), {}, "bidder_id")
    failed = api.get("/api/v1/land/listings/LS-B").json()
    assert failed["state"] == "failed"  # no valid bid in its window
    # The failed listing's area is free again; the awarded one still holds its 10 mu.
    parcel = api.get("/api/v1/land/parcels/P-1").json()
    assert sorted(parcel["commitments"]) == ["LS-A"]


def _bid(bidder_id: str, amount: int) -> dict[str, Any]:
    return {"bidder_id": bidder_id, "amount_fen_per_mu_year": amount}


@pytest.mark.parametrize("backend", ["sqlite"])
def test_too_few_bidders_reannounce_negotiate_and_forfeit(start_services: Any) -> None:
    api = start_services(LandService, AllianceService)  # three qualified bidders for an auction
    make_village(api, "V-2")
    register_parcel(api, "P-2", "V-2")
    entrust(api, "P-2", "E-1")
    open_listing(api, "LS-N", "P-2", timedelta(seconds=1))
    qualify(api, "LS-N", "B-1")
    time.sleep(1.1)
    sweep(api, at(timedelta(0)))
    listing = api.get("/api/v1/land/listings/LS-N").json()
    assert (listing["state"], listing["round"]) == ("published", 2)
    qualify(api, "LS-N", "B-2")
    sweep(api, at(timedelta(days=2)))
    assert api.get("/api/v1/land/listings/LS-N").json()["state"] == "negotiating"
    award = "/api/v1/land/listings/LS-N/negotiated-awards"
    rejected(api, award, _bid("B-1", 79000), "amount_fen_per_mu_year")
    created(api, award, _bid("B-2", 80000) | {"awarded_on": "2026-11-27"})  # a Friday
    listing = api.get("/api/v1/land/listings/LS-N").json()
    assert listing["award"]["payment_due_on"] == "2026-12-02"  # three working days
    assert sweep(api, "2026-12-02")["events"] == 0
    sweep(api, "2026-12-03")
    assert sweep(api, "2026-12-04")["events"] == 0
    events = listing_events(api, "LS-N")
    types = [e["type"] for e in events]
    assert types.count("DepositForfeited") == 1 and types.count("ListingReopened") == 1
    # The loser's deposit went back with the reopening, once; the winner's was kept.
    refunds = [e["data"] for e in events if e["type"] == "DepositRefunded"]
    assert [(r["bidder_id"], r["amount_fen"]) for r in refunds] == [("B-1", 200000)]
    assert types.index("DepositForfeited") < types.index("DepositRefunded")
    assert types.index("DepositRefunded") < types.index("ListingReopened")
    listing = api.get("/api/v1/land/listings/LS-N").json()
    assert (listing["state"], listing["bidders"], listing["award"]) == ("approved", {}, None)
    refund = "/api/v1/land/listings/LS-N/bidders/{}/refunds"
    rejected(api, refund.format("B-2"), {}, "bidder_id")
    rejected(api, refund.format("B-1"), {}, "bidder_id")  # refunded already
    rejected(api, "/api/v1/land/listings/LS-N/winner-payments", {"amount_fen": 1}, "listing_id")
    # Nobody takes part before the exchange announces the listing again.
    register = "/api/v1/land/listings/LS-N/bidders"
    rejected(
        api, register, {"bidder_id": "B-1", "bidder_type": "household", "name": "x"}, "listing_id"
    )

    # Announced again: a fresh cycle of two announcements, a fresh registration for everyone.
    closes = at(timedelta(seconds=1))
    created(
        api,
        "/api/v1/land/listings/LS-N/publications",
        {
            "registration_closes_at": closes,
            "auction_starts_at": closes,
            "auction_ends_at": at(timedelta(hours=1)),
        },
    )
    for bidder in ("B-1", "B-3", "B-4"):
        qualify(api, "LS-N", bidder)
    rejected(
        api, register, {"bidder_id": "B-2", "bidder_type": "household", "name": "x"}, "bidder_id"
    )
    time.sleep(1.1)
    sweep(api, at(timedelta(0)))
    listing = api.get("/api/v1/land/listings/LS-N").json()
    assert (listing["state"], listing["round"]) == ("bidding", 3)
    rejected(api, "/api/v1/land/listings/LS-N/bids", _bid("B-2", 90000), "bidder_id")
    assert bid(api, "LS-N", "B-1", 80000).status_code == 201
    assert api.get("/api/v1/land/listings/LS-N").json()["high_bid"]["bid_id"] == "R3-B1"


def test_many_bidders_at_once(start_services: Any) -> None:
    api = start_services(LandService, AllianceService, LAND_MIN_BIDDERS=2)
    make_village(api, "V-3")
    register_parcel(api, "P-3", "V-3")
    entrust(api, "P-3", "E-1")
    bidders = [f"B-{n}" for n in range(6)]
    open_listing(api, "LS-C", "P-3", timedelta(seconds=2.5))
    for bidder_id in bidders:
        qualify(api, "LS-C", bidder_id)
    time.sleep(2.6)
    sweep(api, at(timedelta(0)))

    # 24 bids at once; amounts repeat, so most lose a race or a tie.
    offers = [(bidders[n % 6], 80000 + 1000 * (n % 8)) for n in range(24)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda o: bid(api, "LS-C", *o), offers))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409, 422}, statuses
    accepted = [r.json() for r in responses if r.status_code == 201]
    assert accepted

    events = listing_events(api, "LS-C")
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    placed = [e["data"] for e in events if e["type"] == "TransferBidPlaced"]
    assert sorted(b["bid_id"] for b in placed) == sorted(b["bid_id"] for b in accepted)
    amounts = [b["amount_fen_per_mu_year"] for b in placed]
    assert amounts == sorted(set(amounts)), "every accepted bid beats the one before"
    highest = max(amount for _, amount in offers if amount >= 80000)
    highest_offered_and_accepted = max(amounts)
    assert highest_offered_and_accepted <= highest
    # Of all the bids offering the final amount, exactly one (the first) was accepted.
    assert amounts.count(highest_offered_and_accepted) == 1

    sweep(api, at(timedelta(hours=2)))
    award = api.get("/api/v1/land/listings/LS-C").json()["award"]
    winner = placed[-1]
    assert (award["bidder_id"], award["bid_id"], award["amount_fen_per_mu_year"]) == (
        winner["bidder_id"],
        winner["bid_id"],
        highest_offered_and_accepted,
    )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_land_events_on_rabbitmq_match_their_contract(start_services: Any, broker: str) -> None:
    with captured_events(broker, "land") as take:
        api = start_services(LandService, AllianceService, amqp_uri=broker)
        make_village(api, "V-4")
        register_parcel(api, "P-4", "V-4", household_id="H-4", area_mu="8.00")
        created(
            api,
            "/api/v1/land/contracts",
            {
                "id": "C-4",
                "parcel_id": "P-4",
                "transferee_id": "F-4",
                "transferee_type": "family_farm",
                "area_mu": "8.00",
                "starts_on": "2027-01-01",
                "ends_on": "2030-12-31",
                "land_use": "grain",
                "rent_fen_per_mu_year": 90000,
                "management_fee_bp": 500,
                "household_signed": True,
            },
            role={"role": "household", "subject": "H-4"},
        )
        created(api, "/api/v1/land/contracts/C-4/filings", {})
        sweep(api, "2026-12-15")
        created(
            api,
            "/api/v1/land/contracts/C-4/rent-payments",
            {"invoice_id": "C-4/Y1", "amount_fen": 700001},
        )
        expected = [
            "ParcelRegistered",
            "ParcelAreaCommitted",
            "TransferContractSigned",
            "TransferContractFiled",
            "RentInvoiced",
            "RentPaid",
            "ManagementFeeCollected",
        ]
        messages = take(len(expected), timeout=20)
    assert sorted(m["type"] for m in messages) == sorted(expected)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for message in messages:
        schema = json.loads((CONTRACTS / f"{message['type']}.json").read_text())
        jsonschema.validate(message, schema, format_checker=checker)
    by_type = {m["type"]: m["data"] for m in messages}
    paid = by_type["RentPaid"]
    assert paid["amount_fen"] == 700001
    assert sum(s["amount_fen"] for s in paid["shares"]) == 700001
    assert by_type["ManagementFeeCollected"]["amount_fen"] == 700001 * 500 // 10000
    assert by_type["RentInvoiced"]["amount_fen"] == 720000
