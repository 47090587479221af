"""The one entry point: load settings, build resources, assemble every definition."""

from __future__ import annotations

import dagster as dg

from resight_platform import faults
from resight_platform.defs.alerts import alert_sensor
from resight_platform.defs.bronze import bronze_assets
from resight_platform.defs.closing import build_closing
from resight_platform.defs.emr import emr_resource, emr_silver_job
from resight_platform.defs.failed import failed_partitions_sensor
from resight_platform.defs.freshness import freshness_checks, freshness_sensor
from resight_platform.defs.gold import gold_assets, late_dimension_sensor
from resight_platform.defs.jobs import LANDING_SET_JOB, SCAN_LANDING_JOB, build_jobs
from resight_platform.defs.landing import build_landing_set_job
from resight_platform.defs.ml import FEATURES_KEY, FORECAST_KEY, MODEL_KEY, ml_assets
from resight_platform.defs.ops import (
    housekeeping_job,
    housekeeping_schedule,
    landing_contract_check,
    landing_zone,
    source_registry,
)
from resight_platform.defs.partitions import daily_partitions, medallion_partitions
from resight_platform.defs.policies import (
    FACTS_IN_RUN,
    SILVER_IN_RUN,
    every,
    follow_inputs,
    gathered,
    hourly,
    no_blocking_check_failed,
)
from resight_platform.defs.retention import build_retention
from resight_platform.defs.sensors import automation_sensor, build_landing_sensor, registry_sensor
from resight_platform.defs.silver import silver_assets
from resight_platform.resources import build_resources
from resight_platform.settings import Settings
from resight_platform.transforms.bronze import ReadLimits

__all__ = ["build_definitions", "defs"]


def build_definitions(settings: Settings, pg_url: str | None = None) -> dg.Definitions:
    """Every asset, job and resource for ``settings``; ``pg_url`` skips resolving the warehouse.
    Arms ``settings.failpoints`` in this process (every process that runs assets builds these)."""
    faults.arm(settings.failpoints)
    medallion = medallion_partitions(settings.partitions_start)
    daily = daily_partitions(settings.partitions_start)
    limits = ReadLimits(settings.max_record_bytes, settings.max_file_bytes)
    assets: list[dg.AssetsDefinition | dg.AssetSpec] = [
        source_registry,
        landing_zone,
        *bronze_assets(medallion, limits),
        *silver_assets(medallion),
        *gold_assets(settings.partitions_start, medallion, daily),
        *ml_assets(),
    ]
    close_job, close_schedule, closing_sensor = build_closing(settings, medallion, assets)
    jobs = [*build_jobs(medallion, daily), build_landing_set_job(medallion, assets, limits), close_job]
    retention_job, retention_schedule = build_retention(settings.retention, daily)
    resources = build_resources(settings, pg_url)
    # Only where an EMR Serverless application is configured: elsewhere the job could only fail.
    emr = emr_resource(settings)
    if emr is not None:
        jobs.append(emr_silver_job)
        resources["emr"] = emr
    return dg.Definitions(
        assets=dg.map_asset_specs(_automation, assets),
        asset_checks=[landing_contract_check, *freshness_checks()],
        jobs=[*jobs, housekeeping_job, retention_job],
        schedules=[housekeeping_schedule, retention_schedule, close_schedule],
        sensors=[
            build_landing_sensor(
                settings.partitions_start,
                [job for job in jobs if job.name in (LANDING_SET_JOB, SCAN_LANDING_JOB)],
            ),
            automation_sensor,
            registry_sensor,
            late_dimension_sensor,
            alert_sensor,
            freshness_sensor,
            failed_partitions_sensor,
            closing_sensor,
        ],
        resources=resources,
        # Runs execute their steps in one process: a run started by the sensor or automation
        # pays one interpreter start, not one per step (seconds each, most of a small run).
        executor=dg.in_process_executor,
    )


_DIMENSIONS = dg.AssetSelection.assets(
    *(["gold", name] for name in ("dim_date", "dim_provider", "dim_store", "dim_product", "dim_customer"))
)


def _automation(spec: dg.AssetSpec) -> dg.AssetSpec:
    """The automation condition of each layer (see defs/policies.py): bronze is the landing sensor's."""
    layer, name = spec.key.path[0], spec.key.path[-1]
    condition: dg.AutomationCondition | None = None
    if spec.key == FEATURES_KEY:
        # A whole-history recompute over fact_sales, like the monthly marts: hourly when its inputs
        # changed, but not merely because it is missing (a fresh instance has no facts yet).
        condition = hourly(when_missing=False)
    elif spec.key == MODEL_KEY:
        # Weekly, Monday 06:00 UTC, once last week is complete (and on demand: ml_job).
        condition = (
            every("0 6 * * 1") & ~dg.AutomationCondition.any_deps_missing() & no_blocking_check_failed()
        ).with_label("weekly")
    elif spec.key == FORECAST_KEY:
        # Each new model or new features; never from a model that failed its blocking check.
        condition = follow_inputs() & ~dg.AutomationCondition.any_deps_missing()
    elif layer == "silver":
        condition = follow_inputs(built_by_runs_tagged=SILVER_IN_RUN)
    elif layer == "gold" and name in ("dim_store", "dim_product", "dim_customer"):
        condition = follow_inputs(when_missing=True)
    elif layer == "gold" and name in ("dim_date", "dim_provider"):
        condition = every("0 * * * *")
    elif layer == "gold" and name == "fact_sales":
        condition = follow_inputs(ignore=_DIMENSIONS, built_by_runs_tagged=FACTS_IN_RUN)
    elif layer == "marts" and name == "daily_sales":
        # A day's mart re-aggregates the whole day: every 5 minutes, the days that changed together
        # in one run, not once per file or per day.
        condition = gathered("*/5 * * * *", ignore=_DIMENSIONS)
    elif layer == "marts":
        condition = hourly()
    return spec.replace_attributes(automation_condition=condition) if condition else spec


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
