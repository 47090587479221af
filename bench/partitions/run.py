"""Issue 3: Dagster's partition model at 12,000 sources, measured where a user waits.

Two models side by side, each in a fresh Dagster instance on Postgres storage (a fresh database on
the same server): the source dimension = provider (the platform's model) and = feed
(``provider__feed`` keys). For each: register the dynamic partitions, seed one day across all
sources and one source across all days as materialised (runless events on one bronze asset), then
time through Dagster's GraphQL API (in process) the asset page's partition status (cold, then
warm), launching a backfill of one day × all sources and of one source × all days (time until the
mutation returns; no daemon runs it), and the bookkeeping of materialising one partition.

    .venv/bin/python -m bench.partitions.run                      # 300 providers vs 12,000 feeds × 365 days
    .venv/bin/python -m bench.partitions.run --quick              # 300 vs 2,000 × 30 days
    .venv/bin/python -m bench.partitions.run --sources-per-model 300 12000 --days 365 --pg-url postgresql://…
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import dagster as dg
import psycopg
from psycopg import sql

from bench.machine import machine
from bench.partitions.defs import BRONZE, GOLD, SILVER, START_ENV, build_defs, dynamic_partitions_name, noop_work
from resight_platform.io.postgres import database_url, embedded_pg_url, sqlalchemy_url, stop_embedded_pg

__all__ = ["PARTITION_STATUS_QUERY", "main", "run_benchmark", "run_model", "to_markdown"]

RESULTS_PATH = Path(__file__).with_name("results.json")
T = TypeVar("T")
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}

# What the asset page's partition health bar loads (the UI's PartitionHealthQuery).
PARTITION_STATUS_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        __typename
        ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
        ... on DefaultPartitionStatuses {
          materializedPartitions materializingPartitions failedPartitions
        }
        ... on MultiPartitionStatuses {
          primaryDimensionName
          ranges {
            primaryDimStartKey primaryDimEndKey primaryDimStartTime primaryDimEndTime
            secondaryDim {
              __typename
              ... on TimePartitionStatuses { ranges { status startTime endTime startKey endKey } }
              ... on DefaultPartitionStatuses {
                materializedPartitions materializingPartitions failedPartitions
              }
            }
          }
        }
      }
    }
  }
}
"""

PARTITION_STATS_QUERY = """
query PartitionStats($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    __typename
    ... on AssetNode {
      id
      partitionStats { numMaterialized numPartitions numFailed numMaterializing }
    }
  }
}
"""

LAUNCH_BACKFILL_MUTATION = """
mutation LaunchBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on PartitionKeysNotFoundError { partitionKeys }
  }
}
"""


# --- Sizes and keys ---------------------------------------------------------------------------------


def source_names(model: str, count: int, providers: int) -> list[str]:
    """``count`` source keys: ``provider_000`` … for providers, ``provider_000__feed_0000`` … for feeds."""
    if model == "provider":
        return [f"provider_{i:03d}" for i in range(count)]
    return [f"provider_{i % providers:03d}__feed_{i // providers:04d}" for i in range(count)]


def start_date(days: int, today: date | None = None) -> date:
    """First date such that daily partitions with ``end_offset=1`` (up to today) number ``days``."""
    today = today or datetime.now(UTC).date()
    return today - timedelta(days=days - 1)


# --- Timing -----------------------------------------------------------------------------------------


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


# --- Instance and workspace -------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server_url: str, prefix: str) -> Iterator[str]:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # As the embedded server's ``dagster`` database: event commits need not wait for the WAL.
        admin.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = off").format(sql.Identifier(name)))
    try:
        yield database_url(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@contextlib.contextmanager
def postgres_instance(db_url: str) -> Iterator[dg.DagsterInstance]:
    with tempfile.TemporaryDirectory(prefix="resight-bench-dagster-") as home:
        config = {"storage": {"postgres": {"postgres_url": sqlalchemy_url(db_url)}}}
        Path(home, "dagster.yaml").write_text(json.dumps(config))  # JSON is YAML
        with dg.DagsterInstance.from_config(home) as instance:
            yield instance


@contextlib.contextmanager
def graphql_context(instance: dg.DagsterInstance, model: str) -> Iterator[Any]:
    """A GraphQL request context over an in-process code location holding ``model``'s definitions."""
    from dagster._core.test_utils import in_process_test_workspace
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

    origin = LoadableTargetOrigin(module_name="bench.partitions.defs", attribute=f"{model}_defs")
    with in_process_test_workspace(instance, origin) as context:
        yield context


def gql(context: Any, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    from dagster_graphql.test.utils import execute_dagster_graphql

    result = execute_dagster_graphql(context, query, variables)
    return dict(result.data)


# --- One model --------------------------------------------------------------------------------------


def _seed(instance: dg.DagsterInstance, asset: str, keys: Sequence[str]) -> None:
    for key in keys:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=asset, partition=key))


def _multi_key(day: str, source: str) -> str:
    return dg.MultiPartitionKey({"date": day, "source": source})


def _launch(context: Any, partition_names: list[str]) -> float:
    variables = {
        "backfillParams": {
            "partitionNames": partition_names,
            "assetSelection": [{"path": [name]} for name in (*BRONZE, *SILVER)],
            "fromFailure": False,
        }
    }
    seconds, data = timed(lambda: gql(context, LAUNCH_BACKFILL_MUTATION, variables))
    outcome = data["launchPartitionBackfill"]
    if outcome["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"backfill not launched: {outcome}")
    return seconds


def run_model(server_url: str, model: str, sources: int, days: int, providers: int) -> dict[str, Any]:
    """Every figure for one model on a fresh database of ``server_url``."""
    start = start_date(days)
    os.environ[START_ENV] = start.isoformat()
    keys = source_names(model, sources, providers)
    dates = [(start + timedelta(days=i)).isoformat() for i in range(days)]
    measured = BRONZE[0]
    figures: dict[str, Any] = {"model": model, "sources": sources, "days": days}
    with fresh_database(server_url, f"bench_{model}") as db_url, postgres_instance(db_url) as instance:
        figures["register_dynamic_partitions_s"], _ = timed(
            lambda: instance.add_dynamic_partitions(dynamic_partitions_name(model), keys)
        )
        seed = [_multi_key(dates[-2], s) for s in keys] + [_multi_key(d, keys[0]) for d in dates if d != dates[-2]]
        figures["seeded_materializations"] = len(seed)
        figures["seed_s"], _ = timed(lambda: _seed(instance, measured, seed))

        with contextlib.ExitStack() as stack:
            figures["load_code_location_s"], context = timed(
                lambda: stack.enter_context(graphql_context(instance, model))
            )
            variables = {"assetKey": {"path": [measured]}}
            figures["partition_status_cold_s"], status = timed(lambda: gql(context, PARTITION_STATUS_QUERY, variables))
            figures["partition_status_warm_s"], _ = timed(lambda: gql(context, PARTITION_STATUS_QUERY, variables))
            figures["partition_stats_s"], stats = timed(lambda: gql(context, PARTITION_STATS_QUERY, variables))
            node = status["assetNodeOrError"]
            dims = {d["name"]: len(d["partitionKeys"]) for d in node["partitionKeysByDimension"]}
            figures["partition_status_ranges"] = len(node["assetPartitionStatuses"]["ranges"])
            partition_stats = stats["assetNodeOrError"]["partitionStats"]
            figures["num_materialized"] = partition_stats["numMaterialized"]
            figures["partitions_per_bronze_silver_asset"] = partition_stats["numPartitions"]
            figures["partition_keys_by_dimension"] = dims
            gold = gql(context, PARTITION_STATS_QUERY, {"assetKey": {"path": [GOLD]}})
            figures["partitions_per_gold_asset"] = gold["assetNodeOrError"]["partitionStats"]["numPartitions"]
            figures["partitions_total"] = (
                2 * len(BRONZE) * figures["partitions_per_bronze_silver_asset"] + (figures["partitions_per_gold_asset"])
            )

            one_day = [_multi_key(dates[-1], s) for s in keys]
            one_source = [_multi_key(d, keys[-1]) for d in dates]
            figures["backfill_one_day_all_sources_partitions"] = len(one_day) * 2 * len(BRONZE)
            figures["backfill_one_day_all_sources_s"] = _launch(context, one_day)
            figures["backfill_one_source_all_days_partitions"] = len(one_source) * 2 * len(BRONZE)
            figures["backfill_one_source_all_days_s"] = _launch(context, one_source)

        figures.update(_bookkeeping(instance, model, start.isoformat(), dates, keys))
    return figures


def _bookkeeping(
    instance: dg.DagsterInstance, model: str, start: str, dates: list[str], keys: list[str], repeats: int = 3
) -> dict[str, float]:
    """``dg.materialize`` of one bronze partition minus a plain call of the same work (median)."""
    bronze = next(a for a in build_defs(model, start).assets or [] if isinstance(a, dg.AssetsDefinition))
    seconds: list[float] = []
    plain: list[float] = []
    for i in range(repeats + 1):  # the first run warms imports and caches; not counted
        key = _multi_key(dates[-1 - i % len(dates)], keys[i % len(keys)])
        started = time.perf_counter()
        result = dg.materialize([bronze], partition_key=key, instance=instance, run_config=QUIET)
        took = time.perf_counter() - started
        if not result.success:
            raise RuntimeError(f"materialising {key} failed")
        if i:
            seconds.append(took)
            plain.append(timed(noop_work)[0])
    median = statistics.median(seconds)
    return {
        "materialize_one_partition_s": median,
        "materialize_bookkeeping_s": median - statistics.median(plain),
    }


# --- The run ----------------------------------------------------------------------------------------


def run_benchmark(
    server_url: str, sources_per_model: Sequence[int], days: int, providers: int | None = None
) -> dict[str, Any]:
    """Both models' figures: ``sources_per_model`` = (providers, feeds)."""
    n_providers, n_feeds = sources_per_model
    providers = providers or n_providers
    # Pay the process's one-off costs (imports, GraphQL schema, first connections) before either
    # model is measured, so the first model's cold figures are not inflated.
    run_model(server_url, "provider", 2, 2, 2)
    models = [
        run_model(server_url, "provider", n_providers, days, providers),
        run_model(server_url, "feed", n_feeds, days, providers),
    ]
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "dagster": dg.__version__,
        "models": models,
    }


ROWS: list[tuple[str, str]] = [
    ("sources", "source keys (dynamic partitions)"),
    ("days", "dates"),
    ("partitions_per_bronze_silver_asset", "partitions per bronze/silver asset"),
    ("partitions_per_gold_asset", "partitions per gold asset"),
    ("partitions_total", "partitions over the 9 assets"),
    ("register_dynamic_partitions_s", "register dynamic partitions (s)"),
    ("seeded_materializations", "seeded materialisations (1 day × all + 1 source × all)"),
    ("seed_s", "seeding them as runless events (s)"),
    ("load_code_location_s", "load code location (s)"),
    ("partition_status_cold_s", "asset page partition status, cold (s) [target < 2]"),
    ("partition_status_warm_s", "asset page partition status, warm (s) [target < 2]"),
    ("partition_stats_s", "partitionStats (s)"),
    ("backfill_one_day_all_sources_partitions", "one day × all sources backfill: asset partitions"),
    ("backfill_one_day_all_sources_s", "one day × all sources backfill launched (s) [target < 30]"),
    ("backfill_one_source_all_days_partitions", "one source × all days backfill: asset partitions"),
    ("backfill_one_source_all_days_s", "one source × all days backfill launched (s)"),
    ("materialize_one_partition_s", "materialize one bronze partition (s, median of 3)"),
    ("materialize_bookkeeping_s", "its bookkeeping: minus a plain call (s)"),
]


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def to_markdown(results: dict[str, Any]) -> str:
    models = results["models"]
    header = "| figure | " + " | ".join(f"source = {m['model']}" for m in models) + " |"
    lines = [header, "|---|" + "---:|" * len(models)]
    for key, label in ROWS:
        lines.append(f"| {label} | " + " | ".join(_fmt(m.get(key, "")) for m in models) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources-per-model", type=int, nargs=2, metavar=("PROVIDERS", "FEEDS"))
    parser.add_argument("--days", type=int)
    parser.add_argument("--quick", action="store_true", help="300 vs 2,000 sources × 30 days")
    parser.add_argument("--pg-url", help="a Postgres server URL (default: an embedded pgserver)")
    parser.add_argument("--pg-dir", type=Path, help="embedded pgserver data dir (default: a temp dir)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    sizes = args.sources_per_model or ((300, 2000) if args.quick else (300, 12_000))
    days = args.days or (30 if args.quick else 365)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with contextlib.ExitStack() as stack:
        server_url = args.pg_url
        if not server_url:
            if args.pg_dir:
                pg_dir = args.pg_dir
            else:
                pg_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="resight-bench-pg-"))) / "data"
                stack.callback(stop_embedded_pg, pg_dir)  # runs before the directory is removed
            server_url = database_url(embedded_pg_url(pg_dir), "postgres")
        results = run_benchmark(server_url, sizes, days)
    results["command"] = "python -m bench.partitions.run " + " ".join(argv if argv is not None else sys.argv[1:])
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
