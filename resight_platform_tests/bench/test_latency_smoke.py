"""Smoke test of the latency benchmark's tick mode (issue 4) at a small size on a local directory."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from bench.latency.run import main, tick_benchmark, to_markdown
from resight_platform.io.postgres import connect


def test_tick_requests_every_new_file_exactly_once(fresh_pg_url: str, tmp_path: Path) -> None:
    files = 200
    result = tick_benchmark(str(tmp_path / "landing"), fresh_pg_url, tmp_path / "home", files, days=2)

    for key in ("write_s", "warm_tick_s", "tick_s", "second_tick_s"):
        assert isinstance(result[key], float) and result[key] >= 0, (key, result[key])
    assert result["landing"] == "local" and result["files"] == files
    assert result["files_requested"] == files
    assert result["runs_requested"] == result["load_runs"] >= 1 and result["dead_letter_runs"] == 0
    assert result["warm_tick_runs_requested"] == 0
    assert result["ledger_rows"] == result["ledger_queued"] == files
    assert result["ledger_keys_match_files"] and result["ledger_run_keys_requested"]
    assert result["second_tick_runs_requested"] == 0  # everything known: nothing asked twice

    with connect(fresh_pg_url) as conn:
        rows = conn.execute("select file_key, status, run_key from ops.ingestion_ledger").fetchall()
    assert max(Counter(key for key, _, _ in rows).values()) == 1  # one ledger row, one run key per file
    assert {status for _, status, _ in rows} == {"queued"}
    assert all(run_key for _, _, run_key in rows)


def test_tick_mode_command_writes_results(pg_server_url: str, tmp_path: Path) -> None:
    output = tmp_path / "results-tick.json"
    results = main(
        ["--tick-files", "60", "--tick-days", "1", "--home", str(tmp_path / "home"), "--pg-url", pg_server_url,
         "--output", str(output)]
    )  # fmt: skip

    assert json.loads(output.read_text())["backends"] == results["backends"]
    assert results["mode"] == "tick" and results["machine"]["cpus"] >= 1 and results["command"]
    (local,) = results["backends"]
    assert local["files_requested"] == 60 and local["second_tick_runs_requested"] == 0
    assert "| local | 60 |" in to_markdown(results)
