"""What is wrong with a registry: one ``RegistryIssue`` per problem (file, row, field, reason), all
of them raised together as one ``RegistryError``; and how registry files are read."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Reader", "RegistryError", "RegistryIssue", "read_csv"]

#: Reads one registry file by its path relative to the registry (``"mappings/species.csv"``):
#: its bytes, or None when there is no such file.
Reader = Callable[[str], bytes | None]


@dataclass(frozen=True)
class RegistryIssue:
    file: str
    row: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}" + (f" row {self.row}" if self.row is not None else "")
        return f"{where}, field {self.field!r}: {self.reason}"


class RegistryError(ValueError):
    """The registry is invalid; ``issues`` lists every problem found."""

    def __init__(self, issues: list[RegistryIssue]):
        self.issues = issues
        lines = "\n".join(f"  - {issue}" for issue in issues)
        super().__init__(f"invalid source registry ({len(issues)} problems):\n{lines}")


def read_csv(
    read: Reader,
    name: str,
    expected: tuple[str, ...],
    issues: list[RegistryIssue],
    *,
    optional: bool = False,
) -> list[dict[str, str]]:
    """The rows of the CSV file ``name`` (values trimmed; row n of the list is file row n + 2).

    A missing file is an issue unless ``optional`` (then it has no rows); so is a header without
    every ``expected`` column. Columns beyond ``expected`` are kept (optional columns).
    """
    data = read(name)
    if data is None:
        if not optional:
            issues.append(RegistryIssue(name, None, "-", "file not found"))
        return []
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        issues.append(RegistryIssue(name, None, "-", f"not valid UTF-8: {exc}"))
        return []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = tuple(reader.fieldnames or ())
    missing = [c for c in expected if c not in header]
    if missing:
        issues.append(RegistryIssue(name, 1, ",".join(missing), "missing column(s) in header"))
        return []
    return [{k: (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
