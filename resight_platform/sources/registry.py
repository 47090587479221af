"""The source registry: which partners send which feeds, and how to read them.

Sources are data, not code. One registry directory (the packaged one, or ``RESIGHT_REGISTRY_DIR``,
a local directory or an ``s3://`` prefix) holds everything:

- ``providers.csv`` — one row per partner: slug, name, kind, export profile, timezone, currency,
  and optionally ``history_start``: the first business date its data may hold (sales before it are
  quarantined as ``before_history_start``; empty: the registry's ``history_floor``, set from
  ``RESIGHT_HISTORY_FLOOR``, by default 2000-01-01) and ``onboarded``: the first business date it is
  expected to deliver (its partitions before it are closed, ``sources/expected.py``; empty: its
  first delivered date);
- ``sources.csv`` — one row per (provider, feed): optional format override, expected delivery
  window, active flag;
- ``profiles.yaml`` — the export layouts partners' systems write (column names, CSV dialect, date
  and money formats, constants and defaults for columns not sent), shared by many partners;
- ``source_values.csv`` (optional) — one source's own constants and defaults, over its profile's;
- ``mappings/*.csv`` — the global mapping tables (``sources/mappings.py``);
- ``value_maps.csv`` (optional) — a provider's or a source's own value maps
  (``sources/value_maps.py``).

``load_registry`` validates everything and raises ``RegistryError`` listing every problem with its
file, row, field and reason, so a bad onboarding edit is caught before it reaches a run;
``check_registry`` returns the problems instead, with the warnings (what loads but is most likely a
mistake: a partner with no source, a history start in the future, a profile no partner uses).

A registry's ``version`` is a short digest of the bytes of every file it was read from: the same
files give the same version wherever they are stored, and the ledger records it with each file
read, loaded or dead-lettered (``ops.ingestion_ledger.registry_version``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl
import yaml

from resight_platform.sources.issues import Reader, RegistryError, RegistryIssue, read_csv
from resight_platform.sources.mappings import Mappings, normalise_alias, read_mappings, vocabulary
from resight_platform.sources.value_maps import ValueMaps, read_value_maps

__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_HISTORY_FLOOR",
    "DEFAULT_REGISTRY_DIR",
    "FEEDS",
    "FORMATS",
    "MAPPED_COLUMNS",
    "PROVIDER_PATTERN",
    "REQUIRED_COLUMNS",
    "SOURCE_VALUES_FILE",
    "TIMEZONE_DIRECTIVES",
    "VERSION_CHARS",
    "FeedLayout",
    "Profile",
    "Provider",
    "Reader",
    "Registry",
    "RegistryCheck",
    "RegistryError",
    "RegistryIssue",
    "Source",
    "check_registry",
    "directory_reader",
    "load_registry",
    "registry_rows",
    "registry_version",
]

DEFAULT_REGISTRY_DIR = Path(__file__).parent / "registry"
#: The earliest business date any partner's data may hold when ``providers.csv`` gives the partner
#: no ``history_start`` (``RESIGHT_HISTORY_FLOOR`` overrides it): dates in 1900 or year 1 are typos
#: or placeholders, not sales.
DEFAULT_HISTORY_FLOOR = date(2000, 1, 1)

PROVIDER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{1,62}$")
FEEDS: tuple[str, ...] = ("sales", "catalog", "stores", "customers")
FORMATS: tuple[str, ...] = ("csv", "csv.gz", "jsonl", "json", "parquet")
KINDS: tuple[str, ...] = ("retail", "ecommerce", "distributor", "vet")
MONEY_FORMATS: tuple[str, ...] = ("decimal", "currency", "decimal_comma", "cents")
CHANNELS: tuple[str, ...] = ("store", "online")

#: Canonical columns of each feed as they arrive (bronze, after renaming); ``provider`` is added
#: from the landing key, not read from the file.
CANONICAL_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "sales": (
        "order_id",
        "line_no",
        "ordered_at",
        "store_id",
        "channel",
        "sku",
        "quantity",
        "unit_price",
        "discount",
        "customer_id",
        "status",
        "ship_state",
    ),
    "catalog": (
        "sku",
        "upc",
        "product_name",
        "brand",
        "category",
        "species",
        "pack_size",
        "pack_unit",
        "list_price",
    ),
    "stores": ("store_id", "store_name", "city", "state", "zip"),
    "customers": ("customer_id", "signup_date", "state", "pet_species"),
}

#: Columns gold cannot do without: a source's file must carry each (after renaming) unless the
#: registry gives it a constant or a default (``Source.required_columns``), or the file is
#: dead-lettered as ``missing_columns``. Brand and category are optional (a catalog row without them
#: has a null brand and category ``other``), and so is a customer's signup date (null in
#: ``gold.dim_customer``).
REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "sales": ("order_id", "line_no", "ordered_at", "sku", "quantity", "unit_price", "status"),
    "catalog": ("sku", "product_name", "species", "list_price"),
    "stores": ("store_id", "state"),
    "customers": ("customer_id",),
}

#: Canonical columns whose values go through a mapping table (a value map name of
#: ``value_maps.csv``): a constant or default for one must map to a canonical value.
MAPPED_COLUMNS: Mapping[str, str] = {
    "status": "status",
    "channel": "channels",
    "ship_state": "states",
    "species": "species",
    "pet_species": "species",
    "pack_unit": "units",
    "category": "categories",
    "brand": "brands",
    "state": "states",
}

SOURCE_VALUES_FILE = "source_values.csv"
GIVEN_KINDS: tuple[str, ...] = ("constant", "default")

#: The strptime directives that make a profile's ``datetime_format`` carry its own UTC offset
#: (silver then ignores the source's timezone; ``transforms/silver.py``).
TIMEZONE_DIRECTIVES: tuple[str, ...] = ("%z", "%:z", "%::z", "%#z")
#: Hex characters of a registry's ``version`` (48 bits of sha256: two registries of a deployment's
#: history share a version by chance with odds of about n^2 / 2^49).
VERSION_CHARS = 12


@dataclass(frozen=True)
class FeedLayout:
    """How one profile writes one feed: source column name -> canonical column name, and what the
    registry gives for canonical columns: ``constants`` (always this value, whatever the file holds)
    and ``defaults`` (when the partner's value is missing or blank). Values are written as the
    partner would write them (the profile's date and money formats; an alias of a mapped value)."""

    columns: Mapping[str, str]
    constants: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)

    @property
    def canonical_to_source(self) -> dict[str, str]:
        return {canonical: source for source, canonical in self.columns.items()}


@dataclass(frozen=True)
class Profile:
    name: str
    format: str
    delimiter: str
    encoding: str
    datetime_format: str
    date_format: str
    money_format: str
    channel: str | None
    feeds: Mapping[str, FeedLayout]


@dataclass(frozen=True)
class Provider:
    provider: str
    name: str
    kind: str
    profile: str
    timezone: str
    currency: str
    #: The first business date of the partner's data (``providers.csv`` ``history_start``); None:
    #: the registry's ``history_floor``.
    history_start: date | None = None
    #: The first business date the partner is expected to deliver (``providers.csv`` ``onboarded``);
    #: None: its first delivered date. Days before it are not expected of any of its feeds: the
    #: closing job closes them (``sources/expected.py``).
    onboarded: date | None = None


@dataclass(frozen=True)
class Source:
    """One registered (provider, feed) with everything needed to read its files."""

    provider: str
    feed: str
    format: str
    expected_every_hours: int
    active: bool
    profile: Profile
    timezone: str
    currency: str
    #: The first business date a sale of this source may have (its provider's ``history_start``,
    #: else the registry's ``history_floor``).
    history_start: date = DEFAULT_HISTORY_FLOOR
    #: Its provider's ``onboarded`` (None: not given).
    onboarded: date | None = None
    #: The profile's constants and defaults for this feed with the source's own over them
    #: (``source_values.csv``); a column has a constant or a default, not both.
    constants: Mapping[str, str] = field(default_factory=dict)
    defaults: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.feed}"

    @property
    def layout(self) -> FeedLayout:
        return self.profile.feeds[self.feed]

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The required columns a file of this source must carry: those the registry gives (a
        constant or a default) are satisfied without the file."""
        return tuple(c for c in REQUIRED_COLUMNS[self.feed] if c not in self.constants and c not in self.defaults)


@dataclass(frozen=True)
class Registry:
    providers: Mapping[str, Provider]
    profiles: Mapping[str, Profile]
    sources: Mapping[tuple[str, str], Source] = field(default_factory=dict)
    #: The registry's global mapping tables.
    mappings: Mappings = field(default_factory=vocabulary)
    #: Providers' and sources' own value maps, over ``mappings``.
    value_maps: ValueMaps = field(default_factory=ValueMaps)
    #: The history start of a provider that gives none (``RESIGHT_HISTORY_FLOOR``).
    history_floor: date = DEFAULT_HISTORY_FLOOR
    #: A digest of every file the registry was read from (``registry_version``); empty for a
    #: registry built in code.
    version: str = ""
    #: Per provider, a digest of what its files are read with: its providers.csv row, its sources
    #: with their profile layouts, constants and defaults, its own value maps and the global
    #: mapping tables (``provider_version``). It changes when that provider's rows change, not
    #: when another partner is onboarded, so the ledger can tell which partners changed.
    provider_versions: Mapping[str, str] = field(default_factory=dict)
    #: What loads but is most likely a mistake (a partner with no source, …): reported by
    #: ``resight onboard check``, never a reason to refuse the registry.
    warnings: tuple[RegistryIssue, ...] = ()

    def source(self, provider: str, feed: str) -> Source | None:
        return self.sources.get((provider, feed))

    def provider_version(self, provider: str | None) -> str | None:
        """The version of ``provider``'s own registry rows (None: not registered, or no provider)."""
        return self.provider_versions.get(provider) if provider else None

    def provider_slugs(self) -> list[str]:
        return sorted(self.providers)

    def sources_for(self, provider: str) -> list[Source]:
        return [s for (p, _), s in sorted(self.sources.items()) if p == provider]

    def active_sources(self) -> list[Source]:
        return [s for _, s in sorted(self.sources.items()) if s.active]


def directory_reader(directory: Path) -> Reader:
    """A ``Reader`` of the registry in a local ``directory``."""

    def read(name: str) -> bytes | None:
        path = directory / name
        return path.read_bytes() if path.is_file() else None

    return read


def load_registry(
    location: Path | str | None = None,
    *,
    read: Reader | None = None,
    history_floor: date = DEFAULT_HISTORY_FLOOR,
    today: date | None = None,
) -> Registry:
    """Load and validate the registry at ``location`` (default: the one shipped in the package).

    ``location`` is a local directory; a registry elsewhere (``s3://…``) is read through ``read``,
    which returns a file's bytes by its path relative to the registry (``resources.py`` builds one
    on the object store). ``history_floor`` is the history start of a provider that gives none
    (``Settings.history_floor``); ``today`` (default: today, UTC) is what a ``history_start`` in the
    future is judged against (a warning). Raises ``RegistryError`` listing every problem.
    """
    checked = check_registry(location, read=read, history_floor=history_floor, today=today)
    if checked.errors:
        raise RegistryError(list(checked.errors))
    return checked.registry


@dataclass(frozen=True)
class RegistryCheck:
    """A registry validated as a whole: ``errors`` (any one refuses the registry) and what loaded
    (with errors, only the rows that passed: counts to report, not a registry to run on)."""

    registry: Registry
    errors: tuple[RegistryIssue, ...]

    @property
    def warnings(self) -> tuple[RegistryIssue, ...]:
        return self.registry.warnings


def check_registry(
    location: Path | str | None = None,
    *,
    read: Reader | None = None,
    history_floor: date = DEFAULT_HISTORY_FLOOR,
    today: date | None = None,
) -> RegistryCheck:
    """Validate the registry at ``location`` (as ``load_registry``) and return every error and
    warning instead of raising: what ``resight onboard check`` prints."""
    if read is None:
        if isinstance(location, str) and "://" in location:
            raise ValueError(f"{location!r} is not a local directory: pass a reader (resources.load_registry_at)")
        read = directory_reader(Path(location) if location else DEFAULT_REGISTRY_DIR)
    files: dict[str, bytes | None] = {}

    def recorded(name: str) -> bytes | None:
        if name not in files:
            files[name] = read(name)
        return files[name]

    issues: list[RegistryIssue] = []
    mappings = read_mappings(recorded, issues, vocabulary())
    # What is in a file but failed its own checks: rows that name it are not reported again
    # (one typo in a profile is one error, not one per partner using it and per source of those).
    failed = _Failed()
    profiles = _load_profiles(recorded, issues, failed)
    providers = _load_providers(recorded, profiles, mappings, issues, failed)
    sources = _load_sources(recorded, providers, profiles, history_floor, issues, failed)
    sources, given_rows = _apply_source_values(recorded, sources, issues, failed)
    value_maps = read_value_maps(
        recorded,
        issues,
        providers=providers.keys() | failed.providers,
        sources=sources.keys() | failed.sources,
        feeds=FEEDS,
        mappings=mappings,
    )
    _check_given_values(sources, given_rows, mappings, value_maps, issues)
    registry = Registry(
        providers=providers,
        profiles=profiles,
        sources=sources,
        mappings=mappings,
        value_maps=value_maps,
        history_floor=history_floor,
        version=registry_version(files),
    )
    shared = registry_version({name: data for name, data in files.items() if name.startswith("mappings/")})
    registry = replace(registry, provider_versions=_provider_versions(registry, shared))
    warnings = _warnings(registry, recorded, today or datetime.now(UTC).date())
    return RegistryCheck(registry=replace(registry, warnings=warnings), errors=tuple(issues))


def registry_version(files: Mapping[str, bytes | None]) -> str:
    """The version of a registry read from ``files`` (path relative to the registry -> bytes, None
    for an optional file that is absent): the first :data:`VERSION_CHARS` hex characters of a
    sha256 over each present file's path and bytes, in path order. Files the loader does not read
    (a README beside them) are not part of it: they change nothing a run does."""
    digest = hashlib.sha256()
    for name in sorted(files):
        data = files[name]
        if data is None:
            continue
        encoded = name.encode("utf-8")
        digest.update(len(encoded).to_bytes(8, "big") + encoded + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()[:VERSION_CHARS]


def _provider_versions(registry: Registry, shared: str) -> dict[str, str]:
    """Each provider's version: a digest of what its files are read with, as parsed (in file
    order: the same files give the same text), and of ``shared``, the global tables' version. Plain
    tuples and one digest per profile keep it to ~0.1 s at 12,000 sources (a ``repr`` of each
    source with its profile took 1 s)."""
    profiles = {
        name: hashlib.sha256(repr(profile).encode("utf-8")).hexdigest() for name, profile in registry.profiles.items()
    }
    sources: dict[str, list[tuple[object, ...]]] = {}
    for (slug, feed), s in sorted(registry.sources.items()):
        sources.setdefault(slug, []).append(
            (
                feed,
                s.format,
                s.expected_every_hours,
                s.active,
                profiles[s.profile.name],
                s.history_start.isoformat(),
                tuple(s.constants.items()),
                tuple(s.defaults.items()),
            )
        )
    scopes: dict[str, list[object]] = {}
    for key, scope in sorted(registry.value_maps.scopes.items()):
        scopes.setdefault(key[1], []).append((key, scope))
    out: dict[str, str] = {}
    for slug, p in registry.providers.items():
        row = (p.provider, p.name, p.kind, p.profile, p.timezone, p.currency, p.history_start)
        text = repr((shared, row, sources.get(slug, []), scopes.get(slug, [])))
        out[slug] = hashlib.sha256(text.encode("utf-8")).hexdigest()[:VERSION_CHARS]
    return out


def _warnings(registry: Registry, read: Reader, today: date) -> tuple[RegistryIssue, ...]:
    """What loads but is most likely a mistake; each names the row a person would edit."""
    warnings: list[RegistryIssue] = []
    rows = {row.get("provider", ""): line for line, row in _csv_rows(read, "providers.csv")}
    with_source = {provider for provider, _ in registry.sources}
    for slug, provider in sorted(registry.providers.items()):
        line = rows.get(slug)
        if slug not in with_source:
            warnings.append(
                RegistryIssue(
                    "providers.csv",
                    line,
                    "provider",
                    f"{slug!r} has no source in sources.csv: each file it sends is dead-lettered as unknown_source",
                )
            )
        if provider.onboarded is not None and provider.onboarded > today:
            warnings.append(
                RegistryIssue(
                    "providers.csv",
                    line,
                    "onboarded",
                    f"{provider.onboarded.isoformat()} is after today ({today.isoformat()}): every day until then"
                    " is closed as before_onboarding, and a file for one of them loads but was not expected",
                )
            )
        if provider.history_start is not None and provider.history_start > today:
            warnings.append(
                RegistryIssue(
                    "providers.csv",
                    line,
                    "history_start",
                    f"{provider.history_start.isoformat()} is after today ({today.isoformat()}): every sale would"
                    " be quarantined as before_history_start",
                )
            )
    used = {provider.profile for provider in registry.providers.values()}
    for name in sorted(set(registry.profiles) - used):
        warnings.append(
            RegistryIssue("profiles.yaml", None, f"profiles.{name}", "no provider in providers.csv uses it")
        )
    return tuple(warnings)


def _csv_rows(read: Reader, name: str) -> list[tuple[int, dict[str, str]]]:
    """The rows of a registry CSV already validated, with their file row numbers (header = 1)."""
    return list(enumerate(read_csv(read, name, (), []), start=2))


@dataclass
class _Failed:
    """The profiles, providers and sources a registry lists that failed their own checks."""

    profiles: set[str] = field(default_factory=set)
    providers: set[str] = field(default_factory=set)
    sources: set[tuple[str, str]] = field(default_factory=set)


def _load_profiles(read: Reader, issues: list[RegistryIssue], failed: _Failed) -> dict[str, Profile]:
    file = "profiles.yaml"
    data = read(file)
    if data is None:
        issues.append(RegistryIssue(file, None, "-", "file not found"))
        return {}
    try:
        loader = _Loader(data.decode("utf-8"))
        try:
            node = loader.get_single_node()
            document = (loader.construct_document(node) if node is not None else None) or {}
        finally:
            loader.dispose()
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        issues.append(RegistryIssue(file, None, "-", f"not valid YAML: {exc}"))
        return {}
    for key, (line, column), (first_line, first_column) in loader.duplicates:
        issues.append(
            RegistryIssue(
                file,
                line,
                "-",
                f"key {key!r} at column {column} is given twice (first at line {first_line} column {first_column}):"
                " YAML keeps the last",
            )
        )
    raw_profiles = document.get("profiles") if isinstance(document, dict) else None
    if not isinstance(raw_profiles, dict):
        issues.append(RegistryIssue(file, None, "profiles", "expected a mapping of profiles"))
        return {}
    profiles: dict[str, Profile] = {}
    first = len(issues)
    for name, raw in raw_profiles.items():
        profile = _parse_profile(file, str(name), raw, issues)
        if profile is not None:
            profiles[profile.name] = profile
        else:
            failed.profiles.add(str(name))
    if len(issues) > first:
        lines = _key_lines(node)
        issues[first:] = [_at_line(issue, lines) for issue in issues[first:]]
    return profiles


def _key_lines(node: yaml.Node | None) -> dict[tuple[str, ...], int]:
    """The line (from 1) of each mapping key of a composed YAML document, by its path of keys."""
    lines: dict[tuple[str, ...], int] = {}
    stack: list[tuple[yaml.Node | None, tuple[str, ...]]] = [(node, ())]
    while stack:
        current, path = stack.pop()
        if not isinstance(current, yaml.MappingNode):
            continue
        for key_node, value_node in current.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                at = (*path, str(key_node.value))
                lines.setdefault(at, key_node.start_mark.line + 1)
                stack.append((value_node, at))
    return lines


def _at_line(issue: RegistryIssue, lines: Mapping[tuple[str, ...], int]) -> RegistryIssue:
    """``issue`` with the line of the deepest key its field names (``profiles.p.feeds.sales.columns``)
    as its row: a person finds it in the file by line."""
    if issue.row is not None:
        return issue
    path = tuple(issue.field.split("."))
    while path:
        if path in lines:
            return replace(issue, row=lines[path])
        path = path[:-1]
    return issue


# libyaml's parser when present: 5x faster on a large profiles.yaml, the same documents.
_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_BaseLoader):  # type: ignore[misc]
    """The safe loader, noting each key given twice in one mapping (``duplicates``): YAML silently
    keeps the last, so a source column written twice would lose one mapping without a word. A key
    a merge (``<<``) brings in is an override, not a duplicate."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        #: (key, (line, column), (line, column) of its first occurrence), counted from 1.
        self.duplicates: list[tuple[str, tuple[int, int], tuple[int, int]]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[str, tuple[int, int]] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            at = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            if key_node.value in seen:
                self.duplicates.append((key_node.value, at, seen[key_node.value]))
            else:
                seen[key_node.value] = at
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _parse_profile(file: str, name: str, raw: Any, issues: list[RegistryIssue]) -> Profile | None:
    where = f"profiles.{name}"
    if not isinstance(raw, dict):
        issues.append(RegistryIssue(file, None, where, "expected a mapping"))
        return None
    before = len(issues)
    fmt = str(raw.get("format", ""))
    if fmt not in FORMATS:
        issues.append(RegistryIssue(file, None, f"{where}.format", f"{fmt!r} is not one of {FORMATS}"))
    money = str(raw.get("money_format", "decimal"))
    if money not in MONEY_FORMATS:
        issues.append(RegistryIssue(file, None, f"{where}.money_format", f"{money!r} is not one of {MONEY_FORMATS}"))
    channel = raw.get("channel")
    if channel is not None and channel not in CHANNELS:
        issues.append(RegistryIssue(file, None, f"{where}.channel", f"{channel!r} is not one of {CHANNELS}"))
    delimiter = str(raw.get("delimiter", ","))
    if len(delimiter) != 1:
        issues.append(RegistryIssue(file, None, f"{where}.delimiter", "must be one character"))
    encoding = str(raw.get("encoding", "utf-8"))
    try:
        "".encode(encoding)
    except LookupError:
        issues.append(RegistryIssue(file, None, f"{where}.encoding", f"unknown encoding {encoding!r}"))
    datetime_format = str(raw.get("datetime_format", "iso"))
    date_format = str(raw.get("date_format", "%Y-%m-%d"))
    for key, pattern, with_time in (("datetime_format", datetime_format, True), ("date_format", date_format, False)):
        problem = _format_problem(pattern, with_time=with_time)
        if problem is not None:
            issues.append(RegistryIssue(file, None, f"{where}.{key}", problem))
    feeds: dict[str, FeedLayout] = {}
    raw_feeds = raw.get("feeds")
    if not isinstance(raw_feeds, dict) or not raw_feeds:
        issues.append(RegistryIssue(file, None, f"{where}.feeds", "expected a mapping of feeds"))
        raw_feeds = {}
    for feed, layout in raw_feeds.items():
        fwhere = f"{where}.feeds.{feed}"
        if feed not in FEEDS:
            issues.append(RegistryIssue(file, None, fwhere, f"unknown feed {feed!r}; feeds are {FEEDS}"))
            continue
        columns = layout.get("columns") if isinstance(layout, dict) else None
        if not isinstance(columns, dict):
            issues.append(RegistryIssue(file, None, f"{fwhere}.columns", "expected a mapping source -> canonical"))
            continue
        columns = {str(k): str(v) for k, v in columns.items()}
        unknown = sorted(set(columns.values()) - set(CANONICAL_COLUMNS[feed]))
        if unknown:
            issues.append(RegistryIssue(file, None, f"{fwhere}.columns", f"not canonical {feed} columns: {unknown}"))
        doubled = sorted({c for c in columns.values() if list(columns.values()).count(c) > 1})
        if doubled:
            issues.append(RegistryIssue(file, None, f"{fwhere}.columns", f"mapped twice: {doubled}"))
        given = {kind: _given(file, fwhere, feed, kind, layout.get(f"{kind}s"), issues) for kind in GIVEN_KINDS}
        if feed == "sales" and channel in CHANNELS and "channel" not in given["constant"]:
            given["default"].setdefault("channel", str(channel))  # the profile's channel: a default
        both = sorted(set(given["constant"]) & set(given["default"]))
        if both:
            issues.append(RegistryIssue(file, None, f"{fwhere}.defaults", f"also given a constant: {both}"))
        missing = sorted(
            set(REQUIRED_COLUMNS[feed]) - set(columns.values()) - set(given["constant"]) - set(given["default"])
        )
        if missing:
            issues.append(
                RegistryIssue(
                    file,
                    None,
                    f"{fwhere}.columns",
                    f"required columns not mapped: {missing} (nor given a constant or default)",
                )
            )
        feeds[feed] = FeedLayout(columns=columns, constants=given["constant"], defaults=given["default"])
    if len(issues) > before:
        return None
    return Profile(
        name=name,
        format=fmt,
        delimiter=delimiter,
        encoding=encoding,
        datetime_format=datetime_format,
        date_format=date_format,
        money_format=money,
        channel=channel,
        feeds=feeds,
    )


#: The instant a profile's date and time patterns must write and read back (``_format_problem``):
#: every field distinct, a day after the 12th (day and month cannot be swapped) and an afternoon
#: hour (12-hour clocks need ``%p``).
_PROBE = datetime(2031, 11, 23, 17, 45, 56)


@cache
def _format_problem(pattern: str, *, with_time: bool) -> str | None:
    """Why silver could not read values written in ``pattern`` (None: it can). A pattern is judged
    by writing a known instant with it and reading it back as silver does (strptime in Polars): a
    pattern without a year, month or day, with an unknown directive, or written as a person reads
    it (``DD/MM/YYYY``) would leave every value unparseable and quarantine every row."""
    if with_time and pattern in ("iso", "epoch_ms"):
        return None
    hint = '"iso", "epoch_ms" or a strftime pattern' if with_time else "a strftime pattern"
    if "%" not in pattern:
        return f"{pattern!r} is not {hint} such as '%m/%d/%Y'"
    aware = any(d in pattern for d in TIMEZONE_DIRECTIVES)
    probe = _PROBE.replace(tzinfo=UTC) if aware or "%Z" in pattern or "%s" in pattern else _PROBE
    target: pl.Datetime | pl.Date = pl.Datetime("us", "UTC") if aware else pl.Datetime("us") if with_time else pl.Date()
    try:
        written = pl.select(pl.lit(probe).dt.strftime(pattern)).item()
        back = pl.select(pl.lit(written).str.strptime(target, pattern, strict=False)).item()
    except pl.exceptions.PolarsError as exc:
        return f"{pattern!r} is not {hint}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if isinstance(back, datetime):
        back_day, hour = back.replace(tzinfo=None).date(), back.hour
    else:
        back_day, hour = back, None
    if back_day != _PROBE.date():
        return (
            f"{pattern!r} does not read back a whole date: {_PROBE.isoformat(' ')} is written {written!r} and read"
            f" as {back_day} (it needs a year, a month and a day)"
        )
    if hour not in (None, 0, _PROBE.hour):
        return f"{pattern!r} reads {written!r} as {back}: a 12-hour clock needs %p"
    return None


def _given(file: str, where: str, feed: str, kind: str, raw: Any, issues: list[RegistryIssue]) -> dict[str, str]:
    """A profile feed's ``constants`` or ``defaults``: canonical column -> value as text."""
    if raw is None:
        return {}
    field_name = f"{where}.{kind}s"
    if not isinstance(raw, dict):
        issues.append(RegistryIssue(file, None, field_name, "expected a mapping canonical column -> value"))
        return {}
    out: dict[str, str] = {}
    for column, value in raw.items():
        if column not in CANONICAL_COLUMNS[feed]:
            issues.append(
                RegistryIssue(file, None, f"{field_name}.{column}", f"unknown canonical column {column!r} of {feed}")
            )
        elif value is None or isinstance(value, (dict, list)) or not str(value).strip():
            issues.append(RegistryIssue(file, None, f"{field_name}.{column}", "expected a non-empty value"))
        else:
            out[str(column)] = str(value).strip()
    return out


def _valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _load_providers(
    read: Reader, profiles: Mapping[str, Profile], mappings: Mappings, issues: list[RegistryIssue], failed: _Failed
) -> dict[str, Provider]:
    file = "providers.csv"
    rows = read_csv(read, file, ("provider", "name", "kind", "profile", "timezone", "currency"), issues)
    providers: dict[str, Provider] = {}
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        slug = row["provider"]
        if not PROVIDER_PATTERN.fullmatch(slug):
            issues.append(
                RegistryIssue(file, line, "provider", f"{slug!r} is not a valid slug {PROVIDER_PATTERN.pattern}")
            )
        elif slug in providers:
            issues.append(RegistryIssue(file, line, "provider", f"{slug!r} is listed twice"))
        if not row["name"]:
            issues.append(RegistryIssue(file, line, "name", "empty"))
        if row["kind"] not in KINDS:
            issues.append(RegistryIssue(file, line, "kind", f"{row['kind']!r} is not one of {KINDS}"))
        cascaded = row["profile"] in failed.profiles  # the profile's own error says why
        if row["profile"] not in profiles and not cascaded:
            issues.append(RegistryIssue(file, line, "profile", f"unknown profile {row['profile']!r}"))
        if not _valid_timezone(row["timezone"]):
            issues.append(RegistryIssue(file, line, "timezone", f"unknown timezone {row['timezone']!r}"))
        if not re.fullmatch(r"[A-Z]{3}", row["currency"]):
            issues.append(RegistryIssue(file, line, "currency", f"{row['currency']!r} is not an ISO 4217 code"))
        elif mappings.usd_per_unit and row["currency"] not in mappings.usd_per_unit:
            issues.append(
                RegistryIssue(file, line, "currency", f"no USD rate for {row['currency']!r} in mappings/fx_rates.csv")
            )
        history_start = _provider_date(row.get("history_start", ""), file, line, issues, "history_start")
        onboarded = _provider_date(row.get("onboarded", ""), file, line, issues, "onboarded")
        if len(issues) > before or cascaded:
            failed.providers.add(slug)
        else:
            providers[slug] = Provider(
                provider=slug,
                name=row["name"],
                kind=row["kind"],
                profile=row["profile"],
                timezone=row["timezone"],
                currency=row["currency"],
                history_start=history_start,
                onboarded=onboarded,
            )
    return providers


#: The earliest ``history_start`` a provider may give: before it, the value is a typo.
_EARLIEST_HISTORY = date(1970, 1, 1)


def _provider_date(text: str, file: str, line: int, issues: list[RegistryIssue], field_name: str) -> date | None:
    """A provider's date column ``field_name`` (``history_start``, ``onboarded``): empty (None), or
    a ``YYYY-MM-DD`` date from 1970 on."""
    if not text:
        return None
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        value = date.fromisoformat(text)
    except ValueError:
        issues.append(RegistryIssue(file, line, field_name, f"{text!r} is not a YYYY-MM-DD date"))
        return None
    if value < _EARLIEST_HISTORY:
        issues.append(RegistryIssue(file, line, field_name, f"{text!r} is before {_EARLIEST_HISTORY.isoformat()}"))
        return None
    return value


def _load_sources(
    read: Reader,
    providers: Mapping[str, Provider],
    profiles: Mapping[str, Profile],
    history_floor: date,
    issues: list[RegistryIssue],
    failed: _Failed,
) -> dict[tuple[str, str], Source]:
    file = "sources.csv"
    rows = read_csv(read, file, ("provider", "feed", "format", "expected_every_hours", "active"), issues)
    sources: dict[tuple[str, str], Source] = {}
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        slug, feed = row["provider"], row["feed"]
        provider = providers.get(slug)
        if provider is None and slug not in failed.providers:  # else its row's own error says why
            issues.append(RegistryIssue(file, line, "provider", f"{slug!r} is not in providers.csv"))
        if feed not in FEEDS:
            issues.append(RegistryIssue(file, line, "feed", f"{feed!r} is not one of {FEEDS}"))
        if (slug, feed) in sources:
            issues.append(RegistryIssue(file, line, "feed", f"{slug}/{feed} is listed twice"))
        fmt = row["format"]
        if fmt and fmt not in FORMATS:
            issues.append(RegistryIssue(file, line, "format", f"{fmt!r} is not one of {FORMATS}"))
        every = row["expected_every_hours"]
        if not re.fullmatch(r"[0-9]{1,6}", every) or int(every) <= 0:
            issues.append(RegistryIssue(file, line, "expected_every_hours", f"{every!r} is not a positive integer"))
        active = row["active"].lower()
        if active not in ("true", "false"):
            issues.append(RegistryIssue(file, line, "active", f"{row['active']!r} is not true/false"))
        profile = profiles.get(provider.profile) if provider else None
        if provider is not None and profile is not None and feed in FEEDS and feed not in profile.feeds:
            issues.append(RegistryIssue(file, line, "feed", f"profile {profile.name!r} has no layout for {feed!r}"))
        if len(issues) > before or provider is None or profile is None:
            failed.sources.add((slug, feed))
        else:
            sources[(slug, feed)] = Source(
                provider=slug,
                feed=feed,
                format=fmt or profile.format,
                expected_every_hours=int(every),
                active=active == "true",
                profile=profile,
                timezone=provider.timezone,
                currency=provider.currency,
                history_start=provider.history_start or history_floor,
                onboarded=provider.onboarded,
                constants=dict(profile.feeds[feed].constants),
                defaults=dict(profile.feeds[feed].defaults),
            )
    return sources


def _apply_source_values(
    read: Reader, sources: dict[tuple[str, str], Source], issues: list[RegistryIssue], failed: _Failed
) -> tuple[dict[tuple[str, str], Source], dict[tuple[str, str, str], int]]:
    """Each source with its own constants and defaults (``source_values.csv``, optional:
    ``provider,feed,column,kind,value``) over its profile's: a row replaces what the profile gives
    that column. Also returns the file row of each (provider, feed, column) given there."""
    file = SOURCE_VALUES_FILE
    rows = read_csv(read, file, ("provider", "feed", "column", "kind", "value"), issues, optional=True)
    given: dict[tuple[str, str], dict[str, tuple[str, str, int]]] = {}
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        key, column, kind, value = (row["provider"], row["feed"]), row["column"], row["kind"], row["value"]
        if key in failed.sources:
            continue  # the source's own row is in error: its values are judged once it loads
        if key not in sources:
            issues.append(RegistryIssue(file, line, "feed", f"{key[0]}/{key[1]} is not in sources.csv"))
        elif column not in CANONICAL_COLUMNS[key[1]]:
            issues.append(RegistryIssue(file, line, "column", f"unknown canonical column {column!r} of {key[1]}"))
        if kind not in GIVEN_KINDS:
            issues.append(RegistryIssue(file, line, "kind", f"{kind!r} is not one of {GIVEN_KINDS}"))
        if not value:
            issues.append(RegistryIssue(file, line, "value", "empty"))
        if len(issues) > before:
            continue
        earlier = given.setdefault(key, {}).get(column)
        if earlier is not None:
            issues.append(
                RegistryIssue(
                    file, line, "column", f"{key[0]}/{key[1]} {column!r} is already given at row {earlier[2]}"
                )
            )
            continue
        given[key][column] = (kind, value, line)
    out = dict(sources)
    rows_of: dict[tuple[str, str, str], int] = {}
    for key, columns in given.items():
        source = sources[key]
        constants, defaults = dict(source.constants), dict(source.defaults)
        for column, (kind, value, line) in columns.items():
            rows_of[(*key, column)] = line
            constants.pop(column, None)
            defaults.pop(column, None)
            (constants if kind == "constant" else defaults)[column] = value
        out[key] = Source(**{**source.__dict__, "constants": constants, "defaults": defaults})
    return out, rows_of


def _check_given_values(
    sources: Mapping[tuple[str, str], Source],
    given_rows: Mapping[tuple[str, str, str], int],
    mappings: Mappings,
    value_maps: ValueMaps,
    issues: list[RegistryIssue],
) -> None:
    """A constant or default of a mapped column (status, species, units, …) must map to a canonical
    value through the source's value maps or the global tables (checked once per profile value and
    once per source override)."""
    reported: set[tuple[str, str, str, str]] = set()
    for source in sources.values():
        for kind, values in (("constant", source.constants), ("default", source.defaults)):
            for column, value in values.items():
                table = MAPPED_COLUMNS.get(column)
                if table is None or table == "brands":  # open: an unknown brand is kept as delivered
                    continue
                scoped = value_maps.resolve(table, source.provider, source.feed, value)
                if scoped is not None or _maps_globally(table, value, mappings):
                    continue
                row = given_rows.get((source.provider, source.feed, column))
                from_profile = row is None
                where = (
                    ("profiles.yaml", None, f"profiles.{source.profile.name}.feeds.{source.feed}.{kind}s.{column}")
                    if from_profile
                    else (SOURCE_VALUES_FILE, row, "value")
                )
                mark = (where[0], where[2], value, "" if from_profile else source.key)
                if mark in reported:
                    continue
                reported.add(mark)
                issues.append(
                    RegistryIssue(
                        where[0],
                        where[1],
                        where[2],
                        f"unknown canonical value: {value!r} is not a {table} alias"
                        + ("" if from_profile else f" of {source.key}"),
                    )
                )


def _maps_globally(table: str, value: str, mappings: Mappings) -> bool:
    if table == "states":
        return value.strip().upper() in mappings.regions
    if table == "categories" and value in mappings.canonical("categories"):
        return True  # 'other' is what an unmapped category becomes
    return normalise_alias(value) in getattr(mappings, table)


def registry_rows(registry: Registry) -> Iterable[dict[str, object]]:
    """Flat rows of the registry, one per source, for loading into ``ops.sources``."""
    for source in registry.sources.values():
        provider = registry.providers[source.provider]
        yield {
            "provider": source.provider,
            "feed": source.feed,
            "provider_name": provider.name,
            "kind": provider.kind,
            "profile": source.profile.name,
            "format": source.format,
            "timezone": source.timezone,
            "currency": source.currency,
            "expected_every_hours": source.expected_every_hours,
            "active": source.active,
        }
