"""The dashboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, installed by scripts/services.sh) driven by Selenium.

A server with an API key and an A/B holdout is fed by the simulated customers (the demo's
simulation, over HTTP) while the browser signs in through the page's form and waits until
every chart has drawn data. No console error may appear. The screenshot is written to
``$TAILORBOT_ARTIFACTS`` (default ``artifacts/`` in the checkout); docs/dashboard.png is one.
Without Chromium the test skips on a laptop and fails under CI=true.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tailorbot.api.server import EmbeddedServer
from tailorbot.client import Client
from tailorbot.sim.demo import build_simulation
from tests.helpers import IN_CI, silent_sibling
from tests.services.decisions.conftest import save_model, settings_for

KEY = "dashboard-test-key"
CHARTS = (
    "rate",
    "latency",
    "rates",
    "shares",
    "intents",
    "csat",
    "resolution",
    "lift",
    "drift",
    "lag",
)
MIN_POINTS = 6  # points of the decisions/s line before the screenshot
# The page polls at the server's snapshot step (the data's poll_s: dashboard_step_s), and
# the time series get a point per snapshot: at this step the MIN_POINTS points come in a
# few seconds, not the ~12 of the page's 2 s default.
STEP_S = 0.5
FALLBACK_POLL_S = 2.0  # dashboard.js's POLL_MS, until an answer says poll_s
# When the page sent each poll of the data (ms), from the browser's resource timing.
POLL_STARTS = """return performance.getEntriesByType("resource")
  .filter((e) => e.name.endsWith("/v1/dashboard/data")).map((e) => e.startTime);"""
ARTIFACTS = Path(os.environ.get("TAILORBOT_ARTIFACTS", Path(__file__).parents[2] / "artifacts"))


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser and driver:
        return browser, driver
    message = "chromium and chromedriver are not installed (scripts/services.sh installs them)"
    if IN_CI:
        pytest.fail(message + "; CI=true: the browser test never skips")
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[Any]:
    binary, driver_path = _chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1400,1400")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    try:
        yield driver
    finally:
        driver.quit()


class Feeder:
    """Simulated customers talking to the server, in a thread, until stopped."""

    def __init__(self, url: str, settings: Any) -> None:
        self._stop = threading.Event()
        self.contacts = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(url, settings), daemon=True)

    def _run(self, url: str, settings: Any) -> None:
        try:
            with Client(url, api_key=KEY) as client:
                sim = build_simulation(client, settings, customers=40, seed=3)
                while not self._stop.is_set():
                    sim.run(10)
                    self.contacts += 10
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def __enter__(self) -> Feeder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def _drawn(driver: Any) -> dict[str, int]:
    script = "return arguments[0].map(id => document.getElementById(id)?.dataset.points || '0');"
    return dict(zip(CHARTS, map(int, driver.execute_script(script, list(CHARTS))), strict=True))


def _complete(drawn: dict[str, int]) -> bool:
    return all(n > 0 for n in drawn.values()) and drawn["rate"] >= MIN_POINTS


def test_dashboard_draws_every_chart_from_a_simulated_stream(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    save_model(tmp_path)
    settings = settings_for(
        tmp_path, api_key=KEY, experiment_holdout=0.5, bandit_sync_s=0.5, dashboard_step_s=STEP_S
    )
    with EmbeddedServer(settings) as server, Feeder(server.url, settings) as feeder:
        browser.get(server.url + "/dashboard")
        assert "sign in" in browser.title  # the key is set: the page asks for it
        browser.find_element(By.ID, "key").send_keys(KEY)
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        # The limit only stops a hung test: the charts fill once the simulation has fed
        # enough decisions (the drift needs 50) and the page has polled a few times (the
        # time series get a point per poll).
        WebDriverWait(browser, 90, poll_frequency=0.5).until(
            lambda d: feeder.error is not None or _complete(_drawn(d))
        )
        assert feeder.error is None, feeder.error
        drawn = _drawn(browser)
        starts = browser.execute_script(POLL_STARTS)
        status = browser.find_element(By.ID, "status").text
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "dashboard.png"
        assert browser.save_screenshot(str(shot))
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    print(f"\ndashboard screenshot: {shot}; points per chart: {drawn}; {feeder.contacts} contacts")
    assert status.startswith("live"), status
    assert all(n > 0 for n in drawn.values()), drawn
    # The page waits the server's step after each answer: never sooner (10 % for the
    # timers' grain), and not its 2 s default (one answer and its drawing within 1.5 s).
    gaps_s = [(b - a) / 1000 for a, b in itertools.pairwise(starts)]
    assert len(gaps_s) >= MIN_POINTS, starts
    assert min(gaps_s) >= STEP_S * 0.9, gaps_s
    assert min(gaps_s) < FALLBACK_POLL_S, gaps_s
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert errors == []
    svg_series = browser.find_elements(By.CSS_SELECTOR, "#intents .series")
    assert len(svg_series) == drawn["intents"]


def test_the_page_says_why_the_server_has_no_data(tmp_path: Path, browser: Any) -> None:
    """A server process of `serve --workers N` that does not answer for its metrics makes
    the data a 503 (a partial sum would mislead): the page shows the server's reason."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with (
        tempfile.TemporaryDirectory(prefix="tb-siblings-") as made,  # a socket's path must
        silent_sibling(Path(made)) as name,  # stay short: pytest's tmp_path can be too long
    ):
        settings = settings_for(tmp_path, metrics_siblings_dir=Path(made))
        with EmbeddedServer(settings) as server:
            browser.get(server.url + "/dashboard")
            status = WebDriverWait(browser, 60, poll_frequency=0.5).until(
                lambda d: (text := d.find_element(By.ID, "status").text).startswith("the") and text
            )
    assert status.startswith("the server answered HTTP 503: server processes "), status
    assert f"{name} did not answer for their metrics" in status
