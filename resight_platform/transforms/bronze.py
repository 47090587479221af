"""Bronze: one landed file's bytes -> rows as delivered, in the feed's canonical column names.

Every mapped canonical column is ``Utf8`` holding the value exactly as the file wrote it (CSV
values are never type-inferred, so ``"007"`` stays ``"007"``; Parquet and JSON typed values are
cast to text, native timestamps written ISO 8601 in UTC). Columns the source does not send are
present and null, unmapped extras are dropped, and lineage columns say where each row came from.

The file's own extension says its format (``csv``, ``csv.gz``, ``jsonl``, ``jsonl.gz``, ``json``,
``json.gz``, ``parquet``: :data:`~resight_platform.sources.landing.FILE_FORMATS`), so a partner may
send ``.csv`` one day and ``.csv.gz`` the next; the source's profile gives the dialect (delimiter,
encoding) and the columns. Before parsing, the first bytes are checked against the extension
(gzip's ``1f 8b``, Parquet's ``PAR1``, JSON opening with ``[`` or ``{``, CSV being no known binary
format; for ``*.gz`` the decompressed bytes too): a file whose bytes are something else raises
``FileRejected("format_mismatch")`` naming both. A file that cannot be read at all, or that lacks a
required column after renaming, raises ``FileRejected`` (``unparseable`` / ``missing_columns``);
the caller dead-letters it.

A file is read as a stream, ``SLICE_BYTES`` of input at a time (``read_landing_stream``), so memory
holds one slice, not the file; the slices' frames concatenate to exactly the whole-file read. Since
a CSV's or Parquet file's columns are judged on its first slice, a file that both lacks a required
column and holds a malformed record further on is refused as ``missing_columns``.

Details the data contract leaves open:

- Record numbers (``_row_number``) count records, 1-based, excluding a CSV header: a CSV line
  that is entirely empty (no field holds a value, e.g. a trailing blank line) is not a record, and
  a quoted value spanning lines is one record. JSON Lines blank lines are not records either.
- An empty CSV field is null. CSV text is decoded with the profile's encoding (a UTF-8 byte-order
  mark is dropped); bytes invalid in that encoding make the file unparseable.
- CSV and Parquet columns are matched to the profile's source names exactly, else ignoring
  surrounding white space, else ignoring case. JSON keys are matched exactly; a key counts as
  present when it occurs as an object key anywhere in the file. A JSON file's other columns, for
  drift, are the top-level keys of the first :data:`KEY_SAMPLE` records of each slice.
- A CSV with a header and no rows, a JSON array ``[]`` and a JSON Lines file with no records are
  valid empty files (empty bronze). A 0-byte CSV has no header and is unparseable. A file that is
  empty or white space only has no bytes to judge its format by: its reader decides.
- A Parquet file must also end with ``PAR1`` (checked once spooled): one that starts as Parquet
  and does not is truncated, so unparseable rather than another format.
- CSV and JSON Lines whose first line break is a lone carriage return (classic Mac exports) are
  read with every carriage return as a line break.
- A mapped JSON value that is an object or an array, or a mapped Parquet column of a nested type,
  is no value of a flat table: the file is refused as ``nested_value`` naming the record and key
  (never stringified into an id).
- A JSON document that is an object wrapping the array (``{"orders": [...]}``) is refused as
  ``missing_columns``, saying where the records are; any other single object is one record.
- A file whose source declares a single-byte encoding (Latin-1, Windows-1252) but whose non-ASCII
  bytes all form valid multi-byte UTF-8 loads as declared and is flagged: ``on_drift`` is told
  (``ColumnDrift.encoding``), which the ledger keeps as schema drift.

Strangers' bytes are read under :class:`ReadLimits` (``RESIGHT_MAX_RECORD_BYTES``,
``RESIGHT_MAX_FILE_BYTES``), so memory stays bounded whatever a file holds:

- a line (a JSON array's element is one line once rewritten), a Parquet row's mapped text, or a
  JSON document that is not an array is at most ``max_record_bytes``, else
  ``FileRejected("record_too_long")``; so is a CSV record whose quoted value spans lines, judged
  once the slicer holds a slice of it. The slicer never holds more than a slice, a block and one
  record;
- a file's bytes (decompressed for ``*.gz``) are at most ``max_file_bytes``, else
  ``FileRejected("too_large")``: a gzip bomb is stopped one block past the limit. A Parquet
  footer's declared uncompressed size, and its row count times its columns times 8 bytes, are
  judged against the same limit before a page is read.
"""

from __future__ import annotations

import codecs
import difflib
import functools
import gzip
import io
import itertools
import json
import os
import re
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Protocol, cast

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from resight_platform.sources.landing import DATE_PATTERN, FILE_FORMATS, SYMLINK, LandingKeyError, parse_landing_key
from resight_platform.sources.landing import file_format as format_of_name
from resight_platform.sources.registry import CANONICAL_COLUMNS, FEEDS, Registry, Source

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_RECORD_BYTES",
    "LINEAGE_COLUMNS",
    "SLICE_BYTES",
    "TIMESTAMP_FORMAT",
    "BronzeFile",
    "ColumnDrift",
    "FileRejected",
    "LandingTreeFile",
    "ReadLimits",
    "RefusedFile",
    "bronze_schema",
    "column_drift",
    "empty_bronze",
    "read_landing_file",
    "read_landing_stream",
    "read_landing_tree",
]

#: How a native (Parquet) timestamp is written in bronze: ISO 8601 in UTC, fraction only if any.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S%.fZ"
DATE_FORMAT = "%Y-%m-%d"

LINEAGE_COLUMNS: Mapping[str, pl.DataType] = {
    "_provider": pl.String(),
    "_feed": pl.String(),
    "_business_date": pl.Date(),
    "_source_file": pl.String(),
    "_row_number": pl.Int64(),
    "_ingested_at": pl.Datetime("us", "UTC"),
}

_DETAIL_LIMIT = 300

#: What a parser raises on bad input. A Rust panic (some corrupt Parquet pages) surfaces as
#: ``PanicException``, a ``BaseException``: it is caught here so one bad file never fails a batch.
_PARSE_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError)


class FileRejected(Exception):
    """A landed file that cannot go to bronze; ``code`` is ``format_mismatch``, ``unparseable``,
    ``missing_columns``, ``nested_value``, ``record_too_long`` or ``too_large``."""

    def __init__(self, code: str, detail: str):
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


#: Default of ``RESIGHT_MAX_RECORD_BYTES``: a sample sales line is under 100 bytes.
DEFAULT_MAX_RECORD_BYTES = 1 << 20
#: Default of ``RESIGHT_MAX_FILE_BYTES`` (decompressed): a few GiB per file; raise it for a partner
#: whose daily file is larger (bronze streams it a slice at a time either way).
DEFAULT_MAX_FILE_BYTES = 4 << 30


@dataclass(frozen=True)
class ReadLimits:
    """Caps on what one landed file may hold (see the module docstring); a file past one is refused."""

    max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    def __post_init__(self) -> None:
        if self.max_record_bytes < 1 or self.max_file_bytes < 1:
            raise ValueError(f"read limits must be positive, got {self}")

    def record_too_long(self, what: str) -> FileRejected:
        return FileRejected(
            "record_too_long",
            f"{what} is longer than the limit of {self.max_record_bytes} bytes (RESIGHT_MAX_RECORD_BYTES)",
        )

    def too_large(self, what: str) -> FileRejected:
        return FileRejected(
            "too_large", f"{what} more than the limit of {self.max_file_bytes} bytes (RESIGHT_MAX_FILE_BYTES)"
        )


#: The limits ``RESIGHT_MAX_RECORD_BYTES`` and ``RESIGHT_MAX_FILE_BYTES`` default to.
DEFAULT_LIMITS = ReadLimits()


def bronze_schema(feed: str) -> dict[str, pl.DataType]:
    """Column -> dtype of the bronze table of ``feed``: canonical columns (Utf8), then lineage."""
    if feed not in FEEDS:
        raise ValueError(f"unknown feed {feed!r}; feeds are {', '.join(FEEDS)}")
    schema: dict[str, pl.DataType] = {column: pl.String() for column in CANONICAL_COLUMNS[feed]}
    schema.update(LINEAGE_COLUMNS)
    return schema


def empty_bronze(feed: str) -> pl.DataFrame:
    """A bronze frame of ``feed`` with no rows."""
    return pl.DataFrame(schema=bronze_schema(feed))


def read_landing_file(
    data: bytes,
    *,
    source: Source,
    key: str,
    business_date: date,
    ingested_at: datetime,
    file_format: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> pl.DataFrame:
    """Parse one landed file of ``source`` into bronze rows (see the module docstring).

    ``key`` is the landing key (kept as ``_source_file``); a naive ``ingested_at`` is taken as UTC.
    ``file_format`` defaults to what the key's extension says. Raises ``FileRejected`` when the
    file cannot be read or misses a required column. The whole file at once:
    :func:`read_landing_stream` reads the same rows a slice at a time.
    """
    fmt = file_format or format_of_name(key)
    if fmt is None:
        raise ValueError(f"{key!r} has no extension of {', '.join(FILE_FORMATS)}: pass file_format")
    frames = list(
        read_landing_stream(
            io.BytesIO(data),
            file_format=fmt,
            source=source,
            key=key,
            business_date=business_date,
            ingested_at=ingested_at,
            whole=lambda: data,
            limits=limits,
        )
    )
    return frames[0] if len(frames) == 1 else pl.concat(frames)


@dataclass(frozen=True)
class BronzeFile:
    """A file of a local landing tree read to bronze: its key, what the key says, its rows."""

    key: str
    provider: str
    feed: str
    business_date: date
    frame: pl.DataFrame


@dataclass(frozen=True)
class RefusedFile:
    """A file of a local landing tree the platform dead-letters, with the reason it would record:
    ``code`` is a :class:`~resight_platform.sources.landing.LandingKeyError`'s (the key breaks the
    landing contract or names no registered source), a :class:`FileRejected`'s (bronze cannot read
    the bytes) or ``symlink``.

    ``partition`` is the ``(provider, feed, business date)`` folder the file lies in when its key
    starts with a registered provider, a feed and a ``YYYY-MM-DD`` date, else None: a refusal
    inside a partition (a bad file name, a nested folder, a feed the provider is not registered
    for, unreadable bytes) can be counted against that feed, as a per-feed report does."""

    key: str
    code: str
    detail: str
    partition: tuple[str, str, date] | None


#: What :func:`read_landing_tree` yields for each file.
LandingTreeFile = BronzeFile | RefusedFile


def read_landing_tree(
    root: Path,
    registry: Registry,
    *,
    ingested_at: datetime,
    feeds: Sequence[str] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Iterator[LandingTreeFile]:
    """The bronze reader applied to a local landing folder: every file under ``root`` (when
    ``feeds`` is given, only those under ``{provider}/{feed}/`` of one of them), in key order, read
    whole with :func:`read_landing_file` as a :class:`BronzeFile`, or a :class:`RefusedFile` with
    the reason the platform would dead-letter it (a key that
    :func:`~resight_platform.sources.landing.parse_landing_key` refuses with ``registry``: a
    misdated folder, an unregistered provider or source, a misplaced or misnamed file; bytes bronze
    refuses; a symbolic link, never followed).

    For benches, tests and data scientists who want the platform's bronze rows of a folder of
    files. It is not the pipeline's path, which lists a landing store and streams each file through
    the ledger (checksums, restarts, dead-letter copies): nothing is recorded or copied here.
    Key order sorts segment by segment (as sorted paths do), so a partition folder's files come
    together, in file-name order."""
    wanted = None if feeds is None else frozenset(feeds)
    for parts, link in _tree_entries(root):
        if wanted is not None and (len(parts) < 2 or parts[1] not in wanted):
            continue
        key = "/".join(parts)
        partition = _partition_of(parts, registry)
        if link:
            yield RefusedFile(key, SYMLINK, "a symbolic link: never followed", partition)
            continue
        try:
            landed = parse_landing_key(key, registry)
            source = registry.source(landed.provider, landed.feed)
            assert source is not None, "parse_landing_key refuses an unregistered source"
            frame = read_landing_file(
                (root / key).read_bytes(),
                source=source,
                key=key,
                business_date=landed.date,
                ingested_at=ingested_at,
                limits=limits,
            )
        except (LandingKeyError, FileRejected) as exc:
            yield RefusedFile(key, exc.code, exc.detail, partition)
        else:
            yield BronzeFile(key, landed.provider, landed.feed, landed.date, frame)


def _tree_entries(root: Path) -> list[tuple[tuple[str, ...], bool]]:
    """Every file under ``root`` as its key's segments, and whether it is a symbolic link (a
    linked folder counts as one such file: it is not descended into), sorted segment by segment."""
    found: list[tuple[tuple[str, ...], bool]] = []
    for directory, folders, names in os.walk(root):
        base = Path(directory).relative_to(root).parts
        found.extend(((*base, name), Path(directory, name).is_symlink()) for name in names)
        found.extend(((*base, name), True) for name in folders if Path(directory, name).is_symlink())
    return sorted(found)


def _partition_of(parts: Sequence[str], registry: Registry) -> tuple[str, str, date] | None:
    """The partition folder a key's segments start with (see :class:`RefusedFile`), if any."""
    if len(parts) < 4 or parts[0] not in registry.providers or parts[1] not in FEEDS:
        return None
    if not DATE_PATTERN.fullmatch(parts[2]):
        return None
    try:
        return parts[0], parts[1], date.fromisoformat(parts[2])
    except ValueError:
        return None


#: How much of a landed file is parsed at a time (input bytes): 32 MiB of CSV is about 300k sales
#: lines. With the slice being written one behind the slice being parsed, a 60M-line day's largest
#: CSV partition peaked at 0.82 GiB with 32 MiB slices and 1.28 GiB with 64 MiB, in the same time.
SLICE_BYTES = 32 << 20
#: Records per slice of a JSON file whose top-level keys are read to see keys the mapping lacks
#: (new or renamed columns): the reader itself extracts only the mapped keys.
KEY_SAMPLE = 1_000


class _Reader(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def read_landing_stream(
    stream: _Reader,
    *,
    file_format: str,
    source: Source,
    key: str,
    business_date: date,
    ingested_at: datetime,
    slice_bytes: int = SLICE_BYTES,
    whole: Callable[[], bytes] | None = None,
    on_drift: Callable[[ColumnDrift], None] | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Iterator[pl.DataFrame]:
    """The bronze rows of one landed file in ``file_format`` (what its landing key's extension
    says, one of :data:`~resight_platform.sources.landing.FILE_FORMATS`), ``slice_bytes`` of input
    at a time (at least one frame, possibly empty): memory holds a slice, not the file. The frames,
    concatenated, are exactly what reading the file whole gives (:func:`read_landing_file`).

    The first bytes are checked against ``file_format`` before anything is parsed (for ``*.gz``,
    the compressed and the decompressed ones): ``FileRejected("format_mismatch")`` says what the
    name says and what the bytes are.

    CSV and JSON Lines are cut at record boundaries (a line break outside quotes), each later CSV
    slice parsed under the file's header; a JSON array is rewritten to JSON Lines as it streams;
    Parquet is spooled to a temporary file and read a run of row groups at a time.

    ``FileRejected`` may come after some frames were yielded (a bad record near the end, a JSON key
    judged missing only at the end): the caller must then discard the file's frames. ``whole``
    returns the file's bytes, for the rare JSON document that is not an array of records (read
    whole by the JSON parser, as before); without it such a file is rejected. ``on_drift`` is told
    how the file's columns differ from the registered mapping (:class:`ColumnDrift`), when they do,
    and of a declared single-byte encoding that the bytes contradict. ``limits`` caps a record and
    the file (``record_too_long``, ``too_large``); ``whole`` should return at most
    ``limits.max_record_bytes + 1`` bytes (more is refused as ``record_too_long`` anyway).
    """
    if slice_bytes < 1:
        raise ValueError(f"slice_bytes must be positive, got {slice_bytes}")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format {file_format!r} is not one of {', '.join(FILE_FORMATS)}")
    feed = source.feed
    layout = source.layout.columns
    encoding = source.profile.encoding
    fmt = file_format.removesuffix(".gz")
    if fmt != file_format:
        stream = _expect(stream, "gzip", said=file_format, encoding=encoding)
        stream = _Capped(_Gunzip(stream), limits, "decompressed")
        stream = _expect(stream, fmt, said=file_format, encoding=encoding, within="gzip")
        if whole is not None:
            whole = functools.partial(_gunzip_whole, whole, limits.max_record_bytes + 1)
    else:
        stream = _expect(_Capped(stream, limits, ""), fmt, said=file_format, encoding=encoding)
    if whole is not None:
        whole = functools.partial(_within_record, whole, limits)

    def encoding_drift(declared: str) -> None:
        if on_drift is not None:
            on_drift(ColumnDrift(encoding=f"declared {declared}, but the bytes are UTF-8"))

    def check(matched: Mapping[str, str], columns: list[str]) -> None:
        if on_drift is not None:
            drift = column_drift(columns, matched, layout)
            if drift:
                on_drift(drift)
        missing = [c for c in source.required_columns if c not in matched]
        if missing:
            wanted = ", ".join(f"{c} (column {source.layout.canonical_to_source[c]!r})" for c in missing)
            had = ", ".join(repr(c) for c in columns) or "none"
            raise FileRejected(
                "missing_columns",
                f"{source.provider}/{feed} file lacks required column(s) {wanted}; the file has columns: {had}",
            )

    pieces: Iterator[tuple[pl.DataFrame, Mapping[str, str]]]
    if fmt == "csv":
        pieces = _csv_pieces(
            stream, source=source, slice_bytes=slice_bytes, check=check, limits=limits, on_utf8=encoding_drift
        )
    elif fmt in ("jsonl", "json"):
        pieces = _json_pieces(
            stream,
            layout=layout,
            lines=fmt == "jsonl",
            encoding=encoding,
            slice_bytes=slice_bytes,
            check=check,
            whole=whole,
            limits=limits,
            on_utf8=encoding_drift,
        )
    else:
        pieces = _parquet_pieces(stream, layout=layout, slice_bytes=slice_bytes, check=check, limits=limits)

    instant = ingested_at.replace(tzinfo=UTC) if ingested_at.tzinfo is None else ingested_at.astimezone(UTC)
    offset = 0
    empty: pl.DataFrame | None = None
    for frame, matched in pieces:
        try:
            canonical = [
                (
                    _as_text(pl.col(matched[c]), frame.schema[matched[c]]) if c in matched else pl.lit(None, pl.String)
                ).alias(c)
                for c in CANONICAL_COLUMNS[feed]
            ]
            bronze = frame.select(
                *canonical,
                pl.lit(source.provider, pl.String).alias("_provider"),
                pl.lit(feed, pl.String).alias("_feed"),
                pl.lit(business_date, pl.Date).alias("_business_date"),
                pl.lit(key, pl.String).alias("_source_file"),
                pl.int_range(offset + 1, pl.len() + offset + 1, dtype=pl.Int64).alias("_row_number"),
                pl.lit(instant, pl.Datetime("us", "UTC")).alias("_ingested_at"),
            )
        except _PARSE_ERRORS as exc:
            raise FileRejected("unparseable", f"a column could not be read as text: {_trim(exc)}") from exc
        del frame
        offset += bronze.height
        if bronze.height:
            yield bronze
        elif empty is None:
            empty = bronze
    if offset == 0:
        assert empty is not None, "every reader yields at least one piece"
        yield empty


@dataclass(frozen=True)
class ColumnDrift:
    """How a file's columns differ from its source's registered mapping: columns the mapping does
    not know (``new``), mapped columns absent (``missing``), and of those, pairs whose names are
    alike enough to be a rename (``renamed``: registered name → the file's). A missing *required*
    column also refuses the file (``missing_columns``); the rest loads, with this reported.
    ``encoding`` says how the bytes contradict the declared encoding (a UTF-8 file in a Latin-1
    source), when they do."""

    new: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    renamed: tuple[tuple[str, str], ...] = ()
    encoding: str | None = None

    def __bool__(self) -> bool:
        return bool(self.new or self.missing or self.renamed or self.encoding)

    def __or__(self, other: ColumnDrift) -> ColumnDrift:
        """Both drifts of one file (its columns, then its encoding, are told apart)."""
        return ColumnDrift(
            new=self.new + other.new,
            missing=self.missing + other.missing,
            renamed=self.renamed + other.renamed,
            encoding=self.encoding or other.encoding,
        )

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "new": list(self.new),
            "missing": list(self.missing),
            "renamed": [list(r) for r in self.renamed],
        }
        if self.encoding:
            out["encoding"] = self.encoding
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ColumnDrift:
        """The drift :meth:`as_dict` wrote (the ledger's ``schema_drift``, its column kinds)."""

        def names(kind: str) -> list[object]:
            value = data.get(kind)
            return value if isinstance(value, list) else []

        encoding = data.get("encoding")
        return cls(
            new=tuple(map(str, names("new"))),
            missing=tuple(map(str, names("missing"))),
            renamed=tuple((str(pair[0]), str(pair[1])) for pair in names("renamed") if isinstance(pair, list | tuple)),
            encoding=str(encoding) if encoding else None,
        )

    def describe(self) -> str:
        parts = []
        if self.encoding:
            parts.append(f"encoding {self.encoding}")
        if self.renamed:
            parts.append("renamed " + ", ".join(f"{a!r} → {b!r}" for a, b in self.renamed))
        if self.new:
            parts.append("new " + ", ".join(repr(c) for c in self.new))
        if self.missing:
            parts.append("missing " + ", ".join(repr(c) for c in self.missing))
        return "; ".join(parts)


def column_drift(columns: Sequence[str], matched: Mapping[str, str], layout: Mapping[str, str]) -> ColumnDrift:
    """Compare a file's ``columns`` (``matched``: canonical → the file's column) with ``layout``
    (registered source column → canonical)."""
    used = set(matched.values())
    new = [c for c in columns if c not in used]
    missing = [name for name, canonical in layout.items() if canonical not in matched]
    renamed: list[tuple[str, str]] = []
    for name in list(missing):
        candidates = [c for c in new if c not in {b for _, b in renamed}]
        close = difflib.get_close_matches(name.casefold(), [c.casefold() for c in candidates], n=1, cutoff=0.6)
        if close:
            found = next(c for c in candidates if c.casefold() == close[0])
            renamed.append((name, found))
    taken_old, taken_new = {a for a, _ in renamed}, {b for _, b in renamed}
    return ColumnDrift(
        new=tuple(c for c in new if c not in taken_new),
        missing=tuple(m for m in missing if m not in taken_old),
        renamed=tuple(renamed),
    )


def _trim(exc: BaseException) -> str:
    """The first line of a parser's message, cut to a readable length."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _to_utf8(data: bytes, encoding: str) -> bytes:
    """The bytes as UTF-8 without a byte-order mark; undecodable bytes reject the file."""
    if codecs.lookup(encoding).name == "utf-8":
        data = data.removeprefix(codecs.BOM_UTF8)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileRejected("unparseable", f"the file is not valid {encoding}: {_trim(exc)}") from exc
        return data
    try:
        return data.decode(encoding).removeprefix("\ufeff").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected("unparseable", f"the file is not valid {encoding}: {_trim(exc)}") from exc


def _match_columns(columns: list[str], layout: Mapping[str, str]) -> dict[str, str]:
    """Canonical name -> the file's column for it: exact, then trimmed, then case-insensitive."""
    matched: dict[str, str] = {}
    for normalise in (lambda s: s, str.strip, lambda s: s.strip().casefold()):
        by_name: dict[str, str] = {}
        for column in columns:
            by_name.setdefault(normalise(column), column)
        for source_name, canonical in layout.items():
            found = by_name.get(normalise(source_name))
            if canonical not in matched and found is not None and found not in matched.values():
                matched[canonical] = found
    return matched


_MAX_BLOCK = 4 << 20


def _blocks(stream: _Reader, size: int) -> Iterator[bytes]:
    """The stream's bytes in blocks of ``size`` (the last may be shorter)."""
    while True:
        block = stream.read(size)
        while block and len(block) < size:  # network and gzip streams may return short reads
            more = stream.read(size - len(block))
            if not more:
                break
            block += more
        if not block:
            return
        yield block


class _Gunzip:
    """A gzip stream decompressed as it is read; a corrupt stream rejects the file."""

    def __init__(self, raw: _Reader) -> None:
        self._file = gzip.GzipFile(fileobj=cast(IO[bytes], raw), mode="rb")

    def read(self, size: int = -1, /) -> bytes:
        try:
            return self._file.read(size)
        except (OSError, EOFError, zlib.error) as exc:
            raise FileRejected("unparseable", f"not a readable gzip file: {_trim(exc)}") from exc


class _Capped:
    """A stream that refuses the file (``too_large``) once more than ``max_file_bytes`` were read
    through it (``what``: "decompressed" for the output of a gzip)."""

    def __init__(self, raw: _Reader, limits: ReadLimits, what: str) -> None:
        self._raw = raw
        self._limits = limits
        self._what = what
        self._size = 0

    def read(self, size: int = -1, /) -> bytes:
        limit = self._limits.max_file_bytes
        # Never more than one byte past the limit: an unbounded read of a bomb is a bounded one here.
        want = limit + 1 - self._size if size < 0 else min(size, limit + 1 - self._size)
        data = self._raw.read(max(want, 1))
        self._size += len(data)
        if self._size > limit:
            raise self._limits.too_large(f"the file holds{', ' + self._what + ',' if self._what else ''}")
        return data


def _gunzip_whole(whole: Callable[[], bytes], max_bytes: int) -> bytes:
    """A gzip file's bytes, read whole and decompressed, at most ``max_bytes`` of them (for a JSON
    document read whole, which ``_within_record`` then judges)."""
    inflate = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = inflate.decompress(whole(), max_bytes)
        if len(out) < max_bytes and not inflate.eof:
            raise EOFError("compressed file ended before the end-of-stream marker was reached")
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected("unparseable", f"not a readable gzip file: {_trim(exc)}") from exc
    return out


def _within_record(whole: Callable[[], bytes], limits: ReadLimits) -> bytes:
    """A JSON document read whole is one record: at most ``max_record_bytes``."""
    data = whole()
    if len(data) > limits.max_record_bytes:
        raise limits.record_too_long("the JSON document, not an array of records so read whole as one record,")
    return data


#: Bytes read ahead to tell what a file is: magic numbers, and JSON's first character after a
#: byte-order mark and white space (a file whose head is all white space is left to its reader).
_HEAD_BYTES = 4096
#: Binary formats told by their first bytes: ``(magic, kind, the words a dead letter's detail uses)``.
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"\x1f\x8b", "gzip", "gzip"),
    (b"PAR1", "parquet", "Parquet"),
    (b"PK\x03\x04", "zip", "zip"),
    (b"PK\x05\x06", "zip", "zip"),
    (b"\xfd7zXZ\x00", "xz", "xz"),
    (b"(\xb5/\xfd", "zstd", "zstd"),
    (b"BZh", "bzip2", "bzip2"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "ole2", "an OLE2 document (legacy Excel)"),
    (b"%PDF-", "pdf", "a PDF document"),
)
#: What follows ``BZh`` and the level digit in a bzip2 stream: a block's or the (empty) end's magic.
_BZIP2_BLOCKS = (b"1AY&SY", b"\x17rE8P\x90")
#: What the bytes of each format may be: a CSV is any text (even one that looks like JSON).
_ACCEPTS: Mapping[str, frozenset[str]] = {
    "gzip": frozenset({"gzip"}),
    "parquet": frozenset({"parquet"}),
    "json": frozenset({"json", "blank"}),
    "jsonl": frozenset({"json", "blank"}),
    "csv": frozenset({"json", "text", "blank"}),
}
_SAMPLE_CHARS = 24


class _Replay:
    """A stream whose first bytes were read ahead, read again from its start."""

    def __init__(self, head: bytes, rest: _Reader) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if not self._head:
            return self._rest.read(size)
        if size < 0:
            out, self._head = self._head + self._rest.read(), b""
            return out
        out, self._head = self._head[:size], self._head[size:]
        return out


def _sniff(head: bytes, encoding: str) -> tuple[str, str]:
    """``(kind, words)`` of a file's first bytes: a binary format told by its magic number, else
    ``json`` (text opening with ``[`` or ``{``), ``text`` or ``blank`` (nothing but white space)."""
    for magic, kind, words in _MAGIC:
        if head.startswith(magic) and (kind != "bzip2" or head[4:10] in _BZIP2_BLOCKS):
            return kind, words
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head).lstrip("\ufeff \t\r\n")
    if not text:
        return "blank", "empty or white space only"
    sample = text[:_SAMPLE_CHARS] + ("…" if len(text) > _SAMPLE_CHARS else "")
    if text[0] in "[{":
        return "json", f"JSON (it starts {sample!r})"
    return "text", f"text (it starts {sample!r})"


def _expect(stream: _Reader, fmt: str, *, said: str, encoding: str, within: str | None = None) -> _Reader:
    """The stream, read again from its start, once its first bytes are seen to be ``fmt``
    (``gzip``, ``parquet``, ``json``, ``jsonl`` or ``csv``); else ``FileRejected("format_mismatch")``
    naming what the file name (``said``) says and what the bytes are (``within``: inside a gzip)."""
    head = next(_blocks(stream, _HEAD_BYTES), b"")
    kind, words = _sniff(head, encoding)
    if kind not in _ACCEPTS[fmt]:
        what = f"{within} of {words}" if within else words
        raise FileRejected("format_mismatch", f"file name says {said} but the bytes are {what}")
    return _Replay(head, stream)


def _utf8_blocks(
    blocks: Iterator[bytes], encoding: str, on_utf8: Callable[[str], None] | None = None
) -> Iterator[bytes]:
    """The blocks as UTF-8 without a byte-order mark; bytes invalid in ``encoding`` reject the file.

    UTF-8 input is validated and passed through (pure ASCII blocks are not even decoded); other
    encodings are decoded and re-encoded. A character split between blocks is carried over.
    ``on_utf8(encoding)`` is called at the end when ``encoding`` is another one but every
    non-ASCII byte formed valid multi-byte UTF-8 (a UTF-8 file in a Latin-1 source).
    """
    decoder = codecs.getincrementaldecoder(encoding)()
    utf8 = codecs.lookup(encoding).name == "utf-8"
    # For another declared encoding: could the bytes be UTF-8 (None once they cannot), any non-ASCII?
    sniff: codecs.IncrementalDecoder | None = None if utf8 else codecs.getincrementaldecoder("utf-8")()
    multibyte = False
    at = 0
    head: bytes | None = b""  # the first bytes, held until a byte-order mark can be recognised
    for raw in itertools.chain(blocks, [b""]):
        final = not raw
        carried = len(decoder.getstate()[0]) if utf8 else 0
        try:
            if utf8:
                if not (raw.isascii() and decoder.getstate()[0] == b""):
                    decoder.decode(raw, final)
                out = raw
            else:
                out = decoder.decode(raw, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            position = at + exc.start - carried if utf8 else at
            hint = ""
            if utf8 and _looks_single_byte(raw[max(exc.start, 0) :]):
                hint = "; the bytes look like Latin-1 or Windows-1252: is the source's encoding right?"
            raise FileRejected(
                "unparseable", f"the file is not valid {encoding}: {exc.reason} near byte {max(position, 0)}{hint}"
            ) from exc
        if sniff is not None and not (raw.isascii() and sniff.getstate()[0] == b""):
            multibyte = True
            try:
                sniff.decode(raw, final)
            except UnicodeDecodeError:
                sniff = None
        elif sniff is not None and final:
            try:
                sniff.decode(b"", True)
            except UnicodeDecodeError:
                sniff = None
        at += len(raw)
        if final and sniff is not None and multibyte and on_utf8 is not None:
            on_utf8(encoding)
        if head is not None:
            head += out
            if len(head) < len(codecs.BOM_UTF8) and not final:
                continue
            out, head = head.removeprefix(codecs.BOM_UTF8), None
        if out:
            yield out


def _looks_single_byte(data: bytes) -> bool:
    """Whether bytes that are not UTF-8 read as Latin-1 text: the first non-ASCII byte is a letter
    or sign of Latin-1's upper half followed by ASCII (``é`` in ``Café,``)."""
    return len(data) > 1 and data[0] >= 0xA0 and data[1] < 0x80


def _cr_line_ends(blocks: Iterator[bytes]) -> Iterator[bytes]:
    """The blocks, with every carriage return a line feed when the text's first line break is a
    lone carriage return (classic Mac line ends); else as they are."""
    pending = b""
    for block in blocks:
        text = pending + block
        cr, lf = text.find(b"\r"), text.find(b"\n")
        if lf >= 0 and (cr < 0 or lf < cr):
            yield text
            yield from blocks
            return
        if cr >= 0 and cr + 1 < len(text):
            if text[cr + 1] == ord("\n"):
                yield text
                yield from blocks
                return
            yield text.replace(b"\r", b"\n")
            for rest in blocks:
                yield rest.replace(b"\r", b"\n")
            return
        if cr < 0:  # no line break yet
            yield text
            pending = b""
        else:  # a carriage return at the very end: the next byte tells
            yield text[:-1]
            pending = b"\r"
    if pending:
        yield b"\n"


def _record_slices(
    blocks: Iterator[bytes] | Iterator[bytearray],
    slice_bytes: int,
    cut: Callable[[bytearray], int],
    limits: ReadLimits,
) -> Iterator[bytes]:
    """The text cut into slices of at least ``slice_bytes`` that end at a record boundary
    (``cut(buffer)``: the index just past the buffer's last complete record, 0 if none); the last
    slice holds the rest. At least one slice, possibly empty.

    A line longer than ``limits.max_record_bytes``, or a record (a run of lines ``cut`` cannot split)
    longer than it once the buffer holds a slice, refuses the file (``record_too_long``): the buffer
    never holds more than a slice, a block and one record."""
    max_record = limits.max_record_bytes
    buffer = bytearray()
    yielded = False
    before = 0  # bytes of text before the block (or, below, before the buffer)
    line = 0  # bytes of the last line so far (since the last line break)
    for block in blocks:
        # Every max_record + 1 bytes must hold a line break: jump from one window's last break to
        # the next window (a few searches a block, each backwards over one short line). Counting
        # lines instead would cost a scan of every byte; the detail gives the line's first byte.
        at, size = 0, len(block)
        while True:
            end = at + max_record - line + 1  # a line break before `end` keeps the line short
            found = block.rfind(b"\n", at, min(end, size))
            if found < 0:
                if end <= size:
                    raise limits.record_too_long(f"the line from byte {before + at - line} of the text")
                line += size - at
                break
            at, line = found + 1, 0
        before += size
        buffer += block
        if len(buffer) >= slice_bytes:
            at = cut(buffer)
            if at > 0:
                with memoryview(buffer) as view:
                    piece = bytes(view[:at])
                del buffer[:at]
                yielded = True
                yield piece
            if len(buffer) > max_record:  # what a cut leaves is one unfinished record
                start = before - len(buffer)
                raise limits.record_too_long(f"the record spanning lines from byte {start} of the text")
    if buffer or not yielded:
        yield bytes(buffer)


def _line_cut(buffer: bytearray) -> int:
    """Just past the last line break: JSON text never holds a raw line break inside a string."""
    return buffer.rfind(b"\n") + 1


def _csv_cut(buffer: bytearray) -> int:
    """Just past the last line break outside quotes (``buffer`` starts at a record boundary; an
    escaped quote is doubled, so quotes toggle the state one by one)."""
    end = buffer.rfind(b"\n")
    odd = buffer.count(b'"', 0, end) & 1 if end >= 0 else 0
    while end >= 0 and odd:
        previous = buffer.rfind(b"\n", 0, end)
        if previous >= 0:
            odd ^= buffer.count(b'"', previous, end) & 1
        end = previous
    return end + 1


def _csv_header_end(text: bytes) -> int:
    """Just past the header record: the first line break outside quotes after any blank lines."""
    at = len(text) - len(text.lstrip(b"\r\n"))
    odd = 0
    while True:
        end = text.find(b"\n", at)
        if end < 0:
            return len(text)
        odd ^= text.count(b'"', at, end) & 1
        if not odd:
            return end + 1
        at = end + 1


def _parse_csv(text: bytes, delimiter: str) -> pl.DataFrame:
    try:
        frame = pl.read_csv(
            io.BytesIO(text),
            separator=delimiter,
            quote_char='"',
            has_header=True,
            infer_schema=False,
            truncate_ragged_lines=False,
        )
    except _PARSE_ERRORS as exc:
        raise FileRejected("unparseable", f"CSV could not be parsed: {_trim(exc)}") from exc
    if frame.width and frame.height:
        frame = frame.filter(pl.any_horizontal(pl.all().is_not_null()))
    return frame


_Check = Callable[[Mapping[str, str], list[str]], None]


def _csv_pieces(
    stream: _Reader,
    *,
    source: Source,
    slice_bytes: int,
    check: _Check,
    limits: ReadLimits,
    on_utf8: Callable[[str], None],
) -> Iterator[tuple[pl.DataFrame, Mapping[str, str]]]:
    """CSV slices, each parsed under the file's header (a slice after the first is prefixed with it)."""
    block = min(slice_bytes, _MAX_BLOCK)
    text_blocks = _cr_line_ends(_utf8_blocks(_blocks(stream, block), source.profile.encoding, on_utf8))
    header: bytes | None = None
    matched: Mapping[str, str] | None = None
    blank = b""  # blank lines before the header, held until it comes
    for text in _record_slices(text_blocks, slice_bytes, _csv_cut, limits):
        if header is None:
            text = blank + text
            if not text.strip():
                blank = text
                continue
            header = text[: _csv_header_end(text)]
            frame = _parse_csv(text, source.profile.delimiter)
        else:
            frame = _parse_csv(header + text, source.profile.delimiter)
        del text
        if matched is None:
            matched = _match_columns(frame.columns, source.layout.columns)
            check(matched, frame.columns)
        yield frame, matched
    if header is None:
        raise FileRejected("unparseable", "the file is empty: no header row")


def _json_pieces(
    stream: _Reader,
    *,
    layout: Mapping[str, str],
    lines: bool,
    encoding: str,
    slice_bytes: int,
    check: _Check,
    whole: Callable[[], bytes] | None,
    limits: ReadLimits,
    on_utf8: Callable[[str], None],
) -> Iterator[tuple[pl.DataFrame, Mapping[str, str]]]:
    """JSON Lines, or a JSON array of records rewritten to JSON Lines as it streams, a slice of
    lines at a time, reading only the mapped keys, every value as text.

    No type inference: each mapped key is read as a string (numbers as written), so one odd record
    never fails the file; a mapped key holding an object or an array refuses it (``nested_value``).
    A key counts as present when it occurs as an object key anywhere in the file, so an absent
    required key rejects the file as missing columns only once the whole file was read. With no
    records there is nothing to judge a key by: an empty export is a valid empty file. A key never
    present reads as null either way.
    """
    schema = {name: pl.String() for name in layout}
    every = {canonical: name for name, canonical in layout.items()}
    kind = "JSON Lines" if lines else "JSON"
    head: list[bytes] = []  # the first block of text, to say what a JSON document that is no array is
    decoded = _utf8_blocks(_blocks(stream, min(slice_bytes, _MAX_BLOCK)), encoding, on_utf8)
    text_blocks: Iterator[bytes] | Iterator[bytearray] = (
        _cr_line_ends(decoded) if lines else _array_as_lines(_first_kept(decoded, head))
    )
    present: set[str] = set()
    seen: dict[str, None] = {}  # top-level keys of sampled records, in the order first seen
    rows = 0
    try:
        for text in _record_slices(text_blocks, slice_bytes, _line_cut, limits):
            try:
                frame = pl.read_ndjson(io.BytesIO(text), schema=schema)
            except _PARSE_ERRORS as exc:
                raise FileRejected("unparseable", f"{kind} could not be parsed: {_trim(exc)}") from exc
            _refuse_nested(text, layout, rows)
            present.update(name for name in layout if name not in present and _has_json_key(text, name))
            seen.update(dict.fromkeys(_record_keys(text, KEY_SAMPLE)))
            del text
            rows += frame.height
            yield frame, every
    except _NotAnArray:
        wrapper = _WRAPPER.match(head[0]) if head and not rows else None
        if wrapper is not None:
            raise _wrapped(json.loads(wrapper.group(1))) from None
        broken = FileRejected(
            "unparseable",
            "JSON could not be parsed: the array of records is not well formed (truncated, or an element"
            f" that is not a record){f' after {rows} records' if rows else ''}",
        )
        if rows:  # records were already read from the stream: an array, broken further on
            raise broken from None
        try:
            data = whole() if whole is not None else None
        except FileRejected as exc:
            if exc.code == "record_too_long" and head and head[0].lstrip().startswith(b"["):
                raise broken from None  # an array too large to be read whole: say what it is
            raise
        yield _json_document(data, layout, encoding, check), every
        return
    if rows:
        named = [name for name in layout if name in present]
        check({layout[name]: name for name in named}, [*named, *(key for key in seen if key not in layout)])


def _first_kept(blocks: Iterator[bytes], kept: list[bytes]) -> Iterator[bytes]:
    """The blocks, the first one also appended to ``kept``."""
    for block in blocks:
        if not kept:
            kept.append(block[:_HEAD_BYTES])
        yield block


#: A JSON object whose first key holds an array of objects: ``{"orders": [{...``.
_WRAPPER = re.compile(rb'\s*\{\s*("(?:[^"\\]|\\.){1,200}")\s*:\s*\[\s*[{\]]')


def _wrapped(key: str) -> FileRejected:
    return FileRejected(
        "missing_columns",
        f"the JSON document is an object holding the records in an array under {key!r}, not an array of"
        " records: its records' columns are not at the top level (send the array itself, or JSON Lines)",
    )


#: Where a value may open an object or an array: a colon, then ``{`` or ``[``. It starts with a
#: literal, so the search runs at memory speed; flat records (the norm) have no candidate at all.
_NESTED_CANDIDATE = re.compile(rb":\s*[\[{]")


def _refuse_nested(text: bytes, layout: Mapping[str, str], before: int) -> None:
    """Refuse the file if a record of the JSON Lines ``text`` holds an object or an array under one
    of the top-level keys of ``layout``. The search finds candidates (``"key": {`` or ``: [``, also
    inside a string value); the record's own parse decides, so the same text inside a string, or a
    nested value under a key bronze does not read, is no matter."""
    if b"[" not in text and text.count(b"{") == text.count(b"\n{") + text.startswith(b"{"):
        return  # every brace opens its line's record: nothing is nested (the common case)
    at = 0
    while (found := _NESTED_CANDIDATE.search(text, at)) is not None:
        start = text.rfind(b"\n", 0, found.start()) + 1
        end = text.find(b"\n", found.end())
        end = len(text) if end < 0 else end
        try:
            record = json.loads(text[start:end])
        except (ValueError, RecursionError):
            record = None  # the parser already read it; a line it took is JSON
        if isinstance(record, dict):
            for name in layout:
                if isinstance(record.get(name), dict | list):
                    line = before + sum(1 for line in text[:start].split(b"\n") if line.strip()) + 1
                    raise _nested_value(name, line)
        at = end


def _nested_value(name: str, record: int) -> FileRejected:
    return FileRejected(
        "nested_value",
        f"record {record}: {name!r} holds a JSON object or array where a single value is expected"
        " (bronze keeps flat values only; a nested value is never turned into an id or a number)",
    )


def _json_document(data: bytes | None, layout: Mapping[str, str], encoding: str, check: _Check) -> pl.DataFrame:
    """A JSON file that is not an array of records, read whole by the JSON parser (which accepts
    a single record and an empty array, and says what is wrong with the rest). A single record's
    keys are judged like a file's columns; one wrapping an array of records is refused."""
    if data is None:
        raise FileRejected("unparseable", "JSON could not be parsed: the file is not an array of records")
    text = _to_utf8(data, encoding)
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FileRejected("unparseable", f"JSON could not be parsed: {_trim(exc)}") from exc
    if isinstance(document, dict):
        for key, value in document.items():
            if key in layout and isinstance(value, dict | list):
                raise _nested_value(key, 1)
        if not any(key in layout for key in document):
            for key, value in document.items():
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    raise _wrapped(key)
        named = [name for name in layout if name in document]
        check({layout[name]: name for name in named}, list(document))
    try:
        return pl.read_json(io.BytesIO(text), schema={name: pl.String() for name in layout})
    except _PARSE_ERRORS as exc:
        raise FileRejected("unparseable", f"JSON could not be parsed: {_trim(exc)}") from exc


class _NotAnArray(Exception):
    """The JSON text is not a well-formed array of objects."""


_SCAN_BYTES = 1 << 20  # fits in cache: twice as fast as 16 MiB slices
_WHITESPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)
_COMMA, _BRACE, _BRACKET = ord(","), ord("{"), ord("[")


def json_array_as_lines(text: bytes, *, scan_bytes: int = _SCAN_BYTES) -> bytearray | None:
    """A JSON array of objects rewritten as JSON Lines (a copy of the same size), or ``None`` if
    ``text`` is not one (the caller then parses it as JSON and reports what is wrong)."""
    try:
        return bytearray().join(_array_as_lines(iter([text]), scan_bytes=scan_bytes))
    except _NotAnArray:
        return None


def _array_as_lines(blocks: Iterator[bytes], *, scan_bytes: int = _SCAN_BYTES) -> Iterator[bytearray]:
    """The blocks of a JSON array of objects rewritten as JSON Lines, block by block (each output
    block the same size as its input); raises ``_NotAnArray`` as soon as the text cannot be one.

    Polars parses a JSON array into a tree of values first (5 GB for a 500 MB file); JSON Lines it
    reads record by record. The rewrite scans ``scan_bytes`` at a time with numpy: a quote counts
    unless an odd run of backslashes precedes it, bytes between counted quotes are inside a string,
    and outside strings the array's ``[``/``]`` become spaces, the commas between its elements
    newlines and any line break a space. Strings are never touched.
    """
    in_string, depth, backslashes, objects, previous, started = 0, 0, 0, 0, _COMMA, False
    for block in blocks:
        data = np.frombuffer(block, dtype=np.uint8)
        out = bytearray(block)
        view = np.frombuffer(out, dtype=np.uint8)
        for start in range(0, len(data), scan_bytes):
            chunk = data[start : start + scan_bytes]
            quote = chunk == ord('"')
            is_backslash = chunk == ord("\\")
            if backslashes or is_backslash.any():
                # Backslashes in the run that ends just before each byte (it may begin in an earlier chunk).
                index = np.arange(chunk.size, dtype=np.int64)
                last_other = np.maximum.accumulate(np.where(is_backslash, -1, index))
                run = np.empty(chunk.size, dtype=np.int64)
                run[0] = backslashes
                run[1:] = index[:-1] - last_other[:-1] + np.where(last_other[:-1] < 0, backslashes, 0)
                quote &= run % 2 == 0
                end = int(last_other[-1])
                backslashes = chunk.size - 1 - end if end >= 0 else backslashes + chunk.size
            # Inside a string before this byte: the parity of the counted quotes before it.
            parity = np.bitwise_xor.accumulate(quote.view(np.uint8)) ^ np.uint8(in_string)
            outside = ((parity ^ quote.view(np.uint8)) == 0) & ~quote
            opens = outside & ((chunk == _BRACE) | (chunk == _BRACKET))
            closes = outside & ((chunk == ord("}")) | (chunk == ord("]")))
            step = opens.view(np.int8) - closes.view(np.int8)
            depth_after = np.cumsum(step, dtype=np.int32) + depth
            depth_before = depth_after - step
            blank = np.isin(chunk, _WHITESPACE)
            # Outside the array only whitespace and the one opening "[".
            beyond = np.flatnonzero(outside & (depth_before <= 0) & ~blank)
            if beyond.size:
                if started or beyond.size > 1 or chunk[beyond[0]] != _BRACKET:
                    raise _NotAnArray
                started = True
            close = outside & (depth_before == 1) & (depth_after == 0)
            if close.any() and (chunk[close] != ord("]")).any():
                raise _NotAnArray
            top = outside & (depth_before == 1) & ~close
            comma = chunk == _COMMA
            # Inside the array and outside its elements only whitespace, commas and an object's "{".
            if (top & ~(blank | comma | (chunk == _BRACE))).any():
                raise _NotAnArray
            # Elements and commas alternate: no empty element, no leading or trailing comma.
            tokens = chunk[top & (comma | (chunk == _BRACE))]
            if tokens.size:
                if tokens[0] == previous or (tokens[1:] == tokens[:-1]).any():
                    raise _NotAnArray
                previous = int(tokens[-1])
            objects += int(np.count_nonzero(tokens == _BRACE))
            window = view[start : start + chunk.size]
            window[top & comma] = ord("\n")
            window[outside & ((chunk == ord("\n")) | (chunk == ord("\r")))] = ord(" ")
            window[close | (outside & (depth_before == 0) & (chunk == _BRACKET))] = ord(" ")
            in_string = int(parity[-1])
            depth = int(depth_after[-1])
        del view
        yield out
    if not started or in_string or depth != 0 or objects == 0 or previous != _BRACE:
        raise _NotAnArray


def _parquet_pieces(
    stream: _Reader, *, layout: Mapping[str, str], slice_bytes: int, check: _Check, limits: ReadLimits
) -> Iterator[tuple[pl.DataFrame, Mapping[str, str]]]:
    """Parquet spooled to a temporary file (a footer is at the end), judged by its footer against
    ``limits``, then read a run of row groups of about ``slice_bytes`` (uncompressed) at a time."""
    with tempfile.TemporaryDirectory(prefix="resight-parquet-") as directory:
        path = Path(directory) / "landed.parquet"
        with open(path, "wb") as out:
            tail = b""
            for block in _blocks(stream, _MAX_BLOCK):
                out.write(block)
                tail = (tail + block)[-8:]
            size = out.tell()
        if size < 12 or not tail.endswith(b"PAR1"):  # PAR1, at least a footer's length, PAR1
            raise FileRejected("unparseable", f"Parquet file is truncated: its {size} bytes do not end with PAR1")
        _judge_footer(path, limits)
        scan = pl.scan_parquet(path, hive_partitioning=False)
        matched: Mapping[str, str] | None = None
        row = 0
        for offset, rows in _row_group_runs(path, slice_bytes):
            try:
                frame = (scan if rows is None else scan.slice(offset, rows)).collect()
            except _PARSE_ERRORS as exc:
                raise FileRejected("unparseable", f"Parquet could not be read: {_trim(exc)}") from exc
            if matched is None:
                matched = _match_columns(frame.columns, layout)
                for column in matched.values():
                    if frame.schema[column].is_nested():
                        raise FileRejected(
                            "nested_value",
                            f"column {column!r} is of the nested type {frame.schema[column]} where single"
                            " values are expected (bronze keeps flat values only)",
                        )
                check(matched, frame.columns)
            _judge_rows(frame, [matched[c] for c in matched], row, limits)
            row += frame.height
            yield frame, matched


def _judge_footer(path: Path, limits: ReadLimits) -> None:
    """Refuse a Parquet file whose footer declares more than ``max_file_bytes`` uncompressed, or
    more rows than fit in it at 8 bytes a value, before any page is decompressed (a footer that
    cannot be read is left to the reader, which says why)."""
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError, ValueError):
        return
    declared = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        declared += max(
            group.total_byte_size,
            sum(group.column(c).total_uncompressed_size for c in range(group.num_columns)),
        )
    if declared > limits.max_file_bytes:
        raise limits.too_large(f"the Parquet footer declares {declared} bytes uncompressed,")
    cells = metadata.num_rows * max(metadata.num_columns, 1)
    if cells * 8 > limits.max_file_bytes:
        raise limits.too_large(
            f"the Parquet footer declares {metadata.num_rows} rows of {metadata.num_columns} columns,"
            f" at least {cells * 8} bytes in memory,"
        )


def _judge_rows(frame: pl.DataFrame, columns: list[str], before: int, limits: ReadLimits) -> None:
    """Refuse the file when a row's mapped text values add up to more than ``max_record_bytes``."""
    sizes = [pl.col(c).str.len_bytes() for c in columns if frame.schema[c] == pl.String]
    if not sizes or not frame.height:
        return
    lengths = frame.select(pl.sum_horizontal(sizes).alias("n")).get_column("n")
    if (lengths.max() or 0) > limits.max_record_bytes:  # type: ignore[operator]
        raise limits.record_too_long(f"row {before + int(lengths.arg_max() or 0) + 1}")


def _row_group_runs(path: Path, slice_bytes: int) -> list[tuple[int, int | None]]:
    """``(first row, rows)`` of consecutive row groups of about ``slice_bytes``; the whole file
    (``rows`` None) when it has one row group or its footer cannot be read (the reader then says why)."""
    try:
        metadata = pq.read_metadata(path)
    except (pa.ArrowException, OSError, ValueError):
        return [(0, None)]
    runs: list[tuple[int, int | None]] = []
    first = rows = size = 0
    for index in range(metadata.num_row_groups):
        group = metadata.row_group(index)
        rows += group.num_rows
        size += group.total_byte_size
        if size >= slice_bytes:
            runs.append((first, rows))
            first, rows, size = first + rows, 0, 0
    if rows:
        runs.append((first, rows))
    return runs if len(runs) > 1 else [(0, None)]


def _record_keys(text: bytes, limit: int) -> Iterator[str]:
    """The top-level keys of the first ``limit`` records of JSON Lines ``text`` (a line that is not
    a JSON object is passed over: judging it is the parser's job)."""
    start = 0
    for _ in range(limit):
        end = text.find(b"\n", start)
        line = text[start:] if end < 0 else text[start:end]
        if line.strip():
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                record = None
            if isinstance(record, dict):
                yield from record
        if end < 0:
            return
        start = end + 1


def _has_json_key(text: bytes, name: str) -> bool:
    """Whether ``name`` occurs as an object key in the JSON text (not inside a string value)."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8")
    return re.search(rb'(?<!\\)"' + re.escape(quoted) + rb'"\s*:', text) is not None


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column of any flat type as text: timestamps ISO 8601 UTC, dates ISO."""
    if dtype == pl.String:
        return column
    if isinstance(dtype, pl.Datetime):
        utc = column.dt.replace_time_zone("UTC") if dtype.time_zone is None else column.dt.convert_time_zone("UTC")
        return utc.dt.to_string(TIMESTAMP_FORMAT)
    if dtype == pl.Date:
        return column.dt.to_string(DATE_FORMAT)
    return column.cast(pl.String)
