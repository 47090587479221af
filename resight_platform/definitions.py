"""The one entry point: load settings, build resources, assemble every definition."""

from __future__ import annotations

import dagster as dg

from resight_platform.defs.bronze import bronze_assets
from resight_platform.defs.gold import gold_assets
from resight_platform.defs.jobs import build_jobs
from resight_platform.defs.ops import source_registry
from resight_platform.defs.partitions import daily_partitions, medallion_partitions
from resight_platform.defs.silver import silver_assets
from resight_platform.resources import build_resources
from resight_platform.settings import Settings

__all__ = ["build_definitions", "defs"]


def build_definitions(settings: Settings, pg_url: str | None = None) -> dg.Definitions:
    """Every asset, job and resource for ``settings``; ``pg_url`` skips resolving the warehouse."""
    medallion = medallion_partitions(settings.partitions_start)
    daily = daily_partitions(settings.partitions_start)
    assets = [
        source_registry,
        *bronze_assets(medallion),
        *silver_assets(medallion),
        *gold_assets(settings.partitions_start, daily),
    ]
    return dg.Definitions(
        assets=assets,
        jobs=build_jobs(medallion, daily),
        resources=build_resources(settings, pg_url),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(Settings.from_env())
