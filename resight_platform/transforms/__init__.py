"""Pure dataframe transforms, one module per layer; no Dagster here."""

from resight_platform.transforms.bronze import (
    FileRejected,
    bronze_schema,
    empty_bronze,
    read_landing_file,
    read_landing_tree,
)
from resight_platform.transforms.silver import (
    SilverResult,
    clean_catalog,
    clean_customers,
    clean_feed,
    clean_sales,
    clean_stores,
    empty_quarantine,
    reconcile,
)

__all__ = [
    "FileRejected",
    "SilverResult",
    "bronze_schema",
    "clean_catalog",
    "clean_customers",
    "clean_feed",
    "clean_sales",
    "clean_stores",
    "empty_bronze",
    "empty_quarantine",
    "read_landing_file",
    "read_landing_tree",
    "reconcile",
]
