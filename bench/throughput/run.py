"""Issue 3: a peak day (20M sales lines) from landing to gold in Postgres, timed per stage, with its
peers side by side in the same run.

For each size (``--lines`` × each ``--scale``):

1. Generate the day with the platform's generator (every provider, every feed, its bad rows and
   files) into ``{workdir}/x{scale}/landing``; reused when its manifest matches. Not timed.
2. **Platform**: in a fresh process, a fresh embedded Postgres (or a fresh database on
   ``--pg-url``) and a Dagster instance on it, ``pipeline.run_pipeline``, the same runs as
   ``resight demo``. Wall time per run, the bronze/silver/fact steps from the instance's events,
   the time the warehouse IO manager spent loading ``gold.fact_sales`` (``pg_load_seconds``), and
   the process's peak RSS. Its loaded totals are checked against the generator's manifest.
3. **Raw COPY peer**, same process and server right after: the fact rows from the same Parquet
   file the platform wrote, one ``COPY`` into a table built ``LIKE`` the day's fact partition
   (same columns and indexes). The limit for the load.
4. **pandas peer** (``bench/throughput/pandas_peer.py``), fresh process, same landing files: the
   same bronze → silver transforms in pandas, partition by partition; its counts must equal the
   platform's. Only at the sizes in ``--pandas-scales``.

    .venv/bin/python -m bench.throughput.run                    # 20M lines, then 60M (scale 3)
    .venv/bin/python -m bench.throughput.run --quick            # 1M and 3M lines, a few minutes
    .venv/bin/python -m bench.throughput.run --lines 2000000 --scale 1 --pg-url postgresql://…
    .venv/bin/python -m bench.throughput.run --pandas-scales --malloc-conf dirty_decay_ms:1000

``--malloc-conf`` starts the platform process with that jemalloc configuration (Polars' allocator
keeps freed pages for 10 s by default, which the peak RSS counts).

Figures go to ``bench/throughput/results.json`` (``--output``) and, as a Markdown table, to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine

__all__ = ["PEAK_DAY", "main", "run_platform", "to_markdown"]

RESULTS_PATH = Path(__file__).with_name("results.json")
PEAK_DAY = date(2025, 11, 28)  # Black Friday: inside the partitions, a real peak
TARGETS = {
    "whole_day_seconds": 180.0,
    "pandas_speedup": 10.0,
    "copy_ratio": 0.8,
    "peak_rss_gib": 4.0,
}


def _peak_rss_bytes() -> int:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


#: Polars allocates through its own jemalloc, configured by this variable when the process starts.
MALLOC_CONF_VARIABLE = "_RJEM_MALLOC_CONF"


def _generate(landing: Path, lines: int, providers: int) -> dict[str, Any]:
    from resight_platform.sample.generator import generate

    manifest_path = landing.parent / "manifest.json"
    wanted = {"lines": lines, "providers": providers, "day": PEAK_DAY.isoformat()}
    marker = landing.parent / "bench.json"
    if landing.is_dir() and marker.exists() and json.loads(marker.read_text()) == wanted:
        return {"seconds": 0.0, "reused": True, "manifest": json.loads(manifest_path.read_text())}
    shutil.rmtree(landing.parent, ignore_errors=True)
    landing.mkdir(parents=True)
    started = time.perf_counter()
    generate(str(landing), providers=providers, days=1, start=PEAK_DAY, sales_lines_per_day=lines)
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps(wanted))
    return {"seconds": seconds, "reused": False, "manifest": json.loads(manifest_path.read_text())}


class _RssSampler:
    """The process's resident set every ``interval`` seconds on a daemon thread (``/proc``), so the
    peak can be put on the step that was running when it happened."""

    def __init__(self, interval: float = 0.2) -> None:
        import threading

        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)

    def _run(self, interval: float) -> None:
        statm = Path("/proc/self/statm")
        while not self._stop.wait(interval):
            self.samples.append((time.time(), int(statm.read_text().split()[1]) * self._page))

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> int:
        return max((rss for at, rss in self.samples if start <= at <= end), default=0)


def _step_windows(instance: Any, run_id: str) -> dict[str, tuple[float, float]]:
    """(start, end) timestamps of every successful step of a run."""
    import dagster as dg

    starts: dict[str, float] = {}
    out: dict[str, tuple[float, float]] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or event.step_key is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_SUCCESS and event.step_key in starts:
            out[event.step_key] = (starts[event.step_key], record.timestamp)
    return out


def _step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Wall seconds of every step of a run, from its STEP_START / STEP_SUCCESS events."""
    return {step: end - start for step, (start, end) in _step_windows(instance, run_id).items()}


def _metadata(instance: Any, key: list[str]) -> dict[str, Any]:
    import dagster as dg

    event = instance.get_latest_materialization_event(dg.AssetKey(key))
    if event is None or event.asset_materialization is None:
        return {}
    return {name: getattr(value, "value", value) for name, value in event.asset_materialization.metadata.items()}


def _raw_copy(pg_url: str, fact_files: list[Path], *, bare: bool = False) -> dict[str, Any]:
    """One COPY of the day's fact rows, from the platform's Parquet files (read a million rows at a
    time, binary format where the platform would use it), in one transaction, into a table like the
    day's fact partition: with its columns and indexes (``bare=False``: the same end state as the
    platform's load, without foreign-key checks), or its columns only (``bare=True``: the floor, no
    index at all)."""
    import polars as pl
    import pyarrow.parquet as pq
    from psycopg import sql

    from resight_platform.io.postgres import connect, copy_frame

    child = f"fact_sales_p{PEAK_DAY:%Y%m%d}"
    like = "INCLUDING DEFAULTS" if bare else "INCLUDING ALL"
    with connect(pg_url) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS bench")
        conn.execute("DROP TABLE IF EXISTS bench.fact_copy")
        conn.execute(
            sql.SQL("CREATE TABLE bench.fact_copy (LIKE {} {})").format(sql.Identifier("gold", child), sql.SQL(like))
        )
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'bench'"
                " AND table_name = 'fact_copy' ORDER BY ordinal_position"
            ).fetchall()
        ]
        names = set(pl.read_parquet_schema(fact_files[0]))
        started = time.perf_counter()
        rows = 0
        wanted = [c for c in columns if c in names]
        with conn.transaction(), conn.cursor() as cur:
            for fact_file in fact_files:
                for batch in pq.ParquetFile(fact_file).iter_batches(batch_size=1_000_000, columns=wanted):
                    frame = pl.from_arrow(batch)
                    assert isinstance(frame, pl.DataFrame)
                    rows += copy_frame(cur, "bench", "fact_copy", frame, chunk_rows=1_000_000)
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE bench.fact_copy")
    return {"seconds": seconds, "rows": rows}


def run_platform(landing: Path, home: Path, pg_url: str | None) -> dict[str, Any]:
    """The platform end to end on ``landing`` (what ``resight demo`` runs), then the raw COPY peer."""
    import dagster as dg

    from resight_platform.cli import _environment, _quiet_library_warnings, instance_env
    from resight_platform.definitions import build_definitions
    from resight_platform.io.ops import migrate
    from resight_platform.io.postgres import connect
    from resight_platform.io.storage import open_store
    from resight_platform.pipeline import run_pipeline
    from resight_platform.resources import resolve_pg_url
    from resight_platform.settings import Settings
    from resight_platform.sources.registry import load_registry

    _quiet_library_warnings()
    env = {"RESIGHT_HOME": str(home), "RESIGHT_LANDING_URL": str(landing), "RESIGHT_LAKE_URL": str(home / "lake")}
    if pg_url:
        env["RESIGHT_PG_URL"] = pg_url
    with _environment(env):
        settings = Settings.from_env()
        url = resolve_pg_url(settings)
        with connect(url) as conn:
            migrate(conn)
        defs = build_definitions(settings, url)
        created_after = datetime.now(UTC)
        started = time.perf_counter()
        with _environment(instance_env(settings, url)), dg.DagsterInstance.get() as instance:
            with _RssSampler() as sampler:
                report = run_pipeline(defs, instance, landing=open_store(str(landing)), registry=load_registry())
            wall = time.perf_counter() - started
            runs = instance.get_run_records(filters=dg.RunsFilter(created_after=created_after))
            steps: dict[str, float] = {}
            step_rss: dict[str, int] = {}
            for record in runs:
                steps.update(_step_seconds(instance, record.dagster_run.run_id))
                for step, (begin, end) in _step_windows(instance, record.dagster_run.run_id).items():
                    step_rss[step] = sampler.peak_between(begin, end)
            fact_meta = _metadata(instance, ["gold", "fact_sales"])
        with connect(url) as conn:
            totals = conn.execute("SELECT count(*), coalesce(sum(net_amount), 0) FROM gold.fact_sales").fetchone()
            assert totals is not None
            lines, net = totals
            counted = conn.execute("SELECT count(*) FROM ops.quarantine").fetchone()
            assert counted is not None
            quarantined = counted[0]
        peak = _peak_rss_bytes()  # the platform's, before the peer below reads anything
        day_dir = home / "lake" / "gold" / "fact_sales" / f"date={PEAK_DAY.isoformat()}"
        fact_files = sorted(day_dir.glob("source=*/part-0.parquet"))  # one per provider since issue 4
        copy = _raw_copy(url, fact_files)
        bare = _raw_copy(url, fact_files, bare=True)
    return {
        "whole_day_seconds": wall,
        "runs": {name: seconds for name, _ok, seconds in report.runs},
        "steps": steps,
        "pg_load_seconds": float(fact_meta.get("pg_load_seconds", 0.0)),
        "fact_rows": int(lines),
        "fact_net_amount": f"{net:.2f}",
        "quarantined_rows": int(quarantined),
        "raw_copy": copy,
        "raw_copy_bare": bare,
        "peak_rss_bytes": peak,
        "step_peak_rss_bytes": step_rss,
    }


def run_pandas(landing: Path, out: Path) -> dict[str, Any]:
    from dataclasses import asdict

    from bench.throughput.pandas_peer import run_pandas as peer

    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    report = peer(landing, dates=[PEAK_DAY], out_dir=out)
    return {"seconds": time.perf_counter() - started, "report": asdict(report), "peak_rss_bytes": _peak_rss_bytes()}


def _child(mode: str, args: Sequence[str], malloc_conf: str | None = None) -> dict[str, Any]:
    """Run one side in a fresh Python process (its own peak RSS, no shared caches)."""
    command = [sys.executable, "-m", "bench.throughput.run", "--child", mode, *args]
    env = dict(os.environ)
    if malloc_conf is not None:
        env[MALLOC_CONF_VARIABLE] = malloc_conf
    cwd = Path(__file__).resolve().parents[2]
    done = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} side failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _size(args: argparse.Namespace, scale: int, workdir: Path) -> dict[str, Any]:
    lines = args.lines * scale
    base = workdir / f"x{scale}"
    landing = base / "landing"
    print(f"[x{scale}] generating {lines:,} sales lines x {args.providers} providers", file=sys.stderr, flush=True)
    generated = _generate(landing, lines, args.providers)
    manifest = generated.pop("manifest")
    home = base / "home"
    shutil.rmtree(home, ignore_errors=True)
    print(f"[x{scale}] platform", file=sys.stderr, flush=True)
    side = ["--landing", str(landing), "--home", str(home)] + (["--pg-url", args.pg_url] if args.pg_url else [])
    plat = _child("platform", side, args.malloc_conf)
    if plat["fact_rows"] != manifest["sales"]["lines"] or plat["fact_net_amount"] != manifest["sales"]["net_amount"]:
        raise RuntimeError(
            f"platform loaded {plat['fact_rows']} lines / {plat['fact_net_amount']} USD, the manifest says "
            f"{manifest['sales']['lines']} / {manifest['sales']['net_amount']}"
        )
    result: dict[str, Any] = {
        "scale": scale,
        "sales_lines": lines,
        "valid_sales_lines": manifest["sales"]["lines"],
        "landing_bytes": sum(p.stat().st_size for p in landing.rglob("*") if p.is_file()),
        "generate": generated,
        "platform": plat,
    }
    if scale in args.pandas_scales:
        print(f"[x{scale}] pandas peer", file=sys.stderr, flush=True)
        result["pandas"] = _child("pandas", ["--landing", str(landing), "--home", str(base / "pandas")])
    if not args.pg_url:  # the embedded server outlives its process: stop it, then free the disk
        from resight_platform.io.postgres import stop_embedded_pg

        stop_embedded_pg(home / "pg")
    shutil.rmtree(home, ignore_errors=True)
    return result


def _stage(steps: dict[str, float], prefix: str) -> float:
    return sum(seconds for step, seconds in steps.items() if step.startswith(prefix))


def summarise(size: dict[str, Any]) -> dict[str, Any]:
    plat = size["platform"]
    steps = plat["steps"]
    bronze, silver = _stage(steps, "bronze__"), _stage(steps, "silver__")
    figures: dict[str, Any] = {
        "sales_lines": size["sales_lines"],
        "whole_day_seconds": plat["whole_day_seconds"],
        "bronze_seconds": bronze,
        "silver_seconds": silver,
        "bronze_silver_seconds": bronze + silver,
        "dimensions_seconds": plat["runs"].get("dimensions_job", 0.0),
        "fact_sales_seconds": steps.get("gold__fact_sales", 0.0),
        "daily_mart_seconds": steps.get("marts__daily_sales", 0.0),
        "monthly_marts_seconds": plat["runs"].get("monthly_marts_job", 0.0),
        "pg_load_seconds": plat["pg_load_seconds"],
        "raw_copy_seconds": plat["raw_copy"]["seconds"],
        "copy_ratio": plat["raw_copy"]["seconds"] / plat["pg_load_seconds"] if plat["pg_load_seconds"] else None,
        "raw_copy_bare_seconds": plat.get("raw_copy_bare", {}).get("seconds"),
        "bare_copy_ratio": (
            plat["raw_copy_bare"]["seconds"] / plat["pg_load_seconds"]
            if plat.get("raw_copy_bare") and plat["pg_load_seconds"]
            else None
        ),
        "peak_rss_gib": plat["peak_rss_bytes"] / 2**30,
        "peak_rss_step": max(
            plat.get("step_peak_rss_bytes") or {"–": 0}, key=lambda step: plat["step_peak_rss_bytes"].get(step, 0)
        ),
        "fact_rows": plat["fact_rows"],
    }
    if "pandas" in size:
        figures["pandas_seconds"] = size["pandas"]["seconds"]
        figures["pandas_peak_rss_gib"] = size["pandas"]["peak_rss_bytes"] / 2**30
        figures["pandas_speedup"] = size["pandas"]["seconds"] / (bronze + silver)
    return figures


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    return f"{value:,}{unit}"


def to_markdown(results: dict[str, Any]) -> str:
    sizes = [summarise(size) for size in results["sizes"]]
    header = "| figure | " + " | ".join(f"{s['sales_lines']:,} lines" for s in sizes) + " | target |"
    lines = [header, "|---|" + "---:|" * len(sizes) + "---|"]
    rows = [
        ("landing → gold + marts, wall", "whole_day_seconds", " s", "< 180 s"),
        ("bronze (all feeds)", "bronze_seconds", " s", ""),
        ("silver (all feeds)", "silver_seconds", " s", ""),
        ("pandas peer bronze → silver", "pandas_seconds", " s", ""),
        ("bronze + silver", "bronze_silver_seconds", " s", "< 60 s at 20M (revised, docs/architecture.md)"),
        ("speed-up vs pandas (bronze + silver)", "pandas_speedup", "×", "≥ 10× asked; revised"),
        ("dimensions run", "dimensions_seconds", " s", ""),
        ("fact_sales step (build + lake + Postgres)", "fact_sales_seconds", " s", ""),
        ("  of which Postgres load", "pg_load_seconds", " s", ""),
        ("raw COPY peer, same rows and indexes", "raw_copy_seconds", " s", ""),
        ("load speed vs raw COPY (peer ÷ platform)", "copy_ratio", "×", "≥ 0.8×"),
        ("raw COPY floor, same rows, no index", "raw_copy_bare_seconds", " s", ""),
        ("load speed vs the floor (floor ÷ platform)", "bare_copy_ratio", "×", ""),
        ("daily mart step", "daily_mart_seconds", " s", ""),
        ("monthly marts run", "monthly_marts_seconds", " s", ""),
        ("peak RSS, platform process", "peak_rss_gib", " GiB", "< 4 GiB, flat at 3×"),
        ("step running at the peak", "peak_rss_step", "", ""),
        ("peak RSS, pandas process", "pandas_peak_rss_gib", " GiB", ""),
        ("rows in gold.fact_sales (= manifest)", "fact_rows", "", ""),
    ]
    for label, key, unit, target in rows:
        lines.append(f"| {label} | " + " | ".join(_fmt(s.get(key), unit) for s in sizes) + f" | {target} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.throughput.run", description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=20_000_000, help="sales lines of the day at scale 1")
    parser.add_argument("--scale", type=int, nargs="+", default=[1, 3], help="sizes as multiples of --lines")
    parser.add_argument("--pandas-scales", type=int, nargs="*", default=[1], help="scales that also run pandas")
    parser.add_argument("--providers", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="1M lines at scales 1 and 3")
    parser.add_argument("--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "resight-bench")
    parser.add_argument("--pg-url", default=None, help="a Postgres server URL instead of the embedded one")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument(
        "--malloc-conf",
        default=None,
        help=f"{MALLOC_CONF_VARIABLE} for the platform process (Polars' jemalloc), e.g. dirty_decay_ms:1000",
    )
    parser.add_argument("--child", choices=["platform", "pandas"], help=argparse.SUPPRESS)
    parser.add_argument("--landing", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child == "platform":
        print(json.dumps(run_platform(args.landing, args.home, args.pg_url)))
        return {}
    if args.child == "pandas":
        print(json.dumps(run_pandas(args.landing, args.home)))
        return {}
    if args.quick:
        args.lines = 1_000_000
    results: dict[str, Any] = {
        "machine": machine(),
        "command": "python -m bench.throughput.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "malloc_conf": args.malloc_conf,
        "date": date.today().isoformat(),
        "sizes": [_size(args, scale, args.workdir) for scale in args.scale],
    }
    results["summary"] = [summarise(size) for size in results["sizes"]]
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
