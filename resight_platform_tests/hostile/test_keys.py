"""Hostile keys in the landing zone, through the real pipeline (landing sensor, landing and
dead-letter runs) on a local directory and on the moto S3 endpoint.

Every hostile name gets its reason in the ledger and in the dead-letter area, a good file of the same
batch loads, every run succeeds, and nothing outside the landing zone is read, copied, quoted or
created: a sentinel file outside (a valid sales file, reached by links) never shows up in the lake,
the dead-letter area, the ledger or the logs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from resight_platform.defs.jobs import MEDALLION_JOB
from resight_platform.io.postgres import connect
from resight_platform.io.storage import S3Store
from resight_platform_tests.defs.test_sensors import DAY, Daemon, _daemon_on, sales_csv

FOLDER = f"pawmart/sales/{DAY}"
LINKED_DAY = DAY - timedelta(days=1)
SENTINEL = "SENTINEL-OUTSIDE-THE-LANDING-ZONE"


@dataclass(frozen=True)
class Case:
    """One hostile key: as it is listed, what the ledger must say, and on which stores it exists."""

    name: str
    key: str
    code: str
    stores: tuple[str, ...] = ("local", "s3")
    #: A link (local only): to this path relative to the test's directory, or absolute.
    link_to: str | None = None
    #: Its bytes may be copied to dead-letter (a key a store can read); else a reason file alone.
    copied: bool = True
    #: The file name's bytes on disk, when they are not the key's (an undecodable byte).
    on_disk: bytes | None = None


LOCAL = ("local",)


def _link(name: str, key: str, to: str) -> Case:
    return Case(name, key, "symlink", LOCAL, to, copied=False)


CASES = [
    Case("backslash", f"{FOLDER}/a\\b.csv", "bad_key", copied=False),
    Case("windows traversal", f"{FOLDER}/..\\..\\evil.csv", "bad_key", copied=False),
    Case("encoded traversal", f"{FOLDER}/%2e%2e%2fescape.csv", "bad_file_name"),
    Case("encoded slash", f"{FOLDER}/..%2F..%2Fetc%2Fpasswd.csv", "bad_file_name"),
    Case("single quote", f"{FOLDER}/it's.csv", "bad_file_name"),
    Case("sql", f"{FOLDER}/x'; drop table ops.ingestion_ledger; --.csv", "bad_file_name"),
    Case("double quote", f'{FOLDER}/"quoted".csv', "bad_file_name"),
    Case("bell", f"{FOLDER}/bell\x07.csv", "bad_file_name", copied=False),
    Case("terminal escape", f"{FOLDER}/esc\x1b[31mred.csv", "bad_file_name", copied=False),
    Case("newline", f"{FOLDER}/line\nbreak.csv", "bad_file_name", stores=("local",), copied=False),
    Case("rtl override", f"{FOLDER}/sales\u202evsc.exe", "bad_file_name"),
    Case("full-width slash", f"{FOLDER}/..\uff0f..\uff0fetc.csv", "bad_file_name"),
    Case("very long", f"{FOLDER}/{'x' * 250}.csv", "bad_file_name"),
    Case("hidden", f"{FOLDER}/.hidden.csv", "bad_file_name"),
    Case("partner temp name", f"{FOLDER}/sales.csv.resight-tmp", "unsupported_format"),
    Case("undecodable byte", f"{FOLDER}/caf\\xe9.csv", "bad_key", LOCAL, copied=False, on_disk=b"caf\xe9.csv"),
    Case("nul byte", f"{FOLDER}/a\\x00.csv", "bad_key", stores=("s3",), copied=False),
    Case("dot-dot traversal", f"{FOLDER}/../../../../etc/passwd.csv", "bad_key", stores=("s3",), copied=False),
    Case("root traversal", "../escape.csv", "bad_key", stores=("s3",), copied=False),
    Case("absolute", "/etc/passwd", "bad_key", stores=("s3",), copied=False),
    Case("dot segment", f"{FOLDER}/./sales.csv", "bad_key", stores=("s3",), copied=False),
    Case("empty segment", "pawmart//sales/x.csv", "bad_key", stores=("s3",), copied=False),
    _link("link to a file outside", f"{FOLDER}/outside.csv", "outside/secret.csv"),
    _link("link to a system file", f"{FOLDER}/hostname.csv", "/etc/hostname"),
    _link("link to a file inside", f"{FOLDER}/again.csv", f"landing/{FOLDER}/good.csv"),
    _link("dangling link", f"{FOLDER}/dangling.csv", "outside/nothing.csv"),
    _link("linked date folder", f"pawmart/sales/{LINKED_DAY}", "outside/day"),
    _link("linked folder inside", f"pawmart/sales/{DAY - timedelta(days=2)}", f"landing/{FOLDER}"),
    _link("linked provider folder", "petopia", "outside/provider"),
]


def _cases(kind: str) -> list[Case]:
    return [case for case in CASES if kind in case.stores]


def test_the_table_is_wide_enough() -> None:
    assert len(_cases("local")) >= 20 and len(_cases("s3")) >= 20
    assert len({case.key for case in CASES if "local" in case.stores}) == len(_cases("local"))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the landing zone holding valid files a link could lead to."""
    root = tmp_path / "outside"
    for path in (root / "secret.csv", root / "day" / "sales.csv", root / "provider" / "sales" / str(DAY) / "s.csv"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sales_csv(SENTINEL))
    return root


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _land(daemon: Daemon, kind: str, tmp_path: Path) -> None:
    daemon.landing.write_bytes(f"{FOLDER}/good.csv", sales_csv("GOOD"))
    for case in _cases(kind):
        if isinstance(daemon.landing, S3Store):
            store = daemon.landing
            raw = case.key.replace("\\x00", "\x00")  # the NUL as sent; listed backslash-escaped
            store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/{raw}", Body=sales_csv("HOSTILE"))
            continue
        target = tmp_path / "landing" / case.key
        target.parent.mkdir(parents=True, exist_ok=True)
        if case.link_to is not None:
            link = case.link_to if case.link_to.startswith("/") else str(tmp_path / case.link_to)
            os.symlink(link, target)
        else:
            name = os.path.join(os.fsencode(target.parent), case.on_disk) if case.on_disk else os.fsencode(target)
            with open(name, "wb") as handle:
                handle.write(sales_csv("HOSTILE"))


def _ledger(daemon: Daemon) -> dict[str, tuple[str, str | None, str | None, str | None]]:
    with connect(daemon.pg_url) as conn, conn.cursor() as cur:
        cur.execute("select file_key, status, error_code, error, dead_letter_uri from ops.ingestion_ledger")
        return {key: (status, code, error, uri) for key, status, code, error, uri in cur.fetchall()}


def _logs(daemon: Daemon) -> str:
    lines = []
    for run in daemon.instance.get_runs():
        for entry in daemon.instance.all_logs(run.run_id):
            lines.append(entry.message or "")
            if entry.dagster_event is not None:
                lines.append(repr(entry.dagster_event.event_specific_data))
    return "\n".join(lines)


@pytest.fixture(params=["local", "s3"])
def daemon(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Daemon]:
    with _daemon_on(request.param, request, tmp_path, fresh_pg_url, monkeypatch) as daemon:
        yield daemon


def test_hostile_keys_are_refused_with_their_reason_and_nothing_outside_is_touched(
    daemon: Daemon, tmp_path: Path, outside: Path, caplog: pytest.LogCaptureFixture
) -> None:
    kind = "s3" if isinstance(daemon.landing, S3Store) else "local"
    caplog.set_level(logging.DEBUG)
    _land(daemon, kind, tmp_path)
    before = _snapshot(outside)
    around = sorted(p.name for p in tmp_path.iterdir())

    for _ in range(3):  # until the sensor has nothing left to ask
        result = daemon.tick()
        if not result.run_requests:
            break
        daemon.run_all(result)  # every run succeeds
    else:
        pytest.fail("the sensor kept requesting runs")

    ledger = _ledger(daemon)
    assert ledger.pop(f"{FOLDER}/good.csv")[:2] == ("loaded", None)
    expected = {case.key: case for case in _cases(kind)}
    assert {key: row[1] for key, row in ledger.items()} == {key: case.code for key, case in expected.items()}
    dead_root = tmp_path / "home" / "lake" / "dead_letter"
    for key, (status, _, error, uri) in ledger.items():
        case = expected[key]
        assert status == "dead_lettered" and uri is not None, case.name
        assert error and SENTINEL not in error and str(outside) not in error and "/etc" not in error.replace(key, "")
        reason = json.loads(Path(uri if uri.endswith(".reason.json") else f"{uri}.reason.json").read_text())
        assert (reason["key"], reason["reason"]) == (key, case.code), case.name
        if case.copied:
            assert Path(uri).read_bytes() == sales_csv("HOSTILE"), case.name
        else:  # never read: a reason file alone, no checksum
            assert uri.endswith(".reason.json") and reason["checksum"] is None, case.name
            assert "left in the landing zone" in error, case.name
        assert Path(uri).resolve().is_relative_to(dead_root.resolve())

    # The good file of the batch loaded, and nothing but it.
    bronze = pl.read_parquet(tmp_path / "home" / "lake" / "bronze" / "sales", hive_partitioning=False)
    assert sorted(bronze.get_column("order_id").unique()) == ["GOOD-0", "GOOD-1", "GOOD-2"]

    # Nothing outside was read, copied, quoted or created.
    assert _snapshot(outside) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({*around, "home"})  # the lake, nothing else
    lake_bytes = b"".join(p.read_bytes() for p in (tmp_path / "home" / "lake").rglob("*") if p.is_file())
    assert SENTINEL.encode() not in lake_bytes
    for table in ("bronze", "silver"):
        for path in (tmp_path / "home" / "lake" / table).rglob("*.parquet"):
            frame = pl.read_parquet(path)
            assert not frame.select(pl.all().cast(pl.Utf8).str.contains(SENTINEL).any()).row(0).count(True), path
    with connect(daemon.pg_url) as conn:
        dumped = str(conn.execute("select * from ops.ingestion_ledger").fetchall())
        dumped += str(conn.execute("select * from ops.quarantine").fetchall())
    assert SENTINEL not in dumped and str(outside) not in dumped
    assert SENTINEL not in _logs(daemon) and str(outside) not in _logs(daemon)
    assert SENTINEL not in caplog.text and str(outside) not in caplog.text
    assert not list((tmp_path / "home" / "spool").glob("*"))  # no spool file left behind


def test_the_medallion_job_loads_a_partition_whatever_hostile_names_it_holds(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_pg_url: str, monkeypatch: pytest.MonkeyPatch, outside: Path
) -> None:
    """The reported case, without the sensor: bronze and silver run straight on the partitions that
    hold the hostile names and the linked date folder; every run succeeds at its first attempt."""
    with _daemon_on("local", request, tmp_path, fresh_pg_url, monkeypatch) as daemon:
        daemon.instance.add_dynamic_partitions("source", ["pawmart"])
        _land(daemon, "local", tmp_path)
        job = daemon.defs.resolve_job_def(MEDALLION_JOB)
        for day in (DAY, LINKED_DAY):
            result = job.execute_in_process(instance=daemon.instance, partition_key=f"{day}|pawmart")
            assert result.success
            assert not [e for e in result.all_events if e.event_type_value == "STEP_RESTARTED"]  # no retry either
        ledger = _ledger(daemon)
    assert ledger.pop(f"{FOLDER}/good.csv")[:2] == ("loaded", None)
    assert {key: (row[0], row[1]) for key, row in ledger.items()} == {
        case.key: ("dead_lettered", case.code)
        for case in _cases("local")
        if case.key.startswith(f"{FOLDER}/") or case.key == f"pawmart/sales/{LINKED_DAY}"
    }
    assert all(SENTINEL not in (row[2] or "") for row in ledger.values())
    assert not list((tmp_path / "home" / "spool").glob("*"))
