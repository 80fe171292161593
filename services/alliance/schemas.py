"""Request and response schemas of the alliance service's HTTP commands and queries."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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
    contracted_area_mu = area(ma.validate.Range(min=0), required=True, metadata={"minimum": 0})
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
    target_quantity = area(
        ma.validate.Range(min=Decimal(0), min_inclusive=False),
        required=True,
        metadata={"minimum": 0, "exclusiveMinimum": 0},
    )
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
        metadata={
            "description": "default: the ALLIANCE_BEHIND_TOLERANCE setting (0.10)",
            "minimum": 0,
            "maximum": 1,
        },
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


# -- response schemas ------------------------------------------------------------------------------
#
# Answers are built as plain dicts whose dates and decimals are already strings; these schemas
# document their shape and pass every field through unchanged (a field missing here would be
# dropped from the answer, and from the answer stored for an Idempotency-Key).


def _string(**metadata: Any) -> ma.fields.String:
    return ma.fields.String(required=True, metadata=metadata)


def _optional(**metadata: Any) -> ma.fields.String:
    return ma.fields.String(required=True, allow_none=True, metadata=metadata)


def _day(description: str = "") -> ma.fields.String:
    return _string(format="date", **({"description": description} if description else {}))


def _optional_day(description: str = "") -> ma.fields.String:
    return _optional(format="date", **({"description": description} if description else {}))


def _decimal(description: str = "a decimal string") -> ma.fields.String:
    return _string(description=description)


def _ids(description: str) -> ma.fields.List:
    return ma.fields.List(ma.fields.String(), required=True, metadata={"description": description})


def _tally(description: str) -> ma.fields.Dict:
    return ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Integer(),
        required=True,
        metadata={"description": description},
    )


class AllianceOut(ma.Schema):
    alliance_id = _string()
    district = _string()
    name = _string()
    level = _string(enum=list(ALLIANCE_LEVELS))
    parent_alliance_id = _optional()


class ClusterOut(ma.Schema):
    cluster_id = _string()
    alliance_id = _string()
    district = _string()
    name = _string()
    theme_industry = _string()
    lead_unit_id = _optional()


class AllianceDetailOut(AllianceOut):
    sub_alliances = _ids("ids of the town/street alliances under this one")
    clusters = ma.fields.List(ma.fields.Nested(ClusterOut), required=True)


class VillageFactsOut(ma.Schema):
    population = ma.fields.Integer(required=True)
    households = ma.fields.Integer(required=True)
    contracted_area_mu = _decimal("mu, as a decimal string")
    weak = ma.fields.Boolean(required=True)


class MembershipOut(ma.Schema):
    cluster_id = _string()
    alliance_id = _string()
    joined_on = _day()
    left_on = _optional_day("the first day outside the cluster; null while a member")


class _UnitFacts(ma.Schema):
    unit_id = _string()
    district = _string()
    name = _string()
    unit_type = _string(enum=list(UNIT_TYPES))
    village = ma.fields.Nested(
        VillageFactsOut,
        required=True,
        allow_none=True,
        metadata={"description": "villages only"},
    )
    bank_code = _optional(description="banks only")


class UnitOut(_UnitFacts):
    """A unit as a command leaves it: its facts and its whole membership history."""

    memberships = ma.fields.List(ma.fields.Nested(MembershipOut), required=True)


class RosterMemberOut(_UnitFacts):
    joined_on = _day()
    left_on = _optional_day("the first day outside the cluster; null while a member")


class RosterOut(ma.Schema):
    cluster_id = _string()
    on = _day()
    members = ma.fields.List(ma.fields.Nested(RosterMemberOut), required=True)


class UnitDetailOut(UnitOut):
    """A unit read from the directory: its clusters on a day and its membership history."""

    on = _day()
    clusters = _ids("the clusters the unit is in on the day")


class DirectoryVillageOut(_UnitFacts):
    clusters = _ids("the clusters the village is in on the day")


class VillagesOut(ma.Schema):
    on = _day()
    villages = ma.fields.List(ma.fields.Nested(DirectoryVillageOut), required=True)


TASK_STATUSES = ("in_progress", "submitted", "verified")
TASK_SCHEDULES = ("on_track", "behind", "overdue")


class TaskOut(ma.Schema):
    """A task as a command leaves it."""

    task_id = _string()
    cluster_id = _string()
    unit_id = _optional(description="null for a cluster-wide task")
    target_quantity = _decimal()
    progress_quantity = _decimal()
    status = _string(enum=list(TASK_STATUSES))
    schedule = _string(enum=list(TASK_SCHEDULES))


class TaskDetailOut(TaskOut):
    """A task read from the task board."""

    alliance_id = _string()
    district = _string()
    title = _string()
    indicator = _string()
    measure_unit = _string()
    starts_on = _day()
    deadline_on = _day()
    schedule_as_of = _optional_day("the day of the last sweep that evaluated the task")
    progress_share = ma.fields.String(
        required=True, allow_none=True, metadata={"description": "progress / target"}
    )
    expected_share = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "the share due by the last sweep (序时进度)"},
    )
    verified_on = _optional_day()


class TaskBoardOut(ma.Schema):
    cluster_id = _string()
    tasks = ma.fields.List(ma.fields.Nested(TaskDetailOut), required=True)
    by_status = _tally("tasks per status")
    by_schedule = _tally("open (unverified) tasks per schedule state")


class SweepOut(ma.Schema):
    as_of = _day()
    tolerance = _decimal()
    evaluated = ma.fields.Integer(required=True)
    fell_behind = _ids("tasks that fell behind schedule in this sweep")
    overdue = _ids("tasks that became overdue in this sweep")
    back_on_track = _ids("tasks back on track in this sweep")


class ActivityOut(ma.Schema):
    activity_id = _string()
    unit_id = _string()
    activity_type = _string(enum=list(ACTIVITY_TYPES))
    occurred_at = _string(format="date-time")


class ActivityCountOut(ma.Schema):
    unit_id = _string()
    activity_type = _string(enum=list(ACTIVITY_TYPES))
    count = ma.fields.Integer(required=True)


class ActivityCountsOut(ma.Schema):
    period = _string()
    from_on = _day()
    until_on = _day("the period's last day")
    total = ma.fields.Integer(required=True)
    by_type = _tally("activities per type")
    counts = ma.fields.List(ma.fields.Nested(ActivityCountOut), required=True)


class TalentOut(ma.Schema):
    talent_id = _string()
    cluster_id = _string()
    village_id = _optional()
    category = _string(enum=list(TALENT_CATEGORIES))
    registered_on = _day()


class TalentRowOut(TalentOut):
    district = _string()
    name = _string()


class ClusterTalentOut(ma.Schema):
    cluster_id = _string()
    talent = ma.fields.List(ma.fields.Nested(TalentRowOut), required=True)
    by_category = _tally("talent per category")
