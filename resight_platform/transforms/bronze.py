"""Bronze: one landed file's bytes -> rows as delivered, in the feed's canonical column names.

Every mapped canonical column is ``Utf8`` holding the value exactly as the file wrote it (CSV
values are never type-inferred, so ``"007"`` stays ``"007"``; Parquet and JSON typed values are
cast to text, native timestamps written ISO 8601 in UTC). Columns the source does not send are
present and null, unmapped extras are dropped, and lineage columns say where each row came from.

A file that cannot be read at all, or that lacks a required column after renaming, raises
``FileRejected`` (``unparseable`` / ``missing_columns``); the caller dead-letters it.

Details the data contract leaves open:

- Record numbers (``_row_number``) count records, 1-based, excluding a CSV header: a CSV line
  that is entirely empty (no field holds a value, e.g. a trailing blank line) is not a record, and
  a quoted value spanning lines is one record. JSON Lines blank lines are not records either.
- An empty CSV field is null. CSV text is decoded with the profile's encoding (a UTF-8 byte-order
  mark is dropped); bytes invalid in that encoding make the file unparseable.
- CSV and Parquet columns are matched to the profile's source names exactly, else ignoring
  surrounding white space, else ignoring case. JSON keys are matched exactly; a key counts as
  present when it occurs as an object key anywhere in the file.
- A CSV with a header and no rows, a JSON array ``[]`` and a JSON Lines file with no records are
  valid empty files (empty bronze). A 0-byte CSV has no header and is unparseable.
"""

from __future__ import annotations

import codecs
import gzip
import io
import re
import zlib
from collections.abc import Mapping
from datetime import UTC, date, datetime

import numpy as np
import polars as pl

from resight_platform.sources.registry import CANONICAL_COLUMNS, FEEDS, REQUIRED_COLUMNS, Source

__all__ = [
    "LINEAGE_COLUMNS",
    "TIMESTAMP_FORMAT",
    "FileRejected",
    "bronze_schema",
    "empty_bronze",
    "read_landing_file",
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
    """A landed file that cannot go to bronze; ``code`` is ``unparseable`` or ``missing_columns``."""

    def __init__(self, code: str, detail: str):
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


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
) -> pl.DataFrame:
    """Parse one landed file of ``source`` into bronze rows (see the module docstring).

    ``key`` is the landing key (kept as ``_source_file``); a naive ``ingested_at`` is taken as UTC.
    Raises ``FileRejected`` when the file cannot be read or misses a required column.
    """
    feed = source.feed
    layout = source.layout.columns
    fmt = source.format
    if fmt == "csv.gz":
        data = _gunzip(data)
    if fmt in ("csv", "csv.gz"):
        frame = _read_csv(data, delimiter=source.profile.delimiter, encoding=source.profile.encoding)
        matched = _match_columns(frame.columns, layout)
    elif fmt in ("jsonl", "json"):
        frame, matched = _read_json(data, layout=layout, lines=fmt == "jsonl", encoding=source.profile.encoding)
    elif fmt == "parquet":
        frame = _read_parquet(data)
        matched = _match_columns(frame.columns, layout)
    else:
        raise FileRejected("unparseable", f"format {fmt!r} is not one of csv, csv.gz, jsonl, json, parquet")

    missing = [c for c in REQUIRED_COLUMNS[feed] if c not in matched]
    if missing:
        wanted = ", ".join(f"{c} (column {source.layout.canonical_to_source[c]!r})" for c in missing)
        had = ", ".join(repr(c) for c in frame.columns) or "none"
        raise FileRejected(
            "missing_columns",
            f"{source.provider}/{feed} file lacks required column(s) {wanted}; the file has columns: {had}",
        )

    try:
        canonical = [
            (_as_text(pl.col(matched[c]), frame.schema[matched[c]]) if c in matched else pl.lit(None, pl.String)).alias(
                c
            )
            for c in CANONICAL_COLUMNS[feed]
        ]
        instant = ingested_at.replace(tzinfo=UTC) if ingested_at.tzinfo is None else ingested_at.astimezone(UTC)
        return frame.select(
            *canonical,
            pl.lit(source.provider, pl.String).alias("_provider"),
            pl.lit(feed, pl.String).alias("_feed"),
            pl.lit(business_date, pl.Date).alias("_business_date"),
            pl.lit(key, pl.String).alias("_source_file"),
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("_row_number"),
            pl.lit(instant, pl.Datetime("us", "UTC")).alias("_ingested_at"),
        )
    except _PARSE_ERRORS as exc:
        raise FileRejected("unparseable", f"a column could not be read as text: {_trim(exc)}") from exc


def _trim(exc: BaseException) -> str:
    """The first line of a parser's message, cut to a readable length."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"


def _gunzip(data: bytes) -> bytes:
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise FileRejected("unparseable", f"not a readable gzip file: {_trim(exc)}") from exc


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


def _read_csv(data: bytes, *, delimiter: str, encoding: str) -> pl.DataFrame:
    text = _to_utf8(data, encoding)
    if not text.strip():
        raise FileRejected("unparseable", "the file is empty: no header row")
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


def _read_json(
    data: bytes, *, layout: Mapping[str, str], lines: bool, encoding: str
) -> tuple[pl.DataFrame, dict[str, str]]:
    """JSON Lines or a JSON array of records, reading only the mapped keys, every value as text.

    No type inference: each mapped key is read as a string (numbers as written, objects as JSON
    text), so one odd record never fails the file. A key counts as present when it occurs as an
    object key anywhere in the file; an absent required key rejects the file as missing columns.
    """
    text = _to_utf8(data, encoding)
    schema = {name: pl.String() for name in layout}
    as_lines = text if lines else json_array_as_lines(text)
    try:
        if as_lines is not None:
            frame = pl.read_ndjson(io.BytesIO(as_lines), schema=schema)
        else:
            frame = pl.read_json(io.BytesIO(text), schema=schema)
    except _PARSE_ERRORS as exc:
        kind = "JSON Lines" if lines else "JSON"
        raise FileRejected("unparseable", f"{kind} could not be parsed: {_trim(exc)}") from exc
    # With no records there is nothing to judge a key by: an empty export is a valid empty file.
    present = list(layout) if frame.height == 0 else [name for name in layout if _has_json_key(text, name)]
    matched = {layout[name]: name for name in present}
    return frame.select(present), matched


_SCAN_BYTES = 1 << 20  # fits in cache: twice as fast as 16 MiB slices
_WHITESPACE = np.frombuffer(b" \t\r\n", dtype=np.uint8)


def _first_solid(data: np.ndarray) -> int | None:
    """Index of the first byte of ``data`` that is not JSON whitespace, looking 64 KiB at a time."""
    for start in range(0, len(data), 1 << 16):
        solid = np.flatnonzero(~np.isin(data[start : start + (1 << 16)], _WHITESPACE))
        if solid.size:
            return start + int(solid[0])
    return None


def json_array_as_lines(text: bytes, *, scan_bytes: int = _SCAN_BYTES) -> bytearray | None:
    """A JSON array of objects rewritten as JSON Lines (a copy of the same size), or ``None`` if
    ``text`` is not one (the caller then parses it as JSON and reports what is wrong).

    Polars parses a JSON array into a tree of values first (5 GB for a 500 MB file); JSON Lines it
    reads record by record. The rewrite scans the bytes ``scan_bytes`` at a time with numpy: a quote
    counts unless an odd run of backslashes precedes it, bytes between counted quotes are inside a
    string, and outside strings the top-level ``[``/``]`` become spaces, the commas between the
    array's elements newlines and any line break a space. Strings are never touched.
    """
    data = np.frombuffer(text, dtype=np.uint8)
    first, last = _first_solid(data), _first_solid(data[::-1])
    if first is None or last is None:
        return None
    last = len(data) - 1 - last
    if last <= first or data[first] != ord("[") or data[last] != ord("]"):
        return None
    out = bytearray(text)
    view = np.frombuffer(out, dtype=np.uint8)
    in_string, depth, backslashes, objects, previous = 0, 0, 0, 0, ord(",")
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
        opens = outside & ((chunk == ord("{")) | (chunk == ord("[")))
        closes = outside & ((chunk == ord("}")) | (chunk == ord("]")))
        step = opens.view(np.int8) - closes.view(np.int8)
        depth_after = np.cumsum(step, dtype=np.int32) + depth
        depth_before = depth_after - step
        blank = (chunk == ord(" ")) | (chunk == ord("\n")) | (chunk == ord("\r")) | (chunk == ord("\t"))
        top = outside & (depth_before == 1)
        beyond = outside & (depth_before <= 0) & ~blank  # outside the array
        if start <= last < start + chunk.size:
            top[last - start] = False
        if start <= first < start + chunk.size:
            beyond[first - start] = False
        # Inside the array and outside its elements only whitespace, commas and an object's "{".
        if (top & ~(blank | (chunk == ord(",")) | (chunk == ord("{")))).any() or beyond.any():
            return None
        # Elements and commas alternate: no empty element, no leading or trailing comma.
        tokens = chunk[top & ((chunk == ord(",")) | (chunk == ord("{")))]
        if tokens.size:
            if tokens[0] == previous or (tokens[1:] == tokens[:-1]).any():
                return None
            previous = int(tokens[-1])
        objects += int(np.count_nonzero(tokens == ord("{")))
        window = view[start : start + chunk.size]
        window[top & (chunk == ord(","))] = ord("\n")
        window[outside & ((chunk == ord("\n")) | (chunk == ord("\r")))] = ord(" ")
        in_string = int(parity[-1])
        depth = int(depth_after[-1])
    if in_string or depth != 0 or objects == 0 or previous != ord("{"):
        return None
    view[first] = view[last] = ord(" ")
    return out


def _has_json_key(text: bytes, name: str) -> bool:
    """Whether ``name`` occurs as an object key in the JSON text (not inside a string value)."""
    quoted = name.replace("\\", "\\\\").replace('"', '\\"').encode("utf-8")
    return re.search(rb'(?<!\\)"' + re.escape(quoted) + rb'"\s*:', text) is not None


def _read_parquet(data: bytes) -> pl.DataFrame:
    try:
        return pl.read_parquet(io.BytesIO(data))
    except _PARSE_ERRORS as exc:
        raise FileRejected("unparseable", f"Parquet could not be read: {_trim(exc)}") from exc


def _as_text(column: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A column of any type as text: timestamps ISO 8601 UTC, dates ISO, nested values as JSON."""
    if dtype == pl.String:
        return column
    if isinstance(dtype, pl.Datetime):
        utc = column.dt.replace_time_zone("UTC") if dtype.time_zone is None else column.dt.convert_time_zone("UTC")
        return utc.dt.to_string(TIMESTAMP_FORMAT)
    if dtype == pl.Date:
        return column.dt.to_string(DATE_FORMAT)
    if dtype.is_nested():
        encoded = pl.struct(column.alias("v")).struct.json_encode()
        return pl.when(column.is_null()).then(None).otherwise(encoded.str.slice(5).str.strip_suffix("}"))
    return column.cast(pl.String)
