"""bench.engines.silver_cost runs end to end on a small frame: both revisions clean it the same."""

from __future__ import annotations

import json
from pathlib import Path

from bench.engines.silver_cost import main


def test_silver_cost_compares_the_revisions_on_identical_outputs(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    main(["--rows", "3000", "--repeat", "1", "--before", "HEAD", "--out", str(out)])  # HEAD: any clone has it
    report = json.loads(out.read_text())
    assert report["rows"] == 3000 and report["providers"] > 1
    assert report["outputs_identical"] is True
    assert report["before_seconds"] > 0 and report["after_seconds"] > 0
