"""The gold fact model's rules, each with a row that breaks it, and the fact table's cross-table
checks (keys in their dimensions, totals equal silver's) on frames that break them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import dagster as dg
import polars as pl
import pytest

from resight_platform.defs.checks import KeysCheck, Reconciliation, checks_failed, reconcile_result
from resight_platform.schemas.gold import DimProduct, FactSales
from resight_platform.schemas.validation import Validation


def fact_row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "sale_date": date(2026, 10, 1),
        "date_key": 20261001,
        "provider_key": 11,
        "product_key": 21,
        "store_key": 31,
        "customer_key": None,
        "provider": "pawmart",
        "sku": "SKU-1",
        "store_id": "S1",
        "customer_id": None,
        "order_id": "O-1",
        "line_no": 1,
        "ordered_at": datetime(2026, 10, 1, 14, tzinfo=UTC),
        "channel": "store",
        "quantity": 2,
        "unit_price": 12.99,
        "discount": 1.0,
        "net_amount": 24.98,
        "status": "completed",
        "ship_state": None,
        "region": "Northeast",
        "source_file": "pawmart/sales/2026-10-01/a.csv",
    }
    row.update(values)
    return row


def fact_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    schema = {name: column.dtype.type for name, column in FactSales.to_schema().columns.items()}
    return pl.DataFrame(list(rows), schema=schema)


def test_a_valid_fact_row_passes() -> None:
    v = Validation(FactSales)
    v.add(fact_frame(fact_row()))
    assert v.passed


def test_facts_on_every_unknown_member_pass() -> None:
    """A product, store and customer named by the partner but not in their dimensions yet: key 0."""
    v = Validation(FactSales)
    v.add(fact_frame(fact_row(product_key=0, store_key=0, customer_key=0, customer_id="C-NEW")))
    assert v.passed, dict(v.failures)


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"net_amount": 30.0}, "net_is_quantity_times_price_minus_discount"),
        ({"quantity": 0, "net_amount": -1.0}, "quantity.greater_than(0)"),
        ({"unit_price": -1.0, "net_amount": -3.0}, "unit_price.greater_than_or_equal_to(0)"),
        ({"discount": -1.0, "net_amount": 26.98}, "discount.greater_than_or_equal_to(0)"),
        ({"status": "pending"}, "status.isin"),
        ({"channel": "fax"}, "channel.isin"),
        ({"line_no": 0}, "line_no.greater_than(0)"),
        ({"product_key": -1}, "product_key.greater_than_or_equal_to(0)"),
        ({"sale_date": datetime.now(UTC).date() + timedelta(days=3)}, "no_sale_in_the_future"),
        ({"order_id": None}, "order_id.not_nullable"),
        ({"sku": None}, "sku.not_nullable"),
        ({"provider": None}, "provider.not_nullable"),
        ({"store_key": -1}, "store_key.greater_than_or_equal_to(0)"),
        # a key exactly when the partner named the member (key 0 when the dimension lacks it)
        ({"store_id": None}, "store_key_only_with_a_store_id"),
        ({"store_key": None}, "store_key_only_with_a_store_id"),
        ({"customer_id": "C1"}, "customer_key_only_with_a_customer_id"),
        ({"customer_key": 0}, "customer_key_only_with_a_customer_id"),
    ],
)
def test_each_fact_rule_catches_a_row_that_breaks_it(values: dict[str, Any], rule: str) -> None:
    v = Validation(FactSales)
    v.add(fact_frame(fact_row(), fact_row(**{"line_no": 2, **values})))
    assert v.failing_rows == 1
    assert any(name.startswith(rule) for name in v.failures), dict(v.failures)


def test_a_fact_key_missing_from_its_dimension_fails_the_keys_check() -> None:
    check = KeysCheck(
        {
            "provider_key": pl.Series([11, 0]),
            "product_key": pl.Series([21, 0]),
            "store_key": pl.Series([0]),  # store 31 is not in dim_store
            "customer_key": pl.Series([0]),
        }
    )
    check.frame(fact_frame(fact_row(), fact_row(line_no=2, store_key=None)))  # a null key is not checked
    result = check.result()
    assert not result.passed
    assert result.metadata["rows_with_unknown_key_by_column"] == dg.MetadataValue.json(
        {"provider_key": 0, "product_key": 0, "store_key": 1, "customer_key": 0}
    )
    assert result.metadata["example_keys"] == dg.MetadataValue.json({"store_key": [31]})


def test_facts_that_lost_or_doubled_rows_do_not_reconcile_with_silver() -> None:
    silver = {"2026-10-01|pawmart": (10, 2_498), "2026-10-01|petopia": (4, 100)}
    assert reconcile_result(silver, dict(silver)).passed
    lost = reconcile_result(silver, {"2026-10-01|pawmart": (9, 2_400), "2026-10-01|petopia": (4, 100)})
    assert not lost.passed
    assert lost.metadata["partitions_that_differ"] == dg.MetadataValue.json(
        {"2026-10-01|pawmart": {"silver": [10, 2_498], "gold": [9, 2_400]}}
    )
    assert not reconcile_result(silver, {"2026-10-01|pawmart": (10, 2_498)}).passed  # a partition missing


def test_the_keys_check_names_the_partitions_with_unknown_keys() -> None:
    check = KeysCheck(
        {
            "provider_key": pl.Series([11, 0]),
            "product_key": pl.Series([0]),
            "store_key": pl.Series([0, 31]),
            "customer_key": pl.Series([0]),
        }
    )
    check.frame(fact_frame(fact_row(product_key=0)), "2026-10-01|pawmart")  # every key known
    check.frame(fact_frame(fact_row(), fact_row(line_no=2, store_key=32)), "2026-10-02|pawmart")
    check.frame(fact_frame(fact_row(line_no=3, product_key=0)), "2026-10-02|pawmart")  # a later chunk, known
    result = check.result()
    assert not result.passed
    assert result.metadata["failing_partitions"] == dg.MetadataValue.json({"2026-10-02|pawmart": 2})
    assert result.metadata["failing_partition_count"] == dg.MetadataValue.int(1)
    assert str(result.description).endswith("in 1 partition: 2026-10-02|pawmart")
    # Row 1 lacks its product, row 2 its product and store: 2 rows, both columns named.
    assert checks_failed("2026-10-02|pawmart", check)["checks_failed"] == dg.MetadataValue.text(
        "keys_resolve_to_dimensions: 2 rows (product_key, store_key)"
    )
    assert checks_failed("2026-10-01|pawmart", check)["checks_failed"] == dg.MetadataValue.text("none")


def test_the_reconciliation_names_the_partitions_that_differ() -> None:
    silver = {"2026-10-01|pawmart": (10, 2_498), "2026-10-01|petopia": (4, 100), "2026-10-02|petopia": (1, 50)}
    check = Reconciliation(silver, {"2026-10-01|pawmart": (9, 2_400), "2026-10-01|petopia": (4, 100)})
    result = check.result()
    assert result.metadata["failing_partitions"] == dg.MetadataValue.json(
        {"2026-10-01|pawmart": 1, "2026-10-02|petopia": 1}
    )
    assert result.description == "silver and gold differ in 2 partitions: 2026-10-01|pawmart, 2026-10-02|petopia"
    assert check.verdict("2026-10-01|pawmart") == "reconciles_with_silver: silver 10 lines (24.98), gold 9 (24.00)"
    assert check.verdict("2026-10-01|petopia") is None


def test_a_product_needs_only_its_natural_key() -> None:
    """A partner that sends no name, brand, category, species or price still has a product (the
    marts show it as brand Unknown, category and species other)."""
    schema = {name: column.dtype.type for name, column in DimProduct.to_schema().columns.items()}
    bare = pl.DataFrame([{"product_key": 7, "provider": "pawmart", "sku": "K1"}], schema=schema)
    v = Validation(DimProduct)
    v.add(bare)
    assert v.passed, dict(v.failures)
    v = Validation(DimProduct)
    v.add(bare.with_columns(pl.lit(None, dtype=pl.Utf8).alias("sku")))
    assert "sku.not_nullable" in v.failures
