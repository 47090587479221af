"""The silver Pandera models: the contract's columns in order, and the value rules they enforce."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandera.polars as pa
import polars as pl
import pytest

from resight_platform.schemas import (
    CATEGORIES,
    QUARANTINE_RULES,
    SILVER_MODELS,
    SPECIES,
    STATES,
    Quarantine,
    SilverCatalog,
    SilverCustomers,
    SilverSales,
    SilverStores,
)

# Column order as docs/data-contract.md lists it.
CONTRACT_COLUMNS = {
    "sales": [
        "order_id",
        "line_no",
        "ordered_at",
        "business_date",
        "provider",
        "store_id",
        "channel",
        "sku",
        "quantity",
        "unit_price",
        "discount",
        "net_amount",
        "customer_id",
        "status",
        "ship_state",
        "_source_file",
        "_row_number",
        "_from_registry",
    ],
    "catalog": [
        "sku",
        "upc",
        "product_name",
        "brand",
        "manufacturer",
        "category",
        "species",
        "pack_size",
        "pack_unit",
        "list_price",
        "provider",
        "business_date",
        "_source_file",
        "_row_number",
        "_from_registry",
    ],
    "stores": [
        "store_id",
        "provider",
        "store_name",
        "city",
        "state",
        "zip",
        "region",
        "business_date",
        "_source_file",
        "_row_number",
        "_from_registry",
    ],
    "customers": [
        "customer_id",
        "provider",
        "signup_date",
        "state",
        "pet_species",
        "business_date",
        "_source_file",
        "_row_number",
        "_from_registry",
    ],
}


def test_models_hold_the_contract_columns_in_order() -> None:
    for feed, columns in CONTRACT_COLUMNS.items():
        schema = SILVER_MODELS[feed].to_schema()
        assert list(schema.columns) == columns, feed
        assert (schema.strict, schema.coerce, schema.ordered) == (True, False, True)
    assert list(Quarantine.to_schema().columns) == [
        "feed",
        "provider",
        "business_date",
        "_source_file",
        "_row_number",
        "rule",
        "raw",
        "_ingested_at",
    ]


def test_value_sets_come_from_the_mapping_tables() -> None:
    assert {"dog", "cat", "bird", "fish", "small_animal", "reptile", "other"} == set(SPECIES)
    assert {"food", "treats", "litter", "toys", "health", "supplies", "other"} <= set(CATEGORIES)
    assert len(STATES) == 51 and "DC" in STATES
    assert all(rules[-1] == "duplicate" for rules in QUARANTINE_RULES.values())


def sales_row(**values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "order_id": "O-1",
        "line_no": 1,
        "ordered_at": datetime(2026, 10, 1, 14, tzinfo=UTC),
        "business_date": date(2026, 10, 1),
        "provider": "pawmart",
        "store_id": "S1",
        "channel": "store",
        "sku": "SKU-1",
        "quantity": 2,
        "unit_price": 12.99,
        "discount": 1.0,
        "net_amount": 24.98,
        "customer_id": None,
        "status": "completed",
        "ship_state": None,
        "_source_file": "pawmart/sales/2026-10-01/a.csv",
        "_row_number": 1,
        "_from_registry": None,
    }
    row.update(values)
    return row


def sales_frame(*rows: dict[str, Any]) -> pl.DataFrame:
    schema = {name: column.dtype.type for name, column in SilverSales.to_schema().columns.items()}
    return pl.DataFrame(list(rows), schema=schema)


def test_a_valid_sales_frame_passes() -> None:
    frame = sales_frame(sales_row(), sales_row(line_no=2, channel="online", store_id=None, ship_state="NY"))
    assert SilverSales.validate(frame).height == 2


@pytest.mark.parametrize(
    ("values", "check"),
    [
        ({"net_amount": 25.0}, "net_amount_is_quantity_times_price_less_discount"),
        ({"quantity": 0, "net_amount": -1.0}, "greater_than(0)"),
        ({"unit_price": -1.0, "net_amount": -3.0}, "greater_than_or_equal_to(0)"),
        ({"status": "pending"}, "isin"),
        ({"channel": "fax"}, "isin"),
        ({"ship_state": "NY"}, "store_lines_have_no_ship_state"),
        ({"channel": "online"}, "online_lines_have_no_store"),
        ({"ship_state": "ZZ", "channel": "online", "store_id": None}, "isin"),
        ({"order_id": ""}, "str_length"),
    ],
)
def test_sales_value_rules(values: dict[str, Any], check: str) -> None:
    with pytest.raises(pa.errors.SchemaErrors) as caught:
        SilverSales.validate(sales_frame(sales_row(**values)), lazy=True)
    assert check in str(caught.value)


def test_sales_key_is_unique_per_provider_and_date() -> None:
    with pytest.raises(pa.errors.SchemaErrors, match="multiple_fields_uniqueness"):
        SilverSales.validate(sales_frame(sales_row(), sales_row(_row_number=2)), lazy=True)
    assert SilverSales.validate(sales_frame(sales_row(), sales_row(provider="petopia"))).height == 2


def test_sales_dtypes_and_columns_are_strict() -> None:
    frame = sales_frame(sales_row())
    bad_frames = {
        "line_no Int64": frame.with_columns(pl.col("line_no").cast(pl.Int64)),
        "naive ordered_at": frame.with_columns(pl.col("ordered_at").dt.replace_time_zone(None)),
        "ns ordered_at": frame.with_columns(pl.col("ordered_at").dt.cast_time_unit("ns")),
        "extra column": frame.with_columns(pl.lit(1).alias("extra")),
        "missing column": frame.drop("ship_state"),
        "column order": frame.select(["line_no", "order_id", *frame.columns[2:]]),
        "null sku": frame.with_columns(pl.lit(None, pl.String).alias("sku")),
    }
    for name, bad in bad_frames.items():
        with pytest.raises(pa.errors.SchemaErrors):
            SilverSales.validate(bad, lazy=True)
            pytest.fail(f"{name} passed")


def frame_for(model: type[pa.DataFrameModel], **values: Any) -> pl.DataFrame:
    schema = {name: column.dtype.type for name, column in model.to_schema().columns.items()}
    return pl.DataFrame([values], schema=schema)


LINEAGE = {"_source_file": "k", "_row_number": 1, "_from_registry": None}


def test_catalog_stores_customers_rules() -> None:
    product = dict(
        sku="A",
        upc=None,
        product_name="Kibble",
        brand="Acme",
        manufacturer=None,
        category="food",
        species="dog",
        pack_size=None,
        pack_unit=None,
        list_price=1.0,
        provider="p",
        business_date=date(2026, 10, 1),
        **LINEAGE,
    )
    SilverCatalog.validate(frame_for(SilverCatalog, **product))
    bad: dict[str, Any]
    for bad in (
        {"category": "weapons"},
        {"species": "dragon"},
        {"pack_size": 0.0},
        {"pack_unit": "furlong"},
        {"list_price": -1.0},
        {"product_name": None},
    ):
        with pytest.raises(pa.errors.SchemaErrors):
            SilverCatalog.validate(frame_for(SilverCatalog, **{**product, **bad}), lazy=True)

    location = dict(
        store_id="S1",
        provider="p",
        store_name=None,
        city=None,
        state="TX",
        zip="07030",
        region="South",
        business_date=date(2026, 10, 1),
        **LINEAGE,
    )
    SilverStores.validate(frame_for(SilverStores, **location))
    for bad in ({"state": "XX"}, {"zip": "7030"}, {"region": "Mars"}, {"state": None}, {"region": None}):
        with pytest.raises(pa.errors.SchemaErrors):
            SilverStores.validate(frame_for(SilverStores, **{**location, **bad}), lazy=True)

    member = dict(
        customer_id="C1",
        provider="p",
        signup_date=date(2025, 1, 1),
        state=None,
        pet_species=None,
        business_date=date(2026, 10, 1),
        **LINEAGE,
    )
    SilverCustomers.validate(frame_for(SilverCustomers, **member))
    SilverCustomers.validate(frame_for(SilverCustomers, **{**member, "signup_date": None, "_from_registry": "state"}))
    for bad in ({"state": "XX"}, {"pet_species": "dragon"}, {"customer_id": None}, {"_row_number": 0}):
        with pytest.raises(pa.errors.SchemaErrors):
            SilverCustomers.validate(frame_for(SilverCustomers, **{**member, **bad}), lazy=True)


def test_quarantine_model() -> None:
    row = dict(
        feed="sales",
        provider="p",
        business_date=date(2026, 10, 1),
        rule="bad_quantity",
        raw='{"sku":"A"}',
        _ingested_at=datetime(2026, 10, 2, tzinfo=UTC),
        **LINEAGE,
    )
    Quarantine.validate(frame_for(Quarantine, **row))
    for bad in ({"rule": "looked_odd"}, {"feed": "returns"}, {"raw": "sku=A"}):
        with pytest.raises(pa.errors.SchemaErrors):
            Quarantine.validate(frame_for(Quarantine, **{**row, **bad}), lazy=True)


def test_schemas_and_transforms_do_not_import_dagster() -> None:
    code = (
        "import sys, resight_platform.schemas, resight_platform.transforms.bronze, resight_platform.transforms.silver;"
        "print(sorted(m for m in sys.modules if m == 'dagster' or m.startswith('dagster.')))"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"
