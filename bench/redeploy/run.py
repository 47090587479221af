"""The zero-downtime redeploy as a benchmark: the production topology of
resight_platform_tests/topology.py (code server, webserver, daemon, MLflow as processes, a Postgres
server of their own, S3 over HTTP on a moto server), files dropped at a steady rate while the code
server is replaced (and the location reloaded), then the daemon, then the webserver restarted;
with ``--faults``, then a Postgres restart and a 30 s S3 outage too. Reports files landed / loaded
/ lost / duplicated, failed and stuck runs, and p50/p95 latency from landing to the ledger's
``loaded`` before, during each switch and after.

    .venv/bin/python -m bench.redeploy.run [--providers 3] [--days 3] [--lines-per-day 300]
        [--interval 2.5] [--pause 5] [--faults] [--keep] [--output bench/redeploy/results.json]

``--keep`` leaves the working directory (every process's log, the instance's files) in place and
prints where; otherwise it is removed. Every process is stopped either way.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.machine import machine
from resight_platform_tests.topology import (
    TOPOLOGY_ENV,
    Feeder,
    Topology,
    Window,
    latencies,
    make_sample,
    postgres_restart,
    redeploy,
    running,
    s3_outage,
    settle,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=3)
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--lines-per-day", type=int, default=300)
    parser.add_argument("--interval", type=float, default=2.5, help="seconds between two files")
    parser.add_argument("--pause", type=float, default=5.0, help="seconds between two switches")
    parser.add_argument("--faults", action="store_true", help="also a Postgres restart and a 30 s S3 outage")
    parser.add_argument("--keep", action="store_true", help="keep the working directory and its logs")
    parser.add_argument("--output", type=Path, default=Path(__file__).with_name("results.json"))
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    workdir = Path(tempfile.mkdtemp(prefix="resight-redeploy-"))
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    today = datetime.now(UTC).date()
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    try:
        sample = make_sample(
            workdir / "sample",
            today - timedelta(days=args.days + 1),
            providers=args.providers,
            days=args.days,
            lines_per_day=args.lines_per_day,
            seed=17,
        )
        topology = Topology(
            workdir / "topology",
            f"http://{host}:{port}",
            partitions_start=(today - timedelta(days=30)).isoformat(),
            extra_env=TOPOLOGY_ENV,
        )
        with running(topology):
            startup = {s.name: round(s.starts[-1], 1) for s in topology.services}
            feeder = Feeder(topology, sample.files, interval=args.interval).start()
            windows: list[Window] = []
            while len(feeder.dropped) < 5 and not feeder.done:
                feeder.join(timeout=1.0)
            switches: dict[str, Any] = redeploy(topology, windows, pause=args.pause)
            if args.faults:
                time.sleep(args.pause)
                switches["postgres restart"] = postgres_restart(topology, windows)
                time.sleep(args.pause)
                s3_outage(topology, windows, seconds=30.0)
                switches["s3 outage"] = 30.0
            outcome = settle(topology, sample, feeder)
            problems = outcome.problems(sample, feeder.dropped)
            loaded = sum(1 for d in feeder.dropped if outcome.ledger.get(d.key, ("",))[0] == "loaded")
            dead = sum(1 for d in feeder.dropped if outcome.ledger.get(d.key, ("",))[0] == "dead_lettered")
            result = {
                "command": " ".join(["python -m bench.redeploy.run", *sys.argv[1:]]),
                "date": started.isoformat(timespec="seconds"),
                "machine": machine(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "sample": {"files": len(sample.files), "sales_lines": sample.lines, "net_usd": sample.net},
                "startup_s": startup,
                "switches_s": switches,
                "files": {
                    "landed": len(feeder.dropped),
                    "loaded": loaded,
                    "dead_lettered": dead,
                    "expected_dead_lettered": len(sample.dead),
                    "lost": len(sample.files) - loaded - dead,
                    "duplicated_lines_in_gold": outcome.duplicate_lines,
                    "fact_lines": outcome.fact_rows,
                    "manifest_lines": sample.lines,
                },
                "runs": {
                    "total": outcome.runs,
                    "failed": outcome.failed_runs,
                    "stuck": outcome.stuck,
                    "failed_without_successful_retry": outcome.unretried,
                },
                "settled_after_feeder_s": outcome.settled_after_s,
                "latency_landing_to_loaded_s": latencies(outcome, feeder.dropped, windows),
                "problems": problems,
            }
    finally:
        moto.stop()
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
