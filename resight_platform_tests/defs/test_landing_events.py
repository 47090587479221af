"""The landing sensor's event path: S3 object-created notifications through SQS on the moto
server (which delivers bucket notifications to its own SQS), the real Postgres ledger, and runs
executed in process as the daemon would (``test_sensors.Daemon``).

What must hold: files dropped by many providers arrive through the queue and load exactly once; a
duplicate or reordered notification loads nothing twice; a lost notification is found by the
sweep; a daemon stopped mid-tick loses nothing; a message is deleted only once its file is durable.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from resight_platform.defs.metadata import PARTITION_TAG
from resight_platform.io import events
from resight_platform.io.events import EventQueue, parse_message, subscribe
from resight_platform.io.postgres import connect
from resight_platform_tests.conftest import AWS_TEST_REGION
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon, _only, sales_csv

#: standard_csv partners of the packaged registry: sales_csv() loads for each.
PROVIDERS = ["pawmart", "barkbox_market", "tailwaggers", "petvalley", "critter_corner", "the_pet_stop"]


def _sqs(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, region_name=AWS_TEST_REGION)


def _wait_for(predicate: Any, what: str, deadline: float = 60.0) -> None:
    """Until ``predicate()`` is true (the moto server delivers notifications on its own thread)."""
    end = time.monotonic() + deadline
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Queue:
    """The landing queue as the tests see it: depth, and messages taken out or put back by hand."""

    def __init__(self, endpoint: str, url: str) -> None:
        self.client = _sqs(endpoint)
        self.url = url

    def depth(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def visible(self) -> int:
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def take(self, count: int) -> list[str]:
        """Receive ``count`` messages and delete them: their bodies (a notification "lost")."""
        bodies: list[str] = []
        deadline = time.monotonic() + 60
        while len(bodies) < count:
            assert time.monotonic() < deadline, f"only {len(bodies)} of {count} notifications came"
            got = self.client.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            for message in got.get("Messages", []):
                body = message["Body"]
                if "s3:TestEvent" in body:
                    self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
                    continue
                bodies.append(body)
                self.client.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def send(self, body: str) -> None:
        self.client.send_message(QueueUrl=self.url, MessageBody=body)


@pytest.fixture
def queued(
    tmp_path: Path, fresh_pg_url: str, s3_bucket_url: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Daemon, Queue]]:
    """A daemon whose landing zone's notifications go to a fresh SQS queue (``resight landing subscribe``)."""
    landing_url = s3_bucket_url.removesuffix("/lake") + "/landing"
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    subscription = subscribe(landing_url, f"landing-{uuid.uuid4().hex[:12]}", endpoint_url=s3_endpoint)
    env = {
        "RESIGHT_LANDING_QUEUE_URL": subscription.queue_url,
        "RESIGHT_WATCH_EVENTS_WAIT_SECONDS": "0",
        "RESIGHT_WATCH_EVENTS_VISIBILITY_TIMEOUT": "2",
    }
    for daemon in _daemon(tmp_path, fresh_pg_url, landing_url, s3_endpoint, env=env):
        yield daemon, Queue(s3_endpoint, subscription.queue_url)


def _settle(daemon: Daemon, queue: Queue) -> list[dg.RunRequest]:
    """Tick until the queue is empty; the run requests of those ticks."""
    requests: list[dg.RunRequest] = []
    deadline = time.monotonic() + 60
    while True:
        requests += list(daemon.tick().run_requests or [])
        if queue.depth() == 0:
            return requests
        assert time.monotonic() < deadline, "the queue did not drain"
        time.sleep(0.1)


def _statuses(daemon: Daemon) -> dict[str, str]:
    return {key: status for key, (status, _, _) in daemon.ledger().items()}


def test_files_from_many_providers_arrive_through_the_queue_and_load_once(queued: tuple[Daemon, Queue]) -> None:
    daemon, queue = queued
    keys = [f"{provider}/sales/{DAY - timedelta(days=n % 2)}/f{n}.csv" for n, provider in enumerate(PROVIDERS * 2)]
    for n, key in enumerate(keys):
        daemon.landing.write_bytes(key, sales_csv(f"E{n}"))
    _wait_for(lambda: queue.depth() >= len(keys), "the notifications")
    requests = _settle(daemon, queue)
    assert sum(int(r.tags["resight/files"]) for r in requests) == len(keys)  # each file requested once
    with connect(daemon.pg_url) as conn:  # the ticks' requests, flushed as each tick ended
        spent = dict(
            conn.execute(
                "select kind, sum(requests)::int from ops.request_counts where component = 'landing_sensor'"
                " group by kind"
            ).fetchall()
        )
    # One HEAD per notified file, receives and deletes, and a single LIST page: the first tick's
    # sweep. Nothing per registered source (the packaged registry has 40 providers, 140 sources).
    assert spent["HEAD"] == len(keys) and spent["LIST"] == 1, spent
    assert spent["SQS_RECEIVE"] >= 1 and 1 <= spent["SQS_DELETE"] <= len(keys), spent
    for request in requests:
        assert daemon.run(request).success
    assert _statuses(daemon) == dict.fromkeys(keys, "loaded")
    assert not daemon.tick().run_requests  # nothing left: no listing repeats them
    with connect(daemon.pg_url) as conn:
        assert conn.execute("select count(*) from ops.landing_waiting").fetchone() == (0,)


def test_a_duplicate_and_a_reordered_notification_load_nothing_twice(queued: tuple[Daemon, Queue]) -> None:
    daemon, queue = queued
    key = f"pawmart/sales/{DAY}/a.csv"
    daemon.landing.write_bytes(key, sales_csv("V1", rows=2))
    daemon.landing.write_bytes(key, sales_csv("V2", rows=5))  # replaced before anything ran
    first, second = queue.take(2)
    queue.send(second)  # the newer notification first ...
    request = _only(daemon.tick())
    assert daemon.run(request).success
    queue.send(first)  # ... then the older one, late, and a duplicate of the newer one
    queue.send(second)
    assert not _settle(daemon, queue)
    with connect(daemon.pg_url) as conn:
        rows = conn.execute("select status, rows_in from ops.ingestion_ledger where file_key = %s", (key,)).fetchall()
    assert rows == [("loaded", 5)]  # loaded once, the current version


def test_a_lost_notification_is_found_by_the_sweep(
    queued: tuple[Daemon, Queue], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, queue = queued
    assert not daemon.tick().run_requests  # the first tick sweeps the (empty) zone at once
    key = f"pawmart/sales/{DAY}/lost.csv"
    daemon.landing.write_bytes(key, sales_csv("L"))
    queue.take(1)  # the notification is lost
    assert not daemon.tick().run_requests  # no event, and the sweep is not due for an hour
    sweep_at = json.loads(daemon.cursor or "{}")["swept_at"]
    cursor = json.loads(daemon.cursor or "{}")
    cursor["swept_at"] = "2000-01-01T00:00:00+00:00"  # an hour later
    daemon.cursor = json.dumps(cursor)
    request = _only(daemon.tick())
    assert request.tags["resight/files"] == "1"
    assert json.loads(daemon.cursor or "{}")["swept_at"] > sweep_at
    assert daemon.run(request).success
    assert _statuses(daemon) == {key: "loaded"}


def test_a_daemon_stopped_mid_tick_loses_nothing(
    queued: tuple[Daemon, Queue], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, queue = queued
    assert not daemon.tick().run_requests  # the first sweep: the next is an hour away
    keys = [f"{provider}/sales/{DAY}/f.csv" for provider in PROVIDERS[:3]]
    for key in keys:
        daemon.landing.write_bytes(key, sales_csv(key.split("/")[0]))
    _wait_for(lambda: queue.depth() >= len(keys), "the notifications")

    def die(self: EventQueue, messages: object) -> int:
        raise KeyboardInterrupt  # stopped after the ledger commit, before the queue heard of it

    with monkeypatch.context() as patched:
        patched.setattr(EventQueue, "delete", die)
        with pytest.raises(KeyboardInterrupt):
            daemon.tick()
    assert set(_statuses(daemon).values()) == {"queued"}  # its run requests never reached Dagster
    # A new code server and daemon: the notifications come back once hidden long enough (2 s
    # here); the files are queued already and their runs do not exist, so they are requested
    # again once orphan_after has passed (0 s here).
    monkeypatch.setenv("RESIGHT_WATCH_ORPHAN_AFTER", "0")
    env = {
        "RESIGHT_LANDING_QUEUE_URL": queue.url,
        "RESIGHT_WATCH_EVENTS_WAIT_SECONDS": "0",
        "RESIGHT_WATCH_EVENTS_VISIBILITY_TIMEOUT": "2",
    }
    for restarted in _daemon(tmp_path / "restart", daemon.pg_url, daemon.landing.url, None, env=env):
        restarted.instance, restarted.cursor = daemon.instance, daemon.cursor
        _wait_for(lambda: queue.visible() >= len(keys), "the notifications to come back")
        requests = _settle(restarted, queue)
        assert sum(int(r.tags["resight/files"]) for r in requests) == len(keys)
        for request in requests:
            assert restarted.run(request).success
        assert _statuses(restarted) == dict.fromkeys(keys, "loaded")
        assert not restarted.tick().run_requests


def test_a_file_whose_partition_is_being_written_waits_on_the_list_not_in_the_queue(
    queued: tuple[Daemon, Queue],
) -> None:
    daemon, queue = queued
    writing = dg.DagsterRun(
        job_name="landing_job",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={PARTITION_TAG: f"{DAY}|pawmart"},
    )
    daemon.instance.add_run(writing)
    key = f"pawmart/sales/{DAY}/a.csv"
    daemon.landing.write_bytes(key, sales_csv("W"))
    _wait_for(lambda: queue.depth() >= 1, "the notification")
    assert not _settle(daemon, queue)  # deferred: on the waiting list, its notification deleted
    with connect(daemon.pg_url) as conn:
        assert conn.execute("select file_key from ops.landing_waiting").fetchall() == [(key,)]
    daemon.instance.report_run_failed(writing)
    request = _only(daemon.tick())  # the next tick takes it from the list
    assert daemon.run(request).success
    assert _statuses(daemon) == {key: "loaded"}
    with connect(daemon.pg_url) as conn:
        assert conn.execute("select count(*) from ops.landing_waiting").fetchone() == (0,)


# --- Messages and the subscription ------------------------------------------------------------


def _s3_body(bucket: str, key: str, event: str = "ObjectCreated:Put") -> str:
    record = {"eventName": event, "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 3, "eTag": "e1"}}}
    return json.dumps({"Records": [record]})


def _raw(body: str) -> dict[str, str]:
    return {"MessageId": "m", "ReceiptHandle": "r", "Body": body}


@pytest.mark.parametrize(
    ("body", "keys", "ignored"),
    [
        (_s3_body("bkt", "landing/p/sales/2026-12-01/a+b%2Bc.csv"), ("p/sales/2026-12-01/a b+c.csv",), 0),
        (
            json.dumps({"Type": "Notification", "Message": _s3_body("bkt", "landing/p/sales/2026-12-01/x.csv")}),
            ("p/sales/2026-12-01/x.csv",),
            0,
        ),
        (
            json.dumps(
                {
                    "source": "aws.s3",
                    "detail-type": "Object Created",
                    "detail": {"bucket": {"name": "bkt"}, "object": {"key": "landing/p/f/d/a b.csv", "size": 1}},
                }
            ),
            ("p/f/d/a b.csv",),
            0,
        ),
        (json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "bkt"}), (), 1),
        (_s3_body("other", "landing/p/sales/2026-12-01/x.csv"), (), 1),
        (_s3_body("bkt", "elsewhere/x.csv"), (), 1),
        (_s3_body("bkt", "landing/p/sales/2026-12-01/x.csv", "ObjectRemoved:Delete"), (), 1),
    ],
    ids=["s3", "sns", "eventbridge", "test-event", "other-bucket", "outside-landing", "removed"],
)
def test_a_message_names_the_landing_keys_it_carries(body: str, keys: tuple[str, ...], ignored: int) -> None:
    message = parse_message(_raw(body), "bkt", "landing")
    assert (message.keys, message.ignored, message.unreadable) == (keys, ignored, False)


@pytest.mark.parametrize("body", ["not json", "[]", json.dumps({"Records": [{"s3": {}}]})])
def test_an_unreadable_message_is_marked_so(body: str) -> None:
    assert parse_message(_raw(body), "bkt", "landing").unreadable


def test_subscribe_is_idempotent_and_keeps_the_buckets_other_notifications(
    s3_bucket_url: str, s3_endpoint: str
) -> None:
    bucket = s3_bucket_url.removeprefix("s3://").split("/")[0]
    sqs, s3 = _sqs(s3_endpoint), boto3.client("s3", endpoint_url=s3_endpoint, region_name=AWS_TEST_REGION)
    other = sqs.create_queue(QueueName=f"other-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    theirs = {"Id": "theirs", "QueueArn": other_arn, "Events": ["s3:ObjectRemoved:*"]}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [theirs]})
    name = f"landing-{uuid.uuid4().hex[:8]}"
    first = subscribe(f"s3://{bucket}/landing", name, endpoint_url=s3_endpoint)
    second = subscribe(f"s3://{bucket}/landing", name, endpoint_url=s3_endpoint)
    assert (first.created_queue, second.created_queue, first.queue_url) == (True, False, second.queue_url)
    configured = s3.get_bucket_notification_configuration(Bucket=bucket)["QueueConfigurations"]
    assert sorted(q["Id"] for q in configured) == sorted(["theirs", events.NOTIFICATION_ID])
    ours = next(q for q in configured if q["Id"] == events.NOTIFICATION_ID)
    assert ours["QueueArn"] == first.queue_arn
    assert ours["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "landing/"}]
