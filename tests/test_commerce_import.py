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


def multi_line_batch(tea: str, honey: str) -> str:
    at, paid = "2026-05-12T09:00:00+08:00", "2026-05-12T09:02:00+08:00"
    return "\r\n".join(
        [
            "external_id,line_id,product_id,quantity,amount_fen,placed_at,paid_at,buyer_ref",
            f"TB-1,L1,{tea},2,20000,{at},{paid},b1",  # TB-1: two lines, paid
            f"TB-2,,{tea},1,,{at},,b2",  # a single-line order
            f"TB-1,L2,{honey},3,9000,{at},{paid},b1",
            f"TB-3,A,{tea},1,100,{at},,b3",
            f"TB-3,B,{honey},x,100,{at},,b3",  # quantity: the whole of TB-3 is refused
            f"TB-1,L1,{tea},2,20000,{at},{paid},b1",  # the same row twice
            f"TB-4,1,{tea},1,100,{at},,b4",
            f"TB-4,2,{honey},1,100,2026-05-12T10:00:00+08:00,,b4",  # another placed_at
            f"TB-5,1,{tea},1,100,{at},,b5",
            f"TB-5,2,{honey},999,100,{at},,b5",  # more than in stock: no tea reserved either
            f"TB-6,1,{tea},1,100,{at},,b6",
            f"TB-6,1,{honey},1,100,{at},,b6",  # line 1 twice, differently
        ]
    )


def post_csv(
    api: Any, text: str | bytes, params: dict[str, str], headers: dict[str, str] | None = None
) -> Any:
    return api.session.post(
        f"{api.base}{C}/imports",
        params=params,
        data=text.encode() if isinstance(text, str) else text,
        headers={
            **api.headers(MERCHANT["role"], district=MERCHANT["district"]),
            "Content-Type": "text/csv; charset=utf-8",
            **(headers or {}),
        },
        timeout=30,
    )


def test_the_rows_of_a_multi_line_order_are_imported_together_or_not_at_all(
    start_services: Any,
) -> None:
    api = commerce(start_services)
    place = set_up_place(api)
    store = open_shop(api, channel="platform_store", platform="taobao")
    tea = list_product(api, store, place.tea_village, price_fen=10_000, stock=50)
    honey = list_product(api, store, place.tea_village, price_fen=3_000, stock=20)
    params = {"id": new_id("B"), "platform": "taobao", "shop_id": store}
    # A platform export as it comes: text/csv with a byte-order mark.
    report = created(post_csv(api, "\ufeff" + multi_line_batch(tea, honey), params))
    rows = {row["row"]: row for row in report["rows"]}
    assert [rows[n]["status"] for n in range(1, 13)] == [
        "imported",
        "imported",
        "imported",
        "invalid",
        "invalid",
        "duplicate",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
        "invalid",
    ]
    assert (report["imported"], report["duplicates"], report["invalid"]) == (3, 1, 8)
    assert [rows[n]["order_id"] for n in (1, 3, 6)] == ["taobao:TB-1"] * 3
    assert [rows[n]["line_id"] for n in (1, 2, 3, 6)] == ["L1", "1", "L2", "L1"]
    fields = {n: [e["field"] for e in rows[n]["errors"]] for n in rows}
    assert fields[5] == ["quantity"] and fields[4] == ["external_id"]  # row 4 refused with it
    assert fields[8] == ["placed_at"] and fields[7] == ["external_id"]
    assert fields[10] == ["quantity"] and fields[9] == ["external_id"]
    assert fields[12] == ["line_id"] and fields[11] == ["external_id"]
    assert "[5]" in rows[4]["errors"][0]["message"]

    order = api.get(f"{C}/orders/taobao:TB-1").json()
    assert order["status"] == "paid" and order["total_fen"] == 29_000
    assert [(line["line_id"], line["quantity"]) for line in order["lines"]] == [
        ("L1", 2),
        ("L2", 3),
    ]
    placed = [e["data"]["order_id"] for e in api.events("commerce") if e["type"] == "OrderPlaced"]
    assert sorted(placed) == ["taobao:TB-1", "taobao:TB-2"]
    assert api.get(f"{C}/products/{tea}").json()["stock"] == 47
    assert api.get(f"{C}/products/{honey}").json()["stock"] == 17

    # The same file again, as a new batch: nothing changes.
    before = api.events("commerce")
    again = created(post_csv(api, multi_line_batch(tea, honey), {**params, "id": new_id("B")}))
    assert (again["imported"], again["duplicates"], again["invalid"]) == (0, 4, 8)
    assert [e["type"] for e in api.events("commerce")[len(before) :]] == ["PlatformOrdersImported"]
    assert api.get(f"{C}/products/{tea}").json()["stock"] == 47

    # An imported order is not changed by a later row adding a line to it.
    extra = {
        "external_id": "TB-1",
        "line_id": "L3",
        "product_id": honey,
        "quantity": 1,
        "placed_at": "2026-05-12T09:00:00+08:00",
    }
    body = {"id": new_id("B"), "platform": "taobao", "shop_id": store, "rows": [extra]}
    report = created(api.post(f"{C}/imports", body, **MERCHANT))
    assert report["rows"][0]["status"] == "invalid"
    assert [e["field"] for e in report["rows"][0]["errors"]] == ["line_id"]
    assert len(api.get(f"{C}/orders/taobao:TB-1").json()["lines"]) == 2


@sqlite_only
def test_a_csv_upload_names_its_batch_in_the_query_and_is_text_csv(start_services: Any) -> None:
    api = commerce(start_services)
    place = set_up_place(api)
    store = open_shop(api, channel="platform_store", platform="pdd")
    product = list_product(api, store, place.tea_village, stock=5)
    text = "\n".join(
        [
            "external_id,product_id,quantity,placed_at",
            f"PDD-9,{product},1,2026-05-10T20:00:00+08:00",
        ]
    )
    params = {"id": new_id("B"), "platform": "pdd", "shop_id": store}
    count = len(api.events("commerce"))
    for missing in ("id", "platform", "shop_id"):
        query = {k: v for k, v in params.items() if k != missing}
        rejected(post_csv(api, text, query), missing)
    rejected(post_csv(api, text, {**params, "shop_id": "bad id!"}), "shop_id")
    rejected(post_csv(api, "", params), "content")  # no header row
    rejected(post_csv(api, text, params, {"Content-Type": "text/plain"}), "Content-Type", 415)
    rejected(
        post_csv(api, text, params, {"Content-Type": "text/csv; charset=gbk"}), "Content-Type", 415
    )
    rejected(post_csv(api, b"\xff\xfe" + text.encode(), params), "body", 400)
    assert post_csv(api, text, params, {"Authorization": "Bearer nope"}).status_code == 401
    assert len(api.events("commerce")) == count

    key = {"Idempotency-Key": new_id("K")}
    first = post_csv(api, text, params, key)
    assert first.status_code == 201 and first.json()["imported"] == 1
    count = len(api.events("commerce"))
    retried = post_csv(api, text, params, key)
    assert retried.status_code == 201 and retried.json() == first.json()
    assert retried.headers.get("Idempotent-Replayed") == "true"
    rejected(post_csv(api, text + "\n", params, key), "Idempotency-Key")  # other bytes
    rejected(post_csv(api, text, {**params, "id": new_id("B")}, key), "Idempotency-Key")
    assert post_csv(api, text, params).status_code == 409  # the batch id is taken
    assert len(api.events("commerce")) == count

    spec = api.get(f"{C}/openapi.json", role=None).json()
    body = spec["paths"][f"{C}/imports"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(body)
