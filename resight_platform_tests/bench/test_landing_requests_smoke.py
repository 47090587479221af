"""Smoke test of the landing request benchmark (issue 20, points 2 and 5) at its tiniest: 8 and 80
registered sources on the moto server, both paths side by side, requests counted for real."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.landing.requests import main, to_markdown


def test_event_ticks_stay_flat_while_listing_ticks_grow_with_the_registry(
    pg_server_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESIGHT_WATCH_EVENTS_WAIT_SECONDS", "0")  # an empty receive answers at once
    output = tmp_path / "requests.json"
    results = main(
        ["--sources", "8", "80", "--files", "2", "--idle-ticks", "1", "--history-sources", "8",
         "--history-days", "3", "--home", str(tmp_path / "home"), "--pg-url", pg_server_url, "--output", str(output)]
    )  # fmt: skip

    assert json.loads(output.read_text(encoding="utf-8"))["sizes"] == results["sizes"]
    small, large = results["sizes"]
    assert (small["sources"], large["sources"]) == (8, 80)
    assert small["bucket_objects"] == 8 * 3

    # The listing path lists every registered source's hot window on every tick: ten times the
    # sources, ten times the listings. The event path's idle tick is one receive, whatever the registry.
    assert small["idle"]["listing"]["requests"]["LIST"] == 8
    assert large["idle"]["listing"]["requests"]["LIST"] == 80
    assert small["idle"]["events"]["requests"] == large["idle"]["events"]["requests"] == {"ReceiveMessage": 1}
    assert large["idle"]["events"]["total"] <= small["idle"]["events"]["total"]

    for size in (small, large):
        tick = size["files"]["2"]
        # Both new files are requested on both paths; the event path pays one HEAD per file and one
        # delete per ten messages, and lists nothing (its sweep is not due).
        assert tick["listing"]["files_requested"] == tick["events"]["files_requested"] == 2
        assert tick["distinct_sources"] == 2 and tick["left_in_queue"] == 0
        assert tick["events"]["requests"] == {"ReceiveMessage": 1, "HEAD": 2, "DeleteMessageBatch": 1}
        assert tick["listing"]["requests"]["LIST"] == size["sources"]
        # A sweep of the event path reads the bucket once: its pages, one receive per tick.
        assert size["events_sweep"]["pages"] == size["events_sweep"]["expected_pages"] == 1
        listing, events = size["per_day"]["listing"], size["per_day"]["events"]
        # Per file (the K=2 tick less the idle one, halved): a HEAD and half a delete.
        assert events["requests_per_file"] == {"HEAD": 1.0, "DeleteMessageBatch": 0.5}
        assert abs(listing["requests"]["LIST"] - listing["ticks_per_day"] * size["sources"]) <= size["sources"]
        assert events["dollars_total"] < listing["dollars_total"]
    assert large["per_day"]["listing"]["total"] > 5 * small["per_day"]["listing"]["total"]
    assert large["per_day"]["events"]["total"] == small["per_day"]["events"]["total"]
    assert "| 80 | events | 1 (ReceiveMessage 1) |" in to_markdown(results)
