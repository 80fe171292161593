"""Platform import: a batch mixing valid, invalid and duplicate rows; a re-import changes
nothing and reports every row as a duplicate or invalid again."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import new_id
from tests.test_commerce import (
    MERCHANT,
    C,
    commerce,
    created,
    list_product,
    open_shop,
    rejected,
    set_up_place,
)

sqlite_only = pytest.mark.parametrize("backend", ["sqlite"])


def csv_batch(product: str, other: str) -> str:
    return "\n".join(
        [
            "external_id,product_id,quantity,amount_fen,placed_at,paid_at,buyer_ref",
            f"DY-1,{product},2,25000,2026-05-10T20:00:00+08:00,2026-05-10T20:01:00+08:00,b1",
            f"DY-2,{product},1,,2026-05-10T20:05:00+08:00,,b2",
            f"DY-3,{product},abc,100,2026-05-10T20:06:00+08:00,,b3",  # quantity not a number
            f"DY-1,{product},2,25000,2026-05-10T20:00:00+08:00,2026-05-10T20:01:00+08:00,b1",
            f",{product},1,100,2026-05-10T20:07:00+08:00,,b4",  # no external id
            "DY-5,P-missing,1,100,2026-05-10T20:08:00+08:00,,b5",  # unknown product
            f"DY-6,{other},1,100,2026-05-10T20:09:00+08:00,,b6",  # sold in another shop
            f"DY-7,{product},999,100,2026-05-10T20:10:00+08:00,,b7",  # more than in stock
            f"DY-8,{product},1,100,2026-05-10 20:11,,b8",  # no time zone
        ]
    )


def test_a_platform_batch_is_imported_once_with_a_report_per_row(start_services: Any) -> None:
    api = commerce(start_services)
    place = set_up_place(api)
    store = open_shop(api, channel="platform_store", platform="douyin", commission_rate_bp=800)
    product = list_product(api, store, place.tea_village, price_fen=12_800, stock=50)
    other = list_product(api, open_shop(api), place.tea_village)
    body = {
        "id": new_id("B"),
        "platform": "douyin",
        "shop_id": store,
        "format": "csv",
        "content": csv_batch(product, other),
    }
    report = created(api.post(f"{C}/imports", body, **MERCHANT))
    rows = {row["row"]: row for row in report["rows"]}
    assert [rows[n]["status"] for n in range(1, 10)] == [
        "imported",
        "imported",
        "invalid",
        "duplicate",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert (report["imported"], report["duplicates"], report["invalid"]) == (2, 1, 6)
    fields = {n: [e["field"] for e in rows[n]["errors"]] for n in rows}
    assert fields[3] == ["quantity"]
    assert fields[5] == ["external_id"]
    assert fields[6] == ["product_id"] and fields[7] == ["product_id"]
    assert fields[8] == ["quantity"] and fields[9] == ["placed_at"]
    assert all(rows[n]["errors"][0]["message"] for n in (3, 5, 6, 7, 8, 9))

    first = api.get(f"{C}/orders/douyin:DY-1").json()
    assert first["status"] == "paid" and first["total_fen"] == 25_000  # the platform's price
    assert api.get(f"{C}/orders/douyin:DY-2").json()["status"] == "placed"
    assert api.get(f"{C}/products/{product}").json()["stock"] == 47
    assert api.get(f"{C}/imports/{body['id']}").json()["imported"] == 2

    # The same file again, as a new batch: every order already exists, nothing changes.
    before = api.events("commerce")
    again = created(api.post(f"{C}/imports", {**body, "id": new_id("B")}, **MERCHANT))
    assert (again["imported"], again["duplicates"], again["invalid"]) == (0, 3, 6)
    after = api.events("commerce")
    assert [e["type"] for e in after[len(before) :]] == ["PlatformOrdersImported"]
    assert api.get(f"{C}/products/{product}").json()["stock"] == 47

    # JSON rows work the same way; the batch id cannot be reused.
    json_body = {
        "id": new_id("B"),
        "platform": "douyin",
        "shop_id": store,
        "rows": [
            {
                "external_id": "DY-10",
                "product_id": product,
                "quantity": 1,
                "placed_at": "2026-05-11T08:00:00+08:00",
                "paid_at": "2026-05-11T08:00:30+08:00",
            },
            {
                "external_id": "DY-1",
                "product_id": product,
                "quantity": 2,
                "placed_at": "2026-05-10T20:00:00+08:00",
            },
        ],
    }
    report = created(api.post(f"{C}/imports", json_body, **MERCHANT))
    assert [r["status"] for r in report["rows"]] == ["imported", "duplicate"]
    assert api.post(f"{C}/imports", json_body, **MERCHANT).status_code == 409
    paid = [e["data"] for e in api.events("commerce") if e["type"] == "OrderPaid"]
    assert sorted(p["order_id"] for p in paid) == ["douyin:DY-1", "douyin:DY-10"]


@sqlite_only
def test_an_import_must_name_its_platform_store_and_content(start_services: Any) -> None:
    api = commerce(start_services)
    station = open_shop(api)
    body = {"id": new_id("B"), "platform": "douyin", "shop_id": station, "rows": []}
    rejected(api.post(f"{C}/imports", body, **MERCHANT), "platform")
    rejected(api.post(f"{C}/imports", {**body, "shop_id": "S-none"}, **MERCHANT), "shop_id")
    rejected(api.post(f"{C}/imports", {**body, "format": "csv"}, **MERCHANT), "content")
    rejected(api.post(f"{C}/imports", {**body, "format": "xml"}, **MERCHANT), "format")
    assert api.events("commerce")[-1]["type"] == "ShopOpened"


@sqlite_only
def test_a_retried_import_with_its_idempotency_key_gets_the_first_answer(
    start_services: Any,
) -> None:
    api = commerce(start_services)
    place = set_up_place(api)
    store = open_shop(api, channel="platform_store", platform="pdd")
    product = list_product(api, store, place.tea_village, stock=5)
    row = {
        "external_id": "PDD-1",
        "product_id": product,
        "quantity": 1,
        "placed_at": "2026-05-10T20:00:00+08:00",
    }
    body = {"id": new_id("B"), "platform": "pdd", "shop_id": store, "rows": [row]}
    key = {"Idempotency-Key": new_id("K")}
    first = api.post(f"{C}/imports", body, headers=key, **MERCHANT)
    count = len(api.events("commerce"))
    retried = api.post(f"{C}/imports", body, headers=key, **MERCHANT)
    assert retried.status_code == 201 and retried.json() == first.json()
    assert retried.headers.get("Idempotent-Replayed") == "true"
    assert len(api.events("commerce")) == count
