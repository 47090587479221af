"""Retention over a year of partitions: the first run that catches up, then the daily runs after it.

A local lake (and landing zone, dead-letter area) is filled with ``--days`` business days × ``--sources``
providers of sales: ``--files`` small landing files per partition, loaded in the ledger, and one
bronze, silver, gold-facts and quarantine file per partition, written in that order (so every rule
holds), plus a dead letter a day. Retention then runs as of the day after the last one with the
default policy (landing and bronze 90 days, silver 365, quarantine and dead letters 180), and again
on each of ``--steady-days`` following days. Per run: seconds to plan, seconds to delete, objects
and bytes deleted per layer, objects listed and the LIST requests an S3 store would make for those
listings (pages of 1,000 keys; ``retention._Lister``).

    .venv/bin/python -m bench.retention.run                              # 365 days × 20 sources
    .venv/bin/python -m bench.retention.run --days 60 --sources 3 --steady-days 2 --pg-url postgresql://…

Postgres: ``--pg-url`` (a server; a scratch database is made on it and dropped), else an embedded
server in a temporary directory. Figures go to ``bench/retention/results.json`` (``--output``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
from psycopg import sql

from bench.machine import machine
from resight_platform.io.lake import write_partition
from resight_platform.io.ops import FileRecord, migrate, record_files
from resight_platform.io.postgres import connect, database_url, embedded_pg_url, stop_embedded_pg
from resight_platform.io.storage import LocalStore, ObjectStore, S3Store
from resight_platform.retention import LAYERS, RetentionStores, apply_retention, plan_retention
from resight_platform.settings import RetentionSettings

BENCH_DIR = Path(__file__).resolve().parent
FIRST_DAY = date(2025, 11, 1)


@contextlib.contextmanager
def scratch_database(pg_url: str | None, work: Path) -> Iterator[str]:
    """A fresh database on ``pg_url``'s server (or an embedded server in ``work``), dropped after."""
    stack = contextlib.ExitStack()
    with stack:
        if pg_url is None:
            pg_dir = work / "pg"
            stack.callback(stop_embedded_pg, pg_dir)
            pg_url = embedded_pg_url(pg_dir)
        server = database_url(pg_url, "postgres")
        name = f"bench_retention_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
        try:
            yield database_url(pg_url, name)
        finally:
            with psycopg.connect(server, autocommit=True) as admin:
                admin.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


def _stamp(store: ObjectStore, key: str, moment: float) -> None:
    """Date a local file (layers written in order); S3 keeps the order it was written in."""
    path = store.local_path(key)
    if path is not None:
        os.utime(path, (moment, moment))


def fill(conn: psycopg.Connection, stores: RetentionStores, days: int, sources: int, files: int) -> dict[str, int]:
    """A year of small partitions and their ledger rows; returns the objects written per layer."""
    frame = pl.DataFrame({"order_id": ["a", "b", "c"], "net_amount": [1.0, 2.0, 3.0]})
    parquet = {}
    written = dict.fromkeys(LAYERS, 0)
    providers = [f"p{n:03d}" for n in range(sources)]
    base = time.time() - 4 * 3600
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        records = []
        for provider in providers:
            for n in range(files):
                key = f"{provider}/sales/{day.isoformat()}/sales_{n}.csv"
                stores.landing.write_bytes(key, b"order_id,net_amount\na,1\nb,2\nc,3\n")
                etag = next(i.etag for i in stores.landing.list(key))
                records.append(
                    FileRecord(key, "x" * 64, 30, provider, "sales", day, "loaded", rows_in=3, etag=etag, rows_loaded=3)
                )
                written["landing"] += 1
            where = {"date": day.isoformat(), "source": provider}
            for moment, (layer, table) in enumerate(
                (("bronze", "sales"), ("silver", "sales"), ("gold", "fact_sales"), ("quarantine", "sales"))
            ):
                key = f"{layer}/{table}/date={day.isoformat()}/source={provider}/part-0.parquet"
                if layer not in parquet:
                    write_partition(stores.lake, [layer, table], where, frame)
                    parquet[layer] = stores.lake.read_bytes(key)
                else:
                    stores.lake.write_bytes(key, parquet[layer])
                _stamp(stores.lake, key, base + moment)
                if layer in written:
                    written[layer] += 1
        stores.dead_letters.write_bytes(f"{day.isoformat()}/0123456789abcdef/bad.csv", b"x")
        written["dead_letter"] += 1
        record_files(conn, records, run_id="bench", now=datetime.now(UTC))
    return written


class ListCounter:
    """The ListObjectsV2 requests S3 stores' clients actually send (botocore's event hook)."""

    def __init__(self, stores: RetentionStores) -> None:
        self.calls = 0
        for store in {id(s): s for s in (stores.landing, stores.lake, stores.dead_letters)}.values():
            if isinstance(store, S3Store):
                store.client.meta.events.register("before-call.s3.ListObjectsV2", self._count)

    def _count(self, **_: Any) -> None:
        self.calls += 1


def one_run(
    conn: psycopg.Connection, stores: RetentionStores, today: date, label: str, counter: ListCounter | None = None
) -> dict[str, Any]:
    before = counter.calls if counter else 0
    started = time.perf_counter()
    plan = plan_retention(conn, stores, RetentionSettings(), today)
    planned = time.perf_counter()
    sent = counter.calls - before if counter else None
    report = apply_retention(conn, stores, plan, run_id=f"bench-{label}", now=datetime.now(UTC))
    done = time.perf_counter()
    layers = report.by_layer()
    return {
        "run": label,
        "as_of": today.isoformat(),
        "plan_seconds": round(planned - started, 3),
        "delete_seconds": round(done - planned, 3),
        "objects_deleted": sum(c["objects"] for c in layers.values()),
        "bytes_deleted": sum(c["bytes"] for c in layers.values()),
        "quarantine_rows_deleted": layers["quarantine"]["rows"],
        "by_layer": {layer: c["objects"] for layer, c in layers.items()},
        "kept_past_cutoff": sum(plan.kept.values()),
        "objects_listed": plan.listed,
        "list_requests": plan.list_requests,
        "list_requests_sent": sent,
    }


def _local_stores(work: Path) -> RetentionStores:
    return RetentionStores(LocalStore(work / "landing"), LocalStore(work / "lake"), LocalStore(work / "dead"))


def _s3_stores(stack: contextlib.ExitStack) -> RetentionStores:
    """A bucket on a moto S3 server started here (stopped with ``stack``), with test credentials."""
    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench")):
        os.environ.setdefault(name, value)
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stack.callback(server.stop)
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    lake = S3Store("bench-retention", "lake", endpoint_url=endpoint)
    lake.client.create_bucket(Bucket="bench-retention")
    return RetentionStores(
        S3Store("bench-retention", "landing", endpoint_url=endpoint),
        lake,
        S3Store("bench-retention", "dead", endpoint_url=endpoint),
    )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--files", type=int, default=2, help="landing files per partition")
    parser.add_argument("--steady-days", type=int, default=3)
    parser.add_argument("--pg-url")
    parser.add_argument(
        "--s3", action="store_true", help="landing, lake and dead letters on a moto S3 server in this process"
    )
    parser.add_argument("--output", default=str(BENCH_DIR / "results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="resight-bench-retention-") as tmp:
        work = Path(tmp)
        with contextlib.ExitStack() as stack:
            stores = _s3_stores(stack) if args.s3 else _local_stores(work)
            counter = ListCounter(stores) if args.s3 else None
            url = stack.enter_context(scratch_database(args.pg_url, work))
            conn = stack.enter_context(connect(url))
            migrate(conn)
            started = time.perf_counter()
            written = fill(conn, stores, args.days, args.sources, args.files)
            fill_seconds = time.perf_counter() - started
            first = FIRST_DAY + timedelta(days=args.days)
            runs = [one_run(conn, stores, first, "catch-up", counter)]
            for n in range(1, args.steady_days + 1):
                runs.append(one_run(conn, stores, first + timedelta(days=n), f"day+{n}", counter))
            logged = conn.execute("select count(*) from ops.retention_log").fetchone()
    figures = {
        "machine": machine(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": "s3 (moto, in process)" if args.s3 else "local",
        "days": args.days,
        "sources": args.sources,
        "files_per_partition": args.files,
        "objects_written": written,
        "fill_seconds": round(fill_seconds, 1),
        "runs": runs,
        "retention_log_rows": int(logged[0]) if logged else 0,
    }
    Path(args.output).write_text(json.dumps(figures, indent=2) + "\n")
    print(
        "| run | as of | plan s | delete s | objects deleted | landing | bronze | silver | quarantine | dead letters"
        " | listed | LIST requests (sent) |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in runs:
        by = r["by_layer"]
        sent = "" if r["list_requests_sent"] is None else f" ({r['list_requests_sent']})"
        print(
            f"| {r['run']} | {r['as_of']} | {r['plan_seconds']} | {r['delete_seconds']} | {r['objects_deleted']:,}"
            f" | {by['landing']:,} | {by['bronze']:,} | {by['silver']:,} | {by['quarantine']:,}"
            f" | {by['dead_letter']:,} | {r['objects_listed']:,} | {r['list_requests']}{sent} |"
        )
    return figures


if __name__ == "__main__":
    main()
