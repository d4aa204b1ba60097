"""The status of a run: the words the state DB stores and history, logs and notify show."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Every status a history row can have (SPEC 5); the value is the text stored and shown."""

    QUEUED = "queued"  # waiting for a slot, its not-before time or the run before it
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    REPLACED = "replaced"  # stopped for a newer run of its task (overlap = "replace")
    INTERRUPTED = "interrupted"  # stopped because the daemon stopped
    LOST = "lost"  # a daemon died while it ran, and its process did not outlive it
    SKIPPED_OVERLAP = "skipped_overlap"
    MISSED = "missed"
    COALESCED = "coalesced"
    # SPEC 10: the gate (`when`) said there is nothing to do; no agent or command started
    SKIPPED_CONDITION = "skipped_condition"
    BUDGET_EXCEEDED = "budget_exceeded"  # a daily/monthly cap was spent; nothing started
    CANCELLED = "cancelled"  # stopped by `bassi-schedd stop`


# Runs that started and ended, whatever the outcome (what {last_run_*} describes).
FINISHED = (
    RunStatus.SUCCESS,
    RunStatus.FAILED,
    RunStatus.TIMEOUT,
    RunStatus.REPLACED,
    RunStatus.INTERRUPTED,
    RunStatus.LOST,
    RunStatus.CANCELLED,
)
