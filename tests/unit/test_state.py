"""The SQLite state store: schema, the one-live-row-per-time rule, recovery queries."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from bassi_schedd.config.paths import Home
from bassi_schedd.store.state import NewRun, StateDB, from_db, to_db

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(home: Home) -> StateDB:
    d = StateDB.open(home.state_db)
    yield d
    d.close()


def insert(db: StateDB, *rows: NewRun) -> None:
    with db.tx() as tx:
        tx.insert_runs(rows, T0)


def test_one_live_row_per_scheduled_time(db: StateDB) -> None:
    insert(db, NewRun("r1", "t", "schedule", T0, "queued"))
    insert(db, NewRun("r2", "t", "catchup", T0, "queued"))  # ignored: the time is taken
    assert [r.run_id for r in db.runs_with_status("queued")] == ["r1"]
    # Retries and manual runs of the same time are other rows.
    insert(db, NewRun("r3", "t", "retry", T0, "queued", attempt=2))
    insert(db, NewRun("r4", "t", "manual", T0, "queued"))
    assert len(db.runs_with_status("queued")) == 3
    with db.tx() as tx:
        tx.set_status("r1", "interrupted")
    insert(db, NewRun("r5", "t", "catchup", T0, "queued"))  # allowed after interrupted
    assert db.get_run("r5") is not None


def test_a_taken_run_id_is_redrawn_never_dropped(db: StateDB) -> None:
    taken = "20261101T090000Z-abcdef"
    insert(db, NewRun(taken, "a", "schedule", T0, "queued"))
    with db.tx() as tx:
        inserted = tx.insert_runs(
            [
                NewRun(taken, "b", "schedule", T0, "queued"),  # same id, other task
                NewRun("fresh", "a", "catchup", T0, "queued"),  # a's time already has its row
            ],
            T0,
        )
    assert [(r.task, r.run_id == taken) for r in inserted] == [("b", False)]
    row_b = db.get_run(inserted[0].run_id)
    assert row_b is not None and row_b.task == "b"
    assert inserted[0].run_id.startswith("20261101T090000Z-")
    assert db.get_run("fresh") is None


def test_manual_run_with_a_taken_id_gets_another(db: StateDB) -> None:
    insert(db, NewRun("20261101T090000Z-abcdef", "a", "schedule", T0, "queued"))
    got = db.start_manual_run(
        "b", "20261101T090000Z-abcdef", lambda rid: f"/runs/b/{rid}", 1, None, T0
    )
    assert got != "20261101T090000Z-abcdef" and got.startswith("20261101T090000Z-")
    row = db.get_run(got)
    assert row is not None and row.task == "b" and row.run_dir == f"/runs/b/{got}"


def test_other_constraint_failures_are_not_mistaken_for_a_taken_id(db: StateDB) -> None:
    with pytest.raises(sqlite3.IntegrityError, match=r"NOT NULL constraint failed: runs\.status"):
        insert(db, NewRun("x", "t", "schedule", T0, None))  # type: ignore[arg-type]
    assert db.get_run("x") is None


def test_orphaned_times_until_caught_up(db: StateDB) -> None:
    insert(db, NewRun("a", "t", "schedule", T0, "queued"))
    insert(db, NewRun("b", "u", "schedule", T0, "queued"))
    with db.tx() as tx:
        tx.set_status("a", "lost")
        tx.set_status("b", "interrupted")
    assert db.orphaned_times() == [("t", T0), ("u", T0)]
    insert(db, NewRun("c", "t", "catchup", T0, "missed"))
    assert db.orphaned_times() == [("u", T0)]


def test_last_checked_never_moves_backwards(db: StateDB) -> None:
    with db.tx() as tx:
        tx.first_seen("t", T0)
        tx.set_last_checked("t", T0 + timedelta(minutes=5))
        tx.set_last_checked("t", T0 - timedelta(hours=1))
    assert db.last_checked()["t"] == T0 + timedelta(minutes=5)


def test_finish_records_duration_and_last_status(db: StateDB) -> None:
    db.start_manual_run("t", "m1", lambda _: "/tmp/x", 123, None, T0)
    db.end_manual_run(
        "m1",
        "failed",
        2,
        T0 + timedelta(seconds=1.5),
        cost_usd=0.01,
        input_tokens=10,
        output_tokens=20,
    )
    run = db.get_run("m1")
    assert run is not None and run.duration_s == 1.5 and run.exit_code == 2
    assert run.public()["ended_at"] == "2026-11-01T09:00:01.500+00:00"
    s = db.task_summaries()["t"]
    assert (s.last_status, s.last_ok) == ("failed", False)
    with pytest.raises(KeyError):
        db.end_manual_run("nope", "success", 0, T0)


def test_requests_are_taken_once(db: StateDB) -> None:
    db.add_request("t", T0)
    with db.tx() as tx:
        assert tx.take_requests() == [("t", T0)]
    with db.tx() as tx:
        assert tx.take_requests() == []


def test_timestamps_are_canonical_utc() -> None:
    assert to_db(T0) == "2026-11-01T09:00:00+00:00"
    with pytest.raises(ValueError, match="naive"):
        to_db(datetime(2026, 1, 1))
    assert from_db(to_db(T0)) == T0


def test_kill9_inside_a_transaction_leaves_a_consistent_db(home: Home) -> None:
    StateDB.open(home.state_db).close()
    code = f"""
import os, signal
from datetime import UTC, datetime
from bassi_schedd.store.state import StateDB, NewRun
db = StateDB.open(__import__('pathlib').Path({str(home.state_db)!r}))
now = datetime.now(UTC)
with db.tx() as tx:
    tx.insert_runs([NewRun(f"r{{i}}", "t", "manual", now, "queued") for i in range(500)], now)
    os.kill(os.getpid(), signal.SIGKILL)
"""
    p = subprocess.run([sys.executable, "-c", code], capture_output=True)
    assert p.returncode == -9
    con = sqlite3.connect(home.state_db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_daemon_facts_in_meta_use_the_store_encoding(home: Home, cli) -> None:
    """last_tick and daemon_started are written as to_db writes every other time (UTC, whole
    seconds or milliseconds), not as raw isoformat() with microseconds."""
    assert cli("run", "--once").returncode == 0
    db = StateDB.open(home.state_db)
    try:
        for key in ("last_tick", "daemon_started"):
            raw = db.get_meta(key)
            assert raw is not None and raw == to_db(from_db(raw)), (key, raw)
    finally:
        db.close()


def test_a_transaction_cannot_be_used_after_its_block(db: StateDB) -> None:
    with db.tx() as tx:
        tx.first_seen("t", T0)
    with pytest.raises(RuntimeError, match="the transaction has ended"):
        tx.set_done("t")
    assert db.last_checked() == {"t": T0}
    assert not db.task_summaries()["t"].done


def test_open_existing_opens_only_a_state_db_that_is_there(home: Home) -> None:
    from bassi_schedd.store.state import StateDBError, open_existing

    assert open_existing(home) is None
    assert not home.state_db.exists()  # looking creates nothing
    home.state_db.parent.mkdir(parents=True, exist_ok=True)
    home.state_db.write_bytes(b"not sqlite at all " * 100)
    with pytest.raises(StateDBError, match=r"^cannot read the state database .*state\.db: file"):
        open_existing(home)
    home.state_db.unlink()
    StateDB.open(home.state_db).close()
    db = open_existing(home)
    assert db is not None
    db.close()
