"""The EMR Serverless request and ``spark-submit`` parameters (``engines/emr.py``), and the entry
script's arguments (``engines/emr_entry.py``); the request reaching moto and the entry run as the
cluster runs it are in ``defs/test_emr.py``."""

from __future__ import annotations

from datetime import date

import pytest

from resight_platform.engines.emr import PYTHON, spark_submit_parameters, start_job_run_request
from resight_platform.engines.emr_entry import parse_arguments, partition_keys
from resight_platform.engines.spark import BASE_CONF

ARCHIVE = "s3://artifacts/resight-venv.tar.gz"


def _confs(parameters: str) -> dict[str, str]:
    words = parameters.split()
    assert words[::2] == ["--conf"] * (len(words) // 2)
    return dict(conf.split("=", 1) for conf in words[1::2])


def test_the_archive_its_python_and_the_platforms_session_settings_are_submitted() -> None:
    confs = _confs(spark_submit_parameters(ARCHIVE))
    assert confs["spark.archives"] == f"{ARCHIVE}#environment"
    assert PYTHON == "./environment/bin/python"
    for key in (
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON",
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
        "spark.executorEnv.PYSPARK_PYTHON",
    ):
        assert confs[key] == PYTHON
    assert {key: confs[key] for key in BASE_CONF} == dict(BASE_CONF)


def test_the_deployments_settings_win() -> None:
    confs = _confs(
        spark_submit_parameters(ARCHIVE, {"spark.sql.session.timeZone": "UTC", "spark.executor.memory": "8g"})
    )
    assert confs["spark.executor.memory"] == "8g"
    assert confs["spark.sql.session.timeZone"] == "UTC"
    assert spark_submit_parameters(ARCHIVE, {"spark.executor.cores": "4"}).endswith("--conf spark.executor.cores=4")


@pytest.mark.parametrize("conf", [{"spark.driver.extraJavaOptions": "-Xss4m -Dx=1"}, {"spark.executor.memory": ""}])
def test_a_value_emr_cannot_pass_is_refused(conf: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="cannot be passed to EMR Serverless"):
        spark_submit_parameters(ARCHIVE, conf)


def test_the_request_names_the_application_role_entry_point_and_driver_logs() -> None:
    request = start_job_run_request(
        application_id="00fabcdefghijklm",
        execution_role_arn="arn:aws:iam::123456789012:role/emr",
        entry_point="s3://artifacts/emr_entry.py",
        archive=ARCHIVE,
        arguments=["--from", "2026-10-01", "--to", "2026-10-31", "--feeds", "sales"],
        name="resight-silver-run",
        log_group="/resight/emr",
        timeout_minutes=60,
        tags={"resight/job": "emr_silver_job"},
    )
    assert request["applicationId"] == "00fabcdefghijklm"
    assert request["executionRoleArn"] == "arn:aws:iam::123456789012:role/emr"
    assert (request["name"], request["executionTimeoutMinutes"]) == ("resight-silver-run", 60)
    submit = request["jobDriver"]["sparkSubmit"]
    assert submit["entryPoint"] == "s3://artifacts/emr_entry.py"
    assert submit["entryPointArguments"] == ["--from", "2026-10-01", "--to", "2026-10-31", "--feeds", "sales"]
    assert submit["sparkSubmitParameters"] == spark_submit_parameters(ARCHIVE)
    logging = request["configurationOverrides"]["monitoringConfiguration"]["cloudWatchLoggingConfiguration"]
    assert logging == {
        "enabled": True,
        "logGroupName": "/resight/emr",
        "logTypes": {"SPARK_DRIVER": ["STDOUT", "STDERR"]},
    }
    assert request["tags"] == {"resight/job": "emr_silver_job"}


def test_the_entry_reads_its_range_and_feeds() -> None:
    args = parse_arguments(["--from", "2026-10-01", "--to", "2026-10-03", "--feeds", "sales,catalog"])
    assert (args.start, args.end, args.feeds) == (date(2026, 10, 1), date(2026, 10, 3), ["sales", "catalog"])
    with pytest.raises(SystemExit):
        parse_arguments(["--from", "2026-10-03", "--to", "2026-10-01", "--feeds", "sales"])
    with pytest.raises(SystemExit):
        parse_arguments(["--from", "1 Oct", "--to", "2026-10-01", "--feeds", "sales"])


def test_partition_keys_are_every_date_of_the_range_by_every_source() -> None:
    keys = partition_keys(date(2026, 10, 30), date(2026, 11, 1), ["b", "a"])
    assert keys == [
        "2026-10-30|b",
        "2026-10-30|a",
        "2026-10-31|b",
        "2026-10-31|a",
        "2026-11-01|b",
        "2026-11-01|a",
    ]
