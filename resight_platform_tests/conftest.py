"""Shared fixtures: the real storage every test runs against.

- PostgreSQL: ``RESIGHT_PG_URL`` when set, else one embedded pgserver per pytest worker; each
  session gets a fresh database and each test that asks for ``pg_schema`` a fresh schema.
- S3: one moto server (HTTP, in a thread) per worker; each test that asks for ``s3_bucket_url``
  gets a fresh bucket and dummy credentials set only for that test.

Safe under pytest-xdist: every worker has its own server, database and buckets.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import sql

from resight_platform.io.postgres import connect, embedded_pg_url, stop_embedded_pg
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.ui.artifacts import screenshots_since

AWS_TEST_REGION = "us-east-1"
AWS_TEST_KEY = "testing"
#: When this pytest process started (the summary lists the screenshots written since).
_STARTED = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    # pgserver's platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); it then uses
    # /tmp/runtime-<uid>, which is fine.
    config.addinivalue_line("filterwarnings", "ignore:XDG_RUNTIME_DIR is not set")
    config.stash[_STARTED] = time.time()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test that uses the ``spark`` fixture runs on one xdist worker (``xdist_group("spark")``,
    unless it is grouped already), so the suite starts one JVM, whoever forgets the mark; and that
    group is collected first. Runs before xdist's own hook (which is ``trylast``) reads the marks."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()) and item.get_closest_marker("xdist_group") is None:
            item.add_marker(pytest.mark.xdist_group("spark"))
    # The Spark group first: it runs serially on one worker (one JVM, minutes), and xdist hands out
    # groups in collection order; collected last, it ran alone at the end while the other worker
    # sat idle (the suite took 21 min against ~17 with it first).
    items.sort(key=lambda item: _group(item) != "spark")


def _group(item: pytest.Item) -> str | None:
    mark = item.get_closest_marker("xdist_group")
    return str(mark.args[0]) if mark is not None and mark.args else None


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Say where this run's screenshots of the Dagster UI are (resight_platform_tests/ui/)."""
    shots = screenshots_since(config.stash[_STARTED])
    if shots:
        terminalreporter.write_line(f"Dagster UI screenshots ({len(shots)}): {shots[0].parent}")


def _worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


# --- PostgreSQL ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def embedded_pg_dir() -> Iterator[Path]:
    """Data dir of a running embedded pgserver for this worker, stopped and removed at the end.

    Outside pytest's own tmp tree on purpose: as root, pgserver runs postgres as a ``pgserver``
    user, and every new pytest session re-chmods ``/tmp/pytest-of-<user>`` to 0700, which would
    lock that user out of a server another session is still using.
    """
    root = Path(tempfile.mkdtemp(prefix=f"resight-pg-{_worker_id()}-"))
    data_dir = root / "data"
    embedded_pg_url(data_dir)
    yield data_dir
    stop_embedded_pg(data_dir)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server_url(request: pytest.FixtureRequest) -> str:
    """URL of the server tests use: ``RESIGHT_PG_URL``, else the embedded one."""
    external = os.environ.get("RESIGHT_PG_URL")
    if external:
        return external
    data_dir: Path = request.getfixturevalue("embedded_pg_dir")
    return embedded_pg_url(data_dir)


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for this session (dropped at the end)."""
    yield from temporary_database(pg_server_url, "test")


@pytest.fixture
def pg_conn(pg_url: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection (session time zone UTC) to the session database."""
    with connect(pg_url) as conn:
        yield conn


@pytest.fixture
def pg_schema(pg_conn: psycopg.Connection[Any]) -> Iterator[str]:
    """A fresh, uniquely named schema for one test, dropped with everything in it afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    pg_conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


# --- S3 -----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """HTTP endpoint of a moto S3 server for this worker. Sets nothing in the environment."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy AWS credentials and region for this test only; no profile or config file applies."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AWS_TEST_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_TEST_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_TEST_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def s3_bucket_url(s3_endpoint: str, s3_credentials: None) -> str:
    """``s3://<fresh bucket>/lake`` on the moto endpoint (pass ``s3_endpoint`` as endpoint_url)."""
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=AWS_TEST_REGION,
        aws_access_key_id=AWS_TEST_KEY,
        aws_secret_access_key=AWS_TEST_KEY,
    )
    client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/lake"


@pytest.fixture
def fresh_pg_url(pg_server_url: str) -> Iterator[str]:
    """A database of its own for one test (the warehouse DDL uses fixed schema names)."""
    yield from temporary_database(pg_server_url, "db")


# --- Spark --------------------------------------------------------------------------------------

#: The Spark tests' session: one JVM per worker, 2 cores' worth of local threads, small shuffles.
SPARK_TEST_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.memory": "1g",
    "spark.sql.adaptive.coalescePartitions.initialPartitionNum": "2",
}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """A local Spark session (``local[2]``) for this worker, stopped at the end.

    Tests that use it run in ``xdist_group("spark")`` (``pytest_collection_modifyitems``) so the
    whole suite starts one JVM. Skipped,
    saying why, where pyspark (the ``spark`` extra, which ``make install`` installs) or Java is
    missing."""
    pytest.importorskip("pyspark", reason="the spark extra is not installed (pip install -e '.[spark]')")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java on this machine: the Spark engine needs a JRE (Java 17)")
    from resight_platform.engines.spark import session, spark_config

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    spark = session(spark_config(master="local[2]", extra=SPARK_TEST_CONF))
    yield spark
    spark.stop()


#: Whole-stage code generation off: Spark compiles each query's stages to Java before running
#: them, seconds per query on a loaded 2-core machine, for test tables of a few thousand rows that
#: then run in milliseconds (the gold parity test's ~30 queries took 2.6× as long with it). An
#: execution strategy, not semantics: results are the same either way.
INTERPRETED = {"spark.sql.codegen.wholeStage": "false"}


@pytest.fixture
def interpreted(spark: Any) -> Iterator[Any]:
    """The shared session without whole-stage code generation for one test, then as it was."""
    before = {key: spark.conf.get(key) for key in INTERPRETED}
    for key, value in INTERPRETED.items():
        spark.conf.set(key, value)
    yield spark
    for key, value in before.items():
        spark.conf.set(key, value)
