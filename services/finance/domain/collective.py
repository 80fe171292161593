"""Village collective income and expenses, and the distribution of profit."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from services.finance.domain.catalog import FULL_BP
from services.finance.events import (
    BUCKETS,
    DistributionPlanApproved,
    DistributionPlanDrafted,
    DistributionPlanPublicised,
    DistributionPolicyDefined,
    DividendPaid,
    EquityRegisterDefined,
    ExpenseRecorded,
    IncomeRecorded,
)
from shared.aggregate import Aggregate, applies
from shared.errors import DomainError
from shared.money import allocate, percent_weights

HUNDRED = Decimal(100)


class CollectiveEntry(Aggregate):
    """One income or expense entry of a village collective (its id is its stream)."""

    def record_income(self, **data: Any) -> None:
        self.trigger(IncomeRecorded, entry_id=self.id, **data)

    def record_expense(self, **data: Any) -> None:
        self.trigger(ExpenseRecorded, entry_id=self.id, **data)

    @applies(IncomeRecorded)
    def _income(self, data: dict[str, Any]) -> None:
        pass

    @applies(ExpenseRecorded)
    def _expense(self, data: dict[str, Any]) -> None:
        pass


class DistributionPolicy(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.village_id = ""
        self.buckets: list[dict[str, Any]] = []
        self.publicity_days = 0

    def define(self, *, buckets: list[dict[str, Any]], **data: Any) -> None:
        names = [b["bucket"] for b in buckets]
        if len(set(names)) != len(names):
            raise DomainError("each bucket once", "buckets")
        if any(b["share_bp"] < 0 for b in buckets):
            raise DomainError("shares must not be negative", "buckets")
        if sum(b["share_bp"] for b in buckets) != FULL_BP:
            raise DomainError("bucket shares must sum to 10000 bp (100 %)", "buckets")
        if "member_dividends" not in names:
            raise DomainError("a policy needs a member_dividends bucket", "buckets")
        # A fixed order makes the rounding of bucket amounts reproducible.
        ordered = sorted(buckets, key=lambda b: BUCKETS.index(b["bucket"]))
        self.trigger(DistributionPolicyDefined, policy_id=self.id, buckets=ordered, **data)

    @applies(DistributionPolicyDefined)
    def _defined(self, data: dict[str, Any]) -> None:
        self.village_id = data["village_id"]
        self.buckets = data["buckets"]
        self.publicity_days = data["publicity_days"]


class EquityRegister(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.village_id = ""
        self.holders: list[dict[str, Any]] = []

    def define(self, *, holders: list[dict[str, Any]], **data: Any) -> None:
        ids = [h["holder_id"] for h in holders]
        if not holders or len(set(ids)) != len(ids):
            raise DomainError("at least one holder, each once", "holders")
        if any(h["share_pct"] <= 0 for h in holders):
            raise DomainError("shares must be positive", "holders")
        total = sum((h["share_pct"] for h in holders), Decimal(0))
        if total != HUNDRED:
            raise DomainError(f"shares must sum to exactly 100 percent, not {total}", "holders")
        self.trigger(EquityRegisterDefined, register_id=self.id, holders=holders, **data)

    @applies(EquityRegisterDefined)
    def _defined(self, data: dict[str, Any]) -> None:
        self.village_id = data["village_id"]
        self.holders = data["holders"]


DRAFTED, APPROVED, PUBLICISED, PAID = "drafted", "approved", "publicised", "paid"


def members_quorate(meeting_type: str, eligible: int, present: int) -> bool:
    """Members' meeting: more than half present; representatives': at least two thirds."""
    if meeting_type == "members":
        return 2 * present > eligible
    return 3 * present >= 2 * eligible


class DistributionPlan(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status = ""
        self.village_id = ""
        self.payouts: list[dict[str, Any]] = []
        self.publicity_ends_on: date | None = None
        self.approved_on: date | None = None

    def draft(
        self,
        *,
        policy: DistributionPolicy,
        register: EquityRegister,
        village_id: str,
        district: str,
        distributable_fen: int,
        available_fen: int,
        on: date,
    ) -> None:
        if policy.village_id != village_id:
            raise DomainError(f"policy {policy.id} is not {village_id}'s", "policy_id")
        if register.village_id != village_id:
            raise DomainError(f"register {register.id} is not {village_id}'s", "register_id")
        if distributable_fen > available_fen:
            raise DomainError(
                f"only {available_fen} fen is undistributed (income less expenses and plans)",
                "distributable_fen",
            )
        bucket_amounts = allocate(distributable_fen, [b["share_bp"] for b in policy.buckets])
        buckets = [
            {**b, "amount_fen": amount}
            for b, amount in zip(policy.buckets, bucket_amounts, strict=True)
        ]
        dividends = next(b["amount_fen"] for b in buckets if b["bucket"] == "member_dividends")
        holders = register.holders
        amounts = allocate(dividends, percent_weights([h["share_pct"] for h in holders]))
        self.trigger(
            DistributionPlanDrafted,
            plan_id=self.id,
            village_id=village_id,
            district=district,
            policy_id=policy.id,
            register_id=register.id,
            distributable_fen=distributable_fen,
            buckets=buckets,
            payouts=[{**h, "amount_fen": a} for h, a in zip(holders, amounts, strict=True)],
            drafted_on=on,
        )

    def approve(
        self, meeting_type: str, eligible: int, present: int, in_favour: int, on: date
    ) -> None:
        if self.status != DRAFTED:
            raise DomainError(f"plan {self.id} is {self.status}, not drafted", "plan_id")
        if present > eligible:
            raise DomainError("more present than eligible", "present")
        if in_favour > present:
            raise DomainError("more in favour than present", "in_favour")
        if not members_quorate(meeting_type, eligible, present):
            raise DomainError(
                "no quorum: a members' meeting needs more than half present, a "
                "representatives' meeting at least two thirds",
                "present",
            )
        if 2 * in_favour <= present:
            raise DomainError("a plan needs a majority of those present", "in_favour")
        self.trigger(
            DistributionPlanApproved,
            plan_id=self.id,
            village_id=self.village_id,
            meeting_type=meeting_type,
            eligible=eligible,
            present=present,
            in_favour=in_favour,
            approved_on=on,
        )

    def publicise(self, publicity_days: int, on: date) -> None:
        if self.status != APPROVED:
            raise DomainError("only an approved plan is publicised", "plan_id")
        self.trigger(
            DistributionPlanPublicised,
            plan_id=self.id,
            village_id=self.village_id,
            publicised_on=on,
            publicity_ends_on=on + timedelta(days=publicity_days),
        )

    def pay(self, on: date) -> None:
        if self.status != PUBLICISED:
            raise DomainError("a plan is paid only after it was approved and publicised", "plan_id")
        assert self.publicity_ends_on is not None
        if on < self.publicity_ends_on:
            raise DomainError(
                f"the publicity period runs until {self.publicity_ends_on}", "paid_on"
            )
        for payout in self.payouts:
            self.trigger(
                DividendPaid,
                plan_id=self.id,
                village_id=self.village_id,
                holder_id=payout["holder_id"],
                holder_type=payout["holder_type"],
                amount_fen=payout["amount_fen"],
                paid_on=on,
            )

    @applies(DistributionPlanDrafted)
    def _drafted(self, data: dict[str, Any]) -> None:
        self.status = DRAFTED
        self.village_id = data["village_id"]
        self.payouts = data["payouts"]

    @applies(DistributionPlanApproved)
    def _approved(self, data: dict[str, Any]) -> None:
        self.status = APPROVED

    @applies(DistributionPlanPublicised)
    def _publicised(self, data: dict[str, Any]) -> None:
        self.status = PUBLICISED
        self.publicity_ends_on = data["publicity_ends_on"]

    @applies(DividendPaid)
    def _paid(self, data: dict[str, Any]) -> None:
        self.status = PAID
