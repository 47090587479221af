"""Freshness per source: a check ``sources_deliver_on_time`` on each feed's bronze table, failing
(warning) with the sources that have not delivered within their registered window
(``sources.csv``: ``expected_every_hours``, plus ``RESIGHT_FRESHNESS_GRACE_HOURS``, default 2).

``freshness_sensor`` evaluates it every 5 minutes and records an evaluation when the set of stale
sources of a feed changes (a source goes stale or recovers), so the UI shows the current state and
the alert sensor forwards each change once rather than every 5 minutes. The check can also be run
from the UI at any time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime

import dagster as dg

from resight_platform.io.ops import last_deliveries
from resight_platform.resources import RegistryResource, WarehouseResource
from resight_platform.settings import Settings
from resight_platform.sources.freshness import Staleness, stale_sources
from resight_platform.sources.registry import FEEDS, Registry

__all__ = ["FRESHNESS_CHECK", "FRESHNESS_SENSOR", "freshness_checks", "freshness_evaluation", "freshness_sensor"]

FRESHNESS_CHECK = "sources_deliver_on_time"
FRESHNESS_SENSOR = "freshness_sensor"
_RULE = "no_delivery_within_window"


def freshness_evaluation(
    deliveries: tuple[Mapping[tuple[str, str], datetime], datetime | None], registry: Registry, feed: str, now: datetime
) -> tuple[dg.AssetCheckEvaluation, list[Staleness]]:
    """The check's verdict for ``feed`` at ``now`` and the stale sources behind it, from
    :func:`last_deliveries` (read once for every feed)."""
    last, watching_since = deliveries
    stale = stale_sources(
        registry, last, now, grace=Settings.from_env().freshness_grace, watching_since=watching_since, feed=feed
    )
    checked = sum(1 for (_, f), s in registry.sources.items() if f == feed and s.active)
    table = ["| source | last delivery | due every (h) | overdue (h) |", "|---|---|---:|---:|"]
    for s in stale[:50]:
        last_at = s.last_delivery.isoformat(timespec="minutes") if s.last_delivery else "never"
        table.append(
            f"| {s.provider} | {last_at} | {s.expected_every_hours} | {s.overdue.total_seconds() / 3600:.1f} |"
        )
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(["bronze", feed]),
        check_name=FRESHNESS_CHECK,
        passed=not stale,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "sources_checked": checked,
            "stale_sources": len(stale),
            "failures_by_rule": dg.MetadataValue.json({_RULE: len(stale)} if stale else {}),
            "failing_rows": len(stale),
            "stale": dg.MetadataValue.md("\n".join(table)),
            "evaluated_at": now.isoformat(timespec="seconds"),
        },
        description=("; ".join(s.describe() for s in stale[:5]) + (" …" if len(stale) > 5 else "")) or None,
    )
    return evaluation, stale


def _check(feed: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["bronze", feed]),
        name=FRESHNESS_CHECK,
        description=f"Every active source delivered {feed} files within its registered window (sources.csv).",
    )
    def check(warehouse: WarehouseResource, registry: RegistryResource) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            evaluation, _ = freshness_evaluation(last_deliveries(conn), registry.load(), feed, datetime.now(UTC))
        return dg.AssetCheckResult(
            passed=evaluation.passed,
            severity=evaluation.severity,
            metadata=evaluation.metadata,
            description=evaluation.description,
        )

    return check


def freshness_checks() -> list[dg.AssetChecksDefinition]:
    return [_check(feed) for feed in FEEDS]


@dg.sensor(
    name=FRESHNESS_SENSOR,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sources late against their registered delivery window → the sources_deliver_on_time checks.",
)
def freshness_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource, registry: RegistryResource
) -> dg.SensorResult:
    previous: dict[str, list[str]] = json.loads(context.cursor) if context.cursor else {}
    now = datetime.now(UTC)
    reg = registry.load()
    state: dict[str, list[str]] = {}
    events: list[dg.AssetCheckEvaluation] = []
    with warehouse.connect() as conn:
        deliveries = last_deliveries(conn)
    for feed in FEEDS:
        evaluation, stale = freshness_evaluation(deliveries, reg, feed, now)
        state[feed] = sorted(f"{s.provider}/{s.feed}" for s in stale)
        if feed not in previous or state[feed] != previous[feed]:
            events.append(evaluation)
    cursor = json.dumps(state, sort_keys=True)
    if not events:
        return dg.SensorResult(cursor=cursor, skip_reason="no change in stale sources")
    context.log.info(
        "; ".join(f"{e.asset_key.to_user_string()}: {len(state[e.asset_key.path[-1]])} stale" for e in events)
    )
    return dg.SensorResult(asset_events=events, cursor=cursor)
