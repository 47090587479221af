"""Each kernel gives the same values on Polars and on Spark."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import narwhals as nw
import polars as pl
import pytest

from resight_platform.engines import from_polars, to_polars
from resight_platform.engines.kernels import with_dollars


def _cents() -> pl.DataFrame:
    rng = random.Random(18)
    values = [*range(0, 20_000), *(rng.randrange(10**12) for _ in range(20_000)), None]
    return pl.DataFrame({"cents": values}, schema={"cents": pl.Int64})


def test_dollars_are_the_double_nearest_to_cents_over_100_on_polars() -> None:
    frame = _cents()
    got = to_polars(with_dollars(nw.from_native(frame.lazy()), {"dollars": "cents"}))
    exact = [None if c is None else float(Decimal(c) / 100) for c in frame.get_column("cents").to_list()]
    assert got.get_column("dollars").to_list() == exact


@pytest.mark.xdist_group("spark")
def test_dollars_on_spark_equal_polars(spark: Any) -> None:
    frame = _cents()
    polars = to_polars(with_dollars(nw.from_native(frame.lazy()), {"dollars": "cents"}))
    on_spark = with_dollars(nw.from_native(from_polars(spark.range(1), frame)).lazy(), {"dollars": "cents"})
    got = to_polars(on_spark).sort("cents", nulls_last=True)
    assert got.equals(polars.sort("cents", nulls_last=True))
