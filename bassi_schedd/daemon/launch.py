"""Starting one admitted run: the run folder, the claim (queued -> running, at most once), the
spawn, and what a start that fails records. Called by the scheduler's dispatch."""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bassi_schedd.core.errors import UserError
from bassi_schedd.core.records import iso_utc
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import TaskSpec
from bassi_schedd.daemon.agentctl import controls_for_start
from bassi_schedd.runner.process import Active, create_time, spawn
from bassi_schedd.runner.rundir import child_argv, child_env, prepare_run_dir
from bassi_schedd.store.schema import is_disk_full
from bassi_schedd.store.state import RunRow

if TYPE_CHECKING:
    from bassi_schedd.daemon.scheduler import Scheduler

log = structlog.get_logger()


def start_run(sched: Scheduler, row: RunRow, spec: TaskSpec, now: datetime) -> None:
    """Prepare the run folder, mark the row running (before spawning: at most once), spawn.

    The row is marked only while it is still `queued`; if it is not (another daemon on the
    same state DB took it) nothing is spawned.
    """
    scheduled = row.scheduled_for or now
    fields = {"task": row.task, "run_id": row.run_id, "scheduled_for": iso_utc(scheduled)}
    fields["trigger"] = row.trigger
    started = sched.clock.wall()
    extras = controls_for_start(sched, row, spec, now)  # SPEC 10: caps, previous success
    if extras is None:
        return  # a spent cap: recorded budget_exceeded
    try:
        last = sched.db.last_finished_run(row.task)
        run_dir = prepare_run_dir(sched.home, spec, row.run_id, scheduled, now, last, extras)
    except OSError as e:
        run_dir = sched.home.run_dir(row.task, row.run_id)
        if is_disk_full(e):
            shutil.rmtree(run_dir, ignore_errors=True)  # give back what the half-run took
            raise
        fail_to_start(sched, row, started, run_dir, f"cannot prepare the run folder: {e}")
        return
    except UserError as e:  # the prompt file went bad after the task was loaded
        run_dir = sched.home.run_dir(row.task, row.run_id)
        fail_to_start(sched, row, started, run_dir, str(e))
        return
    env = child_env(
        sched.home, sched.config, spec, row.run_id, scheduled, run_dir, sched.parent_env
    )
    argv = child_argv(sched.config, spec, run_dir, sched.python)
    with sched.db.tx() as tx:
        claimed = tx.mark_started(row.run_id, started, str(run_dir), None, None)
    if not claimed:
        log.warning("run.not_started", **fields, reason="no longer queued")
        return
    try:
        popen = spawn(argv, env, spec.cwd, run_dir)
    except OSError as e:
        if not is_disk_full(e):
            reason = f"cannot start {argv[0]}: {e.strerror or e}"
            fail_to_start(sched, row, started, run_dir, reason, claimed=True)
            return
        _unclaim(sched, row)
        raise
    except BaseException:
        _unclaim(sched, row)
        raise
    created = create_time(popen.pid)
    # Watched from here on, whatever happens to the writes below.
    sched.runs.watch(
        Active(
            run_id=row.run_id,
            task=row.task,
            pid=popen.pid,
            created=created,
            run_dir=run_dir,
            deadline_mono=sched.clock.mono() + spec.timeout_s,
            popen=popen,
        )
    )
    try:
        with sched.db.tx() as tx:
            tx.set_pid(row.run_id, popen.pid, created)
    except Exception as e:  # a restarted daemon finds the run by its id instead
        sched.troubles.failed(e, "start", task=row.task, run_id=row.run_id)
    latency_s = round((started - scheduled).total_seconds(), 3)
    log.info("run.start", **fields, pid=popen.pid, attempt=row.attempt, latency_s=latency_s)
    if sched.notifier is not None:
        try:
            sched.notifier.run_started(spec, row)
        except Exception as e:
            sched.troubles.failed(e, "notify", task=row.task, run_id=row.run_id)


def _unclaim(sched: Scheduler, row: RunRow) -> None:
    """Back to `queued` after a failed spawn; if even that cannot be written, a restarted
    daemon records the run `lost` and its time counts as missed."""
    try:
        with sched.db.tx() as tx:
            tx.unmark_started(row.run_id)
    except Exception as e:
        sched.troubles.failed(e, "start", task=row.task, run_id=row.run_id)


def fail_to_start(
    sched: Scheduler,
    row: RunRow,
    started: datetime,
    run_dir: Path,
    reason: str,
    claimed: bool = False,
) -> None:
    """Record a run that could not start as `failed` (``claimed``: already marked running)."""
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        with (run_dir / "output.log").open("a", encoding="utf-8") as f:
            f.write(f"bassi-schedd: {reason}\n")
    except OSError:
        pass
    if not claimed:
        with sched.db.tx() as tx:
            if not tx.mark_started(row.run_id, started, str(run_dir), None, None):
                return  # no longer queued: not ours to record
    sched.runs.conclude_run(row.run_id, RunStatus.FAILED, None, reason=reason)
