"""Issue 4: how long a partner file takes from landing to rows committed in ``gold.fact_sales``,
with the real ``resight daemon``; and how long one landing-sensor tick takes over many new files.

**Daemon mode** (default). A fresh home (``--home``, wiped first), the embedded Postgres started by
this process (or fresh databases on ``--pg-url``), then ``resight daemon`` as a subprocess in its own
session (log: ``{home}/daemon.log``). With ``--s3`` the landing zone and the lake are on a moto S3
server run in this process.

1. Warm-up: the generator's sample (``--providers`` × 1 day = yesterday UTC) lands (a local one is
   written beside the landing zone and moved in at once); wait until ``gold.fact_sales`` holds the
   manifest's lines (daemon start, first sensor ticks, dimensions).
2. Templates: each ``standard_csv`` provider's warm-up sales file, parsed and cleaned with the
   platform's own bronze reader and silver rules in this process; only the rows silver loads are
   kept. A bench file is those rows repeated to the wanted count with ``order_id`` rewritten to
   ``{PREFIX}-{repeat}-{order_id}``, so every row of every file loads and the file's rows in gold
   are exactly ``order_id like 'PREFIX-%'``.
3. Phases, on business date yesterday (UTC) unless said, files rotating over the ``standard_csv``
   providers (5 in the registry):

   - ``single``: ``--single`` files of ``--rows`` rows, one at a time (the next once the previous
     arrived or timed out);
   - ``burst``: ``--burst`` files of ``--rows`` rows written back to back, each a partition of its
     own (the 5 providers × 5 and 6 days before the bench day), as partners delivering together
     are; with ``--burst-loaded`` onto the bench day's partitions instead (two files per provider,
     each partition already holding the single phase's rows: re-read whole);
   - ``sustained``: one file of ``--sustained-rows`` rows every ``--interval`` s for ``--minutes``,
     rotating over the 5 providers × 1 to 4 days before the bench day (inside the sensor's hot
     window), sampling the run queue depth (runs QUEUED, NOT_STARTED, STARTING or STARTED in the
     Dagster instance) every second.

   Latency of a file = first poll (every 0.2 s) at which ``gold.fact_sales`` holds all its rows,
   minus the moment its write returned. A poll looks up the file's last row by primary key (cheap
   however large the day), then counts the file's rows once. A file not there after ``--timeout``
   s counts as timed out (its ingestion-ledger row is recorded). Between phases the bench waits (up
   to 120 s) for the run queue to drain.

Per phase, the runs created in its window and how they used the run slots (:func:`efficiency`:
runs per file by kind, queue wait, share of time every slot was busy, waiting queue depth).

Every bronze/silver partition is (date, provider) and re-reads all of the partition's files, so
``partition_rows`` (rows landed so far in the file's provider × date, warm-up included) is recorded
with each file: latency grows with it.

**Tick mode** (``--tick-files N``, no daemon). ``N`` small files over every active registered source
(sources.csv) and the last ``--tick-days`` days (inside the sensor's hot window), then the landing
sensor evaluated in process as the daemon's code server would (definitions, a test Dagster
instance, the real Postgres ledger): one warm tick on the empty zone first, then the timed tick over
the ``N`` new files, then a second tick right after (every file known). On a local directory, and
with ``--s3`` on a moto S3 endpoint too.

    .venv/bin/python -m bench.latency.run                       # ~12 min: 10 single, 10 burst, 3 min sustained
    .venv/bin/python -m bench.latency.run --quick               # ~5 min (+ --timeout per lost file)
    .venv/bin/python -m bench.latency.run --s3                  # the same on a moto S3 endpoint
    .venv/bin/python -m bench.latency.run --tick-files 12000 --s3

Figures go to ``bench/latency/results.json`` (``results-s3.json``, ``results-tick.json``; with
``--quick`` to ``bench/out/latency/*-quick.json``) or ``--output``, and as Markdown to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from bench.machine import machine

__all__ = [
    "DaemonProcess",
    "GoldWatcher",
    "Landed",
    "efficiency",
    "main",
    "sales_templates",
    "summarise",
    "tick_benchmark",
    "to_markdown",
]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
DEFAULT_HOME = Path("/tmp/resight-bench/latency")
STANDARD_CSV = "standard_csv"
PENDING_STATUSES = ("QUEUED", "NOT_STARTED")
ACTIVE_STATUSES = ("STARTING", "STARTED")
POLL_SECONDS = 0.2
PHASE_LETTERS = {"single": "S", "burst": "B", "sustained": "C"}  # first letter of a file's order ids
#: The sustained phase's files go to the bench day's 1..4 days before (its partitions rotate), the
#: burst's to 5 and 6 days before: all inside the landing sensor's hot window (7 days before today,
#: the bench day being yesterday), fresh partitions for the burst.
SUSTAINED_DAYS = 4
BURST_DAYS_BACK = 1 + SUSTAINED_DAYS
PREFIX_PATTERN = re.compile(r"^[A-Z0-9]+$")
AWS_DUMMY = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
#: Variables of the calling shell that would point the daemon somewhere else than this bench's home.
_SCRUBBED = (
    "RESIGHT_HOME",
    "RESIGHT_LANDING_URL",
    "RESIGHT_LAKE_URL",
    "RESIGHT_PG_URL",
    "RESIGHT_DAGSTER_PG_URL",
    "RESIGHT_PARTITIONS_START",
    "RESIGHT_REGISTRY_DIR",
    "DAGSTER_HOME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
)


def _say(message: str) -> None:
    print(message, flush=True)


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _quiet_dagster() -> None:
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def landing_tick(defs: Any, instance: Any, cursor: str | None) -> tuple[float, Any]:
    """One evaluation of the landing sensor in process, as the daemon's code server runs it (its
    resources torn down at the end, which flushes the request counts): ``(seconds, SensorResult)``.
    The sensor adds new source partitions itself, so nothing is left to apply."""
    import dagster as dg

    from resight_platform.defs.sensors import LANDING_SENSOR

    sensor = defs.resolve_sensor_def(LANDING_SENSOR)
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, definitions=defs, resources=dict(defs.resources or {})
    ) as context:
        started = time.perf_counter()
        result = sensor(context)
        seconds = time.perf_counter() - started
    assert isinstance(result, dg.SensorResult)
    return seconds, result


@contextlib.contextmanager
def _environment(values: Mapping[str, str | None]) -> Iterator[None]:
    """Set (or, for ``None``, unset) environment variables for the block, then restore them."""
    previous = {name: os.environ.get(name) for name in values}
    for name, value in values.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        for name, old in previous.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


# --- Figures -----------------------------------------------------------------------------------------


def _nearest_rank(ordered: Sequence[float], fraction: float) -> float:
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def summarise(latencies: Sequence[float | None]) -> dict[str, Any]:
    """p50 / p95 (nearest rank) / max / mean of the arrived files' latencies, and how many timed out."""
    arrived = sorted(v for v in latencies if v is not None)
    out: dict[str, Any] = {"files": len(latencies), "arrived": len(arrived), "timed_out": len(latencies) - len(arrived)}
    if arrived:
        out.update(
            p50_s=round(_nearest_rank(arrived, 0.5), 3),
            p95_s=round(_nearest_rank(arrived, 0.95), 3),
            max_s=round(arrived[-1], 3),
            mean_s=round(sum(arrived) / len(arrived), 3),
        )
    else:
        out.update(p50_s=None, p95_s=None, max_s=None, mean_s=None)
    return out


def _trend(samples: Sequence[int]) -> dict[str, Any]:
    """Max, and the mean of the last third against the first third: up if it grew by more than one run."""
    if not samples:
        return {"samples": 0, "max": None, "first_third_mean": None, "last_third_mean": None, "trended_up": None}
    third = max(1, len(samples) // 3)
    first = sum(samples[:third]) / third
    last = sum(samples[-third:]) / third
    return {
        "samples": len(samples),
        "max": max(samples),
        "mean": round(sum(samples) / len(samples), 2),
        "first_third_mean": round(first, 2),
        "last_third_mean": round(last, 2),
        "trended_up": last > first + 1.0,
    }


# --- Processes ------------------------------------------------------------------------------------------


def _proc_table() -> dict[int, tuple[str, int, int]]:
    """pid → (state, ppid, session) of every process, from /proc."""
    out: dict[int, tuple[str, int, int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        out[int(entry.name)] = (fields[0], int(fields[1]), int(fields[3]))
    return out


def _family(root: int) -> set[int]:
    """Live (not zombie) descendants of ``root`` and members of the session ``root`` leads."""
    table = {pid: v for pid, v in _proc_table().items() if v[0] != "Z"}
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (_, ppid, _) in table.items():
        children[ppid].append(pid)
    found = {pid for pid, (_, _, session) in table.items() if session == root}
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in found:
                found.add(child)
                stack.append(child)
    found.discard(os.getpid())
    return {pid for pid in found if pid in table}


def _alive(pids: set[int]) -> set[int]:
    table = _proc_table()
    return {pid for pid in pids if pid in table and table[pid][0] != "Z"}


def _command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


class DaemonProcess:
    """``resight daemon`` in its own session, output to ``log``; :meth:`stop` ends it and its children."""

    def __init__(self, env: Mapping[str, str], log: Path, cwd: Path = REPO_ROOT) -> None:
        resight = Path(sys.executable).parent / "resight"
        command = [str(resight) if resight.exists() else "resight", "daemon"]
        self.log = log
        self._handle = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            command,
            env=dict(env),
            cwd=cwd,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.started = time.monotonic()
        self.stopped: dict[str, Any] | None = None

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"resight daemon exited with code {code}; see {self.log}:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> dict[str, Any]:
        """SIGTERM to the process group, SIGKILL to whatever of the family is left after ``timeout``."""
        if self.stopped is not None:
            return self.stopped
        pid = self.proc.pid
        family = _family(pid) | {pid}
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=timeout)
        while time.monotonic() < deadline and _alive(family | _family(pid)):
            time.sleep(0.2)
        stubborn = _alive(family | _family(pid))
        killed = {p: _command_of(p) for p in sorted(stubborn)}
        for p in stubborn:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        time.sleep(0.5)
        left = _alive(family | _family(pid))
        self._handle.close()
        self.stopped = {
            "exit_code": self.proc.returncode,
            "sigkilled": list(killed.values()),
            "left_running": [_command_of(p) for p in sorted(left)],
        }
        return self.stopped


# --- Files ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """The rows of a provider's sales file that silver loads, in the file's own column names."""

    provider: str
    frame: pl.DataFrame  # all String; order_id and line_no as silver reads them
    order_column: str
    line_column: str


def sales_templates(store: Any, registry: Any, providers: Sequence[str], day: date) -> dict[str, Template]:
    """Per provider, its landed sales rows for ``day`` that the platform's bronze reader and silver
    rules load (parsed and cleaned here, in process, with the platform's functions)."""
    from resight_platform.sources.landing import LandingKeyError, parse_landing_key
    from resight_platform.sources.mappings import load_mappings
    from resight_platform.sources.registry import CANONICAL_COLUMNS
    from resight_platform.transforms.bronze import FileRejected, read_landing_file
    from resight_platform.transforms.silver import clean_sales

    mappings = load_mappings()
    now = _utc_now()
    out: dict[str, Template] = {}
    for provider in providers:
        source = registry.sources[(provider, "sales")]
        profile = source.profile
        if (source.format, profile.delimiter, profile.encoding) != ("csv", ",", "utf-8"):
            raise ValueError(f"{provider}: templates are written as UTF-8 comma CSV, not {source.format}")
        frames = []
        for info in store.list(f"{provider}/sales/{day.isoformat()}/"):
            try:
                parse_landing_key(info.key, registry)
            except LandingKeyError:
                continue
            try:
                frames.append(
                    read_landing_file(
                        store.read_bytes(info.key), source=source, key=info.key, business_date=day, ingested_at=now
                    )
                )
            except FileRejected:
                continue
        if not frames:
            raise RuntimeError(f"no readable sales file of {provider} for {day} in the landing zone")
        bronze = pl.concat(frames)
        valid = clean_sales(bronze, registry=registry, mappings=mappings, now=now).valid
        cleaned = valid.select(
            "_source_file",
            "_row_number",
            pl.col("order_id").alias("__order_id"),
            pl.col("line_no").cast(pl.String).alias("__line_no"),
        )
        rows = bronze.join(cleaned, on=["_source_file", "_row_number"], how="inner", maintain_order="left")
        canonical = list(CANONICAL_COLUMNS["sales"])
        to_source = source.layout.canonical_to_source
        frame = rows.with_columns(order_id=pl.col("__order_id"), line_no=pl.col("__line_no")).select(
            pl.col(c).alias(to_source[c]) for c in canonical if c in to_source
        )
        if frame.is_empty():
            raise RuntimeError(f"{provider}: no valid sales rows for {day} to build files from")
        out[provider] = Template(provider, frame, to_source["order_id"], to_source["line_no"])
    return out


def build_file(template: Template, prefix: str, rows: int, shift_days: int = 0) -> tuple[bytes, tuple[str, int]]:
    """``rows`` rows of ``template`` (repeated), ``order_id`` → ``{prefix}-{repeat}-{order_id}``,
    ``ordered_at`` moved ``shift_days`` days (ISO timestamps of the ``standard_csv`` layout): the
    CSV bytes and the (order_id, line_no) of the last row."""
    if not PREFIX_PATTERN.fullmatch(prefix):
        raise ValueError(f"prefix {prefix!r} must match {PREFIX_PATTERN.pattern}")
    base = template.frame
    if shift_days:
        moved = pl.col("ordered_at").str.slice(0, 10).str.to_date() + pl.duration(days=shift_days)
        base = base.with_columns(moved.dt.strftime("%Y-%m-%d") + pl.col("ordered_at").str.slice(10))
    repeats = math.ceil(rows / base.height)
    order = template.order_column
    frame = pl.concat(
        [base.with_columns((pl.lit(f"{prefix}-{r}-") + pl.col(order)).alias(order)) for r in range(repeats)]
    ).head(rows)
    last = frame.row(frame.height - 1, named=True)
    return frame.write_csv().encode("utf-8"), (str(last[order]), int(last[template.line_column]))


@dataclass
class Landed:
    """One bench file: where it went, when its write returned, when gold held all its rows."""

    prefix: str
    provider: str
    key: str
    rows: int
    bytes: int
    day: date
    sentinel: tuple[str, int]
    partition_rows: int
    write_s: float
    landed: float  # time.monotonic() after the write returned
    landed_at: str
    arrived: float | None = None
    gold_rows: int = 0
    ledger: str | None = None  # for a file that timed out: its ingestion ledger row then

    @property
    def latency(self) -> float | None:
        return None if self.arrived is None else self.arrived - self.landed

    def record(self) -> dict[str, Any]:
        latency = self.latency
        return {
            "prefix": self.prefix,
            "provider": self.provider,
            "key": self.key,
            "rows": self.rows,
            "bytes": self.bytes,
            "partition_rows": self.partition_rows,
            "write_s": round(self.write_s, 3),
            "landed_at": self.landed_at,
            "latency_s": None if latency is None else round(latency, 3),
            "gold_rows": self.gold_rows,
            **({"ledger_at_timeout": self.ledger} if self.ledger is not None else {}),
        }


class Lander:
    """Writes bench files for yesterday into the landing zone, rotating over the providers."""

    def __init__(
        self, store: Any, templates: Mapping[str, Template], day: date, token: str, base_rows: Mapping[str, int]
    ) -> None:
        self.store = store
        self.templates = templates
        self.providers = list(templates)
        self.day = day
        self.token = token
        self.partition_rows: dict[str, int] = dict(base_rows)
        self.count = 0

    def next_provider(self) -> str:
        provider = self.providers[self.count % len(self.providers)]
        return provider

    def land(self, phase: str, rows: int, provider: str | None = None, days_back: int = 0) -> Landed:
        """One file for ``provider`` (default: the next in rotation), dated ``days_back`` days before
        the bench day (its timestamps moved with it)."""
        provider = provider or self.next_provider()
        self.count += 1
        prefix = f"{PHASE_LETTERS[phase]}{self.token}{self.count:04d}"
        day = self.day - timedelta(days=days_back)
        data, sentinel = build_file(self.templates[provider], prefix, rows, -days_back)
        key = f"{provider}/sales/{day.isoformat()}/sales_{day.isoformat()}_{prefix.lower()}.csv"
        started = time.monotonic()
        self.store.write_bytes(key, data)
        landed = time.monotonic()
        part = provider if not days_back else f"{provider}|{day.isoformat()}"
        self.partition_rows[part] = self.partition_rows.get(part, 0) + rows
        return Landed(
            prefix=prefix,
            provider=provider,
            key=key,
            rows=rows,
            bytes=len(data),
            day=day,
            sentinel=sentinel,
            partition_rows=self.partition_rows[part],
            write_s=landed - started,
            landed=landed,
            landed_at=_utc_now().isoformat(timespec="milliseconds"),
        )


class GoldWatcher:
    """Polls ``gold.fact_sales`` for landed files: their last row by primary key, then their count."""

    def __init__(self, pg_url: str) -> None:
        from resight_platform.io.postgres import connect

        self.conn = connect(pg_url)
        self.pending: dict[str, Landed] = {}

    def close(self) -> None:
        self.conn.close()

    def add(self, landed: Landed) -> None:
        self.pending[landed.prefix] = landed

    def poll(self) -> list[Landed]:
        """One poll: the pending files whose rows are all in gold now (marked arrived)."""
        from resight_platform.transforms.gold import provider_key

        if not self.pending:
            return []
        files = list(self.pending.values())
        rows = self.conn.execute(
            "select f.prefix from unnest(%s::text[], %s::date[], %s::bigint[], %s::text[], %s::int[])"
            " as f(prefix, day, pk, oid, ln) where exists (select 1 from gold.fact_sales s"
            " where s.sale_date = f.day and s.provider_key = f.pk and s.order_id = f.oid and s.line_no = f.ln)",
            (
                [f.prefix for f in files],
                [f.day for f in files],
                [provider_key(f.provider) for f in files],
                [f.sentinel[0] for f in files],
                [f.sentinel[1] for f in files],
            ),
        ).fetchall()
        arrived: list[Landed] = []
        for (prefix,) in rows:
            landed = self.pending[prefix]
            count = self.conn.execute(
                "select count(*) from gold.fact_sales where sale_date = %s and provider_key = %s and order_id like %s",
                (landed.day, provider_key(landed.provider), f"{prefix}-%"),
            ).fetchone()
            landed.gold_rows = int(count[0]) if count else 0
            if landed.gold_rows >= landed.rows:
                landed.arrived = time.monotonic()
                arrived.append(self.pending.pop(prefix))
        return arrived

    def expire(self, timeout: float) -> None:
        """Give up on files pending longer than ``timeout`` s, noting what the ledger says of each."""
        now = time.monotonic()
        for prefix, landed in list(self.pending.items()):
            if now - landed.landed > timeout:
                row = self.conn.execute(
                    "select status, rows_loaded, processed_at from ops.ingestion_ledger where file_key = %s",
                    (landed.key,),
                ).fetchone()
                landed.ledger = (
                    "no ledger row" if row is None else f"status {row[0]}, rows_loaded {row[1]}, processed_at {row[2]}"
                )
                _say(f"  {prefix} ({landed.provider}) timed out after {timeout:.0f} s; ledger: {landed.ledger}")
                del self.pending[prefix]

    def wait(self, timeout: float, daemon: DaemonProcess, tick: Callable[[], None] | None = None) -> None:
        """Poll until nothing is pending, dropping files pending longer than ``timeout`` s."""
        while self.pending:
            started = time.monotonic()
            self.poll()
            self.expire(timeout)
            if tick is not None:
                tick()
            daemon.check_alive()
            time.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))


class RunQueue:
    """The run queue depth of the daemon's Dagster instance."""

    def __init__(self, dagster_home: Path) -> None:
        import dagster as dg

        self._dg = dg
        self.instance = dg.DagsterInstance.from_config(str(dagster_home))

    def depth(self) -> tuple[int, int]:
        """(runs queued or not started, runs starting or started)."""
        dg = self._dg
        waiting = self.instance.get_runs_count(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus[s] for s in PENDING_STATUSES])
        )
        running = self.instance.get_runs_count(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus[s] for s in ACTIVE_STATUSES])
        )
        return waiting, running

    def slots(self) -> int | None:
        """The run queue's ``max_concurrent_runs`` (the daemon's dagster.yaml), if it has one."""
        config = getattr(self.instance.run_coordinator, "get_run_queue_config", None)
        if config is None:
            return None
        limit = int(config().max_concurrent_runs)
        return limit if limit > 0 else None

    def wait_idle(self, timeout: float, daemon: DaemonProcess) -> float:
        """Seconds until no run is queued or running (three samples in a row), at most ``timeout``."""
        started = time.monotonic()
        quiet = 0
        while time.monotonic() - started < timeout:
            daemon.check_alive()
            quiet = quiet + 1 if sum(self.depth()) == 0 else 0
            if quiet >= 3:
                break
            time.sleep(1.0)
        return round(time.monotonic() - started, 1)

    def runs_between(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The runs created in ``[start, end]``: kind, assets, partitions, seconds from created to
        started (queue, launch, worker start) and from started to finished."""
        dg = self._dg
        records = self.instance.get_run_records(dg.RunsFilter(created_after=start, created_before=end))
        out = []
        for record in sorted(records, key=lambda r: r.create_timestamp):
            run = record.dagster_run
            created = record.create_timestamp.timestamp()
            if run.tags.get("resight/trigger") == "landing":
                kind = "dead_letter" if run.job_name == "scan_landing_job" else "landing"
            elif run.job_name == "__ASSET_JOB":
                kind = "automation"
            else:
                kind = run.job_name
            assets = sorted("/".join(key.path) for key in (run.asset_selection or set()))
            out.append(
                {
                    "kind": kind,
                    "assets": assets,
                    "partition": run.tags.get("dagster/partition")
                    or "..".join(
                        filter(
                            None,
                            (
                                run.tags.get("dagster/asset_partition_range_start"),
                                run.tags.get("dagster/asset_partition_range_end"),
                            ),
                        )
                    ),
                    "status": run.status.value,
                    "created_s": round(created - start.timestamp(), 2),
                    "wait_s": None if record.start_time is None else round(record.start_time - created, 2),
                    "run_s": None
                    if record.start_time is None or record.end_time is None
                    else round(record.end_time - record.start_time, 2),
                }
            )
        return out

    def close(self) -> None:
        self.instance.dispose()


def _run_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per kind of run: how many, and mean / max seconds from created to started (run queue, launch,
    worker process start) and from started to finished."""
    out: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in runs}):
        mine = [r for r in runs if r["kind"] == kind]
        waits = [r["wait_s"] for r in mine if r["wait_s"] is not None]
        ran = [r["run_s"] for r in mine if r["run_s"] is not None]
        out[kind] = {
            "runs": len(mine),
            "failed": sum(r["status"] == "FAILURE" for r in mine),
            "wait_mean_s": round(sum(waits) / len(waits), 2) if waits else None,
            "wait_max_s": max(waits, default=None),
            "run_mean_s": round(sum(ran) / len(ran), 2) if ran else None,
            "run_max_s": max(ran, default=None),
        }
    return out


def efficiency(
    files: int, runs: Sequence[dict[str, Any]], samples: Sequence[dict[str, Any]], slots: int | None
) -> dict[str, Any]:
    """How a phase used the run slots: runs created per file (landing loads and automation apart),
    files per landing run, mean seconds from created to started of the runs that started (landing
    and automation), and over the writing window (the queue samples taken while files were
    written) the fraction of samples with every slot busy, the mean share of slots busy and the
    depth of the waiting queue (queued or not started): its mean over the first and the last 10
    samples and its max."""
    landing = [r for r in runs if r["kind"] == "landing"]
    automation = [r for r in runs if r["kind"] == "automation"]
    waits = [r["wait_s"] for r in (*landing, *automation) if r["wait_s"] is not None]
    out: dict[str, Any] = {
        "files": files,
        "landing_runs": len(landing),
        "automation_runs": len(automation),
        "landing_runs_per_file": round(len(landing) / files, 3) if files else None,
        "automation_runs_per_file": round(len(automation) / files, 3) if files else None,
        "files_per_landing_run": round(files / len(landing), 2) if landing else None,
        "queue_wait_mean_s": round(sum(waits) / len(waits), 2) if waits else None,
        "slots": slots,
    }
    writing = [s for s in samples if s.get("writing")]
    if writing:
        waiting = [int(s["queued"]) for s in writing]
        edge = min(10, len(waiting))
        out["waiting"] = {
            "start": round(sum(waiting[:edge]) / edge, 2),
            "end": round(sum(waiting[-edge:]) / edge, 2),
            "max": max(waiting),
        }
        if slots:
            out["all_slots_busy"] = round(sum(int(s["running"]) >= slots for s in writing) / len(writing), 3)
            out["slots_busy_mean"] = round(
                sum(min(int(s["running"]), slots) for s in writing) / len(writing) / slots, 3
            )
    return out


# --- Daemon phases -------------------------------------------------------------------------------------------


@dataclass
class Params:
    single: int
    burst: int
    rows: int
    sustained_rows: int
    interval: float
    minutes: float
    timeout: float
    warmup_timeout: float
    providers: int
    warmup_lines: int
    s3: bool
    home: Path
    pg_url: str | None
    watch: dict[str, str] = field(default_factory=dict)
    burst_loaded: bool = False


def _phase_single(lander: Lander, watcher: GoldWatcher, daemon: DaemonProcess, p: Params) -> list[Landed]:
    files = []
    for _ in range(p.single):
        landed = lander.land("single", p.rows)
        watcher.add(landed)
        watcher.wait(p.timeout, daemon)
        files.append(landed)
        _say(f"  single {landed.prefix} ({landed.provider}): {_fmt_latency(landed.latency)}")
    return files


def _phase_burst(lander: Lander, watcher: GoldWatcher, daemon: DaemonProcess, p: Params) -> list[Landed]:
    if p.burst_loaded:  # onto the bench day's partitions, which hold the earlier phases' rows
        files = [lander.land("burst", p.rows) for _ in range(p.burst)]
    else:  # partners delivering together: each file a partition of its own (the providers x 2 days)
        per_day = len(lander.providers)
        files = [lander.land("burst", p.rows, days_back=BURST_DAYS_BACK + (n // per_day) % 2) for n in range(p.burst)]
    for landed in files:
        watcher.add(landed)
    watcher.wait(p.timeout, daemon)
    for landed in files:
        _say(f"  burst {landed.prefix} ({landed.provider}): {_fmt_latency(landed.latency)}")
    return files


def _phase_sustained(
    lander: Lander, watcher: GoldWatcher, queue: RunQueue, daemon: DaemonProcess, p: Params
) -> tuple[list[Landed], list[dict[str, Any]], float]:
    files: list[Landed] = []
    samples: list[dict[str, Any]] = []
    count = max(1, int(p.minutes * 60 / p.interval))
    started = time.monotonic()
    next_sample = started
    writing_until = started + count * p.interval

    def sample() -> None:
        nonlocal next_sample
        now = time.monotonic()
        if now >= next_sample:
            waiting, running = queue.depth()
            samples.append(
                {"t_s": round(now - started, 1), "queued": waiting, "running": running, "writing": now < writing_until}
            )
            next_sample = max(next_sample + 1.0, now + 0.5)

    for n in range(count):
        due = started + n * p.interval
        while time.monotonic() < due:
            tick = time.monotonic()
            watcher.poll()
            sample()
            daemon.check_alive()
            time.sleep(max(0.0, min(POLL_SECONDS - (time.monotonic() - tick), due - time.monotonic())))
        # 3,000 loads a day are ~3,000 sources delivering once, not five partners every 10 s: the
        # files rotate over the five template providers x SUSTAINED_DAYS earlier days of the hot window.
        day_back = 1 + (n // len(lander.providers)) % SUSTAINED_DAYS
        landed = lander.land("sustained", p.sustained_rows, days_back=day_back)
        watcher.add(landed)
        files.append(landed)
        watcher.expire(p.timeout)
    write_seconds = time.monotonic() - started
    watcher.wait(p.timeout, daemon, tick=sample)
    arrived = [f.latency for f in files]
    _say(f"  sustained: {len(files)} files, {sum(v is not None for v in arrived)} arrived")
    return files, samples, write_seconds


def _fmt_latency(value: float | None) -> str:
    return "timed out" if value is None else f"{value:.1f} s"


def _gold_totals(pg_url: str) -> tuple[int, str]:
    from resight_platform.io.postgres import connect

    with connect(pg_url) as conn:
        row = conn.execute("select count(*), coalesce(sum(net_amount), 0) from gold.fact_sales").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, "0")


def _wait_warm(
    pg_url: str, lines: int, by_provider: Mapping[str, int], day: date, timeout: float, daemon: DaemonProcess
) -> float:
    """Seconds until gold.fact_sales holds ``lines`` rows; on timeout, the providers that fall short."""
    from resight_platform.io.postgres import connect
    from resight_platform.transforms.gold import provider_key

    started = time.monotonic()
    last = -1
    while True:
        daemon.check_alive()
        with contextlib.suppress(psycopg.Error):  # the daemon creates the schema on its first start
            last, _ = _gold_totals(pg_url)
        if last == lines:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            with connect(pg_url) as conn:
                held = dict(
                    conn.execute(
                        "select provider_key, count(*) from gold.fact_sales where sale_date = %s group by 1", (day,)
                    ).fetchall()
                )
            short = {
                provider: f"{held.get(provider_key(provider), 0)} of {n}"
                for provider, n in by_provider.items()
                if held.get(provider_key(provider), 0) != n
            }
            raise TimeoutError(
                f"warm-up: gold.fact_sales holds {last} of the sample's {lines} lines after {timeout:.0f} s"
                f" (short: {short}); see the daemon log {daemon.log}:\n{daemon.log_tail()}"
            )
        time.sleep(1.0)


@contextlib.contextmanager
def _moto_bucket() -> Iterator[tuple[str, str]]:
    """A moto S3 server in this process and a fresh bucket: ``(endpoint, bucket)``."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # not a line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"resight-bench-{uuid.uuid4().hex[:8]}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=AWS_DUMMY["AWS_DEFAULT_REGION"],
            aws_access_key_id=AWS_DUMMY["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_DUMMY["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        yield endpoint, bucket
    finally:
        server.stop()


def _aws_env(home: Path, endpoint: str) -> dict[str, str | None]:
    return {
        **AWS_DUMMY,
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": str(home / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
        "AWS_PROFILE": None,
        "AWS_SESSION_TOKEN": None,
        "AWS_ENDPOINT_URL_S3": None,
    }


@contextlib.contextmanager
def _warehouse(home: Path, server_url: str | None, token: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(warehouse URL, env for the daemon)``: the embedded server under ``home/pg`` (started here,
    so it is not in the daemon's process group), or fresh databases on ``server_url``."""
    from resight_platform.io.postgres import database_url, embedded_pg_url, sqlalchemy_url, stop_embedded_pg

    if server_url is None:
        pg_dir = home / "pg"
        url = embedded_pg_url(pg_dir)
        try:
            yield url, {}
        finally:
            stop_embedded_pg(pg_dir)
        return
    names = (f"latency_{token}", f"latency_dagster_{token}")
    admin_url = database_url(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        for name in names:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        warehouse = database_url(server_url, names[0])
        yield (
            warehouse,
            {
                "RESIGHT_PG_URL": warehouse,
                "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(database_url(server_url, names[1])),
            },
        )
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            for name in names:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _wipe(home: Path) -> None:
    """Remove ``home`` (stopping an embedded Postgres a crashed earlier run left in it) and recreate it."""
    from resight_platform.io.postgres import stop_embedded_pg

    if (home / "pg" / "postmaster.pid").exists():
        with contextlib.suppress(Exception):
            stop_embedded_pg(home / "pg")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)


def daemon_benchmark(p: Params) -> dict[str, Any]:
    """Warm-up, then the three phases against a real ``resight daemon``; see the module docstring."""
    _quiet_dagster()
    from resight_platform.cli import instance_env
    from resight_platform.io.storage import open_store
    from resight_platform.sample import generate
    from resight_platform.settings import Settings
    from resight_platform.sources.registry import load_registry

    home = p.home
    _wipe(home)
    today = _utc_now().date()
    day = today - timedelta(days=1)
    token = uuid.uuid4().hex[:4].upper()
    registry = load_registry()
    out: dict[str, Any] = {"business_date": day.isoformat()}

    with contextlib.ExitStack() as stack:
        env: dict[str, str | None] = {name: None for name in _SCRUBBED}
        env.update(
            RESIGHT_HOME=str(home),
            RESIGHT_PARTITIONS_START=(today - timedelta(days=60)).isoformat(),
            PYTHONUNBUFFERED="1",
        )
        endpoint: str | None = None
        if p.s3:
            endpoint, bucket = stack.enter_context(_moto_bucket())
            env.update(_aws_env(home, endpoint))
            env.update(RESIGHT_LANDING_URL=f"s3://{bucket}/landing", RESIGHT_LAKE_URL=f"s3://{bucket}/lake")
        pg_url, pg_env = stack.enter_context(_warehouse(home, p.pg_url, token))
        env.update(pg_env)
        # This process sees what the daemon sees: the settings, the stores, the Dagster instance.
        stack.enter_context(_environment(env))
        settings = Settings.from_env()
        dagster_env = instance_env(settings, pg_url)
        stack.enter_context(_environment(dict(dagster_env)))
        daemon_env = dict(os.environ)
        landing = open_store(settings.landing_url, endpoint)

        _say(f"starting resight daemon (home {home}, landing {settings.landing_url}, log {home / 'daemon.log'})")
        daemon = DaemonProcess(daemon_env, home / "daemon.log")
        stack.callback(lambda: out.setdefault("daemon_stop", daemon.stop()))

        providers = list(registry.providers)[: p.providers]
        standard = [s for s in providers if registry.providers[s].profile == STANDARD_CSV]
        if not standard:
            raise ValueError(f"none of the first {p.providers} providers has profile {STANDARD_CSV}")
        _say(f"warm-up: {len(providers)} providers x 1 day ({day}) into the landing zone")
        generating = time.monotonic()
        # A local sample is written beside the landing zone and moved in at once, as one delivery
        # (on S3 it is written in place, in under a second).
        local = endpoint is None
        target = str(home / "sample-staging") if local else settings.landing_url
        manifest = generate(
            target,
            providers=len(providers),
            days=1,
            start=day,
            sales_lines_per_day=p.warmup_lines,
            manifest_url=str(home / "manifest.json"),
            endpoint_url=endpoint,
            registry=registry,
        )
        if local:
            landing_dir = Path(settings.landing_url)
            if landing_dir.is_dir():
                landing_dir.rmdir()  # the daemon may have created it; nothing has landed yet
            Path(target).rename(landing_dir)
        generate_s = time.monotonic() - generating
        lines = int(manifest.sales["lines"])
        expected = {
            r["provider"]: int(r["lines"]) for r in manifest.sales["by_date_provider"] if r["date"] == day.isoformat()
        }
        warm_s = _wait_warm(pg_url, lines, expected, day, p.warmup_timeout, daemon)
        rows, net = _gold_totals(pg_url)
        out["warmup"] = {
            "providers": len(providers),
            "sales_lines": lines,
            "seconds_since_daemon_start": round(time.monotonic() - daemon.started, 1),
            "seconds_since_sample_written": round(warm_s, 1),
            "generate_s": round(generate_s, 1),
            "gold_rows": rows,
            "gold_net_amount": net,
            "manifest_net_amount": manifest.sales["net_amount"],
        }
        _say(f"warm-up: {lines} lines in gold after {warm_s:.0f} s")

        templates = sales_templates(landing, registry, standard, day)
        lander = Lander(landing, templates, day, token, expected)
        watcher = GoldWatcher(pg_url)
        stack.callback(watcher.close)
        queue = RunQueue(Path(dagster_env["DAGSTER_HOME"]))
        stack.callback(queue.close)
        out["template_rows"] = {provider: t.frame.height for provider, t in templates.items()}

        phases: dict[str, Any] = {}
        windows: dict[str, tuple[datetime, datetime]] = {}
        out["idle_wait_s"] = {"after_warmup": queue.wait_idle(120, daemon)}
        _say(f"single: {p.single} files of {p.rows:,} rows, one at a time")
        begun = _utc_now()
        single = _phase_single(lander, watcher, daemon, p)
        windows["single"] = (begun, _utc_now())
        phases["single"] = {"rows_per_file": p.rows, "files": [f.record() for f in single]}
        out["idle_wait_s"]["after_single"] = queue.wait_idle(120, daemon)

        _say(f"burst: {p.burst} files of {p.rows:,} rows together")
        begun = _utc_now()
        burst = _phase_burst(lander, watcher, daemon, p)
        windows["burst"] = (begun, _utc_now())
        phases["burst"] = {"rows_per_file": p.rows, "files": [f.record() for f in burst]}
        out["idle_wait_s"]["after_burst"] = queue.wait_idle(120, daemon)

        _say(f"sustained: a file of {p.sustained_rows:,} rows every {p.interval:g} s for {p.minutes:g} min")
        begun = _utc_now()
        sustained, samples, write_s = _phase_sustained(lander, watcher, queue, daemon, p)
        windows["sustained"] = (begun, _utc_now())
        writing = [s["queued"] + s["running"] for s in samples if s["writing"]]
        phases["sustained"] = {
            "rows_per_file": p.sustained_rows,
            "interval_s": p.interval,
            "write_window_s": round(write_s, 1),
            "files": [f.record() for f in sustained],
            "queue_depth": _trend(writing),
            "queue_depth_after_writes_max": max(
                (s["queued"] + s["running"] for s in samples if not s["writing"]), default=None
            ),
            "queue_samples": samples,
        }
        slots = queue.slots()
        for name, files in (("single", single), ("burst", burst), ("sustained", sustained)):
            phases[name]["summary"] = summarise([f.latency for f in files])
            runs = queue.runs_between(*windows[name])
            phases[name]["run_summary"] = _run_summary(runs)
            phases[name]["runs"] = runs
            phases[name]["efficiency"] = efficiency(len(files), runs, phases[name].get("queue_samples", []), slots)
        out["phases"] = phases
        out["overall"] = summarise([f.latency for f in (*single, *burst, *sustained)])
        out["gold_rows_at_end"] = _gold_totals(pg_url)[0]
        out["daemon_stop"] = daemon.stop()
        out["daemon_log"] = str(daemon.log)
    return out


# --- Tick mode ------------------------------------------------------------------------------------------------


def _tick_files(registry: Any, files: int, days: Sequence[date]) -> list[str]:
    """``files`` keys spread round-robin over every active registered source and ``days``."""
    cells = [(s.provider, s.feed, d) for s in registry.active_sources() for d in days]
    keys = []
    for n in range(files):
        provider, feed, day = cells[n % len(cells)]
        keys.append(f"{provider}/{feed}/{day.isoformat()}/{feed}_{day.isoformat()}_{n:06d}.csv")
    return keys


def _write_all(store: Any, keys: Sequence[str], workers: int) -> None:
    def write(key: str) -> None:
        store.write_bytes(key, f"id,value\n{key},1\n".encode())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, keys))


def tick_benchmark(
    landing_url: str,
    pg_url: str,
    home: Path,
    files: int,
    days: int = 3,
    endpoint: str | None = None,
) -> dict[str, Any]:
    """One landing-sensor tick over ``files`` new files at ``landing_url`` (ledger in ``pg_url``),
    then a second tick; evaluated in process like the daemon's code server does."""
    import dagster as dg

    from resight_platform.definitions import build_definitions
    from resight_platform.defs.sensors import TRIGGER_TAG
    from resight_platform.io.postgres import connect
    from resight_platform.io.storage import open_store
    from resight_platform.io.watch import WatchSettings
    from resight_platform.settings import Settings
    from resight_platform.sources.registry import load_registry

    _quiet_dagster()
    today = _utc_now().date()
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(home),
            "RESIGHT_LANDING_URL": landing_url,
            "RESIGHT_LAKE_URL": str(home / "lake") if endpoint is None else landing_url.rsplit("/", 1)[0] + "/lake",
            "RESIGHT_PARTITIONS_START": (today - timedelta(days=60)).isoformat(),
            **({"AWS_ENDPOINT_URL": endpoint} if endpoint else {}),
        }
    )
    registry = load_registry()
    tick_days = [today - timedelta(days=d) for d in range(1, days + 1)]
    watch = WatchSettings.from_env(os.environ)
    if days > watch.hot_days:
        raise ValueError(f"--tick-days {days} reaches past the hot window ({watch.hot_days} days)")
    keys = _tick_files(registry, files, tick_days)
    store = open_store(landing_url, endpoint)
    defs = build_definitions(settings, pg_url=pg_url)

    with dg.instance_for_test() as instance:
        cursor: str | None = None

        def tick() -> tuple[float, dg.SensorResult]:
            nonlocal cursor
            seconds, result = landing_tick(defs, instance, cursor)
            cursor = result.cursor
            return seconds, result

        warm_s, warm = tick()  # the empty zone: registers the source partitions, opens connections
        started = time.perf_counter()
        _write_all(store, keys, workers=16 if endpoint else 4)
        write_s = time.perf_counter() - started
        first_s, first = tick()
        second_s, second = tick()

    def figures(result: dg.SensorResult) -> dict[str, Any]:
        requests = list(result.run_requests or [])
        loads = [r for r in requests if r.job_name != "scan_landing_job"]
        return {
            "runs_requested": len(requests),
            "load_runs": len(loads),
            "dead_letter_runs": len(requests) - len(loads),
            "files_requested": sum(int(r.tags.get("resight/files", 0)) for r in loads),
            "run_keys": sorted(str(r.run_key) for r in requests),
            "trigger_tags": sorted({r.tags.get(TRIGGER_TAG, "") for r in requests}),
        }

    with connect(pg_url) as conn:
        ledger = conn.execute("select file_key, status, run_key from ops.ingestion_ledger").fetchall()
    first_figures = figures(first)
    ledger_keys = [row[0] for row in ledger]
    return {
        "landing": "s3" if endpoint else "local",
        "files": files,
        "sources": len(registry.active_sources()),
        "days": [d.isoformat() for d in tick_days],
        "write_s": round(write_s, 2),
        "warm_tick_s": round(warm_s, 3),
        "warm_tick_runs_requested": len(list(warm.run_requests or [])),
        "tick_s": round(first_s, 3),
        **{k: v for k, v in first_figures.items() if k != "run_keys"},
        "ledger_rows": len(ledger),
        "ledger_queued": sum(row[1] == "queued" for row in ledger),
        "ledger_keys_match_files": sorted(ledger_keys) == sorted(keys),
        "ledger_run_keys_requested": {row[2] for row in ledger} <= set(first_figures["run_keys"]),
        "second_tick_s": round(second_s, 3),
        "second_tick_runs_requested": len(list(second.run_requests or [])),
        "watch_settings": {k: str(v) for k, v in vars(WatchSettings.from_env(os.environ)).items()},
    }


def tick_mode(args: argparse.Namespace) -> dict[str, Any]:
    from resight_platform.io.postgres import database_url, embedded_pg_url, stop_embedded_pg

    home: Path = args.home
    _wipe(home)
    out: dict[str, Any] = {"backends": []}
    with contextlib.ExitStack() as stack:
        if args.pg_url:
            server = database_url(args.pg_url, "postgres")
        else:
            pg_dir = home / "pg"
            server = database_url(embedded_pg_url(pg_dir), "postgres")
            stack.callback(stop_embedded_pg, pg_dir)
        backends = ["local", "s3"] if args.s3 else ["local"]
        for backend in backends:
            name = f"latency_tick_{backend}_{uuid.uuid4().hex[:6]}"
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            try:
                with contextlib.ExitStack() as inner:
                    endpoint: str | None = None
                    if backend == "s3":
                        endpoint, bucket = inner.enter_context(_moto_bucket())
                        inner.enter_context(_environment(_aws_env(home, endpoint)))
                        landing_url = f"s3://{bucket}/landing"
                    else:
                        landing_url = str(home / "tick-landing")
                    _say(f"tick: {args.tick_files:,} files on {backend} landing")
                    result = tick_benchmark(
                        landing_url,
                        database_url(server, name),
                        home / backend,
                        args.tick_files,
                        args.tick_days,
                        endpoint,
                    )
                    out["backends"].append(result)
                    _say(f"  tick {result['tick_s']:.2f} s, second tick {result['second_tick_s']:.2f} s")
            finally:
                with psycopg.connect(server, autocommit=True) as admin:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return out


# --- Output ------------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def to_markdown(results: dict[str, Any]) -> str:
    lines: list[str] = []
    if results["mode"] == "tick":
        lines += [
            "| landing | files | sources × days | tick (s) | files requested | runs requested | ledger rows"
            " | second tick (s) | second tick runs | warm empty tick (s) |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for b in results["backends"]:
            cells = [
                b["landing"],
                b["files"],
                f"{b['sources']} × {len(b['days'])}",
                b["tick_s"],
                b["files_requested"],
                b["runs_requested"],
                b["ledger_rows"],
                b["second_tick_s"],
                b["second_tick_runs_requested"],
                b["warm_tick_s"],
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
        return "\n".join(lines)
    warm = results["warmup"]
    lines += [
        f"Landing: {'S3 (moto)' if results['parameters']['s3'] else 'local directory'};"
        f" business date {results['business_date']}; warm-up {warm['sales_lines']:,} lines in gold"
        f" {warm['seconds_since_daemon_start']:.0f} s after the daemon started.",
        "",
        "| phase | files | rows per file | arrived | timed out | p50 (s) | p95 (s) | max (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, phase in results["phases"].items():
        s = phase["summary"]
        cells = [
            name,
            s["files"],
            phase["rows_per_file"],
            s["arrived"],
            s["timed_out"],
            s["p50_s"],
            s["p95_s"],
            s["max_s"],
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    o = results["overall"]
    lines.append(
        "| **overall** | "
        + " | ".join(
            _cell(c) for c in [o["files"], "", o["arrived"], o["timed_out"], o["p50_s"], o["p95_s"], o["max_s"]]
        )
        + " |"
    )
    lines += [
        "",
        "| phase | kind of run | runs | failed | created → started, mean / max (s) | running, mean / max (s) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for name, phase in results["phases"].items():
        for kind, r in phase.get("run_summary", {}).items():
            cells = [
                name,
                kind,
                r["runs"],
                r["failed"],
                f"{_cell(r['wait_mean_s'])} / {_cell(r['wait_max_s'])}",
                f"{_cell(r['run_mean_s'])} / {_cell(r['run_max_s'])}",
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += [
        "",
        "| phase | landing runs / file | automation runs / file | files / landing run | created → started, mean (s)"
        " | all slots busy | slots busy, mean | waiting: first 10 s / last 10 s / max |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, phase in results["phases"].items():
        e = phase.get("efficiency")
        if not e:
            continue
        w = e.get("waiting")
        cells = [
            name,
            e["landing_runs_per_file"],
            e["automation_runs_per_file"],
            e["files_per_landing_run"],
            e["queue_wait_mean_s"],
            e.get("all_slots_busy"),
            e.get("slots_busy_mean"),
            "–" if not w else f"{_cell(w['start'])} / {_cell(w['end'])} / {_cell(w['max'])}",
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    q = results["phases"]["sustained"]["queue_depth"]
    lines += [
        "",
        f"Sustained run queue depth (queued + running, sampled every second while writing): max {_cell(q['max'])},"
        f" mean of first third {_cell(q['first_third_mean'])}, of last third {_cell(q['last_third_mean'])}"
        f" → {'trending up' if q['trended_up'] else 'not trending up'}.",
    ]
    stop = results.get("daemon_stop") or {}
    if stop.get("left_running") or stop.get("sigkilled"):
        lines.append(f"Daemon stop: SIGKILLed {stop.get('sigkilled')}, left running {stop.get('left_running')}.")
    return "\n".join(lines)


def _default_output(args: argparse.Namespace) -> Path:
    name = "results-tick" if args.tick_files else "results-s3" if args.s3 else "results"
    if args.quick:
        return REPO_ROOT / "bench" / "out" / "latency" / f"{name}-quick.json"
    return BENCH_DIR / f"{name}.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 single, 3 burst, 1 min sustained, 10k-row files")
    parser.add_argument("--s3", action="store_true", help="landing zone and lake on a moto S3 server")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="wiped first (default: %(default)s)")
    parser.add_argument("--pg-url", help="a Postgres server URL: fresh databases on it (default: embedded in --home)")
    parser.add_argument("--output", type=Path, help="results JSON (default: bench/latency/results*.json)")
    parser.add_argument("--rows", type=int, help="rows per single/burst file (default 100,000; quick 10,000)")
    parser.add_argument("--single", type=int, help="files one at a time (default 10; quick 3)")
    parser.add_argument("--burst", type=int, help="files written together (default 10; quick 3)")
    parser.add_argument(
        "--burst-loaded",
        action="store_true",
        help="burst onto the bench day's partitions (which hold the single phase's rows) instead of fresh ones",
    )
    parser.add_argument("--sustained-rows", type=int, help="rows per sustained file (default 20,000; quick 5,000)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between sustained files (default 2)")
    parser.add_argument("--minutes", type=float, help="length of the sustained phase (default 3; quick 1)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a file counts as timed out")
    parser.add_argument("--warmup-timeout", type=float, default=300.0, help="seconds for the warm-up sample")
    parser.add_argument("--providers", type=int, default=10, help="providers in the warm-up sample (default 10)")
    parser.add_argument("--warmup-lines", type=int, default=4000, help="sales lines in the warm-up sample")
    parser.add_argument("--tick-files", type=int, nargs="?", const=12_000, help="tick mode with N files (12,000)")
    parser.add_argument("--tick-days", type=int, default=3, help="tick mode: days the files spread over (default 3)")
    return parser


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    command = "python -m bench.latency.run " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    results: dict[str, Any] = {
        "benchmark": "latency",
        "date": _utc_now().isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
    }
    if args.tick_files:
        results["mode"] = "tick"
        results["parameters"] = {
            "files": args.tick_files,
            "days": args.tick_days,
            "s3": args.s3,
            "pg": "external" if args.pg_url else "embedded",
        }
        results.update(tick_mode(args))
    else:
        quick = args.quick
        params = Params(
            single=args.single if args.single is not None else (3 if quick else 10),
            burst=args.burst if args.burst is not None else (3 if quick else 10),
            rows=args.rows or (10_000 if quick else 100_000),
            sustained_rows=args.sustained_rows or (5_000 if quick else 20_000),
            interval=args.interval,
            minutes=args.minutes if args.minutes is not None else (1.0 if quick else 3.0),
            timeout=args.timeout,
            warmup_timeout=args.warmup_timeout,
            providers=args.providers,
            warmup_lines=args.warmup_lines,
            s3=args.s3,
            home=args.home,
            pg_url=args.pg_url,
            watch={k: v for k, v in os.environ.items() if k.startswith("RESIGHT_WATCH_")},
            burst_loaded=args.burst_loaded,
        )
        results["mode"] = "daemon"
        results["parameters"] = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(params).items() if k != "pg_url"
        } | {"pg": "external" if params.pg_url else "embedded"}
        results.update(daemon_benchmark(params))
    output: Path = args.output or _default_output(args)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(to_markdown(results))
    print(f"\nfigures written to {output}")
    return results


if __name__ == "__main__":
    main()
