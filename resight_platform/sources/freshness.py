"""Which sources are late: each registered (provider, feed) is expected to deliver every
``expected_every_hours`` (``sources.csv``); a source whose last delivery is older than that plus a
grace period is stale. A delivery is any file the landing zone received for the source, loaded or
dead-lettered (a bad file is late data, not missing data). No Dagster here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from resight_platform.sources.registry import Registry

__all__ = ["Staleness", "stale_sources"]


@dataclass(frozen=True)
class Staleness:
    """A source that has not delivered within its window."""

    provider: str
    feed: str
    last_delivery: datetime | None  # None: never delivered since the platform started watching
    expected_every_hours: int
    overdue: timedelta

    def describe(self) -> str:
        last = self.last_delivery.isoformat(timespec="minutes") if self.last_delivery else "never"
        hours = self.overdue.total_seconds() / 3600
        every = self.expected_every_hours
        return f"{self.provider}/{self.feed}: last delivery {last}, due every {every} h, {hours:.1f} h overdue"


def stale_sources(
    registry: Registry,
    last_delivery: Mapping[tuple[str, str], datetime],
    now: datetime,
    *,
    grace: timedelta = timedelta(hours=2),
    watching_since: datetime | None = None,
    feed: str | None = None,
) -> list[Staleness]:
    """The active registered sources (of ``feed``, or all) overdue at ``now``, most overdue first.

    A source that never delivered counts from ``watching_since`` (when the platform started
    receiving files; ``None``: such sources are not judged)."""
    stale = []
    for (provider, source_feed), source in sorted(registry.sources.items()):
        if not source.active or (feed is not None and source_feed != feed):
            continue
        window = timedelta(hours=source.expected_every_hours) + grace
        last = last_delivery.get((provider, source_feed))
        since = last if last is not None else watching_since
        if since is None or now - since <= window:
            continue
        stale.append(Staleness(provider, source_feed, last, source.expected_every_hours, now - since - window))
    return sorted(stale, key=lambda s: s.overdue, reverse=True)
