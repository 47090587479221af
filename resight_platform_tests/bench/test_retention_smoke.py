"""Smoke test of the retention benchmark: a small calendar, one catch-up run and one daily run."""

from __future__ import annotations

import json
from pathlib import Path

from bench.retention.run import main


def test_retention_benchmark_catches_up_then_retires_a_day(tmp_path: Path, pg_server_url: str) -> None:
    figures = main(
        [
            "--days",
            "92",
            "--sources",
            "1",
            "--files",
            "1",
            "--steady-days",
            "1",
            "--pg-url",
            pg_server_url,
            "--output",
            str(tmp_path / "r.json"),
        ]
    )
    catch_up, daily = figures["runs"]
    # 92 days as of the day after: the 2 days before the 90-day cutoff go (their landing file and
    # bronze), then one more day.
    assert (catch_up["by_layer"]["landing"], catch_up["by_layer"]["bronze"]) == (2, 2)
    assert (daily["by_layer"]["landing"], daily["by_layer"]["bronze"], daily["by_layer"]["silver"]) == (1, 1, 0)
    assert figures["retention_log_rows"] == catch_up["objects_deleted"] + daily["objects_deleted"]
    assert daily["list_requests"] >= 2
    assert json.loads((tmp_path / "r.json").read_text())["runs"] == figures["runs"]
