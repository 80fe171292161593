"""Request schemas of the alliance service's HTTP commands and queries."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma

from shared.fields import Body, area, count, day, identifier, text
from shared.periods import period_field

from .events import ACTIVITY_TYPES, ALLIANCE_LEVELS, TALENT_CATEGORIES, UNIT_TYPES


class AllianceIn(Body):
    id = identifier(required=True)
    district = identifier(required=True)
    name = text(required=True)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(ALLIANCE_LEVELS))
    parent_alliance_id = identifier(load_default=None, allow_none=True)


class ClusterIn(Body):
    id = identifier(required=True)
    alliance_id = identifier(required=True)
    name = text(required=True)
    theme_industry = text(required=True)
    lead_unit_id = identifier(load_default=None, allow_none=True)


class VillageIn(Body):
    population = count(required=True)
    households = count(required=True)
    contracted_area_mu = area(ma.validate.Range(min=0), required=True)
    weak = ma.fields.Boolean(required=True)


class UnitIn(Body):
    id = identifier(required=True)
    district = identifier(required=True)
    name = text(required=True)
    unit_type = ma.fields.String(required=True, validate=ma.validate.OneOf(UNIT_TYPES))
    village = ma.fields.Nested(VillageIn, load_default=None, allow_none=True)
    bank_code = identifier(load_default=None, allow_none=True)


class JoinIn(Body):
    cluster_id = identifier(required=True)
    joined_on = day()


class LeaveIn(Body):
    left_on = day()


class TaskIn(Body):
    id = identifier(required=True)
    cluster_id = identifier(required=True)
    unit_id = identifier(load_default=None, allow_none=True)
    title = text(required=True)
    indicator = text(required=True)
    measure_unit = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=32))
    target_quantity = area(ma.validate.Range(min=Decimal(0), min_inclusive=False), required=True)
    starts_on = day(required=True)
    deadline_on = day(required=True)


def _non_zero(value: Decimal) -> None:
    if value == 0:
        raise ma.ValidationError("must not be zero")


class ProgressIn(Body):
    quantity = area(_non_zero, required=True)
    evidence_note = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    reported_on = day()


class SubmitIn(Body):
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=2000))
    submitted_on = day()


class VerifyIn(Body):
    verified_on = day()


class ReturnIn(Body):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=2000))
    returned_on = day()


class SweepIn(Body):
    as_of = day(required=True)
    tolerance = ma.fields.Decimal(
        as_string=True,
        load_default=None,
        allow_none=True,
        places=4,
        validate=ma.validate.Range(min=0, max=1),
        metadata={"description": "default: the ALLIANCE_BEHIND_TOLERANCE setting (0.10)"},
    )


class ActivityIn(Body):
    id = identifier(required=True)
    unit_id = identifier(required=True)
    activity_type = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTIVITY_TYPES))
    title = text(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    participants = count(load_default=None, allow_none=True)


class TalentIn(Body):
    id = identifier(required=True)
    cluster_id = identifier(required=True)
    village_id = identifier(load_default=None, allow_none=True)
    name = text(required=True)
    category = ma.fields.String(required=True, validate=ma.validate.OneOf(TALENT_CATEGORIES))
    registered_on = day()


class OnArgs(ma.Schema):
    on = day()


class VillagesArgs(ma.Schema):
    district = identifier(load_default=None)
    cluster_id = identifier(load_default=None)
    weak = ma.fields.Boolean(load_default=None)
    on = day()


class ActivityCountArgs(ma.Schema):
    period = period_field(required=True)
    cluster_id = identifier(load_default=None)
    unit_id = identifier(load_default=None)
    district = identifier(load_default=None)
