"""Silver: canonical, typed, standardised and deduplicated rows; rule breakers to quarantine."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from resight_platform.defs.bronze import RETRY
from resight_platform.defs.metadata import OWNERS, table_schema_from_model
from resight_platform.defs.partitions import source_key_expr, split_key
from resight_platform.io.ops import record_silver
from resight_platform.resources import RegistryResource, WarehouseResource
from resight_platform.schemas.silver import (
    Quarantine,
    SilverCatalog,
    SilverCustomers,
    SilverSales,
    SilverStores,
)
from resight_platform.sources.registry import FEEDS
from resight_platform.transforms.bronze import empty_bronze
from resight_platform.transforms.silver import clean_feed, reconcile

__all__ = ["SILVER_MODELS", "silver_assets", "split_by_partition"]

SILVER_MODELS: dict[str, type] = {
    "sales": SilverSales,
    "catalog": SilverCatalog,
    "stores": SilverStores,
    "customers": SilverCustomers,
}

_ROW_MEANING = {
    "sales": "one sales line item (order, line) in USD and UTC",
    "catalog": "one product a provider sells, with conformed brand, category and species",
    "stores": "one provider location with its Census region",
    "customers": "one loyalty customer of a provider",
}


def split_by_partition(frame: pl.DataFrame, partition_keys: list[str], feed: str) -> dict[str, pl.DataFrame]:
    """One frame per partition key of the run (empty where the partition has no rows)."""
    keyed = frame.with_columns(source_key_expr(feed).alias("_partition_source"))
    parts = {
        f"{day.isoformat()}|{source}": group.drop("_partition_source")
        for (day, source), group in keyed.group_by(["business_date", "_partition_source"], maintain_order=True)
    }
    empty = frame.clear()
    return {key: parts.get(key, empty) for key in partition_keys}


def _silver_asset(feed: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=f"silver_{feed}",
        group_name="silver",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=RETRY,
        ins={"bronze": dg.AssetIn(key=["bronze", feed])},
        outs={
            "silver": dg.AssetOut(
                key=["silver", feed],
                io_manager_key="lake_io_manager",
                owners=OWNERS,
                kinds={"polars", "parquet"},
                description=f"Silver {feed}: {_ROW_MEANING[feed]}.",
                metadata={"dagster/column_schema": table_schema_from_model(SILVER_MODELS[feed])},
            ),
            "quarantine": dg.AssetOut(
                key=["quarantine", feed],
                io_manager_key="lake_io_manager",
                owners=OWNERS,
                kinds={"polars", "parquet", "postgres"},
                description=f"One {feed} row that broke a rule, with the rule, its file and row number.",
                metadata={"dagster/column_schema": table_schema_from_model(Quarantine)},
            ),
        },
    )
    def silver(
        context: dg.AssetExecutionContext,
        bronze: pl.LazyFrame,
        registry: RegistryResource,
        warehouse: WarehouseResource,
    ) -> tuple[dg.Output[dict[str, pl.DataFrame]], dg.Output[dict[str, pl.DataFrame]]]:
        raw = bronze.collect()
        if not raw.columns:
            raw = empty_bronze(feed)
        result = clean_feed(feed, raw, registry=registry.load(), mappings=registry.mappings(), now=datetime.now(UTC))
        counts = reconcile(raw, result)
        keys = list(context.partition_keys)
        with warehouse.connect() as conn:
            record_silver(
                conn,
                feed=feed,
                partitions=[split_key(k) for k in keys],
                quarantine=result.quarantine,
                reconciliation=counts,
            )
        by_rule = (
            {r["rule"]: r["len"] for r in result.quarantine.group_by("rule").len().iter_rows(named=True)}
            if result.quarantine.height
            else {}
        )
        if result.quarantine.height:
            context.log.info(f"quarantined {result.quarantine.height} {feed} rows: {by_rule}")
        return (
            dg.Output(
                split_by_partition(result.valid, keys, feed),
                output_name="silver",
                metadata={
                    "dagster/row_count": result.valid.height,
                    "rows_in": raw.height,
                    "rows_quarantined": result.quarantine.height,
                },
            ),
            dg.Output(
                split_by_partition(result.quarantine, keys, feed),
                output_name="quarantine",
                metadata={
                    "dagster/row_count": result.quarantine.height,
                    "by_rule": dg.MetadataValue.json(by_rule),
                },
            ),
        )

    return silver


def silver_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_silver_asset(feed, partitions_def) for feed in FEEDS]
