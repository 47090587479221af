"""What the day swap costs per day: the old swap (``bench.readers.run.old_replace``) and
``PartitionSwap``, interleaved, on the work of ``io/test_postgres.py::
test_a_run_replaces_a_year_and_a_half_of_days_in_one_transaction`` (``--days`` days of 2 rows,
one transaction adding them, one replacing them; four indexes, one foreign key).

Prints, per round and writer, wall seconds and CPU seconds (this process plus its Postgres
backend, read from ``/proc``: on a machine shared with other work, wall time says little).
``python -m bench.readers.cost --pg-url postgresql://… --days 550 --rounds 3``.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import polars as pl
import psycopg

from bench.readers.run import old_replace
from resight_platform.io.postgres import DayPartitionLoad, PartitionSwap, connect

DDL = """
DROP SCHEMA IF EXISTS bench_cost CASCADE;
CREATE SCHEMA bench_cost;
CREATE TABLE bench_cost.dim_product (product_key bigint PRIMARY KEY, sku text NOT NULL UNIQUE);
CREATE TABLE bench_cost.fact_sales (
    sale_date date NOT NULL,
    product_key bigint NOT NULL REFERENCES bench_cost.dim_product (product_key),
    sku text,
    quantity int NOT NULL
) PARTITION BY RANGE (sale_date);
CREATE INDEX ON bench_cost.fact_sales (product_key);
CREATE INDEX ON bench_cost.fact_sales (sku);
CREATE INDEX ON bench_cost.fact_sales (quantity);
CREATE INDEX ON bench_cost.fact_sales (sale_date);
INSERT INTO bench_cost.dim_product VALUES (1, 'a'), (2, 'b'), (3, 'c');
"""


def _facts(day: date) -> pl.DataFrame:
    return pl.DataFrame(
        {"sale_date": [day] * 2, "product_key": [1, 2], "sku": ["sku1", "sku2"], "quantity": [1, 1]},
        schema={"sale_date": pl.Date, "product_key": pl.Int64, "sku": pl.String, "quantity": pl.Int32},
    )


def _cpu(backend: int) -> float:
    fields = open(f"/proc/{backend}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115 - one read
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") + time.process_time()


def _run(conn: psycopg.Connection[Any], writer: str, days: list[date]) -> None:
    with conn.transaction():
        swap = PartitionSwap(conn)
        for day in days:
            if writer == "old":
                old_replace(conn, day, _facts(day), "bench_cost", "fact_sales")
            else:
                load = DayPartitionLoad(conn, "bench_cost", "fact_sales", "sale_date", day, swap)
                load.copy(_facts(day))
                load.finish()
        swap.apply()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", required=True, help="a Postgres database URL on this machine")
    parser.add_argument("--days", type=int, default=550)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    days = [date(2025, 4, 1) + timedelta(days=i) for i in range(args.days)]
    for round_no in range(args.rounds):
        for writer in ("old", "new"):
            with connect(args.pg_url) as conn:
                conn.execute(DDL)
                backend = conn.info.backend_pid
                figures = []
                for _ in ("add", "replace"):
                    wall, cpu = time.perf_counter(), _cpu(backend)
                    _run(conn, writer, days)
                    figures.append((time.perf_counter() - wall, _cpu(backend) - cpu))
                count = conn.execute("SELECT count(*) FROM bench_cost.fact_sales").fetchone()
                assert count == (2 * len(days),), count
                conn.execute("DROP SCHEMA bench_cost CASCADE")
            load = os.getloadavg()[0]
            print(
                f"round {round_no + 1} {writer}: wall add {figures[0][0]:.2f} s, replace {figures[1][0]:.2f} s;"
                f" CPU add {figures[0][1]:.2f} s, replace {figures[1][1]:.2f} s,"
                f" total {figures[0][1] + figures[1][1]:.2f} s (load average {load:.1f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
