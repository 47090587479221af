"""What a benchmark ran on, recorded with its figures (bench/RESULTS.md quotes it)."""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = ["machine"]


def machine() -> dict[str, Any]:
    """Cores, memory, Python, Polars and the platform of this machine."""
    import polars as pl

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "platform": platform.platform(),
    }
