"""Jobs over the asset graph: the units the demo, backfills and schedules launch."""

from typing import Any

import dagster as dg

from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.ops import scan_landing_job
from resight_platform.resources import ENGINE_TAG

__all__ = [
    "CLOSE_JOB",
    "DAILY_MART_JOB",
    "DIMENSIONS_JOB",
    "GOLD_FACTS_JOB",
    "LANDING_JOB",
    "LANDING_SET_JOB",
    "MARTS_JOB",
    "MEDALLION_JOB",
    "ML_JOB",
    "REGISTRY_JOB",
    "SCAN_LANDING_JOB",
    "SPARK_RESTATE_JOB",
    "build_jobs",
]

REGISTRY_JOB = "registry_job"
SCAN_LANDING_JOB = "scan_landing_job"
MEDALLION_JOB = "medallion_job"
LANDING_JOB = "landing_job"
#: The landing sensor's runs: bronze, silver (and for sales, their facts) of an exact set of date ×
#: source partitions, named in the run config (``metadata.set_run_config``; ``defs/landing.py``).
LANDING_SET_JOB = "landing_partitions_job"
DIMENSIONS_JOB = "dimensions_job"
GOLD_FACTS_JOB = "gold_facts_job"
DAILY_MART_JOB = "daily_mart_job"
MARTS_JOB = "monthly_marts_job"
ML_JOB = "ml_job"
SPARK_RESTATE_JOB = "spark_restate_job"
#: Closes the date × source partitions a source is not expected to deliver (``defs/closing.py``).
CLOSE_JOB = "close_partitions_job"

_ML = [["gold", name] for name in ("ml_demand_features", "ml_demand_model", "ml_demand_forecast")]
_DIMENSIONS = [["gold", name] for name in ("dim_date", "dim_provider", "dim_store", "dim_product", "dim_customer")]


def build_jobs(medallion: dg.PartitionsDefinition, daily: dg.PartitionsDefinition) -> list[Any]:
    return [
        scan_landing_job,
        dg.define_asset_job(
            REGISTRY_JOB,
            selection=dg.AssetSelection.assets(["ops", "sources"], ["gold", "dim_provider"]),
            description="Load the source registry into Postgres (ops.sources, gold.dim_provider) and register"
            " source partitions.",
        ),
        dg.define_asset_job(
            MEDALLION_JOB,
            selection=dg.AssetSelection.groups("bronze", "silver"),
            partitions_def=medallion,
            description="Bronze and silver for a date × source range.",
        ),
        dg.define_asset_job(
            LANDING_JOB,
            selection=dg.AssetSelection.groups("bronze", "silver") | dg.AssetSelection.assets(FACT_SALES),
            partitions_def=medallion,
            description="What the landing sensor runs for new files: bronze, silver and (sales only) their facts.",
        ),
        dg.define_asset_job(
            SPARK_RESTATE_JOB,
            selection=dg.AssetSelection.groups("silver") | dg.AssetSelection.assets(FACT_SALES),
            partitions_def=medallion,
            tags={ENGINE_TAG: "spark"},
            description="Silver and the facts of a date × source range again, on Spark, from the bronze already in"
            " the lake: a re-statement after a mapping change, or a backfill of history past one machine. Launch a"
            " backfill of it from its partitions (one run per range: single-run backfills); then the dimensions,"
            " the marts and ml_job (the features read the whole fact table; docs/engines.md).",
        ),
        dg.define_asset_job(
            DIMENSIONS_JOB,
            selection=dg.AssetSelection.assets(*_DIMENSIONS),
            description="Refresh the conformed dimensions from silver.",
        ),
        dg.define_asset_job(
            GOLD_FACTS_JOB,
            selection=dg.AssetSelection.assets(FACT_SALES),
            partitions_def=medallion,
            description="fact_sales for a date × source range.",
        ),
        dg.define_asset_job(
            DAILY_MART_JOB,
            selection=dg.AssetSelection.assets(["marts", "daily_sales"]),
            partitions_def=daily,
            description="The daily sales mart for a date range.",
        ),
        dg.define_asset_job(
            MARTS_JOB,
            selection=dg.AssetSelection.groups("marts") - dg.AssetSelection.assets(["marts", "daily_sales"]),
            description="Recompute the monthly marts.",
        ),
        dg.define_asset_job(
            ML_JOB,
            selection=dg.AssetSelection.assets(*_ML),
            description="Weekly demand features, train and register the demand model, forecast the next weeks.",
        ),
    ]
