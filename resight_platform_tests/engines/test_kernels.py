"""Each kernel gives the same values on Polars and on Spark."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import narwhals as nw
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from resight_platform.engines import from_polars, to_polars
from resight_platform.engines.kernels import (
    WHITESPACE,
    WHITESPACE_CLASS,
    first_by_key,
    in_record_order,
    materialised,
    per_group,
    spark_pattern,
    with_dates,
    with_dollars,
    with_mapped,
    with_net_cents,
    with_raw_json,
    with_timestamps,
)


def _cents() -> pl.DataFrame:
    rng = random.Random(18)
    values = [*range(0, 20_000), *(rng.randrange(10**12) for _ in range(20_000)), None]
    return pl.DataFrame({"cents": values}, schema={"cents": pl.Int64})


def test_dollars_are_the_double_nearest_to_cents_over_100_on_polars() -> None:
    frame = _cents()
    got = to_polars(with_dollars(nw.from_native(frame.lazy()), {"dollars": "cents"}))
    exact = [None if c is None else float(Decimal(c) / 100) for c in frame.get_column("cents").to_list()]
    assert got.get_column("dollars").to_list() == exact


@pytest.mark.xdist_group("spark")
def test_dollars_on_spark_equal_polars(spark: Any) -> None:
    frame = _cents()
    polars = to_polars(with_dollars(nw.from_native(frame.lazy()), {"dollars": "cents"}))
    on_spark = with_dollars(nw.from_native(from_polars(spark.range(1), frame)).lazy(), {"dollars": "cents"})
    got = to_polars(on_spark).sort("cents", nulls_last=True)
    assert got.equals(polars.sort("cents", nulls_last=True))


# --- timestamps, dates ---------------------------------------------------------------------------

#: (format, zone, texts): every kind of datetime format, DST's ambiguous and skipped local times,
#: padding strptime accepts, invalid days and months, blanks.
TIMESTAMPS: list[tuple[str, str, list[str | None]]] = [
    (
        "iso",
        "America/New_York",
        [
            "2026-10-01T10:00:00",
            "2026-10-01 10:00:00",
            "2026-10-01T10:00",
            "2026-10-01T10:00:00.123456789",
            "2026-10-01T10:00:00.5Z",
            "2026-10-01T10:00:00+02:00",
            "2026-10-01T10:00:00-0530",
            "2026-10-01T10:00+01",
            "2026-10-01T10:00Z",
            "  2026-10-01T10:00:00  ",
            "2026-11-01T01:30:00",
            "2026-03-08T02:30:00",
            "2026-02-30T10:00:00",
            "2026-10-01",
            "2026-13-01T10:00:00",
            "10/01/2026 10:00",
            "",
            None,
        ],
    ),
    ("epoch_ms", "UTC", ["1790863200000", "1790863200000.0", "-1000", " 17", "abc", "1.5", "", None]),
    (
        "%m/%d/%Y %H:%M",
        "America/New_York",
        [
            "11/01/2026 01:30",
            "03/08/2026 02:30",
            "12/31/2026 23:59",
            "1/2/2026 3:04",
            "13/01/2026 10:00",
            "02/30/2026 10:00",
            "not a date",
            "",
            None,
        ],
    ),
    (
        "%d/%m/%Y %H:%M",
        "Europe/London",
        ["01/10/2026 10:00", "25/10/2026 01:30", "29/03/2026 01:30", "31/02/2026 1:00"],
    ),
    ("%Y%m%d %H%M%S", "Asia/Tokyo", ["20261001 101500", "20261301 101500", "20261001 1015"]),
    ("%Y-%m-%dT%H:%M:%S%z", "UTC", ["2026-10-01T10:00:00+0200", "2026-10-01T10:00:00-0000", "2026-10-01T10:00:00"]),
]


def _timestamps_frame(texts: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"v": texts}, schema={"v": pl.String})


@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize(("fmt", "zone", "texts"), TIMESTAMPS, ids=[t[0] for t in TIMESTAMPS])
def test_timestamps_on_spark_equal_polars(spark: Any, fmt: str, zone: str, texts: list[str | None]) -> None:
    frame = _timestamps_frame(texts)
    polars = to_polars(with_timestamps(nw.from_native(frame.lazy()), {"at": "v"}, fmt, zone))
    assert polars.get_column("at").null_count() < frame.height  # something reads
    on_spark = with_timestamps(nw.from_native(from_polars(spark.range(1), frame)), {"at": "v"}, fmt, zone)
    got = to_polars(on_spark)
    assert got.schema == polars.schema
    assert dict(zip(texts, got.get_column("at").to_list(), strict=True)) == dict(
        zip(texts, polars.get_column("at").to_list(), strict=True)
    )


def test_ambiguous_local_time_is_the_earlier_instant_and_skipped_is_null() -> None:
    frame = _timestamps_frame(["11/01/2026 01:30", "03/08/2026 02:30"])
    got = to_polars(with_timestamps(nw.from_native(frame.lazy()), {"at": "v"}, "%m/%d/%Y %H:%M", "America/New_York"))
    assert got.get_column("at").to_list() == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC), None]


@pytest.mark.parametrize(
    ("fmt", "spark"),
    [
        ("%m/%d/%Y %H:%M", "M'/'d'/'yyyy' 'H':'m"),
        ("%Y%m%d", "yyyyMMdd"),
        ("%d.%m.%y at %I:%M %p", "d'.'M'.'yy' at 'h':'m' 'a"),
        ("%Y-%m-%dT%H:%M:%S%z", "yyyy'-'M'-'d'T'H':'m':'sxx"),
        ("%Y%m%d %H%M", "yyyyMMdd' 'HHmm"),
        ("%d %b %Y 100%%", "d' 'MMM' 'yyyy' 100''%'"),
    ],
)
def test_strptime_patterns_translate_to_lenient_spark_patterns(fmt: str, spark: str) -> None:
    assert spark_pattern(fmt) == spark


def test_a_directive_spark_cannot_read_is_an_error() -> None:
    with pytest.raises(ValueError, match="%U"):
        spark_pattern("%Y %U")


@pytest.mark.xdist_group("spark")
@pytest.mark.parametrize("fmt", ["%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d"])
def test_dates_on_spark_equal_polars(spark: Any, fmt: str) -> None:
    texts = ["2026-10-01", "10/01/2026", "1/2/2026", "01.10.2026", "20261001", " 2026-10-01 ", "2026-02-30", "", None]
    texts += ["2026-1-2", "1.2.2026"]
    frame = _timestamps_frame(texts)
    polars = to_polars(with_dates(nw.from_native(frame.lazy()), {"day": "v"}, fmt))
    got = to_polars(with_dates(nw.from_native(from_polars(spark.range(1), frame)), {"day": "v"}, fmt))
    assert got.equals(polars)


# --- value maps, dedup, raw JSON, net cents, per group ------------------------------------------


def _lookup_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "_provider": ["a", "a", "b", "b", None, "a"],
            "alias": ["x", "y", "x", None, "x", "z"],
            "_source_file": ["f1"] * 6,
            "_row_number": list(range(6)),
        }
    )


@pytest.mark.xdist_group("spark")
def test_value_maps_on_spark_equal_polars(spark: Any) -> None:
    frame = _lookup_frame()
    one = pl.DataFrame({"alias": ["x", "y"], "out": ["X", None]})
    two = pl.DataFrame({"_provider": ["a", "b"], "alias": ["x", "x"], "out": ["AX", "BX"]})
    for keys, table in ((["alias"], one), (["_provider", "alias"], two)):
        polars = to_polars(with_mapped(nw.from_native(frame.lazy()), "out", keys, table))
        got = to_polars(with_mapped(nw.from_native(from_polars(spark.range(1), frame)), "out", keys, table))
        assert_frame_equal(got.sort("_row_number"), polars)
    assert polars.get_column("out").to_list() == ["AX", None, "BX", None, None, None]


@pytest.mark.xdist_group("spark")
def test_first_by_key_in_record_order_on_spark_equals_polars(spark: Any) -> None:
    frame = pl.DataFrame(
        {
            "_source_file": ["b.csv", "a.csv", "a.csv", "b.csv", "a.csv", "c.csv", "c.csv"],
            "_row_number": [1, 2, 1, 2, 3, 1, 2],
            "k": ["o1", "o1", "o2", "o2", "o1", None, None],
        }
    )
    ordered = frame.sort("_source_file", "_row_number")
    polars = to_polars(first_by_key(nw.from_native(ordered.lazy()), ["k"], "first"))
    assert polars.filter("first").select("_source_file", "_row_number").rows() == [
        ("a.csv", 1),
        ("a.csv", 2),
        ("c.csv", 1),
    ]
    got = to_polars(first_by_key(nw.from_native(from_polars(spark.range(1), frame)), ["k"], "first"))
    assert_frame_equal(got.sort("_source_file", "_row_number"), polars)


def _hostile_texts() -> list[str | None]:
    controls = "".join(chr(c) for c in range(0x00, 0x20))
    return [
        controls,
        '"quoted" \\back\\slash /slash',
        "ünïcødé € 😀 \u2028\u2029 \x7f \x85 \ufeff",
        "a literal \\u0000 and a NUL \x00",
        "",
        None,
    ]


@pytest.mark.xdist_group("spark")
def test_raw_json_on_spark_is_byte_identical_to_polars(spark: Any) -> None:
    texts = _hostile_texts()
    frame = pl.DataFrame({"a": texts, "b": list(reversed(texts))}, schema={"a": pl.String, "b": pl.String})
    polars = to_polars(with_raw_json(nw.from_native(frame.lazy()), "raw", ["a", "b"]))
    decoded = [json.loads(r) for r in polars.get_column("raw").to_list()]
    assert decoded[3]["a"] == "a literal \\u0000 and a NUL \\u0000" and decoded[5] == {
        "a": None,
        "b": controls_of(texts),
    }
    got = to_polars(with_raw_json(nw.from_native(from_polars(spark.range(1), frame)), "raw", ["a", "b"]))
    assert got.get_column("raw").to_list() == polars.get_column("raw").to_list()


def controls_of(texts: list[str | None]) -> str | None:
    return None if texts[0] is None else texts[0].replace("\x00", "\\u0000")


@pytest.mark.xdist_group("spark")
def test_net_cents_beyond_int64_are_exact_on_both(spark: Any) -> None:
    frame = pl.DataFrame(
        {"q": [2**31 - 1, 3, None, 5], "u": [9_999_999_999, 50, 100, None], "d": [1, None, 0, 0]},
        schema={"q": pl.Int64, "u": pl.Int64, "d": pl.Int64},
    )
    polars = to_polars(with_net_cents(nw.from_native(frame.lazy()), "net", "q", "u", "d"))
    assert polars.get_column("net").to_list() == [(2**31 - 1) * 9_999_999_999 - 1, 150, None, None]
    got = to_polars(with_net_cents(nw.from_native(from_polars(spark.range(1), frame)), "net", "q", "u", "d"))
    assert [None if v is None else int(v) for v in got.get_column("net").to_list()] == polars.get_column(
        "net"
    ).to_list()
    # as dollars: the nearest double on both below 2^53 cents (beyond, 90 trillion dollars, each
    # engine's decimal-to-double conversion rounds its own way)
    exact = pl.DataFrame({"net": [0, 1, 1699, -1699, 2**53 - 1, 10**12 + 1699]}, schema={"net": pl.Int64})
    polars_dollars = to_polars(with_dollars(nw.from_native(exact.lazy()), {"usd": "net"}))
    decimal = from_polars(spark.range(1), exact).selectExpr("cast(net as decimal(38,0)) as net")
    assert to_polars(with_dollars(nw.from_native(decimal), {"usd": "net"})).equals(polars_dollars)


@pytest.mark.xdist_group("spark")
def test_per_group_and_materialised_on_spark_equal_polars(spark: Any) -> None:
    frame = pl.DataFrame(
        {"_source_file": ["f"] * 6, "_row_number": [5, 4, 3, 2, 1, 0], "g": list("abcabc"), "x": list(range(6))}
    )
    params = pl.DataFrame({"g": ["a", "b", "c"], "scale": [1, 10, 10], "shift": [0, 0, 5]})
    builds = [
        (["scale"], lambda rows, scale: rows.with_columns(y=nw.col("x") * scale)),
        (["shift"], lambda rows, shift: rows.with_columns(z=nw.col("x") + shift)),
    ]
    polars = to_polars(
        materialised(per_group(in_record_order(nw.from_native(frame.lazy()), params, "g"), params, builds))
    )
    assert polars.get_column("_row_number").to_list() == list(range(6))  # record order kept
    assert polars.select("g", "y", "z").rows() == [
        ("c", 50, 10),
        ("b", 40, 4),
        ("a", 3, 3),
        ("c", 20, 7),
        ("b", 10, 1),
        ("a", 0, 0),
    ]
    on_spark = in_record_order(nw.from_native(from_polars(spark.range(1), frame)), params, "g")
    got = to_polars(materialised(per_group(on_spark, params, builds)))
    assert_frame_equal(got.sort("_row_number"), polars.drop("__row"), check_column_order=False)


def test_the_white_space_class_is_the_white_space_set() -> None:
    import re

    every = "".join(chr(c) for c in range(0x3100))
    assert set(re.findall(f"[{WHITESPACE_CLASS}]", every)) == set(WHITESPACE)
    # and Polars' regex (Rust's) reads the class the same
    found = pl.Series([every]).str.extract_all(f"[{WHITESPACE_CLASS}]").explode().to_list()
    assert set(found) == set(WHITESPACE)
