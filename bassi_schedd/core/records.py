"""The rows of the state store as values: run history rows, task summaries, new dispositions.

Timestamps are stored as canonical UTC text (``to_db``), so equal instants compare equal in SQL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from bassi_schedd.core.runstatus import RunStatus


def new_run_id(at: datetime) -> str:
    """Sortable id: the UTC second plus 6 random hex digits (unique enforced by the state store)."""
    return f"{at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{_random_part()}"


def reroll_run_id(run_id: str) -> str:
    """The same id with a fresh random part, for when the first one was already taken."""
    return f"{run_id.rpartition('-')[0]}-{_random_part()}"


def _random_part() -> str:
    return secrets.token_hex(3)


def to_db(dt: datetime | None) -> str | None:
    """Canonical UTC text for a datetime (whole seconds keep the unique index exact)."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("naive datetime given to the state store")
    timespec = "seconds" if dt.microsecond == 0 else "milliseconds"
    return dt.astimezone(UTC).isoformat(timespec=timespec)


def iso_utc(dt: datetime | None) -> str | None:
    """UTC ISO 8601 text for log fields and notifications (None stays None)."""
    return None if dt is None else dt.astimezone(UTC).isoformat()


def from_db(text: str | None) -> datetime | None:
    """Parse what ``to_db`` wrote."""
    return None if text is None else datetime.fromisoformat(text)


# The daemon's own columns, left out of what history shows users.
_BOOKKEEPING = (
    "pid",
    "pid_create_time",
    "not_before",
    "sequential",
    "seq",
    "foreground",
    "stop_reason",
)


@dataclass(frozen=True)
class RunRow:
    """One history row (SPEC 5 fields plus the daemon's bookkeeping)."""

    run_id: str
    task: str
    trigger: str
    scheduled_for: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: float | None
    status: RunStatus
    exit_code: int | None
    attempt: int
    cost_usd: float | None
    input_tokens: int | None
    output_tokens: int | None
    run_dir: str | None
    pid: int | None = None
    pid_create_time: float | None = None
    not_before: datetime | None = None
    sequential: bool = False
    seq: int = 0
    detail: str | None = None
    foreground: bool = False  # started by `execute TASK` in a terminal, not by the daemon
    # Set while the daemon stops the run (what it will be recorded as), so a daemon that dies
    # before the run is gone lets the next one finish the stop instead of recording it lost.
    stop_reason: RunStatus | None = None
    # sha256 of a success's result.md (agent) or output.log (command): notify on "changed"
    result_sha256: str | None = None

    def public(self) -> dict[str, Any]:
        """The documented history fields, JSON-ready."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _BOOKKEEPING:
                continue
            v = getattr(self, f.name)
            out[f.name] = to_db(v) if isinstance(v, datetime) else v
        return out


@dataclass(frozen=True)
class TaskSummary:
    """Per-task state for ``list`` and ``status``."""

    task: str
    last_status: RunStatus | None
    last_run_at: datetime | None
    done: bool
    last_ok: bool | None
    paused: bool = False


@dataclass(frozen=True)
class NewRun:
    """A disposition row to insert: a queued run or a recorded non-run (missed, coalesced...)."""

    run_id: str
    task: str
    trigger: str
    scheduled_for: datetime | None
    status: RunStatus
    attempt: int = 1
    not_before: datetime | None = None
    sequential: bool = False
    detail: str | None = None


def as_number(value: object) -> float | None:
    """A JSON value as a float when it is a number (a bool is not), else None."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def as_integer(value: object) -> int | None:
    """A JSON value as an int when it is a whole number (a bool is not), else None."""
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None
