"""Marts: the business tables ReSight sells, computed from ``fact_sales`` and its dimensions.

Revenue is the net amount of *completed* lines; cancelled and returned lines are reported by
``order_status_impact``. An order is one ``(provider, order_id)``.

A fact on a dimension's unknown member (key 0: a product, store or customer the partner named
before its catalog, store list or customer list arrived) counts everywhere: its brand is
``Unknown``, its category and species ``other``, its region ``Unknown``. The top lists name
products and customers by the fact's own natural keys (provider, sku / customer id) and take their
attributes from the dimension by that natural key, so an SKU not in the catalog yet is listed
under its own SKU with no name.

Counting distinct orders needs every order of a group in memory at once (3.4 GB for a 20M-line
day). An order belongs to one provider, so the marts that count orders or rank customers (who
are per provider too) run one provider at a time (:func:`_per_provider`) and add up: exact, and
each pass reads only that provider's row groups of the fact files (one row group per chunk of a
provider's partition, pruned by their statistics).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    products = dim_product.select("product_key", "brand", "category", "species")
    return fact.join(products, on="product_key", how="left").with_columns(
        pl.col("category").fill_null("other"),
        pl.col("species").fill_null("other"),
        pl.col("brand").fill_null("Unknown"),
        pl.col("region").fill_null("Unknown"),
        pl.col("sale_date").dt.month_start().alias("month"),
        pl.concat_str([pl.col("provider_key").cast(pl.Utf8), pl.col("order_id")], separator="|").alias("_order"),
    )


def _share_of(amount: str, group: list[str]) -> pl.Expr:
    """Each row's part of its group's ``amount``; 0 in a group whose amount is 0."""
    total = pl.col(amount).sum().over(group)
    return pl.when(total != 0).then(pl.col(amount) / total).otherwise(0.0)


def _completed(fact: pl.LazyFrame) -> pl.LazyFrame:
    return fact.filter(pl.col("status") == "completed")


#: Facts up to this many rows are aggregated all providers at once. One provider at a time bounds
#: a peak day's memory (order sets of 20M lines: 3.35 → 0.41 GiB) but scans every lake file's
#: footer once per provider: 3.5 s a mart on the demo's 1,106 small fact files, 0.1 s at once.
AT_ONCE_ROWS = 2_000_000


def _per_provider(fact: pl.LazyFrame, build: Callable[[pl.LazyFrame], pl.LazyFrame]) -> pl.DataFrame:
    """``build`` on each provider's rows of ``fact``, the results stacked (``build(fact)`` on an
    empty fact, for its schema); ``build(fact)`` once when ``fact`` is small (:data:`AT_ONCE_ROWS`).
    Either way ``build`` must count an order as (provider, order id)."""
    if fact.select(pl.len()).collect().item() <= AT_ONCE_ROWS:
        return build(fact).collect(engine="streaming")
    keys = fact.select(pl.col("provider_key").unique().sort()).collect(engine="streaming").get_column("provider_key")
    parts = [build(fact.filter(pl.col("provider_key") == key)).collect(engine="streaming") for key in keys]
    return pl.concat(parts) if parts else build(fact).collect()


def _per_order(revenue: str, orders: str) -> pl.Expr:
    """``revenue / orders`` to the cent, halves away from zero (as Postgres rounds), computed in
    integer cents: the float quotient of 78.35 / 2 is 39.17499…, which would round down."""
    cents = (pl.col(revenue) * 100).round(0).cast(pl.Int64)
    quotient = (2 * cents.abs() + pl.col(orders)) // (2 * pl.col(orders))
    return cents.sign() * quotient / 100


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
        .with_columns(_per_order("revenue", "orders").alias("avg_order_value"))
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
        .with_columns(_share_of("revenue", group).alias("share"))
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
    """The ``top`` products by revenue per month: a product is the fact's own (provider, sku), its
    name, brand, category and species those of the catalog's member (none yet: no name, brand
    ``Unknown``, category and species ``other``)."""
    by_product = (
        _completed(fact)
        .with_columns(pl.col("sale_date").dt.month_start().alias("month"))
        .group_by(["month", "provider", "sku"])
        .agg(
            pl.col("quantity").sum().cast(pl.Int64).alias("units"),
            pl.col("net_amount").sum().round(2).alias("revenue"),
        )
    )
    ranked = _top_by_revenue(by_product, ["provider", "sku"], top)
    attributes = dim_product.select("provider", "sku", "product_name", "brand", "category", "species")
    return (
        ranked.join(attributes, on=["provider", "sku"], how="left")
        .with_columns(
            pl.col("brand").fill_null("Unknown"),
            pl.col("category").fill_null("other"),
            pl.col("species").fill_null("other"),
        )
        .select("month", "rank", "provider", "sku", "product_name", "brand", "category", "species", "units", "revenue")
        .sort(["month", "rank"])
        .collect(engine="streaming")
    )


def top_customers_monthly(
    fact: pl.LazyFrame, dim_product: pl.LazyFrame, dim_customer: pl.LazyFrame, top: int = TOP_N
) -> pl.DataFrame:
    """The ``top`` loyalty customers by revenue per month (anonymous sales excluded): a customer is
    the fact's own (provider, customer id), its region that of the customer list's member (none
    yet: null)."""
    del dim_product  # a customer's sales count whatever their products
    group = ["month", "provider", "customer_id"]

    def ranked(part: pl.LazyFrame) -> pl.LazyFrame:
        # A customer belongs to one provider: the month's top of all providers is among the
        # providers' own tops.
        by_customer = (
            _completed(part)
            .filter(pl.col("customer_id").is_not_null())
            .with_columns(
                pl.col("sale_date").dt.month_start().alias("month"),
                pl.concat_str([pl.col("provider_key").cast(pl.Utf8), pl.col("order_id")], separator="|").alias(
                    "_order"
                ),
            )
            .group_by(group)
            .agg(
                pl.col("_order").n_unique().cast(pl.Int64).alias("orders"),
                pl.col("net_amount").sum().round(2).alias("revenue"),
            )
        )
        return _top_by_revenue(by_customer, ["provider", "customer_id"], top)

    regions = dim_customer.select("provider", "customer_id", "region")
    return (
        _top_by_revenue(_per_provider(fact, ranked).lazy().drop("rank"), ["provider", "customer_id"], top)
        .join(regions, on=["provider", "customer_id"], how="left")
        .select("month", "rank", "provider", "customer_id", "region", "orders", "revenue")
        .sort(["month", "rank"])
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
        .with_columns(_share_of("amount", group).alias("share_of_amount"))
        .with_columns(pl.col("amount").round(2))
        .sort([*group, "status"])
        .collect(engine="streaming")
    )


def aov_by_region(fact: pl.LazyFrame, dim_product: pl.LazyFrame) -> pl.DataFrame:
    """Orders, revenue and average order value per month × region."""
    return _sales_by(fact, dim_product, ["month", "region"]).select(
        "month", "region", "orders", "revenue", "avg_order_value"
    )


# --- Totals against the facts -------------------------------------------------------------------
# What the ``totals_match_fact_sales`` checks compare: a mart's measures summed per period (and
# key) against the same sums taken straight from ``fact_sales``, money in cents. Written apart
# from the marts above (no dimension join, no segments), so a lost or doubled row shows.


@dataclass(frozen=True)
class TotalsSpec:
    """Which of a mart's measures add up to a fact total, per ``period`` and ``keys``."""

    #: The mart's period column: ``sale_date`` (daily) or ``month``.
    period: str
    #: Measures summed per period: ``units``, ``revenue`` and ``orders`` of completed lines,
    #: ``lines`` and ``amount`` (net amount) of all lines.
    measures: tuple[str, ...]
    #: Columns the sums are also grouped by, in the mart and in the facts (``status``, ``region``).
    keys: tuple[str, ...] = ()


#: Money measures, compared in cents.
MONEY = frozenset({"revenue", "amount"})

#: The marts whose measures add up to fact totals. Orders are counted per order, so they add up
#: only where an order falls in one group (a region); an order with lines in two categories is in
#: two segments of ``daily_sales``.
MART_TOTALS = {
    "daily_sales": TotalsSpec("sale_date", ("units", "revenue")),
    "monthly_sales": TotalsSpec("month", ("units", "revenue")),
    "brand_share_monthly": TotalsSpec("month", ("revenue",)),
    "order_status_impact": TotalsSpec("month", ("lines", "amount"), keys=("status",)),
    "aov_by_region": TotalsSpec("month", ("orders", "revenue"), keys=("region",)),
}


def _cents(column: str) -> pl.Expr:
    return (pl.col(column) * 100).round(0).cast(pl.Int64)


def fact_totals(fact: pl.LazyFrame, spec: TotalsSpec) -> pl.DataFrame:
    """``spec``'s measures per period (and keys) computed from fact rows, money in cents."""
    group = [spec.period, *spec.keys]
    rows = fact.with_columns(
        pl.col("sale_date").dt.month_start().alias("month"),
        pl.col("region").fill_null("Unknown"),
        (pl.col("status") == "completed").alias("_completed"),
    )
    measures = {
        "units": pl.col("quantity").filter(pl.col("_completed")).sum().cast(pl.Int64),
        "revenue": _cents("net_amount").filter(pl.col("_completed")).sum(),
        "lines": pl.len().cast(pl.Int64),
        "amount": _cents("net_amount").sum(),
        "orders": pl.struct("provider_key", "order_id").filter(pl.col("_completed")).n_unique().cast(pl.Int64),
    }
    wanted = [measures[m].alias(m) for m in spec.measures]

    def partial(part: pl.LazyFrame) -> pl.LazyFrame:
        return part.group_by(group).agg(wanted)

    # An order is one (provider, order_id): orders are counted per provider, then added up.
    counts_orders = "orders" in spec.measures
    totals = _per_provider(rows, partial).lazy() if counts_orders else partial(rows)
    totals = totals.group_by(group).agg(pl.col(m).sum() for m in spec.measures)
    if counts_orders:
        totals = totals.filter(pl.col("orders") > 0)  # a group with no completed line has no mart row
    return totals.sort(group).collect(engine="streaming")


def mart_totals(mart: pl.DataFrame, spec: TotalsSpec) -> pl.DataFrame:
    """``spec``'s measures of a mart summed per period (and keys), money in cents."""
    group = [spec.period, *spec.keys]
    sums = [(_cents(m) if m in MONEY else pl.col(m).cast(pl.Int64)).sum().alias(m) for m in spec.measures]
    return mart.group_by(group).agg(sums).sort(group)


def compare_totals(mart: pl.DataFrame, fact: pl.LazyFrame, spec: TotalsSpec) -> pl.DataFrame:
    """One row per period (and keys) found in the mart or the facts: each measure's ``{m}_mart``
    and ``{m}_fact`` (0 where one side has no row) and ``matches``.

    Periods with no completed line have no row in the completed-only marts: such a period's facts
    count only when the mart has it or a completed measure is nonzero."""
    group = [spec.period, *spec.keys]
    ours = mart_totals(mart, spec).rename({m: f"{m}_mart" for m in spec.measures})
    theirs = fact_totals(fact, spec).rename({m: f"{m}_fact" for m in spec.measures})
    both = ours.join(theirs, on=group, how="full", coalesce=True).with_columns(
        pl.col(f"{m}_{side}").fill_null(0) for m in spec.measures for side in ("mart", "fact")
    )
    both = both.filter(
        pl.any_horizontal(pl.col(f"{m}_{side}") != 0 for m in spec.measures for side in ("mart", "fact"))
    )
    same = pl.all_horizontal(pl.col(f"{m}_mart") == pl.col(f"{m}_fact") for m in spec.measures)
    return both.with_columns(same.alias("matches")).sort(group)


#: How each top mart's rows are found in the facts: the fact's natural key columns that name a
#: listed row, and the measures compared.
TOP_KEYS = {
    "top_products_monthly": (("provider", "sku"), ("units", "revenue")),
    "top_customers_monthly": (("provider", "customer_id"), ("orders", "revenue")),
}


def compare_top(mart: pl.DataFrame, fact: pl.LazyFrame, name: str) -> pl.DataFrame:
    """Every product (or customer) that sold in a month, from the facts' own natural keys: its
    measures there (``{m}_fact``), its row of the top mart if listed (``{m}_mart``, ``rank``),
    ``matches`` (a listed row's measures equal the facts'), and ``outsells_list`` (unlisted, but
    sold more than the month's last listed row)."""
    keys, measures = TOP_KEYS[name]
    group = ["month", *keys]
    aggs = {
        "units": pl.col("quantity").sum().cast(pl.Int64),
        "revenue": _cents("net_amount").sum(),
        "orders": pl.struct("provider_key", "order_id").n_unique().cast(pl.Int64),
    }

    def by_key(part: pl.LazyFrame) -> pl.LazyFrame:
        return (
            part.filter((pl.col("status") == "completed") & pl.all_horizontal(pl.col(k).is_not_null() for k in keys))
            .with_columns(pl.col("sale_date").dt.month_start().alias("month"))
            .group_by(group)
            .agg(aggs[m].alias(f"{m}_fact") for m in measures)
        )

    # One provider at a time bounds the memory of the group-by (a peak day's customers' order
    # sets), as the top marts themselves do; an order is (provider, order id), so each measure
    # adds up across providers.
    per_provider = [pl.col(f"{m}_fact").sum() for m in measures]
    theirs = _per_provider(fact, by_key).group_by(group).agg(per_provider)
    ours = mart.select(
        *group,
        "rank",
        *((_cents(m) if m in MONEY else pl.col(m).cast(pl.Int64)).alias(f"{m}_mart") for m in measures),
    )
    both = theirs.join(ours, on=group, how="full", coalesce=True)
    last_listed = pl.col("revenue_mart").min().over("month")
    listed = pl.col("rank").is_not_null()
    return both.with_columns(
        pl.all_horizontal(pl.col(f"{m}_mart") == pl.col(f"{m}_fact") for m in measures)
        .fill_null(False)
        .or_(~listed)
        .alias("matches"),
        (~listed & (pl.col("revenue_fact") > last_listed).fill_null(False)).alias("outsells_list"),
    ).sort(["month", "rank"], nulls_last=True)
