"""Which days a source is *not* expected to deliver: the partitions the closing job closes.

Dagster shows every date × provider partition without a materialisation as *missing*: days before
a partner existed, the six days a week a weekly feed is not expected, feeds a partner does not
send. Issue 21: a day a source is expected to deliver and did not is a real gap, and stays
missing; a day it is not expected to deliver is closed (``defs/closing.py`` records a 0-row
materialisation with the reason). This module decides which days, from the registry and the
delivered days alone (no Dagster, no database), for one (provider, feed):

- a day with a delivery (a file loaded or dead-lettered for it) is never closed;
- ``no_such_feed``: the provider does not send this feed (no ``sources.csv`` row): every day;
- ``before_onboarding``: before the provider's ``onboarded`` date, or, when it gives none, before
  the first delivered day; a source never delivered and with no ``onboarded``: every day;
- ``inactive``: the source is registered inactive: every day (the registry has no date it stopped);
- ``not_expected``: a source delivering every N = ceil(expected_every_hours / 24) > 1 days is
  expected on day d iff (d − anchor) % N == 0, the anchor being the last delivered day ≤ d (or
  ``onboarded`` when none): a partner whose weekly day moves is followed from its next delivery.
  The other days are closed.

A daily source's absent days from onboarding on are never closed: they are the real gaps. Days
after ``last`` (today, the days not yet due) are not judged at all.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Collection, Iterator
from datetime import date, timedelta

from resight_platform.sources.registry import Source

__all__ = [
    "BEFORE_ONBOARDING",
    "INACTIVE",
    "NOT_EXPECTED",
    "NO_SUCH_FEED",
    "REASONS",
    "cadence_days",
    "days_to_close",
]

BEFORE_ONBOARDING = "before_onboarding"
NO_SUCH_FEED = "no_such_feed"
INACTIVE = "inactive"
NOT_EXPECTED = "not_expected"
REASONS = (BEFORE_ONBOARDING, NO_SUCH_FEED, INACTIVE, NOT_EXPECTED)


def cadence_days(expected_every_hours: int) -> int:
    """Days between two expected deliveries: 24 h or less is daily (1)."""
    return max(1, math.ceil(expected_every_hours / 24))


def _days(first: date, last: date) -> Iterator[date]:
    for n in range((last - first).days + 1):
        yield first + timedelta(days=n)


def days_to_close(source: Source | None, delivered: Collection[date], first: date, last: date) -> dict[date, str]:
    """The days of ``first``..``last`` (inclusive) to close for one (provider, feed), with the
    reason. ``source`` is its registry entry (None: the provider does not send the feed);
    ``delivered`` the business dates with a delivery: those in the range, and for the rules to see
    before it, at least the first ever and the last before ``first``."""
    if last < first:
        return {}
    done = set(delivered)
    if source is None:
        return {day: NO_SUCH_FEED for day in _days(first, last) if day not in done}
    ordered = sorted(done)
    onboarded = source.onboarded or (ordered[0] if ordered else None)
    every = cadence_days(source.expected_every_hours)
    out: dict[date, str] = {}
    for day in _days(first, last):
        if day in done:
            continue
        if onboarded is None or day < onboarded:
            out[day] = BEFORE_ONBOARDING
        elif not source.active:
            out[day] = INACTIVE
        elif every > 1:
            at = bisect.bisect_right(ordered, day)
            anchor = ordered[at - 1] if at else onboarded
            if (day - anchor).days % every:
                out[day] = NOT_EXPECTED
    return out
