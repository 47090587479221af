"""Pandera models of the silver tables: the one definition of their columns, dtypes, order,
nullability and value rules (see ``docs/data-contract.md``), plus the quarantine table and the
names and order of the row-level rules that send a bronze row to quarantine.

Allowed values (species, statuses, channels, units, categories, states, regions) are the platform's
vocabularies: the canonical values of the packaged registry's mapping tables
(``resight_platform/sources/registry/mappings/``, ``sources.mappings.vocabulary()``), so adding a
canonical value there is the only change needed.

Every silver table ends with the lineage columns ``_source_file``, ``_row_number`` and
``_from_registry``: the canonical columns (comma-separated) whose value on that row was given by the
registry (a constant or a default) rather than sent by the partner; null when all were sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, ClassVar

import pandera.polars as pa
import polars as pl
from pandera.typing.polars import Series

from resight_platform.sources.mappings import vocabulary
from resight_platform.sources.registry import FEEDS

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "DRIFT_RULES",
    "PLAUSIBILITY_RULES",
    "QUARANTINE_RULES",
    "REGIONS",
    "SILVER_MODELS",
    "SPECIES",
    "STATES",
    "STATUSES",
    "TYPE_RULES",
    "UNITS",
    "VOCABULARY_RULES",
    "Quarantine",
    "SilverCatalog",
    "SilverCustomers",
    "SilverSales",
    "SilverStores",
]

_VOCABULARY = vocabulary()

SPECIES: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("species")))
#: Canonical categories; a category not in the mapping table becomes ``other``.
CATEGORIES: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("categories")))
STATUSES: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("status")))
CHANNELS: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("channels")))
UNITS: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("units")))
STATES: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("states")))
REGIONS: tuple[str, ...] = tuple(sorted(_VOCABULARY.canonical("regions")))

#: Row-level rules per feed, in the order they are evaluated: a quarantined row carries the first
#: rule it breaks. ``unstorable_value`` is always first: a value Postgres cannot store (a NUL
#: character in any text) must never reach a ``COPY``, whatever else is wrong with its row; the
#: plausibility rules (``before_history_start``, ``*_over_ceiling``) come after the type and
#: vocabulary rules; ``duplicate`` is always last: it is judged among rows that pass every other rule.
QUARANTINE_RULES: Mapping[str, tuple[str, ...]] = {
    "sales": (
        "unstorable_value",
        "missing_order_id",
        "missing_sku",
        "bad_line_no",
        "unparseable_date",
        "future_date",
        "bad_quantity",
        "unparseable_price",
        "unknown_status",
        "unknown_channel",
        "before_history_start",
        "quantity_over_ceiling",
        "price_over_ceiling",
        "duplicate",
    ),
    "catalog": (
        "unstorable_value",
        "missing_sku",
        "missing_product_name",
        "unparseable_price",
        "unknown_species",
        "bad_pack_size",
        "unknown_unit",
        "price_over_ceiling",
        "duplicate",
    ),
    "stores": ("unstorable_value", "missing_store_id", "invalid_state", "duplicate"),
    "customers": (
        "unstorable_value",
        "missing_customer_id",
        "unparseable_date",
        "invalid_state",
        "unknown_species",
        "duplicate",
    ),
}
_ALL_RULES = sorted({rule for rules in QUARANTINE_RULES.values() for rule in rules})

#: The rules that mean "this value could not be read as its type", and the column each reads. When
#: most rows of a file break one of them, the partner most likely changed the column's type or
#: format (a price sent as "$12.99", dates in a new format): reported as schema drift.
TYPE_RULES: Mapping[str, Mapping[str, str]] = {
    "sales": {
        "bad_line_no": "line_no",
        "unparseable_date": "ordered_at",
        "bad_quantity": "quantity",
        "unparseable_price": "unit_price",
    },
    "catalog": {"unparseable_price": "list_price", "bad_pack_size": "pack_size"},
    "stores": {},
    "customers": {"unparseable_date": "signup_date"},
}

#: The plausibility rules and the column each judges. When most rows of a file break one, the
#: partner most likely changed the column's unit or meaning (prices in cents, quantities in grams,
#: a date column that now holds another date): reported as drift like ``TYPE_RULES``.
PLAUSIBILITY_RULES: Mapping[str, Mapping[str, str]] = {
    "sales": {
        "before_history_start": "ordered_at",
        "quantity_over_ceiling": "quantity",
        "price_over_ceiling": "unit_price",
    },
    "catalog": {"price_over_ceiling": "list_price"},
    "stores": {},
    "customers": {},
}

#: The rules that mean "this value is in no mapping table", and the column each judges (its value
#: map: ``sources.registry.MAPPED_COLUMNS``): what onboarding lists as a partner's unknown values
#: (``resight onboard preview``).
VOCABULARY_RULES: Mapping[str, Mapping[str, str]] = {
    "sales": {"unknown_status": "status", "unknown_channel": "channel"},
    "catalog": {"unknown_species": "species", "unknown_unit": "pack_unit"},
    "stores": {"invalid_state": "state"},
    "customers": {"invalid_state": "state", "unknown_species": "pet_species"},
}

#: The rules whose breaking by most of a file's rows is drift: ``TYPE_RULES`` and
#: ``PLAUSIBILITY_RULES``, rule -> column, per feed.
DRIFT_RULES: Mapping[str, Mapping[str, str]] = {
    feed: {**TYPE_RULES[feed], **PLAUSIBILITY_RULES[feed]} for feed in TYPE_RULES
}

UtcTimestamp = Annotated[pl.Datetime, "us", "UTC"]

#: Tolerance of the ``net_amount`` identity: half a cent.
NET_AMOUNT_TOLERANCE = 0.005


class SilverSales(pa.DataFrameModel):
    """One row per line item of a store transaction or online order, amounts in USD."""

    order_id: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    line_no: Series[pl.Int32] = pa.Field(gt=0)
    ordered_at: Series[UtcTimestamp]
    business_date: Series[pl.Date]
    provider: Series[pl.String]
    store_id: Series[pl.String] = pa.Field(nullable=True)
    channel: Series[pl.String] = pa.Field(isin=CHANNELS)
    sku: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    quantity: Series[pl.Int32] = pa.Field(gt=0)
    unit_price: Series[pl.Float64] = pa.Field(ge=0)
    discount: Series[pl.Float64] = pa.Field(ge=0)
    net_amount: Series[pl.Float64]
    customer_id: Series[pl.String] = pa.Field(nullable=True)
    status: Series[pl.String] = pa.Field(isin=STATUSES)
    ship_state: Series[pl.String] = pa.Field(nullable=True, isin=STATES)
    source_file: Series[pl.String] = pa.Field(alias="_source_file")
    row_number: Series[pl.Int64] = pa.Field(alias="_row_number", ge=1)
    from_registry: Series[pl.String] = pa.Field(alias="_from_registry", nullable=True)

    class Config:
        strict = True
        coerce = False
        ordered = True
        unique: ClassVar[list[str]] = ["provider", "business_date", "order_id", "line_no"]

    @pa.dataframe_check
    @classmethod
    def net_amount_is_quantity_times_price_less_discount(cls, data: pa.PolarsData) -> pl.LazyFrame:
        expected = pl.col("quantity") * pl.col("unit_price") - pl.col("discount")
        return data.lazyframe.select((pl.col("net_amount") - expected).abs() <= NET_AMOUNT_TOLERANCE)

    @pa.dataframe_check
    @classmethod
    def store_lines_have_no_ship_state(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("channel") == "online") | pl.col("ship_state").is_null())

    @pa.dataframe_check
    @classmethod
    def online_lines_have_no_store(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select((pl.col("channel") == "store") | pl.col("store_id").is_null())


class SilverCatalog(pa.DataFrameModel):
    """One row per product a provider sells, list price in USD."""

    sku: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    upc: Series[pl.String] = pa.Field(nullable=True)
    product_name: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    brand: Series[pl.String] = pa.Field(nullable=True)
    manufacturer: Series[pl.String] = pa.Field(nullable=True)
    category: Series[pl.String] = pa.Field(isin=CATEGORIES)
    species: Series[pl.String] = pa.Field(isin=SPECIES)
    pack_size: Series[pl.Float64] = pa.Field(nullable=True, gt=0)
    pack_unit: Series[pl.String] = pa.Field(nullable=True, isin=UNITS)
    list_price: Series[pl.Float64] = pa.Field(ge=0)
    provider: Series[pl.String]
    business_date: Series[pl.Date]
    source_file: Series[pl.String] = pa.Field(alias="_source_file")
    row_number: Series[pl.Int64] = pa.Field(alias="_row_number", ge=1)
    from_registry: Series[pl.String] = pa.Field(alias="_from_registry", nullable=True)

    class Config:
        strict = True
        coerce = False
        ordered = True
        unique: ClassVar[list[str]] = ["provider", "business_date", "sku"]


class SilverStores(pa.DataFrameModel):
    """One row per store, clinic or warehouse location of a provider."""

    store_id: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    provider: Series[pl.String]
    store_name: Series[pl.String] = pa.Field(nullable=True)
    city: Series[pl.String] = pa.Field(nullable=True)
    state: Series[pl.String] = pa.Field(isin=STATES)
    zip: Series[pl.String] = pa.Field(nullable=True, str_matches=r"^\d{5}$")
    region: Series[pl.String] = pa.Field(isin=REGIONS)
    business_date: Series[pl.Date]
    source_file: Series[pl.String] = pa.Field(alias="_source_file")
    row_number: Series[pl.Int64] = pa.Field(alias="_row_number", ge=1)
    from_registry: Series[pl.String] = pa.Field(alias="_from_registry", nullable=True)

    class Config:
        strict = True
        coerce = False
        ordered = True
        unique: ClassVar[list[str]] = ["provider", "business_date", "store_id"]


class SilverCustomers(pa.DataFrameModel):
    """One row per loyalty customer of a provider."""

    customer_id: Series[pl.String] = pa.Field(str_length={"min_value": 1})
    provider: Series[pl.String]
    signup_date: Series[pl.Date] = pa.Field(nullable=True)
    state: Series[pl.String] = pa.Field(nullable=True, isin=STATES)
    pet_species: Series[pl.String] = pa.Field(nullable=True, isin=SPECIES)
    business_date: Series[pl.Date]
    source_file: Series[pl.String] = pa.Field(alias="_source_file")
    row_number: Series[pl.Int64] = pa.Field(alias="_row_number", ge=1)
    from_registry: Series[pl.String] = pa.Field(alias="_from_registry", nullable=True)

    class Config:
        strict = True
        coerce = False
        ordered = True
        unique: ClassVar[list[str]] = ["provider", "business_date", "customer_id"]


class Quarantine(pa.DataFrameModel):
    """One row per bronze row that broke a row-level rule, with its raw values as JSON."""

    feed: Series[pl.String] = pa.Field(isin=FEEDS)
    provider: Series[pl.String]
    business_date: Series[pl.Date]
    source_file: Series[pl.String] = pa.Field(alias="_source_file")
    row_number: Series[pl.Int64] = pa.Field(alias="_row_number", ge=1)
    rule: Series[pl.String] = pa.Field(isin=_ALL_RULES)
    raw: Series[pl.String] = pa.Field(str_startswith="{")
    ingested_at: Series[UtcTimestamp] = pa.Field(alias="_ingested_at")

    class Config:
        strict = True
        coerce = False
        ordered = True
        unique: ClassVar[list[str]] = ["_source_file", "_row_number"]


#: The silver model of each feed.
SILVER_MODELS: Mapping[str, type[pa.DataFrameModel]] = {
    "sales": SilverSales,
    "catalog": SilverCatalog,
    "stores": SilverStores,
    "customers": SilverCustomers,
}
