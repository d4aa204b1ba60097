"""Structured logging (SPEC 7): one JSON object per line to ``logs/schedd.log`` and to stderr.

Modules just do ``log = structlog.get_logger()`` and ``log.info("run.end", task=..., ...)``;
:func:`configure_logging` wires that to the files. Every line starts with ``ts`` (UTC, ISO 8601,
millisecond precision, ``Z`` suffix: ``2026-11-22T08:00:01.123Z``), ``level`` and ``event``.

Secrets: a field whose *name* looks secret (``api_key``, ``oauth_token``, ``password`` ...) is
logged as ``"***"``, every value of an ``env`` dict likewise, and any value declared with
:func:`register_secret_values` is cut out of the free-text fields (error, reason, detail,
output, exception ...: every field but the structural ones in ``STRUCTURAL_FIELDS``, which a
reader filters on and which never hold a secret). :func:`secret_env_values` picks which
environment values are worth declaring.
"""

from __future__ import annotations

import math
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import EllipsisType
from typing import IO, Any

import structlog
from structlog.typing import EventDict, WrappedLogger

from bassi_schedd.logs.events import EVENTS
from bassi_schedd.logs.logfile import LogFile, render_json, utc_ts

__all__ = [
    "EVENTS",
    "LEVELS",
    "LogFile",
    "configure_logging",
    "register_secret_values",
    "secret_env_values",
]

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
REDACTED = "***"
MIN_SECRET_LEN = 4  # shorter values would scrub ordinary words and numbers everywhere
# A value of a variable whose name does not look secret is taken for one from this length on:
# "info", "2026" or "start" are settings, a token or password is longer.
MIN_PLAIN_SECRET_LEN = 8
# Fields that identify and structure a line (what `logs --task/--run/--level` and jq filter on):
# names, ids, times, statuses, numbers and paths the daemon makes. No user text or child output
# reaches them, so registered values are never cut out of them.
STRUCTURAL_FIELDS = frozenset(
    {
        "ts",
        "level",
        "event",
        "task",
        "run_id",
        "scheduled_for",
        "trigger",
        "status",
        "exit_code",
        "duration_s",
        "cost_usd",
        "attempt",
        "pid",
        "retry_at",
        "started_at",
        "ended_at",
        "now",
        "first_after",
        "recorded_from",
        "channel",
        "kind",
        "url",
        "file",
        "path",
        "home",
        "pid_file",
        "version",
        "signal",
    }
)

_SECRET_NAME = re.compile(r"key|token|secret|passw(?:or)?d|credential|auth", re.IGNORECASE)
# Environment variable names whose value is a secret even when short (DB_PASS, GH_PAT, ...).
_SECRET_ENV_NAME = re.compile(
    r"KEY|TOKEN|SECRET|PASS|PWD|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE|SIGNATURE|_PAT\b",
    re.IGNORECASE,
)
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


def secret_env_values(variables: Iterable[tuple[str, str]]) -> list[str]:
    """Which values of environment variables (task ``env``, ``pass_env``) to treat as secrets.

    A variable named like a secret (``*KEY*``, ``*TOKEN*``, ``*SECRET*``, ``*PASS*``,
    ``*AUTH*``, ``*CREDENTIAL*`` ...) from ``MIN_SECRET_LEN`` characters, any other from
    ``MIN_PLAIN_SECRET_LEN``: cutting "info" or "2026" out of log lines hides nothing and breaks
    them.
    """
    out = []
    for name, value in variables:
        low = MIN_SECRET_LEN if _SECRET_ENV_NAME.search(name) else MIN_PLAIN_SECRET_LEN
        if len(value) >= low:
            out.append(value)
    return out


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


def _clean(name: str, value: Any, free: bool) -> Any:
    """The value as it may be logged: JSON-native, secrets removed (``free``: free text)."""
    if value is None or isinstance(value, bool):
        return value
    if name == "env" and isinstance(value, Mapping):
        return {str(k): REDACTED for k in value}
    if name and is_secret_name(name):
        return REDACTED
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(str(k), v, free) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_clean("", v, free) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, str):
        text = value
    else:
        try:
            text = str(value)
        except Exception:  # a broken __str__ must not break logging
            text = f"<unprintable {type(value).__name__}>"
    return _scrub(text) if free else text


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: secret-looking names, ``env`` dicts, registered values in free text."""
    return {
        str(k): _clean(str(k), v, str(k) not in STRUCTURAL_FIELDS) for k, v in event_dict.items()
    }


def _order(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """ts, level, event first (a fresh ts: callers cannot forge it), then the fields."""
    head = {"ts": utc_ts(), "level": event_dict.pop("level", "info")}
    head["event"] = event_dict.pop("event", "")
    head.update(event_dict)
    return head


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
        lost = False
        if self.file is not None:
            dropped = self.file.dropped
            notice = self.file.write(line)
            lost = self.file.dropped != dropped
            if notice is not None:
                self._to_stderr(render_json(notice), lost)
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
        self._to_stderr(text, lost)
        raise structlog.DropEvent

    def _to_stderr(self, text: str, file_lost_it: bool = False) -> None:
        # A line the file could not take (a full disk) goes to stderr even when the stderr copy
        # is off: somewhere must say why the daemon is stuck.
        stream = self.stderr
        if stream is ... or (stream is None and file_lost_it):
            stream = sys.stderr
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
