"""Pandera models of the gold tables and marts: the single definition of their columns and rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    product_name: str
    brand: str
    manufacturer: str = pa.Field(nullable=True)
    category: str
    species: str = pa.Field(isin=["dog", "cat", "bird", "fish", "small_animal", "reptile", "other"])
    pack_size: float = pa.Field(nullable=True, gt=0)
    pack_unit: str = pa.Field(nullable=True)
    list_price: float = pa.Field(ge=0)


class DimCustomer(_Model):
    customer_key: int = pa.Field(unique=True, gt=0)
    provider: str
    customer_id: str
    signup_date: pl.Date = pa.Field(nullable=True)
    state: str = pa.Field(nullable=True)
    pet_species: str = pa.Field(nullable=True)
    region: str = pa.Field(nullable=True)


class FactSales(_Model):
    sale_date: pl.Date
    date_key: pl.Int32
    provider_key: int
    product_key: int = pa.Field(ge=0)
    store_key: int = pa.Field(nullable=True)
    customer_key: int = pa.Field(nullable=True)
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
    def no_sale_in_the_future(cls, data: pa.PolarsData) -> pl.LazyFrame:
        """Sale dates up to tomorrow (UTC): the last partition, for partners in time zones ahead."""
        tomorrow = datetime.now(UTC).date() + timedelta(days=1)
        return data.lazyframe.select(pl.col("sale_date") <= tomorrow)


class _SalesMeasures(_Model):
    category: str
    species: str
    region: str
    channel: str = pa.Field(isin=CHANNELS)
    units: int = pa.Field(ge=0)
    revenue: float
    orders: int = pa.Field(ge=0)
    avg_order_value: float


class DailySales(_SalesMeasures):
    sale_date: pl.Date


class MonthlySales(_SalesMeasures):
    month: pl.Date


class BrandShareMonthly(_Model):
    month: pl.Date
    category: str
    species: str
    region: str
    brand: str
    revenue: float
    share: float = pa.Field(in_range={"min_value": 0.0, "max_value": 1.0000001})
    share_change: float = pa.Field(nullable=True)


class TopProductsMonthly(_Model):
    month: pl.Date
    rank: pl.Int32 = pa.Field(gt=0)
    provider: str
    sku: str
    product_name: str = pa.Field(nullable=True)
    brand: str = pa.Field(nullable=True)
    category: str = pa.Field(nullable=True)
    species: str = pa.Field(nullable=True)
    units: int
    revenue: float


class TopCustomersMonthly(_Model):
    month: pl.Date
    rank: pl.Int32 = pa.Field(gt=0)
    provider: str
    customer_id: str
    region: str = pa.Field(nullable=True)
    orders: int
    revenue: float


class OrderStatusImpact(_Model):
    month: pl.Date
    category: str
    region: str
    status: str = pa.Field(isin=STATUSES)
    lines: int
    amount: float
    share_of_amount: float


class AovByRegion(_Model):
    month: pl.Date
    region: str
    orders: int
    revenue: float
    avg_order_value: float
