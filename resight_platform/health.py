"""Pipeline health at a glance: what the warehouse's health views (``io/sql/010_health.sql``) and
the Dagster instance say now, as one typed :class:`HealthSnapshot`, and the problems in it.

Read by ``resight health`` (printed; exit 1 on a problem) and by ``resight metrics`` (a
Prometheus collector reads a snapshot on each scrape). Each half is read on its own: a warehouse
or an instance that cannot be read is a problem of its own, and the other half is still shown.
What counts as a problem, and the limits, are :class:`~resight_platform.settings.HealthSettings`
(docs/operations.md):

- a failed run whose job has no later successful run (runs of the window);
- a run queued longer than ``max_queued``;
- a check whose latest evaluation (per asset, check and partition, in the window) failed;
- a stale source (``health.sources``: past its expected window plus the freshness grace);
- a dead letter in the window;
- a file whose freshness lag (arrival to silver) is over ``max_lag``, or that has waited longer.

It also shows the platform's own S3 and SQS requests of today and yesterday (``health.requests``,
``io/sql/012_requests.sql``): by kind, their dollars at the price table's rate, and per landed file.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import psycopg

from resight_platform.redact import redact_text
from resight_platform.settings import HealthSettings

__all__ = [
    "PROBLEM_KINDS",
    "WAITING",
    "CheckFailure",
    "DagsterHealth",
    "DeadLetter",
    "FailedRun",
    "FeedFiles",
    "HealthSnapshot",
    "JobRuns",
    "Problem",
    "QueuedRun",
    "RequestDay",
    "SourceLag",
    "StaleSource",
    "WarehouseHealth",
    "read_dagster",
    "read_requests",
    "read_warehouse",
    "summary_lines",
    "take_snapshot",
]

#: The kinds of problem, in the order they are printed.
PROBLEM_KINDS = (
    "unreachable",
    "failed_run",
    "queued_too_long",
    "failing_check",
    "stale_source",
    "dead_letter",
    "freshness_lag",
)
#: Rows of each list kept in a snapshot (the counts cover all of them).
LISTED = 50
#: Run records and check evaluations read from the instance per snapshot, newest first.
RUN_RECORDS = 5000
CHECK_EVALUATIONS = 10000
#: Feed label of a file the ledger could not attach to a source (its key broke the contract).
UNATTRIBUTED = "unknown"
_FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dataclass(frozen=True)
class Problem:
    """One thing that needs a person: its kind (:data:`PROBLEM_KINDS`), what, and the detail."""

    kind: str
    subject: str
    detail: str


#: The status :class:`FeedFiles` gives files on the event path's waiting list (``ops.landing_waiting``).
WAITING = "waiting"


@dataclass(frozen=True)
class FeedFiles:
    """Files of a feed by ledger status: handled in the window (queued: waiting now), their rows
    and their freshness lag (arrival to silver, seconds; loaded files only)."""

    feed: str
    status: str
    files: int
    rows_in: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    lag_seconds_max: float | None = None
    lag_seconds_sum: float = 0.0
    #: The oldest file's arrival, for files still waiting (queued, read).
    oldest_arrival: datetime | None = None


@dataclass(frozen=True)
class DeadLetter:
    file_key: str
    provider: str | None
    feed: str | None
    reason: str
    error: str | None
    at: datetime


@dataclass(frozen=True)
class SourceLag:
    """A source whose files were slow to reach silver: the worst lag (seconds), of how many files
    over the limit, and whether they are still waiting."""

    provider: str
    feed: str
    lag_seconds: float
    files: int
    waiting: bool


@dataclass(frozen=True)
class StaleSource:
    provider: str
    feed: str
    last_delivery: datetime | None
    expected_every_hours: int
    #: Past the expected window and the grace, seconds.
    overdue_seconds: float


@dataclass(frozen=True)
class RequestDay:
    """A UTC day's requests (``health.requests``): by kind, their dollars at the price table's
    rate (kinds without a price count nothing), and the files the ledger first saw that day."""

    day: date
    by_kind: dict[str, int]
    usd: float
    files_landed: int

    @property
    def requests(self) -> int:
        return sum(self.by_kind.values())

    @property
    def per_file(self) -> float | None:
        return self.requests / self.files_landed if self.files_landed else None


@dataclass(frozen=True)
class WarehouseHealth:
    """What the health views say for the window ending at the snapshot."""

    files: list[FeedFiles]
    dead_letters: int
    recent_dead_letters: list[DeadLetter]
    #: Sources with a file over the lag limit (worst first, at most :data:`LISTED`) and how many.
    lagging: list[SourceLag]
    lagging_sources: int
    active_sources: dict[str, int]
    stale: list[StaleSource]
    stale_sources: dict[str, int]
    #: The top providers by worst lag (seconds) and by dead letters in the window.
    top_lag: list[tuple[str, float]] = field(default_factory=list)
    top_dead_letters: list[tuple[str, int]] = field(default_factory=list)
    #: Today's and yesterday's requests (UTC; a day with none is left out), newest first.
    request_days: list[RequestDay] = field(default_factory=list)
    #: Every request counted so far: ``(component, kind, requests)`` (the metrics' counter).
    request_totals: list[tuple[str, str, int]] = field(default_factory=list)


@dataclass(frozen=True)
class JobRuns:
    """A job's runs of the window: by status, and the durations of the finished ones (seconds)."""

    job: str
    by_status: dict[str, int]
    finished: int
    seconds_sum: float
    seconds_max: float
    last_seconds: float | None
    last_status: str | None


@dataclass(frozen=True)
class FailedRun:
    job: str
    run_id: str
    at: datetime


@dataclass(frozen=True)
class QueuedRun:
    job: str
    run_id: str
    queued_at: datetime


@dataclass(frozen=True)
class CheckFailure:
    asset: str
    check: str
    partition: str | None
    severity: str
    at: datetime
    description: str | None


@dataclass(frozen=True)
class DagsterHealth:
    jobs: list[JobRuns]
    queued: int
    oldest_queued_at: datetime | None
    failed: list[FailedRun]
    queued_too_long: list[QueuedRun]
    checks_evaluated: int
    failing_checks: list[CheckFailure]


@dataclass(frozen=True)
class HealthSnapshot:
    """Both halves at ``at``; a half that could not be read is None with its error."""

    at: datetime
    limits: HealthSettings
    grace: timedelta
    warehouse: WarehouseHealth | None
    dagster: DagsterHealth | None
    warehouse_error: str | None = None
    dagster_error: str | None = None
    #: Seconds each half took to read.
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def problems(self) -> list[Problem]:
        out: list[Problem] = []
        for name, error in (("warehouse", self.warehouse_error), ("dagster", self.dagster_error)):
            if error is not None:
                out.append(Problem("unreachable", name, error))
        limit = _minutes(self.limits.max_lag.total_seconds())
        if self.dagster is not None:
            for run in self.dagster.failed:
                out.append(Problem("failed_run", run.job, f"run {run.run_id} failed {_when(run.at)}, no later success"))
            for queued in self.dagster.queued_too_long:
                waited = _minutes((self.at - queued.queued_at).total_seconds())
                out.append(
                    Problem(
                        "queued_too_long",
                        queued.job,
                        f"run {queued.run_id} queued for {waited}"
                        f" (limit {_minutes(self.limits.max_queued.total_seconds())})",
                    )
                )
            for check in self.dagster.failing_checks:
                where = f" [{check.partition}]" if check.partition else ""
                text = f"{check.severity} {_when(check.at)}" + (f": {check.description}" if check.description else "")
                out.append(Problem("failing_check", f"{check.asset}:{check.check}{where}", text))
        if self.warehouse is not None:
            for stale in self.warehouse.stale:
                last = _when(stale.last_delivery) if stale.last_delivery else "never"
                out.append(
                    Problem(
                        "stale_source",
                        f"{stale.provider}/{stale.feed}",
                        f"last delivery {last}, due every {stale.expected_every_hours} h,"
                        f" {stale.overdue_seconds / 3600:.1f} h overdue",
                    )
                )
            for dead in self.warehouse.recent_dead_letters:
                out.append(
                    Problem("dead_letter", dead.file_key, f"{dead.reason} {_when(dead.at)}: {dead.error or ''}".strip())
                )
            for lag in self.warehouse.lagging:
                what = "has waited" if lag.waiting else "took"
                out.append(
                    Problem(
                        "freshness_lag",
                        f"{lag.provider}/{lag.feed}",
                        f"a file {what} {_minutes(lag.lag_seconds)} from arrival to silver (limit {limit});"
                        f" {lag.files} file(s) over",
                    )
                )
        return out

    @property
    def healthy(self) -> bool:
        return not self.problems

    def counts(self) -> dict[str, int]:
        """Problems by kind, every kind present (the full counts, not only the listed rows)."""
        out = dict.fromkeys(PROBLEM_KINDS, 0)
        for problem in self.problems:
            out[problem.kind] += 1
        if self.warehouse is not None:
            out["stale_source"] = sum(self.warehouse.stale_sources.values())
            out["dead_letter"] = self.warehouse.dead_letters
            out["freshness_lag"] = self.warehouse.lagging_sources
        return out

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["healthy"] = self.healthy
        data["problems"] = [asdict(p) for p in self.problems]
        data["problem_counts"] = self.counts()
        return data


def _minutes(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- the warehouse ------------------------------------------------------------------------------


def read_warehouse(
    conn: psycopg.Connection[Any], limits: HealthSettings, grace: timedelta, now: datetime
) -> WarehouseHealth:
    """The health views of the warehouse of ``conn`` for the window ending at ``now``: every query
    reads an index (files handled since the window's start, files waiting, each registered
    source's newest delivery)."""
    since = now - limits.window
    params = {"since": since, "now": now, "lag": limits.max_lag.total_seconds(), "top": limits.top_providers}
    files = [
        FeedFiles(str(feed), str(status), int(n), int(rows_in), int(loaded), int(quarantined), lag_max, float(lag_sum))
        for feed, status, n, rows_in, loaded, quarantined, lag_max, lag_sum in conn.execute(
            "select coalesce(feed, %(unknown)s), status, count(*), coalesce(sum(rows_in), 0),"
            " coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0),"
            " max(lag_seconds) filter (where status = 'loaded'),"
            " coalesce(sum(lag_seconds) filter (where status = 'loaded'), 0)"
            " from health.files where processed_at >= %(since)s and status <> 'queued' group by 1, 2 order by 1, 2",
            {**params, "unknown": UNATTRIBUTED},
        ).fetchall()
    ]
    files += [
        FeedFiles(str(feed), "queued", int(n), oldest_arrival=oldest)
        for feed, n, oldest in conn.execute(
            "select coalesce(feed, %(unknown)s), count(*), min(arrived_at) from health.files"
            " where status = 'queued' group by 1 order by 1",
            {"unknown": UNATTRIBUTED},
        ).fetchall()
    ]
    # Files a landing notification named whose partition a run is writing (or over a tick's run
    # budget): not in the ledger yet (io/events.py), waiting since they were noticed.
    files += [
        FeedFiles(str(feed), WAITING, int(n), oldest_arrival=oldest)
        for feed, n, oldest in conn.execute(
            "select split_part(file_key, '/', 2), count(*), min(noticed_at) from ops.landing_waiting"
            " group by 1 order by 1"
        ).fetchall()
    ]
    dead = conn.execute(
        "select file_key, provider, feed, coalesce(error_code, 'unknown'), error, processed_at from health.files"
        " where status = 'dead_lettered' and processed_at >= %(since)s order by processed_at desc, file_key",
        params,
    ).fetchall()
    lagging_rows = conn.execute(
        "select provider, feed, max(lag), count(*), bool_or(waiting) from ("
        "  select provider, feed, lag_seconds as lag, false as waiting from health.files"
        "  where processed_at >= %(since)s and status = 'loaded' and lag_seconds > %(lag)s"
        "  union all"
        "  select provider, feed, extract(epoch from %(now)s - arrived_at)::double precision, true"
        "  from health.files where status in ('queued', 'read')"
        "  and arrived_at < %(now)s - make_interval(secs => %(lag)s)"
        "  union all"
        "  select split_part(file_key, '/', 1), split_part(file_key, '/', 2),"
        "  extract(epoch from %(now)s - noticed_at)::double precision, true from ops.landing_waiting"
        "  where noticed_at < %(now)s - make_interval(secs => %(lag)s)"
        " ) f where provider is not null and feed is not null group by 1, 2 order by 3 desc, 1, 2",
        params,
    ).fetchall()
    sources = conn.execute(
        "select feed, count(*) from health.sources where active group by 1 order by 1",
    ).fetchall()
    stale_rows = conn.execute(
        "select provider, feed, last_delivery, expected_every_hours, overdue_seconds - %(grace)s from health.sources"
        " where active and overdue_seconds > %(grace)s order by overdue_seconds desc, provider, feed",
        {"grace": grace.total_seconds()},
    ).fetchall()
    top_lag = conn.execute(
        "select provider, max(lag_seconds) from health.files where processed_at >= %(since)s and status = 'loaded'"
        " and provider is not null and lag_seconds is not null group by 1 order by 2 desc, 1 limit %(top)s",
        params,
    ).fetchall()
    top_dead: dict[str, int] = defaultdict(int)
    for row in dead:
        top_dead[str(row[1] or UNATTRIBUTED)] += 1
    request_days, request_totals = read_requests(conn, now)
    stale_by_feed: dict[str, int] = defaultdict(int)
    for row in stale_rows:
        stale_by_feed[str(row[1])] += 1
    return WarehouseHealth(
        files=files,
        dead_letters=len(dead),
        recent_dead_letters=[
            DeadLetter(str(key), p, f, str(code), error, at) for key, p, f, code, error, at in dead[:LISTED]
        ],
        lagging=[SourceLag(str(p), str(f), float(lag), int(n), bool(w)) for p, f, lag, n, w in lagging_rows[:LISTED]],
        lagging_sources=len(lagging_rows),
        active_sources={str(feed): int(n) for feed, n in sources},
        stale=[StaleSource(str(p), str(f), last, int(every), float(over)) for p, f, last, every, over in stale_rows][
            :LISTED
        ],
        stale_sources=dict(stale_by_feed),
        top_lag=[(str(p), float(lag)) for p, lag in top_lag],
        top_dead_letters=sorted(top_dead.items(), key=lambda item: (-item[1], item[0]))[: limits.top_providers],
        request_days=request_days,
        request_totals=request_totals,
    )


def read_requests(conn: psycopg.Connection[Any], now: datetime) -> tuple[list[RequestDay], list[tuple[str, str, int]]]:
    """Today's and yesterday's requests (UTC; ``health.requests``: two days' rows, and each day's
    files on the ledger's ``first_seen`` index), and every request counted so far by component and
    kind (``health.request_counts``: days × components × kinds rows)."""
    today = now.astimezone(UTC).date()
    days: dict[date, tuple[dict[str, int], float, int]] = {}
    for day, kind, n, usd, landed in conn.execute(
        "select day, kind, sum(requests), coalesce(sum(usd), 0), max(files_landed) from health.requests"
        " where day >= %(since)s and day <= %(today)s group by 1, 2 order by 1 desc, 2",
        {"since": today - timedelta(days=1), "today": today},
    ).fetchall():
        by_kind, total, _ = days.get(day, ({}, 0.0, 0))
        by_kind[str(kind)] = int(n)
        days[day] = (by_kind, total + float(usd), int(landed))
    totals = conn.execute(
        "select component, kind, sum(requests) from health.request_counts group by 1, 2 order by 1, 2"
    ).fetchall()
    return (
        [RequestDay(day, by_kind, usd, landed) for day, (by_kind, usd, landed) in days.items()],
        [(str(component), str(kind), int(n)) for component, kind, n in totals],
    )


# --- the Dagster instance -----------------------------------------------------------------------


def read_dagster(instance: dg.DagsterInstance, limits: HealthSettings, now: datetime) -> DagsterHealth:
    """Runs updated in the window (by job and status, durations), the queue, and the latest check
    evaluation per asset, check and partition in the window."""
    since = now - limits.window
    records = instance.get_run_records(filters=dg.RunsFilter(updated_after=since), limit=RUN_RECORDS)
    by_job: dict[str, list[Any]] = defaultdict(list)
    for record in records:
        by_job[record.dagster_run.job_name].append(record)
    jobs: list[JobRuns] = []
    failed: list[FailedRun] = []
    for job, runs in sorted(by_job.items()):
        statuses: dict[str, int] = defaultdict(int)
        for record in runs:
            statuses[record.dagster_run.status.value] += 1
        done = sorted(
            (r for r in runs if r.dagster_run.status in _FINISHED and r.start_time and r.end_time),
            key=lambda r: r.end_time,
        )
        durations = [r.end_time - r.start_time for r in done]
        decided = [r for r in done if r.dagster_run.status != dg.DagsterRunStatus.CANCELED]
        if decided and decided[-1].dagster_run.status == dg.DagsterRunStatus.FAILURE:
            last = decided[-1]
            failed.append(FailedRun(job, last.dagster_run.run_id, datetime.fromtimestamp(last.end_time, UTC)))
        jobs.append(
            JobRuns(
                job=job,
                by_status=dict(statuses),
                finished=len(done),
                seconds_sum=float(sum(durations)),
                seconds_max=float(max(durations, default=0.0)),
                last_seconds=float(durations[-1]) if durations else None,
                last_status=done[-1].dagster_run.status.value if done else None,
            )
        )
    queued_filter = dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED])
    queued = instance.get_runs_count(filters=queued_filter)
    oldest = instance.get_run_records(filters=queued_filter, limit=LISTED, order_by="create_timestamp", ascending=True)
    too_long = [
        QueuedRun(r.dagster_run.job_name, r.dagster_run.run_id, r.create_timestamp.astimezone(UTC))
        for r in oldest
        if now - r.create_timestamp > limits.max_queued
    ]
    evaluations = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_timestamp=since.timestamp()),
        limit=CHECK_EVALUATIONS,
        ascending=False,
    )
    latest: dict[tuple[str, str, str | None], tuple[Any, float]] = {}
    for event in evaluations:
        entry = event.event_log_entry
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation):
            continue
        key = (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.partition)
        if key not in latest:  # newest first
            latest[key] = (evaluation, entry.timestamp)
    failing = [
        CheckFailure(
            asset=asset,
            check=check,
            partition=partition,
            severity=evaluation.severity.value,
            at=datetime.fromtimestamp(at, UTC),
            description=redact_text(evaluation.description) if evaluation.description else None,
        )
        for (asset, check, partition), (evaluation, at) in sorted(latest.items(), key=lambda i: -i[1][1])
        if not evaluation.passed
    ]
    return DagsterHealth(
        jobs=jobs,
        queued=int(queued),
        oldest_queued_at=oldest[0].create_timestamp.astimezone(UTC) if oldest else None,
        failed=failed,
        queued_too_long=too_long,
        checks_evaluated=len(latest),
        failing_checks=failing,
    )


# --- both ---------------------------------------------------------------------------------------


def _error(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return redact_text(f"{type(exc).__name__}: {text}")[:500]


def take_snapshot(
    connect: Callable[[], psycopg.Connection[Any]] | None,
    instance: Callable[[], dg.DagsterInstance] | dg.DagsterInstance | None,
    limits: HealthSettings,
    grace: timedelta,
    now: datetime | None = None,
) -> HealthSnapshot:
    """Read both halves (``connect`` opens a warehouse connection, closed here; ``instance`` is
    the Dagster instance or a function that gives it); a half that raises is recorded as its
    error (passwords masked), a half given as None as not configured."""
    import time

    now = now or datetime.now(UTC)
    seconds: dict[str, float] = {}
    warehouse: WarehouseHealth | None = None
    dagster: DagsterHealth | None = None
    errors: dict[str, str | None] = {"warehouse": None, "dagster": None}
    started = time.perf_counter()
    try:
        if connect is None:
            raise RuntimeError("no warehouse configured")
        with connect() as conn:
            warehouse = read_warehouse(conn, limits, grace, now)
    except Exception as exc:
        errors["warehouse"] = _error(exc)
    seconds["warehouse"] = time.perf_counter() - started
    started = time.perf_counter()
    try:
        if instance is None:
            raise RuntimeError("no Dagster instance configured")
        dagster = read_dagster(instance if isinstance(instance, dg.DagsterInstance) else instance(), limits, now)
    except Exception as exc:
        errors["dagster"] = _error(exc)
    seconds["dagster"] = time.perf_counter() - started
    return HealthSnapshot(
        at=now,
        limits=limits,
        grace=grace,
        warehouse=warehouse,
        dagster=dagster,
        warehouse_error=errors["warehouse"],
        dagster_error=errors["dagster"],
        seconds=seconds,
    )


def _request_lines(days: Sequence[RequestDay], now: datetime) -> list[str]:
    """The requests section: today and yesterday (UTC), by kind, dollars at list price, per file."""
    today = now.astimezone(UTC).date()
    by_day = {day.day: day for day in days}
    lines = []
    for label, when in (("today", today), ("yesterday", today - timedelta(days=1))):
        day = by_day.get(when)
        if day is None:
            lines.append(f"requests:  {label} none counted")
            continue
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in sorted(day.by_kind.items(), key=lambda item: -item[1]))
        landed = (
            f"{day.files_landed:,} file(s) landed, {day.per_file:,.1f} per file"
            if day.per_file is not None
            else "no file landed"
        )
        lines.append(f"requests:  {label} {day.requests:,} ({kinds}) ${day.usd:,.2f} at list price; {landed}")
    return lines


def summary_lines(snapshot: HealthSnapshot) -> Sequence[str]:
    """The snapshot for people: one line per area, then the problems (listed rows; counts in full)."""
    hours = snapshot.limits.window.total_seconds() / 3600
    lines = [f"pipeline health at {_when(snapshot.at)} (window {hours:g} h)"]
    wh = snapshot.warehouse
    if wh is None:
        lines.append(f"warehouse: unreadable ({snapshot.warehouse_error})")
    else:
        handled = [f for f in wh.files if f.status not in ("queued", WAITING)]
        by_status: dict[str, int] = defaultdict(int)
        for f in handled:
            by_status[f.status] += f.files
        queued = sum(f.files for f in wh.files if f.status == "queued")
        total = sum(by_status.values())
        states = ", ".join(f"{n:,} {status}" for status, n in sorted(by_status.items())) or "none"
        waiting = sum(f.files for f in wh.files if f.status == WAITING)
        lines.append(
            f"files:     {total:,} handled in the window ({states}); {queued:,} queued now"
            + (f", {waiting:,} waiting for their partition's run (ops.landing_waiting)" if waiting else "")
        )
        rows = [sum(getattr(f, name) for f in handled) for name in ("rows_in", "rows_loaded", "rows_quarantined")]
        lines.append(f"rows:      {rows[0]:,} in, {rows[1]:,} loaded, {rows[2]:,} quarantined")
        loaded = [f for f in handled if f.status == "loaded" and f.lag_seconds_max is not None]
        if loaded:
            worst = max(float(f.lag_seconds_max or 0) for f in loaded)
            mean = sum(f.lag_seconds_sum for f in loaded) / max(1, sum(f.files for f in loaded))
            lag = f"avg {_minutes(mean)}, max {_minutes(worst)}"
        else:
            lag = "no file loaded in the window"
        lines.append(
            f"lag:       arrival to silver {lag} (limit {_minutes(snapshot.limits.max_lag.total_seconds())});"
            f" {wh.lagging_sources} source(s) over"
        )
        active = sum(wh.active_sources.values())
        lines.append(
            f"sources:   {active:,} active, {sum(wh.stale_sources.values())} stale; {wh.dead_letters} dead letter(s)"
        )
        lines.extend(_request_lines(wh.request_days, snapshot.at))
    dg_ = snapshot.dagster
    if dg_ is None:
        lines.append(f"dagster:   unreadable ({snapshot.dagster_error})")
    else:
        statuses: dict[str, int] = defaultdict(int)
        for job in dg_.jobs:
            for status, n in job.by_status.items():
                statuses[status] += n
        runs = ", ".join(f"{n} {s.lower()}" for s, n in sorted(statuses.items())) or "none"
        oldest = (
            f", oldest {_minutes((snapshot.at - dg_.oldest_queued_at).total_seconds())}" if dg_.oldest_queued_at else ""
        )
        lines.append(f"runs:      {sum(statuses.values())} in the window ({runs}); {dg_.queued} queued{oldest}")
        lines.append(f"checks:    {dg_.checks_evaluated} evaluated in the window, {len(dg_.failing_checks)} failing")
    problems = snapshot.problems
    if problems:
        counts = snapshot.counts()
        lines.append("")
        lines.append("problems: " + ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items() if n))
        width = max(len(p.kind) for p in problems)
        order = {kind: n for n, kind in enumerate(PROBLEM_KINDS)}
        for problem in sorted(problems, key=lambda p: order[p.kind]):
            lines.append(f"  {problem.kind.upper():<{width}}  {problem.subject}: {problem.detail}")
        lines.append("")
        lines.append("unhealthy: see the problems above (docs/operations.md says what to do)")
    else:
        lines.append("")
        lines.append("healthy")
    return lines
