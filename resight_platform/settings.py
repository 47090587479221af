"""Environment → frozen Settings, read once when definitions or the CLI start, never at import."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Settings"]

DEFAULT_PARTITIONS_START = "2025-01-01"


@dataclass(frozen=True)
class Settings:
    """Where everything lives. Local paths for the embedded default, URLs for production."""

    home: Path
    landing_url: str
    lake_url: str
    pg_url: str | None
    aws_endpoint_url: str | None
    partitions_start: str
    #: ``RESIGHT_REGISTRY_DIR``: a local directory, or a URL (``s3://bucket/prefix``) kept as text.
    registry_dir: Path | str | None
    #: ``MLFLOW_TRACKING_URI`` when set (an MLflow server); else a local store under ``home``.
    mlflow_tracking_uri: str | None = None
    #: The role that reads gold and marts (``RESIGHT_ANALYST_ROLE``) and its password
    #: (``RESIGHT_ANALYST_PASSWORD``; without one the role cannot log in): ``io/roles.py``.
    analyst_role: str = "analyst"
    analyst_password: str | None = field(default=None, repr=False)

    @property
    def dead_letter_url(self) -> str:
        return f"{self.lake_url.rstrip('/')}/dead_letter"

    @property
    def pg_data_dir(self) -> Path:
        return self.home / "pg"

    @property
    def mlflow_dir(self) -> Path:
        """The local MLflow store: its SQLite database and the runs' artifacts."""
        return self.home / "mlflow"

    @property
    def tracking_uri(self) -> str:
        """Where MLflow runs and registered models are tracked."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"

    @property
    def embedded(self) -> bool:
        return self.pg_url is None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("RESIGHT_HOME", ".resight")).expanduser().absolute()
        registry = env.get("RESIGHT_REGISTRY_DIR")
        return cls(
            home=home,
            landing_url=env.get("RESIGHT_LANDING_URL", str(home / "landing")),
            lake_url=env.get("RESIGHT_LAKE_URL", str(home / "lake")),
            pg_url=env.get("RESIGHT_PG_URL") or None,
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            partitions_start=env.get("RESIGHT_PARTITIONS_START", DEFAULT_PARTITIONS_START),
            registry_dir=(registry if "://" in registry else Path(registry)) if registry else None,
            mlflow_tracking_uri=env.get("MLFLOW_TRACKING_URI") or None,
            analyst_role=env.get("RESIGHT_ANALYST_ROLE") or "analyst",
            analyst_password=env.get("RESIGHT_ANALYST_PASSWORD") or None,
        )
