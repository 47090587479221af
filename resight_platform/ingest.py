"""Ingestion: the landed files of (date, source) partitions read to bronze frames, without Dagster.

A partition's files are read one slice of one file at a time (memory holds a slice, not the file,
the partition or the run), each by its own extension's format (``LandingKey.format``). A file that
cannot be read is copied to dead-letter and the rest of the partition loads; a file loads whole or
not at all (:data:`RESTART`). Whatever one file does (a name no store may read, a symbolic link, a
format error, a parser's exception, vanishing before it is read) is that file's outcome in the
ledger, never the run's; only a failure of the storage itself (``OSError``, the S3 client's
errors) fails the run, which is then retried. The bronze asset (``defs/bronze.py``) wires this to the lake and the
ledger; anything else that loads landed files (a CLI command, a benchmark) calls the same functions.
"""

from __future__ import annotations

import functools
import gzip
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TypeVar

import polars as pl

from resight_platform.io.landing import SYMLINK, HashingReader, LandedFile, dead_letter, list_partition_files
from resight_platform.io.ops import FileRecord
from resight_platform.io.storage import ObjectInfo, ObjectStore, UnsafeKey
from resight_platform.io.streams import RESTART, RestartPartition
from resight_platform.sources.landing import LandingKeyError
from resight_platform.sources.registry import Registry
from resight_platform.transforms.bronze import (
    DEFAULT_LIMITS,
    SLICE_BYTES,
    ColumnDrift,
    FileRejected,
    ReadLimits,
    empty_bronze,
    read_landing_stream,
)

__all__ = [
    "RESTART",
    "Ingestion",
    "Listed",
    "Restart",
    "ingest_partition",
    "ingest_partitions",
    "listed_key",
    "partition_listing",
]

#: One object of a partition folder: a file whose key parsed, or the key's error.
Listed = LandedFile | tuple[ObjectInfo, LandingKeyError]

K = TypeVar("K")


#: Yielded in place of a frame: drop what was written of the partition so far (a file failed
#: after some of its rows were yielded); the frames that follow are the partition again. The lake's
#: own marker (``io/streams.py``), so a partition's items go to its writer as they are.
Restart = RestartPartition


@dataclass(frozen=True)
class Ingestion:
    """What every partition of one ingestion is read with: where files land and where refused ones
    go, the registry, the feed, the ledger's ``key -> (checksum, status)`` (bytes already
    dead-lettered are not copied again), the run's time, the slice size, the read limits
    (``record_too_long``, ``too_large``) and the spool directory for dead-lettering (the system's
    temporary directory when None).

    ``dead_letters`` None is a dry run (``resight onboard preview``): a refused file gets its
    ledger record with the reason, and nothing is copied anywhere."""

    landing: ObjectStore
    dead_letters: ObjectStore | None
    registry: Registry
    feed: str
    already_dead: Mapping[str, tuple[str, str]]
    now: datetime
    slice_bytes: int = SLICE_BYTES
    limits: ReadLimits = DEFAULT_LIMITS
    spool_dir: Path | None = None


def listed_key(item: Listed) -> str:
    """The landing key of a listed object."""
    return item.info.key if isinstance(item, LandedFile) else item[0].key


def partition_listing(
    landing: ObjectStore, registry: Registry, providers: Iterable[str], feed: str, day: date
) -> list[tuple[str, Listed]]:
    """Every object in the partition folders of ``providers`` for ``feed`` and ``day``, with its provider."""
    return [
        (provider, item)
        for provider in providers
        for item in list_partition_files(landing, registry, provider, feed, day)
    ]


def ingest_partition(
    ingestion: Ingestion, day: date, listing: Sequence[tuple[str, Listed]], records: list[FileRecord]
) -> Iterator[pl.DataFrame | Restart]:
    """The bronze frames of one (date, source) partition, file by file and slice by slice; each
    file's ledger record is appended to ``records`` once the partition is complete.

    ``listing`` pairs each provider with an object of its partition folder (:func:`partition_listing`).
    A file that cannot be read is copied to dead-letter and the rest of the
    partition loads. A file loads whole or not at all: when one fails after some of its slices were
    yielded (a bad record near its end), the generator yields :data:`RESTART` and reads the
    partition again without it, so the writer drops the partial rows. That costs a second pass only
    over a partition holding such a file. The read limits cap a record and a file: such a file is
    dead-lettered like any unreadable one, on the first attempt. A file read with no rows (a header
    only, ``[]``) is ledgered ``loaded`` with zero counts: silver sees none of it.
    """
    refused: dict[str, FileRecord] = {}
    while True:
        done: list[FileRecord] = []
        restart = False
        for item in _one_pass(ingestion, day, listing, refused):
            if isinstance(item, pl.DataFrame):
                yield item
                continue
            record, partial = item
            done.append(record)
            if partial:
                refused[record.file_key] = record
                restart = True
                break
        if not restart:
            records.extend(done)
            return
        yield RESTART


def ingest_partitions(
    ingestion: Ingestion,
    partitions: Iterable[tuple[K, date, Sequence[tuple[str, Listed]]]],
    records: list[FileRecord],
    on_dead_letter: Callable[[FileRecord], None] | None = None,
) -> Iterator[tuple[K, pl.DataFrame | Restart]]:
    """:func:`ingest_partition` over ``(partition, day, listing)`` triples, each partition's items
    together and every partition at least once (an empty bronze frame when none of its files
    loaded), as a partitioned writer wants them. ``on_dead_letter`` is told of each file refused
    (unless the ledger had these very bytes dead-lettered already) once its partition is complete."""
    for partition, day, listing in partitions:
        empty, first = True, len(records)
        for item in ingest_partition(ingestion, day, listing, records):
            empty = isinstance(item, Restart)  # nothing of the partition written since
            yield partition, item
        if on_dead_letter is not None:
            for record in records[first:]:
                if record.status == "dead_lettered" and ingestion.already_dead.get(record.file_key) != (
                    record.checksum,
                    "dead_lettered",
                ):
                    on_dead_letter(record)
        if empty:
            yield partition, empty_bronze(ingestion.feed)


def _one_pass(
    ingestion: Ingestion, day: date, listing: Sequence[tuple[str, Listed]], refused: dict[str, FileRecord]
) -> Iterator[pl.DataFrame | tuple[FileRecord, bool]]:
    """Frames of each file read, then ``(record, partial)`` per file: ``partial`` when the file was
    refused after some of its frames were yielded. Files in ``refused`` are not read again."""
    landing, registry, feed, now, limits = (
        ingestion.landing,
        ingestion.registry,
        ingestion.feed,
        ingestion.now,
        ingestion.limits,
    )
    for provider, item in listing:
        source = registry.source(provider, feed)
        if isinstance(item, LandedFile):
            info, code, detail, fmt = item.info, None, "", item.key.format
        else:
            info, error = item
            code, detail, fmt = error.code, error.detail, ""
        if info.key in refused:
            yield refused[info.key], False
            continue
        if code is None and source is None:
            code, detail = "unknown_source", f"{provider} is not registered for the {feed} feed"
        digest: str | None = None
        size = frames = 0
        drift: list[ColumnDrift] = []
        if code is None:
            assert source is not None
            rows = 0
            reader: HashingReader | None = None
            try:
                with landing.open_read(info.key) as raw:
                    reader = HashingReader(raw)
                    try:
                        for frame in read_landing_stream(
                            reader,
                            file_format=fmt,
                            source=source,
                            key=info.key,
                            business_date=day,
                            ingested_at=now,
                            slice_bytes=ingestion.slice_bytes,
                            whole=functools.partial(_read_document, landing, info.key, limits),
                            on_drift=drift.append,
                            limits=limits,
                        ):
                            frames += 1
                            rows += frame.height
                            yield frame
                    except FileRejected as exc:
                        code, detail = exc.code, exc.detail
                    except Exception as exc:
                        if _storage_failure(exc):
                            raise
                        code, detail = UNREADABLE, f"the file could not be read: {type(exc).__name__}: {exc}"[:2000]
                    reader.drain()
            except FileNotFoundError:  # deleted or moved since the listing: nothing to load or to copy
                yield _vanished(info, provider, feed, day), frames > 0
                continue
            except UnsafeKey as exc:  # turned into a link, or something other than a file, since the listing
                code, detail = (SYMLINK, "a symbolic link: never followed") if exc.symlink else (UNREADABLE, exc.reason)
            except (PermissionError, IsADirectoryError) as exc:
                code, detail = UNREADABLE, f"the file could not be opened: {exc.strerror}"
            if reader is not None:
                digest, size = reader.digest, reader.size
            if code is None:
                yield (
                    FileRecord(
                        info.key,
                        digest,
                        size,
                        provider,
                        feed,
                        day,
                        "read" if rows else "loaded",  # silver sees no row of an empty file: it is done
                        rows_in=rows,
                        etag=info.etag,
                        schema_drift=functools.reduce(operator.or_, drift).as_dict() if drift else None,
                        rows_loaded=None if rows else 0,
                        rows_quarantined=None if rows else 0,
                    ),
                    False,
                )
                continue
        assert code is not None
        uri: str | None = None
        if ingestion.dead_letters is None:  # a dry run: the reason alone, nothing copied
            yield _refused(info, provider, feed, day, digest, size, code, detail, uri), frames > 0
            continue
        try:
            uri, digest, size, detail = dead_letter(
                landing,
                ingestion.dead_letters,
                info.key,
                code,
                detail,
                now,
                digest,
                size,
                ingestion.already_dead.get(info.key),
                ingestion.spool_dir,
            )
        except (OSError, ValueError) as exc:  # the file stays in the landing zone; a later run copies it
            digest, size = None, size or info.size
            detail = f"{detail}; not copied to dead-letter, left in the landing zone: {exc}"
        yield _refused(info, provider, feed, day, digest, size, code, detail, uri), frames > 0


def _refused(
    info: ObjectInfo,
    provider: str,
    feed: str,
    day: date,
    digest: str | None,
    size: int,
    code: str,
    detail: str,
    uri: str | None,
) -> FileRecord:
    """The ledger record of a dead-lettered file."""
    return FileRecord(
        info.key,
        digest,
        size,
        provider,
        feed,
        day,
        "dead_lettered",
        error_code=code,
        error=detail,
        dead_letter_uri=uri,
        etag=info.etag,
    )


def _read_document(landing: ObjectStore, key: str, limits: ReadLimits) -> bytes:
    """A JSON document read whole (one record, so at most ``limits.max_record_bytes``), never more
    than one byte past the limit."""
    want = limits.max_record_bytes + 1
    data = b""
    with landing.open_read(key) as raw:
        while len(data) < want and (more := raw.read(want - len(data))):  # network reads may be short
            data += more
    if len(data) > limits.max_record_bytes:
        raise limits.record_too_long("the JSON document, not an array of records so read whole as one record,")
    return data


#: The reason code of a file whose reading failed in a way no other code names.
UNREADABLE = "unreadable"


def _storage_failure(exc: Exception) -> bool:
    """A failure of the storage or the network rather than of the file's bytes: the run fails and
    is retried. A corrupt gzip stream is the file's (``BadGzipFile`` is an ``OSError``)."""
    if isinstance(exc, gzip.BadGzipFile):
        return False
    return isinstance(exc, OSError) or type(exc).__module__.split(".")[0] in ("botocore", "boto3", "urllib3")


def _vanished(info: ObjectInfo, provider: str, feed: str, day: date) -> FileRecord:
    return FileRecord(
        info.key,
        None,
        info.size,
        provider,
        feed,
        day,
        "vanished",
        error_code="file_vanished",
        error="listed, then gone before it was read",
        etag=info.etag,
    )
