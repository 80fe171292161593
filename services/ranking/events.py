"""Events of the ranking service: the contract on ``ranking.events``.

A competition is one stream (``stream_id`` = the competition id): its rule versions, which version
the boards show, and the district admin's manual adjustments. A bulletin (月通报, 季点评,
年度综合评价) is a stream of one event: the frozen board of a closed period with the rule version
it was scored by. Scores are decimal strings with two places; no floats.
"""

from __future__ import annotations

import marshmallow as ma

from services.ranking.scoring import COLOURS, SOURCES, WINDOW_KINDS
from shared.events import Event, event_type

DECIMAL = {"as_string": True}


class Strict(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class IndicatorRule(Strict):
    key = ma.fields.String(required=True, validate=ma.validate.Regexp(r"^[A-Za-z0-9_]{1,32}$"))
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=100))
    source = ma.fields.String(required=True, validate=ma.validate.OneOf(sorted(SOURCES)))
    unit = ma.fields.String(load_default=None, allow_none=True)
    weight = ma.fields.Decimal(required=True, validate=ma.validate.Range(min=0, max=1), **DECIMAL)
    direction = ma.fields.String(
        load_default="higher", validate=ma.validate.OneOf(["higher", "lower"])
    )
    normalise = ma.fields.String(
        load_default="minmax", validate=ma.validate.OneOf(["minmax", "rank"])
    )
    per_capita = ma.fields.Boolean(load_default=False)
    growth = ma.fields.Boolean(load_default=False)
    target = ma.fields.Decimal(load_default=None, allow_none=True, **DECIMAL)
    cap = ma.fields.Decimal(load_default=None, allow_none=True, **DECIMAL)
    rank_step = ma.fields.Decimal(
        load_default=None, allow_none=True, validate=ma.validate.Range(min=0), **DECIMAL
    )


class PointsRuleSchema(Strict):
    source = ma.fields.String(required=True, validate=ma.validate.OneOf(sorted(SOURCES)))
    points = ma.fields.Decimal(required=True, validate=ma.validate.Range(min=0), **DECIMAL)
    max_points = ma.fields.Decimal(load_default=None, allow_none=True, **DECIMAL)


class VetoRuleSchema(Strict):
    source = ma.fields.String(required=True, validate=ma.validate.OneOf(sorted(SOURCES)))
    at_least = ma.fields.Decimal(required=True, validate=ma.validate.Range(min=0), **DECIMAL)


class ColourRulesSchema(Strict):
    red_bottom = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    yellow_bottom = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    yellow_drop = ma.fields.Integer(
        load_default=None, allow_none=True, validate=ma.validate.Range(min=1)
    )
    red_drop = ma.fields.Integer(
        load_default=None, allow_none=True, validate=ma.validate.Range(min=1)
    )
    schedule_indicator = ma.fields.String(load_default=None, allow_none=True)
    yellow_below = ma.fields.Decimal(load_default=None, allow_none=True, **DECIMAL)
    red_below = ma.fields.Decimal(load_default=None, allow_none=True, **DECIMAL)
    escalate_after_reds = ma.fields.Integer(
        load_default=3, allow_none=True, validate=ma.validate.Range(min=1)
    )


class GroupSchema(Strict):
    """Who competes: the district's clusters (of one alliance), or its villages (weak ones,
    or those of one cluster)."""

    alliance_id = ma.fields.String(load_default=None, allow_none=True)
    cluster_id = ma.fields.String(load_default=None, allow_none=True)
    weak = ma.fields.Boolean(load_default=None, allow_none=True)


class RulesSchema(Strict):
    entity = ma.fields.String(required=True, validate=ma.validate.OneOf(["cluster", "village"]))
    group = ma.fields.Nested(GroupSchema, load_default=dict)
    indicators = ma.fields.List(
        ma.fields.Nested(IndicatorRule), required=True, validate=ma.validate.Length(min=1, max=20)
    )
    windows = ma.fields.List(
        ma.fields.String(validate=ma.validate.OneOf(WINDOW_KINDS)),
        required=True,
        validate=ma.validate.Length(min=1, max=4),
    )
    tie_break = ma.fields.List(
        ma.fields.String(validate=ma.validate.Length(min=1, max=50)),
        load_default=lambda: ["score", "first_reached", "entity_id"],
    )
    shared_ranks = ma.fields.Boolean(load_default=False)
    top_n = ma.fields.Integer(load_default=10, validate=ma.validate.Range(min=1, max=100))
    bonuses = ma.fields.List(ma.fields.Nested(PointsRuleSchema), load_default=list)
    deductions = ma.fields.List(ma.fields.Nested(PointsRuleSchema), load_default=list)
    vetoes = ma.fields.List(ma.fields.Nested(VetoRuleSchema), load_default=list)
    colours = ma.fields.Nested(ColourRulesSchema, load_default=dict)


class IndicatorCell(Strict):
    key = ma.fields.String(required=True)
    raw = ma.fields.Decimal(required=True, **DECIMAL)
    value = ma.fields.Decimal(required=True, **DECIMAL)
    normalised = ma.fields.Decimal(required=True, **DECIMAL)
    contribution = ma.fields.Decimal(required=True, **DECIMAL)
    #: the value in human units (元/万元, 亩, 次 ...) as the board showed it; for reading only
    shown = ma.fields.String(load_default=None)


class BoardRow(Strict):
    rank = ma.fields.Integer(required=True)
    entity_id = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    score = ma.fields.Decimal(required=True, **DECIMAL)
    movement = ma.fields.Integer(required=True, allow_none=True)
    colour = ma.fields.String(required=True, validate=ma.validate.OneOf(COLOURS))
    escalated = ma.fields.Boolean(required=True)
    vetoed = ma.fields.Boolean(required=True)
    bonus = ma.fields.Decimal(required=True, **DECIMAL)
    deduction = ma.fields.Decimal(required=True, **DECIMAL)
    completion = ma.fields.Decimal(required=True, allow_none=True, **DECIMAL)
    indicators = ma.fields.List(ma.fields.Nested(IndicatorCell), required=True)


@event_type
class CompetitionDefined(Event):
    """The district admin defines a competition; its rules are version 1."""

    TYPE = "CompetitionDefined"
    competition_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    rules = ma.fields.Nested(RulesSchema, required=True)


@event_type
class CompetitionRulesChanged(Event):
    """New rules: version n+1, built beside the shown version until it has caught up."""

    TYPE = "CompetitionRulesChanged"
    competition_id = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    rules = ma.fields.Nested(RulesSchema, required=True)


@event_type
class CompetitionVersionActivated(Event):
    """A rule version caught up with the sources' logs; the boards now show it."""

    TYPE = "CompetitionVersionActivated"
    competition_id = ma.fields.String(required=True)
    version = ma.fields.Integer(required=True)
    caught_up_to = ma.fields.Dict(
        keys=ma.fields.String(), values=ma.fields.Integer(), required=True
    )


@event_type
class AdjustmentRecorded(Event):
    """A manual bonus (加分), deduction (扣分) or veto (一票否决) for one entity on a day."""

    TYPE = "AdjustmentRecorded"
    competition_id = ma.fields.String(required=True)
    adjustment_id = ma.fields.String(required=True)
    entity_id = ma.fields.String(required=True)
    kind = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["bonus", "deduction", "veto"])
    )
    points = ma.fields.Decimal(required=True, **DECIMAL)
    effective_on = ma.fields.Date(required=True)
    reason = ma.fields.String(required=True)


@event_type
class BulletinIssued(Event):
    """The frozen board of a closed period (月通报 / 季点评 / 年度综合评价)."""

    TYPE = "BulletinIssued"
    bulletin_id = ma.fields.String(required=True)
    competition_id = ma.fields.String(required=True)
    competition_name = ma.fields.String(required=True)
    rule_version = ma.fields.Integer(required=True)
    window = ma.fields.String(required=True, validate=ma.validate.OneOf(WINDOW_KINDS))
    period = ma.fields.String(required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    issued_at = ma.fields.AwareDateTime(required=True)
    rows = ma.fields.List(ma.fields.Nested(BoardRow), required=True)
