"""Smoke test of the peak-day throughput benchmark (issue 3) at a tiny size, every side of it run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.throughput.run import main, summarise, to_markdown


@pytest.mark.xdist_group("bench")
def test_throughput_benchmark_runs_every_side_and_checks_the_manifest(fresh_pg_url: str, tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    results = main(
        [
            "--lines", "20000", "--scale", "1", "--pandas-scales", "1", "--providers", "12",
            "--workdir", str(tmp_path / "work"), "--pg-url", fresh_pg_url, "--output", str(output),
        ]
    )  # fmt: skip

    assert json.loads(output.read_text())["summary"] == results["summary"]
    (size,) = results["sizes"]
    figures = summarise(size)
    # The run itself checked gold.fact_sales against the manifest; the figures say so too.
    assert figures["fact_rows"] == size["valid_sales_lines"] > 15_000
    for key in ("whole_day_seconds", "bronze_seconds", "silver_seconds", "fact_sales_seconds", "pg_load_seconds",
                "raw_copy_seconds", "copy_ratio", "peak_rss_gib", "pandas_seconds", "pandas_speedup"):  # fmt: skip
        assert isinstance(figures[key], float) and figures[key] > 0, (key, figures[key])
    assert size["platform"]["raw_copy"]["rows"] == figures["fact_rows"]
    assert size["platform"]["raw_copy_bare"]["rows"] == figures["fact_rows"]
    assert figures["raw_copy_bare_seconds"] > 0 and figures["bare_copy_ratio"] > 0
    # The pandas peer saw the same files and quarantined the same rows as the platform.
    peer = size["pandas"]["report"]
    assert peer["feeds"]["sales"]["rows_loaded"] == size["valid_sales_lines"]
    assert "speed-up vs pandas" in to_markdown(results)
