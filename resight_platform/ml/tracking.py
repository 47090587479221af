"""MLflow: where runs go, what a training run logs, and the registry alias of the champion.

The tracking URI is ``Settings.tracking_uri`` (a SQLite store under ``RESIGHT_HOME/mlflow`` by
default, ``MLFLOW_TRACKING_URI`` for a server). For the local store the experiment is created
with its artifact location under ``RESIGHT_HOME/mlflow/artifacts``, so nothing lands in the
working directory's ``./mlruns``.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl

from resight_platform.ml import CHAMPION_ALIAS, MODEL_NAME
from resight_platform.redact import redact

__all__ = [
    "EXPERIMENT",
    "TrainingRun",
    "champion_uri",
    "experiment_id",
    "fold_records",
    "forecast_plot",
    "load_champion",
    "log_training",
    "png_markdown",
]

EXPERIMENT = "resight_demand_weekly"


_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _mlflow(tracking_uri: str) -> Any:
    """The ``mlflow`` module pointed at ``tracking_uri`` (tracking and registry).

    MLflow's setters also write ``MLFLOW_TRACKING_URI``/``MLFLOW_REGISTRY_URI`` into this
    process's environment; they are put back as they were, or every ``Settings.from_env()`` after
    (the next run in the same process, another home in the same test worker) would take this
    store for a configured tracking server.
    """
    import mlflow
    import mlflow.pyfunc

    before = {name: os.environ.get(name) for name in _URI_VARIABLES}
    try:
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    return mlflow


def experiment_id(tracking_uri: str, artifact_location: str | None, name: str = EXPERIMENT) -> str:
    """The experiment's id, creating it (with ``artifact_location`` when given) if missing."""
    mlflow = _mlflow(tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None
    if artifact_location:
        Path(artifact_location).mkdir(parents=True, exist_ok=True)
        location = Path(artifact_location).absolute().as_uri()
    return str(client.create_experiment(name, artifact_location=location))


@dataclass(frozen=True)
class TrainingRun:
    run_id: str
    version: int
    champion: bool
    model_uri: str


def log_training(
    *,
    tracking_uri: str,
    artifact_location: str | None,
    model: Any,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    fold_metrics: Sequence[Mapping[str, Any]],
    features: list[str],
    data: Mapping[str, Any],
    plot_png: bytes,
    example: pl.DataFrame,
    champion: bool,
) -> TrainingRun:
    """One MLflow run: parameters, overall and per-fold metrics, the feature list and the data it
    saw (JSON artifacts), the forecast-vs-actual plot, and the model (a pyfunc answering in units,
    :mod:`resight_platform.ml.pyfunc`; ``example``: feature rows with ``scale``), registered as a
    new version of :data:`MODEL_NAME`; with ``champion`` the version gets the
    :data:`CHAMPION_ALIAS` alias."""
    mlflow = _mlflow(tracking_uri)
    from resight_platform.ml.pyfunc import log_demand_model

    exp = experiment_id(tracking_uri, artifact_location)
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.log_params({k: v for k, v in params.items()})
        mlflow.log_param("features", ",".join(features))
        mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
        for fold in fold_metrics:
            step = int(fold["fold"])
            mlflow.log_metrics({f"fold_{k}": float(v) for k, v in fold.items() if isinstance(v, float)}, step=step)
        mlflow.log_dict({"features": features}, "features.json")
        mlflow.log_dict(dict(data), "data.json")
        mlflow.log_dict({"folds": [dict(f) for f in fold_metrics]}, "folds.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "forecast_vs_actual.png")
            Path(path).write_bytes(plot_png)
            mlflow.log_artifact(path)
        mlflow.set_tags({"beats_baseline": str(champion).lower(), "resight.model": MODEL_NAME})
        info = log_demand_model(model, example, MODEL_NAME)
        run_id = run.info.run_id
    version = int(info.registered_model_version)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    client.set_model_version_tag(MODEL_NAME, str(version), "beats_baseline", str(champion).lower())
    client.set_model_version_tag(MODEL_NAME, str(version), "predicts", "weekly units per series (≥ 0)")
    if champion:
        client.set_registered_model_alias(MODEL_NAME, CHAMPION_ALIAS, str(version))
    return TrainingRun(run_id, version, champion, f"models:/{MODEL_NAME}/{version}")


def champion_uri() -> str:
    return f"models:/{MODEL_NAME}@{CHAMPION_ALIAS}"


def load_champion(tracking_uri: str) -> tuple[Any, int]:
    """The champion's scikit-learn estimator (relative to scale, for ``ml.model``) and its registry
    version (``LookupError`` when there is none)."""
    mlflow = _mlflow(tracking_uri)
    from mlflow.exceptions import MlflowException

    from resight_platform.ml.pyfunc import estimator_of

    client = mlflow.MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION_ALIAS)
    except MlflowException as error:
        where = redact(tracking_uri)
        raise LookupError(f"no {champion_uri()} in {where}: train a model that beats the baseline") from error
    return estimator_of(mlflow.pyfunc.load_model(champion_uri())), int(version.version)


def forecast_plot(
    history: pl.DataFrame, scored: pl.DataFrame, *, size: tuple[float, float] = (9, 4), dpi: int = 100
) -> bytes:
    """PNG: total weekly units (actual) with the model's and the baseline's rolling-origin
    forecasts, summed over series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    actual = history.group_by("week").agg(pl.col("units").sum()).sort("week")
    folds = scored.group_by("fold", "week").agg(pl.col("model").sum(), pl.col("baseline").sum()).sort("fold", "week")
    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    ax.plot(
        actual.get_column("week").to_list(), actual.get_column("units").to_list(), color="black", lw=1.2, label="actual"
    )
    for i, fold in enumerate(folds.partition_by("fold", maintain_order=True)):
        weeks = fold.get_column("week").to_list()
        ax.plot(weeks, fold.get_column("model").to_list(), color="tab:blue", lw=2, label="model" if i == 0 else None)
        ax.plot(
            weeks,
            fold.get_column("baseline").to_list(),
            color="tab:orange",
            lw=1.5,
            ls="--",
            label="seasonal naive" if i == 0 else None,
        )
    ax.set_title("Weekly units, all series: rolling-origin forecasts vs actual")
    ax.set_ylabel("units")
    ax.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def png_markdown(png: bytes, alt: str = "chart") -> str:
    """Markdown that shows ``png`` inline (a data URI), for Dagster metadata."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"


def fold_records(folds: list[Any]) -> list[dict[str, Any]]:
    """Per-fold scores as plain dicts (dates as ISO strings), numbered from 1."""
    out = []
    for i, fold in enumerate(folds, start=1):
        record = asdict(fold)
        record["origin"] = record["origin"].isoformat()
        out.append({"fold": i, **record})
    return out
