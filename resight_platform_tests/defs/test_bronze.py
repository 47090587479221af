"""Bronze ingestion of a partition: files streamed slice by slice, a file loads whole or not at all."""

from __future__ import annotations

import gzip
import hashlib
import json
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from resight_platform.defs.bronze import ingest_partition
from resight_platform.io.lake import RestartPartition
from resight_platform.io.landing import list_partition_files
from resight_platform.io.ops import FileRecord
from resight_platform.io.storage import LocalStore
from resight_platform.sources.registry import Registry, load_registry

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
    for item in ingest_partition(
        landing=landing,
        dead_letters=dead,
        registry=registry,
        feed="sales",
        day=DAY,
        listing=listing,
        already_dead=already_dead or {},
        now=NOW,
        records=records,
        slice_bytes=1500,
    ):
        if isinstance(item, RestartPartition):
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
