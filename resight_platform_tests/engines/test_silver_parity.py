"""Silver's cleaning on Spark equals silver on Polars, row by row: valid rows, quarantine rules and
raw, the keys; on the generated sample and on hostile values (money, timestamps, DST, NUL, registry
constants and defaults, scoped value maps, duplicates across files, ceilings)."""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines import from_polars, is_spark, to_polars
from resight_platform.sample.generator import generate
from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.mappings import Mappings, load_mappings
from resight_platform.sources.registry import FEEDS, Registry, load_registry
from resight_platform.transforms.bronze import FileRejected, read_landing_file
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
    for folder in sorted(root.glob("*/*/*")):
        provider, feed, day_text = folder.relative_to(root).parts
        if provider not in registry.providers or feed not in FEEDS or not folder.is_dir():
            continue
        source = registry.source(provider, feed)
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            continue
        for key in sorted(Path(d, n).relative_to(root).as_posix() for d, _, names in os.walk(folder) for n in names):
            try:
                parse_landing_key(key, registry)
                assert source is not None
                frames[feed].append(
                    read_landing_file((root / key).read_bytes(), source=source, key=key, business_date=day, ingested_at=NOW)
                )
            except (LandingKeyError, FileRejected):
                continue
    # The first rows of every file: every provider and format, a few thousand rows per feed (the
    # customers feed has ~120k), so the Spark runs stay small.
    return {feed: pl.concat(parts).filter(pl.col("_row_number") <= ROWS_PER_FILE) for feed, parts in frames.items()}


@pytest.mark.parametrize("feed", FEEDS)
def test_the_generated_sample_cleans_the_same_on_spark(
    spark: Any, sample: dict[str, pl.DataFrame], feed: str
) -> None:
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
