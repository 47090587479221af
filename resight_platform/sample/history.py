"""A long, thin sales history beside the demo's dense sample, for the weekly demand model.

The demo's sample is thirty partners over two weeks; a weekly forecast with a yearly season
needs well over a year of weeks. Every partner over two years would be 30 × 730 date × source
partitions per asset, hours of Dagster bookkeeping; so one partner that is *not* in the dense
sample (the first registered one after it) sends ``weeks`` weeks of sales up to the sample's last
day, at a fraction of its own volume. It delivers **weekly**, as many partners do: one file per
feed and ISO week (Monday to Sunday), dated on the Sunday (the week-ending date is the file's
business date), each line with its own ``ordered_at``. That is a seventh of the files and dated
partitions of a daily partner, and the weekly demand features (weeks of the sale date, Monday
start) are the same. It goes through the same landing → bronze → silver → gold path as every
other file, and its demand follows the world's yearly seasons and trend (``world.season_factor``).
"""

from __future__ import annotations

from datetime import date, timedelta

from resight_platform.sources.registry import Registry, load_registry

from .generator import Progress, generate
from .manifest import Manifest

__all__ = ["HISTORY_VOLUME", "generate_history", "history_provider", "history_weeks"]

#: Share of the partner's own daily volume the history carries (a few hundred lines a day).
HISTORY_VOLUME = 0.25


def history_provider(registry: Registry, after: int) -> str | None:
    """The first registered provider after the first ``after`` that has an active sales feed."""
    for slug in list(registry.providers)[after:]:
        source = registry.sources.get((slug, "sales"))
        if source is not None and source.active:
            return slug
    return None


def history_weeks(end: date, weeks: int, not_before: date) -> tuple[date, date]:
    """The first Monday and the last Sunday of the history: ``weeks`` ISO weeks ending on the
    Sunday on or before ``end``, none starting before ``not_before``."""
    last = end - timedelta(days=(end.weekday() + 1) % 7)
    first = last - timedelta(weeks=weeks) + timedelta(days=1)
    earliest = not_before + timedelta(days=-not_before.weekday() % 7)
    return max(first, earliest), last


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
    """``provider``'s weekly files for the last ``weeks`` complete ISO weeks up to ``end`` (the
    last one ends on the Sunday on or before ``end``), from the first Monday on or after
    ``not_before`` (the first partition date) at the earliest, at ``volume`` of its own volume."""
    start, last = history_weeks(end, weeks, not_before)
    if last < start:
        raise ValueError(f"no complete week between {not_before} and {end}")
    return generate(
        out_url,
        provider_slugs=[provider],
        days=(last - start).days + 1,
        start=start,
        weekly=True,
        seed=seed,
        volume=volume,
        manifest_url=manifest_url,
        endpoint_url=endpoint_url,
        registry=registry or load_registry(),
        progress=progress,
    )
