"""The one marker a partition stream may carry besides frames (Dagster-free: ingestion yields it,
the lake's writers obey it)."""

from __future__ import annotations

__all__ = ["RESTART", "RestartPartition"]


class RestartPartition:
    """A stream item that discards what was written of its partition so far (a source file failed
    after some of its rows were streamed); the chunks that follow write the partition again."""

    def __repr__(self) -> str:
        return "RESTART"


#: The one :class:`RestartPartition` item.
RESTART = RestartPartition()
