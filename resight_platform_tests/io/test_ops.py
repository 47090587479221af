"""The ``ops`` schema on the real PostgreSQL: migrations, registry sync, the ledger and quarantine.

Each test gets a database of its own (``fresh_pg_url``): the DDL uses fixed schema names.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest

from resight_platform.io.ops import (
    ONBOARDING_STATES,
    FileRecord,
    ProviderActivity,
    dead_letter_reason,
    known_checksums,
    known_products,
    migrate,
    onboarding_state,
    provider_activity,
    quality_report,
    record_files,
    record_silver,
    sync_sources,
    unattributed_dead_letters,
)
from resight_platform.io.postgres import connect
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, Registry, load_registry
from resight_platform.transforms.silver import empty_quarantine

Conn = psycopg.Connection[Any]

NOW = datetime(2026, 10, 2, 6, 0, tzinfo=UTC)
D1, D2 = date(2026, 10, 1), date(2026, 10, 2)


@pytest.fixture
def conn(fresh_pg_url: str) -> Iterator[Conn]:
    """An autocommit connection to a migrated database of this test's own."""
    with connect(fresh_pg_url) as connection:
        migrate(connection)
        yield connection


def rows(conn: Conn, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return conn.execute(query, params).fetchall()


# --- migrate ------------------------------------------------------------------------------------


def catalog_snapshot(conn: Conn) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "select n.nspname, c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname in ('ops', 'gold', 'marts') order by 1, 2",
    )


def test_migrate_is_idempotent(fresh_pg_url: str) -> None:
    with connect(fresh_pg_url) as conn:
        migrate(conn)
        first = catalog_snapshot(conn)
        conn.execute(
            "insert into ops.sources (provider, feed, provider_name, kind, profile, format, timezone, currency,"
            " expected_every_hours, active) values ('p1', 'sales', 'P', 'retail', 'x', 'csv', 'UTC', 'USD', 24, true)"
        )
        migrate(conn)
        assert catalog_snapshot(conn) == first
        assert rows(conn, "select provider from ops.sources") == [("p1",)]  # data kept
        assert rows(conn, "select product_key, product_name from gold.dim_product") == [(0, "Unknown product")]
    with connect(fresh_pg_url) as other:  # a second connection (a new process start) migrates too
        migrate(other)
        assert catalog_snapshot(other) == first


def test_migrate_creates_schemas_and_tables(conn: Conn) -> None:
    schemas = {r[0] for r in rows(conn, "select schema_name from information_schema.schemata")}
    assert {"ops", "gold", "marts"} <= schemas
    tables = set(
        rows(
            conn,
            "select table_schema, table_name from information_schema.tables"
            " where table_schema in ('ops', 'gold', 'marts')",
        )
    )
    assert {
        ("ops", "sources"),
        ("ops", "ingestion_ledger"),
        ("ops", "quarantine"),
        ("gold", "dim_date"),
        ("gold", "dim_provider"),
        ("gold", "dim_store"),
        ("gold", "dim_product"),
        ("gold", "dim_customer"),
        ("gold", "fact_sales"),
        ("marts", "daily_sales"),
        ("marts", "monthly_sales"),
    } <= tables


def test_fact_sales_is_range_partitioned_on_sale_date(conn: Conn) -> None:
    [(strategy, key)] = rows(
        conn,
        "select p.partstrat, pg_get_partkeydef(c.oid) from pg_partitioned_table p"
        " join pg_class c on c.oid = p.partrelid join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'gold' and c.relname = 'fact_sales'",
    )
    assert strategy == "r"
    assert key == "RANGE (sale_date)"


def test_fact_sales_has_an_index_on_every_foreign_key(conn: Conn) -> None:
    fk_columns = {
        r[0]
        for r in rows(
            conn,
            "select a.attname from pg_constraint k"
            " join pg_attribute a on a.attrelid = k.conrelid and a.attnum = any(k.conkey)"
            " where k.conrelid = 'gold.fact_sales'::regclass and k.contype = 'f'",
        )
    }
    assert fk_columns == {"date_key", "provider_key", "product_key", "store_key", "customer_key"}
    leading_columns = {
        r[0]
        for r in rows(
            conn,
            "select a.attname from pg_index i"
            " join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]"
            " where i.indrelid = 'gold.fact_sales'::regclass",
        )
    }
    assert fk_columns <= leading_columns


# --- sync_sources -------------------------------------------------------------------------------


def test_sync_sources_loads_the_registry(conn: Conn) -> None:
    registry = load_registry()
    assert sync_sources(conn, registry) == 140
    assert rows(conn, "select count(*), count(distinct (provider, feed)) from ops.sources") == [(140, 140)]
    assert rows(
        conn,
        "select provider_name, kind, profile, format, timezone, currency, expected_every_hours, active"
        " from ops.sources where provider = 'pawmart' and feed = 'sales'",
    ) == [("PawMart", "retail", "standard_csv", "csv", "America/New_York", "USD", 24, True)]
    assert rows(conn, "select count(distinct provider) from ops.sources") == [(40,)]


def test_sync_sources_replaces_on_rerun(conn: Conn, tmp_path: Path) -> None:
    assert sync_sources(conn, load_registry()) == 140
    smaller = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, smaller)
    sources_csv = smaller / "sources.csv"
    lines = sources_csv.read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.startswith("pawmart,")]
    sources_csv.write_text("\n".join(kept).replace("pawmart,sales,,24,true", "pawmart,sales,,12,false") + "\n")
    assert sync_sources(conn, load_registry(smaller)) == 4
    assert rows(conn, "select provider, feed, expected_every_hours, active from ops.sources order by feed") == [
        ("pawmart", "catalog", 168, True),
        ("pawmart", "customers", 24, True),
        ("pawmart", "sales", 12, False),
        ("pawmart", "stores", 168, True),
    ]
    assert sync_sources(conn, load_registry(smaller)) == 4
    assert rows(conn, "select count(*) from ops.sources") == [(4,)]


# --- record_files -------------------------------------------------------------------------------


def ledger(conn: Conn, key: str) -> dict[str, Any]:
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        found = cur.execute("select * from ops.ingestion_ledger where file_key = %s", (key,)).fetchall()
    assert len(found) == 1, found
    return found[0]


def read_record(key: str, digest: str = "aaa", rows_in: int = 10, **kw: Any) -> FileRecord:
    return FileRecord(key, digest, 100, "pawmart", "sales", D1, "read", rows_in=rows_in, **kw)


KEY = "pawmart/sales/2026-10-01/sales.csv"


def set_counts(conn: Conn, key: str, loaded: int, quarantined: int) -> None:
    record_silver(
        conn,
        feed="sales",
        partitions=[],
        quarantine=empty_quarantine(),
        reconciliation=pl.DataFrame(
            {
                "_source_file": [key],
                "rows_in": [loaded + quarantined],
                "rows_loaded": [loaded],
                "rows_quarantined": [quarantined],
            }
        ),
    )


def test_record_files_inserts_every_field(conn: Conn) -> None:
    record_files(conn, [read_record(KEY)], run_id="run-1", now=NOW)
    row = ledger(conn, KEY)
    assert {k: row[k] for k in ("checksum", "provider", "feed", "business_date", "bytes", "rows_in", "status")} == {
        "checksum": "aaa",
        "provider": "pawmart",
        "feed": "sales",
        "business_date": D1,
        "bytes": 100,
        "rows_in": 10,
        "status": "read",
    }
    assert (row["run_id"], row["processed_at"], row["rows_loaded"], row["rows_quarantined"]) == (
        "run-1",
        NOW,
        None,
        None,
    )
    assert row["first_seen"] is not None


def test_record_files_with_nothing_is_a_no_op(conn: Conn) -> None:
    record_files(conn, [], run_id="run-1", now=NOW)
    assert rows(conn, "select count(*) from ops.ingestion_ledger") == [(0,)]


def test_record_files_upserts_one_row_per_key(conn: Conn) -> None:
    record_files(conn, [read_record(KEY)], run_id="run-1", now=NOW)
    first_seen = ledger(conn, KEY)["first_seen"]
    later = NOW + timedelta(hours=1)
    record_files(conn, [read_record(KEY, rows_in=12)], run_id="run-2", now=later)
    assert rows(conn, "select count(*) from ops.ingestion_ledger") == [(1,)]
    row = ledger(conn, KEY)
    assert (row["rows_in"], row["run_id"], row["processed_at"], row["first_seen"]) == (12, "run-2", later, first_seen)


def test_same_checksum_keeps_counts_and_a_new_checksum_resets_them(conn: Conn) -> None:
    record_files(conn, [read_record(KEY, "aaa")], run_id="run-1", now=NOW)
    set_counts(conn, KEY, loaded=8, quarantined=2)
    row = ledger(conn, KEY)
    assert (row["status"], row["rows_loaded"], row["rows_quarantined"]) == ("loaded", 8, 2)

    record_files(conn, [read_record(KEY, "aaa")], run_id="run-2", now=NOW)
    row = ledger(conn, KEY)
    assert (row["status"], row["rows_loaded"], row["rows_quarantined"]) == ("read", 8, 2)

    record_files(conn, [read_record(KEY, "bbb")], run_id="run-3", now=NOW)
    row = ledger(conn, KEY)
    assert (row["checksum"], row["rows_loaded"], row["rows_quarantined"]) == ("bbb", None, None)


def dead(key: str, uri: str | None, digest: str = "ddd") -> FileRecord:
    return FileRecord(
        key, digest, 5, None, None, None, "dead_lettered", error_code="bad_key", error="bad", dead_letter_uri=uri
    )


def test_re_dead_lettered_file_keeps_its_dead_letter_uri(conn: Conn) -> None:
    key = "stray.csv"
    record_files(conn, [dead(key, "/lake/dead_letter/2026-10-02/abc/stray.csv")], run_id="run-1", now=NOW)
    record_files(conn, [dead(key, None)], run_id="run-2", now=NOW)
    row = ledger(conn, key)
    assert (row["dead_letter_uri"], row["run_id"], row["error_code"]) == (
        "/lake/dead_letter/2026-10-02/abc/stray.csv",
        "run-2",
        "bad_key",
    )
    record_files(conn, [dead(key, "/lake/dead_letter/2026-10-03/def/stray.csv", "eee")], run_id="run-3", now=NOW)
    assert ledger(conn, key)["dead_letter_uri"] == "/lake/dead_letter/2026-10-03/def/stray.csv"


def test_a_file_read_after_being_dead_lettered_clears_its_error(conn: Conn) -> None:
    record_files(conn, [dead(KEY, "/dl/x")], run_id="run-1", now=NOW)
    record_files(conn, [read_record(KEY, "fixed")], run_id="run-2", now=NOW)
    row = ledger(conn, KEY)
    assert (row["status"], row["error_code"], row["error"]) == ("read", None, None)


def test_record_files_is_one_transaction(conn: Conn) -> None:
    record_files(conn, [read_record("a/sales/2026-10-01/a.csv")], run_id="run-1", now=NOW)
    broken = FileRecord("b/sales/2026-10-01/b.csv", "x", 1, "b", "sales", D1, "exploded")  # fails the check
    with pytest.raises(psycopg.errors.CheckViolation):
        record_files(conn, [read_record("a/sales/2026-10-01/a.csv", "new"), broken], run_id="run-2", now=NOW)
    assert rows(conn, "select file_key, checksum, run_id from ops.ingestion_ledger") == [
        ("a/sales/2026-10-01/a.csv", "aaa", "run-1")
    ]


def test_known_checksums(conn: Conn) -> None:
    record_files(conn, [read_record(KEY, "aaa"), dead("stray.csv", "/dl/x", "ddd")], run_id="r", now=NOW)
    assert known_checksums(conn, [KEY, "stray.csv", "never/seen"]) == {
        KEY: ("aaa", "read"),
        "stray.csv": ("ddd", "dead_lettered"),
    }
    assert known_checksums(conn, []) == {}
    assert known_checksums(conn, iter([KEY])) == {KEY: ("aaa", "read")}


# --- record_silver ------------------------------------------------------------------------------


def quarantine(*entries: tuple[str, str, date, str, int, str | None]) -> pl.DataFrame:
    """Quarantine rows ``(feed, provider, business_date, source_file, row_number, rule)``."""
    return pl.DataFrame(
        {
            "feed": [e[0] for e in entries],
            "provider": [e[1] for e in entries],
            "business_date": [e[2] for e in entries],
            "_source_file": [e[3] for e in entries],
            "_row_number": [e[4] for e in entries],
            "rule": [e[5] for e in entries],
            "raw": [json.dumps({"order_id": f"o{e[4]}", "note": 'a "quoted", value'}) for e in entries],
            "_ingested_at": [NOW for _ in entries],
        },
        schema=empty_quarantine().schema,
    )


def no_counts() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"_source_file": pl.String, "rows_in": pl.Int64, "rows_loaded": pl.Int64, "rows_quarantined": pl.Int64}
    )


def quarantine_rows(conn: Conn) -> list[tuple[Any, ...]]:
    return rows(
        conn,
        "select feed, provider, business_date, source_file, row_number, rule from ops.quarantine"
        " order by 1, 2, 3, 4, 5",
    )


def seed_quarantine(conn: Conn) -> None:
    record_silver(
        conn,
        feed="sales",
        partitions=[(D1, "pawmart"), (D1, "petopia"), (D2, "pawmart")],
        quarantine=quarantine(
            ("sales", "pawmart", D1, "pawmart/sales/2026-10-01/a.csv", 3, "missing_sku"),
            ("sales", "pawmart", D1, "pawmart/sales/2026-10-01/a.csv", 7, "duplicate"),
            ("sales", "petopia", D1, "petopia/sales/2026-10-01/b.csv", 2, "bad_quantity"),
            ("sales", "pawmart", D2, "pawmart/sales/2026-10-02/c.csv", 1, "future_date"),
        ),
        reconciliation=no_counts(),
    )
    record_silver(
        conn,
        feed="catalog",
        partitions=[(D1, "pawmart")],
        quarantine=quarantine(("catalog", "pawmart", D1, "pawmart/catalog/2026-10-01/k.csv", 4, "missing_sku")),
        reconciliation=no_counts(),
    )


def test_record_silver_stores_quarantine_rows_with_raw_json(conn: Conn) -> None:
    seed_quarantine(conn)
    assert len(quarantine_rows(conn)) == 5
    [(raw, ingested_at)] = rows(conn, "select raw, ingested_at from ops.quarantine where feed = 'catalog'")
    assert raw == {"order_id": "o4", "note": 'a "quoted", value'}
    assert ingested_at == NOW


def test_record_silver_replaces_only_the_given_partitions_of_the_feed(conn: Conn) -> None:
    seed_quarantine(conn)
    record_silver(
        conn,
        feed="sales",
        partitions=[(D1, "pawmart"), (D2, "petopia")],
        quarantine=quarantine(("sales", "pawmart", D1, "pawmart/sales/2026-10-01/a2.csv", 9, "unknown_status")),
        reconciliation=no_counts(),
    )
    assert quarantine_rows(conn) == [
        ("catalog", "pawmart", D1, "pawmart/catalog/2026-10-01/k.csv", 4, "missing_sku"),  # other feed
        ("sales", "pawmart", D1, "pawmart/sales/2026-10-01/a2.csv", 9, "unknown_status"),  # replaced
        ("sales", "pawmart", D2, "pawmart/sales/2026-10-02/c.csv", 1, "future_date"),  # other date
        ("sales", "petopia", D1, "petopia/sales/2026-10-01/b.csv", 2, "bad_quantity"),  # other provider
    ]


def test_record_silver_rerun_is_idempotent_and_empty_partitions_clear(conn: Conn) -> None:
    seed_quarantine(conn)
    before = quarantine_rows(conn)
    seed_quarantine(conn)
    assert quarantine_rows(conn) == before
    record_silver(
        conn, feed="sales", partitions=[(D1, "petopia")], quarantine=empty_quarantine(), reconciliation=no_counts()
    )
    assert [r for r in quarantine_rows(conn) if r[1] == "petopia"] == []
    assert len(quarantine_rows(conn)) == len(before) - 1


def test_record_silver_updates_per_file_counts(conn: Conn) -> None:
    a, b = "pawmart/sales/2026-10-01/a.csv", "pawmart/sales/2026-10-01/b.csv"
    record_files(conn, [read_record(a, rows_in=0), read_record(b, rows_in=0)], run_id="r", now=NOW)
    record_silver(
        conn,
        feed="sales",
        partitions=[(D1, "pawmart")],
        quarantine=quarantine(("sales", "pawmart", D1, a, 3, "missing_sku")),
        reconciliation=pl.DataFrame(
            {"_source_file": [a, b], "rows_in": [10, 5], "rows_loaded": [9, 5], "rows_quarantined": [1, 0]}
        ),
    )
    counts = [ledger(conn, k) for k in (a, b)]
    assert [(r["status"], r["rows_in"], r["rows_loaded"], r["rows_quarantined"]) for r in counts] == [
        ("loaded", 10, 9, 1),
        ("loaded", 5, 5, 0),
    ]


def test_record_silver_is_atomic(conn: Conn) -> None:
    a = "pawmart/sales/2026-10-01/a.csv"
    record_files(conn, [read_record(a)], run_id="r", now=NOW)
    seed_quarantine(conn)
    set_counts(conn, a, loaded=8, quarantined=2)
    before = quarantine_rows(conn)
    broken = quarantine(
        ("sales", "pawmart", D1, a, 1, "missing_sku"),
        ("sales", "pawmart", D1, a, 2, None),  # rule is NOT NULL: the COPY fails after the delete
    )
    with pytest.raises(psycopg.errors.NotNullViolation):
        record_silver(
            conn,
            feed="sales",
            partitions=[(D1, "pawmart"), (D1, "petopia"), (D2, "pawmart")],
            quarantine=broken,
            reconciliation=pl.DataFrame(
                {"_source_file": [a], "rows_in": [10], "rows_loaded": [0], "rows_quarantined": [10]}
            ),
        )
    assert quarantine_rows(conn) == before
    row = ledger(conn, a)
    assert (row["rows_loaded"], row["rows_quarantined"]) == (8, 2)
    # the connection is usable afterwards (no transaction left open)
    assert rows(conn, "select 1") == [(1,)]


def test_dead_letter_reason() -> None:
    reason = json.loads(dead_letter_reason("../../etc/passwd", "bad_key", "expected …", "abc", NOW))
    assert reason == {
        "key": "../../etc/passwd",
        "reason": "bad_key",
        "detail": "expected …",
        "checksum": "abc",
        "dead_lettered_at": "2026-10-02T06:00:00+00:00",
    }


# --- quality_report and unattributed_dead_letters ------------------------------------------------


def refused(key: str, code: str) -> FileRecord:
    """A ledger row as the landing scan writes it for a key it refused: no provider, feed or date."""
    return FileRecord(
        key,
        "c-" + key,
        10,
        None,
        None,
        None,
        "dead_lettered",
        error_code=code,
        error=f"{code} detail",
        dead_letter_uri=f"file:///dead/{code}",
    )


def arrived(conn: Conn, key: str, at: datetime) -> None:
    conn.execute("update ops.ingestion_ledger set first_seen = %s where file_key = %s", (at, key))


def test_quality_report_attributes_dead_letters_and_rows_to_their_source(conn: Conn) -> None:
    bad = "pawmart/sales/2026-10-01/bad.csv"
    record_files(conn, [read_record(KEY)], run_id="r", now=NOW)
    record_files(
        conn,
        [FileRecord(bad, "b", 5, "pawmart", "sales", D1, "dead_lettered", error_code="not_utf8", error="x")],
        run_id="r",
        now=NOW,
    )
    set_counts(conn, KEY, 9, 1)
    (source,) = quality_report(conn, D1, D2, provider="pawmart")
    assert (source.provider, source.feed, source.files, source.files_dead_lettered) == ("pawmart", "sales", 2, 1)
    assert (source.rows_in, source.rows_loaded, source.rows_quarantined) == (10, 9, 1)
    assert source.dead_letter_reasons == {"not_utf8": 1}
    assert quality_report(conn, D1, D2, provider="other") == []
    assert unattributed_dead_letters(conn, D1, D2) == []  # attributed dead letters are not repeated there


def test_unattributed_dead_letters_count_under_the_keys_date_else_the_day_they_arrived(conn: Conn) -> None:
    """Keys the landing contract refused have no provider, feed or date on the ledger; the report
    finds them by the key's segments, and dates them by the key, else by their arrival (UTC)."""
    keys = {
        "acme/sales/2026-13-01/a.csv": "bad_date",  # no date in the key: arrived 2026-10-02
        "acme/salez/2026-10-01/a.csv": "unknown_feed",  # the key's date
        "acme/a.csv": "bad_key",  # arrived 2026-10-04 06:00 UTC
        "acme/sales/2026-09-30/late.csv": "unknown_provider",  # the key's date, before the range
        "acmex/sales/2026-10-02/b.csv": "unknown_provider",  # another provider whose name starts alike
        "other/stores/2026-10-03/s.csv": "unknown_provider",
        "acme/sales/20261001/c.csv": "bad_date",  # not an ISO date: arrived 2026-10-03 23:30 in New York
    }
    record_files(conn, [refused(key, code) for key, code in keys.items()], run_id="r", now=NOW)
    arrived(conn, "acme/sales/2026-13-01/a.csv", datetime(2026, 10, 2, 9, 0, tzinfo=UTC))
    arrived(conn, "acme/a.csv", datetime(2026, 10, 4, 6, 0, tzinfo=UTC))
    arrived(conn, "acme/sales/20261001/c.csv", datetime(2026, 10, 4, 3, 30, tzinfo=UTC))
    for key in ("acme/salez/2026-10-01/a.csv", "acme/sales/2026-09-30/late.csv", "acmex/sales/2026-10-02/b.csv"):
        arrived(conn, key, datetime(2026, 12, 1, tzinfo=UTC))  # long after: the key's date decides
    arrived(conn, "other/stores/2026-10-03/s.csv", datetime(2026, 10, 3, tzinfo=UTC))
    first_three_days = (D1, date(2026, 10, 3))

    def found(start: date, end: date, **filters: str) -> dict[str, tuple[str, date]]:
        return {d.file_key: (d.reason, d.reported_for) for d in unattributed_dead_letters(conn, start, end, **filters)}

    assert found(*first_three_days) == {
        "acme/sales/2026-13-01/a.csv": ("bad_date", D2),
        "acme/salez/2026-10-01/a.csv": ("unknown_feed", D1),
        "acmex/sales/2026-10-02/b.csv": ("unknown_provider", D2),
        "other/stores/2026-10-03/s.csv": ("unknown_provider", date(2026, 10, 3)),
    }
    assert found(*first_three_days, provider="acme") == {
        "acme/sales/2026-13-01/a.csv": ("bad_date", D2),
        "acme/salez/2026-10-01/a.csv": ("unknown_feed", D1),
    }
    assert found(D1, date(2026, 10, 4), provider="acme") == {
        "acme/sales/2026-13-01/a.csv": ("bad_date", D2),
        "acme/salez/2026-10-01/a.csv": ("unknown_feed", D1),
        "acme/a.csv": ("bad_key", date(2026, 10, 4)),
        "acme/sales/20261001/c.csv": ("bad_date", date(2026, 10, 4)),
    }
    assert found(date(2026, 9, 1), date(2026, 10, 4), provider="acme", feed="sales") == {
        "acme/sales/2026-13-01/a.csv": ("bad_date", D2),
        "acme/sales/2026-09-30/late.csv": ("unknown_provider", date(2026, 9, 30)),
        "acme/sales/20261001/c.csv": ("bad_date", date(2026, 10, 4)),
    }
    (one,) = unattributed_dead_letters(conn, D1, D1, provider="acme")
    assert (one.file_key, one.detail, one.dead_letter_uri) == (
        "acme/salez/2026-10-01/a.csv",
        "unknown_feed detail",
        "file:///dead/unknown_feed",
    )
    assert [d.file_key for d in unattributed_dead_letters(conn, D1, date(2026, 10, 4))] == sorted(
        set(found(D1, date(2026, 10, 4)))
    )  # by key
    assert quality_report(conn, D1, date(2026, 10, 4)) == []  # none of them is a source's


# --- known products (silver's ceilings by category) ----------------------------------------------


def test_known_products_are_the_providers_products_without_the_unknown_member(conn: Conn) -> None:
    conn.execute(
        "insert into gold.dim_product (product_key, provider, sku, category) values"
        " (1, 'pawmart', 'K1', 'food'), (2, 'pawmart', 'T1', null), (3, 'petopia', 'K1', 'toys')"
    )
    assert known_products(conn, ["pawmart"]).rows() == [("pawmart", "K1", "food"), ("pawmart", "T1", "other")]
    assert known_products(conn, ["pawmart", "petopia"]).height == 3
    assert known_products(conn, []).is_empty()
    assert known_products(conn, []).schema == {"provider": pl.String, "sku": pl.String, "category": pl.String}


# --- registry versions and onboarding states ----------------------------------------------------


def test_rows_ledgered_before_versions_were_recorded_stay_null(conn: Conn) -> None:
    record_files(conn, [read_record(KEY)], run_id="run-1", now=NOW)  # an old writer: no registry
    set_counts(conn, KEY, 9, 1)
    migrate(conn)  # 009 again: idempotent, existing rows untouched
    assert (ledger(conn, KEY)["registry_version"], ledger(conn, KEY)["provider_version"]) == (None, None)


def registry_with_value_map(tmp_path: Path, line: str) -> Registry:
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    (directory / "value_maps.csv").write_text(f"provider,feed,map,alias,value\n{line}\n", encoding="utf-8")
    return load_registry(directory)


def test_each_file_records_the_registry_it_was_read_and_loaded_under(conn: Conn, tmp_path: Path) -> None:
    a = load_registry()
    b = registry_with_value_map(tmp_path, "pawmart,,status,SOLD,completed")
    dead = FileRecord("pawmart/sales/2026-10-01/x.json", "ddd", 5, "pawmart", "sales", D1, "dead_lettered")
    record_files(conn, [read_record(KEY), dead], run_id="run-1", now=NOW, registry=a)
    versions = "select registry_version, provider_version from ops.ingestion_ledger where file_key = %s"
    assert (
        rows(conn, versions, (KEY,))
        == rows(conn, versions, (dead.file_key,))
        == [(a.version, a.provider_version("pawmart"))]
    )
    set_counts(conn, KEY, 9, 1)  # silver with no registry keeps what bronze recorded
    assert rows(conn, versions, (KEY,)) == [(a.version, a.provider_version("pawmart"))]

    # Re-delivered after an onboarding edit: read under B, cleaned under B.
    record_files(conn, [read_record(KEY, "bbb")], run_id="run-2", now=NOW, registry=b)
    assert rows(conn, versions, (KEY,)) == [(b.version, b.provider_version("pawmart"))]
    counts = pl.DataFrame({"_source_file": [KEY], "rows_in": [10], "rows_loaded": [10], "rows_quarantined": [0]})
    record_silver(conn, feed="sales", partitions=[], quarantine=empty_quarantine(), reconciliation=counts, registry=b)
    assert rows(conn, versions, (KEY,)) == [(b.version, b.provider_version("pawmart"))]
    assert a.version != b.version and a.provider_version("pawmart") != b.provider_version("pawmart")
    # A file of no registered provider (a misplaced key) has the registry's version, no provider's.
    stray = FileRecord("stray.csv", "eee", 1, None, None, None, "dead_lettered")
    record_files(conn, [stray], run_id="run-3", now=NOW, registry=b)
    assert rows(conn, versions, ("stray.csv",)) == [(b.version, None)]


def test_provider_activity_of_each_provider_asked(conn: Conn) -> None:
    registry = load_registry()
    old, recent = NOW - timedelta(days=30), NOW - timedelta(hours=1)
    record_files(conn, [read_record("pawmart/sales/2026-09-01/a.csv")], run_id="r1", now=old)  # no version then
    record_files(conn, [read_record("pawmart/sales/2026-10-01/b.csv")], run_id="r2", now=recent, registry=registry)
    record_files(
        conn,
        [FileRecord("petopia/sales/2026-10-01/c.csv", "c", 1, "petopia", "sales", D1, "dead_lettered")],
        run_id="r3",
        now=recent,
        registry=registry,
    )
    activity = provider_activity(conn, ["pawmart", "petopia", "tiny_pets"], since=NOW - timedelta(days=7))
    assert activity == {
        "pawmart": ProviderActivity("pawmart", recent, registry.provider_version("pawmart"), 1, 0),
        "petopia": ProviderActivity("petopia", None, None, 0, 1),
        "tiny_pets": ProviderActivity("tiny_pets", None, None, 0, 0),
    }
    assert provider_activity(conn, [], since=NOW) == {}


@pytest.mark.parametrize(
    ("last_loaded", "version_then", "state"),
    [
        (None, None, "new"),
        (NOW - timedelta(days=1), "v1", "loading"),
        (NOW - timedelta(days=1), "v0", "changed"),
        (NOW - timedelta(days=30), "v0", "changed"),
        (NOW - timedelta(days=1), None, "loading"),  # ledgered before versions: not judged changed
        (NOW - timedelta(days=8), "v1", "silent"),
    ],
)
def test_onboarding_state(last_loaded: datetime | None, version_then: str | None, state: str) -> None:
    activity = ProviderActivity("p", last_loaded, version_then, 0, 0)
    assert onboarding_state(activity, "v1", NOW, loading_days=7) == state
    assert state in ONBOARDING_STATES
    assert onboarding_state(None, "v1", NOW, loading_days=7) == "new"
