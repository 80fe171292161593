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
from shared.fields import Body, basis_points, count, day, fen, identifier, text

# -- catalogue --------------------------------------------------------------------------------


class FundIn(Body):
    id = identifier(required=True)
    district = identifier(required=True)
    name = text(required=True)
    leverage_times = count(1, load_default=10)
    floor_bp = basis_points(load_default=1000)
    established_on = day()


class GuarantorIn(Body):
    id = identifier(required=True)
    district = identifier(required=True)
    name = text(required=True)
    net_assets_fen = fen(1, required=True)
    leverage_times = count(1, load_default=10)
    defined_on = day()


class TopUpIn(Body):
    amount_fen = fen(1, required=True)
    topped_up_on = day()


class PartyIn(Body):
    party_id = identifier(required=True)
    party_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PARTY_TYPES))
    share_bp = basis_points(required=True)


class SchemeIn(Body):
    id = identifier(required=True)
    district = identifier(required=True)
    name = text(required=True)
    fund_id = identifier(required=True)
    parties = ma.fields.List(
        ma.fields.Nested(PartyIn), required=True, validate=ma.validate.Length(min=1, max=10)
    )
    defined_on = day()


class ProductIn(Body):
    id = identifier(required=True)
    district = identifier(required=True)
    name = text(required=True)
    purposes = ma.fields.List(
        identifier(), required=True, validate=ma.validate.Length(min=1, max=20)
    )
    min_amount_fen = fen(1, required=True)
    max_amount_fen = fen(1, required=True)
    max_term_months = count(1, required=True)
    max_fee_rate_bp = basis_points(required=True)
    borrower_cap_fen = fen(1, required=True)
    scheme_id = identifier(required=True)
    requires_land_pledge = ma.fields.Boolean(load_default=False)
    pledge_ltv_bp = basis_points(load_default=5000)
    pledge_margin_days = count(0, load_default=365)
    overdue_grace_days = count(0, load_default=0)
    compensation_after_days = count(1, load_default=90)
    defined_on = day()


# -- loans --------------------------------------------------------------------------------------


class ApplyIn(Body):
    id = identifier(required=True)
    product_id = identifier(required=True)
    borrower_id = identifier(required=True)
    borrower_type = ma.fields.String(required=True, validate=ma.validate.OneOf(BORROWER_TYPES))
    borrower_name = text(required=True)
    village_id = identifier(required=True)
    bank_code = identifier(required=True)
    purpose = identifier(required=True)
    principal_fen = fen(1, required=True)
    term_months = count(1, required=True)
    applied_on = day()


class RecommendIn(Body):
    note = ma.fields.String(load_default="")
    recommended_on = day()


class DiligenceIn(Body):
    passed = ma.fields.Boolean(required=True)
    note = ma.fields.String(load_default="")
    completed_on = day()


class ApproveIn(Body):
    guarantor_id = identifier(required=True)
    guaranteed_fen = fen(1, required=True)
    fee_rate_bp = basis_points(required=True)
    approved_on = day()


class RejectIn(Body):
    reason = text(required=True)
    rejected_on = day()


class ContractIn(Body):
    id = identifier(required=True)
    signed_on = day()


class CounterGuaranteeIn(Body):
    id = identifier(required=True)
    kind = text(required=True)
    value_fen = fen(1, required=True)
    registered_on = day()


class PledgeIn(Body):
    id = identifier(required=True)
    contract_id = identifier(required=True)
    appraised_value_fen = fen(1, required=True)
    amount_fen = fen(1, required=True)
    owner_consent_on = ma.fields.Date(
        required=True, metadata={"description": "when the contracting household consented"}
    )
    pledged_on = day()


class DisburseIn(Body):
    disbursed_on = day()


class FeeIn(Body):
    charged_on = day()


class RepaymentIn(Body):
    id = identifier(required=True)
    principal_fen = fen(required=True)
    interest_fen = fen(load_default=0)
    repaid_on = day()


class RecoveryIn(Body):
    id = identifier(required=True)
    amount_fen = fen(1, required=True)
    received_on = day()


class WriteOffIn(Body):
    written_off_on = day()


class ReleaseIn(Body):
    released_on = day()


class SweepIn(Body):
    as_of = day()


class ExposureArgs(ma.Schema):
    by = ma.fields.String(
        load_default="bank",
        validate=ma.validate.OneOf(("bank", "guarantor", "scheme", "fund", "borrower")),
    )


class FeedArgs(ma.Schema):
    after = ma.fields.Integer(load_default=0, validate=ma.validate.Range(min=0))
    limit = ma.fields.Integer(load_default=100, validate=ma.validate.Range(min=1, max=1000))


class OnArgs(ma.Schema):
    on = day()


# -- collective income and distribution ------------------------------------------------------


class EntryIn(Body):
    id = identifier(required=True)
    village_id = identifier(required=True)
    amount_fen = fen(1, required=True)
    category = identifier(required=True)
    note = ma.fields.String(load_default="")
    recorded_on = day()


class BucketIn(Body):
    bucket = ma.fields.String(required=True, validate=ma.validate.OneOf(BUCKETS))
    share_bp = basis_points(required=True)


class PolicyIn(Body):
    id = identifier(required=True)
    village_id = identifier(required=True)
    buckets = ma.fields.List(
        ma.fields.Nested(BucketIn), required=True, validate=ma.validate.Length(min=1, max=10)
    )
    publicity_days = count(0, load_default=7)
    defined_on = day()


def _pct(value: Decimal) -> None:
    if value.as_tuple().exponent < -6:  # type: ignore[operator]
        raise ma.ValidationError("at most six decimal places")


class HolderIn(Body):
    holder_id = identifier(required=True)
    holder_type = ma.fields.String(required=True, validate=ma.validate.OneOf(HOLDER_TYPES))
    share_pct = ma.fields.Decimal(required=True, as_string=True, validate=_pct)


class RegisterIn(Body):
    id = identifier(required=True)
    village_id = identifier(required=True)
    holders = ma.fields.List(
        ma.fields.Nested(HolderIn), required=True, validate=ma.validate.Length(min=1, max=20_000)
    )
    defined_on = day()


class PlanIn(Body):
    id = identifier(required=True)
    village_id = identifier(required=True)
    policy_id = identifier(required=True)
    register_id = identifier(required=True)
    distributable_fen = fen(1, required=True)
    drafted_on = day()


class PlanApproveIn(Body):
    meeting_type = ma.fields.String(required=True, validate=ma.validate.OneOf(MEETING_TYPES))
    eligible = count(1, required=True)
    present = count(0, required=True)
    in_favour = count(0, required=True)
    approved_on = day()


class PublicityIn(Body):
    publicised_on = day()


class PayIn(Body):
    paid_on = day()
