"""A tiny object store: the same calls on a local directory and on S3 (landing, lake, dead letter).

Keys are relative to the store's root, ``/``-separated, and never escape it: a key with an empty,
``.`` or ``..`` segment, a leading ``/``, a backslash or a control character raises
:class:`UnsafeKey` (a ``ValueError``) on every backend. On a local directory nothing outside the
root is ever listed, read or written: symbolic links are never followed (a listing reports one as
an :class:`ObjectInfo` with ``symlink=True`` and descends into no linked directory; a read of one
raises :class:`UnsafeKey`), and only regular files are read. Writes are atomic: a reader sees the
previous object or the new one, never a part.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import re
import shutil
import stat as stat_mode
import tempfile
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Protocol, cast

from resight_platform.io.requests import meter

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "DEFAULT_S3_MAX_ATTEMPTS",
    "PARTITION_FILE",
    "UNPARTITIONED_FILE",
    "LocalStore",
    "ObjectInfo",
    "ObjectStore",
    "S3Store",
    "UnsafeKey",
    "open_store",
    "validate_key",
    "validate_prefix",
]

#: The lake's file names (layout in ``io/lake.py``), here so that readers without Dagster
#: (``resight_platform.access``) share them with the IO managers.
PARTITION_FILE = "part-0.parquet"
UNPARTITIONED_FILE = "data.parquet"

#: Attempts of one S3 request, the first included (``Settings.s3_max_attempts``): with botocore's
#: ``standard`` retry mode's jittered backoff (at most 20 s between two), nine retries ride
#: through a minute or so of 500/503 answers or SlowDown throttling.
DEFAULT_S3_MAX_ATTEMPTS = 10

_TMP_SUFFIX = ".resight-tmp"
#: The shape of an atomic write's temporary file (``.{name}.{random}.resight-tmp``, hidden): only
#: these are left out of a listing; a partner's ``x.resight-tmp`` is listed like any other name.
_OWN_TMP = re.compile(r"^\..+" + re.escape(_TMP_SUFFIX) + "$")
_S3_DELETE_BATCH = 1000
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class UnsafeKey(ValueError):
    """A key that cannot name an object safely: a traversal, a control character, or on a local
    directory a symbolic link or something other than a regular file. The message names the key
    only, never what a link points to."""

    def __init__(self, key: str, reason: str, *, symlink: bool = False) -> None:
        self.key = key
        self.reason = reason
        #: The key is, or goes through, a symbolic link.
        self.symlink = symlink
        super().__init__(f"{key!r} {reason}")


@dataclass(frozen=True)
class ObjectInfo:
    """One stored object. ``key`` is relative to the store root."""

    key: str
    size: int
    etag: str
    last_modified: datetime
    #: A symbolic link in a local directory (of a file or a directory, never followed): its size,
    #: ETag and time are the link's own; its target is neither read nor listed.
    symlink: bool = False


class ObjectStore(Protocol):
    """What the platform needs from a place that holds files."""

    url: str

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with ``prefix`` (a key prefix, not a directory), by key;
        with ``start_after``, only keys that sort after it (S3's ``StartAfter``: a listing resumed
        or started mid-way without reading what comes before)."""
        ...

    def read_bytes(self, key: str) -> bytes:
        """The object's content; ``FileNotFoundError`` if there is none."""
        ...

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """The object's content as a stream read front to back (``FileNotFoundError`` if none), so
        a large file is never held whole in memory."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace the object atomically."""
        ...

    def write_file(self, key: str, path: Path) -> None:
        """Create or replace the object atomically with the content of a local file."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove the object; no error if it is missing."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Remove every object under ``prefix``; returns how many were removed."""
        ...

    def uri(self, key: str) -> str:
        """Absolute local path or ``s3://bucket/...`` URL of the key."""
        ...

    def local_path(self, key: str) -> Path | None:
        """The key's file on this machine's disk, for readers that scan files lazily (None on S3)."""
        ...

    def children(self, prefix: str = "") -> tuple[builtins.list[str], builtins.list[str]]:
        """One level of the store: the sorted names of the "directories" and of the objects right
        under ``prefix`` (``""`` or ending in ``/``), as S3 lists with a ``/`` delimiter."""
        ...


def _check_text(value: str, what: str) -> None:
    if "\\" in value:
        raise UnsafeKey(value, f"({what}) contains a backslash")
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise UnsafeKey(value, f"({what}) contains a control character")
    if value.startswith("/"):
        raise UnsafeKey(value, f"({what}) is absolute; keys are relative to the store root")


def _printable(key: str) -> str:
    """A listed key as text the ledger, logs and S3 can hold: a NUL byte or an undecodable byte of a
    local file name (a lone surrogate from ``os.fsdecode``) is written backslash-escaped, which
    makes the key one no store reads (:func:`validate_key` refuses a backslash) but a person can."""
    if "\x00" not in key and not any("\udc80" <= char <= "\udcff" for char in key):
        return key
    raw = key.encode("utf-8", "surrogateescape").replace(b"\x00", b"\\x00")
    return raw.decode("utf-8", "backslashreplace")


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative object key, else raise :class:`UnsafeKey`."""
    if not key:
        raise UnsafeKey(key, "(object key) is empty")
    _check_text(key, "object key")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise UnsafeKey(key, "(object key) has an empty, '.' or '..' segment")
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is a safe key prefix (may be empty or end with ``/``)."""
    if not prefix:
        return prefix
    _check_text(prefix, "key prefix")
    segments = prefix.split("/")
    if segments[-1] == "":
        segments = segments[:-1]
    for segment in segments:
        if segment in ("", ".", ".."):
            raise UnsafeKey(prefix, "(key prefix) has an empty, '.' or '..' segment")
    return prefix


class LocalStore:
    """Objects as files under a root directory (created on first write).

    The root itself may be reached through a link (an operator's choice); below it, every path is
    opened one directory at a time with ``O_NOFOLLOW`` (``openat``), so a link anywhere under the
    root, even one swapped in after a listing, is refused rather than followed."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().absolute()
        self.url = str(self.root)

    def __repr__(self) -> str:
        return f"LocalStore({self.url!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    def _open_dir(self, parts: builtins.list[str], key: str) -> int:
        """A descriptor of the directory ``root/parts...``, reached without following a link."""
        fd = os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)
        try:
            for depth, part in enumerate(parts):
                try:
                    child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as error:
                    if error.errno in (errno.ELOOP, errno.ENOTDIR) and _is_link(part, fd):
                        raise UnsafeKey(
                            key, f"goes through a symbolic link ({'/'.join(parts[: depth + 1])})", symlink=True
                        ) from None
                    raise
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_file(self, key: str) -> int:
        """A descriptor of the regular file ``key``, reached without following a link."""
        parts = validate_key(key).split("/")
        directory = self._open_dir(parts[:-1], key)
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=directory)
        except OSError as error:
            if error.errno == errno.ELOOP:
                raise UnsafeKey(key, "is a symbolic link; links are not followed", symlink=True) from None
            raise
        finally:
            os.close(directory)
        mode = os.fstat(fd).st_mode
        if not stat_mode.S_ISREG(mode):
            os.close(fd)
            if stat_mode.S_ISDIR(mode):
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(self._path(key)))
            raise UnsafeKey(key, "is not a regular file")
        os.set_blocking(fd, True)
        return fd

    def _inside(self, path: Path, key: str) -> Path:
        """``path`` if no link under the root leads it elsewhere (checked as far as it exists): one
        ``lstat`` per level below the root (the root itself may be a link; ``os.path.realpath`` is
        pure Python and cost ~1 ms a call on the lake's paths)."""
        current = str(self.root)
        for part in path.relative_to(self.root).parts:
            current = os.path.join(current, part)
            try:
                mode = os.lstat(current).st_mode
            except (FileNotFoundError, NotADirectoryError):
                break
            if stat_mode.S_ISLNK(mode):
                raise UnsafeKey(key, "goes through a symbolic link under the store root", symlink=True)
        return path

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        validate_prefix(prefix)
        # Walk only the deepest directory the prefix fully names, and skip every directory whose
        # keys all sort before ``start_after``, so a listing from a recent date does not read history.
        directory_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        found: list[ObjectInfo] = []

        def walk(fd: int, relative: str) -> None:
            with os.scandir(fd) as scan:
                entries = builtins.list(scan)
            for entry in entries:
                key = relative + _printable(entry.name)
                try:
                    if entry.is_symlink():  # reported, never followed
                        if key.startswith(prefix) and key > start_after:
                            found.append(_local_info(key, entry.stat(follow_symlinks=False), symlink=True))
                    elif entry.is_dir(follow_symlinks=False):
                        sub = key + "/"
                        if not (sub.startswith(prefix) or prefix.startswith(sub)):
                            continue
                        if sub < start_after and not start_after.startswith(sub):
                            continue  # every key below sorts before start_after
                        child = os.open(entry.name, _DIR_FLAGS, dir_fd=fd)
                        try:
                            walk(child, sub)
                        finally:
                            os.close(child)
                    elif (
                        entry.is_file(follow_symlinks=False)
                        and not _OWN_TMP.match(entry.name)
                        and key.startswith(prefix)
                        and key > start_after
                    ):
                        found.append(_local_info(key, entry.stat(follow_symlinks=False)))
                except (FileNotFoundError, NotADirectoryError):  # deleted while listing
                    continue
                except OSError as error:  # a directory swapped for a link while listing: the next listing reports it
                    if error.errno != errno.ELOOP:
                        raise

        try:
            start = self._open_dir(directory_part.split("/") if directory_part else [], prefix)
        except (FileNotFoundError, NotADirectoryError, UnsafeKey):
            return  # nothing there, or a linked directory: a listing of its parent reports the link
        try:
            walk(start, f"{directory_part}/" if directory_part else "")
        finally:
            os.close(start)
        found.sort(key=lambda info: info.key)
        yield from found

    def read_bytes(self, key: str) -> bytes:
        with self.open_read(key) as handle:
            return handle.read()

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        try:
            fd = self._open_file(key)
        except FileNotFoundError:
            raise FileNotFoundError(errno.ENOENT, "no such object", str(self._path(key))) from None
        return os.fdopen(fd, "rb")

    def write_bytes(self, key: str, data: bytes) -> None:
        def fill(handle: BinaryIO) -> None:
            handle.write(data)

        self._atomic_write(key, fill)

    def write_file(self, key: str, path: Path) -> None:
        def fill(handle: BinaryIO) -> None:
            with open(path, "rb") as source:
                shutil.copyfileobj(source, handle, length=1024 * 1024)

        self._atomic_write(key, fill)

    def _atomic_write(self, key: str, fill: Callable[[BinaryIO], None]) -> None:
        target = self._path(key)
        for attempt in range(3):
            self._inside(target.parent, key)  # never create a directory through a link
            target.parent.mkdir(parents=True, exist_ok=True)
            self._inside(target.parent, key)
            try:
                fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=_TMP_SUFFIX)
                break
            except FileNotFoundError:  # directory pruned by a concurrent delete_prefix
                if attempt == 2:
                    raise
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp_name, 0o644)
            os.replace(tmp_name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise

    def exists(self, key: str) -> bool:
        """Whether ``key`` is a regular file reached without a link (a link is not an object)."""
        path = self._path(key)
        try:
            mode = os.lstat(self._inside(path, key)).st_mode
        except (FileNotFoundError, NotADirectoryError, UnsafeKey):
            return False
        return stat_mode.S_ISREG(mode)

    def delete(self, key: str) -> None:
        path = self._path(key)
        self._inside(path.parent, key)
        path.unlink(missing_ok=True)  # a link itself is removed, never its target

    def delete_prefix(self, prefix: str) -> int:
        keys = [info.key for info in self.list(prefix)]
        for key in keys:
            self.delete(key)
        self._prune_empty_dirs(prefix)
        return len(keys)

    def _prune_empty_dirs(self, prefix: str) -> None:
        directory_part = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*directory_part.split("/")) if directory_part else self.root
        if not start.is_dir() or start.is_symlink():
            return
        for dirpath, _dirnames, _filenames in os.walk(start, topdown=False):  # os.walk follows no link
            if Path(dirpath) == self.root:
                continue
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)  # only succeeds when empty

    def uri(self, key: str) -> str:
        return str(self._path(key))

    def local_path(self, key: str) -> Path | None:
        """The key's file for lazy readers, once no link under the root leads it elsewhere."""
        path = self._path(key)
        if path.is_symlink():
            raise UnsafeKey(key, "is a symbolic link; links are not followed", symlink=True)
        return self._inside(path, key)

    def children(self, prefix: str = "") -> tuple[builtins.list[str], builtins.list[str]]:
        validate_prefix(prefix)
        try:
            fd = self._open_dir(prefix.rstrip("/").split("/") if prefix else [], prefix)
        except (FileNotFoundError, NotADirectoryError, UnsafeKey):
            return [], []
        try:
            with os.scandir(fd) as scan:
                visible = [entry for entry in scan if not entry.name.startswith(".")]  # atomic-write temps
            dirs = sorted(entry.name for entry in visible if entry.is_dir(follow_symlinks=False))
            return dirs, sorted(entry.name for entry in visible if entry.is_file(follow_symlinks=False))
        finally:
            os.close(fd)


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat_mode.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        return False


def _local_info(key: str, stat: os.stat_result, *, symlink: bool = False) -> ObjectInfo:
    return ObjectInfo(
        key=key,
        size=stat.st_size,
        etag=f"{stat.st_size}-{stat.st_mtime_ns}",
        last_modified=datetime.fromtimestamp(stat.st_mtime, tz=UTC),
        symlink=symlink,
    )


class S3Store:
    """Objects under ``s3://bucket/prefix`` through boto3 (any S3-compatible endpoint).

    Every request of its client (its own, or one passed in) is counted for ``component`` by
    :func:`resight_platform.io.requests.meter` (what spent it: ``bronze``, ``lake``...; None keeps
    a passed client's component, else ``unattributed``)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: S3Client | None = None,
        page_size: int = 1000,
        max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
        component: str | None = None,
    ) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"invalid S3 bucket name {bucket!r}")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {page_size}")
        self.bucket = bucket
        self.prefix = prefix
        self.page_size = page_size
        self.url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.max_attempts = max_attempts
        if client is None:
            import boto3
            from botocore.config import Config

            # endpoint_url=None lets boto3 apply AWS_ENDPOINT_URL itself, read now, not at import.
            # The standard retry mode retries throttling (SlowDown), 5xx and dropped connections.
            retries = Config(retries={"mode": "standard", "total_max_attempts": max_attempts})
            client = boto3.client("s3", endpoint_url=endpoint_url, config=retries)
        self.client: S3Client = meter(client, component)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S3Store:
        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://") :].partition("/")
        return cls(bucket, prefix, **kwargs)

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _full(self, key: str) -> str:
        validate_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _full_prefix(self, prefix: str) -> str:
        validate_prefix(prefix)
        return f"{self.prefix}/{prefix}" if self.prefix else prefix

    def list(self, prefix: str = "", start_after: str = "") -> Iterator[ObjectInfo]:
        root = f"{self.prefix}/" if self.prefix else ""
        paginator = self.client.get_paginator("list_objects_v2")
        options: dict[str, Any] = {"StartAfter": root + start_after} if start_after else {}
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=root + validate_prefix(prefix),
            PaginationConfig={"PageSize": self.page_size},
            **options,
        )
        # S3 lists keys in UTF-8 byte order, which is code point order: already sorted.
        for page in pages:
            for item in page.get("Contents", []):
                key = _printable(item["Key"][len(root) :])
                if not key or key.endswith("/"):  # directory markers made by some tools
                    continue
                yield ObjectInfo(
                    key=key,
                    size=int(item.get("Size", 0)),
                    etag=str(item.get("ETag", "")).strip('"'),
                    last_modified=item["LastModified"],
                )

    def read_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except self.client.exceptions.NoSuchKey as error:
            raise FileNotFoundError(self.uri(key)) from error
        return response["Body"].read()

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except self.client.exceptions.NoSuchKey as error:
            raise FileNotFoundError(self.uri(key)) from error
        body = response["Body"]
        try:
            yield cast(BinaryIO, body)
        finally:
            body.close()

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._full(key), Body=data)

    def write_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._full(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def stat(self, key: str, *, size: int = 0, etag: str = "") -> ObjectInfo | None:
        """The object as it is now (one ``HEAD``), ``None`` if there is none: what a notification
        about ``key`` is resolved to (``io/events.py``). A key no store reads (:func:`validate_key`)
        is not looked up: it comes back as a listing would give it, with the notification's
        ``size`` and ``etag``, for the landing contract to refuse."""
        from botocore.exceptions import ClientError

        try:
            full = self._full(key)
        except UnsafeKey:
            return ObjectInfo(key=_printable(key), size=size, etag=etag, last_modified=datetime.now(UTC))
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=full)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key=key,
            size=int(head.get("ContentLength", 0)),
            etag=str(head.get("ETag", "")).strip('"'),
            last_modified=head["LastModified"],
        )

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._full(key))

    def delete_prefix(self, prefix: str) -> int:
        self._full_prefix(prefix)
        keys = [info.key for info in self.list(prefix)]
        for start in range(0, len(keys), _S3_DELETE_BATCH):
            batch = keys[start : start + _S3_DELETE_BATCH]
            response = self.client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": self._full(key)} for key in batch], "Quiet": True},
            )
            errors = response.get("Errors", [])
            if errors:
                first = errors[0]
                raise OSError(
                    f"S3 refused to delete {len(errors)} object(s) under {self.url}/{prefix}; "
                    f"first: {first.get('Key')}: {first.get('Code')} {first.get('Message')}"
                )
        return len(keys)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def local_path(self, key: str) -> Path | None:
        return None

    def children(self, prefix: str = "") -> tuple[builtins.list[str], builtins.list[str]]:
        root = f"{self.prefix}/" if self.prefix else ""
        start = root + validate_prefix(prefix)
        dirs: builtins.list[str] = []
        files: builtins.list[str] = []
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start, Delimiter="/", PaginationConfig={"PageSize": self.page_size}
        )
        for page in pages:
            dirs += [item["Prefix"][len(start) :].rstrip("/") for item in page.get("CommonPrefixes", [])]
            files += [item["Key"][len(start) :] for item in page.get("Contents", [])]
        return sorted(dirs), sorted(name for name in files if name)  # "" is a directory marker

    def reader_options(self) -> dict[str, Any]:
        """Keyword arguments for Polars' own S3 reader (``pl.scan_parquet(uri, **options)``) that
        reach what this store's boto3 client reaches: ``storage_options`` with its region and, for
        an endpoint other than AWS's, that endpoint (path-style; plain HTTP allowed for
        ``http://``), and a ``credential_provider`` that asks the client's credentials each time
        Polars needs them, so temporary credentials that boto3 refreshes stay valid in a long read."""
        # Polars' reader retries on its own (5xx, throttling, timeouts): as many times as boto3.
        options: dict[str, str | int] = {"max_retries": self.max_attempts - 1}
        region = self.client.meta.region_name
        if region:
            options["aws_region"] = region
        endpoint = self.client.meta.endpoint_url
        host = endpoint.split("://", 1)[-1].split("/", 1)[0]
        if not host.endswith(".amazonaws.com"):
            options["aws_endpoint_url"] = endpoint
            options["aws_virtual_hosted_style_request"] = "false"
            if endpoint.startswith("http://"):
                options["aws_allow_http"] = "true"
        return {"storage_options": options, "credential_provider": self._reader_credentials}

    def _reader_credentials(self) -> tuple[dict[str, str], int | None]:
        """The client's credentials for Polars: keys, and when they expire (epoch seconds) if they do."""
        # The client's own (private to botocore, but however the client got them), else boto3's chain.
        credentials = getattr(getattr(self.client, "_request_signer", None), "_credentials", None)
        if credentials is None:
            import boto3

            credentials = boto3.Session().get_credentials()
        if credentials is None:
            raise PermissionError(f"no AWS credentials to read {self.url}: set them as boto3 finds them")
        frozen = credentials.get_frozen_credentials()  # refreshes temporary credentials near expiry
        keys = {"aws_access_key_id": str(frozen.access_key), "aws_secret_access_key": str(frozen.secret_key)}
        if frozen.token:
            keys["aws_session_token"] = str(frozen.token)
        expiry = getattr(credentials, "_expiry_time", None)  # RefreshableCredentials only
        return keys, int(expiry.timestamp()) if isinstance(expiry, datetime) else None


def open_store(
    url: str,
    endpoint_url: str | None = None,
    *,
    max_attempts: int = DEFAULT_S3_MAX_ATTEMPTS,
    component: str | None = None,
) -> ObjectStore:
    """``s3://bucket/prefix`` → :class:`S3Store` (each request tried ``max_attempts`` times, and
    counted for ``component``); ``file://path`` or a plain path → :class:`LocalStore`."""
    if url.startswith("s3://"):
        return S3Store.from_url(url, endpoint_url=endpoint_url, max_attempts=max_attempts, component=component)
    url = url.removeprefix("file://")
    if "://" in url:
        raise ValueError(f"unsupported store URL {url!r}: use s3://bucket/prefix or a local path")
    return LocalStore(url)
