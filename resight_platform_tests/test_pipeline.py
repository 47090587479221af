"""How run_pipeline cuts the landed dates into rectangles of dates × sources (one run each)."""

from __future__ import annotations

from datetime import date, timedelta

from resight_platform.pipeline import _runs_of_equal_span


def test_a_weekly_history_then_a_dense_fortnight_are_two_rectangles() -> None:
    sundays = [date(2025, 4, 6) + timedelta(weeks=w) for w in range(78)]  # one source, weekly
    dense = [date(2026, 10, 1) + timedelta(days=d) for d in range(14)]  # sources 0..37, daily
    spans = {day: (31, 31) for day in sundays} | {day: (0, 37) for day in dense}
    spans[date(2026, 10, 4)] = spans[date(2026, 10, 11)] = (0, 37)  # the history's Sundays in the fortnight
    runs = _runs_of_equal_span(spans)
    assert [(span, days[0], days[-1], len(days)) for span, days in runs] == [
        ((31, 31), date(2025, 4, 6), date(2026, 9, 27), 78),  # across the six days between its files
        ((0, 37), date(2026, 10, 1), date(2026, 10, 14), 14),
    ]


def test_a_span_that_changes_and_comes_back_is_cut_at_each_change() -> None:
    days = [date(2026, 1, d) for d in (1, 2, 5, 6, 9)]
    spans = dict(zip(days, [(0, 0), (0, 0), (0, 3), (0, 0), (0, 0)], strict=True))
    assert [(span, len(run)) for span, run in _runs_of_equal_span(spans)] == [((0, 0), 2), ((0, 3), 1), ((0, 0), 2)]
    assert _runs_of_equal_span({}) == []
