"""Bronze: partner files as delivered, one asset per feed, partitioned by date × source."""

import functools
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from resight_platform.defs.metadata import OWNERS, RUN_KEY_TAG, table_schema_from_polars
from resight_platform.defs.partitions import providers_of, split_key
from resight_platform.defs.policies import RETRY
from resight_platform.io.lake import RESTART, PartitionStream, RestartPartition
from resight_platform.io.landing import HashingReader, LandedFile, dead_letter, list_partition_files
from resight_platform.io.ops import FileRecord, close_vanished, known_checksums, record_files
from resight_platform.io.storage import ObjectInfo, ObjectStore
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource
from resight_platform.sources.landing import LandingKeyError
from resight_platform.sources.registry import FEEDS, Registry
from resight_platform.transforms.bronze import (
    SLICE_BYTES,
    ColumnDrift,
    FileRejected,
    bronze_schema,
    empty_bronze,
    read_landing_stream,
)

__all__ = ["DRIFT_CHECK", "bronze_assets", "drift_result", "ingest_partition"]

Listed = LandedFile | tuple[ObjectInfo, LandingKeyError]


def ingest_partition(
    *,
    landing: ObjectStore,
    dead_letters: ObjectStore,
    registry: Registry,
    feed: str,
    day: date,
    listing: Sequence[tuple[str, Listed]],
    already_dead: dict[str, tuple[str, str]],
    now: datetime,
    records: list[FileRecord],
    slice_bytes: int = SLICE_BYTES,
) -> Iterator[pl.DataFrame | RestartPartition]:
    """The bronze frames of one (date, source) partition, file by file and slice by slice, so memory
    holds one slice of one file; each file's ledger record is appended to ``records`` once the
    partition is complete.

    ``listing`` pairs each provider with an object of its partition folder. A file that cannot be
    read is copied to dead-letter and the rest of the partition loads. A file loads whole or not
    at all: when one fails after some of its slices were yielded (a bad record near its end), the
    generator yields ``RESTART`` and reads the partition again without it, so the writer drops the
    partial rows. That costs a second pass only over a partition holding such a file.
    """

    def one_pass() -> Iterator[pl.DataFrame | tuple[FileRecord, bool]]:
        """Frames of each file read, then ``(record, partial)`` per file: ``partial`` when the file was
        refused after some of its frames were yielded. Files in ``refused`` are not read again."""
        for provider, item in listing:
            source = registry.source(provider, feed)
            if isinstance(item, LandedFile):
                info, code, detail = item.info, None, ""
            else:
                info, error = item
                code, detail = error.code, error.detail
            if info.key in refused:
                yield refused[info.key], False
                continue
            if code is None and source is None:
                code, detail = "unknown_source", f"{provider} is not registered for the {feed} feed"
            digest: str | None = None
            size = frames = 0
            drift: list[ColumnDrift] = []
            if code is None:
                assert source is not None
                rows = 0
                with landing.open_read(info.key) as raw:
                    reader = HashingReader(raw)
                    try:
                        for frame in read_landing_stream(
                            reader,
                            source=source,
                            key=info.key,
                            business_date=day,
                            ingested_at=now,
                            slice_bytes=slice_bytes,
                            whole=functools.partial(landing.read_bytes, info.key),
                            on_drift=drift.append,
                        ):
                            frames += 1
                            rows += frame.height
                            yield frame
                    except FileRejected as exc:
                        code, detail = exc.code, exc.detail
                    reader.drain()
                digest, size = reader.digest, reader.size
                if code is None:
                    yield (
                        FileRecord(
                            info.key,
                            digest,
                            size,
                            provider,
                            feed,
                            day,
                            "read",
                            rows_in=rows,
                            etag=info.etag,
                            schema_drift=drift[0].as_dict() if drift else None,
                        ),
                        False,
                    )
                    continue
            assert code is not None
            uri, digest, size = dead_letter(
                landing, dead_letters, info.key, code, detail, now, digest, size, already_dead.get(info.key)
            )
            record = FileRecord(
                info.key,
                digest,
                size,
                provider,
                feed,
                day,
                "dead_lettered",
                error_code=code,
                error=detail,
                dead_letter_uri=uri,
                etag=info.etag,
            )
            yield record, frames > 0

    refused: dict[str, FileRecord] = {}
    while True:
        done: list[FileRecord] = []
        restart = False
        for item in one_pass():
            if isinstance(item, pl.DataFrame):
                yield item
                continue
            record, partial = item
            done.append(record)
            if partial:
                refused[record.file_key] = record
                restart = True
                break
        if not restart:
            records.extend(done)
            return
        yield RESTART


def _bronze_asset(feed: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=["bronze", feed],
        group_name="bronze",
        owners=OWNERS,
        kinds={"polars", "parquet"},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        io_manager_key="lake_io_manager",
        retry_policy=RETRY,
        description=f"One row per record of a partner's {feed} file, as delivered (strings) with lineage.",
        metadata={"dagster/column_schema": table_schema_from_polars(bronze_schema(feed))},
        check_specs=[
            dg.AssetCheckSpec(
                DRIFT_CHECK,
                asset=["bronze", feed],
                description="Every file read has the columns its source's mapping registers (sources/registry);"
                " a new, missing or renamed column is reported here and on the ledger (schema_drift).",
            )
        ],
    )
    def bronze(
        context: dg.AssetExecutionContext,
        landing: StoreResource,
        dead_letter: StoreResource,
        warehouse: WarehouseResource,
        registry: RegistryResource,
    ) -> Iterator[dg.Output[PartitionStream] | dg.AssetCheckResult]:
        reg = registry.load()
        now = datetime.now(UTC)
        landing_store, dead_store = landing.store(), dead_letter.store()
        records: list[FileRecord] = []
        listings: dict[str, list[tuple[str, Listed]]] = {}
        for partition_key in context.partition_keys:
            day, source = split_key(partition_key)
            listings[partition_key] = [
                (provider, item)
                for provider in providers_of(source, reg)
                for item in list_partition_files(landing_store, reg, provider, feed, day)
            ]
        keys = [
            item.info.key if isinstance(item, LandedFile) else item[0].key
            for listing in listings.values()
            for _, item in listing
        ]
        with warehouse.connect() as conn:
            already_dead = known_checksums(conn, keys)

        def chunks() -> Iterator[tuple[str, pl.DataFrame | RestartPartition]]:
            # One slice of one file at a time: memory holds a slice, not the file, partition or run.
            for partition_key, listing in listings.items():
                day, _ = split_key(partition_key)
                empty, first = True, len(records)
                for item in ingest_partition(
                    landing=landing_store,
                    dead_letters=dead_store,
                    registry=reg,
                    feed=feed,
                    day=day,
                    listing=listing,
                    already_dead=already_dead,
                    now=now,
                    records=records,
                ):
                    empty = isinstance(item, RestartPartition)  # nothing of the partition written since
                    yield partition_key, item
                for record in records[first:]:
                    if record.dead_letter_uri is not None:
                        context.log.warning(f"dead-lettered {record.file_key}: {record.error_code}: {record.error}")
                if empty:
                    yield partition_key, empty_bronze(feed)
            with warehouse.connect() as conn:
                record_files(conn, records, run_id=context.run.run_id, now=now)
                run_key = context.run.tags.get(RUN_KEY_TAG)
                if run_key:  # a run the landing sensor requested: close what it queued and did not find
                    for key in close_vanished(
                        conn, run_key=run_key, feed=feed, seen=keys, run_id=context.run.run_id, now=now
                    ):
                        context.log.warning(f"{key} was queued for this run and is gone from the landing zone")

        def summary() -> dict[str, object]:
            return {
                "files_read": sum(r.status == "read" for r in records),
                "files_dead_lettered": sum(r.status == "dead_lettered" for r in records),
                "partitions": len(listings),
            }

        yield dg.Output(PartitionStream(chunks(), summary))
        yield drift_result(["bronze", feed], records)

    return bronze


DRIFT_CHECK = "columns_match_the_registry"


def _listed(value: object) -> str:
    items = value if isinstance(value, list) else []
    return ", ".join(" → ".join(map(str, item)) if isinstance(item, list) else str(item) for item in items)


def drift_result(key: list[str], records: Sequence[FileRecord]) -> dg.AssetCheckResult:
    """The ``columns_match_the_registry`` warning for the files a run read."""
    read = [r for r in records if r.status == "read"]
    drifted = [r for r in read if r.schema_drift]
    kinds: Counter[str] = Counter()
    table = ["| file | new | missing | renamed |", "|---|---|---|---|"]
    for r in drifted:
        drift = r.schema_drift or {}
        for kind in ("new", "missing", "renamed"):
            if drift.get(kind):
                kinds[f"{kind}_columns"] += 1
        cells = [_listed(drift.get(kind)) for kind in ("new", "missing", "renamed")]
        table.append(f"| `{r.file_key[:100]}` | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(key),
        check_name=DRIFT_CHECK,
        passed=not drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files_checked": len(read),
            "files_with_drift": len(drifted),
            "failures_by_rule": dg.MetadataValue.json(dict(kinds)),
            "failing_rows": len(drifted),
            "files": dg.MetadataValue.md("\n".join(table[:52])),
        },
        description=None if not drifted else f"{len(drifted)} of {len(read)} files differ from the registered columns",
    )


def bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_bronze_asset(feed, partitions_def) for feed in FEEDS]
