"""Warehouse access on PostgreSQL (psycopg 3): embedded server, bulk COPY and atomic replaces.

Every write function runs in one transaction: a failure anywhere rolls back and the previous rows
stay visible. Identifiers are validated against ``IDENTIFIER_PATTERN`` and quoted; values are
always parameters (or, in DDL that cannot take parameters, ``psycopg.sql.Literal``).
"""

from __future__ import annotations

import contextlib
import io
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg import sql
from psycopg.conninfo import make_conninfo

from resight_platform.faults import failpoint
from resight_platform.redact import redact, redact_text
from resight_platform.settings import PgSwapSettings

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

__all__ = [
    "COPY_CHUNK_ROWS",
    "IDENTIFIER_PATTERN",
    "DayPartitionLoad",
    "LockHolder",
    "PartitionSwap",
    "SwapBlocked",
    "binary_copy_table",
    "check_partition_values",
    "connect",
    "copy_frame",
    "database_url",
    "embedded_pg_server_url",
    "embedded_pg_url",
    "ensure_database",
    "has_rows_besides",
    "is_day_partitioned",
    "lock_day",
    "quote_ident",
    "replace_partition",
    "replace_rows",
    "replace_table",
    "sqlalchemy_url",
    "stop_embedded_pg",
    "table_columns",
    "table_types",
    "upsert",
]

IDENTIFIER_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
COPY_CHUNK_ROWS = 200_000
EMBEDDED_DATABASES = ("resight", "dagster")
# Server settings of the embedded PostgreSQL (a single node, never replicated): with no WAL for
# replicas, a day partition's COPY into its staging table and the index builds on it write no WAL
# (the table is new in the transaction); bigger WAL segments between checkpoints keep a peak day's
# load from forcing checkpoints. A run replacing many days holds every replaced day's locks until
# it commits (about 65 each for gold.fact_sales: the old child, the staging table, their indexes
# and constraints), and the lock table holds max_locks_per_transaction x max_connections: the
# default 64 x 100 failed re-running the demo's 546-day history ("out of shared memory"); 1024
# allows about 1,500 days a run, for ~40 MB of shared memory. An external server (RESIGHT_PG_URL)
# keeps its own settings (docs/architecture.md says what a long backfill needs there).
EMBEDDED_SETTINGS = {
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_wal_size": "4GB",
    "max_locks_per_transaction": "1024",
}


def quote_ident(name: str) -> sql.Identifier:
    """A validated, quoted SQL identifier; ``ValueError`` naming the bad name otherwise."""
    if not isinstance(name, str) or not IDENTIFIER_PATTERN.fullmatch(name):
        raise ValueError(f"invalid SQL identifier {name!r}: must match {IDENTIFIER_PATTERN.pattern}")
    return sql.Identifier(name)


def _qualified(schema: str, table: str) -> sql.Composed:
    return sql.SQL(".").join([quote_ident(schema), quote_ident(table)])


# --- URLs and the embedded server --------------------------------------------------------------


def database_url(url: str, dbname: str) -> str:
    """The same server URL (host, port, socket, options kept) pointing at database ``dbname``."""
    parts = urlsplit(url)
    if parts.scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// URL: {redact(url)!r}")
    quote_ident(dbname)
    return urlunsplit(parts._replace(path="/" + quote(dbname)))


def sqlalchemy_url(url: str) -> str:
    """``postgresql://…`` → ``postgresql+psycopg2://…`` (the driver Dagster's storage needs)."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"not a postgresql:// URL: {redact(url)!r}")
    return f"postgresql+psycopg2://{rest}"


def _server(data_dir: Path) -> PostgresServer:
    from pgserver.postgres_server import get_server

    data_dir = Path(data_dir).expanduser().absolute()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = get_server(str(data_dir), cleanup_mode=None)
    if not (server.pgdata / "postmaster.pid").exists():
        # get_server caches one handle per data dir; start again after stop_embedded_pg.
        server.ensure_postgres_running()
    return server


def _configure(server: PostgresServer) -> None:
    """Apply :data:`EMBEDDED_SETTINGS` (``ALTER SYSTEM`` and one restart) if they are not in force:
    once per data directory, under pgserver's inter-process lock so no other process starts,
    configures or connects through this code meanwhile."""
    import pgserver

    with server._lock:
        with psycopg.connect(database_url(server.get_uri(), "postgres"), autocommit=True) as conn:
            current = {
                name: conn.execute("SELECT current_setting(%s)", (name,)).fetchone()[0]  # type: ignore[index]
                for name in EMBEDDED_SETTINGS
            }
            if current == EMBEDDED_SETTINGS:
                return
            for name, value in EMBEDDED_SETTINGS.items():
                quote_ident(name)
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
        pg_ctl: Callable[..., str] = pgserver.pg_ctl  # type: ignore[attr-defined]  # made at import
        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user)


def ensure_database(server_url: str, name: str) -> str:
    """Create database ``name`` on the server of ``server_url`` if it does not exist; its URL."""
    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # made concurrently
                conn.execute(sql.SQL("CREATE DATABASE {}").format(quote_ident(name)))
    return database_url(server_url, name)


def embedded_pg_url(data_dir: Path) -> str:
    """Start (or reuse) the pgserver PostgreSQL at ``data_dir``; return the ``resight`` database URL.

    The server outlives this process (``cleanup_mode=None``); stop it with :func:`stop_embedded_pg`.
    Databases ``resight`` and ``dagster`` are created if missing, and :data:`EMBEDDED_SETTINGS`
    applied (one restart the first time).
    """
    server = _server(data_dir)
    _configure(server)
    server_url: str = server.get_uri()
    for name in EMBEDDED_DATABASES:
        ensure_database(server_url, name)
    with psycopg.connect(database_url(server_url, "postgres"), autocommit=True) as conn:
        # Dagster's event log commits every event in its own transaction on a fresh connection;
        # on the embedded server, waiting for each WAL flush is most of a large backfill's
        # bookkeeping. A crash can lose the last few events, never corrupt them. The warehouse
        # database keeps full durability.
        conn.execute("ALTER DATABASE dagster SET synchronous_commit = off")
    return database_url(server_url, "resight")


def embedded_pg_server_url(data_dir: Path) -> str | None:
    """The URL (database ``postgres``) of the pgserver PostgreSQL running at ``data_dir``, or
    ``None`` when none is; unlike :func:`embedded_pg_url` it never starts one."""
    from pgserver.utils import PostmasterInfo

    data_dir = Path(data_dir).expanduser().absolute()
    try:
        info = PostmasterInfo.read_from_pgdata(data_dir)
    except (AssertionError, ValueError, OSError):  # a postmaster.pid being written: starting up
        return None
    if info is None or not info.is_running():
        return None
    return database_url(info.get_uri(), "postgres")


def stop_embedded_pg(data_dir: Path) -> bool:
    """Stop the pgserver PostgreSQL at ``data_dir`` if it is running (data is kept); whether it was."""
    import pgserver

    data_dir = Path(data_dir).expanduser().absolute()
    if embedded_pg_server_url(data_dir) is None:
        return False
    server = _server(data_dir)
    pg_ctl: Callable[..., str] = pgserver.pg_ctl  # type: ignore[attr-defined]  # made at import
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user)
    return True


def connect(url: str, *, autocommit: bool = True, **params: str) -> psycopg.Connection[Any]:
    """A psycopg 3 connection with the session time zone set to UTC; ``params`` override the
    URL's connection parameters (``user``, ``password``).

    Autocommit by default: the write functions here open their own transaction blocks, so nothing
    is left half-open between calls.
    """
    conn = psycopg.connect(make_conninfo(url, **params) if params else url, autocommit=autocommit)
    conn.execute("SET TIME ZONE 'UTC'")
    if not autocommit:
        conn.commit()
    return conn


# --- Bulk loading -------------------------------------------------------------------------------


def table_columns(conn: psycopg.Connection[Any], schema: str, table: str) -> list[str]:
    """Column names of ``schema.table`` in table order (empty if the table does not exist)."""
    quote_ident(schema)
    quote_ident(table)
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [str(row[0]) for row in rows]


def table_types(conn: psycopg.Connection[Any], schema: str, table: str) -> dict[str, str]:
    """``{column: SQL type}`` of ``schema.table`` as ``format_type`` spells it (``numeric(12,2)``,
    ``timestamp with time zone``, …); empty if the table does not exist."""
    quote_ident(schema)
    quote_ident(table)
    rows = conn.execute(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a"
        " JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = %s AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum",
        (schema, table),
    ).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


def _csv_chunk(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    # PostgreSQL CSV: an unquoted empty field is NULL and a quoted "" is the empty string, which is
    # exactly what polars writes with these settings.
    frame.write_csv(
        buffer,
        include_header=False,
        null_value="",
        quote_style="necessary",
        date_format="%Y-%m-%d",
    )
    return buffer.getvalue()


_INTEGER_TYPES: dict[str, pl.DataType] = {"smallint": pl.Int16(), "integer": pl.Int32(), "bigint": pl.Int64()}
_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")


def _floats_at_scale(series: pl.Series, scale: int) -> bool:
    """Whether rounding every float to ``scale`` digits is unambiguous: no value within 1/100 of a
    half at that scale and none too large for the check. Postgres rounds the text form half away
    from zero and a cast rounds the binary value; away from a half both give the same digits."""
    values = series.drop_nulls().to_numpy()  # NaN fails the finite check: CSV writes it as 'NaN'
    if values.size == 0:
        return True
    scaled = values * 10.0**scale
    if not np.isfinite(scaled).all() or np.abs(scaled).max() >= 2.0**40:
        return False
    fraction = np.abs(scaled - np.trunc(scaled))
    return bool((np.abs(fraction - 0.5) > 0.01).all())


def _binary_series(series: pl.Series, pg_type: str) -> pl.Series | None:
    """``series`` cast to the Arrow type whose binary COPY encoding is ``pg_type`` with the same
    value Postgres would read from the CSV text; ``None`` where that is not certain."""
    dtype = series.dtype
    if dtype == pl.Null:
        return None
    if pg_type == "text" or pg_type.startswith("character varying"):
        return series if dtype == pl.String else None
    if pg_type in _INTEGER_TYPES:
        return series.cast(_INTEGER_TYPES[pg_type], strict=True) if dtype.is_integer() else None
    numeric = _NUMERIC.fullmatch(pg_type)
    if numeric is not None:
        scale = int(numeric.group(2))
        if dtype.is_integer() or (isinstance(dtype, pl.Decimal) and (dtype.scale or 0) <= scale):
            return series.cast(pl.Decimal(38, scale), strict=True)
        if dtype.is_float() and _floats_at_scale(series, scale):
            return series.cast(pl.Decimal(38, scale))
        return None
    if pg_type == "double precision":
        return series.cast(pl.Float64) if dtype in (pl.Float64, pl.Float32) else None
    if pg_type == "boolean":
        return series if dtype == pl.Boolean else None
    if pg_type == "date":
        return series if dtype == pl.Date else None
    if pg_type in ("timestamp with time zone", "timestamp without time zone") and isinstance(dtype, pl.Datetime):
        shifted = pg_type == "timestamp without time zone" and dtype.time_zone not in (None, "UTC")
        if dtype.time_unit == "ns" or shifted:  # CSV rounds nanoseconds; a zone's wall time differs
            return None
        return series.cast(pl.Datetime("us", dtype.time_zone))
    return None


def binary_copy_table(frame: pl.DataFrame, types: Mapping[str, str]) -> pa.Table | None:
    """``frame`` as an Arrow table for a binary ``COPY`` into columns of ``types``, or ``None`` if
    a column has a type pair the binary path does not cover exactly (the CSV path takes it)."""
    columns = []
    for name in frame.columns:
        pg_type = types.get(name)
        converted = None if pg_type is None else _binary_series(frame.get_column(name), pg_type)
        if converted is None:
            return None
        columns.append(converted)
    return pl.DataFrame(columns).to_arrow()


def _copy_chunks(
    cur: psycopg.Cursor[Any],
    target: sql.Composable,
    frame: pl.DataFrame,
    chunk_rows: int,
    types: Mapping[str, str] | None = None,
    *,
    freeze: bool = False,
) -> int:
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be positive, got {chunk_rows}")
    if frame.width == 0:
        raise ValueError("cannot COPY a frame without columns")
    columns = sql.SQL(", ").join(quote_ident(name) for name in frame.columns)
    if frame.height == 0:
        return 0
    table = binary_copy_table(frame, types) if types else None
    options = sql.SQL(", FREEZE" if freeze else "")
    if table is not None:
        # Binary COPY: Postgres reads integers, numerics and timestamps without parsing text,
        # about twice as fast per row as CSV on the backend's one core.
        encoder = ArrowToPostgresBinaryEncoder(table.schema)
        statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT binary{})").format(target, columns, options)
        with cur.copy(statement) as copy:
            copy.write(encoder.write_header())
            for batch in table.to_batches(max_chunksize=chunk_rows):
                copy.write(encoder.write_batch(batch))
            copy.write(encoder.finish())
        return frame.height
    statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv{})").format(target, columns, options)
    with cur.copy(statement) as copy:
        for offset in range(0, frame.height, chunk_rows):
            copy.write(_csv_chunk(frame.slice(offset, chunk_rows)))
    return frame.height


def copy_frame(
    cur: psycopg.Cursor[Any],
    schema: str,
    table: str,
    frame: pl.DataFrame,
    *,
    chunk_rows: int = COPY_CHUNK_ROWS,
    types: Mapping[str, str] | None = None,
    freeze: bool = False,
) -> int:
    """Bulk ``COPY`` of ``frame`` into ``schema.table`` (its columns named explicitly), streamed in
    chunks of ``chunk_rows``. Returns the number of rows copied.

    Binary format when every column's type pair is covered exactly by :func:`binary_copy_table`
    (``types``, the table's column types, are looked up if not given), else CSV: both store the
    same values. ``freeze`` writes the rows already frozen (``COPY … FREEZE``), which Postgres
    allows only into a table created or truncated in the current transaction."""
    if types is None:
        types = table_types(cur.connection, schema, table)
    return _copy_chunks(cur, _qualified(schema, table), frame, chunk_rows, types, freeze=freeze)


def _range_partition_key(conn: psycopg.Connection[Any], schema: str, table: str) -> tuple[str, str | None] | None:
    """``(strategy, single key column)`` if ``schema.table`` is a partitioned table, else None."""
    row = conn.execute(
        """
        SELECT pt.partstrat::text, CASE WHEN pt.partnatts = 1 THEN a.attname::text END
        FROM pg_partitioned_table pt
        JOIN pg_class c ON c.oid = pt.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = pt.partattrs[0]
        WHERE n.nspname = %s AND c.relname = %s
        """,
        (schema, table),
    ).fetchone()
    return None if row is None else (str(row[0]), row[1])


def check_partition_values(frame: pl.DataFrame, column: str, value: date | str, target: str) -> None:
    """``ValueError`` unless every row of ``frame`` has ``column == value``: rows of another
    partition would survive the next replace of theirs and duplicate."""
    if column not in frame.columns:
        raise ValueError(f"{target}: frame has no partition column {column!r}")
    series = frame.get_column(column)
    if isinstance(value, date) and not isinstance(value, datetime):
        if series.dtype == pl.Date:
            matches = series == value
        elif isinstance(series.dtype, pl.Datetime):
            matches = series.dt.date() == value
        else:
            matches = series.cast(pl.String) == value.isoformat()
    else:
        matches = series.cast(pl.String) == str(value)
    bad = frame.height - int(matches.fill_null(False).sum())
    if bad:
        raise ValueError(f"{target}: {bad} row(s) have {column} other than the partition value {value!s}")


def replace_partition(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    frame: pl.DataFrame,
    partition_column: str,
    partition_value: date | str,
    *,
    chunk_rows: int = COPY_CHUNK_ROWS,
    swap: PartitionSwap | None = None,
) -> int:
    """Replace the rows of one partition with ``frame`` in one transaction; returns rows copied.

    On a table range-partitioned by ``partition_column`` with a date value, the day is replaced
    whole by a :class:`DayPartitionLoad`: swapped in with the other days of ``swap`` when the
    caller applies it at the end of its transaction, else at once. Otherwise the rows with
    ``partition_column = partition_value`` are deleted and the frame is copied into the table
    (row locks only: readers see the old rows until the commit).
    """
    target = f"{schema}.{table}"
    quote_ident(partition_column)
    check_partition_values(frame, partition_column, partition_value, target)
    with conn.transaction():
        partitioning = _range_partition_key(conn, schema, table)
        if (
            isinstance(partition_value, date)
            and not isinstance(partition_value, datetime)
            and partitioning == ("r", partition_column)
        ):
            load = DayPartitionLoad(conn, schema, table, partition_column, partition_value, swap)
            load.copy(frame, chunk_rows=chunk_rows)
            return load.finish()
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL("DELETE FROM {} WHERE {} = %s").format(
                    _qualified(schema, table), quote_ident(partition_column)
                ),
                (partition_value,),
            )
            return copy_frame(cur, schema, table, frame, chunk_rows=chunk_rows)


def replace_rows(
    conn: psycopg.Connection[Any], schema: str, table: str, where: Mapping[str, Any], day_column: str | None = None
) -> int:
    """Delete the rows matching every ``column = value`` of ``where`` (in the caller's transaction),
    first creating the day's child when the table is range-partitioned by ``day_column``, so the
    rows that replace them can be copied in. Returns rows deleted."""
    if not where:
        raise ValueError(f"{schema}.{table}: replace_rows needs at least one column to match")
    if day_column is not None and is_day_partitioned(conn, schema, table, day_column):
        day = where[day_column]
        _ensure_day_partition(conn, schema, table, f"{table}_p{day:%Y%m%d}", day)
    condition = sql.SQL(" AND ").join(sql.SQL("{} = %s").format(quote_ident(name)) for name in where)
    with conn.cursor() as cur:
        cur.execute(
            sql.SQL("DELETE FROM {} WHERE {}").format(_qualified(schema, table), condition), list(where.values())
        )
        return max(cur.rowcount, 0)


def lock_day(conn: psycopg.Connection[Any], schema: str, table: str, day: date) -> None:
    """Hold, until the transaction ends, the right to write ``schema.table``'s rows of ``day``.

    Two loads of one day by different runs (two partners' files of the same day, in runs the
    sensor started side by side) would otherwise race: one sees no rows of others and replaces the
    whole day's partition (``DayPartitionLoad``) while the other copies rows into the partition
    being replaced, which are lost with it. Taken in ascending day order by every load (a stream's
    days come sorted), so two loads cannot wait on each other."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s), %s)", (f"{schema}.{table}", day.toordinal()))


def has_rows_besides(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    day_column: str,
    day: date,
    column: str,
    values: Sequence[Any],
) -> bool:
    """Whether the day holds rows whose ``column`` is none of ``values`` (rows another load owns)."""
    row = conn.execute(
        sql.SQL("SELECT EXISTS (SELECT 1 FROM {} WHERE {} = %s AND NOT ({} = ANY(%s)))").format(
            _qualified(schema, table), quote_ident(day_column), quote_ident(column)
        ),
        (day, list(values)),
    ).fetchone()
    return bool(row and row[0])


def is_day_partitioned(conn: psycopg.Connection[Any], schema: str, table: str, column: str) -> bool:
    """Whether ``schema.table`` is range-partitioned on ``column`` (one child per day here)."""
    return _range_partition_key(conn, schema, table) == ("r", column)


#: Lock modes that conflict with ``SHARE UPDATE EXCLUSIVE`` (what ``ATTACH PARTITION`` takes on
#: the parent); every mode conflicts with ``ACCESS EXCLUSIVE`` (what dropping a partition takes).
_CONFLICTS_WITH_ATTACH = frozenset(
    {"ShareUpdateExclusiveLock", "ShareLock", "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock"}
)
#: Constraints an index of the parent may back that a prebuilt index takes on (``… USING INDEX``).
_INDEX_CONSTRAINTS = {"p": "PRIMARY KEY", "u": "UNIQUE"}
_PASSWORD_IN_SQL = re.compile(r"(?i)(password\s+)'(?:[^']|'')*'")


@dataclass(frozen=True)
class LockHolder:
    """A session holding a lock that a swap waited for."""

    pid: int
    user: str | None
    mode: str
    relation: str
    transaction_seconds: float | None
    query: str

    def __str__(self) -> str:
        age = "?" if self.transaction_seconds is None else f"{self.transaction_seconds:.0f} s"
        return (
            f"pid {self.pid} (user {self.user}, {self.mode} on {self.relation}, transaction open {age}): {self.query}"
        )


class SwapBlocked(RuntimeError):
    """A run's day swap found its lock held by other sessions at every attempt; the run rolls back."""

    def __init__(self, target: str, attempts: int, holders: Sequence[LockHolder]) -> None:
        self.target, self.attempts, self.holders = target, attempts, list(holders)
        named = "; ".join(str(holder) for holder in self.holders) or "no session holds it any more"
        super().__init__(
            f"{target}: the day swap could not take its lock in {attempts} attempt(s)"
            f" (RESIGHT_PG_SWAP_ATTEMPTS, RESIGHT_PG_LOCK_TIMEOUT_MS); held by {named}"
        )


def _mask_query(query: str | None) -> str:
    """A session's query fit for an error message: URLs redacted, ``PASSWORD '…'`` masked, one line."""
    text = _PASSWORD_IN_SQL.sub(r"\1'***'", redact_text(query or ""))
    return " ".join(text.split())[:300]


@dataclass(frozen=True)
class _Index:
    """One index of a partitioned table: its definition from ``USING`` on (``pg_get_indexdef``),
    whether it is unique, and the constraint it backs (``p``, ``u``) if any."""

    tail: str
    unique: bool
    constraint: str | None


@dataclass(frozen=True)
class _TableShape:
    """What a staging table needs so that ``ATTACH`` adopts instead of building: the parent's
    column types, indexes and validated foreign keys. Read once per table and run."""

    types: dict[str, str]
    indexes: tuple[_Index, ...]
    foreign_keys: tuple[tuple[str, str], ...]


def _table_shape(conn: psycopg.Connection[Any], schema: str, table: str) -> _TableShape:
    parent = _qualified(schema, table).as_string(conn)
    # pg_get_indexdef of a partitioned index: CREATE [UNIQUE] INDEX name ON ONLY schema.table USING …;
    # the head is rebuilt with the server's own quoting, and the rest kept.
    rows = conn.execute(
        """
        SELECT pg_get_indexdef(i.indexrelid),
               format('CREATE %%sINDEX %%I ON ONLY %%I.%%I USING ',
                      CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END, ic.relname, n.nspname, c.relname),
               i.indisunique, con.contype::text
        FROM pg_index i
        JOIN pg_class ic ON ic.oid = i.indexrelid
        JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
        WHERE n.nspname = %s AND c.relname = %s
        ORDER BY ic.relname
        """,
        (schema, table),
    ).fetchall()
    indexes = []
    for definition, head, unique, contype in rows:
        if str(definition).startswith(str(head)) and (contype is None or contype in _INDEX_CONSTRAINTS):
            indexes.append(_Index(str(definition)[len(str(head)) :], bool(unique), contype))
        # else (an exclusion constraint, an unexpected form): ATTACH builds that index itself
    keys = conn.execute(
        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = %s::regclass AND contype = 'f' AND convalidated ORDER BY conname",
        (parent,),
    ).fetchall()
    return _TableShape(
        types=table_types(conn, schema, table),
        indexes=tuple(indexes),
        foreign_keys=tuple((str(name), str(definition)) for name, definition in keys),
    )


class DayPartitionLoad:
    """Bulk replace of one day's partition of a table range-partitioned by date.

    Rows are copied (frozen, ``COPY … FREEZE``: the table is new in this transaction, so no other
    transaction can see it before the commit anyway, and the first reader after it sets no hint
    bits) into a staging table no reader can see. :meth:`finish` then does all the work on it that
    ``ATTACH`` would otherwise do under a lock on the parent: the day's range as a CHECK (so
    ``ATTACH`` need not scan), the parent's indexes built in bulk (the primary key through
    ``ADD PRIMARY KEY USING INDEX``) and its foreign keys added, each validated by one set-based
    query. The swap itself (drop the old child, rename, attach: catalog work only) is queued on the
    run's :class:`PartitionSwap` and done at the end of the run's transaction; without one,
    :meth:`finish` swaps at once."""

    def __init__(
        self,
        conn: psycopg.Connection[Any],
        schema: str,
        table: str,
        column: str,
        day: date,
        swap: PartitionSwap | None = None,
    ) -> None:
        self.conn, self.schema, self.table, self.column, self.day = conn, schema, table, column, day
        self.child = f"{table}_p{day:%Y%m%d}"
        self.staging = f"{table}_load_{day:%Y%m%d}"
        self.bounds = f"{self.staging}_bounds"
        for name in (self.child, self.staging, self.bounds, column):
            quote_ident(name)
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.INTRANS:
            raise ValueError(f"a bulk load of {schema}.{table} must run inside a transaction")
        self._own_swap = swap is None
        self.swap = PartitionSwap(conn) if swap is None else swap
        self.rows = 0
        self.staged = False  # the staging table is made at the first row

    def _stage(self) -> None:
        """The staging table, made at the first row: a day that receives none (most of a weekly
        partner's days in a range run) costs no table, no attach and no index build."""
        staging = _qualified(self.schema, self.staging)
        self.conn.execute(
            sql.SQL("DROP TABLE IF EXISTS {}; CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS)").format(
                staging, staging, _qualified(self.schema, self.table)
            )
        )
        self.staged = True

    def copy(self, frame: pl.DataFrame, *, chunk_rows: int = COPY_CHUNK_ROWS) -> int:
        check_partition_values(frame, self.column, self.day, f"{self.schema}.{self.table}")
        if not frame.height:
            return 0
        shape = self.swap.shape(self.schema, self.table)
        if not self.staged:
            self._stage()
        with self.conn.cursor() as cur:
            copied = copy_frame(
                cur, self.schema, self.staging, frame, chunk_rows=chunk_rows, types=shape.types, freeze=True
            )
        failpoint(self.table, "copy")  # e.g. fact_sales_copy: rows copied, the transaction open
        self.rows += copied
        return copied

    def finish(self) -> int:
        """The staging table made ready to attach (or the day emptied, for no rows); returns rows."""
        if not self.staged:
            self._empty_day()
            return 0
        self._prepare()
        self.swap.add(self)
        if self._own_swap:
            self.swap.apply()
        return self.rows

    def _prepare(self) -> None:
        """The bounds CHECK, the parent's foreign keys (one ``ALTER``: each validated by one query)
        and its indexes on the staging table, sent as one batch; a dangling key fails here."""
        shape, schema = self.swap.shape(self.schema, self.table), self.schema
        staging = _qualified(schema, self.staging)
        column = quote_ident(self.column)
        low, high = sql.Literal(self.day.isoformat()), sql.Literal((self.day + timedelta(days=1)).isoformat())
        # Definitions come from the server's own catalog (pg_get_constraintdef, pg_get_indexdef).
        alterations = [
            sql.SQL("ADD CONSTRAINT {} CHECK ({} >= {} AND {} < {})").format(
                sql.Identifier(self.bounds), column, low, column, high
            ),
            *(
                sql.SQL("ADD CONSTRAINT {} {}").format(sql.Identifier(name), sql.SQL(definition))  # type: ignore[arg-type]
                for name, definition in shape.foreign_keys
            ),
        ]
        statements: list[sql.Composable] = [
            sql.SQL("SET LOCAL maintenance_work_mem = '512MB'"),  # a peak day's key sorts in memory
            sql.SQL("ALTER TABLE {} {}").format(staging, sql.SQL(", ").join(alterations)),
        ]
        for number, index in enumerate(shape.indexes):
            create = sql.SQL("CREATE UNIQUE INDEX" if index.unique else "CREATE INDEX")
            tail = sql.SQL(index.tail)  # type: ignore[arg-type]
            if index.constraint is None:
                statements.append(sql.SQL("{} ON {} USING {}").format(create, staging, tail))
                continue
            # A constraint's index needs a name to be adopted by; unique per run, as the old
            # child's (same day, an earlier run) still exists until the swap.
            name = quote_ident(f"{self.staging}_{index.constraint}{number}_{self.swap.token}")
            statements.append(sql.SQL("{} {} ON {} USING {}").format(create, name, staging, tail))
            statements.append(
                sql.SQL("ALTER TABLE {} ADD {} USING INDEX {}").format(
                    staging,
                    sql.SQL(_INDEX_CONSTRAINTS[index.constraint]),  # type: ignore[arg-type]
                    name,
                )
            )
        self.conn.execute(sql.SQL("; ").join(statements))

    def _swap_statements(self, replaces: bool) -> list[sql.Composable]:
        """The catalog-only statements of this day's swap, run under the parent's lock."""
        schema, child = self.schema, _qualified(self.schema, self.child)
        low, high = sql.Literal(self.day.isoformat()), sql.Literal((self.day + timedelta(days=1)).isoformat())
        statements: list[sql.Composable] = []
        if replaces:
            # Dropping a partition detaches it (ACCESS EXCLUSIVE on the parent, as DETACH takes).
            statements.append(sql.SQL("DROP TABLE {}").format(child))
        statements += [
            sql.SQL("ALTER TABLE {} RENAME TO {}").format(_qualified(schema, self.staging), sql.Identifier(self.child)),
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                _qualified(schema, self.table), child, low, high
            ),
            sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(child, sql.Identifier(self.bounds)),
        ]
        return statements

    def _empty_day(self) -> None:
        """The day replaced by no rows: the rows its child holds are deleted (row locks only; the
        child stays, for loads that copy into the parent); a day without a child has nothing to
        replace."""
        conn, schema = self.conn, self.schema
        exists = conn.execute(
            "SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            (schema, self.child),
        ).fetchone()
        if exists:
            _ensure_day_partition(conn, schema, self.table, self.child, self.day)
            conn.execute(sql.SQL("DELETE FROM {}").format(_qualified(schema, self.child)))


class PartitionSwap:
    """The day swaps of one run's transaction, done together as its last work before the commit.

    Readers of the parent never see a day half loaded (the commit publishes every day at once),
    and they wait for no more than the swap itself: its statements are catalog work only (the heavy
    work was done by :meth:`DayPartitionLoad.finish` on tables no reader sees). A run that only
    adds days attaches them under ``SHARE UPDATE EXCLUSIVE`` on the parent, which readers never
    wait for; a run that replaces a day takes ``ACCESS EXCLUSIVE`` (dropping the old child needs
    it) from the swap to the commit.

    Each attempt runs under a savepoint with ``lock_timeout`` (``RESIGHT_PG_LOCK_TIMEOUT_MS``):
    a reader holding the parent makes the attempt give up within it, which rolls back to the
    savepoint and so releases whatever the attempt had locked; readers queued behind it go on
    during a pause that doubles from ``RESIGHT_PG_SWAP_BACKOFF_MS`` up to
    ``RESIGHT_PG_SWAP_BACKOFF_MAX_MS``. After ``RESIGHT_PG_SWAP_ATTEMPTS`` attempts,
    :class:`SwapBlocked` names the sessions holding the lock, and the run rolls back whole."""

    def __init__(self, conn: psycopg.Connection[Any], settings: PgSwapSettings | None = None) -> None:
        self.conn = conn
        self.settings = settings or PgSwapSettings()
        self.token = uuid.uuid4().hex[:8]
        self._shapes: dict[tuple[str, str], _TableShape] = {}
        self._pending: list[DayPartitionLoad] = []
        #: Attempts the last :meth:`apply` took, and the seconds it spent (waits and pauses included).
        self.attempts = 0
        self.seconds = 0.0

    def shape(self, schema: str, table: str) -> _TableShape:
        key = (schema, table)
        if key not in self._shapes:
            self._shapes[key] = _table_shape(self.conn, schema, table)
        return self._shapes[key]

    def add(self, load: DayPartitionLoad) -> None:
        if any((p.schema, p.child) == (load.schema, load.child) for p in self._pending):
            raise ValueError(f"{load.schema}.{load.table}: {load.day} is loaded twice in one run")
        self._pending.append(load)

    def apply(self) -> int:
        """Swap every prepared day in (in the caller's transaction); returns the days swapped."""
        pending, self._pending = self._pending, []
        if not pending:
            return 0
        conn, policy = self.conn, self.settings
        started = time.monotonic()
        previous = conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0]  # type: ignore[index]
        pause = policy.backoff_ms / 1000
        for attempt in range(1, policy.attempts + 1):
            self.attempts = attempt
            try:
                with conn.transaction():  # a savepoint: a timeout releases what this attempt locked
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (f"{policy.lock_timeout_ms}ms",))
                    self._swap(pending)
                break
            except psycopg.errors.LockNotAvailable:
                if attempt == policy.attempts:
                    self.seconds = time.monotonic() - started
                    raise SwapBlocked(self._target(pending), attempt, self._holders(pending)) from None
                time.sleep(pause)
                pause = min(pause * 2, policy.backoff_max_ms / 1000)
        conn.execute("SELECT set_config('lock_timeout', %s, true)", (previous,))
        self.seconds = time.monotonic() - started
        return len(pending)

    @staticmethod
    def _target(pending: Sequence[DayPartitionLoad]) -> str:
        return ", ".join(sorted({f"{load.schema}.{load.table}" for load in pending}))

    def _existing(self, pending: Sequence[DayPartitionLoad]) -> set[tuple[str, str]]:
        """The pending days' children that exist: one query; a stray table of a child's name that
        is not its table's partition is refused."""
        rows = self.conn.execute(
            """
            SELECT n.nspname::text, c.relname::text, p.relname::text
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
            LEFT JOIN pg_class p ON p.oid = i.inhparent AND p.relnamespace = c.relnamespace
            WHERE (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
            """,
            ([load.schema for load in pending], [load.child for load in pending]),
        ).fetchall()
        parents = {(load.schema, load.child): load.table for load in pending}
        for schema, child, parent in rows:
            if parent != parents[(schema, child)]:
                raise ValueError(
                    f"{schema}.{child} exists but is not a partition of {schema}.{parents[(schema, child)]}"
                )
        return {(str(schema), str(child)) for schema, child, _ in rows}

    def _swap(self, pending: Sequence[DayPartitionLoad]) -> None:
        conn = self.conn
        existing = self._existing(pending)
        for schema, table in sorted({(load.schema, load.table) for load in pending}):
            replaces = any((load.schema, load.child) in existing for load in pending if load.table == table)
            mode = "ACCESS EXCLUSIVE" if replaces else "SHARE UPDATE EXCLUSIVE"
            conn.execute(sql.SQL("LOCK TABLE {} IN " + mode + " MODE").format(_qualified(schema, table)))  # type: ignore[arg-type]
        # Under the parents' locks no other session adds or drops a child: look again, so that a
        # day another run created meanwhile is replaced, not attached twice.
        if self._existing(pending) != existing:
            existing = self._existing(pending)
            for schema, table in sorted({(load.schema, load.table) for load in pending}):
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(_qualified(schema, table)))
        statements = [
            statement for load in pending for statement in load._swap_statements((load.schema, load.child) in existing)
        ]
        conn.execute(sql.SQL("; ").join(statements))

    def _holders(self, pending: Sequence[DayPartitionLoad]) -> list[LockHolder]:
        """The other sessions holding a lock that conflicts with the swap's, on a parent or a child."""
        names = sorted(
            {(load.schema, load.table) for load in pending} | {(load.schema, load.child) for load in pending}
        )
        replaces = bool(self._existing(pending))
        rows = self.conn.execute(
            """
            SELECT l.pid, a.usename::text, l.mode, n.nspname || '.' || c.relname,
                   extract(epoch FROM now() - a.xact_start)::float8, a.query
            FROM pg_locks l
            JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
              AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND (n.nspname, c.relname) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
            ORDER BY l.pid, c.relname
            """,
            ([schema for schema, _ in names], [name for _, name in names]),
        ).fetchall()
        holders: dict[int, LockHolder] = {}
        for pid, user, mode, relation, seconds, query in rows:
            if pid in holders or not (replaces or mode in _CONFLICTS_WITH_ATTACH):
                continue
            holders[pid] = LockHolder(int(pid), user, str(mode), str(relation), seconds, _mask_query(query))
        return list(holders.values())


def _ensure_day_partition(conn: psycopg.Connection[Any], schema: str, table: str, child: str, day: date) -> None:
    """The day's child, made if missing: created apart and attached (``SHARE UPDATE EXCLUSIVE``
    on the parent, which readers do not wait for) rather than ``CREATE TABLE … PARTITION OF``,
    which takes ``ACCESS EXCLUSIVE`` on the parent until the commit."""
    row = conn.execute(
        """
        SELECT EXISTS (
            SELECT 1 FROM pg_inherits i
            JOIN pg_class p ON p.oid = i.inhparent
            JOIN pg_namespace pn ON pn.oid = p.relnamespace
            WHERE i.inhrelid = c.oid AND pn.nspname = %s AND p.relname = %s
        )
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %s AND c.relname = %s
        """,
        (schema, table, schema, child),
    ).fetchone()
    if row is not None:
        if not row[0]:
            raise ValueError(f"{schema}.{child} exists but is not a partition of {schema}.{table}")
        return
    # DDL takes no bind parameters: the bounds are literals quoted by psycopg.
    conn.execute(
        sql.SQL(
            "CREATE TABLE {child} (LIKE {parent} INCLUDING DEFAULTS);"
            " ALTER TABLE {parent} ATTACH PARTITION {child} FOR VALUES FROM ({low}) TO ({high})"
        ).format(
            child=_qualified(schema, child),
            parent=_qualified(schema, table),
            low=sql.Literal(day.isoformat()),
            high=sql.Literal((day + timedelta(days=1)).isoformat()),
        )
    )


def replace_table(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    frame: pl.DataFrame,
    *,
    chunk_rows: int = COPY_CHUNK_ROWS,
) -> int:
    """Replace every row of ``schema.table`` with ``frame`` in one transaction (DELETE + COPY)."""
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(sql.SQL("DELETE FROM {}").format(_qualified(schema, table)))
        return copy_frame(cur, schema, table, frame, chunk_rows=chunk_rows)


def upsert(
    conn: psycopg.Connection[Any],
    schema: str,
    table: str,
    frame: pl.DataFrame,
    key_columns: Sequence[str],
    *,
    chunk_rows: int = COPY_CHUNK_ROWS,
) -> int:
    """Insert or update ``frame`` by ``key_columns`` in one transaction; returns rows written.

    The frame is copied into a temporary table with the frame's columns typed as in the target,
    then ``INSERT … ON CONFLICT (keys) DO UPDATE`` sets every non-key column of the frame. The
    keys need a unique index or constraint on the target. Duplicate keys in the frame are refused.
    """
    target = f"{schema}.{table}"
    keys = list(key_columns)
    if not keys:
        raise ValueError(f"{target}: upsert needs at least one key column")
    missing = [key for key in keys if key not in frame.columns]
    if missing:
        raise ValueError(f"{target}: frame lacks key column(s) {missing}")
    if frame.height and frame.select(keys).is_duplicated().any():
        raise ValueError(f"{target}: frame has duplicate rows for key {keys}")
    columns = [quote_ident(name) for name in frame.columns]
    column_list = sql.SQL(", ").join(columns)
    updates = [name for name in frame.columns if name not in keys]
    action: sql.Composable
    if updates:
        action = sql.SQL("DO UPDATE SET {}").format(
            sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(quote_ident(name)) for name in updates)
        )
    else:
        action = sql.SQL("DO NOTHING")
    staging = f"_upsert_{uuid.uuid4().hex[:12]}"
    with conn.transaction(), conn.cursor() as cur:
        # The staging table has only the frame's columns, typed as in the target: identity or
        # NOT NULL columns the frame does not carry are left to the target's defaults.
        cur.execute(
            sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM {} WITH NO DATA").format(
                quote_ident(staging), column_list, _qualified(schema, table)
            )
        )
        _copy_chunks(cur, quote_ident(staging), frame, chunk_rows, table_types(conn, schema, table))
        cur.execute(
            sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT ({}) {}").format(
                _qualified(schema, table),
                column_list,
                column_list,
                quote_ident(staging),
                sql.SQL(", ").join(quote_ident(key) for key in keys),
                action,
            )
        )
        written = cur.rowcount
        failpoint(table, "upsert")  # e.g. dim_product_upsert: rows upserted, not committed
        cur.execute(sql.SQL("DROP TABLE {}").format(quote_ident(staging)))
    return max(written, 0)
