"""The analyst role on the real test Postgres: made the way the platform makes it, then used by
connecting as it (password from the environment): it reads gold and marts, and every other
schema, every write and every CREATE is refused.

Roles are cluster-wide and the server may be shared by test workers (``RESIGHT_PG_URL``): each
test uses a role of its own name, dropped afterwards, and one test makes the same role from
several connections at once.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect
from resight_platform.io.roles import AnalystRole, ensure_analyst_role
from resight_platform.resources import build_resources
from resight_platform.settings import Settings
from resight_platform_tests.databases import temporary_database

PASSWORD = "s3cret-for-tests"
DAY = date(2026, 10, 1)


def _warehouse(url: str) -> None:
    """Migrate and put one row in a gold, a marts, an ops and a silver table (silver stands for any
    other schema)."""
    with connect(url) as conn:
        migrate(conn)
        conn.execute(
            "INSERT INTO gold.dim_provider VALUES (1, 'pawmart', 'PawMart', 'retail', 'America/New_York', 'USD')"
        )
        conn.execute("INSERT INTO marts.aov_by_region VALUES (%s, 'West', 3, 30.00, 10.00)", (DAY,))
        conn.execute(
            "INSERT INTO ops.sources VALUES ('pawmart', 'sales', 'PawMart', 'retail', 'standard_csv', 'csv',"
            " 'America/New_York', 'USD', 24, true)"
        )
        conn.execute("CREATE SCHEMA IF NOT EXISTS silver")
        conn.execute("CREATE TABLE IF NOT EXISTS silver.sales AS SELECT 1 AS x")


@pytest.fixture
def warehouse(fresh_pg_url: str) -> str:
    _warehouse(fresh_pg_url)
    return fresh_pg_url


@pytest.fixture
def role_name(pg_server_url: str, fresh_pg_url: str) -> Iterator[str]:
    """A role name of this test's own, the role dropped afterwards (before the database is)."""
    name = f"analyst_{uuid.uuid4().hex[:10]}"
    yield name
    _drop_role(fresh_pg_url, name)


def _drop_role(url: str, name: str) -> None:
    with psycopg.connect(url, autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(name)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _as_role(url: str, name: str, password: str | None) -> psycopg.Connection[Any]:
    return psycopg.connect(url, user=name, password=password or "", autocommit=True)


def _refused(conn: psycopg.Connection[Any], statement: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(statement)  # type: ignore[arg-type]


def _can_log_in(url: str, name: str) -> bool:
    with psycopg.connect(url, autocommit=True) as admin:
        row = admin.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    assert row is not None
    return bool(row[0])


def test_the_platform_makes_the_role_from_the_environment(
    warehouse: str, role_name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("RESIGHT_ANALYST_ROLE", role_name)
    monkeypatch.setenv("RESIGHT_ANALYST_PASSWORD", PASSWORD)
    settings = Settings.from_env()
    assert PASSWORD not in repr(settings)
    build_resources(settings, warehouse)  # what the platform does when it sets up the warehouse
    with _as_role(warehouse, role_name, PASSWORD) as analyst:
        assert analyst.execute("SELECT provider FROM gold.dim_provider").fetchall() == [("pawmart",)]
        assert analyst.execute("SELECT orders FROM marts.aov_by_region").fetchall() == [(3,)]


def test_the_analyst_reads_gold_and_marts_and_nothing_else(warehouse: str, role_name: str) -> None:
    with connect(warehouse) as conn:
        assert ensure_analyst_role(conn, AnalystRole(role_name, PASSWORD))
    with _as_role(warehouse, role_name, PASSWORD) as analyst:
        assert analyst.execute("SELECT count(*) FROM gold.dim_provider").fetchone() == (1,)
        assert analyst.execute("SELECT count(*) FROM gold.fact_sales").fetchone() == (0,)
        assert analyst.execute("SELECT revenue FROM marts.aov_by_region").fetchone() is not None
        for table in ("ops.sources", "ops.ingestion_ledger", "silver.sales"):
            _refused(analyst, f"SELECT * FROM {table}")
        for table in ("gold.dim_provider", "marts.aov_by_region"):
            _refused(analyst, f"DELETE FROM {table}")
            _refused(analyst, f"TRUNCATE {table}")
        _refused(analyst, "UPDATE gold.dim_provider SET provider_name = 'x'")
        _refused(analyst, "UPDATE marts.aov_by_region SET orders = 0")
        _refused(analyst, "INSERT INTO gold.dim_provider VALUES (2, 'p2', 'P2', 'retail', 'UTC', 'USD')")
        _refused(analyst, "INSERT INTO marts.aov_by_region VALUES ('2026-10-01', 'South', 1, 1, 1)")
        _refused(analyst, "INSERT INTO ops.sources (provider) VALUES ('x')")
        for schema in ("gold", "marts", "public", "ops"):
            _refused(analyst, f"CREATE TABLE {schema}.mine (x int)")
        _refused(analyst, "CREATE SCHEMA mine")
        _refused(analyst, "CREATE VIEW marts.mine AS SELECT 1")
    with connect(warehouse) as conn:  # nothing above changed anything
        assert conn.execute("SELECT count(*) FROM gold.dim_provider").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM marts.aov_by_region").fetchone() == (1,)


def test_tables_created_later_are_readable(warehouse: str, role_name: str) -> None:
    with connect(warehouse) as conn:
        ensure_analyst_role(conn, AnalystRole(role_name, PASSWORD))
        # a new mart, a new day partition of the fact table and a new ops table, made by the platform
        conn.execute("CREATE TABLE marts.new_mart AS SELECT 1 AS x")
        conn.execute(
            "CREATE TABLE gold.fact_sales_20261001 PARTITION OF gold.fact_sales"
            " FOR VALUES FROM ('2026-10-01') TO ('2026-10-02')"
        )
        conn.execute("CREATE TABLE ops.new_ledger AS SELECT 1 AS x")
    with _as_role(warehouse, role_name, PASSWORD) as analyst:
        assert analyst.execute("SELECT x FROM marts.new_mart").fetchone() == (1,)
        assert analyst.execute("SELECT count(*) FROM gold.fact_sales_20261001").fetchone() == (0,)
        _refused(analyst, "SELECT * FROM ops.new_ledger")
        _refused(analyst, "DELETE FROM marts.new_mart")


def test_making_the_role_again_changes_nothing_and_keeps_its_login(warehouse: str, role_name: str) -> None:
    role = AnalystRole(role_name, PASSWORD)
    with connect(warehouse) as conn:
        assert ensure_analyst_role(conn, role)
        assert ensure_analyst_role(conn, role)
        migrate(conn)
        # a start without the password leaves the login as it was
        assert ensure_analyst_role(conn, AnalystRole(role_name))
    assert _can_log_in(warehouse, role_name)
    with _as_role(warehouse, role_name, PASSWORD) as analyst:
        assert analyst.execute("SELECT count(*) FROM marts.aov_by_region").fetchone() == (1,)
        _refused(analyst, "SELECT * FROM ops.sources")


def test_without_a_password_the_role_cannot_log_in(warehouse: str, role_name: str) -> None:
    with connect(warehouse) as conn:
        assert ensure_analyst_role(conn, AnalystRole(role_name))
    assert not _can_log_in(warehouse, role_name)
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        _as_role(warehouse, role_name, None)
    # granted to a person, its rights are theirs
    person = f"{role_name}_p"
    with psycopg.connect(warehouse, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN IN ROLE {}").format(sql.Identifier(person), sql.Identifier(role_name))
        )
    try:
        with _as_role(warehouse, person, None) as alice:
            assert alice.execute("SELECT count(*) FROM marts.aov_by_region").fetchone() == (1,)
            _refused(alice, "SELECT * FROM ops.sources")
    finally:
        _drop_role(warehouse, person)


def test_the_role_name_is_a_validated_identifier() -> None:
    for bad in ("analyst; DROP TABLE gold.fact_sales", "Analyst", "a-b", "", "x" * 64):
        with pytest.raises(ValueError, match="invalid SQL identifier"):
            AnalystRole(bad)


def test_many_setups_at_once_make_one_role(pg_server_url: str, role_name: str, fresh_pg_url: str) -> None:
    """Workers of several databases on one server (and several processes on one database) setting
    the role up at the same moment: every one succeeds."""
    second = temporary_database(pg_server_url, "analyst")
    other = next(second)
    try:
        for url in (fresh_pg_url, other):
            _warehouse(url)
        barrier = threading.Barrier(6)
        errors: list[BaseException] = []

        def setup(url: str) -> None:
            try:
                with connect(url) as conn:
                    barrier.wait()
                    ensure_analyst_role(conn, AnalystRole(role_name, PASSWORD))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=setup, args=(url,)) for url in (fresh_pg_url, other) * 3]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        for url in (fresh_pg_url, other):
            with _as_role(url, role_name, PASSWORD) as analyst:
                assert analyst.execute("SELECT count(*) FROM marts.aov_by_region").fetchone() == (1,)
                _refused(analyst, "SELECT * FROM ops.sources")
        with psycopg.connect(other, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role_name)))
    finally:
        next(second, None)
