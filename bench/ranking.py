"""The ranking service on RabbitMQ and PostgreSQL: how fast a fact reaches the big screen, and
how fast a province-scale board answers.

What is measured
    1. ``latency``: from a command's commit to the board change arriving on an SSE stream.
       A producer process (``bench.ranking:BenchAlliance,bench.ranking:BenchLand``: stand-ins that
       append events of the contract's shape) and a ranking process (``clustergov up --services
       ranking``) run on this machine with their own PostgreSQL databases and a RabbitMQ virtual
       host of their own. A competition of ``--clusters`` clusters of 5 villages each is defined;
       the benchmark holds its SSE stream open (all-time board, every cluster on it). Then
       ``--rate`` commands per second for ``--seconds`` each sign a 1-mu land contract
       (``POST .../test-events``, one transaction each, from ``--writers`` threads on a pacer).
       A command counts as committed when its response arrives; it counts as on the screen when
       a streamed board's total transferred area first includes as many contracts as had been
       committed by then (the relay publishes in commit order).
       Baseline, same run: commit to the ranking consumer's apply (its inbox row's
       ``processed_at``), i.e. the delivery pipeline alone, without the board and the stream.

    2. ``top20``: a province-scale competition, 30,000 villages in 2,000 clusters, one land fact
       per village, written straight into the ranking database (directory and facts tables), so
       the board keeper builds the board (its time is reported). Then ``--queries`` sequential
       ``GET .../board?top=20`` over one keep-alive HTTP connection, p50/p99. Baselines, same run:
       the same top 20 by raw SQL ``ORDER BY rank LIMIT 20`` over the board rows (psycopg, no
       HTTP), and the top 20 computed from the facts by raw SQL (join with memberships, GROUP BY,
       ORDER BY ... LIMIT 20) — what a board without materialisation would cost per query.

    3. ``live`` (after ``top20``): a live change on that province board, commit → SSE latency.
       ``--live-rate`` commands per second for ``--live-seconds`` each sign a contract on a
       province village large enough to put its cluster at the top; the benchmark holds the
       province's all-time stream open and times each command until a streamed board's top row
       carries at least its area.

Run
    python -m bench.ranking --phases top20,live --queries 200
    python -m bench.ranking                        # both, about a minute on 2 cores
    python -m bench.ranking --phases latency --rate 200 --seconds 20
    python -m bench.ranking --phases top20 --queries 2000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from shared.eventstore import NewEvent
from shared.http import command
from shared.service import ServiceBase

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
DISTRICT = "BENCH"
PROVINCE = "PROVINCE"


# -- stand-in producers (run inside the producer process) ---------------------------------------


def _producer(source: str) -> type:
    class Producer(ServiceBase):
        name = source

        @command("POST", "/api/v1/{service}/test-events", roles=["ops"], status=201)
        def record(self, request: Any) -> dict[str, Any]:
            """Append one raw event of the contract's shape."""
            body = json.loads(request.get_data())
            events = self.store.events
            with events.transaction() as tx:
                version = events.stream_version(body["stream_id"], tx.connection)
                recorded = events.append(
                    tx,
                    [
                        NewEvent(
                            "Bench",
                            body["stream_id"],
                            version + 1,
                            body["type"],
                            body["data"],
                            metadata={"district": DISTRICT},
                        )
                    ],
                )
            return {"event_id": str(recorded[0].event_id), "position": recorded[0].position}

    Producer.__name__ = Producer.__qualname__ = f"Bench{source.capitalize()}"
    return Producer


BenchAlliance = _producer("alliance")
BenchLand = _producer("land")


# -- helpers --------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def figures(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"n={len(ms)} p50={percentile(ms, 0.5):.1f} ms p99={percentile(ms, 0.99):.1f} ms "
        f"max={max(ms):.1f} ms mean={statistics.fmean(ms):.1f} ms"
    )


class Setup:
    def __init__(self, args: argparse.Namespace, logs: Path) -> None:
        from shared import auth

        self.args = args
        self.logs = logs
        self.server = args.postgres.rstrip("/")
        self.prefix = args.prefix
        self.token = auth.mint(SECRET, role="ops", ttl_seconds=3600)
        self.admin = auth.mint(SECRET, role="district_admin", ttl_seconds=3600)
        self.children: list[Any] = []

    def database(self, service: str) -> str:
        return f"{self.server}/{self.prefix}_{service}"

    def fresh_databases(self) -> None:
        from sqlalchemy import create_engine

        from shared.migrate import upgrade

        admin = create_engine(
            self.server.replace("postgresql://", "postgresql+psycopg://") + "/postgres",
            isolation_level="AUTOCOMMIT",
        )
        with admin.connect() as conn:
            for service in ("alliance", "land", "ranking"):
                name = f"{self.prefix}_{service}"
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        for service in ("alliance", "land", "ranking"):
            upgrade(self.database(service))

    def vhost(self) -> str:
        vhost = self.args.vhost
        subprocess.run(["rabbitmqctl", "add_vhost", vhost], capture_output=True, timeout=60)
        subprocess.run(
            ["rabbitmqctl", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        return self.args.amqp.rstrip("/") + "/" + vhost

    def start(self) -> tuple[Any, Any]:
        from bench.pipeline import Child

        env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERGOV_")}
        env.update(
            CLUSTERGOV_AMQP_URI=self.vhost(),
            CLUSTERGOV_DATABASE_URL=f"{self.server}/{self.prefix}_{{service}}",
            CLUSTERGOV_SECRET=SECRET,
        )
        producer = Child(
            "producer",
            "bench.ranking:BenchAlliance,bench.ranking:BenchLand",
            env,
            self.logs / "producer.log",
        )
        producer.start()
        producer.wait_ready()
        ranking = Child(
            "ranking",
            "ranking",
            {**env, "CLUSTERGOV_SERVICE_URL": producer.base},
            self.logs / "ranking.log",
        )
        ranking.start()
        ranking.wait_ready()
        self.children = [producer, ranking]
        return producer, ranking

    def stop(self) -> None:
        for child in reversed(self.children):
            if child.popen is not None and child.popen.poll() is None:
                child.popen.terminate()
                child.popen.wait(30)


def post(session: Any, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
    response = session.post(
        url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )
    if response.status_code != 201:
        raise RuntimeError(f"{url}: {response.status_code} {response.text}")
    return response.json()


def define(session: Any, ranking: Any, admin: str, competition_id: str, district: str) -> None:
    post(
        session,
        ranking.base + "/api/v1/ranking/competitions",
        {
            "id": competition_id,
            "name": "基准比拼",
            "district": district,
            "rules": {
                "entity": "cluster",
                "indicators": [
                    {
                        "key": "land",
                        "name": "土地流转",
                        "source": "land_transferred_mu",
                        "weight": "1",
                    }
                ],
                "windows": ["all", "month"],
                "top_n": 20,
                "colours": {"red_bottom": 3},
            },
        },
        admin,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        body = session.get(
            f"{ranking.base}/api/v1/ranking/competitions/{competition_id}",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=30,
        ).json()
        if body.get("active_version") == 1:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{competition_id} was not built in time")


# -- 1. latency ----------------------------------------------------------------------------------


def latency(setup: Setup, producer: Any, ranking: Any) -> dict[str, Any]:
    import requests

    args = setup.args
    session = requests.Session()
    emit_url = producer.base + "/api/v1/{}/test-events"
    for c in range(args.clusters):
        cid = f"bc{c:03d}"
        post(
            session,
            emit_url.format("alliance"),
            {
                "type": "ClusterFormed",
                "stream_id": cid,
                "data": {
                    "cluster_id": cid,
                    "alliance_id": "BA",
                    "district": DISTRICT,
                    "name": f"组团{c}",
                    "theme_industry": "茶",
                    "lead_unit_id": None,
                },
            },
            setup.token,
        )
        for v in range(5):
            vid = f"bv{c:03d}{v}"
            facts = {
                "population": 500,
                "households": 150,
                "contracted_area_mu": "800",
                "weak": False,
            }
            for type_, data in (
                (
                    "MemberUnitRegistered",
                    {
                        "unit_id": vid,
                        "district": DISTRICT,
                        "name": f"村{c}-{v}",
                        "unit_type": "village",
                        "village": facts,
                        "bank_code": None,
                    },
                ),
                (
                    "MemberJoined",
                    {
                        "unit_id": vid,
                        "cluster_id": cid,
                        "alliance_id": "BA",
                        "unit_type": "village",
                        "joined_on": "2020-01-01",
                    },
                ),
            ):
                post(
                    session,
                    emit_url.format("alliance"),
                    {"type": type_, "stream_id": vid, "data": data},
                    setup.token,
                )
    define(session, ranking, setup.admin, "bench-live", DISTRICT)

    arrivals: list[tuple[float, int]] = []  # (time, contracts on the board)
    stop = threading.Event()
    opened = threading.Event()

    def listen() -> None:
        url = (
            f"{ranking.base}/api/v1/ranking/competitions/bench-live/stream"
            f"?window=all&access_token={setup.token}"
        )
        with requests.get(url, stream=True, timeout=(5, 60)) as response:
            data = ""
            for line in response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("data: "):
                    data = line[6:]
                elif not line and data:
                    board = json.loads(data)
                    total = sum(float(r["indicators"][0]["raw"]) for r in board["rows"])
                    arrivals.append((time.time(), round(total)))
                    opened.set()
                    data = ""
                if stop.is_set():
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    opened.wait(30)

    commits: list[tuple[float, str]] = []  # (commit time, event id), in commit order
    lock = threading.Lock()
    count = args.rate * args.seconds
    today = datetime.now(UTC).date().isoformat()

    def sign(n: int, local: Any) -> None:
        village_id = f"bv{n % args.clusters:03d}{(n // args.clusters) % 5}"
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        body = post(
            session,
            emit_url.format("land"),
            {
                "type": "TransferContractSigned",
                "stream_id": f"BK{n}",
                "data": {
                    "contract_id": f"BK{n}",
                    "parcel_id": f"BP{n}",
                    "village_id": village_id,
                    "district": DISTRICT,
                    "transferee_id": "E",
                    "transferee_type": "enterprise",
                    "area_mu": "1.00",
                    "starts_on": today,
                    "ends_on": "2036-01-01",
                    "rent_fen_per_mu_year": 80000,
                    "signed_on": today,
                },
            },
            setup.token,
        )
        with lock:
            commits.append((time.time(), body["event_id"]))

    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    started = time.monotonic()
    with ThreadPoolExecutor(args.writers) as pool:
        for n in range(count):
            delay = started + n / args.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(sign, n, local)
    offered = count / (time.monotonic() - started)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (not arrivals or arrivals[-1][1] < count):
        time.sleep(0.05)
    stop.set()
    end_to_end = []
    for k, (committed_at, _) in enumerate(commits, start=1):
        seen = next((t for t, total in arrivals if total >= k and t >= committed_at), None)
        if seen is None:
            seen = next((t for t, total in arrivals if total >= k), None)
        if seen is not None:
            end_to_end.append(max(0.0, seen - committed_at))
    delivered = _inbox_latencies(setup, dict((e, t) for t, e in commits))
    return {
        "offered_per_second": round(offered, 1),
        "commands": count,
        "on_screen": len(end_to_end),
        "end_to_end": figures(end_to_end) if end_to_end else "none arrived",
        "baseline_delivery": figures(delivered) if delivered else "none",
        "stream_events": len(arrivals),
    }


def _inbox_latencies(setup: Setup, committed: dict[str, float]) -> list[float]:
    from sqlalchemy import create_engine, text

    engine = create_engine(
        setup.database("ranking").replace("postgresql://", "postgresql+psycopg://")
    )
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT event_id::text, processed_at FROM inbox WHERE consumer = :c"),
            {"c": "ranking.on_land_fact"},
        ).all()
    engine.dispose()
    return [
        max(0.0, processed.timestamp() - committed[event_id])
        for event_id, processed in rows
        if event_id in committed
    ]


# -- 2. top 20 of a province -----------------------------------------------------------------------


def top20(setup: Setup, ranking: Any) -> dict[str, Any]:
    import psycopg
    import requests
    from sqlalchemy import create_engine

    from services.ranking.projections import dirty, facts
    from shared.directory import clusters, memberships, units

    args = setup.args
    url = setup.database("ranking").replace("postgresql://", "postgresql+psycopg://")
    engine = create_engine(url)
    villages = args.villages
    per_cluster = villages // args.province_clusters
    day = datetime.now(UTC).date()
    with engine.begin() as conn:
        conn.execute(
            clusters.insert(),
            [
                {
                    "cluster_id": f"pc{c:05d}",
                    "alliance_id": "PA",
                    "district": PROVINCE,
                    "name": f"省组团{c}",
                }
                for c in range(args.province_clusters)
            ],
        )
        conn.execute(
            units.insert(),
            [
                {
                    "unit_id": f"pv{v:06d}",
                    "district": PROVINCE,
                    "name": f"省村{v}",
                    "unit_type": "village",
                    "population": 300 + v % 700,
                    "households": 100,
                    "contracted_area_mu": "900",
                    "weak": v % 5 == 0,
                }
                for v in range(villages)
            ],
        )
        conn.execute(
            memberships.insert(),
            [
                {
                    "unit_id": f"pv{v:06d}",
                    "cluster_id": f"pc{v // per_cluster:05d}",
                    "alliance_id": "PA",
                    "joined_on": date(2020, 1, 1),
                }
                for v in range(villages)
            ],
        )
        conn.execute(
            facts.insert(),
            [
                {
                    "event_id": str(uuid.uuid4()),
                    "part": 0,
                    "source": "land_transferred_mu",
                    "subject_kind": "village",
                    "subject_id": f"pv{v:06d}",
                    "day": day,
                    "amount": (v * 7919) % 100_000,
                }
                for v in range(villages)
            ],
        )
        conn.execute(dirty.insert().values(mark=str(uuid.uuid4()), source="*"))
    engine.dispose()
    session = requests.Session()
    started = time.monotonic()
    define(session, ranking, setup.admin, "province", PROVINCE)
    build = time.monotonic() - started

    headers = {"Authorization": f"Bearer {setup.token}"}
    board_url = f"{ranking.base}/api/v1/ranking/competitions/province/board?window=all&top=20"
    first = session.get(board_url, headers=headers, timeout=30).json()
    assert len(first["rows"]) == 20 and first["entities"] == args.province_clusters, first
    for _ in range(50):  # warm-up
        session.get(board_url, headers=headers, timeout=30)
    http = []
    for _ in range(args.queries):
        t0 = time.perf_counter()
        response = session.get(board_url, headers=headers, timeout=30)
        http.append(time.perf_counter() - t0)
        assert response.status_code == 200

    dsn = setup.database("ranking")
    materialised, computed = [], []
    with psycopg.connect(dsn) as conn:
        top_sql = (
            "SELECT row FROM ranking_board_rows WHERE competition_id = 'province' AND version = 1 "
            "AND \"window\" = 'all' ORDER BY rank LIMIT 20"
        )
        from_facts = (
            "SELECT m.cluster_id, sum(f.amount) AS total FROM ranking_facts f "
            "JOIN directory_memberships m ON m.unit_id = f.subject_id AND m.joined_on <= f.day "
            "AND (m.left_on IS NULL OR m.left_on > f.day) "
            "JOIN directory_clusters c ON c.cluster_id = m.cluster_id AND c.district = %s "
            "WHERE f.source = 'land_transferred_mu' GROUP BY m.cluster_id "
            "ORDER BY total DESC, m.cluster_id LIMIT 20"
        )
        for _ in range(50):
            conn.execute(top_sql).fetchall()
        for _ in range(args.queries):
            t0 = time.perf_counter()
            rows = conn.execute(top_sql).fetchall()
            materialised.append(time.perf_counter() - t0)
        assert [r[0]["entity_id"] for r in rows] == [r["entity_id"] for r in first["rows"]]
        for _ in range(max(20, args.queries // 20)):
            t0 = time.perf_counter()
            leaders = conn.execute(from_facts, (PROVINCE,)).fetchall()
            computed.append(time.perf_counter() - t0)
        assert [r[0] for r in leaders] == [r["entity_id"] for r in first["rows"]]
    return {
        "villages": villages,
        "clusters": args.province_clusters,
        "board_build_seconds": round(build, 2),
        "http_top20": figures(http),
        "baseline_sql_board_rows": figures(materialised),
        "baseline_sql_from_facts": figures(computed),
    }


# -- 3. a live change on the province board -------------------------------------------------------


def province_live(setup: Setup, producer: Any, ranking: Any) -> dict[str, Any]:
    """Commit → SSE latency of a change on the province-scale board built by ``top20``: each
    command signs a contract big enough to put another cluster at the top."""
    import requests

    args = setup.args
    per_cluster = args.villages // args.province_clusters
    arrivals: list[tuple[float, float]] = []  # (time, the top row's area)
    stop = threading.Event()
    opened = threading.Event()

    def listen() -> None:
        url = (
            f"{ranking.base}/api/v1/ranking/competitions/province/stream"
            f"?window=all&access_token={setup.token}"
        )
        with (
            contextlib.suppress(requests.RequestException),  # closed when the run ends
            requests.get(url, stream=True, timeout=(5, 120)) as response,
        ):
            data = ""
            for line in response.iter_lines(chunk_size=1, decode_unicode=True):
                if line.startswith("data: "):
                    data = line[6:]
                elif not line and data:
                    board = json.loads(data)
                    arrivals.append((time.time(), float(board["rows"][0]["indicators"][0]["raw"])))
                    opened.set()
                    data = ""
                if stop.is_set():
                    return

    threading.Thread(target=listen, daemon=True).start()
    opened.wait(30)
    session = requests.Session()
    today = datetime.now(UTC).date().isoformat()
    commits: list[tuple[float, float]] = []  # (commit time, the area that tops the board)
    count = args.live_rate * args.live_seconds
    started = time.monotonic()
    for n in range(count):
        delay = started + n / args.live_rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        cluster = (n * 37 + 1) % args.province_clusters
        area = 100_000 + 20_000 * n  # more than any cluster had before: it leads
        post(
            session,
            producer.base + "/api/v1/land/test-events",
            {
                "type": "TransferContractSigned",
                "stream_id": f"PK{n}",
                "data": {
                    "contract_id": f"PK{n}",
                    "parcel_id": f"PP{n}",
                    "village_id": f"pv{cluster * per_cluster:06d}",
                    "district": PROVINCE,
                    "transferee_id": "E",
                    "transferee_type": "enterprise",
                    "area_mu": f"{area}.00",
                    "starts_on": today,
                    "ends_on": "2036-01-01",
                    "rent_fen_per_mu_year": 80000,
                    "signed_on": today,
                },
            },
            setup.token,
        )
        commits.append((time.time(), float(area)))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not arrivals or arrivals[-1][1] < commits[-1][1]):
        time.sleep(0.05)
    stop.set()
    seen = []
    for committed_at, area in commits:
        at = next((t for t, top in arrivals if top >= area), None)
        if at is not None:
            seen.append(max(0.0, at - committed_at))
    return {
        "commands": count,
        "on_screen": len(seen),
        "commit_to_sse": figures(seen) if seen else "none arrived",
        "stream_events": len(arrivals),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--phases", default="latency,top20")
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--villages", type=int, default=30_000)
    parser.add_argument("--province-clusters", type=int, default=2_000)
    parser.add_argument("--queries", type=int, default=2_000)
    parser.add_argument("--live-rate", type=int, default=5)
    parser.add_argument("--live-seconds", type=int, default=10)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--vhost", default="clustergov_bench_ranking")
    parser.add_argument("--prefix", default="clustergov_bench_ranking")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    logs = Path(tempfile.mkdtemp(prefix="bench-ranking-"))
    setup = Setup(args, logs)
    setup.fresh_databases()
    results: dict[str, Any] = {}
    try:
        producer, ranking = setup.start()
        if "latency" in phases:
            results["latency"] = latency(setup, producer, ranking)
            print("latency", json.dumps(results["latency"], ensure_ascii=False, indent=1))
        if "top20" in phases:
            results["top20"] = top20(setup, ranking)
            print("top20", json.dumps(results["top20"], ensure_ascii=False, indent=1))
        if "live" in phases:  # after top20: its province board
            results["live"] = province_live(setup, producer, ranking)
            print("live", json.dumps(results["live"], ensure_ascii=False, indent=1))
    finally:
        setup.stop()
        print(f"logs: {logs}")


if __name__ == "__main__":
    main()
