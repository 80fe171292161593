"""Exactly-once fed income through the real RabbitMQ: a land RentPaid the broker delivers
again is skipped by the inbox, the collective's income does not change, the metric counts it."""

from __future__ import annotations

import json
from typing import Any

from kombu import Connection

from shared import amqp
from tests.conftest import captured_events
from tests.test_finance_world import StubLand, World, build_world, wait_for


def _rent_paid(world: World, invoice_id: str, village_id: str, collective_fen: int) -> str:
    return world.raw(
        "land",
        "RentInvoice",
        invoice_id,
        "RentPaid",
        {
            "invoice_id": invoice_id,
            "contract_id": "TC1",
            "village_id": village_id,
            "amount_fen": collective_fen * 3,
            "shares": [
                {"payee_id": "H1", "payee_type": "household", "amount_fen": collective_fen * 2},
                {"payee_id": village_id, "payee_type": "collective", "amount_fen": collective_fen},
            ],
            "paid_on": "2026-03-02",
        },
    )


def _skipped(world: World) -> float:
    text = world.api.get("/metrics", role=None).text
    for line in text.splitlines():
        if (
            line.startswith("clustergov_events_skipped_total")
            and 'service="finance"' in line
            and "on_land_event" in line
        ):
            return float(line.split()[-1])
    return 0.0


def test_a_redelivered_rent_payment_is_income_once(start_services: Any, broker: str) -> None:
    world = build_world(start_services, StubLand, amqp_uri=broker)
    village = world.villages[0]

    def income() -> dict[str, Any]:
        path = f"/api/v1/finance/collective/villages/{village}"
        response = world.get(path, role="village_cadre", village=village)
        assert response.status_code == 200, response.text
        return response.json()

    with captured_events(broker, "land", "RentPaid") as take:
        first = _rent_paid(world, "INV-1", village, 30_000)
        envelope = take(1)[0]
    assert str(envelope["event_id"]) == first
    wait_for(lambda: income()["income_fen"] == 30_000, what="the rent as collective income")
    skipped_before = _skipped(world)

    body = json.dumps(envelope).encode()
    with Connection(broker) as connection:
        for _ in range(2):  # the broker delivers the same message again, twice
            amqp.publish_raw(connection, body, exchange="land.events", routing_key="RentPaid")
    _rent_paid(world, "INV-2", village, 5_000)  # a new payment behind the duplicates

    wait_for(lambda: _skipped(world) >= skipped_before + 2, what="the duplicates skipped")
    wait_for(lambda: income()["income_fen"] == 35_000, what="the second payment")
    seen = income()
    assert seen["income_fen"] == 35_000
    assert seen["income_by_source"] == {"land": 35_000}
    fed = [e for e in seen["entries"] if e["source_event_id"] == first]
    assert len(fed) == 1 and fed[0]["amount_fen"] == 30_000
    assert len(seen["entries"]) == 2

    def recorded() -> list[dict[str, Any]]:
        return [e for e in world.finance_events() if e["type"] == "IncomeRecorded"]

    wait_for(lambda: len(recorded()) >= 2, what="the income events in the log")
    assert len(recorded()) == 2
