"""Values that slip through, end to end: a NUL in a text value, a sale dated 1900 or in year 1, a
quantity of 2,147,483,647 and a unit price beyond the ceiling. Each is quarantined with its own rule
in silver (never found by a ``COPY``); every other row of the same files loads into gold, and every
job of the pipeline succeeds. The real pipeline (``run_pipeline``) on the real Postgres.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import (
    DAILY_MART_JOB,
    DIMENSIONS_JOB,
    GOLD_FACTS_JOB,
    MARTS_JOB,
    MEDALLION_JOB,
    REGISTRY_JOB,
    SCAN_LANDING_JOB,
)
from resight_platform.io.postgres import connect
from resight_platform.io.storage import LocalStore
from resight_platform.pipeline import run_pipeline
from resight_platform.resources import ENGINE_TAG
from resight_platform.settings import Settings
from resight_platform.sources.registry import Registry, load_registry
from resight_platform_tests.transforms.conftest import customer, product, sale, store, write_landed

pytestmark = pytest.mark.xdist_group("end_to_end")

DAY = date(2026, 3, 19)  # no other test lands files for this day
NUL = "\x00"

SALES = [
    sale(order_id="V-1", line_no="1", sku="SKU-1", ordered_at=f"{DAY}T10:00:00"),
    sale(order_id="V-1", line_no="2", sku="SKU-2", ordered_at=f"{DAY}T10:00:00", quantity="3"),
    sale(order_id=f"V-{NUL}2", line_no="1", ordered_at=f"{DAY}T11:00:00"),  # a NUL in the id
    sale(order_id="V-3", line_no="1", ordered_at=f"{DAY}T11:00:00", customer_id=f"C{NUL}"),
    sale(order_id="V-4", line_no="1", ordered_at="1900-01-01T10:00:00"),
    sale(order_id="V-5", line_no="1", ordered_at="0001-01-01T00:00:00Z"),
    sale(order_id="V-6", line_no="1", ordered_at=f"{DAY}T12:00:00", quantity="2147483647"),
    sale(order_id="V-7", line_no="1", ordered_at=f"{DAY}T12:00:00", unit_price="99999.99"),
    sale(order_id="V-8", line_no="1", ordered_at=f"{DAY}T13:00:00", discount=None),
]
CATALOG = [
    product(sku="SKU-1"),
    product(sku="SKU-2", product_name="Salmon Kibble", list_price="20.00"),
    product(sku="SKU-3", product_name=f"Bad{NUL}Name"),
    product(sku="SKU-4", list_price="5000.00"),  # food: over its category's ceiling
]
STORES = [store(store_id="S1"), store(store_id="S2", city=f"Aus{NUL}tin")]
CUSTOMERS = [customer(customer_id="C1"), customer(customer_id=f"C{NUL}2")]


def _land(landing: Path, registry: Registry) -> None:
    store_ = LocalStore(landing)
    for feed, records in (("sales", SALES), ("catalog", CATALOG), ("stores", STORES), ("customers", CUSTOMERS)):
        source = registry.source("pawmart", feed)
        assert source is not None
        store_.write_bytes(f"pawmart/{feed}/{DAY}/{feed}.csv", write_landed(source, records))


def _rows(pg_url: str, query: str) -> list[tuple[Any, ...]]:
    with connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def test_unstorable_and_implausible_values_are_quarantined_and_the_rest_loads(
    tmp_path: Path, fresh_pg_url: str
) -> None:
    registry = load_registry()
    landing = tmp_path / "landing"
    _land(landing, registry)
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path / "home"),
            "RESIGHT_LANDING_URL": str(landing),
            "RESIGHT_PARTITIONS_START": "2026-03-01",
        }
    )
    defs = build_definitions(settings, pg_url=fresh_pg_url)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run_pipeline(defs, instance, landing=LocalStore(landing), registry=registry, engine="polars")
        # The engine chosen for the run is a tag on the runs of silver, the facts and the marts (the
        # engine resource reads it); the registry, the scan and the dimensions run untagged. Checked
        # here because this is the cheapest whole pipeline run (one day: no ML run).
        engines = {(run.job_name, run.tags.get(ENGINE_TAG)) for run in instance.get_runs()}
    assert report.success, report.runs  # no job failed: the facts COPY and the upserts never saw a NUL
    assert engines == {
        (REGISTRY_JOB, None),
        (SCAN_LANDING_JOB, None),
        (MEDALLION_JOB, "polars"),
        (DIMENSIONS_JOB, None),
        (GOLD_FACTS_JOB, "polars"),
        (DAILY_MART_JOB, "polars"),
        (MARTS_JOB, "polars"),
    }

    facts = _rows(fresh_pg_url, "select order_id, line_no, quantity from gold.fact_sales order by 1, 2")
    assert facts == [("V-1", 1, 2), ("V-1", 2, 3), ("V-8", 1, 2)]
    quarantined = _rows(
        fresh_pg_url,
        "select feed, row_number, rule, raw from ops.quarantine where provider = 'pawmart' order by feed, row_number",
    )
    assert [row[:3] for row in quarantined] == [
        ("catalog", 3, "unstorable_value"),
        ("catalog", 4, "price_over_ceiling"),
        ("customers", 2, "unstorable_value"),
        ("sales", 3, "unstorable_value"),
        ("sales", 4, "unstorable_value"),
        ("sales", 5, "before_history_start"),
        ("sales", 6, "before_history_start"),
        ("sales", 7, "quantity_over_ceiling"),
        ("sales", 8, "price_over_ceiling"),
        ("stores", 2, "unstorable_value"),
    ]
    # ops.quarantine.raw is jsonb: the NUL is kept visibly, as the six characters \u0000.
    raws = {(feed, number): raw for feed, number, _, raw in quarantined}
    assert raws[("sales", 3)]["order_id"] == "V-\\u00002"
    assert raws[("sales", 4)]["customer_id"] == "C\\u0000"
    assert raws[("stores", 2)]["city"] == "Aus\\u0000tin"
    assert raws[("sales", 7)]["quantity"] == "2147483647"
    assert json.dumps(raws[("catalog", 3)]).count("\\\\u0000") == 1

    assert _rows(fresh_pg_url, "select sku from gold.dim_product where provider = 'pawmart' order by 1") == [
        ("SKU-1",),
        ("SKU-2",),
    ]
    assert _rows(fresh_pg_url, "select store_id from gold.dim_store where provider = 'pawmart' order by 1") == [("S1",)]
    assert _rows(fresh_pg_url, "select customer_id from gold.dim_customer where provider = 'pawmart' order by 1") == [
        ("C1",)
    ]
    # Every file is loaded, its rows reconciled: in = loaded + quarantined.
    ledger = _rows(
        fresh_pg_url,
        "select split_part(file_key, '/', 2), status, rows_in, rows_loaded, rows_quarantined"
        " from ops.ingestion_ledger order by 1",
    )
    assert ledger == [
        ("catalog", "loaded", 4, 2, 2),
        ("customers", "loaded", 2, 1, 1),
        ("sales", "loaded", 9, 3, 6),
        ("stores", "loaded", 2, 1, 1),
    ]
