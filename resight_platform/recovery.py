"""What a killed ``resight run`` leaves behind, cleared by the next one: its Dagster runs, still
STARTED in the instance's run storage, and its temporary files.

Dagster's run monitoring (``dagster.yaml``) watches the runs the daemon launched; runs executed in
a process of their own (``resight run`` / ``resight demo``, :mod:`resight_platform.runner`) have
no launcher to ask, and a ``kill -9`` leaves them STARTED for ever. So each such run is tagged
with the host and the process that executes it (:func:`process_tags`: the pid and, on Linux, the
process's start time since boot, so that a pid used again after a restart is not taken for the
dead one), and :func:`fail_dead_runs` marks failed every unfinished run tagged with this host
whose process is gone: ``resight run``, ``resight demo``, ``resight daemon`` and ``resight dev``
call it as they start, the hourly housekeeping job too.

Then, when no run of the instance is in progress any more, every temporary file of the local lake
and of the spool directory older than that moment belongs to a dead writer (a writer's run is in
progress as long as it writes): :func:`sweep_when_idle` removes them at once, without the
housekeeping sweep's six hours of grace.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg

from resight_platform.io.storage import ObjectStore
from resight_platform.io.sweep import SweepReport, sweep_orphans

__all__ = ["HOST_TAG", "PROCESS_TAG", "DeadRun", "fail_dead_runs", "process_tags", "sweep_when_idle"]

#: The host whose process executes the run (``socket.gethostname()``).
HOST_TAG = "resight/host"
#: That process: ``{pid}`` or, where ``/proc`` says when it started, ``{pid}@{start}``.
PROCESS_TAG = "resight/process"

_UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]
#: Runs that may have a writer at work (a run not started yet has none).
_WRITING = _UNFINISHED[1:]


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _process(pid: int) -> str | None:
    """``{pid}@{boot id}:{start time in clock ticks since boot}`` of a live process, ``{pid}`` where
    /proc cannot say; ``None`` when no process has this pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        stat = ""
    if stat:
        # The command name (field 2) is in parentheses and may hold spaces: fields after its end.
        fields = stat[stat.rindex(")") + 2 :].split()
        boot = _boot_id()
        if len(fields) > 19 and boot:
            return f"{pid}@{boot}:{fields[19]}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, someone else's
        pass
    return str(pid)


def process_tags() -> dict[str, str]:
    """Tags naming this host and this process, for a run executed here."""
    return {HOST_TAG: socket.gethostname(), PROCESS_TAG: _process(os.getpid()) or str(os.getpid())}


def _gone(process: str) -> bool:
    """Whether the process a run was tagged with no longer runs (its pid unused, or used by
    another process since)."""
    pid_text = process.partition("@")[0]
    if not pid_text.isdigit():
        return False  # not ours to judge
    now = _process(int(pid_text))
    if now is None:
        return True
    # A tag with a start time is compared whole; a pid alone cannot be told from its reuse.
    return "@" in process and "@" in now and now != process


@dataclass(frozen=True)
class DeadRun:
    """A run marked failed because the process executing it was gone."""

    run_id: str
    job: str
    process: str


def fail_dead_runs(instance: dg.DagsterInstance, by: str) -> list[DeadRun]:
    """Mark failed every unfinished run of ``instance`` tagged with this host whose process is
    gone, with a message saying so and naming ``by`` (who noticed: ``resight run``, ...)."""
    host = socket.gethostname()
    dead = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=_UNFINISHED, tags={HOST_TAG: host})):
        run = record.dagster_run
        process = run.tags.get(PROCESS_TAG, "")
        if not _gone(process):
            continue
        instance.report_run_failed(
            run,
            f"The process that executed this run ({process.partition('@')[0]} on {host}) is gone: it was"
            f" killed (kill -9, out of memory) or its machine restarted. Marked failed by {by}"
            f" (pid {os.getpid()}); running the job again redoes its partitions.",
        )
        dead.append(DeadRun(run.run_id, run.job_name, process))
    return dead


def sweep_when_idle(
    instance: dg.DagsterInstance, lake: ObjectStore, spool_dirs: Sequence[Path] = ()
) -> SweepReport | None:
    """When no run of ``instance`` is in progress, remove the temporary files of the local lake and
    of ``spool_dirs`` last written before now (their writers are dead); ``None`` when a run is in
    progress (the hourly sweep's grace then applies). The system's temporary directory is left to
    the hourly sweep: other programs' runs may write there."""
    checked = datetime.now(UTC)
    if instance.get_runs_count(dg.RunsFilter(statuses=_WRITING)):
        return None
    return sweep_orphans(lake, timedelta(0), checked, spool_dirs=spool_dirs, system_temp=False)
