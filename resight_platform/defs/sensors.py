"""Sensors: the landing sensor that loads new partner files, and the automation sensor after it.

The landing sensor sees what landed (``io/watch.py``: what a tick lists and how a file's identity is
decided; on S3 with ``RESIGHT_LANDING_QUEUE_URL``, ``io/events.py``: the bucket's notifications from
SQS, the waiting list and a slow sweep instead of a listing per source), registers new providers as
source partitions, and requests a few runs per tick: each reads bronze and silver of a set of date ×
source partitions for the feeds that have files (``landing_partitions_job``; and builds their facts
when their sources sent only sales), and a dead-letter run takes the keys that break the contract.
Files it requested are ``queued`` in the ledger with their run's key. The rest of gold and the marts
follow through declarative automation (``defs/policies.py``), evaluated every few seconds by
``automation_sensor``.
``registry_sensor`` runs ``ops/sources`` again when the registry's version changes, so the UI shows
the registry in use.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from datetime import UTC, date, datetime

import dagster as dg

from resight_platform.defs.jobs import LANDING_SET_JOB, REGISTRY_JOB, SCAN_LANDING_JOB
from resight_platform.defs.metadata import RUN_KEY_TAG, run_partition_range, run_partition_set, set_run_config
from resight_platform.defs.ops import LANDING_CONTRACT_CHECK, LANDING_ZONE
from resight_platform.defs.partitions import DATE, SOURCE, SOURCE_PARTITIONS, source_key, source_keys, split_key
from resight_platform.defs.policies import FACTS_IN_RUN, SILVER_IN_RUN
from resight_platform.io.events import Arrivals, receive_arrivals
from resight_platform.io.ops import (
    QueuedFile,
    ledger_entries,
    queue_files,
    record_etags,
    update_waiting,
)
from resight_platform.io.storage import S3Store
from resight_platform.io.watch import (
    Area,
    Batch,
    Busy,
    Cell,
    Refused,
    TickPlan,
    WatchCursor,
    WatchSettings,
    list_landing,
    plan_tick,
    retired_candidates,
    run_key_of,
)
from resight_platform.resources import LandingQueueResource, RegistryResource, StoreResource, WarehouseResource
from resight_platform.retention import retired_partitions
from resight_platform.settings import Settings

__all__ = [
    "LANDING_PRIORITY",
    "LANDING_SENSOR",
    "PRIORITY_TAG",
    "REGISTRY_SENSOR",
    "TRIGGER_TAG",
    "automation_sensor",
    "build_landing_sensor",
    "busy_partitions",
    "registry_sensor",
    "run_requests",
    "tick_budget",
]

LANDING_SENSOR = "landing_sensor"
AUTOMATION_SENSOR = "automation_sensor"
REGISTRY_SENSOR = "registry_sensor"
TRIGGER_TAG = "resight/trigger"
#: Dagster's run-queue priority tag (higher first, default 0) and the landing runs' value.
PRIORITY_TAG = "dagster/priority"
LANDING_PRIORITY = "1"
#: Runs waiting for a slot. A STARTING run has its slot (its worker is starting, seconds on a busy
#: machine): the next run may be requested then, so its own start overlaps.
_PENDING = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED]
_IN_FLIGHT = [*_PENDING, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


#: What ``fact_sales`` joins: the landing run builds facts only once all of them exist.
_DIMENSIONS = [dg.AssetKey(["gold", name]) for name in ("dim_provider", "dim_product", "dim_store", "dim_customer")]


def _partition_key(cell: Cell) -> str:
    day, source = cell
    return str(dg.MultiPartitionKey({DATE: day.isoformat(), SOURCE: source}))


def _load_request(batch: Batch, with_facts: bool) -> dg.RunRequest:
    """A run of the landing set job over the batch's partitions: per feed, the partitions with a
    file of it. Sales alone change no dimension: their facts come in the same run once the
    dimensions exist (one run start, not two; bench/RESULTS.md); with catalog, stores or customers
    files, automation builds the facts after the dimensions it rebuilds."""
    facts = with_facts and batch.facts
    partitions = {feed: [_partition_key(cell) for cell in cells] for feed, cells in batch.cells_by_feed().items()}
    tags = {
        TRIGGER_TAG: "landing",
        "resight/files": str(len(batch.files)),
        "resight/partitions": str(len(batch.cells)),
        SILVER_IN_RUN: "true",
        # Ahead of automation and backfills in the run queue: new files are what the latency
        # target is about; a mart refresh or a year of history can start a few seconds later.
        PRIORITY_TAG: LANDING_PRIORITY,
    }
    if facts:
        tags[FACTS_IN_RUN] = "true"
    return dg.RunRequest(
        run_key=batch.run_key, job_name=LANDING_SET_JOB, run_config=set_run_config(partitions, facts), tags=tags
    )


def tick_budget(watch: WatchSettings, pending: int) -> WatchSettings:
    """``watch`` with the runs this tick may request: none while ``max_pending_runs`` of the
    sensor's runs wait in the run queue for a slot (``pending``: queued or not started), else up to
    ``max_runs_per_tick``.

    A run reads every file of its partitions when it starts, but its partitions are fixed when it is
    requested: a run requested on every tick for what arrived since the last waits in the queue
    with a few files each. Holding back while one waits makes the files of other partitions that
    arrive meanwhile wait in the landing zone and go together in the next run, requested as soon
    as the waiting one has a slot: one run per slot turn rather than a queued run per tick
    (bench/RESULTS.md, "Fewer, fuller runs").
    """
    runs = watch.max_runs_per_tick if pending < watch.max_pending_runs else 0
    return dataclasses.replace(watch, max_runs_per_tick=runs)


def _dead_letter_key(refused: list[Refused]) -> str:
    return run_key_of("dead-letter", (r.info for r in refused))


def _dead_letter_request(refused: list[Refused], run_key: str, partitions_start: str) -> dg.RunRequest:
    keys = [r.info.key for r in refused]
    return dg.RunRequest(
        run_key=run_key,
        job_name=SCAN_LANDING_JOB,
        run_config={"ops": {"scan_landing_op": {"config": {"keys": keys, "partitions_start": partitions_start}}}},
        tags={TRIGGER_TAG: "landing", "resight/files": str(len(keys))},
    )


def run_requests(
    plan: TickPlan, partitions_start: str, dead_letter_keys: list[str], with_facts: bool = True
) -> list[dg.RunRequest]:
    """The runs a tick's plan asks for: one per batch, one per chunk of refused keys."""
    return [
        *(_load_request(batch, with_facts) for batch in plan.batches),
        *(
            _dead_letter_request(chunk, key, partitions_start)
            for chunk, key in zip(plan.refused, dead_letter_keys, strict=True)
        ),
    ]


def _queued(plan: TickPlan, dead_letter_keys: list[str]) -> list[QueuedFile]:
    rows = [
        QueuedFile(info.key, info.etag, info.size, landing.provider, landing.feed, landing.date, batch.run_key)
        for batch in plan.batches
        for info, landing in batch.files
    ]
    for chunk, run_key in zip(plan.refused, dead_letter_keys, strict=True):
        rows.extend(QueuedFile(r.info.key, r.info.etag, r.info.size, None, None, None, run_key) for r in chunk)
    return rows


def _refusal_event(plan: TickPlan) -> dg.AssetCheckEvaluation:
    refused = [r for chunk in plan.refused for r in chunk]
    reasons = Counter(r.code for r in refused)
    sample = "\n".join(f"| `{r.info.key[:120]}` | {r.code} | {r.detail} |" for r in refused[:20])
    return dg.AssetCheckEvaluation(
        asset_key=LANDING_ZONE,
        check_name=LANDING_CONTRACT_CHECK,
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "refused_files": len(refused),
            "by_reason": dg.MetadataValue.json(dict(reasons)),
            "files": dg.MetadataValue.md("| key | reason | detail |\n|---|---|---|\n" + sample),
        },
    )


def busy_partitions(instance: dg.DagsterInstance) -> Busy:
    """The date × source partitions of runs in flight (any job, queued or started): a set run's
    exact partitions, from its run config; a range run's rectangle, from its tags."""
    cells: set[Cell] = set()
    areas: list[Area] = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=_IN_FLIGHT)):
        partitions = run_partition_set(run.run_config)
        if partitions is not None:
            cells.update(split_key(key) for keys in partitions.values() for key in keys)
            continue
        bounds = run_partition_range(run.tags)
        if bounds is None or "|" not in bounds[0] or "|" not in bounds[1]:
            continue  # not a run over date × source partitions (a mart's day or month, an op job)
        (first_day, first_source), (last_day, last_source) = split_key(bounds[0]), split_key(bounds[1])
        areas.append((first_day, last_day, first_source, last_source))
    return Busy(cells=frozenset(cells), areas=tuple(areas))


def _launched(instance: dg.DagsterInstance, run_keys: set[str]) -> set[str]:
    """Which of ``run_keys`` have a run (in any state)."""
    if not run_keys:
        return set()
    runs = instance.get_runs(filters=dg.RunsFilter(tags={RUN_KEY_TAG: sorted(run_keys)}))
    return {run.tags[RUN_KEY_TAG] for run in runs if RUN_KEY_TAG in run.tags}


def build_landing_sensor(
    partitions_start: str,
    jobs: list[dg.UnresolvedAssetJobDefinition | dg.JobDefinition],
    settings: WatchSettings | None = None,
) -> dg.SensorDefinition:
    """The landing sensor for partitions starting at ``partitions_start``, requesting ``jobs``: the
    runs it asks for are of ``LANDING_SET_JOB`` and ``SCAN_LANDING_JOB`` (the dead-letter run)."""
    watch = settings or Settings.from_env().watch
    first_day = date.fromisoformat(partitions_start)

    @dg.sensor(
        name=LANDING_SENSOR,
        jobs=jobs,
        minimum_interval_seconds=5,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="New and changed partner files → bronze and silver runs over sets of partitions (batched);"
        " refused files → dead-letter.",
    )
    def landing_sensor(
        context: dg.SensorEvaluationContext,
        landing: StoreResource,
        landing_queue: LandingQueueResource,
        warehouse: WarehouseResource,
        registry: RegistryResource,
    ) -> dg.SensorResult:
        started = time.perf_counter()
        now = datetime.now(UTC)
        today = now.date()
        reg = registry.load()
        cursor = WatchCursor.loads(context.cursor)
        store = landing.store(component=LANDING_SENSOR)  # its requests counted apart from bronze's
        instance = context.instance

        assert SOURCE_PARTITIONS.name is not None
        existing = instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
        known = set(existing)
        new_sources = [key for key in source_keys(reg) if key not in known]
        if new_sources:
            # Added here in one batched call, not returned as a request: Dagster's sensor daemon
            # handles a request's keys one query each (5.6 min for 3,000 partners onboarded at
            # once, every landing run waiting meanwhile: bench/RESULTS.md).
            instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, new_sources)
            context.log.info(f"added {len(new_sources)} source partitions: {', '.join(new_sources[:20])}")
        order = [*existing, *new_sources]

        pending = instance.get_runs_count(dg.RunsFilter(statuses=_PENDING, tags={TRIGGER_TAG: "landing"}))
        budget = tick_budget(watch, pending)  # back-pressure: no new run while ours wait for a slot
        source_of = {provider: source_key(provider, feed) for provider, feed in reg.sources}
        queue = landing_queue.open()
        arrivals: Arrivals | None = None

        with warehouse.connect() as conn:
            if queue is None:
                listed, following = list_landing(store, reg, cursor, today, watch)
            else:
                assert isinstance(store, S3Store)  # LandingQueueResource refuses a landing zone off S3
                arrivals = receive_arrivals(queue, store, conn, cursor, now, watch)
                listed, following = arrivals.listed, arrivals.cursor
            ledger = ledger_entries(conn, listed)
            queued_keys = {e.run_key for e in ledger.values() if e.status == "queued" and e.run_key}
            plan = plan_tick(
                store=store,
                registry=reg,
                listed=listed,
                ledger=ledger,
                launched_run_keys=_launched(instance, queued_keys),
                cursor=following,
                source_order=order,
                source_of=source_of,
                first_day=first_day,
                today=today,
                now=now,
                settings=budget,
                busy=busy_partitions(instance),
                # A late file for a partition whose landing files were retired is dead-lettered.
                retired=retired_partitions(conn, retired_candidates(listed, ledger)),
            )
            if plan.deferred and arrivals is None:
                # Resume the sweep where this tick started, so nothing deferred is skipped (the
                # event path keeps deferred files on its waiting list instead).
                plan.cursor = cursor
            dead_letter_keys = [_dead_letter_key(chunk) for chunk in plan.refused]  # each chunk hashed once
            queue_files(conn, _queued(plan, dead_letter_keys), now=now)
            record_etags(conn, [(info.key, info.etag) for info in plan.touched])
            if arrivals is not None:
                update_waiting(conn, waiting=plan.waiting, done=listed, now=now)
        if queue is not None and arrivals is not None:
            # Every file the messages name is now durable (queued, refused, known or waiting):
            # only now are they deleted, so a tick that died before this point is received again.
            arrivals.undeleted = queue.delete(arrivals.messages)

        dimensions_ready = all(instance.get_latest_materialization_event(key) for key in _DIMENSIONS)
        requests = run_requests(plan, partitions_start, dead_letter_keys, with_facts=dimensions_ready)
        elapsed = time.perf_counter() - started
        arrived = "" if arrivals is None else f"{arrivals.summary()}; "
        context.log.info(
            f"{arrived}listed {plan.listed} files in {elapsed:.2f}s: "
            f"{plan.requested_files} to load in {len(plan.batches)} runs, "
            f"{sum(len(c) for c in plan.refused)} refused, {plan.known} known, {len(plan.touched)} unchanged, "
            f"{plan.orphans} re-requested, {plan.deferred} deferred ({pending} landing runs pending); "
            f"sweep {plan.cursor.sweeps} at {plan.cursor.sweep_after or 'start'!r}"
        )
        return dg.SensorResult(
            run_requests=requests,
            cursor=plan.cursor.dumps(),
            asset_events=[_refusal_event(plan)] if plan.refused else [],
            skip_reason=None if requests else f"{arrived}no new files among {plan.listed} listed",
        )

    return landing_sensor


automation_sensor = dg.AutomationConditionSensorDefinition(
    AUTOMATION_SENSOR,
    target=dg.AssetSelection.all(),
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Silver, gold and the marts follow their inputs (defs/policies.py).",
)


@dg.sensor(
    name=REGISTRY_SENSOR,
    job_name=REGISTRY_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="A new registry version (an onboarding edit) → ops/sources again: the table, the source"
    " partitions and each provider's onboarding state in the UI follow the registry without a deploy.",
)
def registry_sensor(context: dg.SensorEvaluationContext, registry: RegistryResource) -> dg.SensorResult:
    """One registry run per registry version seen (the cursor holds the last); the first tick of a
    daemon syncs whatever the registry is then. An invalid registry fails the tick, visibly."""
    version = registry.load().version
    if context.cursor == version:
        return dg.SensorResult(skip_reason=f"registry version {version} is in ops.sources")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(job_name=REGISTRY_JOB, tags={TRIGGER_TAG: "registry", "resight/registry_version": version})
        ],
        cursor=version,
    )
