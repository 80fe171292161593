"""A small event-sourced service used to test the foundation through its public HTTP surface.

Ledgers hold integer fen; a withdrawal may not overdraw. The service also has two endpoints
that exist only to provoke what real services must survive: a command that always collides
with a concurrent writer, and one that holds a worker until released.
"""

from __future__ import annotations

import logging
from typing import Any

import eventlet
import marshmallow as ma
from eventlet.event import Event as GreenEvent
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select
from sqlalchemy.engine import Connection

from shared.aggregate import Aggregate, applies
from shared.commands import UnitOfWork
from shared.errors import DomainError
from shared.events import Event, event_type
from shared.eventstore import NewEvent, RecordedEvent
from shared.http import command, query
from shared.projections import Projection
from shared.service import ServiceBase

log = logging.getLogger(__name__)
WRITERS = ["village_cadre", "district_admin"]
READERS = [*WRITERS, "ops"]


@event_type
class LedgerOpened(Event):
    TYPE = "LedgerOpened"
    owner = ma.fields.String(required=True)
    district = ma.fields.String(required=True)


@event_type
class AmountDeposited(Event):
    TYPE = "AmountDeposited"
    amount_fen = ma.fields.Integer(required=True)


@event_type
class AmountWithdrawn(Event):
    TYPE = "AmountWithdrawn"
    amount_fen = ma.fields.Integer(required=True)


class Ledger(Aggregate):
    snapshot_every = 5

    def __init__(self, id: str) -> None:
        super().__init__(id)
        self.owner = ""
        self.district = ""
        self.balance_fen = 0

    def open(self, owner: str, district: str) -> None:
        self.trigger(LedgerOpened, owner=owner, district=district)

    def deposit(self, amount_fen: int) -> None:
        self.trigger(AmountDeposited, amount_fen=amount_fen)

    def withdraw(self, amount_fen: int) -> None:
        if amount_fen > self.balance_fen:
            raise DomainError(
                f"balance is {self.balance_fen} fen; cannot withdraw {amount_fen}", "amount_fen"
            )
        self.trigger(AmountWithdrawn, amount_fen=amount_fen)

    @applies(LedgerOpened)
    def _opened(self, data: dict[str, Any]) -> None:
        self.owner, self.district = data["owner"], data["district"]

    @applies(AmountDeposited)
    def _deposited(self, data: dict[str, Any]) -> None:
        self.balance_fen += data["amount_fen"]

    @applies(AmountWithdrawn)
    def _withdrawn(self, data: dict[str, Any]) -> None:
        self.balance_fen -= data["amount_fen"]

    def to_snapshot(self) -> dict[str, Any]:
        return {"owner": self.owner, "district": self.district, "balance_fen": self.balance_fen}

    @classmethod
    def from_snapshot(cls, id: str, state: dict[str, Any]) -> Ledger:
        ledger = cls(id)
        ledger.owner, ledger.district = state["owner"], state["district"]
        ledger.balance_fen = state["balance_fen"]
        return ledger


class OpenLedger(ma.Schema):
    id = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64))
    owner = ma.fields.String(required=True, validate=ma.validate.Length(min=1))
    district = ma.fields.String(required=True)


class Amount(ma.Schema):
    amount_fen = ma.fields.Integer(required=True, strict=True, validate=ma.validate.Range(min=1))


class LedgerOut(ma.Schema):
    id = ma.fields.String()
    owner = ma.fields.String()
    district = ma.fields.String()
    balance_fen = ma.fields.Integer()
    version = ma.fields.Integer()


#: Released by tests to let the ``hold`` endpoint's workers finish.
release = GreenEvent()


class SampleService(ServiceBase):
    name = "sample"

    @command(
        "POST",
        "/api/v1/sample/ledgers",
        body=OpenLedger,
        response=LedgerOut,
        roles=WRITERS,
        status=201,
    )
    def open_ledger(self, request: Any, body: dict[str, Any]) -> Any:
        """Open a ledger."""
        self.store.principal.require_scope(district=body["district"])

        def decide(uow: UnitOfWork) -> Ledger:
            ledger = uow.create(Ledger, body["id"])
            ledger.open(body["owner"], body["district"])
            return ledger

        log.info("opening ledger %s", body["id"])
        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/sample/ledgers/<ledger_id>/deposits",
        body=Amount,
        response=LedgerOut,
        roles=WRITERS,
        status=201,
    )
    def deposit(self, request: Any, ledger_id: str, body: dict[str, Any]) -> Any:
        """Deposit into a ledger."""

        def decide(uow: UnitOfWork) -> Ledger:
            ledger = uow.get(Ledger, ledger_id)
            self.store.principal.require_scope(district=ledger.district)
            ledger.deposit(body["amount_fen"])
            return ledger

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/sample/ledgers/<ledger_id>/withdrawals",
        body=Amount,
        response=LedgerOut,
        roles=WRITERS,
        status=201,
    )
    def withdraw(self, request: Any, ledger_id: str, body: dict[str, Any]) -> Any:
        """Withdraw from a ledger; never below zero."""

        def decide(uow: UnitOfWork) -> Ledger:
            ledger = uow.get(Ledger, ledger_id)
            ledger.withdraw(body["amount_fen"])
            return ledger

        return self.store.run(decide)

    @query("/api/v1/sample/ledgers/<ledger_id>", response=LedgerOut, roles=READERS)
    def get_ledger(self, request: Any, ledger_id: str) -> Ledger:
        """One ledger's current state."""
        return self.store.get(Ledger, ledger_id)

    @command(
        "POST",
        "/api/v1/sample/ledgers/<ledger_id>/contended",
        body=Amount,
        response=LedgerOut,
        roles=WRITERS,
        status=201,
    )
    def contended(self, request: Any, ledger_id: str, body: dict[str, Any]) -> Any:
        """A deposit that always loses the race: another writer commits first, every time."""
        events = self.store.events

        def decide(uow: UnitOfWork) -> Ledger:
            ledger = uow.get(Ledger, ledger_id)
            ledger.deposit(body["amount_fen"])
            rival = events.load(ledger_id)[-1]
            with events.transaction() as tx:
                events.append(
                    tx,
                    [
                        NewEvent(
                            rival.stream_type,
                            ledger_id,
                            rival.version + 1,
                            "AmountDeposited",
                            {"amount_fen": 0},
                        )
                    ],
                )
            return ledger

        return self.store.run(decide)

    @query("/api/v1/sample/totals", roles=READERS)
    def totals(self, request: Any) -> dict[str, Any]:
        """Balances per district, from the inline read model."""
        with self.store.events.engine.connect() as db:
            rows = db.execute(select(ledger_totals).order_by(ledger_totals.c.district))
            return {r.district: {"balance_fen": r.balance_fen, "ledgers": r.ledgers} for r in rows}

    @command("POST", "/api/v1/sample/hold", roles=WRITERS)
    def hold(self, request: Any) -> dict[str, str]:
        """Occupy a worker until the test releases it."""
        with eventlet.Timeout(30, False):
            release.wait()
        return {"status": "released"}


# -- a read model built inline from the sample service's own events ------------------------------

totals_model = MetaData()
ledger_totals = Table(
    "ledger_totals",
    totals_model,
    Column("district", String(50), primary_key=True),
    Column("balance_fen", BigInteger, nullable=False),
    Column("ledgers", Integer, nullable=False),
)
ledger_districts = Table(
    "ledger_districts",
    totals_model,
    Column("ledger_id", String(64), primary_key=True),
    Column("district", String(50), nullable=False),
)


class DistrictTotals(Projection):
    metadata = totals_model
    handles = frozenset({"LedgerOpened", "AmountDeposited", "AmountWithdrawn"})

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        if event.type == "LedgerOpened":
            district = event.data["district"]
            db.execute(
                ledger_districts.insert().values(ledger_id=event.stream_id, district=district)
            )
            updated = db.execute(
                ledger_totals.update()
                .where(ledger_totals.c.district == district)
                .values(ledgers=ledger_totals.c.ledgers + 1)
            ).rowcount
            if not updated:
                db.execute(
                    ledger_totals.insert().values(district=district, balance_fen=0, ledgers=1)
                )
            return
        district = db.execute(
            select(ledger_districts.c.district).where(
                ledger_districts.c.ledger_id == event.stream_id
            )
        ).scalar_one()
        sign = 1 if event.type == "AmountDeposited" else -1
        db.execute(
            ledger_totals.update()
            .where(ledger_totals.c.district == district)
            .values(balance_fen=ledger_totals.c.balance_fen + sign * event.data["amount_fen"])
        )


SampleService.projections = [DistrictTotals()]
