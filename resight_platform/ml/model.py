"""The demand model: a global gradient-boosted regressor over every series, evaluated on a
rolling origin against the seasonal-naive baseline.

The model predicts a series' units of week *t* relative to its scale (see ``features``) and is
weighted by that scale, so large series count as they do in WAPE. Forecasts are recursive: week
*t + 1* is predicted from the weeks up to *t*, the prediction is appended, and so on for the
horizon. The baseline forecasts each week with the same week a season (52 weeks) earlier.

Rolling origin: ``folds`` origins, ``horizon`` weeks apart, ending at the last week. For each,
the model is trained on the weeks before the origin and forecasts the ``horizon`` weeks from
it; both forecasts are scored against what happened. Metrics: WAPE (sum of absolute errors over
sum of actuals, volume-weighted) and MAE (mean absolute error per series-week, in units).

Training and prediction run on one OpenMP thread: on a shared 2-core machine the default thread
pool made a fit ten times slower (4.9 s instead of 0.56 s), and one thread is deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import polars as pl
from threadpoolctl import threadpool_limits

from resight_platform.ml.features import CATEGORICAL, FEATURES, SERIES, TARGET, WEEK, active_series, build_features

if TYPE_CHECKING:
    # Imported where a model is fitted: scikit-learn (with SciPy) is ~1.5 s of every run process's
    # start, and only the ML assets' steps fit anything.
    from sklearn.ensemble import HistGradientBoostingRegressor

__all__ = [
    "FOLDS",
    "HORIZON",
    "MIN_WEEKS",
    "PARAMS",
    "SEASON",
    "SEED",
    "Evaluation",
    "Fold",
    "evaluate",
    "fit",
    "mae",
    "predict",
    "recursive_forecast",
    "wape",
]

SEASON = 52
HORIZON = 8
FOLDS = 3
SEED = 42
#: Weeks of history the evaluation needs: a season before the first forecast week (the baseline
#: looks a year back) and the folds' forecast weeks.
MIN_WEEKS = SEASON + HORIZON * FOLDS
PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "max_iter": 250,
    "max_leaf_nodes": 15,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
}


def fit(
    features: pl.DataFrame, *, seed: int = SEED, params: dict[str, Any] | None = None
) -> HistGradientBoostingRegressor:
    """Train on every row of ``features`` (units relative to scale, weighted by scale)."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    if features.is_empty():
        raise ValueError("no feature rows to train on")
    model = HistGradientBoostingRegressor(
        **(params or PARAMS), categorical_features=CATEGORICAL, early_stopping=False, random_state=seed
    )
    scale = features.get_column("scale").to_numpy()
    target = features.get_column(TARGET).to_numpy() / scale
    with threadpool_limits(limits=1, user_api="openmp"):
        model.fit(_matrix(features, training=True), target, sample_weight=scale)
    return model


def predict(model: Any, features: pl.DataFrame) -> np.ndarray:
    """Units for each row of ``features`` (the model's relative prediction times the row's scale)."""
    if features.is_empty():
        return np.zeros(0)
    with threadpool_limits(limits=1, user_api="openmp"):
        relative = np.asarray(model.predict(_matrix(features)), dtype=float)
    return np.clip(relative, 0.0, None) * features.get_column("scale").to_numpy()


def _matrix(features: pl.DataFrame, *, training: bool = False) -> pd.DataFrame:
    """The feature columns. For training, a column with no value at all (the year-ago features
    before a season of history) is zero, which the trees never split on: scikit-learn refuses an
    all-missing column."""
    frame = features.select(FEATURES)
    if training:
        empty = [name for name in FEATURES if frame.get_column(name).null_count() == frame.height]
        frame = frame.with_columns(pl.lit(0.0).alias(name) for name in empty)
    return frame.to_pandas()


def recursive_forecast(model: Any, weekly: pl.DataFrame, last_week: date, horizon: int = HORIZON) -> pl.DataFrame:
    """Units of the ``horizon`` weeks after ``last_week`` for every active series, each week
    predicted from the actual weeks up to ``last_week`` and the predictions before it."""
    history = weekly.filter(pl.col(WEEK) <= last_week).select(WEEK, *SERIES, TARGET, "revenue")
    series = active_series(history, last_week)
    history = history.join(series, on=SERIES, how="semi")
    price = _last_price(history, series)
    out = []
    for step in range(1, horizon + 1):
        week = last_week + timedelta(weeks=step)
        rows = build_features(history, last_week=week).filter(pl.col(WEEK) == week)
        rows = series.join(rows, on=SERIES, how="left").with_columns(pl.lit(week).alias(WEEK))
        units = predict(model, rows)
        step_frame = series.with_columns(
            pl.lit(week).alias(WEEK), pl.Series(TARGET, units), pl.lit(step, dtype=pl.Int16).alias("horizon")
        )
        out.append(step_frame)
        history = pl.concat(
            [
                history,
                step_frame.join(price, on=SERIES, how="left")
                .with_columns((pl.col(TARGET) * pl.col("_price").fill_null(0.0)).alias("revenue"))
                .select(WEEK, *SERIES, TARGET, "revenue"),
            ]
        )
    return pl.concat(out).select(WEEK, *SERIES, "horizon", TARGET).sort(WEEK, *SERIES)


def _last_price(history: pl.DataFrame, series: pl.DataFrame) -> pl.DataFrame:
    """Average unit price of each series over its history (revenue of predicted weeks)."""
    return (
        history.join(series, on=SERIES, how="semi")
        .group_by(SERIES)
        .agg((pl.col("revenue").sum() / pl.col(TARGET).sum()).alias("_price"))
        .with_columns(pl.col("_price").fill_nan(None))
    )


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Sum of absolute errors over the sum of actuals (NaN when nothing sold)."""
    total = float(np.abs(actual).sum())
    return float(np.abs(actual - forecast).sum() / total) if total else float("nan")


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.abs(actual - forecast).mean()) if len(actual) else float("nan")


@dataclass(frozen=True)
class Fold:
    origin: date
    train_weeks: int
    train_rows: int
    wape_model: float
    wape_baseline: float
    mae_model: float
    mae_baseline: float


@dataclass
class Evaluation:
    """Per-fold and overall scores, and every scored forecast (``week``, series, ``fold``,
    ``actual``, ``model``, ``baseline``)."""

    folds: list[Fold]
    predictions: pl.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def beats_baseline(self) -> bool:
        return bool(self.metrics["wape_model"] < self.metrics["wape_baseline"])


def evaluate(
    weekly: pl.DataFrame,
    *,
    horizon: int = HORIZON,
    folds: int = FOLDS,
    seed: int = SEED,
    params: dict[str, Any] | None = None,
) -> Evaluation:
    """Rolling-origin evaluation of the model against the seasonal-naive baseline on ``weekly``."""
    weeks = sorted(weekly.get_column(WEEK).unique().to_list())
    if len(weeks) < SEASON + horizon * folds:
        raise ValueError(
            f"the evaluation needs {SEASON + horizon * folds} weeks of history"
            f" (a season of {SEASON} and {folds} folds of {horizon}); the data has {len(weeks)}"
        )
    features = build_features(weekly)
    actuals = features.select(WEEK, *SERIES, pl.col(TARGET).alias("actual"), "seasonal_naive")
    scored, fold_scores = [], []
    for k in range(folds):
        origin = weeks[len(weeks) - horizon * (folds - k)]
        last_train = origin - timedelta(weeks=1)
        train = features.filter(pl.col(WEEK) <= last_train)
        model = fit(train, seed=seed, params=params)
        forecast = recursive_forecast(model, weekly, last_train, horizon)
        joined = forecast.join(actuals, on=[WEEK, *SERIES], how="left").with_columns(
            pl.col("actual").fill_null(0.0),
            pl.col("seasonal_naive").fill_null(0.0).alias("baseline"),
            pl.col(TARGET).alias("model"),
            pl.lit(k + 1, dtype=pl.Int16).alias("fold"),
        )
        actual, model_units, baseline = (joined.get_column(c).to_numpy() for c in ("actual", "model", "baseline"))
        fold_scores.append(
            Fold(
                origin=origin,
                train_weeks=train.get_column(WEEK).n_unique(),
                train_rows=train.height,
                wape_model=wape(actual, model_units),
                wape_baseline=wape(actual, baseline),
                mae_model=mae(actual, model_units),
                mae_baseline=mae(actual, baseline),
            )
        )
        scored.append(joined.select(WEEK, *SERIES, "fold", "horizon", "actual", "model", "baseline"))
    predictions = pl.concat(scored)
    actual, model_units, baseline = (predictions.get_column(c).to_numpy() for c in ("actual", "model", "baseline"))
    metrics = {
        "wape_model": wape(actual, model_units),
        "wape_baseline": wape(actual, baseline),
        "mae_model": mae(actual, model_units),
        "mae_baseline": mae(actual, baseline),
    }
    return Evaluation(fold_scores, predictions, metrics)
