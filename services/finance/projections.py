"""Read models of the finance service.

Inline (from finance's own events): loans with their outstanding exposure, borrowers and funds
(rows that commands lock to serialise cap checks on PostgreSQL), pledges, the bank feed index,
collective entries and balances, distribution plans. Fed by the land service: the transfer
contracts a pledge may use.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from services.finance.domain.loans import GUARANTEED_STATES
from services.finance.events import LOAN_EVENTS
from shared.eventstore import RecordedEvent
from shared.projections import Projection

model = MetaData()
loans = Table(
    "finance_loans",
    model,
    Column("loan_id", String(64), primary_key=True),
    Column("district", String(64), nullable=False),
    Column("product_id", String(64), nullable=False),
    Column("borrower_id", String(64), nullable=False, index=True),
    Column("village_id", String(64), nullable=False),
    Column("bank_code", String(32), nullable=False, index=True),
    Column("guarantor_id", String(64)),
    Column("scheme_id", String(64)),
    Column("fund_id", String(64)),
    Column("status", String(16), nullable=False),
    Column("principal_fen", BigInteger, nullable=False),
    Column("guaranteed_fen", BigInteger, nullable=False),
    Column("outstanding_fen", BigInteger, nullable=False),
    Column("exposure_fen", BigInteger, nullable=False),
    Column("applied_on", Date, nullable=False),
    Column("disbursed_on", Date),
    Column("maturity_on", Date),
    Column("overdue_on", Date),
    Column("loss_fen", BigInteger, nullable=False),
    Column("recovered_fen", BigInteger, nullable=False),
)
borrowers = Table(
    "finance_borrowers",
    model,
    Column("borrower_id", String(64), primary_key=True),
)
funds = Table(
    "finance_funds",
    model,
    Column("fund_id", String(64), primary_key=True),
    Column("district", String(64), nullable=False),
    Column("balance_fen", BigInteger, nullable=False),
    Column("leverage_times", Integer, nullable=False),
    Column("floor_bp", Integer, nullable=False),
    Column("below_floor", Boolean, nullable=False),
)
guarantors = Table(
    "finance_guarantors",
    model,
    Column("guarantor_id", String(64), primary_key=True),
    Column("net_assets_fen", BigInteger, nullable=False),
)
pledges = Table(
    "finance_pledges",
    model,
    Column("pledge_id", String(64), primary_key=True),
    Column("contract_id", String(64), nullable=False, index=True),
    Column("loan_id", String(64), nullable=False, index=True),
    Column("bank_code", String(32), nullable=False),
    Column("active", Boolean, nullable=False),
    Column("max_maturity_on", Date, nullable=False),
)
bank_feed = Table(
    "finance_bank_feed",
    model,
    Column("position", BigInteger, primary_key=True),
    Column("bank_code", String(32), nullable=False),
    Column("loan_id", String(64), nullable=False),
    Index("ix_finance_bank_feed_bank", "bank_code", "position"),
)
entries = Table(
    "finance_entries",
    model,
    Column("entry_id", String(200), primary_key=True),
    Column("village_id", String(64), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("amount_fen", BigInteger, nullable=False),
    Column("category", String(64), nullable=False),
    Column("source", String(16), nullable=False),
    Column("source_event_id", String(64)),
    Column("recorded_on", Date, nullable=False),
)
balances = Table(
    "finance_collective_balances",
    model,
    Column("village_id", String(64), primary_key=True),
    Column("income_fen", BigInteger, nullable=False),
    Column("expense_fen", BigInteger, nullable=False),
    Column("planned_fen", BigInteger, nullable=False),
)
plans = Table(
    "finance_plans",
    model,
    Column("plan_id", String(64), primary_key=True),
    Column("village_id", String(64), nullable=False, index=True),
    Column("status", String(16), nullable=False),
    Column("distributable_fen", BigInteger, nullable=False),
    Column("paid_fen", BigInteger, nullable=False),
    Column("drafted_on", Date, nullable=False),
)


def insert_ignore(db: Connection, table: Table, **values: Any) -> None:
    """INSERT unless the primary key exists (concurrent first writers must not fail)."""
    insert = pg_insert if db.dialect.name == "postgresql" else sqlite_insert
    db.execute(insert(table).values(**values).on_conflict_do_nothing())


def _day(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


# Loan event type -> the status it leaves the loan in (None: unchanged).
LOAN_STATUS = {
    "GuaranteeApproved": "approved",
    "GuaranteeRejected": "rejected",
    "GuaranteeContractSigned": "contracted",
    "LoanDisbursed": "disbursed",
    "LoanOverdue": "overdue",
    "CompensationPaid": "compensated",
    "LoanClosed": "closed",
}


class FinanceViews(Projection):
    metadata = model
    handles = frozenset(
        {
            *LOAN_EVENTS,
            "RiskFundEstablished",
            "GuarantorProfileDefined",
            "RiskFundToppedUp",
            "RiskFundDrawn",
            "RiskFundBelowFloor",
            "IncomeRecorded",
            "ExpenseRecorded",
            "DistributionPlanDrafted",
            "DividendPaid",
        }
    )

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        data = event.data
        if event.type in LOAN_EVENTS:
            db.execute(
                bank_feed.insert().values(
                    position=event.position, bank_code=data["bank_code"], loan_id=data["loan_id"]
                )
            )
            self._loan(event.type, data, db)
        elif event.type.startswith("RiskFund"):
            self._fund(event.type, data, db)
        elif event.type == "GuarantorProfileDefined":
            db.execute(
                guarantors.insert().values(
                    guarantor_id=data["guarantor_id"], net_assets_fen=data["net_assets_fen"]
                )
            )
        else:
            self._collective(event.type, data, db)

    # -- loans ---------------------------------------------------------------------------------

    def _loan(self, type_: str, data: dict[str, Any], db: Connection) -> None:
        loan_id = data["loan_id"]
        if type_ == "LoanApplied":
            insert_ignore(db, borrowers, borrower_id=data["borrower_id"])
            db.execute(
                loans.insert().values(
                    loan_id=loan_id,
                    district=data["district"],
                    product_id=data["product_id"],
                    borrower_id=data["borrower_id"],
                    village_id=data["village_id"],
                    bank_code=data["bank_code"],
                    status="applied",
                    principal_fen=data["principal_fen"],
                    guaranteed_fen=0,
                    outstanding_fen=0,
                    exposure_fen=0,
                    applied_on=_day(data["applied_on"]),
                    loss_fen=0,
                    recovered_fen=0,
                )
            )
            return
        if type_ == "LandRightPledged":
            db.execute(
                pledges.insert().values(
                    pledge_id=data["pledge_id"],
                    contract_id=data["contract_id"],
                    loan_id=loan_id,
                    bank_code=data["bank_code"],
                    active=True,
                    max_maturity_on=_day(data["max_maturity_on"]),
                )
            )
            return
        if type_ == "PledgeReleased":
            db.execute(
                update(pledges).where(pledges.c.pledge_id == data["pledge_id"]).values(active=False)
            )
            return
        changes: dict[str, Any] = {}
        if type_ in LOAN_STATUS:
            changes["status"] = LOAN_STATUS[type_]
        if type_ == "GuaranteeApproved":
            changes.update(
                guarantor_id=data["guarantor_id"],
                scheme_id=data["scheme_id"],
                fund_id=data["fund_id"],
                guaranteed_fen=data["guaranteed_fen"],
            )
        elif type_ == "LoanDisbursed":
            changes.update(
                outstanding_fen=data["principal_fen"],
                disbursed_on=_day(data["disbursed_on"]),
                maturity_on=_day(data["maturity_on"]),
            )
        elif type_ == "RepaymentReceived":
            changes["outstanding_fen"] = data["outstanding_principal_fen"]
        elif type_ == "LoanOverdue":
            changes["overdue_on"] = _day(data["overdue_on"])
        elif type_ == "CompensationPaid":
            changes["loss_fen"] = data["loss_fen"]
        elif type_ == "RecoveryReceived":
            changes["recovered_fen"] = loans.c.recovered_fen + data["amount_fen"]
        if not changes:
            return
        db.execute(update(loans).where(loans.c.loan_id == loan_id).values(**changes))
        row = db.execute(select(loans).where(loans.c.loan_id == loan_id)).one()
        db.execute(
            update(loans).where(loans.c.loan_id == loan_id).values(exposure_fen=exposure(row))
        )

    # -- the risk fund -------------------------------------------------------------------------

    def _fund(self, type_: str, data: dict[str, Any], db: Connection) -> None:
        where = funds.c.fund_id == data["fund_id"]
        if type_ == "RiskFundEstablished":
            db.execute(
                funds.insert().values(
                    fund_id=data["fund_id"],
                    district=data["district"],
                    balance_fen=0,
                    leverage_times=data["leverage_times"],
                    floor_bp=data["floor_bp"],
                    below_floor=False,
                )
            )
        elif type_ == "RiskFundToppedUp":
            floor = db.execute(select(funds.c.floor_bp).where(where)).scalar_one()
            below = data["balance_fen"] * 10_000 < floor * data["outstanding_guaranteed_fen"]
            db.execute(
                update(funds)
                .where(where)
                .values(balance_fen=data["balance_fen"], below_floor=below)
            )
        elif type_ == "RiskFundDrawn":
            db.execute(update(funds).where(where).values(balance_fen=data["balance_fen"]))
        elif type_ == "RiskFundBelowFloor":
            db.execute(update(funds).where(where).values(below_floor=True))

    # -- collective income and distribution ----------------------------------------------------

    def _collective(self, type_: str, data: dict[str, Any], db: Connection) -> None:
        village_id = data["village_id"]
        if type_ in ("IncomeRecorded", "ExpenseRecorded"):
            income = type_ == "IncomeRecorded"
            db.execute(
                entries.insert().values(
                    entry_id=data["entry_id"],
                    village_id=village_id,
                    kind="income" if income else "expense",
                    amount_fen=data["amount_fen"],
                    category=data["category"],
                    source=data.get("source", "manual"),
                    source_event_id=data.get("source_event_id"),
                    recorded_on=_day(data["recorded_on"]),
                )
            )
            ensure_balance(db, village_id)
            column = balances.c.income_fen if income else balances.c.expense_fen
            db.execute(
                update(balances)
                .where(balances.c.village_id == village_id)
                .values({column: column + data["amount_fen"]})
            )
        elif type_ == "DistributionPlanDrafted":
            ensure_balance(db, village_id)
            db.execute(
                update(balances)
                .where(balances.c.village_id == village_id)
                .values(planned_fen=balances.c.planned_fen + data["distributable_fen"])
            )
            db.execute(
                plans.insert().values(
                    plan_id=data["plan_id"],
                    village_id=village_id,
                    status="drafted",
                    distributable_fen=data["distributable_fen"],
                    paid_fen=0,
                    drafted_on=_day(data["drafted_on"]),
                )
            )
        elif type_ == "DividendPaid":
            db.execute(
                update(plans)
                .where(plans.c.plan_id == data["plan_id"])
                .values(status="paid", paid_fen=plans.c.paid_fen + data["amount_fen"])
            )


def ensure_balance(db: Connection, village_id: str) -> None:
    insert_ignore(db, balances, village_id=village_id, income_fen=0, expense_fen=0, planned_fen=0)


def exposure(row: Any) -> int:
    """The guaranteed amount at risk (the same rule as ``Loan.exposure_fen``)."""
    if row.status in ("approved", "contracted"):
        return row.guaranteed_fen
    if row.status in GUARANTEED_STATES and row.principal_fen:
        return row.guaranteed_fen * row.outstanding_fen // row.principal_fen
    return 0


# -- land transfer contracts, from the land service -------------------------------------------

land_model = MetaData()
land_contracts = Table(
    "finance_land_contracts",
    land_model,
    Column("contract_id", String(64), primary_key=True),
    Column("parcel_id", String(64)),
    Column("village_id", String(64), nullable=False),
    Column("starts_on", Date),
    Column("ends_on", Date),
    Column("signed", Boolean, nullable=False),
    Column("filed", Boolean, nullable=False),
    Column("terminated", Boolean, nullable=False),
)
LAND_EVENTS = ("TransferContractSigned", "TransferContractFiled", "ContractTerminated")


class LandContracts(Projection):
    """What a pledge needs of a transfer contract: its term, whether it is filed and whether
    it was terminated. Filing may arrive before signing is seen (other streams), so each event
    creates the row if missing."""

    metadata = land_model
    source = "land"
    handles = frozenset(LAND_EVENTS)

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        data = event.data
        insert_ignore(
            db,
            land_contracts,
            contract_id=data["contract_id"],
            village_id=data["village_id"],
            parcel_id=data.get("parcel_id"),
            signed=False,
            filed=False,
            terminated=False,
        )
        where = land_contracts.c.contract_id == data["contract_id"]
        if event.type == "TransferContractSigned":
            values: dict[str, Any] = {
                "signed": True,
                "starts_on": _day(data["starts_on"]),
                "ends_on": _day(data["ends_on"]),
            }
        elif event.type == "TransferContractFiled":
            values = {"filed": True}
        else:
            values = {"terminated": True}
        db.execute(update(land_contracts).where(where).values(**values))


VIEWS = FinanceViews()
LAND_CONTRACTS = LandContracts()
