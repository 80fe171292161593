"""Land transfer aggregates: parcels (with their entrustments and commitments), listings and
their bidding, corporate reviews, transfer contracts with rent, and abandoned land.

No I/O and no clock here: the service passes ``today``/``now`` and the rules in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from services.land import events as ev
from shared.aggregate import Aggregate, applies
from shared.clock import local_day
from shared.errors import DomainError
from shared.money import allocate, percent_weights

ZERO = Decimal("0")
#: Land uses that would take permanent basic farmland out of crop production.
NOT_ON_BASIC_FARMLAND = frozenset({"orchard", "forestry", "aquaculture"})


@dataclass(frozen=True)
class Rules:
    """The exchange's configurable parameters (service config ``LAND_*``)."""

    min_bidders: int = 3
    payment_working_days: int = 3
    extension_minutes: int = 5
    corporate_review_mu: Decimal = Decimal("50")
    invoice_lead_days: int = 30
    #: The corporate review panel decides within this many working days of submission.
    review_working_days: int = 20
    #: A contract is filed (备案) within this many days of signing.
    filing_days: int = 15
    #: Public holidays that are not working days; weekends never are.
    holidays: frozenset[date] = frozenset()


def add_working_days(start: date, days: int, holidays: frozenset[date] = frozenset()) -> date:
    """The day ``days`` working days after ``start`` (weekends and listed holidays skipped)."""
    day = start
    left = days
    while left > 0:
        day += timedelta(days=1)
        if day.weekday() < 5 and day not in holidays:
            left -= 1
    return day


def fen(amount: Decimal) -> int:
    """Money rounded half up to the fen."""
    return int(amount.quantize(Decimal("1"), rounding=ROUND_HALF_UP))


def split_fen(total: int, weights: dict[str, Decimal]) -> dict[str, int]:
    """Split ``total`` fen by weight: floor each share, then give the leftover fen one by one to
    the largest remainders (ties: payee id order). The shares always add up to ``total``."""
    payees = sorted(weights)
    parts = allocate(total, percent_weights([weights[p] for p in payees]))
    by_payee = dict(zip(payees, parts, strict=True))
    return {payee: by_payee[payee] for payee in weights}


HUNDRED = Decimal(ev.WHOLE_PERCENT)


def check_co_contractors(household_id: str | None, co_contractors: list[dict[str, Any]]) -> None:
    """A household parcel's contracting households: each once, the representative
    (``household_id``) among them, shares positive and adding up to exactly 100 %."""
    field = "co_contractors"
    if household_id is None:
        if co_contractors:
            raise DomainError("collective land has no contracting households", field)
        return
    ids = [c["household_id"] for c in co_contractors]
    if len(set(ids)) != len(ids):
        raise DomainError("a household is listed twice", field)
    if household_id not in ids:
        raise DomainError(f"the representative {household_id!r} must be listed", field)
    if any(c["share_pct"] <= 0 for c in co_contractors):
        raise DomainError("every share must be positive", field)
    total = sum((c["share_pct"] for c in co_contractors), ZERO)
    if total != HUNDRED:
        raise DomainError(f"the shares add up to {total} %, not 100 %", field)


def household_weights(
    household_id: str | None, shares: list[dict[str, Any]] | None
) -> dict[str, Decimal]:
    """Who receives a parcel's rent, by share: the co-contractors, or (events from before
    co-contractors existed) the one household."""
    if shares:
        return {s["household_id"]: s["share_pct"] for s in shares}
    return {household_id: HUNDRED} if household_id else {}


def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _check_term(starts_on: date, ends_on: date) -> None:
    if ends_on < starts_on:
        raise DomainError("the term ends before it starts", "ends_on")


# -- parcels ----------------------------------------------------------------------------------


@dataclass
class Commitment:
    kind: str
    area_mu: Decimal
    starts_on: date
    ends_on: date
    entrustment_id: str | None

    def covers(self, day: date) -> bool:
        return self.starts_on <= day <= self.ends_on


@dataclass
class Entrustment:
    household_id: str
    agent: str
    area_mu: Decimal
    starts_on: date
    ends_on: date
    floor_fen_per_mu_year: int
    revoked: bool = False


class Parcel(Aggregate):
    """A parcel owns every claim on its area, so competing listings and contracts serialise on
    its stream: on no day may the committed area exceed the parcel's area."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.village_id = ""
        self.district = ""
        self.household_id: str | None = None
        #: Every contracting household and its share in percent (the representative included).
        self.co_contractors: dict[str, Decimal] = {}
        self.area_mu = ZERO
        self.land_class = ""
        self.basic_farmland = False
        self.contract_period_ends_on = date.min
        self.entrustments: dict[str, Entrustment] = {}
        self.commitments: dict[str, Commitment] = {}

    def register(self, co_contractors: list[dict[str, Any]] | None, **facts: Any) -> None:
        household_id = facts["household_id"]
        if co_contractors is None:
            co_contractors = (
                [{"household_id": household_id, "share_pct": HUNDRED}] if household_id else []
            )
        check_co_contractors(household_id, co_contractors)
        self.trigger(ev.ParcelRegistered, parcel_id=self.id, co_contractors=co_contractors, **facts)

    @property
    def household_shares(self) -> list[dict[str, Any]]:
        return [
            {"household_id": household, "share_pct": share}
            for household, share in self.co_contractors.items()
        ]

    # -- entrustments --

    def grant_entrustment(
        self,
        entrustment_id: str,
        household_id: str,
        agent: str,
        area_mu: Decimal,
        starts_on: date,
        ends_on: date,
        floor_fen_per_mu_year: int,
        granted_on: date,
    ) -> None:
        if self.household_id is None:
            raise DomainError("collective land needs no household entrustment", "parcel_id")
        if household_id != self.household_id:
            raise DomainError(
                f"only the contracting household {self.household_id!r} may entrust this parcel",
                "household_id",
            )
        if entrustment_id in self.entrustments:
            raise DomainError(f"entrustment {entrustment_id!r} exists", "id")
        if area_mu > self.area_mu:
            raise DomainError(f"the parcel has {self.area_mu} mu", "area_mu")
        _check_term(starts_on, ends_on)
        if ends_on > self.contract_period_ends_on:
            raise DomainError(
                f"the contract period ends on {self.contract_period_ends_on}", "ends_on"
            )
        self.trigger(
            ev.EntrustmentGranted,
            entrustment_id=entrustment_id,
            parcel_id=self.id,
            household_id=household_id,
            agent=agent,
            area_mu=area_mu,
            starts_on=starts_on,
            ends_on=ends_on,
            floor_fen_per_mu_year=floor_fen_per_mu_year,
            granted_on=granted_on,
        )

    def revoke_entrustment(self, entrustment_id: str, revoked_on: date) -> None:
        entrustment = self.entrustments.get(entrustment_id)
        if entrustment is None:
            raise DomainError(f"no entrustment {entrustment_id!r}", "entrustment_id")
        if entrustment.revoked:
            raise DomainError("the entrustment is already revoked", "entrustment_id")
        listed = [
            cid
            for cid, c in self.commitments.items()
            if c.entrustment_id == entrustment_id and c.kind == "listing"
        ]
        if listed:
            raise DomainError(
                f"listing {listed[0]!r} relies on it; terminate the listing first",
                "entrustment_id",
            )
        self.trigger(
            ev.EntrustmentRevoked,
            entrustment_id=entrustment_id,
            parcel_id=self.id,
            revoked_on=revoked_on,
        )

    def require_entrustment(
        self,
        entrustment_id: str | None,
        area_mu: Decimal,
        starts_on: date,
        ends_on: date,
        price_fen_per_mu_year: int,
        exclude: str | None = None,
    ) -> None:
        """A household's land is transferred by others only within a valid written entrustment
        (``exclude``: the listing being amended, which already counts against it)."""
        if self.household_id is None:
            return
        if entrustment_id is None:
            raise DomainError(
                "the household's written entrustment is required for its parcel", "entrustment_id"
            )
        entrustment = self.entrustments.get(entrustment_id)
        if entrustment is None or entrustment.revoked:
            raise DomainError(
                f"entrustment {entrustment_id!r} is not in force for this parcel", "entrustment_id"
            )
        used = self.peak_committed(starts_on, ends_on, exclude, under=entrustment_id)
        if used + area_mu > entrustment.area_mu:
            raise DomainError(
                f"the entrustment covers {entrustment.area_mu} mu, {used} of them in use already",
                "area_mu",
            )
        if starts_on < entrustment.starts_on or ends_on > entrustment.ends_on:
            raise DomainError(
                f"the entrustment covers {entrustment.starts_on}..{entrustment.ends_on}", "ends_on"
            )
        if price_fen_per_mu_year < entrustment.floor_fen_per_mu_year:
            raise DomainError(
                f"below the entrustment's floor of {entrustment.floor_fen_per_mu_year} fen/mu/year",
                "reserve_fen_per_mu_year",
            )

    # -- commitments --

    def committed_on(
        self, day: date, exclude: str | None = None, under: str | None = None
    ) -> Decimal:
        """Area held on a day (only what an entrustment backs, with ``under``)."""
        return sum(
            (
                c.area_mu
                for cid, c in self.commitments.items()
                if cid != exclude and c.covers(day) and (under is None or c.entrustment_id == under)
            ),
            ZERO,
        )

    def peak_committed(
        self, starts_on: date, ends_on: date, exclude: str | None = None, under: str | None = None
    ) -> Decimal:
        """The most area committed on any day of the period (it changes only where one starts)."""
        days = {starts_on} | {
            c.starts_on for c in self.commitments.values() if starts_on <= c.starts_on <= ends_on
        }
        return max(self.committed_on(day, exclude, under) for day in days)

    def check_transferable(self, area_mu: Decimal, starts_on: date, ends_on: date, land_use: str):
        _check_term(starts_on, ends_on)
        if area_mu <= 0:
            raise DomainError("the area must be positive", "area_mu")
        if ends_on > self.contract_period_ends_on:
            raise DomainError(
                f"the term may not run past the contract period ({self.contract_period_ends_on})",
                "ends_on",
            )
        if self.basic_farmland and land_use in NOT_ON_BASIC_FARMLAND:
            raise DomainError(
                f"permanent basic farmland may not be used for {land_use}", "land_use"
            )

    def commit(
        self,
        commitment_id: str,
        kind: str,
        area_mu: Decimal,
        starts_on: date,
        ends_on: date,
        entrustment_id: str | None,
        exclude: str | None = None,
    ) -> None:
        if commitment_id in self.commitments:
            raise DomainError(f"{commitment_id!r} already holds this parcel", "id")
        free = self.area_mu - self.peak_committed(starts_on, ends_on, exclude)
        if area_mu > free:
            raise DomainError(
                f"only {free} of {self.area_mu} mu are free on every day of "
                f"{starts_on}..{ends_on} (listed or transferred already)",
                "area_mu",
            )
        self.trigger(
            ev.ParcelAreaCommitted,
            parcel_id=self.id,
            commitment_id=commitment_id,
            kind=kind,
            area_mu=area_mu,
            starts_on=starts_on,
            ends_on=ends_on,
            entrustment_id=entrustment_id,
        )

    def release(self, commitment_id: str, released_from: date) -> None:
        if commitment_id in self.commitments:
            self.trigger(
                ev.ParcelAreaReleased,
                parcel_id=self.id,
                commitment_id=commitment_id,
                released_from=released_from,
            )

    def availability(self, from_on: date, to_on: date) -> list[dict[str, Any]]:
        """Committed and free area per stretch of days where it does not change."""
        edges = {from_on, to_on + timedelta(days=1)}
        for c in self.commitments.values():
            for edge in (c.starts_on, c.ends_on + timedelta(days=1)):
                if from_on < edge <= to_on:
                    edges.add(edge)
        bounds = sorted(edges)
        stretches = []
        for start, after in zip(bounds, bounds[1:], strict=False):
            committed = self.committed_on(start)
            stretches.append(
                {
                    "from_on": start,
                    "to_on": after - timedelta(days=1),
                    "committed_mu": committed,
                    "available_mu": self.area_mu - committed,
                }
            )
        return stretches

    @applies(ev.ParcelRegistered)
    def _registered(self, data: dict[str, Any]) -> None:
        self.village_id = data["village_id"]
        self.district = data["district"]
        self.household_id = data["household_id"]
        self.co_contractors = household_weights(data["household_id"], data["co_contractors"])
        self.area_mu = data["area_mu"]
        self.land_class = data["land_class"]
        self.basic_farmland = data["basic_farmland"]
        self.contract_period_ends_on = data["contract_period_ends_on"]

    @applies(ev.EntrustmentGranted)
    def _entrusted(self, data: dict[str, Any]) -> None:
        self.entrustments[data["entrustment_id"]] = Entrustment(
            data["household_id"],
            data["agent"],
            data["area_mu"],
            data["starts_on"],
            data["ends_on"],
            data["floor_fen_per_mu_year"],
        )

    @applies(ev.EntrustmentRevoked)
    def _revoked(self, data: dict[str, Any]) -> None:
        self.entrustments[data["entrustment_id"]].revoked = True

    @applies(ev.ParcelAreaCommitted)
    def _committed(self, data: dict[str, Any]) -> None:
        self.commitments[data["commitment_id"]] = Commitment(
            data["kind"],
            data["area_mu"],
            data["starts_on"],
            data["ends_on"],
            data["entrustment_id"],
        )

    @applies(ev.ParcelAreaReleased)
    def _released(self, data: dict[str, Any]) -> None:
        commitment = self.commitments[data["commitment_id"]]
        last_day = data["released_from"] - timedelta(days=1)
        if last_day < commitment.starts_on:
            del self.commitments[data["commitment_id"]]
        else:
            commitment.ends_on = min(commitment.ends_on, last_day)


# -- listings ---------------------------------------------------------------------------------


@dataclass
class Bidder:
    bidder_type: str
    name: str
    member_of_village_id: str | None = None
    deposit_fen: int = 0
    #: none, held, refunded or forfeited
    deposit: str = "none"
    disqualified: bool = False

    @property
    def qualified(self) -> bool:
        return self.deposit == "held" and not self.disqualified


@dataclass
class Bid:
    bid_id: str
    bidder_id: str
    amount: int
    placed_at: datetime
    priority: str | None = None


@dataclass
class Award:
    bidder_id: str
    bid_id: str | None
    amount: int
    awarded_on: date
    payment_due_on: date
    paid: bool = False


OPEN_FOR_REGISTRATION = "published"
BIDDING_OVER = frozenset({"awarded", "paid", "contracted", "failed", "terminated"})
HOLDS_PARCEL = frozenset(
    {"submitted", "approved", "published", "suspended", "bidding", "negotiating", "awarded", "paid"}
)


class Listing(Aggregate):
    """A listing (挂牌) from application to award; bids serialise on its stream.

    A winner who does not pay within the configured working days forfeits the deposit, and the
    listing reopens: it goes back to "approved" and the exchange announces it again (new
    windows, possibly amended terms), as a fresh pair of announcements. The other bidders' deposits
    still held are refunded with the reopening, once, and their registrations end with the old
    announcement: whoever wants the land registers and pays a deposit again for the new one. A
    re-announcement may come weeks later and on other terms, so no bidder's money is held for
    it, and nobody is entered into an auction they did not sign up for. The defaulting winner is
    barred from the listing: it may not register, deposit or bid on it again.

    Equal terms: a bid must raise the high bid by an increment, except that a bidder with a
    stronger priority right may match it at the same price and so takes the lead. The rights, in
    order: the previous transferee, whose contract on the parcel ran its full term and ended
    within the year before this term starts (renewal on equal terms), then a member of the
    parcel's own collective (as the exchange checked at registration), then everyone else. A
    matched bid can be raised by anyone, and then matched again; equal rights never match each
    other, so among them the earlier bid wins the tie.
    """

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.state = "new"
        self.terms: dict[str, Any] = {}
        self.windows: dict[str, datetime] = {}
        self.round = 0
        self.published_at: datetime | None = None
        self.suspended_from = ""
        self.bidders: dict[str, Bidder] = {}
        #: Bidders who forfeited a deposit on this listing: they may not take part again.
        self.barred: set[str] = set()
        #: The round before the current cycle of announcements (reopening starts a new cycle).
        self.cycle_started_after = 0
        self.bids: list[Bid] = []
        self.award: Award | None = None
        self.contract_id: str | None = None

    # -- convenience --

    @property
    def high_bid(self) -> Bid | None:
        # Every accepted bid beats the one before by an increment, or equals it by a stronger
        # priority right: the last is the one that wins. An equal later offer without such a
        # right was never accepted, so otherwise the earlier bid wins ties.
        return self.bids[-1] if self.bids else None

    def priority_of(self, bidder_id: str) -> tuple[int, str | None]:
        """A bidder's priority at equal terms: the previous transferee of the parcel (renewal)
        before a member of the parcel's own collective, before everyone else."""
        if bidder_id in self.terms.get("renewal_priority", ()):
            return 2, "renewal"
        bidder = self.bidders.get(bidder_id)
        if bidder is not None and bidder.member_of_village_id == self.terms["village_id"]:
            return 1, "collective_member"
        return 0, None

    def _require(self, *states: str, field: str = "listing_id") -> None:
        if self.state not in states:
            raise DomainError(
                f"the listing is {self.state}; this needs it {' or '.join(states)}", field
            )

    # -- application and review --

    def submit(self, terms: dict[str, Any], submitted_on: date, parcel: Parcel) -> None:
        if terms["increment_fen_per_mu_year"] <= 0:
            raise DomainError("the increment must be positive", "increment_fen_per_mu_year")
        parcel.check_transferable(
            terms["area_mu"], terms["starts_on"], terms["ends_on"], terms["land_use"]
        )
        parcel.require_entrustment(
            terms["entrustment_id"],
            terms["area_mu"],
            terms["starts_on"],
            terms["ends_on"],
            terms["reserve_fen_per_mu_year"],
        )
        parcel.commit(
            self.id,
            "listing",
            terms["area_mu"],
            terms["starts_on"],
            terms["ends_on"],
            terms["entrustment_id"],
        )
        self.trigger(
            ev.ListingSubmitted, listing_id=self.id, terms=terms, submitted_on=submitted_on
        )

    def review(self, approved: bool, opinion: str, reviewed_on: date, parcel: Parcel) -> None:
        self._require("submitted")
        event = ev.ListingApproved if approved else ev.ListingRejected
        self.trigger(event, listing_id=self.id, opinion=opinion, reviewed_on=reviewed_on)
        if not approved:
            parcel.release(self.id, self.terms["starts_on"])

    @staticmethod
    def _check_windows(windows: dict[str, datetime], now: datetime) -> None:
        closes = windows["registration_closes_at"]
        if closes <= now:
            raise DomainError("registration must close in the future", "registration_closes_at")
        if windows["auction_starts_at"] < closes:
            raise DomainError("the auction starts after registration closes", "auction_starts_at")
        if windows["auction_ends_at"] <= windows["auction_starts_at"]:
            raise DomainError("the auction must end after it starts", "auction_ends_at")

    def publish(self, windows: dict[str, datetime], now: datetime) -> None:
        self._require("approved")
        self._check_windows(windows, now)
        t = self.terms
        self.trigger(
            ev.LandListed,
            listing_id=self.id,
            parcel_id=t["parcel_id"],
            village_id=t["village_id"],
            district=t["district"],
            area_mu=t["area_mu"],
            reserve_fen_per_mu_year=t["reserve_fen_per_mu_year"],
            windows=windows,
            round=self.round + 1,
            published_at=now,
        )

    def amend(self, changes: dict[str, Any], reason: str, now: datetime, parcel: Parcel) -> None:
        self._require("published", "approved")
        if changes.get("reserve_fen_per_mu_year") is not None:
            t = self.terms
            parcel.require_entrustment(
                t["entrustment_id"],
                t["area_mu"],
                t["starts_on"],
                t["ends_on"],
                changes["reserve_fen_per_mu_year"],
                exclude=self.id,
            )
        increment = changes.get("increment_fen_per_mu_year")
        if increment is not None and increment <= 0:
            raise DomainError("the increment must be positive", "increment_fen_per_mu_year")
        if changes.get("windows") is not None:
            self._check_windows(changes["windows"], now)
        self.trigger(
            ev.ListingAmended,
            listing_id=self.id,
            reason=reason,
            amended_on=local_day(now),
            **changes,
        )

    def suspend(self, reason: str, today: date) -> None:
        self._require("published", "bidding", "negotiating")
        self.trigger(ev.ListingSuspended, listing_id=self.id, reason=reason, suspended_on=today)

    def resume(self, windows: dict[str, datetime], now: datetime) -> None:
        self._require("suspended")
        if self.suspended_from == "published":
            self._check_windows(windows, now)
        elif windows["auction_ends_at"] <= now:
            raise DomainError("the auction must end in the future", "auction_ends_at")
        self.trigger(
            ev.ListingResumed, listing_id=self.id, windows=windows, resumed_on=local_day(now)
        )

    def terminate(self, reason: str, today: date, parcel: Parcel) -> None:
        self._require(
            "submitted", "approved", "published", "suspended", "bidding", "negotiating", "awarded"
        )
        self.trigger(ev.ListingTerminated, listing_id=self.id, reason=reason, terminated_on=today)
        parcel.release(self.id, self.terms["starts_on"])

    # -- registration --

    def register_bidder(
        self,
        bidder_id: str,
        bidder_type: str,
        name: str,
        now: datetime,
        member_of_village_id: str | None = None,
    ) -> None:
        self._require(OPEN_FOR_REGISTRATION)
        if now >= self.windows["registration_closes_at"]:
            raise DomainError("registration has closed", "listing_id")
        if bidder_id in self.barred:
            raise DomainError(
                f"{bidder_id!r} forfeited its deposit on this listing and may not take part again",
                "bidder_id",
            )
        if bidder_id in self.bidders:
            raise DomainError(f"{bidder_id!r} is already registered", "bidder_id")
        self.trigger(
            ev.BidderRegistered,
            listing_id=self.id,
            bidder_id=bidder_id,
            bidder_type=bidder_type,
            name=name,
            member_of_village_id=member_of_village_id,
            registered_at=now,
        )

    def receive_deposit(self, bidder_id: str, amount_fen: int, received_at: datetime) -> None:
        self._require(OPEN_FOR_REGISTRATION)
        bidder = self._bidder(bidder_id)
        if received_at >= self.windows["registration_closes_at"]:
            raise DomainError("the deposit arrived after registration closed", "received_at")
        if bidder.deposit != "none":
            raise DomainError(f"the deposit is already {bidder.deposit}", "bidder_id")
        if amount_fen < self.terms["deposit_fen"]:
            raise DomainError(f"the deposit is {self.terms['deposit_fen']} fen", "amount_fen")
        self.trigger(
            ev.DepositReceived,
            listing_id=self.id,
            bidder_id=bidder_id,
            amount_fen=amount_fen,
            received_at=received_at,
        )

    def _bidder(self, bidder_id: str) -> Bidder:
        bidder = self.bidders.get(bidder_id)
        if bidder is None:
            raise DomainError(f"{bidder_id!r} has not registered for this listing", "bidder_id")
        return bidder

    # -- bidding --

    def place_bid(self, bidder_id: str, amount: int, now: datetime, rules: Rules) -> Bid:
        self._require("bidding")
        if now < self.windows["auction_starts_at"]:
            raise DomainError("the auction has not started", "listing_id")
        if now >= self.windows["auction_ends_at"]:
            raise DomainError("the auction has closed", "listing_id")
        bidder = self._bidder(bidder_id)
        if not bidder.qualified:
            raise DomainError("only qualified bidders with a deposit may bid", "bidder_id")
        reserve = self.terms["reserve_fen_per_mu_year"]
        step = self.terms["increment_fen_per_mu_year"]
        field = "amount_fen_per_mu_year"
        if amount < reserve:
            raise DomainError(f"below the reserve of {reserve} fen/mu/year", field)
        if (amount - reserve) % step:
            raise DomainError(f"bids go up from {reserve} in steps of {step}", field)
        high = self.high_bid
        priority = None
        if high is not None and amount == high.amount:
            # Equal terms: a bidder with a stronger priority right may match the high bid and
            # takes the lead with it; everyone else must raise it.
            rank, priority = self.priority_of(bidder_id)
            if rank <= self.priority_of(high.bidder_id)[0]:
                raise DomainError(
                    f"the high bid is {high.amount}; bid at least {high.amount + step} (only "
                    "the previous transferee or a member of the parcel's collective, over a "
                    "bidder without that right, may match it)",
                    field,
                )
        elif high is not None and amount < high.amount + step:
            raise DomainError(
                f"the high bid is {high.amount}; bid at least {high.amount + step}", field
            )
        bid_id = f"R{self.round}-B{len(self.bids) + 1}"
        self.trigger(
            ev.TransferBidPlaced,
            listing_id=self.id,
            bid_id=bid_id,
            bidder_id=bidder_id,
            amount_fen_per_mu_year=amount,
            placed_at=now,
            priority=priority,
        )
        extension = timedelta(minutes=rules.extension_minutes)
        if self.windows["auction_ends_at"] - now <= extension:
            self.trigger(
                ev.BiddingExtended,
                listing_id=self.id,
                bid_id=bid_id,
                auction_ends_at=now + extension,
            )
        return self.bids[-1]

    # -- time: what the sweep decides --

    def sweep(self, now: datetime, rules: Rules, parcel: Parcel) -> None:
        """Every state change the passing of time causes, each once."""
        today = local_day(now)
        if self.state == "published" and now >= self.windows["registration_closes_at"]:
            self._close_registration(now, rules, parcel)
        if self.state == "bidding" and now >= self.windows["auction_ends_at"]:
            self._close_auction(today, rules, parcel)
        if self.state == "awarded" and self.award and today > self.award.payment_due_on:
            winner = self.bidders[self.award.bidder_id]
            self.trigger(
                ev.DepositForfeited,
                listing_id=self.id,
                bidder_id=self.award.bidder_id,
                amount_fen=winner.deposit_fen,
                forfeited_on=today,
            )
            # The old announcement is over: what the other bidders still hold goes back now.
            for bidder_id, bidder in sorted(self.bidders.items()):
                if bidder.deposit == "held":
                    self.trigger(
                        ev.DepositRefunded,
                        listing_id=self.id,
                        bidder_id=bidder_id,
                        amount_fen=bidder.deposit_fen,
                        refunded_on=today,
                    )
            self.trigger(ev.ListingReopened, listing_id=self.id, reopened_on=today)

    def _close_registration(self, now: datetime, rules: Rules, parcel: Parcel) -> None:
        qualified = sum(1 for b in self.bidders.values() if b.qualified)
        if qualified >= rules.min_bidders:
            outcome = "auction"
        elif self.round - self.cycle_started_after < 2:
            outcome = "reannounce"
        elif qualified:
            outcome = "negotiate"
        else:
            outcome = "failed"
        self.trigger(
            ev.RegistrationClosed,
            listing_id=self.id,
            qualified_bidders=qualified,
            outcome=outcome,
            closed_at=now,
        )
        if outcome == "reannounce":
            span = self.windows["registration_closes_at"] - (self.published_at or now)
            shift = now + max(span, timedelta(days=1)) - self.windows["registration_closes_at"]
            windows = {name: at + shift for name, at in self.windows.items()}
            self.trigger(
                ev.ListingReannounced, listing_id=self.id, windows=windows, round=self.round + 1
            )
        elif outcome == "failed":
            self._fail("no qualified bidder after the second announcement", local_day(now), parcel)

    def _close_auction(self, today: date, rules: Rules, parcel: Parcel) -> None:
        high = self.high_bid
        if high is None:
            self._fail("no valid bid in the auction", today, parcel)
            return
        self._award(high.bidder_id, high.bid_id, high.amount, "auction", today, rules)

    def _award(
        self,
        bidder_id: str,
        bid_id: str | None,
        amount: int,
        method: str,
        today: date,
        rules: Rules,
    ) -> None:
        self.trigger(
            ev.ListingAwarded,
            listing_id=self.id,
            parcel_id=self.terms["parcel_id"],
            village_id=self.terms["village_id"],
            bidder_id=bidder_id,
            bid_id=bid_id,
            amount_fen_per_mu_year=amount,
            method=method,
            awarded_on=today,
            payment_due_on=add_working_days(today, rules.payment_working_days, rules.holidays),
        )

    def _fail(self, reason: str, today: date, parcel: Parcel) -> None:
        self.trigger(
            ev.ListingFailed,
            listing_id=self.id,
            parcel_id=self.terms["parcel_id"],
            reason=reason,
            failed_on=today,
        )
        parcel.release(self.id, self.terms["starts_on"])

    # -- after the auction --

    def award_negotiated(self, bidder_id: str, amount: int, today: date, rules: Rules) -> None:
        self._require("negotiating")
        if not self._bidder(bidder_id).qualified:
            raise DomainError("only qualified bidders with a deposit may be awarded", "bidder_id")
        reserve = self.terms["reserve_fen_per_mu_year"]
        if amount < reserve:
            raise DomainError(
                f"below the reserve of {reserve} fen/mu/year", "amount_fen_per_mu_year"
            )
        self._award(bidder_id, None, amount, "negotiation", today, rules)

    @property
    def annual_price_fen(self) -> int:
        assert self.award is not None
        return fen(self.award.amount * self.terms["area_mu"])

    def record_winner_payment(self, amount_fen: int, paid_on: date) -> None:
        self._require("awarded")
        assert self.award is not None
        if paid_on > self.award.payment_due_on:
            raise DomainError(f"payment was due by {self.award.payment_due_on}", "paid_on")
        if amount_fen != self.annual_price_fen:
            raise DomainError(
                f"the first year's price is {self.annual_price_fen} fen", "amount_fen"
            )
        self.trigger(
            ev.WinnerPaid,
            listing_id=self.id,
            bidder_id=self.award.bidder_id,
            amount_fen=amount_fen,
            paid_on=paid_on,
        )

    def refund_deposit(self, bidder_id: str, today: date) -> None:
        bidder = self._bidder(bidder_id)
        if bidder.deposit != "held":
            raise DomainError(f"no deposit to refund: it is {bidder.deposit}", "bidder_id")
        if self.state not in BIDDING_OVER and not bidder.disqualified:
            raise DomainError("deposits are refunded once the listing is decided", "listing_id")
        if self.award and bidder_id == self.award.bidder_id and self.state in ("awarded", "paid"):
            raise DomainError("the winner's deposit is held until the contract", "bidder_id")
        self.trigger(
            ev.DepositRefunded,
            listing_id=self.id,
            bidder_id=bidder_id,
            amount_fen=bidder.deposit_fen,
            refunded_on=today,
        )

    def contract(self, contract_id: str, transferee_id: str, signed_on: date) -> None:
        self._require("paid", field="listing_id")
        assert self.award is not None
        if transferee_id != self.award.bidder_id:
            raise DomainError(
                f"the listing was awarded to {self.award.bidder_id!r}", "transferee_id"
            )
        self.trigger(
            ev.ListingContracted, listing_id=self.id, contract_id=contract_id, signed_on=signed_on
        )

    # -- applying --

    @applies(ev.ListingSubmitted)
    def _submitted(self, data: dict[str, Any]) -> None:
        self.terms = dict(data["terms"])
        self.state = "submitted"

    @applies(ev.ListingApproved)
    def _approved(self, data: dict[str, Any]) -> None:
        self.state = "approved"

    @applies(ev.ListingRejected)
    def _rejected(self, data: dict[str, Any]) -> None:
        self.state = "rejected"

    @applies(ev.LandListed)
    def _listed(self, data: dict[str, Any]) -> None:
        self.state = "published"
        self.windows = dict(data["windows"])
        self.round = data["round"]
        self.published_at = data["published_at"]

    @applies(ev.ListingAmended)
    def _amended(self, data: dict[str, Any]) -> None:
        for name in ("reserve_fen_per_mu_year", "increment_fen_per_mu_year", "deposit_fen"):
            if data.get(name) is not None:
                self.terms[name] = data[name]
        if data.get("windows") is not None:
            self.windows = dict(data["windows"])

    @applies(ev.ListingSuspended)
    def _suspended(self, data: dict[str, Any]) -> None:
        self.suspended_from, self.state = self.state, "suspended"

    @applies(ev.ListingResumed)
    def _resumed(self, data: dict[str, Any]) -> None:
        self.state = self.suspended_from
        self.windows = dict(data["windows"])

    @applies(ev.ListingTerminated)
    def _terminated(self, data: dict[str, Any]) -> None:
        self.state = "terminated"

    @applies(ev.BidderRegistered)
    def _bidder_registered(self, data: dict[str, Any]) -> None:
        self.bidders[data["bidder_id"]] = Bidder(
            data["bidder_type"], data["name"], data.get("member_of_village_id")
        )

    @applies(ev.DepositReceived)
    def _deposit(self, data: dict[str, Any]) -> None:
        bidder = self.bidders[data["bidder_id"]]
        bidder.deposit, bidder.deposit_fen = "held", data["amount_fen"]

    @applies(ev.RegistrationClosed)
    def _registration_closed(self, data: dict[str, Any]) -> None:
        self.state = {"auction": "bidding", "negotiate": "negotiating"}.get(
            data["outcome"], self.state
        )

    @applies(ev.ListingReannounced)
    def _reannounced(self, data: dict[str, Any]) -> None:
        self.windows = dict(data["windows"])
        self.round = data["round"]
        self.state = "published"

    @applies(ev.TransferBidPlaced)
    def _bid(self, data: dict[str, Any]) -> None:
        self.bids.append(
            Bid(
                data["bid_id"],
                data["bidder_id"],
                data["amount_fen_per_mu_year"],
                data["placed_at"],
                data.get("priority"),
            )
        )

    @applies(ev.BiddingExtended)
    def _extended(self, data: dict[str, Any]) -> None:
        self.windows["auction_ends_at"] = data["auction_ends_at"]

    @applies(ev.ListingAwarded)
    def _awarded(self, data: dict[str, Any]) -> None:
        self.state = "awarded"
        self.award = Award(
            data["bidder_id"],
            data["bid_id"],
            data["amount_fen_per_mu_year"],
            data["awarded_on"],
            data["payment_due_on"],
        )

    @applies(ev.ListingFailed)
    def _failed(self, data: dict[str, Any]) -> None:
        self.state = "failed"

    @applies(ev.WinnerPaid)
    def _paid(self, data: dict[str, Any]) -> None:
        self.state = "paid"
        assert self.award is not None
        self.award.paid = True

    @applies(ev.DepositForfeited)
    def _forfeited(self, data: dict[str, Any]) -> None:
        bidder = self.bidders[data["bidder_id"]]
        bidder.deposit, bidder.disqualified = "forfeited", True

    @applies(ev.ListingReopened)
    def _reopened(self, data: dict[str, Any]) -> None:
        self.state = "approved"
        self.award = None
        self.bids = []
        self.barred |= {b for b, bidder in self.bidders.items() if bidder.deposit == "forfeited"}
        self.bidders = {}
        self.cycle_started_after = self.round

    @applies(ev.DepositRefunded)
    def _refunded(self, data: dict[str, Any]) -> None:
        self.bidders[data["bidder_id"]].deposit = "refunded"

    @applies(ev.ListingContracted)
    def _contracted(self, data: dict[str, Any]) -> None:
        self.state = "contracted"
        self.contract_id = data["contract_id"]


# -- corporate review -------------------------------------------------------------------------


class CorporateReview(Aggregate):
    """Qualification and project review of a company before it takes land above the threshold."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.transferee_id = ""
        self.village_id = ""
        self.area_mu = ZERO
        self.used_mu = ZERO
        self.contracts: list[str] = []
        self.status = "new"
        self.submitted_on = date.min
        self.overdue = False

    def due_on(self, rules: Rules) -> date:
        """The last day for the panel's decision: the working days allowed after submission."""
        return add_working_days(self.submitted_on, rules.review_working_days, rules.holidays)

    @property
    def remaining_mu(self) -> Decimal:
        return self.area_mu - self.used_mu

    def submit(self, **facts: Any) -> None:
        self.trigger(ev.CorporateReviewSubmitted, review_id=self.id, **facts)

    def decide(self, approved: bool, opinion: str, decided_on: date, rules: Rules) -> None:
        """A decision after the deadline is still taken (refusing it would leave the company
        without any answer), and recorded as late."""
        if self.status != "submitted":
            raise DomainError(f"the review was already {self.status}", "approved")
        if decided_on < self.submitted_on:
            raise DomainError(f"the review was submitted on {self.submitted_on}", "decided_on")
        event = ev.CorporateTransferApproved if approved else ev.CorporateTransferRejected
        self.trigger(
            event,
            review_id=self.id,
            opinion=opinion,
            decided_on=decided_on,
            decided_late=decided_on > self.due_on(rules),
        )

    def sweep(self, today: date, rules: Rules) -> None:
        """Flag an undecided review once, the day after its last day for a decision."""
        due_on = self.due_on(rules)
        if self.status == "submitted" and not self.overdue and today > due_on:
            self.trigger(
                ev.CorporateReviewOverdue,
                review_id=self.id,
                transferee_id=self.transferee_id,
                village_id=self.village_id,
                submitted_on=self.submitted_on,
                due_on=due_on,
                as_of=today,
            )

    @applies(ev.CorporateReviewOverdue)
    def _overdue(self, data: dict[str, Any]) -> None:
        self.overdue = True

    def use_for(
        self, contract_id: str, transferee_id: str, village_id: str, area_mu: Decimal
    ) -> None:
        """A contract takes ``area_mu`` of the approved area: several contracts may share one
        review, together never more than it approved (a terminated contract does not give its
        area back: the approval was for the project, and a new project is reviewed anew)."""
        field = "corporate_review_id"
        if self.status != "approved":
            raise DomainError(f"the corporate review is {self.status}, not approved", field)
        if self.transferee_id != transferee_id or self.village_id != village_id:
            raise DomainError("the review is for another company or village", field)
        if area_mu > self.remaining_mu:
            raise DomainError(
                f"the review approved {self.area_mu} mu, of which {self.remaining_mu} are left",
                field,
            )
        self.trigger(
            ev.CorporateReviewAreaUsed,
            review_id=self.id,
            contract_id=contract_id,
            area_mu=area_mu,
            remaining_mu=self.remaining_mu - area_mu,
        )

    @applies(ev.CorporateReviewAreaUsed)
    def _used(self, data: dict[str, Any]) -> None:
        self.used_mu += data["area_mu"]
        self.contracts.append(data["contract_id"])

    @applies(ev.CorporateReviewSubmitted)
    def _submitted(self, data: dict[str, Any]) -> None:
        self.transferee_id = data["transferee_id"]
        self.village_id = data["village_id"]
        self.area_mu = data["area_mu"]
        self.submitted_on = data["submitted_on"]
        self.status = "submitted"

    @applies(ev.CorporateTransferApproved)
    def _approved(self, data: dict[str, Any]) -> None:
        self.status = "approved"

    @applies(ev.CorporateTransferRejected)
    def _rejected(self, data: dict[str, Any]) -> None:
        self.status = "rejected"


# -- contracts and rent -----------------------------------------------------------------------


@dataclass
class Invoice:
    period_starts_on: date
    period_ends_on: date
    amount_fen: int
    due_on: date
    paid_fen: int = 0
    fee_fen: int = 0
    overdue: bool = False

    @property
    def outstanding_fen(self) -> int:
        return self.amount_fen - self.paid_fen


@dataclass
class RentRate:
    effective_on: date
    fen_per_mu_year: int


@dataclass
class Pledge:
    pledge_id: str
    loan_id: str
    bank_code: str
    pledged_on: date


class TransferContract(Aggregate):
    """A transfer contract, its filing and certificate, its rent account, and the bank pledges
    on it. Pledges are events of the contract's own stream (recorded from finance's events), so
    a termination or re-transfer racing a pledge is serialised on the contract's version: which
    ever appends first wins, the other is retried and sees it."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.facts: dict[str, Any] = {}
        self.status = "new"
        self.filed_on: date | None = None
        self.certificate_no: str | None = None
        self.terminated_on: date | None = None
        self.filing_overdue = False
        self.rates: list[RentRate] = []
        self.invoices: dict[str, Invoice] = {}
        self.pledges: dict[str, Pledge] = {}
        #: Pledges finance released (or that land refused): never active again.
        self.ended_pledges: set[str] = set()

    @property
    def active_pledge(self) -> Pledge | None:
        return next(iter(self.pledges.values()), None)

    @property
    def parcel_id(self) -> str:
        return self.facts["parcel_id"]

    @property
    def village_id(self) -> str:
        return self.facts["village_id"]

    def sign(
        self,
        parcel: Parcel,
        facts: dict[str, Any],
        entrustment_id: str | None,
        household_signed: bool = False,
    ) -> None:
        """Signed from a paid award, by the household itself, or by an agent under the
        household's entrustment."""
        parcel.check_transferable(
            facts["area_mu"], facts["starts_on"], facts["ends_on"], facts["land_use"]
        )
        if facts["starts_on"] < facts["signed_on"]:
            raise DomainError("the term starts on or after the signing day", "starts_on")
        if facts["listing_id"] is None and not household_signed:
            parcel.require_entrustment(
                entrustment_id,
                facts["area_mu"],
                facts["starts_on"],
                facts["ends_on"],
                facts["rent_fen_per_mu_year"],
            )
        parcel.commit(
            self.id,
            "contract",
            facts["area_mu"],
            facts["starts_on"],
            facts["ends_on"],
            entrustment_id,
        )
        self.trigger(ev.TransferContractSigned, contract_id=self.id, **facts)

    def _require_active(self) -> None:
        if self.status == "terminated":
            raise DomainError(f"the contract was terminated on {self.terminated_on}", "contract_id")

    def file(self, filed_on: date) -> None:
        self._require_active()
        if self.filed_on is not None:
            raise DomainError(f"the contract was filed on {self.filed_on}", "contract_id")
        if filed_on < self.facts["signed_on"]:
            raise DomainError("a contract is filed after it is signed", "filed_on")
        self.trigger(
            ev.TransferContractFiled,
            contract_id=self.id,
            parcel_id=self.parcel_id,
            village_id=self.village_id,
            filed_on=filed_on,
        )

    def certify(self, certificate_no: str, issued_on: date) -> None:
        self._require_active()
        if self.filed_on is None:
            raise DomainError("the contract must be filed before it is certified", "contract_id")
        if self.certificate_no is not None:
            raise DomainError(f"certificate {self.certificate_no} was issued", "contract_id")
        self.trigger(
            ev.TradeCertificateIssued,
            contract_id=self.id,
            certificate_no=certificate_no,
            issued_on=issued_on,
        )

    def _require_unpledged(self) -> None:
        pledge = self.active_pledge
        if pledge is not None:
            raise DomainError(
                f"the right is pledged to bank {pledge.bank_code} (pledge "
                f"{pledge.pledge_id}) until the pledge is released",
                "contract_id",
            )

    # -- pledges, as the finance service reports them --

    def record_pledge(
        self,
        pledge_id: str,
        loan_id: str,
        bank_code: str,
        pledged_on: date,
        source_event_id: str,
    ) -> None:
        """A bank took the right as a pledge. Once per pledge; a release that arrived first
        stays in force; an ended contract has no right left to pledge: refused."""
        if pledge_id in self.pledges or pledge_id in self.ended_pledges:
            return
        if self.status == "terminated":
            self.trigger(
                ev.ContractPledgeRefused,
                contract_id=self.id,
                pledge_id=pledge_id,
                loan_id=loan_id,
                bank_code=bank_code,
                reason=f"the contract was terminated on {self.terminated_on}",
                source_event_id=source_event_id,
            )
            return
        self.trigger(
            ev.ContractPledgeRecorded,
            contract_id=self.id,
            pledge_id=pledge_id,
            loan_id=loan_id,
            bank_code=bank_code,
            pledged_on=pledged_on,
            source_event_id=source_event_id,
        )

    def release_pledge(self, pledge_id: str, released_on: date, source_event_id: str) -> None:
        if pledge_id in self.ended_pledges:
            return
        self.trigger(
            ev.ContractPledgeReleased,
            contract_id=self.id,
            pledge_id=pledge_id,
            released_on=released_on,
            source_event_id=source_event_id,
        )

    def terminate(self, reason: str, terminated_on: date, parcel: Parcel) -> None:
        self._require_active()
        self._require_unpledged()
        if not self.facts["starts_on"] <= terminated_on <= self.facts["ends_on"]:
            raise DomainError("the day is outside the contract's term", "terminated_on")
        self.trigger(
            ev.ContractTerminated,
            contract_id=self.id,
            parcel_id=self.parcel_id,
            village_id=self.village_id,
            area_mu=self.facts["area_mu"],
            reason=reason,
            terminated_on=terminated_on,
        )
        parcel.release(self.id, terminated_on)

    def reassign(
        self,
        transferee_id: str,
        transferee_type: str,
        household_consent: bool,
        reassigned_on: date,
    ) -> None:
        self._require_active()
        self._require_unpledged()
        if self.filed_on is None:
            raise DomainError("only a filed contract may be re-transferred", "contract_id")
        if not household_consent and self.facts["household_id"] is not None:
            raise DomainError(
                "re-transfer needs the household's written consent", "household_consent"
            )
        if transferee_id == self.facts["transferee_id"]:
            raise DomainError("that is the current transferee", "transferee_id")
        self.trigger(
            ev.ContractReassigned,
            contract_id=self.id,
            village_id=self.village_id,
            previous_transferee_id=self.facts["transferee_id"],
            transferee_id=transferee_id,
            transferee_type=transferee_type,
            reassigned_on=reassigned_on,
        )

    # -- rent --

    def adjust_rent(self, fen_per_mu_year: int, index_name: str, effective_on: date) -> None:
        self._require_active()
        if not self.facts["starts_on"] < effective_on <= self.facts["ends_on"]:
            raise DomainError("the new rent must take effect within the term", "effective_on")
        self.trigger(
            ev.RentAdjusted,
            contract_id=self.id,
            rent_fen_per_mu_year=fen_per_mu_year,
            index_name=index_name,
            effective_on=effective_on,
        )

    def rent_years(self) -> list[tuple[date, date]]:
        starts, ends = self.facts["starts_on"], self.facts["ends_on"]
        if self.terminated_on is not None:
            ends = min(ends, self.terminated_on - timedelta(days=1))
        years = []
        k = 0
        while (start := add_years(starts, k)) <= ends:
            years.append((start, min(add_years(starts, k + 1) - timedelta(days=1), ends)))
            k += 1
        return years

    def rent_for(self, start: date, end: date) -> int:
        """A rent year's amount at the rate in force on its first day; a short last year is
        charged by its days."""
        rate = max((r for r in self.rates if r.effective_on <= start), key=lambda r: r.effective_on)
        full_days = (add_years(start, 1) - start).days
        days = (end - start).days + 1
        return fen(Decimal(rate.fen_per_mu_year) * self.facts["area_mu"] * days / full_days)

    def sweep(self, today: date, rules: Rules) -> None:
        """Flag a contract not filed within ``filing_days`` of signing, once, the day after the
        last day; invoice each rent year ``invoice_lead_days`` before it starts; flag unpaid
        invoices once after their due day."""
        filing_due_on = self.facts["signed_on"] + timedelta(days=rules.filing_days)
        if (
            self.filed_on is None
            and self.status != "terminated"
            and not self.filing_overdue
            and today > filing_due_on
        ):
            self.trigger(
                ev.ContractFilingOverdue,
                contract_id=self.id,
                village_id=self.village_id,
                signed_on=self.facts["signed_on"],
                due_on=filing_due_on,
                as_of=today,
            )
        for number, (start, end) in enumerate(self.rent_years(), start=1):
            invoice_id = f"{self.id}/Y{number}"
            if invoice_id in self.invoices or start - timedelta(rules.invoice_lead_days) > today:
                continue
            self.trigger(
                ev.RentInvoiced,
                invoice_id=invoice_id,
                contract_id=self.id,
                village_id=self.village_id,
                period_starts_on=start,
                period_ends_on=end,
                amount_fen=self.rent_for(start, end),
                due_on=start,
            )
        for invoice_id, invoice in self.invoices.items():
            if not invoice.overdue and invoice.outstanding_fen > 0 and today > invoice.due_on:
                self.trigger(
                    ev.RentOverdue,
                    invoice_id=invoice_id,
                    contract_id=self.id,
                    village_id=self.village_id,
                    outstanding_fen=invoice.outstanding_fen,
                    due_on=invoice.due_on,
                    as_of=today,
                )

    def pay_rent(self, invoice_id: str, amount_fen: int, paid_on: date) -> None:
        """Rent received is split: the collective's management fee first (3-party agreements),
        the rest among the contracting households by their shares, each payment on its own, to
        the fen (largest remainder, ties in household id order): the shares always add up to
        what was received."""
        invoice = self.invoices.get(invoice_id)
        if invoice is None:
            raise DomainError(f"no invoice {invoice_id!r} on this contract", "invoice_id")
        if amount_fen > invoice.outstanding_fen:
            raise DomainError(f"{invoice.outstanding_fen} fen are outstanding", "amount_fen")
        fee = self._fee_for(invoice, amount_fen)
        weights = household_weights(self.facts["household_id"], self.facts["household_shares"])
        if weights:
            shares = [
                {"payee_id": household, "payee_type": "household", "amount_fen": part}
                for household, part in split_fen(amount_fen - fee, weights).items()
            ]
        else:
            shares = [
                {"payee_id": self.village_id, "payee_type": "collective", "amount_fen": amount_fen}
            ]
        if fee:
            shares.append(
                {"payee_id": self.village_id, "payee_type": "collective", "amount_fen": fee}
            )
        self.trigger(
            ev.RentPaid,
            invoice_id=invoice_id,
            contract_id=self.id,
            village_id=self.village_id,
            amount_fen=amount_fen,
            shares=shares,
            paid_on=paid_on,
        )
        if fee:
            self.trigger(
                ev.ManagementFeeCollected,
                contract_id=self.id,
                invoice_id=invoice_id,
                village_id=self.village_id,
                amount_fen=fee,
                collected_on=paid_on,
            )

    def _fee_for(self, invoice: Invoice, amount_fen: int) -> int:
        """The management fee is a share of the rent received, rounded down in the household's
        favour; counted on the invoice's running total so part payments add up to the fee on the
        whole."""
        bp = self.facts["management_fee_bp"]
        if not bp or self.facts["household_id"] is None:
            return 0
        fee_so_far = (invoice.paid_fen + amount_fen) * bp // 10_000
        return fee_so_far - invoice.fee_fen

    # -- applying --

    @applies(ev.TransferContractSigned)
    def _signed(self, data: dict[str, Any]) -> None:
        self.facts = dict(data)
        self.status = "signed"
        self.rates = [RentRate(data["starts_on"], data["rent_fen_per_mu_year"])]

    @applies(ev.TransferContractFiled)
    def _filed(self, data: dict[str, Any]) -> None:
        self.filed_on = data["filed_on"]
        self.status = "filed"

    @applies(ev.ContractFilingOverdue)
    def _filing_overdue(self, data: dict[str, Any]) -> None:
        self.filing_overdue = True

    @applies(ev.TradeCertificateIssued)
    def _certified(self, data: dict[str, Any]) -> None:
        self.certificate_no = data["certificate_no"]
        self.status = "certified"

    @applies(ev.ContractReassigned)
    def _reassigned(self, data: dict[str, Any]) -> None:
        self.facts["transferee_id"] = data["transferee_id"]
        self.facts["transferee_type"] = data["transferee_type"]

    @applies(ev.ContractTerminated)
    def _terminated(self, data: dict[str, Any]) -> None:
        self.status = "terminated"
        self.terminated_on = data["terminated_on"]

    @applies(ev.RentAdjusted)
    def _adjusted(self, data: dict[str, Any]) -> None:
        self.rates.append(RentRate(data["effective_on"], data["rent_fen_per_mu_year"]))

    @applies(ev.RentInvoiced)
    def _invoiced(self, data: dict[str, Any]) -> None:
        self.invoices[data["invoice_id"]] = Invoice(
            data["period_starts_on"], data["period_ends_on"], data["amount_fen"], data["due_on"]
        )

    @applies(ev.RentPaid)
    def _rent_paid(self, data: dict[str, Any]) -> None:
        self.invoices[data["invoice_id"]].paid_fen += data["amount_fen"]

    @applies(ev.ManagementFeeCollected)
    def _fee(self, data: dict[str, Any]) -> None:
        self.invoices[data["invoice_id"]].fee_fen += data["amount_fen"]

    @applies(ev.RentOverdue)
    def _overdue(self, data: dict[str, Any]) -> None:
        self.invoices[data["invoice_id"]].overdue = True

    @applies(ev.ContractPledgeRecorded)
    def _pledged(self, data: dict[str, Any]) -> None:
        self.pledges[data["pledge_id"]] = Pledge(
            data["pledge_id"], data["loan_id"], data["bank_code"], data["pledged_on"]
        )

    @applies(ev.ContractPledgeReleased)
    def _pledge_released(self, data: dict[str, Any]) -> None:
        self.pledges.pop(data["pledge_id"], None)
        self.ended_pledges.add(data["pledge_id"])

    @applies(ev.ContractPledgeRefused)
    def _pledge_refused(self, data: dict[str, Any]) -> None:
        self.ended_pledges.add(data["pledge_id"])


# -- abandoned land ---------------------------------------------------------------------------


class AbandonmentCase(Aggregate):
    """One item of a village's abandoned-land ledger, closed when reclaimed."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.village_id = ""
        self.area_mu = ZERO
        self.reported_on = date.min
        self.status = "new"

    def report(self, **facts: Any) -> None:
        if facts["area_mu"] <= 0:
            raise DomainError("the area must be positive", "area_mu")
        self.trigger(ev.LandAbandonmentReported, case_id=self.id, **facts)

    def assign(self, mode: str, assignee_id: str, assigned_on: date) -> None:
        if self.status not in ("reported", "assigned"):
            raise DomainError(f"the case is {self.status}", "case_id")
        if assigned_on < self.reported_on:
            raise DomainError("assigned before it was reported", "assigned_on")
        self.trigger(
            ev.ReclamationAssigned,
            case_id=self.id,
            village_id=self.village_id,
            mode=mode,
            assignee_id=assignee_id,
            assigned_on=assigned_on,
        )

    def confirm_reclaimed(self, area_mu: Decimal, confirmed_on: date) -> None:
        if self.status != "assigned":
            raise DomainError(
                f"the case is {self.status}; reclamation is confirmed after assignment", "case_id"
            )
        if area_mu != self.area_mu:
            raise DomainError(
                f"the ledger item is {self.area_mu} mu; it closes when all of it is reclaimed",
                "area_mu",
            )
        self.trigger(
            ev.AbandonedLandReclaimed,
            case_id=self.id,
            village_id=self.village_id,
            area_mu=area_mu,
            confirmed_on=confirmed_on,
        )

    @applies(ev.LandAbandonmentReported)
    def _reported(self, data: dict[str, Any]) -> None:
        self.village_id = data["village_id"]
        self.area_mu = data["area_mu"]
        self.reported_on = data["reported_on"]
        self.status = "reported"

    @applies(ev.ReclamationAssigned)
    def _assigned(self, data: dict[str, Any]) -> None:
        self.status = "assigned"

    @applies(ev.AbandonedLandReclaimed)
    def _reclaimed(self, data: dict[str, Any]) -> None:
        self.status = "reclaimed"
