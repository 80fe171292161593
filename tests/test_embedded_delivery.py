"""Delivery in one process on the embedded broker (what `make run` uses), the ordering helper,
catch-up from the notification log, and rebuilding projections with `clustergov replay`."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from shared import auth
from shared.consumers import EventSubscriber
from shared.dependencies import Store
from shared.eventstore import EventStore
from tests.conftest import SECRET, forget_embedded_messages, fresh_postgres_database, run_services
from tests.sample import SampleService, ledger_totals
from tests.sample_view import LedgerViewService, balances

WRITER = {"Authorization": "Bearer " + auth.mint(SECRET, role="village_cadre")}
OPS = {"Authorization": "Bearer " + auth.mint(SECRET, role="ops")}


@pytest.fixture
def database_template(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A ``{service}`` URL: one SQLite file or one fresh PostgreSQL database per service."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/{{service}}.db"
    server = request.getfixturevalue("postgres_server")
    for service in ("sample", "ledgerview"):
        fresh_postgres_database(server, f"clustergov_embedded_{service}")
    return f"{server}/clustergov_embedded_{{service}}"


class Both:
    def __init__(self, template: str, **config: Any) -> None:
        self.runner, self.base = run_services(
            [SampleService, LedgerViewService], template, CATCH_UP_INTERVAL=0, **config
        )

    def post(self, path: str, body: dict[str, Any]) -> requests.Response:
        response = requests.post(self.base + path, json=body, headers=WRITER, timeout=10)
        assert response.status_code == 201, response.text
        return response

    def subscriber(self) -> EventSubscriber:
        container = next(c for c in self.runner.containers if c.service_name == "ledgerview")
        return next(e for e in container.entrypoints if isinstance(e, EventSubscriber))

    def balances(self) -> dict[str, Any]:
        response = requests.get(self.base + "/api/v1/ledgerview/balances", headers=OPS, timeout=10)
        return response.json()["ledgers"]

    def sample_store(self) -> EventStore:
        container = next(c for c in self.runner.containers if c.service_name == "sample")
        return next(d.store for d in container.dependencies if isinstance(d, Store))


@pytest.fixture
def both(database_template: str) -> Iterator[Both]:
    system = Both(database_template)
    yield system
    system.runner.stop()
    forget_embedded_messages()


def test_events_reach_another_service_through_the_embedded_broker(both: Both) -> None:
    both.post("/api/v1/sample/ledgers", {"id": "E1", "owner": "O", "district": "D1"})
    for amount in (5, 7, 11):
        both.post("/api/v1/sample/ledgers/E1/deposits", {"amount_fen": amount})
    deadline = time.monotonic() + 10
    while both.balances().get("E1", {}).get("events") != 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert both.balances()["E1"] == {"balance_fen": 23, "events": 4, "last_version": 4}


@pytest.fixture
def quiet(database_template: str) -> Iterator[Both]:
    """Both services, with the relay off: the test decides what the consumer is given."""
    system = Both(database_template, RELAY=False)
    yield system
    system.runner.stop()


def test_an_ordered_handler_fills_a_gap_from_the_notification_log(quiet: Both) -> None:
    quiet.post("/api/v1/sample/ledgers", {"id": "G", "owner": "O", "district": "D1"})
    for amount in (1, 2, 3):
        quiet.post("/api/v1/sample/ledgers/G/deposits", {"amount_fen": amount})
    v1, v2, v3, v4 = quiet.sample_store().load("G")
    subscriber = quiet.subscriber()
    assert subscriber.deliver(v3) is True  # v1 and v2 come from the log first
    assert quiet.balances()["G"] == {"balance_fen": 3, "events": 3, "last_version": 3}
    assert subscriber.deliver(v2) is False  # already applied: skipped, not doubled
    assert subscriber.deliver(v4) is True
    assert quiet.balances()["G"] == {"balance_fen": 6, "events": 4, "last_version": 4}


def test_catch_up_applies_what_was_missed_once(quiet: Both) -> None:
    quiet.post("/api/v1/sample/ledgers", {"id": "U", "owner": "O", "district": "D1"})
    for amount in range(1, 8):
        quiet.post("/api/v1/sample/ledgers/U/deposits", {"amount_fen": amount})
    subscriber = quiet.subscriber()
    assert subscriber.catch_up(page_size=3) == 8
    assert subscriber.catch_up(page_size=3) == 0
    assert quiet.balances()["U"] == {"balance_fen": 28, "events": 8, "last_version": 8}


def cli_replay(template: str, service: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERGOV_")}
    env.update(CLUSTERGOV_DATABASE_URL=template, CLUSTERGOV_SECRET=SECRET)
    result = subprocess.run(
        [sys.executable, "-m", "shared.cli", "replay", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_replay_rebuilds_inline_projections_from_the_store(database_template: str) -> None:
    system = Both(database_template)
    try:
        system.post("/api/v1/sample/ledgers", {"id": "R1", "owner": "O", "district": "D7"})
        system.post("/api/v1/sample/ledgers", {"id": "R2", "owner": "O", "district": "D7"})
        system.post("/api/v1/sample/ledgers/R1/deposits", {"amount_fen": 40})
        totals = requests.get(system.base + "/api/v1/sample/totals", headers=WRITER).json()
        deadline = time.monotonic() + 10
        while system.balances().get("R1", {}).get("events") != 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        subscribed = system.balances()
    finally:
        system.runner.stop()
    assert totals == {"D7": {"balance_fen": 40, "ledgers": 2}}
    store = EventStore.from_url(database_template.replace("{service}", "sample"), "sample")
    with store.engine.begin() as db:  # the read model is lost, or a bug corrupted it
        db.execute(ledger_totals.update().values(balance_fen=-1))
    assert "3 events re-applied to 1 projection(s)" in cli_replay(
        database_template, "tests.sample:SampleService"
    )
    with store.engine.connect() as db:
        rows = db.execute(select(ledger_totals)).all()
    store.dispose()
    assert [(r.district, r.balance_fen, r.ledgers) for r in rows] == [("D7", 40, 2)]
    # A projection fed by another service's events is not rebuilt from this store.
    assert "0 events re-applied to 0 projection(s)" in cli_replay(
        database_template, "tests.sample_view:LedgerViewService"
    )
    view = EventStore.from_url(database_template.replace("{service}", "ledgerview"), "x")
    with view.engine.connect() as db:
        kept = {r.ledger_id: r.balance_fen for r in db.execute(select(balances))}
    view.dispose()
    assert kept == {k: v["balance_fen"] for k, v in subscribed.items()} == {"R1": 40, "R2": 0}
