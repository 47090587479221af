"""Fixtures of the browser suite: Debian's Chromium driven by Playwright, one browser and one
webserver for the module (its tests share an xdist group, so one worker runs them all), and a
fresh browser context per test with a screenshot kept when a test fails.

Nothing is downloaded at run time: Playwright's own browsers are never installed; the Chromium
found on PATH is launched. Without Playwright or Chromium the tests skip, saying which is missing
and how to install it (``make test`` installs both where it may).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from resight_platform_tests.databases import temporary_database
from resight_platform_tests.ui.artifacts import ARTIFACTS_DIR
from resight_platform_tests.ui.instance import Scenario, UiInstance, load_demo, prepare, webserver

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

#: Chromium's names on PATH: Debian's package, then other distributions'.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: How long one wait in the browser may take (an element, a navigation): seconds on an idle
#: machine, more while two cores are shared by the suite. A fault is the only reason to reach it.
UI_TIMEOUT_MS = 180_000
#: What the screenshots show: a laptop-sized window, times in UTC like the partitions.
VIEWPORT = {"width": 1600, "height": 1000}
#: The UI asks once per browser profile to join Dagster's community (a modal over every page);
#: answered as a person who dismissed it would have, before any page loads.
_DISMISS_NUX = 'window.localStorage.setItem("communityNux", "1")'


def chromium_executable() -> str:
    """The Chromium binary on PATH once Playwright is importable, or skip saying what to install."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("Playwright is not installed: `pip install -e '.[test]'` (`make test` does)")
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    pytest.skip(
        "no Chromium on PATH (looked for " + ", ".join(CHROMIUM_NAMES) + "): `apt-get install chromium`,"
        " which `make test` runs when it may (as root or with passwordless sudo)"
    )


@dataclass(frozen=True)
class Ui:
    """The running webserver and the instance it serves."""

    url: str
    instance: UiInstance
    #: The first day of the daily partitions.
    start: date
    log: Path

    def dates(self) -> int:
        """How many date partitions there are now: to today included (``end_offset=1``)."""
        return (datetime.now(UTC).date() - self.start).days + 1


@pytest.fixture(scope="module")
def artifacts() -> Path:
    """The screenshots' directory, emptied of an earlier run's."""
    shutil.rmtree(ARTIFACTS_DIR, ignore_errors=True)
    ARTIFACTS_DIR.mkdir(parents=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="module")
def chromium() -> str:
    """Chromium's executable; the module's tests skip before anything starts when it is missing."""
    return chromium_executable()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """Headless Chromium for the module (one per xdist worker: the module is one xdist group)."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=UI_TIMEOUT_MS)
    # As root (containers, CI) Chromium refuses to start its sandbox; /dev/shm is small in containers.
    args = ["--disable-dev-shm-usage", *(["--no-sandbox"] if os.geteuid() == 0 else [])]
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=args)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def ui(chromium: str, tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Ui]:
    """The prepared instance (instance.py) and ``dagster-webserver`` serving it; nothing is
    prepared when the browser tests skip (``chromium`` first)."""
    root = tmp_path_factory.mktemp("ui")
    today = datetime.now(UTC).date()
    # Two weeks of partitions, the demo in their last days (instance.py).
    scenario = Scenario(start=today - timedelta(days=13), today=today)
    for warehouse in temporary_database(pg_server_url, "ui"):
        for dagster_db in temporary_database(pg_server_url, "uidagster"):
            instance = prepare(root, warehouse, dagster_db, scenario)
            log = root / "webserver.log"
            with webserver(instance, log) as server:
                started = time.monotonic()
                load_demo(instance)  # while the webserver starts
                print(f"demo loaded in {time.monotonic() - started:.1f} s")
                server.wait_ready()
                yield Ui(server.url, instance, scenario.start, log)


@pytest.fixture
def page(ui: Ui, browser: Browser, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context on the webserver; a screenshot of the page if the test failed."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id="UTC", base_url=ui.url)  # type: ignore[arg-type]
    context.add_init_script(_DISMISS_NUX)
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        report: Any = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            shot = artifacts / f"FAILED-{request.node.name}.png"
            page.screenshot(path=str(shot))
            print(f"screenshot of the failed page: {shot}; webserver log: {ui.log}")
        context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test item (``rep_call``), for the page fixture."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
