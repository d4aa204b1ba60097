"""A command task run in a terminal by ``execute TASK``: its own session, output copied to the
terminal and output.log, the timeout and ^C, and what it leaves running stopped (as the daemon
stops a finished run's leftovers)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

from bassi_schedd.config.paths import FILE_MODE
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.spec import TaskSpec


def command_in_foreground(
    task: TaskSpec, run_id: str, run_dir: Path, env: dict[str, str], grace_s: float
) -> int:
    """Run the task's command in its own session, copying its output; timeout and ^C stop it.

    As in the daemon, the run ends when its main process exits; processes it left running are
    noted in output.log and stopped (SIGTERM, SIGKILL after the grace).
    """
    from bassi_schedd.runner.process import leftover_note
    from bassi_schedd.runner.spawn import ChildSpec, become_subreaper, start_child

    assert task.command is not None
    # Orphans of the run (double fork, setsid, cleared environment) come back to this process,
    # so they can be found and stopped with the run, as the daemon does.
    become_subreaper()
    log_fd = os.open(run_dir / "output.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        # Output through a pipe we copy (to the terminal too); no wrapper, we wait for it.
        proc = start_child(ChildSpec(task.command, env, task.cwd))
    except OSError as e:
        os.close(log_fd)
        raise UserError(f"cannot start {task.command[0]}: {e.strerror or e}") from None
    stopped: int | None = None
    try:
        stopped = _copy_output(proc, log_fd, time.monotonic() + task.timeout_s)
    except KeyboardInterrupt:
        stopped = 128 + signal.SIGINT
    finally:
        left = _leftovers(proc.pid, run_id)
        if stopped is None and left:
            note = leftover_note(len(left))
            print(note, file=sys.stderr, flush=True)
            os.write(log_fd, (note + "\n").encode())
        if stopped is not None or left:
            _stop_all(proc, run_id, grace_s)
        assert proc.stdout is not None
        proc.stdout.close()
        os.close(log_fd)
    if stopped == 124:
        print(f"bassi-schedd: {task.name} timed out after {task.timeout_s:g}s", file=sys.stderr)
        return 124
    if stopped is not None:
        return stopped
    rc = proc.returncode
    return rc if rc >= 0 else 128 - rc


def _copy_output(proc: subprocess.Popen[bytes], log_fd: int, deadline_mono: float) -> int | None:
    """Copy the child's output until its main process exits; 124 if the deadline passes first.

    Not until the output closes: a child it left running may hold the pipe open for hours.
    """
    assert proc.stdout is not None
    out_fd = proc.stdout.fileno()
    os.set_blocking(out_fd, False)
    with contextlib.ExitStack() as stack:
        sel = stack.enter_context(selectors.DefaultSelector())
        sel.register(out_fd, selectors.EVENT_READ)
        exit_fd = _exit_fd(proc.pid)
        if exit_fd is not None:  # readable once the process exits: no polling needed
            stack.callback(os.close, exit_fd)
            sel.register(exit_fd, selectors.EVENT_READ)
        while proc.poll() is None:
            left_s = deadline_mono - time.monotonic()
            if left_s <= 0:
                return 124
            ready = sel.select(min(left_s, 1.0 if exit_fd is not None else 0.1))
            if any(key.fd == out_fd for key, _ in ready) and not _pass_on(out_fd, log_fd):
                sel.unregister(out_fd)  # closed: only the exit is left to wait for
        _pass_on(out_fd, log_fd)  # what it wrote just before exiting
    return None


def _exit_fd(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux pidfd), else None."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except OSError:
        return None


def _pass_on(out_fd: int, log_fd: int) -> bool:
    """Copy what can be read now to the terminal and output.log; False once the pipe is closed."""
    out = sys.stdout.buffer
    while True:
        try:
            chunk = os.read(out_fd, 65536)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        out.write(chunk)
        out.flush()
        os.write(log_fd, chunk)


def _leftovers(root_pid: int, run_id: str) -> list[int]:
    """Live processes of the run: its group, tree and id (process.py), and orphans sent to us."""
    from bassi_schedd.runner.process import run_processes, running_pids, untracked_children

    found = running_pids(run_processes(root_pid, run_id))
    return sorted(found | set(untracked_children({root_pid})))


def _stop_all(proc: subprocess.Popen[bytes], run_id: str, grace_s: float) -> None:
    """SIGTERM the run and its leftovers, SIGKILL what is left after ``grace_s`` (schedd.toml
    ``kill_grace``, as in the daemon); reap them all."""
    import psutil

    from bassi_schedd.runner.kill import stop_tree
    from bassi_schedd.runner.process import reap_strays, run_processes, untracked_children

    def find() -> list[psutil.Process]:
        procs = run_processes(proc.pid, run_id)
        for pid in untracked_children({proc.pid}):
            with contextlib.suppress(psutil.Error):
                procs.append(psutil.Process(pid))
        return procs

    def reap() -> None:
        proc.poll()
        reap_strays({proc.pid})

    stop_tree(proc.pid, find, grace_s, reap=reap, settle_s=5.0)
    proc.wait()
