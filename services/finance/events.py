"""Events of the finance service: the contract on ``finance.events``.

Streams: a loan product, a risk-sharing scheme, a risk compensation fund, a guarantor's profile
(``guarantor.<guarantor_id>``), a loan (from the
application to closing: ``stream_id`` = ``loan_id``), the pledge record of one land transfer
contract (``pledge.<contract_id>``: at most one active pledge at a time), each collective income
or expense entry, a distribution policy, an equity register and a distribution plan.

Money is integer fen; shares and rates are integer basis points (1 bp = 0.01 %), equity shares
decimal percentages as strings. Every event about a loan carries ``loan_id`` and ``bank_code``:
those are also published to the bank feed (``clustergov.bank-feed``, see docs/events/bank-feed).
"""

from __future__ import annotations

import marshmallow as ma

from shared.events import Event, event_type

BORROWER_TYPES = ("household", "family_farm", "cooperative", "village_collective", "enterprise")
PARTY_TYPES = ("guarantor", "re_guarantor", "bank", "government", "risk_fund", "national_fund")
INCOME_SOURCES = ("manual", "land", "commerce", "trusteeship")
BUCKETS = ("redevelopment", "member_dividends", "rewards", "public_welfare")
HOLDER_TYPES = ("member", "household", "village_group", "enterprise", "collective")
MEETING_TYPES = ("members", "representatives")
CLOSE_REASONS = ("repaid", "recovered", "written_off")


def _fen(**kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(required=True, strict=True, **kwargs)  # type: ignore[arg-type]


def _text(**kwargs: object) -> ma.fields.String:
    return ma.fields.String(required=True, **kwargs)  # type: ignore[arg-type]


def _day(**kwargs: object) -> ma.fields.Date:
    return ma.fields.Date(required=True, **kwargs)  # type: ignore[arg-type]


# -- catalogue: products, risk-sharing schemes, the risk compensation fund ---------------------


@event_type
class LoanProductDefined(Event):
    """A loan product (e.g. 共富贷, 虾蟹贷): purposes, amount range, term and fee-rate cap, the
    cap on a borrower's outstanding guaranteed amount, its risk scheme and pledge terms."""

    TYPE = "LoanProductDefined"
    product_id = _text()
    district = _text()
    name = _text()
    purposes = ma.fields.List(ma.fields.String(), required=True)
    min_amount_fen = _fen()
    max_amount_fen = _fen()
    max_term_months = _fen()
    max_fee_rate_bp = _fen()
    borrower_cap_fen = _fen()
    scheme_id = _text()
    requires_land_pledge = ma.fields.Boolean(required=True)
    pledge_ltv_bp = _fen()
    pledge_margin_days = _fen()
    overdue_grace_days = _fen()
    compensation_after_days = _fen()
    defined_on = _day()


class SchemeParty(ma.Schema):
    party_id = _text()
    party_type = _text(validate=ma.validate.OneOf(PARTY_TYPES))
    share_bp = _fen()


@event_type
class RiskSchemeDefined(Event):
    """Who bears a compensated loss, in shares summing to 10000 bp (e.g. 4:3:2:1)."""

    TYPE = "RiskSchemeDefined"
    scheme_id = _text()
    district = _text()
    name = _text()
    fund_id = _text()
    parties = ma.fields.List(ma.fields.Nested(SchemeParty), required=True)
    defined_on = _day()


@event_type
class RiskFundEstablished(Event):
    """A risk compensation fund: outstanding guarantees may reach ``leverage_times`` its
    balance; below ``floor_bp`` of the outstanding it blocks new guarantees."""

    TYPE = "RiskFundEstablished"
    fund_id = _text()
    district = _text()
    name = _text()
    leverage_times = _fen()
    floor_bp = _fen()
    established_on = _day()


@event_type
class GuarantorProfileDefined(Event):
    """A guarantor's net assets and leverage: its outstanding guarantees may reach
    ``leverage_times`` (10 to 15) its net assets, one borrower's at most 10 % of them."""

    TYPE = "GuarantorProfileDefined"
    guarantor_id = _text()
    district = _text()
    name = _text()
    net_assets_fen = _fen()
    leverage_times = _fen()
    defined_on = _day()


@event_type
class RiskFundToppedUp(Event):
    """Money paid into the fund; ``balance_fen`` is the balance after it."""

    TYPE = "RiskFundToppedUp"
    fund_id = _text()
    amount_fen = _fen()
    balance_fen = _fen()
    outstanding_guaranteed_fen = _fen()
    topped_up_on = _day()


@event_type
class RiskFundDrawn(Event):
    """The fund paid its share of a compensated loss."""

    TYPE = "RiskFundDrawn"
    fund_id = _text()
    loan_id = _text()
    compensation_id = _text()
    amount_fen = _fen()
    balance_fen = _fen()
    drawn_on = _day()


@event_type
class RiskFundBelowFloor(Event):
    """The fund fell below its floor share of the outstanding guarantees: new guarantees under
    it are blocked until it is topped up."""

    TYPE = "RiskFundBelowFloor"
    fund_id = _text()
    balance_fen = _fen()
    outstanding_guaranteed_fen = _fen()
    floor_bp = _fen()
    as_of = _day()


# -- a loan, from application to closing ---------------------------------------------------------


class _LoanEvent(Event):
    loan_id = _text()
    bank_code = _text()


@event_type
class LoanApplied(_LoanEvent):
    """A borrower applied for a guaranteed loan from a bank."""

    TYPE = "LoanApplied"
    district = _text()
    product_id = _text()
    borrower_id = _text()
    borrower_type = _text(validate=ma.validate.OneOf(BORROWER_TYPES))
    borrower_name = _text()
    village_id = _text()
    purpose = _text()
    principal_fen = _fen()
    term_months = _fen()
    applied_on = _day()


@event_type
class ApplicantRecommended(_LoanEvent):
    """A village or alliance recommended the applicant (白名单)."""

    TYPE = "ApplicantRecommended"
    recommended_by = _text()
    note = _text()
    recommended_on = _day()


@event_type
class DueDiligenceCompleted(_LoanEvent):
    """The investigation (调查) finished: ``passed`` or not."""

    TYPE = "DueDiligenceCompleted"
    passed = ma.fields.Boolean(required=True)
    note = _text()
    completed_on = _day()


@event_type
class GuaranteeApproved(_LoanEvent):
    """The guarantor approved a guarantee of ``guaranteed_fen`` at ``fee_rate_bp`` a year."""

    TYPE = "GuaranteeApproved"
    borrower_id = _text()
    guarantor_id = _text()
    scheme_id = _text()
    fund_id = _text()
    guaranteed_fen = _fen()
    fee_rate_bp = _fen()
    requires_land_pledge = ma.fields.Boolean(required=True)
    approved_on = _day()


@event_type
class GuaranteeRejected(_LoanEvent):
    """The guarantor declined the application."""

    TYPE = "GuaranteeRejected"
    reason = _text()
    rejected_on = _day()


@event_type
class GuaranteeContractSigned(_LoanEvent):
    """The guarantee contract with the bank is signed."""

    TYPE = "GuaranteeContractSigned"
    guarantee_contract_id = _text()
    signed_on = _day()


@event_type
class CounterGuaranteeRegistered(_LoanEvent):
    """The borrower gave a counter-guarantee (反担保): machinery, livestock, a third party..."""

    TYPE = "CounterGuaranteeRegistered"
    counter_guarantee_id = _text()
    kind = _text()
    value_fen = _fen()
    registered_on = _day()


@event_type
class LandRightPledged(_LoanEvent):
    """A filed land transfer contract's management right is pledged for a loan. On the
    contract's pledge stream ``pledge.<contract_id>``; the land service consumes it."""

    TYPE = "LandRightPledged"
    pledge_id = _text()
    contract_id = _text()
    village_id = _text()
    appraised_value_fen = _fen()
    amount_fen = _fen()
    ltv_bp = _fen()
    max_maturity_on = _day()
    owner_consent_on = _day()
    pledged_on = _day()


@event_type
class PledgeReleased(_LoanEvent):
    """The pledge ended with its closed loan; the contract is free again."""

    TYPE = "PledgeReleased"
    pledge_id = _text()
    contract_id = _text()
    released_on = _day()


@event_type
class LoanDisbursed(_LoanEvent):
    """The bank paid out the loan; it matures on ``maturity_on``."""

    TYPE = "LoanDisbursed"
    district = _text()
    borrower_id = _text()
    village_id = _text()
    principal_fen = _fen()
    guaranteed_fen = _fen()
    disbursed_on = _day()
    maturity_on = _day()


@event_type
class GuaranteeFeeCharged(_LoanEvent):
    """The guarantee fee for the loan's term: guaranteed x annual rate x months / 12."""

    TYPE = "GuaranteeFeeCharged"
    fee_fen = _fen()
    fee_rate_bp = _fen()
    charged_on = _day()


@event_type
class RepaymentReceived(_LoanEvent):
    """The borrower repaid; ``outstanding_principal_fen`` is what remains after it."""

    TYPE = "RepaymentReceived"
    repayment_id = _text()
    principal_fen = _fen()
    interest_fen = _fen()
    outstanding_principal_fen = _fen()
    repaid_on = _day()


@event_type
class LoanOverdue(_LoanEvent):
    """Past maturity and the grace days with principal outstanding (found by a sweep)."""

    TYPE = "LoanOverdue"
    due_on = _day()
    overdue_on = _day()
    outstanding_principal_fen = _fen()
    as_of = _day()


@event_type
class CompensationPaid(_LoanEvent):
    """代偿: ``loss_fen`` (outstanding principal, at most the guaranteed amount) is shared by
    the scheme; the guarantee side pays the bank ``amount_fen`` (the loss less the bank's own
    share)."""

    TYPE = "CompensationPaid"
    compensation_id = _text()
    loss_fen = _fen()
    amount_fen = _fen()
    days_overdue = _fen()
    paid_on = _day()


class LossPart(ma.Schema):
    party_id = _text()
    party_type = _text(validate=ma.validate.OneOf(PARTY_TYPES))
    share_bp = _fen()
    amount_fen = _fen()


@event_type
class LossShared(_LoanEvent):
    """Each party's share of a compensated loss; the amounts sum exactly to ``loss_fen``."""

    TYPE = "LossShared"
    compensation_id = _text()
    loss_fen = _fen()
    shares = ma.fields.List(ma.fields.Nested(LossPart), required=True)
    shared_on = _day()


class RecoveryPart(ma.Schema):
    party_id = _text()
    party_type = _text(validate=ma.validate.OneOf(PARTY_TYPES))
    amount_fen = _fen()


@event_type
class RecoveryReceived(_LoanEvent):
    """Money recovered after compensation (追偿), returned to the parties pro rata to their
    losses; the parts sum exactly to ``amount_fen``."""

    TYPE = "RecoveryReceived"
    recovery_id = _text()
    amount_fen = _fen()
    shares = ma.fields.List(ma.fields.Nested(RecoveryPart), required=True)
    received_on = _day()


@event_type
class LossWrittenOff(_LoanEvent):
    """What was not recovered is written off."""

    TYPE = "LossWrittenOff"
    amount_fen = _fen()
    written_off_on = _day()


@event_type
class LoanClosed(_LoanEvent):
    """The loan is finished: repaid, fully recovered or written off."""

    TYPE = "LoanClosed"
    reason = _text(validate=ma.validate.OneOf(CLOSE_REASONS))
    closed_on = _day()


# -- collective income and its distribution ------------------------------------------------------


@event_type
class IncomeRecorded(Event):
    """Income of a village collective. ``source`` says where it came from; for income fed by
    another service's event, ``source_event_id`` is that event's id."""

    TYPE = "IncomeRecorded"
    entry_id = _text()
    village_id = _text()
    district = _text()
    amount_fen = _fen()
    category = _text()
    source = _text(validate=ma.validate.OneOf(INCOME_SOURCES))
    source_event_id = ma.fields.String(required=True, allow_none=True)
    recorded_on = _day()
    note = _text()


@event_type
class ExpenseRecorded(Event):
    """An expense of a village collective."""

    TYPE = "ExpenseRecorded"
    entry_id = _text()
    village_id = _text()
    district = _text()
    amount_fen = _fen()
    category = _text()
    recorded_on = _day()
    note = _text()


class BucketShare(ma.Schema):
    bucket = _text(validate=ma.validate.OneOf(BUCKETS))
    share_bp = _fen()


@event_type
class DistributionPolicyDefined(Event):
    """How a collective splits distributable profit: bucket shares summing to 10000 bp, and
    how many days a plan is publicised before it is paid."""

    TYPE = "DistributionPolicyDefined"
    policy_id = _text()
    village_id = _text()
    buckets = ma.fields.List(ma.fields.Nested(BucketShare), required=True)
    publicity_days = _fen()
    defined_on = _day()


class Holder(ma.Schema):
    holder_id = _text()
    holder_type = _text(validate=ma.validate.OneOf(HOLDER_TYPES))
    share_pct = ma.fields.Decimal(required=True, as_string=True)


@event_type
class EquityRegisterDefined(Event):
    """A collective's equity register: holders' shares (percent) summing to exactly 100."""

    TYPE = "EquityRegisterDefined"
    register_id = _text()
    village_id = _text()
    holders = ma.fields.List(ma.fields.Nested(Holder), required=True)
    defined_on = _day()


class BucketAmount(ma.Schema):
    bucket = _text(validate=ma.validate.OneOf(BUCKETS))
    share_bp = _fen()
    amount_fen = _fen()


class Payout(ma.Schema):
    holder_id = _text()
    holder_type = _text(validate=ma.validate.OneOf(HOLDER_TYPES))
    share_pct = ma.fields.Decimal(required=True, as_string=True)
    amount_fen = _fen()


@event_type
class DistributionPlanDrafted(Event):
    """A plan: the distributable amount split into buckets, and the member-dividend bucket
    split over the register. Both splits sum exactly (largest remainder)."""

    TYPE = "DistributionPlanDrafted"
    plan_id = _text()
    village_id = _text()
    district = _text()
    policy_id = _text()
    register_id = _text()
    distributable_fen = _fen()
    buckets = ma.fields.List(ma.fields.Nested(BucketAmount), required=True)
    payouts = ma.fields.List(ma.fields.Nested(Payout), required=True)
    drafted_on = _day()


@event_type
class DistributionPlanApproved(Event):
    """Approved by a members' meeting (more than half present) or a representatives' meeting
    (at least two thirds present), by a majority of those present."""

    TYPE = "DistributionPlanApproved"
    plan_id = _text()
    village_id = _text()
    meeting_type = _text(validate=ma.validate.OneOf(MEETING_TYPES))
    eligible = _fen()
    present = _fen()
    in_favour = _fen()
    approved_on = _day()


@event_type
class DistributionPlanPublicised(Event):
    """The approved plan is posted; it may be paid from ``publicity_ends_on``."""

    TYPE = "DistributionPlanPublicised"
    plan_id = _text()
    village_id = _text()
    publicised_on = _day()
    publicity_ends_on = _day()


@event_type
class DividendPaid(Event):
    """One holder's payout of an approved, publicised plan."""

    TYPE = "DividendPaid"
    plan_id = _text()
    village_id = _text()
    holder_id = _text()
    holder_type = _text(validate=ma.validate.OneOf(HOLDER_TYPES))
    amount_fen = _fen()
    paid_on = _day()


#: Every event about a loan: each carries ``loan_id`` and ``bank_code`` and goes to the bank feed.
LOAN_EVENTS: tuple[str, ...] = tuple(sorted(cls.TYPE for cls in _LoanEvent.__subclasses__()))
