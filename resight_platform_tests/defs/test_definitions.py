"""The assembled definitions: every asset described, partitioned and reachable from its jobs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import (
    DAILY_MART_JOB,
    DIMENSIONS_JOB,
    GOLD_FACTS_JOB,
    MARTS_JOB,
    MEDALLION_JOB,
    REGISTRY_JOB,
    SCAN_LANDING_JOB,
)
from resight_platform.defs.partitions import (
    DATE,
    SOURCE,
    providers_of,
    source_key,
    source_keys,
    split_key,
)
from resight_platform.settings import DEFAULT_PARTITIONS_START, Settings
from resight_platform.sources.registry import FEEDS, load_registry

MEDALLION = [[layer, feed] for layer in ("bronze", "silver") for feed in FEEDS]
FACTS = [["gold", "fact_sales"]]
DAILY = [["marts", "daily_sales"]]
DIMENSIONS = [["gold", n] for n in ("dim_date", "dim_provider", "dim_store", "dim_product", "dim_customer")]
MONTHLY_MARTS = [
    ["marts", n]
    for n in (
        "monthly_sales",
        "brand_share_monthly",
        "top_products_monthly",
        "top_customers_monthly",
        "order_status_impact",
        "aov_by_region",
    )
]
ML = [["gold", n] for n in ("ml_demand_features", "ml_demand_model", "ml_demand_forecast")]
ALL_ASSETS = [["ops", "sources"], ["ops", "landing"], *MEDALLION, *DIMENSIONS, *FACTS, *DAILY, *MONTHLY_MARTS, *ML]


@pytest.fixture
def defs(tmp_path: Path, fresh_pg_url: str) -> dg.Definitions:
    return build_definitions(Settings.from_env({"RESIGHT_HOME": str(tmp_path / "home")}), pg_url=fresh_pg_url)


@pytest.fixture
def specs(defs: dg.Definitions) -> dict[tuple[str, ...], dg.AssetSpec]:
    return {tuple(spec.key.path): spec for spec in defs.resolve_all_asset_specs()}


def test_definitions_load_every_asset(specs: dict[tuple[str, ...], dg.AssetSpec]) -> None:
    assert sorted(specs) == sorted(tuple(k) for k in ALL_ASSETS)


def test_every_asset_is_described(specs: dict[tuple[str, ...], dg.AssetSpec]) -> None:
    problems = []
    for key, spec in sorted(specs.items()):
        name = "/".join(key)
        if spec.group_name != key[0]:
            problems.append(f"{name}: group {spec.group_name!r}")
        if not spec.owners:
            problems.append(f"{name}: no owners")
        if not spec.kinds:
            problems.append(f"{name}: no kinds")
        if not (spec.description or "").strip():
            problems.append(f"{name}: no description")
        schema = spec.metadata.get("dagster/column_schema")
        if key == ("ops", "landing"):
            continue  # partner files as delivered: no columns of its own (each feed's are bronze's)
        if not isinstance(schema, dg.TableSchema) or not schema.columns:
            problems.append(f"{name}: no dagster/column_schema metadata")
    assert problems == []


def test_column_schemas_name_the_contract_columns(specs: dict[tuple[str, ...], dg.AssetSpec]) -> None:
    def columns(*key: str) -> list[str]:
        return [c.name for c in specs[key].metadata["dagster/column_schema"].columns]

    assert columns("silver", "sales")[:3] == ["order_id", "line_no", "ordered_at"]
    assert {"_provider", "_feed", "_business_date", "_source_file", "_row_number", "_ingested_at"} <= set(
        columns("bronze", "sales")
    )
    assert "sale_date" in columns("gold", "fact_sales")


def test_medallion_assets_and_facts_are_partitioned_by_date_and_source(
    specs: dict[tuple[str, ...], dg.AssetSpec],
) -> None:
    for key in [*MEDALLION, *FACTS]:
        partitions = specs[tuple(key)].partitions_def
        assert isinstance(partitions, dg.MultiPartitionsDefinition), key
        dimensions = {d.name: d.partitions_def for d in partitions.partitions_defs}
        assert set(dimensions) == {DATE, SOURCE}
        by_date, by_source = dimensions[DATE], dimensions[SOURCE]
        assert isinstance(by_date, dg.DailyPartitionsDefinition)
        assert by_date.start.date() == date.fromisoformat(DEFAULT_PARTITIONS_START)
        assert isinstance(by_source, dg.DynamicPartitionsDefinition)
        assert by_source.name == "source"


def test_daily_mart_is_daily_and_the_rest_unpartitioned(
    specs: dict[tuple[str, ...], dg.AssetSpec],
) -> None:
    for key in DAILY:
        partitions = specs[tuple(key)].partitions_def
        assert isinstance(partitions, dg.DailyPartitionsDefinition), key
        assert partitions.start.date() == date.fromisoformat(DEFAULT_PARTITIONS_START)
    for key in [["ops", "sources"], *DIMENSIONS, *MONTHLY_MARTS]:
        assert specs[tuple(key)].partitions_def is None, key


def test_partitions_start_comes_from_settings(tmp_path: Path, fresh_pg_url: str) -> None:
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_PARTITIONS_START": "2026-09-01"})
    defs = build_definitions(settings, pg_url=fresh_pg_url)
    mart = next(s for s in defs.resolve_all_asset_specs() if s.key.path == ["marts", "daily_sales"])
    assert isinstance(mart.partitions_def, dg.DailyPartitionsDefinition)
    assert mart.partitions_def.start.date() == date(2026, 9, 1)


def test_jobs_exist_with_their_selection_and_partitions(defs: dg.Definitions) -> None:
    def selected(name: str) -> set[tuple[str, ...]]:
        return {tuple(k.path) for k in defs.resolve_job_def(name).asset_layer.selected_asset_keys}

    assert selected(REGISTRY_JOB) == {("ops", "sources"), ("gold", "dim_provider")}  # both from the registry
    assert selected(MEDALLION_JOB) == {tuple(k) for k in MEDALLION}
    assert selected(DIMENSIONS_JOB) == {tuple(k) for k in DIMENSIONS}
    assert selected(GOLD_FACTS_JOB) == {tuple(k) for k in FACTS}
    assert selected(DAILY_MART_JOB) == {tuple(k) for k in DAILY}
    assert selected(MARTS_JOB) == {tuple(k) for k in MONTHLY_MARTS}
    scan = defs.resolve_job_def(SCAN_LANDING_JOB)
    assert scan.name == "scan_landing_job" and selected(SCAN_LANDING_JOB) == set()
    assert isinstance(defs.resolve_job_def(MEDALLION_JOB).partitions_def, dg.MultiPartitionsDefinition)
    assert isinstance(defs.resolve_job_def(GOLD_FACTS_JOB).partitions_def, dg.MultiPartitionsDefinition)
    assert isinstance(defs.resolve_job_def(DAILY_MART_JOB).partitions_def, dg.DailyPartitionsDefinition)
    for name in (REGISTRY_JOB, SCAN_LANDING_JOB, DIMENSIONS_JOB, MARTS_JOB):
        assert defs.resolve_job_def(name).partitions_def is None, name


def test_build_definitions_migrates_the_warehouse(defs: dg.Definitions, fresh_pg_url: str) -> None:
    import psycopg

    with psycopg.connect(fresh_pg_url) as conn:
        found = conn.execute(
            "select count(*) from information_schema.tables where table_schema in ('ops', 'gold', 'marts')"
        ).fetchone()
    assert found is not None and found[0] > 10


def test_dagster_definitions_validate(tmp_path: Path, fresh_pg_url: str) -> None:
    env = {
        **os.environ,
        "RESIGHT_HOME": str(tmp_path / "home"),
        "RESIGHT_PG_URL": fresh_pg_url,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    (tmp_path / "dagster_home").mkdir()
    (tmp_path / "dagster_home" / "dagster.yaml").write_text("")
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "resight_platform.definitions"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


# --- partition keys -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("2026-10-01|pawmart", (date(2026, 10, 1), "pawmart")),
        ("2024-02-29|a_b", (date(2024, 2, 29), "a_b")),
        ("2026-10-01|odd|name", (date(2026, 10, 1), "odd|name")),
    ],
)
def test_split_key(key: str, expected: tuple[date, str]) -> None:
    assert split_key(key) == expected


@pytest.mark.parametrize("key", ["2026-10-01", "pawmart|2026-10-01", "2026-13-01|pawmart", ""])
def test_split_key_refuses_malformed_keys(key: str) -> None:
    with pytest.raises(ValueError):
        split_key(key)


def test_split_key_matches_dagsters_multi_partition_key() -> None:
    key = dg.MultiPartitionKey({SOURCE: "pawmart", DATE: "2026-10-01"})
    assert str(key) == "2026-10-01|pawmart"
    assert split_key(key) == (date(2026, 10, 1), "pawmart")


def test_source_key_is_the_provider() -> None:
    registry = load_registry()
    for feed in FEEDS:
        assert source_key("pawmart", feed) == "pawmart"
    assert source_keys(registry) == sorted({p for p, _ in registry.sources})
    assert len(source_keys(registry)) == 40
    assert list(providers_of("pawmart", registry)) == ["pawmart"]
    assert list(providers_of("ghost_pets", registry)) == []


# --- split_by_date ------------------------------------------------------------------------------


def test_split_by_date_gives_every_key_its_rows_and_empty_frames_elsewhere() -> None:
    from datetime import date

    import polars as pl

    from resight_platform.defs.gold import split_by_date

    frame = pl.DataFrame(
        {"sale_date": [date(2026, 10, 1), date(2026, 10, 3), date(2026, 10, 1)], "net_amount": [1.0, 2.0, 3.0]}
    )
    parts = split_by_date(frame, ["2026-10-01", "2026-10-02", "2026-10-03"])
    assert list(parts) == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert parts["2026-10-01"]["net_amount"].to_list() == [1.0, 3.0]
    assert parts["2026-10-02"].height == 0
    assert parts["2026-10-02"].schema == frame.schema
    assert parts["2026-10-03"]["net_amount"].to_list() == [2.0]
