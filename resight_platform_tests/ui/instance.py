"""A small prepared Dagster instance and a real ``dagster-webserver`` serving this project's
definitions on it, for the browser suite.

The instance is the project's ``dagster.yaml`` (run and event storage on Postgres) without the
daemon's parts: runs launched from the UI start at once in a run worker the code server spawns, as
under ``dagster dev``, but no daemon, sensor or automation adds runs of its own. Two days of one
partner's sales are in the landing zone, and one of them is taken through bronze and silver in
process while the webserver starts: its prices came in a new format, so silver's
``columns_keep_their_types`` check failed, with its failing rows.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml

from resight_platform.cli import instance_env
from resight_platform.definitions import build_definitions
from resight_platform.defs.partitions import SOURCE_PARTITIONS
from resight_platform.io.postgres import sqlalchemy_url
from resight_platform.settings import Settings

__all__ = ["OTHER_SOURCES", "PROVIDER", "UiInstance", "Webserver", "fail_a_check", "graphql", "prepare", "webserver"]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The partner whose files the instance holds (a registered provider with a plain CSV layout).
PROVIDER = "pawmart"
#: Other registered providers added as source partitions, so the partitions view has rows to show.
OTHER_SOURCES = ("barkbox_market", "petopia")
#: How long the webserver and its code server may take to answer: seconds on an idle machine, a
#: minute or two when two cores are shared by a whole suite. Only a fault takes this long.
START_TIMEOUT_S = 300.0

_HEADER = (
    "order_id,line_no,ordered_at,store_id,channel,sku,quantity,unit_price,discount,customer_id,status,ship_state\n"
)

#: The instance's variables that the calling shell might point somewhere else.
_SCRUBBED = ("RESIGHT_LANDING_URL", "RESIGHT_LAKE_URL", "RESIGHT_REGISTRY_DIR", "RESIGHT_SPOOL_DIR", "DAGSTER_HOME")


def sales_csv(day: date, rows: int, price: str = "3.50") -> bytes:
    """``rows`` online sales lines of ``day`` in pawmart's layout, each priced ``price``."""
    lines = "".join(
        f"A-{day:%m%d}-{n},1,{day}T10:00:00Z,,online,SKU{n},2,{price},0,,completed,NY\n" for n in range(rows)
    )
    return (_HEADER + lines).encode()


@dataclass(frozen=True)
class UiInstance:
    """Where the prepared instance lives and the partitions it holds."""

    env: dict[str, str]
    dagster_home: Path
    settings: Settings
    pg_url: str
    #: A partition with a clean file of ``clean_rows`` lines in the landing zone, nothing materialised.
    clean_partition: str
    clean_rows: int
    #: A partition taken through bronze and silver, whose silver types check failed on
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


def prepare(
    root: Path, pg_url: str, dagster_pg_url: str, *, start: date, failing_day: date, clean_day: date
) -> UiInstance:
    """The instance's home under ``root`` on the warehouse ``pg_url``, Dagster's storage in
    ``dagster_pg_url``, with daily partitions from ``start`` and a landing zone holding a clean
    file on ``clean_day`` and one whose prices changed format on ``failing_day``."""
    home = root / "home"
    resight_env = {
        "RESIGHT_HOME": str(home),
        "RESIGHT_PG_URL": pg_url,
        "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster_pg_url),
        "RESIGHT_PARTITIONS_START": start.isoformat(),
        "RESIGHT_PIPELINE_WORKERS": "1",
    }
    settings = Settings.from_env(resight_env)
    env = {**resight_env, **instance_env(settings, pg_url)}
    dagster_home = Path(env["DAGSTER_HOME"])
    _daemonless_dagster_yaml(dagster_home / "dagster.yaml")

    landing = home / "landing" / PROVIDER / "sales"
    clean_rows, failing_rows = 5, 12
    (landing / clean_day.isoformat()).mkdir(parents=True)
    (landing / clean_day.isoformat() / "orders.csv").write_bytes(sales_csv(clean_day, clean_rows))
    # Every price written "EUR 3.50": the partner changed the column's format.
    (landing / failing_day.isoformat()).mkdir(parents=True)
    (landing / failing_day.isoformat() / "new_price_format.csv").write_bytes(
        sales_csv(failing_day, failing_rows, "EUR 3.50")
    )
    return UiInstance(
        env,
        dagster_home,
        settings,
        pg_url,
        f"{clean_day}|{PROVIDER}",
        clean_rows,
        f"{failing_day}|{PROVIDER}",
        failing_rows,
    )


def fail_a_check(instance: UiInstance) -> None:
    """Register the source partitions and take the failing day through bronze and silver, in
    process, on the instance: silver's types check fails on every row of its file."""
    with _process_env(instance.env):
        dagster = dg.DagsterInstance.from_config(str(instance.dagster_home))
        try:
            assert SOURCE_PARTITIONS.name is not None
            dagster.add_dynamic_partitions(SOURCE_PARTITIONS.name, [PROVIDER, *OTHER_SOURCES])
            defs = build_definitions(instance.settings, pg_url=instance.pg_url)
            result = defs.resolve_job_def("medallion_job").execute_in_process(
                instance=dagster,
                partition_key=instance.failed_check_partition,
                asset_selection=[dg.AssetKey(["bronze", "sales"]), dg.AssetKey(["silver", "sales"])],
            )
            assert result.success, "preparing the failed check: the bronze → silver run failed"
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
