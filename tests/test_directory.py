"""``shared/directory.py`` through the real pipeline: villages registered, joined and left through
the alliance service's HTTP API reach another service's directory over the broker."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import marshmallow as ma

from services.alliance.service import AllianceService
from shared import directory
from shared.directory import DIRECTORY, DirectoryMember
from shared.http import query
from shared.service import ServiceBase
from tests.conftest import Api
from tests.test_alliance import (
    ADMIN,
    form_cluster,
    found_alliance,
    join,
    leave,
    ok,
    register_village,
)

PROBE = "/api/v1/directoryprobe"


class OnArgs(ma.Schema):
    on = ma.fields.Date(required=True)


class DirectoryProbeService(DirectoryMember, ServiceBase):
    """A service that keeps the directory and nothing else, to read it back."""

    name = "directoryprobe"
    projections = [DIRECTORY]

    @query(f"{PROBE}/units/<unit_id>/cluster", args=OnArgs, roles=["ops"])
    def cluster_on(self, request: Any, unit_id: str, args: dict[str, date]) -> dict[str, Any]:
        with self.store.events.engine.connect() as db:
            return {"cluster_id": directory.cluster_of(db, unit_id, args["on"])}

    @query(f"{PROBE}/clusters/<cluster_id>/members", args=OnArgs, roles=["ops"])
    def members_on(self, request: Any, cluster_id: str, args: dict[str, date]) -> dict[str, Any]:
        with self.store.events.engine.connect() as db:
            return {"members": directory.members_of(db, cluster_id, args["on"])}


def eventually(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_directory_follows_the_alliance_through_the_pipeline(start_services: Any) -> None:
    api: Api = start_services(AllianceService, DirectoryProbeService)
    alliance = found_alliance(api)
    east, west = form_cluster(api, alliance), form_cluster(api, alliance)
    village = register_village(api)
    strong = register_village(api, weak=False)
    ok(join(api, village, east, "2025-01-01"))
    ok(join(api, strong, east, "2025-01-01"))
    ok(leave(api, village, east, "2025-07-01"))
    ok(join(api, village, west, "2025-07-01"))
    ok(leave(api, strong, east, "2025-09-01"))  # out for a month, then back in the same cluster
    ok(join(api, strong, east, "2025-10-01"))

    def arrived() -> dict[str, Any]:
        response = api.get(f"{PROBE}/directory/villages/{village}", role="exchange_staff")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["cluster_id"] == west, body  # today: after its move
        return body

    seen = eventually(arrived)
    assert seen == {
        "village_id": village,
        "district": ADMIN["district"],
        "name": "东村",
        "population": 1200,
        "households": 400,
        "contracted_area_mu": "3500.50",
        "weak": True,
        "cluster_id": west,
    }

    def cluster_of(unit_id: str, on: str) -> str | None:
        response = api.get(f"{PROBE}/units/{unit_id}/cluster", role="ops", params={"on": on})
        assert response.status_code == 200, response.text
        return response.json()["cluster_id"]

    def members(cluster_id: str, on: str) -> list[str]:
        response = api.get(f"{PROBE}/clusters/{cluster_id}/members", role="ops", params={"on": on})
        assert response.status_code == 200, response.text
        return response.json()["members"]

    eventually(lambda: _assert_equal(members(east, "2025-01-01"), sorted([village, strong])))
    assert cluster_of(village, "2024-12-31") is None
    assert cluster_of(village, "2025-01-01") == east
    assert cluster_of(village, "2025-06-30") == east
    assert cluster_of(village, "2025-07-01") == west  # left_on is the first day outside
    assert members(east, "2025-07-01") == [strong]
    assert members(west, "2025-06-30") == []
    eventually(lambda: _assert_equal(members(east, "2025-09-30"), []))  # its leave arrived
    eventually(lambda: _assert_equal(members(east, "2025-10-01"), [strong]))  # and its rejoin
    assert cluster_of(strong, "2025-08-31") == east
    assert api.get(f"{PROBE}/directory/villages/{strong}", role="ops").json()["weak"] is False

    unknown = api.get(f"{PROBE}/directory/villages/V-nowhere", role="ops")
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"].startswith("application/problem+json")


def _assert_equal(left: Any, right: Any) -> None:
    assert left == right, (left, right)
