"""Events of the commerce service: the contract on ``commerce.events``.

Money is integer fen, quantities are integers, commission rates are basis points (1/100 of a
per cent). A fact's own time is in ``data`` (``placed_at``, ``paid_at``, ``refunded_at``: aware
ISO instants; ``*_on``: days in Asia/Shanghai), because facts may be entered after the fact.

Streams: every aggregate has its own stream, prefixed by its kind (``shop:``, ``product:``,
``live:``, ``order:``, ``producer:``, ``import:``), so client-chosen ids of different kinds never
collide. Refunds live on their order's stream, stock reservations on the product's.

Cross-service fields (docs/events/README.md): ``OrderPaid`` and ``RefundCompleted`` feed the
ranking service's GMV (paid minus refunded, per line's village); ``ProducerSettled`` with
``producer_type`` ``collective`` is a village collective's income for the finance service.
"""

from __future__ import annotations

import marshmallow as ma

from shared.events import Event, event_type

PRODUCER_TYPES = ("household", "cooperative", "collective")
CHANNELS = ("own_station", "platform_store")
LABEL_TYPES = ("brand", "geographic_indication")
ORDER_SOURCES = ("direct", "platform")


def _fen(**kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(required=True, strict=True, **kwargs)  # type: ignore[arg-type]


def _instant(**kwargs: object) -> ma.fields.AwareDateTime:
    return ma.fields.AwareDateTime(required=True, **kwargs)  # type: ignore[arg-type]


# -- shops and products ---------------------------------------------------------------------------


@event_type
class ShopOpened(Event):
    """A sales channel: a village e-commerce station or co-op shop (``own_station``) or a store
    on a platform (``platform_store``). Its commission rate and after-sale window apply to every
    order placed in it from then on."""

    TYPE = "ShopOpened"
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True, allow_none=True)
    name = ma.fields.String(required=True)
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(CHANNELS))
    platform = ma.fields.String(required=True, allow_none=True)
    operator_id = ma.fields.String(required=True, allow_none=True)
    operator_type = ma.fields.String(
        required=True, allow_none=True, validate=ma.validate.OneOf(PRODUCER_TYPES)
    )
    commission_rate_bp = ma.fields.Integer(required=True, strict=True)
    after_sale_days = ma.fields.Integer(required=True, strict=True)
    opened_at = _instant()


@event_type
class ProductListed(Event):
    """A product offered in a shop, from one producer in one origin village."""

    TYPE = "ProductListed"
    product_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    producer_id = ma.fields.String(required=True)
    producer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PRODUCER_TYPES))
    label_type = ma.fields.String(
        required=True, allow_none=True, validate=ma.validate.OneOf(LABEL_TYPES)
    )
    label = ma.fields.String(required=True, allow_none=True)
    price_fen = _fen()
    stock = ma.fields.Integer(required=True, strict=True)
    listed_at = _instant()


@event_type
class ProductDelisted(Event):
    """The product is no longer offered; orders already placed are unaffected."""

    TYPE = "ProductDelisted"
    product_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    delisted_at = _instant()


@event_type
class ProductRestocked(Event):
    """More units of a product are available."""

    TYPE = "ProductRestocked"
    product_id = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True, strict=True)
    stock = ma.fields.Integer(required=True, strict=True)


@event_type
class ProductStockReserved(Event):
    """Units taken by an order when it is placed; ``stock`` is what is left (never negative)."""

    TYPE = "ProductStockReserved"
    product_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True, strict=True)
    stock = ma.fields.Integer(required=True, strict=True)


@event_type
class ProductStockReleased(Event):
    """Units given back by a cancelled order."""

    TYPE = "ProductStockReleased"
    product_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True, strict=True)
    stock = ma.fields.Integer(required=True, strict=True)


# -- live-stream sessions -------------------------------------------------------------------------


@event_type
class LiveSessionScheduled(Event):
    """A live-stream sale (直播带货) planned in a shop."""

    TYPE = "LiveSessionScheduled"
    session_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True, allow_none=True)
    title = ma.fields.String(required=True)
    host = ma.fields.String(required=True)
    scheduled_start_at = _instant()
    scheduled_end_at = _instant()


@event_type
class LiveSessionStarted(Event):
    """The stream went live; orders may be attributed to it from ``started_at``."""

    TYPE = "LiveSessionStarted"
    session_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    started_at = _instant()


@event_type
class LiveSessionEnded(Event):
    """The stream ended. ``orders`` and ``gmv_fen`` (paid minus refunded) are the attributed
    orders' figures when it ended; the results query keeps them current."""

    TYPE = "LiveSessionEnded"
    session_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True, allow_none=True)
    started_at = _instant()
    ended_at = _instant()
    duration_seconds = ma.fields.Integer(required=True, strict=True)
    viewers = ma.fields.Integer(required=True, strict=True)
    peak_viewers = ma.fields.Integer(required=True, strict=True)
    orders = ma.fields.Integer(required=True, strict=True)
    gmv_fen = _fen()


# -- orders ---------------------------------------------------------------------------------------


class PlacedLine(ma.Schema):
    line_id = ma.fields.String(required=True)
    product_id = ma.fields.String(required=True)
    producer_id = ma.fields.String(required=True)
    producer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PRODUCER_TYPES))
    village_id = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True, strict=True)
    unit_price_fen = _fen()
    amount_fen = _fen()


class PaidLine(ma.Schema):
    line_id = ma.fields.String(required=True)
    product_id = ma.fields.String(required=True)
    producer_id = ma.fields.String(required=True)
    producer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PRODUCER_TYPES))
    village_id = ma.fields.String(required=True)
    quantity = ma.fields.Integer(required=True, strict=True)
    amount_fen = _fen()


class RefundLine(ma.Schema):
    line_id = ma.fields.String(required=True)
    product_id = ma.fields.String(required=True)
    producer_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    amount_fen = _fen()


@event_type
class OrderPlaced(Event):
    """An order with its lines, each attributed to exactly one producer and origin village.
    Platform orders carry ``platform`` and ``external_id`` (unique together)."""

    TYPE = "OrderPlaced"
    order_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    live_session_id = ma.fields.String(required=True, allow_none=True)
    source = ma.fields.String(required=True, validate=ma.validate.OneOf(ORDER_SOURCES))
    platform = ma.fields.String(required=True, allow_none=True)
    external_id = ma.fields.String(required=True, allow_none=True)
    buyer_ref = ma.fields.String(required=True, allow_none=True)
    commission_rate_bp = ma.fields.Integer(required=True, strict=True)
    after_sale_days = ma.fields.Integer(required=True, strict=True)
    total_fen = _fen()
    placed_at = _instant()
    lines = ma.fields.List(ma.fields.Nested(PlacedLine), required=True)


@event_type
class OrderPaid(Event):
    """The buyer paid the order's total; each line's ``amount_fen`` counts for its village's GMV
    on the day of ``paid_at`` (Asia/Shanghai)."""

    TYPE = "OrderPaid"
    order_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    live_session_id = ma.fields.String(required=True, allow_none=True)
    total_fen = _fen()
    paid_at = _instant()
    lines = ma.fields.List(ma.fields.Nested(PaidLine), required=True)


@event_type
class OrderCancelled(Event):
    """Cancelled before shipping; its stock is released. A paid order is refunded in full by a
    ``RefundCompleted`` just before this event."""

    TYPE = "OrderCancelled"
    order_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    cancelled_at = _instant()
    was_paid = ma.fields.Boolean(required=True)


@event_type
class OrderShipped(Event):
    TYPE = "OrderShipped"
    order_id = ma.fields.String(required=True)
    carrier = ma.fields.String(required=True, allow_none=True)
    tracking_number = ma.fields.String(required=True, allow_none=True)
    shipped_at = _instant()


@event_type
class OrderDelivered(Event):
    """Delivered: the after-sale window (``after_sale_days``) runs from ``delivered_on``."""

    TYPE = "OrderDelivered"
    order_id = ma.fields.String(required=True)
    delivered_at = _instant()
    delivered_on = ma.fields.Date(required=True)
    after_sale_closes_on = ma.fields.Date(required=True)


@event_type
class OrderCompleted(Event):
    """The after-sale window closed with no refund pending: the order's amounts are final and
    its lines can be settled with their producers. ``net_fen`` is paid minus refunded."""

    TYPE = "OrderCompleted"
    order_id = ma.fields.String(required=True)
    completed_on = ma.fields.Date(required=True)
    net_fen = _fen()


@event_type
class RefundRequested(Event):
    """A refund asked for; ``lines`` is how it will be split (reserved until decided)."""

    TYPE = "RefundRequested"
    refund_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    amount_fen = _fen()
    reason = ma.fields.String(required=True)
    requested_at = _instant()
    lines = ma.fields.List(ma.fields.Nested(RefundLine), required=True)


@event_type
class RefundRejected(Event):
    TYPE = "RefundRejected"
    refund_id = ma.fields.String(required=True)
    order_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    decided_at = _instant()


@event_type
class RefundCompleted(Event):
    """Money returned to the buyer. ``lines`` splits ``amount_fen`` over the order's lines
    (sums exactly; never more than a line's paid amount minus its earlier refunds): each part is
    subtracted from that line's village GMV on the day of ``refunded_at``."""

    TYPE = "RefundCompleted"
    refund_id = ma.fields.String(required=True)
    cause = ma.fields.String(
        required=True, validate=ma.validate.OneOf(("refund_request", "order_cancelled"))
    )
    order_id = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    live_session_id = ma.fields.String(required=True, allow_none=True)
    amount_fen = _fen()
    refunded_at = _instant()
    lines = ma.fields.List(ma.fields.Nested(RefundLine), required=True)


# -- settlement and import -----------------------------------------------------------------------


class SettledLine(ma.Schema):
    order_id = ma.fields.String(required=True)
    line_id = ma.fields.String(required=True)
    net_fen = _fen()
    fees_fen = _fen()


@event_type
class ProducerSettled(Event):
    """A producer paid for the completed order lines of one village: ``amount_fen`` =
    ``net_revenue_fen`` (paid minus refunded) - ``fees_fen`` (the shops' commission, rounded half
    up per line). For ``producer_type`` ``collective`` this is the village collective's income."""

    TYPE = "ProducerSettled"
    settlement_id = ma.fields.String(required=True)
    producer_id = ma.fields.String(required=True)
    producer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PRODUCER_TYPES))
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    net_revenue_fen = _fen()
    fees_fen = _fen()
    amount_fen = _fen()
    settled_on = ma.fields.Date(required=True)
    lines = ma.fields.List(ma.fields.Nested(SettledLine), required=True)


class ImportRowResult(ma.Schema):
    row = ma.fields.Integer(required=True, strict=True)
    external_id = ma.fields.String(required=True, allow_none=True)
    status = ma.fields.String(
        required=True, validate=ma.validate.OneOf(("imported", "duplicate", "invalid"))
    )
    order_id = ma.fields.String(required=True, allow_none=True)
    line_id = ma.fields.String(allow_none=True, load_default=None)
    errors = ma.fields.List(ma.fields.Dict(), required=True)


@event_type
class PlatformOrdersImported(Event):
    """The report of one import batch. The orders themselves are ``OrderPlaced``/``OrderPaid``
    on their own streams; duplicates and invalid rows changed nothing."""

    TYPE = "PlatformOrdersImported"
    batch_id = ma.fields.String(required=True)
    platform = ma.fields.String(required=True)
    shop_id = ma.fields.String(required=True)
    imported_at = _instant()
    imported = ma.fields.Integer(required=True, strict=True)
    duplicates = ma.fields.Integer(required=True, strict=True)
    invalid = ma.fields.Integer(required=True, strict=True)
    rows = ma.fields.List(ma.fields.Nested(ImportRowResult), required=True)
