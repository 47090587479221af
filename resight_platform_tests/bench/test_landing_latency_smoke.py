"""Smoke tests of the landing latency benchmark (issue 20): its registry of partners, its reading of
the landing sensor's log, and its in-process run-cost mode at a tiny size. The daemon mode itself
has no smoke test: the daemon's warm-up alone takes minutes (bench/README.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bench.landing.latency import PARTNER_PREFIX, TEMPLATE_PROVIDER, build_registry, run_cost, tick_log
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, load_registry


def test_registry_adds_partners_like_the_template(tmp_path: Path) -> None:
    packaged = load_registry()
    partners = build_registry(tmp_path / "registry", 60)
    registry = load_registry(tmp_path / "registry")

    assert len(registry.providers) == 60
    assert len(partners) == 60 - len(packaged.providers) and all(p.startswith(PARTNER_PREFIX) for p in partners)
    assert len(registry.sources) == len(packaged.sources) + 4 * len(partners)
    template = packaged.providers[TEMPLATE_PROVIDER]
    for slug in partners:
        provider = registry.providers[slug]
        assert (provider.profile, provider.timezone, provider.currency) == (
            template.profile,
            template.timezone,
            template.currency,
        )
    assert (DEFAULT_REGISTRY_DIR / "providers.csv").read_text() != (tmp_path / "registry" / "providers.csv").read_text()


def test_tick_log_reads_the_sensors_own_summary(tmp_path: Path) -> None:
    log = tmp_path / "daemon.log"
    log.write_text(
        "2026-12-04 03:33:31 +0000 - dagster - INFO - __repository__ - landing_sensor - 0 notifications (0 files,"
        " 0 gone, 0 ignored, 0 unreadable), 3 waiting, 0 recently queued, 0 swept; listed 3 files in 5.83s: 0 to"
        " load in 0 runs, 0 refused, 0 known, 0 unchanged, 0 re-requested, 3 deferred (2 landing runs pending);"
        " sweep 1 at 'start'\n"
        "2026-12-04 03:33:49 +0000 - dagster - INFO - __repository__ - landing_sensor - listed 12 files in 1.25s:"
        " 12 to load in 2 runs, 0 refused, 0 known, 0 unchanged, 0 re-requested, 0 deferred (1 landing runs"
        " pending); sweep 1 at 'start'\n"
        "2026-12-04 03:40:00 +0000 - dagster - INFO - __repository__ - landing_sensor - listed 1 files in 9.00s:"
        " 1 to load in 1 runs, 0 refused, 0 known, 0 unchanged, 0 re-requested, 0 deferred (0 landing runs"
        " pending); sweep 1 at 'start'\n",
        encoding="utf-8",
    )
    ticks = tick_log(log, datetime(2026, 12, 4, 3, 33, tzinfo=UTC), datetime(2026, 12, 4, 3, 35, tzinfo=UTC))

    assert ticks["ticks"] == 2  # the third is outside the window
    assert ticks["work_max_s"] == 5.83 and ticks["listed_max"] == 12
    assert ticks["files_requested"] == 12 and ticks["runs_requested"] == 2
    assert ticks["ticks_deferring"] == 1 and ticks["deferred_max"] == 3


def test_run_cost_loads_files_of_far_apart_partners(tmp_path: Path) -> None:
    result = run_cost(48, [1, 4], tmp_path / "home", profile=True)

    assert result["providers"] == 48
    one, four = result["widths"]
    assert one["files"] == 1 and one["runs"] == 1 and one["run_sources"] == [1] and one["run_files"] == [1]
    assert four["files"] == 4 and sum(four["run_files"]) == 4
    assert max(four["run_sources"]) > 1  # far apart: a run's rectangle spans partitions between them
    assert all(seconds > 0 for seconds in one["run_s"] + four["run_s"])
    assert four["profile_top"] and Path(four["profile"]).exists()
