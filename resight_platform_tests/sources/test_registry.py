"""The source registry: the packaged one loads, and every kind of bad edit is reported precisely."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from resight_platform.sources.mappings import load_mappings
from resight_platform.sources.registry import (
    CANONICAL_COLUMNS,
    DEFAULT_REGISTRY_DIR,
    FEEDS,
    FORMATS,
    REQUIRED_COLUMNS,
    VERSION_CHARS,
    Registry,
    RegistryError,
    RegistryIssue,
    check_registry,
    load_registry,
    registry_rows,
    registry_version,
)

PROVIDER_COLUMNS = ["provider", "name", "kind", "profile", "timezone", "currency"]
SOURCE_COLUMNS = ["provider", "feed", "format", "expected_every_hours", "active"]


# --- helpers: copy the packaged registry and break it ------------------------------------------


@pytest.fixture
def registry_dir(tmp_path: Path) -> Path:
    """A writable copy of the packaged registry."""
    target = tmp_path / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, target)
    return target


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def append_provider(directory: Path, **overrides: str) -> int:
    """Append a valid provider row with ``overrides``; return its row number (header = row 1)."""
    path = directory / "providers.csv"
    rows = read_rows(path)
    row = {
        "provider": "new_partner",
        "name": "New Partner",
        "kind": "retail",
        "profile": "standard_csv",
        "timezone": "America/New_York",
        "currency": "USD",
    }
    rows.append({**row, **overrides})
    write_rows(path, PROVIDER_COLUMNS, rows)
    return len(rows) + 1


def append_source(directory: Path, **values: str) -> int:
    path = directory / "sources.csv"
    rows = read_rows(path)
    rows.append({"format": "", "expected_every_hours": "24", "active": "true", **values})
    write_rows(path, SOURCE_COLUMNS, rows)
    return len(rows) + 1


def edit_source(directory: Path, provider: str, feed: str, **values: str) -> int:
    """Change one existing sources.csv row in place; return its row number."""
    path = directory / "sources.csv"
    rows = read_rows(path)
    index = next(i for i, r in enumerate(rows) if (r["provider"], r["feed"]) == (provider, feed))
    rows[index].update(values)
    write_rows(path, SOURCE_COLUMNS, rows)
    return index + 2


def add_profile(directory: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> None:
    """Add a copy of ``standard_csv`` named ``name``, changed by ``edit``."""
    path = directory / "profiles.yaml"
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    profile = yaml.safe_load(yaml.safe_dump(document["profiles"]["standard_csv"]))  # deep copy
    edit(profile)
    document["profiles"][name] = profile
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")


def issues_of(directory: Path) -> list[RegistryIssue]:
    with pytest.raises(RegistryError) as caught:
        load_registry(directory)
    assert caught.value.issues, "RegistryError without issues"
    message = str(caught.value)
    assert f"({len(caught.value.issues)} problems)" in message
    for issue in caught.value.issues:
        assert str(issue) in message
    return caught.value.issues


def find_issue(issues: list[RegistryIssue], file: str, row: int | None, field: str, reason: str) -> RegistryIssue:
    """The issue of ``file``, ``row`` and ``field`` whose reason holds ``reason``. In profiles.yaml a
    row is the line of the key the field names: None there takes any line (the lines themselves are
    tested in ``test_profile_issues_name_the_line_of_their_key``)."""
    any_line = file == "profiles.yaml" and row is None
    matches = [
        i for i in issues if (i.file, i.field) == (file, field) and (any_line or i.row == row) and reason in i.reason
    ]
    assert matches, f"no issue {file} row {row} field {field!r} ~ {reason!r} in:\n" + "\n".join(map(str, issues))
    return matches[0]


# --- the packaged registry ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def packaged() -> Registry:
    return load_registry()


def test_packaged_registry_loads(packaged: Registry) -> None:
    assert len(packaged.providers) == 40
    assert len(packaged.sources) == 140
    assert packaged.provider_slugs() == sorted(packaged.providers)
    for provider in packaged.providers.values():
        assert provider.profile in packaged.profiles, provider
    for (slug, feed), source in packaged.sources.items():
        assert (source.provider, source.feed) == (slug, feed)
        assert source.key == f"{slug}/{feed}"
        assert source.format in FORMATS
        assert source.expected_every_hours > 0
        assert source.profile is packaged.profiles[packaged.providers[slug].profile]
        assert (source.timezone, source.currency) == (
            packaged.providers[slug].timezone,
            packaged.providers[slug].currency,
        )
        layout = source.layout
        assert set(layout.columns.values()) <= set(CANONICAL_COLUMNS[feed])
        assert set(REQUIRED_COLUMNS[feed]) <= set(layout.columns.values())
        assert layout.canonical_to_source == {c: s for s, c in layout.columns.items()}


def test_packaged_registry_lookups(packaged: Registry) -> None:
    pawmart = packaged.source("pawmart", "sales")
    assert pawmart is not None and pawmart.profile.name == "standard_csv" and pawmart.format == "csv"
    assert packaged.source("pawmart", "returns") is None
    assert packaged.source("nobody", "sales") is None
    assert [s.feed for s in packaged.sources_for("pawmart")] == sorted(FEEDS)
    active = packaged.active_sources()
    assert all(s.active for s in active)
    assert {s.key for s in active} == {s.key for s in packaged.sources.values() if s.active}


def test_an_unchanged_copy_loads_the_same(registry_dir: Path, packaged: Registry) -> None:
    assert load_registry(registry_dir) == packaged


def test_registry_rows_one_per_source(packaged: Registry) -> None:
    rows = list(registry_rows(packaged))
    assert len(rows) == len(packaged.sources) == 140
    assert len({(r["provider"], r["feed"]) for r in rows}) == 140
    expected_keys = {
        "provider",
        "feed",
        "provider_name",
        "kind",
        "profile",
        "format",
        "timezone",
        "currency",
        "expected_every_hours",
        "active",
    }
    assert all(set(r) == expected_keys for r in rows)
    pawmart = next(r for r in rows if (r["provider"], r["feed"]) == ("pawmart", "sales"))
    assert pawmart == {
        "provider": "pawmart",
        "feed": "sales",
        "provider_name": "PawMart",
        "kind": "retail",
        "profile": "standard_csv",
        "format": "csv",
        "timezone": "America/New_York",
        "currency": "USD",
        "expected_every_hours": 24,
        "active": True,
    }


# --- one test per kind of problem ---------------------------------------------------------------


def test_bad_provider_slug(registry_dir: Path) -> None:
    row = append_provider(registry_dir, provider="Bad-Slug")
    find_issue(issues_of(registry_dir), "providers.csv", row, "provider", "'Bad-Slug' is not a valid slug")


def test_duplicate_provider(registry_dir: Path) -> None:
    row = append_provider(registry_dir, provider="pawmart")
    find_issue(issues_of(registry_dir), "providers.csv", row, "provider", "'pawmart' is listed twice")


def test_unknown_kind(registry_dir: Path) -> None:
    row = append_provider(registry_dir, kind="zoo")
    find_issue(issues_of(registry_dir), "providers.csv", row, "kind", "'zoo' is not one of")


def test_unknown_profile(registry_dir: Path) -> None:
    row = append_provider(registry_dir, profile="spreadsheet")
    find_issue(issues_of(registry_dir), "providers.csv", row, "profile", "unknown profile 'spreadsheet'")


@pytest.mark.parametrize("timezone", ["Mars/Olympus_Mons", "EST5EDT/../x", ""])
def test_bad_timezone(registry_dir: Path, timezone: str) -> None:
    row = append_provider(registry_dir, timezone=timezone)
    find_issue(issues_of(registry_dir), "providers.csv", row, "timezone", f"unknown timezone {timezone!r}")


@pytest.mark.parametrize("currency", ["usd", "US", "EURO", "$"])
def test_bad_currency(registry_dir: Path, currency: str) -> None:
    row = append_provider(registry_dir, currency=currency)
    find_issue(issues_of(registry_dir), "providers.csv", row, "currency", "is not an ISO 4217 code")


def test_empty_provider_name(registry_dir: Path) -> None:
    row = append_provider(registry_dir, name="")
    find_issue(issues_of(registry_dir), "providers.csv", row, "name", "empty")


def test_source_for_unknown_provider(registry_dir: Path) -> None:
    row = append_source(registry_dir, provider="ghost_pets", feed="sales")
    find_issue(issues_of(registry_dir), "sources.csv", row, "provider", "'ghost_pets' is not in providers.csv")


def test_unknown_feed(registry_dir: Path) -> None:
    row = append_source(registry_dir, provider="pawmart", feed="returns")
    find_issue(issues_of(registry_dir), "sources.csv", row, "feed", "'returns' is not one of")


def test_duplicate_source(registry_dir: Path) -> None:
    row = append_source(registry_dir, provider="pawmart", feed="sales")
    find_issue(issues_of(registry_dir), "sources.csv", row, "feed", "pawmart/sales is listed twice")


@pytest.mark.parametrize("fmt", ["xlsx", "CSV", "csv.zip"])
def test_bad_format(registry_dir: Path, fmt: str) -> None:
    row = edit_source(registry_dir, "pawmart", "sales", format=fmt)
    find_issue(issues_of(registry_dir), "sources.csv", row, "format", f"{fmt!r} is not one of")


@pytest.mark.parametrize(
    "every",
    ["0", "-24", "", "twelve", "1.5", pytest.param("\u00b2", id="superscript-two")],  # "²".isdigit() is True
)
def test_non_positive_expected_every_hours(registry_dir: Path, every: str) -> None:
    row = edit_source(registry_dir, "pawmart", "sales", expected_every_hours=every)
    find_issue(issues_of(registry_dir), "sources.csv", row, "expected_every_hours", "is not a positive integer")


@pytest.mark.parametrize("active", ["yes", "1", ""])
def test_bad_active_flag(registry_dir: Path, active: str) -> None:
    row = edit_source(registry_dir, "pawmart", "sales", active=active)
    find_issue(issues_of(registry_dir), "sources.csv", row, "active", f"{active!r} is not true/false")


def test_active_flag_is_case_insensitive(registry_dir: Path) -> None:
    edit_source(registry_dir, "pawmart", "sales", active="FALSE")
    edit_source(registry_dir, "pawmart", "catalog", active="True")
    registry = load_registry(registry_dir)
    assert registry.sources[("pawmart", "sales")].active is False
    assert registry.sources[("pawmart", "catalog")].active is True


def test_format_override_and_default(registry_dir: Path) -> None:
    edit_source(registry_dir, "pawmart", "sales", format="parquet")
    registry = load_registry(registry_dir)
    assert registry.sources[("pawmart", "sales")].format == "parquet"
    assert registry.sources[("pawmart", "catalog")].format == "csv"  # the profile's


def test_profile_missing_a_required_column(registry_dir: Path) -> None:
    def drop_order_id(profile: dict[str, Any]) -> None:
        del profile["feeds"]["sales"]["columns"]["order_id"]

    add_profile(registry_dir, "no_order_id", drop_order_id)
    find_issue(
        issues_of(registry_dir),
        "profiles.yaml",
        None,
        "profiles.no_order_id.feeds.sales.columns",
        "required columns not mapped: ['order_id']",
    )


def test_profile_with_a_non_canonical_column(registry_dir: Path) -> None:
    def add_colour(profile: dict[str, Any]) -> None:
        profile["feeds"]["catalog"]["columns"]["Colour"] = "colour"

    add_profile(registry_dir, "colourful", add_colour)
    find_issue(
        issues_of(registry_dir),
        "profiles.yaml",
        None,
        "profiles.colourful.feeds.catalog.columns",
        "not canonical catalog columns: ['colour']",
    )


def test_profile_with_a_column_mapped_twice(registry_dir: Path) -> None:
    def double_sku(profile: dict[str, Any]) -> None:
        profile["feeds"]["sales"]["columns"]["item_sku"] = "sku"

    add_profile(registry_dir, "two_skus", double_sku)
    find_issue(
        issues_of(registry_dir),
        "profiles.yaml",
        None,
        "profiles.two_skus.feeds.sales.columns",
        "mapped twice: ['sku']",
    )


@pytest.mark.parametrize(
    ("key", "value", "field", "reason"),
    [
        ("format", "xls", "format", "'xls' is not one of"),
        ("money_format", "pennies", "money_format", "'pennies' is not one of"),
        ("channel", "phone", "channel", "'phone' is not one of"),
        ("delimiter", ";;", "delimiter", "must be one character"),
        ("encoding", "klingon-8", "encoding", "unknown encoding 'klingon-8'"),
        ("feeds", {}, "feeds", "expected a mapping of feeds"),
    ],
)
def test_profile_settings(registry_dir: Path, key: str, value: object, field: str, reason: str) -> None:
    def change(profile: dict[str, Any]) -> None:
        profile[key] = value

    add_profile(registry_dir, "odd", change)
    find_issue(issues_of(registry_dir), "profiles.yaml", None, f"profiles.odd.{field}", reason)


def test_profile_issues_name_the_line_of_their_key(registry_dir: Path) -> None:
    path = registry_dir / "profiles.yaml"
    path.write_text(
        path.read_text(encoding="utf-8")
        + "  odd:\n"
        + "    format: csv\n"
        + "    money_format: pennies\n"
        + "    feeds:\n"
        + "      sales:\n"
        + "        columns: {id: order_id, colour: colour}\n",
        encoding="utf-8",
    )
    lines = path.read_text(encoding="utf-8").splitlines()
    at = {text.strip().split(":")[0]: number for number, text in enumerate(lines, start=1) if number > len(lines) - 6}
    issues = issues_of(registry_dir)
    assert find_issue(issues, "profiles.yaml", at["money_format"], "profiles.odd.money_format", "'pennies'")
    assert find_issue(issues, "profiles.yaml", at["columns"], "profiles.odd.feeds.sales.columns", "not canonical")


def test_profile_with_an_unknown_feed(registry_dir: Path) -> None:
    def add_returns(profile: dict[str, Any]) -> None:
        profile["feeds"]["returns"] = {"columns": {"id": "order_id"}}

    add_profile(registry_dir, "with_returns", add_returns)
    find_issue(issues_of(registry_dir), "profiles.yaml", None, "profiles.with_returns.feeds.returns", "unknown feed")


def test_source_whose_profile_has_no_layout_for_the_feed(registry_dir: Path) -> None:
    def sales_only(profile: dict[str, Any]) -> None:
        profile["feeds"] = {"sales": profile["feeds"]["sales"]}

    add_profile(registry_dir, "sales_only", sales_only)
    append_provider(registry_dir, provider="tiny_shop", profile="sales_only")
    append_source(registry_dir, provider="tiny_shop", feed="sales")
    row = append_source(registry_dir, provider="tiny_shop", feed="stores")
    issues = issues_of(registry_dir)
    find_issue(issues, "sources.csv", row, "feed", "profile 'sales_only' has no layout for 'stores'")
    assert len(issues) == 1


def test_invalid_yaml(registry_dir: Path) -> None:
    (registry_dir / "profiles.yaml").write_text("profiles:\n  standard_csv: [unclosed\n", encoding="utf-8")
    find_issue(issues_of(registry_dir), "profiles.yaml", None, "-", "not valid YAML")


def test_yaml_without_a_profiles_mapping(registry_dir: Path) -> None:
    (registry_dir / "profiles.yaml").write_text("- just\n- a list\n", encoding="utf-8")
    find_issue(issues_of(registry_dir), "profiles.yaml", None, "profiles", "expected a mapping of profiles")


@pytest.mark.parametrize("name", ["providers.csv", "sources.csv", "profiles.yaml"])
def test_missing_file(registry_dir: Path, name: str) -> None:
    (registry_dir / name).unlink()
    find_issue(issues_of(registry_dir), name, None, "-", "file not found")


def test_missing_header_column(registry_dir: Path) -> None:
    path = registry_dir / "sources.csv"
    rows = read_rows(path)
    columns = [c for c in SOURCE_COLUMNS if c != "active"]
    write_rows(path, columns, [{k: v for k, v in r.items() if k != "active"} for r in rows])
    find_issue(issues_of(registry_dir), "sources.csv", 1, "active", "missing column(s) in header")


def test_several_problems_are_reported_at_once(registry_dir: Path) -> None:
    def drop_sku(profile: dict[str, Any]) -> None:
        del profile["feeds"]["catalog"]["columns"]["sku"]

    add_profile(registry_dir, "no_sku", drop_sku)
    bad_slug = append_provider(registry_dir, provider="X")
    bad_tz = append_provider(registry_dir, provider="late_tz", timezone="Nowhere/Town")
    bad_every = edit_source(registry_dir, "pawmart", "sales", expected_every_hours="0")
    bad_active = edit_source(registry_dir, "pawmart", "catalog", active="maybe")
    issues = issues_of(registry_dir)
    find_issue(issues, "profiles.yaml", None, "profiles.no_sku.feeds.catalog.columns", "['sku']")
    find_issue(issues, "providers.csv", bad_slug, "provider", "not a valid slug")
    find_issue(issues, "providers.csv", bad_tz, "timezone", "unknown timezone")
    find_issue(issues, "sources.csv", bad_every, "expected_every_hours", "not a positive integer")
    find_issue(issues, "sources.csv", bad_active, "active", "not true/false")
    assert len(issues) == 5


def test_one_row_with_several_problems_reports_each(registry_dir: Path) -> None:
    row = append_provider(registry_dir, kind="zoo", timezone="Nowhere/Town", currency="usd")
    issues = issues_of(registry_dir)
    assert {(i.row, i.field) for i in issues} == {(row, "kind"), (row, "timezone"), (row, "currency")}


# --- one registry, all data: mapping tables, scoped value maps, constants and defaults ---------

VALUE_MAP_COLUMNS = ["provider", "feed", "map", "alias", "value", "match", "extra"]
SOURCE_VALUE_COLUMNS = ["provider", "feed", "column", "kind", "value"]


def append_rows(directory: Path, name: str, columns: list[str], *rows: dict[str, str]) -> list[int]:
    """Append ``rows`` to ``name`` (created with ``columns`` if absent); return their row numbers."""
    path = directory / name
    existing = read_rows(path) if path.exists() else []
    existing.extend({c: row.get(c, "") for c in columns} for row in rows)
    write_rows(path, columns, existing)
    first = len(existing) - len(rows) + 2
    return list(range(first, first + len(rows)))


def value_map(provider: str, map_name: str, alias: str, value: str, **more: str) -> dict[str, str]:
    return {"provider": provider, "map": map_name, "alias": alias, "value": value, **more}


def test_packaged_registry_holds_its_mapping_tables(packaged: Registry) -> None:
    assert packaged.mappings == load_mappings() == load_mappings(DEFAULT_REGISTRY_DIR / "mappings")
    assert len(packaged.value_maps) == 0
    assert not (DEFAULT_REGISTRY_DIR.parent / "mappings").exists(), "mapping tables live in the registry"


def test_a_registry_reads_its_own_mapping_tables(registry_dir: Path) -> None:
    append_rows(registry_dir, "mappings/species.csv", ["alias", "species"], {"alias": "Doggo", "species": "dog"})
    registry = load_registry(registry_dir)
    assert registry.mappings.species["doggo"] == "dog"
    assert "doggo" not in load_registry().mappings.species


def test_scoped_value_maps_load(registry_dir: Path) -> None:
    append_rows(
        registry_dir,
        "value_maps.csv",
        VALUE_MAP_COLUMNS,
        value_map("pawmart", "status", "RTN", "returned"),
        value_map("pawmart", "status", "r[0-9]+", "returned", match="regex"),
        value_map("pawmart", "status", "RTN", "cancelled", feed="sales"),  # the source's own, over the provider's
        value_map("petopia", "brands", "hb", "Happy Bowl", extra="Happy Bowl Foods"),
        value_map("petopia", "brands", "pp", "Purina Pro Plan"),
        value_map("petopia", "states", "California", "CA"),
    )
    registry = load_registry(registry_dir)
    maps = registry.value_maps
    assert len(maps) == 6 and maps.providers() == {"pawmart", "petopia"}
    resolved = maps.resolve("status", "pawmart", "sales", " rtn ")
    assert resolved is not None and resolved.value == "cancelled"
    resolved = maps.resolve("status", "pawmart", "customers", "RTN")
    assert resolved is not None and resolved.value == "returned"
    resolved = maps.resolve("status", "pawmart", "sales", "R42")
    assert resolved is not None and resolved.value == "returned"
    assert maps.resolve("status", "petopia", "sales", "RTN") is None
    brand = maps.resolve("brands", "petopia", "catalog", "PP")
    assert brand is not None and (brand.value, brand.extra) == ("Purina Pro Plan", "Nestle Purina")
    lookup = maps.lookup("status", "sales", ["pawmart", "petopia"])
    assert lookup.exact[0] == {("pawmart", "rtn"): maps.resolve("status", "pawmart", "sales", "rtn")}
    assert [(p, regex) for p, regex, _ in lookup.patterns[1]] == [("pawmart", "(?i)^(?:r[0-9]+)$")]
    assert maps.lookup("status", "sales", ["petopia"]).empty


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        (value_map("pawmart", "status", "r[0-9", "returned", match="regex"), "alias", "bad regex 'r[0-9'"),
        (value_map("pawmart", "status", "(?<=x)y", "returned", match="regex"), "alias", "bad regex"),
        (value_map("pawmart", "status", "RTN", "refunded"), "value", "unknown canonical value 'refunded'"),
        (value_map("pawmart", "species", "ferret", "ferret"), "value", "unknown canonical value 'ferret'"),
        (value_map("pawmart", "states", "Calif.", "California"), "value", "unknown canonical value 'California'"),
        (value_map("pawmart", "colour", "red", "red"), "map", "'colour' is not one of"),
        (value_map("pawmart", "status", "RTN", "returned", match="fuzzy"), "match", "'fuzzy' is not one of"),
        (value_map("pawmart", "status", " ", "returned"), "alias", "empty"),
        (value_map("ghost_pets", "status", "RTN", "returned"), "provider", "'ghost_pets' is not in providers.csv"),
        (value_map("pawmart", "status", "RTN", "returned", feed="returns"), "feed", "'returns' is not one of"),
        (value_map("pawmart", "brands", "hb", "Happy Bowl"), "extra", "give its manufacturer"),
        (value_map("pawmart", "brands", "pp", "Purina Pro Plan", extra="Mars"), "extra", "made by 'Nestle Purina'"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_value_map(registry_dir: Path, row: dict[str, str], field: str, reason: str) -> None:
    (line,) = append_rows(registry_dir, "value_maps.csv", VALUE_MAP_COLUMNS, row)
    issues = issues_of(registry_dir)
    find_issue(issues, "value_maps.csv", line, field, reason)


def test_value_map_for_a_source_that_is_not_registered(registry_dir: Path) -> None:
    def sales_only(profile: dict[str, Any]) -> None:
        profile["feeds"] = {"sales": profile["feeds"]["sales"]}

    add_profile(registry_dir, "sales_only", sales_only)
    append_provider(registry_dir, provider="tiny_shop", profile="sales_only")
    append_source(registry_dir, provider="tiny_shop", feed="sales")
    (line,) = append_rows(
        registry_dir,
        "value_maps.csv",
        VALUE_MAP_COLUMNS,
        value_map("tiny_shop", "species", "k9", "dog", feed="catalog"),
    )
    find_issue(issues_of(registry_dir), "value_maps.csv", line, "feed", "tiny_shop/catalog is not in sources.csv")


def test_conflicting_scoped_map(registry_dir: Path) -> None:
    first, _same, _other_scope, conflict = append_rows(
        registry_dir,
        "value_maps.csv",
        VALUE_MAP_COLUMNS,
        value_map("pawmart", "status", "RTN", "returned"),
        value_map("pawmart", "status", "rtn ", "returned"),  # the same alias and value again: harmless
        value_map("pawmart", "status", "RTN", "cancelled", feed="sales"),  # another scope: an override
        value_map("pawmart", "status", " Rtn", "cancelled"),
    )
    issues = issues_of(registry_dir)
    issue = find_issue(issues, "value_maps.csv", conflict, "alias", "conflicting map: 'rtn'")
    assert f"'returned' at row {first}, here to 'cancelled'" in issue.reason
    assert len(issues) == 1, issues


def test_conflicting_global_map(registry_dir: Path) -> None:
    (line,) = append_rows(
        registry_dir, "mappings/species.csv", ["alias", "species"], {"alias": "K9 ", "species": "cat"}
    )
    issue = find_issue(issues_of(registry_dir), "mappings/species.csv", line, "alias", "conflicting map: 'k9'")
    assert "maps to 'dog' at row" in issue.reason


def test_global_tables_cannot_add_canonical_values(registry_dir: Path) -> None:
    (species,) = append_rows(
        registry_dir, "mappings/species.csv", ["alias", "species"], {"alias": "ferret", "species": "ferret"}
    )
    (region,) = append_rows(
        registry_dir, "mappings/regions.csv", ["state", "region"], {"state": "PR", "region": "South"}
    )
    issues = issues_of(registry_dir)
    find_issue(issues, "mappings/species.csv", species, "species", "unknown canonical value 'ferret'")
    find_issue(issues, "mappings/regions.csv", region, "region", "unknown canonical value PR->South")


@pytest.mark.parametrize(
    ("table", "columns", "row", "field", "reason"),
    [
        (
            "fx_rates",
            ["currency", "usd_per_unit"],
            {"currency": "EUR", "usd_per_unit": "-1"},
            "usd_per_unit",
            "positive",
        ),
        ("fx_rates", ["currency", "usd_per_unit"], {"currency": "eur", "usd_per_unit": "1.1"}, "currency", "ISO 4217"),
        ("fx_rates", ["currency", "usd_per_unit"], {"currency": "CAD", "usd_per_unit": "0.7"}, "currency", "twice"),
        ("regions", ["state", "region"], {"state": "Texas", "region": "South"}, "state", "2-letter"),
        (
            "brands",
            ["alias", "brand", "manufacturer"],
            {"alias": "acme", "brand": "", "manufacturer": "A"},
            "brand",
            "empty",
        ),
        ("units", ["alias", "unit"], {"alias": "", "unit": "lb"}, "alias", "empty"),
    ],
)
def test_bad_global_mapping_row(
    registry_dir: Path, table: str, columns: list[str], row: dict[str, str], field: str, reason: str
) -> None:
    (line,) = append_rows(registry_dir, f"mappings/{table}.csv", columns, row)
    find_issue(issues_of(registry_dir), f"mappings/{table}.csv", line, field, reason)


def test_missing_mapping_table(registry_dir: Path) -> None:
    (registry_dir / "mappings" / "status.csv").unlink()
    find_issue(issues_of(registry_dir), "mappings/status.csv", None, "-", "file not found")


def test_provider_currency_needs_a_rate(registry_dir: Path) -> None:
    row = append_provider(registry_dir, currency="EUR")
    find_issue(issues_of(registry_dir), "providers.csv", row, "currency", "no USD rate for 'EUR'")


def general_catalog(profile: dict[str, Any]) -> None:
    """A general-merchandise catalog: no species, brand or category column; species is a constant."""
    columns = profile["feeds"]["catalog"]["columns"]
    for column in ("species", "brand", "category"):
        del columns[column]
    profile["feeds"]["catalog"]["constants"] = {"species": "Other"}
    profile["feeds"]["catalog"]["defaults"] = {"pack_unit": "each"}
    profile["feeds"]["customers"]["defaults"] = {"signup_date": "2020-01-01"}


def test_constants_and_defaults_satisfy_required_columns(registry_dir: Path) -> None:
    add_profile(registry_dir, "general", general_catalog)
    append_provider(registry_dir, provider="general_store", profile="general")
    for feed in ("catalog", "customers"):
        append_source(registry_dir, provider="general_store", feed=feed)
    append_rows(registry_dir, "value_maps.csv", VALUE_MAP_COLUMNS, value_map("general_store", "units", "ea", "ct"))
    append_rows(  # a default that maps through the provider's own value map
        registry_dir,
        "source_values.csv",
        SOURCE_VALUE_COLUMNS,
        {"provider": "general_store", "feed": "catalog", "column": "pack_unit", "kind": "default", "value": "EA"},
    )
    registry = load_registry(registry_dir)
    catalog = registry.sources[("general_store", "catalog")]
    assert catalog.constants == {"species": "Other"} and catalog.defaults == {"pack_unit": "EA"}
    assert catalog.required_columns == ("sku", "product_name", "list_price")
    assert registry.sources[("general_store", "customers")].defaults == {"signup_date": "2020-01-01"}
    assert registry.sources[("pawmart", "catalog")].required_columns == REQUIRED_COLUMNS["catalog"]
    # a profile's channel is the sales feed's default channel
    assert registry.sources[("petopia", "sales")].defaults == {"channel": "store"}


def test_source_values_override_the_profile(registry_dir: Path) -> None:
    add_profile(registry_dir, "general", general_catalog)
    append_provider(registry_dir, provider="general_store", profile="general")
    append_source(registry_dir, provider="general_store", feed="catalog")
    append_rows(
        registry_dir,
        "source_values.csv",
        SOURCE_VALUE_COLUMNS,
        {"provider": "general_store", "feed": "catalog", "column": "species", "kind": "default", "value": "dog"},
        {"provider": "pawmart", "feed": "customers", "column": "state", "kind": "constant", "value": "NY"},
    )
    registry = load_registry(registry_dir)
    catalog = registry.sources[("general_store", "catalog")]
    assert catalog.constants == {} and catalog.defaults == {"pack_unit": "each", "species": "dog"}
    assert registry.sources[("pawmart", "customers")].constants == {"state": "NY"}
    assert registry.sources[("pawmart", "sales")].constants == {}


def test_unknown_canonical_column_in_a_profile(registry_dir: Path) -> None:
    def colour(profile: dict[str, Any]) -> None:
        profile["feeds"]["catalog"]["constants"] = {"colour": "red", "species": ""}
        profile["feeds"]["sales"]["defaults"] = {"status": "completed"}
        profile["feeds"]["sales"]["constants"] = {"status": "completed"}

    add_profile(registry_dir, "colourful", colour)
    issues = issues_of(registry_dir)
    where = "profiles.colourful.feeds"
    find_issue(issues, "profiles.yaml", None, f"{where}.catalog.constants.colour", "unknown canonical column 'colour'")
    find_issue(issues, "profiles.yaml", None, f"{where}.catalog.constants.species", "expected a non-empty value")
    find_issue(issues, "profiles.yaml", None, f"{where}.sales.defaults", "also given a constant: ['status']")


def test_bad_source_values(registry_dir: Path) -> None:
    rows = append_rows(
        registry_dir,
        "source_values.csv",
        SOURCE_VALUE_COLUMNS,
        {"provider": "pawmart", "feed": "catalog", "column": "colour", "kind": "constant", "value": "red"},
        {"provider": "pawmart", "feed": "catalog", "column": "species", "kind": "always", "value": "dog"},
        {"provider": "ghost_pets", "feed": "catalog", "column": "species", "kind": "constant", "value": "dog"},
        {"provider": "pawmart", "feed": "catalog", "column": "upc", "kind": "default", "value": ""},
        {"provider": "pawmart", "feed": "sales", "column": "status", "kind": "default", "value": "completed"},
        {"provider": "pawmart", "feed": "sales", "column": "status", "kind": "constant", "value": "completed"},
        {"provider": "pawmart", "feed": "catalog", "column": "species", "kind": "constant", "value": "martian"},
        {"provider": "pawmart", "feed": "catalog", "column": "category", "kind": "default", "value": "suplies"},
        {"provider": "petopia", "feed": "catalog", "column": "category", "kind": "default", "value": "other"},
    )
    issues = issues_of(registry_dir)
    file = "source_values.csv"
    find_issue(issues, file, rows[0], "column", "unknown canonical column 'colour' of catalog")
    find_issue(issues, file, rows[1], "kind", "'always' is not one of")
    find_issue(issues, file, rows[2], "feed", "ghost_pets/catalog is not in sources.csv")
    find_issue(issues, file, rows[3], "value", "empty")
    find_issue(issues, file, rows[5], "column", f"'status' is already given at row {rows[4]}")
    find_issue(issues, file, rows[6], "value", "unknown canonical value: 'martian' is not a species alias")
    find_issue(issues, file, rows[7], "value", "'suplies' is not a categories alias")
    assert len(issues) == 7, issues  # 'other', the category of what is not mapped, is a fine default


def test_profile_constant_must_be_a_canonical_value(registry_dir: Path) -> None:
    def martian(profile: dict[str, Any]) -> None:
        profile["feeds"]["catalog"]["constants"] = {"species": "martian"}

    add_profile(registry_dir, "odd", martian)
    for provider in ("odd_one", "odd_two"):
        append_provider(registry_dir, provider=provider, profile="odd")
        append_source(registry_dir, provider=provider, feed="catalog")
    issues = issues_of(registry_dir)
    find_issue(issues, "profiles.yaml", None, "profiles.odd.feeds.catalog.constants.species", "'martian'")
    assert len(issues) == 1, "reported once for the profile, not once per source"


# --- plausibility data: history start, ceilings --------------------------------------------------


def with_history_start(directory: Path, value: str) -> int:
    """Give ``new_partner`` (appended) a ``history_start`` column value; return its row."""
    row = append_provider(directory)
    path = directory / "providers.csv"
    rows = read_rows(path)
    for entry in rows:
        entry["history_start"] = value if entry["provider"] == "new_partner" else ""
    write_rows(path, [*PROVIDER_COLUMNS, "history_start"], rows)
    return row


@pytest.mark.parametrize("value", ["2026-13-01", "01/02/2026", "yesterday", "1969-12-31", "0001-01-01", "2026-1-1"])
def test_bad_history_start(registry_dir: Path, value: str) -> None:
    row = with_history_start(registry_dir, value)
    find_issue(issues_of(registry_dir), "providers.csv", row, "history_start", repr(value))


def test_history_start_given_or_the_floor(registry_dir: Path) -> None:
    with_history_start(registry_dir, "2024-03-01")
    append_source(registry_dir, provider="new_partner", feed="sales")
    registry = load_registry(registry_dir)
    new, pawmart = registry.source("new_partner", "sales"), registry.source("pawmart", "sales")
    assert new is not None and pawmart is not None
    assert registry.providers["new_partner"].history_start == date(2024, 3, 1) == new.history_start
    assert registry.providers["pawmart"].history_start is None
    assert pawmart.history_start == registry.history_floor == date(2000, 1, 1)
    floored = load_registry(registry_dir, history_floor=date(2020, 1, 1)).source("pawmart", "sales")
    assert floored is not None and floored.history_start == date(2020, 1, 1)


def with_onboarded(directory: Path, value: str) -> int:
    """Give ``new_partner`` (appended) an ``onboarded`` column value; return its row."""
    row = append_provider(directory)
    path = directory / "providers.csv"
    rows = read_rows(path)
    for entry in rows:
        entry["onboarded"] = value if entry["provider"] == "new_partner" else ""
    write_rows(path, [*PROVIDER_COLUMNS, "onboarded"], rows)
    return row


@pytest.mark.parametrize("value", ["2026-13-01", "01/02/2026", "yesterday", "1969-12-31", "2026-1-1"])
def test_bad_onboarded(registry_dir: Path, value: str) -> None:
    row = with_onboarded(registry_dir, value)
    find_issue(issues_of(registry_dir), "providers.csv", row, "onboarded", repr(value))


def test_onboarded_given_reaches_its_sources_and_in_the_future_is_a_warning(registry_dir: Path) -> None:
    row = with_onboarded(registry_dir, "2026-11-20")
    append_source(registry_dir, provider="new_partner", feed="sales")
    registry = load_registry(registry_dir, today=date(2026, 12, 1))
    new, pawmart = registry.source("new_partner", "sales"), registry.source("pawmart", "sales")
    assert new is not None and pawmart is not None
    assert registry.providers["new_partner"].onboarded == date(2026, 11, 20) == new.onboarded
    assert registry.providers["pawmart"].onboarded is None and pawmart.onboarded is None
    assert not [w for w in registry.warnings if w.field == "onboarded"]
    early = check_registry(registry_dir, today=date(2026, 11, 1))
    assert not early.errors
    find_issue(list(early.warnings), "providers.csv", row, "onboarded", "is after today (2026-11-01)")


def write_ceilings(directory: Path, *lines: str) -> Path:
    path = directory / "mappings" / "ceilings.csv"
    path.write_text("\n".join(["category,max_quantity,max_unit_price", *lines]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "field", "reason"),
    [
        ("dragons,10,10.00", "category", "unknown canonical value 'dragons'"),
        ("food,0,10.00", "max_quantity", "'0' is not an integer from 1"),
        ("food,2147483648,10.00", "max_quantity", "'2147483648' is not an integer from 1"),
        ("food,ten,10.00", "max_quantity", "'ten' is not an integer"),
        ("food,10,0", "max_unit_price", "'0' is not a positive USD amount"),
        ("food,10,-5", "max_unit_price", "'-5' is not a positive USD amount"),
        ("food,10,12.345", "max_unit_price", "'12.345' is not a positive USD amount"),
        ("food,10,100000000", "max_unit_price", "'100000000' is not a positive USD amount"),
        ("food,10,$12", "max_unit_price", "'$12' is not a positive USD amount"),
    ],
)
def test_bad_ceiling(registry_dir: Path, line: str, field: str, reason: str) -> None:
    write_ceilings(registry_dir, "*,10000,10000.00", line)
    find_issue(issues_of(registry_dir), "mappings/ceilings.csv", 3, field, reason)


def test_a_category_listed_twice_in_ceilings(registry_dir: Path) -> None:
    write_ceilings(registry_dir, "food,10,10.00", "food,20,20.00")
    find_issue(issues_of(registry_dir), "mappings/ceilings.csv", 3, "category", "'food' is listed twice")


def test_ceilings_fall_back_to_star_then_to_the_default(registry_dir: Path) -> None:
    from resight_platform.sources.mappings import DEFAULT_CEILING

    write_ceilings(registry_dir, "*,50,60.00", "toys,5,6.50")
    mappings = load_registry(registry_dir).mappings
    assert (mappings.ceiling("toys").max_quantity, mappings.ceiling("toys").max_unit_cents) == (5, 650)
    assert (mappings.ceiling("food").max_quantity, mappings.ceiling(None).max_unit_cents) == (50, 6000)
    (registry_dir / "mappings" / "ceilings.csv").unlink()  # optional: the platform's default
    assert load_registry(registry_dir).mappings.ceiling("toys") == DEFAULT_CEILING


# --- date formats, YAML keys, cascades, warnings (what a person onboarding trips on) ------------


@pytest.mark.parametrize(
    ("key", "pattern", "reason"),
    [
        ("date_format", "DD/MM/YYYY", "'DD/MM/YYYY' is not a strftime pattern"),
        ("date_format", "iso", "'iso' is not a strftime pattern"),  # iso is for datetimes only
        ("date_format", "%d/%m", "does not read back a whole date"),  # no year
        ("datetime_format", "%Y-%d %H:%M", "does not read back a whole date"),  # no month
        ("datetime_format", "%Q/%m/%Y", 'is not "iso", "epoch_ms" or a strftime pattern'),
        ("datetime_format", "%m/%d/%Y %I:%M", "12-hour directive"),  # no %p: Polars refuses it
    ],
)
def test_a_date_format_silver_cannot_read_back(registry_dir: Path, key: str, pattern: str, reason: str) -> None:
    def change(profile: dict[str, Any]) -> None:
        profile[key] = pattern

    add_profile(registry_dir, "odd", change)
    find_issue(issues_of(registry_dir), "profiles.yaml", None, f"profiles.odd.{key}", reason)


@pytest.mark.parametrize(
    ("key", "pattern"),
    [
        ("datetime_format", "epoch_ms"),
        ("datetime_format", "%d.%m.%Y %H:%M:%S%.f"),
        ("datetime_format", "%Y-%m-%dT%H:%M:%S%z"),
        ("datetime_format", "%m/%d/%Y %I:%M %p"),
        ("datetime_format", "%m/%d/%Y"),  # a date only: midnight, local time
        ("date_format", "%y%m%d"),
        ("date_format", "%e %b %Y"),
        ("date_format", "%Y-%j"),
    ],
)
def test_date_formats_silver_reads(registry_dir: Path, key: str, pattern: str) -> None:
    def change(profile: dict[str, Any]) -> None:
        profile[key] = pattern

    add_profile(registry_dir, "odd", change)
    assert getattr(load_registry(registry_dir).profiles["odd"], key) == pattern


def test_a_key_given_twice_in_profiles_yaml(registry_dir: Path) -> None:
    path = registry_dir / "profiles.yaml"
    text = path.read_text(encoding="utf-8")
    # YAML would keep the second silently: TransID would no longer be read as order_id.
    text = text.replace("columns: {TransID: order_id,", "columns: {TransID: order_id, TransID: line_no,", 1)
    path.write_text(text, encoding="utf-8")
    line, content = next((n, c) for n, c in enumerate(text.splitlines(), start=1) if "TransID: line_no" in c)
    first, again = content.index("TransID") + 1, content.index("TransID: line_no") + 1
    find_issue(
        issues_of(registry_dir),
        "profiles.yaml",
        line,
        "-",
        f"key 'TransID' at column {again} is given twice (first at line {line} column {first}): YAML keeps the last",
    )


def test_a_merge_key_is_an_override_not_a_duplicate(registry_dir: Path) -> None:
    path = registry_dir / "profiles.yaml"
    text = path.read_text(encoding="utf-8").replace("  standard_csv:\n", "  standard_csv: &standard\n", 1)
    path.write_text(text + '  standard_semicolon:\n    <<: *standard\n    delimiter: ";"\n', encoding="utf-8")
    assert load_registry(registry_dir).profiles["standard_semicolon"].delimiter == ";"


def test_a_broken_profile_is_one_error_not_one_per_partner_and_source(registry_dir: Path) -> None:
    path = registry_dir / "profiles.yaml"
    path.write_text(
        path.read_text(encoding="utf-8").replace('date_format: "%m/%d/%Y"', 'date_format: "MM/DD/YYYY"', 1),
        encoding="utf-8",
    )
    # petopia's profile is legacy_pos: neither it, its sources nor its value map is reported again.
    append_rows(registry_dir, "value_maps.csv", VALUE_MAP_COLUMNS, value_map("petopia", "status", "SOLD", "completed"))
    issues = issues_of(registry_dir)
    assert [(i.file, i.field) for i in issues] == [("profiles.yaml", "profiles.legacy_pos.date_format")]


def test_a_provider_row_in_error_is_not_reported_again_by_its_sources(registry_dir: Path) -> None:
    row = append_provider(registry_dir, timezone="Mars/Olympus")
    append_source(registry_dir, provider="new_partner", feed="sales")
    issues = issues_of(registry_dir)
    assert [(i.file, i.row, i.field) for i in issues] == [("providers.csv", row, "timezone")]


def test_warnings_do_not_refuse_the_registry(registry_dir: Path) -> None:
    quiet = append_provider(registry_dir, provider="quiet_pets")
    future = with_history_start(registry_dir, "2031-01-01")
    append_source(registry_dir, provider="new_partner", feed="sales")
    add_profile(registry_dir, "spare", lambda profile: None)
    registry = load_registry(registry_dir, today=date(2030, 6, 1))
    assert [(w.file, w.row, w.field) for w in registry.warnings] == [
        ("providers.csv", future, "history_start"),
        ("providers.csv", quiet, "provider"),
        ("profiles.yaml", None, "profiles.spare"),
    ]
    assert "every sale would be quarantined as before_history_start" in registry.warnings[0].reason
    assert load_registry(registry_dir, today=date(2031, 1, 1)).warnings[0].field == "provider"  # the day itself


def test_check_registry_returns_errors_and_what_loaded(registry_dir: Path) -> None:
    row = append_provider(registry_dir, kind="shelter")
    checked = check_registry(registry_dir)
    assert [(i.file, i.row, i.field) for i in checked.errors] == [("providers.csv", row, "kind")]
    assert len(checked.registry.providers) == 40  # the packaged 40 loaded; the bad row did not
    assert checked.warnings == ()


# --- versions -----------------------------------------------------------------------------------


def test_the_version_is_of_the_files_read(registry_dir: Path, packaged: Registry) -> None:
    assert len(packaged.version) == VERSION_CHARS and int(packaged.version, 16) >= 0
    (registry_dir / "README.md").write_text("notes for people: not read, not versioned\n")
    assert load_registry(registry_dir).version == packaged.version  # the same files anywhere
    (registry_dir / "value_maps.csv").write_text("provider,feed,map,alias,value\n")  # an optional file, empty
    assert load_registry(registry_dir).version != packaged.version
    assert registry_version({"a.csv": b"x", "b.csv": None}) == registry_version({"a.csv": b"x"})
    assert registry_version({"a.csv": b"xb.csv"}) != registry_version({"a.csv": b"x", "b.csv": b""})


def test_a_providers_version_changes_with_its_own_rows_only(registry_dir: Path, packaged: Registry) -> None:
    assert set(packaged.provider_versions) == set(packaged.providers)
    append_rows(
        registry_dir,
        "value_maps.csv",
        VALUE_MAP_COLUMNS,
        value_map("pawmart", "status", "SOLD", "completed"),
    )
    append_provider(registry_dir)
    append_source(registry_dir, provider="new_partner", feed="sales")
    changed = load_registry(registry_dir)
    differ = {p for p in packaged.providers if changed.provider_version(p) != packaged.provider_version(p)}
    assert differ == {"pawmart"}
    assert changed.provider_version("new_partner") is not None and changed.provider_version("nobody") is None
    edit_source(registry_dir, "petopia", "sales", expected_every_hours="48")
    assert load_registry(registry_dir).provider_version("petopia") != packaged.provider_version("petopia")
    # A global mapping table is every provider's.
    (registry_dir / "mappings" / "status.csv").write_text(
        (registry_dir / "mappings" / "status.csv").read_text(encoding="utf-8") + "shipped ok,completed\n"
    )
    again = load_registry(registry_dir)
    assert all(again.provider_version(p) != changed.provider_version(p) for p in packaged.providers if p != "petopia")
