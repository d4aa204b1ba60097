"""The schedule engine: pure functions of (schedule, zone, after). No clock reads, no I/O.

STUB: interface only; the Foundation work replaces the bodies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo


class ScheduleError(ValueError):
    """A schedule string that cannot be parsed; the message is a short reason."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule. ``text`` is exactly what the user wrote."""

    text: str
    kind: Literal["cron", "every", "at"]
    cron: str | None = None
    every_s: int | None = None
    at: datetime | None = None  # naive wall-clock time, interpreted in the task's zone


def parse_schedule(text: str) -> Schedule:
    """Parse a ``schedule`` value: cron, @macro, ``every N{m,h,d}`` or an alias."""
    raise NotImplementedError


def parse_at(text: str) -> Schedule:
    """Parse an ``at`` value (ISO date-time, local to the task zone) into a one-shot schedule."""
    raise NotImplementedError


def scheduled_times(
    schedule: Schedule, zone: ZoneInfo, after: datetime, until: datetime, limit: int | None = None
) -> list[datetime]:
    """Scheduled times in ``(after, until]``, ascending, aware in ``zone``; at most ``limit``."""
    raise NotImplementedError


def next_times(schedule: Schedule, zone: ZoneInfo, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` scheduled times strictly after ``after``."""
    raise NotImplementedError
