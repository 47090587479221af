"""Silver: standardisation per profile, every quarantine rule and its order, duplicates, reconcile.

Every result goes through ``clean``, which also validates it against the Pandera models and checks
that rows in = rows loaded + rows quarantined per file, so each test checks those too.
"""

from __future__ import annotations

import itertools
import json
import shutil
import textwrap
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from polars.testing import assert_frame_equal

from resight_platform.schemas import QUARANTINE_RULES, SILVER_MODELS, Quarantine
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import CANONICAL_COLUMNS, DEFAULT_REGISTRY_DIR, Registry, load_registry
from resight_platform.transforms.bronze import empty_bronze, read_landing_file
from resight_platform.transforms.silver import SilverResult, _dollars, _usd_cents, clean_feed, clean_sales, reconcile
from resight_platform_tests.transforms.conftest import (
    BUSINESS_DATE,
    INGESTED_AT,
    NOW,
    Bronze,
    customer,
    landing_key,
    product,
    sale,
    store,
    write_landed,
)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.fixture
def clean(registry: Registry, mappings: Mappings) -> Any:
    """``clean(feed, *bronze frames) -> SilverResult``, validated and reconciled."""

    def run(feed: str, *frames: pl.DataFrame) -> SilverResult:
        bronze = pl.concat(frames) if frames else empty_bronze(feed)
        result = clean_feed(feed, bronze, registry=registry, mappings=mappings, now=NOW)
        SILVER_MODELS[feed].validate(result.valid)
        Quarantine.validate(result.quarantine)
        counts = reconcile(bronze, result)
        assert (counts["rows_in"] == counts["rows_loaded"] + counts["rows_quarantined"]).all()
        assert counts["rows_in"].sum() == bronze.height
        return result

    return run


#: A valid ``ordered_at`` on the business date as each provider's profile writes it.
WHEN = {
    "pawmart": "2026-10-01T10:00:00",
    "chewyish": "2026-10-01T10:00:00",
    "northpaw_distribution": "2026-10-01T10:00:00",
    "petopia": "10/01/2026 10:00",
    "vetcare_partners": "01/10/2026 10:00",
    "petdirect": "1790863200000",
}


def only_rule(result: SilverResult) -> str:
    assert result.valid.height == 0, result.valid
    assert result.quarantine.height == 1, result.quarantine
    return str(result.quarantine["rule"][0])


# --- standardisation per profile ------------------------------------------------------------------

SALES_BY_PROFILE = [
    # provider, the line as its system writes it, expected (ordered_at, unit, discount, net, channel,
    # status, store_id, ship_state)
    (
        "pawmart",
        sale(ordered_at="2026-10-01T10:00:00", unit_price="12.99", discount="1.00", quantity="2"),
        (utc(2026, 10, 1, 14), 12.99, 1.0, 24.98, "store", "completed", "S1", None),
    ),
    (
        "petopia",
        sale(ordered_at="10/01/2026 09:00", unit_price="$1,299.00", discount="$ 1.00", status="Sale", store_id="0042"),
        (utc(2026, 10, 1, 14), 1299.0, 1.0, 2597.0, "store", "completed", "0042", None),
    ),
    (
        "chewyish",
        sale(ordered_at="2026-10-01T10:00:00-04:00", discount=None, status="Fulfilled", ship_state=" ca "),
        (utc(2026, 10, 1, 14), 12.99, 0.0, 25.98, "online", "completed", None, "CA"),
    ),
    (
        "petdirect",
        sale(ordered_at=1790863200000, unit_price=1299, discount=100, quantity=2, status="PAID", ship_state="TX"),
        (utc(2026, 10, 1, 14), 12.99, 1.0, 24.98, "online", "completed", None, "TX"),
    ),
    (
        "northpaw_distribution",
        sale(ordered_at=datetime(2026, 10, 1, 14), unit_price=10.0, discount=None, quantity=2.0),
        (utc(2026, 10, 1, 14), 7.3, 0.0, 14.6, "store", "completed", "S1", None),
    ),
    (
        "vetcare_partners",
        sale(ordered_at="01/10/2026 07:00", unit_price="$12.99", discount="", status="C"),
        (utc(2026, 10, 1, 14), 12.99, 0.0, 25.98, "store", "completed", "S1", None),
    ),
]


@pytest.mark.parametrize(("provider", "record", "expected"), SALES_BY_PROFILE, ids=[p for p, _, _ in SALES_BY_PROFILE])
def test_sales_standardise_per_profile(
    clean: Any, bronze: Bronze, provider: str, record: dict[str, Any], expected: tuple[Any, ...]
) -> None:
    result = clean("sales", bronze(provider, "sales", [record]))
    assert result.quarantine.height == 0, result.quarantine.to_dicts()
    row = result.valid.row(0, named=True)
    columns = ("ordered_at", "unit_price", "discount", "net_amount", "channel", "status", "store_id", "ship_state")
    assert tuple(row[c] for c in columns) == expected
    assert (row["provider"], row["business_date"], row["order_id"], row["line_no"]) == (
        provider,
        date(2026, 10, 1),
        "O-1",
        1,
    )


@pytest.mark.parametrize(
    ("provider", "day", "written", "expected"),
    [
        # New York: 01:30 happens twice on 2026-11-01; the earlier (EDT) instant is taken.
        ("pawmart", date(2026, 11, 1), "2026-11-01T01:30:00", utc(2026, 11, 1, 5, 30)),
        ("pawmart", date(2026, 11, 1), "2026-11-01T02:30:00", utc(2026, 11, 1, 7, 30)),
        ("pawmart", date(2026, 3, 8), "2026-03-08T01:59:00", utc(2026, 3, 8, 6, 59)),
        ("pawmart", date(2026, 3, 8), "2026-03-08T03:00:00", utc(2026, 3, 8, 7, 0)),
        # Chicago, strftime pattern, across the spring-forward gap.
        ("petopia", date(2026, 3, 8), "03/08/2026 01:59", utc(2026, 3, 8, 7, 59)),
        ("petopia", date(2026, 3, 8), "03/08/2026 03:00", utc(2026, 3, 8, 8, 0)),
        ("petopia", date(2026, 1, 5), "1/5/2026 9:05", utc(2026, 1, 5, 15, 5)),
        # Phoenix has no DST: 02:30 on the night New York skips exists there.
        ("vetcare_partners", date(2026, 3, 8), "08/03/2026 02:30", utc(2026, 3, 8, 9, 30)),
        ("vetcare_partners", date(2026, 7, 1), "01/07/2026 07:00", utc(2026, 7, 1, 14, 0)),
        # ISO shapes: offsets win over the provider's timezone.
        ("chewyish", date(2026, 10, 1), "2026-10-01T14:00:00Z", utc(2026, 10, 1, 14)),
        ("chewyish", date(2026, 10, 1), "2026-10-01T19:30:00+05:30", utc(2026, 10, 1, 14)),
        ("chewyish", date(2026, 10, 1), "2026-10-01T09:00:00-0500", utc(2026, 10, 1, 14)),
        ("chewyish", date(2026, 10, 1), "2026-10-01T14:00:00.250Z", utc(2026, 10, 1, 14, 0, 0, 250000)),
        ("chewyish", date(2026, 10, 1), "2026-10-01 10:00:00", utc(2026, 10, 1, 14)),
        ("chewyish", date(2026, 10, 1), "2026-10-01T10:00", utc(2026, 10, 1, 14)),
        ("chewyish", date(2026, 10, 1), " 2026-10-01T10:00:00.5 ", utc(2026, 10, 1, 14, 0, 0, 500000)),
        ("petdirect", date(2026, 10, 1), "1790863200000", utc(2026, 10, 1, 14)),
    ],
)
def test_timestamps_become_utc(
    clean: Any, bronze: Bronze, provider: str, day: date, written: str, expected: datetime
) -> None:
    result = clean("sales", bronze(provider, "sales", [sale(ordered_at=written)], day=day))
    assert result.quarantine.height == 0, result.quarantine.to_dicts()
    assert result.valid["ordered_at"].to_list() == [expected]
    assert result.valid.schema["ordered_at"] == pl.Datetime("us", "UTC")


def test_local_time_skipped_by_dst_is_unparseable(clean: Any, bronze: Bronze) -> None:
    result = clean("sales", bronze("pawmart", "sales", [sale(ordered_at="2026-03-08T02:30:00")], day=date(2026, 3, 8)))
    assert only_rule(result) == "unparseable_date"


@pytest.mark.parametrize(
    ("provider", "unit_price", "expected"),
    [
        ("pawmart", "12.5", 12.5),
        ("pawmart", "0012.50", 12.5),
        ("pawmart", ".99", 0.99),
        ("pawmart", "7", 7.0),
        ("pawmart", " 3.10 ", 3.1),
        ("pawmart", "0.005", 0.01),  # half a cent rounds up
        ("pawmart", "0.0049", 0.0),
        ("pawmart", "12.34499999", 12.34),  # digits past the cent decide once: no double rounding
        ("pawmart", "12.3450000001", 12.35),
        ("pawmart", "0.30000000000000004", 0.3),
        ("petopia", "$1,299.00", 1299.0),
        ("pawmart", "16.99", 16.99),
        ("petopia", "$ 12.99", 12.99),
        ("petopia", "1 299.00", 1299.0),
        ("petopia", "12.99", 12.99),
        ("petdirect", "1299", 12.99),
        ("petdirect", "5", 0.05),
        ("petdirect", "1299.0", 12.99),
        ("petdirect", "1298.5", 12.99),
        ("petdirect", "1298.4999", 12.98),
        ("northpaw_distribution", "10.00", 7.3),
        ("northpaw_distribution", "0.50", 0.37),  # 0.365 USD: half up, not half even
        ("northpaw_distribution", "2.50", 1.83),  # 1.825 USD
        ("northpaw_distribution", "0.10", 0.07),  # 0.073 USD
    ],
)
def test_money_formats_and_fx(clean: Any, bronze: Bronze, provider: str, unit_price: str, expected: float) -> None:
    record = sale(unit_price=unit_price, discount=None, quantity="1", ordered_at=WHEN[provider])
    result = clean("sales", bronze(provider, "sales", [record]))
    assert result.quarantine.height == 0, result.quarantine.to_dicts()
    assert result.valid.select("unit_price", "net_amount").row(0) == (expected, expected)


def test_decimal_comma_amounts_with_dot_thousands_and_symbols() -> None:
    texts = {
        "12,99": 1299,
        "1.234,50": 123450,
        "1.234.567,8": 123456780,
        "1.234": 123400,  # a dot in threes groups thousands
        "7": 700,
        "0,005": 1,  # half a cent rounds up
        "€ 12,99": 1299,
        "12,99 €": 1299,
        "1\u00a0234,50": 123450,  # a no-break space groups thousands too
        "£3,10": 310,
        "12.99": None,  # a decimal point in a decimal-comma feed: unparseable, never 1299
        "1.23,4": None,
        "1,234.50": None,
        "-3,50": None,
        "12,": None,
        "": None,
        "100.000.000,00": None,  # 100 million units: too large
    }
    frame = pl.DataFrame({"text": list(texts), "_rate": [1_000_000] * len(texts)})
    cents = frame.select(_usd_cents(pl.col("text"), "decimal_comma")).to_series().to_list()
    assert dict(zip(texts, cents, strict=True)) == texts


def test_dollar_columns_are_the_float_nearest_to_cents_over_100() -> None:
    cents = pl.DataFrame({"cents": [*range(-300_000, 300_000), 10**12 + 1699, 7_299_999_999]})
    dollars = cents.select(_dollars(pl.col("cents"))).to_series().to_list()
    assert dollars == [c / 100 for c in cents["cents"]]  # Python divides correctly rounded
    assert dollars[300_000 + 1699] == 16.99  # the reciprocal gave 16.990000000000002


def test_cad_net_amount_is_exact_in_cents(clean: Any, bronze: Bronze) -> None:
    record = sale(unit_price="0.50", discount="0.50", quantity="3")
    row = clean("sales", bronze("northpaw_distribution", "sales", [record])).valid.row(0, named=True)
    # unit 0.365 -> 0.37 USD, discount 0.37 USD, net = 3 x 37 - 37 cents.
    assert (row["unit_price"], row["discount"], row["net_amount"]) == (0.37, 0.37, 0.74)


def test_net_amount_may_be_negative_when_discount_exceeds_gross(clean: Any, bronze: Bronze) -> None:
    row = clean("sales", bronze("pawmart", "sales", [sale(unit_price="1.00", discount="5.00", quantity="1")])).valid
    assert row["net_amount"].to_list() == [-4.0]


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1", 1), ("+2", 2), ("007", 7), (" 3 ", 3), ("4.0", 4), ("5.", 5)],
)
def test_integer_texts(clean: Any, bronze: Bronze, value: str, expected: int) -> None:
    result = clean("sales", bronze("pawmart", "sales", [sale(quantity=value, line_no=value)]))
    assert result.valid.select("line_no", "quantity").row(0) == (expected, expected)


def test_the_largest_readable_values_load_under_lifted_ceilings(tmp_path: Path) -> None:
    """What the parsers can read reaches the ceilings only through a registry that lifts them: the
    largest Int32 quantity and the largest money amount (below 100 million units)."""
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    (directory / "mappings" / "ceilings.csv").write_text(
        "category,max_quantity,max_unit_price\n*,2147483647,99999999.99\n", encoding="utf-8"
    )
    registry = load_registry(directory)
    biggest = sale(quantity="2147483647", line_no="2147483647", unit_price="1.00", discount=None)
    result = clean_with(registry, "sales", bronze_of(registry, "pawmart", "sales", [biggest]))
    assert result.valid.select("line_no", "quantity").row(0) == (2147483647, 2147483647)
    cad = sale(unit_price="99999999.99", discount=None, quantity="1")
    result = clean_with(registry, "sales", bronze_of(registry, "northpaw_distribution", "sales", [cad]))
    assert result.valid.select("unit_price", "net_amount").row(0) == (72999999.99, 72999999.99)


def test_sales_aliases(clean: Any, bronze: Bronze) -> None:
    records = [
        sale(line_no="1", status="X", channel="In-Store"),
        sale(line_no="2", status=" Refunded ", channel="POS"),
        sale(line_no="3", status="paid", channel="E-Commerce", store_id="S1", ship_state="ny"),
        sale(line_no="4", status="VOID", channel="web", ship_state="Nowhere"),
        sale(line_no="5", status="complete", channel="store", ship_state="NY"),
    ]
    valid = clean("sales", bronze("pawmart", "sales", records)).valid
    assert valid.select("status", "channel", "store_id", "ship_state").rows() == [
        ("cancelled", "store", "S1", None),
        ("returned", "store", "S1", None),
        ("completed", "online", None, "NY"),
        ("cancelled", "online", None, None),
        ("completed", "store", "S1", None),
    ]


def test_catalog_aliases(clean: Any, bronze: Bronze) -> None:
    records = [
        product(sku="A", species="Canine", brand="purina   PROPLAN", category="Dry Food", pack_unit="LBS"),
        product(sku="B", species=" FELINE ", brand="Royal Canin", category="Flea & Tick", pack_unit="Ounces"),
        product(
            sku="C",
            species="small pet",
            brand="  Acme   Pet  Co ",
            category="Mystery Box",
            pack_unit=None,
            pack_size=None,
        ),
        product(sku="D", species="K9", brand=None, category=None, pack_size="2.5", pack_unit="pk"),
    ]
    valid = clean("catalog", bronze("pawmart", "catalog", records)).valid
    assert valid.select("sku", "species", "brand", "manufacturer", "category", "pack_size", "pack_unit").rows() == [
        ("A", "dog", "Purina Pro Plan", "Nestle Purina", "food", 30.0, "lb"),
        ("B", "cat", "Royal Canin", "Mars Petcare", "health", 30.0, "oz"),
        ("C", "small_animal", "Acme Pet Co", None, "other", None, None),
        ("D", "dog", None, None, "other", 2.5, "ct"),
    ]


@pytest.mark.parametrize("provider", ["pawmart", "petopia", "petdirect", "northpaw_distribution", "vetcare_partners"])
def test_catalog_per_profile(clean: Any, bronze: Bronze, provider: str) -> None:
    price = {"petopia": "$54.99", "vetcare_partners": "$54.99", "petdirect": 5499}.get(provider, "54.99")
    row = clean("catalog", bronze(provider, "catalog", [product(list_price=price, upc="012345678905")])).valid
    expected = 40.14 if provider == "northpaw_distribution" else 54.99  # 54.99 CAD x 0.73 = 40.1427
    assert row.select("sku", "upc", "list_price", "brand").row(0) == (
        "SKU-1",
        "012345678905",
        expected,
        "Purina Pro Plan",
    )


def test_stores_standardise(clean: Any, bronze: Bronze) -> None:
    records = [
        store(store_id=" S1 ", state=" ca ", zip="2134"),
        store(store_id="S2", state="NY", zip="12345-6789"),
        store(store_id="S3", state="dc", zip="021346789"),
        store(store_id="S4", state="TX", zip="not a zip", store_name="  Café  ", city=None),
        store(store_id="S5", state="ME", zip="4101.0"),
    ]
    valid = clean("stores", bronze("pawmart", "stores", records)).valid
    assert valid.select("store_id", "state", "zip", "region", "store_name", "city").rows() == [
        ("S1", "CA", "02134", "West", "Main St", "Austin"),
        ("S2", "NY", "12345", "Northeast", "Main St", "Austin"),
        ("S3", "DC", "02134", "South", "Main St", "Austin"),
        ("S4", "TX", None, "South", "Café", None),
        ("S5", "ME", "04101", "Northeast", "Main St", "Austin"),
    ]


def test_legacy_latin1_store_names_survive(clean: Any, bronze: Bronze) -> None:
    valid = clean("stores", bronze("petopia", "stores", [store(store_name="Café Ñandú")])).valid
    assert valid["store_name"].to_list() == ["Café Ñandú"]


@pytest.mark.parametrize(
    ("provider", "written"),
    [
        ("pawmart", "2025-03-14"),
        ("petopia", "03/14/2025"),
        ("vetcare_partners", "14/03/2025"),
        ("chewyish", "2025-03-14"),
        ("petdirect", " 2025-03-14 "),
    ],
)
def test_customers_dates_per_profile(clean: Any, bronze: Bronze, provider: str, written: str) -> None:
    valid = clean("customers", bronze(provider, "customers", [customer(signup_date=written)])).valid
    assert valid.select("signup_date", "state", "pet_species").row(0) == (date(2025, 3, 14), "NY", "cat")


def test_customers_optional_values(clean: Any, bronze: Bronze) -> None:
    records = [
        customer(customer_id="A", state=None, pet_species=None),
        customer(customer_id="B", state=" tx ", pet_species="Kitten"),
        customer(customer_id="C", state="", pet_species="  "),
    ]
    valid = clean("customers", bronze("pawmart", "customers", records)).valid
    assert valid.select("customer_id", "state", "pet_species").rows() == [
        ("A", None, None),
        ("B", "TX", "cat"),
        ("C", None, None),
    ]


# --- rules ------------------------------------------------------------------------------------------

BREAKS: dict[str, dict[str, list[dict[str, Any]]]] = {
    "sales": {
        "unstorable_value": [{"order_id": "O\x001"}, {"customer_id": "\x00"}, {"ship_state": "N\x00Y"}],
        "missing_order_id": [{"order_id": None}, {"order_id": "   "}],
        "missing_sku": [{"sku": None}, {"sku": " "}],
        "bad_line_no": [{"line_no": "0"}, {"line_no": "-1"}, {"line_no": "1.5"}, {"line_no": "x"}, {"line_no": None}],
        "unparseable_date": [
            {"ordered_at": "2026-13-01T00:00:00"},
            {"ordered_at": None},
            {"ordered_at": "yesterday"},
            {"ordered_at": "2026-10-01"},
            {"ordered_at": "10/01/2026 10:00"},
        ],
        "future_date": [{"ordered_at": "2026-10-03T00:00:01Z"}, {"ordered_at": "2026-10-02T21:00:00"}],
        "bad_quantity": [
            {"quantity": "0"},
            {"quantity": "-2"},
            {"quantity": "2.5"},
            {"quantity": "two"},
            {"quantity": "3000000000"},
            {"quantity": None},
        ],
        "unparseable_price": [
            {"unit_price": None},
            {"unit_price": "abc"},
            {"unit_price": "-1.00"},
            {"unit_price": "$12.99"},
            {"unit_price": "12,99"},
            {"unit_price": "1e3"},
            {"unit_price": "100000000.00"},
            {"discount": "-0.50"},
            {"discount": "free"},
        ],
        "unknown_status": [{"status": "pending"}, {"status": None}],
        "unknown_channel": [{"channel": "carrier pigeon"}, {"channel": None}],
        "before_history_start": [
            {"ordered_at": "1900-01-01T10:00:00"},
            {"ordered_at": "0001-01-01T00:00:00Z"},
            {"ordered_at": "1999-12-31T23:59:59Z"},
        ],
        "quantity_over_ceiling": [{"quantity": "2147483647"}, {"quantity": "10001"}],
        "price_over_ceiling": [{"unit_price": "10000.01"}, {"unit_price": "99999999.99"}],
    },
    "catalog": {
        "unstorable_value": [{"product_name": "Kibble\x00"}, {"upc": "\x00\x00"}],
        "missing_sku": [{"sku": None}],
        "missing_product_name": [{"product_name": "  "}],
        "unparseable_price": [{"list_price": "n/a"}, {"list_price": None}, {"list_price": "-3"}],
        "unknown_species": [{"species": "dragon"}, {"species": None}],
        "bad_pack_size": [{"pack_size": "0"}, {"pack_size": "-1"}, {"pack_size": "big"}, {"pack_size": "nan"}],
        "unknown_unit": [{"pack_unit": "furlong"}],
        "price_over_ceiling": [
            {"list_price": "1000.01", "category": "dog food"},
            {"list_price": "10000.01", "category": "aquarium gadgets"},
        ],
    },
    "stores": {
        "unstorable_value": [{"store_name": "Main\x00St"}, {"zip": "\x00"}],
        "missing_store_id": [{"store_id": None}],
        "invalid_state": [{"state": "XX"}, {"state": None}, {"state": "Texas"}],
    },
    "customers": {
        "unstorable_value": [{"customer_id": "C\x00"}, {"state": "\x00TX"}],
        "missing_customer_id": [{"customer_id": ""}],
        "unparseable_date": [{"signup_date": "2025-02-30"}, {"signup_date": "03/14/2025"}, {"signup_date": "n/a"}],
        "invalid_state": [{"state": "ZZ"}],
        "unknown_species": [{"pet_species": "dragon"}],
    },
}
VALID = {"sales": sale, "catalog": product, "stores": store, "customers": customer}
KEY = {"sales": "order_id", "catalog": "sku", "stores": "store_id", "customers": "customer_id"}


def test_every_rule_has_a_breaking_example() -> None:
    for feed, rules in QUARANTINE_RULES.items():
        assert set(BREAKS[feed]) == set(rules) - {"duplicate"}, feed


@pytest.mark.parametrize(
    ("feed", "rule", "override"),
    [(feed, rule, o) for feed, rules in BREAKS.items() for rule, overrides in rules.items() for o in overrides],
)
def test_rule(clean: Any, bronze: Bronze, feed: str, rule: str, override: dict[str, Any]) -> None:
    bronze_frame = bronze("pawmart", feed, [VALID[feed](**override)])
    result = clean(feed, bronze_frame)
    assert only_rule(result) == rule
    quarantined = result.quarantine.row(0, named=True)
    assert (quarantined["feed"], quarantined["provider"], quarantined["_row_number"]) == (feed, "pawmart", 1)
    delivered = bronze_frame.select(CANONICAL_COLUMNS[feed]).row(0, named=True)
    shown = {k: v.replace("\x00", "\\u0000") if isinstance(v, str) else v for k, v in delivered.items()}
    assert json.loads(quarantined["raw"]) == shown  # a NUL as the six characters \u0000


def test_future_date_boundary_is_one_day_after_the_business_date(clean: Any, bronze: Bronze) -> None:
    at_limit = clean("sales", bronze("pawmart", "sales", [sale(ordered_at="2026-10-03T00:00:00Z")]))
    assert at_limit.valid.height == 1
    earlier_days_are_fine = clean("sales", bronze("pawmart", "sales", [sale(ordered_at="2026-09-01T00:00:00Z")]))
    assert earlier_days_are_fine.valid.height == 1


@pytest.mark.parametrize("feed", sorted(BREAKS))
def test_a_row_breaking_two_rules_gets_the_first(clean: Any, bronze: Bronze, feed: str) -> None:
    order = [r for r in QUARANTINE_RULES[feed] if r != "duplicate"]
    pairs = []
    for first, second in itertools.combinations(order, 2):
        a, b = BREAKS[feed][first][0], BREAKS[feed][second][0]
        if set(a) & set(b):
            continue  # both rules judge the same field
        pairs.append((first, {**a, **b}))
    assert pairs
    # Distinct keys, so no row is a duplicate of another (unless the override blanks the key).
    records = [VALID[feed](**{KEY[feed]: f"K-{i}", **override}) for i, (_, override) in enumerate(pairs)]
    result = clean(feed, bronze("pawmart", feed, records))
    assert result.valid.height == 0
    assert result.quarantine["rule"].to_list() == [first for first, _ in pairs]


def test_all_rules_broken_at_once_reports_the_first(clean: Any, bronze: Bronze) -> None:
    everything = {k: v for overrides in BREAKS["sales"].values() for k, v in overrides[0].items()}
    assert only_rule(clean("sales", bronze("pawmart", "sales", [sale(**everything)]))) == "missing_order_id"
    everything["customer_id"] = "\x00"  # a NUL comes first, whatever else the row breaks
    assert only_rule(clean("sales", bronze("pawmart", "sales", [sale(**everything)]))) == "unstorable_value"


# --- duplicates ---------------------------------------------------------------------------------------


def test_duplicates_across_two_files_keep_the_first(clean: Any, bronze: Bronze) -> None:
    first = bronze("pawmart", "sales", [sale(line_no="1"), sale(line_no="2")], name="part-001")
    late = bronze("pawmart", "sales", [sale(line_no="2", unit_price="99.00"), sale(line_no="3")], name="part-002")
    result = clean("sales", late, first)  # bronze order does not matter: (_source_file, _row_number) does
    assert result.valid.select("line_no", "unit_price", "_source_file").rows() == [
        (1, 12.99, "pawmart/sales/2026-10-01/part-001.csv"),
        (2, 12.99, "pawmart/sales/2026-10-01/part-001.csv"),
        (3, 12.99, "pawmart/sales/2026-10-01/part-002.csv"),
    ]
    assert result.quarantine.select("rule", "_source_file", "_row_number").rows() == [
        ("duplicate", "pawmart/sales/2026-10-01/part-002.csv", 1)
    ]
    counts = reconcile(pl.concat([late, first]), result)
    assert counts.rows() == [
        ("pawmart/sales/2026-10-01/part-001.csv", 2, 2, 0),
        ("pawmart/sales/2026-10-01/part-002.csv", 2, 1, 1),
    ]


def test_duplicates_within_a_file_compare_normalised_keys(clean: Any, bronze: Bronze) -> None:
    records = [sale(order_id="O-1", line_no="1"), sale(order_id=" O-1 ", line_no="01"), sale(order_id="o-1")]
    result = clean("sales", bronze("pawmart", "sales", records))
    assert result.valid["order_id"].to_list() == ["O-1", "o-1"]
    assert result.quarantine.select("rule", "_row_number").rows() == [("duplicate", 2)]


def test_duplicate_is_judged_among_rows_that_pass_every_other_rule(clean: Any, bronze: Bronze) -> None:
    records = [sale(quantity="0"), sale(quantity="1"), sale(quantity="1")]
    result = clean("sales", bronze("pawmart", "sales", records))
    assert result.valid["_row_number"].to_list() == [2]
    assert result.quarantine.select("_row_number", "rule").rows() == [(1, "bad_quantity"), (3, "duplicate")]


def test_same_key_in_other_providers_or_dates_is_not_a_duplicate(clean: Any, bronze: Bronze) -> None:
    frames = [
        bronze("pawmart", "sales", [sale()]),
        bronze("tailwaggers", "sales", [sale()]),
        bronze("pawmart", "sales", [sale(ordered_at="2026-10-02T10:00:00")], day=date(2026, 10, 2)),
    ]
    result = clean("sales", *frames)
    assert result.quarantine.height == 0
    assert sorted(result.valid.select("provider", "business_date").rows()) == [
        ("pawmart", date(2026, 10, 1)),
        ("pawmart", date(2026, 10, 2)),
        ("tailwaggers", date(2026, 10, 1)),
    ]


@pytest.mark.parametrize(
    ("feed", "first", "second"),
    [
        ("catalog", product(product_name="First"), product(sku=" SKU-1 ", product_name="Second")),
        ("stores", store(store_name="First"), store(store_name="Second")),
        ("customers", customer(state="NY"), customer(state="CA")),
    ],
)
def test_duplicates_in_other_feeds(clean: Any, bronze: Bronze, feed: str, first: Any, second: Any) -> None:
    result = clean(feed, bronze("pawmart", feed, [second], name="b"), bronze("pawmart", feed, [first], name="a"))
    assert result.valid["_source_file"].to_list() == [f"pawmart/{feed}/2026-10-01/a.csv"]
    assert result.quarantine.select("rule", "_source_file").rows() == [
        ("duplicate", f"pawmart/{feed}/2026-10-01/b.csv"),
    ]


# --- several providers, reconcile, errors ----------------------------------------------------------


def test_several_providers_and_formats_in_one_frame(clean: Any, bronze: Bronze) -> None:
    frames = [
        bronze("pawmart", "sales", [sale(ordered_at="2026-10-01T10:00:00")]),
        bronze("petopia", "sales", [sale(ordered_at="10/01/2026 09:00", unit_price="$12.99", discount="$1.00")]),
        bronze("tailwaggers", "sales", [sale(ordered_at="2026-10-01T07:00:00")]),  # Phoenix, UTC-7
        bronze("petdirect", "sales", [sale(ordered_at=1790863200000, unit_price=1299, discount=100, status="x")]),
    ]
    result = clean("sales", *frames)
    assert result.valid.select("provider", "ordered_at", "unit_price", "status").rows() == [
        ("pawmart", utc(2026, 10, 1, 14), 12.99, "completed"),
        ("petdirect", utc(2026, 10, 1, 14), 12.99, "cancelled"),
        ("petopia", utc(2026, 10, 1, 14), 12.99, "completed"),
        ("tailwaggers", utc(2026, 10, 1, 14), 12.99, "completed"),
    ]


def test_reconcile_lists_every_file(clean: Any, bronze: Bronze) -> None:
    good = bronze("pawmart", "stores", [store(), store(store_id="S2")], name="good")
    bad = bronze("pawmart", "stores", [store(state="XX")], name="bad")
    result = clean("stores", good, bad)
    assert reconcile(pl.concat([good, bad]), result).rows() == [
        ("pawmart/stores/2026-10-01/bad.csv", 1, 0, 1),
        ("pawmart/stores/2026-10-01/good.csv", 2, 2, 0),
    ]


def test_empty_bronze_gives_empty_typed_frames(clean: Any) -> None:
    for feed in SILVER_MODELS:
        result = clean(feed)
        assert result.valid.height == 0 and result.quarantine.height == 0


def test_unregistered_provider_or_bad_frame_is_an_error(registry: Registry, mappings: Mappings, bronze: Bronze) -> None:
    frame = bronze("chewyish", "sales", [sale()])
    stores_of_chewyish = bronze("pawmart", "stores", [store()]).with_columns(pl.lit("chewyish").alias("_provider"))
    with pytest.raises(ValueError, match="chewyish/stores is not a registered source"):
        clean_feed("stores", stores_of_chewyish, registry=registry, mappings=mappings, now=NOW)
    with pytest.raises(ValueError, match="lacks columns"):
        clean_sales(frame.drop("status"), registry=registry, mappings=mappings, now=NOW)
    with pytest.raises(ValueError, match="unknown feed"):
        clean_feed("returns", frame, registry=registry, mappings=mappings, now=NOW)


def test_result_does_not_depend_on_now(registry: Registry, mappings: Mappings, bronze: Bronze) -> None:
    frame = bronze("pawmart", "sales", [sale(), sale(line_no="2", ordered_at="2026-10-02T12:00:00Z")])
    early = clean_sales(frame, registry=registry, mappings=mappings, now=utc(2026, 10, 1, 0))
    late = clean_sales(frame, registry=registry, mappings=mappings, now=utc(2027, 1, 1, 0))
    assert early.valid.equals(late.valid) and early.quarantine.equals(late.quarantine)


@pytest.mark.parametrize("chunk_rows", [1, 2, 3])
def test_cleaning_in_chunks_with_seen_keys_equals_cleaning_at_once(
    registry: Registry, mappings: Mappings, bronze: Bronze, chunk_rows: int
) -> None:
    first = bronze(
        "pawmart",
        "sales",
        [sale(line_no="1"), sale(line_no="2"), sale(quantity="0", line_no="3"), sale(order_id=" O-2 ", line_no="1")],
        name="part-001",
    )
    late = bronze(
        "pawmart",
        "sales",
        [sale(line_no="02", unit_price="99.00"), sale(line_no="3"), sale(order_id="O-2", line_no="1")],
        name="part-002",
    )
    whole = pl.concat([first, late])
    at_once = clean_feed("sales", whole, registry=registry, mappings=mappings, now=NOW)

    valid, quarantine, seen = [], [], None
    for offset in range(0, whole.height, chunk_rows):
        part = clean_feed(
            "sales", whole.slice(offset, chunk_rows), registry=registry, mappings=mappings, now=NOW, seen=seen
        )
        assert part.keys is not None
        seen = part.keys if seen is None else pl.concat([seen, part.keys])
        valid.append(part.valid)
        quarantine.append(part.quarantine)

    assert_frame_equal(pl.concat(valid), at_once.valid)
    assert_frame_equal(pl.concat(quarantine), at_once.quarantine)
    # Line 2 and O-2/1 re-sent in the second file are duplicates of rows another chunk loaded.
    assert at_once.quarantine.select("rule", "_row_number").rows() == [
        ("bad_quantity", 3),
        ("duplicate", 1),
        ("duplicate", 3),
    ]


def test_type_drift_needs_most_of_a_file_and_a_minimum_of_rows() -> None:
    from resight_platform.transforms.silver import type_drift

    quarantine = pl.DataFrame(
        {
            "_source_file": ["a.csv"] * 10 + ["b.csv"] * 4 + ["c.csv"] * 10,
            "rule": ["unparseable_price"] * 10 + ["unparseable_price"] * 4 + ["unknown_status"] * 10,
        }
    )
    counts = pl.DataFrame({"_source_file": ["a.csv", "b.csv", "c.csv"], "rows_in": [12, 4, 10]})
    drift = type_drift("sales", quarantine, counts)
    # a.csv: 10 of 12 prices unreadable; b.csv: all 4, but too few to call; c.csv: not a type rule.
    assert drift.rows() == [("a.csv", "unit_price", "unparseable_price", 10, 12)]
    assert type_drift("stores", quarantine, counts).is_empty()


def test_plausibility_drift_is_reported_like_a_type_change() -> None:
    """Most lines of a file over the price ceiling: the partner likely sends cents as dollars."""
    from resight_platform.transforms.silver import type_drift

    quarantine = pl.DataFrame({"_source_file": ["a.csv"] * 11, "rule": ["price_over_ceiling"] * 11})
    counts = pl.DataFrame({"_source_file": ["a.csv"], "rows_in": [12]})
    assert type_drift("sales", quarantine, counts).rows() == [("a.csv", "unit_price", "price_over_ceiling", 11, 12)]
    catalog = quarantine.with_columns(pl.lit("price_over_ceiling").alias("rule"))
    assert type_drift("catalog", catalog, counts).rows() == [("a.csv", "list_price", "price_over_ceiling", 11, 12)]


# --- plausibility: history start, ceilings, NUL -------------------------------------------------


def test_ceilings_of_an_unknown_product_are_the_star_row(clean: Any, bronze: Bronze, mappings: Mappings) -> None:
    star = mappings.ceiling(None)
    assert star == mappings.ceilings["*"]
    rows = [
        sale(line_no="1", quantity=str(star.max_quantity)),
        sale(line_no="2", quantity=str(star.max_quantity + 1)),
        sale(line_no="3", unit_price=str(star.max_unit_price)),
        sale(line_no="4", unit_price=str(star.max_unit_price + Decimal("0.01")), quantity="1", discount=None),
    ]
    result = clean("sales", bronze("pawmart", "sales", rows))
    assert result.valid["line_no"].to_list() == [1, 3]
    assert result.quarantine.select("_row_number", "rule").rows() == [
        (2, "quantity_over_ceiling"),
        (4, "price_over_ceiling"),
    ]


def test_a_known_products_category_gives_its_ceilings(registry: Registry, mappings: Mappings, bronze: Bronze) -> None:
    food = mappings.ceilings["food"]
    assert food.max_quantity < mappings.ceiling(None).max_quantity
    rows = [
        sale(line_no="1", sku="KIBBLE", quantity=str(food.max_quantity)),
        sale(line_no="2", sku="KIBBLE", quantity=str(food.max_quantity + 1)),
        sale(line_no="3", sku="UNKNOWN", quantity=str(food.max_quantity + 1)),  # the '*' row
        sale(line_no="4", sku=" KIBBLE ", unit_price=str(food.max_unit_price + 1), quantity="1", discount=None),
    ]
    products = pl.DataFrame(
        {"provider": ["pawmart", "petopia"], "sku": ["KIBBLE", "UNKNOWN"], "category": ["food", "food"]}
    )
    result = clean_sales(
        bronze("pawmart", "sales", rows), registry=registry, mappings=mappings, now=NOW, products=products
    )
    assert result.valid["line_no"].to_list() == [1, 3]
    assert result.quarantine.select("_row_number", "rule").rows() == [
        (2, "quantity_over_ceiling"),
        (4, "price_over_ceiling"),
    ]


def test_a_price_in_another_currency_is_judged_in_usd(clean: Any, bronze: Bronze, mappings: Mappings) -> None:
    """northpaw sends CAD (0.73 USD): 13,000 CAD is 9,490 USD, under the '*' ceiling of 10,000."""
    star = mappings.ceiling(None).max_unit_price
    rows = [sale(line_no="1", unit_price="13000.00", discount=None), sale(line_no="2", unit_price="14000.00")]
    result = clean("sales", bronze("northpaw_distribution", "sales", rows))
    assert 13000 * 0.73 <= star < 14000 * 0.73
    assert result.valid["line_no"].to_list() == [1]
    assert result.quarantine["rule"].to_list() == ["price_over_ceiling"]


def test_history_start_per_provider_and_the_floor(tmp_path: Path, bronze: Bronze) -> None:
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    providers = directory / "providers.csv"
    header, *lines = providers.read_text(encoding="utf-8").splitlines()
    rows = [line + (",2026-06-01" if line.startswith("pawmart,") else ",") for line in lines]
    providers.write_text("\n".join([header + ",history_start", *rows]) + "\n", encoding="utf-8")
    registry = load_registry(directory, history_floor=date(2010, 1, 1))
    pawmart, petopia = registry.source("pawmart", "sales"), registry.source("petopia", "sales")
    assert pawmart is not None and petopia is not None
    assert (pawmart.history_start, petopia.history_start) == (date(2026, 6, 1), date(2010, 1, 1))
    sales = [
        sale(line_no="1", ordered_at="2026-06-01T00:00:00Z"),
        sale(line_no="2", ordered_at="2026-05-31T23:59:59Z"),
        sale(line_no="3", ordered_at="2026-05-31T23:00:00"),  # New York: 03:00 UTC on 1 June
    ]
    result = clean_with(registry, "sales", bronze_of(registry, "pawmart", "sales", sales))
    assert result.valid["line_no"].to_list() == [1, 3]
    assert result.quarantine.select("_row_number", "rule").rows() == [(2, "before_history_start")]
    old = [sale(ordered_at="01/01/2009 10:00", unit_price="$1.00"), sale(line_no="2", ordered_at=WHEN["petopia"])]
    result = clean_with(registry, "sales", bronze_of(registry, "petopia", "sales", old))
    assert result.quarantine["rule"].to_list() == ["before_history_start"]
    assert result.valid["line_no"].to_list() == [2]


def test_a_business_date_before_the_history_start_quarantines_the_file(tmp_path: Path) -> None:
    registry = load_registry(history_floor=BUSINESS_DATE.replace(day=2))
    result = clean_with(
        registry, "sales", bronze_of(registry, "pawmart", "sales", [sale(ordered_at="2026-09-30T10:00:00")])
    )
    assert result.valid.is_empty()
    assert result.quarantine["rule"].to_list() == ["before_history_start"]


def test_nul_is_quarantined_in_every_text_column_first(clean: Any, bronze: Bronze) -> None:
    makers = {"sales": sale, "catalog": product, "stores": store, "customers": customer}
    for feed, make in makers.items():
        records = [make(**{KEY[feed]: f"K-{i}", column: "x\x00y"}) for i, column in enumerate(CANONICAL_COLUMNS[feed])]
        records = [r for r in records if r[KEY[feed]].startswith("K-")]  # the key column's own row has the NUL
        records.append(make(**{KEY[feed]: "GOOD"}))
        result = clean(feed, bronze("pawmart", feed, records))
        assert result.quarantine["rule"].to_list() == ["unstorable_value"] * (len(records) - 1), feed
        assert result.valid.height == 1, feed
        assert all("\\u0000" in raw and "\x00" not in raw for raw in result.quarantine["raw"]), feed


# --- the registry's own data: scoped value maps, constants and defaults ------------------------


def registry_with(tmp_path: Path, files: dict[str, str], profiles: dict[str, Any] | None = None) -> Registry:
    """A copy of the packaged registry with ``files`` (name -> CSV text) appended to or created,
    and ``profiles`` added to profiles.yaml."""
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    for name, text in files.items():
        path = directory / name
        header, *lines = textwrap.dedent(text).strip().splitlines()
        existing = path.read_text(encoding="utf-8") if path.exists() else header + "\n"
        path.write_text(existing + "".join(line + "\n" for line in lines), encoding="utf-8")
    if profiles:
        document = yaml.safe_load((directory / "profiles.yaml").read_text(encoding="utf-8"))
        document["profiles"].update(profiles)
        (directory / "profiles.yaml").write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return load_registry(directory)


def bronze_of(registry: Registry, provider: str, feed: str, records: list[dict[str, Any]]) -> pl.DataFrame:
    source = registry.source(provider, feed)
    assert source is not None
    return read_landing_file(
        write_landed(source, records),
        source=source,
        key=landing_key(source),
        business_date=BUSINESS_DATE,
        ingested_at=INGESTED_AT,
    )


def clean_with(registry: Registry, feed: str, *frames: pl.DataFrame) -> SilverResult:
    bronze = pl.concat(frames)
    result = clean_feed(feed, bronze, registry=registry, mappings=registry.mappings, now=NOW)
    SILVER_MODELS[feed].validate(result.valid)
    Quarantine.validate(result.quarantine)
    counts = reconcile(bronze, result)
    assert (counts["rows_in"] == counts["rows_loaded"] + counts["rows_quarantined"]).all()
    return result


def by_order(result: SilverResult, provider: str) -> dict[str, str]:
    """order_id -> status (loaded) or rule (quarantined) of one provider's rows."""
    loaded = result.valid.filter(pl.col("provider") == provider)
    out = dict(zip(loaded["order_id"], loaded["status"], strict=True))
    for row in result.quarantine.filter(pl.col("provider") == provider).iter_rows(named=True):
        out[json.loads(row["raw"])["order_id"]] = row["rule"]
    return out


STATUS_MAPS = {
    "value_maps.csv": """
        provider,feed,map,alias,value,match,extra
        pawmart,,status,SOLD,completed,,
        pawmart,,status,RTN,returned,,
        pawmart,,status,R[0-9]+,returned,regex,
        pawmart,sales,status,VOID-X,cancelled,,
        barkbox_market,,status,RTN,cancelled,,
        barkbox_market,,states,California,CA,,
    """
}


def test_one_partners_value_map_never_changes_another_partners_data(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, STATUS_MAPS)
    statuses = {"A": "SOLD", "B": " rtn ", "C": "R7", "D": "void-x", "E": "Completed", "F": "refunded"}
    lines = [sale(order_id=o, status=s) for o, s in statuses.items()]
    pawmart, barkbox = (bronze_of(registry, p, "sales", lines) for p in ("pawmart", "barkbox_market"))
    result = clean_with(registry, "sales", pawmart, barkbox)  # both partners in one silver frame
    assert by_order(result, "pawmart") == {
        "A": "completed",  # its own alias
        "B": "returned",  # its own alias: the same raw value is 'cancelled' for barkbox_market
        "C": "returned",  # its own pattern
        "D": "cancelled",  # its sales source's own alias
        "E": "completed",  # the global table
        "F": "returned",
    }
    assert by_order(result, "barkbox_market") == {
        "A": "unknown_status",  # pawmart's alias does not apply here
        "B": "cancelled",  # barkbox_market's own alias
        "C": "unknown_status",  # nor does pawmart's pattern
        "D": "unknown_status",
        "E": "completed",
        "F": "returned",
    }
    # barkbox_market's rows come out exactly as they do from a registry without pawmart's maps
    alone = clean_with(
        registry_with(
            tmp_path / "b", {"value_maps.csv": "provider,feed,map,alias,value\nbarkbox_market,,status,RTN,cancelled"}
        ),
        "sales",
        barkbox,
    )
    assert_frame_equal(result.valid.filter(pl.col("provider") == "barkbox_market"), alone.valid)
    assert_frame_equal(result.quarantine.filter(pl.col("provider") == "barkbox_market"), alone.quarantine)


def test_scoped_maps_in_every_feed(tmp_path: Path) -> None:
    registry = registry_with(
        tmp_path,
        {
            "value_maps.csv": """
                provider,feed,map,alias,value,match,extra
                pawmart,,species,doggo,dog,,
                pawmart,,units,EA,ct,,
                pawmart,,categories,kibble,food,,
                pawmart,,brands,HB,Happy Bowl,,Happy Bowl Foods
                pawmart,,brands,ppp,Purina Pro Plan,,
                pawmart,,states,calif(ornia)?,CA,regex,
                pawmart,sales,channels,kiosk,store,,
            """
        },
    )
    products = [
        product(sku="1", species="Doggo", pack_unit="ea", category="Kibble", brand="hb"),
        product(sku="2", species="doggo", brand="PPP"),
        product(sku="3", brand="Pedigree"),
    ]
    catalog = clean_with(
        registry,
        "catalog",
        bronze_of(registry, "pawmart", "catalog", products),
        bronze_of(registry, "barkbox_market", "catalog", products),
    )
    mine = catalog.valid.filter(pl.col("provider") == "pawmart").sort("sku")
    assert mine.select("species", "pack_unit", "category", "brand", "manufacturer").rows() == [
        ("dog", "ct", "food", "Happy Bowl", "Happy Bowl Foods"),
        ("dog", "lb", "food", "Purina Pro Plan", "Nestle Purina"),
        ("dog", "lb", "food", "Pedigree", "Mars Petcare"),
    ]
    others = catalog.quarantine.filter(pl.col("provider") == "barkbox_market")
    assert sorted(others["rule"]) == ["unknown_species", "unknown_species"]  # 'doggo' is pawmart's word
    theirs = catalog.valid.filter(pl.col("provider") == "barkbox_market")
    assert theirs.select("brand", "manufacturer").rows() == [("Pedigree", "Mars Petcare")]

    people = [customer(customer_id="1", state="California"), customer(customer_id="2", state=" calif ")]
    customers = clean_with(
        registry,
        "customers",
        bronze_of(registry, "pawmart", "customers", people),
        bronze_of(registry, "barkbox_market", "customers", people),
    )
    assert customers.valid.select("provider", "state").rows() == [("pawmart", "CA"), ("pawmart", "CA")]
    assert customers.quarantine["rule"].to_list() == ["invalid_state", "invalid_state"]

    stores = clean_with(registry, "stores", bronze_of(registry, "pawmart", "stores", [store(state="California")]))
    assert stores.valid.select("state", "region").rows() == [("CA", "West")]

    sales = clean_with(registry, "sales", bronze_of(registry, "pawmart", "sales", [sale(channel="Kiosk")]))
    assert sales.valid["channel"].to_list() == ["store"]


GENERAL = {
    "general": {
        "format": "csv",
        "datetime_format": "iso",
        "money_format": "decimal",
        "feeds": {
            "catalog": {
                "columns": {"sku": "sku", "name": "product_name", "price": "list_price", "unit": "pack_unit"},
                "constants": {"species": "Other"},
                "defaults": {"pack_unit": "each", "category": "supplies"},
            },
            "customers": {
                "columns": {"id": "customer_id", "state": "state"},
                "defaults": {"state": "TX"},
            },
        },
    }
}
GENERAL_FILES = {
    "providers.csv": """
        provider,name,kind,profile,timezone,currency
        general_store,General Store,retail,general,America/Chicago,USD
    """,
    "sources.csv": """
        provider,feed,format,expected_every_hours,active
        general_store,catalog,,24,true
        general_store,customers,,24,true
    """,
    "source_values.csv": """
        provider,feed,column,kind,value
        pawmart,customers,state,constant,NY
    """,
}


def test_constants_and_defaults_fill_what_a_partner_does_not_send(tmp_path: Path) -> None:
    registry = registry_with(tmp_path, GENERAL_FILES, GENERAL)
    rows = [
        {"sku": "1", "product_name": "Broom", "list_price": "9.99", "pack_unit": "oz"},
        {"sku": "2", "product_name": "Bucket", "list_price": "4.50", "pack_unit": " "},
        {"sku": "3", "product_name": "Mop", "list_price": "-1"},
    ]
    general = bronze_of(registry, "general_store", "catalog", rows)
    assert general["species"].is_null().all(), "the file has no species column"
    result = clean_with(registry, "catalog", general, bronze_of(registry, "pawmart", "catalog", [product(sku="9")]))
    assert result.valid.select("provider", "sku", "species", "category", "pack_unit", "_from_registry").rows() == [
        ("general_store", "1", "other", "supplies", "oz", "category,species"),
        ("general_store", "2", "other", "supplies", "ct", "category,species,pack_unit"),
        ("pawmart", "9", "dog", "food", "lb", None),  # every value sent by the partner
    ]
    (quarantined,) = result.quarantine.rows(named=True)
    assert quarantined["rule"] == "unparseable_price"
    raw = json.loads(quarantined["raw"])
    assert (raw["species"], raw["pack_unit"], raw["list_price"]) == (None, None, "-1"), "raw is as delivered"

    people = [customer(customer_id="1", state="CA"), customer(customer_id="2", state="")]
    customers = clean_with(
        registry,
        "customers",
        bronze_of(registry, "general_store", "customers", people),
        bronze_of(registry, "pawmart", "customers", people),
    )
    assert customers.valid.select("provider", "customer_id", "state", "signup_date", "_from_registry").rows() == [
        ("general_store", "1", "CA", None, None),  # no signup date: optional
        ("general_store", "2", "TX", None, "state"),  # the profile's default
        ("pawmart", "1", "NY", date(2025, 3, 14), "state"),  # pawmart's own constant wins over the file
        ("pawmart", "2", "NY", date(2025, 3, 14), "state"),
    ]


def test_profile_channel_is_recorded_as_given_by_the_registry(clean: Any, bronze: Bronze) -> None:
    result = clean("sales", bronze("petopia", "sales", [sale(ordered_at=WHEN["petopia"], unit_price="$1.00")]))
    assert result.valid.select("channel", "_from_registry").rows() == [("store", "channel")]
