"""``history``: the real CLI over a real state DB (written through StateDB) and the real daemon."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from support import CliResult, Start, wait_for

from bassi_schedd.config.paths import Home
from bassi_schedd.store.state import NewRun, StateDB

Cli = Callable[..., CliResult]

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
PUBLIC_FIELDS = {
    "result_sha256",
    "run_id",
    "task",
    "trigger",
    "scheduled_for",
    "started_at",
    "ended_at",
    "duration_s",
    "status",
    "exit_code",
    "attempt",
    "cost_usd",
    "input_tokens",
    "output_tokens",
    "run_dir",
    "detail",
}


def add_run(
    db: StateDB,
    run_id: str,
    task: str,
    status: str,
    at: datetime,
    duration_s: float | None = None,
    exit_code: int | None = None,
    trigger: str = "schedule",
    attempt: int = 1,
    cost_usd: float | None = None,
    tokens: tuple[int, int] | None = None,
) -> None:
    """One history row as the daemon writes it: queued, started, finished (or never started)."""
    with db.tx() as tx:
        tx.first_seen(task, at)
        sched = at if trigger != "retry" else at - timedelta(minutes=1)
        tx.insert_runs([NewRun(run_id, task, trigger, sched, "queued", attempt=attempt)], at)
        if duration_s is None:
            tx.set_status(run_id, status)
            return
        tx.mark_started(run_id, at, f"/runs/{task}/{run_id}", None, None)
    run = db.get_run(run_id)
    assert run is not None
    with db.tx() as tx:
        tx.record_end(
            run,
            status,
            exit_code,
            at + timedelta(seconds=duration_s),
            cost_usd=cost_usd,
            input_tokens=tokens[0] if tokens else None,
            output_tokens=tokens[1] if tokens else None,
        )


@pytest.fixture
def history(home: Home, write_task) -> None:
    """weekly: 2 success, 1 failed, 1 timeout, 1 missed (oldest first); other: 1 success."""
    write_task("weekly", 'schedule = "@daily"\ncommand = ["/bin/true"]\n')
    db = StateDB.open(home.state_db)
    m = timedelta(minutes=10)
    add_run(db, "r1", "weekly", "success", T0, 10.0, 0, cost_usd=0.0123, tokens=(1200, 340))
    add_run(db, "r2", "weekly", "failed", T0 + m, 20.0, 1)
    add_run(db, "r3", "weekly", "success", T0 + 2 * m, 65.0, 0, trigger="retry", attempt=2)
    add_run(db, "r4", "weekly", "timeout", T0 + 3 * m, 25.0, -15)
    add_run(db, "r5", "weekly", "missed", T0 + 4 * m, trigger="catchup")
    add_run(db, "o1", "other", "success", T0 + 5 * m, 1.5, 0, trigger="manual")
    db.close()


def test_no_state_yet(home: Home, cli: Cli, write_task) -> None:
    r = cli("history")
    assert (r.returncode, r.stdout) == (0, "no runs yet\n")
    r = cli("history", "--json")
    assert json.loads(r.stdout) == {"runs": [], "tasks": {}}
    write_task("weekly", 'schedule = "@daily"\ncommand = ["/bin/true"]\n')
    r = cli("history", "weekly")
    assert (r.returncode, r.stdout) == (0, "no runs of weekly yet\n")
    assert not home.state_db.exists()


def test_unknown_task_and_bad_arguments(home: Home, cli: Cli, history: None) -> None:
    r = cli("history", "nope")
    assert r.returncode == 1
    assert r.stderr == "bassi-schedd: no task named 'nope' (no file and no history)\n"
    r = cli("history", "-n", "0")
    assert r.returncode == 2 and "-n must be between 1 and" in r.stderr
    r = cli("history", "Bad/Name")
    assert r.returncode == 1 and "is not a task name" in r.stderr


def test_table_newest_first_with_figures(home: Home, cli: Cli, history: None) -> None:
    r = cli("history", env={"TZ": "Europe/Berlin"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == [
        "STARTED",
        "TASK",
        "STATUS",
        "TRIGGER",
        "SCHEDULED",
        "DURATION",
        "EXIT",
        "COST",
        "TOKENS",
        "IN/OUT",
        "RUN",
        "ID",
    ]
    ids = [line.split()[-1] for line in lines[1:7]]
    assert ids == ["o1", "r5", "r4", "r3", "r2", "r1"]
    by_id = {line.split()[-1]: line for line in lines[1:7]}
    # Local zone: 08:00 UTC is 09:00 in Berlin in November.
    assert by_id["r1"].split()[:4] == ["2026-11-01", "09:00:00", "weekly", "success"]
    assert "$0.0123" in by_id["r1"] and "1200/340" in by_id["r1"] and " 10s " in by_id["r1"]
    assert by_id["r3"].split()[4:6] == ["retry", "#2"] and "1m05s" in by_id["r3"]
    assert " -15 " in by_id["r4"] and "timeout" in by_id["r4"]
    assert by_id["r5"].split()[:4] == ["-", "weekly", "missed", "catchup"]
    assert "(times in the local zone, CET)" in r.stdout
    # 2 successes out of success+failed+timeout = 4; mean over the 4 runs that ran: 30s.
    assert "weekly: 5 shown, 50% success (2/4), mean duration 30s" in lines
    assert "other: 1 shown, 100% success (1/1), mean duration 1.5s" in lines


def test_json_document(home: Home, cli: Cli, history: None) -> None:
    r = cli("history", "--json")
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert set(doc) == {"runs", "tasks"}
    assert [x["run_id"] for x in doc["runs"]] == ["o1", "r5", "r4", "r3", "r2", "r1"]
    assert all(set(x) == PUBLIC_FIELDS for x in doc["runs"])
    r1 = doc["runs"][-1]
    assert r1 == {
        "run_id": "r1",
        "task": "weekly",
        "trigger": "schedule",
        "scheduled_for": "2026-11-01T08:00:00+00:00",
        "started_at": "2026-11-01T08:00:00+00:00",
        "ended_at": "2026-11-01T08:00:10+00:00",
        "duration_s": 10.0,
        "status": "success",
        "exit_code": 0,
        "attempt": 1,
        "cost_usd": 0.0123,
        "input_tokens": 1200,
        "output_tokens": 340,
        "run_dir": "/runs/weekly/r1",
        "detail": None,
        "result_sha256": None,
    }
    assert doc["tasks"] == {
        "other": {
            "runs": 1,
            "success": 1,
            "failed": 0,
            "timeout": 0,
            "success_rate": 1.0,
            "mean_duration_s": 1.5,
        },
        "weekly": {
            "runs": 5,
            "success": 2,
            "failed": 1,
            "timeout": 1,
            "success_rate": 0.5,
            "mean_duration_s": 30.0,
        },
    }


def test_limit_and_task_filter_and_figures_follow_the_window(
    home: Home, cli: Cli, history: None
) -> None:
    doc = json.loads(cli("history", "weekly", "-n", "2", "--json").stdout)
    assert [x["run_id"] for x in doc["runs"]] == ["r5", "r4"]
    assert doc["tasks"]["weekly"]["success_rate"] == 0.0
    assert doc["tasks"]["weekly"]["mean_duration_s"] == 25.0
    doc = json.loads(cli("history", "weekly", "-n", "1", "--json").stdout)
    assert doc["tasks"]["weekly"]["success_rate"] is None  # only a missed time: nothing to rate
    r = cli("history", "weekly", "-n", "1")
    assert "weekly: 1 shown, no finished runs, mean duration -" in r.stdout


def test_history_of_a_removed_task_is_still_shown(home: Home, cli: Cli, history: None) -> None:
    (home.tasks_dir / "weekly.toml").unlink()
    r = cli("history", "weekly", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["runs"]) == 5


def test_runs_of_the_real_daemon(home: Home, cli: Cli, daemon: Start, write_task) -> None:
    write_task("ok", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n')
    write_task("bad", 'schedule = "0 0 1 1 *"\ntimezone = "UTC"\ncommand = ["/bin/false"]\n')
    d = daemon()
    d.wait_ready()
    for name in ("ok", "bad"):
        assert cli("trigger", name).returncode == 0

    def finished() -> list[dict[str, object]]:
        runs: list[dict[str, object]] = json.loads(cli("history", "--json").stdout)["runs"]
        return runs if [x["status"] for x in runs] in (["failed", "success"],) else []

    runs = wait_for(finished, 10)
    assert [x["task"] for x in runs] == ["bad", "ok"]  # type: ignore[index]
    assert [x["exit_code"] for x in runs] == [1, 0]  # type: ignore[index]
    assert all(x["trigger"] == "manual" for x in runs)  # type: ignore[union-attr]
    r = cli("history")
    assert "bad: 1 shown, 0% success (0/1)" in r.stdout
    assert "ok: 1 shown, 100% success (1/1)" in r.stdout
    assert d.stop() == 0
