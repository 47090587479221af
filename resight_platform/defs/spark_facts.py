"""``gold.fact_sales`` read from the lake into Spark for the assets that take the Spark path on a
Spark run: the marts and the ML features, which read the whole table (or whole days)."""

from typing import Any

import dagster as dg

from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.partitions import DATE, SOURCE
from resight_platform.io import spark_lake
from resight_platform.resources import EngineResource, StoreResource, engine_for

__all__ = ["facts_on_spark"]


def facts_on_spark(
    context: dg.AssetExecutionContext, engine: EngineResource, lake: StoreResource, dates: list[str] | None = None
) -> Any:
    """``gold.fact_sales`` from the lake as a Spark DataFrame (every partition, or those of
    ``dates``) when the run is on Spark and the facts have rows; else None (the Polars path)."""
    if engine_for(context) != "spark":
        return None
    frame = spark_lake.read_listed(
        engine.spark_session,
        lake.url,
        FACT_SALES.path,
        dates=dates,
        **lake.store_options(),
    )
    return frame.drop(DATE, SOURCE) if "sale_date" in frame.columns else None
