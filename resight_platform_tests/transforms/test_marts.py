"""Marts against an independent computation in plain Python over the same fact rows."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import polars as pl
import pytest

from resight_platform.schemas import gold as models
from resight_platform.transforms import marts
from resight_platform.transforms.gold import empty_fact_sales

BRANDS = ["KONG", "Royal Canin", "Tetra"]
CATEGORIES = ["food", "toys"]
SPECIES = ["dog", "cat"]
REGIONS = ["South", "West"]
STATUSES = ["completed"] * 8 + ["cancelled", "returned"]


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rng = random.Random(5)
    products = [
        {
            "product_key": 100 + i,
            "provider": "pawmart",
            "sku": f"S{i}",
            "product_name": f"Product {i}",
            "brand": BRANDS[i % 3],
            "category": CATEGORIES[i % 2],
            "species": SPECIES[(i // 2) % 2],
        }
        for i in range(12)
    ]
    customers = [
        {"customer_key": 500 + i, "provider": "pawmart", "customer_id": f"C{i}", "region": REGIONS[i % 2]}
        for i in range(15)
    ]
    rows = []
    start = date(2026, 9, 20)
    for order in range(400):
        day = start + timedelta(days=rng.randrange(25))
        channel = rng.choice(["store", "online"])
        customer = rng.choice([None, *range(500, 515)])
        region = rng.choice(REGIONS)  # a store's or a ship-to state's region: one per order
        for line in range(1, rng.randint(1, 3) + 1):
            quantity = rng.randint(1, 4)
            price = round(rng.uniform(2, 60), 2)
            discount = rng.choice([0.0, 0.0, 1.5])
            rows.append(
                {
                    "sale_date": day,
                    "provider_key": 1 + order % 2,
                    "product_key": 100 + rng.randrange(12),
                    "customer_key": customer,
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
        p = product[r["product_key"]]
        key = (r["sale_date"], p["category"], p["species"], r["region"], r["channel"])
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
        .group_by("product_key")
        .agg(pl.col("net_amount").sum())
        .sort("net_amount", descending=True)
        .row(0, named=True)
    )
    september_first = top.filter((pl.col("month") == date(2026, 9, 1)) & (pl.col("rank") == 1)).row(0, named=True)
    assert september_first["sku"] == f"S{best['product_key'] - 100}"

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
