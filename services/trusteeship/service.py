"""The trusteeship service: the county trusteeship centre's HTTP API.

Business days and instants come from the request (``*_on``, ``*_at``) and default to now in
Asia/Shanghai, so facts can be entered after the fact. Configuration: nameko config key
``TRUSTEESHIP`` (see ``domain.Rules``).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config
from sqlalchemy import and_, func, select

from services.trusteeship import dispatch as planner
from services.trusteeship.domain import (
    ACCEPTED,
    DISPATCHED,
    PENDING,
    UNPLACED,
    AcceptanceLedger,
    DispatchProposal,
    Machine,
    Operator,
    Order,
    Provider,
    Rules,
    Schedule,
    SubsidyClaim,
    SubsidyLedger,
    Team,
    VillageSite,
    area,
    converted_area,
    fee_fen,
    season_year,
)
from services.trusteeship.projections import (
    DESK,
    bookings,
    claims,
    resources,
    settlements,
    tasks,
    utc,
    village_sites,
)
from services.trusteeship.schemas import (
    AcceptIn,
    ApproveIn,
    BlacklistIn,
    CancelIn,
    ClaimIn,
    CompleteIn,
    DayArgs,
    DenyIn,
    DispatchIn,
    JointMeasurementIn,
    LicenceIn,
    MachineIn,
    OperatorIn,
    OrderIn,
    PayIn,
    PriceListIn,
    ProgressIn,
    ProposalIn,
    ProviderArgs,
    ProviderIn,
    RangeArgs,
    RateIn,
    RejectIn,
    ScheduleIn,
    SeasonArgs,
    SettleIn,
    SignIn,
    StartIn,
    TeamIn,
    VillageSiteIn,
)
from shared import directory
from shared.clock import local_day, now, today
from shared.commands import UnitOfWork
from shared.config import LOCAL_TZ
from shared.directory import DIRECTORY, DirectoryMember
from shared.errors import Conflict, DomainError, NotFound
from shared.http import command, query
from shared.service import ServiceBase

CENTRE = ["trusteeship_centre"]
CUSTOMERS = ["household", "village_cadre", "trusteeship_centre"]
REVIEWERS = ["district_admin", "trusteeship_centre"]
READERS = [
    "trusteeship_centre",
    "village_cadre",
    "household",
    "district_admin",
    "alliance_secretary",
    "ops",
    "service",
]
SCHEDULES: dict[str, type[Schedule]] = {"team": Team, "machine": Machine, "operator": Operator}

log = logging.getLogger(__name__)


def plain(value: Any) -> Any:
    """JSON-safe: decimals as strings, dates and instants in ISO."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date | datetime):
        return value.isoformat()
    return value


def stream(kind: str, *parts: str) -> str:
    return ":".join((kind, *parts))


class TrusteeshipService(DirectoryMember, ServiceBase):
    name = "trusteeship"
    projections = [DIRECTORY, DESK]
    config = Config()

    @property
    def rules(self) -> Rules:
        return Rules.from_config(self.config.get("TRUSTEESHIP"))

    # -- loading helpers ----------------------------------------------------------------------

    def _provider(self, uow: UnitOfWork, provider_id: str, field: str = "provider_id") -> Provider:
        provider = uow.find(Provider, stream("provider", provider_id))
        if provider is None:
            raise DomainError(f"provider {provider_id!r} is not in the provider directory", field)
        return provider

    def _order_of_task(self, uow: UnitOfWork, task_id: str) -> Order:
        order_id = uow.connection.execute(
            select(tasks.c.order_id).where(tasks.c.task_id == task_id)
        ).scalar()
        if order_id is None:
            raise NotFound(f"work task {task_id!r} does not exist")
        order = uow.get(Order, stream("order", order_id))
        self.store.principal.require_scope(district=order.district, village=order.village_id)
        return order

    def _schedule(self, uow: UnitOfWork, kind: str, resource_id: str, field: str) -> Schedule:
        found = uow.find(SCHEDULES[kind], stream(kind, resource_id))
        if found is None:
            raise DomainError(f"{kind} {resource_id!r} is not registered", field)
        return found

    # -- providers ----------------------------------------------------------------------------

    @command("POST", "/api/v1/trusteeship/providers", body=ProviderIn, roles=CENTRE, status=201)
    def register_provider(self, request: Any, body: dict[str, Any]) -> Any:
        """Enter a service organisation in the provider directory."""
        self.store.principal.require_scope(district=body["district"])
        if body["provider_type"] == "collective" and not body["village_id"]:
            raise DomainError("a village-collective provider names its village", "village_id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            if body["village_id"]:
                directory.require_village(uow.connection, body["village_id"])
            collective = body["village_id"] if body["provider_type"] == "collective" else None
            data = {
                "provider_id": body["id"],
                "district": body["district"],
                "name": body["name"],
                "provider_type": body["provider_type"],
                "village_id": body["village_id"],
                "collective_village_id": collective,
                "listed_on": today(body["listed_on"]),
                "listed_until": body["listed_until"],
            }
            uow.create(Provider, stream("provider", body["id"])).register(**data)
            return plain(data)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/trusteeship/providers/<provider_id>/blacklisting",
        body=BlacklistIn,
        roles=REVIEWERS,
        status=201,
    )
    def blacklist_provider(self, request: Any, provider_id: str, body: dict[str, Any]) -> Any:
        """Blacklist a provider: barred from contracts and subsidies for the configured years."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            provider = uow.get(Provider, stream("provider", provider_id))
            self.store.principal.require_scope(district=provider.district)
            on = today(body["blacklisted_on"])
            provider.blacklist(body["reason"], on, self.rules.blacklist_years)
            return {"provider_id": provider_id, "barred_until": plain(provider.barred_until)}

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/trusteeship/providers/<provider_id>/price-lists",
        body=PriceListIn,
        roles=CENTRE,
        status=201,
    )
    def publish_prices(self, request: Any, provider_id: str, body: dict[str, Any]) -> Any:
        """Publish a provider's prices for a season (fen per mu, per mu-pass for protection)."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            provider = uow.get(Provider, stream("provider", provider_id))
            self.store.principal.require_scope(district=provider.district)
            provider.publish_prices(body["season"], body["prices"], today(body["published_on"]))
            return {
                "provider_id": provider_id,
                "season": body["season"],
                **plain({"prices": list(provider.prices[body["season"]].values())}),
            }

        return self.store.run(decide)

    @query("/api/v1/trusteeship/providers/<provider_id>", roles=READERS)
    def get_provider(self, request: Any, provider_id: str) -> dict[str, Any]:
        """A provider, its standing and its price lists."""
        provider = self.store.get(Provider, stream("provider", provider_id))
        return plain(
            {
                "provider_id": provider.provider_id,
                "district": provider.district,
                "name": provider.name,
                "provider_type": provider.provider_type,
                "collective_village_id": provider.collective_village_id,
                "listed_on": provider.listed_on,
                "listed_until": provider.listed_until,
                "barred_until": provider.barred_until,
                "prices": provider.prices,
            }
        )

    # -- orders -------------------------------------------------------------------------------

    @command("POST", "/api/v1/trusteeship/orders", body=OrderIn, roles=CUSTOMERS, status=201)
    def place_order(self, request: Any, body: dict[str, Any]) -> Any:
        """A farmer or co-op orders full or partial trusteeship of parcels for a season."""
        self.store.principal.require_scope(village=body["village_id"])

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            village = directory.require_village(uow.connection, body["village_id"])
            self.store.principal.require_scope(district=village.district)
            self._provider(uow, body["provider_id"])
            stages = body["stages"]
            if stages is None:
                if body["mode"] == "partial":
                    raise DomainError("a partial order chooses its stages", "stages")
                stages = ["plough", "sow", "protect", "harvest"]
            order = uow.create(Order, stream("order", body["id"]))
            order.place(
                order_id=body["id"],
                district=village.district,
                village_id=village.village_id,
                provider_id=body["provider_id"],
                customer_id=body["customer_id"],
                customer_name=body["customer_name"],
                customer_type=body["customer_type"],
                crop=body["crop"],
                season=body["season"],
                mode=body["mode"],
                stages=stages,
                protect_passes=body["protect_passes"] if "protect" in stages else 1,
                parcels=body["parcels"],
                ordered_on=today(body["ordered_on"]),
            )
            return self._order_view(order)

        return self.store.run(decide)

    def _order_view(self, order: Order) -> dict[str, Any]:
        return plain(
            {
                "order_id": order.order_id,
                "status": order.status,
                "district": order.district,
                "village_id": order.village_id,
                "provider_id": order.provider_id,
                "customer_id": order.customer_id,
                "season": order.season,
                "stages": order.stages,
                "prices": order.prices,
                "tasks": [
                    {
                        "task_id": t.task_id,
                        "stage": t.stage,
                        "parcel_id": t.parcel_id,
                        "pass_no": t.pass_no,
                        "area_mu": t.area_mu,
                        "planned_on": t.planned_on,
                        "status": t.status,
                        "team_id": t.team_id,
                        "starts_at": t.starts_at,
                        "ends_at": t.ends_at,
                        "accepted_area_mu": t.accepted_area_mu,
                        "settled": t.settled,
                    }
                    for t in order.tasks.values()
                ],
                "settlements": order.settlements,
            }
        )

    def _on_order(self, order_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> Any:
            order = uow.get(Order, stream("order", order_id))
            self.store.principal.require_scope(district=order.district, village=order.village_id)
            result = act(uow, order)
            return self._order_view(order) if result is None else result

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/trusteeship/orders/<order_id>/signature",
        body=SignIn,
        roles=CUSTOMERS,
        status=201,
    )
    def sign_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Sign the trusteeship contract at the provider's prices for the season."""

        def act(uow: UnitOfWork, order: Order) -> None:
            order.sign(self._provider(uow, order.provider_id), today(body["signed_on"]))

        return self._on_order(order_id, act)

    @command(
        "POST",
        "/api/v1/trusteeship/orders/<order_id>/cancellation",
        body=CancelIn,
        roles=CUSTOMERS,
        status=201,
    )
    def cancel_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Cancel an order before work starts; its booked windows are freed."""

        def act(uow: UnitOfWork, order: Order) -> None:
            for task in order.cancel(body["reason"], today(body["cancelled_on"])):
                assert task.team_id is not None
                self._schedule(uow, "team", task.team_id, "team_id").release(task.task_id)
                for machine_id in task.machine_ids:
                    self._schedule(uow, "machine", machine_id, "machine_ids").release(task.task_id)
                for operator_id in task.operator_ids:
                    self._schedule(uow, "operator", operator_id, "operator_ids").release(
                        task.task_id
                    )

        return self._on_order(order_id, act)

    @command(
        "POST",
        "/api/v1/trusteeship/orders/<order_id>/tasks",
        body=ScheduleIn,
        roles=CENTRE,
        status=201,
    )
    def schedule_tasks(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Plan the work tasks of one stage (every parcel, or those listed) for a day."""

        def act(uow: UnitOfWork, order: Order) -> None:
            order.schedule(body["stage"], body["parcel_ids"], body["planned_on"])

        return self._on_order(order_id, act)

    @query("/api/v1/trusteeship/orders/<order_id>", roles=READERS)
    def get_order(self, request: Any, order_id: str) -> dict[str, Any]:
        """An order, its prices and its work tasks."""
        order = self.store.get(Order, stream("order", order_id))
        self.store.principal.require_scope(district=order.district, village=order.village_id)
        return self._order_view(order)

    # -- teams, machines, operators, village sites --------------------------------------------

    @command("POST", "/api/v1/trusteeship/teams", body=TeamIn, roles=CENTRE, status=201)
    def register_team(self, request: Any, body: dict[str, Any]) -> Any:
        """Register a provider's team with its base village and coordinates."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            provider = self._provider(uow, body["provider_id"])
            self.store.principal.require_scope(district=provider.district)
            directory.require_village(uow.connection, body["base_village_id"], "base_village_id")
            data = {
                "team_id": body["id"],
                "provider_id": body["provider_id"],
                "district": provider.district,
                "name": body["name"],
                "team_type": body["team_type"],
                "base_village_id": body["base_village_id"],
                "base_lat": body["base_lat"],
                "base_lon": body["base_lon"],
            }
            uow.create(Team, stream("team", body["id"])).register(**data)
            return plain(data)

        return self.store.run(decide)

    def _team(self, uow: UnitOfWork, team_id: str) -> Team:
        team = uow.find(Team, stream("team", team_id))
        if team is None:
            raise DomainError(f"team {team_id!r} is not registered", "team_id")
        return team

    @command("POST", "/api/v1/trusteeship/machines", body=MachineIn, roles=CENTRE, status=201)
    def register_machine(self, request: Any, body: dict[str, Any]) -> Any:
        """Register a machine of a team with its type and daily capacity (mu/day)."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            team = self._team(uow, body["team_id"])
            data = {
                "machine_id": body["id"],
                "team_id": team.team_id,
                "provider_id": team.provider_id,
                "machine_type": body["machine_type"],
                "capacity_mu_per_day": body["capacity_mu_per_day"],
            }
            uow.create(Machine, stream("machine", body["id"])).register(**data)
            return plain(data)

        return self.store.run(decide)

    @command("POST", "/api/v1/trusteeship/operators", body=OperatorIn, roles=CENTRE, status=201)
    def register_operator(self, request: Any, body: dict[str, Any]) -> Any:
        """Register an operator of a team with the licence's last valid day."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            team = self._team(uow, body["team_id"])
            data = {
                "operator_id": body["id"],
                "team_id": team.team_id,
                "provider_id": team.provider_id,
                "name": body["name"],
                "licence_no": body["licence_no"],
                "licence_expires_on": body["licence_expires_on"],
            }
            uow.create(Operator, stream("operator", body["id"])).register(**data)
            return plain(data)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/trusteeship/operators/<operator_id>/licence",
        body=LicenceIn,
        roles=CENTRE,
        status=201,
    )
    def renew_licence(self, request: Any, operator_id: str, body: dict[str, Any]) -> Any:
        """Record an operator's renewed licence."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            operator = uow.get(Operator, stream("operator", operator_id))
            operator.renew(body["licence_expires_on"])
            return plain({"operator_id": operator_id, **body})

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/trusteeship/village-sites", body=VillageSiteIn, roles=CENTRE, status=201
    )
    def locate_village(self, request: Any, body: dict[str, Any]) -> Any:
        """Record where a village's fields are (for travel distances in automatic dispatch)."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            village = directory.require_village(uow.connection, body["village_id"])
            self.store.principal.require_scope(district=village.district)
            key = stream("village-site", body["village_id"])
            site = uow.find_or_create(VillageSite, key)
            site.locate(body["village_id"], body["lat"], body["lon"])
            return plain(body)

        return self.store.run(decide)

    # -- dispatch -----------------------------------------------------------------------------

    @command("POST", "/api/v1/trusteeship/dispatches", body=DispatchIn, roles=CENTRE, status=201)
    def dispatch_team(self, request: Any, body: dict[str, Any]) -> Any:
        """Dispatch a team with machines and operators to a task for a window. Double booking of
        any of them (travel buffer included between villages) is refused with 422. A refusal by
        a rule is recorded as DispatchRejected (reason, field) on the task's order stream."""
        order_id: str | None = None

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            nonlocal order_id
            order = self._order_of_task(uow, body["task_id"])
            order_id = order.order_id
            self._dispatch(uow, order, body["task_id"], body, proposal_id=None)
            return plain({**body, "order_id": order.order_id, "status": DISPATCHED})

        try:
            return self.store.run(decide)
        except DomainError as refusal:
            if order_id is not None:
                self._record_refusal(order_id, body, refusal)
            raise

    def _record_refusal(self, order_id: str, body: dict[str, Any], refusal: DomainError) -> None:
        """The refused dispatch appended nothing; its refusal is a fact of its own, recorded in
        a transaction of its own. Failing to record it never changes the answer."""
        reason = refusal.detail
        detail = (
            f"manual dispatch of team {body['team_id']} with machines "
            f"{', '.join(body['machine_ids'])} and operators {', '.join(body['operator_ids'])} "
            f"from {body['starts_at'].isoformat()} to {body['ends_at'].isoformat()}"
        )

        def record(uow: UnitOfWork) -> None:
            order = uow.get(Order, stream("order", order_id))
            order.record_refused_dispatch(body["task_id"], reason, refusal.field, detail)

        try:
            self.store.run(record)
        except Exception:
            log.exception("could not record the refused dispatch of task %s", body["task_id"])

    def _dispatch(
        self,
        uow: UnitOfWork,
        order: Order,
        task_id: str,
        plan: dict[str, Any],
        proposal_id: str | None,
    ) -> None:
        team = self._schedule(uow, "team", plan["team_id"], "team_id")
        machines = [self._schedule(uow, "machine", m, "machine_ids") for m in plan["machine_ids"]]
        operators = [
            self._schedule(uow, "operator", o, "operator_ids") for o in plan["operator_ids"]
        ]
        for field, resources_ in (("machine_ids", machines), ("operator_ids", operators)):
            for resource in resources_:
                if resource.provider_id != order.provider_id:
                    raise DomainError(
                        f"{resource.kind} {resource.resource_id!r} is another provider's", field
                    )
        starts_at, ends_at = plan["starts_at"], plan["ends_at"]
        for operator in operators:
            assert isinstance(operator, Operator)
            operator.require_licence(local_day(ends_at))
        rules = self.rules
        order.dispatch(
            task_id,
            team,
            machines,
            operators,
            starts_at,
            ends_at,
            proposal_id,
            capacities=self._capacities(uow, machines),
            work_day_hours=rules.work_day_end_hour - rules.work_day_start_hour,
        )
        buffer = self.rules.travel_buffer
        village = order.village_id
        team.book(task_id, village, starts_at, ends_at, buffer, "team_id")
        for machine in machines:
            machine.book(task_id, village, starts_at, ends_at, buffer, "machine_ids")
        for operator in operators:
            operator.book(task_id, village, starts_at, ends_at, buffer, "operator_ids")

    @staticmethod
    def _capacities(uow: UnitOfWork, machines: list[Schedule]) -> dict[str, Decimal]:
        """Each machine's mu per working day (from the read model for a machine restored from
        a snapshot taken before machines kept their capacity)."""
        found: dict[str, Decimal] = {}
        for machine in machines:
            assert isinstance(machine, Machine)
            capacity = machine.capacity_mu_per_day
            if capacity is None:
                capacity = Decimal(
                    uow.connection.execute(
                        select(resources.c.capacity_mu_per_day).where(
                            resources.c.kind == "machine",
                            resources.c.resource_id == machine.resource_id,
                        )
                    ).scalar_one()
                )
            found[machine.resource_id] = capacity
        return found

    @command(
        "POST",
        "/api/v1/trusteeship/dispatch-proposals",
        body=ProposalIn,
        roles=CENTRE,
        status=201,
    )
    def propose_dispatch(self, request: Any, body: dict[str, Any]) -> Any:
        """Propose an assignment of a day's pending tasks to teams (nothing is booked yet)."""
        self.store.principal.require_scope(district=body["district"])

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            proposal = uow.create(DispatchProposal, stream("proposal", body["id"]))
            data = self._plan(uow, body["id"], body["day"], body["district"])
            proposal.propose(**data)
            return plain({**data, "read_versions": len(data["read_versions"])})

        return self.store.run(decide)

    def _plan(
        self, uow: UnitOfWork, proposal_id: str, day: date, district: str | None
    ) -> dict[str, Any]:
        db = uow.connection
        rules = self.rules
        sites = {
            r.village_id: planner.Site(float(r.lat), float(r.lon))
            for r in db.execute(select(village_sites))
        }
        pending = select(tasks).where(
            tasks.c.planned_on == day, tasks.c.status.in_((PENDING, UNPLACED))
        )
        if district:
            pending = pending.where(tasks.c.district == district)
        task_in = [
            planner.TaskIn(
                r.task_id,
                r.order_id,
                r.provider_id,
                r.village_id,
                r.stage,
                float(r.area_mu),
                sites.get(r.village_id),
            )
            for r in db.execute(pending.order_by(tasks.c.task_id))
        ]
        rows = db.execute(select(resources)).all()
        if district:
            in_district = {r.team_id for r in rows if r.kind == "team" and r.district == district}
            rows = [r for r in rows if r.team_id in in_district]
        day_start = datetime.combine(day, time(0), tzinfo=LOCAL_TZ)
        busy = self._busy(
            db, day_start, day_start + timedelta(days=1), sites, rules.work_day_start_hour
        )
        teams: dict[str, planner.TeamIn] = {}
        for r in rows:
            if r.kind == "team":
                teams[r.resource_id] = planner.TeamIn(
                    r.resource_id,
                    r.provider_id,
                    planner.Site(float(r.base_lat), float(r.base_lon)),
                    [],
                    [],
                )
        for r in rows:
            team = teams.get(r.team_id)
            if team is None:
                continue
            team.busy.extend(busy.get((r.kind, r.resource_id), ()))
            if r.kind == "machine":
                team.machines.append((r.resource_id, r.machine_type, float(r.capacity_mu_per_day)))
            elif r.kind == "operator":
                team.operators.append((r.resource_id, r.licence_expires_on))
        params = planner.Params(
            day=day,
            tz=LOCAL_TZ,
            start_hour=rules.work_day_start_hour,
            end_hour=rules.work_day_end_hour,
            buffer_minutes=rules.travel_buffer_minutes,
            speed_kmh=rules.travel_speed_kmh,
        )
        plan = planner.optimise(task_in, list(teams.values()), params)
        return {
            "proposal_id": proposal_id,
            "district": district,
            "day": day,
            "assignments": [
                {
                    "task_id": p.task_id,
                    "order_id": p.order_id,
                    "team_id": p.team_id,
                    "machine_ids": p.machine_ids,
                    "operator_ids": p.operator_ids,
                    "starts_at": p.starts_at,
                    "ends_at": p.ends_at,
                    "travel_km": area(Decimal(repr(p.travel_km))),
                }
                for p in plan.placements
            ],
            "unplaced": [
                {
                    "task_id": u.task_id,
                    "order_id": u.order_id,
                    "reason": u.reason,
                    "detail": u.detail,
                }
                for u in plan.unplaced
            ],
            "read_versions": [
                {"kind": r.kind, "resource_id": r.resource_id, "version": r.version}
                for r in rows
                if r.team_id in teams
            ],
            "total_travel_km": area(Decimal(repr(plan.total_travel_km))),
        }

    @staticmethod
    def _busy(
        db: Any, start: datetime, end: datetime, sites: dict[str, planner.Site], work_hour: int
    ) -> dict[tuple[str, str], list[tuple[int, int, planner.Site | None]]]:
        """Booked windows overlapping a day, per resource, in minutes from the day's start."""
        found: dict[tuple[str, str], list[tuple[int, int, planner.Site | None]]] = {}
        rows = db.execute(
            select(bookings).where(
                and_(
                    bookings.c.starts_utc < utc(end.isoformat()),
                    bookings.c.ends_utc > utc(start.isoformat()),
                )
            )
        )
        work_start = start.replace(hour=work_hour)
        for r in rows:
            begins = datetime.fromisoformat(r.starts_at)
            ends = datetime.fromisoformat(r.ends_at)
            found.setdefault((r.kind, r.resource_id), []).append(
                (
                    int((begins - work_start).total_seconds() // 60),
                    int((ends - work_start).total_seconds() // 60),
                    sites.get(r.village_id),
                )
            )
        return found

    @command(
        "POST",
        "/api/v1/trusteeship/dispatch-proposals/<proposal_id>/confirmation",
        roles=CENTRE,
        status=201,
    )
    def confirm_dispatch(self, request: Any, proposal_id: str) -> Any:
        """Apply a proposal: dispatch its assignments and record why the rest were not placed.
        Refused with 409 if any schedule or task changed since the proposal."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            proposal = uow.get(DispatchProposal, stream("proposal", proposal_id))
            self.store.principal.require_scope(district=proposal.data["district"])
            if proposal.confirmed:
                raise Conflict("the proposal is already confirmed")
            for read in proposal.data["read_versions"]:
                found = uow.find(SCHEDULES[read["kind"]], stream(read["kind"], read["resource_id"]))
                if found is None or found.version != read["version"]:
                    raise Conflict(
                        f"{read['kind']} {read['resource_id']!r}'s schedule changed since the "
                        "proposal; propose again"
                    )
            for assignment in proposal.data["assignments"]:
                order = uow.get(Order, stream("order", assignment["order_id"]))
                task = order.tasks.get(assignment["task_id"])
                if (
                    order.status not in ("signed", "working")
                    or task is None
                    or task.status
                    not in (
                        PENDING,
                        UNPLACED,
                    )
                ):
                    raise Conflict(
                        f"task {assignment['task_id']!r} changed since the proposal; propose again"
                    )
                self._dispatch(uow, order, assignment["task_id"], assignment, proposal_id)
            for unplaced in proposal.data["unplaced"]:
                order = uow.get(Order, stream("order", unplaced["order_id"]))
                task = order.tasks.get(unplaced["task_id"])
                if task is not None and task.status in (PENDING, UNPLACED):
                    order.reject_dispatch(
                        unplaced["task_id"], unplaced["reason"], unplaced["detail"], proposal_id
                    )
            dispatched, rejected = len(proposal.data["assignments"]), len(proposal.data["unplaced"])
            proposal.confirm(dispatched, rejected)
            return {"proposal_id": proposal_id, "dispatched": dispatched, "rejected": rejected}

        return self.store.run(decide)

    @query("/api/v1/trusteeship/dispatch-proposals/<proposal_id>", roles=READERS)
    def get_proposal(self, request: Any, proposal_id: str) -> dict[str, Any]:
        """A dispatch proposal: assignments, unplaced tasks with reasons, total travel."""
        proposal = self.store.get(DispatchProposal, stream("proposal", proposal_id))
        return plain({**proposal.data, "confirmed": proposal.confirmed, "read_versions": None})

    # -- work ---------------------------------------------------------------------------------

    def _on_task(self, task_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> Any:
            order = self._order_of_task(uow, task_id)
            act(uow, order)
            return self._task_view(order, task_id)

        return self.store.run(decide)

    @staticmethod
    def _task_view(order: Order, task_id: str) -> dict[str, Any]:
        task = order.tasks[task_id]
        return plain(
            {
                "task_id": task_id,
                "order_id": order.order_id,
                "village_id": order.village_id,
                "stage": task.stage,
                "parcel_id": task.parcel_id,
                "pass_no": task.pass_no,
                "area_mu": task.area_mu,
                "status": task.status,
                "team_id": task.team_id,
                "starts_at": task.starts_at,
                "ends_at": task.ends_at,
                "area_done_mu": task.area_done_mu,
                "accepted_area_mu": task.accepted_area_mu,
            }
        )

    @command(
        "POST", "/api/v1/trusteeship/tasks/<task_id>/start", body=StartIn, roles=CENTRE, status=201
    )
    def start_work(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """The dispatched team starts work on a task."""
        return self._on_task(task_id, lambda uow, o: o.start(task_id, now(body["started_at"])))

    @command(
        "POST",
        "/api/v1/trusteeship/tasks/<task_id>/progress",
        body=ProgressIn,
        roles=CENTRE,
        status=201,
    )
    def report_progress(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Report the area done so far (cumulative), with optional track points."""
        return self._on_task(
            task_id,
            lambda uow, o: o.report_progress(
                task_id, body["area_done_mu"], body["track"], now(body["reported_at"])
            ),
        )

    @command(
        "POST",
        "/api/v1/trusteeship/tasks/<task_id>/completion",
        body=CompleteIn,
        roles=CENTRE,
        status=201,
    )
    def complete_work(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """The team reports the task done."""
        return self._on_task(
            task_id,
            lambda uow, o: o.complete(task_id, body["area_done_mu"], now(body["completed_at"])),
        )

    def _accept(
        self, uow: UnitOfWork, order: Order, task_id: str, body: dict[str, Any], how: str, on: date
    ) -> None:
        task = order.task(task_id)
        key = stream("acceptance", task.parcel_id, task.slot, order.season)
        ledger = uow.find_or_create(AcceptanceLedger, key)
        ledger.bind(task.parcel_id, task.slot, order.season)
        order.accept(
            task_id,
            ledger,
            body["measured_area_mu"],
            how,
            body["farmer_confirmed_by"],
            body["village_confirmed_by"],
            on,
        )

    @command(
        "POST",
        "/api/v1/trusteeship/tasks/<task_id>/acceptance",
        body=AcceptIn,
        roles=CUSTOMERS,
        status=201,
    )
    def accept_work(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Farmer and village accept the work with its measured area."""
        return self._on_task(
            task_id,
            lambda uow, o: self._accept(
                uow, o, task_id, body, body["measurement"], today(body["accepted_on"])
            ),
        )

    @command(
        "POST",
        "/api/v1/trusteeship/tasks/<task_id>/rejection",
        body=RejectIn,
        roles=CUSTOMERS,
        status=201,
    )
    def reject_work(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Farmer or village dispute the work or its area: joint measurement follows."""
        return self._on_task(
            task_id,
            lambda uow, o: o.reject_work(
                task_id, body["reason"], body["claimed_area_mu"], today(body["rejected_on"])
            ),
        )

    @command(
        "POST",
        "/api/v1/trusteeship/tasks/<task_id>/joint-measurement",
        body=JointMeasurementIn,
        roles=CUSTOMERS,
        status=201,
    )
    def joint_measurement(self, request: Any, task_id: str, body: dict[str, Any]) -> Any:
        """Settle a dispute: the jointly measured area is accepted."""
        return self._on_task(
            task_id,
            lambda uow, o: self._accept(uow, o, task_id, body, "joint", today(body["measured_on"])),
        )

    @query("/api/v1/trusteeship/tasks/<task_id>", roles=READERS)
    def get_task(self, request: Any, task_id: str) -> dict[str, Any]:
        """One work task."""
        with self.store.events.engine.connect() as db:
            row = db.execute(select(tasks).where(tasks.c.task_id == task_id)).first()
        if row is None:
            raise NotFound(f"work task {task_id!r} does not exist")
        self.store.principal.require_scope(district=row.district, village=row.village_id)
        return plain(dict(row._mapping))

    # -- settlement and ratings ---------------------------------------------------------------

    @command(
        "POST",
        "/api/v1/trusteeship/orders/<order_id>/settlements",
        body=SettleIn,
        roles=CENTRE,
        status=201,
    )
    def settle_fees(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Settle the fees of an order's accepted, unsettled tasks."""

        def act(uow: UnitOfWork, order: Order) -> dict[str, Any]:
            provider = self._provider(uow, order.provider_id)
            return plain(order.settle(provider, today(body["settled_on"])))

        return self._on_order(order_id, act)

    @command(
        "POST",
        "/api/v1/trusteeship/orders/<order_id>/ratings",
        body=RateIn,
        roles=CUSTOMERS,
        status=201,
    )
    def rate_service(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """The customer rates the service after a settlement."""

        def act(uow: UnitOfWork, order: Order) -> None:
            order.rate(body["score"], body["comment"], today(body["rated_on"]))

        return self._on_order(order_id, act)

    # -- subsidies ----------------------------------------------------------------------------

    @command("POST", "/api/v1/trusteeship/subsidy-claims", body=ClaimIn, roles=CENTRE, status=201)
    def claim_subsidy(self, request: Any, body: dict[str, Any]) -> Any:
        """Claim a subsidy for an accepted task, within the caps."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            order = self._order_of_task(uow, body["task_id"])
            task = order.task(body["task_id"])
            if task.status != ACCEPTED or task.accepted_area_mu is None:
                raise DomainError("subsidies are claimed for accepted work only", "task_id")
            on = today(body["claimed_on"])
            self._provider(uow, order.provider_id).require_in_good_standing(on)
            village = directory.find_village(uow.connection, order.village_id)
            weak = bool(village and village.weak)
            rules = self.rules
            accepted = task.accepted_area_mu
            share = rules.subsidy_price_share_weak if weak else rules.subsidy_price_share
            fee = fee_fen(accepted, order.prices[task.stage])
            caps = {"share of the price": int(fee * share)}
            parcel_key = stream("subsidy-parcel", task.parcel_id, order.season)
            parcel = uow.find_or_create(SubsidyLedger, parcel_key)
            if parcel.has_task(task.task_id):
                raise DomainError(f"task {task.task_id!r} already has a subsidy claim", "task_id")
            served = max([accepted, *(r.area_mu for r in parcel.entries.values())])
            per_mu = (
                rules.subsidy_cap_fen_per_mu_season_weak
                if weak
                else rules.subsidy_cap_fen_per_mu_season
            )
            caps["fen per mu this season"] = int(per_mu * served) - parcel.reserved_fen
            customer = None
            if not order.small_farmer:
                key = stream("subsidy-customer", order.customer_id, str(season_year(order.season)))
                customer = uow.find_or_create(SubsidyLedger, key)
                caps["yearly cap of a large operator"] = (
                    rules.large_operator_yearly_cap_fen - customer.reserved_fen
                )
            binding = min(caps, key=lambda name: caps[name])
            cap = max(0, caps[binding])
            if body["amount_fen"] > cap:
                raise DomainError(
                    f"{body['amount_fen']} fen exceeds the {binding} ({cap} fen available)",
                    "amount_fen",
                )
            data = {
                "claim_id": body["id"],
                "task_id": task.task_id,
                "order_id": order.order_id,
                "provider_id": order.provider_id,
                "customer_id": order.customer_id,
                "small_farmer": order.small_farmer,
                "beneficiary": body["beneficiary"],
                "village_id": order.village_id,
                "district": order.district,
                "parcel_id": task.parcel_id,
                "stage": task.stage,
                "season": order.season,
                "accepted_area_mu": accepted,
                "converted_area_mu": converted_area(task.stage, accepted),
                "amount_fen": body["amount_fen"],
                "cap_fen": cap,
                "claimed_on": on,
            }
            for ledger in (parcel, customer):
                if ledger is not None:
                    ledger.reserve(
                        body["id"], task.task_id, body["amount_fen"], order.small_farmer, accepted
                    )
            uow.create(SubsidyClaim, stream("claim", body["id"])).claim(**data)
            return plain({**data, "status": "claimed"})

        return self.store.run(decide)

    def _on_claim(self, claim_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> dict[str, Any]:
            claim = uow.get(SubsidyClaim, stream("claim", claim_id))
            self.store.principal.require_scope(district=claim.data["district"])
            act(uow, claim)
            return plain({**claim.data, "status": claim.status})

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/trusteeship/subsidy-claims/<claim_id>/approval",
        body=ApproveIn,
        roles=REVIEWERS,
        status=201,
    )
    def approve_subsidy(self, request: Any, claim_id: str, body: dict[str, Any]) -> Any:
        """Approve a claim, keeping small farmers' share of the season's approved funds."""

        def act(uow: UnitOfWork, claim: SubsidyClaim) -> None:
            key = stream("subsidy-programme", claim.data["district"], claim.data["season"])
            programme = uow.find_or_create(SubsidyLedger, key)
            claim.approve(programme, self.rules.small_farmer_share_min, today(body["approved_on"]))

        return self._on_claim(claim_id, act)

    @command(
        "POST",
        "/api/v1/trusteeship/subsidy-claims/<claim_id>/denial",
        body=DenyIn,
        roles=REVIEWERS,
        status=201,
    )
    def deny_subsidy(self, request: Any, claim_id: str, body: dict[str, Any]) -> Any:
        """Deny a claim; its amount returns to the caps."""

        def act(uow: UnitOfWork, claim: SubsidyClaim) -> None:
            claim.deny(body["reason"], today(body["denied_on"]))
            data = claim.data
            keys = [stream("subsidy-parcel", data["parcel_id"], data["season"])]
            if not data["small_farmer"]:
                year = str(season_year(data["season"]))
                keys.append(stream("subsidy-customer", data["customer_id"], year))
            for key in keys:
                ledger = uow.find(SubsidyLedger, key)
                if ledger is not None:
                    ledger.release(claim.id)

        return self._on_claim(claim_id, act)

    @command(
        "POST",
        "/api/v1/trusteeship/subsidy-claims/<claim_id>/payment",
        body=PayIn,
        roles=REVIEWERS,
        status=201,
    )
    def pay_subsidy(self, request: Any, claim_id: str, body: dict[str, Any]) -> Any:
        """Record an approved subsidy as paid."""
        return self._on_claim(claim_id, lambda uow, c: c.pay(today(body["paid_on"])))

    # -- the dispatch desk's views ------------------------------------------------------------

    @query("/api/v1/trusteeship/teams/<team_id>/schedule", args=RangeArgs, roles=READERS)
    def team_schedule(self, request: Any, team_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """A team's booked windows, and those of its machines and operators."""
        with self.store.events.engine.connect() as db:
            members = select(resources.c.kind, resources.c.resource_id).where(
                resources.c.team_id == team_id
            )
            found = {(r.kind, r.resource_id) for r in db.execute(members)}
            if ("team", team_id) not in found:
                raise NotFound(f"team {team_id!r} is not registered")
            query_ = select(bookings).order_by(bookings.c.starts_utc)
            if args["starts_on"]:
                start = datetime.combine(args["starts_on"], time(0), tzinfo=LOCAL_TZ)
                query_ = query_.where(bookings.c.ends_utc > utc(start.isoformat()))
            if args["ends_on"]:
                end = datetime.combine(args["ends_on"], time(0), tzinfo=LOCAL_TZ)
                query_ = query_.where(bookings.c.starts_utc < utc(end.isoformat()))
            rows = [r for r in db.execute(query_) if (r.kind, r.resource_id) in found]
        windows = [
            {
                "kind": r.kind,
                "resource_id": r.resource_id,
                "task_id": r.task_id,
                "village_id": r.village_id,
                "starts_at": r.starts_at,
                "ends_at": r.ends_at,
            }
            for r in rows
        ]
        return {"team_id": team_id, "windows": windows}

    @query("/api/v1/trusteeship/tasks", args=DayArgs, roles=READERS)
    def tasks_by_village(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """A day's tasks (default today) grouped by village."""
        day = today(args["day"])
        query_ = select(tasks).where(tasks.c.planned_on == day).order_by(tasks.c.task_id)
        if args["village_id"]:
            query_ = query_.where(tasks.c.village_id == args["village_id"])
        principal = self.store.principal
        if principal is not None and principal.village:
            query_ = query_.where(tasks.c.village_id == principal.village)
        with self.store.events.engine.connect() as db:
            rows = db.execute(query_).all()
        villages: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            villages.setdefault(r.village_id, []).append(plain(dict(r._mapping)))
        return {"day": day.isoformat(), "villages": villages}

    @query("/api/v1/trusteeship/tasks-unplaced", args=DayArgs, roles=READERS)
    def unplaced_tasks(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Tasks automatic dispatch could not place, with the reason."""
        query_ = select(tasks).where(tasks.c.status == UNPLACED).order_by(tasks.c.task_id)
        if args["day"]:
            query_ = query_.where(tasks.c.planned_on == args["day"])
        with self.store.events.engine.connect() as db:
            rows = db.execute(query_).all()
        return {
            "tasks": [
                {
                    "task_id": r.task_id,
                    "order_id": r.order_id,
                    "village_id": r.village_id,
                    "planned_on": r.planned_on.isoformat(),
                    "reason": r.reason,
                    "detail": r.detail,
                }
                for r in rows
            ]
        }

    @query("/api/v1/trusteeship/served-area", args=SeasonArgs, roles=READERS)
    def served_area(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Accepted area per village and per cluster (the cluster on ``on``, default today):
        mu per stage and the converted trusteeship area."""
        on = today(args["on"])
        query_ = select(
            tasks.c.village_id, tasks.c.stage, tasks.c.accepted_area_mu, tasks.c.converted_area_mu
        ).where(tasks.c.status == ACCEPTED)
        if args["season"]:
            query_ = query_.where(tasks.c.season == args["season"])
        villages: dict[str, dict[str, Any]] = {}
        with self.store.events.engine.connect() as db:
            for r in db.execute(query_):
                entry = villages.setdefault(
                    r.village_id, {"stages": {}, "converted_area_mu": Decimal("0.00")}
                )
                stages = entry["stages"]
                stages[r.stage] = stages.get(r.stage, Decimal("0.00")) + Decimal(r.accepted_area_mu)
                entry["converted_area_mu"] += Decimal(r.converted_area_mu)
            clusters: dict[str, Decimal] = {}
            for village_id, entry in villages.items():
                cluster_id = directory.cluster_of(db, village_id, on)
                entry["cluster_id"] = cluster_id
                if cluster_id is not None:
                    clusters[cluster_id] = (
                        clusters.get(cluster_id, Decimal("0.00")) + entry["converted_area_mu"]
                    )
        return plain(
            {
                "season": args["season"],
                "on": on,
                "villages": villages,
                "clusters": {c: {"converted_area_mu": a} for c, a in clusters.items()},
            }
        )

    @query("/api/v1/trusteeship/money", args=ProviderArgs, roles=READERS)
    def fees_and_subsidies(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Fees settled and subsidies by status, per provider."""
        fee_query = select(
            settlements.c.provider_id, func.sum(settlements.c.amount_fen), func.count()
        ).group_by(settlements.c.provider_id)
        claim_query = select(
            claims.c.provider_id, claims.c.status, func.sum(claims.c.amount_fen), func.count()
        ).group_by(claims.c.provider_id, claims.c.status)
        if args["provider_id"]:
            fee_query = fee_query.where(settlements.c.provider_id == args["provider_id"])
            claim_query = claim_query.where(claims.c.provider_id == args["provider_id"])
        if args["season"]:
            claim_query = claim_query.where(claims.c.season == args["season"])
        providers: dict[str, dict[str, Any]] = {}
        with self.store.events.engine.connect() as db:
            for provider_id, total, count in db.execute(fee_query):
                entry = providers.setdefault(provider_id, {"fees_fen": 0, "subsidies": {}})
                entry["fees_fen"], entry["settlements"] = int(total), count
            for provider_id, status, total, count in db.execute(claim_query):
                entry = providers.setdefault(provider_id, {"fees_fen": 0, "subsidies": {}})
                entry["subsidies"][status] = {"amount_fen": int(total), "claims": count}
        return {"providers": providers}
