"""The script an EMR Serverless job run executes (``spark-submit`` runs this file, with the
platform installed in the job's packed virtual environment): silver of a range of business dates
cleaned on the cluster's Spark from the bronze in the lake, by the same code a Spark-tagged run of
the ``silver/<feed>`` assets runs (``restate.clean_on_spark``), written to the lake in the same
layout, each partition's counts reported to Dagster through Pipes.

Arguments say what to do (``--from``, ``--to``, ``--feeds``: what an operator sees in the EMR
console); the Pipes extras say where (the lake, its endpoint, the registry, the sources, the
known products, the run's clock). Messages go to the driver's stdout, which EMR Serverless sends
to CloudWatch Logs, where Dagster's Pipes client reads them once the job run ends: one custom
message per feed and partition (Pipes' ``report_asset_materialization`` has no partition), which
the Dagster op turns into a materialisation of ``silver/<feed>`` for that partition."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import polars as pl

__all__ = ["main", "parse_arguments", "partition_keys"]


def parse_arguments(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Silver of a date range on the cluster's Spark (Dagster Pipes)")
    parser.add_argument("--from", dest="start", required=True, type=date.fromisoformat, help="first business date")
    parser.add_argument("--to", dest="end", required=True, type=date.fromisoformat, help="last business date")
    parser.add_argument("--feeds", required=True, help="comma-separated feeds, e.g. sales,catalog")
    args = parser.parse_args(argv)
    if args.start > args.end:
        parser.error(f"--from {args.start} is after --to {args.end}")
    args.feeds = [feed for feed in args.feeds.split(",") if feed]
    return args


def partition_keys(start: date, end: date, sources: Sequence[str]) -> list[str]:
    """The ``date|source`` keys of every date of ``start..end`` and every source, date by date."""
    days = (start + timedelta(days=n) for n in range((end - start).days + 1))
    return [f"{day.isoformat()}|{source}" for day in days for source in sources]


def _report(feed: str, key: str, counts: pl.DataFrame, quarantine: pl.DataFrame) -> dict[str, Any]:
    """A partition's custom message: what it wrote, and the per-file counts Dagster stores in ``ops``."""
    by_rule = dict(quarantine.group_by("rule").len().sort("rule").iter_rows()) if quarantine.height else {}
    return {
        "asset": ["silver", feed],
        "partition": key,
        "rows_in": int(counts.get_column("rows_in").sum()),
        "rows_loaded": int(counts.get_column("rows_loaded").sum()),
        "rows_quarantined": quarantine.height,
        "quarantined_by_rule": {str(rule): int(n) for rule, n in by_rule.items()},
        "files": counts.select("_source_file", "rows_in", "rows_loaded", "rows_quarantined").rows(),
    }


def main(argv: Sequence[str] | None = None) -> None:
    from dagster_pipes import open_dagster_pipes
    from pyspark.sql import SparkSession

    from resight_platform.engines.spark import BASE_CONF
    from resight_platform.io.storage import open_store
    from resight_platform.resources import load_registry_at
    from resight_platform.restate import clean_on_spark, write_quarantine
    from resight_platform.sources.registry import FEEDS

    args = parse_arguments(argv)
    unknown = sorted(set(args.feeds) - set(FEEDS))
    if unknown:
        raise SystemExit(f"unknown feeds {unknown}; feeds are {', '.join(FEEDS)}")
    with open_dagster_pipes() as pipes:
        extras = pipes.extras
        lake_url, endpoint = str(extras["lake_url"]), extras.get("endpoint_url")
        attempts = int(extras["s3_max_attempts"])
        store = open_store(lake_url, endpoint, max_attempts=attempts)
        registry = load_registry_at(
            extras.get("registry_dir"), endpoint, history_floor=date.fromisoformat(str(extras["history_floor"]))
        )
        now = datetime.fromisoformat(str(extras["now"]))
        keys = partition_keys(args.start, args.end, [str(source) for source in extras["sources"]])
        products = pl.read_parquet(io.BytesIO(store.read_bytes(str(extras["products_key"]))))
        spark: Any = SparkSession.builder.getOrCreate()  # the cluster's session (spark-submit's)
        for key, value in BASE_CONF.items():  # also submitted; set again where the session allows
            if spark.conf.isModifiable(key):
                spark.conf.set(key, value)
        for feed in args.feeds:
            pipes.log.info(f"silver/{feed}: cleaning {len(keys)} partitions ({args.start}..{args.end}) on Spark")
            cleaned = clean_on_spark(
                spark,
                lake_url,
                feed,
                keys,
                registry=registry,
                mappings=registry.mappings,
                now=now,
                products=products if feed == "sales" else None,
                endpoint_url=endpoint,
                s3_max_attempts=attempts,
            )
            rows = 0
            for key in keys:
                quarantine = cleaned.quarantine_of(key)
                write_quarantine(store, feed, key, quarantine)
                report = _report(feed, key, cleaned.counts_of(key), quarantine)
                rows += report["rows_loaded"]
                pipes.report_custom_message(report)
            spark.catalog.clearCache()
            pipes.log.info(f"silver/{feed}: {rows} rows written in {len(cleaned.uris)} partition files")


if __name__ == "__main__":
    main()
