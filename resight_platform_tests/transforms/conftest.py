"""Sample landed files for every export profile, written the way each partner system writes them.

``landed`` builds the bytes of one file of a registered source from records keyed by *canonical*
column names: the helper renames to the profile's source columns and writes the profile's format,
delimiter and encoding. ``bronze`` goes one step further and returns the bronze frame of such a
file, so silver tests start from real bronze.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from resight_platform.sources.mappings import Mappings, load_mappings
from resight_platform.sources.registry import Registry, Source, load_registry
from resight_platform.transforms.bronze import read_landing_file

BUSINESS_DATE = date(2026, 10, 1)
INGESTED_AT = datetime(2026, 10, 2, 6, 0, tzinfo=UTC)
NOW = datetime(2026, 10, 2, 6, 0, tzinfo=UTC)

#: One provider per export profile (its timezone and currency in providers.csv).
PROFILE_PROVIDERS = {
    "standard_csv": "pawmart",  # csv, ",", utf-8, iso, decimal, America/New_York
    "legacy_pos": "petopia",  # csv, ";", latin-1, %m/%d/%Y %H:%M, currency, America/Chicago
    "shop_export": "chewyish",  # jsonl, iso, decimal, online, America/New_York
    "marketplace_json": "petdirect",  # json array, epoch_ms, cents, online, America/Chicago
    "distributor_parquet": "northpaw_distribution",  # parquet, iso, decimal, CAD, America/New_York
    "vet_gz": "vetcare_partners",  # csv.gz, "|", %d/%m/%Y %H:%M, currency, America/Phoenix
}

Record = dict[str, Any]
Landed = Callable[..., bytes]
Bronze = Callable[..., pl.DataFrame]


@pytest.fixture(scope="session")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="session")
def mappings() -> Mappings:
    return load_mappings()


def landing_key(source: Source, name: str = "part-001", day: date = BUSINESS_DATE) -> str:
    return f"{source.provider}/{source.feed}/{day.isoformat()}/{name}.{source.format}"


def write_landed(source: Source, records: Sequence[Record], *, extra: Record | None = None) -> bytes:
    """The bytes of a file of ``source`` holding ``records`` (canonical names -> values).

    Every mapped column of the profile is written (missing values empty/null) plus the ``extra``
    columns, under their own names, as partners add columns nobody asked for. Values are written
    as given: strings stay strings, numbers stay numbers in JSON and Parquet, datetimes become
    native timestamps in Parquet.
    """
    to_source = source.layout.canonical_to_source
    columns = [*source.layout.columns, *(extra or {})]
    rows = [{**{to_source[c]: record.get(c) for c in to_source}, **(extra or {})} for record in records]
    fmt = source.format
    if fmt in ("csv", "csv.gz"):
        buffer = io.StringIO(newline="")
        writer = csv.writer(buffer, delimiter=source.profile.delimiter, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else row[c] for c in columns])
        data = buffer.getvalue().encode(source.profile.encoding)
        return gzip.compress(data, mtime=0) if fmt == "csv.gz" else data
    if fmt == "jsonl":
        return "".join(json.dumps(row) + "\n" for row in rows).encode("utf-8")
    if fmt == "json":
        return json.dumps(rows).encode("utf-8")
    if fmt == "parquet":
        buffer_b = io.BytesIO()
        frame = pl.DataFrame(rows, schema=columns) if rows else pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
        frame.write_parquet(buffer_b)
        return buffer_b.getvalue()
    raise AssertionError(f"no writer for {fmt}")


@pytest.fixture
def landed(registry: Registry) -> Landed:
    """``landed(provider, feed, records, extra=None) -> bytes`` of one file in the profile's format."""

    def build(provider: str, feed: str, records: Sequence[Record], *, extra: Record | None = None) -> bytes:
        source = registry.source(provider, feed)
        assert source is not None, f"{provider}/{feed} is not registered"
        return write_landed(source, records, extra=extra)

    return build


@pytest.fixture
def bronze(registry: Registry) -> Bronze:
    """``bronze(provider, feed, records, name="part-001", day=BUSINESS_DATE) -> bronze frame``."""

    def build(
        provider: str,
        feed: str,
        records: Sequence[Record],
        *,
        name: str = "part-001",
        day: date = BUSINESS_DATE,
        extra: Record | None = None,
    ) -> pl.DataFrame:
        source = registry.source(provider, feed)
        assert source is not None, f"{provider}/{feed} is not registered"
        return read_landing_file(
            write_landed(source, records, extra=extra),
            source=source,
            key=landing_key(source, name, day),
            business_date=day,
            ingested_at=INGESTED_AT,
        )

    return build


def sale(**values: Any) -> Record:
    """A valid standard-profile sales line (store channel), with ``values`` overriding fields."""
    record: Record = {
        "order_id": "O-1",
        "line_no": "1",
        "ordered_at": "2026-10-01T10:00:00",
        "store_id": "S1",
        "channel": "store",
        "sku": "SKU-1",
        "quantity": "2",
        "unit_price": "12.99",
        "discount": "1.00",
        "customer_id": "C1",
        "status": "completed",
        "ship_state": None,
    }
    record.update(values)
    return record


def product(**values: Any) -> Record:
    """A valid standard-profile catalog row, with ``values`` overriding fields."""
    record: Record = {
        "sku": "SKU-1",
        "upc": "012345678905",
        "product_name": "Chicken Kibble",
        "brand": "Purina Pro Plan",
        "category": "food",
        "species": "dog",
        "pack_size": "30",
        "pack_unit": "lb",
        "list_price": "54.99",
    }
    record.update(values)
    return record


def store(**values: Any) -> Record:
    record: Record = {"store_id": "S1", "store_name": "Main St", "city": "Austin", "state": "TX", "zip": "78701"}
    record.update(values)
    return record


def customer(**values: Any) -> Record:
    record: Record = {"customer_id": "C1", "signup_date": "2025-03-14", "state": "NY", "pet_species": "cat"}
    record.update(values)
    return record
