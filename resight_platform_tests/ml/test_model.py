"""The demand model: rolling-origin evaluation against seasonal naive, reproducibility, forecasts."""

from __future__ import annotations

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from resight_platform.ml.features import SERIES, TARGET, build_features
from resight_platform.ml.model import FOLDS, HORIZON, MIN_WEEKS, evaluate, fit, mae, predict, recursive_forecast, wape
from resight_platform_tests.ml.test_features import START, synthetic_weekly


def test_wape_and_mae() -> None:
    actual, forecast = np.array([10.0, 0.0, 30.0]), np.array([12.0, 1.0, 27.0])
    assert wape(actual, forecast) == pytest.approx(6 / 40)
    assert mae(actual, forecast) == pytest.approx(2.0)
    assert math.isnan(wape(np.zeros(2), np.ones(2)))


def test_evaluation_scores_every_fold_and_beats_seasonal_naive_on_noisy_seasonal_demand() -> None:
    weekly = synthetic_weekly(weeks=90)
    evaluation = evaluate(weekly)
    assert len(evaluation.folds) == FOLDS
    weeks = sorted(weekly.get_column("week").unique())
    assert [f.origin for f in evaluation.folds] == [weeks[90 - HORIZON * (FOLDS - k)] for k in range(FOLDS)]
    assert evaluation.predictions.height == FOLDS * HORIZON * 6
    assert set(evaluation.predictions.get_column("horizon")) == set(range(1, HORIZON + 1))
    assert evaluation.metrics["wape_model"] < evaluation.metrics["wape_baseline"]
    assert evaluation.beats_baseline


def test_same_data_and_seed_give_identical_metrics_and_predictions() -> None:
    weekly = synthetic_weekly(weeks=80, seed=3)
    first, second = evaluate(weekly, seed=7), evaluate(weekly, seed=7)
    assert first.metrics == second.metrics
    assert first.predictions.equals(second.predictions)
    features = build_features(weekly)
    assert np.array_equal(predict(fit(features, seed=7), features), predict(fit(features, seed=7), features))


def test_seasonal_naive_wins_on_demand_that_repeats_every_year() -> None:
    rows = []
    for c, category in enumerate(("food", "toys")):
        for w in range(80):
            units = float(40 + 10 * c + round(15 * math.sin(2 * math.pi * (w % 52) / 52)))
            rows.append((START + timedelta(weeks=w), category, "dog", "West", units, units * 10))
    evaluation = evaluate(pl.DataFrame(rows, schema=["week", *SERIES, TARGET, "revenue"], orient="row"))
    assert evaluation.metrics["wape_baseline"] == 0.0
    assert not evaluation.beats_baseline


def test_too_short_a_history_is_refused_with_the_weeks_it_needs() -> None:
    with pytest.raises(ValueError, match=f"needs {MIN_WEEKS} weeks"):
        evaluate(synthetic_weekly(weeks=MIN_WEEKS - 1))


def test_recursive_forecast_gives_the_horizon_for_every_active_series() -> None:
    weekly = synthetic_weekly(weeks=70)
    last = date.fromisoformat("2026-04-27")
    assert last == START + timedelta(weeks=68)
    model = fit(build_features(weekly.filter(pl.col("week") <= last)))
    forecast = recursive_forecast(model, weekly, last, horizon=HORIZON)
    assert forecast.height == 6 * HORIZON
    assert sorted(forecast.get_column("week").unique()) == [last + timedelta(weeks=h) for h in range(1, HORIZON + 1)]
    assert forecast.filter(pl.col("horizon") == 1).get_column("week").unique().to_list() == [last + timedelta(weeks=1)]
    assert forecast.get_column(TARGET).min() >= 0
    # A series with no sales in the last year is not forecast.
    stopped = weekly.filter(~((pl.col("category") == "food") & (pl.col("region") == "West") & (pl.col("week") > START)))
    assert recursive_forecast(model, stopped, last, horizon=2).height == 5 * 2
