"""The ``ops`` schema: migrations, the source registry table, the ingestion ledger and quarantine.

Every function takes an open psycopg connection and commits its own transaction, so a failure
leaves the previous state visible. Values are always parameters.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from resight_platform.io.postgres import copy_frame
from resight_platform.io.storage import ObjectInfo
from resight_platform.sources.registry import Registry, registry_rows

__all__ = [
    "MIGRATION_LOCK",
    "ONBOARDING_STATES",
    "FileRecord",
    "LedgerEntry",
    "ProviderActivity",
    "QueuedFile",
    "SourceQuality",
    "UnattributedDeadLetter",
    "alert_messages_since",
    "alerted",
    "bounded_raw",
    "close_vanished",
    "dead_letter_reason",
    "delivered_days",
    "known_checksums",
    "known_products",
    "last_deliveries",
    "ledger_entries",
    "mark_loaded",
    "migrate",
    "onboarding_state",
    "provider_activity",
    "quality_report",
    "queue_files",
    "recently_queued",
    "record_alert",
    "record_etags",
    "record_files",
    "record_silver",
    "record_type_drift",
    "sync_sources",
    "unattributed_dead_letters",
    "update_waiting",
    "waiting_files",
]


#: The advisory lock the migrations hold; the analyst role's grants (``io.roles``) wait for it too.
MIGRATION_LOCK = 7271901


def migrate(conn: psycopg.Connection) -> None:
    """Apply the warehouse DDL (idempotent)."""
    sql_dir = resources.files("resight_platform.io") / "sql"
    scripts = sorted((p for p in sql_dir.iterdir() if p.name.endswith(".sql")), key=lambda p: p.name)
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("select pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        for script in scripts:
            cur.execute(script.read_text(encoding="utf-8"))  # type: ignore[arg-type]
        _ensure_unknown_members(cur)


def _ensure_unknown_members(cur: psycopg.Cursor) -> None:
    """Key 0 is the 'unknown' member of each dimension a fact may not resolve."""
    cur.execute(
        "insert into gold.dim_product (product_key, provider, sku, product_name, brand, category, species)"
        " values (0, '', '', 'Unknown product', 'Unknown', 'other', 'other') on conflict do nothing"
    )


def sync_sources(conn: psycopg.Connection, registry: Registry) -> int:
    """Replace ``ops.sources`` with the registry's rows in one transaction."""
    rows = list(registry_rows(registry))
    frame = pl.DataFrame(rows) if rows else pl.DataFrame()
    with conn.transaction(), conn.cursor() as cur:
        cur.execute("delete from ops.sources")
        if rows:
            copy_frame(cur, "ops", "sources", frame)
    return len(rows)


@dataclass(frozen=True)
class FileRecord:
    """One landed file as the ledger sees it."""

    file_key: str
    checksum: str | None
    bytes: int
    provider: str | None
    feed: str | None
    business_date: date | None
    status: str
    rows_in: int | None = None
    error_code: str | None = None
    error: str | None = None
    dead_letter_uri: str | None = None
    etag: str | None = None
    #: How the file's columns differ from the registered mapping (``ColumnDrift.as_dict()``).
    schema_drift: dict[str, object] | None = None
    #: Set (0) for a file read with no rows, which silver never sees: it is ``loaded`` at once.
    rows_loaded: int | None = None
    rows_quarantined: int | None = None


_UPSERT_FILE = """
insert into ops.ingestion_ledger as l (
    file_key, checksum, provider, feed, business_date, bytes, rows_in, status,
    error_code, error, dead_letter_uri, processed_at, run_id,
    rows_loaded, rows_quarantined, etag, schema_drift, registry_version, provider_version, loaded_at
) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
on conflict (file_key) do update set
    checksum = excluded.checksum,
    provider = excluded.provider,
    feed = excluded.feed,
    business_date = excluded.business_date,
    bytes = excluded.bytes,
    rows_in = excluded.rows_in,
    status = excluded.status,
    error_code = excluded.error_code,
    error = excluded.error,
    dead_letter_uri = coalesce(excluded.dead_letter_uri, l.dead_letter_uri),
    processed_at = excluded.processed_at,
    run_id = excluded.run_id,
    etag = coalesce(excluded.etag, l.etag),
    schema_drift = excluded.schema_drift,
    registry_version = excluded.registry_version,
    provider_version = excluded.provider_version,
    run_key = null,
    rows_loaded = coalesce(excluded.rows_loaded, case when l.checksum = excluded.checksum then l.rows_loaded end),
    rows_quarantined = coalesce(
        excluded.rows_quarantined, case when l.checksum = excluded.checksum then l.rows_quarantined end
    ),
    -- when this version of the file first reached silver (010_health.sql): kept while the bytes are the same
    loaded_at = coalesce(case when l.checksum = excluded.checksum then l.loaded_at end, excluded.loaded_at)
"""


def record_files(
    conn: psycopg.Connection,
    records: Sequence[FileRecord],
    *,
    run_id: str | None,
    now: datetime,
    registry: Registry | None = None,
) -> None:
    """Upsert ledger rows for files read (bronze) or dead-lettered, in one transaction, with the
    versions of ``registry``, the registry they were read under (the whole registry's and the
    file's provider's; None: not known)."""
    if not records:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            _UPSERT_FILE,
            [
                (
                    r.file_key,
                    r.checksum,
                    r.provider,
                    r.feed,
                    r.business_date,
                    r.bytes,
                    r.rows_in,
                    r.status,
                    r.error_code,
                    r.error,
                    r.dead_letter_uri,
                    now,
                    run_id,
                    r.rows_loaded,
                    r.rows_quarantined,
                    r.etag,
                    Jsonb(r.schema_drift) if r.schema_drift is not None else None,
                    (registry.version or None) if registry else None,
                    registry.provider_version(r.provider) if registry else None,
                    now if r.status == "loaded" else None,
                )
                for r in records
            ],
        )


def known_checksums(conn: psycopg.Connection, keys: Iterable[str]) -> dict[str, tuple[str, str]]:
    """``file_key -> (checksum, status)`` for the keys the ledger has seen."""
    keys = list(keys)
    if not keys:
        return {}
    with conn.cursor() as cur:
        cur.execute("select file_key, checksum, status from ops.ingestion_ledger where file_key = any(%s)", (keys,))
        return {k: (c, s) for k, c, s in cur.fetchall()}


#: A file's counts from silver (:func:`record_silver`).
_COUNTS = (
    "update ops.ingestion_ledger set rows_in = %s, rows_loaded = %s, rows_quarantined = %s,"
    " registry_version = coalesce(%s, registry_version),"
    " provider_version = coalesce(%s, provider_version) where file_key = %s"
)


def record_silver(
    conn: psycopg.Connection,
    *,
    feed: str,
    partitions: Sequence[tuple[date, str]],
    quarantine: pl.DataFrame,
    reconciliation: pl.DataFrame,
    registry: Registry | None = None,
    loaded: bool = True,
) -> None:
    """Replace the quarantine rows of ``partitions`` and store per-file loaded/quarantined counts,
    with the versions of ``registry``, the registry silver cleaned the files under (the value maps
    and constants their rows were loaded with; None keeps the versions bronze recorded).

    ``loaded``: the files are marked ``loaded`` too; False leaves their status for
    :func:`mark_loaded`, once the partitions' silver files are committed (a run that fails to
    write them must not leave its files called loaded).

    One transaction: a re-run replaces, a failure leaves the previous rows.
    """
    with conn.transaction(), conn.cursor() as cur:
        if partitions:
            days = [d for d, _ in partitions]
            providers = [p for _, p in partitions]
            cur.execute(
                "delete from ops.quarantine q using unnest(%s::date[], %s::text[]) as p(d, provider)"
                " where q.feed = %s and q.business_date = p.d and q.provider = p.provider",
                (days, providers, feed),
            )
        if quarantine.height:
            frame = quarantine.select(
                pl.col("feed"),
                pl.col("provider"),
                pl.col("business_date"),
                pl.col("_source_file").alias("source_file"),
                pl.col("_row_number").alias("row_number"),
                pl.col("rule"),
                bounded_raw(pl.col("raw")),
                pl.col("_ingested_at").alias("ingested_at"),
            )
            copy_frame(cur, "ops", "quarantine", frame)
        if reconciliation.height:
            cur.executemany(
                _COUNTS,
                [
                    (
                        r["rows_in"],
                        r["rows_loaded"],
                        r["rows_quarantined"],
                        (registry.version or None) if registry else None,
                        # a landing key starts with its provider ({provider}/{feed}/{date}/{file})
                        registry.provider_version(r["_source_file"].split("/", 1)[0]) if registry else None,
                        r["_source_file"],
                    )
                    for r in reconciliation.iter_rows(named=True)
                ],
            )
            if loaded:
                mark_loaded(cur, reconciliation.get_column("_source_file").to_list())


def mark_loaded(conn: psycopg.Connection | psycopg.Cursor[Any], file_keys: Sequence[str]) -> None:
    """Mark ``file_keys`` loaded (their counts already stored by :func:`record_silver` with
    ``loaded=False``), once their silver partitions are committed."""
    if file_keys:
        conn.execute(
            "update ops.ingestion_ledger set status = 'loaded', loaded_at = coalesce(loaded_at, now())"
            " where file_key = any(%s)",
            (list(file_keys),),
        )


#: Characters of a quarantined row's ``raw`` kept in ``ops.quarantine`` (the row is in the lake whole).
RAW_LIMIT = 8192


def bounded_raw(raw: pl.Expr) -> pl.Expr:
    """``raw`` (JSON text) when it is at most :data:`RAW_LIMIT` characters; else a JSON object
    that says so: ``{"truncated_raw": <its first RAW_LIMIT characters, as a string>,
    "raw_characters": <its length>}``."""
    length = raw.str.len_chars()
    cut = pl.struct(raw.str.slice(0, RAW_LIMIT).alias("truncated_raw"), length.alias("raw_characters"))
    return pl.when(length > RAW_LIMIT).then(cut.struct.json_encode()).otherwise(raw).alias("raw")


def dead_letter_reason(key: str, code: str, detail: str, checksum: str | None, at: datetime) -> bytes:
    """The JSON reason file written beside a dead-lettered copy."""
    return json.dumps(
        {"key": key, "reason": code, "detail": detail, "checksum": checksum, "dead_lettered_at": at.isoformat()},
        indent=2,
    ).encode()


@dataclass(frozen=True)
class LedgerEntry:
    """What the ledger knows of one key, as the landing sensor compares it with a listing."""

    etag: str | None
    status: str
    checksum: str | None
    bytes: int | None
    run_key: str | None
    queued_at: datetime | None


def ledger_entries(conn: psycopg.Connection, keys: Iterable[str]) -> dict[str, LedgerEntry]:
    """``file_key -> LedgerEntry`` for the keys the ledger has a row for (one query)."""
    keys = list(keys)
    if not keys:
        return {}
    with conn.cursor() as cur:
        cur.execute(
            "select file_key, etag, status, checksum, bytes, run_key, queued_at"
            " from ops.ingestion_ledger where file_key = any(%s)",
            (keys,),
        )
        return {row[0]: LedgerEntry(*row[1:]) for row in cur.fetchall()}


@dataclass(frozen=True)
class QueuedFile:
    """A file the landing sensor requested: the run keyed ``run_key`` will read or dead-letter it."""

    file_key: str
    etag: str
    bytes: int
    provider: str | None
    feed: str | None
    business_date: date | None
    run_key: str


_QUEUE_FILE = """
insert into ops.ingestion_ledger as l (
    file_key, etag, bytes, provider, feed, business_date, status, run_key, queued_at, first_seen
) values (%s, %s, %s, %s, %s, %s, 'queued', %s, %s, %s)
on conflict (file_key) do update set
    etag = excluded.etag,
    bytes = excluded.bytes,
    provider = excluded.provider,
    feed = excluded.feed,
    business_date = excluded.business_date,
    status = 'queued',
    run_key = excluded.run_key,
    queued_at = excluded.queued_at
"""


def queue_files(conn: psycopg.Connection, files: Sequence[QueuedFile], *, now: datetime) -> None:
    """Mark files as requested (status ``queued``) in one transaction; a row already in the ledger
    keeps its checksum, counts and first-seen time until the run reads the new version."""
    if not files:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            _QUEUE_FILE,
            [(f.file_key, f.etag, f.bytes, f.provider, f.feed, f.business_date, f.run_key, now, now) for f in files],
        )


def release_accepted(conn: psycopg.Connection, keys: Sequence[str], *, run_key: str | None) -> list[str]:
    """Hand back to the landing sensor the files queued for the dead-letter run ``run_key`` (any
    run, when None) that pass the landing contract after all: the registry changed between the
    sensor's tick and the run (a partner onboarded minutes after its first file). Their ETag is
    forgotten, so the next tick takes them as new and queues them for a load. Returns their keys."""
    if not keys:
        return []
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "update ops.ingestion_ledger set etag = null"
            " where status = 'queued' and file_key = any(%s) and (%s::text is null or run_key = %s)"
            " returning file_key",
            (list(keys), run_key, run_key),
        )
        return sorted(str(row[0]) for row in cur.fetchall())


def record_etags(conn: psycopg.Connection, etags: Sequence[tuple[str, str]]) -> None:
    """Record a new listing ETag for files whose content is unchanged (``(file_key, etag)``)."""
    if not etags:
        return
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany("update ops.ingestion_ledger set etag = %s where file_key = %s", [(e, k) for k, e in etags])


def close_vanished(
    conn: psycopg.Connection, *, run_key: str, feed: str, seen: Iterable[str], run_id: str, now: datetime
) -> list[str]:
    """Mark ``vanished`` the files of ``feed`` queued for the run ``run_key`` that the run did not
    find when it listed their partitions (``seen`` is every key it listed): deleted or moved after
    the sensor saw them. Returns their keys. Files queued for other runs are not touched: they may
    have landed after this run listed."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(
            "update ops.ingestion_ledger set status = 'vanished', error_code = 'file_vanished',"
            " error = 'queued by the landing sensor, gone when its run listed the partition',"
            " processed_at = %s, run_id = %s"
            " where status = 'queued' and run_key = %s and feed = %s and not (file_key = any(%s))"
            " returning file_key",
            (now, run_id, run_key, feed, list(seen)),
        )
        return sorted(str(row[0]) for row in cur.fetchall())


def alerted(conn: psycopg.Connection, keys: Iterable[str], sink: str) -> set[str]:
    """Which failure ``keys`` were already delivered to ``sink``."""
    rows = conn.execute(
        "select failure_key from ops.alert_log where sink = %s and failure_key = any(%s)", (sink, list(keys))
    ).fetchall()
    return {str(row[0]) for row in rows}


def record_alert(
    conn: psycopg.Connection, *, message_id: str, subject: str, keys: Iterable[str], sink: str, now: datetime
) -> None:
    """Record that the message ``message_id`` covering failure ``keys`` reached ``sink``."""
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "insert into ops.alert_log (failure_key, sink, message_id, subject, sent_at)"
            " values (%s, %s, %s, %s, %s) on conflict do nothing",
            [(key, sink, message_id, subject, now) for key in keys],
        )


def alert_messages_since(conn: psycopg.Connection, since: datetime) -> int:
    """Messages delivered since ``since`` (a message sent to two destinations counts once)."""
    row = conn.execute("select count(distinct message_id) from ops.alert_log where sent_at >= %s", (since,)).fetchone()
    return int(row[0]) if row else 0


def last_deliveries(conn: psycopg.Connection) -> tuple[dict[tuple[str, str], datetime], datetime | None]:
    """When each (provider, feed) last delivered a file (the ledger's first sight of its newest
    file, whatever became of it but vanishing), and when the ledger first saw any file."""
    rows = conn.execute(
        "select provider, feed, max(first_seen) from ops.ingestion_ledger"
        " where provider is not null and feed is not null and status <> 'vanished' group by 1, 2"
    ).fetchall()
    first = conn.execute("select min(first_seen) from ops.ingestion_ledger").fetchone()
    return {(str(p), str(f)): at for p, f, at in rows}, (first[0] if first else None)


def delivered_days(conn: psycopg.Connection, first: date, last: date) -> dict[tuple[str, str], set[date]]:
    """The business dates each (provider, feed) delivered a file for (whatever became of it but
    vanishing, as ``last_deliveries``: a file queued or read is a delivery in flight): every one
    of ``first``..``last``, and, for the closing rules (``sources/expected.py``), its first ever
    and its last before ``first``. One query; the two aggregates are index scans of
    ``ingestion_ledger_partition`` (feed, business_date, provider)."""
    rows = conn.execute(
        "with delivered as not materialized ("
        "  select provider, feed, business_date from ops.ingestion_ledger"
        "  where provider is not null and feed is not null and business_date is not null and status <> 'vanished')"
        " select provider, feed, business_date from delivered where business_date between %(first)s and %(last)s"
        " union select provider, feed, max(business_date) from delivered where business_date < %(first)s group by 1, 2"
        " union select provider, feed, min(business_date) from delivered where business_date <= %(last)s group by 1, 2",
        {"first": first, "last": last},
    ).fetchall()
    out: dict[tuple[str, str], set[date]] = defaultdict(set)
    for provider, feed, day in rows:
        out[(str(provider), str(feed))].add(day)
    return dict(out)


@dataclass(frozen=True)
class SourceQuality:
    """What one (provider, feed) delivered and what became of it over a range of business dates."""

    provider: str
    feed: str
    files: int
    files_dead_lettered: int
    files_with_drift: int
    rows_in: int
    rows_loaded: int
    rows_quarantined: int
    quarantined_by_rule: dict[str, int]
    dead_letter_reasons: dict[str, int]


def quality_report(
    conn: psycopg.Connection, start: date, end: date, *, feed: str | None = None, provider: str | None = None
) -> list[SourceQuality]:
    """Per source with files for business dates ``start`` to ``end`` (inclusive): the ledger's
    files and row counts, quarantine per rule, dead-letter reasons. Values are parameters."""
    where = sql.SQL(
        "business_date between %(start)s and %(end)s and provider is not null and feed is not null"
        " and (%(feed)s::text is null or feed = %(feed)s)"
        " and (%(provider)s::text is null or provider = %(provider)s)"
    )
    params = {"start": start, "end": end, "feed": feed, "provider": provider}
    files = conn.execute(
        sql.SQL(
            "select provider, feed, count(*) filter (where status <> 'vanished'),"
            " count(*) filter (where status = 'dead_lettered'), count(*) filter (where schema_drift is not null),"
            " coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)"
            " from ops.ingestion_ledger where {where} group by 1, 2 order by 1, 2"
        ).format(where=where),
        params,
    ).fetchall()
    rules: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for p, f, rule, n in conn.execute(
        sql.SQL(
            "select provider, feed, rule, count(*) from ops.quarantine where {where} group by 1, 2, 3 order by 4 desc"
        ).format(where=where),
        params,
    ).fetchall():
        rules[(p, f)][rule] = int(n)
    reasons: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for p, f, code, n in conn.execute(
        sql.SQL(
            "select provider, feed, error_code, count(*) from ops.ingestion_ledger where {where}"
            " and status = 'dead_lettered' group by 1, 2, 3 order by 4 desc"
        ).format(where=where),
        params,
    ).fetchall():
        reasons[(p, f)][str(code)] = int(n)
    return [
        SourceQuality(
            provider=p,
            feed=f,
            files=int(n),
            files_dead_lettered=int(dead),
            files_with_drift=int(drift),
            rows_in=int(rows_in),
            rows_loaded=int(loaded),
            rows_quarantined=int(quarantined),
            quarantined_by_rule=rules.get((p, f), {}),
            dead_letter_reasons=reasons.get((p, f), {}),
        )
        for p, f, n, dead, drift, rows_in, loaded, quarantined in files
    ]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class UnattributedDeadLetter:
    """A dead-lettered file the ledger could not attach to a source: its key broke the landing
    contract or named no registered source, so it has no provider, feed or business date."""

    file_key: str
    reason: str
    detail: str | None
    first_seen: datetime
    dead_letter_uri: str | None
    #: The business date the report counts it under: the date the key names, else the day first seen.
    reported_for: date


def _key_date(key: str) -> date | None:
    """The calendar date a landing key's third segment names (``p/f/2026-10-01/x.csv``), if any."""
    parts = key.split("/")
    if len(parts) < 3 or not _ISO_DATE.fullmatch(parts[2]):
        return None
    try:
        return date.fromisoformat(parts[2])
    except ValueError:
        return None


def unattributed_dead_letters(
    conn: psycopg.Connection, start: date, end: date, *, feed: str | None = None, provider: str | None = None
) -> list[UnattributedDeadLetter]:
    """Dead letters without a source, for business dates ``start`` to ``end`` (inclusive), by key.

    Such a file has no business date on the ledger: it counts under the date its key's third
    segment names when that is a calendar date, else under the day (UTC) the ledger first saw it.
    ``provider`` and ``feed`` match the key's first and second segments, so a partner's misplaced
    file (``acme/sales/2026-13-01/a.csv``, ``acme/salez/…``, ``acme/a.csv``) shows in its report."""
    rows = conn.execute(
        "select file_key, coalesce(error_code, 'unknown'), error, first_seen, dead_letter_uri"
        " from ops.ingestion_ledger where status = 'dead_lettered'"
        " and (provider is null or feed is null or business_date is null)"
        " and (%(provider)s::text is null or split_part(file_key, '/', 1) = %(provider)s)"
        " and (%(feed)s::text is null or split_part(file_key, '/', 2) = %(feed)s)"
        # a coarse filter; the exact date of each row is decided below
        " and (split_part(file_key, '/', 3) collate \"C\" between %(start_text)s and %(end_text)s"
        "      or (first_seen at time zone 'UTC')::date between %(start)s and %(end)s)"
        ' order by file_key collate "C"',
        {
            "provider": provider,
            "feed": feed,
            "start": start,
            "end": end,
            "start_text": start.isoformat(),
            "end_text": end.isoformat(),
        },
    ).fetchall()
    found = []
    for key, reason, detail, first_seen, uri in rows:
        day = _key_date(key) or first_seen.astimezone(UTC).date()
        if start <= day <= end:
            found.append(UnattributedDeadLetter(key, reason, detail, first_seen, uri, day))
    return found


def known_products(conn: psycopg.Connection, providers: Iterable[str]) -> pl.DataFrame:
    """``provider, sku, category`` of each product of ``providers`` in ``gold.dim_product`` (the
    category whose ceilings judge a sales line of it in silver)."""
    rows = conn.execute(
        "select provider, sku, coalesce(category, 'other') from gold.dim_product"
        " where provider = any(%s) and product_key <> 0 order by provider, sku",
        (sorted(set(providers)),),
    ).fetchall()
    return pl.DataFrame(rows, schema={"provider": pl.String, "sku": pl.String, "category": pl.String}, orient="row")


def record_type_drift(conn: psycopg.Connection, drift: pl.DataFrame) -> None:
    """Add ``type_changed`` (column, rule, rows, of rows) to the ledger's ``schema_drift`` of each
    file in ``drift`` (:func:`resight_platform.transforms.silver.type_drift`'s frame)."""
    if drift.is_empty():
        return
    by_file: dict[str, list[dict[str, object]]] = defaultdict(list)
    for row in drift.iter_rows(named=True):
        by_file[row["_source_file"]].append(
            {"column": row["column"], "rule": row["rule"], "rows": row["rows"], "of": row["rows_in"]}
        )
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(
            "update ops.ingestion_ledger set schema_drift ="
            " coalesce(schema_drift, '{}'::jsonb) || jsonb_build_object('type_changed', %s::jsonb)"
            " where file_key = %s",
            [(Jsonb(changes), key) for key, changes in by_file.items()],
        )


#: A registered provider's onboarding state, as ``ops/sources`` shows it (``onboarding_state``).
ONBOARDING_STATES: tuple[str, ...] = ("new", "changed", "loading", "silent")
#: Ledger statuses of a file whose rows went (or are going) to silver.
_LOADED = ("read", "loaded")


@dataclass(frozen=True)
class ProviderActivity:
    """What the ledger holds of one provider's files: its newest file read or loaded (when, and
    the version of the provider's registry rows it was read under), and how many files were read
    or loaded and dead-lettered since a given time."""

    provider: str
    last_loaded: datetime | None
    provider_version: str | None
    files_since: int
    dead_lettered_since: int


def provider_activity(
    conn: psycopg.Connection, providers: Iterable[str], since: datetime
) -> dict[str, ProviderActivity]:
    """``provider -> ProviderActivity`` for each of ``providers`` (one with no file: never loaded,
    no files), in one statement whose work grows with the providers, not with the ledger: per
    provider, its newest loaded file and its files since ``since`` are read from the index on
    (provider, processed_at) (``009_registry_version.sql``; measured in docs/architecture.md)."""
    rows = conn.execute(
        "select p.provider, n.processed_at, n.provider_version, r.files, r.dead"
        " from unnest(%(providers)s::text[]) as p(provider)"
        " left join lateral ("
        "  select l.processed_at, l.provider_version from ops.ingestion_ledger l"
        "  where l.provider = p.provider and l.status = any(%(loaded)s) and l.processed_at is not null"
        "  order by l.processed_at desc limit 1"
        " ) n on true"
        " cross join lateral ("
        "  select count(*) filter (where l.status = any(%(loaded)s)) as files,"
        "   count(*) filter (where l.status = 'dead_lettered') as dead"
        "  from ops.ingestion_ledger l where l.provider = p.provider and l.processed_at >= %(since)s"
        " ) r",
        {"providers": sorted(set(providers)), "loaded": list(_LOADED), "since": since},
    ).fetchall()
    return {str(p): ProviderActivity(str(p), last, version, int(n), int(dead)) for p, last, version, n, dead in rows}


def onboarding_state(activity: ProviderActivity | None, version: str | None, now: datetime, loading_days: int) -> str:
    """One of :data:`ONBOARDING_STATES` for a registered provider whose rows' version is
    ``version`` now: ``new`` (no file read or loaded yet), ``changed`` (its registry rows changed
    since its newest loaded file; a file ledgered before versions were recorded does not count),
    ``loading`` (a file read or loaded in the last ``loading_days`` days), else ``silent``."""
    if activity is None or activity.last_loaded is None:
        return "new"
    if activity.provider_version is not None and version is not None and activity.provider_version != version:
        return "changed"
    return "loading" if activity.last_loaded >= now - timedelta(days=loading_days) else "silent"


# --- Event-driven landing (io/events.py): the waiting list and the ledger's view of recent days ---


def waiting_files(conn: psycopg.Connection, limit: int) -> list[ObjectInfo]:
    """The oldest ``limit`` files on the waiting list (``ops.landing_waiting``), as last seen."""
    with conn.cursor() as cur:
        cur.execute(
            "select file_key, bytes, etag, last_modified from ops.landing_waiting"
            " order by noticed_at, file_key limit %s",
            (limit,),
        )
        return [ObjectInfo(key=key, size=int(size), etag=etag, last_modified=at) for key, size, etag, at in cur]


def update_waiting(
    conn: psycopg.Connection, *, waiting: Sequence[ObjectInfo], done: Iterable[str], now: datetime
) -> None:
    """Put ``waiting`` on the waiting list (a file already there keeps its place in the line and
    takes the new version) and take the ``done`` keys off it, in one transaction."""
    done = sorted(set(done) - {info.key for info in waiting})
    with conn.transaction(), conn.cursor() as cur:
        if done:
            cur.execute("delete from ops.landing_waiting where file_key = any(%s)", (done,))
        if waiting:
            cur.executemany(
                "insert into ops.landing_waiting (file_key, etag, bytes, last_modified, noticed_at)"
                " values (%s, %s, %s, %s, %s) on conflict (file_key) do update set"
                " etag = excluded.etag, bytes = excluded.bytes, last_modified = excluded.last_modified",
                [(i.key, i.etag, i.size, i.last_modified, now) for i in waiting],
            )


def recently_queued(conn: psycopg.Connection, *, since: datetime, until: datetime, limit: int) -> list[ObjectInfo]:
    """Files queued for a run between ``since`` and ``until`` (``queued_at``), as the ledger last
    saw them: the candidates for an orphan (a run that was never created) on the event path."""
    with conn.cursor() as cur:
        cur.execute(
            "select file_key, coalesce(bytes, 0), etag, queued_at from ops.ingestion_ledger"
            " where status = 'queued' and queued_at >= %s and queued_at < %s and etag is not null"
            " order by queued_at limit %s",
            (since, until, limit),
        )
        return [ObjectInfo(key=key, size=int(size), etag=etag, last_modified=at) for key, size, etag, at in cur]
