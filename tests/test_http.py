"""The HTTP surface of a service, end to end: validation, errors, auth, idempotency, concurrency,
metadata. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import eventlet
import pytest

from shared import auth
from shared.eventstore import EventStore
from tests.conftest import SECRET, Api, new_id

PROBLEM = "application/problem+json"


def open_ledger(api: Api, ledger_id: str | None = None, district: str = "D1", **kw) -> str:
    ledger_id = ledger_id or new_id()
    response = api.post(
        "/api/v1/sample/ledgers",
        {"id": ledger_id, "owner": "Village A", "district": district},
        district=district,
        **kw,
    )
    assert response.status_code == 201, response.text
    return ledger_id


def metric(api: Api, sample: str) -> float:
    """The value of one sample on /metrics (0 when not exported yet)."""
    for line in api.get("/metrics", role=None).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def assert_problem(response, status: int, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if field is not None:
        assert field in body["errors"], body
    return body


def test_command_appends_events_and_answers_with_state(api: Api) -> None:
    ledger_id = open_ledger(api)
    response = api.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": 1500})
    assert response.status_code == 201
    assert response.json() == {
        "id": ledger_id,
        "owner": "Village A",
        "district": "D1",
        "balance_fen": 1500,
        "version": 2,
    }
    assert api.get(f"/api/v1/sample/ledgers/{ledger_id}").json()["balance_fen"] == 1500
    types = [(e["stream_id"], e["version"], e["type"]) for e in api.events()]
    assert types == [(ledger_id, 1, "LedgerOpened"), (ledger_id, 2, "AmountDeposited")]


def test_malformed_json_is_400(api: Api) -> None:
    response = api.session.post(
        api.base + "/api/v1/sample/ledgers",
        data="{not json",
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def test_wrong_content_type_is_400_naming_the_header(api: Api) -> None:
    response = api.session.post(
        api.base + "/api/v1/sample/ledgers",
        data="id=1",
        headers={**api.headers(), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_problem(response, 400, "Content-Type")


def test_invalid_fields_are_422_field_by_field_and_append_nothing(api: Api) -> None:
    response = api.post("/api/v1/sample/ledgers", {"id": "", "district": "D1", "extra": 1})
    body = assert_problem(response, 422)
    assert set(body["errors"]) == {"id", "owner", "extra"}
    ledger_id = open_ledger(api)
    response = api.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": "12"})
    assert_problem(response, 422, "amount_fen")
    response = api.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", [1, 2])
    assert_problem(response, 422, "_schema")
    assert len(api.events()) == 1


def test_broken_invariant_is_422_naming_the_field_and_changes_nothing(api: Api) -> None:
    ledger_id = open_ledger(api)
    api.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": 100})
    response = api.post(f"/api/v1/sample/ledgers/{ledger_id}/withdrawals", {"amount_fen": 101})
    body = assert_problem(response, 422, "amount_fen")
    assert "100" in body["detail"]
    assert api.get(f"/api/v1/sample/ledgers/{ledger_id}").json()["balance_fen"] == 100
    assert len(api.events()) == 2


def test_unknown_aggregate_and_route_are_404(api: Api) -> None:
    assert_problem(api.get("/api/v1/sample/ledgers/nope"), 404)
    assert_problem(api.post("/api/v1/sample/ledgers/nope/deposits", {"amount_fen": 1}), 404)
    assert_problem(api.get("/api/v1/sample/nothing-here"), 404)


def test_wrong_method_is_405(api: Api) -> None:
    response = api.session.delete(api.base + "/api/v1/sample/ledgers", headers=api.headers())
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_creating_twice_is_409_at_once(api: Api) -> None:
    ledger_id = open_ledger(api)
    retries_before = metric(api, 'clustergov_concurrency_retries_total{service="sample"}')
    response = api.post("/api/v1/sample/ledgers", {"id": ledger_id, "owner": "B", "district": "D1"})
    body = assert_problem(response, 409)
    assert "already exists" in body["detail"]
    # Told at the first collision, not after every retry and its back-off.
    retries = metric(api, 'clustergov_concurrency_retries_total{service="sample"}')
    assert retries == retries_before


class TestAuth:
    def test_missing_token_is_401(self, api: Api) -> None:
        response = api.session.post(api.base + "/api/v1/sample/ledgers", json={})
        body = assert_problem(response, 401)
        assert "Bearer" in response.headers["WWW-Authenticate"]
        assert "required" in body["detail"]

    def test_bad_scheme_and_forged_token_are_401(self, api: Api) -> None:
        response = api.session.get(
            api.base + "/api/v1/sample/ledgers/x", headers={"Authorization": "Basic abc"}
        )
        assert_problem(response, 401)
        forged = auth.mint("another-secret-0123456789abcdef0123", role="ops")
        response = api.session.get(
            api.base + "/api/v1/sample/events", headers={"Authorization": f"Bearer {forged}"}
        )
        assert "signature" in assert_problem(response, 401)["detail"].lower()

    def test_expired_token_is_401(self, api: Api) -> None:
        token = auth.mint(SECRET, role="ops", ttl_seconds=60, now=time.time() - 3600)
        response = api.session.get(
            api.base + "/api/v1/sample/events", headers={"Authorization": f"Bearer {token}"}
        )
        assert "expired" in assert_problem(response, 401)["detail"]

    def test_wrong_role_is_403_and_validation_does_not_run_first(self, api: Api) -> None:
        response = api.post("/api/v1/sample/ledgers", {"id": 1}, role="bank")
        assert_problem(response, 403)
        assert_problem(api.get("/api/v1/sample/events", role="village_cadre"), 403)

    def test_out_of_scope_district_is_403_naming_the_scope(self, api: Api) -> None:
        response = api.post(
            "/api/v1/sample/ledgers",
            {"id": new_id(), "owner": "X", "district": "D2"},
            district="D1",
        )
        assert_problem(response, 403, "district")
        ledger_id = open_ledger(api, district="D2")
        response = api.post(
            f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": 5}, district="D1"
        )
        assert_problem(response, 403, "district")
        assert len(api.events()) == 1


class TestIdempotency:
    def test_same_key_and_body_returns_first_answer_and_appends_nothing(self, api: Api) -> None:
        ledger_id = open_ledger(api)
        path = f"/api/v1/sample/ledgers/{ledger_id}/deposits"
        key = {"Idempotency-Key": new_id("key")}
        first = api.post(path, {"amount_fen": 700}, headers=key)
        api.post(path, {"amount_fen": 1})  # another change in between
        again = api.post(path, {"amount_fen": 700}, headers=key)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json() and first.json()["balance_fen"] == 700
        assert again.headers["Idempotent-Replayed"] == "true"
        assert len(api.events()) == 3

    def test_same_key_different_body_is_422(self, api: Api) -> None:
        ledger_id = open_ledger(api)
        path = f"/api/v1/sample/ledgers/{ledger_id}/deposits"
        key = {"Idempotency-Key": "k-1"}
        assert api.post(path, {"amount_fen": 1}, headers=key).status_code == 201
        assert_problem(api.post(path, {"amount_fen": 2}, headers=key), 422, "Idempotency-Key")
        other_path = f"/api/v1/sample/ledgers/{ledger_id}/withdrawals"
        assert_problem(api.post(other_path, {"amount_fen": 1}, headers=key), 422)
        assert len(api.events()) == 2

    def test_keys_belong_to_their_actor(self, api: Api) -> None:
        ledger_id = open_ledger(api)
        path = f"/api/v1/sample/ledgers/{ledger_id}/deposits"
        key = {"Idempotency-Key": "shared-key"}
        assert api.post(path, {"amount_fen": 1}, headers=key, subject="a").status_code == 201
        response = api.post(path, {"amount_fen": 1}, headers=key, subject="b")
        assert response.status_code == 201 and "Idempotent-Replayed" not in response.headers
        assert len(api.events()) == 3

    def test_concurrent_retries_with_one_key_append_once(self, api: Api) -> None:
        ledger_id = open_ledger(api)
        path = f"/api/v1/sample/ledgers/{ledger_id}/deposits"
        key = {"Idempotency-Key": new_id("key")}
        pool = eventlet.GreenPool()
        answers = list(
            pool.imap(lambda _: api.post(path, {"amount_fen": 9}, headers=key), range(8))
        )
        assert {a.status_code for a in answers} == {201}
        assert {a.json()["balance_fen"] for a in answers} == {9}
        assert len(api.events()) == 2

    def test_invalid_key_is_400(self, api: Api) -> None:
        response = api.post("/api/v1/sample/ledgers", {}, headers={"Idempotency-Key": "x" * 201})
        assert_problem(response, 400, "Idempotency-Key")


def test_concurrent_writers_lose_no_update_and_keep_versions_contiguous(api: Api) -> None:
    ledger_id = open_ledger(api)
    path = f"/api/v1/sample/ledgers/{ledger_id}/deposits"
    pool = eventlet.GreenPool(16)
    answers = list(pool.imap(lambda n: api.post(path, {"amount_fen": n}), range(1, 41)))
    accepted = [n for n, a in zip(range(1, 41), answers, strict=True) if a.status_code == 201]
    assert all(a.status_code in (201, 409) for a in answers)
    assert len(accepted) >= 30  # bounded retries absorb ordinary contention
    assert api.get(f"/api/v1/sample/ledgers/{ledger_id}").json()["balance_fen"] == sum(accepted)
    versions = [e["version"] for e in api.events() if e["stream_id"] == ledger_id]
    assert versions == list(range(1, len(accepted) + 2))


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_conflict_after_bounded_retries_is_409(api: Api) -> None:
    # SQLite serialises whole write transactions, so only PostgreSQL can collide.
    ledger_id = open_ledger(api)
    retries_before = metric(api, 'clustergov_concurrency_retries_total{service="sample"}')
    response = api.post(f"/api/v1/sample/ledgers/{ledger_id}/contended", {"amount_fen": 5})
    assert_problem(response, 409)
    events = [e for e in api.events() if e["stream_id"] == ledger_id]
    # every attempt lost to the rival's append; none of ours was stored
    assert [e["data"]["amount_fen"] for e in events[1:]] == [0] * (len(events) - 1)
    assert len(events) - 1 == 8
    retries = metric(api, 'clustergov_concurrency_retries_total{service="sample"}')
    assert retries - retries_before == 8


def test_events_carry_correlation_causation_actor_and_district(api: Api) -> None:
    response = api.post(
        "/api/v1/sample/ledgers",
        {"id": "L-meta", "owner": "O", "district": "D9"},
        headers={"X-Correlation-ID": "corr-123", "X-Request-ID": "req-456"},
        district="D9",
        subject="cadre-7",
    )
    assert response.headers["X-Correlation-ID"] == "corr-123"
    (event,) = api.events()
    assert event["metadata"] == {
        "correlation_id": "corr-123",
        "causation_id": "req-456",
        "actor": "cadre-7",
        "district": "D9",
    }
    assert event["occurred_at"].endswith("+00:00")
    open_ledger(api)
    generated = api.events()[-1]["metadata"]["correlation_id"]
    assert len(generated) == 36 and generated != "corr-123"


def test_snapshots_do_not_change_what_a_reader_sees(api: Api) -> None:
    ledger_id = open_ledger(api)
    for _ in range(12):
        api.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": 10})
    api.post(f"/api/v1/sample/ledgers/{ledger_id}/withdrawals", {"amount_fen": 25})
    state = api.get(f"/api/v1/sample/ledgers/{ledger_id}").json()
    assert state["balance_fen"] == 95 and state["version"] == 14
    store = EventStore.from_url(api.database_url, "sample")
    assert store.load_snapshot(ledger_id).version == 10
    store.dispose()


def test_notification_log_pages_in_order_and_filters_a_stream(api: Api) -> None:
    first, second = open_ledger(api), open_ledger(api)
    for ledger in (first, second, first):
        api.post(f"/api/v1/sample/ledgers/{ledger}/deposits", {"amount_fen": 3})
    pages, after = [], 0
    while True:
        body = api.get(f"/api/v1/sample/events?after={after}&limit=2", role="service").json()
        if not body["events"]:
            break
        pages.append([e["stream_id"] for e in body["events"]])
        after = body["next_after"]
    assert pages == [[first, second], [first, second], [first]]
    stream = api.get(f"/api/v1/sample/events?stream_id={first}&after_version=1", role="ops").json()
    assert [(e["version"], e["type"]) for e in stream["events"]] == [
        (2, "AmountDeposited"),
        (3, "AmountDeposited"),
    ]
    assert_problem(api.get("/api/v1/sample/events?limit=0", role="ops"), 422, "limit")
    assert_problem(api.get("/api/v1/sample/events?after=x", role="ops"), 422, "after")


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_commands_survive_the_database_dropping_every_connection(api: Api) -> None:
    """What a database restart does to a connection pool: every pooled connection is dead."""
    ledger_id = open_ledger(api)
    database = api.database_url.rsplit("/", 1)[1]
    store = EventStore.from_url(api.database_url.rsplit("/", 1)[0] + "/postgres", "admin")
    with store.engine.connect() as admin:
        terminated = admin.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()"
        ).scalar_one()
    store.dispose()
    assert terminated >= 1
    response = api.post(f"/api/v1/sample/ledgers/{ledger_id}/deposits", {"amount_fen": 8})
    assert response.status_code == 201, response.text
    assert api.get(f"/api/v1/sample/ledgers/{ledger_id}").json()["balance_fen"] == 8
