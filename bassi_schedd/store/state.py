"""The state store: one SQLite file (WAL) with per-task state, run history and requests.

Every change the daemon makes is one transaction, so a kill -9 at any instant leaves either the
state before or the state after. The schema (schema.py) makes "a scheduled time is started at most
once" a constraint, not a convention. Reads are methods of ``StateDB``; writes are methods of the
transaction it hands out (``with db.tx() as tx: tx.mark_started(...)``, see tx.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import datetime
from pathlib import Path

from bassi_schedd.config.paths import Home
from bassi_schedd.core.budget import Periods, Spent, spans
from bassi_schedd.core.records import (
    NewRun,
    RunRow,
    TaskSummary,
    from_db,
    to_db,
)
from bassi_schedd.core.runstatus import FINISHED, RunStatus
from bassi_schedd.store.schema import (
    SCHEMA_VERSION,
    QueryError,
    StateDBError,
    connect,
)
from bassi_schedd.store.tx import Tx

__all__ = [
    "SCHEMA_VERSION",
    "NewRun",
    "QueryError",
    "RunRow",
    "RunStatus",
    "StateDB",
    "StateDBError",
    "TaskSummary",
    "Tx",
    "from_db",
    "open_existing",
    "to_db",
]

_DATE_COLS = ("scheduled_for", "started_at", "ended_at", "not_before")
_RUN_COLS = [f.name for f in fields(RunRow)]


def row_to_run(row: sqlite3.Row) -> RunRow:
    data = {k: row[k] for k in _RUN_COLS}
    for k in _DATE_COLS:
        data[k] = from_db(data[k])
    data["sequential"] = bool(data["sequential"])
    data["foreground"] = bool(data["foreground"])
    data["status"] = RunStatus(data["status"])
    data["stop_reason"] = _status_or_none(data["stop_reason"])
    return RunRow(**data)


def _status_or_none(text: str | None) -> RunStatus | None:
    return None if text is None else RunStatus(text)


def open_existing(home: Home, *, timeout_s: float = 10.0) -> StateDB | None:
    """The state DB of ``home`` if there is one, else None (only the daemon and ``execute``
    create it).

    Raises StateDBError (one sentence naming the file) when it cannot be read.
    """
    if not home.state_db.exists():
        return None
    return StateDB.open(home.state_db, timeout_s=timeout_s)


class StateDB:
    """A connection to ``state.db``; not shared between threads.

    Reads are methods of this object; writes are methods of a transaction (``tx``).
    """

    def __init__(self, conn: sqlite3.Connection, path: Path):
        self._conn = conn
        self.path = path

    @classmethod
    def open(cls, path: Path, *, timeout_s: float = 10.0) -> StateDB:
        """Open (creating and migrating as needed) the state DB at ``path``.

        Raises StateDBError (one sentence naming the file) when it is damaged, unreadable,
        locked for longer than ``timeout_s`` or written by a newer version.
        """
        return cls(connect(path, timeout_s), path)

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction (BEGIN IMMEDIATE so writers never deadlock on upgrade): the
        writes are the methods of the ``Tx`` it yields, committed together when the block ends."""
        self._conn.execute("BEGIN IMMEDIATE")
        tx = Tx(self._conn)
        try:
            yield tx
            self._conn.execute("COMMIT")
        except BaseException:
            # SQLite may have rolled back already (it does on SQLITE_FULL and some I/O errors):
            # a second ROLLBACK would raise and hide the real error, and a failed COMMIT must
            # not leave a transaction open that makes every later BEGIN fail.
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise
        finally:
            tx.close()

    # -- meta ---------------------------------------------------------------------------------

    def get_meta(self, key: str) -> str | None:
        """A daemon fact such as ``last_tick`` (UTC ISO), ``daemon_pid``, ``daemon_started``."""
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, items: dict[str, str]) -> None:
        """Store daemon facts in their own transaction."""
        with self.tx() as tx:
            tx.set_meta(items)

    # -- task state ---------------------------------------------------------------------------

    def last_checked(self) -> dict[str, datetime]:
        """``last_checked`` of every task the daemon has seen."""
        rows = self._conn.execute("SELECT task, last_checked FROM task_state").fetchall()
        return {r[0]: datetime.fromisoformat(r[1]) for r in rows}

    def task_summaries(self) -> dict[str, TaskSummary]:
        """Per-task summary: last status and time, done, paused."""
        out: dict[str, TaskSummary] = {}
        for r in self._conn.execute("SELECT * FROM task_state"):
            out[r["task"]] = TaskSummary(
                task=r["task"],
                last_status=_status_or_none(r["last_status"]),
                last_run_at=from_db(r["last_run_at"]),
                done=bool(r["done"]),
                last_ok=None if r["last_ok"] is None else bool(r["last_ok"]),
                paused=bool(r["paused"]),
            )
        return out

    def last_ok(self, task: str) -> bool | None:
        """Whether the task's last finished run succeeded (None: no run yet)."""
        row = self._conn.execute(
            "SELECT last_ok FROM task_state WHERE task = ?", (task,)
        ).fetchone()
        return None if row is None or row[0] is None else bool(row[0])

    # -- runs ---------------------------------------------------------------------------------

    def get_run(self, run_id: str) -> RunRow | None:
        """The history row of ``run_id``, if there is one."""
        row = self._conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row_to_run(row)

    def runs_with_status(self, *statuses: RunStatus) -> list[RunRow]:
        """Rows in the given statuses, oldest first (FIFO order for ``queued``)."""
        marks = ",".join("?" * len(statuses))
        q = f"SELECT * FROM runs WHERE status IN ({marks}) ORDER BY seq"  # noqa: S608
        return [row_to_run(r) for r in self._conn.execute(q, statuses)]

    def recent_runs(
        self, task: str | None = None, limit: int = 20, status: RunStatus | None = None
    ) -> list[RunRow]:
        """History, newest first (of one task, in one status, when given)."""
        where, params = [], list[object]()
        if task is not None:
            where.append("task = ?")
            params.append(task)
        if status is not None:
            where.append("status = ?")
            params.append(status)
        cond = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self._conn.execute(
            f"SELECT * FROM runs {cond}ORDER BY seq DESC LIMIT ?",  # noqa: S608
            (*params, limit),
        )
        return [row_to_run(r) for r in rows]

    def last_success(self, task: str) -> RunRow | None:
        """The newest ``success`` run of ``task`` ({last_result}, continue_session, changed)."""
        row = self._conn.execute(
            "SELECT * FROM runs WHERE task = ? AND status = 'success' ORDER BY seq DESC LIMIT 1",
            (task,),
        ).fetchone()
        return None if row is None else row_to_run(row)

    def spend(self, task: str, p: Periods, now: datetime) -> Spent:
        """USD spent by runs that started in the task's day and month and in everyone's day and
        month: one statement reading only the spend slots and days of those periods (schema v4;
        at most a few hundred rows, whatever the history's length)."""
        q_slots = (
            "(SELECT TOTAL(cost_usd) FROM spend_slots WHERE task = ? AND slot >= ? AND slot < ?)"
        )
        q_tail = "(SELECT TOTAL(cost_usd) FROM spend_slots WHERE task = ? AND slot >= ?)"
        q_days = "(SELECT TOTAL(cost_usd) FROM spend_days WHERE task = ? AND day >= ? AND day < ?)"
        one = f"{q_slots} + {q_days} + {q_tail}"
        params: list[object] = []
        for who, start in (
            (task, p.task_day),
            (task, p.task_month),
            ("", p.all_day),
            ("", p.all_month),
        ):
            a, b, c = (to_db(t) for t in spans(start, now))
            params += [who, a, b, who, b, c, who, c]
        row = self._conn.execute(f"SELECT {one}, {one}, {one}, {one}", params).fetchone()
        return Spent(*(round(float(v), 9) for v in row))

    def cost_rows(
        self, task: str | None, since: datetime | None
    ) -> list[tuple[str, datetime, float | None, int | None, int | None]]:
        """(task, started_at, cost_usd, input_tokens, output_tokens) of runs that started since
        ``since`` (of one task when given), oldest first: what ``cost`` sums up."""
        where, params = ["started_at IS NOT NULL"], list[object]()
        if task is not None:
            where.append("task = ?")
            params.append(task)
        if since is not None:
            where.append("started_at >= ?")
            params.append(to_db(since))
        rows = self._conn.execute(
            "SELECT task, started_at, cost_usd, input_tokens, output_tokens FROM runs "  # noqa: S608
            f"WHERE {' AND '.join(where)} ORDER BY started_at",
            params,
        ).fetchall()
        return [(r[0], datetime.fromisoformat(r[1]), r[2], r[3], r[4]) for r in rows]

    def last_finished_run(self, task: str) -> RunRow | None:
        """The newest run of ``task`` that started and ended (for {last_run_*} variables)."""
        marks = ",".join("?" * len(FINISHED))
        row = self._conn.execute(
            f"SELECT * FROM runs WHERE task = ? AND status IN ({marks}) "  # noqa: S608
            "AND started_at IS NOT NULL ORDER BY seq DESC LIMIT 1",
            (task, *FINISHED),
        ).fetchone()
        return None if row is None else row_to_run(row)

    def orphaned_times(self) -> list[tuple[str, datetime]]:
        """Scheduled times whose run ended interrupted/lost and that have no catch-up yet."""
        rows = self._conn.execute(
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
        with self.tx() as tx:
            tx.first_seen(task, started_at)
            return tx.insert_manual_run(task, run_id, run_dir_for, pid, pid_create_time, started_at)

    def end_manual_run(
        self,
        run_id: str,
        status: RunStatus,
        exit_code: int | None,
        ended_at: datetime,
        cost_usd: float | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
    ) -> None:
        """Record the end of a run ``start_manual_run`` recorded, in its own transaction (no
        retry, no notification: ``execute TASK`` has none). KeyError for an unknown run."""
        run = self.get_run(run_id)
        if run is None:
            raise KeyError(run_id)
        with self.tx() as tx:
            tx.record_end(
                run,
                status,
                exit_code,
                ended_at,
                cost_usd=cost_usd,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
            )

    # -- trigger requests ---------------------------------------------------------------------

    def add_request(self, task: str, now: datetime) -> int:
        """Queue a ``trigger TASK`` request for the daemon in its own transaction; its id."""
        with self.tx() as tx:
            return tx.add_request(task, now)

    def request_pending(self, request_id: int) -> bool:
        """True while the daemon has not taken the request yet."""
        row = self._conn.execute("SELECT 1 FROM requests WHERE id = ?", (request_id,)).fetchone()
        return row is not None

    # -- stop requests ------------------------------------------------------------------------

    def add_stop_request(self, target: str, now: datetime) -> int:
        """Queue a ``stop RUN_ID|TASK`` request for the daemon in its own transaction; its id."""
        with self.tx() as tx:
            return tx.add_stop_request(target, now)

    def stop_answer(self, request_id: int) -> list[str] | None:
        """The run ids the daemon is stopping for the request, or None while it is pending.

        An answered request is removed once read."""
        row = self._conn.execute(
            "SELECT stopped FROM stop_requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        with self.tx() as tx:
            tx.forget_stop_request(request_id)
        return [r for r in str(row[0]).split(",") if r]
