"""Gold: conformed dimensions and ``fact_sales`` from silver, on Polars or on Spark.

Each function runs on the engine of the frame it is given (``docs/engines.md``): Polars frames in,
Polars DataFrames out (as the platform's assets use them); PySpark DataFrames in, lazy PySpark
DataFrames out. The fact's joins are written once, in Narwhals. The dimensions are not: their
surrogate keys are BLAKE2b in Python per row, which neither engine's expressions can compute, and
a dimension is small (a partner's catalog, stores, customers), so on Spark the latest row of each
member is chosen on Spark, only those rows are collected to the driver (through Arrow), the
dimension is built there with the Polars code below, and handed back to Spark for the fact joins.

Surrogate keys are a stable 63-bit hash of the natural key (BLAKE2b), so the same member gets the
same key on every run and in every environment, and facts can be built one date at a time.
Key 0 is each dimension's "unknown" member: a sale whose product, store or customer is not (yet)
in the partner's catalog, store list or customer list keeps its row on key 0, with the partner's
own natural key beside it (``sku``, ``store_id``, ``customer_id``), so that it is resolved to the
real member when the facts are built again after that dimension lands (a late-arriving
dimension: ``docs/architecture.md``). A null store or customer key means there is none (an online
sale, an anonymous one), not an unknown one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import narwhals as nw
import polars as pl

from resight_platform.engines import engine_of, from_polars, lazy_like, to_polars
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import Registry

__all__ = [
    "UNKNOWN_KEY",
    "build_dim_customer",
    "build_dim_date",
    "build_dim_product",
    "build_dim_provider",
    "build_dim_store",
    "build_fact_sales",
    "date_key",
    "stable_key",
]

#: A frame of either engine: a Polars DataFrame or LazyFrame, or a PySpark DataFrame (classic or
#: Connect). The functions below return a Polars DataFrame for the first, a PySpark DataFrame for
#: the second.
Frame = Any

UNKNOWN_KEY = 0
_LATEST_FIRST = ["business_date", "_source_file", "_row_number"]


def date_key(day: pl.Expr) -> pl.Expr:
    """``YYYYMMDD`` as an integer: the key of ``dim_date``."""
    return (
        day.dt.year().cast(pl.Int32) * 10000 + day.dt.month().cast(pl.Int32) * 100 + day.dt.day().cast(pl.Int32)
    ).alias("date_key")


def _hash63(text: str) -> int:
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & (2**63 - 1)
    return value or 1


def provider_key(provider: str) -> int:
    """The surrogate key of a provider in ``dim_provider`` (and of its rows in ``fact_sales``)."""
    return _hash63(provider)


def stable_key(frame: pl.DataFrame, columns: list[str], name: str) -> pl.DataFrame:
    """Add a BIGINT surrogate key hashed from ``columns`` (joined with ``|``)."""
    natural = frame.select(pl.concat_str([pl.col(c).fill_null("") for c in columns], separator="|")).to_series()
    keys = pl.Series(name, [_hash63(v) for v in natural.to_list()], dtype=pl.Int64)
    return frame.with_columns(keys).select([name, *frame.columns])


def _latest(frame: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    """The most recently delivered row per natural key (later business date, then file, then row)."""
    return frame.sort(_LATEST_FIRST, descending=True, nulls_last=True).unique(subset=keys, keep="first")


def build_dim_date(start: date, end: date) -> pl.DataFrame:
    """One row per calendar day in [start, end]."""
    days = pl.date_range(start, end, interval="1d", eager=True).alias("date")
    frame = pl.DataFrame(days)
    return frame.select(
        date_key(pl.col("date")),
        pl.col("date"),
        pl.col("date").dt.year().cast(pl.Int16).alias("year"),
        pl.col("date").dt.quarter().cast(pl.Int16).alias("quarter"),
        pl.col("date").dt.month().cast(pl.Int16).alias("month"),
        pl.col("date").dt.month_start().alias("month_start"),
        (pl.col("date") - pl.duration(days=pl.col("date").dt.weekday() - 1)).alias("week_start"),
        pl.col("date").dt.weekday().cast(pl.Int16).alias("day_of_week"),
        (pl.col("date").dt.weekday() >= 6).alias("is_weekend"),
    )


def dim_date_range(partitions_start: str, today: date) -> tuple[date, date]:
    """dim_date covers the partition range plus a year ahead (forecasts need future weeks)."""
    return date.fromisoformat(partitions_start) - timedelta(days=366), today + timedelta(days=366)


def build_dim_provider(registry: Registry) -> pl.DataFrame:
    rows = [
        {
            "provider": p.provider,
            "provider_name": p.name,
            "kind": p.kind,
            "timezone": p.timezone,
            "currency": p.currency,
        }
        for p in sorted(registry.providers.values(), key=lambda p: p.provider)
    ]
    frame = pl.DataFrame(
        rows, schema={c: pl.Utf8 for c in ("provider", "provider_name", "kind", "timezone", "currency")}
    )
    return stable_key(frame, ["provider"], "provider_key")


_STORE_COLUMNS = ["provider", "store_id", "store_name", "city", "state", "zip", "region"]
_PRODUCT_COLUMNS = [
    "provider",
    "sku",
    "upc",
    "product_name",
    "brand",
    "manufacturer",
    "category",
    "species",
    "pack_size",
    "pack_unit",
    "list_price",
]
_CUSTOMER_COLUMNS = ["provider", "customer_id", "signup_date", "state", "pet_species"]


def _on_driver(
    silver: Frame, keys: list[str], columns: list[str], build: Callable[[pl.LazyFrame], pl.DataFrame]
) -> Frame:
    """``build`` (Polars, with the BLAKE2b keys) over ``silver``: directly on a Polars frame; on
    Spark over the latest row of each member only (chosen on Spark, collected through Arrow), its
    result handed back to ``silver``'s Spark session."""
    if engine_of(silver) == "polars":
        return build(silver.lazy())
    frame = nw.from_native(silver).lazy()
    if not frame.collect_schema().names():
        return from_polars(silver, build(pl.LazyFrame()))
    # The last row in (business date, file, row) order is the first of _latest's descending sort.
    latest = frame.select(*dict.fromkeys([*keys, *columns, *_LATEST_FIRST])).filter(
        nw.col("_row_number").cum_count().over(*keys, order_by=_LATEST_FIRST) == nw.len().over(*keys)
    )
    return from_polars(silver, build(to_polars(latest).lazy()))


def build_dim_store(silver_stores: Frame) -> Frame:
    """One row per (provider, store id): its latest delivered attributes, keyed ``store_key``."""
    return _on_driver(silver_stores, ["provider", "store_id"], _STORE_COLUMNS, _dim_store)


def _dim_store(silver_stores: pl.LazyFrame) -> pl.DataFrame:
    columns = _STORE_COLUMNS
    if not silver_stores.collect_schema().names():
        return stable_key(pl.DataFrame(schema={c: pl.Utf8 for c in columns}), ["provider", "store_id"], "store_key")
    latest = _latest(silver_stores, ["provider", "store_id"]).select(columns).sort(["provider", "store_id"])
    return stable_key(latest.collect(), ["provider", "store_id"], "store_key")


def build_dim_product(silver_catalog: Frame) -> Frame:
    """One row per (provider, sku): its latest catalog attributes, keyed ``product_key``."""
    return _on_driver(silver_catalog, ["provider", "sku"], _PRODUCT_COLUMNS, _dim_product)


def _dim_product(silver_catalog: pl.LazyFrame) -> pl.DataFrame:
    columns = _PRODUCT_COLUMNS
    if not silver_catalog.collect_schema().names():
        schema = {c: pl.Utf8 for c in columns} | {"pack_size": pl.Float64, "list_price": pl.Float64}
        return stable_key(pl.DataFrame(schema=schema), ["provider", "sku"], "product_key")
    latest = _latest(silver_catalog, ["provider", "sku"]).select(columns).sort(["provider", "sku"])
    return stable_key(latest.collect(), ["provider", "sku"], "product_key")


def build_dim_customer(silver_customers: Frame, mappings: Mappings) -> Frame:
    """One row per (provider, customer id): its latest attributes and its state's region, keyed
    ``customer_key``."""
    return _on_driver(
        silver_customers,
        ["provider", "customer_id"],
        _CUSTOMER_COLUMNS,
        lambda customers: _dim_customer(customers, mappings),
    )


def _dim_customer(silver_customers: pl.LazyFrame, mappings: Mappings) -> pl.DataFrame:
    columns = _CUSTOMER_COLUMNS
    if not silver_customers.collect_schema().names():
        schema = {c: pl.Utf8 for c in columns} | {"signup_date": pl.Date, "region": pl.Utf8}
        return stable_key(pl.DataFrame(schema=schema), ["provider", "customer_id"], "customer_key")
    latest = _latest(silver_customers, ["provider", "customer_id"]).select(columns).sort(["provider", "customer_id"])
    frame = latest.collect().with_columns(_region(pl.col("state"), mappings).alias("region"))
    return stable_key(frame, ["provider", "customer_id"], "customer_key")


def _region(state: pl.Expr, mappings: Mappings) -> pl.Expr:
    return state.replace_strict(mappings.regions, default=None, return_dtype=pl.Utf8)


FACT_COLUMNS = [
    "sale_date",
    "date_key",
    "provider_key",
    "product_key",
    "store_key",
    "customer_key",
    "provider",
    "sku",
    "store_id",
    "customer_id",
    "order_id",
    "line_no",
    "ordered_at",
    "channel",
    "quantity",
    "unit_price",
    "discount",
    "net_amount",
    "status",
    "ship_state",
    "region",
    "source_file",
]


def build_fact_sales(
    silver_sales: Frame,
    *,
    dim_provider: Frame,
    dim_product: Frame,
    dim_store: Frame,
    dim_customer: Frame,
    mappings: Mappings,
) -> Frame:
    """One row per valid sales line, keyed to the dimensions; grain (date, provider, order, line).

    The partner's natural keys (``provider``, ``sku``, ``store_id``, ``customer_id``) are kept
    beside the surrogate keys. A product, store or customer the partner named but its dimension
    does not (yet) hold gets key 0 (:data:`UNKNOWN_KEY`); a sale with no store (online) or no
    customer (anonymous) has a null key. ``region`` is the store's region for store sales and the
    ship-to state's region online (null for a store not yet known).

    On Polars the result is collected and sorted by (provider key, order, line); on Spark it is a
    lazy DataFrame in no particular order (a global sort of the facts would be a shuffle for
    nothing: the lake's writer partitions them). Dimensions may be given on either engine: they
    are moved to the sales' engine.
    """
    sales = nw.from_native(silver_sales).lazy()
    if not sales.collect_schema().names():
        empty = empty_fact_sales()
        return empty if engine_of(silver_sales) == "polars" else from_polars(silver_sales, empty)
    products = lazy_like(silver_sales, dim_product).select("provider", "sku", "product_key")
    stores = lazy_like(silver_sales, dim_store).select(
        "provider", "store_id", "store_key", nw.col("region").alias("_store_region")
    )
    customers = lazy_like(silver_sales, dim_customer).select("provider", "customer_id", "customer_key")
    providers = lazy_like(silver_sales, dim_provider).select("provider", "provider_key")
    fact = (
        sales.join(providers, on="provider", how="left")
        .join(products, on=["provider", "sku"], how="left")
        .join(stores, on=["provider", "store_id"], how="left")
        .join(customers, on=["provider", "customer_id"], how="left")
        .join(_regions_of_states(silver_sales, mappings), on="ship_state", how="left")
        .with_columns(
            nw.col("business_date").alias("sale_date"),
            _date_key(nw.col("business_date")),
            nw.col("product_key").fill_null(UNKNOWN_KEY).cast(nw.Int64()),
            _unknown_if_named("store_key", "store_id"),
            _unknown_if_named("customer_key", "customer_id"),
            nw.coalesce(nw.col("_store_region"), nw.col("_ship_region")).alias("region"),
            nw.col("_source_file").alias("source_file"),
        )
        .select(FACT_COLUMNS)
    )
    if engine_of(silver_sales) == "spark":
        return nw.to_native(fact)
    return nw.to_native(fact.sort("provider_key", "order_id", "line_no")).collect()


def _regions_of_states(like: Frame, mappings: Mappings) -> nw.LazyFrame:
    """The mappings' region of each state, as a small frame to join on ``ship_state``: a join, not
    ``replace_strict``, which Spark Connect cannot run."""
    regions = pl.DataFrame(
        {"ship_state": list(mappings.regions), "_ship_region": list(mappings.regions.values())},
        schema={"ship_state": pl.Utf8, "_ship_region": pl.Utf8},
    )
    return nw.from_native(from_polars(like, regions)).lazy()


def _date_key(day: nw.Expr) -> nw.Expr:
    """:func:`date_key` in Narwhals (Int32 on both engines)."""
    return (
        (day.dt.year().cast(nw.Int32()) * 10000 + day.dt.month().cast(nw.Int32()) * 100 + day.dt.day().cast(nw.Int32()))
        .cast(nw.Int32())
        .alias("date_key")
    )


def _unknown_if_named(key: str, natural: str) -> nw.Expr:
    """``key``, or the unknown member's when the sale names a ``natural`` key the dimension lacks."""
    return (
        nw.when(~nw.col(natural).is_null() & nw.col(key).is_null())
        .then(nw.lit(UNKNOWN_KEY, dtype=nw.Int64()))
        .otherwise(nw.col(key))
        .cast(nw.Int64())
        .alias(key)
    )


def empty_fact_sales() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {
        "sale_date": pl.Date(),
        "date_key": pl.Int32(),
        "provider_key": pl.Int64(),
        "product_key": pl.Int64(),
        "store_key": pl.Int64(),
        "customer_key": pl.Int64(),
        "provider": pl.Utf8(),
        "sku": pl.Utf8(),
        "store_id": pl.Utf8(),
        "customer_id": pl.Utf8(),
        "order_id": pl.Utf8(),
        "line_no": pl.Int32(),
        "ordered_at": pl.Datetime("us", "UTC"),
        "channel": pl.Utf8(),
        "quantity": pl.Int32(),
        "unit_price": pl.Float64(),
        "discount": pl.Float64(),
        "net_amount": pl.Float64(),
        "status": pl.Utf8(),
        "ship_state": pl.Utf8(),
        "region": pl.Utf8(),
        "source_file": pl.Utf8(),
    }
    return pl.DataFrame(schema=schema)
