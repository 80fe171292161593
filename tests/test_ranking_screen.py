"""The big screen in a real headless Chromium (Debian's chromium and chromium-driver), driven
over the W3C WebDriver protocol: it shows the TOP board in Chinese, escapes every name, and
follows a command posted to another service without reloading. A screenshot is kept under
artifacts/."""

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

from services.ranking.service import RankingService
from shared.config import LOCAL_TZ
from tests.conftest import free_port, unavailable
from tests.test_ranking_support import (
    STUBS,
    cluster,
    define,
    join,
    signed,
    village,
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


@pytest.mark.parametrize("backend", ["sqlite"])
def test_the_screen_follows_the_board_live_and_escapes_names(start_services, browser) -> None:
    api = start_services(RankingService, *STUBS)
    cluster(api, "c1", EVIL)
    cluster(api, "c2", "稻香组团")
    village(api, "v1", "一村")
    village(api, "v2", "二村")
    join(api, "v1", "c1")
    join(api, "v2", "c2")
    define(api, "screen", name="红盟组团比拼")
    wait_active(api, "screen")
    day = datetime.now(LOCAL_TZ).date()
    signed(api, "W1", "v2", "20.00", day)

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

    # a command to the land service: the evil-named cluster takes the lead on the screen
    signed(api, "W2", "v1", "50.00", day)
    wait_for(lambda: browser.run(ROWS)[0][0] == "c1", what="the screen to follow the change")
    rows = browser.run(ROWS)
    assert rows[0][1] == EVIL  # shown as text...
    assert browser.run("return document.querySelectorAll('#rows img').length") == 0  # ...not HTML
    assert rows[1][3] == "card red"  # land 20 vs 50: 60.00 at the bottom, red
    assert browser.run("return window.sameDocument === true")  # no reload
    movement = browser.run("return document.querySelector('#rows td.move').textContent")
    assert movement == "–"  # nothing to compare with last month
    ARTIFACTS.mkdir(exist_ok=True)
    browser.screenshot(ARTIFACTS / "ranking-screen.png")
    assert (ARTIFACTS / "ranking-screen.png").stat().st_size > 10_000
