"""Automatic dispatch of a county-day: 2,000 work tasks over 80 teams.

Runs the trusteeship optimiser and a simple greedy baseline (each task to the nearest team that
still has time) on the same generated day, and prints time, tasks placed and total travel::

    .venv/bin/python bench/dispatch.py [--tasks 2000] [--teams 80] [--villages 220] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from services.trusteeship.dispatch import Params, Site, TaskIn, TeamIn, greedy, optimise

STAGE_MACHINES = {
    "plough": "tractor",
    "sow": "seeder",
    "protect": "drone",
    "harvest": "harvester",
}
# A county of about 60 km × 50 km around 30.0 N, 120.0 E.
LAT0, LON0, LAT_SPAN, LON_SPAN = 29.8, 119.7, 0.45, 0.62


def county_day(tasks: int, teams: int, villages: int, seed: int) -> tuple[list, list]:
    rng = random.Random(seed)
    day = date(2026, 6, 10)
    sites = {
        f"V{n:03d}": Site(
            round(LAT0 + rng.random() * LAT_SPAN, 6), round(LON0 + rng.random() * LON_SPAN, 6)
        )
        for n in range(villages)
    }
    village_ids = sorted(sites)
    # Harvest season: most work is harvesting and ploughing behind it, some drones spraying.
    stages = ["harvest"] * 5 + ["plough"] * 3 + ["protect"] * 2
    team_list = []
    for n in range(teams):
        stage = stages[n % len(stages)]
        base = sites[rng.choice(village_ids)]
        machines = [
            (f"M{n:03d}-{k}", STAGE_MACHINES[stage], float(rng.choice([200, 250, 300])))
            for k in range(rng.choice([3, 4]))
        ]
        operators = [(f"O{n:03d}-{k}", day + timedelta(days=365)) for k in range(len(machines))]
        team_list.append(TeamIn(f"T{n:03d}", "P1", base, machines, operators))
    task_list = []
    for n in range(tasks):
        village = rng.choice(village_ids)
        task_list.append(
            TaskIn(
                task_id=f"O{n:05d}:{n}",
                order_id=f"O{n:05d}",
                provider_id="P1",
                village_id=village,
                stage=rng.choice(stages),
                area_mu=float(rng.choice([3, 5, 8, 10, 12, 15, 20])),
                site=sites[village],
            )
        )
    return task_list, team_list


def run(name: str, solver, tasks: list, teams: list, params: Params) -> tuple[float, object]:
    started = time.perf_counter()
    plan = solver(tasks, teams, params)
    elapsed = time.perf_counter() - started
    print(
        f"{name:10s} {elapsed:7.3f} s  placed {len(plan.placements):5d}  "
        f"unplaced {len(plan.unplaced):4d}  travel {plan.total_travel_km:9.1f} km  "
        f"({plan.total_travel_km / max(len(plan.placements), 1):.2f} km per placed task)"
    )
    return elapsed, plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--teams", type=int, default=80)
    parser.add_argument("--villages", type=int, default=220)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    params = Params(day=date(2026, 6, 10), tz=ZoneInfo("Asia/Shanghai"), buffer_minutes=30)
    print(f"{args.tasks} tasks, {args.teams} teams, {args.villages} villages, seed {args.seed}")
    tasks, teams = county_day(args.tasks, args.teams, args.villages, args.seed)
    _, base = run("greedy", greedy, tasks, teams, params)
    tasks, teams = county_day(args.tasks, args.teams, args.villages, args.seed)
    _, best = run("optimiser", optimise, tasks, teams, params)
    print(
        f"travel: optimiser {best.total_travel_km / max(base.total_travel_km, 1e-9):.1%} of greedy"
    )


if __name__ == "__main__":
    main()
