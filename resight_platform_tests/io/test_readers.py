"""Readers never wait on writers: a reader of a day-partitioned table while days are replaced in
bulk (``io/postgres.PartitionSwap``), on the real PostgreSQL."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psycopg
import pytest

from resight_platform.io.postgres import DayPartitionLoad, PartitionSwap, SwapBlocked, connect
from resight_platform.io.warehouse import WarehouseIOManager
from resight_platform.settings import PgSwapSettings, Settings

Conn = psycopg.Connection[Any]
DEADLINE = 120.0  # seconds: generous, for a loaded machine; every wait ends on the thing it waits for

# A fact table as gold's: a primary key with the partition column, a foreign key, indexes (one partial).
DDL = """
CREATE TABLE {s}.dim_product (product_key bigint PRIMARY KEY, sku text NOT NULL UNIQUE);
CREATE TABLE {s}.fact_sales (
    sale_date date NOT NULL,
    product_key bigint NOT NULL REFERENCES {s}.dim_product (product_key),
    line_no int NOT NULL,
    quantity int NOT NULL,
    PRIMARY KEY (sale_date, line_no)
) PARTITION BY RANGE (sale_date);
CREATE INDEX ON {s}.fact_sales (product_key);
CREATE INDEX ON {s}.fact_sales (quantity) WHERE product_key = 0;
INSERT INTO {s}.dim_product VALUES (0, 'unknown'), (1, 'a'), (2, 'b');
"""
DAY = date(2026, 10, 1)


def _facts(day: date, rows: int, version: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sale_date": [day] * rows,
            "product_key": [i % 3 for i in range(rows)],
            "line_no": list(range(rows)),
            "quantity": [version] * rows,
        },
        schema={"sale_date": pl.Date, "product_key": pl.Int64, "line_no": pl.Int32, "quantity": pl.Int32},
    )


def _load(conn: Conn, schema: str, frames: dict[date, pl.DataFrame], swap: PartitionSwap | None = None) -> None:
    with conn.transaction():
        swap = swap or PartitionSwap(conn)
        for day, frame in frames.items():
            load = DayPartitionLoad(conn, schema, "fact_sales", "sale_date", day, swap)
            load.copy(frame)
            load.finish()
        swap.apply()


def _counts(conn: Conn, schema: str) -> dict[date, int]:
    rows = conn.execute(f"SELECT sale_date, count(*) FROM {schema}.fact_sales GROUP BY 1").fetchall()
    return {day: int(n) for day, n in rows}


@contextmanager
def _holding(pg_url: str, schema: str, until: threading.Event) -> Iterator[int]:
    """A reader in another session that holds ``ACCESS SHARE`` on the parent (a long analyst
    query's lock) until ``until`` is set; yields its pid once it holds it."""
    holding = threading.Event()
    pid: list[int] = []

    def read() -> None:
        with connect(pg_url) as reader, reader.transaction():
            # The query text carries a connection URL with a password: SwapBlocked must mask it.
            reader.execute(
                f"SELECT count(*), 'postgresql://analyst:hunter2@db/resight' FROM {schema}.fact_sales"
            ).fetchall()
            pid.append(reader.info.backend_pid)
            holding.set()
            until.wait(DEADLINE)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        assert holding.wait(DEADLINE), "the reader never took its lock"
        yield pid[0]
    finally:
        until.set()
        thread.join(DEADLINE)


def test_attach_adopts_the_indexes_and_keys_built_on_the_staging_table(pg_conn: Conn, pg_schema: str) -> None:
    pg_conn.execute(DDL.format(s=pg_schema))
    _load(pg_conn, pg_schema, {DAY: _facts(DAY, 50, 1)})
    for version in (2, 3):  # a new day, then one replaced: both adopt what was built on staging
        with pg_conn.transaction():
            swap = PartitionSwap(pg_conn)
            load = DayPartitionLoad(pg_conn, pg_schema, "fact_sales", "sale_date", DAY + timedelta(days=version), swap)
            load.copy(_facts(load.day, 50, version))
            load.finish()
            replace = DayPartitionLoad(pg_conn, pg_schema, "fact_sales", "sale_date", DAY, swap)
            replace.copy(_facts(DAY, 40, version))
            replace.finish()
            staged = {
                name: pg_conn.execute(
                    "SELECT indexrelid::bigint FROM pg_index WHERE indrelid = %s::regclass ORDER BY 1",
                    (f"{pg_schema}.{name}",),
                ).fetchall()
                for name in (load.staging, replace.staging)
            }
            assert all(len(oids) == 3 for oids in staged.values())  # primary key and both indexes, prebuilt
            swap.apply()
        for staging, child in ((load.staging, load.child), (replace.staging, replace.child)):
            attached = pg_conn.execute(
                "SELECT i.indexrelid::bigint, p.inhparent IS NOT NULL FROM pg_index i"
                " LEFT JOIN pg_inherits p ON p.inhrelid = i.indexrelid"
                " WHERE i.indrelid = %s::regclass ORDER BY 1",
                (f"{pg_schema}.{child}",),
            ).fetchall()
            assert [(oid,) for oid, _ in attached] == staged[staging]  # the same indexes: adopted, not rebuilt
            assert all(parented for _, parented in attached)  # each a partition of the parent's index
            constraints = pg_conn.execute(
                "SELECT contype::text, conparentid <> 0 FROM pg_constraint WHERE conrelid = %s::regclass ORDER BY 1",
                (f"{pg_schema}.{child}",),
            ).fetchall()
            assert constraints == [("f", True), ("p", True)]  # the key and the primary key, inherited; no CHECK left
    # The foreign key holds on an adopted day, and the dimension carries no stray triggers.
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        pg_conn.execute(f"INSERT INTO {pg_schema}.fact_sales VALUES ('{DAY}', 99, 1000, 1)")
    triggers = pg_conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass", (f"{pg_schema}.dim_product",)
    ).fetchone()
    assert triggers == (2,)  # the parent's key's two action triggers, as before any load
    with pytest.raises(ValueError, match="loaded twice"), pg_conn.transaction():
        swap = PartitionSwap(pg_conn)
        for _ in range(2):
            load = DayPartitionLoad(pg_conn, pg_schema, "fact_sales", "sale_date", DAY, swap)
            load.copy(_facts(DAY, 5, 9))
            load.finish()


def test_a_reader_never_waits_on_a_slow_load_and_sees_each_day_whole(
    pg_url: str, pg_conn: Conn, pg_schema: str
) -> None:
    pg_conn.execute(DDL.format(s=pg_schema))
    days = [DAY + timedelta(days=i) for i in range(4)]
    old = {day: 300 + 10 * i for i, day in enumerate(days)}
    new = {day: 500 + 10 * i for i, day in enumerate([*days, DAY + timedelta(days=4)])}  # four replaced, one new
    _load(pg_conn, pg_schema, {day: _facts(day, rows, 1) for day, rows in old.items()})

    stop, seen_new = threading.Event(), threading.Event()
    waits: list[float] = []
    observed: list[dict[date, int]] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            with connect(pg_url) as reader:
                while not stop.is_set():
                    started = time.monotonic()
                    counts = _counts(reader, pg_schema)
                    waits.append(time.monotonic() - started)
                    observed.append(counts)
                    if counts == new:
                        seen_new.set()
                    time.sleep(0.01)
        except BaseException as error:  # reported by the main thread
            errors.append(error)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        # A slow run: each day streams in two chunks with a pause between them (a lake read of a
        # peak day), about 4 s with the transaction open; every day is swapped at its end.
        with pg_conn.transaction():
            swap = PartitionSwap(pg_conn)
            for day, rows in new.items():
                load = DayPartitionLoad(pg_conn, pg_schema, "fact_sales", "sale_date", day, swap)
                frame = _facts(day, rows, 2)
                for chunk in (frame.head(rows // 2), frame.tail(rows - rows // 2)):
                    load.copy(chunk)
                    time.sleep(0.4)
                load.finish()
            swap.apply()
        assert seen_new.wait(DEADLINE), "the reader never saw the new days"
    finally:
        stop.set()
        thread.join(DEADLINE)
    assert not errors, errors
    during = len(observed)
    assert during >= 20, f"the reader ran only {during} queries: it did not overlap the load"
    print(f"worst reader wait {max(waits):.3f} s over {len(waits)} queries")
    assert max(waits) < 2.0, f"a reader waited {max(waits):.2f} s for the load"
    # Each day whole, and every day of the run at once: the old days or the new, never a mix.
    assert all(counts in (old, new) for counts in observed), [c for c in observed if c not in (old, new)][:3]
    assert observed[0] == old and observed[-1] == new


def test_a_long_reader_makes_the_swap_retry_then_succeed(pg_url: str, pg_conn: Conn, pg_schema: str) -> None:
    pg_conn.execute(DDL.format(s=pg_schema))
    _load(pg_conn, pg_schema, {DAY: _facts(DAY, 100, 1)})
    release = threading.Event()
    settings = PgSwapSettings(lock_timeout_ms=100, attempts=30, backoff_ms=50, backoff_max_ms=400)
    with _holding(pg_url, pg_schema, release):
        # The analyst's query ends about 1.5 s into the swap's attempts.
        timer = threading.Timer(1.5, release.set)
        timer.start()
        swap = PartitionSwap(pg_conn, settings)
        _load(pg_conn, pg_schema, {DAY: _facts(DAY, 120, 2)}, swap)
        timer.cancel()
    assert swap.attempts > 1, "the swap never had to wait"
    assert swap.seconds >= 1.0
    assert _counts(pg_conn, pg_schema) == {DAY: 120}
    assert pg_conn.execute("SHOW lock_timeout").fetchone() == ("0",)  # the session's own setting, back


def test_a_reader_that_never_ends_makes_the_run_fail_naming_it_and_roll_back(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    pg_conn.execute(DDL.format(s=pg_schema))
    second = DAY + timedelta(days=1)
    _load(pg_conn, pg_schema, {DAY: _facts(DAY, 100, 1)})

    @dg.asset(
        key=[pg_schema, "fact_sales"],
        partitions_def=dg.DailyPartitionsDefinition(start_date=DAY.isoformat(), end_date="2026-10-04"),
        metadata={"pg_mode": "partition", "pg_partition_column": "sale_date"},
    )
    def fact_sales(context: dg.AssetExecutionContext) -> dict[str, pl.DataFrame]:
        return {key: _facts(date.fromisoformat(key), 150, 2) for key in context.partition_keys}

    manager = WarehouseIOManager(
        lake_url=str(tmp_path / "lake"),
        pg_url=pg_url,
        pg_lock_timeout_ms=100,
        pg_swap_attempts=3,
        pg_swap_backoff_ms=50,
        pg_swap_backoff_max_ms=100,
    )
    tags = {
        "dagster/asset_partition_range_start": DAY.isoformat(),
        "dagster/asset_partition_range_end": second.isoformat(),
    }
    with _holding(pg_url, pg_schema, threading.Event()) as reader_pid:
        result = dg.materialize([fact_sales], resources={"io_manager": manager}, tags=tags, raise_on_error=False)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error is not None and error.cause is not None  # the IO manager's error, as Dagster wraps it
    error = error.cause
    assert error.cls_name == SwapBlocked.__name__
    assert f"pid {reader_pid}" in error.message and "AccessShareLock" in error.message
    assert "3 attempt(s)" in error.message
    assert "analyst:***@db" in error.message and "hunter2" not in error.message
    # The whole run rolled back: the old day as it was, the new day absent, no staging table left.
    assert _counts(pg_conn, pg_schema) == {DAY: 100}
    tables = pg_conn.execute(
        "SELECT relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relkind = 'r' ORDER BY 1",
        (pg_schema,),
    ).fetchall()
    assert tables == [("dim_product",), ("fact_sales_p20261001",)]
    # With the reader gone, the same run goes through.
    result = dg.materialize([fact_sales], resources={"io_manager": manager}, tags=tags)
    assert result.success
    assert _counts(pg_conn, pg_schema) == {DAY: 150, second: 150}
    materializations = result.asset_materializations_for_node(f"{pg_schema}__fact_sales")
    assert len(materializations) == 2
    assert all(m.metadata["pg_swap_attempts"] == dg.MetadataValue.int(1) for m in materializations)


def test_swap_settings_come_from_the_environment() -> None:
    assert Settings.from_env({}).pg_swap == PgSwapSettings(1000, 30, 250, 5000)
    env = {
        "RESIGHT_PG_LOCK_TIMEOUT_MS": "200",
        "RESIGHT_PG_SWAP_ATTEMPTS": "5",
        "RESIGHT_PG_SWAP_BACKOFF_MS": "10",
        "RESIGHT_PG_SWAP_BACKOFF_MAX_MS": "40",
    }
    assert Settings.from_env(env).pg_swap == PgSwapSettings(200, 5, 10, 40)
    with pytest.raises(ValueError, match="RESIGHT_PG_SWAP_ATTEMPTS"):
        PgSwapSettings.from_env({"RESIGHT_PG_SWAP_ATTEMPTS": "0"})
