"""Admission: may a queued run start now? A pure rule over values (SPEC 4 overlap, 5 slots).

The scheduler asks once per queued row, in FIFO order, and applies the answer: start it, leave
it queued (wait), record it as not run (skip, with the status and reason), stop the task's
running runs first (replace), or stop looking because every slot is taken (full).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import TaskSpec

Verdict = Literal["start", "wait", "skip", "full"]


@dataclass(frozen=True)
class Admission:
    """The answer for one queued row."""

    verdict: Verdict
    replace: bool = False  # stop the task's running runs (as `replaced`) before starting
    status: RunStatus | None = None  # for skip: what the row is recorded as
    reason: str | None = None


@dataclass(frozen=True)
class Candidate:
    """What admission looks at in a queued row."""

    task: str
    trigger: str
    sequential: bool


def admit(
    row: Candidate,
    spec: TaskSpec | None,
    busy: int,
    task_waiting: bool,
    running: int,
    max_concurrent: int,
) -> Admission:
    """Decide one queued row.

    ``busy``: the task's runs holding a slot; ``task_waiting``: an earlier row of the task was
    told to wait in this pass; ``running``: runs holding a slot over all tasks.
    """
    if spec is None:
        return Admission("skip", status=RunStatus.MISSED, reason="task file removed or invalid")
    if not spec.enabled and row.trigger != "manual":
        # A retry or catch-up queued before `pause` is not owed; `trigger` still works.
        return Admission("skip", status=RunStatus.MISSED, reason="task paused")
    replace = False
    if busy and not (spec.overlap == "allow" and not row.sequential):
        if row.sequential or row.trigger == "retry" or spec.overlap == "queue":
            if spec.overlap == "queue" and not row.sequential and task_waiting:
                return Admission(
                    "skip", status=RunStatus.SKIPPED_OVERLAP, reason="a run is already waiting"
                )
            return Admission("wait")
        if spec.overlap == "skip":
            return Admission(
                "skip", status=RunStatus.SKIPPED_OVERLAP, reason="previous run still going"
            )
        replace = True  # a run being replaced gives its slot up at once
        running -= busy
    if running >= max_concurrent:
        return Admission("full", replace=replace)
    return Admission("start", replace=replace)
