"""``resight onboard …``: the onboarding commands, one sub-command per module of this package.

The steps' modules are imported when their step runs: `preview` pulls in bronze and silver
(Polars, Pandera: over a second), which every other `resight` command, `--help` included, would
otherwise pay for.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from datetime import date
from pathlib import Path

from resight_platform.onboard.check import add_check_parser

__all__ = ["add_onboard_parser"]


def _step(module: str, function: str) -> Callable[[argparse.Namespace], int]:
    """``module.function(args)``, the module imported when the step runs."""

    def run(args: argparse.Namespace) -> int:
        return int(getattr(importlib.import_module(f"resight_platform.onboard.{module}"), function)(args))

    return run


def add_onboard_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``onboard`` and its sub-commands to the ``resight`` parser's sub-commands."""
    onboard = sub.add_parser(
        "onboard",
        help="onboard a partner: suggest a registry from sample files, preview it, check it",
        description="Onboard a partner without reading code (docs/onboarding.md): `suggest` drafts"
        " registry rows from a few sample files, `preview` runs bronze -> silver over files with a draft"
        " registry and writes nothing, `check` validates a registry directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    steps = onboard.add_subparsers(dest="onboard_command", required=True, metavar="step")
    add_check_parser(steps)
    _add_preview_parser(steps)
    _add_suggest_parser(steps)


def _add_preview_parser(steps: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = steps.add_parser(
        "preview",
        help="run bronze -> silver over files with a draft registry; writes nothing",
        description="What a real run would load, quarantine and dead-letter, per file, before anything is"
        " written (docs/onboarding.md). Exit 1 when anything would be lost (a dead-lettered file or a"
        " quarantined row), 0 otherwise, 2 on a usage error.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="FILE_OR_DIR", help="files, or folders of them")
    parser.add_argument(
        "--registry", metavar="DIR", help="the draft registry directory (default: the one in use, RESIGHT_REGISTRY_DIR)"
    )
    parser.add_argument("--provider", help="provider of files not at a provider/feed/YYYY-MM-DD/ path")
    parser.add_argument(
        "--feed", help="feed of files not at a landing path (sales, catalog, stores, customers; checked when it runs)"
    )
    parser.add_argument(
        "--date", type=date.fromisoformat, help="business date (YYYY-MM-DD) of loose files (default: today, UTC)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_step("preview", "run_preview"))


def _add_suggest_parser(steps: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = steps.add_parser(
        "suggest",
        help="draft a profile, provider/source rows and value maps from a few sample files",
        description="Sniff a new partner's sample files (format, encoding, delimiter, header, date and money"
        " formats), map their columns to the feed's canonical columns, list the values the mapping tables do"
        " not know, and write a draft registry for review, a partner's feeds one run each into one --out"
        " (docs/onboarding.md). Exit 0; 2 when a file cannot be read.",
    )
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="sample files of one feed of the partner")
    parser.add_argument("--provider", required=True, help="the new partner's slug")
    parser.add_argument("--feed", required=True, help="sales, catalog, stores or customers")
    parser.add_argument(
        "--out", type=Path, help="directory of the partner's draft and merged registry (default: report only)"
    )
    parser.add_argument("--registry", type=Path, help="base registry directory (default: the packaged one)")
    parser.add_argument("--name", help="the partner's display name (default: from the slug)")
    parser.add_argument("--kind", help="retail, ecommerce, distributor or vet (default: guessed from the channel)")
    parser.add_argument("--timezone", help="the partner's IANA timezone for timestamps without an offset")
    parser.add_argument("--currency", help="ISO 4217 code of the partner's amounts (default: from the files, else USD)")
    parser.add_argument("--every-hours", type=int, default=24, help="expected delivery interval (default 24)")
    parser.add_argument("--min-confidence", type=float, help="take guesses from this confidence (default 0.5)")
    parser.add_argument("--max-rows", type=int, help="records read per file (default 5,000)")
    parser.add_argument("--max-bytes", type=int, help="bytes read per file, decompressed (default 4 MiB)")
    parser.add_argument(
        "--knowledge", type=Path, help="names, abbreviations and value hints (default: onboard/suggest.yaml)"
    )
    parser.add_argument("--json", action="store_true", help="print the suggestion as JSON")
    parser.set_defaults(func=_step("suggest", "run_suggest"))
