"""The Dagster runs on Spark give what the Polars runs gave, in the lake and in Postgres.

A generated sample (one partner per export profile: every file format, timestamp format, money
format, time zone and currency) goes through ``run_pipeline`` on Polars; then ``spark_restate_job``
(the job the UI offers for a backfill on Spark) cleans silver and builds the facts of every
partition again on Spark, from the bronze in the lake, replacing them, and the daily and monthly
marts' jobs run tagged ``resight/engine=spark``. Every silver and quarantine
partition in the lake, ``ops.quarantine``, the ledger's counts, ``gold.fact_sales`` and every mart must be
exactly what the Polars runs wrote, and the facts still equal the generator's manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import dagster as dg
import polars as pl
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import DAILY_MART_JOB, MARTS_JOB, SPARK_RESTATE_JOB
from resight_platform.defs.metadata import RANGE_END, RANGE_START
from resight_platform.io.lake import read_table
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.pipeline import run_pipeline
from resight_platform.resources import ENGINE_TAG
from resight_platform.runner import InProcess
from resight_platform.sample import generate
from resight_platform.settings import Settings
from resight_platform.sources.registry import FEEDS, load_registry
from resight_platform.transforms.marts import MART_NAMES
from resight_platform_tests.databases import temporary_database

pytestmark = pytest.mark.xdist_group("spark")

#: One partner per export profile (resight_platform_tests/transforms/conftest.py).
PROVIDERS = ["pawmart", "petopia", "chewyish", "petdirect", "northpaw_distribution", "vetcare_partners"]
DAYS = 2
START = date(2026, 10, 1)
MARTS = MART_NAMES


@dataclass
class Snapshot:
    silver: dict[str, pl.DataFrame]
    quarantine: dict[str, pl.DataFrame]
    ops_quarantine: list[tuple[Any, ...]]
    ledger: list[tuple[Any, ...]]
    facts: list[tuple[Any, ...]]
    marts: dict[str, list[tuple[Any, ...]]]


@dataclass
class Runs:
    manifest: dict[str, Any]
    pg_url: str
    on_polars: Snapshot
    on_spark: Snapshot
    spark_run: dg.DagsterRun


def _lake_table(lake_url: str, table: list[str]) -> pl.DataFrame:
    """Every partition of a lake table, its key beside its rows, in key and row order."""
    store = open_store(lake_url)
    frames = []
    for info in store.list("/".join(table) + "/"):
        if not info.key.endswith("/part-0.parquet"):
            continue
        parts = dict(p.split("=", 1) for p in info.key.split("/") if "=" in p)
        values = {"date": parts["date"], "source": parts["source"]}
        frame = read_table(store, table, [values]).collect()
        frames.append(
            frame.with_columns(pl.lit(values["date"]).alias("__date"), pl.lit(values["source"]).alias("__source"))
        )
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed").sort("__date", "__source", "_source_file", "_row_number")


def _rows(pg_url: str, query: str) -> list[tuple[Any, ...]]:
    with connect(pg_url) as conn:
        return conn.execute(query).fetchall()  # type: ignore[no-any-return]


def _snapshot(settings: Settings, pg_url: str) -> Snapshot:
    return Snapshot(
        silver={feed: _lake_table(settings.lake_url, ["silver", feed]) for feed in FEEDS},
        quarantine={feed: _lake_table(settings.lake_url, ["quarantine", feed]) for feed in FEEDS},
        ops_quarantine=_rows(
            pg_url,
            "select feed, provider, business_date, source_file, row_number, rule, raw::text from ops.quarantine"
            " order by feed, source_file, row_number",
        ),
        ledger=_rows(
            pg_url,
            "select file_key, status, rows_in, rows_loaded, rows_quarantined from ops.ingestion_ledger order by 1",
        ),
        facts=_rows(pg_url, "select * from gold.fact_sales order by sale_date, provider_key, order_id, line_no"),
        marts={name: _rows(pg_url, f"select * from marts.{name} order by 1, 2, 3, 4, 5") for name in MARTS},
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, spark: Any) -> Iterator[Runs]:
    """The sample loaded on Polars, snapshot; restated on Spark (the worker's session), snapshot."""
    home = tmp_path_factory.mktemp("resight-spark")
    settings = Settings.from_env({"RESIGHT_HOME": str(home), "RESIGHT_PARTITIONS_START": "2026-09-01"})
    generate(settings.landing_url, provider_slugs=PROVIDERS, days=DAYS, start=START, seed=18)
    manifest = json.loads((home / "manifest.json").read_text())
    for pg_url in temporary_database(pg_server_url, "spark"):
        defs = build_definitions(settings, pg_url)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_pipeline(defs, instance, landing=open_store(settings.landing_url), registry=load_registry())
            assert report.success
            on_polars = _snapshot(settings, pg_url)
            sources = sorted(PROVIDERS)
            last = START.fromordinal(START.toordinal() + DAYS - 1)
            tags = {RANGE_START: f"{START}|{sources[0]}", RANGE_END: f"{last}|{sources[-1]}"}
            runner = InProcess(defs, instance)
            outcome = runner.submit(SPARK_RESTATE_JOB, tags).result()
            assert outcome.success, outcome.failures
            spark_run = instance.get_run_by_id(outcome.run_id)
            assert spark_run is not None
            on_spark = {ENGINE_TAG: "spark"}
            days = {RANGE_START: str(START), RANGE_END: str(last), **on_spark}
            for job, job_tags in ((DAILY_MART_JOB, days), (MARTS_JOB, on_spark)):
                done = runner.submit(job, job_tags).result()
                assert done.success, done.failures
            yield Runs(manifest, pg_url, on_polars, _snapshot(settings, pg_url), spark_run)


def test_the_restate_job_ran_on_spark(runs: Runs) -> None:
    assert runs.spark_run.tags["resight/engine"] == "spark"


@pytest.mark.parametrize("feed", FEEDS)
def test_silver_and_quarantine_in_the_lake_are_what_polars_wrote(runs: Runs, feed: str) -> None:
    polars, spark = runs.on_polars, runs.on_spark
    assert polars.silver[feed].height > 0
    assert spark.silver[feed].schema == polars.silver[feed].schema
    assert spark.silver[feed].equals(polars.silver[feed])
    assert spark.quarantine[feed].equals(polars.quarantine[feed])


def test_ops_quarantine_and_the_ledger_are_unchanged(runs: Runs) -> None:
    assert runs.on_polars.ops_quarantine  # the sample breaks rules
    assert runs.on_spark.ops_quarantine == runs.on_polars.ops_quarantine
    assert runs.on_spark.ledger == runs.on_polars.ledger


@pytest.mark.parametrize("mart", MARTS)
def test_every_mart_on_spark_is_what_polars_computed(runs: Runs, mart: str) -> None:
    assert runs.on_polars.marts[mart]
    assert runs.on_spark.marts[mart] == runs.on_polars.marts[mart]


def test_the_facts_in_postgres_are_what_polars_loaded_and_match_the_manifest(runs: Runs) -> None:
    assert runs.on_spark.facts == runs.on_polars.facts
    lines, net = _rows(runs.pg_url, "select count(*), sum(net_amount) from gold.fact_sales")[0]
    assert lines == runs.manifest["sales"]["lines"]
    assert net == Decimal(runs.manifest["sales"]["net_amount"])
