"""Read models of the alliance service, built inline from its own events.

Rosters are effective-dated: a membership row is a half-open interval ``[joined_on, left_on)``,
so "who was in this cluster on that day" has one answer for every past day.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    or_,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from shared.errors import ConcurrencyError
from shared.eventstore import RecordedEvent
from shared.projections import Projection

model = MetaData()
alliances = Table(
    "alliance_alliances",
    model,
    Column("alliance_id", String(64), primary_key=True),
    Column("district", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("level", String(16), nullable=False),
    Column("parent_alliance_id", String(64)),
)
clusters = Table(
    "alliance_clusters",
    model,
    Column("cluster_id", String(64), primary_key=True),
    Column("alliance_id", String(64), nullable=False, index=True),
    Column("district", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("theme_industry", String(200), nullable=False),
    Column("lead_unit_id", String(64)),
)
units = Table(
    "alliance_units",
    model,
    Column("unit_id", String(64), primary_key=True),
    Column("district", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("unit_type", String(32), nullable=False),
    Column("population", Integer),
    Column("households", Integer),
    Column("contracted_area_mu", String(32)),
    Column("weak", Boolean),
    Column("bank_code", String(32)),
)
memberships = Table(
    "alliance_memberships",
    model,
    Column("unit_id", String(64), primary_key=True),
    Column("cluster_id", String(64), primary_key=True, index=True),
    Column("joined_on", Date, primary_key=True),
    Column("alliance_id", String(64), nullable=False),
    Column("unit_type", String(32), nullable=False),
    Column("left_on", Date),
)
tasks = Table(
    "alliance_tasks",
    model,
    Column("task_id", String(64), primary_key=True),
    Column("alliance_id", String(64), nullable=False),
    Column("cluster_id", String(64), nullable=False, index=True),
    Column("unit_id", String(64)),
    Column("district", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("indicator", String(200), nullable=False),
    Column("measure_unit", String(32), nullable=False),
    Column("target_quantity", String(32), nullable=False),
    Column("progress_quantity", String(32), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("deadline_on", Date, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("schedule", String(16), nullable=False),
    Column("schedule_as_of", Date),
    Column("progress_share", String(16)),
    Column("expected_share", String(16)),
    Column("verified_on", Date),
)
activities = Table(
    "alliance_activities",
    model,
    Column("activity_id", String(64), primary_key=True),
    Column("unit_id", String(64), nullable=False, index=True),
    Column("district", String(64), nullable=False),
    Column("activity_type", String(32), nullable=False),
    Column("occurred_at", String(40), nullable=False),
    Column("occurred_on", Date, nullable=False, index=True),
)
talent = Table(
    "alliance_talent",
    model,
    Column("talent_id", String(64), primary_key=True),
    Column("cluster_id", String(64), nullable=False, index=True),
    Column("village_id", String(64)),
    Column("district", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("category", String(32), nullable=False),
    Column("registered_on", Date, nullable=False),
)


def member_on(on: date) -> Any:
    """Membership rows in force on a day."""
    return and_(
        memberships.c.joined_on <= on,
        or_(memberships.c.left_on.is_(None), memberships.c.left_on > on),
    )


def _day(value: str) -> date:
    return date.fromisoformat(value)


def _task(db: Connection, data: dict[str, Any], **values: Any) -> None:
    db.execute(update(tasks).where(tasks.c.task_id == data["task_id"]).values(**values))


def _schedule(db: Connection, data: dict[str, Any], state: str) -> None:
    _task(
        db,
        data,
        schedule=state,
        schedule_as_of=_day(data["as_of"]),
        progress_share=data["progress_share"],
        expected_share=data["expected_share"],
    )


class AllianceViews(Projection):
    metadata = model
    handles = frozenset(
        {
            "AllianceFounded",
            "ClusterFormed",
            "MemberUnitRegistered",
            "MemberJoined",
            "MemberLeft",
            "TaskAssigned",
            "TaskProgressReported",
            "TaskCompletionSubmitted",
            "TaskVerified",
            "TaskReturned",
            "TaskFellBehind",
            "TaskBackOnTrack",
            "TaskOverdue",
            "ActivityRecorded",
            "TalentRegistered",
        }
    )

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        getattr(self, f"_on_{event.type}")(event.data, db)

    def _on_AllianceFounded(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(alliances.insert().values(**data))

    def _on_ClusterFormed(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(clusters.insert().values(**data))

    def _on_MemberUnitRegistered(self, data: dict[str, Any], db: Connection) -> None:
        village = data["village"] or {}
        db.execute(
            units.insert().values(
                unit_id=data["unit_id"],
                district=data["district"],
                name=data["name"],
                unit_type=data["unit_type"],
                population=village.get("population"),
                households=village.get("households"),
                contracted_area_mu=village.get("contracted_area_mu"),
                weak=village.get("weak"),
                bank_code=data["bank_code"],
            )
        )

    def _on_MemberJoined(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            memberships.insert().values(
                unit_id=data["unit_id"],
                cluster_id=data["cluster_id"],
                joined_on=_day(data["joined_on"]),
                alliance_id=data["alliance_id"],
                unit_type=data["unit_type"],
            )
        )

    def _on_MemberLeft(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            update(memberships)
            .where(
                memberships.c.unit_id == data["unit_id"],
                memberships.c.cluster_id == data["cluster_id"],
                memberships.c.left_on.is_(None),
            )
            .values(left_on=_day(data["left_on"]))
        )

    def _on_TaskAssigned(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            tasks.insert().values(
                **{k: v for k, v in data.items() if k not in ("starts_on", "deadline_on")},
                starts_on=_day(data["starts_on"]),
                deadline_on=_day(data["deadline_on"]),
                progress_quantity="0",
                status="in_progress",
                schedule="on_track",
            )
        )

    def _on_TaskProgressReported(self, data: dict[str, Any], db: Connection) -> None:
        _task(db, data, progress_quantity=data["cumulative_quantity"])

    def _on_TaskCompletionSubmitted(self, data: dict[str, Any], db: Connection) -> None:
        _task(db, data, status="submitted")

    def _on_TaskVerified(self, data: dict[str, Any], db: Connection) -> None:
        _task(db, data, status="verified", verified_on=_day(data["verified_on"]))

    def _on_TaskReturned(self, data: dict[str, Any], db: Connection) -> None:
        _task(db, data, status="in_progress")

    def _on_TaskFellBehind(self, data: dict[str, Any], db: Connection) -> None:
        _schedule(db, data, "behind")

    def _on_TaskBackOnTrack(self, data: dict[str, Any], db: Connection) -> None:
        _schedule(db, data, "on_track")

    def _on_TaskOverdue(self, data: dict[str, Any], db: Connection) -> None:
        _schedule(db, data, "overdue")

    def _on_ActivityRecorded(self, data: dict[str, Any], db: Connection) -> None:
        try:
            db.execute(
                activities.insert().values(
                    activity_id=data["activity_id"],
                    unit_id=data["unit_id"],
                    district=data["district"],
                    activity_type=data["activity_type"],
                    occurred_at=data["occurred_at"],
                    occurred_on=_day(data["occurred_on"]),
                )
            )
        except IntegrityError as exc:
            # Activity ids are unique across units, and this table is where that is claimed:
            # another unit's concurrent record took the id. The command is decided again and
            # answers 409 naming ``id``.
            raise ConcurrencyError(data["activity_id"]) from exc

    def _on_TalentRegistered(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            talent.insert().values(
                **{k: v for k, v in data.items() if k != "registered_on"},
                registered_on=_day(data["registered_on"]),
            )
        )


VIEWS = AllianceViews()
