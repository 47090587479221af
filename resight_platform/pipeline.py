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

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
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
from resight_platform.io.plan import FILE_COST_BYTES, PARTITION_COST_BYTES, Cell, Rectangle, balance, cover
from resight_platform.io.storage import ObjectStore
from resight_platform.io.watch import Area
from resight_platform.ml.model import MIN_WEEKS
from resight_platform.runner import InProcess, Runner
from resight_platform.settings import WatchSettings
from resight_platform.sources.registry import Registry

__all__ = ["FeedArea", "PipelineReport", "medallion_assets", "plan_runs", "run_pipeline"]

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


#: A planned run: the feeds whose bronze and silver it materialises, and its rectangle.
FeedArea = tuple[tuple[str, ...], Area]


def plan_runs(
    files: Iterable[LandedFile], source_order: Sequence[str], watch: WatchSettings, *, workers: int = 1
) -> list[FeedArea]:
    """The runs that together read every landed file: per feed, the rectangles of dates × source
    partitions (in ``source_order``, Dagster's order of the registered sources) that
    :func:`~resight_platform.io.plan.cover` finds over its partitions' landed bytes, a run costing
    ``watch.merge_gap_bytes``; feeds with the same rectangle share its run. A run materialises its
    feeds' assets only: a partner's catalog of one day is not 2 × 14 days × 40 sources of empty
    sales, catalog, stores and customers partitions (each costs Dagster an event and its
    bookkeeping, ~5 ms). For ``workers`` processes side by side, runs are cut along their days so
    that the workers finish together (:func:`~resight_platform.io.plan.balance`), costliest first."""
    position = {source: i for i, source in enumerate(source_order)}
    landed: dict[str, dict[Cell, int]] = defaultdict(lambda: defaultdict(int))
    files_in: dict[str, dict[Cell, int]] = defaultdict(lambda: defaultdict(int))
    for landed_file in files:
        key = landed_file.key
        cell = (key.date, position[source_key(key.provider, key.feed)])
        landed[key.feed][cell] += landed_file.info.size
        files_in[key.feed][cell] += 1
    feeds_of: dict[Rectangle, list[str]] = defaultdict(list)
    for feed in sorted(landed):
        for rectangle in cover(landed[feed], run_cost_bytes=watch.merge_gap_bytes):
            feeds_of[rectangle].append(feed)

    def cell_cost(feeds: tuple[str, ...], cell: Cell) -> int:
        return sum(
            PARTITION_COST_BYTES + landed[feed].get(cell, 0) + FILE_COST_BYTES * files_in[feed].get(cell, 0)
            for feed in feeds
        )

    # A run inside another's rectangle joins it when its feeds' partitions between cost less than
    # a run (the demo's stores, from fewer partners than its catalogs, on the same day).
    for inner in sorted(feeds_of, key=_area_size):
        outer = next((o for o in sorted(feeds_of, key=_area_size) if o != inner and _inside(inner, o)), None)
        if outer is not None and _empty_cells(inner, outer) * PARTITION_COST_BYTES * len(feeds_of[inner]) < (
            watch.merge_gap_bytes
        ):
            feeds_of[outer] = sorted({*feeds_of[outer], *feeds_of.pop(inner)})
    runs = balance(
        [(tuple(feeds), rectangle) for rectangle, feeds in sorted(feeds_of.items())],
        cell_cost,
        workers=workers,
        run_cost_bytes=watch.merge_gap_bytes,
    )
    return [(feeds, (first, last, source_order[start], source_order[end])) for feeds, (first, last, start, end) in runs]


def _area_size(rectangle: Rectangle) -> int:
    return ((rectangle[1] - rectangle[0]).days + 1) * (rectangle[3] - rectangle[2] + 1)


def _inside(inner: Rectangle, outer: Rectangle) -> bool:
    return outer[0] <= inner[0] and inner[1] <= outer[1] and outer[2] <= inner[2] and inner[3] <= outer[3]


def _empty_cells(inner: Rectangle, outer: Rectangle) -> int:
    """The partitions of ``outer`` outside ``inner`` (``inner`` inside it)."""
    return _area_size(outer) - _area_size(inner)


def medallion_assets(feeds: Sequence[str]) -> list[str]:
    """The bronze and silver assets of ``feeds`` (user strings), a medallion run's selection."""
    return [f"{layer}/{feed}" for feed in feeds for layer in ("bronze", "silver")]


#: A run of a stage: job, partition range tags (or None), asset selection (or None: the job's).
StageRun = tuple[str, Mapping[str, str] | None, Sequence[str] | None]


def _stage(
    runner: Runner,
    runs: Sequence[StageRun],
    report: PipelineReport,
    progress: Callable[[str], None],
) -> None:
    """Run ``runs`` (they do not depend on each other) on ``runner`` and wait for all of them;
    raise ``RuntimeError`` naming the first that failed."""
    pending = []
    for job, tags, assets in runs:
        progress(
            f"running {job}"
            + (f" [{tags[RANGE_START]} .. {tags[RANGE_END]}]" if tags else "")
            + (f" ({', '.join(assets)})" if assets else "")
        )
        pending.append(runner.submit(job, tags, assets))
    outcomes = []
    for future in pending:
        outcome = future.result()
        outcomes.append(outcome)
        report.runs.append((outcome.job, outcome.success, outcome.seconds))
        # The run's CPU time beside its wall time: on a shared machine the wall time says more
        # about the neighbours than about the run.
        state = "done" if outcome.success else "FAILED"
        progress(f"  {outcome.job} {state} in {outcome.seconds:.1f}s (cpu {outcome.cpu_seconds:.1f}s)")
    for outcome in outcomes:
        if not outcome.success:
            raise RuntimeError(f"{outcome.job} failed (run {outcome.run_id}): {list(outcome.failures)}")


def run_pipeline(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    *,
    landing: ObjectStore,
    registry: Registry,
    progress: Callable[[str], None] = lambda _: None,
    watch: WatchSettings | None = None,
    runner: Runner | None = None,
) -> PipelineReport:
    """Materialise every asset for every partition that has landed files. ``watch`` gives the
    cost of a run for planning the rectangles (``merge_gap_bytes``; the defaults without it).
    ``runner`` executes the runs (:mod:`resight_platform.runner`): in this process one after the
    other by default; a :class:`~resight_platform.runner.WorkerPool` runs each stage's independent
    runs side by side."""
    report = PipelineReport()
    local = InProcess(defs, instance)
    runner = runner or local
    _stage(local, [(REGISTRY_JOB, None, None)], report, progress)
    _stage(local, [(SCAN_LANDING_JOB, None, None)], report, progress)
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
    planned = plan_runs(scan.files, registered, watch or WatchSettings(), workers=runner.workers)

    def tags(area: Area) -> dict[str, str]:
        first, last, first_source, last_source = area
        return {RANGE_START: f"{first.isoformat()}|{first_source}", RANGE_END: f"{last.isoformat()}|{last_source}"}

    report.dates = (first_day, last_day)
    report.sources = len(wanted)
    _stage(runner, [(MEDALLION_JOB, tags(area), medallion_assets(feeds)) for feeds, area in planned], report, progress)
    _stage(runner, [(DIMENSIONS_JOB, None, None)], report, progress)
    # The facts read the sales only: the runs that materialised them.
    _stage(
        runner, [(GOLD_FACTS_JOB, tags(area), None) for feeds, area in planned if "sales" in feeds], report, progress
    )
    # The marts and the ML features read the facts and the dimensions, not each other.
    last: list[StageRun] = [
        (DAILY_MART_JOB, {RANGE_START: first_day, RANGE_END: last_day}, None),
        (MARTS_JOB, None, None),
    ]
    weeks = (date.fromisoformat(last_day) - date.fromisoformat(first_day)).days // 7
    if weeks > MIN_WEEKS:
        last.insert(0, (ML_JOB, None, None))  # the longest first, while the others share the other core
    else:
        progress(f"  {ML_JOB} skipped: {weeks} weeks of history, the demand model needs more than {MIN_WEEKS}")
    _stage(runner, last, report, progress)
    return report
