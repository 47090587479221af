"""How a column's values are written, in the spellings a registry profile accepts: a datetime
format (``iso``, ``epoch_ms`` or a strptime pattern silver runs through Polars), a date format (a
strptime pattern) and a money format (``decimal``, ``currency`` or ``cents``).

Day-first against month-first is decided by the values: a value whose first field is above 12 can
only be day-first (and one whose second field is, month-first); when every value reads both ways the
guess says so. Candidates are tried with the same parser silver uses, so a pattern suggested here
reads every sampled value the way a run will.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

import polars as pl

from resight_platform.onboard.sniff import Guess

__all__ = ["EPOCH_SECONDS", "guess_date", "guess_datetime", "guess_money"]

#: The datetime format of epoch seconds: silver's strptime reads ``%s`` as wall-clock time in the
#: provider's timezone, so a draft using it gives its provider the timezone ``UTC``.
EPOCH_SECONDS = "%s"

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATEISH = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?( ?[AaPp][Mm])?)?$")
_INTEGER = re.compile(r"^\d+$")
#: Epoch values from 2000-01-01 to 2100-01-01.
_EPOCH_RANGE = (946_684_800, 4_102_444_800)
_ORDERS: tuple[tuple[str, str, str], ...] = (("%Y", "%m", "%d"), ("%d", "%m", "%Y"), ("%m", "%d", "%Y"))
_SEPARATORS = ("-", "/", ".")
_TIMES = (" %H:%M", " %H:%M:%S", " %I:%M %p", " %I:%M:%S %p", " %I:%M%p", "T%H:%M:%S", "T%H:%M")

_PLAIN = re.compile(r"^\d+(\.\d+)?$")
_DOLLARS = re.compile(r"^\$?\s?\d{1,3}(,\d{3})*(\.\d{1,4})?$|^\$\s?\d+(\.\d{1,4})?$")
_COMMA_DECIMAL = re.compile(r"^[€$£]?\s?\d{1,3}(\.?\d{3})*,\d{1,2}\s?[€]?$")
_FOREIGN = re.compile(r"^[€£]\s?[\d.,]+$|^[\d.,]+\s?[€£]$")


def _filled(values: Sequence[str | None]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v is not None and v.strip()))


def _parses(values: list[str], pattern: str) -> bool:
    parsed = pl.Series(values, dtype=pl.String).str.strptime(pl.Datetime("us"), pattern, strict=False)
    return parsed.null_count() == 0


def _day_month(values: list[str], with_time: bool) -> list[str]:
    """The strptime patterns (date part, plus a time part when ``with_time``) that read every value."""
    fits: list[str] = []
    for order in _ORDERS:
        for sep in _SEPARATORS:
            date_part = sep.join(order)
            for time in _TIMES if with_time else ("",):
                if _parses(values, date_part + time):
                    fits.append(date_part + time)
    return fits


def _decided(values: list[str], fits: list[str]) -> Guess:
    """One pattern from ``fits``; day-first vs month-first by a value that only one reads."""
    if len(fits) == 1:
        pattern = fits[0]
        day_first, month_first = pattern.startswith("%d"), pattern.startswith("%m")
        if day_first or month_first:
            field = 0 if day_first else 1
            witness = next((v for v in values if int(re.split(r"[-/.]", v)[field]) > 12), None)
            if witness is not None:
                which = "first" if day_first else "second"
                return Guess(pattern, 0.95, f"{witness!r}: its {which} field is above 12, so it is the day")
        return Guess(pattern, 0.95, f"the only pattern reading all {len(values)} distinct values, e.g. {values[0]!r}")
    us_order = [p for p in fits if p.startswith("%m")]
    if fits and len({p.replace("%d", "D").replace("%m", "D") for p in fits}) == 1 and us_order:
        return Guess(
            us_order[0],
            0.5,
            f"undecidable: every value's day and month are at most 12 (e.g. {values[0]!r}), so day-first and"
            " month-first read them alike; month-first is the US default: ask the partner",
        )
    return Guess(fits[0], 0.4, f"several patterns read every value ({', '.join(fits)}): took the first")


def guess_datetime(values: Sequence[str | None]) -> Guess | None:
    """The datetime format of a column, or None when its values are not timestamps."""
    filled = _filled(values)
    if not filled:
        return None
    if all(_ISO.match(v) for v in filled):
        offset = any(v.endswith("Z") or re.search(r"[+-]\d{2}:?\d{2}$|[+-]\d{2}$", v) for v in filled)
        where = "with a UTC offset" if offset else "without an offset: local time in the provider's timezone"
        return Guess("iso", 1.0, f"ISO 8601 {where}, e.g. {filled[0]!r}")
    if all(_INTEGER.match(v) for v in filled):
        numbers = [int(v) for v in filled]
        low, high = _EPOCH_RANGE
        if all(low <= n < high for n in numbers):
            return Guess(
                EPOCH_SECONDS,
                0.9,
                f"whole numbers from {min(numbers)} to {max(numbers)}: epoch seconds (2000-2100); read as UTC"
                " (the draft's provider timezone is UTC)",
            )
        if all(low * 1000 <= n < high * 1000 for n in numbers):
            return Guess("epoch_ms", 0.9, f"whole numbers from {min(numbers)} to {max(numbers)}: epoch milliseconds")
        return None
    if not all(_DATEISH.match(v) for v in filled) or not any(":" in v for v in filled):
        return None
    fits = _day_month(filled, with_time=True)
    return _decided(filled, fits) if fits else None


def guess_date(values: Sequence[str | None]) -> Guess | None:
    """The date format of a column of dates (no time), or None when its values are not dates."""
    filled = _filled(values)
    if not filled or not all(_DATEISH.match(v) and ":" not in v for v in filled):
        return None
    if all(_ISO_DATE.match(v) for v in filled):
        return Guess("%Y-%m-%d", 1.0, f"ISO dates, e.g. {filled[0]!r}")
    fits = _day_month(filled, with_time=False)
    return _decided(filled, fits) if fits else None


def date_part(datetime_format: str) -> str | None:
    """The date part of a strptime datetime pattern (``%d.%m.%Y %H:%M`` -> ``%d.%m.%Y``)."""
    match = re.match(r"^(%[dmYy][-/.]%[dmYy][-/.]%[dmYy])", datetime_format)
    return match.group(1) if match else None


def guess_money(values: Sequence[str | None], name_tokens: Sequence[str] = ()) -> Guess | None:
    """The money format of a column, or None when its values are not amounts. A decimal comma or a
    symbol other than ``$`` has no money format: the guess is ``decimal`` (such values are then
    quarantined as unparseable, never misread) with the blocker said."""
    filled = _filled(values)
    if not filled:
        return None
    comma = [v for v in filled if _COMMA_DECIMAL.match(v) and not _DOLLARS.match(v)]
    foreign = [v for v in filled if _FOREIGN.match(v)]
    dollars = [v for v in filled if _DOLLARS.match(v) and not _PLAIN.match(v)]
    plain = [v for v in filled if _PLAIN.match(v)]
    readable = {*comma, *foreign, *dollars, *plain}
    if len(readable) < len(filled):
        return None
    if comma:
        return Guess(
            "decimal",
            0.9,
            f"decimal comma, e.g. {comma[0]!r}" + (" (dot thousands)" if any("." in v for v in comma) else ""),
            blocker="no money format reads a decimal comma ('currency' would drop the comma and read 12,99 as"
            " 1299): ask the partner for a decimal point, or extend silver's money formats",
        )
    if foreign:
        return Guess(
            "decimal",
            0.8,
            f"a currency symbol other than $, e.g. {foreign[0]!r}",
            blocker="the 'currency' money format strips only $, thousands commas and spaces",
        )
    if dollars:
        return Guess("currency", 0.95, f"$ or thousands commas, e.g. {dollars[0]!r}")
    if all(_INTEGER.match(v) for v in plain):
        numbers = [int(v) for v in plain]
        if "cent" in name_tokens:
            return Guess("cents", 0.95, "whole numbers in a column named in cents")
        median = statistics.median(numbers)
        if median >= 500 and any(n % 100 for n in numbers):
            return Guess("cents", 0.6, f"whole numbers with a median of {median:g}: cents, as a price in dollars?")
        return Guess("decimal", 0.6, f"whole numbers with a median of {median:g}: whole dollars?")
    return Guess("decimal", 0.95, f"digits with a decimal point, e.g. {next(v for v in plain if '.' in v)!r}")
