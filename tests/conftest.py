"""Shared fixtures. The process is eventlet-patched first, exactly as `clustergov up` is.

The event store suite runs on SQLite and PostgreSQL (``backend`` parameter). PostgreSQL and
RabbitMQ come from 127.0.0.1; when missing, tests skip locally but fail under CI=true.
"""

from shared import green

green.patch()

import json  # noqa: E402
import os  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from kombu import Connection, Queue  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from shared import amqp, auth  # noqa: E402
from shared.cli import nameko_config  # noqa: E402
from shared.config import Settings  # noqa: E402
from shared.eventstore import EventStore  # noqa: E402
from shared.migrate import upgrade  # noqa: E402

POSTGRES_SERVER = os.environ.get("CLUSTERGOV_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
AMQP_URI = os.environ.get("CLUSTERGOV_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
SECRET = "test-secret-0123456789abcdef0123456789"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(what: str, exc: Exception) -> None:
    message = f"{what} is not reachable: {exc}"
    if IN_CI:
        pytest.fail(message + " (CI requires it)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    engine = create_engine(
        POSTGRES_SERVER.replace("postgresql://", "postgresql+psycopg://") + "/postgres"
    )
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to connect means: no server
        unavailable("PostgreSQL on 127.0.0.1:5432", exc)
    finally:
        engine.dispose()
    return POSTGRES_SERVER


def fresh_postgres_database(server: str, name: str) -> str:
    admin = create_engine(
        server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()
    url = f"{server}/{name}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def postgres_template(postgres_server: str) -> str:
    """One migrated database per session; tests empty it instead of recreating it."""
    return fresh_postgres_database(postgres_server, f"clustergov_test_{os.getpid()}")


def empty_postgres(url: str) -> None:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "TRUNCATE events, snapshots, idempotency_keys, relay_checkpoints, inbox, "
            "consumer_checkpoints, stream_positions"
        )
    engine.dispose()


def _admin_engine(server: str) -> Any:
    return create_engine(
        server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
        isolation_level="AUTOCOMMIT",
    )


class ServiceDatabases:
    """One PostgreSQL database per service for this test session (``clustergov_t<pid>_<service>``),
    created and migrated when a service first starts, emptied before each test that uses them."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.prefix = f"clustergov_t{os.getpid()}_"

    @property
    def template(self) -> str:
        return f"{self.server}/{self.prefix}{{service}}"

    def _existing(self) -> list[str]:
        admin = _admin_engine(self.server)
        with admin.connect() as conn:
            names = conn.execute(
                text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                {"p": self.prefix + "%"},
            ).scalars()
            found = list(names)
        admin.dispose()
        return found

    def empty(self) -> None:
        for name in self._existing():
            engine = create_engine(f"postgresql+psycopg://{self.server.split('://', 1)[1]}/{name}")
            with engine.begin() as conn:
                tables = conn.execute(
                    text(
                        "SELECT quote_ident(tablename) FROM pg_tables "
                        "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
                    )
                ).scalars()
                listed = ", ".join(tables)
                if listed:
                    conn.exec_driver_sql(f"TRUNCATE {listed}")
            engine.dispose()

    def drop(self) -> None:
        admin = _admin_engine(self.server)
        with admin.connect() as conn:
            for name in self._existing():
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(scope="session")
def service_databases(postgres_server: str) -> Iterator[ServiceDatabases]:
    databases = ServiceDatabases(postgres_server)
    databases.drop()
    yield databases
    databases.drop()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A migrated, empty database for one service (SQLite file or PostgreSQL database)."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path}/store.db"
        upgrade(url)
        return url
    url = request.getfixturevalue("postgres_template")
    empty_postgres(url)
    return url


@pytest.fixture
def database_template(backend: str, request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """``CLUSTERGOV_DATABASE_URL`` with ``{service}``: an empty database for every service a test
    starts (SQLite files under tmp_path, or this session's PostgreSQL databases, emptied)."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/{{service}}.db"
    databases: ServiceDatabases = request.getfixturevalue("service_databases")
    databases.empty()
    return databases.template


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """The real RabbitMQ, in a virtual host of this test session's own (deleted at the end), so
    test runs side by side never share queues."""
    vhost = f"clustergov_t{os.getpid()}"

    def rabbitmqctl(*args: str) -> None:
        subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=60)

    try:
        with Connection(AMQP_URI, connect_timeout=3) as connection:
            connection.ensure_connection(max_retries=1)
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)
        rabbitmqctl("add_vhost", vhost)
        rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    except Exception as exc:
        unavailable("RabbitMQ on 127.0.0.1:5672 (with rabbitmqctl)", exc)
    yield AMQP_URI.rstrip("/") + "/" + vhost
    rabbitmqctl("delete_vhost", vhost)


@contextmanager
def captured_events(amqp_uri: str, service: str, pattern: str = "#") -> Iterator[Callable]:
    """Bind a private queue to ``<service>.events`` and yield ``take(n, timeout=10)``: the next n
    messages' JSON bodies, as a bank or another team would receive them."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        queue = Queue(
            f"test.capture.{uuid.uuid4().hex[:8]}",
            amqp.events_exchange(service),
            routing_key=pattern,
            exclusive=True,
            auto_delete=True,
        )
        queue(channel).declare()
        received: list[dict[str, Any]] = []

        def take(n: int, timeout: float = 10) -> list[dict[str, Any]]:
            import time

            deadline = time.monotonic() + timeout
            while len(received) < n and time.monotonic() < deadline:
                message = queue(channel).get(no_ack=True)
                if message is None:
                    time.sleep(0.05)
                    continue
                received.append(json.loads(message.body))
            assert len(received) >= n, f"{len(received)} of {n} messages arrived"
            taken = received[:n]
            del received[:n]
            return taken

        yield take


@pytest.fixture
def store(database_url: str) -> Iterator[EventStore]:
    store = EventStore.from_url(database_url, "sample")
    yield store
    store.dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Api:
    """A running service process-in-test, spoken to over HTTP."""

    base: str
    database_url: str
    session: requests.Session

    def token(self, role: str = "village_cadre", **claims: Any) -> str:
        return auth.mint(SECRET, role=role, subject=claims.pop("subject", f"{role}-user"), **claims)

    def headers(self, role: str = "village_cadre", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(role, **claims)}"}

    def post(
        self,
        path: str,
        json: Any = None,
        role: str = "village_cadre",
        headers: dict[str, str] | None = None,
        **claims: Any,
    ) -> requests.Response:
        merged = {**self.headers(role, **claims), **(headers or {})}
        return self.session.post(self.base + path, json=json, headers=merged, timeout=30)

    def get(
        self, path: str, role: str | None = "village_cadre", **kwargs: Any
    ) -> requests.Response:
        headers = self.headers(role) if role else {}
        return self.session.get(self.base + path, headers=headers, timeout=30, **kwargs)

    def events(self, service: str = "sample") -> list[dict[str, Any]]:
        """Every event of a service, from its notification log."""
        found: list[dict[str, Any]] = []
        after = 0
        while True:
            response = self.get(f"/api/v1/{service}/events?after={after}&limit=1000", role="ops")
            assert response.status_code == 200, response.text
            page = response.json()
            found.extend(page["events"])
            if len(page["events"]) < 1000:
                return found
            after = page["next_after"]


def forget_embedded_messages() -> None:
    """Empty the in-process broker's queues once a test's services have stopped. kombu keeps
    them per process, and every test reuses the same queue names and stream ids with fresh
    databases: a message left over from an earlier test would reach the next one's handler."""
    from kombu.transport import memory

    for queue in memory.Channel.queues.values():
        while not queue.empty():
            queue.get_nowait()


def queues_of(runner: Any) -> set[str]:
    """The RabbitMQ queues of a runner's event handlers (with their retry and dead-letter ones)."""
    from shared.consumers import EventSubscriber

    names: set[str] = set()
    for container in runner.containers:
        for entrypoint in container.entrypoints:
            if isinstance(entrypoint, EventSubscriber):
                names |= {e.name for e in (entrypoint.queue, entrypoint.retry_queue)}
                names.add(entrypoint.dead_letters.name)
    return names


def delete_queues(amqp_uri: str, queues: set[str]) -> None:
    """Delete a finished test's handler queues from this session's vhost. Left there, they stay
    bound to their sources' exchanges and collect what later tests publish (the same stream
    ids, from fresh databases) for whichever test starts that handler next."""
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        for name in sorted(queues):
            try:
                channel.queue_delete(name)
            except Exception:  # never declared: nothing to delete
                channel = connection.channel()


def run_services(
    services: list[type], database_url: str, amqp_uri: str | None = None, **overrides: Any
) -> Any:
    from nameko.runners import ServiceRunner

    environ = {
        "CLUSTERGOV_DATABASE_URL": database_url,
        "CLUSTERGOV_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
        "CLUSTERGOV_SECRET": SECRET,
    }
    if amqp_uri:
        environ["CLUSTERGOV_AMQP_URI"] = amqp_uri
    settings = Settings.from_env(environ)
    config = nameko_config(settings, migrate=True)
    config.update(overrides)
    runner = ServiceRunner(config)
    for service in services:
        runner.add_service(service)
    runner.start()
    return runner, f"http://{settings.http_address}"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    from tests.sample import SampleService

    runner, base = run_services([SampleService], database_url, max_workers=4)
    with requests.Session() as session:
        yield Api(base, database_url, session)
    runner.stop()
    forget_embedded_messages()


@dataclass
class Services:
    """Starts services in this process for one test (``start_services``) and stops them after."""

    database_template: str
    runners: list[Any] = field(default_factory=list)
    sessions: list[requests.Session] = field(default_factory=list)
    brokers: list[tuple[str, Any]] = field(default_factory=list)

    def __call__(self, *services: type, amqp_uri: str | None = None, **overrides: Any) -> Api:
        """Run these nameko service classes together (embedded broker unless ``amqp_uri``)."""
        runner, base = run_services(list(services), self.database_template, amqp_uri, **overrides)
        self.runners.append(runner)
        if amqp_uri:
            self.brokers.append((amqp_uri, runner))
        session = requests.Session()
        self.sessions.append(session)
        return Api(base, self.database_template, session)

    def stop(self) -> None:
        for session in self.sessions:
            session.close()
        handler_queues = [(uri, queues_of(runner)) for uri, runner in self.brokers]
        for runner in reversed(self.runners):
            runner.stop()
        forget_embedded_messages()
        for uri, queues in handler_queues:
            delete_queues(uri, queues)


@pytest.fixture
def start_services(database_template: str) -> Iterator[Services]:
    """``api = start_services(LandService, AllianceService)``: services over HTTP, on SQLite and
    PostgreSQL (the ``backend`` parameter)."""
    services = Services(database_template)
    yield services
    services.stop()


def new_id(prefix: str = "L") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
