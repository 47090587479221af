"""``resight onboard suggest`` on partner files the sample generator never writes, each checked
against the profile a person reading the file would write, and the draft loaded by the registry
loader together with the packaged registry."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from resight_platform.cli import main
from resight_platform.onboard.columns import load_knowledge
from resight_platform.onboard.draft import write_draft
from resight_platform.onboard.suggest import Suggestion, suggest
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, Registry, load_registry
from resight_platform.transforms.bronze import read_landing_file
from resight_platform.transforms.silver import SilverResult, clean_feed


@pytest.fixture(scope="module")
def base() -> Registry:
    return load_registry(DEFAULT_REGISTRY_DIR)


def _suggest(base: Registry, paths: list[Path], provider: str, feed: str, timezone: str | None = None) -> Suggestion:
    knowledge = load_knowledge(mappings=base.mappings)
    return suggest(paths, provider, feed, base=base, knowledge=knowledge, timezone=timezone)


def _columns(suggestion: Suggestion) -> dict[str, str]:
    return {m.source: m.canonical for m in suggestion.matches}


def _draft_loads(suggestion: Suggestion, base: Registry, out: Path) -> Registry:
    """Write the draft, check the loader passed it, and return the merged registry as loaded."""
    draft = write_draft(suggestion, out, base_dir=DEFAULT_REGISTRY_DIR, base=base, name="Test Partner", every_hours=24)
    assert draft.issues == []
    merged = load_registry(draft.registry_dir)
    assert len(merged.providers) == len(base.providers) + 1
    return merged


def _silver(registry: Registry, provider: str, feed: str, path: Path, day: date) -> SilverResult:
    """The file read by bronze and cleaned by silver with the draft: what a run would load."""
    source = registry.source(provider, feed)
    assert source is not None
    key = f"{provider}/{feed}/{day.isoformat()}/{path.name}"
    at = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
    bronze = read_landing_file(path.read_bytes(), source=source, key=key, business_date=day, ingested_at=at)
    return clean_feed(feed, bronze, registry=registry, mappings=registry.mappings, now=at)


# A European POS export: semicolons, Latin-1, day-first timestamps, decimal commas with dot thousands.
LATIN1_POS = (
    "Order No;Line;Sale Date;Store;Item;Qty;Price;Disc;Member;Status\r\n"
    "A-1001;1;13.02.2026 14:05;12;SKU-1;2;12,99;0,00;M77;Sold\r\n"
    "A-1001;2;13.02.2026 14:05;12;SKU-2;1;1.234,50;10,00;M77;Sold\r\n"
    "A-1002;1;14.02.2026 09:30;7;Crème-3;3;4,50;;;Annulé\r\n"
    "A-1003;1;02.03.2026 18:00;7;SKU-1;1;12,99;0,00;M12;Return\r\n"
)


def test_semicolon_latin1_with_decimal_commas_and_day_first_dates(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "kasse.csv"
    path.write_bytes(LATIN1_POS.encode("latin-1"))
    result = _suggest(base, [path], "kasse_pets", "sales")

    profile = {k: g.value for k, g in result.profile.items()}
    assert profile == {
        "format": "csv",
        "delimiter": ";",
        "encoding": "latin-1",
        "datetime_format": "%d.%m.%Y %H:%M",
        "date_format": "%d.%m.%Y",
        "money_format": "decimal_comma",
        "channel": "store",
    }
    assert "'13.02.2026 14:05'" in result.profile["datetime_format"].evidence  # the value that decides
    assert "day" in result.profile["datetime_format"].evidence
    assert "decimal comma" in result.profile["money_format"].evidence
    assert "dot thousands" in result.profile["money_format"].evidence
    assert result.blockers == []
    assert _columns(result) == {
        "Order No": "order_id",
        "Line": "line_no",
        "Sale Date": "ordered_at",
        "Store": "store_id",
        "Item": "sku",
        "Qty": "quantity",
        "Price": "unit_price",
        "Disc": "discount",
        "Member": "customer_id",
        "Status": "status",
    }
    sample = result.samples[0]
    assert sample.line_ends == "5 CRLF"
    assert sample.header is not None and sample.header.value == "true"
    unknown = {u.value: (u.guess, u.count) for u in result.unknowns}
    assert unknown == {"Sold": ("completed", 2), "Annulé": (None, 1)}  # 'Return' is a known alias
    assert [u.effect for u in result.unknowns if u.guess is None] == ["the row is quarantined (unknown_status)"]
    # Another day's file with no accented letter does not outvote the Latin-1 one.
    ascii_day = tmp_path / "kasse_ascii.csv"
    ascii_day.write_bytes(LATIN1_POS.replace("Crème", "Creme").replace("Annulé", "Void").encode("latin-1"))
    two_ascii = _suggest(base, [ascii_day, path, ascii_day], "kasse_pets", "sales")
    assert two_ascii.profile["encoding"].value == "latin-1"
    merged = _draft_loads(result, base, tmp_path / "draft")
    source = merged.source("kasse_pets", "sales")
    assert source is not None and source.profile.encoding == "latin-1" and source.profile.delimiter == ";"
    assert merged.value_maps.resolve("status", "kasse_pets", "sales", "SOLD") is not None
    # Read as the partner meant: 1.234,50 is 1234.50; the unknown status is the only loss.
    silver = _silver(merged, "kasse_pets", "sales", path, date(2026, 3, 2))
    assert silver.quarantine["rule"].to_list() == ["unknown_status"]
    valid = silver.valid.sort("order_id", "line_no")
    assert valid["unit_price"].to_list() == [12.99, 1234.5, 12.99]
    assert valid["discount"].to_list() == [0.0, 10.0, 0.0]
    assert valid["net_amount"].to_list() == [25.98, 1224.5, 12.99]


# A US e-commerce export: UTF-8 with a byte-order mark, CRLF, quoted "$1,234.50", 12-hour clock.
DOLLAR_EXPORT = (
    "\ufeffTransaction ID,Line #,Purchased At,Product Code,Units Sold,Unit Price,Discount Amt,"
    "Customer #,Order Status,Ship To State\r\n"
    'T-9001,1,03/14/2026 09:05 PM,DOG-CHOW-20,1,"$1,234.50",$0.00,C-1,Complete,CA\r\n'
    "T-9001,2,03/14/2026 09:05 PM,KONG-L,2,$12.99,$1.00,C-1,Complete,CA\r\n"
    "T-9002,1,04/02/2026 11:47 AM,CAT-LTR,1,$24.00,,C-2,Canceled,NY\r\n"
)


def test_month_first_datetime_and_dollar_amounts(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(DOLLAR_EXPORT, encoding="utf-8", newline="")
    result = _suggest(base, [path], "dollar_pets", "sales", timezone="America/Chicago")

    assert result.profile["datetime_format"].value == "%m/%d/%Y %I:%M %p"
    assert "'03/14/2026 09:05 PM'" in result.profile["datetime_format"].evidence  # 14 can only be the day
    assert result.profile["date_format"].value == "%m/%d/%Y"
    assert result.profile["money_format"].value == "currency"
    assert result.profile["money_format"].blocker is None
    assert result.profile["channel"].value == "online"  # a ship state, no store column
    assert result.profile["encoding"].value == "utf-8"
    assert "byte-order mark" in result.profile["encoding"].evidence
    assert result.profile["delimiter"].value == ","
    assert result.samples[0].quoting is not None and "double quotes" in result.samples[0].quoting
    assert _columns(result) == {
        "Transaction ID": "order_id",
        "Line #": "line_no",
        "Purchased At": "ordered_at",
        "Product Code": "sku",
        "Units Sold": "quantity",
        "Unit Price": "unit_price",
        "Discount Amt": "discount",
        "Customer #": "customer_id",
        "Order Status": "status",
        "Ship To State": "ship_state",
    }
    assert result.unknowns == []
    assert result.blockers == []
    assert (result.timezone.value, result.kind.value) == ("America/Chicago", "ecommerce")
    merged = _draft_loads(result, base, tmp_path / "draft")
    provider = merged.providers["dollar_pets"]
    assert (provider.timezone, provider.currency) == ("America/Chicago", "USD")
    silver = _silver(merged, "dollar_pets", "sales", path, date(2026, 4, 2))
    assert silver.quarantine.is_empty()
    rows = silver.valid.sort("order_id", "line_no")
    assert rows["unit_price"].to_list() == [1234.5, 12.99, 24.0]
    assert rows["status"].to_list() == ["completed", "completed", "cancelled"]
    assert rows["ordered_at"][0] == datetime(2026, 3, 15, 2, 5, tzinfo=UTC)  # 9:05 PM in Chicago (CDT)


def _json_lines(records: list[dict[str, object]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in records)


# A marketplace's JSON Lines: camelCase names of its own, epoch seconds, cents, and a status
# vocabulary of its own (SOLD, RTN, X) under a key called "state" while the ship state is "shipTo".
MARKET_RECORDS: list[dict[str, object]] = [
    {"ordRef": "M-1", "itemSeq": 1, "tsEpoch": 1767225600, "prodCode": "P-10", "units": 1, "amtCents": 1299,
     "discCents": 0, "buyer": "B-7", "shipTo": "TX", "state": "SOLD", "giftWrap": False},
    {"ordRef": "M-1", "itemSeq": 2, "tsEpoch": 1767225600, "prodCode": "P-11", "units": 3, "amtCents": 499,
     "discCents": 50, "buyer": "B-7", "shipTo": "TX", "state": "SOLD", "giftWrap": False},
    {"ordRef": "M-2", "itemSeq": 1, "tsEpoch": 1767312000, "prodCode": "P-10", "units": 1, "amtCents": 1299,
     "discCents": 0, "buyer": "B-9", "shipTo": "WA", "state": "RTN", "giftWrap": True},
    {"ordRef": "M-3", "itemSeq": 1, "tsEpoch": 1767398400, "prodCode": "P-12", "units": 2, "amtCents": 2450,
     "discCents": 0, "buyer": None, "shipTo": "OR", "state": "X", "giftWrap": False},
]  # fmt: skip


def test_json_lines_with_odd_names_and_an_own_status_vocabulary(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(_json_lines(MARKET_RECORDS), encoding="utf-8")
    result = _suggest(base, [path], "odd_market", "sales")

    assert result.profile["format"].value == "jsonl"
    assert result.profile["datetime_format"].value == "%s"  # epoch seconds
    assert result.timezone.value == "UTC"  # what makes "%s" read as UTC
    assert result.profile["money_format"].value == "cents"
    assert _columns(result) == {
        "ordRef": "order_id",
        "itemSeq": "line_no",
        "tsEpoch": "ordered_at",
        "prodCode": "sku",
        "units": "quantity",
        "amtCents": "unit_price",
        "discCents": "discount",
        "buyer": "customer_id",
        "shipTo": "ship_state",
        "state": "status",
    }
    assert result.unmapped == ["giftWrap"]
    unknown = {u.value: u for u in result.unknowns}
    assert set(unknown) == {"SOLD", "RTN"}  # 'X' is a global alias of cancelled
    assert (unknown["SOLD"].guess, unknown["SOLD"].count, unknown["SOLD"].confidence) == ("completed", 2, 0.8)
    assert (unknown["RTN"].guess, unknown["RTN"].count) == ("returned", 1)
    assert "abbreviation" in unknown["RTN"].evidence
    out = tmp_path / "draft"
    merged = _draft_loads(result, base, out)
    rows = (out / "value_maps.csv").read_text(encoding="utf-8").splitlines()
    assert rows == [
        "provider,feed,map,alias,value,match,extra",
        "odd_market,sales,status,SOLD,completed,,",
        "odd_market,sales,status,RTN,returned,,",
    ]
    returned = merged.value_maps.resolve("status", "odd_market", "sales", "rtn")
    assert returned is not None and returned.value == "returned"
    silver = _silver(merged, "odd_market", "sales", path, date(2026, 1, 3))
    assert silver.quarantine.is_empty()  # the value maps' guesses load every status
    lines = silver.valid.sort("order_id", "line_no")
    assert lines["status"].to_list() == ["completed", "completed", "returned", "cancelled"]
    assert lines["unit_price"].to_list() == [12.99, 4.99, 12.99, 24.5]
    assert lines["ordered_at"][0] == datetime(2026, 1, 1, tzinfo=UTC)  # epoch seconds read as UTC
    assert lines["channel"].unique().to_list() == ["online"]


# A loyalty export typed by hand: a tab-delimited header with spaces and capitals, ISO dates, a
# species word and a state spelling no table knows.
SPACED_HEADER = (
    " Customer ID \tSIGNUP DATE\t State \tPet Type\n"
    "C-001\t2025-01-31\tCA\tDoggo\n"
    "C-002\t2025-02-01\tCalif.\tCat\n"
    "C-003\t2025-02-03\tNY\tDoggo\n"
    "C-004\t\tWA\tBird\n"
)


def test_header_with_spaces_and_capitals(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "members.csv"
    path.write_text(SPACED_HEADER, encoding="utf-8")
    result = _suggest(base, [path], "spaced_pets", "customers")

    assert result.profile["delimiter"].value == "\t"
    assert result.profile["date_format"].value == "%Y-%m-%d"
    assert _columns(result) == {
        " Customer ID ": "customer_id",
        "SIGNUP DATE": "signup_date",
        " State ": "state",
        "Pet Type": "pet_species",
    }
    unknown = {u.value: (u.map, u.guess, u.count) for u in result.unknowns}
    assert unknown == {"Doggo": ("species", "dog", 2), "Calif.": ("states", "CA", 1)}
    out = tmp_path / "draft"
    merged = _draft_loads(result, base, out)
    layout = merged.profiles["spaced_pets"].feeds["customers"]
    assert layout.columns[" Customer ID "] == "customer_id"  # bronze matches the name exactly first
    fragment = yaml.safe_load((out / "profiles.yaml").read_text(encoding="utf-8"))
    assert fragment["profiles"]["spaced_pets"]["delimiter"] == "\t"
    silver = _silver(merged, "spaced_pets", "customers", path, date(2025, 2, 3))
    assert silver.quarantine.is_empty()  # 'Doggo' and 'Calif.' load through the draft's value maps
    members = silver.valid.sort("customer_id")
    assert members["pet_species"].to_list() == ["dog", "cat", "dog", "bird"]
    assert members["state"].to_list() == ["CA", "CA", "NY", "WA"]


def test_undecidable_day_order_is_said(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(
        "order_id,line_no,ordered_at,sku,quantity,unit_price,status\n"
        "1,1,03/04/2026 10:00,A,1,2.50,completed\n"
        "2,1,05/06/2026 11:00,B,1,3.50,completed\n",
        encoding="utf-8",
    )
    result = _suggest(base, [path], "ambiguous_pets", "sales")
    guess = result.profile["datetime_format"]
    assert guess.value == "%m/%d/%Y %H:%M"
    assert guess.confidence == 0.5
    assert "undecidable" in guess.evidence


def test_sales_dated_without_a_time(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "daily_2026-10-02.csv"
    path.write_text(
        "Receipt,Day,Item,Qty,Price,Status\nR1,2026-10-01,A,1,2.50,completed\nR2,2026-10-02,B,2,3.50,completed\n",
        encoding="utf-8",
    )
    result = _suggest(base, [path], "daily_pets", "sales", timezone="America/Denver")
    assert _columns(result)["Day"] == "ordered_at"
    assert result.profile["datetime_format"].value == "%Y-%m-%d"
    assert "midnight" in result.profile["datetime_format"].evidence
    assert {g.canonical: g.value for g in result.given} == {"line_no": "1"}
    merged = _draft_loads(result, base, tmp_path / "draft")
    silver = _silver(merged, "daily_pets", "sales", path, date(2026, 10, 2))
    assert silver.quarantine.is_empty()
    first = silver.valid.sort("order_id")["ordered_at"][0]
    assert first == datetime(2026, 10, 1, 6, tzinfo=UTC)  # midnight in Denver (MDT)


def test_sales_with_compact_dates_read_through_silver(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "sales.csv"
    path.write_text(
        "order_id,date,sku,number_of_units,unit_price,status\n"
        "A1,20261001,S1,2,2.50,completed\nA2,20261002,S2,1,3.50,completed\n",
        encoding="utf-8",
    )
    result = _suggest(base, [path], "compact_pets", "sales", timezone="UTC")
    assert _columns(result)["date"] == "ordered_at"
    assert _columns(result)["number_of_units"] == "quantity"
    assert result.profile["datetime_format"].value == "%Y%m%d"
    assert result.blockers == []
    merged = _draft_loads(result, base, tmp_path / "draft")
    silver = _silver(merged, "compact_pets", "sales", path, date(2026, 10, 2))
    assert silver.quarantine.is_empty()
    assert silver.valid.sort("order_id")["ordered_at"].to_list() == [
        datetime(2026, 10, 1, tzinfo=UTC),
        datetime(2026, 10, 2, tzinfo=UTC),
    ]


def test_space_aligned_and_preamble_files_are_blocked(tmp_path: Path, base: Registry) -> None:
    spaced = tmp_path / "spaced.csv"
    spaced.write_text(" order_id sku quantity unit_price status\n A1 S1 2 2.50 completed\n", encoding="utf-8")
    result = _suggest(base, [spaced], "spaced_pets", "sales")
    assert any(b.startswith("delimiter: fields are aligned with runs of spaces") for b in result.blockers)
    assert {"order_id", "sku", "quantity"} <= set(_columns(result))  # the columns are still reported
    preamble = tmp_path / "preamble.csv"
    preamble.write_text("Sales export\norder_id,sku,quantity,unit_price,status\nA1,S1,2,2.50,completed\n")
    result = _suggest(base, [preamble], "preamble_pets", "sales")
    assert any(b.startswith("preamble.csv: 1 line(s) before the header") for b in result.blockers)
    assert _columns(result)["order_id"] == "order_id"


def test_missing_required_columns_get_defaults_or_block(tmp_path: Path, base: Registry) -> None:
    path = tmp_path / "catalog.csv"
    path.write_text("sku,product_name,list_price\nA-1,Chew Toy,4.99\nA-2,Fish Flakes,2.49\n", encoding="utf-8")
    result = _suggest(base, [path], "no_species", "catalog")
    given = {g.canonical: g.value for g in result.given}
    assert given == {"species": "other"}
    assert result.blockers == []
    merged = _draft_loads(result, base, tmp_path / "draft")
    source = merged.source("no_species", "catalog")
    assert source is not None and source.defaults == {"species": "other"}

    path.write_text("sku,list_price\nA-1,4.99\n", encoding="utf-8")
    result = _suggest(base, [path], "no_names", "catalog")
    assert any("'product_name'" in b for b in result.blockers)
    draft = write_draft(result, tmp_path / "broken", base_dir=DEFAULT_REGISTRY_DIR, base=base, name="X", every_hours=24)
    assert any("required columns not mapped" in issue.reason for issue in draft.issues)


def test_parquet_and_gzip_samples(tmp_path: Path, base: Registry) -> None:
    frame = pl.DataFrame(
        {
            "invoice": ["I-1", "I-2"],
            "invoice_line": [1, 1],
            "invoice_ts": pl.Series(["2026-01-02 10:00", "2026-01-03 11:30"]).str.to_datetime(),
            "item": ["X1", "X2"],
            "qty": [4, 2],
            "unit_cost": [3.25, 10.5],
            "status": ["completed", "returned"],
        }
    )
    parquet = tmp_path / "invoices.parquet"
    frame.write_parquet(parquet)
    result = _suggest(base, [parquet], "parquet_pets", "sales")
    assert result.profile["format"].value == "parquet"
    assert result.profile["datetime_format"].value == "iso"
    assert "native timestamps" in result.profile["datetime_format"].evidence
    assert _columns(result)["invoice_ts"] == "ordered_at"
    assert _columns(result)["unit_cost"] == "unit_price"

    gz = tmp_path / "orders.csv.gz"
    gz.write_bytes(gzip.compress(DOLLAR_EXPORT.encode("utf-8")))
    wrong_name = tmp_path / "orders.csv"
    wrong_name.write_bytes(gzip.compress(DOLLAR_EXPORT.encode("utf-8")))
    result = _suggest(base, [gz, wrong_name], "gz_pets", "sales")
    assert result.profile["format"].value == "csv.gz"
    assert any("format_mismatch" in note and "orders.csv:" in note for note in result.notes)


def test_cli_report_json_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text(_json_lines(MARKET_RECORDS), encoding="utf-8")
    out = tmp_path / "draft"
    argv = ["onboard", "suggest", str(path), "--provider", "odd_market", "--feed", "sales", "--out", str(out)]
    assert main(argv) == 0
    report = capsys.readouterr().out
    assert "status 'SOLD' x2 -> 'completed' (0.80)" in report
    assert "the base registry plus the draft loads" in report
    assert {p.name for p in out.iterdir()} == {
        "profiles.yaml",
        "providers.csv",
        "sources.csv",
        "value_maps.csv",
        "registry",
    }

    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["draft"]["loads"] is True
    assert payload["profile"]["money_format"]["value"] == "cents"

    assert main(["onboard", "suggest", str(tmp_path / "nope.csv"), "--provider", "x_pets", "--feed", "sales"]) == 2
    assert "nope.csv: cannot be read" in capsys.readouterr().err
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"a": 1}\n{"a": \n', encoding="utf-8")
    assert main(["onboard", "suggest", str(broken), "--provider", "x_pets", "--feed", "sales"]) == 2
    assert "broken.jsonl: line 2 is not JSON" in capsys.readouterr().err
    assert main(["onboard", "suggest", str(path), "--provider", "pawmart", "--feed", "sales"]) == 2
    assert "already in" in capsys.readouterr().err
    assert main(["onboard", "suggest", str(path), "--provider", "x_pets", "--feed", "returns"]) == 2
    assert "--feed 'returns' is not one of sales, catalog, stores, customers" in capsys.readouterr().err
    other = tmp_path / "other.csv"
    other.write_text("sku,product_name,list_price,species\nA,B,1.00,dog\n", encoding="utf-8")
    assert main(["onboard", "suggest", str(other), "--provider", "y_pets", "--feed", "catalog", "--out", str(out)]) == 2
    assert "holds the draft of 'odd_market'" in capsys.readouterr().err


def test_corner_pets_blind_against_the_profile_a_person_wrote(tmp_path: Path, base: Registry) -> None:
    """Corner Pets (``test_onboarding.py``) was onboarded by hand; its four feeds suggested blind
    into one draft give the profile and value maps written there."""
    from resight_platform_tests import test_onboarding as corner

    files = {
        "sales": [("2026-10-05", "s1.csv", corner.SALES_DAY1), ("2026-10-06", "s2.csv", corner.SALES_DAY2)],
        "catalog": [("2026-10-06", "c.csv", corner.CATALOG_DAY2)],
        "stores": [("2026-10-05", "st.csv", corner.STORES_DAY1)],
        "customers": [("2026-10-06", "cu.csv", corner.CUSTOMERS_DAY2)],
    }
    out = tmp_path / "draft"
    knowledge = load_knowledge(mappings=base.mappings)
    for feed, landed in files.items():
        paths = []
        for day, name, text in landed:
            folder = tmp_path / "landing" / "corner_pets" / feed / day
            folder.mkdir(parents=True)
            (folder / name).write_text(text, encoding="utf-8")
            paths.append(folder / name)
        result = suggest(paths, "corner_pets", feed, base=base, knowledge=knowledge, timezone="America/Los_Angeles")
        assert result.blockers == []
        draft = write_draft(result, out, base_dir=DEFAULT_REGISTRY_DIR, base=base, name="Corner Pets", every_hours=24)
        assert draft.issues == [] and draft.notes == []

    written = yaml.safe_load(corner.PROFILE)["corner_pos"]
    merged = load_registry(out / "registry")
    profile = merged.profiles["corner_pets"]
    for field in ("format", "delimiter", "encoding", "datetime_format", "date_format", "money_format", "channel"):
        assert getattr(profile, field) == written[field], field
    for feed, layout in written["feeds"].items():
        assert dict(profile.feeds[feed].columns) == layout["columns"], feed
    catalog = profile.feeds["catalog"]
    assert catalog.defaults == written["feeds"]["catalog"]["defaults"]  # one product has no species
    hand = {(r["map"], r["alias"].lower(), r["value"]) for r in csv.DictReader(io.StringIO(corner.VALUE_MAPS))}
    drafted = {(r["map"], r["alias"].lower(), r["value"]) for r in csv.DictReader((out / "value_maps.csv").open())}
    assert drafted == (hand - {("status", "v(oid)?", "cancelled")}) | {("status", "v", "cancelled")}

    silver = _silver(merged, "corner_pets", "sales", out.parent / "landing/corner_pets/sales/2026-10-05/s1.csv",
                     date(2026, 10, 5))  # fmt: skip
    assert silver.quarantine["rule"].to_list() == ["unparseable_date"]  # T4's 31 February, as by hand
    assert sorted(silver.valid["order_id"].unique().to_list()) == ["T1", "T2", "T3"]


def test_the_worked_example_of_docs_onboarding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/onboarding.md's suggest example is this command's output, to the character."""
    docs = (Path(__file__).parents[2] / "docs" / "onboarding.md").read_text(encoding="utf-8")
    prompt = "$ resight onboard suggest "
    block = docs[docs.index(prompt) : docs.index("```", docs.index(prompt))]
    command, expected = block.split("\n", 1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "orders_2026-01-03.jsonl").write_text(_json_lines(MARKET_RECORDS), encoding="utf-8")
    assert main(command.removeprefix("$ resight ").split()) == 0
    assert capsys.readouterr().out == expected
