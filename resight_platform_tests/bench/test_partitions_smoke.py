"""Smoke test of the partition-scale benchmark (issue 3) at a tiny size on the real Postgres."""

from __future__ import annotations

from pathlib import Path

from bench.partitions.run import ROWS, main, to_markdown


def test_partition_benchmark_produces_every_figure(pg_server_url: str, tmp_path: Path) -> None:
    output = tmp_path / "results.json"
    results = main(
        ["--sources-per-model", "10", "40", "--days", "5", "--pg-url", pg_server_url, "--output", str(output)]
    )

    assert output.exists()
    models = {m["model"]: m for m in results["models"]}
    assert set(models) == {"provider", "feed"}
    for name, sources in (("provider", 10), ("feed", 40)):
        figures = models[name]
        for key, _label in ROWS:
            assert isinstance(figures[key], int | float), (name, key)
            assert figures[key] > 0, (name, key, figures[key])
        assert figures["sources"] == sources
        assert figures["partitions_per_bronze_silver_asset"] == sources * 5
        assert figures["partitions_per_gold_asset"] == 5
        assert figures["partition_keys_by_dimension"] == {"date": 5, "source": sources}
        assert figures["num_materialized"] == figures["seeded_materializations"]
        assert figures["backfill_one_day_all_sources_partitions"] == sources * 8
        assert figures["backfill_one_source_all_days_partitions"] == 5 * 8
    assert "source = feed" in to_markdown(results)
