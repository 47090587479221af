"""Where the silver, gold and mart transforms run: Polars in this process (the default) or Spark.

The transforms are written once, in Narwhals (``narwhals``), over whatever frame they are given: a
Polars frame runs them in-process, a PySpark DataFrame (a local session or Spark Connect) runs them
on Spark. The engine is the input's; nothing in a transform names it, except the few kernels that
cannot be shared (``docs/architecture.md``, "Two engines"), which dispatch on :func:`engine_of`.

This module imports no pyspark and starts no JVM: a Polars run never starts one.
"""

from __future__ import annotations

from typing import Any, Literal

import narwhals as nw
import polars as pl

__all__ = ["ENGINES", "Engine", "engine_of", "from_polars", "is_spark", "lazy_like", "to_polars"]

Engine = Literal["polars", "spark"]
#: The engines a run may choose (``RESIGHT_ENGINE``, the run tag ``resight/engine``).
ENGINES: tuple[Engine, ...] = ("polars", "spark")

_SPARK = {nw.Implementation.PYSPARK, nw.Implementation.PYSPARK_CONNECT}


def engine_of(frame: Any) -> Engine:
    """``spark`` for a PySpark DataFrame (classic or Connect) or a Narwhals frame over one,
    ``polars`` for a Polars frame; anything else is an error."""
    if isinstance(frame, pl.DataFrame | pl.LazyFrame):
        return "polars"
    wrapped = frame if isinstance(frame, nw.DataFrame | nw.LazyFrame) else nw.from_native(frame)
    if wrapped.implementation in _SPARK:
        return "spark"
    if wrapped.implementation is nw.Implementation.POLARS:
        return "polars"
    raise TypeError(f"no engine runs a {type(frame).__name__} frame; engines are {', '.join(ENGINES)}")


def is_spark(frame: Any) -> bool:
    return engine_of(frame) == "spark"


def to_polars(frame: Any) -> pl.DataFrame:
    """Any engine's frame (native or Narwhals) as a Polars DataFrame: collected lazily; Spark's
    through Arrow (never pandas), so types and exact values cross unchanged."""
    native = nw.to_native(frame) if isinstance(frame, nw.DataFrame | nw.LazyFrame) else frame
    if isinstance(native, pl.LazyFrame):
        return native.collect()
    if isinstance(native, pl.DataFrame):
        return native
    if engine_of(native) == "spark":
        table = native.toArrow()
        out = pl.from_arrow(table)
        assert isinstance(out, pl.DataFrame)
        return out
    raise TypeError(f"cannot read a {type(native).__name__} frame")


def from_polars(like: Any, data: pl.DataFrame) -> Any:
    """``data`` as a native frame of ``like``'s engine: itself (lazy if ``like`` is lazy) on Polars,
    a DataFrame of ``like``'s Spark session on Spark (created from Arrow)."""
    native = nw.to_native(like) if isinstance(like, nw.DataFrame | nw.LazyFrame) else like
    if isinstance(native, pl.LazyFrame):
        return data.lazy()
    if isinstance(native, pl.DataFrame):
        return data
    if engine_of(native) == "spark":
        return native.sparkSession.createDataFrame(data.to_arrow())
    raise TypeError(f"cannot build a frame like a {type(native).__name__}")


def lazy_like(like: Any, frame: Any) -> nw.LazyFrame:
    """``frame`` (either engine, native or Narwhals) as a Narwhals LazyFrame on ``like``'s engine:
    itself when the engines agree, else through Arrow (a dimension given as Polars to Spark facts).
    Meant for small frames: one on Spark crossing to Polars is collected to the driver."""
    if engine_of(frame) != engine_of(like):
        frame = from_polars(like, to_polars(frame))
    wrapped = frame if isinstance(frame, nw.DataFrame | nw.LazyFrame) else nw.from_native(frame)
    return wrapped.lazy()
