"""Running a command: load aggregates, let them decide, append their events in one transaction.

Optimistic concurrency: a conflicting append retries the whole command (a fresh load, a fresh
decision) a bounded number of times, then answers 409. An Idempotency-Key stores the first answer
in the same transaction as the events, so a retried POST gets that answer and appends nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError

from shared import metrics
from shared.aggregate import Aggregate
from shared.errors import AggregateNotFound, ConcurrencyError, Conflict, Unprocessable
from shared.eventstore import (
    EventStore,
    NewEvent,
    RecordedEvent,
    Snapshot,
    StoredResponse,
    Transaction,
)

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")

MAX_ATTEMPTS = 8


@dataclass(frozen=True)
class CommandContext:
    """Who asked and why: copied into every event's metadata."""

    correlation_id: str
    causation_id: str
    actor: str
    district: str | None = None

    def metadata(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "actor": self.actor,
            "district": self.district,
        }


@dataclass(frozen=True)
class Idempotency:
    key: str
    fingerprint: str


def load_aggregate(
    store: EventStore, cls: type[A], stream_id: str, connection: Any = None
) -> A | None:
    """Rebuild an aggregate from its latest snapshot (if it takes them) and the events after it."""
    snapshot = store.load_snapshot(stream_id, connection) if cls.snapshot_every else None
    after = snapshot.version if snapshot else 0
    history = store.load(stream_id, after_version=after, connection=connection)
    if snapshot is None and not history:
        return None
    return cls.rehydrate(stream_id, history, snapshot)


class AlreadyExists(Conflict):
    def __init__(self, stream_type: str, stream_id: str) -> None:
        super().__init__(f"{stream_type} {stream_id!r} already exists")


class UnitOfWork:
    """The aggregates one command touches, saved together."""

    def __init__(self, store: EventStore, tx: Transaction, context: CommandContext) -> None:
        self.store = store
        self.tx = tx
        self.context = context
        self._tracked: dict[str, Aggregate] = {}
        self._shared: set[str] = set()
        #: Streams this command starts with create(): remembered apart from the aggregates,
        #: whose pending events are handed over (and no longer tell "new") at commit.
        self._created: set[str] = set()

    @property
    def connection(self) -> Any:
        return self.tx.connection

    def find(self, cls: type[A], stream_id: str) -> A | None:
        tracked = self._tracked.get(stream_id)
        if tracked is not None:
            if not isinstance(tracked, cls):
                raise TypeError(f"{stream_id!r} is a {type(tracked).__name__}, not {cls.__name__}")
            return tracked
        aggregate = load_aggregate(self.store, cls, stream_id, self.connection)
        if aggregate is not None:
            self._tracked[stream_id] = aggregate
        return aggregate

    def get(self, cls: type[A], stream_id: str) -> A:
        aggregate = self.find(cls, stream_id)
        if aggregate is None:
            raise AggregateNotFound(cls.stream_type, stream_id)
        return aggregate

    def create(self, cls: type[A], stream_id: str) -> A:
        """A new aggregate. Whether the stream already exists is left to the unique
        (stream_id, version): checking first would cost every create a query."""
        if stream_id in self._tracked:
            raise AlreadyExists(cls.stream_type, stream_id)
        aggregate = cls(stream_id)
        self._tracked[stream_id] = aggregate
        self._created.add(stream_id)
        return aggregate

    def find_or_create(self, cls: type[A], stream_id: str) -> A:
        """The aggregate, or a new one if its stream does not exist yet: for a stream that any
        of several commands may start (a ledger, a tally). When two start it at once, the loser
        is retried like any conflict and finds the winner's stream, where :meth:`create`
        answers 409 :class:`AlreadyExists`."""
        found = self.find(cls, stream_id)
        if found is not None:
            return found
        aggregate = self.create(cls, stream_id)
        self._shared.add(stream_id)
        return aggregate

    def changed_streams(self) -> list[str]:
        """The streams this unit of work has new events for."""
        return [a.id for a in self._tracked.values() if a.has_pending]

    def created(self) -> list[Aggregate]:
        """The aggregates this command means to be the first of (not those of find_or_create)."""
        return [self._tracked[i] for i in sorted(self._created - self._shared)]

    def commit(self) -> list[RecordedEvent]:
        metadata = self.context.metadata()
        new_events: list[NewEvent] = []
        snapshots: list[Snapshot] = []
        for aggregate in self._tracked.values():
            pending = aggregate.collect()
            new_events.extend(
                NewEvent(
                    stream_type=aggregate.stream_type,
                    stream_id=aggregate.id,
                    version=p.version,
                    type=p.type,
                    schema_version=p.schema_version,
                    data=p.data,
                    metadata=metadata,
                )
                for p in pending
            )
            every = aggregate.snapshot_every
            # Snapshot when this commit crosses a multiple of snapshot_every.
            if pending and every and aggregate.version // every > (pending[0].version - 1) // every:
                snapshots.append(
                    Snapshot(
                        aggregate.id,
                        aggregate.stream_type,
                        aggregate.version,
                        aggregate.to_snapshot(),
                    )
                )
        recorded = self.store.append(self.tx, new_events)
        for snapshot in snapshots:
            self.store.save_snapshot(self.tx, snapshot)
        return recorded


@dataclass(frozen=True)
class Outcome:
    """What a command answered: a fresh result, or the stored first answer to its key."""

    result: Any = None
    events: tuple[RecordedEvent, ...] = ()
    replayed: StoredResponse | None = None


def decide_within(
    store: EventStore,
    tx: Transaction,
    context: CommandContext,
    decide: Callable[[UnitOfWork], R],
) -> R:
    """Run ``decide`` in a unit of work inside a transaction that is already open (an event
    handler's: ``EventStore.transaction_of(db)``); its events commit or roll back with that
    transaction. The appends use the same optimistic concurrency as commands: if a command
    appended to one of the streams meanwhile, ``ConcurrencyError`` ends the transaction and
    the caller's retry (the consumer's) decides again on a fresh load. So does a stream that a
    younger transaction wrote to (see ``EventStore.require_no_younger_writer``)."""
    uow = UnitOfWork(store, tx, context)
    result = decide(uow)
    store.require_no_younger_writer(tx, uow.changed_streams())
    uow.commit()
    return result


def replay(stored: StoredResponse, idempotency: Idempotency) -> Outcome:
    """The first answer to an Idempotency-Key, if this request is the one that got it."""
    if stored.fingerprint != idempotency.fingerprint:
        raise Unprocessable(
            "Idempotency-Key was already used for a different request",
            errors={"Idempotency-Key": ["reused with a different request"]},
        )
    return Outcome(replayed=stored)


def execute(
    store: EventStore,
    context: CommandContext,
    decide: Callable[[UnitOfWork], R],
    *,
    idempotency: Idempotency | None = None,
    render: Callable[[R], tuple[int, str]] | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> Outcome:
    """Run ``decide`` in a unit of work until it commits without a conflict.

    With ``idempotency``, ``render`` turns the result into the (status, body) stored as the key's
    first answer, inside the same transaction as the events."""
    service = store.service
    for attempt in range(max_attempts):
        uow: UnitOfWork | None = None
        try:
            with store.transaction() as tx:
                if idempotency is not None:
                    stored = store.stored_response(tx, context.actor, idempotency.key)
                    if stored is not None:
                        return replay(stored, idempotency)
                uow = UnitOfWork(store, tx, context)
                result = decide(uow)
                started = time.perf_counter()
                recorded = uow.commit()
                if idempotency is not None and render is not None:
                    status, body = render(result)
                    store.store_response(
                        tx,
                        context.actor,
                        idempotency.key,
                        StoredResponse(idempotency.fingerprint, status, body),
                    )
            metrics.observe_append(service, recorded, time.perf_counter() - started)
            return Outcome(result=result, events=tuple(recorded))
        except ConcurrencyError:
            # A new aggregate whose stream exists is a 409 now, not after every retry. With an
            # Idempotency-Key, first retry: the collision may be this very request, answered.
            if uow is not None and (idempotency is None or attempt > 0):
                for aggregate in uow.created():
                    if store.stream_version(aggregate.id):
                        raise AlreadyExists(aggregate.stream_type, aggregate.id) from None
            metrics.CONCURRENCY_RETRIES.labels(service).inc()
            # Jittered exponential back-off keeps colliding writers from colliding again.
            time.sleep(random.uniform(0, 0.002 * 2**attempt))
        except DBAPIError as exc:
            if not exc.connection_invalidated or attempt == max_attempts - 1:
                raise
            # The pooled connection had died (a database restart): again, on a fresh one.
    raise Conflict(
        f"the command collided with concurrent changes {max_attempts} times; retry it",
    )
