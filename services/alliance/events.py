"""Events of the alliance service: the contract on ``alliance.events``.

The directory events (alliances, clusters, member units, membership) are read by every other
service: they keep a local village directory from them (``shared/directory.py``) and the ranking
service rolls village facts up to the cluster a village belonged to on the day of the fact.
Membership is a half-open interval of dates: a member from ``joined_on`` until the day before
``left_on``.

Streams: alliances, clusters, tasks, talent records and activities each have their own stream;
``MemberUnitRegistered``, ``MemberJoined`` and ``MemberLeft`` are on the member unit's stream
(``stream_id`` = ``unit_id``), and nothing else is, so a directory consumer that applies them in
stream order never meets a version it does not subscribe to. Quantities and shares are decimal
strings; shares are between 0 and 1 with four decimals.
"""

from __future__ import annotations

import marshmallow as ma

from shared.events import Event, event_type

UNIT_TYPES = (
    "village",
    "town_committee",
    "enterprise_soe",
    "enterprise_private",
    "university",
    "department",
    "social_organisation",
    "bank",
)
ALLIANCE_LEVELS = ("district", "town")


class VillageFacts(ma.Schema):
    """What per-capita scoring and the weak-village group need to know about a village."""

    population = ma.fields.Integer(required=True)
    households = ma.fields.Integer(required=True)
    contracted_area_mu = ma.fields.Decimal(required=True, as_string=True)
    weak = ma.fields.Boolean(required=True)


@event_type
class AllianceFounded(Event):
    """A district alliance (e.g. 红盟) or a town/street sub-alliance under it."""

    TYPE = "AllianceFounded"
    alliance_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    level = ma.fields.String(required=True, validate=ma.validate.OneOf(ALLIANCE_LEVELS))
    parent_alliance_id = ma.fields.String(required=True, allow_none=True)


@event_type
class ClusterFormed(Event):
    """A cluster (组团) inside an alliance."""

    TYPE = "ClusterFormed"
    cluster_id = ma.fields.String(required=True)
    alliance_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    theme_industry = ma.fields.String(required=True)
    lead_unit_id = ma.fields.String(required=True, allow_none=True)


@event_type
class MemberUnitRegistered(Event):
    """A member unit enters the district directory; villages carry their facts, banks a code."""

    TYPE = "MemberUnitRegistered"
    unit_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    unit_type = ma.fields.String(required=True, validate=ma.validate.OneOf(UNIT_TYPES))
    village = ma.fields.Nested(VillageFacts, required=True, allow_none=True)
    bank_code = ma.fields.String(required=True, allow_none=True)


@event_type
class MemberJoined(Event):
    """A unit joins a cluster from ``joined_on`` (inclusive)."""

    TYPE = "MemberJoined"
    cluster_id = ma.fields.String(required=True)
    alliance_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True)
    unit_type = ma.fields.String(required=True, validate=ma.validate.OneOf(UNIT_TYPES))
    joined_on = ma.fields.Date(required=True)


@event_type
class MemberLeft(Event):
    """A unit leaves a cluster: ``left_on`` is its first day outside it."""

    TYPE = "MemberLeft"
    cluster_id = ma.fields.String(required=True)
    alliance_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True)
    unit_type = ma.fields.String(required=True, validate=ma.validate.OneOf(UNIT_TYPES))
    left_on = ma.fields.Date(required=True)


# -- key task lists (联盟重点任务清单) -------------------------------------------------------

TASK_STATUSES = ("in_progress", "submitted", "verified")
SCHEDULE_STATES = ("on_track", "behind", "overdue")


def _quantity(**kwargs: object) -> ma.fields.Decimal:
    return ma.fields.Decimal(as_string=True, places=2, **kwargs)  # type: ignore[arg-type]


def _share(**kwargs: object) -> ma.fields.Decimal:
    return ma.fields.Decimal(as_string=True, places=4, **kwargs)  # type: ignore[arg-type]


@event_type
class TaskAssigned(Event):
    """A key task assigned to a cluster (``unit_id`` null) or to one member unit of it."""

    TYPE = "TaskAssigned"
    task_id = ma.fields.String(required=True)
    alliance_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True, allow_none=True)
    district = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    indicator = ma.fields.String(required=True)
    measure_unit = ma.fields.String(required=True)
    target_quantity = _quantity(required=True)
    starts_on = ma.fields.Date(required=True)
    deadline_on = ma.fields.Date(required=True)


@event_type
class TaskProgressReported(Event):
    """Progress on a task: ``quantity`` may be negative (a correction), ``cumulative_quantity``
    never is."""

    TYPE = "TaskProgressReported"
    task_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True, allow_none=True)
    quantity = _quantity(required=True)
    cumulative_quantity = _quantity(required=True)
    evidence_note = ma.fields.String(required=True)
    reporter = ma.fields.String(required=True)
    reported_on = ma.fields.Date(required=True)


@event_type
class TaskCompletionSubmitted(Event):
    """The assignee says the target is reached; the alliance verifies or returns it."""

    TYPE = "TaskCompletionSubmitted"
    task_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True, allow_none=True)
    completed_quantity = _quantity(required=True)
    note = ma.fields.String(required=True)
    submitted_on = ma.fields.Date(required=True)


@event_type
class TaskVerified(Event):
    """The alliance accepted the completion: the task is closed."""

    TYPE = "TaskVerified"
    task_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True, allow_none=True)
    indicator = ma.fields.String(required=True)
    target_quantity = _quantity(required=True)
    completed_quantity = _quantity(required=True)
    verified_on = ma.fields.Date(required=True)
    verifier = ma.fields.String(required=True)


@event_type
class TaskReturned(Event):
    """The alliance sent a submitted completion back; the task is in progress again."""

    TYPE = "TaskReturned"
    task_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True, allow_none=True)
    reason = ma.fields.String(required=True)
    returned_on = ma.fields.Date(required=True)


class _ScheduleState(Event):
    """Fields of a schedule (序时进度) state change found by a sweep as of a day."""

    task_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True, allow_none=True)
    as_of = ma.fields.Date(required=True)
    progress_share = _share(required=True)
    expected_share = _share(required=True)


@event_type
class TaskFellBehind(_ScheduleState):
    """Progress share fell below the time-elapsed share minus the tolerance (a yellow card)."""

    TYPE = "TaskFellBehind"
    tolerance = _share(required=True)


@event_type
class TaskBackOnTrack(_ScheduleState):
    """A task that was behind caught up with the time-elapsed share; it may fall behind again."""

    TYPE = "TaskBackOnTrack"
    tolerance = _share(required=True)


@event_type
class TaskOverdue(_ScheduleState):
    """The deadline passed and the task is not verified (a red card)."""

    TYPE = "TaskOverdue"
    deadline_on = ma.fields.Date(required=True)


# -- activity (线上活跃程度) and talent (人才回流) ----------------------------------------------

ACTIVITY_TYPES = ("meeting", "visit", "training", "joint_event", "livestream_help")
TALENT_CATEGORIES = ("returning_graduate", "veteran", "entrepreneur", "expert")


@event_type
class ActivityRecorded(Event):
    """A member unit held a meeting, visit, training, joint event or live-stream help session.
    ``occurred_on`` is the day of ``occurred_at`` in Asia/Shanghai."""

    TYPE = "ActivityRecorded"
    activity_id = ma.fields.String(required=True)
    unit_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    activity_type = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTIVITY_TYPES))
    title = ma.fields.String(required=True)
    occurred_at = ma.fields.AwareDateTime(required=True)
    occurred_on = ma.fields.Date(required=True)
    participants = ma.fields.Integer(required=True, allow_none=True)
    reporter = ma.fields.String(required=True)


@event_type
class TalentRegistered(Event):
    """A person registered to a cluster (and a village of it, if any) for the talent indicator."""

    TYPE = "TalentRegistered"
    talent_id = ma.fields.String(required=True)
    cluster_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True, allow_none=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    category = ma.fields.String(required=True, validate=ma.validate.OneOf(TALENT_CATEGORIES))
    registered_on = ma.fields.Date(required=True)
