"""Read models of the trusteeship centre, built inline from its own events: the dispatch desk's
tasks, teams with their machines and operators, booked windows, village sites, fees and
subsidy claims."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    update,
)
from sqlalchemy.engine import Connection

from shared.eventstore import RecordedEvent
from shared.projections import Projection

model = MetaData()
tasks = Table(
    "trusteeship_tasks",
    model,
    Column("task_id", String(200), primary_key=True),
    Column("order_id", String(64), nullable=False, index=True),
    Column("provider_id", String(64), nullable=False),
    Column("village_id", String(64), nullable=False),
    Column("district", String(64), nullable=False),
    Column("parcel_id", String(64), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("pass_no", Integer, nullable=False),
    Column("season", String(32), nullable=False),
    Column("area_mu", String(32), nullable=False),
    Column("planned_on", Date, nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("team_id", String(64)),
    Column("starts_at", String(40)),
    Column("ends_at", String(40)),
    Column("reason", String(32)),
    Column("detail", String(300)),
    Column("accepted_area_mu", String(32)),
    Column("converted_area_mu", String(32)),
    Column("accepted_on", Date),
)
resources = Table(
    "trusteeship_resources",
    model,
    Column("kind", String(16), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("team_id", String(64), nullable=False, index=True),
    Column("provider_id", String(64), nullable=False),
    Column("district", String(64)),
    Column("name", String(200)),
    Column("team_type", String(32)),
    Column("base_village_id", String(64)),
    Column("base_lat", String(32)),
    Column("base_lon", String(32)),
    Column("machine_type", String(32)),
    Column("capacity_mu_per_day", String(32)),
    Column("licence_expires_on", Date),
    Column("version", Integer, nullable=False),
)
bookings = Table(
    "trusteeship_bookings",
    model,
    Column("kind", String(16), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("task_id", String(200), primary_key=True),
    Column("village_id", String(64), nullable=False),
    # UTC, fixed format: string order is time order on every backend.
    Column("starts_utc", String(32), nullable=False),
    Column("ends_utc", String(32), nullable=False),
    Column("starts_at", String(40), nullable=False),
    Column("ends_at", String(40), nullable=False),
)
village_sites = Table(
    "trusteeship_village_sites",
    model,
    Column("village_id", String(64), primary_key=True),
    Column("lat", String(32), nullable=False),
    Column("lon", String(32), nullable=False),
)
settlements = Table(
    "trusteeship_settlements",
    model,
    Column("settlement_id", String(100), primary_key=True),
    Column("order_id", String(64), nullable=False),
    Column("provider_id", String(64), nullable=False, index=True),
    Column("village_id", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("settled_on", Date, nullable=False),
)
claims = Table(
    "trusteeship_claims",
    model,
    Column("claim_id", String(64), primary_key=True),
    Column("task_id", String(200), nullable=False),
    Column("provider_id", String(64), nullable=False, index=True),
    Column("village_id", String(64), nullable=False),
    Column("season", String(32), nullable=False),
    Column("stage", String(16), nullable=False),
    Column("small_farmer", Boolean, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("converted_area_mu", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("claimed_on", Date, nullable=False),
)


def utc(value: str) -> str:
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


TASK_BY_ID = tasks.c.task_id == bindparam("p_task_id")
SET_TASK = update(tasks).where(TASK_BY_ID)
RESOURCE_KEY = (resources.c.kind == bindparam("p_kind")) & (
    resources.c.resource_id == bindparam("p_resource_id")
)
BUMP_RESOURCE = update(resources).where(RESOURCE_KEY).values(version=bindparam("p_version"))
RESOURCE_STREAMS = {"Team": "team", "Machine": "machine", "Operator": "operator"}


class DispatchDesk(Projection):
    metadata = model
    handles = frozenset(
        {
            "WorkTaskScheduled",
            "TeamDispatched",
            "DispatchRejected",
            "WorkStarted",
            "WorkCompleted",
            "WorkAccepted",
            "WorkRejected",
            "TrusteeshipCancelled",
            "MachineryTeamRegistered",
            "MachineRegistered",
            "MachineOperatorRegistered",
            "OperatorLicenceRenewed",
            "ScheduleSlotBooked",
            "ScheduleSlotReleased",
            "VillageSiteLocated",
            "ServiceFeeSettled",
            "SubsidyClaimed",
            "SubsidyApproved",
            "SubsidyDenied",
            "SubsidyPaid",
        }
    )

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        getattr(self, "_" + event.type)(event, event.data, db)
        kind = RESOURCE_STREAMS.get(event.stream_type)
        if kind is not None and event.type != "MachineryTeamRegistered":
            resource_id = event.stream_id.split(":", 1)[1]
            db.execute(
                BUMP_RESOURCE,
                {"p_kind": kind, "p_resource_id": resource_id, "p_version": event.version},
            )

    # tasks

    def _set_task(self, db: Connection, task_id: str, **values: Any) -> None:
        db.execute(SET_TASK.values(**values), {"p_task_id": task_id})

    def _WorkTaskScheduled(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        db.execute(delete(tasks).where(tasks.c.task_id == d["task_id"]))
        db.execute(
            tasks.insert().values(
                **{k: d[k] for k in ("task_id", "order_id", "provider_id", "village_id")},
                **{k: d[k] for k in ("district", "parcel_id", "stage", "pass_no", "season")},
                area_mu=d["area_mu"],
                planned_on=datetime.fromisoformat(d["planned_on"]).date(),
                status="scheduled",
            )
        )

    def _TeamDispatched(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._set_task(
            db,
            d["task_id"],
            status="dispatched",
            team_id=d["team_id"],
            starts_at=d["starts_at"],
            ends_at=d["ends_at"],
            reason=None,
            detail=None,
        )

    def _DispatchRejected(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        if d.get("manual"):
            return  # a refused manual dispatch leaves the task as it was
        self._set_task(db, d["task_id"], status="unplaced", reason=d["reason"], detail=d["detail"])

    def _WorkStarted(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._set_task(db, d["task_id"], status="started")

    def _WorkCompleted(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._set_task(db, d["task_id"], status="completed")

    def _WorkRejected(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._set_task(db, d["task_id"], status="disputed")

    def _WorkAccepted(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._set_task(
            db,
            d["task_id"],
            status="accepted",
            accepted_area_mu=d["accepted_area_mu"],
            converted_area_mu=d["converted_area_mu"],
            accepted_on=datetime.fromisoformat(d["accepted_on"]).date(),
        )

    def _TrusteeshipCancelled(
        self, event: RecordedEvent, d: dict[str, Any], db: Connection
    ) -> None:
        db.execute(
            update(tasks).where(tasks.c.order_id == d["order_id"]).values(status="cancelled")
        )

    # teams, machines, operators and their windows

    def _MachineryTeamRegistered(
        self, event: RecordedEvent, d: dict[str, Any], db: Connection
    ) -> None:
        db.execute(
            resources.insert().values(
                kind="team",
                resource_id=d["team_id"],
                team_id=d["team_id"],
                provider_id=d["provider_id"],
                district=d["district"],
                name=d["name"],
                team_type=d["team_type"],
                base_village_id=d["base_village_id"],
                base_lat=d["base_lat"],
                base_lon=d["base_lon"],
                version=event.version,
            )
        )

    def _MachineRegistered(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        db.execute(
            resources.insert().values(
                kind="machine",
                resource_id=d["machine_id"],
                team_id=d["team_id"],
                provider_id=d["provider_id"],
                machine_type=d["machine_type"],
                capacity_mu_per_day=d["capacity_mu_per_day"],
                version=event.version,
            )
        )

    def _MachineOperatorRegistered(
        self, event: RecordedEvent, d: dict[str, Any], db: Connection
    ) -> None:
        db.execute(
            resources.insert().values(
                kind="operator",
                resource_id=d["operator_id"],
                team_id=d["team_id"],
                provider_id=d["provider_id"],
                name=d["name"],
                licence_expires_on=datetime.fromisoformat(d["licence_expires_on"]).date(),
                version=event.version,
            )
        )

    def _OperatorLicenceRenewed(
        self, event: RecordedEvent, d: dict[str, Any], db: Connection
    ) -> None:
        db.execute(
            update(resources)
            .where(resources.c.kind == "operator", resources.c.resource_id == d["operator_id"])
            .values(licence_expires_on=datetime.fromisoformat(d["licence_expires_on"]).date())
        )

    def _ScheduleSlotBooked(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        db.execute(
            bookings.insert().values(
                kind=d["kind"],
                resource_id=d["resource_id"],
                task_id=d["task_id"],
                village_id=d["village_id"],
                starts_utc=utc(d["starts_at"]),
                ends_utc=utc(d["ends_at"]),
                starts_at=d["starts_at"],
                ends_at=d["ends_at"],
            )
        )

    def _ScheduleSlotReleased(
        self, event: RecordedEvent, d: dict[str, Any], db: Connection
    ) -> None:
        db.execute(
            delete(bookings).where(
                bookings.c.kind == d["kind"],
                bookings.c.resource_id == d["resource_id"],
                bookings.c.task_id == d["task_id"],
            )
        )

    def _VillageSiteLocated(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        db.execute(delete(village_sites).where(village_sites.c.village_id == d["village_id"]))
        db.execute(
            village_sites.insert().values(village_id=d["village_id"], lat=d["lat"], lon=d["lon"])
        )

    # money

    def _ServiceFeeSettled(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        db.execute(
            settlements.insert().values(
                settlement_id=d["settlement_id"],
                order_id=d["order_id"],
                provider_id=d["provider_id"],
                village_id=d["village_id"],
                amount_fen=d["amount_fen"],
                settled_on=datetime.fromisoformat(d["settled_on"]).date(),
            )
        )

    def _SubsidyClaimed(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        db.execute(
            claims.insert().values(
                **{k: d[k] for k in ("claim_id", "task_id", "provider_id", "village_id")},
                **{k: d[k] for k in ("season", "stage", "small_farmer", "amount_fen")},
                converted_area_mu=d["converted_area_mu"],
                status="claimed",
                claimed_on=datetime.fromisoformat(d["claimed_on"]).date(),
            )
        )

    def _claim_status(self, db: Connection, claim_id: str, status: str) -> None:
        db.execute(update(claims).where(claims.c.claim_id == claim_id).values(status=status))

    def _SubsidyApproved(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._claim_status(db, d["claim_id"], "approved")

    def _SubsidyDenied(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._claim_status(db, d["claim_id"], "denied")

    def _SubsidyPaid(self, event: RecordedEvent, d: dict[str, Any], db: Connection) -> None:
        self._claim_status(db, d["claim_id"], "paid")


DESK = DispatchDesk()
