"""No secret anywhere a person or a log could read it.

Every secret-bearing variable gets a distinctive value (the warehouse's and Dagster's Postgres
URLs with passwords, which the test server's trust authentication ignores; the analyst's password;
the S3 keys, which the moto server accepts; an MLflow URL with a password; the SMTP password,
checked by a local STARTTLS server with a certificate from a CA made here; a webhook URL whose
path is its token). Then, from this process's environment as a deployment has it, the definitions
are built, a small sample is run end to end (landing and lake on S3), and the alert sensor sends a
failure to both destinations. None of the values may be found in: Dagster's storage (runs with
their config and tags, every event, snapshots, sensor and daemon tables, all in Postgres), the
resources as the UI's GraphQL API shows them, the warehouse (ledger, ops and every other table),
the lake, the alert messages received, and everything logged or printed.

The daemon is not started here (``test_daemon.py`` runs it on the same code); its process would
only add its own log lines, which come from the same definitions and sensors.
"""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3
import dagster as dg
import psycopg
import pytest
from psycopg import sql

from resight_platform.definitions import build_definitions
from resight_platform.defs.alerts import alert_sensor
from resight_platform.io.postgres import connect, database_url, ensure_database, sqlalchemy_url
from resight_platform.io.storage import open_store
from resight_platform.pipeline import run_pipeline
from resight_platform.resources import WarehouseResource
from resight_platform.sample import generate
from resight_platform.settings import SECRET_VARIABLES, Settings
from resight_platform.sources.registry import load_registry
from resight_platform_tests.alert_servers import Mailbox, Webhook, local_ca, serve_mailbox, serve_webhook
from resight_platform_tests.conftest import AWS_TEST_REGION
from resight_platform_tests.databases import temporary_database

pytestmark = pytest.mark.xdist_group("end_to_end")

START = date(2026, 10, 1)
log = logging.getLogger(__name__)
RESOURCES_QUERY = """
{
  repositoriesOrError {
    ... on RepositoryConnection {
      nodes { name allTopLevelResourceDetails { name configuredValues { key value type } } }
    }
    ... on PythonError { message stack }
  }
}
"""


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    user = parts.netloc.rpartition("@")[0].partition(":")[0] or "postgres"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


@dataclass
class World:
    secrets: dict[str, str]
    settings: Settings
    pg_url: str
    dagster_url: str
    instance_root: Path
    mailbox: Mailbox
    webhook: Webhook
    resources_in_ui: list[dict[str, Any]]
    logs: str


def _secret(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str, s3_endpoint: str) -> Iterator[World]:
    secrets = {
        "RESIGHT_PG_URL": _secret("pgPass"),
        "RESIGHT_DAGSTER_PG_URL": _secret("dagsterPass"),
        "RESIGHT_ANALYST_PASSWORD": _secret("analystPass"),
        "RESIGHT_ALERT_SMTP_PASSWORD": _secret("smtpPass"),
        "RESIGHT_ALERT_WEBHOOK_URL": _secret("hookToken"),
        "MLFLOW_TRACKING_URI": _secret("mlflowPass"),
        "AWS_SECRET_ACCESS_KEY": _secret("awsSecret"),
        "AWS_ACCESS_KEY_ID": _secret("AKIAKEY"),
        "RESIGHT_SPARK_REMOTE": _secret("connectToken"),
    }
    assert set(SECRET_VARIABLES.values()) <= set(secrets), "every secret variable is tried"
    tmp_path = tmp_path_factory.mktemp("secrets")
    bucket = f"secrets-{uuid.uuid4().hex[:12]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=AWS_TEST_REGION,
        aws_access_key_id=secrets["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secrets["AWS_SECRET_ACCESS_KEY"],
    ).create_bucket(Bucket=bucket)
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    tls = local_ca(tmp_path / "tls")
    logs = io.StringIO()
    handler = logging.StreamHandler(logs)
    handler.setLevel(logging.DEBUG)
    # Everything at INFO, the platform's and Dagster's own loggers at DEBUG. Not botocore's DEBUG:
    # it logs each request's headers, the access key id among them (never the secret key), and
    # no deployment runs it at that level.
    root, ours = logging.getLogger(), [logging.getLogger(name) for name in ("resight_platform", "dagster")]
    previous_levels = [root.level, *(logger.level for logger in ours)]
    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        contextlib.ExitStack() as stack,
    ):
        database = temporary_database(pg_server_url, "secrets")
        fresh_pg_url = next(database)
        stack.callback(next, database, None)  # dropped last, after the instance and the servers
        dagster_url = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
        mailbox = stack.enter_context(serve_mailbox(tls, login=("alerts", secrets["RESIGHT_ALERT_SMTP_PASSWORD"])))
        webhook = stack.enter_context(serve_webhook(f"/services/T0/B0/{secrets['RESIGHT_ALERT_WEBHOOK_URL']}"))
        env = {
            "RESIGHT_HOME": str(tmp_path / "home"),
            "RESIGHT_LANDING_URL": f"s3://{bucket}/landing",
            "RESIGHT_LAKE_URL": f"s3://{bucket}/lake",
            "AWS_ENDPOINT_URL": s3_endpoint,
            "AWS_DEFAULT_REGION": AWS_TEST_REGION,
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "RESIGHT_PARTITIONS_START": "2026-09-01",
            "RESIGHT_PG_URL": _with_password(fresh_pg_url, secrets["RESIGHT_PG_URL"]),
            "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(_with_password(dagster_url, secrets["RESIGHT_DAGSTER_PG_URL"])),
            "DAGSTER_EVENT_BATCH_SIZE": "1000",
            "RESIGHT_ANALYST_ROLE": role,
            "RESIGHT_ANALYST_PASSWORD": secrets["RESIGHT_ANALYST_PASSWORD"],
            "MLFLOW_TRACKING_URI": f"http://mlflow:{secrets['MLFLOW_TRACKING_URI']}@127.0.0.1:9/",
            "AWS_ACCESS_KEY_ID": secrets["AWS_ACCESS_KEY_ID"],
            "AWS_SECRET_ACCESS_KEY": secrets["AWS_SECRET_ACCESS_KEY"],
            "RESIGHT_ALERT_WEBHOOK_URL": webhook.url,
            "RESIGHT_ALERT_SMTP_HOST": "127.0.0.1",
            "RESIGHT_ALERT_SMTP_PORT": str(mailbox.port),
            "RESIGHT_ALERT_SMTP_USER": "alerts",
            "RESIGHT_ALERT_SMTP_PASSWORD": secrets["RESIGHT_ALERT_SMTP_PASSWORD"],
            "RESIGHT_ALERT_SMTP_STARTTLS": "true",
            "RESIGHT_ALERT_SMTP_CA_FILE": str(tls.ca_cert),
            "RESIGHT_ALERT_EMAIL_TO": "oncall@resight.example",
            # Configured, never connected to: the sample runs on Polars.
            "RESIGHT_SPARK_REMOTE": f"sc://127.0.0.1:9/;token={secrets['RESIGHT_SPARK_REMOTE']}",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            monkeypatch.delenv(name, raising=False)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        for logger in ours:
            logger.setLevel(logging.DEBUG)
        output = io.StringIO()
        try:
            with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
                settings = Settings.from_env()  # as `dagster dev`, the daemon and the CLI read it
                generate(settings.landing_url, providers=2, days=1, start=START, seed=5, endpoint_url=s3_endpoint)
                defs = build_definitions(settings)
                storage = {"postgres": {"postgres_url": {"env": "RESIGHT_DAGSTER_PG_URL"}}}
                instance = stack.enter_context(dg.instance_for_test(overrides={"storage": storage}))
                sensor = Sensor(instance)
                sensor.tick()  # the first evaluation starts at the end of the log
                landing = open_store(settings.landing_url, s3_endpoint)
                report = run_pipeline(defs, instance, landing=landing, registry=load_registry(), progress=log.info)
                assert report.success
                instance.report_runless_asset_event(
                    dg.AssetCheckEvaluation(
                        asset_key=dg.AssetKey(["silver", "sales"]),
                        check_name="matches_model",
                        passed=False,
                        metadata={"failures_by_rule": {"status.isin": 2}, "failing_rows": 2},
                    )
                )
                sensor.tick()
                assert webhook.received and mailbox.messages, sensor.skipped
                assert mailbox.logins == [("alerts", True)]
                resources = _resources_in_ui(instance, tmp_path)
        finally:
            root.removeHandler(handler)
            for logger, level in zip([root, *ours], previous_levels, strict=True):
                logger.setLevel(level)
            with connect(fresh_pg_url) as conn:
                if conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                    conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
                    conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))
        yield World(
            secrets,
            settings,
            fresh_pg_url,
            dagster_url,
            Path(instance.root_directory),
            mailbox,
            webhook,
            resources,
            output.getvalue() + "\n" + logs.getvalue(),
        )


class Sensor:
    """The alert sensor evaluated as the daemon does, with the resource the definitions give it."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor, self.skipped = instance, None, ""
        self.warehouse = WarehouseResource(pg_url=dg.EnvVar("RESIGHT_PG_URL"))

    def tick(self) -> None:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"warehouse": self.warehouse}
        )
        result = alert_sensor(context)
        assert isinstance(result, dg.SensorResult)
        self.cursor = result.cursor
        self.skipped = result.skip_reason.skip_message if result.skip_reason else ""


def _resources_in_ui(instance: dg.DagsterInstance, tmp_path: Path) -> list[dict[str, Any]]:
    """The resources page's data, from the GraphQL API the UI reads, over a code server started
    on the definitions module (as ``dagster dev`` loads it)."""
    from dagster_graphql.test.utils import define_out_of_process_context, execute_dagster_graphql

    entry = tmp_path / "code_location.py"
    entry.write_text("from resight_platform.definitions import defs\n")
    with define_out_of_process_context(str(entry), "defs", instance) as context:
        result = execute_dagster_graphql(context, RESOURCES_QUERY)
    assert not result.errors, result.errors
    (repository,) = result.data["repositoriesOrError"]["nodes"]
    return list(repository["allTopLevelResourceDetails"])


def _text(value: Any) -> str:
    if isinstance(value, bytes | memoryview):
        raw = bytes(value)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)  # Dagster's snapshots are stored compressed
        return raw.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _database_text(url: str) -> dict[str, str]:
    """Every table of every schema of a database (not the catalogues), as text."""
    out: dict[str, str] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        tables = conn.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_type = 'BASE TABLE' and table_schema not in ('pg_catalog', 'information_schema')"
        ).fetchall()
        for schema, table in tables:
            rows = conn.execute(sql.SQL("select * from {}.{}").format(sql.Identifier(schema), sql.Identifier(table)))
            out[f"{schema}.{table}"] = "\n".join(" ".join(_text(v) for v in row) for row in rows)
    assert out, f"no tables in {url}"
    return out


def _found(world: World, text: str) -> list[str]:
    return sorted(name for name, secret in world.secrets.items() if secret in text)


def test_dagster_storage_holds_no_secret(world: World) -> None:
    tables = _database_text(world.dagster_url)
    assert {"runs", "event_logs", "snapshots"} <= {name.split(".")[-1] for name in tables}
    assert "RESIGHT_PG_URL" in tables["public.snapshots"], "the job snapshots name the variable"
    leaks = {name: _found(world, text) for name, text in tables.items()}
    assert {name: found for name, found in leaks.items() if found} == {}


def test_the_ui_shows_variable_names_for_connection_urls(world: World) -> None:
    shown = {
        (resource["name"], value["key"]): (value["type"], value["value"])
        for resource in world.resources_in_ui
        for value in resource["configuredValues"]
    }
    assert shown[("warehouse", "pg_url")] == ("ENV_VAR", "RESIGHT_PG_URL")
    assert shown[("warehouse_io_manager", "pg_url")] == ("ENV_VAR", "RESIGHT_PG_URL")
    assert shown[("mlflow", "tracking_uri")] == ("ENV_VAR", "MLFLOW_TRACKING_URI")
    assert shown[("engine", "spark_remote")] == ("ENV_VAR", "RESIGHT_SPARK_REMOTE")
    assert _found(world, repr(world.resources_in_ui)) == []


def test_the_warehouse_ledger_and_ops_hold_no_secret(world: World) -> None:
    tables = _database_text(world.pg_url)
    assert tables["ops.ingestion_ledger"] and tables["ops.alert_log"]
    assert {name: found for name, text in tables.items() if (found := _found(world, text))} == {}


def test_the_lake_holds_no_secret(world: World) -> None:
    lake = open_store(world.settings.lake_url, world.settings.aws_endpoint_url)
    objects = [info.key for info in lake.list() if info.size < 4 << 20]
    assert any(key.startswith("dead_letter/") for key in objects)
    assert {key: found for key in objects if (found := _found(world, _text(lake.read_bytes(key))))} == {}


def test_alerts_hold_no_secret(world: World) -> None:
    sent = [m.decode("utf-8", "replace") for m in world.mailbox.raw]
    sent += [b.decode("utf-8", "replace") for b in world.webhook.bodies]
    assert any("matches_model" in text for text in sent)
    assert {i: found for i, text in enumerate(sent) if (found := _found(world, text))} == {}


def test_logs_and_output_hold_no_secret(world: World) -> None:
    assert "medallion_job done in" in world.logs  # the capture caught what was logged
    files = [p for p in world.instance_root.rglob("*") if p.is_file() and not p.is_symlink()]
    logged = {str(p): _found(world, _text(p.read_bytes())) for p in files}
    assert {path: found for path, found in logged.items() if found} == {}
    leaked = [line for line in world.logs.splitlines() if _found(world, line)]
    assert leaked == []


def test_a_connection_error_names_the_server_without_the_password(world: World) -> None:
    """Where the URL reaches an exception: a database that does not exist on the same server."""
    url = database_url(_with_password(world.pg_url, world.secrets["RESIGHT_PG_URL"]), "no_such_database")
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(url)
    assert _found(world, str(caught.value)) == []
