"""Bronze: partner files as delivered, one asset per feed, partitioned by date × source."""

from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg
import polars as pl

from resight_platform.defs.metadata import OWNERS, RUN_KEY_TAG, table_schema_from_polars
from resight_platform.defs.partitions import providers_of, split_key
from resight_platform.defs.policies import RETRY
from resight_platform.ingest import Ingestion, ingest_partitions, listed_key, partition_listing
from resight_platform.io.lake import PartitionStream, RestartPartition
from resight_platform.io.ops import FileRecord, close_vanished, known_checksums, record_files
from resight_platform.resources import RegistryResource, Step, StoreResource, WarehouseResource
from resight_platform.sources.registry import FEEDS
from resight_platform.transforms.bronze import DEFAULT_LIMITS, ReadLimits, bronze_schema

__all__ = ["DRIFT_CHECK", "bronze_assets", "drift_result", "load_bronze"]


def _bronze_asset(feed: str, partitions_def: dg.PartitionsDefinition, limits: ReadLimits) -> dg.AssetsDefinition:
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
        yield from load_bronze(feed, context, landing, dead_letter, warehouse, registry, limits)

    return bronze


def load_bronze(
    feed: str,
    context: Step,
    landing: StoreResource,
    dead_letter: StoreResource,
    warehouse: WarehouseResource,
    registry: RegistryResource,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> Iterator[dg.Output[PartitionStream] | dg.AssetCheckResult]:
    """Bronze of ``feed`` for the step's partitions: the asset's body, and a set run's
    (``defs/landing.py``). Its stream's ``partition_summary`` gives each partition's files."""
    reg = registry.load()
    now = datetime.now(UTC)
    landing_store, dead_store = landing.store(), dead_letter.store()
    records: list[FileRecord] = []
    partitions = []
    for partition_key in context.partition_keys:
        day, source = split_key(partition_key)
        partitions.append(
            (partition_key, day, partition_listing(landing_store, reg, providers_of(source, reg), feed, day))
        )
    keys = [listed_key(item) for _, _, listing in partitions for _, item in listing]
    with warehouse.connect() as conn:
        already_dead = known_checksums(conn, keys)

    def chunks() -> Iterator[tuple[str, pl.DataFrame | RestartPartition]]:
        # One slice of one file at a time: memory holds a slice, not the file, partition or run.
        ingestion = Ingestion(
            landing_store, dead_store, reg, feed, already_dead, now, limits=limits, spool_dir=landing.spool_path()
        )
        yield from ingest_partitions(
            ingestion,
            partitions,
            records,
            on_dead_letter=lambda r: context.log.warning(f"dead-lettered {r.file_key!r}: {r.error_code}: {r.error}"),
        )
        with warehouse.connect() as conn:
            record_files(conn, records, run_id=context.run.run_id, now=now, registry=reg)
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
            "partitions": len(partitions),
        }

    by_partition: dict[str, Counter[str]] = {}

    def of_partition(key: str) -> dict[str, object]:
        if not by_partition:  # once, after the last chunk: the run's records by partition
            source_of = {
                p: source
                for source in {split_key(k)[1] for k in context.partition_keys}
                for p in providers_of(source, reg)
            }
            for r in records:
                source = source_of.get(r.provider or "")
                if source is not None and r.business_date is not None:
                    by_partition.setdefault(f"{r.business_date.isoformat()}|{source}", Counter())[r.status] += 1
        counts = by_partition.get(key, Counter())
        return {"files_read": counts["read"], "files_dead_lettered": counts["dead_lettered"]}

    yield dg.Output(PartitionStream(chunks(), summary, partition_summary=of_partition))
    yield drift_result(["bronze", feed], records)


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
        if drift.get("encoding"):  # e.g. UTF-8 bytes in a Latin-1 source (transforms/bronze.py)
            kinds["encoding"] += 1
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


def bronze_assets(
    partitions_def: dg.PartitionsDefinition, limits: ReadLimits = DEFAULT_LIMITS
) -> list[dg.AssetsDefinition]:
    """One bronze asset per feed, reading landed files under ``limits`` (``RESIGHT_MAX_*_BYTES``)."""
    return [_bronze_asset(feed, partitions_def, limits) for feed in FEEDS]
