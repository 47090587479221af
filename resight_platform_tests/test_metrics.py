"""``resight metrics`` scraped by a real Prometheus (Debian's ``prometheus``; ``make prometheus``
installs it), and every panel query of the Grafana dashboard (deploy/grafana/resight-pipeline.json)
run against the datasource it names: PromQL through Prometheus' HTTP API, SQL as the analyst role
with Grafana's macros expanded. Each must return data, from a pipeline state with every kind of
problem (``health_state``). Also: a half that cannot be read is ``resight_health_up 0`` and the
other half is still served; labels stay bounded."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from bench.health.run import expand_macros
from resight_platform.health import take_snapshot
from resight_platform.io.postgres import connect
from resight_platform.io.roles import AnalystRole, connect_as
from resight_platform.metrics import COUNTERS, FAMILIES, build_registry, serve, start
from resight_platform.resources import prepare_warehouse
from resight_platform.settings import HealthSettings, Settings
from resight_platform_tests.databases import temporary_database
from resight_platform_tests.health_state import JOB, REQUESTS, build_ledger, build_runs

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "deploy" / "grafana" / "resight-pipeline.json"
DATASOURCES = REPO / "deploy" / "grafana" / "provisioning" / "datasources.yml"
PASSWORD = "metrics-analyst-pw"
#: Seconds to wait for Prometheus to start and scrape (it takes one or two on an idle machine).
DEADLINE = 90.0


@dataclass(frozen=True)
class Stack:
    pg_url: str
    analyst: AnalystRole
    metrics_url: str
    prometheus_url: str | None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.read().decode())


def _query(prometheus: str, expr: str) -> list[Any]:
    answer = _get(f"{prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


@pytest.fixture(scope="module")
def stack(pg_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A troubled pipeline's warehouse and Dagster instance, ``resight metrics`` serving them on a
    free port (in this process), and Prometheus scraping it every second."""
    tmp = tmp_path_factory.mktemp("metrics")
    databases = temporary_database(pg_server_url, "metrics")
    url = next(databases)
    role = AnalystRole(f"analyst_{uuid.uuid4().hex[:8]}", PASSWORD)
    settings = Settings.from_env(
        {"RESIGHT_PG_URL": url, "RESIGHT_ANALYST_ROLE": role.name, "RESIGHT_ANALYST_PASSWORD": PASSWORD}
    )
    with connect(url) as conn:
        prepare_warehouse(conn, settings)
        build_ledger(conn, troubled=True)
    home = tmp / "dagster"
    home.mkdir()
    with pytest.MonkeyPatch.context() as patch:  # only while opening: other modules' tests share the worker
        patch.setenv("DAGSTER_HOME", str(home))
        instance = dg.DagsterInstance.get()
    prometheus: subprocess.Popen[bytes] | None = None
    with (
        instance,
        serve(settings, url, lambda: instance, "127.0.0.1", 0) as server,
        (tmp / "prometheus.log").open("wb") as log,
    ):
        build_runs(instance, troubled=True)
        metrics_url = f"http://127.0.0.1:{server.port}/metrics"
        prometheus_url = None
        binary = shutil.which("prometheus")
        try:
            if binary is not None:
                port = _free_port()
                config = tmp / "prometheus.yml"
                config.write_text(
                    "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: resight\n    scrape_timeout: 1s\n"
                    f"    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n"
                )
                prometheus = subprocess.Popen(
                    [
                        binary,
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{port}",
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=log,
                )
                prometheus_url = f"http://127.0.0.1:{port}"
                _wait_for_scrape(prometheus, prometheus_url, tmp / "prometheus.log")
            yield Stack(url, role, metrics_url, prometheus_url)
        finally:
            if prometheus is not None:
                prometheus.terminate()
                prometheus.wait(timeout=30)
    next(databases, None)
    with psycopg.connect(pg_server_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role.name)))


def _wait_for_scrape(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until Prometheus holds both halves of a scrape (``resight_health_up``), or the deadline."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if len(_query(url, "resight_health_up == 1")) == 2:
                return
        except OSError:
            pass  # not listening yet
        time.sleep(0.2)
    raise AssertionError(f"prometheus did not scrape within {DEADLINE:.0f}s: {log.read_text()[-2000:]}")


def _targets() -> list[tuple[str, str, dict[str, Any]]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], (target.get("datasource") or panel["datasource"])["uid"], target)
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def test_the_dashboard_names_only_the_provisioned_datasources() -> None:
    import yaml

    provisioned = {d["uid"]: d["type"] for d in yaml.safe_load(DATASOURCES.read_text())["datasources"]}
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "resight-pipeline"
    for panel in dashboard["panels"]:
        for ds in [panel["datasource"], *(t.get("datasource") or panel["datasource"] for t in panel["targets"])]:
            assert provisioned.get(ds["uid"]) == ds["type"], f"{panel['title']}: {ds}"
    kinds = {uid for _, uid, _ in _targets()}
    assert kinds == set(provisioned), "every datasource has a panel"


def test_every_panel_query_returns_data_from_the_datasource_it_names(stack: Stack) -> None:
    if stack.prometheus_url is None:
        pytest.skip("no prometheus binary: `make prometheus` installs Debian's (apt-get install prometheus)")
    end = datetime.now(UTC) + timedelta(minutes=1)
    start = end - timedelta(days=7)  # the dashboard's default range
    checked = []
    with connect_as(stack.pg_url, stack.analyst) as analyst:
        for title, uid, target in _targets():
            if uid == "resight-prometheus":
                result = _query(stack.prometheus_url, target["expr"])
                assert result, f"{title}: {target['expr']} returned no series"
            else:
                cursor = analyst.execute(expand_macros(target["rawSql"], start, end))  # type: ignore[call-overload]
                assert cursor.fetchall(), f"{title}: no rows"
                if target["format"] == "time_series":  # Grafana reads the series from these columns
                    assert {"time", "metric", "value"} <= {c.name for c in cursor.description}, title
            checked.append(title)
    assert len(checked) == len(_targets()) >= 15


def test_prometheus_holds_the_problems_resight_health_names(stack: Stack) -> None:
    if stack.prometheus_url is None:
        pytest.skip("no prometheus binary: `make prometheus` installs Debian's (apt-get install prometheus)")
    problems = {
        r["metric"]["kind"]: float(r["value"][1]) for r in _query(stack.prometheus_url, "resight_health_problems")
    }
    assert problems == {
        "unreachable": 0,
        "failed_run": 1,
        "queued_too_long": 0,
        "failing_check": 1,
        "stale_source": 1,
        "dead_letter": 1,
        "freshness_lag": 1,
    }
    [failing] = _query(stack.prometheus_url, "resight_job_failing == 1")
    assert failing["metric"]["dagster_job"] == JOB and failing["metric"]["job"] == "resight"


def test_the_scrape_has_every_family_and_bounded_labels(stack: Stack) -> None:
    text = _scrape(stack.metrics_url)
    for name in FAMILIES:
        assert f"# TYPE {name} gauge" in text, name
    for name in COUNTERS:
        assert f"# TYPE {name} counter" in text, name
    series = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(series) < 300
    top = ("resight_provider_freshness_lag_seconds", "resight_provider_dead_letters", "resight_source_overdue_seconds")
    for line in series:
        if 'provider="' in line:
            assert line.startswith(top), line
    assert 'resight_source_overdue_seconds{feed="sales",provider="quiet"}' in text
    assert 'resight_files{feed="sales",status="queued"} 1.0' in text


def test_the_request_counter_is_every_request_counted_by_component_and_kind(stack: Stack) -> None:
    text = _scrape(stack.metrics_url)
    totals: dict[tuple[str, str], int] = {}
    for (_, component, kind), n in REQUESTS.items():
        totals[(component, kind)] = totals.get((component, kind), 0) + n
    for (component, kind), n in totals.items():
        assert f'resight_requests_total{{component="{component}",kind="{kind}"}} {float(n)}' in text
    assert text.count("resight_requests_total{") == len(totals)
    if stack.prometheus_url is not None:
        [sensor] = _query(stack.prometheus_url, 'resight_requests_total{component="landing_sensor"}')
        assert float(sensor["value"][1]) == 2200


def test_an_unreadable_warehouse_is_up_0_and_the_instance_is_still_served(stack: Stack, tmp_path: Path) -> None:
    def unreachable() -> psycopg.Connection[Any]:
        return connect("postgresql://resight:pw@127.0.0.1:1/resight", connect_timeout="2")

    with dg.DagsterInstance.ephemeral() as instance:
        build_runs(instance, troubled=False)
        registry = build_registry(lambda: take_snapshot(unreachable, instance, HealthSettings(), timedelta(hours=2)))
        server = start(registry, "127.0.0.1", 0)
        try:
            text = _scrape(f"http://127.0.0.1:{server.port}/metrics")
        finally:
            server.stop()
    assert 'resight_health_up{source="warehouse"} 0.0' in text
    assert 'resight_health_up{source="dagster"} 1.0' in text
    assert f'resight_runs{{dagster_job="{JOB}",status="SUCCESS"}} 1.0' in text
    assert 'resight_health_problems{kind="unreachable"} 1.0' in text
    assert "resight_files{" not in text
