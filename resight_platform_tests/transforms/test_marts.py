"""Marts against an independent computation in plain Python over the same fact rows; each mart
rule on a frame that breaks it; the ``totals_match_fact_sales`` checks; the charts."""

from __future__ import annotations

import base64
import random
import re
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import dagster as dg
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.defs.mart_checks import TOTALS_CHECK, mart_metadata, top_result, totals_result
from resight_platform.schemas import gold as models
from resight_platform.schemas.validation import Validation
from resight_platform.transforms import marts
from resight_platform.transforms.gold import empty_fact_sales
from resight_platform.transforms.marts import MART_TOTALS

BRANDS = ["KONG", "Royal Canin", "Tetra"]
CATEGORIES = ["food", "toys"]
SPECIES = ["dog", "cat"]
REGIONS = ["South", "West"]
STATUSES = ["completed"] * 8 + ["cancelled", "returned"]


PROVIDERS = {1: "pawmart", 2: "petopia"}
#: Sold but not (yet) in the provider's catalog, store list or customer list: key 0.
UNKNOWN_SKUS = ["NEW-1", "NEW-2"]
UNKNOWN_CUSTOMER = "C-NEW"


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """Facts of two providers, with lines on each dimension's unknown member: products not in the
    catalog, stores not in the store list (no region) and customers not in the customer list."""
    rng = random.Random(5)
    products = [
        {
            "product_key": 100 * provider_key + i,
            "provider": provider,
            "sku": f"S{i}",
            "product_name": f"Product {i}",
            "brand": BRANDS[i % 3],
            "category": CATEGORIES[i % 2],
            "species": SPECIES[(i // 2) % 2],
        }
        for provider_key, provider in PROVIDERS.items()
        for i in range(12)
    ]
    customers = [
        {
            "customer_key": 500 + i,
            "provider": PROVIDERS[1 + i % 2],
            "customer_id": f"C{i}",
            "region": REGIONS[i % 2],
        }
        for i in range(15)
    ]
    rows = []
    start = date(2026, 9, 20)
    for order in range(400):
        provider_key = 1 + order % 2
        day = start + timedelta(days=rng.randrange(25))
        channel = rng.choice(["store", "online"])
        # a customer of the order's provider, an anonymous sale, or one not in the customer list yet
        customer = rng.choice([None, 0, *range(500 + order % 2, 515, 2)])
        region = rng.choice([*REGIONS, None])  # a store's or ship-to state's region; None: store not known yet
        for line in range(1, rng.randint(1, 3) + 1):
            quantity = rng.randint(1, 4)
            price = round(rng.uniform(2, 60), 2)
            discount = rng.choice([0.0, 0.0, 1.5])
            item = rng.randrange(14)
            known = item < 12
            rows.append(
                {
                    "sale_date": day,
                    "provider_key": provider_key,
                    "product_key": 100 * provider_key + item if known else 0,
                    "customer_key": customer,
                    "provider": PROVIDERS[provider_key],
                    "sku": f"S{item}" if known else UNKNOWN_SKUS[item - 12],
                    "customer_id": None
                    if customer is None
                    else (UNKNOWN_CUSTOMER if customer == 0 else f"C{customer - 500}"),
                    "order_id": f"O{order}",
                    "line_no": line,
                    "ordered_at": datetime(day.year, day.month, day.day, 12, tzinfo=UTC),
                    "channel": channel,
                    "quantity": quantity,
                    "unit_price": price,
                    "discount": discount,
                    "net_amount": round(quantity * price - discount, 2),
                    "status": rng.choice(STATUSES),
                    "region": region,
                }
            )
    fact = pl.DataFrame(rows).with_columns(pl.col("customer_key").cast(pl.Int64))
    return fact, pl.DataFrame(products), pl.DataFrame(customers)


def test_the_facts_hold_every_unknown_member(data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]) -> None:
    fact, _, _ = data
    completed = fact.filter(pl.col("status") == "completed")
    assert completed.filter(pl.col("product_key") == 0).height > 10
    assert completed.filter(pl.col("customer_key") == 0).height > 10
    assert completed.filter(pl.col("region").is_null()).height > 10


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


def test_daily_sales_equals_independent_sums(data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]) -> None:
    fact, products, _ = data
    result = marts.daily_sales(fact.lazy(), products.lazy())
    models.DailySales.validate(result)
    product = {p["product_key"]: p for p in products.iter_rows(named=True)}
    revenue: dict[tuple[object, ...], Decimal] = defaultdict(Decimal)
    orders: dict[tuple[object, ...], set[tuple[int, str]]] = defaultdict(set)
    units: dict[tuple[object, ...], int] = defaultdict(int)
    for r in fact.iter_rows(named=True):
        if r["status"] != "completed":
            continue
        p = product.get(r["product_key"], {"category": "other", "species": "other"})
        key = (r["sale_date"], p["category"], p["species"], r["region"] or "Unknown", r["channel"])
        revenue[key] += _money(r["net_amount"])
        orders[key].add((r["provider_key"], r["order_id"]))
        units[key] += r["quantity"]
    got = {
        (r["sale_date"], r["category"], r["species"], r["region"], r["channel"]): r
        for r in result.iter_rows(named=True)
    }
    assert set(got) == set(revenue)
    for key, row in got.items():
        assert _money(row["revenue"]) == revenue[key]
        assert row["orders"] == len(orders[key])
        assert row["units"] == units[key]
        assert abs(row["avg_order_value"] - float(revenue[key]) / len(orders[key])) < 0.006


def test_monthly_sales_totals_equal_daily(data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]) -> None:
    fact, products, _ = data
    daily = marts.daily_sales(fact.lazy(), products.lazy())
    monthly = marts.monthly_sales(fact.lazy(), products.lazy())
    models.MonthlySales.validate(monthly)
    assert monthly["month"].unique().sort().to_list() == [date(2026, 9, 1), date(2026, 10, 1)]
    assert _money(monthly["revenue"].sum()) == _money(daily["revenue"].sum())
    assert monthly["units"].sum() == daily["units"].sum()


def test_brand_share_sums_to_one_and_change_is_against_previous_month(
    data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    fact, products, _ = data
    share = marts.brand_share_monthly(fact.lazy(), products.lazy())
    models.BrandShareMonthly.validate(share)
    sums = share.group_by(["month", "category", "species", "region"]).agg(pl.col("share").sum())
    assert all(abs(s - 1.0) < 1e-9 for s in sums["share"])
    september = {
        (r["category"], r["species"], r["region"], r["brand"]): r["share"]
        for r in share.filter(pl.col("month") == date(2026, 9, 1)).iter_rows(named=True)
    }
    for r in share.filter(pl.col("month") == date(2026, 10, 1)).iter_rows(named=True):
        previous = september.get((r["category"], r["species"], r["region"], r["brand"]))
        if previous is None:
            assert r["share_change"] is None
        else:
            assert abs(r["share_change"] - (r["share"] - previous)) < 1e-12
    assert share.filter(pl.col("month") == date(2026, 9, 1))["share_change"].is_null().all()


def test_top_products_and_customers_are_ranked_by_revenue(
    data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame],
) -> None:
    fact, products, customers = data
    top = marts.top_products_monthly(fact.lazy(), products.lazy(), top=5)
    models.TopProductsMonthly.validate(top)
    for _, group in top.group_by("month"):
        assert group["rank"].to_list() == list(range(1, group.height + 1))
        assert group["revenue"].to_list() == sorted(group["revenue"].to_list(), reverse=True)
        assert group.height == 5
    best = (
        fact.filter((pl.col("status") == "completed") & (pl.col("sale_date") < date(2026, 10, 1)))
        .group_by("provider", "sku")
        .agg(pl.col("net_amount").sum())
        .sort("net_amount", descending=True)
        .row(0, named=True)
    )
    september_first = top.filter((pl.col("month") == date(2026, 9, 1)) & (pl.col("rank") == 1)).row(0, named=True)
    assert (september_first["provider"], september_first["sku"]) == (best["provider"], best["sku"])

    customers_top = marts.top_customers_monthly(fact.lazy(), products.lazy(), customers.lazy(), top=3)
    models.TopCustomersMonthly.validate(customers_top)
    assert customers_top["customer_id"].is_not_null().all()
    assert customers_top.group_by("month").len()["len"].max() == 3


def test_order_status_impact_shares(data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]) -> None:
    fact, products, _ = data
    impact = marts.order_status_impact(fact.lazy(), products.lazy())
    models.OrderStatusImpact.validate(impact)
    assert impact["lines"].sum() == fact.height
    sums = impact.group_by(["month", "category", "region"]).agg(pl.col("share_of_amount").sum())
    assert all(abs(s - 1.0) < 1e-9 for s in sums["share_of_amount"])


def test_aov_by_region(data: tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]) -> None:
    fact, products, _ = data
    aov = marts.aov_by_region(fact.lazy(), products.lazy())
    models.AovByRegion.validate(aov)
    completed = fact.filter(pl.col("status") == "completed")
    assert _money(aov["revenue"].sum()) == _money(completed["net_amount"].sum())
    orders = completed.select(pl.struct("provider_key", "order_id", pl.col("sale_date").dt.month()).n_unique()).item()
    assert aov["orders"].sum() == orders


def test_marts_of_an_empty_fact_are_empty() -> None:
    empty = empty_fact_sales().lazy()
    assert (
        marts.daily_sales(
            empty,
            pl.LazyFrame(
                schema={
                    "product_key": pl.Int64,
                    "provider": pl.Utf8,
                    "sku": pl.Utf8,
                    "product_name": pl.Utf8,
                    "brand": pl.Utf8,
                    "category": pl.Utf8,
                    "species": pl.Utf8,
                }
            ),
        ).height
        == 0
    )


# --- The marts' rules: each model's rules on a frame that keeps them and one that breaks each ----

MARTS = {
    "daily_sales": (models.DailySales, lambda f, p, c: marts.daily_sales(f, p)),
    "monthly_sales": (models.MonthlySales, lambda f, p, c: marts.monthly_sales(f, p)),
    "brand_share_monthly": (models.BrandShareMonthly, lambda f, p, c: marts.brand_share_monthly(f, p)),
    "top_products_monthly": (models.TopProductsMonthly, lambda f, p, c: marts.top_products_monthly(f, p)),
    "top_customers_monthly": (models.TopCustomersMonthly, lambda f, p, c: marts.top_customers_monthly(f, p, c)),
    "order_status_impact": (models.OrderStatusImpact, lambda f, p, c: marts.order_status_impact(f, p)),
    "aov_by_region": (models.AovByRegion, lambda f, p, c: marts.aov_by_region(f, p)),
}

Data = tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]


def _mart(name: str, data: Data) -> pl.DataFrame:
    fact, products, customers = data
    return MARTS[name][1](fact.lazy(), products.lazy(), customers.lazy())


@pytest.mark.parametrize("name", sorted(MARTS))
def test_every_mart_keeps_its_rules(name: str, data: Data) -> None:
    v = Validation(MARTS[name][0])
    v.add(_mart(name, data))
    assert v.rows > 0
    assert v.passed, dict(v.failures)


def _set(frame: pl.DataFrame, row: int, **values: object) -> pl.DataFrame:
    """``frame`` with ``values`` written into row ``row``."""
    index = pl.int_range(pl.len()) == row
    return frame.with_columns(
        pl.when(index).then(pl.lit(value, dtype=frame.schema[column])).otherwise(pl.col(column)).alias(column)
        for column, value in values.items()
    )


BROKEN = [
    # shares sum to 1 per month × category × species × region
    ("brand_share_monthly", {"share": 0.0}, "shares_sum_to_one"),
    ("order_status_impact", {"share_of_amount": 0.0}, "shares_sum_to_one"),
    # no negative revenue
    ("daily_sales", {"revenue": -5.0, "avg_order_value": -5.0}, "revenue.greater_than_or_equal_to(0)"),
    ("monthly_sales", {"revenue": -5.0, "avg_order_value": -5.0}, "revenue.greater_than_or_equal_to(0)"),
    ("brand_share_monthly", {"revenue": -5.0}, "revenue.greater_than_or_equal_to(0)"),
    ("top_products_monthly", {"revenue": -5.0}, "revenue.greater_than_or_equal_to(0)"),
    ("top_customers_monthly", {"revenue": -5.0}, "revenue.greater_than_or_equal_to(0)"),
    ("order_status_impact", {"amount": -5.0}, "amount.greater_than_or_equal_to(0)"),
    ("aov_by_region", {"revenue": -5.0, "avg_order_value": -5.0}, "revenue.greater_than_or_equal_to(0)"),
    # shares between 0 and 1, changes between -1 and 1
    ("brand_share_monthly", {"share": 1.5}, "share.in_range"),
    ("brand_share_monthly", {"share_change": -2.0}, "share_change.in_range"),
    ("order_status_impact", {"share_of_amount": -0.5}, "share_of_amount.in_range"),
    # average order value is revenue / orders
    ("daily_sales", {"avg_order_value": 1_000_000.0}, "avg_order_value_is_revenue_per_order"),
    ("monthly_sales", {"avg_order_value": 1_000_000.0}, "avg_order_value_is_revenue_per_order"),
    ("aov_by_region", {"avg_order_value": 1_000_000.0}, "avg_order_value_is_revenue_per_order"),
    # counts
    ("daily_sales", {"orders": 0}, "orders.greater_than(0)"),
    ("daily_sales", {"units": 0}, "units.greater_than(0)"),
    ("top_products_monthly", {"units": 0}, "units.greater_than(0)"),
    ("top_customers_monthly", {"orders": 0}, "orders.greater_than(0)"),
    ("aov_by_region", {"orders": 0}, "orders.greater_than(0)"),
    ("order_status_impact", {"lines": 0}, "lines.greater_than(0)"),
    ("order_status_impact", {"status": "lost"}, "status.isin"),
    ("daily_sales", {"channel": "fax"}, "channel.isin"),
    ("top_products_monthly", {"rank": 0}, "rank.greater_than(0)"),
]


@pytest.mark.parametrize(("name", "values", "rule"), BROKEN, ids=[f"{n}-{r}" for n, _, r in BROKEN])
def test_each_mart_rule_catches_a_row_that_breaks_it(
    name: str, values: dict[str, object], rule: str, data: Data
) -> None:
    v = Validation(MARTS[name][0])
    v.add(_set(_mart(name, data), 0, **values))
    assert any(failed.startswith(rule) for failed in v.failures), dict(v.failures)


@pytest.mark.parametrize(
    ("name", "grain"),
    [
        ("daily_sales", ["sale_date", "category", "species", "region", "channel"]),
        ("monthly_sales", ["month", "category", "species", "region", "channel"]),
        ("brand_share_monthly", ["month", "category", "species", "region", "brand"]),
        ("top_products_monthly", ["month", "rank"]),
        ("top_customers_monthly", ["month", "rank"]),
        ("order_status_impact", ["month", "category", "region", "status"]),
        ("aov_by_region", ["month", "region"]),
    ],
)
def test_a_mart_row_repeated_breaks_its_grain(name: str, grain: list[str], data: Data) -> None:
    mart = _mart(name, data)
    twice = pl.concat([mart, mart.head(1)])
    v = Validation(MARTS[name][0])
    v.add(twice)
    assert "multiple_fields_uniqueness" in v.failures, dict(v.failures)
    assert MARTS[name][0].to_schema().unique == grain


def test_a_segment_with_no_revenue_has_shares_of_zero() -> None:
    """A segment whose completed lines are all free: shares are 0 there, not NaN, and the rule holds."""
    day = date(2026, 10, 3)
    fact = pl.DataFrame(
        {
            "sale_date": [day, day],
            "provider_key": [1, 1],
            "product_key": [1, 2],
            "customer_key": pl.Series([None, None], dtype=pl.Int64),
            "order_id": ["A", "B"],
            "line_no": [1, 1],
            "channel": ["store", "store"],
            "quantity": [1, 1],
            "unit_price": [0.0, 0.0],
            "discount": [0.0, 0.0],
            "net_amount": [0.0, 0.0],
            "status": ["completed", "cancelled"],
            "region": ["West", "West"],
        }
    )
    products = pl.DataFrame(
        {
            "product_key": [1, 2],
            "provider": ["p", "p"],
            "sku": ["a", "b"],
            "product_name": ["A", "B"],
            "brand": ["X", "Y"],
            "category": ["food", "food"],
            "species": ["dog", "dog"],
        }
    )
    share = marts.brand_share_monthly(fact.lazy(), products.lazy())
    assert share["share"].to_list() == [0.0]
    models.BrandShareMonthly.validate(share)
    impact = marts.order_status_impact(fact.lazy(), products.lazy())
    assert impact["share_of_amount"].to_list() == [0.0, 0.0]
    models.OrderStatusImpact.validate(impact)


# --- totals_match_fact_sales --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MARTS))
def test_totals_check_passes_on_the_marts_built_from_the_facts(name: str, data: Data) -> None:
    fact = data[0]
    mart = _mart(name, data)
    if name in marts.TOP_KEYS:
        result = top_result(name, mart, fact.lazy())
        assert result.metadata["rows_compared"].value == mart.height
    else:
        result = totals_result(name, mart, fact.lazy())
        spec = marts.MART_TOTALS[name]
        assert result.metadata["periods_compared"].value == mart[spec.period].n_unique()
        for measure in spec.measures:
            assert result.metadata[f"{measure}_difference"].value == 0
            assert result.metadata[f"{measure}_mart"].value == result.metadata[f"{measure}_fact_sales"].value
    assert result.passed, result.metadata
    assert result.check_name == TOTALS_CHECK


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("daily_sales", {"revenue": 1.0}),
        ("daily_sales", {"units": 99}),
        ("monthly_sales", {"revenue": 0.01}),
        ("monthly_sales", {"units": 1000}),
        ("brand_share_monthly", {"revenue": 0.5}),
        ("order_status_impact", {"lines": 77}),
        ("order_status_impact", {"amount": 3.0}),
        ("aov_by_region", {"orders": 500}),
        ("aov_by_region", {"revenue": 9.99}),
        ("top_products_monthly", {"units": 555}),
        ("top_products_monthly", {"revenue": 0.01}),
        ("top_customers_monthly", {"orders": 42}),
    ],
)
def test_totals_check_fails_when_a_mart_disagrees_with_the_facts(
    name: str, values: dict[str, object], data: Data
) -> None:
    fact = data[0]
    mart = _mart(name, data)
    broken = _set(mart, 0, **values)
    if name in marts.TOP_KEYS:
        result = top_result(name, broken, fact.lazy())
        assert result.metadata["rows_that_differ"].value == 1
    else:
        result = totals_result(name, broken, fact.lazy())
        assert result.metadata["groups_that_differ"].value == 1
        assert any(result.metadata[f"{m}_difference"].value != 0 for m in values)
    assert not result.passed
    assert "differences" in result.metadata


def test_totals_check_fails_on_a_lost_or_doubled_row(data: Data) -> None:
    fact, products, _ = data
    mart = marts.monthly_sales(fact.lazy(), products.lazy())
    assert not totals_result("monthly_sales", mart.tail(-1), fact.lazy()).passed
    assert not totals_result("monthly_sales", pl.concat([mart, mart.head(1)]), fact.lazy()).passed
    # a fact line the mart never saw: a day's totals differ
    extra = fact.head(1).with_columns(pl.lit("completed").alias("status"), pl.lit("NEW").alias("order_id"))
    daily = marts.daily_sales(fact.lazy(), products.lazy())
    result = totals_result("daily_sales", daily, pl.concat([fact, extra]).lazy())
    assert not result.passed
    assert result.metadata["units_difference"].value == -extra["quantity"][0]


def test_top_check_fails_when_an_unlisted_product_sold_more(data: Data) -> None:
    fact, products, _ = data
    top = marts.top_products_monthly(fact.lazy(), products.lazy(), top=5)
    assert top_result("top_products_monthly", top, fact.lazy()).passed
    # drop a month's first product: it is not listed and outsells the last listed one
    result = top_result("top_products_monthly", top.filter(pl.col("rank") != 1), fact.lazy())
    assert not result.passed
    assert result.metadata["unlisted_that_sold_more"].value == top["month"].n_unique()


def test_checks_of_empty_marts_pass() -> None:
    empty = empty_fact_sales().lazy()
    for name in sorted(MART_TOTALS):
        model = MARTS[name][0]
        frame = pl.DataFrame(schema={n: c.dtype.type for n, c in model.to_schema().columns.items()})
        assert totals_result(name, frame, empty).passed
    frame = pl.DataFrame(schema={n: c.dtype.type for n, c in models.TopProductsMonthly.to_schema().columns.items()})
    assert top_result("top_products_monthly", frame, empty).passed


# --- Metadata: row count, preview and a chart ------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MARTS))
def test_every_mart_carries_row_count_preview_and_a_png_chart(name: str, data: Data) -> None:
    mart = _mart(name, data)
    metadata = mart_metadata(name, mart)
    assert metadata["dagster/row_count"].value == mart.height
    assert isinstance(metadata["preview"], dg.MarkdownMetadataValue)
    chart = metadata["chart"]
    assert isinstance(chart, dg.MarkdownMetadataValue)
    match = re.fullmatch(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", chart.md_str)
    assert match, chart.md_str[:80]
    png = base64.b64decode(match.group(1))
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(png) < 60_000


@pytest.mark.parametrize("name", sorted(MARTS))
def test_charts_of_empty_marts_say_so(name: str) -> None:
    model = MARTS[name][0]
    frame = pl.DataFrame(schema={n: c.dtype.type for n, c in model.to_schema().columns.items()})
    metadata = mart_metadata(name, frame)
    assert metadata["dagster/row_count"].value == 0
    assert "no rows" in metadata["chart"].md_str  # type: ignore[union-attr]


def test_average_order_value_rounds_a_half_cent_up() -> None:
    """78.35 over 2 orders is 39.175: 39.18, although the float quotient is 39.17499…"""
    day = date(2026, 10, 3)
    fact = pl.DataFrame(
        {
            "sale_date": [day, day],
            "provider_key": [1, 1],
            "product_key": [1, 1],
            "customer_key": pl.Series([None, None], dtype=pl.Int64),
            "order_id": ["A", "B"],
            "channel": ["store", "store"],
            "quantity": [1, 1],
            "net_amount": [40.00, 38.35],
            "status": ["completed", "completed"],
            "region": ["West", "West"],
        }
    )
    products = pl.DataFrame(
        {"product_key": [1], "provider": ["p"], "sku": ["a"], "product_name": ["A"], "brand": ["X"]}
    ).with_columns(category=pl.lit("food"), species=pl.lit("dog"))
    for build in (marts.daily_sales, marts.monthly_sales, marts.aov_by_region):
        assert build(fact.lazy(), products.lazy())["avg_order_value"].to_list() == [39.18]


@pytest.mark.parametrize("name", sorted(MARTS))
def test_marts_and_their_checks_are_the_same_one_provider_at_a_time(
    name: str, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small facts are aggregated at once, big ones one provider at a time: the same marts and the
    same check results, with a third provider reusing the order ids of another (an order is a
    provider's order id, counted once per provider)."""
    fact, products, customers = data
    reused = fact.filter(pl.col("provider_key") == 1).with_columns(
        pl.lit(3, dtype=fact.schema["provider_key"]).alias("provider_key"),
        pl.lit("chewyish").alias("provider"),
        pl.lit(0, dtype=pl.Int64).alias("product_key"),  # a provider with no catalog yet
        pl.lit(None, dtype=pl.Int64).alias("customer_key"),
        pl.lit(None, dtype=pl.Utf8).alias("customer_id"),
    )
    facts = pl.concat([fact, reused])
    both = (facts, products, customers)

    def build() -> tuple[pl.DataFrame, dict[str, object]]:
        mart = _mart(name, both)
        if name in marts.TOP_KEYS:
            result = top_result(name, mart, facts.lazy())
        else:
            result = totals_result(name, mart, facts.lazy())
        assert result.passed, result.metadata
        return mart, {key: value.value for key, value in result.metadata.items()}

    at_once = build()
    monkeypatch.setattr(marts, "AT_ONCE_ROWS", 0)
    per_provider = build()
    # Floats summed in another order may differ in the last bits (shares); counts and cents do not.
    assert_frame_equal(at_once[0], per_provider[0], check_exact=False, rel_tol=1e-9, abs_tol=1e-12)
    assert at_once[1] == per_provider[1]
    if name == "aov_by_region":  # the reused ids are orders of their own
        assert at_once[0]["orders"].sum() > _mart(name, data)["orders"].sum()


def test_unknown_members_flow_through_every_mart_with_meaningful_values() -> None:
    """Sales on an SKU not in the catalog, a store not in the store list and a customer not in the
    customer list: every mart keeps its rules and shows them, worked out by hand."""
    day, month = date(2026, 10, 5), date(2026, 10, 1)

    def line(
        order: str,
        no: int,
        sku: str,
        product_key: int,
        customer: str | None,
        customer_key: int | None,
        region: str | None,
        quantity: int,
        net: float,
        status: str = "completed",
        channel: str = "store",
    ) -> dict[str, object]:
        return {
            "sale_date": day,
            "provider_key": 1,
            "product_key": product_key,
            "customer_key": customer_key,
            "provider": "pawmart",
            "sku": sku,
            "customer_id": customer,
            "order_id": order,
            "line_no": no,
            "channel": channel,
            "quantity": quantity,
            "net_amount": net,
            "status": status,
            "region": region,
        }

    fact = pl.DataFrame(
        [
            line("A", 1, "K1", 11, "C1", 21, "South", 1, 10.0),  # all known
            line("B", 1, "NEW", 0, "C-NEW", 0, None, 2, 30.0),  # unknown product, customer and store
            line("B", 2, "K1", 11, "C-NEW", 0, None, 1, 5.0),
            line("C", 1, "NEW", 0, None, None, "West", 1, 7.0, status="returned", channel="online"),
        ],
        schema_overrides={"customer_key": pl.Int64, "customer_id": pl.Utf8, "region": pl.Utf8},
    ).lazy()
    products = pl.LazyFrame(
        [
            {
                "product_key": 11,
                "provider": "pawmart",
                "sku": "K1",
                "product_name": "Kong",
                "brand": "KONG",
                "category": "toys",
                "species": "dog",
            }
        ]
    )
    customers = pl.LazyFrame([{"customer_key": 21, "provider": "pawmart", "customer_id": "C1", "region": "South"}])
    built = {name: build(fact, products, customers) for name, (_, build) in MARTS.items()}
    for name, frame in built.items():
        MARTS[name][0].validate(frame)

    def rows(name: str, columns: list[str]) -> set[tuple[object, ...]]:
        return set(built[name].select(columns).rows())

    sales = ["category", "species", "region", "channel", "units", "revenue", "orders", "avg_order_value"]
    expected_sales = {
        ("toys", "dog", "South", "store", 1, 10.0, 1, 10.0),
        ("other", "other", "Unknown", "store", 2, 30.0, 1, 30.0),
        ("toys", "dog", "Unknown", "store", 1, 5.0, 1, 5.0),
    }
    assert rows("daily_sales", sales) == expected_sales
    assert rows("monthly_sales", sales) == expected_sales
    assert rows("brand_share_monthly", ["category", "species", "region", "brand", "revenue", "share"]) == {
        ("toys", "dog", "South", "KONG", 10.0, 1.0),
        ("other", "other", "Unknown", "Unknown", 30.0, 1.0),
        ("toys", "dog", "Unknown", "KONG", 5.0, 1.0),
    }
    top = ["month", "rank", "provider", "sku", "product_name", "brand", "category", "species", "units", "revenue"]
    assert built["top_products_monthly"].select(top).rows() == [
        (month, 1, "pawmart", "NEW", None, "Unknown", "other", "other", 2, 30.0),
        (month, 2, "pawmart", "K1", "Kong", "KONG", "toys", "dog", 2, 15.0),
    ]
    assert built["top_customers_monthly"].rows() == [
        (month, 1, "pawmart", "C-NEW", None, 1, 35.0),
        (month, 2, "pawmart", "C1", "South", 1, 10.0),
    ]
    assert rows("order_status_impact", ["category", "region", "status", "lines", "amount", "share_of_amount"]) == {
        ("toys", "South", "completed", 1, 10.0, 1.0),
        ("other", "Unknown", "completed", 1, 30.0, 1.0),
        ("toys", "Unknown", "completed", 1, 5.0, 1.0),
        ("other", "West", "returned", 1, 7.0, 1.0),
    }
    assert rows("aov_by_region", ["region", "orders", "revenue", "avg_order_value"]) == {
        ("South", 1, 10.0, 10.0),
        ("Unknown", 1, 35.0, 35.0),
    }
    for name, frame in built.items():
        result = top_result(name, frame, fact) if name in marts.TOP_KEYS else totals_result(name, frame, fact)
        assert result.passed, (name, result.metadata)
