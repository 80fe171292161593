"""Shared fixtures. The process is eventlet-patched first, exactly as `clustergov up` is.

The event store suite runs on SQLite and PostgreSQL (``backend`` parameter). PostgreSQL and
RabbitMQ come from 127.0.0.1; when missing, tests skip locally but fail under CI=true.
"""

from shared import green

green.patch()

import os  # noqa: E402
import socket  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from shared import auth  # noqa: E402
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

    def events(self) -> list[dict[str, Any]]:
        response = self.get("/api/v1/sample/events?limit=1000", role="ops")
        assert response.status_code == 200, response.text
        return response.json()["events"]


def run_services(services: list[type], database_url: str, **overrides: Any) -> Any:
    from nameko.runners import ServiceRunner

    settings = Settings.from_env(
        {
            "CLUSTERGOV_DATABASE_URL": database_url,
            "CLUSTERGOV_HTTP_ADDRESS": f"127.0.0.1:{free_port()}",
            "CLUSTERGOV_SECRET": SECRET,
        }
    )
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


def new_id(prefix: str = "L") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"
