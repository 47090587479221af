"""Postgres stopped in the middle of a `resight run` (the facts of a day copied, not committed),
then started again by the next `resight run`: the first ends with one sentence naming the
warehouse (exit 3, the full trace in the log), the second loads gold equal to the manifest.

The server is the test's own (an embedded one in the test's home), never the session's: once
holding the warehouse and Dagster's storage (the default, `resight demo`'s), once the warehouse
alone (Dagster's storage on the session's server, as with RESIGHT_DAGSTER_PG_URL)."""

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


@pytest.mark.parametrize("dagster_storage", ["on-the-same-server", "elsewhere"])
def test_postgres_stopped_mid_run_is_one_sentence_and_the_rerun_loads_everything(
    own_root: Path, fresh_pg_url: str, dagster_storage: str
) -> None:
    env = {}
    if dagster_storage == "elsewhere":
        dagster = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
        env["RESIGHT_DAGSTER_PG_URL"] = sqlalchemy_url(dagster)
    platform = prepare(own_root, env)
    process = platform.pause_at("fact_sales_copy")
    assert stop_embedded_pg(platform.home / "pg")
    os.kill(process.pid, signal.SIGCONT)
    stdout, stderr = process.communicate(timeout=PATIENCE_SECONDS)
    assert process.returncode == 3, stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    log = platform.home / "logs" / "resight.log"
    assert errors == [stderr.strip().splitlines()[-1]]  # one sentence, last
    (sentence,) = errors
    expected = (
        "error: the warehouse's Postgres server (RESIGHT_PG_URL; Dagster's storage is its `dagster` database)"
        if dagster_storage == "on-the-same-server"
        else "error: the warehouse (Postgres, RESIGHT_PG_URL)"
    )
    assert sentence.startswith(f"{expected} at the embedded server in {platform.home / 'pg'} cannot be reached")
    assert sentence.endswith(f"(full trace in {log})")
    assert "Traceback" in log.read_text()
    if dagster_storage == "elsewhere":
        assert "gold_facts_job failed (run " in sentence  # the run's failure was recorded

    rerun = platform.run()  # starts the embedded server again
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    after = platform.state()
    assert after.differences(platform.manifest) == []
    assert after.runs.get("FAILURE") == 1
