"""Silver in real range runs: consecutive small partitions are cleaned together, and every partition
comes out exactly as if it had been cleaned alone (its silver file, quarantine file, ``ops`` rows,
ledger counts and the run's metadata), compared against ``clean_feed`` on each partition's bronze."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

import resight_platform.defs.silver as silver_defs
from resight_platform.defs.checks import MODEL_CHECK
from resight_platform.defs.jobs import MEDALLION_JOB
from resight_platform.defs.metadata import RANGE_END, RANGE_START
from resight_platform.io.lake import read_table
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.resources import load_registry_at
from resight_platform.settings import Settings
from resight_platform.transforms.silver import clean_feed, reconcile
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon

D1, D2 = DAY - timedelta(days=1), DAY
PROVIDERS = ["barkbox_market", "pawmart", "petopia"]  # the run's source span, in this order
HEADER = "order_id,line_no,ordered_at,store_id,channel,sku,quantity,unit_price,discount,customer_id,status,ship_state\n"


def _line(order: str, day: date, hour: int, *, quantity: int = 1, status: str = "completed") -> str:
    return f"{order},1,{day}T{hour:02}:00:00,S1,store,K1,{quantity},10.00,0,C1,{status},\n"


def _petopia(*lines: str) -> bytes:
    return ("TransID;Line;SaleDateTime;ItemSKU;Qty;Price;Status\n" + "".join(lines)).encode("latin-1")


#: Landing key -> bytes. P1 line 1 is in three partitions (two days of pawmart, one of barkbox) and
#: loads in each; pawmart's first day holds it twice (a duplicate) and P3 in two of its files.
LANDED: dict[str, bytes] = {
    f"pawmart/sales/{D1}/a.csv": (
        HEADER
        + _line("P1", D1, 10)
        + _line("P1", D1, 11)  # same key, same partition: duplicate
        + _line("P2", D1, 12, quantity=0)  # bad_quantity
        + _line("P3", D1, 13)
    ).encode(),
    f"pawmart/sales/{D1}/b.csv": (HEADER + _line("P3", D1, 14)).encode(),  # duplicate of a.csv's P3
    f"pawmart/sales/{D2}/a.csv": (HEADER + _line("P1", D2, 9)).encode(),  # another date: loads
    f"barkbox_market/sales/{D1}/a.csv": (
        HEADER + _line("P1", D1, 10) + _line("P4", D1, 10, status="lost")  # another provider: loads
    ).encode(),
    f"petopia/sales/{D1}/pos.csv": _petopia(
        f"P1;1;{D1:%m/%d/%Y} 10:00;K1;1;$10.00;completed\n", f"P5;1;{D1:%m/%d/%Y} 11:00;K2;2;$1,299.00;completed\n"
    ),
    f"petopia/sales/{D2}/pos.csv": _petopia(f"P6;1;{D2:%m/%d/%Y} 10:00;K1;3;$4.50;completed\n"),
}
EMPTY = [f"{D2}|barkbox_market"]  # a partition of the rectangle without files


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str) -> Iterator[Daemon]:
    for d in _daemon(tmp_path, fresh_pg_url, str(tmp_path / "landing")):
        d.instance.add_dynamic_partitions("source", PROVIDERS)
        for key, data in LANDED.items():
            d.landing.write_bytes(key, data)
        yield d


def _lake(tmp_path: Path) -> Any:
    return open_store(Settings.from_env({"RESIGHT_HOME": str(tmp_path / "home")}).lake_url)


def _run(daemon: Daemon) -> dg.ExecuteInProcessResult:
    job = daemon.defs.resolve_job_def(MEDALLION_JOB)
    return job.execute_in_process(
        instance=daemon.instance,
        tags={RANGE_START: f"{D1}|{PROVIDERS[0]}", RANGE_END: f"{D2}|{PROVIDERS[-1]}"},
        asset_selection=[dg.AssetKey(["bronze", "sales"]), dg.AssetKey(["silver", "sales"])],
    )


def _partition(key: str) -> dict[str, str]:
    day, source = key.split("|")
    return {"date": day, "source": source}


def _rows(daemon: Daemon, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(daemon.pg_url) as conn:
        return conn.execute(query, params).fetchall()


@pytest.mark.parametrize(
    ("chunk_rows", "batch_rows"),
    [
        pytest.param(None, None, id="one-batch"),
        # pawmart's first day (5 rows) is cleaned alone in chunks of 4 (its second P3 is a
        # duplicate across chunks); the others in batches of at most 3 rows.
        pytest.param(4, 3, id="small-budgets"),
    ],
)
def test_partitions_cleaned_together_equal_each_partition_cleaned_alone(
    daemon: Daemon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk_rows: int | None, batch_rows: int | None
) -> None:
    if chunk_rows is not None:
        monkeypatch.setattr(silver_defs, "CHUNK_ROWS", chunk_rows)
    if batch_rows is not None:
        monkeypatch.setattr(silver_defs, "BATCH_ROWS", batch_rows)
    calls: list[int] = []
    real = silver_defs.clean_feed

    def counted(feed: str, bronze: pl.DataFrame, **kwargs: Any) -> Any:
        calls.append(bronze.height)
        return real(feed, bronze, **kwargs)

    monkeypatch.setattr(silver_defs, "clean_feed", counted)
    result = _run(daemon)
    assert result.success

    if chunk_rows is None:  # every row of the run in one call, and the empty partition's plan once
        assert sorted(calls) == [0, sum(data.count(b"\n") - 1 for data in LANDED.values())]
    else:
        # In key order (date, then source): barkbox D1 (2 rows; pawmart D1 is too big to join), pawmart
        # D1 in chunks of 4 + 1, petopia D1 + pawmart D2 together (3 rows, barkbox's empty D2 between
        # them; the empty partition's plan is made once, as that batch hands out its partitions),
        # then petopia D2 (a fourth row would pass the budget).
        assert calls == [2, 4, 1, 3, 0, 1]

    lake = _lake(tmp_path)
    registry = load_registry_at(None)
    keys = [f"{day}|{provider}" for day in (D1, D2) for provider in PROVIDERS]
    rows_in = loaded = quarantined = 0
    own: dict[str, tuple[int, int, int]] = {}
    by_partition: dict[str, dict[str, int]] = {}
    ledger = {
        r[0]: r[1:]
        for r in _rows(daemon, "select file_key, rows_in, rows_loaded, rows_quarantined from ops.ingestion_ledger")
    }
    for key in keys:
        bronze = read_table(lake, ["bronze", "sales"], [_partition(key)]).collect()
        if key in EMPTY:
            assert bronze.is_empty()
            assert read_table(lake, ["silver", "sales"], [_partition(key)]).collect().is_empty()
            own[key] = (0, 0, 0)
            continue
        alone = clean_feed("sales", bronze, registry=registry, mappings=registry.mappings, now=datetime.now(UTC))
        silver = read_table(lake, ["silver", "sales"], [_partition(key)]).collect()
        assert_frame_equal(silver, alone.valid)  # the same rows, columns, types and order
        quarantine = read_table(lake, ["quarantine", "sales"], [_partition(key)]).collect()
        if alone.quarantine.height:
            assert_frame_equal(quarantine, alone.quarantine)
        else:  # an empty partition has no file
            assert quarantine.is_empty() and not quarantine.columns
        day, provider = key.split("|")
        stored = _rows(
            daemon,
            "select source_file, row_number, rule, raw from ops.quarantine"
            " where feed = 'sales' and provider = %s and business_date = %s order by source_file, row_number",
            (provider, date.fromisoformat(day)),
        )
        expected = alone.quarantine.select("_source_file", "_row_number", "rule", "raw").iter_rows()
        assert stored == [(file, row, rule, json.loads(raw)) for file, row, rule, raw in expected]
        for file, *counts in reconcile(bronze, alone).iter_rows():
            assert ledger[file] == tuple(counts)
        rows_in += bronze.height
        loaded += alone.valid.height
        quarantined += alone.quarantine.height
        own[key] = (bronze.height, alone.valid.height, alone.quarantine.height)
        if alone.quarantine.height:
            by_partition[key] = dict(alone.quarantine.group_by("rule").len().sort("rule").iter_rows())

    # Worked out by hand from LANDED: P1 loads in each of its four partitions, once in pawmart's D1.
    assert by_partition == {
        f"{D1}|pawmart": {"bad_quantity": 1, "duplicate": 2},
        f"{D1}|barkbox_market": {"unknown_status": 1},
    }
    p1 = read_table(lake, ["silver", "sales"], [_partition(k) for k in keys]).filter(pl.col("order_id") == "P1")
    assert sorted(p1.select("provider", "business_date").collect().iter_rows()) == [
        ("barkbox_market", D1),
        ("pawmart", D1),
        ("pawmart", D2),
        ("petopia", D1),
    ]

    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(["silver", "sales"])]
    assert sorted(str(e.partition) for e in events) == sorted(keys)
    # Each partition's materialisation carries its own counts (io/lake.add_partition_metadata); the
    # run's table of every partition's quarantine is there too (a run of a few partitions).
    for event in events:
        metadata, key = event.materialization.metadata, str(event.partition)
        figures = (metadata["rows_in"].value, metadata["dagster/row_count"].value, metadata["rows_quarantined"].value)
        assert figures == own[key], key
        assert metadata["quarantined_by_rule"].value == by_partition.get(key, {})
        assert metadata["quarantined_by_partition"].value == by_partition
    assert sum(n for n, _, _ in own.values()) == rows_in and sum(q for _, _, q in own.values()) == quarantined
    (check,) = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.asset_check_evaluation_data.check_name == MODEL_CHECK
        and e.asset_check_evaluation_data.asset_key == dg.AssetKey(["silver", "sales"])
    ]
    assert check.passed and check.metadata["rows_checked"].value == loaded
    assert check.metadata["partitions_checked"].value == len(keys)


def test_a_failed_check_names_its_partition_in_a_range_run(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    real = silver_defs.clean_feed

    def buggy(*args: Any, **kwargs: Any) -> Any:  # a transform bug lets petopia's P6 through with no quantity
        result = real(*args, **kwargs)
        bad = pl.col("order_id") == "P6"
        valid = result.valid.with_columns(quantity=pl.when(bad).then(0).otherwise(pl.col("quantity")).cast(pl.Int32))
        return dataclasses.replace(result, valid=valid)

    monkeypatch.setattr(silver_defs, "clean_feed", buggy)
    result = daemon.defs.resolve_job_def(MEDALLION_JOB).execute_in_process(
        instance=daemon.instance,
        tags={RANGE_START: f"{D1}|{PROVIDERS[0]}", RANGE_END: f"{D2}|{PROVIDERS[-1]}"},
        asset_selection=[dg.AssetKey(["bronze", "sales"]), dg.AssetKey(["silver", "sales"])],
        raise_on_error=False,
    )
    assert not result.success  # the blocking check failed
    (check,) = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.asset_check_evaluation_data.check_name == MODEL_CHECK
        and e.asset_check_evaluation_data.asset_key == dg.AssetKey(["silver", "sales"])
    ]
    assert check.metadata["failing_partitions"].value == {f"{D2}|petopia": 1}
    assert check.metadata["failing_partition_count"].value == 1
    assert str(check.description).endswith(f"in 1 partition: {D2}|petopia")
    # Every partition of the range has its own verdict, not the run's (which Dagster copies onto each).
    verdicts = {
        str(e.partition): e.materialization.metadata["checks_failed"].value
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["silver", "sales"])
    }
    keys = [f"{day}|{provider}" for day in (D1, D2) for provider in PROVIDERS]
    assert verdicts == {
        key: (
            "matches_model: 1 row (net_amount_is_quantity_times_price_less_discount, quantity.greater_than(0))"
            if key == f"{D2}|petopia"
            else "none"
        )
        for key in keys
    }
