"""The landing-key contract: ``{provider}/{feed}/{YYYY-MM-DD}/{file name}``, parsed strictly."""

from __future__ import annotations

from datetime import date

import pytest

from resight_platform.sources.landing import (
    FILE_FORMATS,
    LandingKey,
    LandingKeyError,
    file_format,
    parse_landing_key,
)
from resight_platform.sources.registry import FEEDS, FORMATS, Registry, load_registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.mark.parametrize(
    ("file_name", "fmt"),
    [
        ("sales_2026-10-01.csv", "csv"),
        ("sales_2026-10-01.csv.gz", "csv.gz"),
        ("sales_2026-10-01.jsonl", "jsonl"),
        ("sales_2026-10-01.json", "json"),
        ("sales_2026-10-01.parquet", "parquet"),
        ("SALES.CSV", "csv"),
        ("export.v2.CSV.GZ", "csv.gz"),
        ("a.csv", "csv"),
        ("0-9_A-Z.z.jsonl", "jsonl"),
        ("x" * 196 + ".csv", "csv"),  # exactly 200 characters
    ],
)
def test_good_keys(file_name: str, fmt: str, registry: Registry) -> None:
    key = f"pawmart/sales/2026-10-01/{file_name}"
    expected = LandingKey(
        key=key, provider="pawmart", feed="sales", date=date(2026, 10, 1), file_name=file_name, format=fmt
    )
    assert parse_landing_key(key) == expected
    assert parse_landing_key(key, registry) == expected


@pytest.mark.parametrize("feed", FEEDS)
def test_every_feed_is_accepted(feed: str) -> None:
    parsed = parse_landing_key(f"pawmart/{feed}/2024-02-29/{feed}.csv")
    assert (parsed.feed, parsed.date) == (feed, date(2024, 2, 29))


def test_provider_slug_bounds() -> None:
    assert parse_landing_key("p1/sales/2026-10-01/x.csv").provider == "p1"
    longest = "a" * 63
    assert parse_landing_key(f"{longest}/sales/2026-10-01/x.csv").provider == longest
    assert parse_landing_key("0_shop_/sales/2026-10-01/x.csv").provider == "0_shop_"


@pytest.mark.parametrize(
    ("key", "code"),
    [
        # shape and path traversal
        ("../x", "bad_key"),
        ("pawmart/sales/../../etc/passwd", "bad_key"),
        ("pawmart/sales/2026-10-01/../../../../etc/passwd", "bad_key"),
        ("pawmart/sales/2026-10-01/..", "bad_key"),
        ("pawmart/sales/./x.csv", "bad_key"),
        ("../sales/2026-10-01/x.csv", "bad_key"),
        ("pawmart/sales/2026-10-01/archive/x.csv", "bad_key"),
        ("pawmart/sales/x.csv", "bad_key"),
        ("x.csv", "bad_key"),
        ("", "bad_key"),
        ("pawmart/sales/2026-10-01/", "bad_key"),
        ("pawmart//2026-10-01/x.csv", "bad_key"),
        ("/pawmart/sales/2026-10-01/x.csv", "bad_key"),
        ("/etc/passwd/x/y", "bad_key"),
        ("pawmart\\sales\\2026-10-01\\x.csv", "bad_key"),
        ("pawmart/sales/2026-10-01/..\\..\\x.csv", "bad_key"),
        ("pawmart/sales/2026-10-01/x.csv\x00.txt", "bad_key"),
        ("pawmart\x00/sales/2026-10-01/x.csv", "bad_key"),
        # provider slug
        ("PawMart/sales/2026-10-01/x.csv", "bad_provider"),
        ("Bad-Provider/sales/2026-10-01/x.csv", "bad_provider"),
        ("p/sales/2026-10-01/x.csv", "bad_provider"),
        ("a" * 64 + "/sales/2026-10-01/x.csv", "bad_provider"),
        ("_pawmart/sales/2026-10-01/x.csv", "bad_provider"),
        ("paw mart/sales/2026-10-01/x.csv", "bad_provider"),
        ("paw'mart/sales/2026-10-01/x.csv", "bad_provider"),
        ("paw|mart/sales/2026-10-01/x.csv", "bad_provider"),
        ("pawmart;drop/sales/2026-10-01/x.csv", "bad_provider"),
        pytest.param("pawmart\n/sales/2026-10-01/x.csv", "bad_provider", id="provider-trailing-newline"),
        # feed
        ("pawmart/returns/2026-10-01/x.csv", "unknown_feed"),
        ("pawmart/Sales/2026-10-01/x.csv", "unknown_feed"),
        ("pawmart/sales /2026-10-01/x.csv", "unknown_feed"),
        # date folder
        ("pawmart/sales/2026-13-45/x.csv", "bad_date"),
        ("pawmart/sales/2026-2-1/x.csv", "bad_date"),
        ("pawmart/sales/20261001/x.csv", "bad_date"),
        ("pawmart/sales/2025-02-29/x.csv", "bad_date"),
        ("pawmart/sales/2026-10-01T00:00/x.csv", "bad_date"),
        ("pawmart/sales/01-10-2026/x.csv", "bad_date"),
        ("pawmart/sales/２０２６-10-01/x.csv", "bad_date"),
        # file name
        ("pawmart/sales/2026-10-01/.x.csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/sales 2026-10-01 (1).csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/sales'.csv", "bad_file_name"),
        ('pawmart/sales/2026-10-01/sales".csv', "bad_file_name"),
        ("pawmart/sales/2026-10-01/a|b.csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/a,b.csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/a;rm -rf.csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/$(id).csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/_x.csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/café.csv", "bad_file_name"),
        ("pawmart/sales/2026-10-01/" + "x" * 197 + ".csv", "bad_file_name"),  # 201 characters
        ("pawmart/sales/2026-10-01/" + "x" * 500 + ".csv", "bad_file_name"),
        pytest.param("pawmart/sales/2026-10-01/x.csv\n", "bad_file_name", id="file-name-trailing-newline"),
        # format
        ("pawmart/sales/2026-10-01/x.xlsx", "unsupported_format"),
        ("pawmart/sales/2026-10-01/x.txt", "unsupported_format"),
        ("pawmart/sales/2026-10-01/x.gz", "unsupported_format"),
        ("pawmart/sales/2026-10-01/x.csv.zip", "unsupported_format"),
        ("pawmart/sales/2026-10-01/csv", "unsupported_format"),
        ("pawmart/sales/2026-10-01/x.parquet.tmp", "unsupported_format"),
    ],
)
def test_hostile_keys_are_refused_with_a_code(key: str, code: str) -> None:
    with pytest.raises(LandingKeyError) as caught:
        parse_landing_key(key)
    assert caught.value.code == code
    assert caught.value.detail
    assert str(caught.value).startswith(f"{code}: ")


def test_key_errors_are_value_errors() -> None:
    with pytest.raises(ValueError):
        parse_landing_key("../x")


def test_unknown_provider_with_a_registry(registry: Registry) -> None:
    key = "ghost_pets/sales/2026-10-01/x.csv"
    assert parse_landing_key(key).provider == "ghost_pets"  # well formed without a registry
    with pytest.raises(LandingKeyError) as caught:
        parse_landing_key(key, registry)
    assert caught.value.code == "unknown_provider"


def test_unknown_source_with_a_registry(registry: Registry) -> None:
    provider, feed = next((p, f) for p in registry.provider_slugs() for f in FEEDS if registry.source(p, f) is None)
    key = f"{provider}/{feed}/2026-10-01/{feed}.csv"
    assert parse_landing_key(key).provider == provider
    with pytest.raises(LandingKeyError) as caught:
        parse_landing_key(key, registry)
    assert caught.value.code == "unknown_source"
    assert provider in caught.value.detail and feed in caught.value.detail


def test_contract_problems_come_before_registry_problems(registry: Registry) -> None:
    with pytest.raises(LandingKeyError) as caught:
        parse_landing_key("ghost_pets/sales/2026-10-01/x.xlsx", registry)
    assert caught.value.code == "unsupported_format"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("a.csv.gz", "csv.gz"),
        ("a.CSV.GZ", "csv.gz"),
        ("a.jsonl", "jsonl"),
        ("a.jsonl.gz", "jsonl.gz"),
        ("a.json", "json"),
        ("a.Json.Gz", "json.gz"),
        ("a.parquet", "parquet"),
        ("a.parquet.gz", None),
        ("a.json.zip", None),
        ("a.gz", None),
        ("a.jsonl.bak", None),
        ("csv", None),
        ("", None),
    ],
)
def test_file_format(name: str, fmt: str | None) -> None:
    assert file_format(name) == fmt


def test_every_format_a_source_may_register_is_a_file_format() -> None:
    assert set(FORMATS) <= set(FILE_FORMATS)
    assert {"jsonl.gz", "json.gz"} <= set(FILE_FORMATS)


def test_the_key_carries_its_files_own_format_whatever_the_source_usually_sends(registry: Registry) -> None:
    source = registry.source("pawmart", "sales")
    assert source is not None and source.format == "csv"
    for fmt in FILE_FORMATS:
        assert parse_landing_key(f"pawmart/sales/2026-10-01/sales.{fmt}", registry).format == fmt
