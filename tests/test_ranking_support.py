"""Stand-ins for the services the ranking service consumes, for its tests.

Each stub is a nameko service named after the real one ("land", "commerce", ...) with one
endpoint that appends a raw event of the contract's shape (docs/events/README.md) to its own
event store; the relay, the broker and the ranking service's consumers do the rest, exactly as
with the real producer. No event classes are declared (the registry is process-wide).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from typing import Any

from shared.eventstore import NewEvent
from shared.http import command
from shared.service import ServiceBase
from tests.conftest import Api

DISTRICT = "D1"


def producer(source: str) -> type:
    class Producer(ServiceBase):
        name = source

        @command("POST", "/api/v1/{service}/test-events", roles=["ops"], status=201)
        def record(self, request: Any) -> dict[str, Any]:
            """Append one raw event (type, stream_id, data) to this stub's store."""
            body = json.loads(request.get_data())
            events = self.store.events
            with events.transaction() as tx:
                version = events.stream_version(body["stream_id"], tx.connection)
                recorded = events.append(
                    tx,
                    [
                        NewEvent(
                            body.get("stream_type", "Test"),
                            body["stream_id"],
                            version + 1,
                            body["type"],
                            body["data"],
                            metadata={"district": DISTRICT, "actor": "stub"},
                        )
                    ],
                )
            return recorded[0].envelope()

    Producer.__name__ = Producer.__qualname__ = f"Stub{source.capitalize()}"
    return Producer


StubAlliance = producer("alliance")
StubLand = producer("land")
StubCommerce = producer("commerce")
StubFinance = producer("finance")
StubTrusteeship = producer("trusteeship")
STUBS = (StubAlliance, StubLand, StubCommerce)


def emit(api: Api, source: str, type_: str, stream_id: str, **data: Any) -> dict[str, Any]:
    response = api.post(
        f"/api/v1/{source}/test-events",
        {"type": type_, "stream_id": stream_id, "data": data},
        role="ops",
    )
    assert response.status_code == 201, response.text
    return response.json()


def cluster(api: Api, cluster_id: str, name: str) -> None:
    emit(
        api,
        "alliance",
        "ClusterFormed",
        cluster_id,
        cluster_id=cluster_id,
        alliance_id="A1",
        district=DISTRICT,
        name=name,
        theme_industry="茶叶",
        lead_unit_id=None,
    )


def village(api: Api, village_id: str, name: str, population: int = 100, weak: bool = False):
    emit(
        api,
        "alliance",
        "MemberUnitRegistered",
        village_id,
        unit_id=village_id,
        district=DISTRICT,
        name=name,
        unit_type="village",
        village={
            "population": population,
            "households": population // 3,
            "contracted_area_mu": "1000.00",
            "weak": weak,
        },
        bank_code=None,
    )


def join(api: Api, village_id: str, cluster_id: str, on: str = "2020-01-01") -> None:
    emit(
        api,
        "alliance",
        "MemberJoined",
        village_id,
        unit_id=village_id,
        cluster_id=cluster_id,
        alliance_id="A1",
        unit_type="village",
        joined_on=on,
    )


def leave(api: Api, village_id: str, cluster_id: str, on: str) -> None:
    emit(
        api,
        "alliance",
        "MemberLeft",
        village_id,
        unit_id=village_id,
        cluster_id=cluster_id,
        alliance_id="A1",
        unit_type="village",
        left_on=on,
    )


def signed(api: Api, contract_id: str, village_id: str, area_mu: str, on: date) -> dict:
    return emit(
        api,
        "land",
        "TransferContractSigned",
        contract_id,
        contract_id=contract_id,
        parcel_id=f"P-{contract_id}",
        village_id=village_id,
        district=DISTRICT,
        transferee_id="E1",
        transferee_type="enterprise",
        area_mu=area_mu,
        starts_on=on.isoformat(),
        ends_on="2036-01-01",
        rent_fen_per_mu_year=80000,
        signed_on=on.isoformat(),
    )


def terminated(api: Api, contract_id: str, village_id: str, area_mu: str, on: date) -> dict:
    return emit(
        api,
        "land",
        "ContractTerminated",
        contract_id,
        contract_id=contract_id,
        parcel_id=f"P-{contract_id}",
        village_id=village_id,
        area_mu=area_mu,
        reason="mutual",
        terminated_on=on.isoformat(),
    )


def paid(api: Api, order_id: str, lines: list[tuple[str, int]], at: str) -> dict:
    return emit(
        api,
        "commerce",
        "OrderPaid",
        order_id,
        order_id=order_id,
        shop_id="S1",
        live_session_id=None,
        total_fen=sum(amount for _, amount in lines),
        paid_at=at,
        lines=[
            {
                "line_id": f"{order_id}-{n}",
                "product_id": "tea",
                "producer_id": "H1",
                "producer_type": "household",
                "village_id": village_id,
                "quantity": 1,
                "amount_fen": amount,
            }
            for n, (village_id, amount) in enumerate(lines)
        ],
    )


def competition_rules(**overrides: Any) -> dict[str, Any]:
    rules = {
        "entity": "cluster",
        "indicators": [
            {"key": "land", "name": "土地流转", "source": "land_transferred_mu", "weight": "0.6"},
            {"key": "gmv", "name": "电商销售", "source": "gmv_fen", "weight": "0.4"},
        ],
        "windows": ["month", "all"],
        "top_n": 10,
        "colours": {"red_bottom": 1},
    }
    rules.update(overrides)
    return rules


def define(api: Api, competition_id: str, rules: dict | None = None, name: str = "组团比拼"):
    response = api.post(
        "/api/v1/ranking/competitions",
        {
            "id": competition_id,
            "name": name,
            "district": DISTRICT,
            "rules": rules or competition_rules(),
        },
        role="district_admin",
        district=DISTRICT,
    )
    assert response.status_code == 201, response.text
    return response.json()


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except AssertionError as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def wait_active(api: Api, competition_id: str, version: int = 1) -> None:
    def shown() -> bool:
        response = api.get(f"/api/v1/ranking/competitions/{competition_id}", role="ops")
        return response.ok and response.json()["active_version"] == version

    wait_for(shown, what=f"{competition_id} version {version} to be shown")


def board(api: Api, competition_id: str, **params: Any) -> dict[str, Any]:
    response = api.get(
        f"/api/v1/ranking/competitions/{competition_id}/board", role="ops", params=params
    )
    assert response.status_code == 200, response.text
    return response.json()


def scores(body: dict[str, Any]) -> list[tuple[int, str, str]]:
    return [(r["rank"], r["entity_id"], r["score"]) for r in body["rows"]]


def wait_board(api: Api, competition_id: str, expected: list, **params: Any) -> dict:
    return wait_for(
        lambda: (b := board(api, competition_id, **params)) and scores(b) == expected and b,
        what=f"board {expected}",
    )


def district_of_three(api: Api) -> None:
    """Clusters c1, c2, c3; villages v1 (c1), v2 and v3 (c2), v4 (c3)."""
    for cid, name in (("c1", "茶香组团"), ("c2", "稻香组团"), ("c3", "果香组团")):
        cluster(api, cid, name)
    for vid, cid, people in (
        ("v1", "c1", 100),
        ("v2", "c2", 200),
        ("v3", "c2", 100),
        ("v4", "c3", 50),
    ):
        village(api, vid, f"{vid}村", people)
        join(api, vid, cid)
