"""Settings: every ``RESIGHT_*`` variable is read in ``settings.py`` and nowhere else."""

from __future__ import annotations

import ast
import re
from datetime import date, timedelta
from pathlib import Path

import pytest

import resight_platform
from resight_platform.settings import (
    AlertSettings,
    EmrSettings,
    EngineSettings,
    Settings,
    WatchSettings,
    parse_spark_conf,
)
from resight_platform.transforms.bronze import DEFAULT_LIMITS

PACKAGE = Path(resight_platform.__file__).parent


def test_defaults_are_the_embedded_platform(tmp_path: Path) -> None:
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path)})
    assert settings.embedded
    assert settings.landing_url == str(tmp_path / "landing")
    assert settings.lake_url == str(tmp_path / "lake")
    assert settings.watch == WatchSettings()
    assert settings.alerts == AlertSettings()
    assert settings.alerts.sinks == []
    assert settings.freshness_grace == timedelta(hours=2)
    assert settings.dagster_pg_url is None
    assert settings.s3_max_attempts == 10 and settings.failpoints == ()


def test_s3_attempts_come_from_the_environment(tmp_path: Path) -> None:
    assert Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_S3_MAX_ATTEMPTS": "3"}).s3_max_attempts == 3
    assert Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_S3_MAX_ATTEMPTS": "0"}).s3_max_attempts == 1


def test_watch_alert_and_freshness_settings_come_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_WATCH_HOT_DAYS": "3",
            "RESIGHT_WATCH_ORPHAN_AFTER": "30",
            "RESIGHT_ALERT_WEBHOOK_URL": "https://hooks.example/T0/B0/secret",
            "RESIGHT_ALERT_SMTP_HOST": "mail.example",
            "RESIGHT_ALERT_SMTP_PASSWORD": "hunter2",
            "RESIGHT_ALERT_EMAIL_TO": "a@example.com, b@example.com",
            "RESIGHT_UI_URL": "http://dagster.example/",
            "RESIGHT_FRESHNESS_GRACE_HOURS": "0.5",
            "RESIGHT_DAGSTER_PG_URL": "postgresql+psycopg2://u:pw@db/dagster",
        }
    )
    assert settings.watch.hot_days == 3
    assert settings.watch.orphan_after == timedelta(seconds=30)
    assert settings.watch.page_size == WatchSettings().page_size
    assert settings.alerts.sinks == ["webhook", "email"]
    assert settings.alerts.email_to == ("a@example.com", "b@example.com")
    assert settings.alerts.ui_url == "http://dagster.example"
    assert settings.freshness_grace == timedelta(minutes=30)
    assert settings.dagster_pg_url == "postgresql+psycopg2://u:pw@db/dagster"


def test_the_landing_queue_and_its_budgets_come_from_the_environment(tmp_path: Path) -> None:
    queue = "https://sqs.us-east-1.amazonaws.com/123456789012/resight-landing"
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_LANDING_URL": "s3://landing-bucket/landing",
            "RESIGHT_LANDING_QUEUE_URL": queue,
            "RESIGHT_WATCH_SWEEP_INTERVAL": "600",
            "RESIGHT_WATCH_EVENTS_PER_TICK": "200",
            "RESIGHT_WATCH_MAX_PARTITIONS_PER_RUN": "50",
        }
    )
    assert settings.landing_queue_url == queue
    assert settings.watch.sweep_interval == timedelta(minutes=10) and settings.watch.events_per_tick == 200
    assert settings.watch.max_partitions_per_run == 50 and WatchSettings().max_partitions_per_run == 500
    assert Settings.from_env({"RESIGHT_HOME": str(tmp_path)}).landing_queue_url is None
    with pytest.raises(ValueError, match="landing zone must be on S3"):
        Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_LANDING_QUEUE_URL": queue})


def test_secrets_are_not_in_the_settings_repr(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_PG_URL": "postgresql://resight:s3cret-pg@db/resight",
            "RESIGHT_ANALYST_PASSWORD": "s3cret-analyst",
            "RESIGHT_ALERT_SMTP_PASSWORD": "s3cret-smtp",
            "RESIGHT_ALERT_WEBHOOK_URL": "https://hooks.example/s3cret-hook",
            "RESIGHT_DAGSTER_PG_URL": "postgresql+psycopg2://u:s3cret-dagster@db/dagster",
        }
    )
    assert "s3cret" not in repr(settings)


def _environment_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """Reads of a ``RESIGHT_*`` variable: ``os.environ.get("RESIGHT_…")``, ``os.getenv(…)``,
    ``os.environ["RESIGHT_…"]`` (also through f-strings)."""

    def names_resight(node: ast.expr) -> bool:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return node.value.startswith("RESIGHT_")
        if isinstance(node, ast.JoinedStr) and node.values:
            return names_resight(node.values[0])
        return False

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and names_resight(node.args[0]):
            func = ast.unparse(node.func)
            if func.endswith(("environ.get", "getenv", "env.get")):
                found.append((node.lineno, ast.unparse(node)))
        if (
            isinstance(node, ast.Subscript)
            and isinstance(node.ctx, ast.Load)
            and names_resight(node.slice)
            and ast.unparse(node.value).endswith("environ")
        ):
            found.append((node.lineno, ast.unparse(node)))
    return found


def test_no_module_but_settings_reads_a_resight_variable() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == PACKAGE / "settings.py":
            continue
        for line, code in _environment_reads(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{path.relative_to(PACKAGE)}:{line}: {code}")
    assert offenders == []
    # The scan finds what it looks for: settings.py itself reads them.
    assert _environment_reads(ast.parse((PACKAGE / "settings.py").read_text(encoding="utf-8")))


def test_read_limits_default_to_bronzes_and_come_from_the_environment(tmp_path: Path) -> None:
    defaults = Settings.from_env({"RESIGHT_HOME": str(tmp_path)})
    assert (defaults.max_record_bytes, defaults.max_file_bytes) == (
        DEFAULT_LIMITS.max_record_bytes,
        DEFAULT_LIMITS.max_file_bytes,
    )
    env = {"RESIGHT_HOME": str(tmp_path), "RESIGHT_MAX_RECORD_BYTES": "4096", "RESIGHT_MAX_FILE_BYTES": "1000000"}
    assert (Settings.from_env(env).max_record_bytes, Settings.from_env(env).max_file_bytes) == (4096, 1_000_000)


def test_the_spool_directory_is_under_home_unless_set(tmp_path: Path) -> None:
    assert Settings.from_env({"RESIGHT_HOME": str(tmp_path)}).spool_dir == tmp_path / "spool"
    spool = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_SPOOL_DIR": str(tmp_path / "s")}).spool_dir
    assert spool == tmp_path / "s"


def test_a_secret_is_named_by_its_variable_only_when_it_came_from_this_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://resight:s3cret@db/resight"
    monkeypatch.setenv("RESIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("RESIGHT_PG_URL", url)
    monkeypatch.setenv("RESIGHT_ALERT_SMTP_PASSWORD", "s3cret-smtp")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    settings = Settings.from_env()
    assert settings.secret_variable("pg_url") == "RESIGHT_PG_URL"
    assert settings.secret_variable("smtp_password") == "RESIGHT_ALERT_SMTP_PASSWORD"
    assert settings.secret_variable("mlflow_tracking_uri") is None  # unset
    assert Settings.from_env({"RESIGHT_PG_URL": url}).secret_variable("pg_url") is None  # from a mapping
    monkeypatch.setenv("RESIGHT_PG_URL", "postgresql://other@db/x")
    assert settings.secret_variable("pg_url") is None  # the environment no longer holds it


def test_sweep_grace_and_smtp_ca_file(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_SWEEP_GRACE_HOURS": "0.5",
            "RESIGHT_ALERT_SMTP_CA_FILE": str(tmp_path / "ca.pem"),
        }
    )
    assert settings.sweep_grace == timedelta(minutes=30)
    assert settings.alerts.smtp_ca_file == tmp_path / "ca.pem"
    assert Settings.from_env({"RESIGHT_HOME": str(tmp_path)}).sweep_grace == timedelta(hours=6)


def test_history_floor_reaches_the_registry_resource(tmp_path: Path, pg_url: str) -> None:
    from resight_platform.resources import build_resources

    assert Settings.from_env({"RESIGHT_HOME": str(tmp_path)}).history_floor == date(2000, 1, 1)
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_HISTORY_FLOOR": "2015-06-01"})
    assert settings.history_floor == date(2015, 6, 1)
    registry = build_resources(settings, pg_url)["registry"]
    loaded = registry.load()
    assert loaded.history_floor == date(2015, 6, 1)
    assert {s.history_start for s in loaded.sources.values()} == {date(2015, 6, 1)}  # none gives its own


def test_the_engine_is_polars_in_process_unless_set(tmp_path: Path) -> None:
    engine = Settings.from_env({"RESIGHT_HOME": str(tmp_path)}).engine
    assert engine == EngineSettings()
    assert (engine.name, engine.spark_master, engine.spark_remote, engine.spark_conf) == (
        "polars",
        "local[*]",
        None,
        (),
    )


def test_spark_settings_come_from_the_environment(tmp_path: Path) -> None:
    engine = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            "RESIGHT_ENGINE": "Spark",
            "RESIGHT_SPARK_MASTER": "spark://head:7077",
            "RESIGHT_SPARK_REMOTE": "sc://connect.internal:15002",
            "RESIGHT_SPARK_CONF": "spark.executor.memory=8g, spark.sql.shuffle.partitions=400",
        }
    ).engine
    assert engine.name == "spark"
    assert engine.spark_master == "spark://head:7077"
    assert engine.spark_remote == "sc://connect.internal:15002"
    assert engine.spark_conf == (("spark.executor.memory", "8g"), ("spark.sql.shuffle.partitions", "400"))
    with_token = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_SPARK_REMOTE": "sc://c:443/;token=s3cret"})
    assert with_token.engine.spark_remote == "sc://c:443/;token=s3cret" and "s3cret" not in repr(with_token)


def test_spark_conf_takes_a_json_object_for_values_with_commas() -> None:
    conf = parse_spark_conf('{"spark.jars": "/opt/a.jar,/opt/b.jar", "spark.executor.cores": 4, "spark.x.on": true}')
    assert conf == (("spark.jars", "/opt/a.jar,/opt/b.jar"), ("spark.executor.cores", "4"), ("spark.x.on", "true"))
    assert parse_spark_conf("  ") == ()


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("spark.executor.memory=8g,oops", "'oops' is not key=value"),
        ("executor.memory=8g", "'executor.memory': not a Spark setting"),
        ("spark.executor.memory=", "'spark.executor.memory' has no value"),
        ("spark.a=1,spark.a=2", "'spark.a' is given twice"),
        ("spark.master=local[2]", "'spark.master': set it with RESIGHT_SPARK_MASTER"),
        ("spark.remote=sc://x:1", "'spark.remote': set it with RESIGHT_SPARK_REMOTE"),
        ('{"spark.a": [1]}', "'spark.a': the value must be a string or a number"),
        ("{not json", "not a JSON object"),
        ('["spark.a=1"]', "'[\"spark.a': not a Spark setting"),
    ],
)
def test_a_bad_spark_conf_item_is_named(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="RESIGHT_SPARK_CONF") as error:
        parse_spark_conf(text)
    assert named in str(error.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RESIGHT_ENGINE", "duckdb", "'duckdb' is not an engine; engines are polars, spark"),
        ("RESIGHT_SPARK_REMOTE", "http://connect:15002", "is not a Spark Connect URL"),
        ("RESIGHT_SPARK_CONF", "spark.executor.memory", "'spark.executor.memory' is not key=value"),
    ],
)
def test_bad_engine_settings_are_refused_by_name(tmp_path: Path, variable: str, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=variable) as error:
        Settings.from_env({"RESIGHT_HOME": str(tmp_path), variable: value})
    assert message in str(error.value)
    with pytest.raises(ValueError, match="RESIGHT_SPARK_REMOTE 'https://c:443/'") as error:
        EngineSettings(spark_remote="https://c:443/;token=s3cret")
    assert "s3cret" not in str(error.value)
    ok = "sc://connect.internal:15002/;token=abc;use_ssl=true"
    assert EngineSettings(spark_remote=ok).spark_remote == ok


_EMR = {
    "RESIGHT_EMR_SERVERLESS_APPLICATION_ID": "00fabcdefghij123",
    "RESIGHT_EMR_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/service/resight-emr",
    "RESIGHT_EMR_ENTRY_POINT": "s3://artifacts/emr/emr_entry.py",
    "RESIGHT_EMR_ARCHIVE": "s3://artifacts/emr/resight-venv.tar.gz",
    "RESIGHT_LAKE_URL": "s3://lake-bucket/lake",
}


def test_emr_serverless_is_unconfigured_unless_set_and_comes_from_the_environment(tmp_path: Path) -> None:
    assert not Settings.from_env({"RESIGHT_HOME": str(tmp_path)}).emr.configured
    emr = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path),
            **_EMR,
            "RESIGHT_EMR_LOG_GROUP": "/resight/emr",
            "RESIGHT_EMR_POLL_SECONDS": "10",
            "RESIGHT_EMR_TIMEOUT_MINUTES": "90",
        }
    ).emr
    assert emr == EmrSettings(
        application_id="00fabcdefghij123",
        execution_role_arn="arn:aws:iam::123456789012:role/service/resight-emr",
        entry_point="s3://artifacts/emr/emr_entry.py",
        archive="s3://artifacts/emr/resight-venv.tar.gz",
        log_group="/resight/emr",
        poll_seconds=10.0,
        timeout_minutes=90,
    )
    assert emr.configured
    defaults = Settings.from_env({"RESIGHT_HOME": str(tmp_path), **_EMR}).emr
    assert (defaults.log_group, defaults.poll_seconds, defaults.timeout_minutes) == ("/aws/emr-serverless", 30.0, 720)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"RESIGHT_EMR_ARCHIVE": ""}, "half configured: set RESIGHT_EMR_ARCHIVE too"),
        (
            {"RESIGHT_EMR_SERVERLESS_APPLICATION_ID": "", "RESIGHT_EMR_EXECUTION_ROLE_ARN": ""},
            "set RESIGHT_EMR_SERVERLESS_APPLICATION_ID, RESIGHT_EMR_EXECUTION_ROLE_ARN too",
        ),
        ({"RESIGHT_EMR_SERVERLESS_APPLICATION_ID": "My-App"}, "'My-App' is not an application id"),
        ({"RESIGHT_EMR_EXECUTION_ROLE_ARN": "resight-emr"}, "'resight-emr' is not an IAM role ARN"),
        (
            {"RESIGHT_EMR_ENTRY_POINT": "/opt/emr_entry.py"},
            "RESIGHT_EMR_ENTRY_POINT '/opt/emr_entry.py' is not an s3://",
        ),
        ({"RESIGHT_EMR_ENTRY_POINT": "s3://artifacts/emr/entry.jar"}, "not an s3:// URI of a .py file"),
        ({"RESIGHT_EMR_ARCHIVE": "s3://artifacts/venv.whl"}, "RESIGHT_EMR_ARCHIVE 's3://artifacts/venv.whl'"),
        ({"RESIGHT_EMR_LOG_GROUP": "emr logs"}, "'emr logs' is not a CloudWatch log group name"),
        ({"RESIGHT_EMR_POLL_SECONDS": "0"}, "RESIGHT_EMR_POLL_SECONDS 0.0 must be more than 0"),
        ({"RESIGHT_EMR_TIMEOUT_MINUTES": "4"}, "RESIGHT_EMR_TIMEOUT_MINUTES 4 is under EMR's minimum of 5"),
        ({"RESIGHT_LAKE_URL": "/data/lake"}, "EMR Serverless needs the lake on S3 (RESIGHT_LAKE_URL=s3://…)"),
        ({"RESIGHT_REGISTRY_DIR": "/etc/resight/registry"}, "needs the registry packaged or on S3"),
    ],
)
def test_bad_emr_settings_are_refused_by_name(tmp_path: Path, change: dict[str, str], named: str) -> None:
    with pytest.raises(ValueError, match=re.escape(named)):
        Settings.from_env({"RESIGHT_HOME": str(tmp_path), **_EMR, **change})
