"""The registered form of the demand model: an MLflow pyfunc that answers in units.

The estimator predicts a series' week relative to the series' scale (see ``features``). The
registry holds it wrapped in :class:`DemandModel`, whose ``predict`` takes rows of
``gold/ml_demand_features`` (the :data:`~resight_platform.ml.features.FEATURES` columns and
``scale``) and returns units, so ``load_model().predict(rows)`` needs nothing else from this
package's API. This module imports MLflow: import it where a model is logged or loaded. The
estimator itself is an artifact of the model (MLflow's scikit-learn format,
saved with skops), which the platform's forecast unwraps (:func:`estimator_of`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pandas as pd
import polars as pl
import sklearn
from mlflow.models import infer_signature

from resight_platform.ml.features import FEATURES
from resight_platform.ml.model import predict

__all__ = ["INPUTS", "SKOPS_TRUSTED_TYPES", "DemandModel", "estimator_of", "log_demand_model"]

#: The columns ``DemandModel.predict`` reads: the features, then the series' scale.
INPUTS = [*FEATURES, "scale"]
#: What a fitted HistGradientBoostingRegressor holds besides plain sklearn estimators; skops (MLflow's
#: safe serialisation) refuses to load types it was not told to trust.
SKOPS_TRUSTED_TYPES = [
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]
_ESTIMATOR = "estimator"


class DemandModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc,name-defined]
    """Units (≥ 0) for each row: the estimator's relative prediction times the row's ``scale``."""

    estimator: Any = None

    def load_context(self, context: Any) -> None:
        self.estimator = mlflow.sklearn.load_model(context.artifacts[_ESTIMATOR])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> np.ndarray:
        missing = [name for name in INPUTS if name not in model_input.columns]
        if missing:
            raise ValueError(f"the demand model needs the columns {missing} (rows of gold/ml_demand_features)")
        rows = pl.from_pandas(model_input[INPUTS]).with_columns(pl.col(INPUTS).cast(pl.Float64))
        return predict(self.estimator, rows)


def log_demand_model(estimator: Any, example: pl.DataFrame, registered_model_name: str | None) -> Any:
    """Log ``estimator`` wrapped in :class:`DemandModel` as the active run's ``model`` (registered
    under ``registered_model_name`` when given); ``example``: a few feature rows with ``scale``.
    Returns MLflow's ``ModelInfo``."""
    sample = example.select(INPUTS).with_columns(pl.col(INPUTS).cast(pl.Float64)).to_pandas()
    units = predict(estimator, pl.from_pandas(sample))
    with tempfile.TemporaryDirectory() as tmp:
        saved = Path(tmp) / _ESTIMATOR
        mlflow.sklearn.save_model(
            estimator,
            str(saved),
            skops_trusted_types=SKOPS_TRUSTED_TYPES,
            pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
        )
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=DemandModel(),
            artifacts={_ESTIMATOR: str(saved)},
            registered_model_name=registered_model_name,
            signature=infer_signature(sample, units),
            input_example=sample.head(3),
            # Named, not inferred: inferring loads the model in a subprocess (seconds per run).
            pip_requirements=[
                f"mlflow=={mlflow.__version__}",
                f"scikit-learn=={sklearn.__version__}",
                f"polars=={pl.__version__}",
                f"pandas=={pd.__version__}",
                "resight_platform",
            ],
        )


def estimator_of(model: Any) -> Any:
    """The scikit-learn estimator inside a loaded pyfunc :class:`DemandModel`."""
    python_model = model.unwrap_python_model()
    if not isinstance(python_model, DemandModel):
        raise TypeError(f"not a ReSight demand model: {type(python_model).__name__}")
    return python_model.estimator
