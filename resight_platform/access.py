"""One line from Python or a notebook to any table of the lake, or to the registered model.

``load("silver/sales", dates=("2026-01-01", "2026-01-31"), sources=["pawmart"])`` reads the
lake that ``RESIGHT_LAKE_URL`` names (a local directory or ``s3://…``, with ``AWS_ENDPOINT_URL``)
directly, the way the lake IO manager wrote it: no Dagster run, no Postgres. ``load_model()``
loads the champion demand model from the MLflow registry at ``Settings.tracking_uri``.

A table's partitioning comes from the lake itself: its files are hive-style
(``date=…/source=…/part-0.parquet``, ``month=…/``, ``partition=…/`` or one ``data.parquet``,
see :mod:`resight_platform.io.lake`). It is not taken from the Dagster definitions because
building them resolves the warehouse (and starts the embedded Postgres). The frames are returned
exactly as written: the partition values are not added as columns, since every table already
carries them (``business_date``/``provider`` in silver, ``_business_date``/``_provider`` in
bronze, ``sale_date``/``provider_key`` in ``gold/fact_sales``, ``month`` in the monthly marts).

Dagster (through :mod:`resight_platform.io.lake`) and MLflow are imported on first use, so
``import resight_platform`` stays cheap.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import unquote

import polars as pl

from resight_platform.io.storage import (
    PARTITION_FILE,
    UNPARTITIONED_FILE,
    LocalStore,
    ObjectStore,
    open_store,
)
from resight_platform.settings import Settings

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.pyfunc import PyFuncModel

__all__ = ["list_tables", "load", "load_model"]

#: Lake areas that are not tables (dead-lettered files as delivered).
_NOT_TABLES = frozenset({"dead_letter"})
#: Deepest asset key looked for by :func:`list_tables` (``[layer, table]`` today).
_MAX_KEY_DEPTH = 3

DateLike = str | dt.date
#: One day, a list of days, or an inclusive ``(start, end)`` range (either end may be ``None``).
Dates = DateLike | Sequence[DateLike] | tuple[DateLike | None, DateLike | None]

#: ``load``'s filter arguments and the partition dimension each applies to.
_FILTER_DIMENSIONS = {"dates": "date", "sources": "source", "months": "month", "partitions": "partition"}


@dataclass(frozen=True)
class _Filter:
    """The values of one partition dimension to read: a finite set and/or inclusive bounds."""

    values: tuple[str, ...] | None
    lo: str | None = None
    hi: str | None = None

    def accepts(self, value: str) -> bool:
        if self.values is not None and value not in self.values:
            return False
        return (self.lo is None or value >= self.lo) and (self.hi is None or value <= self.hi)


def _day(value: object, what: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError(f"{what}: {value!r} is not a date (use 'YYYY-MM-DD' or a datetime.date)")


def _month(value: object, what: str) -> dt.date:
    if isinstance(value, str) and len(value) == 7:  # "2026-01"
        value = f"{value}-01"
    return _day(value, what).replace(day=1)


def _next_month(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def _time_filter(value: object, what: str, monthly: bool) -> _Filter:
    """``dates=``/``months=`` → the partition keys (ISO dates; a month is its first day)."""
    parse = _month if monthly else _day
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"{what}: a range is a (start, end) pair; pass a list for several values")
        start = None if value[0] is None else parse(value[0], what)
        end = None if value[1] is None else parse(value[1], what)
        if start is not None and end is not None:
            if end < start:
                raise ValueError(f"{what}: the range ends ({end}) before it starts ({start})")
            days, day = [], start
            while day <= end:
                days.append(day.isoformat())
                day = _next_month(day) if monthly else day + dt.timedelta(days=1)
            return _Filter(tuple(days), start.isoformat(), end.isoformat())
        return _Filter(None, None if start is None else start.isoformat(), None if end is None else end.isoformat())
    items = [value] if isinstance(value, str | dt.date) else list(_iterable(value, what))
    if not items:
        raise ValueError(f"{what}: empty list")
    keys = sorted({parse(item, what).isoformat() for item in items})
    return _Filter(tuple(keys), keys[0], keys[-1])


def _iterable(value: object, what: str) -> Iterable[object]:
    if isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping):
        return value
    raise TypeError(f"{what}: expected a value or a list of values, got {type(value).__name__}")


def _names_filter(value: object, what: str) -> _Filter:
    items = [value] if isinstance(value, str) else list(_iterable(value, what))
    if not items:
        raise ValueError(f"{what}: empty list")
    names: set[str] = set()
    for item in items:
        if not isinstance(item, str) or not item or any(char in item for char in "/\\=\x00") or item in (".", ".."):
            raise ValueError(f"{what}: {item!r} is not a partition name")
        names.add(item)
    return _Filter(tuple(sorted(names)))


def asset_path(asset: str | Sequence[str] | Any) -> list[str]:
    """``"silver/sales"``, ``["silver", "sales"]`` or a Dagster ``AssetKey`` → ``["silver", "sales"]``."""
    path = getattr(asset, "path", asset)  # an AssetKey without importing Dagster
    parts = path.strip("/").split("/") if isinstance(path, str) else list(path)
    if not parts or not all(isinstance(part, str) for part in parts):
        raise ValueError(f"not an asset name: {asset!r} (use e.g. 'silver/sales')")
    for part in parts:
        if not part or part in (".", "..") or any(char in part for char in "\\=\x00"):
            raise ValueError(f"not an asset name: {asset!r} (use e.g. 'silver/sales')")
    return parts


# --- the lake's shape ---------------------------------------------------------------------------


def _children(store: ObjectStore, prefix: str) -> tuple[list[str], list[str]]:
    """Names of the directories and files right under ``prefix`` (``""`` or ending in ``/``)."""
    return store.children(prefix)


def _first_file(store: ObjectStore, prefix: str) -> str | None:
    """The key of one file under ``prefix`` (the first in key order), or ``None``."""
    if isinstance(store, LocalStore):
        dirs, files = _children(store, prefix)
        if files:
            return prefix + files[0]
        for name in dirs:
            found = _first_file(store, f"{prefix}{name}/")
            if found is not None:
                return found
        return None
    return next((info.key for info in store.list(prefix)), None)


def _dimensions(prefix: str, key: str | None) -> tuple[str, ...] | None:
    """A table's partition dimensions in path order, from one of its files (``()`` unpartitioned);
    ``None`` if the file is not laid out like a lake table."""
    if key is None:
        return None
    segments = key[len(prefix) :].split("/")
    if segments == [UNPARTITIONED_FILE]:
        return ()
    if len(segments) < 2 or segments[-1] != PARTITION_FILE or not all("=" in s for s in segments[:-1]):
        return None
    return tuple(segment.split("=", 1)[0] for segment in segments[:-1])


def _partition_of(relative: str, dimensions: tuple[str, ...]) -> dict[str, str] | None:
    """``date=…/source=…/part-0.parquet`` → ``{"date": …, "source": …}`` (``None`` if another file)."""
    segments = relative.split("/")
    if len(segments) != len(dimensions) + 1 or segments[-1] != PARTITION_FILE:
        return None
    values: dict[str, str] = {}
    for dimension, segment in zip(dimensions, segments, strict=False):
        name, _, value = segment.partition("=")
        if name != dimension or not value:
            return None
        values[name] = value
    return values


def _shared_start(a: str, b: str) -> str:
    size = 0
    while size < min(len(a), len(b)) and a[size] == b[size]:
        size += 1
    return a[:size]


def _listed_partitions(
    store: ObjectStore, prefix: str, dimensions: tuple[str, ...], filters: Mapping[str, _Filter]
) -> list[dict[str, str]]:
    """The table's partitions in the lake that pass ``filters``, in one listing narrowed to the
    first dimension's bounds (a date range lists those days, not the table's history)."""
    first = dimensions[0]
    bounds = filters.get(first)
    narrow, start_after = f"{prefix}{first}=", ""
    if bounds is not None and bounds.lo is not None:
        start_after = narrow + bounds.lo
        if bounds.hi is not None:
            narrow += _shared_start(bounds.lo, bounds.hi)
    found: list[dict[str, str]] = []
    for info in store.list(narrow, start_after=start_after):
        values = _partition_of(info.key[len(prefix) :], dimensions)
        if values is None:
            continue
        if bounds is not None and bounds.hi is not None and values[first] > bounds.hi:
            break  # keys come sorted, the first dimension outermost
        if all(f.accepts(values[dimension]) for dimension, f in filters.items()):
            found.append(values)
    return found


def _wanted_partitions(
    store: ObjectStore, prefix: str, dimensions: tuple[str, ...], filters: Mapping[str, _Filter]
) -> list[dict[str, str]]:
    finite = [filters[d].values if d in filters else None for d in dimensions]
    if all(values is not None for values in finite):  # every dimension named: no listing needed
        return [dict(zip(dimensions, combo, strict=True)) for combo in itertools.product(*finite)]  # type: ignore[arg-type]
    return _listed_partitions(store, prefix, dimensions, filters)


def list_tables(*, settings: Settings | None = None) -> list[str]:
    """Every table in the lake, as ``"layer/table"`` names that :func:`load` takes."""
    settings = settings or Settings.from_env()
    return _tables(open_store(settings.lake_url, settings.aws_endpoint_url, max_attempts=settings.s3_max_attempts))


def _tables(store: ObjectStore) -> list[str]:
    found: list[str] = []

    def visit(prefix: str, depth: int) -> None:
        dirs, files = _children(store, prefix)
        if depth and (UNPARTITIONED_FILE in files or any("=" in name for name in dirs)):
            found.append(prefix.rstrip("/"))
            return
        if depth < _MAX_KEY_DEPTH:
            for name in dirs:
                if not (depth == 0 and name in _NOT_TABLES) and "=" not in name:
                    visit(f"{prefix}{name}/", depth + 1)

    visit("", 0)
    return sorted(found)


def _describe(dimensions: tuple[str, ...]) -> str:
    return " × ".join(dimensions) if dimensions else "nothing (one file)"


# --- load ---------------------------------------------------------------------------------------


@overload
def load(
    asset: str | Sequence[str] | Any,
    *,
    dates: Dates | None = ...,
    sources: str | Sequence[str] | None = ...,
    months: Dates | None = ...,
    partitions: str | Sequence[str] | None = ...,
    pandas: Literal[False] = ...,
    settings: Settings | None = ...,
) -> pl.LazyFrame: ...


@overload
def load(
    asset: str | Sequence[str] | Any,
    *,
    dates: Dates | None = ...,
    sources: str | Sequence[str] | None = ...,
    months: Dates | None = ...,
    partitions: str | Sequence[str] | None = ...,
    pandas: Literal[True],
    settings: Settings | None = ...,
) -> pd.DataFrame: ...


def load(
    asset: str | Sequence[str] | Any,
    *,
    dates: Dates | None = None,
    sources: str | Sequence[str] | None = None,
    months: Dates | None = None,
    partitions: str | Sequence[str] | None = None,
    pandas: bool = False,
    settings: Settings | None = None,
) -> pl.LazyFrame | pd.DataFrame:
    """A lake table's rows, for some or all of its partitions, as a Polars ``LazyFrame``
    (a pandas ``DataFrame`` with ``pandas=True``).

    ``asset``: ``"silver/sales"``, ``["silver", "sales"]`` or an ``AssetKey``.
    ``dates`` (tables partitioned by day): ``"2026-01-01"``, a list of days, or an inclusive
    ``(start, end)`` tuple whose ends may be ``None``. ``months`` (tables partitioned by month):
    the same with ``"2026-01"`` or any day of the month. ``sources`` (date × source tables): one
    source or a list; ``None`` reads every source the lake holds for the dates. ``partitions``:
    the keys of any other single-dimension partitioning. A filter the table is not partitioned by
    is refused. ``settings``: where the lake is; ``Settings.from_env()`` when ``None``.

    Partitions that were never written are skipped; when none of the wanted ones exist the frame
    is empty with the table's columns. Raises ``LookupError`` for a table not in the lake.
    """
    from resight_platform.io.lake import read_table  # imports Dagster: on first use, not with the package

    settings = settings or Settings.from_env()
    store = open_store(settings.lake_url, settings.aws_endpoint_url, max_attempts=settings.s3_max_attempts)
    path = asset_path(asset)
    name, prefix = "/".join(path), "".join(f"{part}/" for part in path)
    sample = _first_file(store, prefix)
    dimensions = _dimensions(prefix, sample)
    if dimensions is None or sample is None:
        known = _tables(store)
        listing = ", ".join(known) if known else "none: has anything been materialised there?"
        raise LookupError(f"no table {name!r} in the lake at {store.url}; tables there: {listing}")

    given = {"dates": dates, "sources": sources, "months": months, "partitions": partitions}
    misplaced = [arg for arg, value in given.items() if value is not None and _FILTER_DIMENSIONS[arg] not in dimensions]
    if misplaced:
        usable = [arg for arg, dimension in _FILTER_DIMENSIONS.items() if dimension in dimensions]
        raise ValueError(
            f"{name} is partitioned by {_describe(dimensions)}: {', '.join(f'{arg}=' for arg in misplaced)} "
            f"does not apply" + (f" (use {', '.join(f'{arg}=' for arg in usable)})" if usable else "")
        )
    filters: dict[str, _Filter] = {}
    for arg, value in given.items():
        if value is None:
            continue
        dimension = _FILTER_DIMENSIONS[arg]
        if arg in ("dates", "months"):
            filters[dimension] = _time_filter(value, f"{name} {arg}=", monthly=arg == "months")
        else:
            filters[dimension] = _names_filter(value, f"{name} {arg}=")

    if dimensions:
        wanted = _wanted_partitions(store, prefix, dimensions, filters)
        frame = read_table(store, path, wanted) if wanted else pl.LazyFrame()
        if not frame.collect_schema().names():  # nothing there: keep the table's columns
            frame = read_table(store, path, [_partition_of(sample[len(prefix) :], dimensions) or {}]).clear()
    else:
        frame = read_table(store, path, None)
    return frame.collect().to_pandas() if pandas else frame


# --- the model ----------------------------------------------------------------------------------


def load_model(alias: str = "champion", *, settings: Settings | None = None) -> PyFuncModel:
    """The registered demand model version that carries ``alias`` (the champion by default), as an
    MLflow pyfunc model from the registry at ``Settings.tracking_uri``: ``model.predict(frame)``.

    Raises ``LookupError`` when no version has the alias (nothing trained or promoted yet).
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from resight_platform.ml import MODEL_NAME

    settings = settings or Settings.from_env()
    uri = settings.tracking_uri
    database = _sqlite_file(uri)
    if database is not None and not database.is_file():
        raise LookupError(
            f"no MLflow store at {database}: no model has been trained there (or set MLFLOW_TRACKING_URI)"
        )
    client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, alias)
    except MlflowException as error:
        raise LookupError(
            f"no version of model {MODEL_NAME!r} has the alias {alias!r} in the registry at {uri}"
        ) from error
    # The version's own artifact location: a ``models:/`` URI would be resolved against the
    # process's default registry (MLFLOW_TRACKING_URI), not the one given here.
    location = client.get_model_version_download_uri(MODEL_NAME, version.version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=uri)
    return mlflow.pyfunc.load_model(local)


def _sqlite_file(uri: str) -> Path | None:
    """The database file of a ``sqlite:///…`` tracking URI (``None`` for any other store)."""
    if not uri.startswith("sqlite:///"):
        return None
    return Path(unquote(uri[len("sqlite:///") :].split("?", 1)[0]))
