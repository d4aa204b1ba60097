"""Runs in process under a fake clock: timeouts, the kill grace, replace, retries and jitter.

Real child processes and a real state DB, but time moves only when the test says so: a 1 h
timeout and the 10 s kill grace take no real time, and nothing waits for a minute boundary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import wait_for
from support.fakeclock import FakeClock

from bassi_schedd.config.loader import TaskLoader
from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.daemon.scheduler import Scheduler
from bassi_schedd.store.state import StateDB

T0 = datetime(2026, 3, 2, 8, 59, 30, tzinfo=UTC)  # 09:00 is due 30 s later
# Ignores SIGTERM (so only the SIGKILL after the grace ends it) and says it is ready.
STUBBORN = "trap '' TERM; echo ready; while :; do sleep 0.05; done"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def make(home: Home, clock: FakeClock) -> Iterator[Callable[[], Scheduler]]:
    made: list[Scheduler] = []

    def _make() -> Scheduler:
        s = Scheduler(home, StateDB.open(home.state_db), load_config(home), clock=clock)
        s.set_tasks(dict(TaskLoader(home, s.config).load().tasks), clock.wall())
        s.tick(clock.wall())
        made.append(s)
        return made[-1]

    yield _make
    for s in made:
        s.runs.kill_grace_s = 0.0
        s.runs.stop_all(RunStatus.INTERRUPTED)
        wait_for(lambda s=s: s.service(clock.advance(1)) or not s.active, 30)
        s.db.close()


def task(write_task: Callable[[str, str], Path], name: str, script: str, extra: str = "") -> None:
    write_task(
        name,
        f'schedule = "0 9 * * *"\ntimezone = "UTC"\n{extra}\n'
        f'command = ["/bin/sh", "-c", "{script}"]\n',
    )


def output(s: Scheduler, task_name: str) -> str:
    [a] = [a for a in s.active if a.task == task_name]
    return (a.run_dir / "output.log").read_text()


def statuses(s: Scheduler, task_name: str) -> list[tuple[str, str]]:
    return [(r.trigger, r.status) for r in reversed(s.db.recent_runs(task_name))]


def serve_until(s: Scheduler, clock: FakeClock, done: Callable[[], bool]) -> None:
    """Service at the fake now until ``done`` (real processes still take real time to exit)."""
    wait_for(lambda: s.service(clock.wall()) or done(), 30)


def test_a_timeout_sigterms_and_sigkills_after_the_grace_in_fake_time(
    write_task: Callable[[str, str], Path], make: Callable[[], Scheduler], clock: FakeClock
) -> None:
    task(write_task, "stuck", STUBBORN, 'timeout = "1h"')
    s = make()
    s.tick(clock.advance(31))
    wait_for(lambda: "ready" in output(s, "stuck"), 20)
    [a] = s.active
    s.service(clock.advance(3599))
    assert a.stop_reason is None  # one second before the timeout
    s.service(clock.advance(1))
    assert a.stop_reason == RunStatus.TIMEOUT and a.kill_at_mono == clock.mono() + 10.0
    s.service(clock.advance(9))
    assert s.active == [a] and a.poll() == (False, None)  # TERM is ignored: inside the grace
    clock.advance(1)
    serve_until(s, clock, lambda: not s.active)
    assert statuses(s, "stuck") == [("schedule", "timeout")]


def test_kill_grace_is_a_setting(
    home: Home,
    write_task: Callable[[str, str], Path],
    make: Callable[[], Scheduler],
    clock: FakeClock,
) -> None:
    home.config_file.write_text('kill_grace = "2s"\n')
    task(write_task, "stuck", STUBBORN, 'timeout = "1m"')
    s = make()
    s.tick(clock.advance(31))
    wait_for(lambda: "ready" in output(s, "stuck"), 20)
    [a] = s.active
    s.service(clock.advance(60))
    assert a.kill_at_mono == clock.mono() + 2.0


def test_replace_stops_the_running_run_and_starts_the_new_one(
    write_task: Callable[[str, str], Path], make: Callable[[], Scheduler], clock: FakeClock
) -> None:
    write_task(
        "swap",
        'schedule = "* * * * *"\ntimezone = "UTC"\noverlap = "replace"\n'
        'command = ["/bin/sh", "-c", "echo ready; exec sleep 600"]\n',
    )
    s = make()
    s.tick(clock.advance(31))  # 09:00
    wait_for(lambda: "ready" in output(s, "swap"), 20)
    [first] = s.active
    s.tick(clock.advance(60))  # 09:01 replaces it
    assert first.stop_reason == RunStatus.REPLACED
    assert len(s.active) == 2
    serve_until(s, clock, lambda: first not in s.active)
    assert statuses(s, "swap") == [("schedule", "replaced"), ("schedule", "running")]


def test_a_failed_run_is_retried_after_its_delay_and_not_before(
    write_task: Callable[[str, str], Path], make: Callable[[], Scheduler], clock: FakeClock
) -> None:
    task(write_task, "flaky", "exit 3", 'retries = 1\nretry_delay = "5m"')
    s = make()
    s.tick(clock.advance(31))
    serve_until(s, clock, lambda: not s.active)
    assert statuses(s, "flaky") == [("schedule", "failed"), ("retry", "queued")]
    wake = s.next_wakeup_mono(clock.wall())
    assert wake is not None and 299 <= wake - clock.mono() <= 301  # no polling meanwhile
    s.service(clock.advance(290))
    assert not s.active
    s.service(clock.advance(15))
    serve_until(s, clock, lambda: not s.active)
    assert statuses(s, "flaky") == [("schedule", "failed"), ("retry", "failed")]


def test_jitter_holds_the_start_until_its_offset(
    write_task: Callable[[str, str], Path], make: Callable[[], Scheduler], clock: FakeClock
) -> None:
    task(write_task, "later", "exit 0", 'jitter = "1h"')
    s = make()
    s.tick(clock.advance(31))
    [row] = s.db.runs_with_status(RunStatus.QUEUED)
    assert row.not_before is not None
    offset_s = (row.not_before - clock.wall()).total_seconds()
    assert 0 <= offset_s < 3600
    s.service(clock.advance(max(offset_s - 1, 0)))
    assert statuses(s, "later") == [("schedule", "queued")] or offset_s < 1
    clock.advance(2)
    serve_until(s, clock, lambda: statuses(s, "later") == [("schedule", "success")])


def test_a_wall_clock_jump_does_not_move_a_running_timeout(
    write_task: Callable[[str, str], Path], make: Callable[[], Scheduler], clock: FakeClock
) -> None:
    task(write_task, "steady", STUBBORN, 'timeout = "10m"')
    s = make()
    s.tick(clock.advance(31))
    wait_for(lambda: "ready" in output(s, "steady"), 20)
    [a] = s.active
    clock.jump_wall(-7200)  # the wall clock stepped back two hours; monotonic time did not
    s.service(clock.advance(599))
    assert a.stop_reason is None
    s.service(clock.advance(1))
    assert a.stop_reason == RunStatus.TIMEOUT


def test_an_adopted_run_keeps_what_was_left_of_its_timeout(
    home: Home, write_task: Callable[[str, str], Path], clock: FakeClock
) -> None:
    """Recovery under the fake clock: a run a killed daemon left 50 minutes into its 1 h
    timeout is adopted with 10 minutes left, and times out then - not an hour later."""
    from bassi_schedd.daemon.recovery import recover
    from bassi_schedd.runner.process import create_time, spawn
    from bassi_schedd.store.state import NewRun

    task(write_task, "long", "sleep 600", 'timeout = "1h"')
    started = clock.wall() - timedelta(minutes=50)
    run_dir = home.run_dir("long", "r-left")
    run_dir.mkdir(parents=True)
    db = StateDB.open(home.state_db)
    env = {"PATH": "/usr/bin:/bin", "BASSI_RUN_ID": "r-left", "BASSI_RUN_DIR": str(run_dir)}
    child = spawn(["/bin/sh", "-c", "exec sleep 600"], env, run_dir, run_dir)
    with db.tx() as tx:  # what the killed daemon left: a running row with its pid
        tx.insert_runs([NewRun("r-left", "long", "schedule", started, "queued")], started)
        tx.mark_started("r-left", started, str(run_dir), child.pid, create_time(child.pid))
    db.close()
    s = Scheduler(home, StateDB.open(home.state_db), load_config(home), clock=clock)
    s.set_tasks(dict(TaskLoader(home, s.config).load().tasks), clock.wall())
    try:
        assert recover(home, s, clock.wall())
        [a] = s.active
        assert a.run_id == "r-left" and a.popen is None
        s.service(clock.advance(599))
        assert a.stop_reason is None
        s.service(clock.advance(1))
        assert a.stop_reason == RunStatus.TIMEOUT
        serve_until(s, clock, lambda: not s.active)
        assert statuses(s, "long") == [("schedule", "timeout")]
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        s.db.close()
