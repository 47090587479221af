"""The Spark engine's session: its configuration from settings, one session per process.

``local[*]`` on the embedded default (Java 17 on the machine); a Spark Connect URL
(``spark.remote=sc://host:15002``) or a cluster master in production. pyspark is the ``spark``
extra (``pip install resight_platform[spark]``; ``make install`` installs it): imported here only
when a session is asked for.

The settings every session gets, whatever the deployment adds:

- ``spark.sql.session.timeZone=UTC``: silver's timestamps are UTC instants; Arrow hands them over
  as UTC.
- ``spark.sql.sources.partitionColumnTypeInference.enabled=false``: the lake's ``date=`` and
  ``source=`` directories are read as text, as Polars reads them.
- ``spark.sql.execution.arrow.pyspark.enabled=true``: frames cross to and from Polars as Arrow.
- ``spark.sql.parquet.outputTimestampType=TIMESTAMP_MICROS``: instants written to the lake as
  Parquet ``TIMESTAMP(MICROS, UTC)``, as Polars writes them (Spark's default, the legacy INT96,
  reads back in Polars as a zone-less nanosecond datetime).
- ANSI mode stays on (Spark 4's default): a failed cast raises, so the shared transforms guard
  every cast, and a mistake cannot turn into silent nulls.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["BASE_CONF", "LOCAL_CONF", "session", "spark_config"]

#: What every session is configured with (see the module docstring).
BASE_CONF: Mapping[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

#: A session in this process (``local[...]``): no web UI, no console progress bars.
LOCAL_CONF: Mapping[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
}


def spark_config(
    *, master: str | None = "local[*]", remote: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``spark_config`` of a session: a Spark Connect ``remote`` (``sc://...``) when given, else
    ``master``; ``extra`` (the deployment's own settings) over the platform's."""
    conf = dict(BASE_CONF)
    if remote:
        conf["spark.remote"] = remote
    else:
        conf["spark.master"] = master or "local[*]"
        conf.update(LOCAL_CONF)
    conf.update(extra or {})
    return conf


def session(conf: Mapping[str, str]) -> SparkSession:
    """The process's Spark session with ``conf`` (created on first use, then shared; a setting
    that only applies at start, such as the master, keeps its first value)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError(
            "the Spark engine needs pyspark: pip install 'resight_platform[spark]' (make install does)"
        ) from exc
    builder: Any = SparkSession.builder
    for key, value in conf.items():
        builder = builder.remote(value) if key == "spark.remote" else builder.config(key, value)
    spark = builder.getOrCreate()
    if "spark.remote" not in conf:
        spark.sparkContext.setLogLevel("ERROR")
    return spark
