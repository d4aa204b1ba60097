"""A clock the test moves by hand: the daemon's Clock protocol without waiting for real time."""

from __future__ import annotations

from datetime import datetime, timedelta


class FakeClock:
    """Wall and monotonic time that only move when the test says so."""

    def __init__(self, wall: datetime, mono: float = 1000.0) -> None:
        if wall.tzinfo is None:
            raise ValueError("FakeClock needs a tz-aware wall time")
        self._wall = wall
        self._mono = mono

    def wall(self) -> datetime:
        return self._wall

    def mono(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> datetime:
        """Move both clocks forward; returns the new wall time."""
        self._wall += timedelta(seconds=seconds)
        self._mono += seconds
        return self._wall

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (a suspend, an NTP step): monotonic time does not see it."""
        self._wall += timedelta(seconds=seconds)
