"""Metadata shared by the asset definitions: owners and column schemas for the Dagster UI."""

from collections.abc import Mapping

import dagster as dg
import polars as pl

__all__ = [
    "OWNERS",
    "PARTITION_TAG",
    "RANGE_END",
    "RANGE_START",
    "RUN_KEY_TAG",
    "markdown_preview",
    "run_partition_range",
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


def markdown_preview(frame: pl.DataFrame, rows: int = 5) -> dg.MarkdownMetadataValue:
    """A few rows as a Markdown table, so the UI shows what was written without a query."""
    head = frame.head(rows)
    header = "| " + " | ".join(head.columns) + " |"
    rule = "|" + "---|" * len(head.columns)
    body = ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in head.iter_rows()]
    return dg.MetadataValue.md("\n".join([header, rule, *body]))
