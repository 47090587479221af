"""Property-style checks on seeded random bronze frames: nothing is lost or invented.

Each frame mixes several providers (so several formats, timezones and a second currency), several
files and two business dates, with values drawn from pools of valid, malformed, blank and null
values and repeated keys. Whatever the mix, per file rows in = rows loaded + rows quarantined,
every bronze row lands in exactly one output, the outputs satisfy the Pandera models, and the
result does not depend on the order of the bronze rows.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest

from resight_platform.schemas import QUARANTINE_RULES, SILVER_MODELS, Quarantine
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import CANONICAL_COLUMNS, Registry
from resight_platform.transforms.bronze import bronze_schema
from resight_platform.transforms.silver import clean_feed, reconcile

PROVIDERS = {
    "sales": ["pawmart", "petopia", "petdirect", "northpaw_distribution"],
    "catalog": ["pawmart", "petopia", "petdirect", "northpaw_distribution"],
    "stores": ["pawmart", "vetcare_partners", "northpaw_distribution"],
    "customers": ["pawmart", "petopia", "vetcare_partners"],
}
DAYS = [date(2026, 10, 1), date(2026, 10, 2)]

BLANKS = [None, "", "   "]
IDS = ["A1", "A2", "A3", " A1 ", "007", "a1"]
INTS = ["1", "2", "3", "01", "0", "-1", "2.5", "x", "4.0", "99999999999"]
MONEY = ["12.99", "$1,299.00", "1299", "0.50", "-1.00", "abc", "$ 3.10", ".5", "12,99"]
TIMESTAMPS = [
    "2026-10-01T10:00:00",
    "2026-10-01T10:00:00Z",
    "2026-10-01T10:00:00-05:00",
    "10/01/2026 10:00",
    "1790863200000",
    "2026-10-09T00:00:00Z",
    "2026-03-08T02:30:00",
    "junk",
    "2026-10-02 23:59:59",
]
DATES = ["2025-03-14", "03/14/2025", "14/03/2025", "2025-02-30", "yesterday"]
POOLS: dict[str, list[Any]] = {
    "order_id": IDS,
    "line_no": INTS,
    "ordered_at": TIMESTAMPS,
    "store_id": IDS,
    "channel": ["store", "online", "In-Store", "web", "carrier pigeon"],
    "sku": IDS,
    "quantity": INTS,
    "unit_price": MONEY,
    "discount": MONEY,
    "customer_id": IDS,
    "status": ["completed", "X", "refunded", "pending", "Sale"],
    "ship_state": ["NY", "ca", "Nowhere"],
    "upc": ["012345678905", "x"],
    "product_name": ["Kibble", "Café Crunch"],
    "brand": ["purina one", "Acme  Co", "KONG"],
    "category": ["Dry Food", "toys", "mystery"],
    "species": ["Canine", "cat", "dragon", "small pet"],
    "pack_size": ["30", "2.5", "0", "big"],
    "pack_unit": ["lb", "Ounces", "furlong"],
    "list_price": MONEY,
    "store_name": ["Main St", "Café"],
    "city": ["Austin", "Québec"],
    "state": ["TX", " ca ", "XX", "Texas", "dc"],
    "zip": ["78701", "2134", "12345-6789", "zip"],
    "signup_date": DATES,
    "pet_species": ["dog", "Feline", "dragon"],
}


def random_bronze(feed: str, seed: int, rows: int = 300) -> pl.DataFrame:
    rng = random.Random(seed)
    records = []
    counters: dict[str, int] = {}
    for _ in range(rows):
        provider, day = rng.choice(PROVIDERS[feed]), rng.choice(DAYS)
        key = f"{provider}/{feed}/{day.isoformat()}/part-{rng.randint(1, 3)}.csv"
        counters[key] = counters.get(key, 0) + 1
        record: dict[str, Any] = {
            column: rng.choice(POOLS[column] + BLANKS if rng.random() < 0.15 else POOLS[column])
            for column in CANONICAL_COLUMNS[feed]
        }
        record.update(
            _provider=provider,
            _feed=feed,
            _business_date=day,
            _source_file=key,
            _row_number=counters[key],
            _ingested_at=datetime(2026, 10, 3, tzinfo=UTC),
        )
        records.append(record)
    return pl.DataFrame(records, schema=bronze_schema(feed))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("feed", sorted(PROVIDERS))
def test_rows_in_equal_valid_plus_quarantined(registry: Registry, mappings: Mappings, feed: str, seed: int) -> None:
    bronze = random_bronze(feed, seed)
    now = datetime(2026, 10, 3, tzinfo=UTC)
    result = clean_feed(feed, bronze, registry=registry, mappings=mappings, now=now)

    counts = reconcile(bronze, result)
    assert (counts["rows_in"] == counts["rows_loaded"] + counts["rows_quarantined"]).all()
    assert counts["_source_file"].to_list() == sorted(bronze["_source_file"].unique().to_list())

    lineage = ["_source_file", "_row_number"]
    seen = pl.concat([result.valid.select(lineage), result.quarantine.select(lineage)])
    assert seen.sort(lineage).equals(bronze.select(lineage).sort(lineage))

    SILVER_MODELS[feed].validate(result.valid)
    Quarantine.validate(result.quarantine)
    assert set(result.quarantine["rule"]) <= set(QUARANTINE_RULES[feed])
    assert result.valid.height > 0 and result.quarantine.height > 0  # the pools exercise both sides

    shuffled = bronze.sample(fraction=1.0, shuffle=True, seed=seed)
    again = clean_feed(feed, shuffled, registry=registry, mappings=mappings, now=now)
    assert again.valid.equals(result.valid)
    assert again.quarantine.equals(result.quarantine)
