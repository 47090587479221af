"""Retention on the real Postgres, on a local lake and on the S3 endpoint: the dry run lists what the
run deletes, partitions still needed are kept, every deletion is in ``ops.retention_log``, and a
late file for a retired partition is dead-lettered instead of loaded.

One database for the module (migrated once), emptied between tests; the ledger is built with the
project's own ``ops`` helpers, the lake with its writer: no pipeline runs."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import psycopg
import pytest

from resight_platform.defs.ops import scan_landing_job
from resight_platform.io.lake import write_partition
from resight_platform.io.ops import FileRecord, QueuedFile, migrate, queue_files, record_files
from resight_platform.io.postgres import connect
from resight_platform.io.storage import LocalStore, ObjectStore, S3Store
from resight_platform.io.watch import PARTITION_RETIRED, WatchCursor, plan_tick, retired_candidates
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource
from resight_platform.retention import (
    Deletion,
    RetentionPlan,
    RetentionStores,
    apply_retention,
    plan_retention,
    retired_partitions,
)
from resight_platform.settings import RetentionSettings, WatchSettings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, load_registry
from resight_platform_tests.databases import temporary_database

Conn = psycopg.Connection[Any]

TODAY = date(2026, 12, 1)
OLD = date(2026, 10, 20)  # past every cutoff of POLICY
RECENT = date(2026, 11, 28)  # within every cutoff
POLICY = RetentionSettings(landing_days=10, bronze_days=10, silver_days=20, quarantine_days=30, dead_letter_days=30)
# Registered providers of the packaged registry (the late-file guard checks keys against it).
ACME, BETA, GAMMA, DELTA = "banfield_like", "barkbox_market", "bone_appetit", "chewyish"
NOW = datetime(2026, 12, 1, 3, 43, tzinfo=UTC)


@pytest.fixture(scope="module")
def warehouse(pg_server_url: str) -> Iterator[str]:
    for url in temporary_database(pg_server_url, "retention"):
        with connect(url) as conn:
            migrate(conn)
        yield url


@pytest.fixture
def conn(warehouse: str) -> Iterator[Conn]:
    with connect(warehouse) as conn:
        conn.execute("truncate ops.ingestion_ledger, ops.quarantine, ops.retention_log")
        yield conn


@dataclass
class Lake:
    stores: RetentionStores
    expected: set[str]  # store-qualified keys the run must delete
    kept: set[str]  # store-qualified keys it must keep


def _frame(rows: int = 3) -> pl.DataFrame:
    return pl.DataFrame({"order_id": [f"o{i}" for i in range(rows)], "net_amount": [1.5 * i for i in range(rows)]})


def _age(store: ObjectStore, key: str, seconds_ago: float) -> None:
    """On a local lake, date a file back so writes made in one test have an order (S3 writes are
    made in that order, and its one-second times compare as equal at worst, which the rules accept)."""
    path = store.local_path(key)
    if path is not None:
        moment = time.time() - seconds_ago
        os.utime(path, (moment, moment))


def _lake_file(store: ObjectStore, layer: str, feed: str, day: date, source: str, seconds_ago: float) -> str:
    uri = write_partition(store, [layer, feed], {"date": day.isoformat(), "source": source}, _frame())
    key = f"{layer}/{feed}/date={day.isoformat()}/source={source}/part-0.parquet"
    assert uri.endswith(key)
    _age(store, key, seconds_ago)
    return key


def _land(store: ObjectStore, provider: str, day: date, name: str, body: bytes = b"order_id\n1\n") -> str:
    key = f"{provider}/sales/{day.isoformat()}/{name}"
    store.write_bytes(key, body)
    return key


def _etag(store: ObjectStore, key: str) -> str:
    return next(info.etag for info in store.list(key) if info.key == key)


def _record(conn: Conn, store: ObjectStore, key: str, status: str, *, etag: str | None = None, **more: Any) -> None:
    provider, feed, day, _ = key.split("/")
    record = FileRecord(
        key,
        "sha",
        10,
        provider,
        feed,
        date.fromisoformat(day),
        status,
        etag=etag or _etag(store, key),
        rows_loaded=more.get("rows_loaded", 3),
        dead_letter_uri=more.get("dead_letter_uri"),
        error_code="bad" if status == "dead_lettered" else None,
    )
    record_files(conn, [record], run_id="r", now=NOW)


def build(conn: Conn, stores: RetentionStores) -> Lake:
    landing, lake, dead = stores.landing, stores.lake, stores.dead_letters
    expected: set[str] = set()
    kept: set[str] = set()
    # Landing: a loaded partition goes whole; one with a queued file, one whose file changed since the
    # ledger saw it and one the ledger never saw are kept; a dead letter with its copy goes.
    for name in ("a.csv", "b.csv"):
        key = _land(landing, ACME, OLD, name)
        _record(conn, landing, key, "loaded")
        expected.add(f"landing:{key}")
    loaded = _land(landing, BETA, OLD, "a.csv")
    _record(conn, landing, loaded, "loaded")
    queued = _land(landing, BETA, OLD, "b.csv")
    queue_files(conn, [QueuedFile(queued, _etag(landing, queued), 10, BETA, "sales", OLD, "load-1")], now=NOW)
    changed = _land(landing, GAMMA, OLD, "a.csv")
    _record(conn, landing, changed, "loaded", etag="an-older-etag")
    unseen = _land(landing, GAMMA, OLD, "late.csv")
    kept |= {f"landing:{k}" for k in (loaded, queued, changed, unseen)}
    dead_key = _land(landing, DELTA, OLD, "x.csv")
    _record(conn, landing, dead_key, "dead_lettered", dead_letter_uri="s3://dl/x.csv", rows_loaded=None)
    expected.add(f"landing:{dead_key}")
    recent = _land(landing, ACME, RECENT, "a.csv")
    _record(conn, landing, recent, "loaded")
    kept.add(f"landing:{recent}")
    # Lake: bronze goes once silver of its partition exists (written after it); silver of sales goes
    # once gold's facts of it exist; a bronze partition without silver, and silver of a dimension
    # feed, are kept.
    expected.add("lake:" + _lake_file(lake, "bronze", "sales", OLD, ACME, 300))
    expected.add("lake:" + _lake_file(lake, "silver", "sales", OLD, ACME, 200))
    kept.add("lake:" + _lake_file(lake, "gold", "fact_sales", OLD, ACME, 100))
    kept.add("lake:" + _lake_file(lake, "bronze", "sales", OLD, GAMMA, 300))  # no silver
    kept.add("lake:" + _lake_file(lake, "silver", "catalog", OLD, ACME, 200))
    kept.add("lake:" + _lake_file(lake, "bronze", "sales", RECENT, ACME, 300))
    expected.add("lake:" + _lake_file(lake, "quarantine", "sales", OLD, ACME, 200))
    # Dead letters by the day they were dead-lettered.
    for key in ("2026-10-01/abc/x.csv", "2026-10-01/abc/x.csv.reason.json"):
        dead.write_bytes(key, b"{}")
        expected.add(f"dead_letter:{key}")
    dead.write_bytes("2026-11-30/def/y.csv", b"y")
    kept.add("dead_letter:2026-11-30/def/y.csv")
    conn.execute(
        "insert into ops.quarantine (feed, provider, business_date, source_file, row_number, rule, raw)"
        " values ('sales', %s, %s, 'k', 1, 'r', '{}'), ('sales', %s, %s, 'k', 2, 'r', '{}'),"
        " ('sales', %s, %s, 'k', 1, 'r', '{}')",
        (ACME, OLD, ACME, OLD, ACME, RECENT),
    )
    return Lake(stores, expected, kept)


def _present(stores: RetentionStores) -> set[str]:
    out = set()
    for name, store in (("landing", stores.landing), ("lake", stores.lake), ("dead_letter", stores.dead_letters)):
        for info in store.list(""):
            if name == "lake" and info.key.startswith("dead_letter/"):
                continue  # the dead-letter area lives under the lake root; listed as its own store
            out.add(f"{name}:{info.key}")
    return out


def _local_stores(tmp_path: Path) -> RetentionStores:
    return RetentionStores(
        LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "lake"), LocalStore(tmp_path / "lake" / "dead_letter")
    )


def _s3_stores(url: str, endpoint: str) -> RetentionStores:
    return RetentionStores(
        S3Store.from_url(url + "/landing", endpoint_url=endpoint),
        S3Store.from_url(url + "/lake", endpoint_url=endpoint),
        S3Store.from_url(url + "/lake/dead_letter", endpoint_url=endpoint),
    )


@pytest.fixture(params=["local", "s3"])
def stores(request: pytest.FixtureRequest, tmp_path: Path) -> RetentionStores:
    if request.param == "local":
        return _local_stores(tmp_path)
    endpoint = request.getfixturevalue("s3_endpoint")
    return _s3_stores(request.getfixturevalue("s3_bucket_url"), endpoint)


def test_the_dry_run_lists_exactly_what_the_run_deletes_and_the_log_records_it(
    conn: Conn, stores: RetentionStores
) -> None:
    lake = build(conn, stores)
    before = _present(stores)
    assert lake.expected | lake.kept <= before

    dry = plan_retention(conn, stores, POLICY, TODAY)
    planned = {f"{d.store}:{d.key}" for d in dry.deletions if d.store != "warehouse"}
    assert planned == lake.expected
    assert _present(stores) == before  # the dry run deleted nothing
    assert dry.kept[("landing", "a file of its partition is queued or read")] == 2
    assert dry.kept[("landing", "changed since the ledger saw it (ETag)")] == 1
    assert dry.kept[("landing", "not in the ledger")] == 1
    assert dry.kept[("bronze", "silver of the partition is missing or older")] == 1
    assert dry.kept[("silver", "gold dimensions are rebuilt from every silver partition")] == 1
    assert dry.by_layer()["quarantine"]["rows"] == 2

    report = apply_retention(conn, stores, plan_retention(conn, stores, POLICY, TODAY), run_id="ret-1", now=NOW)
    deleted = {f"{d.store}:{d.key}" for d in report.deleted if d.store != "warehouse"}
    assert deleted == planned
    assert _present(stores) == before - planned
    assert lake.kept <= _present(stores)
    left = conn.execute("select business_date from ops.quarantine").fetchall()
    assert left == [(RECENT,)]

    logged = conn.execute("select layer, key, store_url, bytes, run_id from ops.retention_log").fetchall()
    assert len(logged) == len(report.deleted)
    assert {(layer, key) for layer, key, *_ in logged} == {(d.layer, d.key) for d in report.deleted}
    assert all(run == "ret-1" for *_, run in logged)
    by_key = {key: size for _, key, _, size, _ in logged}
    assert all(by_key[d.key] == d.bytes for d in report.deleted if d.store != "warehouse")

    again = plan_retention(conn, stores, POLICY, TODAY)
    assert again.deletions == []  # nothing left to retire: a second run deletes nothing


def test_zero_days_keeps_a_layer_and_gold_is_never_retired() -> None:
    keep_all = RetentionSettings(landing_days=0, bronze_days=0, silver_days=0, quarantine_days=0, dead_letter_days=0)
    assert all(days == 0 for days in (keep_all.landing_days, keep_all.silver_days))
    with pytest.raises(ValueError, match="gold and the marts are kept"):
        RetentionSettings.from_env({"RESIGHT_RETAIN_GOLD_DAYS": "30"})
    policy = RetentionSettings.from_env({"RESIGHT_RETAIN_LANDING_DAYS": "7", "RESIGHT_RETENTION_SCHEDULE": "0 4 * * *"})
    assert (policy.landing_days, policy.bronze_days, policy.silver_days, policy.schedule) == (7, 90, 365, "0 4 * * *")


def test_nothing_is_planned_when_every_layer_is_kept(conn: Conn, tmp_path: Path) -> None:
    stores = _local_stores(tmp_path)
    build(conn, stores)
    keep_all = RetentionSettings(landing_days=0, bronze_days=0, silver_days=0, quarantine_days=0, dead_letter_days=0)
    plan = plan_retention(conn, stores, keep_all, TODAY)
    assert plan.deletions == [] and plan.listed == 0


def test_a_late_file_for_a_retired_partition_is_dead_lettered_not_loaded(
    conn: Conn, warehouse: str, tmp_path: Path
) -> None:
    stores = _local_stores(tmp_path)
    build(conn, stores)
    apply_retention(conn, stores, plan_retention(conn, stores, POLICY, TODAY), run_id="ret-2", now=NOW)
    registry = load_registry(DEFAULT_REGISTRY_DIR)
    late = _land(stores.landing, ACME, OLD, "c-resent.csv")
    fresh = _land(stores.landing, ACME, RECENT, "b.csv")  # a partition never retired loads as usual
    listed = {info.key: info for info in stores.landing.list(f"{ACME}/")}
    ledger: dict[str, Any] = {}
    retired = retired_partitions(conn, retired_candidates({k: listed[k] for k in (late, fresh)}, ledger))
    assert set(retired) == {(ACME, "sales", OLD)}

    plan = plan_tick(
        store=stores.landing,
        registry=registry,
        listed={k: listed[k] for k in (late, fresh)},
        ledger=ledger,
        launched_run_keys=set(),
        cursor=WatchCursor(),
        source_order=[ACME],
        source_of={ACME: ACME},
        first_day=date(2026, 1, 1),
        today=TODAY,
        now=NOW,
        settings=WatchSettings(),
        retired=retired,
    )
    assert [f[0].key for b in plan.batches for f in b.files] == [fresh]
    refused = [r for chunk in plan.refused for r in chunk]
    assert [(r.info.key, r.code) for r in refused] == [(late, PARTITION_RETIRED)]
    assert "retired on 2026-12-01" in refused[0].detail and "restate from the archive" in refused[0].detail

    # The dead-letter run the sensor requests for it keeps it refused (it does not hand it back).
    result = scan_landing_job.execute_in_process(
        run_config={"ops": {"scan_landing_op": {"config": {"keys": [late], "partitions_start": "2026-01-01"}}}},
        resources={
            "landing": StoreResource(url=stores.landing.url),
            "dead_letter": StoreResource(url=stores.dead_letters.url),
            "registry": RegistryResource(),
            "warehouse": WarehouseResource(pg_url=warehouse),
        },
    )
    assert result.success
    row = conn.execute(
        "select status, error_code, error, dead_letter_uri from ops.ingestion_ledger where file_key = %s", (late,)
    ).fetchone()
    assert row is not None
    status, code, error, uri = row
    assert (status, code) == ("dead_lettered", PARTITION_RETIRED)
    assert "restate from the archive" in error
    assert uri and Path(uri).read_bytes() == stores.landing.read_bytes(late)


def test_the_cli_prints_the_plan_and_then_deletes_it(
    conn: Conn, warehouse: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from resight_platform.cli import main

    stores = _local_stores(tmp_path)
    build(conn, stores)
    env = {
        "RESIGHT_HOME": str(tmp_path / "home"),
        "RESIGHT_PG_URL": warehouse,
        "RESIGHT_LANDING_URL": stores.landing.url,
        "RESIGHT_LAKE_URL": stores.lake.url,
        **{f"RESIGHT_RETAIN_{layer}_DAYS": str(days) for layer, days in (("LANDING", 10), ("BRONZE", 10))},
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    policy = RetentionSettings(landing_days=10, bronze_days=10)
    expected = plan_retention(conn, stores, policy, datetime.now(UTC).date())  # the CLI plans as of today
    assert {d.layer for d in expected.deletions} == {"landing", "bronze"}

    assert main(["retention", "--dry-run", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["dry_run"] is True
    assert [d["key"] for d in printed["deletions"]] == [d.key for d in expected.deletions]
    assert all(stores.of(d.store).exists(d.key) for d in expected.deletions if d.store != "warehouse")

    assert main(["retention"]) == 0
    table = capsys.readouterr().out
    assert "objects deleted" in table and "LIST request" in table
    assert not any(stores.of(d.store).exists(d.key) for d in expected.deletions if d.store != "warehouse")
    logged = conn.execute("select count(*) from ops.retention_log").fetchone()
    assert logged == (len(expected.deletions),)


def test_a_deletion_that_fails_takes_back_its_log_row_and_keeps_the_others(conn: Conn, tmp_path: Path) -> None:
    stores = _local_stores(tmp_path)
    stores.dead_letters.write_bytes("2026-10-01/a/x.csv", b"x")
    good = Deletion("dead_letter", "dead_letter", "2026-10-01/a/x.csv", "2026-10-01", date(2026, 10, 1), 1, "over")
    bad = Deletion("dead_letter", "dead_letter", "2026-10-01/../../escape", "2026-10-01", date(2026, 10, 1), 1, "over")
    plan = RetentionPlan(TODAY, {}, deletions=[good, bad])
    with pytest.raises(ValueError, match="segment"):
        apply_retention(conn, stores, plan, run_id="ret-3", now=NOW)
    assert not stores.dead_letters.exists(good.key)
    logged = conn.execute("select key from ops.retention_log where run_id = 'ret-3'").fetchall()
    assert logged == [(good.key,)]
