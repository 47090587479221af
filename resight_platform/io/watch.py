"""What the landing sensor sees on a tick: listing, the ledger's verdict per file, and the batches.

No Dagster here: the sensor in ``defs/sensors.py`` turns a :class:`TickPlan` into run requests.

**Listing.** A tick lists two things, never the whole landing history:

- the *hot window*: for every registered (provider, feed), its folder from ``today - hot_days`` on,
  with S3's ``StartAfter`` (a local directory skips older date folders without reading them), so a
  tick costs one listing call per source plus the recent files, however many years the bucket holds;
- one step of the *sweep*: ``sweep_pages`` pages of a listing of the whole landing zone, resumed
  from the cursor, wrapping at the end. It finds what the hot window cannot: files for dates older
  than the window (late deliveries), folders of unregistered providers and feeds, misplaced keys.

**Identity.** A file is its key plus its listing ETag (S3's ETag; size and mtime on a local disk).
The ledger stores both with the content's SHA-256 once the file is read. A listed file is *new*
when the ledger has no row for its key, *changed* when the ETag differs, *known* otherwise. A
changed file of the same size whose content hashes to the ledger's checksum was only touched or
re-uploaded: its new ETag is recorded and nothing runs (within ``hash_budget_bytes`` per tick).

**In flight.** Files the sensor requests are written to the ledger as ``queued`` with the run key
of the run that will read them, so the next tick does not request them again. If the sensor is
stopped between writing that and the run being created, the run never exists: such rows are
requested again once ``orphan_after`` has passed (Dagster's run keys make a repeated request
harmless).
A file its run found gone is closed as ``vanished`` by bronze; if it is listed again it is new.

**Retired partitions.** A new or changed file of a (provider, feed, date) partition whose landing
files retention deleted (``ops.retention_log``) is refused as :data:`PARTITION_RETIRED`: a load
would rebuild the partition from it alone (``docs/retention.md``).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice

from resight_platform.io.landing import HashingReader, check_listed
from resight_platform.io.ops import LedgerEntry
from resight_platform.io.storage import ObjectInfo, ObjectStore
from resight_platform.settings import WatchSettings
from resight_platform.sources.landing import LandingKey, LandingKeyError, parse_landing_key
from resight_platform.sources.registry import Registry

__all__ = [
    "PARTITION_RETIRED",
    "Area",
    "Batch",
    "Busy",
    "Cell",
    "LedgerEntry",
    "Refused",
    "TickPlan",
    "WatchCursor",
    "WatchSettings",
    "batch_files",
    "list_hot",
    "list_landing",
    "plan_tick",
    "retired_candidates",
    "retired_detail",
    "run_key_of",
    "sweep_step",
]


#: The refusal of a late file whose partition's earlier landing files retention deleted: loading it
#: would rebuild bronze, silver and the facts of the partition from this file alone.
PARTITION_RETIRED = "partition_retired"


def retired_detail(retired_at: datetime) -> str:
    """Why a late file for a retired partition is dead-lettered instead of loaded."""
    return (
        f"its partition's earlier files were retired on {retired_at:%Y-%m-%d}; loading it alone would replace"
        " the partition's rows with its own: restate from the archive"
    )


@dataclass
class WatchCursor:
    """The sensor's cursor: where the sweep resumes, how many sweeps have completed, and when the
    last one started (``swept_at``, ISO; the event path sweeps every ``sweep_interval``)."""

    sweep_after: str = ""
    sweeps: int = 0
    swept_at: str = ""

    def dumps(self) -> str:
        return json.dumps(
            {"sweep_after": self.sweep_after, "sweeps": self.sweeps, "swept_at": self.swept_at}, sort_keys=True
        )

    @classmethod
    def loads(cls, text: str | None) -> WatchCursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(
            sweep_after=str(data.get("sweep_after", "")),
            sweeps=int(data.get("sweeps", 0)),
            swept_at=str(data.get("swept_at", "")),
        )


@dataclass(frozen=True)
class Refused:
    """A listed file that breaks the landing contract or the registry: it goes to dead-letter."""

    info: ObjectInfo
    code: str
    detail: str


#: A date × source partition: ``(business_date, source partition key)``.
Cell = tuple[date, str]

#: A rectangle of business dates × source partition keys: ``(first_day, last_day, first, last)``.
Area = tuple[date, date, str, str]


@dataclass(frozen=True)
class Batch:
    """Files to read in one run: a set of date × source partitions (``cells``, sorted), the feeds
    with files in them and, per feed, its cells (``feed_cells``: what the run reads of each feed).
    ``facts``: every file is a sales file of a source with only sales files this tick, so the run
    may build the facts of its partitions too."""

    cells: tuple[Cell, ...]
    feeds: tuple[str, ...]
    files: tuple[tuple[ObjectInfo, LandingKey], ...]
    feed_cells: tuple[tuple[str, tuple[Cell, ...]], ...] = ()
    facts: bool = False
    run_key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.run_key:  # computed once: it hashes every file of the batch
            object.__setattr__(self, "run_key", run_key_of("load", (info for info, _ in self.files)))

    def cells_by_feed(self) -> dict[str, list[Cell]]:
        """Per feed, the cells with a file of it, sorted."""
        return {feed: list(cells) for feed, cells in self.feed_cells}


@dataclass(frozen=True)
class Busy:
    """The date × source partitions runs in flight are writing: a set run's exact ``cells``, a
    range run's rectangles (``areas``: backfills, ``gold_facts_job``, ``medallion_job``)."""

    cells: frozenset[Cell] = frozenset()
    areas: tuple[Area, ...] = ()


@dataclass
class TickPlan:
    """Everything one tick decided."""

    cursor: WatchCursor
    listed: int = 0
    batches: list[Batch] = field(default_factory=list)
    refused: list[list[Refused]] = field(default_factory=list)
    touched: list[ObjectInfo] = field(default_factory=list)
    deferred: int = 0
    known: int = 0
    orphans: int = 0
    #: The deferred files themselves (new or changed, within the landing contract, not in a batch).
    waiting: list[ObjectInfo] = field(default_factory=list)

    @property
    def requested_files(self) -> int:
        return sum(len(b.files) for b in self.batches)


def run_key_of(kind: str, infos: Iterable[ObjectInfo]) -> str:
    """A run key naming exactly these file versions: the same files always give the same key."""
    digest = hashlib.sha256(kind.encode())
    for info in sorted(infos, key=lambda i: i.key):
        digest.update(b"\0" + info.key.encode("utf-8", "surrogateescape") + b"\0" + info.etag.encode())
    return f"{kind}-{digest.hexdigest()[:24]}"


def list_hot(store: ObjectStore, registry: Registry, today: date, settings: WatchSettings) -> dict[str, ObjectInfo]:
    """The hot window of every registered source: one listing per source (the listing path)."""
    since = (today - timedelta(days=settings.hot_days)).isoformat()

    def hot(source: tuple[str, str]) -> list[ObjectInfo]:
        provider, feed = source
        folder = f"{provider}/{feed}/"
        # "p/f/2026-11-19" sorts before every key of that date's folder and after older ones.
        return list(store.list(folder, start_after=folder + since))

    found: dict[str, ObjectInfo] = {}
    sources = sorted(registry.sources)
    with ThreadPoolExecutor(max_workers=max(1, settings.list_workers)) as pool:
        for infos in pool.map(hot, sources):
            found.update((info.key, info) for info in infos)
    return found


def sweep_step(
    store: ObjectStore,
    cursor: WatchCursor,
    settings: WatchSettings,
    *,
    now: datetime | None = None,
    interval: timedelta = timedelta(0),
) -> tuple[dict[str, ObjectInfo], WatchCursor]:
    """One step of the sweep: ``sweep_pages`` pages of the whole landing zone's listing from the
    cursor on, and the cursor to resume from. A new sweep starts only once ``interval`` has passed
    since the last one started (the event path's slow safety net; the listing path sweeps on)."""
    due = not cursor.swept_at or now is None or now - datetime.fromisoformat(cursor.swept_at) >= interval
    if not cursor.sweep_after and not due:
        return {}, cursor
    started = cursor.swept_at if cursor.sweep_after or now is None else now.isoformat()
    limit = settings.sweep_pages * settings.page_size
    swept = list(islice(store.list("", start_after=cursor.sweep_after), limit))
    if len(swept) < limit:  # reached the end: the next tick starts a new sweep
        following = WatchCursor(sweep_after="", sweeps=cursor.sweeps + 1, swept_at=started)
    else:
        following = WatchCursor(sweep_after=swept[-1].key, sweeps=cursor.sweeps, swept_at=started)
    return {info.key: info for info in swept}, following


def list_landing(
    store: ObjectStore, registry: Registry, cursor: WatchCursor, today: date, settings: WatchSettings
) -> tuple[dict[str, ObjectInfo], WatchCursor]:
    """The hot window of every registered source plus one step of the sweep, by key, and the
    cursor to resume the sweep from."""
    found = list_hot(store, registry, today, settings)
    swept, following = sweep_step(store, cursor, settings)
    found.update(swept)
    return found, following


def _same_content(store: ObjectStore, info: ObjectInfo, entry: LedgerEntry) -> bool:
    with store.open_read(info.key) as raw:
        reader = HashingReader(raw)
        reader.drain()
    return reader.digest == entry.checksum


def plan_tick(
    *,
    store: ObjectStore,
    registry: Registry,
    listed: Mapping[str, ObjectInfo],
    ledger: Mapping[str, LedgerEntry],
    launched_run_keys: set[str],
    cursor: WatchCursor,
    source_order: Sequence[str],
    source_of: Mapping[str, str],
    first_day: date,
    today: date,
    now: datetime,
    settings: WatchSettings,
    busy: Busy = Busy(),
    retired: Mapping[tuple[str, str, date], datetime] | None = None,
) -> TickPlan:
    """Decide what to request for the files ``listed`` given what ``ledger`` knows.

    ``launched_run_keys`` are the run keys of queued ledger rows whose run exists (in any state: a
    failed run is for a person to re-execute, not for the sensor to repeat); ``source_order`` is
    the source partitions in Dagster's order (a range run's sources are contiguous in it) and
    ``source_of`` maps a provider to its source partition. Dates before ``first_day`` (the first
    partition) or after ``today + 1`` (the last) have no partition and are refused.

    ``busy`` are the partitions of runs in flight (queued or started, any job): a new file for one
    of them waits (deferred) until that run is done, so a partition is never written by two runs at
    once (the later run could finish first, and the earlier one, which listed fewer files, would
    then overwrite it).

    ``retired`` maps a (provider, feed, date) partition whose landing files retention deleted to
    when (``resight_platform.retention.retired_partitions``): a file for one is refused as
    :data:`PARTITION_RETIRED`, never loaded (see :func:`retired_candidates`). Files deferred are
    in ``plan.waiting``.
    """
    plan = TickPlan(cursor=cursor, listed=len(listed))
    fresh: list[tuple[ObjectInfo, LandingKey]] = []
    refused: list[Refused] = []
    hash_budget = settings.hash_budget_bytes
    last_day = today + timedelta(days=1)
    for key in sorted(listed):
        info = listed[key]
        entry = ledger.get(key)
        if entry is not None and entry.etag == info.etag and entry.status != "vanished":
            orphaned = (
                entry.status == "queued"
                and entry.run_key not in launched_run_keys
                and (entry.queued_at is None or now - entry.queued_at >= settings.orphan_after)
            )
            if not orphaned:
                plan.known += 1
                continue
            plan.orphans += 1
        elif (
            entry is not None
            and not info.symlink  # never opened: refused below
            and entry.checksum is not None
            and entry.bytes == info.size
            and info.size <= hash_budget
            and entry.status != "queued"
        ):
            hash_budget -= info.size
            if _same_content(store, info, entry):
                plan.touched.append(info)
                continue
        try:
            landing = check_listed(info, registry)
        except LandingKeyError as exc:
            refused.append(Refused(info, exc.code, exc.detail))
            continue
        if landing.date < first_day or landing.date > last_day:
            refused.append(
                Refused(
                    info,
                    "date_out_of_range",
                    f"business date must be between {first_day.isoformat()} and {last_day.isoformat()}",
                )
            )
            continue
        retired_at = (retired or {}).get((landing.provider, landing.feed, landing.date))
        if retired_at is not None:
            refused.append(Refused(info, PARTITION_RETIRED, retired_detail(retired_at)))
            continue
        fresh.append((info, landing))
    plan.batches, plan.deferred = batch_files(fresh, source_order, source_of, settings, busy)
    if plan.deferred:
        batched = {info.key for batch in plan.batches for info, _ in batch.files}
        plan.waiting = [info for info, _ in fresh if info.key not in batched]
    chunk = settings.max_dead_letter_per_run
    plan.refused = [refused[i : i + chunk] for i in range(0, len(refused), chunk)]
    return plan


def retired_candidates(
    listed: Mapping[str, ObjectInfo], ledger: Mapping[str, LedgerEntry]
) -> set[tuple[str, str, date]]:
    """The (provider, feed, date) partitions of the listed files the ledger does not know as they
    are (new or changed): the partitions a tick may load, whose retirement it must look up."""
    out: set[tuple[str, str, date]] = set()
    for key, info in listed.items():
        entry = ledger.get(key)
        if entry is not None and entry.etag == info.etag and entry.status != "vanished":
            continue
        try:
            landing = parse_landing_key(key)
        except LandingKeyError:
            continue
        out.add((landing.provider, landing.feed, landing.date))
    return out


def _blocked(busy: Busy, source_order: Sequence[str]) -> Callable[[Cell], bool]:
    """Whether a cell is one ``busy`` holds: one of its set runs' cells, or inside one of its range
    runs' rectangles (by the sources' ``source_order``; a rectangle whose ends are not in it is no
    range of source partitions and is left out)."""
    position = {source: i for i, source in enumerate(source_order)}
    areas = [
        (first_day, last_day, position[first], position[last])
        for first_day, last_day, first, last in busy.areas
        if first in position and last in position
    ]

    def blocked(cell: Cell) -> bool:
        if cell in busy.cells:
            return True
        day, source = cell
        at = position.get(source)
        return at is not None and any(a <= day <= b and lo <= at <= hi for a, b, lo, hi in areas)

    return blocked


def batch_files(
    files: Sequence[tuple[ObjectInfo, LandingKey]],
    source_order: Sequence[str],
    source_of: Mapping[str, str],
    settings: WatchSettings,
    busy: Busy = Busy(),
) -> tuple[list[Batch], int]:
    """Group files into at most ``max_runs_per_tick`` runs, each over a set of at most
    ``max_partitions_per_run`` date × source partitions: ``(batches, files deferred to a later
    tick)``.

    A run reads exactly its partitions, so files of far-apart partners and days share a run without
    re-reading what lies between (a Dagster range would span every partition between its ends: 100
    files of far-apart partners among 3,000 made one run over ~2,900 partitions). The sources whose
    files this tick are all sales go in runs of their own, which build their facts too; a source
    with a catalog, stores or customers file changes a dimension, and its facts follow through
    automation after it (a run must not tag partitions with facts it did not build). A file of a
    partition ``busy`` holds (a run in flight is writing it) waits. What does not fit waits for the
    next tick, oldest dates first and nothing lost: the files are not marked, so they are seen again.
    """
    by_cell: dict[Cell, list[tuple[ObjectInfo, LandingKey]]] = defaultdict(list)
    not_sales: set[str] = set()
    for info, landing in files:
        source = source_of[landing.provider]
        by_cell[(landing.date, source)].append((info, landing))
        if landing.feed != "sales":
            not_sales.add(source)
    blocked = _blocked(busy, source_order)
    position = {source: i for i, source in enumerate(source_order)}
    free = sorted(
        (cell for cell in by_cell if not blocked(cell)), key=lambda c: (c[0], position.get(c[1], len(position)), c[1])
    )
    size = max(1, settings.max_partitions_per_run)
    groups: dict[bool, list[list[Cell]]] = {True: [], False: []}  # sales only or not: their runs
    for cell in free:
        runs = groups[cell[1] not in not_sales]
        if not runs or len(runs[-1]) >= size:
            runs.append([])
        runs[-1].append(cell)
    planned = sorted(
        ((cells, facts) for facts, runs in groups.items() for cells in runs),
        key=lambda run: (run[0][0][0], not run[1]),  # oldest first (each run's cells are, too)
    )
    batches: list[Batch] = []
    for cells, facts in planned[: max(0, settings.max_runs_per_tick)]:
        chosen = [item for cell in cells for item in by_cell[cell]]
        feed_cells: dict[str, set[Cell]] = defaultdict(set)
        for cell in cells:
            for _, landing in by_cell[cell]:
                feed_cells[landing.feed].add(cell)
        batches.append(
            Batch(
                cells=tuple(sorted(cells)),
                feeds=tuple(sorted(feed_cells)),
                files=tuple(chosen),
                feed_cells=tuple((feed, tuple(sorted(found))) for feed, found in sorted(feed_cells.items())),
                facts=facts,
            )
        )
    return batches, len(files) - sum(len(batch.files) for batch in batches)
