"""How a column's values are written, in the spellings a registry profile accepts: a datetime
format (``iso``, ``epoch_ms`` or a strptime pattern silver runs through Polars), a date format (a
strptime pattern) and a money format (``decimal``, ``currency``, ``decimal_comma`` or ``cents``).

A format is taken when it reads ``enough`` of the distinct values; the rest are named in
the evidence (a run quarantines them). Day-first against month-first is decided by the values: a
value whose first field is above 12 can only be day-first (and one whose second field is,
month-first). When every value reads both ways, a sale's timestamps are read the way that puts them
near the files' business dates (their landing keys); else the guess says it is undecided.
Candidates are tried with the same parser silver uses, so a pattern suggested here reads the
sampled values the way a run will.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from datetime import date

import polars as pl

from resight_platform.onboard.sniff import Guess

__all__ = [
    "COMPACT_DATE",
    "ENOUGH",
    "EPOCH_SECONDS",
    "date_part",
    "enough",
    "guess_date",
    "guess_datetime",
    "guess_money",
]

#: The share of a column's distinct values a format must read to be taken: partners' samples hold a
#: few bad values (which a run quarantines), and one of them must not hide the format of the rest.
ENOUGH = 0.9


def enough(read: int, total: int) -> bool:
    """Whether ``read`` of ``total`` distinct values are enough to take a format: ``ENOUGH`` of
    them, or all but one of a small sample (one bad value among five is a bad value)."""
    return read >= ENOUGH * total or (read >= 2 and total - read <= 1)


#: The confidence of a day order the values leave open.
UNDECIDED = 0.5
#: A sale's timestamp read this many days or fewer from its file's business date is a plausible
#: reading (late files carry older lines, so not zero).
NEAR_DAYS = 7

#: The datetime format of epoch seconds: silver's strptime reads ``%s`` as wall-clock time in the
#: provider's timezone, so a draft using it gives its provider the timezone ``UTC``.
EPOCH_SECONDS = "%s"

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATEISH = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?( ?[AaPp][Mm])?)?$")
#: Dates written without separators, year first (ISO 8601's basic format, ``19970101``): read with
#: ``COMPACT_DATE`` only, as day- or month-first runs of digits are not told from numbers.
_COMPACT = re.compile(r"^\d{8}$")
COMPACT_DATE = "%Y%m%d"
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


def _read(values: list[str], pattern: str) -> list[str]:
    """The values ``pattern`` reads (as silver's strptime does)."""
    series = pl.Series(values, dtype=pl.String)
    parsed = series.str.strptime(pl.Datetime("us"), pattern, strict=False)
    return series.filter(parsed.is_not_null()).to_list()


def _day_month(values: list[str], with_time: bool) -> tuple[list[str], list[str]]:
    """The strptime patterns (date part, plus a time part when ``with_time``) that read the most
    values, if at least ``ENOUGH`` of them, and the values they read."""
    best: tuple[int, list[str], list[str]] = (0, [], [])
    for order in _ORDERS:
        for sep in _SEPARATORS:
            date_pattern = sep.join(order)
            for time in _TIMES if with_time else ("",):
                read = _read(values, date_pattern + time)
                if len(read) > best[0]:
                    best = (len(read), [date_pattern + time], read)
                elif len(read) == best[0] and read:
                    best[1].append(date_pattern + time)
    count, fits, read = best
    return (fits, read) if enough(count, len(values)) else ([], [])


def _unread(values: list[str], read: list[str]) -> str:
    """What the evidence says of the values a format does not read."""
    rest = [v for v in values if v not in set(read)]
    return f"; {len(rest)} of {len(values)} distinct values unreadable (quarantined), e.g. {rest[0]!r}" if rest else ""


def _decided(all_values: list[str], fits: list[str], values: list[str], near: Sequence[date] = ()) -> Guess:
    """One pattern from ``fits`` (which read ``values`` of ``all_values``); day-first vs month-first
    by a value that only one reads, else by which reading is near the files' business dates."""
    guess = _pattern(fits, values)
    if guess.confidence == UNDECIDED and near:
        guess = _by_business_date(fits, values, near) or guess
    unread = _unread(all_values, values)
    return Guess(guess.value, guess.confidence * (1.0 if not unread else 0.9), guess.evidence + unread)


def _by_business_date(fits: list[str], values: list[str], near: Sequence[date]) -> Guess | None:
    """The one of ``fits`` whose reading of ``values`` lies within ``NEAR_DAYS`` of the files'
    business dates (their landing keys' dates) while the others' does not."""
    series = pl.Series(values, dtype=pl.String)
    distance: dict[str, float] = {}
    for pattern in fits:
        days = series.str.strptime(pl.Datetime("us"), pattern, strict=False).dt.date().drop_nulls().to_list()
        distance[pattern] = statistics.median(min(abs((d - b).days) for b in near) for d in days)
    close = [p for p, d in distance.items() if d <= NEAR_DAYS]
    if len(close) != 1:
        return None
    pattern = close[0]
    others = ", ".join(f"{p!r} {d:g}" for p, d in distance.items() if p != pattern)
    order = "day-first" if pattern.startswith("%d") else "month-first"
    return Guess(
        pattern,
        0.85,
        f"every value's day and month are at most 12 (e.g. {values[0]!r}), but read {order} they lie a median"
        f" {distance[pattern]:g} days from the files' business dates ({others} days otherwise)",
    )


def _pattern(fits: list[str], values: list[str]) -> Guess:
    if len(fits) == 1:
        pattern = fits[0]
        day_first, month_first = pattern.startswith("%d"), pattern.startswith("%m")
        if day_first or month_first:
            field = 0 if day_first else 1
            witness = next((v for v in values if int(re.split(r"[-/.]", v)[field]) > 12), None)
            if witness is not None:
                which = "first" if day_first else "second"
                return Guess(pattern, 0.95, f"{witness!r}: its {which} field is above 12, so it is the day")
        return Guess(pattern, 0.95, f"the only pattern reading these {len(values)} distinct values, e.g. {values[0]!r}")
    us_order = [p for p in fits if p.startswith("%m")]
    if fits and len({p.replace("%d", "D").replace("%m", "D") for p in fits}) == 1 and us_order:
        return Guess(
            us_order[0],
            UNDECIDED,
            f"undecidable: every value's day and month are at most 12 (e.g. {values[0]!r}), so day-first and"
            " month-first read them alike; month-first is the US default: ask the partner",
        )
    return Guess(fits[0], 0.4, f"several patterns read the same values ({', '.join(fits)}): took the first")


def guess_datetime(values: Sequence[str | None], near: Sequence[date] = ()) -> Guess | None:
    """The datetime format of a column, or None when its values are not timestamps. ``near``: the
    files' business dates, which decide day-first vs month-first when the values do not."""
    filled = _filled(values)
    if not filled:
        return None
    iso = [v for v in filled if _ISO.match(v)]
    if enough(len(iso), len(filled)):
        offset = any(v.endswith("Z") or re.search(r"[+-]\d{2}:?\d{2}$|[+-]\d{2}$", v) for v in iso)
        where = "with a UTC offset" if offset else "without an offset: local time in the provider's timezone"
        return Guess(
            "iso", 1.0 if len(iso) == len(filled) else 0.9, f"ISO 8601 {where}, e.g. {iso[0]!r}" + _unread(filled, iso)
        )
    low, high = _EPOCH_RANGE
    for scale, fmt, what in (
        (1, EPOCH_SECONDS, "epoch seconds (2000-2100); read as UTC (the draft's provider timezone is UTC)"),
        (1000, "epoch_ms", "epoch milliseconds (2000-2100)"),
    ):
        epoch = [v for v in filled if _INTEGER.match(v) and low * scale <= int(v) < high * scale]
        if enough(len(epoch), len(filled)):
            numbers = [int(v) for v in epoch]
            return Guess(
                fmt, 0.9, f"whole numbers from {min(numbers)} to {max(numbers)}: {what}" + _unread(filled, epoch)
            )
    dateish = [v for v in filled if _DATEISH.match(v)]
    if not enough(len(dateish), len(filled)) or not any(":" in v for v in dateish):
        return None
    fits, read = _day_month(filled, with_time=True)
    return _decided(filled, fits, read, near) if fits else None


def guess_date(values: Sequence[str | None]) -> Guess | None:
    """The date format of a column of dates (no time), or None when its values are not dates."""
    filled = _filled(values)
    if not filled:
        return None
    compact = [v for v in filled if _COMPACT.match(v)]
    if enough(len(compact), len(filled)):
        read = _read(filled, COMPACT_DATE)
        if not enough(len(read), len(filled)):
            return None  # eight-digit numbers, not dates
        return Guess(
            COMPACT_DATE, 0.9, f"8-digit dates, year first (ISO 8601 basic), e.g. {read[0]!r}" + _unread(filled, read)
        )
    dates = [v for v in filled if _DATEISH.match(v) and ":" not in v]
    if not enough(len(dates), len(filled)):
        return None
    iso = [v for v in filled if _ISO_DATE.match(v)]
    if len(iso) >= ENOUGH * len(filled):
        return Guess(
            "%Y-%m-%d", 1.0 if len(iso) == len(filled) else 0.9, f"ISO dates, e.g. {iso[0]!r}" + _unread(filled, iso)
        )
    fits, read = _day_month(filled, with_time=False)
    return _decided(filled, fits, read) if fits else None


def date_part(datetime_format: str) -> str | None:
    """The date part of a strptime datetime pattern (``%d.%m.%Y %H:%M`` -> ``%d.%m.%Y``; the
    compact ``%Y%m%d`` too)."""
    match = re.match(r"^(%[dmYy][-/.]?%[dmYy][-/.]?%[dmYy])", datetime_format)
    return match.group(1) if match else None


def guess_money(values: Sequence[str | None], name_tokens: Sequence[str] = ()) -> Guess | None:
    """The money format of a column, or None when its values are not amounts. A symbol other than
    ``$`` with a decimal point has no money format: the guess is ``decimal`` (such values are then
    quarantined as unparseable, never misread) with the blocker said."""
    filled = _filled(values)
    if not filled:
        return None
    comma = [v for v in filled if _COMMA_DECIMAL.match(v) and not _DOLLARS.match(v)]
    foreign = [v for v in filled if _FOREIGN.match(v) and v not in comma]
    dollars = [v for v in filled if _DOLLARS.match(v) and not _PLAIN.match(v)]
    plain = [v for v in filled if _PLAIN.match(v)]
    readable = {*comma, *foreign, *dollars, *plain}
    if not enough(len(readable), len(filled)):
        return None
    point = [*dollars, *plain]
    if enough(len(point), len(filled)):  # a few odd amounts are bad values, not the format
        comma, foreign = [], []
    unread = _unread(filled, point)
    if comma:
        # Whole amounts ("12") read the same either way; amounts with a decimal point ("12.99") do
        # not fit and are quarantined as unparseable under decimal_comma, never misread.
        unread = _unread(filled, [*comma, *(v for v in plain if "." not in v)])
        return Guess(
            "decimal_comma",
            0.9,
            f"decimal comma, e.g. {comma[0]!r}" + (" (dot thousands)" if any("." in v for v in comma) else "") + unread,
        )
    if foreign:
        return Guess(
            "decimal",
            0.8,
            f"a currency symbol other than $, e.g. {foreign[0]!r}",
            blocker="the 'currency' money format strips only $, thousands commas and spaces",
        )
    if dollars:
        return Guess("currency", 0.95, f"$ or thousands commas, e.g. {dollars[0]!r}" + unread)
    if all(_INTEGER.match(v) for v in plain):
        numbers = [int(v) for v in plain]
        if "cent" in name_tokens:
            return Guess("cents", 0.95, "whole numbers in a column named in cents" + unread)
        median = statistics.median(numbers)
        if median >= 500 and any(n % 100 for n in numbers):
            return Guess(
                "cents", 0.6, f"whole numbers with a median of {median:g}: cents, as a price in dollars?" + unread
            )
        return Guess("decimal", 0.6, f"whole numbers with a median of {median:g}: whole dollars?" + unread)
    return Guess("decimal", 0.95, f"digits with a decimal point, e.g. {next(v for v in plain if '.' in v)!r}" + unread)
