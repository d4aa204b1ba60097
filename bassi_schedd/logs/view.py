"""Reading ``logs/schedd.log`` for ``bassi-schedd logs``: files, filters, readable lines, follow.

A readable line is ``LOCAL-TIME LEVEL TASK EVENT DETAILS``, for example::

    2026-11-22 09:00:01 INFO  weekly-report run.end success 12.3s exit=0 cost=$0.0123 run=a1b2c3
    2026-11-22 09:00:04 ERROR weekly-report run.end failed 3.0s exit=1 run=d4e5f6 error="max turns"

TASK is ``-`` for daemon events. DETAILS: the status, the duration, ``exit=``, ``cost=``, ``run=``
(the random suffix of the run id, which ``--run`` accepts), ``trigger=`` unless it is
``schedule``, ``for=`` (the scheduled time) unless the line was written within 90 s of it, then
every other field as ``key=value`` in the order logged, and ``error=`` last. Lines that are not
JSON objects are shown as they are.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import IO, Any

from bassi_schedd.core.durations import format_duration_s
from bassi_schedd.core.policy import ON_TIME_S

LEVEL_RANK = {
    "debug": 10,
    "info": 20,
    "warn": 30,
    "warning": 30,
    "error": 40,
    "exception": 40,
    "critical": 50,
    "fatal": 50,
}
_LABEL = {"debug": "DEBUG", "info": "INFO", "warning": "WARN", "warn": "WARN", "error": "ERROR"}
_LABEL |= {"exception": "ERROR", "critical": "CRIT", "fatal": "CRIT"}
_COLOR = {"DEBUG": "\x1b[2m", "INFO": "\x1b[32m", "WARN": "\x1b[33m", "ERROR": "\x1b[1;31m"}
_COLOR["CRIT"] = "\x1b[1;41m"
_RESET = "\x1b[0m"
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-([0-9a-f]+)")
_BARE = re.compile(r"[^\s\"'=]+")
# Shown in their own form (or not at all) rather than as key=value.
_HIDDEN = frozenset({"ts", "level", "event", "task", "status", "duration_s", "exit_code"})
_HIDDEN |= {"cost_usd", "run_id", "trigger", "scheduled_for", "attempt", "error"}
_READ_CHUNK = 1 << 16


def log_files(log_file: Path) -> list[Path]:
    """The rotated files oldest first (``schedd.log.5`` ... ``.1``), then ``schedd.log``."""
    rotated: list[tuple[int, Path]] = []
    prefix = log_file.name + "."
    try:
        entries = list(log_file.parent.iterdir())
    except OSError:
        return []
    for p in entries:
        suffix = p.name[len(prefix) :]
        if p.name.startswith(prefix) and suffix.isdigit() and p.is_file():
            rotated.append((int(suffix), p))
    files = [p for _, p in sorted(rotated, reverse=True)]
    return [*files, log_file] if log_file.is_file() else files


def parse_level(text: str) -> int:
    """The rank of a level name given on the command line; ValueError if unknown."""
    rank = LEVEL_RANK.get(text.strip().lower())
    if rank is None:
        raise ValueError(f"unknown level {text!r}; use debug, info, warning, error or critical")
    return rank


def parse_record(line: str) -> dict[str, Any] | None:
    """The JSON object of a log line, or None for anything else."""
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def parse_ts(value: object) -> datetime | None:
    """A ``ts`` (or any ISO time) as an aware datetime; None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)


def run_id_matches(value: object, wanted: str) -> bool:
    """A run id equals ``wanted`` or ends with ``-wanted`` (the short form shown as run=)."""
    return isinstance(value, str) and (value == wanted or value.endswith("-" + wanted))


@dataclass(frozen=True)
class LogFilter:
    """What ``--task``, ``--run``, ``--level`` and ``--since`` keep."""

    task: str | None = None
    run_id: str | None = None
    min_level: int | None = None
    since: datetime | None = None


class LineSelector:
    """Applies a LogFilter line by line; a non-JSON line takes the time of the line before it."""

    def __init__(self, flt: LogFilter):
        self.flt = flt
        self._last_ts: datetime | None = None

    def select(self, line: str) -> tuple[bool, dict[str, Any] | None]:
        """(keep?, parsed record or None)."""
        if not line.strip():
            return False, None
        flt = self.flt
        rec = parse_record(line)
        ts = parse_ts(rec.get("ts")) if rec is not None else None
        if ts is not None:
            self._last_ts = ts
        else:
            ts = self._last_ts
        if flt.since is not None and (ts is None or ts < flt.since):
            return False, rec
        if rec is None:
            return flt.task is None and flt.run_id is None, None
        if flt.task is not None and rec.get("task") != flt.task:
            return False, rec
        if flt.run_id is not None and not run_id_matches(rec.get("run_id"), flt.run_id):
            return False, rec
        if flt.min_level is not None:
            rank = LEVEL_RANK.get(str(rec.get("level", "info")).lower(), 20)
            if rank < flt.min_level:
                return False, rec
        return True, rec


def short_run_id(run_id: str) -> str:
    """The random suffix of ``20261122T080001Z-a1b2c3``; other ids unchanged."""
    m = _RUN_ID.fullmatch(run_id)
    return m.group(1) if m else run_id


def _duration(seconds: float) -> str:
    return f"{seconds:.1f}s" if seconds < 60 else format_duration_s(seconds)


def _value(value: object) -> str:
    if isinstance(value, str):
        return value if _BARE.fullmatch(value) else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _local(dt: datetime, tz: tzinfo | None, fmt: str) -> str:
    return dt.astimezone(tz).strftime(fmt)


def format_record(rec: dict[str, Any], *, color: bool = False, tz: tzinfo | None = None) -> str:
    """One readable line for a log record; ``tz`` None means the local zone."""
    ts = parse_ts(rec.get("ts"))
    when = _local(ts, tz, "%Y-%m-%d %H:%M:%S") if ts else str(rec.get("ts", "-"))
    level = str(rec.get("level", "info")).lower()
    label = _LABEL.get(level, level.upper()).ljust(5)
    if color:
        label = f"{_COLOR.get(label.strip(), '')}{label}{_RESET}"
    parts = [when, label, str(rec.get("task") or "-"), str(rec.get("event", "-"))]
    if rec.get("status") is not None:
        parts.append(str(rec["status"]))
    if isinstance(rec.get("duration_s"), int | float):
        parts.append(_duration(float(rec["duration_s"])))
    if rec.get("exit_code") is not None:
        parts.append(f"exit={rec['exit_code']}")
    if isinstance(rec.get("cost_usd"), int | float):
        parts.append(f"cost=${rec['cost_usd']:.4f}")
    if isinstance(rec.get("run_id"), str):
        parts.append(f"run={short_run_id(rec['run_id'])}")
    if rec.get("attempt") not in (None, 1):
        parts.append(f"attempt={rec['attempt']}")
    if rec.get("trigger") not in (None, "schedule"):
        parts.append(f"trigger={rec['trigger']}")
    sched = parse_ts(rec.get("scheduled_for"))
    if sched is not None and (ts is None or abs((ts - sched).total_seconds()) > ON_TIME_S):
        parts.append(f"for={_local(sched, tz, '%Y-%m-%dT%H:%M')}")
    parts.extend(f"{k}={_value(v)}" for k, v in rec.items() if k not in _HIDDEN and v is not None)
    if rec.get("error") is not None:
        parts.append(f"error={_value(rec['error'])}")
    return " ".join(parts)


def format_line(line: str, rec: dict[str, Any] | None, *, color: bool) -> str:
    """The readable form of a selected line (non-JSON lines as they are)."""
    return format_record(rec, color=color) if rec is not None else line.rstrip("\r\n")


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def read_lines(paths: list[Path]) -> Iterator[str]:
    """Every line of the files in order (a file that vanished meanwhile is skipped)."""
    for path in paths:
        try:
            with path.open("rb") as f:
                for raw in f:
                    yield _decode(raw).rstrip("\r\n")
        except FileNotFoundError:
            continue


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_ino, a.st_dev) == (b.st_ino, b.st_dev)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return os.stat(path)
    except OSError:
        return None


class Follower:
    """``tail -F`` for a rotated log: the existing lines, then new ones as they are written.

    At end of file it checks whether ``schedd.log`` was replaced (rotation) or truncated. After a
    rotation it finishes the old file, then reads any file rotated after it that it never saw
    (several rotations between two polls), then opens the new ``schedd.log``.
    """

    def __init__(
        self, log_file: Path, *, poll_s: float = 0.2, sleep: Callable[[float], None] = time.sleep
    ):
        self.path = log_file
        self.poll_s = poll_s
        self.sleep = sleep
        self._buf = b""

    def lines(self, on_missing: Callable[[], None] | None = None) -> Iterator[str]:
        """Yield lines forever (the caller stops by closing the generator or an interrupt)."""
        for p in log_files(self.path)[:-1] if self.path.is_file() else log_files(self.path):
            yield from read_lines([p])
        f = self._open_wait(on_missing)
        try:
            while True:
                chunk = f.read(_READ_CHUNK)
                if chunk:
                    yield from self._split(chunk)
                    continue
                now, mine = _stat(self.path), os.fstat(f.fileno())
                if now is not None and _same_file(now, mine):
                    if now.st_size < f.tell():  # truncated in place (copytruncate)
                        f.seek(0)
                        self._buf = b""
                        continue
                    self.sleep(self.poll_s)
                    continue
                yield from self._split(f.read())
                yield from self._flush()
                f.close()
                yield from read_lines(self._rotated_after(mine))
                f = self._open_wait(on_missing)
        finally:
            f.close()

    def _rotated_after(self, old: os.stat_result) -> list[Path]:
        """Rotated files newer than the one we were reading, oldest first."""
        files = log_files(self.path)
        rotated = files[:-1] if files and files[-1] == self.path else files
        for i, p in enumerate(rotated):
            st = _stat(p)
            if st is not None and _same_file(st, old):
                return rotated[i + 1 :]
        return []

    def _open_wait(self, on_missing: Callable[[], None] | None) -> IO[bytes]:
        told = False
        while True:
            try:
                return self.path.open("rb")
            except FileNotFoundError:
                if not told and on_missing is not None:
                    on_missing()
                told = True
                self.sleep(self.poll_s)

    def _split(self, chunk: bytes) -> Iterator[str]:
        data = self._buf + chunk
        *complete, self._buf = data.split(b"\n")
        for raw in complete:
            yield _decode(raw).rstrip("\r")

    def _flush(self) -> Iterator[str]:
        if self._buf:
            yield _decode(self._buf)
            self._buf = b""
