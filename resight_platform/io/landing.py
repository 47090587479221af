"""Reading the landing zone: listing partition folders, scanning for misplaced keys, dead-letter.

Works on any ``ObjectStore`` (a local directory or ``s3://``), so the same code serves the embedded
default and production. A symbolic link in a local landing zone (a file or a folder) is refused with
its own reason (``symlink``) and dead-lettered without being read: the dead-letter area gets its
reason file only, naming the key, never the link's target. So does a key no store may read
(a backslash or a control character in it, a ``..`` segment on S3).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO

from resight_platform.io.ops import dead_letter_reason
from resight_platform.io.storage import ObjectInfo, ObjectStore, UnsafeKey, validate_key
from resight_platform.sources.landing import SYMLINK, LandingKey, LandingKeyError, parse_landing_key
from resight_platform.sources.registry import Registry

__all__ = [
    "SYMLINK",
    "HashingReader",
    "LandedFile",
    "LandingScan",
    "check_listed",
    "checksum",
    "copy_to_dead_letter",
    "dead_letter",
    "list_partition_files",
    "partition_prefix",
    "scan_landing",
    "spool",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")

_SYMLINK_DETAIL = "a symbolic link: never followed, its target is neither read nor copied"
_NOT_COPIED = "not copied to dead-letter (its bytes are never read), left in the landing zone"


def check_listed(info: ObjectInfo, registry: Registry | None = None) -> LandingKey:
    """Parse a listed object against the landing contract (``parse_landing_key``), a symbolic link
    refused first with its own reason (:data:`SYMLINK`) whatever its name."""
    if info.symlink:
        raise LandingKeyError(SYMLINK, _SYMLINK_DETAIL)
    return parse_landing_key(info.key, registry)


def partition_prefix(provider: str, feed: str, day: date) -> str:
    """The landing folder of one provider, feed and business date."""
    return f"{provider}/{feed}/{day.isoformat()}/"


def checksum(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_BLOCK = 1 << 20


class HashingReader:
    """A stream read front to back that hashes (SHA-256, as :func:`checksum`) and counts the bytes
    read through it, so a file is checksummed as it is parsed, never held whole."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever the consumer left unread."""
        while self.read(_BLOCK):
            pass

    @property
    def digest(self) -> str:
        return self._hash.hexdigest()


@contextlib.contextmanager
def spool(store: ObjectStore, key: str, directory: Path | None = None) -> Iterator[tuple[Path, str, int]]:
    """The object copied to a temporary file in ``directory`` (the system's temporary directory
    when None): ``(path, checksum, size)``, removed when the block ends, however it ends. The
    object is opened first, so a key that cannot be read leaves no file behind."""
    with store.open_read(key) as raw:
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(prefix="resight-spool-", dir=directory) as out:
            reader = HashingReader(raw)
            shutil.copyfileobj(reader, out, length=_BLOCK)  # type: ignore[misc]
            out.flush()
            yield Path(out.name), reader.digest, reader.size


@dataclass(frozen=True)
class LandedFile:
    info: ObjectInfo
    key: LandingKey


@dataclass
class LandingScan:
    """Every object under a prefix, split into well-placed files and refused keys."""

    files: list[LandedFile] = field(default_factory=list)
    rejected: list[tuple[ObjectInfo, LandingKeyError]] = field(default_factory=list)

    def partitions(self) -> set[tuple[date, str, str]]:
        """``(business_date, provider, feed)`` of every well-placed file."""
        return {(f.key.date, f.key.provider, f.key.feed) for f in self.files}

    def on_dates(self, first: date, last: date) -> LandingScan:
        """The well-placed files of business dates ``first`` .. ``last`` (a backfill of a range),
        and every refused key: a refused key has no trustworthy date, and is dead-lettered anyway."""
        return LandingScan([f for f in self.files if first <= f.key.date <= last], list(self.rejected))


def scan_landing(store: ObjectStore, registry: Registry, prefix: str = "") -> LandingScan:
    """List ``prefix`` and parse every key against the landing contract and the registry."""
    scan = LandingScan()
    for info in store.list(prefix):
        try:
            scan.files.append(LandedFile(info=info, key=check_listed(info, registry)))
        except LandingKeyError as exc:
            scan.rejected.append((info, exc))
    return scan


def list_partition_files(
    store: ObjectStore, registry: Registry, provider: str, feed: str, day: date
) -> Iterator[LandedFile | tuple[ObjectInfo, LandingKeyError]]:
    """The objects in one partition folder: parsed files, or the key error for a bad file name; the
    folder itself when it is a symbolic link (refused, never listed through)."""
    prefix = partition_prefix(provider, feed, day)
    for info in store.list(prefix.rstrip("/")):
        if not (info.key.startswith(prefix) or (info.symlink and info.key == prefix.rstrip("/"))):
            continue  # a longer folder name (2026-10-011), or a stray file named like the folder
        try:
            yield LandedFile(info=info, key=check_listed(info, registry))
        except LandingKeyError as exc:
            yield info, exc


def copy_to_dead_letter(
    dead_letters: ObjectStore,
    *,
    key: str,
    data: bytes | Path | None,
    code: str,
    detail: str,
    at: datetime,
    data_checksum: str | None = None,
) -> str:
    """Copy a refused file (its bytes, or a local file holding them) to the dead-letter area with a
    JSON reason file; return its URI. ``data_checksum``, when the caller already hashed the data
    (:func:`spool` does), saves reading it again. ``data`` None (a file that must not be read)
    writes the reason file alone and returns its URI.

    The target name is derived from a hash of the original key, so a hostile key (path traversal,
    odd characters) never shapes the path; the reason file keeps the original key.
    """
    digest = hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    name = _UNSAFE.sub("_", key.rsplit("/", 1)[-1])[:100].lstrip(".") or "file"
    target = f"{at:%Y-%m-%d}/{digest}/{name}"
    if data is None:
        dead_letters.write_bytes(f"{target}.reason.json", dead_letter_reason(key, code, detail, None, at))
        return dead_letters.uri(f"{target}.reason.json")
    if isinstance(data, Path):
        dead_letters.write_file(target, data)
        if data_checksum is None:
            with open(data, "rb") as handle:
                data_checksum = hashlib.file_digest(handle, "sha256").hexdigest()
    else:
        dead_letters.write_bytes(target, data)
        data_checksum = data_checksum or checksum(data)
    dead_letters.write_bytes(f"{target}.reason.json", dead_letter_reason(key, code, detail, data_checksum, at))
    return dead_letters.uri(target)


def dead_letter(
    landing: ObjectStore,
    dead_letters: ObjectStore,
    key: str,
    code: str,
    detail: str,
    now: datetime,
    digest: str | None,
    size: int,
    previous: tuple[str | None, str] | None,
    spool_dir: Path | None = None,
) -> tuple[str | None, str | None, int, str]:
    """Copy a refused file to dead-letter unless these very bytes are there already (the ledger
    says so): ``(uri or None, checksum, size, detail)``. The file goes through a local temporary
    file in ``spool_dir``, so a large one is never held in memory.

    A symbolic link (:data:`SYMLINK`), or a key no store may read (:class:`UnsafeKey`), is never
    opened: the dead-letter area gets its reason file alone, the checksum is None and ``detail``
    says the file was left in the landing zone."""
    if digest is not None and previous == (digest, "dead_lettered"):
        return None, digest, size, detail
    unread = f"{detail}; {_NOT_COPIED}"
    try:
        if code == SYMLINK:
            raise UnsafeKey(key, "is a symbolic link")
        validate_key(key)
        with spool(landing, key, spool_dir) as (path, copied, copied_size):
            if digest is None:  # a file refused by its key was never read: its checksum is the copy's
                digest, size = copied, copied_size
                if previous == (digest, "dead_lettered"):
                    return None, digest, size, detail
            uri = copy_to_dead_letter(
                dead_letters, key=key, data=path, code=code, detail=detail, at=now, data_checksum=copied
            )
            return uri, digest, size, detail
    except UnsafeKey:
        if previous == (None, "dead_lettered"):
            return None, None, size, unread
        uri = copy_to_dead_letter(dead_letters, key=key, data=None, code=code, detail=unread, at=now)
        return uri, None, size, unread
