"""The platform's own cloud requests, counted by kind: what the S3 and SQS bills are made of.

:func:`meter` hooks botocore's ``before-send`` event of a client, which fires once per HTTP
attempt, so a retried request counts each time it is sent, as AWS bills it. Counts go to a
process-wide counter by *component* (what spent them: ``landing_sensor``, ``bronze``, ``lake``,
``retention``...) and *kind* (:data:`KINDS`); :func:`flush_requests` adds them to
``ops.request_counts`` by UTC day, where ``health.requests`` prices them (``ops.request_prices``)
and sets them against the files landed (docs/operations.md, "Request cost").

Requests made outside boto3 are not seen here: Polars' own S3 reader (``S3Store.reader_options``,
the lake's lazy scans) and Spark's ``s3a``.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import psycopg

from resight_platform.redact import redact_text

__all__ = [
    "KINDS",
    "UNATTRIBUTED",
    "drain",
    "flush_requests",
    "flush_to",
    "kind_of",
    "meter",
    "other_operations",
    "snapshot",
]

logger = logging.getLogger(__name__)

#: Every kind a request is counted as (``ops.request_prices`` holds one price per kind).
KINDS = ("LIST", "GET", "HEAD", "PUT", "DELETE", "SQS_RECEIVE", "SQS_DELETE", "SQS_OTHER", "OTHER")
#: The component of a client metered without one.
UNATTRIBUTED = "unattributed"

_KIND_OF: dict[tuple[str, str], str] = {
    **{("s3", op): "LIST" for op in ("ListObjectsV2", "ListObjects")},
    ("s3", "GetObject"): "GET",
    **{("s3", op): "HEAD" for op in ("HeadObject", "HeadBucket")},
    **{
        ("s3", op): "PUT"
        for op in ("PutObject", "UploadPart", "CreateMultipartUpload", "CompleteMultipartUpload", "CopyObject")
    },
    **{("s3", op): "DELETE" for op in ("DeleteObject", "DeleteObjects")},
    ("sqs", "ReceiveMessage"): "SQS_RECEIVE",
    **{("sqs", op): "SQS_DELETE" for op in ("DeleteMessage", "DeleteMessageBatch")},
    **{("sqs", op): "SQS_OTHER" for op in ("ChangeMessageVisibility", "ChangeMessageVisibilityBatch")},
}

#: The handler's id on a client's event emitter: botocore registers it once per client.
_UNIQUE_ID = "resight-request-meter"

_lock = threading.Lock()
_counts: Counter[tuple[str, str]] = Counter()
#: ``service.Operation`` of each request counted as ``OTHER``, for the process's lifetime (never
#: drained: bounded by the operations the code calls), to tell what an ``OTHER`` count was.
_others: Counter[str] = Counter()
_meters: weakref.WeakKeyDictionary[Any, _Meter] = weakref.WeakKeyDictionary()

_Client = TypeVar("_Client")


def kind_of(service: str, operation: str) -> str:
    """The kind a request of ``operation`` (botocore's name, ``ListObjectsV2``) on ``service``
    (its hyphenised service id, ``s3``) is counted as."""
    return _KIND_OF.get((service, operation), "OTHER")


class _Meter:
    """A client's ``before-send`` handler; its component can change when the client is metered again."""

    __slots__ = ("component",)

    def __init__(self, component: str) -> None:
        self.component = component

    def __call__(self, event_name: str = "", **kwargs: Any) -> None:
        # before-send.<service id>.<Operation>, emitted once per attempt (botocore/endpoint.py)
        _event, service, operation = event_name.split(".", 2)
        kind = kind_of(service, operation)
        with _lock:
            _counts[(self.component, kind)] += 1
            if kind == "OTHER":
                _others[f"{service}.{operation}"] += 1
        if kind == "OTHER":
            logger.debug("request %s.%s counted as OTHER for %s", service, operation, self.component)


def meter(client: _Client, component: str | None = None) -> _Client:
    """Count every HTTP attempt ``client`` (a boto3 client) sends, for ``component``; returns the
    client. Metering a client again counts nothing twice: it changes the component when one is
    given and keeps it otherwise. The component belongs to the client, so every store sharing one
    client counts for the last component given."""
    with _lock:
        existing = _meters.get(client)
        if existing is not None:
            if component:
                existing.component = component
            return client
        handler = _Meter(component or UNATTRIBUTED)
        _meters[client] = handler
    events = client.meta.events  # type: ignore[attr-defined]
    events.register("before-send", handler, unique_id=_UNIQUE_ID)
    return client


def snapshot() -> Counter[tuple[str, str]]:
    """The counts not flushed yet, by ``(component, kind)`` (a copy)."""
    with _lock:
        return Counter(_counts)


def drain() -> Counter[tuple[str, str]]:
    """The counts not flushed yet, by ``(component, kind)``; the counter starts again from zero."""
    global _counts
    with _lock:
        taken, _counts = _counts, Counter()
    return taken


def _restore(counts: Counter[tuple[str, str]]) -> None:
    """Put drained counts back (a flush that failed): the next flush carries them."""
    with _lock:
        _counts.update(counts)


def other_operations() -> Counter[str]:
    """``service.Operation`` of every request this process counted as ``OTHER`` (a copy)."""
    with _lock:
        return Counter(_others)


_UPSERT = (
    "insert into ops.request_counts (day, component, kind, requests)"
    " select %(day)s, component, kind, requests"
    " from unnest(%(components)s::text[], %(kinds)s::text[], %(requests)s::bigint[]) as t(component, kind, requests)"
    " on conflict (day, component, kind) do update set requests = ops.request_counts.requests + excluded.requests"
)


def flush_requests(conn: psycopg.Connection[Any], *, now: datetime) -> int:
    """Add the counts not flushed yet to ``ops.request_counts`` under ``now``'s UTC day, in one
    statement; returns how many requests were flushed. If the statement fails, the counts are put
    back for the next flush and the error is raised."""
    counts = drain()
    if not counts:
        return 0
    items = sorted(counts.items())
    params = {
        "day": now.astimezone(UTC).date(),
        "components": [component for (component, _), _ in items],
        "kinds": [kind for (_, kind), _ in items],
        "requests": [n for _, n in items],
    }
    try:
        with conn.transaction():
            conn.execute(_UPSERT, params)
    except BaseException:
        _restore(counts)
        raise
    return sum(counts.values())


def flush_to(
    pg_url: str | None,
    *,
    now: datetime | None = None,
    warn: Callable[[str], None] | None = None,
) -> int:
    """:func:`flush_requests` on a connection of its own to ``pg_url``, opened only when something
    was counted; for the end of a step or of a sensor tick. A failure is reported to ``warn`` (or
    this module's logger) and never raised: metering must not fail a run; the counts wait for the
    next flush of this process."""
    if pg_url is None or not snapshot():
        return 0
    from resight_platform.io.postgres import connect

    started = time.perf_counter()
    try:
        with connect(pg_url) as conn:
            flushed = flush_requests(conn, now=now or datetime.now(UTC))
    except Exception as error:  # the warehouse down or not migrated: keep the counts
        text = redact_text(f"request counts not flushed ({type(error).__name__}: {error}); kept for the next flush")
        (warn or logger.warning)(text)
        return 0
    logger.debug("flushed %d request(s) in %.1f ms", flushed, (time.perf_counter() - started) * 1000)
    return flushed
