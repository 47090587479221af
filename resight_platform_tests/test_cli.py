"""The ``resight`` command: ``generate`` into a temp dir and ``sql`` against a real warehouse."""

from __future__ import annotations

import csv
import io
import os
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from resight_platform.cli import format_table, main
from resight_platform.io.postgres import connect
from resight_platform.sample import Manifest
from resight_platform.sources.registry import load_registry


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


def test_sql_prints_a_table(warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select 1 as a, 'x' as b"]) == 0
    captured = capsys.readouterr()
    assert captured.out == "a | b\n--+--\n1 | x\n(1 row)\n"
    assert captured.err == ""


def test_sql_runs_on_the_migrated_warehouse(warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select count(*) as sources from ops.sources"]) == 0
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
        for argv in (["sql", "select 1"], ["quality"]):
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
    assert main(["sql", "create table public.notes (x int)"]) == 0
    assert capsys.readouterr().out.strip() == "CREATE TABLE"
    assert main(["sql", "insert into public.notes values (1), (2)"]) == 0
    assert capsys.readouterr().out.strip() == "INSERT 0 2"
    assert main(["sql", "select count(*) as n from public.notes"]) == 0
    assert capsys.readouterr().out.splitlines() == ["n", "-", "2", "(1 row)"]


def test_sql_csv_output(warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
    query = "select 1 as a, 'x, \"y\"' as b, null::text as c, 'line\nbreak' as d"
    assert main(["sql", query, "--csv"]) == 0
    parsed = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert parsed == [["a", "b", "c", "d"], ["1", 'x, "y"', "", "line\nbreak"]]


def test_sql_csv_with_no_rows_prints_the_header(warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sql", "select provider, feed from ops.sources", "--csv"]) == 0
    assert list(csv.reader(io.StringIO(capsys.readouterr().out))) == [["provider", "feed"]]


def test_sql_error_exits_1_with_the_message_on_stderr(warehouse: str, capsys: pytest.CaptureFixture[str]) -> None:
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
    warehouse: str, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `make demo` runs, small: Dagster's instance on Postgres (its own database here)."""
    from urllib.parse import urlsplit

    from resight_platform.io.postgres import ensure_database, sqlalchemy_url

    dagster_db = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
    monkeypatch.setenv("RESIGHT_DAGSTER_PG_URL", sqlalchemy_url(dagster_db))
    monkeypatch.setenv("RESIGHT_PARTITIONS_START", "2026-09-01")
    before = dict(os.environ)
    # A weekly history from a fifth partner, its complete weeks from the partitions' start (files on
    # 2026-09-13, -20 and -27): the manifest covers both.
    assert main(["demo", "--providers", "4", "--days", "2", "--history-weeks", "4"]) == 0
    out = capsys.readouterr().out
    assert "== ReSight demo summary ==" in out
    assert "-> MATCH" in out
    assert dict(os.environ) == before  # the demo's instance settings do not leak
    with psycopg.connect(dagster_db) as conn:
        runs = conn.execute("select count(*) from runs where status = 'SUCCESS'").fetchone()
    # registry, scan, dimensions, daily and monthly marts, and medallion and facts twice: once for
    # the history's weekly dates (one source, one run over its three weeks), once for the sample's
    # (five); too short for the ML job.
    assert runs is not None and runs[0] == 9


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
