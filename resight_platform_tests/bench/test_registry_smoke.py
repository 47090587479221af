"""Smoke test of the registry benchmark (issue 15): a small large registry, one repeat."""

from __future__ import annotations

import json
from pathlib import Path

from bench.registry.run import build_registry, main, to_markdown
from resight_platform.sources.registry import load_registry


def test_built_registry_is_valid_and_scoped(tmp_path: Path) -> None:
    mapped = build_registry(tmp_path / "registry", providers=50, mapped_share=0.1)
    registry = load_registry(tmp_path / "registry")
    assert len(registry.providers) == 50 and len(registry.sources) == 200
    assert len(mapped) == 5 and registry.value_maps.providers() == set(mapped)
    assert registry.sources[(mapped[0], "catalog")].defaults == {"category": "supplies"}


def test_registry_benchmark_measures_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "r.json"
    results = main(
        ["--providers", "80", "--repeat", "1", "--rows", "500", "--tick-files", "3", "--output", str(output)]
    )
    assert json.loads(output.read_text(encoding="utf-8")) == results
    assert (results["sources"], results["packaged_sources"], results["mapped_providers"]) == (320, 140, 8)
    assert results["value_map_rows"] == 8 * 8
    for key in ("load_packaged_seconds", "load_large_seconds", "lookups_seconds", "clean_with_maps_seconds"):
        assert results[key] > 0, key
    assert results["loaded_with_maps"] > results["loaded_without_maps"] > 0
    assert results["tick_packaged_requested"] == results["tick_large_requested"] == 3
    assert results["tick_packaged_seconds"] > 0 and results["tick_large_seconds"] > 0
    assert "load + validate" in to_markdown(results) and "landing tick" in to_markdown(results)
