"""The board keeper: recomputes boards when facts changed, rebuilds new rule versions from the
sources' notification logs, issues bulletins at period close, and feeds the live streams.

Every replica runs one. Board writes are serialised (a transaction-level advisory lock on
PostgreSQL, the write lock on SQLite), which also makes the board-change log's positions follow
commit order: a stream that read position n never meets a later commit below n. Each replica's
:class:`Broadcaster` tails that log, so its streams see every change, whichever replica applied
the event that caused it.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from contextlib import suppress
from datetime import UTC, date, datetime
from typing import Any

import eventlet
from eventlet.queue import LightQueue
from nameko.extensions import DependencyProvider
from sqlalchemy import delete, func, select
from sqlalchemy.engine import Connection

from services.ranking import boards
from services.ranking.domain import Bulletin, Competition, bulletin_id
from services.ranking.projections import (
    CONSUMED,
    FEEDS,
    board_changes,
    bulletins,
    dirty,
    epochs,
    record_facts,
)
from services.ranking.scoring import parse_period, window_of
from shared.clock import today
from shared.commands import CommandContext, execute
from shared.errors import Conflict, DomainError
from shared.eventstore import EventStore
from shared.notification_log import NotificationLogClient
from shared.web import FrontDoor

log = logging.getLogger(__name__)

NOTIFY_CHANNEL = "ranking_board_changes"
#: One key for every board write of the ranking database (pg_advisory_xact_lock).
BOARD_LOCK = 7_205_761_001
SLOW_TICK_SECONDS = 1.0
PERIOD_TICK_SECONDS = 30.0


def system_context(what: str) -> CommandContext:
    return CommandContext(correlation_id=what, causation_id=what, actor="ranking-keeper")


def lock_boards(store: EventStore, db: Connection) -> None:
    if store.is_postgres:
        db.exec_driver_sql(f"SELECT pg_advisory_xact_lock({BOARD_LOCK})")


class Broadcaster:
    """Tails the board-change log and hands each change to this replica's open streams."""

    def __init__(self, store: EventStore, poll_seconds: float = 1.0) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.subscribers: dict[str, set[LightQueue]] = {}
        self.last = 0
        self._wake = threading.Event()
        self._stopping = False
        self._threads: list[Any] = []

    def start(self) -> None:
        with self.store.engine.connect() as db:
            self.last = self.head(db)
        self._threads.append(eventlet.spawn(self._run))
        if self.store.is_postgres:
            self._threads.append(eventlet.spawn(self._listen))

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        for thread in self._threads:
            thread.kill()

    @staticmethod
    def head(db: Connection) -> int:
        return db.execute(select(func.coalesce(func.max(board_changes.c.position), 0))).scalar()

    def wake(self) -> None:
        self._wake.set()

    def subscribe(self, competition_id: str) -> LightQueue:
        queue: LightQueue = LightQueue()
        self.subscribers.setdefault(competition_id, set()).add(queue)
        return queue

    def unsubscribe(self, competition_id: str, queue: LightQueue) -> None:
        self.subscribers.get(competition_id, set()).discard(queue)

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self.deliver()
            except Exception as exc:
                log.warning("board broadcaster could not read changes: %s", exc)
                time.sleep(1)

    def deliver(self) -> None:
        while True:
            with self.store.engine.connect() as db:
                rows = db.execute(
                    select(board_changes)
                    .where(board_changes.c.position > self.last)
                    .order_by(board_changes.c.position)
                    .limit(500)
                ).all()
            for row in rows:
                for queue in list(self.subscribers.get(row.competition_id, ())):
                    queue.put(change(row))
                self.last = row.position
            if len(rows) < 500:
                return

    def _listen(self) -> None:
        """Wake on NOTIFY from the replica that wrote a change."""
        import psycopg

        url = self.store.engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while not self._stopping:
            try:
                with psycopg.connect(dsn, autocommit=True) as listener:
                    listener.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    for _ in listener.notifies(timeout=None):
                        self._wake.set()
            except Exception as exc:
                log.debug("board listener reconnecting: %s", exc)
                time.sleep(1)


def change(row: Any) -> dict[str, Any]:
    return {
        "position": row.position,
        "competition_id": row.competition_id,
        "version": row.version,
        "window": row.window,
        "board": row.board,
    }


class BoardKeeper(DependencyProvider):
    """A worker gets the keeper itself (to wake it, and to read boards the way streams do)."""

    def __init__(self) -> None:
        self.store: EventStore | None = None
        self.broadcaster: Broadcaster | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._next_slow = 0.0
        self._next_periods = 0.0
        self._past: boards.PastBoards = {}
        self._epoch: int | None = None
        self._day: date | None = None

    def setup(self) -> None:
        from services.ranking.stream import screen_app, stream_app, stream_path

        config = self.container.config
        self.poll_seconds = float(config.get("RANKING_POLL_SECONDS", 0.1))
        self.log_client = NotificationLogClient(
            config.get("SERVICE_URL") or f"http://{config['WEB_SERVER_ADDRESS']}",
            config["SECRET"],
        )
        self.secret = config["SECRET"]
        door = FrontDoor.for_config(config)
        door.mount_matching(stream_path, stream_app(self))
        door.mount("/screen", screen_app())

    def start(self) -> None:
        from shared.dependencies import Store

        for dependency in self.container.dependencies:
            if isinstance(dependency, Store) and dependency.store is not None:
                self.store = dependency.store
        assert self.store is not None, "the ranking service needs its Store"
        self.broadcaster = Broadcaster(self.store)
        self.broadcaster.start()
        self.container.spawn_managed_thread(self._run, identifier="ranking board keeper")

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self.broadcaster is not None:
            self.broadcaster.stop()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx: Any) -> BoardKeeper:
        return self

    def wake(self) -> None:
        self._wake.set()

    # -- the loop -----------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            try:
                self.refresh()
                now = time.monotonic()
                if now >= self._next_slow:
                    self._next_slow = now + SLOW_TICK_SECONDS
                    self.rebuild_pending()
                if now >= self._next_periods:
                    self._next_periods = now + PERIOD_TICK_SECONDS
                    self.roll_periods()
                    self.close_periods()
            except Exception:
                log.exception("ranking board keeper failed; retrying")
                eventlet.sleep(1)

    def _publish(self, db: Connection) -> None:
        assert self.store is not None
        if self.store.is_postgres:
            db.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")

    def refresh(self) -> int:
        """Recompute the shown boards whose sources changed. Returns the boards that changed."""
        store = self.store
        assert store is not None
        with store.engine.connect() as db:
            if db.execute(select(dirty.c.mark).limit(1)).first() is None:
                return 0
        changed = 0
        with store.transaction() as tx:
            db = tx.connection
            lock_boards(store, db)
            marks = db.execute(select(dirty)).all()
            if not marks:
                return 0
            sources = {m.source for m in marks}
            day = today()
            self._forget_past(db, [m.day for m in marks], day)
            for cv in boards.versions(db, status="active"):
                if "*" in sources or sources & cv.scoring.sources():
                    for kind in cv.windows:
                        changed += boards.refresh_board(
                            store, db, cv, kind, day, publish=True, cache=self._past
                        )
            for n in range(0, len(marks), 500):
                chunk = [m.mark for m in marks[n : n + 500]]
                db.execute(delete(dirty).where(dirty.c.mark.in_(chunk)))
            if changed:
                self._publish(db)
        if changed and self.broadcaster is not None:
            self.broadcaster.wake()
        return changed

    def _forget_past(self, db: Connection, days: list[date | None], day: date) -> None:
        """Keep cached boards of closed periods (and of all time up to yesterday, which all-time
        movement compares with) only while no fact dated before today changed, as seen by any
        replica (an epoch in the database, under the board lock); a new day starts afresh."""
        store = self.store
        assert store is not None
        if None in days or min(d for d in days if d is not None) < day:
            db.execute(
                store.insert(epochs)
                .values(name="past", value=1)
                .on_conflict_do_update(
                    index_elements=[epochs.c.name], set_={"value": epochs.c.value + 1}
                )
            )
        epoch = db.execute(select(epochs.c.value).where(epochs.c.name == "past")).scalar() or 0
        if epoch != self._epoch or day != self._day:
            self._past.clear()
            self._epoch, self._day = epoch, day

    def republish(self, competition_id: str | None = None) -> None:
        """Recompute every window of the shown versions and push them (a switch-over, a new
        period)."""
        store = self.store
        assert store is not None
        with store.transaction() as tx:
            db = tx.connection
            lock_boards(store, db)
            self._past.clear()
            for cv in boards.versions(db, status="active", competition_id=competition_id):
                for kind in cv.windows:
                    boards.refresh_board(store, db, cv, kind, today(), publish=True, force=True)
            self._publish(db)
        if self.broadcaster is not None:
            self.broadcaster.wake()

    def roll_periods(self) -> None:
        """A new month (quarter, year) began: its boards replace the last period's. A new day
        began: all-time movement compares with the end of yesterday from now on."""
        assert self.store is not None
        day = today()

        def stale_board(cv: boards.CompetitionVersion, kind: str) -> bool:
            stored = boards.stored_board(db, cv, kind) or {}
            window = window_of(kind, day)
            return stored.get("period") != window.period or stored.get(
                "movement_since"
            ) != boards.movement_since(window, day)

        with self.store.engine.connect() as db:
            stale = {
                cv.competition_id
                for cv in boards.versions(db, status="active")
                for kind in cv.windows
                if stale_board(cv, kind)
            }
        for competition_id in sorted(stale):
            self.republish(competition_id)

    # -- rebuild ------------------------------------------------------------------------------

    def catch_up(self, source: str) -> int:
        """Apply a source's whole notification log to the facts (idempotent per event)."""
        store = self.store
        assert store is not None
        after = 0
        while True:
            page = self.log_client.page(source, after, 500)
            if not page:
                return after
            with store.transaction() as tx:
                for event in page:
                    if event.type in CONSUMED[source]:
                        record_facts(store, tx.connection, event)
            after = page[-1].position

    def rebuild_pending(self) -> None:
        """Build versions not shown yet from the logs they need, then switch over to them."""
        assert self.store is not None
        with self.store.engine.connect() as db:
            building = boards.versions(db, status="building")
        for cv in building:
            try:
                self.rebuild(cv)
            except Exception as exc:
                log.warning("rebuilding %s version %d: %s", cv.competition_id, cv.version, exc)

    def rebuild(self, cv: boards.CompetitionVersion) -> None:
        store = self.store
        assert store is not None
        sources = cv.scoring.sources()
        caught_up = {
            service: self.catch_up(service)
            for service, feeds in sorted(FEEDS.items())
            if feeds & sources
        }
        with store.transaction() as tx:
            lock_boards(store, tx.connection)
            for kind in cv.windows:
                boards.refresh_board(store, tx.connection, cv, kind, today(), publish=False)

        def decide(uow: Any) -> None:
            competition = uow.get(Competition, cv.competition_id)
            competition.activate(cv.version, caught_up)

        try:
            execute(store, system_context(f"activate-{cv.competition_id}"), decide)
        except (Conflict, DomainError) as exc:
            log.info("version %d of %s not activated: %s", cv.version, cv.competition_id, exc)
            return
        log.info("%s now shows rule version %d", cv.competition_id, cv.version)
        self.republish(cv.competition_id)

    # -- bulletins ----------------------------------------------------------------------------

    def close_periods(self) -> None:
        """Issue the bulletin of every period that closed while a competition ran."""
        assert self.store is not None
        day = today()
        with self.store.engine.connect() as db:
            shown = boards.versions(db, status="active")
            issued = set(db.execute(select(bulletins.c.bulletin_id)).scalars())
        for cv in shown:
            for kind in cv.windows:
                if kind == "all":
                    continue
                closed = window_of(kind, day).previous()
                ran = closed.ends_on is not None and closed.ends_on > cv.defined_on
                if ran and bulletin_id(cv.competition_id, kind, closed.period) not in issued:
                    with suppress(Conflict):  # another replica issued it
                        self.issue_bulletin(cv.competition_id, kind, closed.period, "period-close")

    def bulletin_rows(
        self, db: Connection, cv: boards.CompetitionVersion, kind: str, period: str
    ) -> list[dict[str, Any]]:
        window = parse_period(kind, period)
        rows = boards.score_window(db, cv, window, today(), boards.lookback(cv))
        return [boards.row_dict(cv, r) for r in rows]

    def issue_bulletin(
        self, competition_id: str, kind: str, period: str, why: str, context: Any = None
    ) -> Bulletin:
        store = self.store
        assert store is not None
        try:
            window = parse_period(kind, period)
        except ValueError as exc:
            raise DomainError(str(exc), "period") from None
        if not window.closed(today()):
            raise DomainError(f"{kind} {period} has not closed yet", "period")
        with store.engine.connect() as db:
            cv = boards.active_version(db, competition_id)
            if cv is None:
                raise DomainError("the competition has no board yet", "competition_id")
            if kind not in cv.windows:
                raise DomainError(f"the competition has no {kind} board", "window")
            rows = self.bulletin_rows(db, cv, kind, period)
        assert window.ends_on is not None

        def decide(uow: Any) -> Bulletin:
            bulletin = uow.create(Bulletin, bulletin_id(competition_id, kind, period))
            bulletin.issue(
                competition_id=competition_id,
                competition_name=cv.name,
                rule_version=cv.version,
                window=kind,
                period=window.period,
                starts_on=window.starts_on,
                ends_on=window.ends_on,
                issued_at=datetime.now(UTC),
                rows=rows,
            )
            return bulletin

        outcome = execute(store, context or system_context(f"bulletin-{why}"), decide)
        return outcome.result


def sse(event: str, position: int, data: Any) -> bytes:
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return f"id: {position}\nevent: {event}\ndata: {body}\n\n".encode()
