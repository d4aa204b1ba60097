"""pause / resume / trigger through the real CLI, against files and the real daemon."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
from support import CliResult, Start, runs, wait_for

from bassi_schedd.config.paths import Home

Cli = Callable[..., CliResult]

COMMENTED = (
    "# Weekly report -- hand written, keep my comments\n"
    'description = "Weekly sales report"   # shown by list\n'
    'schedule    = "0 9 * * MON"\n'
    'timezone    = "UTC"\n'
    'command     = ["/bin/sh", "-c", "echo hi"]\n'
    "enabled     = true      # flipped by pause/resume\n"
    "\n"
    "# options for the executor\n"
    "[agent]\n"
    'model = "claude-sonnet-4-5"\n'
)


def put(home: Home, name: str, data: bytes, mode: int = 0o600) -> Path:
    path = home.tasks_dir / f"{name}.toml"
    path.write_bytes(data)
    path.chmod(mode)
    return path


# -- pause / resume on files ---------------------------------------------------------------------


def test_pause_resume_round_trip_changes_only_the_enabled_line(home: Home, cli: Cli) -> None:
    path = put(home, "weekly", COMMENTED.encode())
    r = cli("pause", "weekly")
    assert r.returncode == 0, r.stderr
    assert "paused weekly" in r.stdout and "no daemon is running" in r.stdout
    assert path.read_bytes() == COMMENTED.replace("= true      #", "= false      #").encode()
    r = cli("resume", "weekly")
    assert r.returncode == 0, r.stderr
    assert path.read_bytes() == COMMENTED.encode()


def test_pause_adds_the_key_and_resume_flips_it(home: Home, cli: Cli) -> None:
    original = COMMENTED.replace("enabled     = true      # flipped by pause/resume\n", "")
    path = put(home, "weekly", original.encode())
    assert cli("pause", "weekly").returncode == 0
    added = original.replace('"echo hi"]\n', '"echo hi"]\nenabled = false\n')
    assert path.read_bytes() == added.encode()
    assert cli("resume", "weekly").returncode == 0
    # Decision: resume keeps the line and says true (it cannot know who wrote the line).
    assert path.read_bytes() == added.replace("enabled = false", "enabled = true").encode()
    r = cli("resume", "weekly")
    assert r.returncode == 0 and "already enabled" in r.stdout


def test_resume_of_a_file_without_the_key_writes_nothing(home: Home, cli: Cli) -> None:
    text = 'schedule = "@daily"\ncommand = ["/bin/true"]\n'
    path = put(home, "plain", text.encode())
    inode = path.stat().st_ino
    r = cli("resume", "plain")
    assert r.returncode == 0 and "already enabled" in r.stdout
    assert path.read_bytes() == text.encode() and path.stat().st_ino == inode


def test_pause_twice_says_already_paused(home: Home, cli: Cli) -> None:
    put(home, "weekly", COMMENTED.encode())
    assert cli("pause", "weekly").returncode == 0
    r = cli("pause", "weekly")
    assert r.returncode == 0 and "already paused" in r.stdout


def test_crlf_file_round_trip(home: Home, cli: Cli) -> None:
    crlf = COMMENTED.replace("\n", "\r\n").encode()
    path = put(home, "dos", crlf)
    assert cli("pause", "dos").returncode == 0
    assert path.read_bytes() == crlf.replace(b"= true      #", b"= false      #")
    assert cli("resume", "dos").returncode == 0
    assert path.read_bytes() == crlf
    no_key = b'schedule = "@daily"\r\ncommand = ["/bin/true"]\r\n[agent]\r\nmodel = "m"\r\n'
    path.write_bytes(no_key)
    assert cli("pause", "dos").returncode == 0
    assert path.read_bytes() == no_key.replace(b"]\r\n[agent]", b"]\r\nenabled = false\r\n[agent]")


def test_edit_is_atomic_and_keeps_the_mode(home: Home, cli: Cli) -> None:
    path = put(home, "weekly", COMMENTED.encode(), mode=0o640)
    inode = path.stat().st_ino
    assert cli("pause", "weekly").returncode == 0
    st = path.stat()
    assert st.st_mode & 0o777 == 0o640
    assert st.st_ino != inode  # replaced by rename, never rewritten in place
    assert sorted(p.name for p in home.tasks_dir.iterdir()) == ["weekly.toml"]  # no temp left


def test_a_symlinked_task_file_stays_a_symlink(home: Home, cli: Cli, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "weekly.toml"
    real.parent.mkdir()
    real.write_text(COMMENTED)
    real.chmod(0o600)
    link = home.tasks_dir / "weekly.toml"
    link.symlink_to(real)
    assert cli("pause", "weekly").returncode == 0
    assert link.is_symlink()
    assert "enabled     = false" in real.read_text()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('schedule = "@daily"\nenabled = "no"\n', "something other than true or false"),
        ('schedule = "@daily"\nenabled = \n', "is not valid TOML"),
    ],
)
def test_refuses_files_it_cannot_edit_safely(home: Home, cli: Cli, body: str, message: str) -> None:
    path = put(home, "odd", body.encode())
    for command in ("pause", "resume"):
        r = cli(command, "odd")
        assert r.returncode == 1
        assert message in r.stderr and str(path) in r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert path.read_bytes() == body.encode()


def test_refuses_a_group_writable_file(home: Home, cli: Cli) -> None:
    path = put(home, "weekly", COMMENTED.encode(), mode=0o660)
    r = cli("pause", "weekly")
    assert r.returncode == 1 and "group-writable" in r.stderr
    assert path.read_bytes() == COMMENTED.encode()


@pytest.mark.parametrize("command", ["pause", "resume", "trigger"])
def test_unknown_or_malformed_task_names(home: Home, cli: Cli, command: str) -> None:
    r = cli(command, "nope")
    assert r.returncode == 1 and "no task named 'nope'" in r.stderr
    r = cli(command, "../schedd/x")
    assert r.returncode == 1 and "is not a task name" in r.stderr


# -- with the real daemon -------------------------------------------------------------------------


def test_trigger_without_a_daemon_suggests_execute(home: Home, cli: Cli) -> None:
    put(home, "weekly", COMMENTED.encode())
    r = cli("trigger", "weekly")
    assert r.returncode == 1
    assert "no daemon is running" in r.stderr
    assert "bassi-schedd execute weekly" in r.stderr


def test_trigger_starts_the_run_within_a_second(home: Home, cli: Cli, daemon: Start) -> None:
    put(home, "quick", b'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    d = daemon()
    d.wait_ready()
    end_to_end_s: list[float] = []
    daemon_side_s: list[float] = []
    for i in range(5):
        before = time.time()
        assert cli("trigger", "quick").returncode == 0
        row = wait_for(
            lambda i=i: [r for r in runs(home, "quick")[i:] if r["status"] == "success"], 10
        )[0]  # type: ignore[index]
        started = datetime.fromisoformat(str(row["started_at"])).timestamp()
        requested = datetime.fromisoformat(str(row["scheduled_for"])).timestamp()
        end_to_end_s.append(started - before)
        daemon_side_s.append(started - requested)
    print(
        f"\ntrigger latency: end to end (CLI start -> run started) median "
        f"{statistics.median(end_to_end_s):.3f}s max {max(end_to_end_s):.3f}s; "
        f"daemon side (request -> start) median {statistics.median(daemon_side_s):.3f}s "
        f"max {max(daemon_side_s):.3f}s"
    )
    assert statistics.median(end_to_end_s) < 1.0
    assert max(daemon_side_s) < 1.0
    assert [r["trigger"] for r in runs(home, "quick")] == ["manual"] * 5
    assert d.stop() == 0


def test_pause_applies_at_once_through_sighup(home: Home, cli: Cli, daemon: Start) -> None:
    put(home, "weekly", COMMENTED.encode())
    d = daemon()
    d.wait_ready()
    r = cli("pause", "weekly")
    assert r.returncode == 0 and f"daemon pid {d.pid} reloaded" in r.stdout
    # Well before the next minute's tick: the reload came from the SIGHUP.
    wait_for(lambda: '"daemon.reload"' in home.log_file.read_text(), 5)
    assert '"task.changed"' in home.log_file.read_text()
    assert d.stop() == 0


def test_paused_task_is_not_run_and_resume_owes_nothing(
    home: Home, cli: Cli, daemon: Start
) -> None:
    every_minute = 'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'
    put(home, "control", every_minute.encode())
    put(home, "paused", (every_minute + "enabled = false\n").encode())
    d = daemon(fake_at="2026-11-01 05:29:50")  # a 10 s lead: slow start-ups still see 05:30
    d.wait_ready()
    # The control task proves 05:30:00 passed in the daemon's clock and was acted on.
    wait_for(lambda: [r for r in runs(home, "control") if r["status"] == "success"], 40)
    assert runs(home, "paused") == []
    assert cli("resume", "paused").returncode == 0
    wait_for(lambda: home.log_file.read_text().count('"daemon.reload"') >= 1, 5)
    time.sleep(1.5)  # a catch-up of 05:30 would start within this
    assert runs(home, "paused") == []  # times while paused are not owed
    assert d.stop() == 0


def test_resume_after_a_restart_owes_nothing(home: Home, cli: Cli, daemon: Start) -> None:
    put(home, "t", b'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    assert cli("pause", "t").returncode == 0
    assert daemon(fake_at="2026-11-01 05:29:50", once=True).proc.wait(60) == 0
    assert cli("resume", "t").returncode == 0
    assert daemon(fake_at="2026-11-01 06:10:30", once=True).proc.wait(60) == 0
    assert runs(home, "t") == []  # 05:30 .. 06:10 fell while it was paused


def test_no_temp_files_are_left_when_the_edit_is_refused(home: Home, cli: Cli) -> None:
    put(home, "odd", b'enabled = "x"\n')
    assert cli("pause", "odd").returncode == 1
    assert [p.name for p in home.tasks_dir.iterdir()] == ["odd.toml"]
    assert not any(name.startswith(".") for name in os.listdir(home.tasks_dir))
