"""The Dagster instance `resight dev`, `resight daemon` and the demo run on (the repository's
``dagster.yaml``, as ``cli.instance_env`` sets it up): storage on Postgres, run monitoring so a
killed run does not stay STARTED, and retries for runs whose worker crashed."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import pytest

from resight_platform.cli import instance_env
from resight_platform.io.postgres import ensure_database, sqlalchemy_url
from resight_platform.settings import Settings


def test_the_instance_monitors_runs_and_retries_crashed_ones(
    tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dagster_db = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster_db)})
    env = instance_env(settings, fresh_pg_url)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 180
        assert instance.run_monitoring_cancel_timeout_seconds == 180
        assert instance.run_monitoring_max_runtime_seconds == 6 * 3600
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the default launcher cannot resume
        assert instance.run_monitoring_poll_interval_seconds == 60
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_the_instance_yaml_is_package_data_that_the_repository_links_to(tmp_path: Path) -> None:
    """`resight run`, `demo`, `dev` and `daemon` work from an installed wheel (the image): the
    instance file is read from the package, and the repository's copy is the same file."""
    from importlib import resources

    import resight_platform
    from resight_platform.cli import INSTANCE_YAML

    packaged = resources.files("resight_platform") / INSTANCE_YAML
    root = Path(resight_platform.__file__).resolve().parent.parent / "dagster.yaml"
    assert root.is_symlink() and root.resolve() == Path(str(packaged)).resolve()
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_DAGSTER_PG_URL": "postgresql+psycopg2://x/y"})
    env = instance_env(settings, "postgresql://unused/warehouse")
    assert (Path(env["DAGSTER_HOME"]) / "dagster.yaml").read_bytes() == packaged.read_bytes()
