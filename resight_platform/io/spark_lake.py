"""The lake on Spark: a table's partitions read as one Spark DataFrame, and a Spark DataFrame written
back as partitions that the Polars lake (:mod:`resight_platform.io.lake`) reads unchanged.

Same layout as the Polars lake: ``{layer}/{name}/date=…/source=…/part-0.parquet``, the partition's
values in its path and not in its file, every partition replaced atomically. Spark's own writer
names files ``part-<task>-<uuid>.c000.zstd.parquet``; the platform's lake has exactly one
``part-0.parquet`` per partition, so a write goes to a staging directory and each partition's file
is then renamed into place (:func:`write_partitions`).

On S3 a Spark cluster reads and writes ``s3a://`` itself, with the settings of :func:`s3a_conf`.
This machine's Spark cannot: the pyspark wheel carries no hadoop-aws jar nor AWS SDK, and Maven is
out of reach (``docs/design/spark-spike.md`` §1). An S3 lake is therefore read and written through
the platform's object store (the Polars lake's code) and handed to Spark as Arrow: every byte
passes through the driver, which suits tests and small tables, not a backfill.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import polars as pl
import pyarrow.parquet as pq

from resight_platform.faults import failpoint
from resight_platform.io.lake import PARTITION_FILE, partition_path, table_prefix, write_partition
from resight_platform.io.lake import read_table as read_polars_table
from resight_platform.io.storage import DEFAULT_S3_MAX_ATTEMPTS, LocalStore, ObjectStore, open_store
from resight_platform.io.sweep import SPARK_STAGING_DIR, TMP_SUFFIX

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from resight_platform.settings import Settings

__all__ = ["PARTITION_COLUMNS", "STAGING_DIR", "read_listed", "read_table", "s3a_conf", "s3a_url", "write_partitions"]

#: The lake's partition columns of a date × source table, in path order.
PARTITION_COLUMNS = ("date", "source")
#: Where a local write stages Spark's output, under the lake root (hidden: not a layer); what a
#: killed write leaves there goes with the housekeeping sweep (``io/sweep.py``).
STAGING_DIR = SPARK_STAGING_DIR
#: Spark's directory name for a null partition value: the lake has no such partition.
_NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
_TEXT_PARTITIONS = "spark.sql.sources.partitionColumnTypeInference.enabled"
_TIMESTAMPS = "spark.sql.parquet.outputTimestampType"


def _require(spark: SparkSession, key: str, value: str, why: str) -> None:
    """Refuse a session without the platform's setting ``key`` (``engines.spark.BASE_CONF``)."""
    if spark.conf.get(key) != value:
        raise ValueError(
            f"the Spark session has {key}={spark.conf.get(key)!r}, not {value!r} ({why}): build it with "
            "resight_platform.engines.spark.spark_config"
        )


def s3a_url(lake_url: str) -> str:
    """The lake's ``s3://bucket/prefix`` as open-source Spark's Hadoop names it (``s3a://``);
    on EMR, ``s3://`` is EMRFS and works as it is."""
    return "s3a://" + lake_url.removeprefix("s3://") if lake_url.startswith("s3://") else lake_url


def s3a_conf(settings: Settings) -> dict[str, str]:
    """The ``spark.hadoop.fs.s3a.*`` settings a Spark session needs to read and write the lake on S3.

    - the endpoint (``AWS_ENDPOINT_URL``: MinIO, moto, a VPC endpoint) with path-style access, which
      such endpoints need, and TLS as the endpoint's scheme says; none for AWS's own S3;
    - attempts per request as the platform's (``RESIGHT_S3_MAX_ATTEMPTS``).

    No credentials: Spark copies ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and
    ``AWS_SESSION_TOKEN`` from the driver's environment into ``fs.s3a.*`` itself, and S3A's default
    provider chain reads the environment and the instance role (EMR). Keys in the session's
    configuration would show in the Spark UI and in Dagster's resource config.
    """
    conf = {"spark.hadoop.fs.s3a.attempts.maximum": str(settings.s3_max_attempts)}
    endpoint = settings.aws_endpoint_url
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(not endpoint.startswith("http://")).lower()
    return conf


def _dimensions(partitions: Sequence[Mapping[str, str]]) -> tuple[str, ...]:
    names = {tuple(partition) for partition in partitions}
    if len(names) > 1:
        raise ValueError(f"partitions name different dimensions: {sorted(names)}")
    return next(iter(names), PARTITION_COLUMNS)


def read_table(
    spark: SparkSession,
    lake_url: str,
    table: Sequence[str],
    partitions: Iterable[Mapping[str, str]],
    *,
    endpoint_url: str | None = None,
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
) -> DataFrame:
    """The given partitions of a lake table as one Spark DataFrame: the files' columns, then the
    partition's values (``date``, ``source``) as text columns. Partitions never written are skipped,
    as the Polars reader skips them; none at all gives an empty frame of the partition columns.

    The Polars reader (:func:`resight_platform.io.lake.read_table`) gives the files' columns only:
    its callers know each partition by its key. A Spark job reads many partitions as one frame
    and needs them as columns (and :func:`write_partitions` takes them back from there).

    Partitions whose files differ in columns are merged as the Polars reader does: a column missing
    from a file is null there (Spark's ``mergeSchema``).

    A local lake is read by Spark itself (``basePath``: the values come from the paths, as text,
    since the platform's sessions turn partition type inference off). An S3 lake is read by the
    platform's object store and handed over as Arrow (see the module's docstring).
    """
    wanted = [dict(partition) for partition in partitions]
    dimensions = _dimensions(wanted)
    store = open_store(lake_url, endpoint_url, max_attempts=s3_max_attempts)
    if isinstance(store, LocalStore):
        present = [p for p in wanted if store.exists(partition_path(table, p))]
        if not present:
            return _empty(spark, dimensions)
        _require(spark, _TEXT_PARTITIONS, "false", "date and source are read as text")
        base = store.local_path("/".join(table))
        paths = [str(store.local_path(partition_path(table, p))) for p in present]
        frame = spark.read.option("basePath", str(base)).option("mergeSchema", "true").parquet(*paths)
        data = [name for name in frame.columns if name not in dimensions]
        return frame.select(*data, *dimensions)
    parts = []
    for partition in wanted:
        lazy = read_polars_table(store, table, [partition])
        if not lazy.collect_schema():
            continue  # never written
        parts.append(lazy.with_columns(pl.lit(partition[name], pl.String).alias(name) for name in dimensions))
    if not parts:
        return _empty(spark, dimensions)
    collected = pl.concat(parts, how="diagonal_relaxed").collect()
    data = [name for name in collected.columns if name not in dimensions]
    return spark.createDataFrame(collected.select(*data, *dimensions).to_arrow())


def read_listed(
    spark: SparkSession,
    lake_url: str,
    table: Sequence[str],
    *,
    dates: Iterable[str] | None = None,
    endpoint_url: str | None = None,
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
) -> DataFrame:
    """Every partition of a date × source table that is in the lake (one listing of the table, or
    of each of ``dates``' prefixes), as :func:`read_table` reads them: for the consumers that take
    a whole table or whole days (the marts), as :func:`resight_platform.io.lake.read_all` does."""
    store = open_store(lake_url, endpoint_url, max_attempts=s3_max_attempts)
    prefixes = [table_prefix(table)] if dates is None else [f"{table_prefix(table)}date={day}/" for day in dates]
    found = []
    for prefix in prefixes:
        for info in store.list(prefix):
            if not info.key.endswith("/" + PARTITION_FILE):
                continue
            values = dict(part.split("=", 1) for part in info.key[len(table_prefix(table)) :].split("/")[:-1])
            found.append(values)
    return read_table(
        spark,
        lake_url,
        table,
        sorted(found, key=lambda p: tuple(p.values())),
        endpoint_url=endpoint_url,
        s3_max_attempts=s3_max_attempts,
    )


def _empty(spark: SparkSession, dimensions: Sequence[str]) -> DataFrame:
    return spark.createDataFrame([], ", ".join(f"`{name}` string" for name in dimensions))


def write_partitions(
    frame: DataFrame,
    lake_url: str,
    table: Sequence[str],
    partition_columns: Sequence[str] = PARTITION_COLUMNS,
    *,
    partitions: Iterable[Mapping[str, str]] | None = None,
    order_by: Sequence[str] = (),
    endpoint_url: str | None = None,
    s3_max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
) -> list[str]:
    """Write ``frame`` to the lake: every partition it has rows for (by ``partition_columns``) is
    replaced, atomically, by a ``part-0.parquet`` of its rows without the partition columns, the
    layout the Polars lake reads. Returns the written files' URIs, in partition order.

    ``partitions``: the partitions this write is for (a run's). Those without a row in ``frame`` are
    emptied (their file removed, as the Polars lake stores an empty partition), and a row outside
    them is an error before anything is replaced. Without it, only partitions with rows are touched.

    ``order_by``: the rows' order within each partition's file (Spark keeps none of its own; the
    Polars writers write silver in ``(_source_file, _row_number)`` order, and so can this).

    A re-run replaces the same files: no duplicates, nothing left behind. A partition value that is
    null or cannot be a path segment is an error before anything is replaced.

    Local lake: Spark writes the frame ``partitionBy`` into a staging directory under the lake root
    (one task per partition, so one file per partition), then each partition's file is renamed
    over the old one (one ``rename``, atomic, as :class:`~resight_platform.io.lake.PartitionFileWriter`
    commits). S3 lake: the frame comes to the driver as Arrow and each partition is written by the
    platform's :func:`~resight_platform.io.lake.write_partition` (see the module's docstring).
    """
    columns = list(partition_columns)
    missing = [name for name in columns if name not in frame.columns]
    if not columns or missing:
        raise ValueError(f"the frame has no partition column(s) {missing or columns}; it has {frame.columns}")
    expected = None if partitions is None else {_key(p, columns) for p in partitions}
    store = open_store(lake_url, endpoint_url, max_attempts=s3_max_attempts)
    if isinstance(store, LocalStore):
        written = _write_local(frame, store, table, columns, expected, order_by)
    else:
        written = _write_store(frame, store, table, columns, expected, order_by)
    emptied = sorted((expected or set()) - set(written))
    for values in emptied:
        store.delete(partition_path(table, dict(zip(columns, values, strict=True))))
    return [written[values] for values in sorted(written)]


def _key(partition: Mapping[str, str], columns: Sequence[str]) -> tuple[str, ...]:
    if list(partition) != list(columns):
        raise ValueError(f"partition {dict(partition)} does not name the partition columns {list(columns)}")
    return tuple(partition[name] for name in columns)


def _check(values: tuple[str, ...], columns: Sequence[str], expected: set[tuple[str, ...]] | None) -> None:
    if _NULL_PARTITION in values:
        raise ValueError(f"rows with a null partition value ({dict(zip(columns, values, strict=True))})")
    if expected is not None and values not in expected:
        raise ValueError(f"rows for partition {dict(zip(columns, values, strict=True))} outside this write's")


def _write_local(
    frame: DataFrame,
    store: LocalStore,
    table: Sequence[str],
    columns: Sequence[str],
    expected: set[tuple[str, ...]] | None,
    order_by: Sequence[str] = (),
) -> dict[tuple[str, ...], str]:
    from pyspark.sql import functions as F

    _require(frame.sparkSession, _TIMESTAMPS, "TIMESTAMP_MICROS", "instants are written as Polars writes them")
    staging = store.root / STAGING_DIR / uuid.uuid4().hex
    staging.parent.mkdir(parents=True, exist_ok=True)
    try:
        text = frame.withColumns({name: F.col(name).cast("string") for name in columns})
        spread = text.repartition(*columns)
        if order_by:
            spread = spread.sortWithinPartitions(*order_by)
        (spread.write.mode("error").option("compression", "zstd").partitionBy(*columns).parquet(str(staging)))
        found = _staged(staging, len(columns))
        for values in found:
            _check(values, columns, expected)
            partition_path(table, dict(zip(columns, values, strict=True)))  # a valid path segment each
        written = {}
        for values, files in sorted(found.items()):
            key = partition_path(table, dict(zip(columns, values, strict=True)))
            target = store.local_path(key)
            assert target is not None
            target.parent.mkdir(parents=True, exist_ok=True)
            _swap_in(files, target, table[0])
            written[values] = store.uri(key)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _staged(staging: Path, depth: int) -> dict[tuple[str, ...], list[Path]]:
    """``{partition values: Parquet files}`` of Spark's ``partitionBy`` output under ``staging``."""
    found: dict[tuple[str, ...], list[Path]] = {}
    for path in sorted(staging.rglob("*.parquet")):
        relative = path.relative_to(staging).parts
        if path.name.startswith((".", "_")) or len(relative) != depth + 1:
            continue
        found.setdefault(tuple(unquote(part.partition("=")[2]) for part in relative[:-1]), []).append(path)
    return found


def _swap_in(files: Sequence[Path], target: Path, layer: str) -> None:
    """Make ``files`` (one partition's, from Spark) the partition's ``part-0.parquet`` in one rename.
    One file is renamed as it is; several (a deployment that caps rows per file) are first copied
    row group by row group into one beside the target, never holding more than a row group."""
    if len(files) == 1:
        _replace(files[0], target, layer)
        return
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=".part-", suffix=TMP_SUFFIX)
    os.close(fd)
    merged = Path(name)
    try:
        schema = pq.read_schema(files[0])
        with pq.ParquetWriter(merged, schema, compression="zstd") as writer:
            for path in files:
                parquet = pq.ParquetFile(path)
                for group in range(parquet.num_row_groups):
                    writer.write_table(parquet.read_row_group(group).cast(schema))
        _replace(merged, target, layer)
    finally:
        merged.unlink(missing_ok=True)


def _replace(source: Path, target: Path, layer: str) -> None:
    """``source`` durably on disk, then renamed over ``target`` (atomic on one filesystem)."""
    with open(source, "rb") as handle:
        os.fsync(handle.fileno())
    os.chmod(source, 0o644)
    failpoint(layer, "write")  # e.g. silver_write: written, not swapped in (as the Polars writer)
    os.replace(source, target)


def _write_store(
    frame: DataFrame,
    store: ObjectStore,
    table: Sequence[str],
    columns: Sequence[str],
    expected: set[tuple[str, ...]] | None,
    order_by: Sequence[str] = (),
) -> dict[tuple[str, ...], str]:
    collected = pl.from_arrow(frame.toArrow())
    assert isinstance(collected, pl.DataFrame)
    if order_by:
        collected = collected.sort(order_by, nulls_last=False, maintain_order=True)
    collected = collected.with_columns(pl.col(name).cast(pl.String) for name in columns)
    groups: dict[tuple[Any, ...], pl.DataFrame] = collected.partition_by(columns, as_dict=True, maintain_order=True)
    by_values = {tuple(_NULL_PARTITION if v is None else str(v) for v in key): part for key, part in groups.items()}
    for values in by_values:
        _check(values, columns, expected)
        partition_path(table, dict(zip(columns, values, strict=True)))
    return {
        values: write_partition(store, table, dict(zip(columns, values, strict=True)), part.drop(columns))
        for values, part in sorted(by_values.items())
    }
