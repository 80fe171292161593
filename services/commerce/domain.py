"""Commerce aggregates: shops, products, live sessions, orders (with their refunds), producer
accounts and import batches. Plain Python: no clock, no I/O; times come in as arguments."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from shared.aggregate import Aggregate, applies
from shared.clock import local_day
from shared.errors import DomainError
from shared.money import allocate

from .events import (
    LiveSessionEnded,
    LiveSessionScheduled,
    LiveSessionStarted,
    OrderCancelled,
    OrderCompleted,
    OrderDelivered,
    OrderPaid,
    OrderPlaced,
    OrderShipped,
    PlatformOrdersImported,
    ProducerSettled,
    ProductDelisted,
    ProductListed,
    ProductRestocked,
    ProductStockReleased,
    ProductStockReserved,
    RefundCompleted,
    RefundRejected,
    RefundRequested,
    ShopOpened,
)

BASIS_POINTS = 10_000


def commission_fen(amount_fen: int, rate_bp: int) -> int:
    """A commission rounded half up to the fen (amounts are never negative)."""
    return (amount_fen * rate_bp + BASIS_POINTS // 2) // BASIS_POINTS


def split_proportionally(amount_fen: int, capacities: list[int]) -> list[int]:
    """Split ``amount_fen`` over parts in proportion to their capacities, to the fen.

    Largest remainder, ties to the earlier part: deterministic, sums exactly, and no part
    exceeds its capacity (``amount_fen`` must not exceed their sum)."""
    total = sum(capacities)
    if amount_fen > total:
        raise ValueError("amount exceeds capacity")
    if total == 0:
        return [0] * len(capacities)
    return allocate(amount_fen, capacities)


class Keyed(Aggregate):
    """An aggregate whose stream id is ``<prefix>:<id>``: ids of different kinds never collide."""

    prefix = ""

    @classmethod
    def stream(cls, key: str) -> str:
        return f"{cls.prefix}:{key}"

    @property
    def key(self) -> str:
        return self.id.split(":", 1)[1]


# -- shops ----------------------------------------------------------------------------------------


class Shop(Keyed):
    prefix = "shop"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.district = ""
        self.village_id: str | None = None
        self.name = ""
        self.channel = ""
        self.platform: str | None = None
        self.operator_id: str | None = None
        self.operator_type: str | None = None
        self.commission_rate_bp = 0
        self.after_sale_days = 0

    def open(self, **facts: Any) -> None:
        if facts["channel"] == "platform_store" and not facts.get("platform"):
            raise DomainError("a platform store names its platform", "platform")
        if facts["channel"] == "own_station" and facts.get("platform"):
            raise DomainError("an own station is on no platform", "platform")
        self.trigger(ShopOpened, shop_id=self.key, **facts)

    @applies(ShopOpened)
    def _opened(self, data: dict[str, Any]) -> None:
        for name in (
            "district",
            "village_id",
            "name",
            "channel",
            "platform",
            "operator_id",
            "operator_type",
            "commission_rate_bp",
            "after_sale_days",
        ):
            setattr(self, name, data[name])


# -- products -------------------------------------------------------------------------------------


class Product(Keyed):
    prefix = "product"
    # Every order reserves on the product's stream: keep loading it cheap.
    snapshot_every = 50

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.shop_id = ""
        self.district = ""
        self.name = ""
        self.village_id = ""
        self.producer_id = ""
        self.producer_type = ""
        self.label_type: str | None = None
        self.label: str | None = None
        self.price_fen = 0
        self.stock = 0
        self.listed = False

    def list(self, **facts: Any) -> None:
        if (facts["label_type"] is None) != (facts["label"] is None):
            raise DomainError("a label needs its label_type and a label_type its label", "label")
        self.trigger(ProductListed, product_id=self.key, **facts)

    def delist(self, reason: str, at: datetime) -> None:
        if not self.listed:
            raise DomainError("the product is not listed", "product_id")
        self.trigger(ProductDelisted, product_id=self.key, reason=reason, delisted_at=at)

    def restock(self, quantity: int) -> None:
        self.trigger(
            ProductRestocked, product_id=self.key, quantity=quantity, stock=self.stock + quantity
        )

    def reserve(self, order_id: str, quantity: int, line: str = "lines.0") -> None:
        """Take units for an order: only a listed product, never below zero stock."""
        if not self.listed:
            raise DomainError(f"product {self.key!r} is not listed", f"{line}.product_id")
        if quantity > self.stock:
            raise DomainError(
                f"only {self.stock} of product {self.key!r} in stock; {quantity} ordered",
                f"{line}.quantity",
            )
        self.trigger(
            ProductStockReserved,
            product_id=self.key,
            order_id=order_id,
            quantity=quantity,
            stock=self.stock - quantity,
        )

    def release(self, order_id: str, quantity: int) -> None:
        self.trigger(
            ProductStockReleased,
            product_id=self.key,
            order_id=order_id,
            quantity=quantity,
            stock=self.stock + quantity,
        )

    @applies(ProductListed)
    def _listed(self, data: dict[str, Any]) -> None:
        for name in (
            "shop_id",
            "district",
            "name",
            "village_id",
            "producer_id",
            "producer_type",
            "label_type",
            "label",
            "price_fen",
            "stock",
        ):
            setattr(self, name, data[name])
        self.listed = True

    @applies(ProductDelisted)
    def _delisted(self, data: dict[str, Any]) -> None:
        self.listed = False

    @applies(ProductRestocked)
    def _restocked(self, data: dict[str, Any]) -> None:
        self.stock = data["stock"]

    @applies(ProductStockReserved)
    def _reserved(self, data: dict[str, Any]) -> None:
        self.stock = data["stock"]

    @applies(ProductStockReleased)
    def _released(self, data: dict[str, Any]) -> None:
        self.stock = data["stock"]

    _STATE = (
        "shop_id",
        "district",
        "name",
        "village_id",
        "producer_id",
        "producer_type",
        "label_type",
        "label",
        "price_fen",
        "stock",
        "listed",
    )

    def to_snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._STATE}

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Product:
        product = cls(id)
        for name in cls._STATE:
            setattr(product, name, state[name])
        return product


# -- live-stream sessions -------------------------------------------------------------------------


class LiveSession(Keyed):
    prefix = "live"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.shop_id = ""
        self.district = ""
        self.village_id: str | None = None
        self.status = ""
        self.started_at: datetime | None = None
        self.ended_at: datetime | None = None

    def schedule(self, **facts: Any) -> None:
        if facts["scheduled_end_at"] <= facts["scheduled_start_at"]:
            raise DomainError("the session must end after it starts", "scheduled_end_at")
        self.trigger(LiveSessionScheduled, session_id=self.key, **facts)

    def start(self, at: datetime) -> None:
        if self.status != "scheduled":
            raise DomainError(f"the session is {self.status}, not scheduled", "session_id")
        self.trigger(LiveSessionStarted, session_id=self.key, shop_id=self.shop_id, started_at=at)

    def end(self, at: datetime, viewers: int, peak_viewers: int, orders: int, gmv_fen: int) -> None:
        if self.status != "live":
            raise DomainError(f"the session is {self.status}, not live", "session_id")
        assert self.started_at is not None
        if at < self.started_at:
            raise DomainError("a session cannot end before it started", "ended_at")
        if peak_viewers > viewers:
            raise DomainError("peak concurrent viewers cannot exceed total viewers", "peak_viewers")
        self.trigger(
            LiveSessionEnded,
            session_id=self.key,
            shop_id=self.shop_id,
            district=self.district,
            village_id=self.village_id,
            started_at=self.started_at,
            ended_at=at,
            duration_seconds=int((at - self.started_at).total_seconds()),
            viewers=viewers,
            peak_viewers=peak_viewers,
            orders=orders,
            gmv_fen=gmv_fen,
        )

    def check_attributable(self, shop_id: str, at: datetime) -> None:
        """An order counts for a session only if placed in its shop while it was live."""
        field = "live_session_id"
        if self.shop_id != shop_id:
            raise DomainError(f"session {self.key!r} is not in shop {shop_id!r}", field)
        if self.started_at is None or at < self.started_at:
            raise DomainError(f"session {self.key!r} was not live at {at.isoformat()}", field)
        if self.ended_at is not None and at > self.ended_at:
            raise DomainError(f"session {self.key!r} had ended by {at.isoformat()}", field)

    @applies(LiveSessionScheduled)
    def _scheduled(self, data: dict[str, Any]) -> None:
        self.shop_id, self.district = data["shop_id"], data["district"]
        self.village_id = data["village_id"]
        self.status = "scheduled"

    @applies(LiveSessionStarted)
    def _started(self, data: dict[str, Any]) -> None:
        self.status, self.started_at = "live", data["started_at"]

    @applies(LiveSessionEnded)
    def _ended(self, data: dict[str, Any]) -> None:
        self.status, self.ended_at = "ended", data["ended_at"]


# -- orders ---------------------------------------------------------------------------------------


@dataclass
class Line:
    line_id: str
    product_id: str
    producer_id: str
    producer_type: str
    village_id: str
    quantity: int
    unit_price_fen: int
    amount_fen: int
    refunded_fen: int = 0
    pending_fen: int = 0  # asked for by refunds not yet decided

    @property
    def refundable_fen(self) -> int:
        return self.amount_fen - self.refunded_fen - self.pending_fen

    def attribution(self) -> dict[str, Any]:
        return {
            "line_id": self.line_id,
            "product_id": self.product_id,
            "producer_id": self.producer_id,
            "village_id": self.village_id,
        }


@dataclass
class Refund:
    refund_id: str
    amount_fen: int
    lines: list[dict[str, Any]]
    status: str = "requested"


class Order(Keyed):
    prefix = "order"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status = ""
        self.shop_id = ""
        self.district = ""
        self.live_session_id: str | None = None
        self.commission_rate_bp = 0
        self.after_sale_days = 0
        self.total_fen = 0
        self.lines: dict[str, Line] = {}
        self.refunds: dict[str, Refund] = {}
        self.was_paid = False
        self.delivered_on: date | None = None
        self.completed_on: date | None = None
        self.last_decided_on: date | None = None

    # -- deciding -------------------------------------------------------------------------------

    def place(self, lines: list[dict[str, Any]], **facts: Any) -> None:
        total = sum(line["amount_fen"] for line in lines)
        self.trigger(OrderPlaced, order_id=self.key, total_fen=total, lines=lines, **facts)

    def pay(self, at: datetime, amount_fen: int | None) -> None:
        self._require("placed", "paid")
        if amount_fen is not None and amount_fen != self.total_fen:
            raise DomainError(
                f"the order's total is {self.total_fen} fen, not {amount_fen}", "amount_fen"
            )
        lines = [
            {**line.attribution(), "producer_type": line.producer_type}
            | {"quantity": line.quantity, "amount_fen": line.amount_fen}
            for line in self.lines.values()
        ]
        self.trigger(
            OrderPaid,
            order_id=self.key,
            shop_id=self.shop_id,
            district=self.district,
            live_session_id=self.live_session_id,
            total_fen=self.total_fen,
            paid_at=at,
            lines=lines,
        )

    def cancel(self, reason: str, at: datetime) -> None:
        """Before shipping only (after it, the buyer asks for a refund). A paid order gets
        everything not yet refunded back first."""
        if self.status not in ("placed", "paid"):
            raise DomainError(f"an order that is {self.status} cannot be cancelled", "status")
        was_paid = self.status == "paid"
        if was_paid:
            for refund in self.refunds.values():
                if refund.status == "requested":
                    self._reject(refund.refund_id, "order cancelled", at)
            remaining = [line for line in self.lines.values() if line.refundable_fen]
            if remaining:
                amount = sum(line.refundable_fen for line in remaining)
                split = [
                    {**line.attribution(), "amount_fen": line.refundable_fen} for line in remaining
                ]
                self._complete_refund(
                    f"{self.key}:cancel", amount, split, at, cause="order_cancelled"
                )
        self.trigger(
            OrderCancelled, order_id=self.key, reason=reason, cancelled_at=at, was_paid=was_paid
        )

    def ship(self, at: datetime, carrier: str | None, tracking_number: str | None) -> None:
        self._require("paid", "shipped")
        self.trigger(
            OrderShipped,
            order_id=self.key,
            carrier=carrier,
            tracking_number=tracking_number,
            shipped_at=at,
        )

    def deliver(self, at: datetime) -> None:
        self._require("shipped", "delivered")
        day = local_day(at)
        self.trigger(
            OrderDelivered,
            order_id=self.key,
            delivered_at=at,
            delivered_on=day,
            after_sale_closes_on=day + timedelta(days=self.after_sale_days),
        )

    @property
    def after_sale_closes_on(self) -> date | None:
        """The first day on which no refund may be asked for."""
        if self.delivered_on is None:
            return None
        return self.delivered_on + timedelta(days=self.after_sale_days)

    def completable(self, as_of: date) -> bool:
        closes = self.after_sale_closes_on
        return (
            self.status == "delivered"
            and closes is not None
            and as_of >= closes
            and not self.pending_refunds()
        )

    def complete(self, as_of: date) -> bool:
        """Close the after-sale window if it has closed by ``as_of``; False when not (yet) due.
        Idempotent: a completed order is left alone."""
        if not self.completable(as_of):
            return False
        closes = self.after_sale_closes_on
        assert closes is not None
        # The day the amounts became final: the window's end, or a later refund decision.
        day = max(closes, self.last_decided_on or closes)
        self.trigger(OrderCompleted, order_id=self.key, completed_on=day, net_fen=self.net_fen)
        return True

    def request_refund(
        self,
        refund_id: str,
        amount_fen: int,
        reason: str,
        at: datetime,
        lines: list[dict[str, Any]] | None,
    ) -> None:
        if self.status not in ("paid", "shipped", "delivered"):
            raise DomainError(f"an order that is {self.status} cannot be refunded", "status")
        if refund_id in self.refunds or refund_id == f"{self.key}:cancel":
            raise DomainError(f"refund {refund_id!r} already exists on this order", "id")
        closes = self.after_sale_closes_on
        if closes is not None and local_day(at) >= closes:
            raise DomainError(
                f"the after-sale window closed on {closes.isoformat()}", "requested_at"
            )
        refundable = sum(line.refundable_fen for line in self.lines.values())
        if amount_fen > refundable:
            raise DomainError(
                f"at most {refundable} fen can still be refunded (paid minus refunds)",
                "amount_fen",
            )
        split = self._split(amount_fen, lines)
        self.trigger(
            RefundRequested,
            refund_id=refund_id,
            order_id=self.key,
            amount_fen=amount_fen,
            reason=reason,
            requested_at=at,
            lines=split,
        )

    def _split(self, amount_fen: int, asked: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """The refund per line: as asked (each within what its line can still give back), or in
        proportion to what each line can still give back."""
        if asked is None:
            ordered = list(self.lines.values())
            shares = split_proportionally(amount_fen, [line.refundable_fen for line in ordered])
            return [
                {**line.attribution(), "amount_fen": share}
                for line, share in zip(ordered, shares, strict=True)
                if share
            ]
        split, seen = [], set()
        for index, part in enumerate(asked):
            line = self.lines.get(part["line_id"])
            field = f"lines.{index}.line_id"
            if line is None:
                raise DomainError(f"the order has no line {part['line_id']!r}", field)
            if line.line_id in seen:
                raise DomainError(f"line {line.line_id!r} is named twice", field)
            seen.add(line.line_id)
            if part["amount_fen"] > line.refundable_fen:
                raise DomainError(
                    f"line {line.line_id!r} can give back at most {line.refundable_fen} fen",
                    f"lines.{index}.amount_fen",
                )
            split.append({**line.attribution(), "amount_fen": part["amount_fen"]})
        if sum(part["amount_fen"] for part in split) != amount_fen:
            raise DomainError("the lines' amounts must add up to amount_fen", "lines")
        return split

    def approve_refund(self, refund_id: str, at: datetime) -> None:
        refund = self._requested_refund(refund_id)
        self._complete_refund(refund_id, refund.amount_fen, refund.lines, at)

    def reject_refund(self, refund_id: str, reason: str, at: datetime) -> None:
        self._requested_refund(refund_id)
        self._reject(refund_id, reason, at)

    def _reject(self, refund_id: str, reason: str, at: datetime) -> None:
        self.trigger(
            RefundRejected, refund_id=refund_id, order_id=self.key, reason=reason, decided_at=at
        )

    def _complete_refund(
        self,
        refund_id: str,
        amount_fen: int,
        lines: list[dict[str, Any]],
        at: datetime,
        cause: str = "refund_request",
    ) -> None:
        self.trigger(
            RefundCompleted,
            refund_id=refund_id,
            cause=cause,
            order_id=self.key,
            shop_id=self.shop_id,
            district=self.district,
            live_session_id=self.live_session_id,
            amount_fen=amount_fen,
            refunded_at=at,
            lines=lines,
        )

    def _requested_refund(self, refund_id: str) -> Refund:
        refund = self.refunds.get(refund_id)
        if refund is None:
            raise DomainError(f"the order has no refund {refund_id!r}", "refund_id")
        if refund.status != "requested":
            raise DomainError(f"refund {refund_id!r} is already {refund.status}", "refund_id")
        return refund

    def _require(self, status: str, action: str) -> None:
        if self.status != status:
            raise DomainError(
                f"an order that is {self.status} cannot be {action} (it must be {status})",
                "status",
            )

    # -- reading --------------------------------------------------------------------------------

    def pending_refunds(self) -> list[Refund]:
        return [r for r in self.refunds.values() if r.status == "requested"]

    @property
    def paid_fen(self) -> int:
        return self.total_fen if self.paid else 0

    @property
    def paid(self) -> bool:
        return self.was_paid

    @property
    def refunded_fen(self) -> int:
        return sum(line.refunded_fen for line in self.lines.values())

    @property
    def net_fen(self) -> int:
        return self.paid_fen - self.refunded_fen

    # -- applying -------------------------------------------------------------------------------

    @applies(OrderPlaced)
    def _placed(self, data: dict[str, Any]) -> None:
        self.status = "placed"
        for name in (
            "shop_id",
            "district",
            "live_session_id",
            "commission_rate_bp",
            "after_sale_days",
            "total_fen",
        ):
            setattr(self, name, data[name])
        self.lines = {line["line_id"]: Line(**line) for line in data["lines"]}

    @applies(OrderPaid)
    def _paid(self, data: dict[str, Any]) -> None:
        self.status, self.was_paid = "paid", True

    @applies(OrderCancelled)
    def _cancelled(self, data: dict[str, Any]) -> None:
        self.status = "cancelled"

    @applies(OrderShipped)
    def _shipped(self, data: dict[str, Any]) -> None:
        self.status = "shipped"

    @applies(OrderDelivered)
    def _delivered(self, data: dict[str, Any]) -> None:
        self.status, self.delivered_on = "delivered", data["delivered_on"]

    @applies(OrderCompleted)
    def _completed(self, data: dict[str, Any]) -> None:
        self.status, self.completed_on = "completed", data["completed_on"]

    @applies(RefundRequested)
    def _refund_requested(self, data: dict[str, Any]) -> None:
        self.refunds[data["refund_id"]] = Refund(
            data["refund_id"], data["amount_fen"], data["lines"]
        )
        for part in data["lines"]:
            self.lines[part["line_id"]].pending_fen += part["amount_fen"]

    @applies(RefundRejected)
    def _refund_rejected(self, data: dict[str, Any]) -> None:
        refund = self.refunds[data["refund_id"]]
        refund.status = "rejected"
        for part in refund.lines:
            self.lines[part["line_id"]].pending_fen -= part["amount_fen"]
        self.last_decided_on = local_day(data["decided_at"])

    @applies(RefundCompleted)
    def _refund_completed(self, data: dict[str, Any]) -> None:
        refund = self.refunds.get(data["refund_id"])
        if refund is not None:  # a requested refund; a cancellation's refund was never asked for
            refund.status = "completed"
            for part in refund.lines:
                self.lines[part["line_id"]].pending_fen -= part["amount_fen"]
        for part in data["lines"]:
            self.lines[part["line_id"]].refunded_fen += part["amount_fen"]
        self.last_decided_on = local_day(data["refunded_at"])


# -- producer settlement --------------------------------------------------------------------------


@dataclass(frozen=True)
class SettleableLine:
    order_id: str
    line_id: str
    village_id: str
    district: str
    net_fen: int
    commission_rate_bp: int


class ProducerAccount(Keyed):
    """What a producer has been paid: each completed order line is settled once."""

    prefix = "producer"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.producer_type = ""
        self.settled_lines: set[tuple[str, str]] = set()
        self.settlements = 0
        self.net_revenue_fen = 0
        self.settled_fen = 0

    def settle(
        self, producer_type: str, lines: list[SettleableLine], on: date
    ) -> list[dict[str, Any]]:
        """Settle the lines not settled before, one settlement per village; what was paid."""
        fresh = [line for line in lines if (line.order_id, line.line_id) not in self.settled_lines]
        by_village: dict[str, list[SettleableLine]] = defaultdict(list)
        for line in fresh:
            by_village[line.village_id].append(line)
        return [
            self._settle_village(producer_type, village_id, by_village[village_id], on)
            for village_id in sorted(by_village)
        ]

    def _settle_village(
        self, producer_type: str, village_id: str, lines: list[SettleableLine], on: date
    ) -> dict[str, Any]:
        parts = [
            {
                "order_id": line.order_id,
                "line_id": line.line_id,
                "net_fen": line.net_fen,
                "fees_fen": commission_fen(line.net_fen, line.commission_rate_bp),
            }
            for line in sorted(lines, key=lambda line: (line.order_id, line.line_id))
        ]
        net = sum(part["net_fen"] for part in parts)
        fees = sum(part["fees_fen"] for part in parts)
        amount = net - fees
        # Never pay out more than the producer earned, across all its settlements.
        if amount < 0 or self.settled_fen + amount > self.net_revenue_fen + net:
            raise DomainError("a settlement may not exceed the producer's net revenue", "as_of")
        settlement = {
            "settlement_id": f"{self.key}:{self.settlements + 1}",
            "producer_id": self.key,
            "producer_type": producer_type,
            "village_id": village_id,
            "district": lines[0].district,
            "net_revenue_fen": net,
            "fees_fen": fees,
            "amount_fen": amount,
            "settled_on": on,
        }
        self.trigger(ProducerSettled, **settlement, lines=parts)
        return {**settlement, "settled_on": on.isoformat()}

    @applies(ProducerSettled)
    def _settled(self, data: dict[str, Any]) -> None:
        self.producer_type = data["producer_type"]
        self.settlements += 1
        self.net_revenue_fen += data["net_revenue_fen"]
        self.settled_fen += data["amount_fen"]
        self.settled_lines.update((part["order_id"], part["line_id"]) for part in data["lines"])


# -- platform import ------------------------------------------------------------------------------


class ImportBatch(Keyed):
    prefix = "import"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.report: dict[str, Any] = {}

    def record(self, **report: Any) -> None:
        self.trigger(PlatformOrdersImported, batch_id=self.key, **report)

    @applies(PlatformOrdersImported)
    def _recorded(self, data: dict[str, Any]) -> None:
        self.report = data
