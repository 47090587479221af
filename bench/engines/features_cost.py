"""What the shared (Narwhals) ``build_features`` costs Polars: this tree's against another git
ref's (lead before the port by default), on a seeded synthetic weekly frame of many series × 260
weeks, side by side in one process, alternately, ``--repeat`` times each (best and median).

The results are compared too: every column but the two price features must be identical; the
price features now divide whole cents by whole units once (the old code summed float dollars in
Polars' sliding window), so ``price_ulps`` counts the values that moved in their last bits,
``price_largest_relative`` says by how much, and ``price_null_changes`` counts the infinities of
the old float window (a residue of revenue over zero units) that are now null.

    .venv/bin/python -m bench.engines.features_cost                         # 2,000 series
    .venv/bin/python -m bench.engines.features_cost --series 300 --repeat 3 --before HEAD~2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from bench.engines.gold_cost import _module_at

#: lead just before build_features was ported to Narwhals (issue 18).
BEFORE_PORT = "c29bc13"
WEEKS = 260
PRICE_FEATURES = ("price_ratio", "price_trend")


def weekly_frame(series: int, weeks: int = WEEKS, seed: int = 18) -> pl.DataFrame:
    """Seeded weekly demand: ``series`` series (the vocabularies', then made-up regions), each from
    a random first week, seasonal Poisson units, revenue in whole cents at a price drawn per week,
    5 % of weeks missing."""
    from resight_platform.ml.features import CATEGORIES, SERIES, SPECIES, TARGET, WEEK

    rng = np.random.default_rng(seed)
    regions = [f"R{i}" for i in range(series // (len(CATEGORIES) * len(SPECIES)) + 1)]
    keys = [(c, s, r) for r in regions for c in CATEGORIES for s in SPECIES][:series]
    start = date(2021, 1, 4)
    columns: dict[str, list[Any]] = {WEEK: [], **{c: [] for c in SERIES}, TARGET: [], "revenue": []}
    for category, species, region in keys:
        first = int(rng.integers(0, weeks // 3))
        week = np.arange(first, weeks)
        units = rng.poisson(rng.uniform(1, 200) * (1 + 0.5 * np.cos(2 * np.pi * week / 52)))
        kept = rng.random(len(week)) > 0.05
        cents = units * rng.integers(199, 5_000, len(week))
        for w, u, c in zip(week[kept], units[kept], cents[kept], strict=True):
            columns[WEEK].append(start + timedelta(weeks=int(w)))
            for name, value in zip(SERIES, (category, species, region), strict=True):
                columns[name].append(value)
            columns[TARGET].append(float(u))
            columns["revenue"].append(int(c) / 100)
    return pl.DataFrame(columns)


def compare(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, Any]:
    if before.schema != after.schema or before.height != after.height:
        return {"same_schema_and_rows": False}
    others = [c for c in before.columns if c not in PRICE_FEATURES]
    moved = {
        c: (before[c] != after[c]).fill_null(True) & ~(before[c].is_null() & after[c].is_null()) for c in PRICE_FEATURES
    }
    relative = {c: ((before[c] - after[c]).abs() / after[c].abs()).filter(moved[c]).max() for c in PRICE_FEATURES}
    return {
        "same_schema_and_rows": True,
        "other_columns_identical": before.select(others).equals(after.select(others)),
        # A null now where the old code had a value: an ``inf`` from the float window's residue
        # (a 4-week revenue of 1e-15 over zero units) that the sum of cents does not leave.
        "price_null_changes": {c: int((before[c].is_null() != after[c].is_null()).sum()) for c in PRICE_FEATURES},
        "price_infinite_before": {c: int(before[c].is_infinite().sum()) for c in PRICE_FEATURES},
        "price_infinite_after": {c: int(after[c].is_infinite().sum()) for c in PRICE_FEATURES},
        "price_ulps": {c: int(moved[c].sum()) for c in PRICE_FEATURES},
        "price_largest_relative": {c: float(relative[c] or 0.0) for c in PRICE_FEATURES},  # type: ignore[arg-type]
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", default=BEFORE_PORT, help="the git ref to compare with (default: before the port)")
    parser.add_argument("--output", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args(argv)

    from resight_platform.ml import features

    old = _module_at(args.before, "resight_platform/ml/features.py", "_bench_features_before")
    weekly = weekly_frame(args.series)
    print(f"weekly: {weekly.height:,} rows of {args.series:,} series", file=sys.stderr)
    seconds: dict[str, list[float]] = {"before": [], "after": []}
    results: dict[str, pl.DataFrame] = {}
    for _ in range(args.repeat):
        for label, module in (("before", old), ("after", features)):
            started = time.perf_counter()
            results[label] = module.build_features(weekly)
            seconds[label].append(time.perf_counter() - started)
    report = {
        "weekly_rows": weekly.height,
        "feature_rows": results["after"].height,
        "series": args.series,
        "weeks": WEEKS,
        "before": args.before,
        "seconds_best": {k: round(min(v), 3) for k, v in seconds.items()},
        "seconds_median": {k: round(statistics.median(v), 3) for k, v in seconds.items()},
        "agreement": compare(results["before"], results["after"]),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
