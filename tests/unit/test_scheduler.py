"""One tick in process: due times through the memo, run ids, long outages (nothing is started)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from bassi_schedd.config.loader import TaskLoader
from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config
from bassi_schedd.core import planner
from bassi_schedd.core import schedule as schedule_mod
from bassi_schedd.daemon import scheduler
from bassi_schedd.store.state import RunRow, StateDB

T0 = datetime(2026, 11, 1, 5, 29, 57, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def sched(home: Home, monkeypatch: pytest.MonkeyPatch) -> Iterator[scheduler.Scheduler]:
    db = StateDB.open(home.state_db)
    s = scheduler.Scheduler(home, db, load_config(home))
    monkeypatch.setattr(s, "dispatch", lambda now: None)  # record dispositions, start nothing
    yield s
    db.close()


def load(home: Home, s: scheduler.Scheduler, now: datetime) -> None:
    s.set_tasks(dict(TaskLoader(home, s.config).load().tasks), now)


def rows(s: scheduler.Scheduler) -> list[RunRow]:
    return s.db.recent_runs(None, 100_000)


@pytest.fixture
def iterations(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every cron iteration the schedule engine starts (what the memo exists to avoid)."""
    calls: list[object] = []
    real = schedule_mod._instants

    def counting(*args: object) -> object:
        calls.append(args[0])
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(schedule_mod, "_instants", counting)
    return calls


def test_ticks_with_nothing_due_iterate_no_cron(
    home: Home, write_task: Callable[[str, str], Path], sched: scheduler.Scheduler, iterations
) -> None:
    write_task("weekly", 'schedule = "0 9 * * MON"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    write_task("minutely", 'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    load(home, sched, T0)
    ticks = 240
    for k in range(ticks):
        sched.tick(T0 + k * MINUTE + timedelta(seconds=4))
    weekly = [c for c in iterations if c is sched.tasks["weekly"].schedule]
    minutely = [c for c in iterations if c is sched.tasks["minutely"].schedule]
    assert len(weekly) == 1  # filled once, then a comparison per tick
    # The minutely task is due every tick, yet is answered from the remembered look-ahead.
    assert len(minutely) <= ticks // 8 + 1
    got = [r.scheduled_for for r in rows(sched) if r.task == "minutely"]
    assert sorted(got) == [T0.replace(second=0) + (k + 1) * MINUTE for k in range(ticks)]  # type: ignore[operator]


def test_a_changed_schedule_is_noticed_and_a_removed_task_forgotten(
    home: Home, write_task: Callable[[str, str], Path], sched: scheduler.Scheduler
) -> None:
    path = write_task("t", 'schedule = "0 9 * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    load(home, sched, T0)
    sched.tick(T0 + timedelta(seconds=1))
    assert len(sched.due_cache) == 1
    path.write_text('schedule = "30 5 * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    load(home, sched, T0 + MINUTE)
    sched.tick(T0 + MINUTE)  # 05:30:57: the new 05:30 is due
    assert [r.scheduled_for for r in rows(sched)] == [datetime(2026, 11, 1, 5, 30, tzinfo=UTC)]
    path.unlink()
    load(home, sched, T0 + 2 * MINUTE)
    assert len(sched.due_cache) == 0


def test_colliding_run_ids_drop_no_scheduled_time(
    home: Home,
    write_task: Callable[[str, str], Path],
    sched: scheduler.Scheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = ["twin-a", "twin-b", "twin-c"]
    for name in names:
        write_task(name, 'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    # What a birthday collision of the random part does (about 1 tick in 135 with 500 minutely
    # tasks: the load soak lost a scheduled time this way before ids were re-drawn), made certain.
    monkeypatch.setattr(planner, "new_run_id", lambda at: f"{at:%Y%m%dT%H%M%SZ}-abcdef")
    load(home, sched, T0)
    sched.tick(T0)
    sched.tick(T0 + timedelta(seconds=4))  # 05:30:01: 05:30 is due for each task
    got = rows(sched)
    assert sorted(r.task for r in got) == names
    assert len({r.run_id for r in got}) == 3


def test_a_very_long_outage_records_the_last_hour_and_logs_the_rest(
    home: Home, write_task: Callable[[str, str], Path], sched: scheduler.Scheduler
) -> None:
    write_task(
        "busy",
        'schedule = "* * * * *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\non_missed = "skip"\n',
    )
    load(home, sched, T0)
    sched.tick(T0)
    back = T0 + timedelta(days=3)  # 4,320 times owed; the last day alone holds 1,440
    with capture_logs() as logs:
        sched.tick(back)
    got = sorted(r.scheduled_for for r in rows(sched) if r.scheduled_for is not None)
    assert len(got) == 60 and got[0] > back - timedelta(hours=1) and got[-1] <= back
    # Each recorded time is missed (on_missed = skip) but the last, which is on time.
    status = {r.scheduled_for: r.status for r in rows(sched)}
    assert status.pop(got[-1]) == "queued"
    assert set(status.values()) == {"missed"}
    notes = [e for e in logs if e.get("reason") == "outage too long to record each time"]
    assert len(notes) == 1 and notes[0]["task"] == "busy"
    assert notes[0]["first_after"] == T0.isoformat()
