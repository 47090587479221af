"""Issue 19, point 5: the pipeline-health reads at scale.

Builds a ledger of ``--providers`` partners × 4 feeds (3,000 × 4 = 12,000 sources by default) ×
``--days`` business days ending today, one file per source and day, in Postgres with
``generate_series`` (1 % dead-lettered, the last hour's files queued or read, one run per 50 files),
about 1 % of the partners silent for the last three days (stale), registers the sources in
``ops.sources``, and then times, ``--repeat`` times each (median and
best reported):

- **scrape, warehouse half**: ``health.read_warehouse`` (what ``resight metrics`` reads from the
  warehouse on each scrape and ``resight health`` prints);
- **each dashboard SQL panel** (deploy/grafana/resight-pipeline.json, macros expanded for the
  dashboard's default 7 days), as the platform's user;
- the same warehouse half **without the indexes 010_health.sql adds** (dropped, timed, made again);
- **the request-cost reads** (``health.read_requests``: today's and yesterday's ``health.requests``
  and the metrics' totals; issue 20) over a request count per day × 6 components × every kind, with
  and without the ``first_seen`` index 012_requests.sql adds;
- **``resight health --json``** as a command (a new process: imports, the warehouse's migrations
  check, an empty Dagster instance), once.

    .venv/bin/python -m bench.health.run                         # 3,000 providers x 30 days
    .venv/bin/python -m bench.health.run --providers 100 --days 3 --repeat 1

``RESIGHT_PG_URL`` names the server (a database is made on it and dropped); unset, an embedded
pgserver under a temporary directory is started and stopped.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.machine import machine
from resight_platform.io.requests import KINDS

__all__ = ["build_ledger", "expand_macros", "main"]

RESULTS_PATH = Path(__file__).with_name("results.json")
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "resight-pipeline.json"
REQUEST_COMPONENTS = ("landing_sensor", "bronze", "lake", "dead_letter", "registry", "retention")
NEW_INDEXES = {
    "ingestion_ledger_processed": "(processed_at)",
    "ingestion_ledger_run": "(run_id) where run_id is not null",
    "ingestion_ledger_business_date": "(business_date)",
    "ingestion_ledger_source_seen": "(provider, feed, first_seen) where status <> 'vanished'",
}

_LEDGER = """
insert into ops.ingestion_ledger (
    file_key, checksum, provider, feed, business_date, bytes, rows_in, rows_loaded, rows_quarantined,
    status, error_code, error, first_seen, queued_at, processed_at, loaded_at, run_id, run_key
)
select
    format('p%%s/%%s/%%s/file.csv', p, f, d),
    md5(p::text || f || d::text),
    'p' || p, f, d, 1000,
    case when dead then null else 500 end,
    case when status = 'loaded' then 495 end,
    case when status = 'loaded' then 5 end,
    status,
    case when dead then 'bad_encoding' end,
    case when dead then 'line 3 is not UTF-8' end,
    arrival, arrival,
    case when status = 'queued' then null else arrival + interval '20 seconds' end,
    case when status = 'loaded' then arrival + interval '60 seconds' end,
    case when status = 'queued' then null else 'run-' || ((p * 4 + fi + d_index * 100000) / 50) end,
    case when status = 'queued' then 'landing-' || p end
from (
    select p, f, fi, d, d_index, arrival, dead,
        case
            when dead then 'dead_lettered'
            when arrival > %(now)s - interval '10 minutes' then 'queued'
            when arrival > %(now)s - interval '20 minutes' then 'read'
            else 'loaded'
        end as status
    from (
        select p, f, fi, d, d_index,
            -- each source's file arrives at its own minute of the day; today's up to now
            least(
                d::timestamptz + make_interval(mins => ((p * 7 + fi * 131) %% 1440)::int),
                %(now)s - interval '1 minute'
            ) as arrival,
            (p * 31 + fi * 7 + d_index) %% 100 = 0 as dead
        from generate_series(1, %(providers)s) p
        cross join unnest(array['sales', 'catalog', 'stores', 'customers']) with ordinality as feeds(f, fi)
        cross join generate_series(0, %(days)s - 1) as d_index
        cross join lateral (select (%(today)s::date - d_index) as d) days
        where not (p %% 97 = 0 and d_index < 3)  -- about 1 %% of the partners silent for three days: stale
    ) s
) t
"""


def build_ledger(conn: Any, providers: int, days: int, now: datetime) -> int:
    """``providers`` × 4 sources × ``days`` files in the ledger, and the sources registered."""
    conn.execute(
        "insert into ops.sources (provider, feed, provider_name, kind, profile, format, timezone, currency,"
        " expected_every_hours, active)"
        " select 'p' || p, f, 'P' || p, 'retail', 'default', 'csv', 'UTC', 'USD', 24, true"
        " from generate_series(1, %s) p cross join unnest(array['sales', 'catalog', 'stores', 'customers']) f",
        (providers,),
    )
    conn.execute(_LEDGER, {"providers": providers, "days": days, "now": now, "today": now.date()})
    # Request counts (io/requests.py's table): every day x component x kind, values only to be read.
    conn.execute(
        "insert into ops.request_counts (day, component, kind, requests)"
        " select %(today)s::date - d, c, k, 1000 + d from generate_series(0, %(days)s - 1) d"
        " cross join unnest(%(components)s::text[]) c cross join unnest(%(kinds)s::text[]) k",
        {"today": now.date(), "days": days, "components": list(REQUEST_COMPONENTS), "kinds": list(KINDS)},
    )
    conn.execute("analyze ops.ingestion_ledger")
    conn.execute("analyze ops.sources")
    row = conn.execute("select count(*) from ops.ingestion_ledger").fetchone()
    return int(row[0])


def expand_macros(query: str, start: datetime, end: datetime) -> str:
    """Grafana's PostgreSQL macros as Grafana expands them for the time range ``start``–``end``
    (``$__timeFilter``, ``$__timeGroup[Alias]``, ``$__timeFrom()``, ``$__timeTo()``); the dashboard
    test (resight_platform_tests/test_metrics.py) runs every panel's SQL through it too. A macro or
    variable left unexpanded is a ``ValueError``."""
    stamp = "'{:%Y-%m-%dT%H:%M:%SZ}'".format

    def group(match: re.Match[str], alias: bool) -> str:
        column, interval = match[1].strip(), match[2].strip().strip("'")
        seconds = int(interval[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[interval[-1]]
        text = f"floor(extract(epoch from {column})/{seconds})*{seconds}"
        return f'{text} AS "time"' if alias else text

    query = re.sub(r"\$__timeGroupAlias\(([^,]+),([^)]+)\)", lambda m: group(m, True), query)
    query = re.sub(r"\$__timeGroup\(([^,]+),([^)]+)\)", lambda m: group(m, False), query)
    query = re.sub(r"\$__timeFilter\(([^)]+)\)", lambda m: f"{m[1]} BETWEEN {stamp(start)} AND {stamp(end)}", query)
    query = query.replace("$__timeFrom()", stamp(start)).replace("$__timeTo()", stamp(end))
    if "$" in query:
        raise ValueError(f"a macro or variable left unexpanded: {query}")
    return query


def _fetch(conn: Any, query: str) -> int:
    return len(conn.execute(query).fetchall())


def _times(action: Callable[[], Any], repeat: int) -> dict[str, float]:
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - started)
    return {"median_s": round(statistics.median(seconds), 4), "best_s": round(min(seconds), 4)}


def run(server_url: str, providers: int, days: int, repeat: int) -> dict[str, Any]:
    import psycopg

    from resight_platform.health import read_requests, read_warehouse
    from resight_platform.io.ops import migrate
    from resight_platform.io.postgres import connect, database_url
    from resight_platform.settings import HealthSettings

    name = f"bench_health_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = database_url(server_url, name)
    now = datetime.now(UTC)
    out: dict[str, Any] = {"providers": providers, "sources": providers * 4, "days": days, "repeat": repeat}
    try:
        with connect(url) as conn:
            migrate(conn)
            started = time.perf_counter()
            out["ledger_rows"] = build_ledger(conn, providers, days, now)
            out["build_s"] = round(time.perf_counter() - started, 1)
            size = conn.execute("select pg_total_relation_size('ops.ingestion_ledger')").fetchone()
            out["ledger_mib"] = round(int(size[0]) / 2**20, 1) if size else None
            limits = HealthSettings()
            grace = timedelta(hours=2)
            snapshot = read_warehouse(conn, limits, grace, datetime.now(UTC))
            out["snapshot"] = {
                "files_in_window": sum(f.files for f in snapshot.files if f.status not in ("queued", "waiting")),
                "queued": sum(f.files for f in snapshot.files if f.status == "queued"),
                "dead_letters": snapshot.dead_letters,
                "stale_sources": sum(snapshot.stale_sources.values()),
                "active_sources": sum(snapshot.active_sources.values()),
            }
            out["warehouse_half"] = _times(lambda: read_warehouse(conn, limits, grace, datetime.now(UTC)), repeat)
            end = datetime.now(UTC)
            panels: dict[str, Any] = {}
            for panel in json.loads(DASHBOARD.read_text())["panels"]:
                for target in panel["targets"]:
                    if "rawSql" in target:
                        query = expand_macros(target["rawSql"], end - timedelta(days=7), end)
                        timing = _times(functools.partial(_fetch, conn, query), repeat)
                        panels[panel["title"]] = {**timing, "rows": _fetch(conn, query)}
            out["dashboard_sql"] = panels
            out["request_reads"] = _times(lambda: read_requests(conn, datetime.now(UTC)), repeat)
            conn.execute("drop index ops.ingestion_ledger_first_seen")
            out["request_reads_without_first_seen_index"] = _times(
                lambda: read_requests(conn, datetime.now(UTC)), repeat
            )
            conn.execute("create index ingestion_ledger_first_seen on ops.ingestion_ledger (first_seen)")
            for index in NEW_INDEXES:
                conn.execute(f"drop index ops.{index}")
            out["warehouse_half_without_new_indexes"] = _times(
                lambda: read_warehouse(conn, limits, grace, datetime.now(UTC)), max(1, min(repeat, 3))
            )
            for index, columns in NEW_INDEXES.items():
                conn.execute(f"create index {index} on ops.ingestion_ledger {columns}")
        with tempfile.TemporaryDirectory() as home:
            env = {
                **os.environ,
                "RESIGHT_PG_URL": url,
                "RESIGHT_HOME": home,
                "DAGSTER_HOME": home,
                "RESIGHT_ANALYST_PASSWORD": "bench",
            }
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "resight_platform.cli", "health", "--json"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            out["resight_health_command"] = {
                "wall_s": round(time.perf_counter() - started, 2),
                "exit": done.returncode,
                "problem_counts": json.loads(done.stdout)["problem_counts"] if done.stdout.strip() else done.stderr,
            }
    finally:
        with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--providers", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    from resight_platform.io.postgres import embedded_pg_url, stop_embedded_pg

    server = os.environ.get("RESIGHT_PG_URL")
    temporary = None if server else Path(tempfile.mkdtemp(prefix="bench-health-pg-"))
    try:
        url = server or embedded_pg_url(temporary / "data")  # type: ignore[operator]
        results = {
            "command": "python -m bench.health.run " + " ".join(argv if argv is not None else sys.argv[1:]),
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            **run(url, args.providers, args.days, args.repeat),
        }
    finally:
        if temporary is not None:
            stop_embedded_pg(temporary / "data")
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
