"""Smoke test of the preview benchmark (issue 17) at 2,000 lines: both sides run, their counts agree
and are the bad lines the file was made with."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from bench.preview.run import BAD_SHARES, main, make_file, summarise, to_markdown
from resight_platform.io.postgres import database_url


@pytest.mark.xdist_group("bench")
def test_preview_benchmark_counts_match_the_real_run(pg_server_url: str, tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    result = main(
        ["--lines", "2000", "--workdir", str(tmp_path / "work"), "--pg-url", pg_server_url, "--output", str(output)]
    )

    assert json.loads(output.read_text())["summary"] == result["summary"] == summarise(result)
    (preview,), (real,) = result["preview"], result["real"]
    injected = result["file"]["injected"]
    assert injected == {kind: int(2000 * share) for kind, share in BAD_SHARES.items()}
    # The run quarantined exactly the lines made bad, each by its rule, and the preview said so.
    expected_rules = {
        "unknown_status": injected["unknown_status"],
        "unparseable_price": injected["unparseable_price"],
        "duplicate": injected["duplicate_line"],
    }
    assert real["quarantined_by_rule"] == preview["quarantined_by_rule"] == expected_rules
    bad = sum(injected.values())
    assert real["counts"] == {
        "files": 1,
        "rows_in": 2000,
        "rows_loaded": 2000 - bad,
        "rows_quarantined": bad,
        "files_dead_lettered": 0,
    }
    assert preview["counts"] == real["counts"]
    assert real["silver_lake_rows"] == 2000 - bad
    assert preview["exit_code"] == 1  # rows would be lost: the quarantine
    for side in (preview, real):
        assert side["wall_seconds"] > 0 and side["peak_rss_bytes"] > 50 * 2**20, side
    assert real["steps"]["medallion_job"]["bronze__sales"] > 0 and real["steps"]["medallion_job"]["silver__sales"] > 0
    table = to_markdown(result)
    assert "| rows loaded | 1,988 | 1,988 |" in table and "peak RSS of the process" in table
    # The run's databases were dropped.
    with psycopg.connect(database_url(pg_server_url, "postgres")) as conn:
        left = conn.execute("select datname from pg_database where datname like 'pbench_%'").fetchall()
    assert left == []


def test_the_file_is_the_same_for_a_seed_and_reused(tmp_path: Path) -> None:
    first = make_file(tmp_path / "a", 500, seed=3)
    again = make_file(tmp_path / "a", 500, seed=3)
    other = make_file(tmp_path / "b", 500, seed=3)
    assert not first["reused"] and again["reused"]
    assert Path(first["path"]).read_bytes() == Path(other["path"]).read_bytes()
    assert first["lines"] == 500 == len(Path(first["path"]).read_text().splitlines()) - 1
    assert Path(first["path"]).relative_to(tmp_path / "a").parts == (
        "landing",
        "pawmart",
        "sales",
        "2025-11-28",
        "big.csv",
    )
    assert make_file(tmp_path / "a", 500, seed=4)["reused"] is False
