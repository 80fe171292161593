"""The competitions the big screen shows: the clusters' race and the weak villages' race."""

from __future__ import annotations

from demo.common import ADMIN, Demo
from demo.district import ALLIANCE, DISTRICT

R = "/api/v1/ranking"
CLUSTER_RACE = "hongmeng-clusters"
WEAK_RACE = "hongmeng-weak-villages"

CLUSTER_RULES = {
    "entity": "cluster",
    "group": {"alliance_id": ALLIANCE},
    "indicators": [
        {"key": "land", "name": "土地流转", "source": "land_transferred_mu", "weight": "0.2",
         "target": "3000", "cap": "1.2"},
        {"key": "trusteeship", "name": "托管服务面积", "source": "trusteeship_area_mu",
         "weight": "0.15"},
        {"key": "loans", "name": "共富贷投放", "source": "guaranteed_loans_fen", "weight": "0.1"},
        {"key": "gmv", "name": "电商销售增幅", "source": "gmv_fen", "weight": "0.15",
         "growth": True},
        {"key": "income", "name": "人均集体收入", "source": "collective_income_fen",
         "weight": "0.2", "per_capita": True},
        {"key": "tasks", "name": "任务完成", "source": "tasks_verified", "weight": "0.1"},
        {"key": "activity", "name": "组团活跃度", "source": "activities", "weight": "0.1"},
    ],
    "windows": ["month", "quarter", "year", "all"],
    "tie_break": ["score", "indicator:land", "first_reached", "entity_id"],
    "shared_ranks": False,
    "top_n": 10,
    "bonuses": [{"source": "talent", "points": "0.5", "max_points": "3"}],
    "deductions": [{"source": "tasks_overdue", "points": "1"}],
    "colours": {
        "red_bottom": 1,
        "yellow_bottom": 2,
        "yellow_drop": 2,
        "red_drop": 4,
        "escalate_after_reds": 3,
    },
}  # fmt: skip

WEAK_RULES = {
    "entity": "village",
    "group": {"weak": True},
    "indicators": [
        {"key": "income", "name": "人均集体收入", "source": "collective_income_fen",
         "weight": "0.5", "per_capita": True},
        {"key": "gmv", "name": "电商销售", "source": "gmv_fen", "weight": "0.2"},
        {"key": "land", "name": "土地流转", "source": "land_transferred_mu", "weight": "0.2"},
        {"key": "activity", "name": "党建活动", "source": "activities", "weight": "0.1"},
    ],
    "windows": ["month", "quarter", "year", "all"],
    "tie_break": ["score", "first_reached", "entity_id"],
    "top_n": 20,
    "colours": {"red_bottom": 2, "yellow_bottom": 3},
}  # fmt: skip


def setup(demo: Demo) -> None:
    for competition, name, rules in (
        (CLUSTER_RACE, "红盟组团比拼", CLUSTER_RULES),
        (WEAK_RACE, "薄弱村增收赛", WEAK_RULES),
    ):
        demo.api.ensure(
            f"{R}/competitions",
            {"id": competition, "name": name, "district": DISTRICT, "rules": rules},
            role=ADMIN,
        )


def board(demo: Demo, competition: str = CLUSTER_RACE, window: str = "year") -> dict:
    return demo.api.get(f"{R}/competitions/{competition}/board?window={window}", role="ops")
