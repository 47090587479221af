"""The benchmark's code location: the platform's shape (4 bronze, 4 silver, 1 daily gold) with no work.

Two models, each loadable as a Dagster code location attribute:

- ``provider_defs``: the platform's own partitions (``resight_platform.defs.partitions``): date ×
  source, where a source partition is a provider (dynamic partitions named ``source``).
- ``feed_defs``: the same shape with the source dimension = a feed (dynamic partitions named
  ``feed``, keys ``provider__feed``).

The first date is read from ``RESIGHT_BENCH_PARTITIONS_START`` when the location loads, so the
benchmark can size the date dimension without editing this file.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from resight_platform.defs.partitions import DATE, SOURCE, daily_partitions, medallion_partitions

__all__ = [
    "BRONZE",
    "FEED_PARTITIONS",
    "MODELS",
    "SILVER",
    "START_ENV",
    "build_defs",
    "dynamic_partitions_name",
    "feed_defs",
    "noop_work",
    "provider_defs",
]

START_ENV = "RESIGHT_BENCH_PARTITIONS_START"
BRONZE = ("bronze_orders", "bronze_order_lines", "bronze_products", "bronze_customers")
SILVER = tuple(name.replace("bronze_", "silver_") for name in BRONZE)
GOLD = "gold_fact_sales"
FEED_PARTITIONS = dg.DynamicPartitionsDefinition(name="feed")
MODELS = ("provider", "feed")


class NoopIOManager(dg.IOManager):
    """Stores nothing, loads ``None``: only Dagster's own bookkeeping is measured."""

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        del context, obj

    def load_input(self, context: dg.InputContext) -> None:
        del context


def noop_work() -> None:
    """The body of every asset (the "plain call" the bookkeeping is measured against)."""
    return None


def dynamic_partitions_name(model: str) -> str:
    """Name of the dynamic partitions definition holding the source keys of ``model``."""
    if model == "provider":
        return "source"
    if model == "feed":
        return "feed"
    raise ValueError(f"unknown model {model!r}: expected one of {MODELS}")


def _medallion(model: str, start: str) -> dg.MultiPartitionsDefinition:
    if model == "provider":
        return medallion_partitions(start)
    dynamic_partitions_name(model)
    return dg.MultiPartitionsDefinition({DATE: daily_partitions(start), SOURCE: FEED_PARTITIONS})


def build_defs(model: str, start: str) -> dg.Definitions:
    """The benchmark's assets for ``model`` with dates from ``start`` (inclusive) to today."""
    medallion = _medallion(model, start)
    daily = daily_partitions(start)
    assets: list[dg.AssetsDefinition] = []
    for bronze_name, silver_name in zip(BRONZE, SILVER, strict=True):

        @dg.asset(name=bronze_name, partitions_def=medallion, group_name="bronze")
        def _bronze() -> None:
            noop_work()

        @dg.asset(name=silver_name, partitions_def=medallion, deps=[bronze_name], group_name="silver")
        def _silver() -> None:
            noop_work()

        assets += [_bronze, _silver]

    @dg.asset(
        name=GOLD,
        partitions_def=daily,
        group_name="gold",
        deps=[
            dg.AssetDep(
                name, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE)
            )
            for name in SILVER
        ],
    )
    def _gold() -> None:
        noop_work()

    assets.append(_gold)
    return dg.Definitions(assets=assets, resources={"io_manager": NoopIOManager()})


def _start() -> str:
    start = os.environ.get(START_ENV)
    if not start:
        raise RuntimeError(f"set {START_ENV} (YYYY-MM-DD) before loading the benchmark definitions")
    return start


@dg.definitions
def provider_defs() -> dg.Definitions:
    return build_defs("provider", _start())


@dg.definitions
def feed_defs() -> dg.Definitions:
    return build_defs("feed", _start())
