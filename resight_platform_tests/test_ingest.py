"""Ingestion of a partition: files streamed slice by slice, each by its own extension; a file loads
whole or not at all, and a refused one is dead-lettered with its reason."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from resight_platform.ingest import Ingestion, Restart, ingest_partition, ingest_partitions, partition_listing
from resight_platform.io.landing import list_partition_files
from resight_platform.io.ops import FileRecord
from resight_platform.io.storage import LocalStore
from resight_platform.sources.registry import Registry, load_registry
from resight_platform.transforms.bronze import bronze_schema

DAY = date(2026, 10, 1)
NOW = datetime(2026, 10, 2, 6, tzinfo=UTC)
HEADER = b"order_id,line_no,ordered_at,sku,quantity,unit_price,status\n"


def _lines(prefix: str, count: int) -> bytes:
    return b"".join(f"{prefix}-{n},1,2026-10-01T10:00:00,S,1,1.00,completed\n".encode() for n in range(count))


def _ingest(
    registry: Registry,
    landing: LocalStore,
    dead: LocalStore,
    already_dead: dict[str, tuple[str, str]] | None = None,
    provider: str = "pawmart",
) -> tuple[list[pl.DataFrame], list[FileRecord], int]:
    """Run the partition as the lake writer would: a restart drops what was written so far."""
    listing = [(provider, item) for item in list_partition_files(landing, registry, provider, "sales", DAY)]
    written: list[pl.DataFrame] = []
    records: list[FileRecord] = []
    restarts = 0
    ingestion = Ingestion(landing, dead, registry, "sales", already_dead or {}, NOW, slice_bytes=1500)
    for item in ingest_partition(ingestion, DAY, listing, records):
        if isinstance(item, Restart):
            written, restarts = [], restarts + 1
        else:
            written.append(item)
    return written, records, restarts


def test_a_file_failing_after_its_first_slices_is_dead_lettered_whole_and_the_rest_loads(tmp_path: Path) -> None:
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    folder = "pawmart/sales/2026-10-01"
    files = {
        f"{folder}/a.csv": HEADER + _lines("A", 150),
        f"{folder}/b.csv": HEADER + _lines("B", 150) + b"B-x,1,2026-10-01T10:00:00,S,1,1.00,completed,extra\n",
        f"{folder}/c.csv": HEADER + _lines("C", 150),
    }
    for key, data in files.items():
        landing.write_bytes(key, data)

    written, records, restarts = _ingest(registry, landing, dead)

    assert restarts == 1  # b.csv broke after some of its slices were streamed
    assert len(written) > 3  # several slices per file
    rows = pl.concat(written)
    assert rows.height == 300
    assert rows.group_by("_source_file").agg(pl.len(), pl.col("_row_number").max()).sort("_source_file").rows() == [
        (f"{folder}/a.csv", 150, 150),
        (f"{folder}/c.csv", 150, 150),
    ]
    assert [(r.file_key, r.status, r.rows_in, r.error_code) for r in records] == [
        (f"{folder}/a.csv", "read", 150, None),
        (f"{folder}/b.csv", "dead_lettered", None, "unparseable"),
        (f"{folder}/c.csv", "read", 150, None),
    ]
    for record in records:  # checksums computed while streaming equal the whole file's
        assert (record.checksum, record.bytes) == (
            hashlib.sha256(files[record.file_key]).hexdigest(),
            len(files[record.file_key]),
        )
    bad = records[1]
    assert bad.dead_letter_uri is not None and "CSV could not be parsed" in (bad.error or "")
    assert Path(bad.dead_letter_uri).read_bytes() == files[f"{folder}/b.csv"]
    reason = json.loads(Path(f"{bad.dead_letter_uri}.reason.json").read_text())
    assert reason["checksum"] == bad.checksum

    # The ledger already holds these very bytes as dead-lettered: not copied again.
    _, again, _ = _ingest(registry, landing, dead, {bad.file_key: (bad.checksum, "dead_lettered")})
    assert again[1].status == "dead_lettered" and again[1].dead_letter_uri is None


def test_gzip_checksum_is_of_the_landed_bytes_and_key_errors_are_spooled(tmp_path: Path) -> None:
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    text = b"Invoice No|Line|Visit Date|Item Code|Quantity|Unit Price|Status\n" + b"".join(
        b"I-%d|1|01/10/2026 08:45|S|1|$1.00|completed\n" % n for n in range(400)
    )
    packed = gzip.compress(text, mtime=0)
    folder = "vetcare_partners/sales/2026-10-01"
    landing.write_bytes(f"{folder}/a.csv.gz", packed)
    landing.write_bytes(f"{folder}/notes.txt", b"not a landing file")
    spooled_before = set(Path(tempfile.gettempdir()).glob("resight-spool-*"))

    written, records, restarts = _ingest(registry, landing, dead, provider="vetcare_partners")

    assert restarts == 0 and pl.concat(written).height == 400 and len(written) > 1
    by_key = {r.file_key: r for r in records}
    read = by_key[f"{folder}/a.csv.gz"]
    assert (read.status, read.checksum, read.bytes) == ("read", hashlib.sha256(packed).hexdigest(), len(packed))
    refused = by_key[f"{folder}/notes.txt"]
    assert refused.status == "dead_lettered" and refused.checksum == hashlib.sha256(b"not a landing file").hexdigest()
    assert refused.dead_letter_uri is not None and Path(refused.dead_letter_uri).read_bytes() == b"not a landing file"
    assert set(Path(tempfile.gettempdir()).glob("resight-spool-*")) <= spooled_before  # spool files removed


def _ingest_day(
    registry: Registry, landing: LocalStore, dead: LocalStore, provider: str, day: date, feed: str = "sales"
) -> tuple[list[tuple[str, pl.DataFrame]], list[FileRecord]]:
    """The partition ``(day, provider)`` through :func:`ingest_partitions`, as the bronze asset runs it."""
    listing = partition_listing(landing, registry, [provider], feed, day)
    records: list[FileRecord] = []
    written: list[tuple[str, pl.DataFrame]] = []
    told: list[FileRecord] = []
    ingestion = Ingestion(landing, dead, registry, feed, {}, NOW)
    for partition, item in ingest_partitions(
        ingestion, [(f"{day}|{provider}", day, listing)], records, on_dead_letter=told.append
    ):
        assert not isinstance(item, Restart)
        written.append((partition, item))
    assert told == [r for r in records if r.status == "dead_lettered"]
    return written, records


def test_one_source_loads_csv_one_day_and_csv_gz_json_gz_jsonl_gz_the_next(tmp_path: Path) -> None:
    """Each file is read by its own extension; the source's profile gives its columns and dialect."""
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    columns = HEADER.decode().strip().split(",")
    records = [dict(zip(columns, line.split(","), strict=True)) for line in _lines("J", 3).decode().splitlines()]
    days = {
        date(2026, 10, 1): ("sales.csv", HEADER + _lines("A", 3)),
        date(2026, 10, 2): ("sales.csv.gz", gzip.compress(HEADER + _lines("B", 4), mtime=0)),
        date(2026, 10, 3): ("sales.jsonl.gz", gzip.compress("".join(json.dumps(r) + "\n" for r in records).encode())),
        date(2026, 10, 4): ("sales.json.gz", gzip.compress(json.dumps(records).encode())),
    }
    for day, (name, data) in days.items():
        landing.write_bytes(f"pawmart/sales/{day}/{name}", data)

    loaded = {}
    for day, (name, data) in days.items():
        written, records_of_day = _ingest_day(registry, landing, dead, "pawmart", day)
        frame = pl.concat([frame for _, frame in written])
        loaded[name] = frame.get_column("order_id").to_list()
        [record] = records_of_day
        assert (record.status, record.rows_in, record.bytes) == ("read", frame.height, len(data))
        assert record.checksum == hashlib.sha256(data).hexdigest()
    assert loaded == {
        "sales.csv": ["A-0", "A-1", "A-2"],
        "sales.csv.gz": ["B-0", "B-1", "B-2", "B-3"],
        "sales.jsonl.gz": ["J-0", "J-1", "J-2"],
        "sales.json.gz": ["J-0", "J-1", "J-2"],
    }
    assert not list(dead.list(""))


def test_bytes_unlike_their_extension_are_dead_lettered_as_format_mismatch(tmp_path: Path) -> None:
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    folder = "pawmart/sales/2026-10-01"
    text = HEADER + _lines("A", 2)
    parquet = io.BytesIO()
    pl.DataFrame({"order_id": ["A"]}).write_parquet(parquet)
    files = {
        f"{folder}/a.csv": gzip.compress(text, mtime=0),  # the reported case: a valid gzip named .csv
        f"{folder}/b.csv.gz": text,
        f"{folder}/c.parquet": text,
        f"{folder}/d.jsonl": b"<html>502 Bad Gateway</html>\n",
        f"{folder}/e.json.gz": gzip.compress(parquet.getvalue(), mtime=0),
        f"{folder}/f.csv": text,  # the one good file
    }
    for key, data in files.items():
        landing.write_bytes(key, data)

    written, records = _ingest_day(registry, landing, dead, "pawmart", DAY)

    assert pl.concat([frame for _, frame in written]).get_column("_source_file").unique().to_list() == [
        f"{folder}/f.csv"
    ]
    by_key = {r.file_key: r for r in records}
    assert {k: (r.status, r.error_code) for k, r in by_key.items()} == {
        **{k: ("dead_lettered", "format_mismatch") for k in files if not k.endswith("f.csv")},
        f"{folder}/f.csv": ("read", None),
    }
    assert by_key[f"{folder}/a.csv"].error == "file name says csv but the bytes are gzip"
    assert (
        by_key[f"{folder}/b.csv.gz"].error
        == "file name says csv.gz but the bytes are text (it starts 'order_id,line_no,ordered…')"
    )
    assert (by_key[f"{folder}/c.parquet"].error or "").startswith("file name says parquet but the bytes are text (it")
    assert (
        by_key[f"{folder}/d.jsonl"].error
        == "file name says jsonl but the bytes are text (it starts '<html>502 Bad Gateway</h…')"
    )
    assert by_key[f"{folder}/e.json.gz"].error == "file name says json.gz but the bytes are gzip of Parquet"
    for key, data in files.items():
        record = by_key[key]
        assert (record.checksum, record.bytes) == (hashlib.sha256(data).hexdigest(), len(data))
        if record.status == "dead_lettered":
            assert record.dead_letter_uri is not None and Path(record.dead_letter_uri).read_bytes() == data
            reason = json.loads(Path(f"{record.dead_letter_uri}.reason.json").read_text())
            assert (reason["reason"], reason["detail"]) == ("format_mismatch", record.error)


def test_a_file_that_cannot_be_copied_to_dead_letter_is_left_in_place_and_the_rest_loads(tmp_path: Path) -> None:
    """One file's failure to dead-letter never fails its partition: it stays in the landing zone,
    recorded without a checksum so that a later run copies it."""
    registry = load_registry()
    landing = LocalStore(tmp_path / "landing")
    blocked = tmp_path / "dead"
    blocked.write_bytes(b"a file where the dead-letter directory should be")
    folder = "pawmart/sales/2026-10-01"
    landing.write_bytes(f"{folder}/a.csv", b"order_id\n\xff\n")
    landing.write_bytes(f"{folder}/b.csv", HEADER + _lines("B", 2))

    written, records = _ingest_day(registry, landing, LocalStore(blocked), "pawmart", DAY)

    assert pl.concat([frame for _, frame in written]).height == 2
    bad, good = records
    assert (good.file_key, good.status) == (f"{folder}/b.csv", "read")
    assert (bad.status, bad.error_code, bad.checksum, bad.dead_letter_uri) == (
        "dead_lettered",
        "unparseable",
        None,
        None,
    )
    assert "left in the landing zone" in (bad.error or "")
    assert landing.read_bytes(f"{folder}/a.csv") == b"order_id\n\xff\n"


def test_a_partition_with_no_file_loaded_is_one_empty_bronze_frame(tmp_path: Path) -> None:
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    landing.write_bytes("pawmart/sales/2026-10-01/a.csv", b"")
    written, records = _ingest_day(registry, landing, dead, "pawmart", DAY)
    [(partition, frame)] = written
    assert partition == f"{DAY}|pawmart" and frame.height == 0 and frame.schema == pl.Schema(bronze_schema("sales"))
    assert [r.error_code for r in records] == ["unparseable"]
    written, records = _ingest_day(registry, landing, dead, "pawmart", date(2026, 10, 9))
    assert [(p, f.height) for p, f in written] == [("2026-10-09|pawmart", 0)] and records == []


def test_ingestion_does_not_import_dagster() -> None:
    """``defs/`` only wires ingestion: the module loads (with its imports) without Dagster."""
    code = "import sys, resight_platform.ingest; print(sorted(m for m in sys.modules if m.split('.')[0] == 'dagster'))"
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]"


def test_a_name_no_store_may_read_is_that_files_outcome_and_leaves_no_spool(tmp_path: Path) -> None:
    """The reported case: ``a\\b.csv`` in a partition folder is dead-lettered (a reason file, its
    bytes left in place) and the rest of the partition loads; no spool file is left anywhere."""
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    folder = "pawmart/sales/2026-10-01"
    landing.write_bytes(f"{folder}/good.csv", HEADER + _lines("G", 2))
    (tmp_path / "landing" / folder / "a\\b.csv").write_bytes(HEADER + _lines("B", 2))
    spool_dir = tmp_path / "spool"

    records: list[FileRecord] = []
    written = [
        item
        for _, item in ingest_partitions(
            Ingestion(landing, dead, registry, "sales", {}, NOW, spool_dir=spool_dir),
            [("p", DAY, partition_listing(landing, registry, ["pawmart"], "sales", DAY))],
            records,
        )
    ]

    assert pl.concat([f for f in written if isinstance(f, pl.DataFrame)]).get_column("order_id").to_list() == [
        "G-0",
        "G-1",
    ]
    bad, good = sorted(records, key=lambda r: r.file_key)
    assert (good.file_key, good.status) == (f"{folder}/good.csv", "read")
    assert (bad.file_key, bad.status, bad.error_code, bad.checksum) == (
        f"{folder}/a\\b.csv",
        "dead_lettered",
        "bad_key",
        None,
    )
    assert bad.dead_letter_uri is not None and bad.dead_letter_uri.endswith(".reason.json")
    assert "left in the landing zone" in (bad.error or "")
    assert not spool_dir.exists() or list(spool_dir.iterdir()) == []


def test_a_file_turned_into_a_link_or_gone_after_the_listing_is_its_own_outcome(tmp_path: Path) -> None:
    registry = load_registry()
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    folder = "pawmart/sales/2026-10-01"
    for name in ("a.csv", "b.csv", "c.csv"):
        landing.write_bytes(f"{folder}/{name}", HEADER + _lines(name[0].upper(), 2))
    secret = tmp_path / "secret.csv"
    secret.write_bytes(HEADER + _lines("SECRET", 2))
    listing = partition_listing(landing, registry, ["pawmart"], "sales", DAY)
    (tmp_path / "landing" / folder / "a.csv").unlink()  # swapped for a link once listed
    os.symlink(secret, tmp_path / "landing" / folder / "a.csv")
    (tmp_path / "landing" / folder / "b.csv").unlink()  # deleted once listed

    records: list[FileRecord] = []
    frames = [
        item
        for _, item in ingest_partitions(
            Ingestion(landing, dead, registry, "sales", {}, NOW), [("p", DAY, listing)], records
        )
    ]

    assert pl.concat([f for f in frames if isinstance(f, pl.DataFrame)]).get_column("order_id").to_list() == [
        "C-0",
        "C-1",
    ]
    assert {r.file_key.rsplit("/", 1)[1]: (r.status, r.error_code, r.checksum) for r in records} == {
        "a.csv": ("dead_lettered", "symlink", None),
        "b.csv": ("vanished", "file_vanished", None),
        "c.csv": ("read", None, hashlib.sha256(HEADER + _lines("C", 2)).hexdigest()),
    }
    dead_bytes = b"".join(p.read_bytes() for p in (tmp_path / "dead").rglob("*") if p.is_file())
    assert b"SECRET" not in dead_bytes and str(secret).encode() not in dead_bytes


def test_a_dry_run_keeps_the_reason_and_copies_nothing(tmp_path: Path) -> None:
    """No dead-letter store (``resight onboard preview``): the same records, restart included, and
    nothing written anywhere."""
    registry = load_registry()
    landing = LocalStore(tmp_path / "landing")
    folder = "pawmart/sales/2026-10-01"
    landing.write_bytes(f"{folder}/a.csv", HEADER + _lines("A", 150))
    landing.write_bytes(f"{folder}/b.csv", HEADER + _lines("B", 150) + b"B-x,1,2026-10-01T10:00:00,S,1,1.00,x,extra\n")
    landing.write_bytes(f"{folder}/c d.csv", HEADER + _lines("C", 1))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    listing = [("pawmart", item) for item in list_partition_files(landing, registry, "pawmart", "sales", DAY)]
    records: list[FileRecord] = []
    ingestion = Ingestion(landing, None, registry, "sales", {}, NOW, slice_bytes=1500)
    written: list[pl.DataFrame] = []
    restarts = 0
    for item in ingest_partition(ingestion, DAY, listing, records):
        if isinstance(item, Restart):
            written, restarts = [], restarts + 1
        else:
            written.append(item)
    assert restarts == 1  # b.csv broke after some of its slices were streamed
    rows = pl.concat(written)
    assert rows.get_column("_source_file").unique().to_list() == [f"{folder}/a.csv"]
    assert [(r.file_key, r.status, r.error_code, r.dead_letter_uri) for r in records] == [
        (f"{folder}/a.csv", "read", None, None),
        (f"{folder}/b.csv", "dead_lettered", "unparseable", None),
        (f"{folder}/c d.csv", "dead_lettered", "bad_file_name", None),
    ]
    assert records[1].checksum == hashlib.sha256((tmp_path / "landing" / folder / "b.csv").read_bytes()).hexdigest()
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
