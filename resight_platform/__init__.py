"""ReSight's data platform. For data scientists: :func:`load` reads any lake table and
:func:`load_model` the registered demand model, without running Dagster (docs/data-science.md)."""

from resight_platform.access import list_tables, load, load_model

__all__ = ["list_tables", "load", "load_model"]
