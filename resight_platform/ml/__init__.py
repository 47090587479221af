"""Weekly demand forecasting at the gold tier: features, model, forecast and MLflow tracking.

Pure logic on dataframes (no Dagster); the assets live in ``resight_platform.defs.ml``.
"""

MODEL_NAME = "resight_demand_weekly"
"""Name of the demand model in the MLflow model registry."""

CHAMPION_ALIAS = "champion"
"""Registry alias of the version that beat the seasonal-naive baseline; the forecast uses it."""

__all__ = ["CHAMPION_ALIAS", "MODEL_NAME"]
