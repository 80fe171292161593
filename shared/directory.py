"""The village directory every service keeps from the alliance service's events.

The alliance service owns who exists and who is in which cluster. Services that must check a
village (a parcel's village must exist) or report per cluster keep a local copy, fed by
``alliance.events`` through the same exactly-once delivery as any projection, so they never call
the alliance service while handling a command::

    class LandService(DirectoryMember, ServiceBase):
        name = "land"
        projections = [DIRECTORY, ...]

        def decide(uow):
            village = directory.require_village(uow.connection, body["village_id"])

Membership is effective-dated (``joined_on`` inclusive, ``left_on`` exclusive), so "which cluster
was this village in on that day" has one answer for every past day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
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
    select,
    update,
)
from sqlalchemy.engine import Connection

from shared import auth
from shared.clock import today
from shared.consumers import subscribe
from shared.errors import DomainError, NotFound
from shared.eventstore import RecordedEvent
from shared.http import query
from shared.projections import Projection

directory_model = MetaData()
units = Table(
    "directory_units",
    directory_model,
    Column("unit_id", String(64), primary_key=True),
    Column("district", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("unit_type", String(32), nullable=False),
    Column("population", Integer),
    Column("households", Integer),
    Column("contracted_area_mu", String(32)),
    Column("weak", Boolean),
    Column("bank_code", String(32)),
)
clusters = Table(
    "directory_clusters",
    directory_model,
    Column("cluster_id", String(64), primary_key=True),
    Column("alliance_id", String(64), nullable=False),
    Column("district", String(64), nullable=False),
    Column("name", String(200), nullable=False),
)
memberships = Table(
    "directory_memberships",
    directory_model,
    Column("unit_id", String(64), primary_key=True),
    Column("cluster_id", String(64), primary_key=True),
    Column("joined_on", Date, primary_key=True),
    Column("alliance_id", String(64), nullable=False),
    Column("left_on", Date),
)

DIRECTORY_EVENTS = ("ClusterFormed", "MemberUnitRegistered", "MemberJoined", "MemberLeft")


class VillageDirectory(Projection):
    metadata = directory_model
    source = "alliance"
    handles = frozenset(DIRECTORY_EVENTS)

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        data = event.data
        if event.type == "ClusterFormed":
            db.execute(
                clusters.insert().values(
                    cluster_id=data["cluster_id"],
                    alliance_id=data["alliance_id"],
                    district=data["district"],
                    name=data["name"],
                )
            )
        elif event.type == "MemberUnitRegistered":
            village = data.get("village") or {}
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
                    bank_code=data.get("bank_code"),
                )
            )
        elif event.type == "MemberJoined":
            db.execute(
                memberships.insert().values(
                    unit_id=data["unit_id"],
                    cluster_id=data["cluster_id"],
                    alliance_id=data["alliance_id"],
                    joined_on=date.fromisoformat(data["joined_on"]),
                )
            )
        elif event.type == "MemberLeft":
            db.execute(
                update(memberships)
                .where(
                    memberships.c.unit_id == data["unit_id"],
                    memberships.c.cluster_id == data["cluster_id"],
                    memberships.c.left_on.is_(None),
                )
                .values(left_on=date.fromisoformat(data["left_on"]))
            )


DIRECTORY = VillageDirectory()


@dataclass(frozen=True)
class Village:
    village_id: str
    district: str
    name: str
    population: int
    households: int
    contracted_area_mu: Decimal
    weak: bool


def find_village(db: Connection, village_id: str) -> Village | None:
    row = db.execute(
        select(units).where(units.c.unit_id == village_id, units.c.unit_type == "village")
    ).first()
    if row is None:
        return None
    return Village(
        village_id=row.unit_id,
        district=row.district,
        name=row.name,
        population=row.population,
        households=row.households,
        contracted_area_mu=Decimal(row.contracted_area_mu),
        weak=bool(row.weak),
    )


def require_village(db: Connection, village_id: str, field: str = "village_id") -> Village:
    """The village, or a 422 naming ``field``: a command may not refer to an unknown village."""
    village = find_village(db, village_id)
    if village is None:
        raise DomainError(f"village {village_id!r} is not in the alliance directory", field)
    return village


def _member_on(on: date) -> Any:
    return and_(
        memberships.c.joined_on <= on,
        or_(memberships.c.left_on.is_(None), memberships.c.left_on > on),
    )


def cluster_of(db: Connection, unit_id: str, on: date) -> str | None:
    """The cluster a unit belonged to on a day (the first one, if it was in several alliances)."""
    return db.execute(
        select(memberships.c.cluster_id)
        .where(memberships.c.unit_id == unit_id, _member_on(on))
        .order_by(memberships.c.joined_on)
    ).scalar()


def members_of(db: Connection, cluster_id: str, on: date) -> list[str]:
    """The units in a cluster on a day."""
    return list(
        db.execute(
            select(memberships.c.unit_id)
            .where(memberships.c.cluster_id == cluster_id, _member_on(on))
            .order_by(memberships.c.unit_id)
        ).scalars()
    )


class DirectoryMember:
    """Mixin for a service that keeps the village directory: it subscribes to the alliance's
    directory events (per unit, in order) and answers what it knows of a village."""

    @subscribe("alliance", DIRECTORY_EVENTS, ordered=True)
    def on_directory_event(self, event: RecordedEvent, db: Connection) -> None:
        DIRECTORY.apply(event, db)

    @query("/api/v1/{service}/directory/villages/<village_id>", roles=sorted(auth.ROLES))
    def directory_village(self, request: Any, village_id: str) -> dict[str, Any]:
        """A village as this service knows it from the directory, and its cluster today."""
        with self.store.events.engine.connect() as db:  # type: ignore[attr-defined]
            village = find_village(db, village_id)
            if village is None:
                raise NotFound(f"village {village_id!r} is not in this service's directory")
            cluster_id = cluster_of(db, village_id, today())
        return {
            "village_id": village.village_id,
            "district": village.district,
            "name": village.name,
            "population": village.population,
            "households": village.households,
            "contracted_area_mu": str(village.contracted_area_mu),
            "weak": village.weak,
            "cluster_id": cluster_id,
        }
