"""Postgres stopped in the middle of a `resight run` (the facts of a day copied, not committed),
then started again by the next `resight run`: the first ends with one sentence naming the
warehouse (exit 3, the full trace in the log), the second loads gold equal to the manifest.

The warehouse's server is the test's own (an embedded one in the test's home), never the
session's; Dagster's storage is on the session's server (RESIGHT_DAGSTER_PG_URL), so the run's
failure is recorded. The embedded default, Dagster's storage on the server that stops too, is
``bench/faults/run.py``'s scenario (bench/RESULTS.md, "Faults"), kept out of `make test` for its
CPU; its sentence is ``test_services``'."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.faults.scenarios import PATIENCE_SECONDS, prepare
from resight_platform.io.postgres import ensure_database, sqlalchemy_url, stop_embedded_pg


@pytest.fixture
def own_root() -> Iterator[Path]:
    """A directory for a home with an embedded server of this test's own, outside pytest's tmp tree
    (see ``conftest.embedded_pg_dir``); the server stopped and everything removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix="resight-faults-"))
    yield root
    stop_embedded_pg(root / "home" / "pg")
    shutil.rmtree(root, ignore_errors=True)


def test_postgres_stopped_mid_run_is_one_sentence_and_the_rerun_loads_everything(
    own_root: Path, fresh_pg_url: str
) -> None:
    dagster = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
    platform = prepare(own_root, {"RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster)})
    process = platform.pause_at("fact_sales_copy")
    assert stop_embedded_pg(platform.home / "pg")
    os.kill(process.pid, signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=PATIENCE_SECONDS)
    assert process.returncode == 3, stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    log = platform.home / "logs" / "resight.log"
    assert errors == [stderr.strip().splitlines()[-1]]  # one sentence, last
    (sentence,) = errors
    assert sentence.startswith(
        f"error: the warehouse (Postgres, RESIGHT_PG_URL) at the embedded server in {platform.home / 'pg'}"
        " cannot be reached or went away: "
    )
    assert "; gold_facts_job failed (run " in sentence  # the run's failure was recorded
    assert sentence.endswith(f"(full trace in {log})")
    assert "OperationalError" in log.read_text()  # the step's error, whole

    rerun = platform.run()  # starts the embedded server again
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = platform.state()
    assert after.differences(platform.manifest) == []
    assert after.runs.get("FAILURE") == 1
