"""Run the whole platform once, in process, through Dagster: registry → scan → bronze/silver →
dimensions → facts → daily mart → monthly marts → ML (features, model, forecast), and (``close``,
as ``resight demo`` and ``resight run --close`` ask) the closing of the date × source partitions no file
was expected for (``defs/closing.py``), so the UI's "missing" after a run is only the real gaps.

Bronze and silver run as single-run backfills over rectangles of business dates × sources, gold
facts over the same rectangles: a few runs, not one per partition. The rectangles come from
``io/plan.py``: a run costs Dagster far more than an empty partition in it, so a weekly partner's
year of files is one run across the days between them, while a long history from one partner and
two weeks from thirty stay two rectangles rather than one box of a year × thirty sources. There is
no run budget: every landed file is covered.
The ML job runs when the landed dates cover the weeks the demand model needs. Materialisations
land in the Dagster instance, so the UI shows them afterwards.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from resight_platform.defs.jobs import (
    CLOSE_JOB,
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
from resight_platform.engines import Engine
from resight_platform.io.landing import LandedFile, scan_landing
from resight_platform.io.plan import FILE_COST_BYTES, PARTITION_COST_BYTES, balance, cover
from resight_platform.io.storage import ObjectStore
from resight_platform.io.watch import Area
from resight_platform.ml.model import MIN_WEEKS
from resight_platform.resources import ENGINE_TAG
from resight_platform.runner import InProcess, Runner, RunOutcome
from resight_platform.settings import WatchSettings
from resight_platform.sources.registry import Registry

__all__ = ["STAGE_JOBS", "PipelineReport", "RunFailed", "plan_runs", "run_pipeline"]

#: The jobs run after the registry sync and the landing scan, in their order.
STAGE_JOBS = (MEDALLION_JOB, DIMENSIONS_JOB, GOLD_FACTS_JOB, ML_JOB, DAILY_MART_JOB, MARTS_JOB, CLOSE_JOB)

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


def plan_runs(
    files: Iterable[LandedFile], source_order: Sequence[str], watch: WatchSettings, *, workers: int = 1
) -> list[Area]:
    """The rectangles of dates × source partitions (in ``source_order``, Dagster's order of the
    registered sources) that together cover every landed file: :func:`~resight_platform.io.plan.cover`
    over each partition's landed bytes, a run costing ``watch.merge_gap_bytes``; for ``workers``
    processes side by side, cut along their days so that the workers finish together
    (:func:`~resight_platform.io.plan.balance`), costliest first."""
    position = {source: i for i, source in enumerate(source_order)}
    landed: dict[tuple[date, int], int] = defaultdict(int)
    cell_cost: dict[tuple[date, int], int] = defaultdict(lambda: PARTITION_COST_BYTES)
    for landed_file in files:
        key = landed_file.key
        cell = (key.date, position[source_key(key.provider, key.feed)])
        landed[cell] += landed_file.info.size
        cell_cost[cell] += landed_file.info.size + FILE_COST_BYTES
    rectangles = balance(
        cover(landed, run_cost_bytes=watch.merge_gap_bytes),
        cell_cost,
        workers=workers,
        run_cost_bytes=watch.merge_gap_bytes,
    )
    return [(first, last, source_order[start], source_order[end]) for first, last, start, end in rectangles]


def _stage(
    runner: Runner,
    runs: Sequence[tuple[str, Mapping[str, str] | None]],
    report: PipelineReport,
    progress: Callable[[str], None],
) -> None:
    """Run ``runs`` (they do not depend on each other) on ``runner`` and wait for all of them;
    raise ``RuntimeError`` naming the first that failed."""
    pending = []
    for job, tags in runs:
        ranged = f" [{tags[RANGE_START]} .. {tags[RANGE_END]}]" if tags and RANGE_START in tags else ""
        on = f" on {tags[ENGINE_TAG]}" if tags and ENGINE_TAG in tags else ""
        progress(f"running {job}{ranged}{on}")
        pending.append(runner.submit(job, tags))
    outcomes = [_outcome(future, report, progress) for future in pending]
    for outcome in outcomes:
        if not outcome.success:
            raise RunFailed(outcome)


def _outcome(future: Future[RunOutcome], report: PipelineReport, progress: Callable[[str], None]) -> RunOutcome:
    """Wait for a submitted run; record and say how it went."""
    outcome = future.result()
    report.runs.append((outcome.job, outcome.success, outcome.seconds))
    # The run's CPU time beside its wall time: on a shared machine the wall time says more
    # about the neighbours than about the run.
    state = "done" if outcome.success else "FAILED"
    progress(f"  {outcome.job} {state} in {outcome.seconds:.1f}s (cpu {outcome.cpu_seconds:.1f}s)")
    return outcome


def _finished(future: Future[RunOutcome], report: PipelineReport, progress: Callable[[str], None]) -> None:
    """Wait for a run submitted on its own; raise ``RunFailed`` if it failed."""
    outcome = _outcome(future, report, progress)
    if not outcome.success:
        raise RunFailed(outcome)


class RunFailed(RuntimeError):
    """A run of the pipeline failed: its outcome (job, run id, first failures, errors)."""

    def __init__(self, outcome: RunOutcome) -> None:
        self.outcome = outcome
        super().__init__(f"{outcome.job} failed (run {outcome.run_id}): {list(outcome.failures)}")


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    landing: ObjectStore,
    registry: Registry,
    progress: Callable[[str], None] = lambda _: None,
    watch: WatchSettings | None = None,
    runner: Runner | None = None,
    engine: Engine | None = None,
    dates: tuple[date, date] | None = None,
    jobs: Collection[str] | None = None,
    close: bool = False,
) -> PipelineReport:
    """Materialise every asset for every partition that has landed files. ``watch`` gives the
    cost of a run for planning the rectangles (``merge_gap_bytes``; the defaults without it).
    ``runner`` executes the runs (:mod:`resight_platform.runner`): in this process one after the
    other by default; a :class:`~resight_platform.runner.WorkerPool` runs each stage's independent
    runs side by side.

    ``engine``: silver, the facts, the marts and the ML features run on it (the ``resight/engine``
    tag on their runs; default: the engine resource's, ``RESIGHT_ENGINE``). ``dates``: only the files of these
    business dates (first, last; a backfill of a range of history); the dimensions and the
    monthly marts are rebuilt whole, as after any load. ``jobs``: only these of
    :data:`STAGE_JOBS` (the registry sync and the landing scan always run), e.g. a backfill of
    history that stops at silver; an unknown name is refused before anything runs. ``close``:
    also close the date × source partitions no file was expected for (``defs/closing.py``), as
    ``resight demo`` and ``resight run --close`` do, so the UI's "missing" is only the real gaps; off for
    callers that load a slice (tests, benchmarks): on a first run over a long partition space it
    is hundreds of thousands of events."""
    unknown = sorted(set(jobs or ()) - set(STAGE_JOBS))
    if unknown:
        raise ValueError(f"unknown job(s) {', '.join(unknown)}: the pipeline's stages are {', '.join(STAGE_JOBS)}")
    wanted_jobs = set(STAGE_JOBS if jobs is None else jobs)

    def stage(runner: Runner, runs: Sequence[tuple[str, Mapping[str, str] | None]]) -> None:
        chosen = [(job, tags) for job, tags in runs if job in wanted_jobs]
        if chosen:
            _stage(runner, chosen, report, progress)

    report = PipelineReport()
    local = InProcess(defs, instance)
    runner = runner or local
    _stage(local, [(REGISTRY_JOB, None)], report, progress)
    _stage(local, [(SCAN_LANDING_JOB, None)], report, progress)
    scan = scan_landing(landing, registry)
    if dates is not None:
        scan = scan.on_dates(*dates)
    partitions = scan.partitions()
    if not partitions:
        progress(
            "no files in the landing zone" + (f" for {dates[0]} .. {dates[1]}" if dates else "") + ": nothing to load"
        )
        return report
    on_engine = {ENGINE_TAG: engine} if engine else {}
    first_day = min(day for day, _, _ in partitions).isoformat()
    last_day = max(day for day, _, _ in partitions).isoformat()
    assert SOURCE_PARTITIONS.name is not None
    registered = instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
    wanted = {source_key(provider, feed) for _, provider, feed in partitions}
    planned = plan_runs(scan.files, registered, watch or WatchSettings(), workers=runner.workers)
    rectangles = [
        {
            RANGE_START: f"{first.isoformat()}|{first_source}",
            RANGE_END: f"{last.isoformat()}|{last_source}",
            **on_engine,
        }
        for first, last, first_source, last_source in planned
    ]
    report.dates = (first_day, last_day)
    report.sources = len(wanted)
    # The closing of what no file was expected for reads the registry, the ledger (every file of
    # this run is in it since the scan: never closed) and the partitions' statuses. With worker
    # processes it runs here, on a thread of this otherwise waiting process, beside the loads: it
    # is hundreds of thousands of events on a first run over a long partition space (the demo's
    # ~100 s, bench/RESULTS.md), which at the end would add its whole time to the run's.
    closing = None
    if close and CLOSE_JOB in wanted_jobs and runner is not local:
        progress(f"running {CLOSE_JOB} (beside the loads)")
        closing = ThreadPoolExecutor(1, thread_name_prefix="closing")
        closed = closing.submit(lambda: local.submit(CLOSE_JOB, None).result())
    try:
        stage(runner, [(MEDALLION_JOB, rectangle) for rectangle in rectangles])
        stage(runner, [(DIMENSIONS_JOB, None)])
        stage(runner, [(GOLD_FACTS_JOB, rectangle) for rectangle in rectangles])
        # The marts and the ML features read the facts and the dimensions, not each other.
        last: list[tuple[str, Mapping[str, str] | None]] = [
            (DAILY_MART_JOB, {RANGE_START: first_day, RANGE_END: last_day, **on_engine}),
            (MARTS_JOB, on_engine or None),
        ]
        weeks = (date.fromisoformat(last_day) - date.fromisoformat(first_day)).days // 7
        if weeks > MIN_WEEKS:
            last.insert(0, (ML_JOB, on_engine or None))  # the longest first, while the others share the other core
        elif ML_JOB in wanted_jobs:
            progress(f"  {ML_JOB} skipped: {weeks} weeks of history, the demand model needs more than {MIN_WEEKS}")
        stage(runner, last)
    except BaseException:
        if closing is not None:  # a run in flight is not abandoned: the process waits for it
            closing.shutdown(wait=True)
        raise
    if closing is None:
        if close:
            stage(local, [(CLOSE_JOB, None)])
    else:
        with closing:
            _finished(closed, report, progress)
    return report
