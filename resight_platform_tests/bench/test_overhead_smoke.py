"""Smoke test of the orchestration-overhead benchmark (issue 3): one repeat on the real Postgres."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.overhead.run import main, to_markdown


@pytest.mark.xdist_group("bench")
def test_overhead_benchmark_measures_every_side(fresh_pg_url: str, tmp_path: Path) -> None:
    results = main(
        [
            "--repeat", "1", "--pg-url", fresh_pg_url, "--home", str(tmp_path / "home"),
            "--output", str(tmp_path / "o.json"),
        ]
    )  # fmt: skip
    assert results["rows"] > 100
    for key in ("plain_seconds", "dagster_in_process_seconds", "fresh_plain_seconds", "fresh_dagster_seconds"):
        assert results[key] > 0, key
    assert (tmp_path / "o.json").exists()
    assert "overhead of a launched run" in to_markdown(results)
