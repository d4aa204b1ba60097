"""Read-only access to the state DB for the dashboard: a connection that cannot write.

The dashboard is a second process next to the daemon: it must never take a write lock the
daemon waits on, nor create or migrate the file. ``mode=ro`` makes SQLite refuse any write.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from bassi_schedd.config.paths import Home
from bassi_schedd.core.records import RunRow, to_db
from bassi_schedd.core.runstatus import FINISHED, RunStatus
from bassi_schedd.store.schema import SCHEMA_VERSION, StateDBError
from bassi_schedd.store.state import StateDB, row_to_run


@dataclass(frozen=True)
class TaskStats:
    """A task's runs over a window: how many ended, how many succeeded, what they cost."""

    finished: int
    succeeded: int
    cost_usd: float

    @property
    def success_rate(self) -> float | None:
        """Share of finished runs that succeeded; None when none finished."""
        return None if self.finished == 0 else self.succeeded / self.finished


class ReadView(StateDB):
    """A read-only ``StateDB`` with the extra queries the dashboard needs."""

    @classmethod
    def open_readonly(cls, home: Home, *, timeout_s: float = 5.0) -> ReadView | None:
        """The state DB of ``home`` opened read-only, or None when there is none yet.

        Raises StateDBError (one sentence naming the file) when it cannot be read.
        """
        path = home.state_db
        if not path.exists():
            return None
        try:
            conn = sqlite3.connect(
                f"file:{path}?mode=ro", uri=True, timeout=timeout_s, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as e:
            raise StateDBError(f"cannot read the state database {path}: {e}") from None
        if version > SCHEMA_VERSION:
            conn.close()
            raise StateDBError(
                f"the state database {path} was written by a newer bassi-schedd "
                f"(schema {version}); upgrade bassi-schedd to read it"
            )
        return cls(conn, path)

    def task_runs(self, task: str, limit: int, before_run_id: str | None = None) -> list[RunRow]:
        """A page of ``task``'s history, newest first, older than ``before_run_id`` if given."""
        if before_run_id is None:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE task = ? ORDER BY seq DESC LIMIT ?", (task, limit)
            )
        else:
            rows = self._conn.execute(
                "SELECT * FROM runs WHERE task = ? AND seq < "
                "(SELECT seq FROM runs WHERE run_id = ?) ORDER BY seq DESC LIMIT ?",
                (task, before_run_id, limit),
            )
        return [row_to_run(r) for r in rows]

    def stats_since(self, since: datetime, task: str | None = None) -> dict[str, TaskStats]:
        """Per task: runs that started at or after ``since`` and ended, successes, cost."""
        marks = ",".join("?" * len(FINISHED))
        where = "started_at >= ?" + (" AND task = ?" if task is not None else "")
        q = (
            f"SELECT task, SUM(status IN ({marks})), SUM(status = 'success'), "  # noqa: S608
            f"TOTAL(cost_usd) FROM runs WHERE {where} GROUP BY task"
        )
        params: tuple[object, ...] = (*FINISHED, to_db(since))
        if task is not None:
            params += (task,)
        return {
            r[0]: TaskStats(int(r[1] or 0), int(r[2] or 0), float(r[3] or 0.0))
            for r in self._conn.execute(q, params)
        }

    def max_seq(self) -> int:
        """The newest row's sequence number (0 for an empty history)."""
        row = self._conn.execute("SELECT MAX(seq) FROM runs").fetchone()
        return int(row[0] or 0)

    def active_runs(self) -> list[RunRow]:
        """Rows queued or running (an indexed read: cheap to poll)."""
        return self.runs_with_status(RunStatus.RUNNING, RunStatus.QUEUED)

    def runs_after(self, seq: int) -> list[RunRow]:
        """Rows inserted after ``seq``, oldest first."""
        rows = self._conn.execute("SELECT * FROM runs WHERE seq > ? ORDER BY seq", (seq,))
        return [row_to_run(r) for r in rows]

    def runs_by_id(self, run_ids: list[str]) -> list[RunRow]:
        """The rows of ``run_ids`` that exist, oldest first."""
        if not run_ids:
            return []
        marks = ",".join("?" * len(run_ids))
        q = f"SELECT * FROM runs WHERE run_id IN ({marks}) ORDER BY seq"  # noqa: S608
        return [row_to_run(r) for r in self._conn.execute(q, run_ids)]


__all__ = ["ReadView", "StateDBError", "TaskStats"]
