"""Smoke test of the closing job benchmark at a tiny size on the real Postgres: after the
platform's own closing job, exactly the planned gaps the rules can see stay missing, and a second
run closes nothing."""

from __future__ import annotations

import json
from pathlib import Path

from bench.partitions.closing_job import main


def test_the_closing_job_leaves_exactly_the_judged_gaps(pg_server_url: str, tmp_path: Path) -> None:
    output = tmp_path / "closing_job.json"
    results = main(
        ["--providers", "12", "--days", "10", "--gap-rate", "0.1", "--pg-url", pg_server_url, "--output", str(output)]
    )
    f = json.loads(output.read_text())["figures"]
    assert f == results["figures"]
    assert sum(f["gaps_judged"].values()) > 0, "a 10% gap rate should lose some judged days"
    for layer in ("bronze", "silver"):
        for feed, gaps in f["gaps_judged"].items():
            assert f["missing_after"][f"{layer}/{feed}"] == gaps, (layer, feed)
    assert f["missing_after"]["gold/fact_sales"] == f["gaps_judged"]["sales"]
    assert f["first_closed"] > 0 and f["second_closed"] == 0
