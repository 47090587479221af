"""Retention: which objects of each layer go, planned by the partition's business date, and every
deletion recorded in ``ops.retention_log`` before it is made.

One :class:`RetentionPlan` serves the dry run and the job (``resight retention [--dry-run]``,
``defs/retention.py``): the dry run prints it, the job applies exactly it. The rules
(``docs/retention.md``), for dates before ``today - RESIGHT_RETAIN_<LAYER>_DAYS`` (0 keeps a layer):

- **landing**: a partition (provider, feed, date) goes whole or not at all: every file of it must
  be ``loaded`` or ``dead_lettered`` (a dead letter with its copy made) in the ledger with the
  listing ETag the ledger saw, and no ledger row of the partition ``queued`` or ``read``. A file
  the ledger does not know, or whose ETag changed, keeps its partition: its load re-reads the
  partition's other files.
- **bronze**: once silver of the partition exists, written after bronze (or the ledger says every
  file is done and none loaded a row, so silver has no file), and no file is in flight.
- **silver**: sales only, once gold's facts of the partition exist, written after silver. The other
  feeds' silver is kept: the gold dimensions are rebuilt from every silver partition.
- **quarantine**: the lake's quarantined rows and ``ops.quarantine``'s, by business date.
- **dead letters**: by the day they were dead-lettered (their folder's date; they have no
  trustworthy business date).
- gold and the marts are kept.

Listing stays proportional to what is past a cutoff: each (provider, feed) folder of the landing
zone and each lake table is listed from its start and the listing stops at the cutoff's date
(keys sort by date), so a steady state lists about one day per source and table.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from resight_platform.io.storage import ObjectInfo, ObjectStore, S3Store
from resight_platform.settings import RetentionSettings
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.registry import FEEDS

__all__ = [
    "LAYERS",
    "Deletion",
    "RetentionPlan",
    "RetentionReport",
    "RetentionStores",
    "apply_retention",
    "plan_retention",
    "retired_partitions",
]

#: The layers retention deletes from, in the order it plans and deletes them.
LAYERS = ("landing", "bronze", "silver", "quarantine", "dead_letter")
#: Deletions recorded (then made) per transaction.
_BATCH = 500
_DONE = ("loaded", "dead_lettered")
_IN_FLIGHT = ("queued", "read")
#: The warehouse table of quarantined rows, deleted by partition (``Deletion.store == "warehouse"``).
_QUARANTINE_TABLE = "ops.quarantine"


@dataclass(frozen=True)
class RetentionStores:
    """Where the layers live: the landing zone, the lake (bronze, silver, gold's Parquet,
    quarantine) and the dead-letter area."""

    landing: ObjectStore
    lake: ObjectStore
    dead_letters: ObjectStore

    def of(self, store: str) -> ObjectStore:
        return {"landing": self.landing, "lake": self.lake, "dead_letter": self.dead_letters}[store]


@dataclass(frozen=True)
class Deletion:
    """One object to delete (``store``'s ``key``), or one partition's rows of ``ops.quarantine``
    (``store == "warehouse"``)."""

    layer: str
    store: str
    key: str
    partition: str
    business_date: date
    bytes: int | None
    reason: str
    provider: str | None = None
    feed: str | None = None
    etag: str | None = None
    rows: int | None = None


@dataclass
class RetentionPlan:
    """What one retention run deletes, and what it keeps past a cutoff and why."""

    today: date
    cutoffs: dict[str, date | None]
    deletions: list[Deletion] = field(default_factory=list)
    #: ``(layer, reason) -> objects`` kept although past their layer's cutoff.
    kept: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: LIST requests the planning made, or on a local store would make on S3 (pages of 1,000 keys).
    list_requests: int = 0
    #: Objects the planning listed.
    listed: int = 0

    def by_layer(self) -> dict[str, dict[str, int]]:
        """Per layer: objects (or quarantine partitions' rows) and bytes to delete, and objects kept."""
        out = {layer: {"objects": 0, "bytes": 0, "rows": 0, "kept": 0} for layer in LAYERS}
        for d in self.deletions:
            entry = out[d.layer]
            if d.store == "warehouse":
                entry["rows"] += d.rows or 0
            else:
                entry["objects"] += 1
            entry["bytes"] += d.bytes or 0
        for (layer, _), n in self.kept.items():
            out[layer]["kept"] += n
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "today": self.today.isoformat(),
            "cutoffs": {k: v.isoformat() if v else None for k, v in self.cutoffs.items()},
            "layers": self.by_layer(),
            "kept": [
                {"layer": layer, "reason": reason, "objects": n} for (layer, reason), n in sorted(self.kept.items())
            ],
            "list_requests": self.list_requests,
            "listed": self.listed,
            "deletions": [{**asdict(d), "business_date": d.business_date.isoformat()} for d in self.deletions],
        }


@dataclass
class RetentionReport:
    """What a retention run deleted."""

    run_id: str
    deleted: list[Deletion] = field(default_factory=list)

    def by_layer(self) -> dict[str, dict[str, int]]:
        plan = RetentionPlan(today=date.min, cutoffs={}, deletions=self.deleted)
        return plan.by_layer()


def _cutoff(today: date, days: int) -> date | None:
    """Dates before this go; None keeps the layer (0 days)."""
    return today - timedelta(days=days) if days > 0 else None


class _Lister:
    """Listings that stop at a cutoff, counted in LIST requests as S3 would page them."""

    def __init__(self, plan: RetentionPlan) -> None:
        self.plan = plan

    def before(
        self, store: ObjectStore, prefix: str, cutoff: date, date_of: Any, start_after: str = ""
    ) -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in key order (after ``prefix + start_after`` when given) while
        ``date_of(relative key)`` is before ``cutoff`` (or None: not a dated key, yielded for the
        caller to keep); stops at the first later date."""
        page = store.page_size if isinstance(store, S3Store) else 1000  # as S3 would page it
        seen = 0
        try:
            for info in store.list(prefix, start_after=prefix + start_after if start_after else ""):
                day = date_of(info.key[len(prefix) :])
                if day is not None and day >= cutoff:
                    break
                seen += 1
                yield info
        finally:
            self.plan.listed += seen
            self.plan.list_requests += max(1, math.ceil((seen + 1) / page))


def _iso(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _landing_date(relative: str) -> date | None:
    return _iso(relative.split("/", 1)[0])


def _lake_date(relative: str) -> date | None:
    head = relative.split("/", 1)[0]
    return _iso(head.removeprefix("date=")) if head.startswith("date=") else None


def _lake_partition(relative: str) -> tuple[date, str] | None:
    """``date=D/source=S/part-0.parquet`` → ``(D, S)``; None for any other file."""
    parts = relative.split("/")
    if len(parts) != 3 or not parts[0].startswith("date=") or not parts[1].startswith("source="):
        return None
    day = _iso(parts[0].removeprefix("date="))
    if day is None or parts[2] != "part-0.parquet":
        return None
    return day, parts[1].removeprefix("source=")


def plan_retention(
    conn: psycopg.Connection, stores: RetentionStores, policy: RetentionSettings, today: date
) -> RetentionPlan:
    """Everything a retention run on ``today`` deletes (read-only: lists and queries)."""
    cutoffs = {
        "landing": _cutoff(today, policy.landing_days),
        "bronze": _cutoff(today, policy.bronze_days),
        "silver": _cutoff(today, policy.silver_days),
        "quarantine": _cutoff(today, policy.quarantine_days),
        "dead_letter": _cutoff(today, policy.dead_letter_days),
    }
    plan = RetentionPlan(today=today, cutoffs=cutoffs)
    lister = _Lister(plan)
    if cutoffs["landing"]:
        _plan_landing(conn, stores.landing, cutoffs["landing"], plan, lister)
    if cutoffs["bronze"]:
        _plan_bronze(conn, stores.lake, cutoffs["bronze"], plan, lister)
    if cutoffs["silver"]:
        _plan_silver(conn, stores.lake, cutoffs["silver"], plan, lister)
    if cutoffs["quarantine"]:
        _plan_quarantine(conn, stores.lake, cutoffs["quarantine"], plan, lister)
    if cutoffs["dead_letter"]:
        _plan_dead_letters(stores.dead_letters, cutoffs["dead_letter"], plan, lister)
    return plan


def _plan_landing(
    conn: psycopg.Connection, store: ObjectStore, cutoff: date, plan: RetentionPlan, lister: _Lister
) -> None:
    sources = conn.execute(
        "select distinct provider, feed from ops.ingestion_ledger"
        " where business_date < %s and provider is not null and feed is not null order by 1, 2",
        (cutoff,),
    ).fetchall()
    partitions: dict[tuple[str, str, date], list[ObjectInfo]] = defaultdict(list)
    for provider, feed in sources:
        folder = f"{provider}/{feed}/"
        for info in lister.before(store, folder, cutoff, _landing_date):
            try:
                landing = parse_landing_key(info.key)
            except LandingKeyError:
                plan.kept[("landing", "not a landing-contract key (no business date to go by)")] += 1
                continue
            partitions[(landing.provider, landing.feed, landing.date)].append(info)
    if not partitions:
        return
    keys = [info.key for infos in partitions.values() for info in infos]
    ledger = {
        str(k): (etag, status, uri)
        for k, etag, status, uri in conn.execute(
            "select file_key, etag, status, dead_letter_uri from ops.ingestion_ledger where file_key = any(%s)",
            (keys,),
        ).fetchall()
    }
    busy = {
        (str(p), str(f), d)
        for p, f, d in conn.execute(
            "select distinct provider, feed, business_date from ops.ingestion_ledger"
            " where status = any(%s) and business_date < %s and provider is not null",
            (list(_IN_FLIGHT), cutoff),
        ).fetchall()
    }
    for (provider, feed, day), infos in sorted(partitions.items()):
        partition = f"{provider}/{feed}/{day.isoformat()}"
        if (provider, feed, day) in busy:
            plan.kept[("landing", "a file of its partition is queued or read")] += len(infos)
            continue
        blockers = [_landing_blocker(info, ledger.get(info.key)) for info in infos]
        first = next((b for b in blockers if b is not None), None)
        if first is not None:
            for blocker in blockers:
                plan.kept[("landing", blocker or "another file of its partition is kept")] += 1
            continue
        for info in infos:
            status = ledger[info.key][1]
            plan.deletions.append(
                Deletion(
                    "landing",
                    "landing",
                    info.key,
                    partition,
                    day,
                    info.size,
                    f"{status}; business date before {plan.cutoffs['landing']}",
                    provider=provider,
                    feed=feed,
                    etag=info.etag,
                )
            )


def _landing_blocker(info: ObjectInfo, entry: tuple[str | None, str, str | None] | None) -> str | None:
    """Why this landing file may not go (None: it may)."""
    if entry is None:
        return "not in the ledger"
    etag, status, uri = entry
    if status not in _DONE:
        return f"ledger status {status}"
    if etag != info.etag:
        return "changed since the ledger saw it (ETag)"
    if status == "dead_lettered" and uri is None:
        return "dead-lettered but never copied to the dead-letter area"
    return None


def _lake_files(
    store: ObjectStore,
    layer: str,
    feed: str,
    cutoff: date,
    plan: RetentionPlan,
    lister: _Lister,
    since: date | None = None,
) -> dict[tuple[date, str], ObjectInfo]:
    """``(date, source) -> file`` of one lake table's partitions before ``cutoff`` (and from ``since`` on)."""
    prefix = f"{layer}/{feed}/"
    found: dict[tuple[date, str], ObjectInfo] = {}
    # "date=2026-08-01" sorts before every key of that day and after those of earlier days.
    start_after = f"date={since.isoformat()}" if since else ""
    for info in lister.before(store, prefix, cutoff, _lake_date, start_after):
        where = _lake_partition(info.key[len(prefix) :])
        if where is None:
            plan.kept[(layer, "not a partition file of the lake's layout")] += 1
            continue
        found[where] = info
    return found


def _ledger_partitions(conn: psycopg.Connection, cutoff: date) -> dict[tuple[str, str, date], tuple[bool, int, bool]]:
    """``(provider, feed, date) -> (every file done, rows loaded, a file in flight)`` for dates before ``cutoff``."""
    rows = conn.execute(
        "select provider, feed, business_date, bool_and(status = any(%(done)s)), coalesce(sum(rows_loaded), 0),"
        " bool_or(status = any(%(busy)s)) from ops.ingestion_ledger"
        " where business_date < %(cutoff)s and provider is not null and status <> 'vanished' group by 1, 2, 3",
        {"done": list(_DONE), "busy": list(_IN_FLIGHT), "cutoff": cutoff},
    ).fetchall()
    return {(str(p), str(f), d): (bool(done), int(loaded), bool(busy)) for p, f, d, done, loaded, busy in rows}


def _lake_deletion(layer: str, feed: str, day: date, source: str, info: ObjectInfo, reason: str) -> Deletion:
    return Deletion(
        layer,
        "lake",
        info.key,
        f"{layer}/{feed}/date={day.isoformat()}/source={source}",
        day,
        info.size,
        reason,
        provider=source,  # the source partition is the provider (defs/partitions.source_key)
        feed=feed,
        etag=info.etag,
    )


def _plan_bronze(
    conn: psycopg.Connection, store: ObjectStore, cutoff: date, plan: RetentionPlan, lister: _Lister
) -> None:
    ledger = _ledger_partitions(conn, cutoff)
    for feed in FEEDS:
        bronze = _lake_files(store, "bronze", feed, cutoff, plan, lister)
        if not bronze:
            continue
        first = min(day for day, _ in bronze)  # silver of the days bronze still has, not of every day
        silver = _lake_files(store, "silver", feed, cutoff, RetentionPlan(plan.today, {}), lister, first)
        for (day, source), info in sorted(bronze.items()):
            state = ledger.get((source, feed, day))
            later = silver.get((day, source))
            if state is None:
                plan.kept[("bronze", "the ledger has no file of its partition")] += 1
            elif state[2]:
                plan.kept[("bronze", "a file of its partition is queued or read")] += 1
            elif later is not None and later.last_modified >= info.last_modified:
                plan.deletions.append(
                    _lake_deletion("bronze", feed, day, source, info, "silver of the partition exists")
                )
            elif later is None and state[0] and state[1] == 0:
                plan.deletions.append(
                    _lake_deletion("bronze", feed, day, source, info, "silver has no row of it (all quarantined)")
                )
            else:
                plan.kept[("bronze", "silver of the partition is missing or older")] += 1


def _plan_silver(
    conn: psycopg.Connection, store: ObjectStore, cutoff: date, plan: RetentionPlan, lister: _Lister
) -> None:
    ledger = _ledger_partitions(conn, cutoff)
    for feed in FEEDS:
        silver = _lake_files(store, "silver", feed, cutoff, plan, lister)
        if not silver:
            continue
        if feed != "sales":
            plan.kept[("silver", "gold dimensions are rebuilt from every silver partition")] += len(silver)
            continue
        first = min(day for day, _ in silver)
        facts = _lake_files(store, "gold", "fact_sales", cutoff, RetentionPlan(plan.today, {}), lister, first)
        for (day, source), info in sorted(silver.items()):
            gold = facts.get((day, source))
            state = ledger.get((source, feed, day))
            if state is not None and state[2]:
                plan.kept[("silver", "a file of its partition is queued or read")] += 1
            elif gold is not None and gold.last_modified >= info.last_modified:
                plan.deletions.append(_lake_deletion("silver", feed, day, source, info, "gold facts of the day exist"))
            else:
                plan.kept[("silver", "gold facts of the partition are missing or older")] += 1


def _plan_quarantine(
    conn: psycopg.Connection, store: ObjectStore, cutoff: date, plan: RetentionPlan, lister: _Lister
) -> None:
    for feed in FEEDS:
        for (day, source), info in sorted(_lake_files(store, "quarantine", feed, cutoff, plan, lister).items()):
            plan.deletions.append(_lake_deletion("quarantine", feed, day, source, info, "quarantine period over"))
    for feed, provider, day, rows in conn.execute(
        "select feed, provider, business_date, count(*) from ops.quarantine where business_date < %s"
        " group by 1, 2, 3 order by 3, 1, 2",
        (cutoff,),
    ).fetchall():
        plan.deletions.append(
            Deletion(
                "quarantine",
                "warehouse",
                _QUARANTINE_TABLE,
                f"{feed}/{day.isoformat()}/{provider}",
                day,
                None,
                "quarantine period over",
                provider=str(provider),
                feed=str(feed),
                rows=int(rows),
            )
        )


def _plan_dead_letters(store: ObjectStore, cutoff: date, plan: RetentionPlan, lister: _Lister) -> None:
    for info in lister.before(store, "", cutoff, _landing_date):
        day = _landing_date(info.key)
        if day is None:
            plan.kept[("dead_letter", "not under a dead-letter day folder")] += 1
            continue
        plan.deletions.append(
            Deletion(
                "dead_letter",
                "dead_letter",
                info.key,
                day.isoformat(),
                day,
                info.size,
                "dead-letter period over",
                etag=info.etag,
            )
        )


def _log(
    conn: psycopg.Connection, stores: RetentionStores, deletions: Sequence[Deletion], run_id: str, now: datetime
) -> list[int]:
    """The batch's ``ops.retention_log`` rows, in one statement and one transaction; their ids in order."""
    columns: dict[str, list[Any]] = {
        name: []
        for name in ("layer", "url", "key", "partition", "provider", "feed", "day", "bytes", "rows", "etag", "reason")
    }
    for d in deletions:
        values = (
            d.layer,
            "warehouse" if d.store == "warehouse" else stores.of(d.store).url,
            d.key,
            d.partition,
            d.provider,
            d.feed,
            d.business_date,
            d.bytes,
            d.rows,
            d.etag,
            d.reason,
        )
        for name, value in zip(columns, values, strict=True):
            columns[name].append(value)
    with conn.transaction():
        rows = conn.execute(
            "insert into ops.retention_log (run_id, layer, store_url, key, partition, provider, feed,"
            " business_date, bytes, rows, etag, reason, deleted_at)"
            " select %s, layer, url, key, partition, provider, feed, day, bytes, rows, etag, reason, %s"
            " from unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::date[],"
            " %s::bigint[], %s::bigint[], %s::text[], %s::text[]) with ordinality"
            " as d(layer, url, key, partition, provider, feed, day, bytes, rows, etag, reason, n)"
            " order by n returning id",
            (run_id, now, *columns.values()),
        ).fetchall()
    return [int(row[0]) for row in rows]


def _delete(conn: psycopg.Connection, stores: RetentionStores, d: Deletion) -> None:
    if d.store == "warehouse":
        with conn.transaction():
            conn.execute(
                "delete from ops.quarantine where feed = %s and provider = %s and business_date = %s",
                (d.feed, d.provider, d.business_date),
            )
        return
    stores.of(d.store).delete(d.key)


def _s3_delete(store: S3Store, keys: Sequence[str]) -> set[str]:
    """Delete ``keys`` with S3's batch ``DeleteObjects`` through the store's own client (one request
    per 1,000 keys instead of one per key); the keys S3 refused."""
    full = {f"{store.prefix}/{key}" if store.prefix else key: key for key in keys}
    refused: set[str] = set()
    names = list(full)
    for start in range(0, len(names), 1000):
        response = store.client.delete_objects(
            Bucket=store.bucket,
            Delete={"Objects": [{"Key": name} for name in names[start : start + 1000]], "Quiet": True},
        )
        refused |= {full.get(str(error.get("Key")), str(error.get("Key"))) for error in response.get("Errors", [])}
    return refused


def _delete_batch(conn: psycopg.Connection, stores: RetentionStores, batch: Sequence[Deletion]) -> set[int]:
    """Delete a batch's objects (on S3 in one request per store); the positions deleted. Raises
    after the others were tried if one could not be deleted."""
    done: set[int] = set()
    failure: BaseException | None = None
    by_store: dict[str, list[int]] = defaultdict(list)
    for position, deletion in enumerate(batch):
        by_store[deletion.store].append(position)
    for name, positions in by_store.items():
        store = None if name == "warehouse" else stores.of(name)
        if isinstance(store, S3Store):
            try:
                refused = _s3_delete(store, [batch[p].key for p in positions])
            except Exception as error:
                failure = error
                continue
            done |= {p for p in positions if batch[p].key not in refused}
            if refused:
                failure = OSError(
                    f"S3 refused to delete {len(refused)} object(s) of {store.url}: {sorted(refused)[:5]}"
                )
            continue
        for position in positions:
            try:
                _delete(conn, stores, batch[position])
            except Exception as error:
                failure = error
                break
            done.add(position)
    if failure is not None:
        raise _Partial(done, failure)
    return done


class _Partial(Exception):
    def __init__(self, done: set[int], failure: BaseException) -> None:
        self.done = done
        self.failure = failure
        super().__init__(str(failure))


def apply_retention(
    conn: psycopg.Connection, stores: RetentionStores, plan: RetentionPlan, *, run_id: str, now: datetime
) -> RetentionReport:
    """Delete what ``plan`` lists, a batch at a time: the batch's ``ops.retention_log`` rows are
    committed first, then its objects deleted (on S3 with one ``DeleteObjects`` request); a
    deletion that fails takes back the log rows of the batch's objects not deleted, then raises
    (the next run plans them again)."""
    report = RetentionReport(run_id)
    for start in range(0, len(plan.deletions), _BATCH):
        batch = plan.deletions[start : start + _BATCH]
        ids = _log(conn, stores, batch, run_id, now)
        try:
            _delete_batch(conn, stores, batch)
        except _Partial as partial:
            with conn.transaction():
                kept = [ids[p] for p in range(len(batch)) if p not in partial.done]
                conn.execute("delete from ops.retention_log where id = any(%s)", (kept,))
            report.deleted.extend(batch[p] for p in sorted(partial.done))
            raise partial.failure from None
        report.deleted.extend(batch)
    return report


def retired_partitions(
    conn: psycopg.Connection, partitions: Iterable[tuple[str, str, date]]
) -> dict[tuple[str, str, date], datetime]:
    """``(provider, feed, date) -> when its landing files were first retired`` for those of
    ``partitions`` whose landing files retention deleted (the late-file guard's question)."""
    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    rows = conn.execute(
        "select r.provider, r.feed, r.business_date, min(r.deleted_at) from ops.retention_log r"
        " join unnest(%s::text[], %s::text[], %s::date[]) as p(provider, feed, day)"
        " on r.provider = p.provider and r.feed = p.feed and r.business_date = p.day"
        " where r.layer = 'landing' group by 1, 2, 3",
        ([p for p, _, _ in wanted], [f for _, f, _ in wanted], [d for _, _, d in wanted]),
    ).fetchall()
    return {(str(p), str(f), d): at for p, f, d, at in rows}
