"""Missed-run and retry policies as pure functions: what to do with each due time.

No clock reads, no I/O: the daemon passes ``now`` and records what comes back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bassi_schedd.core.spec import TaskSpec

ON_TIME_S = 90.0
MAX_CATCHUP_RUNS = 100
MAX_RETRY_DELAY_S = 3600.0
TEMPFAIL_EXIT = 75
MAX_TEMPFAIL_RETRIES = 3

Action = Literal["run", "missed", "coalesced"]


@dataclass(frozen=True)
class Disposition:
    """What happens to one scheduled time."""

    scheduled_for: datetime
    action: Action
    trigger: Literal["schedule", "catchup"]
    sequential: bool = False  # part of an on_missed=all catch-up: runs one after another
    reason: str | None = None


def plan(
    task: TaskSpec, due: list[datetime], now: datetime, recovered: list[datetime] | None = None
) -> list[Disposition]:
    """Apply on-time/missed rules, ``missed_deadline`` and ``on_missed`` to due times.

    ``recovered`` are times whose run was interrupted or lost: they count as missed however
    recent they are.
    """
    on_time: list[datetime] = []
    late: list[datetime] = []
    out: list[Disposition] = []
    # UTC first: two wall times that differ only in `fold` (the repeated fall-back hour) compare
    # equal in their own zone and would merge in a set.
    again = {t.astimezone(UTC) for t in recovered or ()}
    for t in sorted({t.astimezone(UTC) for t in due} | again):
        age_s = (now - t).total_seconds()
        if age_s <= ON_TIME_S and t not in again:
            on_time.append(t)
        elif task.missed_deadline_s is not None and age_s > task.missed_deadline_s:
            out.append(Disposition(t, "missed", "catchup", reason="older than missed_deadline"))
        else:
            late.append(t)

    if task.on_missed == "skip":
        out += [Disposition(t, "missed", "catchup", reason="on_missed=skip") for t in late]
    elif task.on_missed == "latest":
        # The newest time runs; older late times fold into it (or into an on-time run).
        keep = None if on_time or not late else late[-1]
        for t in late:
            if t == keep:
                out.append(Disposition(t, "run", "catchup"))
            else:
                out.append(Disposition(t, "coalesced", "catchup"))
    else:
        cut = max(0, len(late) - MAX_CATCHUP_RUNS)
        over = "over 100 catch-up runs"
        out += [Disposition(t, "missed", "catchup", reason=over) for t in late[:cut]]
        out += [Disposition(t, "run", "catchup", sequential=True) for t in late[cut:]]
    # An on-time run right after an on_missed=all catch-up queues behind it, not beside it.
    behind_catchup = task.on_missed == "all" and bool(late)
    out += [Disposition(t, "run", "schedule", sequential=behind_catchup) for t in on_time]
    out.sort(key=lambda d: d.scheduled_for)
    return out


def jitter_s(task: TaskSpec) -> float:
    """Stable per-task delay in [0, jitter): the same name always gets the same offset."""
    if task.jitter_s <= 0:
        return 0.0
    digest = hashlib.sha256(task.name.encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return fraction * task.jitter_s


def retry_delay_s(task: TaskSpec, attempt: int) -> float:
    """Delay before attempt ``attempt + 1``: retry_delay x 2^(attempt-1), capped at 1 h."""
    factor = 1 << max(attempt - 1, 0)
    return min(task.retry_delay_s * factor, MAX_RETRY_DELAY_S)


def next_retry(
    task: TaskSpec, status: str, exit_code: int | None, attempt: int, ended_at: datetime
) -> datetime | None:
    """When to retry a run that ended with ``status``, or None for no retry.

    ``attempt`` counts from 1. Exit 75 (temporary failure) is retried up to 3 times even with
    ``retries = 0``; the user's ``retries`` still applies when it allows more.
    """
    if status not in ("failed", "timeout"):
        return None
    allowed = task.retries
    if exit_code == TEMPFAIL_EXIT:
        allowed = max(allowed, MAX_TEMPFAIL_RETRIES)
    if attempt > allowed:
        return None
    return ended_at + timedelta(seconds=retry_delay_s(task, attempt))
