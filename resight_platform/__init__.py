"""ReSight's data platform. For data scientists: :func:`load` reads any lake table and
:func:`load_model` the registered demand model, without running Dagster (docs/data-science.md)."""

import warnings

# pyspark (the spark extra) warns on import that it does not fully support pandas 3; the platform
# hands frames to Spark through Arrow only, never pandas, and pandera imports pyspark.pandas
# whenever pyspark is installed, so every command would print it.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)

from resight_platform.access import list_tables, load, load_model  # noqa: E402

__all__ = ["list_tables", "load", "load_model"]
