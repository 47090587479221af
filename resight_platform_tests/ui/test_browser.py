"""The Dagster UI in a real browser: Debian's Chromium, driven by Playwright, on a real
``dagster-webserver`` serving this project's definitions over a small prepared demo
(``instance.py``: two weeks of partitions × three partners delivering daily sales over the last
days, loaded by the landing run, one partner late, one partition's load failed, one file with a
failed check, the rest closed by the closing job; one clean file of today waiting).

1. the asset graph shows the medallion: bronze → silver → gold → marts, and each feed's asset in
   bronze and silver once those groups are opened;
2. a partitioned asset's partitions view: dates × sources, a partition's quarantine;
3. the partitions views of silver and of the facts say what the ledger says: counts per status,
   every partition's status and rows, the late partner's day missing (and nothing else of the past),
   the failed load failed;
4. one partition launched from the UI's launch dialog, and the run succeeding;
5. a failed asset check, with its failing rows and the table of files that failed.

Each step leaves screenshots in ``.resight/test-artifacts/ui/`` (``artifacts.py``), a failing
test one of the page it failed on.

The selectors are roles and visible text of **Dagster 1.13.27's UI** (``dagster-webserver``
1.13.27, the version ``setup.py`` pins to 1.13.x), and one structural one: the lineage canvas is
``svg foreignObject`` (the sidebar lists the same group names). A Dagster upgrade that renames a
button or a tab fails here first, with the screenshot showing the new page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from resight_platform.defs.silver import TYPES_CHECK
from resight_platform.io.postgres import connect
from resight_platform.sources.registry import FEEDS
from resight_platform_tests.ui.conftest import Ui
from resight_platform_tests.ui.instance import OTHER_SOURCES, PROVIDER, Scenario, graphql, log_tail

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

expect = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: `pip install -e '.[test]'` (`make test` does)"
).expect

# One worker runs the module: one browser and one webserver for its tests (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("ui")

#: How long a run launched from the UI may take: a run worker starts (imports the project), then
#: reads one small file. Seconds on an idle machine, a minute or two on a loaded one.
RUN_TIMEOUT_S = 600.0
_TERMINAL = ("SUCCESS", "FAILURE", "CANCELED")


def screenshot(page: Page, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"))


def shown(scope: Page | Locator, text: str) -> Locator:
    """The elements showing exactly ``text``: the UI also keeps a hidden copy of a truncated
    label to measure it, which is not shown."""
    return scope.get_by_text(text, exact=True).filter(visible=True)


def test_the_asset_graph_shows_the_medallion_layers(page: Page, artifacts: Path) -> None:
    page.goto("/asset-groups")
    graph = page.locator("svg foreignObject")
    for group in ("bronze", "silver", "gold", "marts", "ops"):
        expect(shown(graph, group)).to_be_visible()
    screenshot(page, artifacts, "01-asset-graph-layers")

    shown(graph, "bronze").click()  # a group node opens on a click
    shown(graph, "silver").click()
    for feed in FEEDS:  # bronze/<feed> and silver/<feed>
        expect(shown(graph, feed)).to_have_count(2)
    # The opened groups are kept in the page's address; reloaded, the graph is fitted to the window.
    page.reload()
    for feed in FEEDS:
        expect(shown(graph, feed)).to_have_count(2)
    for closed in ("gold", "marts"):
        expect(shown(graph, closed)).to_be_visible()
    screenshot(page, artifacts, "01-asset-graph-bronze-silver")


def test_a_partitioned_assets_partitions_view(page: Page, ui: Ui, artifacts: Path) -> None:
    page.goto("/assets/silver/sales")
    page.get_by_role("tab", name="Partitions").click()
    total = ui.dates() * (1 + len(OTHER_SOURCES))
    expect(page.get_by_text(f"{total} Partitions Selected")).to_be_visible()
    for source in (PROVIDER, *OTHER_SOURCES):
        expect(shown(page, source)).to_be_visible()
    screenshot(page, artifacts, "02-partitions")

    partition = ui.instance.failed_check_partition
    day, source = partition.split("|")
    page.get_by_placeholder("Filter by date…").fill(day)
    shown(page, day).click()
    shown(page, source).click()
    expect(shown(page, partition)).to_be_visible()
    expect(shown(page, "Materialized")).to_be_visible()
    quarantined = page.get_by_role("row").filter(has_text="rows_quarantined")
    expect(quarantined).to_contain_text(str(ui.instance.failing_rows))
    screenshot(page, artifacts, "02-partition-detail")


#: The partitions view's statuses (Dagster's ``AssetPartitionStatus``), as its checkboxes name them.
_STATUS_TEXT = {
    "MATERIALIZED": "Materialized",
    "MATERIALIZING": "Materializing",
    "FAILED": "Failed",
    "MISSING": "Missing",
}

_LEDGER = """
select provider, business_date, bool_and(status = 'loaded'), coalesce(sum(rows_loaded), 0)
from ops.ingestion_ledger where feed = 'sales' and status in ('loaded', 'dead_lettered', 'read')
group by provider, business_date
"""

_STATUSES = """
query Statuses($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
  assetPartitionStatuses { ... on MultiPartitionStatuses { ranges {
    primaryDimStartKey primaryDimEndKey
    secondaryDim { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions materializingPartitions } }
  } } }
} } }
"""

_ROWS = """
query Rows($path: [String!]!, $partitions: [String!]) { assetOrError(assetKey: {path: $path}) { ... on Asset {
  assetMaterializations(partitions: $partitions) {
    partition timestamp
    metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } }
  }
} } }
"""


@dataclass(frozen=True)
class Expected:
    """What a medallion sales asset's partitions view must show, from the ledger and the scenario."""

    #: Every partition's status, as Dagster names it.
    status: dict[str, str]
    #: The rows of each materialised partition: the ledger's rows loaded, 0 for a closed one.
    rows: dict[str, int]
    #: The partitions closed as not expected (before the partner's first delivery).
    closed: set[str]

    def count(self, status: str) -> int:
        return sum(s == status for s in self.status.values())

    def with_status(self, status: str) -> list[str]:
        return sorted(p for p, s in self.status.items() if s == status)


def expected_from_the_ledger(ui: Ui) -> Expected:
    """Each partition of the demo's sales assets as the ledger and the scenario have it: a
    partition whose files silver loaded is materialised with their rows; a partner's days before
    its first file are closed (0 rows: daily partners without an ``onboarded`` date, onboarded by
    their first delivery); a partition whose files were read and not loaded is a failed load; the
    rest is missing."""
    scenario = ui.instance.scenario
    loaded: dict[str, int] = {}
    unloaded: set[str] = set()
    first: dict[str, date] = {}
    with connect(ui.instance.pg_url) as conn, conn.cursor() as cur:
        for provider, day, all_loaded, rows in cur.execute(_LEDGER).fetchall():
            first[provider] = min(day, first.get(provider, day))
            if all_loaded:
                loaded[f"{day}|{provider}"] = int(rows)
            else:
                unloaded.add(f"{day}|{provider}")
    closed = {
        partition
        for partition in scenario.partitions()
        if date.fromisoformat(partition.split("|")[0]) < first[partition.split("|")[1]]
    }
    status = {
        partition: "MATERIALIZED"
        if partition in loaded or partition in closed
        else "FAILED"
        if partition in unloaded
        else "MISSING"
        for partition in scenario.partitions()
    }
    return Expected(status, {**{p: 0 for p in closed}, **loaded}, closed)


def statuses_of(ui: Ui, path: list[str]) -> dict[str, str]:
    """Every partition's status as the webserver serves the partitions view (its GraphQL)."""
    data = graphql(ui.url, _STATUSES, {"path": path})
    ranges = data["assetNodeOrError"]["assetPartitionStatuses"]["ranges"]  # type: ignore[index]
    status = dict.fromkeys(ui.instance.scenario.partitions(), "MISSING")
    for r in ranges:
        first, last = date.fromisoformat(r["primaryDimStartKey"]), date.fromisoformat(r["primaryDimEndKey"])
        days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
        dim = r["secondaryDim"]
        for name, sources in (
            ("MATERIALIZED", dim["materializedPartitions"]),
            ("MATERIALIZING", dim["materializingPartitions"]),
            ("FAILED", dim["failedPartitions"]),  # a failed partition is also listed unmaterialised
        ):
            for day in days:
                for source in sources:
                    status[f"{day}|{source}"] = name
    return status


def rows_of(ui: Ui, path: list[str], partitions: list[str]) -> dict[str, dict[str, object]]:
    """The metadata of each partition's latest materialisation, through the webserver's GraphQL."""
    data = graphql(ui.url, _ROWS, {"path": path, "partitions": partitions})
    latest: dict[str, dict[str, object]] = {}
    stamps: dict[str, float] = {}
    for m in data["assetOrError"]["assetMaterializations"]:  # type: ignore[index]
        if float(m["timestamp"]) >= stamps.get(m["partition"], 0.0):
            stamps[m["partition"]] = float(m["timestamp"])
            latest[m["partition"]] = {e["label"]: e.get("intValue", e.get("text")) for e in m["metadataEntries"]}
    return latest


def _only_status(page: Page, counts: dict[str, int], status: str) -> None:
    """Leave only ``status`` (and the empty Materializing) ticked in the partitions view's filter."""
    for other, text in _STATUS_TEXT.items():
        if other not in (status, "MATERIALIZING"):
            page.get_by_text(f"{text} ({counts[other]})", exact=True).click()
    expect(page.get_by_text(f"{counts[status]} Partitions Selected")).to_be_visible()


def _open_partition(page: Page, partition: str) -> None:
    day, source = partition.split("|")
    page.get_by_placeholder("Filter by date…").fill(day)
    shown(page, day).click()
    shown(page, source).click()
    expect(shown(page, partition)).to_be_visible()


def _shows_only(page: Page, scenario: Scenario, partition: str) -> None:
    """The filtered lists show ``partition``'s day and no other past day (the range bar prints the
    first and the last day, today: those are not looked at); with the day open, only its source."""
    day, source = partition.split("|")
    expect(shown(page, day)).to_be_visible()
    for other in scenario.days()[1:-1]:
        if other.isoformat() != day:
            expect(shown(page, other.isoformat())).to_have_count(0)
    if page.get_by_role("heading", name=partition).count():  # the partition is open
        for other_source in scenario.sources:
            expect(shown(page, other_source)).to_have_count(0 if other_source != source else 1)


@pytest.mark.parametrize("path", [["silver", "sales"], ["gold", "fact_sales"]], ids=lambda p: "/".join(p))
def test_the_partitions_view_shows_what_the_ledger_says(page: Page, ui: Ui, artifacts: Path, path: list[str]) -> None:
    scenario = ui.instance.scenario
    expected = expected_from_the_ledger(ui)
    # The premises: the late partner's day is the one gap of the past, today is not due yet.
    today = {p for p in scenario.partitions() if p.startswith(f"{scenario.today}|")}
    assert set(expected.with_status("MISSING")) == {scenario.gap_partition} | today
    assert expected.with_status("FAILED") == [scenario.failed_partition]

    # Every partition's status and rows as the webserver serves them.
    assert statuses_of(ui, path) == expected.status
    materialized = expected.with_status("MATERIALIZED")
    metadata = rows_of(ui, path, materialized)
    assert {p: metadata[p].get("dagster/row_count") for p in materialized} == {
        p: expected.rows[p] for p in materialized
    }
    for partition in expected.closed:
        assert metadata[partition].get("resight/closed") == "before_onboarding", (partition, metadata[partition])

    # ... and as the partitions view shows them: the counts per status,
    name = "-".join(path)
    counts = {status: expected.count(status) for status in _STATUS_TEXT}
    page.goto(f"/assets/{'/'.join(path)}")
    page.get_by_role("tab", name="Partitions").click()
    expect(page.get_by_text(f"{len(expected.status)} Partitions Selected")).to_be_visible()
    for status, text in _STATUS_TEXT.items():
        expect(page.get_by_text(f"{text} ({counts[status]})", exact=True)).to_be_visible()
    screenshot(page, artifacts, f"03-{name}-partitions")

    # one materialised partition's rows in its detail,
    partition = max(p for p in materialized if p not in expected.closed)
    _open_partition(page, partition)
    expect(shown(page, "Materialized")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="dagster/row_count")).to_contain_text(str(expected.rows[partition]))
    screenshot(page, artifacts, f"03-{name}-materialized")

    # the failed load as the one failed partition, and the late partner's day among the missing,
    # with nothing else but today's.
    for status, partition, shot in (
        ("FAILED", scenario.failed_partition, "failed"),
        ("MISSING", scenario.gap_partition, "missing"),
    ):
        page.goto(f"/assets/{'/'.join(path)}")
        page.get_by_role("tab", name="Partitions").click()
        _only_status(page, counts, status)
        _shows_only(page, scenario, partition)
        _open_partition(page, partition)
        _shows_only(page, scenario, partition)
        expect(shown(page, "Materialized")).to_have_count(0)  # the detail's tag of a materialised partition
        screenshot(page, artifacts, f"03-{name}-{shot}")


def test_the_ledger_does_not_call_a_failed_partitions_file_loaded(ui: Ui) -> None:
    """Silver marks its files loaded only once their partitions are committed: the failed load's
    file stays ``read``, as Dagster shows its partition failed."""
    day, provider = ui.instance.scenario.failed_partition.split("|")
    with connect(ui.instance.pg_url) as conn, conn.cursor() as cur:
        cur.execute(
            "select status from ops.ingestion_ledger where feed = 'sales' and provider = %s and business_date = %s",
            (provider, date.fromisoformat(day)),
        )
        assert [status for (status,) in cur.fetchall()] == ["read"]


_RUNS = """
query Runs($filter: RunsFilter) { runsOrError(filter: $filter) { ... on Runs { results {
    runId status jobName assetSelection { path }
} } } }
"""

_MATERIALIZATIONS = """
query Materializations($partitions: [String!]) {
  assetOrError(assetKey: {path: ["bronze", "sales"]}) { ... on Asset {
    assetMaterializations(partitions: $partitions) {
      partition runId
      metadataEntries { label ... on IntMetadataEntry { intValue } }
    }
  } }
}
"""


def _runs_of(ui: Ui, partition: str) -> list[dict[str, object]]:
    data = graphql(ui.url, _RUNS, {"filter": {"tags": [{"key": "dagster/partition", "value": partition}]}})
    return list(data["runsOrError"]["results"])  # type: ignore[index]


def test_one_partition_launched_from_the_ui_materialises(page: Page, ui: Ui, artifacts: Path) -> None:
    partition = ui.instance.clean_partition
    day, source = partition.split("|")
    assert _runs_of(ui, partition) == []

    page.goto("/assets/bronze/sales")
    page.get_by_role("button", name="Materialize…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Launch runs to materialize bronze / sales")).to_be_visible()
    # One text box per dimension, in name order: date, then source (a picker of the registered ones).
    date_box = dialog.get_by_role("textbox").first
    date_box.fill(day)
    date_box.press("Enter")
    dialog.get_by_text("Select a partition or create one").click()
    page.get_by_role("menuitem").filter(has=shown(page, source)).click()
    page.keyboard.press("Escape")  # closes the picker, not the dialog
    expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible()
    launch = dialog.get_by_role("button", name="Launch 1 run")
    expect(launch).to_be_enabled()
    screenshot(page, artifacts, "04-launch-dialog")
    launch.click()
    expect(dialog).to_be_hidden()

    started = time.monotonic()
    runs = _runs_of(ui, partition)
    while not runs or runs[0]["status"] not in _TERMINAL:
        assert time.monotonic() - started < RUN_TIMEOUT_S, (
            f"the run of {partition} launched from the UI is not done after {RUN_TIMEOUT_S:.0f} s: {runs}\n"
            + log_tail(ui.log)
        )
        time.sleep(1.0)
        runs = _runs_of(ui, partition)
    assert len(runs) == 1, runs
    run = runs[0]
    assert run["status"] == "SUCCESS", f"{run}\n{log_tail(ui.log)}"
    assert run["assetSelection"] == [{"path": ["bronze", "sales"]}]

    page.goto(f"/runs/{run['runId']}")
    expect(shown(page, "Success").first).to_be_visible()
    expect(page.get_by_text(f"partition: {partition}").filter(visible=True)).to_be_visible()
    expect(shown(page, "RUN_SUCCESS")).to_be_visible()
    screenshot(page, artifacts, "04-run-succeeded")

    data = graphql(ui.url, _MATERIALIZATIONS, {"partitions": [partition]})
    (materialization,) = data["assetOrError"]["assetMaterializations"]  # type: ignore[index]
    assert materialization["runId"] == run["runId"]
    rows = {e["label"]: e.get("intValue") for e in materialization["metadataEntries"]}
    assert rows["dagster/row_count"] == ui.instance.clean_rows


def test_a_failed_check_shows_its_failing_rows(page: Page, ui: Ui, artifacts: Path) -> None:
    page.goto("/assets/silver/sales")
    page.get_by_role("tab", name="Checks").click()
    shown(page, TYPES_CHECK).first.click()
    expect(shown(page, "Failed").first).to_be_visible()
    expect(page.get_by_text("type or format changed: unit_price in new_price_format.csv")).to_be_visible()
    failing = page.get_by_role("row").filter(has_text="failing_rows")
    expect(failing).to_contain_text(str(ui.instance.failing_rows))
    expect(page.get_by_role("row").filter(has_text="files_with_type_change")).to_contain_text("1")
    screenshot(page, artifacts, "05-failed-check")

    page.get_by_role("row").filter(has_text="files").get_by_text("[Show Markdown]").click()
    files = page.get_by_role("dialog")
    day = ui.instance.failed_check_partition.split("|")[0]
    expect(files).to_contain_text(f"{PROVIDER}/sales/{day}/new_price_format.csv")
    for cell in ("unit_price", "unparseable_price", str(ui.instance.failing_rows)):
        expect(files).to_contain_text(cell)
    screenshot(page, artifacts, "05-failed-check-rows")
