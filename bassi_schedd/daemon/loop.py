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
from collections.abc import Callable
from datetime import UTC, datetime
from types import EllipsisType, FrameType

import structlog

from bassi_schedd import __version__
from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.records import to_db
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.daemon.clock import SYSTEM_CLOCK, Clock
from bassi_schedd.daemon.guard import Troubles
from bassi_schedd.daemon.homewatch import HomeWatch
from bassi_schedd.daemon.recovery import recover
from bassi_schedd.daemon.reload import Reloader
from bassi_schedd.daemon.scheduler import Scheduler
from bassi_schedd.daemon.sdnotify import notify, watchdog_interval_s
from bassi_schedd.notify.notifier import Notifier
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

    def __init__(self, home: Home, *, once: bool = False, clock: Clock = SYSTEM_CLOCK):
        self.home = home
        self.clock = clock
        self.once = once
        self.lock = PidLock(home)
        self.stop_signal: int | None = None
        self.reload = False
        self.poke = False
        self.child_exited = False
        self.wakeups = 0  # returns from the loop's sleep, stored with each tick for `make bench`
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
            self.home,
            db,
            config,
            clock=self.clock,
            notifier=Notifier(self.home, config, command_timeout_s=config.notify_timeout_s),
            troubles=self.troubles,
        )
        self.reloader = Reloader(
            self.home, self.watch, TaskLoader(self.home, config), self._log_stderr
        )
        now = self.clock.wall()
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
        elif signum == signal.SIGCHLD:
            self.child_exited = True

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self) -> None:
        sched = self.sched
        self._guarded("tick", sched.tick, self.clock.wall())
        self._guarded("prune", self._maybe_prune, self.clock.mono())
        last_wall, last_mono = self.clock.wall().timestamp(), self.clock.mono()
        next_tick = _next_boundary(last_wall)
        while self.stop_signal is None:
            if self.once and not sched.runs.active and not self._startable(self.clock.wall()):
                return
            self._wait(next_tick)
            if self.stop_signal is not None:
                break
            self._guarded("watch", self._check_home)
            if self.fatal is not None:
                log.error("daemon.stopping", error=self.fatal)
                break
            wall, mono = self.clock.wall().timestamp(), self.clock.mono()
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
                sched.meta["wakeups"] = str(self.wakeups)
                self._guarded("tick", sched.tick, now)
                next_tick = _next_boundary(wall)
                self._guarded("prune", self._maybe_prune, mono)
            if self.child_exited:
                self.child_exited = False
                sched.runs.children_changed = True
            self._guarded("service", sched.service, now)
            notify("WATCHDOG=1")

    def _maybe_prune(self, mono: float) -> None:
        """Run-folder retention, at start and then once an hour; history rows stay."""
        if self._pruned_mono is not None and mono - self._pruned_mono < PRUNE_EVERY_S:
            return
        from bassi_schedd.daemon.retention import prune_runs

        self._pruned_mono = mono
        cfg = self.sched.config
        active = {a.run_id for a in self.sched.runs.active}
        active |= {r.run_id for r in self.sched.db.runs_with_status(RunStatus.QUEUED)}
        try:
            removed = prune_runs(
                self.home, cfg.keep_runs_days, cfg.keep_runs, self.clock.wall(), active
            )
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
        timeout_s = next_tick_wall - self.clock.wall().timestamp()
        try:
            soonest = self.sched.next_wakeup_mono(self.clock.wall())
        except Exception as e:
            self.troubles.failed(e, "wait")
            soonest = self.clock.mono() + DISK_RETRY_S
        if soonest is not None:
            timeout_s = min(timeout_s, soonest - self.clock.mono())
        max_wait_s = self.max_wait_s
        if self.troubles.disk_full is not None:
            max_wait_s = min(max_wait_s, DISK_RETRY_S)
        timeout_s = min(max(timeout_s, 0.0), max_wait_s)
        if self.poke or self.reload:
            timeout_s = 0.0
        self._pause(timeout_s)

    def _pause(self, timeout_s: float) -> None:
        """Sleep until ``timeout_s`` passed or a signal came (counted: ``meta.wakeups``)."""
        self.wakeups += 1
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
        self.reloader.reload(self.sched, now, hup)

    # -- stopping -----------------------------------------------------------------------------

    def _shutdown(self) -> None:
        """SIGTERM every run, wait up to the grace, SIGKILL, record ``interrupted``, exit 0."""
        notify("STOPPING=1")  # sd_notify(3): as shutdown begins, so the manager waits knowingly
        sched = self.sched
        runs = sched.runs
        runs.stop_all(RunStatus.INTERRUPTED)
        # The same watching as while running (reap, record, SIGKILL when due), for the grace.
        deadline = self.clock.mono() + sched.kill_grace_s + 2.0
        while runs.active and self.clock.mono() < deadline:
            self._guarded("finish", runs.service)
            if runs.active:
                self._pause(0.1)
        runs.abandon()
        if sched.notifier is not None:
            # `run --once` waits for its notifications (a notify program may take up to 30 s).
            sched.notifier.close(sched.config.notify_timeout_s + 5.0 if self.once else 5.0)
        log.info("daemon.stop", pid=os.getpid(), signal=_signame(self.stop_signal))
        sched.db.close()
        self.lock.release()


def _next_boundary(wall: float) -> float:
    return math.floor(wall / 60.0) * 60.0 + 60.0 + TICK_OFFSET_S


def _signame(sig: int | None) -> str | None:
    return None if sig is None else signal.Signals(sig).name
