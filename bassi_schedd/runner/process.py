"""Which processes make up a run, and the daemon's view of the runs it watches.

A run is started (:func:`spawn`, through ``spawn.start_child``) behind the exit-code wrapper,
which records the command's exit code in the run folder: if the daemon dies, the next daemon
adopts the still-running child and can still learn how it ended. Children get their own session,
so a timeout can signal the group; psutil finds descendants that escaped into their own groups
or sessions, and on Linux the daemon becomes a child subreaper so orphans are re-parented to it
(and reaped) instead of to init.

On Linux each run's wrapper is a child subreaper too: a process that double-forks away from the
run (and clears its environment) is re-parented to the wrapper, so it stays in the run's tree for
as long as the run lives, whatever else runs. Only once the wrapper itself is gone do such
processes reach the daemon, and then they can only come from a run whose wrapper ended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from bassi_schedd.runner.kill import running, signal_tree
from bassi_schedd.runner.spawn import ChildSpec, read_exit_status, start_child

EXIT_CODE_FILE = "exit_code"


def spawn(
    argv: list[str], env: dict[str, str], cwd: Path, run_dir: Path
) -> subprocess.Popen[bytes]:
    """Start a run: ``argv`` isolated, output appended to ``output.log``, its exit code recorded
    in the run folder, a subreaper of its own (Linux, once the daemon is one).

    Raises OSError when the program cannot be started (missing cwd, shell...).
    """
    child = ChildSpec(
        tuple(argv),
        env,
        cwd,
        output=run_dir / "output.log",
        exit_code_file=run_dir / EXIT_CODE_FILE,
        name="bassi-run",
        subreaper=True,
    )
    return start_child(child)


def create_time(pid: int) -> float | None:
    """psutil's create time of ``pid`` (identifies a process across PID reuse)."""
    try:
        return float(psutil.Process(pid).create_time())
    except psutil.Error:
        return None


def is_alive(pid: int, created: float | None) -> bool:
    """True when ``pid`` runs, is not a zombie and (if given) has that create time."""
    try:
        p = psutil.Process(pid)
        if created is not None and abs(p.create_time() - created) > 0.01:
            return False
        return bool(p.status() != psutil.STATUS_ZOMBIE)
    except psutil.Error:
        return False


def read_exit_code(run_dir: Path) -> int | None:
    """The exit code the wrapper wrote, if the command ended on its own."""
    return read_exit_status(run_dir / EXIT_CODE_FILE)


def run_processes(root_pid: int, run_id: str) -> list[psutil.Process]:
    """Every live process of a run: the root, its descendants, its group, anyone with its id."""
    found: dict[int, psutil.Process] = {}
    try:
        root = psutil.Process(root_pid)
        found[root.pid] = root
        for c in root.children(recursive=True):
            found[c.pid] = c
    except psutil.Error:
        pass
    me = os.getpid()
    uid = os.getuid()
    # Descendants that double-forked away from the tree still carry the run's environment.
    for p in psutil.process_iter(["uids"]):
        if p.pid in found or p.pid == me:
            continue
        try:
            uids = p.info["uids"]
            if uids is None or uids.real != uid:
                continue
            if os.getpgid(p.pid) == root_pid:
                found[p.pid] = p
                continue
            env = p.environ()
            # A notify program carries the run's id too (BASSI_EVENT marks it): not the run's.
            if env.get("BASSI_RUN_ID") == run_id and "BASSI_EVENT" not in env:
                found[p.pid] = p
        except (psutil.Error, OSError):
            continue
    return list(found.values())


def find_run_root(run_id: str) -> psutil.Process | None:
    """The topmost live process carrying ``BASSI_RUN_ID=run_id`` (a run whose PID went unsaved)."""
    found = []
    for p in psutil.process_iter(["uids"]):
        try:
            uids = p.info["uids"]
            if uids is None or uids.real != os.getuid():
                continue
            env = p.environ()
            if env.get("BASSI_RUN_ID") == run_id and "BASSI_EVENT" not in env:
                found.append(p)
        except psutil.Error:
            continue
    pids = {p.pid for p in found}
    roots = [p for p in found if p.ppid() not in pids]
    return min(roots, key=lambda p: p.create_time()) if roots else None


def signal_run(root_pid: int, run_id: str, sig: int) -> int:
    """Send ``sig`` to the run's group and every process of it; returns how many were alive."""
    return signal_tree(root_pid, run_processes(root_pid, run_id), sig)


def running_pids(procs: list[psutil.Process]) -> set[int]:
    """The pids of those processes that still run (a zombie only waits to be reaped)."""
    return {p.pid for p in running(procs)}


def untracked_children(tracked: set[int]) -> dict[int, float]:
    """Live children of the daemon it did not start itself (orphans re-parented to it), with
    their create times.

    Notify programs (``BASSI_EVENT`` in their environment) are the daemon's own too.
    """
    found = {}
    for c in psutil.Process().children():
        if c.pid in tracked:
            continue
        try:
            if c.status() == psutil.STATUS_ZOMBIE or "BASSI_EVENT" in c.environ():
                continue
            found[c.pid] = float(c.create_time())
        except psutil.Error:
            continue
    return found


def leftover_note(count: int) -> str:
    """The line a run's output.log gets when its main process exited before its children."""
    things = "process" if count == 1 else "processes"
    return f"bassi-schedd: the run's main process exited; stopping {count} {things} it left running"


def reap_strays(tracked: set[int]) -> list[int]:
    """Reap zombie children we do not track (orphans re-parented to us as subreaper)."""
    reaped = []
    for c in psutil.Process().children():
        if c.pid in tracked:
            continue
        try:
            pid, _ = os.waitpid(c.pid, os.WNOHANG)
        except ChildProcessError:
            continue
        if pid:
            reaped.append(pid)
    return reaped


@dataclass
class Active:
    """A run the daemon is watching: its own child (``popen``) or an adopted process."""

    run_id: str
    task: str
    pid: int
    created: float | None
    run_dir: Path
    deadline_mono: float
    popen: subprocess.Popen[bytes] | None = None
    stop_reason: str | None = None  # timeout | replaced | interrupted
    kill_at_mono: float | None = None  # when SIGKILL follows the SIGTERM already sent
    root_rc: int | None = None
    root_done: bool = False
    # Orphans re-parented to the daemon that carry no trace of their run (double fork, setsid,
    # cleared environment), by pid -> create time: they reach the daemon only once this run's
    # wrapper is gone (it is their subreaper until then), so they are claimed by such runs.
    orphans: dict[int, float | None] = field(default_factory=dict)

    def poll(self) -> tuple[bool, int | None]:
        """(ended, exit code) without blocking.

        A run being stopped has ended only when its whole tree is gone: the wrapper shell dies
        at the first SIGTERM, but descendants that ignore it must still meet the SIGKILL.
        """
        if not self.root_done:
            if self.popen is not None:
                rc = self.popen.poll()
                if rc is None:
                    return False, None
                self.root_rc = rc if rc >= 0 else 128 - rc
            elif is_alive(self.pid, self.created):
                return False, None
            else:
                self.root_rc = read_exit_code(self.run_dir)
            self.root_done = True
        if self.stop_reason is not None and (
            running(run_processes(self.pid, self.run_id)) or running(self.live_orphans())
        ):
            return False, None
        return True, self.root_rc

    def live_orphans(self) -> list[psutil.Process]:
        """The claimed orphans still running (a pid now used by another process is not one)."""
        procs = []
        for pid, created in self.orphans.items():
            with contextlib.suppress(psutil.Error):
                p = psutil.Process(pid)
                if created is None or abs(p.create_time() - created) <= 0.01:  # not a reused pid
                    procs.append(p)
        return procs

    def claim(self, orphans: dict[int, float | None]) -> None:
        """Make ``orphans`` part of this run; if it is being stopped, they get its signals now."""
        new = {pid: t for pid, t in orphans.items() if pid not in self.orphans}
        if not new:
            return
        self.orphans.update(new)
        if self.kill_at_mono is not None:
            for pid in new:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGTERM)

    def wrapper_gone(self) -> bool:
        """The run's root (its wrapper, the orphans' subreaper) has exited."""
        if self.root_done:
            return True
        if self.popen is not None:
            return self.popen.poll() is not None
        return not is_alive(self.pid, self.created)

    def _signal_orphans(self, sig: int) -> None:
        for p in self.live_orphans():
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)

    def terminate(self, reason: str, now_mono: float, grace_s: float) -> None:
        """SIGTERM the whole run now; SIGKILL survivors after ``grace_s``."""
        if self.stop_reason is None:
            self.stop_reason = reason
        if self.kill_at_mono is None:
            signal_run(self.pid, self.run_id, signal.SIGTERM)
            self._signal_orphans(signal.SIGTERM)
            self.kill_at_mono = now_mono + grace_s

    def kill_if_due(self, now_mono: float) -> None:
        if self.kill_at_mono is not None and now_mono >= self.kill_at_mono:
            signal_run(self.pid, self.run_id, signal.SIGKILL)
            self._signal_orphans(signal.SIGKILL)
            self.kill_at_mono = now_mono + 1.0  # keep sweeping until every survivor is gone
