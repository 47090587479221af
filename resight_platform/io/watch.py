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
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import islice

from resight_platform.io.landing import HashingReader, check_listed
from resight_platform.io.ops import LedgerEntry
from resight_platform.io.plan import Rectangle, plan_rectangles
from resight_platform.io.storage import ObjectInfo, ObjectStore
from resight_platform.settings import WatchSettings
from resight_platform.sources.landing import LandingKey, LandingKeyError, parse_landing_key
from resight_platform.sources.registry import Registry

__all__ = [
    "PARTITION_RETIRED",
    "Area",
    "Batch",
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


@dataclass(frozen=True)
class Batch:
    """Files to read in one run: a rectangle of business dates × source partitions and the feeds."""

    first_day: date
    last_day: date
    first_source: str
    last_source: str
    feeds: tuple[str, ...]
    files: tuple[tuple[ObjectInfo, LandingKey], ...]
    run_key: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.run_key:  # computed once: it hashes every file of the batch
            object.__setattr__(self, "run_key", run_key_of("load", (info for info, _ in self.files)))


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
    busy: Sequence[Area] = (),
    retired: Mapping[tuple[str, str, date], datetime] | None = None,
    known_bytes: Mapping[date, Mapping[str, int]] | None = None,
) -> TickPlan:
    """Decide what to request for the files ``listed`` given what ``ledger`` knows.

    ``launched_run_keys`` are the run keys of queued ledger rows whose run exists (in any state: a
    failed run is for a person to re-execute, not for the sensor to repeat); ``source_order`` is
    the source partitions in Dagster's order (a range of them is contiguous in it) and
    ``source_of`` maps a provider to its source partition. Dates before ``first_day`` (the first
    partition) or after ``today + 1`` (the last) have no partition and are refused.

    ``busy`` are the partitions of runs in flight (queued or started, any job): a new file for one
    of them waits (deferred) until that run is done, and no batch reaches into them, so a partition
    is never written by two runs at once (the later run could finish first, and the earlier one,
    which listed fewer files, would then overwrite it).

    ``retired`` maps a (provider, feed, date) partition whose landing files retention deleted to
    when (``resight_platform.retention.retired_partitions``): a file for one is refused as
    :data:`PARTITION_RETIRED`, never loaded (see :func:`retired_candidates`).

    ``known_bytes`` gives the bytes landed per day and source partition where ``listed`` is not a
    whole listing of the hot window (the event path: what arrived, from the ledger); by default
    they are counted from ``listed``. Files deferred are in ``plan.waiting``.
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
    sizes = (
        _partition_bytes(listed, source_of, today - timedelta(days=settings.hot_days), last_day)
        if known_bytes is None
        else {day: defaultdict(int, by_source) for day, by_source in known_bytes.items()}
    )
    blocked = _positions(busy, {source: i for i, source in enumerate(source_order)})
    plan.batches, plan.deferred = batch_files(fresh, source_order, source_of, settings, sizes, blocked)
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


def _partition_bytes(
    listed: Mapping[str, ObjectInfo], source_of: Mapping[str, str], since: date, until: date
) -> dict[date, dict[str, int]]:
    """Bytes landed per day and source partition for the days of the hot window, ``since`` to
    ``until`` (listed whole on every tick, so every one of those days is present and a partition
    absent from its day has no files); older days are absent (not known)."""
    sizes: dict[date, dict[str, int]] = {}
    day = since
    while day <= until:
        sizes[day] = defaultdict(int)
        day += timedelta(days=1)
    for key, info in listed.items():
        try:
            landing = parse_landing_key(key)
        except LandingKeyError:
            continue
        source = source_of.get(landing.provider)
        if source is not None and landing.date in sizes:
            sizes[landing.date][source] += info.size
    return sizes


#: A rectangle of business dates × source partition keys: ``(first_day, last_day, first, last)``.
Area = tuple[date, date, str, str]


def _positions(areas: Sequence[Area], position: Mapping[str, int]) -> list[Rectangle]:
    """``areas`` as rectangles of source positions (sources without one are left out)."""
    out = []
    for first_day, last_day, first, last in areas:
        if first in position and last in position:
            out.append((first_day, last_day, position[first], position[last]))
    return out


def batch_files(
    files: Sequence[tuple[ObjectInfo, LandingKey]],
    source_order: Sequence[str],
    source_of: Mapping[str, str],
    settings: WatchSettings,
    partition_bytes: Mapping[date, Mapping[str, int]] | None = None,
    blocked: Sequence[Rectangle] = (),
) -> tuple[list[Batch], int]:
    """Group files into at most ``max_runs_per_tick`` rectangles of dates × sources: ``(batches,
    files deferred to a later tick)``.

    The rectangles are :func:`~resight_platform.io.plan.plan_rectangles`'s, with a run costing
    ``merge_gap_bytes`` and ``partition_bytes`` per day and source partition (the hot window's:
    days outside it are not known, so nothing is joined across them). No rectangle reaches into
    a ``blocked`` one (partitions a run in flight is writing): a file of such a partition waits.
    What does not fit waits for the next tick, oldest dates first and nothing lost: the files are
    not marked, so they are seen again.
    """
    position = {source: i for i, source in enumerate(source_order)}
    by_cell: dict[tuple[date, int], list[tuple[ObjectInfo, LandingKey]]] = defaultdict(list)
    for info, landing in files:
        by_cell[(landing.date, position[source_of[landing.provider]])].append((info, landing))
    plan = plan_rectangles(
        by_cell,
        run_cost_bytes=settings.merge_gap_bytes,
        partition_bytes=None
        if partition_bytes is None
        else {
            day: {position[source]: n for source, n in sizes.items() if source in position}
            for day, sizes in partition_bytes.items()
        },
        max_runs=settings.max_runs_per_tick,
        blocked=blocked,
    )
    batches: list[Batch] = []
    for first, last, start, end in plan.runs:
        chosen = [
            item
            for cell in sorted(by_cell)
            if first <= cell[0] <= last and start <= cell[1] <= end
            for item in by_cell[cell]
        ]
        batches.append(
            Batch(
                first_day=first,
                last_day=last,
                first_source=source_order[start],
                last_source=source_order[end],
                feeds=tuple(sorted({landing.feed for _, landing in chosen})),
                files=tuple(chosen),
            )
        )
    return batches, len(files) - sum(len(batch.files) for batch in batches)
