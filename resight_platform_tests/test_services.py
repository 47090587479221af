"""Which service is down, from the real errors of real clients pointed at a port nobody listens on:
psycopg 3 (the warehouse), SQLAlchemy with psycopg 2 (Dagster's storage) and boto3 (S3)."""

from __future__ import annotations

import socket
from pathlib import Path

import boto3
import psycopg
import pytest
import sqlalchemy
from botocore.config import Config

from resight_platform.services import service_down
from resight_platform.settings import Settings

SECRET = "Pa55-never-printed"


@pytest.fixture(scope="module")
def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _settings(tmp_path: Path, port: int) -> Settings:
    return Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_PG_URL": f"postgresql://resight:{SECRET}@127.0.0.1:{port}/resight",
            "RESIGHT_DAGSTER_PG_URL": f"postgresql+psycopg2://dagster:{SECRET}@127.0.0.1:{port}/dagster",
            "AWS_ENDPOINT_URL": f"http://key:{SECRET}@127.0.0.1:{port}",
        }
    )


def test_a_refused_warehouse_connection_names_the_warehouse(tmp_path: Path, closed_port: int) -> None:
    settings = _settings(tmp_path, closed_port)
    assert settings.pg_url is not None
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(settings.pg_url, connect_timeout=5)
    down = service_down(RuntimeError("wrapped"), settings)
    assert down is None  # not about a service
    try:
        raise RuntimeError("a step failed") from caught.value
    except RuntimeError as wrapped:
        down = service_down(wrapped, settings)
    assert down is not None
    assert down.service.startswith("the warehouse")
    assert down.where == f"postgresql://resight:***@127.0.0.1:{closed_port}/resight"
    assert "refused" in down.reason.lower() and "\n" not in down.sentence()
    assert SECRET not in down.sentence()


def test_a_refused_dagster_storage_connection_names_dagster_storage(tmp_path: Path, closed_port: int) -> None:
    settings = _settings(tmp_path, closed_port)
    assert settings.dagster_pg_url is not None
    engine = sqlalchemy.create_engine(settings.dagster_pg_url, connect_args={"connect_timeout": 5})
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
        engine.connect()
    down = service_down(caught.value, settings)
    assert down is not None and down.service.startswith("Dagster's instance storage")
    assert down.where == f"postgresql+psycopg2://dagster:***@127.0.0.1:{closed_port}/dagster"
    assert SECRET not in down.sentence() and "\n" not in down.sentence()


def test_an_unreachable_s3_endpoint_names_the_object_store(
    tmp_path: Path, closed_port: int, s3_credentials: None
) -> None:
    settings = _settings(tmp_path, closed_port)
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{closed_port}",
        config=Config(retries={"max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(Exception) as caught:
        client.list_objects_v2(Bucket="b")
    down = service_down(caught.value, settings)
    assert down is not None and down.service.startswith("the object store")
    assert down.where == f"http://key:***@127.0.0.1:{closed_port}"
    assert SECRET not in down.sentence()


def test_other_errors_are_not_a_service_down(tmp_path: Path) -> None:
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path)})
    assert service_down(ValueError("bad input"), settings) is None
    assert service_down(psycopg.errors.UndefinedTable("no such table"), settings) is None


def test_dagster_storage_on_the_warehouses_server_names_the_warehouses_server(tmp_path: Path, closed_port: int) -> None:
    """The embedded default: Dagster's storage is the `dagster` database of the warehouse's server,
    so losing it is losing the warehouse's server."""
    settings = Settings.from_env(
        {"RESIGHT_HOME": str(tmp_path), "RESIGHT_PG_URL": f"postgresql://r:{SECRET}@127.0.0.1:{closed_port}/resight"}
    )
    engine = sqlalchemy.create_engine(f"postgresql+psycopg2://r@127.0.0.1:{closed_port}/dagster")
    with pytest.raises(sqlalchemy.exc.OperationalError) as caught:
        engine.connect()
    down = service_down(caught.value, settings)
    assert down is not None
    assert down.service == (
        "the warehouse's Postgres server (RESIGHT_PG_URL; Dagster's storage is its `dagster` database)"
    )
    assert down.where == f"postgresql://r:***@127.0.0.1:{closed_port}/resight"
    embedded = service_down(caught.value, Settings.from_env({"RESIGHT_HOME": str(tmp_path)}))
    assert embedded is not None and embedded.where == f"the embedded server in {tmp_path / 'pg'}"
