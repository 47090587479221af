"""What silver's one definition (Narwhals over the frame's engine) costs a Polars run: ``clean_sales``
on ~1M bronze rows with the code before the port (a git revision's ``transforms/silver.py``) and
with this tree's, side by side in one process, alternating runs, outputs compared.

The bronze rows are the generated sample's sales lines (every registered provider, so every
datetime, money and value-map form) repeated with distinct order ids and file names up to
``--rows``.

Run: ``python -m bench.engines.silver_cost [--rows 1000000] [--repeat 3] [--before REV]``
(writes ``bench/engines/silver_cost.json``, or ``--out``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from bench.machine import machine

#: main just before silver, gold and the marts were ported to Narwhals (issue 18).
BEFORE_PORT = "6b5edee"

RESULTS = Path(__file__).with_name("silver_cost.json")
NOW = datetime(2026, 10, 3, tzinfo=UTC)


def sample_sales(root: Path) -> pl.DataFrame:
    """The generated sample's bronze sales rows (all registered providers, 2 days)."""
    from resight_platform.sample.generator import generate
    from resight_platform.sources.registry import load_registry
    from resight_platform.transforms.bronze import BronzeFile, read_landing_tree

    registry = load_registry()
    generate(str(root), providers=len(registry.providers), days=2, start=date(2026, 10, 1), sales_lines_per_day=2000)
    landed = read_landing_tree(root, registry, ingested_at=NOW, feeds=["sales"])
    return pl.concat(f.frame for f in landed if isinstance(f, BronzeFile))


def scaled(sample: pl.DataFrame, rows: int) -> pl.DataFrame:
    """``sample`` repeated up to ``rows`` rows, each copy's order ids and file names made its own."""
    copies = -(-rows // sample.height)
    parts = [
        sample.with_columns(
            pl.col("order_id") + pl.lit(f"-{i}"), pl.col("_source_file").str.replace(r"(\.[^.]+)$", f"-{i:05d}$1")
        )
        for i in range(copies)
    ]
    return pl.concat(parts).head(rows)


def silver_at(revision: str, into: Path) -> ModuleType:
    """``resight_platform/transforms/silver.py`` as of ``revision``, imported as its own module."""
    text = subprocess.run(
        ["git", "show", f"{revision}:resight_platform/transforms/silver.py"], check=True, capture_output=True, text=True
    ).stdout
    path = into / "silver_before.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("silver_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["silver_before"] = module
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--before", default=BEFORE_PORT, help="the git revision of the code before the port (default: main before it)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the figures are written")
    args = parser.parse_args(argv)

    from resight_platform.sources.mappings import load_mappings
    from resight_platform.sources.registry import load_registry
    from resight_platform.transforms import silver

    registry, mappings = load_registry(), load_mappings()
    with tempfile.TemporaryDirectory(prefix="resight-silver-cost-") as tmp:
        bronze = scaled(sample_sales(Path(tmp) / "landing"), args.rows)
        before = silver_at(args.before, Path(tmp))
        runs = {"before": before.clean_sales, "after": silver.clean_sales}
        samples: dict[str, list[float]] = {name: [] for name in runs}
        results: dict[str, Any] = {}
        for _ in range(args.repeat):
            for name, clean in runs.items():
                started = time.perf_counter()
                results[name] = clean(bronze, registry=registry, mappings=mappings, now=NOW)
                samples[name].append(time.perf_counter() - started)
    same = all(getattr(results["before"], f).equals(getattr(results["after"], f)) for f in ("valid", "quarantine"))
    report = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "command": "python -m bench.engines.silver_cost " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": bronze.height,
        "providers": bronze.get_column("_provider").n_unique(),
        "loaded": results["after"].valid.height,
        "quarantined": results["after"].quarantine.height,
        "outputs_identical": same,
        "before_revision": args.before,
        "before_seconds": statistics.median(samples["before"]),
        "after_seconds": statistics.median(samples["after"]),
        "before_samples": samples["before"],
        "after_samples": samples["after"],
        "load_average": os.getloadavg(),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
