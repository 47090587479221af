"""Weekly demand per category × species × region, and the features the demand model reads.

Two steps:

- :func:`weekly_demand` (on the engine of the facts it is given, Polars or Spark, written once in
  Narwhals; its result is small and always a Polars frame, on the driver): completed sales lines
  of ``gold.fact_sales`` joined to ``dim_product``, summed per ISO week (Monday start) × series,
  over the *complete* weeks of the data (a week counts when the data covers its Monday to its
  Sunday) and over the **constant panel**: the providers that delivered sales in at least
  ``panel_coverage`` of those weeks. A partner that starts sending files is a new reporter, not
  new demand: summing it in would show a jump in every series it sells in. (The panel is chosen on
  the whole window, so it knows which partners keep reporting; see docs/architecture.md, ML.)
- :func:`build_features` (on the engine of the weekly frame it is given, written once in Narwhals;
  its result, series × weeks, is collected to a Polars frame): one row per series × week from the
  series' first sale to ``last_week`` (weeks without sales are zero demand), with features for
  week *t* computed only from weeks up to *t − 1* and the calendar of week *t*. Demand features
  are relative to the series' scale (its mean over the 13 weeks before *t*), so one global model
  serves series of every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import narwhals as nw
import polars as pl

from resight_platform.engines import lazy_like, to_polars
from resight_platform.engines.kernels import with_dollars, with_mapped
from resight_platform.sources.mappings import vocabulary

__all__ = [
    "CATEGORIES",
    "FEATURES",
    "REGIONS",
    "SERIES",
    "SPECIES",
    "TARGET",
    "WeeklyDemand",
    "active_series",
    "build_features",
    "weekly_demand",
]

SERIES = ["category", "species", "region"]
TARGET = "units"
WEEK = "week"

#: Fixed vocabularies, so a series' codes are the same in every training run and forecast: the
#: platform's (the packaged mapping tables', in file order; a new value is appended at the end).
CATEGORIES: tuple[str, ...] = vocabulary().ordered("categories")
SPECIES: tuple[str, ...] = vocabulary().ordered("species")
REGIONS: tuple[str, ...] = (*vocabulary().ordered("regions"), "Unknown")

#: What the model reads, in order. The target (``units`` of week t) and ``revenue`` are not here.
FEATURES = [
    "lag_1",
    "lag_2",
    "lag_3",
    "lag_4",
    "mean_4",
    "mean_26",
    "last_year",
    "season_ratio",
    "log_scale",
    "week_sin",
    "week_cos",
    "price_ratio",
    "price_trend",
    "category_code",
    "species_code",
    "region_code",
]
CATEGORICAL = ["category_code", "species_code", "region_code"]

#: Weeks of the mean that sets a series' scale at week t (t−13 .. t−1).
SCALE_WEEKS = 13


@dataclass(frozen=True)
class WeeklyDemand:
    """Units and revenue per week × series, and what they were computed from."""

    frame: pl.DataFrame
    panel: list[str]
    excluded: list[str]
    first_week: date | None
    last_week: date | None
    first_date: date | None
    last_date: date | None
    #: Per provider read: its first and last sale date and its days with sales (its partitions).
    sources: dict[str, dict[str, object]] = field(default_factory=dict)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def weekly_demand(fact: Any, dim_product: Any, dim_provider: Any, *, panel_coverage: float = 0.9) -> WeeklyDemand:
    """Units and revenue of completed lines per complete week × category × species × region, over
    the providers that reported in at least ``panel_coverage`` of those weeks.

    ``fact`` and the dimensions are Polars frames or PySpark DataFrames (the dimensions are moved
    to the facts' engine); the aggregation runs on the facts' engine and its (small) results are
    collected: the frame is Polars either way."""
    products = lazy_like(fact, dim_product).select("product_key", "category", "species")
    providers = lazy_like(fact, dim_provider).select("provider_key", "provider")
    lines = (
        lazy_like(fact, fact)
        .filter(nw.col("status") == "completed")
        .select("sale_date", "provider_key", "product_key", "region", "quantity", "net_amount")
        .join(products, on="product_key", how="left")
        .join(providers, on="provider_key", how="left")
        .with_columns(
            nw.col("category").fill_null("other"),
            nw.col("species").fill_null("other"),
            nw.col("region").fill_null("Unknown"),
            nw.coalesce(nw.col("provider"), nw.col("provider_key").cast(nw.String())).alias("provider"),
        )
    )
    span = _collected(lines.select(nw.col("sale_date").min().alias("lo"), nw.col("sale_date").max().alias("hi")))
    lo, hi = span.item(0, "lo"), span.item(0, "hi")
    empty = pl.DataFrame(
        schema={WEEK: pl.Date, **dict.fromkeys(SERIES, pl.Utf8), TARGET: pl.Float64, "revenue": pl.Float64}
    )
    if lo is None or hi is None:
        return WeeklyDemand(empty, [], [], None, None, None, None)
    first_week = _monday(lo + timedelta(days=6))
    last_week = _monday(hi + timedelta(days=1)) - timedelta(days=7)
    if last_week < first_week:
        return WeeklyDemand(empty, [], [], None, None, lo, hi)
    per_provider = lines.group_by("provider").agg(
        nw.col("sale_date").min().alias("first"),
        nw.col("sale_date").max().alias("last"),
        nw.col("sale_date").n_unique().cast(nw.Int64()).alias("days"),
    )
    sources = {
        row["provider"]: {
            "first_date": row["first"].isoformat(),
            "last_date": row["last"].isoformat(),
            "days": row["days"],
        }
        for row in _collected(per_provider).sort("provider").iter_rows(named=True)
    }
    weeks = (last_week - first_week).days // 7 + 1
    in_window = lines.filter(nw.col("sale_date").is_between(first_week, last_week + timedelta(days=6))).join(
        _calendar(fact, first_week, last_week), on="sale_date", how="inner"
    )
    coverage = (
        _collected(in_window.group_by("provider").agg(nw.col(WEEK).n_unique().cast(nw.Int64()).alias("_weeks")))
        .select("provider", (pl.col("_weeks") / weeks).alias("coverage"))
        .sort("provider")
    )
    panel = coverage.filter(pl.col("coverage") >= panel_coverage).get_column("provider").to_list()
    excluded = coverage.filter(pl.col("coverage") < panel_coverage).get_column("provider").to_list()
    summed = (
        in_window.filter(nw.col("provider").is_in(panel))
        .group_by(WEEK, *SERIES)
        .agg(
            nw.col("quantity").cast(nw.Int64()).sum().cast(nw.Float64()).alias(TARGET),
            # Summed in integer cents: a float sum's order (Polars' threads, Spark's partitions)
            # would change its last bits from run to run, and with them the price features and
            # the model; dollars once, by the engine's exact kernel.
            (nw.col("net_amount") * 100).round(0).cast(nw.Int64()).sum().alias("_cents"),
        )
    )
    frame = _collected(with_dollars(summed, {"revenue": "_cents"}).select(WEEK, *SERIES, TARGET, "revenue"))
    return WeeklyDemand(frame.sort(WEEK, *SERIES), panel, excluded, first_week, last_week, lo, hi, sources)


def _calendar(like: Any, first_week: date, last_week: date) -> nw.LazyFrame:
    """Each day of the weeks ``first_week`` .. ``last_week`` and its week's Monday, on ``like``'s
    engine: a join, since Narwhals truncates to weeks on neither engine ("1w" is not an interval
    it takes)."""
    days = pl.date_range(first_week, last_week + timedelta(days=6), interval="1d", eager=True).alias("sale_date")
    calendar = pl.DataFrame(days).with_columns(pl.col("sale_date").dt.truncate("1w").alias(WEEK))
    return lazy_like(like, calendar)


def _collected(frame: nw.LazyFrame) -> pl.DataFrame:
    """A (small) result as a Polars DataFrame: Polars' streaming engine, Spark's rows through Arrow."""
    native = nw.to_native(frame)
    if isinstance(native, pl.LazyFrame):
        return native.collect(engine="streaming")
    return to_polars(native)


#: Each vocabulary's code column and its values' codes (the position in the vocabulary), as maps
#: the frame is joined with (``kernels.with_mapped``: a broadcast join on Spark).
CODES: dict[str, tuple[str, ...]] = {"category": CATEGORIES, "species": SPECIES, "region": REGIONS}


def _codes(column: str, values: tuple[str, ...]) -> pl.DataFrame:
    return pl.DataFrame(
        {column: list(values), f"{column}_code": [float(i) for i in range(len(values))]},
        schema={column: pl.Utf8, f"{column}_code": pl.Float64},
    )


def build_features(weekly: Any, last_week: date | None = None) -> pl.DataFrame:
    """One row per series × week (first sale .. ``last_week``, default the last week of ``weekly``):
    the series, ``week``, the target ``units``, ``revenue``, ``scale``, ``seasonal_naive`` (units
    52 weeks before, the baseline) and :data:`FEATURES`, each from weeks before ``week`` only.

    ``weekly`` (``week`` Mondays, whole units, revenue in whole cents: as :func:`weekly_demand`
    makes it) is a Polars frame or a PySpark DataFrame; the features are computed on its engine in
    one Narwhals plan and collected (series × weeks: small), so the result is a Polars frame either
    way. Both engines give the same bits: windows sum whole units (exact in doubles) and revenue in
    integer cents, a mean is one correctly rounded division on both, and the transcendental
    functions (``sin``/``cos`` of the week, ``log`` of the scale) run once, in Polars, on the
    collected rows: the JVM's and Rust's need not agree to the last bit."""
    frame = nw.from_native(weekly).lazy()
    names = frame.collect_schema().names()
    span = (
        None if not names else _collected(frame.select(nw.col(WEEK).min().alias("lo"), nw.col(WEEK).max().alias("hi")))
    )
    if span is None or span.item(0, "lo") is None:
        return _empty_features()
    first = span.item(0, "lo")
    last = last_week or span.item(0, "hi")
    assert isinstance(first, date) and isinstance(last, date)
    # The series × week grid: each series from its first week to ``last``, a cross join with the
    # weeks (Narwhals has no ``date_ranges``/``explode`` on Spark).
    weeks = pl.DataFrame({WEEK: pl.date_range(first, last, interval="1w", eager=True)}, schema={WEEK: pl.Date})
    starts = frame.group_by(*SERIES).agg(nw.col(WEEK).min().alias("_first"))
    grid = starts.join(lazy_like(frame, weeks), how="cross").filter(nw.col(WEEK) >= nw.col("_first"))
    y = nw.col(TARGET)

    def past(expr: nw.Expr) -> nw.Expr:
        return expr.over(*SERIES, order_by=WEEK)

    # Shifted first, rolled after: Narwhals takes one order-dependent step per window expression.
    shifted = (
        grid.join(frame.select(WEEK, *SERIES, TARGET, "revenue"), on=[WEEK, *SERIES], how="left")
        .with_columns(y.fill_null(0.0), nw.col("revenue").fill_null(0.0))
        .with_columns(((nw.col("revenue") * 100 + 0.5).floor().cast(nw.Int64())).alias("_cents"))
        .with_columns(
            past(y.shift(52)).alias("seasonal_naive"),
            *(past(y.shift(k)).alias(f"_lag_{k}") for k in (1, 2, 3, 4)),
            past(y.shift(51)).alias("_y_51"),
            past(y.shift(53)).alias("_y_53"),
            past(nw.col("_cents").shift(1)).alias("_cents_1"),
            past((nw.col("revenue") / y).shift(1)).alias("_price_1"),
        )
    )

    def mean(of: str, weeks: int, *, complete: bool = False) -> nw.Expr:
        return past(nw.col(of).rolling_mean(weeks, min_samples=weeks if complete else 1))

    def total(of: str, weeks: int) -> nw.Expr:
        return past(nw.col(of).rolling_sum(weeks, min_samples=1))

    def price(weeks: int) -> nw.Expr:
        # Revenue over units of the weeks: whole cents over whole units × 100, one division
        # (exact on both engines; a float sum of dollars differs in its last bits between them).
        return total("_cents_1", weeks).cast(nw.Float64()) / (total("_lag_1", weeks) * 100)

    rolled = shifted.with_columns(
        nw.max_horizontal(mean("_lag_1", SCALE_WEEKS).fill_null(0.0), nw.lit(1.0)).alias("scale"),
        mean("_lag_1", 4).alias("_mean_4"),
        mean("_lag_1", 26).alias("_mean_26"),
        mean("_y_51", 3, complete=True).alias("_last_year"),
        mean("_y_53", SCALE_WEEKS, complete=True).alias("_last_year_level"),
        price(SCALE_WEEKS).alias("_price_13"),
        price(4).alias("_price_4"),
    )
    for column, values in CODES.items():
        rolled = with_mapped(rolled, f"{column}_code", [column], _codes(column, values))
    scale = nw.col("scale")
    finite = nw.when(nw.col("_price_13").is_finite() & (nw.col("_price_13") > 0))
    features = rolled.select(
        WEEK,
        *SERIES,
        TARGET,
        "revenue",
        "scale",
        "seasonal_naive",
        *((nw.col(f"_lag_{k}") / scale).alias(f"lag_{k}") for k in (1, 2, 3, 4)),
        (nw.col("_mean_4") / scale).alias("mean_4"),
        (nw.col("_mean_26") / scale).alias("mean_26"),
        (nw.col("_last_year") / scale).alias("last_year"),
        nw.when(nw.col("_last_year_level") > 0)
        .then(nw.col("_last_year") / nw.col("_last_year_level"))
        .alias("season_ratio"),
        finite.then(nw.col("_price_1") / nw.col("_price_13")).fill_nan(None).alias("price_ratio"),
        finite.then(nw.col("_price_4") / nw.col("_price_13")).fill_nan(None).alias("price_trend"),
        *(f"{column}_code" for column in CODES),
    )
    week_of_year = pl.col(WEEK).dt.week().cast(pl.Float64)
    angle = 2 * math.pi * week_of_year / 52.0
    return (
        to_polars(features)
        .with_columns(
            pl.col("scale").log().alias("log_scale"),
            angle.sin().alias("week_sin"),
            angle.cos().alias("week_cos"),
        )
        .select(WEEK, *SERIES, TARGET, "revenue", "scale", "seasonal_naive", *FEATURES)
        .sort(WEEK, *SERIES)
    )


def _empty_features() -> pl.DataFrame:
    schema: dict[str, pl.DataType] = {WEEK: pl.Date(), **{c: pl.Utf8() for c in SERIES}}
    for column in [TARGET, "revenue", "scale", "seasonal_naive", *FEATURES]:
        schema[column] = pl.Float64()
    return pl.DataFrame(schema=schema)


def active_series(weekly: pl.DataFrame, last_week: date, weeks: int = 52) -> pl.DataFrame:
    """The series with sales in the ``weeks`` weeks up to ``last_week``: the ones a forecast covers."""
    since = last_week - timedelta(weeks=weeks - 1)
    return (
        weekly.filter(pl.col(WEEK).is_between(since, last_week) & (pl.col(TARGET) > 0))
        .select(SERIES)
        .unique()
        .sort(SERIES)
    )
