"""The event store, the same suite on SQLite and PostgreSQL."""

from __future__ import annotations

import random
import uuid

import eventlet
import pytest
from sqlalchemy import text

from shared.aggregate import Aggregate
from shared.commands import CommandContext, execute
from shared.errors import ConcurrencyError
from shared.eventstore import EventStore, NewEvent
from tests.sample import Ledger

CONTEXT = CommandContext("corr", "cause", "tester", "D1")


def new(stream_id: str, version: int, type_: str = "AmountDeposited", **data) -> NewEvent:
    return NewEvent("Ledger", stream_id, version, type_, data or {"amount_fen": version})


def append(store: EventStore, *events: NewEvent):
    with store.transaction() as tx:
        return store.append(tx, list(events))


def test_append_then_load_a_stream_in_version_order(store: EventStore) -> None:
    recorded = append(store, new("a", 1), new("a", 2), new("b", 1))
    assert [r.version for r in recorded] == [1, 2, 1]
    assert recorded[0].position < recorded[1].position < recorded[2].position
    loaded = store.load("a")
    assert [(e.version, e.data) for e in loaded] == [(1, {"amount_fen": 1}), (2, {"amount_fen": 2})]
    assert store.load("a", after_version=1)[0].event_id == recorded[1].event_id
    assert store.stream_version("a") == 2 and store.stream_version("zzz") == 0
    assert loaded[0].recorded_at.tzinfo is not None


def test_duplicate_version_is_a_concurrency_error_and_appends_nothing(store: EventStore) -> None:
    append(store, new("a", 1))
    with pytest.raises(ConcurrencyError):
        append(store, new("b", 1), new("a", 1))
    assert [e.stream_id for e in store.read_all()] == ["a"]


def test_read_all_pages_in_global_order(store: EventStore) -> None:
    for i in range(1, 8):
        append(store, new(f"s{i % 3}", 1 + i // 3))
    everything = store.read_all()
    assert len(everything) == 7
    positions = [e.position for e in everything]
    assert positions == sorted(positions) and len(set(positions)) == 7
    first = store.read_all(limit=3)
    rest = store.read_all(after=first[-1].position, limit=100)
    assert [e.event_id for e in first + rest] == [e.event_id for e in everything]
    assert store.last_position() == positions[-1]


def test_upcasters_turn_old_events_into_the_current_shape(store: EventStore) -> None:
    with store.transaction() as tx:
        store.append(
            tx, [NewEvent("Ledger", "u", 1, "AmountDeposited", {"yuan": 3}, schema_version=1)]
        )
    store.upcaster("AmountDeposited", 1)(lambda d: {"amount_fen": d["yuan"] * 100})
    (event,) = store.load("u")
    assert event.data == {"amount_fen": 300} and event.schema_version == 2
    with store.engine.connect() as conn:  # the stored event itself is never rewritten
        assert conn.execute(text("SELECT schema_version FROM events")).scalar_one() == 1


def test_snapshots_shortcut_loading_and_agree_with_full_replay(store: EventStore) -> None:
    execute(store, CONTEXT, lambda uow: uow.create(Ledger, "big").open("O", "D1"))
    for amount in range(1, 23):
        execute(store, CONTEXT, lambda uow, a=amount: uow.get(Ledger, "big").deposit(a))
    snapshot = store.load_snapshot("big")
    assert snapshot is not None and snapshot.version == 20
    assert snapshot.state["balance_fen"] == sum(range(1, 20))
    from shared.commands import load_aggregate

    fast = load_aggregate(store, Ledger, "big")
    slow = Ledger.rehydrate("big", store.load("big"))
    assert (fast.version, fast.balance_fen) == (slow.version, slow.balance_fen) == (23, 253)


def test_events_carry_the_command_metadata(store: EventStore) -> None:
    outcome = execute(store, CONTEXT, lambda uow: uow.create(Ledger, "m").open("O", "D1"))
    (event,) = outcome.events
    assert store.load("m")[0].metadata == {
        "correlation_id": "corr",
        "causation_id": "cause",
        "actor": "tester",
        "district": "D1",
    }
    assert event.envelope()["occurred_at"] == event.recorded_at.isoformat()


def test_a_failed_command_appends_nothing(store: EventStore) -> None:
    execute(store, CONTEXT, lambda uow: uow.create(Ledger, "f").open("O", "D1"))

    def overdraw(uow):
        ledger = uow.get(Ledger, "f")
        ledger.deposit(5)
        ledger.withdraw(50)

    with pytest.raises(Exception, match="cannot withdraw"):
        execute(store, CONTEXT, overdraw)
    assert len(store.load("f")) == 1


def test_many_concurrent_commands_on_one_stream_lose_nothing(store: EventStore) -> None:
    execute(store, CONTEXT, lambda uow: uow.create(Ledger, "hot").open("O", "D1"))

    def deposit(amount: int) -> None:
        execute(
            store, CONTEXT, lambda uow: uow.get(Ledger, "hot").deposit(amount), max_attempts=100
        )

    pool = eventlet.GreenPool(12)
    list(pool.imap(deposit, range(1, 61)))
    events = store.load("hot")
    assert [e.version for e in events] == list(range(1, 62))
    assert sum(e.data["amount_fen"] for e in events[1:]) == sum(range(1, 61))


class Counter(Aggregate):
    """An aggregate with no appliers, to check that unknown events are refused."""


def test_applying_an_event_without_an_applier_is_an_error(store: EventStore) -> None:
    append(store, new("c", 1))
    with pytest.raises(TypeError, match="no @applies"):
        Counter.rehydrate("c", store.load("c"))


def test_tailing_reader_sees_every_event_exactly_once_under_concurrent_writers(
    store: EventStore,
) -> None:
    """Writers commit in random order with random delays while a reader tails by position."""
    expected: set[uuid.UUID] = set()
    done = eventlet.event.Event()

    def writer(n: int) -> None:
        for i in range(10):
            with store.transaction() as tx:
                events = [new(f"w{n}", i * 2 + 1), new(f"w{n}", i * 2 + 2)]
                store.append(tx, events)
                eventlet.sleep(random.uniform(0, 0.004))  # hold the transaction open a while
            expected.update(e.event_id for e in events)

    seen: list[uuid.UUID] = []

    def reader() -> None:
        after = 0
        while True:
            finished = done.ready()
            page = store.read_all(after=after, limit=7)
            seen.extend(e.event_id for e in page)
            after = page[-1].position if page else after
            if finished and not page:
                return
            eventlet.sleep(0.001)

    tail = eventlet.spawn(reader)
    writers = [eventlet.spawn(writer, n) for n in range(6)]
    for w in writers:
        w.wait()
    done.send()
    tail.wait()
    assert len(seen) == len(set(seen)) == 120
    assert set(seen) == expected


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_reader_waits_for_an_open_transaction_instead_of_skipping_it(store: EventStore) -> None:
    """The sequence-gap problem: T1 appends first but commits last."""
    hold = eventlet.event.Event()
    release = eventlet.event.Event()

    def slow_writer() -> None:
        with store.transaction() as tx:
            store.append(tx, [new("slow", 1)])
            hold.send()
            release.wait()

    slow = eventlet.spawn(slow_writer)
    hold.wait()
    append(store, new("fast", 1))
    append(store, new("fast", 2))
    # Committed, but behind an open transaction: not yet safe to hand out.
    assert store.read_all() == []
    release.send()
    slow.wait()
    everything = store.read_all()
    assert [(e.stream_id, e.version) for e in everything] == [("slow", 1), ("fast", 1), ("fast", 2)]
    # A reader that had been tailing sees each exactly once, whatever page size it used.
    assert [e.event_id for e in store.read_all(limit=1)] == [everything[0].event_id]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_a_settling_reader_waits_for_running_transactions_to_read_its_own_writes(
    store: EventStore,
) -> None:
    """What the notification log does: wait (bounded) for the transactions running when the read
    began, so a client reading after its own commit sees it, and still never skips."""
    hold, release = eventlet.event.Event(), eventlet.event.Event()

    def slow_writer(version: int) -> None:
        with store.transaction() as tx:
            store.append(tx, [new("slow", version)])
            hold.send()
            release.wait()

    slow = eventlet.spawn(slow_writer, 1)
    hold.wait()
    append(store, new("mine", 1))
    eventlet.spawn_after(0.2, release.send)
    seen = store.read_all(settle=5)
    assert [(e.stream_id, e.version) for e in seen] == [("slow", 1), ("mine", 1)]
    slow.wait()
    # Bounded: a transaction that stays open past the wait holds the reader back, as before.
    hold, release = eventlet.event.Event(), eventlet.event.Event()
    slow = eventlet.spawn(slow_writer, 2)
    hold.wait()
    append(store, new("mine", 2))
    assert store.read_all(after=seen[-1].position, settle=0.05) == []
    release.send()
    slow.wait()


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_orders_by_commit(store: EventStore) -> None:
    """On SQLite a second writer waits for the first, so rowid order is commit order."""
    release = eventlet.event.Event()
    order: list[str] = []

    def first() -> None:
        with store.transaction() as tx:
            store.append(tx, [new("first", 1)])
            release.wait()
        order.append("first")

    def second() -> None:
        append(store, new("second", 1))
        order.append("second")

    a = eventlet.spawn(first)
    eventlet.sleep(0.01)
    b = eventlet.spawn(second)
    eventlet.sleep(0.05)
    assert order == [] and store.read_all() == []
    release.send()
    a.wait()
    b.wait()
    assert [e.stream_id for e in store.read_all()] == order == ["first", "second"]


def test_several_handlers_append_within_one_transaction(store: EventStore) -> None:
    """A consumer applies a batch of events in one transaction; each handler that appends (for
    example income recorded from another service's event) numbers its events after the
    earlier ones of the same transaction, never at the same position."""
    from shared.commands import decide_within

    context = CommandContext(correlation_id="c", causation_id="c", actor="handler")

    def open_ledger(ledger_id: str):
        def decide(uow) -> None:
            uow.create(Ledger, ledger_id).open("owner", "D1")

        return decide

    with store.transaction() as tx:
        for ledger_id in ("batch-1", "batch-2", "batch-3"):
            decide_within(
                store, EventStore.transaction_of(tx.connection), context, open_ledger(ledger_id)
            )
    recorded = store.read_all()
    assert [e.stream_id for e in recorded] == ["batch-1", "batch-2", "batch-3"]
    assert len({e.position for e in recorded}) == 3
