"""Issue 17: ``resight onboard preview`` on a 1M-line file against a real run of the same file.

The point of a preview is that it predicts a run, so both sides read the same bytes and their
counts must agree; the figures say what that prediction costs next to the run it predicts.

1. One landing file of ``--lines`` PawMart sales lines (profile ``standard_csv``) for one business
   day, ``{workdir}/landing/pawmart/sales/{day}/big.csv``, seeded; a small share of its lines are
   bad on purpose (an unknown status, an unparseable price, an exact duplicate of an earlier line,
   shares in :data:`BAD_SHARES`) so the preview has a quarantine to report. Reused when its marker
   matches. Not timed.
2. **Preview**, a fresh process: ``python -m resight_platform.cli onboard preview {day folder}
   --json`` with ``RESIGHT_HOME`` an empty temporary directory and no other ``RESIGHT_*`` variable
   (the packaged registry; no warehouse, so the ``*`` ceilings, as the run has no catalog either).
3. **Real run**, a fresh process: the registry and landing-scan jobs, then the medallion job
   (bronze + silver) over that one partition through Dagster, as ``resight run`` starts it
   (``pipeline.run_pipeline``'s first stages), on a fresh embedded Postgres (pgserver) in a
   temporary ``RESIGHT_HOME``, or fresh databases on ``--pg-url``'s server. Its counts come from
   ``ops.ingestion_ledger`` and ``ops.quarantine``, its bronze and silver step times from the
   Dagster instance's events.

Each side's wall time is its whole process (imports, warehouse start for the run) and its peak RSS
is the process's own (``os.wait4`` on that child; the embedded Postgres is a server of its own and
not counted). The counts of the two sides are asserted equal.

    .venv/bin/python -m bench.preview.run                       # 1,000,000 lines
    .venv/bin/python -m bench.preview.run --lines 100000 --repeat 3
    .venv/bin/python -m bench.preview.run --lines 2000 --pg-url postgresql://…   # the smoke test's size

Figures go to ``bench/preview/results.json`` (``--output``) and, as a Markdown table, to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench.machine import machine

__all__ = ["BAD_SHARES", "DAY", "PROVIDER", "main", "make_file", "to_markdown"]

RESULTS_PATH = Path(__file__).with_name("results.json")
REPO_ROOT = Path(__file__).resolve().parents[2]
#: A registered partner of the packaged registry (profile ``standard_csv``) and a day inside the
#: partitions (``RESIGHT_PARTITIONS_START`` defaults to 2025-01-01).
PROVIDER = "pawmart"
FEED = "sales"
DAY = date(2025, 11, 28)
FILE_NAME = "big.csv"
#: Share of the file's lines made bad on purpose, by kind: what a partner's export realistically
#: carries, a few in a thousand.
BAD_SHARES = {"unknown_status": 0.003, "unparseable_price": 0.002, "duplicate_line": 0.001}
#: What the bad lines carry: a status no mapping table knows, a price no money format parses.
UNKNOWN_STATUS = "on_hold"
UNPARSEABLE_PRICE = "12.x9"
#: Lines per order in the generated file (line_no 1..N).
LINES_PER_ORDER = 3
#: The sales counts both sides report, compared one for one.
COUNTS = ("rows_in", "rows_loaded", "rows_quarantined", "files_dead_lettered")


def make_file(workdir: Path, lines: int, seed: int) -> dict[str, Any]:
    """Write ``lines`` PawMart sales lines of :data:`DAY` to ``{workdir}/landing/pawmart/sales/{day}/
    big.csv`` (reused when its marker says the same size and seed); what was injected."""
    import numpy as np
    import polars as pl

    folder = workdir / "landing" / PROVIDER / FEED / DAY.isoformat()
    path = folder / FILE_NAME
    marker = workdir / "file.json"
    wanted = {"lines": lines, "seed": seed, "day": DAY.isoformat(), "shares": BAD_SHARES}
    if path.exists() and marker.exists() and json.loads(marker.read_text()).get("wanted") == wanted:
        return {**json.loads(marker.read_text()), "reused": True}
    shutil.rmtree(workdir / "landing", ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    injected = {kind: int(lines * share) for kind, share in BAD_SHARES.items()}
    unique = lines - injected["duplicate_line"]
    orders = -(-unique // LINES_PER_ORDER)
    index = np.arange(unique)
    order = index // LINES_PER_ORDER
    online = rng.random(orders) < 0.2
    cents = rng.choice(np.array([199, 499, 699, 1299, 2549, 4999, 7399, 10149, 18999]), unique)
    status = rng.choice(np.array(["completed", "returned", "cancelled"]), unique, p=[0.94, 0.04, 0.02])
    frame = pl.DataFrame(
        {
            "order": order,
            "line_no": index % LINES_PER_ORDER + 1,
            # The day's orders spread from 06:00 to 23:00 local time, in order.
            "seconds": 6 * 3600 + order * (17 * 3600) // max(orders, 1),
            "store": rng.integers(1, 60, orders)[order],
            "online": online[order],
            "sku": rng.integers(1, 900, unique),
            "quantity": rng.integers(1, 6, unique),
            "cents": cents,
            "customer": rng.integers(1, 200_000, orders)[order],
            "status": status,
            "ship_state": rng.choice(np.array(["NY", "CA", "TX", "FL", "WA"]), orders)[order],
        }
    )
    # The bad lines: disjoint sets of lines, so each kind's count is what was injected.
    bad = rng.permutation(unique)
    statuses = bad[: injected["unknown_status"]]
    prices = bad[injected["unknown_status"] : injected["unknown_status"] + injected["unparseable_price"]]
    duplicated = np.sort(bad[-injected["duplicate_line"] :] if injected["duplicate_line"] else bad[:0])
    day = DAY.isoformat()
    out = frame.select(
        pl.format("PM-{}", pl.col("order").cast(pl.Utf8).str.zfill(9)).alias("order_id"),
        pl.col("line_no"),
        pl.format(
            "{}T{}:{}:{}-05:00",
            pl.lit(day),
            (pl.col("seconds") // 3600).cast(pl.Utf8).str.zfill(2),
            (pl.col("seconds") % 3600 // 60).cast(pl.Utf8).str.zfill(2),
            (pl.col("seconds") % 60).cast(pl.Utf8).str.zfill(2),
        ).alias("ordered_at"),
        pl.format("S{}", pl.col("store").cast(pl.Utf8).str.zfill(5)).alias("store_id"),
        pl.when(pl.col("online")).then(pl.lit("online")).otherwise(pl.lit("store")).alias("channel"),
        pl.format("PA-{}", pl.col("sku").cast(pl.Utf8).str.zfill(6)).alias("sku"),
        pl.col("quantity"),
        pl.when(pl.int_range(pl.len()).is_in(prices))
        .then(pl.lit(UNPARSEABLE_PRICE))
        .otherwise(pl.format("{}.{}", pl.col("cents") // 100, (pl.col("cents") % 100).cast(pl.Utf8).str.zfill(2)))
        .alias("unit_price"),
        pl.lit("0.00").alias("discount"),
        pl.format("C{}", pl.col("customer").cast(pl.Utf8).str.zfill(8)).alias("customer_id"),
        pl.when(pl.int_range(pl.len()).is_in(statuses))
        .then(pl.lit(UNKNOWN_STATUS))
        .otherwise(pl.col("status"))
        .alias("status"),
        pl.when(pl.col("online")).then(pl.col("ship_state")).otherwise(pl.lit(None)).alias("ship_state"),
    )
    # Each duplicate re-sent a little after its original, as a resend within one export does.
    after = np.minimum(duplicated + 1 + rng.integers(0, 1000, duplicated.size), unique)
    order_of_rows = np.insert(np.arange(unique), after, duplicated)
    out.select(pl.all().gather(order_of_rows)).write_csv(path)
    made = {
        "wanted": wanted,
        "path": str(path),
        "lines": int(order_of_rows.size),
        "bytes": path.stat().st_size,
        "injected": injected,
    }
    marker.write_text(json.dumps(made))
    return {**made, "reused": False}


def _clean_env(**values: str) -> dict[str, str]:
    """This environment without any ``RESIGHT_*`` or ``DAGSTER_*`` variable (nothing of the user's
    platform is read), plus ``values``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RESIGHT_", "DAGSTER_"))}
    return {**env, **values}


def _timed(command: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """Run ``command`` in a fresh process, stdout and stderr to files under ``out``: its wall
    seconds, exit code and peak RSS (its own ``ru_maxrss``, from ``os.wait4`` on it)."""
    out.mkdir(parents=True, exist_ok=True)
    stdout, stderr = out / "stdout", out / "stderr"
    with stdout.open("wb") as so, stderr.open("wb") as se:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=so, stderr=se, env=env, cwd=REPO_ROOT)
        _pid, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return {
        "wall_seconds": wall,
        "exit_code": child.returncode,
        "peak_rss_bytes": usage.ru_maxrss * 1024,  # KiB on Linux
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "stdout": stdout.read_text(),
        "stderr_tail": stderr.read_text()[-4000:],
    }


def run_preview_side(folder: Path, scratch: Path) -> dict[str, Any]:
    """``resight onboard preview --json`` on ``folder`` in a fresh process, in an empty home."""
    home = scratch / "preview-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    command = [sys.executable, "-m", "resight_platform.cli", "onboard", "preview", str(folder), "--json"]
    done = _timed(command, _clean_env(RESIGHT_HOME=str(home)), scratch / "preview-out")
    try:  # exit 1 is "rows would be lost", which the file is made for, or a crash: no JSON then
        report = json.loads(done.pop("stdout"))
    except json.JSONDecodeError:
        report = None
    if done["exit_code"] not in (0, 1) or report is None:
        raise RuntimeError(f"preview failed (exit {done['exit_code']}):\n{done['stderr_tail']}")
    if any(home.iterdir()):
        raise RuntimeError(f"the preview wrote under its RESIGHT_HOME {home}: {sorted(home.rglob('*'))[:5]}")
    by_rule: dict[str, int] = {}
    for found in report["files"]:
        for rule, n in found["quarantined_by_rule"].items():
            by_rule[rule] = by_rule.get(rule, 0) + n
    return {**done, "counts": report["total"], "quarantined_by_rule": dict(sorted(by_rule.items()))}


def run_real_side(landing: Path, scratch: Path, pg_url: str | None) -> dict[str, Any]:
    """Bronze then silver of the partition, through Dagster, in a fresh process (``--child``),
    in a fresh home and warehouse; the embedded server it started is stopped afterwards."""
    home = scratch / "real-home"
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    command = [sys.executable, "-m", "bench.preview.run", "--child", "--landing", str(landing), "--home", str(home)]
    command += ["--pg-url", pg_url] if pg_url else []
    try:
        done = _timed(command, _clean_env(), scratch / "real-out")
    finally:
        if not pg_url:  # the embedded server outlives its process
            from resight_platform.io.postgres import stop_embedded_pg

            stop_embedded_pg(home / "pg")
    if done["exit_code"] != 0:
        raise RuntimeError(f"real run failed (exit {done['exit_code']}):\n{done['stderr_tail']}")
    inside = json.loads([line for line in done.pop("stdout").splitlines() if line.startswith("{")][-1])
    shutil.rmtree(home, ignore_errors=True)
    return {**done, **inside}


def _fresh_databases(server_url: str) -> tuple[str, str]:
    """Two new databases on ``server_url``'s server, the warehouse and Dagster's: a run that finds
    the file already in the ledger would skip it."""
    from resight_platform.io.postgres import ensure_database

    name = f"pbench_{uuid.uuid4().hex[:10]}"
    return ensure_database(server_url, name), ensure_database(server_url, f"{name}_dagster")


def _drop_databases(server_url: str, *urls: str) -> None:
    """Drop the databases of ``urls`` (made by :func:`_fresh_databases`), connections and all."""
    import psycopg
    from psycopg import sql

    from resight_platform.io.postgres import database_url

    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as admin:
        for url in urls:
            name = unquote(urlsplit(url).path.lstrip("/"))  # the socket path is in the query
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def real_run(landing: Path, home: Path, pg_url: str | None) -> dict[str, Any]:
    """In this process: the registry and landing-scan jobs, then the medallion job (bronze and
    silver) over the landed partition's rectangle, as ``run_pipeline`` starts them; the counts
    from the warehouse, the step times from the instance."""
    import dagster as dg

    from bench.throughput.run import _step_seconds
    from resight_platform.cli import _environment, _quiet_library_warnings, instance_env
    from resight_platform.definitions import build_definitions
    from resight_platform.defs.jobs import MEDALLION_JOB, REGISTRY_JOB, SCAN_LANDING_JOB
    from resight_platform.defs.partitions import SOURCE_PARTITIONS
    from resight_platform.io.landing import scan_landing
    from resight_platform.io.postgres import connect, sqlalchemy_url
    from resight_platform.io.storage import open_store
    from resight_platform.pipeline import RANGE_END, RANGE_START, plan_runs
    from resight_platform.resources import prepare_warehouse, resolve_pg_url
    from resight_platform.runner import InProcess
    from resight_platform.settings import Settings, WatchSettings
    from resight_platform.sources.registry import load_registry

    _quiet_library_warnings()
    env = {"RESIGHT_HOME": str(home), "RESIGHT_LANDING_URL": str(landing), "RESIGHT_LAKE_URL": str(home / "lake")}
    databases: tuple[str, str] | None = None
    if pg_url:
        databases = _fresh_databases(pg_url)
        env["RESIGHT_PG_URL"] = databases[0]
        env["RESIGHT_DAGSTER_PG_URL"] = sqlalchemy_url(databases[1])
    try:
        with _environment(env):
            settings = Settings.from_env()
            started = time.perf_counter()
            url = resolve_pg_url(settings)
            with connect(url) as conn:
                prepare_warehouse(conn, settings)
            warehouse_seconds = time.perf_counter() - started
            defs = build_definitions(settings, url)
            registry = load_registry()
            runs: dict[str, float] = {}
            steps: dict[str, dict[str, float]] = {}  # job -> step -> seconds
            with _environment(instance_env(settings, url)), dg.DagsterInstance.get() as instance:
                local = InProcess(defs, instance)

                def submit(job: str, tags: dict[str, str] | None = None) -> None:
                    outcome = local.submit(job, tags).result()
                    if not outcome.success:
                        raise RuntimeError(f"{job} failed: {list(outcome.failures)}")
                    runs[job] = outcome.seconds
                    steps[job] = _step_seconds(instance, outcome.run_id)

                submit(REGISTRY_JOB)
                submit(SCAN_LANDING_JOB)
                scan = scan_landing(open_store(str(landing)), registry)
                assert SOURCE_PARTITIONS.name is not None
                registered = instance.get_dynamic_partitions(SOURCE_PARTITIONS.name)
                (area,) = plan_runs(scan.files, registered, WatchSettings(), workers=1)
                first, last, first_source, last_source = area
                submit(
                    MEDALLION_JOB,
                    {
                        RANGE_START: f"{first.isoformat()}|{first_source}",
                        RANGE_END: f"{last.isoformat()}|{last_source}",
                    },
                )
            with connect(url) as conn:
                ledger = conn.execute(
                    "select count(*), coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0),"
                    " coalesce(sum(rows_quarantined), 0), count(*) filter (where status = 'dead_lettered')"
                    " from ops.ingestion_ledger where provider = %s and feed = %s",
                    (PROVIDER, FEED),
                ).fetchone()
                assert ledger is not None
                by_rule = dict(
                    conn.execute(
                        "select rule, count(*) from ops.quarantine where provider = %s and feed = %s group by rule",
                        (PROVIDER, FEED),
                    ).fetchall()
                )
        silver = _silver_rows(home / "lake")
    finally:
        if databases is not None and pg_url:
            _drop_databases(pg_url, *databases)
    files, rows_in, loaded, quarantined, dead = (int(v) for v in ledger)
    return {
        "counts": {
            "files": files,
            "rows_in": rows_in,
            "rows_loaded": loaded,
            "rows_quarantined": quarantined,
            "files_dead_lettered": dead,
        },
        "quarantined_by_rule": dict(sorted((rule, int(n)) for rule, n in by_rule.items())),
        "silver_lake_rows": silver,
        "warehouse_start_seconds": warehouse_seconds,
        "runs": runs,
        "steps": steps,
    }


def _silver_rows(lake: Path) -> int:
    """Rows of the silver sales partitions in the lake: what the run wrote, beside its ledger."""
    import polars as pl

    files = sorted((lake / "silver" / FEED).rglob("*.parquet"))
    return int(pl.scan_parquet(files).select(pl.len()).collect().item()) if files else 0


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """The table's figures: the best wall of the repeats, the highest peak RSS."""
    previews, reals = result["preview"], result["real"]
    preview_wall = min(p["wall_seconds"] for p in previews)
    real_wall = min(r["wall_seconds"] for r in reals)
    preview_rss = max(p["peak_rss_bytes"] for p in previews)
    real_rss = max(r["peak_rss_bytes"] for r in reals)
    best = min(reals, key=lambda r: r["wall_seconds"])
    medallion: dict[str, float] = best["steps"].get("medallion_job", {})
    return {
        "lines": result["file"]["lines"],
        "preview_wall_seconds": preview_wall,
        "preview_wall_median_seconds": statistics.median(p["wall_seconds"] for p in previews),
        "preview_cpu_seconds": min(p["cpu_seconds"] for p in previews),
        "preview_peak_rss_mib": preview_rss / 2**20,
        "real_wall_seconds": real_wall,
        "real_wall_median_seconds": statistics.median(r["wall_seconds"] for r in reals),
        "real_cpu_seconds": min(r["cpu_seconds"] for r in reals),
        "real_peak_rss_mib": real_rss / 2**20,
        "real_warehouse_start_seconds": best["warehouse_start_seconds"],
        "real_bronze_seconds": medallion.get(f"bronze__{FEED}", 0.0),
        "real_silver_seconds": medallion.get(f"silver__{FEED}", 0.0),
        # The job's other steps: the other feeds' assets (empty partitions) and the asset checks.
        "real_other_steps_seconds": sum(medallion.values())
        - medallion.get(f"bronze__{FEED}", 0.0)
        - medallion.get(f"silver__{FEED}", 0.0),
        "real_medallion_run_seconds": best["runs"].get("medallion_job", 0.0),
        "wall_ratio": preview_wall / real_wall,
        "rss_ratio": preview_rss / real_rss,
        **{f"preview_{k}": previews[0]["counts"][k] for k in COUNTS},
        **{f"real_{k}": reals[0]["counts"][k] for k in COUNTS},
    }


def _fmt(value: Any, unit: str = "") -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}"
    return f"{value:,}{unit}"


def to_markdown(result: dict[str, Any]) -> str:
    s = summarise(result)
    rows = [
        ("wall, whole process (best of repeats)", "preview_wall_seconds", "real_wall_seconds", " s"),
        ("wall, median of repeats", "preview_wall_median_seconds", "real_wall_median_seconds", " s"),
        ("CPU, user + system", "preview_cpu_seconds", "real_cpu_seconds", " s"),
        ("  of which warehouse start + migrate", "", "real_warehouse_start_seconds", " s"),
        ("  medallion run (bronze + silver)", "", "real_medallion_run_seconds", " s"),
        ("    bronze step (sales)", "", "real_bronze_seconds", " s"),
        ("    silver step (sales)", "", "real_silver_seconds", " s"),
        ("    other steps: other feeds, asset checks", "", "real_other_steps_seconds", " s"),
        ("peak RSS of the process", "preview_peak_rss_mib", "real_peak_rss_mib", " MiB"),
        *[(f"{k.replace('_', ' ')}", f"preview_{k}", f"real_{k}", "") for k in COUNTS],
    ]
    lines = [
        f"| {s['lines']:,} lines | preview | real run (bronze + silver) | preview ÷ real |",
        "|---|---:|---:|---:|",
    ]
    for label, left, right, unit in rows:
        ratio = ""
        if left == "preview_wall_seconds":
            ratio = f"{s['wall_ratio']:.2f}×"
        elif left == "preview_peak_rss_mib":
            ratio = f"{s['rss_ratio']:.2f}×"
        lines.append(f"| {label} | {_fmt(s.get(left, ''), unit)} | {_fmt(s.get(right, ''), unit)} | {ratio or '–'} |")
    return "\n".join(lines)


def _check_counts(preview: dict[str, Any], real: dict[str, Any]) -> None:
    """The preview predicts the run: the same counts, the same quarantine by rule."""
    mine = {k: preview["counts"][k] for k in COUNTS}
    theirs = {k: real["counts"][k] for k in COUNTS}
    if mine != theirs or preview["quarantined_by_rule"] != real["quarantined_by_rule"]:
        raise RuntimeError(
            f"the preview said {mine} {preview['quarantined_by_rule']}, the run did {theirs}"
            f" {real['quarantined_by_rule']}"
        )
    if real["silver_lake_rows"] != real["counts"]["rows_loaded"]:
        raise RuntimeError(f"the run's ledger says {theirs['rows_loaded']} loaded, its lake {real['silver_lake_rows']}")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; print the table, write and return the results."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.preview.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lines", type=int, default=1_000_000, help="sales lines in the file, bad ones included")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each side (best wall, highest RSS)")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument(
        "--workdir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "resight-bench-preview"
    )
    parser.add_argument("--pg-url", default=None, help="a Postgres server (any database URL on it) instead of pgserver")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--landing", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--home", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(real_run(args.landing, args.home, args.pg_url)))
        return {}
    if args.repeat < 1 or args.lines < 1:
        parser.error("--lines and --repeat are at least 1")
    print(f"[preview bench] writing {args.lines:,} lines", file=sys.stderr, flush=True)
    made = make_file(args.workdir, args.lines, args.seed)
    landing = args.workdir / "landing"
    folder = landing / PROVIDER / FEED / DAY.isoformat()
    previews: list[dict[str, Any]] = []
    reals: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="pbench-", dir=args.workdir) as tmp:
        for i in range(args.repeat):  # one side at a time: they must not share the cores
            print(f"[preview bench] preview {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
            previews.append(run_preview_side(folder, Path(tmp)))
            print(f"[preview bench] real run {i + 1}/{args.repeat}", file=sys.stderr, flush=True)
            reals.append(run_real_side(landing, Path(tmp), args.pg_url))
            _check_counts(previews[-1], reals[-1])
    result: dict[str, Any] = {
        "machine": machine(),
        "command": "python -m bench.preview.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(UTC).date().isoformat(),
        "file": {k: v for k, v in made.items() if k != "wanted"},
        "preview": previews,
        "real": reals,
    }
    result["summary"] = summarise(result)
    args.output.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(to_markdown(result))
    return result


if __name__ == "__main__":
    main()
