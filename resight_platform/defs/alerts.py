"""The alert sensor: failed check evaluations and failed runs, from Dagster's event log, to the
configured webhook and email (``io/alerts.py``). Open-source Dagster has no alerting on asset
checks; this is it.

- **Nothing twice, nothing missed.** The sensor's cursor is the storage id of the last event it
  handled (kept by Dagster across restarts); a tick reads the failures after it in order. What
  each destination received is in ``ops.alert_log`` (failure × destination), so a tick that fails
  half way and is retried does not repeat what already went out. The cursor advances only once
  every failure up to it reached every destination.
- **Grouped and rate-limited.** One message per failing check and per job with failed runs per
  tick, and at most ``RESIGHT_ALERT_MAX_PER_HOUR`` (20) messages an hour: past it the failures wait
  (the cursor holds) and go out grouped when the hour allows.
- The first evaluation starts at the end of the event log: an instance's history is not alerted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from resight_platform.defs.metadata import run_partition_range, run_partition_set
from resight_platform.io.alerts import Failure, Message, group_failures, send_email, send_webhook
from resight_platform.io.ops import alert_messages_since, alerted, record_alert
from resight_platform.redact import redact_text
from resight_platform.resources import WarehouseResource
from resight_platform.settings import AlertSettings, Settings

__all__ = ["ALERT_SENSOR", "alert_sensor", "failures_after"]

ALERT_SENSOR = "alert_sensor"

#: Events read per kind and tick.
_BATCH = 1000


#: Keys of a set run named in its description.
_SET_KEYS_SHOWN = 3


def _partitions(tags: Mapping[str, str] | None, run_config: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """What partitions a run wrote, in words: its key, its range, or for a landing run over a set
    of partitions how many and the first few (a run over 500 must not make 500 lines)."""
    partitions = run_partition_set(run_config or {})
    if partitions is not None:
        keys = sorted({key for feed_keys in partitions.values() for key in feed_keys})
        if len(keys) <= 1:
            return tuple(keys)
        more = " …" if len(keys) > _SET_KEYS_SHOWN else ""
        return (f"{len(keys)} partitions: {', '.join(keys[:_SET_KEYS_SHOWN])}{more}",)
    bounds = run_partition_range(tags or {})
    if bounds is None:
        return ()
    start, end = bounds
    return (start,) if start == end else (f"{start} … {end}",)


def _value(metadata: dict[str, Any], name: str) -> Any:
    entry = metadata.get(name)
    return getattr(entry, "value", entry)


def failures_after(instance: dg.DagsterInstance, after: int) -> tuple[list[Failure], int]:
    """Failed check evaluations and failed runs with a storage id above ``after``, oldest first,
    and the storage id up to which they are complete (the next cursor)."""
    checks = instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(event_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=_BATCH,
        ascending=True,
    )
    runs = instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=dg.DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=_BATCH,
        ascending=True,
    ).records
    # A stream that filled its batch may have more beyond its last id: stop there for both.
    complete = [stream[-1].storage_id for stream in (checks, runs) if len(stream) >= _BATCH]
    seen = [r.storage_id for r in (*checks, *runs)]
    upto = min(complete) if complete else max(seen, default=after)
    run_ids = {r.event_log_entry.run_id for r in (*checks, *runs) if r.event_log_entry.run_id}
    runs_seen = instance.get_runs(dg.RunsFilter(run_ids=sorted(run_ids))) if run_ids else []
    tags = {run.run_id: dict(run.tags) for run in runs_seen}
    configs = {run.run_id: run.run_config for run in runs_seen}

    failures: list[Failure] = []
    for record in checks:
        if record.storage_id > upto:
            continue
        entry = record.event_log_entry
        evaluation = entry.dagster_event.event_specific_data if entry.dagster_event else None
        if not isinstance(evaluation, dg.AssetCheckEvaluation) or evaluation.passed:
            continue
        metadata = dict(evaluation.metadata)
        rules = _value(metadata, "failures_by_rule") or _value(metadata, "by_reason") or {}
        rows = _value(metadata, "failing_rows") or _value(metadata, "refused_files")
        failures.append(
            Failure(
                key=str(record.storage_id),
                kind="check",
                at=datetime.fromtimestamp(entry.timestamp, UTC),
                job=entry.job_name,
                run_id=entry.run_id or None,
                asset=evaluation.asset_key.to_user_string(),
                check=evaluation.check_name,
                severity=evaluation.severity.value,
                partitions=_partitions(tags.get(entry.run_id), configs.get(entry.run_id))
                or ((evaluation.partition,) if evaluation.partition else ()),
                rules={str(k): int(v) for k, v in dict(rules).items()},
                failing_rows=int(rows) if rows is not None else None,
                detail=evaluation.description or "",
            )
        )
    for record in runs:
        if record.storage_id > upto:
            continue
        entry = record.event_log_entry
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        error = getattr(data, "error", None)
        run_tags = tags.get(entry.run_id, {})
        failures.append(
            Failure(
                key=str(record.storage_id),
                kind="run",
                at=datetime.fromtimestamp(entry.timestamp, UTC),
                job=entry.job_name,
                run_id=entry.run_id,
                partitions=_partitions(run_tags, configs.get(entry.run_id)),
                detail=(error.message.strip() if error is not None else entry.user_message or "run failed"),
            )
        )
    failures.sort(key=lambda f: int(f.key))
    return failures, upto


def _message_id(message: Message) -> str:
    return hashlib.sha256("\0".join(message.failures).encode()).hexdigest()[:16]


def deliver(
    settings: AlertSettings, warehouse: WarehouseResource, failures: Sequence[Failure], now: datetime
) -> tuple[int, bool]:
    """Send ``failures`` (grouped, within the hour's budget) to every destination: ``(messages
    sent, whether every failure reached every destination)``."""
    sinks = settings.sinks
    with warehouse.connect() as conn:
        done = {sink: alerted(conn, [f.key for f in failures], sink) for sink in sinks}
        pending = [f for f in failures if any(f.key not in done[sink] for sink in sinks)]
        if not pending:
            return 0, True
        budget = settings.max_messages_per_hour - alert_messages_since(conn, now - timedelta(hours=1))
        messages = group_failures(pending, settings.ui_url, budget)
        sent = 0
        for message in messages:
            message_id = _message_id(message)
            for sink in sinks:
                if set(message.failures) <= done[sink]:
                    continue
                if sink == "webhook":
                    assert settings.webhook_url is not None
                    send_webhook(settings.webhook_url, message)
                else:
                    send_email(settings, message)
                record_alert(
                    conn, message_id=message_id, subject=message.subject, keys=message.failures, sink=sink, now=now
                )
                done[sink].update(message.failures)
            sent += 1
        covered = {key for m in messages for key in m.failures}
        return sent, all(f.key in covered for f in pending)


@dg.sensor(
    name=ALERT_SENSOR,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Failed checks and runs → webhook (Slack-compatible) and email, grouped and rate-limited.",
)
def alert_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource) -> dg.SensorResult:
    instance = context.instance
    if context.cursor is None:  # the first evaluation starts at the end of the log
        start = instance.event_log_storage.get_maximum_record_id() or 0
        return dg.SensorResult(cursor=str(start), skip_reason=f"alerting on failures after event {start}")
    after = int(context.cursor)
    failures, upto = failures_after(instance, after)
    if not failures:
        return dg.SensorResult(cursor=str(upto), skip_reason="no new failures")
    settings = Settings.from_env().alerts
    if not settings.sinks:
        for message in group_failures(failures, settings.ui_url, len(failures)):
            context.log.warning(f"alert (no RESIGHT_ALERT_WEBHOOK_URL or RESIGHT_ALERT_SMTP_HOST set): {message.text}")
        return dg.SensorResult(cursor=str(upto), skip_reason=f"{len(failures)} failures logged, no destination set")
    try:
        sent, complete = deliver(settings, warehouse, failures, datetime.now(UTC))
    except OSError as exc:  # a destination is down: keep the cursor, retry next tick (nothing repeats)
        reason = redact_text(str(exc))
        context.log.error(f"alert delivery failed, will retry: {reason}")
        return dg.SensorResult(cursor=str(after), skip_reason=f"delivery failed: {reason}")
    if not complete:
        context.log.warning(f"alert rate limit reached: {len(failures)} failures wait for the next hour's budget")
        return dg.SensorResult(cursor=str(after), skip_reason="rate limit reached; failures held")
    context.log.info(f"{len(failures)} failures alerted in {sent} messages to {', '.join(settings.sinks)}")
    return dg.SensorResult(cursor=str(upto), skip_reason=None if sent else "already alerted")
