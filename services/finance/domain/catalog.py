"""Loan products, risk-sharing schemes and the risk compensation fund."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.finance.events import (
    GuarantorProfileDefined,
    LoanProductDefined,
    RiskFundBelowFloor,
    RiskFundDrawn,
    RiskFundEstablished,
    RiskFundToppedUp,
    RiskSchemeDefined,
)
from shared.aggregate import Aggregate, applies
from shared.errors import DomainError

FULL_BP = 10_000
#: Policy agricultural guarantees: one client's outstanding guaranteed at most 1000万元.
POLICY_CLIENT_CAP_FEN = 10_000_000 * 100
#: Guarantee fees for land transfer and machinery purchase are capped lower (0.5 %).
LOW_FEE_PURPOSES = frozenset({"land_transfer", "machinery"})
LOW_FEE_CAP_BP = 50
#: When the national guarantee fund re-guarantees, it takes 20 % and the bank at least 20 %.
NATIONAL_FUND_SHARE_BP = 2_000
NATIONAL_FUND_MIN_BANK_BP = 2_000
#: A financing guarantor: outstanding guarantees at most 10x its net assets (15x when it mainly
#: serves agriculture and small firms), one borrower's at most 10 % of them.
GUARANTOR_LEVERAGE_TIMES = (10, 15)
GUARANTOR_SINGLE_BORROWER_BP = 1_000


def guarantor_stream(guarantor_id: str) -> str:
    return f"guarantor.{guarantor_id}"


class GuarantorProfile(Aggregate):
    """A guarantor's net assets, which bound what it may guarantee."""

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.guarantor_id = ""
        self.net_assets_fen = 0
        self.leverage_times = 0

    def define(self, guarantor_id: str, **data: Any) -> None:
        low, high = GUARANTOR_LEVERAGE_TIMES
        if not low <= data["leverage_times"] <= high:
            raise DomainError(f"must be from {low} to {high}", "leverage_times")
        self.trigger(GuarantorProfileDefined, guarantor_id=guarantor_id, **data)

    def ensure_can_guarantee(self, outstanding_fen: int, borrower_fen: int, new_fen: int) -> None:
        """Within the leverage on net assets, and one borrower within 10 % of them."""
        limit = self.leverage_times * self.net_assets_fen
        if outstanding_fen + new_fen > limit:
            raise DomainError(
                f"guarantor {self.guarantor_id} may have {limit} fen outstanding "
                f"({self.leverage_times}x its net assets); {outstanding_fen} fen already are",
                "guaranteed_fen",
            )
        single = self.net_assets_fen * GUARANTOR_SINGLE_BORROWER_BP // FULL_BP
        if borrower_fen + new_fen > single:
            raise DomainError(
                f"guarantor {self.guarantor_id} may guarantee one borrower at most {single} fen "
                f"(10 % of its net assets); {borrower_fen} fen already are",
                "guaranteed_fen",
            )

    @applies(GuarantorProfileDefined)
    def _defined(self, data: dict[str, Any]) -> None:
        self.guarantor_id = data["guarantor_id"]
        self.net_assets_fen = data["net_assets_fen"]
        self.leverage_times = data["leverage_times"]


class LoanProduct(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.defined = False
        self.data: dict[str, Any] = {}

    def define(self, **data: Any) -> None:
        if data["min_amount_fen"] > data["max_amount_fen"]:
            raise DomainError("must not exceed max_amount_fen", "min_amount_fen")
        if data["borrower_cap_fen"] > POLICY_CLIENT_CAP_FEN:
            raise DomainError(
                f"a policy guarantee caps one client at {POLICY_CLIENT_CAP_FEN} fen",
                "borrower_cap_fen",
            )
        self.trigger(LoanProductDefined, product_id=self.id, **data)

    def fee_cap_bp(self, purpose: str) -> int:
        cap = self.data["max_fee_rate_bp"]
        return min(cap, LOW_FEE_CAP_BP) if purpose in LOW_FEE_PURPOSES else cap

    @applies(LoanProductDefined)
    def _defined(self, data: dict[str, Any]) -> None:
        self.defined = True
        self.data = dict(data)


class RiskScheme(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.parties: list[dict[str, Any]] = []
        self.fund_id = ""
        self.district = ""

    def define(self, *, parties: list[dict[str, Any]], **data: Any) -> None:
        if any(p["share_bp"] < 0 for p in parties):
            raise DomainError("shares must not be negative", "parties")
        if sum(p["share_bp"] for p in parties) != FULL_BP:
            raise DomainError("shares must sum to 10000 bp (100 %)", "parties")
        ids = [p["party_id"] for p in parties]
        if len(set(ids)) != len(ids):
            raise DomainError("each party once", "parties")
        by_type: dict[str, int] = {}
        for party in parties:
            by_type[party["party_type"]] = by_type.get(party["party_type"], 0) + party["share_bp"]
        if "national_fund" in by_type and (
            by_type["national_fund"] != NATIONAL_FUND_SHARE_BP
            or by_type.get("bank", 0) < NATIONAL_FUND_MIN_BANK_BP
        ):
            raise DomainError(
                "with the national fund, the fund takes 2000 bp and banks at least 2000 bp",
                "parties",
            )
        self.trigger(RiskSchemeDefined, scheme_id=self.id, parties=parties, **data)

    @applies(RiskSchemeDefined)
    def _defined(self, data: dict[str, Any]) -> None:
        self.parties = data["parties"]
        self.fund_id = data["fund_id"]
        self.district = data["district"]


class RiskFund(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.district = ""
        self.leverage_times = 0
        self.floor_bp = 0
        self.balance_fen = 0
        self.below_floor = False

    def establish(self, **data: Any) -> None:
        self.trigger(RiskFundEstablished, fund_id=self.id, **data)

    def top_up(self, amount_fen: int, outstanding_fen: int, on: date) -> None:
        self.trigger(
            RiskFundToppedUp,
            fund_id=self.id,
            amount_fen=amount_fen,
            balance_fen=self.balance_fen + amount_fen,
            outstanding_guaranteed_fen=outstanding_fen,
            topped_up_on=on,
        )

    def is_below_floor(self, outstanding_fen: int) -> bool:
        return self.balance_fen * FULL_BP < self.floor_bp * outstanding_fen

    def ensure_can_guarantee(self, outstanding_fen: int, new_fen: int) -> None:
        """New guarantees only while the fund is above its floor and within its leverage."""
        if self.below_floor or self.is_below_floor(outstanding_fen):
            raise DomainError(f"risk fund {self.id} is below its floor; top it up first", "fund_id")
        limit = self.leverage_times * self.balance_fen
        if outstanding_fen + new_fen > limit:
            raise DomainError(
                f"risk fund {self.id} allows {limit} fen outstanding "
                f"({self.leverage_times}x its balance); {outstanding_fen} fen already are",
                "guaranteed_fen",
            )

    def draw(self, loan_id: str, compensation_id: str, amount_fen: int, on: date) -> None:
        self.trigger(
            RiskFundDrawn,
            fund_id=self.id,
            loan_id=loan_id,
            compensation_id=compensation_id,
            amount_fen=amount_fen,
            balance_fen=self.balance_fen - amount_fen,
            drawn_on=on,
        )

    def check_floor(self, outstanding_fen: int, as_of: date) -> None:
        """Report falling below the floor once (until a top-up lifts it again)."""
        if not self.below_floor and self.is_below_floor(outstanding_fen):
            self.trigger(
                RiskFundBelowFloor,
                fund_id=self.id,
                balance_fen=self.balance_fen,
                outstanding_guaranteed_fen=outstanding_fen,
                floor_bp=self.floor_bp,
                as_of=as_of,
            )

    @applies(RiskFundEstablished)
    def _established(self, data: dict[str, Any]) -> None:
        self.district = data["district"]
        self.leverage_times = data["leverage_times"]
        self.floor_bp = data["floor_bp"]

    @applies(RiskFundToppedUp)
    def _topped_up(self, data: dict[str, Any]) -> None:
        self.balance_fen = data["balance_fen"]
        outstanding = data["outstanding_guaranteed_fen"]
        self.below_floor = self.is_below_floor(outstanding)

    @applies(RiskFundDrawn)
    def _drawn(self, data: dict[str, Any]) -> None:
        self.balance_fen = data["balance_fen"]

    @applies(RiskFundBelowFloor)
    def _below_floor(self, data: dict[str, Any]) -> None:
        self.below_floor = True
