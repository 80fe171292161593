"""The delivery pipeline on RabbitMQ and PostgreSQL: outbox relay, broker, inbox consumer.

What is measured
    1. Throughput from commit to consumer projection. ``--events`` events, spread round-robin
       over ``--streams`` ledgers (one ``LedgerOpened``, then ``AmountDeposited``), are appended
       straight into the producer's PostgreSQL event store while no relay runs (``EventStore.
       append``, ``--append-batch`` events per transaction). Then the consumer process starts,
       then the producer process (``tests.sample:SampleService``, relay on). The clock starts when
       the relay takes its leadership lock (seen in ``pg_locks``) and stops at the consumer's
       timestamp for the last event it applied. The relay's own time ends when it checkpoints
       the last event (``relay_checkpoints.updated_at``; ``clustergov_relay_published_total``
       must then read exactly ``--events``). One run per consumer:

       * ``ordered``: ``tests.sample_view:LedgerViewService`` (ledgerview, ``ordered=True``: per
         stream lock and version check; updates a balance row per event);
       * ``unordered``: ``bench.pipeline_consumer:PipelineViewService`` (pipelineview: inserts a
         row per event recording when it arrived).

       ``relay`` measures the relay alone, ``--repeat`` times (the median is shown): a fresh
       producer process publishes the same backlog from the start into a queue nobody consumes,
       the situation of the raw publishing baseline.

    2. The baseline, in a separate process without eventlet: raw kombu publishing of
       ``--events`` messages whose body is the stored JSON envelope of one of those events
       (persistent, mandatory) to a durable topic exchange bound to a durable queue: (a)
       unconfirmed, timed until the queue holds them all; (b) confirmed per message (kombu
       ``confirm_publish=True``; ``--confirmed-events`` of them); (c) confirmed per batch of 500
       on bare py-amqp, the relay's scheme; then raw kombu consuming the (a) messages (prefetch
       10 as a nameko consumer with 10 workers has, JSON decoded, each acked). ``--repeat``
       runs; the median is shown.

    3. Latency from commit to projection at fixed offered rates: after the backlog, with relay
       and consumer still running, each of ``--rates`` events/s is offered for ``--duration``
       seconds: one event per transaction, scheduled by a pacer (``--writers`` green threads; a
       late event goes at once). An event's commit time is the wall clock right after its
       commit returned; its arrival is the consumer's timestamp for it, taken in the
       transaction that applies it (pipelineview: ``arrivals.arrived_at``; ledgerview: its inbox
       row's ``processed_at``). All processes share this machine's clock.

    Every figure comes with the CPU the measured process spent per event (from /proc) and how
    busy the whole machine was meanwhile: on a small machine the pipeline's processes, the
    database and the broker compete for the same cores.

    After each run every event must have been applied exactly once: inbox and projection rows
    equal the events appended, the projection matches the store, the relay published each event
    once, nothing was skipped, failed or dead-lettered. A failed check exits with status 1.

    Producer and consumers are ``python -m shared.cli up`` processes with catch-up off, on a
    RabbitMQ virtual host of their own (created with ``rabbitmqctl`` if missing) so they never
    meet the delivery tests' queues. Databases ``<--prefix>_<service>`` are dropped and recreated
    for each run; the benchmark's queues are deleted before each run and at the end. Child logs
    go to a temporary folder, printed at the end.

Run
    python -m bench.pipeline                      # everything, about 3 minutes on 2 cores
    python -m bench.pipeline --phases unordered --rates 50,100,200 --duration 5
    python -m bench.pipeline --phases baseline,relay --events 20000 --repeat 5
    python -m bench.pipeline --json results.json  # also write the figures as JSON (- = stdout)
    python -m bench.pipeline --profile /tmp/prof  # py-spy stacks (raw) of relay and consumer
"""

# ruff: noqa: E402 -- the eventlet patch has to run before anything else is imported.
from __future__ import annotations

import os

#: Set for the baseline worker: raw kombu runs in a plain process, without eventlet.
PLAIN_ENV = "BENCH_PIPELINE_PLAIN"

if os.environ.get(PLAIN_ENV) != "1":
    from shared import green

    green.patch()

import argparse
import json
import math
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET = "bench-pipeline-secret-0123456789abcdef0123"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/clustergov-bench"
PRODUCER = "tests.sample:SampleService"
#: The sample service's event types (as bench.pipeline_consumer.TYPES, not imported here so
#: that the plain baseline worker does not load nameko).
TYPES = ("AmountDeposited", "AmountWithdrawn", "LedgerOpened")
RAW_EXCHANGE = "bench.raw.events"
RAW_QUEUE = "bench.raw"
RELAY_QUEUE = "bench.relay-alone"
RAW_PREFETCH = 10
RELAY_BATCH = 500  # shared.relay.Relay's default batch_size
JSON_TYPE = "application/json"
PHASES = ("baseline", "ordered", "unordered", "relay")
BASELINE_MEASURES = (
    "publish_unconfirmed",
    "publish_confirm_each",
    "publish_confirm_batch",
    "consume",
)


@dataclass(frozen=True)
class Consumer:
    """A consumer service the pipeline is measured with."""

    key: str
    spec: str
    service: str
    handler: str
    ordered: bool

    @property
    def queues(self) -> tuple[str, ...]:
        queue = f"{self.service}.{self.handler}"
        return (queue, f"{queue}.retry", f"{self.service}.dead-letter")


ORDERED = Consumer(
    "ordered", "tests.sample_view:LedgerViewService", "ledgerview", "on_ledger_event", True
)
UNORDERED = Consumer(
    "unordered",
    "bench.pipeline_consumer:PipelineViewService",
    "pipelineview",
    "on_sample_event",
    False,
)
ALL_QUEUES = (*ORDERED.queues, *UNORDERED.queues, RELAY_QUEUE, RAW_QUEUE)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rate(events: int, seconds: float) -> float:
    return events / seconds if seconds > 0 else float("nan")


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return float("nan")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (Linux; zeros elsewhere)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except OSError:
        return 0, 0
    return sum(values) - values[3] - values[4], sum(values)


def command_cpu(comm: str) -> float:
    """CPU seconds of all running processes named ``comm`` (exited ones are not counted)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                if (entry / "comm").read_text().strip() == comm:
                    total += process_cpu(int(entry.name))
    return total


#: Server processes whose CPU is reported too (the whole server's, not only this benchmark's).
SERVERS = {"postgres": "postgres", "rabbitmq": "beam.smp"}


@dataclass(frozen=True)
class Usage:
    """CPU seconds of some processes and of the servers, and the machine's ticks, at one moment."""

    processes: dict[str, float]
    machine: tuple[int, int]

    @classmethod
    def now(cls, **pids: int) -> Usage:
        processes = {name: process_cpu(pid) for name, pid in pids.items()}
        processes.update({name: command_cpu(comm) for name, comm in SERVERS.items()})
        return cls(processes, machine_ticks())

    def since(self, before: Usage, events: int) -> dict[str, float]:
        """Per process, CPU microseconds per event; and the machine's busy percentage."""
        out = {
            f"{name}_cpu_us": (self.processes[name] - before.processes[name]) / events * 1e6
            for name in self.processes
            if name in before.processes
        }
        busy = self.machine[0] - before.machine[0]
        total = self.machine[1] - before.machine[1]
        out["machine_busy_pct"] = 100 * busy / total if total else float("nan")
        return out


# -- baseline: raw kombu in a plain process -------------------------------------------------------


def baseline_worker(config: dict[str, Any]) -> dict[str, Any]:
    """Raw kombu publishing and consuming; runs without eventlet (``PLAIN_ENV``)."""
    from amqp.basic_message import Message as AmqpMessage
    from kombu import Connection, Exchange, Producer, Queue
    from kombu import Consumer as KombuConsumer

    uri, n, body = config["amqp_uri"], config["events"], config["body"].encode()
    routing_key, n_confirmed = config["routing_key"], config["confirmed_events"]
    exchange = Exchange(RAW_EXCHANGE, type="topic", durable=True)
    queue = Queue(RAW_QUEUE, exchange=exchange, routing_key=routing_key, durable=True)
    properties = {"content_type": JSON_TYPE, "content_encoding": "utf-8", "delivery_mode": 2}
    results: dict[str, Any] = {"body_bytes": len(body)}

    def measured(events: int, started: float, cpu: float, **extra: Any) -> dict[str, Any]:
        seconds = time.perf_counter() - started
        cpu_us = (time.process_time() - cpu) / events * 1e6
        return {
            "events": events,
            "seconds": seconds,
            "rate": rate(events, seconds),
            "process_cpu_us": cpu_us,
            **extra,
        }

    with Connection(uri) as connection:
        admin = connection.channel()
        admin.queue_delete(RAW_QUEUE)
        queue(admin).declare()

        # (a) unconfirmed: done when the broker has enqueued every message.
        with Connection(uri) as publisher:
            producer = Producer(publisher.channel(), exchange=exchange)
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(n):
                producer.publish(body, routing_key=routing_key, mandatory=True, **properties)
            client_seconds = time.perf_counter() - started
            while queue(admin).queue_declare(passive=True).message_count < n:
                time.sleep(0.002)
            results["publish_unconfirmed"] = measured(
                n, started, cpu, client_seconds=client_seconds
            )

        # Raw consume of those messages: decode, ack each, prefetch like a nameko consumer.
        with Connection(uri) as consumer_connection:
            received = 0

            def on_message(_body: Any, message: Any) -> None:
                nonlocal received
                received += 1
                message.ack()

            channel = consumer_connection.channel()
            with KombuConsumer(
                channel,
                queues=[queue],
                callbacks=[on_message],
                prefetch_count=RAW_PREFETCH,
                accept=[JSON_TYPE],
            ):
                started, cpu = time.perf_counter(), time.process_time()
                while received < n:
                    consumer_connection.drain_events(timeout=10)
                results["consume"] = measured(n, started, cpu)

        # (b) confirmed per message: every publish waits for the broker's ack.
        with Connection(uri, transport_options={"confirm_publish": True}) as publisher:
            producer = Producer(publisher.channel(), exchange=exchange)
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(n_confirmed):
                producer.publish(body, routing_key=routing_key, mandatory=True, **properties)
            results["publish_confirm_each"] = measured(n_confirmed, started, cpu)
        queue(admin).purge()

        # (c) confirmed per batch, as shared.amqp.EventPublisher does it: publish a batch, then
        # wait once for all of its acks.
        with Connection(uri) as publisher:
            channel = publisher.channel()
            outstanding: set[int] = set()

            def on_ack(tag: int, multiple: bool) -> None:
                if multiple:
                    outstanding.difference_update([t for t in outstanding if t <= tag])
                else:
                    outstanding.discard(tag)

            channel.events["basic_ack"].add(on_ack)
            channel.confirm_select()
            tag = 0
            started, cpu = time.perf_counter(), time.process_time()
            for first in range(0, n, RELAY_BATCH):
                for _ in range(min(RELAY_BATCH, n - first)):
                    message = AmqpMessage(body=body, **properties)
                    channel._basic_publish(
                        message, exchange=RAW_EXCHANGE, routing_key=routing_key, mandatory=True
                    )
                    tag += 1
                    outstanding.add(tag)
                while outstanding:
                    publisher.drain_events(timeout=10)
            results["publish_confirm_batch"] = measured(n, started, cpu, batch=RELAY_BATCH)
        admin.queue_delete(RAW_QUEUE)
        admin.exchange_delete(RAW_EXCHANGE)
    return results


# -- child processes ------------------------------------------------------------------------------


@dataclass
class Child:
    """One ``clustergov up`` process, its log in a file (never a pipe nobody reads)."""

    name: str
    spec: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> Child:
        env = {**self.env, "CLUSTERGOV_HTTP_ADDRESS": f"127.0.0.1:{self.port}"}
        command = [sys.executable, "-m", "shared.cli", "--log-level", "WARNING", "up"]
        with open(self.log_path, "ab") as stderr:
            self.popen = subprocess.Popen(
                [*command, "--services", self.spec],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        return self

    def check_alive(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            raise RuntimeError(f"{self.name} exited; see {self.log_path}")

    def wait_ready(self, timeout: float = 60) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with suppress(requests.RequestException):
                if requests.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s; see {self.log_path}")

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        import requests
        from prometheus_client.parser import text_string_to_metric_families

        text = requests.get(self.base + "/metrics", timeout=5).text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


@dataclass
class Profiler:
    """``py-spy record`` attached to a child: raw (collapsed) stacks, active samples only."""

    target: Child
    path: Path
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Profiler:
        command = ["py-spy", "record", "--pid", str(self.target.pid), "--format", "raw"]
        with open(self.path.with_suffix(".log"), "ab") as stderr:
            self.popen = subprocess.Popen(
                [*command, "--rate", "250", "--output", str(self.path)],
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        return self

    def stop(self) -> None:
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            self.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)


# -- the benchmark --------------------------------------------------------------------------------


class Bench:
    """Databases, broker and child processes of one benchmark run."""

    def __init__(self, args: argparse.Namespace, logs: Path) -> None:
        self.args = args
        self.logs = logs
        self.server = args.postgres.rstrip("/")
        self.children: list[Child | Profiler] = []
        self.stores: list[Any] = []
        self.connections: dict[str, Any] = {}
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERGOV_")}
        self.env.update(
            {
                "CLUSTERGOV_AMQP_URI": args.amqp_uri,
                "CLUSTERGOV_DATABASE_URL": f"{self.server}/{args.prefix}_{{service}}",
                "CLUSTERGOV_SECRET": SECRET,
                "CLUSTERGOV_CATCH_UP_INTERVAL": "0",  # the broker path alone
            }
        )

    # -- resources ----------------------------------------------------------------------------

    def database(self, service: str) -> str:
        return f"{self.args.prefix}_{service}"

    def url(self, service: str) -> str:
        return f"{self.server}/{self.database(service)}"

    def fresh_database(self, service: str) -> str:
        from sqlalchemy import create_engine

        from shared.eventstore import normalise_url
        from shared.migrate import upgrade

        self.forget(service)
        admin = create_engine(
            normalise_url(f"{self.server}/postgres"), isolation_level="AUTOCOMMIT"
        )
        try:
            with admin.connect() as conn:
                name = self.database(service)
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            admin.dispose()
        upgrade(self.url(service))
        return self.url(service)

    def store(self, service: str) -> Any:
        from shared.eventstore import EventStore

        store = EventStore.from_url(self.url(service), service)
        self.stores.append(store)
        return store

    def child(self, name: str, spec: str, **env: str) -> Child:
        child = Child(name, spec, {**self.env, **env}, self.logs / f"{name}.log")
        self.children.append(child)
        return child

    def profile(self, child: Child, name: str) -> Profiler | None:
        if not self.args.profile:
            return None
        profiler = Profiler(child, Path(self.args.profile) / f"{name}.txt")
        self.children.append(profiler)
        return profiler.start()

    def delete_queues(self) -> None:
        """Delete every queue this benchmark declares: no run routes into a stale one."""
        from kombu import Connection

        with Connection(self.args.amqp_uri, connect_timeout=5) as connection:
            for name in ALL_QUEUES:
                channel = connection.channel()  # a failed delete closes its channel
                with suppress(Exception):
                    channel.queue_delete(name)

    def close(self) -> None:
        for child in reversed(self.children):
            with suppress(Exception):
                child.stop()
        for store in self.stores:
            with suppress(Exception):
                store.dispose()
        for service in list(self.connections):
            self.forget(service)
        with suppress(Exception):
            self.delete_queues()

    # -- events -------------------------------------------------------------------------------

    @staticmethod
    def new_event(stream: str, version: int) -> Any:
        """An event as the sample service's commands write it, metadata included."""
        from shared.eventstore import NewEvent

        metadata = {
            "correlation_id": str(uuid.uuid4()),
            "causation_id": f"sample.deposit.{uuid.uuid4()}",
            "actor": "village_cadre-user",
            "district": "D1",
        }
        if version == 1:
            data: dict[str, Any] = {"owner": f"owner of {stream}", "district": "D1"}
            return NewEvent("Ledger", stream, version, "LedgerOpened", data, metadata=metadata)
        data = {"amount_fen": 100 + version % 900}
        return NewEvent("Ledger", stream, version, "AmountDeposited", data, metadata=metadata)

    def streams(self) -> list[str]:
        return [f"ledger-{i:05d}" for i in range(self.args.streams)]

    def prefill(self, store: Any) -> dict[str, Any]:
        """Append ``--events`` events round-robin over the streams, while no relay runs."""
        n, streams, batch = self.args.events, self.streams(), self.args.append_batch
        started = time.perf_counter()
        for first in range(0, n, batch):
            new = [
                self.new_event(streams[i % len(streams)], i // len(streams) + 1)
                for i in range(first, min(first + batch, n))
            ]
            with store.transaction() as tx:
                store.append(tx, new)
        seconds = time.perf_counter() - started
        return {"events": n, "seconds": seconds, "rate": rate(n, seconds)}

    # -- observing ----------------------------------------------------------------------------

    @contextmanager
    def connect(self, service: str) -> Iterator[Any]:
        """A kept connection to a service's database (a new backend per poll costs CPU)."""
        import psycopg

        conn = self.connections.get(service)
        if conn is None or conn.closed:
            conn = self.connections[service] = psycopg.connect(self.url(service), autocommit=True)
        try:
            yield conn
        except psycopg.OperationalError:
            self.forget(service)
            raise

    def forget(self, service: str) -> None:
        if (conn := self.connections.pop(service, None)) is not None:
            with suppress(Exception):
                conn.close()

    def wait_relay_start(self, producer: Child, timeout: float = 60) -> float:
        """Wall time at which the producer's relay took its leadership lock."""
        query = (
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s"
        )
        deadline = time.monotonic() + timeout
        with self.connect("sample") as conn:
            while time.monotonic() < deadline:
                if conn.execute(query, (self.database("sample"),)).fetchone()[0]:
                    return time.time()
                producer.check_alive()
                time.sleep(0.002)
        raise RuntimeError(f"the relay did not start in {timeout:.0f}s; see {producer.log_path}")

    def relay_done_at(self, last_position: int) -> float | None:
        """When the relay checkpointed ``last_position``, or None if it has not yet."""
        with self.connect("sample") as conn:
            row = conn.execute(
                "SELECT position, extract(epoch FROM updated_at) FROM relay_checkpoints"
            ).fetchone()
        if row is None or row[0] < last_position:
            return None
        return float(row[1])

    def unpublished(self) -> int:
        """Stored events the relay has not yet checkpointed."""
        with self.connect("sample") as conn:
            return conn.execute(
                "SELECT count(*) FROM events WHERE position > "
                "coalesce((SELECT max(position) FROM relay_checkpoints), 0)"
            ).fetchone()[0]

    def arrivals(self, consumer: Consumer) -> dict[str, float]:
        """Event id -> when the consumer applied it (its projection's record, or its inbox)."""
        if consumer.ordered:
            query = "SELECT event_id::text, extract(epoch FROM processed_at) FROM inbox"
        else:
            query = "SELECT event_id::text, arrived_at FROM arrivals"
        with self.connect(consumer.service) as conn:
            return {event_id: float(at) for event_id, at in conn.execute(query)}

    def applied(self, consumer: Consumer) -> int:
        with self.connect(consumer.service) as conn:
            return conn.execute("SELECT count(*) FROM inbox").fetchone()[0]

    def wait_applied(
        self,
        consumer: Consumer,
        child: Child,
        count: int,
        on_poll: Callable[[], None] = lambda: None,
    ) -> None:
        deadline = time.monotonic() + self.args.timeout
        while (applied := self.applied(consumer)) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{consumer.service} applied {applied} of {count} events in "
                    f"{self.args.timeout:.0f}s; see {child.log_path}"
                )
            child.check_alive()
            on_poll()
            time.sleep(0.05)
        on_poll()

    def wait_relay_done(self, producer: Child, last_position: int) -> float:
        deadline = time.monotonic() + self.args.timeout
        while (done := self.relay_done_at(last_position)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the relay did not finish; see {producer.log_path}")
            producer.check_alive()
            time.sleep(0.05)
        return done

    # -- checks -------------------------------------------------------------------------------

    def verify(
        self, consumer: Consumer, store: Any, producer: Child, view: Child
    ) -> dict[str, Any]:
        """Every stored event applied exactly once, and the projection equal to the store."""
        stored = store.read_all(limit=10_000_000)
        ids = {str(e.event_id) for e in stored}
        applied = set(self.arrivals(consumer))
        with self.connect(consumer.service) as conn:
            inbox_rows = conn.execute("SELECT count(*) FROM inbox").fetchone()[0]
            if consumer.ordered:
                rows = conn.execute(
                    "SELECT ledger_id, balance_fen, events, last_version FROM ledger_balances"
                ).fetchall()
                projection = {r[0]: (r[1], r[2], r[3]) for r in rows}
                projection_rows = sum(r[2] for r in rows)
            else:
                projection_rows = conn.execute("SELECT count(*) FROM arrivals").fetchone()[0]
        labels = frozenset({"service": consumer.service, "handler": consumer.handler}.items())
        counters = view.metrics()

        def counter(name: str) -> float:
            return counters.get((name, labels), 0.0)

        checks: dict[str, Any] = {
            "stored": len(stored),
            "inbox_rows": inbox_rows,
            "projection_applied": projection_rows,
            "relay_published": producer.metric(
                "clustergov_relay_published_total", service="sample"
            ),
            "consumed": counter("clustergov_events_consumed_total"),
            "skipped": counter("clustergov_events_skipped_total"),
            "failed": counter("clustergov_events_failed_total"),
            "dead_lettered": counter("clustergov_events_dead_lettered_total"),
        }
        if handled := counter("clustergov_handler_duration_seconds_count"):
            mean = counter("clustergov_handler_duration_seconds_sum") / handled
            checks["handler_mean_ms"] = mean * 1000
        problems = []
        if applied != ids:
            problems.append(
                f"{len(ids - applied)} stored events not applied, "
                f"{len(applied - ids)} applied but not stored"
            )
        for key in ("inbox_rows", "projection_applied", "relay_published", "consumed"):
            if checks[key] != len(stored):
                problems.append(f"{key} = {checks[key]:g}, expected {len(stored)}")
        for key in ("skipped", "failed", "dead_lettered"):
            if checks[key]:
                problems.append(f"{key} = {checks[key]:g}, expected 0")
        if consumer.ordered:
            expected: dict[str, tuple[int, int, int]] = {}
            for e in stored:
                balance, count, _ = expected.get(e.stream_id, (0, 0, 0))
                expected[e.stream_id] = (
                    balance + e.data.get("amount_fen", 0),
                    count + 1,
                    e.version,
                )
            if wrong := sum(1 for k in expected if projection.get(k) != expected[k]):
                problems.append(f"ledger_balances differs from the store on {wrong} ledgers")
        checks["problems"] = problems
        return checks

    # -- phases -------------------------------------------------------------------------------

    def pipeline(self, consumer: Consumer) -> dict[str, Any]:
        """Throughput (a backlog; consumer started, then producer), then latency."""
        args = self.args
        log(f"[{consumer.key}] fresh databases and queues, prefill {args.events} events")
        self.delete_queues()
        self.fresh_database("sample")
        self.fresh_database(consumer.service)
        store = self.store("sample")
        prefill = self.prefill(store)
        last_position = store.last_position()

        producer = self.child(f"{consumer.key}-producer", PRODUCER)
        # For filling an ordered handler's gaps from the notification log, should one occur.
        view = self.child(
            f"{consumer.key}-{consumer.service}",
            consumer.spec,
            CLUSTERGOV_SERVICE_URL=producer.base,
        )
        view.start().wait_ready()
        log(f"[{consumer.key}] {consumer.service} ready; starting the producer, relay on")
        producer.start()
        started = self.wait_relay_start(producer)
        before = Usage.now(relay=producer.pid, consumer=view.pid)
        profilers = [
            self.profile(producer, f"{consumer.key}-producer"),
            self.profile(view, f"{consumer.key}-consumer"),
        ]
        relay: dict[str, Any] = {}

        def poll_relay() -> None:
            if not relay and (done := self.relay_done_at(last_position)) is not None:
                relay.update(end=done, usage=Usage.now(relay=producer.pid))

        self.wait_applied(consumer, view, args.events, poll_relay)
        after = Usage.now(relay=producer.pid, consumer=view.pid)
        for profiler in profilers:
            if profiler is not None:
                profiler.stop()
        if not relay:
            relay.update(end=self.wait_relay_done(producer, last_position), usage=after)
        end = max(self.arrivals(consumer).values())
        producer.wait_ready()
        relay_seconds, pipeline_seconds = relay["end"] - started, end - started
        relay_usage = relay["usage"].since(before, args.events)
        pipeline_usage = after.since(before, args.events)
        throughput = {
            "events": args.events,
            "prefill": prefill,
            "relay_seconds": relay_seconds,
            "relay_rate": rate(args.events, relay_seconds),
            "relay_cpu_us": relay_usage["relay_cpu_us"],
            "relay_machine_busy_pct": relay_usage["machine_busy_pct"],
            "pipeline_seconds": pipeline_seconds,
            "pipeline_rate": rate(args.events, pipeline_seconds),
            "consumer_cpu_us": pipeline_usage["consumer_cpu_us"],
            "pipeline_machine_busy_pct": pipeline_usage["machine_busy_pct"],
            "pipeline_usage": pipeline_usage,
        }
        log(
            f"[{consumer.key}] relay {throughput['relay_rate']:.0f} events/s, "
            f"commit->projection {throughput['pipeline_rate']:.0f} events/s"
        )
        checks = self.verify(consumer, store, producer, view)
        latency = [self.latency(consumer, store, producer, view, offered) for offered in args.rates]
        result = {
            "consumer": consumer.service,
            "ordered": consumer.ordered,
            "throughput": throughput,
            "checks": checks,
            "latency": latency,
        }
        if latency:
            result["checks_after_latency"] = self.verify(consumer, store, producer, view)
        producer.stop()
        view.stop()
        self.delete_queues()
        return result

    def latency(
        self, consumer: Consumer, store: Any, producer: Child, view: Child, offered: float
    ) -> dict[str, Any]:
        """Paced appends, one event per transaction; commit -> arrival per event."""
        import eventlet

        args = self.args
        streams = self.streams()
        count = int(offered * args.duration)
        base = self.applied(consumer)
        versions = {s: store.stream_version(s) for s in streams}
        planned = []
        for i in range(count):
            stream = streams[i % len(streams)]
            versions[stream] += 1
            planned.append(self.new_event(stream, versions[stream]))
        commits: dict[str, float] = {}
        commit_ms: list[float] = []
        lateness: list[float] = []
        errors: list[str] = []
        pool = eventlet.GreenPool(args.writers)

        def append(event: Any) -> None:
            try:
                with store.transaction() as tx:
                    store.append(tx, [event])
                    before = time.time()
                commits[str(event.event_id)] = after = time.time()
                commit_ms.append((after - before) * 1000)
            except Exception as exc:  # counted and reported; the event is not waited for
                errors.append(f"{type(exc).__name__}: {exc}")

        log(f"[{consumer.key}] latency: {offered:g} events/s for {args.duration:g}s")
        pids = {"relay": producer.pid, "consumer": view.pid, "bench": os.getpid()}
        before = Usage.now(**pids)
        start = time.time() + 0.1
        for i, event in enumerate(planned):
            delay = start + i / offered - time.time()
            if delay > 0:
                eventlet.sleep(delay)
            else:
                lateness.append(-delay)
            pool.spawn_n(append, event)
        pool.waitall()
        written = len(commits)
        backlog = base + written - self.applied(consumer)
        unpublished = self.unpublished()
        busy = Usage.now().since(before, max(written, 1))["machine_busy_pct"]
        self.wait_applied(consumer, view, base + written)
        usage = Usage.now(**pids).since(before, max(written, 1))
        arrived = self.arrivals(consumer)
        sequence = {str(event.event_id): i for i, event in enumerate(planned)}
        measured = sorted(
            ((arrived[key] - at) * 1000, sequence[key]) for key, at in commits.items()
        )
        latencies = [ms for ms, _ in measured]
        commit_ms.sort()
        first, last = min(commits.values()), max(commits.values())
        result = {
            "offered_rate": offered,
            "achieved_rate": rate(written - 1, last - first),
            "events": written,
            "error_count": len(errors),
            "errors": errors[:5],
            "late_sends": len(lateness),
            "max_send_lateness_ms": max(lateness, default=0.0) * 1000,
            "backlog_at_end": backlog,
            "unpublished_at_end": unpublished,
            "machine_busy_pct": busy,
            # CPU per event, from the first append until the last event was applied.
            "cpu_us": {k: v for k, v in usage.items() if k.endswith("_cpu_us")},
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99),
            "max_ms": latencies[-1],
            "mean_ms": sum(latencies) / len(latencies),
            # Arrivals stamped before the writer saw its COMMIT return (green scheduling).
            "negative": sum(1 for v in latencies if v < 0),
            # The COMMIT round trip: how uncertain an event's commit time is.
            "commit_p50_ms": percentile(commit_ms, 50),
            "commit_p99_ms": percentile(commit_ms, 99),
            # The slowest events: (latency ms, their place in the sending order).
            "worst": [(round(ms, 1), i) for ms, i in reversed(measured[-5:])],
        }
        log(
            f"[{consumer.key}] latency p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} "
            f"ms at {result['achieved_rate']:.0f} events/s"
        )
        return result

    def relay_alone(self) -> dict[str, Any]:
        """The relay publishing the backlog into a queue nobody consumes, ``--repeat`` times."""
        from kombu import Connection, Queue, binding

        from shared.amqp import events_exchange

        args = self.args
        log(f"[relay] fresh database and queues, prefill {args.events} events")
        self.delete_queues()
        self.fresh_database("sample")
        store = self.store("sample")
        self.prefill(store)
        last_position = store.last_position()
        exchange = events_exchange("sample")
        queue = Queue(
            RELAY_QUEUE, bindings=[binding(exchange, routing_key=t) for t in TYPES], durable=True
        )
        runs = []
        for attempt in range(args.repeat):
            with Connection(args.amqp_uri, connect_timeout=5) as connection:
                channel = connection.channel()
                channel.queue_delete(RELAY_QUEUE)
                queue(channel).declare()
            with self.connect("sample") as conn:
                conn.execute("DELETE FROM relay_checkpoints")  # publish the backlog again
            producer = self.child(f"relay-producer-{attempt + 1}", PRODUCER)
            producer.start()
            started = self.wait_relay_start(producer)
            before = Usage.now(relay=producer.pid)
            profiler = self.profile(producer, f"relay-producer-{attempt + 1}")
            end = self.wait_relay_done(producer, last_position)
            usage = Usage.now(relay=producer.pid).since(before, args.events)
            if profiler is not None:
                profiler.stop()
            producer.wait_ready()
            published = producer.metric("clustergov_relay_published_total", service="sample")
            with Connection(args.amqp_uri, connect_timeout=5) as connection:
                depth = queue(connection.channel()).queue_declare(passive=True).message_count
            producer.stop()
            seconds = end - started
            runs.append(
                {
                    "events": args.events,
                    "relay_seconds": seconds,
                    "relay_rate": rate(args.events, seconds),
                    "relay_cpu_us": usage["relay_cpu_us"],
                    "relay_machine_busy_pct": usage["machine_busy_pct"],
                    "checks": {
                        "relay_published": published,
                        "queue_depth": depth,
                        "problems": [
                            f"run {attempt + 1}: {name} = {value:g}, expected {args.events}"
                            for name, value in (("relay_published", published), ("queue", depth))
                            if value != args.events
                        ],
                    },
                }
            )
            log(f"[relay] alone, run {attempt + 1}: {runs[-1]['relay_rate']:.0f} events/s")
        self.delete_queues()
        result = median_run(runs, "relay_rate")
        result["checks"]["problems"] = [p for run in runs for p in run["checks"]["problems"]]
        return result

    def baseline(self) -> dict[str, Any]:
        """Raw kombu, in a child process without eventlet, the body a real stored envelope."""
        from shared.amqp import encode

        self.delete_queues()
        self.fresh_database("sample")
        store = self.store("sample")
        with store.transaction() as tx:
            store.append(tx, [self.new_event("ledger-00000", v) for v in (1, 2)])
        deposit = store.read_all()[-1]
        config = {
            "amqp_uri": self.args.amqp_uri,
            "events": self.args.events,
            "confirmed_events": min(self.args.events, self.args.confirmed_events),
            "body": encode(deposit).decode(),
            "routing_key": deposit.type,
        }
        config_path, result_path = self.logs / "baseline.json", self.logs / "baseline-result.json"
        config_path.write_text(json.dumps(config))
        command = [sys.executable, "-m", "bench.pipeline", "--baseline-worker"]
        runs = []
        for attempt in range(self.args.repeat):
            with open(self.logs / "baseline.log", "ab") as stderr:
                subprocess.run(
                    [*command, str(config_path), str(result_path)],
                    env={**os.environ, PLAIN_ENV: "1"},
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    check=True,
                    timeout=600,
                )
            runs.append(json.loads(result_path.read_text()))
            log(
                f"[baseline] run {attempt + 1}: "
                + ", ".join(f"{key} {runs[-1][key]['rate']:.0f}/s" for key in BASELINE_MEASURES)
            )
        result: dict[str, Any] = {"body_bytes": runs[0]["body_bytes"]}
        for key in BASELINE_MEASURES:
            result[key] = median_run([run[key] for run in runs], "rate")
        return result


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run with the median ``key`` (the lower one of an even count), plus every run's."""
    chosen = dict(sorted(runs, key=lambda run: run[key])[(len(runs) - 1) // 2])
    chosen[f"{key}s"] = [run[key] for run in runs]
    return chosen


# -- setup ----------------------------------------------------------------------------------------


def ensure_vhost(amqp_uri: str) -> None:
    """Connect to the benchmark's virtual host, creating it with rabbitmqctl if it is missing."""
    from kombu import Connection

    def failure() -> Exception | None:
        try:
            with Connection(amqp_uri, connect_timeout=5) as connection:
                connection.ensure_connection(max_retries=1)
            return None
        except Exception as exc:  # any failure: maybe the vhost, maybe the broker
            return exc

    if (error := failure()) is None:
        return
    connection = Connection(amqp_uri)
    vhost, user = connection.virtual_host, connection.userid
    if vhost in ("/", "") or shutil.which("rabbitmqctl") is None:
        raise SystemExit(f"RabbitMQ at {amqp_uri} is not reachable: {error}")
    log(f"creating RabbitMQ virtual host {vhost!r} for {user!r}")
    for command in (
        ["rabbitmqctl", "add_vhost", vhost],
        ["rabbitmqctl", "set_permissions", "-p", vhost, user, ".*", ".*", ".*"],
    ):
        subprocess.run(command, check=True, capture_output=True, timeout=120)
    if (error := failure()) is not None:
        raise SystemExit(f"RabbitMQ at {amqp_uri} is not reachable: {error}")


def wait_idle(per_cpu: float, seconds: float) -> None:
    """Wait up to ``seconds`` for the 1-minute load average to drop below ``per_cpu``/CPU."""
    deadline = time.monotonic() + seconds
    cpus = os.cpu_count() or 1
    while os.getloadavg()[0] / cpus > per_cpu and time.monotonic() < deadline:
        time.sleep(2)


# -- report ---------------------------------------------------------------------------------------


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """The project's targets: relay >= half of raw unconfirmed kombu; p99 < 100 ms at 500/s."""
    out: dict[str, Any] = {}
    raw = results.get("baseline", {}).get("publish_unconfirmed", {}).get("rate")
    relays = {
        k: results[k]["throughput"]["relay_rate"] for k in ("ordered", "unordered") if k in results
    }
    if "relay" in results:
        relays["alone"] = results["relay"]["relay_rate"]
    if raw:
        out["relay_vs_raw_unconfirmed"] = {
            key: {"ratio": value / raw, "met": value >= raw / 2} for key, value in relays.items()
        }
    out["latency_p99_under_100ms"] = {
        f"{key}@{item['offered_rate']:g}": {"p99_ms": item["p99_ms"], "met": item["p99_ms"] < 100}
        for key in ("ordered", "unordered")
        for item in results.get(key, {}).get("latency", [])
    }
    return out


def render(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    config = results["config"]
    console = Console(stderr=config["json"] == "-")
    if not console.is_terminal:
        console.width = 140
    table = Table(
        title=f"Delivery pipeline: {config['events']} events over {config['streams']} streams, "
        f"RabbitMQ + PostgreSQL, {results['machine']['cpus']} CPUs",
        caption=f"raw and relay-alone rows: the median of {config['repeat']} runs; CPU: of the "
        "measured process (the relay's or the consumer's); machine busy: all CPUs, everything",
    )
    for column in ("measure", "events", "s", "events/s", "vs raw", "CPU µs/event", "machine busy"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    raw = results.get("baseline", {}).get("publish_unconfirmed", {}).get("rate")

    def row(label: str, events: int, seconds: float, value: float, cpu: float, busy: float) -> None:
        ratio = f"{value / raw:.2f}x" if raw else "-"
        cpu_text = "-" if math.isnan(cpu) else f"{cpu:.0f}"
        busy_text = "-" if math.isnan(busy) else f"{busy:.0f}%"
        table.add_row(
            label, str(events), f"{seconds:.2f}", f"{value:,.0f}", ratio, cpu_text, busy_text
        )

    nan = float("nan")
    if base := results.get("baseline"):
        for key, label in (
            ("publish_unconfirmed", "raw kombu publish, unconfirmed"),
            ("publish_confirm_each", "raw kombu publish, confirm each"),
            ("publish_confirm_batch", f"raw py-amqp publish, confirm per {RELAY_BATCH}"),
            ("consume", f"raw kombu consume, prefetch {RAW_PREFETCH}, ack each"),
        ):
            item = base[key]
            row(label, item["events"], item["seconds"], item["rate"], item["process_cpu_us"], nan)
    if item := results.get("relay"):
        row(
            "relay alone (no consumer running)",
            item["events"],
            item["relay_seconds"],
            item["relay_rate"],
            item["relay_cpu_us"],
            item["relay_machine_busy_pct"],
        )
    for key in ("ordered", "unordered"):
        if key not in results:
            continue
        item, name = results[key]["throughput"], results[key]["consumer"]
        row(
            f"relay, {name} consuming meanwhile",
            item["events"],
            item["relay_seconds"],
            item["relay_rate"],
            item["relay_cpu_us"],
            item["relay_machine_busy_pct"],
        )
        row(
            f"commit -> {name} projection ({key})",
            item["events"],
            item["pipeline_seconds"],
            item["pipeline_rate"],
            item["consumer_cpu_us"],
            item["pipeline_machine_busy_pct"],
        )
    console.print(table)

    latency = Table(title="Commit -> projection latency at a fixed offered rate, one event per tx")
    for column in (
        "consumer",
        "offered/s",
        "achieved/s",
        "events",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "not applied at end (unpublished)",
        "machine busy",
    ):
        latency.add_column(column, justify="left" if column == "consumer" else "right")
    for key in ("ordered", "unordered"):
        for item in results.get(key, {}).get("latency", []):
            latency.add_row(
                f"{results[key]['consumer']} ({key})",
                f"{item['offered_rate']:g}",
                f"{item['achieved_rate']:.0f}",
                str(item["events"]),
                *(f"{item[p]:.1f}" for p in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                f"{item['backlog_at_end']} ({item['unpublished_at_end']})",
                f"{item['machine_busy_pct']:.0f}%",
            )
    if latency.row_count:
        console.print(latency)

    for key, value in results["goals"].get("relay_vs_raw_unconfirmed", {}).items():
        verdict = "met" if value["met"] else "MISSED"
        console.print(
            f"goal: relay >= 0.5x raw unconfirmed ({key}): {value['ratio']:.2f}x, {verdict}"
        )
    for key, value in results["goals"].get("latency_p99_under_100ms", {}).items():
        verdict = "met" if value["met"] else "MISSED"
        console.print(f"goal: p99 < 100 ms ({key}/s): {value['p99_ms']:.1f} ms, {verdict}")
    for problem in results["problems"]:
        console.print(f"[red]check failed: {problem}[/red]")
    if not results["problems"]:
        console.print("checks: every event applied exactly once; projections equal their stores")
    machine = results["machine"]
    console.print(
        f"load average before {machine['load_before']}, after {machine['load_after']}; "
        f"{results['wall_seconds']:.0f} s; logs in {config['logs']}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = parser.add_argument
    add("--events", type=int, default=8000, help="backlog size (default 8000)")
    add("--streams", type=int, default=200, help="ledgers the events are spread over")
    add("--append-batch", type=int, default=1000, help="prefill: events per transaction")
    add("--confirmed-events", type=int, default=2000, help="messages, confirm-each baseline")
    add("--repeat", type=int, default=3, help="runs of the baseline and of the relay alone")
    add("--rates", default="100,500", help="latency: offered events/s, comma-separated")
    add("--duration", type=float, default=10, help="latency: seconds per rate (0: skip)")
    add("--writers", type=int, default=16, help="latency: concurrent appending green threads")
    add("--phases", default=",".join(PHASES), help=f"subset of {','.join(PHASES)}")
    add("--postgres", default=DEFAULT_POSTGRES, help="PostgreSQL server URL, no database")
    add("--amqp-uri", default=DEFAULT_AMQP, help="RabbitMQ URI, with the virtual host")
    add("--prefix", default="bench_pipeline", help="database name prefix")
    add("--timeout", type=float, default=180, help="seconds any one wait may take")
    add("--wait-idle", type=float, default=0, help="first wait up to this long for a calm machine")
    add("--profile", help="folder for py-spy raw stacks of the relay and the consumers")
    add("--json", nargs="?", const="-", help="write the results as JSON to a file (- = stdout)")
    add("--baseline-worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if unknown := set(args.phases.split(",")) - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")
    args.rates = [float(r) for r in args.rates.split(",") if r] if args.duration > 0 else []
    return args


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline_worker:
        config_path, result_path = args.baseline_worker
        result = baseline_worker(json.loads(Path(config_path).read_text()))
        Path(result_path).write_text(json.dumps(result))
        return 0
    signal.signal(signal.SIGTERM, _interrupt)  # finally: below stops the children
    phases = [p for p in PHASES if p in args.phases.split(",")]
    if args.profile:
        Path(args.profile).mkdir(parents=True, exist_ok=True)
    ensure_vhost(args.amqp_uri)
    if args.wait_idle:
        wait_idle(0.5, args.wait_idle)
    logs = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    results: dict[str, Any] = {
        "config": {
            "events": args.events,
            "streams": args.streams,
            "append_batch": args.append_batch,
            "repeat": args.repeat,
            "relay_batch": RELAY_BATCH,
            "rates": args.rates,
            "duration": args.duration,
            "writers": args.writers,
            "phases": phases,
            "amqp_uri": args.amqp_uri,
            "postgres": args.postgres,
            "json": args.json,
            "logs": str(logs),
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": [round(x, 2) for x in os.getloadavg()],
        },
    }
    bench = Bench(args, logs)
    started = time.monotonic()
    try:
        if "baseline" in phases:
            results["baseline"] = bench.baseline()
        if "relay" in phases:
            results["relay"] = bench.relay_alone()
        for consumer in (ORDERED, UNORDERED):
            if consumer.key in phases:
                results[consumer.key] = bench.pipeline(consumer)
    finally:
        bench.close()
    results["machine"]["load_after"] = [round(x, 2) for x in os.getloadavg()]
    results["wall_seconds"] = time.monotonic() - started
    problems = [
        f"{key}: {problem}"
        for key in ("relay", "ordered", "unordered")
        for checks in ("checks", "checks_after_latency")
        for problem in results.get(key, {}).get(checks, {}).get("problems", [])
    ]
    problems += [
        f"{key}: {item['error_count']} appends failed ({'; '.join(item['errors'])})"
        for key in ("ordered", "unordered")
        for item in results.get(key, {}).get("latency", [])
        if item["error_count"]
    ]
    results["problems"] = problems
    results["goals"] = goals(results)
    render(results)
    if args.json:
        text = json.dumps(results, indent=2, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the children were stopped on the way out
        log("interrupted")
        sys.exit(130)
