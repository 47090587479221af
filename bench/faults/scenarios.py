"""Fault scenarios against a real `resight run`: a process of its own on a small generated sample,
stopped at a failpoint (``RESIGHT_FAILPOINTS=name:pause``, :mod:`resight_platform.faults`), then
killed with -9 from outside or made to lose Postgres; the next `resight run` must recover. What
each leaves, and how the rerun ends, is :class:`State`, compared with the sample's manifest.

Used by the fault-injection suite (``resight_platform_tests/faults``) and by ``bench/faults/run.py``,
which times the reruns.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from resight_platform.io.postgres import connect, database_url, embedded_pg_server_url
from resight_platform.sample import generate

__all__ = ["Completed", "Platform", "State", "prepare"]

REPO = Path(__file__).resolve().parents[2]
#: How long a step may take before the scenario gives up: generous, for a loaded machine.
PATIENCE_SECONDS = 900.0
START = date(2026, 10, 1)


@dataclass(frozen=True)
class Completed:
    """A `resight run` that ended: its exit code, output and wall time."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float


@dataclass(frozen=True)
class State:
    """What the warehouse, the lake and Dagster's run storage hold after a scenario."""

    facts: dict[tuple[str, str], tuple[int, Decimal]]
    dimensions: dict[str, int]
    ledger: dict[str, int]
    runs: dict[str, int]
    debris: list[str]

    def differences(self, manifest: dict[str, Any]) -> list[str]:
        """How this state differs from what the manifest says a complete load gives (none: equal)."""
        problems = []
        expected = {
            (r["date"], r["provider"]): (r["lines"], Decimal(r["net_amount"]))
            for r in manifest["sales"]["by_date_provider"]
            if r["lines"]
        }
        if self.facts != expected:
            wrong = sorted(set(self.facts.items()) ^ set(expected.items()))
            problems.append(f"gold.fact_sales per date and provider differs from the manifest: {wrong[:6]}")
        want = {
            "products": manifest["catalog"]["products"],
            "stores": manifest["stores"]["stores"],
            "customers": manifest["customers"]["customers"],
        }
        if self.dimensions != want:
            problems.append(f"dimensions {self.dimensions} != manifest {want}")
        if self.ledger.get("read"):
            problems.append(f"{self.ledger['read']} files read and never loaded")
        unfinished = {s: n for s, n in self.runs.items() if s not in ("SUCCESS", "FAILURE", "CANCELED")}
        if unfinished:
            problems.append(f"runs left unfinished: {unfinished}")
        if self.debris:
            problems.append(f"temporary files left: {self.debris[:5]}")
        return problems

    def summary(self) -> dict[str, Any]:
        lines = sum(n for n, _ in self.facts.values())
        net = sum((amount for _, amount in self.facts.values()), Decimal(0))
        return {
            "fact_lines": lines,
            "fact_net_amount": str(net),
            "dimensions": self.dimensions,
            "ledger": self.ledger,
            "runs": self.runs,
            "debris": len(self.debris),
        }


@dataclass
class Platform:
    """A ``RESIGHT_HOME`` with a generated sample in its landing zone, and the environment every
    `resight run` of the scenario gets (the warehouse: ``RESIGHT_PG_URL`` or the home's embedded
    server)."""

    home: Path
    env: dict[str, str]
    manifest: dict[str, Any]
    runs: list[Completed] = field(default_factory=list)

    def start(self, failpoints: str = "", **extra: str) -> subprocess.Popen[str]:
        """`resight run` in a process (and session) of its own."""
        env = {**self.env, **extra}
        if failpoints:
            env["RESIGHT_FAILPOINTS"] = failpoints
        return subprocess.Popen(
            [sys.executable, "-m", "resight_platform.cli", "run"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, failpoints: str = "", **extra: str) -> Completed:
        """`resight run` to its end."""
        started = time.perf_counter()
        process = self.start(failpoints, **extra)
        stdout, stderr = process.communicate(timeout=PATIENCE_SECONDS)
        completed = Completed(process.returncode, stdout, stderr, time.perf_counter() - started)
        self.runs.append(completed)
        return completed

    def pause_at(self, point: str) -> subprocess.Popen[str]:
        """`resight run` stopped (SIGSTOP) at the failpoint ``point``: the caller acts from outside."""
        process = self.start(f"{point}:pause")
        wait_stopped(process, point)
        return process

    @property
    def pg_url(self) -> str:
        if "RESIGHT_PG_URL" in self.env:
            return self.env["RESIGHT_PG_URL"]
        server = embedded_pg_server_url(self.home / "pg")
        if server is None:
            raise RuntimeError(f"the embedded Postgres of {self.home} is not running")
        return database_url(server, "resight")

    @property
    def dagster_url(self) -> str:
        url = self.env.get("RESIGHT_DAGSTER_PG_URL")
        return url.replace("+psycopg2", "") if url else database_url(self.pg_url, "dagster")

    def debris(self) -> list[str]:
        """Temporary files in the lake and spool files in the spool directory."""
        lake, spool = self.home / "lake", self.home / "spool"
        found = [p for p in lake.rglob("*.resight-tmp")] if lake.exists() else []
        found += list(spool.iterdir()) if spool.exists() else []
        return sorted(str(p) for p in found)

    def state(self) -> State:
        with connect(self.pg_url) as conn:
            facts = {
                (day.isoformat(), provider): (int(lines), Decimal(net))
                for day, provider, lines, net in conn.execute(
                    "select f.sale_date, p.provider, count(*), sum(f.net_amount) from gold.fact_sales f"
                    " join gold.dim_provider p using (provider_key) group by 1, 2"
                ).fetchall()
            }
            dimensions = dict(
                conn.execute(
                    "select 'products', count(*) from gold.dim_product where product_key <> 0"
                    " union all select 'stores', count(*) from gold.dim_store where store_key <> 0"
                    " union all select 'customers', count(*) from gold.dim_customer where customer_key <> 0"
                ).fetchall()
            )
            ledger = dict(conn.execute("select status, count(*) from ops.ingestion_ledger group by 1").fetchall())
        with psycopg.connect(self.dagster_url) as conn:
            runs: dict[str, int] = dict(conn.execute("select status, count(*) from runs group by 1").fetchall())
        return State(facts, dimensions, ledger, runs, self.debris())

    def dead_run_messages(self) -> list[str]:
        """The failure messages recovery wrote for runs whose process was gone."""
        with psycopg.connect(self.dagster_url) as conn:
            rows = conn.execute("select event from event_logs where dagster_event_type = 'PIPELINE_FAILURE'").fetchall()
        messages = [json.loads(event).get("dagster_event", {}).get("message") or "" for (event,) in rows]
        return [m for m in messages if "is gone" in m]


def prepare(root: Path, env: dict[str, str], *, providers: int = 2, days: int = 1, seed: int = 5) -> Platform:
    """A home under ``root`` holding a generated sample; ``env`` is added to the platform's
    environment (``RESIGHT_PG_URL``, ``RESIGHT_DAGSTER_PG_URL``, S3 settings, ...)."""
    home = root / "home"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("RESIGHT_", "DAGSTER_"))}
    platform_env = {
        **base,
        "RESIGHT_HOME": str(home),
        "RESIGHT_PARTITIONS_START": "2026-09-01",
        "RESIGHT_PIPELINE_WORKERS": "1",  # the failpoint stops the command's own process
        **env,
    }
    landing = platform_env.get("RESIGHT_LANDING_URL", str(home / "landing"))
    manifest_url = str(home / "manifest.json")
    generate(
        landing,
        providers=providers,
        days=days,
        start=START,
        seed=seed,
        manifest_url=manifest_url,
        endpoint_url=platform_env.get("AWS_ENDPOINT_URL"),
    )
    return Platform(home, platform_env, json.loads(Path(manifest_url).read_text()))


def wait_stopped(process: subprocess.Popen[str], point: str) -> None:
    """Wait until ``process`` stops itself at a failpoint; raise if it ends without reaching it."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    stat = Path(f"/proc/{process.pid}/stat")
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stdout, stderr = process.communicate()
            raise AssertionError(f"`resight run` ended ({process.returncode}) before {point}:\n{stdout}\n{stderr}")
        text = stat.read_text()
        if text[text.rindex(")") + 2 :].split()[0] == "T":
            return
        time.sleep(0.1)
    raise AssertionError(f"`resight run` did not reach {point} in {PATIENCE_SECONDS:.0f} s")


def kill(process: subprocess.Popen[str]) -> None:
    """``kill -9`` the process (an embedded Postgres it started is a daemon of its own: it lives on)."""
    os.kill(process.pid, signal.SIGKILL)
    process.communicate(timeout=PATIENCE_SECONDS)
