"""Request and response schemas of the land service's HTTP API."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from services.land.events import (
    LAND_USES,
    RECLAMATION_MODES,
    TERMINATION_REASONS,
    TRANSFER_MODES,
    TRANSFEREE_TYPES,
    HouseholdShare,
    ListingTerms,
    TransferContractSigned,
)
from shared.fields import Body, area, fen, identifier, positive, text

# -- parcels ----------------------------------------------------------------------------------


class CoContractorIn(Body):
    household_id = identifier(required=True)
    share_pct = area(positive, required=True, metadata={"description": "percent, 2 decimals"})


class ParcelIn(Body):
    id = identifier(required=True, metadata={"description": "the parcel code (地块代码)"})
    village_id = identifier(required=True)
    household_id = identifier(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the contracting household, or its representative; null: collective land"
        },
    )
    co_contractors = ma.fields.List(
        ma.fields.Nested(CoContractorIn),
        load_default=None,
        allow_none=True,
        validate=ma.validate.Length(min=1, max=50),
        metadata={
            "description": "households sharing the contract (a family's 承包 split), the "
            "representative included, with shares adding up to 100.00 %; default: "
            "household_id alone"
        },
    )
    area_mu = area(positive, required=True)
    land_class = text(500, required=True)
    basic_farmland = ma.fields.Boolean(required=True)
    contract_period_ends_on = ma.fields.Date(required=True)
    registered_on = ma.fields.Date(load_default=None)


class EntrustmentIn(Body):
    id = identifier(required=True)
    household_id = identifier(required=True)
    agent = ma.fields.String(required=True, validate=ma.validate.OneOf(("collective", "exchange")))
    area_mu = area(positive, required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    floor_fen_per_mu_year = fen(required=True)
    granted_on = ma.fields.Date(load_default=None)


class RevocationIn(Body):
    revoked_on = ma.fields.Date(load_default=None)


class AvailabilityArgs(Body):
    from_on = ma.fields.Date(data_key="from", required=True)
    to_on = ma.fields.Date(data_key="to", required=True)


class StretchOut(ma.Schema):
    from_on = ma.fields.Date()
    to_on = ma.fields.Date()
    committed_mu = ma.fields.Decimal(as_string=True, places=2)
    available_mu = ma.fields.Decimal(as_string=True, places=2)


class CommitmentOut(ma.Schema):
    kind = ma.fields.String()
    area_mu = ma.fields.Decimal(as_string=True, places=2)
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date()
    entrustment_id = ma.fields.String(allow_none=True)


class EntrustmentOut(ma.Schema):
    household_id = ma.fields.String()
    agent = ma.fields.String()
    area_mu = ma.fields.Decimal(as_string=True, places=2)
    starts_on = ma.fields.Date()
    ends_on = ma.fields.Date()
    floor_fen_per_mu_year = ma.fields.Integer()
    revoked = ma.fields.Boolean()


class ParcelOut(ma.Schema):
    id = ma.fields.String()
    village_id = ma.fields.String()
    district = ma.fields.String()
    household_id = ma.fields.String(allow_none=True)
    co_contractors = ma.fields.Method("dump_co_contractors")
    area_mu = ma.fields.Decimal(as_string=True, places=2)
    land_class = ma.fields.String()
    basic_farmland = ma.fields.Boolean()
    contract_period_ends_on = ma.fields.Date()
    entrustments = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(EntrustmentOut))
    commitments = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(CommitmentOut))
    version = ma.fields.Integer()

    def dump_co_contractors(self, parcel: Any) -> list[dict[str, Any]]:
        return HouseholdShare(many=True).dump(parcel.household_shares)


# -- listings ---------------------------------------------------------------------------------


class WindowsIn(Body):
    registration_closes_at = ma.fields.AwareDateTime(required=True)
    auction_starts_at = ma.fields.AwareDateTime(required=True)
    auction_ends_at = ma.fields.AwareDateTime(required=True)


class ListingIn(Body):
    id = identifier(required=True)
    parcel_id = identifier(required=True)
    area_mu = area(positive, required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    land_use = ma.fields.String(required=True, validate=ma.validate.OneOf(LAND_USES))
    reserve_fen_per_mu_year = fen(1, required=True)
    increment_fen_per_mu_year = fen(1, required=True)
    deposit_fen = fen(required=True)
    entrustment_id = identifier(load_default=None, allow_none=True)
    submitted_on = ma.fields.Date(load_default=None)


class ReviewIn(Body):
    approved = ma.fields.Boolean(required=True)
    opinion = text(500, required=True)
    reviewed_on = ma.fields.Date(load_default=None)


class AmendmentIn(Body):
    reserve_fen_per_mu_year = fen(1, load_default=None)
    increment_fen_per_mu_year = fen(1, load_default=None)
    deposit_fen = fen(load_default=None)
    windows = ma.fields.Nested(WindowsIn, load_default=None)
    reason = text(500, required=True)


class ReasonIn(Body):
    reason = text(500, required=True)


class BidderIn(Body):
    bidder_id = identifier(required=True)
    bidder_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFEREE_TYPES))
    name = text(500, required=True)
    #: The collective the bidder is a member of (checked by the exchange at registration).
    member_of_village_id = identifier(load_default=None, allow_none=True)


class DepositIn(Body):
    amount_fen = fen(1, required=True)
    received_at = ma.fields.AwareDateTime(load_default=None)


class BidIn(Body):
    bidder_id = identifier(required=True)
    amount_fen_per_mu_year = fen(1, required=True)


class NegotiatedAwardIn(Body):
    bidder_id = identifier(required=True)
    amount_fen_per_mu_year = fen(1, required=True)
    awarded_on = ma.fields.Date(load_default=None)


class WinnerPaymentIn(Body):
    amount_fen = fen(1, required=True)
    paid_on = ma.fields.Date(load_default=None)


class RefundIn(Body):
    refunded_on = ma.fields.Date(load_default=None)


class BidderOut(ma.Schema):
    bidder_type = ma.fields.String()
    name = ma.fields.String()
    member_of_village_id = ma.fields.String(allow_none=True)
    deposit = ma.fields.String()
    deposit_fen = ma.fields.Integer()
    qualified = ma.fields.Boolean()


class BidOut(ma.Schema):
    bid_id = ma.fields.String()
    bidder_id = ma.fields.String()
    amount_fen_per_mu_year = ma.fields.Integer(attribute="amount")
    placed_at = ma.fields.AwareDateTime()


class AwardOut(ma.Schema):
    bidder_id = ma.fields.String()
    bid_id = ma.fields.String(allow_none=True)
    amount_fen_per_mu_year = ma.fields.Integer(attribute="amount")
    awarded_on = ma.fields.Date()
    payment_due_on = ma.fields.Date()
    paid = ma.fields.Boolean()


class ListingOut(ma.Schema):
    id = ma.fields.String()
    state = ma.fields.String()
    round = ma.fields.Integer()
    terms = ma.fields.Method("dump_terms")
    windows = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.AwareDateTime())
    bidders = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(BidderOut))
    high_bid = ma.fields.Nested(BidOut, allow_none=True)
    bids = ma.fields.List(ma.fields.Nested(BidOut))
    award = ma.fields.Nested(AwardOut, allow_none=True)
    contract_id = ma.fields.String(allow_none=True)
    version = ma.fields.Integer()

    def dump_terms(self, listing: Any) -> dict[str, Any]:
        return ListingTerms().dump(listing.terms)


class ListingsArgs(Body):
    village_id = identifier(load_default=None)
    state = ma.fields.String(load_default=None)


# -- corporate review -------------------------------------------------------------------------


class CorporateReviewIn(Body):
    id = identifier(required=True)
    transferee_id = identifier(required=True)
    village_id = identifier(required=True)
    area_mu = area(positive, required=True)
    project = text(500, required=True)
    submitted_on = ma.fields.Date(load_default=None)


class DecisionIn(Body):
    approved = ma.fields.Boolean(required=True)
    opinion = text(500, required=True)
    decided_on = ma.fields.Date(load_default=None)


class CorporateReviewOut(ma.Schema):
    id = ma.fields.String()
    transferee_id = ma.fields.String()
    village_id = ma.fields.String()
    area_mu = ma.fields.Decimal(as_string=True, places=2)
    used_mu = ma.fields.Decimal(as_string=True, places=2)
    remaining_mu = ma.fields.Decimal(as_string=True, places=2)
    contracts = ma.fields.List(ma.fields.String())
    status = ma.fields.String()
    version = ma.fields.Integer()


# -- contracts --------------------------------------------------------------------------------


class ContractIn(Body):
    id = identifier(required=True)
    listing_id = identifier(load_default=None, allow_none=True)
    parcel_id = identifier(load_default=None)
    transferee_id = identifier(required=True)
    transferee_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFEREE_TYPES))
    mode = ma.fields.String(load_default="lease", validate=ma.validate.OneOf(TRANSFER_MODES))
    land_use = ma.fields.String(load_default=None, validate=ma.validate.OneOf(LAND_USES))
    area_mu = area(positive, load_default=None)
    starts_on = ma.fields.Date(load_default=None)
    ends_on = ma.fields.Date(load_default=None)
    rent_fen_per_mu_year = fen(1, load_default=None)
    management_fee_bp = ma.fields.Integer(
        strict=True,
        load_default=None,
        allow_none=True,
        validate=ma.validate.Range(min=1, max=2000),
        metadata={"description": "the collective's fee under a 3-party agreement, basis points"},
    )
    entrustment_id = identifier(load_default=None, allow_none=True)
    household_signed = ma.fields.Boolean(
        load_default=False, metadata={"description": "the household signs itself"}
    )
    corporate_review_id = identifier(load_default=None, allow_none=True)
    signed_on = ma.fields.Date(load_default=None)


class FilingIn(Body):
    filed_on = ma.fields.Date(load_default=None)


class CertificateIn(Body):
    certificate_no = identifier(required=True)
    issued_on = ma.fields.Date(load_default=None)


class TerminationIn(Body):
    reason = ma.fields.String(required=True, validate=ma.validate.OneOf(TERMINATION_REASONS))
    terminated_on = ma.fields.Date(load_default=None)


class ReassignmentIn(Body):
    transferee_id = identifier(required=True)
    transferee_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFEREE_TYPES))
    household_consent = ma.fields.Boolean(required=True)
    reassigned_on = ma.fields.Date(load_default=None)


class RentAdjustmentIn(Body):
    rent_fen_per_mu_year = fen(1, required=True)
    index_name = text(500, required=True)
    effective_on = ma.fields.Date(required=True)


class RentPaymentIn(Body):
    invoice_id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=80))
    amount_fen = fen(1, required=True)
    paid_on = ma.fields.Date(load_default=None)


class InvoiceOut(ma.Schema):
    period_starts_on = ma.fields.Date()
    period_ends_on = ma.fields.Date()
    amount_fen = ma.fields.Integer()
    due_on = ma.fields.Date()
    paid_fen = ma.fields.Integer()
    fee_fen = ma.fields.Integer()
    outstanding_fen = ma.fields.Integer()
    overdue = ma.fields.Boolean()


class ContractOut(ma.Schema):
    id = ma.fields.String()
    status = ma.fields.String()
    facts = ma.fields.Method("dump_facts")
    filed_on = ma.fields.Date(allow_none=True)
    certificate_no = ma.fields.String(allow_none=True)
    terminated_on = ma.fields.Date(allow_none=True)
    invoices = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Nested(InvoiceOut))
    version = ma.fields.Integer()

    def dump_facts(self, contract: Any) -> dict[str, Any]:
        return TransferContractSigned().dump(contract.facts)


class ContractsArgs(Body):
    village_id = identifier(load_default=None)
    cluster_id = identifier(load_default=None)
    on = ma.fields.Date(load_default=None)

    @ma.validates_schema
    def one_place(self, data: dict[str, Any], **kwargs: Any) -> None:
        if (data["village_id"] is None) == (data["cluster_id"] is None):
            raise ma.ValidationError("give village_id or cluster_id", "village_id")


class InvoicesArgs(Body):
    village_id = identifier(load_default=None)
    contract_id = identifier(load_default=None)
    status = ma.fields.String(
        load_default="due", validate=ma.validate.OneOf(("due", "overdue", "all"))
    )


class OnArgs(Body):
    on = ma.fields.Date(load_default=None)


# -- abandoned land ---------------------------------------------------------------------------


class AbandonmentIn(Body):
    id = identifier(required=True)
    village_id = identifier(required=True)
    parcel_id = identifier(load_default=None, allow_none=True)
    area_mu = area(positive, required=True)
    reason = text(500, required=True)
    reported_on = ma.fields.Date(load_default=None)


class AssignmentIn(Body):
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(RECLAMATION_MODES))
    assignee_id = identifier(required=True)
    assigned_on = ma.fields.Date(load_default=None)


class ReclaimedIn(Body):
    area_mu = area(positive, required=True)
    confirmed_on = ma.fields.Date(load_default=None)


class AbandonmentOut(ma.Schema):
    id = ma.fields.String()
    village_id = ma.fields.String()
    area_mu = ma.fields.Decimal(as_string=True, places=2)
    status = ma.fields.String()
    version = ma.fields.Integer()


# -- sweeps -----------------------------------------------------------------------------------


class SweepIn(Body):
    as_of = ma.fields.String(
        required=True, metadata={"description": "an ISO date or an aware ISO datetime"}
    )
