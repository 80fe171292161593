"""The demo district: set it up through the public API, then keep plausible facts flowing.

``clustergov up --demo`` runs :func:`run` in a green thread of the same process; ``clustergov demo
--url ...`` runs it against a deployed system. Every setup step is idempotent, so restarting the
demo on the same databases continues where it was.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta

from demo.client import ApiError, Client
from demo.district import (
    ALLIANCE,
    BANKS,
    CLUSTERS,
    DISTRICT,
    ENTERPRISES,
    TOWNS,
    District,
    generate,
)
from shared.config import LOCAL_TZ

log = logging.getLogger(__name__)
ADMIN = "district_admin"


def today() -> date:
    return datetime.now(LOCAL_TZ).date()


def setup_alliance(api: Client, district: District, since: date) -> None:
    api.ensure(
        "/api/v1/alliance/alliances",
        {"id": ALLIANCE, "district": DISTRICT, "name": "红盟", "level": "district"},
        role=ADMIN,
    )
    for town_id, name in TOWNS:
        api.ensure(
            "/api/v1/alliance/alliances",
            {
                "id": town_id,
                "district": DISTRICT,
                "name": name,
                "level": "town",
                "parent_alliance_id": ALLIANCE,
            },
            role=ADMIN,
        )
    for unit_id, name, unit_type in ENTERPRISES:
        api.ensure(
            "/api/v1/alliance/units",
            {"id": unit_id, "district": DISTRICT, "name": name, "unit_type": unit_type},
            role=ADMIN,
        )
    for unit_id, name, code in BANKS:
        api.ensure(
            "/api/v1/alliance/units",
            {
                "id": unit_id,
                "district": DISTRICT,
                "name": name,
                "unit_type": "bank",
                "bank_code": code,
            },
            role=ADMIN,
        )
    for index, (cluster_id, name, theme) in enumerate(CLUSTERS):
        lead = ENTERPRISES[index % len(ENTERPRISES)][0]
        api.ensure(
            "/api/v1/alliance/clusters",
            {
                "id": cluster_id,
                "alliance_id": ALLIANCE,
                "name": name,
                "theme_industry": theme,
                "lead_unit_id": lead,
            },
            role=ADMIN,
        )
    for village in district.villages:
        api.ensure(
            "/api/v1/alliance/units",
            {
                "id": village.id,
                "district": DISTRICT,
                "name": village.name,
                "unit_type": "village",
                "village": {
                    "population": village.population,
                    "households": village.households,
                    "contracted_area_mu": str(village.contracted_area_mu),
                    "weak": village.weak,
                },
            },
            role=ADMIN,
        )
        _join(api, village.id, village.cluster_id, since)


def _join(api: Client, unit_id: str, cluster_id: str, since: date) -> None:
    try:
        api.post(
            f"/api/v1/alliance/units/{unit_id}/memberships",
            {"cluster_id": cluster_id, "joined_on": since.isoformat()},
            role=ADMIN,
            key=f"demo:join:{unit_id}:{cluster_id}",
        )
    except ApiError as exc:
        if exc.status != 422:  # already a member from an earlier run
            raise


#: One step of steady activity: (name, function(api, district, rng, day)).
Activity = tuple[str, Callable[[Client, District, random.Random, date], None]]


def record_activity(api: Client, district: District, rng: random.Random, day: date) -> None:
    village = rng.choice(district.villages)
    kind = rng.choice(["meeting", "visit", "training", "joint_event", "livestream_help"])
    now = datetime.now(LOCAL_TZ)
    api.post(
        "/api/v1/alliance/activities",
        {
            "id": f"ACT-{now:%Y%m%d%H%M%S%f}-{rng.randint(0, 999):03d}",
            "unit_id": village.id,
            "activity_type": kind,
            "title": f"{village.name}{_ACTIVITY_TITLES[kind]}",
            "occurred_at": now.isoformat(),
        },
        role="village_cadre",
        village=village.id,
    )


_ACTIVITY_TITLES = {
    "meeting": "党建联席会",
    "visit": "入户走访",
    "training": "新农人培训",
    "joint_event": "组团联建活动",
    "livestream_help": "直播助农",
}

ACTIVITIES: list[Activity] = [("activity", record_activity)]


def run(api: Client, *, seed: int = 2026, interval: float = 1.0, stop: Callable[[], bool]) -> None:
    """Set the district up, then post one plausible fact about every ``interval`` seconds."""
    district = generate(seed)
    rng = random.Random(seed + int(time.time()))
    since = today().replace(month=1, day=1) - timedelta(days=366)
    setup_alliance(api, district, since)
    log.info("demo district ready: %d villages in %d clusters", len(district.villages), 7)
    while not stop():
        name, step = rng.choice(ACTIVITIES)
        try:
            step(api, district, rng, today())
        except ApiError as exc:
            # A rejected fact is part of life (a bid too low, a task already closed).
            log.debug("demo %s rejected: %s", name, exc)
        time.sleep(interval * rng.uniform(0.5, 1.5))
