"""The daemon: lock, the minute loop, signals, shutdown. The only place that sleeps.

Start-up recovery of runs a killed daemon left behind is in recovery.py.

The loop waits on a self-pipe that signal handlers write to (``signal.set_wakeup_fd``), so a
SIGHUP, SIGUSR1 (trigger), SIGCHLD (a run ended) or SIGTERM wakes it at once; otherwise it wakes
at the next minute boundary or at the next deadline (timeout, kill, jitter, retry).
"""

from __future__ import annotations

import math
import os
import select
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import EllipsisType, FrameType

import structlog

from bassi_schedd import __version__
from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.records import to_db
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.daemon.guard import Troubles
from bassi_schedd.daemon.homewatch import HomeWatch
from bassi_schedd.daemon.recovery import recover
from bassi_schedd.daemon.runwatch import wall_now
from bassi_schedd.daemon.scheduler import Scheduler
from bassi_schedd.daemon.sdnotify import notify, watchdog_interval_s
from bassi_schedd.notify.notifier import Notifier
from bassi_schedd.runner.kill import KILL_GRACE_S
from bassi_schedd.runner.process import signal_run
from bassi_schedd.runner.spawn import become_subreaper
from bassi_schedd.store.lock import LockBusyError, PidLock
from bassi_schedd.store.state import StateDB, StateDBError

log = structlog.get_logger()

CLOCK_JUMP_S = 60.0
PRUNE_EVERY_S = 3600.0
# Wake this long after :00 so a tick never lands a hair before the boundary it aims for.
TICK_OFFSET_S = 0.02
MAX_WAIT_S = 30.0
DISK_RETRY_S = 5.0  # while the disk is full, try to write (tick) this often


class Daemon:
    """``bassi-schedd run``: owns the lock, the scheduler and the loop."""

    def __init__(self, home: Home, *, once: bool = False):
        self.home = home
        self.once = once
        self.lock = PidLock(home)
        self.stop_signal: int | None = None
        self.reload = False
        self.poke = False
        self._logged_errors: dict[str, str] = {}
        self.fatal: str | None = None  # why the daemon stops on its own (exit 1)
        self._recovery_done = False
        self.troubles = Troubles()
        self.watch = HomeWatch(home, self.lock)
        self._log_stderr: EllipsisType | None = ...
        self._pruned_mono: float | None = None
        # Wake at least this often: a safety net, and the WATCHDOG=1 ping systemd expects within
        # WatchdogSec (pinged at half the period, as sd_watchdog_enabled(3) advises).
        watchdog_s = watchdog_interval_s()
        self.max_wait_s = MAX_WAIT_S if watchdog_s is None else min(MAX_WAIT_S, watchdog_s / 2)
        self._rfd, self._wfd = os.pipe()
        os.set_blocking(self._wfd, False)
        os.set_blocking(self._rfd, False)

    # -- lifecycle ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start, loop until a stop signal (or one tick with ``once``), stop cleanly."""
        from bassi_schedd.config.loader import TaskLoader
        from bassi_schedd.config.settings import load_config
        from bassi_schedd.logs.setup import configure_logging

        self.home.ensure()
        config = load_config(self.home)
        # launchd's stderr file never rotates, so the agent turns the stderr copy off there;
        # journald (systemd) keeps its own, so it stays on.
        self._log_stderr = None if os.environ.get("BASSI_SCHEDD_LOG_STDERR") == "off" else ...
        configure_logging(
            self.home.log_file,
            max_bytes=config.log_max_bytes,
            backups=config.log_backups,
            stderr=self._log_stderr,
        )
        try:
            self.lock.acquire()
        except LockBusyError as e:
            log.error("lock.busy", pid=e.pid, pid_file=str(self.home.pid_file))
            raise UserError(f"bassi-schedd is {e} for {self.home.root}") from None
        self._install_signals()
        subreaper = become_subreaper()
        db = self._open_state_db()
        if db is None:  # stopped while it waited for room on the disk
            log.info("daemon.stop", pid=os.getpid(), signal=_signame(self.stop_signal))
            self.lock.release()
            return 0
        self.watch.state_db_opened()
        self.sched = Scheduler(
            self.home, db, config, notifier=Notifier(self.home, config), troubles=self.troubles
        )
        self.loader = TaskLoader(self.home, config)
        now = wall_now()
        self.sched.meta = {
            "daemon_pid": str(os.getpid()),
            "daemon_started": to_db(now) or "",
            "version": __version__,
        }
        self._guarded("start", db.set_meta, self.sched.meta)
        log.info(
            "daemon.start",
            pid=os.getpid(),
            version=__version__,
            home=str(self.home.root),
            once=self.once,
            subreaper=subreaper,
        )
        self._guarded("reload", self._reload, now)
        self._recover(now)
        notify("READY=1")
        try:
            self._loop()
        finally:
            self._shutdown()
        if self.fatal is not None:
            raise UserError(self.fatal)
        return 0

    def _open_state_db(self) -> StateDB | None:
        """The state DB; on a full disk, wait for room (None: a stop signal came first)."""
        while True:
            try:
                return StateDB.open(self.home.state_db)
            except StateDBError as e:
                if not e.disk_full or self.once:
                    raise
                self.troubles.failed(e, "open")
            self._pause(DISK_RETRY_S)
            if self.stop_signal is not None:
                return None

    def _guarded(self, stage: str, fn: Callable[..., object], *args: object) -> None:
        """Run one step of the loop; an exception is logged (daemon.error) and the loop goes on."""
        try:
            fn(*args)
        except Exception as e:
            self.troubles.failed(e, stage)

    def _recover(self, now: datetime) -> None:
        if not self._recovery_done:
            try:
                self._recovery_done = recover(self.home, self.sched, now)
            except Exception as e:
                self.troubles.failed(e, "recover")

    def _check_home(self) -> None:
        self.fatal = self.watch.lost()

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self._wfd, warn_on_full_buffer=False)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.stop_signal = signum
        elif signum == signal.SIGHUP:
            self.reload = True
        elif signum == signal.SIGUSR1:
            self.poke = True

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        sched = self.sched
        self._guarded("tick", sched.tick, wall_now())
        self._guarded("prune", self._maybe_prune, time.monotonic())
        last_wall, last_mono = time.time(), time.monotonic()
        next_tick = _next_boundary(last_wall)
        while self.stop_signal is None:
            if self.once and not sched.active and not self._startable(wall_now()):
                return
            self._wait(next_tick)
            if self.stop_signal is not None:
                break
            self._guarded("watch", self._check_home)
            if self.fatal is not None:
                log.error("daemon.stopping", error=self.fatal)
                break
            wall, mono = time.time(), time.monotonic()
            jump_s = (wall - last_wall) - (mono - last_mono)
            last_wall, last_mono = wall, mono
            now = datetime.fromtimestamp(wall, UTC)
            tick_now = self.poke or self.reload or (wall >= next_tick and not self.once)
            # A full disk: try again soon, so runs carry on as soon as there is room.
            tick_now = tick_now or (self.troubles.disk_full is not None and not self.once)
            if abs(jump_s) > CLOCK_JUMP_S:
                log.warning("clock.jump", jump_s=round(jump_s, 1), now=now.isoformat())
                tick_now = not self.once
            if self.reload or (tick_now and not self.once):
                self._guarded("reload", self._reload, now, self.reload)
                self._recover(now)
            if tick_now:
                self.poke = self.reload = False
                self._guarded("tick", sched.tick, now)
                next_tick = _next_boundary(wall)
                self._guarded("prune", self._maybe_prune, mono)
            self._guarded("service", sched.service, now)
            notify("WATCHDOG=1")

    def _maybe_prune(self, mono: float) -> None:
        """Run-folder retention, at start and then once an hour; history rows stay."""
        if self._pruned_mono is not None and mono - self._pruned_mono < PRUNE_EVERY_S:
            return
        from bassi_schedd.daemon.retention import prune_runs

        self._pruned_mono = mono
        cfg = self.sched.config
        active = {a.run_id for a in self.sched.active}
        active |= {r.run_id for r in self.sched.db.runs_with_status(RunStatus.QUEUED)}
        try:
            removed = prune_runs(self.home, cfg.keep_runs_days, cfg.keep_runs, wall_now(), active)
        except OSError as e:
            log.warning("runs.prune_failed", error=str(e))
            return
        if removed:
            log.info("runs.pruned", removed=removed)

    def _startable(self, now: datetime) -> bool:
        if self.troubles.disk_full is not None:
            return False  # `--once` does not wait for room: the next start runs what is queued
        return any(
            r.not_before is None or r.not_before <= now
            for r in self.sched.db.runs_with_status(RunStatus.QUEUED)
            if r.task in self.sched.tasks
        )

    def _wait(self, next_tick_wall: float) -> None:
        timeout_s = next_tick_wall - time.time()
        try:
            soonest = self.sched.next_wakeup_mono(wall_now())
        except Exception as e:
            self.troubles.failed(e, "wait")
            soonest = time.monotonic() + DISK_RETRY_S
        if soonest is not None:
            timeout_s = min(timeout_s, soonest - time.monotonic())
        max_wait_s = self.max_wait_s
        if self.troubles.disk_full is not None:
            max_wait_s = min(max_wait_s, DISK_RETRY_S)
        timeout_s = min(max(timeout_s, 0.0), max_wait_s)
        if self.poke or self.reload:
            timeout_s = 0.0
        self._pause(timeout_s)

    def _pause(self, timeout_s: float) -> None:
        """Sleep until ``timeout_s`` passed or a signal came."""
        try:
            select.select([self._rfd], [], [], timeout_s)
        except InterruptedError:
            pass
        try:
            while os.read(self._rfd, 512):
                pass
        except BlockingIOError:
            pass

    def _reload(self, now: datetime, hup: bool = False) -> None:
        self._reload_config(hup)
        result = self.loader.load()
        for name in sorted(result.added):
            log.info("task.loaded", task=name, file=str(result.tasks[name].path))
        for name in sorted(result.changed):
            log.info("task.changed", task=name, file=str(result.tasks[name].path))
        for name in sorted(result.removed):
            log.info("task.removed", task=name)
        errors = {str(k): str(e) for k, e in result.errors.items()}
        for key, message in sorted(errors.items()):
            if self._logged_errors.get(key) != message:  # once per distinct problem, not per tick
                log.error("task.invalid", task=key, error=message)
        self._logged_errors = errors
        if hup:
            log.info("daemon.reload", tasks=len(result.tasks), invalid=len(result.errors))
        self._register_secrets(result.tasks.values())
        self.sched.set_tasks(dict(result.tasks), now, errors)

    def _reload_config(self, hup: bool) -> None:
        from bassi_schedd.logs.setup import configure_logging

        old = self.sched.config
        new = self.watch.new_config(old, hup)
        if new is None:
            return
        self.sched.config = new
        if self.sched.notifier is not None:
            self.sched.notifier.config = new
        self.loader.set_config(new)  # task defaults (timezone...) come from it
        if (new.log_max_bytes, new.log_backups) != (old.log_max_bytes, old.log_backups):
            configure_logging(
                self.home.log_file,
                max_bytes=new.log_max_bytes,
                backups=new.log_backups,
                stderr=self._log_stderr,
            )

    def _register_secrets(self, specs: object) -> None:
        from bassi_schedd.logs.setup import register_secret_values, secret_env_values

        variables = [pair for s in specs for pair in s.env]  # type: ignore[attr-defined]
        variables += [(n, os.environ[n]) for n in self.sched.config.pass_env if n in os.environ]
        register_secret_values(secret_env_values(variables))

    # -- stopping -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """SIGTERM every run, wait up to the grace, SIGKILL, record ``interrupted``, exit 0."""
        notify("STOPPING=1")  # sd_notify(3): as shutdown begins, so the manager waits knowingly
        sched = self.sched
        mono = time.monotonic()
        if sched.active:  # orphans that hid their run's identity go down with the runs
            sched.active[0].orphans |= sched.orphans()
        for a in sched.active:
            a.terminate(RunStatus.INTERRUPTED, mono, KILL_GRACE_S)
        deadline = mono + KILL_GRACE_S + 2.0
        while sched.active and time.monotonic() < deadline:
            for a in list(sched.active):
                ended, rc = a.poll()
                if ended:
                    sched.active.remove(a)
                    self._finish(a.run_id, RunStatus(a.stop_reason or RunStatus.INTERRUPTED), rc)
                else:
                    a.kill_if_due(time.monotonic())
            if sched.active:
                select.select([self._rfd], [], [], 0.1)
        for a in sched.active:  # unkillable (D state): record it anyway
            self._finish(a.run_id, RunStatus.INTERRUPTED, None, "did not exit after SIGKILL")
        sched.active.clear()
        # Leftovers of finished runs still in their grace period: none outlives the daemon.
        for pid, run_id, _, _ in sched.sweeps:
            signal_run(pid, run_id, signal.SIGKILL)
        for pid in sched.orphans():
            signal_run(pid, "", signal.SIGKILL)
        if sched.notifier is not None:
            # `run --once` waits for its notifications (a notify program may take up to 30 s).
            sched.notifier.close(35.0 if self.once else 5.0)
        log.info("daemon.stop", pid=os.getpid(), signal=_signame(self.stop_signal))
        sched.db.close()
        self.lock.release()

    def _finish(
        self, run_id: str, status: RunStatus, rc: int | None, reason: str | None = None
    ) -> None:
        try:
            self.sched.conclude_run(run_id, status, rc, reason=reason)
        except Exception as e:  # left `running`: the next daemon records it `lost`
            self.troubles.failed(e, "finish", run_id=run_id)


def _next_boundary(wall: float) -> float:
    return math.floor(wall / 60.0) * 60.0 + 60.0 + TICK_OFFSET_S


def _signame(sig: int | None) -> str | None:
    return None if sig is None else signal.Signals(sig).name
