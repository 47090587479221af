"""The ``resight`` command: generate sample data, run the demo, start the UI, query the warehouse."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["main"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _say(message: str) -> None:
    print(message, flush=True)


def _settings() -> Any:
    from resight_platform.settings import Settings

    return Settings.from_env()


def instance_env(settings: Any, pg_url: str) -> dict[str, str]:
    """Environment for a Dagster instance on Postgres: ``RESIGHT_DAGSTER_PG_URL`` when set, else
    database ``dagster`` on the warehouse's server (created if missing)."""
    from resight_platform.io.postgres import ensure_database, sqlalchemy_url

    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    template = REPO_ROOT / "dagster.yaml"
    if not template.exists():
        raise SystemExit(f"dagster.yaml not found at {template}; run from a checkout of the repository")
    shutil.copyfile(template, dagster_home / "dagster.yaml")
    return {
        "DAGSTER_HOME": str(dagster_home),
        "RESIGHT_DAGSTER_PG_URL": os.environ.get("RESIGHT_DAGSTER_PG_URL")
        or sqlalchemy_url(ensure_database(pg_url, "dagster")),
        "RESIGHT_DAGSTER_ARTIFACTS": str(dagster_home / "storage"),
        # One "materialisation planned" event per asset for a range run instead of one per
        # partition: a 420-partition run otherwise spends ~40 s writing them. The cost, per
        # Dagster: partitions of a failed range run are not marked failed (the run still is).
        "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
        # A range run's per-partition materialisations written in batches (one insert per batch)
        # instead of one insert and one new Postgres connection each: the demo's medallion run over
        # a year of one partner's partitions took 24 s instead of 70 s (docs/architecture.md).
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
    }


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block, restoring the previous values afterwards."""
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cmd_generate(args: argparse.Namespace) -> int:
    from resight_platform.sample import generate

    settings = _settings()
    out = args.out or settings.landing_url
    started = time.perf_counter()
    manifest = generate(
        out,
        providers=args.providers,
        days=args.days,
        start=date.fromisoformat(args.start),
        seed=args.seed,
        sales_lines_per_day=args.sales_lines_per_day,
        manifest_url=args.manifest,
        endpoint_url=settings.aws_endpoint_url,
        progress=_say,
    )
    _say(
        f"wrote {manifest.files['written']} files to {out} in {time.perf_counter() - started:.1f}s: "
        f"{manifest.sales['lines']:,} valid sales lines, net {manifest.sales['net_amount']} USD"
    )
    return 0


def _connect_warehouse(settings: Any) -> tuple[str, Any]:
    """The warehouse's URL and a connection to it, prepared as the definitions prepare it
    (migrated, the analyst role in place)."""
    from resight_platform.io.postgres import connect
    from resight_platform.resources import prepare_warehouse, resolve_pg_url

    pg_url = resolve_pg_url(settings)
    conn = connect(pg_url)
    prepare_warehouse(conn, settings)
    return pg_url, conn


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table for people."""
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    line = "-+-".join("-" * w for w in widths)
    out = [" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)), line]
    out += [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


def cmd_sql(args: argparse.Namespace) -> int:
    import psycopg

    settings = _settings()
    _, conn = _connect_warehouse(settings)
    with conn, conn.cursor() as cur:
        try:
            cur.execute(args.query)
        except psycopg.Error as exc:
            print(f"error: {exc}".strip(), file=sys.stderr)
            return 1
        if cur.description is None:
            _say(cur.statusmessage or "ok")
            return 0
        columns = [d.name for d in cur.description]
        rows = cur.fetchall()
    if args.csv:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        sys.stdout.write(buffer.getvalue())
    else:
        _say(format_table(columns, rows))
    return 0


def cmd_quality(args: argparse.Namespace) -> int:
    """Per source, for a range of business dates: files, rows in, loaded, quarantined by rule,
    dead-lettered files (and why), files with drifted columns; then the sources late today."""
    from datetime import UTC, datetime, timedelta

    from resight_platform.io.ops import last_deliveries, quality_report
    from resight_platform.sources.freshness import stale_sources
    from resight_platform.sources.registry import load_registry

    today = datetime.now(UTC).date()
    end = date.fromisoformat(args.to) if args.to else today
    start = date.fromisoformat(args.start) if args.start else end - timedelta(days=6)
    if start > end:
        print(f"error: --from {start} is after --to {end}", file=sys.stderr)
        return 2
    settings = _settings()
    _, conn = _connect_warehouse(settings)
    with conn:
        report = quality_report(conn, start, end, feed=args.feed, provider=args.provider)
        last, watching_since = last_deliveries(conn)
    stale = stale_sources(
        load_registry(settings.registry_dir), last, datetime.now(UTC), watching_since=watching_since, feed=args.feed
    )
    if args.provider:
        stale = [s for s in stale if s.provider == args.provider]
    if args.json:
        out = {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "sources": [dataclasses.asdict(r) for r in report],
            "stale": [
                {**dataclasses.asdict(s), "overdue_hours": round(s.overdue.total_seconds() / 3600, 1)} for s in stale
            ],
        }
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return 0
    _say(f"data quality, business dates {start} to {end}" + (f", feed {args.feed}" if args.feed else ""))
    columns = ["source", "files", "dead-lettered", "drifted", "rows in", "loaded", "quarantined", "quarantined by rule"]
    rows = [
        (
            f"{r.provider}/{r.feed}",
            r.files,
            r.files_dead_lettered,
            r.files_with_drift,
            r.rows_in,
            r.rows_loaded,
            r.rows_quarantined,
            ", ".join(f"{rule} {n}" for rule, n in r.quarantined_by_rule.items()) or "-",
        )
        for r in report
    ]
    if rows:
        totals = ("total", *(sum(int(row[i]) for row in rows) for i in range(1, 7)), "")
        _say(format_table(columns, [*rows, totals]))
    else:
        _say("no files for these dates")
    dead = [(f"{r.provider}/{r.feed}", code, n) for r in report for code, n in r.dead_letter_reasons.items()]
    if dead:
        _say("\ndead-lettered files by reason:")
        _say(format_table(["source", "reason", "files"], dead))
    _say(f"\nstale sources now ({len(stale)}):" if stale else "\nstale sources now: none")
    for item in stale:
        _say("  " + item.describe())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import dagster as dg

    from resight_platform.definitions import build_definitions
    from resight_platform.io.storage import open_store
    from resight_platform.pipeline import run_pipeline
    from resight_platform.sample import generate
    from resight_platform.sources.registry import load_registry

    settings = _settings()
    started = time.perf_counter()
    if args.fresh and settings.embedded:
        for sub in ("landing", "lake", "manifest.json"):
            target = settings.home / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    landing = open_store(settings.landing_url, settings.aws_endpoint_url)
    if next(iter(landing.list()), None) is None:
        _say(f"generating a sample: {args.providers} providers x {args.days} days into {settings.landing_url}")
        manifest = generate(
            settings.landing_url,
            providers=args.providers,
            days=args.days,
            start=date.fromisoformat(args.start),
            seed=args.seed,
            endpoint_url=settings.aws_endpoint_url,
        )
        if args.history_weeks > 0:
            _demo_history(settings, args, manifest)
    _say("starting the warehouse" + (" (embedded Postgres)" if settings.embedded else ""))
    pg_url, conn = _connect_warehouse(settings)
    conn.close()
    defs = build_definitions(settings, pg_url)
    with _environment(instance_env(settings, pg_url)), dg.DagsterInstance.get() as instance:
        report = run_pipeline(
            defs, instance, landing=landing, registry=load_registry(settings.registry_dir), progress=_say
        )
    elapsed = time.perf_counter() - started
    _say(f"\npipeline finished in {elapsed:.0f}s ({len(report.runs)} runs)\n")
    print_summary(settings, pg_url)
    return 0


def _demo_history(settings: Any, args: argparse.Namespace, manifest: Any) -> None:
    """Add a long, thin history from one more partner (the demand model needs over a year of
    weeks) and make the manifest cover both samples."""
    from datetime import timedelta

    from resight_platform.io.storage import open_store
    from resight_platform.sample.generator import default_manifest_url
    from resight_platform.sample.history import generate_history, history_provider
    from resight_platform.sample.manifest import combine
    from resight_platform.sources.registry import load_registry

    registry = load_registry(settings.registry_dir)
    provider = history_provider(registry, args.providers)
    if provider is None:
        _say("no partner left outside the sample to send a history: the demand model is skipped")
        return
    end = date.fromisoformat(args.start) + timedelta(days=args.days - 1)
    _say(f"generating a {args.history_weeks}-week history from {provider} up to {end} (for the demand model)")
    manifest_url = default_manifest_url(settings.landing_url)
    history = generate_history(
        settings.landing_url,
        provider=provider,
        end=end,
        weeks=args.history_weeks,
        not_before=date.fromisoformat(settings.partitions_start),
        seed=args.seed,
        manifest_url=manifest_url,
        endpoint_url=settings.aws_endpoint_url,
        registry=registry,
    )
    directory, _, name = manifest_url.rpartition("/")
    open_store(directory, settings.aws_endpoint_url).write_bytes(name, combine([manifest, history]).to_json().encode())


def _scalar(cur: Any, query: str) -> Any:
    cur.execute(query)
    row = cur.fetchone()
    return row[0] if row else None


def print_summary(settings: Any, pg_url: str) -> None:
    """Rows per layer, quarantine and dead-letter counts, and a few headline numbers from the marts."""
    from resight_platform.io.postgres import connect

    with connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "select count(*) filter (where status = 'loaded'), count(*) filter (where status = 'dead_lettered'),"
            " coalesce(sum(rows_in), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)"
            " from ops.ingestion_ledger"
        )
        files_loaded, files_dead, rows_in, rows_loaded, rows_quarantined = cur.fetchone()  # type: ignore[misc]
        cur.execute("select rule, count(*) from ops.quarantine group by rule order by 2 desc")
        by_rule = cur.fetchall()
        fact_rows, fact_net = cur.execute("select count(*), sum(net_amount) from gold.fact_sales").fetchone()  # type: ignore[misc]
        dims = {
            name: _scalar(cur, f"select count(*) from gold.{name}")  # noqa: S608 - fixed names
            for name in ("dim_provider", "dim_store", "dim_product", "dim_customer", "dim_date")
        }
        top_brand = cur.execute(
            "select month, category, species, region, brand, round(share::numeric * 100, 1)"
            " from marts.brand_share_monthly where category = 'food' and species = 'dog'"
            " order by month desc, revenue desc limit 1"
        ).fetchone()
        aov = cur.execute(
            "select region, avg_order_value from marts.aov_by_region"
            " where month = (select max(month) from marts.aov_by_region) order by avg_order_value desc"
        ).fetchall()
        statuses = cur.execute(
            "select status, sum(amount) from marts.order_status_impact group by status order by status"
        ).fetchall()
        forecast = cur.execute(
            "select count(*), count(distinct (category, species, region)), min(week_start), max(week_start),"
            " max(model_version) from gold.ml_demand_forecast"
        ).fetchone()
    _say("== ReSight demo summary ==")
    _say(f"landing files loaded:     {files_loaded:>12,}")
    _say(f"files dead-lettered:      {files_dead:>12,}")
    _say(f"bronze rows (rows in):    {rows_in:>12,}")
    _say(f"silver rows loaded:       {rows_loaded:>12,}")
    _say(f"rows quarantined:         {rows_quarantined:>12,}  " + ", ".join(f"{r}={n}" for r, n in by_rule))
    _say(f"gold.fact_sales rows:     {fact_rows:>12,}   net amount {fact_net} USD")
    _say("gold dimensions:          " + ", ".join(f"{k}={v:,}" for k, v in dims.items()))
    if top_brand:
        _say(
            f"top dog-food brand ({top_brand[0]:%Y-%m}, {top_brand[3]}): {top_brand[4]} with {top_brand[5]}% of revenue"
        )
    if aov:
        _say("average order value by region: " + ", ".join(f"{r} ${v}" for r, v in aov))
    if statuses:
        _say("amount by order status: " + ", ".join(f"{s} ${v:,.2f}" for s, v in statuses))
    if forecast and forecast[0]:
        rows, series, first, last, version = forecast
        _say(
            f"demand forecast:          {rows:>12,} rows, {series} series, weeks {first} .. {last}"
            f" (resight_demand_weekly v{version}; `resight mlflow` shows its runs)"
        )
    manifest_path = settings.home / "manifest.json"
    if manifest_path.exists() and fact_rows is not None:
        manifest = json.loads(manifest_path.read_text())
        expected_lines, expected_net = manifest["sales"]["lines"], Decimal(manifest["sales"]["net_amount"])
        ok = expected_lines == fact_rows and expected_net == (fact_net or Decimal(0))
        _say(
            f"manifest check: expected {expected_lines:,} lines, {expected_net} USD -> "
            + ("MATCH" if ok else "MISMATCH")
        )


def cmd_dev(args: argparse.Namespace) -> int:
    settings = _settings()
    pg_url, conn = _connect_warehouse(settings)
    conn.close()
    env = {**os.environ, **instance_env(settings, pg_url), "RESIGHT_PG_URL": pg_url}
    beside = Path(sys.executable).parent / "dagster"
    command = [
        str(beside) if beside.exists() else "dagster",
        "dev",
        "-m",
        "resight_platform.definitions",
        "-p",
        str(args.port),
        "-h",
        args.host,
    ]
    _say(f"starting the Dagster UI on http://{args.host}:{args.port} (Ctrl-C to stop)")
    os.execvpe(command[0], command, env)
    return 0  # pragma: no cover - execvpe does not return


def cmd_daemon(args: argparse.Namespace) -> int:
    """``dagster-daemon run`` on the embedded default: sensors, automation, run queue and backfills.

    The daemon starts the code server (a gRPC process holding these definitions) itself."""
    settings = _settings()
    pg_url, conn = _connect_warehouse(settings)
    conn.close()
    env = {**os.environ, **instance_env(settings, pg_url), "RESIGHT_PG_URL": pg_url}
    beside = Path(sys.executable).parent / "dagster-daemon"
    command = [str(beside) if beside.exists() else "dagster-daemon", "run", "-m", "resight_platform.definitions"]
    _say(f"starting dagster-daemon on {settings.landing_url} (Ctrl-C to stop)")
    os.execvpe(command[0], command, env)
    return 0  # pragma: no cover - execvpe does not return


def cmd_mlflow(args: argparse.Namespace) -> int:
    """The MLflow UI on the local tracking store (runs, metrics, plots, registered models)."""
    settings = _settings()
    if settings.mlflow_tracking_uri:
        _say(f"MLFLOW_TRACKING_URI is {settings.mlflow_tracking_uri}: open that server's UI")
        return 2
    settings.mlflow_dir.mkdir(parents=True, exist_ok=True)
    artifacts = settings.mlflow_dir / "artifacts"
    artifacts.mkdir(exist_ok=True)
    beside = Path(sys.executable).parent / "mlflow"
    command = [
        str(beside) if beside.exists() else "mlflow",
        "ui",
        "--backend-store-uri",
        settings.tracking_uri,
        "--default-artifact-root",
        artifacts.as_uri(),
        "--host",
        args.host,
        "--port",
        str(args.port),
    ]
    _say(f"starting the MLflow UI on http://{args.host}:{args.port} for {settings.tracking_uri} (Ctrl-C to stop)")
    os.execvp(command[0], command)
    return 0  # pragma: no cover - execvp does not return


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resight", description="ReSight data platform")
    sub = parser.add_subparsers(dest="command", required=True)

    def sample_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--providers", type=int, default=30, help="number of providers (default 30)")
        p.add_argument("--days", type=int, default=14, help="number of business days (default 14)")
        p.add_argument("--start", default="2026-10-01", help="first business date, YYYY-MM-DD")
        p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")

    gen = sub.add_parser("generate", help="write a sample landing zone and its ground-truth manifest")
    sample_options(gen)
    gen.add_argument("--out", help="landing URL: a directory or s3://bucket/prefix (default: RESIGHT_LANDING_URL)")
    gen.add_argument("--manifest", help="where to write manifest.json (default: beside the landing root)")
    gen.add_argument("--sales-lines-per-day", type=int, help="total sales lines per day across providers")
    gen.set_defaults(func=cmd_generate)

    demo = sub.add_parser("demo", help="generate a sample if needed and run the platform end to end")
    sample_options(demo)
    demo.add_argument("--fresh", action="store_true", help="delete the embedded landing zone and lake first")
    demo.add_argument(
        "--history-weeks",
        type=int,
        default=80,
        help="weeks of thin sales history from one more partner, for the demand model (default 80; 0: none)",
    )
    demo.set_defaults(func=cmd_demo)

    dev = sub.add_parser("dev", help="start the embedded services and the Dagster UI")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.set_defaults(func=cmd_dev)

    mlflow = sub.add_parser("mlflow", help="start the MLflow UI on the local tracking store")
    mlflow.add_argument("--port", type=int, default=5000)
    mlflow.add_argument("--host", default="127.0.0.1")
    mlflow.set_defaults(func=cmd_mlflow)

    daemon = sub.add_parser("daemon", help="run the Dagster daemon (landing sensor, automation, run queue)")
    daemon.set_defaults(func=cmd_daemon)

    sql = sub.add_parser("sql", help="run a query against the warehouse and print the result")
    sql.add_argument("query")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    sql.set_defaults(func=cmd_sql)

    quality = sub.add_parser("quality", help="per source: files, rows, quarantine by rule, dead letters, stale sources")
    quality.add_argument("--from", dest="start", help="first business date (default: 6 days before --to)")
    quality.add_argument("--to", help="last business date (default: today, UTC)")
    quality.add_argument("--feed", choices=["sales", "catalog", "stores", "customers"])
    quality.add_argument("--provider")
    quality.add_argument("--json", action="store_true", help="print JSON instead of tables")
    quality.set_defaults(func=cmd_quality)
    return parser


def _quiet_library_warnings() -> None:
    """People running the CLI get our output, not Dagster's beta notices or platformdirs' advice."""
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_library_warnings()
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
