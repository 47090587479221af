"""Which runs the batch pipeline makes of the landed partitions: rectangles of business dates ×
source positions (``pipeline.run_pipeline``: everything landed, every file covered). The landing
sensor's runs are sets of partitions instead (``io/watch.batch_files``). No Dagster here.

**The cost model.** A rectangle is one Dagster range run over every partition in it, including
those without files. What it costs is counted in bytes: each partition its landed bytes plus
``PARTITION_COST_BYTES`` (Dagster's events for it and an empty Parquet file, about what reading
1 MiB costs), and each run ``run_cost_bytes`` (``merge_gap_bytes``: starting a run costs seconds,
about what reading 64 MiB costs). Rectangles are joined while what the joined
one re-reads beyond them costs less than the runs it saves. So a weekly partner's year of files is
one run across its days without files (six empty partitions a week against a run a week), and that
long thin rectangle never joins a dense fortnight of thirty sources into a year × thirty box.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, timedelta
from heapq import heappop, heappush
from itertools import accumulate, count, pairwise

__all__ = [
    "FILE_COST_BYTES",
    "PARTITION_COST_BYTES",
    "Cell",
    "Rectangle",
    "RectangleCost",
    "balance",
    "cover",
    "merge_rectangles",
    "plan_rectangles",
]

#: What reading one more (even empty) partition costs a run besides its bytes: Dagster's events
#: for it and an empty Parquet file, about what reading 1 MiB costs.
PARTITION_COST_BYTES = 1 << 20

#: What reading one more file costs a run besides its bytes (opening it, its ledger rows, its
#: slices): measured on the demo, a file costs about half what an empty partition does.
FILE_COST_BYTES = 1 << 19

#: A rectangle of business dates × source positions: ``(first_day, last_day, first, last)``.
Rectangle = tuple[date, date, int, int]

#: A landed partition: ``(business_date, source position)``.
Cell = tuple[date, int]


def _overlap(a: Rectangle, b: Rectangle) -> bool:
    return a[0] <= b[1] and b[0] <= a[1] and a[2] <= b[3] and b[2] <= a[3]


def _bounding(a: Rectangle, b: Rectangle) -> Rectangle:
    return (min(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), max(a[3], b[3]))


class RectangleCost:
    """What running a rectangle costs, in bytes: its partitions' landed bytes plus
    ``PARTITION_COST_BYTES`` each; ``None`` when a day of it is absent from ``partition_bytes``
    (not known).

    ``partition_bytes`` maps a day to the bytes landed per source position that day; a position
    absent from a known day has no files.
    """

    def __init__(self, partition_bytes: Mapping[date, Mapping[int, int]]) -> None:
        self._bytes = partition_bytes
        self._days: dict[date, tuple[list[int], list[int]] | None] = {}

    def _day(self, day: date) -> tuple[list[int], list[int]] | None:
        """The day's positions with bytes, sorted, and the running total of their bytes."""
        if day not in self._days:
            sizes = self._bytes.get(day)
            if sizes is None:
                self._days[day] = None
            else:
                positions = sorted(p for p, n in sizes.items() if n)
                self._days[day] = (positions, [0, *accumulate(sizes[p] for p in positions)])
        return self._days[day]

    def __call__(self, rectangle: Rectangle) -> int | None:
        first_day, last_day, first, last = rectangle
        per_day = (last - first + 1) * PARTITION_COST_BYTES
        total = 0
        day = first_day
        while day <= last_day:
            known = self._day(day)
            if known is None:
                return None
            positions, running = known
            total += per_day + running[bisect_right(positions, last)] - running[bisect_left(positions, first)]
            day += timedelta(days=1)
        return total


def merge_rectangles(
    rectangles: Sequence[Rectangle], cost: Callable[[Rectangle], int | None], run_cost_bytes: int
) -> list[Rectangle]:
    """Merge disjoint rectangles into their bounding box while what the box re-reads beyond them
    costs less than the runs it saves (``run_cost_bytes`` each): files of different days and
    sources land in one run when the partitions between are cheap, as a steady trickle of
    deliveries or a weekly partner's days without files are.

    Greedy, cheapest first: of the pairs next to each other by day or by source, the one whose box
    adds the least; the box absorbs every rectangle it overlaps (one run instead of all of them)
    and is kept if it is worth the runs it saves; a pair that is not worth it is passed over, not
    the end of merging. Pairs wait in a heap, each box costed once (``cost`` is asked once per
    rectangle; ``None``: not known, never merged): 2,600 rectangles (fifty weekly partners over a
    year beside a dense fortnight) merge into 36 in about 10 s on a loaded pair of cores, where
    each run saved is ~4 s.
    """
    known: dict[Rectangle, int | None] = {}

    def cost_of(rectangle: Rectangle) -> int | None:
        if rectangle not in known:
            known[rectangle] = cost(rectangle)
        return known[rectangle]

    def sort_keys(k: int, r: Rectangle) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
        """Rectangle ``k``'s place by day, then by source (its id last: keys are unique)."""
        return (r[0].toordinal(), r[2], k), (r[2], r[0].toordinal(), k)

    alive: dict[int, Rectangle] = dict(enumerate(rectangles))
    by_day = sorted(sort_keys(k, r)[0] for k, r in alive.items())
    by_source = sorted(sort_keys(k, r)[1] for k, r in alive.items())
    heap: list[tuple[int, int, int, int]] = []
    pushed = count()

    def push(i: int, j: int) -> None:
        ci, cj, joined = cost_of(alive[i]), cost_of(alive[j]), cost_of(_bounding(alive[i], alive[j]))
        if ci is not None and cj is not None and joined is not None:
            heappush(heap, (joined - ci - cj, next(pushed), i, j))

    for a, b in pairwise(by_day):
        push(a[2], b[2])
    for c, d in pairwise(by_source):
        push(c[2], d[2])
    new_id = len(alive)
    while heap:
        _, _, i, j = heappop(heap)
        if i not in alive or j not in alive:
            continue
        box = _bounding(alive[i], alive[j])
        absorbed = {i, j}
        grown = True
        while grown:  # the box takes in whatever it overlaps, which may grow it
            grown = False
            for k, other in alive.items():
                if k not in absorbed and _overlap(box, other):
                    absorbed.add(k)
                    box = _bounding(box, other)
                    grown = True
        box_cost = cost_of(box)
        parts = [cost_of(alive[k]) for k in absorbed]
        if box_cost is None or any(c is None for c in parts):
            continue
        if box_cost - sum(c for c in parts if c is not None) > (len(absorbed) - 1) * run_cost_bytes:
            continue
        for k in absorbed:
            day_key, source_key = sort_keys(k, alive.pop(k))
            for order, key in ((by_day, day_key), (by_source, source_key)):
                at = bisect_left(order, key)
                del order[at]
                if 0 < at < len(order) and order[at - 1][2] in alive and order[at][2] in alive:
                    push(order[at - 1][2], order[at][2])  # neighbours now
        alive[new_id] = box
        day_key, source_key = sort_keys(new_id, box)
        for order, key in ((by_day, day_key), (by_source, source_key)):
            at = bisect_left(order, key)
            order.insert(at, key)
            if at > 0:
                push(order[at - 1][2], new_id)
            if at + 1 < len(order):
                push(new_id, order[at + 1][2])
        new_id += 1
    return sorted(alive.values())


def plan_rectangles(
    cells: Iterable[Cell],
    *,
    run_cost_bytes: int,
    partition_bytes: Mapping[date, Mapping[int, int]] | None = None,
) -> list[Rectangle]:
    """The rectangles that read the landed ``cells``, oldest first: every cell in exactly one.

    Per date, the positions with cells are cut into spans of neighbours; days that follow each
    other with an equal span (of several that day, too) become one rectangle, and rectangles are
    merged into their bounding box while it costs less than the runs it saves
    (:func:`merge_rectangles`; each partition its bytes in ``partition_bytes`` plus
    ``PARTITION_COST_BYTES``, each run ``run_cost_bytes``). With ``partition_bytes`` ``None``
    (nothing known beyond the cells) only equal spans are joined.
    """
    by_day: dict[date, set[int]] = defaultdict(set)
    for day, at in cells:
        by_day[day].add(at)

    spans: list[tuple[date, int, int]] = []
    for day in sorted(by_day):
        positions = sorted(by_day[day])
        start = prev = positions[0]
        for p in positions[1:]:
            if p != prev + 1:
                spans.append((day, start, prev))
                start = p
            prev = p
        spans.append((day, start, prev))

    rectangles: list[Rectangle] = []
    latest: dict[tuple[int, int], int] = {}  # a span's latest rectangle, to extend by the next day
    for day, start, end in spans:
        k = latest.get((start, end))
        if k is not None and rectangles[k][1] == day - timedelta(days=1):
            rectangles[k] = (rectangles[k][0], day, start, end)
        else:
            latest[(start, end)] = len(rectangles)
            rectangles.append((day, day, start, end))
    if partition_bytes:
        rectangles = merge_rectangles(rectangles, RectangleCost(partition_bytes), run_cost_bytes)
    return rectangles


def cover(landed: Mapping[Cell, int], *, run_cost_bytes: int) -> list[Rectangle]:
    """Rectangles that together read every landed cell (its bytes as the value), when the listing
    holds everything landed: every day from the first to the last is known, and a partition
    without a cell has no files."""
    if not landed:
        return []
    first, last = min(day for day, _ in landed), max(day for day, _ in landed)
    partition_bytes: dict[date, dict[int, int]] = {}
    day = first
    while day <= last:
        partition_bytes[day] = {}
        day += timedelta(days=1)
    for (day, at), size in landed.items():
        partition_bytes[day][at] = size
    return plan_rectangles(landed, run_cost_bytes=run_cost_bytes, partition_bytes=partition_bytes)


def _split_by_days(rectangle: Rectangle, day_costs: Sequence[int], pieces: int) -> list[Rectangle]:
    """``rectangle`` cut along its days into at most ``pieces`` rectangles of about equal cost
    (``day_costs``: each of its days' cost, oldest first)."""
    first_day, last_day, first, last = rectangle
    total = sum(day_costs)
    cuts: list[Rectangle] = []
    start, running = 0, 0
    for i, cost in enumerate(day_costs):
        running += cost
        if len(cuts) < pieces - 1 and running >= total * (len(cuts) + 1) / pieces and i + 1 < len(day_costs):
            cuts.append((first_day + timedelta(days=start), first_day + timedelta(days=i), first, last))
            start = i + 1
    cuts.append((first_day + timedelta(days=start), last_day, first, last))
    return cuts


def balance(
    rectangles: Sequence[Rectangle],
    cell_cost: Mapping[Cell, int],
    *,
    workers: int,
    run_cost_bytes: int,
    pieces_per_worker: int = 2,
) -> list[Rectangle]:
    """The ``rectangles`` cut along their days so that ``workers`` processes running them side by
    side finish together, costliest first (the order to submit them in: a free worker takes the
    next, so the small pieces at the end fill the gaps).

    A rectangle costs ``run_cost_bytes`` plus each of its partitions: ``cell_cost`` for one with
    files (its bytes, ``FILE_COST_BYTES`` a file and ``PARTITION_COST_BYTES``), else
    ``PARTITION_COST_BYTES``. One whose cost is over 1.5 times a fair share (the total over
    ``workers × pieces_per_worker``) is cut into pieces near that share, each paying a run: the
    demo's dense fortnight of thirty sources, twice the CPU of its weekly partner's 80 weeks, no
    longer keeps one core busy while the other waits. Nothing changes for one worker.
    """
    if workers <= 1 or not rectangles:
        return list(rectangles)

    def day_costs(rectangle: Rectangle) -> list[int]:
        first_day, last_day, first, last = rectangle
        costs = []
        day = first_day
        while day <= last_day:
            costs.append(sum(cell_cost.get((day, at), PARTITION_COST_BYTES) for at in range(first, last + 1)))
            day += timedelta(days=1)
        return costs

    costed = [(rectangle, day_costs(rectangle)) for rectangle in rectangles]
    total = sum(run_cost_bytes + sum(days) for _, days in costed)
    share = total / (workers * pieces_per_worker)
    pieces: list[tuple[int, Rectangle]] = []
    for rectangle, days in costed:
        cost = run_cost_bytes + sum(days)
        count_ = min(len(days), round(cost / share)) if cost > 1.5 * share else 1
        if count_ <= 1:
            pieces.append((cost, rectangle))
            continue
        for piece in _split_by_days(rectangle, days, count_):
            offset = (piece[0] - rectangle[0]).days
            span = (piece[1] - piece[0]).days + 1
            pieces.append((run_cost_bytes + sum(days[offset : offset + span]), piece))
    return [rectangle for _, rectangle in sorted(pieces, key=lambda item: (-item[0], item[1]))]
