"""Marts: the business tables ReSight sells, computed from ``fact_sales`` and its dimensions.

Revenue is the net amount of *completed* lines; cancelled and returned lines are reported by
``order_status_impact``. An order is one ``(provider, order_id)``.
"""

from __future__ import annotations

import polars as pl

__all__ = [
    "aov_by_region",
    "brand_share_monthly",
    "daily_sales",
    "monthly_sales",
    "order_status_impact",
    "top_customers_monthly",
    "top_products_monthly",
]

TOP_N = 20
_SEGMENT = ["category", "species", "region", "channel"]


def _enrich(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.LazyFrame:
    products = dim_product.select("product_key", "provider", "sku", "product_name", "brand", "category", "species")
    return fact.join(products, on="product_key", how="left").with_columns(
        pl.col("category").fill_null("other"),
        pl.col("species").fill_null("other"),
        pl.col("brand").fill_null("Unknown"),
        pl.col("region").fill_null("Unknown"),
        pl.col("sale_date").dt.month_start().alias("month"),
        pl.concat_str([pl.col("provider_key").cast(pl.Utf8), pl.col("order_id")], separator="|").alias("_order"),
    )


def _completed(fact: pl.LazyFrame) -> pl.LazyFrame:
    return fact.filter(pl.col("status") == "completed")


def _sales_by(frame: pl.LazyFrame, keys: list[str]) -> pl.LazyFrame:
    return (
        frame.group_by(keys)
        .agg(
            pl.col("quantity").sum().cast(pl.Int64).alias("units"),
            pl.col("net_amount").sum().round(2).alias("revenue"),
            pl.col("_order").n_unique().cast(pl.Int64).alias("orders"),
        )
        .with_columns((pl.col("revenue") / pl.col("orders")).round(2).alias("avg_order_value"))
        .sort(keys)
    )


def daily_sales(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """Units, revenue, orders and average order value per day × category × species × region × channel."""
    enriched = _completed(_enrich(fact, dim_product))
    return _sales_by(enriched, ["sale_date", *_SEGMENT]).collect(engine="streaming")


def monthly_sales(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """The same measures per calendar month."""
    enriched = _completed(_enrich(fact, dim_product))
    return _sales_by(enriched, ["month", *_SEGMENT]).collect(engine="streaming")


def brand_share_monthly(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """Each brand's share of revenue per month × category × species × region, and its change
    against the previous month (null when the brand had no sales in that segment the month before)."""
    group = ["month", "category", "species", "region"]
    segment = ["category", "species", "region", "brand"]
    by_brand = (
        _completed(_enrich(fact, dim_product))
        .group_by([*group, "brand"])
        .agg(pl.col("net_amount").sum().alias("revenue"))
        .with_columns((pl.col("revenue") / pl.col("revenue").sum().over(group)).alias("share"))
    )
    previous = by_brand.select(
        pl.col("month").dt.offset_by("1mo").alias("month"), *segment[:-1], "brand", pl.col("share").alias("_prev")
    )
    return (
        by_brand.join(previous, on=["month", *segment], how="left")
        .with_columns(
            pl.col("revenue").round(2),
            (pl.col("share") - pl.col("_prev")).alias("share_change"),
        )
        .select([*group, "brand", "revenue", "share", "share_change"])
        .sort([*group, "revenue"], descending=[False, False, False, False, True])
        .collect(engine="streaming")
    )


def top_products_monthly(fact: pl.LazyFrame, dim_product: pl.LazyFrame, top: int = TOP_N) -> pl.DataFrame:
    """The ``top`` products by revenue per month."""
    ranked = (
        _completed(_enrich(fact, dim_product))
        .group_by(["month", "provider", "sku", "product_name", "brand", "category", "species"])
        .agg(
            pl.col("quantity").sum().cast(pl.Int64).alias("units"),
            pl.col("net_amount").sum().round(2).alias("revenue"),
        )
        .sort(["month", "revenue", "provider", "sku"], descending=[False, True, False, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("month").cast(pl.Int32).alias("rank"))
        .filter(pl.col("rank") <= top)
    )
    return ranked.select(
        "month", "rank", "provider", "sku", "product_name", "brand", "category", "species", "units", "revenue"
    ).collect(engine="streaming")


def top_customers_monthly(
    fact: pl.LazyFrame, dim_product: pl.LazyFrame, dim_customer: pl.LazyFrame, top: int = TOP_N
) -> pl.DataFrame:
    """The ``top`` loyalty customers by revenue per month (anonymous sales excluded)."""
    customers = dim_customer.select(
        "customer_key", pl.col("provider").alias("_c_provider"), "customer_id", pl.col("region").alias("_c_region")
    )
    ranked = (
        _completed(_enrich(fact, dim_product))
        .filter(pl.col("customer_key").is_not_null())
        .join(customers, on="customer_key", how="inner")
        .group_by(["month", "_c_provider", "customer_id", "_c_region"])
        .agg(
            pl.col("_order").n_unique().cast(pl.Int64).alias("orders"),
            pl.col("net_amount").sum().round(2).alias("revenue"),
        )
        .sort(["month", "revenue", "_c_provider", "customer_id"], descending=[False, True, False, False])
        .with_columns(pl.int_range(1, pl.len() + 1).over("month").cast(pl.Int32).alias("rank"))
        .filter(pl.col("rank") <= top)
    )
    return ranked.select(
        "month",
        "rank",
        pl.col("_c_provider").alias("provider"),
        "customer_id",
        pl.col("_c_region").alias("region"),
        "orders",
        "revenue",
    ).collect(engine="streaming")


def order_status_impact(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """Lines and net amount per order status, and each status's share of the amount, per month ×
    category × region."""
    group = ["month", "category", "region"]
    return (
        _enrich(fact, dim_product)
        .group_by([*group, "status"])
        .agg(
            pl.len().cast(pl.Int64).alias("lines"),
            pl.col("net_amount").sum().alias("amount"),
        )
        .with_columns((pl.col("amount") / pl.col("amount").sum().over(group)).fill_nan(0.0).alias("share_of_amount"))
        .with_columns(pl.col("amount").round(2))
        .sort([*group, "status"])
        .collect(engine="streaming")
    )


def aov_by_region(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """Orders, revenue and average order value per month × region."""
    enriched = _completed(_enrich(fact, dim_product))
    return (
        enriched.group_by(["month", "region"])
        .agg(
            pl.col("_order").n_unique().cast(pl.Int64).alias("orders"),
            pl.col("net_amount").sum().round(2).alias("revenue"),
        )
        .with_columns((pl.col("revenue") / pl.col("orders")).round(2).alias("avg_order_value"))
        .sort(["month", "region"])
        .collect(engine="streaming")
    )
