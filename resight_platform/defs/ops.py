"""Operations: the registry in Postgres and as dynamic partitions, the landing-zone scan, and the
hourly housekeeping that sweeps killed writers' temporary files."""

from collections import Counter
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import polars as pl

from resight_platform.defs.metadata import OWNERS, RUN_KEY_TAG, table_schema_from_polars
from resight_platform.defs.partitions import SOURCE_PARTITIONS, source_keys
from resight_platform.defs.policies import RETRY
from resight_platform.io.landing import check_listed, dead_letter, scan_landing
from resight_platform.io.ops import (
    ONBOARDING_STATES,
    FileRecord,
    ProviderActivity,
    known_checksums,
    onboarding_state,
    provider_activity,
    record_files,
    release_accepted,
    sync_sources,
)
from resight_platform.io.storage import ObjectInfo, ObjectStore
from resight_platform.io.sweep import sweep_orphans
from resight_platform.io.watch import PARTITION_RETIRED, retired_detail
from resight_platform.recovery import fail_dead_runs
from resight_platform.resources import RegistryResource, StoreResource, WarehouseResource
from resight_platform.retention import retired_partitions
from resight_platform.settings import DEFAULT_PARTITIONS_START, Settings
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.registry import Registry

__all__ = [
    "HOUSEKEEPING_JOB",
    "LANDING_CONTRACT_CHECK",
    "LANDING_ZONE",
    "housekeeping_job",
    "housekeeping_schedule",
    "landing_contract_check",
    "landing_zone",
    "onboarding_metadata",
    "scan_landing_job",
    "source_registry",
]

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


#: Days after its newest loaded file within which a provider is ``loading``, then ``silent``.
LOADING_DAYS = 7
#: Providers listed by name in ``ops/sources``' onboarding table (the counts cover all of them).
_PROVIDERS_IN_TABLE = 500


class SourcesConfig(dg.Config):
    """``loading_days``: a provider with a file read or loaded in that many days is ``loading``."""

    loading_days: int = LOADING_DAYS


@dg.asset(
    key=["ops", "sources"],
    group_name="ops",
    owners=OWNERS,
    kinds={"postgres"},
    retry_policy=RETRY,
    description="One row per registered source (provider, feed) with how to read it; also registers source partitions.",
    metadata={"dagster/column_schema": table_schema_from_polars(SOURCES_SCHEMA)},
)
def source_registry(
    context: dg.AssetExecutionContext,
    config: SourcesConfig,
    registry: RegistryResource,
    warehouse: WarehouseResource,
) -> dg.MaterializeResult:
    reg = registry.load()
    now = datetime.now(UTC)
    with warehouse.connect() as conn:
        rows = sync_sources(conn, reg)
        activity = provider_activity(conn, reg.providers, now - timedelta(days=config.loading_days))
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
            "registry_version": reg.version,
            **onboarding_metadata(reg, activity, now, config.loading_days),
        }
    )


def onboarding_metadata(
    registry: Registry, activity: Mapping[str, ProviderActivity], now: datetime, loading_days: int
) -> dict[str, int | dg.MetadataValue]:
    """Each provider's onboarding state (``io.ops.onboarding_state``) as counts and a markdown
    table, the providers an on-call engineer looks at first (new, changed, silent) on top."""
    states = {
        slug: onboarding_state(activity.get(slug), registry.provider_version(slug), now, loading_days)
        for slug in registry.providers
    }
    order = {state: n for n, state in enumerate(("new", "changed", "silent", "loading"))}
    table = [
        f"| provider | state | sources | last file loaded | files ({loading_days} d) | dead-lettered ({loading_days} d)"
        " | version of its rows: last file / now |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for slug in sorted(states, key=lambda p: (order[states[p]], p))[:_PROVIDERS_IN_TABLE]:
        seen = activity.get(slug)
        last = seen.last_loaded.strftime("%Y-%m-%d %H:%M UTC") if seen and seen.last_loaded else "never"
        table.append(
            f"| {slug} | {states[slug]} | {len(registry.sources_for(slug))} | {last}"
            f" | {seen.files_since if seen else 0} | {seen.dead_lettered_since if seen else 0}"
            f" | {(seen.provider_version if seen else None) or '-'} / {registry.provider_version(slug) or '-'} |"
        )
    if len(states) > _PROVIDERS_IN_TABLE:
        table.append(f"\n{len(states) - _PROVIDERS_IN_TABLE} more providers: the counts cover every one.")
    counts = Counter(states.values())
    metadata: dict[str, int | dg.MetadataValue] = {
        f"providers_{state}": counts.get(state, 0) for state in ONBOARDING_STATES
    }
    metadata["onboarding"] = dg.MetadataValue.md("\n".join(table))
    return metadata


LANDING_ZONE = dg.AssetKey(["ops", "landing"])
LANDING_CONTRACT_CHECK = "files_follow_the_landing_contract"

landing_zone = dg.AssetSpec(
    key=LANDING_ZONE,
    group_name="ops",
    owners=OWNERS,
    kinds={"s3"},
    description="Partner files as delivered to {provider}/{feed}/{date}/{file}; watched by landing_sensor.",
)


@dg.asset_check(
    asset=LANDING_ZONE,
    name=LANDING_CONTRACT_CHECK,
    description="No file refused (dead-lettered) in the last 24 hours; the landing sensor reports each refusal.",
)
def landing_contract_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "select error_code, count(*) from ops.ingestion_ledger"
            " where status = 'dead_lettered' and processed_at > now() - interval '24 hours'"
            " group by error_code order by 2 desc"
        )
        reasons: dict[str, int] = dict(cur.fetchall())
    return dg.AssetCheckResult(
        passed=not reasons,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"refused_files_24h": sum(reasons.values()), "by_reason": dg.MetadataValue.json(reasons)},
    )


class DeadLetterConfig(dg.Config):
    """Which landing keys to check (none: the whole landing zone) and the first partition date."""

    keys: list[str] | None = None
    partitions_start: str = DEFAULT_PARTITIONS_START


@dg.op(
    description="Dead-letter every landing key (given, or all) that breaks the landing contract or the registry.",
    out=dg.Out(dict),
    retry_policy=RETRY,
)
def scan_landing_op(
    context: dg.OpExecutionContext,
    config: DeadLetterConfig,
    landing: StoreResource,
    dead_letter: StoreResource,
    registry: RegistryResource,
    warehouse: WarehouseResource,
) -> dict[str, int]:
    reg = registry.load()
    landing_store, dead_store = landing.store(component="landing_scan"), dead_letter.store(component="landing_scan")
    passing: list[str] = []  # keys the sensor refused that pass now (the registry changed since)
    if config.keys is None:
        scan = scan_landing(landing_store, reg)
        rejected, accepted = scan.rejected, len(scan.files)
    else:
        first_day = date.fromisoformat(config.partitions_start)
        with warehouse.connect() as conn:  # the sensor refused a late file of a retired partition: it stays refused
            retired = retired_partitions(conn, _partitions_of(config.keys))
        rejected, passing = _recheck(landing_store, reg, config.keys, first_day, datetime.now(UTC).date(), retired)
        accepted = len(passing)
    now = datetime.now(UTC)
    records: list[FileRecord] = []
    with warehouse.connect() as conn:
        released = release_accepted(conn, passing, run_key=context.run.tags.get(RUN_KEY_TAG))
        seen = known_checksums(conn, [info.key for info, _ in rejected])
        for info, error in rejected:
            records.append(
                _dead_letter_file(
                    context, landing_store, dead_store, info, error, seen.get(info.key), now, landing.spool_path()
                )
            )
        record_files(conn, records, run_id=context.run_id, now=now, registry=reg)
    if released:
        context.log.info(
            f"{len(released)} file(s) pass under registry {reg.version} and go back to the landing sensor: "
            + ", ".join(released[:10])
        )
    summary = {
        "files": accepted,
        "rejected": len(rejected),
        "dead_lettered": sum(r.dead_letter_uri is not None for r in records),
        "released": len(released),
    }
    context.add_output_metadata(dict(summary))
    return summary


def _partitions_of(keys: list[str]) -> set[tuple[str, str, date]]:
    """The (provider, feed, date) partitions of the landing keys that follow the contract."""
    out = set()
    for key in keys:
        try:
            landing = parse_landing_key(key)
        except LandingKeyError:
            continue
        out.add((landing.provider, landing.feed, landing.date))
    return out


def _recheck(
    store: ObjectStore,
    registry: Registry,
    keys: list[str],
    first_day: date,
    today: date,
    retired: Mapping[tuple[str, str, date], datetime] | None = None,
) -> tuple[list[tuple[ObjectInfo, LandingKeyError]], list[str]]:
    """The keys the sensor refused, checked again now (the registry may have changed since): the
    refused ones with their reason, and the keys that now pass. A key of a partition whose landing
    files were retired (``retired``) stays refused (:data:`PARTITION_RETIRED`)."""
    rejected: list[tuple[ObjectInfo, LandingKeyError]] = []
    accepted: list[str] = []
    for key in keys:
        info = _stat(store, key)
        if info is None:
            continue  # deleted since: nothing to keep
        try:
            landing = check_listed(info, registry)
        except LandingKeyError as exc:
            rejected.append((info, exc))
            continue
        if not first_day <= landing.date <= today + timedelta(days=1):
            rejected.append((info, LandingKeyError("date_out_of_range", "business date has no partition")))
            continue
        retired_at = (retired or {}).get((landing.provider, landing.feed, landing.date))
        if retired_at is not None:
            rejected.append((info, LandingKeyError(PARTITION_RETIRED, retired_detail(retired_at))))
            continue
        accepted.append(key)
    return rejected, accepted


def _stat(store: ObjectStore, key: str) -> ObjectInfo | None:
    """The listing entry of exactly ``key`` (None if gone); works for keys no path may be built from."""
    return next((info for info in store.list(_listable_prefix(key)) if info.key == key), None)


def _listable_prefix(key: str) -> str:
    """The longest prefix of ``key`` a listing accepts (hostile keys may hold '..' segments)."""
    segments = key.split("/")
    safe: list[str] = []
    for segment in segments[:-1]:
        if segment in ("", ".", "..") or "\\" in segment or "\x00" in segment:
            break
        safe.append(segment)
    return "/".join(safe) + "/" if safe else ""


def _dead_letter_file(
    context: dg.OpExecutionContext,
    landing: ObjectStore,
    dead_letters: ObjectStore,
    info: ObjectInfo,
    error: LandingKeyError,
    previous: tuple[str, str] | None,
    now: datetime,
    spool_dir: Path | None,
) -> FileRecord:
    """Copy one refused file to dead-letter (unless these bytes are there already) and its ledger row.

    A key no store path can be built from (a '..' segment on S3) cannot be read through the store:
    it stays where it is, recorded in the ledger with the reason, and nothing is lost."""
    try:
        uri, digest, size, detail = dead_letter(
            landing, dead_letters, info.key, error.code, error.detail, now, None, info.size, previous, spool_dir
        )
    except ValueError as exc:
        context.log.warning(f"refused {info.key!r}: {error.code}; left in place: {exc}")
        return FileRecord(
            info.key,
            None,
            info.size,
            None,
            None,
            None,
            "dead_lettered",
            error_code=error.code,
            error=f"{error.detail}; left in the landing zone: {exc}",
            etag=info.etag,
        )
    if uri is not None:
        context.log.warning(f"dead-lettered {info.key!r}: {error.code}: {error.detail}")
    return FileRecord(
        info.key,
        digest,
        size,
        None,
        None,
        None,
        "dead_lettered",
        error_code=error.code,
        error=detail,
        dead_letter_uri=uri,
        etag=info.etag,
    )


@dg.job(description="Dead-letter misplaced or unregistered landing files: those given in config, or every one.")
def scan_landing_job() -> None:
    scan_landing_op()


HOUSEKEEPING_JOB = "housekeeping_job"


@dg.op(
    description=(
        "Mark failed the runs of dead `resight run` processes of this host; remove temporary part and spool"
        " files older than RESIGHT_SWEEP_GRACE_HOURS (killed writers')."
    )
)
def sweep_orphans_op(context: dg.OpExecutionContext, lake: StoreResource, landing: StoreResource) -> dict[str, int]:
    # Runs a killed `resight run` on this host left STARTED (no launcher watches them).
    for dead in fail_dead_runs(context.instance, f"the housekeeping run {context.run_id}"):
        context.log.warning(f"run {dead.run_id} of {dead.job}: its process is gone, marked failed")
    spool = landing.spool_path()
    report = sweep_orphans(
        lake.store(component="housekeeping"),
        Settings.from_env().sweep_grace,
        datetime.now(UTC),
        spool_dirs=[spool] if spool else [],
    )
    for path in report.removed:
        context.log.info(f"removed orphan temporary file {path}")
    if report.failed:
        context.log.warning(f"{len(report.failed)} orphan temporary files could not be removed: {report.failed[:5]}")
    summary = {"removed": len(report.removed), "bytes": report.bytes, "failed": len(report.failed)}
    context.add_output_metadata(dict(summary))
    return summary


@dg.job(name=HOUSEKEEPING_JOB, description="Hourly: sweep the debris of killed runs (orphan temporary files).")
def housekeeping_job() -> None:
    sweep_orphans_op()


housekeeping_schedule = dg.ScheduleDefinition(
    name="housekeeping_schedule",
    job=housekeeping_job,
    cron_schedule="17 * * * *",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Sweeps orphan temporary files once an hour.",
)
