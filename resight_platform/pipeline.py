"""Run the whole platform once, in process, through Dagster: registry → scan → bronze/silver →
dimensions → facts → daily mart → monthly marts → ML (features, model, forecast).

Bronze and silver run as single-run backfills over rectangles of business dates × sources, gold
facts over the same rectangles: a few runs, not one per partition. The rectangles are the landing
sensor's (``io/plan.py``, one cost model for both): a run costs Dagster far more than an empty
partition in it, so a weekly partner's year of files is one run across the days between them,
while a long history from one partner and two weeks from thirty stay two rectangles rather than
one box of a year × thirty sources. Here there is no run budget: every landed file is covered.
The ML job runs when the landed dates cover the weeks the demand model needs. Materialisations
land in the Dagster instance, so the UI shows them afterwards.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from resight_platform.defs.jobs import (
    DAILY_MART_JOB,
    DIMENSIONS_JOB,
    GOLD_FACTS_JOB,
    MARTS_JOB,
    MEDALLION_JOB,
    ML_JOB,
    REGISTRY_JOB,
    SCAN_LANDING_JOB,
)
from resight_platform.defs.partitions import SOURCE_PARTITIONS, source_key
from resight_platform.io.landing import LandedFile, scan_landing
from resight_platform.io.plan import cover
from resight_platform.io.storage import ObjectStore
from resight_platform.io.watch import Area
from resight_platform.ml.model import MIN_WEEKS
from resight_platform.settings import WatchSettings
from resight_platform.sources.registry import Registry

__all__ = ["PipelineReport", "plan_runs", "run_pipeline"]

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


@dataclass
class PipelineReport:
    runs: list[tuple[str, bool, float]] = field(default_factory=list)
    dates: tuple[str, str] | None = None
    sources: int = 0

    @property
    def success(self) -> bool:
        return all(ok for _, ok, _ in self.runs)


def plan_runs(files: Iterable[LandedFile], source_order: Sequence[str], watch: WatchSettings) -> list[Area]:
    """The rectangles of dates × source partitions (in ``source_order``, Dagster's order of the
    registered sources) that together cover every landed file: :func:`~resight_platform.io.plan.cover`
    over each partition's landed bytes, a run costing ``watch.merge_gap_bytes``."""
    position = {source: i for i, source in enumerate(source_order)}
    landed: dict[tuple[date, int], int] = defaultdict(int)
    for landed_file in files:
        key = landed_file.key
        landed[(key.date, position[source_key(key.provider, key.feed)])] += landed_file.info.size
    return [
        (first, last, source_order[start], source_order[end])
        for first, last, start, end in cover(landed, run_cost_bytes=watch.merge_gap_bytes)
    ]


def _execute(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    job: str,
    report: PipelineReport,
    progress: Callable[[str], None],
    tags: dict[str, str] | None = None,
    log_level: str = "WARNING",
) -> None:
    progress(f"running {job}" + (f" [{tags[RANGE_START]} .. {tags[RANGE_END]}]" if tags else ""))
    started, cpu = time.perf_counter(), time.process_time()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        tags=tags,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
    )
    elapsed = time.perf_counter() - started
    report.runs.append((job, result.success, elapsed))
    if not result.success:
        failures = [e.message for e in result.all_events if e.is_failure]
        raise RuntimeError(f"{job} failed (run {result.run_id}): {failures[:3]}")
    # This process's CPU time beside the wall time: on a shared machine the wall time says more
    # about the neighbours than about the run.
    progress(f"  {job} done in {elapsed:.1f}s (cpu {time.process_time() - cpu:.1f}s)")


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    landing: ObjectStore,
    registry: Registry,
    progress: Callable[[str], None] = lambda _: None,
    watch: WatchSettings | None = None,
) -> PipelineReport:
    """Materialise every asset for every partition that has landed files. ``watch`` gives the
    cost of a run for planning the rectangles (``merge_gap_bytes``; the defaults without it)."""
    report = PipelineReport()
    _execute(defs, instance, REGISTRY_JOB, report, progress)
    _execute(defs, instance, SCAN_LANDING_JOB, report, progress)
    scan = scan_landing(landing, registry)
    partitions = scan.partitions()
    if not partitions:
        progress("no files in the landing zone: nothing to load")
        return report
    first_day = min(day for day, _, _ in partitions).isoformat()
    last_day = max(day for day, _, _ in partitions).isoformat()
    assert SOURCE_PARTITIONS.name is not None
    registered = instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
    wanted = {source_key(provider, feed) for _, provider, feed in partitions}
    rectangles = [
        {RANGE_START: f"{first.isoformat()}|{first_source}", RANGE_END: f"{last.isoformat()}|{last_source}"}
        for first, last, first_source, last_source in plan_runs(scan.files, registered, watch or WatchSettings())
    ]
    report.dates = (first_day, last_day)
    report.sources = len(wanted)
    for rectangle in rectangles:
        _execute(defs, instance, MEDALLION_JOB, report, progress, rectangle)
    _execute(defs, instance, DIMENSIONS_JOB, report, progress)
    for rectangle in rectangles:
        _execute(defs, instance, GOLD_FACTS_JOB, report, progress, rectangle)
    _execute(defs, instance, DAILY_MART_JOB, report, progress, {RANGE_START: first_day, RANGE_END: last_day})
    _execute(defs, instance, MARTS_JOB, report, progress)
    weeks = (date.fromisoformat(last_day) - date.fromisoformat(first_day)).days // 7
    if weeks > MIN_WEEKS:
        _execute(defs, instance, ML_JOB, report, progress)
    else:
        progress(f"  {ML_JOB} skipped: {weeks} weeks of history, the demand model needs more than {MIN_WEEKS}")
    return report
