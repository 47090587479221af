"""Marts: the business tables ReSight sells, computed from ``fact_sales`` and its dimensions.

Revenue is the net amount of *completed* lines; cancelled and returned lines are reported by
``order_status_impact``. An order is one ``(provider, order_id)``.

Counting distinct orders needs every order of a group in memory at once (3.4 GB for a 20M-line
day). An order belongs to one provider, so the marts that count orders or rank customers (who
are per provider too) run one provider at a time (:func:`_per_provider`) and add up: exact, and
each pass reads only that provider's row groups of the fact files (one row group per chunk of a
provider's partition, pruned by their statistics).
"""

from __future__ import annotations

from collections.abc import Callable

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


def _per_provider(fact: pl.LazyFrame, build: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
    """``build`` on each provider's rows of ``fact``, the results stacked (``build(fact)`` on an
    empty fact, for its schema)."""
    keys = fact.select(pl.col("provider_key").unique().sort()).collect(engine="streaming").get_column("provider_key")
    parts = [build(fact.filter(pl.col("provider_key") == key)).collect(engine="streaming") for key in keys]
    return pl.concat(parts) if parts else build(fact).collect()


def _sales_by(fact: pl.LazyFrame, dim_product: pl.LazyFrame, keys: list[str]) -> pl.DataFrame:
    """Units, revenue, orders and average order value of completed lines per ``keys``."""

    def partial(part: pl.LazyFrame) -> pl.LazyFrame:
        return (
            _completed(_enrich(part, dim_product))
            .group_by(keys)
            .agg(
                pl.col("quantity").sum().cast(pl.Int64).alias("units"),
                pl.col("net_amount").sum().alias("revenue"),
                pl.col("_order").n_unique().cast(pl.Int64).alias("orders"),
            )
        )

    return (
        _per_provider(fact, partial)
        .group_by(keys)
        .agg(pl.col("units").sum(), pl.col("revenue").sum().round(2), pl.col("orders").sum())
        .with_columns((pl.col("revenue") / pl.col("orders")).round(2).alias("avg_order_value"))
        .sort(keys)
    )


def daily_sales(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """Units, revenue, orders and average order value per day × category × species × region × channel."""
    return _sales_by(fact, dim_product, ["sale_date", *_SEGMENT])


def monthly_sales(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """The same measures per calendar month."""
    return _sales_by(fact, dim_product, ["month", *_SEGMENT])


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


def _top_by_revenue(frame: pl.LazyFrame, ties: list[str], top: int) -> pl.LazyFrame:
    """The ``top`` rows by revenue per month (``ties`` break equal revenue), ranked from 1."""
    return (
        frame.sort(["month", "revenue", *ties], descending=[False, True, *([False] * len(ties))])
        .with_columns(pl.int_range(1, pl.len() + 1).over("month").cast(pl.Int32).alias("rank"))
        .filter(pl.col("rank") <= top)
    )


def top_products_monthly(fact: pl.LazyFrame, dim_product: pl.LazyFrame, top: int = TOP_N) -> pl.DataFrame:
    """The ``top`` products by revenue per month."""
    by_product = (
        _completed(_enrich(fact, dim_product))
        .group_by(["month", "provider", "sku", "product_name", "brand", "category", "species"])
        .agg(
            pl.col("quantity").sum().cast(pl.Int64).alias("units"),
            pl.col("net_amount").sum().round(2).alias("revenue"),
        )
    )
    ranked = _top_by_revenue(by_product, ["provider", "sku"], top)
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
    group = ["month", "_c_provider", "customer_id", "_c_region"]

    def ranked(part: pl.LazyFrame) -> pl.LazyFrame:
        # A customer belongs to one provider: the month's top of all providers is among the
        # providers' own tops.
        by_customer = (
            _completed(_enrich(part, dim_product))
            .filter(pl.col("customer_key").is_not_null())
            .join(customers, on="customer_key", how="inner")
            .group_by(group)
            .agg(
                pl.col("_order").n_unique().cast(pl.Int64).alias("orders"),
                pl.col("net_amount").sum().round(2).alias("revenue"),
            )
        )
        return _top_by_revenue(by_customer, ["_c_provider", "customer_id"], top)

    return (
        _top_by_revenue(_per_provider(fact, ranked).lazy().drop("rank"), ["_c_provider", "customer_id"], top)
        .select(
            "month",
            "rank",
            pl.col("_c_provider").alias("provider"),
            "customer_id",
            pl.col("_c_region").alias("region"),
            "orders",
            "revenue",
        )
        .collect()
    )


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
    return _sales_by(fact, dim_product, ["month", "region"]).select(
        "month", "region", "orders", "revenue", "avg_order_value"
    )
