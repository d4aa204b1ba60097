"""taskwarn: the warnings ``check`` prints for values that load but probably surprise."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bassi_schedd.config.taskwarn import reversed_ranges, shortest_gap_s, task_warnings
from bassi_schedd.core.schedule import parse_at, parse_schedule
from bassi_schedd.core.spec import TaskSpec

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def spec(schedule: str = "@daily", **kw: object) -> TaskSpec:
    sched = parse_at(schedule) if schedule[:1].isdigit() and "T" in schedule else None
    return TaskSpec(
        name="t",
        path=Path("/x/t.toml"),
        schedule=sched or parse_schedule(schedule),
        timezone="Europe/Berlin",
        command=("/bin/true",),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("expr", "matches"),
    [
        ("1-0 * * * *", "minute 0-59"),
        ("0 22-2 * * *", "hour 0-2,22-23"),
        ("0 0 30-2 * *", "day-of-month 1-2,30-31"),
        ("0 0 1 NOV-FEB *", "month 1-2,11-12"),
        ("0 0 * * FRI-MON", "day-of-week 0-1,5-6"),
        ("0 0 * * sat-sun", "day-of-week 0,6"),
        ("5-1/2 * * * *", "minute 5-59/2"),  # croniter does not wrap a stepped range
        ("1,5-3 * * * *", "minute 0-3,5-59"),
    ],
)
def test_reversed_ranges_say_what_the_field_matches(expr: str, matches: str) -> None:
    (sentence,) = reversed_ranges(expr)
    assert "runs backwards (classic cron refuses that)" in sentence
    assert f"it matches {matches}, so write that instead" in sentence


@pytest.mark.parametrize(
    "expr", ["0 9 * * 1-5", "*/5 0-23 * * *", "0 0 * * 7-1", "0 0 * * 0-7", "0 0 L * *"]
)
def test_ranges_in_order_are_fine(expr: str) -> None:
    assert reversed_ranges(expr) == []


@pytest.mark.parametrize(
    ("schedule", "gap_s"),
    [
        ("*/10 * * * *", 600),
        ("weekdays 09:00", 86400),
        ("every 2h", 7200),
        ("0 9,17 * * *", 8 * 3600),
        ("0 3 * * *", 23 * 3600),  # Berlin's 23-hour day, 2026-03-29, is in the sample
    ],
)
def test_shortest_gap(schedule: str, gap_s: float) -> None:
    assert shortest_gap_s(spec(schedule), datetime(2026, 3, 1, tzinfo=UTC)) == gap_s
    assert shortest_gap_s(spec("2027-01-01T09:00"), NOW) is None


def test_no_warnings_for_ordinary_tasks() -> None:
    assert task_warnings(spec("*/10 * * * *", jitter_s=599.0, retry_delay_s=3600.0), NOW) == []
    assert task_warnings(spec("2027-01-01T09:00"), NOW) == []


def test_each_warning_names_its_key() -> None:
    keys = [
        w.key for w in task_warnings(spec("1-0 * * * *", jitter_s=120.0, retry_delay_s=7200.0), NOW)
    ]
    assert keys == ["schedule", "jitter", "retry_delay"]
    (past,) = task_warnings(spec("2026-05-31T09:00"), NOW)
    assert past.key == "at" and "is in the past" in past.message
