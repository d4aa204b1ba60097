"""The real daemon as a subprocess on a temp home: policies, overlap, timeouts, locks, signals."""

from __future__ import annotations

import signal
import time
from datetime import datetime
from itertools import pairwise
from pathlib import Path

import psutil
import pytest
from support import CliResult, Start, iso, runs, statuses, wait_for

from bassi_schedd.config.paths import Home

# -- missed-run policies after an outage --------------------------------------------------------


def test_each_on_missed_policy_after_an_outage(home: Home, write_task, daemon: Start) -> None:
    for policy in ("skip", "latest", "all"):
        write_task(
            f"hourly-{policy}",
            f"""
            schedule = "0 * * * *"
            timezone = "UTC"
            command = ["/bin/true"]
            on_missed = "{policy}"
            """,
        )
    write_task(
        "deadline",
        """
        schedule = "0 * * * *"
        timezone = "UTC"
        command = ["/bin/true"]
        on_missed = "latest"
        missed_deadline = "90m"
        """,
    )
    # First sight at 05:29:50: nothing is owed for earlier times.
    assert daemon(fake_at="2026-11-01 05:29:50", once=True).proc.wait(60) == 0
    assert runs(home) == []
    # The daemon was down from 05:29 until 09:20: 06:00, 07:00, 08:00 and 09:00 were missed.
    d = daemon(fake_at="2026-11-01 09:20:00", once=True)
    assert d.proc.wait(60) == 0, d.output()

    assert statuses(home, "hourly-skip") == [
        (iso("06:00"), "catchup", "missed"),
        (iso("07:00"), "catchup", "missed"),
        (iso("08:00"), "catchup", "missed"),
        (iso("09:00"), "catchup", "missed"),
    ]
    assert statuses(home, "hourly-latest") == [
        (iso("06:00"), "catchup", "coalesced"),
        (iso("07:00"), "catchup", "coalesced"),
        (iso("08:00"), "catchup", "coalesced"),
        (iso("09:00"), "catchup", "success"),
    ]
    assert sorted(statuses(home, "hourly-all")) == [
        (iso("06:00"), "catchup", "success"),
        (iso("07:00"), "catchup", "success"),
        (iso("08:00"), "catchup", "success"),
        (iso("09:00"), "catchup", "success"),
    ]
    # on_missed=all runs them one after another, oldest first.
    all_rows = runs(home, "hourly-all")
    for a, b in pairwise(all_rows):
        assert str(a["ended_at"]) <= str(b["started_at"])
    assert statuses(home, "deadline") == [
        (iso("06:00"), "catchup", "missed"),
        (iso("07:00"), "catchup", "missed"),
        (iso("08:00"), "catchup", "coalesced"),
        (iso("09:00"), "catchup", "success"),
    ]
    # A third start right after: nothing is owed, nothing runs again.
    assert daemon(fake_at="2026-11-01 09:21:00", once=True).proc.wait(60) == 0
    assert len(runs(home)) == 16


def test_no_scheduled_time_runs_twice_across_restarts_and_clock_steps(
    home: Home, write_task, daemon: Start
) -> None:
    write_task(
        "minutely",
        """
        schedule = "* * * * *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "sleep 5"]  # long enough to be seen running on a busy machine
        overlap = "allow"
        """,
    )
    d = daemon(fake_at="2026-11-01 05:29:50")  # a 10 s lead: slow start-ups still see 05:30
    d.wait_ready()
    wait_for(lambda: [r for r in runs(home) if r["status"] == "running" and r["pid"]], 40)
    d.stop(signal.SIGKILL)  # crash while the 05:30 run is going
    d = daemon(fake_at="2026-11-01 05:30:02")  # adopts it
    d.wait_ready()
    wait_for(lambda: runs(home)[0]["status"] == "success", 15)
    assert d.stop() == 0
    for fake_at, sig in (
        ("2026-11-01 05:30:20", signal.SIGTERM),
        ("2026-11-01 05:29:58", signal.SIGTERM),  # clock stepped back across 05:30
        ("2026-11-01 05:30:01", signal.SIGKILL),
    ):
        d = daemon(fake_at=fake_at)
        d.wait_ready()
        time.sleep(3.0)  # long enough to cross 05:30:00 again where the clock allows it
        d.stop(sig)
    rows = runs(home, "minutely")
    assert [(r["scheduled_for"], r["status"]) for r in rows] == [(iso("05:30"), "success")]
    assert len(list((home.runs_dir / "minutely").iterdir())) == 1


# -- overlap and concurrency ---------------------------------------------------------------------


def test_each_overlap_policy(home: Home, write_task, daemon: Start, cli, tmp_path: Path) -> None:
    # Each run lasts until the test lets it end: the triggers below always find it running,
    # however slow a loaded machine makes them.
    release = tmp_path / "release"
    for policy in ("skip", "queue", "replace", "allow"):
        write_task(
            f"long-{policy}",
            f"""
            schedule = "0 0 1 1 *"
            timezone = "UTC"
            command = ["/bin/sh", "-c", "while [ ! -e {release} ]; do sleep 0.05; done"]
            overlap = "{policy}"
            """,
        )
    (home.config_file).write_text("max_concurrent = 10\n")
    d = daemon()
    d.wait_ready()
    for policy, times in (("skip", 2), ("queue", 3), ("replace", 2), ("allow", 2)):
        for i in range(times):
            r: CliResult = cli("trigger", f"long-{policy}")
            assert r.returncode == 0, r.stderr
            # Each trigger is handled (started, waiting or skipped) before the next one.
            wait_for(lambda p=policy, n=i + 1: len(runs(home, f"long-{p}")) == n, 5)
            if i == 0:
                wait_for(lambda p=policy: runs(home, f"long-{p}")[0]["status"] == "running", 5)

    def settled() -> bool:
        return all(r["status"] not in ("running", "queued") for r in runs(home))

    release.touch()
    wait_for(settled, 30)
    assert [r["status"] for r in runs(home, "long-skip")] == ["success", "skipped_overlap"]
    queue = runs(home, "long-queue")
    assert [r["status"] for r in queue] == ["success", "success", "skipped_overlap"]
    assert str(queue[1]["started_at"]) >= str(queue[0]["ended_at"])
    assert [r["status"] for r in runs(home, "long-replace")] == ["replaced", "success"]
    allow = runs(home, "long-allow")
    assert [r["status"] for r in allow] == ["success", "success"]
    assert str(allow[1]["started_at"]) < str(allow[0]["ended_at"])  # ran side by side
    assert d.stop() == 0


def test_max_concurrent_queues_fifo_and_drops_none(
    home: Home, write_task, daemon: Start, cli
) -> None:
    home.config_file.write_text("max_concurrent = 2\n")
    names = [f"job{i}" for i in range(6)]
    for name in names:
        write_task(
            name,
            """
            schedule = "0 0 1 1 *"
            timezone = "UTC"
            command = ["/bin/sh", "-c", "sleep 1"]
            """,
        )
    d = daemon()
    d.wait_ready()
    for name in names:
        assert cli("trigger", name).returncode == 0
    wait_for(lambda: len([r for r in runs(home) if r["status"] == "success"]) == 6, 30)
    rows = runs(home)
    assert [r["task"] for r in sorted(rows, key=lambda r: str(r["started_at"]))] == names
    spans = [
        (datetime.fromisoformat(str(r["started_at"])), datetime.fromisoformat(str(r["ended_at"])))
        for r in rows
    ]
    for s, _ in spans:
        assert sum(1 for a, b in spans if a <= s < b) <= 2
    assert d.stop() == 0


# -- timeouts and process trees ------------------------------------------------------------------

TREE = r"""
trap '' TERM
( trap '' TERM; echo $$ > grandchild.pid; exec sleep 300 ) &
setsid sh -c 'echo $$ > escaped.pid; trap "" TERM; sleep 300' &
sleep 300
"""


def test_timeout_kills_the_whole_tree(
    home: Home, write_task, daemon: Start, cli, tmp_path: Path
) -> None:
    home.config_file.write_text('kill_grace = "2s"\n')  # the 10 s default changes nothing here
    work = tmp_path / "work"
    work.mkdir()
    write_task(
        "hung",
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        timeout = "1s"
        cwd = "{work}"
        command = ["/bin/sh", "-c", '''{TREE}''']
        """,
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "hung").returncode == 0
    wait_for(lambda: (work / "escaped.pid").exists() and (work / "grandchild.pid").exists(), 10)
    pids = [int((work / f).read_text()) for f in ("grandchild.pid", "escaped.pid")]
    row = wait_for(lambda: [r for r in runs(home) if r["status"] == "timeout"], 30)[0]  # type: ignore[index]
    assert row["exit_code"] is not None

    def gone() -> bool:
        for pid in pids:
            try:
                if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                    return False
                return False  # a zombie is a failure too: keep waiting for the reaper
            except psutil.NoSuchProcess:
                continue
        return True

    wait_for(gone, 20)
    me = psutil.Process(d.pid)
    assert [c for c in me.children(recursive=True)] == []
    assert d.stop() == 0


# -- locking, crash recovery, signals ------------------------------------------------------------


def test_two_daemons_at_once_exactly_one_runs(home: Home, daemon: Start) -> None:
    a, b = daemon(), daemon()
    wait_for(lambda: a.proc.poll() is not None or b.proc.poll() is not None, 20)
    loser, winner = (a, b) if a.proc.poll() is not None else (b, a)
    assert loser.proc.returncode == 1
    assert f"already running (pid {winner.pid})" in loser.output()
    assert "Traceback" not in loser.output()
    assert winner.proc.poll() is None
    assert winner.stop() == 0


def test_stale_pid_file_does_not_block(home: Home, daemon: Start) -> None:
    home.pid_file.write_text("999999\n")
    d = daemon()
    d.wait_ready()
    assert home.pid_file.read_text().strip() == str(d.pid)
    assert d.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_interrupts_runs_and_exits_zero(
    home: Home, write_task, daemon: Start, cli, sig: int
) -> None:
    write_task(
        "slow",
        """
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "sleep 60"]
        """,
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "slow").returncode == 0
    row = wait_for(lambda: [r for r in runs(home) if r["status"] == "running" and r["pid"]], 10)[0]  # type: ignore[index]
    start = time.monotonic()
    assert d.stop(sig) == 0
    assert time.monotonic() - start < 12
    assert [r["status"] for r in runs(home)] == ["interrupted"]
    assert not psutil.pid_exists(int(row["pid"]))  # type: ignore[arg-type]
    assert "daemon.stop" in d.output()


# -- retries -------------------------------------------------------------------------------------


def test_retries_back_off_and_survive_a_restart(home: Home, write_task, daemon: Start, cli) -> None:
    write_task(
        "flaky",
        """
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "exit 3"]
        retries = 2
        retry_delay = "2s"
        """,
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "flaky").returncode == 0
    wait_for(lambda: [r["status"] for r in runs(home)] == ["failed", "queued"], 10)
    assert d.stop() == 0  # the pending retry lives in the state DB
    d = daemon()
    d.wait_ready()
    wait_for(lambda: [r["status"] for r in runs(home)] == ["failed"] * 3, 30)
    rows = runs(home)
    assert [r["attempt"] for r in rows] == [1, 2, 3]
    assert [r["trigger"] for r in rows] == ["manual", "retry", "retry"]
    assert [r["exit_code"] for r in rows] == [3, 3, 3]
    gaps = [
        (
            datetime.fromisoformat(str(b["started_at"]))
            - datetime.fromisoformat(str(a["ended_at"]))
        ).total_seconds()
        for a, b in pairwise(rows)
    ]
    assert gaps[0] >= 2.0 and gaps[1] >= 4.0, gaps
    time.sleep(1.0)
    assert len(runs(home)) == 3
    assert d.stop() == 0


def test_exit_75_is_retried_three_times_even_without_retries(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task(
        "tempfail",
        """
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "exit 75"]
        retry_delay = "0.2s"
        """,
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "tempfail").returncode == 0
    wait_for(lambda: len(runs(home)) == 4 and runs(home)[-1]["status"] == "failed", 20)
    time.sleep(1.5)
    rows = runs(home)
    assert [(r["attempt"], r["status"], r["exit_code"]) for r in rows] == [
        (1, "failed", 75),
        (2, "failed", 75),
        (3, "failed", 75),
        (4, "failed", 75),
    ]
    assert d.stop() == 0


# -- bad input while running ---------------------------------------------------------------------


def test_bad_task_file_added_while_running_does_not_stop_others(
    home: Home, write_task, daemon: Start
) -> None:
    write_task(
        "good",
        """
        schedule = "* * * * *"
        timezone = "UTC"
        command = ["/bin/true"]
        """,
    )
    d = daemon(fake_at="2026-11-01 05:29:50")  # a 10 s lead: slow start-ups still see 05:30
    d.wait_ready()
    write_task("broken", 'schedule = "61 * * * *"\ncommand = ["/bin/true"]\n')
    wait_for(lambda: [r for r in runs(home, "good") if r["status"] == "success"], 40)
    assert statuses(home, "good") == [(iso("05:30"), "schedule", "success")]
    log = home.log_file.read_text()
    invalid = [line for line in log.splitlines() if '"task.invalid"' in line]
    assert len(invalid) == 1 and "broken.toml" in invalid[0] and "schedule" in invalid[0]
    assert d.stop() == 0


@pytest.mark.parametrize("sig", [signal.SIGHUP])
def test_sighup_reloads_at_once(home: Home, write_task, daemon: Start, sig: int) -> None:
    d = daemon()
    d.wait_ready()
    write_task("late", 'schedule = "0 0 1 1 *"\ncommand = ["/bin/true"]\n')
    d.signal(sig)
    wait_for(lambda: '"daemon.reload"' in home.log_file.read_text(), 5)
    assert '"task.loaded"' in home.log_file.read_text()
    assert d.stop() == 0


def test_daemon_prunes_old_run_folders_and_keeps_history(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task("kept", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    home.config_file.write_text("keep_runs_days = 30\nkeep_runs = 2\n")
    d = daemon()
    d.wait_ready()
    for _ in range(3):
        n = len(runs(home))
        assert cli("trigger", "kept").returncode == 0
        wait_for(lambda n=n: len(runs(home)) == n + 1 and runs(home)[-1]["status"] == "success", 10)
    old = home.runs_dir / "kept" / "20250101T000000Z-abcdef"
    old.mkdir()
    (old / "output.log").write_text("old\n")
    assert d.stop() == 0
    d = daemon()  # prunes at start, then hourly
    d.wait_ready()
    wait_for(lambda: not old.exists(), 10)
    left = sorted(p.name for p in (home.runs_dir / "kept").iterdir())
    assert left == sorted(str(r["run_id"]) for r in runs(home))[-2:]
    assert len(runs(home)) == 3  # history rows stay
    assert '"runs.pruned"' in home.log_file.read_text()
    assert d.stop() == 0


def test_pause_drops_a_pending_retry_but_trigger_still_runs(
    home: Home, write_task, daemon: Start, cli
) -> None:
    write_task(
        "flaky",
        """
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "exit 1"]
        retries = 1
        retry_delay = "2s"
        """,
    )
    d = daemon()
    d.wait_ready()
    assert cli("trigger", "flaky").returncode == 0
    wait_for(lambda: [r["status"] for r in runs(home)] == ["failed", "queued"], 10)
    assert cli("pause", "flaky").returncode == 0
    wait_for(lambda: [r["status"] for r in runs(home)] == ["failed", "missed"], 10)
    assert runs(home)[1]["detail"] == "task paused"
    assert cli("trigger", "flaky").returncode == 0  # a person may still run a paused task
    wait_for(lambda: len(runs(home)) >= 3 and runs(home)[2]["status"] == "failed", 10)
    assert d.stop() == 0


def test_stderr_copy_can_be_turned_off_for_launchd(home: Home, daemon: Start) -> None:
    d = daemon(env={"BASSI_SCHEDD_LOG_STDERR": "off"})
    d.wait_ready()
    assert d.stop() == 0
    assert '"daemon.start"' in home.log_file.read_text()
    assert d.output() == ""
