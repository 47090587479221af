"""End to end: a generated sample through every layer into Postgres, compared with its manifest.

Real everything: files in a temporary landing zone, the lake on disk, the warehouse in Postgres,
Dagster runs on an ephemeral instance through the same jobs the demo uses.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import dagster as dg
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.closing import CLOSED
from resight_platform.defs.jobs import MEDALLION_JOB
from resight_platform.defs.metadata import DETAILED_METADATA_PARTITIONS, RANGE_END, RANGE_START
from resight_platform.defs.ml import ML_KEYS
from resight_platform.io.lake import read_table
from resight_platform.io.postgres import connect
from resight_platform.io.storage import open_store
from resight_platform.pipeline import run_pipeline
from resight_platform.sample import generate
from resight_platform.settings import Settings
from resight_platform.sources.registry import load_registry
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.transforms import marts_reference

pytestmark = pytest.mark.xdist_group("end_to_end")

# 30 providers cover every export profile, the CAD distributor and every kind of partner.
PROVIDERS = 30
DAYS = 3
START = date(2026, 10, 1)


def _one_per_profile() -> list[str]:
    """The first registered provider of each export profile: every reader and spelling, a fifth
    of the partners."""
    first: dict[str, str] = {}
    for slug, provider in load_registry().providers.items():
        first.setdefault(provider.profile, slug)
    return list(first.values())


@dataclass
class Loaded:
    settings: Settings
    manifest: dict[str, Any]
    pg_url: str
    instance: dg.DagsterInstance
    defs: dg.Definitions


@pytest.fixture(scope="session")  # built once per worker process
def loaded(tmp_path_factory: pytest.TempPathFactory, pg_server_url: str) -> Iterator[Loaded]:
    home = tmp_path_factory.mktemp("resight")
    settings = Settings.from_env({"RESIGHT_HOME": str(home), "RESIGHT_PARTITIONS_START": "2026-09-01"})
    generate(settings.landing_url, providers=PROVIDERS, days=DAYS, start=START, seed=11)
    manifest = json.loads((home / "manifest.json").read_text())
    for pg_url in temporary_database(pg_server_url, "e2e"):
        defs = build_definitions(settings, pg_url)
        with dg.DagsterInstance.ephemeral() as instance:
            report = run_pipeline(defs, instance, landing=open_store(settings.landing_url), registry=load_registry())
            assert report.success
            yield Loaded(settings, manifest, pg_url, instance, defs)


def _rows(pg_url: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall()


def test_fact_sales_matches_manifest_per_date_and_provider(loaded: Loaded) -> None:
    got = {
        (d.isoformat(), p): (n, s)
        for d, p, n, s in _rows(
            loaded.pg_url,
            "select f.sale_date, p.provider, count(*), sum(f.net_amount) from gold.fact_sales f"
            " join gold.dim_provider p using (provider_key) group by 1, 2",
        )
    }
    expected = {
        (r["date"], r["provider"]): (r["lines"], Decimal(r["net_amount"]))
        for r in loaded.manifest["sales"]["by_date_provider"]
        if r["lines"]
    }
    assert got == expected
    total_lines, total_net = _rows(loaded.pg_url, "select count(*), sum(net_amount) from gold.fact_sales")[0]
    assert total_lines == loaded.manifest["sales"]["lines"]
    assert total_net == Decimal(loaded.manifest["sales"]["net_amount"])


def test_quarantine_matches_manifest_per_feed_and_rule(loaded: Loaded) -> None:
    got: dict[str, dict[str, int]] = {}
    for feed, rule, n in _rows(loaded.pg_url, "select feed, rule, count(*) from ops.quarantine group by 1, 2"):
        got.setdefault(feed, {})[rule] = n
    expected = {feed: rules for feed, rules in loaded.manifest["quarantine"].items() if rules}
    assert got == expected


def test_dead_letters_match_manifest(loaded: Loaded) -> None:
    got = dict(
        _rows(loaded.pg_url, "select file_key, error_code from ops.ingestion_ledger where status = 'dead_lettered'")
    )
    expected = {r["key"]: r["reason"] for r in loaded.manifest["dead_letter"]}
    assert got == expected
    # every dead-lettered file was copied with a reason file
    dead = open_store(loaded.settings.dead_letter_url)
    reasons = [json.loads(dead.read_bytes(i.key)) for i in dead.list() if i.key.endswith(".reason.json")]
    assert {r["key"]: r["reason"] for r in reasons} == expected


def test_rows_reconcile_for_every_file(loaded: Loaded) -> None:
    broken = _rows(
        loaded.pg_url,
        "select file_key, rows_in, rows_loaded, rows_quarantined from ops.ingestion_ledger"
        " where status = 'loaded' and rows_in <> rows_loaded + rows_quarantined",
    )
    assert broken == []
    per_feed = dict(
        _rows(loaded.pg_url, "select feed, sum(rows_in) from ops.ingestion_ledger where status = 'loaded' group by 1")
    )
    assert per_feed == {feed: n for feed, n in loaded.manifest["rows_in"].items() if n}


def test_dimensions_hold_every_valid_member(loaded: Loaded) -> None:
    counts = dict(
        _rows(
            loaded.pg_url,
            "select 'products', count(*) from gold.dim_product where product_key <> 0"
            " union all select 'stores', count(*) from gold.dim_store where store_key <> 0"
            " union all select 'customers', count(*) from gold.dim_customer where customer_key <> 0",
        )
    )
    assert counts["products"] == loaded.manifest["catalog"]["products"]
    assert counts["stores"] == loaded.manifest["stores"]["stores"]
    assert counts["customers"] == loaded.manifest["customers"]["customers"]
    unknown = _rows(loaded.pg_url, "select count(*) from gold.fact_sales where product_key = 0")[0][0]
    assert unknown == 0


def test_marts_total_equals_completed_fact_revenue(loaded: Loaded) -> None:
    (fact_completed,) = _rows(loaded.pg_url, "select sum(net_amount) from gold.fact_sales where status = 'completed'")[
        0
    ]
    (daily,) = _rows(loaded.pg_url, "select sum(revenue) from marts.daily_sales")[0]
    (monthly,) = _rows(loaded.pg_url, "select sum(revenue) from marts.monthly_sales")[0]
    assert daily == monthly == fact_completed
    assert Decimal(loaded.manifest["sales"]["by_status"]["completed"]["net_amount"]) == fact_completed
    shares = _rows(
        loaded.pg_url,
        "select month, category, species, region, sum(share) from marts.brand_share_monthly group by 1, 2, 3, 4",
    )
    assert shares and all(abs(s - 1.0) < 1e-9 for *_, s in shares)


def test_every_mart_row_equals_an_independent_computation_from_the_facts(loaded: Loaded) -> None:
    """Each mart in Postgres against the same figures computed again in plain Python from
    ``gold.fact_sales`` and the dimensions (``transforms/marts_reference.py``)."""
    with connect(loaded.pg_url) as conn:
        expected = marts_reference.expected_marts(conn)
        for name in marts_reference.GRAIN:
            got = marts_reference.mart_rows(conn, name)
            assert got, f"marts.{name} is empty"
            assert marts_reference.differences(name, expected[name], got) == []


def _check_evaluations(loaded: Loaded, asset: list[str], name: str) -> list[dg.AssetCheckEvaluation]:
    """Every evaluation of the check ``name`` of ``asset`` recorded by the pipeline's runs."""
    key = dg.AssetCheckKey(dg.AssetKey(asset), name)
    records = loaded.instance.event_log_storage.get_asset_check_execution_history(key, limit=10_000)
    evaluations = []
    for record in records:
        # Dagster 1.13 records a planned execution per partition of a range run and the run's one
        # evaluation beside them (checks are per asset, not per partition): skip the planned rows.
        if record.status.value == "PLANNED":
            continue
        assert record.event is not None and record.event.dagster_event is not None
        evaluations.append(record.event.dagster_event.event_specific_data)  # type: ignore[arg-type]
    return evaluations


def test_every_model_check_ran_and_passed_on_every_row_written(loaded: Loaded) -> None:
    for node in loaded.defs.resolve_asset_graph().asset_nodes:
        if node.key.path[0] not in ("silver", "gold", "marts"):
            continue  # ops/landing's check is the landing sensor's, not a run's
        if node.key in ML_KEYS:
            continue  # three days are too short for the ML job: defs/test_ml.py runs its checks
        for check_key in node.check_keys:
            evaluations = _check_evaluations(loaded, list(check_key.asset_key.path), check_key.name)
            assert evaluations, f"{check_key.to_user_string()} never ran"
            failed = [e.metadata for e in evaluations if not e.passed]
            assert not failed, f"{check_key.to_user_string()} failed: {failed}"
    checked = sum(
        int(e.metadata["rows_checked"].value)  # type: ignore[arg-type]
        for e in _check_evaluations(loaded, ["silver", "sales"], "matches_model")
    )
    facts = sum(
        int(e.metadata["rows_checked"].value)  # type: ignore[arg-type]
        for e in _check_evaluations(loaded, ["gold", "fact_sales"], "matches_model")
    )
    assert checked == facts == loaded.manifest["sales"]["lines"]  # every loaded line, once per layer


def test_facts_reconcile_with_silver_per_date_and_source(loaded: Loaded) -> None:
    (evaluation, *_) = _check_evaluations(loaded, ["gold", "fact_sales"], "reconciles_with_silver")
    assert evaluation.passed
    assert evaluation.metadata["gold_lines"].value == evaluation.metadata["silver_lines"].value
    assert evaluation.metadata["gold_lines"].value == loaded.manifest["sales"]["lines"]


def test_quality_report_counts_what_the_manifest_says(
    loaded: Loaded, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from resight_platform.cli import main

    monkeypatch.setenv("RESIGHT_HOME", str(loaded.settings.home))
    monkeypatch.setenv("RESIGHT_PG_URL", loaded.pg_url)
    end = START.toordinal() + DAYS - 1
    args = ["quality", "--from", START.isoformat(), "--to", date.fromordinal(end).isoformat()]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_rule: dict[str, dict[str, int]] = {}
    for source in report["sources"]:
        for rule, n in source["quarantined_by_rule"].items():
            by_rule.setdefault(source["feed"], {}).setdefault(rule, 0)
            by_rule[source["feed"]][rule] += n
        assert source["rows_in"] == source["rows_loaded"] + source["rows_quarantined"]
    assert by_rule == {feed: rules for feed, rules in loaded.manifest["quarantine"].items() if rules}
    sales_loaded = sum(s["rows_loaded"] for s in report["sources"] if s["feed"] == "sales")
    assert sales_loaded == loaded.manifest["sales"]["lines"]
    dead = _rows(
        loaded.pg_url,
        "select count(*) from ops.ingestion_ledger where status = 'dead_lettered' and provider is not null",
    )[0][0]
    assert sum(s["files_dead_lettered"] for s in report["sources"]) == dead > 0
    assert main(args) == 0  # the tables people read
    text = capsys.readouterr().out
    assert "quarantined by rule" in text and "dead-lettered files by reason" in text and "stale sources now" in text


def _quarantine_by_partition(pg_url: str) -> dict[str, dict[str, int]]:
    expected: dict[str, dict[str, int]] = {}
    for day, provider, rule, n in _rows(
        pg_url,
        "select business_date, provider, rule, count(*) from ops.quarantine where feed = 'sales' group by 1, 2, 3",
    ):
        expected.setdefault(f"{day}|{provider}", {})[rule] = n
    return expected


def test_silver_metadata_has_each_partitions_own_counts_in_a_small_run_and_in_a_backfill(loaded: Loaded) -> None:
    expected = _quarantine_by_partition(loaded.pg_url)
    assert expected
    key = dg.AssetKey(["silver", "sales"])
    backfill = loaded.instance.fetch_materializations(key, limit=10_000).records
    assert len(backfill) > DETAILED_METADATA_PARTITIONS
    # The pipeline's range run is a backfill: no table of every partition's counts (Dagster would
    # store it once per partition), but each partition's own counts (io/lake.add_partition_metadata),
    # equal to ops.quarantine's.
    latest: dict[str, dg.AssetMaterialization] = {}
    for record in backfill:  # newest first: each partition's latest
        event = record.asset_materialization
        assert event is not None and "quarantined_by_partition" not in event.metadata
        latest.setdefault(str(event.partition), event)
    for partition, event in latest.items():
        if CLOSED in event.metadata:  # no file was expected (the pipeline's closing): nothing quarantined
            assert partition not in expected and event.metadata["dagster/row_count"].value == 0
            continue
        by_rule = event.metadata["quarantined_by_rule"].value
        assert by_rule == expected.get(partition, {}), partition
        assert event.metadata["rows_quarantined"].value == sum(expected.get(partition, {}).values())
    # A run of a few partitions (one day, two neighbouring sources with quarantined rows) carries
    # each partition's own counts, which equal ops.quarantine's.
    sources = loaded.instance.get_dynamic_partitions("source")
    day = START.isoformat()
    first, last = next(
        (a, b) for a, b in itertools.pairwise(sources) if f"{day}|{a}" in expected and f"{day}|{b}" in expected
    )
    result = loaded.defs.resolve_job_def(MEDALLION_JOB).execute_in_process(
        instance=loaded.instance, tags={RANGE_START: f"{day}|{first}", RANGE_END: f"{day}|{last}"}
    )
    assert result.success
    records = loaded.instance.fetch_materializations(key, limit=2).records
    seen = {}
    for record in records:
        event = record.asset_materialization
        assert event is not None and event.partition is not None
        seen[event.partition] = event.metadata["quarantined_by_partition"].value[event.partition]  # type: ignore[index]
    assert seen == {k: expected[k] for k in (f"{day}|{first}", f"{day}|{last}")}
    assert _quarantine_by_partition(loaded.pg_url) == expected  # the rerun replaced, not added


def test_rerun_is_idempotent(loaded: Loaded) -> None:
    before = _rows(loaded.pg_url, "select count(*), sum(net_amount) from gold.fact_sales")[0]
    quarantine_before = _rows(loaded.pg_url, "select count(*) from ops.quarantine")[0]
    # The first day again: each of its partitions replaced by the same rows (a whole rerun costs
    # three times as much and proves no more).
    report = run_pipeline(
        loaded.defs,
        loaded.instance,
        landing=open_store(loaded.settings.landing_url),
        registry=load_registry(),
        dates=(START, START),
    )
    assert report.success
    assert _rows(loaded.pg_url, "select count(*), sum(net_amount) from gold.fact_sales")[0] == before
    assert _rows(loaded.pg_url, "select count(*) from ops.quarantine")[0] == quarantine_before


def test_lake_holds_gold_parquet_for_data_scientists(loaded: Loaded) -> None:
    lake = open_store(loaded.settings.lake_url)
    day = START.isoformat()
    by_provider = {r["provider"]: r for r in loaded.manifest["sales"]["by_date_provider"] if r["date"] == day}
    fact = read_table(lake, ["gold", "fact_sales"], [{"date": day, "source": p} for p in by_provider]).collect()
    assert fact.height == sum(r["lines"] for r in by_provider.values())
    silver = read_table(lake, ["silver", "sales"], [{"date": day, "source": "pawmart"}]).collect()
    assert silver.height == by_provider["pawmart"]["lines"]
    assert silver["provider"].unique().to_list() == ["pawmart"]
    assert Decimal(str(round(silver["net_amount"].sum(), 2))) == Decimal(by_provider["pawmart"]["net_amount"])


def test_partitions_and_runs_recorded_in_dagster(loaded: Loaded) -> None:
    materialized = loaded.instance.get_materialized_partitions(dg.AssetKey(["silver", "sales"]))
    assert f"{START.isoformat()}|pawmart" in materialized
    facts = loaded.instance.get_materialized_partitions(dg.AssetKey(["gold", "fact_sales"]))
    assert f"{START.isoformat()}|pawmart" in facts
    daily = loaded.instance.get_materialized_partitions(dg.AssetKey(["marts", "daily_sales"]))
    assert START.isoformat() in daily


def test_same_pipeline_on_an_s3_endpoint(
    s3_endpoint: str, s3_bucket_url: str, fresh_pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Landing zone and lake on S3 over HTTP (moto server): the same code, the same answers."""
    bucket = s3_bucket_url.rsplit("/", 1)[0]
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path_factory.mktemp("s3home")),
            "RESIGHT_LANDING_URL": f"{bucket}/landing",
            "RESIGHT_LAKE_URL": f"{bucket}/lake",
            "AWS_ENDPOINT_URL": s3_endpoint,
            "RESIGHT_PARTITIONS_START": "2026-09-01",
        }
    )
    manifest = generate(
        settings.landing_url, provider_slugs=_one_per_profile(), days=1, start=START, seed=3, endpoint_url=s3_endpoint
    )
    defs = build_definitions(settings, fresh_pg_url)
    with dg.DagsterInstance.ephemeral() as instance:
        report = run_pipeline(
            defs,
            instance,
            landing=open_store(settings.landing_url, s3_endpoint),
            registry=load_registry(),
        )
    assert report.success
    lines, net = _rows(fresh_pg_url, "select count(*), sum(net_amount) from gold.fact_sales")[0]
    assert (lines, net) == (manifest.sales["lines"], Decimal(manifest.sales["net_amount"]))
    lake = open_store(settings.lake_url, s3_endpoint)
    keys = [info.key for info in lake.list("gold/fact_sales/")]
    sources = {p["provider"] for p in manifest.sales["by_date_provider"]}
    assert {f"gold/fact_sales/date={START.isoformat()}/source={s}/part-0.parquet" for s in sources} <= set(keys)
    assert all(k.startswith(f"gold/fact_sales/date={START.isoformat()}/source=") for k in keys)
    dead = dict(
        _rows(fresh_pg_url, "select file_key, error_code from ops.ingestion_ledger where status = 'dead_lettered'")
    )
    assert dead == {r["key"]: r["reason"] for r in manifest.dead_letter}
    assert any(i.key.endswith(".reason.json") for i in lake.list("dead_letter/"))
