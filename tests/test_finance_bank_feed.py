"""The bank feed on the real RabbitMQ: a provisioned bank consumes its own queue with its own
credentials (the example consumer), gets exactly its own events in order per loan, in the
documented envelope, and is refused another bank's queue. The catch-up API is bank-scoped."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

import amqp
import jsonschema
import pytest

from examples.bank_consumer import EventStore, consume
from services.finance import bank_feed
from services.finance.events import LOAN_EVENTS
from tests.conftest import captured_events
from tests.test_finance_world import build_world, created

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events"


def schema(kind: str, type_: str) -> dict:
    return json.loads((DOCS / kind / f"{type_}.json").read_text(encoding="utf-8"))


def bank_uri(broker: str, user: str, password: str) -> str:
    return broker.replace("guest:guest@", f"{user}:{password}@")


def test_bank_feed_contract_is_current():
    assert bank_feed.stale() == []


@pytest.fixture
def bank_codes(broker):
    """Two fresh bank codes; their broker users (global, not per vhost) are removed after."""
    suffix = uuid.uuid4().hex[:6]
    codes = (f"A{suffix}", f"B{suffix}")
    yield codes
    api, _ = bank_feed.management_for(broker)
    for code in codes:
        api.call("DELETE", f"/api/users/bank-{code}")


def test_each_bank_gets_exactly_its_own_events_in_order(
    start_services, broker, bank_codes, tmp_path
):
    code_a, code_b = bank_codes
    bank_a = bank_feed.provision(broker, code_a)
    bank_b = bank_feed.provision(broker, code_b)
    assert bank_a.password and bank_b.password
    again = bank_feed.provision(broker, code_a)  # idempotent, the password is not reset
    assert again.password is None and again.queue == f"bank.{code_a}"
    rotated = bank_feed.provision(broker, code_b, rotate=True)
    assert rotated.password and rotated.password != bank_b.password
    bank_b = rotated
    world = build_world(start_services, banks=bank_codes, amqp_uri=broker)
    with captured_events(broker, "finance", "LoanDisbursed") as take:
        world.fund()
        world.scheme()
        world.product()
        world.disbursed("LA1", bank=code_a)
        world.disbursed("LB1", bank=code_b, borrower_id="B-2")
        created(world.bank(code_a, "/loans/LA1/repayments", {"id": "R1", "principal_fen": 5}))
        world.disbursed("LA2", bank=code_a, borrower_id="B-3")
        created(world.bank(code_a, "/loans/LA1/repayments", {"id": "R2", "principal_fen": 7}))
        for envelope in take(3):  # finance.events carries the documented envelope too
            jsonschema.validate(envelope, schema("finance", "LoanDisbursed"))
    logged = [e for e in world.finance_events() if e["type"] in LOAN_EVENTS]
    expected = {
        code: [e["event_id"] for e in logged if e["data"]["bank_code"] == code]
        for code in bank_codes
    }

    store = EventStore(str(tmp_path / "bank-a.sqlite3"))
    deadline = time.monotonic() + 20
    consume(
        bank_uri(broker, bank_a.username, bank_a.password),
        code_a,
        store,
        until=lambda: len(store.events()) >= len(expected[code_a]) or time.monotonic() > deadline,
        idle_timeout=0.2,
    )
    received = store.events()
    assert [e["event_id"] for e in received] == expected[code_a]
    for envelope in received:
        jsonschema.validate(envelope, schema("bank-feed", envelope["event_type"]))
    per_loan = {}
    for envelope in received:
        per_loan.setdefault(envelope["loan_id"], []).append(envelope["stream_version"])
    assert all(versions == sorted(versions) for versions in per_loan.values())
    assert per_loan["LA1"][:4] == [1, 2, 3, 4]

    with pytest.raises(amqp.exceptions.AccessRefused):
        consume(
            bank_uri(broker, bank_a.username, bank_a.password),
            code_a,
            store,
            queue=f"bank.{code_b}",
            until=lambda: True,
        )

    # Offline catch-up: bank B's token pages only bank B's events.
    page = world.get("/api/v1/finance/bank-feed", role="bank", bank=code_b).json()
    assert [e["event_id"] for e in page["events"]] == expected[code_b]
    first = world.get(
        "/api/v1/finance/bank-feed", role="bank", bank=code_a, params={"limit": 2}
    ).json()
    rest = world.get(
        "/api/v1/finance/bank-feed",
        role="bank",
        bank=code_a,
        params={"after": first["next_after"]},
    ).json()
    assert [e["event_id"] for e in first["events"] + rest["events"]] == expected[code_a]
    no_bank = world.get("/api/v1/finance/bank-feed", role="bank")
    assert no_bank.status_code == 403


def test_the_management_url_is_configurable():
    from shared.config import Settings

    amqp = "amqp://app:secret@rabbit:5672/district%2Fone"
    derived, vhost = bank_feed.management_for(amqp)
    assert (derived.base_url, vhost) == ("http://rabbit:15672", "district/one")
    given = Settings.from_env(
        {"CLUSTERGOV_RABBITMQ_MANAGEMENT_URL": "https://admin:p%40ss@mq.example:443/rabbit/"}
    ).rabbitmq_management_url
    api, _ = bank_feed.management_for(amqp, given)
    assert api.base_url == "https://mq.example:443/rabbit"  # no credentials in the URL
    assert api.auth == "Basic " + base64.b64encode(b"admin:p@ss").decode()
    plain, _ = bank_feed.management_for(amqp, "http://mq:15672/")
    assert plain.auth == "Basic " + base64.b64encode(b"app:secret").decode()
    assert Settings.from_env({}).rabbitmq_management_url is None
    with pytest.raises(bank_feed.ProvisionError):
        bank_feed.management_for(amqp, "mq:15672")
