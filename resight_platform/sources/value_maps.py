"""Scoped value maps: a provider's, or one source's, own aliases, applied to its rows only, over the
global mapping tables.

``value_maps.csv`` in the registry directory (optional), one row per alias::

    provider,feed,map,alias,value,match,extra
    tiny_pets,,status,SOLD,completed,,
    tiny_pets,sales,status,r[0-9]+,returned,regex,
    tiny_pets,catalog,brands,hb,Happy Bowl,,Happy Bowl Foods

- ``feed`` empty: every feed of the provider; else that source only.
- ``map``: ``status``, ``species``, ``units``, ``categories``, ``channels``, ``brands`` (value a
  brand, ``extra`` its manufacturer: optional for a brand the global table knows, where it must
  agree, and required for a new one) or ``states`` (alias -> 2-letter state code, e.g.
  ``California`` -> ``CA``).
- ``match``: ``exact`` (default) compares the normalised alias (trimmed, lower case, single
  spaces); ``regex`` is a pattern that must match the whole normalised value (Rust regex syntax,
  as Polars runs it).
- ``value`` must be a canonical value of the global tables (a scoped map adds aliases, never
  vocabulary).

A value is looked up in the most specific scope first: the source's exact aliases, the source's
patterns (in file order), the provider's exact aliases, the provider's patterns, then the global
table.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field

import polars as pl

from resight_platform.sources.issues import Reader, RegistryIssue, read_csv
from resight_platform.sources.mappings import Mappings, normalise_alias

__all__ = [
    "MATCHES",
    "SCOPED_MAPS",
    "VALUE_MAPS_FILE",
    "ScopedEntry",
    "ScopedLookup",
    "ValueMaps",
    "full_match",
    "read_value_maps",
]

VALUE_MAPS_FILE = "value_maps.csv"
SCOPED_MAPS: tuple[str, ...] = ("status", "species", "units", "categories", "channels", "brands", "states")
MATCHES: tuple[str, ...] = ("exact", "regex")


@dataclass(frozen=True)
class ScopedEntry:
    """One alias of a scoped map: what it maps to (``extra``: a brand's manufacturer)."""

    alias: str
    value: str
    extra: str | None = None


@dataclass(frozen=True)
class ScopedLookup:
    """The scoped entries of one map for the providers of one frame, by precedence.

    ``exact[level]`` maps ``(provider, normalised alias)`` to an entry; ``patterns[level]`` lists
    ``(provider, full-match regex, entry)``; level 0 is the source's own scope, level 1 the
    provider's.
    """

    exact: tuple[dict[tuple[str, str], ScopedEntry], dict[tuple[str, str], ScopedEntry]]
    patterns: tuple[list[tuple[str, str, ScopedEntry]], list[tuple[str, str, ScopedEntry]]]

    @property
    def empty(self) -> bool:
        return not any(self.exact) and not any(self.patterns)


@dataclass(frozen=True)
class _Scope:
    exact: dict[str, ScopedEntry] = field(default_factory=dict)
    patterns: list[ScopedEntry] = field(default_factory=list)


@dataclass(frozen=True)
class ValueMaps:
    """Every scoped map of a registry, keyed by ``(map, provider, feed)`` (feed ``""``: all feeds)."""

    scopes: Mapping[tuple[str, str, str], _Scope] = field(default_factory=dict)

    def __len__(self) -> int:
        return sum(len(s.exact) + len(s.patterns) for s in self.scopes.values())

    def providers(self) -> set[str]:
        """The providers with at least one scoped map."""
        return {provider for _, provider, _ in self.scopes}

    def lookup(self, name: str, feed: str, providers: Iterable[str]) -> ScopedLookup:
        """The entries of map ``name`` that apply to rows of ``feed`` from ``providers``; the work
        grows with the providers of the frame, not with the registry."""
        exact: tuple[dict[tuple[str, str], ScopedEntry], dict[tuple[str, str], ScopedEntry]] = ({}, {})
        patterns: tuple[list[tuple[str, str, ScopedEntry]], list[tuple[str, str, ScopedEntry]]] = ([], [])
        for provider in providers:
            for level, scope_feed in enumerate((feed, "")):
                scope = self.scopes.get((name, provider, scope_feed))
                if scope is None:
                    continue
                exact[level].update({(provider, alias): entry for alias, entry in scope.exact.items()})
                patterns[level].extend((provider, full_match(e.alias), e) for e in scope.patterns)
        return ScopedLookup(exact=exact, patterns=patterns)

    def resolve(self, name: str, provider: str, feed: str, value: str) -> ScopedEntry | None:
        """The scoped entry ``value`` maps to for one source (Python-side; silver uses ``lookup``)."""
        alias = normalise_alias(value)
        for scope_feed in (feed, ""):
            scope = self.scopes.get((name, provider, scope_feed))
            if scope is None:
                continue
            if alias in scope.exact:
                return scope.exact[alias]
            for entry in scope.patterns:
                if pl.select(pl.lit(alias).str.contains(full_match(entry.alias))).item():
                    return entry
        return None


def full_match(pattern: str) -> str:
    """``pattern`` as silver runs it: on the whole normalised value, ignoring case."""
    return f"(?i)^(?:{pattern})$"


def _regex_error(pattern: str) -> str | None:
    """Why Polars (the engine that runs the pattern) refuses ``pattern``; None if it compiles."""
    try:
        pl.select(pl.lit("").str.contains(full_match(pattern)))
    except pl.exceptions.PolarsError as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _canonical_issue(name: str, value: str, extra: str, mappings: Mappings) -> tuple[str, str] | None:
    """(field, reason) when ``value``/``extra`` is not canonical for map ``name``."""
    if name == "brands":
        if not value:
            return "value", "empty"
        maker = mappings.manufacturer_of(value)
        if maker is None and not extra:
            return "extra", f"brand {value!r} is not in mappings/brands.csv: give its manufacturer in 'extra'"
        if maker is not None and extra and extra != maker:
            return "extra", f"brand {value!r} is made by {maker!r} in mappings/brands.csv, not {extra!r}"
        return None
    known = mappings.canonical(name)
    if value not in known:
        return "value", f"unknown canonical value {value!r}; {name} are {sorted(known)}"
    return None


def read_value_maps(
    read: Reader,
    issues: list[RegistryIssue],
    *,
    providers: Collection[str],
    sources: Collection[tuple[str, str]],
    feeds: Collection[str],
    mappings: Mappings,
) -> ValueMaps:
    """Read and check ``value_maps.csv`` (optional), appending every problem to ``issues``: an
    unknown provider, feed, source or map, an empty alias, a bad regex, a value the global tables
    do not know (unknown canonical value) and an alias of one scope mapped twice to different values
    (conflicting map)."""
    name = VALUE_MAPS_FILE
    rows = read_csv(read, name, ("provider", "feed", "map", "alias", "value"), issues, optional=True)
    scopes: dict[tuple[str, str, str], _Scope] = {}
    first: dict[tuple[str, str, str, str, str], tuple[int, ScopedEntry]] = {}
    for line, row in enumerate(rows, start=2):
        before = len(issues)
        provider, feed, map_name = row["provider"], row["feed"], row["map"]
        match = row.get("match", "") or "exact"
        value, extra = row["value"], row.get("extra", "")
        if provider not in providers:
            issues.append(RegistryIssue(name, line, "provider", f"{provider!r} is not in providers.csv"))
        if feed and feed not in feeds:
            issues.append(RegistryIssue(name, line, "feed", f"{feed!r} is not one of {tuple(feeds)}"))
        elif feed and provider in providers and (provider, feed) not in sources:
            issues.append(RegistryIssue(name, line, "feed", f"{provider}/{feed} is not in sources.csv"))
        if map_name not in SCOPED_MAPS:
            issues.append(RegistryIssue(name, line, "map", f"{map_name!r} is not one of {SCOPED_MAPS}"))
        if match not in MATCHES:
            issues.append(RegistryIssue(name, line, "match", f"{match!r} is not one of {MATCHES}"))
        alias = normalise_alias(row["alias"]) if match == "exact" else row["alias"]
        if not alias:
            issues.append(RegistryIssue(name, line, "alias", "empty"))
        elif match == "regex":
            error = _regex_error(alias)
            if error is not None:
                issues.append(RegistryIssue(name, line, "alias", f"bad regex {alias!r}: {error}"))
        if map_name in SCOPED_MAPS:
            problem = _canonical_issue(map_name, value, extra, mappings)
            if problem is not None:
                issues.append(RegistryIssue(name, line, *problem))
        if len(issues) > before:
            continue
        if map_name == "brands" and not extra:
            extra = mappings.manufacturer_of(value) or ""
        entry = ScopedEntry(alias=alias, value=value, extra=extra or None)
        key = (map_name, provider, feed, match, alias)
        if key in first:
            row_of, earlier = first[key]
            if earlier != entry:
                issues.append(
                    RegistryIssue(
                        name,
                        line,
                        "alias",
                        f"conflicting map: {alias!r} ({map_name}, {provider}/{feed or '*'}) maps to "
                        f"{earlier.value!r} at row {row_of}, here to {value!r}",
                    )
                )
            continue
        first[key] = (line, entry)
        scope = scopes.setdefault((map_name, provider, feed), _Scope())
        if match == "exact":
            scope.exact[alias] = entry
        else:
            scope.patterns.append(entry)
    return ValueMaps(scopes=scopes)
