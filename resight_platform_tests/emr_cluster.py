"""EMR Serverless played by the test, on the suite's moto server: ``Cluster`` runs a submitted job
run's entry point as the cluster would and logs it to moto's CloudWatch Logs; ``emr_application``
gives each test a fresh application and boto3 default session (the op's clients come from it).

Moto takes a job run and answers that it succeeded at once, running nothing, and it lacks
``GetDashboardForJobRun``, which dagster-aws' client calls when the run ends: the cluster hooks
botocore's events of the default session (``after-call`` of ``StartJobRun``: run the job;
``before-call`` of ``GetDashboardForJobRun``: answer it). A job run's end other than SUCCESS has
no API in moto: it is set in moto's backend, which runs in this process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import pytest

from resight_platform.engines.emr import PYTHON
from resight_platform_tests.conftest import AWS_TEST_REGION

__all__ = ["LOG_GROUP", "ROLE", "Cluster", "MotoEmr", "emr_application", "emr_env"]

ROLE = "arn:aws:iam::123456789012:role/resight-emr"  # moto's account: it refuses a cross-account role
ENTRY = Path(__file__).resolve().parents[1] / "resight_platform" / "engines" / "emr_entry.py"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
DRIVER_ENV = "spark.emr-serverless.driverEnv."
LOG_GROUP = "/resight/emr-test"


@dataclass
class Cluster:
    """EMR Serverless's part: runs a submitted job's entry point locally and logs it to CloudWatch
    as EMR would (``/applications/{app}/jobs/{run}/SPARK_DRIVER/{stdout,stderr}``). ``fail``: end
    the job run FAILED with that reason instead of running it."""

    endpoint: str
    fail: str | None = None
    submitted: list[dict[str, Any]] = field(default_factory=list)
    stderr: str = ""

    def _client(self, service: str) -> Any:
        return boto3.Session(region_name=AWS_TEST_REGION).client(service, endpoint_url=self.endpoint)

    def install(self, session: boto3.Session) -> None:
        session.events.register("after-call.emr-serverless.StartJobRun", self.on_start)
        session.events.register("before-call.emr-serverless.GetDashboardForJobRun", self.dashboard)

    def dashboard(self, **_: Any) -> tuple[Any, dict[str, str]]:
        return types.SimpleNamespace(status_code=200), {"url": "https://emr-serverless.example/dashboard"}

    def on_start(self, parsed: Mapping[str, Any], **_: Any) -> None:
        application, run_id = parsed["applicationId"], parsed["jobRunId"]
        job = self._client("emr-serverless").get_job_run(applicationId=application, jobRunId=run_id)["jobRun"]
        self.submitted.append(job)
        if self.fail is not None:
            self._end(application, run_id, "FAILED", self.fail)
            return
        done = self._run(job)
        self._log(application, run_id, "stdout", done.stdout)
        self._log(application, run_id, "stderr", done.stderr)
        self.stderr = done.stderr
        if done.returncode:
            self._end(application, run_id, "FAILED", f"Job failed, ExitCode: {done.returncode}")

    def _run(self, job: Mapping[str, Any]) -> subprocess.CompletedProcess[str]:
        """``spark-submit`` as the cluster runs it: the job's ``--conf``s (the archive's Python is
        this venv's, the archive itself the cluster's business), its driver environment, the entry
        point (here the package's file) and its arguments."""
        submit = job["jobDriver"]["sparkSubmit"]
        words = submit["sparkSubmitParameters"].split()
        confs = dict(conf.split("=", 1) for flag, conf in zip(words[::2], words[1::2], strict=True) if flag == "--conf")
        env = {**os.environ, "PYTHONPATH": str(ENTRY.parents[2]), "PYSPARK_PYTHON": sys.executable}
        env.update({key[len(DRIVER_ENV) :]: value for key, value in confs.items() if key.startswith(DRIVER_ENV)})
        env.update({key: sys.executable for key, value in env.items() if value == PYTHON})
        command = [str(SPARK_SUBMIT), "--master", "local[1]", "--conf", "spark.ui.enabled=false"]
        for key, value in confs.items():
            if key != "spark.archives" and not key.startswith(DRIVER_ENV):
                command += ["--conf", f"{key}={sys.executable if value == PYTHON else value}"]
        command += [str(ENTRY), *submit["entryPointArguments"]]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900, check=False)

    def _log(self, application: str, run_id: str, stream: str, text: str) -> None:
        logs = self._client("logs")
        if not logs.describe_log_groups(logGroupNamePrefix=LOG_GROUP)["logGroups"]:
            logs.create_log_group(logGroupName=LOG_GROUP)
        name = f"/applications/{application}/jobs/{run_id}/SPARK_DRIVER/{stream}"
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=name)
        lines = [line for line in text.splitlines() if line]
        for first in range(0, len(lines), 5_000):
            now = int(time.time() * 1000)
            events = [{"timestamp": now, "message": line} for line in lines[first : first + 5_000]]
            logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=name, logEvents=events)

    def _end(self, application: str, run_id: str, state: str, reason: str) -> None:
        """Moto has no API for a job run's end: set it in moto's backend (this process's server)."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.emrserverless.models import emrserverless_backends

        run = emrserverless_backends[DEFAULT_ACCOUNT_ID][AWS_TEST_REGION].get_job_run(application, run_id)
        run.state, run.state_details = state, reason


class MotoEmr(NamedTuple):
    """Moto's endpoint, an EMR Serverless application on it, and a fresh lake bucket there."""

    endpoint: str
    application: str
    lake_url: str


@pytest.fixture
def emr_application(s3_bucket_url: str, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoEmr]:
    """An EMR Serverless application on moto, a lake on moto's S3 (a cluster reads an S3 lake
    only), and boto3's default session (the op's clients come from it), fresh for this test."""
    session = boto3.Session(region_name=AWS_TEST_REGION)
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    emr = session.client("emr-serverless", endpoint_url=s3_endpoint)
    application = emr.create_application(name="resight", releaseLabel="emr-7.5.0", type="SPARK")["applicationId"]
    yield MotoEmr(s3_endpoint, application, s3_bucket_url)


def emr_env(testbed: MotoEmr) -> dict[str, str]:
    """The settings of a deployment on ``testbed``: its endpoint, its lake and ``RESIGHT_EMR_*``
    (the artifacts' URIs are only passed on: the played cluster runs the package's own entry)."""
    return {
        "AWS_ENDPOINT_URL": testbed.endpoint,
        "RESIGHT_LAKE_URL": testbed.lake_url,
        "RESIGHT_EMR_SERVERLESS_APPLICATION_ID": testbed.application,
        "RESIGHT_EMR_EXECUTION_ROLE_ARN": ROLE,
        "RESIGHT_EMR_ENTRY_POINT": "s3://resight-artifacts/emr/emr_entry.py",
        "RESIGHT_EMR_ARCHIVE": "s3://resight-artifacts/emr/resight-venv.tar.gz",
        "RESIGHT_EMR_LOG_GROUP": LOG_GROUP,
        "RESIGHT_EMR_POLL_SECONDS": "0.5",
    }
