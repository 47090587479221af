"""A small pipeline state for the health tests (test_health.py, test_metrics.py): ledger rows
written through ``io.ops``' own helpers, registered sources, and runs and check evaluations in a
real (SQLite) Dagster instance made by executing tiny jobs.

``troubled``: every kind of problem at once (a file loaded three hours after it arrived, a dead
letter, a stale source, a failed run after a success, a failing check, a queued run); ``clean``:
one source that delivered a minute ago and loaded at once, one successful run, a passing check.
``troubled`` also has request counts of today and yesterday (:data:`REQUESTS`); ``clean`` none.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl
import psycopg

from resight_platform.io.ops import FileRecord, QueuedFile, queue_files, record_files, record_silver

__all__ = ["JOB", "REQUESTS", "build_ledger", "build_runs", "register_source"]

JOB = "ingest_job"
#: Requests counted (``ops.request_counts``) by days before today, component and kind (troubled).
REQUESTS = {
    (0, "landing_sensor", "LIST"): 1200,
    (0, "bronze", "GET"): 4,
    (0, "bronze", "HEAD"): 2,
    (0, "lake", "PUT"): 6,
    (1, "landing_sensor", "LIST"): 1000,
}


def register_source(conn: psycopg.Connection[Any], provider: str, feed: str, every_hours: int = 24) -> None:
    conn.execute(
        "insert into ops.sources (provider, feed, provider_name, kind, profile, format, timezone, currency,"
        " expected_every_hours, active) values (%s, %s, %s, 'retail', 'default', 'csv', 'UTC', 'USD', %s, true)",
        (provider, feed, provider.title(), every_hours),
    )


def _arrive(conn: psycopg.Connection[Any], key: str, at: datetime, run_key: str) -> None:
    provider, feed, day, _ = key.split("/")
    queue_files(
        conn,
        [QueuedFile(key, f"etag-{key}", 100, provider, feed, date.fromisoformat(day), run_key)],
        now=at,
    )


def _read(conn: psycopg.Connection[Any], key: str, at: datetime, run_id: str, rows: int) -> None:
    provider, feed, day, _ = key.split("/")
    record = FileRecord(key, f"sum-{key}", 100, provider, feed, date.fromisoformat(day), "read", rows_in=rows)
    record_files(conn, [record], run_id=run_id, now=at)


def _load(conn: psycopg.Connection[Any], key: str, feed: str, rows: int, quarantined: int) -> None:
    reconciliation = pl.DataFrame(
        {
            "_source_file": [key],
            "rows_in": [rows],
            "rows_loaded": [rows - quarantined],
            "rows_quarantined": [quarantined],
        }
    )
    record_silver(conn, feed=feed, partitions=[], quarantine=pl.DataFrame(), reconciliation=reconciliation)


def build_ledger(conn: psycopg.Connection[Any], *, troubled: bool) -> None:
    """Ledger rows and registered sources as of now (``loaded_at`` is the server's clock)."""
    now = datetime.now(UTC)
    day = now.date()  # today's business date: the dashboard's time range holds it
    run_id = str(uuid.uuid4())
    register_source(conn, "acme", "sales")
    key = f"acme/sales/{day}/orders.csv"
    arrived = now - (timedelta(hours=3) if troubled else timedelta(minutes=1))
    _arrive(conn, key, arrived, "landing-1")
    _read(conn, key, arrived + timedelta(seconds=20), run_id, 120)
    _load(conn, key, "sales", 120, 4)
    if not troubled:
        return
    register_source(conn, "acme", "catalog")
    register_source(conn, "quiet", "sales")
    dead = f"acme/catalog/{day}/catalog.csv"
    _arrive(conn, dead, now - timedelta(minutes=30), "landing-2")
    record_files(
        conn,
        [
            FileRecord(
                dead,
                f"sum-{dead}",
                100,
                "acme",
                "catalog",
                day,
                "dead_lettered",
                error_code="bad_encoding",
                error="line 3 is not UTF-8",
            )
        ],
        run_id=run_id,
        now=now - timedelta(minutes=29),
    )
    # A partner silent for three days (due every 24 h): stale.
    old = f"quiet/sales/{day - timedelta(days=3)}/orders.csv"
    _arrive(conn, old, now - timedelta(days=3), "landing-0")
    _read(conn, old, now - timedelta(days=3), str(uuid.uuid4()), 10)
    _load(conn, old, "sales", 10, 0)
    # A file waiting in the queue (not read yet): the queue panels have data.
    _arrive(conn, f"acme/sales/{day}/late.csv", now - timedelta(minutes=5), "landing-3")
    # The platform's own requests, as io/requests.flush_requests leaves them (UTC days).
    conn.execute(
        "insert into ops.request_counts (day, component, kind, requests)"
        " select d, c, k, n from unnest(%s::date[], %s::text[], %s::text[], %s::bigint[]) t(d, c, k, n)",
        (
            [day - timedelta(days=ago) for ago, _, _ in REQUESTS],
            [component for _, component, _ in REQUESTS],
            [kind for _, _, kind in REQUESTS],
            list(REQUESTS.values()),
        ),
    )


def _origin(job: str) -> Any:
    """Where a queued run's job comes from (Dagster requires one for a queued run; the code
    location of a deployment's workspace, here a name only). No public API builds one."""
    from dagster._core.remote_origin import RegisteredCodeLocationOrigin, RemoteRepositoryOrigin

    return RemoteRepositoryOrigin(
        RegisteredCodeLocationOrigin("resight_platform.definitions"), "__repository__"
    ).get_job_origin(job)


def build_runs(instance: dg.DagsterInstance, *, troubled: bool) -> None:
    """Runs of :data:`JOB` in ``instance``: a success whose check fails (troubled) or passes, then
    (troubled) a failed run and a queued one."""
    fail = {"now": False}

    @dg.asset
    def orders() -> int:
        if fail["now"]:
            raise ValueError("the partner's file broke the reader")
        return 1

    @dg.asset_check(asset=orders)
    def orders_in_range() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(
            passed=not troubled, description="3 rows over the quantity ceiling" if troubled else None
        )

    defs = dg.Definitions(
        assets=[orders], asset_checks=[orders_in_range], jobs=[dg.define_asset_job(JOB, selection=[orders])]
    )
    job = defs.resolve_job_def(JOB)
    assert job.execute_in_process(instance=instance).success
    if troubled:
        fail["now"] = True
        assert not job.execute_in_process(instance=instance, raise_on_error=False).success
        # A run the queue holds: created, then enqueued (the event the run coordinator writes).
        queued = instance.add_run(dg.DagsterRun(job_name=JOB, run_id=str(uuid.uuid4()), remote_job_origin=_origin(JOB)))
        instance.report_dagster_event(
            dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_ENQUEUED.value, job_name=JOB), queued.run_id
        )
        record = instance.get_run_record_by_id(queued.run_id)
        assert record is not None and record.dagster_run.status == dg.DagsterRunStatus.QUEUED
