"""``resight onboard …``: the onboarding commands, one sub-command per module of this package."""

from __future__ import annotations

import argparse

from resight_platform.onboard.check import add_check_parser

__all__ = ["add_onboard_parser"]


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
    # Each step's module adds its parser here (one line each).
    add_check_parser(steps)
    del steps
