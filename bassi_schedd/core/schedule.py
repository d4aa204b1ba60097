"""The schedule engine: pure functions of (schedule, zone, after). No clock reads, no I/O.

Forms (keywords are case-insensitive, surrounding whitespace is ignored, ``Schedule.text`` keeps
what was written):

- 5-field cron, croniter 7 syntax (``0 9 * * MON``, ``*/10 * * * *``); no seconds or years field.
- ``@hourly`` ``@daily`` ``@midnight`` ``@weekly`` ``@monthly`` ``@yearly`` ``@annually`` (cron).
- ``every N{m,h,d}``: the instants ``t`` with ``t.timestamp() % interval == 0`` (aligned to the
  Unix epoch, so in real elapsed time; DST plays no part). At least 1m.
- ``daily HH:MM``, ``weekdays HH:MM`` (Mon-Fri), ``monday HH:MM`` (any day, full or 3-letter),
  ``monthly D HH:MM`` (D 1-31; months without day D are skipped, as cron does): stored as cron.
- ``parse_at("2026-12-25T10:00")``: a one-shot at that wall time in the task zone (or at the
  instant itself when an offset is given).

DST, in the task's zone (SPEC 4), decided as follows:

- A cron hour field is *fixed* when it names specific hours: numbers, ranges, lists (``2``,
  ``1,2``, ``9-17``; also every alias and ``@daily`` ``@weekly`` ``@monthly`` ``@yearly``). It is
  *elapsed* when it has a ``*`` or a step (``*``, ``*/2``, ``0-23/3``, ``8-18/2``) or covers all
  24 hours (``0-23``); ``@hourly`` is elapsed.
- Fixed, wall time skipped by spring-forward: runs once, at the first instant after the gap (the
  transition itself: 03:00 CEST in Berlin, 02:30 +11:00 on Lord Howe). Several skipped times of
  one gap, and a regular time at that same instant, make a single run.
- Fixed, wall time repeated by fall-back: runs once, at the first occurrence (the summer offset).
- Elapsed: every wall time that exists runs, in real-time order; in the repeated hour each slot
  runs twice (``0 * * * *`` in Berlin: 02:00 CEST and 02:00 CET); slots inside a gap do not
  exist and do not run (``0 * * * *`` goes 01:00 CET -> 03:00 CEST).
- ``at`` with a naive time resolves like a fixed time. ``every`` ignores DST.

Returned datetimes are aware in the task zone, with ``fold=1`` on a second occurrence. Python
compares two datetimes that share a tzinfo by wall time and ignores ``fold``, so compare, sort and
store them in UTC (``t.astimezone(UTC)``); this module does all its own work in UTC.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Literal
from zoneinfo import ZoneInfo

from bassi_schedd.core.cronexpr import (
    CronError,
    CronExpr,
    compile_cron,
    cron_instants,
    resolve_wall,
)


class ScheduleError(ValueError):
    """A schedule string that cannot be parsed; the message is a short reason."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule. ``text`` is exactly what the user wrote."""

    text: str
    kind: Literal["cron", "every", "at"]
    cron: str | None = None
    every_s: int | None = None
    at: datetime | None = None  # naive: wall time in the task's zone; aware: that instant


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# `at` must lie in these years: before 1970 is no time a daemon could have seen; the last one
# keeps every `at` (any zone or offset, at most a day from UTC) before HORIZON.
AT_YEARS = (1970, 9998)
# No schedule yields a time at or after this: far enough from datetime.max (9999-12-31) that
# converting a time to any zone, or adding a day of DST or jitter arithmetic, cannot overflow.
HORIZON = datetime(9999, 1, 2, tzinfo=UTC)
_TICK = timedelta(microseconds=1)
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_DAY_NUMBERS = {name: i for i, day in enumerate(_DAYS) for name in (day, day[:3])}
_UNITS_S = {
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600),
    **dict.fromkeys(("d", "day", "days"), 86400),
}
_SECOND_UNITS = ("s", "sec", "secs", "second", "seconds")
_MAX_EVERY_S = 3650 * 86400
# Longer than any real one (every minute listed in every field is about 400 characters).
MAX_SCHEDULE_CHARS = 1000
MAX_AT_CHARS = 64
_EVERY = re.compile(r"every\s+(\d+)\s*([a-z]+)")
_HHMM = re.compile(r"(\d{1,2}):(\d{2})")
_AT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_FORMS = "a 5-field cron expression, @daily, 'every 15m', 'daily 09:00', 'weekdays 09:00', "
_FORMS += "'monday 09:00' or 'monthly 1 08:00'"


# -- parsing ----------------------------------------------------------------------------------


def parse_schedule(text: str) -> Schedule:
    """Parse a ``schedule`` value: cron, @macro, ``every N{m,h,d}`` or an alias."""
    _check_length(text, MAX_SCHEDULE_CHARS)
    words = text.split()
    if not words:
        raise ScheduleError("empty schedule")
    head = words[0].lower()
    if head.startswith("@"):
        if len(words) != 1 or head not in _MACROS:
            raise ScheduleError(f"unknown macro {text.strip()!r}; use one of {' '.join(_MACROS)}")
        return _cron_schedule(text, _MACROS[head])
    if head == "every":
        return Schedule(text, "every", every_s=_parse_every(text))
    if head in ("daily", "weekdays", "monthly") or head in _DAY_NUMBERS:
        return _cron_schedule(text, _alias_cron(text, words))
    if head.isalpha() and len(head) > 3:
        raise ScheduleError(f"unknown schedule {text.strip()!r}: expected {_FORMS}")
    return _cron_schedule(text, " ".join(words))


def _cron_schedule(text: str, cron: str) -> Schedule:
    try:
        compile_cron(cron)  # validates, and warms the cache the daemon's ticks use
    except CronError as e:
        raise ScheduleError(f"bad cron expression {text.strip()!r}: {e}") from None
    return Schedule(text, "cron", cron=cron)


def _parse_every(text: str) -> int:
    m = _EVERY.fullmatch(" ".join(text.lower().split()))
    if m is None:
        raise ScheduleError(
            f"bad interval {text.strip()!r}: expected 'every N' and a unit m, h or d, "
            "e.g. 'every 15m'"
        )
    digits, unit = m.group(1).lstrip("0") or "0", m.group(2)
    if unit in _SECOND_UNITS:
        raise ScheduleError(f"bad interval {text.strip()!r}: seconds are not supported (min 1m)")
    if unit not in _UNITS_S:
        raise ScheduleError(f"bad interval {text.strip()!r}: unknown unit {unit!r} (use m, h or d)")
    if digits == "0":
        raise ScheduleError(f"bad interval {text.strip()!r}: the interval must be at least 1m")
    # int() refuses thousands of digits; anything over 9 is far beyond the limit anyway.
    n = int(digits) if len(digits) <= 9 else _MAX_EVERY_S
    if len(digits) > 9 or n * _UNITS_S[unit] > _MAX_EVERY_S:
        raise ScheduleError(f"bad interval {text.strip()!r}: at most 3650d")
    return n * _UNITS_S[unit]


def _alias_cron(text: str, words: list[str]) -> str:
    head = words[0].lower()
    usage = "monthly D HH:MM', e.g. 'monthly 1 08:00" if head == "monthly" else f"{head} HH:MM"
    want = 3 if head == "monthly" else 2
    if len(words) != want or _HHMM.fullmatch(words[-1]) is None:
        raise ScheduleError(f"bad schedule {text.strip()!r}: expected '{usage}'")
    hour, minute = (int(x) for x in words[-1].split(":"))
    if hour > 23 or minute > 59:
        raise ScheduleError(f"bad schedule {text.strip()!r}: {words[-1]} is not a time of day")
    if head == "daily":
        return f"{minute} {hour} * * *"
    if head == "weekdays":
        return f"{minute} {hour} * * 1-5"
    if head in _DAY_NUMBERS:
        return f"{minute} {hour} * * {_DAY_NUMBERS[head]}"
    if re.fullmatch(r"[0-9]{1,2}", words[1]) is None or not 1 <= int(words[1]) <= 31:
        raise ScheduleError(f"bad schedule {text.strip()!r}: the day must be 1-31")
    return f"{minute} {hour} {int(words[1])} * *"


def parse_at(text: str) -> Schedule:
    """Parse an ``at`` value (ISO date-time, local to the task zone) into a one-shot schedule."""
    _check_length(text, MAX_AT_CHARS)
    s = text.strip().upper()
    if _AT.match(s) is None:
        raise ScheduleError(
            f"bad at time {text.strip()!r}: expected a date and time like 2026-12-25T10:00"
        )
    try:
        at = datetime.fromisoformat(s)
    except ValueError as e:
        raise ScheduleError(f"bad at time {text.strip()!r}: {e}") from None
    if not AT_YEARS[0] <= at.year <= AT_YEARS[1]:
        raise ScheduleError(
            f"bad at time {text.strip()!r}: the year must be between {AT_YEARS[0]} and "
            f"{AT_YEARS[1]}"
        )
    return Schedule(text, "at", at=at)


def _check_length(text: str, most: int) -> None:
    # Messages quote the value: a hostile one must not flood the terminal or the log.
    if len(text) > most:
        raise ScheduleError(f"is {len(text)} characters long; at most {most} are allowed")


# -- times --------------------------------------------------------------------------------------


def scheduled_times(
    schedule: Schedule, zone: ZoneInfo, after: datetime, until: datetime, limit: int | None = None
) -> list[datetime]:
    """Scheduled times in ``(after, until]``, ascending, aware in ``zone``; at most ``limit``."""
    a, u = _utc(after, "after"), min(_utc(until, "until"), HORIZON - _TICK)
    if u <= a or (limit is not None and limit <= 0):
        return []
    if schedule.kind == "every":
        step = timedelta(seconds=_every_s(schedule))
        first, last = (a - _EPOCH) // step + 1, (u - _EPOCH) // step
        if limit is not None:
            last = min(last, first + limit - 1)
        return [(_EPOCH + k * step).astimezone(zone) for k in range(first, last + 1)]
    out = []
    for t in _instants(schedule, zone, a):
        if t > u:
            break
        out.append(t.astimezone(zone))
        if len(out) == limit:
            break
    return out


def next_times(schedule: Schedule, zone: ZoneInfo, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` scheduled times strictly after ``after``."""
    a = _utc(after, "after")
    return [t.astimezone(zone) for t in islice(_instants(schedule, zone, a), max(n, 0))]


def _instants(schedule: Schedule, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    """Every scheduled instant (UTC) strictly after UTC ``after`` and before ``HORIZON``.

    Total: near the ends of the calendar the arithmetic may overflow, which only means there
    are no more times (every caller reads "no next time" from an empty or short answer).
    """
    try:
        for t in _raw_instants(schedule, zone, after):
            if t >= HORIZON:
                return
            yield t
    except OverflowError:
        return


def _raw_instants(schedule: Schedule, zone: ZoneInfo, after: datetime) -> Iterator[datetime]:
    if schedule.kind == "every":
        step = timedelta(seconds=_every_s(schedule))
        k = (after - _EPOCH) // step + 1
        while True:
            yield _EPOCH + k * step
            k += 1
    elif schedule.kind == "at":
        if schedule.at is None:
            raise ScheduleError("an 'at' schedule without a time")
        if schedule.at.tzinfo is not None:
            instant: datetime | None = schedule.at.astimezone(UTC)
        else:
            instant = resolve_wall(schedule.at, zone, fixed=True)[0]
        if instant is not None and instant > after:
            yield instant
    else:
        yield from cron_instants(_compiled(schedule), zone, after)


def _compiled(schedule: Schedule) -> CronExpr:
    if schedule.cron is None:
        raise ScheduleError(f"schedule {schedule.text!r} has no cron expression")
    try:
        return compile_cron(schedule.cron)
    except CronError as e:
        raise ScheduleError(f"bad cron expression {schedule.cron!r}: {e}") from None


def _every_s(schedule: Schedule) -> int:
    if schedule.every_s is None or schedule.every_s < 60:
        raise ScheduleError(f"schedule {schedule.text!r} has no interval of at least 1m")
    return schedule.every_s


def _utc(t: datetime, name: str) -> datetime:
    if t.tzinfo is UTC:
        return t
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {t!r}")
    return t.astimezone(UTC)
