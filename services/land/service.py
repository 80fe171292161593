"""The land service: the rural property-rights exchange for land management rights.

Commands load the aggregates they touch in one unit of work; a listing or a contract always loads
its parcel too, so the parcel's stream version serialises everything that claims its area.
Time-driven facts (registration and auction closing, payment deadlines, rent invoices and
arrears) come from ``POST /api/v1/land/sweeps``, which is idempotent.

Configuration (nameko config keys, all optional): ``LAND_MIN_BIDDERS`` (3),
``LAND_PAYMENT_WORKING_DAYS`` (3), ``LAND_EXTENSION_MINUTES`` (5), ``LAND_CORPORATE_REVIEW_MU``
("50"), ``LAND_INVOICE_LEAD_DAYS`` (30), ``LAND_REVIEW_WORKING_DAYS`` (20: the corporate review
panel's deadline), ``LAND_FILING_DAYS`` (15: filing after signing), ``LAND_HOLIDAYS`` (ISO
dates that are not working days; weekends never are).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from nameko.dependency_providers import Config
from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Connection

from services.land import projections as views
from services.land import schemas as s
from services.land.domain import (
    AbandonmentCase,
    CorporateReview,
    Listing,
    Parcel,
    Rules,
    TransferContract,
    add_years,
)
from shared import auth, clock, directory
from shared.commands import CommandContext, UnitOfWork, decide_within
from shared.config import LOCAL_TZ
from shared.consumers import subscribe
from shared.directory import DIRECTORY, DirectoryMember
from shared.errors import DomainError, Forbidden, NotFound, Unprocessable
from shared.eventstore import EventStore, RecordedEvent
from shared.http import command, query
from shared.service import ServiceBase

STAFF = ["exchange_staff"]
LOCAL = ["exchange_staff", "village_cadre"]
READERS = sorted(auth.ROLES)


def parse_as_of(value: str) -> datetime:
    """An ISO date means the start of that day in Asia/Shanghai; a datetime must carry a zone."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), LOCAL_TZ)
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise Unprocessable(
            "as_of is not an ISO date or datetime", errors={"as_of": ["not ISO"]}
        ) from None
    if instant.tzinfo is None:
        raise Unprocessable("as_of needs a time zone", errors={"as_of": ["naive datetime"]})
    return instant


class LandService(DirectoryMember, ServiceBase):
    name = "land"
    projections = [DIRECTORY, views.LAND_VIEWS]
    config = Config()

    # -- helpers ------------------------------------------------------------------------------

    @property
    def rules(self) -> Rules:
        c = self.config
        return Rules(
            min_bidders=int(c.get("LAND_MIN_BIDDERS", 3)),
            payment_working_days=int(c.get("LAND_PAYMENT_WORKING_DAYS", 3)),
            extension_minutes=int(c.get("LAND_EXTENSION_MINUTES", 5)),
            corporate_review_mu=Decimal(str(c.get("LAND_CORPORATE_REVIEW_MU", "50"))),
            invoice_lead_days=int(c.get("LAND_INVOICE_LEAD_DAYS", 30)),
            review_working_days=int(c.get("LAND_REVIEW_WORKING_DAYS", 20)),
            filing_days=int(c.get("LAND_FILING_DAYS", 15)),
            holidays=frozenset(date.fromisoformat(d) for d in c.get("LAND_HOLIDAYS", ())),
        )

    def _scope(self, village_id: str, district: str | None = None) -> None:
        self.store.principal.require_scope(village=village_id, district=district)

    def _acting_as(self, party_id: str | None, field: str) -> None:
        """A household acts only for itself (its token's subject)."""
        principal = self.store.principal
        if principal.role == "household" and principal.subject != party_id:
            raise Forbidden(
                f"a household acts only for itself ({principal.subject!r})",
                errors={field: ["not the token's household"]},
            )

    def _parcel(self, uow: UnitOfWork, parcel_id: str, field: str = "parcel_id") -> Parcel:
        parcel = uow.find(Parcel, parcel_id)
        if parcel is None:
            raise DomainError(f"parcel {parcel_id!r} is not registered", field)
        self._scope(parcel.village_id, parcel.district)
        return parcel

    def _listing(self, uow: UnitOfWork, listing_id: str) -> tuple[Listing, Parcel]:
        listing = uow.get(Listing, listing_id)
        return listing, self._parcel(uow, listing.terms["parcel_id"])

    # -- parcels and entrustments ---------------------------------------------------------------

    @command(
        "POST", "/api/v1/land/parcels", body=s.ParcelIn, response=s.ParcelOut, roles=LOCAL,
        status=201,
    )  # fmt: skip
    def register_parcel(self, request: Any, body: dict[str, Any]) -> Any:
        """Register a parcel of contracted land in a village of the directory."""

        def decide(uow: UnitOfWork) -> Parcel:
            village = directory.require_village(uow.connection, body["village_id"])
            self._scope(village.village_id, village.district)
            parcel = uow.create(Parcel, body["id"])
            parcel.register(
                village_id=village.village_id,
                district=village.district,
                household_id=body["household_id"],
                co_contractors=body["co_contractors"],
                area_mu=body["area_mu"],
                land_class=body["land_class"],
                basic_farmland=body["basic_farmland"],
                contract_period_ends_on=body["contract_period_ends_on"],
                registered_on=clock.today(body["registered_on"]),
            )
            return parcel

        return self.store.run(decide)

    @query("/api/v1/land/parcels/<parcel_id>", response=s.ParcelOut, roles=READERS)
    def get_parcel(self, request: Any, parcel_id: str) -> Parcel:
        """A parcel with its entrustments and what holds its area."""
        return self.store.get(Parcel, parcel_id)

    @query(
        "/api/v1/land/parcels/<parcel_id>/availability",
        args=s.AvailabilityArgs,
        response=s.StretchOut,
        many=True,
        roles=READERS,
    )
    def parcel_availability(self, request: Any, parcel_id: str, args: dict[str, Any]) -> Any:
        """Committed and free area of a parcel over time, in stretches of equal availability."""
        if args["to_on"] < args["from_on"] or (args["to_on"] - args["from_on"]).days > 366 * 100:
            raise Unprocessable("to must follow from", errors={"to": ["before from"]})
        return self.store.get(Parcel, parcel_id).availability(args["from_on"], args["to_on"])

    @query("/api/v1/land/villages/<village_id>/parcels", roles=READERS)
    def village_parcels(self, request: Any, village_id: str) -> list[dict[str, Any]]:
        """The parcels registered in a village."""
        with self.store.events.engine.connect() as db:
            rows = db.execute(
                select(views.parcels)
                .where(views.parcels.c.village_id == village_id)
                .order_by(views.parcels.c.parcel_id)
            )
            return [
                {**row._mapping, "contract_period_ends_on": row.contract_period_ends_on.isoformat()}
                for row in rows
            ]

    @command(
        "POST", "/api/v1/land/parcels/<parcel_id>/entrustments", body=s.EntrustmentIn,
        response=s.ParcelOut, roles=["household", *LOCAL], status=201,
    )  # fmt: skip
    def grant_entrustment(self, request: Any, parcel_id: str, body: dict[str, Any]) -> Any:
        """Record a household's written entrustment to transfer its parcel."""
        self._acting_as(body["household_id"], "household_id")

        def decide(uow: UnitOfWork) -> Parcel:
            parcel = uow.get(Parcel, parcel_id)
            self._scope(parcel.village_id, parcel.district)
            body["entrustment_id"] = body.pop("id")
            body["granted_on"] = clock.today(body["granted_on"])
            parcel.grant_entrustment(**body)
            return parcel

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/land/parcels/<parcel_id>/entrustments/<entrustment_id>/revocations",
        body=s.RevocationIn, response=s.ParcelOut, roles=["household", *LOCAL], status=201,
    )  # fmt: skip
    def revoke_entrustment(
        self, request: Any, parcel_id: str, entrustment_id: str, body: dict[str, Any]
    ) -> Any:
        """Revoke an entrustment (not while a listing relies on it)."""

        def decide(uow: UnitOfWork) -> Parcel:
            parcel = uow.get(Parcel, parcel_id)
            self._scope(parcel.village_id, parcel.district)
            self._acting_as(parcel.household_id, "household_id")
            parcel.revoke_entrustment(entrustment_id, clock.today(body["revoked_on"]))
            return parcel

        return self.store.run(decide)

    # -- listings -----------------------------------------------------------------------------

    @command(
        "POST", "/api/v1/land/listings", body=s.ListingIn, response=s.ListingOut, roles=LOCAL,
        status=201,
    )  # fmt: skip
    def submit_listing(self, request: Any, body: dict[str, Any]) -> Any:
        """Apply to list (part of) a parcel for a term; its area is held from now on."""

        def decide(uow: UnitOfWork) -> Listing:
            parcel = self._parcel(uow, body["parcel_id"])
            listing = uow.create(Listing, body["id"])
            terms = {
                name: body[name]
                for name in (
                    "parcel_id", "area_mu", "starts_on", "ends_on", "land_use",
                    "reserve_fen_per_mu_year", "increment_fen_per_mu_year", "deposit_fen",
                    "entrustment_id",
                )
            }  # fmt: skip
            terms.update(
                village_id=parcel.village_id,
                district=parcel.district,
                renewal_priority=self._renewal_priority(uow, parcel, body["starts_on"]),
            )
            listing.submit(terms, clock.today(body["submitted_on"]), parcel)
            return listing

        return self.store.run(decide)

    @staticmethod
    def _renewal_priority(uow: UnitOfWork, parcel: Parcel, starts_on: date) -> list[str]:
        """Who has the right of renewal at equal terms on a new listing of the parcel: the
        transferee of a contract on it that ran its full term and ended within the year before
        the new term starts (a contract terminated early gives no such right)."""
        window = starts_on - timedelta(days=365)
        holders = set()
        for contract_id, held in parcel.commitments.items():
            if held.kind != "contract" or not window <= held.ends_on < starts_on:
                continue
            contract = uow.find(TransferContract, contract_id)
            if contract is not None and contract.status != "terminated":
                holders.add(contract.facts["transferee_id"])
        return sorted(holders)

    @query("/api/v1/land/listings/<listing_id>", response=s.ListingOut, roles=READERS)
    def get_listing(self, request: Any, listing_id: str) -> Listing:
        """A listing with its bidders, bids, current high bid and award."""
        return self.store.get(Listing, listing_id)

    @query("/api/v1/land/listings", args=s.ListingsArgs, roles=READERS)
    def list_listings(self, request: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Listings (by village and state) with their current high bid."""
        statement = select(views.listings).order_by(views.listings.c.listing_id)
        if args["village_id"]:
            statement = statement.where(views.listings.c.village_id == args["village_id"])
        if args["state"]:
            statement = statement.where(views.listings.c.state == args["state"])
        with self.store.events.engine.connect() as db:
            return [dict(row._mapping) for row in db.execute(statement)]

    def _listing_command(self, listing_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> Listing:
            listing, parcel = self._listing(uow, listing_id)
            act(listing, parcel)
            return listing

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/reviews", body=s.ReviewIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def review_listing(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Approve or reject a listing application."""
        return self._listing_command(
            listing_id,
            lambda listing, parcel: listing.review(
                body["approved"], body["opinion"], clock.today(body["reviewed_on"]), parcel
            ),
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/publications", body=s.WindowsIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def publish_listing(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Publish an approved listing with its registration and auction windows."""
        now = clock.now()
        return self._listing_command(listing_id, lambda listing, _: listing.publish(body, now))

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/amendments", body=s.AmendmentIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def amend_listing(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Amend a published listing's price, increment, deposit or windows before the auction."""
        reason = body.pop("reason")
        changes = {k: v for k, v in body.items() if v is not None}
        if not changes:
            raise Unprocessable("nothing to amend", errors={"_schema": ["no change given"]})
        now = clock.now()
        return self._listing_command(
            listing_id, lambda listing, parcel: listing.amend(changes, reason, now, parcel)
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/suspensions", body=s.ReasonIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def suspend_listing(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Suspend trading on a listing."""
        return self._listing_command(
            listing_id, lambda listing, _: listing.suspend(body["reason"], clock.today())
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/resumptions", body=s.WindowsIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def resume_listing(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Resume a suspended listing with new windows."""
        now = clock.now()
        return self._listing_command(listing_id, lambda listing, _: listing.resume(body, now))

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/terminations", body=s.ReasonIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def terminate_listing(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """End a listing without a deal; the parcel's area is free again."""
        return self._listing_command(
            listing_id,
            lambda listing, parcel: listing.terminate(body["reason"], clock.today(), parcel),
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/bidders", body=s.BidderIn,
        response=s.ListingOut, roles=["household", *STAFF], status=201,
    )  # fmt: skip
    def register_bidder(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Register an intention to take the land, during registration."""
        self._acting_as(body["bidder_id"], "bidder_id")
        now = clock.now()
        return self._listing_command(
            listing_id,
            lambda listing, _: listing.register_bidder(
                body["bidder_id"],
                body["bidder_type"],
                body["name"],
                now,
                body["member_of_village_id"],
            ),
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/bidders/<bidder_id>/deposits",
        body=s.DepositIn, response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def receive_deposit(
        self, request: Any, listing_id: str, bidder_id: str, body: dict[str, Any]
    ) -> Any:
        """Record a bidder's deposit; with it the bidder is qualified."""
        received_at = body["received_at"] or clock.now()
        return self._listing_command(
            listing_id,
            lambda listing, _: listing.receive_deposit(bidder_id, body["amount_fen"], received_at),
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/bids", body=s.BidIn, response=s.BidOut,
        roles=["household", *STAFF], status=201,
    )  # fmt: skip
    def place_bid(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Bid during the auction; bids on one listing are serialised by its stream."""
        self._acting_as(body["bidder_id"], "bidder_id")
        rules = self.rules

        def decide(uow: UnitOfWork) -> Any:
            listing = uow.get(Listing, listing_id)
            # The bid's time is when this attempt decides: a retried conflict re-reads the clock.
            return listing.place_bid(
                body["bidder_id"], body["amount_fen_per_mu_year"], clock.now(), rules
            )

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/negotiated-awards",
        body=s.NegotiatedAwardIn, response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def award_negotiated(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """Award a listing after public negotiation (too few bidders twice)."""
        rules = self.rules
        return self._listing_command(
            listing_id,
            lambda listing, _: listing.award_negotiated(
                body["bidder_id"],
                body["amount_fen_per_mu_year"],
                clock.today(body["awarded_on"]),
                rules,
            ),
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/winner-payments", body=s.WinnerPaymentIn,
        response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def winner_payment(self, request: Any, listing_id: str, body: dict[str, Any]) -> Any:
        """The winner paid the first year's price (within the working days allowed)."""
        return self._listing_command(
            listing_id,
            lambda listing, _: listing.record_winner_payment(
                body["amount_fen"], clock.today(body["paid_on"])
            ),
        )

    @command(
        "POST", "/api/v1/land/listings/<listing_id>/bidders/<bidder_id>/refunds",
        body=s.RefundIn, response=s.ListingOut, roles=STAFF, status=201,
    )  # fmt: skip
    def refund_deposit(
        self, request: Any, listing_id: str, bidder_id: str, body: dict[str, Any]
    ) -> Any:
        """Refund a bidder's deposit, once."""
        return self._listing_command(
            listing_id,
            lambda listing, _: listing.refund_deposit(bidder_id, clock.today(body["refunded_on"])),
        )

    # -- corporate review ---------------------------------------------------------------------

    @command(
        "POST", "/api/v1/land/corporate-reviews", body=s.CorporateReviewIn,
        response=s.CorporateReviewOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def submit_corporate_review(self, request: Any, body: dict[str, Any]) -> Any:
        """A company applies for review before taking land above the threshold."""

        def decide(uow: UnitOfWork) -> CorporateReview:
            village = directory.require_village(uow.connection, body["village_id"])
            self._scope(village.village_id, village.district)
            review = uow.create(CorporateReview, body.pop("id"))
            body["submitted_on"] = clock.today(body["submitted_on"])
            review.submit(**body)
            return review

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/land/corporate-reviews/<review_id>/decisions", body=s.DecisionIn,
        response=s.CorporateReviewOut, roles=["district_admin", *STAFF], status=201,
    )  # fmt: skip
    def decide_corporate_review(self, request: Any, review_id: str, body: dict[str, Any]) -> Any:
        """The review panel's decision, due within 20 working days of submission; a later one is
        still taken, and recorded as late."""
        rules = self.rules

        def decide(uow: UnitOfWork) -> CorporateReview:
            review = uow.get(CorporateReview, review_id)
            review.decide(body["approved"], body["opinion"], clock.today(body["decided_on"]), rules)
            return review

        return self.store.run(decide)

    # -- contracts ----------------------------------------------------------------------------

    @command(
        "POST", "/api/v1/land/contracts", body=s.ContractIn, response=s.ContractOut,
        roles=["household", *LOCAL], status=201,
    )  # fmt: skip
    def sign_contract(self, request: Any, body: dict[str, Any]) -> Any:
        """Sign a transfer contract from a paid award, or directly (household-signed or under an
        entrustment)."""
        rules = self.rules

        def decide(uow: UnitOfWork) -> TransferContract:
            signed_on = clock.today(body["signed_on"])
            if body["listing_id"]:
                listing, parcel = self._listing(uow, body["listing_id"])
                facts = self._facts_from_award(listing, body)
                listing.contract(body["id"], body["transferee_id"], signed_on)
                parcel.release(listing.id, listing.terms["starts_on"])
                entrustment_id = listing.terms["entrustment_id"]
            else:
                if body["parcel_id"] is None:
                    raise DomainError("a direct contract names its parcel", "parcel_id")
                parcel = self._parcel(uow, body["parcel_id"])
                facts = self._facts_direct(body)
                entrustment_id = body["entrustment_id"]
                if body["household_signed"]:
                    self._acting_as(parcel.household_id, "household_signed")
                    if parcel.household_id is None:
                        raise DomainError("collective land has no household", "household_signed")
                    entrustment_id = None
                elif self.store.principal.role == "household":
                    raise DomainError("a household signs with household_signed", "household_signed")
            self._check_corporate(uow, body, facts, parcel, rules)
            facts.update(
                parcel_id=parcel.id,
                village_id=parcel.village_id,
                district=parcel.district,
                household_id=parcel.household_id,
                household_shares=parcel.household_shares,
                transferee_id=body["transferee_id"],
                transferee_type=body["transferee_type"],
                mode=body["mode"],
                management_fee_bp=body["management_fee_bp"],
                corporate_review_id=body["corporate_review_id"],
                signed_on=signed_on,
            )
            contract = uow.create(TransferContract, body["id"])
            contract.sign(parcel, facts, entrustment_id, household_signed=body["household_signed"])
            return contract

        return self.store.run(decide)

    @staticmethod
    def _facts_from_award(listing: Listing, body: dict[str, Any]) -> dict[str, Any]:
        terms = listing.terms
        award = listing.award
        agreed = {
            "area_mu": terms["area_mu"],
            "starts_on": terms["starts_on"],
            "ends_on": terms["ends_on"],
            "land_use": terms["land_use"],
            "rent_fen_per_mu_year": award.amount if award else None,
        }
        for name, value in agreed.items():
            if body.get(name) is not None and body[name] != value:
                raise DomainError(f"the award says {value}", name)
        return {**agreed, "listing_id": listing.id}

    @staticmethod
    def _facts_direct(body: dict[str, Any]) -> dict[str, Any]:
        names = ("area_mu", "starts_on", "ends_on", "land_use", "rent_fen_per_mu_year")
        missing = [name for name in names if body.get(name) is None]
        if missing:
            raise Unprocessable(
                "a direct contract states its terms",
                errors={name: ["required for a direct contract"] for name in missing},
            )
        return {name: body[name] for name in names} | {"listing_id": None}

    def _check_corporate(
        self,
        uow: UnitOfWork,
        body: dict[str, Any],
        facts: dict[str, Any],
        parcel: Parcel,
        rules: Rules,
    ) -> None:
        if body["transferee_type"] != "company" or facts["area_mu"] <= rules.corporate_review_mu:
            return
        field = "corporate_review_id"
        if not body[field]:
            raise DomainError(
                f"a company taking more than {rules.corporate_review_mu} mu needs an approved "
                "review first",
                field,
            )
        review = uow.find(CorporateReview, body[field])
        if review is None:
            raise DomainError(f"no corporate review {body[field]!r}", field)
        # The review's stream serialises contracts drawing on it: its area is used up once.
        review.use_for(body["id"], body["transferee_id"], parcel.village_id, facts["area_mu"])

    @query("/api/v1/land/contracts/<contract_id>", response=s.ContractOut, roles=READERS)
    def get_contract(self, request: Any, contract_id: str) -> TransferContract:
        """A contract with its rent invoices."""
        return self.store.get(TransferContract, contract_id)

    @query("/api/v1/land/contracts", args=s.ContractsArgs, roles=READERS)
    def list_contracts(self, request: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Contracts of a village or of the villages in a cluster (on a day, default today);
        with ``on``, only contracts in force that day."""
        c = views.contracts.c
        on = args["on"]
        with self.store.events.engine.connect() as db:
            if args["cluster_id"]:
                villages = directory.members_of(db, args["cluster_id"], on or clock.today())
            else:
                villages = [args["village_id"]]
            statement = select(views.contracts).where(c.village_id.in_(villages))
            if on is not None:
                statement = statement.where(*self._in_force(on))
            rows = db.execute(statement.order_by(c.contract_id))
            return [_jsonable(row._mapping) for row in rows]

    @staticmethod
    def _in_force(on: date) -> list[Any]:
        c = views.contracts.c
        return [
            c.starts_on <= on,
            c.ends_on >= on,
            or_(c.terminated_on.is_(None), c.terminated_on > on),
        ]

    def _contract_command(self, contract_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> TransferContract:
            contract = uow.get(TransferContract, contract_id)
            parcel = self._parcel(uow, contract.parcel_id)
            act(contract, parcel)
            return contract

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/land/contracts/<contract_id>/filings", body=s.FilingIn,
        response=s.ContractOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def file_contract(self, request: Any, contract_id: str, body: dict[str, Any]) -> Any:
        """File (备案) a signed contract."""
        return self._contract_command(
            contract_id, lambda contract, *_: contract.file(clock.today(body["filed_on"]))
        )

    @command(
        "POST", "/api/v1/land/contracts/<contract_id>/certificates", body=s.CertificateIn,
        response=s.ContractOut, roles=STAFF, status=201,
    )  # fmt: skip
    def certify_contract(self, request: Any, contract_id: str, body: dict[str, Any]) -> Any:
        """Issue the exchange's trade certificate (鉴证) for a filed contract."""
        return self._contract_command(
            contract_id,
            lambda contract, *_: contract.certify(
                body["certificate_no"], clock.today(body["issued_on"])
            ),
        )

    @command(
        "POST", "/api/v1/land/contracts/<contract_id>/terminations", body=s.TerminationIn,
        response=s.ContractOut, roles=["household", *LOCAL], status=201,
    )  # fmt: skip
    def terminate_contract(self, request: Any, contract_id: str, body: dict[str, Any]) -> Any:
        """End a contract early for a legal reason; never while pledged to a bank."""

        def act(contract: TransferContract, parcel: Parcel) -> None:
            self._acting_as(parcel.household_id, "contract_id")
            terminated_on = clock.today(body["terminated_on"])
            if body["reason"] == "abandoned_two_years":
                self._require_abandonment(contract, terminated_on)
            contract.terminate(body["reason"], terminated_on, parcel)

        return self._contract_command(contract_id, act)

    def _require_abandonment(self, contract: TransferContract, terminated_on: date) -> None:
        """Abandonment for two consecutive years is shown by the abandoned-land ledger: an item
        for the contract's parcel, reported during the contract and at least two years before
        the termination, and not reclaimed since."""
        c = views.abandoned.c
        latest = add_years(terminated_on, -2)
        with self.store.events.engine.connect() as db:
            found = db.execute(
                select(c.case_id).where(
                    c.parcel_id == contract.parcel_id,
                    c.status != "reclaimed",
                    c.reported_on >= contract.facts["starts_on"],
                    c.reported_on <= latest,
                )
            ).first()
        if found is None:
            raise DomainError(
                "abandonment needs an open item of the abandoned-land ledger for this parcel, "
                f"reported during the contract and on or before {latest}",
                "reason",
            )

    @command(
        "POST", "/api/v1/land/contracts/<contract_id>/reassignments", body=s.ReassignmentIn,
        response=s.ContractOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def reassign_contract(self, request: Any, contract_id: str, body: dict[str, Any]) -> Any:
        """Re-transfer the right to a new transferee (household consent; not while pledged)."""
        return self._contract_command(
            contract_id,
            lambda contract, _: contract.reassign(
                body["transferee_id"],
                body["transferee_type"],
                body["household_consent"],
                clock.today(body["reassigned_on"]),
            ),
        )

    @command(
        "POST", "/api/v1/land/contracts/<contract_id>/rent-adjustments",
        body=s.RentAdjustmentIn, response=s.ContractOut, roles=STAFF, status=201,
    )  # fmt: skip
    def adjust_rent(self, request: Any, contract_id: str, body: dict[str, Any]) -> Any:
        """Re-set an indexed rent for the rent years from ``effective_on``."""
        return self._contract_command(
            contract_id,
            lambda contract, *_: contract.adjust_rent(
                body["rent_fen_per_mu_year"], body["index_name"], body["effective_on"]
            ),
        )

    @command(
        "POST", "/api/v1/land/contracts/<contract_id>/rent-payments", body=s.RentPaymentIn,
        response=s.ContractOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def pay_rent(self, request: Any, contract_id: str, body: dict[str, Any]) -> Any:
        """Record rent received; it is split to the collective's fee (3-party agreement) and the
        contracting households by their shares, adding up to the fen to what was received."""
        return self._contract_command(
            contract_id,
            lambda contract, *_: contract.pay_rent(
                body["invoice_id"], body["amount_fen"], clock.today(body["paid_on"])
            ),
        )

    @query("/api/v1/land/rent/invoices", args=s.InvoicesArgs, roles=READERS)
    def rent_invoices(self, request: Any, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Rent due (unpaid), overdue (flagged by a sweep and unpaid) or all invoices."""
        c = views.invoices.c
        statement = select(views.invoices).order_by(c.due_on, c.invoice_id)
        if args["village_id"]:
            statement = statement.where(c.village_id == args["village_id"])
        if args["contract_id"]:
            statement = statement.where(c.contract_id == args["contract_id"])
        if args["status"] != "all":
            statement = statement.where(c.paid_fen < c.amount_fen)
        if args["status"] == "overdue":
            statement = statement.where(c.overdue.is_(True))
        with self.store.events.engine.connect() as db:
            return [
                _jsonable({**row._mapping, "outstanding_fen": row.amount_fen - row.paid_fen})
                for row in db.execute(statement)
            ]

    @query("/api/v1/land/villages/<village_id>/transfer-rate", args=s.OnArgs, roles=READERS)
    def transfer_rate(self, request: Any, village_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """Area under contracts in force on a day over the village's contracted area."""
        on = args["on"] or clock.today()
        c = views.contracts.c
        with self.store.events.engine.connect() as db:
            village = directory.find_village(db, village_id)
            if village is None:
                raise NotFound(f"village {village_id!r} is not in the directory")
            areas = db.execute(
                select(c.area_mu).where(c.village_id == village_id, *self._in_force(on))
            ).scalars()
            transferred = sum((Decimal(a) for a in areas), Decimal("0"))
        contracted = village.contracted_area_mu
        rate = (transferred / contracted).quantize(Decimal("0.0001")) if contracted else None
        return {
            "village_id": village_id,
            "on": on.isoformat(),
            "transferred_mu": f"{transferred:.2f}",
            "contracted_mu": f"{contracted:.2f}",
            "transfer_rate": None if rate is None else str(rate),
        }

    # -- abandoned land -----------------------------------------------------------------------

    @command(
        "POST", "/api/v1/land/abandoned-land", body=s.AbandonmentIn,
        response=s.AbandonmentOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def report_abandonment(self, request: Any, body: dict[str, Any]) -> Any:
        """Enter abandoned land in the village's ledger."""

        def decide(uow: UnitOfWork) -> AbandonmentCase:
            village = directory.require_village(uow.connection, body["village_id"])
            self._scope(village.village_id, village.district)
            if body["parcel_id"] is not None:
                parcel = self._parcel(uow, body["parcel_id"])
                if parcel.village_id != village.village_id:
                    raise DomainError("the parcel is in another village", "parcel_id")
                if body["area_mu"] > parcel.area_mu:
                    raise DomainError(f"the parcel has {parcel.area_mu} mu", "area_mu")
            case = uow.create(AbandonmentCase, body.pop("id"))
            body["reported_on"] = clock.today(body["reported_on"])
            case.report(district=village.district, **body)
            return case

        return self.store.run(decide)

    def _case_command(self, case_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> AbandonmentCase:
            case = uow.get(AbandonmentCase, case_id)
            self._scope(case.village_id)
            act(case)
            return case

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/land/abandoned-land/<case_id>/assignments", body=s.AssignmentIn,
        response=s.AbandonmentOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def assign_reclamation(self, request: Any, case_id: str, body: dict[str, Any]) -> Any:
        """Assign the reclamation to a household, a large operator or the collective."""
        return self._case_command(
            case_id,
            lambda case: case.assign(
                body["mode"], body["assignee_id"], clock.today(body["assigned_on"])
            ),
        )

    @command(
        "POST", "/api/v1/land/abandoned-land/<case_id>/reclamations", body=s.ReclaimedIn,
        response=s.AbandonmentOut, roles=LOCAL, status=201,
    )  # fmt: skip
    def confirm_reclaimed(self, request: Any, case_id: str, body: dict[str, Any]) -> Any:
        """Confirm the land is farmed again: the ledger item is closed."""
        return self._case_command(
            case_id,
            lambda case: case.confirm_reclaimed(body["area_mu"], clock.today(body["confirmed_on"])),
        )

    @query("/api/v1/land/villages/<village_id>/abandoned-land", roles=READERS)
    def abandonment_ledger(self, request: Any, village_id: str) -> dict[str, Any]:
        """A village's abandoned-land ledger: every item and what is still open."""
        c = views.abandoned.c
        with self.store.events.engine.connect() as db:
            rows = [
                _jsonable(row._mapping)
                for row in db.execute(
                    select(views.abandoned)
                    .where(c.village_id == village_id)
                    .order_by(c.reported_on, c.case_id)
                )
            ]
        reported = sum((Decimal(r["area_mu"]) for r in rows), Decimal("0"))
        reclaimed = sum(
            (Decimal(r["area_mu"]) for r in rows if r["status"] == "reclaimed"), Decimal("0")
        )
        return {
            "village_id": village_id,
            "items": rows,
            "open_items": sum(1 for r in rows if r["status"] != "reclaimed"),
            "reported_mu": f"{reported:.2f}",
            "reclaimed_mu": f"{reclaimed:.2f}",
            "open_mu": f"{reported - reclaimed:.2f}",
        }

    # -- pledges from the finance service -----------------------------------------------------

    # A pledge is recorded on the contract's own stream, in the handler's inbox transaction and
    # with the commands' optimistic concurrency: a termination or re-transfer racing it loses
    # or wins on the contract's version (the loser is retried: a command re-decides and is
    # refused, the handler re-applies and finds the contract terminated). The handler was
    # renamed from ``on_pledge_event`` (which kept a side table): its fresh inbox makes the
    # catch-up replay finance's pledge history into the contracts' streams once.
    @subscribe("finance", ["LandRightPledged", "PledgeReleased"])
    def on_contract_pledge(self, event: RecordedEvent, db: Connection) -> None:
        d = event.data
        context = CommandContext(
            correlation_id=str(event.metadata.get("correlation_id") or event.event_id),
            causation_id=str(event.event_id),
            actor=f"finance:{event.type}",
            district=event.metadata.get("district"),
        )

        def decide(uow: UnitOfWork) -> None:
            contract = uow.find(TransferContract, d["contract_id"])
            if contract is None:
                # Finance pledges contracts it learnt from land: this one is not land's. Fail,
                # so that after its retries the event is parked for ops, never dropped.
                raise LookupError(f"pledge {d['pledge_id']}: no contract {d['contract_id']!r}")
            if event.type == "LandRightPledged":
                contract.record_pledge(
                    d["pledge_id"],
                    d["loan_id"],
                    d["bank_code"],
                    date.fromisoformat(d["pledged_on"]),
                    str(event.event_id),
                )
            else:
                contract.release_pledge(
                    d["pledge_id"], date.fromisoformat(d["released_on"]), str(event.event_id)
                )

        decide_within(self.store.events, EventStore.transaction_of(db), context, decide)

    @query("/api/v1/land/contracts/<contract_id>/pledge", roles=READERS)
    def contract_pledge(self, request: Any, contract_id: str) -> dict[str, Any]:
        """The bank pledge on a contract that has not been released, from the contract's stream."""
        pledge = self.store.get(TransferContract, contract_id).active_pledge
        return {
            "contract_id": contract_id,
            "pledge": None
            if pledge is None
            else {
                "pledge_id": pledge.pledge_id,
                "loan_id": pledge.loan_id,
                "bank_code": pledge.bank_code,
                "pledged_on": pledge.pledged_on.isoformat(),
            },
        }

    # -- time ---------------------------------------------------------------------------------

    @command("POST", "/api/v1/land/sweeps", body=s.SweepIn, roles=["ops", *STAFF])
    def sweep(self, request: Any, body: dict[str, Any]) -> dict[str, Any]:
        """Apply what the passing of time decides, as of an instant: registration and auctions
        closing, awards, forfeits after the payment deadline, corporate reviews not decided in
        time, contracts not filed in time, rent invoices and arrears. Each change is emitted
        once, however often this runs."""
        as_of = parse_as_of(body["as_of"])
        today = clock.local_day(as_of)
        rules = self.rules
        listing_ids, contract_ids = self._sweep_candidates(as_of, today, rules)
        review_ids = self._overdue_candidates(
            "review", today - timedelta(rules.review_working_days)
        )
        contract_ids = sorted(
            set(contract_ids)
            | set(self._overdue_candidates("filing", today - timedelta(rules.filing_days)))
        )
        emitted = 0
        for review_id in review_ids:

            def decide_review(uow: UnitOfWork, review_id: str = review_id) -> None:
                uow.get(CorporateReview, review_id).sweep(today, rules)

            emitted += len(self.store.run(decide_review).events)
        for listing_id in listing_ids:

            def decide_listing(uow: UnitOfWork, listing_id: str = listing_id) -> None:
                listing = uow.get(Listing, listing_id)
                parcel = uow.get(Parcel, listing.terms["parcel_id"])
                listing.sweep(as_of, rules, parcel)

            emitted += len(self.store.run(decide_listing).events)
        for contract_id in contract_ids:

            def decide_contract(uow: UnitOfWork, contract_id: str = contract_id) -> None:
                uow.get(TransferContract, contract_id).sweep(today, rules)

            emitted += len(self.store.run(decide_contract).events)
        return {
            "as_of": as_of.isoformat(),
            "listings": len(listing_ids),
            "contracts": len(contract_ids),
            "reviews": len(review_ids),
            "events": emitted,
        }

    def _overdue_candidates(self, kind: str, started_before: date) -> list[str]:
        """Open deadlines of a kind that started before a day (each working day is at least one
        calendar day, so this never misses one; the aggregate decides)."""
        c = views.deadlines.c
        with self.store.events.engine.connect() as db:
            return list(
                db.execute(
                    select(c.aggregate_id)
                    .where(c.kind == kind, c.open.is_(True), c.started_on < started_before)
                    .order_by(c.aggregate_id)
                ).scalars()
            )

    def _sweep_candidates(
        self, as_of: datetime, today: date, rules: Rules
    ) -> tuple[list[str], list[str]]:
        lc = views.listings.c
        cc = views.contracts.c
        ic = views.invoices.c
        with self.store.events.engine.connect() as db:
            listing_ids = db.execute(
                select(lc.listing_id)
                .where(lc.state.in_(("published", "bidding", "awarded")))
                .order_by(lc.listing_id)
            ).scalars()
            invoicing = select(cc.contract_id).where(
                cc.status != "terminated",
                cc.starts_on <= today + timedelta(days=rules.invoice_lead_days),
                cc.ends_on >= today - timedelta(days=366),
            )
            arrears = select(ic.contract_id).where(
                and_(ic.paid_fen < ic.amount_fen, ic.overdue.is_(False), ic.due_on < today)
            )
            contract_ids = db.execute(invoicing.union(arrears)).scalars()
            return list(listing_ids), sorted(set(contract_ids))


def _jsonable(row: Any) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in dict(row).items()}
