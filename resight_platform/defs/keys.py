"""Asset keys that other definitions name (jobs, sensors, checks, the Spark facts): spelled once
here, where every ``defs`` module can import them without an import cycle."""

from __future__ import annotations

import dagster as dg

__all__ = ["FACT_SALES"]

#: The fact table (``gold.fact_sales``).
FACT_SALES = dg.AssetKey(["gold", "fact_sales"])
