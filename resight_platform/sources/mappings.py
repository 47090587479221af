"""Mapping tables that standardise partner values: species, categories, brands, status, channels,
units, currencies and state → region. Lookups are on a normalised alias (lower case, single spaces).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from pathlib import Path

__all__ = ["DEFAULT_MAPPINGS_DIR", "Mappings", "load_mappings", "normalise_alias"]

DEFAULT_MAPPINGS_DIR = Path(__file__).parent / "mappings"
_SPACES = re.compile(r"\s+")


def normalise_alias(value: str) -> str:
    """The form aliases are matched in: trimmed, lower case, runs of white space as one space."""
    return _SPACES.sub(" ", value.strip().lower())


@dataclass(frozen=True)
class Mappings:
    species: dict[str, str]
    categories: dict[str, str]
    status: dict[str, str]
    channels: dict[str, str]
    units: dict[str, str]
    brands: dict[str, tuple[str, str]]
    usd_per_unit: dict[str, Decimal]
    regions: dict[str, str]


def _pairs(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [{k: v.strip() for k, v in row.items()} for row in csv.DictReader(handle)]


@cache
def load_mappings(directory: Path = DEFAULT_MAPPINGS_DIR) -> Mappings:
    """Load every mapping table in ``directory``; aliases are stored normalised."""

    def simple(name: str, value: str) -> dict[str, str]:
        return {normalise_alias(r["alias"]): r[value] for r in _pairs(directory / name)}

    return Mappings(
        species=simple("species.csv", "species"),
        categories=simple("categories.csv", "category"),
        status=simple("status.csv", "status"),
        channels=simple("channels.csv", "channel"),
        units=simple("units.csv", "unit"),
        brands={normalise_alias(r["alias"]): (r["brand"], r["manufacturer"]) for r in _pairs(directory / "brands.csv")},
        usd_per_unit={r["currency"]: Decimal(r["usd_per_unit"]) for r in _pairs(directory / "fx_rates.csv")},
        regions={r["state"]: r["region"] for r in _pairs(directory / "regions.csv")},
    )
