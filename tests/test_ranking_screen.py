"""The big screen in a real headless Chromium (Debian's chromium and chromium-driver), driven
over the W3C WebDriver protocol: it shows the TOP board in Chinese, escapes every name, and
follows commands posted to the real alliance service without reloading; indicator values are shown
in human units (money in 元/万元, never raw 分). A screenshot is kept under artifacts/."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from services.alliance.service import AllianceService
from services.ranking.service import RankingService
from shared.config import LOCAL_TZ
from tests.conftest import free_port, unavailable
from tests.test_ranking_support import (
    STUBS,
    StubFinance,
    competition_rules,
    define,
    district_of_three,
    emit,
    paid,
    signed,
    wait_active,
    wait_for,
)

CHROMIUM = os.environ.get("CLUSTERGOV_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CLUSTERGOV_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,900",
]
EVIL = "<img src=x onerror=alert(1)>"
DISTRICT = "D7"


class Browser:
    """Just enough of the WebDriver protocol: open a page, run a script, take a screenshot."""

    def __init__(self, driver_url: str) -> None:
        self.url = driver_url
        options = {"binary": CHROMIUM, "args": ARGS}
        capabilities = {"browserName": "chrome", "goog:chromeOptions": options}
        response = requests.post(
            f"{driver_url}/session",
            json={"capabilities": {"alwaysMatch": capabilities}},
            timeout=60,
        )
        response.raise_for_status()
        self.session = f"{driver_url}/session/{response.json()['value']['sessionId']}"

    def open(self, url: str) -> None:
        requests.post(f"{self.session}/url", json={"url": url}, timeout=30).raise_for_status()

    def run(self, script: str) -> Any:
        response = requests.post(
            f"{self.session}/execute/sync", json={"script": script, "args": []}, timeout=30
        )
        response.raise_for_status()
        return response.json()["value"]

    def screenshot(self, path: Path) -> None:
        response = requests.get(f"{self.session}/screenshot", timeout=30)
        response.raise_for_status()
        path.write_bytes(base64.b64decode(response.json()["value"]))

    def quit(self) -> None:
        requests.delete(self.session, timeout=30)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        unavailable(
            "Chromium (apt-get install chromium chromium-driver)",
            FileNotFoundError(f"{CHROMIUM} or {CHROMEDRIVER}"),
        )
    port = free_port()
    driver = subprocess.Popen(
        [CHROMEDRIVER, f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"{url}/status", timeout=2).json()["value"]["ready"]:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                unavailable("chromedriver", TimeoutError("did not become ready"))
            time.sleep(0.1)
        session = Browser(url)
        yield session
        session.quit()
    finally:
        driver.terminate()
        driver.wait(10)


ROWS = """return Array.from(document.querySelectorAll('#rows tr')).map(function (tr) {
  return [tr.dataset.entity, tr.querySelector('td.name').firstChild.textContent,
          tr.querySelector('td.score').textContent, tr.querySelector('td.colour span').className];
});"""


def activity(api: Any, activity_id: str, village_id: str, kind: str = "meeting") -> None:
    now = datetime.now(LOCAL_TZ).replace(microsecond=0)
    response = api.post(
        "/api/v1/alliance/activities",
        {
            "id": activity_id,
            "unit_id": village_id,
            "activity_type": kind,
            "title": "主题党日",
            "occurred_at": now.isoformat(),
        },
        role="district_admin",
        district=DISTRICT,
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_screen_follows_the_board_live_and_escapes_names(start_services, browser) -> None:
    api = start_services(RankingService, AllianceService)
    admin = {"role": "district_admin", "district": DISTRICT}
    alliance = {"id": "red", "district": DISTRICT, "name": "红盟", "level": "district"}
    assert api.post("/api/v1/alliance/alliances", alliance, **admin).status_code == 201
    for cid, name, vid in (("c1", EVIL, "east"), ("c2", "稻香组团", "west")):
        cluster = {"id": cid, "alliance_id": "red", "name": name, "theme_industry": "茶"}
        assert api.post("/api/v1/alliance/clusters", cluster, **admin).status_code == 201
        facts = {"population": 500, "households": 150, "contracted_area_mu": "900", "weak": False}
        unit = {
            "id": vid,
            "district": DISTRICT,
            "name": vid,
            "unit_type": "village",
            "village": facts,
        }
        assert api.post("/api/v1/alliance/units", unit, **admin).status_code == 201
        joined = {"cluster_id": cid, "joined_on": "2024-01-01"}
        assert api.post(f"/api/v1/alliance/units/{vid}/memberships", joined, **admin).ok
    rules = {
        "entity": "cluster",
        "indicators": [{"key": "act", "name": "活动次数", "source": "activities", "weight": "1"}],
        "windows": ["month"],
        "colours": {"red_bottom": 1},
    }
    body = {"id": "screen", "name": "红盟组团比拼", "district": DISTRICT, "rules": rules}
    assert api.post("/api/v1/ranking/competitions", body, **admin).status_code == 201
    wait_active(api, "screen")
    activity(api, "a1", "west")

    browser.open(f"{api.base}/screen/screen#token={api.token('district_admin')}")
    wait_for(
        lambda: browser.run(ROWS)[:1] == [["c2", "稻香组团", "100.00", "card green"]],
        what="the first board on the screen",
    )
    assert browser.run("return document.documentElement.lang") == "zh-CN"
    assert "红盟组团比拼" in browser.run("return document.getElementById('title').textContent")
    assert browser.run("return document.getElementById('status').textContent") == "实时"
    countdown = browser.run("return document.getElementById('countdown').textContent")
    assert countdown.startswith("距本期结束")
    browser.run("window.sameDocument = true")

    # commands to the alliance service: the evil-named cluster takes the lead on the screen
    activity(api, "a2", "east")
    activity(api, "a3", "east", kind="visit")
    wait_for(lambda: browser.run(ROWS)[0][0] == "c1", what="the screen to follow the change")
    rows = browser.run(ROWS)
    assert rows[0][1] == EVIL  # shown as text...
    assert browser.run("return document.querySelectorAll('#rows img').length") == 0  # ...not HTML
    assert rows[1][2:] == ["60.00", "card red"]  # 1 activity against 2: the bottom place, red
    assert browser.run("return window.sameDocument === true")  # no reload
    movement = browser.run("return document.querySelector('#rows td.move').textContent")
    assert movement == "–"  # nothing to compare with last month
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "ranking-screen.png")
    assert (ARTIFACTS / "ranking-screen.png").stat().st_size > 10_000


CELLS = """return Array.from(document.querySelectorAll('#rows tr')).map(function (tr) {
  return [tr.dataset.entity].concat(Array.from(tr.querySelectorAll('td.num')).map(
    function (td) { return td.textContent; }));
});"""


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_screen_shows_money_in_yuan_areas_in_mu_and_per_capita(start_services, browser):
    api = start_services(RankingService, *STUBS, StubFinance)
    district_of_three(api)  # c1: v1 (100 people); c2: v2 (200), v3 (100); c3: v4 (50)
    rules = competition_rules(
        indicators=[
            {"key": "gmv", "name": "电商销售", "source": "gmv_fen", "weight": "0.4"},
            {"key": "land", "name": "土地流转", "source": "land_transferred_mu", "weight": "0.3"},
            {
                "key": "income",
                "name": "人均集体收入",
                "source": "collective_income_fen",
                "weight": "0.3",
                "per_capita": True,
            },
        ],
        windows=["month"],
    )
    define(api, "units", rules)
    wait_active(api, "units")
    day = datetime.now(LOCAL_TZ).date()
    paid(api, "O1", [("v1", 1234567), ("v2", 98765)], f"{day.isoformat()}T12:00:00+08:00")
    signed(api, "K1", "v2", "12.50", day)
    emit(
        api,
        "finance",
        "IncomeRecorded",
        "I1",
        entry_id="I1",
        village_id="v3",
        amount_fen=300000,
        category="rent",
        recorded_on=day.isoformat(),
    )

    browser.open(f"{api.base}/screen/units#token={api.token('ops')}")
    expected = [
        ["c1", "1.23万元", "0亩", "0.00元/人"],
        ["c2", "987.65元", "12.5亩", "10.00元/人"],  # 3,000 元 over 300 people
        ["c3", "0.00元", "0亩", "0.00元/人"],
    ]
    wait_for(lambda: sorted(browser.run(CELLS)) == expected, what="formatted cells")
    page = browser.run("return document.getElementById('rows').textContent")
    assert "1234567" not in page and "98765" not in page  # no raw 分 for a money indicator
    assert "1,234,567" not in page
