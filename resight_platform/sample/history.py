"""A long, thin sales history beside the demo's dense sample, for the weekly demand model.

The demo's sample is thirty partners over two weeks; a weekly forecast with a yearly season
needs well over a year of weeks. Every partner over two years would be 30 × 730 date × source
partitions per asset, hours of Dagster bookkeeping; so one partner that is *not* in the dense
sample (the first registered one after it) sends its files every day for ``weeks`` weeks up to
the sample's last day, at a fraction of its own volume. It goes through the same landing →
bronze → silver → gold path as every other file, and its demand follows the world's yearly
seasons and trend (``world.season_factor``).
"""

from __future__ import annotations

from datetime import date, timedelta

from resight_platform.sources.registry import Registry, load_registry

from .generator import Progress, generate
from .manifest import Manifest

__all__ = ["HISTORY_VOLUME", "generate_history", "history_provider"]

#: Share of the partner's own daily volume the history carries (a few hundred lines a day).
HISTORY_VOLUME = 0.25


def history_provider(registry: Registry, after: int) -> str | None:
    """The first registered provider after the first ``after`` that has an active sales feed."""
    for slug in list(registry.providers)[after:]:
        source = registry.sources.get((slug, "sales"))
        if source is not None and source.active:
            return slug
    return None


def generate_history(
    out_url: str,
    *,
    provider: str,
    end: date,
    weeks: int,
    not_before: date,
    seed: int = 7,
    volume: float = HISTORY_VOLUME,
    manifest_url: str | None = None,
    endpoint_url: str | None = None,
    registry: Registry | None = None,
    progress: Progress | None = None,
) -> Manifest:
    """``provider``'s files for every day of the ``weeks`` weeks that end on ``end`` (from
    ``not_before`` at the earliest, the first partition date), at ``volume`` of its own volume."""
    start = max(end - timedelta(weeks=weeks) + timedelta(days=1), not_before)
    return generate(
        out_url,
        provider_slugs=[provider],
        days=(end - start).days + 1,
        start=start,
        seed=seed,
        volume=volume,
        manifest_url=manifest_url,
        endpoint_url=endpoint_url,
        registry=registry or load_registry(),
        progress=progress,
    )
