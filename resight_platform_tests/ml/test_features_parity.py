"""The demand features are the same on Polars and on Spark, to the last bit.

``build_features`` is one Narwhals plan over either engine's weekly frame; the model reads its
columns, so Spark's rows must equal Polars' exactly: dtypes, row order and every float's bits.
The weekly frames are as ``weekly_demand`` makes them (Monday weeks, whole units, revenue in whole
cents) with what the features must handle: weeks missing (zero demand), weeks sold at zero, a
series that starts late, one that starts after the cut, more than a year of history (so the
year-ago features are set) and a ``last_week`` before the data's last week.
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from typing import Any

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines import from_polars
from resight_platform.ml.features import FEATURES, SERIES, TARGET, WEEK, build_features

START = date(2024, 12, 30)  # a Monday
#: Weeks of history: past a year and a quarter, so ``last_year`` (weeks t-53..t-51) and
#: ``season_ratio`` (t-65..t-53) have values in the last months.
WEEKS = 80
#: The series: (category, species, region, first week, last week sold or None).
SERIES_ROWS = (
    ("food", "dog", "West", 0, None),
    ("food", "cat", "South", 0, None),
    ("toys", "dog", "Northeast", 3, None),
    ("litter", "cat", "Midwest", 30, None),  # a new series
    ("health", "bird", "Unknown", 0, 60),  # stops selling: zero demand after
    ("treats", "fish", "West", 78, None),  # starts in the last weeks
)


def weekly_frame(seed: int = 18) -> pl.DataFrame:
    """Seasonal weekly demand in whole units and whole cents (prices vary week to week, so revenue
    sums are not multiples of one price), with missing weeks and weeks sold at zero."""
    rng = np.random.default_rng(seed)
    rows = []
    for category, species, region, first, stop in SERIES_ROWS:
        base = float(rng.uniform(3, 300))
        for w in range(first, WEEKS):
            if stop is not None and w > stop:
                break
            draw = rng.random()
            if draw < 0.06:
                continue  # no row: zero demand
            units = 0 if draw < 0.1 else int(rng.poisson(base * (1 + 0.6 * np.cos(2 * np.pi * w / 52))))
            cents = int(units * rng.integers(99, 4_999))
            rows.append((START + timedelta(weeks=w), category, species, region, float(units), cents / 100))
    return pl.DataFrame(rows, schema=[WEEK, *SERIES, TARGET, "revenue"], orient="row")


def test_the_sample_holds_what_parity_must_cover() -> None:
    weekly = weekly_frame()
    features = build_features(weekly)
    assert features.height > 300
    assert weekly.filter(pl.col(TARGET) == 0).height > 0  # weeks sold at zero
    assert features.height > weekly.height  # and weeks with no row, filled as zero
    for column in ("last_year", "season_ratio", "seasonal_naive", "price_ratio", "price_trend"):
        assert features.get_column(column).drop_nulls().len() > 50, column
    stopped = features.filter((pl.col("category") == "health") & (pl.col(WEEK) > START + timedelta(weeks=60)))
    assert stopped.height > 0 and stopped.get_column(TARGET).sum() == 0


@pytest.mark.parametrize(
    "last_week",
    [None, START + timedelta(weeks=70)],
    ids=["last-week-of-data", "cut-before-it"],
)
def test_spark_gives_polars_features_bit_for_bit(interpreted: Any, last_week: date | None) -> None:
    weekly = weekly_frame()
    expected = build_features(weekly, last_week=last_week)
    got = build_features(from_polars(interpreted.range(1), weekly), last_week=last_week)
    assert isinstance(got, pl.DataFrame)  # collected: series × weeks is small
    assert_frame_equal(got, expected, check_exact=True)
    assert got.columns == [WEEK, *SERIES, TARGET, "revenue", "scale", "seasonal_naive", *FEATURES]


def test_an_empty_weekly_frame_gives_the_empty_features_on_both(spark: Any) -> None:
    empty = weekly_frame().clear()
    expected = build_features(empty)
    assert expected.is_empty()
    assert_frame_equal(build_features(from_polars(spark.range(1), empty)), expected)
    assert_frame_equal(build_features(pl.DataFrame()), expected)


def _exact_price(cents: list[int], units: list[float]) -> float | None:
    """Revenue over units of the given weeks as the double nearest the exact quotient."""
    total = sum(units)
    return float(Fraction(sum(cents), 100) / Fraction(total)) if total else None


def test_prices_are_exact_ratios_of_whole_cents() -> None:
    """``price_trend`` is the 4 weeks' price over the 13 weeks', each the double nearest to whole
    cents over whole units: computed exactly here (fractions) for every week of a series."""
    weekly = weekly_frame()
    features = build_features(weekly)
    series = ("food", "dog", "West")
    rows = features.filter(pl.struct(SERIES) == dict(zip(SERIES, series, strict=True))).sort(WEEK)
    cents = [round(r * 100) for r in rows.get_column("revenue")]
    units = rows.get_column(TARGET).to_list()
    checked = 0
    for t, got in enumerate(rows.get_column("price_trend")):
        recent, longer = (
            _exact_price(cents[max(t - 4, 0) : t], units[max(t - 4, 0) : t]),
            _exact_price(cents[max(t - 13, 0) : t], units[max(t - 13, 0) : t]),
        )
        if recent is None or longer is None or longer <= 0:
            assert got is None
            continue
        assert got == recent / longer, t
        checked += 1
    assert checked > WEEKS - 10
