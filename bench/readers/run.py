"""Readers while a writer replaces a peak day: how long an analyst's query waits.

A reader queries a ``gold.fact_sales``-like parent (gold's primary key, five foreign keys, eight
indexes) in a loop while a day of ``--lines`` rows is replaced in one transaction (streamed in
chunks, as the warehouse IO manager loads it), then a new day is added. Three writers, one after
the other on the same server, each with the same reader:

- ``old``: the swap before issue 19 (``DETACH`` + ``DROP`` + ``ATTACH`` of the staging table in
  the middle of the transaction: ``ACCESS EXCLUSIVE`` on the parent from the ``DETACH``, while
  ``ATTACH`` builds the indexes and validates the keys, until the commit);
- ``new``: ``io/postgres.PartitionSwap`` (the heavy work on the staging table, the swap at the end);
- ``mart``: ``marts.daily_sales``'s way (``DELETE`` + ``COPY`` into an unpartitioned table).

Each row of the output: the reader's queries during the write, its worst and p95 wait, and the
write's wall time. ``python -m bench.readers.run --lines 1000000``; ``--quick`` for 100k lines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import psycopg
from psycopg import sql

from bench.machine import machine
from resight_platform.io.postgres import (
    DayPartitionLoad,
    PartitionSwap,
    connect,
    copy_frame,
    database_url,
    embedded_pg_url,
    ensure_database,
    stop_embedded_pg,
)

RESULTS_PATH = Path(__file__).with_name("results.json")
DAY = date(2026, 10, 1)
CHUNK_ROWS = 200_000
DDL = """
DROP SCHEMA IF EXISTS bench_readers CASCADE;
CREATE SCHEMA bench_readers;
SET search_path = bench_readers;
CREATE TABLE dim_date (date_key int PRIMARY KEY);
CREATE TABLE dim_provider (provider_key bigint PRIMARY KEY);
CREATE TABLE dim_product (product_key bigint PRIMARY KEY);
CREATE TABLE dim_store (store_key bigint PRIMARY KEY);
CREATE TABLE dim_customer (customer_key bigint PRIMARY KEY);
INSERT INTO dim_date VALUES (20261001), (20261002);
INSERT INTO dim_provider SELECT g FROM generate_series(0, 50) g;
INSERT INTO dim_product SELECT g FROM generate_series(0, 20000) g;
INSERT INTO dim_store SELECT g FROM generate_series(0, 2000) g;
INSERT INTO dim_customer SELECT g FROM generate_series(0, 100000) g;
CREATE TABLE fact_sales (
    sale_date date NOT NULL,
    date_key int NOT NULL REFERENCES dim_date,
    provider_key bigint NOT NULL REFERENCES dim_provider,
    product_key bigint NOT NULL REFERENCES dim_product,
    store_key bigint REFERENCES dim_store,
    customer_key bigint REFERENCES dim_customer,
    order_id text NOT NULL,
    line_no int NOT NULL,
    quantity int NOT NULL,
    net_amount numeric(14, 2) NOT NULL,
    sku text,
    PRIMARY KEY (sale_date, provider_key, order_id, line_no)
) PARTITION BY RANGE (sale_date);
CREATE INDEX ON fact_sales (date_key);
CREATE INDEX ON fact_sales (provider_key);
CREATE INDEX ON fact_sales (product_key);
CREATE INDEX ON fact_sales (store_key);
CREATE INDEX ON fact_sales (customer_key);
CREATE INDEX ON fact_sales (provider_key, sku) WHERE product_key = 0;
CREATE TABLE daily_sales (sale_date date NOT NULL, product_key bigint NOT NULL, net_amount numeric(14, 2));
CREATE INDEX ON daily_sales (sale_date);
"""


def facts(day: date, lines: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    return pl.DataFrame(
        {
            "sale_date": [day] * lines,
            "date_key": [int(f"{day:%Y%m%d}")] * lines,
            "provider_key": rng.integers(0, 50, lines),
            "product_key": rng.integers(0, 20000, lines),
            "store_key": rng.integers(0, 2000, lines),
            "customer_key": rng.integers(0, 100000, lines),
            "order_id": [f"o{i // 3}" for i in range(lines)],
            "line_no": [i % 3 for i in range(lines)],
            "quantity": rng.integers(1, 5, lines).astype(np.int32),
            "net_amount": (rng.integers(100, 10000, lines) / 100),
            "sku": [f"sku{i % 20000}" for i in range(lines)],
        }
    ).with_columns(pl.col("net_amount").cast(pl.Decimal(14, 2)))


def old_replace(
    conn: psycopg.Connection[Any],
    day: date,
    frame: pl.DataFrame,
    schema: str = "bench_readers",
    table: str = "fact_sales",
) -> None:
    """The day swap as it was before issue 19 (``DayPartitionLoad.finish`` at 18900d1)."""
    staging, child = f"{table}_load_{day:%Y%m%d}", f"{table}_p{day:%Y%m%d}"
    q = sql.Identifier
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}.{}").format(q(schema), q(staging)))
    conn.execute(
        sql.SQL("CREATE TABLE {s}.{st} (LIKE {s}.{t} INCLUDING DEFAULTS)").format(
            s=q(schema), st=q(staging), t=q(table)
        )
    )
    for offset in range(0, frame.height, CHUNK_ROWS):
        with conn.cursor() as cur:
            copy_frame(cur, schema, staging, frame.slice(offset, CHUNK_ROWS), freeze=True)
    low, high = sql.Literal(day.isoformat()), sql.Literal((day + timedelta(days=1)).isoformat())
    conn.execute(
        sql.SQL("ALTER TABLE {}.{} ADD CONSTRAINT b CHECK (sale_date >= {} AND sale_date < {})").format(
            q(schema), q(staging), low, high
        )
    )
    conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
    exists = conn.execute("SELECT to_regclass(%s)", (f"{schema}.{child}",)).fetchone()
    if exists and exists[0]:
        conn.execute(
            sql.SQL("ALTER TABLE {s}.{t} DETACH PARTITION {s}.{c}").format(s=q(schema), t=q(table), c=q(child))
        )
        conn.execute(sql.SQL("DROP TABLE {}.{}").format(q(schema), q(child)))
    conn.execute(sql.SQL("ALTER TABLE {}.{} RENAME TO {}").format(q(schema), q(staging), q(child)))
    conn.execute(
        sql.SQL("ALTER TABLE {s}.{t} ATTACH PARTITION {s}.{c} FOR VALUES FROM ({lo}) TO ({hi})").format(
            s=q(schema), t=q(table), c=q(child), lo=low, hi=high
        )
    )
    conn.execute(sql.SQL("ALTER TABLE {}.{} DROP CONSTRAINT b").format(q(schema), q(child)))


def old_write(conn: psycopg.Connection[Any], frames: dict[date, pl.DataFrame]) -> None:
    with conn.transaction():
        for day, frame in frames.items():
            old_replace(conn, day, frame)


def new_write(conn: psycopg.Connection[Any], frames: dict[date, pl.DataFrame]) -> None:
    with conn.transaction():
        swap = PartitionSwap(conn)
        for day, frame in frames.items():
            load = DayPartitionLoad(conn, "bench_readers", "fact_sales", "sale_date", day, swap)
            for offset in range(0, frame.height, CHUNK_ROWS):
                load.copy(frame.slice(offset, CHUNK_ROWS))
            load.finish()
        swap.apply()


def mart_write(conn: psycopg.Connection[Any], frames: dict[date, pl.DataFrame]) -> None:
    with conn.transaction():
        for day, frame in frames.items():
            conn.execute("DELETE FROM bench_readers.daily_sales WHERE sale_date = %s", (day,))
            with conn.cursor() as cur:
                copy_frame(cur, "bench_readers", "daily_sales", frame.select("sale_date", "product_key", "net_amount"))


def measure(
    url: str,
    name: str,
    write: Callable[[psycopg.Connection[Any], dict[date, pl.DataFrame]], None],
    frames: dict[date, pl.DataFrame],
    table: str,
) -> dict[str, Any]:
    """The writer's transaction with a reader querying ``table`` in a loop beside it."""
    stop, started = threading.Event(), threading.Event()
    waits: list[float] = []

    query = sql.SQL("SELECT count(*) FROM bench_readers.{} WHERE sale_date = %s").format(sql.Identifier(table))

    def read() -> None:
        with connect(url) as reader:
            started.set()
            while True:  # at least one query, after the writer's end too
                begun = time.monotonic()
                reader.execute(query, (DAY,)).fetchone()
                waits.append(time.monotonic() - begun)
                if stop.is_set():
                    break
                time.sleep(0.005)

    thread = threading.Thread(target=read)
    thread.start()
    started.wait(60)
    with connect(url) as conn:
        begun = time.monotonic()
        write(conn, frames)
        seconds = time.monotonic() - begun
    stop.set()
    thread.join(60)
    ordered = sorted(waits)
    return {
        "writer": name,
        "table": table,
        "lines": sum(frame.height for frame in frames.values()),
        "write_seconds": round(seconds, 2),
        "reader_queries": len(waits),
        "worst_wait_seconds": round(ordered[-1], 3),
        "p95_wait_seconds": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
        "median_wait_seconds": round(statistics.median(ordered), 4),
    }


def run_benchmark(url: str, lines: int) -> dict[str, Any]:
    with connect(url) as conn:
        conn.execute(DDL)
    peak = facts(DAY, lines, 1)
    frames = {DAY: peak, DAY + timedelta(days=1): facts(DAY + timedelta(days=1), max(1, lines // 10), 2)}
    rows = []
    with connect(url) as conn:  # the day's first version, for every writer to replace
        new_write(conn, {DAY: facts(DAY, lines, 0)})
        mart_write(conn, {DAY: facts(DAY, lines, 0)})
    for name, write, table in (
        ("old", old_write, "fact_sales"),
        ("new", new_write, "fact_sales"),
        ("mart", mart_write, "daily_sales"),
    ):
        with connect(url) as conn:  # the new day again absent, so each writer replaces one day and adds one
            conn.execute("DROP TABLE IF EXISTS bench_readers.fact_sales_p20261002")
        rows.append(measure(url, name, write, frames, table))
        print(json.dumps(rows[-1]), flush=True)
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(), "results": rows}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines of the replaced day (default 1M)")
    parser.add_argument("--quick", action="store_true", help="100k lines")
    parser.add_argument("--pg-url", help="a Postgres server URL (default: an embedded pgserver)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="results JSON (default: %(default)s)")
    args = parser.parse_args(argv)
    lines = 100_000 if args.quick else args.lines
    with contextlib.ExitStack() as stack:
        server_url = args.pg_url
        if not server_url:
            pg_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="resight-bench-pg-"))) / "data"
            stack.callback(stop_embedded_pg, pg_dir)
            server_url = database_url(embedded_pg_url(pg_dir), "postgres")
        results = run_benchmark(ensure_database(server_url, "bench_readers"), lines)
    results["command"] = "python -m bench.readers.run " + " ".join(argv if argv is not None else sys.argv[1:])
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    return results


if __name__ == "__main__":
    main()
