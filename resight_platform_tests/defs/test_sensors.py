"""The landing sensor on a real local directory and on the S3 endpoint, with the real Postgres ledger.

Each test plays the daemon: it evaluates the sensor, keeps its cursor, and executes the runs it
asks for in process (tagged with their run keys, as the daemon tags them), so the ledger, the lake
and the next tick see what they would in production.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.defs.jobs import DIMENSIONS_JOB, LANDING_SET_JOB, SCAN_LANDING_JOB
from resight_platform.defs.metadata import (
    PARTITION_TAG,
    RANGE_END,
    RANGE_START,
    RUN_KEY_TAG,
    run_partition_set,
    set_run_config,
)
from resight_platform.defs.ops import LANDING_CONTRACT_CHECK
from resight_platform.defs.partitions import source_keys
from resight_platform.defs.policies import FACTS_IN_RUN
from resight_platform.defs.sensors import (
    LANDING_PRIORITY,
    LANDING_SENSOR,
    PRIORITY_TAG,
    REGISTRY_SENSOR,
    TRIGGER_TAG,
)
from resight_platform.io.postgres import connect
from resight_platform.io.storage import ObjectStore, open_store
from resight_platform.io.watch import WatchCursor
from resight_platform.resources import load_registry_at
from resight_platform.settings import Settings
from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR, Registry

TODAY = datetime.now(UTC).date()
DAY = TODAY - timedelta(days=1)
HEADER = "order_id,line_no,ordered_at,sku,quantity,unit_price,status\n"


def sales_csv(prefix: str, rows: int = 3) -> bytes:
    lines = "".join(f"{prefix}-{n},1,{DAY.isoformat()}T10:00:00,SKU{n},2,3.50,completed\n" for n in range(rows))
    return (HEADER + lines).encode()


@dataclass
class Daemon:
    """The parts of dagster-daemon the landing sensor needs, in process."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    pg_url: str
    landing: ObjectStore
    cursor: str | None = None
    ticks: list[dg.SensorResult] = field(default_factory=list)

    def tick(self) -> dg.SensorResult:
        sensor = self.defs.resolve_sensor_def(LANDING_SENSOR)
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs, resources=dict(self.defs.resources or {})
        ) as context:
            result = sensor(context)
        assert isinstance(result, dg.SensorResult)
        assert not result.dynamic_partitions_requests  # the sensor adds its partitions itself
        self.cursor = result.cursor
        self.ticks.append(result)
        return result

    def run(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        assert request.job_name is not None
        tags = {**request.tags, RUN_KEY_TAG: str(request.run_key)}
        job = self.defs.resolve_job_def(request.job_name)
        return job.execute_in_process(
            instance=self.instance,
            run_config=request.run_config,
            tags=tags,
            partition_key=request.partition_key,
            asset_selection=list(request.asset_selection) if request.asset_selection else None,
        )

    def run_all(self, result: dg.SensorResult) -> None:
        for request in result.run_requests or []:
            assert self.run(request).success

    def ledger(self) -> dict[str, tuple[str, str | None, str | None]]:
        with connect(self.pg_url) as conn, conn.cursor() as cur:
            cur.execute("select file_key, status, etag, error_code from ops.ingestion_ledger")
            return {key: (status, etag, code) for key, status, etag, code in cur.fetchall()}


def _daemon(
    tmp_path: Path, pg_url: str, landing_url: str, endpoint: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Daemon]:
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path / "home"),
            "RESIGHT_LANDING_URL": landing_url,
            "RESIGHT_PARTITIONS_START": (TODAY - timedelta(days=60)).isoformat(),
            **({"AWS_ENDPOINT_URL": endpoint} if endpoint else {}),
            **(env or {}),
        }
    )
    defs = build_definitions(settings, pg_url=pg_url)
    with dg.instance_for_test() as instance:
        yield Daemon(defs, instance, pg_url, open_store(landing_url, endpoint))


@contextlib.contextmanager
def _daemon_on(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    """A daemon on a local landing directory (``kind`` "local") or on the moto S3 endpoint."""
    monkeypatch.setenv("RESIGHT_WATCH_HOT_DAYS", "7")
    if kind == "local":
        yield from _daemon(tmp_path, pg_url, str(tmp_path / "landing"))
    else:
        bucket_url: str = request.getfixturevalue("s3_bucket_url")
        endpoint: str = request.getfixturevalue("s3_endpoint")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        yield from _daemon(tmp_path, pg_url, bucket_url.removesuffix("/lake") + "/landing", endpoint)


@pytest.fixture(params=["local", "s3"])
def daemon(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    with _daemon_on(request.param, request, tmp_path, fresh_pg_url, monkeypatch) as daemon:
        yield daemon


def _only(result: dg.SensorResult) -> dg.RunRequest:
    requests = list(result.run_requests or [])
    assert len(requests) == 1, requests
    return requests[0]


def partition_keys(request: dg.RunRequest) -> list[str]:
    """The partition keys of a landing run request (a set run over exactly them), sorted."""
    assert request.job_name == LANDING_SET_JOB, request.job_name
    partitions = run_partition_set(request.run_config)
    assert partitions is not None
    assert request.tags["resight/partitions"] == str(len({k for keys in partitions.values() for k in keys}))
    return sorted({key for keys in partitions.values() for key in keys})


def test_new_files_load_once_in_one_run(daemon: Daemon) -> None:
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/b.csv", sales_csv("B"))
    first = daemon.tick()
    # Every registered provider becomes a source partition, added by the tick itself in one call.
    assert set(daemon.instance.get_dynamic_partitions("source")) == set(source_keys(load_registry_at(None)))
    request = _only(first)
    # A run of the set job over exactly that partition, named in its config: no Dagster partition.
    assert request.job_name == LANDING_SET_JOB
    assert request.run_config == set_run_config({"sales": [f"{DAY}|pawmart"]}, facts=False)
    assert request.partition_key is None and not request.asset_selection
    assert not {PARTITION_TAG, RANGE_START, RANGE_END} & set(request.tags)
    # No dimensions yet: the facts are left to automation, which builds the dimensions first.
    assert FACTS_IN_RUN not in request.tags
    assert (request.tags["resight/files"], request.tags["resight/partitions"]) == ("2", "1")
    assert {v[0] for v in daemon.ledger().values()} == {"queued"}

    assert not daemon.tick().run_requests  # requested, run not started yet: not asked again
    assert daemon.run(request).success
    ledger = daemon.ledger()
    assert {v[0] for v in ledger.values()} == {"loaded"}
    assert not daemon.tick().run_requests  # loaded: known by key and ETag


def test_the_landing_sensor_targets_the_set_job(tmp_path: Path, fresh_pg_url: str) -> None:
    for daemon in _daemon(tmp_path, fresh_pg_url, str(tmp_path / "landing")):
        repository = daemon.defs.get_repository_def()
        sensor = repository.get_sensor_def(LANDING_SENSOR)
        assert {target.job_name for target in sensor.targets} == {LANDING_SET_JOB, SCAN_LANDING_JOB}


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_sales_files_bring_their_facts_in_the_same_run_once_dimensions_exist(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with _daemon_on(kind, request, tmp_path, fresh_pg_url, monkeypatch) as daemon:
        for name in ("dim_provider", "dim_product", "dim_store", "dim_customer"):
            daemon.instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=["gold", name]))
        daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
        daemon.landing.write_bytes(f"pawmart/catalog/{DAY}/c.csv", b"sku,name\n")
        daemon.landing.write_bytes(f"barkbox_market/sales/{DAY}/b.csv", sales_csv("B"))
        daemon.landing.write_bytes(f"barkbox_market/sales/{DAY - timedelta(days=1)}/b.csv", sales_csv("B"))
        configs = [(r.run_config, r.tags.get(FACTS_IN_RUN)) for r in daemon.tick().run_requests or []]
        # pawmart's catalog file may add products: automation builds its facts once the dimension
        # is rebuilt. barkbox_market sent only sales: its run builds their facts, and says so (the
        # run with the oldest date first).
        assert configs == [
            (
                set_run_config({"sales": [f"{DAY - timedelta(days=1)}|barkbox_market", f"{DAY}|barkbox_market"]}, True),
                "true",
            ),
            (set_run_config({"catalog": [f"{DAY}|pawmart"], "sales": [f"{DAY}|pawmart"]}, False), None),
        ]


def test_a_trickle_over_days_and_providers_is_one_run(daemon: Daemon) -> None:
    before = DAY - timedelta(days=1)
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
    daemon.landing.write_bytes(f"barkbox_market/sales/{before}/b.csv", sales_csv("B"))
    request = _only(daemon.tick())  # one run over exactly the two partitions, none between
    assert partition_keys(request) == [f"{before}|barkbox_market", f"{DAY}|pawmart"]
    assert request.tags["resight/files"] == "2"
    assert daemon.run(request).success
    assert {v[0] for v in daemon.ledger().values()} == {"loaded"}


def test_a_file_for_a_partition_a_run_is_writing_waits_for_that_run(daemon: Daemon) -> None:
    # A run in flight over (DAY, pawmart): a backfill, automation, or the previous file's run.
    writing = dg.DagsterRun(
        job_name="landing_job",
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        tags={PARTITION_TAG: f"{DAY}|pawmart"},
    )
    daemon.instance.add_run(writing)
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
    daemon.landing.write_bytes(f"barkbox_market/sales/{DAY}/b.csv", sales_csv("B"))
    request = _only(daemon.tick())  # the other partition goes; pawmart's file waits, unmarked
    assert partition_keys(request) == [f"{DAY}|barkbox_market"]
    assert "pawmart" not in {k.split("/")[0] for k in daemon.ledger()}
    assert not daemon.tick().run_requests  # still writing
    daemon.instance.report_run_failed(writing)
    request = _only(daemon.tick())
    assert partition_keys(request) == [f"{DAY}|pawmart"]
    assert daemon.run(request).success


def test_a_set_run_in_flight_holds_exactly_its_partitions(daemon: Daemon) -> None:
    # A landing run over pawmart and tailwaggers of DAY; petvalley lies between them in the order.
    writing = dg.DagsterRun(
        job_name=LANDING_SET_JOB,
        run_id=str(uuid.uuid4()),
        status=dg.DagsterRunStatus.STARTED,
        run_config=set_run_config({"sales": [f"{DAY}|pawmart", f"{DAY}|tailwaggers"]}, facts=False),
        tags={TRIGGER_TAG: "landing"},
    )
    daemon.instance.add_run(writing)
    for provider in ("pawmart", "petvalley", "tailwaggers"):
        daemon.landing.write_bytes(f"{provider}/sales/{DAY}/a.csv", sales_csv(provider))
    daemon.landing.write_bytes(f"pawmart/sales/{DAY - timedelta(days=1)}/a.csv", sales_csv("P"))
    order = source_keys(load_registry_at(None))  # a range from pawmart to tailwaggers holds petvalley
    assert order.index("pawmart") < order.index("petvalley") < order.index("tailwaggers")
    request = _only(daemon.tick())  # petvalley and pawmart's other day go; the run's two wait
    assert partition_keys(request) == [f"{DAY - timedelta(days=1)}|pawmart", f"{DAY}|petvalley"]
    daemon.instance.report_run_failed(writing)
    request = _only(daemon.tick())
    assert partition_keys(request) == [f"{DAY}|pawmart", f"{DAY}|tailwaggers"]


def test_while_a_landing_run_waits_for_a_slot_new_files_wait_then_go_in_one_run(daemon: Daemon) -> None:
    """Back-pressure (``max_pending_runs``, 1): while one of the sensor's runs waits in the run queue,
    the files that arrive wait in the landing zone, unmarked; once it has a slot, one run takes
    them all, ahead of automation in the queue."""
    elsewhere = {TRIGGER_TAG: "landing", PARTITION_TAG: f"{DAY - timedelta(days=5)}|petvalley"}
    waiting = dg.DagsterRun(  # created, not started (a QUEUED run needs a code location's origin)
        job_name="landing_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.NOT_STARTED, tags=elsewhere
    )
    daemon.instance.add_run(waiting)
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
    assert not daemon.tick().run_requests
    daemon.landing.write_bytes(f"barkbox_market/sales/{DAY - timedelta(days=1)}/b.csv", sales_csv("B"))
    assert not daemon.tick().run_requests
    assert not daemon.ledger()  # nothing marked: the files are seen again
    daemon.instance.delete_run(waiting.run_id)  # it got its slot: started, no longer waiting
    daemon.instance.add_run(
        dg.DagsterRun(
            job_name="landing_job", run_id=str(uuid.uuid4()), status=dg.DagsterRunStatus.STARTED, tags=elsewhere
        )
    )
    request = _only(daemon.tick())
    assert request.tags["resight/files"] == "2"
    assert request.tags[PRIORITY_TAG] == LANDING_PRIORITY
    assert daemon.run(request).success
    assert {v[0] for v in daemon.ledger().values()} == {"loaded"}


def test_same_file_delivered_again_loads_once(daemon: Daemon) -> None:
    key = f"pawmart/sales/{DAY}/a.csv"
    daemon.landing.write_bytes(key, sales_csv("A"))
    daemon.run_all(daemon.tick())
    daemon.landing.write_bytes(key, sales_csv("A"))  # same bytes again (a new mtime on disk)
    assert not daemon.tick().run_requests
    assert daemon.ledger()[key][0] == "loaded"


def test_changed_file_reprocesses_its_partition(daemon: Daemon) -> None:
    key = f"pawmart/sales/{DAY}/a.csv"
    daemon.landing.write_bytes(key, sales_csv("A", rows=2))
    daemon.landing.write_bytes(f"barkbox_market/sales/{DAY}/c.csv", sales_csv("C"))
    daemon.run_all(daemon.tick())
    daemon.landing.write_bytes(key, sales_csv("A", rows=5))
    request = _only(daemon.tick())
    assert partition_keys(request) == [f"{DAY}|pawmart"]  # only the changed file's partition
    assert daemon.run(request).success
    with connect(daemon.pg_url) as conn:
        rows = conn.execute("select rows_in from ops.ingestion_ledger where file_key = %s", (key,)).fetchone()
    assert rows == (5,)


def test_late_file_for_an_old_date_is_found_by_the_sweep(daemon: Daemon) -> None:
    old = TODAY - timedelta(days=40)  # far outside the 7-day hot window
    daemon.landing.write_bytes(f"pawmart/sales/{old}/late.csv", sales_csv("L"))
    request = _only(daemon.tick())
    assert partition_keys(request) == [f"{old}|pawmart"]


def test_burst_across_providers_is_batched_into_few_runs(
    tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESIGHT_WATCH_MAX_RUNS_PER_TICK", "1")
    monkeypatch.setenv("RESIGHT_WATCH_MAX_PARTITIONS_PER_RUN", "3")
    for daemon in _daemon(tmp_path, fresh_pg_url, str(tmp_path / "landing")):
        providers = ["pawmart", "barkbox_market", "tailwaggers", "petvalley"]  # not neighbours in the order
        for provider in providers:
            for n in range(3):
                daemon.landing.write_bytes(f"{provider}/sales/{DAY}/f{n}.csv", sales_csv(f"{provider}{n}"))
        # A late file, older than the hot window (found by the sweep).
        old = DAY - timedelta(days=10)
        daemon.landing.write_bytes(f"pawmart/sales/{old}/f.csv", sales_csv("older"))
        first = _only(daemon.tick())  # one run per tick of at most 3 partitions, the oldest date first
        keys = partition_keys(first)
        assert len(keys) == 3 and keys[0] == f"{old}|pawmart" and first.tags["resight/files"] == "7"
        second = _only(daemon.tick())  # the rest, deferred, not lost
        assert len(partition_keys(second)) == 2 and second.tags["resight/files"] == "6"
        assert not set(keys) & set(partition_keys(second))
        assert daemon.run(second).success
        statuses = Counter(v[0] for v in daemon.ledger().values())
        assert statuses == {"loaded": 6, "queued": 7}
        assert daemon.run(first).success  # exactly its three partitions, ten days apart
        assert Counter(v[0] for v in daemon.ledger().values()) == {"loaded": 13}


HOSTILE = [
    "unknown_partner/sales/{day}/a.csv",  # provider not in the registry
    "pawmart/returns/{day}/a.csv",  # feed that does not exist
    "pawmart/sales/{day}/it's.csv",
    "pawmart/sales/{day}/a|b.csv",
    "pawmart/sales/{day}/a,b.csv",
    "pawmart/sales/{day}/" + "x" * 230 + ".csv",
    "pawmart/sales/not-a-date/a.csv",
    "pawmart/sales/2099-01-01/a.csv",  # no partition that far ahead
    "loose-file.csv",
]


def test_unknown_and_hostile_keys_are_dead_lettered_with_a_reason(daemon: Daemon, tmp_path: Path) -> None:
    keys = [k.format(day=DAY) for k in HOSTILE]
    if daemon.landing.url.startswith("s3://"):
        keys.append(f"pawmart/sales/{DAY}/../../../etc/passwd.csv")  # S3 allows it; no path is built from it
    for key in keys:
        if daemon.landing.url.startswith("s3://"):
            client = daemon.landing.client  # type: ignore[attr-defined]
            client.put_object(Bucket=daemon.landing.bucket, Key=f"landing/{key}", Body=b"x,y\n1,2\n")  # type: ignore[attr-defined]
        else:  # written directly: the store's atomic write adds a temporary suffix to a name at the limit
            path = Path(daemon.landing.url, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x,y\n1,2\n")
    result = daemon.tick()
    request = _only(result)
    assert request.job_name == SCAN_LANDING_JOB
    assert sorted(request.run_config["ops"]["scan_landing_op"]["config"]["keys"]) == sorted(keys)
    [event] = result.asset_events or []
    assert isinstance(event, dg.AssetCheckEvaluation)
    assert event.check_name == LANDING_CONTRACT_CHECK and not event.passed
    assert event.metadata["refused_files"].value == len(keys)

    assert daemon.run(request).success
    ledger = daemon.ledger()
    assert {key: ledger[key][0] for key in keys} == {key: "dead_lettered" for key in keys}
    codes = {key: ledger[key][2] for key in keys}
    assert codes[keys[0]] == "unknown_provider"
    assert codes[keys[1]] == "unknown_feed"
    assert {codes[k] for k in keys[2:6]} == {"bad_file_name"}
    assert codes[keys[6]] == "bad_date"
    assert codes[keys[7]] == "date_out_of_range"
    assert codes[keys[8]] == "bad_key"
    with connect(daemon.pg_url) as conn:
        uris = dict(conn.execute("select file_key, dead_letter_uri from ops.ingestion_ledger").fetchall())
    copied = [k for k in keys if not uris[k].endswith(".reason.json")]
    assert len(copied) == len([k for k in keys if "/../" not in k])  # all but the unreadable one,
    assert all(uris[k] for k in keys)  # which gets its reason file alone
    assert not daemon.tick().run_requests  # dead-lettered once, not again


def test_cursor_resumes_the_sweep_across_ticks_and_restarts(
    tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESIGHT_WATCH_PAGE_SIZE", "2")
    monkeypatch.setenv("RESIGHT_WATCH_SWEEP_PAGES", "1")
    landing_url = str(tmp_path / "landing")
    old_days = [TODAY - timedelta(days=30 + n) for n in range(5)]
    store = open_store(landing_url)
    for day in old_days:
        store.write_bytes(f"pawmart/sales/{day}/late.csv", sales_csv(str(day)))

    seen: list[int] = []
    cursor: str | None = None
    for _restart in range(3):  # a fresh definitions load each time: a restarted code server
        for daemon in _daemon(tmp_path, fresh_pg_url, landing_url):
            daemon.cursor = cursor
            result = daemon.tick()
            seen += [int(r.tags["resight/files"]) for r in result.run_requests or []]
            cursor = daemon.cursor
            queued = daemon.ledger()
    assert seen == [2, 2, 1]  # two keys swept per tick, resumed where the last tick stopped
    assert sorted(queued) == sorted(f"pawmart/sales/{day}/late.csv" for day in old_days)
    assert WatchCursor.loads(cursor).sweeps == 1  # the third tick reached the end and wrapped
    assert json.loads(cursor or "{}")["sweep_after"] == ""


def test_orphaned_queue_entries_are_requested_again(daemon: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
    first = _only(daemon.tick())  # queued, but the run is never created (daemon stopped)
    with connect(daemon.pg_url) as conn:
        conn.execute("update ops.ingestion_ledger set queued_at = queued_at - interval '1 hour'")
    again = _only(daemon.tick())
    assert again.run_key == first.run_key  # the same files: Dagster dedups the key if it did launch
    assert daemon.run(again).success
    assert not daemon.tick().run_requests


def test_a_file_deleted_before_its_run_is_closed_as_vanished_and_loads_if_it_comes_back(daemon: Daemon) -> None:
    kept, gone = f"pawmart/sales/{DAY}/a.csv", f"pawmart/sales/{DAY}/b.csv"
    daemon.landing.write_bytes(kept, sales_csv("A"))
    daemon.landing.write_bytes(gone, sales_csv("B"))
    request = _only(daemon.tick())
    daemon.landing.delete(gone)  # the partner takes it back before the run lists the partition
    assert daemon.run(request).success
    ledger = daemon.ledger()
    assert ledger[kept][0] == "loaded"
    assert (ledger[gone][0], ledger[gone][2]) == ("vanished", "file_vanished")  # not left 'queued'
    assert not daemon.tick().run_requests
    daemon.landing.write_bytes(gone, sales_csv("B"))  # the same bytes again (the same ETag on S3)
    again = _only(daemon.tick())
    assert again.tags["resight/files"] == "1"
    assert daemon.run(again).success
    assert daemon.ledger()[gone][0] == "loaded"


def test_ledger_keeps_checksum_of_read_files(daemon: Daemon) -> None:
    key = f"pawmart/sales/{DAY}/a.csv"
    daemon.landing.write_bytes(key, sales_csv("A"))
    daemon.run_all(daemon.tick())
    with connect(daemon.pg_url) as conn:
        row = conn.execute(
            "select checksum, etag, run_key from ops.ingestion_ledger where file_key = %s", (key,)
        ).fetchone()
    assert row is not None and row[0] and row[1] and row[2] is None


# --- a registry change while the daemon runs ---------------------------------------------------


@dataclass
class LiveRegistry:
    """The registry a running daemon reads (``RESIGHT_REGISTRY_DIR``): a local directory or an
    ``s3://`` prefix, edited in place as an onboarding engineer would."""

    location: str
    endpoint: str | None

    @property
    def store(self) -> ObjectStore:
        return open_store(self.location, self.endpoint)

    def append(self, name: str, line: str) -> None:
        self.store.write_bytes(name, self.store.read_bytes(name) + f"{line}\n".encode())

    def write(self, name: str, text: str) -> None:
        self.store.write_bytes(name, text.encode())

    def load(self) -> Registry:
        return load_registry_at(self.location, self.endpoint)


def _versions(pg_url: str) -> dict[str, tuple[str | None, str | None, int]]:
    """Per ledgered file: the registry's version, its provider's version, rows quarantined as
    ``unknown_status``."""
    with connect(pg_url) as conn:
        rows = conn.execute(
            "select l.file_key, l.registry_version, l.provider_version,"
            " (select count(*) from ops.quarantine q where q.source_file = l.file_key and q.rule = 'unknown_status')"
            " from ops.ingestion_ledger l"
        ).fetchall()
    return {key: (registry, provider, int(unknown)) for key, registry, provider, unknown in rows}


@pytest.fixture(params=["local", "s3"])
def live_daemon(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Daemon, LiveRegistry]]:
    """A daemon whose registry (a copy of the packaged one, on a local directory or on the S3
    endpoint with the landing zone) it looks at on every call (recheck 0 s), as production does
    every RESIGHT_REGISTRY_RECHECK_SECONDS."""
    monkeypatch.setenv("RESIGHT_WATCH_HOT_DAYS", "7")
    if request.param == "local":
        endpoint, landing_url, registry = (
            None,
            str(tmp_path / "landing"),
            LiveRegistry(str(tmp_path / "registry"), None),
        )
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        root = request.getfixturevalue("s3_bucket_url").removesuffix("/lake")
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        landing_url, registry = f"{root}/landing", LiveRegistry(f"{root}/registry", endpoint)
    store = registry.store
    for path in sorted(DEFAULT_REGISTRY_DIR.rglob("*")):
        if path.is_file():
            store.write_bytes(path.relative_to(DEFAULT_REGISTRY_DIR).as_posix(), path.read_bytes())
    env = {"RESIGHT_REGISTRY_DIR": registry.location, "RESIGHT_REGISTRY_RECHECK_SECONDS": "0"}
    for daemon in _daemon(tmp_path, fresh_pg_url, landing_url, endpoint, env=env):
        yield daemon, registry


def test_a_registry_change_is_in_force_at_the_next_tick_and_the_ledger_records_each_version(
    live_daemon: tuple[Daemon, LiveRegistry],
) -> None:
    daemon, registry = live_daemon
    key = f"pawmart/sales/{DAY}/a.csv"
    daemon.landing.write_bytes(key, sales_csv("A").replace(b",completed\n", b",SOLD\n", 1))
    daemon.run_all(daemon.tick())
    before = registry.load()
    assert _versions(daemon.pg_url)[key] == (before.version, before.provider_version("pawmart"), 1)  # SOLD: unknown
    # The dimensions built under this registry: from now on a sales file's run builds its facts too.
    assert daemon.defs.resolve_job_def(DIMENSIONS_JOB).execute_in_process(instance=daemon.instance).success

    # Onboarding, with the daemon running: a new partner and its source, and pawmart's own word for
    # a completed sale. No restart: the same definitions, resources and instance tick again.
    registry.append("providers.csv", "tiny_pets,Tiny Pets,retail,standard_csv,America/Chicago,USD")
    registry.append("sources.csv", "tiny_pets,sales,,24,true")
    registry.write("value_maps.csv", "provider,feed,map,alias,value\npawmart,,status,SOLD,completed\n")
    after = registry.load()
    online = sales_csv("T").replace(b",status\n", b",status,channel\n").replace(b",completed\n", b",completed,online\n")
    daemon.landing.write_bytes(f"tiny_pets/sales/{DAY}/t.csv", online)
    daemon.landing.write_bytes(key, sales_csv("A", rows=4).replace(b",completed\n", b",SOLD\n", 1))  # re-delivered
    tick = daemon.tick()
    assert "tiny_pets" in daemon.instance.get_dynamic_partitions("source")
    daemon.run_all(tick)

    versions = _versions(daemon.pg_url)
    assert versions[key] == (after.version, after.provider_version("pawmart"), 0)  # SOLD is completed now
    assert versions[f"tiny_pets/sales/{DAY}/t.csv"] == (after.version, after.provider_version("tiny_pets"), 0)
    assert daemon.ledger()[f"tiny_pets/sales/{DAY}/t.csv"][0] == "loaded"
    # Its first sales reach gold though gold.dim_provider was built before it was registered.
    with connect(daemon.pg_url) as conn:
        facts = conn.execute(
            "select p.provider, count(*) from gold.fact_sales f join gold.dim_provider p using (provider_key)"
            " where f.source_file = %s group by 1",
            (f"tiny_pets/sales/{DAY}/t.csv",),
        ).fetchall()
    assert facts == [("tiny_pets", 3)]
    assert after.version != before.version
    assert after.provider_version("pawmart") != before.provider_version("pawmart")
    assert after.provider_version("barkbox_market") == before.provider_version("barkbox_market")


@pytest.mark.parametrize("live_daemon", ["local"], indirect=True)
def test_a_file_refused_before_its_partner_was_onboarded_loads_once_the_registry_knows_it(
    live_daemon: tuple[Daemon, LiveRegistry],
) -> None:
    daemon, registry = live_daemon
    key = f"tiny_pets/sales/{DAY}/t.csv"
    daemon.landing.write_bytes(key, sales_csv("T"))
    [refusal] = daemon.tick().run_requests or []  # an unknown provider: to dead-letter
    # The onboarding lands between the tick and its dead-letter run (the sensor's process had not
    # seen the new registry yet): the run checks again, keeps the file and hands it back.
    registry.append("providers.csv", "tiny_pets,Tiny Pets,retail,standard_csv,America/Chicago,USD")
    registry.append("sources.csv", "tiny_pets,sales,,24,true")
    result = daemon.run(refusal)
    assert result.success
    assert result.output_for_node("scan_landing_op") == {"files": 1, "rejected": 0, "dead_lettered": 0, "released": 1}
    assert daemon.ledger()[key] == ("queued", None, None)  # its ETag forgotten: new to the next tick
    assert daemon.landing.exists(key)
    load = _only(daemon.tick())
    assert load.tags["resight/files"] == "1"
    assert daemon.run(load).success
    assert daemon.ledger()[key][0] == "loaded"


def registry_tick(daemon: Daemon, cursor: str | None) -> dg.SensorResult:
    sensor = daemon.defs.resolve_sensor_def(REGISTRY_SENSOR)
    with dg.build_sensor_context(
        instance=daemon.instance, cursor=cursor, definitions=daemon.defs, resources=dict(daemon.defs.resources or {})
    ) as context:
        result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


@pytest.mark.parametrize("live_daemon", ["local"], indirect=True)
def test_ops_sources_shows_each_providers_onboarding_state(live_daemon: tuple[Daemon, LiveRegistry]) -> None:
    daemon, registry = live_daemon
    daemon.landing.write_bytes(f"pawmart/sales/{DAY}/a.csv", sales_csv("A"))
    daemon.landing.write_bytes(f"barkbox_market/sales/{DAY}/b.csv", sales_csv("B"))
    daemon.run_all(daemon.tick())
    # The registry sensor syncs ops/sources once per registry version it sees.
    first = registry_tick(daemon, None)
    assert len(first.run_requests or []) == 1
    assert not registry_tick(daemon, first.cursor).run_requests  # the same version: nothing to do
    # pawmart's rows change after its file loaded; barkbox_market's do not; the rest sent nothing.
    registry.write("value_maps.csv", "provider,feed,map,alias,value\npawmart,,status,SOLD,completed\n")
    changed = registry_tick(daemon, first.cursor)
    [request] = changed.run_requests or []
    assert changed.cursor == registry.load().version == request.tags["resight/registry_version"]
    result = daemon.run(request)
    assert result.success
    [materialization] = result.asset_materializations_for_node("ops__sources")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    current = registry.load()
    assert metadata["registry_version"] == current.version
    assert (metadata["providers_changed"], metadata["providers_loading"], metadata["providers_silent"]) == (1, 1, 0)
    assert metadata["providers_new"] == len(current.providers) - 2
    table = {
        line.split(" | ")[0].strip("| "): line.split(" | ")[1] for line in str(metadata["onboarding"]).splitlines()[2:]
    }
    assert (table["pawmart"], table["barkbox_market"], table["petopia"]) == ("changed", "loading", "new")
