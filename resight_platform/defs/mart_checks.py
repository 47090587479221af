"""What the marts report besides their model check: ``totals_match_fact_sales`` (a mart's figures
add up to the facts it was built from) and the metadata people look at (a preview and a chart).

The comparisons themselves are plain frame functions in ``transforms/marts.py``; this module turns
them into Dagster check results and metadata. Like the marts' ``matches_model``, the totals check
is non-blocking: a mart that disagrees with the facts is written and reported, and nothing
downstream is held back.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import dagster as dg
import polars as pl

from resight_platform.defs.metadata import chart_markdown, markdown_preview
from resight_platform.transforms import marts

__all__ = [
    "TOTALS_CHECK",
    "mart_metadata",
    "top_result",
    "totals_check_spec",
    "totals_result",
]

TOTALS_CHECK = "totals_match_fact_sales"

#: Rows that differ shown in a failed check's metadata.
_SHOWN = 20


def totals_check_spec(name: str) -> dg.AssetCheckSpec:
    """The ``totals_match_fact_sales`` check of the mart ``name``."""
    if name in marts.TOP_KEYS:
        keys, measures = marts.TOP_KEYS[name]
        what = (
            f"each listed row's {' and '.join(measures)} equal the facts' for its {', '.join(keys)} (the facts'"
            " own natural keys, resolved or not) and month,"
            " and nothing unlisted sold more in that month than the last listed row"
        )
    else:
        spec = marts.MART_TOTALS[name]
        per = " × ".join([spec.period, *spec.keys])
        what = f"the sums of {', '.join(spec.measures)} per {per} equal the same sums over gold.fact_sales"
    return dg.AssetCheckSpec(
        TOTALS_CHECK,
        asset=dg.AssetKey(["marts", name]),
        blocking=False,
        description=f"Against gold.fact_sales, the input it was built from: {what} (money to the cent).",
    )


def _money(measure: str, value: int) -> dg.MetadataValue:
    """A measure's total: dollars for money (compared in cents), else the count."""
    return dg.MetadataValue.float(value / 100) if measure in marts.MONEY else dg.MetadataValue.int(value)


def _periods(values: pl.Series) -> str:
    shown = [v.isoformat() if isinstance(v, date) else str(v) for v in values.unique().sort().to_list()]
    return ", ".join(shown[:_SHOWN]) + (" …" if len(shown) > _SHOWN else "")


def totals_result(name: str, mart: pl.DataFrame, fact: pl.LazyFrame) -> dg.AssetCheckResult:
    """Compare a mart's totals per period with the facts (``marts.MART_TOTALS[name]``)."""
    spec = marts.MART_TOTALS[name]
    compared = marts.compare_totals(mart, fact, spec)
    differ = compared.filter(~pl.col("matches"))
    metadata: dict[str, dg.MetadataValue] = {
        "periods_compared": dg.MetadataValue.int(compared.get_column(spec.period).n_unique()),
        "periods": dg.MetadataValue.text(_periods(compared.get_column(spec.period))),
        "groups_that_differ": dg.MetadataValue.int(differ.height),
    }
    for measure in spec.measures:
        ours = int(compared.get_column(f"{measure}_mart").sum())
        theirs = int(compared.get_column(f"{measure}_fact").sum())
        metadata[f"{measure}_mart"] = _money(measure, ours)
        metadata[f"{measure}_fact_sales"] = _money(measure, theirs)
        metadata[f"{measure}_difference"] = _money(measure, ours - theirs)
    if differ.height:
        metadata["differences"] = markdown_preview(differ, rows=_SHOWN)
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(["marts", name]),
        check_name=TOTALS_CHECK,
        passed=not differ.height,
        metadata=metadata,
        description=None if not differ.height else f"{differ.height} {spec.period} groups differ from gold.fact_sales",
    )


def top_result(name: str, mart: pl.DataFrame, fact: pl.LazyFrame) -> dg.AssetCheckResult:
    """Compare a top mart's rows with the facts (``marts.compare_top``)."""
    _, measures = marts.TOP_KEYS[name]
    compared = marts.compare_top(mart, fact, name)
    listed = compared.filter(pl.col("rank").is_not_null())
    differ = compared.filter(~pl.col("matches"))
    outsell = compared.filter(pl.col("outsells_list"))
    metadata: dict[str, dg.MetadataValue] = {
        "periods_compared": dg.MetadataValue.int(compared.get_column("month").n_unique()),
        "periods": dg.MetadataValue.text(_periods(compared.get_column("month"))),
        "rows_compared": dg.MetadataValue.int(listed.height),
        "rows_that_differ": dg.MetadataValue.int(differ.height),
        "unlisted_that_sold_more": dg.MetadataValue.int(outsell.height),
    }
    for measure in measures:
        ours = int(listed.get_column(f"{measure}_mart").fill_null(0).sum())
        theirs = int(listed.get_column(f"{measure}_fact").fill_null(0).sum())
        metadata[f"{measure}_mart"] = _money(measure, ours)
        metadata[f"{measure}_fact_sales"] = _money(measure, theirs)
        metadata[f"{measure}_difference"] = _money(measure, ours - theirs)
    if differ.height or outsell.height:
        metadata["differences"] = markdown_preview(pl.concat([differ, outsell]), rows=_SHOWN)
    passed = not differ.height and not outsell.height
    return dg.AssetCheckResult(
        asset_key=dg.AssetKey(["marts", name]),
        check_name=TOTALS_CHECK,
        passed=passed,
        metadata=metadata,
        description=None
        if passed
        else f"{differ.height} listed rows differ from gold.fact_sales; {outsell.height} unlisted sold more",
    )


def _latest_month(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(pl.col("month") == pl.col("month").max())


def _aov_by_month(frame: pl.DataFrame) -> pl.DataFrame:
    return (
        frame.group_by("month", "region")
        .agg((pl.col("revenue").sum() / pl.col("orders").sum()).alias("avg_order_value"))
        .sort("month")
    )


#: Each mart's chart: what to plot from its frame.
_CHARTS: dict[str, Callable[[pl.DataFrame], dg.MarkdownMetadataValue]] = {
    "daily_sales": lambda f: chart_markdown(
        f, "sale_date", "revenue", series="category", title="Revenue (USD) by day and category"
    ),
    "monthly_sales": lambda f: chart_markdown(
        f, "month", "revenue", series="category", kind="bar", title="Revenue (USD) by month and category"
    ),
    "brand_share_monthly": lambda f: chart_markdown(
        _latest_month(f).group_by("brand").agg(pl.col("revenue").sum()).sort("revenue", descending=True).head(12),
        "brand",
        "revenue",
        kind="bar",
        title="Top brands by revenue (USD), latest month",
    ),
    "top_products_monthly": lambda f: chart_markdown(
        _latest_month(f).sort("rank").head(10).with_columns(pl.format("{} {}", "provider", "sku").alias("product")),
        "product",
        "revenue",
        kind="bar",
        title="Top products by revenue (USD), latest month",
    ),
    "top_customers_monthly": lambda f: chart_markdown(
        _latest_month(f)
        .sort("rank")
        .head(10)
        .with_columns(pl.format("{} {}", "provider", "customer_id").alias("customer")),
        "customer",
        "revenue",
        kind="bar",
        title="Top customers by revenue (USD), latest month",
    ),
    "order_status_impact": lambda f: chart_markdown(
        f, "month", "amount", series="status", kind="bar", title="Net amount (USD) by month and status"
    ),
    "aov_by_region": lambda f: chart_markdown(
        _aov_by_month(f), "month", "avg_order_value", series="region", kind="bar", title="Average order value (USD)"
    ),
}


def mart_metadata(name: str, frame: pl.DataFrame, *, detail: bool = True) -> dict[str, dg.MetadataValue]:
    """A mart's materialisation metadata: row count, and (``detail``, see
    ``metadata.DETAILED_METADATA_PARTITIONS``) a preview and its chart."""
    metadata: dict[str, dg.MetadataValue] = {"dagster/row_count": dg.MetadataValue.int(frame.height)}
    if detail:
        metadata |= {"preview": markdown_preview(frame), "chart": _CHARTS[name](frame)}
    return metadata
