"""Retention and compaction as a daily, partitioned job (``resight_platform/retention.py``,
``io/compact.py``; ``docs/retention.md``).

The job's partition is the day it runs as of: its cutoffs count back from that date, so a missed
day is run again for its own date, and a run for an earlier date deletes no more than that day
would have. Its runs carry ``resight/job=retention_job`` for the run queue's tag limits."""

from datetime import UTC, date, datetime, time, timedelta

import dagster as dg

from resight_platform.io.compact import compact_table
from resight_platform.resources import StoreResource, WarehouseResource
from resight_platform.retention import RetentionStores, apply_retention, plan_retention
from resight_platform.settings import RetentionSettings
from resight_platform.sources.registry import FEEDS

__all__ = ["RETENTION_JOB", "RETENTION_SCHEDULE", "RETENTION_TAGS", "build_retention"]

RETENTION_JOB = "retention_job"
RETENTION_SCHEDULE = "retention_schedule"
#: What the retention job's store requests are counted for (``io/requests.py``), whichever store.
RETENTION_COMPONENT = "retention"
#: One retention run at a time (deploy/dagster.yaml's ``tag_concurrency_limits`` key on it).
RETENTION_TAGS = {"resight/job": RETENTION_JOB}
#: The lake tables whose partition files compaction looks at.
COMPACTED_TABLES = (
    *(f"{layer}/{feed}/" for layer in ("bronze", "silver", "quarantine") for feed in FEEDS),
    "gold/fact_sales/",
)


def build_retention(
    policy: RetentionSettings, daily: dg.PartitionsDefinition
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition]:
    """The retention job (retire, then compact) over ``daily`` partitions and its schedule."""

    @dg.op(
        description="Delete what retention retires (landing, bronze, silver, quarantine, dead letters), each"
        " deletion recorded in ops.retention_log first."
    )
    def retire(
        context: dg.OpExecutionContext,
        landing: StoreResource,
        lake: StoreResource,
        dead_letter: StoreResource,
        warehouse: WarehouseResource,
    ) -> dict[str, int]:
        as_of = date.fromisoformat(context.partition_key)
        stores = RetentionStores(
            *(store.store(component=RETENTION_COMPONENT) for store in (landing, lake, dead_letter))
        )
        with warehouse.connect() as conn:
            plan = plan_retention(conn, stores, policy, as_of)
            report = apply_retention(conn, stores, plan, run_id=context.run_id, now=datetime.now(UTC))
        layers = report.by_layer()
        for layer, counts in layers.items():
            context.log.info(
                f"{layer}: {counts['objects']} object(s), {counts['bytes']} bytes, {counts['rows']} row(s)"
            )
        summary = {
            "deleted": len(report.deleted),
            "bytes": sum(c["bytes"] for c in layers.values()),
            "kept_past_cutoff": sum(plan.kept.values()),
            "list_requests": plan.list_requests,
        }
        context.add_output_metadata(
            {**summary, "layers": dg.MetadataValue.json(layers), "kept": dg.MetadataValue.json(plan.as_dict()["kept"])}
        )
        return summary

    @dg.op(description="Rewrite partition files written since the last pass that hold many small row groups.")
    def compact(context: dg.OpExecutionContext, retired: dict[str, int], lake: StoreResource) -> dict[str, int]:
        del retired  # runs after retirement: nothing is compacted that is about to go
        as_of = date.fromisoformat(context.partition_key)
        since = datetime.combine(as_of - timedelta(days=2), time(), tzinfo=UTC)
        store = lake.store(component=RETENTION_COMPONENT)
        results = [
            result
            for table in COMPACTED_TABLES
            for result in compact_table(
                store,
                table,
                row_group_rows=policy.compact_row_group_rows,
                min_row_groups=policy.compact_min_row_groups,
                modified_since=since,
            )
        ]
        done = [r for r in results if r.compacted]
        for r in results:
            if r.skipped:
                context.log.warning(f"{r.key}: {r.skipped}")
        summary = {
            "files_looked_at": len(results),
            "files_compacted": len(done),
            "row_groups_before": sum(r.row_groups_before for r in done),
            "row_groups_after": sum(r.row_groups_after for r in done),
        }
        context.add_output_metadata(dict(summary))
        return summary

    @dg.job(
        name=RETENTION_JOB,
        partitions_def=daily,
        tags=RETENTION_TAGS,
        description="Daily: retire what each layer no longer keeps (RESIGHT_RETAIN_*), then compact small row groups.",
    )
    def retention_job() -> None:
        compact(retire())

    @dg.schedule(
        name=RETENTION_SCHEDULE,
        job=retention_job,
        cron_schedule=policy.schedule,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Retention and compaction once a day (RESIGHT_RETENTION_SCHEDULE), as of the day it runs.",
    )
    def retention_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        moment = context.scheduled_execution_time or datetime.now(UTC)
        day = moment.astimezone(UTC).date().isoformat()
        return dg.RunRequest(run_key=f"retention-{day}", partition_key=day, tags=RETENTION_TAGS)

    return retention_job, retention_schedule
