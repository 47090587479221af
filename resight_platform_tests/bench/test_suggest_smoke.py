"""Smoke test of the suggest benchmark (issue 17): three of the generator's partners, one day."""

from __future__ import annotations

import json
from pathlib import Path

from bench.suggest.run import main


def test_suggest_benchmark_compares_every_source(tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    rows = main(["--providers", "3", "--days", "1", "--out", str(output)])
    assert json.loads(output.read_text(encoding="utf-8")) == rows
    assert {r["provider"] for r in rows} == {"pawmart", "petopia", "barkbox_market"}
    assert {r["feed"] for r in rows} == {"sales", "catalog", "stores", "customers"}
    for row in rows:
        assert row["columns_right"] == row["columns"] != 0, row
        assert row["formats_right"] == row["formats"] != 0, row
