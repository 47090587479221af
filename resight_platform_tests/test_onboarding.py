"""Onboarding a stranger by registry rows alone, end to end.

Corner Pets is a small pet retailer the sample generator knows nothing of: a semicolon POS export
with day-first dates and ``$1,299.00`` money, a status vocabulary of its own (``SOLD``, ``RTN``, a
one-letter ``V`` for void), a unit (``EA``) and a species word (``Doggo``) no global table knows, a
state written ``Calif.``, a general-merchandise catalog without species for some items, a
customers export without signup dates, ``.csv`` one day and ``.csv.gz`` the next — and its catalog
arrives the day after its first sales. It is onboarded by adding rows to a copy of the registry
directory (``RESIGHT_REGISTRY_DIR``); no package file changes. Every expected figure below is
worked out by hand from the files in this module.
"""

from __future__ import annotations

import gzip
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest

from resight_platform.access import load
from resight_platform.cli import main
from resight_platform.definitions import build_definitions
from resight_platform.io.postgres import connect, sqlalchemy_url
from resight_platform.io.storage import open_store
from resight_platform.pipeline import run_pipeline
from resight_platform.resources import load_registry_at
from resight_platform.settings import Settings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.onboard.test_suggest import MARKET_RECORDS, _json_lines
from resight_platform_tests.test_cli import _drop_role

pytestmark = pytest.mark.xdist_group("end_to_end")

PARTNER = "corner_pets"
DAY1 = date(2026, 10, 5)
DAY2 = date(2026, 10, 6)

PROFILE = """
  corner_pos:
    format: csv
    delimiter: ";"
    encoding: utf-8
    datetime_format: "%d/%m/%Y %H:%M"
    date_format: "%d/%m/%Y"
    money_format: currency
    channel: store
    feeds:
      sales:
        columns: {Ticket: order_id, Ln: line_no, When: ordered_at, Shop: store_id, Item: sku,
                  Qty: quantity, Price: unit_price, "Off": discount, Card: customer_id, Flag: status}
      catalog:
        columns: {Item: sku, Desc: product_name, Make: brand, Dept: category, Pet: species,
                  Size: pack_size, UOM: pack_unit, Price: list_price}
        defaults: {species: other}
      stores:
        columns: {Shop: store_id, Name: store_name, Town: city, St: state}
      customers:
        columns: {Card: customer_id, St: state}
"""

VALUE_MAPS = """provider,feed,map,alias,value,match,extra
corner_pets,sales,status,SOLD,completed,exact,
corner_pets,sales,status,RTN,returned,exact,
corner_pets,sales,status,v(oid)?,cancelled,regex,
corner_pets,catalog,units,EA,ct,exact,
corner_pets,,species,Doggo,dog,exact,
corner_pets,,states,Calif.,CA,exact,
"""

SALES_HEADER = "Ticket;Ln;When;Shop;Item;Qty;Price;Off;Card;Flag\n"
# Day 1, Los Angeles time. T4's 31 February is not a date: quarantined as unparseable_date.
SALES_DAY1 = SALES_HEADER + (
    "T1;1;05/10/2026 09:15;S1;A100;2;$12.50;$0.00;C1;SOLD\n"
    'T1;2;05/10/2026 09:15;S1;B200;1;"$1,299.00";$99.00;C1;SOLD\n'
    "T2;1;05/10/2026 17:40;S1;A100;1;$12.50;;;RTN\n"
    "T3;1;05/10/2026 18:05;S1;C300;3;$4.00;$0.00;C9;V\n"
    "T4;1;31/02/2026 10:00;S1;A100;1;$12.50;$0.00;;SOLD\n"
)
SALES_DAY2 = SALES_HEADER + "T5;1;06/10/2026 11:00;S1;A100;4;$12.50;$0.00;C2;SOLD\n"
STORES_DAY1 = "Shop;Name;Town;St\nS1;Corner Pets Downtown;Los Angeles;Calif.\n"
CATALOG_DAY2 = (
    "Item;Desc;Make;Dept;Pet;Size;UOM;Price\n"
    "A100;Kibble 5 lb;Purina ONE;dog food;Doggo;5;lb;$12.50\n"
    'B200;Aquarium kit;Fluval;supplies;;1;EA;"$1,299.00"\n'
)
CUSTOMERS_DAY2 = "Card;St\nC1;Calif.\nC2;CA\n"


@dataclass
class Onboarded:
    settings: Settings
    pg_url: str
    registry_dir: Path


def _registry(tmp: Path) -> Path:
    """The packaged registry plus Corner Pets' rows."""
    directory = tmp / "registry"
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    with (directory / "providers.csv").open("a", encoding="utf-8") as out:
        out.write(f"{PARTNER},Corner Pets,retail,corner_pos,America/Los_Angeles,USD\n")
    with (directory / "sources.csv").open("a", encoding="utf-8") as out:
        for feed, every in (("sales", 24), ("catalog", 168), ("stores", 168), ("customers", 168)):
            out.write(f"{PARTNER},{feed},,{every},true\n")
    with (directory / "profiles.yaml").open("a", encoding="utf-8") as out:
        out.write(PROFILE)
    (directory / "value_maps.csv").write_text(VALUE_MAPS, encoding="utf-8")
    return directory


def _land(landing: Path, feed: str, day: date, name: str, text: str) -> None:
    folder = landing / PARTNER / feed / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    data = text.encode("utf-8")
    (folder / name).write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)


def _run(onboarded: Onboarded) -> None:
    """What ``resight run`` does: everything in the landing zone, end to end."""
    defs = build_definitions(onboarded.settings, onboarded.pg_url)
    registry = load_registry_at(str(onboarded.registry_dir))
    with dg.DagsterInstance.ephemeral() as instance:
        report = run_pipeline(defs, instance, landing=open_store(onboarded.settings.landing_url), registry=registry)
    assert report.success, report


def _rows(pg_url: str, query: str) -> list[tuple[Any, ...]]:
    with connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def _member(key: str) -> str:
    """A fact's surrogate key as what it means: no member, the unknown member, or a known one."""
    return f"case when f.{key} is null then 'none' when f.{key} = 0 then 'unknown' else 'known' end"


def _facts(pg_url: str) -> list[tuple[Any, ...]]:
    return _rows(
        pg_url,
        f"select f.order_id, f.line_no, f.sku, {_member('product_key')}, f.store_id, {_member('store_key')},"
        f" f.customer_id, {_member('customer_key')}, f.status, f.net_amount from gold.fact_sales f order by 1, 2",
    )


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Onboarded]:
    home = tmp_path_factory.mktemp("onboarding")
    registry_dir = _registry(home)
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(home),
            "RESIGHT_PARTITIONS_START": "2026-09-01",
            "RESIGHT_REGISTRY_DIR": str(registry_dir),
        }
    )
    for pg_url in temporary_database(pg_server_url, "onboarding"):
        yield Onboarded(settings, pg_url, registry_dir)


@pytest.fixture(scope="module")
def day1(onboarded: Onboarded) -> Onboarded:
    landing = Path(onboarded.settings.landing_url)
    _land(landing, "sales", DAY1, "sales_20261005.csv", SALES_DAY1)
    _land(landing, "stores", DAY1, "stores.csv", STORES_DAY1)
    _run(onboarded)
    return onboarded


def test_the_package_registry_is_untouched() -> None:
    assert PARTNER not in (DEFAULT_REGISTRY_DIR / "providers.csv").read_text(encoding="utf-8")
    assert not (DEFAULT_REGISTRY_DIR / "value_maps.csv").exists()


def test_day_one_sales_before_the_catalog_load_on_the_unknown_product(day1: Onboarded) -> None:
    # net = quantity x price - discount: 2 x 12.50; 1,299.00 - 99.00; 12.50; 3 x 4.00.
    assert _facts(day1.pg_url) == [
        ("T1", 1, "A100", "unknown", "S1", "known", "C1", "unknown", "completed", Decimal("25.00")),
        ("T1", 2, "B200", "unknown", "S1", "known", "C1", "unknown", "completed", Decimal("1200.00")),
        ("T2", 1, "A100", "unknown", "S1", "known", None, "none", "returned", Decimal("12.50")),
        ("T3", 1, "C300", "unknown", "S1", "known", "C9", "unknown", "cancelled", Decimal("12.00")),
    ]
    # The day-first time is local (Los Angeles, PDT): 09:15 on 5 October is 16:15 UTC.
    (ordered,) = _rows(day1.pg_url, "select min(ordered_at) at time zone 'UTC' from gold.fact_sales")[0]
    assert (ordered.date(), ordered.hour, ordered.minute) == (DAY1, 16, 15)
    rule = _rows(day1.pg_url, "select rule, row_number from ops.quarantine where provider = 'corner_pets'")
    assert rule == [("unparseable_date", 5)]
    # The store's own spelling of its state was mapped: Calif. -> CA, a West store.
    assert _rows(day1.pg_url, "select state, region from gold.dim_store where store_id = 'S1'") == [("CA", "West")]
    # The monthly marts build on unknown members and name the products by the partner's SKU.
    top = _rows(
        day1.pg_url,
        "select sku, product_name, units, revenue from marts.top_products_monthly"
        " where provider = 'corner_pets' order by rank",
    )
    assert top == [("B200", None, 1, Decimal("1200.00")), ("A100", None, 2, Decimal("25.00"))]


@pytest.fixture(scope="module")
def day2(day1: Onboarded) -> Onboarded:
    landing = Path(day1.settings.landing_url)
    _land(landing, "sales", DAY2, "sales_20261006.csv.gz", SALES_DAY2)
    _land(landing, "catalog", DAY2, "catalog.csv", CATALOG_DAY2)
    _land(landing, "customers", DAY2, "customers.csv", CUSTOMERS_DAY2)
    _run(day1)
    return day1


def test_day_two_catalog_re_resolves_day_one_and_the_marts_follow(day2: Onboarded) -> None:
    facts = _facts(day2.pg_url)
    assert [(f[0], f[1], f[2], f[3], f[7]) for f in facts] == [
        ("T1", 1, "A100", "known", "known"),  # product and customer C1 now known
        ("T1", 2, "B200", "known", "known"),
        ("T2", 1, "A100", "known", "none"),  # anonymous: no customer to resolve
        ("T3", 1, "C300", "unknown", "unknown"),  # still in no catalog, customer C9 in no list
        ("T5", 1, "A100", "known", "known"),  # the .csv.gz of day 2 loaded like day 1's .csv
    ]
    assert sum(f[9] for f in facts) == Decimal("1299.50")
    top = _rows(
        day2.pg_url,
        "select sku, product_name, brand, category, species, units, revenue from marts.top_products_monthly"
        " where provider = 'corner_pets' order by rank",
    )
    assert top == [
        ("B200", "Aquarium kit", "Fluval", "supplies", "other", 1, Decimal("1200.00")),
        ("A100", "Kibble 5 lb", "Purina ONE", "food", "dog", 6, Decimal("75.00")),
    ]
    status = _rows(
        day2.pg_url,
        "select status, lines, amount from marts.order_status_impact where month = '2026-10-01'"
        " and category = 'other' order by status",
    )
    assert status == [("cancelled", 1, Decimal("12.00"))]


def test_silver_says_which_values_the_registry_gave(day2: Onboarded) -> None:
    catalog = load("silver/catalog", settings=day2.settings).collect().sort("sku")
    assert catalog.select("sku", "species", "pack_unit", "_from_registry").rows() == [
        ("A100", "dog", "lb", None),
        ("B200", "other", "ct", "species"),
    ]
    customers = load("silver/customers", settings=day2.settings).collect().sort("customer_id")
    assert customers.select("customer_id", "signup_date", "state").rows() == [("C1", None, "CA"), ("C2", None, "CA")]
    assert customers.schema["signup_date"] == pl.Date


def test_the_ledger_has_every_file_loaded(day2: Onboarded) -> None:
    ledger = _rows(
        day2.pg_url,
        "select file_key, status, rows_in, rows_loaded, rows_quarantined from ops.ingestion_ledger"
        " where provider = 'corner_pets' order by file_key",
    )
    assert ledger == [
        ("corner_pets/catalog/2026-10-06/catalog.csv", "loaded", 2, 2, 0),
        ("corner_pets/customers/2026-10-06/customers.csv", "loaded", 2, 2, 0),
        ("corner_pets/sales/2026-10-05/sales_20261005.csv", "loaded", 5, 4, 1),
        ("corner_pets/sales/2026-10-06/sales_20261006.csv.gz", "loaded", 1, 1, 0),
        ("corner_pets/stores/2026-10-05/stores.csv", "loaded", 1, 1, 0),
    ]


# --- docs/onboarding.md's worked example, from a sample file to gold ---------------------------------


def _console_blocks(docs: str, heading: str) -> list[list[tuple[str, str]]]:
    """The ``console`` blocks of the docs section under ``heading``: per block, each ``$`` command
    with the output printed under it."""
    section = docs[docs.index(heading) :]
    end = section.find("\n## ")
    section = section if end < 0 else section[:end]
    blocks = []
    for chunk in section.split("```console\n")[1:]:
        commands: list[tuple[str, str]] = []
        for line in chunk[: chunk.index("```")].splitlines(keepends=True):
            if line.startswith("$ "):
                commands.append((line[2:].rstrip("\n"), ""))
            else:
                command, out = commands[-1]
                commands[-1] = (command, out + line)
        blocks.append(commands)
    return blocks


def test_the_documented_example_reaches_gold(
    tmp_path: Path, pg_server_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """docs/onboarding.md's odd_market, command by command: suggest, check, land, run, query."""
    docs = (Path(__file__).parents[1] / "docs" / "onboarding.md").read_text(encoding="utf-8")
    suggest = next(
        command for block in _console_blocks(docs, "## Suggest") for command, _ in block if "onboard suggest" in command
    )
    blocks = _console_blocks(docs, "## To gold: the example, loaded")
    assert len(blocks) == 3, "check, land and run, query"

    monkeypatch.chdir(tmp_path)
    for name in (
        "RESIGHT_LANDING_URL",
        "RESIGHT_LAKE_URL",
        "RESIGHT_REGISTRY_DIR",
        "RESIGHT_PARTITIONS_START",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESIGHT_HOME", ".resight")  # the embedded default's, relative to the directory
    (tmp_path / "samples").mkdir()
    (tmp_path / "samples" / "orders_2026-01-03.jsonl").write_text(_json_lines(MARKET_RECORDS), encoding="utf-8")
    _run_documented([[(suggest, "...\n")]], tmp_path, monkeypatch, capsys)

    for warehouse in temporary_database(pg_server_url, "onboarding_docs"):
        for dagster_db in temporary_database(pg_server_url, "onboarding_docs_dagster"):
            monkeypatch.setenv("RESIGHT_PG_URL", warehouse)
            monkeypatch.setenv("RESIGHT_DAGSTER_PG_URL", sqlalchemy_url(dagster_db))
            # On a server of its own the analyst logs in with a password (the embedded default
            # needs none); roles are cluster-wide, so this test's own, dropped after.
            role = f"analyst_{uuid.uuid4().hex[:8]}"
            monkeypatch.setenv("RESIGHT_ANALYST_ROLE", role)
            monkeypatch.setenv("RESIGHT_ANALYST_PASSWORD", f"pw-{uuid.uuid4().hex}")
            try:
                _run_documented(blocks, tmp_path, monkeypatch, capsys)
            finally:
                _drop_role(warehouse, role)


def _run_documented(
    blocks: list[list[tuple[str, str]]],
    cwd: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Each command of ``blocks`` in order: ``resight`` ones through the CLI's ``main`` with their
    output compared (only its tail after a ``...`` line), ``export`` into the environment, the rest
    in a shell in ``cwd``."""
    capsys.readouterr()
    for block in blocks:
        for command, expected in block:
            if command.startswith("resight "):
                assert main(shlex.split(command)[1:]) == 0, command
                out = capsys.readouterr().out
                if expected.startswith("...\n"):  # progress elided: the tail is compared
                    assert out.endswith(expected.removeprefix("...\n")), f"{command}:\n{out}"
                else:
                    assert out == expected, command
            elif command.startswith("export "):
                name, value = command.removeprefix("export ").split("=", 1)
                monkeypatch.setenv(name, value)
            else:
                assert not expected, command
                subprocess.run(command, shell=True, check=True, cwd=cwd)
