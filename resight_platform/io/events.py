"""S3 object-created notifications through an SQS queue: the landing sensor's hot path on S3.

At 12,000 sources a tick that lists one folder per source costs 12,004 requests, ~$1,037 a day at a
tick every 5 s (``docs/operations.md``, "Request cost"; ``bench.landing.requests``). With a queue, a
tick receives what arrived, at most ``events_per_tick`` messages (ten per ``ReceiveMessage``), and
reads nothing per source: its work grows with the files that arrived, never with the registry.
Directory listing stays as the slow sweep (``io/watch.py``) that finds what the events missed: a
lost notification, a file written before the subscription, a queue purged by hand.

**What a notification is trusted for.** Only the key. Notifications arrive at least once, out of
order and late (S3 documents all three), so the sensor asks S3 for the object as it is now
(:meth:`~resight_platform.io.storage.ObjectStore.stat`, one ``HEAD``): a duplicate, or an older
version's notification delivered after a newer one, then resolves to the object's current ETag,
which the ledger already knows, and loads nothing; a file deleted since is dropped.

**When a message is deleted** (acknowledged): once every file it names is durable in Postgres,
queued in the ledger for a run, dead-lettered, known already, or on the waiting list
(``ops.landing_waiting``) because its partition is being written or the tick's run budget is spent.
A daemon that dies before that leaves the message in the queue; it is received again after
``events_visibility_timeout`` and the ledger makes the second delivery harmless.

Three message shapes are read: S3's own notification (``Records[].s3``), the same wrapped by SNS
(``Type: Notification``, fan-out topics), and EventBridge's ``Object Created`` event. Anything
else is counted as ``unreadable`` and deleted (it can never become readable; the sweep finds the
file if there was one).

Set up with ``resight landing subscribe`` (:func:`subscribe`): the queue, its policy and the bucket's
notification, merged into any the bucket already has.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from resight_platform.io.ops import recently_queued, waiting_files
from resight_platform.io.requests import meter
from resight_platform.io.storage import ObjectInfo, S3Store
from resight_platform.io.watch import WatchCursor, sweep_step

if TYPE_CHECKING:
    import psycopg

    from resight_platform.settings import WatchSettings

__all__ = [
    "Arrivals",
    "EventQueue",
    "Message",
    "Subscription",
    "keys_of",
    "parse_message",
    "receive_arrivals",
    "subscribe",
]

log = logging.getLogger(__name__)

#: ``ReceiveMessage`` and ``DeleteMessageBatch`` take at most ten messages.
SQS_BATCH = 10


@dataclass(frozen=True)
class Message:
    """One SQS message: the landing keys it names (relative to the landing zone) and its receipt."""

    message_id: str
    receipt: str
    #: ``(key, size, ETag)`` of each file named, as the notification gave them (the size and ETag
    #: are used only for a key the store cannot look up: an unsafe name, refused without reading it).
    seen: tuple[tuple[str, int, str], ...] = ()
    #: Records about other buckets, prefixes or event kinds (deletions), or an s3:TestEvent.
    ignored: int = 0
    unreadable: bool = False

    @property
    def keys(self) -> tuple[str, ...]:
        """The landing keys named, relative to the landing zone."""
        return tuple(key for key, _, _ in self.seen)


def _records(body: Any) -> Iterator[tuple[str, str, str, int, str]]:
    """``(bucket, event, key, size, etag)`` of each record of a decoded message body; keys decoded."""
    if not isinstance(body, dict):
        raise ValueError("not a JSON object")
    if body.get("Type") == "Notification" and isinstance(body.get("Message"), str):  # SNS fan-out
        yield from _records(json.loads(body["Message"]))
        return
    if body.get("Event") == "s3:TestEvent":
        return
    if body.get("source") == "aws.s3" and "detail" in body:  # EventBridge: keys are not URL-encoded
        detail = body["detail"]
        obj = detail.get("object") or {}
        yield (
            str((detail.get("bucket") or {})["name"]),
            "ObjectCreated:" if body.get("detail-type") == "Object Created" else str(body.get("detail-type")),
            str(obj["key"]),
            int(obj.get("size") or 0),
            str(obj.get("etag") or ""),
        )
        return
    records = body.get("Records")
    if not isinstance(records, list):
        raise ValueError("no Records")
    for record in records:
        s3 = record["s3"]
        obj = s3["object"]
        yield (
            str(s3["bucket"]["name"]),
            str(record.get("eventName", "")),
            unquote_plus(str(obj["key"])),
            int(obj.get("size") or 0),
            str(obj.get("eTag") or obj.get("etag") or ""),
        )


def parse_message(raw: dict[str, Any], bucket: str, prefix: str) -> Message:
    """The landing keys a received SQS message names: object-created records of ``bucket`` under
    ``prefix`` (the landing zone's, no slashes at either end; "" for the whole bucket)."""
    root = f"{prefix}/" if prefix else ""
    message_id, receipt = str(raw.get("MessageId", "")), str(raw["ReceiptHandle"])
    try:
        records = list(_records(json.loads(raw.get("Body") or "")))
    except (ValueError, KeyError, TypeError) as error:
        log.warning("unreadable landing notification %s: %s", message_id, error)
        return Message(message_id, receipt, unreadable=True)
    seen: list[tuple[str, int, str]] = []
    ignored = 0
    for record_bucket, event, key, size, etag in records:
        if record_bucket != bucket or not event.startswith("ObjectCreated:") or not key.startswith(root):
            ignored += 1
            continue
        relative = key[len(root) :]
        if not relative or relative.endswith("/"):
            ignored += 1
            continue
        seen.append((relative, size, etag.strip('"')))
    return Message(message_id, receipt, tuple(seen), ignored + (0 if records else 1))


@dataclass
class EventQueue:
    """The landing zone's notification queue: receive what arrived, delete what is durable."""

    queue_url: str
    bucket: str
    prefix: str
    client: Any = field(repr=False)
    #: Long-poll wait of a receive that finds nothing, in seconds (0: short polling, which may miss
    #: messages held by other SQS servers; they come on a later tick).
    wait_seconds: int = 1
    #: Seconds a received message stays invisible before SQS hands it out again.
    visibility_timeout: int = 300

    @classmethod
    def open(
        cls,
        queue_url: str,
        landing_url: str,
        *,
        endpoint_url: str | None = None,
        wait_seconds: int = 1,
        visibility_timeout: int = 300,
        max_attempts: int = 5,
    ) -> EventQueue:
        """The queue ``queue_url`` carrying notifications of the ``s3://`` landing zone ``landing_url``."""
        if not landing_url.startswith("s3://"):
            raise ValueError(f"RESIGHT_LANDING_QUEUE_URL needs the landing zone on S3, not {landing_url!r}")
        bucket, _, prefix = landing_url[len("s3://") :].partition("/")
        return cls(
            queue_url,
            bucket,
            prefix.strip("/"),
            client=sqs_client(endpoint_url, max_attempts),
            wait_seconds=wait_seconds,
            visibility_timeout=visibility_timeout,
        )

    def receive(self, limit: int) -> list[Message]:
        """Up to ``limit`` messages, ten per request, until the queue gives fewer than asked."""
        out: list[Message] = []
        while len(out) < limit:
            asked = min(SQS_BATCH, limit - len(out))
            response = self.client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=asked,
                # Only the first request waits: once messages flow, an empty answer means drained.
                WaitTimeSeconds=self.wait_seconds if not out else 0,
                VisibilityTimeout=self.visibility_timeout,
            )
            got = response.get("Messages", [])
            out.extend(parse_message(raw, self.bucket, self.prefix) for raw in got)
            if len(got) < asked:
                break
        return out

    def delete(self, messages: Sequence[Message]) -> int:
        """Delete (acknowledge) ``messages``, ten per request; returns how many SQS refused (they
        come back after the visibility timeout, and the ledger makes that harmless)."""
        failed = 0
        for start in range(0, len(messages), SQS_BATCH):
            chunk = messages[start : start + SQS_BATCH]
            response = self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt} for i, m in enumerate(chunk)],
            )
            for failure in response.get("Failed", []):
                failed += 1
                log.warning("SQS did not delete a landing notification: %s", failure.get("Message") or failure)
        return failed

    def depth(self) -> tuple[int, int]:
        """``(visible, in flight)`` messages, as SQS approximates them."""
        attributes = self.client.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def sqs_client(endpoint_url: str | None = None, max_attempts: int = 5) -> Any:
    """A boto3 SQS client with the standard retry mode (``endpoint_url`` None: boto3 applies
    ``AWS_ENDPOINT_URL`` itself), its requests counted for the landing sensor (``io/requests.py``)."""
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "sqs",
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "total_max_attempts": max_attempts}),
    )
    return meter(client, "landing_sensor")


@dataclass(frozen=True)
class Subscription:
    """What :func:`subscribe` set up."""

    queue_url: str
    queue_arn: str
    bucket: str
    prefix: str
    created_queue: bool
    notification_id: str


#: The bucket notification's id: re-running ``subscribe`` replaces its own, never another's.
NOTIFICATION_ID = "resight-landing"


def subscribe(
    landing_url: str,
    queue_name: str,
    *,
    endpoint_url: str | None = None,
    visibility_timeout: int = 300,
    retention_days: int = 14,
) -> Subscription:
    """Create (or reuse) the SQS queue ``queue_name``, allow the landing bucket to send to it, and
    add an object-created notification for the landing prefix to the bucket, keeping the bucket's
    other notifications. Idempotent: a second call changes nothing."""
    import boto3

    if not landing_url.startswith("s3://"):
        raise ValueError(f"the landing zone must be on S3 to subscribe to its notifications, not {landing_url!r}")
    bucket, _, prefix = landing_url[len("s3://") :].partition("/")
    prefix = prefix.strip("/")
    sqs = meter(boto3.client("sqs", endpoint_url=endpoint_url), "subscribe")
    s3 = meter(boto3.client("s3", endpoint_url=endpoint_url), "subscribe")
    existing = _queue_url(sqs, queue_name)
    queue_url = existing or sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "resight-landing-notifications",
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"}},
            }
        ],
    }
    sqs.set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={
            "Policy": json.dumps(policy),
            "VisibilityTimeout": str(visibility_timeout),
            "MessageRetentionPeriod": str(retention_days * 86400),
        },
    )
    current: dict[str, Any] = dict(s3.get_bucket_notification_configuration(Bucket=bucket))
    current.pop("ResponseMetadata", None)
    ours = {
        "Id": NOTIFICATION_ID,
        "QueueArn": arn,
        "Events": ["s3:ObjectCreated:*"],
        **({"Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{prefix}/"}]}}} if prefix else {}),
    }
    queues = [q for q in current.get("QueueConfigurations", []) if q.get("Id") != NOTIFICATION_ID]
    configuration = {**current, "QueueConfigurations": [*queues, ours]}
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration=configuration)  # type: ignore[arg-type]
    return Subscription(queue_url, arn, bucket, prefix, existing is None, NOTIFICATION_ID)


def _queue_url(sqs: Any, name: str) -> str | None:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        return None
    return url


def keys_of(messages: Iterable[Message]) -> list[str]:
    """The distinct keys ``messages`` name, in first-seen order."""
    return list(dict.fromkeys(key for message in messages for key in message.keys))


@dataclass
class Arrivals:
    """What one tick of the event path has to plan: the files to consider (``listed``: arrived,
    waiting, recently queued and one sweep step, by key) and the messages to delete once they are
    durable."""

    listed: dict[str, ObjectInfo]
    cursor: WatchCursor
    messages: list[Message]
    notified: int = 0
    gone: int = 0
    waiting: int = 0
    recent: int = 0
    swept: int = 0
    ignored: int = 0
    unreadable: int = 0
    undeleted: int = 0

    def summary(self) -> str:
        return (
            f"{len(self.messages)} notifications ({self.notified} files, {self.gone} gone, {self.ignored} ignored,"
            f" {self.unreadable} unreadable), {self.waiting} waiting, {self.recent} recently queued,"
            f" {self.swept} swept"
        )


def receive_arrivals(
    queue: EventQueue,
    store: S3Store,
    conn: psycopg.Connection,
    cursor: WatchCursor,
    now: datetime,
    settings: WatchSettings,
) -> Arrivals:
    """One tick's candidates on the event path. Requests: ``ReceiveMessage`` for what arrived (one
    per ten), a ``HEAD`` per file named (its current version: duplicates and out-of-order
    notifications resolve to it), and a sweep step only when one is due. Nothing per source."""
    messages = queue.receive(settings.events_per_tick)
    keys = keys_of(messages)
    noted = {key: (size, etag) for message in messages for key, size, etag in message.seen}

    def look(key: str) -> ObjectInfo | None:
        size, etag = noted.get(key, (0, ""))
        return store.stat(key, size=size, etag=etag)

    with ThreadPoolExecutor(max_workers=max(1, min(settings.list_workers, len(keys) or 1))) as pool:
        found = list(pool.map(look, keys))
    arrived = {info.key: info for info in found if info is not None}
    waiting = waiting_files(conn, settings.backlog_per_tick)
    # Queued recently but perhaps never run (the run was not created): seen again here while the
    # sweep is the only other way back to them.
    recent = recently_queued(
        conn,
        since=now - settings.orphan_after - settings.sweep_interval,
        until=now - settings.orphan_after,
        limit=settings.backlog_per_tick,
    )
    swept, following = sweep_step(store, cursor, settings, now=now, interval=settings.sweep_interval)
    listed = {**swept, **{i.key: i for i in recent}, **{i.key: i for i in waiting}, **arrived}
    return Arrivals(
        listed=listed,
        cursor=following,
        messages=messages,
        notified=len(keys),
        gone=sum(info is None for info in found),
        waiting=len(waiting),
        recent=len(recent),
        swept=len(swept),
        ignored=sum(m.ignored for m in messages),
        unreadable=sum(m.unreadable for m in messages),
    )
