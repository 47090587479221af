"""ML at the gold tier: weekly demand features → a model tracked and registered in MLflow → the
next weeks' forecast in Postgres.

- ``gold/ml_demand_features`` (lake Parquet): weekly demand of the constant panel per
  category × species × region with its features (``resight_platform.ml.features``).
- ``gold/ml_demand_model``: rolling-origin evaluation against the seasonal-naive baseline, a final
  fit on every week, one MLflow run (parameters, metrics, feature list, the data it saw, a plot of
  forecast vs actual) and a new version of the registered model; the version that beats the
  baseline becomes the ``champion``. The blocking check ``beats_seasonal_naive`` fails otherwise,
  so the forecast of the same run is not built.
- ``gold/ml_demand_forecast`` (Postgres ``gold.ml_demand_forecast``, replaced): the champion's
  next weeks for every active series.
"""

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import dagster as dg
import polars as pl

from resight_platform.defs.checks import ModelCheck, model_check_spec
from resight_platform.defs.keys import FACT_SALES
from resight_platform.defs.metadata import (
    OWNERS,
    markdown_preview,
    table_schema_from_model,
    table_schema_from_polars,
)
from resight_platform.defs.policies import RETRY
from resight_platform.defs.spark_facts import facts_on_spark
from resight_platform.engines import from_polars
from resight_platform.io.lake import read_all
from resight_platform.ml import CHAMPION_ALIAS, MODEL_NAME
from resight_platform.ml.features import FEATURES, SERIES, TARGET, build_features, weekly_demand
from resight_platform.ml.model import FOLDS, HORIZON, MIN_WEEKS, PARAMS, SEASON, SEED, evaluate, fit, recursive_forecast
from resight_platform.ml.tracking import fold_records, forecast_plot, load_champion, log_training, png_markdown
from resight_platform.resources import EngineResource, MlflowResource, StoreResource, engine_for
from resight_platform.schemas.ml import DemandFeatures, DemandForecast

__all__ = ["BEATS_BASELINE", "FEATURES_KEY", "FORECAST_KEY", "ML_KEYS", "MODEL_KEY", "ml_assets"]

FEATURES_KEY = dg.AssetKey(["gold", "ml_demand_features"])
MODEL_KEY = dg.AssetKey(["gold", "ml_demand_model"])
FORECAST_KEY = dg.AssetKey(["gold", "ml_demand_forecast"])
ML_KEYS = [FEATURES_KEY, MODEL_KEY, FORECAST_KEY]
BEATS_BASELINE = "beats_seasonal_naive"
#: The model's table is its evaluation: one row per rolling-origin fold (in its metadata and MLflow).
_FOLD_COLUMNS = {
    "fold": pl.Int64(),
    "origin": pl.Utf8(),
    "train_weeks": pl.Int64(),
    "train_rows": pl.Int64(),
    "wape_model": pl.Float64(),
    "wape_baseline": pl.Float64(),
    "mae_model": pl.Float64(),
    "mae_baseline": pl.Float64(),
}
#: The layer's group, as every asset's (the ML tables are gold tables).
GROUP = "gold"


def _has_columns(fact: Any) -> bool:
    """Whether ``fact`` has the facts' columns (the lake gives a frame with none when no partition
    exists; Spark facts are only read when they do)."""
    return not isinstance(fact, pl.LazyFrame) or bool(fact.collect_schema().names())


def _weekly(features: pl.DataFrame) -> pl.DataFrame:
    return features.select("week", *SERIES, TARGET, "revenue")


@dg.asset(
    key=FEATURES_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"polars", "parquet"},
    ins={
        "dim_product": dg.AssetIn(key=["gold", "dim_product"]),
        "dim_provider": dg.AssetIn(key=["gold", "dim_provider"]),
    },
    # Read whole from the lake, not as an input: see io.lake.read_all.
    deps=[FACT_SALES],
    io_manager_key="lake_io_manager",
    retry_policy=RETRY,
    description=(
        "One row per complete week × category × species × region of the constant panel: units, revenue and the"
        " demand model's features, each from earlier weeks only."
    ),
    metadata={"dagster/column_schema": table_schema_from_model(DemandFeatures)},
    check_specs=[model_check_spec(FEATURES_KEY.path, DemandFeatures, blocking=True)],
)
def ml_demand_features(
    context: dg.AssetExecutionContext,
    lake: StoreResource,
    engine: EngineResource,
    dim_product: pl.LazyFrame,
    dim_provider: pl.LazyFrame,
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    # On a Spark run the facts are read into Spark and both steps run there (the dimensions and
    # the small weekly frame are moved to the session through Arrow); the features come back as
    # the same Polars frame the Polars path builds.
    on_engine = engine_for(context)
    fact: Any = facts_on_spark(context, engine, lake)
    if fact is None:
        fact = read_all(lake.store(), FACT_SALES.path)
    if not _has_columns(fact):
        demand_frame = build_features(pl.DataFrame())
        demand = None
    else:
        demand = weekly_demand(fact, dim_product, dim_provider)
        demand_frame = build_features(from_polars(fact, demand.frame))
    check = ModelCheck(FEATURES_KEY.path, DemandFeatures)
    check.frame(demand_frame)
    weeks = demand_frame.get_column("week").n_unique()
    if demand is not None and demand.excluded:
        context.log.info(f"outside the constant panel (too few weeks reported): {', '.join(demand.excluded)}")
    metadata: dict[str, Any] = {
        "dagster/row_count": demand_frame.height,
        "preview": markdown_preview(
            demand_frame.sort("week", TARGET, descending=True).select(
                "week", *SERIES, TARGET, "scale", "lag_1", "season_ratio"
            )
        ),
        "weeks": weeks,
        "series": demand_frame.select(SERIES).n_unique(),
        "features": dg.MetadataValue.json(FEATURES),
        "engine": on_engine,
    }
    if demand is not None and demand.first_week is not None:
        metadata |= {
            "first_week": demand.first_week.isoformat(),
            "last_week": str(demand.last_week),
            "sale_dates": f"{demand.first_date} .. {demand.last_date}",
            "panel": dg.MetadataValue.json(demand.panel),
            "outside_panel": len(demand.excluded),
            "sources": dg.MetadataValue.json(demand.sources),
        }
    yield dg.Output(demand_frame, metadata=metadata)
    yield check.result()


@dg.asset(
    key=MODEL_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"scikitlearn", "mlflow"},
    ins={"features": dg.AssetIn(key=FEATURES_KEY)},
    retry_policy=RETRY,
    description=(
        f"The weekly demand model: trained, evaluated on {FOLDS} rolling origins × {HORIZON} weeks against the"
        f" seasonal-naive baseline, logged to MLflow and registered as {MODEL_NAME} (alias {CHAMPION_ALIAS} when it"
        " beats the baseline). One row of its metadata table per fold."
    ),
    metadata={"dagster/column_schema": table_schema_from_polars(_FOLD_COLUMNS)},
    check_specs=[
        dg.AssetCheckSpec(
            BEATS_BASELINE,
            asset=MODEL_KEY,
            blocking=True,
            description=(
                "The model's WAPE over the rolling-origin folds is below the seasonal-naive baseline's (MAE reported"
                " too); a model that does not beat it is registered but not made champion, and no forecast is built."
            ),
        )
    ],
)
def ml_demand_model(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, features: pl.LazyFrame
) -> dg.MaterializeResult:
    frame = features.collect()
    weeks = frame.get_column("week").n_unique() if frame.height else 0
    if weeks < MIN_WEEKS:
        raise dg.Failure(
            description=(
                f"{weeks} weeks of demand history; the model needs {MIN_WEEKS} (a season of {SEASON} weeks before the"
                f" first of {FOLDS} evaluation folds of {HORIZON} weeks). Load more history (resight demo does)."
            ),
            allow_retries=False,
        )
    weekly = _weekly(frame)
    evaluation = evaluate(weekly, seed=SEED)
    model = fit(frame, seed=SEED)
    folds = fold_records(evaluation.folds)
    plot = forecast_plot(weekly, evaluation.predictions)
    small = forecast_plot(weekly, evaluation.predictions, size=(6, 2.6), dpi=60)
    data = {
        "weeks": {
            "first": str(frame.get_column("week").min()),
            "last": str(frame.get_column("week").max()),
            "count": weeks,
        },
        "series": frame.select(SERIES).n_unique(),
        "rows": frame.height,
        "features_asset": _upstream(context),
    }
    champion = evaluation.beats_baseline
    run = log_training(
        tracking_uri=mlflow.tracking_uri,
        artifact_location=mlflow.artifact_location,
        model=model,
        params={**PARAMS, "season": SEASON, "horizon": HORIZON, "folds": FOLDS, "seed": SEED, "weeks": weeks},
        metrics=evaluation.metrics,
        fold_metrics=folds,
        features=FEATURES,
        data=data,
        plot_png=plot,
        example=frame.select(*FEATURES, "scale").head(50),
        champion=champion,
    )
    m = evaluation.metrics
    context.log.info(
        f"model WAPE {m['wape_model']:.4f} vs seasonal naive {m['wape_baseline']:.4f}; MAE {m['mae_model']:.3f} vs"
        f" {m['mae_baseline']:.3f}; registered {MODEL_NAME} v{run.version}"
        + (f" as {CHAMPION_ALIAS}" if champion else "")
    )
    scores = {k: dg.MetadataValue.float(round(v, 6)) for k, v in m.items()}
    return dg.MaterializeResult(
        metadata={
            **scores,
            "dagster/row_count": frame.height,
            "model_version": run.version,
            "champion": champion,
            "mlflow_run_id": run.run_id,
            "model_uri": run.model_uri,
            "folds": markdown_preview(pl.DataFrame(folds), rows=FOLDS),
            "forecast_vs_actual": dg.MetadataValue.md(png_markdown(small, "forecast vs actual")),
        },
        check_results=[
            dg.AssetCheckResult(
                check_name=BEATS_BASELINE,
                asset_key=MODEL_KEY,
                passed=champion,
                severity=dg.AssetCheckSeverity.ERROR,
                metadata={**scores, "model_version": run.version},
                description=None
                if champion
                else f"WAPE {m['wape_model']:.4f} does not beat the seasonal-naive baseline's {m['wape_baseline']:.4f}",
            )
        ],
    )


def _upstream(context: dg.AssetExecutionContext) -> dict[str, object]:
    """The features materialisation this run read and the fact partitions behind it."""
    event = context.instance.get_latest_materialization_event(FEATURES_KEY)
    if event is None or event.asset_materialization is None:
        return {}
    metadata = event.asset_materialization.metadata
    out: dict[str, object] = {"run_id": event.run_id}
    for name in ("sale_dates", "first_week", "last_week", "panel", "sources"):
        if name in metadata:
            out[name] = metadata[name].value
    return out


@dg.asset(
    key=FORECAST_KEY,
    group_name=GROUP,
    owners=OWNERS,
    kinds={"polars", "postgres", "parquet"},
    ins={"features": dg.AssetIn(key=FEATURES_KEY)},
    deps=[MODEL_KEY],
    io_manager_key="warehouse_io_manager",
    retry_policy=RETRY,
    description=f"One row per week of the next {HORIZON} × category × species × region: the champion model's units.",
    metadata={"pg_mode": "replace", "dagster/column_schema": table_schema_from_model(DemandForecast)},
    check_specs=[model_check_spec(FORECAST_KEY.path, DemandForecast, blocking=False)],
)
def ml_demand_forecast(
    context: dg.AssetExecutionContext, mlflow: MlflowResource, features: pl.LazyFrame
) -> Iterator[dg.Output[pl.DataFrame] | dg.AssetCheckResult]:
    weekly = _weekly(features.collect())
    last_week = weekly.get_column("week").max()
    if not isinstance(last_week, date):
        raise dg.Failure(description="no weekly demand to forecast from")
    model, version = load_champion(mlflow.tracking_uri)
    forecast = (
        recursive_forecast(model, weekly, last_week, HORIZON)
        .rename({"week": "week_start"})
        .with_columns(
            pl.lit(version, dtype=pl.Int32).alias("model_version"),
            pl.lit(last_week, dtype=pl.Date).alias("trained_through"),
        )
        .select("week_start", *SERIES, "horizon", TARGET, "model_version", "trained_through")
    )
    check = ModelCheck(FORECAST_KEY.path, DemandForecast)
    check.frame(forecast)
    context.log.info(
        f"{forecast.height} rows: {HORIZON} weeks from {last_week + timedelta(weeks=1)} for"
        f" {forecast.select(SERIES).n_unique()} series, {MODEL_NAME} v{version}"
    )
    yield dg.Output(
        forecast,
        metadata={
            "dagster/row_count": forecast.height,
            "preview": markdown_preview(forecast.sort(TARGET, descending=True)),
            "model_version": version,
            "series": forecast.select(SERIES).n_unique(),
            "weeks": f"{last_week + timedelta(weeks=1)} .. {last_week + timedelta(weeks=HORIZON)}",
        },
    )
    yield check.result()


def ml_assets() -> list[dg.AssetsDefinition]:
    return [ml_demand_features, ml_demand_model, ml_demand_forecast]
