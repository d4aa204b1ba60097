"""The daemon's one source of time: wall (tz-aware UTC) and monotonic, injected everywhere.

Decisions take the tick's ``now``; record timestamps and deadlines read this clock. Tests pass
a fake one (tests/support/fakeclock.py) and move time by hand instead of waiting for it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Wall and monotonic time."""

    def wall(self) -> datetime:
        """Current time, tz-aware UTC."""
        ...

    def mono(self) -> float:
        """Monotonic seconds, for deadlines (never jumps with the wall clock)."""
        ...


class SystemClock:
    """The real clocks."""

    def wall(self) -> datetime:
        """Current time, tz-aware UTC."""
        return datetime.now(UTC)

    def mono(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()


SYSTEM_CLOCK = SystemClock()
