"""ObjectStore on a local directory and on the moto S3 endpoint: same behaviour on both."""

from __future__ import annotations

import io
import os
from datetime import datetime
from pathlib import Path

import pytest

from resight_platform.io.storage import (
    DEFAULT_S3_MAX_ATTEMPTS,
    LocalStore,
    ObjectStore,
    S3Store,
    UnsafeKey,
    open_store,
)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    if request.param == "local":
        return open_store(str(tmp_path / "store"))
    endpoint: str = request.getfixturevalue("s3_endpoint")
    return open_store(request.getfixturevalue("s3_bucket_url"), endpoint_url=endpoint)


def test_round_trip_overwrite_exists_and_uri(store: ObjectStore, tmp_path: Path) -> None:
    assert not store.exists("a/b/c.bin")
    store.write_bytes("a/b/c.bin", b"first")
    store.write_bytes("a/b/c.bin", b"second")
    assert store.read_bytes("a/b/c.bin") == b"second"
    assert store.exists("a/b/c.bin")
    assert not store.exists("a/b")  # a "directory" is not an object

    source = tmp_path / "upload.csv"
    source.write_bytes(b"x,y\n1,2\n")
    store.write_file("up/load.csv", source)
    assert store.read_bytes("up/load.csv") == b"x,y\n1,2\n"

    if isinstance(store, S3Store):
        assert store.uri("a/b/c.bin") == f"s3://{store.bucket}/lake/a/b/c.bin"
    else:
        assert store.uri("a/b/c.bin") == str(tmp_path / "store" / "a" / "b" / "c.bin")
        assert Path(store.uri("a/b/c.bin")).read_bytes() == b"second"


def test_open_read_streams_the_object_in_pieces(store: ObjectStore) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    store.write_bytes("big/object.bin", data)
    pieces = []
    with store.open_read("big/object.bin") as stream:
        while piece := stream.read(100_000):
            pieces.append(piece)
    assert b"".join(pieces) == data and len(pieces) >= 11


def test_missing_object_reads_raise_file_not_found(store: ObjectStore) -> None:
    with pytest.raises(FileNotFoundError):
        store.read_bytes("nope/missing.bin")
    with pytest.raises(FileNotFoundError), store.open_read("nope/missing.bin"):
        pass
    store.delete("nope/missing.bin")  # no error


def test_list_is_recursive_sorted_and_filters_by_key_prefix(store: ObjectStore) -> None:
    keys = ["b/2.txt", "a/x/1.txt", "a/b-x", "a/bc/2.txt", "a/b/1.txt", "a/b/z/3.txt", "c.txt"]
    for key in keys:
        store.write_bytes(key, key.encode())

    listed = list(store.list())
    assert [info.key for info in listed] == sorted(keys)
    info = next(i for i in listed if i.key == "a/x/1.txt")
    assert info.size == len(b"a/x/1.txt")
    assert info.etag
    assert isinstance(info.last_modified, datetime) and info.last_modified.tzinfo is not None

    # A prefix is a key prefix, not a directory.
    assert [i.key for i in store.list("a/b")] == ["a/b-x", "a/b/1.txt", "a/b/z/3.txt", "a/bc/2.txt"]
    assert [i.key for i in store.list("a/b/")] == ["a/b/1.txt", "a/b/z/3.txt"]
    assert [i.key for i in store.list("a/x/1")] == ["a/x/1.txt"]
    assert list(store.list("zzz/")) == []


def test_children_lists_one_level_of_directories_and_objects(store: ObjectStore) -> None:
    for key in ("t/date=2026-01-02/part-0.parquet", "t/date=2026-01-01/part-0.parquet", "t/data.parquet", "u/x"):
        store.write_bytes(key, b"x")
    assert store.children() == (["t", "u"], [])
    assert store.children("t/") == (["date=2026-01-01", "date=2026-01-02"], ["data.parquet"])
    assert store.children("t/date=2026-01-01/") == ([], ["part-0.parquet"])
    assert store.children("nothing/") == ([], [])
    with pytest.raises(ValueError):
        store.children("../")


def test_s3_children_pages_through_many_prefixes(s3_bucket_url: str, s3_endpoint: str) -> None:
    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, page_size=2)
    days = [f"date=2026-01-{d:02d}" for d in range(1, 8)]
    for day in reversed(days):
        store.write_bytes(f"t/{day}/part-0.parquet", b"x")
    assert store.children("t/") == (days, [])


def test_local_etag_is_size_and_mtime(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("k.bin", b"12345")
    stat = (tmp_path / "k.bin").stat()
    assert [i.etag for i in store.list()] == [f"5-{stat.st_mtime_ns}"]


def test_s3_listing_paginates(s3_bucket_url: str, s3_endpoint: str) -> None:
    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, page_size=2)
    keys = [f"p/{i:02d}.bin" for i in range(7)]
    for key in keys:
        store.write_bytes(key, b"x")
    store.write_bytes("q/outside.bin", b"x")

    calls: list[str] = []
    store.client.meta.events.register("before-call.s3.ListObjectsV2", lambda **kwargs: calls.append("list"))
    assert [info.key for info in store.list("p/")] == keys
    assert len(calls) == 4  # 7 keys, 2 per page
    assert store.delete_prefix("p/") == 7
    assert [info.key for info in store.list()] == ["q/outside.bin"]


def test_s3_requests_are_retried_in_the_standard_mode_as_many_times_as_set(s3_bucket_url: str) -> None:
    store = open_store(s3_bucket_url, max_attempts=4)
    assert isinstance(store, S3Store)
    assert store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 4}  # the first included
    default = open_store(s3_bucket_url)
    assert isinstance(default, S3Store) and default.max_attempts == DEFAULT_S3_MAX_ATTEMPTS
    with pytest.raises(ValueError, match="max_attempts"):
        S3Store("bucket", max_attempts=0)


def test_s3_etag_is_unquoted(s3_bucket_url: str, s3_endpoint: str) -> None:
    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint)
    store.write_bytes("k.bin", b"hello")
    (info,) = store.list()
    assert info.etag == "5d41402abc4b2a76b9719d911017c592"  # md5("hello")


def test_s3_reader_options_reach_what_the_client_reaches(s3_bucket_url: str, s3_endpoint: str) -> None:
    import boto3
    import polars as pl

    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint, max_attempts=4)
    options = store.reader_options()
    assert options["storage_options"] == {
        "max_retries": 3,  # as many as the client's: 4 attempts in all
        "aws_region": "us-east-1",
        "aws_endpoint_url": s3_endpoint,
        "aws_virtual_hosted_style_request": "false",
        "aws_allow_http": "true",
    }
    assert options["credential_provider"]() == (
        {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
        None,  # keys from the environment do not expire
    )
    frame = pl.DataFrame({"a": [1, 2, 3]})
    frame.write_parquet(buffer := io.BytesIO())
    store.write_bytes("t.parquet", buffer.getvalue())
    assert pl.scan_parquet(store.uri("t.parquet"), **options).collect().equals(frame)
    # Keys given to the client win over the environment's; AWS's own endpoint is left to Polars.
    client = boto3.client(
        "s3", region_name="eu-west-1", aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret"
    )
    aws = S3Store("bucket", client=client).reader_options()
    assert aws["storage_options"] == {"max_retries": DEFAULT_S3_MAX_ATTEMPTS - 1, "aws_region": "eu-west-1"}
    assert aws["credential_provider"]()[0]["aws_access_key_id"] == "AKIDEXAMPLE"


def test_s3_reader_credentials_follow_refreshed_temporary_credentials(s3_bucket_url: str, s3_endpoint: str) -> None:
    from datetime import UTC, timedelta

    from botocore.credentials import RefreshableCredentials

    issued: list[str] = []

    def refresh() -> dict[str, str]:
        issued.append(f"ASIA{len(issued)}")
        expiry = datetime.now(UTC) + (timedelta(seconds=30) if len(issued) == 1 else timedelta(hours=1))
        return {"access_key": issued[-1], "secret_key": "s", "token": "t", "expiry_time": expiry.isoformat()}

    store = S3Store.from_url(s3_bucket_url, endpoint_url=s3_endpoint)
    credentials = RefreshableCredentials.create_from_metadata(refresh(), refresh, "test")
    store.client._request_signer._credentials = credentials  # type: ignore[attr-defined]  # as an STS role would
    provide = store.reader_options()["credential_provider"]
    keys, expires = provide()  # 30 s left: within botocore's refresh window, so renewed first
    assert keys == {"aws_access_key_id": "ASIA1", "aws_secret_access_key": "s", "aws_session_token": "t"}
    assert expires is not None and expires > datetime.now(UTC).timestamp() + 3000
    assert provide()[0]["aws_access_key_id"] == "ASIA1"  # still valid: not renewed again


BAD_KEYS = ["../escape", "a/../../b", "a/..", "/etc/passwd", "a\\b", "a\x00b", "", "a//b", "./a"]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_traversal_keys_are_refused(store: ObjectStore, key: str, tmp_path: Path) -> None:
    source = tmp_path / "f"
    source.write_bytes(b"x")
    for call in (
        lambda: store.write_bytes(key, b"x"),
        lambda: store.write_file(key, source),
        lambda: store.read_bytes(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.uri(key),
    ):
        with pytest.raises(ValueError):
            call()
    if key:  # the empty prefix means "everything", which is fine for listing
        with pytest.raises(ValueError):
            list(store.list(key))
        with pytest.raises(ValueError):
            store.delete_prefix(key)
    assert not (tmp_path.parent / "escape").exists()


def test_local_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    store = LocalStore(root)
    assert not root.exists()  # created on first write
    for i in range(5):
        store.write_bytes("t/date=2026-10-01/part-0.parquet", f"v{i}".encode())
    store.write_bytes("t/date=2026-10-02/part-0.parquet", b"other")

    # A failing write (source vanishes) keeps the previous content and leaves nothing behind.
    with pytest.raises(FileNotFoundError):
        store.write_file("t/date=2026-10-01/part-0.parquet", tmp_path / "does-not-exist")
    assert store.read_bytes("t/date=2026-10-01/part-0.parquet") == b"v4"

    on_disk = sorted(
        Path(dirpath, name).relative_to(root).as_posix() for dirpath, _dirs, names in os.walk(root) for name in names
    )
    assert on_disk == ["t/date=2026-10-01/part-0.parquet", "t/date=2026-10-02/part-0.parquet"]


def test_local_listing_skips_in_flight_temp_files(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("t/a.bin", b"x")
    (tmp_path / "t" / ".a.bin.123.resight-tmp").write_bytes(b"partial")
    assert [info.key for info in store.list()] == ["t/a.bin"]


def test_delete_prefix_counts_and_keeps_other_keys(store: ObjectStore) -> None:
    for key in ["t/date=1/a", "t/date=1/b", "t/date=10/a", "t/date=2/a", "u/a"]:
        store.write_bytes(key, b"x")
    assert store.delete_prefix("t/date=1/") == 2
    assert [i.key for i in store.list()] == ["t/date=10/a", "t/date=2/a", "u/a"]
    assert store.delete_prefix("t/") == 2
    assert store.delete_prefix("t/") == 0
    assert [i.key for i in store.list()] == ["u/a"]
    store.delete("u/a")
    assert not store.exists("u/a")


def test_local_delete_prefix_prunes_empty_directories(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "lake")
    store.write_bytes("t/date=1/source=a/part-0.parquet", b"x")
    store.write_bytes("keep/x", b"x")
    assert store.delete_prefix("t/") == 1
    assert not (tmp_path / "lake" / "t").exists()
    assert (tmp_path / "lake" / "keep" / "x").exists()


def test_open_store_dispatches_on_url(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    local = open_store(f"file://{tmp_path}/lake")
    assert isinstance(local, LocalStore) and local.url == str(tmp_path / "lake")
    s3 = open_store("s3://bucket/some/prefix/", endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Store)
    assert (s3.bucket, s3.prefix, s3.url) == ("bucket", "some/prefix", "s3://bucket/some/prefix")
    assert s3.uri("k") == "s3://bucket/some/prefix/k"
    with pytest.raises(ValueError):
        open_store("gs://bucket/x")
    with pytest.raises(ValueError):
        open_store("s3://bucket/../x")


def test_local_links_are_listed_as_links_and_never_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "day").mkdir(parents=True)
    (outside / "secret.csv").write_bytes(b"secret")
    (outside / "day" / "inner.csv").write_bytes(b"secret")
    store = LocalStore(tmp_path / "store")
    store.write_bytes("p/f/d/real.csv", b"real")
    root = tmp_path / "store"
    os.symlink(outside / "secret.csv", root / "p/f/d/file-link.csv")
    os.symlink(outside / "day", root / "p/f/linked-day")
    os.symlink(root / "p/f/d", root / "p/inside-link")
    os.symlink(tmp_path / "nothing", root / "p/f/d/dangling.csv")

    listed = {info.key: info.symlink for info in store.list()}
    assert listed == {
        "p/f/d/dangling.csv": True,
        "p/f/d/file-link.csv": True,
        "p/f/d/real.csv": False,
        "p/f/linked-day": True,
        "p/inside-link": True,
    }
    link = next(info for info in store.list("p/f/d/file-link"))
    assert link.size == len(str(outside / "secret.csv"))  # the link's own size, not its target's
    assert list(store.list("p/f/linked-day/")) == []  # a listing never starts inside a link
    assert [info.key for info in store.list("p/inside-link/")] == []
    assert store.children("p/f/") == (["d"], [])
    assert store.children("p/f/linked-day/") == ([], [])

    for key in ("p/f/d/file-link.csv", "p/f/linked-day/inner.csv", "p/inside-link/real.csv", "p/f/d/dangling.csv"):
        with pytest.raises(UnsafeKey) as refused:
            store.read_bytes(key)
        assert refused.value.symlink and "secret" not in str(refused.value) and str(outside) not in str(refused.value)
        with pytest.raises(UnsafeKey), store.open_read(key):
            pass
        assert not store.exists(key)
    for key in ("p/f/d/file-link.csv", "p/f/linked-day/inner.csv"):
        with pytest.raises(UnsafeKey):
            store.local_path(key)
    with pytest.raises(UnsafeKey):  # never written through a link
        store.write_bytes("p/f/linked-day/new.csv", b"x")
    assert not (outside / "day" / "new.csv").exists()
    store.delete("p/f/d/file-link.csv")  # removes the link, not its target
    assert (outside / "secret.csv").read_bytes() == b"secret"
    assert (
        store.read_bytes("p/f/d/real.csv") == b"real" and store.local_path("p/f/d/real.csv") == root / "p/f/d/real.csv"
    )


def test_a_local_root_reached_through_a_link_is_the_operators_choice(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "via")
    store = LocalStore(tmp_path / "via")
    store.write_bytes("a/b.bin", b"x")
    assert [info.key for info in store.list()] == ["a/b.bin"] and store.read_bytes("a/b.bin") == b"x"
    assert store.local_path("a/b.bin") == tmp_path / "via" / "a" / "b.bin"


def test_local_reads_refuse_what_is_not_a_regular_file(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    os.mkfifo(tmp_path / "pipe.csv")  # opening it for reading would block for ever
    (tmp_path / "dir").mkdir()
    assert list(store.list()) == []
    with pytest.raises(UnsafeKey, match="not a regular file"):
        store.read_bytes("pipe.csv")
    with pytest.raises(IsADirectoryError):
        store.read_bytes("dir")


def test_only_our_own_temp_files_are_left_out_of_a_listing(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    store.write_bytes("t/sales.resight-tmp", b"a partner's name")
    (tmp_path / "t" / ".a.csv.k3j2x9q1.resight-tmp").write_bytes(b"our write in flight")
    assert [info.key for info in store.list()] == ["t/sales.resight-tmp"]


@pytest.mark.parametrize("key", ["a/b\x01c", "a/\x1b[31m", "a/b\nc", "a/\x7f", "a/\x85"])
def test_control_characters_are_refused_on_both_stores(store: ObjectStore, key: str) -> None:
    with pytest.raises(UnsafeKey, match="control character"):
        store.write_bytes(key, b"x")
    with pytest.raises(UnsafeKey):
        store.read_bytes(key)


def test_listed_keys_hold_no_nul_or_undecodable_byte(store: ObjectStore, tmp_path: Path) -> None:
    """A name the ledger cannot hold as text is listed backslash-escaped: readable by a person,
    refused by every store."""
    if isinstance(store, S3Store):
        store.client.put_object(Bucket=store.bucket, Key=f"{store.prefix}/d/a\x00.csv", Body=b"x")
        expected = "d/a\\x00.csv"
    else:
        (tmp_path / "store" / "d").mkdir(parents=True)
        (tmp_path / "store" / "d" / "caf\udce9.csv").write_bytes(b"x")  # the byte 0xe9, not UTF-8
        expected = "d/caf\\xe9.csv"
    assert [info.key for info in store.list()] == [expected]
    with pytest.raises(UnsafeKey, match="backslash"):
        store.read_bytes(expected)
