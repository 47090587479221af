"""The gold and marts cost benchmark (``bench.engines.gold_cost``) runs on a tiny fact and its
synthetic silver holds what it claims to."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

from bench.engines.gold_cost import UNKNOWN_PERCENT, compare, main, silver_frames
from resight_platform.schemas import SilverSales


def test_the_synthetic_sales_pass_silver_and_name_unknown_members() -> None:
    frames = silver_frames(5_000)
    sales = frames["sales"]
    SilverSales.validate(sales.with_columns(pl.lit(None, dtype=pl.String).alias("_from_registry")))
    unknown = sales.filter(~pl.col("sku").is_in(frames["catalog"].get_column("sku").implode()))
    assert 0 < unknown.height < sales.height * UNKNOWN_PERCENT * 2 / 100
    assert sales.get_column("store_id").null_count() > 0
    assert sales.get_column("business_date").dt.month().n_unique() == 3


def test_compare_tells_money_to_the_cent_from_an_ulp() -> None:
    before = pl.DataFrame({"k": [1, 2], "revenue": [16.99, 1.0]})
    ulp = before.with_columns(pl.Series("revenue", [16.990000000000002, 1.0]))
    assert compare(before, ulp)["money_ulps"] == 1 and compare(before, ulp)["money_cents"] == 0
    assert compare(before, before.with_columns(pl.Series("revenue", [17.0, 1.0])))["money_cents"] == 1


def test_the_benchmark_runs_against_a_ref_and_the_results_agree(tmp_path: Path) -> None:
    output = tmp_path / "cost.json"
    assert main(["--lines", "3000", "--repeat", "1", "--before", "HEAD", "--output", str(output)]) == 0
    report = json.loads(output.read_text())
    assert report["fact_rows"] == 3000
    assert set(report["seconds"]) >= {"dims", "fact", "marts", "daily_sales"}
    for name, agreement in report["agreement"].items():
        assert agreement["same_schema_and_rows"] and agreement["other_columns_identical"], name
        assert agreement["money_cents"] == 0, name
