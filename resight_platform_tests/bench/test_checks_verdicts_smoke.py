"""Smoke test of the check-verdicts benchmark: a few partitions, one repeat, both cases."""

from __future__ import annotations

import json
from pathlib import Path

from bench.checks.verdicts import main


def test_the_verdicts_benchmark_marks_exactly_the_failing_partitions(tmp_path: Path) -> None:
    figures = main(["--partitions", "20", "--repeat", "1", "--output", str(tmp_path / "r.json")])
    by_case = {s["case"]: s for s in figures["summary"]}
    assert (
        by_case["one partition failing"]["failing_rows"],
        by_case["one partition failing"]["partitions_marked"],
    ) == (
        1,
        1,
    )
    assert by_case["every partition failing"]["partitions_marked"] == 20
    assert all(s["median_seconds"] > 0 for s in figures["summary"])
    assert json.loads((tmp_path / "r.json").read_text())["summary"] == figures["summary"]
