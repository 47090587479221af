"""A small prepared Dagster instance and a real ``dagster-webserver`` serving this project's
definitions on it, for the browser suite.

The instance is the project's ``dagster.yaml`` (run and event storage on Postgres) without the
daemon's parts: runs launched from the UI start at once in a run worker the code server spawns, as
under ``dagster dev``, but no daemon, sensor or automation adds runs of its own.

On it, a small demo (:class:`Scenario`), loaded in process while the webserver starts
(:func:`load_demo`): three registered partners send a daily sales file over the last days of two
weeks of partitions, taken through bronze, silver and ``gold/fact_sales`` by the landing sensor's
own ``landing_partitions_job``, and the closing job closes what no partner was expected to send.
What the partitions view must show follows from it:

- each partner's first file (the first day of ``DELIVERED_DAYS``) is its onboarding, so every
  earlier day is closed (a 0-row materialisation);
- ``pawmart``'s file of yesterday has its prices in a new format: silver's
  ``columns_keep_their_types`` check fails on every line, all quarantined (0 rows loaded);
- ``petopia`` is late: its file of yesterday has not come, the one real gap (missing);
- ``barkbox_market``'s file of the day before yesterday failed to load: the lake could not take its
  silver partition (a directory stood where its Parquet file goes), so that partition's silver and
  facts are failed;
- today is not over, so nothing of today is closed or due: missing, and ``pawmart``'s file of today
  is waiting in the landing zone, for the test that launches its bronze from the UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resight_platform.cli import instance_env
from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import CLOSE_JOB, DIMENSIONS_JOB, LANDING_SET_JOB
from resight_platform.defs.metadata import set_run_config
from resight_platform.defs.partitions import SOURCE_PARTITIONS
from resight_platform.io.lake import partition_path
from resight_platform.io.postgres import sqlalchemy_url
from resight_platform.settings import Settings
from resight_platform.transforms.silver import TYPE_DRIFT_MIN_ROWS

__all__ = [
    "OTHER_SOURCES",
    "PROVIDER",
    "Scenario",
    "UiInstance",
    "Webserver",
    "graphql",
    "load_demo",
    "prepare",
    "webserver",
]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The partner whose files the UI tests look at (a registered provider with a plain CSV layout).
PROVIDER = "pawmart"
#: The late partner (``legacy_pos`` layout), and the one whose load fails (plain CSV).
LATE = "petopia"
FAILING = "barkbox_market"
#: Other registered providers added as source partitions, so the partitions view has rows to show.
OTHER_SOURCES = ("barkbox_market", "petopia")
#: How many days, to yesterday, the partners deliver: the rest of the two weeks is before them.
DELIVERED_DAYS = 4
#: How long the webserver and its code server may take to answer: seconds on an idle machine, a
#: minute or two when two cores are shared by a whole suite. Only a fault takes this long.
START_TIMEOUT_S = 300.0

_HEADER = (
    "order_id,line_no,ordered_at,store_id,channel,sku,quantity,unit_price,discount,customer_id,status,ship_state\n"
)
#: ``legacy_pos`` (profiles.yaml): semicolons, local times, currency amounts.
_LEGACY_HEADER = "TransID;Line;SaleDateTime;StoreNo;ItemSKU;Qty;Price;Disc;MemberNo;Status\n"

#: The instance's variables that the calling shell might point somewhere else.
_SCRUBBED = ("RESIGHT_LANDING_URL", "RESIGHT_LAKE_URL", "RESIGHT_REGISTRY_DIR", "RESIGHT_SPOOL_DIR", "DAGSTER_HOME")


def sales_csv(day: date, rows: int, price: str = "3.50") -> bytes:
    """``rows`` online sales lines of ``day`` in pawmart's layout, each priced ``price``."""
    lines = "".join(
        f"A-{day:%m%d}-{n},1,{day}T10:00:00Z,,online,SKU{n},2,{price},0,,completed,NY\n" for n in range(rows)
    )
    return (_HEADER + lines).encode()


def legacy_sales_csv(day: date, rows: int) -> bytes:
    """``rows`` store sales lines of ``day`` in petopia's ``legacy_pos`` layout."""
    lines = "".join(f"P-{day:%m%d}-{n};1;{day:%m/%d/%Y} 10:00;S1;SKU{n};1;$4.25;$0.00;;sale\n" for n in range(rows))
    return (_LEGACY_HEADER + lines).encode("latin-1")


def _key(day: date, source: str) -> str:
    return f"{day}|{source}"


@dataclass(frozen=True)
class Scenario:
    """The demo's days and partitions (module docstring): what the tests expect the UI to show."""

    start: date
    today: date

    @property
    def sources(self) -> tuple[str, ...]:
        return (PROVIDER, *OTHER_SOURCES)

    @property
    def delivered(self) -> list[date]:
        """The days every partner delivers, but for the gap: the last ``DELIVERED_DAYS`` to yesterday."""
        return [self.today - timedelta(days=n) for n in range(DELIVERED_DAYS, 0, -1)]

    @property
    def failed_check_partition(self) -> str:
        """pawmart's file of yesterday: its prices in a new format."""
        return _key(self.today - timedelta(days=1), PROVIDER)

    @property
    def gap_partition(self) -> str:
        """petopia's file of yesterday, which has not come."""
        return _key(self.today - timedelta(days=1), LATE)

    @property
    def failed_partition(self) -> str:
        """barkbox_market's file of the day before yesterday, whose load failed."""
        return _key(self.today - timedelta(days=2), FAILING)

    @property
    def clean_partition(self) -> str:
        """pawmart's file of today, waiting in the landing zone."""
        return _key(self.today, PROVIDER)

    def days(self) -> list[date]:
        """The days of the partitions: two weeks, today included."""
        return [self.start + timedelta(days=n) for n in range((self.today - self.start).days + 1)]

    def partitions(self) -> list[str]:
        """Every date × source partition."""
        return [_key(day, s) for day in self.days() for s in self.sources]

    def files(self) -> dict[str, int]:
        """The partitions with a file, loaded or failing, and its lines (the one waiting excluded)."""
        rows = {PROVIDER: 5, LATE: 3, FAILING: 4}
        files = {
            _key(day, source): rows[source] + n
            for n, day in enumerate(self.delivered)
            for source in self.sources
            if _key(day, source) != self.gap_partition
        }
        # Enough lines for silver's types check to take the column as changed.
        return {**files, self.failed_check_partition: TYPE_DRIFT_MIN_ROWS + 2}


@dataclass(frozen=True)
class UiInstance:
    """Where the prepared instance lives and the demo it holds."""

    env: dict[str, str]
    dagster_home: Path
    settings: Settings
    pg_url: str
    scenario: Scenario
    #: A partition with a clean file of ``clean_rows`` lines in the landing zone, nothing materialised.
    clean_partition: str
    clean_rows: int
    #: A partition taken through bronze, silver and facts, whose silver types check failed on
    #: ``failing_rows`` rows (every line of its file).
    failed_check_partition: str
    failing_rows: int


def _daemonless_dagster_yaml(path: Path) -> None:
    """The project's ``dagster.yaml`` without what needs ``dagster-daemon`` (run monitoring and
    retries) and with Dagster's immediate run coordinator instead of the queue (Dagster's default
    too, emptied only by the daemon): a run submitted in the UI is launched at once, by the
    webserver through its code server."""
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    for daemon_only in ("run_monitoring", "run_retries"):
        config.pop(daemon_only, None)
    config["run_coordinator"] = {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@contextlib.contextmanager
def _process_env(values: dict[str, str]) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in _SCRUBBED:
            patch.delenv(name, raising=False)
        for name, value in values.items():
            patch.setenv(name, value)
        yield


def prepare(root: Path, pg_url: str, dagster_pg_url: str, scenario: Scenario) -> UiInstance:
    """The instance's home under ``root`` on the warehouse ``pg_url``, Dagster's storage in
    ``dagster_pg_url``, with daily partitions from ``scenario.start`` and the scenario's files in
    the landing zone (none loaded yet: :func:`load_demo`)."""
    home = root / "home"
    resight_env = {
        "RESIGHT_HOME": str(home),
        "RESIGHT_PG_URL": pg_url,
        "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster_pg_url),
        "RESIGHT_PARTITIONS_START": scenario.start.isoformat(),
        "RESIGHT_PIPELINE_WORKERS": "1",
    }
    settings = Settings.from_env(resight_env)
    env = {**resight_env, **instance_env(settings, pg_url)}
    dagster_home = Path(env["DAGSTER_HOME"])
    _daemonless_dagster_yaml(dagster_home / "dagster.yaml")

    landing = home / "landing"
    for partition, rows in scenario.files().items():
        day, source = partition.split("|")
        if partition == scenario.failed_check_partition:
            # Every price written "EUR 3.50": the partner changed the column's format.
            name, content = "new_price_format.csv", sales_csv(date.fromisoformat(day), rows, "EUR 3.50")
        elif source == LATE:
            name, content = "sales.csv", legacy_sales_csv(date.fromisoformat(day), rows)
        else:
            name, content = "orders.csv", sales_csv(date.fromisoformat(day), rows)
        (landing / source / "sales" / day).mkdir(parents=True)
        (landing / source / "sales" / day / name).write_bytes(content)
    clean_rows = 5
    day = scenario.clean_partition.split("|")[0]
    (landing / PROVIDER / "sales" / day).mkdir(parents=True)
    (landing / PROVIDER / "sales" / day / "orders.csv").write_bytes(sales_csv(scenario.today, clean_rows))
    return UiInstance(
        env,
        dagster_home,
        settings,
        pg_url,
        scenario,
        scenario.clean_partition,
        clean_rows,
        scenario.failed_check_partition,
        scenario.files()[scenario.failed_check_partition],
    )


def load_demo(instance: UiInstance) -> None:
    """Register the source partitions and play the scenario in process, on the instance, in the
    order of a day of the platform: the dimensions (empty, as after ``resight`` sets up: the facts
    join them); a landing run of the files up to the day before yesterday; the run of the file
    whose load fails; the closing job (its daily run, after midnight); then yesterday's files,
    landing after it, the new price format among them (so the check's evaluation is the asset's
    latest: one older than the asset's latest materialisation shows "Not evaluated")."""
    scenario = instance.scenario
    yesterday = (scenario.today - timedelta(days=1)).isoformat()
    files = set(scenario.files()) - {scenario.failed_partition}
    with _process_env(instance.env):
        dagster = dg.DagsterInstance.from_config(str(instance.dagster_home))
        try:
            assert SOURCE_PARTITIONS.name is not None
            dagster.add_dynamic_partitions(SOURCE_PARTITIONS.name, list(scenario.sources))
            defs = build_definitions(instance.settings, pg_url=instance.pg_url)
            assert defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=dagster).success
            landing = defs.resolve_job_def(LANDING_SET_JOB)

            def land(partitions: set[str]) -> bool:
                run_config = set_run_config({"sales": sorted(partitions)}, facts=True)
                return landing.execute_in_process(instance=dagster, run_config=run_config, raise_on_error=False).success

            assert land({p for p in files if not p.startswith(yesterday)}), "preparing the demo: a landing run failed"
            # The lake cannot take the failing partition's silver file (a directory stands where it
            # goes): after Dagster's retries its run fails, and its silver and facts partitions are
            # failed (defs/landing.py marks what a failed run planned and did not write).
            day, source = scenario.failed_partition.split("|")
            blocker = Path(instance.settings.lake_url) / partition_path(
                ["silver", "sales"], {"date": day, "source": source}
            )
            blocker.mkdir(parents=True)
            assert not land({scenario.failed_partition}), "preparing the demo: the failing load did not fail"
            shutil.rmtree(blocker)
            assert defs.get_job_def(CLOSE_JOB).execute_in_process(instance=dagster).success
            assert land({p for p in files if p.startswith(yesterday)}), "preparing the demo: a landing run failed"
        finally:
            dagster.dispose()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(log: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no webserver log)"


def graphql(url: str, query: str, variables: dict[str, object] | None = None) -> dict[str, object]:
    """POST ``query`` to the webserver's GraphQL endpoint; its ``data``."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return dict(body["data"])


_LOCATION_LOADED = """
{ workspaceOrError { ... on Workspace { locationEntries {
    loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def _location_ready(url: str) -> bool:
    """Whether the webserver answers and has loaded the code location (raises if it failed to)."""
    try:
        data = graphql(url, _LOCATION_LOADED)
    except OSError:
        return False
    entries = data["workspaceOrError"]["locationEntries"]  # type: ignore[index]
    if not entries or any(entry["loadStatus"] != "LOADED" for entry in entries):
        return False
    errors = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]["__typename"] == "PythonError"]
    assert not errors, f"the code location failed to load: {errors}"
    return True


@dataclass(frozen=True)
class Webserver:
    """A started ``dagster-webserver``: its base URL, process and log."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self) -> None:
        """Return once the webserver answers with the code location loaded."""
        started = time.monotonic()
        while not _location_ready(self.url):
            assert self.proc.poll() is None, (
                f"dagster-webserver exited with {self.proc.returncode}:\n{log_tail(self.log)}"
            )
            assert time.monotonic() - started < START_TIMEOUT_S, (
                f"dagster-webserver not ready after {START_TIMEOUT_S:.0f} s:\n{log_tail(self.log)}"
            )
            time.sleep(1.0)


@contextlib.contextmanager
def webserver(instance: UiInstance, log: Path) -> Iterator[Webserver]:
    """``dagster-webserver -m resight_platform.definitions`` on the instance, as ``resight dev``
    starts it, without waiting for it (``Webserver.wait_ready``); stopped with its process group
    (code server, run workers) afterwards."""
    port = _free_port()
    env = {name: value for name, value in os.environ.items() if name not in _SCRUBBED}
    env.update(instance.env, PYTHONUNBUFFERED="1")
    beside = Path(sys.executable).parent / "dagster-webserver"
    command = [
        str(beside) if beside.exists() else "dagster-webserver",
        *("-m", "resight_platform.definitions", "-h", "127.0.0.1", "-p", str(port)),
    ]
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield Webserver(f"http://127.0.0.1:{port}", proc, log)
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the webserver's process group (its code server and run workers), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)
