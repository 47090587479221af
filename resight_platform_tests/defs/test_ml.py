"""ML at the gold tier through the real pipeline: a long, thin history of one partner from landing
files to bronze, silver, gold, the weekly features, a model registered in MLflow and the forecast
in Postgres. One module fixture runs it all once (about two minutes on 2 cores)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import mlflow
import numpy as np
import polars as pl
import pytest

from resight_platform.access import load_model
from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import (
    DIMENSIONS_JOB,
    GOLD_FACTS_JOB,
    MEDALLION_JOB,
    ML_JOB,
    REGISTRY_JOB,
    SCAN_LANDING_JOB,
)
from resight_platform.defs.ml import BEATS_BASELINE, FEATURES_KEY, FORECAST_KEY, MODEL_KEY, ml_assets
from resight_platform.io.lake import read_table
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.ml import CHAMPION_ALIAS, MODEL_NAME
from resight_platform.ml.features import SERIES, active_series
from resight_platform.ml.model import HORIZON, predict
from resight_platform.ml.tracking import load_champion
from resight_platform.pipeline import run_pipeline
from resight_platform.resources import build_resources
from resight_platform.sample.history import generate_history, history_weeks
from resight_platform.settings import Settings
from resight_platform.sources.registry import load_registry
from resight_platform_tests.databases import temporary_database

pytestmark = pytest.mark.xdist_group("end_to_end")

PROVIDER = "the_pet_stop"
FIRST_DAY = date(2025, 1, 1)
LAST_DAY = date(2026, 7, 5)  # 78 weeks: a season, three folds of eight weeks and some to train on
HISTORY_WEEKS = math.ceil(((LAST_DAY - FIRST_DAY).days + 1) / 7)


@dataclass
class Trained:
    settings: Settings
    pg_url: str
    instance: dg.DagsterInstance
    defs: dg.Definitions


@pytest.fixture(scope="session")  # built once per worker process
def trained(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Trained]:
    home = tmp_path_factory.mktemp("resight-ml")
    settings = Settings.from_env({"RESIGHT_HOME": str(home), "RESIGHT_PARTITIONS_START": FIRST_DAY.isoformat()})
    generate_history(
        settings.landing_url,
        provider=PROVIDER,
        end=LAST_DAY,
        weeks=HISTORY_WEEKS,
        not_before=FIRST_DAY,
        seed=5,
        volume=0.2,
    )
    for pg_url in temporary_database(pg_server_url, "ml"):
        defs = build_definitions(settings, pg_url)
        with dg.DagsterInstance.ephemeral() as instance:
            # The marts read what the model reads and nothing reads them here: skipped.
            report = run_pipeline(
                defs,
                instance,
                landing=open_store(settings.landing_url),
                registry=load_registry(),
                jobs=(MEDALLION_JOB, DIMENSIONS_JOB, GOLD_FACTS_JOB, ML_JOB),
            )
            assert report.success
            assert {job for job, _, _ in report.runs} == {
                REGISTRY_JOB,
                SCAN_LANDING_JOB,
                MEDALLION_JOB,
                DIMENSIONS_JOB,
                GOLD_FACTS_JOB,
                ML_JOB,
            }
            yield Trained(settings, pg_url, instance, defs)


def _latest(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict[str, Any]:
    event = instance.get_latest_materialization_event(key)
    assert event is not None and event.asset_materialization is not None
    return {name: value.value for name, value in event.asset_materialization.metadata.items()}


def _check(instance: dg.DagsterInstance, key: dg.AssetKey, name: str) -> Any:
    record = instance.event_log_storage.get_latest_asset_check_execution_by_key([dg.AssetCheckKey(key, name)])
    return record[dg.AssetCheckKey(key, name)]


def test_the_model_beats_the_seasonal_naive_baseline_on_the_sample(trained: Trained) -> None:
    meta = _latest(trained.instance, MODEL_KEY)
    assert meta["wape_model"] < meta["wape_baseline"]
    assert meta["champion"] is True
    execution = _check(trained.instance, MODEL_KEY, BEATS_BASELINE)
    assert execution.status.value == "SUCCEEDED"
    evaluation = execution.event.dagster_event.event_specific_data
    assert evaluation.passed
    assert {"wape_model", "wape_baseline", "mae_model", "mae_baseline"} <= set(evaluation.metadata)
    assert meta["forecast_vs_actual"].startswith("![forecast vs actual](data:image/png;base64,")


def test_the_run_is_tracked_and_the_version_registered_as_champion(trained: Trained) -> None:
    client = mlflow.MlflowClient(tracking_uri=trained.settings.tracking_uri, registry_uri=trained.settings.tracking_uri)
    version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    meta = _latest(trained.instance, MODEL_KEY)
    assert int(version.version) == meta["model_version"]
    run = client.get_run(version.run_id)
    assert run.data.params["season"] == "52" and run.data.params["seed"] == "42"
    assert "lag_1" in run.data.params["features"].split(",")
    assert math.isclose(run.data.metrics["wape_model"], meta["wape_model"], rel_tol=1e-5)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"features.json", "data.json", "folds.json", "forecast_vs_actual.png"} <= artifacts
    # The local store keeps artifacts under RESIGHT_HOME, not in the working directory's ./mlruns.
    root = trained.settings.mlflow_dir / "artifacts"
    assert run.info.artifact_uri.startswith(root.as_uri())
    data = json.loads((Path(run.info.artifact_uri.removeprefix("file://")) / "data.json").read_text())
    assert data["features_asset"]["panel"] == [PROVIDER]
    # weekly files, dated on Sundays: the first covers the first complete week from FIRST_DAY
    first_monday, _ = history_weeks(LAST_DAY, HISTORY_WEEKS, FIRST_DAY)
    assert data["features_asset"]["sources"][PROVIDER]["first_date"] == (first_monday + timedelta(days=6)).isoformat()
    assert data["weeks"]["count"] >= 76


def test_the_champion_loads_in_one_line_and_answers_in_units(trained: Trained) -> None:
    features = read_table(open_store(trained.settings.lake_url), FEATURES_KEY.path).collect()
    rows = features.filter(pl.col("week") == pl.col("week").max())
    model = load_model(settings=trained.settings)
    estimator, version = load_champion(trained.settings.tracking_uri)
    assert version == _latest(trained.instance, MODEL_KEY)["model_version"]
    units = model.predict(rows.to_pandas())
    np.testing.assert_allclose(units, predict(estimator, rows), rtol=1e-12)
    actual = rows.get_column("units").sum()
    assert 0.5 * actual < units.sum() < 2 * actual  # units, not units ÷ scale


def test_the_forecast_covers_the_next_weeks_of_every_active_series_without_gaps(trained: Trained) -> None:
    features = read_table(open_store(trained.settings.lake_url), FEATURES_KEY.path).collect()
    last_week = features.get_column("week").max()
    assert isinstance(last_week, date)
    assert last_week == date(2026, 6, 29)  # the week of the last weekly file, dated Sunday 2026-07-05
    with connect(trained.pg_url) as conn:
        rows = conn.execute(
            "select week_start, category, species, region, horizon, units, model_version, trained_through"
            " from gold.ml_demand_forecast"
        ).fetchall()
    forecast = pl.DataFrame(
        rows,
        schema=["week_start", *SERIES, "horizon", "units", "model_version", "trained_through"],
        orient="row",
    )
    expected_weeks = [last_week + timedelta(weeks=h) for h in range(1, HORIZON + 1)]
    series = active_series(features.select("week", *SERIES, "units"), last_week)
    assert series.height > 10
    assert forecast.select(SERIES).unique().sort(SERIES).equals(series)
    per_series = forecast.group_by(SERIES).agg(pl.col("week_start").sort(), pl.col("horizon").sort())
    for weeks, horizons in per_series.select("week_start", "horizon").iter_rows():
        assert weeks == expected_weeks
        assert horizons == list(range(1, HORIZON + 1))
    assert forecast.height == series.height * HORIZON
    assert forecast.get_column("units").min() >= 0
    assert set(forecast.get_column("trained_through")) == {last_week}
    assert set(forecast.get_column("model_version")) == {_latest(trained.instance, MODEL_KEY)["model_version"]}
    # Also Parquet in the lake, for data scientists.
    lake = read_table(open_store(trained.settings.lake_url), FORECAST_KEY.path).collect()
    assert lake.height == forecast.height


def test_materialisations_carry_row_counts_and_previews(trained: Trained) -> None:
    for key in (FEATURES_KEY, FORECAST_KEY):
        meta = _latest(trained.instance, key)
        assert meta["dagster/row_count"] > 0
        assert meta["preview"].startswith("| ")
    assert _latest(trained.instance, FEATURES_KEY)["panel"] == [PROVIDER]
    for key in (FEATURES_KEY, FORECAST_KEY):
        assert _check(trained.instance, key, "matches_model").status.value == "SUCCEEDED"


def _perfectly_seasonal(weeks: int = 80) -> pl.DataFrame:
    """Weekly demand that repeats every 52 weeks exactly: the seasonal-naive forecast is perfect."""
    rows = []
    for c, category in enumerate(("food", "toys", "health")):
        for r, region in enumerate(("West", "South")):
            for w in range(weeks):
                units = float(30 + 10 * c + 5 * r + round(12 * math.sin(2 * math.pi * (w % 52) / 52 + c)))
                rows.append((date(2025, 1, 6) + timedelta(weeks=w), category, "dog", region, units, units * 9.99))
    return pl.DataFrame(rows, schema=["week", *SERIES, "units", "revenue"], orient="row")


def test_a_model_that_does_not_beat_the_baseline_is_refused_and_no_forecast_is_built(
    trained: Trained, tmp_path: Path
) -> None:
    from resight_platform.ml.features import build_features

    @dg.asset(key=FEATURES_KEY, io_manager_key="lake_io_manager")
    def seasonal_features() -> pl.DataFrame:
        return build_features(_perfectly_seasonal())

    _, model, forecast = ml_assets()
    # The same warehouse and MLflow store as the pipeline's run, whose champion must stay put.
    settings = Settings.from_env(
        {"RESIGHT_HOME": str(trained.settings.home), "RESIGHT_LAKE_URL": str(tmp_path / "lake")}
    )
    resources = build_resources(settings, trained.pg_url)
    client = mlflow.MlflowClient(tracking_uri=settings.tracking_uri, registry_uri=settings.tracking_uri)
    champion = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version
    versions = len(client.search_model_versions(f"name='{MODEL_NAME}'"))
    with connect(trained.pg_url) as conn:
        before = conn.execute("select count(*), max(model_version) from gold.ml_demand_forecast").fetchone()
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [seasonal_features, model, forecast], resources=resources, instance=instance, raise_on_error=False
        )
        evaluation = next(e for e in result.get_asset_check_evaluations() if e.check_name == BEATS_BASELINE)
        assert not evaluation.passed
        assert evaluation.metadata["wape_baseline"].value == 0.0
        assert evaluation.metadata["wape_model"].value > 0.0
        assert instance.get_latest_materialization_event(FORECAST_KEY) is None
        refused = _latest(instance, MODEL_KEY)
    assert refused["champion"] is False
    # Registered (a new version, tagged) but not champion; the forecast table is untouched.
    assert client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS).version == champion
    version = client.get_model_version(MODEL_NAME, str(refused["model_version"]))
    assert version.tags["beats_baseline"] == "false"
    # A failed blocking check is not retried: one training, one new version.
    assert len(client.search_model_versions(f"name='{MODEL_NAME}'")) == versions + 1
    with connect(trained.pg_url) as conn:
        after = conn.execute("select count(*), max(model_version) from gold.ml_demand_forecast").fetchone()
    assert after == before
