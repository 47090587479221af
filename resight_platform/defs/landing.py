"""The landing run: bronze, silver and (sales) facts for an exact *set* of date × source partitions.

A Dagster run targets one partition or a range, and a range of a multi-partitioned asset is every
date × source between its two ends. With thousands of sources the files of one tick belong to
partners far apart in that order: 100 files from unrelated partners made a range run over ~2,900
partitions (82 s, most of it Dagster's events for partitions with nothing to read), or else one
run per file waiting for a slot (issue 20, bench/RESULTS.md). Dagster has no run over a set of
partitions (dagster-io/dagster#32335), so the landing sensor requests this op job instead: its
config names the partitions with files, per feed, and its one op calls the assets' own code
(``load_bronze``, ``clean_silver``, ``build_facts``) for exactly those, writes through the assets'
IO managers, and records what Dagster records for an asset run: one materialisation per partition
written, carrying that partition's own figures (rows, files, quarantined by rule), and the
assets' check results. Range runs of the asset jobs stay for backfills and the in-process pipeline.

Feeds run in the order of the registry's ``FEEDS``, bronze then silver for each, then the sales
facts (when ``facts`` is set: the sensor sets it for runs whose files are all sales, whose
dimensions cannot have changed). A feed that fails does not stop the others; the op fails at the
end, naming it, and Dagster's retry runs the op again (every write is an idempotent partition
replace). A failed blocking check stops what depends on it, as in an asset run: a silver
``matches_model`` failure leaves that feed's facts unbuilt.
"""

import logging
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl
from dagster._core.events import (
    AssetMaterializationPlannedData,
    DagsterEvent,
    DagsterEventBatchMetadata,
    generate_event_batch_id,
)

from resight_platform.defs.bronze import load_bronze
from resight_platform.defs.gold import build_facts
from resight_platform.defs.jobs import LANDING_SET_JOB
from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.metadata import LANDING_SET_OP
from resight_platform.defs.policies import RETRY
from resight_platform.defs.silver import clean_silver
from resight_platform.io.lake import LakeIOManager, PartitionStream, SetOutput, WrittenPartitions, partition_figures
from resight_platform.sources.registry import FEEDS
from resight_platform.transforms.bronze import DEFAULT_LIMITS, ReadLimits

__all__ = ["LandPartitions", "build_landing_set_job"]

_Event = dg.AssetMaterialization | dg.AssetCheckEvaluation | DagsterEvent

#: The dimensions ``fact_sales`` joins, read whole as its asset inputs are.
_DIMENSIONS = ("dim_provider", "dim_product", "dim_store", "dim_customer")


class LandPartitions(dg.Config):
    """What a landing run writes: per feed, the date × source partition keys with files
    (``"2026-10-01|pawmart"``); ``facts`` builds ``gold/fact_sales`` for the sales ones too."""

    partitions: dict[str, list[str]]
    facts: bool = False


class _SetStep:
    """An asset body's view of its step in a set run: the op's context, with the run's partitions
    of that asset as ``partition_keys`` (``resources.Step``)."""

    def __init__(self, context: dg.OpExecutionContext, keys: Sequence[str]) -> None:
        self._context, self._keys = context, list(keys)

    @property
    def partition_keys(self) -> Sequence[str]:
        return self._keys

    @property
    def log(self) -> dg.DagsterLogManager:
        return self._context.log

    @property
    def run(self) -> dg.DagsterRun:
        return self._context.run

    @property
    def run_id(self) -> str:
        return self._context.run_id

    @property
    def resources(self) -> Any:
        return self._context.resources

    @property
    def op_def(self) -> dg.OpDefinition:
        return self._context.op_def


class _Writer:
    """Writes an asset body's outputs for a set of partitions and logs its events."""

    def __init__(
        self,
        context: dg.OpExecutionContext,
        specs: Mapping[dg.AssetKey, dg.AssetSpec],
        partitions_def: dg.PartitionsDefinition,
        blocking: set[dg.AssetCheckKey],
    ) -> None:
        self.context, self.specs, self.partitions_def, self.blocking = context, specs, partitions_def, blocking
        self.totals: dict[str, dict[str, Any]] = {}
        self.failed_checks: list[dg.AssetCheckKey] = []
        #: The partitions each asset materialised in this attempt.
        self.written: dict[dg.AssetKey, set[str]] = {}

    def run(
        self,
        key: dg.AssetKey,
        io_manager: LakeIOManager,
        keys: Sequence[str],
        events: Iterator[dg.Output[Any] | dg.AssetCheckResult],
    ) -> Generator[_Event, None, bool]:
        """Write ``events``' output, yielding its materialisations and check evaluations as they
        come (as events of the step, which a run that later fails still reports: events logged with
        ``context.log_event`` were missing from a failed in-process run's result); returns whether
        no blocking check failed."""
        passed = True
        for event in events:
            if isinstance(event, dg.AssetCheckResult):
                evaluation = self._evaluation(key, event)
                yield evaluation
                if not evaluation.passed and evaluation.asset_check_key in self.blocking:
                    self.failed_checks.append(evaluation.asset_check_key)
                    passed = False
                continue
            target = SetOutput(
                asset_key=key,
                asset_partitions_def=self.partitions_def,
                asset_partition_keys=list(keys),
                log=self.context.log,
                definition_metadata=self.specs[key].metadata,
            )
            io_manager.write(target, event.value)
            yield from self._materializations(key, keys, event.value, target)
        return passed

    @staticmethod
    def _evaluation(key: dg.AssetKey, result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
        return dg.AssetCheckEvaluation(
            asset_key=result.asset_key or key,
            check_name=result.check_name or "",
            passed=result.passed,
            metadata=dict(result.metadata or {}),
            severity=result.severity,
            description=result.description,
        )

    def _materializations(
        self, key: dg.AssetKey, keys: Sequence[str], value: Any, target: SetOutput
    ) -> Iterator[dg.AssetMaterialization | DagsterEvent]:
        """One materialisation per partition, with its own rows, file and figures."""
        # Spark's silver (WrittenPartitions) has no per-partition figures here.
        written = target.written
        figures = (
            partition_figures(value, written, keys)
            if isinstance(value, PartitionStream) and written is not None
            else {partition: {} for partition in keys}
        )
        materializations = [
            dg.AssetMaterialization(asset_key=key, partition=partition, metadata=figures[partition])
            for partition in keys
        ]
        yield from _batched(self.context, materializations)
        self.written.setdefault(key, set()).update(keys)
        totals = {
            name: figure.value if isinstance(figure, dg.MetadataValue) else figure
            for name, figure in target.metadata.items()
            if isinstance(getattr(figure, "value", figure), int | float | str)
        }
        if isinstance(value, WrittenPartitions):
            totals["engine"] = "spark"
        self.totals[key.to_user_string()] = totals


def _mark_failed(context: dg.OpExecutionContext, unwritten: Mapping[dg.AssetKey, Sequence[str]]) -> None:
    """Record the partitions a failing run meant to write and did not as *planned* by this run,
    one planned materialisation each: once the run has failed, Dagster's partition status shows
    exactly those partitions **failed** (a later run that writes them clears it).

    Dagster records an asset run's plan before it starts, but as one event per asset with the run's
    partition subset, which 1.13's instance never reads back as failed partitions (issue 21); per
    partition, planned events are read back, but Postgres stores them one insert each (~7 ms),
    which every run would pay up front. Written only on failure, a run that succeeds pays nothing;
    what is lost is the *in progress* state while a set run writes (its tags already keep
    automation from requesting what it builds)."""
    step = context._step_execution_context
    job, step_key = step.job_name, step.step.key
    for key, partitions in sorted(unwritten.items(), key=lambda item: item[0].to_user_string()):
        for partition in partitions:
            event = DagsterEvent.build_asset_materialization_planned_event(
                job, step_key, AssetMaterializationPlannedData(key, partition=partition)
            )
            context.instance.report_dagster_event(event, context.run_id, logging.DEBUG)


def _batched(
    context: dg.OpExecutionContext, materializations: Sequence[dg.AssetMaterialization]
) -> Iterator[dg.AssetMaterialization | DagsterEvent]:
    """``materializations`` as one batch of Dagster events: stored in one insert
    (``store_event_batch``, with ``DAGSTER_EVENT_BATCH_SIZE`` set, as ``resight`` sets it), as
    Dagster stores a range run's. One at a time, each is a Postgres connection and an insert: 9.6
    ms apiece, 8.7 s of a 300-partition set run's 16.9 s (bench/RESULTS.md). Dagster has no public
    API for a batch of an op's events, so this builds them as its own step code does, from
    internals of the Dagster pinned in setup.py (1.13; ``defs/test_landing.py`` reads the events
    back from the instance)."""
    step = context._step_execution_context
    batch, last = generate_event_batch_id(), len(materializations) - 1
    for i, materialization in enumerate(materializations):
        yield DagsterEvent.asset_materialization(step, materialization, DagsterEventBatchMetadata(batch, i == last))


def build_landing_set_job(
    partitions_def: dg.PartitionsDefinition,
    assets: Sequence[dg.AssetsDefinition | dg.AssetSpec],
    limits: ReadLimits = DEFAULT_LIMITS,
) -> dg.JobDefinition:
    """The landing run over a set of ``partitions_def``'s partitions, writing the bronze, silver
    and ``fact_sales`` assets among ``assets`` as their own runs would."""
    specs: dict[dg.AssetKey, dg.AssetSpec] = {}
    blocking: set[dg.AssetCheckKey] = set()
    for asset in assets:
        if isinstance(asset, dg.AssetsDefinition):
            specs.update({spec.key: spec for spec in asset.specs})
            blocking |= {spec.key for spec in asset.check_specs if spec.blocking}

    @dg.op(
        name=LANDING_SET_OP,
        required_resource_keys={
            "landing",
            "dead_letter",
            "warehouse",
            "registry",
            "lake",
            "engine",
            "lake_io_manager",
            "warehouse_io_manager",
        },
        retry_policy=RETRY,
        description="Bronze, silver and (sales) facts for the partitions in its config, one materialisation each.",
    )
    def land_partitions(context: dg.OpExecutionContext, config: LandPartitions) -> Iterator[_Event | dg.Output[None]]:
        r = context.resources
        writer = _Writer(context, specs, partitions_def, blocking)
        unknown = sorted(set(config.partitions) - set(FEEDS))
        if unknown:
            raise dg.Failure(f"no such feed(s) {unknown}: the feeds are {list(FEEDS)}")
        planned = {
            dg.AssetKey([layer, feed]): sorted(set(keys))
            for feed, keys in config.partitions.items()
            if keys
            for layer in ("bronze", "silver")
        }
        if config.facts and config.partitions.get("sales"):
            planned[FACT_SALES] = sorted(set(config.partitions["sales"]))
        failed: dict[str, str] = {}
        silver_passed: dict[str, bool] = {}
        for feed in [f for f in FEEDS if config.partitions.get(f)]:
            keys = sorted(set(config.partitions[feed]))
            step = _SetStep(context, keys)
            try:
                bronze_key, silver_key = dg.AssetKey(["bronze", feed]), dg.AssetKey(["silver", feed])
                yield from writer.run(
                    bronze_key,
                    r.lake_io_manager,
                    keys,
                    load_bronze(feed, step, r.landing, r.dead_letter, r.warehouse, r.registry, limits),
                )
                scans = r.lake_io_manager.scan_partitions(bronze_key.path, partitions_def, keys)
                silver_passed[feed] = yield from writer.run(
                    silver_key,
                    r.lake_io_manager,
                    keys,
                    clean_silver(feed, step, scans, r.registry, r.warehouse, r.lake, r.engine),
                )
            except Exception as error:  # one feed's failure does not stop the others
                context.log.error(f"{feed}: {type(error).__name__}: {error}")
                failed[feed] = f"{type(error).__name__}: {error}"
        sales = sorted(set(config.partitions.get("sales", [])))
        if config.facts and sales and silver_passed.get("sales"):
            try:
                warehouse_io: LakeIOManager = r.warehouse_io_manager
                dims: dict[str, pl.LazyFrame] = {name: warehouse_io.read_whole(["gold", name]) for name in _DIMENSIONS}
                yield from writer.run(
                    FACT_SALES,
                    warehouse_io,
                    sales,
                    build_facts(
                        _SetStep(context, sales),
                        r.registry,
                        r.warehouse,
                        r.lake_io_manager.scan_partitions(["silver", "sales"], partitions_def, sales),
                        lake=r.lake,
                        engine=r.engine,
                        **dims,
                    ),
                )
            except Exception as error:
                context.log.error(f"fact_sales: {type(error).__name__}: {error}")
                failed["fact_sales"] = f"{type(error).__name__}: {error}"
        if failed or writer.failed_checks:
            _mark_failed(
                context,
                {key: [k for k in keys if k not in writer.written.get(key, set())] for key, keys in planned.items()},
            )
            checks = [f"{c.asset_key.to_user_string()}:{c.name}" for c in writer.failed_checks]
            raise dg.Failure(
                allow_retries=bool(failed),  # a failed check fails again on the same data
                description="landing run failed: "
                + "; ".join([*(f"{name}: {why}" for name, why in failed.items()), *(f"{c} failed" for c in checks)]),
                metadata={"failed": dg.MetadataValue.json(failed), "failed_blocking_checks": checks},
            )
        yield dg.Output(
            None,
            metadata={
                "partitions": sum(len(set(keys)) for keys in config.partitions.values()),
                "totals": dg.MetadataValue.json(writer.totals),
            },
        )

    @dg.job(
        name=LANDING_SET_JOB,
        description="What the landing sensor runs for new files: bronze, silver and (sales only) their facts, for"
        " exactly the date × source partitions with files (its config), one materialisation per partition.",
    )
    def landing_set_job() -> None:
        land_partitions()

    return landing_set_job
