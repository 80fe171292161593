"""GMV (paid minus refunded) to the fen: per village, per cluster through the directory's
effective-dated membership on the paid day, per month, quarter and year in Asia/Shanghai."""

from __future__ import annotations

from typing import Any

from tests.test_commerce import (
    DISTRICT,
    C,
    admin,
    commerce,
    eventually,
    list_product,
    open_shop,
    pay,
    place_order,
    refund,
    rejected,
    set_up_place,
)


def by(rows: list[dict[str, Any]], key: str) -> dict[str, tuple[int, int, int]]:
    return {r[key]: (r["paid_fen"], r["refunded_fen"], r["gmv_fen"]) for r in rows}


def test_gmv_to_the_fen_across_partial_refunds_clusters_and_periods(start_services: Any) -> None:
    api = commerce(start_services)
    place = set_up_place(api)
    tea_v, fruit_v = place.tea_village, place.fruit_village
    shop = open_shop(api)
    tea = list_product(api, shop, tea_v, price_fen=12_800)
    fruit = list_product(api, shop, fruit_v, price_fen=3_333)

    # The fruit village moves from the west cluster to the east one on 1 June.
    leave = f"/api/v1/alliance/units/{fruit_v}/memberships/{place.west}/leave"
    admin(api, leave, {"left_on": "2026-06-01"})
    admin(
        api,
        f"/api/v1/alliance/units/{fruit_v}/memberships",
        {"cluster_id": place.east, "joined_on": "2026-06-01"},
    )

    def moved() -> None:
        village = api.get(f"{C}/directory/villages/{fruit_v}", role="ops").json()
        assert village["cluster_id"] == place.east, village

    eventually(moved)

    a = place_order(api, shop, [(tea, 3), (fruit, 7)])["id"]  # 38400 + 23331 = 61731
    pay(api, a, "2026-05-20T10:00:00+08:00")
    b = place_order(api, shop, [(fruit, 2)])["id"]  # 6666, paid 31 May late evening
    pay(api, b, "2026-05-31T23:30:00+08:00")
    c = place_order(api, shop, [(fruit, 1)])["id"]  # 3333, paid 1 June 00:30 in Shanghai
    pay(api, c, "2026-05-31T16:30:00+00:00")
    place_order(api, shop, [(tea, 1)])  # never paid: no GMV

    # 1000 in proportion to 38400 : 23331 -> 622.05 : 377.95 -> 622 + 378 (largest remainder)
    r1 = refund(api, a, 1_000, "2026-05-25T12:00:00+08:00")
    assert {line["line_id"]: line["refunded_fen"] for line in r1["lines"]} == {"1": 622, "2": 378}
    refund(api, a, 333, "2026-06-02T12:00:00+08:00", lines=[{"line_id": "2", "amount_fen": 333}])
    # 2 in proportion to 37778 : 22620 -> 1.25 : 0.75 -> 1 + 1
    r3 = refund(api, a, 2, "2026-06-03T12:00:00+08:00")
    assert {line["line_id"]: line["refunded_fen"] for line in r3["lines"]} == {"1": 623, "2": 712}

    def gmv(period: str, group: str = "village") -> dict[str, Any]:
        response = api.get(f"{C}/gmv", params={"period": period, "group": group})
        assert response.status_code == 200, response.text
        return response.json()

    may, june = gmv("2026-05"), gmv("2026-06")
    assert by(may["rows"], "village_id") == {
        tea_v: (38_400, 622, 37_778),
        fruit_v: (23_331 + 6_666, 378, 29_619),
    }
    assert by(june["rows"], "village_id") == {tea_v: (0, 1, -1), fruit_v: (3_333, 334, 2_999)}
    quarter = gmv("2026-Q2")
    assert by(quarter["rows"], "village_id") == {
        tea_v: (38_400, 623, 37_777),
        fruit_v: (33_330, 712, 32_618),
    }
    assert quarter["total"] == {"paid_fen": 71_730, "refunded_fen": 1_335, "gmv_fen": 70_395}
    assert gmv("2026")["total"] == quarter["total"]
    assert gmv("2026-Q1")["rows"] == [] and gmv("2026-07")["total"]["gmv_fen"] == 0

    # Clusters: each amount counts where the village was on the order's paid day.
    assert by(gmv("2026-05", "cluster")["rows"], "cluster_id") == {
        place.east: (38_400, 622, 37_778),
        place.west: (29_997, 378, 29_619),
    }
    assert by(gmv("2026-06", "cluster")["rows"], "cluster_id") == {
        place.east: (3_333, 1, 3_332),  # order c (fruit, paid in June) + the tea refund
        place.west: (0, 334, -334),  # refunds of order a, paid in May while fruit was west
    }
    clusters = gmv("2026-Q2", "cluster")
    assert by(clusters["rows"], "cluster_id") == {
        place.east: (41_733, 623, 41_110),
        place.west: (29_997, 712, 29_285),
    }
    assert clusters["total"] == quarter["total"]

    # The same figures from the events the ranking service consumes.
    events = api.events("commerce")
    paid = sum(e["data"]["total_fen"] for e in events if e["type"] == "OrderPaid")
    refunded = sum(
        part["amount_fen"]
        for e in events
        if e["type"] == "RefundCompleted"
        for part in e["data"]["lines"]
    )
    assert paid - refunded == 70_395

    rate = api.get(f"{C}/refund-rate", params={"period": "2026-Q2"}).json()
    assert (rate["paid_orders"], rate["refunded_orders"], rate["refunded_fen"]) == (3, 1, 1_335)
    assert rate["amount_rate"] == "0.0186"  # 1335 / 71730
    top = api.get(f"{C}/top-products", params={"period": "2026-Q2", "limit": 1}).json()
    assert top["products"] == [
        {
            "product_id": tea,
            "name": "明前龙井 250g",
            "village_id": tea_v,
            "quantity": 3,
            "gmv_fen": 37_777,
        }
    ]
    rejected(api.get(f"{C}/gmv", params={"period": "2026-13"}), "period")
    rejected(api.get(f"{C}/gmv", params={"period": "2026", "group": "town"}), "group")
    mine = api.get(f"{C}/gmv", params={"period": "2026", "district": DISTRICT}).json()
    assert mine["total"] == quarter["total"]
    other = api.get(f"{C}/gmv", params={"period": "2026", "district": "D-west"}).json()
    assert other["rows"] == []
