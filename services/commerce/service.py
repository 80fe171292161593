"""The commerce service: shops, products, live-stream sessions, orders and refunds, platform
imports, producer settlement, and the sales figures (GMV, refund rate, top products).

Commands that walk many aggregates (a platform import, closing after-sale windows, settling
producers) run one unit of work per order or per producer, not one transaction for the whole
batch: a batch would otherwise collide with every order placed meanwhile and retry as a whole.
Each step is idempotent, so running the batch again finishes what an interrupted run left.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any, TypeVar

import marshmallow as ma
from sqlalchemy import select

from shared import directory
from shared.commands import UnitOfWork, execute
from shared.directory import DIRECTORY, DirectoryMember
from shared.errors import AggregateNotFound, Conflict, DomainError, NotFound, Unprocessable
from shared.http import command, query
from shared.service import ServiceBase

from . import projections as views
from .domain import (
    ImportBatch,
    Keyed,
    LiveSession,
    Order,
    ProducerAccount,
    Product,
    SettleableLine,
    Shop,
)
from .events import PlatformOrdersImported
from .schemas import (
    AsOf,
    CancelOrder,
    CompleteOrder,
    DecideRefund,
    Delist,
    DeliverOrder,
    EndSession,
    ImportArgs,
    ImportOrders,
    ImportRow,
    ListProduct,
    OpenShop,
    OrderOut,
    PayOrder,
    PeriodArgs,
    PlaceOrder,
    ProductOut,
    RequestRefund,
    Restock,
    ScheduleSession,
    SessionOut,
    ShipOrder,
    ShopOut,
    StartSession,
)

K = TypeVar("K", bound=Keyed)

WRITERS = ["merchant", "village_cadre", "district_admin"]
#: Who may run the time-driven commands (a scheduler uses an ops token).
SWEEPERS = ["ops", "merchant", "district_admin"]
READERS = [*WRITERS, "ops", "service", "alliance_secretary"]
API = "/api/v1/commerce"
IMPORT_ROW = ImportRow()
IMPORT_ORDERS = ImportOrders()
IMPORT_REPORT = PlatformOrdersImported()


def now() -> datetime:
    return datetime.now(UTC)


def existing(uow: UnitOfWork, cls: type[K], key: str, field: str) -> K:
    """An aggregate a request names in its body: unknown is a 422 naming that field."""
    found = uow.find(cls, cls.stream(key))
    if found is None:
        raise DomainError(f"{cls.stream_type} {key!r} does not exist", field)
    return found


def addressed(uow: UnitOfWork, cls: type[K], key: str) -> K:
    """The aggregate a URL names: unknown is a 404."""
    return uow.get(cls, cls.stream(key))


class CommerceService(DirectoryMember, ServiceBase):
    name = "commerce"
    projections = [DIRECTORY, views.SALES]

    # -- helpers --------------------------------------------------------------------------------

    def _step(self, decide: Callable[[UnitOfWork], Any]) -> Any:
        """One unit of work of a batch command. Without the request's Idempotency-Key: that key
        belongs to the batch's answer, not to each of its steps."""
        return execute(self.store.events, self.store.context(), decide).result

    def _answer(self, result: Any) -> Any:
        """A batch command's answer, stored for its Idempotency-Key (if any)."""
        return self.store.run(lambda uow: result)

    def _get(self, cls: type[K], key: str) -> K:
        return self.store.get(cls, cls.stream(key))

    def _command(self, cls: type[K], key: str, act: Callable[[K], None]) -> Any:
        """Act on one shop, product, session or order of the caller's district."""

        def decide(uow: UnitOfWork) -> K:
            target = addressed(uow, cls, key)
            self.store.principal.require_scope(district=target.district)  # type: ignore[attr-defined]
            act(target)
            return target

        return self.store.run(decide)

    def _order_command(self, order_id: str, act: Callable[[Order], None]) -> Any:
        return self._command(Order, order_id, act)

    # -- shops and products ---------------------------------------------------------------------

    @command("POST", f"{API}/shops", body=OpenShop, response=ShopOut, roles=WRITERS, status=201)
    def open_shop(self, request: Any, body: dict[str, Any]) -> Any:
        """Open a shop or channel: an own station or a platform store."""
        self.store.principal.require_scope(district=body["district"], village=body["village_id"])

        def decide(uow: UnitOfWork) -> Shop:
            if body["village_id"] is not None:
                village = directory.require_village(uow.connection, body["village_id"])
                if village.district != body["district"]:
                    raise DomainError("the village is in another district", "village_id")
            shop = uow.create(Shop, Shop.stream(body["id"]))
            facts = {k: v for k, v in body.items() if k != "id"}
            shop.open(**{**facts, "opened_at": body["opened_at"] or now()})
            return shop

        return self.store.run(decide)

    @query(f"{API}/shops/<shop_id>", response=ShopOut, roles=READERS)
    def get_shop(self, request: Any, shop_id: str) -> Shop:
        """One shop."""
        return self._get(Shop, shop_id)

    @command(
        "POST", f"{API}/products", body=ListProduct, response=ProductOut, roles=WRITERS, status=201
    )
    def list_product(self, request: Any, body: dict[str, Any]) -> Any:
        """List a product of one producer from one origin village in a shop."""

        def decide(uow: UnitOfWork) -> Product:
            shop = existing(uow, Shop, body["shop_id"], "shop_id")
            self.store.principal.require_scope(district=shop.district, village=body["village_id"])
            village = directory.require_village(uow.connection, body["village_id"])
            if village.district != shop.district:
                raise DomainError("the village is not in the shop's district", "village_id")
            product = uow.create(Product, Product.stream(body["id"]))
            facts = {k: v for k, v in body.items() if k != "id"}
            product.list(
                **{**facts, "district": shop.district, "listed_at": body["listed_at"] or now()}
            )
            return product

        return self.store.run(decide)

    @command(
        "POST",
        f"{API}/products/<product_id>/delist",
        body=Delist,
        response=ProductOut,
        roles=WRITERS,
        status=201,
    )
    def delist_product(self, request: Any, product_id: str, body: dict[str, Any]) -> Any:
        """Stop offering a product."""
        return self._command(
            Product, product_id, lambda p: p.delist(body["reason"], body["delisted_at"] or now())
        )

    @command(
        "POST",
        f"{API}/products/<product_id>/restock",
        body=Restock,
        response=ProductOut,
        roles=WRITERS,
        status=201,
    )
    def restock_product(self, request: Any, product_id: str, body: dict[str, Any]) -> Any:
        """Add units to a product's stock."""
        return self._command(Product, product_id, lambda p: p.restock(body["quantity"]))

    @query(f"{API}/products/<product_id>", response=ProductOut, roles=READERS)
    def get_product(self, request: Any, product_id: str) -> Product:
        """One product, with its stock."""
        return self._get(Product, product_id)

    # -- live-stream sessions -------------------------------------------------------------------

    @command(
        "POST",
        f"{API}/live-sessions",
        body=ScheduleSession,
        response=SessionOut,
        roles=WRITERS,
        status=201,
    )
    def schedule_session(self, request: Any, body: dict[str, Any]) -> Any:
        """Schedule a live-stream sale in a shop."""

        def decide(uow: UnitOfWork) -> LiveSession:
            shop = existing(uow, Shop, body["shop_id"], "shop_id")
            self.store.principal.require_scope(district=shop.district)
            if body["village_id"] is not None:
                directory.require_village(uow.connection, body["village_id"])
            session = uow.create(LiveSession, LiveSession.stream(body["id"]))
            facts = {k: v for k, v in body.items() if k != "id"}
            session.schedule(**facts, district=shop.district)
            return session

        return self.store.run(decide)

    @command(
        "POST",
        f"{API}/live-sessions/<session_id>/start",
        body=StartSession,
        response=SessionOut,
        roles=WRITERS,
        status=201,
    )
    def start_session(self, request: Any, session_id: str, body: dict[str, Any]) -> Any:
        """The stream goes live."""
        return self._command(
            LiveSession, session_id, lambda s: s.start(body["started_at"] or now())
        )

    @command(
        "POST",
        f"{API}/live-sessions/<session_id>/end",
        body=EndSession,
        response=SessionOut,
        roles=WRITERS,
        status=201,
    )
    def end_session(self, request: Any, session_id: str, body: dict[str, Any]) -> Any:
        """The stream ends, with its audience; its orders and GMV so far are recorded."""

        def decide(uow: UnitOfWork) -> LiveSession:
            session = addressed(uow, LiveSession, session_id)
            self.store.principal.require_scope(district=session.district)
            figures = views.session_figures(uow.connection, session_id)
            session.end(
                body["ended_at"] or now(),
                body["viewers"],
                body["peak_viewers"],
                figures["orders"],
                figures["gmv_fen"],
            )
            return session

        return self.store.run(decide)

    @query(f"{API}/live-sessions/<session_id>/results", roles=READERS)
    def session_results(self, request: Any, session_id: str) -> dict[str, Any]:
        """A session's audience, attributed orders, GMV and conversion (paid orders / viewers)."""
        with self.store.events.engine.connect() as db:
            row = db.execute(
                select(views.live_sessions).where(views.live_sessions.c.session_id == session_id)
            ).first()
            if row is None:
                raise NotFound(f"live session {session_id!r} does not exist")
            figures = views.session_figures(db, session_id)
        viewers = row.viewers or 0
        conversion = f"{figures['paid_orders'] / viewers:.4f}" if viewers else None
        return {
            "session_id": session_id,
            "shop_id": row.shop_id,
            "title": row.title,
            "status": row.status,
            "started_at": row.started_at,
            "ended_at": row.ended_at,
            "duration_seconds": row.duration_seconds,
            "viewers": row.viewers,
            "peak_viewers": row.peak_viewers,
            **figures,
            "conversion": conversion,
        }

    # -- orders ---------------------------------------------------------------------------------

    def _place(
        self,
        uow: UnitOfWork,
        order_id: str,
        shop: Shop,
        lines_in: list[dict[str, Any]],
        placed_at: datetime,
        **facts: Any,
    ) -> Order:
        """Place an order and reserve its stock in the same unit of work: competing orders for
        the last units collide on the product's stream and are decided one after the other."""
        order = uow.create(Order, Order.stream(order_id))
        live_session_id = facts.get("live_session_id")
        if live_session_id is not None:
            session = existing(uow, LiveSession, live_session_id, "live_session_id")
            session.check_attributable(shop.key, placed_at)
        lines, seen = [], set()
        for index, wanted in enumerate(lines_in):
            line_id = wanted.get("line_id") or str(index + 1)
            if line_id in seen:
                raise DomainError(f"line {line_id!r} appears twice", f"lines.{index}.line_id")
            seen.add(line_id)
            field = f"lines.{index}.product_id"
            product = existing(uow, Product, wanted["product_id"], field)
            if product.shop_id != shop.key:
                raise DomainError(f"product {product.key!r} is not sold in this shop", field)
            product.reserve(order_id, wanted["quantity"], f"lines.{index}")
            amount = wanted.get("amount_fen")
            lines.append(
                {
                    "line_id": line_id,
                    "product_id": product.key,
                    "producer_id": product.producer_id,
                    "producer_type": product.producer_type,
                    "village_id": product.village_id,
                    "quantity": wanted["quantity"],
                    "unit_price_fen": product.price_fen,
                    "amount_fen": product.price_fen * wanted["quantity"]
                    if amount is None
                    else amount,
                }
            )
        order.place(
            lines,
            shop_id=shop.key,
            district=shop.district,
            commission_rate_bp=shop.commission_rate_bp,
            after_sale_days=shop.after_sale_days,
            placed_at=placed_at,
            live_session_id=live_session_id,
            source=facts.get("source", "direct"),
            platform=facts.get("platform"),
            external_id=facts.get("external_id"),
            buyer_ref=facts.get("buyer_ref"),
        )
        return order

    @command("POST", f"{API}/orders", body=PlaceOrder, response=OrderOut, roles=WRITERS, status=201)
    def place_order(self, request: Any, body: dict[str, Any]) -> Any:
        """Place an order; its stock is reserved. Optionally attributed to a live session."""

        def decide(uow: UnitOfWork) -> Order:
            shop = existing(uow, Shop, body["shop_id"], "shop_id")
            self.store.principal.require_scope(district=shop.district)
            return self._place(
                uow,
                body["id"],
                shop,
                body["lines"],
                body["placed_at"] or now(),
                live_session_id=body["live_session_id"],
                buyer_ref=body["buyer_ref"],
            )

        return self.store.run(decide)

    @query(f"{API}/orders/<order_id>", response=OrderOut, roles=READERS)
    def get_order(self, request: Any, order_id: str) -> Order:
        """One order with its lines and refunds."""
        return self._get(Order, order_id)

    @command(
        "POST",
        f"{API}/orders/<order_id>/pay",
        body=PayOrder,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def pay_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """The buyer paid the order's total."""
        return self._order_command(
            order_id, lambda order: order.pay(body["paid_at"] or now(), body["amount_fen"])
        )

    @command(
        "POST",
        f"{API}/orders/<order_id>/cancel",
        body=CancelOrder,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def cancel_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Cancel before shipping: stock goes back, a paid order is refunded in full."""
        at = body["cancelled_at"] or now()

        def decide(uow: UnitOfWork) -> Order:
            order = addressed(uow, Order, order_id)
            self.store.principal.require_scope(district=order.district)
            order.cancel(body["reason"], at)
            for line in order.lines.values():
                addressed(uow, Product, line.product_id).release(order_id, line.quantity)
            return order

        return self.store.run(decide)

    @command(
        "POST",
        f"{API}/orders/<order_id>/ship",
        body=ShipOrder,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def ship_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Ship a paid order."""
        return self._order_command(
            order_id,
            lambda order: order.ship(
                body["shipped_at"] or now(), body["carrier"], body["tracking_number"]
            ),
        )

    @command(
        "POST",
        f"{API}/orders/<order_id>/deliver",
        body=DeliverOrder,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def deliver_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """The order arrived; its after-sale window starts."""
        return self._order_command(
            order_id, lambda order: order.deliver(body["delivered_at"] or now())
        )

    @command(
        "POST",
        f"{API}/orders/<order_id>/complete",
        body=CompleteOrder,
        response=OrderOut,
        roles=[*WRITERS, "ops"],
        status=201,
    )
    def complete_order(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Complete one order whose after-sale window has closed by ``as_of``."""

        def act(order: Order) -> None:
            if order.status == "completed":
                return  # idempotent: already done
            if order.status != "delivered":
                raise DomainError(f"an order that is {order.status} cannot complete", "status")
            if order.pending_refunds():
                raise DomainError("a refund is still pending", "status")
            if not order.complete(body["as_of"]):
                closes = order.after_sale_closes_on
                raise DomainError(f"the after-sale window is open until {closes}", "as_of")

        return self._order_command(order_id, act)

    @command(
        "POST",
        f"{API}/orders/<order_id>/refunds",
        body=RequestRefund,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def request_refund(self, request: Any, order_id: str, body: dict[str, Any]) -> Any:
        """Ask for a refund of part or all of what was paid, within the after-sale window."""
        return self._order_command(
            order_id,
            lambda order: order.request_refund(
                body["id"],
                body["amount_fen"],
                body["reason"],
                body["requested_at"] or now(),
                body["lines"],
            ),
        )

    @command(
        "POST",
        f"{API}/orders/<order_id>/refunds/<refund_id>/approve",
        body=DecideRefund,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def approve_refund(
        self, request: Any, order_id: str, refund_id: str, body: dict[str, Any]
    ) -> Any:
        """Approve a refund: the money goes back (RefundCompleted)."""
        return self._order_command(
            order_id, lambda order: order.approve_refund(refund_id, body["decided_at"] or now())
        )

    @command(
        "POST",
        f"{API}/orders/<order_id>/refunds/<refund_id>/reject",
        body=DecideRefund,
        response=OrderOut,
        roles=WRITERS,
        status=201,
    )
    def reject_refund(
        self, request: Any, order_id: str, refund_id: str, body: dict[str, Any]
    ) -> Any:
        """Reject a refund."""
        return self._order_command(
            order_id,
            lambda order: order.reject_refund(
                refund_id, body["reason"], body["decided_at"] or now()
            ),
        )

    # -- time-driven: after-sale windows and settlement -----------------------------------------

    @command("POST", f"{API}/after-sale/close", body=AsOf, roles=SWEEPERS)
    def close_after_sale(self, request: Any, body: dict[str, Any]) -> Any:
        """Complete every delivered order whose after-sale window closed by ``as_of`` with no
        refund pending. Idempotent: run it as often as you like."""
        if (replayed := self.store.first_answer()) is not None:
            return replayed
        as_of: date = body["as_of"]
        with self.store.events.engine.connect() as db:
            due = views.completable_orders(db, as_of)
        completed = []
        for order_id in due:

            def decide(uow: UnitOfWork, order_id: str = order_id) -> bool:
                return addressed(uow, Order, order_id).complete(as_of)

            if self._step(decide):
                completed.append(order_id)
        return self._answer({"as_of": as_of.isoformat(), "completed": completed})

    @command("POST", f"{API}/settlements", body=AsOf, roles=SWEEPERS)
    def settle_producers(self, request: Any, body: dict[str, Any]) -> Any:
        """Settle every producer's completed order lines (after-sale window closed by ``as_of``)
        not settled before: net revenue minus the shops' commission. Idempotent."""
        if (replayed := self.store.first_answer()) is not None:
            return replayed
        as_of: date = body["as_of"]
        with self.store.events.engine.connect() as db:
            due = views.settleable_producers(db, as_of)
        settled = []
        for producer_id, order_ids in due.items():
            made = self._step(
                lambda uow, p=producer_id, o=order_ids: self._settle(uow, p, o, as_of)
            )
            settled.extend(made)
        return self._answer({"as_of": as_of.isoformat(), "settlements": settled})

    @staticmethod
    def _settle(
        uow: UnitOfWork, producer_id: str, order_ids: list[str], as_of: date
    ) -> list[dict[str, Any]]:
        """One producer's settlement, from the orders themselves (final once completed)."""
        stream = ProducerAccount.stream(producer_id)
        account = uow.find(ProducerAccount, stream) or uow.create(ProducerAccount, stream)
        lines, producer_type = [], ""
        for order_id in order_ids:
            order = addressed(uow, Order, order_id)
            if order.completed_on is None or order.completed_on > as_of:
                continue
            for line in order.lines.values():
                if line.producer_id != producer_id:
                    continue
                producer_type = line.producer_type
                lines.append(
                    SettleableLine(
                        order_id=order_id,
                        line_id=line.line_id,
                        village_id=line.village_id,
                        district=order.district,
                        net_fen=line.amount_fen - line.refunded_fen,
                        commission_rate_bp=order.commission_rate_bp,
                    )
                )
        return account.settle(producer_type, lines, as_of)

    # -- platform import ------------------------------------------------------------------------

    @command(
        "POST",
        f"{API}/imports",
        body=ImportOrders,
        args=ImportArgs,
        raw_body=("text/csv",),
        roles=WRITERS,
        status=201,
    )
    def import_orders(self, request: Any, body: Any, args: dict[str, Any]) -> Any:
        """Import a platform's orders: JSON rows, CSV text in JSON, or a text/csv body with
        ``id``, ``platform`` and ``shop_id`` in the query string. Rows with the same external id
        are the lines of one order, imported whole or not at all. Idempotent by (platform,
        external_id): orders seen before are reported as duplicates and change nothing. Answers
        a report per row (row number, status, field errors)."""
        if isinstance(body, str):
            body = self._csv_upload(args, body)
        batch_stream = ImportBatch.stream(body["id"])
        # With an Idempotency-Key, a retry must reach the recording step to get its first answer.
        retry = request.headers.get("Idempotency-Key") is not None
        if not retry and self.store.events.stream_version(batch_stream):
            raise Conflict(f"import batch {body['id']!r} was already recorded")
        shop = self._get_shop_for_import(body["shop_id"], body["platform"])
        rows = body["rows"] if body["format"] == "json" else self._csv_rows(body["content"])
        results = self._import_rows(rows, shop, body["platform"])
        counts = {
            status: sum(1 for r in results if r["status"] == status)
            for status in ("imported", "duplicate", "invalid")
        }

        def record(uow: UnitOfWork) -> dict[str, Any]:
            batch = uow.create(ImportBatch, batch_stream)
            batch.record(
                platform=body["platform"],
                shop_id=shop.key,
                imported_at=now(),
                imported=counts["imported"],
                duplicates=counts["duplicate"],
                invalid=counts["invalid"],
                rows=results,
            )
            return {"id": body["id"], **counts, "duplicates": counts["duplicate"], "rows": results}

        return self.store.run(record)

    @staticmethod
    def _csv_upload(args: dict[str, Any], text: str) -> dict[str, Any]:
        """A text/csv body and its query string, read as the JSON form would be."""
        named = {name: value for name, value in args.items() if value is not None}
        try:
            return IMPORT_ORDERS.load({**named, "format": "csv", "content": text})
        except ma.ValidationError as exc:
            raise Unprocessable(
                "the import names no batch, platform or shop",
                errors={k: list(map(str, v)) for k, v in exc.normalized_messages().items()},
            ) from None

    def _get_shop_for_import(self, shop_id: str, platform: str) -> Shop:
        try:
            shop = self._get(Shop, shop_id)
        except AggregateNotFound:
            raise DomainError(f"shop {shop_id!r} does not exist", "shop_id") from None
        self.store.principal.require_scope(district=shop.district)
        if shop.platform != platform:
            raise DomainError(f"shop {shop_id!r} is not a {platform!r} store", "platform")
        return shop

    @staticmethod
    def _csv_rows(content: str) -> list[dict[str, Any]]:
        reader = csv.DictReader(io.StringIO(content.removeprefix("\ufeff")))
        if not reader.fieldnames:
            raise DomainError("the CSV has no header row", "content")
        return [dict(row) for row in reader]

    def _import_rows(
        self, raws: list[dict[str, Any]], shop: Shop, platform: str
    ) -> list[dict[str, Any]]:
        """Check every row, group the rows of each order by external id, and import each order
        in its own unit of work. The report keeps the rows' order."""
        results, groups = [], {}
        for number, raw in enumerate(raws, 1):
            result, row = self._check_row(number, raw)
            results.append(result)
            if row is not None or (
                result["external_id"] is not None
                and all(e["field"] != "external_id" for e in result["errors"])
            ):
                groups.setdefault(result["external_id"], []).append((result, row))
        for external_id, group in groups.items():
            self._import_order(external_id, group, shop, platform)
        return results

    @staticmethod
    def _check_row(number: int, raw: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        external_id = raw.get("external_id") if isinstance(raw, dict) else None
        result: dict[str, Any] = {
            "row": number,
            "external_id": str(external_id) if external_id not in (None, "") else None,
            "order_id": None,
            "line_id": None,
            "status": "invalid",
            "errors": [],
        }
        try:
            row = IMPORT_ROW.load(raw)
        except ma.ValidationError as exc:
            messages = exc.normalized_messages()
            result["errors"] = [
                {"field": field, "message": "; ".join(map(str, msgs))}
                for field, msgs in sorted(messages.items())
            ]
            return result, None
        return result, row

    def _import_order(
        self,
        external_id: str,
        group: list[tuple[dict[str, Any], dict[str, Any] | None]],
        shop: Shop,
        platform: str,
    ) -> None:
        """One platform order from its rows: all imported, all duplicates, or all invalid."""
        order_id = f"{platform}:{external_id}"
        for result, _ in group:
            result["order_id"] = order_id

        def invalidate(because: str) -> None:
            for result, _ in group:
                result["status"] = "invalid"
                if not result["errors"]:
                    result["errors"] = [{"field": "external_id", "message": because}]

        broken = [result["row"] for result, row in group if row is None]
        if broken:
            return invalidate(f"order {external_id!r} has invalid rows {broken}; none imported")
        lines: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        repeats = []
        first_result, first = group[0]
        for result, row in group:
            assert row is not None
            for field in ("placed_at", "paid_at", "buyer_ref"):
                if row[field] != first[field]:
                    result["errors"].append(
                        {
                            "field": field,
                            "message": f"differs from row {first_result['row']} of the order",
                        }
                    )
            same = [earlier for earlier in lines.values() if earlier[1] == row]
            if row["line_id"] is None and same:
                result["line_id"] = same[0][0]["line_id"]
                repeats.append(result)  # the same row twice in the file
                continue
            line_id = row["line_id"] or str(len(lines) + 1)
            result["line_id"] = line_id
            if line_id in lines:
                if lines[line_id][1] == row:
                    repeats.append(result)
                    continue
                result["errors"].append(
                    {"field": "line_id", "message": f"line {line_id!r} appears twice"}
                )
            lines[line_id] = (result, row)
        if any(result["errors"] for result, _ in group):
            rows = [result["row"] for result, _ in group if result["errors"]]
            return invalidate(f"order {external_id!r} has invalid rows {rows}; none imported")
        ordered = list(lines.items())

        def decide(uow: UnitOfWork) -> str:
            found = uow.find(Order, Order.stream(order_id))
            if found is not None:
                for index, (line_id, (_, row)) in enumerate(ordered):
                    line = found.lines.get(line_id)
                    if line is None or (line.product_id, line.quantity) != (
                        row["product_id"],
                        row["quantity"],
                    ):
                        raise DomainError(
                            f"order {order_id!r} was imported before without this line; "
                            "an imported order is not changed",
                            f"lines.{index}.line_id",
                        )
                return "duplicate"
            order = self._place(
                uow,
                order_id,
                shop,
                [
                    {
                        "line_id": line_id,
                        "product_id": row["product_id"],
                        "quantity": row["quantity"],
                        "amount_fen": row["amount_fen"],
                    }
                    for line_id, (_, row) in ordered
                ],
                first["placed_at"],
                source="platform",
                platform=platform,
                external_id=external_id,
                buyer_ref=first["buyer_ref"],
            )
            if first["paid_at"] is not None:
                order.pay(first["paid_at"], None)
            return "imported"

        try:
            status = self._step(decide)
        except DomainError as exc:
            field = exc.field or "external_id"
            at_fault = None
            if field.startswith("lines."):
                index, _, field = field.removeprefix("lines.").partition(".")
                at_fault = ordered[int(index)][1][0]
            for result, _ in group:
                if at_fault is None or result is at_fault:
                    result["errors"] = [{"field": field or "quantity", "message": str(exc)}]
            return invalidate(f"order {external_id!r} was not imported: {exc}")
        for result, _ in group:
            result["status"] = status
        for result in repeats:
            result["status"] = "duplicate"
        return None

    @query(f"{API}/imports/<batch_id>", roles=READERS)
    def get_import(self, request: Any, batch_id: str) -> dict[str, Any]:
        """The recorded report of an import batch."""
        return IMPORT_REPORT.dump(self._get(ImportBatch, batch_id).report)

    # -- figures --------------------------------------------------------------------------------

    def _read(self, read: Callable[..., Any], *args: Any) -> Any:
        with self.store.events.engine.connect() as db:
            return read(db, *args)

    @query(f"{API}/gmv", args=PeriodArgs, roles=READERS)
    def gmv(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """GMV (paid minus refunded, fen) per village or cluster for a year, quarter or month.
        Payments count on their paid day, refunds on their refund day; a cluster gets a village's
        amounts for the days the village was its member on the order's paid day."""
        rows = self._read(views.gmv, args["start"], args["end"], args["group"], args["district"])
        return {
            "period": args["period"],
            "from": args["start"].isoformat(),
            "to": args["end"].isoformat(),
            "group": args["group"],
            "rows": rows,
            "total": {
                name: sum(row[name] for row in rows)
                for name in ("paid_fen", "refunded_fen", "gmv_fen")
            },
        }

    @query(f"{API}/refund-rate", args=PeriodArgs, roles=READERS)
    def refund_rate(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Of the orders paid in the period: the share refunded, by count and by amount."""
        figures = self._read(views.refund_rate, args["start"], args["end"])
        paid_orders, paid_fen = figures["paid_orders"], figures["paid_fen"]
        return {
            "period": args["period"],
            **figures,
            "order_rate": f"{figures['refunded_orders'] / paid_orders:.4f}"
            if paid_orders
            else None,
            "amount_rate": f"{figures['refunded_fen'] / paid_fen:.4f}" if paid_fen else None,
        }

    @query(f"{API}/top-products", args=PeriodArgs, roles=READERS)
    def top_products(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The best-selling products of the period by GMV."""
        rows = self._read(views.top_products, args["start"], args["end"], args["limit"])
        return {"period": args["period"], "products": rows}

    @query(f"{API}/producers/<producer_id>/statement", args=PeriodArgs, roles=READERS)
    def producer_statement(self, request: Any, producer_id: str, args: dict[str, Any]) -> Any:
        """A producer's statement: lines sold in the period, refunds, settlements paid in it."""
        statement = self._read(views.producer_statement, producer_id, args["start"], args["end"])
        return {"period": args["period"], **statement}
