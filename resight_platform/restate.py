"""Silver of a run's partitions cleaned on Spark in one plan: what a ``silver/<feed>`` asset runs on
a Spark run, and what the EMR Serverless entry (``engines/emr_entry.py``) runs on the cluster.

Bronze is read from the lake as one Spark DataFrame, cleaned by the shared transforms
(``clean_feed``) and silver written back by Spark partition by partition, rows in
``(_source_file, _row_number)`` order as the Polars path writes them; partitions without rows are
emptied. The quarantine and the per-file counts are small: they come back as Polars frames per
partition key for the caller to store (the asset: the lake, ``ops``, type drift; the cluster: the
lake, and a report to Dagster)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import polars as pl

from resight_platform.defs.partitions import DATE, SOURCE, lake_partition, source_key_column
from resight_platform.engines import from_polars, to_polars
from resight_platform.io import spark_lake
from resight_platform.io.storage import DEFAULT_S3_MAX_ATTEMPTS, ObjectStore
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import Registry
from resight_platform.transforms.bronze import bronze_schema, empty_bronze
from resight_platform.transforms.silver import clean_feed, reconcile

__all__ = ["SparkSilver", "clean_on_spark", "quarantine_table", "write_quarantine"]

_KEY = "__key"


def quarantine_table(feed: str) -> list[str]:
    """Lake path of a feed's quarantined rows: ``quarantine/{feed}/date=…/source=…/``."""
    return ["quarantine", feed]


@dataclass(frozen=True)
class SparkSilver:
    """What :func:`clean_on_spark` wrote and what it hands back: the silver files' URIs, and per
    partition key (``date|source``) its per-file counts (``reconcile``) and quarantined rows."""

    uris: list[str]
    counts: dict[str, pl.DataFrame]
    quarantine: dict[str, pl.DataFrame]
    #: Empty frames of the counts' and the quarantine's columns, for a partition without rows.
    no_counts: pl.DataFrame
    no_quarantine: pl.DataFrame

    def counts_of(self, key: str) -> pl.DataFrame:
        """``rows_in``, ``rows_loaded``, ``rows_quarantined`` per file of partition ``key``."""
        return self.counts.get(key, self.no_counts)

    def quarantine_of(self, key: str) -> pl.DataFrame:
        """The quarantined rows of partition ``key`` (none: an empty frame of their columns)."""
        return self.quarantine.get(key, self.no_quarantine)


def _by_key(frame: pl.DataFrame) -> dict[str, pl.DataFrame]:
    return {str(key): part for (key,), part in frame.partition_by(_KEY, as_dict=True, include_key=False).items()}


def clean_on_spark(
    spark: Any,
    lake_url: str,
    feed: str,
    keys: Sequence[str],
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    products: Any = None,
    endpoint_url: str | None = None,
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
) -> SparkSilver:
    """Silver of ``feed`` for the partition keys ``keys`` (``date|source``) cleaned on ``spark`` from
    the bronze in the lake at ``lake_url`` and written there (``docs/engines.md``). ``products``:
    the known products whose categories judge sales lines (``known_products``; sales only).
    What the session persisted stays cached: the caller clears it once done with the result."""
    from pyspark.sql import functions as F

    where: dict[str, Any] = {"endpoint_url": endpoint_url, "s3_max_attempts": s3_max_attempts}
    parts = [lake_partition(key) for key in keys]
    raw: Any = spark_lake.read_table(spark, lake_url, ["bronze", feed], parts, **where)
    if any(column not in raw.columns for column in bronze_schema(feed)):  # no bronze file in the run
        none = empty_bronze(feed).with_columns(pl.lit(None, pl.String).alias(c) for c in (DATE, SOURCE))
        raw = from_polars(raw, none)
    result = clean_feed(feed, raw, registry=registry, mappings=mappings, now=now, products=products)
    # A partition's date and source are its rows' business date and source key.
    valid = result.valid.withColumns(
        {DATE: F.date_format(F.col("business_date"), "yyyy-MM-dd"), SOURCE: F.col(source_key_column(feed))}
    )
    uris = spark_lake.write_partitions(
        valid, lake_url, ["silver", feed], partitions=parts, order_by=("_source_file", "_row_number"), **where
    )
    owner = to_polars(raw.select("_source_file", DATE, SOURCE).distinct()).select(
        "_source_file", pl.concat_str(DATE, SOURCE, separator="|").alias(_KEY)
    )
    counts = reconcile(raw, result).join(owner, on="_source_file", how="left")
    quarantine = to_polars(result.quarantine).join(owner, on="_source_file", how="left")
    return SparkSilver(
        uris=uris,
        counts=_by_key(counts),
        quarantine=_by_key(quarantine),
        no_counts=counts.clear().drop(_KEY),
        no_quarantine=quarantine.clear().drop(_KEY),
    )


def write_quarantine(store: ObjectStore, feed: str, key: str, quarantine: pl.DataFrame) -> str:
    """Partition ``key``'s quarantined rows of ``feed`` to the lake (replaced whole; an empty frame
    empties it), as the Polars path stores them. Returns the written URI."""
    from resight_platform.io.lake import write_partition

    return write_partition(store, quarantine_table(feed), lake_partition(key), quarantine)
