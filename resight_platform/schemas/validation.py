"""Validating a table's frames against its Pandera model, a chunk at a time, with lazy validation:
every rule is evaluated on every row and the failures are counted per rule, never stopping at the
first. No Dagster here: ``defs/checks.py`` turns a :class:`Validation` into an asset check result.

A *rule* is named after what Pandera reports: ``column.check`` for a column's rule (``quantity.
greater_than(0)``, ``order_id.not_nullable``, ``customer_id.dtype('String')``), the check's name for
a table rule (``net_amount_is_quantity_times_price_less_discount``, ``multiple_fields_uniqueness``),
and ``check(value)`` for a rule about the table's shape (``column_in_schema(extra)``,
``column_in_dataframe(missing)``). A row-level rule counts failing rows; a shape rule counts 1.

What failed is also kept per partition (``by_partition``, only partitions that failed), so a check
can name the partitions to look at: a row's partition is found from its index in the batch, a
shape rule is charged to every partition of the batch it broke in.

Uniqueness (``Config.unique``) is judged within a chunk; the writers that stream a partition in
chunks deduplicate across chunks themselves (silver's ``seen`` keys).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandera.errors
import pandera.polars as pa
import polars as pl

__all__ = ["PartitionFailures", "Validation"]


@dataclass
class Validation:
    """What validating frames against ``model`` found so far."""

    model: type[pa.DataFrameModel]
    sample_size: int = 10
    rows: int = 0
    frames: int = 0
    #: Rows that broke at least one row-level rule (a row breaking two counts once).
    failing_rows: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    sample: list[dict[str, object]] = field(default_factory=list)
    #: Per failing partition: its failing rows (row-level rules) and failures per rule.
    by_partition: dict[str, PartitionFailures] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def add(self, frame: pl.DataFrame, *, partition: str | None = None) -> None:
        """Validate ``frame`` (all rules, lazily) and add what failed."""
        self.add_many([(partition, frame)])

    def add_many(self, pieces: Sequence[tuple[str | None, pl.DataFrame]]) -> None:
        """Validate frames of the same columns together, each labelled with its partition: one
        Pandera call for many small partitions (a call costs milliseconds however few its rows)."""
        if not pieces:
            return
        frame = pieces[0][1] if len(pieces) == 1 else pl.concat([f for _, f in pieces], how="vertical")
        starts, labels, at = [], [], 0
        for partition, piece in pieces:
            starts.append(at)
            labels.append(partition)
            at += piece.height
        self.rows += frame.height
        self.frames += len(pieces)
        try:
            self.model.validate(frame, lazy=True)
        except pandera.errors.SchemaErrors as exc:
            self._collect(frame, exc.failure_cases, starts, labels)
        except pandera.errors.SchemaError as exc:  # raised eagerly for some shape errors
            rule = f"{exc.reason_code or 'schema'}"
            self.failures[rule] += 1
            self._charge_batch(labels, rule)

    def _partition(self, partition: str) -> PartitionFailures:
        return self.by_partition.setdefault(partition, PartitionFailures())

    def _charge_batch(self, labels: Sequence[str | None], rule: str) -> None:
        """A shape rule broken by a batch: every partition in it has that shape."""
        for partition in dict.fromkeys(label for label in labels if label is not None):
            self._partition(partition).failures[rule] += 1

    def _collect(
        self, frame: pl.DataFrame, cases: pl.DataFrame, starts: Sequence[int], labels: Sequence[str | None]
    ) -> None:
        labelled = cases.with_columns(
            rule=pl.when(pl.col("index").is_null() & (pl.col("schema_context") == "DataFrameSchema"))
            .then(pl.format("{}({})", pl.col("check"), pl.col("failure_case")))
            .when(pl.col("schema_context") == "Column")
            .then(pl.format("{}.{}", pl.col("column"), pl.col("check")))
            .otherwise(pl.col("check"))
        )
        for rule, count in labelled.group_by("rule").len().iter_rows():
            self.failures[str(rule)] += int(count)
        indexed = labelled.filter(pl.col("index").is_not_null())
        rows = indexed.get_column("index").unique()
        self.failing_rows += rows.len()
        for rule in labelled.filter(pl.col("index").is_null()).get_column("rule").unique().to_list():
            self._charge_batch(labels, str(rule))
        if any(label is not None for label in labels) and not indexed.is_empty():
            self._collect_by_partition(indexed, starts, labels)
        room = self.sample_size - len(self.sample)
        if room <= 0 or indexed.is_empty():
            return
        first_rule = indexed.group_by("index", maintain_order=True).agg(pl.col("rule").first()).sort("index").head(room)
        picked = frame.with_row_index("__index").join(
            first_rule.select(pl.col("index").cast(pl.UInt32).alias("__index"), "rule"), on="__index"
        )
        for row in picked.iter_rows(named=True):
            index = row.pop("__index")
            self.sample.append(
                {"rule": row.pop("rule"), "partition": labels[bisect.bisect_right(starts, index) - 1], **row}
            )

    def _collect_by_partition(self, indexed: pl.DataFrame, starts: Sequence[int], labels: Sequence[str | None]) -> None:
        """Failing rows and failures per rule of each partition, in one pass over the failure
        cases (a row's partition is the last piece starting at or before its index)."""
        piece = pl.Series(starts, dtype=pl.Int64).search_sorted(
            indexed.get_column("index").cast(pl.Int64), side="right"
        )
        cases = indexed.select("index", "rule").with_columns(piece=piece.cast(pl.Int64) - 1)
        for at, rows in cases.group_by("piece").agg(pl.col("index").n_unique()).iter_rows():
            label = labels[at]
            if label is not None:
                self._partition(label).rows += int(rows)
        for at, rule, count in cases.group_by("piece", "rule").len().iter_rows():
            label = labels[at]
            if label is not None:
                self._partition(label).failures[str(rule)] += int(count)


@dataclass
class PartitionFailures:
    """What one partition broke: its failing rows and the failures per rule."""

    rows: int = 0
    failures: Counter[str] = field(default_factory=Counter)
