"""What the shared (Narwhals) gold and marts cost Polars: the fact build, every mart and the ML
weekly demand on a ~1M-line fact, this tree's code against another git ref's (main before the port by
default), side by side.

Both versions run in this process on the same frames, alternately, ``--repeat`` times each; the
figure is each step's best time (the least disturbed by the other helpers' JVMs on these 2 cores).
Silver sales are synthetic (seeded, vectorised): several providers, three months, online sales
with no store, a share of lines on SKUs, stores and customers the dimensions lack (key 0), every
order status. The dimensions are built from synthetic silver catalog, stores and customers.

Each result is also compared between the versions: the fact must be identical; a mart's counts
identical and its money equal to the cent (the new marts sum cents, the old ones floats:
``money_ulps`` counts the values that differ in their last bits, ``money_cents`` the ones that
differ by a cent or more, which must be 0).

    .venv/bin/python -m bench.engines.gold_cost                    # 1M lines against main before the port
    .venv/bin/python -m bench.engines.gold_cost --lines 200000 --repeat 1 --before HEAD~3
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl

from resight_platform.transforms.marts import MART_NAMES

#: main just before silver, gold and the marts were ported to Narwhals (issue 18).
BEFORE_PORT = "6b5edee"

__all__ = ["compare", "main", "silver_frames"]

ROOT = Path(__file__).resolve().parents[2]
PROVIDERS = ("pawmart", "petopia", "chewyish", "petdirect", "vetcare_partners")
SKUS, STORES, CUSTOMERS = 3_000, 60, 50_000
START, DAYS = date(2026, 8, 1), 92
#: Out of 100 lines: on an SKU / store / customer not in its dimension (key 0).
UNKNOWN_PERCENT = 2
MARTS = MART_NAMES


def _pick(index: pl.Expr, seed: int, modulo: int) -> pl.Expr:
    """A seeded pseudo-random integer in [0, modulo) per row (a hash of the row index)."""
    return (index.hash(seed) % modulo).cast(pl.Int64)


def silver_frames(lines: int) -> dict[str, pl.DataFrame]:
    """Synthetic silver sales (``lines`` rows), catalog, stores and customers, as clean_feed gives them."""
    from resight_platform.sources.mappings import load_mappings

    states = sorted(load_mappings().regions)
    providers = pl.Series(PROVIDERS)
    i = pl.int_range(lines, dtype=pl.Int64).alias("i")
    online = _pick(pl.col("i"), 3, 10) < 4
    unknown = _pick(pl.col("i"), 4, 100) < UNKNOWN_PERCENT
    quantity = (_pick(pl.col("i"), 5, 4) + 1).cast(pl.Int32)
    price_cents = _pick(pl.col("i"), 6, 6_000) + 199
    discount_cents = pl.when(_pick(pl.col("i"), 7, 4) == 0).then(150).otherwise(0)
    net_cents = quantity.cast(pl.Int64) * price_cents - discount_cents
    order = pl.col("i") // 3
    day = pl.lit(START) + pl.duration(days=_pick(order, 8, DAYS))
    statuses = pl.Series(["completed"] * 8 + ["cancelled", "returned"])
    sales = (
        pl.select(i)
        .with_columns(
            pl.lit(providers).get(_pick(order, 1, len(PROVIDERS))).alias("provider"),
            day.alias("business_date"),
        )
        .select(
            pl.format("O{}", order).alias("order_id"),
            (pl.col("i") % 3 + 1).cast(pl.Int32).alias("line_no"),
            pl.col("business_date").cast(pl.Datetime("us", "UTC")).alias("ordered_at"),
            "business_date",
            "provider",
            pl.when(online).then(None).otherwise(pl.format("S{}", _pick(order, 9, STORES + 3))).alias("store_id"),
            pl.when(online).then(pl.lit("online")).otherwise(pl.lit("store")).alias("channel"),
            pl.when(unknown)
            .then(pl.format("NEW{}", pl.col("i") % 50))
            .otherwise(pl.format("K{}", _pick(pl.col("i"), 10, SKUS)))
            .alias("sku"),
            quantity.alias("quantity"),
            (price_cents / 100).alias("unit_price"),
            (discount_cents / 100).cast(pl.Float64).alias("discount"),
            (net_cents.cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64).alias("net_amount"),
            pl.when(_pick(order, 11, 5) == 0)
            .then(None)
            .otherwise(pl.format("C{}", _pick(order, 12, CUSTOMERS + CUSTOMERS // 50)))
            .alias("customer_id"),
            pl.lit(statuses).get(_pick(pl.col("i"), 13, len(statuses))).alias("status"),
            pl.when(online).then(pl.lit(pl.Series(states)).get(_pick(order, 14, len(states)))).alias("ship_state"),
            pl.format("{}/sales/{}/sales.csv", "provider", "business_date").alias("_source_file"),
            (pl.col("i") + 1).alias("_row_number"),
        )
    )
    common = {
        "business_date": pl.lit(START),
        "_source_file": pl.lit("dimension.csv"),
        "_row_number": pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
    }

    def members(prefix: str, count: int) -> pl.DataFrame:
        return pl.DataFrame({"provider": list(PROVIDERS)}).join(
            pl.DataFrame({"id": [f"{prefix}{n}" for n in range(count)]}), how="cross"
        )

    catalog = members("K", SKUS).select(
        "provider",
        pl.col("id").alias("sku"),
        pl.lit("012345678905").alias("upc"),
        pl.format("Product {}", "id").alias("product_name"),
        pl.format("Brand {}", pl.col("id").str.slice(1).cast(pl.Int64) % 40).alias("brand"),
        pl.lit("Maker").alias("manufacturer"),
        pl.lit(pl.Series(["food", "toys", "health"]))
        .get(pl.col("id").str.slice(1).cast(pl.Int64) % 3)
        .alias("category"),
        pl.lit(pl.Series(["dog", "cat"])).get(pl.col("id").str.slice(1).cast(pl.Int64) % 2).alias("species"),
        pl.lit(1.0).alias("pack_size"),
        pl.lit("ct").alias("pack_unit"),
        pl.lit(9.99).alias("list_price"),
        **common,
    )
    stores = members("S", STORES).select(
        "provider",
        pl.col("id").alias("store_id"),
        pl.format("Store {}", "id").alias("store_name"),
        pl.lit("Springfield").alias("city"),
        pl.lit(pl.Series(states)).get(pl.col("id").str.slice(1).cast(pl.Int64) % len(states)).alias("state"),
        pl.lit("00000").alias("zip"),
        pl.lit(pl.Series(["South", "West", "Northeast", "Midwest"]))
        .get(pl.col("id").str.slice(1).cast(pl.Int64) % 4)
        .alias("region"),
        **common,
    )
    customers = members("C", CUSTOMERS).select(
        "provider",
        pl.col("id").alias("customer_id"),
        pl.lit(date(2025, 1, 1)).alias("signup_date"),
        pl.lit(pl.Series(states)).get(pl.col("id").str.slice(1).cast(pl.Int64) % len(states)).alias("state"),
        pl.lit("dog").alias("pet_species"),
        **common,
    )
    return {"sales": sales, "catalog": catalog, "stores": stores, "customers": customers}


def _module_at(ref: str, path: str, name: str) -> ModuleType:
    """The module at ``path`` as it is at git ``ref``, imported under ``name``."""
    source = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True, check=True)
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    exec(compile(source.stdout, f"{ref}:{path}", "exec"), module.__dict__)  # our own code, at a git ref
    return module


def _timed(work: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = work()
    return time.perf_counter() - started, value


def _run(
    gold: ModuleType, marts: ModuleType, features: ModuleType, frames: dict[str, pl.DataFrame]
) -> tuple[dict[str, float], dict[str, pl.DataFrame]]:
    """Each step's seconds and result with one version of the code."""
    from resight_platform.sources.mappings import load_mappings
    from resight_platform.sources.registry import load_registry

    mappings = load_mappings()
    seconds: dict[str, float] = {}
    out: dict[str, pl.DataFrame] = {}
    seconds["dims"], dims = _timed(
        lambda: {
            "dim_provider": gold.build_dim_provider(load_registry()),
            "dim_product": gold.build_dim_product(frames["catalog"].lazy()),
            "dim_store": gold.build_dim_store(frames["stores"].lazy()),
            "dim_customer": gold.build_dim_customer(frames["customers"].lazy(), mappings),
        }
    )
    lazy = {name: frame.lazy() for name, frame in dims.items()}
    seconds["fact"], out["fact_sales"] = _timed(
        lambda: gold.build_fact_sales(frames["sales"].lazy(), **lazy, mappings=mappings)
    )
    fact, products, customers = out["fact_sales"].lazy(), lazy["dim_product"], lazy["dim_customer"]
    for name in MARTS:
        extra = (customers,) if name == "top_customers_monthly" else ()
        seconds[name], out[name] = _timed(lambda name=name, extra=extra: getattr(marts, name)(fact, products, *extra))  # type: ignore[misc]
    seconds["marts"] = sum(seconds[name] for name in MARTS)
    seconds["weekly_demand"], demand = _timed(
        lambda: features.weekly_demand(fact, products, lazy["dim_provider"], panel_coverage=0.5)
    )
    out["weekly_demand"] = demand.frame
    return seconds, out


MONEY = {"revenue", "amount", "avg_order_value"}


def compare(before: pl.DataFrame, after: pl.DataFrame) -> dict[str, Any]:
    """Whether two versions' results agree: same schema and rows, money to the cent (``money_ulps``:
    values that differ in their last bits only; ``money_cents``: by a cent or more)."""
    if before.schema != after.schema or before.height != after.height:
        return {"same_schema_and_rows": False}
    order = [c for c in before.columns if c not in MONEY and before.schema[c] != pl.Float64]
    a, b = before.sort(order, nulls_last=True), after.sort(order, nulls_last=True)
    money = [c for c in before.columns if c in MONEY]
    others = [c for c in before.columns if c not in MONEY]
    ulps = sum(int((a[c] != b[c]).sum()) for c in money)
    cents = sum(int(((a[c] - b[c]).abs() >= 0.005).sum()) for c in money)
    shares = [c for c in others if before.schema[c] == pl.Float64]
    exact = [c for c in others if c not in shares]
    share_error = max((float((a[c] - b[c]).abs().max() or 0.0) for c in shares), default=0.0)  # type: ignore[arg-type]
    return {
        "same_schema_and_rows": True,
        "other_columns_identical": a.select(exact).equals(b.select(exact)),
        "money_ulps": ulps,
        "money_cents": cents,
        "largest_share_difference": share_error,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--before", default=BEFORE_PORT, help="the git ref of the code to compare with (default: main before the port)"
    )
    parser.add_argument("--output", type=Path, help="also write the figures here (JSON)")
    args = parser.parse_args(argv)

    from resight_platform.ml import features
    from resight_platform.transforms import gold, marts

    old_gold = _module_at(args.before, "resight_platform/transforms/gold.py", "_bench_gold_before")
    old_marts = _module_at(args.before, "resight_platform/transforms/marts.py", "_bench_marts_before")
    old_features = _module_at(args.before, "resight_platform/ml/features.py", "_bench_features_before")
    started = time.perf_counter()
    frames = silver_frames(args.lines)
    print(f"silver: {frames['sales'].height:,} sales lines in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    best: dict[str, dict[str, float]] = {"before": {}, "after": {}}
    results: dict[str, dict[str, pl.DataFrame]] = {}
    for _ in range(args.repeat):
        versions = {"before": (old_gold, old_marts, old_features), "after": (gold, marts, features)}
        for label, (g, m, f) in versions.items():
            seconds, results[label] = _run(g, m, f, frames)
            for step, value in seconds.items():
                best[label][step] = min(value, best[label].get(step, value))
    agreement = {name: compare(results["before"][name], results["after"][name]) for name in results["after"]}
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "lines": args.lines,
        "fact_rows": results["after"]["fact_sales"].height,
        "repeat": args.repeat,
        "before": args.before,
        "seconds": {
            step: {"before": round(best["before"][step], 3), "after": round(best["after"][step], 3)}
            for step in best["after"]
        },
        "agreement": agreement,
    }
    if args.output:
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"| step | {args.before} (s) | this tree (s) | ratio |\n|---|---:|---:|---:|")
    for step, pair in report["seconds"].items():
        ratio = pair["after"] / pair["before"] if pair["before"] else float("nan")
        print(f"| {step} | {pair['before']:.3f} | {pair['after']:.3f} | {ratio:.2f} |")
    print(json.dumps({"agreement": agreement}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
