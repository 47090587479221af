"""The runners of the batch pipeline: in process, and a pool of worker processes that run a
stage's independent runs side by side against the same Dagster instance."""

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from resight_platform.pipeline import PipelineReport, _stage
from resight_platform.recovery import HOST_TAG, PROCESS_TAG
from resight_platform.runner import InProcess, WorkerPool
from resight_platform.services import service_down_in_traces
from resight_platform.settings import Settings

DAYS = dg.DailyPartitionsDefinition(start_date="2026-10-01", end_offset=1)


def tiny_definitions() -> dg.Definitions:
    """Two jobs: one writes the run's partitions and its process id to a file, one fails."""

    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
    def marked(context: dg.AssetExecutionContext) -> None:
        out = Path(os.environ["RUNNER_TEST_DIR"]) / f"{context.partition_key_range.start}.txt"
        out.write_text(f"{os.getpid()} {','.join(context.partition_keys)}", encoding="utf-8")

    @dg.asset
    def broken() -> None:
        raise RuntimeError("this asset always breaks")

    @dg.asset
    def killed() -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # as kill -9 from outside, or the OOM killer

    @dg.asset
    def warehouse_gone() -> None:
        with psycopg.connect(os.environ["RUNNER_TEST_PG_URL"], connect_timeout=5):
            pass

    return dg.Definitions(
        assets=[marked, broken, killed, warehouse_gone],
        jobs=[
            dg.define_asset_job("marked_job", [marked]),
            dg.define_asset_job("broken_job", [broken]),
            dg.define_asset_job("killed_job", [killed]),
            dg.define_asset_job("warehouse_job", [warehouse_gone]),
        ],
    )


def _range(first: str, last: str) -> dict[str, str]:
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    environment = {"DAGSTER_HOME": str(tmp_path / "dagster"), "RUNNER_TEST_DIR": str(tmp_path / "out")}
    Path(environment["DAGSTER_HOME"]).mkdir()
    (tmp_path / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n", encoding="utf-8")
    Path(environment["RUNNER_TEST_DIR"]).mkdir()
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    yield environment


def test_a_pool_runs_a_stages_runs_in_its_workers_on_the_callers_instance(home: dict[str, str]) -> None:
    report = PipelineReport()
    said: list[str] = []
    with WorkerPool(2, tiny_definitions, home) as pool, dg.DagsterInstance.get() as instance:
        started = {future.result() for future in pool.warm()}
        _stage(
            pool,
            [("marked_job", _range("2026-10-01", "2026-10-02")), ("marked_job", _range("2026-10-03", "2026-10-03"))],
            report,
            said.append,
        )
        runs = instance.get_runs()
    out = Path(home["RUNNER_TEST_DIR"])
    first = (out / "2026-10-01.txt").read_text(encoding="utf-8").split()
    second = (out / "2026-10-03.txt").read_text(encoding="utf-8").split()
    assert first[1] == "2026-10-01,2026-10-02" and second[1] == "2026-10-03"
    assert os.getpid() not in {int(first[0]), int(second[0])} | started  # in the workers
    assert [job for job, ok, _ in report.runs] == ["marked_job", "marked_job"] and report.success
    assert len(runs) == 2 and all(run.is_success for run in runs)  # in the caller's Dagster instance
    assert said[0] == "running marked_job [2026-10-01 .. 2026-10-02]" and "done in" in said[-1]


@pytest.mark.parametrize("pooled", [False, True], ids=["in_process", "pool"])
def test_a_failed_run_fails_its_stage_after_the_others_finish(home: dict[str, str], pooled: bool) -> None:
    report = PipelineReport()
    with dg.DagsterInstance.get() as instance, WorkerPool(2, tiny_definitions, home) as pool:
        runner = pool if pooled else InProcess(tiny_definitions(), instance)
        with pytest.raises(RuntimeError, match=r"broken_job failed .*this asset always breaks"):
            _stage(runner, [("broken_job", None), ("marked_job", _range("2026-10-01", "2026-10-01"))], report, print)
    assert [(job, ok) for job, ok, _ in report.runs] == [("broken_job", False), ("marked_job", True)]
    assert (Path(home["RUNNER_TEST_DIR"]) / "2026-10-01.txt").exists()


def test_a_worker_killed_under_its_run_fails_the_run_with_a_sentence(home: dict[str, str]) -> None:
    with WorkerPool(1, tiny_definitions, home) as pool, dg.DagsterInstance.get() as instance:
        outcome = pool.submit("killed_job", None).result()
        assert not outcome.success
        assert outcome.failures == ("a worker process died while running killed_job (killed, or out of memory)",)
        (record,) = instance.get_run_records()
        run = record.dagster_run
        assert run.status == dg.DagsterRunStatus.STARTED  # what `resight run` clears next time
        assert run.tags[HOST_TAG] == socket.gethostname()
        assert run.tags[PROCESS_TAG].partition("@")[0] != str(os.getpid())  # the worker's


def test_a_step_that_lost_the_warehouse_says_so(
    home: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://resight:secret@127.0.0.1:{port}/resight"
    monkeypatch.setenv("RUNNER_TEST_PG_URL", url)
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_PG_URL": url})
    with dg.DagsterInstance.get() as instance:
        outcome = InProcess(tiny_definitions(), instance).submit("warehouse_job", None).result()
        broken = InProcess(tiny_definitions(), instance).submit("broken_job", None).result()
    assert not outcome.success and outcome.traces
    down = service_down_in_traces(outcome.traces, settings)
    assert down is not None
    assert down.sentence().startswith(
        f"the warehouse (Postgres, RESIGHT_PG_URL) at postgresql://resight:***@127.0.0.1:{port}/resight"
        " cannot be reached or went away: "
    )
    assert service_down_in_traces(broken.traces, settings) is None  # a bug is not a service down
