"""The demo district: set it up through the public API, then keep plausible facts flowing.

``clustergov up --demo`` runs :func:`run` in a green thread of the same process; ``clustergov demo
--url ...`` runs it against a deployed system. Every setup step is idempotent (fixed ids and
Idempotency-Keys), so restarting the demo on the same databases continues where it was.

The demo is also the embedded system's scheduler: it calls the services' sweeps (deadlines,
overdue rent and loans, after-sale windows, producer settlement) with today's date.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import eventlet

from demo import alliance, commerce, finance, land, ranking, trusteeship
from demo.client import ApiError, Client, attempt
from demo.common import Demo, today
from demo.district import CLUSTERS, District, generate

log = logging.getLogger(__name__)

#: One kind of steady activity: (name, weight, function(demo)).
Step = tuple[str, int, Callable[[Demo], None]]

STEPS: list[Step] = [
    ("activity", 4, alliance.activity),
    ("task progress", 2, alliance.task_progress),
    ("talent", 1, alliance.talent),
    ("listing", 1, land.open_listing),
    ("bid", 4, land.bid),
    ("rent", 1, land.pay_rent),
    ("trusteeship work", 2, trusteeship.stream_work),
    ("loan", 1, finance.stream_loan),
    ("collective income", 2, finance.income),
    ("sale", 5, commerce.sale),
    ("delivery", 2, commerce.fulfil),
    ("live session", 1, commerce.live_session),
]
SWEEPS: list[tuple[str, Callable[[Demo], None]]] = [
    ("alliance sweep", alliance.sweep),
    ("land sweep", land.sweep),
    ("finance sweep", finance.sweep),
    ("commerce sweep", commerce.sweep),
]
SWEEP_EVERY = 15.0  # seconds; listings in the stream close registration after 20 s


def setup(api: Client, district: District, *, seed: int = 2026, history: bool = True) -> Demo:
    """Create the district and its history; safe to run again on the same system."""
    started = time.monotonic()
    demo = Demo(api, district, random.Random(seed), today(), history=history)
    alliance.setup(demo)
    ranking.setup(demo)
    alliance.wait_known(api, district)
    # The services' set-ups are independent of each other: run them side by side.
    pool, threads = eventlet.GreenPool(), []
    parts = [land.setup, trusteeship.setup, finance.setup, commerce.setup]
    if history:
        parts.append(alliance.history_activities)
    for part in parts:
        # each part draws from its own generator, so the numbers do not depend on scheduling
        part_demo = Demo(api, district, random.Random(f"{seed}:{part.__module__}"), demo.today,
                         history=history, state=demo.state)  # fmt: skip
        threads.append(pool.spawn(part, part_demo))
    for thread in threads:
        thread.wait()  # raises what the part raised
    log.info(
        "demo district ready: %d villages in %d clusters, %d calls in %.1f s",
        len(district.villages),
        len(CLUSTERS),
        api.calls,
        time.monotonic() - started,
    )
    return demo


def step(demo: Demo) -> str:
    """One plausible fact of a kind drawn by weight; a refusal is logged, never raised."""
    name, _weight, action = demo.rng.choices(STEPS, weights=[s[1] for s in STEPS])[0]
    demo.today = today()
    attempt(name, lambda: action(demo))
    return name


def sweep(demo: Demo) -> None:
    demo.today = today()
    for name, action in SWEEPS:
        attempt(name, lambda action=action: action(demo))


def run(
    api: Client,
    *,
    seed: int = 2026,
    interval: float = 1.0,
    stop: Callable[[], bool],
    district: District | None = None,
) -> None:
    """Set the district up, then post one plausible fact about every ``interval`` seconds."""
    district = district or generate(seed)
    while not stop():
        try:
            demo = setup(api, district, seed=seed)
            break
        except (ApiError, OSError) as exc:
            log.warning("demo set-up failed, retrying in 5 s: %s", exc)
            time.sleep(5)
    else:
        return
    demo.rng = random.Random(seed + int(time.time()))
    swept = 0.0
    while not stop():
        if time.monotonic() - swept > SWEEP_EVERY:
            sweep(demo)
            swept = time.monotonic()
        step(demo)
        time.sleep(interval * demo.rng.uniform(0.5, 1.5))
