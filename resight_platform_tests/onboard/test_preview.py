"""``resight onboard preview`` on a partner of our own making, then the same files loaded for real.

Paw Depot sends pipe-delimited exports with month-first times and ``$`` money, statuses of its own
(``OK``, ``RET``; ``HOLD`` is in no map), one sales line twice in a file and one again in a later
file of the day, a time that is no date (``13/45/2026``), a state written ``Jersey``, and one sales
file without its ``Qty`` column. The preview must say exactly what a real run then loads,
quarantines and dead-letters, row for row, and must write nothing while saying it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from resight_platform.access import load
from resight_platform.cli import main
from resight_platform.definitions import build_definitions
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.onboard.preview import PreviewUsageError, file_keys, preview_files
from resight_platform.pipeline import run_pipeline
from resight_platform.resources import load_registry_at
from resight_platform.settings import Settings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, load_registry
from resight_platform_tests.databases import temporary_database

pytestmark = pytest.mark.xdist_group("end_to_end")

PARTNER = "paw_depot"
DAY = date(2026, 10, 5)

PROFILE = """
  paw_pos:
    format: csv
    delimiter: "|"
    encoding: utf-8
    datetime_format: "%m/%d/%Y %H:%M"
    date_format: "%m/%d/%Y"
    money_format: currency
    channel: store
    feeds:
      sales:
        columns: {Receipt: order_id, Line: line_no, Time: ordered_at, Store: store_id, Item: sku,
                  Qty: quantity, Price: unit_price, Status: status}
      stores:
        columns: {Store: store_id, Name: store_name, State: state}
"""
VALUE_MAPS = "provider,feed,map,alias,value,match,extra\npaw_depot,sales,status,OK,completed,exact,\n"
VALUE_MAPS += "paw_depot,sales,status,RET,returned,exact,\n"

HEADER = "Receipt|Line|Time|Store|Item|Qty|Price|Status\n"
FILES = {
    # Row 2: an unmapped status; row 3: not a date; row 4: row 1 again; rows 1 and 5 load.
    "sales/2026-10-05/sales_a.csv": HEADER
    + "R1|1|10/05/2026 09:15|S1|A100|2|$12.50|OK\n"
    + "R1|2|10/05/2026 09:15|S1|B200|1|$1,299.00|HOLD\n"
    + "R2|1|13/45/2026 10:00|S1|A100|1|$12.50|OK\n"
    + "R1|1|10/05/2026 09:15|S1|A100|2|$12.50|OK\n"
    + "R3|1|10/05/2026 18:05|S1|C300|3|$4.00|RET\n",
    # A later file of the day repeats R3 line 1 (a duplicate of the earlier file's row), then HOLD again.
    "sales/2026-10-05/sales_b.csv": HEADER + "R3|1|10/05/2026 18:05|S1|C300|3|$4.00|RET\n"
    "R4|1|10/05/2026 19:00|S1|A100|1|$12.50|HOLD\n",
    # No Qty column: a required column missing, the file is dead-lettered whole.
    "sales/2026-10-05/sales_c.csv": "Receipt|Line|Time|Store|Item|Price|Status\nR9|1|10/05/2026 09:00|S1|A100|$1|OK\n",
    "stores/2026-10-05/stores.csv": "Store|Name|State\nS1|Paw Depot Newark|NJ\nS2|Paw Depot Hoboken|Jersey\n",
}


def _registry(directory: Path) -> Path:
    """The packaged registry plus Paw Depot's rows."""
    shutil.copytree(DEFAULT_REGISTRY_DIR, directory)
    with (directory / "providers.csv").open("a", encoding="utf-8") as out:
        out.write(f"{PARTNER},Paw Depot,retail,paw_pos,America/New_York,USD\n")
    with (directory / "sources.csv").open("a", encoding="utf-8") as out:
        out.write(f"{PARTNER},sales,,24,true\n{PARTNER},stores,,168,true\n")
    with (directory / "profiles.yaml").open("a", encoding="utf-8") as out:
        out.write(PROFILE)
    (directory / "value_maps.csv").write_text(VALUE_MAPS, encoding="utf-8")
    return directory


def _write(root: Path) -> Path:
    """The files at their landing keys under ``root``."""
    for name, text in FILES.items():
        path = root / PARTNER / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


@dataclass
class Partner:
    home: Path
    registry_dir: Path
    files: Path
    settings: Settings
    pg_url: str
    preview: dict[str, Any]
    exit_code: int
    output: str


def _env(home: Path, registry_dir: Path, pg_url: str) -> dict[str, str]:
    return {
        "RESIGHT_HOME": str(home),
        "RESIGHT_PARTITIONS_START": "2026-09-01",
        "RESIGHT_REGISTRY_DIR": str(registry_dir),
        "RESIGHT_PG_URL": pg_url,
    }


@pytest.fixture(scope="module")
def partner(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Partner]:
    """Paw Depot previewed through the CLI (``--json``), then loaded by a real run of the same files."""
    home = tmp_path_factory.mktemp("paw_depot")
    registry_dir = _registry(home / "draft-registry")
    files = _write(home / "samples")
    for pg_url in temporary_database(pg_server_url, "preview"):
        env = _env(home, registry_dir, pg_url)
        settings = Settings.from_env(env)
        before = {"home": _tree(home), "tables": _tables(pg_url)}
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = _in_env(env, "onboard", "preview", str(files), "--json")
        assert _tree(home) == before["home"], "the preview wrote under RESIGHT_HOME"
        assert _tables(pg_url) == before["tables"], "the preview created tables in the warehouse"
        output = out.getvalue()
        # The real run: the same bytes in the landing zone, everything end to end.
        landing = Path(settings.landing_url)
        shutil.copytree(files, landing)
        defs = build_definitions(settings, pg_url)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_pipeline(
                defs, instance, landing=open_store(settings.landing_url), registry=load_registry_at(str(registry_dir))
            )
        assert report.success, report
        yield Partner(home, registry_dir, files, settings, pg_url, json.loads(output), code, output)


def _tables(pg_url: str) -> list[tuple[Any, ...]]:
    return _rows(pg_url, "select schemaname, tablename from pg_tables where schemaname not like 'pg_%' order by 1, 2")


def _rows(pg_url: str, query: str) -> list[tuple[Any, ...]]:
    with connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(query)
        return cur.fetchall()


def _file(partner: Partner, name: str) -> dict[str, Any]:
    (found,) = [f for f in partner.preview["files"] if f["key"] == f"{PARTNER}/{name}"]
    return found


def test_preview_reports_each_file_and_exits_1(partner: Partner) -> None:
    assert partner.exit_code == 1  # rows would be quarantined and a file dead-lettered
    sales_a = _file(partner, "sales/2026-10-05/sales_a.csv")
    assert (sales_a["rows_in"], sales_a["rows_loaded"], sales_a["rows_quarantined"]) == (5, 2, 3)
    assert sales_a["quarantined_by_rule"] == {"unparseable_date": 1, "unknown_status": 1, "duplicate": 1}
    assert sales_a["examples"]["unparseable_date"] == [
        {
            "row": 3,
            "raw": {
                "order_id": "R2",
                "line_no": "1",
                "ordered_at": "13/45/2026 10:00",
                "store_id": "S1",
                "channel": None,
                "sku": "A100",
                "quantity": "1",
                "unit_price": "$12.50",
                "discount": None,
                "customer_id": None,
                "status": "OK",
                "ship_state": None,
            },
        }
    ]
    assert [e["row"] for e in sales_a["examples"]["duplicate"]] == [4]
    sales_b = _file(partner, "sales/2026-10-05/sales_b.csv")
    assert (sales_b["rows_in"], sales_b["rows_loaded"]) == (2, 0)
    assert sales_b["quarantined_by_rule"] == {"unknown_status": 1, "duplicate": 1}
    # Unknown values, file by file, with the value map that would teach them.
    assert sales_a["unknown_values"] == {"status": {"map": "status", "rule": "unknown_status", "values": {"HOLD": 1}}}
    stores = _file(partner, "stores/2026-10-05/stores.csv")
    assert stores["unknown_values"] == {"state": {"map": "states", "rule": "invalid_state", "values": {"Jersey": 1}}}
    sales_c = _file(partner, "sales/2026-10-05/sales_c.csv")
    assert sales_c["dead_letter"]["code"] == "missing_columns"
    assert "quantity" in sales_c["dead_letter"]["detail"]
    assert partner.preview["total"] == {
        "files": 4,
        "rows_in": 9,
        "rows_loaded": 3,
        "rows_quarantined": 6,
        "files_dead_lettered": 1,
    }
    # The warehouse was empty: no categories, and the report says the '*' ceilings judged the lines.
    assert partner.preview["categories"].startswith("unknown")


def _preview(partner: Partner) -> Any:
    registry = load_registry(partner.registry_dir)
    return preview_files(file_keys([partner.files]), registry)


def test_preview_loads_what_the_run_loaded_row_for_row(partner: Partner) -> None:
    result = _preview(partner)
    for feed in ("sales", "stores"):
        previewed = result.silver[feed]
        lake = load(f"silver/{feed}", settings=partner.settings).collect()
        columns = [c for c in previewed.columns if c != "_ingested_at"]
        order = ["_source_file", "_row_number"]
        assert previewed.height == lake.height > 0
        assert previewed.select(columns).sort(order).equals(lake.select(columns).sort(order)), feed


def test_preview_quarantines_what_the_run_quarantined(partner: Partner) -> None:
    result = _preview(partner)
    previewed = sorted(
        (r["feed"], r["_source_file"], r["_row_number"], r["rule"], json.loads(r["raw"]))
        for r in result.quarantine.iter_rows(named=True)
    )
    stored = sorted(
        _rows(
            partner.pg_url,
            "select feed, source_file, row_number, rule, raw from ops.quarantine where provider = 'paw_depot'",
        )
    )
    assert previewed == [tuple(row) for row in stored]
    assert len(previewed) == 6


def test_preview_dead_letters_what_the_run_dead_lettered(partner: Partner) -> None:
    previewed = sorted((f["key"], f["dead_letter"]["code"]) for f in partner.preview["files"] if f["dead_letter"])
    ledger = _rows(
        partner.pg_url,
        "select file_key, error_code from ops.ingestion_ledger where status = 'dead_lettered' order by 1",
    )
    assert (
        previewed == [tuple(row) for row in ledger] == [(f"{PARTNER}/sales/2026-10-05/sales_c.csv", "missing_columns")]
    )
    # And the per-file counts the ledger keeps for loaded files are the preview's.
    counts = _rows(
        partner.pg_url,
        "select file_key, rows_in, rows_loaded, rows_quarantined from ops.ingestion_ledger"
        " where status = 'loaded' order by 1",
    )
    assert counts == sorted(
        (f["key"], f["rows_in"], f["rows_loaded"], f["rows_quarantined"])
        for f in partner.preview["files"]
        if not f["dead_letter"]
    )


def _in_env(env: dict[str, str], *argv: str) -> int:
    """``resight *argv`` with ``env`` set in the process's environment (the CLI reads it), restored after."""
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        return main(list(argv))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _cli(partner: Partner, *argv: str) -> int:
    """``resight`` with the partner's environment (warehouse, home, draft registry)."""
    return _in_env(_env(partner.home, partner.registry_dir, partner.pg_url), *argv)


def test_categories_come_from_the_warehouse_when_it_has_them(
    partner: Partner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loose = tmp_path / "kit.csv"
    loose.write_text(HEADER + "R7|1|10/05/2026 12:00|S1|B200|1|$1,299.00|OK\n", encoding="utf-8")
    argv = ["onboard", "preview", str(loose), "--provider", PARTNER, "--feed", "sales", "--date", "2026-10-05"]
    # B200 is in no catalog yet: the '*' ceiling (10,000.00) lets 1,299.00 through.
    assert _cli(partner, *argv, "--json") == 0
    assert json.loads(capsys.readouterr().out)["categories"] == "gold.dim_product: 0 products of paw_depot"
    with connect(partner.pg_url) as conn:
        conn.execute(
            "insert into gold.dim_product (product_key, provider, sku, category)"
            " values (-77, 'paw_depot', 'B200', 'toys')"
        )
    try:
        # Gold now says B200 is a toy: over the toys ceiling (500.00), as silver would judge it.
        assert _cli(partner, *argv) == 1
        out = capsys.readouterr().out
        assert "quarantined price_over_ceiling: 1" in out
        assert "categories for sales ceilings: gold.dim_product: 1 products of paw_depot" in out
    finally:
        with connect(partner.pg_url) as conn:
            conn.execute("delete from gold.dim_product where product_key = -77")


def test_a_preview_against_a_loaded_platform_changes_nothing(partner: Partner) -> None:
    ops = "select (select count(*) from ops.ingestion_ledger), (select count(*) from ops.quarantine)"
    ledger = "select file_key, checksum, status, rows_in, processed_at from ops.ingestion_ledger order by 1"
    before = (_tree(partner.home), _rows(partner.pg_url, ops), _rows(partner.pg_url, ledger), _tables(partner.pg_url))
    with contextlib.redirect_stdout(io.StringIO()):
        assert _cli(partner, "onboard", "preview", str(partner.files)) == 1
    after = (_tree(partner.home), _rows(partner.pg_url, ops), _rows(partner.pg_url, ledger), _tables(partner.pg_url))
    assert after == before
    assert before[1] == [(4, 6)]


def test_loose_files_take_provider_feed_and_date_from_the_command_line(tmp_path: Path) -> None:
    loose = tmp_path / "export.csv"
    loose.write_text(HEADER + "R1|1|10/05/2026 09:15|S1|A100|2|$12.50|OK\n", encoding="utf-8")
    keys = file_keys([loose], provider=PARTNER, feed="sales", day=DAY)
    assert keys == {f"{PARTNER}/sales/2026-10-05/export.csv": loose}
    registry = load_registry(_registry(tmp_path / "registry"))
    result = preview_files(keys, registry)
    assert not result.loses
    assert result.totals() == {
        "files": 1,
        "rows_in": 1,
        "rows_loaded": 1,
        "rows_quarantined": 0,
        "files_dead_lettered": 0,
    }
    assert result.silver["sales"].select("order_id", "unit_price", "status").rows() == [("R1", 12.5, "completed")]


def test_a_file_named_from_inside_its_landing_folder_keeps_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _write(tmp_path / "samples") / PARTNER / "stores" / "2026-10-05"
    monkeypatch.chdir(folder)
    assert file_keys([Path("stores.csv")]) == {f"{PARTNER}/stores/2026-10-05/stores.csv": Path("stores.csv")}


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    loose = tmp_path / "export.csv"
    loose.write_text(HEADER, encoding="utf-8")
    with pytest.raises(PreviewUsageError, match="give --provider and --feed"):
        file_keys([loose])
    assert main(["onboard", "preview", str(loose)]) == 2
    assert "export.csv: not at a landing key" in capsys.readouterr().err
    assert main(["onboard", "preview", str(tmp_path / "nothing-here")]) == 2
    bad = tmp_path / "registry"
    bad.mkdir()
    (bad / "providers.csv").write_text("provider\n", encoding="utf-8")
    assert (
        main(["onboard", "preview", str(loose), "--provider", PARTNER, "--feed", "sales", "--registry", str(bad)]) == 2
    )


def test_a_name_the_landing_zone_refuses_is_previewed_as_its_dead_letter(tmp_path: Path) -> None:
    folder = tmp_path / PARTNER / "sales" / "2026-10-05"
    folder.mkdir(parents=True)
    (folder / ".export.csv").write_text(HEADER, encoding="utf-8")
    (folder / "export.xlsx").write_bytes(b"PK")
    registry = load_registry(_registry(tmp_path / "registry"))
    result = preview_files(file_keys([tmp_path / PARTNER]), registry)
    assert result.loses
    assert [(f.key.rsplit("/", 1)[1], f.dead_letter and f.dead_letter[0]) for f in result.files] == [
        (".export.csv", "bad_file_name"),
        ("export.xlsx", "unsupported_format"),
    ]


ONBOARDING_DOC = Path(__file__).resolve().parents[2] / "docs" / "onboarding.md"


def _doc_blocks() -> list[str]:
    """The ``text`` code blocks of docs/onboarding.md's Preview section."""
    text = ONBOARDING_DOC.read_text(encoding="utf-8")
    section = text.split("## Preview", 1)[1].split("\n## ", 1)[0]
    return [block.split("\n```", 1)[0] for block in section.split("```text\n")[1:]]


def test_the_documented_example_is_what_the_command_prints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files_block = next(block for block in _doc_blocks() if block.startswith("samples/"))
    documented: dict[str, str] = {}
    for line in files_block.splitlines():
        if line.startswith("samples/"):
            name = line.removeprefix(f"samples/{PARTNER}/")
            documented[name] = ""
        else:
            documented[name] += line.removeprefix("    ") + "\n"
    assert documented == FILES  # the doc shows the files the example runs on
    (output,) = [block for block in _doc_blocks() if block.startswith("$ resight onboard preview")]
    command, expected = output.split("\n", 1)
    assert command == "$ resight onboard preview samples --registry draft-registry"
    registry = _registry(tmp_path / "draft-registry")
    samples = _write(tmp_path / "samples")
    env = {"RESIGHT_HOME": str(tmp_path / "home"), "RESIGHT_PG_URL": "", "RESIGHT_REGISTRY_DIR": ""}
    assert _in_env(env, "onboard", "preview", str(samples), "--registry", str(registry)) == 1
    assert capsys.readouterr().out == expected + "\n"
    assert not (tmp_path / "home").exists()
    # The doc's fix: the two value-map rows it names leave only the partner's own faults.
    fixes = ["paw_depot,sales,status,HOLD,cancelled,exact,", "paw_depot,stores,states,Jersey,NJ,exact,"]
    doc = ONBOARDING_DOC.read_text(encoding="utf-8")
    assert all(f"`{row}`" in doc for row in fixes)
    with (registry / "value_maps.csv").open("a", encoding="utf-8") as out:
        out.write("\n".join(fixes) + "\n")
    assert _in_env(env, "onboard", "preview", str(samples), "--registry", str(registry)) == 1
    total = "total: 4 files, 9 rows in, 6 would load, 3 quarantined, 1 dead-lettered"
    assert total in capsys.readouterr().out.splitlines()
    assert "`6 would load, 3 quarantined, 1 dead-lettered`" in " ".join(doc.split())


def test_a_partition_cleaned_in_chunks_previews_the_same(tmp_path: Path) -> None:
    # Two rows a chunk: sales_a's repeat of row 1 (row 4) and sales_b's of R3 fall in later chunks.
    registry = load_registry(_registry(tmp_path / "registry"))
    files = file_keys([_write(tmp_path / "samples")])
    whole, chunked = preview_files(files, registry), preview_files(files, registry, chunk_rows=2)
    assert [f.as_dict() for f in chunked.files] == [f.as_dict() for f in whole.files]
    assert chunked.totals()["rows_quarantined"] == 6
