"""The operational surface: health, readiness, metrics, OpenAPI, logs."""

from __future__ import annotations

import io
import json
import logging
import time

import eventlet
import pytest
from openapi_spec_validator import validate

from shared import logs
from tests import sample
from tests.conftest import Api, new_id


@pytest.fixture
def backend() -> str:
    return "sqlite"  # the surface is the same on both databases


def test_healthz_readyz_and_metrics_answer_while_every_worker_is_busy(api: Api) -> None:
    held = [eventlet.spawn(api.post, "/api/v1/sample/hold") for _ in range(4)]  # max_workers=4
    eventlet.sleep(0.3)
    try:
        started = time.perf_counter()
        assert api.get("/healthz", role=None).json() == {"status": "ok"}
        ready = api.get("/readyz", role=None)
        assert ready.status_code == 200 and ready.json()["checks"]["sample.database"].startswith(
            "ok"
        )
        assert "clustergov_http_request_duration_seconds" in api.get("/metrics", role=None).text
        assert time.perf_counter() - started < 5
        # a command, by contrast, has to wait for a worker
        waiting = eventlet.spawn(api.get, "/api/v1/sample/ledgers/none")
        eventlet.sleep(0.3)
        assert not waiting.dead
    finally:
        sample.release.send()
    assert [g.wait().status_code for g in held] == [200] * 4
    assert waiting.wait().status_code == 404
    sample.release.reset()


def test_readyz_reports_an_unreachable_database(api: Api, tmp_path) -> None:
    from shared.web import FrontDoor, bind_address

    door = FrontDoor.at(bind_address(api.base.removeprefix("http://")))
    door.add_probe("other.database", lambda: "connection refused")
    response = api.get("/readyz", role=None)
    assert response.status_code == 503
    assert response.json()["checks"]["other.database"] == "connection refused"
    del door.probes["other.database"]


def test_metrics_count_commands_by_outcome_and_events_appended(api: Api) -> None:
    ledger_id = new_id()
    api.post("/api/v1/sample/ledgers", {"id": ledger_id, "owner": "O", "district": "D1"})
    api.post(f"/api/v1/sample/ledgers/{ledger_id}/withdrawals", {"amount_fen": 5})
    text = api.get("/metrics", role=None).text
    assert 'clustergov_commands_total{endpoint="open_ledger",outcome="ok",service="sample"}' in text
    assert (
        'clustergov_commands_total{endpoint="withdraw",outcome="client_error",service="sample"}'
        in text
    )
    assert 'clustergov_events_appended_total{service="sample",type="LedgerOpened"}' in text
    assert 'clustergov_event_store_append_seconds_count{service="sample"}' in text


def test_openapi_is_valid_and_generated_from_the_schemas(api: Api) -> None:
    spec = api.get("/api/v1/sample/openapi.json", role=None).json()
    validate(spec)
    deposit = spec["paths"]["/api/v1/sample/ledgers/{ledger_id}/deposits"]["post"]
    body = deposit["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/Amount"}
    assert spec["components"]["schemas"]["Amount"]["required"] == ["amount_fen"]
    assert any(p["name"] == "Idempotency-Key" for p in deposit["parameters"])
    assert {"401", "403", "409", "422"} <= set(deposit["responses"])
    assert "/api/v1/sample/events" in spec["paths"]


def test_log_lines_are_json_with_the_correlation_id(api: Api) -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("INFO", stream)
    try:
        api.post(
            "/api/v1/sample/ledgers",
            {"id": "L-log", "owner": "O", "district": "D1"},
            headers={"X-Correlation-ID": "corr-log-1"},
        )
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    opening = [line for line in lines if line["message"] == "opening ledger L-log"]
    assert opening and opening[0]["correlation_id"] == "corr-log-1"
    assert opening[0]["service"] == "sample" and opening[0]["level"] == "INFO"
