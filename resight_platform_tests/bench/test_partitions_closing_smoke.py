"""Smoke test of the closing benchmark (issue 21, point 1) at a tiny size on the real Postgres: what
Dagster counts as missing before and after closing is what the seeded year implies."""

from __future__ import annotations

import json
from pathlib import Path

from bench.partitions.closing import DAILY_FEEDS, WEEKLY_FEEDS, main, to_markdown

PROVIDERS, DAYS = 10, 9


def _not_expected_days(provider: int, days: range) -> int:
    """A weekly feed's days after onboarding that are not provider ``provider``'s delivery day."""
    onboarding = provider * DAYS // PROVIDERS
    return sum(1 for d in days if d >= onboarding and d % 7 != provider % 7)


def test_closing_leaves_only_the_real_gaps_missing(pg_server_url: str, tmp_path: Path) -> None:
    output = tmp_path / "closing.json"
    args = ["--providers", str(PROVIDERS), "--days", str(DAYS), "--gap-rate", "0.1", "--chunk", "50"]
    results = main([*args, "--pg-url", pg_server_url, "--output", str(output)])

    assert json.loads(output.read_text())["figures"]["closed_events"] == results["figures"]["closed_events"]
    f = results["figures"]
    plan = f["expected"]
    before_onboarding = sum(i * DAYS // PROVIDERS for i in range(PROVIDERS))
    not_expected = sum(_not_expected_days(i, range(DAYS)) for i in range(PROVIDERS))
    not_expected_today = sum(_not_expected_days(i, range(DAYS - 1, DAYS)) for i in range(PROVIDERS))
    for feed in (*DAILY_FEEDS, *WEEKLY_FEEDS):
        weekly = feed in WEEKLY_FEEDS
        assert plan[feed]["before_onboarding"] == before_onboarding, feed
        assert plan[feed]["not_expected"] == (not_expected if weekly else 0), feed
        assert sum(plan[feed].values()) == PROVIDERS * DAYS, feed
    gaps = sum(plan[feed]["gap"] for feed in plan)
    assert gaps > 0, "the tiny year should lose some expected days at a 10% gap rate"

    # Both layers of a feed are closed; the last provider onboards before the last day.
    assert f["closed_events"] + f["nightly_events"] == 2 * (4 * before_onboarding + 2 * not_expected)
    assert f["nightly_events"] == 2 * 2 * not_expected_today
    delivered = sum(plan[feed]["delivered"] for feed in plan)
    assert f["onboard_events"] == 2 * 4 * (DAYS - 1)  # registered on the last day
    assert f["seeded_events"] == 2 * delivered + DAYS  # provider 0 delivers sales from day 0

    for layer in ("bronze", "silver"):
        for feed in plan:
            asset = f"{layer}/{feed}"
            before, after = f["missing_before"][asset], f["missing_after"][asset]
            assert before["partitions"] == PROVIDERS * DAYS, asset
            assert before["missing"] == PROVIDERS * DAYS - plan[feed]["delivered"], asset
            assert after["missing"] == plan[feed]["gap"], asset
    assert f["missing_before"]["gold/fact_sales"] == {"partitions": DAYS, "materialized": DAYS, "missing": 0}

    for name, value in f.items():
        if name.endswith("_s"):
            assert value > 0, name
    assert f["event_logs_after_bytes"] > f["event_logs_before_bytes"]
    assert f["status_cache_after_bytes"]["silver/sales"] > 0
    assert "silver/catalog" in to_markdown(results)
