"""Request and response schemas of the ranking API."""

from __future__ import annotations

import marshmallow as ma

from services.ranking.events import RulesSchema
from services.ranking.scoring import WINDOW_KINDS
from shared.fields import identifier


class DefineCompetition(ma.Schema):
    id = identifier(required=True)
    name = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=200))
    district = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    rules = ma.fields.Nested(RulesSchema, required=True)


class ChangeRules(ma.Schema):
    rules = ma.fields.Nested(RulesSchema, required=True)


class RecordAdjustment(ma.Schema):
    id = identifier(required=True)
    entity_id = identifier(required=True)
    kind = ma.fields.String(
        required=True, validate=ma.validate.OneOf(["bonus", "deduction", "veto"])
    )
    points = ma.fields.Decimal(load_default=0, as_string=True, places=2)
    effective_on = ma.fields.Date(required=True)
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=500))


class IssueBulletin(ma.Schema):
    window = ma.fields.String(required=True, validate=ma.validate.OneOf(WINDOW_KINDS[:3]))
    period = ma.fields.String(required=True, validate=ma.validate.Length(min=4, max=16))


class BoardArgs(ma.Schema):
    window = ma.fields.String(load_default=None, validate=ma.validate.OneOf(WINDOW_KINDS))
    period = ma.fields.String(load_default=None, validate=ma.validate.Length(min=3, max=16))
    top = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=1, max=1000))
    offset = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))


class AroundArgs(ma.Schema):
    window = ma.fields.String(load_default=None, validate=ma.validate.OneOf(WINDOW_KINDS))
    radius = ma.fields.Integer(load_default=2, validate=ma.validate.Range(min=0, max=50))
