"""The scheduler in process, with real runs: a failure in one task or run is logged and set aside.

Each test provokes a real exception inside the daemon's own code path (planning, starting,
finishing) for one task, and checks that it becomes one ``daemon.error`` line with its traceback,
that the other task is not held up, and that the failed one goes through once the fault is gone,
its scheduled time neither lost nor run twice. The last test is two daemons sharing one state DB:
a row that one of them started cannot be started by the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs
from support import wait_for

from bassi_schedd.config.loader import TaskLoader
from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config
from bassi_schedd.core import policy
from bassi_schedd.daemon import launch, runwatch, scheduler
from bassi_schedd.store.state import StateDB

T0 = datetime(2026, 11, 1, 5, 29, 57, tzinfo=UTC)
DUE = T0 + timedelta(seconds=4)  # 05:30:01: 05:30 is due
TASK = 'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'


def new_scheduler(home: Home) -> scheduler.Scheduler:
    s = scheduler.Scheduler(home, StateDB.open(home.state_db), load_config(home))
    s.set_tasks(dict(TaskLoader(home, s.config).load().tasks), T0)
    return s


@pytest.fixture
def make(home: Home) -> Iterator[Callable[[], scheduler.Scheduler]]:
    made: list[scheduler.Scheduler] = []

    def _make() -> scheduler.Scheduler:
        made.append(new_scheduler(home))
        return made[-1]

    yield _make
    for s in made:
        for a in s.active:
            if a.popen is not None:
                a.popen.kill()
                a.popen.wait()
        s.db.close()


@pytest.fixture
def two_tasks(write_task: Callable[[str, str], Path]) -> None:
    write_task("good", TASK)
    write_task("bad", TASK)


def failing_for(task: str, real: Callable[..., Any], name_of: Callable[..., str]) -> Any:
    """``real``, but raising RuntimeError when called for ``task``."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if name_of(*args, **kwargs) == task:
            raise RuntimeError(f"injected fault for {task}")
        return real(*args, **kwargs)

    return wrapper


def errors(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "daemon.error"]


def statuses(s: scheduler.Scheduler) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for r in reversed(s.db.recent_runs(None, 1000)):
        out.setdefault(r.task, []).append(r.status)
    return out


def settle(s: scheduler.Scheduler) -> None:
    """Service until every run ended and was recorded."""
    wait_for(lambda: s.service(DUE) or not s.active, 20)


def assert_one_error(logs: list[dict[str, Any]], stage: str) -> None:
    [err] = errors(logs)
    assert (err["task"], err["stage"]) == ("bad", stage)
    assert err["error"] == "RuntimeError: injected fault for bad"
    assert err["traceback"].startswith("Traceback (most recent call last)")
    assert "RuntimeError: injected fault for bad" in err["traceback"]


def test_a_task_whose_planning_fails_is_skipped_then_planned_again(
    two_tasks: None, make: Callable[[], scheduler.Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make()
    s.tick(T0)
    monkeypatch.setattr(policy, "plan", failing_for("bad", policy.plan, lambda t, *a, **k: t.name))
    with capture_logs() as logs:
        s.tick(DUE)
    assert_one_error(logs, "plan")
    settle(s)
    assert statuses(s) == {"good": ["success"]}

    monkeypatch.undo()
    s.tick(DUE + timedelta(seconds=1))  # its 05:30 was kept owed, not lost
    settle(s)
    assert statuses(s) == {"good": ["success"], "bad": ["success"]}
    assert [r.scheduled_for for r in s.db.recent_runs("bad")] == [
        T0.replace(second=0) + timedelta(minutes=1)
    ]


def test_a_run_whose_start_fails_stays_queued_and_starts_later(
    two_tasks: None, make: Callable[[], scheduler.Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make()
    s.tick(T0)
    real = launch.prepare_run_dir
    monkeypatch.setattr(
        launch, "prepare_run_dir", failing_for("bad", real, lambda home, spec, *a: spec.name)
    )
    with capture_logs() as logs:
        s.tick(DUE)
        s.service(DUE)  # tried again at the next wake-up: logged once, not per wake-up
    assert_one_error(logs, "start")
    # /bin/true may already have ended (and been reaped by service) on a fast machine.
    assert {a.task for a in s.active} <= {"good"}
    now = statuses(s)
    assert now["bad"] == ["queued"] and now["good"] in (["running"], ["success"])

    monkeypatch.undo()
    settle(s)
    assert statuses(s) == {"good": ["success"], "bad": ["success"]}


def test_a_run_whose_end_cannot_be_recorded_is_recorded_once_later(
    two_tasks: None, make: Callable[[], scheduler.Scheduler], monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make()
    s.tick(T0)
    real = runwatch.read_result
    monkeypatch.setattr(
        runwatch, "read_result", failing_for("bad", real, lambda run_dir: run_dir.parent.name)
    )
    with capture_logs() as logs:
        s.tick(DUE)
        bad = next(a for a in s.active if a.task == "bad")
        assert bad.popen is not None
        bad.popen.wait()
        wait_for(lambda: s.service(DUE) or [a.task for a in s.active] == ["bad"], 20)
        s.service(DUE)
    assert_one_error(logs, "finish")
    assert statuses(s) == {"good": ["success"], "bad": ["running"]}

    monkeypatch.undo()
    with capture_logs() as logs:
        settle(s)
    assert statuses(s) == {"good": ["success"], "bad": ["success"]}
    assert [e["task"] for e in logs if e["event"] == "run.end"] == ["bad"]


def test_a_run_started_by_another_daemon_is_not_started_again(
    write_task: Callable[[str, str], Path],
    make: Callable[[], scheduler.Scheduler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_task("only", TASK)
    first, second = make(), make()  # two daemons on one state DB: the lock failed somehow
    monkeypatch.setattr(first, "dispatch", lambda now: None)
    first.tick(T0)
    first.tick(DUE)
    [row] = first.db.runs_with_status("queued")  # what the first daemon is about to start
    second.dispatch(DUE)
    assert [a.run_id for a in second.active] == [row.run_id]

    with capture_logs() as logs:
        first.start(row, first.tasks["only"], DUE)
    assert first.active == []
    assert [e["event"] for e in logs] == ["run.not_started"]
    settle(second)
    assert [(r.run_id, r.status) for r in second.db.recent_runs("only")] == [
        (row.run_id, "success")
    ]
