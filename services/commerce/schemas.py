"""Request and response schemas of the commerce HTTP API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import marshmallow as ma

from shared.fields import basis_points, count, fen, identifier, instant, text
from shared.periods import period_bounds, period_field

from .events import CHANNELS, LABEL_TYPES, PRODUCER_TYPES

#: Stock, quantities and viewers are counts up to ten million.
COUNT_MAX = 10_000_000


class OpenShop(ma.Schema):
    id = identifier(required=True)
    district = identifier(required=True)
    village_id = identifier(load_default=None)
    name = text(required=True)
    channel = ma.fields.String(required=True, validate=ma.validate.OneOf(CHANNELS))
    platform = identifier(load_default=None)
    operator_id = identifier(load_default=None)
    operator_type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(PRODUCER_TYPES))
    commission_rate_bp = basis_points(load_default=0)
    after_sale_days = ma.fields.Integer(
        strict=True, load_default=7, validate=ma.validate.Range(min=0, max=90)
    )
    opened_at = instant()


class ListProduct(ma.Schema):
    id = identifier(required=True)
    shop_id = identifier(required=True)
    name = text(required=True)
    village_id = identifier(required=True)
    producer_id = identifier(required=True)
    producer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PRODUCER_TYPES))
    label_type = ma.fields.String(load_default=None, validate=ma.validate.OneOf(LABEL_TYPES))
    label = text(load_default=None)
    price_fen = fen(1, required=True)
    stock = count(0, COUNT_MAX, required=True)
    listed_at = instant()


class Delist(ma.Schema):
    reason = text(required=True)
    delisted_at = instant()


class Restock(ma.Schema):
    quantity = count(1, COUNT_MAX, required=True)


class ScheduleSession(ma.Schema):
    id = identifier(required=True)
    shop_id = identifier(required=True)
    village_id = identifier(load_default=None)
    title = text(required=True)
    host = text(required=True)
    scheduled_start_at = ma.fields.AwareDateTime(required=True)
    scheduled_end_at = ma.fields.AwareDateTime(required=True)


class StartSession(ma.Schema):
    started_at = instant()


class EndSession(ma.Schema):
    ended_at = instant()
    viewers = count(0, COUNT_MAX, required=True)
    peak_viewers = count(0, COUNT_MAX, load_default=0)


class OrderLineIn(ma.Schema):
    line_id = identifier(load_default=None)
    product_id = identifier(required=True)
    quantity = count(1, COUNT_MAX, required=True)


class PlaceOrder(ma.Schema):
    id = identifier(required=True)
    shop_id = identifier(required=True)
    live_session_id = identifier(load_default=None)
    buyer_ref = text(load_default=None)
    placed_at = instant()
    lines = ma.fields.List(
        ma.fields.Nested(OrderLineIn), required=True, validate=ma.validate.Length(min=1, max=100)
    )


class PayOrder(ma.Schema):
    paid_at = instant()
    amount_fen = fen(0, load_default=None)


class CancelOrder(ma.Schema):
    reason = text(required=True)
    cancelled_at = instant()


class ShipOrder(ma.Schema):
    shipped_at = instant()
    carrier = text(load_default=None)
    tracking_number = text(load_default=None)


class DeliverOrder(ma.Schema):
    delivered_at = instant()


class RefundLineIn(ma.Schema):
    line_id = identifier(required=True)
    amount_fen = fen(1, required=True)


class RequestRefund(ma.Schema):
    id = identifier(required=True)
    amount_fen = fen(1, required=True)
    reason = text(required=True)
    requested_at = instant()
    lines = ma.fields.List(ma.fields.Nested(RefundLineIn), load_default=None)


class DecideRefund(ma.Schema):
    reason = text(load_default="approved")
    decided_at = instant()


class AsOf(ma.Schema):
    as_of = ma.fields.Date(required=True)


class CompleteOrder(ma.Schema):
    as_of = ma.fields.Date(required=True)


class ImportOrders(ma.Schema):
    """A platform's batch: ``rows`` as JSON objects, or ``content`` as CSV text with a header."""

    id = identifier(required=True)
    platform = identifier(required=True)
    shop_id = identifier(required=True)
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(("json", "csv")))
    rows = ma.fields.List(ma.fields.Dict(), load_default=None)
    content = ma.fields.String(load_default=None, validate=ma.validate.Length(max=5_000_000))

    @ma.validates_schema
    def one_source(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["format"] == "csv" and data["content"] is None:
            raise ma.ValidationError("a CSV import carries its text in content", "content")
        if data["format"] == "json" and data["rows"] is None:
            raise ma.ValidationError("a JSON import carries its rows", "rows")


class ImportArgs(ma.Schema):
    """A CSV body (``text/csv``) names its batch, platform and shop in the query string."""

    id = identifier(load_default=None)
    platform = identifier(load_default=None)
    shop_id = identifier(load_default=None)


class ImportRow(ma.Schema):
    """One line of a platform order, as a row of the batch. Rows with the same ``external_id``
    are the lines of one order: ``line_id`` (the platform's line or SKU id) names each line,
    or their position in the order when it is left out."""

    class Meta:
        unknown = ma.EXCLUDE

    external_id = identifier(required=True)
    line_id = identifier(load_default=None)
    product_id = identifier(required=True)
    quantity = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=1_000_000))
    amount_fen = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=0))
    placed_at = ma.fields.AwareDateTime(required=True)
    paid_at = ma.fields.AwareDateTime(load_default=None)
    buyer_ref = text(load_default=None)

    @ma.pre_load
    def blanks_are_missing(self, data: Any, **kwargs: Any) -> Any:
        # A CSV cell left empty means "not given".
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v not in ("", None)}
        return data


class PeriodArgs(ma.Schema):
    """``period``: ``2026``, ``2026-Q2`` or ``2026-05`` (days in Asia/Shanghai)."""

    period = period_field(required=True)
    group = ma.fields.String(
        load_default="village", validate=ma.validate.OneOf(("village", "cluster"))
    )
    district = identifier(load_default=None)
    limit = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))

    @ma.post_load
    def days(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        start, end = period_bounds(data["period"])
        data["start"], data["end"] = start, end - timedelta(days=1)
        return data


# -- responses ------------------------------------------------------------------------------------


class ShopOut(ma.Schema):
    id = ma.fields.Function(lambda shop: shop.key)
    district = ma.fields.String()
    village_id = ma.fields.String()
    name = ma.fields.String()
    channel = ma.fields.String()
    platform = ma.fields.String()
    commission_rate_bp = ma.fields.Integer()
    after_sale_days = ma.fields.Integer()
    version = ma.fields.Integer()


class ProductOut(ma.Schema):
    id = ma.fields.Function(lambda product: product.key)
    shop_id = ma.fields.String()
    name = ma.fields.String()
    village_id = ma.fields.String()
    producer_id = ma.fields.String()
    producer_type = ma.fields.String()
    label_type = ma.fields.String()
    label = ma.fields.String()
    price_fen = ma.fields.Integer()
    stock = ma.fields.Integer()
    listed = ma.fields.Boolean()
    version = ma.fields.Integer()


class SessionOut(ma.Schema):
    id = ma.fields.Function(lambda session: session.key)
    shop_id = ma.fields.String()
    status = ma.fields.String()
    started_at = ma.fields.AwareDateTime()
    ended_at = ma.fields.AwareDateTime()
    version = ma.fields.Integer()


class LineOut(ma.Schema):
    line_id = ma.fields.String()
    product_id = ma.fields.String()
    producer_id = ma.fields.String()
    producer_type = ma.fields.String()
    village_id = ma.fields.String()
    quantity = ma.fields.Integer()
    unit_price_fen = ma.fields.Integer()
    amount_fen = ma.fields.Integer()
    refunded_fen = ma.fields.Integer()


class RefundOut(ma.Schema):
    refund_id = ma.fields.String()
    amount_fen = ma.fields.Integer()
    status = ma.fields.String()
    lines = ma.fields.List(ma.fields.Dict())


class OrderOut(ma.Schema):
    id = ma.fields.Function(lambda order: order.key)
    shop_id = ma.fields.String()
    district = ma.fields.String()
    live_session_id = ma.fields.String()
    status = ma.fields.String()
    total_fen = ma.fields.Integer()
    paid_fen = ma.fields.Integer()
    refunded_fen = ma.fields.Integer()
    net_fen = ma.fields.Integer()
    after_sale_closes_on = ma.fields.Date()
    lines = ma.fields.Function(lambda order: LineOut(many=True).dump(order.lines.values()))
    refunds = ma.fields.Function(lambda order: RefundOut(many=True).dump(order.refunds.values()))
    version = ma.fields.Integer()
