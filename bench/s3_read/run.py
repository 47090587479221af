"""Reading a lake partition on S3: what the lake does now (Polars' own S3 reader, lazily) against
its peer, the way it read before (the object fetched whole with boto3, then scanned), side by side
in the same run on the same object.

A moto S3 server runs in this process; one silver-sales-like partition of ``--rows`` rows (row
groups of 500k, as the lake writes them) is put on it. Each reader then runs ``--repeat`` times,
alternating, each time in a fresh process that answers one query: the sum of one column, and the
rows of one status (a filter the row groups cannot skip). Per run: wall seconds and the process's
peak RSS above what it held before the read (``VmHWM`` from ``/proc``, which ``exec`` resets).

    .venv/bin/python -m bench.s3_read.run                         # 5M rows, 3 repeats
    .venv/bin/python -m bench.s3_read.run --rows 1000000 --repeat 2

Figures go to ``bench/s3_read/results.json`` (``--output``) and, as a Markdown table, to stdout.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import polars as pl

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
KEY = "silver/sales/date=2026-01-01/source=bench/part-0.parquet"
READERS = ("polars_s3", "fetch_whole")
QUERIES = ("sum_one_column", "one_status")

# One read in a fresh process: prints {"seconds": …, "peak_mib": …, "base_mib": …, "answer": …}.
_READ = """
import io, json, sys, time
def hwm():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM")).split()[1]) / 1024
import polars as pl
from resight_platform.io.lake import read_table
from resight_platform.io.storage import S3Store
reader, query, url, endpoint, key = sys.argv[1:6]
store = S3Store.from_url(url, endpoint_url=endpoint)
base = hwm()
started = time.perf_counter()
if reader == "polars_s3":
    frame = read_table(store, ["silver", "sales"], [{"date": "2026-01-01", "source": "bench"}])
else:  # the peer: how the lake read S3 before
    frame = pl.read_parquet(io.BytesIO(store.read_bytes(key))).lazy()
if query == "sum_one_column":
    answer = frame.select(pl.col("quantity").sum()).collect().item()
else:
    answer = frame.filter(pl.col("status") == "returned").select(pl.len()).collect().item()
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_mib": hwm() - base, "base_mib": base, "answer": answer}))
"""


def _partition(rows: int) -> bytes:
    rng = np.random.default_rng(7)
    frame = pl.DataFrame(
        {
            "order_id": [f"B-{i:09d}" for i in range(rows)],
            "line_no": rng.integers(1, 6, rows, dtype=np.int32),
            "quantity": rng.integers(1, 10, rows, dtype=np.int32),
            "unit_price": rng.uniform(1, 90, rows).round(2),
            "status": rng.choice(["completed", "cancelled", "returned"], rows, p=[0.9, 0.04, 0.06]),
            "provider": ["bench"] * rows,
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", row_group_size=500_000)
    return buffer.getvalue()


def _read(reader: str, query: str, url: str, endpoint: str, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _READ, reader, query, url, endpoint, KEY],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        env=env,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "results.json")
    args = parser.parse_args(argv)

    from moto.server import ThreadedMotoServer

    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        client.create_bucket(Bucket=bucket)
        data = _partition(args.rows)
        client.put_object(Bucket=bucket, Key=f"lake/{KEY}", Body=data)
        url = f"s3://{bucket}/lake"
        runs: list[dict[str, Any]] = []
        for repeat in range(1, args.repeat + 1):
            for query in QUERIES:
                for reader in READERS:
                    result = _read(reader, query, url, endpoint, env)
                    runs.append({"repeat": repeat, "query": query, "reader": reader, **result})
                    print(f"  {repeat} {query:15} {reader:12} {result['seconds']:.2f} s  +{result['peak_mib']:.0f} MiB")
    finally:
        server.stop()

    answers = {(r["query"], r["reader"]): r["answer"] for r in runs}
    for query in QUERIES:
        if len({answers[(query, reader)] for reader in READERS}) != 1:
            raise SystemExit(f"the readers disagree on {query}: {answers}")
    summary = []
    for query in QUERIES:
        for reader in READERS:
            mine = [r for r in runs if r["query"] == query and r["reader"] == reader]
            summary.append(
                {
                    "query": query,
                    "reader": reader,
                    "seconds_median": statistics.median(r["seconds"] for r in mine),
                    "peak_mib_median": statistics.median(r["peak_mib"] for r in mine),
                }
            )
    figures = {"rows": args.rows, "object_mib": round(len(data) / 2**20, 1), "runs": runs, "summary": summary}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"\n{args.rows:,} rows, object {figures['object_mib']} MiB, medians of {args.repeat} runs\n")
    print("| query | reader | seconds | peak RSS above base (MiB) |\n|---|---|---:|---:|")
    for row in summary:
        print(f"| {row['query']} | {row['reader']} | {row['seconds_median']:.2f} | {row['peak_mib_median']:.0f} |")
    print(f"\nfigures written to {args.output}")
    return figures


if __name__ == "__main__":
    main()
