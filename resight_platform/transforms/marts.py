"""Marts: the business tables ReSight sells, computed from ``fact_sales`` and its dimensions.

Revenue is the net amount of *completed* lines; cancelled and returned lines are reported by
``order_status_impact``. An order is one ``(provider, order_id)``.

A fact on a dimension's unknown member (key 0: a product, store or customer the partner named
before its catalog, store list or customer list arrived) counts everywhere: its brand is
``Unknown``, its category and species ``other``, its region ``Unknown``. The top lists name
products and customers by the fact's own natural keys (provider, sku / customer id) and take their
attributes from the dimension by that natural key, so an SKU not in the catalog yet is listed
under its own SKU with no name.

One definition, two engines (``docs/engines.md``): written in Narwhals, each mart runs on the
engine of the facts it is given: Polars frames in, a Polars DataFrame out (collected); PySpark
DataFrames in, a lazy PySpark DataFrame out. Money is summed in integer cents (exact, so the same
in any order of addition, which Spark's partial aggregation does not keep) and turned into dollars
once, at the end, by the engine's exact kernel (:func:`~resight_platform.engines.kernels.with_dollars`).

Counting distinct orders needs every order of a group in memory at once (3.4 GB for a 20M-line
day). On Polars, an order belongs to one provider, so the marts that count orders or rank
customers (who are per provider too) run one provider at a time (:func:`_per_provider`) and add
up: exact, and each pass reads only that provider's row groups of the fact files (one row group
per chunk of a provider's partition, pruned by their statistics). Spark spills instead: one plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import narwhals as nw
import polars as pl

from resight_platform.engines import lazy_like
from resight_platform.engines.kernels import with_dollars

__all__ = [
    "aov_by_region",
    "brand_share_monthly",
    "daily_sales",
    "monthly_sales",
    "order_status_impact",
    "top_customers_monthly",
    "top_products_monthly",
]

#: A frame of either engine: a Polars DataFrame or LazyFrame, or a PySpark DataFrame. Each mart
#: returns a Polars DataFrame for the first, a lazy PySpark DataFrame for the second.
Frame = Any

TOP_N = 20
#: Every mart, in the order the docs list them.
MART_NAMES = (
    "daily_sales",
    "monthly_sales",
    "brand_share_monthly",
    "top_products_monthly",
    "top_customers_monthly",
    "order_status_impact",
    "aov_by_region",
)
_SEGMENT = ["category", "species", "region", "channel"]


def _lazy(frame: Frame) -> nw.LazyFrame:
    """``frame`` (either engine, native or Narwhals) as a Narwhals LazyFrame."""
    wrapped = frame if isinstance(frame, nw.DataFrame | nw.LazyFrame) else nw.from_native(frame)
    return wrapped.lazy()


def _finish(frame: nw.LazyFrame, by: Sequence[str], descending: bool | Sequence[bool] = False) -> Frame:
    """The mart sorted by ``by``: collected on Polars (streaming), a lazy DataFrame on Spark."""
    native = nw.to_native(frame.sort(list(by), descending=descending, nulls_last=False))
    if isinstance(native, pl.LazyFrame):
        return native.collect(engine="streaming")
    return native


def _cents(column: str) -> nw.Expr:
    """A Float64 dollar column in integer cents. Net amounts are silver's dollars of whole cents,
    so ``× 100`` lands within an ulp of an integer, never near a half: rounding gives the same on
    both engines (Polars rounds halves to even, Spark away from zero)."""
    return (nw.col(column) * 100).round(0).cast(nw.Int64())


def _month(day: str = "sale_date") -> nw.Expr:
    """The first day of ``day``'s month, a Date on both engines (Spark's ``date_trunc`` gives a
    timestamp, at midnight UTC: the session's zone)."""
    return nw.col(day).dt.truncate("1mo").cast(nw.Date()).alias("month")


def _order() -> nw.Expr:
    """An order's identity, (provider, order id), as one text value to count distinct."""
    return nw.concat_str([nw.col("provider_key").cast(nw.String()), nw.col("order_id")], separator="|")


def _enrich(fact: nw.LazyFrame, dim_product: nw.LazyFrame) -> nw.LazyFrame:
    products = dim_product.select("product_key", "brand", "category", "species")
    return fact.join(products, on="product_key", how="left").with_columns(
        nw.col("category").fill_null("other"),
        nw.col("species").fill_null("other"),
        nw.col("brand").fill_null("Unknown"),
        nw.col("region").fill_null("Unknown"),
        _month(),
        _order().alias("_order"),
        _cents("net_amount").alias("_cents"),
    )


def _share_of(amount: str, group: list[str]) -> nw.Expr:
    """Each row's part of its group's ``amount`` (cents: exact sums); 0 in a group whose amount is 0."""
    total = nw.col(amount).sum().over(*group)
    return nw.when(total != 0).then(nw.col(amount) / total).otherwise(nw.lit(0.0)).cast(nw.Float64())


def _completed(fact: nw.LazyFrame) -> nw.LazyFrame:
    return fact.filter(nw.col("status") == "completed")


#: Facts up to this many rows are aggregated all providers at once. One provider at a time bounds
#: a peak day's memory (order sets of 20M lines: 3.35 → 0.41 GiB) but scans every lake file's
#: footer once per provider: 3.5 s a mart on the demo's 1,106 small fact files, 0.1 s at once.
AT_ONCE_ROWS = 2_000_000


def _per_provider(fact: nw.LazyFrame, build: Callable[[nw.LazyFrame], nw.LazyFrame]) -> nw.LazyFrame:
    """``build`` on each provider's rows of ``fact``, the results stacked (``build(fact)`` on an
    empty fact, for its schema); ``build(fact)`` once when ``fact`` is small (:data:`AT_ONCE_ROWS`)
    or on Spark (one plan: Spark spills what does not fit). Either way ``build`` must count an
    order as (provider, order id). On Polars each part is collected here (streaming)."""
    native = nw.to_native(fact)
    if not isinstance(native, pl.LazyFrame):
        return build(fact)

    def collected(part: nw.LazyFrame) -> pl.DataFrame:
        out = nw.to_native(build(part))
        assert isinstance(out, pl.LazyFrame)
        return out.collect(engine="streaming")

    if native.select(pl.len()).collect().item() <= AT_ONCE_ROWS:
        return nw.from_native(collected(fact).lazy())
    keys = native.select(pl.col("provider_key").unique().sort()).collect(engine="streaming").get_column("provider_key")
    parts = [collected(nw.from_native(native.filter(pl.col("provider_key") == key))) for key in keys]
    return nw.from_native((pl.concat(parts) if parts else collected(fact)).lazy())


def _per_order(revenue: str, orders: str) -> nw.Expr:
    """``revenue / orders`` in cents, to the cent, halves away from zero (as Postgres rounds),
    in integers: the float quotient of 78.35 / 2 is 39.17499…, which would round down. (Spark's
    ``//`` is a double division floored: exact for cents below 2^53.)"""
    cents = nw.col(revenue)
    quotient = (2 * cents.abs() + nw.col(orders)) // (2 * nw.col(orders))
    return nw.when(cents < 0).then(quotient * -1).otherwise(quotient).cast(nw.Int64())


def _dollars(frame: nw.LazyFrame, columns: Mapping[str, str], keep: Sequence[str]) -> nw.LazyFrame:
    """``frame`` with the cents ``columns`` ``{name: cents column}`` in dollars, as columns ``keep``."""
    return with_dollars(frame, columns).select(*keep)


def _sales_by(fact: Frame, dim_product: Frame, keys: list[str]) -> Frame:
    """Units, revenue, orders and average order value of completed lines per ``keys``."""
    products = lazy_like(fact, dim_product)

    def partial(part: nw.LazyFrame) -> nw.LazyFrame:
        return (
            _completed(_enrich(part, products))
            .group_by(keys)
            .agg(
                nw.col("quantity").cast(nw.Int64()).sum().alias("units"),
                nw.col("_cents").sum().alias("_revenue"),
                nw.col("_order").n_unique().cast(nw.Int64()).alias("orders"),
            )
        )

    sums = (
        _per_provider(_lazy(fact), partial)
        .group_by(keys)
        .agg(nw.col("units").sum(), nw.col("_revenue").sum(), nw.col("orders").sum())
        .with_columns(_per_order("_revenue", "orders").alias("_per_order"))
    )
    measures = {"revenue": "_revenue", "avg_order_value": "_per_order"}
    return _finish(_dollars(sums, measures, [*keys, "units", "revenue", "orders", "avg_order_value"]), keys)


def daily_sales(fact: Frame, dim_product: Frame) -> Frame:
    """Units, revenue, orders and average order value per day × category × species × region × channel."""
    return _sales_by(fact, dim_product, ["sale_date", *_SEGMENT])


def monthly_sales(fact: Frame, dim_product: Frame) -> Frame:
    """The same measures per calendar month."""
    return _sales_by(fact, dim_product, ["month", *_SEGMENT])


def _month_number() -> nw.Expr:
    """Months since year 0 of ``month``: the month before is this minus one, on both engines."""
    return (nw.col("month").dt.year().cast(nw.Int32()) * 12 + nw.col("month").dt.month().cast(nw.Int32())).alias(
        "_month_number"
    )


def brand_share_monthly(fact: Frame, dim_product: Frame) -> Frame:
    """Each brand's share of revenue per month × category × species × region, and its change
    against the previous month (null when the brand had no sales in that segment the month before)."""
    group = ["month", "category", "species", "region"]
    segment = ["category", "species", "region", "brand"]
    by_brand = (
        _completed(_enrich(_lazy(fact), lazy_like(fact, dim_product)))
        .group_by([*group, "brand"])
        .agg(nw.col("_cents").sum().alias("_revenue"))
        .with_columns(_share_of("_revenue", group).alias("share"), _month_number())
    )
    previous = by_brand.select(
        (nw.col("_month_number") + 1).alias("_month_number"), *segment, nw.col("share").alias("_prev")
    )
    joined = by_brand.join(previous, on=["_month_number", *segment], how="left").with_columns(
        (nw.col("share") - nw.col("_prev")).alias("share_change")
    )
    out = _dollars(joined, {"revenue": "_revenue"}, [*group, "brand", "revenue", "share", "share_change"])
    # brand last: a tie in revenue is listed in one order on both engines
    return _finish(out, [*group, "revenue", "brand"], descending=[False, False, False, False, True, False])


def _top_by_revenue(frame: nw.LazyFrame, ties: list[str], top: int) -> nw.LazyFrame:
    """The ``top`` rows by revenue (``_revenue``, cents) per month (``ties`` break equal
    revenue), ranked from 1. A window ordered ascending, on the revenue negated: Narwhals orders
    windows ascending only."""
    ranked = frame.with_columns((nw.col("_revenue") * -1).alias("_descending")).with_columns(
        nw.col("month").cum_count().over("month", order_by=["_descending", *ties]).cast(nw.Int32()).alias("rank")
    )
    return ranked.filter(nw.col("rank") <= top).drop("_descending")


def top_products_monthly(fact: Frame, dim_product: Frame, top: int = TOP_N) -> Frame:
    """The ``top`` products by revenue per month: a product is the fact's own (provider, sku), its
    name, brand, category and species those of the catalog's member (none yet: no name, brand
    ``Unknown``, category and species ``other``)."""
    by_product = (
        _completed(_lazy(fact))
        .with_columns(_month(), _cents("net_amount").alias("_cents"))
        .group_by(["month", "provider", "sku"])
        .agg(
            nw.col("quantity").cast(nw.Int64()).sum().alias("units"),
            nw.col("_cents").sum().alias("_revenue"),
        )
    )
    ranked = _top_by_revenue(by_product, ["provider", "sku"], top)
    attributes = lazy_like(fact, dim_product).select("provider", "sku", "product_name", "brand", "category", "species")
    listed = ranked.join(attributes, on=["provider", "sku"], how="left").with_columns(
        nw.col("brand").fill_null("Unknown"),
        nw.col("category").fill_null("other"),
        nw.col("species").fill_null("other"),
    )
    columns = ["month", "rank", "provider", "sku", "product_name", "brand", "category", "species", "units", "revenue"]
    return _finish(_dollars(listed, {"revenue": "_revenue"}, columns), ["month", "rank"])


def top_customers_monthly(fact: Frame, dim_product: Frame, dim_customer: Frame, top: int = TOP_N) -> Frame:
    """The ``top`` loyalty customers by revenue per month (anonymous sales excluded): a customer is
    the fact's own (provider, customer id), its region that of the customer list's member (none
    yet: null)."""
    del dim_product  # a customer's sales count whatever their products
    group = ["month", "provider", "customer_id"]

    def ranked(part: nw.LazyFrame) -> nw.LazyFrame:
        # A customer belongs to one provider: the month's top of all providers is among the
        # providers' own tops.
        by_customer = (
            _completed(part)
            .filter(~nw.col("customer_id").is_null())
            .with_columns(_month(), _order().alias("_order"), _cents("net_amount").alias("_cents"))
            .group_by(group)
            .agg(
                nw.col("_order").n_unique().cast(nw.Int64()).alias("orders"),
                nw.col("_cents").sum().alias("_revenue"),
            )
        )
        return _top_by_revenue(by_customer, ["provider", "customer_id"], top)

    regions = lazy_like(fact, dim_customer).select("provider", "customer_id", "region")
    listed = _top_by_revenue(_per_provider(_lazy(fact), ranked).drop("rank"), ["provider", "customer_id"], top).join(
        regions, on=["provider", "customer_id"], how="left"
    )
    columns = ["month", "rank", "provider", "customer_id", "region", "orders", "revenue"]
    return _finish(_dollars(listed, {"revenue": "_revenue"}, columns), ["month", "rank"])


def order_status_impact(fact: Frame, dim_product: Frame) -> Frame:
    """Lines and net amount per order status, and each status's share of the amount, per month ×
    category × region."""
    group = ["month", "category", "region"]
    by_status = (
        _enrich(_lazy(fact), lazy_like(fact, dim_product))
        .group_by([*group, "status"])
        .agg(
            nw.len().cast(nw.Int64()).alias("lines"),
            nw.col("_cents").sum().alias("_amount"),
        )
        .with_columns(_share_of("_amount", group).alias("share_of_amount"))
    )
    columns = [*group, "status", "lines", "amount", "share_of_amount"]
    return _finish(_dollars(by_status, {"amount": "_amount"}, columns), [*group, "status"])


def aov_by_region(fact: Frame, dim_product: Frame) -> Frame:
    """Orders, revenue and average order value per month × region."""
    by_region = _sales_by(fact, dim_product, ["month", "region"])
    return nw.to_native(nw.from_native(by_region).select("month", "region", "orders", "revenue", "avg_order_value"))


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


def fact_totals(fact: Frame, spec: TotalsSpec) -> Frame:
    """``spec``'s measures per period (and keys) computed from fact rows, money in cents."""
    group = [spec.period, *spec.keys]
    completed = nw.col("_completed")
    rows = _lazy(fact).with_columns(
        _month(),
        nw.col("region").fill_null("Unknown"),
        (nw.col("status") == "completed").alias("_completed"),
        _cents("net_amount").alias("_cents"),
        # an order of a completed line, else null (counted as one value, taken off below)
        nw.when(nw.col("status") == "completed").then(_order()).alias("_order"),
    )
    measures = {
        "units": nw.when(completed).then(nw.col("quantity").cast(nw.Int64())).otherwise(nw.lit(0)).sum(),
        "revenue": nw.when(completed).then(nw.col("_cents")).otherwise(nw.lit(0)).sum(),
        "lines": nw.len(),
        "amount": nw.col("_cents").sum(),
        "orders": nw.col("_order").n_unique(),
    }
    wanted = [measures[m].cast(nw.Int64()).alias(m) for m in spec.measures]
    counts_orders = "orders" in spec.measures
    if counts_orders:
        wanted.append((~completed).cast(nw.Int64()).max().alias("_incomplete"))

    def partial(part: nw.LazyFrame) -> nw.LazyFrame:
        sums = part.group_by(group).agg(wanted)
        if counts_orders:  # the null of the lines not completed is not an order
            sums = sums.with_columns((nw.col("orders") - nw.col("_incomplete")).alias("orders")).drop("_incomplete")
        return sums

    # An order is one (provider, order_id): orders are counted per provider, then added up.
    totals = _per_provider(rows, partial) if counts_orders else partial(rows)
    totals = totals.group_by(group).agg(nw.col(m).sum().cast(nw.Int64()) for m in spec.measures)
    if counts_orders:
        totals = totals.filter(nw.col("orders") > 0)  # a group with no completed line has no mart row
    return _finish(totals, group)


def mart_totals(mart: Frame, spec: TotalsSpec) -> Frame:
    """``spec``'s measures of a mart summed per period (and keys), money in cents."""
    group = [spec.period, *spec.keys]
    sums = [(_cents(m) if m in MONEY else nw.col(m).cast(nw.Int64())).sum().alias(m) for m in spec.measures]
    return _finish(_lazy(mart).group_by(group).agg(sums), group)


def _full_join(left: nw.LazyFrame, right: nw.LazyFrame, on: list[str]) -> nw.LazyFrame:
    """A full join of ``left`` and ``right`` on ``on``, the key columns coalesced (Narwhals keeps
    both sides' keys)."""
    joined = left.join(right, on=on, how="full", suffix="_right")
    return joined.with_columns(nw.coalesce(nw.col(k), nw.col(f"{k}_right")).alias(k) for k in on).drop(
        [f"{k}_right" for k in on]
    )


def compare_totals(mart: Frame, fact: Frame, spec: TotalsSpec) -> Frame:
    """One row per period (and keys) found in the mart or the facts: each measure's ``{m}_mart``
    and ``{m}_fact`` (0 where one side has no row) and ``matches``.

    Periods with no completed line have no row in the completed-only marts: such a period's facts
    count only when the mart has it or a completed measure is nonzero."""
    group = [spec.period, *spec.keys]
    ours = _lazy(mart_totals(mart, spec)).rename({m: f"{m}_mart" for m in spec.measures})
    # summed on the facts' engine, the (small) totals then moved to the mart's
    theirs = lazy_like(mart, fact_totals(fact, spec)).rename({m: f"{m}_fact" for m in spec.measures})
    measured = [f"{m}_{side}" for side in ("mart", "fact") for m in spec.measures]
    both = (
        _full_join(ours, theirs, group)
        .select(*group, *measured)
        .with_columns(nw.col(c).fill_null(0) for c in measured)
        .filter(nw.any_horizontal(*(nw.col(c) != 0 for c in measured), ignore_nulls=False))
    )
    same = nw.all_horizontal(*(nw.col(f"{m}_mart") == nw.col(f"{m}_fact") for m in spec.measures), ignore_nulls=False)
    return _finish(both.with_columns(same.alias("matches")), group)


#: How each top mart's rows are found in the facts: the fact's natural key columns that name a
#: listed row, and the measures compared.
TOP_KEYS = {
    "top_products_monthly": (("provider", "sku"), ("units", "revenue")),
    "top_customers_monthly": (("provider", "customer_id"), ("orders", "revenue")),
}


def compare_top(mart: Frame, fact: Frame, name: str) -> Frame:
    """Every product (or customer) that sold in a month, from the facts' own natural keys: its
    measures there (``{m}_fact``), its row of the top mart if listed (``{m}_mart``, ``rank``),
    ``matches`` (a listed row's measures equal the facts'), and ``outsells_list`` (unlisted, but
    sold more than the month's last listed row)."""
    keys, measures = TOP_KEYS[name]
    group = ["month", *keys]
    aggs = {
        "units": nw.col("quantity").cast(nw.Int64()).sum(),
        "revenue": nw.col("_cents").sum(),
        "orders": nw.col("_order").n_unique(),
    }

    def by_key(part: nw.LazyFrame) -> nw.LazyFrame:
        return (
            part.filter(
                (nw.col("status") == "completed")
                & nw.all_horizontal(*(~nw.col(k).is_null() for k in keys), ignore_nulls=False)
            )
            .with_columns(_month(), _cents("net_amount").alias("_cents"), _order().alias("_order"))
            .group_by(group)
            .agg(aggs[m].cast(nw.Int64()).alias(f"{m}_fact") for m in measures)
        )

    # One provider at a time bounds the memory of the group-by (a peak day's customers' order
    # sets), as the top marts themselves do; an order is (provider, order id), so each measure
    # adds up across providers.
    per_provider = [nw.col(f"{m}_fact").sum() for m in measures]
    theirs = lazy_like(mart, _per_provider(_lazy(fact), by_key).group_by(group).agg(per_provider))
    ours = _lazy(mart).select(
        *group,
        "rank",
        *((_cents(m) if m in MONEY else nw.col(m).cast(nw.Int64())).alias(f"{m}_mart") for m in measures),
    )
    both = _full_join(theirs, ours, group).select(
        *group, *(f"{m}_fact" for m in measures), "rank", *(f"{m}_mart" for m in measures)
    )
    last_listed = nw.col("revenue_mart").min().over("month")
    listed = ~nw.col("rank").is_null()
    same = nw.all_horizontal(*(nw.col(f"{m}_mart") == nw.col(f"{m}_fact") for m in measures), ignore_nulls=False)
    compared = both.with_columns(
        (same.fill_null(False) | ~listed).alias("matches"),
        (~listed & (nw.col("revenue_fact") > last_listed).fill_null(False)).alias("outsells_list"),
    )
    native = nw.to_native(compared.sort(["month", "rank"], nulls_last=True))
    return native.collect(engine="streaming") if isinstance(native, pl.LazyFrame) else native
