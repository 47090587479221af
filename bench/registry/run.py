"""Issue 15: the registry at 12,000 sources, with value maps.

Builds a registry directory of ``--providers`` partners × 4 feeds (3,000 × 4 = 12,000 sources by
default) from the packaged one: its profiles and mapping tables, the providers cycling through its
profiles and timezones, and for ``--mapped-share`` of them (10 %) their own value maps (statuses, a
status pattern, species, units, a brand, a state spelling, a sales channel) and a catalog default.
Then, ``--repeat`` times each, median reported:

- **load + validate** the packaged registry (140 sources) and the large one (``load_registry``:
  every file read, every check run);
- **scoped lookups** for a silver frame of ``--frame-providers`` mapped partners: what silver asks
  the registry for (``ValueMaps.lookup`` of every map for the frame's providers);
- **clean** a bronze sales frame of ``--rows`` lines of those partners with the large registry,
  against the same frame with the value maps removed (the scoped maps' cost in silver);
- **a landing-sensor tick** with each registry (``io/watch.list_landing`` + ``plan_tick``, what
  the sensor does between loading the registry and writing the ledger) over a local landing
  directory holding ``--tick-files`` new files today: the hot window lists one folder per
  registered source, so this is the part of a tick that grows with the registry.

    .venv/bin/python -m bench.registry.run                       # 3,000 providers, 3 repeats
    .venv/bin/python -m bench.registry.run --providers 300 --repeat 1
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine

__all__ = ["build_registry", "main", "to_markdown"]

RESULTS_PATH = Path(__file__).with_name("results.json")
FEEDS = ("sales", "catalog", "stores", "customers")
DAY = date(2026, 10, 1)


def _write(path: Path, columns: Sequence[str], rows: Sequence[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns))
        writer.writeheader()
        writer.writerows(rows)


def _mapped(index: int, share: float) -> bool:
    """Every ``1/share``-th provider has its own value maps (10 % by default)."""
    return share > 0 and index % max(1, round(1 / share)) == 0


def build_registry(directory: Path, providers: int, mapped_share: float) -> list[str]:
    """Write a registry of ``providers`` partners × 4 feeds in ``directory`` (the packaged
    profiles and mapping tables); return the slugs of the partners with value maps."""
    from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, load_registry

    packaged = load_registry()
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    templates = [packaged.providers[slug] for slug in packaged.provider_slugs()]
    provider_rows, source_rows, map_rows, value_rows = [], [], [], []
    mapped: list[str] = []
    for index in range(providers):
        template = templates[index % len(templates)]
        slug = f"partner_{index:05d}"
        provider_rows.append(
            {
                "provider": slug,
                "name": f"Partner {index}",
                "kind": template.kind,
                "profile": template.profile,
                "timezone": template.timezone,
                "currency": template.currency,
            }
        )
        for feed in FEEDS:
            every = "24" if feed in ("sales", "customers") else "168"
            source_rows.append({"provider": slug, "feed": feed, "format": "", "expected_every_hours": every})
        if not _mapped(index, mapped_share):
            continue
        mapped.append(slug)
        for feed, map_name, alias, value, match, extra in (
            ("", "status", "SOLD", "completed", "", ""),
            ("", "status", "RTN", "returned", "", ""),
            ("sales", "status", f"r{index % 10}[0-9]*", "returned", "regex", ""),
            ("", "species", "doggo", "dog", "", ""),
            ("", "units", "EA", "ct", "", ""),
            ("", "brands", f"hb{index}", "Happy Bowl", "", "Happy Bowl Foods"),
            ("", "states", "California", "CA", "", ""),
            ("sales", "channels", "kiosk", "store", "", ""),
        ):
            map_rows.append(
                {
                    "provider": slug,
                    "feed": feed,
                    "map": map_name,
                    "alias": alias,
                    "value": value,
                    "match": match,
                    "extra": extra,
                }
            )
        value_rows.append(
            {"provider": slug, "feed": "catalog", "column": "category", "kind": "default", "value": "supplies"}
        )
    _write(directory / "providers.csv", ["provider", "name", "kind", "profile", "timezone", "currency"], provider_rows)
    for row in source_rows:
        row["active"] = "true"
    _write(directory / "sources.csv", ["provider", "feed", "format", "expected_every_hours", "active"], source_rows)
    _write(directory / "value_maps.csv", ["provider", "feed", "map", "alias", "value", "match", "extra"], map_rows)
    _write(directory / "source_values.csv", ["provider", "feed", "column", "kind", "value"], value_rows)
    return mapped


def _sales_frame(providers: Sequence[str], rows: int) -> Any:
    """A bronze sales frame (standard CSV layout, as bronze writes it) of ``rows`` lines spread over
    ``providers``, with statuses, channels and states their value maps know."""
    import polars as pl

    from resight_platform.transforms.bronze import bronze_schema

    statuses = ["SOLD", "RTN", "r42", "completed", "returned"]
    channels = ["kiosk", "store", "online"]
    data = {
        "order_id": [f"O{i}" for i in range(rows)],
        "line_no": ["1"] * rows,
        "ordered_at": ["2026-10-01T10:00:00"] * rows,
        "store_id": ["S1"] * rows,
        "channel": [channels[i % 3] for i in range(rows)],
        "sku": [f"SKU-{i % 500}" for i in range(rows)],
        "quantity": ["2"] * rows,
        "unit_price": ["12.50"] * rows,
        "discount": [""] * rows,
        "customer_id": [""] * rows,
        "status": [statuses[i % 5] for i in range(rows)],
        "ship_state": ["California"] * rows,
        "_provider": [providers[i % len(providers)] for i in range(rows)],
        "_feed": ["sales"] * rows,
        "_business_date": [DAY] * rows,
        "_source_file": [f"{providers[i % len(providers)]}/sales/{DAY}/sales.csv" for i in range(rows)],
        "_row_number": list(range(1, rows + 1)),
        "_ingested_at": [datetime(2026, 10, 2, tzinfo=UTC)] * rows,
    }
    return pl.DataFrame(data, schema=bronze_schema("sales"))


def _median_seconds(work: Callable[[], Any], repeat: int) -> tuple[float, list[float]]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples), samples


def _tick_seconds(registry: Any, landing: Path, files: int, repeat: int) -> tuple[float, int]:
    """Median seconds of one tick's listing and planning over ``files`` new sales files of the
    first registered providers, landed today in ``landing``; and how many files the plan requests."""
    from resight_platform.io.storage import open_store
    from resight_platform.io.watch import WatchCursor, list_landing, plan_tick
    from resight_platform.settings import WatchSettings

    today = datetime.now(UTC).date()
    slugs = registry.provider_slugs()[:files]
    for slug in slugs:
        folder = landing / slug / "sales" / today.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sales.csv").write_text("order_id\n1\n", encoding="utf-8")
    store = open_store(str(landing))
    order = [f"{provider}|{feed}" for provider, feed in sorted(registry.sources)]
    source_of = {provider: f"{provider}|{feed}" for provider, feed in registry.sources}
    settings = WatchSettings()

    def tick() -> int:
        listed, cursor = list_landing(store, registry, WatchCursor(), today, settings)
        plan = plan_tick(
            store=store,
            registry=registry,
            listed=listed,
            ledger={},
            launched_run_keys=set(),
            cursor=cursor,
            source_order=order,
            source_of=source_of,
            first_day=date(2025, 1, 1),
            today=today,
            now=datetime.now(UTC),
            settings=settings,
        )
        return plan.requested_files

    requested = tick()
    seconds, _ = _median_seconds(tick, repeat)
    return seconds, requested


def run_benchmark(
    providers: int, mapped_share: float, frame_providers: int, rows: int, repeat: int, tick_files: int = 20
) -> dict[str, Any]:
    from resight_platform.sources.registry import load_registry
    from resight_platform.sources.value_maps import SCOPED_MAPS, ValueMaps
    from resight_platform.transforms.silver import clean_feed

    with tempfile.TemporaryDirectory(prefix="resight-registry-") as tmp:
        directory = Path(tmp) / "registry"
        mapped = build_registry(directory, providers, mapped_share)
        packaged = load_registry()
        large = load_registry(directory)
        packaged_s, packaged_samples = _median_seconds(load_registry, repeat)
        large_s, large_samples = _median_seconds(lambda: load_registry(directory), repeat)
        registry_bytes = sum(p.stat().st_size for p in directory.rglob("*") if p.is_file())
        tick_packaged_s, tick_packaged_files = _tick_seconds(
            packaged, Path(tmp) / "landing-packaged", tick_files, repeat
        )
        tick_large_s, tick_large_files = _tick_seconds(large, Path(tmp) / "landing-large", tick_files, repeat)

    in_frame = [slug for slug in mapped if large.providers[slug].profile == "standard_csv"][:frame_providers]
    if not in_frame:
        raise ValueError("no mapped partner with the standard_csv profile: raise --providers or --mapped-share")
    lookups_s, _ = _median_seconds(
        lambda: [large.value_maps.lookup(name, "sales", in_frame) for name in SCOPED_MAPS], max(repeat, 5)
    )
    frame = _sales_frame(in_frame, rows)
    now = datetime(2026, 10, 2, tzinfo=UTC)
    unmapped = dataclasses.replace(large, value_maps=ValueMaps())
    with_maps = clean_feed("sales", frame, registry=large, mappings=large.mappings, now=now)
    without = clean_feed("sales", frame, registry=unmapped, mappings=unmapped.mappings, now=now)
    clean_maps_s, _ = _median_seconds(
        lambda: clean_feed("sales", frame, registry=large, mappings=large.mappings, now=now), repeat
    )
    clean_plain_s, _ = _median_seconds(
        lambda: clean_feed("sales", frame, registry=unmapped, mappings=unmapped.mappings, now=now), repeat
    )
    return {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": machine(),
        "providers": len(large.providers),
        "sources": len(large.sources),
        "packaged_sources": len(packaged.sources),
        "packaged_providers": len(packaged.providers),
        "mapped_providers": len(mapped),
        "value_map_rows": len(large.value_maps),
        "registry_bytes": registry_bytes,
        "load_packaged_seconds": packaged_s,
        "load_large_seconds": large_s,
        "lookups_seconds": lookups_s,
        "frame_providers": len(in_frame),
        "frame_rows": rows,
        "loaded_with_maps": with_maps.valid.height,
        "loaded_without_maps": without.valid.height,
        "clean_with_maps_seconds": clean_maps_s,
        "clean_without_maps_seconds": clean_plain_s,
        "tick_files": tick_files,
        "tick_packaged_seconds": tick_packaged_s,
        "tick_large_seconds": tick_large_s,
        "tick_packaged_requested": tick_packaged_files,
        "tick_large_requested": tick_large_files,
        "samples": {"load_packaged": packaged_samples, "load_large": large_samples},
    }


def to_markdown(results: dict[str, Any]) -> str:
    r = results
    lines = [
        "| figure | packaged registry | large registry | target |",
        "|---|---:|---:|---|",
        f"| sources (providers) | {r['packaged_sources']:,} ({r['packaged_providers']}) | {r['sources']:,} "
        f"({r['providers']:,}) | 12,000+ |",
        f"| scoped value-map rows (providers with maps) | 0 | {r['value_map_rows']:,} ({r['mapped_providers']:,}) | |",
        f"| load + validate, median | {r['load_packaged_seconds']:.3f} s | {r['load_large_seconds']:.3f} s | |",
        f"| scoped lookups of every map for a frame of {r['frame_providers']} partners | | "
        f"{r['lookups_seconds'] * 1000:.3f} ms | flat in registered sources |",
        f"| clean {r['frame_rows']:,} sales lines of those partners, with their maps | | "
        f"{r['clean_with_maps_seconds']:.3f} s ({r['loaded_with_maps']:,} loaded) | |",
        f"| same frame, value maps removed | | {r['clean_without_maps_seconds']:.3f} s "
        f"({r['loaded_without_maps']:,} loaded) | |",
        f"| landing tick (list + plan), {r['tick_files']} new files, local landing, median | "
        f"{r['tick_packaged_seconds']:.3f} s | {r['tick_large_seconds']:.3f} s | < 10 s |",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench.registry.run", description=__doc__.split("\n")[0])
    parser.add_argument("--providers", type=int, default=3_000, help="partners; each has the 4 feeds")
    parser.add_argument("--mapped-share", type=float, default=0.1, help="share of partners with value maps")
    parser.add_argument("--frame-providers", type=int, default=5, help="mapped partners in the silver frame")
    parser.add_argument("--rows", type=int, default=200_000, help="sales lines in the silver frame")
    parser.add_argument("--tick-files", type=int, default=20, help="new files landed for the tick")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)
    results = run_benchmark(
        args.providers, args.mapped_share, args.frame_providers, args.rows, args.repeat, args.tick_files
    )
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(to_markdown(results))
    return results


if __name__ == "__main__":
    main()
