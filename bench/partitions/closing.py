"""Issue 21, point 1: "closing" the partitions a provider is not expected to deliver, measured.

Dagster shows every date × provider partition without a materialisation as *missing*, including
days before a partner existed and the six days a week a weekly feed is not expected. Dagster 1.13
has no supported way to remove partitions per source; the mechanism measured here closes them with
0-row materialisations (metadata ``resight/closed`` = ``before_onboarding`` or ``not_expected``),
one batch of events per asset, so that what stays missing is a real gap.

On a fresh Dagster instance on Postgres, the platform's asset keys on the provider model
(``bench.partitions.defs.platform_defs``: 4 bronze, 4 silver, ``gold/fact_sales``), P providers × D
days: seed a year (daily feeds every day from a provider's onboarding, weekly feeds one day a week,
onboarding spread uniformly over the days, a seeded share of expected days lost as real gaps),
then time, side by side in the one run, the asset page's partition status (GraphQL, in process)
before and after closing, the closing itself (bulk, then one new day for every provider: the
nightly job's work) and the growth of ``event_logs`` and of Dagster's status cache.

    .venv/bin/python -m bench.partitions.closing                  # 3,000 providers × 365 days
    .venv/bin/python -m bench.partitions.closing --quick          # 300 × 30
    .venv/bin/python -m bench.partitions.closing --providers 3000 --days 60 --pg-url postgresql://…
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
import warnings
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
from dagster._core.events import (
    DagsterEvent,
    DagsterEventBatchMetadata,
    DagsterEventType,
    StepMaterializationData,
    generate_event_batch_id,
)
from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID

from bench.machine import machine
from bench.partitions.defs import PLATFORM, START_ENV, dynamic_partitions_name, platform_assets
from bench.partitions.run import (
    PARTITION_STATS_QUERY,
    PARTITION_STATUS_QUERY,
    _fmt,
    fresh_database,
    gql,
    graphql_context,
    postgres_instance,
    source_names,
    start_date,
    timed,
)
from resight_platform.defs.closing import CLOSED, closed_metadata
from resight_platform.defs.keys import FACT_SALES
from resight_platform.io.postgres import database_url, embedded_pg_url, stop_embedded_pg
from resight_platform.sources.expected import BEFORE_ONBOARDING, NOT_EXPECTED
from resight_platform.sources.registry import FEEDS

__all__ = [
    "BEFORE_ONBOARDING",
    "CLOSED",
    "DAILY_FEEDS",
    "NOT_EXPECTED",
    "WEEKLY_FEEDS",
    "Year",
    "main",
    "plan_year",
    "run_closing",
    "to_markdown",
]

RESULTS_PATH = Path(__file__).with_name("closing.json")
DELIVERED = "delivered"
GAP = "gap"
DAILY_FEEDS = ("sales", "customers")
WEEKLY_FEEDS = ("catalog", "stores")
STATUS_ASSETS = (dg.AssetKey(["silver", "sales"]), dg.AssetKey(["silver", "catalog"]))
BATCH_SIZE_ENV = "DAGSTER_EVENT_BATCH_SIZE"


# --- What a year looks like -------------------------------------------------------------------------


@dataclass(frozen=True)
class Year:
    """Which partitions of each feed a year holds, per state: delivered, a real gap (expected, not
    delivered), before the provider's onboarding, or not expected (a weekly feed's other days).

    Provider ``i`` onboards on day ``i × days // providers`` (uniform over the days) and delivers
    its weekly feeds on the days ``d`` with ``d % 7 == i % 7``; each expected day is lost with
    probability ``gap_rate`` (seeded), the same day for bronze and silver."""

    providers: list[str]
    dates: list[str]
    states: dict[str, dict[str, list[str]]]  # feed → state → partition keys

    def keys(self, feed: str, state: str, days: Collection[str] | None = None) -> list[str]:
        """``feed``'s partition keys in ``state``, of ``days`` or of every day."""
        keys = self.states[feed][state]
        return keys if days is None else [k for k in keys if k.split("|", 1)[0] in days]

    def fact_days(self) -> list[str]:
        """The days ``gold/fact_sales`` is built: any provider delivered sales."""
        return sorted({key.split("|", 1)[0] for key in self.states["sales"][DELIVERED]})


def plan_year(providers: int, days: int, gap_rate: float = 0.01, seed: int = 21) -> Year:
    """The partitions of ``providers`` × ``days`` ending today, by feed and state (see ``Year``)."""
    if set(DAILY_FEEDS) | set(WEEKLY_FEEDS) != set(FEEDS):
        raise RuntimeError("the benchmark's daily and weekly feeds no longer match the registry's FEEDS")
    start = start_date(days)
    dates = [(start + timedelta(days=d)).isoformat() for d in range(days)]
    names = source_names("provider", providers, providers)
    rng = random.Random(seed)
    states: dict[str, dict[str, list[str]]] = {}
    for feed in (*DAILY_FEEDS, *WEEKLY_FEEDS):
        by_state: dict[str, list[str]] = {DELIVERED: [], GAP: [], BEFORE_ONBOARDING: [], NOT_EXPECTED: []}
        for i, name in enumerate(names):
            onboarding = i * days // providers
            for d, day in enumerate(dates):
                if d < onboarding:
                    state = BEFORE_ONBOARDING
                elif feed in WEEKLY_FEEDS and d % 7 != i % 7:
                    state = NOT_EXPECTED
                else:
                    state = GAP if rng.random() < gap_rate else DELIVERED
                by_state[state].append(f"{day}|{name}")  # Dagster's multi-partition key: dimensions by name
        states[feed] = by_state
    return Year(providers=names, dates=dates, states=states)


# --- Writing batches of runless materialisations ----------------------------------------------------


@contextlib.contextmanager
def event_batches(size: int) -> Iterator[None]:
    """Dagster stores an event batch in one insert only while ``DAGSTER_EVENT_BATCH_SIZE`` is set
    (read on every event); ``resight`` sets it for the platform's processes."""
    before = os.environ.get(BATCH_SIZE_ENV)
    os.environ[BATCH_SIZE_ENV] = str(size)
    try:
        yield
    finally:
        if before is None:
            del os.environ[BATCH_SIZE_ENV]
        else:
            os.environ[BATCH_SIZE_ENV] = before


def write_materializations(
    instance: dg.DagsterInstance,
    asset: dg.AssetKey,
    partitions: Sequence[str],
    metadata: Mapping[str, Any],
    chunk: int,
) -> int:
    """``asset``'s ``partitions`` as runless materialisations, one event batch per ``chunk``.

    Dagster's public ``report_runless_asset_event`` stores one event per insert; this builds the
    same event and passes it with batch metadata, as the platform's landing run does for an op's
    events (``defs/landing._batched``), from internals of Dagster 1.13."""
    for first in range(0, len(partitions), chunk):
        part = partitions[first : first + chunk]
        batch, last = generate_event_batch_id(), len(part) - 1
        for i, key in enumerate(part):
            materialization = dg.AssetMaterialization(asset_key=asset, partition=key, metadata=dict(metadata))
            event = DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                event_specific_data=StepMaterializationData(materialization),
                job_name=RUNLESS_JOB_NAME,
            )
            instance.report_dagster_event(
                event, RUNLESS_RUN_ID, batch_metadata=DagsterEventBatchMetadata(batch, i == last)
            )
    return len(partitions)


def close(instance: dg.DagsterInstance, year: Year, chunk: int, days: Collection[str]) -> int:
    """Close ``year``'s partitions of ``days`` that are not expected, each bronze and silver
    asset's, one batch per ``chunk``."""
    written = 0
    for bronze, silver in platform_assets():
        feed = silver.path[-1]
        for reason in (BEFORE_ONBOARDING, NOT_EXPECTED):
            keys = year.keys(feed, reason, days)
            for asset in (bronze, silver):
                written += write_materializations(instance, asset, keys, closed_metadata(reason), chunk)
    return written


def onboard(instance: dg.DagsterInstance, year: Year, chunk: int) -> int:
    """A provider onboarding on the last day: registered as a source partition, and its days
    before that closed. Registering changes the source dimension's keys, which Dagster's status
    cache is keyed on (``partitions_def_id``), so the next status query rebuilds it from the
    event log."""
    name = source_names("provider", len(year.providers) + 1, len(year.providers) + 1)[-1]
    instance.add_dynamic_partitions(dynamic_partitions_name(PLATFORM), [name])
    keys = [f"{day}|{name}" for day in year.dates[:-1]]
    return sum(
        write_materializations(instance, asset, keys, closed_metadata(BEFORE_ONBOARDING), chunk)
        for pair in platform_assets()
        for asset in pair
    )


def seed(instance: dg.DagsterInstance, year: Year, chunk: int) -> int:
    """What a year of deliveries leaves in Dagster: every delivered partition of every bronze and
    silver asset, and ``gold/fact_sales`` on every day with sales."""
    written = 0
    for bronze, silver in platform_assets():
        keys = year.keys(silver.path[-1], DELIVERED)
        for asset in (bronze, silver):
            written += write_materializations(instance, asset, keys, {"dagster/row_count": 100}, chunk)
    return written + write_materializations(instance, FACT_SALES, year.fact_days(), {"dagster/row_count": 100}, chunk)


# --- What a user waits for --------------------------------------------------------------------------


def _variables(asset: dg.AssetKey) -> dict[str, Any]:
    return {"assetKey": {"path": list(asset.path)}}


def partition_status(context: Any, label: str) -> dict[str, float]:
    """The asset page's partition status of ``STATUS_ASSETS`` (seconds), keyed ``<label>_<asset>``."""
    figures: dict[str, float] = {}
    for asset in STATUS_ASSETS:
        variables = _variables(asset)
        seconds, data = timed(lambda: gql(context, PARTITION_STATUS_QUERY, variables))  # noqa: B023 (called at once)
        if data["assetNodeOrError"]["__typename"] != "AssetNode":
            raise RuntimeError(f"no partition status for {asset.to_user_string()}: {data}")
        figures[f"{label}_{asset.path[-1]}_s"] = seconds
    return figures


def missing(context: Any) -> dict[str, dict[str, int]]:
    """Per asset, Dagster's partitions, materialised and missing (neither materialised, failed nor
    in progress)."""
    counts: dict[str, dict[str, int]] = {}
    assets = [key for pair in platform_assets() for key in pair] + [FACT_SALES]
    for asset in assets:
        stats = gql(context, PARTITION_STATS_QUERY, _variables(asset))["assetNodeOrError"]["partitionStats"]
        absent = stats["numPartitions"] - stats["numMaterialized"] - stats["numFailed"] - stats["numMaterializing"]
        counts[asset.to_user_string()] = {
            "partitions": stats["numPartitions"],
            "materialized": stats["numMaterialized"],
            "missing": absent,
        }
    return counts


def table_bytes(db_url: str) -> int:
    """``event_logs`` with its indexes and TOAST."""
    with psycopg.connect(db_url) as conn:
        row = conn.execute("SELECT pg_total_relation_size('event_logs')").fetchone()
    assert row is not None
    return int(row[0])


def status_cache_bytes(db_url: str) -> dict[str, int]:
    """Size of Dagster's partition status cache (``asset_keys.cached_status_data``) per asset."""
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT asset_key, coalesce(octet_length(cached_status_data), 0) FROM asset_keys"
        ).fetchall()
    keys = {db_key: dg.AssetKey.from_db_string(db_key) for db_key, _size in rows}
    return {key.to_user_string(): int(size) for (db_key, size) in rows if (key := keys[db_key]) is not None}


# --- The run ----------------------------------------------------------------------------------------


def run_closing(
    server_url: str, providers: int, days: int, chunk: int = 10_000, gap_rate: float = 0.01
) -> dict[str, Any]:
    """Every figure for ``providers`` × ``days`` on a fresh database of ``server_url``."""
    year = plan_year(providers, days, gap_rate)
    os.environ[START_ENV] = year.dates[0]
    figures: dict[str, Any] = {"providers": providers, "days": days, "chunk": chunk, "gap_rate": gap_rate}
    figures["expected"] = {
        feed: {state: len(keys) for state, keys in by_state.items()} for feed, by_state in year.states.items()
    }
    with (
        fresh_database(server_url, "bench_closing") as db_url,
        postgres_instance(db_url) as instance,
        event_batches(chunk),
    ):
        instance.add_dynamic_partitions(dynamic_partitions_name(PLATFORM), year.providers)
        figures["seed_s"], figures["seeded_events"] = timed(lambda: seed(instance, year, chunk))

        with graphql_context(instance, PLATFORM) as context:
            figures.update(partition_status(context, "before_cold"))
            figures.update(partition_status(context, "before_warm"))
            figures["missing_before"] = missing(context)
        figures["status_cache_before_bytes"] = status_cache_bytes(db_url)
        figures["event_logs_before_bytes"] = table_bytes(db_url)

        # The bulk closes every day but the last, which the nightly run closes below.
        bulk, today = set(year.dates[:-1]), {year.dates[-1]}
        figures["close_s"], figures["closed_events"] = timed(lambda: close(instance, year, chunk, bulk))
        figures["close_events_per_s"] = figures["closed_events"] / figures["close_s"]
        figures["event_logs_after_bytes"] = table_bytes(db_url)
        with graphql_context(instance, PLATFORM) as context:
            figures.update(partition_status(context, "after_close_first"))
            figures["nightly_s"], figures["nightly_events"] = timed(lambda: close(instance, year, chunk, today))
            figures.update(partition_status(context, "after_nightly_first"))
            figures.update(partition_status(context, "after_warm"))
            figures["missing_after"] = missing(context)
        figures["status_cache_after_bytes"] = status_cache_bytes(db_url)
        figures["onboard_s"], figures["onboard_events"] = timed(lambda: onboard(instance, year, chunk))
        with graphql_context(instance, PLATFORM) as context:
            figures.update(partition_status(context, "after_onboarding_first"))
            figures.update(partition_status(context, "after_onboarding_warm"))
    return figures


def run_benchmark(server_url: str, providers: int, days: int, chunk: int, gap_rate: float) -> dict[str, Any]:
    # Pay the process's one-off costs (imports, GraphQL schema, first connections) first.
    run_closing(server_url, 3, 3, chunk, gap_rate)
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": os.getloadavg(),
        "dagster": dg.__version__,
        "figures": run_closing(server_url, providers, days, chunk, gap_rate),
    }


def to_markdown(results: dict[str, Any]) -> str:
    f = results["figures"]
    lines = [
        "| asset | partitions | materialised before | missing before | missing after | of which noise |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for asset, before in f["missing_before"].items():
        after = f["missing_after"][asset]["missing"]
        noise = (before["missing"] - after) / before["missing"] if before["missing"] else 0.0
        lines.append(
            f"| {asset} | {before['partitions']:,} | {before['materialized']:,} | {before['missing']:,} | "
            f"{after:,} | {noise:.1%} |"
        )
    lines += ["", "| figure | before closing | after closing |", "|---|---:|---:|"]
    for asset in STATUS_ASSETS:
        name, user = asset.path[-1], asset.to_user_string()
        lines += [
            f"| {user} partition status, cold: cache built from the event log (s) | "
            f"{_fmt(f[f'before_cold_{name}_s'])} | "
            f"{_fmt(f[f'after_onboarding_first_{name}_s'])} (a provider onboarded) |",
            f"| {user} partition status, warm (s) | {_fmt(f[f'before_warm_{name}_s'])} | "
            f"{_fmt(f[f'after_warm_{name}_s'])} |",
            f"| {user} first status after the bulk closing / after one nightly closing (s) | | "
            f"{_fmt(f[f'after_close_first_{name}_s'])} / {_fmt(f[f'after_nightly_first_{name}_s'])} |",
            f"| {user} status cache (bytes) | {_fmt(f['status_cache_before_bytes'].get(user, 0))} | "
            f"{_fmt(f['status_cache_after_bytes'].get(user, 0))} |",
        ]
    lines += [
        f"| event_logs (MB) | {f['event_logs_before_bytes'] / 1e6:,.1f} | {f['event_logs_after_bytes'] / 1e6:,.1f} |",
        "",
        "| cost | events | seconds | events/s |",
        "|---|---:|---:|---:|",
        f"| seed the year's deliveries | {f['seeded_events']:,} | {_fmt(f['seed_s'])} | "
        f"{f['seeded_events'] / f['seed_s']:,.0f} |",
        f"| close every day but the last (bulk) | {f['closed_events']:,} | {_fmt(f['close_s'])} | "
        f"{f['close_events_per_s']:,.0f} |",
        f"| close one new day for all providers (nightly) | {f['nightly_events']:,} | {_fmt(f['nightly_s'])} | "
        f"{f['nightly_events'] / f['nightly_s']:,.0f} |",
        f"| onboard one provider: register it, close its days before today | {f['onboard_events']:,} | "
        f"{_fmt(f['onboard_s'])} | {f['onboard_events'] / f['onboard_s']:,.0f} |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int)
    parser.add_argument("--days", type=int)
    parser.add_argument("--quick", action="store_true", help="300 providers × 30 days")
    parser.add_argument("--chunk", type=int, default=10_000, help="events per batch (default: %(default)s)")
    parser.add_argument("--gap-rate", type=float, default=0.01, help="expected days lost (default: %(default)s)")
    parser.add_argument("--pg-url", help="a Postgres server URL (default: an embedded pgserver)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    providers = args.providers or (300 if args.quick else 3000)
    days = args.days or (30 if args.quick else 365)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with contextlib.ExitStack() as stack:
        server_url = args.pg_url
        if not server_url:
            pg_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="resight-bench-pg-"))) / "data"
            stack.callback(stop_embedded_pg, pg_dir)  # runs before the directory is removed
            server_url = database_url(embedded_pg_url(pg_dir), "postgres")
        results = run_benchmark(server_url, providers, days, args.chunk, args.gap_rate)
    results["command"] = "python -m bench.partitions.closing " + " ".join(argv if argv is not None else sys.argv[1:])
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
