"""Gold (dimensions, ``fact_sales``), every mart, the weekly demand and the ML features give the
same rows on Polars and on Spark.

The silver frames are the platform's own: a generated sample (three providers, days across a month
end) read through bronze and ``clean_feed`` on Polars. A few catalog, store and customer rows are
held back from the dimensions so sales land on each unknown member (key 0), and a few lines are
added whose revenues tie, at the top of a month and across the cut of a short top list. Each
frame then goes to Spark through Arrow (``engines.from_polars``), the same functions run there,
and the results come back (``engines.to_polars``): equal row by row after a sort, with the same
dtypes and the same values, no tolerance.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines import from_polars, to_polars
from resight_platform.ml.features import build_features, weekly_demand
from resight_platform.sample.generator import generate
from resight_platform.sources.mappings import Mappings, load_mappings
from resight_platform.sources.registry import FEEDS, Registry, load_registry
from resight_platform.transforms import gold, marts
from resight_platform.transforms.bronze import BronzeFile, read_landing_tree
from resight_platform.transforms.silver import clean_feed

NOW = datetime(2026, 12, 1, tzinfo=UTC)
#: Days across a month end (every monthly mart has two months, brand shares a previous month),
#: from a Monday: two complete weeks of weekly demand.
START, DAYS, PROVIDERS, LINES_PER_DAY = date(2026, 9, 21), 16, 3, 150
#: Members held back from each dimension: their sales land on the unknown member.
HELD_BACK = 3
#: Added lines whose revenues tie (unknown SKUs, new customers): ranks 1-3 of their month.
TIED_SKUS = ("TIE-A", "TIE-B", "TIE-C")
TIED_AMOUNT = 99_999.99
#: A top list cut inside the tie.
SHORT_TOP = 2

Silver = dict[str, pl.DataFrame]


def _silver(root: Path, registry: Registry, mappings: Mappings) -> Silver:
    """Every feed's valid silver rows of the sample under ``root``, as the platform cleans them: each
    partition folder's readable files through bronze, then ``clean_feed`` (dead-lettered files are
    not silver's)."""
    frames: dict[str, list[pl.DataFrame]] = {feed: [] for feed in FEEDS}
    read = (f for f in read_landing_tree(root, registry, ingested_at=NOW) if isinstance(f, BronzeFile))
    for (_, feed, _), files in itertools.groupby(read, key=lambda f: (f.provider, f.feed, f.business_date)):
        bronze = pl.concat(f.frame for f in files)
        frames[feed].append(clean_feed(feed, bronze, registry=registry, mappings=mappings, now=NOW).valid)
    return {feed: pl.concat(parts, how="vertical_relaxed") for feed, parts in frames.items() if parts}


def _tied_lines(sales: pl.DataFrame) -> pl.DataFrame:
    """Completed lines of products not in any catalog, one per SKU, with the same (huge) amount,
    each of a customer not in any customer list: ties at the top of both top lists."""
    template = sales.filter(pl.col("business_date") == pl.col("business_date").max()).head(1)
    return pl.concat(
        [
            template.with_columns(
                pl.lit(f"ORDER-{sku}").alias("order_id"),
                pl.lit(1, dtype=pl.Int32).alias("line_no"),
                pl.lit(sku).alias("sku"),
                pl.lit(1, dtype=pl.Int32).alias("quantity"),
                pl.lit(TIED_AMOUNT).alias("unit_price"),
                pl.lit(0.0).alias("discount"),
                pl.lit(TIED_AMOUNT).alias("net_amount"),
                pl.lit(f"CUST-{sku}").alias("customer_id"),
                pl.lit("completed").alias("status"),
            )
            for sku in TIED_SKUS
        ]
    )


@pytest.fixture(scope="module")
def silver(tmp_path_factory: pytest.TempPathFactory) -> Silver:
    root = tmp_path_factory.mktemp("gold_parity") / "landing"
    generate(str(root), providers=PROVIDERS, days=DAYS, start=START, sales_lines_per_day=LINES_PER_DAY)
    registry = load_registry()
    frames = _silver(root, registry, load_mappings())
    held = {"catalog": "sku", "stores": "store_id", "customers": "customer_id"}
    sold = frames["sales"]
    for feed, column in held.items():
        named = sold.get_column(column).drop_nulls().unique().sort().head(HELD_BACK)
        frames[feed] = frames[feed].filter(~pl.col(column).is_in(named.implode()))
    frames["sales"] = pl.concat([sold, _tied_lines(sold)])
    return frames


def _same(polars: pl.DataFrame, got: pl.DataFrame) -> None:
    """``got`` (collected from Spark) holds ``polars``' rows: same columns, dtypes and values."""
    assert got.schema == polars.schema
    assert got.height == polars.height > 0
    order = polars.columns
    assert got.sort(order, nulls_last=True).equals(polars.sort(order, nulls_last=True))


def _built(silver: Silver, mappings: Mappings, like: Any) -> dict[str, Any]:
    """Dimensions, facts and every mart from ``silver``, on Polars (``like`` None) or on the Spark
    session of ``like``. The marts read the facts and dimensions as written (collected, then handed
    back, as they would be read from the lake), not as the plans that built them; what was
    collected is kept under ``written`` (a Spark query run once)."""

    def on(frame: pl.DataFrame) -> Any:
        return frame.lazy() if like is None else from_polars(like, frame)

    written: dict[str, pl.DataFrame] = {}

    def settled(name: str) -> Any:
        written[name] = to_polars(built[name])
        return on(written[name])

    dim_provider = on(gold.build_dim_provider(load_registry()))
    built: dict[str, Any] = {
        "dim_product": gold.build_dim_product(on(silver["catalog"])),
        "dim_store": gold.build_dim_store(on(silver["stores"])),
        "dim_customer": gold.build_dim_customer(on(silver["customers"]), mappings),
    }
    products, stores, customers = settled("dim_product"), settled("dim_store"), settled("dim_customer")
    built["fact_sales"] = gold.build_fact_sales(
        on(silver["sales"]),
        dim_provider=dim_provider,
        dim_product=products,
        dim_store=stores,
        dim_customer=customers,
        mappings=mappings,
    )
    facts = settled("fact_sales")
    for name in ("daily_sales", "monthly_sales", "brand_share_monthly", "order_status_impact", "aov_by_region"):
        built[name] = getattr(marts, name)(facts, products)
    built["top_products_monthly"] = marts.top_products_monthly(facts, products)
    built["top_products_short"] = marts.top_products_monthly(facts, products, top=SHORT_TOP)
    built["top_customers_monthly"] = marts.top_customers_monthly(facts, products, customers)
    built["top_customers_short"] = marts.top_customers_monthly(facts, products, customers, top=SHORT_TOP)
    built["weekly_demand"] = weekly_demand(facts, products, dim_provider)
    built["written"] = written
    return built


@pytest.fixture(scope="module")
def on_polars(silver: Silver) -> dict[str, Any]:
    return _built(silver, load_mappings(), None)


def test_the_sample_holds_what_parity_must_cover(on_polars: dict[str, Any]) -> None:
    """Unknown members, online sales (no store), two months, several providers, ties at the cut."""
    fact: pl.DataFrame = on_polars["fact_sales"]
    for key in ("product_key", "store_key", "customer_key"):
        assert fact.filter(pl.col(key) == gold.UNKNOWN_KEY).height > 0, key
    assert fact.filter(pl.col("store_id").is_null()).height > 0
    assert fact.filter(pl.col("customer_id").is_null()).height > 0
    assert fact.get_column("sale_date").dt.month().n_unique() >= 2
    assert fact.get_column("provider").n_unique() == PROVIDERS
    assert len(on_polars["weekly_demand"].panel) == PROVIDERS
    assert on_polars["weekly_demand"].frame.get_column("week").n_unique() == 2
    short: pl.DataFrame = on_polars["top_products_short"]
    tied_month = short.filter(pl.col("sku") == TIED_SKUS[0]).get_column("month").item()
    listed = short.filter(pl.col("month") == tied_month)
    assert listed.get_column("sku").to_list() == list(TIED_SKUS[:SHORT_TOP])  # the third, tied, is cut
    assert listed.get_column("revenue").to_list() == [TIED_AMOUNT] * SHORT_TOP


@pytest.mark.xdist_group("spark")
def test_gold_and_every_mart_are_identical_on_spark(
    interpreted: Any, silver: Silver, on_polars: dict[str, Any]
) -> None:
    on_spark = _built(silver, load_mappings(), interpreted.range(1))
    assert set(on_spark) == set(on_polars)
    assert set(on_spark["written"]) == {"dim_product", "dim_store", "dim_customer", "fact_sales"}
    demand, demand_on_spark = on_polars["weekly_demand"], on_spark["weekly_demand"]
    assert isinstance(demand_on_spark.frame, pl.DataFrame)  # collected: small
    assert demand_on_spark.frame.schema == demand.frame.schema
    assert demand_on_spark.frame.equals(demand.frame)
    assert replace(demand_on_spark, frame=None) == replace(demand, frame=None)  # panel, weeks, sources
    # and the features built from it, on Spark from Spark's weekly frame: the same bits
    features_on_spark = build_features(from_polars(interpreted.range(1), demand_on_spark.frame))
    assert_frame_equal(features_on_spark, build_features(demand.frame), check_exact=True)
    for name, frame in on_polars.items():
        if name in ("weekly_demand", "written"):
            continue
        assert not isinstance(on_spark[name], pl.DataFrame | pl.LazyFrame), name  # Spark's own, lazy
        got = on_spark["written"].get(name)
        _same(frame, to_polars(on_spark[name]) if got is None else got)
