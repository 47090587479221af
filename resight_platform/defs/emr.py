"""Silver of a date range on EMR Serverless, through dagster-aws Pipes: ``emr_silver_job``.

The op submits ``engines/emr_entry.py`` as an EMR Serverless job run (``engines/emr.py`` builds
the request), waits for it, reads the job's Pipes messages from the driver's stdout in CloudWatch
Logs, and records what the cluster wrote as materialisations of ``silver/<feed>`` for each date ×
source partition, with the quarantine and per-file counts stored in ``ops`` as a run of the asset
stores them. The job is in the definitions only when ``RESIGHT_EMR_*`` is configured."""

import io
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl

from resight_platform.defs.partitions import lake_partition, source_keys, split_key
from resight_platform.engines.emr import start_job_run_request
from resight_platform.engines.emr_entry import partition_keys
from resight_platform.io.lake import read_table
from resight_platform.io.ops import known_products, record_silver, record_type_drift
from resight_platform.io.requests import meter
from resight_platform.io.spark_lake import STAGING_DIR
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource
from resight_platform.restate import quarantine_table
from resight_platform.settings import Settings
from resight_platform.sources.registry import FEEDS
from resight_platform.transforms.silver import type_drift

__all__ = [
    "EMR_SILVER_JOB",
    "EmrResource",
    "EmrSilverConfig",
    "emr_resource",
    "emr_run_config",
    "emr_silver_job",
]

EMR_SILVER_JOB = "emr_silver_job"
#: The per-file counts a partition's report carries after the file's name (``reconcile``'s columns).
_COUNTS = ("rows_in", "rows_loaded", "rows_quarantined")
#: Partitions whose quarantine rows and file counts go to ``ops`` in one transaction.
_OPS_BATCH = 500


class EmrResource(dg.ConfigurableResource):
    """An EMR Serverless application that runs the platform's Spark silver (``Settings.emr``), on
    ``endpoint_url`` (``AWS_ENDPOINT_URL``; None: AWS's). Region and credentials come from boto3's
    own chain (``AWS_REGION``/``AWS_DEFAULT_REGION``, the instance role)."""

    application_id: str
    execution_role_arn: str
    entry_point: str
    archive: str
    log_group: str
    poll_seconds: float
    timeout_minutes: int
    endpoint_url: str | None = None
    #: The deployment's Spark settings (``RESIGHT_SPARK_CONF``), passed to ``spark-submit``.
    spark_conf: dict[str, str] | None = None

    def client(self, service: str) -> Any:
        import boto3

        return meter(boto3.client(service, endpoint_url=self.endpoint_url), "emr")  # type: ignore[call-overload]

    def request(self, arguments: Sequence[str], name: str, tags: Mapping[str, str]) -> dict[str, Any]:
        """The ``StartJobRun`` request for ``arguments`` (``engines.emr.start_job_run_request``)."""
        return start_job_run_request(
            application_id=self.application_id,
            execution_role_arn=self.execution_role_arn,
            entry_point=self.entry_point,
            archive=self.archive,
            arguments=arguments,
            name=name,
            log_group=self.log_group,
            timeout_minutes=self.timeout_minutes,
            spark_conf=self.spark_conf or {},
            tags=tags,
        )


def emr_resource(settings: Settings) -> EmrResource | None:
    """The ``emr`` resource of ``settings``, or None when EMR Serverless is not configured."""
    emr = settings.emr
    if not emr.configured:
        return None
    return EmrResource(
        application_id=str(emr.application_id),
        execution_role_arn=str(emr.execution_role_arn),
        entry_point=str(emr.entry_point),
        archive=str(emr.archive),
        log_group=emr.log_group,
        poll_seconds=emr.poll_seconds,
        timeout_minutes=emr.timeout_minutes,
        endpoint_url=settings.aws_endpoint_url,
        spark_conf=dict(settings.engine.spark_conf),
    )


class EmrSilverConfig(dg.Config):
    """The range the job cleans again: business dates ``start``..``end`` (``YYYY-MM-DD``), of
    ``sources`` (empty: every registered source) and ``feeds`` (empty: every feed)."""

    start: str
    end: str
    sources: list[str] | None = None
    feeds: list[str] | None = None


def emr_run_config(
    start: date, end: date, sources: Sequence[str] | None = None, feeds: Sequence[str] | None = None
) -> dict[str, Any]:
    """``emr_silver_job``'s run config for a range (what the launchpad takes, and the CLI gives)."""
    config: dict[str, Any] = {"start": start.isoformat(), "end": end.isoformat()}
    if sources:
        config["sources"] = list(sources)
    if feeds:
        config["feeds"] = list(feeds)
    return {"ops": {"emr_silver": {"config": config}}}


def _range(config: EmrSilverConfig, known_sources: Sequence[str]) -> tuple[date, date, list[str], list[str]]:
    """The config's dates, sources and feeds, checked, with a message that names what is wrong."""
    try:
        start, end = date.fromisoformat(config.start), date.fromisoformat(config.end)
    except ValueError as error:
        raise dg.Failure(f"start and end must be dates (YYYY-MM-DD): {error}") from error
    if start > end:
        raise dg.Failure(f"start {start} is after end {end}")
    asked_sources, asked_feeds = set(config.sources or ()), set(config.feeds or ())
    sources = sorted(asked_sources) or list(known_sources)
    feeds = [feed for feed in FEEDS if feed in asked_feeds] if asked_feeds else list(FEEDS)
    unknown = sorted(asked_sources - set(known_sources)) + sorted(asked_feeds - set(FEEDS))
    if unknown:
        raise dg.Failure(f"not a registered source or feed: {', '.join(unknown)}")
    if not sources:
        raise dg.Failure("the registry has no sources")
    return start, end, sources, feeds


def _failure(emr: Any, application_id: str, job_run_id: str | None, error: Exception) -> dg.Failure:
    """The job run's end as the cluster tells it (state and ``stateDetails``), for the run's error."""
    if job_run_id is None:
        return dg.Failure(f"EMR Serverless job was not started: {error}")
    run = emr.get_job_run(applicationId=application_id, jobRunId=job_run_id)["jobRun"]
    reason = run.get("stateDetails") or "no details given"
    return dg.Failure(
        description=f"EMR Serverless job run {job_run_id} ended {run['state']}: {reason}",
        metadata={"emr_job_run_id": job_run_id, "state": run["state"], "state_details": reason},
    )


def _materialisation(report: Mapping[str, Any], job_run_id: str) -> dg.AssetMaterialization:
    return dg.AssetMaterialization(
        asset_key=dg.AssetKey(list(report["asset"])),
        partition=str(report["partition"]),
        metadata={
            "dagster/row_count": dg.MetadataValue.int(int(report["rows_loaded"])),
            "rows_in": int(report["rows_in"]),
            "rows_quarantined": int(report["rows_quarantined"]),
            "quarantined_by_rule": dg.MetadataValue.json(dict(report["quarantined_by_rule"])),
            "engine": "emr-serverless",
            "emr_job_run_id": job_run_id,
        },
    )


def _record_ops(
    warehouse: WarehouseResource, lake: StoreResource, registry: Any, feed: str, reports: Sequence[Mapping[str, Any]]
) -> pl.DataFrame:
    """The quarantine rows (from the lake, as the cluster wrote them) and per-file counts of a
    feed's partitions into ``ops``, ``_OPS_BATCH`` partitions a transaction, and the files whose
    columns changed type on the ledger, as a run of the asset stores them. Returns that type drift."""
    store = lake.store()
    counts_schema = {"_source_file": pl.String, **dict.fromkeys(_COUNTS, pl.Int64)}
    drifted: list[pl.DataFrame] = []
    with warehouse.connect() as conn:
        for first in range(0, len(reports), _OPS_BATCH):
            batch = reports[first : first + _OPS_BATCH]
            quarantined, counted = [], []
            for report in batch:
                counts = pl.DataFrame(report["files"], schema=counts_schema, orient="row")
                counted.append(counts)
                if report["rows_quarantined"]:
                    partition = lake_partition(report["partition"])
                    quarantine = read_table(store, quarantine_table(feed), [partition]).collect()
                    quarantined.append(quarantine)
                    drifted.append(type_drift(feed, quarantine, counts))
            record_silver(
                conn,
                feed=feed,
                partitions=[split_key(report["partition"]) for report in batch],
                quarantine=pl.concat(quarantined, how="diagonal_relaxed") if quarantined else pl.DataFrame(),
                reconciliation=pl.concat(counted) if counted else pl.DataFrame(schema=counts_schema),
                registry=registry,
            )
        drift = pl.concat(drifted) if drifted else type_drift(feed, pl.DataFrame(), pl.DataFrame())
        record_type_drift(conn, drift)
    return drift


@dg.op(
    out={},
    description="Clean silver of a date range again on EMR Serverless (engines/emr_entry.py, through Pipes) and"
    " record each partition the cluster wrote as a materialisation of silver/<feed>.",
)
def emr_silver(
    context: dg.OpExecutionContext,
    config: EmrSilverConfig,
    emr: EmrResource,
    registry: RegistryResource,
    warehouse: WarehouseResource,
    lake: StoreResource,
) -> Iterator[dg.AssetMaterialization]:
    from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient

    reg = registry.load()
    start, end, sources, feeds = _range(config, source_keys(reg))
    keys = partition_keys(start, end, sources)
    context.log.info(f"silver of {', '.join(feeds)} for {len(keys)} partitions ({start}..{end}) on EMR Serverless")
    store = lake.store()
    products_key = f"{STAGING_DIR}/emr-{context.run_id}/products.parquet"
    with warehouse.connect() as conn:
        products = known_products(conn, sources) if "sales" in feeds else known_products(conn, [])
    buffer = io.BytesIO()
    products.write_parquet(buffer)
    store.write_bytes(products_key, buffer.getvalue())

    client, started = emr.client("emr-serverless"), {}

    def remember(parsed: Mapping[str, Any], **_: Any) -> None:
        started["job_run_id"] = parsed.get("jobRunId")

    client.meta.events.register("after-call.emr-serverless.StartJobRun", remember)
    pipes = PipesEMRServerlessClient(
        client=client,
        message_reader=PipesCloudWatchMessageReader(client=emr.client("logs")),
        poll_interval=emr.poll_seconds,
    )
    request = emr.request(
        ["--from", start.isoformat(), "--to", end.isoformat(), "--feeds", ",".join(feeds)],
        name=f"resight-silver-{context.run_id}",
        tags={"resight/job": EMR_SILVER_JOB},
    )
    extras = {
        "lake_url": lake.url,
        "endpoint_url": lake.endpoint_url,
        "s3_max_attempts": lake.s3_max_attempts,
        "registry_dir": registry.registry_dir,
        "history_floor": registry.history_floor,
        "sources": sources,
        "products_key": products_key,
        "now": datetime.now(UTC).isoformat(),
    }
    try:
        invocation = pipes.run(context=context, start_job_run_params=request, extras=extras)  # type: ignore[arg-type]
    except RuntimeError as error:  # the client's "EMR Serverless job failed", its state in the log
        raise _failure(client, emr.application_id, started.get("job_run_id"), error) from error
    finally:
        store.delete(products_key)
    job_run_id = str(started["job_run_id"])
    reports = [m for m in invocation.get_custom_messages() if isinstance(m, Mapping) and "partition" in m]
    by_feed: dict[str, list[Mapping[str, Any]]] = {feed: [] for feed in feeds}
    for report in reports:
        by_feed[report["asset"][-1]].append(report)
    for feed in feeds:
        got = by_feed[feed]
        for report in got:
            yield _materialisation(report, job_run_id)
        drift = _record_ops(warehouse, lake, reg, feed, got)
        if drift.height:
            changed = sorted(
                {f"{c} in {f.rsplit('/', 1)[-1]}" for f, c in drift.select("_source_file", "column").iter_rows()}
            )
            context.log.warning(f"silver/{feed}: type or format changed: {', '.join(changed[:5])} (on the ledger)")
        rows = sum(int(r["rows_loaded"]) for r in got)
        quarantined = sum(int(r["rows_quarantined"]) for r in got)
        context.log.info(f"silver/{feed}: {len(got)} partitions, {rows} rows, {quarantined} quarantined (EMR)")
    missing = {feed: len(keys) - len({r["partition"] for r in by_feed[feed]}) for feed in feeds}
    if any(missing.values()):
        raise dg.Failure(
            f"EMR Serverless job run {job_run_id} succeeded but did not report every partition: missing {missing}"
            " (the driver's stdout in CloudWatch Logs holds what it sent)"
        )


@dg.job(
    name=EMR_SILVER_JOB,
    description="Silver of a date × source range cleaned again on EMR Serverless from the bronze in the lake"
    " (RESIGHT_EMR_*; docs/engines.md): the same Spark code as spark_restate_job's silver, run by the cluster;"
    " each partition it wrote recorded as a materialisation of silver/<feed>. Then run gold_facts_job for the"
    " range.",
)
def emr_silver_job() -> None:
    emr_silver()
