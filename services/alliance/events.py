"""Events of the alliance service: the contract on ``alliance.events``.

The directory events (alliances, clusters, member units, membership) are read by every other
service: they keep a local village directory from them (``shared/directory.py``) and the ranking
service rolls village facts up to the cluster a village belonged to on the day of the fact.
Membership is a half-open interval of dates: a member from ``joined_on`` until the day before
``left_on``.
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
