"""Schedule translation for export: OnCalendar= lines and Kubernetes cron lines, exact or refused.

Real systemd compares the OnCalendar= side in tests/e2e/test_export_systemd.py; here the cron
side is checked against the engine itself (the normalized line means the same times)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from bassi_schedd.core.schedule import (
    ScheduleError,
    next_times,
    parse_at,
    parse_schedule,
    scheduled_times,
)
from bassi_schedd.export.schedules import (
    NotExactError,
    every_grid,
    kube_schedule,
    oncalendar,
)

BERLIN = "Europe/Berlin"


@pytest.mark.parametrize(
    ("schedule", "calendars", "cron"),
    [
        ("0 9 * * MON", ["Mon *-*-* 09:00:00 Europe/Berlin"], "0 9 * * 1"),
        ("*/10 * * * *", ["*-*-* *:00/10:00 Europe/Berlin"], "*/10 * * * *"),
        (
            "5,35 8-18/2 * JAN-MAR,DEC SAT,SUN",
            ["Sat,Sun *-01..03,12-* 08,10,12,14,16,18:05,35:00 Europe/Berlin"],
            "5,35 8,10,12,14,16,18 * 1-3,12 0,6",
        ),
        # both day fields restricted: cron runs on either, systemd needs a line for each
        (
            "0 9 1,15 * 1-5",
            ["*-*-01,15 09:00:00 Europe/Berlin", "Mon..Fri *-*-* 09:00:00 Europe/Berlin"],
            "0 9 1,15 * 1-5",
        ),
        ("0 0 * * 0,6", ["Sat,Sun *-*-* 00:00:00 Europe/Berlin"], "0 0 * * 0,6"),
        ("0 0 * * 0,1", ["Mon,Sun *-*-* 00:00:00 Europe/Berlin"], "0 0 * * 0,1"),
        ("@weekly", ["Sun *-*-* 00:00:00 Europe/Berlin"], "0 0 * * 0"),
        ("@hourly", ["*-*-* *:00:00 Europe/Berlin"], "0 * * * *"),
        ("@yearly", ["*-01-01 00:00:00 Europe/Berlin"], "0 0 1 1 *"),
        ("weekdays 09:30", ["Mon..Fri *-*-* 09:30:00 Europe/Berlin"], "30 9 * * 1-5"),
        ("monthly 31 08:00", ["*-*-31 08:00:00 Europe/Berlin"], "0 8 31 * *"),
        ("every 15m", ["*-*-* *:00/15:00 UTC"], "*/15 * * * *"),
        ("every 6h", ["*-*-* 00/6:00:00 UTC"], "0 */6 * * *"),
        ("every 1d", ["*-*-* 00:00:00 UTC"], "0 0 * * *"),
    ],
)
def test_translations(schedule: str, calendars: list[str], cron: str) -> None:
    parsed = parse_schedule(schedule)
    assert list(oncalendar(parsed, BERLIN)) == calendars
    zone = "Etc/UTC" if schedule.startswith("every") else BERLIN
    assert kube_schedule(parsed, BERLIN) == (cron, zone)


def test_every_that_varies_by_hour_is_two_calendars_and_no_cron() -> None:
    parsed = parse_schedule("every 90m")
    assert oncalendar(parsed, BERLIN) == (
        "*-*-* 00/3:00:00 UTC",
        "*-*-* 01,04,07,10,13,16,19,22:30:00 UTC",
    )
    with pytest.raises(NotExactError, match="different minutes in different hours"):
        kube_schedule(parsed, BERLIN)


def test_last_day_of_month_is_systemd_only() -> None:
    parsed = parse_schedule("0 0 L * *")
    assert oncalendar(parsed, BERLIN) == ("*-*~01 00:00:00 Europe/Berlin",)
    with pytest.raises(NotExactError, match="'L'"):
        kube_schedule(parsed, BERLIN)


def test_one_shot_is_a_dated_calendar_and_no_cron() -> None:
    assert oncalendar(parse_at("2026-12-25T10:00"), BERLIN) == (
        "2026-12-25 10:00:00 Europe/Berlin",
    )
    assert oncalendar(parse_at("2026-12-25T10:00+05:00"), BERLIN) == ("2026-12-25 05:00:00 UTC",)
    with pytest.raises(NotExactError, match="Job"):
        kube_schedule(parse_at("2026-12-25T10:00"), BERLIN)


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        ("every 7m", "does not divide a day"),
        ("every 2d", r"\(2 days\) does not divide a day"),
        ("0 9 * * 1#2", "n-th weekday"),
        ("0 9 15W * *", "nearest weekday"),
    ],
)
def test_what_has_no_exact_equivalent_is_refused(schedule: str, reason: str) -> None:
    parsed = parse_schedule(schedule)
    for translate in (oncalendar, kube_schedule):
        with pytest.raises(NotExactError, match=reason):
            translate(parsed, BERLIN)


@pytest.mark.parametrize("every_s", [60 * d for d in range(1, 1441) if 1440 % d == 0])
def test_every_grid_is_exactly_the_intervals_times_of_a_day(every_s: int) -> None:
    day = datetime(2026, 6, 10, tzinfo=UTC)
    parsed = parse_schedule(f"every {every_s // 60}m")
    want = scheduled_times(
        parsed,
        ZoneInfo("UTC"),
        day - timedelta(seconds=1),
        day + timedelta(days=1) - timedelta(seconds=1),
    )
    got = sorted(
        day.replace(hour=h, minute=m)
        for hours, minutes in every_grid(every_s)
        for h in hours
        for m in minutes
    )
    assert got == [t.astimezone(UTC) for t in want]


def _field(lo: int, hi: int) -> st.SearchStrategy[str]:
    value = st.integers(lo, hi)
    part = st.one_of(
        value.map(str),
        st.tuples(value, value).map(lambda ab: f"{min(ab)}-{max(ab)}"),
        st.tuples(value, st.integers(2, hi - lo)).map(lambda vs: f"{vs[0]}/{vs[1]}"),
        st.integers(2, hi - lo).map(lambda s: f"*/{s}"),
    )
    return st.one_of(st.just("*"), st.lists(part, min_size=1, max_size=3).map(",".join))


@settings(max_examples=150, deadline=None)
@given(
    st.tuples(_field(0, 59), _field(0, 23), _field(1, 31), _field(1, 12), _field(0, 6)),
    st.sampled_from(["UTC", BERLIN, "America/New_York"]),
)
# every day of the month, written out, and a weekday: cron runs daily (either field matches)
@example(("0", "0", "1-31", "*", "1"), "UTC")
def test_kube_cron_means_the_same_times_to_the_engine(fields: tuple[str, ...], zone: str) -> None:
    try:
        original = parse_schedule(" ".join(fields))
    except ScheduleError:  # e.g. "31 in February only": never matches
        assume(False)
        raise
    line, tz = kube_schedule(original, zone)
    assert tz == zone
    translated = parse_schedule(line)
    start = datetime(2026, 5, 1, tzinfo=UTC)  # no DST change in the next weeks in any zone
    z = ZoneInfo(zone)
    assert next_times(translated, z, start, 40) == next_times(original, z, start, 40)
