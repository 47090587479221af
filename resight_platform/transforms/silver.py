"""Silver: bronze rows -> canonical, typed, standardised, deduplicated rows, plus quarantine.

Each ``clean_<feed>`` takes a bronze frame (any number of files and providers of one feed), reads
each provider's formats from the registry, and returns a ``SilverResult``: ``valid`` rows in the
columns of the feed's Pandera model (``resight_platform.schemas.silver``) and ``quarantine`` rows,
each with the first rule it breaks in the contract's order (``QUARANTINE_RULES``). Nothing is
dropped: per ``_source_file``, rows in = rows loaded + rows quarantined (see ``reconcile``).

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
  A frame of many providers builds its scoped lookups for the providers present only: one keyed
  ``replace_strict`` on (provider, alias) and one ``when`` chain of the patterns per scope.
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
- Output rows are in ``(_source_file, _row_number)`` order.

A partition too big for memory is cleaned in consecutive chunks (in ``(_source_file,
_row_number)`` order): pass each chunk's ``SilverResult.keys`` on to the next chunk as ``seen``
(concatenated), and a row whose key an earlier chunk already loaded is a ``duplicate`` exactly as
if the partition had been cleaned at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP
from typing import Any

import polars as pl

from resight_platform.schemas.silver import DRIFT_RULES, QUARANTINE_RULES
from resight_platform.sources.mappings import Mappings
from resight_platform.sources.registry import CANONICAL_COLUMNS, FEEDS, TIMEZONE_DIRECTIVES, Registry
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
_UNSIGNED_NUMBER = r"^(?:\d+(?:\.\d*)?|\.\d+)$"
_POSITIVE_INT = r"^\+?0*(\d{1,10})(?:\.0*)?$"
_ZIP = r"^(\d{1,5})(?:[-\s]?\d{4})?(?:\.0*)?$"
_NUL = "\x00"
#: How a NUL is written in a quarantined row's ``raw``: visibly, and storable in jsonb.
_NUL_SHOWN = "\\u0000"


@dataclass(frozen=True)
class SilverResult:
    """The silver rows of a bronze frame and the rows it quarantined.

    ``keys`` holds the duplicate keys of the loaded rows (``_provider``, ``_business_date`` and the
    feed's cleaned key columns), the ``seen`` to pass when cleaning the partition's next chunk.
    """

    valid: pl.DataFrame
    quarantine: pl.DataFrame
    keys: pl.DataFrame | None = None


def empty_quarantine() -> pl.DataFrame:
    """A quarantine frame with no rows."""
    return pl.DataFrame(schema=dict(QUARANTINE_SCHEMA))


def clean_feed(
    feed: str,
    bronze: pl.DataFrame,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
    products: pl.DataFrame | None = None,
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
    bronze: pl.DataFrame,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
    products: pl.DataFrame | None = None,
) -> SilverResult:
    """Sales lines in USD and UTC; see the module docstring and the data contract.

    ``now`` is the time of the run. The contract judges ``future_date`` against the business date,
    not the clock, so the result does not depend on it and a re-run gives the same split.
    ``products`` (``provider, sku, category``: the products known so far) gives the category whose
    ceilings judge a line; a line of another product has the ``*`` ceilings.
    """
    frame, params = _prepare(bronze, "sales", registry, mappings)
    scoped = _scoped(registry, "sales", params)
    frame = _per_group(
        frame,
        params,
        ("_datetime_format", "_timezone", "_money_format"),
        lambda fmt, tz, money: {
            "__ordered_at": _timestamp(pl.col("ordered_at"), fmt, tz),
            "__unit_cents": _usd_cents(pl.col("unit_price"), money),
            "__discount_cents": _usd_cents(pl.col("discount"), money),
        },
    )
    frame = frame.with_columns(
        __order_id=_text("order_id"),
        __sku=_text("sku"),
        __line_no=_positive_int(pl.col("line_no")),
        __quantity=_positive_int(pl.col("quantity")),
        __discount_given=_text("discount").is_not_null(),
        __status=_lookup(pl.col("status"), mappings.status, scoped("status")),
        __channel=_lookup(pl.col("channel"), mappings.channels, scoped("channels")),
    )
    frame = _with_category(frame, products)
    business_day_end = pl.col("_business_date").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    history_start = pl.col("_history_start").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    rules = {
        "unstorable_value": _unstorable("sales"),
        "missing_order_id": pl.col("__order_id").is_null(),
        "missing_sku": pl.col("__sku").is_null(),
        "bad_line_no": pl.col("__line_no").is_null(),
        "unparseable_date": pl.col("__ordered_at").is_null(),
        "future_date": pl.col("__ordered_at") > business_day_end + pl.duration(days=2),
        "bad_quantity": pl.col("__quantity").is_null(),
        "unparseable_price": pl.col("__unit_cents").is_null()
        | (pl.col("__discount_given") & pl.col("__discount_cents").is_null()),
        "unknown_status": pl.col("__status").is_null(),
        "unknown_channel": pl.col("__channel").is_null(),
        "before_history_start": (pl.col("_business_date") < pl.col("_history_start"))
        | (pl.col("__ordered_at") < history_start),
        "quantity_over_ceiling": pl.col("__quantity") > _ceiling(mappings, pl.col("__category"), "quantity"),
        "price_over_ceiling": pl.col("__unit_cents") > _ceiling(mappings, pl.col("__category"), "unit_cents"),
    }
    store, online = pl.col("__channel") == "store", pl.col("__channel") == "online"
    discount_cents = pl.col("__discount_cents").fill_null(0)
    # Int128: quantity (< 2^31) x unit price (< 10^10 cents) can pass Int64.
    net_cents = pl.col("__quantity").cast(pl.Int128) * pl.col("__unit_cents") - discount_cents
    valid = {
        "order_id": pl.col("__order_id"),
        "line_no": pl.col("__line_no").cast(pl.Int32),
        "ordered_at": pl.col("__ordered_at"),
        "business_date": pl.col("_business_date"),
        "provider": pl.col("_provider"),
        "store_id": pl.when(store).then(_text("store_id")),
        "channel": pl.col("__channel"),
        "sku": pl.col("__sku"),
        "quantity": pl.col("__quantity").cast(pl.Int32),
        "unit_price": _dollars(pl.col("__unit_cents")),
        "discount": _dollars(discount_cents),
        "net_amount": _dollars(net_cents),
        "customer_id": _text("customer_id"),
        "status": pl.col("__status"),
        "ship_state": pl.when(online).then(_state(pl.col("ship_state"), mappings, scoped("states"))),
    }
    return _split(frame, "sales", rules, ("__order_id", "__line_no"), valid, seen)


def clean_catalog(
    bronze: pl.DataFrame,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Products with conformed brand, manufacturer, category, species and unit; price in USD.

    ``now`` is the time of the run; no catalog rule depends on it.
    """
    frame, params = _prepare(bronze, "catalog", registry, mappings)
    scoped = _scoped(registry, "catalog", params)
    brands = {alias: brand for alias, (brand, _) in mappings.brands.items()}
    makers = {alias: maker for alias, (_, maker) in mappings.brands.items()}
    frame = _per_group(
        frame, params, ("_money_format",), lambda money: {"__price_cents": _usd_cents(pl.col("list_price"), money)}
    )
    frame = frame.with_columns(
        __sku=_text("sku"),
        __name=_text("product_name"),
        __species=_lookup(pl.col("species"), mappings.species, scoped("species")),
        __pack_given=_text("pack_size").is_not_null(),
        __pack_size=_positive_number(pl.col("pack_size")),
        __unit_given=_text("pack_unit").is_not_null(),
        __unit=_lookup(pl.col("pack_unit"), mappings.units, scoped("units")),
    )
    category = pl.coalesce(_lookup(pl.col("category"), mappings.categories, scoped("categories")), pl.lit("other"))
    rules = {
        "unstorable_value": _unstorable("catalog"),
        "missing_sku": pl.col("__sku").is_null(),
        "missing_product_name": pl.col("__name").is_null(),
        "unparseable_price": pl.col("__price_cents").is_null(),
        "unknown_species": pl.col("__species").is_null(),
        "bad_pack_size": pl.col("__pack_given") & pl.col("__pack_size").is_null(),
        "unknown_unit": pl.col("__unit_given") & pl.col("__unit").is_null(),
        "price_over_ceiling": pl.col("__price_cents") > _ceiling(mappings, category, "unit_cents"),
    }
    valid = {
        "sku": pl.col("__sku"),
        "upc": _text("upc"),
        "product_name": pl.col("__name"),
        "brand": pl.coalesce(
            _lookup(pl.col("brand"), brands, scoped("brands")), _text("brand").str.replace_all(r"\s+", " ")
        ),
        "manufacturer": _lookup(pl.col("brand"), makers, scoped("brands"), lambda entry: entry.extra),
        "category": category,
        "species": pl.col("__species"),
        "pack_size": pl.col("__pack_size"),
        "pack_unit": pl.col("__unit"),
        "list_price": _dollars(pl.col("__price_cents")),
        "provider": pl.col("_provider"),
        "business_date": pl.col("_business_date"),
    }
    return _split(frame, "catalog", rules, ("__sku",), valid, seen)


def clean_stores(
    bronze: pl.DataFrame,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Locations with a 2-letter state, its Census region and a 5-digit zip.

    ``now`` is the time of the run; no stores rule depends on it.
    """
    frame, params = _prepare(bronze, "stores", registry, mappings)
    scoped = _scoped(registry, "stores", params)
    frame = frame.with_columns(
        __store_id=_text("store_id"), __state=_state(pl.col("state"), mappings, scoped("states"))
    )
    rules = {
        "unstorable_value": _unstorable("stores"),
        "missing_store_id": pl.col("__store_id").is_null(),
        "invalid_state": pl.col("__state").is_null(),
    }
    valid = {
        "store_id": pl.col("__store_id"),
        "provider": pl.col("_provider"),
        "store_name": _text("store_name"),
        "city": _text("city"),
        "state": pl.col("__state"),
        "zip": _zip(pl.col("zip")),
        "region": pl.col("__state").replace_strict(mappings.regions, default=None, return_dtype=pl.String),
        "business_date": pl.col("_business_date"),
    }
    return _split(frame, "stores", rules, ("__store_id",), valid, seen)


def clean_customers(
    bronze: pl.DataFrame,
    *,
    registry: Registry,
    mappings: Mappings,
    now: datetime,
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Loyalty customers with an optional signup date, state and pet species.

    ``now`` is the time of the run; no customers rule depends on it.
    """
    frame, params = _prepare(bronze, "customers", registry, mappings)
    scoped = _scoped(registry, "customers", params)
    frame = _per_group(
        frame,
        params,
        ("_date_format",),
        lambda fmt: {"__signup_date": pl.col("signup_date").str.strip_chars().str.strptime(pl.Date, fmt, strict=False)},
    )
    frame = frame.with_columns(
        __customer_id=_text("customer_id"),
        __signup_given=_text("signup_date").is_not_null(),
        __state_given=_text("state").is_not_null(),
        __state=_state(pl.col("state"), mappings, scoped("states")),
        __species_given=_text("pet_species").is_not_null(),
        __species=_lookup(pl.col("pet_species"), mappings.species, scoped("species")),
    )
    rules = {
        "unstorable_value": _unstorable("customers"),
        "missing_customer_id": pl.col("__customer_id").is_null(),
        "unparseable_date": pl.col("__signup_given") & pl.col("__signup_date").is_null(),
        "invalid_state": pl.col("__state_given") & pl.col("__state").is_null(),
        "unknown_species": pl.col("__species_given") & pl.col("__species").is_null(),
    }
    valid = {
        "customer_id": pl.col("__customer_id"),
        "provider": pl.col("_provider"),
        "signup_date": pl.col("__signup_date"),
        "state": pl.col("__state"),
        "pet_species": pl.col("__species"),
        "business_date": pl.col("_business_date"),
    }
    return _split(frame, "customers", rules, ("__customer_id",), valid, seen)


def reconcile(bronze: pl.DataFrame, result: SilverResult) -> pl.DataFrame:
    """Per ``_source_file``: ``rows_in`` (bronze), ``rows_loaded`` (valid), ``rows_quarantined``.

    ``rows_in == rows_loaded + rows_quarantined`` holds for every file of a correct result; a file
    seen in only one of the frames is listed too, with zeros elsewhere, so a mismatch is visible.
    """
    counts = [
        frame.group_by("_source_file").agg(pl.len().cast(pl.Int64).alias(name))
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


# --- building blocks -----------------------------------------------------------------------


def _prepare(
    bronze: pl.DataFrame, feed: str, registry: Registry, mappings: Mappings
) -> tuple[pl.LazyFrame, pl.DataFrame]:
    """Check the bronze columns, order rows by file and record, attach per-provider formats and
    apply what the registry gives (constants, defaults; the delivered value is kept as
    ``__raw_<column>``, and ``__from_registry`` lists the columns given).

    Returns the (lazy) rows and the per-provider parameter frame. The cleaning runs lazily and is
    collected once in ``_split``, so shared sub-expressions are computed once.
    """
    missing = [c for c in bronze_schema(feed) if c not in bronze.columns]
    if missing:
        raise ValueError(f"bronze {feed} frame lacks columns {missing}")
    params = _source_params(bronze, feed, registry, mappings)
    frame = (
        bronze.lazy()
        .select(list(bronze_schema(feed)))
        .sort("_source_file", "_row_number", maintain_order=True)
        .join(params.lazy(), on="_provider", how="left", maintain_order="left")
        .with_row_index("__row")
    )
    given = [c for c in CANONICAL_COLUMNS[feed] if f"__constant_{c}" in params.columns]
    if not given:
        return frame.with_columns(pl.lit(None, pl.String).alias("__from_registry")), params
    constant = {c: pl.col(f"__constant_{c}") for c in given}
    default = {c: pl.col(f"__default_{c}") for c in given}
    from_registry = {c: constant[c].is_not_null() | (_text(c).is_null() & default[c].is_not_null()) for c in given}
    listed = pl.concat_str(
        [pl.when(flag).then(pl.lit(c)) for c, flag in from_registry.items()], separator=",", ignore_nulls=True
    )
    frame = frame.with_columns(
        *(pl.col(c).alias(f"__raw_{c}") for c in given),
        *(
            pl.when(constant[c].is_not_null())
            .then(constant[c])
            .when(_text(c).is_null() & default[c].is_not_null())
            .then(default[c])
            .otherwise(pl.col(c))
            .alias(c)
            for c in given
        ),
        pl.when(listed.str.len_bytes() > 0).then(listed).alias("__from_registry"),
    )
    return frame, params


def _source_params(bronze: pl.DataFrame, feed: str, registry: Registry, mappings: Mappings) -> pl.DataFrame:
    """One row per provider in ``bronze``: its formats, timezone, fx rate and history start, and, for each column
    that a source of the frame is given, ``__constant_<column>`` and ``__default_<column>``."""
    rows = []
    sources = []
    for provider in bronze.get_column("_provider").unique().sort().to_list():
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
    frame: pl.LazyFrame,
    params: pl.DataFrame,
    keys: Sequence[str],
    build: Callable[..., Mapping[str, pl.Expr]],
) -> pl.LazyFrame:
    """Add the columns ``build(*key values)`` returns, computed separately for each group of ``keys``.

    For what needs a literal per provider (a strptime pattern, a time zone, a money format); a
    bronze frame holds few providers, so there are few groups. Rows keep their order.
    """
    groups = params.select(keys).unique().sort(keys).rows() or [tuple(_EMPTY_PARAMS[k] for k in keys)]
    if len(groups) == 1:
        return frame.with_columns(**build(*groups[0]))
    # Materialised once: otherwise every group's branch re-runs the plan above it (measured on
    # 1M rows of 40 providers in 19 groups: 1.1 s instead of 5-7 s).
    rows = frame.collect(engine="in-memory").lazy()
    parts = [
        rows.filter(pl.all_horizontal([pl.col(k) == v for k, v in zip(keys, group, strict=True)])).with_columns(
            **build(*group)
        )
        for group in groups
    ]
    return pl.concat(parts).sort("__row")


def _split(
    frame: pl.LazyFrame,
    feed: str,
    rules: Mapping[str, pl.Expr],
    key: Sequence[str],
    valid: Mapping[str, pl.Expr],
    seen: pl.DataFrame | None = None,
) -> SilverResult:
    """Label each row with its first broken rule (then duplicates) and split valid / quarantine.

    A passing row is a duplicate if an earlier row of the frame, or a row of ``seen`` (keys an
    earlier chunk loaded), has its key."""
    order = QUARANTINE_RULES[feed]
    if (*rules, "duplicate") != order:
        raise AssertionError(f"{feed} rules {list(rules)} do not follow the contract's order {list(order)}")
    first_broken = pl.coalesce([pl.when(broken).then(pl.lit(rule)) for rule, broken in rules.items()])
    frame = frame.with_columns(first_broken.alias("__rule"))
    passing = pl.col("__rule").is_null()
    earlier = ~pl.struct("_provider", "_business_date", *key, passing.alias("__passing")).is_first_distinct()
    key_columns = ["_provider", "_business_date", *key]
    if seen is not None and seen.height:
        # Only the seen keys this chunk also holds: the hash table is built on the chunk's keys
        # (bounded by the chunk) rather than on every key the partition loaded so far.
        hits = seen.lazy().select(key_columns).join(frame.select(key_columns), on=key_columns, how="semi")
        marks = hits.unique().with_columns(pl.lit(True).alias("__seen"))
        frame = frame.join(marks, on=key_columns, how="left", maintain_order="left")
        earlier = earlier | pl.col("__seen").fill_null(False)
    frame = frame.with_columns(
        pl.when(passing & earlier).then(pl.lit("duplicate")).otherwise(pl.col("__rule")).alias("__rule")
    )
    # One pass over the plan, then cheap eager filters: collecting the valid, quarantined and key
    # outputs as three lazy queries ran the shared cleaning plan twice (measured on 830k sales
    # rows: 3.0 s for collect_all against 1.5 s for one output).
    raw_columns = list(CANONICAL_COLUMNS[feed])
    names = set(frame.collect_schema().names())
    labelled = frame.select(
        *(expr.alias(f"__out_{name}") for name, expr in valid.items()),
        *(c for c in key_columns if c not in ("_provider", "_business_date")),
        *(pl.col(f"__raw_{c}").alias(c) if f"__raw_{c}" in names else pl.col(c) for c in raw_columns),
        "_provider",
        "_business_date",
        "_source_file",
        "_row_number",
        "_ingested_at",
        "__from_registry",
        "__rule",
    ).collect(engine="in-memory")
    loaded = labelled.filter(pl.col("__rule").is_null())
    valid_rows = loaded.select(
        *(pl.col(f"__out_{name}").alias(name) for name in valid),
        "_source_file",
        "_row_number",
        pl.col("__from_registry").alias("_from_registry"),
    )
    loaded_keys = loaded.select(key_columns)
    quarantined = labelled.filter(pl.col("__rule").is_not_null()).select(
        pl.lit(feed).alias("feed"),
        pl.col("_provider").alias("provider"),
        pl.col("_business_date").alias("business_date"),
        "_source_file",
        "_row_number",
        pl.col("__rule").alias("rule"),
        pl.struct(pl.col(c).str.replace_all(_NUL, _NUL_SHOWN, literal=True) for c in raw_columns)
        .struct.json_encode()
        .alias("raw"),
        "_ingested_at",
    )
    return SilverResult(valid=valid_rows, quarantine=quarantined, keys=loaded_keys)


def _unstorable(feed: str) -> pl.Expr:
    """A NUL character in any of the feed's text values (as silver reads them)."""
    return pl.any_horizontal(
        [pl.col(c).str.contains(_NUL, literal=True).fill_null(False) for c in CANONICAL_COLUMNS[feed]]
    )


def _with_category(frame: pl.LazyFrame, products: pl.DataFrame | None) -> pl.LazyFrame:
    """``__category``: the category ``products`` gives the row's (provider, cleaned sku); null
    when it has none."""
    if products is None or products.is_empty():
        return frame.with_columns(pl.lit(None, pl.String).alias("__category"))
    known = (
        products.lazy()
        .select(
            pl.col("provider").cast(pl.String).alias("_provider"),
            pl.col("sku").cast(pl.String).str.strip_chars().alias("__sku"),
            pl.col("category").cast(pl.String).alias("__category"),
        )
        .unique(["_provider", "__sku"], keep="first", maintain_order=True)
    )
    return frame.join(known, on=["_provider", "__sku"], how="left", maintain_order="left")


def _ceiling(mappings: Mappings, category: pl.Expr, what: str) -> pl.Expr:
    """The ``max_quantity`` (``what="quantity"``) or ``max_unit_cents`` of ``category``'s
    ceiling (``Mappings.ceiling``: its row, else ``*``'s, else the default)."""
    limit = {
        "quantity": lambda c: c.max_quantity,
        "unit_cents": lambda c: c.max_unit_cents,
    }[what]
    listed = {name: limit(ceiling) for name, ceiling in mappings.ceilings.items()}
    return category.replace_strict(
        list(listed), list(listed.values()), default=limit(mappings.ceiling(None)), return_dtype=pl.Int64
    )


def _text(name: str) -> pl.Expr:
    """A bronze column trimmed; empty or blank is null."""
    value = pl.col(name).str.strip_chars()
    return pl.when(value.str.len_bytes() > 0).then(value)


def _alias(value: pl.Expr) -> pl.Expr:
    """The form mapping aliases are matched in (``normalise_alias``)."""
    return value.str.strip_chars().str.to_lowercase().str.replace_all(r"\s+", " ")


def _lookup(
    value: pl.Expr,
    table: Mapping[str, str],
    scoped: ScopedLookup | None = None,
    pick: Callable[[ScopedEntry], str | None] = lambda entry: entry.value,
) -> pl.Expr:
    """The canonical value of ``value`` in the row's scoped value maps (``pick`` of the entry),
    else in the global ``table`` (keys normalised); null if in neither."""
    alias = _alias(value)
    found = alias.replace_strict(list(table.keys()), list(table.values()), default=None, return_dtype=pl.String)
    if scoped is None or scoped.empty:
        return found
    return pl.coalesce(*_scoped_values(alias, scoped, pick), found)


def _scoped_values(alias: pl.Expr, scoped: ScopedLookup, pick: Callable[[ScopedEntry], str | None]) -> list[pl.Expr]:
    """One expression per scope level and kind, most specific first: a ``replace_strict`` keyed by
    provider and alias for the exact aliases, a ``when`` chain for the patterns."""
    provider = pl.col("_provider")
    key = pl.concat_str([provider, pl.lit("\x1f"), alias])
    out: list[pl.Expr] = []
    for exact, patterns in zip(scoped.exact, scoped.patterns, strict=True):
        if exact:
            keys = [f"{p}\x1f{a}" for p, a in exact]
            values = [pick(entry) for entry in exact.values()]
            out.append(key.replace_strict(keys, values, default=None, return_dtype=pl.String))
        if patterns:
            chain: Any = pl
            for p, regex, entry in patterns:
                chain = chain.when((provider == p) & alias.str.contains(regex)).then(pl.lit(pick(entry), pl.String))
            out.append(chain.otherwise(pl.lit(None, pl.String)))
    return out


def _state(value: pl.Expr, mappings: Mappings, scoped: ScopedLookup | None = None) -> pl.Expr:
    """A US state (or DC) as its upper-case 2-letter code, or the code a scoped ``states`` alias
    gives; null if not one in ``regions.csv``."""
    code = value.str.strip_chars().str.to_uppercase()
    if scoped is not None and not scoped.empty:
        code = pl.coalesce(*_scoped_values(_alias(value), scoped, lambda entry: entry.value), code)
    return pl.when(code.is_in(list(mappings.regions))).then(code)


def _zip(value: pl.Expr) -> pl.Expr:
    """A 5-digit zip: ZIP+4 cut to 5 digits, lost leading zeros restored; otherwise null."""
    digits = value.str.strip_chars().str.extract(_ZIP, 1)
    return digits.str.zfill(5)


def _positive_int(value: pl.Expr) -> pl.Expr:
    """A positive integer within Int32 as Int64; null if the text is anything else.

    Plain digits take a fast cast; only the rest (padding, a zero fraction) goes through the regex.
    """
    plain = value.cast(pl.Int64, strict=False)
    rest = pl.when(plain.is_null()).then(value)
    number = pl.coalesce(plain, rest.str.strip_chars().str.extract(_POSITIVE_INT, 1).cast(pl.Int64, strict=False))
    return pl.when((number > 0) & (number <= _INT32_MAX)).then(number)


def _positive_number(value: pl.Expr) -> pl.Expr:
    """A positive decimal number as Float64; null if the text is anything else."""
    text = value.str.strip_chars()
    number = pl.when(text.str.contains(_UNSIGNED_NUMBER)).then(text).cast(pl.Float64, strict=False)
    return pl.when(number > 0).then(number)


def _usd_cents(value: pl.Expr, money_format: str) -> pl.Expr:
    """A money text in ``money_format`` and the row's currency (``_rate``) as Int64 US cents.

    Rounded half up; null when the text is missing, unparseable, negative or too large (see the
    module docstring).
    """
    text = value.str.strip_chars()
    if money_format == "currency":
        text = text.str.replace_all(r"[$,\s]", "")
    elif money_format == "decimal_comma":
        # "1.234,50 €" -> "1234.50": a dot groups thousands only in threes, so "12.99" (a decimal
        # point in a decimal-comma feed) is unparseable, never read as 1299.
        text = text.str.replace_all(r"[€£$¥\s\u00a0\u202f]", "")
        grouped = text.str.contains(r"^(?:\d{1,3}(?:\.\d{3})+|\d+)(?:,\d+)?$")
        text = pl.when(grouped).then(text.str.replace_all(".", "", literal=True).str.replace(",", ".", literal=True))
    # Digits beyond the parse scale are cut, not rounded: rounding there and again to cents could
    # round twice (12.34499 -> 12.3450 -> 12.35), where ROUND_HALF_UP(12.34499, 2) is 12.34.
    if money_format == "cents":
        text = text.str.replace(r"^(\d*\.\d{2})\d+$", "${1}")
        amount = text.cast(pl.Decimal(38, 2), strict=False) * (_AMOUNT_SCALE // 100)
    else:
        text = text.str.replace(r"^(\d*\.\d{4})\d+$", "${1}")
        amount = text.cast(pl.Decimal(38, 4), strict=False) * _AMOUNT_SCALE
    units = amount.cast(pl.Int64, strict=False)
    parseable = text.str.contains(_UNSIGNED_NUMBER) & (units < _MAX_AMOUNT)
    return pl.when(parseable).then((units * pl.col("_rate") + _TO_CENTS // 2) // _TO_CENTS)


def _dollars(cents: pl.Expr) -> pl.Expr:
    """Cents as the Float64 nearest to cents / 100 (``1699`` -> ``16.99``). Dividing a float column
    by a literal multiplies by the reciprocal in Polars, which is an ulp off for about one value in
    eight (``16.990000000000002``); the exact decimal quotient converted to Float64 is not."""
    return (cents.cast(pl.Decimal(38, 2)) / 100).cast(pl.Float64)


def _timestamp(value: pl.Expr, fmt: str, timezone: str) -> pl.Expr:
    """A timestamp text in ``fmt`` (``iso``, ``epoch_ms`` or a strptime pattern) as UTC."""
    if fmt == "iso":
        return _iso_timestamp(value, timezone)
    if fmt == "epoch_ms":
        millis = value.str.extract(r"^(-?\d{1,15})(?:\.0*)?$", 1).cast(pl.Int64, strict=False)
        return pl.from_epoch(millis, time_unit="ms").cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if any(directive in fmt for directive in TIMEZONE_DIRECTIVES):
        return value.str.strptime(pl.Datetime("us", "UTC"), fmt, strict=False)
    return _local_to_utc(value.str.strptime(pl.Datetime("us"), fmt, strict=False), timezone)


def _iso_timestamp(value: pl.Expr, timezone: str) -> pl.Expr:
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
    return pl.coalesce(with_offset, _local_to_utc(local, timezone))


def _local_to_utc(naive: pl.Expr, timezone: str) -> pl.Expr:
    """Wall-clock time in ``timezone`` as UTC: the earlier instant when ambiguous, null if skipped."""
    return naive.dt.replace_time_zone(timezone, ambiguous="earliest", non_existent="null").dt.convert_time_zone("UTC")


#: A file whose rows break one type rule this often (and at least ``TYPE_DRIFT_MIN_ROWS`` times)
#: most likely had the column's type or format changed by the partner.
TYPE_DRIFT_SHARE = 0.5
TYPE_DRIFT_MIN_ROWS = 10


def type_drift(feed: str, quarantine: pl.DataFrame, counts: pl.DataFrame) -> pl.DataFrame:
    """Per file, the columns most of whose values could not be read as their type or broke a
    plausibility rule (``DRIFT_RULES``): ``_source_file, column, rule, rows, rows_in`` (``counts``
    is :func:`reconcile`'s per-file frame)."""
    rules = DRIFT_RULES[feed]
    schema = {"_source_file": pl.String, "column": pl.String, "rule": pl.String, "rows": pl.Int64, "rows_in": pl.Int64}
    if not rules or quarantine.is_empty():
        return pl.DataFrame(schema=schema)
    broken = (
        quarantine.filter(pl.col("rule").is_in(list(rules)))
        .group_by("_source_file", "rule")
        .agg(pl.len().cast(pl.Int64).alias("rows"))
        .join(counts.select("_source_file", pl.col("rows_in").cast(pl.Int64)), on="_source_file")
        .filter((pl.col("rows") >= TYPE_DRIFT_MIN_ROWS) & (pl.col("rows") >= pl.col("rows_in") * TYPE_DRIFT_SHARE))
        .with_columns(column=pl.col("rule").replace_strict(dict(rules), return_dtype=pl.String))
    )
    return broken.select(list(schema)).cast(schema).sort("_source_file", "column")  # type: ignore[arg-type]
