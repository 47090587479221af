"""``gold/ml_demand_features`` on a Spark-tagged run: the facts read from the lake into Spark, the
weekly demand and the features built there, and the same table written as on a Polars run."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from polars.testing import assert_frame_equal

from resight_platform.defs.ml import FEATURES_KEY, ml_assets
from resight_platform.io.lake import LakeIOManager, read_table, write_partition
from resight_platform.io.storage import open_store
from resight_platform.resources import ENGINE_TAG, EngineResource, StoreResource
from resight_platform.transforms import gold
from resight_platform_tests.conftest import SPARK_TEST_CONF

FIRST_MONDAY = date(2026, 3, 2)
WEEKS = 4
#: (product key, category, species) of the catalog; region of each store's sales.
PRODUCTS = ((1, "food", "dog"), (2, "litter", "cat"), (3, "toys", "dog"))
REGIONS = ("West", "South")
#: The steady partner, and one that starts reporting late (outside the constant panel).
PROVIDERS = ((1, "steady"), (2, "newcomer"))


def _facts(seed: int = 18) -> dict[str, pl.DataFrame]:
    """Tens of completed and cancelled lines a day, on one day of each week (the lake's date
    partitions), from a Monday to a Sunday so the first and last weeks are complete."""
    rng = np.random.default_rng(seed)
    days = [FIRST_MONDAY, *(FIRST_MONDAY + timedelta(weeks=w, days=2) for w in range(WEEKS))]
    days.append(FIRST_MONDAY + timedelta(weeks=WEEKS - 1, days=6))
    schema = gold.empty_fact_sales().schema
    out = {}
    for day in days:
        rows = []
        for provider_key, _ in PROVIDERS:
            if provider_key == 2 and day < FIRST_MONDAY + timedelta(weeks=WEEKS - 1):
                continue
            for _ in range(int(rng.integers(20, 40))):
                product_key, _, _ = PRODUCTS[int(rng.integers(0, len(PRODUCTS)))]
                quantity = int(rng.integers(1, 6))
                rows.append(
                    {
                        "sale_date": day,
                        "provider_key": provider_key,
                        "product_key": product_key,
                        "region": REGIONS[int(rng.integers(0, len(REGIONS)))],
                        "quantity": quantity,
                        "net_amount": quantity * int(rng.integers(99, 2_999)) / 100,
                        "status": "completed" if rng.random() < 0.9 else "cancelled",
                    }
                )
        # The fact table's columns and types; those the features do not read are null.
        out[day.isoformat()] = pl.DataFrame(rows).select(
            (pl.col(name) if name in rows[0] else pl.lit(None)).cast(dtype).alias(name)
            for name, dtype in schema.items()
        )
    return out


def _lake(root: Path) -> str:
    """The facts in the lake by date × source, the two dimensions the features read."""
    store = open_store(str(root))
    for day, frame in _facts().items():
        for (provider_key,), part in frame.partition_by("provider_key", as_dict=True).items():
            source = dict(PROVIDERS)[int(provider_key)]  # type: ignore[call-overload]
            write_partition(store, ["gold", "fact_sales"], {"date": day, "source": source}, part)
    products = pl.DataFrame(PRODUCTS, schema=["product_key", "category", "species"], orient="row")
    providers = pl.DataFrame(PROVIDERS, schema=["provider_key", "provider"], orient="row")
    write_partition(store, ["gold", "dim_product"], None, products)
    write_partition(store, ["gold", "dim_provider"], None, providers)
    return str(root)


def _features(lake_url: str, tags: dict[str, str]) -> tuple[pl.DataFrame, str]:
    """The features asset materialised with ``tags`` (the dimensions read from the lake): the
    table it wrote and the engine its metadata names."""
    features, _, _ = ml_assets()
    dims = [
        dg.SourceAsset(key=["gold", name], io_manager_key="lake_io_manager") for name in ("dim_product", "dim_provider")
    ]
    resources = {
        "lake": StoreResource(url=lake_url),
        "lake_io_manager": LakeIOManager(lake_url=lake_url),
        "engine": EngineResource(engine="polars", spark_master="local[2]", spark_conf=SPARK_TEST_CONF),
    }
    result = dg.materialize([features, *dims], resources=resources, tags=tags)
    assert result.success
    (event,) = result.asset_materializations_for_node(features.op.name)
    return read_table(open_store(lake_url), FEATURES_KEY.path).collect(), str(event.metadata["engine"].value)


def test_the_features_of_a_spark_run_are_the_polars_runs(spark: Any, tmp_path: Path) -> None:
    lake_url = _lake(tmp_path / "lake")
    on_polars, engine = _features(lake_url, {})
    assert engine == "polars"
    assert on_polars.height > 0 and on_polars.get_column("week").n_unique() == WEEKS
    codegen = "spark.sql.codegen.wholeStage"
    before = spark.conf.get(codegen)
    spark.conf.set(codegen, "false")  # a few hundred rows: compiling each query costs more than running it
    try:
        on_spark, engine = _features(lake_url, {ENGINE_TAG: "spark"})
    finally:
        spark.conf.set(codegen, before)
    assert engine == "spark"
    assert_frame_equal(on_spark, on_polars, check_exact=True)
