"""A memo for the daemon's per-minute question "what is due now?", so idle ticks iterate no cron.

Answers exactly as ``schedule.scheduled_times`` would; pure (no clock, no I/O).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bassi_schedd.core import schedule as schedule_mod
from bassi_schedd.core.schedule import Schedule


@dataclass(frozen=True)
class _Memo:
    schedule: Schedule
    zone: ZoneInfo
    start: datetime  # UTC
    times: list[datetime]  # UTC: the first len(times) scheduled instants after start
    complete: bool  # no scheduled instant after times[-1]


class DueCache:
    """Memo for the daemon's per-minute question: what is due in ``(after, until]``, per task.

    Per key it remembers the scheduled times after some earlier ``after`` plus a few beyond the
    window, and answers later windows from that list (no cron iteration) while ``after`` is not
    before the remembered start and ``until`` is within the list. Any change of schedule or zone,
    an ``after`` moved back, or an ``until`` past the list recomputes. Same answers as
    ``scheduled_times``; not thread-safe.
    """

    LOOKAHEAD = 8

    def __init__(self) -> None:
        self._memos: dict[Hashable, _Memo] = {}

    def due(
        self,
        key: Hashable,
        schedule: Schedule,
        zone: ZoneInfo,
        after: datetime,
        until: datetime,
        limit: int | None = None,
    ) -> list[datetime]:
        """Scheduled times in ``(after, until]``, exactly as ``scheduled_times`` gives them."""
        a, u = schedule_mod._utc(after, "after"), schedule_mod._utc(until, "until")
        if u <= a or (limit is not None and limit <= 0):
            return []
        m = self._memos.get(key)
        fresh = m is not None and m.schedule is schedule and m.zone is zone and m.start <= a
        if fresh and m is not None and m.times and u < m.times[0]:
            return []  # the hot path: nothing due yet
        if (
            m is None
            or (m.schedule is not schedule and m.schedule != schedule)
            or (m.zone is not zone and m.zone != zone)
            or a < m.start
            or (not m.complete and u > m.times[-1])
        ):
            m = self._fill(key, schedule, zone, a, u, limit)
        lo, hi = bisect_right(m.times, a), bisect_right(m.times, u)
        if limit is not None:
            hi = min(hi, lo + limit)
        return [t.astimezone(zone) for t in m.times[lo:hi]]

    def forget(self, key: Hashable) -> None:
        """Drop what is remembered for ``key`` (a removed task)."""
        self._memos.pop(key, None)

    def __len__(self) -> int:
        return len(self._memos)

    def _fill(
        self,
        key: Hashable,
        schedule: Schedule,
        zone: ZoneInfo,
        a: datetime,
        u: datetime,
        limit: int | None,
    ) -> _Memo:
        times: list[datetime] = []
        in_window, complete = 0, True
        for t in schedule_mod._instants(schedule, zone, a):
            times.append(t)
            if t <= u:
                in_window += 1
                if in_window == limit:
                    complete = False
                    break
            elif len(times) - in_window >= self.LOOKAHEAD:
                complete = False
                break
        m = _Memo(schedule, zone, a, times, complete)
        self._memos[key] = m
        return m
