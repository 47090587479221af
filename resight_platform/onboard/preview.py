"""``resight onboard preview``: bronze -> silver over a partner's files with a draft registry, dry.

What a real run would load, quarantine and dead-letter, file by file, before anything is written:
the files are read by bronze's own reader (``ingest.ingest_partition``, with no dead-letter store:
the reason is kept, nothing copied) and cleaned by silver's own ``clean_feed``, so a preview cannot
drift from a run. Nothing is written to the lake, the landing zone, the ledger or the warehouse.

A file's provider, feed and business date come from its path's last four parts when they are a
landing key (``provider/feed/YYYY-MM-DD/name``), else from ``--provider``, ``--feed`` and ``--date``.
Silver judges a sales line by its product's category's ceilings (``mappings/ceilings.csv``); the
categories are ``gold.dim_product``'s when the warehouse is reachable without starting anything
(``RESIGHT_PG_URL``, or an embedded server already running), as a run would read them; otherwise
every line has the ``*`` ceilings and the report says so.
"""

from __future__ import annotations

import argparse
import builtins
import contextlib
import csv
import io
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl

from resight_platform.ingest import Ingestion, Restart, ingest_partition
from resight_platform.io.landing import list_partition_files
from resight_platform.io.ops import FileRecord
from resight_platform.io.storage import LocalStore, ObjectInfo, UnsafeKey, validate_key, validate_prefix
from resight_platform.schemas.silver import QUARANTINE_RULES, VOCABULARY_RULES
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.registry import FEEDS, MAPPED_COLUMNS, PROVIDER_PATTERN, Registry, RegistryError
from resight_platform.transforms.bronze import DEFAULT_LIMITS, ColumnDrift, ReadLimits
from resight_platform.transforms.silver import clean_feed, empty_quarantine

__all__ = [
    "EXAMPLES_PER_RULE",
    "FilePreview",
    "Preview",
    "PreviewUsageError",
    "file_keys",
    "preview_files",
    "run_preview",
]

#: Quarantined rows shown per rule and file (raw values, as delivered).
EXAMPLES_PER_RULE = 3
#: Distinct unknown values listed per column and file (the most frequent first).
UNKNOWN_VALUES_SHOWN = 20
#: How a missing value is shown among unknown values.
MISSING = "(missing)"


class PreviewUsageError(ValueError):
    """The command line cannot be previewed as given (exit 2): a path that is not there, a loose
    file without ``--provider``/``--feed``, two files that would land at the same key."""


@dataclass(frozen=True)
class FilePreview:
    """What a real run would do with one file."""

    key: str
    path: str
    provider: str | None
    feed: str | None
    business_date: date | None
    rows_in: int = 0
    rows_loaded: int = 0
    #: rule -> rows quarantined by it, in the contract's order.
    quarantined: Mapping[str, int] = field(default_factory=dict)
    #: rule -> up to :data:`EXAMPLES_PER_RULE` rows: ``{"row": number, "raw": {column: value}}``.
    examples: Mapping[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: column -> {"map": value map, "rule": rule, "values": {value as delivered: rows}}.
    unknown: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    #: ``(reason code, detail)`` when the file would be dead-lettered.
    dead_letter: tuple[str, str] | None = None
    #: How the file's columns differ from the registered ones (the ledger's ``schema_drift``).
    schema_drift: Mapping[str, object] | None = None

    @property
    def rows_quarantined(self) -> int:
        return sum(self.quarantined.values())

    @property
    def loses(self) -> bool:
        """Whether a run would lose any of it: dead-lettered, or a row quarantined."""
        return self.dead_letter is not None or self.rows_quarantined > 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "path": self.path,
            "provider": self.provider,
            "feed": self.feed,
            "business_date": self.business_date.isoformat() if self.business_date else None,
            "rows_in": self.rows_in,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
            "quarantined_by_rule": dict(self.quarantined),
            "examples": {rule: list(rows) for rule, rows in self.examples.items()},
            "unknown_values": {column: dict(found) for column, found in self.unknown.items()},
            "dead_letter": {"code": self.dead_letter[0], "detail": self.dead_letter[1]} if self.dead_letter else None,
            "schema_drift": dict(self.schema_drift) if self.schema_drift else None,
        }


@dataclass(frozen=True)
class Preview:
    """A preview's result: per file, and the silver rows (per feed, in the lake's columns) and the
    quarantine (in ``ops.quarantine``'s) a run would write; a quarantined row's ``_ingested_at``
    is the preview's time."""

    files: list[FilePreview]
    silver: Mapping[str, pl.DataFrame]
    quarantine: pl.DataFrame
    records: list[FileRecord]
    #: Where sales lines' categories came from, for the ceilings (said in the report).
    categories: str

    @property
    def loses(self) -> bool:
        return any(f.loses for f in self.files)

    def totals(self) -> dict[str, int]:
        return {
            "files": len(self.files),
            "rows_in": sum(f.rows_in for f in self.files),
            "rows_loaded": sum(f.rows_loaded for f in self.files),
            "rows_quarantined": sum(f.rows_quarantined for f in self.files),
            "files_dead_lettered": sum(f.dead_letter is not None for f in self.files),
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": [f.as_dict() for f in self.files],
            "total": self.totals(),
            "categories": self.categories,
            "would_lose_rows": self.loses,
        }


class _Files:
    """The previewed files as a read-only landing zone: each under the key it would land at.

    Only reads: every write raises, so a preview cannot write through it. A symbolic link is
    listed as one and refused when read, as the landing zone does (``io/storage.py``)."""

    url = "preview:"

    def __init__(self, files: Mapping[str, Path]) -> None:
        self._files = dict(sorted(files.items()))

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        for key, path in self._files.items():
            if key.startswith(prefix) and key > start_after:
                stat = path.lstat()
                yield ObjectInfo(
                    key,
                    stat.st_size,
                    f"{stat.st_mtime_ns:x}-{stat.st_size:x}",
                    datetime.fromtimestamp(stat.st_mtime, UTC),
                    symlink=path.is_symlink(),
                )

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as handle:
            return handle.read()

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        path = self._files.get(validate_key(key))
        if path is None:
            raise FileNotFoundError(key)
        if path.is_symlink():
            raise UnsafeKey(key, "is a symbolic link; links are not followed", symlink=True)
        return path.open("rb")

    def write_bytes(self, key: str, data: bytes) -> None:
        raise PermissionError(f"a preview writes nothing ({key})")

    def write_file(self, key: str, path: Path) -> None:
        raise PermissionError(f"a preview writes nothing ({key})")

    def exists(self, key: str) -> bool:
        return key in self._files

    def delete(self, key: str) -> None:
        raise PermissionError(f"a preview deletes nothing ({key})")

    def delete_prefix(self, prefix: str) -> int:
        raise PermissionError(f"a preview deletes nothing ({prefix})")

    def uri(self, key: str) -> str:
        return str(self._files[key])

    def local_path(self, key: str) -> Path | None:
        return self._files.get(key)

    def children(self, prefix: str = "") -> tuple[builtins.list[str], builtins.list[str]]:
        below = {key[len(prefix) :] for key in self._files if key.startswith(prefix)}
        dirs = sorted({rest.split("/", 1)[0] for rest in below if "/" in rest})
        return dirs, sorted(rest for rest in below if "/" not in rest)


def _walk(path: Path) -> list[Path]:
    """The files under ``path`` (itself if a file), in name order; links are listed, not followed."""
    if path.is_symlink() or path.is_file():
        return [path]
    if not path.is_dir():
        raise PreviewUsageError(f"{path}: no such file or directory")
    found: list[Path] = []
    for root, dirs, names in os.walk(path):  # os.walk follows no link to a directory
        found += [Path(root) / name for name in names]
        found += [Path(root) / name for name in dirs if (Path(root) / name).is_symlink()]
    return sorted(found)


def _in_landing_folder(path: Path) -> bool:
    """Whether ``path`` sits in a ``provider/feed/YYYY-MM-DD/`` folder. Its own name is not judged
    here: a name the landing zone refuses (``bad_file_name``, ``unsupported_format``) is previewed
    as the dead letter a run would make of it."""
    if len(path.parts) < 4:
        return False
    try:
        parse_landing_key("/".join([*path.parts[-4:-1], "name.csv"]))
    except LandingKeyError:
        return False
    return True


def file_keys(
    paths: Sequence[Path], *, provider: str | None = None, feed: str | None = None, day: date | None = None
) -> dict[str, Path]:
    """The landing key of every file under ``paths``: its path's last four parts when they are a
    landing key, else ``{provider}/{feed}/{day}/{name}`` (a loose file). Raises
    :class:`PreviewUsageError` for a missing path, a loose file without provider and feed, or two
    files at one key."""
    if provider is not None and not PROVIDER_PATTERN.fullmatch(provider):
        raise PreviewUsageError(f"--provider {provider!r}: a provider slug matches {PROVIDER_PATTERN.pattern}")
    if feed is not None and feed not in FEEDS:
        raise PreviewUsageError(f"--feed {feed!r}: feeds are {', '.join(FEEDS)}")
    keys: dict[str, Path] = {}
    for given in paths:
        for path in _walk(given):
            key = "/".join(path.absolute().parts[-4:])
            if not _in_landing_folder(path.absolute()):
                if provider is None or feed is None:
                    raise PreviewUsageError(
                        f"{path}: not at a landing key (provider/feed/YYYY-MM-DD/name);"
                        " give --provider and --feed for loose files"
                    )
                key = f"{provider}/{feed}/{(day or datetime.now(UTC).date()).isoformat()}/{path.name}"
            if key in keys:
                raise PreviewUsageError(f"{path} and {keys[key]} would both land at {key}")
            keys[key] = path
    if not keys:
        raise PreviewUsageError("no files to preview")
    return keys


def preview_files(
    files: Mapping[str, Path],
    registry: Registry,
    *,
    products: pl.DataFrame | None = None,
    categories: str = "",
    limits: ReadLimits = DEFAULT_LIMITS,
    now: datetime | None = None,
    chunk_rows: int | None = None,
    keep_rows: bool = True,
) -> Preview:
    """Bronze -> silver over ``files`` (landing key -> path, :func:`file_keys`) with ``registry``,
    writing nothing. ``products`` (``provider, sku, category``) gives sales lines their category's
    ceilings, as ``gold.dim_product`` does in a run; ``categories`` says where they came from.

    Each (provider, feed, date) is one partition folder, read by ``ingest_partition`` into a
    Parquet file in a temporary directory (the lake's own partition writer) and cleaned from it by
    ``clean_feed`` ``chunk_rows`` rows at a time (default: the silver asset's ``CHUNK_ROWS``), as
    the bronze and silver assets do: a folder's rows are never all in memory. ``keep_rows``: return
    the silver rows too (``Preview.silver``); without, they are counted chunk by chunk and dropped,
    so memory does not grow with the folder (the command's way)."""
    from resight_platform.io.lake import CHUNK_ROWS, PartitionFileWriter, iter_chunks  # imports Dagster

    chunk_rows = chunk_rows or CHUNK_ROWS
    now = now or datetime.now(UTC)
    store = _Files(files)
    folders = sorted({tuple(key.split("/")[:3]) for key in files})
    records: list[FileRecord] = []
    silver: dict[str, list[pl.DataFrame]] = {}
    quarantine: list[pl.DataFrame] = []
    bronze_rows: Counter[str] = Counter()
    loaded_rows: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="resight-preview-") as spill:
        spill_store = LocalStore(spill)
        for number, (provider, feed, day_text) in enumerate(folders):
            day = date.fromisoformat(day_text)
            ingestion = Ingestion(store, None, registry, feed, {}, now, limits=limits)
            listing = [(provider, item) for item in list_partition_files(store, registry, provider, feed, day)]
            key = f"bronze-{number}.parquet"
            writer = PartitionFileWriter(spill_store, key, row_group_rows=chunk_rows)
            for item in ingest_partition(ingestion, day, listing, records):
                if isinstance(item, Restart):  # a file failed after some of its rows: again, without it
                    writer.abort()
                    writer = PartitionFileWriter(spill_store, key, row_group_rows=chunk_rows)
                elif item.height:
                    writer.append(item)
            if not writer.rows:
                writer.abort()
                continue
            writer.commit()
            raw = pl.scan_parquet(Path(spill) / key)
            bronze_rows.update(dict(raw.group_by("_source_file").len().collect().iter_rows()))
            # In the silver asset's chunks, each chunk's loaded keys passed on as ``seen``: the same
            # split as the whole partition at once (transforms/silver.py), in less memory.
            seen: pl.DataFrame | None = None
            for chunk in iter_chunks(raw, chunk_rows):
                result = clean_feed(
                    feed,
                    chunk,
                    registry=registry,
                    mappings=registry.mappings,
                    now=now,
                    seen=seen,
                    products=products if feed == "sales" else None,
                )
                if result.keys is not None and result.keys.height:
                    seen = result.keys if seen is None else pl.concat([seen, result.keys])
                loaded_rows.update(dict(result.valid.group_by("_source_file").len().iter_rows()))
                if keep_rows:
                    silver.setdefault(feed, []).append(result.valid)
                quarantine.append(result.quarantine)
            (Path(spill) / key).unlink()
    quarantined = pl.concat(quarantine) if quarantine else empty_quarantine()
    loaded = {feed: pl.concat(frames) if len(frames) > 1 else frames[0] for feed, frames in sorted(silver.items())}
    by_file = {
        str(file): rows
        for (file,), rows in quarantined.sort("_source_file", "_row_number")
        .partition_by("_source_file", as_dict=True, maintain_order=True)
        .items()
    }
    per_file = [
        _file_preview(r, files, bronze_rows, loaded_rows, by_file.get(r.file_key, quarantined.clear())) for r in records
    ]
    return Preview(sorted(per_file, key=lambda f: f.key), loaded, quarantined, records, categories)


def _file_preview(
    record: FileRecord,
    files: Mapping[str, Path],
    bronze_rows: Mapping[str, int],
    loaded_rows: Mapping[str, int],
    mine: pl.DataFrame,
) -> FilePreview:
    """One file's preview from its ledger record, the partition's counts and its quarantined rows
    (``mine``, in row order)."""
    key, path = record.file_key, str(files.get(record.file_key, record.file_key))
    if record.status == "dead_lettered":
        return FilePreview(
            key,
            path,
            record.provider,
            record.feed,
            record.business_date,
            dead_letter=(record.error_code or "", record.error or ""),
        )
    feed = record.feed or ""
    counts: Counter[str] = Counter(mine.get_column("rule").to_list())
    order = {rule: i for i, rule in enumerate(QUARANTINE_RULES.get(feed, ()))}
    by_rule = dict(sorted(counts.items(), key=lambda item: order.get(item[0], len(order))))
    examples = {
        rule: [
            {"row": number, "raw": json.loads(raw)}
            for number, raw in mine.filter(pl.col("rule") == rule)
            .head(EXAMPLES_PER_RULE)
            .select("_row_number", "raw")
            .iter_rows()
        ]
        for rule in by_rule
    }
    return FilePreview(
        key,
        path,
        record.provider,
        record.feed,
        record.business_date,
        rows_in=bronze_rows.get(key, record.rows_in or 0),
        rows_loaded=loaded_rows.get(key, 0),
        quarantined=by_rule,
        examples=examples,
        unknown=_unknown_values(feed, mine),
        schema_drift=record.schema_drift,
    )


def _unknown_values(feed: str, quarantine: pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Per mapped column, the values as delivered that its vocabulary rule quarantined, with rows."""
    found: dict[str, dict[str, Any]] = {}
    for rule, column in VOCABULARY_RULES.get(feed, {}).items():
        rows = quarantine.filter(pl.col("rule") == rule)
        if not rows.height:
            continue
        delivered = rows.select(pl.col("raw").str.json_path_match(f"$.{column}").alias("value"))
        values: Counter[str] = Counter()
        for value, n in delivered.group_by("value").len().iter_rows():
            values[MISSING if value is None or not value.strip() else value] += n
        found[column] = {
            "map": MAPPED_COLUMNS[column],
            "rule": rule,
            "values": dict(sorted(values.items(), key=lambda item: (-item[1], item[0]))[:UNKNOWN_VALUES_SHOWN]),
        }
    return found


# --- the command -------------------------------------------------------------------------------


def run_preview(args: argparse.Namespace) -> int:
    """``resight onboard preview``: 1 when anything would be lost, 0 otherwise, 2 on bad usage."""
    from resight_platform.resources import load_registry_at
    from resight_platform.settings import Settings

    settings = Settings.from_env()
    location = args.registry if args.registry is not None else settings.registry_dir
    try:
        files = file_keys(args.paths, provider=args.provider, feed=args.feed, day=args.date)
        registry = load_registry_at(location, settings.aws_endpoint_url, settings.history_floor)
    except (PreviewUsageError, RegistryError) as exc:
        print(f"resight onboard preview: {exc}", file=sys.stderr)
        return 2
    products, categories = _warehouse_products(settings, registry, files)
    result = preview_files(
        files,
        registry,
        products=products,
        categories=categories,
        limits=ReadLimits(settings.max_record_bytes, settings.max_file_bytes),
        keep_rows=False,
    )
    if args.json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        print(render(result), end="")
    return 1 if result.loses else 0


def _warehouse_products(
    settings: Any, registry: Registry, files: Mapping[str, Path]
) -> tuple[pl.DataFrame | None, str]:
    """``gold.dim_product``'s categories of the previewed sales providers, when the warehouse can
    be read without starting it; else None and why (every sales line then has the ``*`` ceilings)."""
    providers = sorted({key.split("/")[0] for key in files if key.split("/")[1] == "sales"})
    if not providers:
        return None, "no sales files"
    import psycopg

    from resight_platform.io.ops import known_products
    from resight_platform.io.postgres import connect, database_url, embedded_pg_server_url

    if settings.pg_url:
        url: str | None = settings.pg_url
    else:
        server = embedded_pg_server_url(settings.pg_data_dir)
        url = database_url(server, "resight") if server else None
    unknown = "unknown: sales lines are judged by the '*' ceilings (mappings/ceilings.csv), since"
    if url is None:
        return None, f"{unknown} no warehouse is running (RESIGHT_PG_URL unset, embedded server stopped)"
    try:
        with connect(url) as conn:
            if conn.execute("select to_regclass('gold.dim_product')").fetchone() == (None,):
                return None, f"{unknown} the warehouse has no gold.dim_product yet"
            products = known_products(conn, providers)
    except psycopg.Error as exc:
        return None, f"{unknown} the warehouse could not be read ({type(exc).__name__})"
    return products, f"gold.dim_product: {products.height} products of {', '.join(providers)}"


def _value_map_row(f: FilePreview, name: str, value: str) -> str:
    """A ``value_maps.csv`` row that would map ``value`` for the file's source, its canonical
    value left as ``?`` for the person to fill in."""
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow([f.provider, f.feed, name, value, "?", "exact", ""])
    return line.getvalue()


def render(result: Preview) -> str:
    """The preview for a person: a block per file, then a total line."""
    out: list[str] = []
    for f in result.files:
        where = f"{f.provider}, {f.feed}, {f.business_date}" if f.business_date else f"{f.provider}, {f.feed}"
        out.append(f"{f.key}  ({where})")
        if f.path != f.key and not f.path.endswith(f.key):
            out.append(f"  file: {f.path}")
        if f.dead_letter is not None:
            out.append(f"  DEAD-LETTER {f.dead_letter[0]}: {f.dead_letter[1]}")
            continue
        out.append(f"  rows in {f.rows_in}, would load {f.rows_loaded}, quarantined {f.rows_quarantined}")
        for rule, n in f.quarantined.items():
            out.append(f"  quarantined {rule}: {n}")
            for example in f.examples[rule]:
                given = {column: value for column, value in example["raw"].items() if value is not None}
                out.append(f"    row {example['row']}: {json.dumps(given, ensure_ascii=False)}")
        for column, found in f.unknown.items():
            values = ", ".join(f"{value!r} ({n})" for value, n in found["values"].items())
            out.append(f"  unknown {column}: {values}")
            for value in found["values"]:
                if value != MISSING:
                    out.append(f"    value_maps.csv: {_value_map_row(f, found['map'], value)}")
        if f.schema_drift:
            out.append(f"  columns differ from the registry: {ColumnDrift.from_dict(f.schema_drift).describe()}")
    total = result.totals()
    out.append(
        f"total: {total['files']} files, {total['rows_in']} rows in, {total['rows_loaded']} would load,"
        f" {total['rows_quarantined']} quarantined, {total['files_dead_lettered']} dead-lettered"
    )
    out.append(f"categories for sales ceilings: {result.categories}")
    out.append("nothing was written" + ("; rows would be lost (exit 1)" if result.loses else ""))
    return "\n".join(out) + "\n"
