"""The alliance service over HTTP: alliances, clusters, member units and effective-dated
membership, the village directory and the authorisation of each command."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from services.alliance.service import AllianceService
from tests.conftest import Api, new_id

A = "/api/v1/alliance"
DISTRICT = "D1"
ADMIN = {"role": "district_admin", "district": DISTRICT}
SECRETARY = {"role": "alliance_secretary", "district": DISTRICT}
VILLAGE_FACTS = {
    "population": 1200,
    "households": 400,
    "contracted_area_mu": "3500.50",
    "weak": True,
}


@pytest.fixture
def api(start_services: Any) -> Api:
    return start_services(AllianceService)


def ok(response: Any, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    if field is not None:
        assert field in body.get("errors", {}), body
    return body


def found_alliance(api: Api, **fields: Any) -> str:
    body = {"id": new_id("AL"), "district": DISTRICT, "name": "红盟", "level": "district"}
    body.update(fields)
    ok(api.post(f"{A}/alliances", body, **ADMIN))
    return body["id"]


def form_cluster(api: Api, alliance_id: str, **fields: Any) -> str:
    body = {
        "id": new_id("CL"),
        "alliance_id": alliance_id,
        "name": "稻渔组团",
        "theme_industry": "稻渔",
    }
    body.update(fields)
    ok(api.post(f"{A}/clusters", body, **ADMIN))
    return body["id"]


def register_village(api: Api, weak: bool = True, **fields: Any) -> str:
    body = {
        "id": new_id("V"),
        "district": DISTRICT,
        "name": "东村",
        "unit_type": "village",
        "village": {**VILLAGE_FACTS, "weak": weak},
    }
    body.update(fields)
    ok(api.post(f"{A}/units", body, **ADMIN))
    return body["id"]


def join(api: Api, unit_id: str, cluster_id: str, joined_on: str, **claims: Any) -> Any:
    claims = claims or ADMIN
    return api.post(
        f"{A}/units/{unit_id}/memberships",
        {"cluster_id": cluster_id, "joined_on": joined_on},
        **claims,
    )


def leave(api: Api, unit_id: str, cluster_id: str, left_on: str, **claims: Any) -> Any:
    claims = claims or ADMIN
    return api.post(
        f"{A}/units/{unit_id}/memberships/{cluster_id}/leave", {"left_on": left_on}, **claims
    )


def event_types(api: Api) -> list[str]:
    return [e["type"] for e in api.events("alliance")]


def test_directory_is_built_through_the_http_commands(api: Api) -> None:
    alliance = found_alliance(api)
    town = found_alliance(api, level="town", parent_alliance_id=alliance, name="东镇分盟")
    lead = ok(
        api.post(
            f"{A}/units",
            {
                "id": new_id("E"),
                "district": DISTRICT,
                "name": "农发集团",
                "unit_type": "enterprise_soe",
            },
            **SECRETARY,
        )
    )["unit_id"]
    cluster = form_cluster(api, alliance, lead_unit_id=lead)
    village = register_village(api)
    bank = ok(
        api.post(
            f"{A}/units",
            {
                "id": new_id("B"),
                "district": DISTRICT,
                "name": "农商行",
                "unit_type": "bank",
                "bank_code": "RCB01",
            },
            **ADMIN,
        )
    )["unit_id"]
    joined = ok(join(api, village, cluster, "2026-01-01"))
    assert joined["memberships"] == [
        {"cluster_id": cluster, "alliance_id": alliance, "joined_on": "2026-01-01", "left_on": None}
    ]
    ok(join(api, bank, cluster, "2026-02-01", **SECRETARY))

    tree = ok(api.get(f"{A}/alliances/{alliance}"), 200)
    assert tree["sub_alliances"] == [town]
    assert [c["cluster_id"] for c in tree["clusters"]] == [cluster]
    assert tree["clusters"][0]["lead_unit_id"] == lead

    envelopes = api.events("alliance")
    assert [e["type"] for e in envelopes] == [
        "AllianceFounded",
        "AllianceFounded",
        "MemberUnitRegistered",
        "ClusterFormed",
        "MemberUnitRegistered",
        "MemberUnitRegistered",
        "MemberJoined",
        "MemberJoined",
    ]
    # Directory events of a unit are on the unit's stream, in order.
    on_village = [e for e in envelopes if e["stream_id"] == village]
    assert [(e["type"], e["version"]) for e in on_village] == [
        ("MemberUnitRegistered", 1),
        ("MemberJoined", 1 + 1),
    ]
    assert on_village[0]["data"]["village"] == VILLAGE_FACTS
    assert envelopes[-1]["data"] == {
        "cluster_id": cluster,
        "alliance_id": alliance,
        "unit_id": bank,
        "unit_type": "bank",
        "joined_on": "2026-02-01",
    }


def test_roster_and_village_directory_follow_effective_dates(api: Api) -> None:
    alliance = found_alliance(api)
    east, west = form_cluster(api, alliance), form_cluster(api, alliance)
    village, other = register_village(api), register_village(api, weak=False)
    ok(join(api, village, east, "2026-01-01"))
    ok(join(api, other, east, "2026-01-15"))
    ok(leave(api, village, east, "2026-04-01"))
    ok(join(api, village, west, "2026-04-01"))

    def roster(cluster: str, on: str) -> list[str]:
        body = ok(api.get(f"{A}/clusters/{cluster}/roster", params={"on": on}), 200)
        return [m["unit_id"] for m in body["members"]]

    assert roster(east, "2025-12-31") == []
    assert roster(east, "2026-01-01") == [village]
    assert roster(east, "2026-01-15") == sorted([village, other])
    assert roster(east, "2026-03-31") == sorted([village, other])
    assert roster(east, "2026-04-01") == [other]  # left_on is the first day outside
    assert roster(west, "2026-03-31") == []
    assert roster(west, "2026-04-01") == [village]

    one = ok(api.get(f"{A}/villages/{village}", params={"on": "2026-03-31"}), 200)
    assert one["clusters"] == [east]
    assert one["village"]["weak"] is True
    assert one["memberships"] == [
        {
            "cluster_id": east,
            "alliance_id": alliance,
            "joined_on": "2026-01-01",
            "left_on": "2026-04-01",
        },
        {"cluster_id": west, "alliance_id": alliance, "joined_on": "2026-04-01", "left_on": None},
    ]
    listed = ok(api.get(f"{A}/villages", params={"on": "2026-05-01", "cluster_id": west}), 200)
    assert [v["unit_id"] for v in listed["villages"]] == [village]
    problem(api.get(f"{A}/villages/{new_id('V')}"), 404)
    # any role may read the directory (other services check villages through it)
    ok(api.get(f"{A}/villages/{village}", role="exchange_staff"), 200)


def test_a_village_is_in_one_cluster_of_an_alliance_at_a_time(api: Api) -> None:
    alliance = found_alliance(api)
    town = found_alliance(api, level="town", parent_alliance_id=alliance)
    east, west = form_cluster(api, alliance), form_cluster(api, alliance)
    town_cluster = form_cluster(api, town)
    village = register_village(api)
    ok(join(api, village, east, "2026-01-01"))
    before = len(api.events("alliance"))

    body = problem(join(api, village, west, "2026-02-01"), 422, "cluster_id")
    assert east in body["errors"]["cluster_id"][0]
    problem(join(api, village, east, "2026-02-01"), 422, "cluster_id")  # already in it
    assert len(api.events("alliance")) == before

    # a cluster of another alliance (the town sub-alliance) is allowed at the same time
    ok(join(api, village, town_cluster, "2026-02-01"))
    # after leaving, a new cluster from the day it left, not before
    ok(leave(api, village, east, "2026-03-01"))
    problem(join(api, village, west, "2026-02-28"), 422, "joined_on")
    ok(join(api, village, west, "2026-03-01"))

    # an enterprise may serve several clusters of one alliance
    firm = ok(
        api.post(
            f"{A}/units",
            {
                "id": new_id("E"),
                "district": DISTRICT,
                "name": "合作社",
                "unit_type": "enterprise_private",
            },
            **ADMIN,
        )
    )["unit_id"]
    ok(join(api, firm, east, "2026-01-01"))
    ok(join(api, firm, west, "2026-01-01"))


@pytest.mark.parametrize("backend", ["sqlite"])
def test_directory_command_rules_name_the_field(api: Api) -> None:
    alliance = found_alliance(api)
    cluster = form_cluster(api, alliance)
    village = register_village(api)
    before = len(api.events("alliance"))
    problem(
        api.post(
            f"{A}/alliances",
            {"id": "X", "district": DISTRICT, "name": "n", "level": "town"},
            **ADMIN,
        ),
        422,
        "parent_alliance_id",
    )
    town = found_alliance(api, level="town", parent_alliance_id=alliance)
    before += 1
    problem(
        api.post(
            f"{A}/alliances",
            {
                "id": "X",
                "district": DISTRICT,
                "name": "n",
                "level": "town",
                "parent_alliance_id": town,
            },
            **ADMIN,
        ),
        422,
        "parent_alliance_id",
    )
    problem(
        api.post(
            f"{A}/clusters",
            {"id": "C", "alliance_id": "nope", "name": "n", "theme_industry": "t"},
            **ADMIN,
        ),
        422,
        "alliance_id",
    )
    problem(
        api.post(
            f"{A}/clusters",
            {
                "id": "C",
                "alliance_id": alliance,
                "name": "n",
                "theme_industry": "t",
                "lead_unit_id": "nope",
            },
            **ADMIN,
        ),
        422,
        "lead_unit_id",
    )
    problem(
        api.post(
            f"{A}/clusters",
            {"id": cluster, "alliance_id": alliance, "name": "n", "theme_industry": "t"},
            **ADMIN,
        ),
        409,
    )
    problem(
        api.post(
            f"{A}/units",
            {"id": "V", "district": DISTRICT, "name": "n", "unit_type": "village"},
            **ADMIN,
        ),
        422,
        "village",
    )
    problem(
        api.post(
            f"{A}/units",
            {"id": "V", "district": DISTRICT, "name": "n", "unit_type": "bank"},
            **ADMIN,
        ),
        422,
        "bank_code",
    )
    problem(
        api.post(
            f"{A}/units",
            {
                "id": "V",
                "district": DISTRICT,
                "name": "n",
                "unit_type": "village",
                "village": {**VILLAGE_FACTS, "contracted_area_mu": "1.234"},
            },
            **ADMIN,
        ),
        422,
        "village.contracted_area_mu",
    )
    problem(
        api.post(
            f"{A}/units",
            {"id": "bad id", "district": DISTRICT, "name": "n", "unit_type": "department"},
            **ADMIN,
        ),
        422,
        "id",
    )
    problem(join(api, village, "nope", "2026-01-01"), 422, "cluster_id")
    problem(join(api, "nope", cluster, "2026-01-01"), 404)
    problem(leave(api, village, cluster, "2026-01-01"), 422, "cluster_id")  # not a member
    ok(join(api, village, cluster, "2026-01-10"))
    problem(leave(api, village, cluster, "2026-01-10"), 422, "left_on")
    problem(
        api.post(
            f"{A}/units/{village}/memberships",
            {"cluster_id": cluster, "joined_on": "10/01/2026"},
            **ADMIN,
        ),
        422,
        "joined_on",
    )
    other_district = ok(
        api.post(
            f"{A}/units",
            {
                "id": new_id("V"),
                "district": "D2",
                "name": "n",
                "unit_type": "village",
                "village": VILLAGE_FACTS,
            },
            role="district_admin",
            district="D2",
        )
    )["unit_id"]
    problem(
        join(api, other_district, cluster, "2026-01-01", role="district_admin"), 422, "cluster_id"
    )
    assert event_types(api)[before:] == ["MemberJoined", "MemberUnitRegistered"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_only_admins_and_secretaries_of_the_district_manage_the_directory(api: Api) -> None:
    alliance = found_alliance(api)
    cluster = form_cluster(api, alliance)
    other = form_cluster(api, alliance)
    village = register_village(api)
    before = len(api.events("alliance"))
    body = {"id": "AL-x", "district": DISTRICT, "name": "n", "level": "district"}
    problem(api.post(f"{A}/alliances", body, **SECRETARY), 403)
    problem(api.post(f"{A}/alliances", body, role="district_admin", district="D2"), 403, "district")
    cl = {"id": "CL-x", "alliance_id": alliance, "name": "n", "theme_industry": "t"}
    problem(api.post(f"{A}/clusters", cl, role="district_admin", district="D2"), 403, "district")
    problem(api.post(f"{A}/clusters", cl, **SECRETARY), 403)
    problem(join(api, village, cluster, "2026-01-01", role="village_cadre", village=village), 403)
    problem(
        join(api, village, cluster, "2026-01-01", role="alliance_secretary", district="D2"),
        403,
        "district",
    )
    # a secretary without a district claim manages nothing
    problem(join(api, village, cluster, "2026-01-01", role="alliance_secretary"), 403, "district")
    # a cluster secretary manages only their cluster
    problem(join(api, village, other, "2026-01-01", **SECRETARY, cluster=cluster), 403, "cluster")
    assert len(api.events("alliance")) == before
    ok(join(api, village, cluster, "2026-01-01", **SECRETARY, cluster=cluster))
    problem(
        leave(api, village, cluster, "2026-02-01", role="alliance_secretary", district="D2"), 403
    )
    problem(
        api.post(
            f"{A}/units",
            {"id": "V-x", "district": DISTRICT, "name": "n", "unit_type": "department"},
            role="village_cadre",
            village=village,
        ),
        403,
    )


def test_concurrent_joins_of_one_village_let_exactly_one_in(api: Api) -> None:
    alliance = found_alliance(api)
    clusters = [form_cluster(api, alliance) for _ in range(5)]
    village = register_village(api)
    with ThreadPoolExecutor(len(clusters)) as pool:
        answers = list(pool.map(lambda c: join(api, village, c, "2026-01-01"), clusters))
    statuses = sorted(a.status_code for a in answers)
    assert statuses.count(201) == 1, [a.text for a in answers]
    assert set(statuses) <= {201, 409, 422}
    joined = [e for e in api.events("alliance") if e["type"] == "MemberJoined"]
    assert len(joined) == 1
    winner = next(a for a in answers if a.status_code == 201).json()
    assert joined[0]["data"]["cluster_id"] == winner["memberships"][0]["cluster_id"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_openapi_lists_the_alliance_endpoints(api: Api) -> None:
    spec = ok(api.get(f"{A}/openapi.json", role=None), 200)
    paths = spec["paths"]
    for path in (
        f"{A}/alliances",
        f"{A}/clusters",
        f"{A}/units",
        f"{A}/units/{{unit_id}}/memberships",
        f"{A}/units/{{unit_id}}/memberships/{{cluster_id}}/leave",
        f"{A}/tasks",
        f"{A}/sweeps",
        f"{A}/activities",
        f"{A}/talent",
        f"{A}/villages/{{village_id}}",
    ):
        assert path in paths, sorted(paths)
