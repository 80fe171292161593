"""Read models of the commerce service, built inline from its own events.

``cm_sale_lines`` and ``cm_refund_lines`` carry GMV: a line counts its ``amount_fen`` on the day
it was paid, a refund part subtracts on the day it was refunded (both days in Asia/Shanghai), the
way the ranking service windows ``OrderPaid`` and ``RefundCompleted``. For clusters, both count
for the cluster the village belonged to on the day the order was paid.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
    and_,
    case,
    func,
    or_,
    select,
)
from sqlalchemy.engine import Connection

from shared.clock import local_day
from shared.directory import memberships
from shared.eventstore import RecordedEvent
from shared.projections import Projection

model = MetaData()

products = Table(
    "cm_products",
    model,
    Column("product_id", String(64), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("village_id", String(64), nullable=False),
    Column("producer_id", String(64), nullable=False),
    Column("producer_type", String(16), nullable=False),
    Column("price_fen", BigInteger, nullable=False),
    Column("stock", Integer, nullable=False),
    Column("listed", Integer, nullable=False),
)
orders = Table(
    "cm_orders",
    model,
    Column("order_id", String(160), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("district", String(64), nullable=False),
    Column("live_session_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("total_fen", BigInteger, nullable=False),
    Column("refunded_fen", BigInteger, nullable=False),
    Column("pending_refunds", Integer, nullable=False),
    Column("paid_on", Date),
    Column("after_sale_closes_on", Date),
    Column("completed_on", Date),
)
sale_lines = Table(
    "cm_sale_lines",
    model,
    Column("order_id", String(160), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("district", String(64), nullable=False),
    Column("live_session_id", String(64)),
    Column("product_id", String(64), nullable=False),
    Column("producer_id", String(64), nullable=False),
    Column("producer_type", String(16), nullable=False),
    Column("village_id", String(64), nullable=False),
    Column("quantity", Integer, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("refunded_fen", BigInteger, nullable=False),
    Column("paid_on", Date),
    Column("completed_on", Date),
    Column("settlement_id", String(160)),
)
refund_lines = Table(
    "cm_refund_lines",
    model,
    Column("order_id", String(160), primary_key=True),
    Column("refund_id", String(160), primary_key=True),
    Column("line_id", String(64), primary_key=True),
    Column("live_session_id", String(64)),
    Column("product_id", String(64), nullable=False),
    Column("producer_id", String(64), nullable=False),
    Column("village_id", String(64), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("refunded_on", Date, nullable=False),
    Column("paid_on", Date, nullable=False),
)
live_sessions = Table(
    "cm_live_sessions",
    model,
    Column("session_id", String(64), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("status", String(16), nullable=False),
    Column("scheduled_start_at", String(40), nullable=False),
    Column("scheduled_end_at", String(40), nullable=False),
    Column("started_at", String(40)),
    Column("ended_at", String(40)),
    Column("duration_seconds", Integer),
    Column("viewers", Integer),
    Column("peak_viewers", Integer),
)
settlements = Table(
    "cm_settlements",
    model,
    Column("settlement_id", String(160), primary_key=True),
    Column("producer_id", String(64), nullable=False),
    Column("producer_type", String(16), nullable=False),
    Column("village_id", String(64), nullable=False),
    Column("net_revenue_fen", BigInteger, nullable=False),
    Column("fees_fen", BigInteger, nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("settled_on", Date, nullable=False),
)


def _day(instant: str) -> date:
    return local_day(datetime.fromisoformat(instant))


class SalesLedger(Projection):
    metadata = model
    handles = frozenset(
        {
            "ProductListed",
            "ProductDelisted",
            "ProductRestocked",
            "ProductStockReserved",
            "ProductStockReleased",
            "LiveSessionScheduled",
            "LiveSessionStarted",
            "LiveSessionEnded",
            "OrderPlaced",
            "OrderPaid",
            "OrderCancelled",
            "OrderShipped",
            "OrderDelivered",
            "OrderCompleted",
            "RefundRequested",
            "RefundRejected",
            "RefundCompleted",
            "ProducerSettled",
        }
    )

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        getattr(self, f"_on_{event.type}")(event.data, db)

    # -- products -------------------------------------------------------------------------------

    def _on_ProductListed(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            products.insert().values(
                **{c.name: data[c.name] for c in products.columns if c.name != "listed"},
                listed=1,
            )
        )

    def _on_ProductDelisted(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            products.update().where(products.c.product_id == data["product_id"]).values(listed=0)
        )

    def _stock(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            products.update()
            .where(products.c.product_id == data["product_id"])
            .values(stock=data["stock"])
        )

    _on_ProductRestocked = _on_ProductStockReserved = _on_ProductStockReleased = _stock

    # -- live sessions --------------------------------------------------------------------------

    def _on_LiveSessionScheduled(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            live_sessions.insert().values(
                session_id=data["session_id"],
                shop_id=data["shop_id"],
                title=data["title"],
                status="scheduled",
                scheduled_start_at=data["scheduled_start_at"],
                scheduled_end_at=data["scheduled_end_at"],
            )
        )

    def _session(self, session_id: str, db: Connection, **values: Any) -> None:
        db.execute(
            live_sessions.update().where(live_sessions.c.session_id == session_id).values(**values)
        )

    def _on_LiveSessionStarted(self, data: dict[str, Any], db: Connection) -> None:
        self._session(data["session_id"], db, status="live", started_at=data["started_at"])

    def _on_LiveSessionEnded(self, data: dict[str, Any], db: Connection) -> None:
        self._session(
            data["session_id"],
            db,
            status="ended",
            ended_at=data["ended_at"],
            duration_seconds=data["duration_seconds"],
            viewers=data["viewers"],
            peak_viewers=data["peak_viewers"],
        )

    # -- orders ---------------------------------------------------------------------------------

    def _order(self, order_id: str, db: Connection, **values: Any) -> None:
        db.execute(orders.update().where(orders.c.order_id == order_id).values(**values))

    def _on_OrderPlaced(self, data: dict[str, Any], db: Connection) -> None:
        common = {
            "order_id": data["order_id"],
            "shop_id": data["shop_id"],
            "district": data["district"],
            "live_session_id": data["live_session_id"],
        }
        db.execute(
            orders.insert().values(
                **common,
                status="placed",
                total_fen=data["total_fen"],
                refunded_fen=0,
                pending_refunds=0,
            )
        )
        db.execute(
            sale_lines.insert(),
            [
                {
                    **common,
                    "line_id": line["line_id"],
                    "product_id": line["product_id"],
                    "producer_id": line["producer_id"],
                    "producer_type": line["producer_type"],
                    "village_id": line["village_id"],
                    "quantity": line["quantity"],
                    "amount_fen": line["amount_fen"],
                    "refunded_fen": 0,
                }
                for line in data["lines"]
            ],
        )

    def _on_OrderPaid(self, data: dict[str, Any], db: Connection) -> None:
        paid_on = _day(data["paid_at"])
        self._order(data["order_id"], db, status="paid", paid_on=paid_on)
        db.execute(
            sale_lines.update()
            .where(sale_lines.c.order_id == data["order_id"])
            .values(paid_on=paid_on)
        )

    def _on_OrderCancelled(self, data: dict[str, Any], db: Connection) -> None:
        self._order(data["order_id"], db, status="cancelled", pending_refunds=0)

    def _on_OrderShipped(self, data: dict[str, Any], db: Connection) -> None:
        self._order(data["order_id"], db, status="shipped")

    def _on_OrderDelivered(self, data: dict[str, Any], db: Connection) -> None:
        self._order(
            data["order_id"],
            db,
            status="delivered",
            after_sale_closes_on=date.fromisoformat(data["after_sale_closes_on"]),
        )

    def _on_OrderCompleted(self, data: dict[str, Any], db: Connection) -> None:
        completed_on = date.fromisoformat(data["completed_on"])
        self._order(data["order_id"], db, status="completed", completed_on=completed_on)
        db.execute(
            sale_lines.update()
            .where(sale_lines.c.order_id == data["order_id"])
            .values(completed_on=completed_on)
        )

    def _on_RefundRequested(self, data: dict[str, Any], db: Connection) -> None:
        self._order(data["order_id"], db, pending_refunds=orders.c.pending_refunds + 1)

    def _on_RefundRejected(self, data: dict[str, Any], db: Connection) -> None:
        self._order(data["order_id"], db, pending_refunds=orders.c.pending_refunds - 1)

    def _on_RefundCompleted(self, data: dict[str, Any], db: Connection) -> None:
        order_id = data["order_id"]
        # A cancellation's refund was never requested, so it frees no pending request.
        requested = data["cause"] == "refund_request"
        self._order(
            order_id,
            db,
            refunded_fen=orders.c.refunded_fen + data["amount_fen"],
            pending_refunds=orders.c.pending_refunds - (1 if requested else 0),
        )
        paid_on = db.execute(select(orders.c.paid_on).where(orders.c.order_id == order_id)).scalar()
        refunded_on = _day(data["refunded_at"])
        for part in data["lines"]:
            db.execute(
                sale_lines.update()
                .where(sale_lines.c.order_id == order_id, sale_lines.c.line_id == part["line_id"])
                .values(refunded_fen=sale_lines.c.refunded_fen + part["amount_fen"])
            )
        db.execute(
            refund_lines.insert(),
            [
                {
                    "order_id": order_id,
                    "refund_id": data["refund_id"],
                    "line_id": part["line_id"],
                    "live_session_id": data["live_session_id"],
                    "product_id": part["product_id"],
                    "producer_id": part["producer_id"],
                    "village_id": part["village_id"],
                    "amount_fen": part["amount_fen"],
                    "refunded_on": refunded_on,
                    "paid_on": paid_on,
                }
                for part in data["lines"]
            ],
        )

    def _on_ProducerSettled(self, data: dict[str, Any], db: Connection) -> None:
        db.execute(
            settlements.insert().values(
                **{
                    c.name: data[c.name]
                    for c in settlements.columns
                    if c.name not in ("settled_on",)
                },
                settled_on=date.fromisoformat(data["settled_on"]),
            )
        )
        for part in data["lines"]:
            db.execute(
                sale_lines.update()
                .where(
                    sale_lines.c.order_id == part["order_id"],
                    sale_lines.c.line_id == part["line_id"],
                )
                .values(settlement_id=data["settlement_id"])
            )


SALES = SalesLedger()


# -- queries ---------------------------------------------------------------------------------------


def _member_on_paid_day(village: Any, paid_on: Any) -> Any:
    return and_(
        memberships.c.unit_id == village,
        memberships.c.joined_on <= paid_on,
        or_(memberships.c.left_on.is_(None), memberships.c.left_on > paid_on),
    )


def gmv(
    db: Connection, start: date, end: date, group: str, district: str | None = None
) -> list[dict[str, Any]]:
    """Paid, refunded and GMV (paid minus refunded) per village or cluster, days start..end."""
    paid = select(
        sale_lines.c.village_id.label("village_id"),
        sale_lines.c.paid_on.label("paid_on"),
        sale_lines.c.amount_fen.label("paid_fen"),
        func.cast(0, BigInteger).label("refunded_fen"),
        sale_lines.c.order_id.label("order_id"),
    ).where(sale_lines.c.paid_on.between(start, end))
    refunded = select(
        refund_lines.c.village_id,
        refund_lines.c.paid_on,
        func.cast(0, BigInteger),
        refund_lines.c.amount_fen,
        func.cast(None, String),
    ).where(refund_lines.c.refunded_on.between(start, end))
    if district is not None:
        paid = paid.where(sale_lines.c.district == district)
        refunded = refunded.join(orders, orders.c.order_id == refund_lines.c.order_id).where(
            orders.c.district == district
        )
    facts = paid.union_all(refunded).subquery()
    if group == "cluster":
        key = memberships.c.cluster_id
        source = facts.join(memberships, _member_on_paid_day(facts.c.village_id, facts.c.paid_on))
    else:
        key, source = facts.c.village_id, facts
    rows = db.execute(
        select(
            key.label("key"),
            func.sum(facts.c.paid_fen).label("paid_fen"),
            func.sum(facts.c.refunded_fen).label("refunded_fen"),
            func.count(func.distinct(facts.c.order_id)).label("orders"),
        )
        .select_from(source)
        .group_by(key)
        .order_by(key)
    )
    return [
        {
            f"{group}_id": row.key,
            "paid_fen": int(row.paid_fen),
            "refunded_fen": int(row.refunded_fen),
            "gmv_fen": int(row.paid_fen) - int(row.refunded_fen),
            "orders": int(row.orders),
        }
        for row in rows
    ]


def session_figures(db: Connection, session_id: str) -> dict[str, int]:
    """Orders attributed to a live session, those paid, and their GMV so far."""
    placed, paid_orders, paid_fen = db.execute(
        select(
            func.count(),
            func.count(orders.c.paid_on),
            func.coalesce(func.sum(case((orders.c.paid_on.is_not(None), orders.c.total_fen))), 0),
        ).where(orders.c.live_session_id == session_id)
    ).one()
    refunded_fen = db.execute(
        select(func.coalesce(func.sum(refund_lines.c.amount_fen), 0)).where(
            refund_lines.c.live_session_id == session_id
        )
    ).scalar_one()
    return {
        "orders": int(placed),
        "paid_orders": int(paid_orders),
        "paid_fen": int(paid_fen),
        "refunded_fen": int(refunded_fen),
        "gmv_fen": int(paid_fen) - int(refunded_fen),
    }


def refund_rate(db: Connection, start: date, end: date) -> dict[str, Any]:
    """Of the orders paid in the period: how many had a refund, and how much was given back."""
    paid_orders, paid_fen, refunded_orders, refunded_fen = db.execute(
        select(
            func.count(),
            func.coalesce(func.sum(orders.c.total_fen), 0),
            func.count(case((orders.c.refunded_fen > 0, 1))),
            func.coalesce(func.sum(orders.c.refunded_fen), 0),
        ).where(orders.c.paid_on.between(start, end))
    ).one()
    return {
        "paid_orders": int(paid_orders),
        "refunded_orders": int(refunded_orders),
        "paid_fen": int(paid_fen),
        "refunded_fen": int(refunded_fen),
    }


def top_products(db: Connection, start: date, end: date, limit: int) -> list[dict[str, Any]]:
    """Products by GMV of the lines paid in the period (net of those lines' refunds)."""
    net = func.sum(sale_lines.c.amount_fen - sale_lines.c.refunded_fen)
    rows = db.execute(
        select(
            sale_lines.c.product_id,
            products.c.name,
            products.c.village_id,
            func.sum(sale_lines.c.quantity).label("quantity"),
            net.label("gmv_fen"),
        )
        .join(products, products.c.product_id == sale_lines.c.product_id)
        .where(sale_lines.c.paid_on.between(start, end))
        .group_by(sale_lines.c.product_id, products.c.name, products.c.village_id)
        .order_by(net.desc(), sale_lines.c.product_id)
        .limit(limit)
    )
    return [
        {
            "product_id": row.product_id,
            "name": row.name,
            "village_id": row.village_id,
            "quantity": int(row.quantity),
            "gmv_fen": int(row.gmv_fen),
        }
        for row in rows
    ]


def completable_orders(db: Connection, as_of: date) -> list[str]:
    """Delivered orders whose after-sale window has closed by ``as_of``."""
    return list(
        db.execute(
            select(orders.c.order_id)
            .where(
                orders.c.status == "delivered",
                orders.c.after_sale_closes_on <= as_of,
                orders.c.pending_refunds == 0,
            )
            .order_by(orders.c.order_id)
        ).scalars()
    )


def settleable_producers(db: Connection, as_of: date) -> dict[str, list[str]]:
    """Producer -> the completed orders (by ``as_of``) with lines of theirs not yet settled."""
    rows = db.execute(
        select(sale_lines.c.producer_id, sale_lines.c.order_id)
        .where(sale_lines.c.completed_on <= as_of, sale_lines.c.settlement_id.is_(None))
        .distinct()
        .order_by(sale_lines.c.producer_id, sale_lines.c.order_id)
    )
    found: dict[str, list[str]] = {}
    for producer_id, order_id in rows:
        found.setdefault(producer_id, []).append(order_id)
    return found


def producer_statement(db: Connection, producer_id: str, start: date, end: date) -> dict[str, Any]:
    """A producer's sales paid in the period, their refunds, and the settlements made in it."""
    lines = db.execute(
        select(sale_lines)
        .where(sale_lines.c.producer_id == producer_id, sale_lines.c.paid_on.between(start, end))
        .order_by(sale_lines.c.paid_on, sale_lines.c.order_id, sale_lines.c.line_id)
    ).all()
    paid = db.execute(
        select(settlements)
        .where(
            settlements.c.producer_id == producer_id,
            settlements.c.settled_on.between(start, end),
        )
        .order_by(settlements.c.settlement_id)
    ).all()
    sold = sum(line.amount_fen for line in lines)
    refunded = sum(line.refunded_fen for line in lines)
    return {
        "producer_id": producer_id,
        "sold_fen": sold,
        "refunded_fen": refunded,
        "net_revenue_fen": sold - refunded,
        "settled_fen": sum(s.amount_fen for s in paid),
        "fees_fen": sum(s.fees_fen for s in paid),
        "lines": [
            {
                "order_id": line.order_id,
                "line_id": line.line_id,
                "product_id": line.product_id,
                "village_id": line.village_id,
                "quantity": line.quantity,
                "amount_fen": line.amount_fen,
                "refunded_fen": line.refunded_fen,
                "paid_on": line.paid_on.isoformat(),
                "settlement_id": line.settlement_id,
            }
            for line in lines
        ],
        "settlements": [
            {
                "settlement_id": s.settlement_id,
                "village_id": s.village_id,
                "net_revenue_fen": s.net_revenue_fen,
                "fees_fen": s.fees_fen,
                "amount_fen": s.amount_fen,
                "settled_on": s.settled_on.isoformat(),
            }
            for s in paid
        ],
    }
