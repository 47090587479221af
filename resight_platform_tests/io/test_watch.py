"""Batching a tick's files into runs: spans of neighbouring sources, joined when the gap is cheap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from resight_platform.io.plan import PARTITION_COST_BYTES
from resight_platform.io.storage import ObjectInfo
from resight_platform.io.watch import WatchCursor, WatchSettings, batch_files
from resight_platform.sources.landing import LandingKey

DAY = date(2026, 11, 25)
ORDER = [f"p{i:02d}" for i in range(10)]
SOURCE_OF = {p: p for p in ORDER}


def _file(provider: str, day: date = DAY) -> tuple[ObjectInfo, LandingKey]:
    key = f"{provider}/sales/{day}/f.csv"
    info = ObjectInfo(key=key, size=100, etag="e", last_modified=datetime(2026, 11, 26, tzinfo=UTC))
    return info, LandingKey(key=key, provider=provider, feed="sales", date=day, file_name="f.csv", format="csv")


def _spans(batches: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(b.first_source, b.last_source) for b in batches]


def test_a_cheap_gap_is_read_again_rather_than_paying_for_another_run() -> None:
    files = [_file("p01"), _file("p05")]
    small = {DAY: {"p02": 10_000, "p03": 0, "p04": 5_000}}
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), small)
    assert _spans(batches) == [("p01", "p05")] and deferred == 0
    assert [info.key for info, _ in batches[0].files] == [f.key for f, _ in files]


def test_an_expensive_gap_keeps_two_runs() -> None:
    files = [_file("p01"), _file("p05")]
    big = {DAY: {"p03": 200 << 20}}
    batches, _ = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), big)
    assert _spans(batches) == [("p01", "p01"), ("p05", "p05")]
    many_empty = WatchSettings(merge_gap_bytes=2 * PARTITION_COST_BYTES)  # three empty partitions cost more
    batches, _ = batch_files(files, ORDER, SOURCE_OF, many_empty, {DAY: {}})
    assert len(batches) == 2


def test_a_day_outside_the_listing_is_not_joined_blindly() -> None:
    files = [_file("p01"), _file("p05")]
    batches, _ = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), {})  # sizes of that day unknown
    assert len(batches) == 2


def test_over_budget_the_closest_spans_merge_and_other_days_wait() -> None:
    old = date(2026, 10, 1)
    files = [_file("p00"), _file("p02"), _file("p09"), _file("p03", old)]
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(max_runs_per_tick=1))
    assert _spans(batches) == [("p03", "p03")] and batches[0].first_day == old  # oldest date first
    assert deferred == 3
    batches, deferred = batch_files(files[:3], ORDER, SOURCE_OF, WatchSettings(max_runs_per_tick=2))
    assert _spans(batches) == [("p00", "p02"), ("p09", "p09")] and deferred == 0


def _days(*days: date) -> dict[date, dict[str, int]]:
    return {d: {} for d in days}


def test_a_trickle_over_several_days_is_one_run_when_the_partitions_between_are_cheap() -> None:
    # A load every 2 s from different sources and days: p01 on DAY, p02 and p03 the day before.
    before = DAY - timedelta(days=1)
    files = [_file("p01"), _file("p02", before), _file("p03", before)]
    sizes = {DAY: {"p01": 100, "p02": 3 << 20}, before: {"p02": 100, "p03": 100}}
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), sizes)
    assert deferred == 0 and len(batches) == 1
    (batch,) = batches
    assert (batch.first_day, batch.last_day, batch.first_source, batch.last_source) == (before, DAY, "p01", "p03")
    assert sorted(info.key for info, _ in batch.files) == sorted(info.key for info, _ in files)


def test_days_are_not_merged_over_a_big_partition_or_an_unknown_day() -> None:
    before = DAY - timedelta(days=1)
    files = [_file("p01"), _file("p03", before)]
    big = {DAY: {"p01": 100, "p03": 200 << 20}, before: {"p03": 100}}
    batches, _ = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), big)
    assert [(b.first_day, b.first_source) for b in batches] == [(before, "p03"), (DAY, "p01")]
    unknown = {DAY: {"p01": 100}}  # the day before is outside the hot window: its sizes are not known
    batches, _ = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), unknown)
    assert len(batches) == 2


def test_no_join_or_merge_reaches_into_partitions_a_run_is_writing() -> None:
    before = DAY - timedelta(days=1)
    files = [_file("p01"), _file("p05"), _file("p02", before)]
    busy = [(DAY, DAY, 3, 3)]  # a run in flight writes (DAY, p03)
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), _days(DAY, before), busy)
    assert deferred == 0
    assert sorted((b.first_day, b.last_day, b.first_source, b.last_source) for b in batches) == [
        (before, DAY, "p01", "p02"),  # p01 and the day before's p02 merge; p05 cannot join over p03
        (DAY, DAY, "p05", "p05"),
    ]
    one_run = WatchSettings(max_runs_per_tick=1)  # over budget, spans still do not merge over it
    batches, deferred = batch_files(files[:2], ORDER, SOURCE_OF, one_run, _days(DAY), busy)
    assert len(batches) == 1 and deferred == 1


def test_a_file_of_a_partition_a_run_is_writing_waits() -> None:
    files = [_file("p01"), _file("p03"), _file("p05")]
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), _days(DAY), [(DAY, DAY, 3, 3)])
    assert _spans(batches) == [("p01", "p01"), ("p05", "p05")] and deferred == 1


def test_run_key_names_the_file_versions() -> None:
    (a,) = batch_files([_file("p01")], ORDER, SOURCE_OF, WatchSettings())[0]
    (b,) = batch_files([_file("p01")], ORDER, SOURCE_OF, WatchSettings())[0]
    assert a.run_key == b.run_key and a.run_key.startswith("load-")


def test_cursor_round_trips() -> None:
    cursor = WatchCursor(sweep_after="p01/sales/2026-11-25/f.csv", sweeps=3)
    assert WatchCursor.loads(cursor.dumps()) == cursor
    assert WatchCursor.loads(None) == WatchCursor()
