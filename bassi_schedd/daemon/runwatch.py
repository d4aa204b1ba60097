"""Watching started runs: reaping them, enforcing timeouts, sweeping leftovers, recording ends.

The scheduler starts runs and hands them to its ``RunWatcher``, which owns them from then on.
Nothing here sleeps or reads the clock itself: the daemon loop calls ``service`` when it wakes,
and time comes from the injected clock.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from bassi_schedd.core import policy
from bassi_schedd.core.limits import DEFAULT_MAX_OUTPUT_BYTES
from bassi_schedd.core.records import as_integer, as_number, iso_utc, new_run_id
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import TaskSpec
from bassi_schedd.daemon.agentctl import changed_hash
from bassi_schedd.daemon.clock import SYSTEM_CLOCK, Clock
from bassi_schedd.daemon.guard import Troubles
from bassi_schedd.notify.notifier import Notifier
from bassi_schedd.runner.gate import gate_outcome
from bassi_schedd.runner.kill import KILL_GRACE_S
from bassi_schedd.runner.outputcap import trim_output
from bassi_schedd.runner.previous import read_result, result_usage
from bassi_schedd.runner.process import (
    Active,
    leftover_note,
    reap_strays,
    run_processes,
    running_pids,
    signal_run,
    untracked_children,
)
from bassi_schedd.runner.spawn import runs_are_subreapers
from bassi_schedd.store.state import NewRun, StateDB

log = structlog.get_logger()

# While runs go on, wake at least this often to keep their output.log under max_output.
OUTPUT_CHECK_S = 5.0
# After the last run ended, keep looking for orphans re-parented to the daemon this long; then
# an idle daemon reads nothing in /proc until a child signals (SIGCHLD) or a run starts.
ORPHAN_WATCH_S = 120.0


@dataclass
class RunWatcher:
    """Runs in flight and how they end."""

    db: StateDB
    clock: Clock = SYSTEM_CLOCK
    kill_grace_s: float = KILL_GRACE_S
    tasks: dict[str, TaskSpec] = field(default_factory=dict)  # the scheduler's, kept in step
    active: list[Active] = field(default_factory=list)
    # Leftover processes of ended runs: (root pid, run id, SIGKILL at (monotonic), SIGTERM sent)
    sweeps: list[tuple[int, str, float, bool]] = field(default_factory=list)
    notifier: Notifier | None = None
    troubles: Troubles = field(default_factory=Troubles)
    # Set by the loop on SIGCHLD: a child ended (a stray may wait to be reaped).
    children_changed: bool = True
    _watch_until_mono: float = 0.0

    def watch(self, a: Active) -> None:
        """Own a started (or adopted) run from now on."""
        self.active.append(a)

    def _idle(self, mono: float) -> bool:
        """Nothing runs, nothing to sweep, no child signalled, no run ended lately."""
        return not (
            self.active or self.sweeps or self.children_changed or mono < self._watch_until_mono
        )

    def stop_run(self, a: Active, reason: RunStatus, mono: float) -> None:
        """SIGTERM a run's tree, remembering why in the DB: a daemon that dies before the run
        is gone must not let the next one record it `lost` and run its time again."""
        if a.stop_reason is None:
            try:
                with self.db.tx() as tx:
                    tx.set_stopping(a.run_id, reason)
            except Exception as e:  # the stop matters more than its note (a full disk)
                self.troubles.failed(e, "stop", task=a.task, run_id=a.run_id)
        if len(self.active) == 1 and not runs_are_subreapers():
            a.orphans |= self.orphans()
        a.terminate(reason, mono, self.kill_grace_s)

    @contextlib.contextmanager
    def tracked_pids(self) -> Iterator[set[int]]:
        """Children the daemon started (run roots, notify programs); none starts meanwhile."""
        pids = {a.pid for a in self.active if a.popen is not None}
        if self.notifier is None:
            yield pids
            return
        with self.notifier.children.held() as notify_pids:
            yield pids | notify_pids

    def orphans(self) -> dict[int, float | None]:
        """Live children of the daemon that it did not start (orphans re-parented to it), by pid
        with their create times."""
        with self.tracked_pids() as tracked:
            return dict(untracked_children(tracked))

    def running_count(self) -> int:
        """Runs holding a slot: one being stopped does not, so `replace` never waits for it."""
        return sum(1 for a in self.active if a.stop_reason is None)

    def service(self) -> None:
        """Reap ended runs, enforce timeouts and kill deadlines, sweep leftovers."""
        mono = self.clock.mono()
        if self._idle(mono):
            return
        self.children_changed = False
        if self.active:
            self._watch_until_mono = mono + ORPHAN_WATCH_S
        self._claim_orphans(mono)
        for a in list(self.active):
            try:
                self._watch(a, mono)
            except Exception as e:  # its end stays unrecorded: tried again at the next wake-up
                self.troubles.failed(e, "finish", task=a.task, run_id=a.run_id)
        self._sweep(mono)
        with self.tracked_pids() as tracked:
            reap_strays(tracked)
        if not self.active:
            # Nothing runs, so any orphan re-parented to us is a leftover of a finished run.
            self._sweep_orphans(self.orphans(), mono)

    def stop_all(self, reason: RunStatus) -> None:
        """SIGTERM every run (SIGKILL after the grace): the daemon is stopping."""
        mono = self.clock.mono()
        if self.active:  # orphans that hid their run's identity go down with the runs
            self.active[0].orphans |= self.orphans()
        for a in self.active:
            a.terminate(reason, mono, self.kill_grace_s)

    def abandon(self) -> None:
        """Record the runs that outlived SIGKILL (D state) and kill every leftover: the daemon
        exits now and nothing it started may outlive it unrecorded."""
        for a in self.active:
            try:
                self.conclude_run(
                    a.run_id, RunStatus.INTERRUPTED, None, "did not exit after SIGKILL"
                )
            except Exception as e:  # left `running`: the next daemon records it `lost`
                self.troubles.failed(e, "finish", run_id=a.run_id)
        self.active.clear()
        for pid, run_id, _, _ in self.sweeps:
            signal_run(pid, run_id, signal.SIGKILL)
        for pid in self.orphans():
            signal_run(pid, "", signal.SIGKILL)

    def _claim_orphans(self, mono: float) -> None:
        """Give each orphan re-parented to the daemon to the run it came from.

        A run's wrapper is its processes' subreaper, so an orphan reaches the daemon only once
        the wrapper of its run has exited: it belongs to a run whose wrapper is gone (if several,
        it goes down with each), or to one that already ended (then it is swept now).
        """
        if not self.active or not runs_are_subreapers():
            return
        orphans = self.orphans()
        for a in self.active:
            for pid in a.orphans:
                orphans.pop(pid, None)
        for pid, *_ in self.sweeps:
            orphans.pop(pid, None)
        if not orphans:
            return
        owners = [a for a in self.active if a.wrapper_gone()]
        for a in owners:
            a.claim(orphans)
        if not owners:
            self._sweep_orphans(orphans, mono)

    def _sweep_orphans(self, orphans: dict[int, float | None], mono: float) -> None:
        swept = {pid for pid, *_ in self.sweeps}
        for pid in orphans.keys() - swept:
            self.sweeps.append((pid, "", mono + self.kill_grace_s, False))

    def _watch(self, a: Active, mono: float) -> None:
        ended, rc = a.poll()
        if ended:
            self._on_end(a, rc)
            self.active.remove(a)  # only once its end is on record
            return
        if a.stop_reason is None and mono >= a.deadline_mono:
            log.warning("run.timeout", task=a.task, run_id=a.run_id, pid=a.pid)
            self.stop_run(a, RunStatus.TIMEOUT, mono)
        a.kill_if_due(mono)
        self.cap_output(a.task, a.run_id, a.run_dir, live=True)

    def _on_end(self, a: Active, rc: int | None) -> None:
        if a.stop_reason is not None:
            status = RunStatus(a.stop_reason)
        elif rc == 0:
            status = RunStatus.SUCCESS
        else:
            status = RunStatus.FAILED
        status, rc, reason = gate_outcome(a.run_dir, status, rc)  # SPEC 10: what `when` said
        leftovers = running_pids([*run_processes(a.pid, a.run_id), *a.live_orphans()])
        if leftovers and all(s[1] != a.run_id for s in self.sweeps):  # _on_end may run again
            # Like systemd's control-group kill: nothing of a finished run keeps running. The
            # run itself ended with its main process; the leftovers are noted, then stopped.
            mono = self.clock.mono()
            self.sweeps.append((a.pid, a.run_id, mono + self.kill_grace_s, False))
            self._sweep_orphans(a.orphans, mono)
            _note_leftovers(a.run_dir, len(leftovers))
            log.warning("run.leftovers", task=a.task, run_id=a.run_id, processes=len(leftovers))
        self.conclude_run(a.run_id, status, rc, reason=reason)

    def _sweep(self, mono: float) -> None:
        keep = []
        for pid, run_id, kill_at, termed in self.sweeps:
            if not termed:
                signal_run(pid, run_id, signal.SIGTERM)
                termed = True
            if mono >= kill_at:
                if signal_run(pid, run_id, signal.SIGKILL) == 0:
                    continue
                kill_at = mono + 1.0
            keep.append((pid, run_id, kill_at, termed))
        self.sweeps = keep

    def conclude_run(
        self, run_id: str, status: RunStatus, rc: int | None, reason: str | None = None
    ) -> None:
        """Everything that follows the end of a run: record it (with ``reason`` as its detail),
        queue its retry if the policy gives one, log run.end and run.retry, notify."""
        run = self.db.get_run(run_id)
        if run is None:
            return
        if run.run_dir:
            self.cap_output(run.task, run_id, Path(run.run_dir), live=False)
        ended = self.clock.wall()
        result = read_result(Path(run.run_dir)) if run.run_dir else {}
        spec = self.tasks.get(run.task)
        retry_at = None
        if spec is not None and status in (RunStatus.FAILED, RunStatus.TIMEOUT):
            retry_at = policy.next_retry(spec, status, rc, run.attempt, ended)
        previous_ok = self.db.last_ok(run.task) if self.notifier else None
        sha, changed = changed_hash(self.db, spec, run, status)  # SPEC 10: notify on "changed"
        with self.db.tx() as tx:
            tx.record_end(
                run,
                status,
                rc,
                ended,
                detail=reason or None,
                cost_usd=as_number(result.get("total_cost_usd")),
                input_tokens=as_integer(result_usage(result, "input_tokens")),
                output_tokens=as_integer(result_usage(result, "output_tokens")),
                result_sha256=sha,
            )
            if retry_at is not None:
                retry = NewRun(
                    run_id=new_run_id(retry_at),
                    task=run.task,
                    trigger="retry",
                    scheduled_for=run.scheduled_for,
                    status=RunStatus.QUEUED,
                    attempt=run.attempt + 1,
                    not_before=retry_at,
                )
                tx.insert_runs([retry], ended)
        duration_s = round((ended - run.started_at).total_seconds(), 3) if run.started_at else None
        if status == RunStatus.SKIPPED_CONDITION:
            log.info(
                "run.skipped",
                task=run.task,
                run_id=run_id,
                trigger=run.trigger,
                scheduled_for=iso_utc(run.scheduled_for),
                status=status,
                reason=reason,
            )
        log.log(
            logging.INFO if status in (RunStatus.SUCCESS, RunStatus.REPLACED) else logging.WARNING,
            "run.end",
            task=run.task,
            run_id=run_id,
            scheduled_for=iso_utc(run.scheduled_for),
            trigger=run.trigger,
            status=status,
            exit_code=rc,
            duration_s=duration_s,
            cost_usd=as_number(result.get("total_cost_usd")),
            error=reason or result.get("error"),
        )
        if self.notifier is not None and spec is not None:
            try:  # the end is on record: nothing after this may make it be recorded twice
                ended_row = self.db.get_run(run_id)
                if ended_row is not None:
                    self.notifier.run_ended(spec, ended_row, previous_ok, changed=changed)
            except Exception as e:
                self.troubles.failed(e, "notify", task=run.task, run_id=run_id)
        if retry_at is not None:
            log.info(
                "run.retry",
                task=run.task,
                run_id=run_id,
                scheduled_for=iso_utc(run.scheduled_for),
                trigger="retry",
                attempt=run.attempt + 1,
                retry_at=retry_at.isoformat(),
            )

    def cap_output(self, task: str, run_id: str, run_dir: Path, *, live: bool) -> None:
        """Trim a run's output.log to the task's max_output, keeping the tail.

        ``live``: the run still writes, so trim only well over the cap (see outputcap.py), and
        log only its first trim; the trim at the end logs the total removed."""
        spec = self.tasks.get(task)
        cap = spec.max_output_bytes if spec is not None else DEFAULT_MAX_OUTPUT_BYTES
        trimmed = trim_output(run_dir / "output.log", cap, live=live)
        if trimmed is not None and (trimmed.first or not live):
            log.info(
                "run.output_trimmed",
                task=task,
                run_id=run_id,
                removed_bytes=trimmed.removed_bytes,
                max_output_bytes=cap,
            )

    def next_wakeup_mono(self) -> float | None:
        """The soonest monotonic instant a run needs attention (timeouts, kills, output cap)."""
        mono = self.clock.mono()
        cands = [a.deadline_mono for a in self.active if a.stop_reason is None]
        cands += [a.kill_at_mono for a in self.active if a.kill_at_mono is not None]
        cands += [s[2] for s in self.sweeps]
        if any(a.popen is None for a in self.active):
            cands.append(mono + 1.0)  # adopted runs are polled: no SIGCHLD tells us they ended
        if self.active:
            cands.append(mono + OUTPUT_CHECK_S)
        return min(cands) if cands else None


def _note_leftovers(run_dir: Path, count: int) -> None:
    try:
        with (run_dir / "output.log").open("a", encoding="utf-8") as f:
            f.write(leftover_note(count) + "\n")
    except OSError:
        pass
