"""The freshness sensor on the real ledger: a late source shows as a failed (warning) check on its
feed's bronze table, once per change, recovers when it delivers, and reaches the alert sensor."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from resight_platform.defs.alerts import failures_after
from resight_platform.defs.freshness import FRESHNESS_CHECK, freshness_sensor
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect, sqlalchemy_url
from resight_platform.resources import RegistryResource, WarehouseResource
from resight_platform.sources.registry import load_registry


class Freshness:
    def __init__(self, instance: dg.DagsterInstance, pg_url: str) -> None:
        self.instance, self.pg_url = instance, pg_url
        self.cursor: str | None = None

    def tick(self) -> list[dg.AssetCheckEvaluation]:
        context = dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources={"warehouse": WarehouseResource(pg_url=self.pg_url), "registry": RegistryResource()},
        )
        result = freshness_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        events = [e for e in result.asset_events or [] if isinstance(e, dg.AssetCheckEvaluation)]
        for event in events:  # recorded as the daemon records a sensor's asset events
            self.instance.report_runless_asset_event(event)
        return events

    def deliver(self, provider: str, feed: str, hours_ago: float) -> None:
        at = datetime.now(UTC) - timedelta(hours=hours_ago)
        with connect(self.pg_url) as conn:
            conn.execute(
                "insert into ops.ingestion_ledger (file_key, checksum, provider, feed, business_date, bytes, status,"
                " first_seen) values (%s, 'x', %s, %s, %s, 1, 'loaded', %s)",
                (f"{provider}/{feed}/{at.date()}/{at.timestamp()}.csv", provider, feed, at.date(), at),
            )


@pytest.fixture
def freshness(fresh_pg_url: str) -> Iterator[Freshness]:
    with connect(fresh_pg_url) as conn:
        migrate(conn)
    with dg.instance_for_test(overrides={"storage": {"postgres": {"postgres_url": sqlalchemy_url(fresh_pg_url)}}}) as i:
        yield Freshness(i, fresh_pg_url)


def test_a_late_source_fails_its_feeds_check_once_and_recovers_when_it_delivers(freshness: Freshness) -> None:
    registry = load_registry()
    for (provider, feed), source in registry.sources.items():
        if source.active:  # everyone delivered an hour ago...
            freshness.deliver(provider, feed, hours_ago=1)
    freshness.deliver("pawmart", "sales", hours_ago=1)
    with connect(freshness.pg_url) as conn:  # ...except pawmart's sales: last file 30 hours ago
        conn.execute(
            "update ops.ingestion_ledger set first_seen = now() - interval '30 hours'"
            " where provider = 'pawmart' and feed = 'sales'"
        )
    first = {e.asset_key.to_user_string(): e for e in freshness.tick()}
    assert set(first) == {"bronze/sales", "bronze/catalog", "bronze/stores", "bronze/customers"}  # first state
    sales = first["bronze/sales"]
    assert not sales.passed and sales.severity == dg.AssetCheckSeverity.WARN and sales.check_name == FRESHNESS_CHECK
    assert sales.metadata["stale_sources"].value == 1 and "pawmart" in str(sales.metadata["stale"].value)
    assert all(first[f].passed for f in ("bronze/catalog", "bronze/stores", "bronze/customers"))
    # What the alert sensor will send: the feed's check, the rule, one stale source.
    (failure,) = failures_after(freshness.instance, 0)[0]
    assert (failure.asset, failure.check, failure.severity) == ("bronze/sales", FRESHNESS_CHECK, "WARN")
    assert failure.rules == {"no_delivery_within_window": 1} and "pawmart/sales" in failure.detail
    assert freshness.tick() == []  # no change, no new evaluation (and no new alert)

    freshness.deliver("pawmart", "sales", hours_ago=0)
    (recovered,) = freshness.tick()
    assert recovered.asset_key.to_user_string() == "bronze/sales" and recovered.passed

    latest = freshness.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["bronze", "sales"]), FRESHNESS_CHECK)]
    )
    assert next(iter(latest.values())).status.value == "SUCCEEDED"  # what the UI shows now
