"""A failed run's partitions show failed (``defs/failed.py``), and a range run's partitions carry
their own figures (``io/lake.add_partition_metadata``), on the real Postgres and a local lake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resight_platform.defs import silver
from resight_platform.defs.failed import FAILED_PARTITIONS_SENSOR
from resight_platform.defs.jobs import LANDING_JOB
from resight_platform.defs.metadata import RANGE_END, RANGE_START
from resight_platform.defs.partitions import source_keys
from resight_platform.resources import load_registry_at
from resight_platform_tests.defs.test_landing import sales_csv
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon_on

BEFORE = DAY - timedelta(days=1)
SALES = [dg.AssetKey(["bronze", "sales"]), dg.AssetKey(["silver", "sales"])]


@pytest.fixture
def daemon(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    with _daemon_on("local", request, tmp_path, fresh_pg_url, monkeypatch) as daemon:
        daemon.instance.add_dynamic_partitions("source", source_keys(load_registry_at(None)))
        yield daemon


def _tick(daemon: Daemon, cursor: str | None) -> dg.SensorResult:
    sensor = daemon.defs.resolve_sensor_def(FAILED_PARTITIONS_SENSOR)
    with dg.build_sensor_context(instance=daemon.instance, cursor=cursor, definitions=daemon.defs) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def _status(daemon: Daemon, key: dg.AssetKey, partition: str) -> dg.AssetPartitionStatus | None:
    partitions_def = daemon.defs.resolve_asset_graph().get(key).partitions_def
    assert partitions_def is not None
    return (daemon.instance.get_status_by_partition(key, [partition], partitions_def) or {}).get(partition)


def _range_run(daemon: Daemon) -> dg.ExecuteInProcessResult:
    """A range run of bronze and silver sales over pawmart's two days (what a backfill launches)."""
    return daemon.defs.resolve_job_def(LANDING_JOB).execute_in_process(
        instance=daemon.instance,
        tags={RANGE_START: f"{BEFORE}|pawmart", RANGE_END: f"{DAY}|pawmart"},
        asset_selection=SALES,
        raise_on_error=False,
    )


def test_a_failed_range_run_marks_the_partitions_it_did_not_write_failed_until_a_run_writes_them(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS", "true")  # as resight runs Dagster
    for day, rows in ((BEFORE, 3), (DAY, 5)):
        daemon.landing.write_bytes(f"pawmart/sales/{day}/a.csv", sales_csv("A", rows=rows, day=day))
    first = _tick(daemon, None)  # starts at the end of the log
    real = silver.clean_silver

    def breaks(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("silver broke")

    monkeypatch.setattr(silver, "clean_silver", breaks)
    assert not _range_run(daemon).success
    keys = [f"{BEFORE}|pawmart", f"{DAY}|pawmart"]
    # Dagster's own bookkeeping of a range run: silver's partitions are not failed, just missing.
    assert {_status(daemon, SALES[1], k) for k in keys} == {None}
    marked = _tick(daemon, first.cursor)
    assert {_status(daemon, SALES[1], k) for k in keys} == {dg.AssetPartitionStatus.FAILED}
    assert {_status(daemon, SALES[0], k) for k in keys} == {dg.AssetPartitionStatus.MATERIALIZED}
    again = _tick(daemon, marked.cursor)  # nothing twice
    assert again.skip_reason is not None and again.cursor == marked.cursor
    monkeypatch.setattr(silver, "clean_silver", real)
    assert _range_run(daemon).success
    assert {_status(daemon, SALES[1], k) for k in keys} == {dg.AssetPartitionStatus.MATERIALIZED}
    assert _tick(daemon, marked.cursor).skip_reason is not None  # a success marks nothing
    # Each partition of the range run carries its own figures, not the run's totals.
    for key, rows in zip(keys, (3, 5), strict=True):
        for asset in SALES:
            record = daemon.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=asset, asset_partitions=[key]), limit=1
            ).records[0]
            assert record.asset_materialization is not None
            metadata = {k: getattr(v, "value", v) for k, v in record.asset_materialization.metadata.items()}
            assert metadata["dagster/row_count"] == rows, (asset, key, metadata)
            assert metadata["files_read" if asset == SALES[0] else "rows_in"] == (1 if asset == SALES[0] else rows)
