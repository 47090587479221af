"""Where the browser suite keeps its screenshots: ``.resight/test-artifacts/ui/`` in the checkout
(gitignored with the rest of ``.resight/``), replaced by each run of the suite: the directory a
CI job keeps as its artifact. The suite's summary line prints its path."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ARTIFACTS_DIR", "screenshots_since"]

ARTIFACTS_DIR = Path(__file__).resolve().parents[2] / ".resight" / "test-artifacts" / "ui"


def screenshots_since(started: float) -> list[Path]:
    """The screenshots written since ``started`` (a ``time.time()``), by name."""
    if not ARTIFACTS_DIR.is_dir():
        return []
    return sorted(p for p in ARTIFACTS_DIR.glob("*.png") if p.stat().st_mtime >= started)
