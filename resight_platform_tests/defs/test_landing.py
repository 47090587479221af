"""The landing run over a set of partitions (``defs/landing.py``), executed in process on the real
Postgres and a local landing zone (and the moto S3 endpoint), as the landing sensor requests it."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

import resight_platform.defs.silver as silver_defs
from resight_platform.defs import landing
from resight_platform.defs.checks import MODEL_CHECK
from resight_platform.defs.jobs import LANDING_SET_JOB
from resight_platform.defs.metadata import RUN_KEY_TAG, set_run_config
from resight_platform.defs.partitions import source_keys
from resight_platform.io import lake
from resight_platform.io.postgres import connect
from resight_platform.resources import load_registry_at
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon_on

BEFORE = DAY - timedelta(days=1)


def sales_csv(prefix: str, rows: int, day: date = DAY) -> bytes:
    """A standard_csv sales file of ``rows`` valid lines of 2 x $3.50."""
    header = "order_id,line_no,ordered_at,channel,sku,quantity,unit_price,status\n"
    lines = "".join(f"{prefix}-{n},1,{day}T10:00:00,store,SKU{n},2,3.50,completed\n" for n in range(rows))
    return (header + lines).encode()


CATALOG = (
    b"sku,upc,product_name,brand,category,species,pack_size,pack_unit,list_price\n"
    b"S1,012345678905,Ball,Acme,toys,dog,1,each,4.99\n"
)


@pytest.fixture(params=["local", "s3"])
def daemon(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    monkeypatch.setenv("DAGSTER_EVENT_BATCH_SIZE", "1000")  # as resight runs Dagster: batched events
    with _daemon_on(request.param, request, tmp_path, fresh_pg_url, monkeypatch) as daemon:
        daemon.instance.add_dynamic_partitions("source", source_keys(load_registry_at(None)))
        yield daemon


def _land(daemon: Daemon, partitions: dict[str, list[str]], facts: bool = False) -> dg.ExecuteInProcessResult:
    job = daemon.defs.resolve_job_def(LANDING_SET_JOB)
    return job.execute_in_process(
        instance=daemon.instance,
        run_config=set_run_config(partitions, facts),
        tags={RUN_KEY_TAG: "test-set-run"},
        raise_on_error=False,
    )


def _materialized(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dict[str, Any]]:
    """``{(asset, partition): metadata values}`` of the run's materialisations."""
    out = {}
    for event in result.all_events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        m = event.step_materialization_data.materialization
        values = {name: getattr(value, "value", value) for name, value in m.metadata.items()}
        out[(m.asset_key.to_user_string(), str(m.partition))] = values
    return out


def _checks(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], bool]:
    return {
        (e.asset_key.to_user_string(), e.check_name): e.passed
        for e in (
            event.event_specific_data
            for event in result.all_events
            if event.event_type_value == "ASSET_CHECK_EVALUATION"
        )
        if isinstance(e, dg.AssetCheckEvaluation)
    }


def test_a_set_run_writes_exactly_its_partitions_each_with_its_own_figures(daemon: Daemon) -> None:
    # Two providers apart in the source order, two days, and a third provider's catalog: no
    # partition between them is touched.
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A", rows=3))
    daemon.landing.write_bytes(f"tailwaggers/sales/{BEFORE}/w.csv", sales_csv("W", rows=5, day=BEFORE))
    daemon.landing.write_bytes(f"barkbox_market/catalog/{DAY}/c.csv", CATALOG)
    sales = [f"{DAY}|pawmart", f"{BEFORE}|tailwaggers"]
    result = _land(daemon, {"sales": sales, "catalog": [f"{DAY}|barkbox_market"]})
    assert result.success
    written = _materialized(result)
    assert set(written) == {
        ("bronze/sales", f"{DAY}|pawmart"),
        ("silver/sales", f"{DAY}|pawmart"),
        ("bronze/sales", f"{BEFORE}|tailwaggers"),
        ("silver/sales", f"{BEFORE}|tailwaggers"),
        ("bronze/catalog", f"{DAY}|barkbox_market"),
        ("silver/catalog", f"{DAY}|barkbox_market"),
    }
    # Each partition's rows are its own, not the run's total.
    assert written[("bronze/sales", f"{DAY}|pawmart")]["dagster/row_count"] == 3
    assert written[("bronze/sales", f"{BEFORE}|tailwaggers")]["dagster/row_count"] == 5
    assert written[("bronze/sales", f"{DAY}|pawmart")]["files_read"] == 1
    silver = written[("silver/sales", f"{BEFORE}|tailwaggers")]
    assert (silver["rows_in"], silver["dagster/row_count"], silver["rows_quarantined"]) == (5, 5, 0)
    checks = _checks(result)
    assert checks[("silver/sales", "matches_model")] and checks[("bronze/catalog", "columns_match_the_registry")]
    # Dagster sees the partitions as materialised, and only those.
    materialized = daemon.instance.get_materialized_partitions(dg.AssetKey(["silver", "sales"]))
    assert materialized == set(sales)
    with connect(daemon.pg_url) as conn, conn.cursor() as cur:
        cur.execute("select status, count(*) from ops.ingestion_ledger group by status")
        assert dict(cur.fetchall()) == {"loaded": 3}


def test_facts_of_a_set_run_and_a_failing_feed_that_fails_only_itself(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dimensions exist (empty: every key resolves to the unknown member).
    dims = daemon.defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection={
            dg.AssetKey(["gold", n]) for n in ("dim_date", "dim_provider", "dim_product", "dim_store", "dim_customer")
        }
    )
    assert dims.execute_in_process(instance=daemon.instance).success
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A", rows=3))
    daemon.landing.write_bytes(f"tailwaggers/sales/{BEFORE}/w.csv", sales_csv("W", rows=4, day=BEFORE))
    daemon.landing.write_bytes(
        f"pawmart/stores/{DAY}/s.csv", b"store_id,store_name,city,state,zip\nS1,Main,Austin,TX,73301\n"
    )
    real = landing.clean_silver

    def stores_break(feed: str, *args: Any, **kwargs: Any) -> Any:
        if feed == "stores":
            raise RuntimeError("stores cleaning broke")
        return real(feed, *args, **kwargs)

    monkeypatch.setattr(landing, "clean_silver", stores_break)
    monkeypatch.setenv("RESIGHT_STEP_RETRIES", "0")
    result = _land(
        daemon,
        {"sales": [f"{DAY}|pawmart", f"{BEFORE}|tailwaggers"], "stores": [f"{DAY}|pawmart"]},
        facts=True,
    )
    assert not result.success  # the failed feed fails the run, named
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "stores" in str(failure.step_failure_data.error) and "broke" in str(failure.step_failure_data.error)
    written = _materialized(result)
    # ... and nothing else: the sales partitions went through to gold.
    assert written[("gold/fact_sales", f"{DAY}|pawmart")]["dagster/row_count"] == 3
    assert written[("gold/fact_sales", f"{BEFORE}|tailwaggers")]["dagster/row_count"] == 4
    assert written[("gold/fact_sales", f"{BEFORE}|tailwaggers")]["silver_lines"] == 4
    assert written[("gold/fact_sales", f"{DAY}|pawmart")]["checks_failed"] == "none"
    assert ("silver/stores", f"{DAY}|pawmart") not in written
    assert ("bronze/stores", f"{DAY}|pawmart") in written
    # The partitions view: the failed feed's partition is failed, the rest materialised.
    graph = daemon.defs.resolve_asset_graph()

    def status(path: list[str], key: str) -> dg.AssetPartitionStatus | None:
        asset = dg.AssetKey(path)
        partitions_def = graph.get(asset).partitions_def
        assert partitions_def is not None
        return (daemon.instance.get_status_by_partition(asset, [key], partitions_def) or {}).get(key)

    assert status(["silver", "stores"], f"{DAY}|pawmart") == dg.AssetPartitionStatus.FAILED
    assert status(["bronze", "stores"], f"{DAY}|pawmart") == dg.AssetPartitionStatus.MATERIALIZED
    assert status(["gold", "fact_sales"], f"{BEFORE}|tailwaggers") == dg.AssetPartitionStatus.MATERIALIZED
    with connect(daemon.pg_url) as conn, conn.cursor() as cur:
        cur.execute("select sale_date, count(*) from gold.fact_sales group by sale_date order by sale_date")
        assert cur.fetchall() == [(BEFORE, 4), (DAY, 3)]


def test_files_are_loaded_in_the_ledger_only_once_their_silver_partitions_are_committed(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Two sales partitions; silver's file of the second cannot be swapped in (the first is by then).
    daemon.landing.write_bytes(f"tailwaggers/sales/{BEFORE}/w.csv", sales_csv("W", rows=4, day=BEFORE))
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A", rows=3))
    real_commit = lake.PartitionFileWriter.commit

    def commit(writer: lake.PartitionFileWriter) -> str:
        if writer.key.startswith("silver/") and "pawmart" in writer.key:
            raise OSError("no space left on device")
        return real_commit(writer)

    monkeypatch.setattr(lake.PartitionFileWriter, "commit", commit)
    monkeypatch.setenv("RESIGHT_STEP_RETRIES", "0")
    sales = [f"{BEFORE}|tailwaggers", f"{DAY}|pawmart"]
    assert not _land(daemon, {"sales": sales}).success

    def ledger() -> dict[str, tuple[str, int | None]]:
        with connect(daemon.pg_url) as conn, conn.cursor() as cur:
            cur.execute("select provider, status, rows_loaded from ops.ingestion_ledger")
            return {provider: (status, rows) for provider, status, rows in cur.fetchall()}

    # Silver's write failed: Dagster shows both partitions failed, and the ledger calls neither
    # file loaded (the first partition's counts are stored, its status waits for a run that commits).
    graph = daemon.defs.resolve_asset_graph()
    silver = dg.AssetKey(["silver", "sales"])
    partitions_def = graph.get(silver).partitions_def
    assert partitions_def is not None
    statuses = daemon.instance.get_status_by_partition(silver, sales, partitions_def) or {}
    assert {statuses.get(key) for key in sales} == {dg.AssetPartitionStatus.FAILED}
    assert {status for status, _ in ledger().values()} == {"read"}

    monkeypatch.setattr(lake.PartitionFileWriter, "commit", real_commit)
    assert _land(daemon, {"sales": sales}).success
    assert ledger() == {"tailwaggers": ("loaded", 4), "pawmart": ("loaded", 3)}


def test_a_failed_check_names_its_partition_on_the_result_and_on_that_partitions_materialisation(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A", rows=3))
    daemon.landing.write_bytes(f"tailwaggers/sales/{BEFORE}/w.csv", sales_csv("W", rows=4, day=BEFORE))
    real = silver_defs.clean_feed

    def buggy(*args: Any, **kwargs: Any) -> Any:  # a transform bug lets two bad pawmart rows through
        result = real(*args, **kwargs)
        bad = pl.col("order_id").is_in(["A-0", "A-2"])
        valid = result.valid.with_columns(quantity=pl.when(bad).then(0).otherwise(pl.col("quantity")).cast(pl.Int32))
        return dataclasses.replace(result, valid=valid)

    monkeypatch.setattr(silver_defs, "clean_feed", buggy)
    result = _land(daemon, {"sales": [f"{DAY}|pawmart", f"{BEFORE}|tailwaggers"]})
    assert not result.success  # the blocking check failed
    (check,) = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.asset_check_evaluation_data.check_name == MODEL_CHECK
        and e.asset_check_evaluation_data.asset_key == dg.AssetKey(["silver", "sales"])
    ]
    assert not check.passed
    assert check.metadata["failing_partitions"].value == {f"{DAY}|pawmart": 2}
    assert check.metadata["failing_partition_count"].value == 1
    assert check.description == f"2 of 7 rows break the model in 1 partition: {DAY}|pawmart"
    written = _materialized(result)
    # Quantity 0 also breaks the amount identity: the rules of the partition's 2 failing rows.
    assert written[("silver/sales", f"{DAY}|pawmart")]["checks_failed"] == (
        "matches_model: 2 rows (net_amount_is_quantity_times_price_less_discount, quantity.greater_than(0))"
    )
    assert written[("silver/sales", f"{BEFORE}|tailwaggers")]["checks_failed"] == "none"
