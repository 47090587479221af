"""End to end with the real ``resight daemon``: files dropped into the landing zone reach gold.

No in-process stand-in here: the daemon runs as a subprocess in its own session (the landing sensor,
the run queue, declarative automation and the code server it starts), on a fresh warehouse database
and a fresh Dagster instance database, and the test only drops a generated sample and watches
Postgres. Grouped alone under xdist (``--dist loadgroup``): it keeps both cores busy for a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from resight_platform.io.postgres import connect, sqlalchemy_url
from resight_platform.resources import load_registry_at
from resight_platform.sample import generate
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR
from resight_platform_tests.databases import temporary_database

REPO_ROOT = Path(__file__).resolve().parent.parent
#: How long the daemon may take to bring the files to gold: about a minute on an idle 2-core machine
#: and three on a loaded one (a full suite beside other work missed 180 s); only a fault takes 10.
TIMEOUT_S = 600.0

#: Variables of the calling shell that would point the daemon at another home, store or instance.
_SCRUBBED = (
    "RESIGHT_LANDING_URL",
    "RESIGHT_LAKE_URL",
    "RESIGHT_REGISTRY_DIR",
    "DAGSTER_HOME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
)


@pytest.fixture
def dagster_pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for the daemon's Dagster instance, as the ``postgresql+psycopg2://`` URL it needs."""
    for url in temporary_database(pg_server_url, "dagster"):
        yield sqlalchemy_url(url)


def _log_tail(log: Path, lines: int = 60) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no daemon log)"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the daemon's process group (the code server and run workers are in it), then SIGKILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=20)
    time.sleep(1.0)  # let the group's other members act on the SIGTERM
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _state(pg_url: str) -> tuple[int, Decimal, dict[str, str]]:
    """Rows and net amount in gold.fact_sales, and the ledger's status per file."""
    with connect(pg_url) as conn:
        row = conn.execute("select count(*), coalesce(sum(net_amount), 0) from gold.fact_sales").fetchone()
        ledger = dict(conn.execute("select file_key, status from ops.ingestion_ledger").fetchall())
    assert row is not None
    return int(row[0]), Decimal(row[1]), ledger


@pytest.mark.xdist_group("daemon")
def test_daemon_loads_dropped_files_into_gold(tmp_path: Path, fresh_pg_url: str, dagster_pg_url: str) -> None:
    today = datetime.now(UTC).date()
    day = today - timedelta(days=1)
    home = tmp_path / "home"
    landing = home / "landing"
    staging = tmp_path / "staging"
    log = tmp_path / "daemon.log"
    # The registry the daemon reads: a copy of the packaged one, edited below while the daemon runs.
    registry = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, registry)
    env = {name: value for name, value in os.environ.items() if name not in _SCRUBBED}
    env.update(
        RESIGHT_HOME=str(home),
        RESIGHT_PG_URL=fresh_pg_url,
        RESIGHT_DAGSTER_PG_URL=dagster_pg_url,
        RESIGHT_PARTITIONS_START=(today - timedelta(days=30)).isoformat(),
        RESIGHT_REGISTRY_DIR=str(registry),
        PYTHONUNBUFFERED="1",
    )
    beside = Path(sys.executable).parent / "resight"
    command = [str(beside) if beside.exists() else "resight", "daemon"]

    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        # Written beside the landing zone and moved in at once: one delivery, not a half-written one.
        manifest = generate(
            str(staging), providers=2, days=1, start=day, sales_lines_per_day=400, manifest_url=str(tmp_path / "m.json")
        )
        landing.parent.mkdir(parents=True, exist_ok=True)
        if landing.is_dir():
            landing.rmdir()  # made by the daemon; nothing in it yet
        staging.rename(landing)
        lines, net = int(manifest.sales["lines"]), Decimal(manifest.sales["net_amount"])
        dead = {entry["key"] for entry in manifest.dead_letter}
        assert lines > 0 and dead, "the sample should hold valid lines and dead-letter files"

        started = time.monotonic()
        state: tuple[int, Decimal, dict[str, str]] = (0, Decimal(0), {})
        while time.monotonic() - started < TIMEOUT_S:
            assert proc.poll() is None, f"daemon exited with {proc.returncode}:\n{_log_tail(log)}"
            with contextlib.suppress(Exception):  # the daemon migrates the schema when it starts
                state = _state(fresh_pg_url)
            rows, amount, ledger = state
            if rows == lines and amount == net and all(ledger.get(key) == "dead_lettered" for key in dead):
                break
            time.sleep(1.0)
        rows, amount, ledger = state
        waited = time.monotonic() - started
        context = f"after {waited:.0f} s; daemon log tail:\n{_log_tail(log)}"
        assert (rows, amount) == (lines, net), (
            f"gold.fact_sales holds {rows} lines / {amount} USD, expected {lines} / {net} {context}"
        )
        assert {key: ledger.get(key) for key in dead} == dict.fromkeys(dead, "dead_lettered"), context

        # A backfill launched as the Dagster UI launches one (GraphQL on the webserver), run by the
        # daemon: bronze → silver → facts over the day × both providers as range runs (single-run
        # policy: a run per step of the graph Dagster can group, never one per partition), and the
        # tables come out the same (every write replaces).
        providers = sorted({row["provider"] for row in manifest.sales["by_date_provider"]})
        backfill_id = _launch_backfill(env, home, [f"{day.isoformat()}|{p}" for p in providers], tmp_path)
        runs = _wait_for_backfill(dagster_pg_url, backfill_id, proc, log)
        assert runs and set(runs) == {"SUCCESS"} and len(runs) <= 2, f"backfill {backfill_id} runs: {runs}"
        assert _state(fresh_pg_url)[:2] == (lines, net)

        # Onboarding while the daemon runs, no restart: a new partner, its source and its own word
        # for a completed sale, written into the registry directory; its first file follows.
        before = load_registry_at(registry).version
        _onboard_tiny_pets(registry)
        after = load_registry_at(registry).version
        key = f"tiny_pets/sales/{day.isoformat()}/first.csv"
        (landing / key).parent.mkdir(parents=True)
        (landing / key).write_text(TINY_PETS_SALES.format(day=day.isoformat()))
        onboarded = _wait_for_file(fresh_pg_url, key, proc, log)
        assert onboarded == {"status": "loaded", "registry_version": after, "fact_rows": 3, "unknown_status": 0}, (
            f"{key}: {onboarded}; daemon log tail:\n{_log_tail(log)}"
        )
        with connect(fresh_pg_url) as conn:
            earlier = {
                version
                for (version,) in conn.execute(
                    "select distinct registry_version from ops.ingestion_ledger where file_key <> %s", (key,)
                ).fetchall()
            }
        assert earlier == {before} != {after}, "each file keeps the registry version it was loaded with"
    finally:
        _stop(proc)


#: Three sales lines of a partner the registry does not know yet; one says ``SOLD`` for completed.
TINY_PETS_SALES = "order_id,line_no,ordered_at,sku,quantity,unit_price,status,channel\n" + "".join(
    f"T-{n},1,{{day}}T10:00:00,SKU{n},2,3.50,{status},online\n"
    for n, status in enumerate(["completed", "SOLD", "completed"])
)


def _onboard_tiny_pets(registry: Path) -> None:
    """The rows an onboarding engineer adds for a standard-CSV partner with its own status word."""
    for name, line in (
        ("providers.csv", "tiny_pets,Tiny Pets,retail,standard_csv,America/Chicago,USD"),
        ("sources.csv", "tiny_pets,sales,,24,true"),
    ):
        with open(registry / name, "a") as out:
            out.write(line + "\n")
    (registry / "value_maps.csv").write_text("provider,feed,map,alias,value\ntiny_pets,,status,SOLD,completed\n")


def _wait_for_file(pg_url: str, key: str, proc: subprocess.Popen[bytes], log: Path) -> dict[str, object]:
    """The ledger's status and registry version of ``key``, its fact rows and ``unknown_status``
    quarantine, once its lines are in gold (or the deadline passes)."""
    started, seen = time.monotonic(), dict[str, object]()
    query = (
        "select l.status, l.registry_version,"
        " (select count(*) from gold.fact_sales f where f.source_file = l.file_key),"
        " (select count(*) from ops.quarantine q where q.source_file = l.file_key and q.rule = 'unknown_status')"
        " from ops.ingestion_ledger l where l.file_key = %s"
    )
    while time.monotonic() - started < TIMEOUT_S:
        assert proc.poll() is None, f"daemon exited with {proc.returncode}:\n{_log_tail(log)}"
        with connect(pg_url) as conn:
            row = conn.execute(query, (key,)).fetchone()
        if row is not None:
            seen = dict(zip(("status", "registry_version", "fact_rows", "unknown_status"), row, strict=True))
            if seen["status"] == "loaded" and seen["fact_rows"]:
                break
        time.sleep(1.0)
    return seen


LAUNCH_BACKFILL = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""


def _launch_backfill(env: dict[str, str], home: Path, partitions: list[str], tmp_path: Path) -> str:
    """Start ``dagster-webserver`` on the daemon's instance and launch a backfill through its GraphQL
    endpoint, exactly the request the UI's "Materialize selected" over partitions sends."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    web_env = {
        **env,
        "DAGSTER_HOME": str(home / "dagster"),  # written by `resight daemon`
        "RESIGHT_DAGSTER_ARTIFACTS": str(home / "dagster" / "storage"),
    }
    beside = Path(sys.executable).parent / "dagster-webserver"
    command = [str(beside), "-m", "resight_platform.definitions", "-h", "127.0.0.1", "-p", str(port)]
    with open(tmp_path / "webserver.log", "wb") as out:
        web = subprocess.Popen(
            command, env=web_env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        assets = [["bronze", "sales"], ["silver", "sales"], ["gold", "fact_sales"]]
        body = {
            "query": LAUNCH_BACKFILL,
            "variables": {
                "backfillParams": {
                    "partitionNames": partitions,
                    "assetSelection": [{"path": path} for path in assets],
                    "fromFailure": False,
                }
            },
        }
        deadline = time.monotonic() + 90
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/graphql",
                    data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=30) as response:
                    outcome = json.loads(response.read())["data"]["launchPartitionBackfill"]
                break
            except OSError:
                if time.monotonic() > deadline or web.poll() is not None:
                    raise AssertionError(_log_tail(tmp_path / "webserver.log")) from None
                time.sleep(1.0)
        assert outcome["__typename"] == "LaunchBackfillSuccess", outcome
        return str(outcome["backfillId"])
    finally:
        _stop(web)


def _wait_for_backfill(dagster_pg_url: str, backfill_id: str, proc: subprocess.Popen[bytes], log: Path) -> list[str]:
    """The statuses of the backfill's runs once it has finished (the daemon runs it)."""
    url = dagster_pg_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    started = time.monotonic()
    while time.monotonic() - started < TIMEOUT_S:
        assert proc.poll() is None, f"daemon exited with {proc.returncode}:\n{_log_tail(log)}"
        with connect(url) as conn:
            status = conn.execute("select status from bulk_actions where key = %s", (backfill_id,)).fetchone()
            runs = [
                r[0]
                for r in conn.execute(
                    "select r.status from runs r join run_tags t on t.run_id = r.run_id"
                    " where t.key = 'dagster/backfill' and t.value = %s",
                    (backfill_id,),
                ).fetchall()
            ]
        if status and status[0] in ("COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"):
            return sorted(runs)
        time.sleep(1.0)
    raise AssertionError(f"backfill {backfill_id} not finished after {TIMEOUT_S} s:\n{_log_tail(log)}")
