"""``resight onboard check [DIR]``: validate a registry directory as a whole, before it is pushed.

Every error (the running daemon would refuse the registry) and every warning (it loads, but is
most likely a mistake) is printed as ``file:row field: reason``, then a summary of what loaded
with the registry's version. A valid registry other than the one in use is also compared with
the one in use (``RESIGHT_REGISTRY_DIR``, else the packaged one), partner by partner: which
partners it adds, which it changes (their rows, their profile, their value maps or the global
tables) and which it removes. The exit code is 1 when there is any error (``--strict``: any
warning too), else 0. ``--json`` prints the same as one JSON document for scripts and CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from resight_platform.settings import Settings
    from resight_platform.sources.registry import Registry, RegistryCheck, RegistryIssue

__all__ = ["Changes", "CheckReport", "add_check_parser", "changes_between", "check_report", "run_check"]


@dataclass(frozen=True)
class Changes:
    """How a registry differs from the one in use (``against``, at ``version``), by partner
    (``Registry.provider_versions``): what a reviewer of the change, and the on-call engineer after
    the push, should expect in ``ops/sources`` (new partners ``new``, the changed ones ``changed``)."""

    against: str
    version: str
    new: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "against": self.against,
            "version": self.version,
            "new": list(self.new),
            "changed": list(self.changed),
            "removed": list(self.removed),
        }

    def line(self) -> str:
        def named(kind: str, slugs: tuple[str, ...]) -> str:
            return f"{len(slugs)} {kind}" + (f" ({', '.join(slugs)})" if slugs else "")

        parts = [named("new", self.new), named("changed", self.changed), named("removed", self.removed)]
        return f"against {self.against} (version {self.version}): partners " + ", ".join(parts)


def changes_between(registry: Registry, in_use: Registry, against: str) -> Changes:
    """The partners ``registry`` adds, changes and removes compared with ``in_use``."""
    now, before = registry.provider_versions, in_use.provider_versions
    return Changes(
        against=against,
        version=in_use.version,
        new=tuple(sorted(set(now) - set(before))),
        changed=tuple(sorted(p for p in set(now) & set(before) if now[p] != before[p])),
        removed=tuple(sorted(set(before) - set(now))),
    )


@dataclass(frozen=True)
class CheckReport:
    """What ``check`` says of one registry: where it is, its problems and what loaded."""

    location: str
    version: str
    errors: tuple[RegistryIssue, ...]
    warnings: tuple[RegistryIssue, ...]
    #: What loaded (with errors: the rows that passed): providers, sources, active sources,
    #: profiles, value-map rows.
    counts: dict[str, int]
    #: Against the registry in use, when this one is valid and another.
    changes: Changes | None = None

    def exit_code(self, strict: bool = False) -> int:
        return 1 if self.errors or (strict and self.warnings) else 0

    def as_dict(self) -> dict[str, object]:
        return {
            "location": self.location,
            "version": self.version,
            "ok": not self.errors,
            "errors": [_issue_dict(i) for i in self.errors],
            "warnings": [_issue_dict(i) for i in self.warnings],
            "counts": self.counts,
            "changes": self.changes.as_dict() if self.changes else None,
        }

    def lines(self) -> list[str]:
        """The report as a person reads it: each problem on its own line, then the summary."""
        out = [f"error   {_where(i)}: {i.reason}" for i in self.errors]
        out += [f"warning {_where(i)}: {i.reason}" for i in self.warnings]
        c = self.counts
        out.append(
            f"{self.location}: {c['providers']} providers, {c['sources']} sources ({c['active_sources']} active),"
            f" {c['profiles']} profiles, {c['value_map_rows']} value-map rows; version {self.version}"
        )
        if self.changes is not None:
            out.append(self.changes.line())
        verdict = "invalid" if self.errors else "valid"
        out.append(f"{verdict}: {len(self.errors)} errors, {len(self.warnings)} warnings")
        return out


def _where(issue: RegistryIssue) -> str:
    return f"{issue.file}{'' if issue.row is None else f':{issue.row}'} {issue.field}"


def _issue_dict(issue: RegistryIssue) -> dict[str, object]:
    return {"file": issue.file, "row": issue.row, "field": issue.field, "reason": issue.reason}


def check_report(location: str, checked: RegistryCheck) -> CheckReport:
    """The report of a registry ``checked`` at ``location``."""
    registry = checked.registry
    return CheckReport(
        location=location,
        version=registry.version,
        errors=checked.errors,
        warnings=checked.warnings,
        counts={
            "providers": len(registry.providers),
            "sources": len(registry.sources),
            "active_sources": len(registry.active_sources()),
            "profiles": len(registry.profiles),
            "value_map_rows": len(registry.value_maps),
        },
    )


def run_check(directory: str | None, settings: Settings) -> CheckReport:
    """Check the registry at ``directory`` (a local directory or an ``s3://`` prefix, read on
    ``settings.aws_endpoint_url``); None: the registry in use (``RESIGHT_REGISTRY_DIR``, else the
    packaged one). Judged as the daemon would load it (``settings.history_floor``)."""
    # Imported here: every `resight` command builds this parser, and the object store pulls Dagster.
    from resight_platform.resources import check_registry_at
    from resight_platform.sources.registry import DEFAULT_REGISTRY_DIR

    location: str | Path | None = directory or settings.registry_dir
    if location is not None and "://" not in str(location) and not Path(location).is_dir():
        raise FileNotFoundError(f"{location}: no such registry directory")
    checked = check_registry_at(location, settings.aws_endpoint_url, settings.history_floor)
    report = check_report(str(location or DEFAULT_REGISTRY_DIR), checked)
    if directory is None or checked.errors:
        return report
    in_use = check_registry_at(settings.registry_dir, settings.aws_endpoint_url, settings.history_floor)
    if in_use.errors or in_use.registry.version == checked.registry.version:
        return report  # nothing to compare with, or the very files in use
    against = str(settings.registry_dir) if settings.registry_dir else "the packaged registry"
    return replace(report, changes=changes_between(checked.registry, in_use.registry, against))


def _command(args: argparse.Namespace) -> int:
    from resight_platform.settings import Settings

    try:
        report = run_check(args.directory, Settings.from_env())
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(report.lines()))
    return report.exit_code(args.strict)


def add_check_parser(steps: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``check`` to the ``resight onboard`` steps."""
    check = steps.add_parser(
        "check",
        help="validate a registry directory as a whole: every problem with its file, row and field",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument(
        "directory",
        nargs="?",
        help="the registry: a directory or s3://bucket/prefix (default: RESIGHT_REGISTRY_DIR, else the packaged one)",
    )
    check.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    check.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    check.set_defaults(func=_command)
