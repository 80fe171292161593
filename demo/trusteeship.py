"""Trusteeship: the district's service centre as provider with season price lists, machinery
teams with machines and licensed operators, every village's field site, and orders that go
through signature, scheduling, dispatch, work, acceptance and settlement."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from decimal import Decimal

from demo.common import CADRE, CENTRE, Demo, at
from demo.district import CLUSTERS, DISTRICT, Village
from shared.config import LOCAL_TZ

#: What one machine does in a 10-hour working day (the service's default day): a drone sprays
#: far more than a harvester cuts. A dispatch window must be long enough for the task's area.
CAPACITY_MU_PER_DAY = {"protect": 300, "plough": 120, "sow": 120, "harvest": 120}


def hours_for(stage: str, area: Decimal) -> int:
    return max(1, math.ceil(area * 10 / CAPACITY_MU_PER_DAY[stage]))


T = "/api/v1/trusteeship"
PROVIDER = "TP-CENTRE"
#: fen per mu per stage: plough 50, sow 35, protect 12 (drone), harvest 70 yuan
PRICES = {"plough": 5000, "sow": 3500, "protect": 1200, "harvest": 7000}
MACHINES = {"plough": "tractor", "sow": "transplanter", "protect": "drone", "harvest": "harvester"}
CROPS = {"summer": "早稻", "autumn": "晚稻"}
#: (team id, base cluster index): a machinery team based in every cluster
TEAMS = tuple(
    (f"TT-{cluster_id[2:]}", index) for index, (cluster_id, _n, _t) in enumerate(CLUSTERS)
)


def lat_lon(village: Village) -> tuple[str, str]:
    """The grid (km) of the generated district placed near 29.8 N 121.3 E."""
    lat = Decimal("29.8") + village.y / Decimal(111)
    lon = Decimal("121.3") + village.x / Decimal(96)
    return str(lat.quantize(Decimal("0.000001"))), str(lon.quantize(Decimal("0.000001")))


def seasons(demo: Demo) -> list[str]:
    years = (demo.today.year - 1, demo.today.year)
    return [f"{y}-{s}" for y in years for s in ("summer", "autumn")]


def setup(demo: Demo) -> None:
    api, villages = demo.api, demo.district.villages
    api.ensure(
        f"{T}/providers",
        {
            "id": PROVIDER,
            "district": DISTRICT,
            "name": "区农业社会化服务中心",
            "provider_type": "company",
            "village_id": villages[0].id,
            "listed_on": (demo.first_day - timedelta(days=30)).isoformat(),
        },
        role=CENTRE,
    )
    for season in seasons(demo):
        api.ensure(
            f"{T}/providers/{PROVIDER}/price-lists",
            {
                "season": season,
                "prices": [{"stage": s, "unit_price_fen": p} for s, p in PRICES.items()],
                "published_on": f"{season[:4]}-01-05",
            },
            role=CENTRE,
            key=f"demo:prices:{season}",
        )
    for village in villages:
        lat, lon = lat_lon(village)
        api.ensure(
            f"{T}/village-sites",
            {"village_id": village.id, "lat": lat, "lon": lon},
            role=CENTRE,
            key=f"demo:site:{village.id}",
        )
    for team, cluster_index in TEAMS:
        base = demo.district.in_cluster(CLUSTERS[cluster_index % len(CLUSTERS)][0])[0]
        lat, lon = lat_lon(base)
        api.ensure(
            f"{T}/teams",
            {
                "id": team,
                "provider_id": PROVIDER,
                "name": f"{base.name}农机服务队",
                "team_type": "machinery",
                "base_village_id": base.id,
                "base_lat": lat,
                "base_lon": lon,
            },
            role=CENTRE,
        )
        for stage, machine_type in MACHINES.items():
            api.ensure(
                f"{T}/machines",
                {
                    "id": f"{team}-{stage}",
                    "team_id": team,
                    "machine_type": machine_type,
                    "capacity_mu_per_day": str(CAPACITY_MU_PER_DAY[stage]),
                },
                role=CENTRE,
            )
        for n in range(2):
            api.ensure(
                f"{T}/operators",
                {
                    "id": f"{team}-OP{n + 1}",
                    "team_id": team,
                    "name": ("王", "李", "陈")[n] + "师傅",
                    "licence_no": f"NJ-{team}-{n + 1}",
                    "licence_expires_on": f"{demo.today.year + 3}-12-31",
                },
                role=CENTRE,
            )
    if demo.history:
        history(demo)


def work(
    demo: Demo,
    order: str,
    village: Village,
    season: str,
    stage: str,
    area: Decimal,
    day: date,
    team: str,
    *,
    hour: int = 8,
    fresh: bool = False,
) -> None:
    """One order of one stage on one parcel, from order to settlement on the business day."""
    send = demo.api.post if fresh else demo.api.ensure
    parcel = f"TPC-{order}"
    ordered = day - timedelta(days=20)
    send(
        f"{T}/orders",
        {
            "id": order,
            "village_id": village.id,
            "provider_id": PROVIDER,
            "customer_id": f"FARM-{village.id}",
            "customer_name": f"{village.name}种粮大户",
            "customer_type": "family_farm",
            "crop": CROPS.get(season[5:], "水稻"),
            "season": season,
            "mode": "partial",
            "stages": [stage],
            "parcels": [
                {"parcel_id": parcel, "parcel_area_mu": str(area), "contracted_area_mu": str(area)}
            ],
            "ordered_on": ordered.isoformat(),
        },
        role=CADRE,
        village=village.id,
        key=f"demo:order:{order}",
    )
    send(
        f"{T}/orders/{order}/signature",
        {"signed_on": (ordered + timedelta(days=1)).isoformat()},
        role=CADRE,
        village=village.id,
        key=f"demo:sign:{order}",
    )
    send(
        f"{T}/orders/{order}/tasks",
        {"stage": stage, "planned_on": day.isoformat()},
        role=CENTRE,
        key=f"demo:plan:{order}",
    )
    task = f"{order}:{'protect1' if stage == 'protect' else stage}:{parcel}"
    hours = hours_for(stage, area)
    send(
        f"{T}/dispatches",
        {
            "task_id": task,
            "team_id": team,
            "machine_ids": [f"{team}-{stage}"],
            "operator_ids": [f"{team}-OP1"],
            "starts_at": at(day, hour),
            "ends_at": at(day, hour + hours),
        },
        role=CENTRE,
        key=f"demo:dispatch:{order}",
    )
    send(
        f"{T}/tasks/{task}/start",
        {"started_at": at(day, hour)},
        role=CENTRE,
        key=f"demo:start:{order}",
    )
    send(
        f"{T}/tasks/{task}/completion",
        {"completed_at": at(day, hour + hours)},
        role=CENTRE,
        key=f"demo:done:{order}",
    )
    measured = (area * Decimal("0.98")).quantize(Decimal("0.01"))
    send(
        f"{T}/tasks/{task}/acceptance",
        {
            "measured_area_mu": str(measured),
            "farmer_confirmed_by": "农户代表",
            "village_confirmed_by": "村书记",
            "accepted_on": day.isoformat(),
        },
        role=CADRE,
        village=village.id,
        key=f"demo:accept:{order}",
    )
    send(
        f"{T}/orders/{order}/settlements",
        {"settled_on": day.isoformat()},
        role=CENTRE,
        key=f"demo:settle:{order}",
    )


#: (season suffix, stage, month, day) of the history's work per year
_CALENDAR = (
    ("summer", "protect", 5, 12),
    ("summer", "harvest", 7, 16),
    ("autumn", "harvest", 10, 20),
)


def history(demo: Demo) -> None:
    rng = demo.rng
    for year in (demo.today.year - 1, demo.today.year):
        for n, (suffix, stage, month, day_of) in enumerate(_CALENDAR):
            for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
                day = date(year, month, day_of) + timedelta(days=index)
                if day >= demo.today:
                    continue
                villages = demo.district.in_cluster(cluster_id)
                village = villages[(n + year) % len(villages)]
                # At most a working day's area for one machine.
                most = CAPACITY_MU_PER_DAY[stage] * 8 // 10
                area = Decimal(rng.randint(most // 3, most)).quantize(Decimal("0.01"))
                team = TEAMS[index][0]
                order = f"TO-H{year}-{n}-{cluster_id}"
                work(demo, order, village, f"{year}-{suffix}", stage, area, day, team)


def stream_work(demo: Demo) -> None:
    """Today's work of a team in its own cluster: a drone pass or a harvest, accepted and
    settled. Each team takes two-hour slots (an hour's work, an hour to travel) from 08:00 to
    18:00, the first its schedule has free; a team whose day is full rests until tomorrow."""
    rng = demo.rng
    team, index = rng.choice(TEAMS)
    day = demo.today.isoformat()
    schedule = demo.api.get(f"{T}/teams/{team}/schedule?starts_on={day}&ends_on={day}")
    taken = {
        datetime.fromisoformat(w["starts_at"]).astimezone(LOCAL_TZ).hour
        for w in schedule["windows"]
        if w["kind"] == "team"
    }
    free = [h for h in range(8, 18, 2) if h not in taken]
    if not free:
        return
    village = rng.choice(demo.district.in_cluster(CLUSTERS[index][0]))
    stage = rng.choice(("protect", "protect", "harvest", "plough"))
    # An hour's work for one machine, in a two-hour slot.
    area = Decimal(rng.randint(3, CAPACITY_MU_PER_DAY[stage] // 10)).quantize(Decimal("0.01"))
    season = f"{demo.today.year}-autumn"
    order = demo.serial("TO")
    work(demo, order, village, season, stage, area, demo.today, team, hour=free[0], fresh=True)
