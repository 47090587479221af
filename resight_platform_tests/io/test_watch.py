"""Batching a tick's files into runs over sets of date × source partitions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from resight_platform.io.storage import ObjectInfo
from resight_platform.io.watch import Busy, WatchCursor, WatchSettings, batch_files
from resight_platform.sources.landing import LandingKey

DAY = date(2026, 11, 25)
ORDER = [f"p{i:03d}" for i in range(400)]  # ~400 registered providers, each its source partition
SOURCE_OF = {p: p for p in ORDER}


def _file(provider: str, day: date = DAY, feed: str = "sales") -> tuple[ObjectInfo, LandingKey]:
    key = f"{provider}/{feed}/{day}/f.csv"
    info = ObjectInfo(key=key, size=100, etag="e", last_modified=datetime(2026, 11, 26, tzinfo=UTC))
    return info, LandingKey(key=key, provider=provider, feed=feed, date=day, file_name="f.csv", format="csv")


def test_files_of_far_apart_providers_are_one_run_over_exactly_their_partitions() -> None:
    providers = ORDER[::10]  # 40 providers, ten apart: a range would span 391 sources
    files = [_file(p, DAY - timedelta(days=i % 3)) for i, p in enumerate(providers)]
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings())
    assert deferred == 0 and len(batches) == 1
    (batch,) = batches
    expected = sorted((landing.date, landing.provider) for _, landing in files)
    assert list(batch.cells) == expected and len(batch.cells) == 40
    assert batch.cells_by_feed() == {"sales": expected}
    assert batch.feeds == ("sales",) and batch.facts
    assert sorted(info.key for info, _ in batch.files) == sorted(info.key for info, _ in files)


def test_a_partition_with_several_files_and_feeds_is_one_cell() -> None:
    files = [_file("p001"), _file("p001", feed="catalog"), _file("p002", feed="stores")]
    (batch,), _ = batch_files(files, ORDER, SOURCE_OF, WatchSettings())
    assert batch.cells == ((DAY, "p001"), (DAY, "p002")) and batch.feeds == ("catalog", "sales", "stores")
    assert batch.cells_by_feed() == {"catalog": [(DAY, "p001")], "sales": [(DAY, "p001")], "stores": [(DAY, "p002")]}


def test_runs_hold_at_most_max_partitions_per_run_and_over_budget_the_newest_wait() -> None:
    files = [_file(p, DAY - timedelta(days=i)) for i, p in enumerate(ORDER[:25])]
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(max_partitions_per_run=10))
    assert [len(b.cells) for b in batches] == [10, 10, 5] and deferred == 0
    assert batches[0].cells[0][0] == DAY - timedelta(days=24)  # oldest dates first
    batches, deferred = batch_files(
        files, ORDER, SOURCE_OF, WatchSettings(max_partitions_per_run=10, max_runs_per_tick=2)
    )
    assert [len(b.cells) for b in batches] == [10, 10] and deferred == 5
    assert max(day for b in batches for day, _ in b.cells) == DAY - timedelta(days=5)  # the newest wait


def test_sources_with_only_sales_get_their_own_run_with_facts() -> None:
    before = DAY - timedelta(days=1)
    files = [
        _file("p010"),
        _file("p200", before),
        _file("p100"),  # p100 sent sales and, on another day, a catalog: its facts follow automation
        _file("p100", before, feed="catalog"),
        _file("p300", feed="stores"),
    ]
    batches, deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings())
    assert deferred == 0
    by_facts = {b.facts: b for b in batches}
    assert set(by_facts) == {True, False} and len(batches) == 2
    assert by_facts[True].cells == ((before, "p200"), (DAY, "p010"))
    assert by_facts[True].feeds == ("sales",)
    assert by_facts[False].cells == ((before, "p100"), (DAY, "p100"), (DAY, "p300"))
    # Split so one of its runs holds only sales, a mixed source's run still builds no facts.
    batches, _ = batch_files(files, ORDER, SOURCE_OF, WatchSettings(max_partitions_per_run=1))
    assert [(b.cells, b.feeds, b.facts) for b in batches if b.cells == ((DAY, "p100"),)] == [
        (((DAY, "p100"),), ("sales",), False)
    ]


def test_a_set_run_in_flight_blocks_exactly_its_partitions() -> None:
    files = [_file("p010"), _file("p020"), _file("p030")]
    busy = Busy(cells=frozenset({(DAY, "p010"), (DAY, "p030")}))  # a set run writes p010 and p030
    (batch,), deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), busy)
    assert batch.cells == ((DAY, "p020"),) and deferred == 2  # the neighbour between is free


def test_a_range_run_in_flight_blocks_its_rectangle() -> None:
    before = DAY - timedelta(days=1)
    files = [_file("p010"), _file("p020"), _file("p030"), _file("p020", before), _file("p020", DAY - timedelta(2))]
    busy = Busy(areas=((before, DAY, "p015", "p025"),))  # a backfill over two days × p015..p025
    (batch,), deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), busy)
    assert batch.cells == ((DAY - timedelta(2), "p020"), (DAY, "p010"), (DAY, "p030")) and deferred == 2
    unknown = Busy(areas=((before, DAY, "gone", "p025"),))  # an end not in the order: no range of ours
    (batch,), deferred = batch_files(files, ORDER, SOURCE_OF, WatchSettings(), unknown)
    assert len(batch.cells) == 5 and deferred == 0


def test_run_key_names_the_file_versions() -> None:
    (a,) = batch_files([_file("p001")], ORDER, SOURCE_OF, WatchSettings())[0]
    (b,) = batch_files([_file("p001")], ORDER, SOURCE_OF, WatchSettings())[0]
    assert a.run_key == b.run_key and a.run_key.startswith("load-")


def test_cursor_round_trips() -> None:
    cursor = WatchCursor(sweep_after="p01/sales/2026-11-25/f.csv", sweeps=3)
    assert WatchCursor.loads(cursor.dumps()) == cursor
    assert WatchCursor.loads(None) == WatchCursor()
