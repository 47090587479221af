"""Smoke test of the S3 read benchmark: a tiny partition, one repeat, both readers."""

from __future__ import annotations

import json
from pathlib import Path

from bench.s3_read.run import QUERIES, READERS, main


def test_s3_read_benchmark_runs_both_readers_on_every_query(tmp_path: Path) -> None:
    figures = main(["--rows", "20000", "--repeat", "1", "--output", str(tmp_path / "r.json")])
    assert figures["rows"] == 20_000
    assert {(row["query"], row["reader"]) for row in figures["summary"]} == {(q, r) for q in QUERIES for r in READERS}
    answers = {(run["query"], run["reader"]): run["answer"] for run in figures["runs"]}
    assert answers[("sum_one_column", "polars_s3")] == answers[("sum_one_column", "fetch_whole")] > 20_000
    assert all(run["seconds"] > 0 for run in figures["runs"])
    assert json.loads((tmp_path / "r.json").read_text())["summary"] == figures["summary"]
