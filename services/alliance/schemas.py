"""Request schemas of the alliance service's HTTP commands and queries."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma

from shared.clock import today

from .events import ACTIVITY_TYPES, ALLIANCE_LEVELS, TALENT_CATEGORIES, UNIT_TYPES

ID = ma.validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$", error="1-64 characters of A-Z a-z 0-9 . _ : -")
NAME = ma.validate.Length(min=1, max=200)


def _at_most_two_places(value: Decimal) -> None:
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise ma.ValidationError("at most two decimal places")


def _ident(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(validate=ID, **kwargs)  # type: ignore[arg-type]


def _text(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(validate=NAME, **kwargs)  # type: ignore[arg-type]


def _quantity(*validators: object, **kwargs: object) -> ma.fields.Decimal:
    return ma.fields.Decimal(
        as_string=True,
        validate=[_at_most_two_places, *validators],  # type: ignore[list-item]
        **kwargs,  # type: ignore[arg-type]
    )


def _day(required: bool = False) -> ma.fields.Date:
    if required:
        return ma.fields.Date(required=True)
    return ma.fields.Date(load_default=today, metadata={"description": "default: today"})


class Body(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class AllianceIn(Body):
    id = _ident(required=True)
    district = _ident(required=True)
    name = _text(required=True)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(ALLIANCE_LEVELS))
    parent_alliance_id = _ident(load_default=None, allow_none=True)


class ClusterIn(Body):
    id = _ident(required=True)
    alliance_id = _ident(required=True)
    name = _text(required=True)
    theme_industry = _text(required=True)
    lead_unit_id = _ident(load_default=None, allow_none=True)


class VillageIn(Body):
    population = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=0))
    households = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=0))
    contracted_area_mu = _quantity(ma.validate.Range(min=0), required=True)
    weak = ma.fields.Boolean(required=True)


class UnitIn(Body):
    id = _ident(required=True)
    district = _ident(required=True)
    name = _text(required=True)
    unit_type = ma.fields.String(required=True, validate=ma.validate.OneOf(UNIT_TYPES))
    village = ma.fields.Nested(VillageIn, load_default=None, allow_none=True)
    bank_code = _ident(load_default=None, allow_none=True)


class JoinIn(Body):
    cluster_id = _ident(required=True)
    joined_on = _day()


class LeaveIn(Body):
    left_on = _day()


class TaskIn(Body):
    id = _ident(required=True)
    cluster_id = _ident(required=True)
    unit_id = _ident(load_default=None, allow_none=True)
    title = _text(required=True)
    indicator = _text(required=True)
    measure_unit = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=32))
    target_quantity = _quantity(
        ma.validate.Range(min=Decimal(0), min_inclusive=False), required=True
    )
    starts_on = _day(required=True)
    deadline_on = _day(required=True)


def _non_zero(value: Decimal) -> None:
    if value == 0:
        raise ma.ValidationError("must not be zero")


class ProgressIn(Body):
    quantity = _quantity(_non_zero, required=True)
    evidence_note = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    reported_on = _day()


class SubmitIn(Body):
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000))
    submitted_on = _day()


class VerifyIn(Body):
    verified_on = _day()


class ReturnIn(Body):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    returned_on = _day()


class SweepIn(Body):
    as_of = _day(required=True)
    tolerance = ma.fields.Decimal(
        as_string=True,
        load_default=None,
        allow_none=True,
        places=4,
        validate=ma.validate.Range(min=0, max=1),
        metadata={"description": "default: the ALLIANCE_BEHIND_TOLERANCE setting (0.10)"},
    )


class ActivityIn(Body):
    id = _ident(required=True)
    unit_id = _ident(required=True)
    activity_type = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTIVITY_TYPES))
    title = _text(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    participants = ma.fields.Integer(
        load_default=None, allow_none=True, strict=True, validate=ma.validate.Range(min=0)
    )


class TalentIn(Body):
    id = _ident(required=True)
    cluster_id = _ident(required=True)
    village_id = _ident(load_default=None, allow_none=True)
    name = _text(required=True)
    category = ma.fields.String(required=True, validate=ma.validate.OneOf(TALENT_CATEGORIES))
    registered_on = _day()


class OnArgs(ma.Schema):
    on = _day()


class VillagesArgs(ma.Schema):
    district = _ident(load_default=None)
    cluster_id = _ident(load_default=None)
    weak = ma.fields.Boolean(load_default=None)
    on = _day()


PERIOD = ma.validate.Regexp(r"^\d{4}(-(0[1-9]|1[0-2])|-Q[1-4])?$", error="YYYY, YYYY-Qn or YYYY-MM")


class ActivityCountArgs(ma.Schema):
    period = ma.fields.String(required=True, validate=PERIOD)
    cluster_id = _ident(load_default=None)
    unit_id = _ident(load_default=None)
    district = _ident(load_default=None)
