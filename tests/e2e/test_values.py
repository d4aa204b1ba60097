"""Hostile values (issue #13: D5-D7, D15 and the risks beside them) as the user meets them:
``check``, ``list``, ``next``, ``trigger`` through the real CLI, and the running daemon."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import CliResult, Start, runs, wait_for

from bassi_schedd.config.paths import Home
from bassi_schedd.store.state import StateDB

Cli = Callable[..., CliResult]
WriteTask = Callable[[str, str], Path]

CMD = 'command = ["/bin/true"]\n'
EVERY_MINUTE = 'schedule = "* * * * *"\ntimezone = "UTC"\n' + CMD

# (id, task file, key, what the sentence says)
OUT_OF_RANGE = [
    (
        "at-west-end",
        'at = "9999-12-31T23:59"\ntimezone = "America/New_York"\n' + CMD,
        "at",
        "the year must be between 1970 and 9998",
    ),
    (
        "at-east-start",
        'at = "0001-01-01T00:00"\ntimezone = "Asia/Tokyo"\n' + CMD,
        "at",
        "the year must be between 1970 and 9998",
    ),
    ("at-offset", 'at = "9999-06-01T00:00-05:00"\n' + CMD, "at", "between 1970 and 9998"),
    ("at-toml-datetime", "at = 9999-12-31T23:59:00\n" + CMD, "at", "between 1970 and 9998"),
    ("jitter", EVERY_MINUTE + 'jitter = "99999999d"\n', "jitter", "between 0s and 1d"),
    ("timeout", EVERY_MINUTE + 'timeout = "31d"\n', "timeout", "between 1s and 30d"),
    ("timeout-zero", EVERY_MINUTE + "timeout = 0\n", "timeout", "between 1s and 30d"),
    ("deadline", EVERY_MINUTE + "missed_deadline = 1e300\n", "missed_deadline", "and 366d"),
    ("retry-delay", EVERY_MINUTE + 'retry_delay = "2d"\n', "retry_delay", "between 0s and 1d"),
    ("retries", EVERY_MINUTE + "retries = 1000000\n", "retries", "between 0 and 100"),
    ("max-output", EVERY_MINUTE + 'max_output = "5GB"\n', "max_output", "between 1KB and 1GB"),
    (
        "max-turns",
        'schedule = "@daily"\nprompt = "hi"\nagent.max_turns = 99999999\n',
        "agent.max_turns",
        "between 1 and 10000",
    ),
    (
        "budget",
        'schedule = "@daily"\nprompt = "hi"\nagent.max_budget_usd = 1e12\n',
        "agent.max_budget_usd",
        "greater than 0 and at most 1000",
    ),
]


def no_traceback(r: CliResult) -> None:
    assert "Traceback" not in r.stdout + r.stderr, r.stderr


def log_events(home: Home, event: str) -> list[dict[str, object]]:
    if not home.log_file.exists():
        return []
    out = []
    for line in home.log_file.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line being written right now
        if record.get("event") == event:
            out.append(record)
    return out


# -- check, list, next ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key", "fragment"), [c[1:] for c in OUT_OF_RANGE], ids=[c[0] for c in OUT_OF_RANGE]
)
def test_check_refuses_a_value_out_of_range_naming_file_and_key(
    home: Home, write_task: WriteTask, cli: Cli, body: str, key: str, fragment: str
) -> None:
    path = write_task("hostile", body)
    r = cli("check")
    no_traceback(r)
    assert r.returncode == 1
    line = next(x for x in r.stdout.splitlines() if x.startswith("error "))
    assert re.match(rf"error {re.escape(str(path))}:\d+: key '{re.escape(key)}': ", line), line
    assert fragment in line
    listed = cli("list", "--json")
    no_traceback(listed)
    assert listed.returncode == 0
    assert [(t["name"], t["state"]) for t in json.loads(listed.stdout)] == [("hostile", "invalid")]
    shown = cli("next", "hostile")
    no_traceback(shown)
    assert shown.returncode == 1 and f"key '{key}'" in shown.stderr


LONG = "9" * 5000  # int() refuses more than 4300 digits with a ValueError


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (f'schedule = "@daily"\ntimeout = {LONG}\n' + CMD, ": holds a number too long to read"),
        (f'schedule = "every {LONG}m"\n' + CMD, "key 'schedule': is 5007 characters long;"),
        (f'schedule = "every {LONG[:20]}m"\n' + CMD, "at most 3650d"),
        (f'schedule = "monthly {LONG[:20]} 08:00"\n' + CMD, "the day must be 1-31"),
        ('schedule = "monthly \u00b2 08:00"\n' + CMD, "the day must be 1-31"),
        (f'schedule = "{LONG[:20]} * * * *"\n' + CMD, "minute must be 0-59"),
        (f'schedule = "*/{LONG[:20]} * * * *"\n' + CMD, "minute must be 0-59"),
        (f'at = "2026-01-01T00:00{" " * 100}"\n' + CMD, "key 'at': is 116 characters long"),
    ],
)
def test_numbers_with_thousands_of_digits_are_one_sentence(
    home: Home, write_task: WriteTask, cli: Cli, body: str, fragment: str
) -> None:
    write_task("digits", body)
    r = cli("check")
    no_traceback(r)
    assert r.returncode == 1
    (line,) = r.stdout.splitlines()
    assert line.startswith("error ") and fragment in line and len(line) < 300, line


def test_the_ends_of_the_supported_range_load_and_show_their_times(
    write_task: WriteTask, cli: Cli
) -> None:
    # The last minute of 9998 in the zones furthest west and east of UTC, and an explicit offset.
    write_task("west", 'at = "9998-12-31T23:59"\ntimezone = "Etc/GMT+12"\n' + CMD)
    write_task("east", 'at = "9998-12-31T23:59"\ntimezone = "Pacific/Kiritimati"\n' + CMD)
    write_task("offset", 'at = "9998-12-31T23:59-23:59"\ntimezone = "UTC"\n' + CMD)
    write_task(
        "widest",
        EVERY_MINUTE
        + 'jitter = "1d"\ntimeout = "30d"\nmissed_deadline = "366d"\nretry_delay = "1d"\n'
        + 'retries = 100\nmax_output = "1GB"\n',
    )
    r = cli("check")
    no_traceback(r)
    assert r.returncode == 0 and r.stdout.count("ok ") == 4, r.stdout
    listed = cli("list", "--json")
    no_traceback(listed)
    nxt = {t["name"]: t["next_run"] for t in json.loads(listed.stdout)}
    assert nxt["west"] == "9998-12-31T23:59:00-12:00"
    assert nxt["east"] == "9998-12-31T23:59:00+14:00"
    assert nxt["offset"] == "9999-01-01T23:58:00+00:00"
    for name in ("west", "east", "offset"):
        shown = cli("next", name, "-n", "3")
        no_traceback(shown)
        assert shown.returncode == 0 and len(shown.stdout.splitlines()) == 1


def test_next_walking_past_the_end_of_the_calendar_stops_there(
    write_task: WriteTask, cli: Cli
) -> None:
    write_task("decade", 'schedule = "every 3650d"\ntimezone = "UTC"\n' + CMD)
    r = cli("next", "decade", "-n", "1000")
    no_traceback(r)
    assert r.returncode == 0
    years = [int(line.split()[1][:4]) for line in r.stdout.splitlines()]
    assert years == sorted(years) and 9980 < years[-1] < 9999
    assert "no later times before 9999-01-02" in r.stderr


def test_schedd_toml_out_of_range_is_one_sentence_for_check_and_run(home: Home, cli: Cli) -> None:
    home.config_file.write_text("max_concurrent = 4\nkeep_runs_days = 999999\n")
    home.config_file.chmod(0o600)
    r = cli("check")
    no_traceback(r)
    assert r.returncode == 1
    assert (
        f"error {home.config_file}:2: key 'keep_runs_days': must be between 1 and 3650, "
        "got 999999" in r.stdout
    )
    ran = cli("run", "--once", timeout=60)
    no_traceback(ran)
    assert ran.returncode == 1
    assert ran.stderr.strip().splitlines()[-1].startswith("bassi-schedd: ")
    assert "keep_runs_days" in ran.stderr


# -- warnings: valid, but probably not what was meant ---------------------------------------------


def test_check_warns_about_surprising_values_and_still_exits_0(
    home: Home, write_task: WriteTask, cli: Cli
) -> None:
    past = write_task("past", 'at = "2020-01-01T10:00"\ntimezone = "UTC"\n' + CMD)
    backwards = write_task("backwards", 'schedule = "1-0 * * * *"\ntimezone = "UTC"\n' + CMD)
    jittery = write_task(
        "jittery", 'schedule = "*/10 * * * *"\ntimezone = "UTC"\njitter = "1h"\n' + CMD
    )
    patient = write_task("patient", EVERY_MINUTE + 'retry_delay = "2h"\n')
    write_task("fine", 'schedule = "0 22-23,0-2 * * *"\njitter = "5m"\n' + CMD)
    r = cli("check")
    no_traceback(r)
    assert r.returncode == 0
    warns = [line for line in r.stdout.splitlines() if line.startswith("warn ")]
    assert warns == [
        f"warn {backwards}: key 'schedule': minute field '1-0': the range '1-0' runs backwards "
        "(classic cron refuses that); it matches minute 0-59, so write that instead",
        f"warn {jittery}: key 'jitter': 1h is longer than the schedule's shortest interval "
        "(10m), so a run may start after the next scheduled time",
        f"warn {past}: key 'at': 2020-01-01T10:00 is in the past; unless the daemon saw this "
        "task before then, it will never run",
        f"warn {patient}: key 'retry_delay': 2h is more than the 1h cap on retry delays, so "
        "retries wait 1h",
    ]
    # What the warning says is what `next` shows: croniter wraps 1-0 around to every minute.
    minutes = [line.split()[2] for line in cli("next", "backwards", "-n", "3").stdout.splitlines()]
    hm = [int(m[:2]) * 60 + int(m[3:]) for m in minutes]
    assert [b - a for a, b in itertools.pairwise(hm)] in ([1, 1], [1, -1439], [-1439, 1])


# -- the daemon -----------------------------------------------------------------------------------


def test_daemon_refuses_hostile_files_and_keeps_running_the_others(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli
) -> None:
    write_task("good", EVERY_MINUTE)
    # Just before a minute boundary: a huge jitter used to kill the daemon at the first due tick.
    d = daemon(fake_at="2026-11-01 05:29:50")  # a 10 s lead: slow start-ups still see 05:30
    d.wait_ready()
    write_task("jitter", EVERY_MINUTE + 'jitter = "99999999d"\n')
    write_task("west", 'at = "9999-12-31T23:59"\ntimezone = "America/New_York"\n' + CMD)
    write_task("east", 'at = "0001-01-01T00:00"\ntimezone = "Asia/Tokyo"\n' + CMD)
    invalid = wait_for(lambda: len(log_events(home, "task.invalid")) == 3 or None, 20)
    assert invalid
    errors = {str(e["task"]): str(e["error"]) for e in log_events(home, "task.invalid")}
    assert "key 'jitter': must be between 0s and 1d" in errors["jitter"]
    assert "key 'at'" in errors["west"] and "key 'at'" in errors["east"]
    wait_for(lambda: [r for r in runs(home, "good") if r["status"] == "success"], 40)
    assert d.proc.poll() is None
    assert cli("trigger", "good").returncode == 0
    wait_for(lambda: [r for r in runs(home, "good") if r["trigger"] == "manual"], 20)
    assert d.stop() == 0
    assert "Traceback" not in d.output()
    assert [r["task"] for r in runs(home)] == ["good"] * len(runs(home))


# -- trigger --------------------------------------------------------------------------------------


def test_trigger_of_an_invalid_task_says_why_and_exits_1(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli, tmp_path: Path
) -> None:
    write_task("broken", 'schedule = "0 25 * * *"\n' + CMD)
    work = tmp_path / "work"
    work.mkdir()
    write_task("moved", EVERY_MINUTE.replace("* * * * *", "0 0 1 1 *") + f'cwd = "{work}"\n')
    d = daemon()
    d.wait_ready()
    r = cli("trigger", "broken")
    no_traceback(r)
    assert r.returncode == 1 and "triggered" not in r.stdout
    assert r.stderr.startswith("bassi-schedd: cannot trigger 'broken': ")
    assert "broken.toml:1: key 'schedule': bad cron expression" in r.stderr
    work.rmdir()  # the task's cwd vanished after the daemon loaded it
    r = cli("trigger", "moved")
    assert r.returncode == 1 and "triggered" not in r.stdout
    assert f"key 'cwd': '{work}' is not an existing directory" in r.stderr
    assert d.stop() == 0


def test_daemon_logs_a_trigger_it_cannot_honour(
    home: Home, write_task: WriteTask, daemon: Start, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    write_task("moved", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\n' + CMD + f'cwd = "{work}"\n')
    d = daemon()
    d.wait_ready()
    work.rmdir()
    # A request that raced the change (the CLI checked the file just before it broke).
    db = StateDB.open(home.state_db)
    try:
        db.add_request("moved", datetime.now(UTC))
    finally:
        db.close()
    os.kill(d.pid, signal.SIGUSR1)
    refused = wait_for(lambda: log_events(home, "trigger.refused"), 20)
    assert isinstance(refused, list) and len(refused) == 1
    assert refused[0]["task"] == "moved" and refused[0]["level"] == "error"
    assert "key 'cwd'" in str(refused[0]["error"])
    assert runs(home, "moved") == []
    assert d.stop() == 0


# -- max_output -----------------------------------------------------------------------------------


def output_log(home: Home, task: str) -> Path:
    run_dir = runs(home, task)[0]["run_dir"]
    assert isinstance(run_dir, str)
    return Path(run_dir) / "output.log"


def test_a_run_printing_more_than_max_output_keeps_the_tail(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli
) -> None:
    write_task(
        "chatty",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\nmax_output = "4KB"\n'
        'command = ["/bin/sh", "-c", "seq 1 20000"]\n',  # 108,894 bytes
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "chatty").returncode == 0
    wait_for(lambda: [r for r in runs(home, "chatty") if r["status"] == "success"], 20)
    data = output_log(home, "chatty").read_bytes()
    assert len(data) <= 4096
    lines = data.decode().splitlines()
    removed = int(re.match(r"\[bassi-schedd: (\d+) bytes", lines[0]).group(1))  # type: ignore[union-attr]
    assert lines[0].endswith("removed to keep this file under max_output = 4KB]")
    assert lines[-1] == "20000"
    kept = [int(x) for x in lines[1:]]
    assert kept == list(range(kept[0], 20001))  # whole lines, none lost or repeated
    assert removed + len("\n".join(lines[1:])) + 1 == 108894
    # One line at the end with the total (and one more if a wake-up caught the run going).
    trimmed = log_events(home, "run.output_trimmed")
    assert 1 <= len(trimmed) <= 2 and trimmed[-1]["task"] == "chatty"
    assert trimmed[-1]["removed_bytes"] == removed and trimmed[-1]["max_output_bytes"] == 4096
    assert d.stop() == 0


def test_output_of_a_run_still_going_is_trimmed_while_it_runs(
    home: Home, write_task: WriteTask, daemon: Start, cli: Cli
) -> None:
    write_task(
        "flood",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\nmax_output = "64KB"\n'
        'command = ["/bin/sh", "-c", "seq 1 200000; echo done; sleep 120"]\n',  # 1.3 MB
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "flood").returncode == 0
    wait_for(lambda: runs(home, "flood") and runs(home, "flood")[0]["run_dir"], 20)
    path = output_log(home, "flood")
    # Live, a file is cut back only once it is twice the cap (outputcap.LIVE_SLACK): depending on
    # when the last cut fell, it ends between the cap and twice the cap while the run goes on.
    wait_for(lambda: path.read_bytes().endswith(b"done\n") and path.stat().st_size <= 2 * 65536, 30)
    assert runs(home, "flood")[0]["status"] == "running"
    assert path.read_bytes().startswith(b"[bassi-schedd: ")
    assert d.stop() == 0
    assert runs(home, "flood")[0]["status"] == "interrupted"
    assert path.read_bytes().endswith(b"200000\ndone\n")


def test_a_foreground_execute_streams_everything_and_keeps_the_tail(
    home: Home, write_task: WriteTask, cli: Cli
) -> None:
    write_task(
        "chatty",
        'schedule = "0 0 1 1 *"\ntimezone = "UTC"\nmax_output = "4KB"\n'
        'command = ["/bin/sh", "-c", "seq 1 20000"]\n',
    )
    r = cli("execute", "chatty")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-20000:] == [str(i) for i in range(1, 20001)]
    data = output_log(home, "chatty").read_bytes()
    assert len(data) <= 4096 and data.startswith(b"[bassi-schedd: ")
    assert data.endswith(b"\n19999\n20000\n")
