"""Live push and the big screen, served by the front door in the connection's own green thread
(an open stream never holds a nameko worker).

``GET /api/v1/ranking/competitions/<id>/stream?window=month`` is a Server-Sent Events stream:

* ``event: snapshot`` first: the shown board (``id:`` = the board-change position it reflects);
* ``event: change`` whenever the board changes (``id:`` = its position in the change log);
* a client that reconnects with ``Last-Event-ID`` (header, or ``last_event_id`` in the query)
  gets the changes after that position instead of a snapshot;
* ``: keepalive`` comments every 15 s keep proxies from closing an idle stream.

Authentication: ``Authorization: Bearer <token>``, or ``?access_token=<token>`` because a
browser's EventSource cannot set headers. The token is checked exactly as the API checks it
(signature, expiry, role); readers are the roles that may read boards. The screen page takes the
token from its URL fragment (``/screen/<id>#token=...``), which browsers never send to servers or
write to access logs, and passes it to the stream in the query string.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from queue import Empty
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from services.ranking import boards
from services.ranking.keeper import sse
from services.ranking.projections import board_changes
from shared import auth
from shared.errors import NotFound, Problem, Unprocessable
from shared.web import problem_response

if TYPE_CHECKING:
    from services.ranking.keeper import BoardKeeper

READERS = ("district_admin", "alliance_secretary", "village_cadre", "ops", "service", "screen")
STREAM = re.compile(r"^/api/v1/ranking/competitions/([A-Za-z0-9._:-]{1,64})/stream$")
KEEPALIVE_SECONDS = 15.0
SCREEN = Path(__file__).resolve().parent / "screen"


def stream_path(path: str) -> bool:
    return STREAM.match(path) is not None


def principal_of(request: Request, secret: str) -> auth.Principal:
    header = request.headers.get("Authorization")
    token = request.args.get("access_token")
    if not header and token:
        header = f"Bearer {token}"
    principal = auth.authenticate(secret, header)
    auth.authorise(principal, READERS)
    return principal


def stream_app(keeper: BoardKeeper) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        match = STREAM.match(request.path)
        assert match is not None
        competition_id = match.group(1)
        try:
            principal_of(request, keeper.secret)
            window, resume = _open(keeper, request, competition_id)
        except Problem as problem:
            return problem_response(problem, request.path)(environ, start_response)
        # Write every event as it is yielded (eventlet would otherwise gather 4 KiB first).
        environ["eventlet.minimum_write_chunk_size"] = 0
        queue = keeper.broadcaster.subscribe(competition_id)
        response = Response(
            _events(keeper, queue, competition_id, window, resume),
            content_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        return response(environ, start_response)

    return app


def _open(keeper: BoardKeeper, request: Request, competition_id: str) -> tuple[str, int | None]:
    """(window, position to resume after or None), or a problem."""
    with keeper.store.engine.connect() as db:
        known = boards.versions(db, competition_id=competition_id)
    if not known:
        raise NotFound(f"competition {competition_id!r} does not exist")
    windows = known[-1].windows
    window = request.args.get("window") or windows[0]
    if window not in windows:
        raise Unprocessable(
            f"the competition has no {window} board",
            errors={"window": [f"one of {', '.join(windows)}"]},
        )
    last = request.headers.get("Last-Event-ID") or request.args.get("last_event_id")
    if last is not None and not last.isdigit():
        raise Unprocessable(
            "Last-Event-ID must be a board-change position",
            errors={"Last-Event-ID": ["a non-negative integer"]},
        )
    return window, None if last is None else int(last)


def _events(
    keeper: BoardKeeper, queue: Any, competition_id: str, window: str, resume: int | None
) -> Iterator[bytes]:
    sent, shown_version = 0, 0
    try:
        yield b"retry: 2000\n\n"
        with keeper.store.engine.connect() as db:
            head = keeper.broadcaster.head(db)  # read before the board: never newer than it
            cv = boards.active_version(db, competition_id)
            if resume is not None:
                missed = db.execute(
                    select(board_changes)
                    .where(
                        board_changes.c.competition_id == competition_id,
                        board_changes.c.window == window,
                        board_changes.c.position > resume,
                    )
                    .order_by(board_changes.c.position)
                ).all()
                board = missed[-1].board if missed else None
                sent = missed[-1].position if missed else resume
                if board is not None:
                    shown_version = missed[-1].version
                    yield sse("change", sent, board)
            elif cv is not None:
                board = boards.stored_board(db, cv, window)
                if board is not None:
                    sent, shown_version = head, cv.version
                    yield sse("snapshot", head, board)
        while True:
            try:
                item = queue.get(timeout=KEEPALIVE_SECONDS)
            except Empty:
                yield b": keepalive\n\n"
                continue
            # Never step back to an older rule version once a newer one is shown.
            if item["position"] <= sent or item["window"] != window:
                continue
            if item["version"] < shown_version:
                continue
            sent, shown_version = item["position"], item["version"]
            yield sse("change", sent, item["board"])
    finally:
        keeper.broadcaster.unsubscribe(competition_id, queue)


def screen_app() -> Callable[..., Any]:
    """``/screen``, ``/screen/<competition>`` and ``/screen/assets/<file>``: static files."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if path.startswith("/screen/assets/"):
            name = path[len("/screen/assets/") :]
            file = (SCREEN / name).resolve()
            if file.parent != SCREEN or not file.is_file():
                response = problem_response(NotFound(f"no resource at {path}"), path)
                return response(environ, start_response)
        else:
            file = SCREEN / "index.html"
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        response = Response(
            file.read_bytes(),
            content_type=content_type,
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": "default-src 'self'; img-src 'self' data:",
                "X-Content-Type-Options": "nosniff",
            },
        )
        return response(environ, start_response)

    return app
