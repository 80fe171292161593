"""A plausible district, generated the same way every time from a seed.

One district alliance (红盟) with two town sub-alliances, seven clusters with a theme industry
each, about sixty villages (a fifth of them weak villages), enterprises, a university, two banks
and a trusteeship centre. Names are made up; sizes are of the order the reference reports give
for a coastal county district.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

DISTRICT = "D-HONGQIAO"
ALLIANCE = "A-HONGMENG"

CLUSTERS = (
    ("C-BAYBERRY", "杨梅产业组团", "杨梅"),
    ("C-SEAFOOD", "海鲜共富组团", "虾蟹养殖"),
    ("C-TEA", "茶香组团", "白茶"),
    ("C-RICE", "稻香粮食组团", "水稻"),
    ("C-TOURISM", "乡村文旅组团", "民宿文旅"),
    ("C-FLOWERS", "花木组团", "花卉苗木"),
    ("C-VEG", "菜篮子组团", "蔬菜"),
)
TOWNS = (("A-HONGMENG-EAST", "东城红盟"), ("A-HONGMENG-WEST", "西岙红盟"))
_FIRST = "东西南北前后上下大小新老石岙塘溪山湖桥岭坑湾洋浦"
_SECOND = "岙塘溪山湖桥岭坑湾洋浦头林港沙田园家庄"

ENTERPRISES = (
    ("E-AGRI-SOE", "区农业发展集团", "enterprise_soe"),
    ("E-SEAFOOD-CO", "海之味水产有限公司", "enterprise_private"),
    ("E-TEA-CO", "云雾茶业有限公司", "enterprise_private"),
    ("E-UNIV", "农林大学乡村振兴研究院", "university"),
)
BANKS = (("B-RCB", "农商银行", "RCB"), ("B-POSTAL", "邮储银行", "PSBC"))


@dataclass(frozen=True)
class Village:
    id: str
    name: str
    cluster_id: str
    population: int
    households: int
    contracted_area_mu: Decimal
    weak: bool
    # position on a local grid in km, for trusteeship travel
    x: Decimal
    y: Decimal


@dataclass
class District:
    villages: list[Village] = field(default_factory=list)

    def in_cluster(self, cluster_id: str) -> list[Village]:
        return [v for v in self.villages if v.cluster_id == cluster_id]


def generate(seed: int = 2026, villages_per_cluster: int = 9) -> District:
    rng = random.Random(seed)
    district = District()
    used: set[str] = set()
    for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
        # Each cluster sits around its own centre on a 40 km x 30 km district.
        cx, cy = 5 + (index % 4) * 10, 6 + (index // 4) * 14
        for n in range(villages_per_cluster):
            while True:
                name = rng.choice(_FIRST) + rng.choice(_SECOND) + "村"
                if name not in used:
                    used.add(name)
                    break
            households = rng.randint(180, 1400)
            district.villages.append(
                Village(
                    id=f"V-{index + 1:02d}{n + 1:02d}",
                    name=name,
                    cluster_id=cluster_id,
                    population=int(households * rng.uniform(2.6, 3.4)),
                    households=households,
                    contracted_area_mu=Decimal(rng.randint(800, 6500)),
                    weak=rng.random() < 0.2,
                    x=Decimal(str(round(cx + rng.uniform(-4, 4), 2))),
                    y=Decimal(str(round(cy + rng.uniform(-4, 4), 2))),
                )
            )
    return district
