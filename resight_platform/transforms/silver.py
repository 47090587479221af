"""Silver: bronze rows -> canonical, typed, standardised, deduplicated rows, plus quarantine.

Each ``clean_<feed>`` takes a bronze frame (any number of files and providers of one feed), reads
each provider's formats from the registry, and returns a ``SilverResult``: ``valid`` rows in the
columns of the feed's Pandera model (``resight_platform.schemas.silver``) and ``quarantine`` rows,
each with the first rule it breaks in the contract's order (``QUARANTINE_RULES``). Nothing is
dropped: per ``_source_file``, rows in = rows loaded + rows quarantined (see ``reconcile``).

The rules are written once, in Narwhals, and run on the engine of the frame given: a Polars frame
gives Polars frames (cleaned in this process), a PySpark DataFrame gives lazy PySpark DataFrames
with the same columns, types and values (``docs/engines.md``, "Silver on two engines"). What the
engines cannot share is a kernel in ``resight_platform.engines.kernels``.

How values are read (``docs/data-contract.md`` is the contract; these are the details it leaves):

- Text values are trimmed; an empty or blank value is missing.
- ``unstorable_value`` (every feed, judged first): a NUL character in any text value. Postgres
  cannot store one (``COPY`` fails the whole load), so such a row stops here. In the quarantined
  row's ``raw`` a NUL is written as the six characters ``\\u0000`` (``ops.quarantine.raw`` is
  jsonb, which refuses the JSON escape of NUL), so a literal ``\\u0000`` sent by the partner
  and a NUL look the same there.
- What the registry gives first: a source's ``constants`` replace its column's value on every row,
  its ``defaults`` fill a missing or blank value; the given value is then read as if the partner
  had sent it. ``_from_registry`` on a silver row lists (comma-separated, in column order) the
  canonical columns whose value came from the registry; null when every value came from the
  partner. A quarantined row's ``raw`` keeps the values as delivered.
- Mapped values (species, category, status, channel, unit, brand, a state's spelling) are matched
  on the normalised alias (trimmed, lower case, runs of white space as one space): in the row's
  source's own value maps, then its provider's, then the global table (``sources/value_maps.py``).
  A frame of many providers builds its scoped lookups for the providers present only: one lookup
  keyed on (provider, alias) and one ``when`` chain of the patterns per scope.
- Integers (``line_no``, ``quantity``) may carry leading zeros, a ``+`` or a zero fraction
  (``"3.0"`` from a float Parquet column); anything else, or a value beyond Int32, is not an
  integer.
- Money: ``decimal`` is digits with an optional fraction; ``currency`` is the same after removing
  ``$``, thousands commas and white space; ``decimal_comma`` is digits with a decimal comma and
  optional thousands dots in groups of three (``1.234,50``), after removing ``€ £ $ ¥`` and white
  space; ``cents`` is a whole (or 2-decimal) number of cents. A
  sign makes a value unparseable (money may not be negative), and so does an amount of 100 million
  units or more. Amounts are read to 1/10,000 of a unit (1/100 of a cent); further digits are cut,
  which keeps USD rounding exact (only the digits after the cents decide a half-up rounding).
  ``usd_cents = ROUND_HALF_UP(amount x usd_per_unit)`` in integer arithmetic with the rate as an
  integer number of millionths; ``net_amount = quantity x unit_price - discount`` in cents; the
  Float64 dollar columns are cents / 100, the float nearest to the exact quotient.
- Timestamps: ``iso`` accepts ``YYYY-MM-DD[T| ]HH:MM[:SS[.fraction]]`` with an optional ``Z`` or
  ``+HH[:MM]`` offset; ``epoch_ms`` integer milliseconds (UTC); any other value is a strptime
  pattern. A time without an offset is local time in the provider's timezone: a time that falls
  twice on a DST fall-back night is taken as the earlier instant, and a time that does not exist
  (skipped on a spring-forward night) is unparseable. A date alone (no time) is not a timestamp.
- Plausibility (sales): ``before_history_start``: the business date, or ``ordered_at``, is before
  the provider's history start (``providers.csv`` ``history_start``, else the registry's history
  floor, ``RESIGHT_HISTORY_FLOOR``) at 00:00 UTC. ``quantity_over_ceiling`` and
  ``price_over_ceiling``: a quantity or a unit price in USD above the ceiling of the product's
  category (``mappings/ceilings.csv``): the category ``products`` gives the (provider, sku), else
  the ``*`` row. A catalog row's list price is judged against its own category's ceiling.
- ``future_date``: ``ordered_at`` later than ``business_date + 2 days`` at 00:00 UTC (that is,
  more than one day after the end of the business date). Rules never read the clock, so a re-run
  on another day gives the same split; the ``now`` argument does not change the result.
- Sales: ``store_id`` is kept for store lines only and ``ship_state`` for online lines only (a
  2-letter state from ``regions.csv``, upper-cased, or a scoped ``states`` alias; anything else is
  null, not a rule). The channel is the row's ``channel`` value when present, else the profile's
  ``channel`` (a default for the sales feed's channel).
- Catalog: a missing or negative list price is ``unparseable_price`` (as a sales unit price); a
  missing species is ``unknown_species``; a missing category is ``other``.
- Stores: a missing state is ``invalid_state``. Customers: state, species and signup date are
  optional (a signup date given but not readable is ``unparseable_date``).
- ``duplicate``: among rows that pass every other rule, rows with the same key (compared as
  cleaned: trimmed ids, ``line_no`` as an integer), provider and business date as an earlier row,
  in ``(_source_file, _row_number)`` order; the first is kept. ``_source_file`` is the landing key,
  so "earlier" means the file whose key sorts first, not the file that arrived first: name
  re-deliveries so they sort after the original (e.g. a time suffix).
- Output rows are in ``(_source_file, _row_number)`` order on Polars; a Spark frame has no order
  (sort it to compare).

A partition too big for memory is cleaned in consecutive chunks (in ``(_source_file,
_row_number)`` order): pass each chunk's ``SilverResult.keys`` on to the next chunk as ``seen``
(concatenated), and a row whose key an earlier chunk already loaded is a ``duplicate`` exactly as
if the partition had been cleaned at once. Chunks are for Polars: Spark cleans a range at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP
from functools import partial
from typing import Any

import narwhals as nw
import polars as pl

from resight_platform.engines import engine_of, to_polars
from resight_platform.engines import kernels as k
from resight_platform.schemas.silver import DRIFT_RULES, QUARANTINE_RULES
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import CANONICAL_COLUMNS, FEEDS, Registry
from resight_platform.sources.value_maps import ScopedEntry, ScopedLookup
from resight_platform.transforms.bronze import bronze_schema

__all__ = [
    "TYPE_DRIFT_MIN_ROWS",
    "TYPE_DRIFT_SHARE",
    "SilverResult",
    "clean_catalog",
    "clean_customers",
    "clean_feed",
    "clean_sales",
    "clean_stores",
    "empty_quarantine",
    "reconcile",
    "type_drift",
]

QUARANTINE_SCHEMA: Mapping[str, pl.DataType] = {
    "feed": pl.String(),
    "provider": pl.String(),
    "business_date": pl.Date(),
    "_source_file": pl.String(),
    "_row_number": pl.Int64(),
    "rule": pl.String(),
    "raw": pl.String(),
    "_ingested_at": pl.Datetime("us", "UTC"),
}

#: Parameters used to type the columns of an empty bronze frame (no provider to read them from).
_EMPTY_PARAMS: Mapping[str, str] = {
    "_datetime_format": "iso",
    "_timezone": "UTC",
    "_money_format": "decimal",
    "_date_format": "%Y-%m-%d",
}

_INT32_MAX = 2**31 - 1
_RATE_SCALE = 1_000_000  # fx rates as integer millionths
_AMOUNT_SCALE = 10_000  # amounts as integer 1/10,000 of a unit
_TO_CENTS = _RATE_SCALE * _AMOUNT_SCALE // 100
_MAX_AMOUNT = 10**8 * _AMOUNT_SCALE  # 100 million units: amount x rate stays within Int64
# Regexes run on Polars (Rust) and Spark (Java): ASCII digits spelled out (Rust's \d is Unicode's,
# Java's ASCII), white space as an explicit class (likewise), \z for the end (Java's $ also
# matches before a final line break).
_WS = f"[{k.WHITESPACE_CLASS}]"
_UNSIGNED_NUMBER = r"^(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)\z"
_POSITIVE_INT = r"^\+?0*([0-9]{1,10})(?:\.0*)?\z"
_ZIP = rf"^([0-9]{{1,5}})(?:(?:-|{_WS})?[0-9]{{4}})?(?:\.0*)?\z"
_NUL = "\x00"


@dataclass(frozen=True)
class SilverResult:
    """The silver rows of a bronze frame and the rows it quarantined.

    Polars frames for a Polars bronze frame; lazy PySpark DataFrames for a Spark one (nothing runs
    until the caller reads or writes them; the three share one persisted plan).
    ``keys`` holds the duplicate keys of the loaded rows (``_provider``, ``_business_date`` and the
    feed's cleaned key columns), the ``seen`` to pass when cleaning the partition's next chunk.
    """

    valid: Any
    quarantine: Any
    keys: Any = None


def empty_quarantine() -> pl.DataFrame:
    """A quarantine frame with no rows."""
    return pl.DataFrame(schema=dict(QUARANTINE_SCHEMA))


def clean_feed(
    feed: str,
    bronze: Any,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
    products: Any = None,
) -> SilverResult:
    """Clean a bronze frame of ``feed`` (dispatches to ``clean_<feed>``); ``seen`` as in the module
    docstring; ``products`` (sales only) as in :func:`clean_sales`."""
    cleaners: Mapping[str, Callable[..., SilverResult]] = {
        "sales": clean_sales,
        "catalog": clean_catalog,
        "stores": clean_stores,
        "customers": clean_customers,
    }
    if feed not in cleaners:
        raise ValueError(f"unknown feed {feed!r}; feeds are {', '.join(FEEDS)}")
    extra = {"products": products} if feed == "sales" else {}
    return cleaners[feed](bronze, registry=registry, mappings=mappings, now=now, seen=seen, **extra)


def clean_sales(
    bronze: Any,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
    products: Any = None,
) -> SilverResult:
    """Sales lines in USD and UTC; see the module docstring and the data contract.

    ``now`` is the time of the run. The contract judges ``future_date`` against the business date,
    not the clock, so the result does not depend on it and a re-run gives the same split.
    ``products`` (``provider, sku, category``: the products known so far; a Polars or Spark frame)
    gives the category whose ceilings judge a line; a line of another product has the ``*`` ceilings.
    """
    frame, params = _prepare(bronze, "sales", registry, mappings, seen)
    scoped = _scoped(registry, "sales", params)
    frame = _per_group(
        frame,
        params,
        [
            (
                ("_datetime_format", "_timezone"),
                lambda rows, fmt, tz: k.with_timestamps(rows, {"__ordered_at": "ordered_at"}, fmt, tz),
            ),
            (
                ("_money_format",),
                lambda rows, money: _with_usd_cents(
                    rows, {"__unit_cents": "unit_price", "__discount_cents": "discount"}, money
                ),
            ),
        ],
    )
    frame = _with_positive_ints(frame, {"__line_no": "line_no", "__quantity": "quantity"})
    frame = frame.with_columns(
        __order_id=_text("order_id"),
        __sku=_text("sku"),
        __discount_given=~_text("discount").is_null(),
    )
    frame = _with_lookup(frame, "__status", nw.col("status"), mappings.status, scoped("status"))
    frame = _with_lookup(frame, "__channel", nw.col("channel"), mappings.channels, scoped("channels"))
    frame = _with_state(frame, "__ship_state", nw.col("ship_state"), mappings, scoped("states"))
    frame = _with_category(frame, products)
    frame = _with_ceilings(frame, mappings, "__category")
    business_day_end = nw.col("_business_date").cast(nw.Datetime("us", "UTC")).dt.offset_by("2d")
    history_start = nw.col("_history_start").cast(nw.Datetime("us", "UTC"))
    rules = {
        "unstorable_value": _unstorable("sales"),
        "missing_order_id": nw.col("__order_id").is_null(),
        "missing_sku": nw.col("__sku").is_null(),
        "bad_line_no": nw.col("__line_no").is_null(),
        "unparseable_date": nw.col("__ordered_at").is_null(),
        "future_date": nw.col("__ordered_at") > business_day_end,
        "bad_quantity": nw.col("__quantity").is_null(),
        "unparseable_price": nw.col("__unit_cents").is_null()
        | (nw.col("__discount_given") & nw.col("__discount_cents").is_null()),
        "unknown_status": nw.col("__status").is_null(),
        "unknown_channel": nw.col("__channel").is_null(),
        "before_history_start": (nw.col("_business_date") < nw.col("_history_start"))
        | (nw.col("__ordered_at") < history_start),
        "quantity_over_ceiling": nw.col("__quantity") > nw.col("__max_quantity"),
        "price_over_ceiling": nw.col("__unit_cents") > nw.col("__max_unit_cents"),
    }
    frame = frame.with_columns(__discount_or_0=nw.col("__discount_cents").fill_null(0))
    frame = k.with_net_cents(frame, "__net_cents", "__quantity", "__unit_cents", "__discount_cents")
    frame = k.with_dollars(
        frame,
        {"__unit_dollars": "__unit_cents", "__discount_dollars": "__discount_or_0", "__net_dollars": "__net_cents"},
    )
    store, online = nw.col("__channel") == "store", nw.col("__channel") == "online"
    valid = {
        "order_id": nw.col("__order_id"),
        "line_no": nw.col("__line_no").cast(nw.Int32),
        "ordered_at": nw.col("__ordered_at"),
        "business_date": nw.col("_business_date"),
        "provider": nw.col("_provider"),
        "store_id": nw.when(store).then(_text("store_id")),
        "channel": nw.col("__channel"),
        "sku": nw.col("__sku"),
        "quantity": nw.col("__quantity").cast(nw.Int32),
        "unit_price": nw.col("__unit_dollars"),
        "discount": nw.col("__discount_dollars"),
        "net_amount": nw.col("__net_dollars"),
        "customer_id": _text("customer_id"),
        "status": nw.col("__status"),
        "ship_state": nw.when(online).then(nw.col("__ship_state")),
    }
    return _split(frame, "sales", rules, ("__order_id", "__line_no"), valid, seen)


def clean_catalog(
    bronze: Any,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Products with conformed brand, manufacturer, category, species and unit; price in USD.

    ``now`` is the time of the run; no catalog rule depends on it.
    """
    frame, params = _prepare(bronze, "catalog", registry, mappings, seen)
    scoped = _scoped(registry, "catalog", params)
    brands = {alias: brand for alias, (brand, _) in mappings.brands.items()}
    makers = {alias: maker for alias, (_, maker) in mappings.brands.items()}
    frame = _per_group(
        frame,
        params,
        [(("_money_format",), lambda rows, money: _with_usd_cents(rows, {"__price_cents": "list_price"}, money))],
    )
    frame = frame.with_columns(
        __sku=_text("sku"),
        __name=_text("product_name"),
        __pack_given=~_text("pack_size").is_null(),
        __pack_size=_positive_number(nw.col("pack_size")),
        __unit_given=~_text("pack_unit").is_null(),
    )
    frame = _with_lookup(frame, "__species", nw.col("species"), mappings.species, scoped("species"))
    frame = _with_lookup(frame, "__unit", nw.col("pack_unit"), mappings.units, scoped("units"))
    frame = _with_lookup(frame, "__category_given", nw.col("category"), mappings.categories, scoped("categories"))
    frame = _with_lookup(frame, "__brand", nw.col("brand"), brands, scoped("brands"))
    frame = _with_lookup(frame, "__maker", nw.col("brand"), makers, scoped("brands"), lambda entry: entry.extra)
    frame = frame.with_columns(__category=nw.coalesce(nw.col("__category_given"), nw.lit("other")))
    frame = _with_ceilings(frame, mappings, "__category")
    frame = k.with_dollars(frame, {"__price_dollars": "__price_cents"})
    rules = {
        "unstorable_value": _unstorable("catalog"),
        "missing_sku": nw.col("__sku").is_null(),
        "missing_product_name": nw.col("__name").is_null(),
        "unparseable_price": nw.col("__price_cents").is_null(),
        "unknown_species": nw.col("__species").is_null(),
        "bad_pack_size": nw.col("__pack_given") & nw.col("__pack_size").is_null(),
        "unknown_unit": nw.col("__unit_given") & nw.col("__unit").is_null(),
        "price_over_ceiling": nw.col("__price_cents") > nw.col("__max_unit_cents"),
    }
    valid = {
        "sku": nw.col("__sku"),
        "upc": _text("upc"),
        "product_name": nw.col("__name"),
        "brand": nw.coalesce(nw.col("__brand"), _text("brand").str.replace_all(f"{_WS}+", " ")),
        "manufacturer": nw.col("__maker"),
        "category": nw.col("__category"),
        "species": nw.col("__species"),
        "pack_size": nw.col("__pack_size"),
        "pack_unit": nw.col("__unit"),
        "list_price": nw.col("__price_dollars"),
        "provider": nw.col("_provider"),
        "business_date": nw.col("_business_date"),
    }
    return _split(frame, "catalog", rules, ("__sku",), valid, seen)


def clean_stores(
    bronze: Any,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Locations with a 2-letter state, its Census region and a 5-digit zip.

    ``now`` is the time of the run; no stores rule depends on it.
    """
    frame, params = _prepare(bronze, "stores", registry, mappings, seen)
    scoped = _scoped(registry, "stores", params)
    frame = frame.with_columns(__store_id=_text("store_id"))
    frame = _with_state(frame, "__state", nw.col("state"), mappings, scoped("states"))
    frame = k.with_mapped(
        frame,
        "__region",
        ["__state"],
        pl.DataFrame(
            {"__state": list(mappings.regions), "__region": list(mappings.regions.values())},
            schema={"__state": pl.String, "__region": pl.String},
        ),
    )
    rules = {
        "unstorable_value": _unstorable("stores"),
        "missing_store_id": nw.col("__store_id").is_null(),
        "invalid_state": nw.col("__state").is_null(),
    }
    valid = {
        "store_id": nw.col("__store_id"),
        "provider": nw.col("_provider"),
        "store_name": _text("store_name"),
        "city": _text("city"),
        "state": nw.col("__state"),
        "zip": _zip(nw.col("zip")),
        "region": nw.col("__region"),
        "business_date": nw.col("_business_date"),
    }
    return _split(frame, "stores", rules, ("__store_id",), valid, seen)


def clean_customers(
    bronze: Any,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Loyalty customers with an optional signup date, state and pet species.

    ``now`` is the time of the run; no customers rule depends on it.
    """
    frame, params = _prepare(bronze, "customers", registry, mappings, seen)
    scoped = _scoped(registry, "customers", params)
    frame = _per_group(
        frame,
        params,
        [(("_date_format",), lambda rows, fmt: k.with_dates(rows, {"__signup_date": "signup_date"}, fmt))],
    )
    frame = frame.with_columns(
        __customer_id=_text("customer_id"),
        __signup_given=~_text("signup_date").is_null(),
        __state_given=~_text("state").is_null(),
        __species_given=~_text("pet_species").is_null(),
    )
    frame = _with_state(frame, "__state", nw.col("state"), mappings, scoped("states"))
    frame = _with_lookup(frame, "__species", nw.col("pet_species"), mappings.species, scoped("species"))
    rules = {
        "unstorable_value": _unstorable("customers"),
        "missing_customer_id": nw.col("__customer_id").is_null(),
        "unparseable_date": nw.col("__signup_given") & nw.col("__signup_date").is_null(),
        "invalid_state": nw.col("__state_given") & nw.col("__state").is_null(),
        "unknown_species": nw.col("__species_given") & nw.col("__species").is_null(),
    }
    valid = {
        "customer_id": nw.col("__customer_id"),
        "provider": nw.col("_provider"),
        "signup_date": nw.col("__signup_date"),
        "state": nw.col("__state"),
        "pet_species": nw.col("__species"),
        "business_date": nw.col("_business_date"),
    }
    return _split(frame, "customers", rules, ("__customer_id",), valid, seen)


def reconcile(bronze: Any, result: SilverResult) -> pl.DataFrame:
    """Per ``_source_file``: ``rows_in`` (bronze), ``rows_loaded`` (valid), ``rows_quarantined``.

    ``rows_in == rows_loaded + rows_quarantined`` holds for every file of a correct result; a file
    seen in only one of the frames is listed too, with zeros elsewhere, so a mismatch is visible.
    Any engine's frames; the per-file counts are collected to Polars.
    """
    counts = [
        _count_by(frame, ["_source_file"], name)
        for frame, name in (
            (bronze, "rows_in"),
            (result.valid, "rows_loaded"),
            (result.quarantine, "rows_quarantined"),
        )
    ]
    joined = counts[0]
    for other in counts[1:]:
        joined = joined.join(other, on="_source_file", how="full", coalesce=True)
    return joined.select("_source_file", pl.col("rows_in", "rows_loaded", "rows_quarantined").fill_null(0)).sort(
        "_source_file"
    )


def _count_by(frame: Any, by: Sequence[str], name: str) -> pl.DataFrame:
    """Rows per ``by`` value of any engine's frame, as a (small) Polars frame."""
    if isinstance(frame, pl.DataFrame):
        return frame.group_by(*by).agg(pl.len().cast(pl.Int64).alias(name))
    counted = nw.from_native(frame).lazy().group_by(*by).agg(nw.len().alias(name))
    return to_polars(counted).with_columns(pl.col(name).cast(pl.Int64))


# --- building blocks -----------------------------------------------------------------------


def _prepare(
    bronze: Any, feed: str, registry: Registry, mappings: Mappings, seen: pl.DataFrame | None
) -> tuple[nw.LazyFrame, pl.DataFrame]:
    """Check the bronze columns, attach per-provider formats (rows in record order on Polars) and
    apply what the registry gives (constants, defaults; the delivered value is kept as
    ``__raw_<column>``, and ``__from_registry`` lists the columns given).

    Returns the (lazy) rows and the per-provider parameter frame. The cleaning runs lazily and is
    materialised once in ``_split``, so shared sub-expressions are computed once.
    """
    missing = [c for c in bronze_schema(feed) if c not in bronze.columns]
    if missing:
        raise ValueError(f"bronze {feed} frame lacks columns {missing}")
    spark = engine_of(bronze) == "spark"
    if spark and seen is not None:
        raise ValueError(
            "seen (cleaning a partition in chunks) is for Polars frames; on Spark clean the whole range at once"
        )
    params = _source_params(bronze, feed, registry, mappings)
    rows = nw.from_native(bronze).lazy().select(list(bronze_schema(feed)))
    frame = k.in_record_order(rows, params, "_provider")
    given = [c for c in CANONICAL_COLUMNS[feed] if f"__constant_{c}" in params.columns]
    if not given:
        return frame.with_columns(nw.lit(None, nw.String).alias("__from_registry")), params
    constant = {c: nw.col(f"__constant_{c}") for c in given}
    default = {c: nw.col(f"__default_{c}") for c in given}
    from_registry = {c: ~constant[c].is_null() | (_text(c).is_null() & ~default[c].is_null()) for c in given}
    listed = nw.concat_str(
        [nw.when(flag).then(nw.lit(c)) for c, flag in from_registry.items()], separator=",", ignore_nulls=True
    )
    frame = frame.with_columns(
        *(nw.col(c).alias(f"__raw_{c}") for c in given),
        *(
            nw.when(~constant[c].is_null())
            .then(constant[c])
            .when(_text(c).is_null() & ~default[c].is_null())
            .then(default[c])
            .otherwise(nw.col(c))
            .alias(c)
            for c in given
        ),
        nw.when(listed.str.len_chars() > 0).then(listed).alias("__from_registry"),
    )
    return frame, params


def _source_params(bronze: Any, feed: str, registry: Registry, mappings: Mappings) -> pl.DataFrame:
    """One row per provider in ``bronze``: its formats, timezone, fx rate and history start, and, for each column
    that a source of the frame is given, ``__constant_<column>`` and ``__default_<column>``."""
    if isinstance(bronze, pl.DataFrame):
        providers = bronze.get_column("_provider").unique().sort().to_list()
    else:
        distinct = nw.from_native(bronze).lazy().select("_provider").unique()
        providers = to_polars(distinct).get_column("_provider").sort().to_list()
    rows = []
    sources = []
    for provider in providers:
        source = registry.source(provider, feed) if provider is not None else None
        if source is None:
            raise ValueError(f"{provider}/{feed} is not a registered source; cannot clean its rows")
        rate = mappings.usd_per_unit.get(source.currency)
        if rate is None:
            raise ValueError(f"no USD rate for {source.currency} (provider {provider}) in fx_rates.csv")
        sources.append(source)
        rows.append(
            {
                "_provider": provider,
                "_timezone": source.timezone,
                "_datetime_format": source.profile.datetime_format,
                "_date_format": source.profile.date_format,
                "_money_format": source.profile.money_format,
                "_rate": int((rate * _RATE_SCALE).to_integral_value(rounding=ROUND_HALF_UP)),
                "_history_start": source.history_start,
            }
        )
    given = [c for c in CANONICAL_COLUMNS[feed] if any(c in s.constants or c in s.defaults for s in sources)]
    for row, source in zip(rows, sources, strict=True):
        for column in given:
            row[f"__constant_{column}"] = source.constants.get(column)
            row[f"__default_{column}"] = source.defaults.get(column)
    schema: dict[str, type[pl.DataType]] = {
        "_provider": pl.String,
        "_timezone": pl.String,
        "_datetime_format": pl.String,
        "_date_format": pl.String,
        "_money_format": pl.String,
        "_rate": pl.Int64,
        "_history_start": pl.Date,
    }
    for column in given:
        schema[f"__constant_{column}"] = pl.String
        schema[f"__default_{column}"] = pl.String
    return pl.DataFrame(rows, schema=schema) if rows else pl.DataFrame(schema=schema)


def _scoped(registry: Registry, feed: str, params: pl.DataFrame) -> Callable[[str], ScopedLookup]:
    """The scoped value maps of the frame's providers (``params``), by map name."""
    providers = params.get_column("_provider").to_list()
    return lambda name: registry.value_maps.lookup(name, feed, providers)


def _per_group(
    frame: nw.LazyFrame, params: pl.DataFrame, builds: Sequence[tuple[Sequence[str], Callable[..., nw.LazyFrame]]]
) -> nw.LazyFrame:
    """``build(rows, *key values)`` for each group of its ``keys`` among the frame's providers
    (``engines.kernels.per_group``): for what needs a literal per provider (a strptime pattern, a
    time zone, a money format)."""
    if params.is_empty():
        params = pl.DataFrame({key: [value] for key, value in _EMPTY_PARAMS.items()})
    return k.per_group(frame, params, builds)


def _split(
    frame: nw.LazyFrame,
    feed: str,
    rules: Mapping[str, nw.Expr],
    key: Sequence[str],
    valid: Mapping[str, nw.Expr],
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Label each row with its first broken rule (then duplicates) and split valid / quarantine.

    A passing row is a duplicate if an earlier row of the frame, or a row of ``seen`` (keys an
    earlier chunk loaded), has its key."""
    order = QUARANTINE_RULES[feed]
    if (*rules, "duplicate") != order:
        raise AssertionError(f"{feed} rules {list(rules)} do not follow the contract's order {list(order)}")
    first_broken = nw.coalesce(*(nw.when(broken).then(nw.lit(rule)) for rule, broken in rules.items()))
    frame = frame.with_columns(first_broken.alias("__rule"))
    frame = frame.with_columns(nw.col("__rule").is_null().alias("__passing"))
    key_columns = ["_provider", "_business_date", *key]
    frame = k.first_by_key(frame, [*key_columns, "__passing"], "__first")
    earlier = ~nw.col("__first")
    if seen is not None and seen.height:
        native = nw.to_native(frame)
        # Only the seen keys this chunk also holds: the hash table is built on the chunk's keys
        # (bounded by the chunk) rather than on every key the partition loaded so far.
        hits = seen.lazy().select(key_columns).join(native.select(key_columns), on=key_columns, how="semi")
        marks = hits.unique().with_columns(pl.lit(True).alias("__seen"))
        frame = nw.from_native(native.join(marks, on=key_columns, how="left", maintain_order="left"))
        earlier = earlier | nw.col("__seen").fill_null(False)
    frame = frame.with_columns(
        nw.when(nw.col("__passing") & earlier).then(nw.lit("duplicate")).otherwise(nw.col("__rule")).alias("__rule")
    )
    # One pass over the plan, then cheap filters on its result (``materialised``).
    raw_columns = list(CANONICAL_COLUMNS[feed])
    names = set(frame.collect_schema().names())
    labelled = k.materialised(
        frame.select(
            *(expr.alias(f"__out_{name}") for name, expr in valid.items()),
            *(c for c in key_columns if c not in ("_provider", "_business_date")),
            *(nw.col(f"__raw_{c}").alias(c) if f"__raw_{c}" in names else nw.col(c) for c in raw_columns),
            "_provider",
            "_business_date",
            "_source_file",
            "_row_number",
            "_ingested_at",
            "__from_registry",
            "__rule",
        )
    )
    loaded = labelled.filter(nw.col("__rule").is_null())
    valid_rows = loaded.select(
        *(nw.col(f"__out_{name}").alias(name) for name in valid),
        "_source_file",
        "_row_number",
        nw.col("__from_registry").alias("_from_registry"),
    )
    loaded_keys = loaded.select(key_columns)
    quarantined = k.with_raw_json(labelled.filter(~nw.col("__rule").is_null()), "__raw", raw_columns).select(
        nw.lit(feed).alias("feed"),
        nw.col("_provider").alias("provider"),
        nw.col("_business_date").alias("business_date"),
        "_source_file",
        "_row_number",
        nw.col("__rule").alias("rule"),
        nw.col("__raw").alias("raw"),
        "_ingested_at",
    )
    if engine_of(frame) == "polars":
        return SilverResult(valid=to_polars(valid_rows), quarantine=to_polars(quarantined), keys=to_polars(loaded_keys))
    return SilverResult(
        valid=nw.to_native(valid_rows), quarantine=nw.to_native(quarantined), keys=nw.to_native(loaded_keys)
    )


def _unstorable(feed: str) -> nw.Expr:
    """A NUL character in any of the feed's text values (as silver reads them)."""
    return nw.any_horizontal(
        *(nw.col(c).str.contains(_NUL, literal=True).fill_null(False) for c in CANONICAL_COLUMNS[feed]),
        ignore_nulls=False,
    )


def _with_category(frame: nw.LazyFrame, products: Any) -> nw.LazyFrame:
    """``__category``: the category ``products`` (a Polars or Spark frame, collected: the products
    known so far are a dimension's size) gives the row's (provider, cleaned sku); null when it has
    none."""
    if products is not None and not isinstance(products, pl.DataFrame):
        products = to_polars(products)
    if products is None or products.is_empty():
        return frame.with_columns(nw.lit(None, nw.String).alias("__category"))
    known = products.select(
        pl.col("provider").cast(pl.String).alias("_provider"),
        pl.col("sku").cast(pl.String).str.strip_chars().alias("__sku"),
        pl.col("category").cast(pl.String).alias("__category"),
    ).unique(["_provider", "__sku"], keep="first", maintain_order=True)
    known = known.filter(pl.col("_provider").is_not_null() & pl.col("__sku").is_not_null())
    return k.with_mapped(frame, "__category", ["_provider", "__sku"], known)


def _with_ceilings(frame: nw.LazyFrame, mappings: Mappings, category: str) -> nw.LazyFrame:
    """``__max_quantity`` and ``__max_unit_cents``: the ceilings of the row's ``category``
    (``Mappings.ceiling``: its row, else ``*``'s, else the default)."""
    fallback = mappings.ceiling(None)
    names = list(mappings.ceilings)
    for name, limit in (
        ("__max_quantity", lambda c: c.max_quantity),
        ("__max_unit_cents", lambda c: c.max_unit_cents),
    ):
        table = pl.DataFrame(
            {category: names, name: [limit(mappings.ceilings[n]) for n in names]},
            schema={category: pl.String, name: pl.Int64},
        )
        frame = k.with_mapped(frame, name, [category], table)
        frame = frame.with_columns(nw.col(name).fill_null(limit(fallback)))
    return frame


def _strip(value: nw.Expr) -> nw.Expr:
    """Leading and trailing white space removed (Unicode's, on every engine)."""
    return value.str.strip_chars(k.WHITESPACE)


def _text(name: str) -> nw.Expr:
    """A bronze column trimmed; empty or blank is null."""
    value = _strip(nw.col(name))
    return nw.when(value.str.len_chars() > 0).then(value)


def _alias(value: nw.Expr) -> nw.Expr:
    """The form mapping aliases are matched in (``normalise_alias``)."""
    return _strip(value).str.to_lowercase().str.replace_all(f"{_WS}+", " ")


def _with_lookup(
    frame: nw.LazyFrame,
    name: str,
    value: nw.Expr,
    table: Mapping[str, str | None],
    scoped: ScopedLookup | None = None,
    pick: Callable[[ScopedEntry], str | None] = lambda entry: entry.value,
) -> nw.LazyFrame:
    """Add ``name``: the canonical value of ``value`` in the row's scoped value maps (``pick`` of
    the entry), else in the global ``table`` (keys normalised); null if in neither."""
    alias = f"{name}__alias"
    frame = frame.with_columns(_alias(value).alias(alias))
    found = f"{name}__global"
    frame = k.with_mapped(frame, found, [alias], _table([alias], found, {(a,): v for a, v in table.items()}))
    if scoped is None or scoped.empty:
        return frame.with_columns(nw.col(found).alias(name))
    frame, parts = _scoped_values(frame, name, alias, scoped, pick)
    return frame.with_columns(nw.coalesce(*parts, nw.col(found)).alias(name))


def _table(keys: Sequence[str], name: str, entries: Mapping[tuple[str, ...], str | None]) -> pl.DataFrame:
    """A value map as a frame: the key columns and ``name``."""
    columns: dict[str, list[str | None]] = {key: [entry[i] for entry in entries] for i, key in enumerate(keys)}
    columns[name] = list(entries.values())
    return pl.DataFrame(columns, schema={c: pl.String for c in columns})


def _scoped_values(
    frame: nw.LazyFrame, name: str, alias: str, scoped: ScopedLookup, pick: Callable[[ScopedEntry], str | None]
) -> tuple[nw.LazyFrame, list[nw.Expr]]:
    """One column per scope level and kind, most specific first: the exact aliases looked up by
    (provider, alias) (``with_mapped``), the patterns as a ``when`` chain."""
    provider = nw.col("_provider")
    out: list[nw.Expr] = []
    for level, (exact, patterns) in enumerate(zip(scoped.exact, scoped.patterns, strict=True)):
        if exact:
            column = f"{name}__scope{level}"
            entries: dict[tuple[str, ...], str | None] = {(p, a): pick(entry) for (p, a), entry in exact.items()}
            frame = k.with_mapped(frame, column, ["_provider", alias], _table(["_provider", alias], column, entries))
            out.append(nw.col(column))
        if patterns:
            chain: Any = nw
            for p, regex, entry in patterns:
                matched = (provider == p) & nw.col(alias).str.contains(regex)
                chain = chain.when(matched).then(nw.lit(pick(entry), nw.String))
            out.append(chain.otherwise(nw.lit(None, nw.String)))
    return frame, out


def _with_state(
    frame: nw.LazyFrame, name: str, value: nw.Expr, mappings: Mappings, scoped: ScopedLookup | None = None
) -> nw.LazyFrame:
    """Add ``name``: a US state (or DC) as its upper-case 2-letter code, or the code a scoped
    ``states`` alias gives; null if not one in ``regions.csv``."""
    code = _strip(value).str.to_uppercase()
    if scoped is not None and not scoped.empty:
        alias = f"{name}__alias"
        frame = frame.with_columns(_alias(value).alias(alias))
        frame, parts = _scoped_values(frame, name, alias, scoped, lambda entry: entry.value)
        code = nw.coalesce(*parts, code)
    return frame.with_columns(nw.when(code.is_in(list(mappings.regions))).then(code).alias(name))


def _zip(value: nw.Expr) -> nw.Expr:
    """A 5-digit zip: ZIP+4 cut to 5 digits, lost leading zeros restored; otherwise null."""
    text = _strip(value)
    return nw.when(text.str.contains(_ZIP)).then(text.str.replace_all(_ZIP, "$1").str.zfill(5))


def _guarded_cast(text: nw.Expr, ok: nw.Expr, dtype: Any) -> nw.Expr:
    """``text`` cast to ``dtype`` where ``ok`` (the text passed a regex that makes the cast safe),
    null elsewhere. The cast only ever sees checked text or ``"0"``: Narwhals' casts are strict,
    Spark's ANSI casts raise, and Polars evaluates both branches of a ``when``."""
    return nw.when(ok).then(nw.when(ok).then(text).otherwise(nw.lit("0")).cast(dtype))


def _with_positive_ints(frame: nw.LazyFrame, columns: Mapping[str, str]) -> nw.LazyFrame:
    """Add ``{name: text column}`` as positive integers within Int32 (``_positive_int``).

    On Polars through a plain cast first, the regex only for the rest (padding, a zero fraction):
    most values are plain digits, and the shared form's string steps on every value cost a
    1M-line sales frame about 0.3 s."""
    if engine_of(frame) == "polars":
        return k.with_polars_exprs(frame, {n: _positive_int_polars(pl.col(c)) for n, c in columns.items()})
    return frame.with_columns(_positive_int(nw.col(c)).alias(n) for n, c in columns.items())


def _positive_int_polars(value: pl.Expr) -> pl.Expr:
    plain = value.cast(pl.Int64, strict=False)
    rest = pl.when(plain.is_null()).then(value)
    stripped = rest.str.strip_chars().str.extract(r"^\+?0*(\d{1,10})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
    number = pl.coalesce(plain, stripped)
    return pl.when((number > 0) & (number <= _INT32_MAX)).then(number)


def _positive_int(value: nw.Expr) -> nw.Expr:
    """A positive integer within Int32 as Int64; null if the text is anything else (the other
    engines' form: Polars has ``_positive_int_polars``). The digits without sign, zero fraction and
    leading zeros come from the checking regex's group: one regex pass (a chain of literal steps
    cost Spark about 45 microseconds of CPU a value: 10 s more per 200k sales lines, now 1.2 s)."""
    text = _strip(value)
    ok = text.str.contains(_POSITIVE_INT).fill_null(False)
    number = _guarded_cast(text.str.replace_all(_POSITIVE_INT, "$1"), ok, nw.Int64)
    return nw.when((number > 0) & (number <= _INT32_MAX)).then(number)


def _positive_number(value: nw.Expr) -> nw.Expr:
    """A positive decimal number as Float64; null if the text is anything else."""
    text = _strip(value)
    number = _guarded_cast(text, text.str.contains(_UNSIGNED_NUMBER).fill_null(False), nw.Float64)
    return nw.when(number > 0).then(number)


def _with_usd_cents(frame: nw.LazyFrame, columns: Mapping[str, str], money_format: str | k.ByRow) -> nw.LazyFrame:
    """Add ``{name: money text column}`` as Int64 US cents in ``money_format`` and the row's
    currency (``_rate``); null when the text is missing, unparseable, negative or too large (see the
    module docstring).

    String operations and Int64 arithmetic only, exact on every engine: the whole part and the
    first 4 fraction digits (2 for ``cents``) become an integer count of 1/10,000 units; digits
    beyond are cut, not rounded (rounding there and again to cents could round twice: 12.34499 ->
    12.3450 -> 12.35, where ROUND_HALF_UP(12.34499, 2) is 12.34). Built in steps (the text, then its
    parts, then the amount) so that each step's expression is built and planned once, not once per
    use (on Spark every copy is a JVM round trip and a bigger plan). On Spark ``money_format`` may
    be a :class:`~resight_platform.engines.kernels.ByRow`: what depends on the format is picked by
    the row's ``_money_format`` (``kernels.by_row``).
    """
    if engine_of(frame) == "polars":
        # Polars' Decimal reading is twice as fast as the string form (0.40 against 0.75 s at 1M
        # values, docs/design/spark-spike.md) and gives the same cents (test_silver_parity.py).
        assert isinstance(money_format, str), "Polars reads a money format as a literal"
        return k.with_polars_exprs(frame, {n: k.usd_cents_polars(pl.col(c), money_format) for n, c in columns.items()})

    def digits(fmt: str) -> int:  # fraction digits read: cents to the cent, amounts to 1/10,000
        return 2 if fmt == "cents" else 4

    texts = {n: f"{n}__text" for n in columns}
    frame = frame.with_columns(
        k.by_row(money_format, partial(_money_text, nw.col(c))).alias(texts[n]) for n, c in columns.items()
    )
    parts = []
    for name, text_name in texts.items():
        text = nw.col(text_name)
        whole = text.str.replace_all(r"\.[0-9]*\z", "").str.replace_all(r"^0+", "")
        fraction = nw.concat_str([text.str.replace_all(r"^[0-9]*\.?", ""), nw.lit("0000")])
        max_whole = k.by_row(money_format, lambda fmt: nw.lit(10 if fmt == "cents" else 8))
        ok = text.str.contains(_UNSIGNED_NUMBER).fill_null(False) & (whole.str.len_chars() <= max_whole)
        parts += [
            ok.alias(f"{name}__ok"),
            nw.concat_str([nw.lit("0"), whole]).alias(f"{name}__whole"),
            k.by_row(money_format, partial(_first_digits, fraction, digits)).alias(f"{name}__fraction"),
        ]
    frame = frame.with_columns(parts)
    whole_scale = k.by_row(money_format, lambda fmt: nw.lit(10 ** digits(fmt), nw.Int64))
    amounts = []
    for name in columns:
        ok = nw.col(f"{name}__ok")
        units = _guarded_cast(nw.col(f"{name}__whole"), ok, nw.Int64) * whole_scale + _guarded_cast(
            nw.col(f"{name}__fraction"), ok, nw.Int64
        )
        amounts.append(nw.when(ok).then((units * nw.col("_rate") + _TO_CENTS // 2) // _TO_CENTS).alias(name))
    return frame.with_columns(amounts)


def _first_digits(fraction: nw.Expr, digits: Callable[[str], int], money_format: str) -> nw.Expr:
    return fraction.str.slice(0, digits(money_format))


def _money_text(value: nw.Expr, money_format: str) -> nw.Expr:
    """A money text as plain digits with an optional decimal point (``money_format``'s symbols,
    separators and decimal comma handled); anything else is left for the number check to refuse."""
    text = _strip(value)
    if money_format == "currency":
        return text.str.replace_all(f"[$,{k.WHITESPACE_CLASS}]", "")
    if money_format == "decimal_comma":
        # "1.234,50 €" -> "1234.50": a dot groups thousands only in threes, so "12.99" (a decimal
        # point in a decimal-comma feed) is unparseable, never read as 1299.
        text = text.str.replace_all(f"[€£$¥{k.WHITESPACE_CLASS}]", "")
        grouped = text.str.contains(r"^(?:[0-9]{1,3}(?:\.[0-9]{3})+|[0-9]+)(?:,[0-9]+)?\z")
        return nw.when(grouped).then(
            text.str.replace_all(".", "", literal=True).str.replace_all(",", ".", literal=True)
        )
    return text


def _usd_cents(value: pl.Expr, money_format: str) -> pl.Expr:
    """Polars' own reading of a money text as US cents (``_with_usd_cents``'s contract) through a
    Decimal cast: kept as the reference the shared form is tested against."""
    return k.usd_cents_polars(value, money_format)


def _dollars(cents: pl.Expr) -> pl.Expr:
    """Cents as the Float64 nearest to cents / 100 on Polars (``engines.kernels.with_dollars``)."""
    return (cents.cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64)


#: A file whose rows break one type rule this often (and at least ``TYPE_DRIFT_MIN_ROWS`` times)
#: most likely had the column's type or format changed by the partner.
TYPE_DRIFT_SHARE = 0.5
TYPE_DRIFT_MIN_ROWS = 10


def type_drift(feed: str, quarantine: Any, counts: pl.DataFrame) -> pl.DataFrame:
    """Per file, the columns most of whose values could not be read as their type or broke a
    plausibility rule (``DRIFT_RULES``): ``_source_file, column, rule, rows, rows_in`` (``counts``
    is :func:`reconcile`'s per-file frame). ``quarantine`` of any engine; its per-file counts are
    collected to Polars."""
    rules = DRIFT_RULES[feed]
    schema = {"_source_file": pl.String, "column": pl.String, "rule": pl.String, "rows": pl.Int64, "rows_in": pl.Int64}
    if not rules:
        return pl.DataFrame(schema=schema)
    if not isinstance(quarantine, pl.DataFrame):
        quarantine = nw.from_native(quarantine).lazy().filter(nw.col("rule").is_in(list(rules)))
        per_rule = _count_by(nw.to_native(quarantine), ["_source_file", "rule"], "rows")
    elif quarantine.is_empty():
        return pl.DataFrame(schema=schema)
    else:
        per_rule = (
            quarantine.filter(pl.col("rule").is_in(list(rules)))
            .group_by("_source_file", "rule")
            .agg(pl.len().cast(pl.Int64).alias("rows"))
        )
    broken = (
        per_rule.join(counts.select("_source_file", pl.col("rows_in").cast(pl.Int64)), on="_source_file")
        .filter((pl.col("rows") >= TYPE_DRIFT_MIN_ROWS) & (pl.col("rows") >= pl.col("rows_in") * TYPE_DRIFT_SHARE))
        .with_columns(column=pl.col("rule").replace_strict(dict(rules), return_dtype=pl.String))
    )
    return broken.select(list(schema)).cast(schema).sort("_source_file", "column")  # type: ignore[arg-type]
