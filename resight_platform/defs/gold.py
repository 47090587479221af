"""Gold: the star schema in Postgres (and Parquet in the lake) and the marts built on it."""

import functools
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dagster as dg
import polars as pl

from resight_platform.defs.checks import (
    FACT_KEYS,
    KeysCheck,
    ModelCheck,
    Reconciliation,
    checks_failed,
    fact_check_specs,
    model_check_spec,
)
from resight_platform.defs.jobs import GOLD_FACTS_JOB
from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.mart_checks import mart_metadata, top_result, totals_check_spec, totals_result
from resight_platform.defs.metadata import (
    OWNERS,
    RANGE_END,
    RANGE_START,
    detailed,
    markdown_preview,
    run_partition_set,
    table_schema_from_model,
)
from resight_platform.defs.partitions import DATE, SOURCE, lake_partition, source_key_column, split_key
from resight_platform.defs.policies import FACTS_IN_RUN, RETRY
from resight_platform.defs.sensors import TRIGGER_TAG
from resight_platform.defs.spark_facts import facts_on_spark
from resight_platform.engines import from_polars, to_polars
from resight_platform.io import spark_lake
from resight_platform.io.lake import PartitionStream, iter_chunks, partition_path, read_all, read_table
from resight_platform.io.postgres import upsert
from resight_platform.io.storage import open_store
from resight_platform.io.warehouse import fact_sales_totals, late_resolvable_partitions
from resight_platform.resources import (
    EngineResource,
    RegistryResource,
    Step,
    StoreResource,
    WarehouseResource,
    engine_for,
)
from resight_platform.schemas import gold as models
from resight_platform.transforms import gold, marts

__all__ = [
    "LATE_DIMENSION_SENSOR",
    "build_facts",
    "consecutive_days",
    "gold_assets",
    "late_dimension_sensor",
    "split_by_date",
]

_KINDS = {"polars", "postgres", "parquet"}


def split_by_date(frame: pl.DataFrame, partition_keys: Sequence[str]) -> dict[str, pl.DataFrame]:
    """One frame per daily partition key of the run, by ``sale_date`` (empty where no rows), in one pass."""
    groups = {day.isoformat(): group for (day,), group in frame.group_by("sale_date", maintain_order=True)}
    empty = frame.clear()
    return {key: groups.get(key, empty) for key in partition_keys}


def _checked(
    key: list[str], model: type, frame: pl.DataFrame, metadata: dict[str, dg.MetadataValue] | None = None
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    """The output of an unpartitioned table (row count and preview, or ``metadata``) and its
    ``matches_model`` result."""
    check = ModelCheck(key, model)
    check.frame(frame)
    metadata = metadata or {"dagster/row_count": dg.MetadataValue.int(frame.height), "preview": markdown_preview(frame)}
    yield dg.Output(frame, metadata=metadata)
    yield check.result()


def _dimension(
    name: str,
    key: list[str],
    model: type,
    doc: str,
    build: Callable[..., pl.DataFrame],
    reads: dict[str, list[str]] | None = None,
) -> dg.AssetsDefinition:
    """A dimension built by ``build(registry, **tables)`` from the partitioned silver ``reads``
    (argument name → asset key), each read whole from the lake (:func:`read_all`)."""
    reads = reads or {}

    @dg.asset(
        key=["gold", name],
        group_name="gold",
        owners=OWNERS,
        kinds=_KINDS,
        deps=[dg.AssetKey(path) for path in reads.values()],
        io_manager_key="warehouse_io_manager",
        retry_policy=RETRY,
        description=doc,
        metadata={
            "pg_mode": "upsert",
            "pg_key": key,
            "dagster/column_schema": table_schema_from_model(model),
        },
        check_specs=[model_check_spec(["gold", name], model, blocking=True)],
    )
    def dimension(
        context: dg.AssetExecutionContext, registry: RegistryResource, lake: StoreResource
    ) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
        store = lake.store()
        tables = {argument: read_all(store, path) for argument, path in reads.items()}
        yield from _checked(["gold", name], model, build(registry, **tables))

    return dimension


def _dims(partitions_start: str) -> list[dg.AssetsDefinition]:
    def dim_date(registry: RegistryResource) -> pl.DataFrame:
        start, end = gold.dim_date_range(partitions_start, datetime.now(UTC).date())
        return gold.build_dim_date(start, end)

    return [
        _dimension("dim_date", ["date_key"], models.DimDate, "One row per calendar day.", dim_date),
        _dimension(
            "dim_provider",
            ["provider_key"],
            models.DimProvider,
            "One row per registered partner.",
            lambda registry: gold.build_dim_provider(registry.load()),
        ),
        _dimension(
            "dim_store",
            ["store_key"],
            models.DimStore,
            "One row per provider location, latest delivered attributes.",
            lambda registry, stores: gold.build_dim_store(stores),
            reads={"stores": ["silver", "stores"]},
        ),
        _dimension(
            "dim_product",
            ["product_key"],
            models.DimProduct,
            "One row per provider product (provider, sku), latest delivered attributes.",
            lambda registry, catalog: gold.build_dim_product(catalog),
            reads={"catalog": ["silver", "catalog"]},
        ),
        _dimension(
            "dim_customer",
            ["customer_key"],
            models.DimCustomer,
            "One row per provider loyalty customer, latest delivered attributes.",
            lambda registry, customers: gold.build_dim_customer(customers, registry.mappings()),
            reads={"customers": ["silver", "customers"]},
        ),
    ]


def _fact_sales(medallion: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=FACT_SALES,
        group_name="gold",
        owners=OWNERS,
        kinds=_KINDS,
        partitions_def=medallion,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=RETRY,
        io_manager_key="warehouse_io_manager",
        ins={
            "sales": dg.AssetIn(key=["silver", "sales"]),
            "dim_provider": dg.AssetIn(key=["gold", "dim_provider"]),
            "dim_product": dg.AssetIn(key=["gold", "dim_product"]),
            "dim_store": dg.AssetIn(key=["gold", "dim_store"]),
            "dim_customer": dg.AssetIn(key=["gold", "dim_customer"]),
        },
        deps=[dg.AssetKey(["gold", "dim_date"])],
        description=(
            "One row per valid sales line item, keyed to the dimensions; partitioned like silver (date × source),"
            " so one partner's file replaces only its own rows of the day."
        ),
        metadata={
            "pg_mode": "partition",
            "pg_partition_column": "sale_date",
            "partition_expr": "sale_date",
            "dagster/column_schema": table_schema_from_model(models.FactSales),
        },
        check_specs=[model_check_spec(FACT_SALES.path, models.FactSales, blocking=True), *fact_check_specs()],
    )
    def fact_sales(
        context: dg.AssetExecutionContext,
        registry: RegistryResource,
        warehouse: WarehouseResource,
        sales: dict[str, pl.LazyFrame],
        dim_provider: pl.LazyFrame,
        dim_product: pl.LazyFrame,
        dim_store: pl.LazyFrame,
        dim_customer: pl.LazyFrame,
        lake: StoreResource,
        engine: EngineResource,
    ) -> Iterator[dg.Output[PartitionStream] | dg.AssetCheckResult]:
        yield from build_facts(
            context, registry, warehouse, sales, dim_provider, dim_product, dim_store, dim_customer, lake, engine
        )

    return fact_sales


def build_facts(
    context: Step,
    registry: RegistryResource,
    warehouse: WarehouseResource,
    sales: Mapping[str, pl.LazyFrame],
    dim_provider: pl.LazyFrame,
    dim_product: pl.LazyFrame,
    dim_store: pl.LazyFrame,
    dim_customer: pl.LazyFrame,
    lake: StoreResource,
    engine: EngineResource,
) -> Iterator[dg.Output[PartitionStream] | dg.AssetCheckResult]:
    """``gold.fact_sales`` for the step's partitions from their silver ``sales``: the asset's body,
    and a set run's (``defs/landing.py``). Its stream's ``partition_summary`` gives each
    partition's silver lines and net amount, and the checks it failed."""
    mappings = registry.mappings()
    check = ModelCheck(FACT_SALES.path, models.FactSales)
    silver_totals: dict[str, tuple[int, int]] = {}
    # The dimensions are read once; the sales stream through them a chunk at a time.
    providers = {split_key(key)[1] for key in context.partition_keys}
    dims = {
        "dim_provider": _with_registered_providers(context, warehouse, registry, dim_provider, providers),
        "dim_product": dim_product.collect().lazy(),
        "dim_store": dim_store.collect().lazy(),
        "dim_customer": dim_customer.collect().lazy(),
    }
    keys = KeysCheck({column: _dimension_keys(dims[dim], column) for column, dim in FACT_KEYS.items()})
    stats: Counter[str] = Counter()
    cents = 0
    preview: list[pl.DataFrame] = []

    def emit(key: str, fact: pl.DataFrame) -> tuple[str, pl.DataFrame]:
        """A chunk of a partition's facts counted and checked on its way to the lake and Postgres."""
        nonlocal cents
        keys.frame(fact, key)
        for column, counter in _UNKNOWN_LINES.items():
            stats[counter] += fact.filter(pl.col(column) == gold.UNKNOWN_KEY).height
        cents += _cents(fact)
        if not preview:
            preview.append(fact.head(5))
        return key, check.frame(fact, key)

    def on_polars() -> Iterator[tuple[str, pl.DataFrame]]:
        # A day's partitions together: the warehouse replaces a day at a time when it can.
        for key in sorted(context.partition_keys, key=split_key):
            produced = False
            scan = sales.get(key)
            lines, in_cents = silver_totals.setdefault(key, (0, 0))
            for piece in iter_chunks(scan) if scan is not None else ():
                if not piece.height:
                    continue
                lines, in_cents = lines + piece.height, in_cents + _cents(piece)
                silver_totals[key] = (lines, in_cents)
                produced = True
                yield emit(key, gold.build_fact_sales(piece.lazy(), **dims, mappings=mappings))
            if not produced:
                yield key, gold.empty_fact_sales()

    def on_spark() -> Iterator[tuple[str, pl.DataFrame]]:
        """The run's facts built on Spark in one plan (the dimensions, keyed here, broadcast to
        it), staged in the lake by Spark, then streamed partition by partition into the same
        lake files and Postgres ``COPY`` as the Polars path's (``docs/engines.md``)."""
        from pyspark.sql import functions as F

        spark = engine.spark_session
        ordered = sorted((str(key) for key in context.partition_keys), key=split_key)
        parts = [lake_partition(key) for key in ordered]
        where = lake.store_options()
        silver: Any = spark_lake.read_table(spark, lake.url, ["silver", "sales"], parts, **where)
        if "net_amount" not in silver.columns:  # no silver rows in the run
            for key in ordered:
                silver_totals[key] = (0, 0)
                yield key, gold.empty_fact_sales()
            return
        # Silver's lines and cents per partition, each row rounded as _cents rounds it.
        counted = silver.groupBy(DATE, SOURCE).agg(
            F.count(F.lit(1)).alias("lines"), F.sum(F.round(F.col("net_amount") * 100, 0)).alias("cents")
        )
        for day, source, lines, in_cents in to_polars(counted).iter_rows():
            silver_totals[f"{day}|{source}"] = (int(lines), int(in_cents or 0))
        on_engine = {name: from_polars(silver, frame.collect()) for name, frame in dims.items()}
        built: Any = gold.build_fact_sales(silver.drop(DATE, SOURCE), **on_engine, mappings=mappings)
        facts = built.withColumns(
            {DATE: F.date_format(F.col("sale_date"), "yyyy-MM-dd"), SOURCE: F.col(source_key_column("sales"))}
        )
        staging = f"{lake.url.rstrip('/')}/{spark_lake.STAGING_DIR}/fact_sales-{context.run_id}"
        spark_lake.write_partitions(
            facts, staging, ["fact_sales"], order_by=("provider_key", "order_id", "line_no"), **where
        )
        staged = open_store(staging, lake.endpoint_url, max_attempts=lake.s3_max_attempts, component=lake.component)
        try:
            for key, values in zip(ordered, parts, strict=True):
                silver_totals.setdefault(key, (0, 0))
                scan = read_table(staged, ["fact_sales"], [values])
                produced = False
                if scan.collect_schema().names():
                    for piece in iter_chunks(scan):
                        if piece.height:
                            produced = True
                            yield emit(key, piece.select(gold.FACT_COLUMNS))
                if not produced:
                    yield key, gold.empty_fact_sales()
                staged.delete(partition_path(["fact_sales"], values))
        finally:
            staged.delete_prefix("")
        spark.catalog.clearCache()

    def chunks() -> Iterator[tuple[str, pl.DataFrame]]:
        yield from (on_spark() if engine_for(context) == "spark" else on_polars())
        unknown = {counter: stats[counter] for counter in _UNKNOWN_LINES.values() if stats[counter]}
        if unknown:
            context.log.warning(
                f"sales lines on an unknown member (named by the partner, not in the dimension yet): {unknown};"
                f" {LATE_DIMENSION_SENSOR} re-resolves them when the dimension lands"
            )

    def summary() -> dict[str, object]:
        metadata: dict[str, object] = {
            "net_amount": cents / 100,
            **{counter: stats[counter] for counter in _UNKNOWN_LINES.values()},
        }
        if detailed(context.partition_keys):
            metadata["preview"] = markdown_preview(preview[0] if preview else gold.empty_fact_sales())
        return metadata

    @functools.cache
    def reconciliation() -> Reconciliation:
        """What Postgres holds for the run's partitions against what silver gave, read once, after
        the write committed (the IO manager composes the partitions' metadata after its commit)."""
        cells = {key: split_key(key) for key in silver_totals}
        with warehouse.connect() as conn:
            committed = fact_sales_totals(
                conn,
                sorted({day for day, _ in cells.values()}),
                sorted({gold.provider_key(source) for _, source in cells.values()}),
            )
        by_key = {key: committed.get((day, gold.provider_key(s)), (0, 0)) for key, (day, s) in cells.items()}
        return Reconciliation(silver_totals, by_key)

    def of_partition(key: str) -> dict[str, object]:
        lines, in_cents = silver_totals.get(key, (0, 0))
        return {
            "silver_lines": lines,
            "net_amount": in_cents / 100,
            **checks_failed(key, check, keys, reconciliation()),
        }

    yield dg.Output(PartitionStream(chunks(), summary, partition_rows=_fact_rows, partition_summary=of_partition))
    yield check.result()
    yield keys.result()
    yield reconciliation().result()


#: Fact lines counted per unknown member, by key column.
_UNKNOWN_LINES = {
    "product_key": "unknown_product_lines",
    "store_key": "unknown_store_lines",
    "customer_key": "unknown_customer_lines",
}


def _with_registered_providers(
    context: Step,
    warehouse: WarehouseResource,
    registry: RegistryResource,
    dim_provider: pl.LazyFrame,
    providers: set[str],
) -> pl.LazyFrame:
    """``dim_provider`` holding every provider of the run's partitions. A partner onboarded since
    the dimension's last run (a registry change the daemon took while files landed) is added from
    the registry in use, upserted as dim_provider's own run would: its first sales get their key and
    load, where a left join on the stale dimension left them without one."""
    known = dim_provider.collect()
    have = set(known.get_column("provider").to_list()) if "provider" in known.columns else set()
    missing = sorted(providers - have)
    if not missing:
        return known.lazy()
    reg = registry.load()
    rows = gold.build_dim_provider(reg).filter(pl.col("provider").is_in(missing))
    if rows.height:
        with warehouse.connect() as conn:
            upsert(conn, "gold", "dim_provider", rows, ["provider_key"])
        context.log.info(
            f"gold.dim_provider lacked {', '.join(rows.get_column('provider').to_list())}: added from registry"
            f" {reg.version} before their first facts"
        )
    return pl.concat([known, rows], how="diagonal_relaxed").lazy() if known.columns else rows.lazy()


def _dimension_keys(dimension: pl.LazyFrame, column: str) -> pl.Series:
    """The keys of a dimension, with its 'unknown' member (an empty dimension has only that)."""
    unknown = pl.Series(column, [gold.UNKNOWN_KEY], dtype=pl.Int64)
    if column not in dimension.collect_schema().names():
        return unknown
    return pl.concat([dimension.select(pl.col(column).cast(pl.Int64)).collect().get_column(column), unknown])


def _cents(frame: pl.DataFrame) -> int:
    """Net amount of ``frame`` in cents, each row rounded as Postgres rounds it (half away from zero)."""
    return int((frame.get_column("net_amount") * 100).round(0).sum() or 0)


def _fact_rows(partition_key: str) -> dict[str, object]:
    """The rows of ``gold.fact_sales`` one date × source partition owns."""
    day, source = split_key(partition_key)
    return {"sale_date": day, "provider_key": gold.provider_key(source)}


_MART_DOCS = {
    "monthly_sales": "One row per month × category × species × region × channel: units, revenue, orders, AOV.",
    "brand_share_monthly": "One row per month × category × species × region × brand: revenue share and its change.",
    "top_products_monthly": "One row per month and rank: the top products by revenue.",
    "top_customers_monthly": "One row per month and rank: the top loyalty customers by revenue.",
    "order_status_impact": "One row per month × category × region × status: lines, amount and share of amount.",
    "aov_by_region": "One row per month × region: orders, revenue and average order value.",
}


def _daily_mart(daily: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        key=["marts", "daily_sales"],
        group_name="marts",
        owners=OWNERS,
        kinds=_KINDS,
        partitions_def=daily,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=RETRY,
        io_manager_key="warehouse_io_manager",
        ins={
            "fact": dg.AssetIn(
                key=FACT_SALES,
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(partition_dimension_name=DATE),
            ),
            "dim_product": dg.AssetIn(key=["gold", "dim_product"]),
        },
        description="One row per day × category × species × region × channel: units, revenue, orders, AOV.",
        metadata={
            "pg_mode": "partition",
            "pg_partition_column": "sale_date",
            "partition_expr": "sale_date",
            "dagster/column_schema": table_schema_from_model(models.DailySales),
        },
        check_specs=[
            model_check_spec(["marts", "daily_sales"], models.DailySales, blocking=False),
            totals_check_spec("daily_sales"),
        ],
    )
    def daily_sales(
        context: dg.AssetExecutionContext,
        fact: pl.LazyFrame,
        dim_product: pl.LazyFrame,
        lake: StoreResource,
        engine: EngineResource,
    ) -> Iterator[dg.Output[dict[str, pl.DataFrame]] | dg.AssetCheckResult]:
        on_spark = facts_on_spark(context, engine, lake, dates=list(context.partition_keys))
        if on_spark is not None:
            fact = on_spark
            frame = to_polars(marts.daily_sales(fact, from_polars(fact, dim_product.collect())))
        else:
            frame = marts.daily_sales(fact, dim_product) if _has_rows(fact) else _empty(models.DailySales)
            fact = _or_empty(fact)
        parts = split_by_date(frame, context.partition_keys)
        check = ModelCheck(["marts", "daily_sales"], models.DailySales)
        for key, part in parts.items():
            check.frame(part, key)
        yield dg.Output(parts, metadata=mart_metadata("daily_sales", frame, detail=detailed(context.partition_keys)))
        yield check.result()
        yield totals_result("daily_sales", frame, fact)

    return daily_sales


def _has_rows(fact: pl.LazyFrame) -> bool:
    """Whether any partition of ``fact`` exists (the IO manager gives a frame with no columns when none does)."""
    return bool(fact.collect_schema().names())


def _or_empty(fact: pl.LazyFrame) -> pl.LazyFrame:
    """``fact``, or an empty fact table when none of its partitions exist, for the checks."""
    return fact if _has_rows(fact) else gold.empty_fact_sales().lazy()


def _empty(model: type) -> pl.DataFrame:
    schema = model.to_schema()  # type: ignore[attr-defined]
    return pl.DataFrame(schema={name: col.dtype.type for name, col in schema.columns.items()})


def _monthly_mart(name: str, model: type, needs_customers: bool) -> dg.AssetsDefinition:
    ins = {"dim_product": dg.AssetIn(key=["gold", "dim_product"])}
    if needs_customers:
        ins["dim_customer"] = dg.AssetIn(key=["gold", "dim_customer"])
    compute = getattr(marts, name)

    @dg.asset(
        key=["marts", name],
        group_name="marts",
        owners=OWNERS,
        kinds=_KINDS,
        retry_policy=RETRY,
        io_manager_key="warehouse_io_manager",
        ins=ins,
        deps=[FACT_SALES],  # read whole from the lake (read_all), not as an input: see read_all
        description=_MART_DOCS[name],
        metadata={"pg_mode": "replace", "dagster/column_schema": table_schema_from_model(model)},
        check_specs=[model_check_spec(["marts", name], model, blocking=False), totals_check_spec(name)],
    )
    def mart(
        context: dg.AssetExecutionContext,
        lake: StoreResource,
        engine: EngineResource,
        dim_product: pl.LazyFrame,
        **extra: pl.LazyFrame,
    ) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
        fact: Any = facts_on_spark(context, engine, lake)
        if fact is not None:
            dims = {
                name: from_polars(fact, frame.collect())
                for name, frame in {"dim_product": dim_product, **extra}.items()
            }
            frame = to_polars(compute(fact, **dims))
        else:
            fact = read_all(lake.store(), FACT_SALES.path)
            frame = compute(fact, dim_product, **extra) if _has_rows(fact) else _empty(model)
            fact = _or_empty(fact)
        yield from _checked(["marts", name], model, frame, mart_metadata(name, frame))
        if name in marts.TOP_KEYS:
            yield top_result(name, frame, fact)
        else:
            yield totals_result(name, frame, fact)

    return mart


def gold_assets(
    partitions_start: str, medallion: dg.PartitionsDefinition, daily: dg.PartitionsDefinition
) -> list[dg.AssetsDefinition]:
    return [
        *_dims(partitions_start),
        _fact_sales(medallion),
        _daily_mart(daily),
        _monthly_mart("monthly_sales", models.MonthlySales, False),
        _monthly_mart("brand_share_monthly", models.BrandShareMonthly, False),
        _monthly_mart("top_products_monthly", models.TopProductsMonthly, False),
        _monthly_mart("top_customers_monthly", models.TopCustomersMonthly, True),
        _monthly_mart("order_status_impact", models.OrderStatusImpact, False),
        _monthly_mart("aov_by_region", models.AovByRegion, False),
    ]


# --- Late-arriving dimensions ----------------------------------------------------------------

LATE_DIMENSION_SENSOR = "late_dimension_sensor"
#: The dimensions a fact may name before they land, by name.
_LATE_DIMENSIONS = {name: dg.AssetKey(["gold", name]) for name in ("dim_product", "dim_store", "dim_customer")}
_IN_FLIGHT = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey) -> tuple[int, float] | None:
    """The storage id and time of ``key``'s latest materialisation, if any."""
    records = instance.fetch_materializations(key, limit=1).records
    return (records[0].storage_id, records[0].timestamp) if records else None


def _facts_in_flight(instance: dg.DagsterInstance, created_before: float) -> bool:
    """Whether a run created before ``created_before`` that may build facts is still going (it may
    have read the dimensions as they were before)."""
    records = instance.get_run_records(
        filters=dg.RunsFilter(statuses=_IN_FLIGHT, created_before=datetime.fromtimestamp(created_before, UTC))
    )
    return any(_builds_facts(r.dagster_run) for r in records)


def _builds_facts(run: dg.DagsterRun) -> bool:
    """Whether ``run`` may build facts: a landing run over a set of partitions when tagged so
    (``FACTS_IN_RUN``), another run when its selection holds them (a run without one may too)."""
    if run_partition_set(run.run_config) is not None:
        return run.tags.get(FACTS_IN_RUN) == "true"
    return FACT_SALES in (run.asset_selection or {FACT_SALES})


def consecutive_days(cells: Sequence[tuple[date, str]]) -> list[tuple[str, date, date]]:
    """``(provider, first day, last day)`` per run of calendar-consecutive days of each provider."""
    runs: list[tuple[str, date, date]] = []
    for day, provider in sorted(cells, key=lambda cell: (cell[1], cell[0])):
        if runs and runs[-1][0] == provider and (day - runs[-1][2]).days == 1:
            runs[-1] = (provider, runs[-1][1], day)
        elif not runs or runs[-1][0] != provider or runs[-1][2] != day:
            runs.append((provider, day, day))
    return runs


def _rebuild_request(provider: str, first: date, last: date, landed: str) -> dg.RunRequest:
    start = dg.MultiPartitionKey({DATE: first.isoformat(), SOURCE: provider})
    end = dg.MultiPartitionKey({DATE: last.isoformat(), SOURCE: provider})
    run_key = f"late-dimension|{start}|{end}|{landed}"
    tags = {TRIGGER_TAG: "late_dimension"}
    if start == end:
        return dg.RunRequest(run_key=run_key, job_name=GOLD_FACTS_JOB, partition_key=str(start), tags=tags)
    return dg.RunRequest(
        run_key=run_key, job_name=GOLD_FACTS_JOB, tags={**tags, RANGE_START: str(start), RANGE_END: str(end)}
    )


@dg.sensor(
    name=LATE_DIMENSION_SENSOR,
    job_name=GOLD_FACTS_JOB,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "When dim_product, dim_store or dim_customer lands, rebuilds the gold.fact_sales date × provider partitions"
        " holding sales on an unknown member (key 0) whose natural key the dimension now holds; the marts follow"
        " the rebuilt facts through automation."
    ),
)
def late_dimension_sensor(
    context: dg.SensorEvaluationContext, warehouse: WarehouseResource
) -> dg.SensorResult | dg.SkipReason:
    seen: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
    latest = {name: _latest(context.instance, key) for name, key in _LATE_DIMENSIONS.items()}
    landed = {name: found for name, found in latest.items() if found is not None and found[0] != seen.get(name)}
    if not landed:
        return dg.SkipReason("no dimension landed since the last evaluation")
    if _facts_in_flight(context.instance, min(at for _, at in landed.values())):
        return dg.SkipReason("waiting for fact runs that started before the dimension landed")
    with warehouse.connect() as conn:
        cells = late_resolvable_partitions(conn)
    cursor = {name: found[0] for name, found in latest.items() if found is not None}
    stamp = ",".join(f"{name}={cursor[name]}" for name in sorted(cursor))
    requests = [_rebuild_request(provider, first, last, stamp) for provider, first, last in consecutive_days(cells)]
    if requests:
        context.log.info(f"{len(cells)} fact partitions re-resolve to members of {sorted(landed)}")
    return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor))
