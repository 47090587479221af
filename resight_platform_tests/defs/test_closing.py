"""The closing job (``defs/closing.py``) on the real definitions, a real Dagster instance, the
Postgres ledger and a small registry: what the partitions view shows after it, automation after
it, and a late file for a closed partition."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from dagster._core.storage.partition_status_cache import AssetPartitionStatus

from resight_platform.defs.closing import CLOSED
from resight_platform.defs.failed import mark_failed
from resight_platform.defs.jobs import CLOSE_JOB
from resight_platform.defs.partitions import SOURCE_PARTITIONS
from resight_platform.defs.policies import CLOSING_RUN
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, FEEDS
from resight_platform_tests.defs.test_landing import sales_csv
from resight_platform_tests.defs.test_policies import Ticks
from resight_platform_tests.defs.test_sensors import Daemon, _daemon

TODAY = datetime.now(UTC).date()
FIRST = TODAY - timedelta(days=10)
WINDOW = [FIRST + timedelta(days=n) for n in range(10)]  # the days judged: up to yesterday


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def key(day: date, source: str) -> str:
    return f"{day.isoformat()}|{source}"


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """Two partners: pawmart sends sales daily and its catalog weekly, from its first delivery;
    barkbox_market sends sales only, onboarded three days ago."""
    target = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, target)
    with (target / "providers.csv").open(newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["provider"] in ("pawmart", "barkbox_market")]
    for row in rows:
        row["onboarded"] = ago(3).isoformat() if row["provider"] == "barkbox_market" else ""
    with (target / "providers.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (target / "sources.csv").write_text(
        "provider,feed,format,expected_every_hours,active\n"
        "pawmart,sales,,24,true\npawmart,catalog,,168,true\nbarkbox_market,sales,,24,true\n",
        encoding="utf-8",
    )
    return target


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str, registry_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as resight runs Dagster: batched events
    env = {"RESIGHT_REGISTRY_DIR": str(registry_dir), "RESIGHT_PARTITIONS_START": FIRST.isoformat()}
    for daemon in _daemon(tmp_path, fresh_pg_url, str(tmp_path / "landing"), env=env):
        assert SOURCE_PARTITIONS.name is not None
        daemon.instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, ["barkbox_market", "pawmart"])
        with connect(fresh_pg_url) as conn:
            migrate(conn)
        yield daemon


def deliver(daemon: Daemon, provider: str, feed: str, days: list[date], assets: list[list[str]]) -> None:
    """What a landing run leaves: a loaded file per day in the ledger, and each asset's partition
    materialised with rows."""
    with connect(daemon.pg_url) as conn:
        for day in days:
            conn.execute(
                "insert into ops.ingestion_ledger (file_key, checksum, provider, feed, business_date, bytes, status)"
                " values (%s, 'x', %s, %s, %s, 1, 'loaded')",
                (f"{provider}/{feed}/{day}/f.csv", provider, feed, day),
            )
        conn.commit()
    for path in assets:
        for day in days:
            daemon.instance.report_runless_asset_event(
                dg.AssetMaterialization(path, partition=key(day, provider), metadata={"dagster/row_count": 5})
            )


def close(daemon: Daemon) -> dict[str, Any]:
    """Run the closing job as the browser test and the schedule do (no config); its figures."""
    result = daemon.defs.get_job_def(CLOSE_JOB).execute_in_process(instance=daemon.instance)
    assert result.success
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = output.event_specific_data.metadata  # type: ignore[union-attr]
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def statuses(instance: dg.DagsterInstance, daemon: Daemon, path: list[str]) -> dict[str, str]:
    """The partitions view of ``path`` over the window: partition → status name or ``missing``."""
    asset = dg.AssetKey(path)
    partitions_def = daemon.defs.resolve_assets_def(asset).partitions_def
    assert partitions_def is not None
    keys = [key(day, source) for day in WINDOW for source in ("barkbox_market", "pawmart")]
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        found = instance.get_status_by_partition(asset, keys, partitions_def) or {}
    return {k: found[k].value if found.get(k) else "missing" for k in keys}


def latest(instance: dg.DagsterInstance, path: list[str], partition: str) -> dict[str, Any]:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(path), asset_partitions=[partition]), limit=1
    ).records
    assert records, (path, partition)
    materialization = records[0].asset_materialization
    assert materialization is not None
    return {name: getattr(value, "value", value) for name, value in materialization.metadata.items()}


def failed_run_left(instance: dg.DagsterInstance, path: list[str], partition: str) -> None:
    """A run that meant to write ``partition`` and failed (as ``failed_partitions_sensor`` marks it)."""
    run = instance.add_run(dg.DagsterRun(job_name="landing_partitions_job", status=dg.DagsterRunStatus.FAILURE))
    mark_failed(instance, run, {dg.AssetKey(path): [partition]})


def test_closing_leaves_only_the_real_gaps_missing_and_a_second_run_closes_nothing(daemon: Daemon) -> None:
    instance = daemon.instance
    sales = [["bronze", "sales"], ["silver", "sales"], ["gold", "fact_sales"]]
    deliver(daemon, "pawmart", "sales", [ago(6), ago(5), ago(3), ago(2)], sales)  # gaps: 4 and 1 days ago
    deliver(daemon, "pawmart", "catalog", [ago(8)], [["bronze", "catalog"], ["silver", "catalog"]])
    failed_run_left(instance, ["bronze", "sales"], key(ago(10), "pawmart"))

    figures = close(daemon)

    gaps = {key(ago(4), "pawmart"), key(ago(1), "pawmart")} | {key(ago(n), "barkbox_market") for n in (3, 2, 1)}
    for path in sales:
        view = statuses(instance, daemon, path)
        assert {k for k, s in view.items() if s == "missing"} == gaps, path
    assert statuses(instance, daemon, ["bronze", "sales"])[key(ago(10), "pawmart")] == AssetPartitionStatus.FAILED.value
    assert latest(instance, ["silver", "sales"], key(ago(10), "pawmart")) == {
        CLOSED: "before_onboarding",
        "dagster/row_count": 0,
    }
    assert latest(instance, ["silver", "sales"], key(ago(5), "barkbox_market"))[CLOSED] == "before_onboarding"
    assert latest(instance, ["silver", "sales"], key(ago(3), "pawmart")) == {"dagster/row_count": 5}  # untouched
    # Weekly catalog from 8 days ago: next expected yesterday (a gap); the days between are closed.
    catalog = statuses(instance, daemon, ["silver", "catalog"])
    assert {k for k, s in catalog.items() if s == "missing"} == {key(ago(1), "pawmart")}
    assert latest(instance, ["silver", "catalog"], key(ago(4), "pawmart"))[CLOSED] == "not_expected"
    assert latest(instance, ["silver", "catalog"], key(ago(9), "pawmart"))[CLOSED] == "before_onboarding"
    # Feeds barkbox_market does not send: every day closed.
    assert latest(instance, ["bronze", "catalog"], key(ago(4), "barkbox_market"))[CLOSED] == "no_such_feed"
    for feed in ("stores", "customers"):
        assert set(statuses(instance, daemon, ["silver", feed]).values()) == {
            AssetPartitionStatus.MATERIALIZED.value
        }, feed
    # Today is never judged.
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        today = instance.get_status_by_partition(
            dg.AssetKey(["silver", "stores"]),
            [key(TODAY, "pawmart")],
            daemon.defs.resolve_assets_def(dg.AssetKey(["silver", "stores"])).partitions_def,  # type: ignore[arg-type]
        )
    assert today == {key(TODAY, "pawmart"): None}

    by_asset = figures["closed_by_asset"]
    assert by_asset["bronze/sales"] == {"before_onboarding": 10}  # 4 pawmart (1 failed, kept) + 7 barkbox
    assert by_asset["gold/fact_sales"] == {"before_onboarding": 11}
    assert by_asset["silver/catalog"] == {"before_onboarding": 2, "no_such_feed": 10, "not_expected": 6}
    assert set(by_asset) == {f"{layer}/{feed}" for layer in ("bronze", "silver") for feed in FEEDS} | {
        "gold/fact_sales"
    }
    assert figures["closed"] == sum(sum(r.values()) for r in by_asset.values())
    [run] = instance.get_runs(dg.RunsFilter(job_name=CLOSE_JOB))
    assert run.tags.get(CLOSING_RUN) == "true"  # what automation ignores

    assert close(daemon)["closed"] == 0  # idempotent


def test_automation_requests_nothing_after_a_closing_run(daemon: Daemon) -> None:
    ticks = Ticks(daemon.defs, daemon.instance)
    ticks.now = datetime.combine(TODAY, time(10, 30), UTC)
    # Every unpartitioned table exists (the dimensions, the monthly marts): nothing is missing.
    graph = daemon.defs.resolve_asset_graph()
    ticks.materialize(*((list(n.key.path), None) for n in graph.asset_nodes if n.partitions_def is None))
    ticks.tick()
    ticks.tick()
    assert close(daemon)["closed"] > 0
    requested = ticks.tick()
    assert not {k for k in requested if k[0] in ("silver", "gold", "marts")}, requested
    assert not {k for k in ticks.tick(minutes=5) if k[0] in ("silver", "gold", "marts")}  # past the marts' 5 minutes
    # The same update by any other run is followed: it is the closing run that is ignored.
    ticks.materialize((["bronze", "sales"], key(ago(4), "pawmart")))
    assert ticks.tick().get(("silver", "sales")) == {key(ago(4), "pawmart")}


def test_a_late_file_for_a_closed_partition_loads_and_shows_its_data(daemon: Daemon) -> None:
    late = key(ago(2), "pawmart")
    close(daemon)  # pawmart never delivered: every day closed as before its onboarding
    assert latest(daemon.instance, ["silver", "sales"], late)[CLOSED] == "before_onboarding"

    daemon.landing.write_bytes(f"pawmart/sales/{ago(2)}/late.csv", sales_csv("L", rows=3, day=ago(2)))
    daemon.run_all(daemon.tick())

    for path in (["bronze", "sales"], ["silver", "sales"]):
        shown = latest(daemon.instance, path, late)
        assert CLOSED not in shown and shown["dagster/row_count"] == 3, (path, shown)
        assert statuses(daemon.instance, daemon, path)[late] == AssetPartitionStatus.MATERIALIZED.value
    # The next closing run leaves it, and judges pawmart's sales from this first delivery on.
    figures = close(daemon)
    assert figures["closed"] == 0


def test_the_sensor_requests_a_run_per_registry_version_and_source_partitions(daemon: Daemon) -> None:
    from resight_platform.defs.closing import CLOSING_SENSOR

    sensor = daemon.defs.resolve_sensor_def(CLOSING_SENSOR)

    def tick(cursor: str | None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=daemon.instance,
            cursor=cursor,
            definitions=daemon.defs,
            resources=dict(daemon.defs.resources or {}),
        ) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        return result

    first = tick(None)  # a fresh daemon closes what its registry does not expect
    [request] = first.run_requests or []
    assert request.job_name in (None, CLOSE_JOB) and first.cursor
    assert not tick(first.cursor).run_requests  # nothing changed
    assert SOURCE_PARTITIONS.name is not None
    daemon.instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, ["petopia"])  # a new source partition
    again = tick(first.cursor)
    assert len(again.run_requests or []) == 1 and again.cursor != first.cursor
    # While a closing run is in flight the change waits (the cursor stays).
    daemon.instance.add_run(dg.DagsterRun(job_name=CLOSE_JOB, status=dg.DagsterRunStatus.STARTED))
    waiting = tick(first.cursor)
    assert not waiting.run_requests and waiting.cursor is None
