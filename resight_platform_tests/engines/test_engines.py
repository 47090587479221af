"""The engine of a frame, and frames crossing between Polars and Spark unchanged (through Arrow)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import narwhals as nw
import polars as pl
import pytest

from resight_platform.engines import engine_of, from_polars, is_spark, lazy_like, to_polars
from resight_platform.engines.spark import BASE_CONF, spark_config


def _typed() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "text": ["a", None, "ü\tb"],
            "i32": pl.Series([1, None, 2**31 - 1], dtype=pl.Int32),
            "i64": [2**62, -1, None],
            "f64": [16.99, 0.1, None],
            "day": [date(2026, 10, 1), None, date(1999, 12, 31)],
            "at": [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), None, datetime(2026, 3, 8, 7, 0, 0, 123456, tzinfo=UTC)],
            "flag": [True, False, None],
        }
    )


def test_a_polars_frame_runs_on_polars_eager_lazy_or_wrapped() -> None:
    frame = _typed()
    for native in (frame, frame.lazy(), nw.from_native(frame), nw.from_native(frame.lazy())):
        assert engine_of(native) == "polars"
        assert not is_spark(native)
    assert to_polars(frame.lazy()).equals(frame)
    assert isinstance(from_polars(frame.lazy(), frame), pl.LazyFrame)


def test_anything_else_is_no_engine() -> None:
    with pytest.raises(TypeError):
        engine_of([1, 2, 3])


def test_the_session_settings_keep_utc_text_partitions_and_arrow() -> None:
    local = spark_config(master="local[1]", extra={"spark.sql.shuffle.partitions": "2"})
    assert local["spark.master"] == "local[1]" and local["spark.ui.enabled"] == "false"
    assert all(local[k] == v for k, v in BASE_CONF.items())
    remote = spark_config(remote="sc://spark.internal:15002", extra={"spark.sql.session.timeZone": "UTC"})
    assert remote["spark.remote"] == "sc://spark.internal:15002" and "spark.master" not in remote


@pytest.mark.xdist_group("spark")
def test_a_frame_crosses_to_spark_and_back_unchanged(spark: Any) -> None:
    frame = _typed()
    on_spark = from_polars(spark.range(1), frame)
    assert engine_of(on_spark) == "spark" and engine_of(nw.from_native(on_spark)) == "spark"
    back = to_polars(on_spark)
    assert back.schema == frame.schema
    assert back.equals(frame)


def test_lazy_like_keeps_a_frame_on_its_own_engine() -> None:
    frame = _typed()
    moved = lazy_like(frame.lazy(), frame)
    assert isinstance(moved, nw.LazyFrame)
    assert to_polars(moved).equals(frame)


@pytest.mark.xdist_group("spark")
def test_lazy_like_moves_a_polars_frame_to_spark_and_a_spark_frame_to_polars(spark: Any) -> None:
    frame = _typed()
    on_spark = lazy_like(spark.range(1), frame)
    assert is_spark(on_spark)
    back = lazy_like(frame.lazy(), on_spark)
    assert engine_of(back) == "polars"
    assert to_polars(back).equals(frame)
