"""Reliable delivery across processes, on the real RabbitMQ and PostgreSQL.

A producer process (the sample service: HTTP commands, PostgreSQL store, outbox relay) and a
consumer process (ledgerview: a projection of the sample's events) talk only through RabbitMQ.
After every scenario, including crashes and a broker restart, the projection must equal what the
producer's event store says: nothing lost, nothing counted twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import eventlet
import pytest
import requests
from kombu import Connection
from sqlalchemy import select

from shared import auth
from shared.eventstore import EventStore, events
from tests.conftest import SECRET, free_port, fresh_postgres_database

pytestmark = pytest.mark.rabbitmq

CLI = [sys.executable, "-m", "shared.cli"]
PRODUCER = "tests.sample:SampleService"
CONSUMER = "tests.sample_view:LedgerViewService"
CONSUMER_QUEUES = (
    "ledgerview.on_ledger_event",
    "ledgerview.on_ledger_event.retry",
    "ledgerview.dead-letter",
)
WRITER = {"Authorization": "Bearer " + auth.mint(SECRET, role="village_cadre", ttl_seconds=7200)}
OPS = {"Authorization": "Bearer " + auth.mint(SECRET, role="ops", ttl_seconds=7200)}


@dataclass
class Process:
    """One `clustergov up` process."""

    spec: str
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    popen: subprocess.Popen | None = None
    log: Any = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, **extra_env: str) -> Process:
        env = {**self.env, "CLUSTERGOV_HTTP_ADDRESS": f"127.0.0.1:{self.port}", **extra_env}
        # A file, not a pipe: nobody reads a pipe, and a full one would block the process.
        self.log = self.log or tempfile.NamedTemporaryFile(prefix="clustergov-", suffix=".log")  # noqa: SIM115 (lives as long as the process)
        self.popen = subprocess.Popen(
            [*CLI, "--log-level", "WARNING", "up", "--services", self.spec],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                return self  # exited (a failpoint, or a crash the test will see)
            try:
                if requests.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.spec} did not become ready")

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            self.popen.wait(timeout=30)

    def kill(self) -> None:
        if self.popen and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(timeout=10)

    def log_tail(self, size: int = 12000) -> str:
        if self.log is None:
            return ""
        with open(self.log.name, errors="replace") as log:
            return f"--- {self.spec} log ---\n" + log.read()[-size:]

    def wait_for_metric(self, sample: str, at_least: float, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while (value := self.metric(sample)) < at_least and time.monotonic() < deadline:
            time.sleep(0.1)
        return value

    def metric(self, sample: str) -> float:
        for line in requests.get(self.base + "/metrics", timeout=5).text.splitlines():
            if line.startswith(sample + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0


@dataclass
class Pipeline:
    producer: Process
    consumer: Process
    store: EventStore

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        response = requests.post(self.producer.base + path, json=body, headers=WRITER, timeout=30)
        assert response.status_code == 201, response.text
        return response

    def open(self, ledger_id: str) -> None:
        self.post("/api/v1/sample/ledgers", {"id": ledger_id, "owner": "O", "district": "D1"})

    def deposit(self, ledger_id: str, amount: int) -> None:
        self.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": amount})

    def expected(self) -> dict[str, dict[str, int]]:
        """The projection the store implies: balance, event count and last version per ledger."""
        ledgers: dict[str, dict[str, int]] = {}
        # Every committed event, read plainly: read_all would also hold back events behind
        # transactions still open anywhere on the server (its gap-safety), which is not the point.
        with self.store.engine.connect() as db:
            rows = db.execute(select(events).order_by(events.c.position)).all()
        for event in map(self.store.recorded, rows):
            ledger = ledgers.setdefault(event.stream_id, {"balance_fen": 0, "events": 0})
            sign = -1 if event.type == "AmountWithdrawn" else 1
            ledger["balance_fen"] += sign * event.data.get("amount_fen", 0)
            ledger["events"] += 1
            ledger["last_version"] = event.version
        return ledgers

    def projection(self) -> dict[str, dict[str, int]]:
        response = requests.get(
            self.consumer.base + "/api/v1/ledgerview/balances", headers=OPS, timeout=5
        )
        if response.status_code != 200:
            time.sleep(1)
        assert response.status_code == 200, response.text + self.consumer.log_tail()
        return response.json()["ledgers"]

    def converge(self, timeout: float = 60) -> dict[str, dict[str, int]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            expected = self.expected()
            try:
                if self.projection() == expected:
                    return expected
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        assert self.projection() == expected, (
            self.producer.log_tail() + "\n" + self.consumer.log_tail()
        )
        return expected


@pytest.fixture
def pipeline(broker: str, postgres_server: str) -> Iterator[Pipeline]:
    producer_db = fresh_postgres_database(postgres_server, "clustergov_delivery_sample")
    fresh_postgres_database(postgres_server, "clustergov_delivery_ledgerview")
    with Connection(broker) as connection:
        channel = connection.channel()
        for queue in CONSUMER_QUEUES:
            channel.queue_delete(queue)
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERGOV_")}
    base_env.update(
        {
            "CLUSTERGOV_AMQP_URI": broker,
            "CLUSTERGOV_DATABASE_URL": f"{postgres_server}/clustergov_delivery_{{service}}",
            "CLUSTERGOV_SECRET": SECRET,
            "CLUSTERGOV_CATCH_UP_INTERVAL": "0",  # prove the broker path alone
        }
    )
    producer = Process(PRODUCER, base_env)
    consumer = Process(CONSUMER, {**base_env, "CLUSTERGOV_SERVICE_URL": producer.base})
    store = EventStore.from_url(producer_db, "sample")
    try:
        yield Pipeline(producer, consumer, store)
    finally:
        for process in (producer, consumer):
            process.kill()
        store.dispose()


def write_in_background(
    pipeline: Pipeline, ledgers: list[str], rounds: int, pause: float = 0.0
) -> Any:
    def writer() -> None:
        for i in range(rounds):
            for ledger in ledgers:
                pipeline.deposit(ledger, i + 1)
            eventlet.sleep(pause)

    return eventlet.spawn(writer)


def inbox_rows(pipeline: Pipeline) -> int:
    consumer_store = EventStore.from_url(
        pipeline.store.engine.url.render_as_string(hide_password=False).replace(
            "clustergov_delivery_sample", "clustergov_delivery_ledgerview"
        ),
        "ledgerview",
    )
    with consumer_store.engine.connect() as db:
        count = db.exec_driver_sql("SELECT count(*) FROM inbox").scalar_one()
    consumer_store.dispose()
    return count


def test_command_to_projection_in_another_process_exactly_once(pipeline: Pipeline) -> None:
    pipeline.producer.start()
    pipeline.consumer.start()
    for ledger in ("A", "B"):
        pipeline.open(ledger)
    for i in range(1, 26):
        pipeline.deposit("A" if i % 2 else "B", i)
    expected = pipeline.converge()
    assert expected["A"]["balance_fen"] == sum(range(1, 26, 2)) and expected["B"]["events"] == 13
    assert inbox_rows(pipeline) == 27
    assert (
        pipeline.consumer.metric(
            'clustergov_events_consumed_total{handler="on_ledger_event",service="ledgerview"}'
        )
        == 27
    )
    assert pipeline.producer.metric('clustergov_relay_published_total{service="sample"}') == 27


def test_consumer_killed_mid_stream_loses_and_doubles_nothing(pipeline: Pipeline) -> None:
    pipeline.producer.start()
    pipeline.consumer.start()
    ledgers = ["K1", "K2", "K3"]
    for ledger in ledgers:
        pipeline.open(ledger)
    writer = write_in_background(pipeline, ledgers, rounds=60)
    eventlet.sleep(1.0)
    pipeline.consumer.kill()  # SIGKILL: no chance to ack or finish
    eventlet.sleep(0.5)
    pipeline.consumer.start()
    writer.wait()
    expected = pipeline.converge()
    assert sum(ledger["events"] for ledger in expected.values()) == 183


def test_relay_killed_between_publish_and_checkpoint(pipeline: Pipeline) -> None:
    pipeline.consumer.start()
    pipeline.producer.start(CLUSTERGOV_RELAY="off")
    pipeline.open("R")
    for i in range(1, 21):
        pipeline.deposit("R", i)
    pipeline.producer.stop()
    # The relay publishes the 21 events, then dies before it can record its checkpoint.
    pipeline.producer.start(CLUSTERGOV_FAILPOINTS="relay_after_publish")
    assert pipeline.producer.popen.wait(timeout=30) == 86
    pipeline.producer.start()  # publishes the same 21 again
    expected = pipeline.converge()
    assert expected["R"]["events"] == 21
    skipped = 'clustergov_events_skipped_total{handler="on_ledger_event",service="ledgerview"}'
    # every duplicate arrived and was dropped
    assert pipeline.consumer.wait_for_metric(skipped, at_least=21) >= 21
    assert inbox_rows(pipeline) == 21


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


def test_broker_stopped_and_started_during_a_stream(pipeline: Pipeline) -> None:
    pipeline.producer.start()
    pipeline.consumer.start()
    ledgers = ["B1", "B2"]
    for ledger in ledgers:
        pipeline.open(ledger)
    writer = write_in_background(pipeline, ledgers, rounds=80, pause=0.02)
    eventlet.sleep(0.8)
    try:
        rabbitmqctl("stop_app")
        eventlet.sleep(2)  # commands keep succeeding: the store is the outbox
    finally:
        rabbitmqctl("start_app")
    writer.wait()
    expected = pipeline.converge(timeout=90)
    assert sum(ledger["events"] for ledger in expected.values()) == 162


def test_handler_failing_its_first_attempts_is_retried_with_back_off(pipeline: Pipeline) -> None:
    pipeline.producer.start()
    pipeline.consumer.start(SAMPLE_VIEW_FAIL_FIRST="2")
    pipeline.open("F")
    for i in range(1, 6):
        pipeline.deposit("F", i)
    expected = pipeline.converge()
    assert expected["F"]["balance_fen"] == 15
    # Each of the 6 events failed exactly twice, then applied once: retried, never spun.
    failed = 'clustergov_events_failed_total{handler="on_ledger_event",service="ledgerview"}'
    assert pipeline.consumer.metric(failed) == 12
    dead = 'clustergov_events_dead_lettered_total{handler="on_ledger_event",service="ledgerview"}'
    assert pipeline.consumer.metric(dead) == 0
    assert inbox_rows(pipeline) == 6


def test_poison_event_is_dead_lettered_then_replayed(pipeline: Pipeline) -> None:
    pipeline.producer.start()
    pipeline.consumer.start()
    pipeline.open("P")
    pipeline.deposit("P", 666)  # the consumer rejects this amount every time
    pipeline.open("Q")
    pipeline.deposit("Q", 5)
    env = pipeline.consumer.env
    dead = 'clustergov_events_dead_lettered_total{handler="on_ledger_event",service="ledgerview"}'
    assert pipeline.consumer.wait_for_metric(dead, at_least=1) == 1
    listed = subprocess.run(
        [*CLI, "dlq", "list", CONSUMER, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    (parked,) = json.loads(listed.stdout)
    assert parked["type"] == "AmountDeposited" and parked["attempts"] == 4
    assert "poison" in parked["error"]
    assert pipeline.projection()["Q"]["balance_fen"] == 5  # other streams were not held up
    # The fix ships: restart the consumer without the bug, then re-inject the message.
    pipeline.consumer.stop()
    pipeline.consumer.start(SAMPLE_VIEW_POISON_FEN="0")
    replayed = subprocess.run(
        [*CLI, "dlq", "replay", CONSUMER, "--event-id", parked["event_id"]],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "replayed 1" in replayed.stdout
    assert pipeline.converge()["P"]["balance_fen"] == 666
    listed = subprocess.run(
        [*CLI, "dlq", "list", CONSUMER, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout) == []


def test_two_relays_for_one_service_publish_each_event_once(pipeline: Pipeline) -> None:
    second = Process(PRODUCER, pipeline.producer.env)
    pipeline.producer.start()
    second.start()
    pipeline.consumer.start()
    try:
        for ledger in ("T1", "T2"):
            pipeline.open(ledger)
        for i in range(1, 41):
            target = pipeline.producer if i % 2 else second
            response = requests.post(
                f"{target.base}/api/v1/sample/ledgers/T{1 + i % 2}/deposits",
                json={"amount_fen": i},
                headers=WRITER,
                timeout=30,
            )
            assert response.status_code == 201
        pipeline.converge()
        published = [
            p.metric('clustergov_relay_published_total{service="sample"}')
            for p in (pipeline.producer, second)
        ]
        assert sorted(published) == [0, 42]  # one leader published everything, once
        skipped = 'clustergov_events_skipped_total{handler="on_ledger_event",service="ledgerview"}'
        assert pipeline.consumer.metric(skipped) == 0
    finally:
        second.kill()


def test_a_new_subscriber_catches_up_from_the_notification_log(pipeline: Pipeline) -> None:
    pipeline.producer.start()
    pipeline.open("C")
    for i in range(1, 11):
        pipeline.deposit("C", i)  # nobody subscribes yet: unroutable, not lost
    unroutable = 'clustergov_relay_unroutable_total{service="sample"}'
    assert pipeline.producer.wait_for_metric(unroutable, at_least=11) == 11
    pipeline.consumer.start(CLUSTERGOV_CATCH_UP_INTERVAL="3600")
    assert pipeline.converge()["C"]["balance_fen"] == 55


def test_when_the_leading_relay_dies_another_takes_over(pipeline: Pipeline) -> None:
    second = Process(PRODUCER, pipeline.producer.env)
    pipeline.producer.start()
    second.start()
    pipeline.consumer.start()
    published = 'clustergov_relay_published_total{service="sample"}'
    try:
        pipeline.open("L")
        pipeline.converge()
        leader, follower = (
            (pipeline.producer, second)
            if pipeline.producer.metric(published) > 0
            else (second, pipeline.producer)
        )
        leader.kill()
        for i in range(1, 11):
            response = requests.post(
                f"{follower.base}/api/v1/sample/ledgers/L/deposits",
                json={"amount_fen": i},
                headers=WRITER,
                timeout=30,
            )
            assert response.status_code == 201
        assert pipeline.converge()["L"]["balance_fen"] == 55
        assert follower.metric(published) >= 10
    finally:
        second.kill()
