"""Event handlers with exactly-once effects: ``@subscribe`` replaces nameko's ``@event_handler``.

    @subscribe("land", ["TransferContractSigned"])
    def on_contract_signed(self, event: RecordedEvent, db: Connection) -> None:
        db.execute(...)   # the projection change

What it adds to nameko:

* **Inbox.** The event id is inserted into ``inbox`` in the same transaction as the handler's
  effect (``db``); a redelivered event finds its id and changes nothing.
* **Batches.** Messages that arrive together are applied in one transaction (up to
  ``CONSUMER_BATCH``); if anything in a batch fails, its messages are applied one at a time, so
  retries and dead letters stay per event.
* **Retries, then dead letters.** A handler that raises is retried with exponential back-off
  (the message waits in ``<queue>.retry`` with a per-message TTL); after ``max_attempts`` it is
  parked in ``<service>.dead-letter`` with the error. Never dropped, never a hot loop.
* **Order per stream** (``ordered=True``): version n+1 is applied only after n. On a gap the
  missing versions are fetched from the source's notification log and applied first.
* **Catch-up.** On start, and then periodically, the handler reads the source's notification log
  past its checkpoint: a new subscriber, or one whose messages were lost with an embedded broker,
  converges on the source's store.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import eventlet
from amqp.exceptions import ConnectionError as AmqpConnectionError
from eventlet.event import Event as GreenEvent
from eventlet.queue import LightQueue
from eventlet.semaphore import Semaphore
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer, QueueConsumer
from sqlalchemy import bindparam, select
from sqlalchemy.engine import Connection

from shared import amqp, metrics
from shared.eventstore import (
    EventStore,
    RecordedEvent,
    consumer_checkpoints,
    inbox,
    stream_positions,
)
from shared.notification_log import NotificationLogClient

log = logging.getLogger(__name__)

ATTEMPTS_HEADER = "x-clustergov-attempts"
#: Times a message of an ordered handler waited for an earlier version that kept failing.
HOLDS_HEADER = "x-clustergov-holds"
#: A successor waits this many times longer than its own attempts allow before it is parked
#: too: a transient failure of its predecessor must not park it, a poisoned one eventually does.
HOLDS_PER_ATTEMPT = 3
BATCH_WAIT_SECONDS = 0.005
STOP = object()  # tells a handler's batcher to end
#: Longest wait on the broker before the consumer thread looks for handlers to cancel.
CANCEL_CHECK_SECONDS = 0.1
BACKOFF_BASE_MS = 200
BACKOFF_MAX_MS = 60_000


class Blocked(Exception):
    """An earlier version of the stream cannot be applied yet, so this one waits."""


class OutOfOrder(Exception):
    """The stream's previous version has not been applied yet."""

    def __init__(self, stream_id: str, last: int, version: int) -> None:
        super().__init__(f"{stream_id}: have version {last}, got {version}")
        self.stream_id, self.last, self.version = stream_id, last, version


def backoff_ms(attempt: int) -> int:
    return min(BACKOFF_BASE_MS * 2 ** (attempt - 1), BACKOFF_MAX_MS)


class BatchingQueueConsumer(QueueConsumer):
    """nameko's queue consumer with a prefetch sized for batches, not for the worker pool."""

    @property
    def prefetch_count(self) -> int:
        return int(self.container.config.get("CONSUMER_PREFETCH", 256))

    def consume(self, *args: Any, **kwargs: Any) -> Any:
        # A stopping handler is cancelled between two waits on the broker: kombu's default wait
        # of a second made every stop take one to two seconds.
        kwargs.setdefault("safety_interval", CANCEL_CHECK_SECONDS)
        return super().consume(*args, **kwargs)


class EventSubscriber(Consumer):
    """The nameko entrypoint behind ``@subscribe``."""

    queue_consumer = BatchingQueueConsumer()

    def __init__(
        self,
        source: str,
        types: Sequence[str],
        *,
        ordered: bool = False,
        max_attempts: int = 5,
        **kwargs: Any,
    ) -> None:
        self.source = source
        self.types = frozenset(types)
        self.ordered = ordered
        self.max_attempts = max_attempts
        super().__init__(queue=None, **kwargs)

    # -- lifecycle ----------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The consumer's identity in the inbox and on the broker: ``<service>.<method>``."""
        return f"{self.container.service_name}.{self.method_name}"

    def setup(self) -> None:
        config = self.container.config
        service = self.container.service_name
        self.amqp_uri = config["AMQP_URI"]
        self.queue = amqp.handler_queue(
            service, self.method_name, self.source, sorted(self.types), ordered=self.ordered
        )
        self.retry_queue = amqp.retry_queue(self.queue.name)
        self.dead_letters = amqp.dead_letter_queue(service)
        with amqp.connect(self.amqp_uri) as connection:
            channel = connection.channel()
            for queue in (self.queue, self.retry_queue, self.dead_letters):
                queue(channel).declare()
        self.log_client = NotificationLogClient(
            config.get("SERVICE_URL") or f"http://{config['WEB_SERVER_ADDRESS']}",
            config["SECRET"],
        )
        self.catch_up_interval = float(config.get("CATCH_UP_INTERVAL", 30))
        self.max_batch = int(config.get("CONSUMER_BATCH", 100))
        self._locks: dict[str, _RefCountedLock] = {}
        self._built: tuple[Any, Any, Any] | None = None
        self._stopping = GreenEvent()
        self._arrived: LightQueue = LightQueue()
        super().setup()

    def start(self) -> None:
        self.container.spawn_managed_thread(self._apply_batches, identifier=f"batches {self.name}")
        if self.catch_up_interval > 0:  # 0: catch-up switched off (the delivery tests do)
            self.container.spawn_managed_thread(
                self._catch_up_forever, identifier=f"catch-up {self.name}"
            )

    def stop(self) -> None:
        """No new messages once unregistered; the batcher finishes what it holds, then ends."""
        super().stop()
        self._arrived.put(STOP)
        self._stopping.send(True)

    def event_store(self) -> EventStore:
        from shared.dependencies import Store

        for dependency in self.container.dependencies:
            if isinstance(dependency, Store) and dependency.store is not None:
                return dependency.store
        raise RuntimeError(f"{self.container.service_name} has no Store dependency")

    # -- delivery -----------------------------------------------------------------------------

    def handle_message(self, body: Any, message: Any) -> None:
        """Runs in a green thread per message (nameko's QueueConsumer spawns it): hand the
        message to this handler's batcher."""
        self._arrived.put((body, message))

    def _apply_batches(self) -> None:
        """Apply what has arrived in one transaction; on any failure, one message at a time.

        Under load a transaction carries up to ``CONSUMER_BATCH`` events (their inbox rows, order
        checks and effects), which is what lets one consumer keep up with a busy source."""
        while (first := self._arrived.get()) is not STOP:
            batch = [first]
            if self._arrived.empty():
                # A moment for the rest of a burst: a transaction (and its commit) per handful
                # of events rather than per event, for at most this much latency.
                eventlet.sleep(BATCH_WAIT_SECONDS)
            while len(batch) < self.max_batch and not self._arrived.empty():
                if (item := self._arrived.get_nowait()) is STOP:
                    self._arrived.put(STOP)  # finish this batch, then stop
                    break
                batch.append(item)
            started = time.perf_counter()
            try:
                events = [RecordedEvent.from_envelope(body) for body, _ in batch]
                applied = self._apply_together(events)
            except Exception as exc:  # isolate the failure: retries and dead letters per event
                log.debug("%s: batch of %d failed (%s); one by one", self.name, len(batch), exc)
                if not isinstance(exc, OutOfOrder):  # a handler attempt raised
                    metrics.FAILED.labels(self.container.service_name, self.method_name).inc()
                for body, message in batch:
                    self._handle_one(body, message)
            else:
                for _, message in batch:
                    self._settle(message)
                self._count(applied, len(batch) - applied)
            self._observe_latency(started, len(batch))

    def _apply_together(self, events: list[RecordedEvent]) -> int:
        """Apply a batch in one transaction: one inbox claim for all of it, one read and one
        write of the stream positions, then the handler for each claimed event in order."""
        store = self.event_store()
        claim, _, _ = self._statements(store)
        now = datetime.now(UTC)
        rows = [
            {
                "consumer": self.name,
                "event_id": e.event_id,
                "source": self.source,
                "position": e.position,
                "processed_at": now,
            }
            for e in events
        ]
        with store.transaction() as tx:
            db = tx.connection
            claimed = set(db.execute(claim, rows).scalars())
            fresh: list[RecordedEvent] = []
            for event in events:  # the same event twice in one batch is applied once
                if event.event_id in claimed:
                    claimed.discard(event.event_id)
                    fresh.append(event)
            if self.ordered:
                self._advance_streams(store, db, fresh)
            for event in fresh:
                if event.type in self.types:
                    self._run_worker(event, db)
        return len(fresh)

    def _statements(self, store: EventStore) -> tuple[Any, Any, Any]:
        """Built once: constructing and compiling a statement costs more than running it."""
        if self._built is None:
            claim = store.insert(inbox).on_conflict_do_nothing().returning(inbox.c.event_id)
            advance = store.upsert(stream_positions)
            positions = select(stream_positions.c.stream_id, stream_positions.c.version).where(
                stream_positions.c.consumer == bindparam("p_consumer"),
                stream_positions.c.stream_id.in_(bindparam("p_streams", expanding=True)),
            )
            self._built = (claim, advance, positions)
        return self._built

    def _advance_streams(
        self, store: EventStore, db: Connection, fresh: list[RecordedEvent]
    ) -> None:
        """Check that each stream's versions continue where it stood; record where they end."""
        streams = sorted({e.stream_id for e in fresh})
        if not streams:
            return
        _, advance, positions = self._statements(store)
        position = dict(
            db.execute(positions, {"p_consumer": self.name, "p_streams": streams}).all()
        )
        for event in fresh:
            last = position.get(event.stream_id, 0)
            if event.version != last + 1:
                raise OutOfOrder(event.stream_id, last, event.version)
            position[event.stream_id] = event.version
        db.execute(
            advance,
            [{"consumer": self.name, "stream_id": s, "version": position[s]} for s in streams],
        )

    def _handle_one(self, body: Any, message: Any) -> None:
        started = time.perf_counter()
        try:
            self.deliver(RecordedEvent.from_envelope(body))
        except ContainerBeingKilled:
            self._settle(message, requeue=True)
            return
        except Exception as exc:
            metrics.FAILED.labels(self.container.service_name, self.method_name).inc()
            self._retry_or_park(body, message, exc)
            return
        finally:
            self._observe_latency(started, 1)
        self._settle(message)

    def _settle(self, message: Any, *, requeue: bool = False) -> None:
        """Ack (or requeue) a message. If the broker connection broke meanwhile, the broker
        redelivers the message after the reconnect, and the inbox makes that harmless; the
        error must not end this handler's thread (nameko would kill the whole container)."""
        try:
            if requeue:
                self.queue_consumer.requeue_message(message)
            else:
                self.queue_consumer.ack_message(message)
        except (OSError, AmqpConnectionError) as exc:
            log.info(
                "%s: could not settle a message (%s); the broker will redeliver it", self.name, exc
            )

    def _count(self, applied: int, skipped: int) -> None:
        service = self.container.service_name
        if applied:
            metrics.CONSUMED.labels(service, self.method_name).inc(applied)
        if skipped:
            metrics.SKIPPED.labels(service, self.method_name).inc(skipped)

    def _observe_latency(self, started: float, events: int) -> None:
        elapsed = time.perf_counter() - started
        histogram = metrics.HANDLER_LATENCY.labels(self.container.service_name, self.method_name)
        for _ in range(events):
            histogram.observe(elapsed)

    def deliver(self, event: RecordedEvent) -> bool:
        """Apply an event once; for an ordered handler, after every earlier version."""
        if not self.ordered:
            return self._apply_once(event)
        # Messages of one stream take this lock in arrival order, so in the usual case each
        # version finds its predecessor committed.
        with self._stream_lock(event.stream_id):
            try:
                return self._apply_once(event)
            except OutOfOrder as gap:
                self._fill_gap(event, gap.last)
                return self._apply_once(event)

    def _fill_gap(self, event: RecordedEvent, last: int) -> None:
        """Apply the versions between ``last`` and ``event`` from the source's log."""
        history = self.log_client.stream(self.source, event.stream_id, last)
        for earlier in (e for e in history if e.version < event.version):
            try:
                self._apply_once(earlier)
            except Exception as exc:
                raise Blocked(
                    f"{event.stream_id} version {event.version} waits for version "
                    f"{earlier.version}, which failed: {exc}"
                ) from exc

    def _stream_lock(self, stream_id: str) -> Any:
        lock = self._locks.get(stream_id)
        if lock is None:
            lock = self._locks[stream_id] = _RefCountedLock(self._locks, stream_id)
        return lock

    def _apply_once(self, event: RecordedEvent) -> bool:
        applied = self._apply_together([event]) == 1
        self._count(int(applied), int(not applied))
        return applied

    def _run_worker(self, event: RecordedEvent, db: Connection) -> None:
        """Call the service method in a nameko worker (bounded by max_workers) and wait."""
        done = GreenEvent()

        def handle_result(_ctx: Any, result: Any, exc_info: Any) -> Any:
            done.send(result, exc_info)
            return result, exc_info

        context = {
            "correlation_id": event.metadata.get("correlation_id"),
            "request_id": str(event.event_id),
        }
        self.container.spawn_worker(
            self, (event, db), {}, context_data=context, handle_result=handle_result
        )
        done.wait()

    # -- failure ------------------------------------------------------------------------------

    def _retry_or_park(self, body: Any, message: Any, exc: Exception) -> None:
        service = self.container.service_name
        headers = dict(message.headers or {})
        if isinstance(exc, Blocked):
            counter, limit = HOLDS_HEADER, self.max_attempts * HOLDS_PER_ATTEMPT
        else:
            counter, limit = ATTEMPTS_HEADER, self.max_attempts
        attempt = int(headers.get(counter, 0)) + 1
        headers[counter] = attempt
        payload = message.body if isinstance(message.body, bytes) else str(message.body).encode()
        try:
            with amqp.connect(self.amqp_uri, confirm_each=True) as connection:
                if attempt < limit:
                    delay = backoff_ms(attempt)
                    log.warning(
                        "%s failed on attempt %d (%s); retrying in %d ms",
                        self.name,
                        attempt,
                        exc,
                        delay,
                    )
                    if amqp.is_embedded(self.amqp_uri):
                        # No TTL or dead-lettering in memory: a timer puts it back.
                        eventlet.spawn_after(delay / 1000, self._requeue_local, payload, headers)
                    else:
                        amqp.publish_raw(
                            connection,
                            payload,
                            routing_key=self.retry_queue.name,
                            headers=headers,
                            expiration_ms=delay,
                        )
                else:
                    log.error(
                        "%s failed %d times; parking the event in %s",
                        self.name,
                        attempt,
                        self.dead_letters.name,
                        exc_info=exc,
                    )
                    headers.update(
                        {
                            "x-clustergov-queue": self.queue.name,
                            "x-clustergov-error": _describe(exc),
                            "x-clustergov-failed-at": datetime.now(UTC).isoformat(),
                        }
                    )
                    amqp.publish_raw(
                        connection, payload, routing_key=self.dead_letters.name, headers=headers
                    )
                    metrics.DEAD_LETTERED.labels(service, self.method_name).inc()
        except Exception:
            # Could not park it anywhere: leave it on its queue, after a pause (no hot loop).
            log.exception("%s could not schedule a retry; requeueing", self.name)
            eventlet.sleep(1)
            self._settle(message, requeue=True)
            return
        self._settle(message)

    def _requeue_local(self, payload: bytes, headers: dict[str, Any]) -> None:
        with amqp.connect(self.amqp_uri) as connection:
            amqp.publish_raw(connection, payload, routing_key=self.queue.name, headers=headers)

    # -- catch-up -----------------------------------------------------------------------------

    def _catch_up_forever(self) -> None:
        while not self._stopping.ready():
            try:
                self.catch_up()
            except Exception as exc:
                log.warning("%s could not catch up from %s: %s", self.name, self.source, exc)
            self._stopping.wait(self.catch_up_interval)

    def catch_up(self, page_size: int = 500) -> int:
        """Apply every event of the source's log past this consumer's checkpoint."""
        store = self.event_store()
        with store.engine.connect() as db:
            after = (
                db.execute(
                    select(consumer_checkpoints.c.position).where(
                        consumer_checkpoints.c.consumer == self.name,
                        consumer_checkpoints.c.source == self.source,
                    )
                ).scalar()
                or 0
            )
        applied = 0
        while True:
            page = self.log_client.page(self.source, after, page_size)
            for event in page:
                if event.type in self.types and self.deliver(event):
                    applied += 1
            if not page:
                return applied
            after = page[-1].position
            with store.transaction() as tx:
                tx.connection.execute(
                    store.upsert(consumer_checkpoints),
                    {
                        "consumer": self.name,
                        "source": self.source,
                        "position": after,
                        "updated_at": datetime.now(UTC),
                    },
                )


class _RefCountedLock:
    """A per-stream green lock that forgets itself when nobody holds or waits for it."""

    def __init__(self, registry: dict[str, _RefCountedLock], key: str) -> None:
        self._registry, self._key = registry, key
        self._semaphore = Semaphore(1)
        self._users = 0

    def __enter__(self) -> None:
        self._users += 1
        self._semaphore.acquire()

    def __exit__(self, *exc: object) -> None:
        self._semaphore.release()
        self._users -= 1
        if self._users == 0:
            self._registry.pop(self._key, None)


def _describe(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()[:1000]


def subscribe(
    source: str, types: Sequence[str], *, ordered: bool = False, max_attempts: int = 5
) -> Any:
    """Declare a handler of ``types`` events from ``source``: ``def handler(self, event, db)``."""
    return EventSubscriber.decorator(
        source, list(types), ordered=ordered, max_attempts=max_attempts
    )
