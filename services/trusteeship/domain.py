"""Aggregates of the trusteeship centre. Plain Python: command methods check invariants and
trigger events, ``@applies`` methods only change state. Business time is passed in.

Every invariant that spans several commands is owned by one aggregate, so concurrent commands
are serialised by optimistic concurrency on its stream:

* a team's, a machine's and an operator's schedule (no two windows at once, travel buffer) are
  ``Schedule`` aggregates; a dispatch books all of them in one unit of work;
* accepted area per parcel × stage slot × season is an ``AcceptanceLedger``;
* subsidy caps are ``SubsidyLedger`` s (per parcel-season, per large operator and year, per
  district programme and season).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

from services.trusteeship import events as ev
from services.trusteeship.events import STAGES
from shared.aggregate import Aggregate, applies
from shared.errors import Conflict, DomainError

CENT = Decimal("0.01")
#: 托管面积折算: the converted trusteeship area of one mu served in each stage.
CONVERSION = {
    "plough": Decimal("0.36"),
    "sow": Decimal("0.27"),
    "protect": Decimal("0.1"),
    "harvest": Decimal("0.27"),
}
#: Which machine types can do which stage.
MACHINE_STAGES = {
    "tractor": "plough",
    "rotary_tiller": "plough",
    "seeder": "sow",
    "transplanter": "sow",
    "drone": "protect",
    "sprayer": "protect",
    "harvester": "harvest",
}


@dataclass(frozen=True)
class Rules:
    """The configurable numbers (nameko config key ``TRUSTEESHIP``)."""

    blacklist_years: int = 5
    travel_buffer_minutes: int = 60
    subsidy_price_share: Decimal = Decimal("0.30")
    subsidy_price_share_weak: Decimal = Decimal("0.40")
    subsidy_cap_fen_per_mu_season: int = 10_000
    subsidy_cap_fen_per_mu_season_weak: int = 13_000
    large_operator_yearly_cap_fen: int = 10_000_000
    small_farmer_share_min: Decimal = Decimal("0.80")
    work_day_start_hour: int = 8
    work_day_end_hour: int = 18
    travel_speed_kmh: int = 30

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> Rules:
        values = dict(config or {})
        for name in (
            "subsidy_price_share",
            "subsidy_price_share_weak",
            "small_farmer_share_min",
        ):
            if name in values:
                values[name] = Decimal(str(values[name]))
        return cls(**values)

    @property
    def travel_buffer(self) -> timedelta:
        return timedelta(minutes=self.travel_buffer_minutes)


def area(value: Decimal | str | int) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def converted_area(stage: str, area_mu: Decimal) -> Decimal:
    return area(CONVERSION[stage] * area_mu)


def fee_fen(area_mu: Decimal, unit_price_fen: int) -> int:
    return int((area_mu * unit_price_fen).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def slot_of(stage: str, pass_no: int) -> str:
    """A stage slot: crop protection may be contracted for several passes, each its own slot."""
    return f"protect{pass_no}" if stage == "protect" else stage


def task_id_of(order_id: str, stage: str, pass_no: int, parcel_id: str) -> str:
    return f"{order_id}:{slot_of(stage, pass_no)}:{parcel_id}"


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def season_year(season: str) -> int:
    return int(season[:4])


# -- providers --------------------------------------------------------------------------------


class Provider(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.provider_id = ""
        self.district = ""
        self.name = ""
        self.provider_type = ""
        self.collective_village_id: str | None = None
        self.listed_on: date | None = None
        self.listed_until: date | None = None
        self.barred_until: date | None = None
        self.prices: dict[str, dict[str, dict[str, Any]]] = {}  # season -> stage -> price

    def register(self, **data: Any) -> None:
        self.trigger(ev.ProviderRegistered, **data)

    def blacklist(self, reason: str, on: date, years: int) -> None:
        self.trigger(
            ev.ProviderBlacklisted,
            provider_id=self.provider_id,
            district=self.district,
            reason=reason,
            blacklisted_on=on,
            barred_until=add_years(on, years),
        )

    def publish_prices(self, season: str, prices: list[dict[str, Any]], on: date) -> None:
        self.require_in_good_standing(on)
        stages = [p["stage"] for p in prices]
        if len(set(stages)) != len(stages):
            raise DomainError("each stage may be priced once per list", "prices")
        self.trigger(
            ev.PriceListPublished,
            provider_id=self.provider_id,
            district=self.district,
            season=season,
            prices=[{**p, "unit": "mu_pass" if p["stage"] == "protect" else "mu"} for p in prices],
            published_on=on,
        )

    def is_barred(self, on: date) -> bool:
        return self.barred_until is not None and on < self.barred_until

    def is_listed(self, on: date) -> bool:
        assert self.listed_on is not None
        return self.listed_on <= on and (self.listed_until is None or on < self.listed_until)

    def require_in_good_standing(self, on: date, field: str = "provider_id") -> None:
        if self.is_barred(on):
            raise DomainError(
                f"provider {self.provider_id!r} is blacklisted until {self.barred_until}", field
            )
        if not self.is_listed(on):
            raise DomainError(
                f"provider {self.provider_id!r} is not in the provider directory on {on}", field
            )

    def price_for(self, season: str, stage: str) -> dict[str, Any] | None:
        return self.prices.get(season, {}).get(stage)

    @applies(ev.ProviderRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.provider_id = data["provider_id"]
        self.district = data["district"]
        self.name = data["name"]
        self.provider_type = data["provider_type"]
        self.collective_village_id = data["collective_village_id"]
        self.listed_on = data["listed_on"]
        self.listed_until = data["listed_until"]

    @applies(ev.ProviderBlacklisted)
    def _blacklisted(self, data: dict[str, Any]) -> None:
        self.barred_until = data["barred_until"]

    @applies(ev.PriceListPublished)
    def _prices(self, data: dict[str, Any]) -> None:
        season = self.prices.setdefault(data["season"], {})
        for price in data["prices"]:
            season[price["stage"]] = price


# -- orders and work tasks --------------------------------------------------------------------

PENDING, DISPATCHED, STARTED, COMPLETED = "scheduled", "dispatched", "started", "completed"
ACCEPTED, DISPUTED, UNPLACED = "accepted", "disputed", "unplaced"


@dataclass
class Task:
    task_id: str
    parcel_id: str
    stage: str
    pass_no: int
    area_mu: Decimal
    parcel_area_mu: Decimal
    planned_on: date
    status: str = PENDING
    team_id: str | None = None
    machine_ids: list[str] = field(default_factory=list)
    operator_ids: list[str] = field(default_factory=list)
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    area_done_mu: Decimal = Decimal("0.00")
    accepted_area_mu: Decimal | None = None
    settled: bool = False
    claimed: bool = False
    reason: str | None = None

    @property
    def slot(self) -> str:
        return slot_of(self.stage, self.pass_no)


class Order(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.order_id = ""
        self.district = ""
        self.village_id = ""
        self.provider_id = ""
        self.customer_id = ""
        self.customer_type = ""
        self.small_farmer = True
        self.season = ""
        self.stages: list[str] = []
        self.protect_passes = 1
        self.parcels: dict[str, dict[str, Any]] = {}
        self.status = "ordered"
        self.prices: dict[str, int] = {}
        self.tasks: dict[str, Task] = {}
        self.settlements = 0
        self.rated = False

    # deciding

    def place(self, **data: Any) -> None:
        stages: list[str] = data["stages"]
        if data["mode"] == "full" and set(stages) != set(STAGES):
            raise DomainError("full trusteeship covers all four stages", "stages")
        if data["mode"] == "partial" and not stages:
            raise DomainError("a partial order chooses at least one stage", "stages")
        if len(set(stages)) != len(stages):
            raise DomainError("each stage at most once", "stages")
        parcel_ids = [p["parcel_id"] for p in data["parcels"]]
        if len(set(parcel_ids)) != len(parcel_ids):
            raise DomainError("each parcel at most once", "parcels")
        for i, parcel in enumerate(data["parcels"]):
            if parcel["contracted_area_mu"] > parcel["parcel_area_mu"]:
                raise DomainError(
                    "the contracted area exceeds the parcel's area",
                    f"parcels.{i}.contracted_area_mu",
                )
        total = sum((p["contracted_area_mu"] for p in data["parcels"]), Decimal(0))
        self.trigger(
            ev.TrusteeshipOrdered,
            **data,
            small_farmer=data["customer_type"] == "household",
            contracted_area_mu=total,
        )

    def sign(self, provider: Provider, on: date) -> None:
        if self.status != "ordered":
            raise DomainError(f"the order is {self.status}, not awaiting signature", "order_id")
        provider.require_in_good_standing(on)
        prices = []
        for stage in self.stages:
            price = provider.price_for(self.season, stage)
            if price is None:
                raise DomainError(
                    f"provider {provider.provider_id!r} has no {stage} price for {self.season}",
                    "provider_id",
                )
            prices.append(price)
        self.trigger(
            ev.TrusteeshipContractSigned,
            order_id=self.order_id,
            provider_id=self.provider_id,
            village_id=self.village_id,
            district=self.district,
            prices=prices,
            signed_on=on,
        )

    def cancel(self, reason: str, on: date) -> list[Task]:
        """Cancel before work started; answers the dispatched tasks whose windows to release."""
        if self.status == "cancelled":
            raise DomainError("the order is already cancelled", "order_id")
        started = [t.task_id for t in self.tasks.values() if t.status not in (PENDING, DISPATCHED)]
        if started or self.status == "working":
            raise DomainError("work has started; the order can no longer be cancelled", "order_id")
        dispatched = [t for t in self.tasks.values() if t.status == DISPATCHED]
        self.trigger(
            ev.TrusteeshipCancelled,
            order_id=self.order_id,
            village_id=self.village_id,
            reason=reason,
            cancelled_on=on,
        )
        return dispatched

    def schedule(self, stage: str, parcel_ids: list[str] | None, planned_on: date) -> list[Task]:
        self.require_signed("order_id")
        if stage not in self.stages:
            raise DomainError(f"the order does not include {stage}", "stage")
        for parcel_id in parcel_ids or ():
            if parcel_id not in self.parcels:
                raise DomainError(f"parcel {parcel_id!r} is not in the order", "parcel_ids")
        passes = range(1, (self.protect_passes if stage == "protect" else 1) + 1)
        scheduled = []
        for parcel_id in parcel_ids or list(self.parcels):
            for pass_no in passes:
                task_id = task_id_of(self.order_id, stage, pass_no, parcel_id)
                existing = self.tasks.get(task_id)
                if existing is not None and existing.status not in (PENDING, UNPLACED):
                    continue  # already dispatched or done: rescheduling would move booked work
                self.trigger(
                    ev.WorkTaskScheduled,
                    task_id=task_id,
                    order_id=self.order_id,
                    provider_id=self.provider_id,
                    village_id=self.village_id,
                    district=self.district,
                    parcel_id=parcel_id,
                    stage=stage,
                    pass_no=pass_no,
                    season=self.season,
                    area_mu=self.parcels[parcel_id]["contracted_area_mu"],
                    planned_on=planned_on,
                )
                scheduled.append(self.tasks[task_id])
        return scheduled

    def require_signed(self, field: str) -> None:
        if self.status not in ("signed", "working"):
            raise DomainError(f"the order is {self.status}; only signed orders get work", field)

    def task(self, task_id: str) -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            raise DomainError(f"task {task_id!r} is not part of order {self.order_id!r}", "task_id")
        return task

    def dispatch(
        self,
        task_id: str,
        team: Schedule,
        machines: list[Schedule],
        operators: list[Schedule],
        starts_at: datetime,
        ends_at: datetime,
        proposal_id: str | None = None,
        capacities: dict[str, Decimal] | None = None,
        work_day_hours: int = 10,
    ) -> None:
        """``capacities`` (machine id -> mu per working day of ``work_day_hours``): the window
        must be long enough for the task's remaining area at the suited machines' capacity."""
        self.require_signed("task_id")
        task = self.task(task_id)
        if task.status not in (PENDING, UNPLACED):
            raise DomainError(
                f"task {task_id!r} is {task.status}, not awaiting dispatch", "task_id"
            )
        if team.provider_id != self.provider_id:
            raise DomainError(
                f"team {team.id!r} does not work for this order's provider", "team_id"
            )
        suited = [m for m in machines if MACHINE_STAGES[m.machine_type] == task.stage]
        if not suited:
            raise DomainError(f"no machine suited to {task.stage} is dispatched", "machine_ids")
        if capacities is not None:
            _require_capacity(task, suited, capacities, starts_at, ends_at, work_day_hours)
        self.trigger(
            ev.TeamDispatched,
            task_id=task_id,
            order_id=self.order_id,
            village_id=self.village_id,
            team_id=team.resource_id,
            machine_ids=[m.resource_id for m in machines],
            operator_ids=[o.resource_id for o in operators],
            starts_at=starts_at,
            ends_at=ends_at,
            proposal_id=proposal_id,
        )

    def reject_dispatch(
        self, task_id: str, reason: str, detail: str, proposal_id: str | None
    ) -> None:
        task = self.task(task_id)
        self.trigger(
            ev.DispatchRejected,
            task_id=task_id,
            order_id=self.order_id,
            village_id=self.village_id,
            planned_on=task.planned_on,
            reason=reason,
            detail=detail,
            proposal_id=proposal_id,
        )

    def record_refused_dispatch(
        self, task_id: str, reason: str, field: str | None, detail: str
    ) -> None:
        """Record that a manual dispatch of the task was refused (the task's state is unchanged)."""
        task = self.task(task_id)
        self.trigger(
            ev.DispatchRejected,
            task_id=task_id,
            order_id=self.order_id,
            village_id=self.village_id,
            planned_on=task.planned_on,
            reason=reason,
            detail=detail,
            proposal_id=None,
            manual=True,
            field=field,
        )

    def start(self, task_id: str, at: datetime) -> None:
        task = self.task(task_id)
        if self.status == "cancelled":
            raise DomainError("the order is cancelled", "task_id")
        if task.status != DISPATCHED:
            raise DomainError(f"task {task_id!r} is {task.status}, not dispatched", "task_id")
        self.trigger(
            ev.WorkStarted,
            task_id=task_id,
            order_id=self.order_id,
            team_id=task.team_id,
            started_at=at,
        )

    def report_progress(
        self, task_id: str, area_done: Decimal, track: list[dict[str, Any]], at: datetime
    ) -> None:
        task = self.task(task_id)
        if task.status != STARTED:
            raise DomainError(f"task {task_id!r} is {task.status}, not started", "task_id")
        if area_done > task.area_mu:
            raise DomainError(
                f"area done exceeds the task's contracted {task.area_mu} mu", "area_done_mu"
            )
        self.trigger(
            ev.WorkProgressReported,
            task_id=task_id,
            order_id=self.order_id,
            area_done_mu=area_done,
            track=track,
            reported_at=at,
        )

    def complete(self, task_id: str, area_done: Decimal | None, at: datetime) -> None:
        task = self.task(task_id)
        if task.status != STARTED:
            raise DomainError(f"task {task_id!r} is {task.status}, not started", "task_id")
        done = task.area_done_mu if area_done is None else area_done
        if done > task.area_mu:
            raise DomainError(
                f"area done exceeds the task's contracted {task.area_mu} mu", "area_done_mu"
            )
        self.trigger(
            ev.WorkCompleted,
            task_id=task_id,
            order_id=self.order_id,
            area_done_mu=done,
            completed_at=at,
        )

    def accept(
        self,
        task_id: str,
        ledger: AcceptanceLedger,
        measured: Decimal,
        measurement: str,
        farmer: str,
        village: str,
        on: date,
    ) -> None:
        task = self.task(task_id)
        if task.status == ACCEPTED:
            raise DomainError(f"task {task_id!r} is already accepted", "task_id")
        if measurement == "joint" and task.status != DISPUTED:
            raise DomainError("joint measurement settles a disputed task", "task_id")
        if measurement != "joint" and task.status != COMPLETED:
            why = "disputed: joint measurement decides" if task.status == DISPUTED else task.status
            raise DomainError(f"task {task_id!r} is {why}, not completed", "task_id")
        if measured > task.area_mu:
            raise DomainError(
                f"measured {measured} mu exceeds the contracted {task.area_mu} mu",
                "measured_area_mu",
            )
        ledger.book(task_id, self.provider_id, measured, task.parcel_area_mu)
        self.trigger(
            ev.WorkAccepted,
            task_id=task_id,
            order_id=self.order_id,
            provider_id=self.provider_id,
            village_id=self.village_id,
            district=self.district,
            parcel_id=task.parcel_id,
            stage=task.stage,
            pass_no=task.pass_no,
            season=self.season,
            accepted_area_mu=measured,
            converted_area_mu=converted_area(task.stage, measured),
            small_farmer=self.small_farmer,
            measurement=measurement,
            farmer_confirmed_by=farmer,
            village_confirmed_by=village,
            accepted_on=on,
        )

    def reject_work(self, task_id: str, reason: str, claimed: Decimal | None, on: date) -> None:
        task = self.task(task_id)
        if task.status != COMPLETED:
            raise DomainError(f"task {task_id!r} is {task.status}, not completed", "task_id")
        self.trigger(
            ev.WorkRejected,
            task_id=task_id,
            order_id=self.order_id,
            village_id=self.village_id,
            reason=reason,
            claimed_area_mu=claimed,
            rejected_on=on,
        )

    def settle(self, provider: Provider, on: date) -> dict[str, Any]:
        due = [t for t in self.tasks.values() if t.status == ACCEPTED and not t.settled]
        if not due:
            raise DomainError(
                "no accepted, unsettled work: fees are settled only after acceptance", "order_id"
            )
        lines = []
        for task in due:
            assert task.accepted_area_mu is not None
            price = self.prices[task.stage]
            lines.append(
                {
                    "task_id": task.task_id,
                    "stage": task.stage,
                    "accepted_area_mu": task.accepted_area_mu,
                    "unit_price_fen": price,
                    "amount_fen": fee_fen(task.accepted_area_mu, price),
                }
            )
        settlement = {
            "settlement_id": f"{self.order_id}:S{self.settlements + 1}",
            "order_id": self.order_id,
            "provider_id": self.provider_id,
            "village_id": self.village_id,
            "district": self.district,
            "amount_fen": sum(line["amount_fen"] for line in lines),
            "collective_village_id": provider.collective_village_id,
            "lines": lines,
            "settled_on": on,
        }
        self.trigger(ev.ServiceFeeSettled, **settlement)
        return settlement

    def rate(self, score: int, comment: str, on: date) -> None:
        if not self.settlements:
            raise DomainError("the service is rated after a settlement", "order_id")
        if self.rated:
            raise DomainError("the order is already rated", "order_id")
        self.trigger(
            ev.ServiceRated,
            order_id=self.order_id,
            provider_id=self.provider_id,
            village_id=self.village_id,
            score=score,
            comment=comment,
            rated_on=on,
        )

    # applying

    @applies(ev.TrusteeshipOrdered)
    def _ordered(self, data: dict[str, Any]) -> None:
        for name in (
            "order_id",
            "district",
            "village_id",
            "provider_id",
            "customer_id",
            "customer_type",
            "small_farmer",
            "season",
            "stages",
            "protect_passes",
        ):
            setattr(self, name, data[name])
        self.parcels = {p["parcel_id"]: p for p in data["parcels"]}

    @applies(ev.TrusteeshipContractSigned)
    def _signed(self, data: dict[str, Any]) -> None:
        self.status = "signed"
        self.prices = {p["stage"]: p["unit_price_fen"] for p in data["prices"]}

    @applies(ev.TrusteeshipCancelled)
    def _cancelled(self, data: dict[str, Any]) -> None:
        self.status = "cancelled"

    @applies(ev.WorkTaskScheduled)
    def _scheduled(self, data: dict[str, Any]) -> None:
        parcel = self.parcels[data["parcel_id"]]
        self.tasks[data["task_id"]] = Task(
            task_id=data["task_id"],
            parcel_id=data["parcel_id"],
            stage=data["stage"],
            pass_no=data["pass_no"],
            area_mu=data["area_mu"],
            parcel_area_mu=parcel["parcel_area_mu"],
            planned_on=data["planned_on"],
        )

    @applies(ev.TeamDispatched)
    def _dispatched(self, data: dict[str, Any]) -> None:
        task = self.tasks[data["task_id"]]
        task.status = DISPATCHED
        task.team_id = data["team_id"]
        task.machine_ids = data["machine_ids"]
        task.operator_ids = data["operator_ids"]
        task.starts_at, task.ends_at = data["starts_at"], data["ends_at"]

    @applies(ev.DispatchRejected)
    def _dispatch_rejected(self, data: dict[str, Any]) -> None:
        if data.get("manual"):
            return  # a record of a refused manual dispatch: the task is as it was
        task = self.tasks[data["task_id"]]
        task.status, task.reason = UNPLACED, data["reason"]

    @applies(ev.WorkStarted)
    def _started(self, data: dict[str, Any]) -> None:
        self.tasks[data["task_id"]].status = STARTED
        self.status = "working"

    @applies(ev.WorkProgressReported)
    def _progress(self, data: dict[str, Any]) -> None:
        self.tasks[data["task_id"]].area_done_mu = data["area_done_mu"]

    @applies(ev.WorkCompleted)
    def _completed(self, data: dict[str, Any]) -> None:
        task = self.tasks[data["task_id"]]
        task.status, task.area_done_mu = COMPLETED, data["area_done_mu"]

    @applies(ev.WorkAccepted)
    def _accepted(self, data: dict[str, Any]) -> None:
        task = self.tasks[data["task_id"]]
        task.status, task.accepted_area_mu = ACCEPTED, data["accepted_area_mu"]

    @applies(ev.WorkRejected)
    def _rejected(self, data: dict[str, Any]) -> None:
        self.tasks[data["task_id"]].status = DISPUTED

    @applies(ev.ServiceFeeSettled)
    def _settled(self, data: dict[str, Any]) -> None:
        self.settlements += 1
        for line in data["lines"]:
            self.tasks[line["task_id"]].settled = True

    @applies(ev.ServiceRated)
    def _rated(self, data: dict[str, Any]) -> None:
        self.rated = True


# -- bookable schedules -----------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    task_id: str
    village_id: str
    starts_at: datetime
    ends_at: datetime


class Schedule(Aggregate):
    """A bookable resource and its windows. No two windows overlap, and windows in different
    villages are at least the travel buffer apart."""

    kind: ClassVar[str]
    snapshot_every = 50

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.resource_id = ""
        self.provider_id = ""
        self.team_id = ""
        self.slots: dict[str, Slot] = {}

    def clash(self, village_id: str, starts_at: datetime, ends_at: datetime, buffer: timedelta):
        for slot in self.slots.values():
            gap = timedelta(0) if slot.village_id == village_id else buffer
            if starts_at < slot.ends_at + gap and slot.starts_at < ends_at + gap:
                return slot
        return None

    def book(
        self,
        task_id: str,
        village_id: str,
        starts_at: datetime,
        ends_at: datetime,
        buffer: timedelta,
        field: str,
    ) -> None:
        clash = self.clash(village_id, starts_at, ends_at, buffer)
        if clash is not None:
            within = "" if clash.village_id == village_id else " (with the travel buffer)"
            raise DomainError(
                f"{self.kind} {self.resource_id!r} is booked {clash.starts_at.isoformat()} to "
                f"{clash.ends_at.isoformat()} for task {clash.task_id!r}{within}",
                field,
            )
        self.trigger(
            ev.ScheduleSlotBooked,
            kind=self.kind,
            resource_id=self.resource_id,
            task_id=task_id,
            village_id=village_id,
            starts_at=starts_at,
            ends_at=ends_at,
        )

    def release(self, task_id: str) -> None:
        if task_id in self.slots:
            self.trigger(
                ev.ScheduleSlotReleased,
                kind=self.kind,
                resource_id=self.resource_id,
                task_id=task_id,
            )

    @applies(ev.ScheduleSlotBooked)
    def _booked(self, data: dict[str, Any]) -> None:
        self.slots[data["task_id"]] = Slot(
            data["task_id"], data["village_id"], data["starts_at"], data["ends_at"]
        )

    @applies(ev.ScheduleSlotReleased)
    def _released(self, data: dict[str, Any]) -> None:
        self.slots.pop(data["task_id"], None)

    def _slots_state(self) -> list[dict[str, str]]:
        return [
            {
                "task_id": s.task_id,
                "village_id": s.village_id,
                "starts_at": s.starts_at.isoformat(),
                "ends_at": s.ends_at.isoformat(),
            }
            for s in self.slots.values()
        ]

    def _restore_slots(self, state: list[dict[str, str]]) -> None:
        for s in state:
            self.slots[s["task_id"]] = Slot(
                s["task_id"],
                s["village_id"],
                datetime.fromisoformat(s["starts_at"]),
                datetime.fromisoformat(s["ends_at"]),
            )


class Team(Schedule):
    kind = "team"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.district = ""
        self.base_village_id = ""

    def register(self, **data: Any) -> None:
        self.trigger(ev.MachineryTeamRegistered, **data)

    @applies(ev.MachineryTeamRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.resource_id = self.team_id = data["team_id"]
        self.provider_id, self.district = data["provider_id"], data["district"]
        self.base_village_id = data["base_village_id"]

    def to_snapshot(self) -> dict[str, Any]:
        return {
            "team_id": self.team_id,
            "provider_id": self.provider_id,
            "district": self.district,
            "base_village_id": self.base_village_id,
            "slots": self._slots_state(),
        }

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Team:
        team = cls(id)
        team.resource_id = team.team_id = state["team_id"]
        team.provider_id, team.district = state["provider_id"], state["district"]
        team.base_village_id = state["base_village_id"]
        team._restore_slots(state["slots"])
        return team


def _require_capacity(
    task: Task,
    suited: list[Schedule],
    capacities: dict[str, Decimal],
    starts_at: datetime,
    ends_at: datetime,
    work_day_hours: int,
) -> None:
    """Window hours × the suited machines' mu per day, pro-rated by the working day, covers
    the task's remaining area (what automatic dispatch plans by)."""
    per_day = sum((capacities[m.resource_id] for m in suited), Decimal(0))
    hours = Decimal((ends_at - starts_at).total_seconds()) / 3600
    can_do = per_day * hours / work_day_hours
    remaining = task.area_mu - task.area_done_mu
    if can_do < remaining:
        raise DomainError(
            f"the window of {hours.normalize():f} h covers {area(can_do)} mu at "
            f"{per_day.normalize():f} mu per {work_day_hours} h working day of the suited "
            f"machines; the task has {remaining} mu left",
            "ends_at",
        )


class Machine(Schedule):
    kind = "machine"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.machine_type = ""
        #: mu per working day; None only when restored from a snapshot taken before it was kept
        self.capacity_mu_per_day: Decimal | None = None

    def register(self, **data: Any) -> None:
        self.trigger(ev.MachineRegistered, **data)

    @applies(ev.MachineRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.resource_id = data["machine_id"]
        self.team_id, self.provider_id = data["team_id"], data["provider_id"]
        self.machine_type = data["machine_type"]
        self.capacity_mu_per_day = Decimal(str(data["capacity_mu_per_day"]))

    def to_snapshot(self) -> dict[str, Any]:
        capacity = self.capacity_mu_per_day
        return {
            "machine_id": self.resource_id,
            "team_id": self.team_id,
            "provider_id": self.provider_id,
            "machine_type": self.machine_type,
            "capacity_mu_per_day": None if capacity is None else str(capacity),
            "slots": self._slots_state(),
        }

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Machine:
        machine = cls(id)
        machine.resource_id, machine.team_id = state["machine_id"], state["team_id"]
        machine.provider_id, machine.machine_type = state["provider_id"], state["machine_type"]
        capacity = state.get("capacity_mu_per_day")
        machine.capacity_mu_per_day = None if capacity is None else Decimal(capacity)
        machine._restore_slots(state["slots"])
        return machine


class Operator(Schedule):
    kind = "operator"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.licence_expires_on: date | None = None

    def register(self, **data: Any) -> None:
        self.trigger(ev.MachineOperatorRegistered, **data)

    def renew(self, expires_on: date) -> None:
        self.trigger(
            ev.OperatorLicenceRenewed, operator_id=self.resource_id, licence_expires_on=expires_on
        )

    def require_licence(self, through: date, field: str = "operator_ids") -> None:
        assert self.licence_expires_on is not None
        if self.licence_expires_on < through:
            raise DomainError(
                f"operator {self.resource_id!r}'s licence expired on {self.licence_expires_on}",
                field,
            )

    @applies(ev.MachineOperatorRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.resource_id = data["operator_id"]
        self.team_id, self.provider_id = data["team_id"], data["provider_id"]
        self.licence_expires_on = data["licence_expires_on"]

    @applies(ev.OperatorLicenceRenewed)
    def _renewed(self, data: dict[str, Any]) -> None:
        self.licence_expires_on = data["licence_expires_on"]

    def to_snapshot(self) -> dict[str, Any]:
        assert self.licence_expires_on is not None
        return {
            "operator_id": self.resource_id,
            "team_id": self.team_id,
            "provider_id": self.provider_id,
            "licence_expires_on": self.licence_expires_on.isoformat(),
            "slots": self._slots_state(),
        }

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Operator:
        operator = cls(id)
        operator.resource_id, operator.team_id = state["operator_id"], state["team_id"]
        operator.provider_id = state["provider_id"]
        operator.licence_expires_on = date.fromisoformat(state["licence_expires_on"])
        operator._restore_slots(state["slots"])
        return operator


class VillageSite(Aggregate):
    def locate(self, village_id: str, lat: Decimal, lon: Decimal) -> None:
        self.trigger(ev.VillageSiteLocated, village_id=village_id, lat=lat, lon=lon)

    @applies(ev.VillageSiteLocated)
    def _located(self, data: dict[str, Any]) -> None:
        pass


# -- ledgers ----------------------------------------------------------------------------------


class AcceptanceLedger(Aggregate):
    """Accepted area of one parcel × stage slot × season, across orders and providers."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.parcel_area_mu: Decimal | None = None
        self.entries: dict[str, tuple[str, Decimal]] = {}  # task -> (provider, area)
        self.key: tuple[str, str, str] = ("", "", "")

    def bind(self, parcel_id: str, slot: str, season: str) -> None:
        self.key = (parcel_id, slot, season)

    @property
    def accepted_mu(self) -> Decimal:
        return sum((a for _, a in self.entries.values()), Decimal("0.00"))

    def book(self, task_id: str, provider_id: str, area_mu: Decimal, parcel_area: Decimal) -> None:
        if task_id in self.entries:
            raise DomainError(f"task {task_id!r} is already accepted", "task_id")
        limit = (
            parcel_area if self.parcel_area_mu is None else min(parcel_area, self.parcel_area_mu)
        )
        already = self.accepted_mu
        if already + area_mu > limit:
            by = ", ".join(sorted({p for p, _ in self.entries.values()})) or "nobody"
            parcel_id, slot, season = self.key
            raise DomainError(
                f"{already} mu of parcel {parcel_id!r} ({slot}, {season}) is already accepted "
                f"(by {by}); {area_mu} more would exceed the parcel's {limit} mu",
                "measured_area_mu",
            )
        parcel_id, slot, season = self.key
        self.trigger(
            ev.AcceptedAreaBooked,
            parcel_id=parcel_id,
            slot=slot,
            season=season,
            task_id=task_id,
            provider_id=provider_id,
            area_mu=area_mu,
            parcel_area_mu=limit,
        )

    @applies(ev.AcceptedAreaBooked)
    def _booked(self, data: dict[str, Any]) -> None:
        self.key = (data["parcel_id"], data["slot"], data["season"])
        self.parcel_area_mu = data["parcel_area_mu"]
        self.entries[data["task_id"]] = (data["provider_id"], data["area_mu"])


@dataclass
class Reservation:
    task_id: str
    amount_fen: int
    small_farmer: bool
    area_mu: Decimal


class SubsidyLedger(Aggregate):
    """Subsidy reserved against one cap: a parcel's season, a large operator's year, or a
    district programme's season (for the small-farmer share)."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.entries: dict[str, Reservation] = {}

    @property
    def reserved_fen(self) -> int:
        return sum(r.amount_fen for r in self.entries.values())

    @property
    def small_farmer_fen(self) -> int:
        return sum(r.amount_fen for r in self.entries.values() if r.small_farmer)

    def has_task(self, task_id: str) -> bool:
        return any(r.task_id == task_id for r in self.entries.values())

    def reserve(
        self, claim_id: str, task_id: str, amount: int, small_farmer: bool, area_mu: Decimal
    ) -> None:
        self.trigger(
            ev.SubsidyReserved,
            claim_id=claim_id,
            task_id=task_id,
            amount_fen=amount,
            small_farmer=small_farmer,
            area_mu=area_mu,
        )

    def release(self, claim_id: str) -> None:
        if claim_id in self.entries:
            self.trigger(ev.SubsidyReservationReleased, claim_id=claim_id)

    @applies(ev.SubsidyReserved)
    def _reserved(self, data: dict[str, Any]) -> None:
        self.entries[data["claim_id"]] = Reservation(
            data["task_id"], data["amount_fen"], data["small_farmer"], data["area_mu"]
        )

    @applies(ev.SubsidyReservationReleased)
    def _released(self, data: dict[str, Any]) -> None:
        self.entries.pop(data["claim_id"], None)


class SubsidyClaim(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.data: dict[str, Any] = {}
        self.status = "claimed"

    def claim(self, **data: Any) -> None:
        self.trigger(ev.SubsidyClaimed, **data)

    def approve(self, programme: SubsidyLedger, share_min: Decimal, on: date) -> None:
        self._require("claimed")
        if not self.data["small_farmer"]:
            total = programme.reserved_fen + self.data["amount_fen"]
            share = Decimal(programme.small_farmer_fen) / Decimal(total)
            if share < share_min:
                raise DomainError(
                    f"approving it would leave small farmers {share:.0%} of the season's "
                    f"approved funds, below the {share_min:.0%} target",
                    "small_farmer_share",
                )
        programme.reserve(
            self.id,
            self.data["task_id"],
            self.data["amount_fen"],
            self.data["small_farmer"],
            self.data["accepted_area_mu"],
        )
        self.trigger(
            ev.SubsidyApproved,
            claim_id=self.data["claim_id"],
            village_id=self.data["village_id"],
            amount_fen=self.data["amount_fen"],
            approved_on=on,
        )

    def deny(self, reason: str, on: date) -> None:
        self._require("claimed")
        self.trigger(
            ev.SubsidyDenied,
            claim_id=self.data["claim_id"],
            village_id=self.data["village_id"],
            reason=reason,
            denied_on=on,
        )

    def pay(self, on: date) -> None:
        self._require("approved")
        self.trigger(
            ev.SubsidyPaid,
            claim_id=self.data["claim_id"],
            village_id=self.data["village_id"],
            amount_fen=self.data["amount_fen"],
            paid_on=on,
        )

    def _require(self, status: str) -> None:
        if self.status != status:
            raise DomainError(f"the claim is {self.status}, not {status}", "claim_id")

    @applies(ev.SubsidyClaimed)
    def _claimed(self, data: dict[str, Any]) -> None:
        self.data = data

    @applies(ev.SubsidyApproved)
    def _approved(self, data: dict[str, Any]) -> None:
        self.status = "approved"

    @applies(ev.SubsidyDenied)
    def _denied(self, data: dict[str, Any]) -> None:
        self.status = "denied"

    @applies(ev.SubsidyPaid)
    def _paid(self, data: dict[str, Any]) -> None:
        self.status = "paid"


class DispatchProposal(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.data: dict[str, Any] = {}
        self.confirmed = False

    def propose(self, **data: Any) -> None:
        self.trigger(ev.DispatchProposed, **data)

    def confirm(self, dispatched: int, rejected: int) -> None:
        if self.confirmed:
            raise Conflict("the proposal is already confirmed")
        self.trigger(
            ev.DispatchProposalConfirmed,
            proposal_id=self.data["proposal_id"],
            dispatched=dispatched,
            rejected=rejected,
        )

    @applies(ev.DispatchProposed)
    def _proposed(self, data: dict[str, Any]) -> None:
        self.data = data

    @applies(ev.DispatchProposalConfirmed)
    def _confirmed(self, data: dict[str, Any]) -> None:
        self.confirmed = True
