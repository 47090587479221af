"""The retention job in Dagster: registered, tagged for the run queue, scheduled daily as of the day
it runs, and a run deletes what the plan lists (logged) and compacts what was written since."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psycopg
import pyarrow.parquet as pq
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.partitions import daily_partitions
from resight_platform.defs.retention import RETENTION_JOB, RETENTION_SCHEDULE, RETENTION_TAGS, build_retention
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect
from resight_platform.resources import StoreResource, WarehouseResource
from resight_platform.retention import plan_retention
from resight_platform.settings import RetentionSettings, Settings
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.test_retention import POLICY, TODAY, _local_stores, build

Conn = psycopg.Connection[Any]


@pytest.fixture(scope="module")
def warehouse(pg_server_url: str) -> Iterator[str]:
    for url in temporary_database(pg_server_url, "retention_job"):
        with connect(url) as conn:
            migrate(conn)
        yield url


def test_the_job_and_its_schedule_are_registered_and_tagged(tmp_path: Path, warehouse: str) -> None:
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_RETENTION_SCHEDULE": "43 3 * * *"})
    defs = build_definitions(settings, pg_url=warehouse)
    job = defs.resolve_job_def(RETENTION_JOB)
    assert job.tags["resight/job"] == RETENTION_JOB
    assert job.partitions_def is not None
    schedule = defs.resolve_schedule_def(RETENTION_SCHEDULE)
    assert schedule.cron_schedule == "43 3 * * *" and schedule.execution_timezone == "UTC"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2026, 12, 1, 3, 43, tzinfo=UTC), repository_def=defs.get_repository_def()
    )
    requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert [(r.partition_key, r.tags.get("resight/job")) for r in requests] == [("2026-12-01", RETENTION_JOB)]


def test_a_run_retires_what_the_plan_lists_and_compacts_what_was_written_since(tmp_path: Path, warehouse: str) -> None:
    stores = _local_stores(tmp_path)
    with connect(warehouse) as conn:
        conn.execute("truncate ops.ingestion_ledger, ops.quarantine, ops.retention_log")
        lake = build(conn, stores)
        planned = {d.key for d in plan_retention(conn, stores, POLICY, TODAY).deletions}
    # A recent partition written as many small row groups (compaction looks at what the two days
    # before the run's date wrote: the file is new).
    key = "silver/sales/date=2026-11-29/source=acme/part-0.parquet"
    frame = pl.DataFrame({"order_id": [f"o{i}" for i in range(300)], "quantity": list(range(300))})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, frame.to_arrow().schema) as writer:
        for start in range(0, 300, 10):
            writer.write_table(frame.slice(start, 10).to_arrow())
    stores.lake.write_bytes(key, buffer.getvalue())

    policy = RetentionSettings(**{**POLICY.__dict__, "compact_row_group_rows": 100, "compact_min_row_groups": 4})
    job, _ = build_retention(policy, daily_partitions("2026-01-01"))
    result = job.execute_in_process(
        partition_key=TODAY.isoformat(),
        resources={
            "landing": StoreResource(url=stores.landing.url),
            "lake": StoreResource(url=stores.lake.url),
            "dead_letter": StoreResource(url=stores.dead_letters.url),
            "warehouse": WarehouseResource(pg_url=warehouse),
        },
    )
    assert result.success
    assert result.dagster_run.tags["resight/job"] == RETENTION_TAGS["resight/job"]
    retired = result.output_for_node("retire")
    assert retired["deleted"] == len(planned) and retired["list_requests"] >= 1
    with connect(warehouse) as conn:
        logged = {str(k) for (k,) in conn.execute("select key from ops.retention_log").fetchall()}
    assert logged == planned
    assert all(not stores.of(k.split(":", 1)[0]).exists(k.split(":", 1)[1]) for k in lake.expected)
    compacted = result.output_for_node("compact")
    assert (compacted["files_compacted"], compacted["row_groups_before"], compacted["row_groups_after"]) == (1, 30, 3)
    assert pl.read_parquet(stores.lake.local_path(key)).equals(frame)
