"""``resight doctor`` against real components: the tests' Postgres, the moto S3 endpoint, a local
MLflow store. A healthy deployment passes every check; each broken piece fails its own check with
the fix printed under it, fast, and never with a secret in the output."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from psycopg import sql

from resight_platform.cli import main
from resight_platform.doctor import CONNECT_TIMEOUT, HTTP_TIMEOUT, CheckResult, declared_objects, run_checks
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect, sqlalchemy_url
from resight_platform.resources import prepare_warehouse
from resight_platform.settings import Settings

PASSWORD = "Pw-" + uuid.uuid4().hex


def closed_port() -> int:
    """A local TCP port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def doctor(capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["doctor", *flags])
    return code, capsys.readouterr().out


def report(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    """The ``--json`` report, each check by name (a check may not repeat)."""
    code, out = doctor(capsys, "--json")
    data = json.loads(out)
    names = [check["name"] for check in data["checks"]]
    assert len(names) == len(set(names)), names
    return code, {check["name"]: check for check in data["checks"]} | {"_": data}


def block(out: str, name: str) -> str:
    """The line of check ``name`` and its fix line, if any."""
    lines = out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.split()[1:2] == name.split()[:1] and name in line)
    following = lines[at + 1] if at + 1 < len(lines) and lines[at + 1].lstrip().startswith("fix:") else ""
    return lines[at] + "\n" + following


@pytest.fixture
def analyst(fresh_pg_url: str) -> Iterator[str]:
    """A role name of this test's own (roles are cluster-wide), dropped with its grants afterwards."""
    name = f"doctor_{uuid.uuid4().hex[:10]}"
    yield name
    with connect(fresh_pg_url) as conn:
        if conn.execute("select 1 from pg_roles where rolname = %s", (name,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


@pytest.fixture
def env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fresh_pg_url: str,
    s3_bucket_url: str,
    s3_endpoint: str,
    analyst: str,
) -> str:
    """A production-shaped environment: the warehouse and Dagster's storage on the test server
    (not yet migrated), landing and lake on S3, MLflow's local store; the Polars engine."""
    for name in ("MLFLOW_TRACKING_URI", "RESIGHT_ENGINE", "RESIGHT_SPARK_REMOTE", "RESIGHT_REGISTRY_DIR"):
        monkeypatch.delenv(name, raising=False)
    bucket = s3_bucket_url.removesuffix("/lake")
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RESIGHT_PG_URL", fresh_pg_url)
    monkeypatch.setenv("RESIGHT_DAGSTER_PG_URL", sqlalchemy_url(fresh_pg_url))
    monkeypatch.setenv("RESIGHT_LANDING_URL", f"{bucket}/landing")
    monkeypatch.setenv("RESIGHT_LAKE_URL", s3_bucket_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("RESIGHT_ANALYST_ROLE", analyst)
    monkeypatch.setenv("RESIGHT_ANALYST_PASSWORD", PASSWORD)
    return fresh_pg_url


@pytest.fixture
def healthy(env: str) -> str:
    """``env`` with the warehouse prepared as every entry point prepares it."""
    with connect(env) as conn:
        prepare_warehouse(conn, Settings.from_env())
    return env


def test_a_healthy_deployment_passes_every_check(
    healthy: str, capsys: pytest.CaptureFixture[str], s3_bucket_url: str
) -> None:
    code, out = doctor(capsys)
    assert code == 0, out
    lines = [line for line in out.splitlines() if line and not line.startswith(" ")]
    statuses = {line.split()[0] for line in lines[:-1]}
    assert statuses == {"OK"}, out
    assert "fix:" not in out
    for name in ("settings", "warehouse", "migrations", "loader rights", "analyst role", "dagster storage"):
        assert any(line.split("  ")[1:2] and name in line for line in lines), (name, out)
    assert f"all {len(declared_objects())} scripts applied" in out
    assert "can log in" in block(out, "analyst role")
    assert "probe under .doctor/" in block(out, "lake")
    assert "listed (empty); not written" in block(out, "landing")  # never a probe where the sensor looks
    assert "healthy" in out.splitlines()[-1]
    # The probes left nothing behind.
    import boto3

    bucket = s3_bucket_url.removeprefix("s3://").split("/")[0]
    client = boto3.client("s3")
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_json_matches_the_printed_report(healthy: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, printed = doctor(capsys)
    code, checks = report(capsys)
    data = checks.pop("_")
    assert code == 0 and data["healthy"] is True
    assert data["counts"] == {"ok": len(checks), "warn": 0, "fail": 0}
    for name, check in checks.items():
        assert check["status"] == "ok" and check["fix"] is None
        assert check["finding"] in printed, name


def test_a_closed_port_fails_fast_with_the_fix_and_no_password(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://resight:{PASSWORD}@127.0.0.1:{closed_port()}/resight"
    monkeypatch.setenv("RESIGHT_PG_URL", url)
    monkeypatch.setenv("RESIGHT_DAGSTER_PG_URL", sqlalchemy_url(url))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ops:{PASSWORD}@127.0.0.1:{closed_port()}")
    started = time.monotonic()
    code, out = doctor(capsys)
    assert time.monotonic() - started < CONNECT_TIMEOUT * 3, out
    assert code == 1
    warehouse = block(out, "warehouse")
    assert warehouse.startswith("FAIL") and "unreachable" in warehouse
    assert "fix: start the server or fix RESIGHT_PG_URL" in warehouse
    assert "fix RESIGHT_DAGSTER_PG_URL" in block(out, "dagster storage")
    mlflow = block(out, "mlflow tracking")
    assert mlflow.startswith("FAIL") and "fix: start the MLflow tracking server or fix MLFLOW_TRACKING_URI" in mlflow
    _, checks = report(capsys)
    assert checks["mlflow tracking"]["status"] == "fail"
    for text in (out, json.dumps(checks)):
        assert PASSWORD not in text
        assert "resight:***@127.0.0.1" in text


def test_an_unmigrated_warehouse_fails_with_the_command_that_migrates(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(capsys)
    assert code == 1
    migrations = block(out, "migrations")
    checkable = [script for script, objects in declared_objects().items() if objects]
    assert len(checkable) >= 8  # every script but the one that only revokes (006)
    assert migrations.startswith("FAIL") and f"{len(checkable)} of {len(checkable)} migration scripts" in migrations
    assert "fix: apply them: `resight sql --owner 'select 1'`" in migrations
    assert block(out, "loader rights").startswith("FAIL")
    assert block(out, "warehouse").startswith("OK")  # reachable, a supported version


def test_a_missing_analyst_role_is_reported(env: str, analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    with connect(env) as conn:
        migrate(conn)  # the DDL, but not the role
    code, checks = report(capsys)
    assert code == 1
    assert checks["migrations"]["status"] == "ok"
    role = checks["analyst role"]
    assert role["status"] == "fail" and f"role {analyst} does not exist" in role["finding"]
    assert "resight sql --owner" in role["fix"] and "CREATEROLE" in role["fix"]


def test_an_analyst_grant_on_ops_is_reported(healthy: str, analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    with connect(healthy) as conn:
        conn.execute(sql.SQL("GRANT SELECT ON ops.ingestion_ledger TO {}").format(sql.Identifier(analyst)))
    code, out = doctor(capsys)
    assert code == 1
    role = block(out, "analyst role")
    assert role.startswith("FAIL") and "has rights on ops (ops.ingestion_ledger)" in role
    assert f"REVOKE ALL ON ALL TABLES IN SCHEMA ops FROM {analyst}" in role


def test_a_bucket_that_does_not_exist_fails_with_the_fix(
    healthy: str, s3_bucket_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import boto3

    landed = "pawmart/sales/2026-10-01/a.csv"
    landing = s3_bucket_url.removeprefix("s3://").split("/")[0]
    boto3.client("s3").put_object(Bucket=landing, Key=f"landing/{landed}", Body=b"sku,qty\n")
    monkeypatch.setenv("RESIGHT_LAKE_URL", f"s3://missing-{uuid.uuid4().hex[:12]}/lake")
    code, out = doctor(capsys)
    assert code == 1
    lake = block(out, "lake")
    assert lake.startswith("FAIL") and "NoSuchBucket" in lake
    assert "fix: create the bucket or fix RESIGHT_LAKE_URL" in lake
    assert block(out, "landing").startswith("OK") and f"read {landed}" in block(out, "landing")
    assert boto3.client("s3").list_objects_v2(Bucket=landing)["KeyCount"] == 1  # the partner's file, untouched


def test_unloadable_settings_are_shown_verbatim(
    env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESIGHT_ENGINE", "duckdb")
    code, checks = report(capsys)
    assert code == 1
    with pytest.raises(ValueError) as error:
        Settings.from_env()
    assert checks["settings"]["status"] == "fail" and str(error.value) in checks["settings"]["finding"]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A local port that accepts connections and never says a word (a hung server)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield int(server.getsockname()[1])


def test_a_server_that_never_answers_fails_within_the_timeouts(
    env: str, silent_port: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RESIGHT_PG_URL", f"postgresql://resight@127.0.0.1:{silent_port}/resight")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{silent_port}")
    started = time.monotonic()
    code, checks = report(capsys)
    assert time.monotonic() - started < CONNECT_TIMEOUT + HTTP_TIMEOUT + 5
    assert code == 1
    assert checks["warehouse"]["status"] == "fail" and "unreachable" in checks["warehouse"]["finding"]
    assert checks["mlflow tracking"]["status"] == "fail" and "timed out" in checks["mlflow tracking"]["finding"]
    assert checks["lake"]["status"] == "ok"  # the others still ran


def test_a_stray_table_in_the_platforms_schemas_is_a_warning(healthy: str, capsys: pytest.CaptureFixture[str]) -> None:
    with connect(healthy) as conn:
        conn.execute("create table ops.doctor_stray (id int)")
    code, checks = report(capsys)
    assert code == 0  # a warning passes
    migrations = checks["migrations"]
    assert migrations["status"] == "warn" and "ops.doctor_stray" in migrations["finding"]
    assert "newer platform version" in migrations["fix"]


def test_one_check_raising_or_hanging_never_stops_the_others() -> None:
    release = threading.Event()

    def raises() -> list[CheckResult]:
        raise RuntimeError(f"broken at postgresql://u:{PASSWORD}@db/x")

    def hangs() -> list[CheckResult]:
        release.wait(30)
        return []

    def fine() -> list[CheckResult]:
        return [CheckResult("fine", "ok", "answered")]

    started = time.monotonic()
    results = run_checks([("raises", raises), ("hangs", hangs), ("fine", fine)], timeout=1.0)
    release.set()
    assert time.monotonic() - started < 3
    by_name = {result.name: result for result in results}
    assert by_name["fine"].status == "ok"
    assert by_name["hangs"].status == "fail" and "no answer within 1s" in by_name["hangs"].finding
    assert by_name["raises"].status == "fail" and "RuntimeError" in by_name["raises"].finding
    assert PASSWORD not in by_name["raises"].finding and "u:***@db" in by_name["raises"].finding
