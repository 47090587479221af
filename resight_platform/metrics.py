"""``resight metrics``: the pipeline's health (:mod:`resight_platform.health`) as Prometheus metrics
on ``/metrics``, read afresh on each scrape by a custom collector (no state between scrapes).

Every family is a gauge over the health window (``RESIGHT_HEALTH_WINDOW_HOURS``) or a value now,
but the counters (:data:`COUNTERS`: the platform's own S3/SQS requests, from ``health.request_counts``);
labels are bounded whatever the number of sources: ``feed``, ``status``, ``stage``,
``dagster_job`` (not ``job``: Prometheus' own target label, which a scrape would rename),
``kind``, ``asset``/``check``, ``component`` (fixed by the code), and ``provider`` only on the three top-N
families (``RESIGHT_METRICS_TOP_PROVIDERS``). When the warehouse or the Dagster instance cannot be
read, ``resight_health_up{source=...}`` is 0 and the other half is still served. The families and
suggested alert rules are in docs/operations.md.
"""

from __future__ import annotations

import contextlib
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from resight_platform.health import PROBLEM_KINDS, WAITING, HealthSnapshot, take_snapshot
from resight_platform.settings import Settings

__all__ = ["COUNTERS", "FAMILIES", "HealthCollector", "MetricsServer", "build_registry", "serve", "start"]

#: Seconds a scrape's warehouse statements may take, and its connection attempt.
STATEMENT_TIMEOUT_MS = 15000
CONNECT_TIMEOUT = 5

#: Every family served, with its help text and labels (also the docs' table).
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "resight_health_up": ("1 when this half of the health snapshot could be read, else 0", ("source",)),
    "resight_health_read_seconds": ("Seconds this scrape took to read the half", ("source",)),
    "resight_health_problems": ("Problems now, by kind (resight health lists them)", ("kind",)),
    "resight_files": (
        "Files handled in the window by ledger status; status=queued: waiting for their run now;"
        " status=waiting: noticed, waiting for their partition's run (ops.landing_waiting)",
        ("feed", "status"),
    ),
    "resight_rows": ("Rows of the files handled in the window, by stage (in, loaded, quarantined)", ("feed", "stage")),
    "resight_dead_letters": ("Files dead-lettered in the window (feed=unknown: no source)", ("feed",)),
    "resight_freshness_lag_max_seconds": ("Worst arrival-to-silver lag of files loaded in the window", ("feed",)),
    "resight_freshness_lag_avg_seconds": ("Average arrival-to-silver lag of files loaded in the window", ("feed",)),
    "resight_queued_file_oldest_seconds": ("Age of the oldest file queued and not read yet", ("feed",)),
    "resight_lagging_sources": ("Sources with a file over the lag limit (loaded late or still waiting)", ()),
    "resight_sources": ("Active registered sources", ("feed",)),
    "resight_stale_sources": ("Active sources past their expected delivery window and the grace", ("feed",)),
    "resight_provider_freshness_lag_seconds": ("Top providers by worst lag in the window", ("provider",)),
    "resight_provider_dead_letters": ("Top providers by dead letters in the window", ("provider",)),
    "resight_source_overdue_seconds": ("Top stale sources: seconds past window and grace", ("provider", "feed")),
    "resight_runs": ("Dagster runs updated in the window, by job and status", ("dagster_job", "status")),
    "resight_run_duration_max_seconds": ("Longest finished run of the job in the window", ("dagster_job",)),
    "resight_run_duration_avg_seconds": ("Average finished run of the job in the window", ("dagster_job",)),
    "resight_run_last_duration_seconds": ("The job's last finished run", ("dagster_job",)),
    "resight_job_failing": ("1 when the job's last decided run failed (no later success)", ("dagster_job",)),
    "resight_runs_queued": ("Runs queued now", ()),
    "resight_runs_queued_oldest_seconds": ("Age of the oldest queued run (0: none)", ()),
    "resight_checks_evaluated": ("Asset checks (per partition) evaluated in the window", ()),
    "resight_failing_checks": ("Failing check evaluations now (latest per partition)", ("asset", "check")),
}

#: The counters served (totals since the warehouse began counting), with help text and labels.
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "resight_requests_total": (
        "S3 and SQS requests the platform sent (every attempt), by what sent them and kind",
        ("component", "kind"),
    ),
}


def _family(name: str) -> GaugeMetricFamily:
    text, labels = FAMILIES[name]
    return GaugeMetricFamily(name, text, labels=list(labels))


class HealthCollector(Collector):
    """Reads a snapshot (``read``) on each ``collect`` and turns it into gauges."""

    def __init__(self, read: Callable[[], HealthSnapshot]) -> None:
        self._read = read

    def describe(self) -> Iterable[Metric]:
        return []  # registering must not read the warehouse

    def collect(self) -> Iterable[Metric]:
        snap = self._read()
        families = {name: _family(name) for name in FAMILIES}
        counters = {
            name: CounterMetricFamily(name, text, labels=list(labels)) for name, (text, labels) in COUNTERS.items()
        }

        def put(name: str, labels: Iterable[str], value: float) -> None:
            families[name].add_metric(list(labels), float(value))

        for source, ok in (("warehouse", snap.warehouse is not None), ("dagster", snap.dagster is not None)):
            put("resight_health_up", [source], 1 if ok else 0)
            put("resight_health_read_seconds", [source], snap.seconds.get(source, 0.0))
        counts = snap.counts()
        for kind in PROBLEM_KINDS:
            put("resight_health_problems", [kind], counts[kind])
        wh = snap.warehouse
        if wh is not None:
            rows: dict[tuple[str, str], int] = defaultdict(int)
            lag_sum: dict[str, float] = defaultdict(float)
            loaded: dict[str, int] = defaultdict(int)
            lag_max: dict[str, float] = {}
            for f in wh.files:
                put("resight_files", [f.feed, f.status], f.files)
                if f.status == "queued":
                    if f.oldest_arrival is not None:
                        age = (snap.at - f.oldest_arrival).total_seconds()
                        put("resight_queued_file_oldest_seconds", [f.feed], max(0.0, age))
                    continue
                if f.status == WAITING:  # not in the ledger yet: no rows
                    continue
                rows[(f.feed, "in")] += f.rows_in
                rows[(f.feed, "loaded")] += f.rows_loaded
                rows[(f.feed, "quarantined")] += f.rows_quarantined
                if f.status == "loaded" and f.lag_seconds_max is not None:
                    lag_max[f.feed] = max(lag_max.get(f.feed, 0.0), float(f.lag_seconds_max))
                    lag_sum[f.feed] += f.lag_seconds_sum
                    loaded[f.feed] += f.files
            for (feed, stage), n in sorted(rows.items()):
                put("resight_rows", [feed, stage], n)
            for feed, worst in sorted(lag_max.items()):
                put("resight_freshness_lag_max_seconds", [feed], worst)
                put("resight_freshness_lag_avg_seconds", [feed], lag_sum[feed] / max(1, loaded[feed]))
            dead: dict[str, int] = defaultdict(int)
            for f in wh.files:
                if f.status == "dead_lettered":
                    dead[f.feed] += f.files
            for feed, n in sorted(dead.items()):
                put("resight_dead_letters", [feed], n)
            put("resight_lagging_sources", [], wh.lagging_sources)
            for feed, n in sorted(wh.active_sources.items()):
                put("resight_sources", [feed], n)
                put("resight_stale_sources", [feed], wh.stale_sources.get(feed, 0))
            for provider, lag in wh.top_lag:
                put("resight_provider_freshness_lag_seconds", [provider], lag)
            for provider, n in wh.top_dead_letters:
                put("resight_provider_dead_letters", [provider], n)
            for stale in wh.stale[: snap.limits.top_providers]:
                put("resight_source_overdue_seconds", [stale.provider, stale.feed], stale.overdue_seconds)
            for component, kind, n in wh.request_totals:
                counters["resight_requests_total"].add_metric([component, kind], float(n))
        dag = snap.dagster
        if dag is not None:
            failing_jobs = {run.job for run in dag.failed}
            for job in dag.jobs:
                for status, n in sorted(job.by_status.items()):
                    put("resight_runs", [job.job, status], n)
                if job.finished:
                    put("resight_run_duration_max_seconds", [job.job], job.seconds_max)
                    put("resight_run_duration_avg_seconds", [job.job], job.seconds_sum / job.finished)
                if job.last_seconds is not None:
                    put("resight_run_last_duration_seconds", [job.job], job.last_seconds)
                put("resight_job_failing", [job.job], 1 if job.job in failing_jobs else 0)
            put("resight_runs_queued", [], dag.queued)
            oldest = (snap.at - dag.oldest_queued_at).total_seconds() if dag.oldest_queued_at else 0.0
            put("resight_runs_queued_oldest_seconds", [], max(0.0, oldest))
            put("resight_checks_evaluated", [], dag.checks_evaluated)
            failing: dict[tuple[str, str], int] = defaultdict(int)
            for failure in dag.failing_checks:
                failing[(failure.asset, failure.check)] += 1
            for (asset, check), n in sorted(failing.items()):
                put("resight_failing_checks", [asset, check], n)
        yield from families.values()
        yield from counters.values()


def build_registry(read: Callable[[], HealthSnapshot]) -> CollectorRegistry:
    """A registry holding only the health collector (no process or platform collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HealthCollector(read))
    return registry


@dataclass
class MetricsServer:
    """A running ``/metrics`` server: where it listens, and how to stop it."""

    host: str
    port: int
    server: Any
    thread: threading.Thread

    def wait(self) -> None:
        self.thread.join()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start(registry: CollectorRegistry, host: str, port: int) -> MetricsServer:
    """Serve ``registry`` on ``host:port`` (0: a free port) in a daemon thread."""
    server, thread = start_http_server(port, addr=host, registry=registry)
    return MetricsServer(host, int(server.server_port), server, thread)


class _Instance:
    """The Dagster instance, opened on first use and again after a failure (its storage may be
    down when the service starts)."""

    def __init__(self, open_instance: Callable[[], Any]) -> None:
        self._open = open_instance
        self._instance: Any = None
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._instance is None:
                self._instance = self._open()
            return self._instance

    def reset(self) -> None:
        with self._lock:
            if self._instance is not None:
                with contextlib.suppress(Exception):
                    self._instance.dispose()
            self._instance = None


@contextlib.contextmanager
def serve(
    settings: Settings, pg_url: str, open_instance: Callable[[], Any], host: str, port: int
) -> Iterator[MetricsServer]:
    """``resight metrics``: the warehouse at ``pg_url`` (a connection per scrape, with a statement
    timeout) and the Dagster instance ``open_instance`` gives (opened again after a failure)."""
    from resight_platform.io.postgres import connect

    instance = _Instance(open_instance)

    def warehouse() -> Any:
        return connect(
            pg_url, connect_timeout=str(CONNECT_TIMEOUT), options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
        )

    def read() -> HealthSnapshot:
        snap = take_snapshot(warehouse, instance, settings.health, settings.freshness_grace)
        if snap.dagster is None:
            instance.reset()
        return snap

    running = start(build_registry(read), host, port)
    try:
        yield running
    finally:
        running.stop()
        instance.reset()
