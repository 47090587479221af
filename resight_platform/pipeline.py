"""Run the whole platform once, in process, through Dagster: registry → scan → bronze/silver →
dimensions → facts → daily mart → monthly marts → ML (features, model, forecast).

Bronze and silver run as one single-run backfill over the rectangle of business dates × sources
that have files, gold facts as one run over the date range: a few runs, not one per partition.
Dates whose files span different sources (a long history from one partner, then two weeks from
thirty) are cut into one rectangle per run of landed dates with the same span, so a year of one
source's history does not become a year × thirty sources of empty partitions. A rectangle spans
the dates between its landed dates (a weekly partner's six days without files): a run costs
Dagster far more than an empty partition in it, so one run over a year of weekly files is cheaper
than one run per week. The ML job runs when the landed dates cover the weeks the demand model needs.
Materialisations land in the Dagster instance, so the UI shows them afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
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
from resight_platform.io.landing import scan_landing
from resight_platform.io.storage import ObjectStore
from resight_platform.ml.model import MIN_WEEKS
from resight_platform.sources.registry import Registry

__all__ = ["PipelineReport", "run_pipeline"]

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
) -> PipelineReport:
    """Materialise every asset for every partition that has landed files."""
    report = PipelineReport()
    _execute(defs, instance, REGISTRY_JOB, report, progress)
    _execute(defs, instance, SCAN_LANDING_JOB, report, progress)
    partitions = scan_landing(landing, registry).partitions()
    if not partitions:
        progress("no files in the landing zone: nothing to load")
        return report
    first_day = min(day for day, _, _ in partitions).isoformat()
    last_day = max(day for day, _, _ in partitions).isoformat()
    assert SOURCE_PARTITIONS.name is not None
    registered = instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
    wanted = {source_key(provider, feed) for _, provider, feed in partitions}
    position = {key: i for i, key in enumerate(registered)}
    spans: dict[date, tuple[int, int]] = {}
    for day, provider, feed in partitions:
        i = position[source_key(provider, feed)]
        lo, hi = spans.get(day, (i, i))
        spans[day] = (min(lo, i), max(hi, i))
    rectangles: list[dict[str, str]] = []
    for (lo, hi), days in _runs_of_equal_span(spans):
        first, last = days[0].isoformat(), days[-1].isoformat()
        rectangles.append({RANGE_START: f"{first}|{registered[lo]}", RANGE_END: f"{last}|{registered[hi]}"})
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


def _runs_of_equal_span(spans: dict[date, tuple[int, int]]) -> list[tuple[tuple[int, int], list[date]]]:
    """Landed dates that follow each other (no landed date of another span between them) with the
    same source span, in date order."""
    runs: list[tuple[tuple[int, int], list[date]]] = []
    for day in sorted(spans):
        span = spans[day]
        if runs and runs[-1][0] == span:
            runs[-1][1].append(day)
        else:
            runs.append((span, [day]))
    return runs
