"""Compaction: a partition's Parquet file made of many small row groups rewritten as few large ones,
its rows unchanged.

The lake holds one ``part-0.parquet`` per partition (``io/lake.py``), so the lake's "small files"
are small row groups inside it: Spark writes a partition as one file per task and the Spark lake
merges them row group by row group (``io/spark_lake._swap_in``), and a stream appends its chunks.
A reader then pays a footer entry, a seek and a decompression start per group. Compaction rewrites
such a file with row groups of ``RESIGHT_COMPACT_ROW_GROUP_ROWS`` rows:

- the new file is written beside the old (a local temporary file), then read back: its row count
  and content hash (every row hashed in order, :func:`content_hash`) must equal the old file's;
- the swap is the store's atomic replace (a rename on a local lake, one PUT on S3), made only if
  the object still has the ETag it had when it was read, so a partition rewritten meanwhile is
  left to its writer;
- a compacted file has few row groups, so a second pass leaves it alone (idempotent).
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from resight_platform.io.storage import PARTITION_FILE, ObjectInfo, ObjectStore, S3Store

__all__ = ["CompactResult", "compact_file", "compact_table", "content_hash", "needs_compaction"]


@dataclass(frozen=True)
class CompactResult:
    """One partition file looked at: its row groups before and after, rows, bytes."""

    key: str
    rows: int
    row_groups_before: int
    row_groups_after: int
    bytes_before: int
    bytes_after: int
    compacted: bool
    #: Why a file that needed compaction was left as it was (changed while compacting).
    skipped: str | None = None


def needs_compaction(row_groups: int, rows: int, row_group_rows: int, min_row_groups: int) -> bool:
    """More than ``min_row_groups`` row groups, and more than the file would have at ``row_group_rows``."""
    return row_groups > min_row_groups and row_groups > max(1, math.ceil(rows / row_group_rows))


def _footer(store: ObjectStore, info: ObjectInfo) -> pq.FileMetaData:
    """The file's Parquet footer: read from disk on a local lake; on S3 two ranged GETs of the
    object's end through the store's own client."""
    local = store.local_path(info.key)
    if local is not None:
        return pq.read_metadata(local)
    assert isinstance(store, S3Store)
    full = f"{store.prefix}/{info.key}" if store.prefix else info.key
    tail = store.client.get_object(Bucket=store.bucket, Key=full, Range="bytes=-8")["Body"].read()
    length = int.from_bytes(tail[:4], "little")
    footer = store.client.get_object(Bucket=store.bucket, Key=full, Range=f"bytes=-{length + 8}")["Body"].read()
    return pq.read_metadata(pa.BufferReader(b"PAR1" + footer))


def content_hash(parquet: pq.ParquetFile) -> tuple[int, str]:
    """``(rows, SHA-256 of every row's hash in file order)``, a row group at a time: equal for two
    files with the same rows in the same order however they are grouped."""
    digest = hashlib.sha256()
    rows = 0
    for group in range(parquet.num_row_groups):
        frame = pl.from_arrow(parquet.read_row_group(group))
        assert isinstance(frame, pl.DataFrame)
        rows += frame.height
        if frame.height:
            digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return rows, digest.hexdigest()


@contextlib.contextmanager
def _local_copy(store: ObjectStore, key: str) -> Iterator[Path]:
    local = store.local_path(key)
    if local is not None:
        yield local
        return
    with store.open_read(key) as raw, tempfile.NamedTemporaryFile(prefix="resight-compact-", suffix=".parquet") as out:
        while chunk := raw.read(1 << 20):
            out.write(chunk)
        out.flush()
        yield Path(out.name)


def _rewrite(source: pq.ParquetFile, target: Path, row_group_rows: int) -> None:
    schema = source.schema_arrow
    with pq.ParquetWriter(target, schema, compression="zstd") as writer:
        pending: list[pa.Table] = []
        buffered = 0
        for group in range(source.num_row_groups):
            pending.append(source.read_row_group(group))
            buffered += pending[-1].num_rows
            while buffered >= row_group_rows:
                table = pa.concat_tables(pending)
                writer.write_table(table.slice(0, row_group_rows), row_group_size=row_group_rows)
                rest = table.slice(row_group_rows)
                pending, buffered = ([rest] if rest.num_rows else []), rest.num_rows
        if buffered:
            writer.write_table(pa.concat_tables(pending), row_group_size=row_group_rows)


def _current(store: ObjectStore, key: str) -> ObjectInfo | None:
    return next((info for info in store.list(key) if info.key == key), None)


def compact_file(
    store: ObjectStore, info: ObjectInfo, *, row_group_rows: int, min_row_groups: int, dry_run: bool = False
) -> CompactResult:
    """Compact one partition file if it needs it (:func:`needs_compaction`); see the module's notes."""
    meta = _footer(store, info)
    result = CompactResult(
        info.key, meta.num_rows, meta.num_row_groups, meta.num_row_groups, info.size, info.size, False
    )
    if not needs_compaction(meta.num_row_groups, meta.num_rows, row_group_rows, min_row_groups):
        return result
    expected = max(1, math.ceil(meta.num_rows / row_group_rows))
    if dry_run:
        return CompactResult(info.key, meta.num_rows, meta.num_row_groups, expected, info.size, info.size, False)
    with _local_copy(store, info.key) as path:
        source = pq.ParquetFile(path)
        before = content_hash(source)
        fd, name = tempfile.mkstemp(prefix="resight-compact-", suffix=".parquet")
        os.close(fd)
        target = Path(name)
        try:
            _rewrite(source, target, row_group_rows)
            rewritten = pq.ParquetFile(target)
            after = content_hash(rewritten)
            if after != before:
                raise RuntimeError(
                    f"compacting {store.uri(info.key)} changed its rows ({before[0]} rows {before[1][:12]} →"
                    f" {after[0]} rows {after[1][:12]}): left as it was"
                )
            groups = rewritten.metadata.num_row_groups
            now = _current(store, info.key)
            if now is None or now.etag != info.etag:
                return CompactResult(
                    info.key,
                    meta.num_rows,
                    meta.num_row_groups,
                    meta.num_row_groups,
                    info.size,
                    info.size,
                    False,
                    skipped="rewritten or deleted while compacting: left to its writer",
                )
            store.write_file(info.key, target)
            size = target.stat().st_size
        finally:
            target.unlink(missing_ok=True)
    return CompactResult(info.key, meta.num_rows, meta.num_row_groups, groups, info.size, size, True)


def compact_table(
    store: ObjectStore,
    table: str,
    *,
    row_group_rows: int,
    min_row_groups: int,
    modified_since: datetime | None = None,
    dry_run: bool = False,
) -> list[CompactResult]:
    """Compact every partition file under the lake table ``table`` (``"silver/sales/"``), or only
    those modified at or after ``modified_since`` (a ``datetime``: what was written since the last
    pass; the listing's time, no extra request)."""
    out = []
    for info in store.list(table):
        if not info.key.endswith("/" + PARTITION_FILE):
            continue
        if modified_since is not None and info.last_modified < modified_since:
            continue
        out.append(
            compact_file(store, info, row_group_rows=row_group_rows, min_row_groups=min_row_groups, dry_run=dry_run)
        )
    return out
