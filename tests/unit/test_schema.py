"""Opening the state file: creation, WAL, migrations, and the files it refuses in one sentence."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bassi_schedd.store.schema import SCHEMA_VERSION, StateDBError, connect


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "schedd" / "state.db"


def test_a_new_file_is_private_versioned_and_wal(db_path: Path) -> None:
    conn = connect(db_path, 1.0)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert oct(db_path.stat().st_mode & 0o777) == "0o600"
    assert oct(db_path.parent.stat().st_mode & 0o777) == "0o700"
    conn.execute("INSERT INTO meta (key, value) VALUES ('k', 'v')")
    conn.close()
    again = connect(db_path, 1.0)  # re-opening migrates nothing and keeps data
    assert again.execute("SELECT value FROM meta WHERE key = 'k'").fetchone()[0] == "v"
    again.close()


def test_a_newer_schema_is_refused_and_left_alone(db_path: Path) -> None:
    connect(db_path, 1.0).execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StateDBError) as e:
        connect(db_path, 1.0)
    assert str(e.value) == (
        f"the state database {db_path} was written by a newer bassi-schedd "
        f"(schema {SCHEMA_VERSION + 1}); upgrade bassi-schedd to use it"
    )
    check = sqlite3.connect(db_path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    check.close()


def test_a_damaged_file_is_one_sentence_with_the_way_out(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"not sqlite at all " * 100)
    with pytest.raises(StateDBError) as e:
        connect(db_path, 1.0)
    assert str(e.value) == (
        f"cannot read the state database {db_path}: file is not a database "
        "(if it is damaged, move it aside: a new one starts an empty history)"
    )
    assert db_path.read_bytes().startswith(b"not sqlite")  # nothing overwritten


def test_a_locked_file_is_one_sentence_without_the_damage_hint(db_path: Path) -> None:
    connect(db_path, 1.0).close()
    holder = sqlite3.connect(db_path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StateDBError) as e:
            connect(db_path, 0.2)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert str(e.value) == f"cannot read the state database {db_path}: database is locked"


def test_a_folder_that_cannot_be_made_is_one_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(StateDBError, match=r"cannot read the state database .*Not a directory"):
        connect(blocker / "schedd" / "state.db", 1.0)


def test_a_version_1_file_migrates_and_keeps_its_rows(db_path: Path) -> None:
    """v1 told `execute TASK` rows apart by a missing pid_create_time; v2 has a column for it."""
    from bassi_schedd.store.schema import MIGRATIONS

    db_path.parent.mkdir(parents=True)
    old = sqlite3.connect(db_path)
    old.executescript(MIGRATIONS[1])
    old.execute("PRAGMA user_version = 1")
    insert = (
        "INSERT INTO runs (run_id, task, trigger, status, pid, pid_create_time, created_at) "
        "VALUES (?, 't', ?, ?, ?, ?, '2026-01-01T00:00:00+00:00')"
    )
    old.execute(insert, ("fg", "manual", "running", 4242, None))
    old.execute(insert, ("daemon-manual", "manual", "running", 4343, 1.5))
    old.execute(insert, ("done", "schedule", "success", None, None))
    old.commit()
    old.close()
    conn = connect(db_path, 1.0)
    rows = conn.execute("SELECT run_id, status, foreground FROM runs ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [
        ("fg", "running", 1),
        ("daemon-manual", "running", 0),
        ("done", "success", 0),
    ]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_a_version_2_file_migrates_and_keeps_its_rows(db_path: Path) -> None:
    """v2 kept why the daemon was stopping a run in `detail` ("stopping: timeout"); v3 moves it
    into stop_reason, so a run being stopped when the daemon died is still finished as such."""
    from bassi_schedd.store.schema import MIGRATIONS
    from bassi_schedd.store.state import StateDB

    db_path.parent.mkdir(parents=True)
    old = sqlite3.connect(db_path)
    old.executescript(MIGRATIONS[1])
    old.executescript(MIGRATIONS[2])
    old.execute("PRAGMA user_version = 2")
    insert = (
        "INSERT INTO runs (run_id, task, trigger, status, detail, pid, created_at) "
        "VALUES (?, 't', 'schedule', ?, ?, ?, '2026-01-01T00:00:00+00:00')"
    )
    old.execute(insert, ("stopping", "running", "stopping: timeout", 4242))
    old.execute(insert, ("was-replaced", "replaced", "stopping: replaced", None))
    old.execute(insert, ("paused", "missed", "task paused", None))
    old.execute(insert, ("done", "success", None, None))
    old.commit()
    old.close()
    conn = connect(db_path, 1.0)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    rows = conn.execute("SELECT run_id, status, detail, stop_reason FROM runs ORDER BY seq")
    assert [tuple(r) for r in rows] == [
        ("stopping", "running", None, "timeout"),
        ("was-replaced", "replaced", None, "replaced"),
        ("paused", "missed", "task paused", None),
        ("done", "success", None, None),
    ]
    conn.close()
    db = StateDB.open(db_path)
    try:
        (running,) = db.runs_with_status("running")
        assert (running.run_id, running.pid, running.stop_reason) == ("stopping", 4242, "timeout")
        assert "stop_reason" not in running.public()  # the daemon's bookkeeping, not history
    finally:
        db.close()


def test_a_version_3_file_migrates_keeps_its_rows_and_its_spend(db_path: Path) -> None:
    """v4 (SPEC 10) adds result_sha256, stop requests and the spend slots and days, filled from
    the history it finds; a run's end then adds to them (once, even if recorded twice)."""
    from datetime import UTC, datetime

    from bassi_schedd.core.budget import periods
    from bassi_schedd.core.runstatus import RunStatus
    from bassi_schedd.store.schema import MIGRATIONS
    from bassi_schedd.store.state import StateDB

    db_path.parent.mkdir(parents=True)
    old = sqlite3.connect(db_path)
    for v in (1, 2, 3):
        old.executescript(MIGRATIONS[v])
    old.execute("PRAGMA user_version = 3")
    insert = (
        "INSERT INTO runs (run_id, task, trigger, status, started_at, cost_usd, created_at) "
        "VALUES (?, ?, 'schedule', ?, ?, ?, '2026-01-01T00:00:00+00:00')"
    )
    old.execute(insert, ("a", "mail", "success", "2026-12-06T08:14:59.900+00:00", 0.25))
    old.execute(insert, ("b", "mail", "success", "2026-12-01T08:00:00+00:00", 1.0))
    old.execute(insert, ("c", "other", "success", "2026-12-06T09:00:00+00:00", 0.5))
    old.execute(insert, ("d", "mail", "success", "2026-11-30T23:00:00+00:00", 9.0))  # November
    old.execute(insert, ("e", "mail", "running", "2026-12-06T10:00:00+00:00", None))
    old.commit()
    old.close()
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    utc, berlin = ZoneInfo("UTC"), ZoneInfo("Europe/Berlin")
    db = StateDB.open(db_path)
    try:
        assert [r.run_id for r in db.recent_runs(limit=10)] == ["e", "d", "c", "b", "a"]
        assert db.get_run("a").result_sha256 is None  # type: ignore[union-attr]
        spent = db.spend("mail", periods(now, utc, utc), now)
        assert (spent.task_day, spent.task_month, spent.all_day, spent.all_month) == (
            0.25, 1.25, 0.75, 1.75,
        )  # fmt: skip
        # In Berlin, November 30th 23:00 UTC is already December.
        assert db.spend("mail", periods(now, berlin, utc), now).task_month == 10.25
        running = db.get_run("e")
        assert running is not None
        for _ in range(2):
            with db.tx() as tx:
                tx.record_end(running, RunStatus.SUCCESS, 0, now, cost_usd=0.5)
        spent = db.spend("mail", periods(now, utc, utc), now)
        assert (spent.task_day, spent.all_month) == (0.75, 2.25)
    finally:
        db.close()
