"""The tick planner: what one tick records, as a pure function of what the daemon knows.

Inputs are values (task specs, stored summaries, each task's due times and recovered times,
the trigger requests, ``now``); the answer is the rows to insert and the marks to move. The
scheduler applies the answer in one transaction; nothing here reads a clock, a file or the DB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bassi_schedd.core import policy
from bassi_schedd.core.records import NewRun, TaskSummary, new_run_id
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import TaskSpec


@dataclass(frozen=True)
class TaskPlan:
    """One task's share of a tick."""

    rows: list[NewRun] = field(default_factory=list)
    advance: bool = False  # move last_checked to now: these times are on record
    done: bool = False  # a one-shot (`at`) task whose time came
    paused: bool | None = None  # the paused flag to store, None: unchanged


@dataclass(frozen=True)
class TickPlan:
    """Everything a tick writes: rows (scheduled, catch-up, manual) and per-task marks."""

    rows: list[NewRun]
    advance: list[str]
    done: list[str]
    paused: dict[str, bool]
    refused: list[tuple[str, datetime]]  # trigger requests for tasks that are not loaded


def needs_due_times(spec: TaskSpec, state: TaskSummary | None, first_tick: bool) -> bool:
    """Whether planning this task looks at its due times at all (the caller computes them)."""
    if state is not None and state.done:
        return False
    if not spec.enabled:
        return False
    return not (state is not None and state.paused and first_tick)


def plan_task(
    spec: TaskSpec,
    state: TaskSummary | None,
    due: Sequence[datetime],
    recovered: Sequence[datetime],
    now: datetime,
    first_tick: bool,
) -> TaskPlan | None:
    """One task's rows and marks, or None when the tick has nothing to write for it.

    ``first_tick``: the daemon has not ticked since it started, so a task resumed meanwhile
    was resumed at an unknown time and owes nothing before now.
    """
    if state is not None and state.done:
        return None
    was_paused = state is not None and state.paused
    if not spec.enabled:
        # Times while paused are never owed: keep last_checked moving.
        return TaskPlan(advance=True, paused=None if was_paused else True)
    flip = False if was_paused else None
    if was_paused and first_tick:
        return TaskPlan(advance=True, paused=flip)
    if not due and not recovered:
        return TaskPlan(paused=flip) if flip is not None else None
    rows = dispositions(spec, list(due), list(recovered), now)
    return TaskPlan(rows, True, spec.schedule.kind == "at" and bool(due), flip)


def dispositions(
    spec: TaskSpec, due: list[datetime], recovered: list[datetime], now: datetime
) -> list[NewRun]:
    """The rows for a task's due and recovered times after the missed-run policy."""
    jitter = timedelta(seconds=policy.jitter_s(spec))
    rows = []
    for d in policy.plan(spec, due, now, recovered=recovered):
        status = RunStatus.QUEUED if d.action == "run" else RunStatus(d.action)
        not_before = max(d.scheduled_for + jitter, now) if d.action == "run" else None
        rows.append(
            NewRun(
                run_id=new_run_id(d.scheduled_for),
                task=spec.name,
                trigger=d.trigger,
                scheduled_for=d.scheduled_for,
                status=status,
                not_before=not_before if jitter else None,
                sequential=d.sequential,
                detail=d.reason,
            )
        )
    return rows


def plan_tick(
    plans: Mapping[str, TaskPlan | None],
    requests: Sequence[tuple[str, datetime]],
    loaded: Mapping[str, TaskSpec],
) -> TickPlan:
    """Join the tasks' plans and the trigger requests into what the tick writes."""
    rows: list[NewRun] = []
    advance: list[str] = []
    done: list[str] = []
    paused: dict[str, bool] = {}
    for name, p in plans.items():
        if p is None:
            continue
        rows += p.rows
        if p.advance:
            advance.append(name)
        if p.done:
            done.append(name)
        if p.paused is not None:
            paused[name] = p.paused
    refused = []
    for task, at in requests:
        if task in loaded:
            rows.append(NewRun(new_run_id(at), task, "manual", at, RunStatus.QUEUED, not_before=at))
        else:
            refused.append((task, at))
    return TickPlan(rows, advance, done, paused, refused)
