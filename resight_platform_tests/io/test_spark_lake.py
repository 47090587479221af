"""The lake on Spark: partitions read as one Spark DataFrame and written back in the Polars lake's
layout, on a local directory and on the moto S3 endpoint; each engine reads what the other wrote."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines import from_polars, to_polars
from resight_platform.io import lake
from resight_platform.io.spark_lake import STAGING_DIR, read_table, s3a_conf, s3a_url, write_partitions
from resight_platform.io.storage import open_store
from resight_platform.settings import Settings

TABLE = ["silver", "sales"]
DATES = ["2026-10-01", "2026-10-02"]
SOURCES = ["pawmart", "chewy_feed"]
#: The partitions of the test frame: every date × source but one (2026-10-02, chewy_feed).
PARTITIONS = [{"date": d, "source": s} for d in DATES for s in SOURCES][:3]
KEY = ["order_id", "line"]


def _frame(rows: int = 300, seed: int = 0) -> pl.DataFrame:
    """Rows of every type the lake holds, spread over :data:`PARTITIONS`, with nulls, a unicode
    text, extreme integers and a microsecond instant; ``seed`` shifts the values."""
    at = datetime(2026, 10, 1, 4, 0, tzinfo=UTC)
    where = [PARTITIONS[i % len(PARTITIONS)] for i in range(rows)]
    return pl.DataFrame(
        {
            "order_id": [f"o{i // 3:05d}" for i in range(rows)],
            "line": pl.Series([i % 3 + 1 for i in range(rows)], dtype=pl.Int32),
            "net_cents": [None if i % 17 == 0 else (i + seed) * 1_999 - 2**40 * (i % 2) for i in range(rows)],
            "price": [None if i % 13 == 0 else (i + seed) / 100 for i in range(rows)],
            "sold_at": [at + timedelta(seconds=i * 61 + seed, microseconds=i) for i in range(rows)],
            "business_date": [date(2026, 10, 1) + timedelta(days=i % 2) for i in range(rows)],
            "returned": [None if i % 11 == 0 else i % 2 == 0 for i in range(rows)],
            "amount": pl.Series([Decimal(i + seed) / 100 for i in range(rows)], dtype=pl.Decimal(18, 2)),
            "note": [None if i % 7 == 0 else f"ü\t{i + seed} “x”" for i in range(rows)],
            "date": [p["date"] for p in where],
            "source": [p["source"] for p in where],
        }
    )


def _in(frame: pl.DataFrame, partition: dict[str, str]) -> pl.DataFrame:
    return frame.filter((pl.col("date") == partition["date"]) & (pl.col("source") == partition["source"]))


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort(KEY)


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _assert_polars_reads(store: Any, expected: pl.DataFrame) -> None:
    """The Polars lake reader, unchanged, reads each partition as ``expected``'s rows of it."""
    for partition in PARTITIONS:
        got = lake.read_table(store, TABLE, [partition]).collect()
        want = _in(expected, partition).drop("date", "source")
        if want.height == 0:
            assert got.width == 0, f"{partition} has a file but no rows"
            continue
        assert got.schema == want.schema
        assert_frame_equal(_sorted(got), _sorted(want))


@pytest.mark.xdist_group("spark")
def test_a_local_round_trip_keeps_the_layout_rows_and_types(spark: Any, tmp_path: Path) -> None:
    frame = _frame()
    uris = write_partitions(from_polars(spark.range(1), frame), str(tmp_path), TABLE)
    assert uris == [
        str(tmp_path / lake.partition_path(TABLE, p)) for p in sorted(PARTITIONS, key=lambda p: tuple(p.values()))
    ]
    # The Polars lake's layout exactly: one part-0.parquet per partition, nothing else, no staging left.
    assert _files(tmp_path) == sorted(lake.partition_path(TABLE, p) for p in PARTITIONS)
    assert not any((tmp_path / STAGING_DIR).iterdir())
    _assert_polars_reads(open_store(str(tmp_path)), frame)
    back = to_polars(read_table(spark, str(tmp_path), TABLE, PARTITIONS))
    assert back.schema == frame.schema
    assert_frame_equal(_sorted(back), _sorted(frame))


@pytest.mark.xdist_group("spark")
def test_a_rewrite_replaces_its_partitions_and_empties_the_runs_others(spark: Any, tmp_path: Path) -> None:
    lake_url = str(tmp_path)
    write_partitions(from_polars(spark.range(1), _frame()), lake_url, TABLE)
    untouched = {"date": "2026-09-30", "source": "pawmart"}
    lake.write_partition(open_store(lake_url), TABLE, untouched, _frame(5).drop("date", "source"))
    # A second run over the same three partitions: new values, and no rows at all for one of them.
    again = _frame(seed=7).filter(pl.col("source") != "chewy_feed")
    for _ in range(2):  # and once more: idempotent
        write_partitions(from_polars(spark.range(1), again), lake_url, TABLE, partitions=PARTITIONS)
    expected_files = sorted(lake.partition_path(TABLE, p) for p in [*PARTITIONS[::2], untouched])
    assert _files(tmp_path) == expected_files
    _assert_polars_reads(open_store(lake_url), again)
    back = to_polars(read_table(spark, lake_url, TABLE, [*PARTITIONS, untouched]))
    assert back.height == again.height + 5
    assert_frame_equal(_sorted(back.filter(pl.col("date") != "2026-09-30")), _sorted(again))


@pytest.mark.xdist_group("spark")
def test_each_engine_reads_what_the_other_wrote(spark: Any, tmp_path: Path) -> None:
    frame = _frame(120)
    polars_lake, spark_lake = tmp_path / "by-polars", tmp_path / "by-spark"
    store = open_store(str(polars_lake))
    for partition in PARTITIONS:
        lake.write_partition(store, TABLE, partition, _in(frame, partition).drop("date", "source"))
    on_spark = read_table(spark, str(polars_lake), TABLE, [*PARTITIONS, {"date": "2026-10-09", "source": "none"}])
    assert [name for name, _ in on_spark.dtypes[-2:]] == ["date", "source"]
    assert {kind for name, kind in on_spark.dtypes if name in ("date", "source")} == {"string"}
    write_partitions(on_spark, str(spark_lake), TABLE)
    # Spark's files and Polars' files of the same rows read back identical, through both readers.
    by_polars = lake.read_all(open_store(str(polars_lake)), TABLE).collect()
    by_spark = lake.read_all(open_store(str(spark_lake)), TABLE).collect()
    assert by_spark.schema == by_polars.schema == frame.drop("date", "source").schema
    assert_frame_equal(_sorted(by_spark), _sorted(by_polars))
    assert_frame_equal(_sorted(to_polars(read_table(spark, str(spark_lake), TABLE, PARTITIONS))), _sorted(frame))


@pytest.mark.xdist_group("spark")
def test_several_spark_files_of_a_partition_become_its_one_file(spark: Any, tmp_path: Path) -> None:
    frame = _frame(90)
    spark.conf.set("spark.sql.files.maxRecordsPerFile", "7")  # Spark writes 5 files per partition
    try:
        write_partitions(from_polars(spark.range(1), frame), str(tmp_path), TABLE)
    finally:
        spark.conf.unset("spark.sql.files.maxRecordsPerFile")
    assert _files(tmp_path) == sorted(lake.partition_path(TABLE, p) for p in PARTITIONS)
    _assert_polars_reads(open_store(str(tmp_path)), frame)


@pytest.mark.xdist_group("spark")
def test_a_bad_partition_value_writes_nothing(spark: Any, tmp_path: Path) -> None:
    lake_url = str(tmp_path)
    frame = _frame(30)
    write_partitions(from_polars(spark.range(1), frame), lake_url, TABLE)
    before = {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)}
    for bad, message in (
        (
            frame.with_columns(pl.when(pl.col("line") == 2).then(None).otherwise(pl.col("source")).alias("source")),
            "null",
        ),
        (frame.with_columns(pl.lit("a=b").alias("source")), "cannot be used as a path segment"),
    ):
        with pytest.raises(ValueError, match=message):
            write_partitions(from_polars(spark.range(1), bad), lake_url, TABLE)
    with pytest.raises(ValueError, match="outside this write's"):
        write_partitions(from_polars(spark.range(1), frame), lake_url, TABLE, partitions=PARTITIONS[:2])
    with pytest.raises(ValueError, match="no partition column"):
        write_partitions(from_polars(spark.range(1), frame.drop("source")), lake_url, TABLE)
    assert {name: (tmp_path / name).read_bytes() for name in _files(tmp_path)} == before


@pytest.mark.xdist_group("spark")
def test_an_s3_round_trip_through_the_object_store(spark: Any, s3_bucket_url: str, s3_endpoint: str) -> None:
    frame = _frame(150)
    store = open_store(s3_bucket_url, s3_endpoint)
    written = write_partitions(from_polars(spark.range(1), frame), s3_bucket_url, TABLE, endpoint_url=s3_endpoint)
    assert written == [
        store.uri(lake.partition_path(TABLE, p)) for p in sorted(PARTITIONS, key=lambda p: tuple(p.values()))
    ]
    assert sorted(info.key for info in store.list()) == sorted(lake.partition_path(TABLE, p) for p in PARTITIONS)
    _assert_polars_reads(store, frame)
    again = _frame(150, seed=3).filter(pl.col("source") != "chewy_feed")
    write_partitions(
        from_polars(spark.range(1), again), s3_bucket_url, TABLE, partitions=PARTITIONS, endpoint_url=s3_endpoint
    )
    assert sorted(info.key for info in store.list()) == sorted(lake.partition_path(TABLE, p) for p in PARTITIONS[::2])
    back = to_polars(read_table(spark, s3_bucket_url, TABLE, PARTITIONS, endpoint_url=s3_endpoint))
    assert back.schema == frame.schema
    assert_frame_equal(_sorted(back), _sorted(again))


@pytest.mark.xdist_group("spark")
def test_no_partition_written_reads_as_an_empty_frame(spark: Any, tmp_path: Path) -> None:
    empty = read_table(spark, str(tmp_path), TABLE, PARTITIONS)
    assert empty.columns == ["date", "source"] and empty.count() == 0


def test_the_s3a_settings_a_cluster_gets(tmp_path: Path) -> None:
    home = {"RESIGHT_HOME": str(tmp_path)}
    local = Settings.from_env({**home, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "RESIGHT_S3_MAX_ATTEMPTS": "4"})
    assert s3a_conf(local) == {
        "spark.hadoop.fs.s3a.attempts.maximum": "4",
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    }
    vpc = s3a_conf(
        Settings.from_env({**home, "AWS_ENDPOINT_URL": "https://bucket.vpce-1.s3.us-east-1.vpce.amazonaws.com"})
    )
    assert vpc["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert s3a_conf(Settings.from_env(home)) == {"spark.hadoop.fs.s3a.attempts.maximum": "10"}
    # Credentials never go into the session's settings: Spark takes them from the environment.
    secret = {**home, "AWS_ACCESS_KEY_ID": "AKIA", "AWS_SECRET_ACCESS_KEY": "s3cret"}
    assert not any("key" in name for name in s3a_conf(Settings.from_env(secret)))
    assert s3a_url("s3://lake-bucket/prod/lake") == "s3a://lake-bucket/prod/lake"
    assert s3a_url(os.fspath(tmp_path)) == os.fspath(tmp_path)
