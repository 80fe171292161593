"""Read models of the land service: parcels, listings with their high bid, contracts, rent
invoices and the abandoned-land ledger (inline, from land's own events). Bank pledges are not a
read model: they are events of the contract's own stream (see ``TransferContract``)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    String,
    Table,
)
from sqlalchemy.engine import Connection

from shared.eventstore import RecordedEvent
from shared.projections import Projection

land_model = MetaData()
parcels = Table(
    "land_parcels",
    land_model,
    Column("parcel_id", String(64), primary_key=True),
    Column("village_id", String(64), nullable=False, index=True),
    Column("district", String(64), nullable=False),
    Column("household_id", String(64)),
    Column("area_mu", String(32), nullable=False),
    Column("land_class", String(100), nullable=False),
    Column("basic_farmland", Boolean, nullable=False),
    Column("contract_period_ends_on", Date, nullable=False),
)
listings = Table(
    "land_listings",
    land_model,
    Column("listing_id", String(64), primary_key=True),
    Column("parcel_id", String(64), nullable=False),
    Column("village_id", String(64), nullable=False, index=True),
    Column("area_mu", String(32), nullable=False),
    Column("state", String(20), nullable=False, index=True),
    Column("suspended_from", String(20)),
    Column("reserve_fen_per_mu_year", BigInteger, nullable=False),
    Column("high_bid_fen_per_mu_year", BigInteger),
    Column("high_bidder_id", String(64)),
    Column("bids", Integer, nullable=False),
    Column("registration_closes_at", String(40)),
    Column("auction_ends_at", String(40)),
)
contracts = Table(
    "land_contracts",
    land_model,
    Column("contract_id", String(64), primary_key=True),
    Column("parcel_id", String(64), nullable=False),
    Column("village_id", String(64), nullable=False, index=True),
    Column("district", String(64), nullable=False),
    Column("transferee_id", String(64), nullable=False),
    Column("transferee_type", String(20), nullable=False),
    Column("area_mu", String(32), nullable=False),
    Column("starts_on", Date, nullable=False),
    Column("ends_on", Date, nullable=False),
    Column("rent_fen_per_mu_year", BigInteger, nullable=False),
    Column("status", String(20), nullable=False),
    Column("filed_on", Date),
    Column("terminated_on", Date),
)
invoices = Table(
    "land_invoices",
    land_model,
    Column("invoice_id", String(80), primary_key=True),
    Column("contract_id", String(64), nullable=False, index=True),
    Column("village_id", String(64), nullable=False, index=True),
    Column("amount_fen", BigInteger, nullable=False),
    Column("paid_fen", BigInteger, nullable=False),
    Column("due_on", Date, nullable=False),
    Column("overdue", Boolean, nullable=False),
)
abandoned = Table(
    "land_abandoned",
    land_model,
    Column("case_id", String(64), primary_key=True),
    Column("village_id", String(64), nullable=False, index=True),
    Column("parcel_id", String(64)),
    Column("area_mu", String(32), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("reported_on", Date, nullable=False),
    Column("status", String(20), nullable=False),
    Column("mode", String(20)),
    Column("assignee_id", String(64)),
    Column("reclaimed_on", Date),
)

#: Open deadlines the sweep watches: a corporate review's decision (``review``, from its
#: submission) and a contract's filing (``filing``, from its signing). Closed once met or flagged.
deadlines = Table(
    "land_deadlines",
    land_model,
    Column("aggregate_id", String(64), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("started_on", Date, nullable=False),
    Column("open", Boolean, nullable=False),
)
#: Events that open a deadline: (kind, the id field, the day it runs from).
DEADLINE_OPENED = {
    "CorporateReviewSubmitted": ("review", "review_id", "submitted_on"),
    "TransferContractSigned": ("filing", "contract_id", "signed_on"),
}
#: Events that close one: (kind, the id field).
DEADLINE_CLOSED = {
    "CorporateTransferApproved": ("review", "review_id"),
    "CorporateTransferRejected": ("review", "review_id"),
    "CorporateReviewOverdue": ("review", "review_id"),
    "TransferContractFiled": ("filing", "contract_id"),
    "ContractTerminated": ("filing", "contract_id"),
    "ContractFilingOverdue": ("filing", "contract_id"),
}

#: The state a listing is in after each event that moves it (the rest need the event's data).
LISTING_STATES = {
    "ListingSubmitted": "submitted",
    "ListingApproved": "approved",
    "ListingRejected": "rejected",
    "LandListed": "published",
    "ListingReannounced": "published",
    "ListingSuspended": "suspended",
    "ListingTerminated": "terminated",
    "ListingAwarded": "awarded",
    "ListingFailed": "failed",
    "WinnerPaid": "paid",
    "ListingReopened": "approved",
    "ListingContracted": "contracted",
}


def _day(value: str) -> date:
    return date.fromisoformat(value)


class LandViews(Projection):
    metadata = land_model
    handles = frozenset(
        {
            "ParcelRegistered",
            *LISTING_STATES,
            "ListingAmended",
            "ListingResumed",
            "RegistrationClosed",
            "TransferBidPlaced",
            "BiddingExtended",
            "TransferContractSigned",
            "TransferContractFiled",
            "TradeCertificateIssued",
            "ContractReassigned",
            "ContractTerminated",
            "RentAdjusted",
            "RentInvoiced",
            "RentPaid",
            "RentOverdue",
            "LandAbandonmentReported",
            "ReclamationAssigned",
            "AbandonedLandReclaimed",
            *DEADLINE_OPENED,
            *DEADLINE_CLOSED,
        }
    )

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        handler = getattr(self, f"_on_{event.type}", None)
        if handler is not None:
            handler(event.data, db)
        if event.type in LISTING_STATES:
            self._listing(event.data["listing_id"], db, state=LISTING_STATES[event.type])
        if event.type in DEADLINE_OPENED:
            kind, key, day = DEADLINE_OPENED[event.type]
            db.execute(
                deadlines.insert().values(
                    aggregate_id=event.data[key],
                    kind=kind,
                    started_on=_day(event.data[day]),
                    open=True,
                )
            )
        if event.type in DEADLINE_CLOSED:
            kind, key = DEADLINE_CLOSED[event.type]
            c = deadlines.c
            db.execute(
                deadlines.update()
                .where(c.aggregate_id == event.data[key], c.kind == kind)
                .values(open=False)
            )

    # -- parcels --

    def _on_ParcelRegistered(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            parcels.insert().values(
                parcel_id=d["parcel_id"],
                village_id=d["village_id"],
                district=d["district"],
                household_id=d["household_id"],
                area_mu=d["area_mu"],
                land_class=d["land_class"],
                basic_farmland=d["basic_farmland"],
                contract_period_ends_on=_day(d["contract_period_ends_on"]),
            )
        )

    # -- listings --

    @staticmethod
    def _listing(listing_id: str, db: Connection, **values: Any) -> None:
        db.execute(listings.update().where(listings.c.listing_id == listing_id).values(**values))

    def _on_ListingSubmitted(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        terms = d["terms"]
        db.execute(
            listings.insert().values(
                listing_id=d["listing_id"],
                parcel_id=terms["parcel_id"],
                village_id=terms["village_id"],
                area_mu=terms["area_mu"],
                state="submitted",
                reserve_fen_per_mu_year=terms["reserve_fen_per_mu_year"],
                bids=0,
            )
        )

    def _windows(self, d: dict[str, Any], db: Connection) -> None:
        windows = d["windows"]
        self._listing(
            d["listing_id"],
            db,
            registration_closes_at=windows["registration_closes_at"],
            auction_ends_at=windows["auction_ends_at"],
        )

    _on_LandListed = _windows  # noqa: N815
    _on_ListingReannounced = _windows  # noqa: N815

    def _on_ListingAmended(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        if d.get("windows"):
            self._windows(d, db)
        if d.get("reserve_fen_per_mu_year") is not None:
            self._listing(d["listing_id"], db, reserve_fen_per_mu_year=d["reserve_fen_per_mu_year"])

    def _on_ListingSuspended(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._listing(d["listing_id"], db, suspended_from=listings.c.state)

    def _on_ListingResumed(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._windows(d, db)
        self._listing(d["listing_id"], db, state=listings.c.suspended_from)

    def _on_RegistrationClosed(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        state = {"auction": "bidding", "negotiate": "negotiating"}.get(d["outcome"])
        if state:
            self._listing(d["listing_id"], db, state=state)

    def _on_TransferBidPlaced(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._listing(
            d["listing_id"],
            db,
            high_bid_fen_per_mu_year=d["amount_fen_per_mu_year"],
            high_bidder_id=d["bidder_id"],
            bids=listings.c.bids + 1,
        )

    def _on_BiddingExtended(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._listing(d["listing_id"], db, auction_ends_at=d["auction_ends_at"])

    def _on_ListingReopened(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._listing(d["listing_id"], db, high_bid_fen_per_mu_year=None, high_bidder_id=None)

    # -- contracts --

    @staticmethod
    def _contract(contract_id: str, db: Connection, **values: Any) -> None:
        db.execute(
            contracts.update().where(contracts.c.contract_id == contract_id).values(**values)
        )

    def _on_TransferContractSigned(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            contracts.insert().values(
                contract_id=d["contract_id"],
                parcel_id=d["parcel_id"],
                village_id=d["village_id"],
                district=d["district"],
                transferee_id=d["transferee_id"],
                transferee_type=d["transferee_type"],
                area_mu=d["area_mu"],
                starts_on=_day(d["starts_on"]),
                ends_on=_day(d["ends_on"]),
                rent_fen_per_mu_year=d["rent_fen_per_mu_year"],
                status="signed",
            )
        )

    def _on_TransferContractFiled(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._contract(d["contract_id"], db, status="filed", filed_on=_day(d["filed_on"]))

    def _on_TradeCertificateIssued(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._contract(d["contract_id"], db, status="certified")

    def _on_ContractReassigned(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._contract(
            d["contract_id"],
            db,
            transferee_id=d["transferee_id"],
            transferee_type=d["transferee_type"],
        )

    def _on_ContractTerminated(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._contract(
            d["contract_id"], db, status="terminated", terminated_on=_day(d["terminated_on"])
        )

    def _on_RentAdjusted(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        self._contract(d["contract_id"], db, rent_fen_per_mu_year=d["rent_fen_per_mu_year"])

    # -- rent --

    def _on_RentInvoiced(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            invoices.insert().values(
                invoice_id=d["invoice_id"],
                contract_id=d["contract_id"],
                village_id=d["village_id"],
                amount_fen=d["amount_fen"],
                paid_fen=0,
                due_on=_day(d["due_on"]),
                overdue=False,
            )
        )

    def _on_RentPaid(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            invoices.update()
            .where(invoices.c.invoice_id == d["invoice_id"])
            .values(paid_fen=invoices.c.paid_fen + d["amount_fen"])
        )

    def _on_RentOverdue(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            invoices.update().where(invoices.c.invoice_id == d["invoice_id"]).values(overdue=True)
        )

    # -- abandoned land --

    def _on_LandAbandonmentReported(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            abandoned.insert().values(
                case_id=d["case_id"],
                village_id=d["village_id"],
                parcel_id=d["parcel_id"],
                area_mu=d["area_mu"],
                reason=d["reason"],
                reported_on=_day(d["reported_on"]),
                status="reported",
            )
        )

    def _on_ReclamationAssigned(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            abandoned.update()
            .where(abandoned.c.case_id == d["case_id"])
            .values(status="assigned", mode=d["mode"], assignee_id=d["assignee_id"])
        )

    def _on_AbandonedLandReclaimed(self, d: dict[str, Any], db: Connection) -> None:  # noqa: N802
        db.execute(
            abandoned.update()
            .where(abandoned.c.case_id == d["case_id"])
            .values(status="reclaimed", reclaimed_on=_day(d["confirmed_on"]))
        )


LAND_VIEWS = LandViews()
