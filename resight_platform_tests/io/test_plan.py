"""The batch pipeline's run planner: rectangles of dates × source positions, chosen by what a run
costs against what re-reading a partition costs."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

from resight_platform.io.plan import (
    PARTITION_COST_BYTES,
    RectangleCost,
    balance,
    cover,
    merge_rectangles,
    plan_rectangles,
)

DAY = date(2026, 11, 25)
MiB = 1 << 20


def _unit_cost(r: tuple[date, date, int, int]) -> int:
    """One unit per partition."""
    return ((r[1] - r[0]).days + 1) * (r[3] - r[2] + 1)


def test_rectangles_merge_while_the_box_costs_less_than_the_runs_it_saves() -> None:
    d0, d1, d2 = DAY - timedelta(days=2), DAY - timedelta(days=1), DAY
    diagonal = [(d0, d0, 0, 0), (d1, d1, 2, 2), (d2, d2, 4, 4)]
    # The first two: a 2 x 3 box re-reads 4 more partitions; then with the third, 15 - 6 - 1 = 8 more.
    assert merge_rectangles(diagonal, _unit_cost, run_cost_bytes=4) == [(d0, d1, 0, 2), (d2, d2, 4, 4)]
    assert merge_rectangles(diagonal, _unit_cost, run_cost_bytes=8) == [(d0, d2, 0, 4)]
    assert merge_rectangles(diagonal, _unit_cost, run_cost_bytes=3) == diagonal
    assert merge_rectangles(diagonal, lambda r: None, run_cost_bytes=100) == diagonal  # unknown: kept apart


def test_a_box_takes_in_the_rectangles_it_overlaps() -> None:
    d0, d1 = DAY - timedelta(days=1), DAY
    # Two sources on d0, one each on d1: the box of the first two covers the third, which comes in
    # with it, so the box re-reads nothing that was not asked for and saves two runs.
    rects = [(d0, d0, 0, 1), (d1, d1, 0, 0), (d1, d1, 1, 1)]
    assert merge_rectangles(rects, _unit_cost, run_cost_bytes=0) == [(d0, d1, 0, 1)]


def test_merge_asks_the_cost_of_a_rectangle_once() -> None:
    asked: list[tuple[date, date, int, int]] = []

    def cost(r: tuple[date, date, int, int]) -> int:
        asked.append(r)
        return _unit_cost(r)

    weeks = [(DAY + timedelta(weeks=w), DAY + timedelta(weeks=w), 0, 0) for w in range(30)]
    assert merge_rectangles(weeks, cost, run_cost_bytes=6) == [(weeks[0][0], weeks[-1][0], 0, 0)]
    assert len(asked) == len(set(asked))


def test_a_rectangle_costs_its_bytes_and_a_partition_each() -> None:
    before = DAY - timedelta(days=1)
    cost = RectangleCost({before: {1: 500, 7: 9}, DAY: {2: 100}})
    assert cost((before, before, 0, 3)) == 4 * PARTITION_COST_BYTES + 500
    assert cost((before, DAY, 1, 2)) == 4 * PARTITION_COST_BYTES + 600
    assert cost((before, before, 6, 9)) == 4 * PARTITION_COST_BYTES + 9
    assert cost((before - timedelta(days=1), before, 0, 0)) is None  # a day not known


def test_every_cell_is_covered_and_a_cheap_gap_is_read_again() -> None:
    cells = [(DAY, 0), (DAY, 1), (DAY, 5), (DAY - timedelta(days=1), 3)]
    before = DAY - timedelta(days=1)
    assert plan_rectangles(cells, run_cost_bytes=0) == [(before, before, 3, 3), (DAY, DAY, 0, 1), (DAY, DAY, 5, 5)]
    # Both days known and empty between: one run re-reads 8 empty partitions rather than pay two more.
    known = {before: {}, DAY: {}}
    assert plan_rectangles(cells, run_cost_bytes=64 * MiB, partition_bytes=known) == [(before, DAY, 0, 5)]


def _covers_every_cell(rectangles: list[tuple[date, date, int, int]], cells: dict[tuple[date, int], int]) -> bool:
    return all(sum(a <= d <= b and s <= p <= e for a, b, s, e in rectangles) == 1 for d, p in cells)


def test_cover_runs_a_weekly_history_once_and_keeps_it_apart_from_a_dense_block() -> None:
    first = date(2025, 4, 6)
    sundays = [first + timedelta(weeks=w) for w in range(80)]
    dense = [sundays[-1] - timedelta(days=d) for d in range(14)]
    landed = {(day, 6): 40_000 for day in sundays}
    landed |= {(day, p): 200_000 for day in dense for p in (0, 2, 3, 5, 6, 8, 9)}
    rectangles = cover(landed, run_cost_bytes=64 * MiB)
    assert rectangles == [(first, dense[-1] - timedelta(days=1), 6, 6), (dense[-1], dense[0], 0, 9)]
    assert _covers_every_cell(rectangles, landed)
    # A run worth less than a week's six empty days: one run per week, still apart from the block.
    rectangles = cover(landed, run_cost_bytes=5 * PARTITION_COST_BYTES)
    history = [(a, b) for a, b, s, e in rectangles if a < dense[-1]]
    assert history == [(day, day) for day in sundays if day < dense[-1]]
    assert _covers_every_cell(rectangles, landed)


def test_cover_joins_a_span_that_changes_and_comes_back_when_the_box_is_cheap() -> None:
    days = [date(2026, 1, d) for d in (1, 2, 5, 6, 9)]
    landed = {(day, 0): 1000 for day in days} | {(days[2], 3): 1000}
    assert cover(landed, run_cost_bytes=64 * MiB) == [(days[0], days[-1], 0, 3)]  # 36 partitions, one run
    pieces = cover(landed, run_cost_bytes=PARTITION_COST_BYTES)  # a run is worth one empty partition
    assert _covers_every_cell(pieces, landed) and len(pieces) > 1
    assert cover({}, run_cost_bytes=64 * MiB) == []


def test_two_weekly_partners_of_one_day_are_a_run_each_not_one_wide_run_a_week() -> None:
    # Joined day by day first, their files of each Sunday (39 empty partitions apart, under a run)
    # would become a wide span per week that no week then joins the next: 52 runs instead of two.
    sundays = [date(2025, 1, 5) + timedelta(weeks=w) for w in range(52)]
    landed = {(day, p): 40_000 for day in sundays for p in (0, 40)}
    assert cover(landed, run_cost_bytes=64 * MiB) == [
        (sundays[0], sundays[-1], 0, 0),
        (sundays[0], sundays[-1], 40, 40),
    ]


def test_days_with_the_same_spans_are_one_rectangle_per_span() -> None:
    days = [DAY + timedelta(days=d) for d in range(5)]
    cells = [(day, p) for day in days for p in (0, 1, 7)] + [(days[2], 4), (days[2], 2)]
    assert plan_rectangles(cells, run_cost_bytes=0) == [
        (days[0], days[1], 0, 1),
        (days[0], days[4], 7, 7),  # across the day it had a neighbouring span
        (days[2], days[2], 0, 2),
        (days[2], days[2], 4, 4),
        (days[3], days[4], 0, 1),
    ]


def test_balance_cuts_what_is_over_a_fair_share_into_contiguous_pieces_costliest_first() -> None:
    day = date(2026, 10, 1)
    big = (day, day + timedelta(days=9), 0, 3)  # ten days × four sources, files everywhere
    small = (day, day, 10, 10)
    cells = {(day + timedelta(days=d), at): 8 * PARTITION_COST_BYTES for d in range(10) for at in range(4)}
    pieces = balance([big, small], cells, workers=2, run_cost_bytes=PARTITION_COST_BYTES)
    assert small in pieces and pieces[-1] == small  # the cheapest last
    cut = sorted(p for p in pieces if p != small)
    assert len(cut) == 4 and all(p[2:] == (0, 3) for p in cut)
    assert cut[0][0] == big[0] and cut[-1][1] == big[1]
    assert all(a[1] + timedelta(days=1) == b[0] for a, b in pairwise(cut))
    assert {(p[1] - p[0]).days + 1 for p in cut} <= {2, 3}
    assert balance([big, small], cells, workers=1, run_cost_bytes=PARTITION_COST_BYTES) == [big, small]
