"""End to end with the real alliance service: its commands build the directory the ranking
service keeps, and a recorded activity moves the board."""

from __future__ import annotations

from datetime import datetime

import pytest

from services.alliance.service import AllianceService
from services.ranking.service import RankingService
from shared.config import LOCAL_TZ
from tests.conftest import Api
from tests.test_ranking_support import wait_active, wait_board

DISTRICT = "D9"


def ok(response) -> dict:
    assert response.status_code == 201, response.text
    return response.json()


def build_district(api: Api) -> None:
    admin = {"role": "district_admin", "district": DISTRICT}
    ok(
        api.post(
            "/api/v1/alliance/alliances",
            {"id": "red", "district": DISTRICT, "name": "红盟", "level": "district"},
            **admin,
        )
    )
    for cid, name in (("tea", "茶香组团"), ("rice", "稻香组团")):
        ok(
            api.post(
                "/api/v1/alliance/clusters",
                {"id": cid, "alliance_id": "red", "name": name, "theme_industry": "农业"},
                **admin,
            )
        )
    for vid, cid in (("east", "tea"), ("west", "rice")):
        village = {
            "population": 800,
            "households": 260,
            "contracted_area_mu": "1500.00",
            "weak": False,
        }
        ok(
            api.post(
                "/api/v1/alliance/units",
                {
                    "id": vid,
                    "district": DISTRICT,
                    "name": f"{vid}村",
                    "unit_type": "village",
                    "village": village,
                },
                **admin,
            )
        )
        ok(
            api.post(
                f"/api/v1/alliance/units/{vid}/memberships",
                {"cluster_id": cid, "joined_on": "2024-01-01"},
                **admin,
            )
        )


@pytest.mark.parametrize("backend", ["sqlite"])
def test_an_activity_recorded_in_the_alliance_moves_the_board(start_services) -> None:
    api = start_services(RankingService, AllianceService)
    build_district(api)
    rules = {
        "entity": "cluster",
        "indicators": [{"key": "act", "name": "活动", "source": "activities", "weight": "1"}],
        "windows": ["month"],
    }
    ok(
        api.post(
            "/api/v1/ranking/competitions",
            {"id": "e2e", "name": "活跃度比拼", "district": DISTRICT, "rules": rules},
            role="district_admin",
            district=DISTRICT,
        )
    )
    wait_active(api, "e2e")
    # both clusters known from the alliance's directory events, nobody active yet: a tie at 100
    wait_board(api, "e2e", [(1, "rice", "100.00"), (2, "tea", "100.00")])
    now = datetime.now(LOCAL_TZ).replace(microsecond=0)
    ok(
        api.post(
            "/api/v1/alliance/activities",
            {
                "id": "meet-1",
                "unit_id": "west",
                "activity_type": "meeting",
                "title": "党员大会",
                "occurred_at": now.isoformat(),
            },
            role="district_admin",
            district=DISTRICT,
        )
    )
    # rice: 1 activity -> 100.00 (and first to reach it); tea: 0 -> 60.00
    board = wait_board(api, "e2e", [(1, "rice", "100.00"), (2, "tea", "60.00")])
    assert board["rows"][0]["name"] == "稻香组团"
