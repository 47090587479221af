"""The S3 endpoint answering 500, 503 and SlowDown for a while, under a real `resight run` with
the landing zone and the lake on S3: a proxy in front of the moto server fails every third request
for a budget of failures, then every request for a few seconds; boto3 and Polars retry
(``RESIGHT_S3_MAX_ATTEMPTS``) and the run loads exactly what the manifest says."""

from __future__ import annotations

import uuid
from pathlib import Path
from urllib.parse import urlsplit

import boto3

from bench.faults.s3proxy import Faults, FlakyS3Proxy
from bench.faults.scenarios import prepare
from resight_platform.io.postgres import ensure_database, sqlalchemy_url


def test_a_run_rides_through_s3_errors_and_throttling(
    tmp_path: Path, fresh_pg_url: str, s3_endpoint: str, s3_credentials: None
) -> None:
    bucket = f"faults-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=bucket)
    dagster = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
    with FlakyS3Proxy(s3_endpoint) as proxy:
        platform = prepare(
            tmp_path,
            {
                "RESIGHT_PG_URL": fresh_pg_url,
                "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster),
                "RESIGHT_LANDING_URL": f"s3://{bucket}/landing",
                "RESIGHT_LAKE_URL": f"s3://{bucket}/lake",
                "AWS_ENDPOINT_URL": proxy.url,
            },
        )
        # The sample is written: from now on every third request fails until 60 have, and the
        # 150th request starts 3 s in which every request fails.
        proxy.schedule(Faults(every=3, budget=60, outage_at=150, outage_seconds=3.0))
        run = platform.run()
        served, requests = dict(proxy.faults.served), proxy.faults.requests
    assert run.returncode == 0, run.stdout + run.stderr
    assert set(served) == {"InternalError", "SlowDown", "ServiceUnavailable"}, served
    assert sum(served.values()) > 60 and requests > 150  # the budget spent, and the outage served
    assert platform.state().differences(platform.manifest) == []
