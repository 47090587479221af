"""MLflow's tracking store as the platform uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from resight_platform.ml.tracking import experiment_id
from resight_platform.settings import Settings


def test_pointing_mlflow_at_a_store_leaves_the_environment_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MLflow's setters write MLFLOW_TRACKING_URI into the process's environment; left there, the
    next Settings in the process (another run, another home) took this store for a server."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    first = experiment_id(uri, str(tmp_path / "artifacts"))
    assert (tmp_path / "mlflow.db").exists()
    assert experiment_id(uri, str(tmp_path / "artifacts")) == first  # found, not made again
    assert Settings.from_env().mlflow_tracking_uri is None

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    experiment_id(f"sqlite:///{tmp_path / 'other.db'}", None)
    assert Settings.from_env().mlflow_tracking_uri == "http://mlflow.internal:5000"
