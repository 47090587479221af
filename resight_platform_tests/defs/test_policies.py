"""Declarative automation of the real asset graph, evaluated by Dagster's own evaluator tick by tick.

Materialisations are reported as runless events (what a finished run records); each test then asks
what the next automation tick would request.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.partitions import SOURCE_PARTITIONS
from resight_platform.defs.policies import FACTS_IN_RUN, SILVER_IN_RUN, follow_inputs
from resight_platform.defs.sensors import TRIGGER_TAG
from resight_platform.settings import Settings

DAY = "2026-10-01"
DIMENSIONS = ["dim_date", "dim_provider", "dim_store", "dim_product", "dim_customer"]


class Ticks:
    """Automation ticks over one instance, carrying the evaluator's cursor between them."""

    def __init__(self, defs: dg.Definitions, instance: dg.DagsterInstance) -> None:
        self.defs, self.instance = defs, instance
        self.cursor: object = None
        self.now = datetime(2026, 10, 2, 10, 30, tzinfo=UTC)

    def tick(self, minutes: int = 1) -> dict[tuple[str, ...], set[str | None]]:
        self.now += timedelta(minutes=minutes)
        result = dg.evaluate_automation_conditions(
            defs=self.defs,
            instance=self.instance,
            cursor=self.cursor,
            evaluation_time=self.now,  # type: ignore[arg-type]
        )
        self.cursor = result.cursor
        requested: dict[tuple[str, ...], set[str | None]] = {}
        for r in result.results:
            if r.true_subset.size:
                keys = r.true_subset.expensively_compute_partition_keys() if r.true_subset.is_partitioned else {None}
                requested[tuple(r.key.path)] = set(keys)  # type: ignore[union-attr]
        return requested

    def materialize(self, *keys: tuple[list[str], str | None]) -> None:
        for path, partition in keys:
            self.instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=path, partition=partition))


@pytest.fixture
def ticks(tmp_path: Path, fresh_pg_url: str) -> Iterator[Ticks]:
    settings = Settings.from_env({"RESIGHT_HOME": str(tmp_path), "RESIGHT_PARTITIONS_START": "2026-09-01"})
    defs = build_definitions(settings, pg_url=fresh_pg_url)
    with dg.instance_for_test() as instance:
        assert SOURCE_PARTITIONS.name is not None
        instance.add_dynamic_partitions(SOURCE_PARTITIONS.name, ["pawmart", "petopia"])
        yield Ticks(defs, instance)


def test_a_fresh_instance_builds_its_dimensions_first(ticks: Ticks) -> None:
    ticks.tick()  # a condition's first evaluation only starts its clock
    requested = ticks.tick()
    assert {key for key in requested if key[0] == "gold"} == {("gold", name) for name in DIMENSIONS}
    assert ("gold", "fact_sales") not in requested


def test_silver_update_brings_that_partitions_facts_and_nothing_else(ticks: Ticks) -> None:
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    ticks.materialize((["silver", "sales"], f"{DAY}|pawmart"))
    requested = ticks.tick()
    assert requested[("gold", "fact_sales")] == {f"{DAY}|pawmart"}  # that date × source only
    assert ("silver", "sales") not in requested
    assert ("marts", "daily_sales") not in requested  # next tick, after the facts
    ticks.materialize((["gold", "fact_sales"], f"{DAY}|pawmart"))
    assert ("marts", "daily_sales") not in ticks.tick()  # 10:33: gathered until the next 5 minutes
    assert ticks.tick(minutes=3).get(("marts", "daily_sales")) == {DAY}  # 10:36: the 10:35 tick passed


def test_bronze_update_brings_silver_and_facts_in_the_same_tick(ticks: Ticks) -> None:
    """A bronze partition loaded outside the landing sensor (a manual backfill): silver follows,
    and facts come in the same tick because they can run in the same run (same partitions)."""
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    ticks.materialize((["bronze", "sales"], f"{DAY}|petopia"))
    requested = ticks.tick()
    assert requested[("silver", "sales")] == {f"{DAY}|petopia"}
    assert requested[("gold", "fact_sales")] == {f"{DAY}|petopia"}


def test_a_range_run_that_wrote_inputs_and_target_together_is_not_run_again(ticks: Ticks) -> None:
    """What the landing sensor launches for a burst: bronze, silver and facts of three partitions
    in one range run. Nothing downstream of it in that run may be requested again."""
    ticks.instance.add_dynamic_partitions("source", ["tailwaggers"])
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    ticks.tick()
    job = ticks.defs.resolve_job_def("landing_job")
    result = job.execute_in_process(
        instance=ticks.instance,
        tags={
            "dagster/asset_partition_range_start": f"{DAY}|pawmart",
            "dagster/asset_partition_range_end": f"{DAY}|tailwaggers",
        },
        asset_selection=[
            dg.AssetKey(["bronze", "sales"]),
            dg.AssetKey(["silver", "sales"]),
            dg.AssetKey(["gold", "fact_sales"]),
        ],
    )
    assert result.success
    requested = ticks.tick()
    assert ("silver", "sales") not in requested and ("gold", "fact_sales") not in requested


def test_a_tick_between_the_steps_of_a_landing_run_requests_nothing_it_will_build(ticks: Ticks) -> None:
    """The automation tick often falls after a landing run's bronze step and before its silver
    and facts steps, over a rectangle of days × sources. Its tags say it builds those itself:
    nothing is requested for any of its partitions. The same bronze written by a run without
    them (a manual backfill of bronze alone) brings silver for every partition."""
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    ticks.tick()
    job = ticks.defs.resolve_job_def("landing_job")
    rectangle = {
        "dagster/asset_partition_range_start": "2026-09-30|pawmart",
        "dagster/asset_partition_range_end": f"{DAY}|petopia",
    }
    cells = {f"{day}|{source}" for day in ("2026-09-30", DAY) for source in ("pawmart", "petopia")}

    def bronze_only(tags: dict[str, str]) -> None:
        result = job.execute_in_process(
            instance=ticks.instance, tags={**rectangle, **tags}, asset_selection=[dg.AssetKey(["bronze", "sales"])]
        )
        assert result.success

    bronze_only({TRIGGER_TAG: "landing", SILVER_IN_RUN: "true", FACTS_IN_RUN: "true"})
    requested = ticks.tick()
    assert ("silver", "sales") not in requested and ("gold", "fact_sales") not in requested
    bronze_only({})
    assert ticks.tick()[("silver", "sales")] == cells


def test_late_file_for_an_old_date_reprocesses_that_date(ticks: Ticks) -> None:
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    old = "2026-09-03"  # weeks before the latest partition: eager() would ignore it
    ticks.materialize((["silver", "sales"], f"{old}|pawmart"))
    assert ticks.tick()[("gold", "fact_sales")] == {f"{old}|pawmart"}


def test_facts_wait_while_a_dimension_they_join_is_being_rebuilt(ticks: Ticks) -> None:
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    ticks.materialize((["silver", "catalog"], f"{DAY}|pawmart"), (["silver", "sales"], f"{DAY}|pawmart"))
    requested = ticks.tick()
    assert ("gold", "dim_product") in requested
    assert ("gold", "fact_sales") not in requested  # new products first
    ticks.materialize((["gold", "dim_product"], None))
    assert ticks.tick()[("gold", "fact_sales")] == {f"{DAY}|pawmart"}  # not forgotten


def test_the_daily_mart_takes_a_windows_days_together_and_loses_no_later_update(ticks: Ticks) -> None:
    """Facts of two days updated at different moments: the next 5-minute tick requests both days
    in one evaluation (one range run). Facts committed while that mart run ran (after its request,
    before its own materialisation) bring their day again in the next window, not never."""
    before = "2026-09-30"
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()  # 10:31
    ticks.materialize((["gold", "fact_sales"], f"{DAY}|pawmart"))
    assert ("marts", "daily_sales") not in ticks.tick()  # 10:32
    ticks.materialize((["gold", "fact_sales"], f"{before}|petopia"))
    assert ("marts", "daily_sales") not in ticks.tick()  # 10:33
    assert ticks.tick(minutes=3)[("marts", "daily_sales")] == {DAY, before}  # 10:36
    ticks.materialize((["gold", "fact_sales"], f"{DAY}|petopia"))  # a landing run commits meanwhile
    ticks.materialize((["marts", "daily_sales"], DAY), (["marts", "daily_sales"], before))
    assert ("marts", "daily_sales") not in ticks.tick()  # 10:37: not before the next window
    assert ticks.tick(minutes=4)[("marts", "daily_sales")] == {DAY}  # 10:41


def test_monthly_marts_refresh_hourly_not_per_file(ticks: Ticks) -> None:
    ticks.tick()
    assert ("marts", "monthly_sales") in ticks.tick()  # missing on a fresh instance: built at once
    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS), (["marts", "monthly_sales"], None))
    ticks.tick()
    ticks.materialize((["gold", "fact_sales"], f"{DAY}|pawmart"))
    assert ("marts", "monthly_sales") not in ticks.tick()  # 10:32: no hour boundary since
    assert ("marts", "monthly_sales") in ticks.tick(minutes=30)  # 11:02: the 11:00 tick passed


def test_a_failed_blocking_check_holds_back_what_follows() -> None:
    """The policy on a small graph with a blocking check: the downstream partition waits while the
    check fails and runs once it passes (checks run for real, in the upstream's runs)."""
    daily = dg.DailyPartitionsDefinition(start_date="2026-09-01")
    verdict = {"passed": False}

    @dg.asset(partitions_def=daily)
    def upstream() -> None: ...

    @dg.asset_check(asset=upstream, blocking=True)
    def rows_reconcile() -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=verdict["passed"])

    @dg.asset(partitions_def=daily, deps=[upstream], automation_condition=follow_inputs())
    def downstream() -> None: ...

    defs = dg.Definitions(assets=[upstream, downstream], asset_checks=[rows_reconcile])
    with dg.instance_for_test() as instance:
        ticks = Ticks(defs, instance)
        ticks.tick()
        failed = dg.materialize([upstream, rows_reconcile], instance=instance, partition_key=DAY, raise_on_error=False)
        assert not failed.success  # the blocking check failed the run after the materialisation
        assert ("downstream",) not in ticks.tick()
        verdict["passed"] = True
        assert dg.materialize([upstream, rows_reconcile], instance=instance, partition_key=DAY).success
        assert ticks.tick()[("downstream",)] == {DAY}


def test_every_asset_retries_with_backoff(ticks: Ticks) -> None:
    from resight_platform.defs.policies import RETRY

    for assets_def in ticks.defs.assets or []:
        if isinstance(assets_def, dg.AssetsDefinition) and assets_def.is_executable:
            for spec in assets_def.specs:
                node = assets_def.node_def
                assert isinstance(node, dg.OpDefinition) and node.retry_policy == RETRY, spec.key
    assert RETRY.max_retries == 2 and RETRY.backoff == dg.Backoff.EXPONENTIAL and RETRY.jitter is not None


def test_a_transient_failure_is_retried_three_times_in_all_then_fails_clearly(fresh_pg_url: str) -> None:
    """A step that cannot reach Postgres (a closed port) is attempted three times, with growing
    pauses, then the run fails with the connection error."""
    from resight_platform.defs.policies import RETRY
    from resight_platform.io.postgres import connect

    attempts: list[float] = []
    unreachable = "postgresql://nobody@127.0.0.1:9/none?connect_timeout=1"

    @dg.asset(retry_policy=RETRY)
    def needs_postgres() -> None:
        attempts.append(datetime.now(UTC).timestamp())
        with connect(unreachable):
            pass

    result = dg.materialize([needs_postgres], raise_on_error=False)
    assert not result.success
    assert len(attempts) == 3
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert gaps[0] <= 4.5 and 3.9 <= gaps[1] <= 9  # 2 s then 6 s, each ± 2 s of jitter
    [failure] = result.get_step_failure_events()
    error = failure.step_failure_data.error
    assert error is not None and "connection" in error.to_string().lower()


def test_a_set_run_that_wrote_inputs_and_target_together_is_not_run_again(
    ticks: Ticks, tmp_path: Path, fresh_pg_url: str
) -> None:
    """What the landing sensor launches now (``landing_partitions_job``): bronze, silver and facts
    of a set of partitions in one op. Automation requests none of them again."""
    from resight_platform.defs.jobs import LANDING_SET_JOB
    from resight_platform.defs.metadata import set_run_config

    ticks.materialize(*((["gold", name], None) for name in DIMENSIONS))
    ticks.tick()
    ticks.tick()
    cells = [f"{DAY}|pawmart", f"{DAY}|petopia"]
    job = ticks.defs.resolve_job_def(LANDING_SET_JOB)
    result = job.execute_in_process(
        instance=ticks.instance,
        run_config=set_run_config({"sales": cells}, facts=True),
        tags={TRIGGER_TAG: "landing", SILVER_IN_RUN: "true", FACTS_IN_RUN: "true"},
    )
    assert result.success
    assert ticks.instance.get_materialized_partitions(dg.AssetKey(["gold", "fact_sales"])) == set(cells)
    requested = ticks.tick()
    assert ("silver", "sales") not in requested and ("gold", "fact_sales") not in requested, requested
