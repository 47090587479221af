"""Recovery from killed processes on a real Dagster instance and a real local lake: runs whose
process is gone are marked failed with a message, others are left alone; temporary files are
swept only when no run is in progress, and only those written before."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from resight_platform.io.storage import LocalStore
from resight_platform.recovery import HOST_TAG, PROCESS_TAG, fail_dead_runs, process_tags, sweep_when_idle


@dg.op
def _noop() -> None:
    return None


@dg.job
def _job() -> None:
    _noop()


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster")) as instance:
        yield instance


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, tags: dict[str, str]) -> str:
    return instance.create_run_for_job(_job, status=status, tags=tags).run_id


def _status(instance: dg.DagsterInstance, run_id: str) -> dg.DagsterRunStatus:
    run = instance.get_run_by_id(run_id)
    assert run is not None
    return run.status


def test_a_run_whose_process_is_gone_is_marked_failed_and_no_other(instance: dg.DagsterInstance) -> None:
    host, dead = socket.gethostname(), _dead_pid()
    mine = process_tags()
    assert mine[HOST_TAG] == host and mine[PROCESS_TAG].partition("@")[0] == str(os.getpid())
    if "@" not in mine[PROCESS_TAG]:
        pytest.skip("no /proc here: a pid alone cannot tell a reused pid from its first process")
    started = dg.DagsterRunStatus.STARTED
    alive = _run(instance, started, mine)
    gone = _run(instance, started, {HOST_TAG: host, PROCESS_TAG: str(dead)})
    # This very pid, started at another time: the pid was used again after the run's process died.
    reused = _run(instance, started, {HOST_TAG: host, PROCESS_TAG: f"{os.getpid()}@boot:1"})
    elsewhere = _run(instance, started, {HOST_TAG: f"not-{host}", PROCESS_TAG: str(dead)})
    untagged = _run(instance, started, {})
    finished = _run(instance, dg.DagsterRunStatus.SUCCESS, {HOST_TAG: host, PROCESS_TAG: str(dead)})

    failed = fail_dead_runs(instance, "the test")
    assert sorted(d.run_id for d in failed) == sorted([gone, reused])
    assert {run: _status(instance, run) for run in (alive, gone, reused, elsewhere, untagged, finished)} == {
        alive: started,
        gone: dg.DagsterRunStatus.FAILURE,
        reused: dg.DagsterRunStatus.FAILURE,
        elsewhere: started,  # another host's process: not this one's to judge
        untagged: started,  # a daemon-launched run: Dagster's run monitoring watches it
        finished: dg.DagsterRunStatus.SUCCESS,
    }
    (failure,) = instance.all_logs(gone, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert f"The process that executed this run ({dead} on {host}) is gone" in failure.message
    assert "Marked failed by the test" in failure.message
    assert fail_dead_runs(instance, "the test") == []  # once


def test_temporary_files_are_swept_only_when_no_run_is_in_progress(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    lake, spool = tmp_path / "lake", tmp_path / "spool"
    part = lake / "silver" / "sales" / "date=2026-10-01" / ".part-abc.resight-tmp"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"half a parquet file")
    spool.mkdir()
    (spool / "resight-spool-xyz").write_bytes(b"a landing file's copy")
    kept = lake / "silver" / "sales" / "date=2026-10-01" / "part-0.parquet"
    kept.write_bytes(b"the partition")
    newer = lake / "gold" / ".part-new.resight-tmp"  # written after the check: a writer's at work
    newer.parent.mkdir(parents=True)
    newer.write_bytes(b"")
    later = time.time() + 3600
    os.utime(newer, (later, later))

    running = _run(instance, dg.DagsterRunStatus.STARTED, process_tags())
    assert sweep_when_idle(instance, LocalStore(lake), [spool]) is None  # a run is in progress
    assert part.exists()
    run = instance.get_run_by_id(running)
    assert run is not None
    instance.report_run_failed(run)
    report = sweep_when_idle(instance, LocalStore(lake), [spool])
    assert report is not None
    assert sorted(report.removed) == sorted([str(part), str(spool / "resight-spool-xyz")])
    assert kept.exists() and newer.exists()
