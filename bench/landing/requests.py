"""Requests per landing-sensor tick and per day at 200, 2,000 and 12,000 registered sources: the
event path (SQS notifications, ``io/events.py``) against the listing path (``io/watch.py``), side
by side on the same bucket (issue 20, points 2 and 5, "Measured").

For each registered-source count, on a moto server in this process (S3 and SQS; its S3 delivers
bucket notifications to its SQS) and a fresh Postgres database per path, the landing sensor is
evaluated in process (a test Dagster instance, the real ledger), one path's tick after the
other's, on the same bucket state:

- **history**: ``--history-sources`` sources (the first registered ones) hold a file a day for
  the last ``--history-days`` days, written before the queue subscribes to the bucket; the ledger
  of each path knows them as loaded (the steady state of a platform that has been running), so the
  hot-window listings return files and the sweep has pages to read;
- **warm-up**: ticks until the source partitions are registered and the event path's first sweep
  is through (a sweep is due on a fresh cursor);
- **idle**: ``--idle-ticks`` ticks with nothing new;
- **sweep** (event path): the cursor's last sweep moved back by ``sweep_interval``, then ticks
  until the sweep is through: what one sweep costs, paid every ``RESIGHT_WATCH_SWEEP_INTERVAL``;
- **K files**: K new files from K distinct sources (``--files``), then one tick of each path (the
  event path's once the queue holds their K notifications); the ledger then marks them loaded, as
  their runs would.

Requests are counted by a botocore ``before-send`` handler on boto3's default session (every
client the platform makes goes through ``boto3.client``), by kind: ``LIST`` (a per-source listing
of the hot window), ``LIST sweep`` (a page of the whole landing zone's listing), ``HEAD``,
``GET``, ``PUT``, SQS ``ReceiveMessage`` and ``DeleteMessageBatch``, and anything else by its
operation's name.

Per day at ``--loads-per-day`` files (3,000) with a tick every ``max(5 s, measured idle tick)``
(the sensor's ``minimum_interval_seconds`` is 5; a tick that takes longer delays the next)::

    ticks/day     = 86,400 / max(5, idle tick seconds)
    requests/day  = ticks/day × requests per idle tick                 (LIST, sweep pages, ReceiveMessage)
                  + loads/day × requests per file                      (K=1 tick − idle tick: HEAD, DeleteMessageBatch)
                  + sweeps/day × pages per sweep                       (event path: 86,400 / sweep_interval sweeps)
                  + loads/day × 1 SendMessage                          (event path: S3 → SQS, billed by SQS)
    $/day         = Σ requests/day of a kind × its price

The sweep pages are those of a production bucket (``--bucket-objects``: 3,000 files a day kept
``RESIGHT_RETAIN_LANDING_DAYS`` = 90 days, 270,000 objects, ``page_size`` keys a page): the listing
path reads ``sweep_pages`` of them every tick, the event path all of them once per interval; the
bench's bucket, smaller, checks that a sweep costs ceil(objects / page_size) pages. Prices:
us-east-1 list prices, no free tier (``PRICES``).

    .venv/bin/python -m bench.landing.requests            # 200, 2,000 and 12,000 sources
    .venv/bin/python -m bench.landing.requests --quick    # 200 and 2,000

Figures go to ``bench/landing/results-requests.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import psycopg
from psycopg import sql

from bench.latency.run import _environment, landing_tick
from bench.machine import machine

__all__ = ["PRICES", "RequestMeter", "main", "measure", "per_day", "to_markdown"]

BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_OUTPUT = BENCH_DIR / "results-requests.json"
DEFAULT_HOME = Path("/tmp/resight-bench/landing-requests")
SOURCES = (200, 2_000, 12_000)
QUICK_SOURCES = (200, 2_000)
FILES = (1, 10, 100)
FEEDS_PER_PROVIDER = 4  # bench.registry.run.build_registry: sales, catalog, stores, customers
#: The sensor's ``minimum_interval_seconds``.
MIN_INTERVAL_S = 5.0
DAY_S = 86_400.0
#: us-east-1 list prices in dollars per request (S3 Standard: PUT, COPY, POST, LIST $0.005 per
#: 1,000; GET and HEAD $0.0004 per 1,000; SQS standard queue $0.40 per million), no free tier.
PRICES = {"LIST": 5.00e-6, "PUT": 5.00e-6, "GET": 0.40e-6, "HEAD": 0.40e-6, "SQS": 0.40e-6}
AWS_DUMMY = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
_SQS_KINDS = ("ReceiveMessage", "DeleteMessageBatch", "SendMessage")


def _say(message: str) -> None:
    print(message, flush=True)


# --- Counting ----------------------------------------------------------------------------------


class RequestMeter:
    """Requests sent by every boto3 client of the default session, by kind (see the module's
    docstring); a listing whose prefix is the landing zone's root is a sweep page."""

    def __init__(self, sweep_prefix: str) -> None:
        self.sweep_prefix = sweep_prefix
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self) -> None:
        """Register on boto3's default session: clients made after this are counted."""
        import boto3

        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-send", self._on_send)

    def uninstall(self) -> None:
        import boto3

        if boto3.DEFAULT_SESSION is not None:
            boto3.DEFAULT_SESSION.events.unregister("before-send", self._on_send)

    def kind(self, service: str, operation: str, url: str) -> str:
        if service == "s3":
            if operation in ("ListObjectsV2", "ListObjects"):
                prefix = parse_qs(urlsplit(url).query).get("prefix", [""])[0]
                return "LIST sweep" if prefix == self.sweep_prefix else "LIST"
            if operation == "HeadObject":
                return "HEAD"
            if operation == "GetObject":
                return "GET"
            if operation in ("PutObject", "CopyObject", "CreateMultipartUpload", "UploadPart"):
                return "PUT"
        if service == "sqs" and operation in _SQS_KINDS:
            return operation
        return f"{service}.{operation}"

    def _on_send(self, request: Any, event_name: str, **kwargs: Any) -> None:
        _event, service, operation = event_name.split(".", 2)
        kind = self.kind(service, operation, str(getattr(request, "url", "")))
        with self._lock:
            self.counts[kind] += 1

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.counts)


def price_of(kind: str) -> float:
    """Dollars per request of ``kind``; S3 operations other than GET and HEAD at the LIST/PUT price."""
    if kind in _SQS_KINDS or kind.startswith("sqs."):
        return PRICES["SQS"]
    if kind in ("GET", "HEAD"):
        return PRICES[kind]
    return PRICES["LIST"]


# --- One path's sensor ---------------------------------------------------------------------------


@dataclass
class Tick:
    seconds: float
    requests: dict[str, int]
    runs_requested: int
    files_requested: int
    cursor: dict[str, Any]

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def record(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 3),
            "requests": dict(sorted(self.requests.items())),
            "total": self.total,
            "runs_requested": self.runs_requested,
            "files_requested": self.files_requested,
        }


@dataclass
class Sensor:
    """One path's landing sensor evaluated in process as the daemon would (cursor kept, dynamic
    partitions applied), with its own Dagster instance and warehouse database."""

    name: str
    defs: Any
    instance: Any
    pg_url: str
    meter: RequestMeter
    cursor: str | None = None
    ticks: list[Tick] = field(default_factory=list)

    def tick(self) -> Tick:

        before = self.meter.snapshot()
        seconds, result = landing_tick(self.defs, self.instance, self.cursor)
        counted = self.meter.snapshot() - before
        self.cursor = result.cursor
        requests = list(result.run_requests or [])
        tick = Tick(
            seconds,
            dict(counted),
            len(requests),
            sum(int(r.tags.get("resight/files", 0)) for r in requests),
            json.loads(self.cursor or "{}"),
        )
        self.ticks.append(tick)
        return tick

    def rewind_sweep(self, interval: timedelta) -> None:
        """Make a sweep due now: the last one started ``interval`` and a second ago."""
        from resight_platform.io.watch import WatchCursor

        cursor = WatchCursor.loads(self.cursor)
        cursor.swept_at = (datetime.now(UTC) - interval - timedelta(seconds=1)).isoformat()
        self.cursor = cursor.dumps()

    def mark_loaded(self) -> int:
        """What the runs would do: every queued ledger row becomes loaded."""
        from resight_platform.io.postgres import connect

        with connect(self.pg_url) as conn:
            return conn.execute("update ops.ingestion_ledger set status = 'loaded' where status = 'queued'").rowcount


def _seed_ledger(pg_url: str, infos: Sequence[Any]) -> None:
    """The bucket's history as the ledger of a platform that loaded it: loaded, with its ETags."""
    from resight_platform.io.ops import QueuedFile, queue_files
    from resight_platform.io.postgres import connect
    from resight_platform.sources.landing import parse_landing_key

    rows = []
    for info in infos:
        landing = parse_landing_key(info.key)
        rows.append(QueuedFile(info.key, info.etag, info.size, landing.provider, landing.feed, landing.date, "history"))
    with connect(pg_url) as conn:
        queue_files(conn, rows, now=datetime.now(UTC))
        conn.execute("update ops.ingestion_ledger set status = 'loaded'")


# --- Harness ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _moto(home: Path) -> Iterator[str]:
    """A moto server (S3 and SQS) in this process and dummy credentials: its endpoint."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        env = {
            **AWS_DUMMY,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_CONFIG_FILE": str(home / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "no-aws-credentials"),
            "AWS_PROFILE": None,
            "AWS_SESSION_TOKEN": None,
            "AWS_ENDPOINT_URL_S3": None,
            "AWS_ENDPOINT_URL_SQS": None,
        }
        with _environment(env):
            yield endpoint
    finally:
        server.stop()


@contextlib.contextmanager
def _database(server_url: str, label: str) -> Iterator[str]:
    from resight_platform.io.postgres import database_url

    name = f"landing_req_{label}_{uuid.uuid4().hex[:6]}"
    admin_url = database_url(server_url, "postgres")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(server_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def _pg_server(home: Path, pg_url: str | None) -> Iterator[str]:
    from resight_platform.io.postgres import embedded_pg_url, stop_embedded_pg

    if pg_url:
        yield pg_url
        return
    pg_dir = home / "pg"
    url = embedded_pg_url(pg_dir)
    try:
        yield url
    finally:
        stop_embedded_pg(pg_dir)


def _write_all(store: Any, keys: Sequence[str], workers: int = 16) -> None:
    def write(key: str) -> None:
        store.write_bytes(key, f"id,value\n{key},1\n".encode())

    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(write, keys))


def _visible(sqs: Any, queue_url: str) -> int:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages"])
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def _wait_visible(sqs: Any, queue_url: str, count: int, deadline_s: float = 60.0) -> float:
    """Until the queue holds ``count`` messages (moto delivers notifications on the PUT's thread,
    but SQS counts are approximate); returns the seconds waited."""
    started = time.monotonic()
    while _visible(sqs, queue_url) < count:
        if time.monotonic() - started > deadline_s:
            raise TimeoutError(f"the queue holds {_visible(sqs, queue_url)} of {count} notifications")
        time.sleep(0.05)
    return time.monotonic() - started


def _history_keys(sources: Sequence[tuple[str, str]], days: Sequence[date]) -> list[str]:
    return [f"{p}/{f}/{d.isoformat()}/{f}_{d.isoformat()}.csv" for p, f in sources for d in days]


def _spread(items: Sequence[Any], count: int) -> list[Any]:
    """``count`` items spread evenly over ``items`` (distinct while ``count <= len(items)``)."""
    return [items[(i * len(items)) // count if count <= len(items) else i % len(items)] for i in range(count)]


@dataclass
class Params:
    sources: tuple[int, ...] = QUICK_SOURCES
    files: tuple[int, ...] = FILES
    idle_ticks: int = 2
    history_sources: int = 200
    history_days: int = 30
    loads_per_day: int = 3_000
    bucket_objects: int = 3_000 * 90
    home: Path = DEFAULT_HOME
    pg_url: str | None = None


def _mean_tick(ticks: Sequence[Tick]) -> dict[str, Any]:
    kinds = sorted({kind for t in ticks for kind in t.requests})
    return {
        "seconds": round(statistics.fmean(t.seconds for t in ticks), 3),
        "seconds_max": round(max(t.seconds for t in ticks), 3),
        "requests": {k: round(statistics.fmean(t.requests.get(k, 0) for t in ticks), 2) for k in kinds},
        "total": round(statistics.fmean(t.total for t in ticks), 2),
        "ticks": [t.record() for t in ticks],
    }


def _size(
    p: Params, sources: int, server_url: str, endpoint: str, landing_url: str, meter: RequestMeter
) -> dict[str, Any]:
    """Both paths at ``sources`` registered sources on the shared bucket (history already written)."""
    import boto3
    import dagster as dg

    from bench.registry.run import build_registry
    from resight_platform.definitions import build_definitions
    from resight_platform.io.events import subscribe
    from resight_platform.io.storage import open_store
    from resight_platform.settings import Settings, WatchSettings
    from resight_platform.sources.registry import load_registry

    providers = sources // FEEDS_PER_PROVIDER
    registry_dir = p.home / f"registry-{sources}"
    shutil.rmtree(registry_dir, ignore_errors=True)
    build_registry(registry_dir, providers, mapped_share=0.0)
    registry = load_registry(registry_dir)
    today = datetime.now(UTC).date()
    store = open_store(landing_url, endpoint)
    subscription = subscribe(landing_url, f"landing-{uuid.uuid4().hex[:10]}", endpoint_url=endpoint)
    sqs = boto3.client("sqs", endpoint_url=endpoint)
    watch = WatchSettings.from_env(os.environ)
    history = list(store.list(""))
    out: dict[str, Any] = {
        "sources": len(registry.sources),
        "providers": providers,
        "bucket_objects": len(history),
    }
    with contextlib.ExitStack() as stack:
        sensors: dict[str, Sensor] = {}
        for path in ("listing", "events"):
            pg_url = stack.enter_context(_database(server_url, path))
            env = {
                "RESIGHT_HOME": str(p.home / f"home-{sources}-{path}"),
                "RESIGHT_LANDING_URL": landing_url,
                "RESIGHT_LAKE_URL": landing_url.rsplit("/", 1)[0] + "/lake",
                "RESIGHT_REGISTRY_DIR": str(registry_dir),
                "RESIGHT_PARTITIONS_START": (today - timedelta(days=60)).isoformat(),
                "AWS_ENDPOINT_URL": endpoint,
                **({"RESIGHT_LANDING_QUEUE_URL": subscription.queue_url} if path == "events" else {}),
            }
            defs = build_definitions(Settings.from_env({**os.environ, **env}), pg_url=pg_url)
            _seed_ledger(pg_url, history)
            instance = stack.enter_context(dg.instance_for_test())
            sensors[path] = Sensor(path, defs, instance, pg_url, meter)
        listing, events = sensors["listing"], sensors["events"]

        # Warm-up: source partitions registered on both; the event path's first sweep through.
        warm = {"listing": [listing.tick()], "events": [events.tick()]}
        while events.ticks[-1].cursor.get("sweeps", 0) < 1:
            warm["events"].append(events.tick())
        out["warm_up"] = {path: [t.record() for t in ticks] for path, ticks in warm.items()}
        _say(f"  {sources:,} sources: warm-up {[round(t.seconds, 2) for t in warm['listing']]} s listing,"
             f" {[round(t.seconds, 2) for t in warm['events']]} s events")  # fmt: skip

        idle = {path: [s.tick() for _ in range(p.idle_ticks)] for path, s in sensors.items()}
        out["idle"] = {path: _mean_tick(ticks) for path, ticks in idle.items()}
        _say(f"  idle: listing {out['idle']['listing']['total']} requests in {out['idle']['listing']['seconds']} s,"
             f" events {out['idle']['events']['total']} in {out['idle']['events']['seconds']} s")  # fmt: skip

        # One full sweep of the event path (due every sweep_interval).
        events.rewind_sweep(watch.sweep_interval)
        sweep = [events.tick()]
        while sweep[-1].cursor.get("sweep_after"):
            sweep.append(events.tick())
        out["events_sweep"] = {
            "ticks": len(sweep),
            "pages": sum(t.requests.get("LIST sweep", 0) for t in sweep),
            "seconds": round(sum(t.seconds for t in sweep), 3),
            "requests": dict(sum((Counter(t.requests) for t in sweep), Counter())),
            "expected_pages": math.ceil(len(history) / watch.page_size),
        }

        out["files"] = {}
        pairs = sorted(registry.sources)
        for k in p.files:
            day = today - timedelta(days=1)
            keys = [
                f"{prov}/{feed}/{day.isoformat()}/{feed}_{day.isoformat()}_s{sources}_k{k}_{n:04d}.csv"
                for n, (prov, feed) in enumerate(_spread(pairs, k))
            ]
            _write_all(store, keys)
            waited = _wait_visible(sqs, subscription.queue_url, k)
            ticks = {"listing": listing.tick(), "events": events.tick()}
            left = _visible(sqs, subscription.queue_url)
            out["files"][str(k)] = {
                **{path: t.record() for path, t in ticks.items()},
                "distinct_sources": len({tuple(key.split("/")[:2]) for key in keys}),
                "notifications_waited_s": round(waited, 3),
                "left_in_queue": left,
                "marked_loaded": {path: s.mark_loaded() for path, s in sensors.items()},
            }
            lst, evt = ticks["listing"], ticks["events"]
            _say(
                f"  {k} files: listing {lst.total} requests in {lst.seconds:.2f} s, events {evt.total} in"
                f" {evt.seconds:.2f} s ({lst.files_requested}/{evt.files_requested} files requested)"
            )
    out["per_day"] = {path: per_day(out, path, p.loads_per_day, p.bucket_objects, watch) for path in sensors}
    return out


def per_day(size: Mapping[str, Any], path: str, loads: int, bucket_objects: int, watch: Any) -> dict[str, Any]:
    """Requests and dollars a day for ``path`` from a size's measured ticks (module docstring), at
    the tick rate measured here and (``at_minimum_interval``) at one tick every 5 s, the rate a
    listing tick fast enough for it (a faster S3 than moto on a loaded machine) would run at."""
    measured = _per_day(size, path, loads, bucket_objects, watch, float(size["idle"][path]["seconds"]))
    fastest = _per_day(size, path, loads, bucket_objects, watch, MIN_INTERVAL_S)
    keys = ("tick_every_s", "ticks_per_day", "requests", "total", "dollars_total")
    return {**measured, "at_minimum_interval": {key: fastest[key] for key in keys}}


def _per_day(
    size: Mapping[str, Any], path: str, loads: int, bucket_objects: int, watch: Any, tick_seconds: float
) -> dict[str, Any]:
    idle = size["idle"][path]
    one = size["files"][min(size["files"], key=int)][path]
    k = int(min(size["files"], key=int))
    tick_s = max(MIN_INTERVAL_S, tick_seconds)
    ticks = DAY_S / tick_s
    per_tick = {kind: float(n) for kind, n in idle["requests"].items() if kind != "LIST sweep"}
    per_file = {
        kind: max(0.0, (one["requests"].get(kind, 0) - idle["requests"].get(kind, 0)) / k)
        for kind in set(one["requests"]) | set(idle["requests"])
        if kind != "LIST sweep"
    }
    pages = math.ceil(bucket_objects / watch.page_size)
    if path == "listing":
        sweep_per_day = ticks * min(watch.sweep_pages, pages)  # sweep_pages every tick, wrapping
        send = 0.0
    else:
        sweep_per_day = DAY_S / watch.sweep_interval.total_seconds() * pages
        send = float(loads)  # S3 → SQS: one SendMessage per notification, on the SQS bill
    day: dict[str, float] = defaultdict(float)
    for kind, n in per_tick.items():
        day[kind] += ticks * n
    for kind, n in per_file.items():
        day[kind] += loads * n
    day["LIST sweep"] += sweep_per_day
    if send:
        day["SendMessage"] += send
    dollars = {kind: n * price_of(kind) for kind, n in day.items() if n}
    return {
        "tick_every_s": round(tick_s, 3),
        "ticks_per_day": round(ticks),
        "requests_per_tick": {kind: round(n, 2) for kind, n in sorted(per_tick.items())},
        "requests_per_file": {kind: round(n, 3) for kind, n in sorted(per_file.items()) if n},
        "sweep_pages_per_day": round(sweep_per_day),
        "requests": {kind: round(n) for kind, n in sorted(day.items()) if n},
        "total": round(sum(day.values())),
        "dollars": {kind: round(d, 4) for kind, d in sorted(dollars.items())},
        "dollars_total": round(sum(dollars.values()), 2),
    }


def _load() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(["uptime"], capture_output=True, text=True, check=True, timeout=5).stdout.strip()
    return Path("/proc/loadavg").read_text(encoding="utf-8").strip()


def measure(p: Params, on_size: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Every size in ``p.sources``, both paths side by side on one bucket; ``on_size`` is called
    with the results so far after each size (a long run keeps what it measured)."""
    from resight_platform.io.storage import open_store

    warnings.filterwarnings("ignore", message=".*(Beta|Preview|XDG_RUNTIME_DIR).*")
    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    logging.getLogger("dagster").setLevel(logging.WARNING)  # not the sensor's line per tick
    if any(n % FEEDS_PER_PROVIDER for n in p.sources):
        raise ValueError(f"--sources must be multiples of {FEEDS_PER_PROVIDER} (providers × 4 feeds)")
    if p.history_sources > min(p.sources):
        raise ValueError("--history-sources must not exceed the smallest --sources")
    shutil.rmtree(p.home, ignore_errors=True)
    p.home.mkdir(parents=True)
    results: dict[str, Any] = {"load_before": _load(), "sizes": []}
    meter = RequestMeter(sweep_prefix="landing/")
    meter.install()
    try:
        with _moto(p.home) as endpoint, _pg_server(p.home, p.pg_url) as server_url:
            import boto3

            bucket = f"resight-req-{uuid.uuid4().hex[:8]}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
            landing_url = f"s3://{bucket}/landing"
            store = open_store(landing_url, endpoint)
            today = datetime.now(UTC).date()
            # The first registered sources (partner_00000…, every feed): in every size's registry.
            providers = math.ceil(p.history_sources / FEEDS_PER_PROVIDER)
            from bench.registry.run import FEEDS

            history_sources = [(f"partner_{i:05d}", feed) for i in range(providers) for feed in FEEDS]
            days = [today - timedelta(days=d) for d in range(1, p.history_days + 1)]
            keys = _history_keys(history_sources[: p.history_sources], days)
            started = time.perf_counter()
            _write_all(store, keys)
            results["history"] = {
                "sources": p.history_sources,
                "days": p.history_days,
                "files": len(keys),
                "write_s": round(time.perf_counter() - started, 2),
            }
            _say(f"history: {len(keys):,} files over {p.history_sources} sources × {p.history_days} days")
            for sources in p.sources:
                started = time.perf_counter()
                size = _size(p, sources, server_url, endpoint, landing_url, meter)
                size["wall_s"] = round(time.perf_counter() - started, 1)
                results["sizes"].append(size)
                if on_size is not None:
                    on_size(results)
    finally:
        meter.uninstall()
    results["load_after"] = _load()
    from resight_platform.settings import WatchSettings

    results["watch_settings"] = {k: str(v) for k, v in vars(WatchSettings.from_env(os.environ)).items()}
    return results


# --- Output ---------------------------------------------------------------------------------------


def _fmt(n: float) -> str:
    if n >= 1e6:
        return f"{n / 1e6:.1f}M"
    return f"{n:,.0f}" if n >= 100 or float(n).is_integer() else f"{n:.1f}"


def to_markdown(results: Mapping[str, Any]) -> str:
    ks = [k for k in results["sizes"][0]["files"]] if results["sizes"] else []
    lines = [
        "| sources | path | requests per idle tick | " + " | ".join(f"requests, tick with {k} files" for k in ks)
        + " | idle tick (s) | " + " | ".join(f"tick with {k} files (s)" for k in ks)
        + " | ticks/day | requests/day | $/day | requests/day, tick every 5 s | $/day, tick every 5 s |",
        "|---" * (9 + 2 * len(ks)) + "|",
    ]  # fmt: skip
    for size in results["sizes"]:
        for path in ("listing", "events"):
            idle, day = size["idle"][path], size["per_day"][path]

            def kinds(requests: Mapping[str, float]) -> str:
                total = sum(requests.values())
                parts = ", ".join(f"{kind} {_fmt(n)}" for kind, n in sorted(requests.items()) if n)
                return f"{_fmt(total)} ({parts})" if parts else "0"

            cells = [
                f"{size['sources']:,}",
                path,
                kinds(idle["requests"]),
                *(kinds(size["files"][k][path]["requests"]) for k in ks),
                f"{idle['seconds']:.2f}",
                *(f"{size['files'][k][path]['seconds']:.2f}" for k in ks),
                f"{day['ticks_per_day']:,}",
                _fmt(day["total"]),
                f"{day['dollars_total']:,.2f}",
                _fmt(day["at_minimum_interval"]["total"]),
                f"{day['at_minimum_interval']['dollars_total']:,.2f}",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.landing.requests", description=__doc__.split("\n")[0])
    parser.add_argument("--sources", type=int, nargs="+", help=f"registered sources (default {SOURCES})")
    parser.add_argument("--quick", action="store_true", help=f"sources {QUICK_SOURCES}")
    parser.add_argument("--files", type=int, nargs="+", default=list(FILES), help="K new files per tick")
    parser.add_argument("--idle-ticks", type=int, default=2)
    parser.add_argument("--history-sources", type=int, default=200)
    parser.add_argument("--history-days", type=int, default=30)
    parser.add_argument("--loads-per-day", type=int, default=3_000)
    parser.add_argument("--bucket-objects", type=int, default=3_000 * 90, help="production bucket (sweep pages)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME)
    parser.add_argument("--pg-url", help="a Postgres server to create the databases on (default: embedded)")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--recompute", action="store_true", help="measure nothing: recompute --output's per-day figures from its ticks"
    )
    return parser


def recompute(results: dict[str, Any]) -> dict[str, Any]:
    """The per-day figures of ``results`` from its measured ticks (after a change of the formula)."""
    from resight_platform.settings import WatchSettings

    watch = WatchSettings.from_env(os.environ)
    for size in results["sizes"]:
        size["per_day"] = {
            path: per_day(size, path, results["loads_per_day"], results["bucket_objects_for_sweep"], watch)
            for path in ("listing", "events")
        }
    return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = build_parser().parse_args(argv)
    if args.recompute:
        results = recompute(json.loads(args.output.read_text(encoding="utf-8")))
        args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        _say(to_markdown(results))
        return results
    sources = tuple(args.sources or (QUICK_SOURCES if args.quick else SOURCES))
    params = Params(
        sources=sources,
        files=tuple(args.files),
        idle_ticks=args.idle_ticks,
        history_sources=args.history_sources,
        history_days=args.history_days,
        loads_per_day=args.loads_per_day,
        bucket_objects=args.bucket_objects,
        home=args.home,
        pg_url=args.pg_url,
    )
    header = {
        "benchmark": "landing sensor requests per tick and per day, events vs listing (issue 20)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.landing.requests " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": machine(),
        "prices_per_request": PRICES,
        "loads_per_day": params.loads_per_day,
        "bucket_objects_for_sweep": params.bucket_objects,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)

    def write(measured: dict[str, Any]) -> None:
        args.output.write_text(json.dumps({**header, **measured}, indent=2) + "\n", encoding="utf-8")

    results = {**header, **measure(params, on_size=write)}
    write(results)
    _say(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
