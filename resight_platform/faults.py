"""Failpoints: named places in the code where a fault-injection test can make this process die
(``SIGKILL``, as ``kill -9`` would) or stop (``SIGSTOP``, so that the test acts from outside, at a
known point, then kills it or lets it go on with ``SIGCONT``).

``RESIGHT_FAILPOINTS`` (read by :class:`~resight_platform.settings.Settings`) names the armed
points, comma-separated: ``silver_write`` kills at the first hit, ``fact_sales_copy@2`` at the
second, ``dim_product_upsert:pause`` stops the process instead. :func:`arm` is called where the
definitions are built (every process that runs assets builds them). Unarmed, :func:`failpoint` is
one test of an empty dict.

The points (``docs/architecture.md``, "Failpoints"): ``{layer}_write`` when a lake partition's file
is written and not yet swapped in (``silver_write``), ``{table}_copy`` when a day's rows are
copied into the warehouse and not yet committed (``fact_sales_copy``), ``{table}_upsert`` when
rows are upserted and not yet committed (``dim_product_upsert``).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterable

__all__ = ["arm", "armed", "failpoint", "parse"]

_armed: dict[str, tuple[int, str]] = {}
_hits: dict[str, int] = {}

ACTIONS = ("kill", "pause")


def parse(spec: str) -> dict[str, tuple[int, str]]:
    """``"a, b@2, c:pause"`` → ``{name: (hit that fires, action)}``; a bad item raises ``ValueError``."""
    points: dict[str, tuple[int, str]] = {}
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, _, action = item.partition(":")
        name, _, nth = name.partition("@")
        action = action or "kill"
        if not name or action not in ACTIONS or (nth and (not nth.isdigit() or int(nth) < 1)):
            raise ValueError(f"RESIGHT_FAILPOINTS: {item!r} is not name[@n][:kill|:pause]")
        points[name] = (int(nth or 1), action)
    return points


def arm(points: Iterable[tuple[str, tuple[int, str]]]) -> None:
    """Arm exactly ``points`` (``(name, (nth hit, action))``) in this process, counting hits anew."""
    _armed.clear()
    _hits.clear()
    _armed.update(points)


def armed() -> dict[str, tuple[int, str]]:
    return dict(_armed)


def failpoint(*parts: str) -> None:
    """Die or stop here when the point ``"_".join(parts)`` is armed and this is its chosen hit;
    else nothing (the name is not even built)."""
    if not _armed:
        return
    name = "_".join(parts)
    if name not in _armed:
        return
    _hits[name] = hits = _hits.get(name, 0) + 1
    nth, action = _armed[name]
    if hits != nth:
        return
    # To this thread: a signal sent to the process may be taken by another thread while this one
    # runs on past the point; the stop or the kill still takes the whole process.
    signal.pthread_kill(threading.get_ident(), signal.SIGSTOP if action == "pause" else signal.SIGKILL)
