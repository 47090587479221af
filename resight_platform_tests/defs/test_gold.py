"""Gold in real runs: a partner whose sales arrive a day before its catalog, store list and customer
list. Day 1 loads on the unknown members without breaking a mart; day 2's dimensions re-resolve
day 1's facts (late_dimension_sensor) in Postgres and the lake, and the marts follow. Expected
values are worked out by hand below."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.gold import LATE_DIMENSION_SENSOR, consecutive_days
from resight_platform.defs.jobs import DAILY_MART_JOB, DIMENSIONS_JOB, LANDING_SET_JOB, MARTS_JOB
from resight_platform.defs.metadata import PARTITION_TAG, RANGE_END, RANGE_START, set_run_config
from resight_platform.defs.policies import FACTS_IN_RUN
from resight_platform.io.lake import read_table
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.settings import Settings
from resight_platform.transforms.gold import stable_key
from resight_platform_tests.defs.test_policies import Ticks
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon
from resight_platform_tests.transforms import marts_reference

D1, D2 = DAY - timedelta(days=1), DAY
MONTH = D1.replace(day=1)
CENT = Decimal("0.01")

SALES = (
    "order_id,line_no,ordered_at,store_id,channel,sku,quantity,unit_price,discount,customer_id,status,ship_state\n"
    f"O1,1,{D1}T10:00:00,S1,store,K1,2,10.00,0,C1,completed,\n"
    f"O1,2,{D1}T10:00:00,S1,store,K2,1,5.50,0,C1,completed,\n"
    f"O2,1,{D1}T11:00:00,,online,K1,1,10.00,0,,completed,NY\n"
    f"O3,1,{D1}T12:00:00,S1,store,K2,3,5.50,1.00,C2,returned,\n"
)
CATALOG = (
    "sku,upc,product_name,brand,category,species,pack_size,pack_unit,list_price\n"
    "K1,012345678905,Kong Classic,kong,toys,dog,1,ct,12.99\n"
    "K2,012345678912,Chicken Kibble,pro plan,food,cat,30,lb,54.99\n"
)
STORES = "store_id,store_name,city,state,zip\nS1,Main St,Austin,TX,78701\n"
FACT_COLUMNS = [
    "order_id",
    "line_no",
    "product_key",
    "store_key",
    "customer_key",
    "provider",
    "sku",
    "store_id",
    "customer_id",
    "region",
]
CUSTOMERS = "customer_id,signup_date,state,pet_species\nC1,2025-03-14,NY,cat\nC2,2025-04-01,TX,dog\n"


@pytest.fixture
def daemon(tmp_path: Path, fresh_pg_url: str) -> Iterator[Daemon]:
    for d in _daemon(tmp_path, fresh_pg_url, str(tmp_path / "landing")):
        d.instance.add_dynamic_partitions("source", ["pawmart"])
        assert d.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=d.instance).success
        yield d


def _rows(daemon: Daemon, query: str) -> list[tuple[Any, ...]]:
    with connect(daemon.pg_url) as conn, conn.cursor() as cur:
        cur.execute(query)  # type: ignore[arg-type]
        return cur.fetchall()


def _marts(daemon: Daemon) -> None:
    """The daily mart of day 1 and the monthly marts, as automation would run them."""
    daily = daemon.defs.resolve_job_def(DAILY_MART_JOB)
    assert daily.execute_in_process(instance=daemon.instance, partition_key=D1.isoformat()).success
    assert daemon.defs.resolve_job_def(MARTS_JOB).execute_in_process(instance=daemon.instance).success


def _late_tick(daemon: Daemon) -> dg.SensorResult | dg.SkipReason:
    sensor = daemon.defs.resolve_sensor_def(LATE_DIMENSION_SENSOR)
    with dg.build_sensor_context(
        instance=daemon.instance,
        cursor=getattr(daemon, "late_cursor", None),
        definitions=daemon.defs,
        resources=dict(daemon.defs.resources or {}),
    ) as context:
        result = sensor(context)
    if isinstance(result, dg.SensorResult):
        daemon.late_cursor = result.cursor  # type: ignore[attr-defined]
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    return result


def _money(*values: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(v).quantize(CENT) for v in values)


def _check_every_mart_against_the_reference(daemon: Daemon) -> None:
    with connect(daemon.pg_url) as conn:
        expected = marts_reference.expected_marts(conn)
        for name in marts_reference.GRAIN:
            got = marts_reference.mart_rows(conn, name)
            assert got, f"marts.{name} is empty"
            assert marts_reference.differences(name, expected[name], got) == []


def _failed_checks(result: dg.ExecuteInProcessResult) -> list[str]:
    return [
        f"{'/'.join(e.asset_key.path)}:{e.check_name}"
        for e in (
            event.asset_check_evaluation_data
            for event in result.all_events
            if event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        )
        if not e.passed
    ]


def _key(columns: dict[str, str], name: str) -> int:
    frame = pl.DataFrame({column: [value] for column, value in columns.items()})
    return int(stable_key(frame, list(columns), name)[name][0])


def test_sales_before_their_dimensions_load_on_unknown_members_then_resolve(daemon: Daemon, tmp_path: Path) -> None:
    # --- Day 1: sales of SKUs, a store and customers the partner has not delivered yet ---------
    daemon.landing.write_bytes(f"pawmart/sales/{D1}/sales.csv", SALES.encode())
    tick = daemon.tick()
    assert [r.run_config for r in tick.run_requests or []] == [set_run_config({"sales": [f"{D1}|pawmart"]}, True)]
    for request in tick.run_requests or []:
        result = daemon.run(request)
        assert result.success and _failed_checks(result) == []
    _marts(daemon)

    facts = f"select {', '.join(FACT_COLUMNS)} from gold.fact_sales order by 1, 2"
    assert _rows(daemon, facts) == [
        ("O1", 1, 0, 0, 0, "pawmart", "K1", "S1", "C1", None),
        ("O1", 2, 0, 0, 0, "pawmart", "K2", "S1", "C1", None),
        ("O2", 1, 0, None, None, "pawmart", "K1", None, None, "Northeast"),
        ("O3", 1, 0, 0, 0, "pawmart", "K2", "S1", "C2", None),
    ]
    # Completed: O1 (20.00 + 5.50, store S1 not known: region Unknown) and O2 (10.00, online to NY).
    assert _rows(
        daemon, "select category, species, region, channel, units, revenue, orders from marts.daily_sales"
    ) == [
        ("other", "other", "Northeast", "online", 1, *_money("10"), 1),
        ("other", "other", "Unknown", "store", 3, *_money("25.50"), 1),
    ]
    top = "select rank, provider, sku, product_name, brand, category, species, units, revenue"
    assert _rows(daemon, f"{top} from marts.top_products_monthly order by rank") == [
        (1, "pawmart", "K1", None, "Unknown", "other", "other", 3, *_money("30")),  # O1/1 20.00 + O2 10.00
        (2, "pawmart", "K2", None, "Unknown", "other", "other", 1, *_money("5.50")),  # O3 was returned
    ]
    assert _rows(daemon, "select rank, customer_id, region, orders, revenue from marts.top_customers_monthly") == [
        (1, "C1", None, 1, *_money("25.50"))
    ]
    assert _rows(daemon, "select region, brand, revenue, share from marts.brand_share_monthly order by 1") == [
        ("Northeast", "Unknown", *_money("10"), 1.0),
        ("Unknown", "Unknown", *_money("25.50"), 1.0),
    ]
    impact = "select category, region, status, lines, amount, share_of_amount from marts.order_status_impact"
    assert _rows(daemon, f"{impact} order by 2, 3") == [
        ("other", "Northeast", "completed", 1, *_money("10"), 1.0),
        ("other", "Unknown", "completed", 2, *_money("25.50"), pytest.approx(25.5 / 41)),
        ("other", "Unknown", "returned", 1, *_money("15.50"), pytest.approx(15.5 / 41)),
    ]
    assert _rows(daemon, "select region, orders, revenue, avg_order_value from marts.aov_by_region order by 1") == [
        ("Northeast", 1, *_money("10", "10")),
        ("Unknown", 1, *_money("25.50", "25.50")),
    ]
    _check_every_mart_against_the_reference(daemon)
    # Nothing to re-resolve yet: the dimensions landed before the sales did.
    first = _late_tick(daemon)
    assert isinstance(first, dg.SensorResult) and not first.run_requests

    # --- Day 2: the catalog, the store list and the customer list land ------------------------
    for feed, body in (("catalog", CATALOG), ("stores", STORES), ("customers", CUSTOMERS)):
        daemon.landing.write_bytes(f"pawmart/{feed}/{D2}/{feed}.csv", body.encode())
    daemon.run_all(daemon.tick())
    assert daemon.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=daemon.instance).success
    late = _late_tick(daemon)
    assert isinstance(late, dg.SensorResult)
    assert [(r.partition_key, r.job_name) for r in late.run_requests or []] == [(f"{D1}|pawmart", "gold_facts_job")]
    for request in late.run_requests or []:
        result = daemon.run(request)
        assert result.success and _failed_checks(result) == []
    _marts(daemon)

    k1 = _key({"provider": "pawmart", "sku": "K1"}, "product_key")
    k2 = _key({"provider": "pawmart", "sku": "K2"}, "product_key")
    s1 = _key({"provider": "pawmart", "store_id": "S1"}, "store_key")
    c1 = _key({"provider": "pawmart", "customer_id": "C1"}, "customer_key")
    c2 = _key({"provider": "pawmart", "customer_id": "C2"}, "customer_key")
    resolved = [
        ("O1", 1, k1, s1, c1, "pawmart", "K1", "S1", "C1", "South"),
        ("O1", 2, k2, s1, c1, "pawmart", "K2", "S1", "C1", "South"),
        ("O2", 1, k1, None, None, "pawmart", "K1", None, None, "Northeast"),
        ("O3", 1, k2, s1, c2, "pawmart", "K2", "S1", "C2", "South"),
    ]
    assert _rows(daemon, facts) == resolved
    # The lake's copy, which the marts and data scientists read, is the same.
    lake = open_store(Settings.from_env({"RESIGHT_HOME": str(tmp_path / "home")}).lake_url)
    in_lake = read_table(lake, ["gold", "fact_sales"], [{"date": D1.isoformat(), "source": "pawmart"}]).collect()
    assert in_lake.sort("order_id", "line_no").select(FACT_COLUMNS).rows() == resolved
    assert _rows(
        daemon, "select category, species, region, channel, units, revenue, orders from marts.daily_sales"
    ) == [
        ("food", "cat", "South", "store", 1, *_money("5.50"), 1),
        ("toys", "dog", "Northeast", "online", 1, *_money("10"), 1),
        ("toys", "dog", "South", "store", 2, *_money("20"), 1),
    ]
    assert _rows(daemon, f"{top} from marts.top_products_monthly order by rank") == [
        (1, "pawmart", "K1", "Kong Classic", "KONG", "toys", "dog", 3, *_money("30")),
        (2, "pawmart", "K2", "Chicken Kibble", "Purina Pro Plan", "food", "cat", 1, *_money("5.50")),
    ]
    assert _rows(daemon, "select rank, customer_id, region, orders, revenue from marts.top_customers_monthly") == [
        (1, "C1", "Northeast", 1, *_money("25.50"))
    ]
    assert _rows(
        daemon, "select category, region, brand, revenue, share from marts.brand_share_monthly order by 1, 2"
    ) == [
        ("food", "South", "Purina Pro Plan", *_money("5.50"), 1.0),
        ("toys", "Northeast", "KONG", *_money("10"), 1.0),
        ("toys", "South", "KONG", *_money("20"), 1.0),
    ]
    assert _rows(daemon, f"{impact} order by 1, 2, 3") == [
        ("food", "South", "completed", 1, *_money("5.50"), pytest.approx(5.5 / 21)),
        ("food", "South", "returned", 1, *_money("15.50"), pytest.approx(15.5 / 21)),
        ("toys", "Northeast", "completed", 1, *_money("10"), 1.0),
        ("toys", "South", "completed", 1, *_money("20"), 1.0),
    ]
    assert _rows(daemon, "select region, orders, revenue, avg_order_value from marts.aov_by_region order by 1") == [
        ("Northeast", 1, *_money("10", "10")),
        ("South", 1, *_money("25.50", "25.50")),
    ]
    _check_every_mart_against_the_reference(daemon)
    # Once resolved, nothing is requested again.
    again = _late_tick(daemon)
    assert isinstance(again, dg.SkipReason)
    assert _rows(daemon, "select count(*) from gold.fact_sales where 0 in (product_key, store_key, customer_key)") == [
        (0,)
    ]


def test_a_range_of_days_is_one_run_per_provider_and_run_of_days() -> None:
    d = date(2026, 10, 1)
    cells = [(d, "b"), (d + timedelta(days=1), "b"), (d + timedelta(days=3), "b"), (d, "a"), (d, "a")]
    assert consecutive_days(cells) == [
        ("a", d, d),
        ("b", d, d + timedelta(days=1)),
        ("b", d + timedelta(days=3), d + timedelta(days=3)),
    ]


def test_the_sensor_asks_a_range_run_for_consecutive_days(daemon: Daemon) -> None:
    """Two days of sales before the catalog: one run over both days, tagged with the range; not
    while a fact run that started before the catalog landed may still write with the old one."""
    for day in (D1 - timedelta(days=1), D1):
        body = "order_id,line_no,ordered_at,sku,quantity,unit_price,status,channel,ship_state\n"
        body += f"A{day.day},1,{day}T10:00:00,K1,1,10.00,completed,online,NY\n"
        daemon.landing.write_bytes(f"pawmart/sales/{day}/sales.csv", body.encode())
    daemon.run_all(daemon.tick())
    assert _rows(daemon, "select count(*) from gold.fact_sales where product_key = 0") == [(2,)]
    writing = dg.DagsterRun(  # another provider's facts, still being written with the old catalog
        job_name="gold_facts_job",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        asset_selection=frozenset({dg.AssetKey(["gold", "fact_sales"])}),
        tags={PARTITION_TAG: f"{D1}|barkbox_market"},
    )
    daemon.instance.add_run(writing)
    # Landing runs over sets of partitions, started then too: one builds its facts, one does not.
    landing = {
        facts: dg.DagsterRun(
            job_name=LANDING_SET_JOB,
            run_id=str(uuid.uuid4()),
            status=dg.DagsterRunStatus.STARTED,
            run_config=set_run_config({"sales": [f"{D1}|petvalley"]}, facts),
            tags={FACTS_IN_RUN: "true"} if facts else {},
        )
        for facts in (True, False)
    }
    for run in landing.values():
        daemon.instance.add_run(run)
    daemon.landing.write_bytes(f"pawmart/catalog/{D2}/catalog.csv", CATALOG.encode())
    daemon.run_all(daemon.tick())
    assert daemon.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=daemon.instance).success
    assert isinstance(_late_tick(daemon), dg.SkipReason)  # that run may have read the old catalog
    daemon.instance.report_run_failed(writing)
    assert isinstance(_late_tick(daemon), dg.SkipReason)  # and so may the landing run with facts
    daemon.instance.report_run_failed(landing[True])
    late = _late_tick(daemon)  # the one without facts writes none: no reason to wait
    assert isinstance(late, dg.SensorResult)
    (request,) = late.run_requests or []
    assert (request.tags[RANGE_START], request.tags[RANGE_END]) == (
        f"{D1 - timedelta(days=1)}|pawmart",
        f"{D1}|pawmart",
    )
    daemon.run(request)
    assert _rows(daemon, "select count(*) from gold.fact_sales where product_key = 0") == [(0,)]


def test_automation_takes_a_late_dimension_rebuild_to_the_marts(tmp_path: Path, fresh_pg_url: str) -> None:
    """A catalog landing rebuilds dim_product but no facts by itself (dimensions do not trigger
    facts); the sensor's rebuild of an old date's facts brings that date's daily mart (at the next
    5-minute tick) and the monthly marts (at the next hour), and not the facts again."""
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_PARTITIONS_START": "2026-09-01"})
    defs = build_definitions(settings, pg_url=fresh_pg_url)
    old, today = "2026-09-03", "2026-10-01"
    monthly = [["marts", name] for name in marts_reference.GRAIN if name != "daily_sales"]
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("source", ["pawmart"])
        ticks = Ticks(defs, instance)
        dims = [["gold", name] for name in ("dim_date", "dim_provider", "dim_store", "dim_product", "dim_customer")]
        ticks.materialize(*((key, None) for key in [*dims, *monthly]))
        ticks.materialize((["silver", "sales"], f"{old}|pawmart"), (["gold", "fact_sales"], f"{old}|pawmart"))
        ticks.materialize((["marts", "daily_sales"], old))
        for minutes in (1, 30, 1):  # settled past the hour: whatever automation asks for is run
            for key, partitions in ticks.tick(minutes=minutes).items():
                ticks.materialize(*((list(key), partition) for partition in partitions))
        assert ticks.tick() == {}
        ticks.materialize((["silver", "catalog"], f"{today}|pawmart"))
        requested = ticks.tick()
        assert ("gold", "dim_product") in requested
        # The old date's facts (and so its daily mart) are the sensor's to rebuild, not automation's.
        assert ("gold", "fact_sales") not in requested and ("marts", "daily_sales") not in requested
        for key, partitions in requested.items():
            ticks.materialize(*((list(key), partition) for partition in partitions))
        assert ticks.tick() == {}
        ticks.materialize((["gold", "fact_sales"], f"{old}|pawmart"))  # late_dimension_sensor's run
        requested = ticks.tick(minutes=5)  # the next 5-minute tick passed
        assert requested == {("marts", "daily_sales"): {old}}
        ticks.materialize((["marts", "daily_sales"], old))
        assert ticks.tick() == {}
        hourly = ticks.tick(minutes=60)  # the next hour passed
        assert set(hourly) >= {tuple(key) for key in monthly}
        assert ("gold", "fact_sales") not in hourly
