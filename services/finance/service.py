"""The finance service: loans and guarantees, risk sharing, land-right pledges, collective
income and its distribution, and the bank feed."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from services.finance import schemas
from services.finance.bank_feed import BANK_FEED, bank_envelope
from services.finance.domain import (
    CollectiveEntry,
    ContractPledge,
    DistributionPlan,
    DistributionPolicy,
    EquityRegister,
    GuarantorProfile,
    LandContract,
    Loan,
    LoanProduct,
    RiskFund,
    RiskScheme,
)
from services.finance.domain.catalog import guarantor_stream
from services.finance.domain.loans import GUARANTEED_STATES, Pledge, pledge_stream
from services.finance.projections import (
    LAND_CONTRACTS,
    LAND_EVENTS,
    VIEWS,
    balances,
    bank_feed,
    borrowers,
    ensure_balance,
    entries,
    funds,
    guarantors,
    land_contracts,
    loans,
    plans,
    pledges,
)
from shared import directory
from shared.commands import CommandContext, UnitOfWork, decide_within
from shared.consumers import subscribe
from shared.errors import DomainError, Forbidden, NotFound
from shared.eventstore import MAX_EVENTS_PER_TRANSACTION, EventStore, RecordedEvent
from shared.eventstore import events as events_table
from shared.http import command, query
from shared.service import ServiceBase

CATALOGUE = ["guarantor", "district_admin"]
APPLICANTS = ["household", "village_cadre", "bank", "guarantor"]
RECOMMENDERS = ["village_cadre", "alliance_secretary", "district_admin"]
LENDERS = ["bank"]
GUARANTORS = ["guarantor"]
SWEEPERS = ["ops", "guarantor"]
LOAN_READERS = ["guarantor", "bank", "district_admin", "ops", "service"]
FUND_READERS = [*CATALOGUE, "ops", "service", "bank"]
COLLECTIVE = ["village_cadre", "district_admin"]
COLLECTIVE_READERS = [*COLLECTIVE, "alliance_secretary", "ops", "service"]


def _loan_view(loan: Loan) -> dict[str, Any]:
    return {
        "loan_id": loan.id,
        "status": loan.status,
        "bank_code": loan.bank_code,
        "district": loan.district,
        "product_id": loan.product_id,
        "borrower_id": loan.borrower_id,
        "village_id": loan.village_id,
        "purpose": loan.purpose,
        "principal_fen": loan.principal_fen,
        "term_months": loan.term_months,
        "guarantor_id": loan.guarantor_id or None,
        "scheme_id": loan.scheme_id or None,
        "guaranteed_fen": loan.guaranteed_fen,
        "fee_rate_bp": loan.fee_rate_bp,
        "requires_land_pledge": loan.requires_land_pledge,
        "outstanding_principal_fen": loan.outstanding_fen,
        "exposure_fen": loan.exposure_fen,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "maturity_on": loan.maturity_on.isoformat() if loan.maturity_on else None,
        "loss_fen": loan.loss_fen,
        "recovered_fen": loan.recovered_fen,
        "version": loan.version,
    }


def _sum_exposure(db: Connection, *where: Any) -> int:
    query_ = select(func.coalesce(func.sum(loans.c.exposure_fen), 0)).where(
        loans.c.status.in_(GUARANTEED_STATES), *where
    )
    return int(db.execute(query_).scalar_one())


def _lock(db: Connection, table: Any, key_column: Any, key: str) -> None:
    """Serialise cap checks on one fund or borrower (PostgreSQL row lock; SQLite writers are
    serialised already)."""
    db.execute(select(key_column).where(key_column == key).with_for_update()).first()


def _require_bank(db: Connection, bank_code: str) -> None:
    found = db.execute(
        select(directory.units.c.unit_id).where(
            directory.units.c.unit_type == "bank", directory.units.c.bank_code == bank_code
        )
    ).first()
    if found is None:
        raise DomainError(f"bank {bank_code!r} is not in the alliance directory", "bank_code")


def _land_contract(db: Connection, contract_id: str) -> LandContract | None:
    row = db.execute(
        select(land_contracts).where(land_contracts.c.contract_id == contract_id)
    ).first()
    if row is None or not row.signed:
        return None
    return LandContract(
        contract_id=row.contract_id,
        village_id=row.village_id,
        starts_on=row.starts_on,
        ends_on=row.ends_on,
        filed=row.filed,
        terminated=row.terminated,
    )


def _active_pledge(db: Connection, loan_id: str) -> Any:
    return db.execute(
        select(pledges).where(pledges.c.loan_id == loan_id, pledges.c.active.is_(True))
    ).first()


class FinanceService(directory.DirectoryMember, ServiceBase):
    name = "finance"
    projections = [directory.DIRECTORY, VIEWS, LAND_CONTRACTS]
    feeds = [BANK_FEED]

    # -- helpers -------------------------------------------------------------------------------

    def _scope_loan(self, loan: Loan) -> None:
        self.store.principal.require_scope(district=loan.district, bank=loan.bank_code)

    def _loan_command(self, loan_id: str, act: Any) -> Any:
        """Load the loan, check the caller's scope, let ``act(uow, loan)`` decide."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            loan = uow.get(Loan, loan_id)
            self._scope_loan(loan)
            act(uow, loan)
            return _loan_view(loan)

        return self.store.run(decide)

    # -- catalogue -----------------------------------------------------------------------------

    @command("POST", "/api/v1/finance/funds", body=schemas.FundIn, roles=CATALOGUE, status=201)
    def establish_fund(self, request: Any, body: dict[str, Any]) -> Any:
        """Establish a risk compensation fund with its leverage limit and floor."""
        self.store.principal.require_scope(district=body["district"])
        data = dict(body)
        fund_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            uow.create(RiskFund, fund_id).establish(**data)
            return {"fund_id": fund_id}

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/finance/funds/<fund_id>/top-ups",
        body=schemas.TopUpIn,
        roles=CATALOGUE,
        status=201,
    )
    def top_up_fund(self, request: Any, fund_id: str, body: dict[str, Any]) -> Any:
        """Pay money into the risk fund (lifts a below-floor block when enough)."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            fund = uow.get(RiskFund, fund_id)
            self.store.principal.require_scope(district=fund.district)
            outstanding = _sum_exposure(uow.connection, loans.c.fund_id == fund_id)
            fund.top_up(body["amount_fen"], outstanding, body["topped_up_on"])
            return {"fund_id": fund_id, "balance_fen": fund.balance_fen}

        return self.store.run(decide)

    def _fund_parties(self, db: Connection, fund_id: str) -> set[str]:
        """The banks that share the risk of a fund's guarantees: parties of a scheme on it."""
        store = self.store.events
        rows = db.execute(
            select(events_table).where(
                events_table.c.stream_type == RiskScheme.stream_type,
                events_table.c.type == "RiskSchemeDefined",
            )
        ).all()
        return {
            party["party_id"]
            for event in (store.recorded(row) for row in rows)
            if event.data["fund_id"] == fund_id
            for party in event.data["parties"]
            if party["party_type"] == "bank"
        }

    @query("/api/v1/finance/funds/<fund_id>", roles=FUND_READERS)
    def fund_leverage(self, request: Any, fund_id: str) -> dict[str, Any]:
        """A fund's balance, outstanding guarantees, leverage and floor: for the guarantor, the
        district's admin and ops, and a bank only if it is a party of a scheme on the fund."""
        principal = self.store.principal
        with self.store.events.engine.connect() as db:
            row = db.execute(select(funds).where(funds.c.fund_id == fund_id)).first()
            if row is None:
                raise NotFound(f"fund {fund_id!r} does not exist")
            principal.require_scope(district=row.district)
            if principal.role == "bank" and principal.bank not in self._fund_parties(db, fund_id):
                raise Forbidden(
                    f"bank {principal.bank!r} is not a party of fund {fund_id!r}",
                    errors={"bank": ["not a party of the fund"]},
                )
            outstanding = _sum_exposure(db, loans.c.fund_id == fund_id)
        limit = row.leverage_times * row.balance_fen
        return {
            "fund_id": fund_id,
            "balance_fen": row.balance_fen,
            "outstanding_guaranteed_fen": outstanding,
            "leverage_times": row.leverage_times,
            "limit_fen": limit,
            "headroom_fen": max(limit - outstanding, 0),
            "leverage": f"{outstanding / row.balance_fen:.2f}" if row.balance_fen else None,
            "floor_bp": row.floor_bp,
            "below_floor": row.below_floor or row.balance_fen * 10_000 < row.floor_bp * outstanding,
        }

    @command(
        "POST", "/api/v1/finance/guarantors", body=schemas.GuarantorIn, roles=CATALOGUE, status=201
    )
    def define_guarantor(self, request: Any, body: dict[str, Any]) -> Any:
        """A guarantor's profile: its net assets and leverage (10 to 15 times) bound the
        guarantees it may approve, one borrower's at most 10 % of the net assets."""
        self.store.principal.require_scope(district=body["district"])
        data = dict(body)
        guarantor_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            uow.create(GuarantorProfile, guarantor_stream(guarantor_id)).define(
                guarantor_id, **data
            )
            return {"guarantor_id": guarantor_id}

        return self.store.run(decide)

    @command("POST", "/api/v1/finance/schemes", body=schemas.SchemeIn, roles=CATALOGUE, status=201)
    def define_scheme(self, request: Any, body: dict[str, Any]) -> Any:
        """Define a risk-sharing scheme: parties and shares summing to 100 %."""
        self.store.principal.require_scope(district=body["district"])
        data = dict(body)
        scheme_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            uow.get(RiskFund, data["fund_id"])
            uow.create(RiskScheme, scheme_id).define(**data)
            return {"scheme_id": scheme_id}

        return self.store.run(decide)

    @command(
        "POST", "/api/v1/finance/products", body=schemas.ProductIn, roles=CATALOGUE, status=201
    )
    def define_product(self, request: Any, body: dict[str, Any]) -> Any:
        """Define a loan product (共富贷, 虾蟹贷, ...)."""
        self.store.principal.require_scope(district=body["district"])
        data = dict(body)
        product_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            if uow.find(RiskScheme, data["scheme_id"]) is None:
                raise DomainError(f"scheme {data['scheme_id']!r} does not exist", "scheme_id")
            uow.create(LoanProduct, product_id).define(**data)
            return {"product_id": product_id}

        return self.store.run(decide)

    # -- application and guarantee -------------------------------------------------------------

    @command("POST", "/api/v1/finance/loans", body=schemas.ApplyIn, roles=APPLICANTS, status=201)
    def apply_for_loan(self, request: Any, body: dict[str, Any]) -> Any:
        """A borrower applies for a guaranteed loan (the loan's id is the application's)."""
        self.store.principal.require_scope(village=body["village_id"], bank=body["bank_code"])
        data = dict(body)
        loan_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            village = directory.require_village(uow.connection, data["village_id"])
            self.store.principal.require_scope(district=village.district)
            _require_bank(uow.connection, data["bank_code"])
            product = uow.find(LoanProduct, data.pop("product_id"))
            if product is None:
                raise DomainError("no such loan product", "product_id")
            loan = uow.create(Loan, loan_id)
            loan.apply_for(product, district=village.district, **data)
            return _loan_view(loan)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/recommendations",
        body=schemas.RecommendIn,
        roles=RECOMMENDERS,
        status=201,
    )
    def recommend(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Recommend the applicant (whitelist)."""
        by = self.store.principal.subject
        return self._loan_command(
            loan_id, lambda uow, loan: loan.recommend(by, body["note"], body["recommended_on"])
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/due-diligence",
        body=schemas.DiligenceIn,
        roles=[*GUARANTORS, *LENDERS],
        status=201,
    )
    def due_diligence(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Record the outcome of the due-diligence investigation."""
        return self._loan_command(
            loan_id,
            lambda uow, loan: loan.complete_due_diligence(
                body["passed"], body["note"], body["completed_on"]
            ),
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/approval",
        body=schemas.ApproveIn,
        roles=GUARANTORS,
        status=201,
    )
    def approve_guarantee(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Approve the guarantee: within the principal, the borrower's caps, the fee cap and the
        risk fund's leverage."""

        def act(uow: UnitOfWork, loan: Loan) -> None:
            product = uow.get(LoanProduct, loan.product_id)
            scheme = uow.get(RiskScheme, product.data["scheme_id"])
            fund = uow.get(RiskFund, scheme.fund_id)
            db = uow.connection
            # One lock order (fund, borrower, guarantor) so concurrent approvals cannot deadlock.
            _lock(db, funds, funds.c.fund_id, fund.id)
            _lock(db, borrowers, borrowers.c.borrower_id, loan.borrower_id)
            fund_outstanding = _sum_exposure(db, loans.c.fund_id == fund.id)
            borrower_outstanding = _sum_exposure(db, loans.c.borrower_id == loan.borrower_id)
            fund.ensure_can_guarantee(fund_outstanding, body["guaranteed_fen"])
            guarantor_id = body["guarantor_id"]
            profile = uow.find(GuarantorProfile, guarantor_stream(guarantor_id))
            if profile is not None:  # a guarantor without a profile has no net-asset limits
                _lock(db, guarantors, guarantors.c.guarantor_id, guarantor_id)
                by_guarantor = loans.c.guarantor_id == guarantor_id
                profile.ensure_can_guarantee(
                    _sum_exposure(db, by_guarantor),
                    _sum_exposure(db, by_guarantor, loans.c.borrower_id == loan.borrower_id),
                    body["guaranteed_fen"],
                )
            loan.approve(
                product=product,
                scheme=scheme,
                guarantor_id=body["guarantor_id"],
                guaranteed_fen=body["guaranteed_fen"],
                fee_rate_bp=body["fee_rate_bp"],
                borrower_outstanding_fen=borrower_outstanding,
                on=body["approved_on"],
            )

        return self._loan_command(loan_id, act)

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/rejection",
        body=schemas.RejectIn,
        roles=GUARANTORS,
        status=201,
    )
    def reject_guarantee(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Decline the guarantee."""
        return self._loan_command(
            loan_id, lambda uow, loan: loan.reject(body["reason"], body["rejected_on"])
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/guarantee-contract",
        body=schemas.ContractIn,
        roles=GUARANTORS,
        status=201,
    )
    def sign_guarantee_contract(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Sign the guarantee contract with the bank."""
        return self._loan_command(
            loan_id, lambda uow, loan: loan.sign_contract(body["id"], body["signed_on"])
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/counter-guarantees",
        body=schemas.CounterGuaranteeIn,
        roles=GUARANTORS,
        status=201,
    )
    def register_counter_guarantee(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Register a counter-guarantee given by the borrower."""
        return self._loan_command(
            loan_id,
            lambda uow, loan: loan.register_counter_guarantee(
                body["id"], body["kind"], body["value_fen"], body["registered_on"]
            ),
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/pledges",
        body=schemas.PledgeIn,
        roles=GUARANTORS,
        status=201,
    )
    def pledge_land_right(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Pledge a filed, active, unpledged land transfer contract for the loan."""

        def act(uow: UnitOfWork, loan: Loan) -> None:
            record = uow.find(ContractPledge, pledge_stream(body["contract_id"]))
            if record is None:
                record = uow.create(ContractPledge, pledge_stream(body["contract_id"]))
            record.pledge(
                pledge_id=body["id"],
                loan=loan,
                contract=_land_contract(uow.connection, body["contract_id"]),
                contract_id=body["contract_id"],
                product=uow.get(LoanProduct, loan.product_id),
                appraised_value_fen=body["appraised_value_fen"],
                amount_fen=body["amount_fen"],
                owner_consent_on=body["owner_consent_on"],
                on=body["pledged_on"],
            )

        return self._loan_command(loan_id, act)

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/disbursement",
        body=schemas.DisburseIn,
        roles=LENDERS,
        status=201,
    )
    def disburse(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """The bank pays out: only after the guarantee contract and a required pledge."""

        def act(uow: UnitOfWork, loan: Loan) -> None:
            row = _active_pledge(uow.connection, loan_id)
            pledge = Pledge(row.pledge_id, row.max_maturity_on) if row is not None else None
            loan.disburse(body["disbursed_on"], pledge)

        return self._loan_command(loan_id, act)

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/fees",
        body=schemas.FeeIn,
        roles=GUARANTORS,
        status=201,
    )
    def charge_fee(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Charge the guarantee fee for the loan's term."""
        return self._loan_command(loan_id, lambda uow, loan: loan.charge_fee(body["charged_on"]))

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/repayments",
        body=schemas.RepaymentIn,
        roles=LENDERS,
        status=201,
    )
    def repay(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Record a repayment; the loan closes when no principal is left."""
        return self._loan_command(
            loan_id,
            lambda uow, loan: loan.repay(
                body["id"], body["principal_fen"], body["interest_fen"], body["repaid_on"]
            ),
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/recoveries",
        body=schemas.RecoveryIn,
        roles=GUARANTORS,
        status=201,
    )
    def recover(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Money recovered after compensation, returned to the parties pro rata."""
        return self._loan_command(
            loan_id,
            lambda uow, loan: loan.recover(body["id"], body["amount_fen"], body["received_on"]),
        )

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/write-off",
        body=schemas.WriteOffIn,
        roles=GUARANTORS,
        status=201,
    )
    def write_off(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Write off what was not recovered and close the loan."""
        return self._loan_command(loan_id, lambda uow, loan: loan.write_off(body["written_off_on"]))

    @command(
        "POST",
        "/api/v1/finance/loans/<loan_id>/pledge-release",
        body=schemas.ReleaseIn,
        roles=GUARANTORS,
        status=201,
    )
    def release_pledge(self, request: Any, loan_id: str, body: dict[str, Any]) -> Any:
        """Release the closed loan's land-right pledge."""

        def act(uow: UnitOfWork, loan: Loan) -> None:
            row = _active_pledge(uow.connection, loan_id)
            if row is None:
                raise DomainError(f"loan {loan_id} has no active pledge", "loan_id")
            record = uow.get(ContractPledge, pledge_stream(row.contract_id))
            record.release(loan, body["released_on"])

        return self._loan_command(loan_id, act)

    # -- time-driven facts ---------------------------------------------------------------------

    @command("POST", "/api/v1/finance/sweeps", body=schemas.SweepIn, roles=SWEEPERS)
    def sweep(self, request: Any, body: dict[str, Any]) -> Any:
        """As of a day: loans becoming overdue, compensation once overdue long enough, funds
        falling below their floor. Each change is emitted once however often this runs."""
        as_of: date = body["as_of"]

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            db = uow.connection
            due = db.execute(
                select(loans.c.loan_id)
                .where(loans.c.status.in_(("disbursed", "overdue")), loans.c.maturity_on < as_of)
                .order_by(loans.c.loan_id)
            ).scalars()
            touched: dict[str, Loan] = {}
            # Each aggregate this sweep loaded, with its version before: what changed is the rest.
            seen: dict[str, tuple[Any, int]] = {}
            for loan_id in due:
                loan = uow.get(Loan, loan_id)
                seen.setdefault(loan.id, (loan, loan.version))
                product = uow.get(LoanProduct, loan.product_id)
                fund_part = loan.sweep(as_of, product, uow.get(RiskScheme, loan.scheme_id))
                touched[loan_id] = loan
                if fund_part:
                    fund = uow.get(RiskFund, loan.fund_id)
                    seen.setdefault(fund.id, (fund, fund.version))
                    fund.draw(loan_id, f"{loan_id}.compensation", fund_part, as_of)
            for fund_id in db.execute(select(funds.c.fund_id).order_by(funds.c.fund_id)).scalars():
                fund = uow.get(RiskFund, fund_id)
                seen.setdefault(fund.id, (fund, fund.version))
                outstanding = _sum_exposure(
                    db, loans.c.fund_id == fund_id, loans.c.loan_id.not_in(list(touched))
                ) + sum(t.exposure_fen for t in touched.values() if t.fund_id == fund_id)
                fund.check_floor(outstanding, as_of)
            changes = sum(aggregate.version - before for aggregate, before in seen.values())
            if changes > MAX_EVENTS_PER_TRANSACTION:
                raise DomainError("too many changes for one sweep; sweep earlier days first")
            return {"as_of": as_of.isoformat(), "events": changes}

        return self.store.run(decide)

    # -- loan queries --------------------------------------------------------------------------

    @query("/api/v1/finance/loans/<loan_id>", roles=LOAN_READERS)
    def get_loan(self, request: Any, loan_id: str) -> dict[str, Any]:
        """A loan's current state."""
        loan = self.store.get(Loan, loan_id)
        self._scope_loan(loan)
        return _loan_view(loan)

    @query("/api/v1/finance/loans/<loan_id>/history", roles=LOAN_READERS)
    def loan_history(self, request: Any, loan_id: str) -> dict[str, Any]:
        """Every event of a loan, its pledges' included, in order."""
        loan = self.store.get(Loan, loan_id)
        self._scope_loan(loan)
        store = self.store.events
        history = list(store.load(loan_id))
        with store.engine.connect() as db:
            contracts = db.execute(
                select(pledges.c.contract_id).where(pledges.c.loan_id == loan_id).distinct()
            ).scalars()
            for contract_id in list(contracts):
                history += [
                    e
                    for e in store.load(pledge_stream(contract_id), connection=db)
                    if e.data["loan_id"] == loan_id
                ]
        history.sort(key=lambda e: e.position)
        return {"loan_id": loan_id, "events": [e.envelope() for e in history]}

    @query("/api/v1/finance/exposure", args=schemas.ExposureArgs, roles=LOAN_READERS)
    def exposure(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """Outstanding guaranteed amount per bank, guarantor, scheme, fund or borrower."""
        column = getattr(loans.c, f"{args['by']}_id" if args["by"] != "bank" else "bank_code")
        statement = (
            select(column, func.sum(loans.c.exposure_fen), func.count())
            .where(loans.c.status.in_(GUARANTEED_STATES))
            .group_by(column)
            .order_by(column)
        )
        bank = self.store.principal.bank
        if bank is not None:
            statement = statement.where(loans.c.bank_code == bank)
        with self.store.events.engine.connect() as db:
            rows = db.execute(statement).all()
        return {
            "by": args["by"],
            "exposure": [
                {"key": key, "outstanding_guaranteed_fen": int(total), "loans": count}
                for key, total, count in rows
            ],
        }

    @query("/api/v1/finance/overdue", roles=LOAN_READERS)
    def overdue(self, request: Any) -> dict[str, Any]:
        """Loans overdue now (found by sweeps), oldest first."""
        statement = (
            select(loans)
            .where(loans.c.status == "overdue")
            .order_by(loans.c.overdue_on, loans.c.loan_id)
        )
        bank = self.store.principal.bank
        if bank is not None:
            statement = statement.where(loans.c.bank_code == bank)
        with self.store.events.engine.connect() as db:
            rows = db.execute(statement).all()
        return {
            "loans": [
                {
                    "loan_id": r.loan_id,
                    "bank_code": r.bank_code,
                    "borrower_id": r.borrower_id,
                    "village_id": r.village_id,
                    "outstanding_principal_fen": r.outstanding_fen,
                    "maturity_on": r.maturity_on.isoformat(),
                    "overdue_on": r.overdue_on.isoformat(),
                }
                for r in rows
            ]
        }

    @query("/api/v1/finance/bank-feed", args=schemas.FeedArgs, roles=["bank", "ops"])
    def bank_feed(self, request: Any, args: dict[str, Any]) -> dict[str, Any]:
        """The bank feed for catching up: a bank token sees only its own bank's events, in
        order, after a position (the ``position`` of the last event it stored)."""
        principal = self.store.principal
        if principal.role == "bank" and not principal.bank:
            raise Forbidden("a bank token must carry its bank code", errors={"bank": ["missing"]})
        store = self.store.events
        statement = (
            select(bank_feed.c.position)
            .where(bank_feed.c.position > args["after"])
            .order_by(bank_feed.c.position)
            .limit(args["limit"])
        )
        if principal.bank:
            statement = statement.where(bank_feed.c.bank_code == principal.bank)
        with store.engine.connect() as db:
            positions = list(db.execute(statement).scalars())
            # The feed index commits with its events. Serve only positions the gap-safe log
            # already shows: nothing can later appear below them, so ?after= never skips.
            while positions and not store.read_all(after=positions[-1] - 1, limit=1, connection=db):
                positions.pop()
            rows = db.execute(
                select(events_table)
                .where(events_table.c.position.in_(positions))
                .order_by(events_table.c.position)
            ).all()
        page = [store.recorded(row) for row in rows]
        return {
            "events": [bank_envelope(e) for e in page],
            "next_after": page[-1].position if page else args["after"],
        }

    # -- collective income ---------------------------------------------------------------------

    def _entry(self, body: dict[str, Any], kind: str) -> Any:
        self.store.principal.require_scope(village=body["village_id"])
        data = dict(body)
        entry_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            village = directory.require_village(uow.connection, data["village_id"])
            self.store.principal.require_scope(district=village.district)
            entry = uow.create(CollectiveEntry, entry_id)
            if kind == "income":
                entry.record_income(
                    district=village.district, source="manual", source_event_id=None, **data
                )
            else:
                entry.record_expense(district=village.district, **data)
            return {"entry_id": entry_id, "village_id": data["village_id"]}

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/finance/collective/incomes",
        body=schemas.EntryIn,
        roles=COLLECTIVE,
        status=201,
    )
    def record_income(self, request: Any, body: dict[str, Any]) -> Any:
        """Record income of a village collective."""
        return self._entry(body, "income")

    @command(
        "POST",
        "/api/v1/finance/collective/expenses",
        body=schemas.EntryIn,
        roles=COLLECTIVE,
        status=201,
    )
    def record_expense(self, request: Any, body: dict[str, Any]) -> Any:
        """Record an expense of a village collective."""
        return self._entry(body, "expense")

    def _record_fed_income(
        self,
        event: RecordedEvent,
        db: Connection,
        *,
        source: str,
        village_id: str,
        amount_fen: int,
        category: str,
        on: str,
    ) -> None:
        """Income from another service's event, in the inbox's transaction: exactly once."""
        if amount_fen <= 0:
            return
        village = directory.find_village(db, village_id)
        district = (
            village.district
            if village
            else event.data.get("district") or event.metadata.get("district") or ""
        )
        context = CommandContext(
            correlation_id=event.metadata.get("correlation_id") or str(event.event_id),
            causation_id=str(event.event_id),
            actor=f"{source}-events",
            district=district or None,
        )

        def decide(uow: UnitOfWork) -> None:
            entry = uow.create(CollectiveEntry, f"{source}.{event.event_id}")
            entry.record_income(
                village_id=village_id,
                district=district,
                amount_fen=amount_fen,
                category=category,
                source=source,
                source_event_id=str(event.event_id),
                recorded_on=date.fromisoformat(on),
                note=f"{event.type} {event.stream_id}",
            )

        # The handler's own transaction: its appends number after the batch's earlier ones.
        decide_within(self.store.events, EventStore.transaction_of(db), context, decide)

    @subscribe("land", [*LAND_EVENTS, "RentPaid", "ManagementFeeCollected"])
    def on_land_event(self, event: RecordedEvent, db: Connection) -> None:
        data = event.data
        if event.type in LAND_EVENTS:
            LAND_CONTRACTS.apply(event, db)
        elif event.type == "ManagementFeeCollected":
            self._record_fed_income(
                event,
                db,
                source="land",
                village_id=data["village_id"],
                amount_fen=data["amount_fen"],
                category="management_fee",
                on=data["collected_on"],
            )
        else:  # RentPaid: the collective's income is the part paid to the collective
            collective = sum(
                s["amount_fen"]
                for s in data.get("shares", ())
                if s.get("payee_type") == "collective"
            )
            self._record_fed_income(
                event,
                db,
                source="land",
                village_id=data["village_id"],
                amount_fen=collective,
                category="land_rent",
                on=data["paid_on"],
            )

    @subscribe("commerce", ["ProducerSettled"])
    def on_producer_settled(self, event: RecordedEvent, db: Connection) -> None:
        data = event.data
        if data.get("producer_type") == "collective":
            self._record_fed_income(
                event,
                db,
                source="commerce",
                village_id=data["village_id"],
                amount_fen=data["amount_fen"],
                category="sales",
                on=data["settled_on"],
            )

    @subscribe("trusteeship", ["ServiceFeeSettled"])
    def on_service_fee_settled(self, event: RecordedEvent, db: Connection) -> None:
        data = event.data
        if data.get("collective_village_id"):
            self._record_fed_income(
                event,
                db,
                source="trusteeship",
                village_id=data["collective_village_id"],
                amount_fen=data["amount_fen"],
                category="trusteeship_service",
                on=data["settled_on"],
            )

    def _village_totals(self, db: Connection, village_ids: list[str]) -> dict[str, Any]:
        rows = db.execute(
            select(
                entries.c.village_id,
                entries.c.kind,
                entries.c.source,
                func.sum(entries.c.amount_fen),
            )
            .where(entries.c.village_id.in_(village_ids))
            .group_by(entries.c.village_id, entries.c.kind, entries.c.source)
        ).all()
        totals: dict[str, Any] = {
            v: {"income_fen": 0, "expense_fen": 0, "income_by_source": {}} for v in village_ids
        }
        for village_id, kind, source, amount in rows:
            item = totals[village_id]
            item[f"{kind}_fen"] += int(amount)
            if kind == "income":
                item["income_by_source"][source] = int(amount)
        return totals

    @query("/api/v1/finance/collective/villages/<village_id>", roles=COLLECTIVE_READERS)
    def village_income(self, request: Any, village_id: str) -> dict[str, Any]:
        """A village collective's income, expenses and entries."""
        self.store.principal.require_scope(village=village_id)
        with self.store.events.engine.connect() as db:
            totals = self._village_totals(db, [village_id])[village_id]
            rows = db.execute(
                select(entries)
                .where(entries.c.village_id == village_id)
                .order_by(entries.c.recorded_on, entries.c.entry_id)
            ).all()
            planned = db.execute(
                select(balances.c.planned_fen).where(balances.c.village_id == village_id)
            ).scalar()
        return {
            "village_id": village_id,
            **totals,
            "planned_fen": planned or 0,
            "entries": [
                {
                    "entry_id": r.entry_id,
                    "kind": r.kind,
                    "amount_fen": r.amount_fen,
                    "category": r.category,
                    "source": r.source,
                    "source_event_id": r.source_event_id,
                    "recorded_on": r.recorded_on.isoformat(),
                }
                for r in rows
            ],
        }

    @query(
        "/api/v1/finance/collective/clusters/<cluster_id>",
        args=schemas.OnArgs,
        roles=COLLECTIVE_READERS,
    )
    def cluster_income(self, request: Any, cluster_id: str, args: dict[str, Any]) -> Any:
        """Collective income of the villages in a cluster on a day, per village and in total."""
        with self.store.events.engine.connect() as db:
            members = directory.members_of(db, cluster_id, args["on"])
            villages = [m for m in members if directory.find_village(db, m) is not None]
            totals = self._village_totals(db, villages) if villages else {}
        return {
            "cluster_id": cluster_id,
            "on": args["on"].isoformat(),
            "income_fen": sum(t["income_fen"] for t in totals.values()),
            "expense_fen": sum(t["expense_fen"] for t in totals.values()),
            "villages": [{"village_id": v, **totals[v]} for v in villages],
        }

    # -- distribution --------------------------------------------------------------------------

    def _village_scoped(self, village_id: str) -> None:
        self.store.principal.require_scope(village=village_id)

    @command(
        "POST",
        "/api/v1/finance/distribution/policies",
        body=schemas.PolicyIn,
        roles=COLLECTIVE,
        status=201,
    )
    def define_policy(self, request: Any, body: dict[str, Any]) -> Any:
        """A collective's distribution policy: bucket shares summing to 100 %."""
        self._village_scoped(body["village_id"])
        data = dict(body)
        policy_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            directory.require_village(uow.connection, data["village_id"])
            policy = uow.create(DistributionPolicy, policy_id)
            policy.define(**data)
            return {"policy_id": policy_id, "buckets": policy.buckets}

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/finance/distribution/registers",
        body=schemas.RegisterIn,
        roles=COLLECTIVE,
        status=201,
    )
    def define_register(self, request: Any, body: dict[str, Any]) -> Any:
        """A collective's equity register: shares summing to exactly 100 %."""
        self._village_scoped(body["village_id"])
        data = dict(body)
        register_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            directory.require_village(uow.connection, data["village_id"])
            uow.create(EquityRegister, register_id).define(**data)
            return {"register_id": register_id}

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/finance/distribution/plans",
        body=schemas.PlanIn,
        roles=COLLECTIVE,
        status=201,
    )
    def draft_plan(self, request: Any, body: dict[str, Any]) -> Any:
        """Draft a plan: at most the undistributed income less expenses, split exactly."""
        self._village_scoped(body["village_id"])
        data = dict(body)
        plan_id = data.pop("id")

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            db = uow.connection
            village = directory.require_village(db, data["village_id"])
            policy = uow.find(DistributionPolicy, data["policy_id"])
            if policy is None:
                raise DomainError("no such policy", "policy_id")
            register = uow.find(EquityRegister, data["register_id"])
            if register is None:
                raise DomainError("no such register", "register_id")
            ensure_balance(db, village.village_id)
            row = db.execute(
                select(balances)
                .where(balances.c.village_id == village.village_id)
                .with_for_update()
            ).one()
            plan = uow.create(DistributionPlan, plan_id)
            plan.draft(
                policy=policy,
                register=register,
                village_id=village.village_id,
                district=village.district,
                distributable_fen=data["distributable_fen"],
                available_fen=row.income_fen - row.expense_fen - row.planned_fen,
                on=data["drafted_on"],
            )
            return self._plan_view(plan, plan._pending[-1].data)

        return self.store.run(decide)

    @staticmethod
    def _plan_view(plan: DistributionPlan, drafted: dict[str, Any]) -> dict[str, Any]:
        return {
            "plan_id": plan.id,
            "status": plan.status,
            "village_id": plan.village_id,
            "distributable_fen": drafted["distributable_fen"],
            "buckets": drafted["buckets"],
            "payouts": drafted["payouts"],
        }

    def _plan_command(self, plan_id: str, act: Any) -> Any:
        def decide(uow: UnitOfWork) -> dict[str, Any]:
            plan = uow.get(DistributionPlan, plan_id)
            self._village_scoped(plan.village_id)
            act(uow, plan)
            return {"plan_id": plan_id, "status": plan.status}

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/finance/distribution/plans/<plan_id>/approval",
        body=schemas.PlanApproveIn,
        roles=COLLECTIVE,
        status=201,
    )
    def approve_plan(self, request: Any, plan_id: str, body: dict[str, Any]) -> Any:
        """Record the meeting's approval: quorum and majority checked."""
        return self._plan_command(
            plan_id,
            lambda uow, plan: plan.approve(
                body["meeting_type"],
                body["eligible"],
                body["present"],
                body["in_favour"],
                body["approved_on"],
            ),
        )

    @command(
        "POST",
        "/api/v1/finance/distribution/plans/<plan_id>/publicity",
        body=schemas.PublicityIn,
        roles=COLLECTIVE,
        status=201,
    )
    def publicise_plan(self, request: Any, plan_id: str, body: dict[str, Any]) -> Any:
        """Publicise an approved plan for the policy's publicity days."""

        def act(uow: UnitOfWork, plan: DistributionPlan) -> None:
            policy_id = uow.store.load(plan_id)[0].data["policy_id"]
            policy = uow.get(DistributionPolicy, policy_id)
            plan.publicise(policy.publicity_days, body["publicised_on"])

        return self._plan_command(plan_id, act)

    @command(
        "POST",
        "/api/v1/finance/distribution/plans/<plan_id>/payouts",
        body=schemas.PayIn,
        roles=COLLECTIVE,
        status=201,
    )
    def pay_plan(self, request: Any, plan_id: str, body: dict[str, Any]) -> Any:
        """Pay every holder's dividend of an approved, publicised plan."""
        return self._plan_command(plan_id, lambda uow, plan: plan.pay(body["paid_on"]))

    @query("/api/v1/finance/distribution/plans/<plan_id>", roles=COLLECTIVE_READERS)
    def get_plan(self, request: Any, plan_id: str) -> dict[str, Any]:
        """A plan: buckets, payouts and status."""
        plan = self.store.get(DistributionPlan, plan_id)
        self._village_scoped(plan.village_id)
        drafted = self.store.events.load(plan_id)[0].data
        view = self._plan_view(plan, drafted)
        with self.store.events.engine.connect() as db:
            paid = db.execute(select(plans.c.paid_fen).where(plans.c.plan_id == plan_id))
            view["paid_fen"] = paid.scalar() or 0
        return view
