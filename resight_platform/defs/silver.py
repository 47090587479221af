"""Silver: canonical, typed, standardised and deduplicated rows; rule breakers to quarantine."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from resight_platform.defs.bronze import RETRY
from resight_platform.defs.metadata import OWNERS, table_schema_from_model
from resight_platform.defs.partitions import DATE, SOURCE, source_key_expr, split_key
from resight_platform.io.lake import write_partition
from resight_platform.io.ops import record_silver
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource
from resight_platform.schemas.silver import SILVER_MODELS
from resight_platform.sources.registry import FEEDS
from resight_platform.transforms.bronze import empty_bronze
from resight_platform.transforms.silver import clean_feed, reconcile

__all__ = ["quarantine_table", "silver_assets", "split_by_partition"]


def quarantine_table(feed: str) -> list[str]:
    """Lake path of a feed's quarantined rows: ``quarantine/{feed}/date=…/source=…/``."""
    return ["quarantine", feed]


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
    @dg.asset(
        key=["silver", feed],
        group_name="silver",
        owners=OWNERS,
        kinds={"polars", "parquet"},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=RETRY,
        io_manager_key="lake_io_manager",
        ins={"bronze": dg.AssetIn(key=["bronze", feed])},
        description=f"Silver {feed}: {_ROW_MEANING[feed]}.",
        metadata={"dagster/column_schema": table_schema_from_model(SILVER_MODELS[feed])},
    )
    def silver(
        context: dg.AssetExecutionContext,
        bronze: pl.LazyFrame,
        registry: RegistryResource,
        warehouse: WarehouseResource,
        lake: StoreResource,
    ) -> dg.Output[dict[str, pl.DataFrame]]:
        raw = bronze.collect()
        if not raw.columns:
            raw = empty_bronze(feed)
        result = clean_feed(feed, raw, registry=registry.load(), mappings=registry.mappings(), now=datetime.now(UTC))
        keys = list(context.partition_keys)
        quarantine = split_by_partition(result.quarantine, keys, feed)
        store = lake.store()
        for key, frame in quarantine.items():
            day, source = split_key(key)
            write_partition(store, quarantine_table(feed), {DATE: day.isoformat(), SOURCE: source}, frame)
        with warehouse.connect() as conn:
            record_silver(
                conn,
                feed=feed,
                partitions=[split_key(k) for k in keys],
                quarantine=result.quarantine,
                reconciliation=reconcile(raw, result),
            )
        by_rule = {r["rule"]: r["len"] for r in result.quarantine.group_by("rule").len().iter_rows(named=True)}
        if by_rule:
            context.log.info(f"quarantined {result.quarantine.height} {feed} rows: {by_rule}")
        return dg.Output(
            split_by_partition(result.valid, keys, feed),
            metadata={
                "dagster/row_count": result.valid.height,
                "rows_in": raw.height,
                "rows_quarantined": result.quarantine.height,
                "quarantined_by_rule": dg.MetadataValue.json(by_rule),
                "quarantine_table": f"ops.quarantine (feed = '{feed}'); lake {'/'.join(quarantine_table(feed))}/",
            },
        )

    return silver


def silver_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_silver_asset(feed, partitions_def) for feed in FEEDS]
