"""Bronze: partner files as delivered, one asset per feed, partitioned by date × source."""

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from resight_platform.defs.metadata import OWNERS, table_schema_from_polars
from resight_platform.defs.partitions import providers_of, split_key
from resight_platform.io.lake import PartitionStream
from resight_platform.io.landing import LandedFile, checksum, copy_to_dead_letter, list_partition_files
from resight_platform.io.ops import FileRecord, known_checksums, record_files
from resight_platform.io.storage import ObjectInfo, ObjectStore
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource
from resight_platform.sources.landing import LandingKeyError
from resight_platform.sources.registry import FEEDS, Registry
from resight_platform.transforms.bronze import FileRejected, bronze_schema, empty_bronze, read_landing_file

__all__ = ["bronze_assets", "ingest_files"]

Listed = LandedFile | tuple[ObjectInfo, LandingKeyError]
RETRY = dg.RetryPolicy(max_retries=2, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def ingest_files(
    *,
    landing: ObjectStore,
    dead_letters: ObjectStore,
    registry: Registry,
    feed: str,
    day: date,
    listing: Sequence[tuple[str, Listed]],
    already_dead: dict[str, tuple[str, str]],
    now: datetime,
) -> Iterator[tuple[pl.DataFrame | None, FileRecord]]:
    """Read the listed files of one (date, source) partition one at a time: ``(frame, record)`` for a
    file read, ``(None, record)`` for one refused and copied to dead-letter.

    ``listing`` pairs each provider with an object of its partition folder. The rest of the
    partition loads whatever happens to one file.
    """
    for provider, item in listing:
        source = registry.source(provider, feed)
        if isinstance(item, LandedFile):
            info, code, detail = item.info, None, ""
        else:
            info, error = item
            code, detail = error.code, error.detail
        data = landing.read_bytes(info.key)
        digest, size = checksum(data), len(data)
        if code is None and source is not None:
            try:
                frame = read_landing_file(data, source=source, key=info.key, business_date=day, ingested_at=now)
            except FileRejected as exc:
                code, detail = exc.code, exc.detail
            else:
                del data  # the frame is what the rest of the partition needs; free the file's bytes
                yield frame, FileRecord(info.key, digest, size, provider, feed, day, "read", rows_in=frame.height)
                continue
        elif code is None:
            code, detail = "unknown_source", f"{provider} is not registered for the {feed} feed"
        previous = already_dead.get(info.key)
        uri = None
        if previous != (digest, "dead_lettered"):
            uri = copy_to_dead_letter(dead_letters, key=info.key, data=data, code=code, detail=detail, at=now)
        yield None, FileRecord(
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
        )


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
    )
    def bronze(
        context: dg.AssetExecutionContext,
        landing: StoreResource,
        dead_letter: StoreResource,
        warehouse: WarehouseResource,
        registry: RegistryResource,
    ) -> dg.Output[PartitionStream]:
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

        def chunks() -> Iterator[tuple[str, pl.DataFrame]]:
            # One file at a time: memory holds the file being read, not the partition or the run.
            for partition_key, listing in listings.items():
                day, _ = split_key(partition_key)
                empty = True
                for frame, record in ingest_files(
                    landing=landing_store,
                    dead_letters=dead_store,
                    registry=reg,
                    feed=feed,
                    day=day,
                    listing=listing,
                    already_dead=already_dead,
                    now=now,
                ):
                    records.append(record)
                    if record.dead_letter_uri is not None:
                        context.log.warning(f"dead-lettered {record.file_key}: {record.error_code}: {record.error}")
                    if frame is not None:
                        empty = False
                        yield partition_key, frame
                if empty:
                    yield partition_key, empty_bronze(feed)
            with warehouse.connect() as conn:
                record_files(conn, records, run_id=context.run.run_id, now=now)

        def summary() -> dict[str, object]:
            return {
                "files_read": sum(r.status == "read" for r in records),
                "files_dead_lettered": sum(r.status == "dead_lettered" for r in records),
                "partitions": len(listings),
            }

        return dg.Output(PartitionStream(chunks(), summary))

    return bronze


def bronze_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_bronze_asset(feed, partitions_def) for feed in FEEDS]
