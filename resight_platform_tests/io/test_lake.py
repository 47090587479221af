"""LakeIOManager through real Dagster runs, on a local directory and on the moto S3 endpoint."""

import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pyarrow.parquet as pq
import pytest
from polars.testing import assert_frame_equal

from resight_platform.io.lake import (
    RESTART,
    LakeIOManager,
    PartitionFileWriter,
    PartitionStream,
    RestartPartition,
    iter_chunks,
    partition_path,
    partition_values,
    read_all,
    read_table,
    write_partition,
)
from resight_platform.io.storage import LocalStore, ObjectStore, open_store

SOURCE = dg.DynamicPartitionsDefinition(name="test_source")
DAILY = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-06")
MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2026-01-01", end_date="2026-12-01")
DATE_SOURCE = dg.MultiPartitionsDefinition({"source": SOURCE, "date": DAILY})
SOURCES = ["pawmart", "chewy", "petco"]  # insertion order = dynamic partition order


# --- pure path logic ----------------------------------------------------------------------------


def test_partition_path_layout() -> None:
    assert partition_path(["silver", "stores"], None) == "silver/stores/data.parquet"
    assert partition_path(["bronze", "raw", "sales"], {"date": "2026-10-01"}) == (
        "bronze/raw/sales/date=2026-10-01/part-0.parquet"
    )
    assert partition_path(["bronze", "sales"], {"date": "2026-10-01", "source": "pawmart"}) == (
        "bronze/sales/date=2026-10-01/source=pawmart/part-0.parquet"
    )


@pytest.mark.parametrize(
    ("key", "partition"),
    [
        (["bronze", ".."], None),
        (["bronze/x", "sales"], None),
        ([], None),
        (["bronze", "sales"], {"date": "../../etc"}),
        (["bronze", "sales"], {"source": "a/b"}),
        (["bronze", "sales"], {"source": "a=b"}),
        (["bronze", "sales"], {"": "x"}),
        (["bronze", "sales"], {}),
    ],
)
def test_partition_path_refuses_unsafe_segments(key: list[str], partition: dict[str, str] | None) -> None:
    with pytest.raises(ValueError):
        partition_path(key, partition)


def test_partition_values_per_definition() -> None:
    assert partition_values("2026-10-01", None) is None
    assert partition_values("2026-10-01", DAILY) == {"date": "2026-10-01"}
    assert partition_values("2026-10-01", MONTHLY) == {"month": "2026-10-01"}
    assert partition_values("x", dg.StaticPartitionsDefinition(["x"])) == {"partition": "x"}
    assert partition_values("pawmart", SOURCE) == {"partition": "pawmart"}
    weekly = dg.WeeklyPartitionsDefinition(start_date="2026-01-04")
    assert partition_values("2026-10-04", weekly) == {"partition": "2026-10-04"}
    # Dimension order is the definition's (Dagster sorts by name), for str and MultiPartitionKey.
    expected = {"date": "2026-10-01", "source": "pawmart"}
    values = partition_values("2026-10-01|pawmart", DATE_SOURCE)
    assert values == expected and list(values) == ["date", "source"]
    key = dg.MultiPartitionKey({"source": "pawmart", "date": "2026-10-01"})
    assert partition_values(key, DATE_SOURCE) == expected


# --- assets used by the runs --------------------------------------------------------------------


def _sales_frame(day: str, source: str, rows: int = 2, version: int = 1) -> pl.DataFrame:
    d = date.fromisoformat(day)
    return pl.DataFrame(
        {
            "order_id": [f"{source}-{day}-{i}" for i in range(rows)],
            "provider": [source] * rows,
            "ordered_at": [datetime(d.year, d.month, d.day, 12, i, tzinfo=UTC) for i in range(rows)],
            "sale_date": [d] * rows,
            "quantity": [version * (i + 1) for i in range(rows)],
            "unit_price": pl.Series([Decimal("12.99")] * rows, dtype=pl.Decimal(10, 2)),
            "discount": [0.5 if i % 2 else None for i in range(rows)],
            "store_id": [None if i % 2 else "s1" for i in range(rows)],
            "online": [bool(i % 2) for i in range(rows)],
        },
        schema_overrides={"quantity": pl.Int32},
    )


@dg.asset(key=["bronze", "sales"], partitions_def=DATE_SOURCE)
def bronze_sales(context: dg.AssetExecutionContext) -> Any:
    """One frame for a one-partition run, a mapping by partition key for a range run.

    (Dagster cannot build a type from a ``DataFrame | Mapping`` union, hence ``Any``.)
    """
    version = int(context.run.tags.get("version", "1"))
    frames = {
        key: _sales_frame(key.keys_by_dimension["date"], key.keys_by_dimension["source"], 2, version)
        for key in context.partition_keys
        if isinstance(key, dg.MultiPartitionKey)
    }
    if context.run.tags.get("drop"):
        frames.pop(context.run.tags["drop"], None)  # type: ignore[call-overload]
    if len(frames) == 1 and not context.run.tags.get("as_mapping"):
        return next(iter(frames.values()))
    return frames


@dg.asset(
    key=["silver", "sales"],
    partitions_def=DAILY,
    ins={
        "bronze": dg.AssetIn(
            key=["bronze", "sales"],
            partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name="date"),
        )
    },
)
def silver_sales(bronze: pl.LazyFrame) -> pl.DataFrame:
    if not bronze.collect_schema().names():  # nothing upstream yet
        return pl.DataFrame()
    return bronze.sort("order_id").collect()


@dg.asset(key=["silver", "stores"])
def silver_stores() -> pl.DataFrame:
    return pl.DataFrame({"store_id": ["s1", "s2"], "state": ["CA", None]})


@dg.asset(key=["gold", "store_count"], ins={"stores": dg.AssetIn(key=["silver", "stores"])})
def store_count(stores: pl.DataFrame) -> pl.DataFrame:
    return pl.DataFrame({"stores": [stores.height]})


@dg.asset(key=["ops", "side_effect"])
def writes_elsewhere() -> None:
    return None


@dg.asset(key=["marts", "monthly"], partitions_def=MONTHLY)
def monthly(context: dg.AssetExecutionContext) -> pl.DataFrame:
    return pl.DataFrame({"month": [context.partition_key]})


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def lake(request: pytest.FixtureRequest, tmp_path: Path) -> LakeIOManager:
    if request.param == "local":
        return LakeIOManager(lake_url=str(tmp_path / "lake"))
    return LakeIOManager(
        lake_url=request.getfixturevalue("s3_bucket_url"),
        endpoint_url=request.getfixturevalue("s3_endpoint"),
    )


@pytest.fixture
def instance() -> dg.DagsterInstance:
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("test_source", SOURCES)
    return instance


def _keys(store: ObjectStore) -> list[str]:
    return [info.key for info in store.list()]


def _run(
    assets: list[dg.AssetsDefinition],
    lake: LakeIOManager,
    instance: dg.DagsterInstance,
    **kwargs: object,
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        instance=instance,
        resources={"io_manager": lake},
        **kwargs,  # type: ignore[arg-type]
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """Every failed step's error with its causes, as text."""
    errors = [event.step_failure_data.error for event in result.get_step_failure_events()]
    return "\n".join(error.to_string() for error in errors if error is not None)


# --- runs ---------------------------------------------------------------------------------------


def test_multi_partition_layout_round_trip_and_rerun(lake: LakeIOManager, instance: dg.DagsterInstance) -> None:
    store = lake.store()
    result = _run([bronze_sales], lake, instance, partition_key="2026-10-01|pawmart")
    assert result.success
    assert _keys(store) == ["bronze/sales/date=2026-10-01/source=pawmart/part-0.parquet"]

    (materialization,) = result.asset_materializations_for_node("bronze__sales")
    assert materialization.metadata["dagster/row_count"] == dg.MetadataValue.int(2)
    assert materialization.metadata["partitions_written"] == dg.MetadataValue.int(1)
    assert materialization.metadata["path"] == dg.MetadataValue.path(
        store.uri("bronze/sales/date=2026-10-01/source=pawmart/part-0.parquet")
    )

    expected = _sales_frame("2026-10-01", "pawmart")
    partition = {"date": "2026-10-01", "source": "pawmart"}
    read = read_table(store, ["bronze", "sales"], [partition]).collect()
    assert_frame_equal(read, expected)  # values and dtypes (tz, decimal, int32, nulls)

    # A re-run replaces the partition: new values, no duplicates.
    assert _run([bronze_sales], lake, instance, partition_key="2026-10-01|pawmart", tags={"version": "3"}).success
    read = read_table(store, ["bronze", "sales"], [partition]).collect()
    assert_frame_equal(read, _sales_frame("2026-10-01", "pawmart", version=3))
    assert len(_keys(store)) == 1


def test_range_run_writes_every_partition_of_a_mapping(lake: LakeIOManager, instance: dg.DagsterInstance) -> None:
    # A multi-partition range is the rectangle date range x source range (dynamic order).
    result = _run(
        [bronze_sales],
        lake,
        instance,
        tags={
            "dagster/asset_partition_range_start": "2026-10-01|pawmart",
            "dagster/asset_partition_range_end": "2026-10-02|chewy",
        },
    )
    assert result.success
    assert _keys(lake.store()) == [
        "bronze/sales/date=2026-10-01/source=chewy/part-0.parquet",
        "bronze/sales/date=2026-10-01/source=pawmart/part-0.parquet",
        "bronze/sales/date=2026-10-02/source=chewy/part-0.parquet",
        "bronze/sales/date=2026-10-02/source=pawmart/part-0.parquet",
    ]
    materializations = result.asset_materializations_for_node("bronze__sales")
    assert sorted(str(m.partition) for m in materializations) == [
        "2026-10-01|chewy",
        "2026-10-01|pawmart",
        "2026-10-02|chewy",
        "2026-10-02|pawmart",
    ]
    assert {m.metadata["partitions_written"].value for m in materializations} == {4}
    assert {m.metadata["dagster/row_count"].value for m in materializations} == {8}


def test_mapping_missing_a_partition_fails_naming_it_and_writes_nothing(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    lake = LakeIOManager(lake_url=str(tmp_path / "lake"))
    result = _run(
        [bronze_sales],
        lake,
        instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": "2026-10-01|pawmart",
            "dagster/asset_partition_range_end": "2026-10-01|petco",
            "drop": "2026-10-01|chewy",
        },
    )
    assert not result.success
    assert "no frame for partition(s) ['2026-10-01|chewy']" in _failure(result)
    assert _keys(lake.store()) == []


def test_single_frame_for_several_partitions_is_refused(tmp_path: Path, instance: dg.DagsterInstance) -> None:
    @dg.asset(key=["bronze", "sales"], partitions_def=DATE_SOURCE)
    def one_frame(context: dg.AssetExecutionContext) -> pl.DataFrame:
        return pl.DataFrame({"n": [len(context.partition_keys)]})

    lake = LakeIOManager(lake_url=str(tmp_path / "lake"))
    result = _run(
        [one_frame],
        lake,
        instance,
        raise_on_error=False,
        tags={
            "dagster/asset_partition_range_start": "2026-10-01|pawmart",
            "dagster/asset_partition_range_end": "2026-10-02|pawmart",
        },
    )
    assert not result.success
    assert "run covers 2 partitions but returned a single frame" in _failure(result)
    assert _keys(lake.store()) == []


def test_downstream_daily_loads_all_sources_of_its_date_and_skips_missing(
    lake: LakeIOManager, instance: dg.DagsterInstance
) -> None:
    store = lake.store()
    # No upstream partition at all yet: an empty frame, not an error.
    assert _run(
        [bronze_sales, silver_sales],
        lake,
        instance,
        partition_key="2026-10-01",
        selection=[silver_sales],
    ).success
    assert read_table(store, ["silver", "sales"], [{"date": "2026-10-01"}]).collect().is_empty()

    # pawmart and petco for 2026-10-01, chewy never written; another date must not leak in.
    for key in ("2026-10-01|pawmart", "2026-10-01|petco", "2026-10-02|chewy"):
        assert _run([bronze_sales], lake, instance, partition_key=key).success
    assert _run(
        [bronze_sales, silver_sales],
        lake,
        instance,
        partition_key="2026-10-01",
        selection=[silver_sales],
    ).success

    assert "silver/sales/date=2026-10-01/part-0.parquet" in _keys(store)
    silver = read_table(store, ["silver", "sales"], [{"date": "2026-10-01"}]).collect()
    expected = pl.concat([_sales_frame("2026-10-01", "pawmart"), _sales_frame("2026-10-01", "petco")]).sort("order_id")
    assert_frame_equal(silver, expected)


def test_unpartitioned_round_trip_none_output_and_monthly_layout(
    lake: LakeIOManager, instance: dg.DagsterInstance
) -> None:
    store = lake.store()
    result = _run([silver_stores, store_count, writes_elsewhere], lake, instance)
    assert result.success
    assert result.output_for_node("gold__store_count").to_dicts() == [{"stores": 2}]
    assert _run([monthly], lake, instance, partition_key="2026-10-01").success
    assert _keys(store) == [
        "gold/store_count/data.parquet",
        "marts/monthly/month=2026-10-01/part-0.parquet",
        "silver/stores/data.parquet",
    ]
    stores = read_table(store, ["silver", "stores"]).collect()
    assert_frame_equal(stores, pl.DataFrame({"store_id": ["s1", "s2"], "state": ["CA", None]}))
    assert read_table(store, ["ops", "side_effect"]).collect().is_empty()


def test_read_table_concatenates_relaxed_and_lists_once(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "lake"))
    lake = LakeIOManager(lake_url=store.url)
    first = pl.DataFrame({"a": [1], "b": ["x"]}, schema={"a": pl.Int32, "b": pl.String})
    second = pl.DataFrame({"a": [2.5], "c": [True]})
    for day, frame in (("2026-10-01", first), ("2026-10-02", second)):
        store.write_bytes(
            partition_path(["t", "x"], {"date": day}),
            _parquet(frame),
        )
    partitions = [{"date": d} for d in ("2026-10-01", "2026-10-02", "2026-10-03")]
    read = read_table(store, ["t", "x"], partitions).collect()
    assert read.schema == pl.Schema({"a": pl.Float64, "b": pl.String, "c": pl.Boolean})
    assert read.to_dicts() == [
        {"a": 1.0, "b": "x", "c": None},
        {"a": 2.5, "b": None, "c": True},
    ]
    assert read_table(store, ["t", "x"], []).collect().is_empty()
    assert lake.store().url == store.url


def test_read_all_reads_every_written_partition_in_key_order_by_one_listing(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "lake"))
    cells = [("2026-10-02", "b"), ("2026-10-01", "b"), ("2026-10-01", "a")]
    for i, (day, source) in enumerate(cells):
        write_partition(store, ["silver", "x"], {"date": day, "source": source}, pl.DataFrame({"n": [i]}))
    write_partition(store, ["silver", "x"], {"date": "2026-10-03", "source": "a"}, pl.DataFrame({"n": []}))
    store.write_bytes("silver/x/date=2026-10-04/source=a/.part-0.parquet.abc.resight-tmp", b"half written")
    store.write_bytes("silver/xy/date=2026-10-01/source=a/part-0.parquet", _parquet(pl.DataFrame({"n": [9]})))
    assert read_all(store, ["silver", "x"]).collect()["n"].to_list() == [2, 1, 0]  # date, then source
    assert read_all(store, ["silver", "never_written"]).collect().is_empty()


def test_read_table_scans_each_run_of_one_schema_as_one_multi_file_scan(lake: LakeIOManager) -> None:
    # A scan per file makes Polars open every file at once on its own blocking thread (402 threads
    # to count the demo's 547 fact files; its pool stops at 512). Files of one schema in a row are
    # one scan; a partition written with another schema starts a new one, and order is kept. On S3
    # too: Polars reads the objects itself, when the frame is collected.
    store = lake.store()
    days = [(date(2026, 1, 1) + timedelta(days=i)).isoformat() for i in range(120)]
    wider = set(days[50:60])
    for i, day in enumerate(days):
        frame = pl.DataFrame({"day": [day], "n": [i]})
        if day in wider:
            frame = frame.with_columns(pl.lit("late").alias("extra"))
        store.write_bytes(partition_path(["t", "x"], {"date": day}), _parquet(frame))
    lazy = read_table(store, ["t", "x"], [{"date": day} for day in days])
    plan = lazy.explain(optimized=False)
    assert plan.count("Parquet SCAN") == 3
    if store.url.startswith("s3://"):  # read by Polars from the object, not fetched into memory now
        assert store.uri(partition_path(["t", "x"], {"date": days[0]})) in plan
    read = lazy.collect()
    assert read.get_column("day").to_list() == days
    assert read.get_column("n").to_list() == list(range(120))
    assert read.filter(pl.col("extra").is_not_null()).get_column("day").to_list() == days[50:60]
    assert lazy.select(pl.len()).collect().item() == 120


def _parquet(frame: pl.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


# --- streamed outputs and per-partition inputs --------------------------------------------------


def _stream_asset(plan: list[tuple[str, int]], fail_after: int | None = None) -> dg.AssetsDefinition:
    """A daily asset streaming ``plan``'s chunks (partition key, rows; ``RESTARTS`` rows for a
    restart); raises after ``fail_after`` chunks."""

    @dg.asset(key=["silver", "streamed"], partitions_def=DAILY)
    def streamed() -> dg.Output[PartitionStream]:
        def chunks() -> Iterator[tuple[str, pl.DataFrame | RestartPartition]]:
            for i, (key, rows) in enumerate(plan):
                if fail_after is not None and i == fail_after:
                    raise RuntimeError("producer broke")
                yield key, RESTART if rows == RESTARTS else _sales_frame(key, "pawmart", rows=rows, version=i + 1)

        return dg.Output(PartitionStream(chunks(), lambda: {"chunks_planned": len(plan)}))

    return streamed


RESTARTS = -1

RANGE = {"dagster/asset_partition_range_start": "2026-10-01", "dagster/asset_partition_range_end": "2026-10-02"}


def test_stream_writes_each_partition_from_its_chunks_as_row_groups(
    lake: LakeIOManager, instance: dg.DagsterInstance
) -> None:
    plan = [("2026-10-01", 2), ("2026-10-01", 3), ("2026-10-02", 0)]
    result = _run([_stream_asset(plan)], lake, instance, tags=RANGE)
    assert result.success, _failure(result)
    store = lake.store()
    day1 = pl.read_parquet(store.read_bytes("silver/streamed/date=2026-10-01/part-0.parquet"))
    assert day1.height == 5 and day1["quantity"].to_list() == [1, 2, 2, 4, 6]  # both chunks, in order
    file = pq.ParquetFile(io.BytesIO(store.read_bytes("silver/streamed/date=2026-10-01/part-0.parquet")))
    assert file.num_row_groups == 1  # row groups of CHUNK_ROWS rows, not one per chunk
    # An empty partition has no file (readers take a missing partition as empty)...
    assert not store.exists("silver/streamed/date=2026-10-02/part-0.parquet")
    assert (
        read_table(store, ["silver", "streamed"], [{"date": "2026-10-01"}, {"date": "2026-10-02"}]).collect().height
        == 5
    )
    materializations = result.asset_materializations_for_node("silver__streamed")
    # Each partition its own rows (add_partition_metadata); the stream's summary on every one.
    assert {m.partition: m.metadata["dagster/row_count"].value for m in materializations} == {
        "2026-10-01": 5,
        "2026-10-02": 0,
    }
    assert {m.metadata["chunks_planned"].value for m in materializations} == {3}
    assert not [k for k in _keys(store) if "resight-tmp" in k]
    # ... and a partition that had rows and is rewritten empty loses its file.
    rerun = _run([_stream_asset([("2026-10-01", 0), ("2026-10-02", 0)])], lake, instance, tags=RANGE)
    assert rerun.success, _failure(rerun)
    assert not [k for k in _keys(store) if k.startswith("silver/streamed/")]


def test_partition_writer_cuts_row_groups_of_a_fixed_size_whatever_the_chunks(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    writer = PartitionFileWriter(store, "t/part-0.parquet", row_group_rows=4)
    for version, rows in enumerate([3, 3, 0, 3, 2], start=1):
        writer.append(_sales_frame("2026-10-01", "pawmart", rows=rows, version=version))
    writer.commit()
    path = tmp_path / "lake" / "t" / "part-0.parquet"
    metadata = pq.read_metadata(path)
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [4, 4, 3]
    assert pl.read_parquet(path)["quantity"].to_list() == [1, 2, 3, 2, 4, 6, 4, 8, 12, 5, 10]
    assert writer.rows == 11

    single = PartitionFileWriter(store, "t/part-1.parquet", row_group_rows=4)
    single.append(_sales_frame("2026-10-01", "pawmart", rows=10))
    single.commit()
    metadata = pq.read_metadata(tmp_path / "lake" / "t" / "part-1.parquet")
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [4, 4, 2]


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        ([("2026-10-01", 1), ("2026-10-02", 1), ("2026-10-01", 1)], "are not consecutive"),
        ([("2026-10-01", 1)], "no chunk for partition(s) ['2026-10-02']"),
        ([("2026-10-01", 1), ("2026-10-03", 1)], "outside this run"),
    ],
)
def test_stream_refuses_split_missing_or_foreign_partitions(
    tmp_path: Path, instance: dg.DagsterInstance, plan: list[tuple[str, int]], message: str
) -> None:
    lake = LakeIOManager(lake_url=str(tmp_path / "lake"))
    result = _run([_stream_asset(plan)], lake, instance, tags=RANGE, raise_on_error=False)
    assert not result.success
    assert message in _failure(result)


def test_stream_restart_drops_what_was_written_of_the_partition(
    lake: LakeIOManager, instance: dg.DagsterInstance
) -> None:
    plan = [("2026-10-01", 2), ("2026-10-01", RESTARTS), ("2026-10-01", 3), ("2026-10-02", RESTARTS), ("2026-10-02", 1)]
    result = _run([_stream_asset(plan)], lake, instance, tags=RANGE)
    assert result.success, _failure(result)
    store = lake.store()
    day1 = pl.read_parquet(store.read_bytes("silver/streamed/date=2026-10-01/part-0.parquet"))
    assert day1.height == 3 and day1["quantity"].to_list() == [3, 6, 9]  # only the chunk after the restart
    materializations = result.asset_materializations_for_node("silver__streamed")
    assert {m.partition: m.metadata["dagster/row_count"].value for m in materializations} == {
        "2026-10-01": 3,
        "2026-10-02": 1,
    }
    assert not list(Path(store.uri("silver")).rglob("*.resight-tmp"))

    late = [("2026-10-01", 2), ("2026-10-02", 1), ("2026-10-01", RESTARTS)]
    result = _run([_stream_asset(late)], lake, instance, tags=RANGE, raise_on_error=False)
    assert not result.success and "restart of partition '2026-10-01' after it was committed" in _failure(result)


def test_stream_producer_failure_keeps_the_previous_file_of_the_broken_partition(
    tmp_path: Path, instance: dg.DagsterInstance
) -> None:
    lake = LakeIOManager(lake_url=str(tmp_path / "lake"))
    assert _run([_stream_asset([("2026-10-01", 2), ("2026-10-02", 2)])], lake, instance, tags=RANGE).success
    before = lake.store().read_bytes("silver/streamed/date=2026-10-02/part-0.parquet")

    broken = _stream_asset([("2026-10-01", 4), ("2026-10-02", 3), ("2026-10-02", 3)], fail_after=2)
    result = _run([broken], lake, instance, tags=RANGE, raise_on_error=False)
    assert not result.success and "producer broke" in _failure(result)
    assert lake.store().read_bytes("silver/streamed/date=2026-10-02/part-0.parquet") == before
    assert not list((tmp_path / "lake").rglob("*.resight-tmp"))


def test_dict_input_gives_one_lazy_scan_per_upstream_partition(
    lake: LakeIOManager, instance: dg.DagsterInstance
) -> None:
    seen: dict[str, int] = {}

    @dg.asset(partitions_def=DAILY, ins={"streamed": dg.AssetIn(key=["silver", "streamed"])})
    def per_partition(streamed: dict[str, pl.LazyFrame]) -> None:
        seen.update({key: frame.collect().height for key, frame in streamed.items()})

    streamed = _stream_asset([("2026-10-01", 2), ("2026-10-02", 1)])
    assert _run([streamed], lake, instance, tags=RANGE).success
    assert _run([streamed, per_partition], lake, instance, tags=RANGE, selection=[per_partition]).success
    assert seen == {"2026-10-01": 2, "2026-10-02": 1}


@pytest.mark.parametrize(("rows", "chunk_rows", "sizes"), [(0, 2, [0]), (3, 5, [3]), (4, 2, [2, 2]), (5, 2, [2, 2, 1])])
def test_iter_chunks_reads_in_order_and_yields_at_least_one_chunk(
    tmp_path: Path, rows: int, chunk_rows: int, sizes: list[int]
) -> None:
    path = tmp_path / "f.parquet"
    pl.DataFrame({"i": list(range(rows))}, schema={"i": pl.Int64}).write_parquet(path, row_group_size=2)
    chunks = list(iter_chunks(pl.scan_parquet(path), chunk_rows))
    assert [c.height for c in chunks] == sizes
    assert pl.concat(chunks)["i"].to_list() == list(range(rows))
