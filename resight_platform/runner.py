"""Where the batch pipeline's Dagster runs execute: in this process, one after the other, or in a
pool of worker processes, runs that do not depend on each other side by side.

A run is mostly single-threaded Python (Dagster's bookkeeping, the per-partition loop), so on a
machine of two cores one process leaves a core idle while it runs. ``pipeline.run_pipeline`` hands
each stage's independent runs (the medallion rectangles, the facts rectangles, the daily mart, the
monthly marts and the ML job) to a runner; :class:`WorkerPool` executes them in
``Settings.pipeline_workers`` processes that each import the package and build the definitions
once, against the same Dagster instance and warehouse as the calling process. Runs of one stage
write disjoint partitions (the planner's rectangles do not overlap), and loads of one day's fact
rows take the day's lock (``io.postgres.lock_day``), so side by side they give what one after the
other gives.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Protocol

import dagster as dg

from resight_platform.recovery import process_tags
from resight_platform.services import ErrorTrace

__all__ = ["InProcess", "RunOutcome", "Runner", "WorkerPool"]


@dataclass(frozen=True)
class RunOutcome:
    """What became of one run: its job, success, wall and CPU seconds, id and first failures."""

    job: str
    success: bool
    seconds: float
    cpu_seconds: float
    run_id: str
    failures: tuple[str, ...] = field(default=())
    #: The errors of the failed steps, as the event log keeps them (which service went away).
    traces: tuple[ErrorTrace, ...] = field(default=())


class Runner(Protocol):
    #: How many runs it executes side by side (the planner cuts the work to keep them all busy).
    workers: int

    def submit(self, job: str, tags: Mapping[str, str] | None) -> Future[RunOutcome]:
        """Start ``job`` with ``tags`` (a partition range), or queue it; its outcome when done."""
        ...


def _execute(
    defs: dg.Definitions, instance: dg.DagsterInstance, job: str, tags: Mapping[str, str] | None
) -> RunOutcome:
    started, cpu = time.perf_counter(), time.process_time()
    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance,
        # The host and process executing the run: if it is killed, the next `resight run` sees
        # the process gone and marks the run failed (recovery.fail_dead_runs).
        tags={**(tags or {}), **process_tags()},
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    failed = [event for event in result.all_events if event.is_failure]
    traces = tuple(
        _trace(event.step_failure_data.error)
        for event in failed
        if event.is_step_failure and event.step_failure_data.error is not None
    )
    return RunOutcome(
        job,
        result.success,
        time.perf_counter() - started,
        time.process_time() - cpu,
        result.run_id,
        tuple(_failure(event) for event in failed)[:3],
        traces,
    )


def _trace(error: Any) -> ErrorTrace:
    """Dagster's serialised error (and what it was raised from or during) as an ErrorTrace."""
    parent = error.cause or error.context
    return ErrorTrace(
        error.cls_name or "", error.message, "".join(error.stack), _trace(parent) if parent is not None else None
    )


def _failure(event: dg.DagsterEvent) -> str:
    """A failure event's message, with the error that caused a step's failure."""
    if event.is_step_failure and event.step_failure_data.error is not None:
        error = event.step_failure_data.error
        cause = error.cause.message.strip() if error.cause is not None else ""
        return f"{event.message} {error.message.strip()}" + (f" ({cause})" if cause else "")
    return str(event.message)


class InProcess:
    """Each run executes at once, here: the caller waits for it."""

    workers = 1

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance

    def submit(self, job: str, tags: Mapping[str, str] | None) -> Future[RunOutcome]:
        future: Future[RunOutcome] = Future()
        try:
            future.set_result(_execute(self.defs, self.instance, job, tags))
        except BaseException as error:  # the caller sees it through the future, as from a pool
            future.set_exception(error)
        return future


# --- the worker processes -----------------------------------------------------------------------

_worker: tuple[dg.Definitions, dg.DagsterInstance] | None = None


def _start_worker(
    environment: Mapping[str, str], build: Callable[[], dg.Definitions], setup: Callable[[], None] | None
) -> None:
    """In a new worker: the caller's environment (Dagster's instance, the settings), its
    ``setup`` (e.g. warning filters), the definitions and the instance, once for every run."""
    global _worker
    os.environ.update(environment)
    if setup is not None:
        setup()
    instance = dg.DagsterInstance.get()
    # One process, many runs: a small pool of storage connections (see cli._run_platform).
    instance.optimize_for_webserver(statement_timeout=0, pool_recycle=3600, max_overflow=4)
    _worker = (build(), instance)


def _run_in_worker(job: str, tags: Mapping[str, str] | None) -> RunOutcome:
    assert _worker is not None, "worker not started"
    defs, instance = _worker
    return _execute(defs, instance, job, tags)


def _ready() -> int:
    return os.getpid()


class WorkerPool:
    """``workers`` processes (started, not forked: the caller holds threads and connections)
    that execute runs side by side. ``build`` makes the definitions in a worker; it must be a
    module-level function (it is pickled), e.g. ``functools.partial(build_definitions, settings,
    pg_url)``; ``setup``, if given, runs first in each worker (module-level too). The workers start
    importing at once (:meth:`warm`), while the caller does other work."""

    def __init__(
        self,
        workers: int,
        build: Callable[[], dg.Definitions],
        environment: Mapping[str, str],
        setup: Callable[[], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(dict(environment), build, setup),
        )

    def warm(self) -> list[Future[int]]:
        """Start every worker now (each imports the package and builds the definitions)."""
        return [self._pool.submit(_ready) for _ in range(self.workers)]

    def submit(self, job: str, tags: Mapping[str, str] | None) -> Future[RunOutcome]:
        """The run's outcome; a worker that died under it (killed, out of memory) fails it with a
        sentence saying so instead of raising (the run, still STARTED in Dagster, is marked failed
        by the next `resight run`: :func:`~resight_platform.recovery.fail_dead_runs`)."""
        started = time.perf_counter()
        outcome: Future[RunOutcome] = Future()

        def done(future: Future[RunOutcome]) -> None:
            if future.cancelled():
                outcome.cancel()
                return
            error = future.exception()
            if error is None:
                outcome.set_result(future.result())
            elif isinstance(error, BrokenProcessPool):
                reason = f"a worker process died while running {job} (killed, or out of memory)"
                outcome.set_result(RunOutcome(job, False, time.perf_counter() - started, 0.0, "unknown", (reason,)))
            else:
                outcome.set_exception(error)

        self._pool.submit(_run_in_worker, job, dict(tags) if tags else None).add_done_callback(done)
        return outcome

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
