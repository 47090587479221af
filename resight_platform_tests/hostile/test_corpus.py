"""The malformed corpus: strangers' bytes in one batch, each with its exact outcome in the ledger,
while the good files of the same batch load exactly; memory bounded for the bombs.

Every file is generated here (deterministic bytes, gzip ``mtime=0``) and read the way the bronze
asset reads a partition (``ingest_partitions``, the real ledger in Postgres, dead-letter on disk).
The caps are lowered (``LIMITS``) so that a "50 MB line" or a gzip bomb stays a small test file;
the peak-memory tests run the real-size bombs in a fresh process under the default caps, or under
a lowered file cap where the default would take minutes to reach.
"""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from resight_platform.definitions import build_definitions
from resight_platform.ingest import Ingestion, Restart, ingest_partitions, partition_listing
from resight_platform.io.ops import FileRecord, known_checksums, migrate, record_files, record_silver
from resight_platform.io.postgres import connect
from resight_platform.io.storage import LocalStore
from resight_platform.settings import Settings
from resight_platform.sources.registry import Registry, Source, load_registry
from resight_platform.transforms.bronze import ReadLimits
from resight_platform_tests.transforms.conftest import sale, write_landed

DAY = date(2026, 3, 17)  # no other test lands files for this day
NOW = datetime(2026, 3, 18, 6, tzinfo=UTC)
LIMITS = ReadLimits(max_record_bytes=64 << 10, max_file_bytes=2 << 20)
RECORD_CAP = "longer than the limit of 65536 bytes (RESIGHT_MAX_RECORD_BYTES)"
FILE_CAP = "more than the limit of 2097152 bytes (RESIGHT_MAX_FILE_BYTES)"
#: Slices smaller than a file: several per good file, and a multi-line record judged as it streams.
SLICE_BYTES = 256 << 10


@dataclass(frozen=True)
class Outcome:
    """What the ledger must say of one file: its status, reason and detail, and rows."""

    status: str
    code: str | None = None
    detail: str = ""
    rows: int | None = None
    drift: dict[str, object] | None = None


def _line_from(start: int) -> str:
    return f"the line from byte {start} of the text is {RECORD_CAP}"


def _sales(source: Source, prefix: str, count: int) -> bytes:
    return write_landed(source, [sale(order_id=f"{prefix}-{n}", line_no=str(n % 3 + 1)) for n in range(count)])


def _gz(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _gzip_bomb(head: bytes, unit: bytes, mebibytes: int) -> bytes:
    """A multi-member gzip: ``head``, then ``mebibytes`` MiB of ``unit`` repeated (each member one
    compressed MiB, so the file is ~1 KB a MiB and built at once)."""
    member = _gz(unit * ((1 << 20) // len(unit)))
    return _gz(head) + member * mebibytes


def _parquet(table: pa.Table, **options: Any) -> bytes:
    out = io.BytesIO()
    pq.write_table(table, out, **options)
    return out.getvalue()


def _parquet_rows_bomb(rows: int, group: int = 1 << 20) -> bytes:
    """``rows`` zeros in one int64 column: a few KB on disk (RLE), 8 bytes a value in memory."""
    out = io.BytesIO()
    zeros = pa.table({"order_id": pa.array(np.zeros(group, dtype=np.int64))})
    with pq.ParquetWriter(out, zeros.schema, compression="zstd") as writer:
        for _ in range(rows // group):
            writer.write_table(zeros)
    return out.getvalue()


def _sales_table(source: Source, count: int, **columns: pa.Array) -> pa.Table:
    """A Parquet table of ``source``'s sales columns (strings), some replaced by ``columns``
    (canonical name -> array)."""
    to_source = source.layout.canonical_to_source
    frame = pl.read_parquet(io.BytesIO(_sales(source, "P", count)))
    table = frame.to_arrow()
    for canonical, array in columns.items():
        name = to_source[canonical]
        table = table.set_column(table.schema.get_field_index(name), name, array)
    return table


def _cr_only(data: bytes) -> bytes:
    return data.replace(b"\n", b"\r")


def _corpus(registry: Registry) -> dict[str, tuple[bytes, Outcome]]:
    """``key -> (bytes, outcome)`` of every corpus file."""
    source = {p: registry.source(p, "sales") for p in ("pawmart", "petopia", "vetcare_partners", "chewyish")}
    source |= {p: registry.source(p, "sales") for p in ("petdirect", "northpaw_distribution")}
    src: dict[str, Source] = {p: s for p, s in source.items() if s is not None}
    assert len(src) == 6
    csv, latin, vet, lines, array, parquet = (
        src[p] for p in ("pawmart", "petopia", "vetcare_partners", "chewyish", "petdirect", "northpaw_distribution")
    )
    csv_header = _sales(csv, "H", 0)
    vet_header = _sales(vet, "H", 0)
    vet_text = gzip.decompress(vet_header)
    vet_line = gzip.decompress(_sales(vet, "B", 1))[len(vet_text) :]
    long_value = "x" * (200 << 10)
    json_good = _sales(lines, "J", 30)
    files: dict[str, tuple[bytes, Outcome]] = {
        # --- CSV (pawmart: utf-8, ",") ---
        "pawmart/good.csv": (_sales(csv, "G", 40), Outcome("read", rows=40)),
        "pawmart/header_only.csv": (csv_header, Outcome("loaded", rows=0)),
        "pawmart/zero_bytes.csv": (b"", Outcome("dead_lettered", "unparseable", "the file is empty: no header row")),
        "pawmart/blank_lines_only.csv": (
            b"\n\r\n \n",
            Outcome("dead_lettered", "unparseable", "the file is empty: no header row"),
        ),
        "pawmart/line_of_200k.csv": (
            _sales(csv, "L", 3) + b"L-x,1," + long_value.encode() + b"\n" + _sales(csv, "M", 2)[len(csv_header) :],
            Outcome(
                "dead_lettered",
                "record_too_long",
                f"the line from byte {len(_sales(csv, 'L', 3))} of the text is {RECORD_CAP}",
            ),
        ),
        "pawmart/header_of_200k.csv": (
            long_value.encode(),
            Outcome("dead_lettered", "record_too_long", _line_from(0)),
        ),
        "pawmart/quoted_value_of_many_lines.csv": (
            csv_header + b'Q-1,1,"' + b"a\n" * (150 << 10) + b'",x\n',
            Outcome(
                "dead_lettered",
                "record_too_long",
                f"the record spanning lines from byte {len(csv_header)} of the text is {RECORD_CAP}",
            ),
        ),
        "pawmart/cr_only.csv": (_cr_only(_sales(csv, "CR", 25)), Outcome("read", rows=25)),
        "pawmart/crlf.csv": (_sales(csv, "CRLF", 10).replace(b"\n", b"\r\n"), Outcome("read", rows=10)),
        "pawmart/bom.csv": (b"\xef\xbb\xbf" + _sales(csv, "BOM", 5), Outcome("read", rows=5)),
        "pawmart/utf16.csv": (
            _sales(csv, "U16", 2).decode().encode("utf-16"),
            Outcome("dead_lettered", "unparseable", "the file is not valid utf-8: invalid start byte near byte 0"),
        ),
        "pawmart/latin1_in_utf8_source.csv": (
            _sales(csv, "Café", 2).decode().encode("latin-1"),
            Outcome("dead_lettered", "unparseable", "the bytes look like Latin-1 or Windows-1252"),
        ),
        "pawmart/ragged.csv": (
            _sales(csv, "R", 3) + b"R-x,1,2,3,4,5,6,7,8,9,10,11,12,13,14\n",
            Outcome("dead_lettered", "unparseable", "CSV could not be parsed"),
        ),
        "pawmart/pdf.csv": (
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            Outcome("dead_lettered", "format_mismatch", "file name says csv but the bytes are a PDF document"),
        ),
        # --- CSV in Latin-1 (petopia: ";") ---
        "petopia/good_latin1.csv": (_sales(latin, "Café", 6), Outcome("read", rows=6)),
        "petopia/utf8_in_latin1_source.csv": (
            _sales(latin, "X", 4).decode("latin-1").replace("X-", "Café-").encode("utf-8"),
            Outcome("read", rows=4, drift={"encoding": "declared latin-1, but the bytes are UTF-8"}),
        ),
        # --- gzip (vetcare_partners: csv.gz, "|") ---
        "vetcare_partners/good.csv.gz": (_sales(vet, "V", 30), Outcome("read", rows=30)),
        "vetcare_partners/header_only.csv.gz": (vet_header, Outcome("loaded", rows=0)),
        "vetcare_partners/bomb_one_line.csv.gz": (
            _gzip_bomb(b"", b"A" * 64, 16),
            Outcome("dead_lettered", "record_too_long", _line_from(0)),
        ),
        "vetcare_partners/bomb_of_lines.csv.gz": (
            _gzip_bomb(vet_text, vet_line, 16),
            Outcome("dead_lettered", "too_large", f"the file holds, decompressed, {FILE_CAP}"),
        ),
        "vetcare_partners/truncated.csv.gz": (
            _sales(vet, "T", 200)[:-40],
            Outcome("dead_lettered", "unparseable", "not a readable gzip file: Compressed file ended"),
        ),
        "vetcare_partners/trailer_says_1gib.csv.gz": (
            _sales(vet, "S", 3)[:-4] + (1 << 30).to_bytes(4, "little"),
            Outcome("dead_lettered", "unparseable", "not a readable gzip file: Incorrect length of data produced"),
        ),
        "vetcare_partners/gzipped_parquet.csv.gz": (
            _gz(_parquet(pa.table({"a": [1]}))),
            Outcome("dead_lettered", "format_mismatch", "file name says csv.gz but the bytes are gzip of Parquet"),
        ),
        "vetcare_partners/not_gzip.csv.gz": (
            gzip.decompress(_sales(vet, "N", 2)),
            Outcome("dead_lettered", "format_mismatch", "file name says csv.gz but the bytes are text"),
        ),
        # --- JSON Lines (chewyish) ---
        "chewyish/good.jsonl": (json_good, Outcome("read", rows=30)),
        "chewyish/zero_bytes.jsonl": (b"", Outcome("loaded", rows=0)),
        "chewyish/cr_only.jsonl": (_cr_only(_sales(lines, "JCR", 7)), Outcome("read", rows=7)),
        "chewyish/deep.jsonl": (
            json_good[: json_good.index(b"\n") + 1] + b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}\n",
            Outcome("dead_lettered", "unparseable", "JSON Lines could not be parsed: error parsing line: DepthLimit"),
        ),
        "chewyish/nested_id.jsonl": (
            json_good.replace(b'"J-3"', b'{"id": "J-3"}', 1),
            Outcome("dead_lettered", "nested_value", "record 4: 'orderNumber' holds a JSON object or array"),
        ),
        "chewyish/line_of_200k.jsonl": (
            json_good + json.dumps({"orderNumber": long_value}).encode() + b"\n",
            Outcome(
                "dead_lettered", "record_too_long", f"the line from byte {len(json_good)} of the text is {RECORD_CAP}"
            ),
        ),
        # --- JSON arrays (petdirect) ---
        "petdirect/good.json": (_sales(array, "A", 12), Outcome("read", rows=12)),
        "petdirect/empty_array.json": (b"[]", Outcome("loaded", rows=0)),
        "petdirect/wrapped.json": (
            b'{"orders": ' + _sales(array, "W", 3) + b"}",
            Outcome("dead_lettered", "missing_columns", "an object holding the records in an array under 'orders'"),
        ),
        "petdirect/wrapped_after_meta.json": (
            b'{"meta": {"v": 1}, "orders": ' + _sales(array, "W", 3) + b"}",
            Outcome("dead_lettered", "missing_columns", "an object holding the records in an array under 'orders'"),
        ),
        "petdirect/object_of_200k.json": (
            json.dumps({"order_ref": long_value}).encode(),
            Outcome("dead_lettered", "record_too_long", "the JSON document, not an array of records so read whole"),
        ),
        "petdirect/truncated_array_of_100k.json": (
            _sales(array, "T", 600)[: 100 << 10],
            Outcome("dead_lettered", "unparseable", "the array of records is not well formed (truncated, or an"),
        ),
        "petdirect/deep.json": (
            b'[{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}]",
            Outcome("dead_lettered", "unparseable", "JSON could not be parsed: error parsing line: DepthLimitExceeded"),
        ),
        "petdirect/element_of_200k.json": (
            _sales(array, "E", 2)[:-1] + b", " + json.dumps({"order_ref": long_value}).encode() + b"]",
            Outcome(
                "dead_lettered",
                "record_too_long",
                f"the line from byte {len(_sales(array, 'E', 2))} of the text is {RECORD_CAP}",
            ),
        ),
        # --- Parquet (northpaw_distribution) ---
        "northpaw_distribution/good.parquet": (_sales(parquet, "P", 20), Outcome("read", rows=20)),
        "northpaw_distribution/no_rows.parquet": (_sales(parquet, "P", 0), Outcome("loaded", rows=0)),
        "northpaw_distribution/rows_bomb.parquet": (
            _parquet_rows_bomb(4 << 20),
            Outcome("dead_lettered", "too_large", "the Parquet footer declares 4194304 rows of 1 columns"),
        ),
        "northpaw_distribution/declared_bytes.parquet": (
            _parquet(pa.table({"note": ["y" * 1000] * 4000}), compression="zstd", use_dictionary=False),
            Outcome("dead_lettered", "too_large", "the Parquet footer declares"),
        ),
        "northpaw_distribution/truncated.parquet": (
            _sales(parquet, "P", 20)[:-10],
            Outcome("dead_lettered", "unparseable", "Parquet file is truncated"),
        ),
        "northpaw_distribution/nested_column.parquet": (
            _parquet(_sales_table(parquet, 3, sku=pa.array([{"id": 1}, {"id": 2}, None]))),
            Outcome("dead_lettered", "nested_value", "is of the nested type Struct"),
        ),
        "northpaw_distribution/value_of_200k.parquet": (
            _parquet(_sales_table(parquet, 3, sku=pa.array(["a", "b", long_value]))),
            Outcome("dead_lettered", "record_too_long", f"row 3 is {RECORD_CAP}"),
        ),
    }
    return {f"{k.split('/')[0]}/sales/{DAY.isoformat()}/{k.split('/')[1]}": v for k, v in files.items()}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(scope="module")
def corpus(registry: Registry) -> dict[str, tuple[bytes, Outcome]]:
    return _corpus(registry)


def _ledger(conn: psycopg.Connection[Any], keys: list[str]) -> dict[str, tuple[Any, ...]]:
    rows = conn.execute(
        "select file_key, status, error_code, error, rows_in, rows_loaded, rows_quarantined, schema_drift,"
        " dead_letter_uri from ops.ingestion_ledger where file_key = any(%s)",
        (keys,),
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_the_corpus_has_its_exact_outcomes_and_the_good_files_load_exactly(
    registry: Registry, corpus: dict[str, tuple[bytes, Outcome]], pg_url: str, tmp_path: Path
) -> None:
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    for key, (data, _) in corpus.items():
        landing.write_bytes(key, data)
    assert len(corpus) >= 40
    assert sum(o.status == "dead_lettered" for _, o in corpus.values()) >= 25

    bronze, records = _ingest_all(registry, landing, dead, {})
    with connect(pg_url) as conn:
        migrate(conn)
        record_files(conn, records, run_id="corpus-1", now=NOW)
        ledger = _ledger(conn, list(corpus))

    failures = []
    for key, (data, expected) in corpus.items():
        status, code, error, rows_in, loaded, quarantined, drift, uri = ledger[key]
        got = (status, code, rows_in)
        want = (expected.status, expected.code, expected.rows)
        if got != want or expected.detail not in (error or ""):
            failures.append(f"{key}: got {got} {error!r}, want {want} {expected.detail!r}")
            continue
        if status == "loaded":  # an empty file is done at once: zero counts, never 'read' for ever
            assert (loaded, quarantined) == (0, 0), key
        if status == "dead_lettered":  # copied whole, with its reason; nothing of it in bronze
            assert uri is not None and Path(uri).read_bytes() == data, key
            assert json.loads(Path(f"{uri}.reason.json").read_text())["reason"] == code
            assert bronze.filter(pl.col("_source_file") == key).height == 0, key
        if expected.drift is not None:
            assert drift is not None and {k: drift[k] for k in expected.drift} == expected.drift, key
        elif status == "read":
            assert drift is None or "encoding" not in drift, key
    assert not failures, "\n".join(failures)

    # The good files load exactly: every row once, numbered 1..n, ids as written.
    loaded_rows = bronze.group_by("_source_file").agg(pl.len(), pl.col("_row_number").max(), pl.col("order_id"))
    by_file = {row["_source_file"]: row for row in loaded_rows.iter_rows(named=True)}
    for key, (_, expected) in corpus.items():
        if expected.status == "read":
            row = by_file[key]
            assert row["len"] == row["_row_number"] == expected.rows, key
            assert len(set(row["order_id"])) == expected.rows and None not in row["order_id"], key
    assert set(by_file) == {k for k, (_, o) in corpus.items() if o.status == "read"}
    # Latin-1 as declared (flagged above), a Latin-1 file as it should be.
    assert sorted(by_file[f"petopia/sales/{DAY}/utf8_in_latin1_source.csv"]["order_id"])[0] == "CafÃ©-0"
    assert sorted(by_file[f"petopia/sales/{DAY}/good_latin1.csv"]["order_id"])[0] == "Café-0"

    # A rerun (a retry, or the partition materialised again) finds the same outcomes and copies
    # nothing again: the ledger already holds these bytes as dead-lettered.
    with connect(pg_url) as conn:
        already = known_checksums(conn, list(corpus))
    again, records_again = _ingest_all(registry, landing, dead, already)
    assert again.sort("_source_file", "_row_number").equals(bronze.sort("_source_file", "_row_number"))
    assert all(r.dead_letter_uri is None for r in records_again if r.status == "dead_lettered")
    with connect(pg_url) as conn:
        record_files(conn, records_again, run_id="corpus-2", now=NOW)
        assert {k: v[:3] for k, v in _ledger(conn, list(corpus)).items()} == {k: v[:3] for k, v in ledger.items()}


def _ingest_all(
    registry: Registry, landing: LocalStore, dead: LocalStore, already_dead: dict[str, tuple[str, str]]
) -> tuple[pl.DataFrame, list[FileRecord]]:
    providers = sorted({o.key.split("/")[0] for o in landing.list()})
    partitions = [(p, DAY, partition_listing(landing, registry, [p], "sales", DAY)) for p in providers]
    written: dict[str, list[pl.DataFrame]] = {}
    records: list[FileRecord] = []
    ingestion = Ingestion(landing, dead, registry, "sales", already_dead, NOW, slice_bytes=SLICE_BYTES, limits=LIMITS)
    for partition, item in ingest_partitions(ingestion, partitions, records):
        if isinstance(item, Restart):
            written[partition] = []
        else:
            written.setdefault(partition, []).append(item)
    return pl.concat([f for fs in written.values() for f in fs]), records


def test_the_bronze_asset_reads_under_the_settings_limits(
    registry: Registry, tmp_path: Path, fresh_pg_url: str
) -> None:
    """``RESIGHT_MAX_RECORD_BYTES`` reaches the bronze asset: its first run dead-letters the file
    with the long line, loads the good one and closes the header-only one, in one successful run."""
    landing = tmp_path / "landing"
    settings = Settings.from_env(
        {
            "RESIGHT_HOME": str(tmp_path / "home"),
            "RESIGHT_LANDING_URL": str(landing),
            "RESIGHT_PARTITIONS_START": "2026-03-01",
            "RESIGHT_MAX_RECORD_BYTES": "300",
        }
    )
    assert (settings.max_record_bytes, settings.max_file_bytes) == (300, 4 << 30)
    source = registry.source("pawmart", "sales")
    assert source is not None
    folder = f"pawmart/sales/{DAY}"
    store = LocalStore(landing)
    store.write_bytes(f"{folder}/good.csv", _sales(source, "G", 5))
    store.write_bytes(f"{folder}/header.csv", _sales(source, "H", 0))
    store.write_bytes(f"{folder}/long.csv", _sales(source, "L", 2) + b"L-9,1," + b"z" * 301 + b"\n")
    latin = registry.source("petopia", "sales")
    assert latin is not None
    utf8 = _sales(latin, "X", 2).decode("latin-1").replace("X-", "Café-").encode("utf-8")
    store.write_bytes(f"petopia/sales/{DAY}/utf8.csv", utf8)
    defs = build_definitions(settings, pg_url=fresh_pg_url)
    checks = {}
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("source", ["pawmart", "petopia"])
        for provider in ("pawmart", "petopia"):
            result = defs.resolve_job_def("landing_job").execute_in_process(
                instance=instance,
                partition_key=f"{DAY}|{provider}",
                asset_selection=[dg.AssetKey(["bronze", "sales"])],
            )
            assert result.success
            (check,) = [
                e.asset_check_evaluation_data
                for e in result.all_events
                if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
                and e.asset_check_evaluation_data.check_name == "columns_match_the_registry"
            ]
            checks[provider] = check
    assert checks["pawmart"].passed
    # The encoding contradicted is a drift signal: the bronze check warns, naming the kind.
    assert not checks["petopia"].passed
    assert checks["petopia"].metadata["failures_by_rule"].value == {"encoding": 1}
    with connect(fresh_pg_url) as conn:
        ledger = _ledger(conn, [f"{folder}/{name}" for name in ("good.csv", "header.csv", "long.csv")])
    assert {key.rsplit("/", 1)[1]: row[:5] for key, row in ledger.items()} == {
        "good.csv": ("read", None, None, 5, None),
        "header.csv": ("loaded", None, None, 0, 0),
        "long.csv": (
            "dead_lettered",
            "record_too_long",
            f"the line from byte {len(_sales(source, 'L', 2))} of the text is longer than the limit of 300 bytes"
            " (RESIGHT_MAX_RECORD_BYTES)",
            None,
            None,
        ),
    }


def test_a_long_value_never_reaches_quarantine_raw_whole(pg_url: str) -> None:
    """A line over the cap never reaches silver (above); one under it that breaks a rule is kept in
    ``ops.quarantine.raw`` cut to 8 KiB, with a marker saying how long it was."""
    raw = json.dumps({"order_id": "Q" * 60_000})
    quarantine = pl.DataFrame(
        {
            "feed": ["sales", "sales"],
            "provider": ["pawmart", "pawmart"],
            "business_date": [DAY, DAY],
            "_source_file": ["k", "k"],
            "_row_number": [1, 2],
            "rule": ["order_id_valid", "order_id_valid"],
            "raw": [raw, '{"order_id": "short"}'],
            "_ingested_at": [NOW, NOW],
        }
    )
    empty = pl.DataFrame(schema={"_source_file": pl.String, "rows_in": pl.Int64})
    with connect(pg_url) as conn:
        migrate(conn)
        record_silver(conn, feed="sales", partitions=[(DAY, "pawmart")], quarantine=quarantine, reconciliation=empty)
        rows = conn.execute(
            "select raw from ops.quarantine where provider = 'pawmart' and business_date = %s order by row_number",
            (DAY,),
        ).fetchall()
    assert rows[0][0] == {"truncated_raw": raw[:8192], "raw_characters": len(raw)}
    assert rows[1][0] == {"order_id": "short"}


# --- Peak memory of the bombs, each in a fresh process --------------------------------------------

_PROBE = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, date, datetime
    from pathlib import Path
    from resight_platform.sources.registry import load_registry
    from resight_platform.transforms.bronze import FileRejected, ReadLimits, read_landing_stream

    def memory(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
        raise LookupError(field)

    registry = load_registry()
    for path, provider, fmt, record, file in json.loads(sys.argv[1]):
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) starts again from now
        before = memory("VmRSS")
        code = None
        with open(path, "rb") as stream:
            try:
                for _ in read_landing_stream(
                    stream, file_format=fmt, source=registry.source(provider, "sales"), key=path,
                    business_date=date(2026, 3, 17), ingested_at=datetime(2026, 3, 18, tzinfo=UTC),
                    limits=ReadLimits(record, file),
                ):
                    pass
            except FileRejected as exc:
                code = exc.code
        print(json.dumps({"code": code, "rss_before_mib": before, "peak_mib": memory("VmHWM")}))
    """
)

#: The most a bomb's reading may add to the process: each of these would need 1 GiB (or 128 MiB
#: of Parquet values) and more unbounded; under its cap it holds a slice or a block.
GROWTH_MIB = 256

#: ``(name, provider, format, max_record_bytes, max_file_bytes, outcome)`` of each bomb.
BOMBS = [
    # 1 GiB decompressed with no line break, under the default caps: stopped at 1 MiB of line.
    ("one_line_1gib", "vetcare_partners", "csv.gz", 1 << 20, 4 << 30, "record_too_long"),
    # 1 GiB of sales lines: the file cap (lowered to 32 MiB; the default 4 GiB only takes longer).
    ("lines_1gib", "vetcare_partners", "csv.gz", 1 << 20, 32 << 20, "too_large"),
    # 16M rows of zeros in a small Parquet file (128 MiB as values): refused by its footer.
    ("parquet_rows", "northpaw_distribution", "parquet", 1 << 20, 32 << 20, "too_large"),
]


def _bomb(name: str, registry: Registry) -> bytes:
    vet = registry.source("vetcare_partners", "sales")
    assert vet is not None
    header = gzip.decompress(_sales(vet, "H", 0))
    if name == "one_line_1gib":
        return _gzip_bomb(b"", b"A" * 64, 1024)
    if name == "lines_1gib":
        return _gzip_bomb(header, gzip.decompress(_sales(vet, "B", 1))[len(header) :], 1024)
    return _parquet_rows_bomb(16 << 20, 4 << 20)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="peak RSS is read from Linux's /proc")
def test_peak_memory_of_the_bombs_stays_bounded(registry: Registry, tmp_path: Path) -> None:
    """Each bomb read in one fresh process, its peak resident memory measured from just before."""
    jobs = []
    for name, provider, fmt, record, file, _ in BOMBS:
        path = tmp_path / f"{name}.{fmt}"
        path.write_bytes(_bomb(name, registry))
        assert path.stat().st_size < 4 << 20  # a small file on disk
        jobs.append((str(path), provider, fmt, record, file))
    probe = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(jobs)], capture_output=True, text=True, check=True)
    results = [json.loads(line) for line in probe.stdout.strip().splitlines()]
    for (name, *_, code), (bomb, *_), result in zip(BOMBS, jobs, results, strict=True):
        growth = result["peak_mib"] - result["rss_before_mib"]
        print(
            f"{name}: {Path(str(bomb)).stat().st_size} bytes on disk, {result['code']}, peak RSS "
            f"{result['peak_mib']:.0f} MiB ({growth:+.0f} MiB while reading it)"
        )
        assert result["code"] == code, name
        assert growth < GROWTH_MIB, (name, result)
