"""The benchmark's code location: the platform's shape (4 bronze, 4 silver, 1 daily gold) with no work.

Three models, each loadable as a Dagster code location attribute:

- ``provider_defs``: the platform's own partitions (``resight_platform.defs.partitions``): date ×
  source, where a source partition is a provider (dynamic partitions named ``source``).
- ``feed_defs``: the same shape with the source dimension = a feed (dynamic partitions named
  ``feed``, keys ``provider__feed``).
- ``platform_defs``: the provider model under the platform's own asset keys (``bronze/<feed>``,
  ``silver/<feed>`` for the registry's feeds, ``gold/fact_sales``), for benchmarks whose figures
  depend on which feed an asset holds (``bench.partitions.closing``: daily and weekly feeds).

The first date is read from ``RESIGHT_BENCH_PARTITIONS_START`` when the location loads, so the
benchmark can size the date dimension without editing this file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dagster as dg

from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.partitions import DATE, SOURCE, daily_partitions, medallion_partitions
from resight_platform.sources.registry import FEEDS

__all__ = [
    "BRONZE",
    "FEED_PARTITIONS",
    "MODELS",
    "PLATFORM",
    "SILVER",
    "START_ENV",
    "build_defs",
    "dynamic_partitions_name",
    "feed_defs",
    "noop_work",
    "platform_assets",
    "platform_defs",
    "provider_defs",
]

START_ENV = "RESIGHT_BENCH_PARTITIONS_START"
BRONZE = ("bronze_orders", "bronze_order_lines", "bronze_products", "bronze_customers")
SILVER = tuple(name.replace("bronze_", "silver_") for name in BRONZE)
GOLD = "gold_fact_sales"
FEED_PARTITIONS = dg.DynamicPartitionsDefinition(name="feed")
MODELS = ("provider", "feed")
PLATFORM = "platform"


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
    if model in ("provider", PLATFORM):
        return "source"
    if model == "feed":
        return "feed"
    raise ValueError(f"unknown model {model!r}: expected one of {MODELS}")


def _medallion(model: str, start: str) -> dg.MultiPartitionsDefinition:
    if model == "provider":
        return medallion_partitions(start)
    dynamic_partitions_name(model)
    return dg.MultiPartitionsDefinition({DATE: daily_partitions(start), SOURCE: FEED_PARTITIONS})


def _layers(
    medallion: dg.PartitionsDefinition,
    daily: dg.PartitionsDefinition,
    keys: Sequence[tuple[dg.AssetKey, dg.AssetKey]],
    gold: dg.AssetKey,
) -> dg.Definitions:
    """A bronze → silver pair per ``keys`` on ``medallion``, and ``gold`` on ``daily`` over every silver."""
    assets: list[dg.AssetsDefinition] = []
    for bronze_key, silver_key in keys:

        @dg.asset(key=bronze_key, partitions_def=medallion, group_name="bronze")
        def _bronze() -> None:
            noop_work()

        @dg.asset(key=silver_key, partitions_def=medallion, deps=[bronze_key], group_name="silver")
        def _silver() -> None:
            noop_work()

        assets += [_bronze, _silver]

    @dg.asset(
        key=gold,
        partitions_def=daily,
        group_name="gold",
        deps=[
            dg.AssetDep(
                silver, partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE)
            )
            for _bronze_key, silver in keys
        ],
    )
    def _gold() -> None:
        noop_work()

    assets.append(_gold)
    return dg.Definitions(assets=assets, resources={"io_manager": NoopIOManager()})


def build_defs(model: str, start: str) -> dg.Definitions:
    """The benchmark's assets for ``model`` with dates from ``start`` (inclusive) to today."""
    daily = daily_partitions(start)
    if model == PLATFORM:
        return _layers(medallion_partitions(start), daily, platform_assets(), FACT_SALES)
    keys = [(dg.AssetKey(b), dg.AssetKey(s)) for b, s in zip(BRONZE, SILVER, strict=True)]
    return _layers(_medallion(model, start), daily, keys, dg.AssetKey(GOLD))


def platform_assets() -> list[tuple[dg.AssetKey, dg.AssetKey]]:
    """The platform's (bronze, silver) asset keys, one pair per feed of the registry."""
    return [(dg.AssetKey(["bronze", feed]), dg.AssetKey(["silver", feed])) for feed in FEEDS]


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


@dg.definitions
def platform_defs() -> dg.Definitions:
    return build_defs(PLATFORM, _start())
