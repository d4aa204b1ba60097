"""The schedule engine: forms, errors, window semantics, DST rules, the memo, croniter agreement.

Expected instants are written out by hand as UTC (derived from the published DST rules of each
zone), never computed by the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bassi_schedd.core import schedule as sched_mod
from bassi_schedd.core.cronexpr import compile_cron
from bassi_schedd.core.duecache import DueCache
from bassi_schedd.core.schedule import (
    Schedule,
    ScheduleError,
    next_times,
    parse_at,
    parse_schedule,
    scheduled_times,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
KOLKATA = ZoneInfo("Asia/Kolkata")


def utc(text: str) -> datetime:
    """'2026-03-29T01:00' as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(text: str, zone: ZoneInfo) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def utc_seq(first: str, last: str, minutes: int) -> list[str]:
    """Regular UTC instants first..last (inclusive), as strings like the expectations."""
    out, t = [], utc(first)
    while t <= utc(last):
        out.append(t.strftime("%Y-%m-%dT%H:%M"))
        t += timedelta(minutes=minutes)
    return out


def as_utc(times: list[datetime]) -> list[str]:
    return [t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") for t in times]


def times(text: str, zone: ZoneInfo, after: datetime, until: datetime, **kw: int) -> list[str]:
    return as_utc(scheduled_times(parse_schedule(text), zone, after, until, **kw))


# -- parsing ----------------------------------------------------------------------------------

FORMS = [
    ("0 9 * * MON", "cron", "0 9 * * MON", None),
    ("0 9 * jan mon-fri", "cron", "0 9 * jan mon-fri", None),
    ("  */10   * * * *  ", "cron", "*/10 * * * *", None),
    ("0 0 L * *", "cron", "0 0 L * *", None),
    ("@hourly", "cron", "0 * * * *", None),
    ("@daily", "cron", "0 0 * * *", None),
    ("@MIDNIGHT", "cron", "0 0 * * *", None),
    ("@weekly", "cron", "0 0 * * 0", None),
    ("@monthly", "cron", "0 0 1 * *", None),
    ("@yearly", "cron", "0 0 1 1 *", None),
    (" @Annually ", "cron", "0 0 1 1 *", None),
    ("every 15m", "every", None, 900),
    ("EVERY 2h", "every", None, 7200),
    ("every 1d", "every", None, 86400),
    ("every 90 minutes", "every", None, 5400),
    ("every 1m", "every", None, 60),
    ("daily 09:00", "cron", "0 9 * * *", None),
    ("Daily 9:05", "cron", "5 9 * * *", None),
    ("weekdays 09:00", "cron", "0 9 * * 1-5", None),
    ("monday 09:00", "cron", "0 9 * * 1", None),
    ("MON 23:59", "cron", "59 23 * * 1", None),
    ("sunday 00:00", "cron", "0 0 * * 0", None),
    ("sat 07:30", "cron", "30 7 * * 6", None),
    ("monthly 1 08:00", "cron", "0 8 1 * *", None),
    ("monthly 31 23:15", "cron", "15 23 31 * *", None),
]


@pytest.mark.parametrize(("text", "kind", "cron", "every_s"), FORMS)
def test_parse_forms(text: str, kind: str, cron: str | None, every_s: int | None) -> None:
    s = parse_schedule(text)
    assert (s.text, s.kind, s.cron, s.every_s, s.at) == (text, kind, cron, every_s, None)


BAD = [
    ("", "empty schedule"),
    ("   ", "empty schedule"),
    ("61 * * * *", "bad cron expression '61 * * * *': minute must be 0-59"),
    ("0 24 * * *", "hour must be 0-23"),
    ("0 0 0 * *", "day-of-month must be 1-31"),
    ("0 0 32 * *", "day-of-month must be 1-31"),
    ("0 0 * 13 *", "month must be 1-12 or JAN-DEC"),
    ("0 0 * * 8", "day-of-week must be 0-7 or SUN-SAT"),
    ("-1 * * * *", "minute field '-1'"),
    ("* * * *", "expected 5 fields (minute hour day-of-month month day-of-week), got 4"),
    ("0 * * * * *", "got 6; seconds and years are not supported"),
    ("0 0 * * * * 2026", "got 7; seconds and years are not supported"),
    ("*/0 * * * *", "minute field '*/0': a step must be at least 1"),
    ("*/70 * * * *", "step 70 is not smaller than the 60 values of minute"),
    ("0 */24 * * *", "step 24 is not smaller than the 24 values of hour"),
    ("1,,2 * * * *", "minute field '1,,2' is not valid"),
    ("* * * JANX *", "month field 'JANX' is not valid"),
    ("0 0 * * MAR", "day-of-week field 'MAR' is not valid"),
    ("H * * * *", "hashed (H) values are not supported"),
    ("R 0 * * *", "random (R)"),
    ("0 0 30 2 *", "it never matches"),
    ("0 0 31 4,6,9,11 *", "it never matches"),
    ("@reboot", "unknown macro '@reboot'"),
    ("@daily 09:00", "unknown macro"),
    ("weekly 09:00", "unknown schedule 'weekly 09:00': expected a 5-field cron expression"),
    ("every", "expected 'every N' and a unit m, h or d"),
    ("every 0m", "the interval must be at least 1m"),
    ("every 30s", "seconds are not supported"),
    ("every 1 second", "seconds are not supported"),
    ("every -5m", "expected 'every N'"),
    ("every 1.5h", "expected 'every N'"),
    ("every 2w", "unknown unit 'w'"),
    ("every 3651d", "at most 3650d"),
    ("daily", "expected 'daily HH:MM'"),
    ("daily 9am", "expected 'daily HH:MM'"),
    ("daily 25:00", "25:00 is not a time of day"),
    ("daily 12:60", "12:60 is not a time of day"),
    ("weekdays 09:00 10:00", "expected 'weekdays HH:MM'"),
    ("friday", "expected 'friday HH:MM'"),
    ("monthly 09:00", "expected 'monthly D HH:MM'"),
    ("monthly 0 09:00", "the day must be 1-31"),
    ("monthly 32 09:00", "the day must be 1-31"),
    ("monthly x 09:00", "the day must be 1-31"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as e:
        parse_schedule(text)
    assert message in str(e.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-12-25T10:00", datetime(2026, 12, 25, 10, 0)),
        (" 2026-12-25 10:00:30 ", datetime(2026, 12, 25, 10, 0, 30)),
        ("2026-12-25t10:00", datetime(2026, 12, 25, 10, 0)),
        ("2026-12-25T10:00+05:30", datetime(2026, 12, 25, 4, 30, tzinfo=UTC)),
        ("2026-12-25T10:00Z", datetime(2026, 12, 25, 10, 0, tzinfo=UTC)),
    ],
)
def test_parse_at(text: str, expected: datetime) -> None:
    s = parse_at(text)
    assert (s.kind, s.text, s.at) == ("at", text, expected)
    assert s.at is not None and (s.at.tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a date and time like 2026-12-25T10:00"),
        ("2026-12-25", "expected a date and time"),
        ("tomorrow 10:00", "expected a date and time"),
        ("2026-13-25T10:00", "bad at time '2026-13-25T10:00'"),
        ("2026-02-30T10:00", "bad at time"),
        ("2026-12-25T25:00", "bad at time"),
        ("9999-12-31T23:59", "bad at time '9999-12-31T23:59': the year must be between 1970 and"),
        ("0001-01-01T00:00", "the year must be between 1970 and 9998"),
        ("1969-12-31T23:59+01:00", "the year must be between 1970 and 9998"),
    ],
)
def test_parse_at_errors(text: str, message: str) -> None:
    with pytest.raises(ScheduleError) as e:
        parse_at(text)
    assert message in str(e.value)


# -- windows, limits, zones -------------------------------------------------------------------


def test_window_is_after_exclusive_until_inclusive() -> None:
    s = parse_schedule("0 * * * *")
    got = scheduled_times(s, KOLKATA, utc("2026-06-01T00:30"), utc("2026-06-01T02:30"))
    assert as_utc(got) == ["2026-06-01T01:30", "2026-06-01T02:30"]  # 00:30Z = 06:00 IST excluded
    assert scheduled_times(s, KOLKATA, utc("2026-06-01T00:30"), utc("2026-06-01T00:30")) == []
    assert scheduled_times(s, KOLKATA, utc("2026-06-01T02:00"), utc("2026-06-01T01:00")) == []
    # Seconds inside a minute: 00:30:01 is past the 00:30 slot, 01:29:59 before the next.
    assert scheduled_times(s, KOLKATA, utc("2026-06-01T00:30:01"), utc("2026-06-01T01:29:59")) == []


@pytest.mark.parametrize("text", ["* * * * *", "every 1m", "daily 09:00", "2026-06-01T09:00"])
def test_window_boundaries_every_form(text: str) -> None:
    s = parse_at(text) if text[0].isdigit() else parse_schedule(text)
    nine = local("2026-06-01T09:00", BERLIN)
    assert scheduled_times(s, BERLIN, nine - timedelta(seconds=1), nine) == [nine]
    assert scheduled_times(s, BERLIN, nine, nine + timedelta(seconds=59)) == []


def test_limit_and_huge_window() -> None:
    s = parse_schedule("* * * * *")
    after, until = utc("2026-01-01T00:00"), utc("2027-01-01T00:00")
    got = scheduled_times(s, BERLIN, after, until, limit=1000)
    assert len(got) == 1000
    assert as_utc(got[:2]) == ["2026-01-01T00:01", "2026-01-01T00:02"]
    assert as_utc(got[-1:]) == ["2026-01-01T16:40"]
    assert scheduled_times(s, BERLIN, after, until, limit=0) == []
    e = parse_schedule("every 1m")
    assert as_utc(scheduled_times(e, BERLIN, after, until, limit=3)) == utc_seq(
        "2026-01-01T00:01", "2026-01-01T00:03", 1
    )
    assert len(scheduled_times(e, BERLIN, after, utc("2026-01-02T00:00"))) == 1440


def test_results_are_in_task_zone_whatever_the_input_zones() -> None:
    s = parse_schedule("0 9 * * *")
    after = local("2026-06-01T00:00", NEW_YORK)  # 06:00 Berlin
    until = local("2026-06-03T09:00", KOLKATA)  # 05:30 Berlin
    got = scheduled_times(s, BERLIN, after, until)
    assert [t.isoformat() for t in got] == [
        "2026-06-01T09:00:00+02:00",
        "2026-06-02T09:00:00+02:00",
    ]
    assert all(t.tzinfo is BERLIN for t in got)
    nxt = next_times(s, BERLIN, after, 1)
    assert nxt[0].tzinfo is BERLIN and nxt == got[:1]


def test_naive_inputs_are_refused() -> None:
    s = parse_schedule("@daily")
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        scheduled_times(s, BERLIN, datetime(2026, 1, 1), utc("2026-01-02T00:00"))
    with pytest.raises(ValueError, match="until must be a timezone-aware datetime"):
        scheduled_times(s, BERLIN, utc("2026-01-01T00:00"), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="after must be a timezone-aware datetime"):
        next_times(s, BERLIN, datetime(2026, 1, 1), 1)


def test_next_times() -> None:
    s = parse_schedule("weekdays 09:00")
    fri = local("2026-06-05T09:00", BERLIN)  # a Friday, exactly at the time: excluded
    assert [t.isoformat() for t in next_times(s, BERLIN, fri, 3)] == [
        "2026-06-08T09:00:00+02:00",
        "2026-06-09T09:00:00+02:00",
        "2026-06-10T09:00:00+02:00",
    ]
    assert next_times(s, BERLIN, fri, 0) == []
    assert as_utc(next_times(parse_schedule("every 2h"), BERLIN, utc("2026-06-05T03:00"), 2)) == [
        "2026-06-05T04:00",
        "2026-06-05T06:00",
    ]


@pytest.mark.parametrize(
    ("text", "after", "until", "expected"),
    [
        (  # a week: Monday to Friday only
            "weekdays 09:00",
            "2026-06-06T00:00",
            "2026-06-14T00:00",
            ["2026-06-08", "2026-06-09", "2026-06-10", "2026-06-11", "2026-06-12"],
        ),
        (
            "monday 09:00",
            "2026-06-01T00:00",
            "2026-06-30T00:00",
            ["2026-06-01", "2026-06-08", "2026-06-15", "2026-06-22", "2026-06-29"],
        ),
        ("fri 09:00", "2026-06-01T00:00", "2026-06-14T00:00", ["2026-06-05", "2026-06-12"]),
        (  # like cron, months without a 31st are skipped
            "monthly 31 09:00",
            "2026-01-01T00:00",
            "2026-09-01T00:00",
            ["2026-01-31", "2026-03-31", "2026-05-31", "2026-07-31", "2026-08-31"],
        ),
        ("monthly 29 09:00", "2027-01-01T00:00", "2027-04-01T00:00", ["2027-01-29", "2027-03-29"]),
        ("0 9 29 2 *", "2026-01-01T00:00", "2029-01-01T00:00", ["2028-02-29"]),
        (
            "0 9 L * *",
            "2026-01-01T00:00",
            "2026-04-01T00:00",
            ["2026-01-31", "2026-02-28", "2026-03-31"],
        ),
        (
            "0 9 * * 5#2",
            "2026-01-01T00:00",
            "2026-04-01T00:00",
            ["2026-01-09", "2026-02-13", "2026-03-13"],
        ),
        (  # day-of-month OR day-of-week when both are restricted (classic cron)
            "0 9 13 * FRI",
            "2026-03-01T00:00",
            "2026-03-21T00:00",
            ["2026-03-06", "2026-03-13", "2026-03-20"],
        ),
    ],
)
def test_calendar_forms(text: str, after: str, until: str, expected: list[str]) -> None:
    got = scheduled_times(
        parse_schedule(text), KOLKATA, local(after, KOLKATA), local(until, KOLKATA)
    )
    assert [t.date().isoformat() for t in got] == expected
    assert {(t.hour, t.minute) for t in got} == {(9, 0)}


@pytest.mark.parametrize(
    ("at", "zone", "after", "expected"),
    [
        ("2026-12-25T10:00", BERLIN, "2026-12-25T08:59", ["2026-12-25T09:00"]),
        ("2026-12-25T10:00", BERLIN, "2026-12-25T09:00", []),  # exactly at: not after
        ("2026-12-25T10:00", NEW_YORK, "2026-12-25T09:00", ["2026-12-25T15:00"]),
        ("2026-12-25T10:00+05:30", NEW_YORK, "2026-12-25T00:00", ["2026-12-25T04:30"]),
        ("2026-03-29T02:30", BERLIN, "2026-03-28T00:00", ["2026-03-29T01:00"]),  # gap: after it
        ("2026-10-25T02:30", BERLIN, "2026-10-24T00:00", ["2026-10-25T00:30"]),  # repeated: first
        ("2026-10-25T02:30", BERLIN, "2026-10-25T00:30", []),  # not again at the second one
    ],
)
def test_at(at: str, zone: ZoneInfo, after: str, expected: list[str]) -> None:
    s = parse_at(at)
    assert as_utc(next_times(s, zone, utc(after), 5)) == expected
    assert as_utc(scheduled_times(s, zone, utc(after), utc("2030-01-01T00:00"))) == expected
    assert scheduled_times(s, zone, utc(after), utc(after) + timedelta(seconds=1)) == []


def test_hand_built_schedules_fail_cleanly() -> None:
    a, u = utc("2026-01-01T00:00"), utc("2026-01-02T00:00")
    for s in (
        Schedule("x", "cron", cron="61 * * * *"),
        Schedule("x", "cron"),
        Schedule("x", "every", every_s=0),
        Schedule("x", "at"),
    ):
        with pytest.raises(ScheduleError):
            scheduled_times(s, BERLIN, a, u)


# -- the ends of the calendar -----------------------------------------------------------------

END_ZONES = [
    ZoneInfo(z) for z in ("Etc/GMT+12", "America/New_York", "Asia/Tokyo", "Pacific/Kiritimati")
]
END_AFTERS = ["9998-12-30T00:00", "9998-12-31T23:59", "9999-01-01T12:00", "9999-12-31T23:59"]


@pytest.mark.parametrize(
    "schedule",
    [
        parse_schedule("* * * * *"),
        parse_schedule("0 * * * *"),
        parse_schedule("0 9 * * *"),
        parse_schedule("0 0 L * *"),
        parse_schedule("0 0 15W * *"),
        parse_schedule("0 0 * * 1#2"),
        parse_schedule("every 1m"),
        parse_schedule("every 3650d"),
        parse_at("9998-12-31T23:59"),
        # Hand-built (an older version's file, a test): beyond what parse_at accepts.
        Schedule("x", "at", at=datetime(9999, 12, 31, 23, 59)),
        Schedule("x", "at", at=datetime(1, 1, 1, 0, 0)),
    ],
    ids=lambda s: s.text,
)
def test_times_near_the_ends_of_the_calendar_are_total(schedule: Schedule) -> None:
    """Every answer stops before HORIZON instead of overflowing: "no next time", not a crash."""
    end = datetime.max.replace(tzinfo=UTC)
    for zone in END_ZONES:
        for after in [utc(a) for a in END_AFTERS]:
            nxt = next_times(schedule, zone, after, 1000)
            window = scheduled_times(schedule, zone, after, end, limit=1000)
            cached = DueCache().due("t", schedule, zone, after, end, limit=1000)
            assert nxt == window == cached
            instants = [t.astimezone(UTC) for t in nxt]
            assert instants == sorted(set(instants))
            assert all(after < t < sched_mod.HORIZON for t in instants)
        # From the first day of the calendar: no overflow at that end either.
        start = next_times(schedule, zone, datetime(1, 1, 2, tzinfo=UTC), 3)
        assert all(t.astimezone(UTC) < sched_mod.HORIZON for t in start)
    assert next_times(schedule, END_ZONES[0], utc("9999-12-31T23:59"), 5) == []


def test_every_time_before_the_horizon_is_kept() -> None:
    # The last `at` in range, in the zone furthest west: 9999-01-01T11:59Z, still before it.
    s = parse_at("9998-12-31T23:59")
    (t,) = next_times(s, ZoneInfo("Etc/GMT+12"), utc("2026-01-01T00:00"), 5)
    assert t.astimezone(UTC) == datetime(9999, 1, 1, 11, 59, tzinfo=UTC) < sched_mod.HORIZON


# -- DST --------------------------------------------------------------------------------------
# Transitions (UTC): Berlin last Sunday of March / October at 01:00Z; New York second Sunday of
# March 07:00Z / first Sunday of November 06:00Z; Lord Howe (+10:30 / +11:00, 30 minutes)
# forward on the first Sunday of October at 02:00 local, back on the first Sunday of April at
# 02:00 local (to 01:30). Kolkata (+05:30, no DST) is the control.
# Each transition has a day window (for 30 2, 30 1, @daily) and a 4-hour window around it.

DAY_CASES = [
    # zone, after, until (UTC), expected for "30 2 * * *", "30 1 * * *", "@daily"
    (BERLIN, "2026-03-27T23:00", "2026-03-30T22:00",
     ["2026-03-28T01:30", "2026-03-29T01:00", "2026-03-30T00:30"],
     ["2026-03-28T00:30", "2026-03-29T00:30", "2026-03-29T23:30"],
     ["2026-03-28T23:00", "2026-03-29T22:00", "2026-03-30T22:00"]),
    (BERLIN, "2026-10-23T22:00", "2026-10-26T23:00",
     ["2026-10-24T00:30", "2026-10-25T00:30", "2026-10-26T01:30"],
     ["2026-10-23T23:30", "2026-10-24T23:30", "2026-10-26T00:30"],
     ["2026-10-24T22:00", "2026-10-25T23:00", "2026-10-26T23:00"]),
    (BERLIN, "2027-03-26T23:00", "2027-03-29T22:00",
     ["2027-03-27T01:30", "2027-03-28T01:00", "2027-03-29T00:30"],
     ["2027-03-27T00:30", "2027-03-28T00:30", "2027-03-28T23:30"],
     ["2027-03-27T23:00", "2027-03-28T22:00", "2027-03-29T22:00"]),
    (BERLIN, "2027-10-29T22:00", "2027-11-01T23:00",
     ["2027-10-30T00:30", "2027-10-31T00:30", "2027-11-01T01:30"],
     ["2027-10-29T23:30", "2027-10-30T23:30", "2027-11-01T00:30"],
     ["2027-10-30T22:00", "2027-10-31T23:00", "2027-11-01T23:00"]),
    (NEW_YORK, "2026-03-07T05:00", "2026-03-10T04:00",
     ["2026-03-07T07:30", "2026-03-08T07:00", "2026-03-09T06:30"],
     ["2026-03-07T06:30", "2026-03-08T06:30", "2026-03-09T05:30"],
     ["2026-03-08T05:00", "2026-03-09T04:00", "2026-03-10T04:00"]),
    (NEW_YORK, "2026-10-31T04:00", "2026-11-03T05:00",
     ["2026-10-31T06:30", "2026-11-01T07:30", "2026-11-02T07:30"],
     ["2026-10-31T05:30", "2026-11-01T05:30", "2026-11-02T06:30"],
     ["2026-11-01T04:00", "2026-11-02T05:00", "2026-11-03T05:00"]),
    (NEW_YORK, "2027-03-13T05:00", "2027-03-16T04:00",
     ["2027-03-13T07:30", "2027-03-14T07:00", "2027-03-15T06:30"],
     ["2027-03-13T06:30", "2027-03-14T06:30", "2027-03-15T05:30"],
     ["2027-03-14T05:00", "2027-03-15T04:00", "2027-03-16T04:00"]),
    (NEW_YORK, "2027-11-06T04:00", "2027-11-09T05:00",
     ["2027-11-06T06:30", "2027-11-07T07:30", "2027-11-08T07:30"],
     ["2027-11-06T05:30", "2027-11-07T05:30", "2027-11-08T06:30"],
     ["2027-11-07T04:00", "2027-11-08T05:00", "2027-11-09T05:00"]),
    (LORD_HOWE, "2026-04-03T13:00", "2026-04-06T13:30",
     ["2026-04-03T15:30", "2026-04-04T16:00", "2026-04-05T16:00"],
     ["2026-04-03T14:30", "2026-04-04T14:30", "2026-04-05T15:00"],
     ["2026-04-04T13:00", "2026-04-05T13:30", "2026-04-06T13:30"]),
    (LORD_HOWE, "2026-10-02T13:30", "2026-10-05T13:00",
     ["2026-10-02T16:00", "2026-10-03T15:30", "2026-10-04T15:30"],
     ["2026-10-02T15:00", "2026-10-03T15:00", "2026-10-04T14:30"],
     ["2026-10-03T13:30", "2026-10-04T13:00", "2026-10-05T13:00"]),
    (LORD_HOWE, "2027-04-02T13:00", "2027-04-05T13:30",
     ["2027-04-02T15:30", "2027-04-03T16:00", "2027-04-04T16:00"],
     ["2027-04-02T14:30", "2027-04-03T14:30", "2027-04-04T15:00"],
     ["2027-04-03T13:00", "2027-04-04T13:30", "2027-04-05T13:30"]),
    (LORD_HOWE, "2027-10-01T13:30", "2027-10-04T13:00",
     ["2027-10-01T16:00", "2027-10-02T15:30", "2027-10-03T15:30"],
     ["2027-10-01T15:00", "2027-10-02T15:00", "2027-10-03T14:30"],
     ["2027-10-02T13:30", "2027-10-03T13:00", "2027-10-04T13:00"]),
    (KOLKATA, "2026-03-27T18:30", "2026-03-30T18:30",
     ["2026-03-27T21:00", "2026-03-28T21:00", "2026-03-29T21:00"],
     ["2026-03-27T20:00", "2026-03-28T20:00", "2026-03-29T20:00"],
     ["2026-03-28T18:30", "2026-03-29T18:30", "2026-03-30T18:30"]),
    (KOLKATA, "2027-10-29T18:30", "2027-11-01T18:30",
     ["2027-10-29T21:00", "2027-10-30T21:00", "2027-10-31T21:00"],
     ["2027-10-29T20:00", "2027-10-30T20:00", "2027-10-31T20:00"],
     ["2027-10-30T18:30", "2027-10-31T18:30", "2027-11-01T18:30"]),
]  # fmt: skip

LH_BACK = ["13:20", "13:40", "14:00", "14:20", "14:40", "15:10", "15:30", "15:50", "16:10",
           "16:30", "16:50"]  # fmt: skip
LH_FORWARD = ["13:50", "14:10", "14:30", "14:50", "15:10", "15:40", "16:00", "16:20", "16:40",
              "17:00", "17:20"]  # fmt: skip

HOUR_CASES = [
    # zone, after, until (UTC), expected for "0 * * * *", "*/20 * * * *", "every 90m"
    (BERLIN, "2026-03-28T23:00", "2026-03-29T03:00",
     ["2026-03-29T00:00", "2026-03-29T01:00", "2026-03-29T02:00", "2026-03-29T03:00"],
     utc_seq("2026-03-28T23:20", "2026-03-29T03:00", 20),
     ["2026-03-29T00:00", "2026-03-29T01:30", "2026-03-29T03:00"]),
    (BERLIN, "2026-10-24T23:00", "2026-10-25T03:00",
     ["2026-10-25T00:00", "2026-10-25T01:00", "2026-10-25T02:00", "2026-10-25T03:00"],
     utc_seq("2026-10-24T23:20", "2026-10-25T03:00", 20),
     ["2026-10-25T00:00", "2026-10-25T01:30", "2026-10-25T03:00"]),
    (BERLIN, "2027-03-27T23:00", "2027-03-28T03:00",
     ["2027-03-28T00:00", "2027-03-28T01:00", "2027-03-28T02:00", "2027-03-28T03:00"],
     utc_seq("2027-03-27T23:20", "2027-03-28T03:00", 20),
     ["2027-03-28T00:00", "2027-03-28T01:30", "2027-03-28T03:00"]),
    (BERLIN, "2027-10-30T23:00", "2027-10-31T03:00",
     ["2027-10-31T00:00", "2027-10-31T01:00", "2027-10-31T02:00", "2027-10-31T03:00"],
     utc_seq("2027-10-30T23:20", "2027-10-31T03:00", 20),
     ["2027-10-31T00:00", "2027-10-31T01:30", "2027-10-31T03:00"]),
    (NEW_YORK, "2026-03-08T05:00", "2026-03-08T09:00",
     ["2026-03-08T06:00", "2026-03-08T07:00", "2026-03-08T08:00", "2026-03-08T09:00"],
     utc_seq("2026-03-08T05:20", "2026-03-08T09:00", 20),
     ["2026-03-08T06:00", "2026-03-08T07:30", "2026-03-08T09:00"]),
    (NEW_YORK, "2026-11-01T04:00", "2026-11-01T08:00",
     ["2026-11-01T05:00", "2026-11-01T06:00", "2026-11-01T07:00", "2026-11-01T08:00"],
     utc_seq("2026-11-01T04:20", "2026-11-01T08:00", 20),
     ["2026-11-01T04:30", "2026-11-01T06:00", "2026-11-01T07:30"]),
    (NEW_YORK, "2027-03-14T05:00", "2027-03-14T09:00",
     ["2027-03-14T06:00", "2027-03-14T07:00", "2027-03-14T08:00", "2027-03-14T09:00"],
     utc_seq("2027-03-14T05:20", "2027-03-14T09:00", 20),
     ["2027-03-14T06:00", "2027-03-14T07:30", "2027-03-14T09:00"]),
    (NEW_YORK, "2027-11-07T04:00", "2027-11-07T08:00",
     ["2027-11-07T05:00", "2027-11-07T06:00", "2027-11-07T07:00", "2027-11-07T08:00"],
     utc_seq("2027-11-07T04:20", "2027-11-07T08:00", 20),
     ["2027-11-07T04:30", "2027-11-07T06:00", "2027-11-07T07:30"]),
    (LORD_HOWE, "2026-04-04T13:00", "2026-04-04T17:00",
     ["2026-04-04T14:00", "2026-04-04T15:30", "2026-04-04T16:30"],
     [f"2026-04-04T{hm}" for hm in LH_BACK],
     ["2026-04-04T13:30", "2026-04-04T15:00", "2026-04-04T16:30"]),
    (LORD_HOWE, "2026-10-03T13:30", "2026-10-03T17:30",
     ["2026-10-03T14:30", "2026-10-03T16:00", "2026-10-03T17:00"],
     [f"2026-10-03T{hm}" for hm in LH_FORWARD],
     ["2026-10-03T15:00", "2026-10-03T16:30"]),
    (LORD_HOWE, "2027-04-03T13:00", "2027-04-03T17:00",
     ["2027-04-03T14:00", "2027-04-03T15:30", "2027-04-03T16:30"],
     [f"2027-04-03T{hm}" for hm in LH_BACK],
     ["2027-04-03T13:30", "2027-04-03T15:00", "2027-04-03T16:30"]),
    (LORD_HOWE, "2027-10-02T13:30", "2027-10-02T17:30",
     ["2027-10-02T14:30", "2027-10-02T16:00", "2027-10-02T17:00"],
     [f"2027-10-02T{hm}" for hm in LH_FORWARD],
     ["2027-10-02T15:00", "2027-10-02T16:30"]),
    (KOLKATA, "2026-03-28T23:00", "2026-03-29T03:00",
     ["2026-03-28T23:30", "2026-03-29T00:30", "2026-03-29T01:30", "2026-03-29T02:30"],
     utc_seq("2026-03-28T23:10", "2026-03-29T02:50", 20),
     ["2026-03-29T00:00", "2026-03-29T01:30", "2026-03-29T03:00"]),
    (KOLKATA, "2027-10-30T23:00", "2027-10-31T03:00",
     ["2027-10-30T23:30", "2027-10-31T00:30", "2027-10-31T01:30", "2027-10-31T02:30"],
     utc_seq("2027-10-30T23:10", "2027-10-31T02:50", 20),
     ["2027-10-31T00:00", "2027-10-31T01:30", "2027-10-31T03:00"]),
]  # fmt: skip


def _flatten(
    cases: list[tuple[ZoneInfo, str, str, list[str], list[str], list[str]]], texts: list[str]
) -> list[tuple[str, ZoneInfo, str, str, list[str]]]:
    return [
        (text, zone, a, u, expected)
        for zone, a, u, *lists in cases
        for text, expected in zip(texts, lists, strict=True)
    ]


DST_CASES = _flatten(DAY_CASES, ["30 2 * * *", "30 1 * * *", "@daily"]) + _flatten(
    HOUR_CASES, ["0 * * * *", "*/20 * * * *", "every 90m"]
)


@pytest.mark.parametrize(("text", "zone", "after", "until", "expected"), DST_CASES)
def test_dst_transitions(
    text: str, zone: ZoneInfo, after: str, until: str, expected: list[str]
) -> None:
    got = scheduled_times(parse_schedule(text), zone, utc(after), utc(until))
    assert as_utc(got) == expected
    # The same times one by one, and from a window given in the task zone.
    assert as_utc(next_times(parse_schedule(text), zone, utc(after), len(expected))) == expected
    local_window = (utc(after).astimezone(zone), utc(until).astimezone(zone))
    assert as_utc(scheduled_times(parse_schedule(text), zone, *local_window)) == expected
    # Each result carries the zone's real offset at that instant (fold set on a repeat).
    for t in got:
        assert t.tzinfo is zone
        assert t.utcoffset() == t.astimezone(UTC).astimezone(zone).utcoffset()


@pytest.mark.parametrize(
    ("text", "zone", "after", "until", "expected"),
    [
        # Fixed hours: skipped times collapse into one run at the end of the gap.
        ("0 2 * * *", LORD_HOWE, "2026-10-03T13:30", "2026-10-04T13:00", ["2026-10-03T15:30"]),
        ("15 2 * * *", LORD_HOWE, "2026-10-03T13:30", "2026-10-04T13:00", ["2026-10-03T15:30"]),
        ("* 2 * * *", BERLIN, "2026-03-28T23:00", "2026-03-29T22:00", ["2026-03-29T01:00"]),
        ("0 2,3 * * *", BERLIN, "2026-03-28T23:00", "2026-03-29T22:00", ["2026-03-29T01:00"]),
        ("daily 02:30", NEW_YORK, "2027-03-14T05:00", "2027-03-15T04:00", ["2027-03-14T07:00"]),
        ("0 1-2 * * *", NEW_YORK, "2026-11-01T04:00", "2026-11-01T08:00",
         ["2026-11-01T05:00", "2026-11-01T07:00"]),
        # Steps and all-24 ranges follow elapsed time: both 01:00 (EDT, EST) run.
        ("0 1-23/3 * * *", NEW_YORK, "2026-11-01T04:00", "2026-11-01T10:00",
         ["2026-11-01T05:00", "2026-11-01T06:00", "2026-11-01T09:00"]),
        ("0 0-23 * * *", NEW_YORK, "2026-11-01T04:00", "2026-11-01T07:00",
         ["2026-11-01T05:00", "2026-11-01T06:00", "2026-11-01T07:00"]),
        ("0 */2 * * *", BERLIN, "2026-10-24T21:00", "2026-10-25T03:00",
         ["2026-10-24T22:00", "2026-10-25T00:00", "2026-10-25T01:00", "2026-10-25T03:00"]),
        ("0 */2 * * *", BERLIN, "2026-03-28T22:00", "2026-03-29T03:00",
         ["2026-03-28T23:00", "2026-03-29T02:00"]),
        ("@hourly", NEW_YORK, "2026-03-08T05:30", "2026-03-08T08:00",
         ["2026-03-08T06:00", "2026-03-08T07:00", "2026-03-08T08:00"]),
        # Southern hemisphere fall-back: 01:45 exists twice, a fixed time runs the first.
        ("45 1 * * *", LORD_HOWE, "2026-04-04T13:00", "2026-04-05T16:00",
         ["2026-04-04T14:45", "2026-04-05T15:15"]),
        ("45 * * * *", LORD_HOWE, "2026-04-04T13:00", "2026-04-04T17:00",
         ["2026-04-04T13:45", "2026-04-04T14:45", "2026-04-04T15:15", "2026-04-04T16:15"]),
    ],
)  # fmt: skip
def test_dst_fixed_versus_elapsed_hours(
    text: str, zone: ZoneInfo, after: str, until: str, expected: list[str]
) -> None:
    assert times(text, zone, utc(after), utc(until)) == expected


def test_fixed_hour_repeated_runs_first_occurrence_only() -> None:
    got = scheduled_times(
        parse_schedule("* 2 * * *"), BERLIN, utc("2026-10-24T23:00"), utc("2026-10-25T03:00")
    )
    assert as_utc(got) == utc_seq("2026-10-25T00:00", "2026-10-25T00:59", 1)
    assert {t.utcoffset() for t in got} == {timedelta(hours=2)}


@pytest.mark.parametrize(
    "after",
    # Windows starting inside the repeated hour, in either occurrence (the fold=1 wall times
    # come before some fold=0 ones, so a wrong start would lose or repeat times).
    ["2026-10-25T00:10", "2026-10-25T00:40", "2026-10-25T01:00", "2026-10-25T01:10"],
)
def test_window_starting_inside_repeated_hour(after: str) -> None:
    every20 = utc_seq("2026-10-24T23:20", "2026-10-25T03:00", 20)
    want = [t for t in every20 if utc(t) > utc(after)]
    assert times("*/20 * * * *", BERLIN, utc(after), utc("2026-10-25T03:00")) == want
    fixed = times("30 2 * * *", BERLIN, utc(after), utc("2026-10-26T03:00"))
    assert fixed == (["2026-10-25T00:30"] if utc(after) < utc("2026-10-25T00:30") else []) + [
        "2026-10-26T01:30"
    ]


def test_every_ignores_dst_and_is_epoch_aligned() -> None:
    # 420 s does not divide a day: 2026-03-29T00:00Z is 1774742400 s = 420 * 4225577 + 60, so
    # the aligned times that day are 00:06, 00:13, ... (23:59 the day before).
    s = parse_schedule("every 7m")
    got = scheduled_times(s, BERLIN, utc("2026-03-29T00:50"), utc("2026-03-29T01:10"))
    assert all(int(t.timestamp()) % 420 == 0 for t in got)
    assert as_utc(got) == ["2026-03-29T00:55", "2026-03-29T01:02", "2026-03-29T01:09"]


@pytest.mark.parametrize(
    ("expr", "zone", "start", "croniter_utc", "ours_utc"),
    [
        # Spring-forward: croniter 7 also moves a skipped fixed time to the end of the gap.
        ("30 2 * * *", BERLIN, "2026-03-28T12:00", ["2026-03-29T01:00"], ["2026-03-29T01:00"]),
        ("0 2 * * *", LORD_HOWE, "2026-10-03T12:00", ["2026-10-03T15:30"], ["2026-10-03T15:30"]),
        # Fall-back: croniter 7 gives a fixed time twice; this module keeps the first only.
        ("30 2 * * *", BERLIN, "2026-10-24T12:00", ["2026-10-25T00:30", "2026-10-25T01:30"],
         ["2026-10-25T00:30"]),
        ("45 1 * * *", LORD_HOWE, "2026-04-04T12:00", ["2026-04-04T14:45", "2026-04-04T15:15"],
         ["2026-04-04T14:45"]),
    ],
)  # fmt: skip
def test_against_croniter_dst_handling(
    expr: str, zone: ZoneInfo, start: str, croniter_utc: list[str], ours_utc: list[str]
) -> None:
    begin = local(start, zone)
    it = croniter(expr, begin)
    raw = [it.get_next(datetime) for _ in range(len(croniter_utc))]
    assert as_utc(raw) == croniter_utc
    assert times(expr, zone, begin, begin + timedelta(hours=24)) == ours_utc


# -- the memo ---------------------------------------------------------------------------------

MEMO_SCHEDULES = ["* * * * *", "*/7 * * * *", "0 * * * *", "30 2 * * *", "every 13m",
                  "weekdays 09:00", "0 0 L * *"]  # fmt: skip


@pytest.mark.parametrize("text", MEMO_SCHEDULES)
def test_due_cache_matches_scheduled_times_minute_by_minute(text: str) -> None:
    s, cache = parse_schedule(text), DueCache()
    after = utc("2026-10-24T22:00")
    for minute in range(1, 6 * 60, 1):  # six hours across Berlin's fall-back, tick by tick
        until = utc("2026-10-24T22:00") + timedelta(minutes=minute, seconds=1)
        assert cache.due("t", s, BERLIN, after, until) == scheduled_times(s, BERLIN, after, until)
        after = until


def test_due_cache_skips_iteration_when_warm(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = sched_mod._instants

    def counting(*args: object) -> object:
        calls.append(args)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(sched_mod, "_instants", counting)
    cache, s = DueCache(), parse_schedule("0 9 * * *")
    after = utc("2026-06-01T00:00")
    assert cache.due("a", s, BERLIN, after, after + timedelta(minutes=1)) == []
    assert len(calls) == 1
    for minute in range(2, 500):  # until 08:20Z: 10:20 Berlin, past 09:00 local
        until = after + timedelta(minutes=minute)
        got = cache.due("a", s, BERLIN, until - timedelta(minutes=1), until)
        assert as_utc(got) == (["2026-06-01T07:00"] if minute == 7 * 60 else [])
    assert len(calls) == 1
    # Invalidation: another schedule, another zone, an earlier after.
    cache.due("a", parse_schedule("0 10 * * *"), BERLIN, after, after + timedelta(minutes=1))
    assert len(calls) == 2
    cache.due("a", parse_schedule("0 10 * * *"), NEW_YORK, after, after + timedelta(minutes=1))
    assert len(calls) == 3
    cache.due("a", parse_schedule("0 10 * * *"), NEW_YORK, after - timedelta(days=1), after)
    assert len(calls) == 4
    assert len(cache) == 1
    cache.forget("a")
    assert len(cache) == 0


def test_due_cache_limit_and_edges() -> None:
    cache, s = DueCache(), parse_schedule("* * * * *")
    a, u = utc("2026-01-01T00:00"), utc("2027-01-01T00:00")
    got = cache.due("x", s, BERLIN, a, u, limit=1000)
    assert got == scheduled_times(s, BERLIN, a, u, limit=1000)
    assert cache.due("x", s, BERLIN, a, u, limit=3) == got[:3]
    assert cache.due("x", s, BERLIN, a, a) == []
    assert cache.due("x", s, BERLIN, a, u, limit=0) == []
    one_shot = parse_at("2026-01-01T10:00")
    assert as_utc(cache.due("y", one_shot, BERLIN, a, u)) == ["2026-01-01T09:00"]
    assert cache.due("y", one_shot, BERLIN, utc("2026-01-01T09:00"), u) == []


# -- agreement with croniter -------------------------------------------------------------------


def _field(lo: int, hi: int, extra: tuple[str, ...] = ()) -> st.SearchStrategy[str]:
    num = st.integers(lo, hi)
    single = st.one_of(
        st.sampled_from(extra or ("*",)),
        num.map(str),
        st.tuples(num, num).map(lambda p: f"{min(p)}-{max(p)}"),
        st.tuples(num, num, st.integers(1, max(1, hi - lo))).map(
            lambda p: f"{min(p[0], p[1])}-{max(p[0], p[1])}/{p[2]}"
        ),
        st.integers(1, max(1, hi - lo)).map(lambda n: f"*/{n}"),
    )
    return st.one_of(st.just("*"), st.lists(single, min_size=1, max_size=3).map(",".join))


CRON = st.tuples(
    _field(0, 59),
    _field(0, 23),
    _field(1, 31, ("L", "1-L", "28-L")),
    _field(1, 12, ("JAN", "feb-apr", "*/3")),
    _field(0, 7, ("MON", "sun", "MON-FRI", "sat-sun")),
).map(" ".join)
STARTS = st.datetimes(datetime(2000, 1, 1), datetime(2040, 1, 1))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=CRON, start=STARTS)
def test_wall_clock_iteration_agrees_with_croniter(expr: str, start: datetime) -> None:
    try:
        cx = compile_cron(expr)
    except ValueError:
        return  # impossible dates such as 31 February
    ours = []
    for t in cx.iter_after(start):
        ours.append(t)
        if len(ours) == 5:
            break
    it = croniter(expr, start)
    theirs = [it.get_next(datetime) for _ in range(len(ours))]
    assert ours == theirs
    assert len(ours) == 5


@pytest.mark.parametrize(
    ("expr", "simple"),
    [
        ("0 0 L * *", True),
        ("0 0 L 2 *", True),
        ("0 0 1,L * FRI", True),
        ("0 12 * * 5#3", False),
        ("30 6 15W * *", False),
        ("0 6 * * MON#1,FRI#2", False),
    ],
)
def test_special_syntax_iterates_like_croniter(expr: str, simple: bool) -> None:
    cx = compile_cron(expr)
    assert cx.simple is simple
    start = datetime(2026, 1, 1)
    it = croniter(expr, start)
    gen = cx.iter_after(start)
    assert [next(gen) for _ in range(6)] == [it.get_next(datetime) for _ in range(6)]


# -- DST rules against a brute-force oracle ----------------------------------------------------

TRANSITIONS_UTC = [
    (BERLIN, "2026-03-29T01:00"), (BERLIN, "2026-10-25T01:00"),
    (BERLIN, "2027-03-28T01:00"), (BERLIN, "2027-10-31T01:00"),
    (NEW_YORK, "2026-03-08T07:00"), (NEW_YORK, "2026-11-01T06:00"),
    (NEW_YORK, "2027-03-14T07:00"), (NEW_YORK, "2027-11-07T06:00"),
    (LORD_HOWE, "2026-04-04T15:00"), (LORD_HOWE, "2026-10-03T15:30"),
    (LORD_HOWE, "2027-04-03T15:00"), (LORD_HOWE, "2027-10-02T15:30"),
]  # fmt: skip


def oracle(expr: str, zone: ZoneInfo, after: datetime, until: datetime) -> list[str]:
    """Scan every UTC minute of the window and apply the SPEC 4 rules literally."""
    exp = croniter(expr).expanded
    minutes = set(range(60)) if "*" in exp[0] else set(exp[0])
    hours = set(range(24)) if "*" in exp[1] else set(exp[1])
    fixed = compile_cron(expr).fixed_hour
    out: list[datetime] = []
    t = after.replace(second=0) + timedelta(minutes=1)
    while t <= until:
        w = t.astimezone(zone)
        if w.hour in hours and w.minute in minutes and not (fixed and w.fold == 1):
            out.append(t)  # a wall time that exists (a fixed one: its first occurrence only)
        before = (t - timedelta(minutes=1)).astimezone(zone)
        if fixed and w.utcoffset() != before.utcoffset() and t not in out:
            # Spring-forward at t: wall times strictly between `before` and `w` never exist.
            gap = before.replace(tzinfo=None) + timedelta(minutes=1)
            while gap < w.replace(tzinfo=None):
                if gap.hour in hours and gap.minute in minutes:
                    out.append(t)
                    break
                gap += timedelta(minutes=1)
        t += timedelta(minutes=1)
    return as_utc(out)


HOURS_NEAR_DST = st.one_of(
    st.just("*"),
    st.integers(1, 6).map(lambda n: f"*/{n}"),
    st.lists(st.integers(0, 4), min_size=1, max_size=3).map(lambda hs: ",".join(map(str, hs))),
    st.tuples(st.integers(0, 3), st.integers(0, 3)).map(lambda p: f"{min(p)}-{max(p)}"),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    minute=_field(0, 59),
    hour=HOURS_NEAR_DST,
    transition=st.sampled_from(TRANSITIONS_UTC),
    start_min=st.integers(-300, 120),
    length_min=st.integers(1, 420),
)
def test_dst_rules_match_brute_force(
    minute: str, hour: str, transition: tuple[ZoneInfo, str], start_min: int, length_min: int
) -> None:
    zone, at = transition
    expr = f"{minute} {hour} * * *"
    after = utc(at) + timedelta(minutes=start_min)
    until = after + timedelta(minutes=length_min)
    assert times(expr, zone, after, until) == oracle(expr, zone, after, until)


DUE_SCHEDULES = st.one_of(
    CRON,
    st.integers(1, 600).map(lambda n: f"every {n}m"),
    st.sampled_from(["@hourly", "@daily", "weekdays 02:30", "monthly 31 01:30", "sunday 02:00"]),
)
DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=DUE_SCHEDULES,
    zone_name=st.sampled_from(DST_ZONES),
    start=st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31)),
    # Steps of whole minutes land windows exactly on scheduled instants (the (after, until]
    # edges); steps of 7 s land between them.
    unit_s=st.sampled_from([7, 60]),
    steps=st.lists(
        st.tuples(st.one_of(st.integers(1, 5), st.integers(1, 240)), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
@example(  # nothing due until a window ends exactly on the next time
    text="*/5 * * * *",
    zone_name="UTC",
    start=datetime(2026, 1, 1, 10),
    unit_s=60,
    steps=[(1, False)] * 6,
)
def test_due_cache_answers_every_window_like_scheduled_times(
    text: str, zone_name: str, start: datetime, unit_s: int, steps: list[tuple[int, bool]]
) -> None:
    """The daemon's memo, driven as the scheduler drives it: `after` moves on when something was
    due (or at random), `until` moves forward by seconds to hours."""
    try:
        s = parse_schedule(text)
    except ScheduleError:
        return  # impossible dates such as 31 February
    zone, cache = ZoneInfo(zone_name), DueCache()
    after = until = start.replace(second=0, microsecond=0, tzinfo=UTC)
    for step, move_anyway in steps:
        until += timedelta(seconds=step * unit_s)
        got = cache.due("k", s, zone, after, until, limit=1000)
        want = scheduled_times(s, zone, after, until, limit=1000)
        # isoformat, not ==: equal wall times of the repeated fall-back hour differ by offset.
        assert [t.isoformat() for t in got] == [t.isoformat() for t in want]
        if got or move_anyway:
            after = until
