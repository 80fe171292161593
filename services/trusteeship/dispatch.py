"""Automatic dispatch: place a day's pending work tasks on teams, keeping travel short.

Pure functions over plain data (no I/O), so the service, the tests and ``bench/dispatch.py`` run
the same code.

The model: a team works its tasks one after another within the working day. A task takes
``area / rate`` minutes, where ``rate`` is the team's daily capacity for the task's stage (the sum
over its machines suited to the stage) spread over the working day. Moving between villages takes
the travel time at ``speed_kmh`` and at least the configured travel buffer; tasks in the same
village follow each other directly. A team starts from its base, or after its last window already
booked that day (from that window's village).

The optimiser (``optimise``):

1. groups tasks by village × stage × provider, so a village is visited once per stage;
2. inserts groups into team routes by *regret*: the group whose best insertion is most
   expensive compared with its second best goes first, at its cheapest feasible position
   (candidates: the ``candidates`` nearest suitable teams); a group that fits no team whole is
   split in halves;
3. improves routes locally: 2-opt within a route, then relocating a group to another route
   where that shortens the total;
4. explains every task it could not place (``no_location``, ``no_team``,
   ``no_licensed_operator``, ``no_capacity``, ``window_full``).

``greedy`` is the baseline: each task in turn goes to the team nearest to where that team is now
that still has time for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from services.trusteeship.domain import MACHINE_STAGES

EARTH_KM = 6371.0


@dataclass(frozen=True)
class Site:
    lat: float
    lon: float


@dataclass(frozen=True)
class TaskIn:
    task_id: str
    order_id: str
    provider_id: str
    village_id: str
    stage: str
    area_mu: float
    site: Site | None


@dataclass
class TeamIn:
    team_id: str
    provider_id: str
    base: Site
    machines: list[tuple[str, str, float]]  # (machine_id, machine_type, mu per day)
    operators: list[tuple[str, date]]  # (operator_id, licence expires on)
    #: Already booked that day: (start minute, end minute, village site or None).
    busy: list[tuple[int, int, Site | None]] = field(default_factory=list)


@dataclass(frozen=True)
class Params:
    day: date
    tz: Any
    start_hour: int = 8
    end_hour: int = 18
    buffer_minutes: int = 60
    speed_kmh: float = 30.0
    candidates: int = 6

    @property
    def day_minutes(self) -> int:
        return (self.end_hour - self.start_hour) * 60

    def at(self, minute: int) -> datetime:
        start = datetime.combine(self.day, time(self.start_hour), tzinfo=self.tz)
        return start + timedelta(minutes=minute)


@dataclass(frozen=True)
class Placement:
    task_id: str
    order_id: str
    team_id: str
    machine_ids: list[str]
    operator_ids: list[str]
    starts_at: datetime
    ends_at: datetime
    travel_km: float


@dataclass(frozen=True)
class Unplaced:
    task_id: str
    order_id: str
    reason: str
    detail: str


@dataclass
class Plan:
    placements: list[Placement]
    unplaced: list[Unplaced]
    total_travel_km: float


def distance_km(a: Site, b: Site) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.lat), math.radians(b.lat)
    dp, dl = p2 - p1, math.radians(b.lon - a.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_KM * math.asin(min(1.0, math.sqrt(h)))


# -- teams as the optimiser sees them ---------------------------------------------------------


@dataclass
class _Group:
    village_id: str
    stage: str
    provider_id: str
    site: Site
    tasks: list[TaskIn]
    minutes_at_rate: dict[float, int] = field(default_factory=dict)


@dataclass
class _Team:
    team: TeamIn
    start_site: Site
    start_minute: int
    rates: dict[str, float]  # stage -> mu per minute
    machines: dict[str, list[str]]  # stage -> machine ids
    operators: list[str]
    route: list[_Group] = field(default_factory=list)
    minutes: int = 0  # the route's working day so far, kept by ``_Router.set_route``


def _prepare(teams: list[TeamIn], params: Params) -> tuple[list[_Team], dict[str, str]]:
    """Usable teams, and for teams that are not, why (team id -> reason)."""
    usable, unusable = [], {}
    for team in teams:
        operators = [o for o, expires in team.operators if expires >= params.day]
        if not operators:
            unusable[team.team_id] = "no_licensed_operator"
            continue
        rates: dict[str, float] = {}
        machines: dict[str, list[str]] = {}
        for machine_id, machine_type, capacity in team.machines:
            stage = MACHINE_STAGES[machine_type]
            rates[stage] = rates.get(stage, 0.0) + capacity / params.day_minutes
            machines.setdefault(stage, []).append(machine_id)
        start_site, start_minute = team.base, 0
        for _, end, site in sorted(team.busy, key=lambda b: b[1]):
            start_minute = max(start_minute, end)
            start_site = site or start_site
        if team.busy:
            start_minute += params.buffer_minutes
        usable.append(
            _Team(team, start_site, start_minute, rates, machines, operators, minutes=start_minute)
        )
    return usable, unusable


def _minutes(task: TaskIn, rate: float) -> int:
    return max(1, math.ceil(task.area_mu / rate))


class _Router:
    """Route arithmetic shared by the optimiser and the baseline."""

    def __init__(self, params: Params) -> None:
        self.params = params
        self._cache: dict[tuple[float, float, float, float], float] = {}
        self._gaps: dict[tuple[Site, Site, bool], int] = {}

    def km(self, a: Site, b: Site) -> float:
        if a == b:
            return 0.0
        key = (a.lat, a.lon, b.lat, b.lon)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = distance_km(a, b)
        return found

    def gap(self, a: Site, b: Site, first: bool = False) -> int:
        """Minutes between leaving ``a`` and working at ``b``."""
        if a == b:
            return 0
        key = (a, b, first)
        found = self._gaps.get(key)
        if found is None:
            travel = math.ceil(self.km(a, b) / self.params.speed_kmh * 60)
            found = travel if first else max(self.params.buffer_minutes, travel)
            self._gaps[key] = found
        return found

    def work(self, team: _Team, group: _Group) -> int:
        rate = team.rates[group.stage]
        found = group.minutes_at_rate.get(rate)
        if found is None:
            found = group.minutes_at_rate[rate] = sum(_minutes(t, rate) for t in group.tasks)
        return found

    def set_route(self, team: _Team, route: list[_Group]) -> None:
        team.route = route
        team.minutes = self.route_minutes(team, route)

    def route_km(self, team: _Team, route: list[_Group]) -> float:
        here, total = team.start_site, 0.0
        for group in route:
            total += self.km(here, group.site)
            here = group.site
        return total

    def route_minutes(self, team: _Team, route: list[_Group]) -> int:
        here, first, total = team.start_site, team.start_minute == 0, team.start_minute
        for group in route:
            total += self.gap(here, group.site, first) + self.work(team, group)
            here, first = group.site, False
        return total

    def fits(self, team: _Team, route: list[_Group]) -> bool:
        return self.route_minutes(team, route) <= self.params.day_minutes


# -- the optimiser ----------------------------------------------------------------------------


def optimise(tasks: list[TaskIn], teams: list[TeamIn], params: Params) -> Plan:
    router = _Router(params)
    usable, unusable = _prepare(teams, params)
    unplaced: list[Unplaced] = []
    groups: dict[tuple[str, str, str], _Group] = {}
    for task in tasks:
        if task.site is None:
            unplaced.append(
                Unplaced(task.task_id, task.order_id, "no_location", "the village has no site")
            )
            continue
        key = (task.village_id, task.stage, task.provider_id)
        if key not in groups:
            groups[key] = _Group(task.village_id, task.stage, task.provider_id, task.site, [])
        groups[key].tasks.append(task)
    for group in groups.values():
        group.tasks.sort(key=lambda t: t.task_id)

    pending: list[_Group] = []
    candidates: dict[int, list[_Team]] = {}
    for group in groups.values():
        suited = [
            t for t in usable if t.team.provider_id == group.provider_id and group.stage in t.rates
        ]
        if not suited:
            reason = _why_no_team(group, teams, unusable)
            unplaced.extend(
                Unplaced(t.task_id, t.order_id, reason, _explain(reason, group))
                for t in group.tasks
            )
            continue
        suited.sort(key=lambda t: router.km(t.start_site, group.site))
        pending.append(group)
        candidates[id(group)] = suited[: params.candidates]

    _insert_by_regret(pending, candidates, router, unplaced)
    for team in usable:
        _two_opt(team, router)
    _relocate(usable, candidates, router)
    return _plan(usable, router, unplaced)


def _why_no_team(group: _Group, teams: list[TeamIn], unusable: dict[str, str]) -> str:
    of_provider = [t for t in teams if t.provider_id == group.provider_id]
    suited = [
        t for t in of_provider if any(MACHINE_STAGES[m[1]] == group.stage for m in t.machines)
    ]
    if suited and all(unusable.get(t.team_id) == "no_licensed_operator" for t in suited):
        return "no_licensed_operator"
    return "no_team"


def _explain(reason: str, group: _Group) -> str:
    return {
        "no_team": f"no team of provider {group.provider_id!r} has a machine for {group.stage}",
        "no_licensed_operator": "every suitable team lacks an operator licensed on the day",
        "no_capacity": f"the task alone exceeds a day's {group.stage} capacity of every team",
        "window_full": "every suitable team's working day is full",
    }[reason]


def _best_insertion(team: _Team, group: _Group, router: _Router) -> tuple[float, int] | None:
    """(added km, position) of the cheapest feasible insertion of ``group`` into ``team``."""
    route = team.route
    work = router.work(team, group)
    room = router.params.day_minutes - team.minutes - work
    if room < 0:
        return None  # even without any travel it would not fit
    best: tuple[float, int] | None = None
    fresh = team.start_minute == 0
    for position in range(len(route) + 1):
        before = route[position - 1].site if position else team.start_site
        first = fresh and position == 0
        added = router.km(before, group.site)
        extra = router.gap(before, group.site, first)
        if position < len(route):
            after = route[position].site
            added += router.km(group.site, after) - router.km(before, after)
            extra += router.gap(group.site, after) - router.gap(before, after, first)
        if extra <= room and (best is None or added < best[0]):
            best = (added, position)
    return best


def _insert_by_regret(
    pending: list[_Group],
    candidates: dict[int, list[_Team]],
    router: _Router,
    unplaced: list[Unplaced],
) -> None:
    # cost[group][team index in its candidates] = best insertion, refreshed when a route changes.
    costs: dict[int, list[tuple[float, int] | None]] = {
        id(g): [_best_insertion(t, g, router) for t in candidates[id(g)]] for g in pending
    }
    open_groups = {id(g): g for g in pending}
    while open_groups:
        chosen, chosen_regret = None, -1.0
        for key, group in open_groups.items():
            feasible = sorted(c[0] for c in costs[key] if c is not None)
            if not feasible:
                chosen, chosen_regret = group, math.inf
                break
            regret = (feasible[1] if len(feasible) > 1 else 1e6) - feasible[0]
            if regret > chosen_regret:
                chosen, chosen_regret = group, regret
        assert chosen is not None
        key = id(chosen)
        del open_groups[key]
        options = [(c, i) for i, c in enumerate(costs.pop(key)) if c is not None]
        if not options:
            _split_or_give_up(chosen, candidates, router, open_groups, costs, unplaced)
            continue
        (_, position), index = min(options, key=lambda o: o[0][0])
        team = candidates[key][index]
        router.set_route(team, team.route[:position] + [chosen] + team.route[position:])
        # Only groups that may go to this team need a fresh price.
        for other_key, other in open_groups.items():
            for i, t in enumerate(candidates[other_key]):
                if t is team:
                    costs[other_key][i] = _best_insertion(t, other, router)


def _split_or_give_up(
    group: _Group,
    candidates: dict[int, list[_Team]],
    router: _Router,
    open_groups: dict[int, _Group],
    costs: dict[int, list[tuple[float, int] | None]],
    unplaced: list[Unplaced],
) -> None:
    teams = candidates[id(group)]
    if len(group.tasks) > 1:
        half = len(group.tasks) // 2
        for part in (group.tasks[:half], group.tasks[half:]):
            piece = _Group(group.village_id, group.stage, group.provider_id, group.site, part)
            candidates[id(piece)] = teams
            costs[id(piece)] = [_best_insertion(t, piece, router) for t in teams]
            open_groups[id(piece)] = piece
        return
    task = group.tasks[0]
    too_big = all(
        _minutes(task, t.rates[group.stage]) > router.params.day_minutes - t.start_minute
        for t in teams
    )
    reason = "no_capacity" if too_big else "window_full"
    unplaced.append(Unplaced(task.task_id, task.order_id, reason, _explain(reason, group)))


def _two_opt(team: _Team, router: _Router) -> None:
    """Reverse stretches of the route while that shortens it and the day still fits."""
    improved = True
    while improved:
        improved = False
        route = team.route
        for i in range(len(route) - 1):
            for j in range(i + 1, len(route)):
                candidate = route[:i] + route[i : j + 1][::-1] + route[j + 1 :]
                if router.route_km(team, candidate) + 1e-9 < router.route_km(
                    team, route
                ) and router.fits(team, candidate):
                    router.set_route(team, candidate)
                    route = candidate
                    improved = True


def _relocate(usable: list[_Team], candidates: dict[int, list[_Team]], router: _Router) -> None:
    """Move a group to another candidate team's route when that shortens the total."""
    for _ in range(2):
        moved = False
        for team in usable:
            for group in list(team.route):
                without = [g for g in team.route if g is not group]
                saving = router.route_km(team, team.route) - router.route_km(team, without)
                best: tuple[float, _Team, int] | None = None
                for other in candidates.get(id(group), ()):
                    if other is team:
                        continue
                    found = _best_insertion(other, group, router)
                    if found and found[0] + 1e-9 < saving and (best is None or found[0] < best[0]):
                        best = (found[0], other, found[1])
                if best is not None:
                    router.set_route(team, without)
                    other, position = best[1], best[2]
                    router.set_route(
                        other, other.route[:position] + [group] + other.route[position:]
                    )
                    moved = True
        if not moved:
            return


def _plan(usable: list[_Team], router: _Router, unplaced: list[Unplaced]) -> Plan:
    params = router.params
    placements: list[Placement] = []
    total = 0.0
    for team in usable:
        here, first, minute = team.start_site, team.start_minute == 0, team.start_minute
        for group in team.route:
            travel = router.km(here, group.site)
            total += travel
            minute += router.gap(here, group.site, first)
            here, first = group.site, False
            rate = team.rates[group.stage]
            for n, task in enumerate(group.tasks):
                length = _minutes(task, rate)
                placements.append(
                    Placement(
                        task_id=task.task_id,
                        order_id=task.order_id,
                        team_id=team.team.team_id,
                        machine_ids=team.machines[group.stage],
                        operator_ids=team.operators,
                        starts_at=params.at(minute),
                        ends_at=params.at(minute + length),
                        travel_km=travel if n == 0 else 0.0,
                    )
                )
                minute += length
    return Plan(placements, unplaced, total)


# -- the baseline -----------------------------------------------------------------------------


def greedy(tasks: list[TaskIn], teams: list[TeamIn], params: Params) -> Plan:
    """Each task in turn to the nearest team (from where it is now) that still has time."""
    router = _Router(params)
    usable, _ = _prepare(teams, params)
    unplaced: list[Unplaced] = []
    # Where each team is and the minute its current work ends.
    state = {id(t): (t.start_site, t.start_minute, t.start_minute == 0) for t in usable}
    for task in tasks:
        if task.site is None:
            unplaced.append(Unplaced(task.task_id, task.order_id, "no_location", ""))
            continue
        best: tuple[float, _Team, int] | None = None
        for team in usable:
            if team.team.provider_id != task.provider_id or task.stage not in team.rates:
                continue
            here, minute, first = state[id(team)]
            km = router.km(here, task.site)
            if best is not None and km >= best[0]:
                continue
            end = minute + router.gap(here, task.site, first)
            end += _minutes(task, team.rates[task.stage])
            if end <= params.day_minutes:
                best = (km, team, end)
        if best is None:
            unplaced.append(Unplaced(task.task_id, task.order_id, "window_full", ""))
            continue
        _, team, end = best
        team.route.append(_Group(task.village_id, task.stage, task.provider_id, task.site, [task]))
        state[id(team)] = (task.site, end, False)
    return _plan(usable, router, unplaced)
