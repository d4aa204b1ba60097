"""One tick of scheduling: due times -> dispositions in the state DB -> runs started.

Never sleeps and never reads the wall clock for decisions: the daemon loop passes ``now`` in.
Wall-clock readings here only timestamp records (started_at, ended_at).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from bassi_schedd.config.paths import Home
from bassi_schedd.core import policy
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.records import iso_utc, new_run_id, to_db
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.schedule import DueCache, scheduled_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.daemon.agentctl import controls_for_start, serve_stop_requests
from bassi_schedd.daemon.guard import Troubles
from bassi_schedd.daemon.runwatch import RunWatcher, wall_now
from bassi_schedd.notify.notifier import Notifier
from bassi_schedd.runner.process import Active, create_time, spawn
from bassi_schedd.runner.rundir import child_argv, child_env, prepare_run_dir
from bassi_schedd.store.schema import is_disk_full
from bassi_schedd.store.state import NewRun, RunRow, StateDB, TaskSummary

log = structlog.get_logger()

MAX_TIMES_PER_TICK = 1000
# A window with more due times than we record one by one (a very long outage of a frequent
# task) is narrowed to the most recent of these horizons; older times are counted in one log line.
_HORIZONS = (timedelta(days=1), timedelta(hours=1), timedelta(minutes=10))


@dataclass
class Scheduler(RunWatcher):
    """The daemon's scheduling state: loaded tasks, watched runs, and the state DB."""

    home: Home
    db: StateDB
    config: DaemonConfig
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    task_errors: dict[str, str] = field(default_factory=dict)  # invalid files: name -> why
    active: list[Active] = field(default_factory=list)
    due_cache: DueCache = field(default_factory=DueCache)
    recovered: dict[str, list[datetime]] = field(default_factory=dict)
    prev_tick: datetime | None = None
    # Leftover processes of ended runs: (root pid, run id, SIGKILL at (monotonic), SIGTERM sent)
    sweeps: list[tuple[int, str, float, bool]] = field(default_factory=list)
    python: str = sys.executable
    parent_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    notifier: Notifier | None = None
    troubles: Troubles = field(default_factory=Troubles)
    # Daemon facts written with every tick (daemon_pid...), so a full disk at start loses none.
    meta: dict[str, str] = field(default_factory=dict)

    # -- tasks --------------------------------------------------------------------------------

    def set_tasks(
        self, tasks: dict[str, TaskSpec], now: datetime, errors: dict[str, str] | None = None
    ) -> None:
        """Adopt a new task set; a new task starts checking from the previous tick.

        ``errors`` (invalid task files) only explains a trigger that cannot be honoured."""
        seen_from = self.prev_tick if self.prev_tick is not None and self.prev_tick < now else now
        with self.db.tx() as tx:
            for name in tasks:
                tx.first_seen(name, seen_from)
        for name in self.tasks.keys() - tasks.keys():
            self.due_cache.forget(name)  # a changed schedule or zone the cache notices itself
        self.tasks = tasks
        self.task_errors = dict(errors or {})

    # -- the tick -----------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Record a disposition for every due time of every task, then start what can start.

        A task whose planning raises is logged (``daemon.error``) and left out of this tick:
        its ``last_checked`` stays, so the next tick plans the same times again.
        """
        serve_stop_requests(self)  # SPEC 10 `stop` (agentctl.py)
        checked = self.db.last_checked()
        summaries = self.db.task_summaries()
        new_rows: list[NewRun] = []
        advanced: dict[str, datetime] = {}
        done: list[str] = []
        flips: dict[str, bool] = {}
        for name, spec in self.tasks.items():
            try:
                plan = self._plan_task(spec, summaries.get(name), checked.get(name, now), now)
            except Exception as e:
                self.troubles.failed(e, "plan", task=name)
                continue
            if plan is None:
                continue
            rows, advance, is_done, flip = plan
            new_rows += rows
            if advance:
                advanced[name] = now
            if is_done:
                done.append(name)
            if flip is not None:
                flips[name] = flip
        with self.db.tx() as tx:
            for task, at in tx.take_requests():
                if task in self.tasks:
                    new_rows.append(
                        NewRun(new_run_id(at), task, "manual", at, RunStatus.QUEUED, not_before=at)
                    )
                else:
                    why = self.task_errors.get(task, "no task file by that name")
                    log.error("trigger.refused", task=task, requested_at=iso_utc(at), error=why)
            inserted = tx.insert_runs(new_rows, now)
            for name, until in advanced.items():
                tx.set_last_checked(name, until)
            for name in done:
                tx.set_done(name)
            for name, paused in flips.items():
                tx.set_paused(name, paused)
            tx.set_meta({"last_tick": to_db(now) or "", **self.meta})
        # Only now are the recovered times on record: a tick that failed keeps them owed.
        for name in advanced:
            self.recovered.pop(name, None)
        self.troubles.disk_ok()
        for r in inserted:
            if r.status != RunStatus.QUEUED:
                log.info(
                    "run.missed",
                    task=r.task,
                    run_id=r.run_id,
                    scheduled_for=iso_utc(r.scheduled_for),
                    trigger=r.trigger,
                    status=r.status,
                    reason=r.detail,
                )
                missed_spec = self.tasks.get(r.task)
                if (
                    self.notifier is not None
                    and r.status == RunStatus.MISSED
                    and missed_spec is not None
                ):
                    try:
                        missed = self.db.get_run(r.run_id)
                        if missed is not None:
                            self.notifier.time_missed(missed_spec, missed)
                    except Exception as e:
                        self.troubles.failed(e, "notify", task=r.task, run_id=r.run_id)
        self.prev_tick = now
        self.dispatch(now)

    def _plan_task(
        self, spec: TaskSpec, state: TaskSummary | None, after: datetime, now: datetime
    ) -> tuple[list[NewRun], bool, bool, bool | None] | None:
        """(rows, advance last_checked, now done, paused flag to store) of one task, or None."""
        if state is not None and state.done:
            return None
        was_paused = state is not None and state.paused
        if not spec.enabled:
            # Times while paused are never owed: keep last_checked moving.
            return [], True, False, (None if was_paused else True)
        flip = False if was_paused else None
        if was_paused and self.prev_tick is None:
            # Resumed while no daemon ran: when is unknown, so owe nothing before now.
            return [], True, False, flip
        extra = self.recovered.get(spec.name, [])
        due = self._due_times(spec, after, now)
        if not due and not extra:
            return ([], False, False, flip) if flip is not None else None
        rows = self._dispositions(spec, due, extra, now)
        return rows, True, spec.schedule.kind == "at" and bool(due), flip

    def _due_times(self, spec: TaskSpec, after: datetime, now: datetime) -> list[datetime]:
        times = self.due_cache.due(
            spec.name, spec.schedule, spec.zone, after, now, limit=MAX_TIMES_PER_TICK
        )
        if len(times) >= MAX_TIMES_PER_TICK:
            times = self._narrow(spec, after, now)
        return times

    def _narrow(self, spec: TaskSpec, after: datetime, now: datetime) -> list[datetime]:
        for horizon in _HORIZONS:
            start = max(after, now - horizon)
            times = scheduled_times(spec.schedule, spec.zone, start, now, MAX_TIMES_PER_TICK)
            if len(times) < MAX_TIMES_PER_TICK:
                break
        log.warning(
            "run.missed",
            task=spec.name,
            status=RunStatus.MISSED,
            reason="outage too long to record each time",
            first_after=after.isoformat(),
            recorded_from=start.isoformat(),
        )
        return times

    def _dispositions(
        self, spec: TaskSpec, due: list[datetime], extra: list[datetime], now: datetime
    ) -> list[NewRun]:
        jitter = timedelta(seconds=policy.jitter_s(spec))
        rows = []
        for d in policy.plan(spec, due, now, recovered=extra):
            status = RunStatus.QUEUED if d.action == "run" else RunStatus(d.action)
            not_before = max(d.scheduled_for + jitter, now) if d.action == "run" else None
            rows.append(
                NewRun(
                    run_id=new_run_id(d.scheduled_for),
                    task=spec.name,
                    trigger=d.trigger,
                    scheduled_for=d.scheduled_for,
                    status=status,
                    not_before=not_before if jitter else None,
                    sequential=d.sequential,
                    detail=d.reason,
                )
            )
        return rows

    # -- starting runs ------------------------------------------------------------------------

    def dispatch(self, now: datetime) -> None:
        """Start queued runs in FIFO order, applying overlap and max_concurrent.

        A run whose start raises is logged (``daemon.error``) and stays queued; its task is set
        aside until the next pass. On a full disk nothing starts until a tick writes again.
        """
        if self.troubles.disk_full is not None:
            return
        waiting: set[str] = set()
        set_aside: set[str] = set()
        for row in self.db.runs_with_status(RunStatus.QUEUED):
            if (row.not_before is not None and row.not_before > now) or row.task in set_aside:
                continue
            try:
                if not self._dispatch_row(row, now, waiting):
                    break
            except Exception as e:
                self.troubles.failed(e, "start", task=row.task, run_id=row.run_id)
                if is_disk_full(e):
                    return
                set_aside.add(row.task)

    def _dispatch_row(self, row: RunRow, now: datetime, waiting: set[str]) -> bool:
        """Start, hold or drop one queued row; False when every slot is taken."""
        spec = self.tasks.get(row.task)
        if spec is None:
            self._set_status(row, RunStatus.MISSED, "task file removed or invalid")
            return True
        if not spec.enabled and row.trigger != "manual":
            # A retry or catch-up queued before `pause` is not owed; `trigger` still works.
            self._set_status(row, RunStatus.MISSED, "task paused")
            return True
        busy = [a for a in self.active if a.task == row.task and a.stop_reason is None]
        if busy and not (spec.overlap == "allow" and not row.sequential):
            if row.sequential or row.trigger == "retry" or spec.overlap == "queue":
                if spec.overlap == "queue" and not row.sequential and row.task in waiting:
                    self._set_status(row, RunStatus.SKIPPED_OVERLAP, "a run is already waiting")
                waiting.add(row.task)
                return True
            if spec.overlap == "skip":
                self._set_status(row, RunStatus.SKIPPED_OVERLAP, "previous run still going")
                return True
            for a in busy:  # replace
                self.stop_run(a, RunStatus.REPLACED, time.monotonic())
        if self.running_count() >= self.config.max_concurrent:
            return False
        self.start(row, spec, now)
        return True

    def _set_status(self, row: RunRow, status: RunStatus, reason: str) -> None:
        with self.db.tx() as tx:
            tx.set_status(row.run_id, status, reason)
        log.info(
            "run.skipped" if status == RunStatus.SKIPPED_OVERLAP else "run.missed",
            task=row.task,
            run_id=row.run_id,
            scheduled_for=iso_utc(row.scheduled_for),
            trigger=row.trigger,
            status=status,
            reason=reason,
        )

    def start(self, row: RunRow, spec: TaskSpec, now: datetime) -> None:
        """Prepare the run folder, mark the row running (before spawning: at most once), spawn.

        The row is marked only while it is still `queued`; if it is not (another daemon on the
        same state DB took it) nothing is spawned.
        """
        scheduled = row.scheduled_for or now
        fields = {"task": row.task, "run_id": row.run_id, "scheduled_for": iso_utc(scheduled)}
        fields["trigger"] = row.trigger
        started = wall_now()
        extras = controls_for_start(self, row, spec, now)  # SPEC 10: caps, previous success
        if extras is None:
            return  # a spent cap: recorded budget_exceeded
        try:
            last = self.db.last_finished_run(row.task)
            run_dir = prepare_run_dir(self.home, spec, row.run_id, scheduled, now, last, extras)
        except OSError as e:
            run_dir = self.home.run_dir(row.task, row.run_id)
            if is_disk_full(e):
                shutil.rmtree(run_dir, ignore_errors=True)  # give back what the half-run took
                raise
            self.fail_to_start(row, started, run_dir, f"cannot prepare the run folder: {e}")
            return
        except UserError as e:  # the prompt file went bad after the task was loaded
            run_dir = self.home.run_dir(row.task, row.run_id)
            self.fail_to_start(row, started, run_dir, str(e))
            return
        env = child_env(
            self.home, self.config, spec, row.run_id, scheduled, run_dir, self.parent_env
        )
        argv = child_argv(self.config, spec, run_dir, self.python)
        with self.db.tx() as tx:
            claimed = tx.mark_started(row.run_id, started, str(run_dir), None, None)
        if not claimed:
            log.warning("run.not_started", **fields, reason="no longer queued")
            return
        try:
            popen = spawn(argv, env, spec.cwd, run_dir)
        except OSError as e:
            if not is_disk_full(e):
                reason = f"cannot start {argv[0]}: {e.strerror or e}"
                self.fail_to_start(row, started, run_dir, reason, claimed=True)
                return
            self._unclaim(row)
            raise
        except BaseException:
            self._unclaim(row)
            raise
        created = create_time(popen.pid)
        # Watched from here on, whatever happens to the writes below.
        self.active.append(
            Active(
                run_id=row.run_id,
                task=row.task,
                pid=popen.pid,
                created=created,
                run_dir=run_dir,
                deadline_mono=time.monotonic() + spec.timeout_s,
                popen=popen,
            )
        )
        try:
            with self.db.tx() as tx:
                tx.set_pid(row.run_id, popen.pid, created)
        except Exception as e:  # a restarted daemon finds the run by its id instead
            self.troubles.failed(e, "start", task=row.task, run_id=row.run_id)
        latency_s = round((started - scheduled).total_seconds(), 3)
        log.info("run.start", **fields, pid=popen.pid, attempt=row.attempt, latency_s=latency_s)
        if self.notifier is not None:
            try:
                self.notifier.run_started(spec, row)
            except Exception as e:
                self.troubles.failed(e, "notify", task=row.task, run_id=row.run_id)

    def _unclaim(self, row: RunRow) -> None:
        """Back to `queued` after a failed spawn; if even that cannot be written, a restarted
        daemon records the run `lost` and its time counts as missed."""
        try:
            with self.db.tx() as tx:
                tx.unmark_started(row.run_id)
        except Exception as e:
            self.troubles.failed(e, "start", task=row.task, run_id=row.run_id)
