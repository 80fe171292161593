"""Boards: gather a window's facts per competing entity, score them, store and publish the result.

Village facts roll up to the cluster the village belonged to on the fact's day, by joining the
facts with the directory's effective-dated memberships when the board is computed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection

from services.ranking import display
from services.ranking.projections import (
    adjustments,
    board_changes,
    board_rows,
    boards,
    competitions,
    facts,
)
from services.ranking.scoring import (
    SOURCES,
    Entity,
    Row,
    Rules,
    Window,
    previous_all_time,
    rules_from_dict,
    score_board,
    window_of,
)
from shared.clock import local_day
from shared.directory import clusters, memberships, units
from shared.eventstore import EventStore

#: Rows a streamed board carries at most (the screen shows the competition's top N of them).
STREAM_ROWS = 50


@dataclass(frozen=True)
class CompetitionVersion:
    competition_id: str
    version: int
    district: str
    name: str
    rules: dict[str, Any]
    status: str
    defined_on: date

    @property
    def scoring(self) -> Rules:
        return rules_from_dict(self.rules)

    @property
    def windows(self) -> list[str]:
        return list(self.rules["windows"])

    @property
    def top_n(self) -> int:
        return int(self.rules.get("top_n") or 10)


def _version(row: Any) -> CompetitionVersion:
    defined = row.defined_at if row.defined_at.tzinfo else row.defined_at.replace(tzinfo=UTC)
    return CompetitionVersion(
        row.competition_id,
        row.version,
        row.district,
        row.name,
        row.rules,
        row.status,
        local_day(defined),
    )


def versions(db: Connection, *, status: str | None = None, competition_id: str | None = None):
    query = select(competitions).order_by(competitions.c.competition_id, competitions.c.version)
    if status is not None:
        query = query.where(competitions.c.status == status)
    if competition_id is not None:
        query = query.where(competitions.c.competition_id == competition_id)
    return [_version(row) for row in db.execute(query)]


def active_version(db: Connection, competition_id: str) -> CompetitionVersion | None:
    found = versions(db, status="active", competition_id=competition_id)
    return found[0] if found else None


# -- gathering ----------------------------------------------------------------------------------


def _member_on(day: Any) -> Any:
    return and_(
        memberships.c.joined_on <= day,
        or_(memberships.c.left_on.is_(None), memberships.c.left_on > day),
    )


def _entities(db: Connection, cv: CompetitionVersion, on: date) -> dict[str, Entity]:
    """Who competes, with names and populations as of ``on``."""
    group = cv.rules.get("group") or {}
    found: dict[str, Entity] = {}
    if cv.rules["entity"] == "cluster":
        query = select(clusters.c.cluster_id, clusters.c.name).where(
            clusters.c.district == cv.district
        )
        if group.get("alliance_id"):
            query = query.where(clusters.c.alliance_id == group["alliance_id"])
        for row in db.execute(query):
            found[row.cluster_id] = Entity(row.cluster_id, row.name)
        people = db.execute(
            select(memberships.c.cluster_id, func.sum(units.c.population))
            .join(units, units.c.unit_id == memberships.c.unit_id)
            .where(_member_on(on), units.c.unit_type == "village")
            .group_by(memberships.c.cluster_id)
        )
        for cluster_id, population in people:
            if cluster_id in found:
                found[cluster_id].population = int(population or 0)
        return found
    query = select(units.c.unit_id, units.c.name, units.c.population).where(
        units.c.district == cv.district, units.c.unit_type == "village"
    )
    if group.get("weak") is not None:
        query = query.where(units.c.weak == bool(group["weak"]))
    if group.get("cluster_id"):
        query = query.join(memberships, memberships.c.unit_id == units.c.unit_id).where(
            memberships.c.cluster_id == group["cluster_id"], _member_on(on)
        )
    for row in db.execute(query):
        found[row.unit_id] = Entity(row.unit_id, row.name, int(row.population or 0))
    return found


Sums = dict[str, dict[str, tuple[int, date]]]


#: The keeper's memory of what facts dated before today make: scored boards of closed periods
#: (key: competition, version, window, lookback) and per-entity sums of the facts dated before
#: today (key: "sums", ...). Cleared when a fact dated before today arrives, and at midnight.
PastBoards = dict[tuple[Any, ...], Any]


def _sums(
    db: Connection,
    cv: CompetitionVersion,
    window: Window,
    sources: set[str],
    today: date | None = None,
    cache: PastBoards | None = None,
) -> Sums:
    """entity -> source -> (summed amount, last day) over the window.

    With a ``cache`` (the keeper's, cleared whenever a fact dated before today changes, and at
    midnight), the facts dated before today are summed once and kept; each recompute then sums
    only today's facts and adds them."""
    if cache is None or today is None or window.starts_on >= today:
        return _sum_days(db, cv, sources, window.starts_on, window.ends_on)
    settled_end = today if window.ends_on is None else min(today, window.ends_on)
    key = ("sums", cv.competition_id, cv.version, window.starts_on, settled_end, *sorted(sources))
    settled = cache.get(key)
    if settled is None:
        settled = cache[key] = _sum_days(db, cv, sources, window.starts_on, settled_end)
    if window.ends_on is not None and window.ends_on <= today:
        return {entity: dict(by_source) for entity, by_source in settled.items()}
    return _add(settled, _sum_days(db, cv, sources, today, window.ends_on))


def _add(settled: Sums, recent: Sums) -> Sums:
    sums: Sums = {entity: dict(by_source) for entity, by_source in settled.items()}
    for entity, by_source in recent.items():
        mine = sums.setdefault(entity, {})
        for source, (amount, last) in by_source.items():
            had = mine.get(source)
            mine[source] = (amount, last) if had is None else (had[0] + amount, max(had[1], last))
    return sums


def _sum_days(
    db: Connection, cv: CompetitionVersion, sources: set[str], starts_on: date, ends_on: date | None
) -> Sums:
    """entity -> source -> (summed amount, last day) over facts dated in [starts_on, ends_on)."""
    in_window = [facts.c.source.in_(sorted(sources)), facts.c.day >= starts_on]
    if ends_on is not None:
        in_window.append(facts.c.day < ends_on)
    if cv.rules["entity"] == "cluster":
        village_facts = (
            select(
                memberships.c.cluster_id.label("entity"),
                facts.c.source,
                func.sum(facts.c.amount),
                func.max(facts.c.day),
            )
            .join(
                memberships,
                and_(memberships.c.unit_id == facts.c.subject_id, _member_on(facts.c.day)),
            )
            .where(facts.c.subject_kind == "village", *in_window)
            .group_by(memberships.c.cluster_id, facts.c.source)
        )
        cluster_facts = (
            select(
                facts.c.subject_id, facts.c.source, func.sum(facts.c.amount), func.max(facts.c.day)
            )
            .where(facts.c.subject_kind == "cluster", *in_window)
            .group_by(facts.c.subject_id, facts.c.source)
        )
        rows = [*db.execute(village_facts), *db.execute(cluster_facts)]
    else:
        rows = list(
            db.execute(
                select(
                    facts.c.subject_id,
                    facts.c.source,
                    func.sum(facts.c.amount),
                    func.max(facts.c.day),
                )
                .where(facts.c.subject_kind == "village", *in_window)
                .group_by(facts.c.subject_id, facts.c.source)
            )
        )
    sums: Sums = defaultdict(dict)
    for entity, source, amount, last in rows:
        had = sums[entity].get(source)
        if had is not None:  # a cluster's own facts beside its villages'
            amount, last = had[0] + amount, max(had[1], last)
        sums[entity][source] = (int(amount), last)
    return dict(sums)


def _value(source: str, amount: int) -> Decimal:
    return Decimal(amount) / SOURCES[source].scale


def gather(
    db: Connection,
    cv: CompetitionVersion,
    window: Window,
    today: date,
    cache: PastBoards | None = None,
) -> list[Entity]:
    """The scoring inputs of every competing entity for a window."""
    rules = cv.scoring
    last_day = window.ends_on - timedelta(days=1) if window.ends_on else today
    entities = _entities(db, cv, min(today, last_day))
    sources = rules.sources()
    for entity_id, by_source in _sums(db, cv, window, sources, today, cache).items():
        entity = entities.get(entity_id)
        if entity is None:
            continue
        entity.values = {s: _value(s, amount) for s, (amount, _) in by_source.items()}
        entity.last_fact_on = max(day for _, day in by_source.values())
    growth = {i.source for i in rules.indicators if i.growth}
    base = window.year_earlier()
    if growth and base is not None:
        for entity_id, by_source in _sums(db, cv, base, growth, today, cache).items():
            if entity_id in entities:
                entities[entity_id].base_values = {
                    s: _value(s, amount) for s, (amount, _) in by_source.items()
                }
    query = select(adjustments).where(
        adjustments.c.competition_id == cv.competition_id,
        adjustments.c.effective_on >= window.starts_on,
    )
    if window.ends_on is not None:
        query = query.where(adjustments.c.effective_on < window.ends_on)
    for adjustment in db.execute(query):
        entity = entities.get(adjustment.entity_id)
        if entity is None:
            continue
        if adjustment.kind == "veto":
            entity.manual_veto = True
        elif adjustment.kind == "bonus":
            entity.manual_bonus += Decimal(adjustment.points)
        else:
            entity.manual_deduction += Decimal(adjustment.points)
    return sorted(entities.values(), key=lambda e: e.entity_id)


# -- scoring a window ---------------------------------------------------------------------------


def score_window(
    db: Connection,
    cv: CompetitionVersion,
    window: Window,
    today: date,
    back: int = 1,
    cache: PastBoards | None = None,
) -> list[Row]:
    """The scored board of a window; ``back`` earlier periods feed movement and escalation."""
    key = (cv.competition_id, cv.version, window, back)
    past = cache is not None and window.closed(today)
    if past and key in cache:
        return cache[key]
    rows = _score_window(db, cv, window, today, back, cache)
    if past:
        cache[key] = rows
    return rows


def _score_window(
    db: Connection,
    cv: CompetitionVersion,
    window: Window,
    today: date,
    back: int,
    cache: PastBoards | None,
) -> list[Row]:
    rules = cv.scoring
    entities = gather(db, cv, window, today, cache)
    previous_ranks: dict[str, int] = {}
    history: dict[str, list[str]] = {}
    if back > 0:
        earlier = previous_all_time(today) if window.kind == "all" else window.previous()
        if earlier != window and earlier.starts_on < (earlier.ends_on or today):
            depth = back - 1 if window.kind != "all" else 0
            before = score_window(db, cv, earlier, today, depth, cache)
            if any(r.last_fact_on for r in before):  # an empty period ranks nobody
                previous_ranks = {r.entity_id: r.rank for r in before}
                history = {r.entity_id: [r.colour, *getattr(r, "history", [])] for r in before}
    share = window.elapsed_share(today)
    rows = score_board(
        rules,
        entities,
        schedule_share=share,
        previous_ranks=previous_ranks,
        previous_colours=history,
    )
    for row in rows:
        row.history = history.get(row.entity_id, [])  # type: ignore[attr-defined]
    return rows


def lookback(cv: CompetitionVersion) -> int:
    """Earlier periods a board needs: one for movement; the red streak for escalation (only
    when some rule can deal a red card at all)."""
    colours = cv.rules.get("colours") or {}
    can_be_red = (
        colours.get("red_bottom")
        or colours.get("red_drop")
        or colours.get("schedule_indicator")
        or cv.rules.get("vetoes")
    )
    streak = colours.get("escalate_after_reds") if can_be_red else None
    return max(1, int(streak or 0))


def row_dict(cv: CompetitionVersion, row: Row) -> dict[str, Any]:
    """A scored row as boards store and show it: each indicator cell also carries ``shown``,
    its value in human units (``display.py``)."""
    data = row.to_dict()
    for indicator, cell in zip(cv.rules["indicators"], data["indicators"], strict=True):
        cell["shown"] = display.shown(indicator, cell, row.population)
    return data


def movement_since(window: Window, today: date) -> str:
    """What a board's movement compares with: the previous period; for all time, the board as it
    stood at the end of the previous day (its date)."""
    if window.kind == "all":
        return (today - timedelta(days=1)).isoformat()
    return window.previous().period


def payload(
    cv: CompetitionVersion, window: Window, rows: list[Row], today: date, limit: int
) -> dict[str, Any]:
    """A board as the API answers and the stream pushes it."""
    ends_at = window.ends_at()
    return {
        "competition_id": cv.competition_id,
        "name": cv.name,
        "version": cv.version,
        "window": window.kind,
        "period": window.period,
        "starts_on": window.starts_on.isoformat() if window.kind != "all" else None,
        "ends_on": window.ends_on.isoformat() if window.ends_on else None,
        "ends_at": ends_at.isoformat() if ends_at else None,
        "elapsed_share": str(window.elapsed_share(today)),
        "movement_since": movement_since(window, today),
        "top_n": cv.top_n,
        "entities": len(rows),
        "indicators": [
            {
                "key": i["key"],
                "name": i["name"],
                "unit": i.get("unit") or SOURCES[i["source"]].unit,
                "weight": str(i["weight"]),
            }
            for i in cv.rules["indicators"]
        ],
        "rows": [row_dict(cv, r) for r in rows[:limit]],
    }


def refresh_board(
    store: EventStore,
    db: Connection,
    cv: CompetitionVersion,
    kind: str,
    today: date,
    *,
    publish: bool,
    force: bool = False,
    cache: PastBoards | None = None,
) -> bool:
    """Recompute the current period's board of one window; store the rows that changed and,
    when the board changed and ``publish``, append it to the change log. True if it changed."""
    window = window_of(kind, today)
    rows = score_window(db, cv, window, today, lookback(cv), cache)
    board = payload(cv, window, rows, today, max(cv.top_n, STREAM_ROWS))
    key = and_(
        board_rows.c.competition_id == cv.competition_id,
        board_rows.c.version == cv.version,
        board_rows.c.window == kind,
    )
    meta_key = and_(
        boards.c.competition_id == cv.competition_id,
        boards.c.version == cv.version,
        boards.c.window == kind,
    )
    found = db.execute(select(boards.c.board, boards.c.computed_at).where(meta_key)).first()
    meta, stamp = (found.board, found.computed_at) if found else (None, None)
    # The stored rows as this keeper last wrote them, while the board's stamp says nobody else
    # wrote it since; else read them.
    mine = ("rows", cv.competition_id, cv.version, kind)
    remembered = cache.get(mine) if cache is not None else None
    if remembered is not None and stamp is not None and remembered[0] == stamp:
        stored = remembered[1]
    else:
        stored = dict(db.execute(select(board_rows.c.entity_id, board_rows.c.row).where(key)).all())
    fresh = {r.entity_id: row_dict(cv, r) for r in rows}
    changed = [
        {
            "competition_id": cv.competition_id,
            "version": cv.version,
            "window": kind,
            "entity_id": entity_id,
            "rank": row["rank"],
            "row": row,
        }
        for entity_id, row in fresh.items()
        if stored.get(entity_id) != row
    ]
    gone = set(stored) - set(fresh)
    if changed:
        db.execute(store.upsert(board_rows), changed)
    if gone:
        db.execute(board_rows.delete().where(key, board_rows.c.entity_id.in_(sorted(gone))))
    different = meta != board
    if different or changed or gone:
        stamp = datetime.now(UTC)
        db.execute(
            store.upsert(boards),
            {
                "competition_id": cv.competition_id,
                "version": cv.version,
                "window": kind,
                "period": window.period,
                "board": board,
                "computed_at": stamp,
            },
        )
        # read back: the stamp as the database keeps it
        stamp = db.execute(select(boards.c.computed_at).where(meta_key)).scalar()
    if cache is not None:
        cache[mine] = (stamp, fresh)
    if publish and (different or force):
        db.execute(
            board_changes.insert().values(
                competition_id=cv.competition_id,
                version=cv.version,
                window=kind,
                board=board,
                recorded_at=datetime.now(UTC),
            )
        )
    return different


def top(db: Connection, cv: CompetitionVersion, kind: str, limit: int, offset: int = 0):
    return [
        row
        for (row,) in db.execute(
            select(board_rows.c.row)
            .where(
                board_rows.c.competition_id == cv.competition_id,
                board_rows.c.version == cv.version,
                board_rows.c.window == kind,
                board_rows.c.rank > offset,
            )
            .order_by(board_rows.c.rank, board_rows.c.entity_id)
            .limit(limit)
        )
    ]


def stored_board(db: Connection, cv: CompetitionVersion, kind: str) -> dict[str, Any] | None:
    return db.execute(
        select(boards.c.board).where(
            boards.c.competition_id == cv.competition_id,
            boards.c.version == cv.version,
            boards.c.window == kind,
        )
    ).scalar()


def shown_board(db: Connection, competition_id: str, kind: str) -> dict[str, Any] | None:
    """The shown version's board of a window, with its top rows, in one indexed read: the path
    of every screen and every top-N query."""
    return db.execute(
        select(boards.c.board)
        .join(
            competitions,
            and_(
                competitions.c.competition_id == boards.c.competition_id,
                competitions.c.version == boards.c.version,
            ),
        )
        .where(
            boards.c.competition_id == competition_id,
            boards.c.window == kind,
            competitions.c.status == "active",
        )
    ).scalar()


def entity_row(db: Connection, cv: CompetitionVersion, kind: str, entity_id: str):
    return db.execute(
        select(board_rows.c.row).where(
            board_rows.c.competition_id == cv.competition_id,
            board_rows.c.version == cv.version,
            board_rows.c.window == kind,
            board_rows.c.entity_id == entity_id,
        )
    ).scalar()
