"""The Dagster UI in a real browser: Debian's Chromium, driven by Playwright, on a real
``dagster-webserver`` serving this project's definitions over a small prepared instance
(``instance.py``: two weeks of partitions × three sources, one partition through silver with a
failed check, one clean file waiting).

1. the asset graph shows the medallion: bronze → silver → gold → marts, and each feed's asset in
   bronze and silver once those groups are opened;
2. a partitioned asset's partitions view: dates × sources, one materialised, its quarantine;
3. one partition launched from the UI's launch dialog, and the run succeeding;
4. a failed asset check, with its failing rows and the table of files that failed.

Each step leaves screenshots in ``.resight/test-artifacts/ui/`` (``artifacts.py``), a failing
test one of the page it failed on.

The selectors are roles and visible text of **Dagster 1.13.27's UI** (``dagster-webserver``
1.13.27, the version ``setup.py`` pins to 1.13.x), and one structural one: the lineage canvas is
``svg foreignObject`` (the sidebar lists the same group names). A Dagster upgrade that renames a
button or a tab fails here first, with the screenshot showing the new page.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from resight_platform.defs.silver import TYPES_CHECK
from resight_platform.sources.registry import FEEDS
from resight_platform_tests.ui.conftest import Ui
from resight_platform_tests.ui.instance import OTHER_SOURCES, PROVIDER, graphql, log_tail

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
    expect(page.get_by_text("Materialized (1)")).to_be_visible()
    expect(page.get_by_text(f"Missing ({total - 1})")).to_be_visible()
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
    screenshot(page, artifacts, "03-launch-dialog")
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
    screenshot(page, artifacts, "03-run-succeeded")

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
    screenshot(page, artifacts, "04-failed-check")

    page.get_by_role("row").filter(has_text="files").get_by_text("[Show Markdown]").click()
    files = page.get_by_role("dialog")
    day = ui.instance.failed_check_partition.split("|")[0]
    expect(files).to_contain_text(f"{PROVIDER}/sales/{day}/new_price_format.csv")
    for cell in ("unit_price", "unparseable_price", str(ui.instance.failing_rows)):
        expect(files).to_contain_text(cell)
    screenshot(page, artifacts, "04-failed-check-rows")
