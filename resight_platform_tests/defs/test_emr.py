"""``emr_silver_job`` against moto's EMR Serverless and CloudWatch Logs, with the test playing the
cluster.

Moto (the suite's server, in this process) takes the job run and answers that it succeeded at
once; it runs nothing. So the test is the cluster, and the only fake (``emr_cluster.Cluster``):
when the job is submitted it reads the job run back from moto, runs ``spark-submit`` of the entry
script with that job's parameters, arguments and driver environment (``local[1]``, the local venv
standing for the unpacked archive), and writes the driver's stdout and stderr to the log streams
EMR Serverless would, in moto's CloudWatch Logs, where Dagster's Pipes client reads them.

The bronze is the sample generator's (two partners of different export profiles, one day),
loaded and cleaned on Polars first; the job then cleans it again on Spark and every silver and
quarantine partition, ``ops.quarantine`` and the ledger must be what the Polars run wrote.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import polars as pl
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.emr import EMR_SILVER_JOB
from resight_platform.defs.jobs import MEDALLION_JOB
from resight_platform.engines.emr import PYTHON
from resight_platform.io.lake import read_table
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.pipeline import run_pipeline
from resight_platform.settings import Settings
from resight_platform.sources.registry import FEEDS, load_registry
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.emr_cluster import LOG_GROUP, ROLE, Cluster, MotoEmr, emr_application, emr_env

__all__ = ["emr_application"]  # the fixture, for pytest

pytestmark = pytest.mark.xdist_group("spark")  # the played cluster is a JVM

PROVIDERS = ["pawmart", "petopia"]
DAY = date(2026, 10, 1)


def _settings(home: Path, testbed: MotoEmr) -> Settings:
    return Settings.from_env(
        {
            "RESIGHT_HOME": str(home),
            "RESIGHT_PARTITIONS_START": "2026-09-01",
            **emr_env(testbed),
            "RESIGHT_SPARK_CONF": "spark.sql.shuffle.partitions=2",
        }
    )


def _run_config(**config: Any) -> dict[str, Any]:
    return {"ops": {"emr_silver": {"config": config}}}


def _lake(settings: Settings, table: list[str]) -> pl.DataFrame:
    """Every partition of a lake table with its key, in key and row order."""
    store = open_store(settings.lake_url, settings.aws_endpoint_url)
    frames = []
    for info in store.list("/".join(table) + "/"):
        parts = dict(p.split("=", 1) for p in info.key.split("/") if "=" in p)
        frame = read_table(store, table, [{"date": parts["date"], "source": parts["source"]}]).collect()
        frames.append(frame.with_columns(pl.lit(f"{parts['date']}|{parts['source']}").alias("__key")))
    if not frames:
        return pl.DataFrame()
    return pl.concat(frames, how="diagonal_relaxed").sort("__key", "_source_file", "_row_number")


def _ops(pg_url: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with connect(pg_url) as conn:
        quarantine = conn.execute(
            "select feed, provider, business_date, source_file, row_number, rule, raw::text from ops.quarantine"
            " order by feed, source_file, row_number"
        ).fetchall()
        ledger = conn.execute(
            "select file_key, status, rows_in, rows_loaded, rows_quarantined, schema_drift::text"
            " from ops.ingestion_ledger order by 1"
        ).fetchall()
    return quarantine, ledger


def test_silver_cleaned_on_the_cluster_equals_polars_and_is_recorded_per_partition(
    tmp_path: Path, pg_server_url: str, emr_application: MotoEmr
) -> None:
    endpoint, application = emr_application.endpoint, emr_application.application
    settings = _settings(tmp_path, emr_application)
    from resight_platform.sample import generate

    generate(settings.landing_url, provider_slugs=PROVIDERS, days=1, start=DAY, seed=18, sales_lines_per_day=300)
    cluster = Cluster(endpoint)
    cluster.install(boto3.DEFAULT_SESSION)  # type: ignore[arg-type]
    for pg_url in temporary_database(pg_server_url, "emr"):
        defs = build_definitions(settings, pg_url)
        with dg.DagsterInstance.ephemeral() as instance:
            # Only silver is compared: the pipeline stops there.
            report = run_pipeline(
                defs,
                instance,
                landing=open_store(settings.landing_url),
                registry=load_registry(),
                jobs=(MEDALLION_JOB,),
            )
            assert report.success
            polars = {table: _lake(settings, [layer, table]) for layer in ("silver",) for table in FEEDS}
            polars_quarantine = {feed: _lake(settings, ["quarantine", feed]) for feed in FEEDS}
            polars_ops = _ops(pg_url)
            assert sum(frame.height for frame in polars.values()) > 300  # a real sample, every feed's rows
            assert any(frame.height for frame in polars_quarantine.values())  # and rules broken

            result = defs.resolve_job_def(EMR_SILVER_JOB).execute_in_process(
                run_config=_run_config(start=str(DAY), end=str(DAY), sources=PROVIDERS),
                instance=instance,
                raise_on_error=False,
            )
            assert result.success, cluster.stderr[-5000:]

            # What reached moto: the application, role, entry point, arguments and settings.
            (job,) = cluster.submitted
            submit = job["jobDriver"]["sparkSubmit"]
            assert (job["applicationId"], job["executionRole"]) == (application, ROLE)
            assert submit["entryPoint"] == "s3://resight-artifacts/emr/emr_entry.py"
            assert submit["entryPointArguments"] == ["--from", str(DAY), "--to", str(DAY), "--feeds", ",".join(FEEDS)]
            parameters = submit["sparkSubmitParameters"]
            for conf in (
                "spark.archives=s3://resight-artifacts/emr/resight-venv.tar.gz#environment",
                f"spark.emr-serverless.driverEnv.PYSPARK_PYTHON={PYTHON}",
                "spark.sql.session.timeZone=UTC",
                "spark.sql.shuffle.partitions=2",
                "spark.emr-serverless.driverEnv.DAGSTER_PIPES_CONTEXT=",
                "spark.emr-serverless.driverEnv.DAGSTER_PIPES_MESSAGES=",
            ):
                assert f"--conf {conf}" in parameters
            logging = job["configurationOverrides"]["monitoringConfiguration"]["cloudWatchLoggingConfiguration"]
            assert logging["enabled"] and logging["logGroupName"] == LOG_GROUP
            assert job["tags"]["dagster/run-id"] == result.run_id

            # The lake and ops hold what the Polars run wrote, row for row.
            for feed in FEEDS:
                assert _lake(settings, ["silver", feed]).equals(polars[feed]), feed
                assert _lake(settings, ["quarantine", feed]).equals(polars_quarantine[feed]), feed
            assert _ops(pg_url) == polars_ops

            # Each feed × partition materialised by this run, with the Polars run's counts.
            events = result.get_asset_materialization_events()
            recorded = {
                (tuple(e.asset_key.path), e.partition): e.materialization.metadata for e in events if e.asset_key
            }
            keys = [f"{DAY}|{source}" for source in PROVIDERS]
            assert set(recorded) == {(("silver", feed), key) for feed in FEEDS for key in keys}
            for feed in FEEDS:
                for key in keys:
                    metadata = recorded[("silver", feed), key]
                    rows = polars[feed].filter(pl.col("__key") == key).height
                    quarantined = polars_quarantine[feed]
                    quarantined = quarantined.filter(pl.col("__key") == key) if quarantined.height else quarantined
                    assert metadata["dagster/row_count"].value == rows, (feed, key)
                    assert metadata["rows_quarantined"].value == quarantined.height, (feed, key)
                    assert metadata["rows_in"].value == rows + quarantined.height
            for feed in FEEDS:
                materialized = instance.get_materialized_partitions(dg.AssetKey(["silver", feed]))
                assert set(keys) <= materialized
            # The cluster's progress reached the run's log through Pipes.
            logs = [record.user_message for record in instance.all_logs(result.run_id)]
            assert any("silver/sales: cleaning 2 partitions" in message for message in logs)


def test_a_failed_job_run_fails_the_run_with_the_clusters_reason(
    tmp_path: Path, pg_server_url: str, emr_application: MotoEmr
) -> None:
    endpoint = emr_application.endpoint
    settings = _settings(tmp_path, emr_application)
    reason = "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
    cluster = Cluster(endpoint, fail=reason)
    cluster.install(boto3.DEFAULT_SESSION)  # type: ignore[arg-type]
    for pg_url in temporary_database(pg_server_url, "emr"):
        defs = build_definitions(settings, pg_url)
        with dg.DagsterInstance.ephemeral() as instance:
            result = defs.resolve_job_def(EMR_SILVER_JOB).execute_in_process(
                run_config=_run_config(start=str(DAY), end=str(DAY), sources=PROVIDERS, feeds=["sales"]),
                instance=instance,
                raise_on_error=False,
            )
            assert not result.success
            (failure,) = [event for event in result.all_events if event.is_step_failure]
            message = failure.step_failure_data.error.message if failure.step_failure_data.error else ""
            job_run = cluster.submitted[0]["jobRunId"]
            assert f"EMR Serverless job run {job_run} ended FAILED: {reason}" in message
            assert not result.get_asset_materialization_events()
            # The products handed to the cluster are not left behind.
            assert not list(open_store(settings.lake_url, endpoint).list(".spark-staging/"))


def test_a_bad_range_fails_before_anything_is_submitted(
    tmp_path: Path, pg_server_url: str, emr_application: MotoEmr
) -> None:
    endpoint = emr_application.endpoint
    cluster = Cluster(endpoint)
    cluster.install(boto3.DEFAULT_SESSION)  # type: ignore[arg-type]
    for pg_url in temporary_database(pg_server_url, "emr"):
        defs = build_definitions(_settings(tmp_path, emr_application), pg_url)
        job = defs.resolve_job_def(EMR_SILVER_JOB)
        for config, expected in (
            ({"start": "2026-10-02", "end": "2026-10-01"}, "start 2026-10-02 is after end 2026-10-01"),
            ({"start": "2026-10-01", "end": "2026-10-01", "sources": ["nobody"]}, "not a registered source"),
            ({"start": "2026-10-01", "end": "2026-10-01", "feeds": ["invoices"]}, "not a registered source or feed"),
            ({"start": "1 Oct", "end": "2026-10-01"}, "must be dates"),
        ):
            result = job.execute_in_process(run_config=_run_config(**config), raise_on_error=False)
            (failure,) = [event for event in result.all_events if event.is_step_failure]
            assert failure.step_failure_data.error is not None
            assert expected in failure.step_failure_data.error.message
    assert cluster.submitted == []


def test_the_job_is_defined_only_where_emr_is_configured(tmp_path: Path, pg_url: str, emr_application: MotoEmr) -> None:
    configured = build_definitions(_settings(tmp_path, emr_application), pg_url)
    assert configured.resolve_job_def(EMR_SILVER_JOB).name == EMR_SILVER_JOB
    plain = build_definitions(Settings.from_env({"RESIGHT_HOME": str(tmp_path)}), pg_url)
    assert EMR_SILVER_JOB not in {job.name for job in plain.resolve_all_job_defs()}
