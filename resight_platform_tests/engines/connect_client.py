"""The client side of the Spark Connect test, run in a process of its own
(``python -m resight_platform_tests.engines.connect_client URL OUT LAKE``): pyspark refuses a Connect
session in a process that has a local one (the test worker's ``spark`` fixture), and a Connect
session turns the process's pyspark functions to Connect for good.

It asks :class:`~resight_platform.resources.EngineResource` for a session at ``URL``, runs
:func:`revenue_by_provider` (Narwhals, the shared kernel ``with_dollars`` included) on it and
writes the result to the Parquet file ``OUT`` through Arrow; then writes the sample to the local
lake ``LAKE`` through the server (:func:`~resight_platform.io.spark_lake.write_partitions`, the
server shares this machine's filesystem) and reads it back through it."""

from __future__ import annotations

import sys

import narwhals as nw
import polars as pl
import pyarrow.parquet as pq

from resight_platform.engines.kernels import with_dollars


def sample(rows: int = 2_000) -> pl.DataFrame:
    """Sales lines of a few providers: cents, units and a status, deterministic."""
    providers = ["pawmart", "chewy_feed", "petopia", "barkbox"]
    return pl.DataFrame(
        {
            "provider": [providers[(i * 7) % 4] for i in range(rows)],
            "status": ["returned" if i % 9 == 0 else "completed" for i in range(rows)],
            "units": [1 + i % 5 for i in range(rows)],
            "unit_cents": [(i * 1_699) % 250_000 + 1 for i in range(rows)],
            "date": [f"2026-10-0{1 + i % 3}" for i in range(rows)],
            "source": [providers[(i * 7) % 4] for i in range(rows)],
        }
    )


def revenue_by_provider(frame: nw.LazyFrame) -> nw.LazyFrame:
    """Completed lines' revenue per provider, in exact cents and as dollars (one definition, any
    engine)."""
    lines = frame.filter(nw.col("status") == "completed").with_columns(
        net_cents=nw.col("units").cast(nw.Int64) * nw.col("unit_cents").cast(nw.Int64)
    )
    grouped = lines.group_by("provider").agg(
        nw.col("net_cents").sum().alias("revenue_cents"),
        nw.len().cast(nw.Int64).alias("lines"),
    )
    return with_dollars(grouped, {"revenue": "revenue_cents"}).sort("provider")


#: The lake table the client writes the sample to.
TABLE = ["silver", "sales"]


def main(url: str, out: str, lake: str) -> None:
    from resight_platform.io.spark_lake import read_table, write_partitions
    from resight_platform.resources import EngineResource

    resource = EngineResource(engine="spark", spark_remote=url, spark_conf={"spark.sql.shuffle.partitions": "2"})
    spark = resource.spark_session
    print("session", type(spark).__module__, flush=True)
    frame = nw.from_native(spark.createDataFrame(sample().to_arrow()))
    result = nw.to_native(revenue_by_provider(frame)).toArrow()
    pq.write_table(result, out)
    write_partitions(nw.to_native(frame), lake, TABLE)
    partitions = [{"date": f"2026-10-0{day}", "source": "pawmart"} for day in (1, 2, 3)]
    print("read back", read_table(spark, lake, TABLE, partitions).count(), flush=True)
    spark.stop()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
