"""The `clustergov` command as an operator uses it: token, migrate, up (embedded and on real
infrastructure), clean shutdown, and the production secret check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from shared import auth
from shared.config import DEVELOPMENT_SECRET
from tests.conftest import AMQP_URI, free_port, fresh_postgres_database

CLI = [sys.executable, "-m", "shared.cli"]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERGOV_")}
    env["CLUSTERGOV_VAR_DIR"] = str(tmp_path / "var")
    env.update(extra)
    return env


def wait_ready(base: str, process: subprocess.Popen, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        try:
            response = requests.get(base + "/readyz", timeout=2)
            if response.status_code == 200:
                return response.json()
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError("service did not become ready")


def stop(process: subprocess.Popen) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=30)
    return code, time.monotonic() - started


def test_token_mints_a_scoped_expiring_token(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "token", "--role", "bank", "--bank", "NSB01", "--district", "D1", "--ttl", "60"],
        env=clean_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
    )
    principal = auth.verify(DEVELOPMENT_SECRET, out.stdout.strip())
    assert (principal.role, principal.bank, principal.district) == ("bank", "NSB01", "D1")
    assert 55 <= principal.expires_at - time.time() <= 60


def test_production_refuses_the_development_secret(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "up", "--services", "land"],
        env=clean_env(tmp_path, CLUSTERGOV_ENV="production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "refusing to start" in result.stderr and "CLUSTERGOV_SECRET" in result.stderr


def test_up_embedded_runs_one_service_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*CLI, "up", "--services", "land"],
        env=clean_env(tmp_path, CLUSTERGOV_HTTP_ADDRESS=f"127.0.0.1:{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        ready = wait_ready(base, process)
        assert list(ready["checks"]) == ["land.database"]
        assert (tmp_path / "var" / "land.db").exists()
        assert not (tmp_path / "var" / "finance.db").exists()
        token = auth.mint(DEVELOPMENT_SECRET, role="ops")
        page = requests.get(
            base + "/api/v1/land/events", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )
        assert page.json() == {"events": [], "next_after": 0}
        assert requests.get(base + "/api/v1/finance/events", timeout=5).status_code == 404
    finally:
        code, seconds = stop(process)
    assert code == 0 and seconds < 10


@pytest.mark.rabbitmq
def test_up_on_rabbitmq_and_postgresql(tmp_path: Path, postgres_server: str) -> None:
    database = fresh_postgres_database(postgres_server, "clustergov_cli_finance")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = clean_env(
        tmp_path,
        CLUSTERGOV_HTTP_ADDRESS=f"127.0.0.1:{port}",
        CLUSTERGOV_AMQP_URI=AMQP_URI,
        CLUSTERGOV_DATABASE_URL=database.replace("finance", "{service}"),
    )
    migrate = subprocess.run(
        [*CLI, "migrate", "--services", "finance"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert migrate.returncode == 0, migrate.stderr
    process = subprocess.Popen(
        [*CLI, "up", "--services", "finance"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        checks = wait_ready(base, process)["checks"]
        assert set(checks) == {"finance.database", "broker"}
    finally:
        code, _ = stop(process)
    assert code == 0


@pytest.mark.rabbitmq
def test_relay_process_publishes_for_api_processes_that_do_not(
    tmp_path: Path, postgres_server: str, broker: str
) -> None:
    """docker-compose's layout: API containers with CLUSTERGOV_RELAY=off, one `clustergov relay`."""
    from tests.conftest import SECRET, captured_events

    database = fresh_postgres_database(postgres_server, "clustergov_cli_sample")
    api_port, relay_port = free_port(), free_port()
    common = {
        "CLUSTERGOV_AMQP_URI": broker,
        "CLUSTERGOV_DATABASE_URL": database.replace("sample", "{service}"),
        "CLUSTERGOV_SECRET": SECRET,
    }
    api = subprocess.Popen(
        [*CLI, "up", "--services", "tests.sample:SampleService"],
        env=clean_env(
            tmp_path,
            **common,
            CLUSTERGOV_RELAY="off",
            CLUSTERGOV_HTTP_ADDRESS=f"127.0.0.1:{api_port}",
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    relay = None
    try:
        base = f"http://127.0.0.1:{api_port}"
        wait_ready(base, api)
        writer = {"Authorization": "Bearer " + auth.mint(SECRET, role="village_cadre")}
        with captured_events(broker, "sample") as take:
            opened = requests.post(
                base + "/api/v1/sample/ledgers",
                json={"id": "L-relay", "owner": "o", "district": "D1"},
                headers=writer,
                timeout=10,
            )
            assert opened.status_code == 201, opened.text
            with pytest.raises(AssertionError, match="0 of 1"):
                take(1, timeout=1.5)  # nobody relays yet
            relay = subprocess.Popen(
                [*CLI, "relay", "--services", "tests.sample:SampleService"],
                env=clean_env(
                    tmp_path, **common, CLUSTERGOV_HTTP_ADDRESS=f"127.0.0.1:{relay_port}"
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            checks = wait_ready(f"http://127.0.0.1:{relay_port}", relay)["checks"]
            assert set(checks) == {"broker", "sample.database"}
            (message,) = take(1, timeout=15)
            assert (message["type"], message["stream_id"]) == ("LedgerOpened", "L-relay")
        code, _ = stop(relay)
        assert code == 0
    finally:
        if relay is not None and relay.poll() is None:
            relay.kill()
        stop(api)


def test_relay_refuses_the_embedded_broker(tmp_path: Path) -> None:
    out = subprocess.run(
        [*CLI, "relay"], env=clean_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "CLUSTERGOV_AMQP_URI" in out.stderr


def test_a_refused_command_is_not_logged_as_an_error(tmp_path: Path) -> None:
    """A 4xx is an answer: the process log keeps its errors for real failures."""
    from tests.conftest import SECRET

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*CLI, "up", "--services", "tests.sample:SampleService"],
        env=clean_env(
            tmp_path, CLUSTERGOV_HTTP_ADDRESS=f"127.0.0.1:{port}", CLUSTERGOV_SECRET=SECRET
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_ready(base, process)
        writer = {"Authorization": "Bearer " + auth.mint(SECRET, role="village_cadre")}
        opened = requests.post(
            base + "/api/v1/sample/ledgers",
            json={"id": "L-log", "owner": "o", "district": "D1"},
            headers=writer,
            timeout=10,
        )
        assert opened.status_code == 201, opened.text
        refused = requests.post(
            base + "/api/v1/sample/ledgers/L-log/withdrawals",
            json={"amount_fen": 5},
            headers=writer,
            timeout=10,
        )
        assert refused.status_code == 422, refused.text
    finally:
        code, _ = stop(process)
    log = process.stderr.read().decode()
    assert code == 0
    assert '"level": "ERROR"' not in log and "Traceback" not in log, log[-2000:]
