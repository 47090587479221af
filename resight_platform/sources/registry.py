"""The source registry: which partners send which feeds, and how to read them.

Sources are data, not code. Three files in a registry directory describe them:

- ``providers.csv`` — one row per partner: slug, name, kind, export profile, timezone, currency;
- ``sources.csv`` — one row per (provider, feed): optional format override, expected delivery
  window, active flag;
- ``profiles.yaml`` — the export layouts partners' systems write (column names, CSV dialect, date
  and money formats), shared by many partners.

``load_registry`` validates everything and raises ``RegistryError`` listing every problem with its
file, row, field and reason, so a bad onboarding edit is caught before it reaches a run.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

__all__ = [
    "CANONICAL_COLUMNS",
    "DEFAULT_REGISTRY_DIR",
    "FEEDS",
    "FORMATS",
    "PROVIDER_PATTERN",
    "FeedLayout",
    "Profile",
    "Provider",
    "Registry",
    "RegistryError",
    "RegistryIssue",
    "Source",
    "load_registry",
]

DEFAULT_REGISTRY_DIR = Path(__file__).parent / "registry"

PROVIDER_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]{1,62}$")
FEEDS: tuple[str, ...] = ("sales", "catalog", "stores", "customers")
FORMATS: tuple[str, ...] = ("csv", "csv.gz", "jsonl", "json", "parquet")
KINDS: tuple[str, ...] = ("retail", "ecommerce", "distributor", "vet")
MONEY_FORMATS: tuple[str, ...] = ("decimal", "currency", "cents")
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

#: Columns a file must carry (after renaming) or it is dead-lettered as ``missing_columns``.
REQUIRED_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "sales": ("order_id", "line_no", "ordered_at", "sku", "quantity", "unit_price", "status"),
    "catalog": ("sku", "product_name", "brand", "category", "species", "list_price"),
    "stores": ("store_id", "state"),
    "customers": ("customer_id", "signup_date"),
}


@dataclass(frozen=True)
class RegistryIssue:
    file: str
    row: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" row {self.row}" if self.row is not None else "")
        return f"{where}, field {self.field!r}: {self.reason}"


class RegistryError(ValueError):
    """The registry is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[RegistryIssue]):
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"invalid source registry ({len(issues)} problems):\n{lines}")


@dataclass(frozen=True)
class FeedLayout:
    """How one profile writes one feed: source column name -> canonical column name."""

    columns: Mapping[str, str]

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

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.feed}"

    @property
    def layout(self) -> FeedLayout:
        return self.profile.feeds[self.feed]


@dataclass(frozen=True)
class Registry:
    providers: Mapping[str, Provider]
    profiles: Mapping[str, Profile]
    sources: Mapping[tuple[str, str], Source] = field(default_factory=dict)

    def source(self, provider: str, feed: str) -> Source | None:
        return self.sources.get((provider, feed))

    def provider_slugs(self) -> list[str]:
        return sorted(self.providers)

    def sources_for(self, provider: str) -> list[Source]:
        return [s for (p, _), s in sorted(self.sources.items()) if p == provider]

    def active_sources(self) -> list[Source]:
        return [s for _, s in sorted(self.sources.items()) if s.active]


def load_registry(directory: Path | None = None) -> Registry:
    """Load and validate the registry in ``directory`` (default: the one shipped in the package)."""
    directory = directory or DEFAULT_REGISTRY_DIR
    issues: list[RegistryIssue] = []
    profiles = _load_profiles(directory / "profiles.yaml", issues)
    providers = _load_providers(directory / "providers.csv", profiles, issues)
    sources = _load_sources(directory / "sources.csv", providers, profiles, issues)
    if issues:
        raise RegistryError(issues)
    return Registry(providers=providers, profiles=profiles, sources=sources)


def _read_csv(path: Path, expected: tuple[str, ...], issues: list[RegistryIssue]) -> list[dict[str, str]]:
    if not path.exists():
        issues.append(RegistryIssue(path.name, None, "-", "file not found"))
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        header = tuple(reader.fieldnames or ())
        missing = [c for c in expected if c not in header]
        if missing:
            issues.append(RegistryIssue(path.name, 1, ",".join(missing), "missing column(s) in header"))
            return []
        return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]


def _load_profiles(path: Path, issues: list[RegistryIssue]) -> dict[str, Profile]:
    if not path.exists():
        issues.append(RegistryIssue(path.name, None, "-", "file not found"))
        return {}
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        issues.append(RegistryIssue(path.name, None, "-", f"not valid YAML: {exc}"))
        return {}
    raw_profiles = document.get("profiles") if isinstance(document, dict) else None
    if not isinstance(raw_profiles, dict):
        issues.append(RegistryIssue(path.name, None, "profiles", "expected a mapping of profiles"))
        return {}
    profiles: dict[str, Profile] = {}
    for name, raw in raw_profiles.items():
        profile = _parse_profile(path.name, str(name), raw, issues)
        if profile is not None:
            profiles[profile.name] = profile
    return profiles


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
        missing = sorted(set(REQUIRED_COLUMNS[feed]) - set(columns.values()))
        if missing:
            issues.append(RegistryIssue(file, None, f"{fwhere}.columns", f"required columns not mapped: {missing}"))
        feeds[feed] = FeedLayout(columns=columns)
    if len(issues) > before:
        return None
    return Profile(
        name=name,
        format=fmt,
        delimiter=delimiter,
        encoding=encoding,
        datetime_format=str(raw.get("datetime_format", "iso")),
        date_format=str(raw.get("date_format", "%Y-%m-%d")),
        money_format=money,
        channel=channel,
        feeds=feeds,
    )


def _valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _load_providers(path: Path, profiles: Mapping[str, Profile], issues: list[RegistryIssue]) -> dict[str, Provider]:
    rows = _read_csv(path, ("provider", "name", "kind", "profile", "timezone", "currency"), issues)
    providers: dict[str, Provider] = {}
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        slug = row["provider"]
        if not PROVIDER_PATTERN.fullmatch(slug):
            issues.append(
                RegistryIssue(path.name, line, "provider", f"{slug!r} is not a valid slug {PROVIDER_PATTERN.pattern}")
            )
        elif slug in providers:
            issues.append(RegistryIssue(path.name, line, "provider", f"{slug!r} is listed twice"))
        if not row["name"]:
            issues.append(RegistryIssue(path.name, line, "name", "empty"))
        if row["kind"] not in KINDS:
            issues.append(RegistryIssue(path.name, line, "kind", f"{row['kind']!r} is not one of {KINDS}"))
        if row["profile"] not in profiles:
            issues.append(RegistryIssue(path.name, line, "profile", f"unknown profile {row['profile']!r}"))
        if not _valid_timezone(row["timezone"]):
            issues.append(RegistryIssue(path.name, line, "timezone", f"unknown timezone {row['timezone']!r}"))
        if not re.fullmatch(r"[A-Z]{3}", row["currency"]):
            issues.append(RegistryIssue(path.name, line, "currency", f"{row['currency']!r} is not an ISO 4217 code"))
        if len(issues) == before:
            providers[slug] = Provider(
                provider=slug,
                name=row["name"],
                kind=row["kind"],
                profile=row["profile"],
                timezone=row["timezone"],
                currency=row["currency"],
            )
    return providers


def _load_sources(
    path: Path,
    providers: Mapping[str, Provider],
    profiles: Mapping[str, Profile],
    issues: list[RegistryIssue],
) -> dict[tuple[str, str], Source]:
    rows = _read_csv(path, ("provider", "feed", "format", "expected_every_hours", "active"), issues)
    sources: dict[tuple[str, str], Source] = {}
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        slug, feed = row["provider"], row["feed"]
        provider = providers.get(slug)
        if provider is None:
            issues.append(RegistryIssue(path.name, line, "provider", f"{slug!r} is not in providers.csv"))
        if feed not in FEEDS:
            issues.append(RegistryIssue(path.name, line, "feed", f"{feed!r} is not one of {FEEDS}"))
        if (slug, feed) in sources:
            issues.append(RegistryIssue(path.name, line, "feed", f"{slug}/{feed} is listed twice"))
        fmt = row["format"]
        if fmt and fmt not in FORMATS:
            issues.append(RegistryIssue(path.name, line, "format", f"{fmt!r} is not one of {FORMATS}"))
        every = row["expected_every_hours"]
        if not re.fullmatch(r"[0-9]{1,6}", every) or int(every) <= 0:
            issues.append(
                RegistryIssue(path.name, line, "expected_every_hours", f"{every!r} is not a positive integer")
            )
        active = row["active"].lower()
        if active not in ("true", "false"):
            issues.append(RegistryIssue(path.name, line, "active", f"{row['active']!r} is not true/false"))
        profile = profiles.get(provider.profile) if provider else None
        if provider is not None and profile is not None and feed in FEEDS and feed not in profile.feeds:
            issues.append(
                RegistryIssue(path.name, line, "feed", f"profile {profile.name!r} has no layout for {feed!r}")
            )
        if len(issues) == before and provider is not None and profile is not None:
            sources[(slug, feed)] = Source(
                provider=slug,
                feed=feed,
                format=fmt or profile.format,
                expected_every_hours=int(every),
                active=active == "true",
                profile=profile,
                timezone=provider.timezone,
                currency=provider.currency,
            )
    return sources


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
