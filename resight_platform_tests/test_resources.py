"""Resources: the registry resource reads the whole registry (mapping tables included) from a local
directory or from S3 (the moto server)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resight_platform.io.storage import open_store
from resight_platform.resources import (
    ENGINE_TAG,
    EngineResource,
    RegistryResource,
    build_resources,
    engine_for,
    engine_resource,
    load_registry_at,
)
from resight_platform.settings import Settings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, RegistryError, load_registry
from resight_platform_tests.conftest import SPARK_TEST_CONF

REPO = Path(__file__).resolve().parents[1]


def upload_registry(url: str, endpoint: str) -> None:
    store = open_store(url, endpoint)
    for path in sorted(DEFAULT_REGISTRY_DIR.rglob("*")):
        if path.is_file():
            store.write_bytes(path.relative_to(DEFAULT_REGISTRY_DIR).as_posix(), path.read_bytes())


def test_registry_from_s3_is_the_same_as_from_a_directory(s3_bucket_url: str, s3_endpoint: str) -> None:
    url = f"{s3_bucket_url}/registry"
    upload_registry(url, s3_endpoint)
    assert load_registry_at(url, s3_endpoint) == load_registry()
    resource = RegistryResource(registry_dir=url, endpoint_url=s3_endpoint)
    assert resource.load() == load_registry()
    assert resource.mappings() == load_registry().mappings


def test_a_bad_registry_on_s3_names_file_row_and_reason(s3_bucket_url: str, s3_endpoint: str) -> None:
    url = f"{s3_bucket_url}/broken"
    upload_registry(url, s3_endpoint)
    store = open_store(url, s3_endpoint)
    store.write_bytes("value_maps.csv", b"provider,feed,map,alias,value,match\npawmart,,status,r[0-9,returned,regex\n")
    store.delete("mappings/units.csv")
    with pytest.raises(RegistryError) as caught:
        load_registry_at(url, s3_endpoint)
    found = {(i.file, i.row, i.field) for i in caught.value.issues}
    assert found == {("value_maps.csv", 2, "alias"), ("mappings/units.csv", None, "-")}
    assert "bad regex 'r[0-9'" in str(caught.value)


def test_a_url_needs_a_reader() -> None:
    with pytest.raises(ValueError, match="pass a reader"):
        load_registry("s3://bucket/registry")


def test_settings_keep_a_registry_url_as_text() -> None:
    assert Settings.from_env({"RESIGHT_REGISTRY_DIR": "s3://bucket/registry"}).registry_dir == "s3://bucket/registry"
    assert Settings.from_env({"RESIGHT_REGISTRY_DIR": "/srv/registry"}).registry_dir == Path("/srv/registry")


def test_registry_resource_gives_the_registrys_mappings_not_the_packages(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    with (directory / "mappings" / "status.csv").open("a", encoding="utf-8") as handle:
        handle.write("sold,completed\n")
    resource = RegistryResource(registry_dir=str(directory))
    assert resource.mappings().status["sold"] == "completed"
    assert resource.load().mappings is resource.mappings()
    assert "sold" not in RegistryResource().mappings().status


def test_registry_resource_lists_the_registry_at_most_once_per_recheck_interval(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    patient = RegistryResource(registry_dir=str(directory), recheck_seconds=3600)
    before = patient.load()
    with (directory / "value_maps.csv").open("w", encoding="utf-8") as handle:
        handle.write("provider,feed,map,alias,value\npawmart,,status,SOLD,completed\n")
    assert patient.load() is before, "within the interval the files are not listed again"
    eager = RegistryResource(registry_dir=str(directory), recheck_seconds=0)
    assert eager.load() is not before
    assert Settings.from_env({"RESIGHT_REGISTRY_RECHECK_SECONDS": "2.5"}).registry_recheck_seconds == 2.5


def test_registry_resource_sees_a_registry_change_without_a_restart(tmp_path: Path) -> None:
    directory = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    resource = RegistryResource(registry_dir=str(directory), recheck_seconds=0)
    before = resource.load()
    assert resource.load() is before, "unchanged: the loaded registry is reused"
    with (directory / "value_maps.csv").open("w", encoding="utf-8") as handle:
        handle.write("provider,feed,map,alias,value\npawmart,,status,SOLD,completed\n")
    after = resource.load()
    assert after is not before
    assert after.value_maps.resolve("status", "pawmart", "sales", "sold") is not None


def test_the_warehouse_url_from_the_environment_is_given_to_dagster_by_name(
    tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("RESIGHT_PG_URL", fresh_pg_url)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:s3cret@127.0.0.1:9/")
    resources = build_resources(Settings.from_env())
    for name in ("warehouse", "warehouse_io_manager"):
        assert isinstance(resources[name].pg_url, dg.EnvVar)
        assert resources[name].pg_url.env_var_name == "RESIGHT_PG_URL"
    # Where each store's request counts are flushed (io/requests.py), by name too; and for what.
    components = {"landing": "bronze", "dead_letter": "dead_letter", "lake": "lake", "lake_io_manager": "lake"}
    for name, component in {**components, "warehouse_io_manager": "lake"}.items():
        assert isinstance(resources[name].requests_pg_url, dg.EnvVar), name
        assert resources[name].requests_pg_url.env_var_name == "RESIGHT_PG_URL"
        assert resources[name].component == component
    assert resources["mlflow"].tracking_uri.env_var_name == "MLFLOW_TRACKING_URI"
    with dg.build_resources({"warehouse": resources["warehouse"]}) as built, built.warehouse.connect() as conn:
        assert conn.execute("select 1").fetchone() == (1,)  # resolved where it is used


def test_a_url_given_by_a_mapping_or_a_caller_is_passed_as_it_is(tmp_path: Path, fresh_pg_url: str) -> None:
    resources = build_resources(Settings.from_env({"RESIGHT_HOME": str(tmp_path)}), fresh_pg_url)
    assert resources["warehouse"].pg_url == fresh_pg_url and not isinstance(resources["warehouse"].pg_url, dg.EnvVar)


# --- the engine resource ------------------------------------------------------------------------


def test_the_engine_resource_follows_the_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_ENGINE": "spark",
            "RESIGHT_SPARK_MASTER": "local[3]",
            "RESIGHT_SPARK_CONF": "spark.executor.memory=8g",
        }
    )
    resource = engine_resource(settings)
    assert (resource.engine, resource.spark_master, resource.spark_remote) == ("spark", "local[3]", None)
    conf = resource.spark_config()
    assert conf["spark.master"] == "local[3]" and conf["spark.executor.memory"] == "8g"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    # A Connect URL from this process's environment is handed to Dagster by name (it may hold a token).
    url = "sc://connect.internal:443/;token=s3cret"
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("RESIGHT_SPARK_REMOTE", url)
    remote = engine_resource(Settings.from_env()).spark_remote
    assert isinstance(remote, dg.EnvVar) and remote.env_var_name == "RESIGHT_SPARK_REMOTE"
    given = engine_resource(Settings.from_env({"RESIGHT_SPARK_REMOTE": url}))
    # A lake on S3: the s3a settings a cluster reads it with, under the deployment's own.
    on_s3 = engine_resource(
        Settings.from_env(
            {
                "RESIGHT_LAKE_URL": "s3://lake-bucket/lake",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
                "RESIGHT_SPARK_CONF": "spark.hadoop.fs.s3a.path.style.access=false",
            }
        )
    ).spark_config()
    assert on_s3["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert on_s3["spark.hadoop.fs.s3a.path.style.access"] == "false"
    assert given.spark_remote == url and given.spark_config()["spark.remote"] == url
    assert "spark.master" not in given.spark_config()


def test_the_run_tag_chooses_the_engine_over_the_resource() -> None:
    resource = EngineResource(engine="polars")
    assert resource.engine_of_run({}) == "polars"
    assert resource.engine_of_run({ENGINE_TAG: "spark"}) == "spark"
    assert EngineResource(engine="spark").engine_of_run({ENGINE_TAG: "polars"}) == "polars"
    with pytest.raises(ValueError, match="resight/engine='duckdb' is not an engine"):
        resource.engine_of_run({ENGINE_TAG: "duckdb"})
    with pytest.raises(ValueError, match="'duckdb' is not an engine; engines are polars, spark"):
        EngineResource(engine="duckdb")


def test_an_asset_without_the_engine_resource_is_told_to_take_it() -> None:
    @dg.asset
    def no_engine(context) -> None:  # type: ignore[no-untyped-def]
        engine_for(context)

    with pytest.raises(TypeError, match="no_engine has no engine resource: add a parameter `engine: EngineResource`"):
        dg.materialize([no_engine], resources={"engine": EngineResource()}, tags={ENGINE_TAG: "spark"})


def _engine_asset() -> dg.AssetsDefinition:
    @dg.asset
    def tiny(context, engine: EngineResource) -> dg.MaterializeResult:  # type: ignore[no-untyped-def]
        chosen = engine_for(context)
        rows = engine.spark_session.range(7).count() if chosen == "spark" else 7
        return dg.MaterializeResult(metadata={"engine": chosen, "rows": rows, "spark_started": engine.spark_started})

    return tiny


def test_a_polars_run_imports_no_pyspark_and_starts_no_jvm(tmp_path: Path) -> None:
    """In a fresh interpreter: the definitions' resources and a run on the default engine leave
    pyspark unimported (so no JVM), though the resource is configured for a local Spark."""
    script = textwrap.dedent(
        """
        import sys
        import dagster as dg
        from resight_platform.resources import EngineResource
        from resight_platform_tests.test_resources import _engine_asset

        resource = EngineResource(engine="polars", spark_master="local[1]")
        result = dg.materialize([_engine_asset()], resources={"engine": resource})
        (event,) = result.asset_materializations_for_node("tiny")
        print(event.metadata["engine"].value, event.metadata["spark_started"].value, "pyspark" in sys.modules)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-3:] == ["polars", "False", "False"]


@pytest.mark.xdist_group("spark")
def test_a_run_tagged_spark_gets_a_spark_session(spark: Any) -> None:
    # The worker's session is already up (the fixture): the resource's getOrCreate joins it.
    resource = EngineResource(engine="polars", spark_master="local[2]", spark_conf=SPARK_TEST_CONF)
    tagged = dg.materialize([_engine_asset()], resources={"engine": resource}, tags={ENGINE_TAG: "spark"})
    (event,) = tagged.asset_materializations_for_node("tiny")
    assert event.metadata["engine"].value == "spark"
    assert event.metadata["rows"].value == 7 and event.metadata["spark_started"].value is True
    untagged = dg.materialize([_engine_asset()], resources={"engine": resource})
    (event,) = untagged.asset_materializations_for_node("tiny")
    assert event.metadata["engine"].value == "polars" and event.metadata["spark_started"].value is False
