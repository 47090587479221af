"""Smoke test of the public-datasets suggest benchmark (issue 17) on the two files already in the
venv (matplotlib's Stocks.csv, scikit-learn's wine_data.csv): no network, the wheel datasets are
skipped for want of a cached wheel."""

from __future__ import annotations

import json
from pathlib import Path

from bench.suggest.public import DATASETS, run


def test_public_benchmark_on_the_installed_files(tmp_path: Path) -> None:
    output = tmp_path / "public.json"
    rows = run(cache=tmp_path / "no-wheels", out=output)
    assert json.loads(output.read_text(encoding="utf-8")) == rows
    by_name = {str(r["dataset"]): r for r in rows}
    assert set(by_name) == {d.name for d in DATASETS}
    wheel_datasets = {d.name for d in DATASETS if d.requirement is not None}
    for name in wheel_datasets:
        assert "run with --fetch first" in str(by_name[name]["skipped"])

    stocks = by_name["mpl_stocks"]  # a '# Data source' line before the header; not a feed
    assert (stocks["records"], stocks["columns_right"], stocks["columns"]) == (524, 10, 11)
    assert stocks["columns_wrong"] == ["Date->ordered_at (no canonical column)"]
    assert (stocks["formats_right"], stocks["formats"]) == (3, 3)
    assert (stocks["blockers_expected_said"], stocks["blockers_expected"]) == (2, 2)
    assert any("1 line(s) before the header" in b for b in stocks["blockers"])  # type: ignore[attr-defined]

    wine = by_name["sklearn_wine"]  # a shape line where the header should be; not a feed
    assert (wine["records"], wine["columns"], wine["columns_wrong"]) == (179, 0, [])
    assert (wine["formats_right"], wine["formats"]) == (3, 3)
    assert (wine["blockers_expected_said"], wine["blockers_expected"], len(wine["blockers"])) == (2, 2, 5)  # type: ignore[arg-type]
    assert wine["unknown_values"] == stocks["unknown_values"] == 0
