"""The event store: one ``events`` table per service database, on SQLAlchemy Core.

The same code runs on SQLite (the embedded default, WAL) and PostgreSQL (production).

Global order must be gap-safe: a reader tailing by ``position`` must never skip an event whose
transaction commits after a later-numbered one. The two databases get there differently:

* SQLite has one writer at a time (``BEGIN IMMEDIATE`` plus a process-wide lock), so rowid order
  is commit order.
* PostgreSQL lets writers commit in parallel (that is where its throughput comes from), so
  ``position`` is derived from the writing transaction's id: ``xid * 2**16 + n``. A reader only
  returns rows whose transaction id is below the oldest transaction still running
  (``pg_snapshot_xmin``): every such transaction has finished, so no row can later appear below
  what the reader has already returned. Positions are strictly increasing in that order but not
  contiguous.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from shared.errors import ConcurrencyError

#: Events one transaction may append on PostgreSQL (the low bits of ``position``).
MAX_EVENTS_PER_TRANSACTION = 2**16

metadata = MetaData()
Json = JSON().with_variant(JSONB(), "postgresql")

events = Table(
    "events",
    metadata,
    # INTEGER PRIMARY KEY is SQLite's rowid; on PostgreSQL the insert computes it from the xid.
    # (The DDL lives in the migrations; this table describes the columns for queries.)
    Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("stream_type", String(100), nullable=False),
    Column("stream_id", String(200), nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(100), nullable=False),
    Column("schema_version", SmallInteger, nullable=False),
    Column("data", Json, nullable=False),
    Column("metadata", Json, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("stream_id", "version", name="uq_events_stream_version"),
)

#: PostgreSQL wakes relays in other processes on commit: the migration adds a statement trigger
#: on ``events`` that NOTIFYs this channel (no extra round trip for writers; one per transaction).
NOTIFY_CHANNEL = "clustergov_events"

snapshots = Table(
    "snapshots",
    metadata,
    Column("stream_id", String(200), primary_key=True),
    Column("stream_type", String(100), nullable=False),
    Column("version", Integer, nullable=False),
    Column("state", Json, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("actor", String(200), primary_key=True),
    Column("key", String(200), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status", SmallInteger, nullable=False),
    Column("body", Text, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
)


# -- delivery bookkeeping (migration 0002) ------------------------------------------------------

relay_checkpoints = Table(
    "relay_checkpoints",
    metadata,
    Column("relay", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Events a consumer has applied: written in the same transaction as the consumer's effect.
inbox = Table(
    "inbox",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("source", String(100), nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False),
)

#: How far a consumer's catch-up has read a source's notification log.
consumer_checkpoints = Table(
    "consumer_checkpoints",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("source", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The last version an ordered consumer applied, per stream.
stream_positions = Table(
    "stream_positions",
    metadata,
    Column("consumer", String(200), primary_key=True),
    Column("stream_id", String(200), primary_key=True),
    Column("version", Integer, nullable=False),
)


# Queries built once: constructing a SQLAlchemy statement costs more than running it.
_LOAD = (
    select(events)
    .where(
        events.c.stream_id == bindparam("p_stream_id"),
        events.c.version > bindparam("p_after_version"),
    )
    .order_by(events.c.version)
)
_READ_ALL = (
    select(events)
    .where(events.c.position > bindparam("p_after"))
    .order_by(events.c.position)
    .limit(bindparam("p_limit"))
)
_OLDEST_RUNNING = literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
#: (oldest running transaction, next transaction id to be assigned) on the server.
_HORIZON = select(
    _OLDEST_RUNNING,
    literal_column("pg_snapshot_xmax(pg_current_snapshot())::text::bigint"),
)
_READ_ALL_POSTGRES = (
    select(events)
    .where(
        events.c.position > bindparam("p_after"),
        events.c.position < _OLDEST_RUNNING * MAX_EVENTS_PER_TRANSACTION,
    )
    .order_by(events.c.position)
    .limit(bindparam("p_limit"))
)
_STREAM_VERSION = select(func.coalesce(func.max(events.c.version), 0)).where(
    events.c.stream_id == bindparam("p_stream_id")
)
_SNAPSHOT = select(snapshots).where(snapshots.c.stream_id == bindparam("p_stream_id"))


@dataclass(frozen=True)
class NewEvent:
    """An event decided by a command, not yet stored."""

    stream_type: str
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    schema_version: int = 1
    metadata: dict[str, Any] = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: the envelope every consumer sees."""

    position: int
    event_id: uuid.UUID
    stream_type: str
    stream_id: str
    version: int
    type: str
    schema_version: int
    data: dict[str, Any]
    metadata: dict[str, Any]
    recorded_at: datetime

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> RecordedEvent:
        return cls(
            position=int(envelope["position"]),
            event_id=uuid.UUID(envelope["event_id"]),
            stream_type=envelope["stream_type"],
            stream_id=envelope["stream_id"],
            version=int(envelope["version"]),
            type=envelope["type"],
            schema_version=int(envelope["schema_version"]),
            data=envelope["data"],
            metadata=envelope.get("metadata") or {},
            recorded_at=datetime.fromisoformat(envelope["occurred_at"]),
        )

    def envelope(self) -> dict[str, Any]:
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "schema_version": self.schema_version,
            "stream_id": self.stream_id,
            "stream_type": self.stream_type,
            "version": self.version,
            "position": self.position,
            "occurred_at": self.recorded_at.isoformat(),
            "data": self.data,
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class Snapshot:
    stream_id: str
    stream_type: str
    version: int
    state: dict[str, Any]


@dataclass(frozen=True)
class StoredResponse:
    fingerprint: str
    status: int
    body: str


def fingerprint(*parts: Any) -> str:
    """A stable hash of a request: method, path and canonical JSON body."""
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


#: An upcaster turns the ``data`` of one stored schema_version into the next one.
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


#: Key of the open :class:`Transaction` in its connection's ``info`` (see ``transaction_of``).
OPEN_TRANSACTION = "clustergov.transaction"


class Transaction:
    """One database transaction of the store; events appended in it commit together."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.appended: list[RecordedEvent] = []


def normalise_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here; SQLAlchemy would otherwise pick psycopg2."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, decide when a transaction begins.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Connection) -> None:
            # Writers take the lock up front: a deferred BEGIN that upgrades later can deadlock.
            mode = "IMMEDIATE" if conn.get_execution_options().get("writer") else "DEFERRED"
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    # No pre-ping (a round trip on every checkout): a connection found dead mid-command raises
    # with connection_invalidated, and the command is retried on a fresh one.
    return create_engine(url, pool_size=10, max_overflow=20, pool_recycle=3600)


class EventStore:
    """Append, load and read the events of one service database."""

    def __init__(self, engine: Engine, service: str) -> None:
        self.engine = engine
        self.service = service
        self.is_postgres = engine.dialect.name == "postgresql"
        # SQLite allows one writer; under eventlet a second writer spinning in busy_timeout
        # would block the hub, so writers queue on a (green) lock instead.
        self._write_lock: Any = nullcontext() if self.is_postgres else threading.Lock()
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        self._after_commit: list[Callable[[list[RecordedEvent]], None]] = []
        #: Read models applied inline, in the appending transaction (see shared.projections).
        self.projections: list[Any] = []
        self._insert = self._build_insert()

    @classmethod
    def from_url(cls, url: str, service: str) -> EventStore:
        return cls(make_engine(url), service)

    # -- schema -------------------------------------------------------------------------------

    def dispose(self) -> None:
        self.engine.dispose()

    # -- writing ------------------------------------------------------------------------------

    def on_commit(self, callback: Callable[[list[RecordedEvent]], None]) -> None:
        """Call ``callback(events)`` after each commit that appended events (wakes the relay)."""
        self._after_commit.append(callback)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        with self._write_lock, self.engine.connect() as connection:
            connection = connection.execution_options(writer=True)
            tx = Transaction(connection)
            connection.info[OPEN_TRANSACTION] = tx
            try:
                with connection.begin():
                    yield tx
            finally:
                connection.info.pop(OPEN_TRANSACTION, None)
        if tx.appended:
            for callback in self._after_commit:
                callback(tx.appended)

    @staticmethod
    def transaction_of(connection: Connection) -> Transaction:
        """The store transaction ``connection`` is in (an event handler's ``db``), so that a
        handler can append events that commit, or roll back, with its inbox row."""
        tx = connection.info.get(OPEN_TRANSACTION)
        if tx is None:
            raise RuntimeError("the connection is not in an EventStore.transaction()")
        return tx

    def require_no_younger_writer(self, tx: Transaction, stream_ids: Sequence[str]) -> None:
        """PostgreSQL: raise :class:`ConcurrencyError` if a transaction younger than ``tx``
        already wrote to one of the streams. A transaction that wrote before it loaded them (an
        event handler's, which claims its inbox row first) would otherwise append the next
        versions at positions below those of the younger one: the global order would show the
        stream out of version order. Retried in a fresh transaction, it is the younger one."""
        if not self.is_postgres or not stream_ids:
            return
        own = tx.connection.execute(select(literal_column("pg_current_xact_id()::text::bigint")))
        beyond = (own.scalar_one() + 1) * MAX_EVENTS_PER_TRANSACTION
        younger = tx.connection.execute(
            select(events.c.position)
            .where(events.c.stream_id.in_(list(stream_ids)), events.c.position >= beyond)
            .limit(1)
        ).first()
        if younger is not None:
            raise ConcurrencyError(stream_ids[0])

    def append(self, tx: Transaction, new_events: Sequence[NewEvent]) -> list[RecordedEvent]:
        """Append events; raise :class:`ConcurrencyError` if any (stream_id, version) exists."""
        if not new_events:
            return []
        offset = len(tx.appended)
        if offset + len(new_events) > MAX_EVENTS_PER_TRANSACTION:
            raise ValueError(f"at most {MAX_EVENTS_PER_TRANSACTION} events per transaction")
        now = datetime.now(UTC)
        rows = [
            {
                "n": offset + i,
                "event_id": e.event_id,
                "stream_type": e.stream_type,
                "stream_id": e.stream_id,
                "version": e.version,
                "type": e.type,
                "schema_version": e.schema_version,
                "data": e.data,
                "metadata": e.metadata,
                "recorded_at": now,
            }
            for i, e in enumerate(new_events)
        ]
        # A conflict aborts the whole transaction: the command is retried from the start.
        try:
            positions = tx.connection.execute(self._insert, rows).scalars().all()
        except IntegrityError as exc:
            if "uq_events_stream_version" in str(exc.orig) or "events.stream_id" in str(exc.orig):
                raise ConcurrencyError(new_events[0].stream_id) from exc
            raise
        recorded = [
            RecordedEvent(
                position=position,
                event_id=e.event_id,
                stream_type=e.stream_type,
                stream_id=e.stream_id,
                version=e.version,
                type=e.type,
                schema_version=e.schema_version,
                data=e.data,
                metadata=e.metadata,
                recorded_at=now,
            )
            for position, e in zip(positions, new_events, strict=True)
        ]
        for projection in self.projections:
            if projection.source is None:
                projection.apply_all(recorded, tx.connection)
        tx.appended.extend(recorded)
        return recorded

    def _build_insert(self) -> Any:
        columns = {
            name: bindparam(name)
            for name in (
                "event_id",
                "stream_type",
                "stream_id",
                "version",
                "type",
                "schema_version",
                "data",
                "metadata",
                "recorded_at",
            )
        }
        if self.is_postgres:
            xid = literal_column("pg_current_xact_id()::text::bigint")
            n = bindparam("n", type_=BigInteger)
            columns["position"] = xid * MAX_EVENTS_PER_TRANSACTION + n
        return insert(events).values(**columns).returning(events.c.position)

    # -- reading ------------------------------------------------------------------------------

    def upcaster(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function turning ``data`` of ``from_version`` into ``from_version + 1``."""

        def register(fn: Upcaster) -> Upcaster:
            self._upcasters[(event_type, from_version)] = fn
            return fn

        return register

    def recorded(self, row: Any) -> RecordedEvent:
        """A stored row as the event consumers see: upcast to its current schema_version."""
        data, version = row.data, row.schema_version
        while (row.type, version) in self._upcasters:
            data = self._upcasters[(row.type, version)](data)
            version += 1
        recorded_at = row.recorded_at
        if recorded_at.tzinfo is None:  # SQLite keeps no zone; everything is stored in UTC
            recorded_at = recorded_at.replace(tzinfo=UTC)
        return RecordedEvent(
            position=row.position,
            event_id=row.event_id,
            stream_type=row.stream_type,
            stream_id=row.stream_id,
            version=row.version,
            type=row.type,
            schema_version=version,
            data=data,
            metadata=row.metadata,
            recorded_at=recorded_at,
        )

    @contextmanager
    def _reader(self, connection: Connection | None) -> Iterator[Connection]:
        if connection is not None:
            yield connection
        else:
            with self.engine.connect() as conn:
                yield conn

    def load(
        self, stream_id: str, after_version: int = 0, connection: Connection | None = None
    ) -> list[RecordedEvent]:
        """The stream's events with version > ``after_version``, in version order."""
        params = {"p_stream_id": stream_id, "p_after_version": after_version}
        with self._reader(connection) as conn:
            return [self.recorded(row) for row in conn.execute(_LOAD, params)]

    def read_all(
        self,
        after: int = 0,
        limit: int = 1000,
        connection: Connection | None = None,
        *,
        settle: float = 0.0,
    ) -> list[RecordedEvent]:
        """Events with position > ``after`` in global order, never skipping a late commit.

        With ``settle`` (seconds, PostgreSQL), first wait up to that long for the transactions
        running now to end, so that what committed before this call is readable (a reader sees
        only below the oldest running transaction): a client reads its own writes."""
        if settle and self.is_postgres:
            self._await_horizon(settle)
        query = _READ_ALL_POSTGRES if self.is_postgres else _READ_ALL
        with self._reader(connection) as conn:
            rows = conn.execute(query, {"p_after": after, "p_limit": limit})
            return [self.recorded(row) for row in rows]

    def _await_horizon(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self.engine.connect() as conn:
            oldest, newest = conn.execute(_HORIZON).one()
            while oldest < newest and time.monotonic() < deadline:
                time.sleep(0.002)
                oldest = conn.execute(_HORIZON).one()[0]
                conn.commit()  # each check in a fresh snapshot

    def last_position(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(events.c.position), 0))).scalar_one()

    def stream_version(self, stream_id: str, connection: Connection | None = None) -> int:
        with self._reader(connection) as conn:
            return conn.execute(_STREAM_VERSION, {"p_stream_id": stream_id}).scalar_one()

    # -- snapshots ----------------------------------------------------------------------------

    def load_snapshot(
        self, stream_id: str, connection: Connection | None = None
    ) -> Snapshot | None:
        with self._reader(connection) as conn:
            row = conn.execute(_SNAPSHOT, {"p_stream_id": stream_id}).first()
        if row is None:
            return None
        return Snapshot(row.stream_id, row.stream_type, row.version, row.state)

    def save_snapshot(self, tx: Transaction, snapshot: Snapshot) -> None:
        newer = self.upsert(snapshots, where=lambda new: new.version > snapshots.c.version)
        tx.connection.execute(
            newer,
            {
                "stream_id": snapshot.stream_id,
                "stream_type": snapshot.stream_type,
                "version": snapshot.version,
                "state": snapshot.state,
                "recorded_at": datetime.now(UTC),
            },
        )

    # -- bookkeeping statements ---------------------------------------------------------------

    def insert(self, table: Table) -> Any:
        """INSERT in this database's dialect, which is what offers ON CONFLICT."""
        return (pg_insert if self.is_postgres else sqlite_insert)(table)

    def upsert(self, table: Table, where: Callable[[Any], Any] | None = None) -> Any:
        """INSERT, or on a primary-key conflict UPDATE every other column (values given at
        execute time). ``where(excluded)`` limits which conflicting rows are updated."""
        statement = self.insert(table)
        return statement.on_conflict_do_update(
            index_elements=list(table.primary_key.columns),
            set_={c.name: statement.excluded[c.name] for c in table.columns if not c.primary_key},
            where=where(statement.excluded) if where else None,
        )

    # -- idempotency --------------------------------------------------------------------------

    def stored_response(self, tx: Transaction, actor: str, key: str) -> StoredResponse | None:
        row = tx.connection.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.actor == actor, idempotency_keys.c.key == key
            )
        ).first()
        return None if row is None else StoredResponse(row.fingerprint, row.status, row.body)

    def store_response(
        self, tx: Transaction, actor: str, key: str, response: StoredResponse
    ) -> None:
        """Record the first answer to an Idempotency-Key in the command's own transaction.

        A concurrent request with the same key loses on the primary key and is retried, when
        it finds this answer."""
        try:
            tx.connection.execute(
                insert(idempotency_keys).values(
                    actor=actor,
                    key=key,
                    fingerprint=response.fingerprint,
                    status=response.status,
                    body=response.body,
                    recorded_at=datetime.now(UTC),
                )
            )
        except IntegrityError as exc:
            raise ConcurrencyError(f"idempotency key {key!r}") from exc
