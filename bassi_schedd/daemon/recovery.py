"""Start-up recovery: what a killed daemon left `running` is adopted, finished or closed as lost.

A run whose process still lives (same PID and create time) is adopted and watched again, with
what is left of its timeout; a stop the dead daemon had begun is finished. A run that ended while
no daemon watched keeps the exit code its wrapper wrote. Anything else is `lost`, and its time -
like every interrupted time - counts as missed under the task's `on_missed`.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from bassi_schedd.config.paths import Home
from bassi_schedd.core.records import iso_utc
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.daemon.scheduler import Scheduler
from bassi_schedd.runner.process import Active, create_time, find_run_root, is_alive, read_exit_code
from bassi_schedd.store.state import RunRow

log = structlog.get_logger()

DEFAULT_TIMEOUT_S = 3600.0  # for a run whose task file is gone or invalid now


def recover(home: Home, sched: Scheduler, now: datetime) -> bool:
    """Adopt runs a killed daemon left behind, or close them as lost (their times: missed).

    Returns False when a row could not be dealt with (a full disk, a bug: logged); calling it
    again later finishes the job and adopts nothing twice.
    """
    db = sched.db
    complete = True
    watched = {a.run_id for a in sched.active}
    for row in db.runs_with_status(RunStatus.RUNNING):
        if row.run_id in watched:
            continue
        try:
            _recover_row(home, sched, row, now)
        except Exception as e:
            sched.troubles.failed(e, "recover", task=row.task, run_id=row.run_id)
            complete = False
    # Interrupted and lost times count as missed now, under each task's on_missed.
    for task, at in db.orphaned_times():
        owed = sched.recovered.setdefault(task, [])
        if at not in owed:
            owed.append(at)
    return complete


def _recover_row(home: Home, sched: Scheduler, row: RunRow, now: datetime) -> None:
    db = sched.db
    run_dir = home.run_dir(row.task, row.run_id)
    if row.foreground and row.pid is not None and is_alive(row.pid, row.pid_create_time):
        return  # `execute TASK` in a terminal: its own process records the end
    pid, created = row.pid, row.pid_create_time
    if pid is None:
        # Killed between marking the row running and saving the PID: find it by its id.
        root = find_run_root(row.run_id)
        if root is not None:
            pid, created = root.pid, create_time(root.pid)
            with db.tx() as tx:
                tx.set_pid(row.run_id, pid, created)
        elif not row.foreground and not (run_dir / "output.log").exists():
            # Killed between claiming the row and spawning: the daemon opens output.log just
            # before it forks, so without one nothing ever started. Queued again, not lost:
            # the time has not been started yet, so this keeps "at most once".
            with db.tx() as tx:
                tx.unmark_started(row.run_id)
            log.info("run.requeued", task=row.task, run_id=row.run_id, reason="never started")
            return
    stopping = row.stop_reason
    if pid is not None and is_alive(pid, created):
        spec_timeout_s = _timeout_for(sched, row.task)
        started = row.started_at or now
        left_s = spec_timeout_s - (now - started).total_seconds()
        adopted = Active(
            run_id=row.run_id,
            task=row.task,
            pid=pid,
            created=created,
            run_dir=run_dir,
            deadline_mono=sched.clock.mono() + max(left_s, 0.0),
        )
        sched.runs.watch(adopted)
        if stopping is not None:  # finish the stop the dead daemon had begun
            adopted.terminate(stopping, sched.clock.mono(), sched.kill_grace_s)
        log.info(
            "run.adopted",
            task=row.task,
            run_id=row.run_id,
            pid=pid,
            scheduled_for=iso_utc(row.scheduled_for),
            trigger=row.trigger,
        )
        return
    rc = read_exit_code(run_dir)
    if stopping is not None:
        sched.runs.conclude_run(row.run_id, stopping, rc)
    elif rc is not None:
        # It finished while no daemon watched; the wrapper kept its exit code.
        sched.runs.conclude_run(row.run_id, RunStatus.SUCCESS if rc == 0 else RunStatus.FAILED, rc)
    else:
        sched.runs.conclude_run(row.run_id, RunStatus.LOST, None, reason="daemon died while it ran")


def _timeout_for(sched: Scheduler, task: str) -> float:
    spec = sched.tasks.get(task)
    return spec.timeout_s if spec is not None else DEFAULT_TIMEOUT_S
