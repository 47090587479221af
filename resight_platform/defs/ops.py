"""Operations: the registry in Postgres and as dynamic partitions, and the landing-zone scan."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl

from resight_platform.defs.metadata import OWNERS, table_schema_from_polars
from resight_platform.defs.partitions import SOURCE_PARTITIONS, source_keys
from resight_platform.io.landing import checksum, copy_to_dead_letter, scan_landing
from resight_platform.io.ops import FileRecord, known_checksums, record_files, sync_sources
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource

__all__ = ["scan_landing_job", "source_registry"]

#: Columns of ``ops.sources`` (see io/sql/001_warehouse.sql).
SOURCES_SCHEMA: dict[str, pl.DataType] = {
    "provider": pl.Utf8(),
    "feed": pl.Utf8(),
    "provider_name": pl.Utf8(),
    "kind": pl.Utf8(),
    "profile": pl.Utf8(),
    "format": pl.Utf8(),
    "timezone": pl.Utf8(),
    "currency": pl.Utf8(),
    "expected_every_hours": pl.Int32(),
    "active": pl.Boolean(),
}


@dg.asset(
    key=["ops", "sources"],
    group_name="ops",
    owners=OWNERS,
    kinds={"postgres"},
    description="One row per registered source (provider, feed) with how to read it; also registers source partitions.",
    metadata={"dagster/column_schema": table_schema_from_polars(SOURCES_SCHEMA)},
)
def source_registry(
    context: dg.AssetExecutionContext, registry: RegistryResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    reg = registry.load()
    with warehouse.connect() as conn:
        rows = sync_sources(conn, reg)
    wanted = source_keys(reg)
    assert SOURCE_PARTITIONS.name is not None
    existing = set(context.instance.get_dynamic_partitions(SOURCE_PARTITIONS.name))
    new = [key for key in wanted if key not in existing]
    if new:
        context.instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, new)
        context.log.info(f"registered {len(new)} new source partitions")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "providers": len(reg.providers),
            "source_partitions": len(wanted),
            "new_source_partitions": len(new),
        }
    )


@dg.op(
    description="List the landing zone; dead-letter every key that breaks the landing contract or the registry.",
    out=dg.Out(dict),
)
def scan_landing_op(
    context: dg.OpExecutionContext,
    landing: StoreResource,
    dead_letter: StoreResource,
    registry: RegistryResource,
    warehouse: WarehouseResource,
) -> dict[str, int]:
    reg = registry.load()
    landing_store, dead_store = landing.store(), dead_letter.store()
    scan = scan_landing(landing_store, reg)
    now = datetime.now(UTC)
    records: list[FileRecord] = []
    with warehouse.connect() as conn:
        seen = known_checksums(conn, [info.key for info, _ in scan.rejected])
        for info, error in scan.rejected:
            data = landing_store.read_bytes(info.key)
            digest = checksum(data)
            uri = None
            if seen.get(info.key) != (digest, "dead_lettered"):
                uri = copy_to_dead_letter(
                    dead_store, key=info.key, data=data, code=error.code, detail=error.detail, at=now
                )
                context.log.warning(f"dead-lettered {info.key!r}: {error.code}: {error.detail}")
            records.append(
                FileRecord(
                    info.key,
                    digest,
                    len(data),
                    None,
                    None,
                    None,
                    "dead_lettered",
                    error_code=error.code,
                    error=error.detail,
                    dead_letter_uri=uri,
                )
            )
        record_files(conn, records, run_id=context.run_id, now=now)
    summary = {"files": len(scan.files), "rejected": len(scan.rejected), "partitions": len(scan.partitions())}
    context.add_output_metadata(dict(summary))
    return summary


@dg.job(description="Scan the landing zone and dead-letter misplaced or unregistered files.")
def scan_landing_job() -> None:
    scan_landing_op()
