"""Start-up recovery with the real daemon: runs a kill -9 left `running` are adopted or closed."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime
from pathlib import Path

import psutil
from support import Start, iso, runs, statuses, wait_for

from bassi_schedd.config.paths import Home

# Ten seconds before 05:30 in the daemon's clock: a new task is owed only times after the
# daemon's first look at it, so its first tick must come before 05:30 even when a busy machine
# slows the daemon's start-up by seconds.
LEAD = "2026-11-01 05:29:50"


def gone(pid: int) -> bool:
    """The process is dead (a zombie no one reaped counts)."""
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_kill9_then_restart_adopts_live_run_and_loses_dead_one(
    home: Home, write_task, daemon: Start, tmp_path: Path
) -> None:
    release = tmp_path / "release"  # runs last until the test lets them end, however slow
    for name in ("alive", "dead"):
        write_task(
            name,
            f"""
            schedule = "* * * * *"
            timezone = "UTC"
            command = ["/bin/sh", "-c", "while [ ! -e {release} ]; do sleep 0.05; done"]
            on_missed = "latest"
            """,
        )
    d = daemon(fake_at=LEAD)
    d.wait_ready()
    wait_for(lambda: len([r for r in runs(home) if r["status"] == "running" and r["pid"]]) == 2, 40)
    d.stop(signal.SIGKILL)
    dead_pid = int(runs(home, "dead")[0]["pid"])  # type: ignore[arg-type]
    os.killpg(dead_pid, signal.SIGKILL)
    wait_for(lambda: gone(dead_pid), 5)

    d = daemon(fake_at="2026-11-01 05:30:05")
    d.wait_ready()
    wait_for(lambda: '"run.adopted"' in d.output(), 30)
    release.touch()
    wait_for(lambda: runs(home, "alive")[0]["status"] == "success", 20)
    wait_for(
        lambda: len(runs(home, "dead")) == 2 and runs(home, "dead")[1]["status"] == "success", 20
    )
    assert statuses(home, "alive") == [(iso("05:30"), "schedule", "success")]
    assert statuses(home, "dead") == [
        (iso("05:30"), "schedule", "lost"),
        (iso("05:30"), "catchup", "success"),
    ]
    assert "run.adopted" in d.output()
    assert d.stop() == 0


def test_run_that_ended_while_no_daemon_watched_keeps_its_exit_code(
    home: Home, write_task, daemon: Start, tmp_path: Path
) -> None:
    release = tmp_path / "release"  # the run ends when the test says, not on a timer
    write_task(
        "ends-alone",
        f"""
        schedule = "* * * * *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "while [ ! -e {release} ]; do sleep 0.05; done; exit 3"]
        on_missed = "latest"
        """,
    )
    d = daemon(fake_at=LEAD)
    d.wait_ready()
    wait_for(lambda: [r["status"] for r in runs(home)] == ["running"] and runs(home)[0]["pid"], 40)
    d.stop(signal.SIGKILL)
    pid = int(runs(home)[0]["pid"])  # type: ignore[arg-type]
    release.touch()
    wait_for(lambda: gone(pid), 10)  # the run ends on its own, unwatched

    d = daemon(fake_at="2026-11-01 05:30:20")
    d.wait_ready()
    wait_for(lambda: runs(home)[0]["status"] != "running", 10)
    row = runs(home)[0]
    assert (row["status"], row["exit_code"]) == ("failed", 3)
    # It ran, so its time is not owed again: no lost row, no catch-up.
    assert statuses(home, "ends-alone") == [(iso("05:30"), "schedule", "failed")]
    assert '"run.adopted"' not in d.output()
    assert d.stop() == 0


def test_run_whose_pid_was_never_saved_is_found_by_its_id(
    home: Home, write_task, daemon: Start
) -> None:
    from bassi_schedd.runner.process import spawn
    from bassi_schedd.store.state import NewRun, StateDB

    write_task("orphan", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    now = datetime.now(UTC)
    run_dir = home.run_dir("orphan", "r-unsaved")
    run_dir.mkdir(parents=True)
    db = StateDB.open(home.state_db)
    with db.tx() as tx:  # the state a kill -9 between "mark running" and "save pid" leaves
        tx.insert_runs([NewRun("r-unsaved", "orphan", "manual", now, "queued")], now)
        tx.mark_started("r-unsaved", now, str(run_dir), None, None)
    db.close()
    env = {"PATH": "/usr/bin:/bin", "BASSI_RUN_ID": "r-unsaved", "BASSI_RUN_DIR": str(run_dir)}
    go = run_dir / "go"  # the run lasts until the daemon has found it, however slow its start
    child = spawn(
        ["/bin/sh", "-c", f"while [ ! -e {go} ]; do sleep 0.05; done; exit 4"],
        env,
        run_dir,
        run_dir,
    )
    d = daemon()
    d.wait_ready()
    wait_for(lambda: '"run.adopted"' in d.output(), 30)
    go.touch()
    wait_for(lambda: runs(home)[0]["status"] == "failed", 15)
    row = runs(home)[0]
    assert (row["pid"], row["exit_code"]) == (child.pid, 4)
    assert '"run.adopted"' in d.output()
    child.wait(5)
    assert d.stop() == 0


def test_a_run_claimed_but_never_spawned_is_queued_again_not_lost(
    home: Home, write_task, cli
) -> None:
    """A kill -9 between claiming the row and spawning (no output.log: the daemon opens it just
    before forking) left nothing that ever ran: the next daemon queues it again and runs it once.
    A claimed row whose output.log exists and whose process is gone is lost, as before."""
    from bassi_schedd.store.state import NewRun, StateDB

    write_task("t", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    now = datetime.now(UTC)
    started_dir = home.run_dir("t", "r-started")
    started_dir.mkdir(parents=True)
    (started_dir / "output.log").write_text("")
    db = StateDB.open(home.state_db)
    with db.tx() as tx:
        tx.insert_runs(
            [
                NewRun("r-never", "t", "manual", now, "queued"),
                NewRun("r-started", "t", "manual", now, "queued"),
            ],
            now,
        )
        tx.mark_started("r-never", now, str(home.run_dir("t", "r-never")), None, None)
        tx.mark_started("r-started", now, str(started_dir), None, None)
    db.close()
    assert cli("run", "--once").returncode == 0
    by_id = {r["run_id"]: r["status"] for r in runs(home, "t")}
    assert by_id == {"r-never": "success", "r-started": "lost"}


def test_execute_run_whose_pid_was_reused_is_lost_not_alive_forever(
    home: Home, write_task, cli, tmp_path
) -> None:
    """`execute TASK` keeps its pid's create time: after a kill -9 and the pid's reuse by another
    process, the next daemon closes the row as lost instead of waiting on a stranger forever."""
    import subprocess

    from bassi_schedd.runner.process import create_time
    from bassi_schedd.store.state import StateDB

    write_task("t", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    stranger = subprocess.Popen(["sleep", "60"])
    live = subprocess.Popen(["sleep", "60"])
    try:
        db = StateDB.open(home.state_db)
        started = datetime(2026, 1, 1, tzinfo=UTC)
        created = create_time(stranger.pid)
        assert created is not None
        # The dead `execute` had this pid, but the process now holding it started later.
        db.start_manual_run(
            "t", "reused", lambda _: str(tmp_path), stranger.pid, created - 50, started
        )
        db.start_manual_run(
            "t", "alive", lambda _: str(tmp_path), live.pid, create_time(live.pid), started
        )
        db.close()
        assert cli("run", "--once").returncode == 0
        by_id = {r["run_id"]: r["status"] for r in runs(home, "t")}
        assert by_id == {"reused": "lost", "alive": "running"}
    finally:
        for p in (stranger, live):
            p.kill()
            p.wait()


def test_a_run_being_stopped_in_a_version_2_state_db_is_stopped_by_the_next_daemon(
    home: Home, write_task, daemon: Start, cli
) -> None:
    """An old daemon (schema v2, the stop noted as "stopping: timeout" in `detail`) died while
    it stopped a run. The new daemon migrates the file, adopts the run and finishes the stop:
    the run ends `timeout` (not `success` an hour later, not `lost`), and old history stays."""
    import sqlite3

    from bassi_schedd.runner.process import create_time, spawn
    from bassi_schedd.store.schema import MIGRATIONS

    write_task("slow", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    run_dir = home.run_dir("slow", "r-stopping")
    run_dir.mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "BASSI_RUN_ID": "r-stopping", "BASSI_RUN_DIR": str(run_dir)}
    child = spawn(["/bin/sh", "-c", "sleep 60"], env, run_dir, run_dir)
    try:
        now = datetime.now(UTC).isoformat(timespec="seconds")
        old = sqlite3.connect(home.state_db)
        old.executescript(MIGRATIONS[1])
        old.executescript(MIGRATIONS[2])
        old.execute("PRAGMA user_version = 2")
        old.execute(
            "INSERT INTO runs (run_id, task, trigger, scheduled_for, started_at, ended_at, "
            "status, exit_code, created_at) VALUES ('r-old', 'slow', 'manual', "
            "'2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00', "
            "'2026-01-01T00:00:01+00:00', 'success', 0, '2026-01-01T00:00:00+00:00')"
        )
        old.execute(
            "INSERT INTO runs (run_id, task, trigger, scheduled_for, started_at, status, run_dir, "
            "pid, pid_create_time, created_at, detail) VALUES ('r-stopping', 'slow', 'manual', "
            "?, ?, 'running', ?, ?, ?, ?, 'stopping: timeout')",
            (now, now, str(run_dir), child.pid, create_time(child.pid), now),
        )
        old.commit()
        old.close()
        d = daemon()
        d.wait_ready()
        wait_for(lambda: runs(home)[-1]["status"] == "timeout", 20)
        assert child.wait(10) is not None  # the whole run is gone, by the new daemon's hand
        rows = [(r["run_id"], r["status"], r["detail"], r["stop_reason"]) for r in runs(home)]
        assert rows == [
            ("r-old", "success", None, None),
            ("r-stopping", "timeout", None, "timeout"),
        ]
        assert '"run.adopted"' in d.output()
        history = cli("history", "--json")
        assert [r["run_id"] for r in json.loads(history.stdout)["runs"]] == ["r-stopping", "r-old"]
        assert d.stop() == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
