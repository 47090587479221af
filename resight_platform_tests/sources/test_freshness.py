"""Which sources are late against their registered delivery window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from resight_platform.sources.freshness import stale_sources
from resight_platform.sources.registry import load_registry

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def test_a_source_is_stale_past_its_window_plus_grace_and_not_before() -> None:
    registry = load_registry()
    assert registry.sources[("pawmart", "sales")].expected_every_hours == 24
    last = {
        ("pawmart", "sales"): NOW - timedelta(hours=27),  # 24 h + 2 h grace passed: stale by 1 h
        ("petopia", "sales"): NOW - timedelta(hours=25),  # inside the grace: fresh
    }
    stale = stale_sources(registry, last, NOW, feed="sales")  # never-delivered sources not judged
    assert [(s.provider, round(s.overdue.total_seconds() / 3600)) for s in stale] == [("pawmart", 1)]
    assert stale[0].describe() == "pawmart/sales: last delivery 2026-11-25T09:00+00:00, due every 24 h, 1.0 h overdue"


def test_a_source_that_never_delivered_counts_from_when_watching_began() -> None:
    registry = load_registry()
    every_sales_source = {(p, f): NOW for (p, f), s in registry.sources.items() if f == "sales" and s.active}
    del every_sales_source[("pawmart", "sales")]
    stale = stale_sources(registry, every_sales_source, NOW, watching_since=NOW - timedelta(hours=30), feed="sales")
    assert [(s.provider, s.last_delivery) for s in stale] == [("pawmart", None)]
    assert stale_sources(registry, every_sales_source, NOW, watching_since=NOW - timedelta(hours=3), feed="sales") == []


def test_inactive_sources_and_other_feeds_are_not_judged() -> None:
    registry = load_registry()
    inactive = [key for key, s in registry.sources.items() if not s.active]
    stale = stale_sources(registry, {}, NOW, watching_since=NOW - timedelta(days=30))
    assert {(s.provider, s.feed) for s in stale} == {key for key, s in registry.sources.items() if s.active}
    assert not set(inactive) & {(s.provider, s.feed) for s in stale}
    assert all(
        s.feed == "catalog"
        for s in stale_sources(registry, {}, NOW, watching_since=NOW - timedelta(days=30), feed="catalog")
    )
