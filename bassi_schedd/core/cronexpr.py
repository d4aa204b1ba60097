"""5-field cron expressions: validation (croniter 7) and fast wall-clock iteration.

croniter parses and validates every expression and defines the semantics (names, ranges, steps,
``?``, ``L``, and day-of-month OR day-of-week when both are restricted). Iteration runs on naive
wall-clock datetimes, then ``cron_instants`` maps each wall time to instants in the task zone
with the DST rules documented in ``schedule.py`` (croniter's own DST handling is not used).
Expressions made of numbers, ranges, lists, steps and ``L`` (last day of the month) iterate with
a small matcher over croniter's expanded value sets, some ten times faster than
``croniter.get_next``; the rest (``W``, ``#``) iterate with croniter itself. The matcher and
croniter agree (tests/unit/test_schedule.py has a differential property test).
"""

from __future__ import annotations

import heapq
import re
from bisect import bisect_left
from calendar import monthrange
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

from croniter import CroniterBadDateError, CroniterError, croniter

# (name, lowest, highest, number of values, how to write the range in a message)
FIELDS = (
    ("minute", 0, 59, 60, "0-59"),
    ("hour", 0, 23, 24, "0-23"),
    ("day-of-month", 1, 31, 31, "1-31"),
    ("month", 1, 12, 12, "1-12 or JAN-DEC"),
    ("day-of-week", 0, 7, 7, "0-7 or SUN-SAT"),
)
_ONE_MINUTE = timedelta(minutes=1)
_ONE_DAY = timedelta(days=1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Validation guarantees a match exists; this only bounds iteration of hand-built schedules.
_MAX_SEARCH_YEARS = 30
_STEP = re.compile(r"/(\d+)")
_LONG_NUMBER = re.compile(r"\d{5}")
_RANDOM = re.compile(r"(?<![a-z])[hr](?![a-z])", re.IGNORECASE)  # not the h/r inside THU, MAR


class CronError(ValueError):
    """An invalid cron expression; the message says which field and why."""


@dataclass(frozen=True)
class CronExpr:
    """A validated cron expression, ready to iterate."""

    expr: str
    fixed_hour: bool  # True: specific hours (DST-adjusted); False: `*`, steps, all 24 hours
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    doms: tuple[int, ...] | None  # ascending; None: unrestricted
    last_dom: bool  # `L` in day-of-month: the month's last day matches too
    months: frozenset[int]
    dows: frozenset[int] | None  # cron numbering, 0 = Sunday; None: unrestricted
    simple: bool  # False: needs croniter to iterate (W, #)

    def iter_after(self, start: datetime) -> Iterator[datetime]:
        """Naive wall-clock times matching the expression, strictly after naive ``start``."""
        if not self.simple:
            yield from self._iter_croniter(start)
            return
        t: datetime | None = start
        while t is not None:
            t = self.next_after(t)
            if t is not None:
                yield t

    def next_after(self, start: datetime) -> datetime | None:
        """The first matching naive wall time strictly after ``start`` (simple expressions)."""
        if start.second or start.microsecond:
            start = start.replace(second=0, microsecond=0)
        t = start + _ONE_MINUTE
        day = t.date()
        if self._day_matches(day):
            hm = self._first_time_from(t.hour, t.minute)
            if hm is not None:
                return datetime(day.year, day.month, day.day, hm[0], hm[1])
        last = date(min(day.year + _MAX_SEARCH_YEARS, 9999), 1, 1)
        day += _ONE_DAY
        while day < last:
            if day.month not in self.months:
                day = _first_of_next_month(day)
            elif self.dows is None and self.doms is not None:  # jump straight to the next day
                dom = self._next_dom(day)
                if dom is None:
                    day = _first_of_next_month(day)
                else:
                    return datetime(day.year, day.month, dom, self.hours[0], self.minutes[0])
            elif self._day_matches(day):
                return datetime(day.year, day.month, day.day, self.hours[0], self.minutes[0])
            else:
                day += _ONE_DAY
        return None

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        dom_ok = self.doms is None or day.day in self.doms
        if self.last_dom and not dom_ok:
            dom_ok = (day + _ONE_DAY).day == 1
        dow_ok = self.dows is None or (day.weekday() + 1) % 7 in self.dows
        if self.doms is not None and self.dows is not None:
            return dom_ok or dow_ok  # classic cron: both restricted means either one
        return dom_ok and dow_ok

    def _next_dom(self, day: date) -> int | None:
        assert self.doms is not None
        month_days = monthrange(day.year, day.month)[1]
        i = bisect_left(self.doms, day.day)
        dom = self.doms[i] if i < len(self.doms) and self.doms[i] <= month_days else None
        if dom is None and self.last_dom:
            return month_days
        return dom

    def _first_time_from(self, hour: int, minute: int) -> tuple[int, int] | None:
        i = bisect_left(self.hours, hour)
        if i < len(self.hours) and self.hours[i] == hour:
            j = bisect_left(self.minutes, minute)
            if j < len(self.minutes):
                return hour, self.minutes[j]
            i += 1
        if i < len(self.hours):
            return self.hours[i], self.minutes[0]
        return None

    def _iter_croniter(self, start: datetime) -> Iterator[datetime]:
        it = croniter(self.expr, start.replace(tzinfo=None))
        while True:
            try:
                t = it.get_next(datetime)
            except CroniterBadDateError:
                return
            yield t


def _first_of_next_month(day: date) -> date:
    return date(day.year + 1, 1, 1) if day.month == 12 else date(day.year, day.month + 1, 1)


@lru_cache(maxsize=65536)  # big enough for every task's expression: a miss re-validates
def compile_cron(expr: str) -> CronExpr:
    """Validate a 5-field cron expression and prepare it for iteration; raises CronError."""
    fields = expr.split()
    if len(fields) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}"
            + ("; seconds and years are not supported" if len(fields) in (6, 7) else "")
        )
    for i, field in enumerate(fields):
        _check_field(i, field)
    normal = " ".join(fields)
    try:
        it = croniter(normal, datetime(2000, 1, 1))
    except CroniterError as e:  # each field is fine alone; report croniter's own words
        raise CronError(_clean(str(e))) from None
    try:
        it.get_next(datetime)
    except CroniterBadDateError:
        raise CronError("it never matches (no such date)") from None
    exp = it.expanded
    simple = not it.nth_weekday_of_month and not getattr(it, "nearest_weekday", None)
    simple = simple and all(
        v == "*" or isinstance(v, int) or (i == 2 and v == "l")
        for i, values in enumerate(exp)
        for v in values
    )
    return CronExpr(
        expr=normal,
        fixed_hour=_is_fixed_hour(fields[1], exp[1]),
        minutes=_values(exp[0], 0, 59),
        hours=_values(exp[1], 0, 23),
        doms=None if exp[2][0] == "*" else tuple(sorted(set(_ints(exp[2])))),
        last_dom="l" in exp[2],
        months=frozenset(_values(exp[3], 1, 12)),
        dows=None if exp[4][0] == "*" else frozenset(v % 7 for v in _ints(exp[4])),
        simple=simple,
    )


def _is_fixed_hour(field: str, expanded: Sequence[object]) -> bool:
    """Specific hours (``9``, ``1,2``, ``9-17``) are fixed; ``*``, steps and all-24 are not."""
    return not ("*" in field or "/" in field or expanded[0] == "*" or len(expanded) == 24)


def _values(expanded: Sequence[object], lo: int, hi: int) -> tuple[int, ...]:
    if expanded[0] == "*":
        return tuple(range(lo, hi + 1))
    return tuple(sorted(_ints(expanded)))


def _ints(expanded: Sequence[object]) -> list[int]:
    return [v for v in expanded if isinstance(v, int)]


def _check_field(index: int, field: str) -> None:
    """Validate one field alone so the message can name it."""
    name, _lo, _hi, count, shown = FIELDS[index]
    if _LONG_NUMBER.search(field):  # int() (ours, croniter's) refuses thousands of digits
        raise CronError(f"{name} must be {shown}")
    if _RANDOM.search(field):
        raise CronError(
            f"{name} field {field!r}: random (R) and hashed (H) values are not supported"
        )
    for step in _STEP.findall(field):
        if int(step) == 0:
            raise CronError(f"{name} field {field!r}: a step must be at least 1")
        if int(step) >= count:
            raise CronError(
                f"{name} field {field!r}: step {int(step)} is not smaller than the "
                f"{count} values of {name} ({shown}); for a fixed interval use 'every'"
            )
    probe = ["*"] * 5
    probe[index] = field
    try:
        croniter(" ".join(probe), datetime(2000, 1, 1))
    except CroniterError as e:
        message = str(e)
        if "out of range" in message:
            raise CronError(f"{name} must be {shown}") from None
        detail = _clean(message)
        sep = " " if detail.startswith("is ") else ": "
        raise CronError(f"{name} field {field!r}{sep}{detail}") from None


def _clean(message: str) -> str:
    """croniter messages start with the expression in brackets; drop that and field numbers."""
    message = re.sub(r"^\[[^\]]*\]\s*", "", message)
    message = re.sub(r"\s*in field \d+", "", message)
    message = message.replace("is not acceptable", "is not valid")
    return message or "not valid"


# -- wall times to instants (the DST rules; see schedule.py) ---------------------------


def cron_instants(cx: CronExpr, zone: tzinfo, after: datetime) -> Iterator[datetime]:
    """Scheduled UTC instants strictly after UTC ``after``, ascending, DST rules applied."""
    start = after.astimezone(zone).replace(tzinfo=None, fold=0)
    # Inside a repeated hour, walls earlier than after's own can still have a later occurrence.
    start -= max(_offset(start, zone, 0) - _offset(start, zone, 1), timedelta(0))
    later: list[datetime] = []  # second occurrences, released in real-time order
    last = after
    day: date | None = None
    day_offset: timedelta | None = None
    for wall in cx.iter_after(start):
        if wall.date() != day:
            day = wall.date()
            day_offset = _steady_offset(zone, day)
        first: datetime | None
        if day_offset is not None:  # the common case: no transition that day
            first, second = (wall - day_offset).replace(tzinfo=UTC), None
        else:
            first, second = resolve_wall(wall, zone, cx.fixed_hour)
        if first is None:
            continue
        while later and later[0] <= first:
            t = heapq.heappop(later)
            if t > last:
                yield t
                last = t
        if first > last:
            yield first
            last = first
        if second is not None:
            heapq.heappush(later, second)
    for t in sorted(later):
        if t > last:
            yield t
            last = t


def resolve_wall(
    wall: datetime, zone: tzinfo, fixed: bool
) -> tuple[datetime | None, datetime | None]:
    """A naive wall time's UTC instants under the DST rules: (first, second occurrence)."""
    off0, off1 = _offset(wall, zone, 0), _offset(wall, zone, 1)
    base = wall.replace(tzinfo=UTC)
    if off0 == off1:
        return base - off0, None
    if off0 > off1:  # repeated by fall-back; fold=0 is the earlier (summer) occurrence
        return base - off0, None if fixed else base - off1
    if not fixed:  # skipped by spring-forward: the wall time never happens
        return None, None
    return _gap_end(zone, base - off1, base - off0), None


def _gap_end(zone: tzinfo, before: datetime, after: datetime) -> datetime:
    """The transition instant between UTC ``before`` (old offset) and ``after`` (new offset)."""
    old = before.astimezone(zone).utcoffset()
    lo, hi = int((before - _EPOCH).total_seconds()), int((after - _EPOCH).total_seconds())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if (_EPOCH + timedelta(seconds=mid)).astimezone(zone).utcoffset() == old:
            lo = mid
        else:
            hi = mid
    return _EPOCH + timedelta(seconds=hi)


@lru_cache(maxsize=8192)  # many tasks share zones and days
def _steady_offset(zone: tzinfo, day: date) -> timedelta | None:
    """The zone's UTC offset on ``day`` if it is the same all day long (no transition)."""
    midnight = datetime(day.year, day.month, day.day)
    ends = (midnight, midnight + _ONE_DAY)
    offsets = {_offset(t, zone, fold) for t in ends for fold in (0, 1)}
    return offsets.pop() if len(offsets) == 1 else None


def _offset(wall: datetime, zone: tzinfo, fold: int) -> timedelta:
    off = wall.replace(tzinfo=zone, fold=fold).utcoffset()
    assert off is not None
    return off
