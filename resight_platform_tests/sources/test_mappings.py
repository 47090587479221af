"""The mapping tables that standardise partner values."""

from __future__ import annotations

import csv
import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from resight_platform.sources.mappings import DEFAULT_MAPPINGS_DIR, Mappings, load_mappings, normalise_alias, vocabulary
from resight_platform.sources.registry import load_registry

SPECIES = {"dog", "cat", "bird", "fish", "small_animal", "reptile", "other"}
CATEGORIES = {"food", "treats", "litter", "toys", "health", "supplies", "grooming"}
STATUSES = {"completed", "cancelled", "returned"}
CHANNELS = {"store", "online"}
UNITS = {"lb", "oz", "kg", "g", "ct", "l", "ml"}
REGIONS = {"Northeast", "Midwest", "South", "West"}
STATES = {
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS", "KY",
    "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY", "NC", "ND",
    "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
}  # fmt: skip

SIMPLE_TABLES = {
    "species": ("species.csv", "species", SPECIES),
    "categories": ("categories.csv", "category", CATEGORIES),
    "status": ("status.csv", "status", STATUSES),
    "channels": ("channels.csv", "channel", CHANNELS),
    "units": ("units.csv", "unit", UNITS),
}


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


def raw_rows(name: str) -> list[dict[str, str]]:
    with (DEFAULT_MAPPINGS_DIR / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("dog", "dog"),
        ("  Dry   Food ", "dry food"),
        ("\tSMALL\n animal\r\n", "small animal"),
        ("Hill's\u00a0Science Diet", "hill's science diet"),  # non-breaking space is white space
        ("", ""),
        ("   ", ""),
        ("E-Commerce", "e-commerce"),
    ],
)
def test_normalise_alias(value: str, expected: str) -> None:
    assert normalise_alias(value) == expected
    assert normalise_alias(expected) == expected  # idempotent


def test_normalise_alias_is_idempotent_on_every_table_alias() -> None:
    for file_name in ["brands.csv", *(spec[0] for spec in SIMPLE_TABLES.values())]:
        for row in raw_rows(file_name):
            once = normalise_alias(row["alias"])
            assert normalise_alias(once) == once


@pytest.mark.parametrize("table", sorted(SIMPLE_TABLES))
def test_every_alias_maps_to_a_canonical_value(mappings: Mappings, table: str) -> None:
    file_name, column, canonical = SIMPLE_TABLES[table]
    loaded: dict[str, str] = getattr(mappings, table)
    rows = raw_rows(file_name)
    assert loaded, table
    assert set(loaded.values()) == canonical  # every canonical value is reachable, nothing else
    for key in loaded:
        assert key == normalise_alias(key)
    for row in rows:
        assert loaded[normalise_alias(row["alias"])] == row[column].strip()
    for value in canonical:
        assert loaded[value] == value  # a canonical value is an alias of itself
    # No alias listed twice with different targets (a later row would silently win).
    targets: dict[str, set[str]] = {}
    for row in rows:
        targets.setdefault(normalise_alias(row["alias"]), set()).add(row[column].strip())
    assert {alias: t for alias, t in targets.items() if len(t) > 1} == {}


def test_spot_checks(mappings: Mappings) -> None:
    assert mappings.species[normalise_alias("  K9 ")] == "dog"
    assert mappings.species["feline"] == "cat"
    assert mappings.categories[normalise_alias("Flea & Tick")] == "health"
    assert mappings.status["x"] == "cancelled"
    assert mappings.status["refunded"] == "returned"
    assert mappings.channels[normalise_alias("E-Commerce")] == "online"
    assert mappings.channels["pos"] == "store"
    assert mappings.units["litre"] == "l"
    assert "unknown thing" not in mappings.categories


def test_brands(mappings: Mappings) -> None:
    rows = raw_rows("brands.csv")
    assert len(mappings.brands) == len(rows)
    for row in rows:
        assert mappings.brands[normalise_alias(row["alias"])] == (row["brand"], row["manufacturer"])
    for brand, manufacturer in mappings.brands.values():
        assert brand and manufacturer
        assert brand == " ".join(brand.split())
        # the canonical spelling is itself an alias of the brand
        assert mappings.brands[normalise_alias(brand)] == (brand, manufacturer)
    assert mappings.brands[normalise_alias("HILLS  SCIENCE DIET")] == ("Hill's Science Diet", "Hill's Pet Nutrition")
    assert mappings.brands["pro plan"] == ("Purina Pro Plan", "Nestle Purina")
    # one manufacturer per brand
    by_brand: dict[str, set[str]] = {}
    for brand, manufacturer in mappings.brands.values():
        by_brand.setdefault(brand, set()).add(manufacturer)
    assert all(len(m) == 1 for m in by_brand.values())


def test_fx_rates(mappings: Mappings) -> None:
    assert mappings.usd_per_unit["USD"] == Decimal("1")
    assert mappings.usd_per_unit["CAD"] == Decimal("0.73")
    assert all(isinstance(r, Decimal) and r > 0 for r in mappings.usd_per_unit.values())
    currencies = {p.currency for p in load_registry().providers.values()}
    assert currencies <= set(mappings.usd_per_unit), "a provider's currency has no fx rate"


def test_regions_cover_50_states_and_dc(mappings: Mappings) -> None:
    assert set(mappings.regions) == STATES | {"DC"}
    assert len(mappings.regions) == 51
    assert set(mappings.regions.values()) == REGIONS
    assert mappings.regions["CA"] == "West"
    assert mappings.regions["NY"] == "Northeast"
    assert mappings.regions["TX"] == "South"
    assert mappings.regions["IL"] == "Midwest"
    assert mappings.regions["DC"] == "South"
    assert "PR" not in mappings.regions


def test_load_mappings_normalises_aliases_from_another_directory(tmp_path: Path) -> None:
    directory = tmp_path / "mappings"
    shutil.copytree(DEFAULT_MAPPINGS_DIR, directory)
    with (directory / "species.csv").open("a", encoding="utf-8") as handle:
        handle.write("  Guinea   PIG ,small_animal\n")
    loaded = load_mappings(directory)
    assert loaded.species["guinea pig"] == "small_animal"
    assert "guinea pig" not in load_mappings().species


def test_vocabularies_are_defined_once_by_the_packaged_tables() -> None:
    from resight_platform.ml import features
    from resight_platform.sample import catalogue
    from resight_platform.schemas import silver

    words = vocabulary()
    assert words == load_mappings() == load_mappings(DEFAULT_MAPPINGS_DIR)
    assert words.ordered("species") == ("dog", "cat", "bird", "fish", "small_animal", "reptile", "other")
    assert words.ordered("categories")[-1] == "other" and words.canonical("categories") == set(
        words.ordered("categories")
    )
    assert words.ordered("regions") == ("Northeast", "Midwest", "South", "West")
    assert features.SPECIES == catalogue.SPECIES == words.ordered("species")
    assert features.CATEGORIES == words.ordered("categories") == (*catalogue.CATEGORIES, "other")
    assert (*words.ordered("regions"), "Unknown") == features.REGIONS
    assert set(silver.SPECIES) == set(words.ordered("species"))
    assert set(silver.STATES) == words.canonical("states") and len(silver.STATES) == 51
