"""Request counting (``io/requests.py``, ``io/sql/012_requests.sql``) on the moto server over
HTTP and the real Postgres: each store call counts the requests it sends by kind, SQS's too; a
retry counts as a request; metering twice counts nothing twice; concurrent threads add up;
flushes add up in ``ops.request_counts``; ``health.requests`` prices them and counts the day's
files; an operator's price survives the migration's re-run.

Counts are process-wide: each test counts under a component of its own and reads only that."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import polars as pl
import psycopg
import pytest

from resight_platform.io import requests
from resight_platform.io.lake import LakeIOManager
from resight_platform.io.ops import FileRecord, migrate, record_files
from resight_platform.io.postgres import connect
from resight_platform.io.storage import S3Store
from resight_platform.resources import StoreResource
from resight_platform_tests.conftest import AWS_TEST_KEY, AWS_TEST_REGION


def _component() -> str:
    return f"test_{uuid.uuid4().hex[:10]}"


def _counts(component: str) -> dict[str, int]:
    return {kind: n for (c, kind), n in requests.snapshot().items() if c == component}


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=AWS_TEST_REGION,
        aws_access_key_id=AWS_TEST_KEY,
        aws_secret_access_key=AWS_TEST_KEY,
    )


@pytest.fixture
def warehouse(fresh_pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    with connect(fresh_pg_url) as conn:
        migrate(conn)
        yield conn


def _seed(bucket_url: str, keys: list[str]) -> None:
    """Put ``keys`` straight into the moto server's backend (this process's): no requests to count."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket, _, prefix = bucket_url.removeprefix("s3://").partition("/")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for key in keys:
        backend.put_object(bucket, f"{prefix}/{key}", b"x")


def test_each_store_call_counts_its_requests_by_kind(s3_bucket_url: str, s3_endpoint: str, tmp_path: Path) -> None:
    component = _component()
    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, page_size=1000, component=component)
    keys = [f"p/{n:05d}.csv" for n in range(2500)]
    _seed(s3_bucket_url, keys)
    assert sum(1 for _ in store.list("p/")) == 2500
    assert _counts(component) == {"LIST": 3}  # 1,000 + 1,000 + 500

    assert store.read_bytes(keys[0]) == b"x"
    assert store.exists(keys[1])
    assert _counts(component) == {"LIST": 3, "GET": 1, "HEAD": 1}

    store.write_bytes("w/a", b"1")
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * (9 * 1024 * 1024))  # boto3 uploads over 8 MB in 8 MB parts
    store.write_file("w/big", big)
    assert _counts(component)["PUT"] == 1 + 4  # create, two parts, complete

    assert store.delete_prefix("p/") == 2500  # three more pages, then three batches of 1,000
    assert _counts(component) == {"LIST": 6, "GET": 1, "HEAD": 1, "PUT": 5, "DELETE": 3}


def test_sqs_receive_delete_and_visibility_are_counted(s3_endpoint: str, s3_credentials: None) -> None:
    component = _component()
    queue = _client("sqs", s3_endpoint).create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs = requests.meter(_client("sqs", s3_endpoint), component)
    sqs.send_message(QueueUrl=queue, MessageBody="{}")
    received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1, WaitTimeSeconds=0)["Messages"]
    handle = received[0]["ReceiptHandle"]
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=0)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    assert _counts(component) == {"OTHER": 1, "SQS_RECEIVE": 1, "SQS_OTHER": 1, "SQS_DELETE": 1}
    assert requests.other_operations()["sqs.SendMessage"] >= 1  # what an OTHER was


def test_metering_twice_counts_once_and_a_passed_client_is_metered(s3_bucket_url: str, s3_endpoint: str) -> None:
    first, second = _component(), _component()
    client = requests.meter(requests.meter(_client("s3", s3_endpoint), first), first)
    bucket = s3_bucket_url.removeprefix("s3://").split("/")[0]
    store = S3Store(bucket, "lake", client=client)  # no component: the client keeps its own
    assert not store.exists("nothing")
    assert _counts(first) == {"HEAD": 1}

    S3Store(bucket, "lake", client=client, component=second).exists("nothing")  # moved, not doubled
    assert _counts(first) == {"HEAD": 1}
    assert _counts(second) == {"HEAD": 1}

    stranger = S3Store(bucket, "lake", client=_client("s3", s3_endpoint))
    assert stranger.client.meta.events is not client.meta.events
    stranger.exists("nothing")
    assert _counts(second) == {"HEAD": 1}
    assert requests.snapshot()[(requests.UNATTRIBUTED, "HEAD")] >= 1


class _Unavailable(BaseHTTPRequestHandler):
    """An S3 endpoint that answers every request 503 SlowDown."""

    def _refuse(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = do_PUT = _refuse

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_every_attempt_counts_as_aws_bills_it(s3_credentials: None) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        component = _component()
        endpoint = f"http://127.0.0.1:{server.server_port}"
        store = S3Store("busy", endpoint_url=endpoint, max_attempts=2, component=component)
        with pytest.raises(Exception, match="503"):
            store.exists("a.csv")
        assert _counts(component) == {"HEAD": 2}
    finally:
        server.shutdown()
        server.server_close()


def test_threads_counting_at_once_add_up(s3_bucket_url: str, s3_endpoint: str) -> None:
    component = _component()
    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, component=component)
    own = [S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, component=component) for _ in range(3)]

    def probe(target: S3Store) -> None:
        for n in range(40):
            target.exists(f"k{n}")

    with ThreadPoolExecutor(6) as pool:  # three threads on one client, three on clients of their own
        list(pool.map(probe, [store, store, store, *own]))
    assert _counts(component) == {"HEAD": 240}


def _flushed(conn: psycopg.Connection[Any], component: str) -> dict[str, int]:
    rows = conn.execute("select kind, requests from ops.request_counts where component = %s", (component,)).fetchall()
    return {str(kind): int(n) for kind, n in rows}


def test_flushes_add_up_and_drain_the_counter(
    warehouse: psycopg.Connection[Any], s3_bucket_url: str, s3_endpoint: str
) -> None:
    component = _component()
    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, component=component)
    now = datetime.now(UTC)
    for _ in range(2):
        store.exists("a")
    assert requests.flush_requests(warehouse, now=now) >= 2
    assert _counts(component) == {}
    for _ in range(3):
        store.exists("a")
    store.write_bytes("a", b"1")
    requests.flush_requests(warehouse, now=now)
    assert _flushed(warehouse, component) == {"HEAD": 5, "PUT": 1}
    assert requests.flush_requests(warehouse, now=now) == 0  # nothing counted: no statement


def test_a_failed_flush_keeps_the_counts(s3_bucket_url: str, s3_endpoint: str, fresh_pg_url: str) -> None:
    component = _component()
    S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, component=component).exists("a")
    warnings: list[str] = []
    assert requests.flush_to(fresh_pg_url, warn=warnings.append) == 0  # not migrated: no table
    assert "request_counts" in warnings[0]
    assert _counts(component) == {"HEAD": 1}
    with connect(fresh_pg_url) as conn:
        migrate(conn)
    assert requests.flush_to(fresh_pg_url) >= 1
    with connect(fresh_pg_url) as conn:
        assert _flushed(conn, component) == {"HEAD": 1}


def test_the_health_view_prices_requests_and_counts_the_days_files(warehouse: psycopg.Connection[Any]) -> None:
    today = datetime.now(UTC).date()
    counts = Counter({("bronze", "GET"): 3000, ("landing_sensor", "LIST"): 12000, ("retention", "DELETE"): 7})
    warehouse.execute(
        "insert into ops.request_counts (day, component, kind, requests)"
        " select %s, c, k, n from unnest(%s::text[], %s::text[], %s::bigint[]) t(c, k, n)",
        (today, [c for c, _ in counts], [k for _, k in counts], list(counts.values())),
    )
    landed = datetime.combine(today, datetime.min.time(), tzinfo=UTC) + timedelta(hours=1)
    record_files(
        warehouse,
        [FileRecord(f"acme/sales/{n}.csv", "c", 1, "acme", "sales", today, "read") for n in range(3)],
        run_id=None,
        now=landed,
    )
    warehouse.execute("update ops.ingestion_ledger set first_seen = %s", (landed,))
    prices = dict(warehouse.execute("select kind, usd_per_million from ops.request_prices").fetchall())
    rows = warehouse.execute(
        "select component, kind, requests, usd, day_requests, day_usd, files_landed, requests_per_file,"
        " day_requests_per_file"
        " from health.requests where day = %s order by component",
        (today,),
    ).fetchall()
    assert [(c, k, n) for c, k, n, *_ in rows] == [
        ("bronze", "GET", 3000),
        ("landing_sensor", "LIST", 12000),
        ("retention", "DELETE", 7),
    ]
    for _, kind, n, usd, *_ in rows:
        assert usd == n * prices[kind] / 1_000_000
    assert rows[1][3] == Decimal("0.06")  # 12,000 LIST at $5.00 per million
    assert {(r[4], r[5], r[6]) for r in rows} == {(15007, Decimal("0.0612"), 3)}
    assert [r[7] for r in rows] == [pytest.approx(1000), pytest.approx(4000), pytest.approx(7 / 3)]
    assert rows[0][8] == pytest.approx(15007 / 3)


def test_an_operators_price_survives_the_migration(warehouse: psycopg.Connection[Any]) -> None:
    warehouse.execute("update ops.request_prices set usd_per_million = 4.5 where kind = 'LIST'")
    migrate(warehouse)
    prices = dict(warehouse.execute("select kind, usd_per_million from ops.request_prices").fetchall())
    assert prices["LIST"] == Decimal("4.5")
    assert set(prices) == set(requests.KINDS)


def test_a_step_and_a_sensor_tick_flush_their_requests_when_they_end(
    warehouse: psycopg.Connection[Any], fresh_pg_url: str, s3_bucket_url: str, s3_endpoint: str
) -> None:
    landing, lake, sensor = _component(), _component(), _component()
    store = StoreResource(
        url=f"{s3_bucket_url}/landing", endpoint_url=s3_endpoint, component=landing, requests_pg_url=fresh_pg_url
    )
    io_manager = LakeIOManager(
        lake_url=s3_bucket_url, endpoint_url=s3_endpoint, component=lake, requests_pg_url=fresh_pg_url
    )

    @dg.asset
    def counted(landing: StoreResource) -> pl.DataFrame:
        landing.store().write_bytes("a.csv", b"1")
        return pl.DataFrame({"n": [1]})

    assert dg.materialize([counted], resources={"landing": store, "io_manager": io_manager}).success
    assert _flushed(warehouse, landing) == {"PUT": 1}
    assert _flushed(warehouse, lake) == {"PUT": 1}  # the partition file
    assert _counts(landing) == _counts(lake) == {}

    @dg.sensor(target=[counted])
    def watching(landing: StoreResource) -> dg.SkipReason:
        listed = list(landing.store(component=sensor).list())
        return dg.SkipReason(f"{len(listed)} listed")

    with dg.build_sensor_context(resources={"landing": store}) as context:
        watching(context)
    assert _flushed(warehouse, sensor) == {"LIST": 1}


def test_doctor_recognises_the_requests_migration() -> None:
    from resight_platform.doctor import declared_objects

    assert {
        ("table", "ops.request_counts"),
        ("table", "ops.request_prices"),
        ("table", "health.request_counts"),
        ("table", "health.requests"),
        ("index", "ops.ingestion_ledger_first_seen"),
    } <= set(declared_objects()["012_requests.sql"])
