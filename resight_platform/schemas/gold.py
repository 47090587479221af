"""Pandera models of the gold tables and marts: the single definition of their columns and rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pandera.polars as pa
import polars as pl

from resight_platform.schemas.silver import CHANNELS as _CHANNELS
from resight_platform.schemas.silver import STATUSES as _STATUSES

__all__ = [
    "AovByRegion",
    "BrandShareMonthly",
    "DailySales",
    "DimCustomer",
    "DimDate",
    "DimProduct",
    "DimProvider",
    "DimStore",
    "FactSales",
    "MonthlySales",
    "OrderStatusImpact",
    "TopCustomersMonthly",
    "TopProductsMonthly",
]

#: The allowed values come from the mapping tables, as silver's do (one definition).
STATUSES = list(_STATUSES)
CHANNELS = list(_CHANNELS)


class _Model(pa.DataFrameModel):
    class Config:
        strict = True
        coerce = False


class DimDate(_Model):
    date_key: pl.Int32 = pa.Field(unique=True)
    date: pl.Date = pa.Field(unique=True)
    year: pl.Int16
    quarter: pl.Int16 = pa.Field(in_range={"min_value": 1, "max_value": 4})
    month: pl.Int16 = pa.Field(in_range={"min_value": 1, "max_value": 12})
    month_start: pl.Date
    week_start: pl.Date
    day_of_week: pl.Int16 = pa.Field(in_range={"min_value": 1, "max_value": 7})
    is_weekend: bool


class DimProvider(_Model):
    provider_key: int = pa.Field(unique=True, gt=0)
    provider: str = pa.Field(unique=True)
    provider_name: str
    kind: str = pa.Field(isin=["retail", "ecommerce", "distributor", "vet"])
    timezone: str
    currency: str = pa.Field(str_length={"min_value": 3, "max_value": 3})


class DimStore(_Model):
    store_key: int = pa.Field(unique=True, gt=0)
    provider: str
    store_id: str
    store_name: str = pa.Field(nullable=True)
    city: str = pa.Field(nullable=True)
    state: str = pa.Field(nullable=True)
    zip: str = pa.Field(nullable=True)
    region: str = pa.Field(nullable=True)


class DimProduct(_Model):
    product_key: int = pa.Field(unique=True, gt=0)
    provider: str
    sku: str
    upc: str = pa.Field(nullable=True)
    # Only (provider, sku) are truly required: a partner that does not send a product's name,
    # brand, category or price still loads its catalog, and the marts show such a product's
    # brand as 'Unknown' and its category and species as 'other'.
    product_name: str = pa.Field(nullable=True)
    brand: str = pa.Field(nullable=True)
    manufacturer: str = pa.Field(nullable=True)
    category: str = pa.Field(nullable=True)
    species: str = pa.Field(nullable=True, isin=["dog", "cat", "bird", "fish", "small_animal", "reptile", "other"])
    pack_size: float = pa.Field(nullable=True, gt=0)
    pack_unit: str = pa.Field(nullable=True)
    list_price: float = pa.Field(nullable=True, ge=0)


class DimCustomer(_Model):
    customer_key: int = pa.Field(unique=True, gt=0)
    provider: str
    customer_id: str
    signup_date: pl.Date = pa.Field(nullable=True)
    state: str = pa.Field(nullable=True)
    pet_species: str = pa.Field(nullable=True)
    region: str = pa.Field(nullable=True)


class FactSales(_Model):
    """Key 0 is a dimension's unknown member (named by the partner, not in the dimension yet); the
    partner's own natural keys stay beside the surrogate keys, so the row is re-resolved when the
    dimension lands."""

    sale_date: pl.Date
    date_key: pl.Int32
    provider_key: int
    product_key: int = pa.Field(ge=0)
    store_key: int = pa.Field(nullable=True, ge=0)
    customer_key: int = pa.Field(nullable=True, ge=0)
    provider: str
    sku: str = pa.Field(str_length={"min_value": 1})
    store_id: str = pa.Field(nullable=True)
    customer_id: str = pa.Field(nullable=True)
    order_id: str
    line_no: pl.Int32 = pa.Field(gt=0)
    ordered_at: pl.Datetime(time_zone="UTC")  # type: ignore[valid-type]
    channel: str = pa.Field(isin=CHANNELS)
    quantity: pl.Int32 = pa.Field(gt=0)
    unit_price: float = pa.Field(ge=0)
    discount: float = pa.Field(ge=0)
    net_amount: float
    status: str = pa.Field(isin=STATUSES)
    ship_state: str = pa.Field(nullable=True)
    region: str = pa.Field(nullable=True)
    source_file: str

    @pa.dataframe_check
    @classmethod
    def net_is_quantity_times_price_minus_discount(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(
            (pl.col("quantity") * pl.col("unit_price") - pl.col("discount") - pl.col("net_amount")).abs() < 0.005
        )

    @pa.dataframe_check
    @classmethod
    def store_key_only_with_a_store_id(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A store key (real or unknown) exactly when the sale names a store."""
        return data.lazyframe.select(pl.col("store_key").is_null() == pl.col("store_id").is_null())

    @pa.dataframe_check
    @classmethod
    def customer_key_only_with_a_customer_id(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """A customer key (real or unknown) exactly when the sale names a customer."""
        return data.lazyframe.select(pl.col("customer_key").is_null() == pl.col("customer_id").is_null())

    @pa.dataframe_check
    @classmethod
    def no_sale_in_the_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Sale dates up to tomorrow (UTC): the last partition, for partners in time zones ahead."""
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        return data.lazyframe.select(pl.col("sale_date") <= tomorrow)


# --- Marts -----------------------------------------------------------------------------------
# Revenue is the net amount of completed lines (cancelled and returned lines are in
# order_status_impact), so it is never below zero unless a partner gave a discount larger than
# the line's price: the marts are still written, and their (non-blocking) check says so.

#: How far a group's shares may sum from 1 (float rounding over a few thousand brands).
SHARE_TOLERANCE = 1e-6
#: How far a stored average order value may be from revenue / orders (it is rounded to cents).
AOV_TOLERANCE = 0.005 + 1e-9


def _shares_sum_to_one(share: str, amount: str, group: list[str]) -> pl.Expr:
    """Per row: the shares of its group sum to 1, or to 0 when the group's amount is 0 (a share of
    nothing is 0, not a division by zero)."""
    total = pl.col(share).sum().over(group)
    empty = pl.col(amount).sum().over(group) == 0
    return pl.when(empty).then(total.abs() <= SHARE_TOLERANCE).otherwise((total - 1).abs() <= SHARE_TOLERANCE)


def _aov_is_revenue_per_order() -> pl.Expr:
    return (pl.col("avg_order_value") - pl.col("revenue") / pl.col("orders")).abs() <= AOV_TOLERANCE


class _SalesMeasures(_Model):
    category: str
    species: str
    region: str
    channel: str = pa.Field(isin=CHANNELS)
    units: int = pa.Field(gt=0)
    revenue: float = pa.Field(ge=0)
    orders: int = pa.Field(gt=0)
    avg_order_value: float = pa.Field(ge=0)

    @pa.dataframe_check
    @classmethod
    def avg_order_value_is_revenue_per_order(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_aov_is_revenue_per_order())


class DailySales(_SalesMeasures):
    sale_date: pl.Date

    class Config:
        unique: ClassVar[list[str]] = ["sale_date", "category", "species", "region", "channel"]


class MonthlySales(_SalesMeasures):
    month: pl.Date

    class Config:
        unique: ClassVar[list[str]] = ["month", "category", "species", "region", "channel"]


#: The group a brand's share is of.
BRAND_SHARE_GROUP = ["month", "category", "species", "region"]


class BrandShareMonthly(_Model):
    month: pl.Date
    category: str
    species: str
    region: str
    brand: str
    revenue: float = pa.Field(ge=0)
    share: float = pa.Field(in_range={"min_value": 0.0, "max_value": 1.0 + SHARE_TOLERANCE})
    share_change: float = pa.Field(
        nullable=True, in_range={"min_value": -1.0 - SHARE_TOLERANCE, "max_value": 1.0 + SHARE_TOLERANCE}
    )

    class Config:
        unique: ClassVar[list[str]] = [*BRAND_SHARE_GROUP, "brand"]

    @pa.dataframe_check
    @classmethod
    def shares_sum_to_one(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The brands' shares of a month × category × species × region sum to 1."""
        return data.lazyframe.select(_shares_sum_to_one("share", "revenue", BRAND_SHARE_GROUP))


class TopProductsMonthly(_Model):
    month: pl.Date
    rank: pl.Int32 = pa.Field(gt=0)
    provider: str
    sku: str
    product_name: str = pa.Field(nullable=True)
    brand: str = pa.Field(nullable=True)
    category: str = pa.Field(nullable=True)
    species: str = pa.Field(nullable=True)
    units: int = pa.Field(gt=0)
    revenue: float = pa.Field(ge=0)

    class Config:
        unique: ClassVar[list[str]] = ["month", "rank"]


class TopCustomersMonthly(_Model):
    month: pl.Date
    rank: pl.Int32 = pa.Field(gt=0)
    provider: str
    customer_id: str
    region: str = pa.Field(nullable=True)
    orders: int = pa.Field(gt=0)
    revenue: float = pa.Field(ge=0)

    class Config:
        unique: ClassVar[list[str]] = ["month", "rank"]


#: The group a status's share of the amount is of.
ORDER_STATUS_GROUP = ["month", "category", "region"]


class OrderStatusImpact(_Model):
    month: pl.Date
    category: str
    region: str
    status: str = pa.Field(isin=STATUSES)
    lines: int = pa.Field(gt=0)
    amount: float = pa.Field(ge=0)
    share_of_amount: float = pa.Field(in_range={"min_value": 0.0, "max_value": 1.0 + SHARE_TOLERANCE})

    class Config:
        unique: ClassVar[list[str]] = [*ORDER_STATUS_GROUP, "status"]

    @pa.dataframe_check
    @classmethod
    def shares_sum_to_one(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """The statuses' shares of the amount of a month × category × region sum to 1."""
        return data.lazyframe.select(_shares_sum_to_one("share_of_amount", "amount", ORDER_STATUS_GROUP))


class AovByRegion(_Model):
    month: pl.Date
    region: str
    orders: int = pa.Field(gt=0)
    revenue: float = pa.Field(ge=0)
    avg_order_value: float = pa.Field(ge=0)

    class Config:
        unique: ClassVar[list[str]] = ["month", "region"]

    @pa.dataframe_check
    @classmethod
    def avg_order_value_is_revenue_per_order(cls, data: pa.PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(_aov_is_revenue_per_order())
