"""Commerce: a village station per cluster and a platform store, the clusters' theme products,
orders paid over the history, a few refunds, and live-stream sessions."""

from __future__ import annotations

from datetime import timedelta

from demo.common import MERCHANT, Demo, at, day_in, months, now
from demo.district import CLUSTERS, DISTRICT

C = "/api/v1/commerce"
#: per cluster: (product name, price in fen)
PRODUCTS = {
    "C-BAYBERRY": (("东魁杨梅 5斤礼盒", 16800), ("杨梅酒 500ml", 8800)),
    "C-SEAFOOD": (("青蟹 4只装", 29800), ("南美白对虾 2kg", 13800)),
    "C-TEA": (("明前白茶 250g", 26800), ("高山绿茶 500g", 15800)),
    "C-RICE": (("稻香大米 10kg", 9800), ("富硒米 5kg", 6800)),
    "C-TOURISM": (("民宿双人套票", 59800), ("农家乐套餐", 19800)),
    "C-FLOWERS": (("盆栽蝴蝶兰", 12800), ("桂花苗 3株", 9900)),
    "C-VEG": (("时令蔬菜箱 5kg", 6800), ("有机番茄 3kg", 4800)),
}
PLATFORM = "S-PLATFORM"


def shop(cluster_id: str) -> str:
    return f"S-{cluster_id}"


def products(cluster_id: str) -> list[str]:
    return [f"PR-{cluster_id}-{n + 1}" for n in range(len(PRODUCTS[cluster_id]))]


def setup(demo: Demo) -> None:
    api = demo.api
    api.ensure(
        f"{C}/shops",
        {
            "id": PLATFORM,
            "district": DISTRICT,
            "name": "红盟共富优选旗舰店",
            "channel": "platform_store",
            "platform": "douyin",
            "commission_rate_bp": 600,
            "after_sale_days": 7,
        },
        role=MERCHANT,
    )
    for cluster_id, name, _theme in CLUSTERS:
        villages = demo.district.in_cluster(cluster_id)
        api.ensure(
            f"{C}/shops",
            {
                "id": shop(cluster_id),
                "district": DISTRICT,
                "village_id": villages[0].id,
                "name": f"{name}共富集市",
                "channel": "own_station",
                "commission_rate_bp": 300,
                "after_sale_days": 7,
            },
            role=MERCHANT,
        )
        for n, (product, (title, price)) in enumerate(
            zip(products(cluster_id), PRODUCTS[cluster_id], strict=True)
        ):
            village = villages[n % len(villages)]
            api.ensure(
                f"{C}/products",
                {
                    "id": product,
                    "shop_id": shop(cluster_id),
                    "name": title,
                    "village_id": village.id,
                    "producer_id": f"COOP-{village.id}",
                    "producer_type": "cooperative" if n == 0 else "collective",
                    "price_fen": price,
                    "stock": 1_000_000,
                },
                role=MERCHANT,
            )
    if demo.history:
        history(demo)


def history(demo: Demo) -> None:
    """Two orders per cluster and month (a bulk order and a retail one), a refund now and then;
    this year's months sell more than last year's, more so in some clusters."""
    rng = demo.rng
    for year, month in months(demo.first_day, demo.today):
        for index, (cluster_id, _name, _theme) in enumerate(CLUSTERS):
            growth = 1 + (0.1 + 0.15 * (index % 4)) * (year - demo.first_day.year)
            for n, product in enumerate(products(cluster_id)):
                day = day_in(year, month, rng, demo.today)
                quantity = int(rng.randint(20, 80) * growth) if n == 0 else rng.randint(3, 20)
                order = f"OR-H{year}{month:02d}-{cluster_id}-{n}"
                demo.api.ensure(
                    f"{C}/orders",
                    {
                        "id": order,
                        "shop_id": shop(cluster_id),
                        "placed_at": at(day, 10, n),
                        "lines": [{"product_id": product, "quantity": quantity}],
                    },
                    role=MERCHANT,
                )
                demo.api.ensure(
                    f"{C}/orders/{order}/pay",
                    {"paid_at": at(day, 10, 5 + n)},
                    role=MERCHANT,
                    key=f"demo:pay:{order}",
                )


# -- the steady stream ----------------------------------------------------------------------------


def sale(demo: Demo) -> None:
    rng = demo.rng
    cluster_id = rng.choice(CLUSTERS)[0]
    lines = [
        {"product_id": product, "quantity": rng.randint(1, 6)}
        for product in rng.sample(products(cluster_id), rng.randint(1, 2))
    ]
    live = [s for s in demo.bucket("live") if s["cluster"] == cluster_id]
    body = {"id": demo.serial("OR"), "shop_id": shop(cluster_id), "placed_at": now().isoformat()}
    if live:
        body["live_session_id"] = live[0]["id"]
    order = demo.api.post(f"{C}/orders", {**body, "lines": lines}, role=MERCHANT)
    if rng.random() < 0.9:
        demo.api.post(
            f"{C}/orders/{order['id']}/pay", {"paid_at": now().isoformat()}, role=MERCHANT
        )
        demo.bucket("paid").append(order["id"])


def fulfil(demo: Demo) -> None:
    """Ship and deliver a paid order; now and then a buyer asks for part of the money back."""
    paid = demo.bucket("paid")
    if not paid:
        return sale(demo)
    order = paid.pop(0)
    demo.api.post(
        f"{C}/orders/{order}/ship",
        {"carrier": demo.rng.choice(["EMS", "顺丰", "中通"])},
        role=MERCHANT,
    )
    delivered = now() + timedelta(seconds=1)
    demo.api.post(
        f"{C}/orders/{order}/deliver", {"delivered_at": delivered.isoformat()}, role=MERCHANT
    )
    if demo.rng.random() < 0.15:
        refund = demo.serial("RF")
        details = demo.api.get(f"{C}/orders/{order}", role=MERCHANT)
        amount = max(100, details["total_fen"] // demo.rng.choice((2, 3, 5)))
        requested = (delivered + timedelta(seconds=1)).isoformat()
        demo.api.post(
            f"{C}/orders/{order}/refunds",
            {"id": refund, "amount_fen": amount, "reason": "damaged", "requested_at": requested},
            role=MERCHANT,
        )
        demo.api.post(
            f"{C}/orders/{order}/refunds/{refund}/approve", {"decided_at": requested}, role=MERCHANT
        )
    return None


def live_session(demo: Demo) -> None:
    """Start a live session in a cluster's station, or end the one running."""
    live = demo.bucket("live")
    if live:
        session = live.pop(0)
        viewers = demo.rng.randint(800, 6000)
        demo.api.post(
            f"{C}/live-sessions/{session['id']}/end",
            {"ended_at": now().isoformat(), "viewers": viewers, "peak_viewers": viewers // 5},
            role=MERCHANT,
        )
        return
    cluster_id, name, theme = demo.rng.choice(CLUSTERS)
    session = demo.serial("LIVE")
    started = now()
    demo.api.post(
        f"{C}/live-sessions",
        {
            "id": session,
            "shop_id": shop(cluster_id),
            "title": f"{theme}直播助农",
            "host": "村书记",
            "scheduled_start_at": started.isoformat(),
            "scheduled_end_at": (started + timedelta(hours=2)).isoformat(),
        },
        role=MERCHANT,
    )
    demo.api.post(
        f"{C}/live-sessions/{session}/start", {"started_at": started.isoformat()}, role=MERCHANT
    )
    live.append({"id": session, "cluster": cluster_id})


def sweep(demo: Demo) -> None:
    as_of = {"as_of": demo.today.isoformat()}
    demo.api.post(f"{C}/after-sale/close", as_of, role="ops")
    demo.api.post(f"{C}/settlements", as_of, role="ops")
