"""The daemon lock: one daemon per home, held with flock for the daemon's whole life.

Two flocks, both dying with the process, so what a killed daemon leaves never blocks a start:

- on the ``schedd/`` folder itself. This one decides: deleting or replacing ``schedd.pid`` cannot
  release it, as it released a lock held on the pid file alone (a flock sits on an inode, and a
  deleted file's inode is no longer the one a new daemon opens);
- on ``schedd/schedd.pid``, which holds the PID for ``status``, ``trigger`` and scripts (and is
  what earlier versions lock). :meth:`PidLock.check`, called at every wake-up, writes it again
  when it was deleted, replaced or overwritten.

Probes (:func:`read_holder`) take a shared lock for an instant. A starting daemon keeps trying
for a moment before it calls the lock busy, so a busy ``status`` poll never makes ``run`` refuse,
and a PID is named only when that process lives: a stale PID never blocks a start.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from pathlib import Path

from bassi_schedd.config.paths import FILE_MODE, Home, make_private_dir

# A probe holds a lock for microseconds, a daemon for good: this long busy means a daemon.
BUSY_AFTER_S = 0.5
# Time for the winner of a start race to write its PID, so the loser's message names it.
NAME_WAIT_S = 2.0


class LockBusyError(Exception):
    """Another live daemon holds the lock."""

    def __init__(self, pid: int | None):
        self.pid = pid
        super().__init__(f"already running (pid {pid if pid is not None else 'unknown'})")


class LockLostError(Exception):
    """The daemon can no longer be sure it is the only one (its lock folder was replaced)."""


class PidLock:
    """Exclusive, non-blocking flocks on ``schedd/`` and the pid file; released by exit."""

    def __init__(self, home: Home):
        self.home = home
        self.path = home.pid_file
        self.dir_fd: int | None = None
        self.fd: int | None = None
        self._dir_id: tuple[int, int] | None = None

    def acquire(self) -> None:
        """Take the lock and write our PID, or raise LockBusyError naming the holder."""
        make_private_dir(self.path.parent)
        # O_CLOEXEC (Python's default) matters: a run that inherited these fds would keep the
        # lock alive after the daemon died.
        dir_fd = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if not _lock_soon(dir_fd):
                raise LockBusyError(_name_holder(self.home))
            self.fd = self._lock_pid_file()
        except BaseException:
            os.close(dir_fd)
            raise
        self.dir_fd = dir_fd
        self._dir_id = _file_id(os.fstat(dir_fd))
        self._write_pid()

    def check(self) -> str | None:
        """Re-assert the lock at a wake-up; say what was repaired (None: nothing was wrong).

        A deleted, replaced or overwritten pid file is written again, so ``status`` and
        ``trigger`` keep finding the daemon. Raises LockLostError when ``schedd/`` itself was
        removed or replaced (the folder lock no longer keeps a second daemon out).
        """
        assert self.fd is not None
        folder = self.path.parent
        try:
            folder_id = _file_id(os.stat(folder))
        except FileNotFoundError:
            raise LockLostError(f"the folder {folder} was removed") from None
        if folder_id != self._dir_id:
            raise LockLostError(f"the folder {folder} was replaced")
        if not _same_file(self.fd, self.path):
            what = "replaced" if self.path.exists() else "deleted"
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            if not _lock_soon(fd):
                os.close(fd)
                raise LockLostError(f"{self.path} was {what} and another process locks it now")
            os.close(self.fd)
            self.fd = fd
            self._write_pid()
            return f"{self.path} was {what}; written again"
        if _read_pid(self.fd) != os.getpid():
            self._write_pid()
            if _read_pid(self.fd) == os.getpid():
                return f"{self.path} did not hold our PID; written again"
        return None

    def release(self) -> None:
        """Drop both locks (process exit does the same)."""
        for fd in (self.fd, self.dir_fd):
            if fd is not None:
                os.close(fd)
        self.fd = self.dir_fd = None

    def _lock_pid_file(self) -> int:
        for _ in range(10):  # the file may be deleted between our open and our flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, FILE_MODE)
            if not _lock_soon(fd):
                os.close(fd)  # a daemon of an earlier version, which locks only this file
                raise LockBusyError(_name_holder(self.home))
            if _same_file(fd, self.path):
                return fd
            os.close(fd)
        raise LockBusyError(None)

    def _write_pid(self) -> None:
        assert self.fd is not None
        data = f"{os.getpid()}\n".encode()
        try:
            # Write over, then cut: on a full disk the file's existing block is reused.
            os.pwrite(self.fd, data, 0)
            os.ftruncate(self.fd, len(data))
        except OSError:
            pass  # a full disk: check() writes it at a later wake-up


def _lock_soon(fd: int) -> bool:
    """Take an exclusive flock, retrying while a probe may hold it; False when still busy."""
    deadline = time.monotonic() + BUSY_AFTER_S
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)


def _file_id(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _same_file(fd: int, path: Path) -> bool:
    try:
        return _file_id(os.stat(path)) == _file_id(os.fstat(fd))
    except FileNotFoundError:
        return False


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
        pid = int(os.pread(fd, 32, 0).decode().strip() or "x")
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    return pid if pid > 0 else None


def _pid_in_file(path: Path) -> int | None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        return _read_pid(fd)
    finally:
        os.close(fd)


def _pid_in_state_db(path: Path) -> int | None:
    """The ``daemon_pid`` the daemon recorded at start: the PID when the pid file is gone."""
    if not path.exists():
        return None
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=1.0)
    except sqlite3.Error:
        return None
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'daemon_pid'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()
    value = str(row[0]) if row is not None else ""
    return int(value) if value.isdigit() and int(value) > 0 else None


def _live_holder(home: Home) -> int | None:
    for pid in (_pid_in_file(home.pid_file), _pid_in_state_db(home.state_db)):
        if pid is not None and _alive(pid):
            return pid
    return None


def _name_holder(home: Home, wait_s: float = NAME_WAIT_S) -> int | None:
    """The live holder's PID, waiting a moment for a daemon that just started to write it."""
    deadline = time.monotonic() + wait_s
    while True:
        pid = _live_holder(home)
        if pid is not None or time.monotonic() >= deadline:
            return pid
        time.sleep(0.01)


def _is_locked(path: Path) -> bool:
    """True when some process holds an flock on ``path`` (probed with a shared lock)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def read_holder(home: Home) -> int | None:
    """PID of the live daemon holding the lock, or None when no daemon runs."""
    if not (_is_locked(home.schedd_dir) or _is_locked(home.pid_file)):
        return None
    return _name_holder(home, wait_s=0.5)
