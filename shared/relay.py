"""The outbox relay: the events table is the outbox.

One active relay per service. On PostgreSQL the relays of all replicas race for a session
advisory lock, held on a dedicated connection that also reads and writes the checkpoint, so a
relay that lost its connection (and with it the lock) cannot advance the checkpoint either.
On SQLite the embedded process is the only one.

The loop: read events past the checkpoint in global (gap-safe) order, publish the batch
(persistent, mandatory, confirmed), and only then advance the checkpoint. A crash between the two
republishes the batch: consumers drop the duplicates by event id. It wakes on commits in this
process, on PostgreSQL NOTIFY from other processes, and otherwise polls.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import eventlet
from kombu import Exchange
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection

from shared import metrics
from shared.amqp import Encoder, EventPublisher, Router, by_type, encode
from shared.eventstore import NOTIFY_CHANNEL, EventStore, events, relay_checkpoints

log = logging.getLogger(__name__)

#: The lag gauge counts the unpublished backlog: at most this often, or draining a large backlog
#: would count it again for every batch.
LAG_CHECK_INTERVAL = 1.0
#: After a wake, wait this long for more commits: one read, publish and checkpoint for a handful
#: of events instead of for each (the checkpoint is a commit), for at most this much latency.
WAKE_COALESCE_SECONDS = 0.010

#: Advisory-lock key space for relay leadership (one key per service name).
LOCK_NAMESPACE = 0x636C7573  # "clus"


@dataclass(frozen=True)
class Feed:
    """Another destination for a service's events besides ``<service>.events`` (a feed for
    outside consumers): its own relay, checkpoint and leadership. Services declare theirs as
    ``feeds = [...]`` on the class."""

    name: str
    exchange: Exchange
    route: Router
    encoder: Encoder


def relays_for(store: EventStore, amqp_uri: str, feeds: Iterable[Feed] = ()) -> list[Relay]:
    """The relays of one service: its events exchange, then each of its feeds."""
    return [
        Relay(store, amqp_uri),
        *(
            Relay(
                store,
                amqp_uri,
                name=feed.name,
                exchange=feed.exchange,
                route=feed.route,
                encoder=feed.encoder,
            )
            for feed in feeds
        ),
    ]


def failpoint(name: str) -> None:
    """Die here if ``CLUSTERGOV_FAILPOINTS`` names this point: how the fault tests crash a
    process exactly between two steps. Unset in any real deployment."""
    if name in os.environ.get("CLUSTERGOV_FAILPOINTS", "").split(","):
        log.warning("failpoint %s: exiting", name)
        os._exit(86)


class Relay:
    """Relays a service's events to ``<service>.events``. With ``name``, ``exchange``, ``route``
    and ``encoder`` it relays the same events table elsewhere (a feed for outside consumers):
    ``name`` is its own checkpoint, leadership lock and metrics label."""

    def __init__(
        self,
        store: EventStore,
        amqp_uri: str,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        name: str | None = None,
        exchange: Exchange | None = None,
        route: Router = by_type,
        encoder: Encoder = encode,
    ) -> None:
        self.store = store
        self.service = name or store.service
        self.publisher = EventPublisher(
            amqp_uri, self.service, exchange=exchange, route=route, encoder=encoder
        )
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wake = threading.Event()
        self._stopping = False
        self._listener: Any = None
        self._next_lag_check = 0.0
        self._checkpoint_upsert = store.upsert(relay_checkpoints)
        store.on_commit(lambda _events: self._wake.set())

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> None:
        """Until stopped: become leader, relay, and recover from database or broker failures."""
        backoff = 0.2
        while not self._stopping:
            try:
                with self.store.engine.connect() as conn:
                    if not self._acquire(conn):
                        self._wake.wait(self.poll_interval * 2)
                        self._wake.clear()
                        continue
                    log.info("relay for %s is the leader", self.service)
                    try:
                        self._start_listener()
                        self._relay(conn)
                    finally:
                        self._release(conn)
                    backoff = 0.2
            except Exception as exc:
                log.warning(
                    "relay for %s failed (%s); retrying in %.1fs", self.service, exc, backoff
                )
                self.publisher.close()
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._stop_listener()
        self.publisher.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    # -- leadership ---------------------------------------------------------------------------

    def _lock_key(self) -> int:
        return (LOCK_NAMESPACE << 32) | zlib.crc32(self.service.encode())

    def _acquire(self, conn: Connection) -> bool:
        if not self.store.is_postgres:
            return True
        got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._lock_key()})
        conn.commit()
        return bool(got.scalar_one())

    def _release(self, conn: Connection) -> None:
        """Give up leadership. The connection goes back to the pool, and a session lock would
        go with it: unlock explicitly, or drop the connection if it cannot."""
        if not self.store.is_postgres:
            return
        try:
            conn.rollback()
            conn.execute(text("SELECT pg_advisory_unlock_all()"))
            conn.commit()
        except Exception:
            conn.invalidate()

    def _start_listener(self) -> None:
        if not self.store.is_postgres:
            return
        self._listener = eventlet.spawn(self._listen)

    def _stop_listener(self) -> None:
        if self._listener is not None:
            self._listener.kill()
            self._listener = None

    def _listen(self) -> None:
        """Wake the relay on NOTIFY from writers in other processes."""
        import psycopg

        url = self.store.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not self._stopping:
            try:
                with psycopg.connect(dsn, autocommit=True) as listener:
                    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    for _ in listener.notifies(timeout=None):
                        self._wake.set()
            except Exception as exc:
                log.debug("relay listener reconnecting: %s", exc)
                time.sleep(1)

    # -- relaying -----------------------------------------------------------------------------

    def _relay(self, conn: Connection) -> None:
        checkpoint = self._checkpoint(conn)
        while not self._stopping:
            self._wake.clear()
            batch = self.store.read_all(after=checkpoint, limit=self.batch_size)
            if batch:
                started = time.perf_counter()
                self.publisher.publish(batch)
                failpoint("relay_after_publish")
                checkpoint = batch[-1].position
                self._save_checkpoint(conn, checkpoint)
                metrics.RELAY_PUBLISHED.labels(self.service).inc(len(batch))
                metrics.RELAY_BATCH_SECONDS.labels(self.service).observe(
                    time.perf_counter() - started
                )
            if time.monotonic() >= self._next_lag_check:
                self._observe_lag(conn, checkpoint)
                self._next_lag_check = time.monotonic() + LAG_CHECK_INTERVAL
            if len(batch) < self.batch_size and self._wake.wait(self.poll_interval):
                # Let the commits of the next few milliseconds join this wake's batch.
                time.sleep(WAKE_COALESCE_SECONDS)

    def _checkpoint(self, conn: Connection) -> int:
        row = conn.execute(
            select(relay_checkpoints.c.position).where(relay_checkpoints.c.relay == self.service)
        ).first()
        conn.commit()
        return row[0] if row else 0

    def _save_checkpoint(self, conn: Connection, position: int) -> None:
        values = {"relay": self.service, "position": position, "updated_at": datetime.now(UTC)}
        if self.store.is_postgres:
            conn.execute(self._checkpoint_upsert, values)
            conn.commit()
        else:
            with self.store.transaction() as tx:
                tx.connection.execute(self._checkpoint_upsert, values)

    def _observe_lag(self, conn: Connection, checkpoint: int) -> None:
        row = conn.execute(
            select(func.count(), func.min(events.c.recorded_at)).where(
                events.c.position > checkpoint
            )
        ).one()
        conn.commit()
        behind, oldest = row
        seconds = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            seconds = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        metrics.RELAY_LAG_EVENTS.labels(self.service).set(behind)
        metrics.RELAY_LAG_SECONDS.labels(self.service).set(seconds)
