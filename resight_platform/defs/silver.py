"""Silver: canonical, typed, standardised and deduplicated rows; rule breakers to quarantine."""

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import chain

import dagster as dg
import polars as pl
import psycopg

from resight_platform.defs.checks import ModelCheck, checks_failed, model_check_spec
from resight_platform.defs.metadata import OWNERS, detailed, table_schema_from_model
from resight_platform.defs.partitions import DATE, SOURCE, lake_partition, split_key
from resight_platform.defs.policies import RETRY
from resight_platform.io.lake import (
    CHUNK_ROWS,
    PartitionStream,
    WrittenPartitions,
    iter_chunks,
    read_table,
    write_partition,
)
from resight_platform.io.ops import known_products, mark_loaded, record_silver, record_type_drift
from resight_platform.resources import (
    EngineResource,
    RegistryResource,
    Step,
    StoreResource,
    WarehouseResource,
    engine_for,
)
from resight_platform.restate import clean_on_spark, quarantine_table
from resight_platform.schemas.silver import SILVER_MODELS
from resight_platform.sources.registry import FEEDS, Registry
from resight_platform.transforms.bronze import bronze_schema, empty_bronze
from resight_platform.transforms.silver import (
    TYPE_DRIFT_MIN_ROWS,
    TYPE_DRIFT_SHARE,
    SilverResult,
    clean_feed,
    reconcile,
    type_drift,
)

__all__ = ["BATCH_ROWS", "TYPES_CHECK", "clean_silver", "quarantine_table", "silver_assets"]


#: Partitions whose quarantine counts a run's metadata lists by name (a backfill of thousands
#: keeps the totals; ``resight quality`` and ``ops.quarantine`` have every partition).
_PARTITIONS_IN_METADATA = 500

_ROW_MEANING = {
    "sales": "one sales line item (order, line) in USD and UTC",
    "catalog": "one product a provider sells, with conformed brand, category and species",
    "stores": "one provider location with its Census region",
    "customers": "one loyalty customer of a provider",
}


#: Bronze rows of consecutive small partitions that a range run cleans in one ``clean_feed`` call.
#: A call costs ~20 Polars collects whatever its size, so the demo's 560 sales partitions of a few
#: hundred rows each (432k rows) took 13.5 s of CPU cleaned one by one; in batches of 50k rows
#: 4.4 s, with 140 MiB more at the peak (one batch of all 432k: 5.1 s, but 740 MiB more). A
#: partition bigger than the budget is cleaned alone: whole, or a chunk at a time from
#: ``CHUNK_ROWS`` rows.
BATCH_ROWS = 50_000


@dataclass
class _Batch:
    """Consecutive small partitions of a run waiting to be cleaned together, in key order: each
    key with its whole bronze frame (None: a partition without rows)."""

    members: list[tuple[str, pl.DataFrame | None]] = field(default_factory=list)
    rows: int = 0
    files: set[str] = field(default_factory=set)
    cells: set[tuple[object, object]] = field(default_factory=set)

    def takes(self, raw: pl.DataFrame, files: set[str], cells: set[tuple[object, object]]) -> bool:
        """Whether ``raw`` can join: within the row budget, and no file or (provider, business
        date) in common with a member (the dedup key holds both, so partitions that share
        neither dedup exactly as they would alone)."""
        return self.rows + raw.height <= BATCH_ROWS and self.files.isdisjoint(files) and self.cells.isdisjoint(cells)

    def add(self, key: str, raw: pl.DataFrame | None, files: set[str], cells: set[tuple[object, object]]) -> None:
        self.members.append((key, raw))
        if raw is not None:
            self.rows += raw.height
            self.files |= files
            self.cells |= cells


def _batchable(raw: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame | None:
    """A whole partition's bronze frame reduced to the columns silver reads, if it can be cleaned
    with others: exactly the bronze schema (a vertical concat keeps every dtype) and every row's
    file known (rows are handed back to their partition by file)."""
    if any(column not in raw.columns for column in schema):
        return None
    frame = raw.select(list(schema))
    if dict(frame.schema) != schema or frame.get_column("_source_file").null_count():
        return None
    return frame


def _split_by_file(frame: pl.DataFrame, owner: pl.DataFrame, parts: int) -> list[pl.DataFrame]:
    """``frame``'s rows per member of a batch (``owner``: ``_source_file`` -> ``__member``), each
    part in ``frame``'s order; a member without rows gets an empty frame of the same schema."""
    tagged = frame.join(owner, on="_source_file", how="left", maintain_order="left")
    if tagged.get_column("__member").null_count():
        raise AssertionError("silver returned a row of a file that is in no partition of the batch")
    groups = tagged.partition_by("__member", as_dict=True, include_key=False, maintain_order=True)
    return [groups.get((i,), frame.clear()) for i in range(parts)]


def _sum_counts(counts: list[pl.DataFrame]) -> pl.DataFrame:
    """Per-file reconciliation of a partition's chunks added up (a file can span chunks)."""
    frame = pl.concat(counts)
    if len(counts) == 1:
        return frame
    return (
        frame.group_by("_source_file")
        .agg(pl.col("rows_in", "rows_loaded", "rows_quarantined").sum())
        .sort("_source_file")
    )


class _QuarantineBatch:
    """Quarantine rows and file counts of finished partitions, stored in ``ops`` a batch at a time
    (one transaction per batch: few round trips on a run of many small partitions, bounded memory
    on a run of big ones).

    The files are marked ``loaded`` only by :meth:`close`, called once the run's silver files are
    committed: a batch stored while the stream is still being written keeps its files' status,
    so a run that then fails to write a partition leaves none of its files called loaded (Dagster
    shows those partitions failed, and the ledger agrees)."""

    FLUSH_ROWS = 200_000
    FLUSH_PARTITIONS = 500

    def __init__(self, conn: psycopg.Connection, feed: str, registry: Registry) -> None:
        self.conn, self.feed, self.registry = conn, feed, registry
        self.partitions: list[tuple[date, str]] = []
        self.quarantine: list[pl.DataFrame] = []
        self.counts: list[pl.DataFrame] = []
        self.rows = 0
        self.stored_files: list[str] = []  # counted by an earlier batch, not marked loaded yet

    def add(self, partition: tuple[date, str], quarantine: pl.DataFrame, counts: pl.DataFrame) -> None:
        self.partitions.append(partition)
        self.quarantine.append(quarantine)
        self.counts.append(counts)
        self.rows += quarantine.height
        if self.rows >= self.FLUSH_ROWS or len(self.partitions) >= self.FLUSH_PARTITIONS:
            self._flush(self.conn, loaded=False)

    def _flush(self, conn: psycopg.Connection, *, loaded: bool) -> None:
        if not self.partitions:
            return
        reconciliation = pl.concat(self.counts)
        record_silver(
            conn,
            feed=self.feed,
            partitions=self.partitions,
            quarantine=pl.concat(self.quarantine),
            reconciliation=reconciliation,
            registry=self.registry,
            loaded=loaded,
        )
        if not loaded and "_source_file" in reconciliation.columns:
            self.stored_files.extend(reconciliation.get_column("_source_file").to_list())
        self.partitions, self.quarantine, self.counts, self.rows = [], [], [], 0

    def close(self, conn: psycopg.Connection) -> None:
        """Store what waits and mark every file of the run loaded: its partitions are committed.
        ``conn``: the stream's connection is closed by the time the IO manager has committed."""
        self._flush(conn, loaded=True)
        mark_loaded(conn, self.stored_files)
        self.stored_files = []


TYPES_CHECK = "columns_keep_their_types"


def _types_result(key: list[str], drift: pl.DataFrame) -> dg.AssetCheckResult:
    table = ["| file | column | rule | rows | of |", "|---|---|---|---:|---:|"]
    table += [f"| `{f[:100]}` | {c} | {r} | {n} | {of} |" for f, c, r, n, of in drift.head(50).iter_rows()]
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(key),
        check_name=TYPES_CHECK,
        passed=drift.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "files_with_type_change": drift.get_column("_source_file").n_unique() if drift.height else 0,
            "failures_by_rule": dg.MetadataValue.json(
                {f"{c} ({r})": n for c, r, n in drift.group_by("column", "rule").agg(pl.len()).iter_rows()}
            ),
            "failing_rows": int(drift.get_column("rows").sum()) if drift.height else 0,
            "files": dg.MetadataValue.md("\n".join(table)),
        },
        description=None
        if drift.is_empty()
        else "type or format changed: "
        + ", ".join(
            sorted({f"{c} in {f.rsplit('/', 1)[-1]}" for f, c in drift.select("_source_file", "column").iter_rows()})[
                :5
            ]
        ),
    )


def _silver_asset(feed: str, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=["silver", feed],
        group_name="silver",
        owners=OWNERS,
        kinds={"polars", "spark", "parquet"},
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=RETRY,
        io_manager_key="lake_io_manager",
        ins={"bronze": dg.AssetIn(key=["bronze", feed])},
        description=f"Silver {feed}: {_ROW_MEANING[feed]}.",
        metadata={"dagster/column_schema": table_schema_from_model(SILVER_MODELS[feed])},
        check_specs=[
            model_check_spec(["silver", feed], SILVER_MODELS[feed], blocking=True),
            dg.AssetCheckSpec(
                TYPES_CHECK,
                asset=["silver", feed],
                description="No file has most of a column's values unreadable as its type (at least"
                f" {TYPE_DRIFT_MIN_ROWS} rows, {TYPE_DRIFT_SHARE:.0%} of the file): the partner changed the column's"
                " type or format. Also on the ledger's schema_drift (type_changed).",
            ),
        ],
    )
    def silver(
        context: dg.AssetExecutionContext,
        bronze: dict[str, pl.LazyFrame],
        registry: RegistryResource,
        warehouse: WarehouseResource,
        lake: StoreResource,
        engine: EngineResource,
    ) -> Iterator[dg.Output[PartitionStream] | dg.Output[WrittenPartitions] | dg.AssetCheckResult]:
        yield from clean_silver(feed, context, bronze, registry, warehouse, lake, engine)

    return silver


def clean_silver(
    feed: str,
    context: Step,
    bronze: Mapping[str, pl.LazyFrame],
    registry: RegistryResource,
    warehouse: WarehouseResource,
    lake: StoreResource,
    engine: EngineResource,
) -> Iterator[dg.Output[PartitionStream] | dg.Output[WrittenPartitions] | dg.AssetCheckResult]:
    """Silver of ``feed`` for the step's partitions from their ``bronze`` scans: the asset's body,
    and a set run's (``defs/landing.py``). Its stream's ``partition_summary`` gives each
    partition's rows in and quarantined by rule, and the checks it failed."""
    reg, now = registry.load(), datetime.now(UTC)
    mappings = reg.mappings  # the same registry's tables (a second load() may see a newer registry)
    store = lake.store()
    check = ModelCheck(["silver", feed], SILVER_MODELS[feed])
    totals: Counter[str] = Counter()
    by_rule: Counter[str] = Counter()
    by_partition: dict[str, dict[str, int]] = {}
    figures: dict[str, dict[str, object]] = {}  # each partition's own, for a set run
    drifted: list[pl.DataFrame] = []
    waiting: list[_QuarantineBatch] = []  # the stream's ops rows, files not yet marked loaded

    empty: tuple[SilverResult, pl.DataFrame] | None = None
    # Sales lines are judged by their product's category's ceilings where gold knows the product.
    products: pl.DataFrame | None = None

    def clean(raw: pl.DataFrame, seen: pl.DataFrame | None) -> tuple[SilverResult, pl.DataFrame]:
        """Silver of one chunk and its per-file counts. An empty chunk (a date x source of the
        run's rectangle with no file: most of a weekly partner's days) is cleaned once per run,
        not once per partition: the plan is the same every time and costs ~20 collects."""
        nonlocal empty
        if raw.height:
            result = clean_feed(feed, raw, registry=reg, mappings=mappings, now=now, seen=seen, products=products)
            return result, reconcile(raw, result)
        if empty is None:
            result = clean_feed(feed, empty_bronze(feed), registry=reg, mappings=mappings, now=now)
            empty = (result, reconcile(empty_bronze(feed), result))
        return empty

    def loaded(key: str, rows_in: int, valid: pl.DataFrame) -> tuple[str, pl.DataFrame]:
        totals["rows_in"] += rows_in
        totals["rows_loaded"] += valid.height
        return key, check.frame(valid, key)

    def finish(key: str, quarantine: pl.DataFrame, file_counts: pl.DataFrame, pending: _QuarantineBatch) -> None:
        """A partition's quarantine file, counts, ``ops`` rows and type drift, once its silver
        rows are out."""
        day, source = split_key(key)
        write_partition(store, quarantine_table(feed), {DATE: day.isoformat(), SOURCE: source}, quarantine)
        totals["rows_quarantined"] += quarantine.height
        counts_of_partition = (
            dict(quarantine.group_by("rule").len().sort("rule").iter_rows()) if quarantine.height else {}
        )
        by_rule.update(counts_of_partition)
        rows_in = file_counts.get_column("rows_in").sum() if "rows_in" in file_counts.columns else 0
        figures[key] = {
            "rows_in": int(rows_in or 0),
            "rows_quarantined": quarantine.height,
            "quarantined_by_rule": dg.MetadataValue.json(
                {str(rule): int(n) for rule, n in counts_of_partition.items()}
            ),
        }
        if counts_of_partition and len(by_partition) < _PARTITIONS_IN_METADATA:
            by_partition[key] = {str(rule): int(n) for rule, n in counts_of_partition.items()}
        pending.add((day, source), quarantine, file_counts)
        if quarantine.height:  # a type change needs quarantined rows
            drift = type_drift(feed, quarantine, file_counts)
            if drift.height:
                drifted.append(drift)

    def alone(
        key: str, pieces: Iterable[pl.DataFrame], pending: _QuarantineBatch
    ) -> Iterator[tuple[str, pl.DataFrame]]:
        """One partition cleaned by itself, a chunk at a time (keys loaded so far as ``seen``)."""
        seen: pl.DataFrame | None = None
        quarantined: list[pl.DataFrame] = []
        counts: list[pl.DataFrame] = []
        for raw in pieces:
            if not raw.columns:
                raw = empty_bronze(feed)
            result, count = clean(raw, seen)
            if result.keys is not None and result.keys.height:
                seen = result.keys if seen is None else pl.concat([seen, result.keys])
            quarantined.append(result.quarantine)
            counts.append(count)
            yield loaded(key, raw.height, result.valid)
        quarantine = quarantined[0] if len(quarantined) == 1 else pl.concat(quarantined)
        finish(key, quarantine, _sum_counts(counts), pending)

    def together(batch: _Batch, pending: _QuarantineBatch) -> Iterator[tuple[str, pl.DataFrame]]:
        """A batch's partitions cleaned in one call, then handed out by file, in key order."""
        frames = [raw for _, raw in batch.members if raw is not None]
        if len(frames) < 2:
            for key, raw in batch.members:
                yield from alone(key, [raw if raw is not None else empty_bronze(feed)], pending)
            return
        result, count = clean(pl.concat(frames), None)
        owner = pl.concat(
            raw.select(pl.col("_source_file").unique(), pl.lit(i, pl.Int32).alias("__member"))
            for i, raw in enumerate(frames)
        )
        valid, quarantine, counts = (
            _split_by_file(frame, owner, len(frames)) for frame in (result.valid, result.quarantine, count)
        )
        member = 0
        for key, raw in batch.members:
            if raw is None:
                yield from alone(key, [empty_bronze(feed)], pending)
                continue
            yield loaded(key, raw.height, valid[member])
            finish(key, quarantine[member], counts[member], pending)
            member += 1

    def chunks() -> Iterator[tuple[str, pl.DataFrame]]:
        """Every partition of the run in key order. Consecutive small partitions are cleaned
        together (``BATCH_ROWS``), a big one alone in chunks; each partition's rows, quarantine
        and counts are the same as if it had been cleaned alone (tested)."""
        nonlocal products
        schema = bronze_schema(feed)
        with warehouse.connect() as conn:
            if feed == "sales":
                products = known_products(conn, {split_key(key)[1] for key in context.partition_keys})
            pending = _QuarantineBatch(conn, feed, reg)
            batch = _Batch()
            for key in context.partition_keys:
                scan = bronze.get(key)
                if scan is None:
                    batch.add(key, None, set(), set())
                    continue
                pieces = iter_chunks(scan, CHUNK_ROWS)
                first = next(pieces)
                if not first.height:
                    batch.add(key, None, set(), set())
                    continue
                small = first.height < CHUNK_ROWS  # iter_chunks read the whole partition
                raw = _batchable(first, schema) if small else None
                if raw is None:
                    yield from together(batch, pending)
                    batch = _Batch()
                    yield from alone(key, chain([first], pieces), pending)
                    continue
                files = set(raw.get_column("_source_file").unique().to_list())
                cells = set(raw.select("_provider", "_business_date").unique().iter_rows())
                if not batch.takes(raw, files, cells):
                    yield from together(batch, pending)
                    batch = _Batch()
                batch.add(key, raw, files, cells)
            yield from together(batch, pending)
            waiting.append(pending)  # closed once the IO manager has committed every partition
        if by_rule:
            context.log.info(f"quarantined {sum(by_rule.values())} {feed} rows: {dict(by_rule)}")

    detail = detailed(context.partition_keys)

    def summary() -> dict[str, object]:
        return {
            "rows_in": totals["rows_in"],
            "rows_quarantined": totals["rows_quarantined"],
            "quarantined_by_rule": dg.MetadataValue.json(dict(sorted(by_rule.items()))),
            # A range run's metadata goes on each of its partitions: each finds its own counts
            # here, in a run of a few partitions (in a backfill: ops.quarantine, resight quality).
            **({"quarantined_by_partition": dg.MetadataValue.json(by_partition)} if detail else {}),
            "quarantine_table": f"ops.quarantine (feed = '{feed}'); lake {'/'.join(quarantine_table(feed))}/",
        }

    def on_spark() -> WrittenPartitions:
        """The run's partitions cleaned on Spark in one plan (``docs/engines.md``): bronze read
        and silver written by Spark, partition by partition as the Polars path writes them;
        the quarantine and per-file counts (small) come to this process and go the Polars
        path's way (lake, ``ops``, type drift); the model check reads each partition back."""
        spark = engine.spark_session
        keys = [str(key) for key in context.partition_keys]
        with warehouse.connect() as conn:
            products = known_products(conn, {source for _, source in map(split_key, keys)}) if feed == "sales" else None
            cleaned = clean_on_spark(
                spark,
                lake.url,
                feed,
                keys,
                registry=reg,
                mappings=mappings,
                now=now,
                products=products,
                **lake.store_options(),
            )
            pending = _QuarantineBatch(conn, feed, reg)
            for key in keys:
                file_counts = cleaned.counts_of(key)
                totals["rows_in"] += int(file_counts.get_column("rows_in").sum())
                stored = read_table(store, ["silver", feed], [lake_partition(key)])
                if stored.collect_schema().names():  # the model check of what Spark wrote
                    for chunk in iter_chunks(stored, CHUNK_ROWS):
                        loaded(key, 0, chunk)
                finish(key, cleaned.quarantine_of(key), file_counts, pending)
            pending.close(conn)  # Spark has written every partition
        spark.catalog.clearCache()
        if by_rule:
            context.log.info(f"quarantined {sum(by_rule.values())} {feed} rows on Spark: {dict(by_rule)}")
        return WrittenPartitions(
            uris=cleaned.uris, rows=totals["rows_loaded"], partitions=len(cleaned.uris), summary=summary()
        )

    if engine_for(context) == "spark":
        yield dg.Output(on_spark())
    else:
        # The IO manager consumes the stream before the generator resumes: the check sees every row.
        yield dg.Output(
            PartitionStream(
                chunks(), summary, partition_summary=lambda key: {**figures.get(key, {}), **checks_failed(key, check)}
            )
        )
        # Resumed only once every partition's file is committed (a failed write never gets here).
        with warehouse.connect() as conn:
            for pending in waiting:
                pending.close(conn)
    yield check.result()
    drift = pl.concat(drifted) if drifted else type_drift(feed, pl.DataFrame(), pl.DataFrame())
    if drift.height:
        with warehouse.connect() as conn:
            record_type_drift(conn, drift)
    yield _types_result(["silver", feed], drift)


def silver_assets(partitions_def: dg.PartitionsDefinition) -> list[dg.AssetsDefinition]:
    return [_silver_asset(feed, partitions_def) for feed in FEEDS]
