"""Failed runs mark their partitions failed: the sensor that makes the partitions view say so.

Dagster's partition status marks a partition *failed* when a run planned it (an
``ASSET_MATERIALIZATION_PLANNED`` event for that partition) and ended in failure without
materialising it. An asset run records its plan as one event per asset carrying the run's
partition subset (``DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS``, which ``resight`` sets: one
event instead of one per partition for a backfill of thousands), and Dagster 1.13's instance never
reads a subset back as failed partitions: a failed range run left its partitions showing
materialised or missing (issue 21). The landing run over a set of partitions marks what it did not
write when it fails (``defs/landing.py``); a run killed outright, or any asset run over date ×
source or day partitions, is this sensor's.

Each tick reads the runs that failed since its cursor (the storage id of the last failure handled)
and, for each, reports under that run's id a planned materialisation for every partition it meant
to write (its range or its set, of each partitioned asset it targeted) that it did not materialise,
has no planned event of its own already, and that no other run materialised since it started (a
later success must not be marked failed again). A later run that writes the partition clears the
mark, as Dagster's own marks are cleared.

Cost: Postgres stores planned events one insert each (~7 ms), so a tick marks at most
``MAX_MARKS_PER_TICK`` partitions and takes up the rest of a large failed backfill at the next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

import dagster as dg
from dagster._core.events import AssetMaterializationPlannedData, DagsterEvent

from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.metadata import run_partition_range, run_partition_set
from resight_platform.defs.policies import FACTS_IN_RUN

__all__ = ["FAILED_PARTITIONS_SENSOR", "MAX_MARKS_PER_TICK", "failed_partitions_sensor", "unwritten_partitions"]

FAILED_PARTITIONS_SENSOR = "failed_partitions_sensor"
#: Planned events written per tick at most (~7 ms each: ~35 s, within a sensor's 60 s deadline).
MAX_MARKS_PER_TICK = 5000
#: Failed runs read per tick.
_RUNS = 100


def _planned(
    run: dg.DagsterRun, partitions_of: Mapping[dg.AssetKey, dg.PartitionsDefinition], instance: dg.DagsterInstance
) -> dict[dg.AssetKey, list[str]]:
    """The partitions each partitioned asset of ``run`` was to write: a landing run's set (from its
    config), or the run's partition or range (from its tags) for each asset it selected."""
    partitions = run_partition_set(run.run_config)
    if partitions is not None:
        planned = {
            dg.AssetKey([layer, feed]): sorted(set(keys))
            for feed, keys in partitions.items()
            if keys
            for layer in ("bronze", "silver")
        }
        if run.tags.get(FACTS_IN_RUN) == "true" and partitions.get("sales"):
            planned[FACT_SALES] = sorted(set(partitions["sales"]))
        return planned
    bounds = run_partition_range(run.tags)
    if bounds is None or not run.asset_selection:
        return {}
    out: dict[dg.AssetKey, list[str]] = {}
    for key in sorted(run.asset_selection, key=lambda k: k.to_user_string()):
        partitions_def = partitions_of.get(key)
        if partitions_def is None:
            continue
        start, end = bounds
        try:
            with dg.partition_loading_context(dynamic_partitions_store=instance):
                keys = partitions_def.get_partition_keys_in_range(dg.PartitionKeyRange(start, end))
        except Exception:  # not this asset's partitions (a mart's day in a date × source run)
            continue
        out[key] = list(keys)
    return out


def _recorded(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> set[tuple[dg.AssetKey, str]]:
    """The (asset, partition) pairs of ``run_id``'s events of ``kind``."""
    out: set[tuple[dg.AssetKey, str]] = set()
    cursor = None
    while True:
        connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=kind, limit=1000)
        for record in connection.records:
            event = record.event_log_entry.dagster_event
            if event is not None and event.asset_key is not None and event.partition is not None:
                out.add((event.asset_key, event.partition))
        if not connection.has_more:
            return out
        cursor = connection.cursor


def _materialized_since(
    instance: dg.DagsterInstance, key: dg.AssetKey, partitions: Sequence[str], since: float, run_id: str
) -> set[str]:
    """Which of ``partitions`` another run materialised after ``since``."""
    out: set[str] = set()
    for chunk in (partitions[i : i + 1000] for i in range(0, len(partitions), 1000)):
        cursor = None
        while True:
            result = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, asset_partitions=list(chunk), after_timestamp=since),
                limit=1000,
                cursor=cursor,
            )
            out.update(
                str(r.partition_key) for r in result.records if r.partition_key is not None and r.run_id != run_id
            )
            if not result.has_more:
                break
            cursor = result.cursor
    return out


def unwritten_partitions(
    instance: dg.DagsterInstance, run: dg.DagsterRun, partitions_of: Mapping[dg.AssetKey, dg.PartitionsDefinition]
) -> dict[dg.AssetKey, list[str]]:
    """The partitions a failed ``run`` was to write and did not, not already marked and not
    written since by another run."""
    planned = _planned(run, partitions_of, instance)
    if not planned:
        return {}
    done = _recorded(instance, run.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION)
    done |= _recorded(instance, run.run_id, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    record = instance.get_run_record_by_id(run.run_id)
    since = record.start_time if record is not None and record.start_time else 0.0
    out = {}
    for key, keys in planned.items():
        left = [k for k in keys if (key, k) not in done]
        if left:
            later = _materialized_since(instance, key, left, since, run.run_id)
            left = [k for k in left if k not in later]
        if left:
            out[key] = left
    return out


def mark_failed(
    instance: dg.DagsterInstance, run: dg.DagsterRun, unwritten: Mapping[dg.AssetKey, Iterable[str]]
) -> int:
    """Report ``unwritten``'s partitions as planned by the failed ``run``; how many."""
    n = 0
    for key, keys in unwritten.items():
        for partition in keys:
            event = DagsterEvent.build_asset_materialization_planned_event(
                run.job_name, "", AssetMaterializationPlannedData(key, partition=partition)
            )
            instance.report_dagster_event(event, run.run_id, logging.DEBUG)
            n += 1
    return n


@dg.sensor(
    name=FAILED_PARTITIONS_SENSOR,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A failed run's partitions it did not write → failed in the partitions view (Dagster marks a range"
    " run's only as missing).",
)
def failed_partitions_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
    instance = context.instance
    repository = context.repository_def
    if context.cursor is None:  # the first evaluation starts now: history is not re-marked
        start = instance.event_log_storage.get_maximum_record_id() or 0
        return dg.SensorResult(cursor=str(start), skip_reason=f"marking runs that fail after event {start}")
    partitions_of: dict[dg.AssetKey, dg.PartitionsDefinition] = {}
    if repository is not None:
        for node in repository.asset_graph.asset_nodes:
            if node.partitions_def is not None:
                partitions_of[node.key] = node.partitions_def
    after = int(context.cursor)
    failures = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=_RUNS,
        ascending=True,
    ).records
    marked, cursor = 0, after
    for record in failures:
        run = instance.get_run_by_id(record.run_id)
        if run is not None:
            unwritten = unwritten_partitions(instance, run, partitions_of)
            count = sum(len(keys) for keys in unwritten.values())
            if marked and marked + count > MAX_MARKS_PER_TICK:
                break  # the rest next tick (this run's marks are not half written)
            keep = dict(unwritten)
            if count > MAX_MARKS_PER_TICK:  # one huge backfill: the first partitions now, the others next tick
                keep, budget = {}, MAX_MARKS_PER_TICK
                for key, keys in unwritten.items():
                    keep[key], budget = list(keys)[:budget], budget - min(budget, len(keys))
            done = mark_failed(instance, run, keep)
            marked += done
            if done:
                context.log.info(f"run {run.run_id}: {done} partition(s) it did not write marked failed")
            if done < count:
                break  # the cursor stays: the rest of this run next tick (what is marked is skipped)
        cursor = record.storage_id
    return dg.SensorResult(
        cursor=str(cursor),
        skip_reason=None if marked else f"{len(failures)} failed run(s), no partition to mark",
    )
