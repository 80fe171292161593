"""The ranking service: competitions, live leaderboards, cards, bulletins, the big screen."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.engine import Connection
from werkzeug.wrappers import Response

from services.ranking import boards
from services.ranking.domain import Bulletin, Competition
from services.ranking.keeper import BoardKeeper
from services.ranking.projections import (
    COMPETITIONS,
    CONSUMED,
    FACTS,
    board_rows,
    bulletins,
    mark_dirty,
    record_facts,
)
from services.ranking.schemas import (
    AroundArgs,
    BoardArgs,
    ChangeRules,
    DefineCompetition,
    IssueBulletin,
    RecordAdjustment,
)
from services.ranking.scoring import parse_period, window_of
from services.ranking.stream import READERS
from shared.clock import today
from shared.commands import UnitOfWork
from shared.consumers import subscribe
from shared.directory import DIRECTORY, DIRECTORY_EVENTS, DirectoryMember
from shared.errors import DomainError, NotFound, Unprocessable
from shared.events import schema_for
from shared.eventstore import RecordedEvent
from shared.http import command, query
from shared.service import ServiceBase

ADMINS = ["district_admin"]


def _competition_out(competition: Competition) -> dict[str, Any]:
    return {
        "id": competition.id,
        "name": competition.name,
        "district": competition.district,
        "version": competition.latest_version,
        "active_version": competition.active_version,
    }


class RankingService(DirectoryMember, ServiceBase):
    name = "ranking"
    projections = [DIRECTORY, COMPETITIONS, FACTS]
    keeper = BoardKeeper()

    # -- facts from the other services --------------------------------------------------------

    def _facts(self, event: RecordedEvent, db: Connection) -> None:
        if record_facts(self.store.events, db, event):
            self.keeper.wake()

    @subscribe("alliance", DIRECTORY_EVENTS, ordered=True)
    def on_directory_event(self, event: RecordedEvent, db: Connection) -> None:
        # Membership decides which cluster a village's facts count for: every board may move.
        DIRECTORY.apply(event, db)
        mark_dirty(self.store.events, db, {"*"}, str(event.event_id))
        self.keeper.wake()

    @subscribe("alliance", CONSUMED["alliance"])
    def on_alliance_fact(self, event: RecordedEvent, db: Connection) -> None:
        self._facts(event, db)

    @subscribe("land", CONSUMED["land"])
    def on_land_fact(self, event: RecordedEvent, db: Connection) -> None:
        self._facts(event, db)

    @subscribe("trusteeship", CONSUMED["trusteeship"])
    def on_trusteeship_fact(self, event: RecordedEvent, db: Connection) -> None:
        self._facts(event, db)

    @subscribe("finance", CONSUMED["finance"])
    def on_finance_fact(self, event: RecordedEvent, db: Connection) -> None:
        self._facts(event, db)

    @subscribe("commerce", CONSUMED["commerce"])
    def on_commerce_fact(self, event: RecordedEvent, db: Connection) -> None:
        self._facts(event, db)

    # -- competitions -------------------------------------------------------------------------

    @command(
        "POST", "/api/v1/ranking/competitions", body=DefineCompetition, roles=ADMINS, status=201
    )
    def define_competition(self, request: Any, body: dict[str, Any]) -> Any:
        """Define a competition (version 1 of its rules); its boards appear once built."""
        self.store.principal.require_scope(district=body["district"])

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            competition = uow.create(Competition, body["id"])
            competition.define(body["district"], body["name"], body["rules"])
            return _competition_out(competition)

        outcome = self.store.run(decide)
        self.keeper.wake()
        return outcome

    @command(
        "POST",
        "/api/v1/ranking/competitions/<competition_id>/rules",
        body=ChangeRules,
        roles=ADMINS,
        status=201,
    )
    def change_rules(self, request: Any, competition_id: str, body: dict[str, Any]) -> Any:
        """New rules: version n+1 is built beside the shown one and replaces it when caught up."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            competition = uow.get(Competition, competition_id)
            self.store.principal.require_scope(district=competition.district)
            competition.change_rules(body["rules"])
            return _competition_out(competition)

        return self.store.run(decide)

    @command(
        "POST",
        "/api/v1/ranking/competitions/<competition_id>/adjustments",
        body=RecordAdjustment,
        roles=ADMINS,
        status=201,
    )
    def record_adjustment(self, request: Any, competition_id: str, body: dict[str, Any]) -> Any:
        """A manual bonus (加分), deduction (扣分) or veto (一票否决) for one entity."""

        def decide(uow: UnitOfWork) -> dict[str, Any]:
            competition = uow.get(Competition, competition_id)
            self.store.principal.require_scope(district=competition.district)
            competition.adjust(
                body["id"],
                body["entity_id"],
                body["kind"],
                body["points"],
                body["effective_on"],
                body["reason"],
            )
            return {"id": body["id"], "competition_id": competition_id}

        outcome = self.store.run(decide)
        with self.store.events.transaction() as tx:
            mark_dirty(self.store.events, tx.connection, {"*"}, f"adjustment:{body['id']}")
        self.keeper.wake()
        return outcome

    @query("/api/v1/ranking/competitions", roles=READERS)
    def list_competitions(self, request: Any) -> dict[str, Any]:
        """Every competition with the rule version its boards show."""
        with self.store.events.engine.connect() as db:
            found: dict[str, dict[str, Any]] = {}
            for cv in boards.versions(db):
                entry = found.setdefault(
                    cv.competition_id,
                    {"id": cv.competition_id, "name": cv.name, "district": cv.district},
                )
                entry["latest_version"] = cv.version
                if cv.status == "active":
                    entry["active_version"] = cv.version
                    entry["windows"] = cv.windows
        return {"competitions": list(found.values())}

    @query("/api/v1/ranking/competitions/<competition_id>", roles=READERS)
    def get_competition(self, request: Any, competition_id: str) -> dict[str, Any]:
        """A competition's rule versions and which one is shown (building → active → retired)."""
        with self.store.events.engine.connect() as db:
            known = boards.versions(db, competition_id=competition_id)
        if not known:
            raise NotFound(f"competition {competition_id!r} does not exist")
        active = [cv.version for cv in known if cv.status == "active"]
        return {
            "id": competition_id,
            "name": known[-1].name,
            "district": known[-1].district,
            "active_version": active[0] if active else None,
            "versions": [
                {"version": cv.version, "status": cv.status, "rules": cv.rules} for cv in known
            ],
        }

    # -- boards -------------------------------------------------------------------------------

    def _shown(self, db: Connection, competition_id: str, window: str | None):
        cv = boards.active_version(db, competition_id)
        if cv is None:
            if not boards.versions(db, competition_id=competition_id):
                raise NotFound(f"competition {competition_id!r} does not exist")
            raise NotFound(f"competition {competition_id!r} has no board yet (building)")
        window = window or cv.windows[0]
        if window not in cv.windows:
            raise Unprocessable(
                f"the competition has no {window} board",
                errors={"window": [f"one of {', '.join(cv.windows)}"]},
            )
        return cv, window

    @query("/api/v1/ranking/competitions/<competition_id>/board", args=BoardArgs, roles=READERS)
    def board(self, request: Any, competition_id: str, args: dict[str, Any]) -> dict[str, Any]:
        """The top N of a window: the live period, or a past ``period`` (history)."""
        with self.store.events.engine.connect() as db:
            if args["window"] and not args["period"]:
                # The common case in one read: the stored board carries its top rows.
                board = boards.shown_board(db, competition_id, args["window"])
                wanted = args["offset"] + (args["top"] or (board or {}).get("top_n", 0))
                if board is not None and wanted <= len(board["rows"]):
                    rows = board["rows"][args["offset"] : wanted]
                    return {**board, "rows": rows}
            cv, window = self._shown(db, competition_id, args["window"])
            limit = args["top"] or cv.top_n
            day = today()
            if args["period"] and args["period"] != window_of(window, day).period:
                try:
                    past = parse_period(window, args["period"])
                except ValueError as exc:
                    raise DomainError(str(exc), "period") from None
                rows = boards.score_window(db, cv, past, day, boards.lookback(cv))
                board = boards.payload(cv, past, rows, day, args["offset"] + limit)
                board["rows"] = board["rows"][args["offset"] :]
                return board
            board = boards.stored_board(db, cv, window)
            if board is None:
                raise NotFound("the board is being built")
            board = dict(board)
            board["rows"] = boards.top(db, cv, window, limit, args["offset"])
            return board

    @query(
        "/api/v1/ranking/competitions/<competition_id>/board/around/<entity_id>",
        args=AroundArgs,
        roles=READERS,
    )
    def around(
        self, request: Any, competition_id: str, entity_id: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """An entity and its neighbours on the live board."""
        with self.store.events.engine.connect() as db:
            cv, window = self._shown(db, competition_id, args["window"])
            row = boards.entity_row(db, cv, window, entity_id)
            if row is None:
                raise NotFound(f"{entity_id!r} is not on the board")
            radius = args["radius"]
            rows = [
                r
                for (r,) in db.execute(
                    select(board_rows.c.row)
                    .where(
                        and_(
                            board_rows.c.competition_id == cv.competition_id,
                            board_rows.c.version == cv.version,
                            board_rows.c.window == window,
                            board_rows.c.rank.between(row["rank"] - radius, row["rank"] + radius),
                        )
                    )
                    .order_by(board_rows.c.rank, board_rows.c.entity_id)
                )
            ]
        return {"window": window, "entity_id": entity_id, "rank": row["rank"], "rows": rows}

    @query(
        "/api/v1/ranking/competitions/<competition_id>/entities/<entity_id>",
        args=AroundArgs,
        roles=READERS,
    )
    def entity(
        self, request: Any, competition_id: str, entity_id: str, args: dict[str, Any]
    ) -> dict[str, Any]:
        """One entity's rank, score, indicators and card on the live board."""
        with self.store.events.engine.connect() as db:
            cv, window = self._shown(db, competition_id, args["window"])
            row = boards.entity_row(db, cv, window, entity_id)
            board = boards.stored_board(db, cv, window) or {}
        if row is None:
            raise NotFound(f"{entity_id!r} is not on the board")
        return {"window": window, "period": board.get("period"), "of": board.get("entities"), **row}

    # -- bulletins ----------------------------------------------------------------------------

    @command(
        "POST",
        "/api/v1/ranking/competitions/<competition_id>/bulletins",
        body=IssueBulletin,
        roles=ADMINS,
        status=201,
    )
    def issue_bulletin(self, request: Any, competition_id: str, body: dict[str, Any]) -> Any:
        """Freeze the board of a closed period (also done by itself at period close)."""
        bulletin = self.keeper.issue_bulletin(
            competition_id, body["window"], body["period"], "admin", self.store.context()
        )
        return _bulletin_out(bulletin)

    @query("/api/v1/ranking/competitions/<competition_id>/bulletins", roles=READERS)
    def list_bulletins(self, request: Any, competition_id: str) -> dict[str, Any]:
        """The competition's bulletins, newest first."""
        with self.store.events.engine.connect() as db:
            rows = db.execute(
                select(bulletins)
                .where(bulletins.c.competition_id == competition_id)
                .order_by(bulletins.c.issued_at.desc())
            ).all()
        return {
            "bulletins": [
                {
                    "id": r.bulletin_id,
                    "window": r.window,
                    "period": r.period,
                    "rule_version": r.rule_version,
                    "issued_at": r.issued_at.isoformat(),
                    "top": r.summary,
                }
                for r in rows
            ]
        }

    @query("/api/v1/ranking/bulletins/<bulletin_id>", roles=READERS)
    def get_bulletin(self, request: Any, bulletin_id: str) -> dict[str, Any]:
        """A bulletin: the frozen board with its rule version."""
        return _bulletin_out(self.store.get(Bulletin, bulletin_id))

    @query("/api/v1/ranking/bulletins/<bulletin_id>/csv", roles=READERS)
    def bulletin_csv(self, request: Any, bulletin_id: str) -> Response:
        """A bulletin as CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese)."""
        data = _bulletin_out(self.store.get(Bulletin, bulletin_id))
        out = io.StringIO()
        writer = csv.writer(out)
        keys = [i["key"] for i in (data["rows"][0]["indicators"] if data["rows"] else [])]
        writer.writerow(
            ["排名", "编号", "名称", "得分", "升降", "牌色", "约谈", "否决", "加分", "扣分"]
            + [f"{k}:原值" for k in keys]
            + [f"{k}:得分" for k in keys]
        )
        for row in data["rows"]:
            cells = {c["key"]: c for c in row["indicators"]}
            writer.writerow(
                [
                    row["rank"],
                    row["entity_id"],
                    row["name"],
                    row["score"],
                    "" if row["movement"] is None else row["movement"],
                    row["colour"],
                    "是" if row["escalated"] else "",
                    "是" if row["vetoed"] else "",
                    row["bonus"],
                    row["deduction"],
                ]
                + [cells[k]["raw"] for k in keys]
                + [cells[k]["contribution"] for k in keys]
            )
        name = bulletin_id.replace(":", "_")
        return Response(
            "\ufeff" + out.getvalue(),
            content_type="text/csv; charset=utf-8",
            headers={
                "Content-Disposition": f'attachment; filename="{name}.csv"',
                "X-Rule-Version": str(data["rule_version"]),
            },
        )


def _bulletin_out(bulletin: Bulletin) -> dict[str, Any]:
    stored = schema_for("BulletinIssued").dump(bulletin.data)
    return {"id": bulletin.id, **{k: v for k, v in stored.items() if k != "bulletin_id"}}
