"""The commerce service over HTTP: shops, products, orders through their whole life, refunds,
after-sale windows, producer settlement, live sessions and the contract events.

The villages come from the alliance service's HTTP API, through the directory every service
keeps; helpers here are shared by the other tests/test_commerce_*.py files.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from services.alliance.service import AllianceService
from services.commerce.service import CommerceService
from shared import contracts
from tests.conftest import Api, captured_events, new_id

C = "/api/v1/commerce"
DOCS = Path(__file__).resolve().parent.parent / "docs" / "events" / "commerce"
DISTRICT = "D-east"
MERCHANT = {"role": "merchant", "district": DISTRICT}
OPS = {"role": "ops"}


# -- helpers ---------------------------------------------------------------------------------------


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return response.json()


def rejected(response: Any, field: str, status: int = 422) -> dict[str, Any]:
    """A refusal naming the field at fault."""
    assert response.status_code == status, response.text
    body = response.json()
    assert field in body.get("errors", {}), body
    return body


def eventually(check: Any, timeout: float = 15) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@dataclass
class Place:
    """A district with two clusters and a village in each, known to the commerce service."""

    alliance: str
    east: str
    west: str
    tea_village: str  # in the east cluster
    fruit_village: str  # in the west cluster


def admin(api: Api, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return created(api.post(path, body, role="district_admin", district=DISTRICT))


def register_village(api: Api, cluster: str, joined_on: str = "2024-01-01") -> str:
    village = new_id("V")
    facts = {"population": 1200, "households": 400, "contracted_area_mu": "3000.00", "weak": True}
    admin(
        api,
        "/api/v1/alliance/units",
        {
            "id": village,
            "district": DISTRICT,
            "name": f"village {village}",
            "unit_type": "village",
            "village": facts,
        },
    )
    admin(
        api,
        f"/api/v1/alliance/units/{village}/memberships",
        {"cluster_id": cluster, "joined_on": joined_on},
    )
    return village


def await_villages(api: Api, *villages: str) -> None:
    """Wait until the commerce service's directory has the villages."""
    for village in villages:

        def arrived(village: str = village) -> None:
            response = api.get(f"{C}/directory/villages/{village}", role="ops")
            assert response.status_code == 200, response.text
            assert response.json()["cluster_id"] is not None

        eventually(arrived)


def set_up_place(api: Api) -> Place:
    alliance = new_id("A")
    admin(
        api,
        "/api/v1/alliance/alliances",
        {"id": alliance, "district": DISTRICT, "name": "红盟", "level": "district"},
    )
    east, west = new_id("CL"), new_id("CL")
    for cluster in (east, west):
        admin(
            api,
            "/api/v1/alliance/clusters",
            {"id": cluster, "alliance_id": alliance, "name": cluster, "theme_industry": "tea"},
        )
    tea, fruit = register_village(api, east), register_village(api, west)
    await_villages(api, tea, fruit)
    return Place(alliance, east, west, tea, fruit)


def open_shop(api: Api, **overrides: Any) -> str:
    shop = overrides.pop("id", None) or new_id("S")
    body = {
        "id": shop,
        "district": DISTRICT,
        "name": "共富集市 station",
        "channel": "own_station",
        "commission_rate_bp": 500,
        "after_sale_days": 7,
        **overrides,
    }
    created(api.post(f"{C}/shops", body, **MERCHANT))
    return shop


def list_product(api: Api, shop: str, village: str, **overrides: Any) -> str:
    product = overrides.pop("id", None) or new_id("P")
    body = {
        "id": product,
        "shop_id": shop,
        "name": "明前龙井 250g",
        "village_id": village,
        "producer_id": overrides.pop("producer_id", new_id("H")),
        "producer_type": "household",
        "price_fen": 12_800,
        "stock": 100,
        **overrides,
    }
    created(api.post(f"{C}/products", body, **MERCHANT))
    return product


def place_order(
    api: Api, shop: str, lines: list[tuple[str, int]], **overrides: Any
) -> dict[str, Any]:
    body = {
        "id": overrides.pop("id", None) or new_id("O"),
        "shop_id": shop,
        "placed_at": "2026-05-10T10:00:00+08:00",
        "lines": [{"product_id": p, "quantity": q} for p, q in lines],
        **overrides,
    }
    return created(api.post(f"{C}/orders", body, **MERCHANT))


def act(api: Api, order: str, action: str, body: dict[str, Any] | None = None) -> Any:
    return api.post(f"{C}/orders/{order}/{action}", body or {}, **MERCHANT)


def pay(api: Api, order: str, at: str = "2026-05-10T10:05:00+08:00") -> dict[str, Any]:
    return created(act(api, order, "pay", {"paid_at": at}))


def refund(api: Api, order: str, amount: int, at: str, **extra: Any) -> dict[str, Any]:
    refund_id = new_id("R")
    created(
        act(
            api,
            order,
            "refunds",
            {
                "id": refund_id,
                "amount_fen": amount,
                "reason": "damaged",
                "requested_at": at,
                **extra,
            },
        )
    )
    return created(act(api, order, f"refunds/{refund_id}/approve", {"decided_at": at}))


def types(api: Api) -> list[str]:
    return [event["type"] for event in api.events("commerce")]


def commerce(start_services: Any, **kwargs: Any) -> Api:
    return start_services(CommerceService, AllianceService, **kwargs)


# -- the main path, on both backends ------------------------------------------------------------


def test_an_order_from_listing_to_producer_settlement(start_services: Any) -> None:
    api = commerce(start_services)
    place = set_up_place(api)
    shop = open_shop(api)
    farmer, collective = new_id("H"), new_id("COL")
    tea = list_product(
        api,
        shop,
        place.tea_village,
        producer_id=farmer,
        label_type="geographic_indication",
        label="西湖龙井",
        price_fen=12_800,
        stock=10,
    )
    fruit = list_product(
        api,
        shop,
        place.fruit_village,
        producer_id=collective,
        producer_type="collective",
        price_fen=3_333,
        stock=10,
    )

    order = place_order(api, shop, [(tea, 2), (fruit, 3)])
    assert order["status"] == "placed" and order["total_fen"] == 2 * 12_800 + 3 * 3_333
    assert api.get(f"{C}/products/{tea}").json()["stock"] == 8
    assert pay(api, order["id"])["status"] == "paid"
    assert created(act(api, order["id"], "ship", {"carrier": "EMS"}))["status"] == "shipped"
    delivered = created(
        act(api, order["id"], "deliver", {"delivered_at": "2026-05-12T09:00:00+08:00"})
    )
    assert delivered["after_sale_closes_on"] == "2026-05-19"

    # A partial refund, split over the lines in proportion to what each can still give back.
    after = refund(api, order["id"], 1_001, "2026-05-13T12:00:00+08:00")
    assert after["refunded_fen"] == 1_001 and after["net_fen"] == 35_599 - 1_001
    split = {line["line_id"]: line["refunded_fen"] for line in after["lines"]}
    assert split == {"1": 720, "2": 281}  # 1001 * 25600/35599 = 719.8.., 1001 * 9999/35599

    # The after-sale window: nothing completes before it closes; then exactly once.
    close = api.post(f"{C}/after-sale/close", {"as_of": "2026-05-18"}, **OPS)
    assert close.status_code == 200 and close.json()["completed"] == []
    close = api.post(f"{C}/after-sale/close", {"as_of": "2026-05-19"}, **OPS)
    assert close.json()["completed"] == [order["id"]]
    again = api.post(f"{C}/after-sale/close", {"as_of": "2026-05-30"}, **OPS)
    assert again.json()["completed"] == []

    # Settlement: net revenue minus 5 % commission per line, rounded half up; idempotent.
    settled = api.post(f"{C}/settlements", {"as_of": "2026-05-31"}, **OPS)
    assert settled.status_code == 200, settled.text
    by_producer = {s["producer_id"]: s for s in settled.json()["settlements"]}
    assert by_producer[farmer]["amount_fen"] == (25_600 - 720) - 1_244  # 24880 * 5 % = 1244
    assert by_producer[collective]["fees_fen"] == 486  # 9718 * 5 % = 485.9
    assert by_producer[collective]["amount_fen"] == 9_718 - 486
    assert api.post(f"{C}/settlements", {"as_of": "2026-06-30"}, **OPS).json() == {
        "as_of": "2026-06-30",
        "settlements": [],
    }
    statement = api.get(f"{C}/producers/{farmer}/statement", params={"period": "2026-05"})
    assert statement.status_code == 200, statement.text
    assert statement.json()["net_revenue_fen"] == 24_880
    assert statement.json()["settled_fen"] == 24_880 - 1_244

    gmv = api.get(f"{C}/gmv", params={"period": "2026-Q2"}).json()
    assert gmv["total"] == {"paid_fen": 35_599, "refunded_fen": 1_001, "gmv_fen": 34_598}

    sequence = types(api)
    for expected in (
        "ShopOpened",
        "ProductListed",
        "OrderPlaced",
        "OrderPaid",
        "OrderShipped",
        "OrderDelivered",
        "RefundRequested",
        "RefundCompleted",
        "OrderCompleted",
        "ProducerSettled",
    ):
        assert expected in sequence
    assert sequence.count("ProducerSettled") == 2 and sequence.count("OrderCompleted") == 1

    events = {e["type"]: e for e in api.events("commerce")}
    paid = events["OrderPaid"]["data"]
    assert {line["village_id"] for line in paid["lines"]} == {
        place.tea_village,
        place.fruit_village,
    }
    assert {line["producer_type"] for line in paid["lines"]} == {"household", "collective"}
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for event in api.events("commerce"):
        schema = contracts.envelope_schema("commerce", type(contract_for(event["type"])))
        jsonschema.validate(event, schema, format_checker=checker)


def contract_for(type_name: str) -> Any:
    from shared import events as registry

    return registry.schema_for(type_name)


# -- rules, each refused with the field at fault and nothing written ----------------------------

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


@pytest.fixture
def shop_floor(start_services: Any) -> tuple[Api, Place, str, str]:
    """Commerce with a place, a shop (5 % commission, 7-day after-sale) and a product of 10."""
    api = commerce(start_services)
    place = set_up_place(api)
    shop = open_shop(api)
    return api, place, shop, list_product(api, shop, place.tea_village, stock=10)


def refused_without_events(api: Api, response: Any, field: str, status: int = 422) -> None:
    before = len(api.events("commerce"))
    rejected(response, field, status)
    assert len(api.events("commerce")) == before


@sqlite_only
def test_orders_move_only_through_legal_transitions(shop_floor: Any) -> None:
    api, _, shop, product = shop_floor
    order = place_order(api, shop, [(product, 1)])["id"]
    count = len(api.events("commerce"))
    for action in ("ship", "deliver"):
        rejected(act(api, order, action), "status")
    rejected(act(api, order, "complete", {"as_of": "2026-12-31"}), "status")
    rejected(
        act(api, order, "refunds", {"id": "R1", "amount_fen": 1, "reason": "x"}),
        "status",
    )
    assert len(api.events("commerce")) == count  # nothing written by the refusals
    pay(api, order)
    rejected(act(api, order, "pay"), "status")
    rejected(act(api, order, "deliver"), "status")
    created(act(api, order, "ship"))
    rejected(act(api, order, "cancel", {"reason": "changed my mind"}), "status")
    rejected(act(api, order, "ship"), "status")
    created(act(api, order, "deliver", {"delivered_at": "2026-05-12T09:00:00+08:00"}))
    rejected(act(api, order, "complete", {"as_of": "2026-05-18"}), "as_of")
    assert created(act(api, order, "complete", {"as_of": "2026-05-19"}))["status"] == "completed"
    rejected(act(api, order, "cancel", {"reason": "late"}), "status")
    assert api.post(f"{C}/orders/nope/pay", {}, **MERCHANT).status_code == 404
    rejected(act(api, order, "pay", {"paid_at": "yesterday"}), "paid_at")


@sqlite_only
def test_paying_the_wrong_amount_is_refused(shop_floor: Any) -> None:
    api, _, shop, product = shop_floor
    order = place_order(api, shop, [(product, 2)])
    refused_without_events(api, act(api, order["id"], "pay", {"amount_fen": 1}), "amount_fen")
    elsewhere = api.post(f"{C}/orders/{order['id']}/pay", {}, role="merchant", district="D-west")
    refused_without_events(api, elsewhere, "district", status=403)
    assert created(act(api, order["id"], "pay", {"amount_fen": order["total_fen"]}))["paid_fen"]


@sqlite_only
def test_stock_never_goes_negative_and_cancelling_gives_it_back(shop_floor: Any) -> None:
    api, _, shop, product = shop_floor
    body = {"id": new_id("O"), "shop_id": shop, "lines": [{"product_id": product, "quantity": 11}]}
    refused_without_events(api, api.post(f"{C}/orders", body, **MERCHANT), "lines.0.quantity")
    first = place_order(api, shop, [(product, 6)])
    second = place_order(api, shop, [(product, 4)])
    assert api.get(f"{C}/products/{product}").json()["stock"] == 0
    refused_without_events(
        api,
        api.post(
            f"{C}/orders", {**body, "lines": [{"product_id": product, "quantity": 1}]}, **MERCHANT
        ),
        "lines.0.quantity",
    )
    # An unpaid order cancelled: its stock returns, nothing is refunded.
    cancelled = created(act(api, first["id"], "cancel", {"reason": "buyer left"}))
    assert cancelled["status"] == "cancelled" and cancelled["refunded_fen"] == 0
    assert api.get(f"{C}/products/{product}").json()["stock"] == 6
    # A paid order cancelled before shipping is refunded in full, and its stock returns.
    pay(api, second["id"])
    partly = refund(api, second["id"], 100, "2026-05-10T11:00:00+08:00")
    assert partly["refunded_fen"] == 100
    cancelled = created(act(api, second["id"], "cancel", {"reason": "out of season"}))
    assert cancelled["refunded_fen"] == second["total_fen"] and cancelled["net_fen"] == 0
    assert api.get(f"{C}/products/{product}").json()["stock"] == 10
    refunds = [e["data"] for e in api.events("commerce") if e["type"] == "RefundCompleted"]
    assert [r["amount_fen"] for r in refunds] == [100, second["total_fen"] - 100]
    created(api.post(f"{C}/products/{product}/restock", {"quantity": 5}, **MERCHANT))
    assert api.get(f"{C}/products/{product}").json()["stock"] == 15


@sqlite_only
def test_a_delisted_product_cannot_be_ordered(shop_floor: Any) -> None:
    api, _, shop, product = shop_floor
    created(api.post(f"{C}/products/{product}/delist", {"reason": "sold out"}, **MERCHANT))
    assert api.get(f"{C}/products/{product}").json()["listed"] is False
    body = {"id": new_id("O"), "shop_id": shop, "lines": [{"product_id": product, "quantity": 1}]}
    refused_without_events(api, api.post(f"{C}/orders", body, **MERCHANT), "lines.0.product_id")
    rejected(api.post(f"{C}/products/{product}/delist", {"reason": "x"}, **MERCHANT), "product_id")
    other_shop = open_shop(api)
    elsewhere = {**body, "shop_id": other_shop}
    refused_without_events(
        api, api.post(f"{C}/orders", elsewhere, **MERCHANT), "lines.0.product_id"
    )
    unknown = {**body, "lines": [{"product_id": "nope", "quantity": 1}]}
    refused_without_events(api, api.post(f"{C}/orders", unknown, **MERCHANT), "lines.0.product_id")
    refused_without_events(
        api, api.post(f"{C}/orders", {**body, "shop_id": "no"}, **MERCHANT), "shop_id"
    )


@sqlite_only
def test_refunds_never_exceed_what_was_paid(shop_floor: Any) -> None:
    api, place, shop, tea = shop_floor
    fruit = list_product(api, shop, place.fruit_village, price_fen=1_000)
    order = place_order(api, shop, [(tea, 1), (fruit, 2)])["id"]  # 12800 + 2000
    pay(api, order)
    ask = {"id": "R-1", "amount_fen": 14_801, "reason": "x"}
    refused_without_events(api, act(api, order, "refunds", ask), "amount_fen")
    created(act(api, order, "refunds", {**ask, "amount_fen": 14_000}))  # pending: reserved
    refused_without_events(
        api, act(api, order, "refunds", {**ask, "id": "R-2", "amount_fen": 801}), "amount_fen"
    )
    rejected(act(api, order, "refunds", {**ask, "amount_fen": 1}), "id")  # the id is taken
    rejected_one = created(act(api, order, "refunds/R-1/reject", {"reason": "no proof"}))
    assert rejected_one["refunded_fen"] == 0
    rejected(act(api, order, "refunds/R-1/approve"), "refund_id")  # decided already
    # Lines named explicitly: each within what its line can still give back.
    explicit = {
        "id": "R-3",
        "amount_fen": 2_001,
        "reason": "x",
        "lines": [{"line_id": "2", "amount_fen": 2_001}],
    }
    refused_without_events(api, act(api, order, "refunds", explicit), "lines.0.amount_fen")
    mismatch = {**explicit, "lines": [{"line_id": "2", "amount_fen": 2_000}]}
    refused_without_events(api, act(api, order, "refunds", mismatch), "lines")
    created(
        act(
            api,
            order,
            "refunds",
            {**explicit, "amount_fen": 2_000, "lines": [{"line_id": "2", "amount_fen": 2_000}]},
        )
    )
    done = created(act(api, order, "refunds/R-3/approve"))
    assert {line["line_id"]: line["refunded_fen"] for line in done["lines"]} == {"1": 0, "2": 2_000}
    # The rest can go back, but not a fen more; a proportional split then takes line 1 only.
    rest = refund(api, order, 12_800, "2026-05-11T10:00:00+08:00")
    assert rest["net_fen"] == 0
    refused_without_events(
        api,
        act(api, order, "refunds", {"id": "R-9", "amount_fen": 1, "reason": "x"}),
        "amount_fen",
    )


@sqlite_only
def test_a_sweep_repeated_with_its_idempotency_key_answers_the_first_result(
    shop_floor: Any,
) -> None:
    api, _, shop, product = shop_floor

    def delivered_order() -> str:
        order = place_order(api, shop, [(product, 1)])["id"]
        pay(api, order)
        created(act(api, order, "ship"))
        created(act(api, order, "deliver", {"delivered_at": "2026-05-12T09:00:00+08:00"}))
        return order

    first = delivered_order()
    sweeps = [
        (f"{C}/after-sale/close", "completed", [first]),
        (f"{C}/settlements", "settlements", None),
    ]
    for url, field, expected in sweeps:
        key = {"Idempotency-Key": new_id("K")}
        answer = api.post(url, {"as_of": "2026-05-31"}, headers=key, **OPS)
        assert answer.status_code == 200, answer.text
        assert answer.json()[field] == expected if expected else len(answer.json()[field]) == 1
        count = len(api.events("commerce"))
        repeated = api.post(url, {"as_of": "2026-05-31"}, headers=key, **OPS)
        assert repeated.status_code == 200 and repeated.json() == answer.json()
        assert repeated.headers.get("Idempotent-Replayed") == "true"
        assert len(api.events("commerce")) == count
        rejected(api.post(url, {"as_of": "2026-06-01"}, headers=key, **OPS), "Idempotency-Key")
        # Without a key, a repeated run answers what it did: nothing.
        assert api.post(url, {"as_of": "2026-05-31"}, **OPS).json()[field] == []

    # A repeat answers the first result and does no work it would not report.
    key = {"Idempotency-Key": new_id("K")}
    api.post(f"{C}/after-sale/close", {"as_of": "2026-05-31"}, headers=key, **OPS)
    second = delivered_order()
    replay = api.post(f"{C}/after-sale/close", {"as_of": "2026-05-31"}, headers=key, **OPS)
    assert replay.json()["completed"] == []
    assert api.get(f"{C}/orders/{second}").json()["status"] == "delivered"


@sqlite_only
def test_refunds_close_with_the_after_sale_window_and_pending_ones_hold_completion(
    shop_floor: Any,
) -> None:
    api, _, shop, product = shop_floor
    order = place_order(api, shop, [(product, 1)])["id"]
    pay(api, order)
    created(act(api, order, "ship"))
    created(act(api, order, "deliver", {"delivered_at": "2026-05-12T09:00:00+08:00"}))
    late = {
        "id": "R-late",
        "amount_fen": 1,
        "reason": "x",
        "requested_at": "2026-05-19T00:00:00+08:00",
    }
    refused_without_events(api, act(api, order, "refunds", late), "requested_at")
    created(act(api, order, "refunds", {**late, "requested_at": "2026-05-18T23:59:00+08:00"}))
    close = api.post(f"{C}/after-sale/close", {"as_of": "2026-05-25"}, **OPS).json()
    assert close["completed"] == []  # a refund is pending
    rejected(act(api, order, "complete", {"as_of": "2026-05-25"}), "status")
    created(act(api, order, "refunds/R-late/approve", {"decided_at": "2026-05-21T10:00:00+08:00"}))
    close = api.post(f"{C}/after-sale/close", {"as_of": "2026-05-25"}, **OPS).json()
    assert close["completed"] == [order]
    completed = [e for e in api.events("commerce") if e["type"] == "OrderCompleted"]
    assert completed[0]["data"]["completed_on"] == "2026-05-21"  # when amounts became final
    assert completed[0]["data"]["net_fen"] == 12_799


@sqlite_only
def test_shops_and_products_refuse_bad_input(shop_floor: Any) -> None:
    api, place, shop, _ = shop_floor
    good = {
        "id": new_id("P"),
        "shop_id": shop,
        "name": "笋干",
        "village_id": place.tea_village,
        "producer_id": "H-1",
        "producer_type": "cooperative",
        "price_fen": 500,
        "stock": 1,
    }
    post = lambda body, **who: api.post(f"{C}/products", body, **(who or MERCHANT))  # noqa: E731
    refused_without_events(api, post({**good, "village_id": "V-nowhere"}), "village_id")
    refused_without_events(api, post({**good, "shop_id": "S-nowhere"}), "shop_id")
    refused_without_events(api, post({**good, "producer_type": "company"}), "producer_type")
    refused_without_events(api, post({**good, "price_fen": 0}), "price_fen")
    refused_without_events(api, post({**good, "stock": -1}), "stock")
    refused_without_events(api, post({**good, "stock": "3"}), "stock")
    refused_without_events(api, post({**good, "id": "bad id!"}), "id")
    refused_without_events(api, post({**good, "label": "龙井"}), "label")
    assert post(good, role="household").status_code == 403
    assert post(good, role="merchant", district="D-west").status_code == 403
    assert post(good, role="village_cadre", village=place.fruit_village).status_code == 403
    created(post(good))
    assert post(good).status_code == 409  # the id is taken
    spec = api.get(f"{C}/openapi.json", role=None)
    assert spec.status_code == 200 and f"{C}/orders/{{order_id}}/refunds" in str(spec.json())
    shop_body = {"id": new_id("S"), "district": DISTRICT, "name": "x", "channel": "platform_store"}
    refused_without_events(api, api.post(f"{C}/shops", shop_body, **MERCHANT), "platform")
    refused_without_events(
        api,
        api.post(
            f"{C}/shops",
            {**shop_body, "platform": "douyin", "commission_rate_bp": 10_001},
            **MERCHANT,
        ),
        "commission_rate_bp",
    )


@sqlite_only
def test_orders_count_for_a_live_session_only_while_it_is_live(shop_floor: Any) -> None:
    api, _, shop, product = shop_floor
    session = new_id("LS")
    created(
        api.post(
            f"{C}/live-sessions",
            {
                "id": session,
                "shop_id": shop,
                "title": "春茶直播",
                "host": "村书记",
                "scheduled_start_at": "2026-05-10T19:00:00+08:00",
                "scheduled_end_at": "2026-05-10T21:00:00+08:00",
            },
            **MERCHANT,
        )
    )
    body = {
        "id": new_id("O"),
        "shop_id": shop,
        "live_session_id": session,
        "placed_at": "2026-05-10T19:30:00+08:00",
        "lines": [{"product_id": product, "quantity": 1}],
    }
    refused_without_events(api, api.post(f"{C}/orders", body, **MERCHANT), "live_session_id")
    rejected(api.post(f"{C}/live-sessions/{session}/end", {"viewers": 1}, **MERCHANT), "session_id")
    start = {"started_at": "2026-05-10T19:02:00+08:00"}
    assert created(api.post(f"{C}/live-sessions/{session}/start", start, **MERCHANT))["status"]
    rejected(api.post(f"{C}/live-sessions/{session}/start", start, **MERCHANT), "session_id")
    early = {**body, "id": new_id("O"), "placed_at": "2026-05-10T19:01:00+08:00"}
    refused_without_events(api, api.post(f"{C}/orders", early, **MERCHANT), "live_session_id")
    during = created(api.post(f"{C}/orders", body, **MERCHANT))
    assert during["live_session_id"] == session
    pay(api, during["id"], "2026-05-10T19:31:00+08:00")
    unpaid = created(api.post(f"{C}/orders", {**body, "id": new_id("O")}, **MERCHANT))
    end = {"ended_at": "2026-05-10T21:05:00+08:00", "viewers": 4_000, "peak_viewers": 650}
    rejected(
        api.post(f"{C}/live-sessions/{session}/end", {**end, "peak_viewers": 4_001}, **MERCHANT),
        "peak_viewers",
    )
    created(api.post(f"{C}/live-sessions/{session}/end", end, **MERCHANT))
    after = {**body, "id": new_id("O"), "placed_at": "2026-05-10T21:06:00+08:00"}
    refused_without_events(api, api.post(f"{C}/orders", after, **MERCHANT), "live_session_id")
    # Entered after the fact, but placed while it was live: still attributed.
    late_entry = created(api.post(f"{C}/orders", {**body, "id": new_id("O")}, **MERCHANT))
    pay(api, late_entry["id"], "2026-05-10T20:00:00+08:00")
    refund(api, during["id"], 800, "2026-05-11T10:00:00+08:00")
    results = api.get(f"{C}/live-sessions/{session}/results").json()
    assert results["status"] == "ended" and results["viewers"] == 4_000
    assert results["duration_seconds"] == 2 * 3600 + 3 * 60
    assert results["orders"] == 3 and results["paid_orders"] == 2
    assert results["gmv_fen"] == 2 * 12_800 - 800 and results["conversion"] == "0.0005"
    ended = next(e for e in api.events("commerce") if e["type"] == "LiveSessionEnded")
    assert ended["data"]["orders"] == 2 and ended["data"]["gmv_fen"] == 12_800
    assert unpaid["status"] == "placed"


# -- the contract on the real broker --------------------------------------------------------------


@sqlite_only
def test_events_arrive_on_rabbitmq_as_documented(start_services: Any, broker: str) -> None:
    api = commerce(start_services, amqp_uri=broker)
    with captured_events(broker, "commerce") as take:
        place = set_up_place(api)
        shop = open_shop(api)
        collective = new_id("COL")
        product = list_product(
            api, shop, place.tea_village, producer_id=collective, producer_type="collective"
        )
        order = place_order(api, shop, [(product, 2)])["id"]
        pay(api, order)
        created(act(api, order, "ship"))
        created(act(api, order, "deliver", {"delivered_at": "2026-05-12T09:00:00+08:00"}))
        refund(api, order, 999, "2026-05-13T09:00:00+08:00")
        api.post(f"{C}/after-sale/close", {"as_of": "2026-06-01"}, **OPS)
        assert api.post(f"{C}/settlements", {"as_of": "2026-06-01"}, **OPS).status_code == 200
        stored = api.events("commerce")
        received = take(len(stored), timeout=20)
    assert sorted(e["event_id"] for e in received) == sorted(e["event_id"] for e in stored)
    checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
    for envelope in received:
        path = DOCS / f"{envelope['type']}.json"
        jsonschema.validate(envelope, json.loads(path.read_text()), format_checker=checker)
    data = {e["type"]: e["data"] for e in received}
    assert data["OrderPaid"]["lines"][0]["village_id"] == place.tea_village
    assert data["RefundCompleted"]["lines"] == [
        {
            "line_id": "1",
            "product_id": product,
            "producer_id": collective,
            "village_id": place.tea_village,
            "amount_fen": 999,
        }
    ]
    settled = data["ProducerSettled"]
    assert settled["producer_type"] == "collective" and settled["village_id"] == place.tea_village
    assert settled["net_revenue_fen"] == 2 * 12_800 - 999
    assert settled["amount_fen"] == settled["net_revenue_fen"] - settled["fees_fen"]


@sqlite_only
def test_producers_are_settled_once_after_the_after_sale_window(shop_floor: Any) -> None:
    api, place, shop, _ = shop_floor
    coop = new_id("COOP")
    cheap = list_product(
        api, shop, place.tea_village, producer_id=coop, producer_type="cooperative", price_fen=11
    )
    fruit = list_product(
        api, shop, place.fruit_village, producer_id=coop, producer_type="cooperative", price_fen=9
    )

    def delivered_order(lines: list[tuple[str, int]], day: str) -> str:
        order = place_order(api, shop, lines)["id"]
        pay(api, order)
        created(act(api, order, "ship"))
        created(act(api, order, "deliver", {"delivered_at": f"{day}T09:00:00+08:00"}))
        return order

    first = delivered_order([(cheap, 1), (fruit, 1)], "2026-05-12")  # window closes 19 May
    second = delivered_order([(cheap, 3)], "2026-05-20")  # closes 27 May
    refund(api, second, 33, "2026-05-21T09:00:00+08:00")  # fully refunded: nets 0
    unpaid = place_order(api, shop, [(cheap, 1)])["id"]

    settle = lambda as_of: api.post(f"{C}/settlements", {"as_of": as_of}, **OPS)  # noqa: E731
    assert settle("2026-05-18").json()["settlements"] == []  # nothing completed yet
    api.post(f"{C}/after-sale/close", {"as_of": "2026-05-19"}, **OPS)
    assert settle("2026-05-18").json()["settlements"] == []  # completed on the 19th
    made = settle("2026-05-19").json()["settlements"]
    # One settlement per village; 5 % of 11 fen = 0.55 -> 1 fen, of 9 fen = 0.45 -> 0 fen.
    assert [(s["village_id"], s["fees_fen"], s["amount_fen"]) for s in made] == sorted(
        [(place.tea_village, 1, 10), (place.fruit_village, 0, 9)]
    )
    assert settle("2026-05-19").json()["settlements"] == []  # idempotent
    api.post(f"{C}/after-sale/close", {"as_of": "2026-05-31"}, **OPS)
    made = settle("2026-05-31").json()["settlements"]
    assert [(s["amount_fen"], s["fees_fen"]) for s in made] == [(0, 0)]
    settled = [e["data"] for e in api.events("commerce") if e["type"] == "ProducerSettled"]
    assert len(settled) == 3
    assert sum(s["amount_fen"] for s in settled) <= sum(s["net_revenue_fen"] for s in settled)
    assert {(p["order_id"], p["line_id"]) for s in settled for p in s["lines"]} == {
        (first, "1"),
        (first, "2"),
        (second, "1"),
    }
    assert unpaid not in {p["order_id"] for s in settled for p in s["lines"]}
    statement = api.get(f"{C}/producers/{coop}/statement", params={"period": "2026"}).json()
    assert statement["net_revenue_fen"] == 20 and statement["settled_fen"] == 19
    assert statement["fees_fen"] == 1 and len(statement["settlements"]) == 3
    rejected(settle("31 May"), "as_of")
    assert (
        api.post(f"{C}/settlements", {"as_of": "2026-05-31"}, role="household").status_code == 403
    )
