"""The source registry: the packaged one loads, and every kind of bad edit is reported precisely."""

from __future__ import annotations

import csv
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from resight_platform.sources.registry import (
    CANONICAL_COLUMNS,
    DEFAULT_REGISTRY_DIR,
    FEEDS,
    FORMATS,
    REQUIRED_COLUMNS,
    Registry,
    RegistryError,
    RegistryIssue,
    load_registry,
    registry_rows,
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
    matches = [i for i in issues if (i.file, i.row, i.field) == (file, row, field) and reason in i.reason]
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
