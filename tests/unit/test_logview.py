"""Reading the log: file order, filters, the readable line, following across rotation."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bassi_schedd.logs.view import (
    Follower,
    LineSelector,
    LogFilter,
    format_line,
    format_record,
    log_files,
    parse_level,
    read_lines,
    run_id_matches,
    short_run_id,
)

BERLIN = ZoneInfo("Europe/Berlin")

RUN_END_OK = {
    "ts": "2026-11-22T08:00:13.456Z",
    "level": "info",
    "event": "run.end",
    "task": "weekly-report",
    "run_id": "20261122T080001Z-a1b2c3",
    "scheduled_for": "2026-11-22T08:00:00+00:00",
    "trigger": "schedule",
    "status": "success",
    "exit_code": 0,
    "duration_s": 12.34,
    "cost_usd": 0.0123,
    "error": None,
}
RUN_END_FAILED = {
    "ts": "2026-11-22T09:31:00.000Z",
    "level": "error",
    "event": "run.end",
    "task": "weekly-report",
    "run_id": "20261122T090000Z-d4e5f6",
    "scheduled_for": "2026-11-22T09:00:00+00:00",
    "trigger": "retry",
    "status": "failed",
    "exit_code": 1,
    "duration_s": 1860.0,
    "cost_usd": 0.5,
    "attempt": 2,
    "error": "agent hit max turns (30)",
}


# -- the readable line ------------------------------------------------------------------------


def test_successful_run_end_line() -> None:
    assert format_record(RUN_END_OK, tz=BERLIN) == (
        "2026-11-22 09:00:13 INFO  weekly-report run.end success 12.3s exit=0 cost=$0.0123 "
        "run=a1b2c3"
    )


def test_failed_run_end_line() -> None:
    assert format_record(RUN_END_FAILED, tz=BERLIN) == (
        "2026-11-22 10:31:00 ERROR weekly-report run.end failed 31m00s exit=1 cost=$0.5000 "
        'run=d4e5f6 attempt=2 trigger=retry for=2026-11-22T10:00 error="agent hit max turns (30)"'
    )


def test_daemon_event_and_other_fields() -> None:
    rec = {
        "ts": "2026-11-22T08:00:00Z",
        "level": "warning",
        "event": "clock.jump",
        "jump_s": -3600.0,
        "note": "two words",
        "tasks": ["a", "b"],
        "gone": None,
    }
    assert format_record(rec, tz=UTC) == (
        '2026-11-22 08:00:00 WARN  - clock.jump jump_s=-3600.0 note="two words" tasks=["a","b"]'
    )


def test_colour_only_when_asked() -> None:
    plain = format_record(RUN_END_OK, tz=UTC)
    coloured = format_record(RUN_END_OK, tz=UTC, color=True)
    assert "\x1b" not in plain
    assert "\x1b[32mINFO \x1b[0m" in coloured
    assert "\x1b[1;31mERROR\x1b[0m" in format_record(RUN_END_FAILED, tz=UTC, color=True)


def test_odd_records_never_crash() -> None:
    assert format_record({}, tz=UTC) == "- INFO  - -"
    assert format_record({"ts": "yesterday", "level": 5, "event": "x"}, tz=UTC) == (
        "yesterday 5     - x"
    )
    assert format_line("not json at all\n", None, color=True) == "not json at all"


def test_short_run_ids() -> None:
    assert short_run_id("20261122T080001Z-a1b2c3") == "a1b2c3"
    assert short_run_id("custom-id") == "custom-id"
    assert run_id_matches("20261122T080001Z-a1b2c3", "a1b2c3")
    assert run_id_matches("20261122T080001Z-a1b2c3", "20261122T080001Z-a1b2c3")
    assert not run_id_matches("20261122T080001Z-a1b2c3", "1b2c3")
    assert not run_id_matches(None, "a1b2c3")


# -- filters ----------------------------------------------------------------------------------


def line(**rec: object) -> str:
    return json.dumps(rec)


def kept(flt: LogFilter, lines: list[str]) -> list[str]:
    sel = LineSelector(flt)
    return [text for text in lines if sel.select(text)[0]]


def test_level_filter_keeps_that_level_and_above() -> None:
    lines = [line(level=lv, event=lv) for lv in ("debug", "info", "warning", "error", "critical")]
    got = kept(LogFilter(min_level=parse_level("warning")), lines)
    assert [json.loads(t)["event"] for t in got] == ["warning", "error", "critical"]
    assert parse_level("WARN") == parse_level("warning")
    with pytest.raises(ValueError, match="unknown level 'loud'"):
        parse_level("loud")


def test_task_and_run_filters_drop_non_json_lines() -> None:
    lines = [
        line(event="run.end", task="a", run_id="20261122T080001Z-a1b2c3"),
        line(event="run.end", task="b", run_id="20261122T080001Z-ffffff"),
        "Traceback (most recent call last):",
        "",
    ]
    assert kept(LogFilter(task="a"), lines) == lines[:1]
    assert kept(LogFilter(run_id="ffffff"), lines) == lines[1:2]
    assert kept(LogFilter(), lines) == lines[:3]  # blank lines are never shown


def test_since_applies_to_non_json_lines_by_the_line_before() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    old = (now - timedelta(hours=2)).isoformat()
    new = (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
    lines = [
        "garbage before any time",
        line(ts=old, event="old"),
        "garbage after old",
        line(ts=new, event="new"),
        "garbage after new",
        line(event="no ts"),
    ]
    got = kept(LogFilter(since=now - timedelta(hours=1)), lines)
    assert got == lines[3:]


def test_log_files_oldest_first_and_ignores_other_names(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    for name in ("schedd.log", "schedd.log.1", "schedd.log.2", "schedd.log.10"):
        (tmp_path / name).write_text(name + "\n")
    for name in (".schedd.log.lock", "schedd.log.1.gz", "schedd.log.bak", "other.log.1"):
        (tmp_path / name).write_text("x\n")
    assert [p.name for p in log_files(log)] == [
        "schedd.log.10",
        "schedd.log.2",
        "schedd.log.1",
        "schedd.log",
    ]
    assert list(read_lines(log_files(log))) == [
        "schedd.log.10",
        "schedd.log.2",
        "schedd.log.1",
        "schedd.log",
    ]
    log.unlink()
    assert [p.name for p in log_files(log)][-1] == "schedd.log.1"
    assert log_files(tmp_path / "missing" / "schedd.log") == []


# -- following --------------------------------------------------------------------------------


class _Done(Exception):
    pass


def append(path: Path, text: str) -> None:
    with path.open("a") as f:
        f.write(text)


def rotate(log: Path, backups: int = 5) -> None:
    """What the logger does: shift .N, move schedd.log to .1 (a new one appears on next write)."""
    for i in range(backups - 1, 0, -1):
        src = log.with_name(f"{log.name}.{i}")
        if src.exists():
            os.replace(src, log.with_name(f"{log.name}.{i + 1}"))
    os.replace(log, log.with_name(f"{log.name}.1"))


def follow(
    log: Path, steps: list[Callable[[], None]], on_missing: Callable[[], None] | None = None
) -> list[str]:
    """Run the follower; each time it would sleep, do the next step; stop after the last."""
    queue = list(steps)

    def sleep(_s: float) -> None:
        if not queue:
            raise _Done
        queue.pop(0)()

    got: list[str] = []
    with pytest.raises(_Done):
        for text in Follower(log, sleep=sleep).lines(on_missing=on_missing):
            got.append(text)
    return got


def test_follow_reads_history_then_new_lines(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    (tmp_path / "schedd.log.1").write_text("old-1\n")
    log.write_text("cur-1\n")
    got = follow(
        log,
        [
            lambda: append(log, "cur-2\npartial"),
            lambda: append(log, " line\n"),
        ],
    )
    assert got == ["old-1", "cur-1", "cur-2", "partial line"]


def test_follow_across_rotation_finishes_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    log.write_text("a-1\n")

    def rotate_with_tail() -> None:
        append(log, "a-2\n")  # written just before the rotation, not yet read
        rotate(log)
        log.write_text("b-1\n")

    got = follow(log, [rotate_with_tail, lambda: append(log, "b-2\n")])
    assert got == ["a-1", "a-2", "b-1", "b-2"]


def test_follow_two_rotations_between_polls_loses_nothing(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    log.write_text("a-1\n")

    def burst() -> None:
        append(log, "a-2\n")
        rotate(log)
        log.write_text("b-1\n")
        rotate(log)
        log.write_text("c-1\n")

    got = follow(log, [burst])
    assert got == ["a-1", "a-2", "b-1", "c-1"]


def test_follow_truncation_in_place(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    log.write_text("first line that is long\n")
    got = follow(log, [lambda: log.write_text("new\n")])
    assert got == ["first line that is long", "new"]


def test_follow_waits_for_a_missing_file(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    told: list[bool] = []
    got = follow(
        log,
        [lambda: None, lambda: log.write_text("hello\n"), lambda: append(log, "again\n")],
        on_missing=lambda: told.append(True),
    )
    assert got == ["hello", "again"]
    assert told == [True]  # said once, not once per poll


def test_follow_when_the_file_disappears_and_comes_back(tmp_path: Path) -> None:
    log = tmp_path / "schedd.log"
    log.write_text("one\n")
    got = follow(log, [lambda: log.unlink(), lambda: None, lambda: log.write_text("two\n")])
    assert got == ["one", "two"]
