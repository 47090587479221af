"""Compaction on a local lake and on the S3 endpoint: a partition file of many small row groups is
rewritten with few, its rows unchanged; a second pass and a file already compact are left alone."""

from __future__ import annotations

import io
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from resight_platform.io.compact import compact_table, content_hash, needs_compaction
from resight_platform.io.storage import LocalStore, ObjectStore, S3Store

KEY = "silver/sales/date=2026-10-01/source=acme/part-0.parquet"
COMPACT_KEY = "silver/sales/date=2026-10-02/source=acme/part-0.parquet"


def _rows(n: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "order_id": [f"o{i:05d}" for i in range(n)],
            "quantity": list(range(n)),
            "net_amount": [round(i * 1.25, 2) for i in range(n)],
            "note": [None if i % 7 else "x" for i in range(n)],
        }
    )


def _parquet(frame: pl.DataFrame, group_rows: int) -> bytes:
    """A Parquet file of ``frame`` cut into row groups of ``group_rows`` (as Spark's per-task files
    merged by the Spark lake, or appended chunks, leave it)."""
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, frame.to_arrow().schema, compression="zstd") as writer:
        for start in range(0, frame.height, group_rows):
            writer.write_table(frame.slice(start, group_rows).to_arrow(), row_group_size=group_rows)
    return buffer.getvalue()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return LocalStore(tmp_path / "lake")
    return S3Store.from_url(
        request.getfixturevalue("s3_bucket_url"), endpoint_url=request.getfixturevalue("s3_endpoint")
    )


def _read(store: ObjectStore, key: str) -> pq.ParquetFile:
    return pq.ParquetFile(io.BytesIO(store.read_bytes(key)))


def test_many_small_row_groups_become_few_with_the_same_rows(store: ObjectStore) -> None:
    frame = _rows(1000)
    store.write_bytes(KEY, _parquet(frame, 40))  # 25 row groups
    store.write_bytes(COMPACT_KEY, _parquet(frame, 1000))  # one: already compact
    before = content_hash(_read(store, KEY))
    compact_etag = next(i.etag for i in store.list(COMPACT_KEY))

    dry = {r.key: r for r in compact_table(store, "silver/sales/", row_group_rows=400, min_row_groups=4, dry_run=True)}
    assert (dry[KEY].row_groups_before, dry[KEY].row_groups_after, dry[KEY].compacted) == (25, 3, False)
    assert _read(store, KEY).metadata.num_row_groups == 25  # a dry run writes nothing

    results = {r.key: r for r in compact_table(store, "silver/sales/", row_group_rows=400, min_row_groups=4)}
    assert results[KEY].compacted and (results[KEY].row_groups_before, results[KEY].row_groups_after) == (25, 3)
    assert not results[COMPACT_KEY].compacted
    after = _read(store, KEY)
    assert after.metadata.num_row_groups == 3
    assert [after.metadata.row_group(i).num_rows for i in range(3)] == [400, 400, 200]
    assert content_hash(after) == before
    assert pl.read_parquet(io.BytesIO(store.read_bytes(KEY))).equals(frame)
    assert next(i.etag for i in store.list(COMPACT_KEY)) == compact_etag  # untouched

    again = compact_table(store, "silver/sales/", row_group_rows=400, min_row_groups=4)
    assert not any(r.compacted for r in again)  # idempotent


def test_the_content_hash_sees_a_changed_row_and_not_the_grouping() -> None:
    frame = _rows(100)
    changed = frame.with_columns(
        pl.when(pl.col("quantity") == 50).then(51).otherwise(pl.col("quantity")).alias("quantity")
    )
    grouped = content_hash(pq.ParquetFile(io.BytesIO(_parquet(frame, 7))))
    assert grouped == content_hash(pq.ParquetFile(io.BytesIO(_parquet(frame, 100))))
    assert grouped != content_hash(pq.ParquetFile(io.BytesIO(_parquet(changed, 7))))
    assert grouped[0] == 100


def test_when_a_file_needs_compaction() -> None:
    assert needs_compaction(row_groups=25, rows=1000, row_group_rows=400, min_row_groups=4)
    assert not needs_compaction(row_groups=4, rows=1000, row_group_rows=100, min_row_groups=4)  # few groups
    assert not needs_compaction(row_groups=10, rows=10_000, row_group_rows=1000, min_row_groups=4)  # already full
