"""Silver's cleaning on Spark equals silver on Polars, row by row: valid rows, quarantine rules and
raw, the keys; on the generated sample and on hostile values (money, timestamps, DST, NUL, registry
constants and defaults, scoped value maps, duplicates across files, ceilings)."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines import from_polars, is_spark, to_polars
from resight_platform.sample.generator import generate
from resight_platform.sources.mappings import load_mappings
from resight_platform.sources.registry import FEEDS, Registry, load_registry
from resight_platform.transforms.bronze import BronzeFile, read_landing_file, read_landing_tree
from resight_platform.transforms.silver import SilverResult, clean_feed, reconcile, type_drift
from resight_platform_tests.transforms.conftest import NOW

pytestmark = pytest.mark.xdist_group("spark")

ORDER = ("_source_file", "_row_number")
ROWS_PER_FILE = 100


def assert_same(polars: SilverResult, spark: SilverResult) -> None:
    """Both engines' results equal row by row (Spark's in record order first), dtypes included."""
    assert is_spark(spark.valid) and is_spark(spark.quarantine) and is_spark(spark.keys)
    for name in ("valid", "quarantine"):
        expected = getattr(polars, name)
        got = to_polars(getattr(spark, name)).sort(*ORDER)
        assert_frame_equal(got, expected, check_exact=True)
    key_order = list(polars.keys.columns)
    assert_frame_equal(
        to_polars(spark.keys).sort(key_order, nulls_last=True), polars.keys.sort(key_order, nulls_last=True)
    )


def both(spark: Any, feed: str, bronze: pl.DataFrame, **kwargs: Any) -> tuple[SilverResult, SilverResult]:
    on_polars = clean_feed(feed, bronze, now=NOW, **kwargs)
    on_spark = clean_feed(feed, from_polars(spark.range(1), bronze), now=NOW, **kwargs)
    return on_polars, on_spark


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pl.DataFrame]:
    """Every feed's bronze rows of a generated landing zone (all registered providers, 2 days),
    read as the platform's bronze reader reads them."""
    registry = load_registry()
    root = tmp_path_factory.mktemp("landing")
    generate(str(root), providers=len(registry.providers), days=2, start=date(2026, 10, 1), sales_lines_per_day=2000)
    frames: dict[str, list[pl.DataFrame]] = defaultdict(list)
    for landed in read_landing_tree(root, registry, ingested_at=NOW):
        if isinstance(landed, BronzeFile):  # the dead-lettered files are not silver's
            frames[landed.feed].append(landed.frame)
    # The first rows of every file: every provider and format, a few thousand rows per feed (the
    # customers feed has ~120k), so the Spark runs stay small.
    return {feed: pl.concat(parts).filter(pl.col("_row_number") <= ROWS_PER_FILE) for feed, parts in frames.items()}


@pytest.mark.parametrize("feed", FEEDS)
def test_the_generated_sample_cleans_the_same_on_spark(spark: Any, sample: dict[str, pl.DataFrame], feed: str) -> None:
    registry = load_registry()
    mappings = load_mappings()
    bronze = sample[feed]
    products = None
    if feed == "sales":
        catalog = clean_feed("catalog", sample["catalog"], registry=registry, mappings=mappings, now=NOW).valid
        products = from_polars(spark.range(1), catalog.select("provider", "sku", "category"))
    on_polars, on_spark = both(spark, feed, bronze, registry=registry, mappings=mappings, products=products)
    assert on_polars.valid.height > 0 and on_polars.quarantine.height > 0
    assert_same(on_polars, on_spark)
    counts = reconcile(bronze, on_polars)
    assert_frame_equal(reconcile(from_polars(spark.range(1), bronze), on_spark), counts)
    assert_frame_equal(type_drift(feed, on_spark.quarantine, counts), type_drift(feed, on_polars.quarantine, counts))


def test_seen_is_for_polars_only(spark: Any, sample: dict[str, pl.DataFrame]) -> None:
    registry = load_registry()
    bronze = from_polars(spark.range(1), sample["stores"])
    with pytest.raises(ValueError, match="seen"):
        clean_feed("stores", bronze, registry=registry, mappings=load_mappings(), now=NOW, seen=pl.DataFrame())


# --- hostile values through both engines ---------------------------------------------------------

#: ordered_at as written, per provider (profile): every datetime format, DST's ambiguous and
#: skipped hours, offsets, fractions, non-padded values, invalid days.
HOSTILE_TIMES = {
    "pawmart": [
        "2026-11-01T01:30:00",
        "2026-11-01T02:30:00",
        "2026-03-08T02:30:00",
        "2026-03-08T03:00:00",
        "2026-10-01 10:00:00",
        "2026-10-01T10:00",
        " 2026-10-01T10:00:00.5 ",
        "2026-10-01T10:00:00.123456789",
        "2026-02-30T10:00:00",
        "2026-10-01",
    ],
    "chewyish": [
        "2026-10-01T14:00:00Z",
        "2026-10-01T19:30:00+05:30",
        "2026-10-01T09:00:00-0500",
        "2026-10-01T14:00:00.250Z",
    ],
    "petopia": ["03/08/2026 01:59", "03/08/2026 02:30", "1/5/2026 9:05", "13/01/2026 10:00", "11/01/2026 01:30"],
    "vetcare_partners": ["08/03/2026 02:30", "01/07/2026 07:00", "31/02/2026 07:00"],
    "petdirect": ["1790863200000", "1790863200000.0", "-5", "17e3", ""],
}
#: unit_price as written, per provider: all four money formats' edge cases.
HOSTILE_MONEY = {
    "pawmart": [
        "12.5",
        "0012.50",
        ".99",
        "7",
        " 3.10 ",
        "0.005",
        "0.0049",
        "12.34499999",
        "12.3450000001",
        "0.30000000000000004",
        "99999999.9999",
        "100000000",
        "-1",
        "1e3",
        "12.34.56",
        "١٢",
        "abc",
        " ",
    ],
    "petopia": ["$1,299.00", "$ 12.99", "1 299.00", "12.99", "$-3", "1,2,3"],
    "petdirect": ["1299", "5", "1299.0", "1298.5", "1298.4999", "9999999999.99", "10000000000", "-1"],
    "northpaw_distribution": ["10.00", "0.50", "2.50", "0.10"],
}


def _bronze(registry: Registry, provider: str, feed: str, records: list[dict[str, Any]], name: str) -> pl.DataFrame:
    from resight_platform_tests.transforms.conftest import BUSINESS_DATE, INGESTED_AT, landing_key, write_landed

    source = registry.source(provider, feed)
    assert source is not None
    key = landing_key(source, name)
    data = write_landed(source, records)
    return read_landing_file(data, source=source, key=key, business_date=BUSINESS_DATE, ingested_at=INGESTED_AT)


def _hostile(registry: Registry, feed: str) -> pl.DataFrame:
    """The breaking examples of every rule of ``feed`` and a valid row; for sales also every
    timestamp and money case above, each set in its own file."""
    from resight_platform_tests.transforms.test_silver import BREAKS, VALID, WHEN

    make = VALID[feed]
    overrides = [o for rule in BREAKS[feed].values() for o in rule]
    if feed != "sales":
        return _bronze(registry, "pawmart", feed, [make(), *(make(**o) for o in overrides)], "breaks")
    frames = [_bronze(registry, "pawmart", feed, [make(), *(make(**o) for o in overrides)], "breaks")]
    for provider, texts in HOSTILE_TIMES.items():
        lines = [make(order_id=f"T{i}", ordered_at=t) for i, t in enumerate(texts)]
        frames.append(_bronze(registry, provider, feed, lines, "times"))
    for provider, texts in HOSTILE_MONEY.items():
        lines = [
            make(order_id=f"M{i}", unit_price=t, discount=None, ordered_at=WHEN[provider]) for i, t in enumerate(texts)
        ]
        frames.append(_bronze(registry, provider, feed, lines, "money"))
    return pl.concat(frames)


@pytest.mark.parametrize("feed", FEEDS)
def test_every_rules_breaking_examples_and_hostile_values_match(spark: Any, feed: str) -> None:
    from resight_platform_tests.transforms.test_silver import BREAKS

    registry = load_registry()
    bronze = _hostile(registry, feed)
    # the same lines again in a later file: duplicates across files, judged among passing rows
    again = bronze.with_columns(pl.col("_source_file") + "-again")
    on_polars, on_spark = both(spark, feed, pl.concat([again, bronze]), registry=registry, mappings=load_mappings())
    assert set(on_polars.quarantine["rule"]) >= set(BREAKS[feed]) | {"duplicate"}
    assert_same(on_polars, on_spark)


def test_scoped_value_maps_constants_and_defaults_match(spark: Any, tmp_path: Path) -> None:
    from resight_platform_tests.transforms.test_silver import (
        GENERAL,
        GENERAL_FILES,
        STATUS_MAPS,
        bronze_of,
        customer,
        product,
        registry_with,
        sale,
        store,
    )

    files = dict(GENERAL_FILES)
    files["value_maps.csv"] = (
        STATUS_MAPS["value_maps.csv"]
        + """
        pawmart,,species,doggo,dog,,
        pawmart,,units,EA,ct,,
        pawmart,,categories,kibble,food,,
        pawmart,,brands,HB,Happy Bowl,,Happy Bowl Foods
        pawmart,,states,calif(ornia)?,CA,regex,
        pawmart,sales,channels,kiosk,store,,
    """
    )
    registry = registry_with(tmp_path, files, GENERAL)
    statuses = ["SOLD", " rtn ", "R7", "void-x", "Completed", "refunded", "nope"]
    sales = [sale(order_id=f"S{i}", status=s, channel="Kiosk" if i % 2 else None) for i, s in enumerate(statuses)]
    cases = {
        "sales": [bronze_of(registry, p, "sales", sales) for p in ("pawmart", "barkbox_market")],
        "catalog": [
            bronze_of(
                registry,
                "pawmart",
                "catalog",
                [
                    product(sku="1", species="Doggo", pack_unit="ea", category="Kibble", brand="hb"),
                    product(sku="2", brand="  Some   Brand "),
                ],
            ),
            bronze_of(
                registry,
                "general_store",
                "catalog",
                [
                    {"sku": "1", "product_name": "Broom", "list_price": "9.99", "pack_unit": "oz"},
                    {"sku": "2", "product_name": "Bucket", "list_price": "4.50", "pack_unit": " "},
                    {"sku": "3", "product_name": "Mop", "list_price": "-1"},
                ],
            ),
        ],
        "stores": [
            bronze_of(
                registry,
                "pawmart",
                "stores",
                [
                    store(state="California"),
                    store(store_id="S2", state="calif"),
                    store(store_id="S3", zip="02134-1234"),
                ],
            )
        ],
        "customers": [
            bronze_of(
                registry,
                "pawmart",
                "customers",
                [customer(state="California"), customer(customer_id="C2", state="Nevada")],
            ),
            bronze_of(
                registry,
                "general_store",
                "customers",
                [{"customer_id": "G1", "state": ""}, {"customer_id": "G2", "state": "ZZ"}],
            ),
        ],
    }
    for feed, frames in cases.items():
        on_polars, on_spark = both(spark, feed, pl.concat(frames), registry=registry, mappings=registry.mappings)
        assert_same(on_polars, on_spark)
