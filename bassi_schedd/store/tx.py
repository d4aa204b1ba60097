"""The writes to the state store, as the methods of one open transaction (``StateDB.tx``).

Everything done through one ``Tx`` is committed together when its ``with`` block ends, or not at
all; a ``Tx`` cannot be used after its block.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from functools import partial

from bassi_schedd.core.budget import day_of, slot_of
from bassi_schedd.core.records import NewRun, RunRow, to_db
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.store.schema import INSERT_RUN, insert_run, run_values

# The task's last_ok after a run ended so; other statuses leave it as it was.
_LAST_OK = {RunStatus.SUCCESS: 1, RunStatus.FAILED: 0, RunStatus.TIMEOUT: 0}


class Tx:
    """One write transaction of the state DB; its methods are the writes."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn: sqlite3.Connection | None = conn

    def close(self) -> None:
        """End this object's use (``StateDB.tx`` commits or rolls back the transaction)."""
        self._conn = None

    def _execute(self, sql: str, params: Sequence[object] = ()) -> sqlite3.Cursor:
        if self._conn is None:
            raise RuntimeError("the transaction has ended; open a new one with StateDB.tx()")
        return self._conn.execute(sql, params)

    # -- meta ---------------------------------------------------------------------------------

    def set_meta(self, items: Mapping[str, str]) -> None:
        """Store daemon facts such as ``last_tick``, ``daemon_pid`` (see ``StateDB.get_meta``)."""
        for key, value in items.items():
            self._execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # -- task state ---------------------------------------------------------------------------

    def first_seen(self, task: str, now: datetime) -> None:
        """Register a task the first time it is seen; it never catches up before ``now``."""
        self._execute(
            "INSERT OR IGNORE INTO task_state (task, first_seen, last_checked) VALUES (?, ?, ?)",
            (task, to_db(now), to_db(now)),
        )

    def set_last_checked(self, task: str, until: datetime) -> None:
        """Move the task's ``last_checked`` forward to ``until`` (never backwards)."""
        # A clock stepped back must not re-open checked times.
        self._execute(
            "UPDATE task_state SET last_checked = ? WHERE task = ? AND last_checked < ?",
            (to_db(until), task, to_db(until)),
        )

    def set_paused(self, task: str, paused: bool) -> None:
        """Remember whether the task is paused (times while paused are never owed)."""
        self._execute("UPDATE task_state SET paused = ? WHERE task = ?", (int(paused), task))

    def set_done(self, task: str) -> None:
        """Mark a one-shot task done: it is never planned again."""
        self._execute("UPDATE task_state SET done = 1 WHERE task = ?", (task,))

    # -- runs ---------------------------------------------------------------------------------

    def insert_runs(self, rows: Sequence[NewRun], now: datetime) -> list[NewRun]:
        """Insert dispositions and return those inserted (ids re-drawn where one was taken).

        A second live row for a scheduled time is skipped: that time already has its row. A run id
        that collides with another run's (same second, same random part) is never a reason to
        drop a row, so it gets a fresh random part instead.
        """
        inserted: list[NewRun] = []
        for row in rows:
            run_id, count = insert_run(
                self._execute, INSERT_RUN, row.run_id, partial(run_values, row, now=now)
            )
            if count:
                inserted.append(replace(row, run_id=run_id))
        return inserted

    def insert_manual_run(
        self,
        task: str,
        run_id: str,
        run_dir_for: Callable[[str], str],
        pid: int,
        pid_create_time: float | None,
        started_at: datetime,
    ) -> str:
        """Insert a run of ``execute TASK``, already running; return its id (re-drawn if taken)."""
        run_id, _ = insert_run(
            self._execute,
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

    def mark_started(
        self,
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
        cur = self._execute(
            "UPDATE runs SET status = 'running', started_at = ?, run_dir = ?, pid = ?, "
            "pid_create_time = ? WHERE run_id = ? AND status = 'queued'",
            (to_db(started_at), run_dir, pid, pid_create_time, run_id),
        )
        return cur.rowcount == 1

    def unmark_started(self, run_id: str) -> None:
        """Put a run marked running but never spawned back in the queue."""
        self._execute(
            "UPDATE runs SET status = 'queued', started_at = NULL, run_dir = NULL, pid = NULL, "
            "pid_create_time = NULL WHERE run_id = ? AND status = 'running' AND pid IS NULL",
            (run_id,),
        )

    def set_pid(self, run_id: str, pid: int, pid_create_time: float | None) -> None:
        """Save the process of a run marked running (the pid and its create time identify it)."""
        self._execute(
            "UPDATE runs SET pid = ?, pid_create_time = ? WHERE run_id = ?",
            (pid, pid_create_time, run_id),
        )

    def set_status(self, run_id: str, status: RunStatus, detail: str | None = None) -> None:
        """Set a run's status, and its detail when one is given."""
        self._execute(
            "UPDATE runs SET status = ?, detail = COALESCE(?, detail) WHERE run_id = ?",
            (status, detail, run_id),
        )

    def set_stopping(self, run_id: str, reason: RunStatus) -> None:
        """Note that the daemon is stopping a run, and the status it ends with (``reason``)."""
        self._execute("UPDATE runs SET stop_reason = ? WHERE run_id = ?", (reason, run_id))

    def record_end(
        self,
        run: RunRow,
        status: RunStatus,
        exit_code: int | None,
        ended_at: datetime,
        *,
        detail: str | None = None,
        cost_usd: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        result_sha256: str | None = None,
    ) -> None:
        """Write how a run ended into its row (``detail``, if given, says why) and the task's
        last status."""
        duration_s = None
        if run.started_at is not None:
            duration_s = round((ended_at - run.started_at).total_seconds(), 3)
        self._add_spend(run, cost_usd)
        self._execute(
            "UPDATE runs SET status = ?, exit_code = ?, ended_at = ?, duration_s = ?, "
            "cost_usd = ?, input_tokens = ?, output_tokens = ?, detail = COALESCE(?, detail), "
            "result_sha256 = ? WHERE run_id = ?",
            (
                status,
                exit_code,
                to_db(ended_at),
                duration_s,
                cost_usd,
                input_tokens,
                output_tokens,
                detail,
                result_sha256,
                run.run_id,
            ),
        )
        self._execute(
            "UPDATE task_state SET last_status = ?, last_run_at = ?, "
            "last_ok = COALESCE(?, last_ok) WHERE task = ?",
            (status, to_db(run.started_at or ended_at), _LAST_OK.get(status), run.task),
        )

    def _add_spend(self, run: RunRow, cost_usd: float | None) -> None:
        """Count a run's cost in the spend slots and days (schema v4) of its task and of all
        tasks (task ''); only what changed, so recording an end twice counts it once."""
        if run.started_at is None:
            return
        row = self._execute("SELECT cost_usd FROM runs WHERE run_id = ?", (run.run_id,)).fetchone()
        delta = (cost_usd or 0.0) - ((row[0] if row is not None else None) or 0.0)
        if delta == 0:
            return
        slot, day = to_db(slot_of(run.started_at)), to_db(day_of(run.started_at))
        for table, column, key in (("spend_slots", "slot", slot), ("spend_days", "day", day)):
            for task in (run.task, ""):
                self._execute(
                    f"INSERT INTO {table} (task, {column}, cost_usd) VALUES (?, ?, ?) "  # noqa: S608
                    f"ON CONFLICT (task, {column}) DO UPDATE SET cost_usd = cost_usd + ?",
                    (task, key, delta, delta),
                )

    # -- trigger requests ---------------------------------------------------------------------

    def add_request(self, task: str, now: datetime) -> int:
        """Queue a ``trigger TASK`` request for the daemon; return its id."""
        cur = self._execute(
            "INSERT INTO requests (task, requested_at) VALUES (?, ?)", (task, to_db(now))
        )
        return int(cur.lastrowid or 0)

    def take_requests(self) -> list[tuple[str, datetime]]:
        """The pending ``trigger`` requests, oldest first (task, requested at); each is taken
        once."""
        rows = self._execute("SELECT id, task, requested_at FROM requests ORDER BY id").fetchall()
        self._execute("DELETE FROM requests")
        return [(r[1], datetime.fromisoformat(r[2])) for r in rows]

    # -- stop requests ------------------------------------------------------------------------

    def add_stop_request(self, target: str, now: datetime) -> int:
        """Queue a ``stop RUN_ID|TASK`` request for the daemon; return its id."""
        cur = self._execute(
            "INSERT INTO stop_requests (target, requested_at) VALUES (?, ?)", (target, to_db(now))
        )
        return int(cur.lastrowid or 0)

    def pending_stop_requests(self) -> list[tuple[int, str]]:
        """(id, target) of the stop requests the daemon has not answered, oldest first."""
        rows = self._execute(
            "SELECT id, target FROM stop_requests WHERE stopped IS NULL ORDER BY id"
        ).fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]

    def answer_stop_request(self, request_id: int, run_ids: Sequence[str]) -> None:
        """Record which runs the daemon is stopping for a request (none: nothing was running)."""
        self._execute(
            "UPDATE stop_requests SET stopped = ? WHERE id = ?", (",".join(run_ids), request_id)
        )

    def forget_stop_request(self, request_id: int) -> None:
        """Remove an answered request (its caller has read the answer)."""
        self._execute("DELETE FROM stop_requests WHERE id = ?", (request_id,))
