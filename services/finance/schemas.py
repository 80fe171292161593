"""Request and response schemas of the finance service's HTTP commands and queries."""

from __future__ import annotations

from decimal import Decimal

import marshmallow as ma

from services.finance.events import (
    BORROWER_TYPES,
    BUCKETS,
    HOLDER_TYPES,
    MEETING_TYPES,
    PARTY_TYPES,
)
from shared.clock import today

ID = ma.validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$", error="1-64 characters of A-Z a-z 0-9 . _ : -")
NAME = ma.validate.Length(min=1, max=200)


def _ident(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(validate=ID, **kwargs)  # type: ignore[arg-type]


def _text(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(validate=NAME, **kwargs)  # type: ignore[arg-type]


def _count(minimum: int = 0, **kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=minimum),
        **kwargs,  # type: ignore[arg-type]
    )


def _fen(minimum: int = 1) -> ma.fields.Integer:
    return _count(minimum, required=True)


def _bp(**kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=0, max=10_000),
        **kwargs,  # type: ignore
    )


def _day() -> ma.fields.Date:
    return ma.fields.Date(load_default=today, metadata={"description": "default: today"})


class Body(ma.Schema):
    class Meta:
        unknown = ma.RAISE


# -- catalogue --------------------------------------------------------------------------------


class FundIn(Body):
    id = _ident(required=True)
    district = _ident(required=True)
    name = _text(required=True)
    leverage_times = _count(1, load_default=10)
    floor_bp = _bp(load_default=1000)
    established_on = _day()


class TopUpIn(Body):
    amount_fen = _fen()
    topped_up_on = _day()


class PartyIn(Body):
    party_id = _ident(required=True)
    party_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PARTY_TYPES))
    share_bp = _bp(required=True)


class SchemeIn(Body):
    id = _ident(required=True)
    district = _ident(required=True)
    name = _text(required=True)
    fund_id = _ident(required=True)
    parties = ma.fields.List(
        ma.fields.Nested(PartyIn), required=True, validate=ma.validate.Length(min=1, max=10)
    )
    defined_on = _day()


class ProductIn(Body):
    id = _ident(required=True)
    district = _ident(required=True)
    name = _text(required=True)
    purposes = ma.fields.List(_ident(), required=True, validate=ma.validate.Length(min=1, max=20))
    min_amount_fen = _fen()
    max_amount_fen = _fen()
    max_term_months = _count(1, required=True)
    max_fee_rate_bp = _bp(required=True)
    borrower_cap_fen = _fen()
    scheme_id = _ident(required=True)
    requires_land_pledge = ma.fields.Boolean(load_default=False)
    pledge_ltv_bp = _bp(load_default=5000)
    pledge_margin_days = _count(0, load_default=365)
    overdue_grace_days = _count(0, load_default=0)
    compensation_after_days = _count(1, load_default=90)
    defined_on = _day()


# -- loans --------------------------------------------------------------------------------------


class ApplyIn(Body):
    id = _ident(required=True)
    product_id = _ident(required=True)
    borrower_id = _ident(required=True)
    borrower_type = ma.fields.String(required=True, validate=ma.validate.OneOf(BORROWER_TYPES))
    borrower_name = _text(required=True)
    village_id = _ident(required=True)
    bank_code = _ident(required=True)
    purpose = _ident(required=True)
    principal_fen = _fen()
    term_months = _count(1, required=True)
    applied_on = _day()


class RecommendIn(Body):
    note = ma.fields.String(load_default="")
    recommended_on = _day()


class DiligenceIn(Body):
    passed = ma.fields.Boolean(required=True)
    note = ma.fields.String(load_default="")
    completed_on = _day()


class ApproveIn(Body):
    guarantor_id = _ident(required=True)
    guaranteed_fen = _fen()
    fee_rate_bp = _bp(required=True)
    approved_on = _day()


class RejectIn(Body):
    reason = _text(required=True)
    rejected_on = _day()


class ContractIn(Body):
    id = _ident(required=True)
    signed_on = _day()


class CounterGuaranteeIn(Body):
    id = _ident(required=True)
    kind = _text(required=True)
    value_fen = _fen()
    registered_on = _day()


class PledgeIn(Body):
    id = _ident(required=True)
    contract_id = _ident(required=True)
    appraised_value_fen = _fen()
    amount_fen = _fen()
    owner_consent_on = ma.fields.Date(
        required=True, metadata={"description": "when the contracting household consented"}
    )
    pledged_on = _day()


class DisburseIn(Body):
    disbursed_on = _day()


class FeeIn(Body):
    charged_on = _day()


class RepaymentIn(Body):
    id = _ident(required=True)
    principal_fen = _count(0, required=True)
    interest_fen = _count(0, load_default=0)
    repaid_on = _day()


class RecoveryIn(Body):
    id = _ident(required=True)
    amount_fen = _fen()
    received_on = _day()


class WriteOffIn(Body):
    written_off_on = _day()


class ReleaseIn(Body):
    released_on = _day()


class SweepIn(Body):
    as_of = _day()


class ExposureArgs(ma.Schema):
    by = ma.fields.String(
        load_default="bank",
        validate=ma.validate.OneOf(("bank", "guarantor", "scheme", "fund", "borrower")),
    )


class FeedArgs(ma.Schema):
    after = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))


class OnArgs(ma.Schema):
    on = ma.fields.Date(load_default=today)


# -- collective income and distribution ------------------------------------------------------


class EntryIn(Body):
    id = _ident(required=True)
    village_id = _ident(required=True)
    amount_fen = _fen()
    category = _ident(required=True)
    note = ma.fields.String(load_default="")
    recorded_on = _day()


class BucketIn(Body):
    bucket = ma.fields.String(required=True, validate=ma.validate.OneOf(BUCKETS))
    share_bp = _bp(required=True)


class PolicyIn(Body):
    id = _ident(required=True)
    village_id = _ident(required=True)
    buckets = ma.fields.List(
        ma.fields.Nested(BucketIn), required=True, validate=ma.validate.Length(min=1, max=10)
    )
    publicity_days = _count(0, load_default=7)
    defined_on = _day()


def _pct(value: Decimal) -> None:
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ma.ValidationError("at most six decimal places")


class HolderIn(Body):
    holder_id = _ident(required=True)
    holder_type = ma.fields.String(required=True, validate=ma.validate.OneOf(HOLDER_TYPES))
    share_pct = ma.fields.Decimal(required=True, as_string=True, validate=_pct)


class RegisterIn(Body):
    id = _ident(required=True)
    village_id = _ident(required=True)
    holders = ma.fields.List(
        ma.fields.Nested(HolderIn), required=True, validate=ma.validate.Length(min=1, max=20_000)
    )
    defined_on = _day()


class PlanIn(Body):
    id = _ident(required=True)
    village_id = _ident(required=True)
    policy_id = _ident(required=True)
    register_id = _ident(required=True)
    distributable_fen = _fen()
    drafted_on = _day()


class PlanApproveIn(Body):
    meeting_type = ma.fields.String(required=True, validate=ma.validate.OneOf(MEETING_TYPES))
    eligible = _count(1, required=True)
    present = _count(0, required=True)
    in_favour = _count(0, required=True)
    approved_on = _day()


class PublicityIn(Body):
    publicised_on = _day()


class PayIn(Body):
    paid_on = _day()
