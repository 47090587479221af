"""What an EMR Serverless job run of the platform's Spark silver is submitted with: the
``StartJobRun`` request and its ``spark-submit`` parameters, built from settings in one place
(``docs/engines.md``, "Where Spark runs"). No AWS call and no Dagster here: ``defs/emr.py``
submits the request through dagster-aws Pipes, ``engines/emr_entry.py`` is the script it runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from resight_platform.engines.spark import BASE_CONF

__all__ = ["ENVIRONMENT", "PYTHON", "spark_submit_parameters", "start_job_run_request"]

#: The name the packed virtual environment is unpacked under in the job's working directory
#: (``--archives s3://…/venv.tar.gz#environment``).
ENVIRONMENT = "environment"
#: The interpreter of that environment: the driver's and the executors' Python.
PYTHON = f"./{ENVIRONMENT}/bin/python"


def spark_submit_parameters(archive: str, spark_conf: Mapping[str, str] | None = None) -> str:
    """``sparkSubmitParameters`` of the job: the venv archive (``spark.archives``) and its Python for
    the driver and the executors, the platform's session settings (``engines.spark.BASE_CONF``:
    UTC, partition values as text, Parquet instants as Polars writes them; static ones only take
    effect here, at submit), then the deployment's own (``RESIGHT_SPARK_CONF``), which win.

    EMR Serverless splits the parameters on white space, with no quoting: a value holding white
    space cannot be passed and is refused."""
    conf: dict[str, str] = {
        "spark.archives": f"{archive}#{ENVIRONMENT}",
        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON": PYTHON,
        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON": PYTHON,
        "spark.executorEnv.PYSPARK_PYTHON": PYTHON,
        **BASE_CONF,
        **(spark_conf or {}),
    }
    for key, value in conf.items():
        if not key or not str(value) or any(c.isspace() for c in f"{key}{value}"):
            raise ValueError(
                f"Spark setting {key!r}={value!r} cannot be passed to EMR Serverless (empty or white space)"
            )
    return " ".join(f"--conf {key}={value}" for key, value in conf.items())


def start_job_run_request(
    *,
    application_id: str,
    execution_role_arn: str,
    entry_point: str,
    archive: str,
    arguments: Sequence[str],
    name: str,
    log_group: str,
    timeout_minutes: int,
    spark_conf: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``StartJobRun`` request (boto3's ``emr-serverless`` ``start_job_run`` keyword arguments)
    of a job that runs ``entry_point`` with ``arguments`` under the archive's Python. The driver's
    stdout and stderr go to CloudWatch Logs in ``log_group``: Dagster's Pipes client reads the
    job's messages from the driver's stdout there, so the job turns it on whatever the
    application's own monitoring says. The Pipes client adds its ``driverEnv`` settings and tags."""
    return {
        "applicationId": application_id,
        "executionRoleArn": execution_role_arn,
        "name": name,
        "executionTimeoutMinutes": timeout_minutes,
        "jobDriver": {
            "sparkSubmit": {
                "entryPoint": entry_point,
                "entryPointArguments": list(arguments),
                "sparkSubmitParameters": spark_submit_parameters(archive, spark_conf),
            }
        },
        "configurationOverrides": {
            "monitoringConfiguration": {
                "cloudWatchLoggingConfiguration": {
                    "enabled": True,
                    "logGroupName": log_group,
                    "logTypes": {"SPARK_DRIVER": ["STDOUT", "STDERR"]},
                }
            }
        },
        "tags": dict(tags or {}),
    }
