"""Events of the land service: the contract on ``land.events``.

Money is integer fen, areas decimal mu as strings with two places, business dates ``*_on`` are days
in Asia/Shanghai and instants ``*_at`` carry their zone. The fields that other services rely on
(``TransferContractSigned``, ``TransferContractFiled``, ``ContractTerminated``, ``RentPaid``,
``ManagementFeeCollected``) are listed in docs/events/README.md; the others are land's own.
"""

from __future__ import annotations

import marshmallow as ma

from shared.events import Event, event_type

LAND_USES = ("grain", "vegetables", "cash_crops", "orchard", "forestry", "aquaculture", "livestock")
TRANSFEREE_TYPES = ("household", "family_farm", "cooperative", "company", "collective")
TRANSFER_MODES = ("lease", "subcontract", "share", "exchange", "assignment")
#: Why a contract may end early: the four legal grounds of the contracting household, and an
#: agreement of both parties.
TERMINATION_REASONS = (
    "changed_agricultural_use",
    "abandoned_two_years",
    "serious_land_damage",
    "serious_breach",
    "mutual_agreement",
)
RECLAMATION_MODES = ("household", "large_operator", "collective")
PAYEE_TYPES = ("household", "collective")
#: Percentages of a parcel's co-contracting households have at most two decimals and add up to
#: exactly this.
WHOLE_PERCENT = "100.00"


def _area(**kwargs: object) -> ma.fields.Decimal:
    return ma.fields.Decimal(as_string=True, places=2, **kwargs)  # type: ignore[arg-type]


def _fen(**kwargs: object) -> ma.fields.Integer:
    return ma.fields.Integer(strict=True, **kwargs)  # type: ignore[arg-type]


# -- parcels ----------------------------------------------------------------------------------


class HouseholdShare(ma.Schema):
    """One co-contracting household's share of a parcel (and so of its rent), in percent."""

    household_id = ma.fields.String(required=True)
    share_pct = ma.fields.Decimal(as_string=True, places=2, required=True)


@event_type
class ParcelRegistered(Event):
    """A parcel of contracted land (地块) enters the exchange's register."""

    TYPE = "ParcelRegistered"
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    household_id = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "the contracting household (its representative); null: collective"
        },
    )
    co_contractors = ma.fields.List(
        ma.fields.Nested(HouseholdShare),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "every contracting household with its share in percent (adding up to "
            "100.00); empty for collective land; absent in events before co-contractors existed"
        },
    )
    area_mu = _area(required=True)
    land_class = ma.fields.String(required=True)
    basic_farmland = ma.fields.Boolean(required=True)
    contract_period_ends_on = ma.fields.Date(required=True)
    registered_on = ma.fields.Date(required=True)


@event_type
class EntrustmentGranted(Event):
    """A household's written entrustment: the exchange or the collective may transfer its parcel
    within this term, area and price floor."""

    TYPE = "EntrustmentGranted"
    entrustment_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    household_id = ma.fields.String(required=True)
    agent = ma.fields.String(required=True, validate=ma.validate.OneOf(("collective", "exchange")))
    area_mu = _area(required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    floor_fen_per_mu_year = _fen(required=True)
    granted_on = ma.fields.Date(required=True)


@event_type
class EntrustmentRevoked(Event):
    """The household withdrew an entrustment."""

    TYPE = "EntrustmentRevoked"
    entrustment_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    revoked_on = ma.fields.Date(required=True)


@event_type
class ParcelAreaCommitted(Event):
    """Part of a parcel is held for a listing or transferred by a contract over a period
    (``ends_on`` inclusive)."""

    TYPE = "ParcelAreaCommitted"
    parcel_id = ma.fields.String(required=True)
    commitment_id = ma.fields.String(required=True)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(("listing", "contract")))
    area_mu = _area(required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    entrustment_id = ma.fields.String(required=True, allow_none=True)


@event_type
class ParcelAreaReleased(Event):
    """A hold or a contract no longer covers the parcel from ``released_from`` on."""

    TYPE = "ParcelAreaReleased"
    parcel_id = ma.fields.String(required=True)
    commitment_id = ma.fields.String(required=True)
    released_from = ma.fields.Date(required=True)


# -- listings ---------------------------------------------------------------------------------


class ListingTerms(ma.Schema):
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    area_mu = _area(required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    land_use = ma.fields.String(required=True, validate=ma.validate.OneOf(LAND_USES))
    reserve_fen_per_mu_year = _fen(required=True)
    increment_fen_per_mu_year = _fen(required=True)
    deposit_fen = _fen(required=True)
    entrustment_id = ma.fields.String(required=True, allow_none=True)
    renewal_priority = ma.fields.List(
        ma.fields.String(),
        load_default=list,
        metadata={
            "description": "transferees whose contract on the parcel ended within the year before "
            "this term starts: they may match the best bid (renewal at equal terms); absent in "
            "events before the rule existed"
        },
    )


@event_type
class ListingSubmitted(Event):
    """An application to list land (挂牌申请), with its terms; the parcel area is held."""

    TYPE = "ListingSubmitted"
    listing_id = ma.fields.String(required=True)
    terms = ma.fields.Nested(ListingTerms, required=True)
    submitted_on = ma.fields.Date(required=True)


@event_type
class ListingApproved(Event):
    """The exchange's staff checked the materials and title."""

    TYPE = "ListingApproved"
    listing_id = ma.fields.String(required=True)
    opinion = ma.fields.String(required=True)
    reviewed_on = ma.fields.Date(required=True)


@event_type
class ListingRejected(Event):
    """The materials did not pass review; the parcel's hold is released."""

    TYPE = "ListingRejected"
    listing_id = ma.fields.String(required=True)
    opinion = ma.fields.String(required=True)
    reviewed_on = ma.fields.Date(required=True)


class Windows(ma.Schema):
    registration_closes_at = ma.fields.AwareDateTime(required=True)
    auction_starts_at = ma.fields.AwareDateTime(required=True)
    auction_ends_at = ma.fields.AwareDateTime(required=True)


@event_type
class LandListed(Event):
    """The listing is published (公告): bidders may register and pay a deposit until
    registration closes; the auction runs in its own window afterwards."""

    TYPE = "LandListed"
    listing_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    area_mu = _area(required=True)
    reserve_fen_per_mu_year = _fen(required=True)
    windows = ma.fields.Nested(Windows, required=True)
    round = ma.fields.Integer(required=True)
    published_at = ma.fields.AwareDateTime(required=True)


@event_type
class ListingAmended(Event):
    """Published terms changed (变更公告) before the auction: only the fields present changed."""

    TYPE = "ListingAmended"
    listing_id = ma.fields.String(required=True)
    reserve_fen_per_mu_year = _fen(load_default=None, allow_none=True)
    increment_fen_per_mu_year = _fen(load_default=None, allow_none=True)
    deposit_fen = _fen(load_default=None, allow_none=True)
    windows = ma.fields.Nested(Windows, load_default=None, allow_none=True)
    reason = ma.fields.String(required=True)
    amended_on = ma.fields.Date(required=True)


@event_type
class ListingSuspended(Event):
    """Trading is paused (中止); no registrations, deposits or bids until resumed."""

    TYPE = "ListingSuspended"
    listing_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    suspended_on = ma.fields.Date(required=True)


@event_type
class ListingResumed(Event):
    """A suspended listing trades again, in the state it was suspended from."""

    TYPE = "ListingResumed"
    listing_id = ma.fields.String(required=True)
    windows = ma.fields.Nested(Windows, required=True)
    resumed_on = ma.fields.Date(required=True)


@event_type
class ListingTerminated(Event):
    """The listing ends without a deal (终结); the parcel's hold is released."""

    TYPE = "ListingTerminated"
    listing_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    terminated_on = ma.fields.Date(required=True)


@event_type
class BidderRegistered(Event):
    """Someone registered an intention to take the land (登记受让意向)."""

    TYPE = "BidderRegistered"
    listing_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    bidder_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFEREE_TYPES))
    name = ma.fields.String(required=True)
    member_of_village_id = ma.fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the collective (village) the bidder is a member of, as the exchange "
            "checked it at registration; a member of the parcel's own collective may match the "
            "best bid"
        },
    )
    registered_at = ma.fields.AwareDateTime(required=True)


@event_type
class DepositReceived(Event):
    """A registered bidder's deposit (保证金) arrived before registration closed: qualified."""

    TYPE = "DepositReceived"
    listing_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    amount_fen = _fen(required=True)
    received_at = ma.fields.AwareDateTime(required=True)


@event_type
class RegistrationClosed(Event):
    """Registration ended; what happens next follows from the number of qualified bidders."""

    TYPE = "RegistrationClosed"
    listing_id = ma.fields.String(required=True)
    qualified_bidders = ma.fields.Integer(required=True)
    outcome = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(("auction", "reannounce", "negotiate", "failed")),
    )
    closed_at = ma.fields.AwareDateTime(required=True)


@event_type
class ListingReannounced(Event):
    """Too few qualified bidders: a second announcement with new windows."""

    TYPE = "ListingReannounced"
    listing_id = ma.fields.String(required=True)
    windows = ma.fields.Nested(Windows, required=True)
    round = ma.fields.Integer(required=True)


@event_type
class TransferBidPlaced(Event):
    """A qualified bidder's offer, in fen per mu per year."""

    TYPE = "TransferBidPlaced"
    listing_id = ma.fields.String(required=True)
    bid_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    amount_fen_per_mu_year = _fen(required=True)
    placed_at = ma.fields.AwareDateTime(required=True)
    priority = ma.fields.String(
        load_default=None,
        allow_none=True,
        validate=ma.validate.OneOf(("renewal", "collective_member")),
        metadata={
            "description": "set when the bid matched the high bid at an equal price by a "
            "priority right (the previous transferee's renewal, or membership of the parcel's "
            "collective) instead of raising it"
        },
    )


@event_type
class BiddingExtended(Event):
    """A bid in the last minutes moved the end of the auction."""

    TYPE = "BiddingExtended"
    listing_id = ma.fields.String(required=True)
    bid_id = ma.fields.String(required=True)
    auction_ends_at = ma.fields.AwareDateTime(required=True)


@event_type
class ListingAwarded(Event):
    """The highest (and, at equal price, earliest) bid won, or a negotiated deal was struck."""

    TYPE = "ListingAwarded"
    listing_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    bid_id = ma.fields.String(required=True, allow_none=True)
    amount_fen_per_mu_year = _fen(required=True)
    method = ma.fields.String(required=True, validate=ma.validate.OneOf(("auction", "negotiation")))
    awarded_on = ma.fields.Date(required=True)
    payment_due_on = ma.fields.Date(required=True)


@event_type
class ListingFailed(Event):
    """No deal (流标): no valid bid, or no qualified bidder after the second announcement."""

    TYPE = "ListingFailed"
    listing_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    failed_on = ma.fields.Date(required=True)


@event_type
class WinnerPaid(Event):
    """The winner paid the deal's price in time; a contract may be signed."""

    TYPE = "WinnerPaid"
    listing_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    amount_fen = _fen(required=True)
    paid_on = ma.fields.Date(required=True)


@event_type
class DepositForfeited(Event):
    """The winner did not pay within the working days allowed: the deposit is kept."""

    TYPE = "DepositForfeited"
    listing_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    amount_fen = _fen(required=True)
    forfeited_on = ma.fields.Date(required=True)


@event_type
class ListingReopened(Event):
    """After a forfeit the listing goes back to "approved", to be announced again with new
    windows: every bidder registers and pays a deposit afresh (the other bidders' deposits were
    refunded just before), and the defaulting winner may not take part again."""

    TYPE = "ListingReopened"
    listing_id = ma.fields.String(required=True)
    reopened_on = ma.fields.Date(required=True)


@event_type
class DepositRefunded(Event):
    """A deposit went back to the bidder (once)."""

    TYPE = "DepositRefunded"
    listing_id = ma.fields.String(required=True)
    bidder_id = ma.fields.String(required=True)
    amount_fen = _fen(required=True)
    refunded_on = ma.fields.Date(required=True)


@event_type
class ListingContracted(Event):
    """The award became a signed transfer contract."""

    TYPE = "ListingContracted"
    listing_id = ma.fields.String(required=True)
    contract_id = ma.fields.String(required=True)
    signed_on = ma.fields.Date(required=True)


# -- corporate review -------------------------------------------------------------------------


@event_type
class CorporateReviewSubmitted(Event):
    """A company applies for the qualification and project review before taking land."""

    TYPE = "CorporateReviewSubmitted"
    review_id = ma.fields.String(required=True)
    transferee_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    area_mu = _area(required=True)
    project = ma.fields.String(required=True)
    submitted_on = ma.fields.Date(required=True)


@event_type
class CorporateTransferApproved(Event):
    """The review panel approved the company taking up to ``area_mu``."""

    TYPE = "CorporateTransferApproved"
    review_id = ma.fields.String(required=True)
    opinion = ma.fields.String(required=True)
    decided_on = ma.fields.Date(required=True)
    decided_late = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "decided after the last day allowed (20 working days)"},
    )


@event_type
class CorporateReviewOverdue(Event):
    """The panel had not decided within the working days allowed after submission (flagged
    once by the sweep; a decision is still taken, and recorded as late)."""

    TYPE = "CorporateReviewOverdue"
    review_id = ma.fields.String(required=True)
    transferee_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    submitted_on = ma.fields.Date(required=True)
    due_on = ma.fields.Date(required=True, metadata={"description": "the last day to decide"})
    as_of = ma.fields.Date(required=True)


@event_type
class CorporateReviewAreaUsed(Event):
    """A contract took part of the area a review approved; what is left may go to later
    contracts, never more than the approved area in all."""

    TYPE = "CorporateReviewAreaUsed"
    review_id = ma.fields.String(required=True)
    contract_id = ma.fields.String(required=True)
    area_mu = _area(required=True)
    remaining_mu = _area(required=True)


@event_type
class CorporateTransferRejected(Event):
    """The review panel refused."""

    TYPE = "CorporateTransferRejected"
    review_id = ma.fields.String(required=True)
    opinion = ma.fields.String(required=True)
    decided_on = ma.fields.Date(required=True)
    decided_late = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "decided after the last day allowed (20 working days)"},
    )


# -- contracts and rent -----------------------------------------------------------------------


@event_type
class TransferContractSigned(Event):
    """A land management right transfer contract was signed (from an award or directly)."""

    TYPE = "TransferContractSigned"
    contract_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    household_id = ma.fields.String(required=True, allow_none=True)
    transferee_id = ma.fields.String(required=True)
    transferee_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFEREE_TYPES))
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFER_MODES))
    land_use = ma.fields.String(required=True, validate=ma.validate.OneOf(LAND_USES))
    area_mu = _area(required=True)
    starts_on = ma.fields.Date(required=True)
    ends_on = ma.fields.Date(required=True)
    rent_fen_per_mu_year = _fen(required=True)
    management_fee_bp = ma.fields.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "the collective's fee in basis points of rent (3-party)"},
    )
    listing_id = ma.fields.String(required=True, allow_none=True)
    corporate_review_id = ma.fields.String(required=True, allow_none=True)
    signed_on = ma.fields.Date(required=True)
    household_shares = ma.fields.List(
        ma.fields.Nested(HouseholdShare),
        load_default=None,
        allow_none=True,
        metadata={
            "description": "the parcel's co-contracting households and their shares of the rent "
            "(empty for collective land; absent before co-contractors existed: all to household_id)"
        },
    )


@event_type
class TransferContractFiled(Event):
    """The contract was filed (备案) with the contract-issuing party."""

    TYPE = "TransferContractFiled"
    contract_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    filed_on = ma.fields.Date(required=True)


@event_type
class ContractFilingOverdue(Event):
    """A signed contract was not filed (备案) within the days allowed after signing (flagged
    once by the sweep; it may still be filed)."""

    TYPE = "ContractFilingOverdue"
    contract_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    signed_on = ma.fields.Date(required=True)
    due_on = ma.fields.Date(required=True, metadata={"description": "the last day to file"})
    as_of = ma.fields.Date(required=True)


@event_type
class TradeCertificateIssued(Event):
    """The exchange certified the deal (交易鉴证书)."""

    TYPE = "TradeCertificateIssued"
    contract_id = ma.fields.String(required=True)
    certificate_no = ma.fields.String(required=True)
    issued_on = ma.fields.Date(required=True)


@event_type
class ContractReassigned(Event):
    """The transferee re-transferred the right (再流转) with the household's written consent."""

    TYPE = "ContractReassigned"
    contract_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    previous_transferee_id = ma.fields.String(required=True)
    transferee_id = ma.fields.String(required=True)
    transferee_type = ma.fields.String(required=True, validate=ma.validate.OneOf(TRANSFEREE_TYPES))
    reassigned_on = ma.fields.Date(required=True)


@event_type
class ContractTerminated(Event):
    """The contract ended early for a legal reason; the area is free from ``terminated_on``."""

    TYPE = "ContractTerminated"
    contract_id = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    area_mu = _area(required=True)
    reason = ma.fields.String(required=True, validate=ma.validate.OneOf(TERMINATION_REASONS))
    terminated_on = ma.fields.Date(required=True)


@event_type
class RentAdjusted(Event):
    """Indexed rent re-set (e.g. to a grain price) for rent years starting on or after
    ``effective_on``; invoices already issued keep their amount."""

    TYPE = "RentAdjusted"
    contract_id = ma.fields.String(required=True)
    rent_fen_per_mu_year = _fen(required=True)
    index_name = ma.fields.String(required=True)
    effective_on = ma.fields.Date(required=True)


@event_type
class RentInvoiced(Event):
    """A year's rent, due in advance on the first day of the rent year."""

    TYPE = "RentInvoiced"
    invoice_id = ma.fields.String(required=True)
    contract_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    period_starts_on = ma.fields.Date(required=True)
    period_ends_on = ma.fields.Date(required=True)
    amount_fen = _fen(required=True)
    due_on = ma.fields.Date(required=True)


class RentShare(ma.Schema):
    payee_id = ma.fields.String(required=True)
    payee_type = ma.fields.String(required=True, validate=ma.validate.OneOf(PAYEE_TYPES))
    amount_fen = _fen(required=True)


@event_type
class RentPaid(Event):
    """Rent received, split to its payees: the shares add up to ``amount_fen`` exactly."""

    TYPE = "RentPaid"
    invoice_id = ma.fields.String(required=True)
    contract_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    amount_fen = _fen(required=True)
    shares = ma.fields.List(ma.fields.Nested(RentShare), required=True)
    paid_on = ma.fields.Date(required=True)


@event_type
class ManagementFeeCollected(Event):
    """The collective's agreed management fee out of a rent payment: the collective's income."""

    TYPE = "ManagementFeeCollected"
    contract_id = ma.fields.String(required=True)
    invoice_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    amount_fen = _fen(required=True)
    collected_on = ma.fields.Date(required=True)


@event_type
class RentOverdue(Event):
    """An invoice was not fully paid by its due day (flagged once)."""

    TYPE = "RentOverdue"
    invoice_id = ma.fields.String(required=True)
    contract_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    outstanding_fen = _fen(required=True)
    due_on = ma.fields.Date(required=True)
    as_of = ma.fields.Date(required=True)


@event_type
class ContractPledgeRecorded(Event):
    """The finance service reported that a bank took the contract's right as a pledge
    (``LandRightPledged``): from this version of the contract on it may not be terminated or
    re-transferred until the pledge is released."""

    TYPE = "ContractPledgeRecorded"
    contract_id = ma.fields.String(required=True)
    pledge_id = ma.fields.String(required=True)
    loan_id = ma.fields.String(required=True)
    bank_code = ma.fields.String(required=True)
    pledged_on = ma.fields.Date(required=True)
    source_event_id = ma.fields.String(required=True)


@event_type
class ContractPledgeReleased(Event):
    """The finance service reported the pledge released (``PledgeReleased``)."""

    TYPE = "ContractPledgeReleased"
    contract_id = ma.fields.String(required=True)
    pledge_id = ma.fields.String(required=True)
    released_on = ma.fields.Date(required=True)
    source_event_id = ma.fields.String(required=True)


@event_type
class ContractPledgeRefused(Event):
    """A pledge reached land after the contract had ended: there is no right left to pledge.
    The bank's collateral is void; finance and the bank learn it from this event."""

    TYPE = "ContractPledgeRefused"
    contract_id = ma.fields.String(required=True)
    pledge_id = ma.fields.String(required=True)
    loan_id = ma.fields.String(required=True)
    bank_code = ma.fields.String(required=True)
    reason = ma.fields.String(required=True)
    source_event_id = ma.fields.String(required=True)


# -- abandoned land ---------------------------------------------------------------------------


@event_type
class LandAbandonmentReported(Event):
    """Abandoned land (撂荒) entered the village's ledger."""

    TYPE = "LandAbandonmentReported"
    case_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    district = ma.fields.String(required=True)
    parcel_id = ma.fields.String(required=True, allow_none=True)
    area_mu = _area(required=True)
    reason = ma.fields.String(required=True)
    reported_on = ma.fields.Date(required=True)


@event_type
class ReclamationAssigned(Event):
    """Who will bring the land back into use."""

    TYPE = "ReclamationAssigned"
    case_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    mode = ma.fields.String(required=True, validate=ma.validate.OneOf(RECLAMATION_MODES))
    assignee_id = ma.fields.String(required=True)
    assigned_on = ma.fields.Date(required=True)


@event_type
class AbandonedLandReclaimed(Event):
    """The reclamation was confirmed: the ledger item is closed (销号)."""

    TYPE = "AbandonedLandReclaimed"
    case_id = ma.fields.String(required=True)
    village_id = ma.fields.String(required=True)
    area_mu = _area(required=True)
    confirmed_on = ma.fields.Date(required=True)
