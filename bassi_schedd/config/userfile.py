"""The one way bassi-schedd reads a file a user wrote (task file, schedd.toml, prompt file).

Everything such a file could do to a reader is refused here, before or right after it is opened:
not being a regular file (a FIFO or a terminal would block the daemon in ``open`` or ``read``,
a device may act on open), living under /proc, /sys or /dev (``/proc/kmsg`` blocks,
``/proc/self/environ`` holds the daemon's API key), being writable by others or owned by another
user, being larger than :data:`MAX_FILE_BYTES`, or not being UTF-8. The reason is a phrase that
completes a sentence starting with the file's path, so every caller can name the file.
"""

from __future__ import annotations

import errno
import os
import stat
from functools import cache
from pathlib import Path

from bassi_schedd.core.errors import UserError, printable

MAX_FILE_BYTES = 1024 * 1024
# Pseudo-file systems: their "files" are live kernel and process data, never a user's text.
SYSTEM_DIRS = ("/proc", "/sys", "/dev")

_KINDS = (
    (stat.S_ISREG, "a regular file"),
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


class UnreadableFileError(UserError):
    """A user file that was refused or could not be read; ``reason`` follows its path."""

    def __init__(self, path: Path, reason: str, line: int | None = None, missing: bool = False):
        self.path = path
        self.reason = reason
        self.line = line
        self.missing = missing
        at = f" (line {line})" if line is not None else ""
        super().__init__(printable(f"{path} {reason}{at}"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "of an unknown kind")


def unsafe_owner_reason(st: os.stat_result, path: object, effect: str) -> str | None:
    """Why a file or folder that decides what we execute is refused (as cron and sshd do)."""
    uid = os.getuid()
    if st.st_uid != uid:
        return (
            f"is owned by uid {st.st_uid}, not by you (uid {uid}), {effect}; "
            f"run 'chown {uid} {path}' if you trust it"
        )
    bits = [
        who for who, bit in (("group", stat.S_IWGRP), ("world", stat.S_IWOTH)) if st.st_mode & bit
    ]
    if bits:
        mode = stat.S_IMODE(st.st_mode)
        return f"is {'/'.join(bits)}-writable (mode {mode:04o}), {effect}; run 'chmod go-w {path}'"
    return None


def unsafe_mode_reason(st: os.stat_result, path: object) -> str | None:
    """Why a file must be refused: not a regular file, another owner, writable by others."""
    if not stat.S_ISREG(st.st_mode):
        return f"is not a regular file ({_kind(st.st_mode)})"
    return unsafe_owner_reason(st, path, "so it is refused")


@cache
def _system_devices() -> frozenset[int]:
    """Device ids of the pseudo-file systems (only those that are not the root file system)."""
    try:
        root = os.stat("/").st_dev
    except OSError:
        return frozenset()
    devices = set()
    for d in SYSTEM_DIRS:
        try:
            dev = os.stat(d).st_dev
        except OSError:
            continue
        if dev != root:
            devices.add(dev)
    return frozenset(devices)


def _system_dir(path: Path) -> str | None:
    real = os.path.realpath(path)
    return next((d for d in SYSTEM_DIRS if real == d or real.startswith(d + "/")), None)


def _missing(path: Path, e: OSError) -> UnreadableFileError:
    """The error for a path that cannot be followed to a file, telling a broken link apart."""
    if e.errno == errno.ELOOP:
        return UnreadableFileError(path, "is a symbolic link that loops (it leads back to itself)")
    try:
        target = os.readlink(path)
    except OSError:
        target = None
    if target is not None:
        return UnreadableFileError(path, f"is a symbolic link to {target}, which does not exist")
    return UnreadableFileError(path, "does not exist", missing=True)


def read_user_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[bytes, os.stat_result]:
    """The content and stat of a user file, or :class:`UnreadableFileError` saying why not."""
    system = _system_dir(path)
    if system is not None:
        raise UnreadableFileError(
            path, f"is under {system}, which holds system data, not user files"
        )
    try:
        st = os.stat(path)  # no open() at all for a FIFO or a device
    except (FileNotFoundError, NotADirectoryError) as e:
        raise _missing(path, e) from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise _missing(path, e) from None
        raise UnreadableFileError(path, f"cannot be read: {e.strerror}") from None
    reason = unsafe_mode_reason(st, path)
    if reason:
        raise UnreadableFileError(path, reason)
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as e:
        raise _missing(path, e) from None
    except OSError as e:
        raise UnreadableFileError(path, f"cannot be opened: {e.strerror}") from None
    try:
        # Checked again on the open file: what we read is what we checked, even if swapped.
        st = os.fstat(fd)
        reason = unsafe_mode_reason(st, path)
        if reason is None and st.st_dev in _system_devices():
            reason = "is on a system file system (/proc, /sys or /dev), not a user file"
        if reason is None and st.st_size > max_bytes:
            reason = _too_large(st.st_size, max_bytes)
        if reason:
            raise UnreadableFileError(path, reason)
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes and (chunk := os.read(fd, min(1 << 16, max_bytes + 1 - size))):
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:  # it grew while we read it
            raise UnreadableFileError(path, _too_large(size, max_bytes))
        return b"".join(chunks), st
    except OSError as e:
        raise UnreadableFileError(path, f"cannot be read: {e.strerror}") from None
    finally:
        os.close(fd)


def _too_large(size: int, max_bytes: int) -> str:
    limit = f"{max_bytes // (1024 * 1024)} MiB" if max_bytes % (1024 * 1024) == 0 else max_bytes
    return f"is too large ({size} bytes; bassi-schedd reads at most {limit})"


def read_user_text(path: Path, max_bytes: int = MAX_FILE_BYTES) -> tuple[str, os.stat_result]:
    """:func:`read_user_bytes` decoded as UTF-8 (a leading byte-order mark is kept)."""
    raw, st = read_user_bytes(path, max_bytes)
    try:
        return raw.decode("utf-8"), st
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise UnreadableFileError(path, "is not valid UTF-8 text", line=line) from None


def unsafe_dir_reason(path: Path) -> str | None:
    """Why the folder ``path`` cannot be trusted to hold task files, or None (also if missing).

    Others who may write to it could add a symbolic link to any file of yours as a task or a
    prompt file, or swap the prompt file a task names, even though each file passes its checks.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return (
            f"the task folder is not a folder ({_kind(st.st_mode)}); "
            "no task runs until it is a folder again"
        )
    return unsafe_owner_reason(st, path, "so no task in it is loaded")


__all__ = [
    "MAX_FILE_BYTES",
    "UnreadableFileError",
    "read_user_bytes",
    "read_user_text",
    "unsafe_dir_reason",
    "unsafe_mode_reason",
]
