"""The alliance: alliances, clusters, units and memberships; tasks, talent and activity."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from demo.client import ApiError, Client
from demo.common import ADMIN, CADRE, SECRETARY, Demo, at, now
from demo.district import ALLIANCE, BANKS, CLUSTERS, DISTRICT, ENTERPRISES, TOWNS, District

A = "/api/v1/alliance"

#: Tasks every cluster is given for the year: (key, title, indicator, unit, target).
TASKS = (
    ("LAND", "新增土地流转", "land_transferred", "亩", Decimal(1200)),
    ("GMV", "农产品线上销售", "gmv", "万元", Decimal(300)),
    ("TRAIN", "新农人培训", "trained", "人次", Decimal(200)),
)
TALENT = (
    ("returning_graduate", "返乡大学生"),
    ("veteran", "退役军人"),
    ("entrepreneur", "乡贤创业者"),
    ("expert", "农技专家"),
)
_SURNAMES = "王李张刘陈杨黄赵周吴徐孙朱胡郭林何高罗郑"
_GIVEN = "建国海燕志强秀英晓明丽娟伟杰春梅国庆小红德华振兴"


def setup(demo: Demo) -> None:
    api, district = demo.api, demo.district
    since = demo.first_day - timedelta(days=1)
    api.ensure(
        f"{A}/alliances",
        {"id": ALLIANCE, "district": DISTRICT, "name": "红盟", "level": "district"},
        role=ADMIN,
    )
    for town_id, name in TOWNS:
        api.ensure(
            f"{A}/alliances",
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
            f"{A}/units",
            {"id": unit_id, "district": DISTRICT, "name": name, "unit_type": unit_type},
            role=ADMIN,
        )
    for unit_id, name, code in BANKS:
        api.ensure(
            f"{A}/units",
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
            f"{A}/clusters",
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
            f"{A}/units",
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
    setup_tasks(demo)
    setup_talent(demo)


def _join(api: Client, unit_id: str, cluster_id: str, since: date) -> None:
    try:
        api.post(
            f"{A}/units/{unit_id}/memberships",
            {"cluster_id": cluster_id, "joined_on": since.isoformat()},
            role=ADMIN,
            key=f"demo:join:{unit_id}:{cluster_id}",
        )
    except ApiError as exc:
        if not (exc.already or exc.status == 422 and "member" in str(exc.body)):
            raise


def task_id(cluster_id: str, key: str, year: int) -> str:
    return f"T-{year}-{cluster_id}-{key}"


def setup_tasks(demo: Demo) -> None:
    """This year's tasks per cluster; last year's, verified, for the history."""
    year = demo.today.year
    for cluster_id, _name, _theme in CLUSTERS:
        for key, title, indicator, unit, target in TASKS:
            for y in (year - 1, year) if demo.history else (year,):
                demo.api.ensure(
                    f"{A}/tasks",
                    {
                        "id": task_id(cluster_id, key, y),
                        "cluster_id": cluster_id,
                        "title": f"{y}年{title}",
                        "indicator": indicator,
                        "measure_unit": unit,
                        "target_quantity": str(target),
                        "starts_on": f"{y}-01-01",
                        "deadline_on": f"{y}-12-31",
                    },
                    role=ADMIN,
                )
            demo.bucket("tasks").append((task_id(cluster_id, key, year), target))
    if demo.history:
        _finish_last_year(demo, year - 1)


def _finish_last_year(demo: Demo, year: int) -> None:
    rng = demo.rng
    for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
        for number, (key, _title, _indicator, _unit, target) in enumerate(TASKS):
            task = task_id(cluster_id, key, year)
            # Some clusters finish all, some fall short: the verified count differs.
            share = Decimal("1.05") if (index + number) % 3 else Decimal("0.7")
            done = (target * share).quantize(Decimal(1))
            demo.api.ensure(
                f"{A}/tasks/{task}/progress",
                {
                    "quantity": str(done),
                    "evidence_note": "年度台账汇总",
                    "reported_on": date(year, 9 + rng.randint(0, 2), 15).isoformat(),
                },
                role=SECRETARY,
                key=f"demo:progress:{task}",
            )
            if share >= 1:
                demo.api.ensure(
                    f"{A}/tasks/{task}/completion",
                    {"note": "完成", "submitted_on": f"{year}-12-20"},
                    role=SECRETARY,
                    key=f"demo:submit:{task}",
                )
                demo.api.ensure(
                    f"{A}/tasks/{task}/verification",
                    {"verified_on": f"{year}-12-28"},
                    role=ADMIN,
                    key=f"demo:verify:{task}",
                )


def person(demo: Demo) -> str:
    return demo.rng.choice(_SURNAMES) + "".join(demo.rng.sample(_GIVEN, 2))


def setup_talent(demo: Demo) -> None:
    rng = demo.rng
    for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
        villages = demo.district.in_cluster(cluster_id)
        for n in range(1 + index % 3):
            category, _label = TALENT[(index + n) % len(TALENT)]
            demo.api.ensure(
                f"{A}/talent",
                {
                    "id": f"TL-{cluster_id}-{n + 1}",
                    "cluster_id": cluster_id,
                    "village_id": rng.choice(villages).id,
                    "name": person(demo),
                    "category": category,
                    "registered_on": f"{demo.today.year}-0{1 + n}-10",
                },
                role=ADMIN,
            )


# -- the steady stream ----------------------------------------------------------------------------

_ACTIVITY_TITLES = {
    "meeting": "党建联席会",
    "visit": "入户走访",
    "training": "新农人培训",
    "joint_event": "组团联建活动",
    "livestream_help": "直播助农",
}


def activity(demo: Demo, when: str | None = None, village_id: str | None = None) -> None:
    rng = demo.rng
    village = (
        next(v for v in demo.district.villages if v.id == village_id)
        if village_id
        else rng.choice(demo.district.villages)
    )
    kind = rng.choice(list(_ACTIVITY_TITLES))
    demo.api.post(
        f"{A}/activities",
        {
            "id": demo.serial("ACT"),
            "unit_id": village.id,
            "activity_type": kind,
            "title": f"{village.name}{_ACTIVITY_TITLES[kind]}",
            "occurred_at": when or now().isoformat(),
            "participants": rng.randint(8, 120),
        },
        role=CADRE,
        village=village.id,
    )


def history_activities(demo: Demo) -> None:
    """A handful of activities per cluster and month of the history (ids fixed: idempotent)."""
    from demo.common import day_in, months

    rng = demo.rng
    for year, month in months(demo.first_day, demo.today):
        for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
            villages = demo.district.in_cluster(cluster_id)
            for n in range(1 + (index * 7 + month) % 3):
                village = villages[(month + n) % len(villages)]
                day = day_in(year, month, rng, demo.today)
                kind = list(_ACTIVITY_TITLES)[(index + n + month) % len(_ACTIVITY_TITLES)]
                demo.api.ensure(
                    f"{A}/activities",
                    {
                        "id": f"ACT-H-{year}{month:02d}-{cluster_id}-{n}",
                        "unit_id": village.id,
                        "activity_type": kind,
                        "title": f"{village.name}{_ACTIVITY_TITLES[kind]}",
                        "occurred_at": at(day, 9 + n),
                        "participants": rng.randint(8, 120),
                    },
                    role=ADMIN,
                )


def task_progress(demo: Demo) -> None:
    tasks = demo.bucket("tasks")
    if not tasks:
        return
    task, target = demo.rng.choice(tasks)
    quantity = (target * Decimal(demo.rng.uniform(0.005, 0.03))).quantize(Decimal("0.1"))
    demo.api.post(
        f"{A}/tasks/{task}/progress",
        {
            "quantity": str(max(quantity, Decimal("0.1"))),
            "evidence_note": "村级台账更新",
            "reported_on": demo.today.isoformat(),
        },
        role=SECRETARY,
    )


def talent(demo: Demo) -> None:
    rng = demo.rng
    village = rng.choice(demo.district.villages)
    category, _label = rng.choice(TALENT)
    demo.api.post(
        f"{A}/talent",
        {
            "id": demo.serial("TL"),
            "cluster_id": village.cluster_id,
            "village_id": village.id,
            "name": person(demo),
            "category": category,
            "registered_on": demo.today.isoformat(),
        },
        role=ADMIN,
    )


def sweep(demo: Demo) -> None:
    demo.api.post(f"{A}/sweeps", {"as_of": demo.today.isoformat()}, role="ops")


def wait_known(api: Client, district: District) -> None:
    """Wait until every service's directory knows the last village (events have arrived)."""
    last = district.villages[-1].id
    for service in ("land", "trusteeship", "finance", "commerce"):
        api.wait_for(f"/api/v1/{service}/directory/villages/{last}")
