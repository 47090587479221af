"""WarehouseIOManager through real Dagster runs into the real PostgreSQL (and a local lake)."""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psycopg
import pytest

from resight_platform.io.lake import PartitionStream, read_table
from resight_platform.io.ops import migrate
from resight_platform.io.postgres import connect, replace_partition
from resight_platform.io.warehouse import (
    PgWriteMode,
    WarehouseIOManager,
    late_resolvable_partitions,
    partition_value,
    pg_write_mode,
    target_table,
)

Conn = psycopg.Connection[Any]
DAILY = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_date="2026-10-06")

FACT_DDL = """
CREATE TABLE {s}.dim_product (product_key bigint PRIMARY KEY, sku text NOT NULL UNIQUE);
CREATE TABLE {s}.fact_sales (
    sale_date date NOT NULL,
    product_key bigint NOT NULL REFERENCES {s}.dim_product (product_key),
    quantity int NOT NULL,
    net_amount numeric(12, 2)
) PARTITION BY RANGE (sale_date);
CREATE INDEX ON {s}.fact_sales (product_key);
INSERT INTO {s}.dim_product VALUES (1, 'a'), (2, 'b');
"""


def _facts(day: str, version: int) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "sale_date": [date.fromisoformat(day)] * 2,
            "product_key": [1, 2],
            "quantity": [version, version * 10],
            "net_amount": [1.25 * version, 2.5],
            "lake_only_note": ["not a table column", None],  # ignored by the COPY
        }
    )


def _fact_asset(schema: str) -> dg.AssetsDefinition:
    @dg.asset(
        key=[schema, "fact_sales"],
        partitions_def=DAILY,
        metadata={"pg_mode": "partition", "pg_partition_column": "sale_date"},
    )
    def fact_sales(context: dg.AssetExecutionContext) -> Any:
        version = int(context.run.tags.get("version", "1"))
        frames = {key: _facts(key, version) for key in context.partition_keys}
        bad_day = context.run.tags.get("unknown_product_on")
        if bad_day:  # a product key the dimension does not have: the FK refuses it
            frames[bad_day] = frames[bad_day].with_columns(product_key=pl.lit(99, pl.Int64))
        return frames if len(frames) > 1 else next(iter(frames.values()))

    return fact_sales


def _resources(pg_url: str, tmp_path: Path) -> dict[str, Any]:
    return {"io_manager": WarehouseIOManager(lake_url=str(tmp_path / "lake"), pg_url=pg_url)}


def _failure(result: dg.ExecuteInProcessResult) -> str:
    errors = [event.step_failure_data.error for event in result.get_step_failure_events()]
    return "\n".join(error.to_string() for error in errors if error is not None)


def test_partition_mode_replaces_the_day_and_keeps_the_lake(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    pg_conn.execute(FACT_DDL.format(s=pg_schema))
    asset = _fact_asset(pg_schema)
    resources = _resources(pg_url, tmp_path)

    for version in (1, 2):
        result = dg.materialize(
            [asset], resources=resources, partition_key="2026-10-01", tags={"version": str(version)}
        )
        assert result.success
    rows = pg_conn.execute(f"SELECT sale_date, product_key, quantity FROM {pg_schema}.fact_sales ORDER BY 2").fetchall()
    assert rows == [(date(2026, 10, 1), 1, 2), (date(2026, 10, 1), 2, 20)]  # second run, once

    (materialization,) = result.asset_materializations_for_node(f"{pg_schema}__fact_sales")
    assert materialization.metadata["pg_table"] == dg.MetadataValue.text(f"{pg_schema}.fact_sales")
    assert materialization.metadata["pg_rows"] == dg.MetadataValue.int(2)
    lake_file = tmp_path / "lake" / pg_schema / "fact_sales" / "date=2026-10-01" / "part-0.parquet"
    assert materialization.metadata["path"] == dg.MetadataValue.path(str(lake_file))
    lake = pl.read_parquet(lake_file)
    assert "lake_only_note" in lake.columns and lake["quantity"].to_list() == [2, 20]

    children = pg_conn.execute(
        f"SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        f" WHERE i.inhparent = '{pg_schema}.fact_sales'::regclass"
    ).fetchall()
    assert children == [("fact_sales_p20261001",)]


def test_partition_mode_range_run_writes_every_day_in_one_transaction(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    pg_conn.execute(FACT_DDL.format(s=pg_schema))
    asset = _fact_asset(pg_schema)
    resources = _resources(pg_url, tmp_path)
    range_tags = {
        "dagster/asset_partition_range_start": "2026-10-01",
        "dagster/asset_partition_range_end": "2026-10-03",
    }
    for _ in range(2):
        result = dg.materialize([asset], resources=resources, tags=range_tags)
        assert result.success
    counts = pg_conn.execute(f"SELECT sale_date, count(*) FROM {pg_schema}.fact_sales GROUP BY 1 ORDER BY 1").fetchall()
    assert counts == [(date(2026, 10, d), 2) for d in (1, 2, 3)]
    assert (
        read_table(
            WarehouseIOManager(lake_url=str(tmp_path / "lake"), pg_url=pg_url).store(),
            [pg_schema, "fact_sales"],
            [{"date": f"2026-10-0{d}"} for d in (1, 2, 3)],
        )
        .collect()
        .height
        == 6
    )

    # An unknown product key on the last day rolls back every day of the run in Postgres.
    result = dg.materialize(
        [asset],
        resources=resources,
        tags={**range_tags, "version": "5", "unknown_product_on": "2026-10-03"},
        raise_on_error=False,
    )
    assert not result.success
    assert "ForeignKeyViolation" in _failure(result)
    quantities = pg_conn.execute(
        f"SELECT DISTINCT quantity FROM {pg_schema}.fact_sales WHERE product_key = 1"
    ).fetchall()
    assert quantities == [(1,)]


def test_replace_and_upsert_modes_for_unpartitioned_assets(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    pg_conn.execute(
        f"""
        CREATE TABLE {pg_schema}.dim_region (region text PRIMARY KEY, states int);
        CREATE TABLE {pg_schema}.dim_store (
            store_key bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            store_id text NOT NULL UNIQUE,
            state text
        );
        """
    )
    regions = {"v": 1}

    @dg.asset(key=[pg_schema, "dim_region"])
    def dim_region() -> pl.DataFrame:
        if regions["v"] == 1:
            return pl.DataFrame({"region": ["west", "east"], "states": [13, 9]})
        return pl.DataFrame({"region": ["west"], "states": [14]})

    @dg.asset(key=[pg_schema, "dim_store"], metadata={"pg_mode": "upsert", "pg_key": ["store_id"]})
    def dim_store() -> pl.DataFrame:
        state = "CA" if regions["v"] == 1 else "OR"
        return pl.DataFrame({"store_id": ["s1", f"s{regions['v'] + 1}"], "state": [state, state]})

    resources = _resources(pg_url, tmp_path)
    for version in (1, 2):
        regions["v"] = version
        assert dg.materialize([dim_region, dim_store], resources=resources).success

    assert pg_conn.execute(f"SELECT * FROM {pg_schema}.dim_region").fetchall() == [("west", 14)]
    stores = pg_conn.execute(f"SELECT store_id, state FROM {pg_schema}.dim_store ORDER BY 1").fetchall()
    assert stores == [("s1", "OR"), ("s2", "CA"), ("s3", "OR")]
    assert (tmp_path / "lake" / pg_schema / "dim_store" / "data.parquet").exists()


def test_missing_table_or_column_fails_before_the_lake_is_written(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    @dg.asset(key=[pg_schema, "not_created"])
    def not_created() -> pl.DataFrame:
        return pl.DataFrame({"a": [1]})

    result = dg.materialize([not_created], resources=_resources(pg_url, tmp_path), raise_on_error=False)
    assert not result.success
    assert f"table {pg_schema}.not_created does not exist" in _failure(result)
    assert not (tmp_path / "lake").exists()

    pg_conn.execute(f"CREATE TABLE {pg_schema}.fact_sales (sale_date date, n int)")

    @dg.asset(
        key=[pg_schema, "fact_sales"],
        partitions_def=DAILY,
        metadata={"pg_mode": "partition", "pg_partition_column": "sale_date"},
    )
    def wrong_day() -> pl.DataFrame:
        return pl.DataFrame({"sale_date": [date(2026, 10, 2)], "n": [1]})

    result = dg.materialize(
        [wrong_day],
        resources=_resources(pg_url, tmp_path),
        partition_key="2026-10-01",
        raise_on_error=False,
    )
    assert not result.success
    assert "other than the partition value 2026-10-01" in _failure(result)
    assert not (tmp_path / "lake").exists()


def test_pg_write_mode_from_metadata() -> None:
    assert pg_write_mode({}, partitioned=False, asset="a") == PgWriteMode("replace")
    assert pg_write_mode(
        {"pg_mode": "partition", "pg_partition_column": "sale_date"}, partitioned=True, asset="a"
    ) == PgWriteMode("partition", partition_column="sale_date")
    assert pg_write_mode(
        {"pg_mode": dg.MetadataValue.text("upsert"), "pg_key": dg.MetadataValue.json(["a", "b"])},
        partitioned=True,
        asset="a",
    ) == PgWriteMode("upsert", key_columns=("a", "b"))
    assert pg_write_mode({"pg_key": "sku"}, partitioned=False, asset="a") == PgWriteMode("upsert", key_columns=("sku",))
    cases: list[tuple[dict[str, Any], bool, str]] = [
        ({}, True, "is partitioned"),
        ({"pg_mode": "merge"}, False, "not one of"),
        ({"pg_mode": "partition"}, True, "pg_partition_column"),
        ({"pg_mode": "partition", "pg_partition_column": "d"}, False, "partitioned asset"),
        ({"pg_mode": "upsert"}, False, "pg_key"),
        ({"pg_mode": "replace"}, True, "wipe"),
        ({"pg_mode": "partition", "pg_partition_column": "Day"}, True, "invalid SQL identifier"),
        ({"pg_mode": "upsert", "pg_key": ["id; drop"]}, False, "invalid SQL identifier"),
    ]
    for metadata, partitioned, message in cases:
        with pytest.raises(ValueError, match=message):
            pg_write_mode(metadata, partitioned=partitioned, asset="a")


def test_target_table_and_partition_value() -> None:
    assert target_table(["gold", "fact_sales"]) == ("gold", "fact_sales")
    assert target_table(["marts", "monthly", "brand_share"]) == ("marts", "brand_share")
    for bad in (["fact_sales"], ["Gold", "x"], ["gold", "x;drop"]):
        with pytest.raises(ValueError):
            target_table(bad)
    assert partition_value(DAILY, "2026-10-03") == date(2026, 10, 3)
    monthly = dg.MonthlyPartitionsDefinition(start_date="2026-01-01")
    assert partition_value(monthly, "2026-10-01") == date(2026, 10, 1)
    assert partition_value(dg.StaticPartitionsDefinition(["pawmart"]), "pawmart") == "pawmart"
    multi = dg.MultiPartitionsDefinition({"date": DAILY, "source": dg.StaticPartitionsDefinition(["pawmart"])})
    with pytest.raises(TypeError):
        partition_value(multi, "2026-10-01|pawmart")


SOURCES = dg.StaticPartitionsDefinition(["a", "b", "c"])
DATE_SOURCE = dg.MultiPartitionsDefinition({"date": DAILY, "source": SOURCES})
SHARED_DDL = """
CREATE TABLE {s}.fact_sales (
    sale_date date NOT NULL,
    source text NOT NULL,
    quantity int NOT NULL
) PARTITION BY RANGE (sale_date);
CREATE INDEX ON {s}.fact_sales (source);
"""


def _shared_asset(schema: str) -> dg.AssetsDefinition:
    """A date × source asset whose partitions share the day's table partition (like gold.fact_sales)."""

    @dg.asset(
        key=[schema, "fact_sales"],
        partitions_def=DATE_SOURCE,
        metadata={"pg_mode": "partition", "pg_partition_column": "sale_date"},
    )
    def fact_sales(context: dg.AssetExecutionContext) -> Any:
        version = int(context.run.tags.get("version", "1"))

        def chunks() -> Any:
            for key in sorted(context.partition_keys):
                day, source = key.split("|")
                rows = version if source != "c" else 0  # c has no rows: it still owns (and clears) its own
                yield (
                    key,
                    pl.DataFrame(
                        {
                            "sale_date": [date.fromisoformat(day)] * rows,
                            "source": [source] * rows,
                            "quantity": [version] * rows,
                        },
                        schema={"sale_date": pl.Date, "source": pl.Utf8, "quantity": pl.Int32},
                    ),
                )

        def owned(key: str) -> dict[str, Any]:
            day, source = key.split("|")
            return {"sale_date": date.fromisoformat(day), "source": source}

        return PartitionStream(chunks(), partition_rows=owned)

    return fact_sales


def _day_rows(conn: Conn, schema: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        f"SELECT sale_date, source, count(*), max(quantity) FROM {schema}.fact_sales GROUP BY 1, 2 ORDER BY 1, 2"
    ).fetchall()


def test_date_source_partitions_replace_only_their_own_rows_of_the_day(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    pg_conn.execute(SHARED_DDL.format(s=pg_schema))
    asset = _shared_asset(pg_schema)
    resources = _resources(pg_url, tmp_path)
    whole_day = {
        "dagster/asset_partition_range_start": "2026-10-01|a",
        "dagster/asset_partition_range_end": "2026-10-02|c",
        "version": "2",
    }
    assert dg.materialize([asset], resources=resources, tags=whole_day).success  # bulk: nobody else owns rows
    d1, d2 = date(2026, 10, 1), date(2026, 10, 2)
    assert _day_rows(pg_conn, pg_schema) == [(d1, "a", 2, 2), (d1, "b", 2, 2), (d2, "a", 2, 2), (d2, "b", 2, 2)]

    # One partner's new file: only (2026-10-01, b) is replaced; a's rows of the day stay as they were.
    one = dg.materialize([asset], resources=resources, partition_key="2026-10-01|b", tags={"version": "5"})
    assert one.success
    assert _day_rows(pg_conn, pg_schema) == [(d1, "a", 2, 2), (d1, "b", 5, 5), (d2, "a", 2, 2), (d2, "b", 2, 2)]

    # Re-running the same partition replaces, never duplicates.
    assert dg.materialize([asset], resources=resources, partition_key="2026-10-01|b", tags={"version": "5"}).success
    assert _day_rows(pg_conn, pg_schema)[1] == (d1, "b", 5, 5)


def test_date_source_stream_without_partition_rows_is_refused(
    pg_url: str, pg_conn: Conn, pg_schema: str, tmp_path: Path
) -> None:
    pg_conn.execute(SHARED_DDL.format(s=pg_schema))

    @dg.asset(
        key=[pg_schema, "fact_sales"],
        partitions_def=DATE_SOURCE,
        metadata={"pg_mode": "partition", "pg_partition_column": "sale_date"},
    )
    def fact_sales(context: dg.AssetExecutionContext) -> Any:
        return PartitionStream(iter([(context.partition_key, pl.DataFrame({"sale_date": [date(2026, 10, 1)]}))]))

    result = dg.materialize(
        [fact_sales], resources=_resources(pg_url, tmp_path), partition_key="2026-10-01|a", raise_on_error=False
    )
    assert not result.success
    assert "needs partition_rows" in _failure(result)


def test_late_resolvable_partitions_are_those_with_an_unknown_member_a_dimension_now_holds(
    fresh_pg_url: str,
) -> None:
    """Facts on key 0 whose natural key (sku, store id, customer id) the dimension now holds: their
    (date, provider); unknown members still unknown, resolved facts and other providers' keys not."""
    d1, d2, d3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
    with connect(fresh_pg_url) as conn:
        migrate(conn)
        migrate(conn)  # idempotent, unknown members included
        unknown = conn.execute(
            "select (select count(*) from gold.dim_product where product_key = 0),"
            " (select count(*) from gold.dim_store where store_key = 0),"
            " (select count(*) from gold.dim_customer where customer_key = 0)"
        ).fetchone()
        assert unknown == (1, 1, 1)
        conn.execute(
            "insert into gold.dim_date (date_key, date, year, quarter, month, month_start, week_start, day_of_week,"
            " is_weekend) select to_char(d, 'YYYYMMDD')::int, d, 2026, 4, 10, '2026-10-01', d, 1, false"
            " from generate_series(%s::date, %s::date, interval '1 day') d",
            (d1, d3),
        )
        conn.execute(
            "insert into gold.dim_provider values (1, 'pawmart', 'PawMart', 'retail', 'UTC', 'USD'),"
            " (2, 'petopia', 'Petopia', 'retail', 'UTC', 'USD')"
        )
        conn.execute("insert into gold.dim_product (product_key, provider, sku) values (11, 'pawmart', 'K1')")
        conn.execute("insert into gold.dim_store (store_key, provider, store_id) values (31, 'pawmart', 'S1')")
        conn.execute("insert into gold.dim_customer (customer_key, provider, customer_id) values (41, 'petopia', 'C1')")

        def fact(
            day: date,
            provider_key: int,
            line: int,
            keys: tuple[int, int | None, int | None],
            naturals: tuple[str, str | None, str | None],
        ) -> dict[str, object]:
            provider = {1: "pawmart", 2: "petopia"}[provider_key]
            return {
                "sale_date": day,
                "date_key": int(f"{day:%Y%m%d}"),
                "provider_key": provider_key,
                "product_key": keys[0],
                "store_key": keys[1],
                "customer_key": keys[2],
                "provider": provider,
                "sku": naturals[0],
                "store_id": naturals[1],
                "customer_id": naturals[2],
                "order_id": "O",
                "line_no": line,
                "ordered_at": datetime(2026, 10, 1, tzinfo=UTC),
                "channel": "store",
                "quantity": 1,
                "unit_price": 1.0,
                "discount": 0.0,
                "net_amount": 1.0,
                "status": "completed",
                "source_file": "f",
            }

        facts = {
            # resolvable: pawmart's K1 is in the catalog now
            d1: [
                fact(d1, 1, 1, (0, None, None), ("K1", None, None)),
                fact(d1, 2, 1, (0, None, None), ("X", None, None)),
            ],
            # still unknown (no such SKU), already resolved, and petopia's K1 (another partner's SKU)
            d2: [
                fact(d2, 1, 1, (0, None, None), ("K9", None, None)),
                fact(d2, 1, 2, (11, None, None), ("K1", None, None)),
                fact(d2, 2, 1, (0, None, None), ("K1", None, None)),
            ],
            # a store and a customer that landed late
            d3: [fact(d3, 1, 1, (11, 0, None), ("K1", "S1", None)), fact(d3, 2, 1, (0, None, 0), ("X", None, "C1"))],
        }
        for day, rows in facts.items():
            frame = pl.DataFrame(
                rows,
                schema_overrides={
                    "store_key": pl.Int64,
                    "customer_key": pl.Int64,
                    "store_id": pl.Utf8,
                    "customer_id": pl.Utf8,
                },
            )
            replace_partition(conn, "gold", "fact_sales", frame, "sale_date", day)
        assert late_resolvable_partitions(conn) == [(d1, "pawmart"), (d3, "pawmart"), (d3, "petopia")]
