"""An independent, row-by-row reading of a generated landing zone against the data contract.

Slow and simple on purpose: it reads every file back with the standard library and pyarrow,
classifies every row with every rule (not only the first), and recomputes what the manifest claims.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq

from resight_platform.sources.landing import LandingKeyError, parse_landing_key
from resight_platform.sources.mappings import Mappings, normalise_alias
from resight_platform.sources.registry import Registry, Source

# Written out on purpose rather than imported: this is docs/data-contract.md's order, an
# independent reference that fails if the package's rule order drifts from the contract.
RULE_ORDER = {
    "sales": (
        "unstorable_value",
        "missing_order_id",
        "missing_sku",
        "bad_line_no",
        "unparseable_date",
        "future_date",
        "bad_quantity",
        "unparseable_price",
        "unknown_status",
        "unknown_channel",
        "before_history_start",
        "quantity_over_ceiling",
        "price_over_ceiling",
        "duplicate",
    ),
    "catalog": (
        "unstorable_value",
        "missing_sku",
        "missing_product_name",
        "unparseable_price",
        "unknown_species",
        "bad_pack_size",
        "unknown_unit",
        "price_over_ceiling",
        "duplicate",
    ),
    "stores": ("unstorable_value", "missing_store_id", "invalid_state", "duplicate"),
    "customers": (
        "unstorable_value",
        "missing_customer_id",
        "unparseable_date",
        "invalid_state",
        "unknown_species",
        "duplicate",
    ),
}
CENT = Decimal("0.01")


@dataclass
class File:
    key: str
    source: Source
    columns: list[str]  # as in the file (source names)
    rows: list[dict[str, Any]]  # canonical name -> raw value


@dataclass
class Recount:
    written: int = 0
    dead_letter: list[dict[str, str]] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    rows_in: Counter[str] = field(default_factory=Counter)
    quarantine: dict[str, Counter[str]] = field(default_factory=lambda: {f: Counter() for f in RULE_ORDER})
    sales_by: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    by_status: dict[str, list[Any]] = field(default_factory=dict)
    dim_rows: Counter[str] = field(default_factory=Counter)
    dim_ids: dict[str, set[tuple[str, str]]] = field(default_factory=lambda: {f: set() for f in RULE_ORDER})
    problems: list[str] = field(default_factory=list)
    #: The largest quantity and USD unit price of a valid sales line.
    max_quantity: int = 0
    max_unit_usd: Decimal = Decimal(0)


# ---------------------------------------------------------------------------------------- reading
def bytes_unlike(fmt: str, data: bytes) -> bool:
    """Whether a file's bytes are plainly not what its extension ``fmt`` says (gzip, Parquet and zip
    by their magic numbers, JSON by its first character)."""
    if fmt.endswith(".gz"):
        return not data.startswith(b"\x1f\x8b") or bytes_unlike(fmt[:-3], gzip.decompress(data)[:4096])
    if fmt == "parquet":
        return not data.startswith(b"PAR1")
    if fmt in ("json", "jsonl"):
        text = data.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
        return bool(text) and text[:1] not in (b"[", b"{")
    return data.startswith((b"\x1f\x8b", b"PAR1", b"PK\x03\x04"))


def read_file(path: Path, source: Source, fmt: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns in the file, records by source column name) of a ``fmt`` file (default: the
    source's registered format); raises on unreadable content."""
    fmt = fmt or source.format
    if fmt in ("csv", "csv.gz"):
        data = path.read_bytes()
        if fmt == "csv.gz":
            data = gzip.decompress(data)
        text = data.decode(source.profile.encoding)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=source.profile.delimiter)
        header = next(reader)
        records = []
        for line in reader:
            if len(line) != len(header):
                raise ValueError(f"row with {len(line)} fields, header has {len(header)}")
            records.append({k: (v if v != "" else None) for k, v in zip(header, line, strict=True)})
        return header, records
    if fmt == "jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    elif fmt == "json":
        records = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(records, list):
            raise ValueError("not a JSON array")
    else:
        table = pq.read_table(path)
        return list(table.column_names), table.to_pylist()
    columns: list[str] = []
    for record in records:
        if not isinstance(record, dict):
            raise ValueError("not a JSON object")
        columns += [k for k in record if k not in columns]
    return columns, records


def canonical(records: list[dict[str, Any]], source: Source) -> list[dict[str, Any]]:
    mapping = source.layout.columns
    return [{mapping[k]: v for k, v in r.items() if k in mapping} for r in records]


# ---------------------------------------------------------------------------------------- parsing
def blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and v.strip() == "")


def positive_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v if v > 0 else None
    if isinstance(v, str) and re.fullmatch(r"\s*\d+\s*", v):
        return int(v) if int(v) > 0 else None
    return None


def parse_money(v: Any, money_format: str) -> Decimal | None:
    """The amount in the file's currency, or None if it does not parse."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, int):
        return Decimal(v) / 100 if money_format == "cents" else Decimal(v)
    if not isinstance(v, str):
        return None
    text = v.strip()
    if money_format == "currency":
        text = text.replace("$", "").replace(",", "").replace(" ", "")
    if money_format == "cents":
        return Decimal(int(text)) / 100 if re.fullmatch(r"-?\d+", text) else None
    return Decimal(text) if re.fullmatch(r"-?\d+(\.\d+)?", text) else None


def parse_datetime(v: Any, fmt: str, tz: ZoneInfo) -> datetime | None:
    try:
        if isinstance(v, datetime):
            return v if v.tzinfo else v.replace(tzinfo=UTC)
        if fmt == "epoch_ms":
            if isinstance(v, int) or (isinstance(v, str) and re.fullmatch(r"-?\d+", v)):
                return datetime.fromtimestamp(int(v) / 1000, UTC)
            return None
        if not isinstance(v, str):
            return None
        parsed = datetime.fromisoformat(v) if fmt == "iso" else datetime.strptime(v, fmt)
    except (ValueError, OverflowError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)


def parse_date(v: Any, fmt: str) -> date | None:
    try:
        return datetime.strptime(v, fmt).date() if isinstance(v, str) else None
    except ValueError:
        return None


def usd(amount: Decimal, rate: Decimal) -> Decimal:
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------- the rules
def unstorable(row: dict[str, Any]) -> list[str]:
    """``unstorable_value`` if a text value holds a NUL (Postgres cannot store one)."""
    return ["unstorable_value"] if any(isinstance(v, str) and "\x00" in v for v in row.values()) else []


def over_price(price: Decimal | None, rate: Decimal, category: str | None, m: Mappings) -> bool:
    """Whether ``price`` (in the file's currency) is above the category's USD unit-price ceiling."""
    return price is not None and price >= 0 and usd(price, rate) > m.ceiling(category).max_unit_price


def sales_rules(row: dict[str, Any], source: Source, business: date, m: Mappings) -> list[str]:
    profile = source.profile
    broken = unstorable(row)
    if blank(row.get("order_id")):
        broken.append("missing_order_id")
    if blank(row.get("sku")):
        broken.append("missing_sku")
    if positive_int(row.get("line_no")) is None:
        broken.append("bad_line_no")
    at = parse_datetime(row.get("ordered_at"), profile.datetime_format, ZoneInfo(source.timezone))
    if at is None:
        broken.append("unparseable_date")
    elif at > datetime.combine(business + timedelta(days=2), datetime.min.time(), UTC):
        broken.append("future_date")
    if positive_int(row.get("quantity")) is None:
        broken.append("bad_quantity")
    price = parse_money(row.get("unit_price"), profile.money_format)
    disc_raw = row.get("discount")
    disc = Decimal(0) if disc_raw is None else parse_money(disc_raw, profile.money_format)
    if price is None or price < 0 or disc is None or disc < 0:
        broken.append("unparseable_price")
    if m.status.get(normalise_alias(str(row.get("status") or ""))) is None:
        broken.append("unknown_status")
    has_channel = "channel" in source.layout.columns.values()
    if has_channel and m.channels.get(normalise_alias(str(row.get("channel") or ""))) is None:
        broken.append("unknown_channel")
    start = source.history_start
    if business < start or (at is not None and at < datetime.combine(start, datetime.min.time(), UTC)):
        broken.append("before_history_start")
    quantity = positive_int(row.get("quantity"))
    if quantity is not None and quantity > m.ceiling(None).max_quantity:
        broken.append("quantity_over_ceiling")
    if over_price(price, m.usd_per_unit[source.currency], None, m):
        broken.append("price_over_ceiling")
    return broken


def catalog_rules(row: dict[str, Any], source: Source, m: Mappings) -> list[str]:
    broken = unstorable(row)
    if blank(row.get("sku")):
        broken.append("missing_sku")
    if blank(row.get("product_name")):
        broken.append("missing_product_name")
    price = parse_money(row.get("list_price"), source.profile.money_format)
    if price is None or price < 0:
        broken.append("unparseable_price")
    if m.species.get(normalise_alias(str(row.get("species") or ""))) is None:
        broken.append("unknown_species")
    size: Any = row.get("pack_size")
    if not blank(size):
        try:
            ok = float(size) > 0 and not isinstance(size, bool)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            broken.append("bad_pack_size")
    unit = row.get("pack_unit")
    if not blank(unit) and m.units.get(normalise_alias(str(unit))) is None:
        broken.append("unknown_unit")
    category = m.categories.get(normalise_alias(str(row.get("category") or "")))
    if over_price(price, m.usd_per_unit[source.currency], category or "other", m):
        broken.append("price_over_ceiling")
    return broken


def stores_rules(row: dict[str, Any], m: Mappings) -> list[str]:
    broken = unstorable(row)
    if blank(row.get("store_id")):
        broken.append("missing_store_id")
    if str(row.get("state") or "").strip() not in m.regions:
        broken.append("invalid_state")
    return broken


def customers_rules(row: dict[str, Any], source: Source, m: Mappings) -> list[str]:
    broken = unstorable(row)
    if blank(row.get("customer_id")):
        broken.append("missing_customer_id")
    signup = row.get("signup_date")
    if not blank(signup) and parse_date(signup, source.profile.date_format) is None:
        broken.append("unparseable_date")
    state = row.get("state")
    if not blank(state) and str(state).strip() not in m.regions:
        broken.append("invalid_state")
    species = row.get("pet_species")
    if not blank(species) and m.species.get(normalise_alias(str(species))) is None:
        broken.append("unknown_species")
    return broken


# ----------------------------------------------------------------------------------------- recount
def recount(root: Path, registry: Registry, m: Mappings, *, days_per_file: int = 1) -> Recount:
    """Read every file under ``root`` and recompute the manifest's figures. A sales line must be
    ordered on its file's business date or, with ``days_per_file`` (7 for weekly files), on one of
    the days of the delivery that ends on it."""
    out = Recount()
    partitions: dict[tuple[str, str, date], list[File]] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        out.written += 1
        try:
            parsed = parse_landing_key(key, registry)
        except LandingKeyError as error:
            out.dead_letter.append({"key": key, "reason": error.code})
            continue
        source = registry.source(parsed.provider, parsed.feed)
        assert source is not None
        if bytes_unlike(parsed.format, path.read_bytes()):
            out.dead_letter.append({"key": key, "reason": "format_mismatch"})
            continue
        try:
            columns, records = read_file(path, source, parsed.format)
        except Exception:  # any failure to read is "unparseable"
            out.dead_letter.append({"key": key, "reason": "unparseable"})
            continue
        present = {source.layout.columns[c] for c in columns if c in source.layout.columns}
        if not set(source.required_columns) <= present:
            out.dead_letter.append({"key": key, "reason": "missing_columns"})
            continue
        file = File(key, source, columns, canonical(records, source))
        out.files.append(file)
        partitions.setdefault((parsed.feed, parsed.provider, parsed.date), []).append(file)

    valid_ids: dict[tuple[str, str], dict[str, date]] = {}  # (feed, provider) -> id -> first date
    for feed in ("catalog", "stores", "customers", "sales"):
        for (f, provider, day), files in sorted(partitions.items()):
            if f == feed:
                _partition(out, feed, provider, day, sorted(files, key=lambda x: x.key), m, valid_ids, days_per_file)
    return out


def _partition(
    out: Recount,
    feed: str,
    provider: str,
    day: date,
    files: list[File],
    m: Mappings,
    valid_ids: dict[tuple[str, str], dict[str, date]],
    days_per_file: int = 1,
) -> None:
    key_column = {"sales": "order_id", "catalog": "sku", "stores": "store_id", "customers": "customer_id"}[feed]
    seen_all: set[Any] = set()
    seen_valid: set[Any] = set()
    for file in files:
        source = file.source
        rate = m.usd_per_unit[source.currency]
        for number, row in enumerate(file.rows, start=1):
            out.rows_in[feed] += 1
            if feed == "sales":
                broken = sales_rules(row, source, day, m)
            elif feed == "catalog":
                broken = catalog_rules(row, source, m)
            elif feed == "stores":
                broken = stores_rules(row, m)
            else:
                broken = customers_rules(row, source, m)
            ident: Any = None if blank(row.get(key_column)) else str(row[key_column]).strip()
            if feed == "sales" and ident is not None:
                line = positive_int(row.get("line_no"))
                ident = None if line is None else (ident, line)
            if ident is not None:
                if (ident in seen_all) != (ident in seen_valid):
                    out.problems.append(f"{file.key} row {number}: duplicate key depends on reading of the rule")
                if ident in seen_valid:
                    broken.append("duplicate")
                seen_all.add(ident)
            if broken:
                if len(broken) != 1:
                    out.problems.append(f"{file.key} row {number}: breaks {broken}")
                first = min(broken, key=RULE_ORDER[feed].index)
                out.quarantine[feed][first] += 1
                continue
            seen_valid.add(ident)
            if feed == "sales":
                _valid_sale(out, file, number, row, provider, day, m, rate, valid_ids, days_per_file)
            else:
                out.dim_rows[feed] += 1
                out.dim_ids[feed].add((provider, str(ident)))
                valid_ids.setdefault((feed, provider), {}).setdefault(str(ident), day)
                _valid_dim(out, file, number, row, feed, m)


def _valid_dim(out: Recount, file: File, number: int, row: dict[str, Any], feed: str, m: Mappings) -> None:
    where = f"{file.key} row {number}"
    if feed == "catalog":
        if m.brands.get(normalise_alias(str(row["brand"]))) is None:
            out.problems.append(f"{where}: brand {row['brand']!r} does not resolve")
        if m.categories.get(normalise_alias(str(row["category"]))) is None:
            out.problems.append(f"{where}: category {row['category']!r} does not resolve")
    if feed == "stores" and not re.fullmatch(r"\d{1,5}", str(row.get("zip"))):
        out.problems.append(f"{where}: zip {row.get('zip')!r}")


def _valid_sale(
    out: Recount,
    file: File,
    number: int,
    row: dict[str, Any],
    provider: str,
    day: date,
    m: Mappings,
    rate: Decimal,
    valid_ids: dict[tuple[str, str], dict[str, date]],
    days_per_file: int = 1,
) -> None:
    source = file.source
    where = f"{file.key} row {number}"
    money = source.profile.money_format
    price = parse_money(row["unit_price"], money)
    disc = parse_money(row.get("discount"), money) if row.get("discount") is not None else Decimal(0)
    assert price is not None and disc is not None
    quantity = positive_int(row["quantity"])
    assert quantity is not None
    net = quantity * usd(price, rate) - usd(disc, rate)
    out.max_quantity = max(out.max_quantity, quantity)
    out.max_unit_usd = max(out.max_unit_usd, usd(price, rate))
    status = m.status[normalise_alias(str(row["status"]))]
    entry = out.sales_by.setdefault((day.isoformat(), provider), [0, Decimal(0)])
    entry[0] += 1
    entry[1] += net
    by = out.by_status.setdefault(status, [0, Decimal(0)])
    by[0] += 1
    by[1] += net
    at = parse_datetime(row["ordered_at"], source.profile.datetime_format, ZoneInfo(source.timezone))
    assert at is not None
    if not day - timedelta(days=days_per_file - 1) <= at.astimezone(ZoneInfo(source.timezone)).date() <= day:
        out.problems.append(f"{where}: ordered_at {row['ordered_at']!r} is not in the delivery of {day}")
    for feed, column in (("catalog", "sku"), ("stores", "store_id"), ("customers", "customer_id")):
        value = row.get(column)
        if value is None or ((feed, provider) not in valid_ids and feed != "catalog"):
            continue
        first = valid_ids.get((feed, provider), {}).get(str(value))
        if first is None or first > day:
            out.problems.append(f"{where}: {column} {value!r} is not a valid {feed} row delivered by {day}")
    channel = row.get("channel") or source.profile.channel
    online = m.channels.get(normalise_alias(str(channel))) == "online"
    if online and (row.get("store_id") is not None or str(row.get("ship_state")) not in m.regions):
        out.problems.append(
            f"{where}: online line with store {row.get('store_id')!r}, ship_state {row.get('ship_state')!r}"
        )
    if not online and row.get("store_id") is None:
        out.problems.append(f"{where}: store line without a store")
