"""The platform's closing job (``defs/closing.py``) end to end, measured: issue 21, point 1.

``bench.partitions.closing`` measured the mechanism (batched runless 0-row materialisations, and
what they cost the UI). This runs the job itself as it runs in production: the real definitions
on a registry of P providers, the ledger in a Postgres warehouse, a Dagster instance on Postgres
seeded with a year of deliveries as ``bench.partitions.closing.plan_year`` plans it (sales and
customers daily, catalog and stores weekly, onboarding spread over the days, 1 % of expected days
lost). It times the first closing run (every day but today), a second run (closes nothing), and
reads back how many partitions each asset leaves missing.

    .venv/bin/python -m bench.partitions.closing_job --providers 1000 --days 30
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psycopg

from bench.machine import machine
from bench.partitions.closing import (
    DAILY_FEEDS,
    DELIVERED,
    WEEKLY_FEEDS,
    Year,
    event_batches,
    plan_year,
    write_materializations,
)
from bench.partitions.run import fresh_database, postgres_instance, timed
from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import CLOSE_JOB
from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.partitions import SOURCE_PARTITIONS
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import copy_frame, database_url, embedded_pg_url, stop_embedded_pg
from resight_platform.settings import Settings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR

__all__ = ["main", "run_job"]

RESULTS_PATH = Path(__file__).with_name("closing_job.json")


def judged_gaps(year: Year) -> dict[str, int]:
    """Per feed, the planned gaps the rules must leave missing: not today's (never judged), and
    not one before the source's first delivery (with no ``onboarded``, those days are closed as
    before its onboarding)."""
    out: dict[str, int] = {}
    for feed, by_state in year.states.items():
        first: dict[str, str] = {}
        for key in by_state[DELIVERED]:
            day, provider = key.split("|", 1)
            first[provider] = min(first.get(provider, day), day)
        out[feed] = sum(
            1
            for day, provider in (key.split("|", 1) for key in by_state["gap"])
            if day != year.dates[-1] and provider in first and day > first[provider]
        )
    return out


def write_registry(directory: Path, year: Year) -> None:
    """The packaged registry's profiles and mappings, with ``year``'s providers: each sends the
    daily feeds every 24 h and the weekly ones every 168 h."""
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    providers = ["provider,name,kind,profile,timezone,currency"]
    sources = ["provider,feed,format,expected_every_hours,active"]
    for name in year.providers:
        providers.append(f"{name},{name},retail,standard_csv,America/New_York,USD")
        sources += [f"{name},{feed},,24,true" for feed in DAILY_FEEDS]
        sources += [f"{name},{feed},,168,true" for feed in WEEKLY_FEEDS]
    (directory / "providers.csv").write_text("\n".join(providers) + "\n", encoding="utf-8")
    (directory / "sources.csv").write_text("\n".join(sources) + "\n", encoding="utf-8")
    (directory / "value_maps.csv").unlink(missing_ok=True)
    (directory / "source_values.csv").unlink(missing_ok=True)


def write_ledger(pg_url: str, year: Year) -> int:
    """One loaded file per delivered (provider, feed, day) in ``ops.ingestion_ledger``."""
    rows = [
        (f"{provider}/{feed}/{day}/f.csv", provider, feed, date.fromisoformat(day))
        for feed in (*DAILY_FEEDS, *WEEKLY_FEEDS)
        for day, provider in (key.split("|", 1) for key in year.keys(feed, DELIVERED))
    ]
    frame = pl.DataFrame(
        {
            "file_key": [r[0] for r in rows],
            "checksum": ["x"] * len(rows),
            "provider": [r[1] for r in rows],
            "feed": [r[2] for r in rows],
            "business_date": [r[3] for r in rows],
            "bytes": [1] * len(rows),
            "status": ["loaded"] * len(rows),
        }
    )
    with psycopg.connect(pg_url) as conn:
        migrate(conn)
        with conn.cursor() as cur:
            copy_frame(cur, "ops", "ingestion_ledger", frame)
        conn.commit()
    return len(rows)


def seed_deliveries(instance: dg.DagsterInstance, year: Year) -> int:
    """What the landing runs left: each delivered partition of bronze and silver, and of
    ``gold/fact_sales`` (date × source) for sales, materialised with rows."""
    written = 0
    for feed in (*DAILY_FEEDS, *WEEKLY_FEEDS):
        keys = year.keys(feed, DELIVERED)
        assets = [dg.AssetKey(["bronze", feed]), dg.AssetKey(["silver", feed])] + (
            [FACT_SALES] if feed == "sales" else []
        )
        for asset in assets:
            written += write_materializations(instance, asset, keys, {"dagster/row_count": 100}, 10_000)
    return written


def _missing(instance: dg.DagsterInstance, defs: dg.Definitions, year: Year) -> dict[str, int]:
    """Per date × source asset, the partitions of the judged days (all but today) with no status."""
    out: dict[str, int] = {}
    keys = [f"{day}|{p}" for day in year.dates[:-1] for p in year.providers]
    for node in defs.resolve_asset_graph().asset_nodes:
        if node.partitions_def is None or node.key.path[0] not in ("bronze", "silver", "gold"):
            continue
        with dg.partition_loading_context(dynamic_partitions_store=instance):
            status = instance.get_status_by_partition(node.key, keys, node.partitions_def) or {}
        out[node.key.to_user_string()] = sum(1 for k in keys if status.get(k) is None)
    return out


def _output(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = event.event_specific_data.metadata  # type: ignore[union-attr]
    return {name: getattr(value, "value", value) for name, value in metadata.items()}


def run_job(server_url: str, providers: int, days: int, gap_rate: float = 0.01) -> dict[str, Any]:
    """Every figure for ``providers`` × ``days`` on fresh databases of ``server_url``."""
    year = plan_year(providers, days, gap_rate)
    figures: dict[str, Any] = {"providers": providers, "days": days, "gap_rate": gap_rate}
    figures["gaps"] = {feed: len(by_state["gap"]) for feed, by_state in year.states.items()}
    figures["gaps_judged"] = judged_gaps(year)
    with (
        tempfile.TemporaryDirectory(prefix="resight-bench-closing-") as home,
        fresh_database(server_url, "bench_close_dagster") as dagster_url,
        fresh_database(server_url, "bench_close_warehouse") as warehouse_url,
        postgres_instance(dagster_url) as instance,
        event_batches(1000),  # as resight runs Dagster
    ):
        write_registry(Path(home) / "registry", year)
        figures["ledger_rows"] = write_ledger(warehouse_url, year)
        settings = Settings.from_env(
            {
                "RESIGHT_HOME": home,
                "RESIGHT_REGISTRY_DIR": str(Path(home) / "registry"),
                "RESIGHT_PARTITIONS_START": year.dates[0],
            }
        )
        defs = build_definitions(settings, pg_url=warehouse_url)
        assert SOURCE_PARTITIONS.name is not None
        instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, year.providers)
        figures["seed_s"], figures["seeded_events"] = timed(lambda: seed_deliveries(instance, year))
        job = defs.get_job_def(CLOSE_JOB)
        for label in ("first", "second"):
            seconds, result = timed(lambda: job.execute_in_process(instance=instance))
            assert result.success
            out = _output(result)
            figures[f"{label}_run_s"] = seconds
            figures[f"{label}_closed"] = out["closed"]
            figures[f"{label}_judge_s"] = out["judge_seconds"]
            figures[f"{label}_op_s"] = out["seconds"]
            if label == "first":
                figures["closed_by_asset"] = out["closed_by_asset"]
        figures["first_events_per_s"] = figures["first_closed"] / figures["first_op_s"]
        figures["missing_after"] = _missing(instance, defs, year)
    return figures


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=1000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--gap-rate", type=float, default=0.01)
    parser.add_argument("--pg-url", help="a Postgres server URL (default: an embedded pgserver)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    with contextlib.ExitStack() as stack:
        server_url = args.pg_url
        if not server_url:
            pg_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="resight-bench-pg-"))) / "data"
            stack.callback(stop_embedded_pg, pg_dir)
            server_url = database_url(embedded_pg_url(pg_dir), "postgres")
        started = datetime.now(UTC)
        load = os.getloadavg()
        figures = run_job(server_url, args.providers, args.days, args.gap_rate)
    results = {
        "date": started.isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average": [load, os.getloadavg()],
        "dagster": dg.__version__,
        "command": "python -m bench.partitions.closing_job " + " ".join(argv if argv is not None else sys.argv[1:]),
        "figures": figures,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(figures, indent=2))
    return results


if __name__ == "__main__":
    main()
