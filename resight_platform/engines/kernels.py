"""The few steps the engines cannot share through Narwhals, one function per step and one
implementation per engine; each takes and returns a Narwhals frame, so the shared code around it
does not know which engine ran it. Each kernel has a parity test
(``resight_platform_tests/engines/test_kernels.py``). Why each one is per engine:
``docs/engines.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import narwhals as nw
import polars as pl

from resight_platform.engines import engine_of, from_polars

__all__ = [
    "NUL_SHOWN",
    "SPARK_COLUMN_KEYS",
    "WHITESPACE",
    "WHITESPACE_CLASS",
    "ByRow",
    "by_row",
    "first_by_key",
    "in_record_order",
    "materialised",
    "per_group",
    "spark_pattern",
    "usd_cents_polars",
    "with_dates",
    "with_dollars",
    "with_mapped",
    "with_net_cents",
    "with_polars_exprs",
    "with_raw_json",
    "with_timestamps",
]

_NUL = "\x00"
#: How a NUL is written in a quarantined row's ``raw``: visibly, and storable in jsonb.
NUL_SHOWN = "\\u0000"
#: The characters Polars' ``strip_chars()`` removes (Rust's ``char::is_whitespace``), written out so
#: every engine's trim and regex use the same set (Java's ``\\s`` is ASCII only).
WHITESPACE = (
    "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u2028\u2029\u202f\u205f\u3000"
)
#: The same characters as a regex character class's body, runs written as ranges: Java compiles
#: each single character of a class into one more predicate that every character tested walks
#: through (a profile of silver on Spark found it among the hottest frames); Rust's regex is
#: indifferent. ``test_kernels.py`` checks that it is the same set.
WHITESPACE_CLASS = "\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
#: The record order of bronze rows: landing key, then the row's number in its file.
RECORD_ORDER = ("_source_file", "_row_number")


def _native(frame: nw.LazyFrame) -> Any:
    return nw.to_native(frame)


def with_dollars(frame: nw.LazyFrame, columns: Mapping[str, str]) -> nw.LazyFrame:
    """Add ``{name: cents column}`` as Float64 dollars: the double nearest to cents / 100.

    Not ``nw.col(c) / 100``: Polars divides a float column by a literal as a multiplication by the
    reciprocal, an ulp off for about one value in seven (``16.990000000000002``); it takes the
    exact decimal quotient instead. Spark's double division is IEEE-correctly rounded, and a cent
    count below 2^53 is exact as a double, so plain division is the nearest double there (an
    integer or ``decimal(38,0)`` column converts to the nearest double).
    """
    if not columns:
        return frame
    native = _native(frame)
    if engine_of(native) == "polars":
        exprs = [(pl.col(c).cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64).alias(n) for n, c in columns.items()]
        return nw.from_native(native.with_columns(exprs))
    from pyspark.sql import functions as F

    return nw.from_native(native.withColumns({n: F.col(c).cast("double") / F.lit(100.0) for n, c in columns.items()}))


def with_net_cents(frame: nw.LazyFrame, name: str, quantity: str, unit_cents: str, discount_cents: str) -> nw.LazyFrame:
    """Add ``name = quantity x unit_cents - discount_cents`` exactly (``discount_cents`` null counts
    as 0; null when quantity or unit price is).

    Per engine because the product (a quantity below 2^31 times a price below 10^10 cents) can pass
    Int64: Polars takes Int128, Spark ``decimal(38,0)`` (Narwhals has neither on both; an Int64
    overflow raises under Spark's ANSI mode and wraps on Polars)."""
    native = _native(frame)
    if engine_of(native) == "polars":
        net = pl.col(quantity).cast(pl.Int128) * pl.col(unit_cents) - pl.col(discount_cents).fill_null(0)
        return nw.from_native(native.with_columns(net.alias(name)))
    from pyspark.sql import functions as F

    exact = "decimal(38,0)"
    product = F.col(quantity).cast(exact) * F.col(unit_cents).cast(exact)
    spark_net = product - F.coalesce(F.col(discount_cents), F.lit(0)).cast(exact)
    return nw.from_native(native.withColumn(name, spark_net.cast(exact)))


def in_record_order(frame: nw.LazyFrame, params: pl.DataFrame, on: str) -> nw.LazyFrame:
    """Rows joined (left) to the small per-``on`` ``params`` frame, in record order.

    Polars: sorted by ``(_source_file, _row_number)`` (stable), joined keeping that order and
    numbered ``__row``, so later steps may rely on row order (``per_group``, ``first_by_key``) and
    the output comes out in record order. Spark: a broadcast join; order is not a property of a
    Spark frame, so the steps that need it say it explicitly (a window)."""
    native = _native(frame)
    if engine_of(native) == "polars":
        rows = (
            native.sort(*RECORD_ORDER, maintain_order=True)
            .join(params.lazy(), on=on, how="left", maintain_order="left")
            .with_row_index("__row")
        )
        return nw.from_native(rows)
    from pyspark.sql import functions as F

    return nw.from_native(native.join(F.broadcast(from_polars(native, params)), on=on, how="left"))


#: Per-provider parameters a Spark kernel reads from the row's column rather than as a literal:
#: ``per_group`` does not split the rows by them on Spark but passes a :class:`ByRow`. A time zone
#: is a column to Spark's zone functions; a format picks its branch of a ``CASE`` by the column.
SPARK_COLUMN_KEYS = frozenset({"_timezone", "_datetime_format", "_date_format", "_money_format"})


@dataclass(frozen=True)
class ByRow:
    """A per-provider parameter read from each row's own ``column``; ``values`` are the ones the
    frame's providers have (sorted). What ``per_group`` passes on Spark for a key in
    ``SPARK_COLUMN_KEYS``: the kernel builds its expression once per value and picks by the row's
    value (:func:`by_row`), so the rows are neither split nor put back together."""

    column: str
    values: tuple[Any, ...]


def by_row(value: Any, build: Callable[[Any], nw.Expr]) -> nw.Expr:
    """``build(value)``; for a :class:`ByRow`, ``build`` of the row's value (a ``when`` chain on
    its column: each row evaluates its own branch only)."""
    if not isinstance(value, ByRow):
        return build(value)
    if len(value.values) == 1:
        return build(value.values[0])
    chain: Any = nw
    for each in value.values:
        chain = chain.when(nw.col(value.column) == each).then(build(each))
    return chain.otherwise(nw.lit(None))  # type: ignore[no-any-return]


def _spark_by_row(value: Any, build: Callable[[Any], Any]) -> Any:
    """:func:`by_row` for a PySpark column expression."""
    from pyspark.sql import functions as F

    if not isinstance(value, ByRow):
        return build(value)
    if len(value.values) == 1:
        return build(value.values[0])
    chain: Any = None
    for each in value.values:
        matched = F.col(value.column) == F.lit(each)
        chain = F.when(matched, build(each)) if chain is None else chain.when(matched, build(each))
    return chain


def per_group(
    frame: nw.LazyFrame, params: pl.DataFrame, builds: Sequence[tuple[Sequence[str], Callable[..., nw.LazyFrame]]]
) -> nw.LazyFrame:
    """For each ``(keys, build)``: ``build(rows, *values)`` for the rows of each distinct ``keys``
    value of ``params`` (the rows of the only group being all rows): for what needs a literal per
    provider (a strptime pattern, a time zone, a money format). A bronze frame holds few
    providers, so there are few groups.

    Polars: one pass over the groups of all keys together; the rows are materialised once,
    otherwise every group's branch re-runs the plan above it (measured on 1M rows of 40 providers
    in 19 groups: 1.1 s instead of 5-7 s), and put back in record order (``__row``). Spark: a key in
    ``SPARK_COLUMN_KEYS`` is passed as a :class:`ByRow` (the kernel picks by the row's column), so
    silver's formats and zones never split the rows: a split is a union of the groups' filtered
    plans, each of which re-reads and re-joins the whole input (4 datetime formats made the
    timestamps step of 200k sales lines cost 21 s of CPU; ``docs/engines.md``). Another key splits
    the rows as such a union, persisted (``materialised``) so that what follows is planned once over
    its result; otherwise Spark's optimiser pushes every later step into each branch.
    """

    def groups(keys: Sequence[str]) -> list[tuple[Any, ...]]:
        return params.select(keys).unique().sort(keys).rows()

    if engine_of(_native(frame)) == "spark":
        for keys, build in builds:
            # A key Spark reads from its column (``SPARK_COLUMN_KEYS``) is passed as a ByRow.
            grouped = [key for key in keys if key not in SPARK_COLUMN_KEYS]
            found = groups(grouped) if grouped else [()]
            per_row = {
                key: ByRow(key, tuple(params.get_column(key).unique().sort().to_list()))
                for key in keys
                if key in SPARK_COLUMN_KEYS
            }

            def call(
                rows: nw.LazyFrame,
                group: tuple[Any, ...],
                keys: Sequence[str] = keys,
                grouped: Sequence[str] = grouped,
                build: Callable[..., nw.LazyFrame] = build,
                per_row: Mapping[str, ByRow] = per_row,
            ) -> nw.LazyFrame:
                values: dict[str, Any] = {**per_row, **dict(zip(grouped, group, strict=True))}
                return build(rows, *(values[key] for key in keys))

            if len(found) == 1:
                frame = call(frame, found[0])
                continue
            parts = [call(frame.filter(_in_group(grouped, group)), group) for group in found]
            frame = materialised(nw.concat(parts, how="vertical"))
        return frame
    every = list(dict.fromkeys(key for keys, _ in builds for key in keys))

    def build_all(rows: nw.LazyFrame, group: tuple[Any, ...]) -> nw.LazyFrame:
        values = dict(zip(every, group, strict=True))
        for keys, build in builds:
            rows = build(rows, *(values[key] for key in keys))
        return rows

    found = groups(every)
    if len(found) == 1:
        return build_all(frame, found[0])
    rows = nw.from_native(_native(frame).collect(engine="in-memory").lazy())
    parts = [build_all(rows.filter(_in_group(every, group)), group) for group in found]
    return nw.concat(parts, how="vertical").sort("__row")


def _in_group(keys: Sequence[str], group: tuple[Any, ...]) -> nw.Expr:
    return nw.all_horizontal(*(nw.col(k) == v for k, v in zip(keys, group, strict=True)), ignore_nulls=False)


def materialised(frame: nw.LazyFrame) -> nw.LazyFrame:
    """``frame`` computed once for the several outputs read from it (valid rows, quarantine, keys).

    Polars: collected, then lazy again over the result (three lazy queries ran the shared cleaning
    plan twice: 3.0 s against 1.5 s on 830k rows). Spark: persisted (memory, spilling to disk),
    computed at the first action on any output and reused by the others; still lazy, so the caller
    decides when to write."""
    native = _native(frame)
    if engine_of(native) == "polars":
        return nw.from_native(native.collect(engine="in-memory").lazy())
    from pyspark import StorageLevel

    return nw.from_native(native.persist(StorageLevel.MEMORY_AND_DISK))


def first_by_key(frame: nw.LazyFrame, keys: Sequence[str], name: str) -> nw.LazyFrame:
    """Add ``name``: True on the first row of each ``keys`` value in record order (nulls equal).

    Polars: ``is_first_distinct`` over rows already in record order (``in_record_order``), 3x faster
    than the Narwhals window (0.16 against 0.56 s at 1M rows). Spark: ``row_number`` over a window
    by key, ordered by ``(_source_file, _row_number)``."""
    native = _native(frame)
    if engine_of(native) == "polars":
        return nw.from_native(native.with_columns(pl.struct(*keys).is_first_distinct().alias(name)))
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy(*keys).orderBy(*RECORD_ORDER)
    return nw.from_native(native.withColumn(name, F.row_number().over(window) == 1))


def with_mapped(frame: nw.LazyFrame, name: str, keys: Sequence[str], table: pl.DataFrame) -> nw.LazyFrame:
    """Add ``name``: the value ``table`` gives the row's ``keys`` (null if none, or a key is null).

    ``table`` has the key columns (named as ``keys``, unique together) and ``name``. Polars: a
    ``replace_strict`` (keys joined by ``\\x1f`` when several), fast and order-keeping. Spark: a left
    join with the table as a small broadcast frame; ``replace_strict`` builds a map literal that
    Spark Connect refuses, and a join scales to large value maps.
    """
    dtype = table.schema[name]
    native = _native(frame)
    if table.is_empty():
        return frame.with_columns(nw.lit(None, _nw_dtype(dtype)).alias(name))
    if engine_of(native) == "polars":
        if len(keys) == 1:
            key = pl.col(keys[0])
            old = table.get_column(keys[0])
        else:
            key = pl.concat_str([pl.col(k) for k in keys], separator="\x1f")
            old = table.select(pl.concat_str(list(keys), separator="\x1f")).to_series()
        mapped = key.replace_strict(old, table.get_column(name), default=None, return_dtype=dtype)
        return nw.from_native(native.with_columns(mapped.alias(name)))
    from pyspark.sql import functions as F

    right = from_polars(native, table.rename({k: f"__key{i}" for i, k in enumerate(keys)}))
    condition = [F.col(k) == F.col(f"__key{i}") for i, k in enumerate(keys)]
    joined = native.join(F.broadcast(right), on=condition, how="left")
    return nw.from_native(joined.drop(*(f"__key{i}" for i in range(len(keys)))))


def _nw_dtype(dtype: pl.DataType) -> Any:
    return {pl.String: nw.String, pl.Int64: nw.Int64}[dtype.base_type()]


def with_raw_json(frame: nw.LazyFrame, name: str, columns: Sequence[str]) -> nw.LazyFrame:
    """Add ``name``: ``columns`` (text) as one JSON object, ``{"col":"value",...,"col":null}``, with a
    NUL written as the six characters ``\\u0000`` (jsonb refuses the JSON escape of NUL).

    Polars: ``struct.json_encode``. Spark: ``to_json`` keeping null fields, its escapes' hex put in
    lower case; both then write the same bytes (control characters as ``\\u00xx`` except ``\\b \\f
    \\n \\r \\t``, other characters unescaped), which ``test_kernels.py`` checks."""
    native = _native(frame)
    if engine_of(native) == "polars":
        raw = pl.struct(pl.col(c).str.replace_all(_NUL, NUL_SHOWN, literal=True) for c in columns).struct.json_encode()
        return nw.from_native(native.with_columns(raw.alias(name)))
    from pyspark.sql import functions as F

    shown = [F.replace(F.col(c), F.lit(_NUL), F.lit(NUL_SHOWN)).alias(c) for c in columns]
    encoded = F.to_json(F.struct(*shown), {"ignoreNullFields": "false"})
    # Jackson writes the hex of a control character's escape in upper case (\u001F), Polars in lower
    # case: only the second digit of \u000B-\u001F can be a letter. An escape is one preceded by an
    # even number of backslashes (``\\u001F`` is a backslash, then text).
    for letter in "ABCDEF":
        encoded = F.regexp_replace(encoded, rf"(?<!\\)((?:\\\\)*)\\u00([01]){letter}", rf"$1\\u00$2{letter.lower()}")
    return nw.from_native(native.withColumn(name, encoded))


# --- timestamps ----------------------------------------------------------------------------------

#: strptime directives -> a Spark datetime pattern, as lenient as strptime on padding (single
#: letters accept one or two digits, as chrono's numeric fields do).
_SPARK_DIRECTIVES: Mapping[str, str] = {
    "Y": "yyyy",
    "y": "yy",
    "m": "M",
    "d": "d",
    "e": "d",
    "H": "H",
    "k": "H",
    "I": "h",
    "l": "h",
    "M": "m",
    "S": "s",
    "p": "a",
    "b": "MMM",
    "h": "MMM",
    "B": "MMMM",
    "a": "EEE",
    "A": "EEEE",
    "j": "D",
    "z": "xx",
    ":z": "xxx",
    "#z": "xxx",
    "Z": "zzz",
    "F": "yyyy-M-d",
    "T": "H:m:s",
    "R": "H:m",
}
#: Directives Spark's parser would read with a fixed width when a number follows directly.
_PADDED: Mapping[str, str] = {"M": "MM", "d": "dd", "H": "HH", "h": "hh", "m": "mm", "s": "ss", "D": "DDD"}


def spark_pattern(fmt: str) -> str:
    """A strptime pattern (as Polars reads it) as a Spark datetime pattern.

    Numeric fields are single letters (``M/d/yyyy`` reads ``1/2/2026`` as strptime does) unless
    another numeric field touches it with no separator (``%Y%m%d``), where only fixed widths tell
    the fields apart (so ``2026101``, which strptime reads as October 1st, is unreadable on Spark);
    literal text is quoted. A directive with no Spark equivalent is an error."""
    tokens: list[tuple[str, bool]] = []  # (spark text, is a numeric field)
    i = 0
    while i < len(fmt):
        if fmt[i] == "%":
            rest = fmt[i + 1 :]
            directive = next((d for d in (":z", "#z") if rest.startswith(d)), rest[:1])
            if directive == "%":
                tokens.append(("'%'", False))
            elif directive in _SPARK_DIRECTIVES:
                text = _SPARK_DIRECTIVES[directive]
                tokens.append((text, text[0] in "yMdHhmsD" and directive not in ("b", "h", "B")))
            else:
                raise ValueError(f"strptime directive %{directive} of {fmt!r} has no Spark equivalent")
            i += 1 + len(directive)
        else:
            j = i
            while j < len(fmt) and fmt[j] != "%":
                j += 1
            literal = fmt[i:j].replace("'", "''")
            tokens.append((f"'{literal}'", False))
            i = j
    out = []
    for index, (text, numeric) in enumerate(tokens):
        touching = (index + 1 < len(tokens) and tokens[index + 1][1]) or (index > 0 and tokens[index - 1][1])
        out.append(_PADDED.get(text, text) if numeric and touching else text)
    return "".join(out)


_ISO_SPARK = (
    r"^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})[T ]([0-9]{1,2}):([0-9]{1,2})"
    r"(?::([0-9]{1,2})(?:\.([0-9]+))?)?(Z|[+-][0-9]{2}(?::?[0-9]{2})?)?\z"
)


def with_timestamps(
    frame: nw.LazyFrame, columns: Mapping[str, str], fmt: str | ByRow, timezone: str | ByRow
) -> nw.LazyFrame:
    """Add ``{name: text column}`` read in ``fmt`` (``iso``, ``epoch_ms`` or a strptime pattern) as
    Datetime(us, UTC); a time without an offset is wall-clock time in ``timezone``: the earlier
    instant when ambiguous, null when skipped by DST; null when unreadable.

    Polars: its strptime and ``replace_time_zone(ambiguous="earliest", non_existent="null")``
    (Narwhals' are strict and have neither option). Spark: the pattern translated
    (``spark_pattern``), ``try_to_timestamp`` (ANSI mode makes ``to_timestamp`` raise), then
    ``to_utc_timestamp`` and a round trip back to local time that nulls a skipped time (Spark moves
    it forward); ISO through a regex and a canonical pattern. On Spark ``fmt`` and ``timezone`` may
    be a :class:`ByRow` (``per_group`` on Spark does not split by them): each row is read in its
    own format (a ``CASE`` with one branch per format) and zone (Spark's zone functions take a
    column)."""
    native = _native(frame)
    if engine_of(native) == "polars":
        assert isinstance(fmt, str) and isinstance(timezone, str), "Polars reads a format and a zone as literals"
        return nw.from_native(
            native.with_columns(_pl_timestamp(pl.col(c), fmt, timezone).alias(n) for n, c in columns.items())
        )
    from pyspark.sql import functions as F

    formats = fmt.values if isinstance(fmt, ByRow) else (fmt,)
    parts = {n: f"{n}__iso" for n in columns} if "iso" in formats else {}
    if parts:  # an ISO text's parts, split once per row (``_spark_iso_parts``)
        native = native.withColumns({parts[n]: _spark_iso_parts(F.col(c)) for n, c in columns.items()})
    read = native.withColumns(
        {
            n: _spark_by_row(fmt, partial(_spark_timestamp, c, timezone=timezone, iso_parts=f"{n}__iso"))
            for n, c in columns.items()
        }
    )
    return nw.from_native(read.drop(*parts.values()))


def with_dates(frame: nw.LazyFrame, columns: Mapping[str, str], fmt: str | ByRow) -> nw.LazyFrame:
    """Add ``{name: text column}`` trimmed and read with the strptime date pattern ``fmt`` as Date;
    null when unreadable. Per engine for the same reasons as ``with_timestamps`` (a :class:`ByRow`
    ``fmt`` on Spark likewise)."""
    native = _native(frame)
    if engine_of(native) == "polars":
        assert isinstance(fmt, str), "Polars reads a format as a literal"
        exprs = [
            pl.col(c).str.strip_chars().str.strptime(pl.Date, fmt, strict=False).alias(n) for n, c in columns.items()
        ]
        return nw.from_native(native.with_columns(exprs))
    from pyspark.sql import functions as F

    def read(column: str, each: str) -> Any:
        return F.to_date(F.try_to_timestamp(_spark_trim(F.col(column)), F.lit(spark_pattern(each))))

    return nw.from_native(native.withColumns({n: _spark_by_row(fmt, partial(read, c)) for n, c in columns.items()}))


def _spark_trim(value: Any) -> Any:
    """``value`` without leading and trailing white space as Polars' ``strip_chars()`` sees it
    (Unicode's, where Java's ``\\s`` and Spark's one-argument ``trim`` know ASCII only): ``btrim``
    with the characters spelled out, cheaper than a regex over a class of them."""
    from pyspark.sql import functions as F

    return F.btrim(value, F.lit(WHITESPACE))


def _pl_timestamp(value: pl.Expr, fmt: str, timezone: str) -> pl.Expr:
    from resight_platform.sources.registry import TIMEZONE_DIRECTIVES

    if fmt == "iso":
        return _pl_iso_timestamp(value, timezone)
    if fmt == "epoch_ms":
        millis = value.str.extract(r"^(-?\d{1,15})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
        return pl.from_epoch(millis, time_unit="ms").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if any(directive in fmt for directive in TIMEZONE_DIRECTIVES):
        return value.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False)
    return _pl_local_to_utc(value.str.strptime(pl.Datetime("us"), fmt, strict=False), timezone)


def _pl_iso_timestamp(value: pl.Expr, timezone: str) -> pl.Expr:
    """ISO 8601 as UTC. The common shape is parsed first; the slower patterns only see the rest."""
    common = value.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S", strict=False)
    rest = pl.when(common.is_null()).then(value.str.strip_chars().str.replace(" ", "T", literal=True))
    with_offset = pl.coalesce(
        rest.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M:%S%.f%#z", strict=False),
        rest.str.strptime(pl.Datetime("us", "UTC"), "%Y-%m-%dT%H:%M%#z", strict=False),
    )
    local = pl.coalesce(
        common,
        rest.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False),
        rest.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M", strict=False),
    )
    return pl.coalesce(with_offset, _pl_local_to_utc(local, timezone))


def _pl_local_to_utc(naive: pl.Expr, timezone: str) -> pl.Expr:
    """Wall-clock time in ``timezone`` as UTC: the earlier instant when ambiguous, null if skipped."""
    return naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


def _spark_local_to_utc(wall: Any, timezone: str | ByRow) -> Any:
    """A wall-clock timestamp (read in the session's UTC) in ``timezone`` as the UTC instant; null
    when the time does not exist there (the round trip moves it)."""
    from pyspark.sql import functions as F

    zone = F.col(timezone.column) if isinstance(timezone, ByRow) else F.lit(timezone)
    utc = F.to_utc_timestamp(wall, zone)
    return F.when(F.from_utc_timestamp(utc, zone) == wall, utc)


def _spark_timestamp(column: str, fmt: str, timezone: str | ByRow, iso_parts: str) -> Any:
    """``column`` read in ``fmt``; ``iso_parts``: the column of its ISO parts (``_spark_iso_parts``)."""
    from pyspark.sql import functions as F

    from resight_platform.sources.registry import TIMEZONE_DIRECTIVES

    value = F.col(column)
    if fmt == "epoch_ms":
        digits = F.regexp_extract(value, r"^(-?[0-9]{1,15})(?:\.0*)?\z", 1)
        millis = F.when(F.length(digits) > 0, digits).otherwise(F.lit(None)).cast("bigint")
        return F.timestamp_millis(millis)
    if fmt == "iso":
        return _spark_iso(F.col(iso_parts), timezone)
    wall = F.try_to_timestamp(value, F.lit(spark_pattern(fmt)))
    if any(directive in fmt for directive in TIMEZONE_DIRECTIVES):
        return wall
    return _spark_local_to_utc(wall, timezone)


#: ``_ISO_SPARK``'s groups written out by one ``regexp_replace``, then split: one regex pass for
#: all eight (a ``regexp_extract`` per group re-runs the whole match each time). A matched text
#: holds only digits and ``-T: .+Z``, never the separator.
_ISO_GROUPS = "|".join(f"${i}" for i in range(1, 9))


def _spark_iso_parts(value: Any) -> Any:
    """An ISO 8601 text's 8 groups of ``_ISO_SPARK`` (date, time, fraction, offset; an absent one
    empty) as an array, or null if the text is not one. The date and time may be separated by
    one space instead of ``T`` (Polars' reading replaces the first space)."""
    from pyspark.sql import functions as F

    text = _spark_trim(value)
    return F.when(text.rlike(_ISO_SPARK), F.split(F.regexp_replace(text, _ISO_SPARK, _ISO_GROUPS), r"\|", -1))


def _spark_iso(parts: Any, timezone: str | ByRow) -> Any:
    """ISO 8601 as Polars' patterns read it, from its ``parts`` (``_spark_iso_parts``): put
    together in one canonical form (fraction cut to microseconds), read with
    ``try_to_timestamp``, then shifted by its offset or taken as local time."""
    from pyspark.sql import functions as F

    def part(index: int) -> Any:
        return parts.getItem(index - 1)

    seconds = F.when(F.length(part(6)) > 0, part(6)).otherwise(F.lit("0"))
    fraction = F.rpad(part(7), 6, "0").substr(1, 6)
    canonical = F.concat_ws(
        "",
        part(1),
        F.lit("-"),
        part(2),
        F.lit("-"),
        part(3),
        F.lit(" "),
        part(4),
        F.lit(":"),
        part(5),
        F.lit(":"),
        seconds,
        F.lit("."),
        fraction,
    )
    wall = F.when(parts.isNotNull(), F.try_to_timestamp(canonical, F.lit("yyyy-M-d H:m:s.SSSSSS")))
    offset = part(8)
    digits = F.regexp_replace(offset, "[^0-9]", "")
    hours = F.when(F.length(digits) >= 2, digits.substr(1, 2)).otherwise(F.lit("0")).cast("int")
    minutes = F.when(F.length(digits) == 4, digits.substr(3, 2)).otherwise(F.lit("0")).cast("int")
    sign = F.when(offset.startswith("-"), F.lit(-1)).otherwise(F.lit(1))
    shift = sign * (hours * 3600 + minutes * 60)
    shifted = F.timestamp_micros(F.unix_micros(wall) - shift.cast("bigint") * 1_000_000)
    return F.when(F.length(offset) > 0, shifted).otherwise(_spark_local_to_utc(wall, timezone))


# --- money ---------------------------------------------------------------------------------------

_RATE_SCALE = 1_000_000  # fx rates as integer millionths
_AMOUNT_SCALE = 10_000  # amounts as integer 1/10,000 of a unit
_TO_CENTS = _RATE_SCALE * _AMOUNT_SCALE // 100
_MAX_AMOUNT = 10**8 * _AMOUNT_SCALE


def with_polars_exprs(frame: nw.LazyFrame, columns: Mapping[str, pl.Expr]) -> nw.LazyFrame:
    """Add Polars expressions to a Polars frame: where a Polars-native form of a shared rule is
    much faster (the caller keeps the shared Narwhals form for the other engines)."""
    return nw.from_native(_native(frame).with_columns(e.alias(n) for n, e in columns.items()))


def usd_cents_polars(value: pl.Expr, money_format: str) -> pl.Expr:
    """A money text in ``money_format`` and the row's currency (``_rate``) as Int64 US cents, in
    Polars' own terms (a Decimal cast): the fast path of ``with_usd_cents`` on Polars, with the
    same contract as silver's shared ``_nw_usd_cents``."""
    text = value.str.strip_chars()
    if money_format == "currency":
        text = text.str.replace_all(r"[$,\s]", "")
    elif money_format == "decimal_comma":
        text = text.str.replace_all(r"[€£$¥\s\u00a0\u202f]", "")
        grouped = text.str.contains(r"^(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$")
        text = pl.when(grouped).then(text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
    if money_format == "cents":
        text = text.str.replace(r"^(\d*\.\d{2})\d+$", "${1}")
        amount = text.cast(pl.Decimal(38, 2), strict=False) * (_AMOUNT_SCALE // 100)
    else:
        text = text.str.replace(r"^(\d*\.\d{4})\d+$", "${1}")
        amount = text.cast(pl.Decimal(38, 4), strict=False) * _AMOUNT_SCALE
    units = amount.cast(pl.Int64, strict=False)
    parseable = text.str.contains(r"^(?:\d+(?:\.\d*)?|\.\d+)$") & (units < _MAX_AMOUNT)
    return pl.when(parseable).then((units * pl.col("_rate") + _TO_CENTS // 2) // _TO_CENTS)
