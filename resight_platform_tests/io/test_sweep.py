"""The sweep of killed writers' temporary files, on a real local lake written by the lake's own
writer, an S3 lake on the moto server, and through the housekeeping job."""

from __future__ import annotations

import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from resight_platform.defs.ops import housekeeping_job
from resight_platform.io.lake import PartitionFileWriter
from resight_platform.io.storage import open_store
from resight_platform.io.sweep import SPARK_STAGING_DIR, orphan_files, sweep_orphans
from resight_platform.resources import StoreResource

GRACE = timedelta(hours=6)
KEY = "silver/sales/date=2026-10-01/source=pawmart/part-0.parquet"


def _age(path: Path, hours: float) -> None:
    then = time.time() - hours * 3600
    os.utime(path, (then, then), follow_symlinks=False)


def _killed_writer(lake: Path) -> Path:
    """A part file as a writer killed before its commit leaves it (the writer's own temp file)."""
    writer = PartitionFileWriter(open_store(str(lake)), KEY, row_group_rows=1)
    writer.append(pl.DataFrame({"x": [1, 2, 3]}))
    writer.append(pl.DataFrame({"x": [4, 5, 6]}))  # row groups written to the part file, no commit
    orphans = sorted((lake / KEY).parent.glob("*.resight-tmp"))
    assert len(orphans) == 1
    return orphans[0]


def test_old_orphans_in_a_local_lake_go_and_nothing_else_does(tmp_path: Path) -> None:
    lake, temp, outside = tmp_path / "lake", tmp_path / "tmp", tmp_path / "outside"
    temp.mkdir()
    outside.mkdir()
    store = open_store(str(lake))
    store.write_bytes(KEY, b"committed partition")
    old = _killed_writer(lake)
    _age(old, 7)
    fresh = old.with_name(".part-running.resight-tmp")  # a writer at work now
    fresh.write_bytes(b"in progress")
    target = outside / "precious.resight-tmp"
    target.write_bytes(b"not ours")
    _age(target, 48)
    link = (lake / KEY).parent / ".part-link.resight-tmp"
    link.symlink_to(target)
    _age(link, 48)
    old_table = lake / "gold" / "old.parquet"
    old_table.parent.mkdir(parents=True)
    old_table.write_bytes(b"a table file")
    _age(old_table, 1000)

    assert [p for p, _ in orphan_files(store, GRACE, datetime.now(UTC), temp)] == [old]
    report = sweep_orphans(store, GRACE, datetime.now(UTC), temp)
    assert report.removed == [str(old)] and report.failed == []
    assert report.bytes > 0
    assert not old.exists()
    assert fresh.exists() and link.is_symlink() and target.read_bytes() == b"not ours"
    assert store.read_bytes(KEY) == b"committed partition" and old_table.exists()
    assert sweep_orphans(store, GRACE, datetime.now(UTC), temp).removed == []


def test_spool_files_of_an_s3_lake_and_of_landing_reads_are_swept(
    tmp_path: Path, s3_bucket_url: str, s3_endpoint: str
) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    names = {
        ".part-abc.resight-tmp": 7,  # an S3 lake's part file, spooled locally
        "resight-spool-xyz": 7,  # a landing file read to local disk
        ".part-new.resight-tmp": 1,  # young: a writer may still be at it
        "someone-else.resight-tmp": 7,  # not a name the platform gives
        "resight-spool-dir": 7,  # a directory: never removed
    }
    for name, hours in names.items():
        path = temp / name
        if name.endswith("-dir"):
            path.mkdir()
        else:
            path.write_bytes(b"x" * 10)
        _age(path, hours)
    store = open_store(s3_bucket_url, s3_endpoint)
    store.write_bytes("silver/x/data.parquet", b"kept")
    report = sweep_orphans(store, GRACE, datetime.now(UTC), temp)
    assert sorted(Path(p).name for p in report.removed) == [".part-abc.resight-tmp", "resight-spool-xyz"]
    assert report.bytes == 20
    assert sorted(p.name for p in temp.iterdir()) == [
        ".part-new.resight-tmp",
        "resight-spool-dir",
        "someone-else.resight-tmp",
    ]
    assert store.read_bytes("silver/x/data.parquet") == b"kept"


def test_the_housekeeping_job_sweeps_with_the_grace_of_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake, temp = tmp_path / "lake", tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))  # the system's temporary directory, for this test
    monkeypatch.setenv("RESIGHT_SWEEP_GRACE_HOURS", "1")
    old = _killed_writer(lake)
    _age(old, 2)
    spool = tmp_path / "spool"  # RESIGHT_SPOOL_DIR: a landing read's copy left by a killed run
    spool.mkdir()
    spooled = spool / "resight-spool-abc"
    spooled.write_bytes(b"x" * 10)
    _age(spooled, 2)
    size = old.stat().st_size + 10
    resources = {
        "lake": StoreResource(url=str(lake)),
        "landing": StoreResource(url=str(tmp_path / "landing"), spool_dir=str(spool)),
    }
    result = housekeeping_job.execute_in_process(resources=resources)
    assert result.success
    assert result.output_for_node("sweep_orphans_op") == {"removed": 2, "bytes": size, "failed": 0}
    assert not old.exists() and not spooled.exists()


def test_a_killed_spark_writes_staged_files_are_swept_once_old(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    store = open_store(str(lake))
    store.write_bytes(KEY, b"committed partition")
    staged = lake / SPARK_STAGING_DIR / "0f3a" / "date=2026-10-01" / "source=pawmart"
    staged.mkdir(parents=True)
    old = staged / "part-00000-1b2c-c000.zstd.parquet"
    old.write_bytes(b"staged by a killed write")
    crc = staged / ".part-00000-1b2c-c000.zstd.parquet.crc"
    crc.write_bytes(b"crc")
    for path in (old, crc):
        _age(path, 7)
    running = lake / SPARK_STAGING_DIR / "9e8d" / "_SUCCESS"  # a write at work now
    running.parent.mkdir(parents=True)
    running.write_bytes(b"")
    found = [p for p, _ in orphan_files(store, GRACE, datetime.now(UTC), system_temp=False)]
    assert found == sorted([old, crc])
    sweep_orphans(store, GRACE, datetime.now(UTC), system_temp=False)
    assert not old.exists() and not crc.exists() and running.exists()
    assert store.read_bytes(KEY) == b"committed partition"
