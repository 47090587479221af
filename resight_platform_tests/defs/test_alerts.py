"""The alert sensor against a local webhook (HTTP) server and a local SMTP server: what each
received, once, across sensor restarts, grouped, rate-limited, and retried when a destination is
down. Failures come from real runs (a failing blocking check fails its run) and from reported
check evaluations, in a real Dagster instance; the ledger of deliveries is in the real Postgres."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import dagster as dg
import pytest

from resight_platform.defs.alerts import alert_sensor, failures_after
from resight_platform.defs.jobs import LANDING_SET_JOB
from resight_platform.defs.metadata import set_run_config
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect, sqlalchemy_url
from resight_platform.resources import WarehouseResource
from resight_platform_tests.alert_servers import Mailbox, Webhook, serve_mailbox, serve_webhook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    with serve_webhook() as hook:
        yield hook


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with serve_mailbox() as box:
        yield box


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, webhook: Webhook, mailbox: Mailbox) -> None:
    monkeypatch.setenv("RESIGHT_ALERT_WEBHOOK_URL", webhook.url)
    monkeypatch.setenv("RESIGHT_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RESIGHT_ALERT_SMTP_PORT", str(mailbox.port))
    monkeypatch.setenv("RESIGHT_ALERT_EMAIL_TO", "oncall@resight.example, data@resight.example")
    monkeypatch.setenv("RESIGHT_ALERT_UI_URL", "http://dagster.resight.example")


class Sensor:
    """Evaluates the alert sensor as the daemon does, carrying the cursor Dagster would store."""

    def __init__(self, instance: dg.DagsterInstance, pg_url: str) -> None:
        self.instance, self.pg_url = instance, pg_url
        self.cursor: str | None = None
        self.skipped: str | None = ""

    def tick(self) -> dg.SensorResult:
        """One evaluation; ``skipped`` holds its skip message ("" when it did something)."""
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"warehouse": WarehouseResource(pg_url=self.pg_url)}
        )
        result = alert_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        self.skipped = result.skip_reason.skip_message if result.skip_reason else ""
        return result


@pytest.fixture
def sensor(fresh_pg_url: str) -> Iterator[Sensor]:
    with connect(fresh_pg_url) as conn:
        migrate(conn)
    # Dagster's storage in Postgres, as `resight daemon` runs it (the alert sensor reads the event
    # log by storage id across runs, which the per-run SQLite shards of a default test instance refuse).
    with dg.instance_for_test(
        overrides={"storage": {"postgres": {"postgres_url": sqlalchemy_url(fresh_pg_url)}}}
    ) as instance:
        s = Sensor(instance, fresh_pg_url)
        s.tick()  # the first evaluation starts at the end of the (empty) log
        yield s


DAILY = dg.DailyPartitionsDefinition(start_date="2026-10-01")


@dg.asset(partitions_def=DAILY, check_specs=[dg.AssetCheckSpec("matches_model", asset="orders", blocking=True)])
def orders() -> Iterator[dg.Output[None] | dg.AssetCheckResult]:
    yield dg.Output(None)
    yield dg.AssetCheckResult(
        passed=False,
        metadata={"failures_by_rule": {"quantity.greater_than(0)": 3}, "failing_rows": 3},
        description="3 of 10 rows break the model",
    )


@dg.asset(partitions_def=DAILY, deps=[orders])
def daily_orders() -> None: ...


def _failing_run(instance: dg.DagsterInstance, day: str) -> str:
    result = dg.materialize([orders, daily_orders], instance=instance, partition_key=day, raise_on_error=False)
    assert not result.success  # the blocking check failed the run
    return result.run_id


def test_a_failed_check_and_its_failed_run_reach_the_webhook_and_email_once_across_restarts(
    sensor: Sensor, env: None, webhook: Webhook, mailbox: Mailbox
) -> None:
    run_id = _failing_run(sensor.instance, "2026-10-05")
    sensor.tick()
    subjects = sorted(m["text"] for m in webhook.received)
    assert len(subjects) == 2 and len(mailbox.messages) == 2  # the check, and the run it failed
    check = next(m for m in webhook.received if "matches_model" in m["text"])
    body = check["blocks"][0]["text"]["text"]
    assert "orders" in body and "2026-10-05" in body and "quantity.greater_than(0) ×3" in body
    assert f"http://dagster.resight.example/runs/{run_id}" in body
    emails = {m["Subject"]: m for m in mailbox.messages}
    assert any("orders matches_model" in s for s in emails)
    assert all(m["To"] == "oncall@resight.example, data@resight.example" for m in mailbox.messages)
    assert all(run_id in m.get_payload() for m in mailbox.messages)

    # A restarted sensor (a new evaluation with the stored cursor) repeats nothing...
    restarted = Sensor(sensor.instance, sensor.pg_url)
    restarted.cursor = sensor.cursor
    restarted.tick()
    assert len(webhook.received) == 2 and len(mailbox.messages) == 2
    # ...and misses nothing that failed while it was down.
    _failing_run(sensor.instance, "2026-10-06")
    restarted.tick()
    assert len(webhook.received) == 4 and len(mailbox.messages) == 4
    assert (
        "2026-10-06"
        in webhook.received[-1]["blocks"][0]["text"]["text"] + webhook.received[-2]["blocks"][0]["text"]["text"]
    )


def test_a_bad_day_across_500_sources_is_one_message(sensor: Sensor, env: None, webhook: Webhook) -> None:
    for n in range(500):
        sensor.instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(["silver", "sales"]),
                check_name="matches_model",
                passed=False,
                metadata={"failures_by_rule": {"status.isin": 2}, "failing_rows": 2},
            )
        )
        del n
    sensor.tick()
    assert len(webhook.received) == 1
    body = webhook.received[0]["blocks"][0]["text"]["text"]
    assert "failed 500 time(s)" in body and "status.isin ×1000" in body and "Failing rows: 1000" in body


def test_over_the_hourly_budget_failures_wait_and_nothing_is_lost(
    sensor: Sensor, env: None, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESIGHT_ALERT_MAX_PER_HOUR", "2")
    for name in ("a", "b", "c"):  # three checks: three groups
        sensor.instance.report_runless_asset_event(
            dg.AssetCheckEvaluation(asset_key=dg.AssetKey(["gold", name]), check_name="matches_model", passed=False)
        )
    sensor.tick()
    assert len(webhook.received) == 2  # one group, then the rest summarised: the budget, not more
    assert "2 more failures" in webhook.received[1]["text"]
    sensor.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=dg.AssetKey(["gold", "d"]), check_name="matches_model", passed=False)
    )
    sensor.tick()
    assert len(webhook.received) == 2 and "rate limit" in str(sensor.skipped)
    with connect(sensor.pg_url) as conn:  # an hour later the held failure goes out
        conn.execute("update ops.alert_log set sent_at = sent_at - interval '2 hours'")
    sensor.tick()
    assert len(webhook.received) == 3 and "gold/d" in webhook.received[2]["text"]


def test_a_destination_that_is_down_gets_the_alert_later_and_the_other_does_not_get_it_twice(
    sensor: Sensor, env: None, webhook: Webhook, mailbox: Mailbox
) -> None:
    webhook.failing = True
    sensor.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=dg.AssetKey(["gold", "fact_sales"]), check_name="keys", passed=False)
    )
    sensor.tick()
    assert "delivery failed" in str(sensor.skipped)
    webhook.failing = False
    sensor.tick()
    assert len(webhook.received) == 1
    assert len(mailbox.messages) <= 1  # sent at most once (email goes after the webhook)
    sensor.tick()
    assert len(webhook.received) == 1 and len(mailbox.messages) == 1


def test_passing_checks_alert_nothing_and_without_a_destination_alerts_are_logged(
    sensor: Sensor, webhook: Webhook
) -> None:
    sensor.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=dg.AssetKey(["gold", "x"]), check_name="c", passed=True)
    )
    sensor.tick()
    assert sensor.skipped == "no new failures"
    sensor.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(asset_key=dg.AssetKey(["gold", "x"]), check_name="c", passed=False)
    )
    sensor.tick()  # no RESIGHT_ALERT_* set in this test
    assert "no destination" in str(sensor.skipped) and not webhook.received


def test_a_failed_landing_run_over_a_set_of_partitions_names_how_many_and_the_first(
    sensor: Sensor, env: None, webhook: Webhook
) -> None:
    keys = [f"2026-10-0{d}|p{n:03d}" for d in (1, 2) for n in (7, 300)]
    run = dg.DagsterRun(
        job_name=LANDING_SET_JOB,
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        run_config=set_run_config({"sales": keys, "stores": keys[:1]}, facts=False),
    )
    sensor.instance.add_run(run)
    sensor.instance.report_run_failed(run)
    failures, _ = failures_after(sensor.instance, 0)
    assert [f.partitions for f in failures] == [(f"4 partitions: {', '.join(sorted(keys)[:3])} …",)]
    sensor.tick()
    assert len(webhook.received) == 1
    assert "4 partitions: 2026-10-01|p007" in webhook.received[0]["blocks"][0]["text"]["text"]
