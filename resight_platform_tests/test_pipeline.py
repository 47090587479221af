"""How run_pipeline cuts the landed files into rectangles of dates × sources (one run each)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import dagster as dg
import pytest

from resight_platform.defs.jobs import MEDALLION_JOB
from resight_platform.defs.partitions import source_keys
from resight_platform.io.landing import LandedFile
from resight_platform.io.plan import PARTITION_COST_BYTES
from resight_platform.io.storage import LocalStore, ObjectInfo
from resight_platform.pipeline import plan_runs, run_pipeline
from resight_platform.sample.history import history_provider, history_weeks
from resight_platform.settings import WatchSettings
from resight_platform.sources.landing import parse_landing_key
from resight_platform.sources.registry import Registry, load_registry

START, DAYS, PROVIDERS, WEEKS = date(2026, 10, 1), 14, 30, 80  # the demo's defaults


def _landed(key: str, size: int, registry: Registry) -> LandedFile:
    info = ObjectInfo(key=key, size=size, etag="e", last_modified=datetime(2026, 10, 15, tzinfo=UTC))
    return LandedFile(info=info, key=parse_landing_key(key, registry))


def _demo() -> tuple[list[LandedFile], list[str], str, list[date]]:
    """The demo's landing zone in shape: thirty partners' four feeds over a fortnight, and one more
    partner's 80 weeks of weekly sales files dated on Sundays up to the fortnight's last day (each
    feed a partner is registered for; the catalog, stores and customers on the first day)."""
    registry = load_registry()
    sample = list(registry.providers)[:PROVIDERS]
    history = history_provider(registry, PROVIDERS)
    assert history is not None
    end = START + timedelta(days=DAYS - 1)
    first_monday, last_sunday = history_weeks(end, WEEKS, not_before=date(2025, 1, 1))
    sundays = [first_monday + timedelta(days=6 + 7 * w) for w in range((last_sunday - first_monday).days // 7 + 1)]
    files = [_landed(f"{history}/sales/{day}/sales_{day}.csv", 60_000, registry) for day in sundays]
    for d in range(DAYS):
        day = START + timedelta(days=d)
        for provider, feed in registry.sources:
            if provider in sample and (d == 0 or feed == "sales"):
                files.append(_landed(f"{provider}/{feed}/{day}/{feed}_{day}.csv", 250_000, registry))
    return files, source_keys(registry), history, sundays


def _cells(files: list[LandedFile]) -> set[tuple[date, str]]:
    return {(f.key.date, f.key.provider) for f in files}


def _covered_once(rectangles: list[tuple[date, date, str, str]], cell: tuple[date, str], order: list[str]) -> bool:
    day, source = cell
    at = order.index(source)
    return sum(a <= day <= b and order.index(s) <= at <= order.index(e) for a, b, s, e in rectangles) == 1


def test_the_demo_is_a_weekly_history_rectangle_and_a_dense_fortnight() -> None:
    files, order, history, sundays = _demo()
    sample_positions = sorted(order.index(f.key.provider) for f in files if f.key.provider != history)
    rectangles = plan_runs(files, order, WatchSettings())
    last_before = max(day for day in sundays if day < START)
    assert rectangles == [
        (sundays[0], last_before, history, history),  # one run across the six days between its files
        (START, START + timedelta(days=DAYS - 1), order[sample_positions[0]], order[sample_positions[-1]]),
    ]
    assert all(_covered_once(rectangles, cell, order) for cell in _cells(files))
    # Not one box of the history's days × the fortnight's forty sources: a run each.
    partitions = sum(((b - a).days + 1) * (order.index(e) - order.index(s) + 1) for a, b, s, e in rectangles)
    assert partitions == (last_before - sundays[0]).days + 1 + DAYS * len(order)
    assert len(order) == 40 and sample_positions[-1] - sample_positions[0] + 1 == 40


def test_a_run_cost_below_six_empty_days_runs_the_history_week_by_week() -> None:
    files, order, history, sundays = _demo()
    rectangles = plan_runs(files, order, WatchSettings(merge_gap_bytes=5 * PARTITION_COST_BYTES))
    weekly = [r for r in rectangles if r[2] == r[3] == history]
    assert [(a, b) for a, b, _, _ in weekly] == [(day, day) for day in sundays if day < START]
    assert all(_covered_once(rectangles, cell, order) for cell in _cells(files))


def test_two_workers_get_the_dense_fortnight_cut_along_its_days_costliest_first() -> None:
    files, order, history, _ = _demo()
    whole = plan_runs(files, order, WatchSettings())
    rectangles = plan_runs(files, order, WatchSettings(), workers=2)
    assert all(_covered_once(rectangles, cell, order) for cell in _cells(files))
    dense = [r for r in rectangles if r[2] != history]
    # The fortnight's pieces keep its sources and follow each other day by day.
    assert len(dense) > 1 and {(s, e) for _, _, s, e in dense} == {(whole[1][2], whole[1][3])}
    days = sorted((a, b) for a, b, _, _ in dense)
    assert days[0][0] == START and days[-1][1] == START + timedelta(days=DAYS - 1)
    assert all(b + timedelta(days=1) == c for (_, b), (c, _) in pairwise(days))
    # The history's span is covered whatever it was cut into; one worker keeps the plan as it was.
    history_days = sorted((a, b) for a, b, s, e in rectangles if s == e == history)
    assert history_days[0][0] == whole[0][0] and history_days[-1][1] == whole[0][1]
    assert plan_runs(files, order, WatchSettings(), workers=1) == whole


def test_an_unknown_stage_job_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with dg.DagsterInstance.ephemeral() as instance:
        with pytest.raises(ValueError, match="unknown job\\(s\\) gold_job: the pipeline's stages are"):
            run_pipeline(
                dg.Definitions(),
                instance,
                landing=LocalStore(tmp_path),
                registry=load_registry(),
                jobs=(MEDALLION_JOB, "gold_job"),
            )
        assert instance.get_runs_count() == 0  # not even the registry sync ran
