"""The state store: one SQLite file (WAL) with per-task state, run history and requests.

Every change the daemon makes is one transaction, so a kill -9 at any instant leaves either the
state before or the state after. The schema (schema.py) makes "a scheduled time is started at most
once" a constraint, not a convention.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from bassi_schedd.core.records import (
    NewRun,
    RunRow,
    TaskSummary,
    from_db,
    to_db,
)
from bassi_schedd.store.schema import (
    INSERT_RUN,
    SCHEMA_VERSION,
    StateDBError,
    connect,
    insert_run,
    run_values,
)

__all__ = [
    "SCHEMA_VERSION",
    "NewRun",
    "RunRow",
    "StateDB",
    "StateDBError",
    "TaskSummary",
    "from_db",
    "to_db",
]

STOPPING = "stopping: "  # detail prefix of a run the daemon was stopping (timeout, replaced)
FINISHED = ("success", "failed", "timeout", "replaced", "interrupted", "lost")


_DATE_COLS = ("scheduled_for", "started_at", "ended_at", "not_before")
_RUN_COLS = [f.name for f in fields(RunRow)]


def row_to_run(row: sqlite3.Row) -> RunRow:
    data = {k: row[k] for k in _RUN_COLS}
    for k in _DATE_COLS:
        data[k] = from_db(data[k])
    data["sequential"] = bool(data["sequential"])
    data["foreground"] = bool(data["foreground"])
    return RunRow(**data)


class StateDB:
    """A connection to ``state.db``; not shared between threads."""

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self.conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, timeout_s: float = 10.0) -> StateDB:
        """Open (creating and migrating as needed) the state DB at ``path``.

        Raises StateDBError (one sentence naming the file) when it is damaged, unreadable,
        locked for longer than ``timeout_s`` or written by a newer version.
        """
        return cls(connect(path, timeout_s), path)

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE so writers never deadlock on upgrade)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (it does on SQLITE_FULL and some I/O errors):
            # a second ROLLBACK would raise and hide the real error, and a failed COMMIT must
            # not leave a transaction open that makes every later BEGIN fail.
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A daemon fact such as ``last_tick`` (UTC ISO), ``daemon_pid``, ``daemon_started``."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, items: dict[str, str]) -> None:
        with self.tx() as c:
            c.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(items.items()),
            )

    # -- task state ---------------------------------------------------------------------------

    def last_checked(self) -> dict[str, datetime]:
        """``last_checked`` of every task the daemon has seen."""
        rows = self.conn.execute("SELECT task, last_checked FROM task_state").fetchall()
        return {r[0]: datetime.fromisoformat(r[1]) for r in rows}

    def task_summaries(self) -> dict[str, TaskSummary]:
        """Per-task summary: last status and time, done, paused."""
        out: dict[str, TaskSummary] = {}
        for r in self.conn.execute("SELECT * FROM task_state"):
            out[r["task"]] = TaskSummary(
                task=r["task"],
                last_status=r["last_status"],
                last_run_at=from_db(r["last_run_at"]),
                done=bool(r["done"]),
                last_ok=None if r["last_ok"] is None else bool(r["last_ok"]),
                paused=bool(r["paused"]),
            )
        return out

    def last_ok(self, task: str) -> bool | None:
        """Whether the task's last finished run succeeded (None: no run yet)."""
        row = self.conn.execute("SELECT last_ok FROM task_state WHERE task = ?", (task,)).fetchone()
        return None if row is None or row[0] is None else bool(row[0])

    def first_seen(self, c: sqlite3.Connection, task: str, now: datetime) -> None:
        """Register a task the first time it is seen; it never catches up before ``now``."""
        c.execute(
            "INSERT OR IGNORE INTO task_state (task, first_seen, last_checked) VALUES (?, ?, ?)",
            (task, to_db(now), to_db(now)),
        )

    def set_last_checked(self, c: sqlite3.Connection, task: str, until: datetime) -> None:
        # Never move backwards: a clock stepped back must not re-open checked times.
        c.execute(
            "UPDATE task_state SET last_checked = ? WHERE task = ? AND last_checked < ?",
            (to_db(until), task, to_db(until)),
        )

    def set_paused(self, c: sqlite3.Connection, task: str, paused: bool) -> None:
        c.execute("UPDATE task_state SET paused = ? WHERE task = ?", (int(paused), task))

    def set_done(self, c: sqlite3.Connection, task: str) -> None:
        c.execute("UPDATE task_state SET done = 1 WHERE task = ?", (task,))

    # -- runs ---------------------------------------------------------------------------------

    def insert_runs(
        self, c: sqlite3.Connection, rows: Sequence[NewRun], now: datetime
    ) -> list[NewRun]:
        """Insert dispositions and return those inserted (ids re-drawn where one was taken).

        A second live row for a scheduled time is skipped: that time already has its row. A run id
        that collides with another run's (same second, same random part) is never a reason to
        drop a row, so it gets a fresh random part instead.
        """
        inserted: list[NewRun] = []
        for row in rows:
            run_id, count = insert_run(c, INSERT_RUN, row.run_id, partial(run_values, row, now=now))
            if count:
                inserted.append(replace(row, run_id=run_id))
        return inserted

    def mark_started(
        self,
        c: sqlite3.Connection,
        run_id: str,
        started_at: datetime,
        run_dir: str,
        pid: int | None,
        pid_create_time: float | None,
    ) -> bool:
        """Mark a queued run running; False (nothing changed) when it is no longer queued.

        The check is in the UPDATE itself, so of two daemons that somehow share one state DB
        only one can start a given row.
        """
        cur = c.execute(
            "UPDATE runs SET status = 'running', started_at = ?, run_dir = ?, pid = ?, "
            "pid_create_time = ? WHERE run_id = ? AND status = 'queued'",
            (to_db(started_at), run_dir, pid, pid_create_time, run_id),
        )
        return cur.rowcount == 1

    def unmark_started(self, c: sqlite3.Connection, run_id: str) -> None:
        """Put a run marked running but never spawned back in the queue."""
        c.execute(
            "UPDATE runs SET status = 'queued', started_at = NULL, run_dir = NULL, pid = NULL, "
            "pid_create_time = NULL WHERE run_id = ? AND status = 'running' AND pid IS NULL",
            (run_id,),
        )

    def set_status(
        self, c: sqlite3.Connection, run_id: str, status: str, detail: str | None = None
    ) -> None:
        c.execute(
            "UPDATE runs SET status = ?, detail = COALESCE(?, detail) WHERE run_id = ?",
            (status, detail, run_id),
        )

    def set_stopping(self, c: sqlite3.Connection, run_id: str, reason: str) -> None:
        """Note that the daemon is stopping a run and why (``STOPPING`` + reason)."""
        c.execute("UPDATE runs SET detail = ? WHERE run_id = ?", (f"{STOPPING}{reason}", run_id))

    def finish(
        self,
        c: sqlite3.Connection,
        run: RunRow,
        status: str,
        exit_code: int | None,
        ended_at: datetime,
        cost_usd: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """Record the end of a run and the task's last status."""
        duration_s = None
        if run.started_at is not None:
            duration_s = round((ended_at - run.started_at).total_seconds(), 3)
        c.execute(
            "UPDATE runs SET status = ?, exit_code = ?, ended_at = ?, duration_s = ?, "
            "cost_usd = ?, input_tokens = ?, output_tokens = ? WHERE run_id = ?",
            (
                status,
                exit_code,
                to_db(ended_at),
                duration_s,
                cost_usd,
                input_tokens,
                output_tokens,
                run.run_id,
            ),
        )
        ok = {"success": 1, "failed": 0, "timeout": 0}.get(status)
        c.execute(
            "UPDATE task_state SET last_status = ?, last_run_at = ?, "
            "last_ok = COALESCE(?, last_ok) WHERE task = ?",
            (status, to_db(run.started_at or ended_at), ok, run.task),
        )

    def get_run(self, run_id: str) -> RunRow | None:
        row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row_to_run(row)

    def runs_with_status(self, *statuses: str) -> list[RunRow]:
        """Rows in the given statuses, oldest first (FIFO order for ``queued``)."""
        marks = ",".join("?" * len(statuses))
        q = f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY seq"  # noqa: S608
        return [row_to_run(r) for r in self.conn.execute(q, statuses)]

    def recent_runs(self, task: str | None = None, limit: int = 20) -> list[RunRow]:
        """History, newest first."""
        if task is None:
            rows = self.conn.execute("SELECT * FROM runs ORDER BY seq DESC LIMIT ?", (limit,))
        else:
            rows = self.conn.execute(
                "SELECT * FROM runs WHERE task = ? ORDER BY seq DESC LIMIT ?", (task, limit)
            )
        return [row_to_run(r) for r in rows]

    def last_finished_run(self, task: str) -> RunRow | None:
        """The newest run of ``task`` that started and ended (for {last_run_*} variables)."""
        marks = ",".join("?" * len(FINISHED))
        row = self.conn.execute(
            f"SELECT * FROM runs WHERE task = ? AND status IN ({marks}) "  # noqa: S608
            "AND started_at IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (task, *FINISHED),
        ).fetchone()
        return None if row is None else row_to_run(row)

    def orphaned_times(self) -> list[tuple[str, datetime]]:
        """Scheduled times whose run ended interrupted/lost and that have no catch-up yet."""
        rows = self.conn.execute(
            "SELECT DISTINCT task, scheduled_for FROM runs r "
            "WHERE status IN ('interrupted', 'lost') AND trigger IN ('schedule', 'catchup') "
            "AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.task = r.task "
            "AND x.scheduled_for = r.scheduled_for AND x.trigger IN ('schedule', 'catchup') "
            "AND x.status NOT IN ('interrupted', 'lost')) ORDER BY scheduled_for"
        ).fetchall()
        return [(r[0], datetime.fromisoformat(r[1])) for r in rows]

    # -- manual runs (execute TASK) -----------------------------------------------------------

    def start_manual_run(
        self,
        task: str,
        run_id: str,
        run_dir_for: Callable[[str], str],
        pid: int,
        pid_create_time: float | None,
        started_at: datetime,
    ) -> str:
        """Record a run started with ``execute TASK``; return its id (re-drawn if taken)."""
        with self.tx() as c:
            self.first_seen(c, task, started_at)
            run_id, _ = insert_run(
                c,
                "INSERT INTO runs (run_id, task, trigger, scheduled_for, started_at, status, "
                "run_dir, pid, pid_create_time, foreground, created_at) "
                "VALUES (?, ?, 'manual', ?, ?, 'running', ?, ?, ?, 1, ?)",
                run_id,
                lambda rid: (
                    rid,
                    task,
                    to_db(started_at),
                    to_db(started_at),
                    run_dir_for(rid),
                    pid,
                    pid_create_time,
                    to_db(started_at),
                ),
            )
        return run_id

    def finish_run(
        self,
        run_id: str,
        status: str,
        exit_code: int | None,
        ended_at: datetime,
        cost_usd: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """Record the end of a run in its own transaction."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(run_id)
        with self.tx() as c:
            self.finish(c, run, status, exit_code, ended_at, cost_usd, input_tokens, output_tokens)

    # -- trigger requests ---------------------------------------------------------------------

    def add_request(self, task: str, now: datetime) -> int:
        """Queue a ``trigger TASK`` request for the daemon; return its id."""
        with self.tx() as c:
            cur = c.execute(
                "INSERT INTO requests (task, requested_at) VALUES (?, ?)", (task, to_db(now))
            )
        return int(cur.lastrowid or 0)

    def request_pending(self, request_id: int) -> bool:
        """True while the daemon has not taken the request yet."""
        row = self.conn.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone()
        return row is not None

    def take_requests(self, c: sqlite3.Connection) -> list[tuple[str, datetime]]:
        rows = c.execute("SELECT id, task, requested_at FROM requests ORDER BY id").fetchall()
        c.execute("DELETE FROM requests")
        return [(r[1], datetime.fromisoformat(r[2])) for r in rows]
