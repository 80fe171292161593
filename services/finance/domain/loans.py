"""A guaranteed loan from application to closing, and the pledge of a land transfer contract."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from services.finance.domain.catalog import FULL_BP, POLICY_CLIENT_CAP_FEN, LoanProduct, RiskScheme
from services.finance.events import (
    ApplicantRecommended,
    CompensationPaid,
    CounterGuaranteeRegistered,
    DueDiligenceCompleted,
    GuaranteeApproved,
    GuaranteeContractSigned,
    GuaranteeFeeCharged,
    GuaranteeRejected,
    LandRightPledged,
    LoanApplied,
    LoanClosed,
    LoanDisbursed,
    LoanOverdue,
    LossShared,
    LossWrittenOff,
    PledgeReleased,
    RecoveryReceived,
    RepaymentReceived,
)
from services.finance.money import add_months, fee_fen
from shared.aggregate import Aggregate, applies
from shared.errors import DomainError
from shared.money import allocate

#: Loan states, in lifecycle order.
APPLIED, REJECTED, APPROVED, CONTRACTED = "applied", "rejected", "approved", "contracted"
DISBURSED, OVERDUE, COMPENSATED, CLOSED = "disbursed", "overdue", "compensated", "closed"
#: States in which a guarantee is outstanding (counted against caps and the fund).
GUARANTEED_STATES = (APPROVED, CONTRACTED, DISBURSED, OVERDUE)


@dataclass(frozen=True)
class Pledge:
    """What disbursement needs to know of the loan's registered pledge."""

    pledge_id: str
    max_maturity_on: date


class Loan(Aggregate):
    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.status = ""
        self.bank_code = ""
        self.district = ""
        self.product_id = ""
        self.borrower_id = ""
        self.village_id = ""
        self.purpose = ""
        self.principal_fen = 0
        self.term_months = 0
        self.recommended = False
        self.diligence_passed: bool | None = None
        self.guarantor_id = ""
        self.scheme_id = ""
        self.fund_id = ""
        self.guaranteed_fen = 0
        self.fee_rate_bp = 0
        self.requires_land_pledge = False
        self.fee_charged = False
        self.counter_guarantees: list[str] = []
        self.repayments: set[str] = set()
        self.outstanding_fen = 0
        self.disbursed_on: date | None = None
        self.maturity_on: date | None = None
        self.loss_parts: list[dict[str, Any]] = []
        self.loss_fen = 0
        self.recovered_fen = 0
        self.recoveries: set[str] = set()

    def _facts(self) -> dict[str, Any]:
        return {"loan_id": self.id, "bank_code": self.bank_code}

    def _require(self, *states: str, field: str = "loan_id") -> None:
        if self.status not in states:
            raise DomainError(
                f"loan {self.id} is {self.status}; this needs it {' or '.join(states)}", field
            )

    @property
    def exposure_fen(self) -> int:
        """The guaranteed amount still at risk: all of it until disbursement, then in
        proportion to the outstanding principal."""
        if self.status in (APPROVED, CONTRACTED):
            return self.guaranteed_fen
        if self.status in (DISBURSED, OVERDUE):
            return self.guaranteed_fen * self.outstanding_fen // self.principal_fen
        return 0

    # -- application, due diligence, the guarantee decision ----------------------------------

    def apply_for(self, product: LoanProduct, **data: Any) -> None:
        terms = product.data
        if data["purpose"] not in terms["purposes"]:
            raise DomainError(
                f"product {product.id} lends for {', '.join(terms['purposes'])}", "purpose"
            )
        if not terms["min_amount_fen"] <= data["principal_fen"] <= terms["max_amount_fen"]:
            raise DomainError(
                f"product {product.id} lends {terms['min_amount_fen']}-"
                f"{terms['max_amount_fen']} fen",
                "principal_fen",
            )
        if data["term_months"] > terms["max_term_months"]:
            raise DomainError(
                f"product {product.id} lends for at most {terms['max_term_months']} months",
                "term_months",
            )
        self.trigger(LoanApplied, loan_id=self.id, product_id=product.id, **data)

    def recommend(self, by: str, note: str, on: date) -> None:
        self._require(APPLIED)
        self.trigger(
            ApplicantRecommended, **self._facts(), recommended_by=by, note=note, recommended_on=on
        )

    def complete_due_diligence(self, passed: bool, note: str, on: date) -> None:
        self._require(APPLIED)
        self.trigger(
            DueDiligenceCompleted, **self._facts(), passed=passed, note=note, completed_on=on
        )

    def approve(
        self,
        *,
        product: LoanProduct,
        scheme: RiskScheme,
        guarantor_id: str,
        guaranteed_fen: int,
        fee_rate_bp: int,
        borrower_outstanding_fen: int,
        on: date,
    ) -> None:
        """Approve the guarantee. The fund's capacity is checked by the caller (RiskFund)."""
        self._require(APPLIED)
        if not self.diligence_passed:
            raise DomainError("due diligence has not passed", "loan_id")
        if guaranteed_fen > self.principal_fen:
            raise DomainError(
                f"the guarantee may not exceed the principal ({self.principal_fen} fen)",
                "guaranteed_fen",
            )
        cap = min(product.data["borrower_cap_fen"], POLICY_CLIENT_CAP_FEN)
        if borrower_outstanding_fen + guaranteed_fen > cap:
            raise DomainError(
                f"borrower {self.borrower_id} would have "
                f"{borrower_outstanding_fen + guaranteed_fen} fen guaranteed; the cap is {cap}",
                "guaranteed_fen",
            )
        fee_cap = product.fee_cap_bp(self.purpose)
        if fee_rate_bp > fee_cap:
            raise DomainError(f"the fee rate cap is {fee_cap} bp", "fee_rate_bp")
        self.trigger(
            GuaranteeApproved,
            **self._facts(),
            borrower_id=self.borrower_id,
            guarantor_id=guarantor_id,
            scheme_id=scheme.id,
            fund_id=scheme.fund_id,
            guaranteed_fen=guaranteed_fen,
            fee_rate_bp=fee_rate_bp,
            requires_land_pledge=product.data["requires_land_pledge"],
            approved_on=on,
        )

    def reject(self, reason: str, on: date) -> None:
        self._require(APPLIED)
        self.trigger(GuaranteeRejected, **self._facts(), reason=reason, rejected_on=on)

    def sign_contract(self, contract_id: str, on: date) -> None:
        self._require(APPROVED)
        self.trigger(
            GuaranteeContractSigned,
            **self._facts(),
            guarantee_contract_id=contract_id,
            signed_on=on,
        )

    def register_counter_guarantee(self, cg_id: str, kind: str, value_fen: int, on: date) -> None:
        self._require(APPROVED, CONTRACTED)
        if cg_id in self.counter_guarantees:
            raise DomainError(f"counter-guarantee {cg_id} is already registered", "id")
        self.trigger(
            CounterGuaranteeRegistered,
            **self._facts(),
            counter_guarantee_id=cg_id,
            kind=kind,
            value_fen=value_fen,
            registered_on=on,
        )

    def expected_maturity(self, start: date) -> date:
        return add_months(start, self.term_months)

    # -- money moving --------------------------------------------------------------------------

    def disburse(self, on: date, pledge: Pledge | None) -> None:
        """Never before the guarantee contract, nor before a required pledge."""
        if self.status == APPROVED:
            raise DomainError("the guarantee contract is not signed yet", "loan_id")
        self._require(CONTRACTED)
        maturity = self.expected_maturity(on)
        if self.requires_land_pledge:
            if pledge is None:
                raise DomainError("the loan needs a registered land-right pledge", "pledge")
            if maturity > pledge.max_maturity_on:
                raise DomainError(
                    f"the loan would mature on {maturity}, after {pledge.max_maturity_on} "
                    "(the pledged contract's end less the margin)",
                    "disbursed_on",
                )
        self.trigger(
            LoanDisbursed,
            **self._facts(),
            district=self.district,
            borrower_id=self.borrower_id,
            village_id=self.village_id,
            principal_fen=self.principal_fen,
            guaranteed_fen=self.guaranteed_fen,
            disbursed_on=on,
            maturity_on=maturity,
        )

    def charge_fee(self, on: date) -> None:
        self._require(CONTRACTED, DISBURSED, OVERDUE)
        if self.fee_charged:
            raise DomainError("the guarantee fee was already charged", "loan_id")
        self.trigger(
            GuaranteeFeeCharged,
            **self._facts(),
            fee_fen=fee_fen(self.guaranteed_fen, self.fee_rate_bp, self.term_months),
            fee_rate_bp=self.fee_rate_bp,
            charged_on=on,
        )

    def repay(self, repayment_id: str, principal_fen: int, interest_fen: int, on: date) -> None:
        self._require(DISBURSED, OVERDUE)
        if repayment_id in self.repayments:
            raise DomainError(f"repayment {repayment_id} is already recorded", "id")
        if principal_fen > self.outstanding_fen:
            raise DomainError(
                f"only {self.outstanding_fen} fen principal is outstanding", "principal_fen"
            )
        assert self.disbursed_on is not None
        if on < self.disbursed_on:
            raise DomainError("a repayment cannot precede the disbursement", "repaid_on")
        self.trigger(
            RepaymentReceived,
            **self._facts(),
            repayment_id=repayment_id,
            principal_fen=principal_fen,
            interest_fen=interest_fen,
            outstanding_principal_fen=self.outstanding_fen - principal_fen,
            repaid_on=on,
        )
        if self.outstanding_fen == 0:
            self.trigger(LoanClosed, **self._facts(), reason="repaid", closed_on=on)

    # -- time-driven: overdue and compensation -------------------------------------------------

    def sweep(self, as_of: date, product: LoanProduct, scheme: RiskScheme) -> int:
        """Emit what ``as_of`` makes true, once. Returns the fund's share of a new compensation
        (0 if none)."""
        if self.status not in (DISBURSED, OVERDUE) or self.maturity_on is None:
            return 0
        overdue_on = self.maturity_on + timedelta(days=product.data["overdue_grace_days"] + 1)
        if self.status == DISBURSED and as_of >= overdue_on:
            self.trigger(
                LoanOverdue,
                **self._facts(),
                due_on=self.maturity_on,
                overdue_on=overdue_on,
                outstanding_principal_fen=self.outstanding_fen,
                as_of=as_of,
            )
        days_overdue = (as_of - self.maturity_on).days
        if self.status == OVERDUE and days_overdue >= product.data["compensation_after_days"]:
            return self._compensate(days_overdue, as_of, scheme)
        return 0

    def _compensate(self, days_overdue: int, on: date, scheme: RiskScheme) -> int:
        compensation_id = f"{self.id}.compensation"
        loss = min(self.outstanding_fen, self.guaranteed_fen)
        parties = scheme.parties
        amounts = allocate(loss, [p["share_bp"] for p in parties])
        shares = [
            {**party, "amount_fen": amount} for party, amount in zip(parties, amounts, strict=True)
        ]
        bank_part = sum(s["amount_fen"] for s in shares if s["party_type"] == "bank")
        self.trigger(
            CompensationPaid,
            **self._facts(),
            compensation_id=compensation_id,
            loss_fen=loss,
            amount_fen=loss - bank_part,
            days_overdue=days_overdue,
            paid_on=on,
        )
        self.trigger(
            LossShared,
            **self._facts(),
            compensation_id=compensation_id,
            loss_fen=loss,
            shares=shares,
            shared_on=on,
        )
        return sum(s["amount_fen"] for s in shares if s["party_type"] == "risk_fund")

    # -- after compensation --------------------------------------------------------------------

    def recover(self, recovery_id: str, amount_fen: int, on: date) -> None:
        self._require(COMPENSATED)
        if recovery_id in self.recoveries:
            raise DomainError(f"recovery {recovery_id} is already recorded", "id")
        unrecovered = self.loss_fen - self.recovered_fen
        if amount_fen > unrecovered:
            raise DomainError(f"only {unrecovered} fen of the loss is unrecovered", "amount_fen")
        # Pro rata to each party's loss: the parts of all recoveries never exceed a loss.
        amounts = allocate(amount_fen, [p["amount_fen"] for p in self.loss_parts])
        self.trigger(
            RecoveryReceived,
            **self._facts(),
            recovery_id=recovery_id,
            amount_fen=amount_fen,
            shares=[
                {"party_id": p["party_id"], "party_type": p["party_type"], "amount_fen": a}
                for p, a in zip(self.loss_parts, amounts, strict=True)
            ],
            received_on=on,
        )
        if self.recovered_fen == self.loss_fen:
            self.trigger(LoanClosed, **self._facts(), reason="recovered", closed_on=on)

    def write_off(self, on: date) -> None:
        self._require(COMPENSATED)
        self.trigger(
            LossWrittenOff,
            **self._facts(),
            amount_fen=self.loss_fen - self.recovered_fen,
            written_off_on=on,
        )
        self.trigger(LoanClosed, **self._facts(), reason="written_off", closed_on=on)

    # -- state changes -------------------------------------------------------------------------

    @applies(LoanApplied)
    def _applied(self, data: dict[str, Any]) -> None:
        self.status = APPLIED
        for name in (
            "bank_code",
            "district",
            "product_id",
            "borrower_id",
            "village_id",
            "purpose",
            "principal_fen",
            "term_months",
        ):
            setattr(self, name, data[name])

    @applies(ApplicantRecommended)
    def _recommended(self, data: dict[str, Any]) -> None:
        self.recommended = True

    @applies(DueDiligenceCompleted)
    def _diligence(self, data: dict[str, Any]) -> None:
        self.diligence_passed = data["passed"]

    @applies(GuaranteeApproved)
    def _approved(self, data: dict[str, Any]) -> None:
        self.status = APPROVED
        for name in (
            "guarantor_id",
            "scheme_id",
            "fund_id",
            "guaranteed_fen",
            "fee_rate_bp",
            "requires_land_pledge",
        ):
            setattr(self, name, data[name])

    @applies(GuaranteeRejected)
    def _rejected(self, data: dict[str, Any]) -> None:
        self.status = REJECTED

    @applies(GuaranteeContractSigned)
    def _signed(self, data: dict[str, Any]) -> None:
        self.status = CONTRACTED

    @applies(CounterGuaranteeRegistered)
    def _counter(self, data: dict[str, Any]) -> None:
        self.counter_guarantees.append(data["counter_guarantee_id"])

    @applies(LoanDisbursed)
    def _disbursed(self, data: dict[str, Any]) -> None:
        self.status = DISBURSED
        self.outstanding_fen = data["principal_fen"]
        self.disbursed_on = data["disbursed_on"]
        self.maturity_on = data["maturity_on"]

    @applies(GuaranteeFeeCharged)
    def _fee(self, data: dict[str, Any]) -> None:
        self.fee_charged = True

    @applies(RepaymentReceived)
    def _repaid(self, data: dict[str, Any]) -> None:
        self.repayments.add(data["repayment_id"])
        self.outstanding_fen = data["outstanding_principal_fen"]

    @applies(LoanOverdue)
    def _overdue(self, data: dict[str, Any]) -> None:
        self.status = OVERDUE

    @applies(CompensationPaid)
    def _compensated(self, data: dict[str, Any]) -> None:
        self.status = COMPENSATED
        self.loss_fen = data["loss_fen"]

    @applies(LossShared)
    def _shared(self, data: dict[str, Any]) -> None:
        self.loss_parts = data["shares"]

    @applies(RecoveryReceived)
    def _recovered(self, data: dict[str, Any]) -> None:
        self.recoveries.add(data["recovery_id"])
        self.recovered_fen += data["amount_fen"]

    @applies(LossWrittenOff)
    def _written_off(self, data: dict[str, Any]) -> None:
        pass

    @applies(LoanClosed)
    def _closed(self, data: dict[str, Any]) -> None:
        self.status = CLOSED


@dataclass(frozen=True)
class LandContract:
    """A land transfer contract as finance knows it from the land service's events."""

    contract_id: str
    village_id: str
    starts_on: date
    ends_on: date
    filed: bool
    terminated: bool


def pledge_stream(contract_id: str) -> str:
    return f"pledge.{contract_id}"


class ContractPledge(Aggregate):
    """The pledge record of one land transfer contract: at most one active pledge."""

    stream_type = "LandRightPledge"

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.active: dict[str, Any] | None = None

    def pledge(
        self,
        *,
        pledge_id: str,
        loan: Loan,
        contract: LandContract | None,
        contract_id: str,
        product: LoanProduct,
        appraised_value_fen: int,
        amount_fen: int,
        owner_consent_on: date,
        on: date,
    ) -> None:
        loan._require(APPROVED, CONTRACTED)
        if contract is None or contract.terminated:
            raise DomainError(f"transfer contract {contract_id} is not active", "contract_id")
        if not contract.filed:
            raise DomainError(f"transfer contract {contract_id} is not filed", "contract_id")
        if not contract.starts_on <= on < contract.ends_on:
            raise DomainError(f"transfer contract {contract_id} is not in force", "contract_id")
        if self.active is not None:
            raise DomainError(
                f"transfer contract {contract_id} is already pledged for loan "
                f"{self.active['loan_id']}",
                "contract_id",
            )
        margin = product.data["pledge_margin_days"]
        max_maturity = contract.ends_on - timedelta(days=margin)
        if loan.expected_maturity(on) > max_maturity:
            raise DomainError(
                f"the loan would mature after {max_maturity}: the contract ends "
                f"{contract.ends_on} and the margin is {margin} days",
                "contract_id",
            )
        ltv = product.data["pledge_ltv_bp"]
        if amount_fen * FULL_BP > ltv * appraised_value_fen:
            raise DomainError(
                f"at most {ltv} bp of the appraised value may be pledged", "amount_fen"
            )
        if amount_fen > loan.principal_fen:
            raise DomainError("the pledge may not secure more than the principal", "amount_fen")
        self.trigger(
            LandRightPledged,
            loan_id=loan.id,
            bank_code=loan.bank_code,
            pledge_id=pledge_id,
            contract_id=contract_id,
            village_id=contract.village_id,
            appraised_value_fen=appraised_value_fen,
            amount_fen=amount_fen,
            ltv_bp=ltv,
            max_maturity_on=max_maturity,
            owner_consent_on=owner_consent_on,
            pledged_on=on,
        )

    def release(self, loan: Loan, on: date) -> None:
        if self.active is None or self.active["loan_id"] != loan.id:
            raise DomainError(f"no active pledge for loan {loan.id}", "contract_id")
        if loan.status != CLOSED:
            raise DomainError("the pledge is released only once the loan is closed", "loan_id")
        self.trigger(
            PledgeReleased,
            loan_id=loan.id,
            bank_code=loan.bank_code,
            pledge_id=self.active["pledge_id"],
            contract_id=self.active["contract_id"],
            released_on=on,
        )

    @applies(LandRightPledged)
    def _pledged(self, data: dict[str, Any]) -> None:
        self.active = data

    @applies(PledgeReleased)
    def _released(self, data: dict[str, Any]) -> None:
        self.active = None
