"""bench.engines.run sizes Spark's shuffle to the day: no persisted block may outgrow the heap."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from bench.engines.run import ROWS_PER_SHUFFLE_PARTITION, SPARK_CONF, shuffle_partitions, spark_conf


def _bronze(root: Path, feed: str, *rows: int) -> None:
    (root / feed).mkdir(parents=True, exist_ok=True)
    for n, height in enumerate(rows):
        pl.DataFrame({"x": pl.zeros(height, pl.Int8, eager=True)}).write_parquet(root / feed / f"{n}.parquet")


def test_shuffle_partitions_follow_the_largest_feed_and_never_drop_below_four(tmp_path: Path) -> None:
    assert shuffle_partitions(tmp_path) == 4  # no bronze at all
    _bronze(tmp_path, "catalog", 10)
    assert shuffle_partitions(tmp_path) == 4  # a small day keeps the figures' setting
    # Sales in two files, one row past four partitions' worth: the rows of every file count.
    _bronze(tmp_path, "sales", 2 * ROWS_PER_SHUFFLE_PARTITION, 2 * ROWS_PER_SHUFFLE_PARTITION + 1)
    assert shuffle_partitions(tmp_path) == 5
    conf = spark_conf(tmp_path)
    assert conf["spark.sql.shuffle.partitions"] == "5"
    assert {k: v for k, v in conf.items() if k != "spark.sql.shuffle.partitions"} == SPARK_CONF
