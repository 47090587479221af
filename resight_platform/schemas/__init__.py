"""Pandera models (polars backend) of the lake and warehouse tables; no Dagster here."""

from resight_platform.schemas.silver import (
    CATEGORIES,
    CHANNELS,
    QUARANTINE_RULES,
    REGIONS,
    SILVER_MODELS,
    SPECIES,
    STATES,
    STATUSES,
    UNITS,
    Quarantine,
    SilverCatalog,
    SilverCustomers,
    SilverSales,
    SilverStores,
)

__all__ = [
    "CATEGORIES",
    "CHANNELS",
    "QUARANTINE_RULES",
    "REGIONS",
    "SILVER_MODELS",
    "SPECIES",
    "STATES",
    "STATUSES",
    "UNITS",
    "Quarantine",
    "SilverCatalog",
    "SilverCustomers",
    "SilverSales",
    "SilverStores",
]
