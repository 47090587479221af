"""kill -9 at three points of a real `resight run` (its own process, on a small generated sample),
then the next `resight run`: gold equals the manifest, no temporary file is left, no run is left
STARTED. The process stops itself at the failpoint (``RESIGHT_FAILPOINTS=point:pause``) and the
test kills it from outside, after looking at what it holds at that moment."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bench.faults.scenarios import Platform, kill, prepare
from resight_platform.io.postgres import ensure_database, sqlalchemy_url


@pytest.fixture
def platform(tmp_path: Path, fresh_pg_url: str) -> Platform:
    """A sample of two partners' day in a home of its own, the warehouse in a fresh database and
    Dagster's storage beside it."""
    dagster = ensure_database(fresh_pg_url, urlsplit(fresh_pg_url).path.lstrip("/") + "_dagster")
    return prepare(tmp_path, {"RESIGHT_PG_URL": fresh_pg_url, "RESIGHT_DAGSTER_PG_URL": sqlalchemy_url(dagster)})


@pytest.mark.parametrize(
    "point",
    [
        "silver_write",  # silver's partition file written beside the old one, not swapped in
        "dim_product_upsert",  # the products upserted, the transaction not committed
        "fact_sales_copy",  # a day's fact rows copied into its staging table, not committed
    ],
)
def test_a_run_killed_at_a_point_is_recovered_by_the_next(platform: Platform, point: str) -> None:
    process = platform.pause_at(point)
    if point == "silver_write":
        lake_parts = [p for p in platform.debris() if "/lake/silver/" in p]
        assert lake_parts, "silver's part file should be on disk at the kill"
    kill(process)
    killed = platform.state()
    assert killed.runs.get("STARTED") == 1  # what the kill leaves in Dagster's run storage

    rerun = platform.run()
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "was left STARTED by a process that is gone: marked failed" in rerun.stdout
    after = platform.state()
    assert after.differences(platform.manifest) == []
    assert after.runs.get("FAILURE") == 1  # the killed one, with a message saying why
    (message,) = platform.dead_run_messages()
    assert "killed (kill -9, out of memory)" in message and "Marked failed by resight run" in message
