"""The landing contract: ``{provider}/{feed}/{YYYY-MM-DD}/{file name}``, parsed strictly.

A key that does not have exactly this shape is refused with a reason code, never guessed. Provider
and feed names are validated here before they reach a path or SQL. The file name's extension says
the file's format (:data:`FILE_FORMATS`), whatever its source usually sends.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from resight_platform.sources.registry import FEEDS, PROVIDER_PATTERN, Registry

__all__ = ["FILE_FORMATS", "SYMLINK", "LandingKey", "LandingKeyError", "file_format", "parse_landing_key"]

#: The formats a landed file may have, each its file name's extension: the registry's source
#: formats and the gzip-compressed JSON ones. A partner may send any of them on any day.
FILE_FORMATS: tuple[str, ...] = ("csv", "csv.gz", "jsonl", "jsonl.gz", "json", "json.gz", "parquet")

FILE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
DATE_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
#: The reason code of a symbolic link in a local landing zone: never followed, whatever its name.
SYMLINK = "symlink"


class LandingKeyError(ValueError):
    """A landing key refused by the contract; ``code`` is the machine-readable reason."""

    def __init__(self, code: str, detail: str):
        self.code = code
        self.detail = detail
        super().__init__(f"{code}: {detail}")


@dataclass(frozen=True)
class LandingKey:
    key: str
    provider: str
    feed: str
    date: date
    file_name: str
    format: str


def file_format(file_name: str) -> str | None:
    """The format a file name's extension says (one of :data:`FILE_FORMATS`), longest match first."""
    lowered = file_name.lower()
    for fmt in sorted(FILE_FORMATS, key=len, reverse=True):
        if lowered.endswith("." + fmt):
            return fmt
    return None


def parse_landing_key(key: str, registry: Registry | None = None) -> LandingKey:
    """Parse and validate one landing key (relative to the landing root).

    Raises ``LandingKeyError`` with code ``bad_key``, ``bad_provider``, ``unknown_feed``,
    ``bad_date``, ``bad_file_name``, ``unsupported_format``, ``unknown_provider`` or
    ``unknown_source`` (the last two only when a registry is given).
    """
    if "\x00" in key or "\\" in key:
        raise LandingKeyError("bad_key", "key contains a NUL byte or a backslash")
    parts = key.split("/")
    if len(parts) != 4 or any(p in ("", ".", "..") for p in parts):
        raise LandingKeyError("bad_key", "expected {provider}/{feed}/{YYYY-MM-DD}/{file name}")
    provider, feed, day, file_name = parts
    if not PROVIDER_PATTERN.fullmatch(provider):
        raise LandingKeyError("bad_provider", f"provider slug must match {PROVIDER_PATTERN.pattern}")
    if feed not in FEEDS:
        raise LandingKeyError("unknown_feed", f"feed must be one of {', '.join(FEEDS)}")
    if not DATE_PATTERN.fullmatch(day):
        raise LandingKeyError("bad_date", "date folder must be YYYY-MM-DD")
    try:
        business_date = date.fromisoformat(day)
    except ValueError:
        raise LandingKeyError("bad_date", "date folder is not a calendar date") from None
    if not FILE_NAME_PATTERN.fullmatch(file_name):
        raise LandingKeyError("bad_file_name", "file name must be 1-200 of [A-Za-z0-9._-] and not start with a dot")
    fmt = file_format(file_name)
    if fmt is None:
        raise LandingKeyError("unsupported_format", f"extension must be one of {', '.join(FILE_FORMATS)}")
    if registry is not None:
        if provider not in registry.providers:
            raise LandingKeyError("unknown_provider", "provider is not in the source registry")
        if registry.source(provider, feed) is None:
            raise LandingKeyError("unknown_source", f"{provider} is not registered for the {feed} feed")
    return LandingKey(key=key, provider=provider, feed=feed, date=business_date, file_name=file_name, format=fmt)
