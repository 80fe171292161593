"""Many buyers race for the last units of a product: exactly the stock is sold, never more."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from services.commerce.domain import Product
from tests.conftest import new_id
from tests.test_commerce import MERCHANT, C, commerce, list_product, open_shop, set_up_place

BUYERS = 12
STOCK = 5


def test_concurrent_orders_never_oversell(start_services: Any) -> None:
    api = commerce(start_services, max_workers=BUYERS)
    place = set_up_place(api)
    shop = open_shop(api)
    product = list_product(api, shop, place.tea_village, stock=STOCK)

    def buy(_: int) -> int:
        body = {
            "id": new_id("O"),
            "shop_id": shop,
            "lines": [{"product_id": product, "quantity": 1}],
        }
        return api.post(f"{C}/orders", body, **MERCHANT).status_code

    with ThreadPoolExecutor(BUYERS) as pool:
        statuses = list(pool.map(buy, range(BUYERS)))

    assert statuses.count(201) == STOCK, statuses
    # The rest were told the stock ran out (or, after too many collisions, to retry).
    assert set(statuses) <= {201, 422, 409}, statuses
    assert api.get(f"{C}/products/{product}").json()["stock"] == 0
    events = api.events("commerce")
    reserved = [e["data"] for e in events if e["type"] == "ProductStockReserved"]
    assert sum(r["quantity"] for r in reserved) == STOCK
    assert sorted(r["stock"] for r in reserved) == list(range(STOCK))
    assert sum(1 for e in events if e["type"] == "OrderPlaced") == STOCK


def test_a_product_snapshot_restores_its_stock() -> None:
    """Products take snapshots (every order reserves on their stream): the state survives."""
    product = Product(Product.stream("P-snap"))
    product.list(
        shop_id="S",
        district="D",
        name="笋干",
        village_id="V",
        producer_id="H",
        producer_type="household",
        label_type=None,
        label=None,
        price_fen=500,
        stock=60,
        listed_at=datetime(2026, 5, 1, tzinfo=UTC),
    )
    for n in range(55):
        product.reserve(f"O-{n}", 1)
    restored = Product.from_snapshot(product.id, json.loads(json.dumps(product.to_snapshot())))
    assert restored.to_snapshot() == product.to_snapshot() and restored.stock == 5
    assert restored.key == "P-snap"
