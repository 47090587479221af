"""Asset checks generated from the Pandera models: one ``matches_model`` check per table, run in the
asset's own step on the frames it writes (validated chunk by chunk as they stream to storage, so a
table is never read twice to be checked), reported with rows checked, failures per rule and a
sample of failing rows.

A check result describes the partitions of the run that produced it: Dagster 1.13's asset checks
are per asset, not per partition, so the latest result is the latest run's verdict. Each check keeps
its outcome per partition, so a failed result names its failing partitions (``failing_partitions``,
``failing_partition_count``, and the first few in its description), and each partition's own
materialisation carries the verdicts on it (``checks_failed``, via :func:`checks_failed` in the
stream's ``partition_summary``). Blocking checks (silver, facts, dimensions) stop the run's
downstream steps, and automation waits (``all_deps_blocking_checks_passed``) until a later run of
that asset passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

import dagster as dg
import polars as pl

from resight_platform.defs.keys import FACT_SALES
from resight_platform.schemas.validation import PartitionFailures, Validation

__all__ = [
    "CHECKS_FAILED",
    "FACT_KEYS",
    "KEYS_CHECK",
    "MODEL_CHECK",
    "RECONCILE_CHECK",
    "KeysCheck",
    "ModelCheck",
    "PartitionVerdicts",
    "Reconciliation",
    "checks_failed",
    "fact_check_specs",
    "model_check_spec",
    "reconcile_result",
]

MODEL_CHECK = "matches_model"

#: Columns of a failing row shown in the check's sample (the rule and partition come first).
_SAMPLE_COLUMNS = 10

#: The metadata entry of a partition's materialisation naming the checks it failed ("none" if none).
CHECKS_FAILED = "checks_failed"
#: Failing partitions listed in a check result's ``failing_partitions`` (first by key) ...
_FAILING_IN_METADATA = 100
#: ... and named in its description.
_FAILING_IN_DESCRIPTION = 5


class PartitionVerdicts(Protocol):
    """A check that knows its verdict on each partition of the run."""

    def verdict(self, partition: str) -> str | None:
        """What ``partition`` failed (e.g. ``"matches_model: 12 rows (rule)"``), None if it passed."""
        ...


def checks_failed(partition: str, *checks: PartitionVerdicts) -> dict[str, dg.MetadataValue]:
    """``partition``'s materialisation metadata naming the ``checks`` it failed, "none" if none: in
    the UI a partition's own event says whether it passed, where the check's result is the run's."""
    failed = [verdict for check in checks if (verdict := check.verdict(partition))]
    return {CHECKS_FAILED: dg.MetadataValue.text("; ".join(failed) if failed else "none")}


def _name_failing(metadata: dict[str, dg.MetadataValue], description: str, by_partition: Mapping[str, int]) -> str:
    """Add a failed result's ``failing_partitions`` (``{partition: failing rows}``, first by key)
    and ``failing_partition_count`` to ``metadata``; ``description`` with the first few named."""
    keys = sorted(by_partition)
    shown = keys[:_FAILING_IN_DESCRIPTION]
    noun = "partition" if len(keys) == 1 else "partitions"
    metadata["failing_partitions"] = dg.MetadataValue.json(
        {key: by_partition[key] for key in keys[:_FAILING_IN_METADATA]}
    )
    metadata["failing_partition_count"] = dg.MetadataValue.int(len(keys))
    return f"{description} in {len(keys)} {noun}: " + ", ".join(shown) + (" …" if len(keys) > len(shown) else "")


def _verdict(check: str, rows: int, causes: Iterable[str]) -> str:
    named = ", ".join(sorted(causes))
    return f"{check}: {rows} row{'' if rows == 1 else 's'} ({named})" if rows else f"{check}: {named}"


def model_check_spec(key: Sequence[str], model: type, *, blocking: bool) -> dg.AssetCheckSpec:
    """The ``matches_model`` check of the table ``key``, from its model ``model``."""
    return dg.AssetCheckSpec(
        MODEL_CHECK,
        asset=dg.AssetKey(list(key)),
        blocking=blocking,
        description=(
            f"Every row written follows the Pandera model {model.__name__} (resight_platform/schemas/):"
            " columns, types, nullability and value rules, all evaluated (lazy validation)."
        ),
        metadata={"model": f"{model.__module__}.{model.__name__}"},
    )


class ModelCheck:
    """Validates what an asset writes and gives the ``matches_model`` result for its run."""

    #: Frames are validated together once this many rows wait (or at the end): a run of many
    #: small partitions makes a few Pandera calls, not one per partition (milliseconds each).
    BATCH_ROWS = 250_000

    def __init__(self, key: Sequence[str], model: type) -> None:
        self.key = dg.AssetKey(list(key))
        self.validation = Validation(model)  # type: ignore[arg-type]
        self.partitions: list[str] = []
        self._waiting: list[tuple[str | None, pl.DataFrame]] = []
        self._waiting_rows = 0

    def frame(self, frame: pl.DataFrame, partition: str | None = None) -> pl.DataFrame:
        """Queue ``frame`` for validation and hand it back (for use inside a stream)."""
        if partition is not None and (not self.partitions or self.partitions[-1] != partition):
            self.partitions.append(partition)
        if self._waiting and self._waiting[0][1].schema != frame.schema:
            self._flush()
        self._waiting.append((partition, frame))
        self._waiting_rows += frame.height
        if self._waiting_rows >= self.BATCH_ROWS:
            self._flush()
        return frame

    def _flush(self) -> None:
        self.validation.add_many(self._waiting)
        self._waiting, self._waiting_rows = [], 0

    def verdict(self, partition: str) -> str | None:
        """What ``partition`` broke (its failing rows and rules), None if nothing. Validates what
        still waits first: a partition's materialisation is composed after the last chunk, before
        :meth:`result`, and must carry the verdict on all of its rows."""
        if self._waiting:
            self._flush()
        failed = self.validation.by_partition.get(partition)
        return None if failed is None else _verdict(MODEL_CHECK, failed.rows, failed.failures)

    def result(self) -> dg.AssetCheckResult:
        self._flush()
        v = self.validation
        metadata: dict[str, dg.MetadataValue] = {
            "rows_checked": dg.MetadataValue.int(v.rows),
            "failing_rows": dg.MetadataValue.int(v.failing_rows),
            "failures_by_rule": dg.MetadataValue.json(dict(sorted(v.failures.items()))),
            "partitions_checked": dg.MetadataValue.int(len(self.partitions)),
        }
        if self.partitions:
            shown = ", ".join(self.partitions[:20]) + (" …" if len(self.partitions) > 20 else "")
            metadata["partitions"] = dg.MetadataValue.text(shown)
        if v.sample:
            metadata["failing_rows_sample"] = _sample_table(v.sample)
        description = None if v.passed else f"{v.failing_rows} of {v.rows} rows break the model"
        if v.by_partition:
            description = _name_failing(
                metadata, str(description), {key: failed.rows for key, failed in v.by_partition.items()}
            )
        return dg.AssetCheckResult(
            asset_key=self.key,
            check_name=MODEL_CHECK,
            passed=v.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata=metadata,
            description=description,
        )


def _sample_table(sample: list[dict[str, object]]) -> dg.MarkdownMetadataValue:
    columns = list(sample[0])[: _SAMPLE_COLUMNS + 2]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in sample:
        cells = ("" if row.get(c) is None else str(row.get(c)).replace("|", "\\|")[:60] for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return dg.MetadataValue.md("\n".join(lines))


KEYS_CHECK = "keys_resolve_to_dimensions"
RECONCILE_CHECK = "reconciles_with_silver"

#: Each foreign key of ``gold.fact_sales`` and the dimension (input name) holding it.
FACT_KEYS = {
    "provider_key": "dim_provider",
    "product_key": "dim_product",
    "store_key": "dim_store",
    "customer_key": "dim_customer",
}


def fact_check_specs() -> list[dg.AssetCheckSpec]:
    """The cross-table checks of ``gold.fact_sales`` (besides its model's)."""
    key = FACT_SALES
    return [
        dg.AssetCheckSpec(
            KEYS_CHECK,
            asset=key,
            blocking=True,
            description="Every key of a fact row (provider, product, store, customer) exists in its dimension"
            " (key 0 is each dimension's 'unknown' member).",
        ),
        dg.AssetCheckSpec(
            RECONCILE_CHECK,
            asset=key,
            blocking=True,
            description="Per date × source, the lines and net amount committed in Postgres equal silver's:"
            " nothing lost or doubled between the layers.",
        ),
    ]


class KeysCheck:
    """Fact keys not found in their dimension, counted per key column (and per partition)."""

    def __init__(self, dimension_keys: dict[str, pl.Series]) -> None:
        self.keys = dimension_keys
        self.rows = 0
        self.missing: dict[str, int] = dict.fromkeys(dimension_keys, 0)
        self.examples: dict[str, set[int]] = {column: set() for column in dimension_keys}
        #: Per failing partition: its rows with an unknown key, and those rows per key column.
        self.by_partition: dict[str, PartitionFailures] = {}

    def frame(self, fact: pl.DataFrame, partition: str | None = None) -> None:
        self.rows += fact.height
        dangling = {
            column: pl.col(column).is_not_null() & ~pl.col(column).is_in(known.implode())
            for column, known in self.keys.items()
        }
        counts = fact.select(
            *(expr.sum().alias(column) for column, expr in dangling.items()),
            pl.any_horizontal(*dangling.values()).sum().alias("__rows"),
        ).row(0, named=True)
        if not counts["__rows"]:
            return
        for column, expr in dangling.items():
            if counts[column]:
                self.missing[column] += counts[column]
                self.examples[column].update(fact.filter(expr).get_column(column).unique().head(5).to_list())
        if partition is not None:
            failed = self.by_partition.setdefault(partition, PartitionFailures())
            failed.rows += counts["__rows"]
            failed.failures.update({column: counts[column] for column in dangling if counts[column]})

    def verdict(self, partition: str) -> str | None:
        failed = self.by_partition.get(partition)
        return None if failed is None else _verdict(KEYS_CHECK, failed.rows, failed.failures)

    def result(self) -> dg.AssetCheckResult:
        failed = {column: count for column, count in self.missing.items() if count}
        metadata: dict[str, dg.MetadataValue] = {
            "rows_checked": dg.MetadataValue.int(self.rows),
            "rows_with_unknown_key_by_column": dg.MetadataValue.json(self.missing),
            "example_keys": dg.MetadataValue.json({c: sorted(self.examples[c]) for c in failed}),
        }
        description = None if not failed else f"keys missing from their dimension: {failed}"
        if self.by_partition:
            description = _name_failing(
                metadata, str(description), {key: failed.rows for key, failed in self.by_partition.items()}
            )
        return dg.AssetCheckResult(
            asset_key=FACT_SALES,
            check_name=KEYS_CHECK,
            passed=not failed,
            metadata=metadata,
            description=description,
        )


class Reconciliation:
    """``(lines, net amount in cents)`` per partition key of silver against what Postgres committed."""

    def __init__(self, silver: Mapping[str, tuple[int, int]], committed: Mapping[str, tuple[int, int]]) -> None:
        self.silver, self.committed = silver, committed
        self.differ = {
            key: {"silver": list(silver[key]), "gold": list(committed.get(key, (0, 0)))}
            for key in sorted(silver)
            if silver[key] != committed.get(key, (0, 0))
        }

    def verdict(self, partition: str) -> str | None:
        differ = self.differ.get(partition)
        if differ is None:
            return None
        (lines, cents), (gold_lines, gold_cents) = differ["silver"], differ["gold"]
        return (
            f"{RECONCILE_CHECK}: silver {lines} lines ({cents / 100:.2f}), gold {gold_lines} ({gold_cents / 100:.2f})"
        )

    def result(self) -> dg.AssetCheckResult:
        silver, committed, differ = self.silver, self.committed, self.differ
        lines = sum(v[0] for v in silver.values())
        cents = sum(v[1] for v in silver.values())
        metadata: dict[str, dg.MetadataValue] = {
            "partitions_checked": dg.MetadataValue.int(len(silver)),
            "silver_lines": dg.MetadataValue.int(lines),
            "silver_net_amount": dg.MetadataValue.float(cents / 100),
            "gold_lines": dg.MetadataValue.int(sum(committed.get(k, (0, 0))[0] for k in silver)),
            "partitions_that_differ": dg.MetadataValue.json(dict(list(differ.items())[:50])),
        }
        description = None
        if differ:
            # A partition's "failing rows" here: the lines gold lacks or doubles (0 if only the amount differs).
            description = _name_failing(
                metadata,
                "silver and gold differ",
                {key: abs(v["silver"][0] - v["gold"][0]) for key, v in differ.items()},
            )
        return dg.AssetCheckResult(
            asset_key=FACT_SALES,
            check_name=RECONCILE_CHECK,
            passed=not differ,
            metadata=metadata,
            description=description,
        )


def reconcile_result(
    silver: Mapping[str, tuple[int, int]], committed: Mapping[str, tuple[int, int]]
) -> dg.AssetCheckResult:
    """Compare ``(lines, net amount in cents)`` per partition key of silver and of what was committed."""
    return Reconciliation(silver, committed).result()
