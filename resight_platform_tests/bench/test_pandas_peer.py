"""The pandas peer of the peak-day throughput benchmark gives the platform's results.

The peer (``bench.throughput.pandas_peer``) must not share code with ``resight_platform.transforms``
(the code it is timed against), so these tests hold it to the platform's own output: on generated
samples (every profile, format and quarantine rule, dead-lettered files, late files) and on a
hand-written landing zone of awkward values, per feed and per rule and row by row, and to the
generator's manifest.
"""

from __future__ import annotations

import ast
import csv
import gzip
import io
import json
from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import bench.throughput.pandas_peer as peer
from bench.throughput.pandas_peer import PandasReport, main, run_pandas
from resight_platform.sample.generator import generate
from resight_platform.sample.manifest import Manifest
from resight_platform.sources.mappings import load_mappings
from resight_platform.sources.registry import FEEDS, Registry, load_registry
from resight_platform.transforms.bronze import RefusedFile, read_landing_tree
from resight_platform.transforms.silver import SilverResult, clean_feed

NOW = datetime(2026, 12, 1, tzinfo=UTC)
MONEY = ("unit_price", "discount", "net_amount", "list_price")
#: Dead-letter reasons a file inside a partition folder can get (the others never reach a partition).
IN_PARTITION = {
    "bad_key",
    "bad_file_name",
    "unsupported_format",
    "unknown_source",
    "format_mismatch",
    "unparseable",
    "missing_columns",
}


# ------------------------------------------------------------------------ the platform's figures
def platform_run(root: Path, registry: Registry) -> tuple[dict[str, dict[str, Any]], dict[tuple, SilverResult]]:
    """Per feed what the platform's bronze + silver transforms make of every partition folder under
    ``root``, and the silver result of each (date, provider, feed)."""
    mappings = load_mappings()
    figures: dict[str, dict[str, Any]] = {
        feed: {"files_read": 0, "rejected": Counter(), "rows_in": 0, "rows_loaded": 0, "quarantined": Counter()}
        for feed in FEEDS
    }
    figures["sales"]["net_amount_cents"] = 0
    results: dict[tuple, SilverResult] = {}
    partitions: dict[tuple[date, str, str], list[pl.DataFrame]] = {}
    for item in read_landing_tree(root, registry, ingested_at=NOW):
        if isinstance(item, RefusedFile):
            if item.partition is not None:  # the peer reports a feed's refusals inside its partitions
                figures[item.partition[1]]["rejected"][item.code] += 1
            continue
        figures[item.feed]["files_read"] += 1
        partitions.setdefault((item.business_date, item.provider, item.feed), []).append(item.frame)
    for (day, provider, feed), frames in partitions.items():
        bronze = pl.concat(frames)
        result = clean_feed(feed, bronze, registry=registry, mappings=mappings, now=NOW)
        results[(day, provider, feed)] = result
        figures[feed]["rows_in"] += bronze.height
        figures[feed]["rows_loaded"] += result.valid.height
        figures[feed]["quarantined"].update(result.quarantine["rule"].to_list())
        if feed == "sales":
            figures[feed]["net_amount_cents"] += int(cents(result.valid["net_amount"]).sum())
    return figures, results


def cents(dollars: pl.Series) -> pl.Series:
    return (dollars * 100).round().cast(pl.Int64)


def assert_same_figures(report: PandasReport, figures: dict[str, dict[str, Any]]) -> None:
    for feed in FEEDS:
        got, want = report.feeds[feed], figures[feed]
        assert got.files_read == want["files_read"], feed
        assert got.rejected == dict(want["rejected"]), feed
        assert got.files_rejected == sum(want["rejected"].values()), feed
        assert got.rows_in == want["rows_in"], feed
        assert got.rows_loaded == want["rows_loaded"], feed
        assert got.quarantined == dict(want["quarantined"]), feed
        assert got.rows_in == got.rows_loaded + got.rows_quarantined, feed
        if feed == "sales":
            assert got.net_amount_cents == want["net_amount_cents"]
        else:
            assert got.net_amount_cents is None


def assert_same_rows(out: Path, results: dict[tuple, SilverResult], raw_too: bool) -> None:
    """The peer's Parquet files hold the platform's silver rows (money to the cent) and quarantine."""
    checked = 0
    for (day, provider, feed), result in results.items():
        partition = f"date={day.isoformat()}/source={provider}/part-0.parquet"
        for layer, frame in (("silver", result.valid), ("quarantine", result.quarantine)):
            path = out / layer / feed / partition
            assert path.exists() == (frame.height > 0), (layer, feed, provider, day)
            if not frame.height:
                continue
            got = pl.read_parquet(path)
            where = (layer, feed, provider, day)
            if layer == "silver":
                assert got.columns == frame.columns, where
                got = got.with_columns(pl.col(c).cast(t) for c, t in frame.schema.items())
                money = [c for c in MONEY if c in frame.columns]
                got = got.with_columns(cents(got[c]) for c in money)
                want = frame.with_columns(cents(frame[c]) for c in money)
                for column in want.columns:
                    assert got[column].to_list() == want[column].to_list(), (*where, column)
            else:
                key = ["_source_file", "_row_number", "rule", "feed", "provider", "business_date"]
                assert got.select(key).cast(frame.select(key).schema).equals(frame.select(key)), where
                if raw_too:  # text sources: the same raw values, as JSON
                    assert [json.loads(r) for r in got["raw"]] == [json.loads(r) for r in frame["raw"]], where
            checked += 1
    assert checked


def manifest_figures(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The manifest's ground truth in the report's terms."""
    loaded = {
        "sales": manifest.sales["lines"],
        "catalog": manifest.catalog["rows"],
        "stores": manifest.stores["rows"],
        "customers": manifest.customers["rows"],
    }
    rejected: dict[str, Counter[str]] = {feed: Counter() for feed in FEEDS}
    for entry in manifest.dead_letter:
        feed = entry["key"].split("/")[1]
        if entry["reason"] in IN_PARTITION:
            rejected[feed][entry["reason"]] += 1
    return {
        feed: {
            "rows_in": manifest.rows_in[feed],
            "rows_loaded": loaded[feed],
            "quarantined": manifest.quarantine[feed],
            "rejected": dict(rejected[feed]),
        }
        for feed in FEEDS
    }


# ---------------------------------------------------------------------------- generated samples
@pytest.mark.parametrize(
    ("providers", "days", "start"),
    [(30, 2, date(2026, 10, 31)), (40, 1, date(2026, 11, 1))],  # 1 November: clocks fall back in the US
    ids=["30-providers-2-days", "all-profiles"],
)
def test_peer_matches_platform_and_manifest_on_a_sample(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], providers: int, days: int, start: date
) -> None:
    landing = tmp_path / "landing"
    manifest = generate(str(landing), providers=providers, days=days, start=start)
    registry = load_registry()

    main([str(landing), str(tmp_path / "out")])  # the CLI: every date found
    printed = json.loads(capsys.readouterr().out)
    report = PandasReport(**{k: v for k, v in printed.items() if k != "feeds"})
    report.feeds = {
        feed: peer.FeedReport(**{k: v for k, v in figures.items() if k != "rows_quarantined"})
        for feed, figures in printed["feeds"].items()
    }

    figures, results = platform_run(landing, registry)
    assert_same_figures(report, figures)
    assert_same_rows(tmp_path / "out", results, raw_too=False)

    truth = manifest_figures(manifest)
    for feed in FEEDS:
        got = report.feeds[feed]
        assert got.rows_in == truth[feed]["rows_in"], feed
        assert got.rows_loaded == truth[feed]["rows_loaded"], feed
        assert got.quarantined == truth[feed]["quarantined"], feed
        assert got.rejected == truth[feed]["rejected"], feed
    assert report.feeds["sales"].net_amount_cents == int(Decimal(manifest.sales["net_amount"]) * 100)
    assert report.partitions == len({(d, p) for d, p, _ in results})
    assert report.wall_seconds >= report.read_seconds + report.clean_seconds + report.write_seconds > 0
    assert report.peak_rss_bytes > 0


def test_dates_limit_the_run(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    generate(str(landing), providers=3, days=2, start=date(2026, 10, 1))
    report = run_pandas(landing, dates=[date(2026, 10, 2)], out_dir=tmp_path / "out")
    written = {p.parent.parent.name for p in (tmp_path / "out" / "silver").rglob("*.parquet")}
    assert written == {"date=2026-10-02"}
    assert report.partitions == 3
    assert report.feeds["sales"].rows_loaded > 0


# ------------------------------------------------------------------------- hand-written values
def _csv(rows: list[list[str]], *, delimiter: str = ",", terminator: str = "\n") -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerows(rows)
    return buffer.getvalue()


def _put(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _parquet(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def _ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


SALES = ["order_id", "line_no", "ordered_at", "store_id", "channel", "sku", "quantity", "unit_price", "discount"]
SALES += ["customer_id", "status", "ship_state"]

#: pawmart (standard_csv, America/New_York): each dict overrides a valid line of 2026-11-01, the
#: night clocks fall back (01:30 happens twice).
PAWMART_LINES: list[dict[str, str]] = [
    {"ordered_at": "2026-11-01T01:30:00"},  # ambiguous: the earlier instant
    {"line_no": "007", "quantity": "+3", "unit_price": "12.34499", "discount": "0.005", "channel": "Store"},
    {"ordered_at": "2026-11-01 10:00:00", "unit_price": "12.345", "discount": "  ", "status": " COMPLETE "},
    {"ordered_at": "2026-11-01T10:00", "channel": "ONLINE", "ship_state": " ca ", "quantity": "3.0"},
    {"ordered_at": "2026-11-01T10:00:00Z", "unit_price": ".5", "channel": "  web ", "ship_state": "zz"},
    {"ordered_at": "2026-11-01T10:00:00.123456+05:30", "unit_price": "5."},
    {"ordered_at": "2026-11-01T10:00:00+05", "unit_price": "0.004999"},
    {"ordered_at": "2026-11-01T10:00:00-0300", "unit_price": "0.005"},
    {"ordered_at": "2026-11-01T10:00:00z", "unit_price": "12.3456789"},
    {"ordered_at": " 2026-11-01T10:00:00.5 ", "unit_price": "99999999.9999", "quantity": "2"},
    {"quantity": "2147483647"},
    {"ordered_at": "2026-11-01"},  # a date alone
    {"ordered_at": "N/A"},
    {"ordered_at": "2026-13-45T10:00:00"},
    {"ordered_at": "2026-11-03T00:00:01Z"},  # future
    {"ordered_at": "2026-11-03T00:00:00Z"},
    {"ordered_at": "2026-11-02T19:00:00-05:00"},
    {"ordered_at": "2026-11-02T20:00:00"},  # 01:00 UTC on the 3rd: future
    {"line_no": "0"},
    {"line_no": "2147483648"},
    {"line_no": "2147483647"},
    {"line_no": "1e3"},
    {"line_no": " 12 "},
    {"line_no": "-1"},
    {"line_no": "1.0"},
    {"line_no": "1.5"},
    {"line_no": "00000000000005"},
    {"quantity": "1.5"},
    {"quantity": "0"},
    {"quantity": "two"},
    {"unit_price": "1,299.00"},
    {"unit_price": "-1.00"},
    {"unit_price": "100000000"},
    {"unit_price": "  12.99  "},
    {"unit_price": "12.99 USD"},
    {"unit_price": ""},
    {"unit_price": "0"},
    {"unit_price": "+1.00"},
    {"unit_price": "1.2.3"},
    {"discount": "N/A"},
    {"discount": "-1"},
    {"discount": "1.005"},
    {"status": "pending"},
    {"status": "c"},
    {"status": "completed  "},
    {"status": "Cancelled"},
    {"status": "R"},
    {"status": ""},
    {"channel": "kiosk"},
    {"channel": ""},
    {"order_id": "  "},
    {"sku": ""},
    {"order_id": "", "sku": "", "line_no": "x"},
    {"customer_id": "C\n2", "store_id": "  "},
    {"order_id": "D1"},
    {"order_id": " D1 ", "line_no": "01"},  # duplicate of the line above
    {"order_id": "D2", "status": "pending"},
    {"order_id": "D2"},  # not a duplicate: the line above is quarantined for its status
    {"order_id": "D3", "line_no": "1"},
    {"order_id": "D3", "line_no": "2"},
    {"customer_id": "C\x001"},  # a NUL: unstorable, before any other rule
    {"order_id": "", "sku": "\x00"},
    {"ordered_at": "1900-01-01T10:00:00"},
    {"ordered_at": "0001-01-01T00:00:00Z"},
    {"ordered_at": "1999-12-31T18:59:59-05:00"},  # 23:59:59 UTC: the day before the floor
    {"ordered_at": "1999-12-31T19:00:00-05:00"},
    {"quantity": "10001"},
    {"quantity": "10000"},
    {"unit_price": "10000.01"},
    {"unit_price": "10000.00"},
]


def _pawmart_sales() -> dict[str, bytes]:
    header = [" Order_ID ", "LINE_NO", *SALES[2:], "extra"]  # matched trimmed / case-insensitively
    rows = [header]
    for i, change in enumerate(PAWMART_LINES):
        line = {"order_id": f"A{i}", "line_no": "1", "ordered_at": "2026-11-01T10:00:00", "store_id": "S1"}
        line |= {"channel": "store", "sku": "K1", "quantity": "1", "unit_price": "1.00", "discount": ""}
        line |= {"customer_id": "C1", "status": "completed", "ship_state": "", "extra": "x"} | change
        rows.append([line[c] for c in SALES] + [line["extra"]])
        if i == 20:
            rows.append([""] * len(header))  # not a record
    first = "\ufeff" + _csv(rows)
    late = _csv([[*SALES], ["A0", "1", "2026-11-01T01:30:00", "S1", "store", "K1", "1", "1.00", "", "", "c", ""]])
    late += _csv([["L1", "1", "2026-11-01T23:59:59", "", "online", "K2", "1", "2.50", "", "", "c", "NY"]])
    day = "pawmart/sales/2026-11-01"
    return {
        f"{day}/sales_2026-11-01.csv": first.encode("utf-8"),
        f"{day}/sales_2026-11-01_late.csv": late.encode("utf-8"),
        f"{day}/sales_2026-11-01_header.csv": (",".join(SALES) + "\n").encode(),  # a valid empty file
        f"{day}/sales_2026-11-01_nosku.csv": _csv([[c for c in SALES if c != "sku"], ["N1"] * 11]).encode(),
        f"{day}/sales_2026-11-01_empty.csv": b"",
        f"{day}/sales_2026-11-01_blank.csv": b" \n\n",
        f"{day}/sales_2026-11-01_ragged.csv": (_csv([SALES, ["R1"] * 12]) + _csv([["R2"] * 13])).encode(),
        f"{day}/sales_2026-11-01_latin1.csv": _csv([SALES, ["Café"] * 12]).encode("latin-1"),
        f"{day}/archive/sales_2026-11-01.csv": first.encode(),
        f"{day}/sales 2026-11-01.csv": first.encode(),
        f"{day}/sales_2026-11-01.xlsx": b"PK\x03\x04",
        "pawmart/sales/2026-03-08/sales_2026-03-08.csv": _csv(
            [
                SALES,
                ["S1", "1", "2026-03-08T02:30:00", "S1", "store", "K1", "1", "1.00", "", "", "c", ""],  # skipped
                ["S2", "1", "2026-03-08T03:30:00", "S1", "store", "K1", "1", "1.00", "", "", "c", ""],
                ["S3", "1", "2026-03-08T01:59:59", "S1", "store", "K1", "1", "1.00", "", "", "c", ""],
            ]
        ).encode(),
    }


def _petopia_sales() -> dict[str, bytes]:
    """legacy_pos: latin-1, ';', CRLF, %m/%d/%Y %H:%M in America/Chicago, $1,299.00, channel store."""
    header = ["TransID", "Line", "SaleDateTime", "StoreNo", "ItemSKU", "Qty", "Price", "Disc", "MemberNo", "Status"]
    base = ["P", "1", "11/01/2026 10:00", "00010", "000271", "1", "$29.49", "", "Café", "C"]
    changes: list[dict[int, str]] = [
        {2: "11/01/2026 01:30"},  # ambiguous
        {2: " 11/01/2026 10:00", 6: "$1,299.00", 7: "$0.50"},
        {2: "11/01/2026 10:00 "},
        {2: "1/1/2026 9:05", 6: "$ 12.99"},
        {2: "13/45/2026 10:00"},
        {6: "$1\xa0299.00"},  # a no-break space
        {6: "12,99 EUR"},
        {6: "$12.345", 7: "$0.005"},
        {6: "1 299,00"},
        {9: "X"},
        {9: "V"},
        {1: "+1", 5: "02"},
        {6: "$-1.00"},
        {7: "N/A"},
        {3: "", 8: ""},
    ]
    rows = [header]
    for i, change in enumerate(changes):
        row = list(base)
        row[0] = f"P{i}"
        for index, value in change.items():
            row[index] = value
        rows.append(row)
    text = _csv(rows, delimiter=";", terminator="\r\n")
    return {"petopia/sales/2026-11-01/sales_2026-11-01.csv": text.encode("latin-1")}


def _petdirect_sales() -> dict[str, bytes]:
    """marketplace_json: a JSON array, epoch_ms, money in cents, channel online."""
    noon = _ms(2026, 11, 1, 12)
    base: dict[str, Any] = {"order_ref": "M", "item_seq": 1, "timestamp": noon, "product_code": "K", "units": 2}
    base |= {"price_cents": 1299, "discount_cents": 0, "buyer_id": None, "order_state": "PAID", "state_code": "tx"}
    changes: list[dict[str, Any]] = [
        {},
        {"timestamp": str(noon), "price_cents": "1299", "units": "2"},
        {"timestamp": float(noon), "price_cents": 1299.5},
        {"timestamp": f"{noon} "},
        {"timestamp": -1},
        {"price_cents": "12.999"},
        {"price_cents": -499},
        {"price_cents": "N/A"},
        {"price_cents": None},
        {"item_seq": 1.0},
        {"units": 0},
        {"discount_cents": "N/A"},
        {"order_state": "shipped"},
        {"timestamp": _ms(2026, 11, 4)},
        {"item_seq": None},
        {"buyer_id": "B7", "state_code": " Tx "},
    ]
    records = []
    for i, change in enumerate(changes):
        record = base | {"order_ref": f"M{i}"} | change
        records.append(record)
    del records[0]["discount_cents"]  # a key some records lack
    day = "petdirect/sales/2026-11-01"
    return {
        f"{day}/sales_2026-11-01.json": json.dumps(records, indent=1).encode(),
        f"{day}/sales_2026-11-01_none.json": b"[]\n",
        f"{day}/sales_2026-11-01_cut.json": json.dumps(records).encode()[:100],
    }


def _chewyish_sales() -> dict[str, bytes]:
    """shop_export: JSON Lines, ISO timestamps, decimal money, channel online."""
    base: dict[str, Any] = {"orderNumber": "#C", "lineNumber": 1, "createdAt": "2026-11-01T10:00:00-04:00"}
    base |= {"sku": "CH1", "qty": 1, "unitPrice": "28.49", "discountAmount": "0.00", "customerRef": "cus_1"}
    base |= {"orderStatus": "fulfilled", "shipState": "OH"}
    changes: list[dict[str, Any]] = [
        {},
        {"unitPrice": 12.5, "qty": "3", "discountAmount": ""},
        {"createdAt": "2026-11-01T01:30:00", "orderStatus": "Refunded"},
        {"createdAt": "2026-11-01T10:00:00Z", "shipState": None},
        {"createdAt": "2026-11-01 09:00", "customerRef": ""},
        {"orderStatus": "on hold"},
        {"orderNumber": "#C1"},  # duplicate of the first line
    ]
    lines = []
    for i, change in enumerate(changes):
        record = base | ({"orderNumber": f"#C{i + 1}"} if "orderNumber" not in change else {}) | change
        lines.append(json.dumps(record))
    record = {k: v for k, v in base.items() if k != "shipState"} | {"orderNumber": "#C99"}
    lines.insert(2, "")
    lines.append(json.dumps(record))
    no_sku = "\n".join(json.dumps({k: v for k, v in base.items() if k != "sku"}) for _ in range(2))
    day = "chewyish/sales/2026-11-01"
    return {
        f"{day}/sales_2026-11-01.jsonl": ("\n".join(lines) + "\n\n").encode(),
        f"{day}/sales_2026-11-01_nosku.jsonl": no_sku.encode(),
        f"{day}/sales_2026-11-01_html.jsonl": b"<html>502 Bad Gateway</html>\n",
        "chewyish/stores/2026-11-01/stores_2026-11-01.jsonl": b'{"locationId": "X"}\n',  # not registered
    }


def _northpaw() -> dict[str, bytes]:
    """distributor_parquet (in CAD): native timestamps, integer and float columns."""
    utc = pa.timestamp("us", tz="UTC")
    stamps = [datetime(2026, 11, 1, 10, 0, 0, 123456, tzinfo=UTC), datetime(2026, 11, 1, 11, tzinfo=UTC)]
    stamps += [datetime(2026, 11, 1, 12, 0, 0, 500000, tzinfo=UTC), None, datetime(2026, 11, 5, tzinfo=UTC)]
    stamps += [datetime(2026, 11, 1, 13, tzinfo=UTC)] * 3
    n = len(stamps)
    sales = pa.table(
        {
            "invoice_id": pa.array([f"I{i}" for i in range(n - 1)] + ["I0"]),
            "invoice_line": pa.array([1, 1, None, 1, 1, 1, 2, 1], pa.int32()),
            "invoice_ts": pa.array(stamps, utc),
            "account_store": pa.array(["ST1"] * n),
            "item": pa.array(["IT1"] * n),
            "qty": pa.array([1, 2, 3, 4, 5, None, -1, 1], pa.int32()),
            "unit_cost": pa.array([12.345, 0.1, 1e-05, None, -4.99, 3.0, 99.99, 7.5]),
            "discount": pa.array([0.0, None, 1.005, 0.0, 0.0, 0.0, 0.0, 0.0]),
            "status": pa.array(["complete", "VOID", "return", "paid", "sale", "x", "r", "c"]),
        }
    )
    naive = pa.table(
        {
            "invoice_id": ["N1"],
            "invoice_line": pa.array([1], pa.int64()),
            "invoice_ts": pa.array([datetime(2026, 11, 1, 8)], pa.timestamp("ms")),
            "account_store": ["ST1"],
            "item": ["IT1"],
            "qty": [2.0],
            "unit_cost": ["1.25"],
            "status": ["complete"],
        }
    )
    stores = pa.table(
        {
            "account_store": ["ST1", "ST2", "ST3", "ST4", " ST1 "],
            "account_name": ["One", "Two", "Three", "Four", "Again"],
            "city": ["A", "B", "C", "D", "E"],
            "state": ["ny", " tx ", "ZZ", None, "NY"],
            "zip": pa.array([2134, None, 90210, 123456, 1], pa.int32()),
        }
    )
    return {
        "northpaw_distribution/sales/2026-11-01/sales_2026-11-01.parquet": _parquet(sales),
        "northpaw_distribution/sales/2026-11-01/sales_2026-11-01_naive.parquet": _parquet(naive),
        "northpaw_distribution/sales/2026-11-01/sales_2026-11-01_cut.parquet": _parquet(sales)[:300],
        "northpaw_distribution/stores/2026-11-01/stores_2026-11-01.parquet": _parquet(stores),
    }


def _vetcare() -> dict[str, bytes]:
    """vet_gz: gzip, '|', %d/%m/%Y %H:%M in America/Phoenix, currency money."""
    header = ["Invoice No", "Line", "Visit Date", "Clinic", "Item Code", "Quantity", "Unit Price", "Discount"]
    header += ["Client ID", "Status"]
    rows = [header]
    for i, (when, price) in enumerate(
        [("01/11/2026 10:00", "$15.82"), ("31/11/2026 10:00", "$1.00"), ("1/11/2026 9:5", "$1,000.004")]
    ):
        rows.append([f"V{i}", "1", when, "CL1", "RX1", "1", price, "$0.00", "", "Complete"])
    stores = [["Clinic", "Clinic Name", "City", "State", "Zip"]]
    for i, (state, zip_code) in enumerate(
        [("AZ", "2134"), (" az ", "02134-1234"), ("ZZ", "021341234"), ("", "2134.0"), ("DC", "ABCDE"), ("CA", "")]
    ):
        stores.append([f"CL{i}", "Clinic", "Tucson", state, zip_code])
    stores.append(["CL0", "Again", "Tucson", "AZ", "85701"])
    stores.append(["", "No id", "Tucson", "AZ", "85701"])
    stores.append(["CL9", "Clinic\x00", "Tucson", "AZ", "85701"])
    customers = [["Client ID", "Client Since", "State", "Species"]]
    for i, (since, state, species) in enumerate(
        [
            ("01/10/2026", "AZ", "DOGS"),
            (" 01/10/2026 ", " az ", "Small  Pets"),
            ("31/02/2026", "AZ", ""),
            ("2026-10-01", "", "dog"),
            ("1/1/2026", "ZZ", "dog"),
            ("01/01/2026", "", "dragon"),
            ("01/01/2026", "", ""),
        ]
    ):
        customers.append([f"CU{i}", since, state, species])
    customers.append(["CU0", "02/02/2026", "AZ", "cat"])
    customers.append([" ", "02/02/2026", "AZ", "cat"])
    customers.append(["CU9\x00", "02/02/2026", "AZ", "cat"])

    def gz(rows: list[list[str]]) -> bytes:
        return gzip.compress(_csv(rows, delimiter="|").encode(), mtime=0)

    day = "2026-11-01"
    return {
        f"vetcare_partners/sales/{day}/sales_{day}.csv.gz": gz(rows),
        f"vetcare_partners/sales/{day}/sales_{day}_cut.csv.gz": gz(rows)[:40],
        f"vetcare_partners/stores/{day}/stores_{day}.csv.gz": gz(stores),
        f"vetcare_partners/customers/{day}/customers_{day}.csv.gz": gz(customers),
    }


def _pawmart_catalog() -> dict[str, bytes]:
    header = ["sku", "upc", "product_name", "brand", "category", "species", "pack_size", "pack_unit", "list_price"]
    base = ["K1", "0001", "Kibble", "Purina Pro Plan", "Dry Food", "dog", "5", "LBS", "12.99"]
    changes: list[dict[int, str]] = [
        {},
        {6: "5."},
        {6: ".5"},
        {6: "0"},
        {6: "-1"},
        {6: "large"},
        {6: "1e3"},
        {6: ""},
        {7: "bushel"},
        {7: ""},
        {3: " purina  PRO plan "},
        {3: "Acme   Pet  Co "},
        {3: ""},
        {4: ""},
        {4: "Toys"},
        {5: ""},
        {5: "Unicorn"},
        {5: " CATS "},
        {8: ""},
        {8: "-1.00"},
        {8: "12.345"},
        {2: " "},
        {1: " 0002 ", 2: "Chew"},
        {2: "Kib\x00ble"},
        {8: "1000.01"},  # Dry Food: food's ceiling
        {8: "1000.00"},
        {4: "Fireworks", 8: "10000.01"},  # other: the '*' ceiling
    ]
    rows = [header]
    for i, change in enumerate(changes):
        row = list(base)
        row[0] = f"K{i}"
        for index, value in change.items():
            row[index] = value
        rows.append(row)
    rows.append(["K1 ", *base[1:]])  # duplicate sku
    rows.append(["", *base[1:]])
    return {"pawmart/catalog/2026-11-01/catalog_2026-11-01.csv": _csv(rows).encode()}


def test_peer_matches_platform_row_by_row_on_awkward_values(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    files: dict[str, bytes] = {}
    for part in (_pawmart_sales, _petopia_sales, _petdirect_sales, _chewyish_sales, _northpaw, _vetcare):
        files |= part()
    files |= _pawmart_catalog()
    for key, data in files.items():
        _put(landing, key, data)
    registry = load_registry()

    report = run_pandas(landing, dates=None, out_dir=tmp_path / "out", registry=registry, now=NOW)
    figures, results = platform_run(landing, registry)

    assert_same_figures(report, figures)
    # raw values compared for text files only: a JSON or Parquet number is text the libraries spell
    # differently ("1" / "1.0" for an integer column with nulls), with the same parsed value
    text = {p for p in ("pawmart", "petopia", "vetcare_partners")}
    assert_same_rows(tmp_path / "out", {k: v for k, v in results.items() if k[1] in text}, raw_too=True)
    assert_same_rows(tmp_path / "out", {k: v for k, v in results.items() if k[1] not in text}, raw_too=False)
    # the values were awkward enough to reach every rule of sales, catalog, stores and customers
    for feed in FEEDS:
        assert set(report.feeds[feed].quarantined) == set(peer.QUARANTINE_RULES[feed]), feed
    assert report.feeds["sales"].rejected == {
        "missing_columns": 2,
        "unparseable": 7,
        "format_mismatch": 1,  # the gateway's HTML error page named .jsonl
        "bad_key": 1,
        "bad_file_name": 1,
        "unsupported_format": 1,
    }
    assert report.feeds["stores"].rejected == {"unknown_source": 1}


def test_peer_does_not_use_the_platform_transforms() -> None:
    tree = ast.parse(Path(peer.__file__).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert not [name for name in imported if name and "transforms" in name]
    assert not [name for name in imported if name and name.startswith("polars")]
