"""The tick planner and the admission rule as pure functions: values in, decisions out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bassi_schedd.core import planner
from bassi_schedd.core.admission import Admission, Candidate, admit
from bassi_schedd.core.records import TaskSummary
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.schedule import parse_at, parse_schedule
from bassi_schedd.core.spec import TaskSpec

NOW = datetime(2026, 3, 2, 9, 0, 30, tzinfo=UTC)
NINE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def spec(**kw: object) -> TaskSpec:
    base = TaskSpec(
        name="t",
        path=Path("/x/t.toml"),
        schedule=parse_schedule("0 9 * * *"),
        timezone="UTC",
        command=("/bin/true",),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def summary(**kw: object) -> TaskSummary:
    base = TaskSummary("t", None, None, done=False, last_ok=None)
    return replace(base, **kw)  # type: ignore[arg-type]


# -- planning -------------------------------------------------------------------------------


def test_a_due_time_becomes_a_queued_row_and_moves_the_mark() -> None:
    p = planner.plan_task(spec(), None, [NINE], [], NOW, first_tick=False)
    assert p is not None
    assert [(r.status, r.trigger, r.scheduled_for) for r in p.rows] == [
        (RunStatus.QUEUED, "schedule", NINE)
    ]
    assert p.advance and not p.done and p.paused is None


def test_nothing_due_writes_nothing() -> None:
    assert planner.plan_task(spec(), summary(), [], [], NOW, first_tick=False) is None


def test_a_paused_task_keeps_its_mark_moving_and_stores_the_flag_once() -> None:
    first = planner.plan_task(spec(enabled=False), summary(), [], [], NOW, first_tick=False)
    assert first == planner.TaskPlan(advance=True, paused=True)
    again = planner.plan_task(
        spec(enabled=False), summary(paused=True), [], [], NOW, first_tick=False
    )
    assert again == planner.TaskPlan(advance=True, paused=None)


def test_resumed_while_no_daemon_ran_owes_nothing_before_now() -> None:
    p = planner.plan_task(spec(), summary(paused=True), [NINE], [], NOW, first_tick=True)
    assert p == planner.TaskPlan(advance=True, paused=False)
    assert not planner.needs_due_times(spec(), summary(paused=True), first_tick=True)


def test_resumed_while_running_plans_its_due_times_and_clears_the_flag() -> None:
    p = planner.plan_task(spec(), summary(paused=True), [NINE], [], NOW, first_tick=False)
    assert p is not None and len(p.rows) == 1 and p.paused is False


def test_a_one_shot_task_is_done_once_its_time_came() -> None:
    at = spec(schedule=parse_at("2026-03-02T09:00"))
    p = planner.plan_task(at, None, [NINE], [], NOW, first_tick=False)
    assert p is not None and p.done
    assert planner.plan_task(at, summary(done=True), [], [], NOW, first_tick=False) is None
    assert not planner.needs_due_times(at, summary(done=True), first_tick=False)


def test_recovered_times_count_as_missed_under_on_missed() -> None:
    late = NOW - timedelta(hours=2)
    p = planner.plan_task(spec(on_missed="skip"), None, [], [late], NOW, first_tick=False)
    assert p is not None
    assert [(r.status, r.detail) for r in p.rows] == [(RunStatus.MISSED, "on_missed=skip")]


def test_jitter_sets_a_not_before_time_on_queued_rows() -> None:
    p = planner.plan_task(spec(jitter_s=600.0), None, [NINE], [], NOW, first_tick=False)
    assert p is not None
    nb = p.rows[0].not_before
    assert nb is not None and NOW <= nb < NINE + timedelta(seconds=600)


def test_plan_tick_joins_plans_and_turns_requests_into_manual_rows() -> None:
    p = planner.plan_task(spec(), None, [NINE], [], NOW, first_tick=False)
    tick = planner.plan_tick({"t": p, "idle": None}, [("t", NOW), ("gone", NOW)], {"t": spec()})
    assert [r.trigger for r in tick.rows] == ["schedule", "manual"]
    assert tick.advance == ["t"] and tick.done == [] and tick.paused == {}
    assert tick.refused == [("gone", NOW)]


# -- admission ------------------------------------------------------------------------------

SCHED = Candidate("t", "schedule", sequential=False)
GONE = Admission("skip", False, RunStatus.MISSED, "task file removed or invalid")
PAUSED = Admission("skip", False, RunStatus.MISSED, "task paused")
BUSY = Admission("skip", False, RunStatus.SKIPPED_OVERLAP, "previous run still going")
WAITING = Admission("skip", False, RunStatus.SKIPPED_OVERLAP, "a run is already waiting")


@pytest.mark.parametrize(
    ("task", "row", "busy", "waiting", "running", "expected"),
    [
        (spec(), SCHED, 0, False, 0, Admission("start")),
        (None, SCHED, 0, False, 0, GONE),
        (spec(enabled=False), SCHED, 0, False, 0, PAUSED),
        (spec(enabled=False), Candidate("t", "manual", False), 0, False, 0, Admission("start")),
        (spec(), SCHED, 1, False, 1, BUSY),
        (spec(overlap="allow"), SCHED, 1, False, 1, Admission("start")),
        (spec(overlap="allow"), Candidate("t", "catchup", True), 1, False, 1, Admission("wait")),
        (spec(overlap="queue"), SCHED, 1, False, 1, Admission("wait")),
        (spec(overlap="queue"), SCHED, 1, True, 1, WAITING),
        (spec(), Candidate("t", "retry", False), 1, False, 1, Admission("wait")),
        (spec(overlap="replace"), SCHED, 1, False, 4, Admission("start", replace=True)),
        (spec(overlap="replace"), SCHED, 1, False, 5, Admission("full", replace=True)),
        (spec(), SCHED, 0, False, 4, Admission("full")),
    ],
)  # fmt: skip
def test_admission(
    task: TaskSpec | None,
    row: Candidate,
    busy: int,
    waiting: bool,
    running: int,
    expected: Admission,
) -> None:
    assert admit(row, task, busy, waiting, running, max_concurrent=4) == expected
