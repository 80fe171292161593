"""The ranking service's read models.

* **Facts** (``ranking_facts``): what other services' events say, per village (or cluster) and
  business day, as fixed-point integers. One row per event and part (an order's lines), keyed by
  the event id, so applying an event twice changes nothing. Facts do not name a cluster: scoring
  joins them with the directory's effective-dated memberships, so the result does not depend on
  whether a fact arrived before or after the membership that places its village.
* **Dirty marks** (``ranking_dirty``): which sources changed since the boards were last computed;
  written in the same transaction as the facts, consumed by the board keeper.
* **Competitions, adjustments, bulletins**: built inline from this service's own events.
* **Boards** (``ranking_board_rows`` + ``ranking_boards``): the current period's ranked rows per
  competition version and window, for top-N and around-an-entity queries by index.
* **Board changes** (``ranking_board_changes``): a position-ordered log of every change to a shown
  board; every replica's streams tail it (Last-Event-ID = its position).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection

from services.ranking.scoring import SOURCES
from shared.clock import local_day
from shared.eventstore import EventStore, RecordedEvent
from shared.projections import Projection

Json = JSON().with_variant(JSONB(), "postgresql")
#: Fed by other services' events (and derived boards): never emptied by a replay of our own log.
model = MetaData()
#: Built from this service's own events: a replay empties and rebuilds it.
own_model = MetaData()

facts = Table(
    "ranking_facts",
    model,
    Column("event_id", String(36), primary_key=True),
    Column("part", Integer, primary_key=True),
    Column("source", String(40), nullable=False),
    Column("subject_kind", String(8), nullable=False),  # village | cluster
    Column("subject_id", String(64), nullable=False),
    Column("day", Date, nullable=False),
    Column("amount", BigInteger, nullable=False),  # in 1/scale units of the source
    Index("ix_ranking_facts_source_day", "source", "day"),
    Index("ix_ranking_facts_subject", "subject_id", "source", "day"),
)
dirty = Table(
    "ranking_dirty",
    model,
    Column("mark", String(100), primary_key=True),
    Column("source", String(40), nullable=False),
    Column("day", Date),  # the earliest business day changed (None: any day)
)
#: Bumped whenever facts of a closed period change: every replica then forgets the past boards
#: it had cached (each keeps its own cache; the marks are consumed by whichever refreshes first).
epochs = Table(
    "ranking_epochs",
    model,
    Column("name", String(16), primary_key=True),
    Column("value", BigInteger, nullable=False),
)
competitions = Table(
    "ranking_competitions",
    own_model,
    Column("competition_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("district", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("rules", Json, nullable=False),
    Column("status", String(16), nullable=False),  # building | active | retired
    Column("defined_at", DateTime(timezone=True), nullable=False),
    Column("caught_up_to", Json),
)
adjustments = Table(
    "ranking_adjustments",
    own_model,
    Column("competition_id", String(64), primary_key=True),
    Column("adjustment_id", String(64), primary_key=True),
    Column("entity_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("points", String(32), nullable=False),
    Column("effective_on", Date, nullable=False),
)
boards = Table(
    "ranking_boards",
    model,
    Column("competition_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("window", String(16), primary_key=True),
    Column("period", String(16), nullable=False),
    Column("board", Json, nullable=False),  # metadata and the top rows, as streamed
    Column("computed_at", DateTime(timezone=True), nullable=False),
)
board_rows = Table(
    "ranking_board_rows",
    model,
    Column("competition_id", String(64), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("window", String(16), primary_key=True),
    Column("entity_id", String(64), primary_key=True),
    Column("rank", Integer, nullable=False),
    Column("row", Json, nullable=False),
    Index("ix_ranking_board_rows_rank", "competition_id", "version", "window", "rank"),
)
board_changes = Table(
    "ranking_board_changes",
    model,
    Column(
        "position",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("competition_id", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("window", String(16), nullable=False),
    Column("board", Json, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Index("ix_ranking_board_changes_competition", "competition_id", "position"),
)
bulletins = Table(
    "ranking_bulletins",
    own_model,
    Column("bulletin_id", String(200), primary_key=True),
    Column("competition_id", String(64), nullable=False),
    Column("rule_version", Integer, nullable=False),
    Column("window", String(16), nullable=False),
    Column("period", String(16), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("frozen", Boolean, nullable=False),
    Column("summary", Text, nullable=False),
)


# -- facts from other services' events ----------------------------------------------------------

#: Event types this service consumes, per source service.
CONSUMED = {
    "alliance": (
        "TaskVerified",
        "TaskFellBehind",
        "TaskOverdue",
        "ActivityRecorded",
        "TalentRegistered",
    ),
    "land": ("TransferContractSigned", "ContractTerminated"),
    "trusteeship": ("WorkAccepted",),
    "finance": ("LoanDisbursed", "IncomeRecorded"),
    "commerce": ("OrderPaid", "RefundCompleted"),
}
#: Which fact sources each producing service feeds (a rebuild pages only the logs it needs).
FEEDS = {
    "alliance": {"tasks_verified", "tasks_behind", "tasks_overdue", "activities", "talent"},
    "land": {"land_transferred_mu"},
    "trusteeship": {"trusteeship_area_mu"},
    "finance": {"guaranteed_loans_fen", "loans_fen", "collective_income_fen"},
    "commerce": {"gmv_fen"},
}


def _day(value: str) -> date:
    return date.fromisoformat(value[:10])


def _local_day(instant: str) -> date:
    """The Asia/Shanghai business day of an ISO instant."""
    moment = datetime.fromisoformat(instant)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return local_day(moment)


def _scaled(source: str, value: Any) -> int:
    return int(Decimal(str(value)) * SOURCES[source].scale)


def facts_of(event: RecordedEvent) -> list[dict[str, Any]]:
    """The fact rows an event contributes (none if it says nothing we rank)."""
    d, t = event.data, event.type
    rows: list[tuple[str, str, str, date, int]] = []  # source, kind, subject, day, amount

    def unit_or_cluster(source: str, unit: str | None, day: date) -> None:
        if unit:
            rows.append((source, "village", unit, day, 1))
        elif d.get("cluster_id"):
            rows.append((source, "cluster", d["cluster_id"], day, 1))

    if t == "TransferContractSigned":
        area = _scaled("land_transferred_mu", d["area_mu"])
        rows.append(("land_transferred_mu", "village", d["village_id"], _day(d["signed_on"]), area))
    elif t == "ContractTerminated":
        area = -_scaled("land_transferred_mu", d["area_mu"])
        day = _day(d["terminated_on"])
        rows.append(("land_transferred_mu", "village", d["village_id"], day, area))
    elif t == "WorkAccepted":
        area = _scaled("trusteeship_area_mu", d["accepted_area_mu"])
        day = _day(d["accepted_on"])
        rows.append(("trusteeship_area_mu", "village", d["village_id"], day, area))
    elif t == "LoanDisbursed":
        day = _day(d["disbursed_on"])
        rows.append(("guaranteed_loans_fen", "village", d["village_id"], day, d["guaranteed_fen"]))
        rows.append(("loans_fen", "village", d["village_id"], day, d["principal_fen"]))
    elif t == "IncomeRecorded":
        day = _day(d["recorded_on"])
        rows.append(("collective_income_fen", "village", d["village_id"], day, d["amount_fen"]))
    elif t == "OrderPaid":
        day = _local_day(d["paid_at"])
        for line in d["lines"]:
            if line.get("village_id"):
                rows.append(("gmv_fen", "village", line["village_id"], day, line["amount_fen"]))
    elif t == "RefundCompleted":
        day = _local_day(d["refunded_at"])
        for line in d["lines"]:
            if line.get("village_id"):
                rows.append(("gmv_fen", "village", line["village_id"], day, -line["amount_fen"]))
    elif t == "TaskVerified":
        unit_or_cluster("tasks_verified", d.get("unit_id"), _day(d["verified_on"]))
    elif t == "TaskFellBehind":
        unit_or_cluster("tasks_behind", d.get("unit_id"), _day(d["as_of"]))
    elif t == "TaskOverdue":
        unit_or_cluster("tasks_overdue", d.get("unit_id"), _day(d["as_of"]))
    elif t == "ActivityRecorded":
        rows.append(("activities", "village", d["unit_id"], _day(d["occurred_on"]), 1))
    elif t == "TalentRegistered":
        unit_or_cluster("talent", d.get("village_id"), _day(d["registered_on"]))
    return [
        {
            "event_id": str(event.event_id),
            "part": n,
            "source": source,
            "subject_kind": kind,
            "subject_id": subject,
            "day": day,
            "amount": amount,
        }
        for n, (source, kind, subject, day, amount) in enumerate(rows)
    ]


def record_facts(store: EventStore, db: Connection, event: RecordedEvent) -> int:
    """Store an event's facts (once, whoever applies it) and mark their sources dirty."""
    rows = facts_of(event)
    if not rows:
        return 0
    db.execute(store.insert(facts).on_conflict_do_nothing(), rows)
    day = min(r["day"] for r in rows)
    mark_dirty(store, db, {r["source"] for r in rows}, str(event.event_id), day)
    return len(rows)


def mark_dirty(
    store: EventStore, db: Connection, sources: set[str], mark: str, day: date | None = None
) -> None:
    """Note that boards fed by ``sources`` changed from ``day`` on (None: on any day)."""
    db.execute(
        store.insert(dirty).on_conflict_do_nothing(),
        [{"mark": f"{mark}:{source}", "source": source, "day": day} for source in sorted(sources)],
    )


# -- this service's own events ------------------------------------------------------------------


class CompetitionsView(Projection):
    """Competition versions (and their status), adjustments and bulletins."""

    metadata = own_model
    handles = frozenset(
        {
            "CompetitionDefined",
            "CompetitionRulesChanged",
            "CompetitionVersionActivated",
            "AdjustmentRecorded",
            "BulletinIssued",
        }
    )

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        d = event.data
        if event.type in ("CompetitionDefined", "CompetitionRulesChanged"):
            version = d.get("version", 1)
            name = d.get("name")
            if name is None:
                name = db.execute(
                    select(competitions.c.name).where(
                        competitions.c.competition_id == d["competition_id"]
                    )
                ).scalar()
            district = (
                d.get("district")
                or db.execute(
                    select(competitions.c.district).where(
                        competitions.c.competition_id == d["competition_id"]
                    )
                ).scalar()
            )
            db.execute(
                competitions.insert().values(
                    competition_id=d["competition_id"],
                    version=version,
                    district=district,
                    name=name,
                    rules=d["rules"],
                    status="building",
                    defined_at=event.recorded_at,
                )
            )
        elif event.type == "CompetitionVersionActivated":
            key = competitions.c.competition_id == d["competition_id"]
            db.execute(
                update(competitions)
                .where(key, competitions.c.status == "active")
                .values(status="retired")
            )
            db.execute(
                update(competitions)
                .where(key, competitions.c.version == d["version"])
                .values(status="active", caught_up_to=d["caught_up_to"])
            )
        elif event.type == "AdjustmentRecorded":
            db.execute(
                adjustments.insert().values(
                    competition_id=d["competition_id"],
                    adjustment_id=d["adjustment_id"],
                    entity_id=d["entity_id"],
                    kind=d["kind"],
                    points=d["points"],
                    effective_on=date.fromisoformat(d["effective_on"]),
                )
            )
        elif event.type == "BulletinIssued":
            db.execute(
                bulletins.insert().values(
                    bulletin_id=d["bulletin_id"],
                    competition_id=d["competition_id"],
                    rule_version=d["rule_version"],
                    window=d["window"],
                    period=d["period"],
                    issued_at=datetime.fromisoformat(d["issued_at"]),
                    frozen=True,
                    summary=", ".join(f"{r['rank']}. {r['name']}" for r in d["rows"][:3]),
                )
            )


class FactsView(Projection):
    """Facts, dirty marks, boards and their change log: fed by ``@subscribe`` handlers."""

    metadata = model
    source = "alliance,land,trusteeship,finance,commerce"


def forget_boards(db: Connection, competition_id: str, version: int) -> None:
    for table in (board_rows, boards):
        db.execute(
            delete(table).where(
                table.c.competition_id == competition_id, table.c.version == version
            )
        )


COMPETITIONS = CompetitionsView()
FACTS = FactsView()
