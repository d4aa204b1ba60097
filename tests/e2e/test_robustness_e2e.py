"""Hostile operations on a running daemon (issue #13): what a user does to its files while it runs.

Each test drives the real daemon and CLI on a temporary home: the pid file or the state DB
deleted, ``tasks/`` replaced by a file, ``schedd.toml`` changed, a busy ``status`` poll, a full
disk. The daemon must keep one lock, start no scheduled time twice, stay up where it can, say
clearly what is wrong, and never tell the user "triggered" when nothing will run.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Start, faketime_env, iso, runs, wait_for

from bassi_schedd.config.paths import Home

MINUTELY = 'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/sh", "-c", "echo ran"]\n'
NEVER = 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'


def events(home: Home, name: str) -> list[dict[str, object]]:
    """Log records of one event, oldest first."""
    if not home.log_file.exists():
        return []
    out = []
    for line in home.log_file.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == name:
            out.append(record)
    return out


def succeeded(home: Home, task: str, hhmm: str) -> bool:
    return any(
        r["scheduled_for"] == iso(hhmm) and r["status"] == "success" for r in runs(home, task)
    )


# -- D1: the lock survives a deleted pid file ----------------------------------------------------


def test_a_deleted_pid_file_lets_no_second_daemon_start(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task("minutely", MINUTELY)
    first = daemon(fake_at="2026-11-01 05:29:45")
    first.wait_ready()
    home.pid_file.unlink()

    second = daemon(fake_at="2026-11-01 05:29:47")
    assert second.proc.wait(30) == 1, second.output()
    assert f"already running (pid {first.pid})" in second.output()
    assert "Traceback" not in second.output()

    # status and trigger still find the daemon, and it writes its pid file again.
    status = json.loads(cli("status", "--json").stdout)
    assert status["daemon"]["running"] is True and status["daemon"]["pid"] == first.pid
    r = cli("trigger", "minutely")
    assert r.returncode == 0 and f"daemon pid {first.pid}" in r.stdout, r.stderr
    wait_for(lambda: home.pid_file.exists() and home.pid_file.read_text() == f"{first.pid}\n")
    assert [e["reason"] for e in events(home, "lock.restored")] == [
        f"{home.pid_file} was deleted; written again"
    ]

    # The 05:30 time runs, once: one row, one run.start, and no run id started twice.
    wait_for(lambda: succeeded(home, "minutely", "05:30"), 40)
    schedule_rows = [r for r in runs(home, "minutely") if r["trigger"] == "schedule"]
    assert Counter(r["scheduled_for"] for r in schedule_rows)[iso("05:30")] == 1
    started = Counter(e["run_id"] for e in events(home, "run.start"))
    assert started and max(started.values()) == 1
    assert [e["pid"] for e in events(home, "daemon.start")] == [first.pid]
    assert first.stop() == 0


_PROBER = """
import fcntl, os, sys, time
paths = sys.argv[1:]
print("probing", flush=True)
while True:
    fds = [os.open(p, os.O_RDONLY) for p in paths if os.path.exists(p)]
    for fd in fds:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            pass  # a daemon holds it: the probe's answer
    time.sleep(0.1)  # a status poll that the scheduler paused while it held its probe
    for fd in fds:
        os.close(fd)
    time.sleep(0.02)
"""


def test_a_busy_status_poll_never_makes_run_refuse_for_a_dead_pid(
    home: Home, write_task, daemon: Start, tmp_path: Path
) -> None:
    write_task("never", NEVER)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    home.pid_file.write_text(f"{dead.pid}\n")
    prober = subprocess.Popen(
        [sys.executable, "-c", _PROBER, str(home.schedd_dir), str(home.pid_file)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert prober.stdout is not None and prober.stdout.readline().strip() == "probing"
        for _ in range(3):  # the probe holds the lock 5/6 of the time
            d = daemon()
            wait_for(lambda d=d: d.pid in [e["pid"] for e in events(home, "daemon.start")], 30)
            assert f"pid {dead.pid}" not in d.output()
            assert d.stop() == 0
    finally:
        prober.kill()
        prober.wait()
        assert prober.stdout is not None
        prober.stdout.close()


# -- the state DB deleted under a running daemon --------------------------------------------------


def test_a_deleted_state_db_stops_the_daemon_and_trigger_says_so(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task("job", NEVER)
    # Just after a minute boundary: the daemon sleeps ~30 s before it would look at its state
    # DB on its own, so the trigger below is what finds it deleted.
    d = daemon(fake_at="2026-11-01 05:30:01")
    d.wait_ready()
    home.state_db.unlink()

    r = cli("trigger", "job")
    assert r.returncode == 1
    assert "triggered" not in r.stdout
    assert r.stderr == (
        f"bassi-schedd: the state database {home.state_db} was deleted under the running "
        f"daemon (pid {d.pid}), which stops now; start it again, then trigger 'job'\n"
    )
    assert d.proc.wait(30) == 1
    out = d.output()
    assert f"the state database {home.state_db} was deleted or replaced" in out
    assert "Traceback" not in out
    stopping = events(home, "daemon.stopping")
    assert len(stopping) == 1 and "deleted or replaced" in str(stopping[0]["error"])

    d = daemon()  # a new state DB, and all is well again
    d.wait_ready()
    assert cli("trigger", "job").returncode == 0
    wait_for(lambda: [r["status"] for r in runs(home, "job")] == ["success"], 30)
    assert d.stop() == 0


def test_a_replaced_state_db_stops_the_daemon_before_trigger_says_triggered(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task("job", NEVER)
    # Just after a minute boundary: the daemon sleeps ~30 s (its safety wake-up) before it
    # would look at its state DB on its own, so the trigger below is what finds it replaced.
    d = daemon(fake_at="2026-11-01 05:30:01")
    d.wait_ready()
    copy = home.schedd_dir / "copy.db"
    con = sqlite3.connect(home.state_db)
    con.execute(f"VACUUM INTO '{copy}'")
    con.close()
    for old in home.schedd_dir.glob("state.db*"):  # `rm state.db*; mv backup.db state.db`
        old.unlink()
    copy.replace(home.state_db)

    r = cli("trigger", "job")
    assert r.returncode == 1 and "triggered" not in r.stdout
    assert f"the daemon (pid {d.pid}) stopped before it took the request" in r.stderr
    assert d.proc.wait(30) == 1
    # The request is in the state DB now in place: the next daemon runs it.
    d = daemon()
    wait_for(lambda: [r["status"] for r in runs(home, "job")] == ["success"], 30)
    assert d.stop() == 0


# -- D12: tasks/ replaced by a file ---------------------------------------------------------------


def test_tasks_folder_replaced_by_a_file_is_reported_once_and_survived(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task("job", NEVER)
    d = daemon()
    d.wait_ready()
    saved = home.root / "tasks.saved"
    home.tasks_dir.rename(saved)
    home.tasks_dir.write_text("not a folder\n")
    for n in (1, 2):  # two reloads, one line
        d.signal(signal.SIGHUP)
        wait_for(lambda n=n: len(events(home, "daemon.reload")) >= n, 20)
    assert d.proc.poll() is None, d.output()
    problems = [e for e in events(home, "task.invalid") if e["task"] == str(home.tasks_dir)]
    assert len(problems) == 1
    assert problems[0]["error"] == (
        f"{home.tasks_dir}: the task folder is not a folder (a regular file); no task runs until "
        "it is a folder again"
    )
    assert [e["task"] for e in events(home, "task.removed")] == ["job"]

    home.tasks_dir.unlink()
    saved.rename(home.tasks_dir)
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(events(home, "task.loaded")) == 2, 20)
    assert cli("trigger", "job").returncode == 0
    wait_for(lambda: [r["status"] for r in runs(home, "job")] == ["success"], 20)
    assert d.stop() == 0


# -- D3: schedd.toml is reloaded ------------------------------------------------------------------


def test_schedd_toml_is_reloaded_on_sighup_and_when_it_changes(
    home: Home, write_task, daemon: Start, cli
) -> None:
    home.config_file.write_text('timezone = "UTC"\n')
    # No timezone of its own: it follows schedd.toml's.
    write_task("lunch", 'schedule = "35 12 * * *"\ncommand = ["/bin/true"]\n')
    write_task("poke", NEVER)
    d = daemon(fake_at="2026-11-01 03:34:45")
    d.wait_ready()

    home.config_file.write_text('timezone = "Asia/Tokyo"\n')
    d.signal(signal.SIGHUP)
    wait_for(lambda: events(home, "config.changed"), 20)
    assert events(home, "config.changed")[0]["changed"] == ["timezone"]
    assert [e["task"] for e in events(home, "task.changed")] == ["lunch"]
    listed = json.loads(cli("list", "--json", env=faketime_env("2026-11-01 03:34:50")).stdout)
    assert {t["name"]: t["next_run"] for t in listed if t["name"] == "lunch"} == {
        "lunch": "2026-11-01T12:35:00+09:00"
    }

    # A broken schedd.toml, no SIGHUP: the next tick (here one a trigger causes) notices it,
    # reports it once, and keeps the settings in use.
    home.config_file.write_text('timezone = "Mars/Olympus_Mons"\n')
    poked = cli("trigger", "poke")
    assert poked.returncode == 0, poked.stderr
    assert "'timezone'" in poked.stderr and "the daemon keeps the settings in use" in poked.stderr
    wait_for(lambda: events(home, "config.invalid"), 20)
    d.signal(signal.SIGHUP)
    wait_for(lambda: len(events(home, "daemon.reload")) >= 2, 20)
    invalid = events(home, "config.invalid")
    assert len(invalid) == 1, invalid
    assert invalid[0]["file"] == str(home.config_file)
    assert str(home.config_file) in str(invalid[0]["error"])
    assert "'timezone'" in str(invalid[0]["error"])

    # What `list` promised (12:35 JST = 03:35 UTC) is what the daemon runs, Tokyo time kept.
    wait_for(lambda: succeeded(home, "lunch", "03:35"), 40)
    assert d.stop() == 0


# -- D9: a full disk ------------------------------------------------------------------------------


@pytest.fixture
def small_disk(home: Home) -> Iterator[Home]:
    """BASSI_HOME on its own 2 MB tmpfs, so a test can fill it (needs root; else skipped)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("tmpfs mounts are a Linux thing")
    try:
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", str(home.root)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError as e:
        pytest.skip(f"cannot run mount: {e}")
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    try:
        home.ensure()
        yield home
    finally:
        if subprocess.run(["umount", str(home.root)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(home.root)], capture_output=True)


def fill_disk(path: Path, byte: bytes = b"x") -> None:
    """Append to ``path`` until the file system has no byte left (also none in its last block)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1):
            block = byte * size
            try:
                while True:
                    os.write(fd, block)
            except OSError as e:
                assert e.errno == errno.ENOSPC, e
    finally:
        os.close(fd)


def test_a_full_disk_under_a_running_daemon_delays_runs_and_loses_none(
    small_disk: Home, write_task, daemon: Start
) -> None:
    home = small_disk
    write_task("minutely", MINUTELY)
    d = daemon(fake_at="2026-11-01 05:29:45")
    d.wait_ready()
    filler = home.root / "filler"
    fill_disk(filler)
    # The 05:30 tick cannot write: the daemon says so (on stderr: the log file is full too).
    wait_for(lambda: '"daemon.disk_full"' in d.output(), 60)
    assert d.proc.poll() is None, d.output()
    assert "Traceback" not in d.output()

    filler.unlink()
    wait_for(lambda: succeeded(home, "minutely", "05:30"), 60)
    assert '"daemon.disk_ok"' in d.output()
    assert d.proc.poll() is None
    assert d.stop() == 0
    assert "Traceback" not in d.output()


def test_the_daemon_starts_on_a_full_disk_and_carries_on_when_there_is_room(
    small_disk: Home, write_task, daemon: Start
) -> None:
    home = small_disk
    write_task("minutely", MINUTELY)
    assert daemon(fake_at="2026-11-01 05:28:50", once=True).proc.wait(60) == 0
    filler = home.root / "filler"
    fill_disk(filler)
    fill_disk(home.log_file, b"\n")  # not one more line fits in the log file either
    # launchd's set-up: no stderr copy. Lines the log file cannot take reach stderr anyway.
    d = daemon(fake_at="2026-11-01 05:29:50", env={"BASSI_SCHEDD_LOG_STDERR": "off"})
    wait_for(lambda: '"daemon.disk_full"' in d.output(), 60)

    filler.unlink()  # the run below shows the daemon stayed up
    wait_for(lambda: succeeded(home, "minutely", "05:30"), 60)
    assert d.proc.poll() is None
    assert d.stop() == 0
    assert "Traceback" not in d.output()
