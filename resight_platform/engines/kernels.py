"""The few steps the engines cannot share through Narwhals, one function per step and one
implementation per engine; each takes and returns a Narwhals frame, so the shared code around it
does not know which engine ran it. Each kernel has a parity test
(``resight_platform_tests/engines/test_kernels.py``). Why each one is per engine:
``docs/engines.md``.
"""

from __future__ import annotations

from collections.abc import Mapping

import narwhals as nw
import polars as pl

from resight_platform.engines import engine_of

__all__ = ["with_dollars"]


def with_dollars(frame: nw.LazyFrame, columns: Mapping[str, str]) -> nw.LazyFrame:
    """Add ``{name: cents column}`` as Float64 dollars: the double nearest to cents / 100.

    Not ``nw.col(c) / 100``: Polars divides a float column by a literal as a multiplication by the
    reciprocal, an ulp off for about one value in seven (``16.990000000000002``); it takes the
    exact decimal quotient instead. Spark's double division is IEEE-correctly rounded, and a cent
    count below 2^53 is exact as a double, so plain division is the nearest double there.
    """
    if not columns:
        return frame
    native = nw.to_native(frame)
    if engine_of(native) == "polars":
        exprs = [(pl.col(c).cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64).alias(n) for n, c in columns.items()]
        return nw.from_native(native.with_columns(exprs))
    from pyspark.sql import functions as F

    return nw.from_native(
        native.withColumns({n: F.col(c).cast("bigint").cast("double") / F.lit(100.0) for n, c in columns.items()})
    )
