"""The global mapping tables of the registry (``mappings/*.csv`` in the registry directory): species,
categories, brands, status, channels, units, currencies and state -> region, and the plausibility
ceilings of a sales line per category (``ceilings.csv``). Lookups are on a normalised alias (lower
case, single spaces).

These tables also define the platform's vocabularies: the canonical species, categories, statuses,
channels, units, states and regions are the values the packaged tables map to (``vocabulary()``),
which the silver schemas, the features and the sample generator read. Another registry (a
production copy, ``RESIGHT_REGISTRY_DIR``) may add aliases but not canonical values: a new species
is a change of the platform's schema, made in the package.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

from resight_platform.sources.issues import Reader, RegistryError, RegistryIssue, read_csv

__all__ = [
    "ANY_CATEGORY",
    "DEFAULT_CEILING",
    "DEFAULT_MAPPINGS_DIR",
    "MAPPED_TABLES",
    "Ceiling",
    "Mappings",
    "load_mappings",
    "normalise_alias",
    "read_mappings",
    "vocabulary",
]

DEFAULT_MAPPINGS_DIR = Path(__file__).parent / "registry" / "mappings"
_SPACES = re.compile(r"\s+")
_STATE = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")

#: The alias -> canonical value tables: table name -> its file's value column.
MAPPED_TABLES: Mapping[str, str] = {
    "species": "species",
    "categories": "category",
    "status": "status",
    "channels": "channel",
    "units": "unit",
}


#: The ``category`` of ``ceilings.csv``'s row that holds the ceiling of every other category.
ANY_CATEGORY = "*"


@dataclass(frozen=True)
class Ceiling:
    """The most a line may plausibly hold: units of one product, and USD per unit."""

    max_quantity: int
    max_unit_price: Decimal

    @property
    def max_unit_cents(self) -> int:
        return int(self.max_unit_price * 100)


#: The ceiling of a category ``ceilings.csv`` does not list, when it has no ``*`` row (or no file).
DEFAULT_CEILING = Ceiling(max_quantity=10_000, max_unit_price=Decimal("10000.00"))


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
    #: ``ceilings.csv``: canonical category (or ``*``) -> its ceiling.
    ceilings: dict[str, Ceiling] = field(default_factory=dict)

    def ceiling(self, category: str | None) -> Ceiling:
        """The ceiling of a line of ``category`` (None: the product is unknown): the category's
        row, else the ``*`` row, else :data:`DEFAULT_CEILING`."""
        if category is not None and category in self.ceilings:
            return self.ceilings[category]
        return self.ceilings.get(ANY_CATEGORY, DEFAULT_CEILING)

    def canonical(self, table: str) -> frozenset[str]:
        """The canonical values of ``table`` (one of ``MAPPED_TABLES``, ``brands``, ``states`` or
        ``regions``). ``categories`` includes ``other``, what an unmapped category becomes."""
        if table in MAPPED_TABLES:
            values = set(getattr(self, table).values())
            return frozenset(values | {"other"} if table == "categories" else values)
        if table == "brands":
            return frozenset(brand for brand, _ in self.brands.values())
        if table == "states":
            return frozenset(self.regions)
        if table == "regions":
            return frozenset(self.regions.values())
        raise ValueError(f"no vocabulary {table!r}")

    def ordered(self, table: str) -> tuple[str, ...]:
        """The canonical values of ``table`` (a ``MAPPED_TABLES`` name or ``regions``) in the order
        they first appear in its file (``categories`` ends with ``other``): a stable order for
        codes (the features' series) and for the sample generator."""
        if table == "regions":
            return tuple(dict.fromkeys(self.regions.values()))
        values = tuple(dict.fromkeys(getattr(self, table).values()))
        return (*values, "other") if table == "categories" and "other" not in values else values

    def manufacturer_of(self, brand: str) -> str | None:
        """The manufacturer the brands table gives ``brand`` (a canonical brand), if it has it."""
        return next((maker for b, maker in self.brands.values() if b == brand), None)


def read_mappings(read: Reader, issues: list[RegistryIssue], vocabulary: Mappings | None = None) -> Mappings:
    """Read and check the tables under ``mappings/`` of a registry, appending every problem to
    ``issues``: a missing file or column, an empty alias or value, an alias mapped to two values
    (conflicting map), a bad currency, rate or state code and, when ``vocabulary`` is given, a
    canonical value the platform's vocabulary lacks."""

    def simple(table: str, column: str) -> dict[str, str]:
        name = f"mappings/{table}.csv"
        known = vocabulary.canonical(table) if vocabulary is not None else None
        out: dict[str, str] = {}
        first_row: dict[str, int] = {}
        for line, row in enumerate(read_csv(read, name, ("alias", column), issues), start=2):
            alias, value = normalise_alias(row["alias"]), row[column]
            if not alias:
                issues.append(RegistryIssue(name, line, "alias", "empty"))
                continue
            if not value:
                issues.append(RegistryIssue(name, line, column, "empty"))
                continue
            if known is not None and value not in known:
                issues.append(
                    RegistryIssue(name, line, column, f"unknown canonical value {value!r}; {table} are {sorted(known)}")
                )
                continue
            if alias in out and out[alias] != value:
                issues.append(_conflict(name, line, alias, repr(out[alias]), first_row[alias], repr(value)))
                continue
            out.setdefault(alias, value)
            first_row.setdefault(alias, line)
        return out

    tables = {table: simple(table, column) for table, column in MAPPED_TABLES.items()}
    return Mappings(
        **tables,
        brands=_brands(read, issues),
        usd_per_unit=_fx_rates(read, issues),
        regions=_regions(read, issues, vocabulary),
        ceilings=_ceilings(read, issues, tables["categories"], vocabulary),
    )


def _conflict(name: str, line: int, alias: str, first: str, first_row: int, here: str) -> RegistryIssue:
    """One alias of a global table mapped to two values."""
    return RegistryIssue(
        name, line, "alias", f"conflicting map: {alias!r} maps to {first} at row {first_row}, here to {here}"
    )


def _brands(read: Reader, issues: list[RegistryIssue]) -> dict[str, tuple[str, str]]:
    name = "mappings/brands.csv"
    out: dict[str, tuple[str, str]] = {}
    first_row: dict[str, int] = {}
    for line, row in enumerate(read_csv(read, name, ("alias", "brand", "manufacturer"), issues), start=2):
        alias, value = normalise_alias(row["alias"]), (row["brand"], row["manufacturer"])
        empty = [c for c in ("alias", "brand", "manufacturer") if not row[c]]
        if empty:
            issues.extend(RegistryIssue(name, line, c, "empty") for c in empty)
            continue
        if alias in out and out[alias] != value:
            issues.append(_conflict(name, line, alias, str(out[alias]), first_row[alias], str(value)))
            continue
        out.setdefault(alias, value)
        first_row.setdefault(alias, line)
    return out


def _fx_rates(read: Reader, issues: list[RegistryIssue]) -> dict[str, Decimal]:
    name = "mappings/fx_rates.csv"
    out: dict[str, Decimal] = {}
    for line, row in enumerate(read_csv(read, name, ("currency", "usd_per_unit"), issues), start=2):
        currency = row["currency"]
        if not _CURRENCY.fullmatch(currency):
            issues.append(RegistryIssue(name, line, "currency", f"{currency!r} is not an ISO 4217 code"))
            continue
        if currency in out:
            issues.append(RegistryIssue(name, line, "currency", f"{currency!r} is listed twice"))
            continue
        try:
            rate = Decimal(row["usd_per_unit"])
        except InvalidOperation:
            rate = Decimal(0)
        if not rate.is_finite() or rate <= 0:
            issues.append(
                RegistryIssue(name, line, "usd_per_unit", f"{row['usd_per_unit']!r} is not a positive decimal number")
            )
            continue
        out[currency] = rate
    return out


_MAX_QUANTITY = 2**31 - 1  # a silver quantity is an Int32
_MAX_PRICE = Decimal(10**8)  # a money value of 100 million units or more is unparseable anyway


def _ceilings(
    read: Reader, issues: list[RegistryIssue], categories: Mapping[str, str], vocabulary: Mappings | None
) -> dict[str, Ceiling]:
    """``mappings/ceilings.csv`` (optional): ``category,max_quantity,max_unit_price``, one row per
    canonical category or ``*`` (every other category, and a product not known)."""
    name = "mappings/ceilings.csv"
    known = set(categories.values()) | {"other"} if vocabulary is None else set(vocabulary.canonical("categories"))
    out: dict[str, Ceiling] = {}
    rows = read_csv(read, name, ("category", "max_quantity", "max_unit_price"), issues, optional=True)
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        category = row["category"]
        if category != ANY_CATEGORY and category not in known:
            issues.append(
                RegistryIssue(
                    name,
                    line,
                    "category",
                    f"unknown canonical value {category!r}; categories are {sorted(known)} or '*'",
                )
            )
        elif category in out:
            issues.append(RegistryIssue(name, line, "category", f"{category!r} is listed twice"))
        quantity = row["max_quantity"]
        if not re.fullmatch(r"[0-9]{1,10}", quantity) or not 0 < int(quantity) <= _MAX_QUANTITY:
            issues.append(
                RegistryIssue(name, line, "max_quantity", f"{quantity!r} is not an integer from 1 to {_MAX_QUANTITY}")
            )
        price = row["max_unit_price"]
        if not re.fullmatch(r"[0-9]{1,9}(\.[0-9]{1,2})?", price) or not 0 < Decimal(price) < _MAX_PRICE:
            issues.append(
                RegistryIssue(
                    name, line, "max_unit_price", f"{price!r} is not a positive USD amount (cents at most) below 10^8"
                )
            )
        if len(issues) == before:
            out[category] = Ceiling(int(quantity), Decimal(price))
    return out


def _regions(read: Reader, issues: list[RegistryIssue], vocabulary: Mappings | None) -> dict[str, str]:
    name = "mappings/regions.csv"
    out: dict[str, str] = {}
    for line, row in enumerate(read_csv(read, name, ("state", "region"), issues), start=2):
        state, region = row["state"], row["region"]
        if not _STATE.fullmatch(state):
            issues.append(RegistryIssue(name, line, "state", f"{state!r} is not a 2-letter upper-case state code"))
        elif state in out:
            issues.append(RegistryIssue(name, line, "state", f"{state!r} is listed twice"))
        elif not region:
            issues.append(RegistryIssue(name, line, "region", "empty"))
        elif vocabulary is not None and (state, region) not in vocabulary.regions.items():
            issues.append(
                RegistryIssue(
                    name, line, "region", f"unknown canonical value {state}->{region}: states and regions are fixed"
                )
            )
        else:
            out[state] = region
    return out


def _directory_reader(directory: Path) -> Reader:
    """Reads ``mappings/<file>`` from ``directory`` (a mappings directory)."""

    def read(name: str) -> bytes | None:
        path = directory / name.removeprefix("mappings/")
        return path.read_bytes() if path.is_file() else None

    return read


@cache
def load_mappings(directory: Path = DEFAULT_MAPPINGS_DIR) -> Mappings:
    """Load the mapping tables in ``directory`` (default: the packaged registry's); aliases are
    stored normalised. Raises ``RegistryError`` listing every problem. A registry's own tables come
    with it: ``load_registry(...).mappings``."""
    issues: list[RegistryIssue] = []
    mappings = read_mappings(_directory_reader(directory), issues)
    if issues:
        raise RegistryError(issues)
    return mappings


def vocabulary() -> Mappings:
    """The platform's vocabularies: the packaged registry's mapping tables."""
    return load_mappings(DEFAULT_MAPPINGS_DIR)
