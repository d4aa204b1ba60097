"""The log file writer: whole JSON lines appended to a size-rotated file shared by processes."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bassi_schedd.config.paths import FILE_MODE, make_private_dir


def utc_ts() -> str:
    """Now as the ``ts`` of a log line."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_json(event_dict: Mapping[str, Any]) -> str:
    """One log line (without the newline)."""
    try:
        return json.dumps(event_dict, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return json.dumps({k: repr(v) for k, v in event_dict.items()}, ensure_ascii=False)


class LogFile:
    """Appends whole lines to a size-rotated file that other processes may append to as well.

    Each line is one ``os.write`` on an ``O_APPEND`` descriptor, under an exclusive ``flock`` on
    a sidecar lock file (``.schedd.log.lock``), so the size check, the rotation and the write are
    atomic across processes: a file never exceeds ``max_bytes`` unless it holds a single line
    longer than that, and no line is ever split between files. A process whose descriptor still
    points at a rotated file notices (inode changed) and reopens before writing.
    """

    def __init__(self, path: Path, *, max_bytes: int, backups: int, retry_s: float):
        self.path = path
        self.lock_path = path.with_name(f".{path.name}.lock")
        self.max_bytes = max(1, max_bytes)
        self.backups = max(0, backups)
        self.retry_s = retry_s
        self.dropped = 0  # lines lost since configure (unwritable file, full disk)
        self._missed = 0  # lines lost in the current outage, reported when the file is back
        self._error: str | None = None
        self._fd: int | None = None
        self._lock_fd: int | None = None
        self._retry_at = 0.0
        self._mutex = threading.Lock()

    def write(self, line: str) -> dict[str, Any] | None:
        """Append one line. Never raises; the first failure of an outage returns a notice."""
        # A name from the disk that is not UTF-8 (surrogateescape) is written escaped, never fatal.
        data = (line + "\n").encode("utf-8", "backslashreplace")
        with self._mutex:
            try:
                if self._fd is None:
                    if time.monotonic() < self._retry_at:
                        self.dropped += 1
                        self._missed += 1
                        return None
                    self._open()
                    if self._missed:
                        data = self._recovery_line() + data
                self._append(data)
            except OSError as e:
                return self._fail(e)
            self._missed = 0
            self._error = None
            return None

    def rotated(self, index: int) -> Path:
        """``schedd.log.N``."""
        return self.path.with_name(f"{self.path.name}.{index}")

    def close(self) -> None:
        """Release the descriptors (a later write reopens them)."""
        with self._mutex:
            self._close_fds()

    def _open(self) -> None:
        make_private_dir(self.path.parent)
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC
        self._lock_fd = os.open(self.lock_path, flags, FILE_MODE)
        self._open_log()

    def _open_log(self) -> None:
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        fd = os.open(self.path, flags, FILE_MODE)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, FILE_MODE)
        except OSError:
            os.close(fd)
            raise
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    def _append(self, data: bytes) -> None:
        assert self._fd is not None and self._lock_fd is not None
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            self._reopen_if_rotated()
            size = os.fstat(self._fd).st_size
            if size > 0 and size + len(data) > self.max_bytes:
                self._rotate()
                size = 0
            # A line cut short by a full disk earlier must not swallow this one.
            if size > 0 and os.pread(self._fd, 1, size - 1) != b"\n":
                data = b"\n" + data
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                if n <= 0:
                    raise OSError(errno.ENOSPC, "short write")
                view = view[n:]
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def _reopen_if_rotated(self) -> None:
        assert self._fd is not None
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._open_log()
            return
        mine = os.fstat(self._fd)
        if (st.st_ino, st.st_dev) != (mine.st_ino, mine.st_dev):
            self._open_log()

    def _rotate(self) -> None:
        if self.backups == 0:
            os.unlink(self.path)
        else:
            for i in range(self.backups - 1, 0, -1):
                try:
                    os.replace(self.rotated(i), self.rotated(i + 1))
                except FileNotFoundError:
                    pass
            os.replace(self.path, self.rotated(1))
        self._open_log()

    def _recovery_line(self) -> bytes:
        notice = {
            "ts": utc_ts(),
            "level": "warning",
            "event": "log.dropped",
            "dropped": self._missed,
            "error": self._error,
        }
        return (render_json(notice) + "\n").encode()

    def _fail(self, e: OSError) -> dict[str, Any] | None:
        first = self._error is None
        self._close_fds()
        self._error = f"{type(e).__name__}: {e}"
        self._retry_at = time.monotonic() + self.retry_s
        self.dropped += 1
        self._missed += 1
        if not first:
            return None
        return {
            "ts": utc_ts(),
            "level": "error",
            "event": "log.file_error",
            "file": str(self.path),
            "error": self._error,
            "retry_s": self.retry_s,
        }

    def _close_fds(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._fd = self._lock_fd = None
