"""Issue 3: what Dagster adds to a small partition's run, against the same work as a plain script.

The work: bronze then silver sales for one (date, provider) partition of the generated sample
(about 1,000 lines), with everything the assets do: list the partition's files, read them, record
them in the ingestion ledger, write bronze Parquet, clean, write silver Parquet and quarantine,
record the counts. Three ways, alternately, ``--repeat`` times each:

- **plain**: the platform's building blocks called from a script (``plain_partition`` below);
- **dagster in process**: ``dg.materialize`` of the two assets for that partition on a Dagster
  instance on Postgres (what a sensor-triggered run pays inside its process);
- **dagster launched**: a fresh ``python`` process that loads the definitions and executes the
  same job (what the run launcher pays per run: interpreter, imports, definitions), against a
  fresh process running the plain script.

Overhead = Dagster's wall minus plain wall (medians). Target: under 3 s per run.

    .venv/bin/python -m bench.overhead.run                 # 5 repeats
    .venv/bin/python -m bench.overhead.run --repeat 2 --pg-url postgresql://…
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

__all__ = ["main", "plain_partition", "to_markdown"]

RESULTS_PATH = Path(__file__).with_name("results.json")
DAY = date(2026, 10, 1)
PROVIDER = "pawmart"
FEED = "sales"


def plain_partition(settings: Any, pg_url: str) -> int:
    """Bronze + silver sales of one partition with the platform's functions, no Dagster."""
    import polars as pl

    from resight_platform.defs.silver import quarantine_table
    from resight_platform.ingest import Ingestion, Restart, ingest_partition
    from resight_platform.io.lake import PartitionFileWriter, partition_path, write_partition
    from resight_platform.io.landing import LandedFile, list_partition_files
    from resight_platform.io.ops import known_checksums, record_files, record_silver
    from resight_platform.io.postgres import connect
    from resight_platform.io.storage import open_store
    from resight_platform.sources.mappings import load_mappings
    from resight_platform.sources.registry import load_registry
    from resight_platform.transforms.silver import clean_feed, reconcile

    registry, mappings, now = load_registry(), load_mappings(), datetime.now(UTC)
    landing, lake = open_store(settings.landing_url), open_store(settings.lake_url)
    dead = open_store(settings.dead_letter_url)
    partition = {"date": DAY.isoformat(), "source": PROVIDER}
    listing = [(PROVIDER, item) for item in list_partition_files(landing, registry, PROVIDER, FEED, DAY)]
    with connect(pg_url) as conn:
        keys = [item.info.key if isinstance(item, LandedFile) else item[0].key for _, item in listing]
        records: list[Any] = []
        writer = PartitionFileWriter(lake, partition_path(["bronze", FEED], partition))
        ingestion = Ingestion(landing, dead, registry, FEED, known_checksums(conn, keys), now)
        for item in ingest_partition(ingestion, DAY, listing, records):
            if isinstance(item, Restart):
                writer.abort()
                writer = PartitionFileWriter(lake, partition_path(["bronze", FEED], partition))
            else:
                writer.append(item)
        writer.commit()
        record_files(conn, records, run_id=None, now=now)
        raw = pl.read_parquet(lake.uri(partition_path(["bronze", FEED], partition)))
        result = clean_feed(FEED, raw, registry=registry, mappings=mappings, now=now)
        write_partition(lake, ["silver", FEED], partition, result.valid)
        write_partition(lake, quarantine_table(FEED), partition, result.quarantine)
        record_silver(
            conn,
            feed=FEED,
            partitions=[(DAY, PROVIDER)],
            quarantine=result.quarantine,
            reconciliation=reconcile(raw, result),
        )
    return result.valid.height


def _dagster_partition(defs: Any, instance: Any) -> None:
    job = defs.resolve_job_def("overhead_job")
    result = job.execute_in_process(
        instance=instance,
        partition_key=f"{DAY.isoformat()}|{PROVIDER}",
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    if not result.success:
        raise RuntimeError("the Dagster run failed")


def _definitions(settings: Any, pg_url: str) -> Any:
    import dagster as dg

    from resight_platform.definitions import build_definitions

    defs = build_definitions(settings, pg_url)
    job = dg.define_asset_job("overhead_job", selection=dg.AssetSelection.assets(["bronze", FEED], ["silver", FEED]))
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))


def _setup(home: Path, pg_url: str | None) -> tuple[Any, str]:
    from resight_platform.io.ops import migrate
    from resight_platform.io.postgres import connect
    from resight_platform.resources import resolve_pg_url
    from resight_platform.sample import generate
    from resight_platform.settings import Settings

    os.environ["RESIGHT_HOME"] = str(home)
    if pg_url:
        os.environ["RESIGHT_PG_URL"] = pg_url
    settings = Settings.from_env()
    if not (home / "landing").is_dir():
        generate(settings.landing_url, providers=3, days=1, start=DAY)
    url = resolve_pg_url(settings)
    with connect(url) as conn:
        migrate(conn)
    return settings, url


def _child(mode: str, home: Path, pg_url: str | None) -> float:
    """Wall time of a fresh process doing one run (``plain`` or ``dagster``), start to exit."""
    command = [sys.executable, "-m", "bench.overhead.run", "--child", mode, "--home", str(home)]
    if pg_url:
        command += ["--pg-url", pg_url]
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=Path(__file__).resolve().parents[2], capture_output=True)
    return time.perf_counter() - started


def run_child(mode: str, home: Path, pg_url: str | None) -> None:
    import dagster as dg

    from resight_platform.cli import _environment, _quiet_library_warnings, instance_env

    _quiet_library_warnings()
    settings, url = _setup(home, pg_url)
    if mode == "plain":
        plain_partition(settings, url)
        return
    with _environment(instance_env(settings, url)), dg.DagsterInstance.get() as instance:
        _dagster_partition(_definitions(settings, url), instance)


def run_benchmark(repeat: int, pg_url: str | None, home: Path) -> dict[str, Any]:
    import dagster as dg

    from resight_platform.cli import _environment, _quiet_library_warnings, instance_env
    from resight_platform.defs.jobs import REGISTRY_JOB

    _quiet_library_warnings()
    settings, url = _setup(home, pg_url)
    plain, in_process, fresh_plain, fresh_dagster = [], [], [], []
    rows = plain_partition(settings, url)  # warm: imports, first connection, file cache
    with _environment(instance_env(settings, url)), dg.DagsterInstance.get() as instance:
        defs = _definitions(settings, url)
        registered = defs.resolve_job_def(REGISTRY_JOB).execute_in_process(instance=instance)  # source partitions
        if not registered.success:
            raise RuntimeError("registry_job failed")
        _dagster_partition(defs, instance)
        for _ in range(repeat):
            started = time.perf_counter()
            plain_partition(settings, url)
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            _dagster_partition(defs, instance)
            in_process.append(time.perf_counter() - started)
        for _ in range(repeat):
            fresh_plain.append(_child("plain", home, pg_url or url))
            fresh_dagster.append(_child("dagster", home, pg_url or url))
    median = statistics.median
    return {
        "rows": rows,
        "repeat": repeat,
        "plain_seconds": median(plain),
        "dagster_in_process_seconds": median(in_process),
        "overhead_in_process_seconds": median(in_process) - median(plain),
        "fresh_plain_seconds": median(fresh_plain),
        "fresh_dagster_seconds": median(fresh_dagster),
        "overhead_launched_seconds": median(fresh_dagster) - median(fresh_plain),
        "samples": {
            "plain": plain,
            "dagster_in_process": in_process,
            "fresh_plain": fresh_plain,
            "fresh_dagster": fresh_dagster,
        },
    }


def to_markdown(results: dict[str, Any]) -> str:
    rows = [
        ("one partition, plain script (in a warm process)", "plain_seconds", ""),
        ("same, Dagster run in process (`materialize`)", "dagster_in_process_seconds", ""),
        ("overhead in process", "overhead_in_process_seconds", "< 3 s"),
        ("plain script in a fresh process", "fresh_plain_seconds", ""),
        ("Dagster run in a fresh process (as launched)", "fresh_dagster_seconds", ""),
        ("overhead of a launched run", "overhead_launched_seconds", "< 3 s"),
    ]
    lines = ["| figure | seconds | target |", "|---|---:|---|"]
    lines += [f"| {label} | {results[key]:.3f} | {target} |" for label, key, target in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.overhead.run", description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pg-url", default=None)
    parser.add_argument("--home", type=Path, default=None, help="working directory (default: a temporary one)")
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    parser.add_argument("--child", choices=["plain", "dagster"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        run_child(args.child, args.home, args.pg_url)
        return {}
    with tempfile.TemporaryDirectory(prefix="resight-overhead-") as tmp:
        home = args.home or Path(tmp)
        results = run_benchmark(args.repeat, args.pg_url, home)
        if not args.pg_url:
            from resight_platform.io.postgres import stop_embedded_pg

            stop_embedded_pg(home / "pg")
    results["command"] = "python -m bench.overhead.run " + " ".join(argv if argv is not None else sys.argv[1:])
    results["date"] = date.today().isoformat()
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
