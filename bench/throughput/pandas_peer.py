"""The pandas peer of the peak-day throughput benchmark: bronze -> silver with plain pandas.

"A plain pandas implementation of the same transforms (the stack most teams start with)": the
platform's landing files read with ``pd.read_csv`` / ``pd.read_json`` / ``pd.read_parquet`` and the
silver rules of ``docs/data-contract.md`` applied with vectorised pandas (``.str`` methods,
``pd.to_datetime(format=...)``, ``tz_localize``, ``Series.map`` with dicts, ``duplicated``), pandas'
default dtypes as pandas 3 gives them (its ``str`` dtype), no row-by-row Python. It shares nothing
with ``resight_platform.transforms`` (the code it is compared with): only the registry and mapping
tables (what the partners send and how to standardise it) and the rule names.

One (business date, provider) partition at a time, like the platform, so memory holds one
partition's feed: for each feed, every file of ``{provider}/{feed}/{date}/`` is read (in landing-key
order), cleaned, and written as Parquet (pyarrow) to
``out_dir/silver/{feed}/date={date}/source={provider}/part-0.parquet`` (valid rows) and
``out_dir/quarantine/{feed}/date={date}/source={provider}/part-0.parquet`` (quarantined rows, raw
values as a JSON string and the first rule broken).

Results match the platform's (files read and rejected with its reason codes, rows in, loaded
and quarantined per feed and rule, net amount in cents, and row by row the silver values) on the
files the sample generator writes and on everything the data contract spells out:

- Files: each is read by its own extension's format; bytes plainly unlike it (magic numbers, JSON's
  first character) reject it as ``format_mismatch``. Gzip and the profile's encoding are decoded
  first (a UTF-8 byte-order mark dropped, undecodable bytes or a blank file reject it as
  ``unparseable``); CSV is read with every value as
  text (an empty field is missing, ``N/A`` and friends stay text), a row with no value is not a
  record; JSON keys and CSV/Parquet columns are matched to the profile as the platform does; a
  file that lacks a required column is rejected as ``missing_columns``; landing-key problems keep
  the landing contract's codes. Rejected files are counted, not copied anywhere.
- Money is exact, without ``Decimal``: the text is checked with a regex, then made the digit string
  of the amount in 1/10,000 of a unit (1/100 of a cent for ``cents``) by string operations (pad
  the fraction with zeros, cut it, drop the point: ``"12.5"`` -> ``"125000"``), cast to ``Int64``,
  and ``usd_cents = (units x rate + half) // scale`` with the fx rate in integer millionths, i.e.
  ROUND_HALF_UP. Dollar columns are ``cents / 100``.
- Timestamps: ISO 8601 is checked against the contract's shape, values with an offset are parsed
  with ``utc=True`` and local ones localised with ``ambiguous=`` True (the earlier, DST instant)
  and ``nonexistent="NaT"``; ``epoch_ms`` goes through ``datetime64[ms]`` (no nanosecond range
  limit).
- Rules: a NUL in any text value is ``unstorable_value`` first (shown as ``\\u0000`` in ``raw``);
  the history start and the ceilings come from the registry. The peer knows no products, so a
  sales line is judged by the ``*`` ceiling; the platform uses the category of a product gold
  already holds, which changes nothing on the generated sample (its lines are below every
  category's ceiling, ``test_generator``).
- Mapping tables: a column's distinct spellings are normalised (``.str`` methods) and looked up
  once, then mapped onto the column with ``Series.map`` (a dict); duplicates with
  ``DataFrame.duplicated(keep="first")`` over the rows passing every other rule.

Where pandas and Polars read input the contract leaves undefined differently, the peer follows the
contract and can differ from the platform: chrono's leniencies (a leap second ``:60`` rolled over,
single-digit ISO fields, a 2-digit ``%Y``), a quoted empty CSV field (text ``""`` in Polars, missing
in pandas; it matters only for a row with no other value), a JSON integer beyond Int64 (pandas
cannot read the file), and a JSON or Parquet value whose text the libraries spell differently: an
integer column with nulls is float in pandas (``"5.0"`` for ``"5"``, the same parsed value),
booleans and nested JSON values are Python text. The platform's Float64 dollars can be one ulp off
``cents / 100`` (Polars: 18.990000000000002); the peer's are ``cents / 100``, the same cents.

Run it::

    .venv/bin/python -m bench.throughput.pandas_peer LANDING_DIR OUT_DIR [--date 2026-10-01 ...]
"""

from __future__ import annotations

import argparse
import codecs
import gzip
import io
import json
import os
import sys
import time
import warnings
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from resight_platform.schemas.silver import QUARANTINE_RULES
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.mappings import Mappings, load_mappings
from resight_platform.sources.registry import (
    CANONICAL_COLUMNS,
    FEEDS,
    Registry,
    Source,
    load_registry,
)

__all__ = [
    "FeedReport",
    "FileRejected",
    "PandasReport",
    "clean_partition",
    "main",
    "read_file",
    "run_pandas",
]

_INT32_MAX = 2**31 - 1
_RATE_SCALE = 1_000_000  # fx rate as integer millionths
_AMOUNT_SCALE = 10_000  # amounts as integer 1/10,000 of a unit
_TO_CENTS = _RATE_SCALE * _AMOUNT_SCALE // 100
_TMP_SUFFIX = ".resight-tmp"  # a landing store's half-written object, never listed
_TZ_DIRECTIVES = ("%z", "%:z", "%::z", "%#z")

# The parsers' patterns say [0-9], not \d: pandas runs a \d pattern through Python's ``re`` (one call
# per value) as soon as a column holds any non-ASCII text (a stray "12,99€" does), where [0-9] stays
# on pyarrow's RE2. No result changes: a non-ASCII digit fails the platform's later number parse too.
_UNSIGNED_NUMBER = r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+"
_POSITIVE_INT = r"\+?0*[0-9]{1,10}(?:\.0*)?"
_EPOCH_MS = r"-?[0-9]{1,15}(?:\.0*)?"
_OFFSET = r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)"
_ISO_OFFSET = _OFFSET + "$"
#: ISO 8601 as the contract has it: date, T or space, HH:MM[:SS[.fraction]], optional Z / +HH[:MM].
_ISO = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?" + _OFFSET + "?"
_ZIP = r"^(\d{1,5})(?:[-\s]?\d{4})?(?:\.0*)?$"  # \d as the platform's: Unicode digits make a (strange) zip

_PARSE_ERRORS = (ValueError, OSError, EOFError, zlib.error)  # what pandas / pyarrow raise on bad input


# ------------------------------------------------------------------------------------- report
@dataclass
class FeedReport:
    """What one feed's files gave: files read / rejected (by reason), rows in, loaded, quarantined."""

    files_read: int = 0
    files_rejected: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    rows_in: int = 0
    rows_loaded: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    net_amount_cents: int | None = None  # sales only: sum of net_amount of the loaded rows, USD cents

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())


@dataclass
class PandasReport:
    """Wall time of a run split into read / clean / write, and per feed what the files gave."""

    partitions: int = 0
    wall_seconds: float = 0.0
    read_seconds: float = 0.0
    clean_seconds: float = 0.0
    write_seconds: float = 0.0
    peak_rss_bytes: int = 0  # the process's resident memory, sampled after each step of each feed
    feeds: dict[str, FeedReport] = field(default_factory=lambda: {feed: FeedReport() for feed in FEEDS})

    def to_dict(self) -> dict[str, object]:
        out = asdict(self)
        for feed, report in self.feeds.items():
            out["feeds"][feed]["rows_quarantined"] = report.rows_quarantined
        return out


class FileRejected(Exception):
    """A landed file the platform would dead-letter; ``code`` is the platform's reason code."""

    def __init__(self, code: str, detail: str):
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


# -------------------------------------------------------------------------------------- run
def run_pandas(
    landing_root: Path,
    *,
    dates: Sequence[date] | None = None,
    out_dir: Path,
    registry: Registry | None = None,
    mappings: Mappings | None = None,
    now: datetime | None = None,
) -> PandasReport:
    """Clean every (date, provider) partition of a local landing directory with pandas.

    ``dates`` limits the business dates (default: every date folder found). Valid and quarantined
    rows go to ``out_dir/silver`` and ``out_dir/quarantine``; returns the timings and counts.
    """
    landing_root = Path(landing_root)
    out_dir = Path(out_dir)
    registry = registry or load_registry()
    mappings = mappings or load_mappings()
    stamp = pd.Timestamp(now or datetime.now(UTC))
    ingested_at = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    report = PandasReport()
    process = psutil.Process()
    started = time.perf_counter()
    days = sorted(set(dates)) if dates is not None else _business_dates(landing_root)
    for day in days:
        for provider in registry.provider_slugs():
            folders = {feed: landing_root / provider / feed / day.isoformat() for feed in FEEDS}
            if not any(folder.is_dir() for folder in folders.values()):
                continue
            report.partitions += 1
            for feed, folder in folders.items():
                feed_report = report.feeds[feed]
                t0 = time.perf_counter()
                bronze = _read_partition(landing_root, folder, registry, provider, feed, feed_report)
                t1 = time.perf_counter()
                report.read_seconds += t1 - t0
                report.peak_rss_bytes = max(report.peak_rss_bytes, process.memory_info().rss)
                if bronze is None:
                    continue
                valid, quarantine = clean_partition(
                    feed, bronze, provider=provider, business_date=day, registry=registry, mappings=mappings
                )
                quarantine["_ingested_at"] = ingested_at
                _count(feed_report, feed, bronze, valid, quarantine)
                del bronze
                t2 = time.perf_counter()
                report.clean_seconds += t2 - t1
                report.peak_rss_bytes = max(report.peak_rss_bytes, process.memory_info().rss)
                partition = f"date={day.isoformat()}/source={provider}/part-0.parquet"
                for layer, frame in (("silver", valid), ("quarantine", quarantine)):
                    if len(frame):
                        path = out_dir / layer / feed / partition
                        path.parent.mkdir(parents=True, exist_ok=True)
                        frame.to_parquet(path, engine="pyarrow", index=False)
                report.write_seconds += time.perf_counter() - t2
                report.peak_rss_bytes = max(report.peak_rss_bytes, process.memory_info().rss)
    report.wall_seconds = time.perf_counter() - started
    return report


def _business_dates(landing_root: Path) -> list[date]:
    """Every ``{provider}/{feed}/{YYYY-MM-DD}`` folder's date under the landing root."""
    found: set[date] = set()
    for folder in landing_root.glob("*/*/*"):
        if not folder.is_dir():
            continue
        try:
            day = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if folder.name == day.isoformat():
            found.add(day)
    return sorted(found)


def _read_partition(
    landing_root: Path, folder: Path, registry: Registry, provider: str, feed: str, report: FeedReport
) -> pd.DataFrame | None:
    """Every readable file of one partition folder as one bronze frame (``None`` if there is none)."""
    if not folder.is_dir():
        return None
    keys = sorted(
        Path(dirpath, name).relative_to(landing_root).as_posix()
        for dirpath, _, names in os.walk(folder)
        for name in names
        if not name.endswith(_TMP_SUFFIX)
    )
    frames = []
    for key in keys:
        try:
            fmt = parse_landing_key(key, registry).format
            source = registry.source(provider, feed)
            if source is None:  # not reached: parse_landing_key refuses it as unknown_source
                raise FileRejected("unknown_source", f"{provider} is not registered for the {feed} feed")
            frames.append(read_file(landing_root / key, source=source, key=key, fmt=fmt))
        except (LandingKeyError, FileRejected) as exc:
            report.files_rejected += 1
            report.rejected[exc.code] = report.rejected.get(exc.code, 0) + 1
        else:
            report.files_read += 1
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]


def _count(report: FeedReport, feed: str, bronze: pd.DataFrame, valid: pd.DataFrame, quarantine: pd.DataFrame) -> None:
    report.rows_in += len(bronze)
    report.rows_loaded += len(valid)
    for rule, n in quarantine["rule"].value_counts().items():
        report.quarantined[str(rule)] = report.quarantined.get(str(rule), 0) + int(n)
    report.quarantined = {r: report.quarantined[r] for r in QUARANTINE_RULES[feed] if r in report.quarantined}
    if feed == "sales":
        report.net_amount_cents = (report.net_amount_cents or 0) + int(valid.attrs["net_cents"])


# ------------------------------------------------------------------------------------ reading
#: gzip, Parquet, zip (twice), xz, zstd, PDF, OLE2: bytes no CSV or JSON text starts with.
_MAGIC: tuple[bytes, ...] = (
    b"\x1f\x8b",
    b"PAR1",
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"\xfd7zXZ\x00",
    b"(\xb5/\xfd",
    b"%PDF-",
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
)


def _unlike(fmt: str, head: bytes, encoding: str) -> bool:
    """Whether a file's first bytes are plainly not ``fmt`` (gzip itself excluded)."""
    if fmt == "parquet":
        return not head.startswith(b"PAR1")
    binary = head.startswith(_MAGIC) or (head.startswith(b"BZh") and head[4:10] in (b"1AY&SY", b"\x17rE8P\x90"))
    if fmt == "csv":
        return binary
    text = head.decode(encoding, errors="replace").lstrip("\ufeff \t\r\n")
    return binary or (text != "" and text[0] not in "[{")


def read_file(path: Path, *, source: Source, key: str, fmt: str | None = None) -> pd.DataFrame:
    """One landed file as bronze rows: the feed's canonical columns as text, ``_source_file`` (the
    landing key) and ``_row_number`` (1-based record number). ``fmt`` is the key's extension
    (default: the source's registered format). Raises ``FileRejected``."""
    fmt = fmt or source.format
    layout = source.layout.columns
    raw = Path(path).read_bytes()
    if fmt.endswith(".gz") and not raw.startswith(b"\x1f\x8b"):
        raise FileRejected("format_mismatch", f"file name says {fmt} but the bytes are not gzip")
    if not fmt.endswith(".gz") and _unlike(fmt, raw[:4096], source.profile.encoding):
        raise FileRejected("format_mismatch", f"file name says {fmt} but the bytes are something else")
    if fmt == "parquet":
        try:
            frame = pd.read_parquet(path, engine="pyarrow")
        except _PARSE_ERRORS as exc:
            raise FileRejected("unparseable", f"Parquet could not be read: {exc}") from exc
        matched = _match_columns(list(frame.columns), layout)
    else:
        data = raw
        if fmt.endswith(".gz"):
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as packed:
                try:
                    head = packed.read(4096)
                except (OSError, EOFError, zlib.error) as exc:
                    raise FileRejected("unparseable", f"not a readable gzip file: {exc}") from exc
            if _unlike(fmt[:-3], head, source.profile.encoding):
                raise FileRejected("format_mismatch", f"file name says {fmt} but the bytes are gzip of something else")
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError, zlib.error) as exc:
                raise FileRejected("unparseable", f"not a readable gzip file: {exc}") from exc
            fmt = fmt[:-3]
        text = _to_utf8(data, source.profile.encoding)
        if fmt == "csv":
            frame = _read_csv(text, source.profile.delimiter)
            matched = _match_columns(list(frame.columns), layout)
        elif fmt in ("json", "jsonl"):
            frame = _read_json(text, lines=fmt == "jsonl")
            present = list(layout) if len(frame) == 0 else [name for name in layout if name in frame.columns]
            matched = {layout[name]: name for name in present}
        else:
            raise FileRejected(
                "unparseable", f"format {fmt!r} is not one of csv, jsonl, json, parquet (or gzip of one)"
            )
    missing = [c for c in source.required_columns if c not in matched]
    if missing:
        raise FileRejected("missing_columns", f"{source.provider}/{source.feed} file lacks {', '.join(missing)}")
    frame = frame.reset_index(drop=True)
    missing_text = pd.Series(np.nan, index=frame.index, dtype="str")
    bronze = pd.DataFrame(
        {
            column: _as_text(frame[matched[column]]) if matched.get(column) in frame.columns else missing_text
            for column in CANONICAL_COLUMNS[source.feed]
        }
    )
    bronze["_source_file"] = pd.Series(key, index=frame.index, dtype="str")
    bronze["_row_number"] = np.arange(1, len(frame) + 1, dtype=np.int64)
    return bronze


def _to_utf8(data: bytes, encoding: str) -> bytes:
    """The bytes as UTF-8 without a byte-order mark; undecodable or blank text rejects the file."""
    try:
        if codecs.lookup(encoding).name == "utf-8":
            data = data.removeprefix(codecs.BOM_UTF8)
            data.decode("utf-8")
        else:
            data = data.decode(encoding).removeprefix("\ufeff").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileRejected("unparseable", f"the file is not valid {encoding}: {exc}") from exc
    return data


def _read_csv(text: bytes, delimiter: str) -> pd.DataFrame:
    if not text.strip():
        raise FileRejected("unparseable", "the file is empty: no header row")
    try:
        with warnings.catch_warnings():
            # A row longer than the header: pandas warns and drops the extra fields; it is a bad file.
            warnings.simplefilter("error", pd.errors.ParserWarning)
            frame = pd.read_csv(
                io.BytesIO(text),
                sep=delimiter,
                quotechar='"',
                dtype=str,
                keep_default_na=False,  # "N/A", "NULL", "nan" are values (to be judged), not missing
                na_values=[""],
                index_col=False,
                encoding="utf-8",
            )
    except (*_PARSE_ERRORS, pd.errors.ParserWarning) as exc:
        raise FileRejected("unparseable", f"CSV could not be parsed: {exc}") from exc
    if frame.shape[0] and frame.shape[1]:
        frame = frame.dropna(how="all")  # a line with no value (e.g. ";;;") is not a record
    return frame


def _read_json(text: bytes, *, lines: bool) -> pd.DataFrame:
    """JSON Lines or a JSON array of records; ``dtype=False``: values as parsed, nothing inferred."""
    try:
        return pd.read_json(io.BytesIO(text), lines=lines, orient="records", dtype=False, encoding="utf-8")
    except _PARSE_ERRORS as exc:
        raise FileRejected("unparseable", f"JSON could not be parsed: {exc}") from exc


def _match_columns(columns: list[str], layout: Mapping[str, str]) -> dict[str, str]:
    """Canonical name -> the file's column for it: exact, then trimmed, then case-insensitive."""
    matched: dict[str, str] = {}
    for normalise in (lambda s: s, str.strip, lambda s: s.strip().casefold()):
        by_name: dict[str, str] = {}
        for column in columns:
            by_name.setdefault(normalise(str(column)), column)
        for source_name, canonical in layout.items():
            found = by_name.get(normalise(source_name))
            if canonical not in matched and found is not None and found not in matched.values():
                matched[canonical] = found
    return matched


def _as_text(column: pd.Series) -> pd.Series:
    """A column of any type as text: timestamps ISO 8601 UTC (``Z``), dates ISO, booleans lower case."""
    dtype = column.dtype
    if isinstance(dtype, pd.StringDtype):
        return column
    if pd.api.types.is_datetime64_any_dtype(dtype):
        utc = column.dt.tz_convert("UTC") if column.dt.tz is not None else column.dt.tz_localize("UTC")
        text = utc.dt.strftime("%Y-%m-%dT%H:%M:%S")
        nanos = (utc.dt.microsecond * 1000 + utc.dt.nanosecond).fillna(0).astype("int64").to_numpy()
        if nanos.any():  # a fraction only where there is one, of 3, 6 or 9 digits (as chrono's %.f)
            digits = pd.Series(nanos, index=column.index).astype("str").str.zfill(9)
            fraction = np.select(
                [nanos % 1000 != 0, nanos % 1_000_000 != 0, nanos != 0],
                ["." + digits, "." + digits.str.slice(0, 6), "." + digits.str.slice(0, 3)],
                "",
            )
            text = text + fraction
        return (text + "Z").astype("str")
    if pd.api.types.is_bool_dtype(dtype):
        return column.map({True: "true", False: "false"}).astype("str")
    return column.astype("str")


# ----------------------------------------------------------------------------------- cleaning
@dataclass
class _Cleaned:
    """A feed's rules (per row, in the contract's order), duplicate key and silver columns."""

    rules: dict[str, pd.Series]
    key: dict[str, pd.Series]
    valid: dict[str, object]  # silver column -> values per row, or one value for every row
    dtypes: dict[str, str]  # silver columns cast once the loaded rows are picked (no nulls left)
    net_cents: pd.Series | None = None


def clean_partition(
    feed: str,
    bronze: pd.DataFrame,
    *,
    provider: str,
    business_date: date,
    registry: Registry,
    mappings: Mappings,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The silver rows and the quarantined rows of one (date, provider) partition of ``feed``.

    ``bronze`` is ``read_file`` output, the partition's files concatenated. Each quarantined row
    has the first rule it breaks (``QUARANTINE_RULES`` order) and its raw values as JSON. For
    sales, ``valid.attrs["net_cents"]`` is the loaded rows' net amount in integer USD cents.
    """
    source = registry.source(provider, feed)
    if source is None:
        raise ValueError(f"{provider}/{feed} is not a registered source")
    files, rows = bronze["_source_file"], bronze["_row_number"]
    if not (files.is_monotonic_increasing and not ((files == files.shift()) & (rows <= rows.shift())).any()):
        bronze = bronze.sort_values(["_source_file", "_row_number"], kind="stable")
    bronze = bronze.reset_index(drop=True)
    cleaned = _CLEANERS[feed](bronze, source, mappings, business_date)
    order = QUARANTINE_RULES[feed]
    if (*cleaned.rules, "duplicate") != order:
        raise AssertionError(f"{feed} rules {list(cleaned.rules)} do not follow the contract's order {list(order)}")

    # The first rule broken: assign in reverse, so an earlier rule overwrites a later one.
    rule = np.full(len(bronze), None, dtype=object)
    for name, broken in reversed(cleaned.rules.items()):
        rule[broken.to_numpy(dtype=bool)] = name
    # duplicate: among rows passing every other rule, the same key as an earlier row (files in
    # landing-key order, then record order); the first is kept. One partition = one provider and date.
    passing = pd.isna(rule)
    keys = pd.DataFrame(cleaned.key)[passing]
    rule[keys.index[keys.duplicated(keep="first")]] = "duplicate"
    loaded = pd.isna(rule)

    # What the registry gave: the packaged registry gives only a profile's channel (a default).
    given = pd.Series(None, index=bronze.index, dtype=object)
    if feed == "sales" and source.profile.channel is not None:
        given = given.mask(_text(bronze["channel"]).isna(), "channel")
    valid = pd.DataFrame(
        {name: (values[loaded] if isinstance(values, pd.Series) else values) for name, values in cleaned.valid.items()}
        | {"_source_file": bronze["_source_file"][loaded], "_row_number": bronze["_row_number"][loaded]}
        | {"_from_registry": given[loaded]}
    ).reset_index(drop=True)
    valid = valid.astype(cleaned.dtypes)
    if cleaned.net_cents is not None:
        valid.attrs["net_cents"] = int(cleaned.net_cents[loaded].sum())

    dropped = ~loaded
    raw = bronze.loc[dropped, list(CANONICAL_COLUMNS[feed])]
    quarantine = pd.DataFrame(
        {
            "feed": pd.Series(feed, index=raw.index, dtype="str"),
            "provider": pd.Series(provider, index=raw.index, dtype="str"),
            "business_date": business_date,
            "_source_file": bronze["_source_file"][dropped],
            "_row_number": bronze["_row_number"][dropped],
            "rule": pd.Series(rule[dropped], index=raw.index, dtype="str"),
            "raw": pd.Series(_json_lines(raw), index=raw.index, dtype="str"),
        }
    ).reset_index(drop=True)
    return valid, quarantine


def _json_lines(frame: pd.DataFrame) -> list[str]:
    """Each row as a JSON object (``null`` for a missing value); a NUL is written as the six
    characters ``\\u0000``, as the platform writes it."""
    if not len(frame):
        return []
    shown = frame.apply(lambda column: column.str.replace("\x00", "\\u0000", regex=False))
    return shown.to_json(orient="records", lines=True, force_ascii=False).rstrip("\n").split("\n")


def _unstorable(b: pd.DataFrame, feed: str) -> pd.Series:
    """A NUL character in any of the row's text values (Postgres cannot store one)."""
    found = pd.Series(False, index=b.index)
    for column in CANONICAL_COLUMNS[feed]:
        found |= b[column].str.contains("\x00", regex=False).fillna(False).astype(bool)
    return found


def _clean_sales(b: pd.DataFrame, source: Source, mappings: Mappings, day: date) -> _Cleaned:
    profile = source.profile
    rate = _rate(source, mappings)
    order_id, sku = _text(b["order_id"]), _text(b["sku"])
    line_no, quantity = _positive_int(b["line_no"]), _positive_int(b["quantity"])
    ordered_at = _timestamp(b["ordered_at"], profile.datetime_format, source.timezone)
    unit_cents = _usd_cents(b["unit_price"], profile.money_format, rate)
    discount_given = _text(b["discount"]).notna()
    discount_cents = _usd_cents(b["discount"], profile.money_format, rate)
    status = _lookup(b["status"], mappings.status)
    channel_text = _text(b["channel"])
    if profile.channel is not None:  # the profile's constant channel where the row has none
        channel_text = channel_text.fillna(profile.channel)
    channel = _lookup(channel_text, mappings.channels)
    latest = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=2)  # one day after the business day ends
    history = pd.Timestamp(source.history_start, tz="UTC")
    ceiling = mappings.ceiling(None)  # the peer knows no products: every line has the '*' ceiling
    rules = {
        "unstorable_value": _unstorable(b, "sales"),
        "missing_order_id": order_id.isna(),
        "missing_sku": sku.isna(),
        "bad_line_no": line_no.isna(),
        "unparseable_date": ordered_at.isna(),
        "future_date": ordered_at > latest,
        "bad_quantity": quantity.isna(),
        "unparseable_price": unit_cents.isna() | (discount_given & discount_cents.isna()),
        "unknown_status": status.isna(),
        "unknown_channel": channel.isna(),
        "before_history_start": pd.Series(day < source.history_start, index=b.index) | (ordered_at < history),
        "quantity_over_ceiling": (quantity > ceiling.max_quantity).fillna(False).astype(bool),
        "price_over_ceiling": (unit_cents > ceiling.max_unit_cents).fillna(False).astype(bool),
    }
    discount_cents = discount_cents.fillna(0)
    net_cents = _net_cents(quantity, unit_cents, discount_cents)
    valid = {
        "order_id": order_id,
        "line_no": line_no,
        "ordered_at": ordered_at,
        "business_date": day,
        "provider": source.provider,
        "store_id": _text(b["store_id"]).where(channel == "store"),
        "channel": channel,
        "sku": sku,
        "quantity": quantity,
        "unit_price": unit_cents / 100,
        "discount": discount_cents / 100,
        "net_amount": net_cents / 100,
        "customer_id": _text(b["customer_id"]),
        "status": status,
        "ship_state": _state(b["ship_state"], mappings).where(channel == "online"),
    }
    dtypes = {"line_no": "int32", "quantity": "int32", "unit_price": "float64", "discount": "float64"}
    dtypes |= {"net_amount": "float64", "channel": "str", "status": "str"}
    key = {"order_id": order_id, "line_no": line_no}
    return _Cleaned(rules, key, valid, dtypes, net_cents)


def _clean_catalog(b: pd.DataFrame, source: Source, mappings: Mappings, day: date) -> _Cleaned:
    price_cents = _usd_cents(b["list_price"], source.profile.money_format, _rate(source, mappings))
    sku, name = _text(b["sku"]), _text(b["product_name"])
    species = _lookup(b["species"], mappings.species)
    pack_size = _positive_number(b["pack_size"])
    unit = _lookup(b["pack_unit"], mappings.units)
    brand_alias = _alias(b["brand"])
    brands = {alias: brand for alias, (brand, _) in mappings.brands.items()}
    makers = {alias: maker for alias, (_, maker) in mappings.brands.items()}
    category = _lookup(b["category"], mappings.categories).fillna("other")
    price_ceiling = category.map(lambda c: mappings.ceiling(c).max_unit_cents).astype("int64")
    rules = {
        "unstorable_value": _unstorable(b, "catalog"),
        "missing_sku": sku.isna(),
        "missing_product_name": name.isna(),
        "unparseable_price": price_cents.isna(),
        "unknown_species": species.isna(),
        "bad_pack_size": _text(b["pack_size"]).notna() & pack_size.isna(),
        "unknown_unit": _text(b["pack_unit"]).notna() & unit.isna(),
        "price_over_ceiling": (price_cents > price_ceiling).fillna(False).astype(bool),
    }
    valid = {
        "sku": sku,
        "upc": _text(b["upc"]),
        "product_name": name,
        # a brand not in the table keeps its delivered spelling, white space collapsed
        "brand": brand_alias.map(brands).fillna(_text(b["brand"]).str.replace(r"\s+", " ", regex=True)),
        "manufacturer": brand_alias.map(makers),
        "category": category,
        "species": species,
        "pack_size": pack_size,
        "pack_unit": unit,
        "list_price": price_cents / 100,
        "provider": source.provider,
        "business_date": day,
    }
    dtypes = {"brand": "str", "manufacturer": "str", "category": "str", "species": "str", "pack_unit": "str"}
    return _Cleaned(rules, {"sku": sku}, valid, dtypes | {"list_price": "float64"})


def _clean_stores(b: pd.DataFrame, source: Source, mappings: Mappings, day: date) -> _Cleaned:
    store_id, state = _text(b["store_id"]), _state(b["state"], mappings)
    rules = {
        "unstorable_value": _unstorable(b, "stores"),
        "missing_store_id": store_id.isna(),
        "invalid_state": state.isna(),
    }
    valid = {
        "store_id": store_id,
        "provider": source.provider,
        "store_name": _text(b["store_name"]),
        "city": _text(b["city"]),
        "state": state,
        "zip": _zip(b["zip"]),
        "region": state.map(mappings.regions),
        "business_date": day,
    }
    return _Cleaned(rules, {"store_id": store_id}, valid, {"region": "str"})


def _clean_customers(b: pd.DataFrame, source: Source, mappings: Mappings, day: date) -> _Cleaned:
    signup = pd.to_datetime(b["signup_date"].str.strip(), format=source.profile.date_format, errors="coerce")
    customer_id = _text(b["customer_id"])
    state, species = _state(b["state"], mappings), _lookup(b["pet_species"], mappings.species)
    rules = {
        "unstorable_value": _unstorable(b, "customers"),
        "missing_customer_id": customer_id.isna(),
        "unparseable_date": _text(b["signup_date"]).notna() & signup.isna(),
        "invalid_state": _text(b["state"]).notna() & state.isna(),
        "unknown_species": _text(b["pet_species"]).notna() & species.isna(),
    }
    valid = {
        "customer_id": customer_id,
        "provider": source.provider,
        "signup_date": signup.dt.date,
        "state": state,
        "pet_species": species,
        "business_date": day,
    }
    return _Cleaned(rules, {"customer_id": customer_id}, valid, {"pet_species": "str"})


_CLEANERS = {"sales": _clean_sales, "catalog": _clean_catalog, "stores": _clean_stores, "customers": _clean_customers}


# ------------------------------------------------------------------------------ value parsers
def _text(values: pd.Series) -> pd.Series:
    """Trimmed text; empty or blank is missing."""
    trimmed = values.str.strip()
    return trimmed.mask(trimmed == "")


def _alias(values: pd.Series) -> pd.Series:
    """The form mapping aliases are matched in: trimmed, lower case, runs of white space as one."""
    return values.str.strip().str.lower().str.replace(r"\s+", " ", regex=True)


def _lookup(values: pd.Series, table: Mapping[str, str]) -> pd.Series:
    """The canonical value of each alias in a mapping table; missing if not there.

    A column holds a handful of distinct spellings: they are normalised once each, then mapped.
    """
    spellings = pd.Series(values.dropna().unique(), dtype="str")
    canonical = dict(zip(spellings, _alias(spellings).map(table), strict=True))
    return values.map(canonical)


def _state(values: pd.Series, mappings: Mappings) -> pd.Series:
    """A US state (or DC) as its upper-case 2-letter code; missing if not one in ``regions.csv``."""
    code = values.str.strip().str.upper()
    return code.where(code.isin(list(mappings.regions)))


def _zip(values: pd.Series) -> pd.Series:
    """A 5-digit zip: ZIP+4 cut to 5 digits, lost leading zeros restored; otherwise missing."""
    return values.str.strip().str.extract(_ZIP, expand=False).str.zfill(5)


def _positive_int(values: pd.Series) -> pd.Series:
    """A positive integer within Int32 (leading zeros, ``+`` or a zero fraction allowed), as Int64."""
    text = values.str.strip()
    # The regex admits at most 10 significant digits, so the float parse is exact.
    number = text.where(text.str.fullmatch(_POSITIVE_INT)).astype("Float64")
    return number.where((number > 0) & (number <= _INT32_MAX)).astype("Int64")


def _positive_number(values: pd.Series) -> pd.Series:
    """A positive decimal number as float64; missing if the text is anything else."""
    text = values.str.strip()
    number = text.where(text.str.fullmatch(_UNSIGNED_NUMBER)).astype("Float64")
    return number.where(number > 0).astype("float64")


def _rate(source: Source, mappings: Mappings) -> int:
    """The source currency's USD rate in integer millionths."""
    rate = mappings.usd_per_unit.get(source.currency)
    if rate is None:
        raise ValueError(f"no USD rate for {source.currency} (provider {source.provider}) in fx_rates.csv")
    return int((rate * _RATE_SCALE).to_integral_value(rounding=ROUND_HALF_UP))


def _usd_cents(values: pd.Series, money_format: str, rate: int) -> pd.Series:
    """Money text in ``money_format`` as Int64 USD cents, rounded half up, exactly.

    The text becomes the digit string of the amount in 1/10,000 of a unit (``cents``: 1/100 of a
    cent) by string operations: the fraction is padded and cut (not rounded) to 4 (2) digits and
    the point dropped, so ``"12.5"`` is ``"125000"``. That integer is exact, and the only rounding
    is the half-up one to cents, in integer arithmetic. A sign, anything but digits and one point,
    or an amount of 100 million units or more makes the value missing (unparseable).
    """
    text = values.str.strip()
    if money_format == "currency":  # "$1,299.00", "$ 12.99": drop $, thousands commas, white space
        text = text.str.replace("$", "", regex=False).str.replace(",", "", regex=False)
        spaced = text.notna() & ~text.str.fullmatch(_UNSIGNED_NUMBER)
        text = text.mask(spaced, text[spaced].str.replace(r"\s", "", regex=True))
    places = 2 if money_format == "cents" else 4
    text = text.where(text.str.fullmatch(_UNSIGNED_NUMBER))
    with_point = text.mask(~text.str.contains(".", regex=False), text + ".")
    digits = (with_point + "0" * places).str.replace(rf"^([0-9]*)\.([0-9]{{{places}}})[0-9]*$", r"\1\2", regex=True)
    digits = digits.str.lstrip("0")
    digits = digits.where(digits.str.len() <= 12).mask(digits == "", "0")  # 10^12 units = 100 million
    units = digits.astype("Int64")
    return (units * rate + _TO_CENTS // 2) // _TO_CENTS


def _net_cents(quantity: pd.Series, unit_cents: pd.Series, discount_cents: pd.Series) -> pd.Series:
    """``quantity x unit_price - discount`` in cents, exact (Python integers past Int64's range)."""
    big = quantity.max(skipna=True), unit_cents.max(skipna=True)
    if all(pd.notna(v) for v in big) and int(big[0]) * int(big[1]) >= 2**62:
        q, u, d = (s.astype(object) for s in (quantity, unit_cents, discount_cents))
        return q * u - d
    return quantity * unit_cents - discount_cents


def _timestamp(values: pd.Series, fmt: str, timezone: str) -> pd.Series:
    """Text in ``fmt`` (``iso``, ``epoch_ms`` or a strptime pattern) as ``datetime64[us, UTC]``."""
    if fmt == "iso":
        text = values.str.strip()
        text = text.where(text.str.fullmatch(_ISO))
        with_offset = text.str.contains(_ISO_OFFSET, regex=True)  # missing -> False
        if text[with_offset].str.endswith("z").any():
            text = text.mask(with_offset, text.str.upper())  # "z" as "Z"
        aware = pd.to_datetime(text.where(with_offset), format="ISO8601", utc=True, errors="coerce")
        naive = pd.to_datetime(text.mask(with_offset), format="ISO8601", errors="coerce")
        result = aware.dt.as_unit("us").fillna(_local_to_utc(naive, timezone).dt.as_unit("us"))
    elif fmt == "epoch_ms":
        text = values.where(values.str.fullmatch(_EPOCH_MS))
        millis = text.astype("Float64").astype("Int64")  # at most 15 digits: the float parse is exact
        ints = millis.to_numpy(dtype=np.int64, na_value=np.iinfo(np.int64).min)  # the minimum is NaT
        result = pd.Series(ints.view("datetime64[ms]"), index=values.index).dt.tz_localize("UTC")
    elif any(directive in fmt for directive in _TZ_DIRECTIVES):
        result = pd.to_datetime(values.str.lstrip(), format=fmt, utc=True, errors="coerce")
    else:
        result = _local_to_utc(pd.to_datetime(values.str.lstrip(), format=fmt, errors="coerce"), timezone)
    return result.dt.as_unit("us")


def _local_to_utc(naive: pd.Series, timezone: str) -> pd.Series:
    """Wall-clock time in ``timezone`` as UTC: the earlier instant when ambiguous (the DST one),
    missing when skipped by a spring-forward."""
    if naive.dt.tz is not None:
        return naive.dt.tz_convert("UTC")
    earlier = np.ones(len(naive), dtype=bool)
    return naive.dt.tz_localize(timezone, ambiguous=earlier, nonexistent="NaT").dt.tz_convert("UTC")


# ---------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> PandasReport:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput.pandas_peer", description=__doc__.split("\n")[0])
    parser.add_argument("landing_dir", type=Path, help="local landing root ({provider}/{feed}/{date}/{file})")
    parser.add_argument("out_dir", type=Path, help="where silver/ and quarantine/ Parquet files are written")
    parser.add_argument("--date", dest="dates", action="append", type=date.fromisoformat, help="YYYY-MM-DD (repeat)")
    args = parser.parse_args(argv)
    report = run_pandas(args.landing_dir, dates=args.dates, out_dir=args.out_dir)
    json.dump(report.to_dict(), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return report


if __name__ == "__main__":
    main()
