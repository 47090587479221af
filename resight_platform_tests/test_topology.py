"""The production topology on this machine (resight_platform_tests/topology.py): the code server,
webserver and daemon as separate processes on deploy/dagster.yaml's policies, a Postgres server of
their own, S3 over HTTP, the MLflow tracking server; files dropped on S3 reach gold, and nothing is
lost, doubled or left stuck across a redeploy, a Postgres restart and an S3 outage.

Opt-in (``RESIGHT_TEST_TOPOLOGY=1``, ``make test-topology``): it takes minutes and the suite is at
its CI time limit. The three tests share one topology (started once for the module) and drop
samples of their own business dates, so each checks only its own files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from resight_platform.settings import StepRetrySettings
from resight_platform_tests.topology import (
    TOPOLOGY_ENV,
    Feeder,
    Sample,
    Topology,
    Window,
    latencies,
    make_sample,
    postgres_restart,
    redeploy,
    running,
    s3_outage,
    settle,
    without_keys,
)

#: The three topology tests: opt-in, and on one xdist worker together (they share the topology).
opt_in = pytest.mark.skipif(
    os.environ.get("RESIGHT_TEST_TOPOLOGY") != "1",
    reason="the production topology takes minutes: set RESIGHT_TEST_TOPOLOGY=1 or run make test-topology",
)
pytestmark = pytest.mark.xdist_group("topology")

#: Seconds between two files of the feeder.
INTERVAL = 2.5
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def topology(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    root = tmp_path_factory.mktemp("topology")
    start = (TODAY - timedelta(days=30)).isoformat()
    with running(Topology(root, s3_endpoint, partitions_start=start, extra_env=TOPOLOGY_ENV)) as topology:
        yield topology


@pytest.fixture(scope="module")
def seen() -> set[str]:
    """Keys dropped by an earlier test of the module (the generator repeats a few refused ones)."""
    return set()


def _sample(tmp_path: Path, seen: set[str], days_back: int, days: int, seed: int) -> Sample:
    sample = make_sample(
        tmp_path / "sample", TODAY - timedelta(days=days_back), providers=2, days=days, lines_per_day=200, seed=seed
    )
    sample = without_keys(sample, seen)
    seen.update(key for _, key in sample.files)
    return sample


def _check(topology: Topology, sample: Sample, feeder: Feeder, windows: list[Window]) -> dict[str, object]:
    outcome = settle(topology, sample, feeder)
    problems = outcome.problems(sample, feeder.dropped)
    report = {
        "files": len(feeder.dropped),
        "settled_after_s": outcome.settled_after_s,
        "runs": outcome.runs,
        "failed_runs": outcome.failed_runs,
        "put_retries": feeder.errors,
        "latency": latencies(outcome, feeder.dropped, windows),
        "windows": [(w.name, round(w.ended - w.began, 1)) for w in windows],
    }
    print(report)
    assert not problems, f"{problems}\n{report}\n{topology.logs()}"
    return report


ASSET_NODES = "{ assetNodes { assetKey { path } } }"
RUNS = "{ runsOrError(limit: 50) { __typename ... on Runs { results { runId status jobName } } } }"


@opt_in
def test_files_dropped_on_s3_reach_gold_and_the_ui_answers(topology: Topology, tmp_path: Path, seen: set[str]) -> None:
    sample = _sample(tmp_path, seen, days_back=10, days=1, seed=11)
    feeder = Feeder(topology, sample.files, interval=0.0).start()
    _check(topology, sample, feeder, [])

    nodes = {"/".join(node["assetKey"]["path"]) for node in topology.graphql(ASSET_NODES)["assetNodes"]}
    assert {"bronze/sales", "silver/sales", "gold/fact_sales"} <= nodes, sorted(nodes)
    runs = topology.graphql(RUNS)["runsOrError"]
    assert runs["__typename"] == "Runs" and runs["results"], runs
    assert {run["status"] for run in runs["results"]} <= {"SUCCESS", "FAILURE", "CANCELED"}, runs


@opt_in
def test_redeploy_while_files_land_loses_and_doubles_nothing(
    topology: Topology, tmp_path: Path, seen: set[str]
) -> None:
    sample = _sample(tmp_path, seen, days_back=8, days=3, seed=12)
    feeder = Feeder(topology, sample.files, interval=INTERVAL).start()
    windows: list[Window] = []
    topology.check_alive()
    # A few files land on the running platform first ("before").
    while len(feeder.dropped) < 5 and not feeder.done:
        feeder.join(timeout=1.0)
    took = redeploy(topology, windows, pause=5.0)
    print({"redeploy_s": took})
    report = _check(topology, sample, feeder, windows)
    assert report["files"] == len(sample.files)


@opt_in
def test_postgres_restart_and_s3_outage_while_files_land(topology: Topology, tmp_path: Path, seen: set[str]) -> None:
    sample = _sample(tmp_path, seen, days_back=5, days=2, seed=13)
    feeder = Feeder(topology, sample.files, interval=INTERVAL).start()
    windows: list[Window] = []
    while len(feeder.dropped) < 5 and not feeder.done:
        feeder.join(timeout=1.0)
    print({"postgres_restart_s": postgres_restart(topology, windows)})
    s3_outage(topology, windows, seconds=30.0)
    _check(topology, sample, feeder, windows)


def test_step_retries_are_settings() -> None:
    """RESIGHT_STEP_RETRIES / RESIGHT_STEP_RETRY_DELAY_S (the topology runs with 4 and 3 s), the
    defaults 2 and 2 s as before, nonsense refused; the assets' policy is built from them."""
    from resight_platform.defs.policies import RETRY

    assert StepRetrySettings.from_env({}) == StepRetrySettings(retries=2, delay_s=2.0)
    assert StepRetrySettings.from_env(TOPOLOGY_ENV) == StepRetrySettings(retries=4, delay_s=3.0)
    with pytest.raises(ValueError, match="RESIGHT_STEP_RETRIES"):
        StepRetrySettings.from_env({"RESIGHT_STEP_RETRIES": "-1"})
    expected = StepRetrySettings.from_env()
    assert (RETRY.max_retries, RETRY.delay, RETRY.backoff) == (
        expected.retries,
        expected.delay_s,
        dg.Backoff.EXPONENTIAL,
    )


def test_the_instance_is_deploy_dagster_yaml(tmp_path: Path) -> None:
    """The topology's instance keeps deploy/dagster.yaml's storage, queue, monitoring, retries and
    retention; only compute logs move to local disk, and the queue gains the two settings
    deploy/README.md asks for (where dagster.yaml does not set them)."""
    import yaml

    from resight_platform_tests.topology import DEPLOY, RUN_QUEUE_AMENDMENTS, instance_config

    production = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    config = instance_config(tmp_path)
    for key in ("storage", "run_monitoring", "run_retries", "retention", "sensors"):
        assert config[key] == production[key], key
    queue = config["run_coordinator"]["config"]
    assert {k: v for k, v in queue.items() if k not in RUN_QUEUE_AMENDMENTS} == {
        k: v for k, v in production["run_coordinator"]["config"].items() if k not in RUN_QUEUE_AMENDMENTS
    }
    assert queue["max_user_code_failure_retries"] >= 1 and config["compute_logs"]["config"]["base_dir"] == str(tmp_path)
