"""Issue 18: the same silver → gold → mart transforms on Polars and on Spark ``local[2]``, side by
side in one run, at 1M, 3M and 20M sales lines (a day of every provider and feed).

For each size:

1. Generate the day with the platform's generator (``bench.throughput.run``'s peak day, every
   provider and feed, with its bad rows) and read every landed file into bronze Parquet, one file
   per landed file, under ``{workdir}/x{lines}/bronze/{feed}/``. Reused when present; not timed.
2. Each engine in a fresh process (so its peak RSS is its own, the Spark JVM included: the process
   tree is sampled), timed per stage:

   - ``silver``: ``clean_feed`` of catalog, stores, customers, then sales (with the products the
     catalog gave). Polars cleans one (business date, provider) partition at a time, as the
     platform's silver asset does; Spark cleans the whole day in one plan, as a Spark backfill does.
     Valid rows are written to Parquet (Polars a file per partition; Spark its part files).
   - ``dims``: the four dimensions (built in Polars on the driver on both engines: BLAKE2b keys).
   - ``fact``: ``build_fact_sales``, written to Parquet.
   - ``marts``: every mart, collected (marts are small).
   - ``session``: Spark's session start (Polars: 0).
3. The results must be identical: silver rows and quarantine by rule per feed, the fact's rows and
   cents, and every mart row by row. ``identical`` says so; a difference fails the run.

The pandas peer (``bench/throughput/pandas_peer.py``) covers bronze → silver only; its figures for
the same day are in ``bench/throughput/results.json``.

    .venv/bin/python -m bench.engines.run                       # 1M, 3M and 20M lines
    .venv/bin/python -m bench.engines.run --quick               # 200k and 1M lines
    .venv/bin/python -m bench.engines.run --lines 1000000 --engines polars spark

Figures go to ``bench/engines/results.json`` (``--output``) and, as a Markdown table, to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine

__all__ = ["main", "to_markdown"]

RESULTS_PATH = Path(__file__).with_name("results.json")
ENGINES = ("polars", "spark")
SILVER_ORDER = ("catalog", "stores", "customers", "sales")
NOW = datetime(2026, 12, 1, tzinfo=UTC)
#: The Spark session of the benchmark: two local cores, as the machines here have; a driver big
#: enough for the day (the JVM's heap, beside the Python process). The shuffle partitions are sized
#: to the day (``shuffle_partitions``).
SPARK_CONF = {
    "spark.default.parallelism": "2",
    # Bronze read in at least 8 splits (4 per core): by default a scan is cut in ~2 (one per core)
    # and Parquet rounds that to 3 tasks at 20M lines, which leaves one core idle for the last
    # third of silver's heaviest stage.
    "spark.sql.files.minPartitionNum": "8",
    "spark.driver.memory": "4g",
    # The UI's REST API gives the stages' CPU time and shuffle bytes (``_stage_totals``).
    "spark.ui.enabled": "true",
}
#: Bronze rows per shuffle partition. A shuffle partition of the labelled rows is one persisted block;
#: Spark reads a spilled block back into the heap as one buffer, so blocks must stay well inside
#: the heap: with a fixed 4 partitions, 20M lines made ~5M-row blocks and the 4g driver ran out of
#: heap re-caching one (``BlockManager.maybeCacheDiskBytesInMemory``; docs/engines.md).
ROWS_PER_SHUFFLE_PARTITION = 250_000


def shuffle_partitions(bronze: Path) -> int:
    """``spark.sql.shuffle.partitions`` for a day: one per ``ROWS_PER_SHUFFLE_PARTITION`` bronze
    rows of its largest feed, at least 4 (the figures up to 1M lines were taken with 4). The rows
    come from the Parquet footers (no data read)."""
    import polars as pl

    largest = 0
    for feed in SILVER_ORDER:
        files = sorted((bronze / feed).glob("*.parquet"))
        if files:
            largest = max(largest, pl.scan_parquet(files).select(pl.len()).collect().item())
    return max(4, -(-largest // ROWS_PER_SHUFFLE_PARTITION))


def spark_conf(bronze: Path) -> dict[str, str]:
    """The benchmark's Spark settings for the day under ``bronze``."""
    return {**SPARK_CONF, "spark.sql.shuffle.partitions": str(shuffle_partitions(bronze))}


# --------------------------------------------------------------------------------- bronze (setup)
def prepare(workdir: Path, lines: int, providers: int) -> dict[str, Any]:
    """The day's landing files and their bronze Parquet (reused when already there)."""
    from bench.throughput.run import _generate

    landing = workdir / "landing"
    generated = _generate(landing, lines, providers)
    bronze = workdir / "bronze"
    marker = bronze / "done.json"
    if generated["reused"] and marker.exists():
        return {"generate_seconds": generated["seconds"], **json.loads(marker.read_text())}
    shutil.rmtree(bronze, ignore_errors=True)
    started = time.perf_counter()
    counts = _bronze(landing, bronze)
    figures = {"bronze_seconds": round(time.perf_counter() - started, 1), "bronze_rows": counts}
    marker.write_text(json.dumps(figures))
    return {"generate_seconds": generated["seconds"], **figures}


def _bronze(landing: Path, out: Path) -> dict[str, int]:
    """Every landed file read by the platform's bronze reader, one Parquet file each (numbered in
    the order of every file under ``landing``, dead-lettered ones included)."""
    from resight_platform.sources.registry import load_registry
    from resight_platform.transforms.bronze import RefusedFile, read_landing_tree

    counts: dict[str, int] = {}
    for n, landed in enumerate(read_landing_tree(landing, load_registry(), ingested_at=NOW)):
        if isinstance(landed, RefusedFile):
            continue  # dead-lettered by the platform: not silver's input
        target = out / landed.feed / f"part-{n:05d}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        landed.frame.write_parquet(target)
        counts[landed.feed] = counts.get(landed.feed, 0) + landed.frame.height
    return counts


# ------------------------------------------------------------------------------ one engine (child)
def run_engine(engine: str, bronze: Path, out: Path, spark: Any = None) -> dict[str, Any]:
    """The transforms on ``engine``, timed per stage; returns the figures and the results to compare.

    ``spark``: a session to use (left running); by default one is started, and stopped at the end."""
    import polars as pl

    from resight_platform.engines import from_polars, to_polars
    from resight_platform.sources.registry import load_registry
    from resight_platform.transforms import gold, marts
    from resight_platform.transforms.silver import clean_feed

    registry = load_registry()
    mappings = registry.mappings
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    own_session = engine == "spark" and spark is None
    if own_session:
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from resight_platform.engines.spark import session, spark_config

        spark = session(spark_config(master="local[2]", extra=spark_conf(bronze)))
        spark.range(1).count()
    seconds["session"] = time.perf_counter() - started

    def timed(stage: str, work: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = work()
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t0
        return value

    results: dict[str, Any] = {"silver": {}, "quarantine": {}}
    silver: dict[str, Any] = {}

    def clean(feed: str, products: pl.DataFrame | None) -> None:
        files = sorted((bronze / feed).glob("*.parquet"))
        target = out / "silver" / feed
        if engine == "polars":
            rows, dropped = 0, []
            if files:
                frame = pl.scan_parquet(files)
                cells = frame.select("_business_date", "_provider").unique().sort("_business_date", "_provider")
                for day, provider in cells.collect().iter_rows():
                    raw = frame.filter((pl.col("_business_date") == day) & (pl.col("_provider") == provider))
                    result = clean_feed(
                        feed, raw.collect(), registry=registry, mappings=mappings, now=NOW, products=products
                    )
                    part = target / f"date={day}" / f"source={provider}" / "part-0.parquet"
                    part.parent.mkdir(parents=True, exist_ok=True)
                    result.valid.write_parquet(part)
                    rows += result.valid.height
                    dropped.append(result.quarantine.select("rule"))
            silver[feed] = pl.scan_parquet(str(target / "**" / "*.parquet"), hive_partitioning=False)
            quarantine = pl.concat(dropped) if dropped else pl.DataFrame(schema={"rule": pl.String})
        else:
            frame = spark.read.parquet(*(str(f) for f in files))
            result = clean_feed(
                feed,
                frame,
                registry=registry,
                mappings=mappings,
                now=NOW,
                products=from_polars(frame, products) if products is not None else None,
            )
            valid: Any = result.valid  # a Spark DataFrame
            valid.write.mode("overwrite").parquet(str(target))
            quarantine = to_polars(result.quarantine.select("rule"))
            # What cleaning persisted is dropped once the feed is written, as the silver asset does:
            # kept, four feeds' cached rows filled the driver's heap and the facts' broadcast of the
            # dimensions failed at 20M lines.
            spark.catalog.clearCache()
            silver[feed] = spark.read.parquet(str(target))
            rows = silver[feed].count()
        results["silver"][feed] = rows
        results["quarantine"][feed] = dict(sorted(quarantine.group_by("rule").len().iter_rows()))

    for feed in SILVER_ORDER:
        products = None
        if feed == "sales":
            products = to_polars(silver["catalog"].select("provider", "sku", "category"))
        timed("silver", lambda feed=feed, products=products: clean(feed, products))  # type: ignore[misc]

    def dims() -> dict[str, Any]:
        built = {
            "dim_provider": gold.build_dim_provider(registry),
            "dim_product": gold.build_dim_product(silver["catalog"]),
            "dim_store": gold.build_dim_store(silver["stores"]),
            "dim_customer": gold.build_dim_customer(silver["customers"], mappings),
        }
        return {name: to_polars(frame) for name, frame in built.items()}

    dimensions = timed("dims", dims)

    def on_engine(frame: pl.DataFrame) -> Any:
        return from_polars(silver["sales"], frame) if engine == "spark" else frame.lazy()

    def fact() -> Any:
        if engine == "spark":
            built: Any = gold.build_fact_sales(
                silver["sales"], **{name: on_engine(frame) for name, frame in dimensions.items()}, mappings=mappings
            )
            built.write.mode("overwrite").parquet(str(out / "fact_sales"))
            return spark.read.parquet(str(out / "fact_sales"))
        # One (date, source) partition at a time, as the platform's fact asset builds them.
        dims_lazy = {name: frame.lazy() for name, frame in dimensions.items()}
        for part in sorted((out / "silver" / "sales").glob("date=*/source=*/part-0.parquet")):
            built = gold.build_fact_sales(pl.scan_parquet(part), **dims_lazy, mappings=mappings)
            target = out / "fact_sales" / part.relative_to(out / "silver" / "sales")
            target.parent.mkdir(parents=True, exist_ok=True)
            built.write_parquet(target)
        return pl.scan_parquet(str(out / "fact_sales" / "**" / "*.parquet"), hive_partitioning=False)

    facts = timed("fact", fact)
    totals = to_polars(facts.select("net_amount", "quantity", "status"))
    results["fact_rows"] = totals.height
    results["fact_cents"] = int((totals.get_column("net_amount") * 100).round().cast(pl.Int64).sum())
    results["fact_units"] = int(totals.get_column("quantity").sum())
    results["fact_by_status"] = dict(sorted(totals.group_by("status").len().iter_rows()))

    def all_marts() -> dict[str, pl.DataFrame]:
        product = on_engine(dimensions["dim_product"])
        built = {
            name: getattr(marts, name)(facts, product) for name in marts.MART_NAMES if name != "top_customers_monthly"
        }
        built["top_customers_monthly"] = marts.top_customers_monthly(
            facts, product, on_engine(dimensions["dim_customer"])
        )
        return {name: to_polars(frame) for name, frame in built.items()}

    built_marts = timed("marts", all_marts)
    for name, frame in built_marts.items():
        frame.sort(frame.columns).write_parquet(out / f"mart_{name}.parquet")
    seconds["total"] = sum(seconds.values())
    work: dict[str, Any] = {"cpu_seconds": round(_cpu_seconds(spark), 1)}
    if engine == "spark":
        work["shuffle_partitions"] = int(spark.conf.get("spark.sql.shuffle.partitions"))
    if own_session:
        work["spark_stages"] = _stage_totals(spark)
        spark.stop()
    return {"seconds": {k: round(v, 2) for k, v in seconds.items()}, **work, "results": results}


def _cpu_seconds(spark: Any) -> float:
    """CPU time (user + system) of this process and, on Spark, of its JVM: what the work cost the
    cores, whatever else the machine was running."""
    import psutil

    times = [psutil.Process().cpu_times()]
    if spark is not None:
        times.append(psutil.Process(spark._jvm.java.lang.ProcessHandle.current().pid()).cpu_times())
    return sum(t.user + t.system for t in times)


def _stage_totals(spark: Any) -> dict[str, Any]:
    """The session's completed stages summed (Spark's REST API): executor CPU and run time, input,
    shuffle and output bytes: the per-core throughput and shuffle sizes a cluster projection needs."""
    from urllib.request import urlopen

    url = spark.sparkContext.uiWebUrl
    if not url:
        return {}
    app = spark.sparkContext.applicationId
    with urlopen(f"{url}/api/v1/applications/{app}/stages?status=complete", timeout=30) as response:
        stages = json.load(response)
    fields = {
        "executor_cpu_seconds": ("executorCpuTime", 1e-9),
        "executor_run_seconds": ("executorRunTime", 1e-3),
        "gc_seconds": ("jvmGcTime", 1e-3),
        "input_mib": ("inputBytes", 2**-20),
        "shuffle_write_mib": ("shuffleWriteBytes", 2**-20),
        "shuffle_read_mib": ("shuffleReadBytes", 2**-20),
        "output_mib": ("outputBytes", 2**-20),
        "spill_disk_mib": ("diskBytesSpilled", 2**-20),
    }
    totals: dict[str, Any] = {
        name: round(sum(stage.get(field, 0) for stage in stages) * scale, 1) for name, (field, scale) in fields.items()
    }
    totals["stages"] = len(stages)
    return totals


# ------------------------------------------------------------------------------------ the parent
def _tree_rss(pid: int) -> int:
    import psutil

    try:
        process = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)])
    except psutil.Error:
        return 0


def _child(engine: str, bronze: Path, out: Path) -> dict[str, Any]:
    """``run_engine`` in a fresh process, its tree's RSS sampled every 0.2 s."""
    command = [sys.executable, "-m", "bench.engines.run", "--child", engine, str(bronze), str(out)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.2):
            peak = max(peak, _tree_rss(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"{engine} run failed (exit {process.returncode})")
    figures: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    figures["wall_seconds"] = round(time.perf_counter() - started, 1)
    figures["peak_rss_mib"] = round(peak / 2**20)
    return figures


def _same_marts(outs: Sequence[Path]) -> dict[str, bool]:
    import polars as pl

    same = {}
    for path in sorted(outs[0].glob("mart_*.parquet")):
        frames = [pl.read_parquet(out / path.name) for out in outs]
        same[path.stem.removeprefix("mart_")] = all(frames[0].equals(f) for f in frames[1:])
    return same


def run_size(workdir: Path, lines: int, providers: int, engines: Sequence[str]) -> dict[str, Any]:
    size_dir = workdir / f"x{lines}"
    setup = prepare(size_dir, lines, providers)
    by_engine = {engine: _child(engine, size_dir / "bronze", size_dir / f"out-{engine}") for engine in engines}
    results = [figures.pop("results") for figures in by_engine.values()]
    marts = _same_marts([size_dir / f"out-{engine}" for engine in engines])
    identical = all(r == results[0] for r in results[1:]) and all(marts.values())
    row: dict[str, Any] = {
        "lines": lines,
        "setup": setup,
        "engines": by_engine,
        "results": results[0],
        "marts_identical": marts,
        "identical": identical,
    }
    if "polars" in by_engine and "spark" in by_engine:
        row["spark_over_polars"] = {
            "wall": round(by_engine["spark"]["wall_seconds"] / by_engine["polars"]["wall_seconds"], 1),
            "rss": round(by_engine["spark"]["peak_rss_mib"] / by_engine["polars"]["peak_rss_mib"], 1),
        }
    if not identical:
        row["differences"] = results
    return row


def to_markdown(report: dict[str, Any]) -> str:
    lines = [
        "| lines | engine | session s | silver s | dims s | fact s | marts s | wall s | CPU s | peak RSS MiB"
        " | identical |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for size in report["sizes"]:
        for engine, figures in size["engines"].items():
            s = figures["seconds"]
            lines.append(
                f"| {size['lines']:,} | {engine} | {s['session']:.1f} | {s['silver']:.1f} | {s['dims']:.1f} |"
                f" {s['fact']:.1f} | {s['marts']:.1f} | {figures['wall_seconds']:.1f} |"
                f" {figures.get('cpu_seconds', float('nan')):.1f} |"
                f" {figures['peak_rss_mib']:,} | {size['identical']} |"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.engines.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1_000_000, 3_000_000, 20_000_000])
    parser.add_argument("--quick", action="store_true", help="200k and 1M lines")
    parser.add_argument("--providers", type=int, default=30)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--workdir", type=Path, default=Path.home() / ".cache" / "resight-bench" / "engines")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--child", nargs=3, metavar=("ENGINE", "BRONZE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        engine, bronze, out = args.child
        print(json.dumps(run_engine(engine, Path(bronze), Path(out))))
        return 0
    sizes = [200_000, 1_000_000] if args.quick else args.lines
    report: dict[str, Any] = {
        "command": "python -m bench.engines.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "spark_conf": {**SPARK_CONF, "spark.sql.shuffle.partitions": "max(4, largest feed's bronze rows / 250,000)"},
        "sizes": [],
    }
    for lines in sizes:
        report["sizes"].append(run_size(args.workdir, lines, args.providers, args.engines))
        args.output.write_text(json.dumps(report, indent=2) + "\n")
        print(to_markdown(report), flush=True)
    return 0 if all(size["identical"] for size in report["sizes"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
