"""``resight health`` and the health views (``io/sql/010_health.sql``) on the real Postgres and a
real Dagster instance: a pipeline in trouble (a late load, a dead letter, a stale source, a failed
run, a failing check, a queued run) exits 1 naming each problem; a clean one exits 0; the analyst
role reads the views and still nothing of ``ops``; a half that cannot be read is reported and the
other half still shown; ``loaded_at`` keeps a file version's first silver load."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from resight_platform.cli import main
from resight_platform.doctor import declared_objects
from resight_platform.health import take_snapshot
from resight_platform.io.ops import FileRecord, migrate, record_files
from resight_platform.io.postgres import connect
from resight_platform.io.roles import AnalystRole, connect_as
from resight_platform.resources import prepare_warehouse
from resight_platform.settings import HealthSettings, Settings
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.health_state import JOB, build_ledger, build_runs

PASSWORD = "health-analyst-pw"


@dataclass(frozen=True)
class Deployment:
    pg_url: str
    dagster_home: Path
    analyst: str

    def env(self, home: Path) -> dict[str, str]:
        return {
            "RESIGHT_PG_URL": self.pg_url,
            "RESIGHT_HOME": str(home),
            "DAGSTER_HOME": str(self.dagster_home),
            "RESIGHT_ANALYST_ROLE": self.analyst,
            "RESIGHT_ANALYST_PASSWORD": PASSWORD,
        }


def _deployment(pg_server_url: str, tmp: Path, *, troubled: bool) -> Iterator[Deployment]:
    databases = temporary_database(pg_server_url, "health")
    url = next(databases)
    analyst = f"analyst_{uuid.uuid4().hex[:8]}"
    env = {"RESIGHT_PG_URL": url, "RESIGHT_ANALYST_ROLE": analyst, "RESIGHT_ANALYST_PASSWORD": PASSWORD}
    with connect(url) as conn:
        prepare_warehouse(conn, Settings.from_env(env))
        build_ledger(conn, troubled=troubled)
    home = tmp / "dagster"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(home))
        with dg.DagsterInstance.get() as instance:
            build_runs(instance, troubled=troubled)
    yield Deployment(url, home, analyst)
    next(databases, None)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(analyst)))


@pytest.fixture(scope="module")
def troubled(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from _deployment(pg_server_url, tmp_path_factory.mktemp("troubled"), troubled=True)


@pytest.fixture(scope="module")
def clean(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    yield from _deployment(pg_server_url, tmp_path_factory.mktemp("clean"), troubled=False)


def _run(deployment: Deployment, argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **extra: str) -> int:
    for name, value in {**deployment.env(tmp_path), **extra}.items():
        monkeypatch.setenv(name, value)
    return main(argv)


def _problem_lines(out: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in out.splitlines():
        words = line.split()
        if line.startswith("  ") and words and words[0].isupper():
            found.setdefault(words[0].lower(), []).append(line.strip())
    return found


def test_a_troubled_pipeline_exits_1_and_names_every_problem(
    troubled: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(troubled, ["health"], monkeypatch, tmp_path, RESIGHT_HEALTH_MAX_QUEUED_MINUTES="0.001")
    out = capsys.readouterr().out
    assert code == 1, out
    problems = _problem_lines(out)
    assert set(problems) == {
        "failed_run",
        "queued_too_long",
        "failing_check",
        "stale_source",
        "dead_letter",
        "freshness_lag",
    }, out
    assert problems["failed_run"][0].startswith(f"FAILED_RUN       {JOB}: run ") and "no later success" in out
    assert f"QUEUED_TOO_LONG  {JOB}: run" in problems["queued_too_long"][0]
    assert "orders:orders_in_range: ERROR" in problems["failing_check"][0]
    assert "3 rows over the quantity ceiling" in problems["failing_check"][0]
    [stale] = problems["stale_source"]
    assert "quiet/sales: last delivery" in stale and "due every 24 h" in stale
    [dead] = problems["dead_letter"]
    assert "/catalog.csv: bad_encoding" in dead and "line 3 is not UTF-8" in dead
    [lag] = problems["freshness_lag"]
    assert "acme/sales: a file took 3.0 h from arrival to silver (limit 60 min)" in lag
    assert "files:     2 handled in the window (1 dead_lettered, 1 loaded); 1 queued now" in out
    assert "rows:      120 in, 116 loaded, 4 quarantined" in out
    assert "sources:   3 active, 1 stale; 1 dead letter(s)" in out
    assert "runs:      3 in the window (1 failure, 1 queued, 1 success); 1 queued" in out
    assert out.rstrip().endswith("docs/operations.md says what to do)")


def test_json_holds_the_snapshot_and_the_counts(
    troubled: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(troubled, ["health", "--json"], monkeypatch, tmp_path)
    data = json.loads(capsys.readouterr().out)
    assert code == 1 and data["healthy"] is False
    counts = data["problem_counts"]
    assert counts == {
        "unreachable": 0,
        "failed_run": 1,
        "queued_too_long": 0,  # the default limit, 30 min
        "failing_check": 1,
        "stale_source": 1,
        "dead_letter": 1,
        "freshness_lag": 1,
    }
    assert data["dagster"]["queued"] == 1 and data["warehouse"]["active_sources"] == {"catalog": 1, "sales": 2}


def test_a_clean_pipeline_is_healthy(
    clean: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(clean, ["health"], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.rstrip().endswith("healthy") and "problems" not in out
    assert "checks:    1 evaluated in the window, 0 failing" in out
    assert "lag:       arrival to silver avg 1 min, max 1 min (limit 60 min); 0 source(s) over" in out


def test_the_analyst_reads_the_health_views_and_still_nothing_of_ops(troubled: Deployment) -> None:
    with connect_as(troubled.pg_url, AnalystRole(troubled.analyst, PASSWORD)) as conn:
        today = datetime.now(UTC).date()
        day = conn.execute(
            "select files, files_loaded, dead_letters, rows_in, rows_loaded, rows_quarantined, lag_seconds_max,"
            " read_seconds_max, files_queued from health.source_days"
            " where provider = 'acme' and feed = 'sales' and business_date = %s",
            (today,),
        ).fetchone()
        assert day is not None
        files, loaded, dead, rows_in, rows_loaded, quarantined, lag, read, queued = day
        assert (files, loaded, dead, rows_in, rows_loaded, quarantined, queued) == (2, 1, 0, 120, 116, 4, 1)
        assert 3 * 3600 - 60 < lag < 3 * 3600 + 60 and read == pytest.approx(20, abs=1)
        error = conn.execute(
            "select last_error_code, last_error from health.source_days where feed = 'catalog'"
        ).fetchone()
        assert error == ("bad_encoding", "line 3 is not UTF-8")  # ledger error text, unmasked (docs say so)
        runs = conn.execute("select status, files, dead_letters, run_key from health.runs order by files").fetchall()
        assert ("queued", 1, 0, "landing-3") in runs and ("loaded_with_dead_letters", 2, 1, None) in runs
        overdue = dict(conn.execute("select provider || '/' || feed, overdue_seconds from health.sources").fetchall())
        assert overdue["quiet/sales"] > 47 * 3600 and overdue["acme/sales"] < 0
        for statement in ("select * from ops.ingestion_ledger", "select * from ops.sources"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
            conn.rollback()


def test_an_unreadable_half_is_a_problem_and_the_other_half_is_still_read(troubled: Deployment) -> None:
    def unreachable() -> psycopg.Connection[Any]:
        return connect("postgresql://resight:s3cret-pw@127.0.0.1:1/resight", connect_timeout="2")

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(troubled.dagster_home))
        with dg.DagsterInstance.get() as instance:
            snapshot = take_snapshot(unreachable, instance, HealthSettings(), timedelta(hours=2))
    assert snapshot.warehouse is None and snapshot.dagster is not None
    assert snapshot.warehouse_error is not None and "s3cret-pw" not in snapshot.warehouse_error
    assert [p.kind for p in snapshot.problems][:1] == ["unreachable"]
    assert {p.kind for p in snapshot.problems} == {"unreachable", "failed_run", "failing_check"}
    with connect(troubled.pg_url) as conn:

        def broken_instance() -> dg.DagsterInstance:
            raise OSError("dagster storage is down")

        snapshot = take_snapshot(lambda: connect(troubled.pg_url), broken_instance, HealthSettings(), timedelta(0))
        assert conn.closed is False
    assert snapshot.dagster is None and snapshot.warehouse is not None
    assert snapshot.dagster_error == "OSError: dagster storage is down"


def test_an_unreachable_warehouse_exits_1_and_the_runs_are_still_printed(
    troubled: Deployment, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    down = "postgresql://resight:s3cret-pw@127.0.0.1:1/resight"
    code = _run(troubled, ["health"], monkeypatch, tmp_path, RESIGHT_PG_URL=down)
    out = capsys.readouterr().out
    assert code == 1
    assert "warehouse: unreadable (OperationalError:" in out and "s3cret-pw" not in out
    assert "runs:      3 in the window" in out and "  UNREACHABLE" in out and "  FAILED_RUN" in out


def test_loaded_at_keeps_a_versions_first_load_and_a_new_version_clears_it(fresh_pg_url: str) -> None:
    key = "acme/sales/2026-10-01/a.csv"
    first = datetime(2026, 10, 1, 6, tzinfo=UTC)

    def record(checksum: str, status: str, at: datetime) -> None:
        with connect(fresh_pg_url) as conn:
            record_files(
                conn,
                [FileRecord(key, checksum, 10, "acme", "sales", date(2026, 10, 1), status, rows_in=0)],
                run_id="r",
                now=at,
            )

    def loaded_at() -> datetime | None:
        with connect(fresh_pg_url) as conn:
            row = conn.execute("select loaded_at from ops.ingestion_ledger where file_key = %s", (key,)).fetchone()
            assert row is not None
            return row[0]  # type: ignore[no-any-return]

    with connect(fresh_pg_url) as conn:
        migrate(conn)
    record("v1", "loaded", first)  # an empty file is loaded when read
    assert loaded_at() == first
    record("v1", "loaded", first + timedelta(hours=5))  # read again (a restatement): the same bytes
    assert loaded_at() == first
    record("v2", "read", first + timedelta(hours=6))  # new bytes: not loaded yet
    assert loaded_at() is None


def test_doctor_recognises_the_health_migration() -> None:
    objects = set(declared_objects()["010_health.sql"])
    assert {
        ("schema", "health"),
        ("column", "ops.ingestion_ledger.loaded_at"),
        ("table", "health.files"),
        ("table", "health.source_days"),
        ("table", "health.runs"),
        ("table", "health.sources"),
        ("index", "ops.ingestion_ledger_processed"),
        ("index", "ops.ingestion_ledger_source_seen"),
    } <= objects


def test_health_shows_todays_and_yesterdays_requests_priced_and_per_file(
    troubled: Deployment,
    clean: Deployment,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _run(troubled, ["health"], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    today = datetime.now(UTC).date()
    with connect(troubled.pg_url) as conn:  # the ledger's files by the UTC day it first saw them
        landed = dict(conn.execute("select first_seen::date, count(*) from ops.ingestion_ledger group by 1").fetchall())

    def per_file(requests: int, day: date) -> str:
        files = landed.get(day, 0)
        return f"{files:,} file(s) landed, {requests / files:,.1f} per file" if files else "no file landed"

    # 1,200 LIST and 6 PUT at $5.00 per million, 4 GET and 2 HEAD at $0.40: $0.0060324
    assert (
        "requests:  today 1,212 (1,200 LIST, 6 PUT, 4 GET, 2 HEAD) $0.01 at list price; " + per_file(1212, today)
    ) in out, out
    yesterday = today - timedelta(days=1)
    assert ("requests:  yesterday 1,000 (1,000 LIST) $0.01 at list price; " + per_file(1000, yesterday)) in out, out

    _run(troubled, ["health", "--json"], monkeypatch, tmp_path)
    data = json.loads(capsys.readouterr().out)["warehouse"]
    [today_json] = [d for d in data["request_days"] if d["day"] == today.isoformat()]
    assert today_json["by_kind"] == {"GET": 4, "HEAD": 2, "LIST": 1200, "PUT": 6}
    assert today_json["usd"] == pytest.approx(0.0060324)
    assert ["landing_sensor", "LIST", 2200] in data["request_totals"]

    _run(clean, ["health"], monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert "requests:  today none counted" in out and "requests:  yesterday none counted" in out


def test_files_on_the_waiting_list_are_counted_and_one_waiting_too_long_is_lagging(fresh_pg_url: str) -> None:
    from resight_platform.health import WAITING, read_warehouse

    now = datetime.now(UTC)
    limits = HealthSettings()
    with connect(fresh_pg_url) as conn:
        prepare_warehouse(conn, Settings.from_env({"RESIGHT_PG_URL": fresh_pg_url}))
        for key, age in (
            ("pawmart/sales/2026-12-01/a.csv", timedelta(minutes=1)),
            ("petvalley/sales/2026-12-01/b.csv", limits.max_lag * 2),
        ):
            conn.execute(
                "insert into ops.landing_waiting (file_key, etag, bytes, last_modified, noticed_at)"
                " values (%s, 'e', 10, %s, %s)",
                (key, now, now - age),
            )
        health = read_warehouse(conn, limits, timedelta(hours=2), now)
    [waiting] = [f for f in health.files if f.status == WAITING]
    assert (waiting.feed, waiting.files) == ("sales", 2)
    assert waiting.oldest_arrival == now - limits.max_lag * 2
    assert [(lag.provider, lag.feed, lag.waiting) for lag in health.lagging] == [("petvalley", "sales", True)]
