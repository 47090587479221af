"""Partitions of the medallion assets.

Bronze and silver are partitioned by business date × source. What a "source" partition means is
decided here and nowhere else: today it is the *provider* (a few hundred partners), with per-file
and per-feed lineage in the ingestion ledger, because Dagster slows down well before 12,000 feeds ×
365 days of partitions. Gold facts are partitioned by date.
"""

from collections.abc import Iterable
from datetime import date

import dagster as dg
import polars as pl

from resight_platform.sources.registry import Registry

__all__ = [
    "DATE",
    "SOURCE",
    "SOURCE_PARTITIONS",
    "daily_partitions",
    "lake_partition",
    "medallion_partitions",
    "providers_of",
    "source_key",
    "source_key_column",
    "source_key_expr",
    "source_keys",
    "split_key",
]

DATE = "date"
SOURCE = "source"
SOURCE_PARTITIONS = dg.DynamicPartitionsDefinition(name="source")


def source_key(provider: str, feed: str) -> str:
    """The source partition a (provider, feed)'s files belong to."""
    del feed  # the source dimension is the provider; the feed is its own asset
    return provider


def source_key_column(feed: str) -> str:
    """The column of a silver or fact row of ``feed`` that holds its ``source_key``."""
    del feed
    return "provider"


def source_key_expr(feed: str) -> pl.Expr:
    """``source_key`` as a Polars expression over a frame with a ``provider`` column."""
    return pl.col(source_key_column(feed))


def lake_partition(partition_key: str) -> dict[str, str]:
    """A date × source partition key as the lake's partition values (``{"date": …, "source": …}``)."""
    day, source = split_key(partition_key)
    return {DATE: day.isoformat(), SOURCE: source}


def source_keys(registry: Registry) -> list[str]:
    """Every source partition key the registry defines."""
    return sorted({source_key(s.provider, s.feed) for s in registry.sources.values()})


def daily_partitions(start: str) -> dg.DailyPartitionsDefinition:
    return dg.DailyPartitionsDefinition(start_date=start, end_offset=1)


def medallion_partitions(start: str) -> dg.MultiPartitionsDefinition:
    return dg.MultiPartitionsDefinition({DATE: daily_partitions(start), SOURCE: SOURCE_PARTITIONS})


def split_key(partition_key: str) -> tuple[date, str]:
    """``"2026-10-01|pawmart"`` → ``(date(2026, 10, 1), "pawmart")``.

    Dagster orders a multi-partition key's dimensions by name, so ``date`` comes first.
    """
    day, source = partition_key.split("|", 1)
    return date.fromisoformat(day), source


def providers_of(source: str, registry: Registry) -> Iterable[str]:
    """The providers whose files a source partition covers."""
    return [source] if source in registry.providers else []
