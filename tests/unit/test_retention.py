"""prune_runs: which run folders go, which stay; history rows are never touched."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bassi_schedd.config.paths import Home
from bassi_schedd.core.records import new_run_id
from bassi_schedd.daemon.retention import prune_runs, run_id_time
from bassi_schedd.store.state import StateDB

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def make_runs(home: Home, task: str, ages_days: list[float]) -> list[str]:
    """One folder per age (with a file in it), ids as the daemon makes them; oldest last."""
    ids = []
    for age in ages_days:
        run_id = new_run_id(NOW - timedelta(days=age))
        d = home.run_dir(task, run_id)
        d.mkdir(parents=True)
        (d / "output.log").write_text("x")
        ids.append(run_id)
    return ids


def left(home: Home, task: str) -> set[str]:
    d = home.runs_dir / task
    return {p.name for p in d.iterdir()} if d.exists() else set()


def test_run_id_time() -> None:
    assert run_id_time("20261101T093000Z-0a1b2c") == datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
    assert run_id_time(new_run_id(NOW)) == NOW
    for bad in ("notes", "20261101T093000Z", "20261301T093000Z-0a1b2c", "x20261101T093000Z-0a1b2c"):
        assert run_id_time(bad) is None


def test_age_limit(home: Home) -> None:
    (home.tasks_dir / "a.toml").write_text("")
    ids = make_runs(home, "a", [0.1, 5, 29.9, 30.1, 400])
    assert prune_runs(home, keep_runs_days=30, keep_runs=100, now=NOW, active_run_ids=set()) == 2
    assert left(home, "a") == set(ids[:3])


def test_count_limit_is_per_task(home: Home) -> None:
    a = make_runs(home, "a", [1, 2, 3, 4, 5])
    b = make_runs(home, "b", [1, 2])
    assert prune_runs(home, 30, 3, NOW, set()) == 2
    assert left(home, "a") == set(a[:3])
    assert left(home, "b") == set(b)


def test_active_runs_are_never_removed_and_count_towards_the_newest(home: Home) -> None:
    ids = make_runs(home, "a", [0.5, 1, 2, 45])
    active = {ids[3]}  # a run that has gone on for 45 days (adopted, long timeout)
    assert prune_runs(home, 30, 2, NOW, active) == 1
    assert left(home, "a") == {ids[0], ids[1], ids[3]}
    assert prune_runs(home, 30, 1, NOW, {ids[1]}) == 1  # ids[3] is no longer active
    assert left(home, "a") == {ids[0], ids[1]}


def test_foreign_entries_and_symlinks_are_left_alone(home: Home, tmp_path: Path) -> None:
    ids = make_runs(home, "a", [90])
    task_dir = home.runs_dir / "a"
    (task_dir / "notes").mkdir()
    (task_dir / "20200101T000000Z-abcdef.txt").write_text("a file named like a run")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep").write_text("x")
    (task_dir / "20200101T000000Z-fedcba").symlink_to(precious)
    assert prune_runs(home, 30, 100, NOW, set()) == 1
    assert left(home, "a") == {"notes", "20200101T000000Z-abcdef.txt", "20200101T000000Z-fedcba"}
    assert (precious / "keep").exists()
    assert ids[0] not in left(home, "a")


def test_empty_folder_of_a_removed_task_goes_but_not_of_a_live_one(home: Home) -> None:
    (home.tasks_dir / "live.toml").write_text("")
    make_runs(home, "live", [60])
    make_runs(home, "gone", [60])
    assert prune_runs(home, 30, 100, NOW, set()) == 2
    assert (home.runs_dir / "live").is_dir()
    assert not (home.runs_dir / "gone").exists()


def test_history_rows_stay(home: Home) -> None:
    ids = make_runs(home, "a", [40, 50])
    db = StateDB.open(home.state_db)
    for run_id in ids:
        started = run_id_time(run_id)
        assert started is not None
        db.start_manual_run("a", run_id, lambda rid: str(home.run_dir("a", rid)), 1, None, started)
        db.end_manual_run(run_id, "success", 0, started + timedelta(seconds=3))
    assert prune_runs(home, 30, 100, NOW, set()) == 2
    assert left(home, "a") == set()
    assert sorted(r.run_id for r in db.recent_runs("a", 10)) == sorted(ids)
    db.close()


def test_a_folder_that_cannot_be_removed_is_skipped(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = make_runs(home, "a", [40, 50])
    real_rmtree = shutil.rmtree

    def rmtree(path: Path) -> None:
        if Path(path).name == ids[0]:
            raise PermissionError(13, "Permission denied")
        real_rmtree(path)

    monkeypatch.setattr(shutil, "rmtree", rmtree)
    assert prune_runs(home, 30, 100, NOW, set()) == 1
    assert left(home, "a") == {ids[0]}


def test_no_runs_folder_and_bad_limits(tmp_path: Path) -> None:
    home = Home(tmp_path / "empty")
    assert prune_runs(home, 30, 100, NOW, set()) == 0
    with pytest.raises(ValueError, match="at least 1"):
        prune_runs(home, 0, 100, NOW, set())
