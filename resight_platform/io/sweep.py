"""Debris of killed writers, swept: part files (``*.resight-tmp``) that a writer killed with -9
left beside the partition it was replacing in a local lake, a Spark write's staged files
(``{lake}/.spark-staging/``, :mod:`resight_platform.io.spark_lake`), and the local spool files of writes to
an S3 lake and of landing reads (``.part-*.resight-tmp`` and ``resight-spool-*`` in the system's
temporary directory).

A writer renames or deletes its temporary file when it ends, however it ends short of being killed,
so a temporary file older than the grace period (``Settings.sweep_grace``, 6 hours; no write takes
that long) belongs to nobody. Readers never see these files (``LocalStore.list`` skips them), so
removing them changes no table. Symbolic links are neither followed nor removed.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from resight_platform.io.storage import LocalStore, ObjectStore

__all__ = ["TMP_SUFFIX", "SweepReport", "orphan_files", "sweep_orphans"]

log = logging.getLogger(__name__)

#: The suffix of every temporary file the platform writes (``io/storage.py``, ``io/lake.py``).
TMP_SUFFIX = ".resight-tmp"
#: Where a Spark write to a local lake stages its output before each partition's file is renamed
#: into place (:func:`resight_platform.io.spark_lake.write_partitions`): every file under it is
#: temporary, whatever Spark named it. A file is staged when its task ends and renamed when the
#: whole job has, so a Spark write to a local lake longer than the grace period would lose its
#: early files to a sweep: a lake that takes such writes is on S3, or has a longer grace.
SPARK_STAGING_DIR = ".spark-staging"
#: Names of the platform's files in the system's temporary directory: part files of an S3 lake's
#: writes (``.part-*.resight-tmp``) and landing files spooled to local disk (``resight-spool-*``).
_PART, _SPOOL = ".part-", "resight-spool-"


@dataclass
class SweepReport:
    """What a sweep removed: paths and their bytes, and what it could not remove."""

    removed: list[str] = field(default_factory=list)
    bytes: int = 0
    failed: list[str] = field(default_factory=list)


def _walk(root: Path) -> Iterator[os.DirEntry[str]]:
    """Every regular file under ``root``, symbolic links neither followed nor given."""
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            if entry.is_symlink():
                continue
            if entry.is_dir(follow_symlinks=False):
                stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False):
                yield entry


def _temporary_files(directory: Path) -> Iterator[os.DirEntry[str]]:
    """The platform's files at the top of the system's temporary directory."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return
    for entry in entries:
        ours = entry.name.startswith(_SPOOL) or (entry.name.startswith(_PART) and entry.name.endswith(TMP_SUFFIX))
        if ours and entry.is_file(follow_symlinks=False):
            yield entry


def orphan_files(
    lake: ObjectStore,
    grace: timedelta,
    now: datetime,
    temp_dir: Path | None = None,
    spool_dirs: Sequence[Path] = (),
    *,
    system_temp: bool = True,
) -> list[tuple[Path, int]]:
    """Temporary files of the lake (when it is local; Spark's staged files included), of the
    system's temporary directory (or ``temp_dir``; none when not ``system_temp``) and of the landing
    reads' spool directories (``RESIGHT_SPOOL_DIR``) last modified more than ``grace`` before
    ``now``: paths and sizes."""
    cutoff = (now - grace).timestamp()
    candidates: list[os.DirEntry[str]] = []
    if isinstance(lake, LocalStore):
        staging = str(lake.root / SPARK_STAGING_DIR) + os.sep
        candidates += [e for e in _walk(lake.root) if e.name.endswith(TMP_SUFFIX) or e.path.startswith(staging)]
    temporary = [temp_dir or Path(tempfile.gettempdir())] if system_temp else []
    for directory in (*temporary, *spool_dirs):
        candidates += list(_temporary_files(directory))
    found = []
    for entry in candidates:
        try:
            stat = entry.stat(follow_symlinks=False)
        except FileNotFoundError:  # its writer finished meanwhile
            continue
        if stat.st_mtime < cutoff:
            found.append((Path(entry.path), stat.st_size))
    return sorted(found)


def sweep_orphans(
    lake: ObjectStore,
    grace: timedelta,
    now: datetime,
    temp_dir: Path | None = None,
    spool_dirs: Sequence[Path] = (),
    *,
    system_temp: bool = True,
) -> SweepReport:
    """Remove :func:`orphan_files`; a file that cannot be removed is reported, not raised."""
    report = SweepReport()
    for path, size in orphan_files(lake, grace, now, temp_dir, spool_dirs, system_temp=system_temp):
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("cannot remove orphan temporary file %s: %s", path, exc)
            report.failed.append(str(path))
            continue
        report.removed.append(str(path))
        report.bytes += size
    return report
