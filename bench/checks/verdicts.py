"""What locating a failed check by partition costs (issue 21 point 3): ``ModelCheck`` fed
``--partitions`` small silver-sales partitions as a range run's stream feeds it (five rows each),
then each partition's ``checks_failed`` (what ``io/lake.partition_figures`` adds per partition)
and the result, with one partition failing and with every partition failing; median of
``--repeat``.

    .venv/bin/python -m bench.checks.verdicts                       # 3,000 partitions, 5 repeats
    .venv/bin/python -m bench.checks.verdicts --partitions 300 --repeat 3

For a before figure, run this file against a checkout of ``resight_platform`` from before the
verdicts: it then times validation and the result alone (``checks_failed`` does not exist there).
Figures go to ``bench/checks/results.json`` (``--output``) and, as a Markdown table, to stdout.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl

from bench.machine import machine
from resight_platform.defs import checks
from resight_platform.schemas import SilverSales

RESULTS_PATH = Path(__file__).with_name("results.json")
ROWS_PER_PARTITION = 5


def _partition(index: int, *, failing: bool) -> pl.DataFrame:
    """Five valid silver sales lines of partition ``index``; the first has quantity 0 if ``failing``."""
    schema = {name: column.dtype.type for name, column in SilverSales.to_schema().columns.items()}
    rows = [
        {
            "order_id": f"O{index}-{line}",
            "line_no": 1,
            "ordered_at": datetime(2026, 10, 1, 14, tzinfo=UTC),
            "business_date": date(2026, 10, 1),
            "provider": "pawmart",
            "store_id": "S1",
            "channel": "store",
            "sku": "SKU-1",
            "quantity": 0 if failing and line == 0 else 2,
            "unit_price": 12.99,
            "discount": 1.0,
            "net_amount": 24.98,
            "customer_id": None,
            "status": "completed",
            "ship_state": None,
            "_source_file": "pawmart/sales/2026-10-01/a.csv",
            "_row_number": line + 1,
            "_from_registry": None,
        }
        for line in range(ROWS_PER_PARTITION)
    ]
    return pl.DataFrame(rows, schema=schema)


def run_once(frames: Sequence[pl.DataFrame]) -> dict[str, Any]:
    """One check over ``frames`` (partition ``k{i}`` each): seconds and what it found."""
    check = checks.ModelCheck(["silver", "sales"], SilverSales)
    verdicts = getattr(checks, "checks_failed", None)
    started = time.perf_counter()
    for i, frame in enumerate(frames):
        check.frame(frame, f"k{i}")
    marked = [verdicts(f"k{i}", check) for i in range(len(frames))] if verdicts else []
    result = check.result()
    seconds = time.perf_counter() - started
    failing = sum(1 for m in marked if m[checks.CHECKS_FAILED].value != "none") if verdicts else None
    return {"seconds": seconds, "failing_rows": result.metadata["failing_rows"].value, "partitions_marked": failing}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.checks.verdicts", description=__doc__.split("\n")[0])
    parser.add_argument("--partitions", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    good = [_partition(i, failing=False) for i in range(args.partitions)]
    bad = [_partition(i, failing=True) for i in range(args.partitions)]
    cases = {"one partition failing": [bad[0], *good[1:]], "every partition failing": bad}
    summary = []
    for case, frames in cases.items():
        run_once(frames[:10])  # warm-up: Pandera builds its checks on the first call
        runs = [run_once(frames) for _ in range(args.repeat)]
        summary.append(
            {
                "case": case,
                "median_seconds": round(statistics.median(r["seconds"] for r in runs), 4),
                "min_seconds": round(min(r["seconds"] for r in runs), 4),
                "failing_rows": runs[0]["failing_rows"],
                "partitions_marked": runs[0]["partitions_marked"],
                "verdicts": hasattr(checks, "checks_failed"),
            }
        )
    results = {
        "machine": machine(),
        "command": "python -m bench.checks.verdicts " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": date.today().isoformat(),
        "partitions": args.partitions,
        "rows_per_partition": ROWS_PER_PARTITION,
        "summary": summary,
    }
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"| case ({args.partitions} partitions) | median s | min s | failing rows | partitions marked |")
    print("|---|---:|---:|---:|---:|")
    for s in summary:
        cells = (s["case"], s["median_seconds"], s["min_seconds"], s["failing_rows"], s["partitions_marked"])
        print("| " + " | ".join(str(cell) for cell in cells) + " |")
    return results


if __name__ == "__main__":
    main()
