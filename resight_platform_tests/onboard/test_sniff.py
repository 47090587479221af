"""What a sample file is, from its bytes."""

from __future__ import annotations

import gzip
from datetime import date
from pathlib import Path

import pytest

from resight_platform.onboard.sniff import SPACE_ALIGNED, SampleError, business_date, guess_encoding, read_sample


def test_encodings_from_the_bytes() -> None:
    assert guess_encoding("Café".encode()).value == "utf-8"
    assert guess_encoding("Café".encode("latin-1")).value == "latin-1"
    assert guess_encoding("“quoted” Café".encode("cp1252")).value == "cp1252"
    ascii_only = guess_encoding(b"plain")
    assert ascii_only.value == "utf-8" and ascii_only.confidence < 1
    # A multi-byte character cut at the end of a sample is not held against UTF-8.
    assert guess_encoding("Crème".encode()[:3], complete=False).value == "utf-8"


def test_utf16_with_its_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("Name\tCity\nCafé Pets\tMünchen\n".encode("utf-16"))
    sample = read_sample(path)
    assert sample.encoding is not None and sample.encoding.value == "utf-16"
    assert sample.values == {"Name": ["Café Pets"], "City": ["München"]}


def test_dialect_of_a_pipe_file_with_classic_mac_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "stores.csv"
    path.write_bytes(b'id|name|state\r1|"Paws | Claws"|CA\r2|Fur Co|NY\r')
    sample = read_sample(path)
    assert sample.delimiter is not None and sample.delimiter.value == "|"
    assert sample.line_ends == "3 CR"
    assert sample.values["name"] == ["Paws | Claws", "Fur Co"]
    assert sample.quoting is not None and "double quotes" in sample.quoting


def test_headerless_csv_is_named_by_position(tmp_path: Path) -> None:
    path = tmp_path / "sales.csv"
    path.write_text("1001,1,2026-10-02 10:00,SKU-1,2,3.50\n1002,1,2026-10-02 11:00,SKU-2,1,4.50\n")
    sample = read_sample(path)
    assert sample.header is not None and sample.header.value == "false"
    assert sample.columns[:2] == ["column_1", "column_2"]


def test_a_sample_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text("a,b\n" + "".join(f"{i},x\n" for i in range(1000)))
    sample = read_sample(path, max_bytes=100, max_rows=5)
    assert sample.rows <= 5 and not sample.complete
    assert read_sample(path, max_rows=5).rows == 5


def test_json_array_cut_by_the_sample_keeps_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "orders.json"
    path.write_text("[" + ",".join(f'{{"id": {i}, "ok": true, "price": 1.5}}' for i in range(200)) + "]")
    sample = read_sample(path, max_bytes=500)
    assert sample.format == "json" and 0 < sample.rows < 200
    assert sample.values["ok"][0] == "true" and sample.values["price"][0] == "1.5"


def test_unreadable_files_name_the_file_and_reason(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("  \n")
    with pytest.raises(SampleError, match=r"empty\.csv: empty or white space only"):
        read_sample(empty)
    fake = tmp_path / "fake.csv.gz"
    fake.write_bytes(b"\x1f\x8bnot gzip at all")
    with pytest.raises(SampleError, match=r"fake\.csv\.gz: starts as gzip but does not decompress"):
        read_sample(fake)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"a,b\n1,2\n\x00\xff\xfe\x00PK\x03\x04" + bytes(range(256)) * 2)
    with pytest.raises(SampleError, match=r"garbage\.csv: \d+ control bytes in \d+ characters: binary data"):
        read_sample(garbage)
    one_nul = tmp_path / "one_nul.csv"  # a NUL in one value is that row's problem (silver quarantines it)
    one_nul.write_bytes(b"sku,name\n" + b"".join(b"A%d,Kibble\n" % i for i in range(100)) + b"B1,NUL\x00x\n")
    assert read_sample(one_nul).values["name"][-1] == "NUL\x00x"
    parquet = tmp_path / "cut.parquet"
    parquet.write_bytes(b"PAR1" + b"\0" * 20)
    with pytest.raises(SampleError, match=r"cut\.parquet: starts as Parquet but cannot be read"):
        read_sample(parquet)


def test_business_date_from_the_landing_key(tmp_path: Path) -> None:
    assert business_date(tmp_path / "p" / "sales" / "2026-10-02" / "x.csv") == date(2026, 10, 2)
    assert business_date(tmp_path / "sales_2026-10-03.csv") == date(2026, 10, 3)
    assert business_date(tmp_path / "sales.csv") is None


def test_a_name_that_contradicts_the_bytes_is_noted(tmp_path: Path) -> None:
    lines = tmp_path / "orders.jsonl.gz"
    lines.write_bytes(gzip.compress(b'{"a": 1}\n{"a": 2}\n'))
    sample = read_sample(lines)
    assert sample.format == "jsonl" and sample.rows == 2
    assert sample.notes == ["gzip-compressed jsonl: the registry's format is jsonl; land it as .jsonl.gz"]
    plain = tmp_path / "orders.csv.gz"
    plain.write_text("a,b\n1,2\n")
    sample = read_sample(plain)
    assert sample.format == "csv"
    assert sample.notes == [
        "the name says csv.gz but the bytes are csv: bronze dead-letters such a file (format_mismatch); land it as .csv"
    ]


def test_a_space_aligned_export_is_split_and_blocked(tmp_path: Path) -> None:
    # A fixed-width report: leading spaces, runs of spaces between fields, CRLF line ends.
    path = tmp_path / "report.txt"
    path.write_bytes(b" cust  day  n   amount\r\n 0001 20260101  1   11.77\r\n 0002 20260102  5   77.00\r\n")
    sample = read_sample(path)
    assert sample.delimiter is not None and sample.delimiter.blocker == SPACE_ALIGNED
    assert sample.delimiter.value == ","  # the safest spelling: bronze then finds no columns, loads nothing wrong
    assert sample.columns == ["cust", "day", "n", "amount"]
    assert sample.values["amount"] == ["11.77", "77.00"]
    # One column of text with a varying number of words is not space-aligned.
    path.write_text("name\nChew Toy\nFish Flakes Large\nBall\n", encoding="utf-8")
    sample = read_sample(path)
    assert sample.delimiter is not None and sample.delimiter.blocker is None
    assert sample.columns == ["name"]


def test_lines_before_the_header_are_skipped_and_blocked(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_text("# exported by a tool\nDate,Open,Close\n2026-01-02,1.5,1.75\n2026-01-03,1.75,2.0\n")
    sample = read_sample(path)
    assert sample.columns == ["Date", "Open", "Close"]
    assert sample.values["Close"] == ["1.75", "2.0"]
    assert sample.header is not None and sample.header.value == "true"
    assert sample.header.blocker is not None and "1 line(s) before the header" in sample.header.blocker
    # A first line narrower than the data but followed by data (not names) is no preamble.
    path.write_text("3,2\n1.5,2.5,x\n2.5,3.5,y\n4.5,5.5,z\n")
    sample = read_sample(path)
    assert sample.header is not None and sample.header.value == "false" and sample.header.blocker is None
    assert sample.columns == ["column_1", "column_2"]
