"""Helpers for the land service's tests: villages through the alliance's HTTP API, a stub finance
service that appends pledge events of the contract's shape, and rejection checks."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any

from shared.config import LOCAL_TZ
from shared.eventstore import NewEvent
from shared.http import command
from shared.service import ServiceBase
from tests.conftest import Api

DISTRICT = "D1"
STAFF = {"role": "exchange_staff", "district": DISTRICT}
ADMIN = {"role": "district_admin", "district": DISTRICT}


def wait_for(check: Any, timeout: float = 10, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def make_village(
    api: Api, village_id: str, cluster_id: str = "C-1", contracted_mu: str = "1000.00"
) -> None:
    """A village in a cluster, created through the alliance service, known to land."""
    if api.get(f"/api/v1/alliance/clusters/{cluster_id}", role="ops").status_code == 404:
        ok = api.post(
            "/api/v1/alliance/alliances",
            {"id": f"A-{cluster_id}", "district": DISTRICT, "name": "红盟", "level": "district"},
            **ADMIN,
        )
        assert ok.status_code == 201, ok.text
        ok = api.post(
            "/api/v1/alliance/clusters",
            {
                "id": cluster_id,
                "alliance_id": f"A-{cluster_id}",
                "name": "组团",
                "theme_industry": "rice",
            },
            **ADMIN,
        )
        assert ok.status_code == 201, ok.text
    unit = {
        "id": village_id,
        "district": DISTRICT,
        "name": village_id,
        "unit_type": "village",
        "village": {
            "population": 900,
            "households": 300,
            "contracted_area_mu": contracted_mu,
            "weak": False,
        },
    }
    ok = api.post("/api/v1/alliance/units", unit, **ADMIN)
    assert ok.status_code == 201, ok.text
    ok = api.post(
        f"/api/v1/alliance/units/{village_id}/memberships",
        {"cluster_id": cluster_id, "joined_on": "2026-01-01"},
        **ADMIN,
    )
    assert ok.status_code == 201, ok.text
    wait_for(
        lambda: (
            api.get(f"/api/v1/land/directory/villages/{village_id}").json().get("cluster_id")
            == cluster_id
        ),
        what=f"land's directory to know {village_id}",
    )


def land_events(api: Api) -> list[dict[str, Any]]:
    return api.events("land")


def rejected(
    api: Api,
    path: str,
    body: dict[str, Any],
    field: str,
    status: int = 422,
    role: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """POST, expect ``status`` naming ``field`` in ``errors``, and no event written."""
    before = len(land_events(api))
    response = api.post(path, body, **(role or STAFF))
    assert response.status_code == status, response.text
    problem = response.json()
    assert field in problem.get("errors", {}), problem
    assert len(land_events(api)) == before, "a rejected command wrote events"
    return problem


def created(api: Api, path: str, body: dict[str, Any], role: dict[str, Any] | None = None) -> Any:
    response = api.post(path, body, **(role or STAFF))
    assert response.status_code == 201, response.text
    return response.json()


def at(delta: timedelta) -> str:
    return (datetime.now(LOCAL_TZ) + delta).isoformat()


def register_parcel(
    api: Api,
    parcel_id: str,
    village_id: str,
    household_id: str | None = "H-1",
    area_mu: str = "20.33",
    basic_farmland: bool = False,
    ends: str = "2040-12-31",
) -> Any:
    return created(
        api,
        "/api/v1/land/parcels",
        {
            "id": parcel_id,
            "village_id": village_id,
            "household_id": household_id,
            "area_mu": area_mu,
            "land_class": "paddy",
            "basic_farmland": basic_farmland,
            "contract_period_ends_on": ends,
        },
    )


def entrust(api: Api, parcel_id: str, entrustment_id: str, **overrides: Any) -> Any:
    body = {
        "id": entrustment_id,
        "household_id": "H-1",
        "agent": "exchange",
        "area_mu": "20.33",
        "starts_on": "2027-01-01",
        "ends_on": "2036-12-31",
        "floor_fen_per_mu_year": 70000,
    } | overrides
    return created(api, f"/api/v1/land/parcels/{parcel_id}/entrustments", body)


def listing_body(listing_id: str, parcel_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "id": listing_id,
        "parcel_id": parcel_id,
        "area_mu": "20.33",
        "starts_on": "2027-01-01",
        "ends_on": "2031-12-31",
        "land_use": "grain",
        "reserve_fen_per_mu_year": 80000,
        "increment_fen_per_mu_year": 1000,
        "deposit_fen": 200000,
        "entrustment_id": "E-1",
    } | overrides


def open_listing(
    api: Api,
    listing_id: str,
    parcel_id: str,
    registration: timedelta,
    auction: timedelta = timedelta(hours=1),
    **overrides: Any,
) -> None:
    """Submitted, approved and published: registration closes after ``registration``, and the
    auction runs from then for ``auction``."""
    created(api, "/api/v1/land/listings", listing_body(listing_id, parcel_id, **overrides))
    created(api, f"/api/v1/land/listings/{listing_id}/reviews", {"approved": True, "opinion": "ok"})
    closes = datetime.now(LOCAL_TZ) + registration
    created(
        api,
        f"/api/v1/land/listings/{listing_id}/publications",
        {
            "registration_closes_at": closes.isoformat(),
            "auction_starts_at": closes.isoformat(),
            "auction_ends_at": (closes + auction).isoformat(),
        },
    )


def qualify(api: Api, listing_id: str, bidder_id: str, deposit_fen: int = 200000) -> None:
    created(
        api,
        f"/api/v1/land/listings/{listing_id}/bidders",
        {"bidder_id": bidder_id, "bidder_type": "cooperative", "name": bidder_id},
    )
    created(
        api,
        f"/api/v1/land/listings/{listing_id}/bidders/{bidder_id}/deposits",
        {"amount_fen": deposit_fen},
    )


def sweep(api: Api, as_of: str) -> dict[str, Any]:
    response = api.post("/api/v1/land/sweeps", {"as_of": as_of}, role="ops")
    assert response.status_code == 200, response.text
    return response.json()


def bid(api: Api, listing_id: str, bidder_id: str, amount: int) -> Any:
    return api.post(
        f"/api/v1/land/listings/{listing_id}/bids",
        {"bidder_id": bidder_id, "amount_fen_per_mu_year": amount},
        **STAFF,
    )


class FinanceStub(ServiceBase):
    """Stands in for the finance service: appends raw pledge events of the documented shape."""

    name = "finance"

    @command("POST", "/api/v1/finance/raw-events", roles=["ops"], status=201)
    def append_raw(self, request: Any) -> dict[str, Any]:
        body = json.loads(request.get_data())
        store = self.store.events
        stream_id = body["data"]["pledge_id"]
        with store.transaction() as tx:
            version = store.stream_version(stream_id, tx.connection) + 1
            store.append(
                tx,
                [
                    NewEvent(
                        "Pledge",
                        stream_id,
                        version,
                        body["type"],
                        body["data"],
                        metadata={"actor": "bank", "district": DISTRICT},
                    )
                ],
            )
        return {"version": version}
