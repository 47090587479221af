"""Issue 20 (point 3, first "Measured" bullet): landing latency with thousands of distinct sources
out of twelve thousand registered, the landing sensor's event path against its listing path.

For each path (``--paths``, default ``events,listing``; one after the other, each in a fresh home
under ``--home``, a fresh moto server and a fresh embedded Postgres):

1. **Registry.** The packaged registry (40 providers) plus ``partner_NNNNN`` providers up to
   ``--providers`` (3,000 × 4 feeds = 12,000 sources), every partner with pawmart's profile,
   timezone and currency (``standard_csv``), so one template serves them all
   (``RESIGHT_REGISTRY_DIR``).
2. **Daemon.** ``resight daemon`` (the real one: sensors, run queue, code server, run workers) on a
   moto S3 server run in this process (landing zone and lake); on the event path the bucket's
   object-created notifications go to an SQS queue of the same server (``io.events.subscribe``,
   ``RESIGHT_LANDING_QUEUE_URL``); the listing path has no queue (one LIST per registered
   (provider, feed) per tick). Every source partition is registered in the daemon's Dagster
   instance (one call) before the daemon starts: left to the landing sensor's first tick, the
   sensor daemon checks each of 3,000 keys with a query of its own and creates no run for ~5
   minutes (``--cold-partitions`` keeps that path; bench/RESULTS.md).
3. **Warm-up.** The generator's sample for ``--warmup-providers`` packaged providers × yesterday
   lands; the bench waits for all its lines in ``gold.fact_sales`` (dimensions exist, and the
   facts are then built in the landing runs). pawmart's cleaned sales rows are the template of
   every bench file (``bench.latency.run.sales_templates``).
4. **Loads.** ``--loads`` sales files, each from a different partner (the honest hard case: no two
   share a source partition, and the partners are spread over the whole partition order), of
   ``--rows-min``..``--rows-max`` rows, evenly spaced over ``--minutes`` (a simulated day of
   3,000 loads compressed to minutes), all dated yesterday. Latency of a file = first poll (every
   0.2 s) at which gold holds all its rows − the moment its write returned
   (``bench.latency.run.GoldWatcher``); files missing after ``--timeout`` s count as timed out.
   The run queue depth is sampled every second.
5. **Rectangles** (``--rectangles``, e.g. ``100,1000``): that many files from as many fresh
   partners written at once, on the day before: what the sensor makes of them (runs, files and
   source partitions per run) and what such a run costs (per step, from the run's event log).

Figures per path: latency p50 / p95 / max, timed out; run queue depth (first, last, max, the
trend); runs created in the window by kind (landing, automation, ...), runs per file, files per
landing run, source partitions per landing run (the width of its range, empty ones included),
seconds from created to started and started to finished; a landing run's time by step (worker
start to first step, each step, last step to end); the landing sensor's ticks (count, mean and
max seconds).

``--profile-runs``: every run worker (``dagster api execute_run``) of the daemon runs under
cProfile (a ``sitecustomize`` on the daemon's ``PYTHONPATH``), and the bench prints the functions
with the most cumulative time over all landing runs (``profile_top`` in the results).

    .venv/bin/python -m bench.landing.latency --quick        # 300 loads over 3 min from 300 of 12,000
    .venv/bin/python -m bench.landing.latency                # 3,000 loads over 10 min
    .venv/bin/python -m bench.landing.latency --quick --paths events --rectangles 100,1000 --profile-runs

Figures go to ``bench/landing/results-latency.json`` (with ``--quick`` to
``bench/out/landing/results-latency-quick.json``) or ``--output``, and as Markdown to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import pstats
import random
import re
import shlex
import shutil
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.latency import run as latency
from bench.machine import machine

__all__ = ["Params", "build_registry", "main", "path_benchmark", "to_markdown"]

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
DEFAULT_HOME = Path("/tmp/resight-bench/landing-latency")
PATHS = ("events", "listing")
FEEDS = ("sales", "catalog", "stores", "customers")
#: Every partner copies this packaged provider's profile, timezone and currency, and its cleaned
#: warm-up sales rows are every bench file's template.
TEMPLATE_PROVIDER = "pawmart"
PARTNER_PREFIX = "partner_"

_PROFILE_HOOK = '''"""Installed by bench.landing.latency --profile-runs: Dagster run workers run under cProfile.

The code server starts a run worker as a multiprocessing "spawn" child (``dagster._grpc.impl.
_run_in_subprocess``); every such child is profiled, and only those that executed a run are kept.
"""
import os

def _install():
    try:
        with open("/proc/self/cmdline", "rb") as handle:
            command = handle.read()
    except OSError:
        return
    if b"spawn_main" not in command and b"execute_run" not in command:
        return
    import atexit
    import cProfile

    profiler = cProfile.Profile()
    def _dump():
        profiler.disable()
        profiler.create_stats()
        if not any(name in ("_run_in_subprocess", "core_execute_run") for _, _, name in profiler.stats):
            return
        # A landing run executes the bronze asset (defs/bronze.py's inner ``bronze``); automation
        # runs (gold, marts) do not. Every process defines it; only a landing run calls it.
        bronze = any(
            path.endswith(os.path.join("defs", "bronze.py")) and name == "bronze" for path, _, name in profiler.stats
        )
        kind = "landing" if bronze else "other"
        profiler.dump_stats(os.path.join(os.environ["RESIGHT_BENCH_PROFILE_DIR"], f"{kind}-{os.getpid()}.prof"))

    atexit.register(_dump)
    profiler.enable()

if os.environ.get("RESIGHT_BENCH_PROFILE_DIR"):
    _install()
'''


def _say(message: str) -> None:
    print(message, flush=True)


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- Registry -----------------------------------------------------------------------------------------------


def build_registry(directory: Path, providers: int) -> list[str]:
    """The packaged registry plus partners up to ``providers`` providers × 4 feeds, in ``directory``
    (created); the partners' slugs, in registry order."""
    from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR

    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    with (directory / "providers.csv").open(encoding="utf-8", newline="") as handle:
        packaged = list(csv.DictReader(handle))
    template = next(row for row in packaged if row["provider"] == TEMPLATE_PROVIDER)
    if providers < len(packaged):
        raise ValueError(f"--providers {providers} is fewer than the packaged registry's {len(packaged)}")
    partners = [f"{PARTNER_PREFIX}{n:05d}" for n in range(providers - len(packaged))]
    with (directory / "providers.csv").open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for n, slug in enumerate(partners):
            same = [template[column] for column in ("kind", "profile", "timezone", "currency")]
            writer.writerow([slug, f"Partner {n}", *same])
    with (directory / "sources.csv").open("a", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for slug in partners:
            for feed in FEEDS:
                writer.writerow([slug, feed, "", "24" if feed in ("sales", "customers") else "168", "true"])
    return partners


# --- Files -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Params:
    loads: int
    minutes: float
    rows_min: int
    rows_max: int
    providers: int
    warmup_providers: int
    warmup_lines: int
    timeout: float
    warmup_timeout: float
    rectangles: tuple[int, ...]
    paths: tuple[str, ...]
    home: Path
    seed: int
    profile_runs: bool
    preregister: bool = True


class SmallLander:
    """Writes small sales files of the template, one partner each, and says when each write returned."""

    def __init__(self, store: Any, template: latency.Template, template_day: date, token: str) -> None:
        self.store = store
        self.template = template
        self.template_day = template_day  # the day the template's rows are dated
        self.token = token
        self.count = 0

    def land(self, provider: str, day: date, rows: int, letter: str) -> latency.Landed:
        self.count += 1
        prefix = f"{letter}{self.token}{self.count:05d}"
        data, sentinel = latency.build_file(self.template, prefix, rows, (day - self.template_day).days)
        key = f"{provider}/sales/{day.isoformat()}/sales_{day.isoformat()}_{prefix.lower()}.csv"
        started = time.monotonic()
        self.store.write_bytes(key, data)
        landed = time.monotonic()
        return latency.Landed(
            prefix=prefix,
            provider=provider,
            key=key,
            rows=rows,
            bytes=len(data),
            day=day,
            sentinel=sentinel,
            partition_rows=rows,
            write_s=landed - started,
            landed=landed,
            landed_at=_utc_now().isoformat(timespec="milliseconds"),
        )


# --- Dagster instance: runs, steps, ticks ---------------------------------------------------------------------


#: The tag a landing run over a set of partitions carries with their count (defs/sensors.py).
SET_PARTITIONS_TAG = "resight/partitions"


def _source_order(instance: Any) -> dict[str, int]:
    from resight_platform.defs.partitions import SOURCE_PARTITIONS

    assert SOURCE_PARTITIONS.name is not None
    return {key: n for n, key in enumerate(instance.get_dynamic_partitions(SOURCE_PARTITIONS.name))}


def _width(run_tags: Mapping[str, str], order: Mapping[str, int]) -> tuple[int | None, int] | None:
    """(days, source partitions) a date × source range run covers, empty partitions included; for
    a landing run over a set of partitions (None, its partitions)."""
    from resight_platform.defs.metadata import run_partition_range
    from resight_platform.defs.partitions import split_key

    if SET_PARTITIONS_TAG in run_tags:
        return None, int(run_tags[SET_PARTITIONS_TAG])
    bounds = run_partition_range(run_tags)
    if bounds is None or "|" not in bounds[0]:
        return None
    (first_day, first_source), (last_day, last_source) = split_key(bounds[0]), split_key(bounds[1])
    if first_source not in order or last_source not in order:
        return None
    return (last_day - first_day).days + 1, abs(order[last_source] - order[first_source]) + 1


def _step_times(instance: Any, run_id: str) -> dict[str, float]:
    """Seconds a finished run spent: ``setup`` (run start to first step), each step, ``teardown``."""
    import dagster as dg

    kinds = {
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    entries = [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=kinds, limit=10_000).records]
    started: dict[str, float] = {}
    out: dict[str, float] = {}
    run_start = run_end = first_step = last_step = None
    for entry in entries:
        kind = entry.dagster_event.event_type if entry.dagster_event else None
        if kind == dg.DagsterEventType.RUN_START:
            run_start = entry.timestamp
        elif kind in (dg.DagsterEventType.RUN_SUCCESS, dg.DagsterEventType.RUN_FAILURE):
            run_end = entry.timestamp
        elif kind == dg.DagsterEventType.STEP_START and entry.step_key:
            started[entry.step_key] = entry.timestamp
            first_step = entry.timestamp if first_step is None else min(first_step, entry.timestamp)
        elif entry.step_key in started:
            out[entry.step_key] = round(entry.timestamp - started[entry.step_key], 3)
            last_step = entry.timestamp if last_step is None else max(last_step, entry.timestamp)
    if run_start is not None and first_step is not None:
        out["(setup)"] = round(first_step - run_start, 3)
    if run_end is not None and last_step is not None:
        out["(teardown)"] = round(run_end - last_step, 3)
    return out


def runs_between(instance: Any, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The runs created in ``[start, end]``: kind, files, width, queue and run seconds, step times."""
    import dagster as dg

    order = _source_order(instance)
    records = instance.get_run_records(dg.RunsFilter(created_after=start, created_before=end))
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
        width = _width(run.tags, order)
        finished = record.end_time is not None
        out.append(
            {
                "kind": kind,
                "status": run.status.value,
                "files": int(run.tags.get("resight/files", 0)),
                "days": None if width is None else width[0],
                "sources": None if width is None else width[1],
                "assets": sorted("/".join(key.path) for key in (run.asset_selection or set())),
                "created_s": round(created - start.timestamp(), 2),
                "wait_s": None if record.start_time is None else round(record.start_time - created, 2),
                "run_s": None
                if record.start_time is None or record.end_time is None
                else round(record.end_time - record.start_time, 2),
                "steps": _step_times(instance, run.run_id) if finished else {},
            }
        )
    return out


def _mean(values: Sequence[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def run_figures(runs: Sequence[dict[str, Any]], files: int) -> dict[str, Any]:
    """Per kind: runs, failures, created → started and started → finished (mean / max); for the
    landing runs, files and source partitions per run and mean seconds per step."""
    by_kind: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in runs}):
        mine = [r for r in runs if r["kind"] == kind]
        waits = [r["wait_s"] for r in mine if r["wait_s"] is not None]
        ran = [r["run_s"] for r in mine if r["run_s"] is not None]
        by_kind[kind] = {
            "runs": len(mine),
            "failed": sum(r["status"] == "FAILURE" for r in mine),
            "wait_mean_s": _mean(waits),
            "wait_max_s": max(waits, default=None),
            "run_mean_s": _mean(ran),
            "run_max_s": max(ran, default=None),
        }
    landing = [r for r in runs if r["kind"] == "landing"]
    steps: dict[str, list[float]] = defaultdict(list)
    for r in landing:
        for step, seconds in r["steps"].items():
            steps[step].append(seconds)
    widths = [r["sources"] for r in landing if r["sources"] is not None]
    return {
        "by_kind": by_kind,
        "runs": len(runs),
        "landing_runs": len(landing),
        "runs_per_file": round(len(runs) / files, 3) if files else None,
        "landing_runs_per_file": round(len(landing) / files, 3) if files else None,
        "files_per_landing_run": _mean([r["files"] for r in landing]),
        "files_per_landing_run_max": max((r["files"] for r in landing), default=None),
        "sources_per_landing_run": _mean(widths),
        "sources_per_landing_run_max": max(widths, default=None),
        "landing_step_mean_s": {step: _mean(v) for step, v in sorted(steps.items())},
        "landing_step_max_s": {step: max(v) for step, v in sorted(steps.items())},
    }


def sensor_ticks(instance: Any, name: str, start: datetime, end: datetime) -> dict[str, Any]:
    """The sensor ``name``'s ticks in ``[start, end]``: how many, mean and max seconds each."""
    seconds: list[float] = []
    for state in instance.all_instigator_state():
        if state.instigator_name != name:
            continue
        for tick in instance.get_ticks(
            state.instigator_origin_id, state.selector_id, after=start.timestamp(), before=end.timestamp()
        ):
            if tick.tick_data.end_timestamp is not None:
                seconds.append(tick.tick_data.end_timestamp - tick.timestamp)
    return {
        "ticks": len(seconds),
        "mean_s": _mean(seconds),
        "max_s": round(max(seconds), 2) if seconds else None,
        "per_minute": round(len(seconds) / max(1e-9, (end - start).total_seconds() / 60), 2),
    }


#: The landing sensor's own summary of a tick in the daemon log (``defs/sensors.py``).
_TICK_LINE = re.compile(
    r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \+0000 - dagster - INFO - \S+ - landing_sensor - .*"
    r"listed (?P<listed>\d+) files in (?P<seconds>[\d.]+)s: (?P<load>\d+) to load in (?P<runs>\d+) runs"
    r".* (?P<deferred>\d+) deferred"
)


def tick_log(log: Path, start: datetime, end: datetime) -> dict[str, Any]:
    """The landing sensor's ticks in ``[start, end]`` as it timed them itself (its log line):
    seconds of work (mean / max), files listed, files requested, runs requested, ticks that
    deferred files (their partitions busy in a run in flight) and the files deferred at most."""
    ticks = []
    with contextlib.suppress(OSError), log.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            match = _TICK_LINE.match(line)
            if match is None:
                continue
            at = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            if start.replace(microsecond=0) <= at <= end:
                values = {k: v for k, v in match.groupdict().items() if k != "at"}
                ticks.append({k: float(v) if k == "seconds" else int(v) for k, v in values.items()})
    seconds = [t["seconds"] for t in ticks]
    return {
        "ticks": len(ticks),
        "work_mean_s": _mean(seconds),
        "work_max_s": max(seconds, default=None),
        "listed_max": max((t["listed"] for t in ticks), default=None),
        "files_requested": sum(t["load"] for t in ticks),
        "runs_requested": sum(t["runs"] for t in ticks),
        "ticks_deferring": sum(t["deferred"] > 0 for t in ticks),
        "deferred_max": max((t["deferred"] for t in ticks), default=None),
    }


def _profile_top(directory: Path, limit: int = 40) -> list[dict[str, Any]]:
    """The functions with the most cumulative time over every landing run worker's profile in
    ``directory`` (``landing-*.prof``; automation runs' are ``other-*.prof``)."""
    files = sorted(str(p) for p in directory.glob("landing-*.prof"))
    if not files:
        return []
    stats = pstats.Stats(files[0])
    for extra in files[1:]:
        stats.add(extra)
    return [{"workers": len(files), **row} for row in _top_of(stats, limit)]


def _top_of(stats: pstats.Stats, limit: int) -> list[dict[str, Any]]:
    """The ``limit`` functions of ``stats`` with the most cumulative time."""
    rows = []
    for (filename, line, function), (_, calls, total, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{Path(filename).name}:{line}({function})",
                "path": filename,
                "calls": calls,
                "tottime_s": round(total, 3),
                "cumtime_s": round(cumulative, 3),
            }
        )
    rows.sort(key=lambda r: r["cumtime_s"], reverse=True)
    return rows[:limit]


def _preregister(dagster_home: Path, registry: Any) -> float:
    """Register every source partition in the daemon's instance in one call, before it starts:
    seconds taken. Left to the daemon, the landing sensor's first tick asks for them and the
    sensor daemon checks each key with a query of its own (``_handle_dynamic_partitions_requests``):
    5.5 minutes for 3,000 on this machine, before any run is created (bench/RESULTS.md)."""
    import dagster as dg

    from resight_platform.defs.partitions import SOURCE_PARTITIONS, source_keys

    started = time.monotonic()
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    try:
        assert SOURCE_PARTITIONS.name is not None
        instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, source_keys(registry))
    finally:
        instance.dispose()
    return round(time.monotonic() - started, 2)


# --- One path -----------------------------------------------------------------------------------------------


def _writes(
    lander: SmallLander,
    schedule: Sequence[tuple[float, str, int]],
    day: date,
    watcher: latency.GoldWatcher,
    queue: latency.RunQueue,
    daemon: latency.DaemonProcess,
    timeout: float,
    letter: str,
) -> tuple[list[latency.Landed], list[dict[str, Any]], float]:
    """Write ``schedule`` ((seconds from now, provider, rows)) while polling gold and sampling the
    run queue every second; then wait for every file (at most ``timeout`` s each)."""
    files: list[latency.Landed] = []
    samples: list[dict[str, Any]] = []
    started = time.monotonic()
    writing_until = started + (schedule[-1][0] if schedule else 0.0)
    next_sample = started

    def sample() -> None:
        nonlocal next_sample
        now = time.monotonic()
        if now >= next_sample:
            waiting, running = queue.depth()
            samples.append(
                {
                    "t_s": round(now - started, 1),
                    "queued": waiting,
                    "running": running,
                    "writing": now <= writing_until,
                    "pending_files": len(watcher.pending),
                }
            )
            next_sample = max(next_sample + 1.0, now + 0.5)

    for due, provider, rows in schedule:
        while time.monotonic() < started + due:
            tick = time.monotonic()
            watcher.poll()
            sample()
            daemon.check_alive()
            pause = min(latency.POLL_SECONDS - (time.monotonic() - tick), started + due - time.monotonic())
            time.sleep(max(0.0, pause))
        landed = lander.land(provider, day, rows, letter)
        watcher.add(landed)
        files.append(landed)
        watcher.expire(timeout)
    write_s = time.monotonic() - started
    watcher.wait(timeout, daemon, tick=sample)
    return files, samples, write_s


def _depth_figures(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    depth = [s["queued"] + s["running"] for s in samples]
    writing = [s["queued"] + s["running"] for s in samples if s["writing"]]
    return {
        "start": depth[0] if depth else None,
        "end_of_writes": writing[-1] if writing else None,
        "max": max(depth, default=None),
        "max_queued": max((s["queued"] for s in samples), default=None),
        "while_writing": latency._trend(writing),
    }


def _schedule(partners: Sequence[str], count: int, seconds: float, p: Params, rng: random.Random) -> list[Any]:
    """``count`` (due, partner, rows): distinct partners (drawn without replacement from
    ``partners``, whose order is the registry's), evenly spaced over ``seconds``."""
    if count > len(partners):
        raise ValueError(f"{count} files from distinct partners, but only {len(partners)} are left")
    chosen = rng.sample(list(partners), count)
    step = seconds / count if count else 0.0
    return [(n * step, slug, rng.randint(p.rows_min, p.rows_max)) for n, slug in enumerate(chosen)]


def path_benchmark(path: str, p: Params) -> dict[str, Any]:
    """Registry, daemon, warm-up, loads and rectangles on one landing path; see the module docstring."""
    latency._quiet_dagster()
    from resight_platform.cli import instance_env
    from resight_platform.defs.sensors import LANDING_SENSOR
    from resight_platform.io.events import subscribe
    from resight_platform.io.storage import open_store
    from resight_platform.sample import generate
    from resight_platform.settings import Settings
    from resight_platform.sources.registry import load_registry

    home = p.home / path
    latency._wipe(home)
    today = _utc_now().date()
    day = today - timedelta(days=1)
    token = uuid.uuid4().hex[:4].upper()
    registry_dir = home / "registry"
    partners = build_registry(registry_dir, p.providers)
    registry = load_registry(registry_dir)
    out: dict[str, Any] = {
        "path": path,
        "business_date": day.isoformat(),
        "providers": len(registry.providers),
        "sources": len(registry.sources),
    }
    _say(f"[{path}] registry: {len(registry.providers):,} providers, {len(registry.sources):,} sources")

    with contextlib.ExitStack() as stack:
        env: dict[str, str | None] = {name: None for name in latency._SCRUBBED}
        env.update(
            RESIGHT_HOME=str(home),
            RESIGHT_PARTITIONS_START=(today - timedelta(days=60)).isoformat(),
            RESIGHT_REGISTRY_DIR=str(registry_dir),
            PYTHONUNBUFFERED="1",
        )
        endpoint, bucket = stack.enter_context(latency._moto_bucket())
        env.update(latency._aws_env(home, endpoint))
        landing_url = f"s3://{bucket}/landing"
        env.update(RESIGHT_LANDING_URL=landing_url, RESIGHT_LAKE_URL=f"s3://{bucket}/lake")
        if p.profile_runs:
            hook = home / "profile-hook"
            hook.mkdir()
            (hook / "sitecustomize.py").write_text(_PROFILE_HOOK, encoding="utf-8")
            (home / "profiles").mkdir()
            previous = os.environ.get("PYTHONPATH")
            env.update(
                PYTHONPATH=os.pathsep.join(filter(None, [str(hook), previous])),
                RESIGHT_BENCH_PROFILE_DIR=str(home / "profiles"),
            )
        with latency._environment(latency._aws_env(home, endpoint)):
            if path == "events":
                subscription = subscribe(landing_url, f"landing-{token.lower()}", endpoint_url=endpoint)
                env["RESIGHT_LANDING_QUEUE_URL"] = subscription.queue_url
        pg_url, pg_env = stack.enter_context(latency._warehouse(home, None, token))
        env.update(pg_env)
        stack.enter_context(latency._environment(env))
        settings = Settings.from_env()
        dagster_env = instance_env(settings, pg_url)
        stack.enter_context(latency._environment(dict(dagster_env)))
        out["watch_settings"] = {k: str(v) for k, v in vars(settings.watch).items()}
        landing = open_store(landing_url, endpoint)

        if p.preregister:
            out["preregister_s"] = _preregister(Path(dagster_env["DAGSTER_HOME"]), registry)
        _say(f"[{path}] starting resight daemon (home {home}, log {home / 'daemon.log'})")
        daemon = latency.DaemonProcess(dict(os.environ), home / "daemon.log")
        stack.callback(lambda: out.setdefault("daemon_stop", daemon.stop()))

        warm_providers = list(registry.providers)[: p.warmup_providers]
        if TEMPLATE_PROVIDER not in warm_providers:
            raise ValueError(f"the warm-up's first {p.warmup_providers} providers must include {TEMPLATE_PROVIDER}")
        manifest = generate(
            landing_url,
            providers=len(warm_providers),
            days=1,
            start=day,
            sales_lines_per_day=p.warmup_lines,
            manifest_url=str(home / "manifest.json"),
            endpoint_url=endpoint,
            registry=registry,
        )
        lines = int(manifest.sales["lines"])
        expected = {
            r["provider"]: int(r["lines"]) for r in manifest.sales["by_date_provider"] if r["date"] == day.isoformat()
        }
        warm_s = latency._wait_warm(pg_url, lines, expected, day, p.warmup_timeout, daemon)
        out["warmup"] = {
            "providers": len(warm_providers),
            "sales_lines": lines,
            "seconds_since_daemon_start": round(time.monotonic() - daemon.started, 1),
            "seconds_since_sample_written": round(warm_s, 1),
        }
        _say(f"[{path}] warm-up: {lines} lines in gold after {warm_s:.0f} s")

        template = latency.sales_templates(landing, registry, [TEMPLATE_PROVIDER], day)[TEMPLATE_PROVIDER]
        lander = SmallLander(landing, template, day, token)
        watcher = latency.GoldWatcher(pg_url)
        stack.callback(watcher.close)
        queue = latency.RunQueue(Path(dagster_env["DAGSTER_HOME"]))
        stack.callback(queue.close)
        out["idle_wait_after_warmup_s"] = queue.wait_idle(180, daemon)

        rng = random.Random(p.seed)
        left = list(partners)
        schedule = _schedule(left, p.loads, p.minutes * 60, p, rng)
        used = {slug for _, slug, _ in schedule}
        left = [slug for slug in left if slug not in used]
        _say(f"[{path}] loads: {p.loads:,} files from as many partners over {p.minutes:g} min")
        begun = _utc_now()
        files, samples, write_s = _writes(lander, schedule, day, watcher, queue, daemon, p.timeout, "L")
        ended = _utc_now()
        runs = runs_between(queue.instance, begun, ended)
        out["loads"] = {
            "files": len(files),
            "rows_per_file": [p.rows_min, p.rows_max],
            "write_window_s": round(write_s, 1),
            "summary": latency.summarise([f.latency for f in files]),
            "queue_depth": _depth_figures(samples),
            "runs": run_figures(runs, len(files)),
            "landing_sensor": sensor_ticks(queue.instance, LANDING_SENSOR, begun, ended),
            "landing_ticks": tick_log(daemon.log, begun, ended),
            "file_records": [f.record() for f in files],
            "run_records": runs,
            "queue_samples": samples,
        }
        s = out["loads"]["summary"]
        _say(f"[{path}] loads: p50 {s['p50_s']} s, p95 {s['p95_s']} s, max {s['max_s']} s, {s['timed_out']} timed out")

        out["rectangles"] = []
        for width in p.rectangles:
            out["idle_wait_before_rectangle_s"] = queue.wait_idle(180, daemon)
            chosen = sorted(rng.sample(left, width))
            left = [slug for slug in left if slug not in set(chosen)]
            _say(f"[{path}] rectangle: {width} files from as many partners at once, on {day - timedelta(days=1)}")
            begun = _utc_now()
            burst, burst_samples, _ = _writes(
                lander,
                [(0.0, slug, p.rows_min) for slug in chosen],
                day - timedelta(days=1),
                watcher,
                queue,
                daemon,
                p.timeout,
                "R",
            )
            ended = _utc_now()
            rect_runs = runs_between(queue.instance, begun, ended)
            out["rectangles"].append(
                {
                    "files": width,
                    "summary": latency.summarise([f.latency for f in burst]),
                    "queue_depth": _depth_figures(burst_samples),
                    "runs": run_figures(rect_runs, width),
                    "landing_sensor": sensor_ticks(queue.instance, LANDING_SENSOR, begun, ended),
                    "landing_ticks": tick_log(daemon.log, begun, ended),
                    "run_records": rect_runs,
                }
            )
            s = out["rectangles"][-1]["summary"]
            _say(f"[{path}] rectangle {width}: p50 {s['p50_s']} s, max {s['max_s']} s, {s['timed_out']} timed out")
        out["daemon_stop"] = daemon.stop()
        out["daemon_log"] = str(daemon.log)
    if p.profile_runs:
        out["profile_top"] = _profile_top(home / "profiles")
    return out


# --- Run cost, in process -------------------------------------------------------------------------------------


def _spread(partners: Sequence[str], count: int) -> list[str]:
    """``count`` partners evenly spread over ``partners`` (registry order): far apart in the
    source partition order, as unrelated partners delivering on the same day are."""
    if count > len(partners):
        raise ValueError(f"{count} partners wanted, {len(partners)} registered")
    step = len(partners) / count
    return [partners[int(n * step)] for n in range(count)]


def _range_request(request: Any, order: Sequence[str], checks: Any) -> Any:
    """The range run of ``landing_job`` the sensor requested before landing runs took a set of
    partitions: the bounding rectangle of ``request``'s partitions (every source between the
    first and the last in Dagster's order, for every day between), the same feeds' bronze and
    silver (and facts), their checks without the freshness checks. For a side-by-side figure."""
    import dagster as dg

    from resight_platform.defs.freshness import FRESHNESS_CHECK
    from resight_platform.defs.jobs import LANDING_JOB
    from resight_platform.defs.keys import FACT_SALES
    from resight_platform.defs.metadata import RANGE_END, RANGE_START, run_partition_set
    from resight_platform.defs.partitions import DATE, SOURCE, split_key
    from resight_platform.defs.policies import FACTS_IN_RUN

    partitions = run_partition_set(request.run_config) or {}
    cells = [split_key(key) for keys in partitions.values() for key in keys]
    position = {source: n for n, source in enumerate(order)}
    days = sorted(day for day, _ in cells)
    sources = sorted((source for _, source in cells), key=position.__getitem__)
    start = dg.MultiPartitionKey({DATE: days[0].isoformat(), SOURCE: sources[0]})
    end = dg.MultiPartitionKey({DATE: days[-1].isoformat(), SOURCE: sources[-1]})
    selection = [dg.AssetKey([layer, feed]) for feed in sorted(partitions) for layer in ("bronze", "silver")]
    if request.tags.get(FACTS_IN_RUN) == "true":
        selection.append(FACT_SALES)
    named = [key for key in checks if key.asset_key in selection and key.name != FRESHNESS_CHECK]
    tags = {k: v for k, v in request.tags.items() if k != SET_PARTITIONS_TAG}
    return dg.RunRequest(
        run_key=f"{request.run_key}-range",
        job_name=LANDING_JOB,
        asset_selection=selection,
        asset_check_keys=named,
        tags={**tags, RANGE_START: str(start), RANGE_END: str(end)},
    )


def run_cost(
    providers: int, widths: Sequence[int], home: Path, profile: bool, compare_range: bool = False
) -> dict[str, Any]:
    """What one landing tick and its runs cost with ``providers`` registered, in process.

    A fresh home: the registry (``build_registry``), a local landing zone and lake, the embedded
    Postgres for the warehouse and the Dagster instance (as the daemon's). Warm-up: the
    generator's sample for 3 packaged providers × yesterday, loaded by the landing sensor's runs
    and ``dimensions_job``. Then for each width: that many files (pawmart's template, 20 rows) from
    as many partners spread over the registry, on a day of their own; one sensor tick (timed); each
    run it requests executed in process (timed, under cProfile with ``profile``); with
    ``compare_range``, then the range run over the same partitions' bounding rectangle that the
    sensor requested before (:func:`_range_request`), timed the same way, side by side."""
    import cProfile

    import dagster as dg

    from resight_platform.cli import instance_env
    from resight_platform.definitions import build_definitions
    from resight_platform.defs.jobs import DIMENSIONS_JOB, LANDING_SET_JOB
    from resight_platform.defs.metadata import RUN_KEY_TAG
    from resight_platform.io.postgres import embedded_pg_url, stop_embedded_pg
    from resight_platform.io.storage import open_store
    from resight_platform.sample import generate
    from resight_platform.settings import Settings
    from resight_platform.sources.registry import load_registry

    latency._quiet_dagster()
    latency._wipe(home)
    today = _utc_now().date()
    day = today - timedelta(days=1)
    partners = build_registry(home / "registry", providers)
    registry = load_registry(home / "registry")
    env = {name: None for name in latency._SCRUBBED} | {
        "RESIGHT_HOME": str(home),
        "RESIGHT_LANDING_URL": str(home / "landing"),
        "RESIGHT_LAKE_URL": str(home / "lake"),
        "RESIGHT_PARTITIONS_START": (today - timedelta(days=60)).isoformat(),
        "RESIGHT_REGISTRY_DIR": str(home / "registry"),
    }
    out: dict[str, Any] = {"providers": len(registry.providers), "sources": len(registry.sources), "widths": []}
    pg_dir = home / "pg"
    pg_url = embedded_pg_url(pg_dir)
    try:
        with latency._environment(env):
            settings = Settings.from_env()
            with latency._environment(dict(instance_env(settings, pg_url))):
                defs = build_definitions(settings, pg_url=pg_url)
                store = open_store(str(home / "landing"))
                instance = dg.DagsterInstance.get()
                try:
                    cursor: str | None = None

                    def tick() -> tuple[float, dg.SensorResult]:
                        nonlocal cursor
                        seconds, result = latency.landing_tick(defs, instance, cursor)
                        cursor = result.cursor
                        return seconds, result

                    def run(request: dg.RunRequest, profiler: cProfile.Profile | None) -> float:
                        assert request.job_name is not None
                        job = defs.resolve_job_def(request.job_name)
                        if request.asset_check_keys is not None:  # as the daemon launches it: these checks only
                            job = job.get_subset(
                                asset_selection=set(request.asset_selection or ()),
                                asset_check_selection=set(request.asset_check_keys),
                            )
                        started = time.perf_counter()
                        if profiler is not None:
                            profiler.enable()
                        try:
                            result = job.execute_in_process(
                                instance=instance,
                                run_config=request.run_config,
                                tags={**request.tags, RUN_KEY_TAG: str(request.run_key)},
                                partition_key=request.partition_key,
                                asset_selection=list(request.asset_selection) if request.asset_selection else None,
                            )
                        finally:
                            if profiler is not None:
                                profiler.disable()
                        if not result.success:
                            raise RuntimeError(f"run {request.run_key} failed")
                        return time.perf_counter() - started

                    generate(
                        str(home / "landing"),
                        providers=3,
                        days=1,
                        start=day,
                        sales_lines_per_day=300,
                        registry=registry,
                    )
                    for request in tick()[1].run_requests or []:
                        run(request, None)
                    defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=instance)
                    template = latency.sales_templates(store, registry, [TEMPLATE_PROVIDER], day)[TEMPLATE_PROVIDER]
                    lander = SmallLander(store, template, day, "RC")
                    order = _source_order(instance)
                    for n, width in enumerate(widths):
                        on = day - timedelta(days=1 + n)
                        for slug in _spread(partners, width):
                            lander.land(slug, on, 20, "R")
                        tick_s, result = tick()
                        requests = list(result.run_requests or [])
                        profiler = cProfile.Profile() if profile else None
                        runs = []
                        for request in requests:
                            seconds = run(request, profiler)
                            w = _width(request.tags, order) or (1, 1)
                            runs.append(
                                {"files": int(request.tags.get("resight/files", 0)), "sources": w[1], "s": seconds}
                            )
                        entry: dict[str, Any] = {
                            "files": width,
                            "tick_s": round(tick_s, 2),
                            "runs": len(runs),
                            "run_s": [round(r["s"], 2) for r in runs],
                            "run_files": [r["files"] for r in runs],
                            "run_sources": [r["sources"] for r in runs],
                            "total_run_s": round(sum(r["s"] for r in runs), 2),
                        }
                        if compare_range:
                            sources = list(order)
                            checks = defs.resolve_asset_graph().asset_check_keys
                            ranges: list[dict[str, Any]] = []
                            for request in requests:
                                if request.job_name == LANDING_SET_JOB:
                                    ranged = _range_request(request, sources, checks)
                                    w = _width(ranged.tags, order) or (1, 1)
                                    ranges.append({"sources": w[1], "days": w[0], "s": run(ranged, None)})
                            entry["range_s"] = [round(r["s"], 2) for r in ranges]
                            entry["range_sources"] = [r["sources"] for r in ranges]
                            entry["range_days"] = [r["days"] for r in ranges]
                            set_s = sum(r["s"] for r in runs)
                            if ranges and set_s:
                                entry["range_over_set"] = round(sum(r["s"] for r in ranges) / set_s, 2)
                        if profiler is not None:
                            path = home / f"runs-{width}.prof"
                            profiler.dump_stats(path)
                            entry["profile"] = str(path)
                            entry["profile_top"] = _top_of(pstats.Stats(str(path)), 30)
                        out["widths"].append(entry)
                        _say(
                            f"  run cost, {len(registry.providers):,} providers, {width} files: tick {tick_s:.1f} s,"
                            f" {len(runs)} runs, {entry['total_run_s']} s"
                        )
                finally:
                    instance.dispose()
    finally:
        stop_embedded_pg(pg_dir)
    return out


# --- Output -----------------------------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    return latency._cell(value)


def to_markdown(results: dict[str, Any]) -> str:
    lines = [
        "| path | files | p50 (s) | p95 (s) | max (s) | timed out | queue start / end / max"
        " | runs (landing / automation) | runs per file | files per landing run | sources per landing run (max)"
        " | sensor ticks, mean / max (s) | tick work mean / max (s), ticks deferring |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results["paths"]:
        for label, part in [("loads", r["loads"])] + [(f"rectangle {x['files']}", x) for x in r["rectangles"]]:
            s, q, runs, ticks = part["summary"], part["queue_depth"], part["runs"], part["landing_sensor"]
            work = part["landing_ticks"]
            kinds = runs["by_kind"]
            cells = [
                f"{r['path']} {label}",
                s["files"],
                s["p50_s"],
                s["p95_s"],
                s["max_s"],
                s["timed_out"],
                f"{_cell(q['start'])} / {_cell(q['end_of_writes'])} / {_cell(q['max'])}",
                f"{kinds.get('landing', {}).get('runs', 0)} / {kinds.get('automation', {}).get('runs', 0)}",
                runs["runs_per_file"],
                runs["files_per_landing_run"],
                f"{_cell(runs['sources_per_landing_run'])} ({_cell(runs['sources_per_landing_run_max'])})",
                f"{ticks['ticks']}, {_cell(ticks['mean_s'])} / {_cell(ticks['max_s'])}",
                f"{_cell(work['work_mean_s'])} / {_cell(work['work_max_s'])}, {_cell(work['ticks_deferring'])}",
            ]
            lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "| path | part | kind of run | runs | created → started, mean / max (s) | running, mean / max (s) |"]
    lines.append("|---|---|---|---:|---:|---:|")
    for r in results["paths"]:
        for label, part in [("loads", r["loads"])] + [(f"rectangle {x['files']}", x) for x in r["rectangles"]]:
            for kind, k in part["runs"]["by_kind"].items():
                cells = [
                    r["path"],
                    label,
                    kind,
                    k["runs"],
                    f"{_cell(k['wait_mean_s'])} / {_cell(k['wait_max_s'])}",
                    f"{_cell(k['run_mean_s'])} / {_cell(k['run_max_s'])}",
                ]
                lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "Landing run, mean seconds per step:"]
    for r in results["paths"]:
        for label, part in [("loads", r["loads"])] + [(f"rectangle {x['files']}", x) for x in r["rectangles"]]:
            steps = ", ".join(f"{k} {_cell(v)}" for k, v in part["runs"]["landing_step_mean_s"].items())
            lines.append(f"- {r['path']} {label}: {steps or '–'}")
    for r in results["paths"]:
        if r.get("profile_top"):
            top = r["profile_top"]
            lines += ["", f"Run workers' profile ({r['path']}, {top[0]['workers']} workers), top cumulative:"]
            lines += [f"- {row['function']}: {row['cumtime_s']} s, {row['calls']} calls" for row in top[:25]]
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 loads over 3 min (default: 3,000 over 10 min)")
    parser.add_argument("--loads", type=int, help="files, each from a different partner (default 3,000; quick 300)")
    parser.add_argument("--minutes", type=float, help="the simulated day's length (default 10; quick 3)")
    parser.add_argument("--rows-min", type=int, default=20, help="rows per file, at least (default 20)")
    parser.add_argument("--rows-max", type=int, default=200, help="rows per file, at most (default 200)")
    parser.add_argument("--providers", type=int, default=3000, help="registered providers × 4 feeds (default 3,000)")
    parser.add_argument("--warmup-providers", type=int, default=10, help="packaged providers in the warm-up sample")
    parser.add_argument("--warmup-lines", type=int, default=2000, help="sales lines in the warm-up sample")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds before a file counts as timed out")
    parser.add_argument("--warmup-timeout", type=float, default=1200.0, help="seconds for the warm-up sample")
    parser.add_argument(
        "--rectangles", default="", help="comma-separated widths: files from as many partners at once (e.g. 100,1000)"
    )
    parser.add_argument("--paths", default=",".join(PATHS), help="events, listing or both (default: both, in order)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME, help="a fresh home per path under it (wiped)")
    parser.add_argument("--seed", type=int, default=20, help="which partners and row counts (default 20)")
    parser.add_argument("--profile-runs", action="store_true", help="run workers under cProfile; print the top")
    parser.add_argument(
        "--cold-partitions",
        action="store_true",
        help="leave the source partitions to the daemon's first tick (default: registered before it starts)",
    )
    parser.add_argument(
        "--run-cost",
        help="no daemon: in-process tick and run cost at these registry sizes (providers, e.g. 40,3000)",
    )
    parser.add_argument(
        "--run-cost-widths", default="1,100", help="--run-cost: files from as many partners per tick (default 1,100)"
    )
    parser.add_argument(
        "--compare-range",
        action="store_true",
        help="--run-cost: also time the range run over each set run's bounding rectangle, side by side",
    )
    parser.add_argument("--output", type=Path, help="results JSON (default: bench/landing/results-latency.json)")
    return parser


def params_of(args: argparse.Namespace) -> Params:
    paths = tuple(x.strip() for x in args.paths.split(",") if x.strip())
    unknown = [x for x in paths if x not in PATHS]
    if unknown or not paths:
        raise SystemExit(f"--paths: one or more of {', '.join(PATHS)}, not {args.paths!r}")
    if not 1 <= args.rows_min <= args.rows_max:
        raise SystemExit("--rows-min must be at least 1 and at most --rows-max")
    return Params(
        loads=args.loads if args.loads is not None else (300 if args.quick else 3000),
        minutes=args.minutes if args.minutes is not None else (3.0 if args.quick else 10.0),
        rows_min=args.rows_min,
        rows_max=args.rows_max,
        providers=args.providers,
        warmup_providers=args.warmup_providers,
        warmup_lines=args.warmup_lines,
        timeout=args.timeout,
        warmup_timeout=args.warmup_timeout,
        rectangles=tuple(int(x) for x in args.rectangles.split(",") if x.strip()),
        paths=paths,
        home=args.home,
        seed=args.seed,
        profile_runs=args.profile_runs,
        preregister=not args.cold_partitions,
    )


def _uptime() -> str:
    with contextlib.suppress(OSError):
        return Path("/proc/loadavg").read_text().strip()
    return "?"


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.run_cost:
        return run_cost_mode(args, argv)
    p = params_of(args)
    command = "python -m bench.landing.latency " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    results: dict[str, Any] = {
        "benchmark": "landing-latency",
        "date": _utc_now().isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "loadavg_at_start": _uptime(),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(p).items()},
        "paths": [],
    }
    output: Path = args.output or (
        REPO_ROOT / "bench" / "out" / "landing" / "results-latency-quick.json"
        if args.quick
        else BENCH_DIR / "results-latency.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    for path in p.paths:
        started = time.monotonic()
        try:
            results["paths"].append(path_benchmark(path, p) | {"loadavg_at_end": _uptime()})
            results["paths"][-1]["wall_s"] = round(time.monotonic() - started, 1)
        except Exception as error:  # one path failing keeps the other's figures
            results.setdefault("failed_paths", {})[path] = f"{type(error).__name__}: {error}"[:4000]
            failed.append(path)
            _say(f"[{path}] failed: {type(error).__name__}: {str(error)[:500]}")
        output.write_text(json.dumps(results, indent=2, default=str) + "\n")  # after each path
    print(to_markdown(results))
    print(f"\nfigures written to {output}")
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)} (see {output})")
    return results


def run_cost_mode(args: argparse.Namespace, argv: Sequence[str] | None) -> dict[str, Any]:
    """``--run-cost``: :func:`run_cost` for each registry size, one after the other."""
    sizes = [int(x) for x in args.run_cost.split(",") if x.strip()]
    widths = [int(x) for x in args.run_cost_widths.split(",") if x.strip()]
    command = "python -m bench.landing.latency " + shlex.join(list(argv if argv is not None else sys.argv[1:]))
    results: dict[str, Any] = {
        "benchmark": "landing-run-cost",
        "date": _utc_now().isoformat(timespec="seconds"),
        "command": command,
        "machine": machine(),
        "loadavg_at_start": _uptime(),
        "sizes": [],
    }
    for size in sizes:
        _say(f"run cost: {size:,} providers")
        results["sizes"].append(
            run_cost(size, widths, args.home / f"run-cost-{size}", args.profile_runs, args.compare_range)
        )
    results["loadavg_at_end"] = _uptime()
    output: Path = args.output or BENCH_DIR / "results-run-cost.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(
        "| providers | sources | files | tick (s) | runs | files per run | partitions per run | run seconds"
        " | range run: sources × days | range run seconds | range / set |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in results["sizes"]:
        for w in size["widths"]:
            cells = [size["providers"], size["sources"], w["files"], w["tick_s"], w["runs"]]
            cells += [w["run_files"], w["run_sources"], w["run_s"]]
            ranges = list(zip(w.get("range_sources", []), w.get("range_days", []), strict=True))
            cells += [[f"{s} × {d}" for s, d in ranges] or "", w.get("range_s", ""), w.get("range_over_set", "")]
            print("| " + " | ".join(str(c) for c in cells) + " |")
    print(f"\nfigures written to {output}")
    return results


if __name__ == "__main__":
    main()
