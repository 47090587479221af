"""Metadata shared by the asset definitions: owners and column schemas for the Dagster UI."""

from collections.abc import Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl

__all__ = [
    "DETAILED_METADATA_PARTITIONS",
    "LANDING_SET_OP",
    "OWNERS",
    "PARTITION_TAG",
    "RANGE_END",
    "RANGE_START",
    "RUN_KEY_TAG",
    "chart_markdown",
    "detailed",
    "markdown_preview",
    "run_partition_range",
    "run_partition_set",
    "set_run_config",
    "table_schema_from_model",
    "table_schema_from_polars",
]

OWNERS = ["team:data-platform"]

#: The tag Dagster gives a run a sensor requested with a run key.
RUN_KEY_TAG = "dagster/run_key"
#: The tags of a run's partition: one key, or the first and last of a range.
PARTITION_TAG = "dagster/partition"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def run_partition_range(tags: Mapping[str, str]) -> tuple[str, str] | None:
    """``(first, last)`` partition key of a run from its tags (equal for a one-partition run);
    ``None`` for a run that is not partitioned."""
    if RANGE_START in tags:
        return tags[RANGE_START], tags.get(RANGE_END, tags[RANGE_START])
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG], tags[PARTITION_TAG]
    return None


#: The op of the landing set job (``jobs.LANDING_SET_JOB``) whose config names a run's partitions.
LANDING_SET_OP = "land_partitions"


def set_run_config(partitions: Mapping[str, Sequence[str]], facts: bool) -> dict[str, Any]:
    """The run config of a landing run over a *set* of date × source partitions: per feed, the
    partition keys with files of it (sorted), and whether the run builds their facts too.

    A Dagster run targets one partition or a range, and a range spans every partition between its
    ends: files from far-apart partners would make one run over thousands of empty partitions. A
    set run names exactly the partitions it writes, in its config, which is also where the sensor
    reads back what a run in flight is writing (:func:`run_partition_set`)."""
    return {
        "ops": {
            LANDING_SET_OP: {
                "config": {
                    "partitions": {feed: sorted(keys) for feed, keys in sorted(partitions.items())},
                    "facts": facts,
                }
            }
        }
    }


def run_partition_set(run_config: Mapping[str, Any]) -> dict[str, list[str]] | None:
    """The partition keys per feed of a set run from its run config (the inverse of
    :func:`set_run_config`); ``None`` for a run that is not a set run."""
    try:
        partitions = run_config["ops"][LANDING_SET_OP]["config"]["partitions"]
    except (KeyError, TypeError):
        return None
    if not isinstance(partitions, Mapping):
        return None
    return {str(feed): [str(key) for key in keys] for feed, keys in partitions.items()}


def table_schema_from_polars(schema: Mapping[str, pl.DataType]) -> dg.TableSchema:
    return dg.TableSchema(columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()])


def table_schema_from_model(model: type) -> dg.TableSchema:
    """Column schema for the UI from a Pandera DataFrameModel: the single definition of the columns."""
    schema = model.to_schema()  # type: ignore[attr-defined]
    columns = []
    for name, column in schema.columns.items():
        checks = [str(check.name or check) for check in column.checks]
        columns.append(
            dg.TableColumn(
                name,
                str(column.dtype),
                description=column.description,
                constraints=dg.TableColumnConstraints(
                    nullable=bool(column.nullable), unique=bool(column.unique), other=checks
                ),
            )
        )
    return dg.TableSchema(columns=columns)


#: Above this many partitions in one run, the run's materialisation metadata keeps its totals and
#: leaves out tables and charts (``detailed``): Dagster copies a range run's output metadata onto
#: every partition it materialises, so a preview, a chart or a per-partition table is stored once
#: per partition. The demo's first medallion run wrote 1,100 silver sales events of 46 KB each
#: (a 500-partition table), its daily-mart run 557 events of 31 KB (a chart); ~130 MB of event
#: log, a third of the demo's serialisation time. A daily or weekly run keeps everything.
DETAILED_METADATA_PARTITIONS = 31


def detailed(partition_keys: Sequence[str]) -> bool:
    """Whether a run over ``partition_keys`` carries detailed metadata (see ``DETAILED_METADATA_PARTITIONS``)."""
    return len(partition_keys) <= DETAILED_METADATA_PARTITIONS


def markdown_preview(frame: pl.DataFrame, rows: int = 5) -> dg.MarkdownMetadataValue:
    """A few rows as a Markdown table, so the UI shows what was written without a query."""
    head = frame.head(rows)
    header = "| " + " | ".join(head.columns) + " |"
    rule = "|" + "---|" * len(head.columns)
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, rule, *body]))


#: Size of a metadata chart: small enough to keep a materialisation event light (about 15 KB).
CHART_INCHES = (5.0, 2.4)
CHART_DPI = 80
#: At most this many series (the largest by total); the rest are summed into "other".
CHART_SERIES = 8


def chart_markdown(
    frame: pl.DataFrame, x: str, y: str, *, series: str | None = None, kind: str = "line", title: str = ""
) -> dg.MarkdownMetadataValue:
    """A small PNG chart of ``y`` by ``x`` (one line or bar group per ``series`` value), embedded
    as Markdown ``![chart](data:image/png;base64,…)``, which the Dagster UI renders in place.

    ``frame`` holds one row per ``x`` (and ``series``), or several that are summed. An empty frame
    gives a line of text, not an empty plot."""
    if frame.is_empty():
        return dg.MetadataValue.md(f"_{title or 'chart'}: no rows_")
    import base64
    import io

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    keys = [x] if series is None else [x, series]
    data = frame.group_by(keys).agg(pl.col(y).sum())
    if series is not None:
        largest = data.group_by(series).agg(pl.col(y).sum()).sort(y, descending=True).get_column(series)
        keep = largest.head(CHART_SERIES).implode()
        data = (
            data.with_columns(
                pl.when(pl.col(series).is_in(keep)).then(pl.col(series).cast(pl.Utf8)).otherwise(pl.lit("other"))
            )
            .group_by(keys)
            .agg(pl.col(y).sum())
        )
    data = data.sort(keys)
    figure = Figure(figsize=CHART_INCHES, dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    groups = (
        [(None, data)] if series is None else list(data.partition_by(series, as_dict=True, maintain_order=True).items())
    )
    labels = data.get_column(x).unique(maintain_order=True).to_list()
    position = {value: i for i, value in enumerate(labels)}
    width = 0.8 / max(len(groups), 1)
    for i, (name, group) in enumerate(groups):
        label = None if name is None else str(name[0])
        if kind == "bar":
            positions = [position[v] + i * width for v in group.get_column(x)]
            axes.bar(positions, group.get_column(y).to_list(), width=width, label=label)
        else:
            axes.plot(group.get_column(x).to_list(), group.get_column(y).to_list(), linewidth=1, label=label)
    if kind == "bar":
        axes.set_xticks([i + width * (len(groups) - 1) / 2 for i in range(len(labels))])
        axes.set_xticklabels([str(v) for v in labels], rotation=30, ha="right", fontsize=7)
    else:
        axes.tick_params(axis="x", labelrotation=30)
    axes.tick_params(labelsize=7)
    axes.set_title(title, fontsize=9)
    axes.set_ylabel(y, fontsize=8)
    if series is not None:
        axes.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return dg.MetadataValue.md(f"![{title or 'chart'}](data:image/png;base64,{encoded})")
