"""The checks generated from the models, in real runs: what they report, and that a failed blocking
check stops what follows in the run."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

import resight_platform.defs.silver as silver_defs
import resight_platform.transforms.gold as gold_transforms
from resight_platform.defs.bronze import DRIFT_CHECK
from resight_platform.defs.checks import KEYS_CHECK, MODEL_CHECK, RECONCILE_CHECK
from resight_platform.defs.metadata import RANGE_END, RANGE_START
from resight_platform.defs.silver import TYPES_CHECK
from resight_platform.io.postgres import connect
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon

FACTS = dg.AssetKey(["gold", "fact_sales"])


def online_sales(rows: int, day: date = DAY, prefix: str = "A") -> bytes:
    """``rows`` online lines in pawmart's layout that silver loads whole."""
    header = (
        "order_id,line_no,ordered_at,store_id,channel,sku,quantity,unit_price,discount,customer_id,status,ship_state\n"
    )
    lines = "".join(f"{prefix}-{n},1,{day}T10:00:00Z,,online,SKU{n},2,3.50,0,,completed,NY\n" for n in range(rows))
    return (header + lines).encode()


SILVER = dg.AssetKey(["silver", "sales"])


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str) -> Iterator[Daemon]:
    for d in _daemon(tmp_path, fresh_pg_url, str(tmp_path / "landing")):
        d.instance.add_dynamic_partitions("source", ["pawmart"])
        # The dimensions, for real (those built from silver are empty: nothing loaded yet).
        dims = d.defs.resolve_implicit_global_asset_job_def()
        names = ("dim_date", "dim_provider", "dim_product", "dim_store", "dim_customer")
        assert dims.execute_in_process(
            instance=d.instance, asset_selection=[dg.AssetKey(["gold", n]) for n in names]
        ).success
        yield d


def _run(daemon: Daemon, *keys: dg.AssetKey) -> dg.ExecuteInProcessResult:
    job = daemon.defs.resolve_job_def("landing_job")
    return job.execute_in_process(
        instance=daemon.instance,
        partition_key=f"{DAY}|pawmart",
        asset_selection=list(keys),
        raise_on_error=False,
    )


def _evaluations(result: dg.ExecuteInProcessResult) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {
        ("/".join(e.asset_key.path), e.check_name): e
        for e in (
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
    }


def test_clean_rows_pass_every_check_with_counts(daemon: Daemon) -> None:
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", online_sales(4))
    result = _run(daemon, dg.AssetKey(["bronze", "sales"]), SILVER, FACTS)
    assert result.success
    checks = _evaluations(result)
    model = checks[("silver/sales", MODEL_CHECK)]
    assert model.passed and model.metadata["rows_checked"].value == 4
    assert model.metadata["failures_by_rule"].value == {}
    assert checks[("gold/fact_sales", MODEL_CHECK)].metadata["rows_checked"].value == 4
    assert checks[("gold/fact_sales", KEYS_CHECK)].passed
    reconcile = checks[("gold/fact_sales", RECONCILE_CHECK)]
    assert reconcile.passed and reconcile.metadata["gold_lines"].value == 4


def test_a_row_breaking_the_silver_model_fails_its_blocking_check_and_stops_the_facts(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", online_sales(4))
    real = silver_defs.clean_feed

    def buggy(*args: object, **kwargs: object) -> object:  # a transform bug lets a bad row through
        result = real(*args, **kwargs)  # type: ignore[arg-type]
        valid = result.valid.with_columns(
            quantity=pl.when(pl.col("order_id") == "A-0").then(0).otherwise(pl.col("quantity")).cast(pl.Int32)
        )
        return dataclasses.replace(result, valid=valid)  # type: ignore[type-var]

    monkeypatch.setattr(silver_defs, "clean_feed", buggy)
    result = _run(daemon, dg.AssetKey(["bronze", "sales"]), SILVER, FACTS)
    assert not result.success
    check = _evaluations(result)[("silver/sales", MODEL_CHECK)]
    assert not check.passed
    assert check.metadata["failing_rows"].value == 1
    failures = check.metadata["failures_by_rule"].value
    assert failures["quantity.greater_than(0)"] == 1  # type: ignore[index]
    assert "quantity.greater_than(0)" in str(check.metadata["failing_rows_sample"].value)
    materialized = {tuple(e.asset_key.path) for e in result.get_asset_materialization_events()}
    assert ("silver", "sales") in materialized and ("gold", "fact_sales") not in materialized


def test_a_file_with_drifted_columns_loads_and_is_reported_on_the_ledger_and_as_a_warning(daemon: Daemon) -> None:
    header, *rows = online_sales(3).decode().splitlines(keepends=True)
    drifted = header.replace("discount", "discount_amt").replace("\n", ",loyalty_tier\n")
    body = "".join(row.replace("\n", ",gold\n") for row in rows)
    key = f"pawmart/sales/{DAY}/drifted.csv"
    daemon.landing.write_bytes(key, (drifted + body).encode())
    result = _run(daemon, dg.AssetKey(["bronze", "sales"]), SILVER, FACTS)
    assert result.success  # drift alone does not refuse a file
    check = _evaluations(result)[("bronze/sales", DRIFT_CHECK)]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["files_with_drift"].value == 1
    assert "discount → discount_amt" in str(check.metadata["files"].value)
    with connect(daemon.pg_url) as conn:
        row = conn.execute(
            "select schema_drift, rows_loaded from ops.ingestion_ledger where file_key = %s", (key,)
        ).fetchone()
    assert row is not None
    assert row[0] == {"new": ["loyalty_tier"], "missing": [], "renamed": [["discount", "discount_amt"]]}
    assert row[1] == 3  # every row loaded (discount read as absent: 0)


def test_a_file_missing_a_required_column_goes_to_dead_letter_with_the_reason(daemon: Daemon) -> None:
    header, *rows = online_sales(2).decode().splitlines(keepends=True)
    key = f"pawmart/sales/{DAY}/no_quantity.csv"
    daemon.landing.write_bytes(key, (header.replace("quantity", "qty_sold") + "".join(rows)).encode())
    result = _run(daemon, dg.AssetKey(["bronze", "sales"]))
    assert result.success
    with connect(daemon.pg_url) as conn:
        row = conn.execute(
            "select status, error_code, error from ops.ingestion_ledger where file_key = %s", (key,)
        ).fetchone()
    assert row is not None and row[:2] == ("dead_lettered", "missing_columns")
    assert "quantity" in row[2] and "qty_sold" in row[2]


def test_a_column_whose_values_stopped_parsing_is_reported_as_a_type_change(daemon: Daemon) -> None:
    header, *rows = online_sales(12).decode().splitlines(keepends=True)
    priced_as_text = [row.replace(",3.50,", ",EUR 3.50,") for row in rows]  # a new format for the price
    key = f"pawmart/sales/{DAY}/new_price_format.csv"
    daemon.landing.write_bytes(key, (header + "".join(priced_as_text)).encode())
    result = _run(daemon, dg.AssetKey(["bronze", "sales"]), SILVER)
    assert result.success  # every row quarantined (unparseable_price), the run is fine
    check = _evaluations(result)[("silver/sales", TYPES_CHECK)]
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["failures_by_rule"].value == {"unit_price (unparseable_price)": 1}
    with connect(daemon.pg_url) as conn:
        row = conn.execute("select schema_drift from ops.ingestion_ledger where file_key = %s", (key,)).fetchone()
    assert row is not None
    assert row[0]["type_changed"] == [{"column": "unit_price", "rule": "unparseable_price", "rows": 12, "of": 12}]


def test_a_fact_partition_that_breaks_the_model_is_named_and_marked_in_a_range_run(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = DAY - timedelta(days=1)
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", online_sales(3))
    daemon.landing.write_bytes(f"pawmart/sales/{before}/b.csv", online_sales(2, day=before, prefix="B"))
    real = gold_transforms.build_fact_sales

    def buggy(*args: object, **kwargs: object) -> pl.DataFrame:  # a gold bug: one of DAY's lines loses its status
        facts: pl.DataFrame = real(*args, **kwargs)  # type: ignore[arg-type]
        return facts.with_columns(status=pl.when(pl.col("order_id") == "A-1").then(pl.lit("??")).otherwise("status"))

    monkeypatch.setattr(gold_transforms, "build_fact_sales", buggy)
    result = daemon.defs.resolve_job_def("landing_job").execute_in_process(
        instance=daemon.instance,
        tags={RANGE_START: f"{before}|pawmart", RANGE_END: f"{DAY}|pawmart"},
        asset_selection=[dg.AssetKey(["bronze", "sales"]), SILVER, FACTS],
        raise_on_error=False,
    )
    assert not result.success  # the facts' blocking model check failed
    checks = _evaluations(result)
    model = checks[("gold/fact_sales", MODEL_CHECK)]
    assert model.metadata["failing_partitions"].value == {f"{DAY}|pawmart": 1}
    assert model.description == f"1 of 5 rows break the model in 1 partition: {DAY}|pawmart"
    assert checks[("gold/fact_sales", KEYS_CHECK)].passed and checks[("gold/fact_sales", RECONCILE_CHECK)].passed
    verdicts = {
        str(e.partition): e.materialization.metadata["checks_failed"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key == FACTS
    }
    assert verdicts == {
        f"{DAY}|pawmart": "matches_model: 1 row (status.isin(['cancelled', 'completed', 'returned']))",
        f"{before}|pawmart": "none",
    }
