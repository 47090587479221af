"""Parquet lake IO manager: one hive-style Parquet file per asset partition, on a local dir or S3.

Layout under the lake root, for asset key ``[layer, *name]``::

    {layer}/{name joined by '/'}/data.parquet                                  unpartitioned
    {layer}/{name}/date=2026-10-01/part-0.parquet                              daily
    {layer}/{name}/month=2026-10-01/part-0.parquet                             monthly
    {layer}/{name}/partition={key}/part-0.parquet                              other single dim
    {layer}/{name}/date=2026-10-01/source=pawmart/part-0.parquet               multi (dimension order)

Every write replaces the partition's file atomically, so a re-run never duplicates and a killed
run leaves the previous file readable. ``read_table`` reads the lake the same way outside Dagster.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import dagster as dg
import polars as pl

from resight_platform.io.storage import ObjectStore, open_store

__all__ = [
    "LakeIOManager",
    "PartitionWrite",
    "dimension_name",
    "partition_path",
    "partition_values",
    "read_table",
    "table_prefix",
    "write_partition",
]

_log = logging.getLogger(__name__)

PARTITION_FILE = "part-0.parquet"
UNPARTITIONED_FILE = "data.parquet"
IO_THREADS = 16  # concurrent object-store reads/writes per output or input

_T = TypeVar("_T")
_R = TypeVar("_R")


def _check_segment(value: str, what: str) -> str:
    if not value or value in (".", "..") or any(char in value for char in ("/", "\\", "\x00", "=")):
        raise ValueError(f"{what} {value!r} cannot be used as a path segment")
    return value


def table_prefix(asset_key_path: Sequence[str]) -> str:
    """Key prefix (ending in ``/``) under which every file of the asset lives."""
    if not asset_key_path:
        raise ValueError("asset key path is empty")
    return "".join(f"{_check_segment(part, 'asset key part')}/" for part in asset_key_path)


def partition_path(asset_key_path: Sequence[str], partition: Mapping[str, str] | None) -> str:
    """Object key of one partition's Parquet file (or the unpartitioned file) relative to the lake."""
    prefix = table_prefix(asset_key_path)
    if partition is None:
        return prefix + UNPARTITIONED_FILE
    if not partition:
        raise ValueError("partition mapping is empty; pass None for an unpartitioned asset")
    segments = "".join(
        f"{_check_segment(name, 'partition dimension')}={_check_segment(value, 'partition key')}/"
        for name, value in partition.items()
    )
    return prefix + segments + PARTITION_FILE


def dimension_name(partitions_def: dg.PartitionsDefinition) -> str:
    """Path name of a single-dimension partition: ``date`` (daily), ``month`` or ``partition``."""
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        schedule = partitions_def.schedule_type
        if schedule is not None and schedule.value == "DAILY":
            return "date"
        if schedule is not None and schedule.value == "MONTHLY":
            return "month"
    return "partition"


def partition_values(partition_key: str, partitions_def: dg.PartitionsDefinition | None) -> dict[str, str] | None:
    """Dagster partition key → ``{dimension: value}`` in path order (``None`` if unpartitioned)."""
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        if isinstance(partition_key, dg.MultiPartitionKey):
            by_dimension = partition_key.keys_by_dimension
        else:
            by_dimension = partitions_def.get_partition_key_from_str(partition_key).keys_by_dimension
        return {dim.name: by_dimension[dim.name] for dim in partitions_def.partitions_defs}
    return {dimension_name(partitions_def): str(partition_key)}


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd")
    return buffer.getvalue()


def write_partition(
    store: ObjectStore,
    asset_key_path: Sequence[str],
    partition: Mapping[str, str] | None,
    frame: pl.DataFrame,
) -> str:
    """Atomically replace one partition's file with ``frame``; returns the file's URI."""
    key = partition_path(asset_key_path, partition)
    store.write_bytes(key, _parquet_bytes(frame))
    return store.uri(key)


def _read_existing(
    store: ObjectStore,
    asset_key_path: Sequence[str],
    partitions: Iterable[Mapping[str, str]] | None,
) -> tuple[list[pl.DataFrame], list[str]]:
    """Frames of the wanted files that exist, and the keys of those that do not."""
    if partitions is None:
        wanted = [partition_path(asset_key_path, None)]
    else:
        wanted = [partition_path(asset_key_path, partition) for partition in partitions]
    if not wanted:
        return [], []
    # One listing of the narrowest common prefix instead of one exists() call per partition.
    present = {info.key for info in store.list(_common_prefix(wanted))}
    frames = _parallel_map(
        lambda key: pl.read_parquet(io.BytesIO(store.read_bytes(key))),
        [key for key in wanted if key in present],
    )
    missing = [key for key in wanted if key not in present]
    return frames, missing


def _parallel_map(function: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``[function(item) for item in items]`` on a few threads: object-store calls are latency-bound
    (S3 GET/PUT) and boto3 clients and Parquet (de)serialisation release the GIL."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(IO_THREADS, len(items))) as pool:
        return list(pool.map(function, items))


def _common_prefix(keys: Sequence[str]) -> str:
    """Longest string prefix shared by every key (a key prefix, not a path component)."""
    first, last = min(keys), max(keys)
    size = 0
    for a, b in zip(first, last, strict=False):
        if a != b:
            break
        size += 1
    return first[:size]


def _concat(frames: list[pl.DataFrame]) -> pl.LazyFrame:
    if not frames:
        return pl.LazyFrame()
    if len(frames) == 1:
        return frames[0].lazy()
    return pl.concat(frames, how="diagonal_relaxed").lazy()


def read_table(
    store: ObjectStore,
    asset_key_path: Sequence[str],
    partitions: Iterable[Mapping[str, str]] | None = None,
) -> pl.LazyFrame:
    """The asset's rows from the lake: the unpartitioned file (``partitions=None``) or the given
    partitions concatenated (``diagonal_relaxed``). Partitions never written are skipped; nothing
    at all gives an empty ``LazyFrame``."""
    frames, missing = _read_existing(store, asset_key_path, partitions)
    if missing:
        _log.debug("%d wanted lake file(s) absent, skipped: %s", len(missing), missing[:10])
    return _concat(frames)


@dataclass(frozen=True)
class PartitionWrite:
    """One frame bound for one partition of the output (``partition_key`` None if unpartitioned)."""

    partition_key: str | None
    partition: dict[str, str] | None
    frame: pl.DataFrame


def _as_frame(value: Any, what: str) -> pl.DataFrame:
    if isinstance(value, pl.DataFrame):
        return value
    if isinstance(value, pl.LazyFrame):
        return value.collect()
    raise TypeError(f"{what}: expected a polars DataFrame or LazyFrame, got {type(value).__name__}")


class LakeIOManager(dg.ConfigurableIOManager):
    """Parquet (zstd) in the lake, one file per partition; loads upstream partitions as a LazyFrame.

    An asset returns a ``pl.DataFrame`` for an unpartitioned asset or a one-partition run, a
    ``Mapping[partition key, pl.DataFrame]`` for a run over several partitions, or ``None`` when
    it stores its result elsewhere.
    """

    lake_url: str
    endpoint_url: str | None = None

    def store(self) -> ObjectStore:
        return open_store(self.lake_url, self.endpoint_url)

    def partition_writes(self, context: dg.OutputContext, obj: Any) -> list[PartitionWrite]:
        """Check the output against the run's partitions and pair every partition with its frame."""
        asset = context.asset_key.to_user_string()
        if not context.has_asset_partitions:
            if isinstance(obj, Mapping):
                raise TypeError(f"{asset} is not partitioned but returned a mapping; return one DataFrame")
            return [PartitionWrite(None, None, _as_frame(obj, asset))]

        partitions_def = context.asset_partitions_def
        keys = list(context.asset_partition_keys)
        if isinstance(obj, Mapping):
            missing = [str(key) for key in keys if key not in obj]
            if missing:
                raise ValueError(
                    f"{asset}: output has no frame for partition(s) {missing[:20]} of this run "
                    f"({len(missing)} missing of {len(keys)})"
                )
            extra = sorted(set(map(str, obj)) - set(map(str, keys)))
            if extra:
                raise ValueError(f"{asset}: output has frames for partitions outside this run: {extra[:20]}")
            frames = {key: _as_frame(obj[key], f"{asset} partition {key}") for key in keys}
        else:
            if len(keys) != 1:
                raise TypeError(
                    f"{asset}: run covers {len(keys)} partitions but returned a single frame; "
                    "return a mapping of partition key to DataFrame"
                )
            frames = {keys[0]: _as_frame(obj, asset)}
        return [PartitionWrite(str(key), partition_values(key, partitions_def), frame) for key, frame in frames.items()]

    def write_lake(self, context: dg.OutputContext, writes: Sequence[PartitionWrite]) -> list[str]:
        """Write every partition's file; returns their URIs in order."""
        store = self.store()
        path = list(context.asset_key.path)
        uris = _parallel_map(lambda write: write_partition(store, path, write.partition, write.frame), writes)
        context.log.debug(f"wrote {len(uris)} lake file(s) for {context.asset_key.to_user_string()}")
        return uris

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None:
            return
        writes = self.partition_writes(context, obj)
        uris = self.write_lake(context, writes)
        context.add_output_metadata(self.lake_metadata(writes, uris))

    @staticmethod
    def lake_metadata(writes: Sequence[PartitionWrite], uris: Sequence[str]) -> dict[str, dg.MetadataValue]:
        return {
            "dagster/row_count": dg.MetadataValue.int(sum(w.frame.height for w in writes)),
            "path": dg.MetadataValue.path(uris[0]),
            "partitions_written": dg.MetadataValue.int(len(writes)),
        }

    def load_input(self, context: dg.InputContext) -> pl.LazyFrame | pl.DataFrame:
        path = list(context.asset_key.path)
        partitions: list[dict[str, str]] | None = None
        if context.has_asset_partitions:
            partitions_def = context.asset_partitions_def
            partitions = [
                values
                for key in context.asset_partition_keys
                if (values := partition_values(key, partitions_def)) is not None
            ]
        frames, missing = _read_existing(self.store(), path, partitions)
        if missing:
            context.log.debug(
                f"{context.asset_key.to_user_string()}: {len(missing)} partition(s) never written, "
                f"skipped: {missing[:10]}"
            )
        lazy = _concat(frames)
        if context.dagster_type.typing_type is pl.DataFrame:
            return lazy.collect()
        return lazy
