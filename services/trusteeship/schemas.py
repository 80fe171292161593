"""Request and response schemas of the trusteeship HTTP API."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import marshmallow as ma

from services.trusteeship.events import (
    CUSTOMER_TYPES,
    MACHINE_TYPES,
    PROVIDER_TYPES,
    STAGES,
    TEAM_TYPES,
)
from shared.fields import area, identifier, instant, optional_day, text

SEASON = re.compile(r"^\d{4}-[a-z]{2,16}$")
#: An area in mu, and one that must be positive.
MU = ma.validate.Range(min=Decimal("0"), max=Decimal("1000000"))
POSITIVE_MU = ma.validate.Range(min=Decimal("0.01"), max=Decimal("1000000"))


def coordinate(limit: int, **kwargs: Any) -> ma.fields.Decimal:
    return ma.fields.Decimal(
        as_string=True,
        validate=ma.validate.Range(min=Decimal(-limit), max=Decimal(limit)),
        **kwargs,
    )


def season(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.Regexp(SEASON, error="a season like 2026-summer"), **kwargs
    )


def stage(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(validate=ma.validate.OneOf(STAGES), **kwargs)


class ProviderIn(ma.Schema):
    id = identifier(required=True)
    district = text(500, required=True)
    name = text(500, required=True)
    provider_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PROVIDER_TYPES))
    village_id = identifier(load_default=None)
    listed_on = optional_day()
    listed_until = optional_day()


class BlacklistIn(ma.Schema):
    reason = text(500, required=True)
    blacklisted_on = optional_day()


class PriceIn(ma.Schema):
    stage = stage(required=True)
    unit_price_fen = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=10_000_000)
    )


class PriceListIn(ma.Schema):
    season = season(required=True)
    prices = ma.fields.List(
        ma.fields.Nested(PriceIn), required=True, validate=ma.validate.Length(min=1, max=4)
    )
    published_on = optional_day()


class ParcelIn(ma.Schema):
    parcel_id = identifier(required=True)
    parcel_area_mu = area(POSITIVE_MU, required=True)
    contracted_area_mu = area(POSITIVE_MU, required=True)


class OrderIn(ma.Schema):
    id = identifier(required=True)
    village_id = identifier(required=True)
    provider_id = identifier(required=True)
    customer_id = identifier(required=True)
    customer_name = text(500, required=True)
    customer_type = ma.fields.String(required=True, validate=ma.validate.OneOf(CUSTOMER_TYPES))
    crop = text(500, required=True)
    season = season(required=True)
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(("full", "partial")))
    stages = ma.fields.List(stage(), load_default=None)
    protect_passes = ma.fields.Integer(
        load_default=1, strict=True, validate=ma.validate.Range(min=1, max=9)
    )
    parcels = ma.fields.List(
        ma.fields.Nested(ParcelIn), required=True, validate=ma.validate.Length(min=1, max=200)
    )
    ordered_on = optional_day()


class SignIn(ma.Schema):
    signed_on = optional_day()


class CancelIn(ma.Schema):
    reason = text(500, required=True)
    cancelled_on = optional_day()


class ScheduleIn(ma.Schema):
    stage = stage(required=True)
    parcel_ids = ma.fields.List(identifier(), load_default=None)
    planned_on = ma.fields.Date(required=True)


class TeamIn(ma.Schema):
    id = identifier(required=True)
    provider_id = identifier(required=True)
    name = text(500, required=True)
    team_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TEAM_TYPES))
    base_village_id = identifier(required=True)
    base_lat = coordinate(90, required=True)
    base_lon = coordinate(180, required=True)


class MachineIn(ma.Schema):
    id = identifier(required=True)
    team_id = identifier(required=True)
    machine_type = ma.fields.String(required=True, validate=ma.validate.OneOf(MACHINE_TYPES))
    capacity_mu_per_day = area(POSITIVE_MU, required=True)


class OperatorIn(ma.Schema):
    id = identifier(required=True)
    team_id = identifier(required=True)
    name = text(500, required=True)
    licence_no = text(500, required=True)
    licence_expires_on = ma.fields.Date(required=True)


class LicenceIn(ma.Schema):
    licence_expires_on = ma.fields.Date(required=True)


class VillageSiteIn(ma.Schema):
    village_id = identifier(required=True)
    lat = coordinate(90, required=True)
    lon = coordinate(180, required=True)


class DispatchIn(ma.Schema):
    task_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    team_id = identifier(required=True)
    machine_ids = ma.fields.List(
        identifier(), required=True, validate=ma.validate.Length(min=1, max=20)
    )
    operator_ids = ma.fields.List(
        identifier(), required=True, validate=ma.validate.Length(min=1, max=20)
    )
    starts_at = ma.fields.AwareDateTime(required=True)
    ends_at = ma.fields.AwareDateTime(required=True)

    @ma.validates_schema
    def _window(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["ends_at"] <= data["starts_at"]:
            raise ma.ValidationError("the window must end after it starts", "ends_at")


class StartIn(ma.Schema):
    started_at = instant()


class TrackPointIn(ma.Schema):
    lat = coordinate(90, required=True)
    lon = coordinate(180, required=True)
    at = ma.fields.AwareDateTime(required=True)


class ProgressIn(ma.Schema):
    area_done_mu = area(MU, required=True)
    track = ma.fields.List(
        ma.fields.Nested(TrackPointIn), load_default=list, validate=ma.validate.Length(max=5000)
    )
    reported_at = instant()


class CompleteIn(ma.Schema):
    area_done_mu = area(MU, load_default=None)
    completed_at = instant()


class AcceptIn(ma.Schema):
    measured_area_mu = area(MU, required=True)
    measurement = ma.fields.String(
        load_default="beidou", validate=ma.validate.OneOf(("beidou", "handheld"))
    )
    farmer_confirmed_by = text(500, required=True)
    village_confirmed_by = text(500, required=True)
    accepted_on = optional_day()


class JointMeasurementIn(ma.Schema):
    measured_area_mu = area(MU, required=True)
    farmer_confirmed_by = text(500, required=True)
    village_confirmed_by = text(500, required=True)
    measured_on = optional_day()


class RejectIn(ma.Schema):
    reason = text(500, required=True)
    claimed_area_mu = area(MU, load_default=None)
    rejected_on = optional_day()


class SettleIn(ma.Schema):
    settled_on = optional_day()


class RateIn(ma.Schema):
    score = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1, max=5))
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=500))
    rated_on = optional_day()


class ClaimIn(ma.Schema):
    id = identifier(required=True)
    task_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    amount_fen = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=100_000_000)
    )
    beneficiary = ma.fields.String(
        load_default="provider", validate=ma.validate.OneOf(("provider", "farmer"))
    )
    claimed_on = optional_day()


class ApproveIn(ma.Schema):
    approved_on = optional_day()


class DenyIn(ma.Schema):
    reason = text(500, required=True)
    denied_on = optional_day()


class PayIn(ma.Schema):
    paid_on = optional_day()


class ProposalIn(ma.Schema):
    id = identifier(required=True)
    day = ma.fields.Date(required=True)
    district = text(500, load_default=None)


class DayArgs(ma.Schema):
    day = ma.fields.Date(load_default=None)
    village_id = identifier(load_default=None)


class RangeArgs(ma.Schema):
    starts_on = ma.fields.Date(load_default=None)
    ends_on = ma.fields.Date(load_default=None)


class SeasonArgs(ma.Schema):
    season = season(load_default=None)
    on = ma.fields.Date(load_default=None)


class ProviderArgs(ma.Schema):
    provider_id = identifier(load_default=None)
    season = season(load_default=None)
