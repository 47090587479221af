"""Spark Connect for real: a local server from the pyspark wheel, the engine resource pointed at it,
a Narwhals group-by (and the ``with_dollars`` kernel) run through it equal to the same on Polars, and
the lake written and read through it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import narwhals as nw
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines.connect import _group_alive, _listening, connect_script, start_connect_server
from resight_platform.io import lake
from resight_platform.io.storage import open_store
from resight_platform_tests.engines.connect_client import TABLE, revenue_by_provider, sample

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.xdist_group("spark")
def test_a_narwhals_group_by_through_spark_connect_equals_polars(tmp_path: Path) -> None:
    if connect_script() is None:
        pytest.skip("pyspark's sbin/start-connect-server.sh is absent (the spark extra is not installed)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java on this machine: the Spark Connect server needs a JRE (Java 17)")
    server = start_connect_server(conf={"spark.sql.shuffle.partitions": "2", "spark.driver.memory": "768m"})
    try:
        assert server.url == f"sc://127.0.0.1:{server.port}"
        out, lake_dir = tmp_path / "result.parquet", tmp_path / "lake"
        client = subprocess.run(
            [
                sys.executable,
                "-m",
                "resight_platform_tests.engines.connect_client",
                server.url,
                str(out),
                str(lake_dir),
            ],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            timeout=300,
        )
        assert client.returncode == 0, client.stderr[-4000:] + server.log_tail()
        assert "session pyspark.sql.connect.session" in client.stdout
    finally:
        server.stop()
    # Gone: no process of the server's group left and its port closed.
    assert not _group_alive(server.process.pid) and not _listening(server.host, server.port)
    assert not server.directory.exists()
    expected = nw.to_native(revenue_by_provider(nw.from_native(sample().lazy()))).collect()
    got = pl.read_parquet(out)
    assert got.height == 4
    assert_frame_equal(got, expected)
    # The lake written through the server reads back with the Polars lake reader, row for row.
    rows = sample()
    pawmart = rows.filter(pl.col("source") == "pawmart")
    assert f"read back {pawmart.height}" in client.stdout
    written = lake.read_all(open_store(str(lake_dir)), TABLE).collect()
    assert written.schema == rows.drop("date", "source").schema
    assert_frame_equal(written.sort(written.columns), rows.drop("date", "source").sort(written.columns))
