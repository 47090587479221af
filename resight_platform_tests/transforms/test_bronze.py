"""Bronze: every profile's file format parses to the canonical strings; unreadable files are refused."""

from __future__ import annotations

import bz2
import dataclasses
import functools
import gzip
import io
import json
import lzma
import operator
import random
import zipfile
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from resight_platform.io.landing import scan_landing
from resight_platform.io.storage import LocalStore
from resight_platform.sources.landing import FILE_FORMATS
from resight_platform.sources.registry import CANONICAL_COLUMNS, FEEDS, Registry, Source
from resight_platform.transforms.bronze import (
    DEFAULT_LIMITS,
    SLICE_BYTES,
    BronzeFile,
    ColumnDrift,
    FileRejected,
    ReadLimits,
    RefusedFile,
    bronze_schema,
    empty_bronze,
    json_array_as_lines,
    read_landing_file,
    read_landing_stream,
    read_landing_tree,
)
from resight_platform_tests.transforms.conftest import (
    BUSINESS_DATE,
    INGESTED_AT,
    PROFILE_PROVIDERS,
    Landed,
    landing_key,
    product,
    sale,
    write_landed,
)


def read(registry: Registry, provider: str, feed: str, data: bytes, name: str = "part-001") -> pl.DataFrame:
    source = registry.source(provider, feed)
    assert source is not None
    return read_landing_file(
        data, source=source, key=landing_key(source, name), business_date=BUSINESS_DATE, ingested_at=INGESTED_AT
    )


def test_bronze_schema_is_canonical_columns_then_lineage() -> None:
    for feed in FEEDS:
        schema = bronze_schema(feed)
        assert list(schema)[: len(CANONICAL_COLUMNS[feed])] == list(CANONICAL_COLUMNS[feed])
        assert list(schema)[len(CANONICAL_COLUMNS[feed]) :] == [
            "_provider",
            "_feed",
            "_business_date",
            "_source_file",
            "_row_number",
            "_ingested_at",
        ]
        assert empty_bronze(feed).schema == pl.Schema(schema)
        assert empty_bronze(feed).height == 0
    with pytest.raises(ValueError, match="unknown feed"):
        bronze_schema("returns")


@pytest.mark.parametrize("profile", sorted(PROFILE_PROVIDERS))
def test_every_profile_parses_to_canonical_strings(registry: Registry, landed: Landed, profile: str) -> None:
    provider = PROFILE_PROVIDERS[profile]
    records = [sale(order_id="007", line_no="1"), sale(order_id="007", line_no="2", sku="SKU-2")]
    frame = read(registry, provider, "sales", landed(provider, "sales", records, extra={"Internal Note": "x"}))

    assert frame.schema == pl.Schema(bronze_schema("sales"))
    assert frame.height == 2
    source = registry.source(provider, "sales")
    assert source is not None
    mapped = set(source.layout.columns.values())
    for column in CANONICAL_COLUMNS["sales"]:
        if column not in mapped:
            assert frame.get_column(column).is_null().all(), column
    assert frame.get_column("order_id").to_list() == ["007", "007"]
    assert frame.get_column("sku").to_list() == ["SKU-1", "SKU-2"]
    assert frame.get_column("_row_number").to_list() == [1, 2]
    assert frame.get_column("_provider").unique().to_list() == [provider]
    assert frame.get_column("_feed").unique().to_list() == ["sales"]
    assert frame.get_column("_business_date").unique().to_list() == [BUSINESS_DATE]
    assert frame.get_column("_source_file").unique().to_list() == [landing_key(source)]
    assert frame.get_column("_ingested_at").unique().to_list() == [INGESTED_AT]


def test_csv_values_are_never_inferred(registry: Registry, landed: Landed) -> None:
    data = landed("pawmart", "stores", [{"store_id": "0042", "state": "NJ", "zip": "07030", "city": "1e3"}])
    frame = read(registry, "pawmart", "stores", data)
    assert frame.select(CANONICAL_COLUMNS["stores"]).row(0) == ("0042", None, "1e3", "NJ", "07030")


def test_legacy_semicolon_latin1_csv(registry: Registry, landed: Landed) -> None:
    data = landed("petopia", "catalog", [product(product_name="Café Crunch; Salmon", list_price="$1,299.00")])
    assert "Café".encode("latin-1") in data and b";" in data
    frame = read(registry, "petopia", "catalog", data)
    assert frame.get_column("product_name").to_list() == ["Café Crunch; Salmon"]
    assert frame.get_column("list_price").to_list() == ["$1,299.00"]


def test_vet_gzip_pipe_csv(registry: Registry, landed: Landed) -> None:
    data = landed("vetcare_partners", "sales", [sale(ordered_at="01/10/2026 08:45", unit_price="$12.99")])
    assert data[:2] == b"\x1f\x8b"
    frame = read(registry, "vetcare_partners", "sales", data)
    assert frame.select("ordered_at", "unit_price").row(0) == ("01/10/2026 08:45", "$12.99")


def test_json_values_are_cast_to_text(registry: Registry, landed: Landed) -> None:
    records = [sale(line_no=1, quantity=3, unit_price=1299, discount=0, ordered_at=1759326300000)]
    for provider, feed in (("petdirect", "sales"), ("chewyish", "sales")):
        frame = read(registry, provider, feed, landed(provider, feed, records))
        row = frame.row(0, named=True)
        assert (row["line_no"], row["quantity"], row["unit_price"], row["discount"]) == ("1", "3", "1299", "0")
    flat = (
        b'{"orderNumber": "A", "lineNumber": 1, "createdAt": "2026-10-01T10:00:00Z", "sku": "7",'
        b' "qty": 2.5, "unitPrice": "1.00", "orderStatus": true, "unmapped": [1, {"sku": [2]}]}\n'
    )
    row = read(registry, "chewyish", "sales", flat).row(0, named=True)
    assert (row["sku"], row["quantity"], row["status"]) == ("7", "2.5", "true")


@pytest.mark.parametrize(("value", "slice_bytes"), [(b'{"id": 7}', SLICE_BYTES), (b" [7, 8]", 64)])
def test_a_nested_json_value_is_refused_never_stringified_into_an_id(
    registry: Registry, value: bytes, slice_bytes: int
) -> None:
    """An object or array where a mapped value belongs refuses the file naming the record and key;
    one in an unmapped key is no column and loads."""
    good = (
        b'{"orderNumber": "A", "lineNumber": 1, "createdAt": "x", "sku": "S", "qty": 1, "unitPrice": "1",'
        b' "orderStatus": "c"}\n'
    )
    bad = good.replace(b'"sku": "S"', b'"sku":' + value)
    for data in (good * 3 + bad, b"[" + b",".join([good, good, good, bad]) + b"]"):
        fmt = "json" if data.startswith(b"[") else "jsonl"
        with pytest.raises(FileRejected) as caught:
            sliced(registry, "chewyish", "sales", data, slice_bytes, fmt=fmt)
        assert caught.value.code == "nested_value"
        assert caught.value.detail.startswith("record 4: 'sku' holds a JSON object or array")
    document = bad.replace(b'"orderStatus": "c"', b'"orderStatus": "c", "orderStatus2": {}').strip()
    with pytest.raises(FileRejected, match="record 1: 'sku' holds"):
        sliced(registry, "chewyish", "sales", document, 16, fmt="json")


_JSON_TEXT = ["a", ",", "{", "}", "[", "]", '"', "\\", " ", "\n", "é", "🐶", ":"]


def _tricky(rng: random.Random, size: int) -> str:
    return "".join(rng.choices(_JSON_TEXT, k=size))


def test_json_array_rewritten_as_lines_keeps_every_record() -> None:
    """Seeded records whose strings hold brackets, commas, quotes, backslash runs and line breaks,
    compact and pretty-printed, scanned in slices as small as one byte (so every state crosses a
    slice boundary): each line is one record, equal to the record."""
    rng = random.Random(20261126)
    for _ in range(400):
        records = [
            {_tricky(rng, 3): _tricky(rng, rng.randint(0, 9)), "n": [rng.random(), {"x": _tricky(rng, 4)}, None]}
            for _ in range(rng.randint(1, 4))
        ]
        text = json.dumps(records, indent=rng.choice([None, 2]), ensure_ascii=rng.random() < 0.5).encode()
        lines = json_array_as_lines(text, scan_bytes=rng.randint(1, 24))
        assert lines is not None
        assert [json.loads(line) for line in bytes(lines).decode().splitlines() if line.strip()] == records


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',  # not an array
        "[1, 2]",  # not objects
        "[]",  # no record: parsed as JSON instead
        '[{"a": 1}] , {"b": 2}]',  # the array closes early
        '[{"a": 1},, {"b": 2}]',  # an empty element
        '[, {"a": 1}]',
        '[{"a": 1},]',  # a trailing comma
        '[{"a": 1} {"b": 2}]',  # a missing comma
        '[{"a": "unterminated}]',
        '[{"a": 1}] trailing',
        "   ",
        "",
    ],
)
def test_json_array_rewrite_leaves_anything_else_to_the_json_parser(text: str) -> None:
    assert json_array_as_lines(text.encode(), scan_bytes=3) is None


def test_json_array_file_reads_through_the_rewrite(registry: Registry) -> None:
    records = [
        {"order_ref": 'O-1 "quoted" },{', "item_seq": 1, "timestamp": 1759326300000, "product_code": "S\\1",
         "units": 2, "price_cents": 1299, "discount_cents": 0, "order_state": "PAID", "state_code": "CA"},
        {"order_ref": "O-2\nline", "item_seq": 2, "timestamp": 1759326300000, "product_code": "[S2]",
         "units": 1, "price_cents": 500, "discount_cents": 10, "order_state": "PAID", "state_code": None},
    ]  # fmt: skip
    for indent in (None, 2):
        frame = read(registry, "petdirect", "sales", json.dumps(records, indent=indent).encode())
        assert frame.select("order_id", "sku", "quantity").rows() == [
            ('O-1 "quoted" },{', "S\\1", "2"),
            ("O-2\nline", "[S2]", "1"),
        ]
    with pytest.raises(FileRejected) as caught:
        read(registry, "petdirect", "sales", b'[{"order_ref": "A"},]')
    assert caught.value.code == "unparseable"


def test_parquet_native_types(registry: Registry) -> None:
    source = registry.source("northpaw_distribution", "sales")
    assert source is not None
    frame = pl.DataFrame(
        {
            "invoice_id": ["I-1", "I-2", "I-3"],
            "invoice_line": [1, 2, 3],
            "invoice_ts": [
                datetime(2026, 10, 1, 13, 45),
                datetime(2026, 10, 1, 13, 45, 30, 500000),
                datetime(2026, 10, 1, 13, 45),
            ],
            "account_store": [7, 8, 9],
            "item": ["A", "B", "C"],
            "qty": [2.0, 1.0, 3.0],
            "unit_cost": [12.5, 1299, 0.1],
            "discount": [None, 0.25, None],
            "status": ["completed", "completed", "cancelled"],
            "extra": [[1], [2], [3]],
        },
        schema_overrides={"unit_cost": pl.Float64},
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    bronze = read(registry, "northpaw_distribution", "sales", buffer.getvalue())
    assert bronze.get_column("ordered_at").to_list() == [
        "2026-10-01T13:45:00Z",
        "2026-10-01T13:45:30.500Z",
        "2026-10-01T13:45:00Z",
    ]
    assert bronze.get_column("line_no").to_list() == ["1", "2", "3"]
    assert bronze.get_column("store_id").to_list() == ["7", "8", "9"]
    assert bronze.get_column("quantity").to_list() == ["2.0", "1.0", "3.0"]
    assert bronze.get_column("unit_price").to_list() == ["12.5", "1299.0", "0.1"]
    assert bronze.get_column("discount").to_list() == [None, "0.25", None]

    aware = frame.with_columns(
        pl.col("invoice_ts").dt.replace_time_zone("America/New_York"), pl.col("invoice_line").cast(pl.Int8)
    )
    buffer = io.BytesIO()
    aware.write_parquet(buffer)
    bronze = read(registry, "northpaw_distribution", "sales", buffer.getvalue())
    assert bronze.get_column("ordered_at").to_list()[0] == "2026-10-01T17:45:00Z"


def test_parquet_native_date(registry: Registry) -> None:
    frame = pl.DataFrame({"account_store": ["S1"], "state": ["TX"], "zip": [2134], "opened": [date(2020, 1, 2)]})
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    bronze = read(registry, "northpaw_distribution", "stores", buffer.getvalue())
    assert bronze.select("store_id", "state", "zip", "city").row(0) == ("S1", "TX", "2134", None)


def test_naive_ingested_at_is_utc(registry: Registry, landed: Landed) -> None:
    source = registry.source("pawmart", "stores")
    assert source is not None
    data = landed("pawmart", "stores", [{"store_id": "S1", "state": "TX"}])
    naive = read_landing_file(
        data, source=source, key="k.csv", business_date=BUSINESS_DATE, ingested_at=datetime(2026, 10, 2, 6)
    )
    aware = read_landing_file(
        data,
        source=source,
        key="k.csv",
        business_date=BUSINESS_DATE,
        ingested_at=datetime(2026, 10, 2, 1, tzinfo=timezone(timedelta(hours=-5))),
    )
    assert naive.get_column("_ingested_at").to_list() == [datetime(2026, 10, 2, 6, tzinfo=UTC)]
    assert aware.get_column("_ingested_at").to_list() == [datetime(2026, 10, 2, 6, tzinfo=UTC)]


def test_blank_lines_are_not_records_and_header_names_are_forgiving(registry: Registry) -> None:
    data = b"\xef\xbb\xbf Store_ID ,STATE,zip\nS1,TX,78701\n\nS2,CA,90001\n\n"
    frame = read(registry, "pawmart", "stores", data)
    assert frame.select("store_id", "state", "_row_number").rows() == [("S1", "TX", 1), ("S2", "CA", 2)]


def test_quoted_values_keep_delimiters_and_newlines(registry: Registry) -> None:
    data = b'store_id,store_name,state\nS1,"Main St, Unit 2\nBack door",TX\nS2,x,CA\n'
    frame = read(registry, "pawmart", "stores", data)
    assert frame.get_column("store_name").to_list() == ["Main St, Unit 2\nBack door", "x"]
    assert frame.get_column("_row_number").to_list() == [1, 2]


def _data_id(value: object) -> str | None:
    """A test id for parametrised file bytes that does not depend on them (gzip and zip headers
    carry timestamps, and xdist workers must collect the same ids)."""
    return "bytes" if isinstance(value, bytes) else None


@pytest.mark.parametrize(
    ("provider", "data"),
    [
        ("pawmart", b"order_id,line_no,ordered_at,sku,quantity,unit_price,status\n"),
        ("petopia", "TransID;Line;SaleDateTime;ItemSKU;Qty;Price;Status\n".encode("latin-1")),
        (
            "vetcare_partners",
            gzip.compress(b"Invoice No|Line|Visit Date|Item Code|Quantity|Unit Price|Status\n", mtime=0),
        ),
        ("chewyish", b""),
        ("chewyish", b"\n  \n"),
        ("petdirect", b"[]"),
    ],
    ids=_data_id,
)
def test_empty_file_with_header_is_an_empty_frame(registry: Registry, provider: str, data: bytes) -> None:
    frame = read(registry, provider, "sales", data)
    assert frame.height == 0
    assert frame.schema == pl.Schema(bronze_schema("sales"))


def test_empty_parquet_is_an_empty_frame(registry: Registry, landed: Landed) -> None:
    frame = read(registry, "northpaw_distribution", "sales", landed("northpaw_distribution", "sales", []))
    assert frame.height == 0
    assert frame.schema == pl.Schema(bronze_schema("sales"))


def _parquet_bytes() -> bytes:
    buffer = io.BytesIO()
    pl.DataFrame({"invoice_id": ["I-1"] * 100}).write_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("provider", "data", "message"),
    [
        ("vetcare_partners", gzip.compress(b"Invoice No|Line\n1|2\n", mtime=0)[:-6], "not a readable gzip file"),
        ("chewyish", b'{"orderNumber": "A"}\n{"orderNumber": \n', "JSON Lines could not be parsed"),
        ("chewyish", b'[{"orderNumber": "A"}]\n', "JSON Lines could not be parsed"),
        ("petdirect", b'[{"order_ref": "A"},', "JSON could not be parsed"),
        ("petdirect", b"", "JSON could not be parsed"),
        ("northpaw_distribution", b"PAR1 this is not parquet PAR1", "Parquet could not be read"),
        ("northpaw_distribution", _parquet_bytes()[:-20], "Parquet file is truncated"),
        ("northpaw_distribution", b"PAR1", "Parquet file is truncated: its 4 bytes"),
        ("pawmart", b"order_id,line_no\nA,1\nB,2,extra\n", "CSV could not be parsed"),
        ("pawmart", b'order_id,line_no\n"A,1\n', "CSV could not be parsed"),
        ("pawmart", b"", "the file is empty"),
        ("pawmart", b"order_id,sku\n\xff\xfe,1\n", "not valid utf-8"),
        ("chewyish", b'{"orderNumber": "\xff"}\n', "not valid utf-8"),
    ],
    ids=_data_id,
)
def test_unreadable_files_are_rejected_as_unparseable(
    registry: Registry, provider: str, data: bytes, message: str
) -> None:
    with pytest.raises(FileRejected) as caught:
        read(registry, provider, "sales", data)
    assert caught.value.code == "unparseable"
    assert message in caught.value.detail
    assert len(caught.value.detail) <= 400
    assert str(caught.value).startswith("unparseable: ")


def test_missing_required_columns_are_named_with_the_file_columns(registry: Registry) -> None:
    data = b"order_id,line_no,ordered_at,sku,qty,unit_price,state\nA,1,2026-10-01T10:00:00,S,1,1.00,x\n"
    with pytest.raises(FileRejected) as caught:
        read(registry, "pawmart", "sales", data)
    assert caught.value.code == "missing_columns"
    detail = caught.value.detail
    assert "quantity (column 'quantity')" in detail and "status (column 'status')" in detail
    assert "'qty'" in detail and "'state'" in detail and "pawmart/sales" in detail


def test_wrong_delimiter_shows_up_as_missing_columns(registry: Registry) -> None:
    data = b"TransID,Line,SaleDateTime,ItemSKU,Qty,Price,Status\nA,1,x,S,1,1,sale\n"
    with pytest.raises(FileRejected) as caught:
        read(registry, "petopia", "sales", data)
    assert caught.value.code == "missing_columns"
    assert "'TransID,Line,SaleDateTime,ItemSKU,Qty,Price,Status'" in caught.value.detail


def test_json_key_absent_from_every_record_is_a_missing_column(registry: Registry) -> None:
    records = [{"orderNumber": "A", "lineNumber": 1, "createdAt": "x", "sku": "S", "qty": 1, "unitPrice": "1"}]
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    with pytest.raises(FileRejected) as caught:
        read(registry, "chewyish", "sales", data)
    assert caught.value.code == "missing_columns"
    assert "status (column 'orderStatus')" in caught.value.detail
    # A key inside a string value does not count as present.
    records[0]["note"] = 'the "orderStatus": field is missing'
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    with pytest.raises(FileRejected, match="missing_columns"):
        read(registry, "chewyish", "sales", data)


def _json_drift(registry: Registry, data: bytes, slice_bytes: int = SLICE_BYTES) -> list[ColumnDrift]:
    drifts: list[ColumnDrift] = []
    fmt = "json" if data.startswith(b"[") else None  # chewyish sends JSON Lines; an array is "json"
    frames = sliced(registry, "chewyish", "sales", data, slice_bytes, on_drift=drifts.append, fmt=fmt)
    assert sum(frame.height for frame in frames) == data.count(b'"orderNumber"')
    return drifts


def test_json_keys_the_mapping_lacks_are_drift_new_or_renamed(registry: Registry) -> None:
    base = {
        "orderNumber": "A",
        "lineNumber": 1,
        "createdAt": "2026-10-01T10:00:00Z",
        "sku": "S",
        "qty": 1,
        "unitPrice": "1.00",
        "discountAmount": "0",
        "customerRef": "C",
        "orderStatus": "completed",
        "shipState": "CA",
    }
    assert _json_drift(registry, (json.dumps(base) + "\n").encode()) == []
    drifted = {("loyaltyTier" if k == "shipState" else k): v for k, v in base.items()}
    drifted["discountAmt"] = drifted.pop("discountAmount")
    drifted["address"] = {"zip": "90210"}  # a nested key is not a column
    lines = [json.dumps(drifted | {"lineNumber": i}) for i in range(40)]
    for data, slice_bytes in (
        ("\n".join(lines).encode(), SLICE_BYTES),
        ("\n".join(lines).encode(), 300),  # many slices: keys gathered from each
        (json.dumps([json.loads(line) for line in lines], indent=2).encode(), 300),  # a JSON array
    ):
        (drift,) = _json_drift(registry, data, slice_bytes)
        assert drift.renamed == (("discountAmount", "discountAmt"),)
        assert set(drift.new) == {"loyaltyTier", "address"}
        assert drift.missing == ("shipState",)


def test_json_key_absent_from_some_records_is_null_there(registry: Registry) -> None:
    data = (
        b'{"orderNumber": "A", "lineNumber": 1, "createdAt": "x", "sku": "S", "qty": 1, "unitPrice": "1",'
        b' "orderStatus": "paid"}\n{"orderNumber": "B"}\n'
    )
    frame = read(registry, "chewyish", "sales", data)
    assert frame.select("order_id", "status").rows() == [("A", "paid"), ("B", None)]


def test_corrupt_parquet_only_ever_raises_file_rejected(registry: Registry) -> None:
    """Seeded byte corruption: a file either reads or is refused, never crashes the batch.

    Some corruptions make the Parquet reader panic in Rust (a ``BaseException``); those must come
    out as ``FileRejected`` too.
    """
    frame = pl.DataFrame(
        {
            "invoice_id": [f"I-{i}" for i in range(2000)],
            "invoice_line": list(range(2000)),
            "invoice_ts": [datetime(2026, 10, 1) + timedelta(seconds=10 * i) for i in range(2000)],
        }
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    original = buffer.getvalue()
    rng = random.Random(1)
    outcomes: set[str] = set()
    for _ in range(200):
        data = bytearray(original)
        for _ in range(5):
            data[rng.randrange(4, len(data) - 8)] = rng.randrange(256)
        try:
            read(registry, "northpaw_distribution", "sales", bytes(data))
        except FileRejected as exc:
            outcomes.add(exc.code)
        else:
            outcomes.add("read")
    assert outcomes <= {"read", "unparseable", "missing_columns"}
    assert "unparseable" in outcomes


# --- reading a file a slice at a time -------------------------------------------------------------


def sliced(
    registry: Registry,
    provider: str,
    feed: str,
    data: bytes,
    slice_bytes: int,
    on_drift: Callable[[ColumnDrift], None] | None = None,
    fmt: str | None = None,
    limits: ReadLimits = DEFAULT_LIMITS,
) -> list[pl.DataFrame]:
    """The stream reader's frames of ``data`` as ``provider``'s ``feed`` (in format ``fmt`` if given)."""
    source = registry.source(provider, feed)
    assert source is not None
    if fmt is not None:
        source = dataclasses.replace(source, format=fmt)
    return list(
        read_landing_stream(
            io.BytesIO(data),
            file_format=source.format,
            source=source,
            key=landing_key(source, "part-001"),
            business_date=BUSINESS_DATE,
            ingested_at=INGESTED_AT,
            slice_bytes=slice_bytes,
            whole=lambda: data,
            on_drift=on_drift,
            limits=limits,
        )
    )


def _awkward_sales(rng: random.Random, count: int, *, encodable: str) -> list[dict[str, Any]]:
    """Sales lines whose text holds delimiters, quotes, line breaks and non-ASCII letters."""
    pieces = ["a", "b", ",", ";", "|", '"', "\n", "é", " ", "{", "}", "[", "]", "\\", ":"]
    if encodable == "utf-8":
        pieces.append("🐶")

    def text() -> str:
        return "".join(rng.choices(pieces, k=rng.randint(1, 8)))

    return [
        sale(order_id=f"O-{n}", line_no=str(n), sku=text(), status=text() if rng.random() < 0.5 else "completed")
        for n in range(count)
    ]


@pytest.mark.parametrize("profile", sorted(PROFILE_PROVIDERS))
def test_slices_concatenate_to_the_whole_file(registry: Registry, landed: Landed, profile: str) -> None:
    """Every profile's format read in slices of 1 byte up to the whole file gives frame for frame
    what the whole-file read gives, with record numbers continuing across slices."""
    provider = PROFILE_PROVIDERS[profile]
    source = registry.source(provider, "sales")
    assert source is not None
    encoding = source.profile.encoding if source.format.startswith("csv") else "utf-8"
    data = landed(provider, "sales", _awkward_sales(random.Random(profile), 60, encodable=encoding))
    whole = read(registry, provider, "sales", data)
    assert whole.height == 60
    for slice_bytes in (1, 7, 100, 1000, len(data), 10 * len(data)):
        frames = sliced(registry, provider, "sales", data, slice_bytes)
        if slice_bytes <= 100 and source.format != "parquet":
            assert len(frames) > 10, f"{slice_bytes}-byte slices gave {len(frames)} frames"
        assert pl.concat(frames).equals(whole), f"{profile} in {slice_bytes}-byte slices"


def test_csv_slices_keep_quotes_byte_order_mark_crlf_and_blank_lines(registry: Registry) -> None:
    data = (
        b'\xef\xbb\xbf\r\n\r\nstore_id,store_name,state\r\nS1,"Main St, ""Unit"" 2\r\nBack door",TX\r\n'
        b"\r\nS2,x,CA\r\n" + b"".join(b'S%d,"a\nb\nc",NY\r\n' % n for n in range(3, 40)) + b"S40,last,WA"
    )
    whole = read(registry, "pawmart", "stores", data)
    assert whole.height == 40
    assert whole.get_column("store_name").to_list()[:2] == ['Main St, "Unit" 2\r\nBack door', "x"]
    for slice_bytes in (1, 2, 3, 5, 13, 64):
        assert pl.concat(sliced(registry, "pawmart", "stores", data, slice_bytes)).equals(whole)


def test_parquet_is_read_a_run_of_row_groups_at_a_time(registry: Registry) -> None:
    frame = pl.DataFrame(
        {"account_store": [f"S{n}" for n in range(1000)], "state": ["TX"] * 1000, "zip": list(range(1000))}
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer, row_group_size=100)
    data = buffer.getvalue()
    whole = read(registry, "northpaw_distribution", "stores", data)
    frames = sliced(registry, "northpaw_distribution", "stores", data, 1)
    assert [f.height for f in frames] == [100] * 10
    assert pl.concat(frames).equals(whole)
    assert frames[-1].get_column("_row_number").to_list() == list(range(901, 1001))


def test_a_bad_record_in_a_late_slice_rejects_the_file_after_earlier_slices(registry: Registry) -> None:
    """The caller learns of the failure only after the good slices: it must drop them (the bronze
    asset restarts the partition without the file)."""
    header = b"order_id,line_no,ordered_at,sku,quantity,unit_price,status\n"
    data = (
        header + b"".join(b"A%d,1,2026-10-01T10:00:00,S,1,1.00,completed\n" % n for n in range(200)) + b"B,2,,,,,,x\n"
    )
    source = registry.source("pawmart", "sales")
    assert source is not None
    stream = read_landing_stream(
        io.BytesIO(data),
        file_format="csv",
        source=source,
        key="k",
        business_date=BUSINESS_DATE,
        ingested_at=INGESTED_AT,
        slice_bytes=640,
    )
    good = 0
    with pytest.raises(FileRejected, match="CSV could not be parsed"):
        for frame in stream:
            good += frame.height
    assert 0 < good < 200
    with pytest.raises(FileRejected, match="CSV could not be parsed"):
        read(registry, "pawmart", "sales", data)


def test_json_key_judged_over_the_whole_file_across_slices(registry: Registry) -> None:
    """A required key that first appears in a late slice is present; one that never appears rejects
    the file once the last slice is read."""
    row = {"orderNumber": "A", "lineNumber": 1, "createdAt": "2026-10-01T10:00:00Z", "qty": 1, "unitPrice": "1.00"}
    late = [row] * 30 + [{**row, "sku": "S-9", "orderStatus": "completed"}]
    data = "".join(json.dumps(r) + "\n" for r in late).encode()
    frames = sliced(registry, "chewyish", "sales", data, 100)
    assert len(frames) > 5
    assert pl.concat(frames).equals(read(registry, "chewyish", "sales", data))
    missing = "".join(json.dumps(r) + "\n" for r in [row] * 30).encode()
    with pytest.raises(FileRejected) as caught:
        sliced(registry, "chewyish", "sales", missing, 100)
    assert caught.value.code == "missing_columns"
    assert "'sku'" in caught.value.detail


def test_json_that_is_not_an_array_of_records_is_read_whole_or_refused(registry: Registry) -> None:
    one = (
        b'{"order_ref": "A", "item_seq": 1, "timestamp": 1, "product_code": "S", "units": 1, "price_cents": 5,'
        b' "order_state": "completed"}'
    )
    assert [f.height for f in sliced(registry, "petdirect", "sales", one, 4)] == [1]
    assert [f.height for f in sliced(registry, "petdirect", "sales", b" [ ] ", 1)] == [0]
    source = registry.source("petdirect", "sales")
    assert source is not None
    with pytest.raises(FileRejected, match="not an array of records"):
        list(
            read_landing_stream(
                io.BytesIO(one),
                file_format="json",
                source=source,
                key="k",
                business_date=BUSINESS_DATE,
                ingested_at=INGESTED_AT,
            )
        )
    mixed = b"[" + b",".join([one] * 20) + b", 5]"
    with pytest.raises(FileRejected, match="JSON could not be parsed"):
        sliced(registry, "petdirect", "sales", mixed, 50)


def test_invalid_utf8_in_a_late_block_names_its_byte(registry: Registry) -> None:
    data = b"store_id,state\n" + b"A,\xc3\xa9\n" * 50 + b"B,\xff\n"
    with pytest.raises(FileRejected, match=rf"not valid utf-8: invalid start byte near byte {len(data) - 2}"):
        sliced(registry, "pawmart", "stores", data, 16)
    with pytest.raises(FileRejected, match=rf"near byte {len(data) - 2}"):
        read(registry, "pawmart", "stores", data)


def test_column_drift_names_new_missing_and_renamed_columns() -> None:
    from resight_platform.transforms.bronze import column_drift

    layout = {"order_id": "order_id", "discount": "discount", "store_id": "store_id", "channel": "channel"}
    columns = ["order_id", "discount_amt", "channel", "loyalty_tier"]
    matched = {"order_id": "order_id", "channel": "channel"}
    drift = column_drift(columns, matched, layout)
    assert drift.renamed == (("discount", "discount_amt"),)  # alike enough to be a rename
    assert drift.new == ("loyalty_tier",) and drift.missing == ("store_id",)
    assert drift.describe() == "renamed 'discount' → 'discount_amt'; new 'loyalty_tier'; missing 'store_id'"
    assert not column_drift(
        ["order_id", "channel"],
        {"order_id": "order_id", "channel": "channel"},
        {
            "order_id": "order_id",
            "channel": "channel",
        },
    )


# --- the file's extension decides its format; its bytes must agree ---------------------------------


def in_format(source: Source, records: list[dict[str, Any]], fmt: str) -> bytes:
    """``records`` written by ``source``'s profile (columns, delimiter, encoding) as a ``fmt`` file."""
    data = write_landed(dataclasses.replace(source, format=fmt.removesuffix(".gz")), records)
    return gzip.compress(data, mtime=0) if fmt.endswith(".gz") and fmt != "csv.gz" else data


def _csv_gz(source: Source, records: list[dict[str, Any]]) -> bytes:
    return write_landed(dataclasses.replace(source, format="csv.gz"), records)


@pytest.mark.parametrize("provider", sorted(PROFILE_PROVIDERS.values()))
def test_the_extension_decides_the_format_whatever_the_source_usually_sends(registry: Registry, provider: str) -> None:
    """A partner may send ``.csv`` one day and ``.csv.gz`` (or any other format) the next: each file
    is read by its own extension, with its source's columns and dialect, to the same bronze rows."""
    source = registry.source(provider, "sales")
    assert source is not None
    records = [sale(order_id="O-1"), sale(order_id="O-2", line_no="2", sku="SKU-2", customer_id=None)]
    expected: pl.DataFrame | None = None
    for fmt in FILE_FORMATS:
        data = _csv_gz(source, records) if fmt == "csv.gz" else in_format(source, records, fmt)
        key = landing_key(dataclasses.replace(source, format=fmt))
        frame = read_landing_file(data, source=source, key=key, business_date=BUSINESS_DATE, ingested_at=INGESTED_AT)
        streamed = read_landing_stream(
            io.BytesIO(data),
            file_format=fmt,
            source=source,
            key=key,
            business_date=BUSINESS_DATE,
            ingested_at=INGESTED_AT,
            slice_bytes=64,
            whole=lambda data=data: data,
        )
        assert pl.concat(list(streamed)).equals(frame), fmt
        assert frame.get_column("_source_file").unique().to_list() == [key]
        rows = frame.drop("_source_file")
        if expected is None:
            expected = rows
        assert rows.equals(expected), fmt
    assert expected is not None and expected.get_column("order_id").to_list() == ["O-1", "O-2"]


def test_a_csv_source_loads_csv_one_day_and_csv_gz_the_next(registry: Registry) -> None:
    """The reported case: a valid gzip from a ``.csv`` partner was refused as "not valid utf-8"."""
    source = registry.source("pawmart", "sales")
    assert source is not None and source.format == "csv"
    day1 = read_landing_file(
        in_format(source, [sale(order_id="D1")], "csv"),
        source=source,
        key="pawmart/sales/2026-10-01/sales.csv",
        business_date=date(2026, 10, 1),
        ingested_at=INGESTED_AT,
    )
    day2 = read_landing_file(
        _csv_gz(source, [sale(order_id="D2")]),
        source=source,
        key="pawmart/sales/2026-10-02/sales.csv.gz",
        business_date=date(2026, 10, 2),
        ingested_at=INGESTED_AT,
    )
    assert day1.get_column("order_id").to_list() == ["D1"]
    assert day2.get_column("order_id").to_list() == ["D2"]


def test_gzipped_json_streams_and_a_gzipped_json_document_is_read_whole(registry: Registry) -> None:
    source = registry.source("petdirect", "sales")
    assert source is not None
    many = [sale(order_id=f"O-{n}") for n in range(50)]
    frames = sliced(registry, "petdirect", "sales", in_format(source, many, "json.gz"), 200, fmt="json.gz")
    assert len(frames) > 3 and pl.concat(frames).height == 50
    one = gzip.compress(
        b'{"order_ref": "A", "item_seq": 1, "timestamp": 1, "product_code": "S", "units": 1, '
        b'"price_cents": 5, "order_state": "completed"}',
        mtime=0,
    )
    assert [f.height for f in sliced(registry, "petdirect", "sales", one, 8, fmt="json.gz")] == [1]
    lines = in_format(source, many, "jsonl.gz")
    assert sum(f.height for f in sliced(registry, "petdirect", "sales", lines, 100, fmt="jsonl.gz")) == 50


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as book:
        book.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


CSV_TEXT = b"order_id,line_no,ordered_at,sku,quantity,unit_price,status\nA,1,2026-10-01T10:00:00,S,1,1.00,completed\n"
JSON_LINES = b'{"orderNumber": "A", "lineNumber": 1}\n'


@pytest.mark.parametrize(
    ("provider", "fmt", "data", "detail"),
    [
        ("pawmart", "csv", gzip.compress(CSV_TEXT, mtime=0), "file name says csv but the bytes are gzip"),
        ("pawmart", "csv", _parquet_bytes(), "file name says csv but the bytes are Parquet"),
        ("pawmart", "csv", _zip_bytes(), "file name says csv but the bytes are zip"),
        ("pawmart", "csv", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "but the bytes are an OLE2 document"),
        ("pawmart", "csv", b"%PDF-1.7\n", "file name says csv but the bytes are a PDF document"),
        ("pawmart", "csv", bz2.compress(CSV_TEXT), "file name says csv but the bytes are bzip2"),
        ("pawmart", "csv", bz2.compress(b""), "file name says csv but the bytes are bzip2"),
        ("pawmart", "csv", lzma.compress(CSV_TEXT), "file name says csv but the bytes are xz"),
        ("vetcare_partners", "csv.gz", CSV_TEXT, "file name says csv.gz but the bytes are text (it starts 'order_id,"),
        (
            "vetcare_partners",
            "csv.gz",
            b"not gzip at all",
            "csv.gz but the bytes are text (it starts 'not gzip at all')",
        ),
        (
            "vetcare_partners",
            "csv.gz",
            gzip.compress(_parquet_bytes(), mtime=0),
            "csv.gz but the bytes are gzip of Parquet",
        ),
        (
            "vetcare_partners",
            "csv.gz",
            gzip.compress(_zip_bytes(), mtime=0),
            "file name says csv.gz but the bytes are gzip of zip",
        ),
        ("northpaw_distribution", "parquet", CSV_TEXT, "file name says parquet but the bytes are text (it starts"),
        (
            "northpaw_distribution",
            "parquet",
            gzip.compress(b"x", mtime=0),
            "file name says parquet but the bytes are gzip",
        ),
        ("northpaw_distribution", "parquet", b"", "file name says parquet but the bytes are empty or white space only"),
        ("chewyish", "jsonl", b"<html>502 Bad Gateway</html>\n", "jsonl but the bytes are text (it starts '<html>502"),
        ("chewyish", "jsonl", gzip.compress(JSON_LINES, mtime=0), "file name says jsonl but the bytes are gzip"),
        (
            "chewyish",
            "jsonl.gz",
            JSON_LINES,
            "file name says jsonl.gz but the bytes are JSON (it starts '{\"orderNumber",
        ),
        (
            "chewyish",
            "jsonl.gz",
            gzip.compress(CSV_TEXT, mtime=0),
            "file name says jsonl.gz but the bytes are gzip of text",
        ),
        ("petdirect", "json", CSV_TEXT, "file name says json but the bytes are text (it starts 'order_id,"),
        ("petdirect", "json", b"\xef\xbb\xbf \n\x1f\x8b", "file name says json but the bytes are text"),
        (
            "petdirect",
            "json.gz",
            gzip.compress(_parquet_bytes(), mtime=0),
            "file name says json.gz but the bytes are gzip of Parquet",
        ),
        ("petdirect", "json.gz", b"", "file name says json.gz but the bytes are empty or white space only"),
    ],
    ids=_data_id,
)
def test_bytes_that_are_not_what_the_extension_says_are_a_format_mismatch(
    registry: Registry, provider: str, fmt: str, data: bytes, detail: str
) -> None:
    """Checked on the first bytes, before anything is parsed (no frame is ever yielded); the
    detail names what the file name says and what the bytes are."""
    source = registry.source(provider, "sales")
    assert source is not None
    stream = read_landing_stream(
        io.BytesIO(data),
        file_format=fmt,
        source=source,
        key=f"{provider}/sales/2026-10-01/x.{fmt}",
        business_date=BUSINESS_DATE,
        ingested_at=INGESTED_AT,
        whole=lambda: data,
    )
    with pytest.raises(FileRejected) as caught:
        next(stream)
    assert caught.value.code == "format_mismatch"
    assert detail in caught.value.detail
    assert str(caught.value).startswith("format_mismatch: file name says ")


@pytest.mark.parametrize(
    ("provider", "fmt", "data"),
    [
        ("petdirect", "json", b"\xef\xbb\xbf \r\n\t[]"),  # a byte-order mark and white space before the array
        ("chewyish", "jsonl", b"\n\n"),  # no records: a valid empty file
        ("chewyish", "jsonl.gz", gzip.compress(b"", mtime=0)),
        ("pawmart", "csv", b'["order_id"],line_no\n'),  # a CSV header may look like JSON
        ("pawmart", "csv", b"BZh1,order_id\n"),  # or start like bzip2
        ("petopia", "csv", "Transacción;x\n".encode("latin-1")),
    ],
    ids=_data_id,
)
def test_text_the_extension_allows_passes_the_check(registry: Registry, provider: str, fmt: str, data: bytes) -> None:
    source = registry.source(provider, "sales")
    assert source is not None
    try:
        read_landing_file(data, source=source, key=f"k.{fmt}", business_date=BUSINESS_DATE, ingested_at=INGESTED_AT)
    except FileRejected as exc:
        assert exc.code == "missing_columns", exc


def test_a_key_without_a_format_needs_one_given(registry: Registry) -> None:
    source = registry.source("pawmart", "stores")
    assert source is not None
    data = b"store_id,state\nS1,TX\n"
    with pytest.raises(ValueError, match="pass file_format"):
        read_landing_file(data, source=source, key="k", business_date=BUSINESS_DATE, ingested_at=INGESTED_AT)
    frame = read_landing_file(
        data, source=source, key="k", business_date=BUSINESS_DATE, ingested_at=INGESTED_AT, file_format="csv"
    )
    assert frame.height == 1
    with pytest.raises(ValueError, match="file_format 'xlsx' is not one of"):
        next(
            read_landing_stream(
                io.BytesIO(data),
                file_format="xlsx",
                source=source,
                key="k",
                business_date=BUSINESS_DATE,
                ingested_at=INGESTED_AT,
            )
        )


# --- Limits: a record and a file are capped, whatever the slice and block boundaries -----------------

STORES_HEADER = b"store_id,state\n"


@pytest.mark.parametrize("slice_bytes", [1, 7, 64, SLICE_BYTES])
def test_a_line_longer_than_the_record_cap_rejects_the_file_wherever_the_blocks_end(
    registry: Registry, slice_bytes: int
) -> None:
    limits = ReadLimits(max_record_bytes=40, max_file_bytes=1 << 20)
    fits = STORES_HEADER + b"S1," + b"x" * 37 + b"\n" + b"S2,TX\n" * 20  # a 40-byte line is allowed
    assert pl.concat(sliced(registry, "pawmart", "stores", fits, slice_bytes, limits=limits)).height == 21
    for data, start in (
        (STORES_HEADER + b"S2,TX\n" * 20 + b"S1," + b"x" * 38 + b"\n", 15 + 120),  # 41 bytes, ended
        (STORES_HEADER + b"S2,TX\n" * 3 + b"S1," + b"x" * 38, 15 + 18),  # 41 bytes, the file's end
        (b"store_id," + b"y" * 100 + b"\nS1,TX\n", 0),  # the header
    ):
        with pytest.raises(FileRejected) as caught:
            sliced(registry, "pawmart", "stores", data, slice_bytes, limits=limits)
        assert (caught.value.code, caught.value.detail) == (
            "record_too_long",
            f"the line from byte {start} of the text is longer than the limit of 40 bytes (RESIGHT_MAX_RECORD_BYTES)",
        )


def test_a_quoted_record_spanning_lines_past_the_cap_is_refused_once_a_slice_is_held(registry: Registry) -> None:
    limits = ReadLimits(max_record_bytes=100, max_file_bytes=1 << 20)
    data = STORES_HEADER + b'S1,"' + b"a\n" * 80 + b'"\nS2,TX\n'
    with pytest.raises(
        FileRejected, match="the record spanning lines from byte 15 of the text is longer than the limit of 100"
    ):
        sliced(registry, "pawmart", "stores", data, 32, limits=limits)
    assert pl.concat(sliced(registry, "pawmart", "stores", data, 32)).height == 2  # the default cap: 1 MiB


@pytest.mark.parametrize("fmt", ["csv", "csv.gz"])
def test_a_file_past_the_file_cap_is_too_large_and_read_no_further(registry: Registry, fmt: str) -> None:
    text = STORES_HEADER + b"S1,TX\n" * 1000
    data = gzip.compress(text, mtime=0) if fmt == "csv.gz" else text
    exact = ReadLimits(max_record_bytes=1 << 10, max_file_bytes=len(text))
    assert pl.concat(sliced(registry, "pawmart", "stores", data, 100, fmt=fmt, limits=exact)).height == 1000
    read: list[int] = []

    class Counting(io.BytesIO):
        def read(self, size: int | None = -1, /) -> bytes:
            out = super().read(size)
            read.append(len(out))
            return out

    stores = registry.source("pawmart", "stores")
    assert stores is not None
    source = dataclasses.replace(stores, format=fmt)
    with pytest.raises(FileRejected) as caught:
        list(
            read_landing_stream(
                Counting(text if fmt == "csv" else data),
                file_format=fmt,
                source=source,
                key="k",
                business_date=BUSINESS_DATE,
                ingested_at=INGESTED_AT,
                slice_bytes=100,
                limits=ReadLimits(max_record_bytes=1 << 10, max_file_bytes=len(text) - 1),
            )
        )
    said = ", decompressed," if fmt == "csv.gz" else ""
    assert (caught.value.code, caught.value.detail) == (
        "too_large",
        f"the file holds{said} more than the limit of {len(text) - 1} bytes (RESIGHT_MAX_FILE_BYTES)",
    )
    if fmt == "csv":
        assert sum(read) == len(text)  # one byte past the limit, no more


def test_a_gzip_bomb_stops_one_block_past_the_cap(registry: Registry) -> None:
    """256 MiB of zeros (256 KB of gzip) against a 1 MiB cap: refused after about a MiB of output."""
    member = gzip.compress(b"0,0\n" * (1 << 18), mtime=0)
    bomb = gzip.compress(STORES_HEADER, mtime=0) + member * 256
    with pytest.raises(FileRejected, match="the file holds, decompressed, more than the limit of 1048576 bytes"):
        sliced(registry, "pawmart", "stores", bomb, 1 << 16, fmt="csv.gz", limits=ReadLimits(1 << 10, 1 << 20))


def test_a_json_document_read_whole_is_one_record_under_the_cap(registry: Registry) -> None:
    one = b'{"order_ref": "A", "item_seq": 1, "timestamp": 1, "product_code": "S", "units": 1, "price_cents": 5,'
    one += b' "order_state": "completed", "note": "' + b"n" * 200 + b'"}'
    small = ReadLimits(max_record_bytes=len(one) - 1, max_file_bytes=1 << 20)
    for fmt, data in (("json", one), ("json.gz", gzip.compress(one, mtime=0))):
        assert sliced(registry, "petdirect", "sales", data, 16, fmt=fmt)[0].height == 1
        with pytest.raises(FileRejected) as caught:
            sliced(registry, "petdirect", "sales", data, 16, fmt=fmt, limits=small)
        assert caught.value.code == "record_too_long"
        assert caught.value.detail.startswith("the JSON document, not an array of records so read whole as one record")


def test_a_broken_json_array_past_the_record_cap_is_unparseable_not_too_long(registry: Registry) -> None:
    source = registry.source("petdirect", "sales")
    assert source is not None
    data = in_format(source, [sale(order_id=f"O-{n}") for n in range(40)], "json")
    truncated = data[: len(data) * 2 // 3]
    limits = ReadLimits(max_record_bytes=len(data) // 4, max_file_bytes=1 << 20)
    for slice_bytes, said in ((SLICE_BYTES, ""), (200, " after ")):
        with pytest.raises(FileRejected) as caught:
            sliced(registry, "petdirect", "sales", truncated, slice_bytes, fmt="json", limits=limits)
        assert caught.value.code == "unparseable"
        assert caught.value.detail.startswith("JSON could not be parsed: the array of records is not well formed")
        assert said in caught.value.detail


def test_a_parquet_footer_is_judged_before_any_page_is_read(registry: Registry) -> None:
    buffer = io.BytesIO()
    pl.DataFrame({"store_id": [f"S{n}" for n in range(5000)], "state": ["TX"] * 5000}).write_parquet(buffer)
    data = buffer.getvalue()
    assert pl.concat(sliced(registry, "pawmart", "stores", data, SLICE_BYTES, fmt="parquet")).height == 5000
    rows = ReadLimits(max_record_bytes=1 << 10, max_file_bytes=5000 * 2 * 8 - 1)
    with pytest.raises(FileRejected, match="the Parquet footer declares 5000 rows of 2 columns, at least 80000 bytes"):
        sliced(registry, "pawmart", "stores", data, SLICE_BYTES, fmt="parquet", limits=rows)
    spooled = ReadLimits(max_record_bytes=1 << 10, max_file_bytes=len(data) - 1)
    with pytest.raises(FileRejected, match="the file holds more than the limit"):
        sliced(registry, "pawmart", "stores", data, SLICE_BYTES, fmt="parquet", limits=spooled)


# --- Shapes that slip through ----------------------------------------------------------------------


@pytest.mark.parametrize("slice_bytes", [1, 5, SLICE_BYTES])
def test_carriage_return_line_ends_are_line_breaks(registry: Registry, slice_bytes: int) -> None:
    unix = STORES_HEADER + b'S1,TX\nS2,"A\nB"\n\nS3,CA\n'
    expected = sliced(registry, "pawmart", "stores", unix, SLICE_BYTES)
    assert expected.__len__() == 1 and expected[0].height == 3
    mac = unix.replace(b"\n", b"\r")
    frames = sliced(registry, "pawmart", "stores", mac, slice_bytes)
    assert pl.concat(frames).drop("_ingested_at").equals(expected[0].drop("_ingested_at"))
    assert sliced(registry, "pawmart", "stores", b"store_id,state\r", slice_bytes)[0].height == 0
    record = b'{"orderNumber": "%s", "lineNumber": 1, "createdAt": "x", "sku": "S", "qty": 1, "unitPrice": "1",'
    record += b' "orderStatus": "c"}\r'
    lines = record % b"A" + record % b"B"
    orders = pl.concat(sliced(registry, "chewyish", "sales", lines, slice_bytes)).get_column("order_id")
    assert orders.to_list() == ["A", "B"]


def test_a_json_object_wrapping_the_array_is_missing_columns_not_an_all_null_row(registry: Registry) -> None:
    records = b'[{"order_ref": "A", "item_seq": 1}]'
    for data in (b'{"orders": ' + records + b"}", b' {"meta": 1, "orders": ' + records + b"}"):
        with pytest.raises(FileRejected) as caught:
            sliced(registry, "petdirect", "sales", data, 8)
        assert caught.value.code == "missing_columns"
        assert "an object holding the records in an array under 'orders'" in caught.value.detail
    with pytest.raises(FileRejected) as caught:
        sliced(registry, "petdirect", "sales", b'{"status": "ok"}', 8)
    assert caught.value.code == "missing_columns" and "the file has columns: 'status'" in caught.value.detail


def test_a_utf8_file_in_a_latin1_source_loads_as_declared_and_is_flagged(registry: Registry) -> None:
    header = "ItemSKU;UPC;Description;Brand;Dept;Animal;Size;UOM;Retail\n"
    text = header + "P1;1;Café Crunch;Acme;food;dog;1;lb;1.00\n"
    drifts: list[ColumnDrift] = []
    frame = pl.concat(sliced(registry, "petopia", "catalog", text.encode("utf-8"), 8, on_drift=drifts.append))
    assert frame.get_column("product_name").to_list() == ["CafÃ© Crunch"]  # as declared: Latin-1
    assert [d.encoding for d in drifts if d.encoding] == ["declared latin-1, but the bytes are UTF-8"]
    assert functools.reduce(operator.or_, drifts).as_dict()["encoding"] == "declared latin-1, but the bytes are UTF-8"
    drifts.clear()
    latin = pl.concat(sliced(registry, "petopia", "catalog", text.encode("latin-1"), 8, on_drift=drifts.append))
    assert latin.get_column("product_name").to_list() == ["Café Crunch"]
    assert not any(d.encoding for d in drifts)  # Latin-1 bytes, or pure ASCII, are no sign
    with pytest.raises(FileRejected, match="the bytes look like Latin-1 or Windows-1252"):
        sliced(registry, "pawmart", "stores", STORES_HEADER + "S1,Café\n".encode("latin-1"), 8)


def test_column_drift_reads_back_what_the_ledger_stores() -> None:
    drift = ColumnDrift(new=("Extra",), missing=("upc",), renamed=(("Qty", "Quantity"),), encoding="utf-8 in latin-1")
    stored = json.loads(json.dumps(drift.as_dict()))  # as jsonb gives it back: lists, not tuples
    assert ColumnDrift.from_dict(stored) == drift
    assert ColumnDrift.from_dict({"new": ["Extra"], "missing": [], "renamed": []}).describe() == "new 'Extra'"


# --- a local landing tree ------------------------------------------------------------------------

TREE_DAY = BUSINESS_DATE.isoformat()


def _unsourced(registry: Registry) -> tuple[str, str]:
    """A registered provider and a feed it is not registered for."""
    return next((p, f) for p in sorted(registry.providers) for f in FEEDS if registry.source(p, f) is None)


def _landing_tree(root: Path, registry: Registry) -> tuple[dict[str, bytes], dict[str, str]]:
    """A small landing tree holding one of each case the platform meets: the good files' bytes and
    the reason each other file is refused with."""
    sales = registry.source("pawmart", "sales")
    catalog = registry.source("pawmart", "catalog")
    assert sales is not None and catalog is not None
    partition = f"pawmart/sales/{TREE_DAY}"
    good = {
        f"{partition}/part-001.csv": write_landed(sales, [sale(), sale(line_no="2")]),
        f"{partition}/part-002.csv": write_landed(sales, [sale(order_id="O-2")]),
        f"pawmart/catalog/{TREE_DAY}/part-001.csv": write_landed(catalog, [product()]),
    }
    line = good[f"{partition}/part-001.csv"]
    provider, feed = _unsourced(registry)
    refused = {
        f"{partition}/part-003.csv": ("unparseable", b""),  # no header
        f"{partition}/part-004.csv": ("format_mismatch", gzip.compress(line, mtime=0)),  # binary under .csv
        f"{partition}/archive/part-001.csv": ("bad_key", line),
        f"{partition}/sales (1).csv": ("bad_file_name", line),
        "pawmart/sales/2026-13-45/part-001.csv": ("bad_date", line),
        f"ghostpets/sales/{TREE_DAY}/part-001.csv": ("unknown_provider", line),
        f"{provider}/{feed}/{TREE_DAY}/part-001.csv": ("unknown_source", line),
        "README.txt": ("bad_key", b"notes"),
    }
    for key, data in [*good.items(), *((k, d) for k, (_, d) in refused.items())]:
        path = root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / partition / "link.csv").symlink_to(root / partition / "part-001.csv")
    (root / "pawmart" / "customers").symlink_to(root / "pawmart" / "sales", target_is_directory=True)
    reasons = {key: code for key, (code, _) in refused.items()}
    reasons |= {f"{partition}/link.csv": "symlink", "pawmart/customers": "symlink"}
    return good, reasons


def test_a_landing_tree_is_read_file_by_file_in_key_order(tmp_path: Path, registry: Registry) -> None:
    good, reasons = _landing_tree(tmp_path, registry)
    found = list(read_landing_tree(tmp_path, registry, ingested_at=INGESTED_AT))
    # Segment by segment, as sorted paths: a partition folder's files together, by file name.
    assert [f.key for f in found] == sorted([*good, *reasons], key=lambda key: key.split("/"))
    assert {f.key: f.code for f in found if isinstance(f, RefusedFile)} == reasons
    read = [f for f in found if isinstance(f, BronzeFile)]
    assert [f.key for f in read] == sorted(good, key=lambda key: key.split("/"))
    for item in read:
        provider, feed, day, _ = item.key.split("/")
        assert (item.provider, item.feed, item.business_date.isoformat()) == (provider, feed, day)
        source = registry.source(provider, feed)
        assert source is not None
        want = read_landing_file(
            good[item.key], source=source, key=item.key, business_date=BUSINESS_DATE, ingested_at=INGESTED_AT
        )
        assert item.frame.equals(want) and item.frame.height > 0


def test_a_refused_file_names_the_partition_folder_it_lies_in(tmp_path: Path, registry: Registry) -> None:
    _, reasons = _landing_tree(tmp_path, registry)
    provider, feed = _unsourced(registry)
    found = read_landing_tree(tmp_path, registry, ingested_at=INGESTED_AT)
    partitions = {f.key: f.partition for f in found if isinstance(f, RefusedFile)}
    inside = {key for key, partition in partitions.items() if partition is not None}
    assert inside == {
        key for key in reasons if key.startswith((f"pawmart/sales/{TREE_DAY}/", f"{provider}/{feed}/{TREE_DAY}/"))
    }
    assert partitions[f"pawmart/sales/{TREE_DAY}/archive/part-001.csv"] == ("pawmart", "sales", BUSINESS_DATE)
    assert partitions[f"{provider}/{feed}/{TREE_DAY}/part-001.csv"] == (provider, feed, BUSINESS_DATE)


def test_a_landing_tree_refuses_what_the_pipelines_scan_refuses(tmp_path: Path, registry: Registry) -> None:
    """Keys refused by their name get the pipeline's reasons; the rest is what its scan plans to
    ingest, of which only the files whose bytes bronze refuses are refused here."""
    _landing_tree(tmp_path, registry)
    found = list(read_landing_tree(tmp_path, registry, ingested_at=INGESTED_AT))
    refused = {f.key: f.code for f in found if isinstance(f, RefusedFile)}
    scan = scan_landing(LocalStore(tmp_path), registry)
    by_name = {info.key: error.code for info, error in scan.rejected}
    assert by_name == {key: refused[key] for key in by_name}
    planned = {landed.key.key for landed in scan.files}
    assert planned == {f.key for f in found} - set(by_name)
    partition = f"pawmart/sales/{TREE_DAY}"
    assert {key: refused[key] for key in planned if key in refused} == {
        f"{partition}/part-003.csv": "unparseable",
        f"{partition}/part-004.csv": "format_mismatch",
    }


def test_a_landing_tree_read_for_some_feeds_holds_only_their_files(tmp_path: Path, registry: Registry) -> None:
    good, _ = _landing_tree(tmp_path, registry)
    found = list(read_landing_tree(tmp_path, registry, ingested_at=INGESTED_AT, feeds=["catalog"]))
    assert [f.key for f in found] == [key for key in good if key.split("/")[1] == "catalog"]
    assert all(isinstance(f, BronzeFile) for f in found)
