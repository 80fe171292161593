"""Live push: the SSE stream of a board (snapshot, changes, Last-Event-ID), its authentication,
and two ranking replicas on one PostgreSQL database whose streams both see every change."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
import requests

from services.ranking.service import RankingService
from shared.config import LOCAL_TZ
from tests.test_ranking_support import STUBS, define, district_of_three, signed, wait_active


class Stream:
    """A Server-Sent Events client, one event at a time."""

    def __init__(self, url: str, **kwargs: Any) -> None:
        self.response = requests.get(url, stream=True, timeout=(5, 20), **kwargs)
        self.lines = self.response.iter_lines(chunk_size=1, decode_unicode=True)

    def next(self) -> dict[str, Any]:
        event: dict[str, Any] = {}
        for line in self.lines:
            if not line:
                if "data" in event:
                    return event
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            event[name] = json.loads(value) if name == "data" else value
        raise AssertionError("the stream ended")

    def until(self, check: Any, limit: int = 20) -> dict[str, Any]:
        for _ in range(limit):
            event = self.next()
            if check(event["data"]):
                return event
        raise AssertionError("no matching event")

    def close(self) -> None:
        self.response.close()


def leader(event_data: dict[str, Any]) -> str:
    return event_data["rows"][0]["entity_id"] if event_data["rows"] else ""


@pytest.mark.parametrize("backend", ["sqlite"])
def test_stream_snapshot_then_changes_and_resumption(start_services) -> None:
    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "live")
    wait_active(api, "live")
    url = f"{api.base}/api/v1/ranking/competitions/live/stream"
    token = api.token("village_cadre")

    stream = Stream(f"{url}?access_token={token}")
    assert stream.response.headers["Content-Type"].startswith("text/event-stream")
    snapshot = stream.next()
    assert snapshot["event"] == "snapshot" and snapshot["data"]["window"] == "month"
    signed(api, "S1", "v4", "12.00", datetime.now(LOCAL_TZ).date())
    change = stream.until(lambda board: leader(board) == "c3")
    assert change["event"] == "change" and int(change["id"]) > int(snapshot["id"])
    assert change["data"]["rows"][0]["indicators"][0]["raw"] == "12"
    stream.close()

    # a screen that lost its connection resumes after the last id it saw
    resumed = Stream(
        url, headers={"Authorization": f"Bearer {token}", "Last-Event-ID": snapshot["id"]}
    )
    again = resumed.next()
    assert again["event"] == "change" and again["id"] == change["id"]
    resumed.close()

    anonymous = requests.get(url, timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["Content-Type"] == "application/problem+json"
    stranger = requests.get(f"{url}?access_token={api.token('household')}", timeout=5)
    assert stranger.status_code == 403
    forged = requests.get(f"{url}?access_token=not-a-token", timeout=5)
    assert forged.status_code == 401
    year = requests.get(f"{url}?access_token={token}&window=year", timeout=5)
    assert year.status_code == 422 and "window" in year.json()["errors"]
    missing = requests.get(
        f"{api.base}/api/v1/ranking/competitions/none/stream?access_token={token}", timeout=5
    )
    assert missing.status_code == 404


@pytest.mark.parametrize("backend", ["postgres"])
def test_every_replica_streams_every_change(start_services, broker) -> None:
    """Two ranking replicas on one database: whichever applies an event, both streams see it."""
    first = start_services(RankingService, *STUBS, amqp_uri=broker)
    second = start_services(RankingService, amqp_uri=broker, SERVICE_URL=first.base)
    district_of_three(first)
    define(first, "replicas")
    wait_active(first, "replicas")
    token = first.token("ops")
    path = "/api/v1/ranking/competitions/replicas/stream?window=all&access_token=" + token
    streams = [Stream(first.base + path), Stream(second.base + path)]
    for stream in streams:
        assert stream.next()["event"] == "snapshot"
    day = datetime.now(LOCAL_TZ).date()
    for n, (village, cluster) in enumerate((("v4", "c3"), ("v2", "c2"), ("v1", "c1"))):
        signed(first, f"RP{n}", village, f"{10 * (n + 1)}.00", day)
        for stream in streams:
            stream.until(lambda board, cluster=cluster: leader(board) == cluster)
    for stream in streams:
        stream.close()


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_wall_display_token_reads_boards_and_nothing_else(start_services, tmp_path) -> None:
    import os
    import subprocess
    import sys
    import time

    from shared import auth
    from tests.conftest import SECRET

    api = start_services(RankingService, *STUBS)
    district_of_three(api)
    define(api, "wall")
    wait_active(api, "wall")
    # the token a wall display is opened with: `clustergov token --role screen --ttl <a year>`
    year = 365 * 24 * 3600
    env = {**os.environ, "CLUSTERGOV_SECRET": SECRET}
    minted = subprocess.run(
        [sys.executable, "-m", "shared.cli", "token", "--role", "screen", "--ttl", str(year)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    token = minted.stdout.strip()
    principal = auth.verify(SECRET, token)
    assert principal.role == "screen" and principal.expires_at > time.time() + year - 60
    bearer = {"Authorization": f"Bearer {token}"}
    board = requests.get(
        f"{api.base}/api/v1/ranking/competitions/wall/board", headers=bearer, timeout=10
    )
    assert board.status_code == 200 and len(board.json()["rows"]) == 3
    stream = Stream(f"{api.base}/api/v1/ranking/competitions/wall/stream?access_token={token}")
    try:
        assert stream.next()["event"] == "snapshot"
    finally:
        stream.close()
    body = {"id": "x", "name": "x", "district": "D1", "rules": {}}
    refused = requests.post(
        f"{api.base}/api/v1/ranking/competitions", json=body, headers=bearer, timeout=10
    )
    assert refused.status_code == 403  # reads boards, defines nothing
    land = requests.post(f"{api.base}/api/v1/land/test-events", json={}, headers=bearer, timeout=10)
    assert land.status_code == 403
