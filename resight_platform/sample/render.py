"""Turn canonical sample rows into a partner's file: spellings, formats, columns, and streaming sinks.

Frames are built with canonical column names. For CSV every cell is text; for JSON every cell is a
ready JSON fragment (``"abc"``, ``12``, ``null``); for Parquet columns are typed. Deliberately bad
values are applied as per-cell overrides after formatting, then columns are renamed to the
source's names and the frame is streamed to a sink.
"""

from __future__ import annotations

import gzip
import io
import json
import re
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from resight_platform.sources.registry import Profile, Source

from .world import SalesBlock, World

__all__ = [
    "FormatClass",
    "Sink",
    "apply_overrides",
    "catalog_frame",
    "customers_frame",
    "format_class",
    "id_parts",
    "json_numeric",
    "open_sink",
    "sales_frame",
    "stores_frame",
    "to_source",
]

FormatClass = Literal["csv", "json", "parquet"]
Override = tuple[int, str, object]  # (row, canonical column, value)

_ID = re.compile(r"^(.*)\{n:0(\d+)d\}$")


def format_class(fmt: str) -> FormatClass:
    if fmt in ("csv", "csv.gz"):
        return "csv"
    if fmt in ("json", "jsonl"):
        return "json"
    return "parquet"


def id_parts(fmt: str, code: str) -> tuple[str, int]:
    """``"C{n:08d}"`` -> ``("C", 8)``: the prefix and zero-padded width of an id format."""
    match = _ID.match(fmt)
    if match is None:
        raise ValueError(f"id format {fmt!r} must end with {{n:0Wd}}")
    return match.group(1).format(code=code), int(match.group(2))


def json_numeric(profile: Profile) -> set[str]:
    """Canonical columns a JSON export of ``profile`` writes as numbers."""
    numeric = {"line_no", "quantity", "pack_size"}
    if profile.money_format == "cents":
        numeric |= {"unit_price", "discount", "list_price"}
    if profile.datetime_format == "epoch_ms":
        numeric.add("ordered_at")
    return numeric


# ------------------------------------------------------------------------------------ formatting
def _zfill(expr: pl.Expr, width: int) -> pl.Expr:
    return expr.cast(pl.String).str.zfill(width)


def _thousands(units: pl.Expr) -> pl.Expr:
    return (
        pl.when(units >= 1_000_000)
        .then(pl.format("{},{},{}", units // 1_000_000, _zfill((units // 1000) % 1000, 3), _zfill(units % 1000, 3)))
        .when(units >= 1000)
        .then(pl.format("{},{}", units // 1000, _zfill(units % 1000, 3)))
        .otherwise(units.cast(pl.String))
    )


def money_expr(cents: pl.Expr, money_format: str) -> pl.Expr:
    """Text of non-negative integer cents in a profile's money format."""
    if money_format == "cents":
        return cents.cast(pl.String)
    decimals = pl.format("{}.{}", cents // 100, _zfill(cents % 100, 2))
    if money_format == "currency":
        return pl.format("${}.{}", _thousands(cents // 100), _zfill(cents % 100, 2))
    return decimals


def _money(cents: np.ndarray, money_format: str, cls: FormatClass, blank_zero: bool = False) -> pl.Series:
    if cls == "parquet":
        values = pl.Series(cents / 100.0, dtype=pl.Float64)
        return values
    frame = pl.DataFrame({"c": cents})
    expr = money_expr(pl.col("c"), money_format)
    if blank_zero:
        expr = pl.when(pl.col("c") == 0).then(None).otherwise(expr)
    return frame.select(expr.alias("m")).to_series()


def _datetime(block: SalesBlock, world: World, cls: FormatClass) -> pl.Series:
    fmt = world.profile.datetime_format
    if cls == "parquet":
        return pl.Series(block.utc_us, dtype=pl.Int64).cast(pl.Datetime("us", "UTC"))
    if fmt == "epoch_ms":
        return pl.Series(block.utc_us // 1000).cast(pl.String)
    if fmt == "iso":
        if world.iso_variant == "utc":
            return pl.from_epoch(pl.Series(block.utc_us), time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        local = pl.from_epoch(pl.Series(block.local_us), time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%S")
        if world.iso_variant == "naive":
            return local
        frame = pl.DataFrame({"t": local, "o": block.offset_s})
        a = pl.col("o").abs()
        sign = pl.when(pl.col("o") < 0).then(pl.lit("-")).otherwise(pl.lit("+"))
        offset = pl.format("{}{}:{}", sign, _zfill(a // 3600, 2), _zfill(a % 3600 // 60, 2))
        return frame.select(pl.format("{}{}", "t", offset)).to_series()
    return pl.from_epoch(pl.Series(block.local_us), time_unit="us").dt.strftime(fmt)


def _gather(values: Sequence[str], idx: np.ndarray) -> pl.Series:
    """``values[idx]`` as text, null where ``idx`` is negative."""
    index = pl.Series(idx, dtype=pl.Int64)
    index = pl.select(pl.when(index >= 0).then(index)).to_series()
    return pl.Series(list(values), dtype=pl.String).gather(index)


def sales_frame(world: World, block: SalesBlock, cls: FormatClass, business_day: int) -> pl.DataFrame:
    """Canonical sales columns of ``block`` as the provider writes them (before renaming)."""
    style = world.style
    d = world.dates[business_day]
    prefix = style.order_prefix.format(code=world.code) + d.strftime("%y%m%d")
    base = pl.DataFrame(
        {"ns": block.order_ns, "seq": block.order_seq, "line": block.line_no, "qty": block.qty, "cust": block.cust_idx}
    )
    cust_prefix, cust_width = id_parts(style.customer_format, world.code)
    text = base.select(
        pl.format("{}{}{}", pl.lit(prefix), "ns", _zfill(pl.col("seq"), 8)).alias("order_id"),
        pl.when(pl.col("cust") >= 0)
        .then(pl.format("{}{}", pl.lit(cust_prefix), _zfill(pl.col("cust") + 1, cust_width)))
        .alias("customer_id"),
    )
    wanted = set(world.sources["sales"].layout.columns.values())
    columns: dict[str, pl.Series] = {"order_id": text["order_id"], "customer_id": text["customer_id"]}
    if cls == "parquet":
        columns["line_no"] = pl.Series(block.line_no, dtype=pl.Int32)
        columns["quantity"] = pl.Series(block.qty, dtype=pl.Int32)
    else:
        columns["line_no"] = pl.Series(block.line_no).cast(pl.String)
        columns["quantity"] = pl.Series(block.qty).cast(pl.String)
    columns["ordered_at"] = _datetime(block, world, cls)
    columns["sku"] = _gather(world.skus, block.sku_idx)
    money = world.profile.money_format
    columns["unit_price"] = _money(block.unit_cents, money, cls)
    columns["status"] = _gather(world.status_alias, block.status)
    if "store_id" in wanted:
        columns["store_id"] = _gather(world.store_ids, block.store_idx)
    if "channel" in wanted:
        columns["channel"] = _gather(world.channel_alias, block.online.astype(np.int64))
    if "discount" in wanted:
        columns["discount"] = _money(block.disc_cents, money, cls, blank_zero=world.blank_zero_discount)
    if "ship_state" in wanted:
        columns["ship_state"] = _gather(world.states, block.ship_state)
    return _finish(columns, world.sources["sales"], cls)


def _finish(columns: dict[str, pl.Series], source: Source, cls: FormatClass) -> pl.DataFrame:
    wanted = [c for c in source.layout.columns.values()]
    frame = pl.DataFrame([columns[c].alias(c) for c in wanted])
    if cls == "json":
        frame = json_fragments(frame, json_numeric(source.profile))
    return frame


def json_fragments(frame: pl.DataFrame, numeric: set[str]) -> pl.DataFrame:
    """Each cell as a JSON fragment: numbers bare, strings quoted and escaped, nulls ``null``."""
    exprs = []
    for name in frame.columns:
        col = pl.col(name)
        if name in numeric:
            fragment = col
        else:
            escaped = col.str.replace_all("\\", "\\\\", literal=True).str.replace_all('"', '\\"', literal=True)
            fragment = pl.format('"{}"', escaped)
        exprs.append(fragment.fill_null(pl.lit("null")).alias(name))
    return frame.select(exprs)


def apply_overrides(frame: pl.DataFrame, overrides: list[Override], cls: FormatClass) -> pl.DataFrame:
    """Set single cells to deliberately bad values (encoded for the file's format class)."""
    if not overrides:
        return frame
    by_column: dict[str, tuple[list[int], list[object]]] = {}
    for row, column, value in overrides:
        if column not in frame.columns:
            raise ValueError(f"override of {column!r}, which this layout does not write")
        rows, values = by_column.setdefault(column, ([], []))
        rows.append(row)
        if cls == "json":
            values.append(json.dumps(value, ensure_ascii=False))
        elif cls == "csv":
            values.append(None if value is None else str(value))
        else:
            values.append(value)
    series = []
    for name in frame.columns:
        s = frame[name]
        if name in by_column:
            rows, values = by_column[name]
            s = s.clone()
            s.scatter(rows, pl.Series(values, dtype=s.dtype, strict=False) if cls == "parquet" else values)
        series.append(s)
    return pl.DataFrame(series)


def to_source(frame: pl.DataFrame, source: Source, drop: str | None = None) -> pl.DataFrame:
    """Rename canonical columns to the source's column names, in the layout's order."""
    return frame.select(
        [pl.col(canonical).alias(name) for name, canonical in source.layout.columns.items() if canonical != drop]
    )


# ------------------------------------------------------------------------------------ dimensions
def _text(values: Sequence[object]) -> pl.Series:
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
        elif isinstance(v, float):
            out.append(f"{v:g}")
        else:
            out.append(str(v))
    return pl.Series(out, dtype=pl.String)


def catalog_frame(world: World, rows: np.ndarray, skus: list[str | None], cls: FormatClass) -> pl.DataFrame:
    """Catalog rows for product indices ``rows`` (with the given skus, which may be fresh ids)."""
    source = world.sources["catalog"]
    cents = world.list_cents[rows]
    columns: dict[str, pl.Series] = {
        "sku": pl.Series(skus, dtype=pl.String),
        "upc": pl.Series([world.upcs[i] for i in rows], dtype=pl.String),
        "product_name": pl.Series([world.name_text[i] for i in rows], dtype=pl.String),
        "brand": pl.Series([world.brand_text[i] for i in rows], dtype=pl.String),
        "category": pl.Series([world.category_text[i] for i in rows], dtype=pl.String),
        "species": pl.Series([world.species_text[i] for i in rows], dtype=pl.String),
        "pack_unit": pl.Series([world.unit_text[i] for i in rows], dtype=pl.String),
        "list_price": _money(cents, world.profile.money_format, cls),
    }
    sizes = [world.pack_size[i] for i in rows]
    columns["pack_size"] = pl.Series(sizes, dtype=pl.Float64) if cls == "parquet" else _text(sizes)
    return _finish(columns, source, cls)


def stores_frame(
    world: World, rows: np.ndarray, ids: list[str | None], cls: FormatClass, source: Source | None = None
) -> pl.DataFrame:
    source = source or world.sources["stores"]
    zips = [world.store_zip[i] for i in rows]
    if cls == "parquet":
        zip_col = pl.Series(zips, dtype=pl.Int32)
    elif world.profile.name == "legacy_pos":
        zip_col = _text(zips)  # legacy exports drop leading zeros
    else:
        zip_col = pl.Series([f"{z:05d}" for z in zips], dtype=pl.String)
    columns = {
        "store_id": pl.Series(ids, dtype=pl.String),
        "store_name": pl.Series([world.store_name[i] for i in rows], dtype=pl.String),
        "city": pl.Series([world.store_city[i] for i in rows], dtype=pl.String),
        "state": pl.Series([world.store_state[i] for i in rows], dtype=pl.String),
        "zip": zip_col,
    }
    return _finish(columns, source, cls)


def customers_frame(
    world: World,
    ids: list[str | None],
    signup_days: np.ndarray,
    states: list[str | None],
    species: list[str | None],
    cls: FormatClass,
) -> pl.DataFrame:
    source = world.sources["customers"]
    days = pl.Series(signup_days, dtype=pl.Int32).cast(pl.Date)
    columns = {
        "customer_id": pl.Series(ids, dtype=pl.String),
        "signup_date": days.dt.strftime(world.profile.date_format),
        "state": pl.Series(states, dtype=pl.String),
        "pet_species": pl.Series(species, dtype=pl.String),
    }
    return _finish(columns, source, cls)


# ----------------------------------------------------------------------------------------- sinks
class Sink:
    """Streams frames (already in the source's column names) to one local file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0

    def write(self, frame: pl.DataFrame) -> None:
        self.rows += frame.height
        self._write(frame)

    def _write(self, frame: pl.DataFrame) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _Writable(Protocol):
    def write(self, data: bytes, /) -> int: ...


class CsvSink(Sink):
    def __init__(self, path: Path, profile: Profile, compress: bool) -> None:
        super().__init__(path)
        self.delimiter = profile.delimiter
        self.encoding = profile.encoding
        self.terminator = "\r\n" if profile.name == "legacy_pos" else "\n"
        self._files = ExitStack()
        raw = self._files.enter_context(open(path, "wb"))  # noqa: SIM115 - held open until close()
        self._out: _Writable = raw
        if compress:  # mtime=0 and no file name in the header: the same bytes on every run
            self._out = self._files.enter_context(
                gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6)
            )
        self._header = True

    def _write(self, frame: pl.DataFrame) -> None:
        buffer = io.BytesIO()
        frame.write_csv(
            buffer,
            separator=self.delimiter,
            include_header=self._header,
            line_terminator=self.terminator,
            quote_style="necessary",
            null_value="",
        )
        self._header = False
        data = buffer.getvalue()
        if self.encoding.replace("_", "-").lower() not in ("utf-8", "utf8"):
            data = data.decode("utf-8").encode(self.encoding)
        self._out.write(data)

    def close(self) -> None:
        self._files.close()


class JsonSink(Sink):
    def __init__(self, path: Path, array: bool) -> None:
        super().__init__(path)
        self.array = array
        self._files = ExitStack()
        self._out = self._files.enter_context(open(path, "wb"))  # noqa: SIM115 - held open until close()

    def _write(self, frame: pl.DataFrame) -> None:
        if frame.height == 0:
            return
        parts: list[pl.Expr | str] = []
        for i, name in enumerate(frame.columns):
            parts.append(pl.lit(("{" if i == 0 else ",") + json.dumps(name) + ":"))
            parts.append(pl.col(name))
        parts.append(pl.lit("}"))
        lines = frame.select(pl.concat_str(parts).alias("line")).to_series()
        separator = ",\n" if self.array else "\n"
        text = lines.str.join(separator).item()
        if self.array:
            text = ("[\n" if self.rows == frame.height else ",\n") + text
        else:
            text += "\n"
        self._out.write(text.encode("utf-8"))

    def close(self) -> None:
        if self.array:
            self._out.write(b"\n]\n" if self.rows else b"[]\n")
        self._files.close()


class ParquetSink(Sink):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._writer: pq.ParquetWriter | None = None
        self._schema: pa.Schema | None = None

    def _write(self, frame: pl.DataFrame) -> None:
        table = frame.to_arrow()
        if self._schema is None:
            fields = [
                pa.field(
                    f.name,
                    pa.string() if pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type) else f.type,
                )
                for f in table.schema
            ]
            self._schema = pa.schema(fields)
            self._writer = pq.ParquetWriter(self.path, self._schema, compression="snappy")
        assert self._writer is not None
        self._writer.write_table(table.cast(self._schema), row_group_size=max(table.num_rows, 1))

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def open_sink(path: Path, source: Source) -> Sink:
    """The streaming writer for ``source``'s format."""
    fmt = source.format
    if fmt in ("csv", "csv.gz"):
        return CsvSink(path, source.profile, compress=fmt == "csv.gz")
    if fmt in ("json", "jsonl"):
        return JsonSink(path, array=fmt == "json")
    return ParquetSink(path)
