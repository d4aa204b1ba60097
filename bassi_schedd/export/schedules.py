"""A parsed schedule as systemd ``OnCalendar=`` expressions or a Kubernetes cron line, exactly.

Pure: no clock, no I/O. Exact means the same set of wall-clock times in the same zone as
``core.schedule`` computes (DST transitions aside: README "One timer per task with systemd").
A schedule that has no exact equivalent raises :class:`NotExactError` with the reason; nothing is
approximated.

Cron expressions are translated from the engine's own expanded field values
(``core.cronexpr.CronExpr``), never re-parsed from the text, so names, ranges, steps and macros
mean here what they mean to the daemon. Classic cron runs a day when the day-of-month *or* the
day-of-week matches if both are restricted: systemd ANDs the parts of one expression, so that
case becomes two ``OnCalendar=`` lines; Kubernetes (robfig/cron) ORs them as cron does, as
long as neither field is written as ``*``, which is why restricted fields are always written
as explicit values.

``every N`` is aligned to the Unix epoch, i.e. to UTC midnight: exact as a calendar when N
divides a day (the times of day repeat each day, in UTC); ``every 90m`` needs one
``OnCalendar=`` line per distinct minute pattern and has no single cron line.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC

from bassi_schedd.core.cronexpr import CronError, CronExpr, compile_cron
from bassi_schedd.core.schedule import Schedule

DAY_S = 86400
_SD_DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")  # cron numbering, 0 = Sunday
# Kubernetes CronJob accepts any tz database name; `every` is anchored in UTC.
UTC_ZONE = "Etc/UTC"


class NotExactError(ValueError):
    """The schedule has no exact equivalent on the target; the message says why."""


# -- systemd OnCalendar= --------------------------------------------------------------------------


def oncalendar(schedule: Schedule, zone: str) -> tuple[str, ...]:
    """The ``OnCalendar=`` values (one or more; a timer fires at their union) for ``schedule``
    in the IANA zone ``zone``."""
    if schedule.kind == "every":
        return tuple(
            f"*-*-* {_sd_values(hours, 0, 23)}:{_sd_values(minutes, 0, 59)}:00 UTC"
            for hours, minutes in every_grid(_every_s(schedule))
        )
    if schedule.kind == "at":
        if schedule.at is None:
            raise NotExactError("a one-shot schedule without a time")
        if schedule.at.tzinfo is not None:  # an instant with an offset: say it in UTC
            return (f"{schedule.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC",)
        return (f"{schedule.at:%Y-%m-%d %H:%M:%S} {zone}",)
    cx = _cron(schedule)
    time = f"{_sd_values(cx.hours, 0, 23)}:{_sd_values(cx.minutes, 0, 59)}:00 {zone}"
    month = _sd_values(sorted(cx.months), 1, 12)
    dows = None if cx.dows is None else _sd_weekdays(cx.dows)
    if cx.doms is None:  # day-of-week alone (or no day restriction at all)
        prefix = f"{dows} " if dows else ""
        return (f"{prefix}*-{month}-* {time}",)
    lines = []
    if cx.doms:
        lines.append(f"*-{month}-{_sd_values(cx.doms, 1, 31, full_star=False)} {time}")
    if cx.last_dom:
        lines.append(f"*-{month}~01 {time}")  # systemd's "~01": the last day of the month
    if dows is not None:  # both restricted: cron runs on either, so one line for each
        lines.append(f"{dows} *-{month}-* {time}")
    return tuple(lines)


def _sd_values(values: Sequence[int], lo: int, hi: int, *, full_star: bool = True) -> str:
    """``*``, ``00/15`` (a step over the whole range) or a list of values and ``a..b`` ranges."""
    vals = sorted(values)
    if full_star and vals == list(range(lo, hi + 1)):
        return "*"
    step = _full_step(vals, lo, hi)
    if full_star and step:
        return f"{lo:02d}/{step}"
    return ",".join(
        f"{a:02d}" if a == b else f"{a:02d}..{b:02d}" if b > a + 1 else f"{a:02d},{b:02d}"
        for a, b in _runs(vals)
    )


def _sd_weekdays(dows: frozenset[int]) -> str:
    # systemd weeks start on Monday: Sat..Sun is a range there, Sun..Mon is not.
    order = sorted((d - 1) % 7 for d in dows)  # Mon=0 .. Sun=6
    names = [_SD_DAYS[(i + 1) % 7] for i in range(7)]
    return ",".join(
        names[a] if a == b else f"{names[a]}..{names[b]}" if b > a + 1 else f"{names[a]},{names[b]}"
        for a, b in _runs(order)
    )


# -- Kubernetes cron --------------------------------------------------------------------------


def kube_schedule(schedule: Schedule, zone: str) -> tuple[str, str]:
    """``(schedule, timeZone)`` for a Kubernetes CronJob: a 5-field cron line in the form the
    CronJob controller parses (numbers, ``*``, ``a-b``, lists, ``*/n``) and the zone it is in."""
    if schedule.kind == "at":
        raise NotExactError(
            "a one-shot 'at' task has no CronJob equivalent (cron has no year); "
            "create a Kubernetes Job for it instead"
        )
    if schedule.kind == "every":
        grid = every_grid(_every_s(schedule))
        if len(grid) != 1:
            raise NotExactError(
                f"{schedule.text.strip()!r} fires at different minutes in different hours, "
                "which one cron line cannot say; use an interval that divides 60m, or whole "
                "hours that divide 24h"
            )
        hours, minutes = grid[0]
        return f"{_cron_values(minutes, 0, 59)} {_cron_values(hours, 0, 23)} * * *", UTC_ZONE
    cx = _cron(schedule)
    if cx.last_dom:
        raise NotExactError("'L' (the last day of the month) is not understood by Kubernetes cron")
    fields = (
        _cron_values(cx.minutes, 0, 59),
        _cron_values(cx.hours, 0, 23),
        "*" if cx.doms is None else _cron_values(cx.doms, 1, 31, full_star=False),
        _cron_values(sorted(cx.months), 1, 12),
        "*" if cx.dows is None else _cron_values(sorted(cx.dows), 0, 6, full_star=False),
    )
    return " ".join(fields), zone


def _cron_values(values: Sequence[int], lo: int, hi: int, *, full_star: bool = True) -> str:
    vals = sorted(values)
    if full_star and vals == list(range(lo, hi + 1)):
        return "*"
    step = _full_step(vals, lo, hi)
    if full_star and step:
        return f"*/{step}"
    return ",".join(
        str(a) if a == b else f"{a}-{b}" if b > a + 1 else f"{a},{b}" for a, b in _runs(vals)
    )


# -- shared -----------------------------------------------------------------------------------


def every_grid(every_s: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """``every`` as (hours, minutes) products in UTC whose union is the times of each day."""
    if every_s < 60 or every_s % 60 or DAY_S % every_s:
        days = f" ({every_s // DAY_S} days)" if every_s % DAY_S == 0 else ""
        raise NotExactError(
            f"an interval of {every_s}s{days} does not divide a day, so its times do not "
            "repeat daily and no calendar expression matches them (counted from 1970-01-01)"
        )
    by_hour: dict[int, list[int]] = {}
    for t in range(0, DAY_S, every_s):
        by_hour.setdefault(t // 3600, []).append(t % 3600 // 60)
    groups: dict[tuple[int, ...], list[int]] = {}
    for hour, minutes in by_hour.items():
        groups.setdefault(tuple(minutes), []).append(hour)
    return [(tuple(hours), minutes) for minutes, hours in groups.items()]


def _cron(schedule: Schedule) -> CronExpr:
    if schedule.cron is None:
        raise NotExactError(f"schedule {schedule.text!r} has no cron expression")
    try:
        cx = compile_cron(schedule.cron)
    except CronError as e:
        raise NotExactError(f"bad cron expression: {e}") from None
    if not cx.simple:
        raise NotExactError(
            "'W' (nearest weekday) and '#' (n-th weekday of the month) have no exact "
            "equivalent; list the days instead"
        )
    return cx


def _every_s(schedule: Schedule) -> int:
    if schedule.every_s is None:
        raise NotExactError(f"schedule {schedule.text!r} has no interval")
    return schedule.every_s


def _full_step(vals: list[int], lo: int, hi: int) -> int | None:
    """``s`` when ``vals`` is exactly lo, lo+s, lo+2s... up to ``hi`` (s > 1)."""
    if len(vals) < 2 or vals[0] != lo:
        return None
    step = vals[1] - vals[0]
    return step if step > 1 and vals == list(range(lo, hi + 1, step)) else None


def _runs(vals: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs of sorted distinct ``vals`` as (first, last)."""
    runs: list[tuple[int, int]] = []
    for v in vals:
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs
