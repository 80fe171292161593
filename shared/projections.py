"""Read models built from a service's own events.

A projection owns some tables (its own ``MetaData``) and turns events into rows. It is applied
inline, in the transaction that appends the events, so a service's queries are never behind its
commands. ``clustergov replay <service>`` rebuilds every projection from the event store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import ClassVar

from sqlalchemy import MetaData, delete, func, select
from sqlalchemy.engine import Connection, Engine

from shared.eventstore import EventStore, RecordedEvent, events


class Projection:
    #: The read model's tables; created on start, emptied by a rebuild.
    metadata: ClassVar[MetaData]
    #: Event types this projection reads.
    handles: ClassVar[frozenset[str]] = frozenset()
    #: None: built inline from this service's own events. A service name: fed by a
    #: ``@subscribe`` handler from that service's events (and rebuilt by its catch-up).
    source: ClassVar[str | None] = None

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        raise NotImplementedError

    def apply_all(self, recorded: Iterable[RecordedEvent], db: Connection) -> None:
        for event in recorded:
            if event.type in self.handles:
                self.apply(event, db)

    def create_tables(self, engine: Engine) -> None:
        self.metadata.create_all(engine, checkfirst=True)


def rebuild(
    store: EventStore,
    projections: Iterable[Projection],
    progress: Callable[[int, int], None] = lambda done, total: None,
    batch_size: int = 1000,
) -> int:
    """Empty the projections and re-apply every stored event, in one transaction.

    Appends wait meanwhile (SHARE lock on PostgreSQL, the write lock on SQLite): an event committed
    half-way would otherwise be applied inline and then again by the rebuild. Readers keep seeing
    the old read model until the rebuilt one commits."""
    projections = [p for p in projections if p.source is None]
    with store.transaction() as tx:
        db = tx.connection
        if store.is_postgres:
            db.exec_driver_sql("LOCK TABLE events IN SHARE MODE")
        for projection in projections:
            for table in reversed(projection.metadata.sorted_tables):
                db.execute(delete(table))
        total = db.execute(select(func.count()).select_from(events)).scalar_one()
        done = 0
        progress(done, total)
        # Under the lock every appender has finished, so plain position order is complete.
        rows = db.execute(select(events).order_by(events.c.position)).yield_per(batch_size)
        for partition in rows.partitions():
            batch = [store.recorded(row) for row in partition]
            for projection in projections:
                projection.apply_all(batch, db)
            done += len(batch)
            progress(done, total)
    return done
