"""The demo district, through the real processes and their HTTP API: the set-up fills every
service and the clusters' board, a second set-up appends nothing, the stream keeps facts coming,
and `clustergov up --demo` serves the screen with a filling board."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from demo.client import Client
from demo.district import DISTRICT, generate
from demo.driver import setup, step, sweep
from demo.ranking import CLUSTER_RACE
from services import service_class
from shared import auth
from shared.config import DEVELOPMENT_SECRET, SERVICES
from tests.conftest import SECRET, free_port

ALL = [service_class(name) for name in SERVICES]
#: event types that show each kind of fact arrived
FACTS = {
    "alliance": {"ActivityRecorded", "TaskProgressReported", "TaskVerified"},
    "land": {"TransferContractSigned"},
    "trusteeship": {"WorkAccepted", "ServiceFeeSettled"},
    "finance": {"LoanDisbursed", "IncomeRecorded"},
    "commerce": {"OrderPaid"},
}


def count_events(api: Client) -> dict[str, int]:
    counts = {}
    for service in SERVICES:
        found, after = 0, 0
        while True:
            page = api.get(f"/api/v1/{service}/events?after={after}&limit=1000")
            found += len(page["events"])
            if len(page["events"]) < 1000:
                break
            after = page["next_after"]
        counts[service] = found
    return counts


def event_types(api: Client, service: str) -> set[str]:
    types, after = set(), 0
    while True:
        page = api.get(f"/api/v1/{service}/events?after={after}&limit=1000")
        types |= {e["type"] for e in page["events"]}
        if len(page["events"]) < 1000:
            return types
        after = page["next_after"]


def wait_board(get: Any, clusters: int = 7, timeout: float = 30) -> list[dict[str, Any]]:
    """The year board once every cluster has a score and the scores differ."""
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        rows = get()
        if len(rows) == clusters and len({r["score"] for r in rows}) > 1:
            return rows
        time.sleep(0.3)
    raise AssertionError(f"the board did not fill: {rows}")


def board_of(api: Client) -> Any:
    return lambda: api.get(f"/api/v1/ranking/competitions/{CLUSTER_RACE}/board?window=year")["rows"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_demo_fills_every_service_and_the_board_and_a_second_setup_appends_nothing(
    start_services: Any,
) -> None:
    base = start_services(*ALL, max_workers=16).base
    api = Client(base, SECRET, DISTRICT)
    district = generate(villages_per_cluster=2)
    demo = setup(api, district)
    rows = wait_board(board_of(api))
    assert {r["entity_id"] for r in rows} == {c for c in {v.cluster_id for v in district.villages}}
    for service, expected in FACTS.items():
        assert expected <= event_types(api, service), service

    time.sleep(1)  # let the handlers of other services settle
    before = count_events(api)
    setup(api, district)
    time.sleep(1)
    assert count_events(api) == before

    sweep(demo)
    kinds = {step(demo) for _ in range(40)}
    assert len(kinds) >= 6
    after = count_events(api)
    assert sum(after.values()) > sum(before.values()) + 30


@pytest.mark.parametrize("backend", ["postgres"])
def test_demo_on_rabbitmq_and_postgresql(start_services: Any, broker: str) -> None:
    base = start_services(*ALL, amqp_uri=broker, max_workers=16).base
    api = Client(base, SECRET, DISTRICT)
    demo = setup(api, generate(villages_per_cluster=2))
    wait_board(board_of(api), timeout=60)
    for _ in range(10):
        step(demo)


def test_up_with_demo_serves_the_screen_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERGOV_")}
    env |= {
        "CLUSTERGOV_VAR_DIR": str(tmp_path / "var"),
        "CLUSTERGOV_HTTP_ADDRESS": f"127.0.0.1:{port}",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "up", "--demo", "--demo-interval", "0.2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        token = auth.mint(DEVELOPMENT_SECRET, role="ops", subject="test")
        headers = {"Authorization": f"Bearer {token}"}

        def rows() -> list[dict[str, Any]]:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                response = requests.get(
                    f"{base}/api/v1/ranking/competitions/{CLUSTER_RACE}/board?window=year",
                    headers=headers,
                    timeout=5,
                )
            except requests.ConnectionError:
                return []
            return response.json()["rows"] if response.status_code == 200 else []

        wait_board(rows, timeout=90)
        screen = requests.get(f"{base}/screen/{CLUSTER_RACE}", timeout=5)
        assert screen.status_code == 200 and "<html" in screen.text.lower()
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    log = process.stderr.read().decode() + process.stdout.read().decode()
    assert code == 0, log[-3000:]
    assert f"screen: {base}/screen/{CLUSTER_RACE}#token=" in log
    printed = log.split(f"/screen/{CLUSTER_RACE}#token=", 1)[1].split('"', 1)[0]
    principal = auth.verify(DEVELOPMENT_SECRET, printed)
    assert principal.role == "screen", "the printed token only reads boards"
    assert principal.expires_at - time.time() > 300 * 24 * 3600, "a wall display runs for months"
