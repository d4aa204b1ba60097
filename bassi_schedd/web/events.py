"""Turning successive reads of the history into run.start / run.end events.

Only indexed reads each poll: the rows queued or running, and the rows added since the last
poll. A run that starts and ends between two polls still gives both events (it left the active
set, or arrived already finished), so a listener never misses an end.
"""

from __future__ import annotations

from typing import Any

from bassi_schedd.core.records import RunRow, to_db
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.store.readview import ReadView

_ACTIVE = (RunStatus.RUNNING, RunStatus.QUEUED)


def start_payload(r: RunRow) -> dict[str, Any]:
    """What run.start carries (the fields of the log line of that name)."""
    return {
        "task": r.task,
        "run_id": r.run_id,
        "trigger": r.trigger,
        "scheduled_for": to_db(r.scheduled_for),
        "started_at": to_db(r.started_at),
    }


def end_payload(r: RunRow) -> dict[str, Any]:
    """What run.end carries: run.start's fields plus the outcome."""
    return {
        **start_payload(r),
        "status": str(r.status),
        "exit_code": r.exit_code,
        "duration_s": r.duration_s,
        "cost_usd": r.cost_usd,
    }


class RunWatcher:
    """Remembers what the last poll saw; ``poll`` returns the events since."""

    def __init__(self) -> None:
        self._seq: int | None = None  # None: the first poll only takes a baseline
        self._active: set[str] = set()
        self._started: set[str] = set()

    def poll(self, db: ReadView) -> list[tuple[str, dict[str, Any]]]:
        """The events between the previous poll and this one, oldest first."""
        if self._seq is None:
            self._seq = db.max_seq()  # before the active rows: a row added between is seen
            active = {r.run_id: r for r in db.active_runs()}
            self._active = set(active)
            self._started = {k for k, r in active.items() if r.status == RunStatus.RUNNING}
            return []
        active = {r.run_id: r for r in db.active_runs()}
        out: list[tuple[str, dict[str, Any]]] = []
        ended = {r.run_id: r for r in db.runs_by_id(sorted(self._active - set(active)))}
        for r in db.runs_after(self._seq):
            self._seq = max(self._seq, r.seq)
            if r.status in _ACTIVE:
                active.setdefault(r.run_id, r)  # added after the read of the active rows
            elif r.run_id not in active:
                ended[r.run_id] = r  # added and finished between two polls
        for r in sorted(ended.values(), key=lambda r: r.seq):
            if r.started_at is None:
                continue  # never ran (skipped, missed, coalesced): no run events
            if r.run_id not in self._started:
                out.append(("run.start", start_payload(r)))
            out.append(("run.end", end_payload(r)))
            self._started.discard(r.run_id)
        for run_id, r in sorted(active.items(), key=lambda kv: kv[1].seq):
            if r.status == RunStatus.RUNNING and run_id not in self._started:
                out.append(("run.start", start_payload(r)))
                self._started.add(run_id)
        self._active = set(active)
        return out
