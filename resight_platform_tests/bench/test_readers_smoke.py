"""Smoke test of the readers benchmark (issue 19) at 2,000 lines, and of its cost script at 3 days."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.readers import cost
from bench.readers.run import main


@pytest.mark.xdist_group("bench")
def test_readers_benchmark_measures_every_writer(
    pg_server_url: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "results.json"
    result = main(["--lines", "2000", "--pg-url", pg_server_url, "--output", str(output)])
    assert json.loads(output.read_text())["results"] == result["results"]
    assert [row["writer"] for row in result["results"]] == ["old", "new", "mart"]
    for row in result["results"]:
        assert row["lines"] == 2200 and row["reader_queries"] >= 1
        assert 0 <= row["p95_wait_seconds"] <= row["worst_wait_seconds"]
    cost.main(["--pg-url", pg_url, "--days", "3", "--rounds", "1"])
    printed = capsys.readouterr().out
    assert "round 1 old: wall add" in printed and "round 1 new: wall add" in printed
