"""Closing the date × source partitions a source is not expected to deliver (issue 21, point 1).

Dagster shows every date × source partition of bronze, silver and the facts without a
materialisation as *missing*: days before a partner existed, the days a weekly partner does not
deliver, feeds it does not send. Dagster 1.13 cannot remove partitions per source, so the closing
job *closes* them: a 0-row materialisation (``dagster/row_count`` 0, ``resight/closed`` = the
reason from ``sources/expected.py``) of each such partition of each date × source asset. What stays
missing is a real gap: a day a source was expected to deliver and did not.

- Which days: the registry (onboarding date, cadence, active, which feeds a provider sends) and
  the ledger's delivered days (one query, ``io.ops.delivered_days``), over the window from
  ``partitions_start`` (or ``RESIGHT_CLOSE_LOOKBACK_DAYS`` before today) to yesterday UTC.
- Which assets: every asset of the definitions on the date × source partitions, each judged for
  the feed it holds (its name, or the feeds of the date × source assets it is built from:
  ``gold/fact_sales`` → sales).
- Never over anything: a partition with any status (materialised, already closed, failed, in
  progress) is left alone, read from Dagster's partition status cache
  (``instance.get_status_by_partition``, what the UI reads), so a second run closes nothing.
- Cost: the events are stored one batch (one insert) per asset and chunk of ``CHUNK``, as the
  run's own events but without its log manager (``_store_batch``): 2,552 events/s on Postgres
  (bench/RESULTS.md, "The closing job's events stored without the run's log manager"), nearly
  all of it Dagster's serialisation and insert; the first run over a long history is the big one.
- Nothing follows a closed partition: closing runs carry ``CLOSING_RUN``, whose updates
  automation ignores (``defs/policies.py``); readers skip a partition without a file. A late file
  for a closed partition loads as any other: its materialisation replaces the closed one.

Triggers: ``close_partitions_schedule`` (``RESIGHT_CLOSE_CRON``, daily after midnight UTC) and
``closing_sensor``, which requests a run when the registry's version or the number of source
partitions changes (an onboarding: its past days are closed within the minute).
"""

import logging
import os
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry

from resight_platform.defs.jobs import CLOSE_JOB
from resight_platform.defs.partitions import SOURCE_PARTITIONS, source_key
from resight_platform.defs.policies import CLOSING_RUN
from resight_platform.defs.sensors import PRIORITY_TAG, TRIGGER_TAG
from resight_platform.io.ops import delivered_days
from resight_platform.resources import RegistryResource
from resight_platform.settings import Settings
from resight_platform.sources.expected import REASONS, days_to_close
from resight_platform.sources.registry import FEEDS, Registry

__all__ = [
    "CHUNK",
    "CLOSED",
    "CLOSE_OP",
    "CLOSE_SCHEDULE",
    "CLOSING_SENSOR",
    "build_closing",
    "closed_materializations",
    "closed_metadata",
    "closing_window",
    "date_source_feeds",
    "partitions_to_close",
]

CLOSE_OP = "close_partitions"
CLOSE_SCHEDULE = "close_partitions_schedule"
CLOSING_SENSOR = "closing_sensor"
#: Metadata of a closing materialisation: why the partition is not expected.
CLOSED = "resight/closed"
#: Events per batch (one insert): Dagster's ``DAGSTER_EVENT_BATCH_SIZE`` flushes earlier if smaller.
CHUNK = 10_000
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def closed_metadata(reason: str) -> dict[str, Any]:
    """What a closed partition's materialisation carries: no rows, and why."""
    return {CLOSED: reason, "dagster/row_count": 0}


def closed_materializations(asset: dg.AssetKey, partitions: Mapping[str, str]) -> Iterator[dg.AssetMaterialization]:
    """One closing materialisation per partition of ``partitions`` (key → reason)."""
    for key, reason in partitions.items():
        yield dg.AssetMaterialization(asset_key=asset, partition=key, metadata=closed_metadata(reason))


def date_source_feeds(
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec], partitions_def: dg.PartitionsDefinition
) -> dict[dg.AssetKey, tuple[str, ...]]:
    """Every asset on ``partitions_def`` (date × source) with the feeds it holds: its own name
    when it is a feed (``bronze/sales``), else the feeds of the date × source assets it is built
    from (``gold/fact_sales`` → sales). An asset of no feed is not closed: nothing says when it
    is expected."""
    specs: dict[dg.AssetKey, dg.AssetSpec] = {}
    for asset in assets:
        if isinstance(asset, dg.AssetsDefinition):
            for spec in asset.specs:
                if asset.partitions_def == partitions_def:
                    specs[spec.key] = spec
        elif asset.partitions_def == partitions_def:
            specs[asset.key] = asset

    def feeds(key: dg.AssetKey, seen: frozenset[dg.AssetKey]) -> tuple[str, ...]:
        if key.path[-1] in FEEDS:
            return (key.path[-1],)
        found: list[str] = []
        for dep in specs[key].deps:
            if dep.asset_key in specs and dep.asset_key not in seen:
                found += [f for f in feeds(dep.asset_key, seen | {key}) if f not in found]
        return tuple(found)

    out = {key: feeds(key, frozenset()) for key in sorted(specs, key=lambda k: k.to_user_string())}
    return {key: found for key, found in out.items() if found}


def closing_window(settings_start: str, lookback_days: int, today: date) -> tuple[date, date]:
    """The days a closing run judges: from the partitions' start (or ``lookback_days`` before
    ``today``, whichever is later) to yesterday. Today is never closed: files may still come."""
    first = date.fromisoformat(settings_start)
    if lookback_days > 0:
        first = max(first, today - timedelta(days=lookback_days))
    return first, today - timedelta(days=1)


def partitions_to_close(
    registry: Registry,
    sources: Sequence[str],
    delivered: Mapping[tuple[str, str], set[date]],
    first: date,
    last: date,
) -> dict[str, dict[str, str]]:
    """Per feed, the date × source partition keys to close (key → reason): every registered
    provider among ``sources`` (the source partitions Dagster knows), by ``days_to_close``. A
    source partition no longer in the registry is left as it is: nothing says what it expects."""
    out: dict[str, dict[str, str]] = {feed: {} for feed in FEEDS}
    for provider in sources:
        if provider not in registry.providers:
            continue
        for feed in FEEDS:
            days = days_to_close(registry.source(provider, feed), delivered.get((provider, feed), set()), first, last)
            source = source_key(provider, feed)
            # Dagster's multi-partition key: dimensions in name order, date first (partitions.split_key).
            out[feed].update({f"{day.isoformat()}|{source}": reason for day, reason in days.items()})
    return out


def _without_status(
    instance: dg.DagsterInstance, asset: dg.AssetKey, keys: Sequence[str], partitions_def: dg.PartitionsDefinition
) -> set[str]:
    """Which of ``keys`` have no status at all (not materialised, closed, failed nor in progress),
    from Dagster's partition status cache, brought up to date from the event log as the UI does."""
    if not keys:
        return set()
    with dg.partition_loading_context(dynamic_partitions_store=instance):
        statuses = instance.get_status_by_partition(asset, keys, partitions_def)
    if statuses is None:  # the asset has no event yet: nothing has a status
        return set(keys)
    return {key for key, status in statuses.items() if status is None}


def _store_batch(context: dg.OpExecutionContext, materializations: Sequence[dg.AssetMaterialization]) -> None:
    """``materializations`` stored as the run's events in one insert, without going through the
    step's log manager: the same events :func:`defs.landing._batched` yields (run id, step, job,
    as Dagster builds them in ``DagsterEvent.asset_materialization``), at about half the cost per
    event, which for the closing's hundreds of thousands of events is most of its run
    (bench/RESULTS.md, "The closing job"). Dagster internals, pinned to 1.13 in setup.py; the
    tests read the events back from the instance."""
    step = context._step_execution_context
    job, handle, node, kind = step.job_name, step.step.handle, step.step.node_handle, step.step.kind.value
    tags, pid, now = step.event_tags, os.getpid(), time.time()
    entries = [
        EventLogEntry(
            error_info=None,
            level=logging.DEBUG,
            user_message="Materialized value.",
            run_id=context.run_id,
            timestamp=now,
            step_key=step.step.key,
            job_name=job,
            dagster_event=DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                job_name=job,
                step_handle=handle,
                node_handle=node,
                step_kind_value=kind,
                logging_tags=tags,
                event_specific_data=StepMaterializationData(materialization),
                message="Materialized value.",
                pid=pid,
            ),
        )
        for materialization in materializations
    ]
    if entries:
        context.instance.event_log_storage.store_event_batch(entries)


def build_closing(
    settings: Settings,
    partitions_def: dg.PartitionsDefinition,
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
) -> tuple[dg.JobDefinition, dg.ScheduleDefinition, dg.SensorDefinition]:
    """The closing job over the date × source assets among ``assets``, its schedule and sensor."""
    feeds_of = date_source_feeds(assets, partitions_def)

    @dg.op(
        name=CLOSE_OP,
        required_resource_keys={"registry", "warehouse"},
        description="Close the date × source partitions their source is not expected to deliver: a 0-row"
        " materialisation with the reason (resight/closed); a real gap stays missing.",
    )
    def close_partitions(
        context: dg.OpExecutionContext,
    ) -> Iterator[dg.Output[None]]:
        started = time.perf_counter()
        registry = context.resources.registry.load()
        first, last = closing_window(settings.partitions_start, settings.close_lookback_days, datetime.now(UTC).date())
        assert SOURCE_PARTITIONS.name is not None
        sources = context.instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
        with context.resources.warehouse.connect() as conn:
            delivered = delivered_days(conn, first, last)
        wanted = partitions_to_close(registry, sources, delivered, first, last)
        judged = time.perf_counter()
        closed: dict[str, dict[str, int]] = {}
        for asset, feeds in feeds_of.items():
            candidates = {key: reason for feed in feeds for key, reason in wanted[feed].items()}
            open_keys = _without_status(context.instance, asset, sorted(candidates), partitions_def)
            todo = {key: candidates[key] for key in sorted(open_keys)}
            keys = list(todo)
            for at in range(0, len(keys), CHUNK):
                part = {key: todo[key] for key in keys[at : at + CHUNK]}
                _store_batch(context, list(closed_materializations(asset, part)))
            counts = Counter(todo.values())
            closed[asset.to_user_string()] = {reason: counts[reason] for reason in REASONS if counts[reason]}
            if todo:
                context.log.info(f"{asset.to_user_string()}: closed {len(todo)} partition(s) {dict(counts)}")
        total = sum(sum(by_reason.values()) for by_reason in closed.values())
        yield dg.Output(
            None,
            metadata={
                "closed": total,
                "closed_by_asset": dg.MetadataValue.json(closed),
                "first_day": first.isoformat(),
                "last_day": last.isoformat(),
                "sources": len(sources),
                "judge_seconds": round(judged - started, 3),
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    @dg.job(
        name=CLOSE_JOB,
        # After the landing runs in the queue: a closing run is never urgent.
        tags={CLOSING_RUN: "true", PRIORITY_TAG: "-1"},
        description="Close the date × source partitions their source is not expected to deliver (before"
        " onboarding, off its cadence, a feed it does not send, inactive): what stays missing is a real gap.",
    )
    def close_partitions_job() -> None:
        close_partitions()

    def in_flight(instance: dg.DagsterInstance) -> bool:
        return instance.get_runs_count(dg.RunsFilter(job_name=CLOSE_JOB, statuses=_IN_FLIGHT)) > 0

    @dg.schedule(
        name=CLOSE_SCHEDULE,
        job=close_partitions_job,
        cron_schedule=settings.close_cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Each night: close yesterday's partitions that were not expected.",
    )
    def close_partitions_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        if in_flight(context.instance):
            return dg.SkipReason("a closing run is in flight: it closes yesterday too")
        return dg.RunRequest(tags={TRIGGER_TAG: "schedule"})

    @dg.sensor(
        name=CLOSING_SENSOR,
        job=close_partitions_job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="A new registry version or new source partitions (an onboarding) → close what is not"
        " expected of them.",
    )
    def closing_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource) -> dg.SensorResult:
        """One closing run per (registry version, number of source partitions) seen; while a
        closing run is in flight, the change waits for the next tick (its run may have read the
        registry before it)."""
        assert SOURCE_PARTITIONS.name is not None
        count = len(context.instance.get_dynamic_partitions(SOURCE_PARTITIONS.name))
        state = f"{registry.load().version}|{count}"
        if context.cursor == state:
            return dg.SensorResult(skip_reason=f"registry and {count} source partitions already closed")
        if in_flight(context.instance):
            return dg.SensorResult(skip_reason="a closing run is in flight")
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=state, tags={TRIGGER_TAG: "registry"})], cursor=state
        )

    return close_partitions_job, close_partitions_schedule, closing_sensor
