"""Gold dimensions and fact_sales from hand-made silver frames that pass the silver models."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from resight_platform.schemas import SilverCatalog, SilverCustomers, SilverSales, SilverStores
from resight_platform.schemas import gold as models
from resight_platform.sources.mappings import load_mappings
from resight_platform.sources.registry import load_registry
from resight_platform.transforms import gold

D1, D2 = date(2026, 10, 1), date(2026, 10, 2)


def _frame(model: type, rows: list[dict[str, object]]) -> pl.DataFrame:
    schema = model.to_schema()  # type: ignore[attr-defined]
    dtypes = {name: column.dtype.type for name, column in schema.columns.items()}
    frame = pl.DataFrame(rows, schema=dtypes)
    return model.validate(frame)  # type: ignore[attr-defined,no-any-return]


def catalog_row(provider: str, sku: str, day: date, name: str, row: int, **extra: object) -> dict[str, object]:
    return {
        "sku": sku,
        "upc": "012345678905",
        "product_name": name,
        "brand": "KONG",
        "manufacturer": "KONG Company",
        "category": "toys",
        "species": "dog",
        "pack_size": 1.0,
        "pack_unit": "ct",
        "list_price": 9.99,
        "provider": provider,
        "business_date": day,
        "_source_file": f"{provider}/catalog/{day}/catalog.csv",
        "_row_number": row,
        **extra,
    }


def sales_row(provider: str, order: str, line: int, sku: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {
        "order_id": order,
        "line_no": line,
        "ordered_at": datetime(2026, 10, 1, 15, 30, tzinfo=UTC),
        "business_date": D1,
        "provider": provider,
        "store_id": "S1",
        "channel": "store",
        "sku": sku,
        "quantity": 2,
        "unit_price": 9.99,
        "discount": 1.0,
        "net_amount": 18.98,
        "customer_id": "C1",
        "status": "completed",
        "ship_state": None,
        "_source_file": f"{provider}/sales/{D1}/sales.csv",
        "_row_number": line,
    }
    row.update(extra)
    return row


@pytest.fixture
def catalog() -> pl.DataFrame:
    return _frame(
        SilverCatalog,
        [
            catalog_row("pawmart", "K1", D1, "Kong Classic", 1),
            catalog_row("pawmart", "K1", D2, "Kong Classic Large", 1),
            catalog_row("petopia", "K1", D1, "Other shop's K1", 1),
        ],
    )


def test_dim_product_keeps_latest_delivery_per_provider_sku(catalog: pl.DataFrame) -> None:
    dim = gold.build_dim_product(catalog.lazy())
    models.DimProduct.validate(dim)
    assert dim.height == 2
    names = dict(zip(dim["provider"], dim["product_name"], strict=True))
    assert names == {"pawmart": "Kong Classic Large", "petopia": "Other shop's K1"}


def test_surrogate_keys_are_stable_and_distinct(catalog: pl.DataFrame) -> None:
    first = gold.build_dim_product(catalog.lazy())
    again = gold.build_dim_product(catalog.reverse().lazy())
    assert first.sort("product_key").equals(again.sort("product_key"))
    assert first["product_key"].n_unique() == first.height
    assert (first["product_key"] > 0).all()


def test_dim_date_keys_and_calendar() -> None:
    dim = gold.build_dim_date(date(2024, 12, 30), date(2025, 1, 5))
    models.DimDate.validate(dim)
    row = dim.filter(pl.col("date") == date(2025, 1, 4)).row(0, named=True)
    assert row["date_key"] == 20250104
    assert row["week_start"] == date(2024, 12, 30)
    assert row["month_start"] == date(2025, 1, 1)
    assert row["is_weekend"] is True
    assert row["quarter"] == 1


def test_dim_provider_from_registry() -> None:
    registry = load_registry()
    dim = gold.build_dim_provider(registry)
    models.DimProvider.validate(dim)
    assert dim.height == len(registry.providers)


def _dims(catalog: pl.DataFrame) -> dict[str, pl.LazyFrame]:
    stores = _frame(
        SilverStores,
        [
            {
                "store_id": "S1",
                "provider": "pawmart",
                "store_name": "Downtown",
                "city": "Austin",
                "state": "TX",
                "zip": "73301",
                "region": "South",
                "business_date": D1,
                "_source_file": "pawmart/stores/2026-10-01/stores.csv",
                "_row_number": 1,
            }
        ],
    )
    customers = _frame(
        SilverCustomers,
        [
            {
                "customer_id": "C1",
                "provider": "pawmart",
                "signup_date": date(2024, 5, 1),
                "state": "TX",
                "pet_species": "dog",
                "business_date": D1,
                "_source_file": "pawmart/customers/2026-10-01/customers.csv",
                "_row_number": 1,
            }
        ],
    )
    mappings = load_mappings()
    return {
        "dim_provider": gold.build_dim_provider(load_registry()).lazy(),
        "dim_product": gold.build_dim_product(catalog.lazy()).lazy(),
        "dim_store": gold.build_dim_store(stores.lazy()).lazy(),
        "dim_customer": gold.build_dim_customer(customers.lazy(), mappings).lazy(),
    }


def test_fact_sales_resolves_keys_regions_and_unknown_products(catalog: pl.DataFrame) -> None:
    sales = _frame(
        SilverSales,
        [
            sales_row("pawmart", "O1", 1, "K1"),
            sales_row(
                "pawmart",
                "O2",
                1,
                "K1",
                channel="online",
                store_id=None,
                ship_state="WA",
                customer_id=None,
            ),
            sales_row("pawmart", "O3", 1, "NOT-IN-CATALOG", store_id="S-NEW", customer_id="C-NEW"),
        ],
    )
    dims = _dims(catalog)
    fact = gold.build_fact_sales(sales.lazy(), mappings=load_mappings(), **dims)
    models.FactSales.validate(fact)
    by_order = {r["order_id"]: r for r in fact.iter_rows(named=True)}
    store_key = dims["dim_store"].collect()["store_key"][0]
    customer_key = dims["dim_customer"].collect()["customer_key"][0]
    assert by_order["O1"]["store_key"] == store_key
    assert by_order["O1"]["customer_key"] == customer_key
    assert by_order["O1"]["region"] == "South"
    assert by_order["O2"]["store_key"] is None
    assert by_order["O2"]["customer_key"] is None
    assert by_order["O2"]["region"] == "West"
    # Named by the partner but not in the dimension yet: the unknown member, natural keys kept.
    assert by_order["O3"]["product_key"] == gold.UNKNOWN_KEY
    assert by_order["O3"]["store_key"] == gold.UNKNOWN_KEY
    assert by_order["O3"]["customer_key"] == gold.UNKNOWN_KEY
    assert by_order["O3"]["region"] is None
    naturals = {o: (r["provider"], r["sku"], r["store_id"], r["customer_id"]) for o, r in by_order.items()}
    assert naturals == {
        "O1": ("pawmart", "K1", "S1", "C1"),
        "O2": ("pawmart", "K1", None, None),
        "O3": ("pawmart", "NOT-IN-CATALOG", "S-NEW", "C-NEW"),
    }
    assert all(r["date_key"] == 20261001 for r in by_order.values())
    assert fact.columns == gold.FACT_COLUMNS


def test_fact_sales_of_empty_silver_is_empty_with_schema() -> None:
    fact = gold.build_fact_sales(
        pl.LazyFrame(),
        dim_provider=pl.LazyFrame(),
        dim_product=pl.LazyFrame(),
        dim_store=pl.LazyFrame(),
        dim_customer=pl.LazyFrame(),
        mappings=load_mappings(),
    )
    assert fact.height == 0
    models.FactSales.validate(fact)


def test_a_late_dimension_resolves_the_same_sales_when_the_facts_are_built_again(catalog: pl.DataFrame) -> None:
    """Built before the catalog, store list and customer list: unknown members; built again once
    they landed, the same lines on the real members, nothing else changed."""
    sales = _frame(SilverSales, [sales_row("pawmart", "O1", 1, "K1"), sales_row("pawmart", "O1", 2, "K1")])
    empty = {
        "dim_provider": gold.build_dim_provider(load_registry()).lazy(),
        "dim_product": gold.build_dim_product(pl.LazyFrame()).lazy(),
        "dim_store": gold.build_dim_store(pl.LazyFrame()).lazy(),
        "dim_customer": gold.build_dim_customer(pl.LazyFrame(), load_mappings()).lazy(),
    }
    before = gold.build_fact_sales(sales.lazy(), mappings=load_mappings(), **empty)
    models.FactSales.validate(before)
    keys = ["product_key", "store_key", "customer_key"]
    assert before.select(keys).unique().rows() == [(0, 0, 0)]
    dims = _dims(catalog)
    after = gold.build_fact_sales(sales.lazy(), mappings=load_mappings(), **dims)
    models.FactSales.validate(after)
    product = dims["dim_product"].filter(pl.col("provider") == "pawmart").collect()["product_key"][0]
    store = dims["dim_store"].collect()["store_key"][0]
    customer = dims["dim_customer"].collect()["customer_key"][0]
    assert after.select(keys).unique().rows() == [(product, store, customer)]
    assert after["region"].to_list() == ["South", "South"]
    assert before.drop([*keys, "region"]).equals(after.drop([*keys, "region"]))


def test_a_fact_key_without_its_natural_key_breaks_the_model(catalog: pl.DataFrame) -> None:
    sales = _frame(SilverSales, [sales_row("pawmart", "O1", 1, "K1")])
    fact = gold.build_fact_sales(sales.lazy(), mappings=load_mappings(), **_dims(catalog))
    for column, rule in (("store_id", "store_key_only_with_a_store_id"), ("customer_id", "customer_key_only")):
        broken = fact.with_columns(pl.lit(None, dtype=pl.Utf8).alias(column))
        with pytest.raises(Exception, match=rule):
            models.FactSales.validate(broken)
