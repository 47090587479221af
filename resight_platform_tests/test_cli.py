"""The ``resight`` command on real storage: ``generate`` into a temp dir, ``sql``, ``quality``,
``run`` and ``demo`` against a real warehouse, ``status`` and ``stop`` on an embedded server of the
test's own."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from resight_platform.cli import DEFINITIONS_MODULE, format_table, main
from resight_platform.io.postgres import connect, database_url, embedded_pg_server_url, stop_embedded_pg
from resight_platform.sample import Manifest
from resight_platform.sources.registry import load_registry
from resight_platform_tests.emr_cluster import Cluster, MotoEmr, emr_application, emr_env

__all__ = ["emr_application"]  # the fixture, for pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``RESIGHT_HOME`` in a temp dir, and no other setting leaking in from the environment."""
    names = ("RESIGHT_LANDING_URL", "RESIGHT_LAKE_URL", "RESIGHT_PG_URL", "RESIGHT_REGISTRY_DIR", "AWS_ENDPOINT_URL")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def warehouse(home: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("RESIGHT_PG_URL", fresh_pg_url)
    return fresh_pg_url


@pytest.fixture
def dagster_db(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Dagster's instance storage in a database of its own beside the warehouse (as `make demo`
    has it on the embedded server)."""
    from urllib.parse import urlsplit

    from resight_platform.io.postgres import ensure_database, sqlalchemy_url

    url = ensure_database(warehouse, urlsplit(warehouse).path.lstrip("/") + "_dagster")
    monkeypatch.setenv("RESIGHT_DAGSTER_PG_URL", sqlalchemy_url(url))
    monkeypatch.setenv("RESIGHT_PARTITIONS_START", "2026-09-01")
    return url


def platform_env() -> dict[str, str]:
    """The environment's RESIGHT_* and DAGSTER_* variables (libraries set others on import:
    scikit-learn its KMP_* the first time the ML code is loaded)."""
    return {k: v for k, v in os.environ.items() if k.startswith(("RESIGHT_", "DAGSTER_"))}


def files_under(root: Path) -> list[Path]:
    return sorted(Path(d, n) for d, _dirs, names in os.walk(root) for n in names)


# --- generate -----------------------------------------------------------------------------------


def test_generate_writes_files_a_manifest_and_a_summary(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sample" / "landing"
    assert main(["generate", "--out", str(out), "--providers", "3", "--days", "1"]) == 0
    manifest = Manifest.from_json((tmp_path / "sample" / "manifest.json").read_text())
    written = files_under(out)
    assert len(written) == manifest.files["written"] > 0
    assert manifest.providers == list(load_registry().providers)[:3]
    assert (manifest.days, manifest.start, manifest.seed) == (1, "2026-10-01", 7)
    assert manifest.sales["lines"] > 0
    assert (out / "pawmart" / "sales" / "2026-10-01").is_dir()
    stdout = capsys.readouterr().out
    summary = stdout.strip().splitlines()[-1]
    assert summary.startswith(f"wrote {manifest.files['written']} files to {out} in ")
    assert summary.endswith(f"{manifest.sales['lines']:,} valid sales lines, net {manifest.sales['net_amount']} USD")
    assert "manifest written to" in stdout  # progress for people
    assert not home.exists()  # --out and the default manifest place keep RESIGHT_HOME untouched


def test_generate_is_deterministic_and_honours_manifest_and_seed(home: Path, tmp_path: Path) -> None:
    def run(name: str, *extra: str) -> tuple[list[tuple[str, bytes]], Manifest]:
        out = tmp_path / name / "landing"
        manifest = tmp_path / name / "truth.json"
        argv = ["generate", "--out", str(out), "--manifest", str(manifest), "--providers", "2", "--days", "2"]
        assert main([*argv, *extra]) == 0
        contents = [(p.relative_to(out).as_posix(), p.read_bytes()) for p in files_under(out)]
        return contents, Manifest.from_json(manifest.read_text())

    first, first_manifest = run("a")
    second, second_manifest = run("b")
    other, other_manifest = run("c", "--seed", "8")
    assert first == second and first_manifest == second_manifest
    assert other_manifest.seed == 8 and other != first
    assert {key.split("/")[2] for key, _ in first if key.count("/") == 3} >= {"2026-10-01", "2026-10-02"}


def test_generate_defaults_to_the_landing_zone_under_resight_home(home: Path) -> None:
    assert main(["generate", "--providers", "1", "--days", "1"]) == 0
    assert (home / "manifest.json").is_file()
    assert files_under(home / "landing")


def test_generate_refuses_more_providers_than_registered(home: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="providers"):
        main(["generate", "--out", str(tmp_path / "landing"), "--providers", "999", "--days", "1"])


# --- sql ----------------------------------------------------------------------------------------


@pytest.fixture
def analyst(warehouse: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An analyst role of this test's own with a password (roles are cluster-wide), dropped after."""
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("RESIGHT_ANALYST_ROLE", role)
    monkeypatch.setenv("RESIGHT_ANALYST_PASSWORD", f"pw-{uuid.uuid4().hex}")
    yield role
    _drop_role(warehouse, role)


def test_sql_runs_as_the_analyst_by_default_and_as_the_owner_when_asked(
    analyst: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "select current_user as who", "--csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["who", analyst]
    assert main(["sql", "select count(*) from ops.sources"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: permission denied for schema ops")
    assert f"queries run as the analyst role '{analyst}'" in err and "--owner" in err
    assert main(["sql", "delete from gold.fact_sales"]) == 1
    assert "permission denied" in capsys.readouterr().err
    assert main(["sql", "select current_user as who", "--csv", "--owner"]) == 0
    owner = capsys.readouterr().out.splitlines()[1]
    assert owner != analyst
    assert main(["sql", "select count(*) as n from ops.sources", "--owner"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "(1 row)"


def test_sql_says_in_one_line_when_the_analyst_cannot_log_in(
    warehouse: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"analyst_{uuid.uuid4().hex[:8]}"  # no password on an external server: NOLOGIN
    monkeypatch.setenv("RESIGHT_ANALYST_ROLE", role)
    try:
        assert main(["sql", "select 1"]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        (line,) = captured.err.splitlines()
        assert line.startswith(f"error: cannot log in as the analyst role '{role}' (")
        assert "not permitted to log in" in line
        assert line.endswith("set RESIGHT_ANALYST_PASSWORD, or query as the platform's owner with --owner")
    finally:
        _drop_role(warehouse, role)


def test_sql_help_says_who_the_query_runs_as(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sql", "--help"])
    out = capsys.readouterr().out
    assert "--owner" in out and "analyst role" in out and "RESIGHT_ANALYST_PASSWORD" in out


def test_sql_prints_a_table(analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select 1 as a, 'x' as b"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "a | b\n--+--\n1 | x\n(1 row)\n"
    assert captured.err == ""


def test_sql_runs_on_the_migrated_warehouse(analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select count(*) as sources from ops.sources", "--owner"]) == 0
    assert capsys.readouterr().out.splitlines() == ["sources", "-------", "0      ", "(1 row)"]
    assert main(["sql", "select g as n, repeat('ab', g) as text from generate_series(1, 3) g order by g"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "n | text  ",
        "--+-------",
        "1 | ab    ",
        "2 | abab  ",
        "3 | ababab",
        "(3 rows)",
    ]


def test_sql_and_quality_prepare_the_warehouse_with_the_analyst_role(
    warehouse: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    role = f"analyst_{uuid.uuid4().hex[:8]}"  # roles are cluster-wide: one of this test's own
    monkeypatch.setenv("RESIGHT_ANALYST_ROLE", role)
    try:
        for argv in (["sql", "select 1", "--owner"], ["quality"]):
            _drop_role(warehouse, role)
            assert main(argv) == 0
            with connect(warehouse) as conn:
                readable = conn.execute(
                    "select has_table_privilege(%s, 'gold.fact_sales', 'SELECT'),"
                    " has_table_privilege(%s, 'gold.fact_sales', 'INSERT')",
                    (role, role),
                ).fetchone()
            assert readable == (True, False), argv
    finally:
        _drop_role(warehouse, role)
    capsys.readouterr()


def _drop_role(pg_url: str, role: str) -> None:
    with connect(pg_url) as conn:
        if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))  # its grants
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_sql_statement_without_rows_prints_its_status(warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "create table public.notes (x int)", "--owner"]) == 0
    assert capsys.readouterr().out.strip() == "CREATE TABLE"
    assert main(["sql", "insert into public.notes values (1), (2)", "--owner"]) == 0
    assert capsys.readouterr().out.strip() == "INSERT 0 2"
    assert main(["sql", "select count(*) as n from public.notes", "--owner"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "-", "2", "(1 row)"]


def test_sql_csv_output(analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    query = "select 1 as a, 'x, \"y\"' as b, null::text as c, 'line\nbreak' as d"
    assert main(["sql", query, "--csv"]) == 0
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed == [["a", "b", "c", "d"], ["1", 'x, "y"', "", "line\nbreak"]]


def test_sql_csv_with_no_rows_prints_the_header(analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select provider, sku from gold.dim_product where false", "--csv"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [["provider", "sku"]]


def test_sql_error_exits_1_with_the_message_on_stderr(analyst: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select * from no_such_table"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("error: ")
    assert "no_such_table" in captured.err
    assert main(["sql", "selec 1"]) == 1
    assert "syntax error" in capsys.readouterr().err


# --- format_table -------------------------------------------------------------------------------


def test_format_table_aligns_columns() -> None:
    table = format_table(["provider", "n"], [["pawmart", 1], ["x", 12345], [None, None]])
    assert table.splitlines() == [
        "provider | n    ",
        "---------+------",
        "pawmart  | 1    ",
        "x        | 12345",
        "         |      ",
        "(3 rows)",
    ]
    widths = {len(line) for line in table.splitlines()[:-1]}
    assert widths == {len("provider | 12345")}


def test_format_table_without_rows() -> None:
    assert format_table(["a", "long_name"], []) == "a | long_name\n--+----------\n(0 rows)"


@pytest.mark.xdist_group("end_to_end")
def test_demo_runs_end_to_end_on_a_postgres_instance_and_matches_its_manifest(
    home: Path,
    warehouse: str,
    fresh_pg_url: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """What `make demo` runs, small: Dagster's instance on Postgres (its own database here)."""
    from urllib.parse import urlsplit

    from resight_platform.io.postgres import ensure_database, sqlalchemy_url

    dagster_db = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
    monkeypatch.setenv("RESIGHT_DAGSTER_PG_URL", sqlalchemy_url(dagster_db))
    monkeypatch.setenv("RESIGHT_PARTITIONS_START", "2026-09-01")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # the local store under RESIGHT_HOME
    before = platform_env()
    # A weekly history from a fifth partner, its complete weeks from the partitions' start (files on
    # 2026-09-13, -20 and -27): the manifest covers both.
    assert main(["demo", "--providers", "4", "--days", "2", "--history-weeks", "4"]) == 0
    out = capsys.readouterr().out
    assert "== ReSight demo summary ==" in out
    assert "-> MATCH" in out
    assert platform_env() == before  # the demo's instance settings do not leak
    # The history came from its own process, its manifest merged into the sample's and removed;
    # that process also made MLflow's local store, though this demo is too short for the ML job.
    assert not (home / "manifest.json.history").exists() and (home / "manifest.json").exists()
    assert (home / "mlflow" / "mlflow.db").exists()
    with psycopg.connect(dagster_db) as conn:
        runs: dict[str, int] = dict(
            conn.execute("select pipeline_name, count(*) from runs where status = 'SUCCESS' group by 1").fetchall()
        )
    assert conn.closed
    # registry, scan, dimensions, daily and monthly marts and the closing once; medallion and facts
    # over the same rectangles: the history's weekly dates (one source) and the sample's (five),
    # each cut along its days when two workers share them (io/plan.balance); too short for the ML job.
    assert {job: n for job, n in runs.items() if n == 1} == {
        "registry_job": 1,
        "scan_landing_job": 1,
        "dimensions_job": 1,
        "daily_mart_job": 1,
        "monthly_marts_job": 1,
        "close_partitions_job": 1,
    }
    assert runs["medallion_job"] == runs["gold_facts_job"] >= 2 and len(runs) == 8


def test_mlflow_opens_the_ui_on_the_local_store_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[list[str]] = []
    monkeypatch.setattr(os, "execvp", lambda file, args: started.append(list(args)))
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["mlflow", "--port", "5123"]) == 0
    (command,) = started
    assert command[1] == "ui"
    assert command[command.index("--backend-store-uri") + 1] == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert command[command.index("--default-artifact-root") + 1] == (tmp_path / "mlflow" / "artifacts").as_uri()
    assert command[command.index("--port") + 1] == "5123"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert main(["mlflow"]) == 2
    assert "http://mlflow.internal:5000" in capsys.readouterr().out


# --- help ---------------------------------------------------------------------------------------


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_help_says_which_command_to_use_when(capsys: pytest.CaptureFixture[str]) -> None:
    from resight_platform.ml.model import MIN_WEEKS

    top = help_text(capsys)
    assert "which command:" in top
    for command in ("demo", "run", "daemon", "quality", "status", "doctor", "stop"):
        assert f"resight {command}" in top.split("which command:")[1], command
    demo = help_text(capsys, "demo")
    assert "`resight run` loads what is there" in demo and "exits 2" in demo
    run = help_text(capsys, "run")
    assert "Exits 1 when a job failed" in run
    for text in (demo, run):
        assert f"more than\n{MIN_WEEKS} weeks" in text or f"more than {MIN_WEEKS} weeks" in text.replace("\n", " ")


# --- run, demo's refusal, quality on what a run dead-lettered -------------------------------------


MISPLACED = {  # a partner's files the landing contract refuses: no source can be read from the key
    "pawmart/sales/2026-13-01/a.csv": "bad_date",
    "pawmart/salez/2026-10-01/a.csv": "unknown_feed",
    "pawmart/a.csv": "bad_key",
}


def test_run_loads_the_landing_zone_and_quality_shows_a_partners_misplaced_files(
    home: Path, dagster_db: str, warehouse: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--providers", "2", "--days", "1"]) == 0
    manifest = Manifest.from_json((home / "manifest.json").read_text())
    for key in MISPLACED:
        (home / "landing" / key).parent.mkdir(parents=True, exist_ok=True)
        (home / "landing" / key).write_text("order_id,sku\n1,a\n")
    capsys.readouterr()
    before = platform_env()
    assert main(["run", "--close"]) == 0
    out = capsys.readouterr().out
    assert platform_env() == before  # the Dagster instance's settings stay inside the command
    assert "running medallion_job" in out  # progress
    assert "== ReSight run summary ==" in out
    # --close: the partitions no file was expected for are closed too (a registered partner that
    # sent nothing: every day before its first file), and only those.
    assert "close_partitions_job done" in out
    with psycopg.connect(dagster_db) as conn:
        closed = dict(
            conn.execute(
                "select partition, count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
                " and asset_key = %s and event like %s group by 1",
                ('["silver", "sales"]', "%resight/closed%"),
            ).fetchall()
        )
    assert f"{manifest.start}|whisker_world" in closed and f"{manifest.start}|pawmart" not in closed
    with connect(warehouse) as conn:
        ledger = dict(conn.execute("select status, count(*) from ops.ingestion_ledger group by 1").fetchall())
        facts = conn.execute("select count(*), sum(net_amount) from gold.fact_sales").fetchone()
        refused = dict(
            conn.execute(
                "select file_key, error_code from ops.ingestion_ledger"
                " where status = 'dead_lettered' and provider is null and split_part(file_key, '/', 1) = 'pawmart'"
            ).fetchall()
        )
        rows_quarantined = conn.execute("select count(*) from ops.quarantine").fetchone()
    assert facts is not None and (facts[0], str(facts[1])) == (manifest.sales["lines"], manifest.sales["net_amount"])
    assert ledger["dead_lettered"] == len(manifest.dead_letter) + len(MISPLACED)
    assert f"files loaded:             {ledger['loaded']:>12,}" in out
    assert f"files dead-lettered:      {ledger['dead_lettered']:>12,}" in out
    assert rows_quarantined is not None and f"rows quarantined:         {rows_quarantined[0]:>12,}" in out
    for key, code in MISPLACED.items():
        assert refused[key] == code
        assert f"  {key}: {code}" in out

    today = datetime.now(UTC).date().isoformat()  # keys without a date count under the day they arrived
    quality = ["quality", "--from", manifest.start, "--to", today, "--provider", "pawmart"]
    assert main([*quality, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    shown = {d["key"]: d["reason"] for d in report["unattributed_dead_letters"]}
    assert shown == refused  # the partner's own misplaced files, and only its own
    assert {s["provider"] for s in report["sources"]} == {"pawmart"}
    dated = {d["key"]: d["reported_for"] for d in report["unattributed_dead_letters"]}
    assert (dated["pawmart/salez/2026-10-01/a.csv"], dated["pawmart/a.csv"]) == ("2026-10-01", today)
    assert main(quality) == 0
    text = capsys.readouterr().out
    assert "dead-lettered files with no source (" in text
    for key, code in MISPLACED.items():
        (line,) = [line for line in text.splitlines() if line.startswith(key + " ")]
        assert f"| {code} " in line
    assert main(["quality", "--from", manifest.start, "--to", today, "--provider", "nobody", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["unattributed_dead_letters"] == []


def test_run_exits_1_with_the_error_when_a_job_fails(
    home: Path, dagster_db: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["generate", "--providers", "1", "--days", "1"]) == 0
    lake = home / "not-a-directory"
    lake.write_text("the lake cannot be written under a file")
    monkeypatch.setenv("RESIGHT_LAKE_URL", str(lake))
    capsys.readouterr()
    assert main(["run"]) == 1
    captured = capsys.readouterr()
    assert "pipeline FAILED" in captured.out
    assert "== ReSight run summary ==" in captured.out  # what got recorded before the failure
    last = captured.err.strip().splitlines()[-1]  # Dagster's own log of the failed step comes first
    # The first run to write the lake: registry_job's gold.dim_provider (it keeps a lake copy).
    assert last.startswith("error: registry_job failed")
    assert "gold__dim_provider" in last


def test_run_on_an_empty_landing_zone_starts_nothing(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 0
    assert "is empty: nothing to load" in capsys.readouterr().out
    assert not (home / "pg").exists()


def test_run_of_a_range_loads_only_its_dates_and_refuses_a_bad_range(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partner = home / "landing" / "pawmart" / "sales" / "2026-10-01" / "sales.csv"
    partner.parent.mkdir(parents=True)
    partner.write_text("order_id\n1\n")
    assert main(["run", "--engine", "spark", "--from", "2026-11-01", "--to", "2026-11-30"]) == 0
    out = capsys.readouterr().out
    assert "holds no file for 2026-11-01 .. 2026-11-30: nothing to load" in out
    assert not (home / "pg").exists()  # the October file was not loaded: nothing started
    with pytest.raises(SystemExit, match="--from 2026-11-30 is after --to 2026-11-01"):
        main(["run", "--from", "2026-11-30", "--to", "2026-11-01"])
    with pytest.raises(SystemExit, match="--to 'November' is not a date"):
        main(["run", "--to", "November"])
    with pytest.raises(SystemExit):
        main(["run", "--engine", "pandas"])  # argparse: not one of the engines
    assert "invalid choice: 'pandas'" in capsys.readouterr().err


def test_demo_refuses_a_landing_zone_that_is_not_its_sample(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    partner = home / "landing" / "pawmart" / "sales" / "2026-10-01" / "mine.csv"
    partner.parent.mkdir(parents=True)
    partner.write_text("order_id\n1\n")
    assert main(["demo"]) == 2
    err = capsys.readouterr().err
    assert "holds 1 files that are not the demo's sample (no sample manifest beside it)" in err
    assert "`resight run` loads what is there" in err
    partner.unlink()
    assert main(["generate", "--providers", "1", "--days", "1"]) == 0
    written = Manifest.from_json((home / "manifest.json").read_text()).files["written"]
    partner.write_text("order_id\n1\n")  # a partner's file beside the sample
    assert main(["demo"]) == 2
    assert f"holds {written + 1} files that are not the demo's sample (the sample wrote {written})" in (
        capsys.readouterr().err
    )
    assert partner.exists() and not (home / "pg").exists()  # nothing deleted, nothing started


# --- status and stop ----------------------------------------------------------------------------


@pytest.fixture
def own_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A ``RESIGHT_HOME`` for an embedded server of this test's own, never the session's server;
    outside pytest's tmp tree for the reason ``embedded_pg_dir`` gives; stopped and removed after."""
    for name in ("RESIGHT_LANDING_URL", "RESIGHT_LAKE_URL", "RESIGHT_PG_URL", "RESIGHT_REGISTRY_DIR"):
        monkeypatch.delenv(name, raising=False)
    root = Path(tempfile.mkdtemp(prefix="resight-stop-"))
    monkeypatch.setenv("RESIGHT_HOME", str(root / "home"))
    yield root / "home"
    stop_embedded_pg(root / "home" / "pg")
    shutil.rmtree(root, ignore_errors=True)


def test_stop_stops_only_the_embedded_server_of_its_home(
    own_home: Path, pg_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    data = own_home / "pg"
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"home:        {own_home}" in out and "warehouse:   embedded Postgres, not running" in out
    assert not data.exists()  # status starts nothing
    assert main(["stop"]) == 0
    assert capsys.readouterr().out.strip() == f"no embedded Postgres is running in {data}"

    assert main(["sql", "select 1"]) == 0  # any command that needs the warehouse starts it
    assert embedded_pg_server_url(data) is not None
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert f"embedded Postgres, running (data in {data})" in out
    assert "ledger:      0 files loaded, 0 read (not yet loaded), 0 dead-lettered, 0 rows quarantined" in out

    # The backends of the commands above end a moment after their clients close (later on a loaded
    # machine): wait for them, so the count below is the held connection's alone.
    held = psycopg.connect(database_url(embedded_pg_server_url(data) or "", "resight"), autocommit=True)
    deadline = time.monotonic() + 60
    while held.execute(
        "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"
    ).fetchone() != (0,):
        assert time.monotonic() < deadline, "other backends still open after 60 s"
        time.sleep(0.1)
    try:
        assert main(["status"]) == 0
        assert "connections: 1 open to the server besides this one" in capsys.readouterr().out
        assert main(["stop"]) == 0  # a `resight dev` holding a connection loses it, and is told so
        lines = capsys.readouterr().out.splitlines()
        # At least the held one: the backend of the status command just before may not have exited yet.
        closing = re.fullmatch(
            r"closing (\d+) open connections \(a running `resight dev` or daemon loses its warehouse\)", lines[0]
        )
        assert closing is not None and int(closing.group(1)) >= 1, lines[0]
        assert lines[1].startswith(f"stopped the embedded Postgres in {data}")
        with pytest.raises(psycopg.OperationalError):
            held.execute("select 1")
    finally:
        held.close()
    assert embedded_pg_server_url(data) is None and not (data / "postmaster.pid").exists()
    assert (data / "PG_VERSION").exists()  # its data is kept
    assert main(["stop"]) == 0
    assert "no embedded Postgres is running" in capsys.readouterr().out
    with psycopg.connect(pg_server_url) as other:  # the session's server is untouched
        assert other.execute("select 1").fetchone() == (1,)


def test_status_names_an_external_warehouse_without_its_credentials(
    warehouse: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(warehouse)
    host = parts.netloc.rsplit("@", 1)[-1]
    with_password = urlunsplit(parts._replace(netloc=f"postgres:s3cret-{uuid.uuid4().hex[:6]}@{host}"))
    monkeypatch.setenv("RESIGHT_PG_URL", with_password)  # the test server trusts local connections
    assert main(["sql", "select 1", "--owner"]) == 0  # migrated
    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "warehouse:   external, " in out and urlsplit(warehouse).path in out
    assert "s3cret" not in out
    assert "ledger:      0 files loaded" in out
    assert main(["stop"]) == 0
    assert "RESIGHT_PG_URL: `resight stop` leaves it alone" in capsys.readouterr().out


# --- a service that is down ---------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_warehouse_that_is_down_is_one_sentence_with_the_trace_in_the_log(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port, secret = _closed_port(), f"pw-{uuid.uuid4().hex}"
    monkeypatch.setenv("RESIGHT_PG_URL", f"postgresql://resight:{secret}@127.0.0.1:{port}/resight")
    for argv in (["sql", "select 1"], ["quality"]):
        assert main(argv) == 3, argv
        captured = capsys.readouterr()
        (line,) = captured.err.splitlines()
        log = home / "logs" / "resight.log"
        assert line.startswith(
            f"error: the warehouse (Postgres, RESIGHT_PG_URL) at postgresql://resight:***@127.0.0.1:{port}/resight"
            " cannot be reached or went away: "
        )
        assert line.endswith(f"(full trace in {log})")
        assert secret not in captured.out + captured.err
    trace = (home / "logs" / "resight.log").read_text()
    assert trace.count("Traceback (most recent call last)") == 2 and "OperationalError" in trace
    assert secret not in trace


def test_an_s3_endpoint_that_is_down_is_one_sentence(
    home: Path, monkeypatch: pytest.MonkeyPatch, s3_credentials: None, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _closed_port()
    monkeypatch.setenv("RESIGHT_LANDING_URL", "s3://landing-bucket/landing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    assert main(["run"]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        f"error: the object store (S3, AWS_ENDPOINT_URL) at http://127.0.0.1:{port} cannot be reached"
    )
    assert "Traceback" in (home / "logs" / "resight.log").read_text()


def test_workspace_yaml_and_the_cli_name_the_code_location_alike() -> None:
    """`dagster dev -w workspace.yaml` and `resight dev`/`resight daemon` (``-m``) must be one code
    location: Dagster keeps sensor states, cursors and automation ticks per location name."""
    from dagster._core.workspace.load_target import ModuleTarget, WorkspaceFileTarget

    root = Path(__file__).resolve().parent.parent
    from_yaml = [o.location_name for o in WorkspaceFileTarget(paths=[str(root / "workspace.yaml")]).create_origins()]
    from_cli = ModuleTarget(
        module_name=DEFINITIONS_MODULE, attribute=None, working_directory=None, location_name=None
    ).create_origins()
    assert from_yaml == [o.location_name for o in from_cli] == [DEFINITIONS_MODULE]


def test_emr_silver_says_what_to_set_when_emr_is_not_configured(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in emr_env(MotoEmr("http://unset", "unset", "s3://unset/lake")):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(SystemExit, match="EMR Serverless is not configured: set RESIGHT_EMR_SERVERLESS_APPLICATION_ID"):
        main(["emr-silver", "--from", "2026-10-01", "--to", "2026-10-02"])


def test_emr_silver_submits_the_range_and_exits_1_with_the_clusters_reason(
    dagster_db: str,
    emr_application: MotoEmr,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The command runs ``emr_silver_job`` on the platform's instance; the played cluster ends the
    job run FAILED (no Spark here: the job's success path is ``defs/test_emr.py``'s)."""
    import boto3

    endpoint, application = emr_application.endpoint, emr_application.application
    for name, value in emr_env(emr_application).items():
        monkeypatch.setenv(name, value)
    reason = "Job failed, please check complete logs in configured logging destination. ExitCode: 1."
    cluster = Cluster(endpoint, fail=reason)
    cluster.install(boto3.DEFAULT_SESSION)  # type: ignore[arg-type]
    argv = ["emr-silver", "--from", "2026-10-01", "--to", "2026-10-02", "--source", "pawmart", "--feed", "sales"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    (job,) = cluster.submitted
    assert job["jobDriver"]["sparkSubmit"]["entryPointArguments"] == [
        "--from",
        "2026-10-01",
        "--to",
        "2026-10-02",
        "--feeds",
        "sales",
    ]
    assert f"silver of 2026-10-01 .. 2026-10-02 on EMR Serverless application {application}" in captured.out
    assert f"EMR Serverless job run {job['jobRunId']} ended FAILED: {reason}" in captured.err


# --- subscribe ----------------------------------------------------------------------------------


def test_subscribe_sets_up_the_landing_queue_once_and_refuses_a_local_zone(
    home: Path,
    s3_bucket_url: str,
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["subscribe"]) == 2  # the embedded landing zone is a directory: nothing to subscribe
    assert "is not on S3" in capsys.readouterr().out

    landing = s3_bucket_url.removesuffix("/lake") + "/landing"
    monkeypatch.setenv("RESIGHT_LANDING_URL", landing)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    queue = f"landing-{uuid.uuid4().hex[:8]}"
    assert main(["subscribe", "--queue", queue, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["created_queue"] is True and first["queue_url"].endswith(f"/{queue}")
    assert main(["subscribe", "--queue", queue]) == 0  # again: the same queue, kept
    said = capsys.readouterr().out
    assert f"kept queue {first['queue_arn']}" in said and f"RESIGHT_LANDING_QUEUE_URL={first['queue_url']}" in said
