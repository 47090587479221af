"""Warehouse IO manager: every partition goes to the lake (Parquet) and to its PostgreSQL table.

The target table is ``{key[0]}.{key[-1]}`` of the asset key (``gold``, ``marts``, ``ops``) and must
exist already (the platform's DDL creates it). How rows land is read from the asset's definition
metadata:

- ``pg_mode="partition"`` with ``pg_partition_column``: each partition's rows are replaced
  (daily: the partition's date; monthly: the month's first day; other single dimensions: the key).
  A date × source asset streams its rows with ``partition_rows`` (the date and one column naming
  the source): a day no other load owns rows of is replaced whole in bulk, otherwise each
  partition's rows are deleted and copied, so one partner's file never rewrites the whole day.
- ``pg_mode="upsert"`` with ``pg_key`` (a list of key columns): insert or update by key.
- ``pg_mode="replace"`` (default for unpartitioned assets): the whole table is replaced.

Only frame columns that exist in the table are copied. All partitions of one output are written in
one transaction. A :class:`~resight_platform.io.lake.PartitionStream` output is loaded chunk by
chunk in that transaction as the lake file is written: the first chunk of a partition replaces it,
the rest append, so a peak day never sits in memory. Inputs load from the lake.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

import dagster as dg
import polars as pl
import psycopg
from psycopg import sql

from resight_platform.io.lake import (
    LakeIOManager,
    OutputTarget,
    PartitionStream,
    add_partition_metadata,
    partition_figures,
)
from resight_platform.io.postgres import (
    DayPartitionLoad,
    PartitionSwap,
    check_partition_values,
    connect,
    copy_frame,
    has_rows_besides,
    is_day_partitioned,
    lock_day,
    quote_ident,
    replace_partition,
    replace_rows,
    replace_table,
    table_columns,
    upsert,
)
from resight_platform.settings import PgSwapSettings

__all__ = [
    "PgWriteMode",
    "WarehouseIOManager",
    "fact_sales_totals",
    "late_resolvable_partitions",
    "partition_value",
    "pg_write_mode",
    "target_table",
]

PG_MODES = ("partition", "upsert", "replace")


@dataclass(frozen=True)
class PgWriteMode:
    """How one asset's rows land in PostgreSQL."""

    mode: Literal["partition", "upsert", "replace"]
    partition_column: str | None = None
    key_columns: tuple[str, ...] = ()


def _raw(value: Any) -> Any:
    return value.value if isinstance(value, dg.MetadataValue) else value


def target_table(asset_key_path: Sequence[str]) -> tuple[str, str]:
    """``(schema, table)`` = ``(key[0], key[-1])``, both validated identifiers."""
    if len(asset_key_path) < 2:
        raise ValueError(f"asset key {list(asset_key_path)} needs [schema, ..., table] to map to a table")
    schema, table = asset_key_path[0], asset_key_path[-1]
    quote_ident(schema)
    quote_ident(table)
    return schema, table


def pg_write_mode(metadata: Mapping[str, Any], *, partitioned: bool, asset: str) -> PgWriteMode:
    """Read ``pg_mode`` / ``pg_partition_column`` / ``pg_key`` from definition metadata."""
    mode = _raw(metadata.get("pg_mode"))
    if mode is None:
        if "pg_partition_column" in metadata:
            mode = "partition"
        elif "pg_key" in metadata:
            mode = "upsert"
        elif not partitioned:
            mode = "replace"
        else:
            raise ValueError(f"{asset} is partitioned: set metadata pg_mode to 'partition' or 'upsert'")
    if mode not in PG_MODES:
        raise ValueError(f"{asset}: pg_mode {mode!r} is not one of {PG_MODES}")
    if mode == "partition":
        if not partitioned:
            raise ValueError(f"{asset}: pg_mode 'partition' needs a partitioned asset")
        column = _raw(metadata.get("pg_partition_column"))
        if not isinstance(column, str):
            raise ValueError(f"{asset}: pg_mode 'partition' needs metadata pg_partition_column")
        quote_ident(column)
        return PgWriteMode("partition", partition_column=column)
    if mode == "upsert":
        keys = _raw(metadata.get("pg_key"))
        if isinstance(keys, str):
            keys = [keys]
        if not keys or not all(isinstance(key, str) for key in keys):
            raise ValueError(f"{asset}: pg_mode 'upsert' needs metadata pg_key, a list of columns")
        for key in keys:
            quote_ident(key)
        return PgWriteMode("upsert", key_columns=tuple(keys))
    if partitioned:
        raise ValueError(
            f"{asset}: pg_mode 'replace' would wipe the table on every partition; use 'partition' or 'upsert'"
        )
    return PgWriteMode("replace")


def partition_value(partitions_def: dg.PartitionsDefinition, partition_key: str) -> date | str:
    """The value of the partition column for one partition: the window's first day for a time
    partition (daily date, monthly first day), the key itself for a static or dynamic one."""
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return partitions_def.time_window_for_partition_key(partition_key).start.date()
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        raise TypeError(
            "pg_mode 'partition' replaces one column's value; a multi-partitioned asset "
            "needs pg_mode 'upsert' (or a date-partitioned gold asset)"
        )
    return str(partition_key)


def _project(frame: pl.DataFrame, columns: Sequence[str], table: str) -> pl.DataFrame:
    keep = [name for name in columns if name in frame.columns]
    if not keep:
        raise ValueError(f"{table}: none of the frame's columns {frame.columns} exist in the table")
    return frame.select(keep)


def _write_pg(
    conn: psycopg.Connection[Any],
    mode: PgWriteMode,
    schema: str,
    table: str,
    frame: pl.DataFrame,
    value: date | str | None,
    swap: PartitionSwap | None = None,
) -> int:
    if mode.mode == "partition":
        assert mode.partition_column is not None and value is not None
        return replace_partition(conn, schema, table, frame, mode.partition_column, value, swap=swap)
    if mode.mode == "upsert":
        return upsert(conn, schema, table, frame, mode.key_columns)
    return replace_table(conn, schema, table, frame)


def _shared_rows(
    context: OutputTarget, stream: PartitionStream, mode: PgWriteMode, asset: str
) -> tuple[dict[str, dict[str, Any]], str] | None:
    """For a multi-partitioned asset in ``partition`` mode: each run partition's row identity
    (``stream.partition_rows``: the partition column's value and one more column's) and the name
    of that other column; None for other assets."""
    if mode.mode != "partition" or not context.has_asset_partitions:
        return None
    if not isinstance(context.asset_partitions_def, dg.MultiPartitionsDefinition):
        return None
    if stream.partition_rows is None:
        raise ValueError(f"{asset}: a multi-partitioned stream needs partition_rows to say which rows it replaces")
    rows_of = {str(key): dict(stream.partition_rows(str(key))) for key in context.asset_partition_keys}
    others = {name for where in rows_of.values() for name in where if name != mode.partition_column}
    if len(others) != 1 or any(mode.partition_column not in where or len(where) != 2 for where in rows_of.values()):
        raise ValueError(f"{asset}: partition_rows must give {mode.partition_column!r} and one other column")
    for name in (mode.partition_column, *others):
        quote_ident(str(name))
    return rows_of, others.pop()


class WarehouseIOManager(LakeIOManager):
    """Lake Parquet plus a bulk ``COPY`` into the asset's PostgreSQL table; loads from the lake."""

    pg_url: str
    #: The day swap's lock wait and retries (``Settings.pg_swap``, ``RESIGHT_PG_LOCK_TIMEOUT_MS``,
    #: ``RESIGHT_PG_SWAP_*``; :class:`~resight_platform.io.postgres.PartitionSwap`).
    pg_lock_timeout_ms: int = PgSwapSettings.lock_timeout_ms
    pg_swap_attempts: int = PgSwapSettings.attempts
    pg_swap_backoff_ms: int = PgSwapSettings.backoff_ms
    pg_swap_backoff_max_ms: int = PgSwapSettings.backoff_max_ms

    def _swap(self, conn: psycopg.Connection[Any]) -> PartitionSwap:
        """The run's day swaps, done at the end of its transaction."""
        return PartitionSwap(
            conn,
            PgSwapSettings(
                lock_timeout_ms=self.pg_lock_timeout_ms,
                attempts=self.pg_swap_attempts,
                backoff_ms=self.pg_swap_backoff_ms,
                backoff_max_ms=self.pg_swap_backoff_max_ms,
            ),
        )

    @staticmethod
    def _swap_metadata(swap: PartitionSwap) -> dict[str, dg.MetadataValue]:
        return {
            "pg_swap_attempts": dg.MetadataValue.int(swap.attempts),
            "pg_swap_seconds": dg.MetadataValue.float(round(swap.seconds, 3)),
        }

    def _handle_stream(self, context: OutputTarget, stream: PartitionStream, mode: PgWriteMode) -> None:
        asset = context.asset_key.to_user_string()
        schema, table = target_table(context.asset_key.path)
        qualified = f"{schema}.{table}"
        partitions_def = context.asset_partitions_def if context.has_asset_partitions else None
        pg_rows, pg_seconds = 0, 0.0
        with connect(self.pg_url) as conn:
            columns = table_columns(conn, schema, table)
            if not columns:
                raise ValueError(f"{asset}: table {qualified} does not exist (create it in the DDL)")

            by_day = mode.partition_column is not None and is_day_partitioned(
                conn, schema, table, mode.partition_column
            )
            bulk: list[DayPartitionLoad] = []
            swap = self._swap(conn)
            shared = _shared_rows(context, stream, mode, asset)  # date × source partitions of one table
            days_done: list[date] = []

            def finish_bulk() -> None:
                nonlocal pg_rows
                if bulk:
                    pg_rows += bulk.pop().finish()

            def start_shared(key: str) -> dict[str, Any]:
                """A date × source partition's rows: the whole day is bulk-replaced when no other
                load owns rows of it, else only this partition's rows are deleted before the copy."""
                assert shared is not None and mode.partition_column is not None
                rows_of, other = shared
                where = rows_of[key]
                day = where[mode.partition_column]
                if not days_done or days_done[-1] != day:
                    finish_bulk()
                    if day in days_done:
                        raise ValueError(f"{asset}: chunks of {day} must come together in the stream")
                    days_done.append(day)
                    if isinstance(day, date):
                        lock_day(conn, schema, table, day)
                    owners = [w[other] for w in rows_of.values() if w[mode.partition_column] == day]
                    if by_day and not has_rows_besides(conn, schema, table, mode.partition_column, day, other, owners):
                        bulk.append(DayPartitionLoad(conn, schema, table, mode.partition_column, day, swap))
                if not bulk:
                    replace_rows(conn, schema, table, where, mode.partition_column if by_day else None)
                return where

            def load(key: str | None, chunk: pl.DataFrame, first: bool) -> None:
                nonlocal pg_rows, pg_seconds
                started = time.perf_counter()
                frame = _project(chunk, columns, qualified)
                value = None
                if shared is not None:
                    assert key is not None and mode.partition_column is not None
                    where = start_shared(key) if first else shared[0][key]
                    if bulk:
                        bulk[0].copy(frame)
                    else:
                        check_partition_values(frame, mode.partition_column, where[mode.partition_column], qualified)
                        with conn.cursor() as cur:
                            pg_rows += copy_frame(cur, schema, table, frame)
                    pg_seconds += time.perf_counter() - started
                    return
                if mode.mode == "partition":
                    assert partitions_def is not None and key is not None
                    value = partition_value(partitions_def, key)
                if by_day and isinstance(value, date):
                    assert mode.partition_column is not None
                    if first:
                        finish_bulk()
                        bulk.append(DayPartitionLoad(conn, schema, table, mode.partition_column, value, swap))
                    bulk[0].copy(frame)
                elif first or mode.mode == "upsert":
                    pg_rows += _write_pg(conn, mode, schema, table, frame, value)
                else:
                    if mode.partition_column is not None and value is not None:
                        check_partition_values(frame, mode.partition_column, value, qualified)
                    with conn.cursor() as cur:
                        pg_rows += copy_frame(cur, schema, table, frame)
                pg_seconds += time.perf_counter() - started

            with conn.transaction():
                result = self.write_stream(context, stream, on_chunk=load)
                started = time.perf_counter()
                finish_bulk()
                swap.apply()  # the run's last work: every day swapped in, then the commit
                pg_seconds += time.perf_counter() - started
        context.log.debug(f"{asset}: {pg_rows} row(s) into {qualified} ({mode.mode}, streamed)")
        context.add_output_metadata(
            {
                **self.stream_metadata(stream, result),
                "pg_table": dg.MetadataValue.text(qualified),
                "pg_rows": dg.MetadataValue.int(pg_rows),
                "pg_load_seconds": dg.MetadataValue.float(round(pg_seconds, 3)),
                **self._swap_metadata(swap),
            }
        )
        add_partition_metadata(context, partition_figures(stream, result, result.rows_by_partition))

    def write(self, context: OutputTarget, obj: Any) -> None:
        if obj is None:
            return
        asset = context.asset_key.to_user_string()
        schema, table = target_table(context.asset_key.path)
        qualified = f"{schema}.{table}"
        mode = pg_write_mode(context.definition_metadata, partitioned=context.has_asset_partitions, asset=asset)
        if isinstance(obj, PartitionStream):
            if mode.mode == "replace":
                raise ValueError(f"{asset}: pg_mode 'replace' takes a whole frame, not a stream")
            self._handle_stream(context, obj, mode)
            return
        writes = self.partition_writes(context, obj)
        values: list[date | str | None] = [None] * len(writes)
        if mode.mode == "partition":
            partitions_def = context.asset_partitions_def
            values = [partition_value(partitions_def, str(w.partition_key)) for w in writes]
        with connect(self.pg_url) as conn:
            columns = table_columns(conn, schema, table)
            if not columns:
                raise ValueError(f"{asset}: table {qualified} does not exist (create it in the DDL)")
            frames = [_project(write.frame, columns, qualified) for write in writes]
            for name in (mode.partition_column, *mode.key_columns):
                if name is not None and name not in frames[0].columns:
                    raise ValueError(f"{asset}: column {name!r} missing from frame or {qualified}")
            if mode.partition_column is not None:
                for frame, value in zip(frames, values, strict=True):
                    if value is not None:
                        check_partition_values(frame, mode.partition_column, value, qualified)
            uris = self.write_lake(context, writes)
            pg_rows = 0
            swap = self._swap(conn)
            with conn.transaction():
                for frame, value in zip(frames, values, strict=True):
                    pg_rows += _write_pg(conn, mode, schema, table, frame, value, swap)
                swap.apply()
        context.log.debug(f"{asset}: {pg_rows} row(s) into {qualified} ({mode.mode})")
        context.add_output_metadata(
            {
                **self.lake_metadata(writes, uris),
                "pg_table": dg.MetadataValue.text(qualified),
                "pg_rows": dg.MetadataValue.int(pg_rows),
                **self._swap_metadata(swap),
            }
        )


def fact_sales_totals(
    conn: psycopg.Connection[Any], days: Sequence[date], provider_keys: Sequence[int]
) -> dict[tuple[date, int], tuple[int, int]]:
    """Committed ``(lines, net amount in cents)`` of ``gold.fact_sales`` per (sale date, provider
    key), for the given days × providers (one grouped query; the day partitions prune it)."""
    if not days or not provider_keys:
        return {}
    rows = conn.execute(
        # net_amount is numeric(14, 2): the sum is exact, in cents once multiplied by 100.
        "select sale_date, provider_key, count(*), (coalesce(sum(net_amount), 0) * 100)::bigint"
        " from gold.fact_sales where sale_date = any(%s) and provider_key = any(%s) group by 1, 2",
        (list(days), list(provider_keys)),
    ).fetchall()
    return {(day, int(provider)): (int(lines), int(cents)) for day, provider, lines, cents in rows}


#: For each dimension a fact may name before it lands: its surrogate key column in
#: ``gold.fact_sales``, the dimension table, and the fact's natural key column matched in it.
_LATE_MEMBERS = (
    ("product_key", "dim_product", "sku"),
    ("store_key", "dim_store", "store_id"),
    ("customer_key", "dim_customer", "customer_id"),
)


def late_resolvable_partitions(conn: psycopg.Connection[Any]) -> list[tuple[date, str]]:
    """The (sale date, provider) partitions of ``gold.fact_sales`` holding a row still on an
    unknown member (key 0) whose natural key its dimension now holds: the partitions a rebuild
    re-resolves. Each dimension is searched through its partial index of unknown rows."""
    parts = [
        sql.SQL(
            "select f.sale_date, f.provider from gold.fact_sales f join gold.{table} d"
            " on d.provider = f.provider and d.{natural} = f.{natural} where f.{key} = 0"
        ).format(table=quote_ident(table), natural=quote_ident(natural), key=quote_ident(key))
        for key, table, natural in _LATE_MEMBERS
    ]
    query = sql.SQL(" union ").join(parts) + sql.SQL(" order by 2, 1")
    return [(day, str(provider)) for day, provider in conn.execute(query).fetchall()]
