"""The demo's history partner: weekly files, one per feed and ISO week, dated on its Sunday."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from resight_platform.sample.history import generate_history, history_provider, history_weeks
from resight_platform.sources.landing import parse_landing_key
from resight_platform.sources.mappings import load_mappings
from resight_platform.sources.registry import load_registry
from resight_platform_tests.sample.reference import recount


@pytest.mark.parametrize(
    ("end", "weeks", "not_before", "expected"),
    [
        # the demo: 80 weeks up to its last day, a Wednesday; the last file is the Sunday before
        (date(2026, 10, 14), 80, date(2025, 1, 1), (date(2025, 3, 31), date(2026, 10, 11))),
        (date(2026, 10, 11), 80, date(2025, 1, 1), (date(2025, 3, 31), date(2026, 10, 11))),  # a Sunday itself
        # fewer weeks than asked when the partitions start later: whole weeks only
        (date(2026, 10, 2), 4, date(2026, 9, 1), (date(2026, 9, 7), date(2026, 9, 27))),
        (date(2026, 10, 2), 4, date(2026, 8, 31), (date(2026, 8, 31), date(2026, 9, 27))),
    ],
)
def test_history_covers_whole_iso_weeks(end: date, weeks: int, not_before: date, expected: tuple[date, date]) -> None:
    first, last = history_weeks(end, weeks, not_before)
    assert (first, last) == expected
    assert first.weekday() == 0 and last.weekday() == 6


def test_history_partner_sends_weekly_files_dated_on_sundays(tmp_path: Path) -> None:
    registry = load_registry()
    provider = history_provider(registry, 30)
    assert provider == "the_pet_stop"  # the first registered partner after the demo's thirty
    root = tmp_path / "landing"
    manifest = generate_history(
        str(root), provider=provider, end=date(2026, 10, 14), weeks=3, not_before=date(2025, 1, 1), volume=0.1
    )
    assert (manifest.start, manifest.days, manifest.providers) == ("2026-09-21", 21, [provider])
    dead = {d["key"] for d in manifest.dead_letter}
    dates = {parse_landing_key(key, registry).date for key in _keys(root) if key not in dead}
    assert dates == {date(2026, 9, 27), date(2026, 10, 4), date(2026, 10, 11)}
    counted = recount(root, registry, load_mappings(), days_per_file=7)
    assert counted.problems == []  # each line is ordered in the week (Monday to Sunday) of its file
    assert manifest.sales["lines"] == sum(lines for lines, _ in counted.sales_by.values())
    assert {d["date"] for d in manifest.sales["by_date_provider"]} == {"2026-09-27", "2026-10-04", "2026-10-11"}
    with pytest.raises(ValueError, match="no complete week"):
        generate_history(
            str(tmp_path / "none"), provider=provider, end=date(2026, 9, 5), weeks=1, not_before=date(2026, 9, 1)
        )


def _keys(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in sorted(root.rglob("*")) if p.is_file()]
