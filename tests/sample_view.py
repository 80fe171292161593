"""A consumer of the sample service's events in another service: ledger balances.

Runs in its own process in the delivery tests. ``SAMPLE_VIEW_FAIL_FIRST=n`` makes the handler
fail the first n attempts at each event; a deposit of 666 fen always fails (a poison message).
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
)
from sqlalchemy.engine import Connection

from shared.consumers import subscribe
from shared.eventstore import RecordedEvent
from shared.http import query
from shared.projections import Projection
from shared.service import ServiceBase

POISON_FEN = 666
view_model = MetaData()
balances = Table(
    "ledger_balances",
    view_model,
    Column("ledger_id", String(64), primary_key=True),
    Column("balance_fen", BigInteger, nullable=False),
    Column("events", Integer, nullable=False),
    Column("last_version", Integer, nullable=False),
)
attempts: Counter[str] = Counter()


# Built once: constructing a statement per event would cost more than running it.
OPEN = balances.insert().values(balance_fen=0, events=1)
MOVE = (
    balances.update()
    .where(balances.c.ledger_id == bindparam("p_ledger_id"))
    .values(
        balance_fen=balances.c.balance_fen + bindparam("p_amount"),
        events=balances.c.events + 1,
        last_version=bindparam("p_version"),
    )
)


class LedgerBalances(Projection):
    metadata = view_model
    source = "sample"
    handles = frozenset({"LedgerOpened", "AmountDeposited", "AmountWithdrawn"})

    def apply(self, event: RecordedEvent, db: Connection) -> None:
        if event.type == "LedgerOpened":
            db.execute(OPEN, {"ledger_id": event.stream_id, "last_version": event.version})
            return
        sign = 1 if event.type == "AmountDeposited" else -1
        db.execute(
            MOVE,
            {
                "p_ledger_id": event.stream_id,
                "p_amount": sign * event.data["amount_fen"],
                "p_version": event.version,
            },
        )


class LedgerViewService(ServiceBase):
    name = "ledgerview"
    balances = LedgerBalances()
    projections = [balances]

    @subscribe("sample", sorted(LedgerBalances.handles), ordered=True, max_attempts=4)
    def on_ledger_event(self, event: RecordedEvent, db: Connection) -> None:
        attempts[str(event.event_id)] += 1
        if attempts[str(event.event_id)] <= int(os.environ.get("SAMPLE_VIEW_FAIL_FIRST", "0")):
            raise RuntimeError(f"induced failure, attempt {attempts[str(event.event_id)]}")
        if event.data.get("amount_fen") == int(
            os.environ.get("SAMPLE_VIEW_POISON_FEN", POISON_FEN)
        ):
            raise ValueError("poison deposit")
        self.balances.apply(event, db)

    @query("/api/v1/ledgerview/balances", roles=["ops"])
    def all_balances(self, request: Any) -> dict[str, Any]:
        """Every ledger's balance and the number of its events applied."""
        with self.store.events.engine.connect() as db:
            rows = db.execute(select(balances)).all()
            total = db.execute(select(func.count()).select_from(balances)).scalar_one()
        return {
            "count": total,
            "ledgers": {
                r.ledger_id: {
                    "balance_fen": r.balance_fen,
                    "events": r.events,
                    "last_version": r.last_version,
                }
                for r in rows
            },
        }
