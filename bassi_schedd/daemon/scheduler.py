"""One tick of scheduling: due times -> dispositions in the state DB -> runs started.

Never sleeps and never reads the wall clock for decisions: the daemon loop passes ``now`` in.
Wall-clock readings here only timestamp records (started_at, ended_at).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from bassi_schedd.config.paths import Home
from bassi_schedd.core import planner
from bassi_schedd.core.admission import Candidate, admit
from bassi_schedd.core.duecache import DueCache
from bassi_schedd.core.records import iso_utc, to_db
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.schedule import scheduled_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.daemon.agentctl import serve_stop_requests
from bassi_schedd.daemon.clock import SYSTEM_CLOCK, Clock
from bassi_schedd.daemon.guard import Troubles
from bassi_schedd.daemon.launch import start_run
from bassi_schedd.daemon.runwatch import RunWatcher
from bassi_schedd.notify.notifier import Notifier
from bassi_schedd.runner.process import Active
from bassi_schedd.store.schema import is_disk_full
from bassi_schedd.store.state import NewRun, RunRow, StateDB

log = structlog.get_logger()

MAX_TIMES_PER_TICK = 1000
# A window with more due times than we record one by one (a very long outage of a frequent
# task) is narrowed to the most recent of these horizons; older times are counted in one log line.
_HORIZONS = (timedelta(days=1), timedelta(hours=1), timedelta(minutes=10))


@dataclass
class Scheduler:
    """The daemon's scheduling state: loaded tasks, the state DB, and the runs it watches."""

    home: Home
    db: StateDB
    config: DaemonConfig
    clock: Clock = SYSTEM_CLOCK
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    task_errors: dict[str, str] = field(default_factory=dict)  # invalid files: name -> why
    due_cache: DueCache = field(default_factory=DueCache)
    recovered: dict[str, list[datetime]] = field(default_factory=dict)
    prev_tick: datetime | None = None
    python: str = sys.executable
    parent_env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    notifier: Notifier | None = None
    troubles: Troubles = field(default_factory=Troubles)
    # Daemon facts written with every tick (daemon_pid...), so a full disk at start loses none.
    meta: dict[str, str] = field(default_factory=dict)
    runs: RunWatcher = field(init=False)

    def __post_init__(self) -> None:
        self.runs = RunWatcher(
            self.db,
            self.clock,
            self.config.kill_grace_s,
            self.tasks,
            notifier=self.notifier,
            troubles=self.troubles,
        )

    @property
    def kill_grace_s(self) -> float:
        """SIGTERM to SIGKILL for a run the daemon stops (schedd.toml ``kill_grace``)."""
        return self.runs.kill_grace_s

    @property
    def active(self) -> list[Active]:
        """The runs in flight (the watcher's)."""
        return self.runs.active

    # -- tasks --------------------------------------------------------------------------------

    def set_tasks(
        self, tasks: dict[str, TaskSpec], now: datetime, errors: dict[str, str] | None = None
    ) -> None:
        """Adopt a new task set; a new task starts checking from the previous tick.

        ``errors`` (invalid task files) only explains a trigger that cannot be honoured."""
        seen_from = self.prev_tick if self.prev_tick is not None and self.prev_tick < now else now
        new = tasks.keys() - self.tasks.keys()
        if new:
            with self.db.tx() as tx:
                for name in new:
                    tx.first_seen(name, seen_from)
        for name in self.tasks.keys() - tasks.keys():
            self.due_cache.forget(name)  # a changed schedule or zone the cache notices itself
        self.tasks = tasks
        self.runs.tasks = tasks
        self.task_errors = dict(errors or {})

    # -- the tick -----------------------------------------------------------------------------

    def tick(self, now: datetime) -> None:
        """Record a disposition for every due time of every task, then start what can start.

        Planning is core/planner.py's; this applies its answer in one transaction. A task
        whose planning raises is logged (``daemon.error``) and left out of this tick: its
        ``last_checked`` stays, so the next tick plans the same times again.
        """
        serve_stop_requests(self)  # SPEC 10 `stop` (agentctl.py)
        checked = self.db.last_checked()
        summaries = self.db.task_summaries()
        first_tick = self.prev_tick is None
        plans: dict[str, planner.TaskPlan | None] = {}
        for name, spec in self.tasks.items():
            state = summaries.get(name)
            try:
                due: list[datetime] = []
                if planner.needs_due_times(spec, state, first_tick):
                    due = self._due_times(spec, checked.get(name, now), now)
                extra = self.recovered.get(name, [])
                plans[name] = planner.plan_task(spec, state, due, extra, now, first_tick)
            except Exception as e:
                self.troubles.failed(e, "plan", task=name)
        with self.db.tx() as tx:
            plan = planner.plan_tick(plans, tx.take_requests(), self.tasks)
            inserted = tx.insert_runs(plan.rows, now)
            for name in plan.advance:
                tx.set_last_checked(name, now)
            for name in plan.done:
                tx.set_done(name)
            for name, paused in plan.paused.items():
                tx.set_paused(name, paused)
            tx.set_meta({"last_tick": to_db(now) or "", **self.meta})
        for task, at in plan.refused:
            why = self.task_errors.get(task, "no task file by that name")
            log.error("trigger.refused", task=task, requested_at=iso_utc(at), error=why)
        # Only now are the recovered times on record: a tick that failed keeps them owed.
        for name in plan.advance:
            self.recovered.pop(name, None)
        self.troubles.disk_ok()
        for r in inserted:
            if r.status != RunStatus.QUEUED:
                self._log_missed(r)
        self.prev_tick = now
        self.dispatch(now)

    def _log_missed(self, r: NewRun) -> None:
        log.info(
            "run.missed",
            task=r.task,
            run_id=r.run_id,
            scheduled_for=iso_utc(r.scheduled_for),
            trigger=r.trigger,
            status=r.status,
            reason=r.detail,
        )
        spec = self.tasks.get(r.task)
        if self.notifier is None or r.status != RunStatus.MISSED or spec is None:
            return
        try:
            missed = self.db.get_run(r.run_id)
            if missed is not None:
                self.notifier.time_missed(spec, missed)
        except Exception as e:
            self.troubles.failed(e, "notify", task=r.task, run_id=r.run_id)

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
        """Apply admission (core/admission.py) to one queued row; False when slots are full."""
        busy = [a for a in self.runs.active if a.task == row.task and a.stop_reason is None]
        verdict = admit(
            Candidate(row.task, row.trigger, row.sequential),
            self.tasks.get(row.task),
            len(busy),
            row.task in waiting,
            self.runs.running_count(),
            self.config.max_concurrent,
        )
        if verdict.replace:
            for a in busy:
                self.runs.stop_run(a, RunStatus.REPLACED, self.clock.mono())
        if verdict.verdict == "skip":
            assert verdict.status is not None
            self._set_status(row, verdict.status, verdict.reason or "")
        elif verdict.verdict == "wait":
            waiting.add(row.task)
        elif verdict.verdict == "full":
            return False
        else:
            self.start(row, self.tasks[row.task], now)
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
        """Start one admitted row (daemon/launch.py)."""
        start_run(self, row, spec, now)

    # -- after the start ----------------------------------------------------------------------

    def service(self, now: datetime) -> None:
        """Look after the runs in flight, then start what became startable."""
        self.runs.service()
        # Also when nothing ended: a retry's or a jittered run's not-before time may have come.
        self.dispatch(now)

    def next_wakeup_mono(self, now: datetime) -> float | None:
        """The soonest monotonic instant something needs attention: a run, or a queued row's
        not-before time (a retry, a jittered start)."""
        mono = self.clock.mono()
        cands = [c for c in (self.runs.next_wakeup_mono(),) if c is not None]
        for row in self.db.runs_with_status(RunStatus.QUEUED):
            if row.not_before is not None and row.not_before > now:
                cands.append(mono + (row.not_before - now).total_seconds())
        return min(cands) if cands else None
