"""Fault scenarios outside pytest, timed: each kills or starves a real `resight run` on a small
generated sample, then times the rerun that recovers (its wall time is the recovery time) and
compares the final state with the sample's manifest.

    .venv/bin/python -m bench.faults.run [--providers 2] [--days 1] [--output bench/faults/results.json]

Scenarios: a clean run (the baseline), kill -9 at silver's write, at a dimension upsert and at
the facts ``COPY``; Postgres stopped in the middle of the facts ``COPY`` (the embedded default:
warehouse and Dagster's storage on one server); the S3 endpoint answering 500/503/SlowDown
(a proxy in front of a moto server) with the landing zone and the lake on S3.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.faults.s3proxy import Faults, FlakyS3Proxy
from bench.faults.scenarios import PATIENCE_SECONDS, Platform, kill, prepare
from bench.machine import machine
from resight_platform.io.postgres import (
    embedded_pg_url,
    ensure_database,
    sqlalchemy_url,
    stop_embedded_pg,
)

KILL_POINTS = ("silver_write", "dim_product_upsert", "fact_sales_copy")


def _result(name: str, platform: Platform, fault: str, first: Any, rerun: Any) -> dict[str, Any]:
    state = platform.state()
    return {
        "scenario": name,
        "fault": fault,
        "first_run": first,
        "rerun_exit": rerun.returncode,
        "recovery_seconds": round(rerun.seconds, 1),
        "differences_from_manifest": state.differences(platform.manifest),
        "manifest": {
            "fact_lines": platform.manifest["sales"]["lines"],
            "fact_net_amount": platform.manifest["sales"]["net_amount"],
        },
        "state": state.summary(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=2)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="resight-faults-bench-"))
    size = {"providers": args.providers, "days": args.days}
    results: list[dict[str, Any]] = []
    server = embedded_pg_url(work / "shared-pg")  # the warehouses of the scenarios that keep Postgres up

    def fresh(name: str) -> dict[str, str]:
        warehouse = ensure_database(server, f"{name}_{uuid.uuid4().hex[:6]}")
        dagster = ensure_database(server, f"{name}_dagster_{uuid.uuid4().hex[:6]}")
        return {"RESIGHT_PG_URL": warehouse, "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster)}

    def scenario(name: str, body: Callable[[], dict[str, Any]]) -> None:
        print(f"{name} ...", flush=True)
        started = time.perf_counter()
        result = body()
        result["scenario_seconds"] = round(time.perf_counter() - started, 1)
        results.append(result)
        print(
            f"  recovery {result['recovery_seconds']} s, exit {result['rerun_exit']},"
            f" differences {result['differences_from_manifest'] or 'none'}",
            flush=True,
        )

    def baseline() -> dict[str, Any]:
        platform = prepare(work / "baseline", fresh("baseline"), **size)
        run = platform.run()
        return _result("baseline", platform, "none: one clean run (its time, for comparison)", None, run)

    def killed(point: str) -> Callable[[], dict[str, Any]]:
        def body() -> dict[str, Any]:
            platform = prepare(work / point, fresh(point.replace("_", "")), **size)
            process = platform.pause_at(point)
            debris = len(platform.debris())
            kill(process)
            runs = platform.state().runs
            rerun = platform.run()
            return _result(
                f"kill -9 at {point}", platform, f"SIGKILL at {point}", {"runs": runs, "debris": debris}, rerun
            )

        return body

    def postgres() -> dict[str, Any]:
        platform = prepare(work / "postgres", {}, **size)  # the embedded default, a server of its own
        try:
            process = platform.pause_at("fact_sales_copy")
            stop_embedded_pg(platform.home / "pg")
            os.kill(process.pid, signal.SIGCONT)
            _, stderr = process.communicate(timeout=PATIENCE_SECONDS)
            first = {"exit": process.returncode, "last_line": stderr.strip().splitlines()[-1]}
            rerun = platform.run()
            return _result("Postgres stopped mid-run", platform, "Postgres stopped in the facts COPY", first, rerun)
        finally:
            stop_embedded_pg(platform.home / "pg")

    def s3() -> dict[str, Any]:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        os.environ.update(
            {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
        )
        try:
            endpoint = f"http://{host}:{port}"
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="faults")
            with FlakyS3Proxy(endpoint) as proxy:
                env = {
                    **fresh("s3"),
                    "RESIGHT_LANDING_URL": "s3://faults/landing",
                    "RESIGHT_LAKE_URL": "s3://faults/lake",
                    "AWS_ENDPOINT_URL": proxy.url,
                }
                platform = prepare(work / "s3", env, **size)
                faults = Faults(every=3, budget=60, outage_at=150, outage_seconds=3.0)
                proxy.schedule(faults)
                run = platform.run()
                served = dict(faults.served)
                fault = (
                    "S3: every 3rd request failed until 60 had, all for 3 s from the 150th;"
                    f" served {served} of {faults.requests} requests"
                )
                return _result("S3 errors and throttling", platform, fault, None, run)
        finally:
            moto.stop()

    try:
        scenario("baseline", baseline)
        for point in KILL_POINTS:
            scenario(f"kill -9 at {point}", killed(point))
        scenario("Postgres stopped mid-run", postgres)
        scenario("S3 errors and throttling", s3)
    finally:
        stop_embedded_pg(work / "shared-pg")
        shutil.rmtree(work, ignore_errors=True)
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "size": size,
        "results": results,
    }
    args.output.write_text(json.dumps(out, indent=2) + "\n")
    print(f"results in {args.output}")


if __name__ == "__main__":
    main()
