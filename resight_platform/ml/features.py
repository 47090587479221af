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
- :func:`build_features` (Polars, on the driver: its input is the weekly frame, series × weeks,
  thousands of rows): one row per series × week from the series' first sale to ``last_week``
  (weeks without sales are zero demand), with features for week *t* computed only from weeks up to
  *t − 1* and the calendar of week *t*. Demand features are relative to the series' scale (its mean
  over the 13 weeks before *t*), so one global model serves series of every size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import narwhals as nw
import polars as pl

from resight_platform.engines import lazy_like, to_polars
from resight_platform.engines.kernels import with_dollars
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


def _code(column: str, vocabulary: tuple[str, ...]) -> pl.Expr:
    mapping = {value: float(i) for i, value in enumerate(vocabulary)}
    return pl.col(column).replace_strict(mapping, default=None, return_dtype=pl.Float64).alias(f"{column}_code")


def build_features(weekly: pl.DataFrame, last_week: date | None = None) -> pl.DataFrame:
    """One row per series × week (first sale .. ``last_week``, default the last week of ``weekly``):
    the series, ``week``, the target ``units``, ``revenue``, ``scale``, ``seasonal_naive`` (units
    52 weeks before, the baseline) and :data:`FEATURES`, each from weeks before ``week`` only."""
    if weekly.is_empty():
        return _empty_features()
    last = last_week or weekly.get_column(WEEK).max()
    assert isinstance(last, date)
    starts = weekly.group_by(SERIES).agg(pl.col(WEEK).min().alias("_first"))
    grid = (
        starts.with_columns(pl.date_ranges(pl.col("_first"), pl.lit(last), interval="1w").alias(WEEK))
        .explode(WEEK)
        .drop("_first")
        .filter(pl.col(WEEK).is_not_null())
    )
    frame = (
        grid.join(weekly.select(WEEK, *SERIES, TARGET, "revenue"), on=[WEEK, *SERIES], how="left")
        .with_columns(pl.col(TARGET).fill_null(0.0), pl.col("revenue").fill_null(0.0))
        .sort(*SERIES, WEEK)
    )
    y = pl.col(TARGET)

    def past(expr: pl.Expr) -> pl.Expr:
        return expr.over(SERIES, order_by=WEEK)

    def mean(weeks: int, offset: int = 1, *, of: pl.Expr = y, complete: bool = False) -> pl.Expr:
        return past(of.shift(offset).rolling_mean(weeks, min_samples=weeks if complete else 1))

    def total(weeks: int, of: pl.Expr) -> pl.Expr:
        return past(of.shift(1).rolling_sum(weeks, min_samples=1))

    week_of_year = pl.col(WEEK).dt.week().cast(pl.Float64)
    angle = 2 * math.pi * week_of_year / 52.0
    frame = frame.with_columns(
        pl.max_horizontal(mean(SCALE_WEEKS).fill_null(0.0), pl.lit(1.0)).alias("scale"),
        past(y.shift(52)).alias("seasonal_naive"),
        *(past(y.shift(k)).alias(f"_lag_{k}") for k in (1, 2, 3, 4)),
        mean(4).alias("_mean_4"),
        mean(26).alias("_mean_26"),
        mean(3, 51, complete=True).alias("_last_year"),
        mean(SCALE_WEEKS, 53, complete=True).alias("_last_year_level"),
        (pl.col("revenue") / pl.col(TARGET)).alias("_price"),
        (total(SCALE_WEEKS, pl.col("revenue")) / total(SCALE_WEEKS, y)).alias("_price_13"),
        (total(4, pl.col("revenue")) / total(4, y)).alias("_price_4"),
        angle.sin().alias("week_sin"),
        angle.cos().alias("week_cos"),
        _code("category", CATEGORIES),
        _code("species", SPECIES),
        _code("region", REGIONS),
    )
    scale = pl.col("scale")
    finite = pl.when(pl.col("_price_13").is_finite() & (pl.col("_price_13") > 0))
    frame = frame.with_columns(
        *(pl.col(f"_lag_{k}") / scale for k in (1, 2, 3, 4)),
        pl.col("_mean_4") / scale,
        pl.col("_mean_26") / scale,
        pl.col("_last_year") / scale,
        pl.when(pl.col("_last_year_level") > 0)
        .then(pl.col("_last_year") / pl.col("_last_year_level"))
        .otherwise(None)
        .alias("season_ratio"),
        scale.log().alias("log_scale"),
        finite.then(past(pl.col("_price").shift(1)) / pl.col("_price_13")).otherwise(None).alias("price_ratio"),
        finite.then(pl.col("_price_4") / pl.col("_price_13")).otherwise(None).alias("price_trend"),
    ).rename({f"_lag_{k}": f"lag_{k}" for k in (1, 2, 3, 4)} | {"_mean_4": "mean_4", "_mean_26": "mean_26"})
    frame = frame.rename({"_last_year": "last_year"}).with_columns(
        pl.col(c).fill_nan(None) for c in ("price_ratio", "price_trend")
    )
    return frame.select(WEEK, *SERIES, TARGET, "revenue", "scale", "seasonal_naive", *FEATURES).sort(WEEK, *SERIES)


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
