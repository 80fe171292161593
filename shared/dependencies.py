"""nameko DependencyProviders: each hands a worker a small domain-level object."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from nameko.extensions import DependencyProvider

from shared import logs
from shared.aggregate import Aggregate
from shared.auth import Principal
from shared.commands import (
    CommandContext,
    Idempotency,
    Outcome,
    UnitOfWork,
    execute,
    load_aggregate,
    replay,
)
from shared.errors import AggregateNotFound
from shared.eventstore import EventStore
from shared.migrate import upgrade
from shared.relay import Relay, relays_for
from shared.web import FrontDoor

A = TypeVar("A", bound=Aggregate)
R = TypeVar("R")


def database_probe(store: EventStore) -> str | None:
    """Readiness: the service's database answers."""
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return None


class Store(DependencyProvider):
    """The service's event store. A worker gets a :class:`WorkerStore` bound to its request."""

    def __init__(self) -> None:
        self.store: EventStore | None = None
        self.relays: list[Relay] = []
        self._relay_threads: list[Any] = []

    def setup(self) -> None:
        config = self.container.config
        service = self.container.service_name
        url = config["DATABASE_URL"].replace("{service}", service)
        if config.get("AUTO_MIGRATE"):
            upgrade(url)
        self.store = EventStore.from_url(url, service)
        for projection in getattr(self.container.service_cls, "projections", ()):
            projection.create_tables(self.store.engine)
            self.store.projections.append(projection)
        door = FrontDoor.for_config(config)
        door.add_probe(f"{service}.database", partial(database_probe, self.store))

    def start(self) -> None:
        """Run this service's outbox relays (its events, then its feeds), leader-elected, so
        every replica may run them; ``CLUSTERGOV_RELAY=off`` leaves them to ``clustergov relay``."""
        config = self.container.config
        if self.store is None or not config.get("RELAY", True):
            return
        feeds = getattr(self.container.service_cls, "feeds", ())
        self.relays = relays_for(self.store, config["AMQP_URI"], feeds)
        self._relay_threads = [
            self.container.spawn_managed_thread(relay.run, identifier=f"relay {relay.service}")
            for relay in self.relays
        ]

    def stop(self) -> None:
        for relay in self.relays:
            relay.stop()
        for thread in self._relay_threads:
            thread.wait()
        self.relays, self._relay_threads = [], []
        if self.store is not None:
            self.store.dispose()

    def kill(self) -> None:
        for relay in self.relays:
            relay.stop()
        if self.store is not None:
            self.store.dispose()

    def worker_setup(self, worker_ctx: Any) -> None:
        logs.service.set(self.container.service_name)
        logs.correlation_id.set(worker_ctx.data.get("correlation_id"))

    def get_dependency(self, worker_ctx: Any) -> WorkerStore:
        assert self.store is not None
        return WorkerStore(self.store, worker_ctx)


class WorkerStore:
    """What a service method uses: run a command, read an aggregate, know who is asking."""

    def __init__(self, store: EventStore, worker_ctx: Any) -> None:
        self.events = store
        self._ctx = worker_ctx
        claims = worker_ctx.data.get("principal")
        self.principal: Principal | None = Principal(**claims) if claims else None

    def context(self) -> CommandContext:
        data = self._ctx.data
        return CommandContext(
            correlation_id=data.get("correlation_id") or self._ctx.call_id,
            causation_id=data.get("request_id") or self._ctx.call_id,
            actor=self.principal.subject if self.principal else "system",
            district=self.principal.district if self.principal else None,
        )

    def _idempotency(self) -> Idempotency | None:
        data = self._ctx.data
        key = data.get("idempotency_key")
        return Idempotency(key, data["fingerprint"]) if key else None

    def first_answer(self) -> Outcome | None:
        """The stored first answer to this request's Idempotency-Key, if there is one: for a
        command that runs several units of work (a sweep), checked before it starts, so that a
        repeat neither redoes work nor answers differently."""
        idempotency = self._idempotency()
        if idempotency is None:
            return None
        with self.events.transaction() as tx:
            stored = self.events.stored_response(tx, self.context().actor, idempotency.key)
        return None if stored is None else replay(stored, idempotency)

    def run(self, decide: Callable[[UnitOfWork], R]) -> Outcome:
        """Run a command; the endpoint renders (or replays) its answer."""
        idempotency = self._idempotency()
        entrypoint = self._ctx.entrypoint
        return execute(
            self.events,
            self.context(),
            decide,
            idempotency=idempotency,
            render=getattr(entrypoint, "render", None),
        )

    def get(self, cls: type[A], stream_id: str) -> A:
        """The current state of one aggregate, for queries."""
        aggregate = load_aggregate(self.events, cls, stream_id)
        if aggregate is None:
            raise AggregateNotFound(cls.stream_type, stream_id)
        return aggregate
