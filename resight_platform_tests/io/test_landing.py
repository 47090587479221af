"""Reading the landing zone on a local directory and on the moto S3 endpoint; dead-lettering."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import boto3
import pytest

from resight_platform.io.landing import (
    LandedFile,
    checksum,
    copy_to_dead_letter,
    dead_letter,
    list_partition_files,
    partition_prefix,
    scan_landing,
    spool,
)
from resight_platform.io.storage import LocalStore, ObjectStore, S3Store, UnsafeKey, open_store
from resight_platform.sources.registry import FEEDS, Registry, load_registry

AT = datetime(2026, 10, 2, 6, 30, tzinfo=UTC)
DAY = date(2026, 10, 1)


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry()


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_store(str(tmp_path / "landing"))
    endpoint: str = request.getfixturevalue("s3_endpoint")
    bucket_url: str = request.getfixturevalue("s3_bucket_url")
    return open_store(bucket_url.replace("/lake", "/landing"), endpoint_url=endpoint)


def unregistered_source(registry: Registry) -> tuple[str, str]:
    return next((p, f) for p in registry.provider_slugs() for f in FEEDS if registry.source(p, f) is None)


def landing_keys(registry: Registry) -> tuple[dict[str, tuple[str, str, date]], dict[str, str]]:
    """Well-placed keys → (provider, feed, date) and refused keys → reason code."""
    provider, feed = unregistered_source(registry)
    good = {
        "pawmart/sales/2026-10-01/sales_2026-10-01.csv": ("pawmart", "sales", DAY),
        "pawmart/sales/2026-10-01/sales_2026-10-01_v2.csv.gz": ("pawmart", "sales", DAY),
        "pawmart/catalog/2026-10-01/catalog.parquet": ("pawmart", "catalog", DAY),
        "pawmart/sales/2026-10-02/sales.jsonl": ("pawmart", "sales", date(2026, 10, 2)),
        "petopia/customers/2026-10-01/customers.json": ("petopia", "customers", DAY),
    }
    bad = {
        "stray.csv": "bad_key",
        "pawmart/sales/2026-10-01/archive/sales_2026-10-01.csv": "bad_key",
        "Bad-Provider/sales/2026-10-01/sales.csv": "bad_provider",
        "pawmart/returns/2026-10-01/returns.csv": "unknown_feed",
        "pawmart/sales/2026-13-45/sales.csv": "bad_date",
        "pawmart/sales/2026-10-01/sales 2026-10-01 (1).csv": "bad_file_name",
        "pawmart/sales/2026-10-01/.hidden.csv": "bad_file_name",
        "pawmart/sales/2026-10-01/sales,x.csv": "bad_file_name",
        "pawmart/sales/2026-10-01/sales_2026-10-01.xlsx": "unsupported_format",
        "ghostpets/sales/2026-10-01/sales.csv": "unknown_provider",
        f"{provider}/{feed}/2026-10-01/{feed}.csv": "unknown_source",
    }
    return good, bad


def fill(store: ObjectStore, keys: list[str]) -> None:
    for key in keys:
        store.write_bytes(key, f"content of {key}".encode())


def test_scan_landing_splits_files_and_rejected_keys(store: ObjectStore, registry: Registry) -> None:
    good, bad = landing_keys(registry)
    fill(store, [*good, *bad])
    scan = scan_landing(store, registry)
    assert {f.key.key: (f.key.provider, f.key.feed, f.key.date) for f in scan.files} == good
    assert {info.key: error.code for info, error in scan.rejected} == bad
    for landed in scan.files:
        assert landed.info.key == landed.key.key
        assert landed.info.size == len(f"content of {landed.info.key}".encode())
    assert scan.partitions() == {
        (DAY, "pawmart", "sales"),
        (DAY, "pawmart", "catalog"),
        (date(2026, 10, 2), "pawmart", "sales"),
        (DAY, "petopia", "customers"),
    }


def test_scan_landing_under_a_prefix(store: ObjectStore, registry: Registry) -> None:
    good, bad = landing_keys(registry)
    fill(store, [*good, *bad])
    scan = scan_landing(store, registry, prefix="pawmart/sales/2026-10-01/")
    assert sorted(f.key.file_name for f in scan.files) == ["sales_2026-10-01.csv", "sales_2026-10-01_v2.csv.gz"]
    assert {info.key: error.code for info, error in scan.rejected} == {
        k: c for k, c in bad.items() if k.startswith("pawmart/sales/2026-10-01/")
    }


def test_a_scan_on_a_range_of_dates_keeps_those_files_and_every_refused_key(
    store: ObjectStore, registry: Registry
) -> None:
    good, bad = landing_keys(registry)
    fill(store, [*good, *bad])
    scan = scan_landing(store, registry)
    second = scan.on_dates(date(2026, 10, 2), date(2026, 10, 31))
    assert second.partitions() == {(date(2026, 10, 2), "pawmart", "sales")}
    assert {info.key for info, _ in second.rejected} == set(bad)
    assert scan.on_dates(DAY, DAY).partitions() == scan.partitions() - second.partitions()
    assert len(scan.files) == len(good)  # the scan itself is unchanged


def test_scan_of_an_empty_landing_zone(store: ObjectStore, registry: Registry) -> None:
    scan = scan_landing(store, registry)
    assert (scan.files, scan.rejected, scan.partitions()) == ([], [], set())


def test_list_partition_files(store: ObjectStore, registry: Registry) -> None:
    good, bad = landing_keys(registry)
    fill(store, [*good, *bad, "pawmart/sales/2026-10-011/x.csv"])
    assert partition_prefix("pawmart", "sales", DAY) == "pawmart/sales/2026-10-01/"
    listed = list(list_partition_files(store, registry, "pawmart", "sales", DAY))
    files = [item.key.key for item in listed if isinstance(item, LandedFile)]
    refused = {item[0].key: item[1].code for item in listed if not isinstance(item, LandedFile)}
    assert files == [
        "pawmart/sales/2026-10-01/sales_2026-10-01.csv",
        "pawmart/sales/2026-10-01/sales_2026-10-01_v2.csv.gz",
    ]
    assert refused == {
        "pawmart/sales/2026-10-01/.hidden.csv": "bad_file_name",
        "pawmart/sales/2026-10-01/archive/sales_2026-10-01.csv": "bad_key",
        "pawmart/sales/2026-10-01/sales 2026-10-01 (1).csv": "bad_file_name",
        "pawmart/sales/2026-10-01/sales,x.csv": "bad_file_name",
        "pawmart/sales/2026-10-01/sales_2026-10-01.xlsx": "unsupported_format",
    }
    assert list(list_partition_files(store, registry, "pawmart", "stores", DAY)) == []


def test_checksum_is_sha256() -> None:
    assert checksum(b"abc") == hashlib.sha256(b"abc").hexdigest()


# --- dead letter --------------------------------------------------------------------------------

HOSTILE_KEYS = [
    "../../../../etc/passwd",
    "pawmart/sales/2026-10-01/../../../../../tmp/evil.csv",
    "pawmart/sales/2026-10-01/..",
    "..",
    "/etc/passwd",
    "pawmart\\..\\..\\evil.csv",
    "pawmart/sales/2026-10-01/\x00.csv",
    "pawmart/sales/2026-10-01/.hidden.csv",
    "pawmart/sales/2026-10-01/sales 2026-10-01 (1);rm -rf ~.csv",
    "pawmart/sales/2026-10-01/",
    "pawmart/sales/2026-10-01/" + "x" * 500 + ".csv",
    "pawmart/sales/2026-10-01/caf\udce9.csv",  # an undecodable byte, as os.listdir gives it
]


def test_copy_to_dead_letter_writes_data_and_reason(tmp_path: Path) -> None:
    root = tmp_path / "lake" / "dead_letter"
    dead = LocalStore(root)
    key = "pawmart/sales/2026-13-45/sales_2026-13-45.csv"
    uri = copy_to_dead_letter(dead, key=key, data=b"a,b\n1,2\n", code="bad_date", detail="not a date", at=AT)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    assert uri == str(root / "2026-10-02" / digest / "sales_2026-13-45.csv")
    assert Path(uri).read_bytes() == b"a,b\n1,2\n"
    reason = json.loads(Path(uri + ".reason.json").read_text())
    assert reason == {
        "key": key,
        "reason": "bad_date",
        "detail": "not a date",
        "checksum": hashlib.sha256(b"a,b\n1,2\n").hexdigest(),
        "dead_lettered_at": AT.isoformat(),
    }


def test_same_file_name_under_different_keys_does_not_collide(tmp_path: Path) -> None:
    dead = LocalStore(tmp_path / "dead_letter")
    first = copy_to_dead_letter(dead, key="a1/sales/x/s.csv", data=b"1", code="bad_date", detail="", at=AT)
    second = copy_to_dead_letter(dead, key="a2/sales/x/s.csv", data=b"2", code="bad_date", detail="", at=AT)
    assert first != second
    assert (Path(first).read_bytes(), Path(second).read_bytes()) == (b"1", b"2")
    again = copy_to_dead_letter(dead, key="a1/sales/x/s.csv", data=b"3", code="bad_date", detail="", at=AT)
    assert again == first and Path(first).read_bytes() == b"3"  # same key: replaced, not duplicated


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_hostile_key_never_escapes_the_dead_letter_root(tmp_path: Path, key: str) -> None:
    # Deep enough that a traversal of up to 8 levels would still land inside tmp_path and be seen.
    root = tmp_path.joinpath(*"abcdefgh") / "dead_letter"
    uri = copy_to_dead_letter(LocalStore(root), key=key, data=b"payload", code="bad_key", detail="d", at=AT)
    written = [Path(dirpath, name) for dirpath, _dirs, names in os.walk(tmp_path) for name in names]
    assert len(written) == 2
    for path in written:
        assert path.resolve().is_relative_to(root.resolve()), path
    assert Path(uri).read_bytes() == b"payload"
    name = Path(uri).name
    assert name and not name.startswith(".") and len(name) <= 100
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    assert Path(uri).parent == root / "2026-10-02" / digest
    reason = json.loads(Path(uri + ".reason.json").read_text())
    assert reason["key"] == key  # the original key, exactly
    assert reason["reason"] == "bad_key"


@pytest.mark.parametrize("key", HOSTILE_KEYS[:6])
def test_hostile_key_on_s3_stays_under_the_dead_letter_prefix(s3_bucket_url: str, s3_endpoint: str, key: str) -> None:
    dead = open_store(f"{s3_bucket_url}/dead_letter", endpoint_url=s3_endpoint)
    assert isinstance(dead, S3Store)
    uri = copy_to_dead_letter(dead, key=key, data=b"payload", code="bad_key", detail="d", at=AT)
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    stored = [o["Key"] for o in client.list_objects_v2(Bucket=dead.bucket)["Contents"]]
    assert len(stored) == 2
    assert all(k.startswith("lake/dead_letter/2026-10-02/") and ".." not in k.split("/") for k in stored)
    assert uri == f"s3://{dead.bucket}/{min(stored)}"
    reason_key = next(k for k in stored if k.endswith(".reason.json"))
    reason = json.loads(client.get_object(Bucket=dead.bucket, Key=reason_key)["Body"].read())
    assert reason["key"] == key


# --- links and keys no store may read ------------------------------------------------------------


def test_links_are_refused_with_their_own_reason_whatever_their_name(tmp_path: Path, registry: Registry) -> None:
    store = LocalStore(tmp_path / "landing")
    outside = tmp_path / "outside"
    (outside / "day").mkdir(parents=True)
    (outside / "day" / "sales.csv").write_bytes(b"outside")
    store.write_bytes("pawmart/sales/2026-10-01/good.csv", b"x")
    os.symlink(outside / "day" / "sales.csv", tmp_path / "landing/pawmart/sales/2026-10-01/link.csv")
    os.symlink(outside / "day", tmp_path / "landing/pawmart/sales/2026-10-02")

    scan = scan_landing(store, registry)
    assert [f.key.key for f in scan.files] == ["pawmart/sales/2026-10-01/good.csv"]
    assert {info.key: (error.code, error.detail) for info, error in scan.rejected} == {
        key: ("symlink", "a symbolic link: never followed, its target is neither read nor copied")
        for key in ("pawmart/sales/2026-10-01/link.csv", "pawmart/sales/2026-10-02")
    }
    linked_day = list(list_partition_files(store, registry, "pawmart", "sales", date(2026, 10, 2)))
    assert [(item[0].key, item[1].code) for item in linked_day if not isinstance(item, LandedFile)] == [
        ("pawmart/sales/2026-10-02", "symlink")  # the folder itself, reported, never listed through
    ]
    assert len(linked_day) == 1


def test_a_link_is_dead_lettered_as_a_reason_file_without_being_read(tmp_path: Path) -> None:
    landing, dead = LocalStore(tmp_path / "landing"), LocalStore(tmp_path / "dead")
    (tmp_path / "secret.csv").write_bytes(b"SECRET")
    (tmp_path / "landing" / "p").mkdir(parents=True)
    os.symlink(tmp_path / "secret.csv", tmp_path / "landing" / "p" / "link.csv")
    spool_dir = tmp_path / "spool"

    uri, digest, size, detail = dead_letter(
        landing, dead, "p/link.csv", "symlink", "a link", AT, None, 9, None, spool_dir
    )

    assert uri is not None and uri.endswith("link.csv.reason.json") and digest is None and size == 9
    assert detail == "a link; not copied to dead-letter (its bytes are never read), left in the landing zone"
    assert [info.key for info in dead.list()] == [Path(uri).relative_to(tmp_path / "dead").as_posix()]
    reason = json.loads(Path(uri).read_text())
    assert (reason["key"], reason["reason"], reason["checksum"], reason["detail"]) == (
        "p/link.csv",
        "symlink",
        None,
        detail,
    )
    assert b"SECRET" not in b"".join(p.read_bytes() for p in (tmp_path / "dead").rglob("*") if p.is_file())
    assert not spool_dir.exists() or not list(spool_dir.iterdir())
    # Already dead-lettered so: nothing written again.
    assert (
        dead_letter(landing, dead, "p/link.csv", "symlink", "a link", AT, None, 9, (None, "dead_lettered"))[0] is None
    )


def test_a_key_no_store_may_read_is_dead_lettered_as_a_reason_file(store: ObjectStore, tmp_path: Path) -> None:
    dead = LocalStore(tmp_path / "dead")
    key = "pawmart/sales/2026-10-01/a\\b.csv"
    uri, digest, _, detail = dead_letter(store, dead, key, "bad_key", "backslash", AT, None, 3, None, tmp_path / "sp")
    assert uri is not None and uri.endswith(".reason.json") and digest is None
    assert json.loads(Path(uri).read_text())["key"] == key and "left in the landing zone" in detail
    assert not (tmp_path / "sp").exists()  # nothing opened, nothing spooled


def test_spool_goes_to_its_directory_and_is_removed_however_the_block_ends(store: ObjectStore, tmp_path: Path) -> None:
    store.write_bytes("a/b.csv", b"payload")
    directory = tmp_path / "spool"
    with spool(store, "a/b.csv", directory) as (path, digest, size):
        assert path.parent == directory and path.read_bytes() == b"payload"
        assert (digest, size) == (checksum(b"payload"), 7)
    assert list(directory.iterdir()) == []
    with pytest.raises(RuntimeError), spool(store, "a/b.csv", directory):
        raise RuntimeError("the copy to dead-letter failed")
    assert list(directory.iterdir()) == []
    for key, error in (("a/missing.csv", FileNotFoundError), ("a/\x01.csv", UnsafeKey)):
        with pytest.raises(error), spool(store, key, directory):
            pass
    assert list(directory.iterdir()) == []
