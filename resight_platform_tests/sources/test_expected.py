"""Which days a source is not expected to deliver (``sources/expected.py``), rule by rule."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta

import pytest

from resight_platform.sources.expected import (
    BEFORE_ONBOARDING,
    INACTIVE,
    NO_SUCH_FEED,
    NOT_EXPECTED,
    cadence_days,
    days_to_close,
)
from resight_platform.sources.registry import Source, load_registry

D0 = date(2026, 11, 1)


def day(n: int) -> date:
    return D0 + timedelta(days=n)


def source(every_hours: int = 24, *, active: bool = True, onboarded: int | None = None) -> Source:
    packaged = load_registry().source("pawmart", "sales")
    assert packaged is not None
    return replace(
        packaged,
        expected_every_hours=every_hours,
        active=active,
        onboarded=day(onboarded) if onboarded is not None else None,
    )


def closed(entry: Source | None, delivered: list[int], first: int = 0, last: int = 13) -> dict[int, str]:
    """``days_to_close`` with days as offsets from ``D0``."""
    out = days_to_close(entry, {day(n) for n in delivered}, day(first), day(last))
    return {(d - D0).days: reason for d, reason in out.items()}


CASES = [
    # (name, source, delivered days, expected {day: reason} over days 0..13)
    ("no such feed: every day but a delivered one", None, [3], {n: NO_SUCH_FEED for n in range(14) if n != 3}),
    ("never delivered, no onboarded: every day", source(), [], {n: BEFORE_ONBOARDING for n in range(14)}),
    (
        "daily, no onboarded: before the first delivery only; absent days after it stay missing (gaps)",
        source(),
        [4, 5, 7],
        {0: BEFORE_ONBOARDING, 1: BEFORE_ONBOARDING, 2: BEFORE_ONBOARDING, 3: BEFORE_ONBOARDING},
    ),
    (
        "daily, onboarded day 2, never delivered: days 2.. are real gaps",
        source(onboarded=2),
        [],
        {0: BEFORE_ONBOARDING, 1: BEFORE_ONBOARDING},
    ),
    (
        "daily, a delivery before onboarded is not closed",
        source(onboarded=5),
        [1],
        {0: BEFORE_ONBOARDING, 2: BEFORE_ONBOARDING, 3: BEFORE_ONBOARDING, 4: BEFORE_ONBOARDING},
    ),
    (
        "inactive: every absent day from onboarding",
        source(active=False),
        [2, 3],
        {0: BEFORE_ONBOARDING, 1: BEFORE_ONBOARDING, **{n: INACTIVE for n in range(4, 14)}},
    ),
    (
        "weekly anchored on its deliveries: day 7 delivered, day 14 outside",
        source(168),
        [0, 7],
        {n: NOT_EXPECTED for n in (*range(1, 7), *range(8, 14))},
    ),
    (
        "weekly, a missed week stays missing (day 7), the days around it are closed",
        source(168),
        [0],
        {n: NOT_EXPECTED for n in (*range(1, 7), *range(8, 14))},
    ),
    (
        "weekly whose day moves: anchored on the last delivery at or before each day",
        source(168),
        [0, 9],
        {n: NOT_EXPECTED for n in (*range(1, 7), 8, *range(10, 14))},
    ),
    (
        "weekly, onboarded day 2 and never delivered: anchored on onboarded",
        source(168, onboarded=2),
        [],
        {0: BEFORE_ONBOARDING, 1: BEFORE_ONBOARDING, **{n: NOT_EXPECTED for n in (*range(3, 9), *range(10, 14))}},
    ),
    (
        "every 36 hours is every 2 days",
        source(36),
        [0],
        {n: NOT_EXPECTED for n in range(1, 14, 2)},
    ),
]


@pytest.mark.parametrize(("entry", "delivered", "expected"), [case[1:] for case in CASES], ids=[c[0] for c in CASES])
def test_days_to_close(entry: Source | None, delivered: list[int], expected: dict[int, str]) -> None:
    assert closed(entry, delivered) == expected


def test_the_anchor_may_come_from_before_the_range() -> None:
    """The job passes the last delivered day before its window: the weekly rhythm carries on."""
    assert closed(source(168), [0], first=10, last=15) == {n: NOT_EXPECTED for n in (10, 11, 12, 13, 15)}
    # The first delivered day (from before the window) makes the window's days onboarded.
    assert closed(source(), [0], first=10, last=12) == {}


def test_an_empty_range_closes_nothing() -> None:
    assert closed(None, [], first=5, last=4) == {}


@pytest.mark.parametrize(("hours", "days"), [(1, 1), (24, 1), (25, 2), (48, 2), (168, 7)])
def test_cadence_days(hours: int, days: int) -> None:
    assert cadence_days(hours) == days
