"""The ``resight`` command: try the platform on a sample, load the landing zone, run the services,
query the warehouse and its quality, stop the embedded server."""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import functools
import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = ["main"]

#: The Dagster instance `run`, `demo`, `dev` and `daemon` use, shipped in the package.
INSTANCE_YAML = "dagster.yaml"


def _say(message: str) -> None:
    print(message, flush=True)


def _settings() -> Any:
    from resight_platform.settings import Settings

    return Settings.from_env()


def instance_env(settings: Any, pg_url: str) -> dict[str, str]:
    """Environment for a Dagster instance on Postgres: ``RESIGHT_DAGSTER_PG_URL`` when set, else
    database ``dagster`` on the warehouse's server (created if missing)."""
    from importlib import resources

    from resight_platform.io.postgres import ensure_database, sqlalchemy_url

    dagster_home = settings.home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    # Package data (the repository's dagster.yaml links to it): an installed wheel, as in the
    # image, has it too.
    (dagster_home / "dagster.yaml").write_bytes((resources.files("resight_platform") / INSTANCE_YAML).read_bytes())
    return {
        "DAGSTER_HOME": str(dagster_home),
        "RESIGHT_DAGSTER_PG_URL": settings.dagster_pg_url or sqlalchemy_url(ensure_database(pg_url, "dagster")),
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


SUBSCRIBE_DESCRIPTION = """\
Set up the landing sensor's event path on S3 (docs/operations.md, "Landing events"): the SQS queue
(created if missing) with a policy letting the landing bucket send to it, and an object-created
notification for the landing prefix added to the bucket's notifications (the bucket's others are
kept; running it again changes nothing). Then set RESIGHT_LANDING_QUEUE_URL to the queue URL it
prints: each tick reads what arrived from the queue instead of listing a folder per source, and
a slow sweep (RESIGHT_WATCH_SWEEP_INTERVAL, seconds) finds anything a notification missed.

Needs, for whoever runs it: sqs:CreateQueue, sqs:GetQueueUrl, sqs:GetQueueAttributes,
sqs:SetQueueAttributes, s3:GetBucketNotification, s3:PutBucketNotification. The daemon then needs
sqs:ReceiveMessage and sqs:DeleteMessage on the queue and s3:GetObject (HEAD) on the landing zone.
"""


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
    """Run a query as the analyst role (reads gold and marts), or as the platform's owner with
    ``--owner``."""
    import psycopg

    from resight_platform.io.roles import connect_as
    from resight_platform.resources import analyst_role

    settings = _settings()
    pg_url, conn = _connect_warehouse(settings)
    if not args.owner:
        conn.close()
        role = analyst_role(settings)
        try:
            conn = connect_as(pg_url, role)
        except psycopg.OperationalError as exc:
            reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            print(
                f"error: cannot log in as the analyst role {role.name!r} ({reason}): set RESIGHT_ANALYST_PASSWORD,"
                " or query as the platform's owner with --owner",
                file=sys.stderr,
            )
            return 2
    with conn, conn.cursor() as cur:
        try:
            cur.execute(args.query)
        except psycopg.Error as exc:
            print(f"error: {exc}".strip(), file=sys.stderr)
            if isinstance(exc, psycopg.errors.InsufficientPrivilege) and not args.owner:
                print(
                    f"(queries run as the analyst role {settings.analyst_role!r}, which reads gold and marts only:"
                    " --owner runs them as the platform's owner)",
                    file=sys.stderr,
                )
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


def _printable(text: str | None, limit: int = 160) -> str:
    """A stranger's text (a landing key, an error) safe on a terminal: control and other
    unprintable characters escaped, long values shortened."""
    if text is None:
        return ""
    shown = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def cmd_quality(args: argparse.Namespace) -> int:
    """Per source, for a range of business dates: files, rows in, loaded, quarantined by rule,
    dead-lettered files (and why), files with drifted columns; the dead letters no source could be
    found for (their key and reason); then the sources late today."""
    from datetime import UTC, datetime, timedelta

    from resight_platform.io.ops import last_deliveries, quality_report, unattributed_dead_letters
    from resight_platform.resources import load_registry_at
    from resight_platform.sources.freshness import stale_sources

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
        unattributed = unattributed_dead_letters(conn, start, end, feed=args.feed, provider=args.provider)
        last, watching_since = last_deliveries(conn)
    stale = stale_sources(
        load_registry_at(settings.registry_dir, settings.aws_endpoint_url, settings.history_floor),
        last,
        datetime.now(UTC),
        grace=settings.freshness_grace,
        watching_since=watching_since,
        feed=args.feed,
    )
    if args.provider:
        stale = [s for s in stale if s.provider == args.provider]
    if args.json:
        out = {
            "from": start.isoformat(),
            "to": end.isoformat(),
            "sources": [dataclasses.asdict(r) for r in report],
            "unattributed_dead_letters": [
                {
                    "key": d.file_key,
                    "reason": d.reason,
                    "detail": d.detail,
                    "first_seen": d.first_seen.isoformat(),
                    "reported_for": d.reported_for.isoformat(),
                    "dead_letter_uri": d.dead_letter_uri,
                }
                for d in unattributed
            ],
            "stale": [
                {**dataclasses.asdict(s), "overdue_hours": round(s.overdue.total_seconds() / 3600, 1)} for s in stale
            ],
        }
        sys.stdout.write(json.dumps(out, indent=2, default=str) + "\n")
        return 0
    scope = "".join(f", {name} {value}" for name, value in (("feed", args.feed), ("provider", args.provider)) if value)
    _say(f"data quality, business dates {start} to {end}{scope}")
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
        _say("no files of a registered source for these dates")
    dead = [(f"{r.provider}/{r.feed}", code, n) for r in report for code, n in r.dead_letter_reasons.items()]
    if dead:
        _say("\ndead-lettered files by reason:")
        _say(format_table(["source", "reason", "files"], dead))
    if unattributed:
        _say(
            f"\ndead-lettered files with no source ({len(unattributed)}; the key broke the landing contract"
            " or names no registered source; counted under the date the key names, else the day first seen):"
        )
        _say(
            format_table(
                ["key", "reason", "detail", "date"],
                [(_printable(d.file_key), d.reason, _printable(d.detail, 80), d.reported_for) for d in unattributed],
            )
        )
    else:
        _say("\ndead-lettered files with no source: none")
    _say(f"\nstale sources now ({len(stale)}):" if stale else "\nstale sources now: none")
    for item in stale:
        _say("  " + item.describe())
    return 0


def _sample_manifest(settings: Any) -> Any:
    """The manifest ``resight generate`` or ``resight demo`` wrote beside the landing zone, or None."""
    from resight_platform.io.storage import open_store
    from resight_platform.sample import Manifest
    from resight_platform.sample.generator import default_manifest_url

    directory, _, name = default_manifest_url(settings.landing_url).rpartition("/")
    try:
        return Manifest.from_json(open_store(directory, settings.aws_endpoint_url).read_bytes(name))
    except FileNotFoundError:
        return None


def cmd_demo(args: argparse.Namespace) -> int:
    from resight_platform.io.storage import open_store
    from resight_platform.sample import generate

    settings = _settings()
    started = time.perf_counter()
    if args.fresh and settings.embedded:
        for sub in ("landing", "lake", "manifest.json"):
            target = settings.home / sub
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    landing = open_store(settings.landing_url, settings.aws_endpoint_url, max_attempts=settings.s3_max_attempts)
    objects = sum(1 for _ in landing.list())
    if objects:
        sample = _sample_manifest(settings)
        if sample is None or sample.files["written"] != objects:
            what = "no sample manifest beside it" if sample is None else f"the sample wrote {sample.files['written']}"
            print(
                f"error: the landing zone {settings.landing_url} holds {objects} files that are not the demo's"
                f" sample ({what}). `resight run` loads what is there; `resight demo --fresh` replaces it with"
                " the sample (it deletes the embedded landing zone and lake).",
                file=sys.stderr,
            )
            return 2
        _say(f"the landing zone already holds the demo's sample ({objects} files): loading it again")
    with contextlib.ExitStack() as stack:
        # The warehouse starts (a server process, migrations) while the sample is generated, and
        # the history comes from a second process meanwhile: the start no longer waits in line.
        warehouse = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="warehouse")).submit(
            _start_warehouse, settings
        )
        if not objects:
            history = _start_history(settings, args, stack) if args.history_weeks > 0 else None
            _say(f"generating a sample: {args.providers} providers x {args.days} days into {settings.landing_url}")
            manifest = generate(
                settings.landing_url,
                providers=args.providers,
                days=args.days,
                start=date.fromisoformat(args.start),
                seed=args.seed,
                endpoint_url=settings.aws_endpoint_url,
            )
            if history is not None:
                _finish_history(settings, manifest, history)
        started_warehouse = warehouse.result()
    # The demo closes what no file was expected for, so its partitions view shows only real gaps.
    pg_url, report = _run_platform(settings, landing, started_warehouse, "resight demo", close=True)
    _say(f"\npipeline finished in {time.perf_counter() - started:.0f}s ({len(report.runs)} runs)\n")
    print_summary(settings, pg_url)
    return 0


def _start_warehouse(settings: Any) -> tuple[str, dict[str, str]]:
    """Start (or reach) the warehouse, migrated: its URL and the Dagster instance's environment."""
    _say("starting the warehouse" + (" (embedded Postgres)" if settings.embedded else ""))
    pg_url, conn = _connect_warehouse(settings)
    conn.close()
    return pg_url, instance_env(settings, pg_url)


def _run_platform(
    settings: Any,
    landing: Any,
    warehouse: tuple[str, dict[str, str]] | None = None,
    command: str = "resight run",
    engine: Any = None,
    dates: Any = None,
    close: bool = False,
) -> tuple[str, Any]:
    """Start the warehouse (unless ``warehouse``, from :func:`_start_warehouse`, says it is up)
    and run every job over what the landing zone holds (``run_pipeline`` on the Dagster instance
    of ``instance_env``): the warehouse URL and the pipeline's report. A failed job raises
    ``RuntimeError``."""
    import dagster as dg

    from resight_platform.definitions import build_definitions
    from resight_platform.pipeline import run_pipeline
    from resight_platform.resources import load_registry_at
    from resight_platform.runner import WorkerPool

    pg_url, environment = warehouse or _start_warehouse(settings)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environment(environment))
        runner = None
        if settings.pipeline_workers > 1:
            # Started first: the workers import and build the definitions while this process does.
            build = functools.partial(build_definitions, settings, pg_url)
            runner = stack.enter_context(
                WorkerPool(settings.pipeline_workers, build, environment, setup=_quiet_library_warnings)
            )
            runner.warm()
        defs = build_definitions(settings, pg_url)
        instance = stack.enter_context(dg.DagsterInstance.get())
        # Dagster's Postgres storage opens a connection per statement (no pool: it is made for
        # many short-lived processes); this one process runs every job, so it keeps a small pool:
        # the demo otherwise opened ~4,200 connections (~17 s). No statement timeout (0).
        instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
        _recover(instance, settings, command)
        report = run_pipeline(
            defs,
            instance,
            landing=landing,
            registry=load_registry_at(settings.registry_dir, settings.aws_endpoint_url, settings.history_floor),
            progress=_say,
            watch=settings.watch,
            runner=runner,
            engine=engine,
            dates=dates,
            close=close,
        )
    return pg_url, report


def _recover(instance: Any, settings: Any, by: str) -> None:
    """Fail the runs a killed process of this host left STARTED, then, when no run is in progress,
    remove the temporary files dead writers left (``recovery``); say what was done."""
    from resight_platform.io.storage import open_store
    from resight_platform.recovery import fail_dead_runs, sweep_when_idle

    for dead in fail_dead_runs(instance, by):
        _say(f"run {dead.run_id} of {dead.job} was left STARTED by a process that is gone: marked failed")
    lake = open_store(settings.lake_url, settings.aws_endpoint_url, max_attempts=settings.s3_max_attempts)
    swept = sweep_when_idle(instance, lake, [settings.spool_dir] if settings.spool_dir else [])
    if swept is not None and swept.removed:
        _say(f"removed {len(swept.removed)} temporary files left by killed writers ({swept.bytes:,} bytes)")


def _recover_before(settings: Any, pg_url: str, by: str) -> None:
    """:func:`_recover` on the instance of ``instance_env``, for a command that hands over to
    Dagster's own processes (the daemon, the UI)."""
    import dagster as dg

    with _environment(instance_env(settings, pg_url)), dg.DagsterInstance.get() as instance:
        _recover(instance, settings, by)


def _date(text: str, flag: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"resight: {flag} {text!r} is not a date (YYYY-MM-DD)") from None


def cmd_run(args: argparse.Namespace) -> int:
    """Load what the landing zone holds now, end to end, and say what became of it."""
    from datetime import UTC, datetime

    from resight_platform.io.landing import scan_landing
    from resight_platform.io.storage import open_store
    from resight_platform.pipeline import RunFailed
    from resight_platform.resources import load_registry_at, resolve_pg_url
    from resight_platform.services import service_down_in_traces

    settings = _settings()
    dates = None
    if args.start or args.to:
        dates = (_date(args.start or "0001-01-01", "--from"), _date(args.to or "9999-12-31", "--to"))
        if dates[0] > dates[1]:
            raise SystemExit(f"resight run: --from {dates[0]} is after --to {dates[1]}")
    landing = open_store(settings.landing_url, settings.aws_endpoint_url, max_attempts=settings.s3_max_attempts)
    scan = scan_landing(
        landing, load_registry_at(settings.registry_dir, settings.aws_endpoint_url, settings.history_floor)
    )
    if dates is not None:
        scan = scan.on_dates(*dates)
    if args.engine:
        _say(f"silver, the facts, the marts and the ML features run on {args.engine} (the resight/engine tag)")
    if not scan.files and not scan.rejected:
        within = f" holds no file for {dates[0]} .. {dates[1]}" if dates else " is empty"
        _say(f"the landing zone {settings.landing_url}{within}: nothing to load")
        return 0
    partitions = scan.partitions()
    if partitions:
        days = sorted(day for day, _, _ in partitions)
        sources = {(provider, feed) for _, provider, feed in partitions}
        _say(
            f"the landing zone {settings.landing_url}: {len(scan.files):,} files for {len(sources)} registered"
            f" sources, business dates {days[0]} .. {days[-1]}"
        )
    if scan.rejected:
        _say(
            f"{len(scan.rejected):,} {'more ' if partitions else ''}files break the landing contract or name no"
            " registered source: they will be dead-lettered"
        )
    since = datetime.now(UTC)
    started = time.perf_counter()
    failure = None
    try:
        pg_url, report = _run_platform(settings, landing, engine=args.engine, dates=dates, close=args.close)
        runs = len(report.runs)
    except RunFailed as exc:
        if service_down_in_traces(exc.outcome.traces, settings) is not None:
            raise  # a service went away: one sentence (main), no summary from it
        failure, pg_url, runs = str(exc), resolve_pg_url(settings), 0
    except RuntimeError as exc:
        failure, pg_url, runs = str(exc), resolve_pg_url(settings), 0
    elapsed = time.perf_counter() - started
    _say(f"\npipeline {'FAILED' if failure else 'finished'} in {elapsed:.0f}s" + (f" ({runs} runs)" if runs else ""))
    print_run_summary(pg_url, since)
    if failure:
        print(f"error: {failure}; the run's log is above, and in the Dagster UI (`resight dev`)", file=sys.stderr)
        return 1
    return 0


def cmd_emr_silver(args: argparse.Namespace) -> int:
    """Clean silver of a date range again on EMR Serverless (``emr_silver_job``), and say what it wrote."""
    import dagster as dg

    from resight_platform.definitions import build_definitions
    from resight_platform.defs.emr import EMR_SILVER_JOB, emr_run_config
    from resight_platform.recovery import process_tags

    settings = _settings()
    if not settings.emr.configured:
        raise SystemExit(
            "resight emr-silver: EMR Serverless is not configured: set RESIGHT_EMR_SERVERLESS_APPLICATION_ID,"
            " RESIGHT_EMR_EXECUTION_ROLE_ARN, RESIGHT_EMR_ENTRY_POINT and RESIGHT_EMR_ARCHIVE (docs/engines.md)"
        )
    start, end = _date(args.start, "--from"), _date(args.to, "--to")
    if start > end:
        raise SystemExit(f"resight emr-silver: --from {start} is after --to {end}")
    pg_url, environment = _start_warehouse(settings)
    _say(
        f"silver of {start} .. {end} on EMR Serverless application {settings.emr.application_id};"
        " the job's progress follows, its partitions are recorded when it ends"
    )
    started = time.perf_counter()
    with _environment(environment), dg.DagsterInstance.get() as instance:
        _recover(instance, settings, "resight emr-silver")
        result = (
            build_definitions(settings, pg_url)
            .resolve_job_def(EMR_SILVER_JOB)
            .execute_in_process(
                run_config={
                    **emr_run_config(start, end, sources=args.source, feeds=args.feed),
                    "loggers": {"console": {"config": {"log_level": "INFO"}}},
                },
                instance=instance,
                tags=process_tags(),
                raise_on_error=False,
            )
        )
    elapsed = time.perf_counter() - started
    written: dict[str, list[int]] = {}
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        counts = written.setdefault("/".join(event.asset_key.path) if event.asset_key else "?", [0, 0, 0])
        counts[0] += 1
        counts[1] += int(metadata["dagster/row_count"].value)  # type: ignore[arg-type]
        counts[2] += int(metadata["rows_quarantined"].value)  # type: ignore[arg-type]
    for asset, (partitions, rows, quarantined) in sorted(written.items()):
        _say(f"{asset}: {partitions:,} partitions, {rows:,} rows, {quarantined:,} quarantined")
    if not result.success:
        failures = [e.step_failure_data.error for e in result.all_events if e.is_step_failure]
        reason = "; ".join(error.message.strip() for error in failures if error is not None) or "see the run's log"
        print(f"error: {EMR_SILVER_JOB} failed after {elapsed:.0f}s (run {result.run_id}): {reason}", file=sys.stderr)
        return 1
    _say(
        f"{EMR_SILVER_JOB} finished in {elapsed:.0f}s (run {result.run_id});"
        " next: the facts of the range (gold_facts_job)"
    )
    return 0


def _ledger_counts(cur: Any, since: Any = None) -> tuple[int, int, int, int, int, int]:
    """Files loaded, read but not loaded, dead-lettered; rows in, loaded, quarantined: over the
    whole ledger, or the files processed ``since`` a time."""
    cur.execute(
        "select count(*) filter (where status = 'loaded'), count(*) filter (where status = 'read'),"
        " count(*) filter (where status = 'dead_lettered'), coalesce(sum(rows_in), 0),"
        " coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)"
        " from ops.ingestion_ledger where %(since)s::timestamptz is null or processed_at >= %(since)s",
        {"since": since},
    )
    return tuple(int(v) for v in cur.fetchone())  # type: ignore[return-value]


def print_run_summary(pg_url: str, since: Any) -> None:
    """What became of the files processed since ``since``: loaded, dead-lettered (with their
    reasons), rows quarantined by rule; and what gold holds now."""
    from resight_platform.io.postgres import connect

    with connect(pg_url) as conn, conn.cursor() as cur:
        files_loaded, files_read, files_dead, rows_in, rows_loaded, rows_quarantined = _ledger_counts(cur, since)
        by_rule = cur.execute(
            "select q.rule, count(*) from ops.quarantine q join ops.ingestion_ledger l on l.file_key = q.source_file"
            " where l.processed_at >= %s group by 1 order by 2 desc, 1",
            (since,),
        ).fetchall()
        dead = cur.execute(
            "select file_key, coalesce(error_code, 'unknown') from ops.ingestion_ledger"
            " where status = 'dead_lettered' and processed_at >= %s order by file_key limit %s",
            (since, DEAD_LETTERS_LISTED + 1),
        ).fetchall()
        fact_rows, fact_net = cur.execute("select count(*), sum(net_amount) from gold.fact_sales").fetchone()  # type: ignore[misc]
    _say("== ReSight run summary ==")
    _say(f"files loaded:             {files_loaded:>12,}")
    if files_read:
        _say(f"files read, not loaded:   {files_read:>12,}   (silver did not finish: see the failed run)")
    _say(f"files dead-lettered:      {files_dead:>12,}")
    _say(f"rows in:                  {rows_in:>12,}")
    _say(f"rows loaded:              {rows_loaded:>12,}")
    _say(f"rows quarantined:         {rows_quarantined:>12,}  " + ", ".join(f"{r}={n}" for r, n in by_rule))
    _say(f"gold.fact_sales now:      {fact_rows:>12,} rows, net amount {fact_net or 0} USD")
    if dead:
        _say("dead-lettered:")
        for key, code in dead[:DEAD_LETTERS_LISTED]:
            _say(f"  {_printable(key)}: {code}")
        if len(dead) > DEAD_LETTERS_LISTED:
            _say(f"  ... and {files_dead - DEAD_LETTERS_LISTED:,} more")
    _say("per source and reason: `resight quality --from D --to D`; the tables: `resight sql`")


DEAD_LETTERS_LISTED = 20


def _other_connections(cur: Any) -> int:
    """Client connections to the server besides this one (a `resight dev`, a daemon, a run, psql)."""
    row = cur.execute(
        "select count(*) from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid()"
    ).fetchone()
    return int(row[0]) if row else 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the embedded Postgres under ``RESIGHT_HOME`` (its data is kept)."""
    from resight_platform.io.postgres import connect, embedded_pg_server_url, stop_embedded_pg

    settings = _settings()
    server_url = embedded_pg_server_url(settings.pg_data_dir)
    if server_url is not None:
        with connect(server_url) as conn, conn.cursor() as cur:
            others = _other_connections(cur)
        if others:
            _say(f"closing {others} open connections (a running `resight dev` or daemon loses its warehouse)")
    if stop_embedded_pg(settings.pg_data_dir):
        _say(f"stopped the embedded Postgres in {settings.pg_data_dir} (data kept; the next command starts it again)")
    else:
        _say(f"no embedded Postgres is running in {settings.pg_data_dir}")
    if settings.pg_url:
        _say("the warehouse is the external server of RESIGHT_PG_URL: `resight stop` leaves it alone")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Where things are, whether the embedded Postgres runs, and what the ledger holds (never
    starts a server)."""
    import psycopg

    from resight_platform.io.postgres import connect, database_url, embedded_pg_server_url

    settings = _settings()
    _say(f"home:        {settings.home}")
    _say(f"landing:     {settings.landing_url}")
    _say(f"lake:        {settings.lake_url}")
    _say(f"registry:    {settings.registry_dir or 'packaged'}")
    server_url = embedded_pg_server_url(settings.pg_data_dir)
    running = f"running (data in {settings.pg_data_dir})" if server_url else "not running"
    if settings.pg_url:
        parts = urlsplit(settings.pg_url)  # host, port and database only: never the credentials
        where = (parts.hostname or "local socket") + (f":{parts.port}" if parts.port else "") + parts.path
        _say(f"warehouse:   external, {where}")
        if server_url:
            _say(f"embedded Postgres under home: {running}, unused while RESIGHT_PG_URL is set")
        pg_url: str | None = settings.pg_url
    else:
        _say(f"warehouse:   embedded Postgres, {running}")
        pg_url = database_url(server_url, "resight") if server_url else None
    if pg_url is None:
        _say("ledger:      (the server is stopped; any command that needs it starts it)")
        return 0
    try:
        with connect(pg_url) as conn, conn.cursor() as cur:
            _say(f"connections: {_other_connections(cur)} open to the server besides this one")
            if cur.execute("select to_regclass('ops.ingestion_ledger')").fetchone() == (None,):
                _say("ledger:      empty (the warehouse is not migrated yet)")
                return 0
            loaded, read, dead, _, _, quarantined = _ledger_counts(cur)
            last = cur.execute("select max(processed_at) from ops.ingestion_ledger").fetchone()
    except psycopg.OperationalError as exc:
        _say(f"ledger:      unreachable ({type(exc).__name__})")
        return 1
    _say(
        f"ledger:      {loaded:,} files loaded, {read:,} read (not yet loaded), {dead:,} dead-lettered,"
        f" {quarantined:,} rows quarantined; last processed {last[0] if last and last[0] else 'never'}"
    )
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Every check of ``resight_platform.doctor``, one line each with the fix under it, then a
    summary; exit 1 when a check failed (warnings pass). Read-only: starts, migrates and grants
    nothing."""
    from resight_platform.doctor import diagnose

    results = diagnose()
    counts = {status: sum(r.status == status for r in results) for status in ("ok", "warn", "fail")}
    healthy = counts["fail"] == 0
    if args.json:
        _say(json.dumps({"healthy": healthy, "counts": counts, "checks": [r.as_dict() for r in results]}, indent=2))
        return 0 if healthy else 1
    width = max(len(r.name) for r in results)
    for result in results:
        _say(f"{result.status.upper():<4}  {result.name:<{width}}  {result.finding}")
        if result.fix:
            _say(f"{'':<4}  {'':<{width}}  fix: {result.fix}")
    _say(
        f"\n{counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed: "
        + ("healthy" if healthy else "fix the failures above")
    )
    return 0 if healthy else 1


@contextlib.contextmanager
def _dagster_instance(settings: Any, pg_url: str) -> Iterator[Any]:
    """The Dagster instance: ``DAGSTER_HOME``'s when it is set (a deployment's service), else the
    one ``resight dev`` and ``resight daemon`` use (``instance_env``)."""
    import dagster as dg

    if os.environ.get("DAGSTER_HOME"):
        with dg.DagsterInstance.get() as instance:
            yield instance
        return
    with _environment(instance_env(settings, pg_url)), dg.DagsterInstance.get() as instance:
        yield instance


def cmd_health(args: argparse.Namespace) -> int:
    """The pipeline's health now (``resight_platform.health``): files, rows, lag, sources, runs,
    the queue, checks, then every problem; exit 1 when there is one. A warehouse or an instance
    that cannot be reached is one of them: the other half is still printed."""
    import psycopg

    from resight_platform.health import summary_lines, take_snapshot
    from resight_platform.io.postgres import connect
    from resight_platform.resources import resolve_pg_url

    settings = _settings()
    pg_url = resolve_pg_url(settings)
    with contextlib.suppress(psycopg.Error):  # unreachable: the snapshot says so, with the reason
        _connect_warehouse(settings)[1].close()
    with contextlib.ExitStack() as stack:
        snapshot = take_snapshot(
            lambda: connect(pg_url, connect_timeout="10"),
            lambda: stack.enter_context(_dagster_instance(settings, pg_url)),
            settings.health,
            settings.freshness_grace,
        )
    if args.json:
        sys.stdout.write(json.dumps(snapshot.as_dict(), indent=2, default=str) + "\n")
    else:
        for line in summary_lines(snapshot):
            _say(_printable(line, 400))
    return 0 if snapshot.healthy else 1


def cmd_metrics(args: argparse.Namespace) -> int:
    """Serve ``/metrics`` for Prometheus until interrupted: each scrape reads a health snapshot."""
    import dagster as dg

    from resight_platform.metrics import serve
    from resight_platform.resources import resolve_pg_url

    settings = _settings()
    pg_url = resolve_pg_url(settings)
    if not os.environ.get("DAGSTER_HOME"):  # not a deployment's service: `resight dev`'s instance
        os.environ.update(instance_env(settings, pg_url))
    with serve(settings, pg_url, dg.DagsterInstance.get, args.host, args.port) as server:
        _say(f"serving pipeline metrics on http://{args.host}:{server.port}/metrics (Ctrl-C to stop)")
        try:
            server.wait()
        except KeyboardInterrupt:
            _say("stopped")
    return 0


def cmd_subscribe(args: argparse.Namespace) -> int:
    """Create the landing zone's notification queue and subscribe the bucket to it (``io/events.py``)."""
    from resight_platform.io.events import subscribe

    settings = _settings()
    if not settings.landing_url.startswith("s3://"):
        _say(f"the landing zone {settings.landing_url} is not on S3: the landing sensor lists it, no queue needed")
        return 2
    done = subscribe(
        settings.landing_url,
        args.queue,
        endpoint_url=settings.aws_endpoint_url,
        visibility_timeout=settings.watch.events_visibility_timeout,
        retention_days=args.retention_days,
    )
    if args.json:
        print(json.dumps(dataclasses.asdict(done), indent=2))
        return 0
    _say(
        f"{'created' if done.created_queue else 'kept'} queue {done.queue_arn}; bucket {done.bucket} sends it"
        f" object-created events under {done.prefix or '(the whole bucket)'}/ (notification {done.notification_id!r})"
    )
    _say(f"now set RESIGHT_LANDING_QUEUE_URL={done.queue_url} for the daemon and the code server")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Plan retention as of today (UTC) and print per layer what goes; delete it unless ``--dry-run``
    (``resight_platform/retention.py``; the same plan either way)."""
    from datetime import UTC, datetime

    from resight_platform.io.storage import open_store
    from resight_platform.retention import RetentionStores, apply_retention, plan_retention

    settings = _settings()
    attempts = settings.s3_max_attempts
    stores = RetentionStores(
        *(
            open_store(url, settings.aws_endpoint_url, max_attempts=attempts)
            for url in (settings.landing_url, settings.lake_url, settings.dead_letter_url)
        )
    )
    now = datetime.now(UTC)
    _pg_url, conn = _connect_warehouse(settings)
    with conn:
        plan = plan_retention(conn, stores, settings.retention, now.date())
        layers = plan.by_layer()
        if not args.dry_run:
            run_id = f"cli-{now:%Y%m%dT%H%M%S}"
            layers = apply_retention(conn, stores, plan, run_id=run_id, now=now).by_layer()
    if args.json:
        _say(json.dumps({"dry_run": args.dry_run, **plan.as_dict(), "layers": layers}, indent=2, default=str))
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    rows = [
        (layer, str(plan.cutoffs.get(layer) or "kept"), c["objects"], c["bytes"], c["rows"], c["kept"])
        for layer, c in layers.items()
    ]
    _say(format_table(["layer", "before", f"objects {verb}", "bytes", "quarantine rows", "kept past cutoff"], rows))
    for (layer, reason), n in sorted(plan.kept.items()):
        _say(f"kept {n} {layer} object(s): {reason}")
    _say(f"{plan.listed} objects listed in {plan.list_requests} LIST request(s)")
    return 0


def _start_history(settings: Any, args: argparse.Namespace, stack: contextlib.ExitStack) -> Future[Any] | None:
    """Start generating a long, thin history from one more partner (the demand model needs over a
    year of weeks) in a process of its own, while this one generates the sample; None when no
    partner is left outside the sample. Its manifest goes beside the sample's, for
    :func:`_finish_history`."""
    import multiprocessing
    from datetime import timedelta

    from resight_platform.resources import load_registry_at
    from resight_platform.sample.generator import default_manifest_url
    from resight_platform.sample.history import history_provider

    registry = load_registry_at(settings.registry_dir, settings.aws_endpoint_url, settings.history_floor)
    provider = history_provider(registry, args.providers)
    if provider is None:
        _say("no partner left outside the sample to send a history: the demand model is skipped")
        return None
    end = date.fromisoformat(args.start) + timedelta(days=args.days - 1)
    _say(f"generating a {args.history_weeks}-week history from {provider} up to {end} (for the demand model)")
    pool = stack.enter_context(ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")))
    return pool.submit(
        _generate_history,
        settings.landing_url,
        provider=provider,
        end=end,
        weeks=args.history_weeks,
        not_before=date.fromisoformat(settings.partitions_start),
        seed=args.seed,
        manifest_url=default_manifest_url(settings.landing_url) + ".history",
        endpoint_url=settings.aws_endpoint_url,
        registry=registry,
        tracking=None
        if settings.mlflow_tracking_uri
        else (settings.tracking_uri, str(settings.mlflow_dir / "artifacts")),
    )


def _generate_history(out_url: str, *, tracking: tuple[str, str] | None, **kwargs: Any) -> Any:
    """``generate_history`` in the history's process (a module-level function, for the pool);
    then, given the local ``tracking`` store (URI, artifact location), its tables and the demand
    model's experiment, created here while the sample is generated instead of in the ML run
    (MLflow's migrations of a new SQLite store take seconds)."""
    from resight_platform.sample.history import generate_history

    history = generate_history(out_url, **kwargs)
    if tracking is not None:
        from resight_platform.ml.tracking import experiment_id

        experiment_id(*tracking)
    return history


def _finish_history(settings: Any, manifest: Any, history: Future[Any]) -> None:
    """Wait for the history and make the sample's manifest cover both."""
    from resight_platform.io.storage import open_store
    from resight_platform.sample.generator import default_manifest_url
    from resight_platform.sample.manifest import combine

    both = combine([manifest, history.result()])
    directory, _, name = default_manifest_url(settings.landing_url).rpartition("/")
    store = open_store(directory, settings.aws_endpoint_url)
    store.write_bytes(name, both.to_json().encode())
    store.delete(name + ".history")


def _scalar(cur: Any, query: str) -> Any:
    cur.execute(query)
    row = cur.fetchone()
    return row[0] if row else None


def print_summary(settings: Any, pg_url: str) -> None:
    """Rows per layer, quarantine and dead-letter counts, and a few headline numbers from the marts."""
    from resight_platform.io.postgres import connect

    with connect(pg_url) as conn, conn.cursor() as cur:
        files_loaded, _, files_dead, rows_in, rows_loaded, rows_quarantined = _ledger_counts(cur)
        cur.execute("select rule, count(*) from ops.quarantine group by rule order by 2 desc")
        by_rule = cur.fetchall()
        fact_rows, fact_net = cur.execute("select count(*), sum(net_amount) from gold.fact_sales").fetchone()  # type: ignore[misc]
        # Members delivered by partners: not the unknown members (key 0) of products, stores, customers.
        dims = {
            name: _scalar(cur, f"select count(*) from gold.{name} where {key} <> 0")  # noqa: S608 - fixed names
            for name, key in (
                ("dim_provider", "provider_key"),
                ("dim_store", "store_key"),
                ("dim_product", "product_key"),
                ("dim_customer", "customer_key"),
                ("dim_date", "date_key"),
            )
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


#: The code location of `resight dev` and `resight daemon`, loaded with ``-m``: Dagster names the
#: location after the module, and workspace.yaml names it the same (sensor states and cursors are
#: kept per location name, so the UI and the daemon must agree).
DEFINITIONS_MODULE = "resight_platform.definitions"


def cmd_dev(args: argparse.Namespace) -> int:
    settings = _settings()
    pg_url, conn = _connect_warehouse(settings)
    conn.close()
    _recover_before(settings, pg_url, "resight dev")
    env = {**os.environ, **instance_env(settings, pg_url), "RESIGHT_PG_URL": pg_url}
    beside = Path(sys.executable).parent / "dagster"
    command = [
        str(beside) if beside.exists() else "dagster",
        "dev",
        "-m",
        DEFINITIONS_MODULE,
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
    _recover_before(settings, pg_url, "resight daemon")
    env = {**os.environ, **instance_env(settings, pg_url), "RESIGHT_PG_URL": pg_url}
    beside = Path(sys.executable).parent / "dagster-daemon"
    command = [str(beside) if beside.exists() else "dagster-daemon", "run", "-m", DEFINITIONS_MODULE]
    _say(f"starting dagster-daemon on {settings.landing_url} (Ctrl-C to stop)")
    os.execvpe(command[0], command, env)
    return 0  # pragma: no cover - execvpe does not return


def cmd_mlflow(args: argparse.Namespace) -> int:
    """The MLflow UI on the local tracking store (runs, metrics, plots, registered models)."""
    from resight_platform.redact import redact

    settings = _settings()
    if settings.mlflow_tracking_uri:
        _say(f"MLFLOW_TRACKING_URI is {redact(settings.mlflow_tracking_uri)}: open that server's UI")
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


WHICH_COMMAND = """\
which command:
  try the platform on generated data      resight demo    (a sample; refuses a landing zone of other files)
  load the files in the landing zone now  resight run     (once, end to end, then exits)
  load files as they land                 resight daemon  (or resight dev, with the Dagster UI)
  clean silver of a range on EMR          resight emr-silver --from D --to D
  see what became of the files            resight quality, resight sql "select ..."
  where things are, what is running       resight status
  is this deployment healthy, what to fix resight doctor  (settings, Postgres, S3, MLflow, rights, versions)
  is the pipeline healthy now             resight health  (runs, queue, checks, stale sources, dead letters, lag)
  metrics for Prometheus                  resight metrics (serves /metrics; deploy/ has Prometheus and Grafana)
  delete what is past its retention       resight retention --dry-run  (then without --dry-run)
  stop the embedded Postgres              resight stop

settings come from RESIGHT_* variables (README: "Pointing it at real S3 and Postgres");
by default everything lives under .resight/ (RESIGHT_HOME).
"""

DEMO_DESCRIPTION = """\
Try the platform on generated data. With an empty landing zone: generate a sample ({providers}
providers x {days} days of all four feeds, with the bad files and rows a real landing zone has,
and a thin --history-weeks history from one more partner for the demand model), start the
warehouse, run every job over it (bronze, silver, gold, marts; the demand model when the dates
span more than 76 weeks), print a summary and check it against the sample's manifest.

When the landing zone already holds the sample (a previous demo or `resight generate`: as many
files as its manifest.json says), it is loaded again: nothing is loaded twice. When it holds
anything else, demo refuses and exits 2: `resight run` loads what is there, and `--fresh`
deletes the embedded landing zone and lake to start over with the sample."""

SQL_DESCRIPTION = """\
Run one query against the warehouse and print the result as a table (or CSV).

The query runs as the analyst role (RESIGHT_ANALYST_ROLE, default `analyst`), logged in as that
role: it reads gold, marts and the health views, and nothing else (no ops, no writes, no DDL). On
an external server the role logs in with RESIGHT_ANALYST_PASSWORD; the embedded server lets it in
on its local socket.
--owner runs the query as the platform's owner, who reads and writes everything (the ledger in
ops, quarantine, repairs): say so explicitly when you mean it."""

RUN_DESCRIPTION = """\
Load every file in the landing zone (RESIGHT_LANDING_URL) now, end to end, as one batch: refused
keys are dead-lettered, then bronze, silver, the dimensions, gold facts, the daily and monthly
marts; the demand model is trained and the forecast made when the landed dates span more than
76 weeks. Progress is printed as it goes, then a summary of this run: files loaded and
dead-lettered (with the reason), rows in, loaded and quarantined by rule.

With --from/--to, only the files of those business dates (a backfill of a range of history); with
--engine spark, silver, the facts, the marts and the ML features of the runs run on Spark
(docs/engines.md); with --close, the date x source partitions no file was expected for are closed
too, so the UI's "missing" is only the real gaps (otherwise the daemon's closing sensor does it).

Runs on the same Dagster instance as `resight dev`, so its UI shows them. A re-run loads nothing
twice. Exits 1 when a job failed (its error is printed), 0 otherwise: a dead-lettered file or a
quarantined row is the partner's problem, reported, not a failure of the run."""


EMR_SILVER_DESCRIPTION = """\
Clean silver of a range of business dates again on an EMR Serverless application, from the bronze
already in the lake (a re-statement, or a backfill past one machine): submits emr_silver_job's
job run through Dagster Pipes, prints its progress, and when it ends, what it wrote per feed.
Each date x source partition is recorded in Dagster as a materialisation of silver/<feed>, and
the quarantine and file counts go to ops as a silver run stores them. Needs RESIGHT_EMR_* and an
S3 lake (docs/engines.md, "EMR Serverless"). Then run the facts of the range (gold_facts_job).
Exits 1 when the job run failed, with the cluster's reason."""


HEALTH_DESCRIPTION = """\
The pipeline's health now, from the warehouse's health views (schema health) and the Dagster
instance: files handled in the window by status, rows, the freshness lag (a file's arrival to its
silver load), active and stale sources, dead letters, runs by status, the queue, checks evaluated.
Then every problem, and exit 1 when there is one: a failed run with no later success of its job, a
run queued too long, a failing check, a stale source, a dead letter in the window, a freshness lag
over its limit, or a half that cannot be read. Limits: RESIGHT_HEALTH_* (README, docs/operations.md)."""

#: Where ``resight metrics`` listens by default.
DEFAULT_METRICS_PORT = 9188


def build_parser() -> argparse.ArgumentParser:
    from resight_platform.engines import ENGINES

    parser = argparse.ArgumentParser(
        prog="resight",
        description="ReSight data platform: partner files -> bronze -> silver -> gold -> marts -> demand forecast.",
        epilog=WHICH_COMMAND,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")

    def sample_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--providers", type=int, default=30, help="number of providers (default 30)")
        p.add_argument("--days", type=int, default=14, help="number of business days (default 14)")
        p.add_argument("--start", default="2026-10-01", help="first business date, YYYY-MM-DD")
        p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")

    def described(name: str, summary: str, description: str | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description or summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    demo = described(
        "demo",
        "try it: generate a sample (if the landing zone is empty) and load it end to end",
        DEMO_DESCRIPTION.format(providers=30, days=14),
    )
    sample_options(demo)
    demo.add_argument("--fresh", action="store_true", help="delete the embedded landing zone, lake and manifest first")
    demo.add_argument(
        "--history-weeks",
        type=int,
        default=80,
        help="weeks of thin sales history from one more partner, for the demand model (default 80; 0: none)",
    )
    demo.set_defaults(func=cmd_demo)

    run = described("run", "load what is in the landing zone now, end to end, once", RUN_DESCRIPTION)
    run.add_argument(
        "--engine",
        choices=ENGINES,
        help="where silver, the facts, the marts and the ML features run (default RESIGHT_ENGINE, else polars);"
        " spark for a backfill past one machine (RESIGHT_SPARK_MASTER / RESIGHT_SPARK_REMOTE)",
    )
    run.add_argument("--from", dest="start", help="first business date of the files to load (a backfill of a range)")
    run.add_argument("--to", help="last business date of the files to load")
    run.add_argument(
        "--close",
        action="store_true",
        help="also close the date x source partitions no file was expected for, as the daemon's closing"
        " sensor and nightly schedule do (docs/operations.md): a first closing of a long partition space is"
        " hundreds of thousands of events (minutes)",
    )
    run.set_defaults(func=cmd_run)

    emr = described(
        "emr-silver",
        "clean silver of a date range again on EMR Serverless (RESIGHT_EMR_*), recorded in Dagster",
        EMR_SILVER_DESCRIPTION,
    )
    emr.add_argument("--from", dest="start", required=True, help="first business date (YYYY-MM-DD)")
    emr.add_argument("--to", required=True, help="last business date (YYYY-MM-DD)")
    emr.add_argument("--source", action="append", help="a source to clean (repeat; default every registered source)")
    emr.add_argument("--feed", action="append", help="a feed to clean (repeat; default every feed)")
    emr.set_defaults(func=cmd_emr_silver)

    daemon = described(
        "daemon",
        "run the Dagster daemon: the landing sensor loads files as they land, automation takes them to the marts",
    )
    daemon.set_defaults(func=cmd_daemon)

    dev = described("dev", "start the embedded services and the Dagster UI (with the daemon)")
    dev.add_argument("--port", type=int, default=3000)
    dev.add_argument("--host", default="127.0.0.1")
    dev.set_defaults(func=cmd_dev)

    quality = described(
        "quality",
        "per source: files, rows, quarantine by rule, dead letters (with the keys no source was found for),"
        " stale sources",
    )
    quality.add_argument("--from", dest="start", help="first business date (default: 6 days before --to)")
    quality.add_argument("--to", help="last business date (default: today, UTC)")
    quality.add_argument("--feed", choices=["sales", "catalog", "stores", "customers"])
    quality.add_argument(
        "--provider", help="one provider; includes dead letters whose key starts with it even if it could not be parsed"
    )
    quality.add_argument("--json", action="store_true", help="print JSON instead of tables")
    quality.set_defaults(func=cmd_quality)

    sql = described(
        "sql",
        "run a query against the warehouse as the analyst role (gold and marts, read only) and print the result",
        SQL_DESCRIPTION,
    )
    sql.add_argument("query")
    sql.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    sql.add_argument(
        "--owner",
        action="store_true",
        help="run as the platform's owner (every schema, writes included: ops, silver, DDL) instead of the analyst",
    )
    sql.set_defaults(func=cmd_sql)

    status = described(
        "status", "where home, landing zone and lake are, whether the embedded Postgres runs, ledger counts"
    )
    status.set_defaults(func=cmd_status)

    doctor = described(
        "doctor",
        "check settings, Postgres, the lake and landing zone, MLflow, rights, versions and migrations;"
        " print what to fix",
    )
    doctor.add_argument("--json", action="store_true", help="print the results as JSON (for scripts and monitors)")
    doctor.set_defaults(func=cmd_doctor)

    health = described(
        "health",
        "the pipeline now: files, rows, freshness lag, stale sources, dead letters, runs, queue, checks;"
        " exit 1 on a problem",
        HEALTH_DESCRIPTION,
    )
    health.add_argument("--json", action="store_true", help="print the snapshot as JSON (for scripts and monitors)")
    health.set_defaults(func=cmd_health)

    metrics = described(
        "metrics", "serve Prometheus metrics of the pipeline's health on /metrics (read on each scrape)"
    )
    metrics.add_argument("--port", type=int, default=DEFAULT_METRICS_PORT, help=f"default {DEFAULT_METRICS_PORT}")
    metrics.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0 in a container)")
    metrics.set_defaults(func=cmd_metrics)
    subscribe = described(
        "subscribe",
        "create the SQS queue of the landing bucket's object-created notifications and subscribe the bucket to it",
        SUBSCRIBE_DESCRIPTION,
    )
    subscribe.add_argument("--queue", default="resight-landing", help="queue name (default %(default)s)")
    subscribe.add_argument(
        "--retention-days", type=int, default=14, help="days SQS keeps an unread notification (default 14, the most)"
    )
    subscribe.add_argument("--json", action="store_true", help="print what was set up as JSON")
    subscribe.set_defaults(func=cmd_subscribe)

    retention = described(
        "retention",
        "delete what each layer no longer keeps (RESIGHT_RETAIN_*_DAYS), recorded in ops.retention_log;"
        " --dry-run lists it",
    )
    retention.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    retention.add_argument("--json", action="store_true", help="print the plan (and what was deleted) as JSON")
    retention.set_defaults(func=cmd_retention)

    stop = described("stop", "stop the embedded Postgres under RESIGHT_HOME (data kept; an external one is left alone)")
    stop.set_defaults(func=cmd_stop)

    gen = described("generate", "write a sample landing zone and its ground-truth manifest (no loading)")
    sample_options(gen)
    gen.add_argument("--out", help="landing URL: a directory or s3://bucket/prefix (default: RESIGHT_LANDING_URL)")
    gen.add_argument("--manifest", help="where to write manifest.json (default: beside the landing root)")
    gen.add_argument("--sales-lines-per-day", type=int, help="total sales lines per day across providers")
    gen.set_defaults(func=cmd_generate)

    mlflow = described("mlflow", "start the MLflow UI on the local tracking store")
    mlflow.add_argument("--port", type=int, default=5000)
    mlflow.add_argument("--host", default="127.0.0.1")
    mlflow.set_defaults(func=cmd_mlflow)

    from resight_platform.onboard.cli import add_onboard_parser

    add_onboard_parser(sub)
    return parser


def _quiet_library_warnings() -> None:
    """People running the CLI get our output, not Dagster's beta notices or platformdirs' advice."""
    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")


def _trace_text(trace: Any) -> str:
    """A failed step's error and what it was raised from, as a traceback reads."""
    return "\n".join(f"{e.stack}{e.cls_name}: {e.message.strip()}\n" for e in reversed(list(trace.chain())))


def _log_trace(settings: Any, exc: BaseException, details: str = "") -> Path | None:
    """Append ``exc``'s full trace and ``details`` (URLs redacted) to ``RESIGHT_HOME/logs/resight.log``;
    where it went, or ``None`` when it could not be written."""
    import traceback
    from datetime import UTC, datetime

    from resight_platform.redact import redact_text

    path = Path(settings.home) / "logs" / "resight.log"
    trace = redact_text("".join(traceback.format_exception(exc)) + details)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as log:
            log.write(f"--- {datetime.now(UTC).isoformat()} resight {' '.join(sys.argv[1:2])}\n{trace}\n")
    except OSError:
        return None
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Run a command. When an outside service is down (the warehouse, Dagster's storage, the S3
    endpoint), one sentence names it and its URL (password masked), the full trace goes to the
    log under ``RESIGHT_HOME``, and the exit code is 3."""
    args = build_parser().parse_args(argv)
    _quiet_library_warnings()
    try:
        return int(args.func(args))
    except Exception as exc:
        from resight_platform.pipeline import RunFailed
        from resight_platform.services import service_down, service_down_in_traces

        settings = _settings()
        down, run, details = service_down(exc, settings), "", ""
        if down is None and isinstance(exc, RunFailed):  # a step's error, from the run's event log
            down = service_down_in_traces(exc.outcome.traces, settings)
            run = f"; {exc.outcome.job} failed (run {exc.outcome.run_id})"
            details = "".join(_trace_text(trace) for trace in exc.outcome.traces)
        if down is None:
            raise
        log = _log_trace(settings, exc, details)
        print(f"error: {down.sentence()}{run}" + (f" (full trace in {log})" if log else ""), file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
