"""The formats a column's values are written in, as a registry profile spells them."""

from __future__ import annotations

from datetime import date

import polars as pl

from resight_platform.onboard.formats import COMPACT_DATE, date_part, guess_date, guess_datetime, guess_money


def test_a_value_above_twelve_decides_the_day_order() -> None:
    day_first = guess_datetime(["01.02.2026 10:00", "25.02.2026 11:15"])
    assert day_first is not None and day_first.value == "%d.%m.%Y %H:%M"
    assert "'25.02.2026 11:15'" in day_first.evidence
    month_first = guess_datetime(["2/25/2026 9:00:01", "3/1/2026 17:30:00"])
    assert month_first is not None and month_first.value == "%m/%d/%Y %H:%M:%S"


def test_undecidable_day_order_is_decided_by_the_business_date_when_there_is_one() -> None:
    values = ["02/10/2026 10:00", "01/10/2026 23:59"]
    alone = guess_datetime(values)
    assert alone is not None and alone.confidence == 0.5 and "undecidable" in alone.evidence
    near = guess_datetime(values, [date(2026, 10, 2)])
    assert near is not None and near.value == "%d/%m/%Y %H:%M"
    assert "business dates" in near.evidence
    # Both readings far from the business date: still undecided.
    far = guess_datetime(values, [date(2025, 6, 1)])
    assert far is not None and far.confidence == 0.5


def test_every_reading_the_pattern_gives_silver_reads_the_values() -> None:
    values = ["03/14/2026 09:05 PM", "04/02/2026 11:47 AM"]
    guess = guess_datetime(values)
    assert guess is not None
    parsed = pl.Series(values).str.strptime(pl.Datetime("us"), guess.value, strict=False)
    assert parsed.null_count() == 0 and parsed[0].hour == 21


def test_iso_epochs_and_what_is_no_timestamp() -> None:
    iso = guess_datetime(["2026-10-02T07:57:09-04:00", "2026-10-02 08:00"])
    assert iso is not None and iso.value == "iso"
    assert guess_datetime(["1767225600", "1767312000"]).value == "%s"  # type: ignore[union-attr]
    assert guess_datetime(["1767225600000"]).value == "epoch_ms"  # type: ignore[union-attr]
    assert guess_datetime(["12", "7"]) is None
    assert guess_datetime(["A-1", "B-2"]) is None
    assert guess_date(["2025-01-31", None, ""]).value == "%Y-%m-%d"  # type: ignore[union-attr]
    assert date_part("%d.%m.%Y %H:%M") == "%d.%m.%Y"
    assert date_part("iso") is None
    assert date_part("%Y%m%d") == date_part("%Y%m%d %H%M") == "%Y%m%d"


def test_compact_year_first_dates() -> None:
    compact = guess_date(["19970101", "19971231", "19980630"])
    assert compact is not None and compact.value == COMPACT_DATE == "%Y%m%d"
    assert pl.Series(["19971231"]).str.strptime(pl.Date, compact.value).to_list() == [date(1997, 12, 31)]
    # Eight-digit numbers that are no dates (month 56, day 00) are not taken for dates.
    assert guess_date(["12345678", "87654321", "20260100"]) is None
    assert guess_datetime(["19970101", "19971231"]) is None  # dates, not timestamps


def test_a_few_bad_values_do_not_hide_the_format() -> None:
    values = [f"{day:02d}/10/2026 10:{day:02d}" for day in range(13, 31)] + ["31/02/2026 99:99"]
    guess = guess_datetime(values)
    assert guess is not None and guess.value == "%d/%m/%Y %H:%M"
    assert "1 of 19 distinct values unreadable" in guess.evidence and "'31/02/2026 99:99'" in guess.evidence
    money = guess_money([f"${n}.99" for n in range(1, 20)] + ["12,99€"])
    assert money is not None and money.value == "currency" and money.blocker is None
    assert "'12,99€'" in money.evidence


def test_money_formats() -> None:
    assert guess_money(["12.99", "0.50"]).value == "decimal"  # type: ignore[union-attr]
    assert guess_money(["$1,234.50", "$3.00"]).value == "currency"  # type: ignore[union-attr]
    assert guess_money(["1299", "499"], ("price", "cent")).value == "cents"  # type: ignore[union-attr]
    comma = guess_money(["1.234,50", "4,50", "€ 3,00", "12"])
    assert comma is not None and (comma.value, comma.blocker) == ("decimal_comma", None)
    assert "decimal comma" in comma.evidence and "dot thousands" in comma.evidence
    pointed = guess_money(["4,50", "3,00", "2,25", "1,10", "6,00", "7,50", "8,00", "9,99", "5,55", "12.99"])
    assert pointed is not None and pointed.value == "decimal_comma" and "'12.99'" in pointed.evidence  # named unread
    euro = guess_money(["€12.50", "€3.00"])
    assert euro is not None and euro.blocker is not None
    assert guess_money(["cheap", "free"]) is None
