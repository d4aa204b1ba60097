"""Structured logging (SPEC 7): one JSON object per line to ``logs/schedd.log`` and to stderr.

Modules just do ``log = structlog.get_logger()`` and ``log.info("run.end", task=..., ...)``;
:func:`configure_logging` wires that to the files. Every line starts with ``ts`` (UTC, ISO 8601,
millisecond precision, ``Z`` suffix: ``2026-11-22T08:00:01.123Z``), ``level`` and ``event``.

Secrets: a field whose *name* looks secret (``api_key``, ``oauth_token``, ``password`` ...) is
logged as ``"***"``, every value of an ``env`` dict likewise, and any value declared with
:func:`register_secret_values` is cut out of every string wherever it appears.
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import re
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import EllipsisType
from typing import IO, Any

import structlog
from structlog.typing import EventDict, FilteringBoundLogger, WrappedLogger

from bassi_schedd.paths import FILE_MODE, make_private_dir

# The stable event names of SPEC 7. Other modules may add their own (e.g. notify.sent,
# run.timeout); the logging machinery itself adds log.file_error and log.dropped.
EVENTS = (
    "daemon.start",
    "daemon.stop",
    "daemon.reload",
    "task.loaded",
    "task.changed",
    "task.removed",
    "task.invalid",
    "run.start",
    "run.end",
    "run.retry",
    "run.skipped",
    "run.missed",
    "run.adopted",
    "clock.jump",
    "lock.busy",
)
LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
REDACTED = "***"
MIN_SECRET_LEN = 4  # shorter values would scrub ordinary words and numbers everywhere

_SECRET_NAME = re.compile(r"key|token|secret|passw(?:or)?d|credential|auth", re.IGNORECASE)
# Names that match the pattern but carry counts or TOML key names, never secrets.
_SAFE_NAMES = frozenset(
    {
        "key",
        "input_tokens",
        "output_tokens",
        "cache_read_input_tokens",
        "cache_creation_input_tokens",
    }
)

_secrets_lock = threading.Lock()
_secret_values: set[str] = set()
_secret_re: re.Pattern[str] | None = None


def register_secret_values(values: Iterable[str]) -> None:
    """Declare values (task env, pass_env values) to be cut out of every logged string."""
    global _secret_re
    new = {v for v in values if isinstance(v, str) and len(v) >= MIN_SECRET_LEN}
    with _secrets_lock:
        if new <= _secret_values:
            return
        _secret_values.update(new)
        # Longest first, so a secret that contains another is removed whole.
        ordered = sorted(_secret_values, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(v) for v in ordered))


def clear_secret_values() -> None:
    """Forget every registered value (tests; a daemon never needs this)."""
    global _secret_re
    with _secrets_lock:
        _secret_values.clear()
        _secret_re = None


def is_secret_name(name: str) -> bool:
    """True when a field called ``name`` must never show its value."""
    return name.lower() not in _SAFE_NAMES and _SECRET_NAME.search(name) is not None


def _scrub(text: str) -> str:
    pattern = _secret_re
    return text if pattern is None else pattern.sub(REDACTED, text)


def _clean(name: str, value: Any) -> Any:
    """The value as it may be logged: JSON-native, secrets removed."""
    if value is None or isinstance(value, bool):
        return value
    if name == "env" and isinstance(value, Mapping):
        return {_scrub(str(k)): REDACTED for k in value}
    if name and is_secret_name(name):
        return REDACTED
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {_scrub(str(k)): _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean("", v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    try:
        text = str(value)
    except Exception:  # a broken __str__ must not break logging
        text = f"<unprintable {type(value).__name__}>"
    return _scrub(text)


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: secret-looking names, ``env`` dicts and registered values."""
    return {str(k): _clean(str(k), v) for k, v in event_dict.items()}


def utc_ts() -> str:
    """Now as the ``ts`` of a log line."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _order(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """ts, level, event first (a fresh ts: callers cannot forge it), then the fields."""
    head = {"ts": utc_ts(), "level": event_dict.pop("level", "info")}
    head["event"] = event_dict.pop("event", "")
    head.update(event_dict)
    return head


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
        data = (line + "\n").encode()
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


class _Output:
    """What structlog's last processor hands the line to: the file and stderr."""

    def __init__(self, log_file: LogFile | None, stderr: IO[str] | EllipsisType | None, tty: bool):
        self.file = log_file
        self.stderr = stderr
        self.console = (
            structlog.dev.ConsoleRenderer(colors=True, timestamp_key="ts") if tty else None
        )

    def render(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> Any:
        """Final processor: write everywhere; structlog then calls a no-op logger."""
        line = render_json(event_dict)
        if self.file is not None:
            notice = self.file.write(line)
            if notice is not None:
                self._to_stderr(render_json(notice))
        text = line
        if self.console is not None:
            shown = dict(event_dict)
            exc = shown.pop("exception", None)
            try:
                text = str(self.console(_logger, _method, shown))
            except Exception:  # pretty output is a nicety; the JSON line will do
                text = line
            else:
                text = f"{text}\n{exc}" if exc else text
        self._to_stderr(text)
        raise structlog.DropEvent

    def _to_stderr(self, text: str) -> None:
        stream = sys.stderr if self.stderr is ... else self.stderr
        if stream is None:
            return
        try:
            stream.write(text + "\n")
            stream.flush()
        except (OSError, ValueError):  # closed or broken stderr: the file still has it
            pass

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


_current: _Output | None = None
_configure_lock = threading.Lock()


def configure_logging(
    log_file: Path | None,
    *,
    max_bytes: int = 10 * 1024 * 1024,
    backups: int = 5,
    stderr: IO[str] | EllipsisType | None = ...,
    stderr_tty: bool | None = None,
    level: str = "info",
    retry_s: float = 60.0,
) -> None:
    """Send structlog to ``log_file`` (rotated at ``max_bytes``, ``backups`` old files) and stderr.

    ``stderr``: ``...`` (default) is whatever ``sys.stderr`` is at each write, ``None`` turns the
    stderr copy off. ``stderr_tty`` forces coloured text (True) or JSON (False); by default it is
    coloured exactly when stderr is a terminal. ``level``: debug|info|warning|error|critical.
    If the file cannot be written, lines still reach stderr and the file is retried at most
    every ``retry_s`` seconds. May be called again (the previous file is closed).
    """
    global _current
    min_level = LEVELS.get(level.lower())
    if min_level is None:
        raise ValueError(f"unknown log level {level!r}; use one of {', '.join(LEVELS)}")
    if stderr_tty is None:
        stream = sys.stderr if stderr is ... else stderr
        try:
            stderr_tty = bool(stream is not None and stream.isatty())
        except (AttributeError, ValueError):
            stderr_tty = False
    sink = (
        LogFile(log_file, max_bytes=max_bytes, backups=backups, retry_s=retry_s)
        if log_file
        else None
    )
    output = _Output(sink, stderr, stderr_tty)
    with _configure_lock:
        previous, _current = _current, output
        structlog.configure(
            processors=[
                structlog.contextvars.merge_contextvars,
                structlog.processors.add_log_level,
                structlog.processors.StackInfoRenderer(),
                structlog.processors.format_exc_info,
                _order,
                redact,
                output.render,
            ],
            wrapper_class=structlog.make_filtering_bound_logger(min_level),
            logger_factory=structlog.ReturnLoggerFactory(),
            cache_logger_on_first_use=False,
        )
    if previous is not None:
        previous.close()


def reset_logging() -> None:
    """Close the log file and return structlog to its defaults (daemon exit, tests)."""
    global _current
    with _configure_lock:
        previous, _current = _current, None
        structlog.reset_defaults()
    if previous is not None:
        previous.close()


def dropped_lines() -> int:
    """How many lines the current log file missed (unwritable file, full disk)."""
    out = _current
    return 0 if out is None or out.file is None else out.file.dropped


def get_logger(**initial: Any) -> FilteringBoundLogger:
    """``structlog.get_logger`` with a precise type, optionally with bound fields."""
    logger: FilteringBoundLogger = structlog.get_logger(**initial)
    return logger
