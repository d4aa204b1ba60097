"""The PID lock: ``schedd/schedd.pid`` held with flock for the daemon's whole life.

flock locks die with the process, so a file left by a killed daemon never blocks a start; the PID
inside is only informational.
"""

from __future__ import annotations

import fcntl
import os
import time

from bassi_schedd.paths import FILE_MODE, Home, make_private_dir


class LockBusyError(Exception):
    """Another live daemon holds the lock."""

    def __init__(self, pid: int | None):
        self.pid = pid
        super().__init__(f"already running (pid {pid if pid is not None else 'unknown'})")


class PidLock:
    """An exclusive, non-blocking flock on the pid file; release by closing or process exit."""

    def __init__(self, home: Home):
        self.path = home.pid_file
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our PID, or raise LockBusyError naming the holder."""
        make_private_dir(self.path.parent)
        # O_CLOEXEC (Python's default) matters: a run that inherited this fd would keep the
        # lock alive after the daemon died.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            # The winner of a start race writes its PID just after taking the lock, over the
            # PID of a dead predecessor: give it a moment so the message names the live holder.
            for _ in range(50):
                if holder is not None and _alive(holder):
                    break
                time.sleep(0.01)
                holder = _read_pid(fd)
            os.close(fd)
            raise LockBusyError(holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip() or "x")
    except ValueError:
        return None


def read_holder(home: Home) -> int | None:
    """PID of the live daemon holding the lock, or None when no daemon runs."""
    try:
        fd = os.open(home.pid_file, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
