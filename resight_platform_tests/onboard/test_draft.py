"""A partner's draft built feed by feed in one ``--out`` directory, loaded by the registry loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resight_platform.onboard.columns import load_knowledge
from resight_platform.onboard.draft import Draft, DraftError, write_draft
from resight_platform.onboard.suggest import Suggestion, suggest
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, Registry, load_registry

SALES = (
    "Order No;Line;Sale Date;Store;Item;Qty;Price;Status\n"
    "A-1;1;13.02.2026 14:05;12;SKU-1;2;12.99;Sold\n"
    "A-2;1;14.02.2026 09:30;7;SKU-2;1;4.50;completed\n"
)
CATALOG_CSV = (
    "Item,Description,Brand,Dept,Animal,Retail,Currency\n"
    "SKU-1,Chew Bone,Nylabone,treats,Canine,12.99,CAD\n"
    "SKU-2,Fish Flakes,Tetra,food,Aquatic,4.50,CAD\n"
)
CATALOG_JSONL = "".join(
    json.dumps(r) + "\n"
    for r in (
        {"Item": "SKU-1", "Description": "Chew Bone", "Animal": "Canine", "Retail": "12.99"},
        {"Item": "SKU-2", "Description": "Fish Flakes", "Animal": "Aquatic", "Retail": "4.50"},
    )
)


@pytest.fixture(scope="module")
def base() -> Registry:
    return load_registry(DEFAULT_REGISTRY_DIR)


def _suggest(base: Registry, path: Path, provider: str, feed: str) -> Suggestion:
    return suggest([path], provider, feed, base=base, knowledge=load_knowledge(mappings=base.mappings))


def _write(base: Registry, suggestion: Suggestion, out: Path) -> Draft:
    return write_draft(suggestion, out, base_dir=DEFAULT_REGISTRY_DIR, base=base, name="Two Feeds", every_hours=24)


def test_feeds_join_one_draft(tmp_path: Path, base: Registry) -> None:
    out = tmp_path / "draft"
    sales, catalog = tmp_path / "sales.csv", tmp_path / "catalog.csv"
    sales.write_text(SALES, encoding="utf-8")
    catalog.write_text(CATALOG_CSV.replace(",", ";"), encoding="utf-8")
    first = _write(base, _suggest(base, sales, "two_feeds", "sales"), out)
    assert first.issues == [] and first.feeds == ["sales"]
    second = _write(base, _suggest(base, catalog, "two_feeds", "catalog"), out)
    assert second.issues == [] and second.feeds == ["sales", "catalog"]
    assert second.notes == ["provider currency: 'USD' -> 'CAD' (a column of currency codes says CAD)"]

    merged = load_registry(second.registry_dir)
    profile = merged.profiles["two_feeds"]
    assert set(profile.feeds) == {"sales", "catalog"}
    assert (profile.delimiter, profile.datetime_format, profile.channel) == (";", "%d.%m.%Y %H:%M", "store")
    assert profile.feeds["catalog"].columns == {
        "Item": "sku",
        "Description": "product_name",
        "Brand": "brand",
        "Dept": "category",
        "Animal": "species",
        "Retail": "list_price",
    }
    assert merged.providers["two_feeds"].currency == "CAD"
    assert {s.feed for s in merged.sources_for("two_feeds")} == {"sales", "catalog"}
    sold = merged.value_maps.resolve("status", "two_feeds", "sales", "Sold")
    assert sold is not None and sold.value == "completed"  # the sales feed's value map is kept

    # The same feed again replaces its own part only.
    again = _write(base, _suggest(base, sales, "two_feeds", "sales"), out)
    assert again.feeds == ["sales", "catalog"] and again.issues == []
    text = (out / "profiles.yaml").read_text(encoding="utf-8")
    assert text.count("      sales:") == 1 and "# catalog from catalog.csv" in text


def test_a_feed_in_another_format_or_dialect(tmp_path: Path, base: Registry) -> None:
    out = tmp_path / "draft"
    sales, catalog_json, catalog_csv = tmp_path / "sales.csv", tmp_path / "catalog.jsonl", tmp_path / "c.csv"
    sales.write_text(SALES, encoding="utf-8")
    catalog_json.write_text(CATALOG_JSONL, encoding="utf-8")
    catalog_csv.write_text(CATALOG_CSV, encoding="utf-8")
    _write(base, _suggest(base, sales, "mixed_feeds", "sales"), out)
    draft = _write(base, _suggest(base, catalog_json, "mixed_feeds", "catalog"), out)
    assert draft.issues == []
    assert draft.notes == ["the catalog files are jsonl, the profile's csv: sources.csv gives catalog its own"]
    merged = load_registry(draft.registry_dir)
    catalog = merged.source("mixed_feeds", "catalog")
    assert catalog is not None and catalog.format == "jsonl" and catalog.profile.format == "csv"

    draft = _write(base, _suggest(base, catalog_csv, "mixed_feeds", "catalog"), out)
    assert any(n.startswith("CONFLICT: the catalog files' delimiter is ','") for n in draft.notes)


def test_another_partners_draft_is_left_alone(tmp_path: Path, base: Registry) -> None:
    out = tmp_path / "draft"
    sales = tmp_path / "sales.csv"
    sales.write_text(SALES, encoding="utf-8")
    _write(base, _suggest(base, sales, "first_partner", "sales"), out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    with pytest.raises(DraftError, match="holds the draft of 'first_partner'"):
        _write(base, _suggest(base, sales, "second_partner", "sales"), out)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
