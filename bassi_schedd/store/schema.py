"""The state store's file: opening, the schema and its migrations, inserting a run row.

A partial unique index allows each (task, scheduled_for) at most one live disposition row
(queued, running, finished, missed, coalesced, skipped); only rows that ended `interrupted` or
`lost` may be followed by a second one (the catch-up of that time). Migrations are keyed by the
version they produce and run in order on open. A file that cannot be used (damaged, locked too
long, from a newer version) is a StateDBError: one sentence naming it, never overwritten.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from bassi_schedd.config.paths import FILE_MODE, make_private_dir
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.records import NewRun, reroll_run_id, to_db

SCHEMA_VERSION = 4

_SCHEMA_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE task_state (
    task TEXT PRIMARY KEY,
    first_seen TEXT NOT NULL,
    last_checked TEXT NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    paused INTEGER NOT NULL DEFAULT 0,
    last_status TEXT,
    last_run_at TEXT,
    last_ok INTEGER
);
CREATE TABLE runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    task TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_for TEXT,
    started_at TEXT,
    ended_at TEXT,
    duration_s REAL,
    status TEXT NOT NULL,
    exit_code INTEGER,
    attempt INTEGER NOT NULL DEFAULT 1,
    cost_usd REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    run_dir TEXT,
    pid INTEGER,
    pid_create_time REAL,
    not_before TEXT,
    sequential INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    detail TEXT
);
CREATE UNIQUE INDEX runs_one_per_time ON runs (task, scheduled_for)
    WHERE trigger IN ('schedule', 'catchup') AND status NOT IN ('interrupted', 'lost');
CREATE INDEX runs_by_task ON runs (task, seq);
CREATE INDEX runs_active ON runs (status) WHERE status IN ('running', 'queued');
CREATE TABLE requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task TEXT NOT NULL,
    requested_at TEXT NOT NULL
);
"""

# v2: `execute TASK` rows say so in their own column. They used to be told apart by a missing
# pid_create_time, so they could not keep one, and a reused pid made a dead run look alive forever.
_SCHEMA_V2 = """
ALTER TABLE runs ADD COLUMN foreground INTEGER NOT NULL DEFAULT 0;
UPDATE runs SET foreground = 1
    WHERE trigger = 'manual' AND status = 'running' AND pid_create_time IS NULL AND pid IS NOT NULL
"""

# v3: why the daemon is stopping a run gets its own column. v2 wrote it over `detail` as
# "stopping: REASON", which lost the row's detail and hid a state in free text.
_SCHEMA_V3 = """
ALTER TABLE runs ADD COLUMN stop_reason TEXT;
UPDATE runs SET stop_reason = substr(detail, 11), detail = NULL
    WHERE substr(detail, 1, 10) = 'stopping: '
"""

# v4 (SPEC 10, agent controls): the sha256 of a success's result (notify on = ["changed"]);
# `stop` requests; and the spend the budget check reads, kept per task (and for all tasks under
# task '') in 15-minute UTC slots and UTC days by start time (core/budget.py says why), filled
# here from the history and then by every run's end (Tx.record_end).
_SLOT = (
    "strftime('%Y-%m-%dT%H:', started_at) || "
    "printf('%02d', CAST(strftime('%M', started_at) AS INTEGER) / 15 * 15) || ':00+00:00'"
)
_DAY = "strftime('%Y-%m-%dT00:00:00+00:00', started_at)"
_COSTED = "FROM runs WHERE cost_usd IS NOT NULL AND started_at IS NOT NULL"
_SCHEMA_V4 = f"""
ALTER TABLE runs ADD COLUMN result_sha256 TEXT;
CREATE TABLE stop_requests (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    stopped TEXT
);
CREATE TABLE spend_slots (
    task TEXT NOT NULL, slot TEXT NOT NULL, cost_usd REAL NOT NULL, PRIMARY KEY (task, slot)
) WITHOUT ROWID;
CREATE TABLE spend_days (
    task TEXT NOT NULL, day TEXT NOT NULL, cost_usd REAL NOT NULL, PRIMARY KEY (task, day)
) WITHOUT ROWID;
INSERT INTO spend_slots SELECT task, {_SLOT}, SUM(cost_usd) {_COSTED} GROUP BY 1, 2;
INSERT INTO spend_slots SELECT '', {_SLOT}, SUM(cost_usd) {_COSTED} GROUP BY 1, 2;
INSERT INTO spend_days SELECT task, {_DAY}, SUM(cost_usd) {_COSTED} GROUP BY 1, 2;
INSERT INTO spend_days SELECT '', {_DAY}, SUM(cost_usd) {_COSTED} GROUP BY 1, 2
"""

MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1, 2: _SCHEMA_V2, 3: _SCHEMA_V3, 4: _SCHEMA_V4}

ID_TRIES = 20  # fresh random parts tried before a taken run id is an error
# The conflict target names the partial index, so only "this time already has its live row" is
# skipped; any other constraint (a taken run id) still raises.
INSERT_RUN = (
    "INSERT INTO runs (run_id, task, trigger, scheduled_for, status, attempt, not_before, "
    "sequential, created_at, detail) VALUES (?,?,?,?,?,?,?,?,?,?) "
    "ON CONFLICT (task, scheduled_for) WHERE trigger IN ('schedule', 'catchup') "
    "AND status NOT IN ('interrupted', 'lost') DO NOTHING"
)


def run_values(r: NewRun, run_id: str, now: datetime) -> tuple[object, ...]:
    """The INSERT_RUN parameters of a new row, under ``run_id``."""
    return (
        run_id,
        r.task,
        r.trigger,
        to_db(r.scheduled_for),
        r.status,
        r.attempt,
        to_db(r.not_before),
        int(r.sequential),
        to_db(now),
        r.detail,
    )


_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """True for "no space left" from the OS or SQLite."""
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    if isinstance(exc, sqlite3.OperationalError):
        # SHMSIZE: no room for the WAL index, which opening a WAL database needs.
        code = getattr(exc, "sqlite_errorcode", None)
        full = code in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR_SHMSIZE)
        return full or "database or disk is full" in str(exc)
    return getattr(exc, "disk_full", False) is True  # a StateDBError that came from one


# What a statement on an open state DB may raise (locked too long, damaged, a full disk). Other
# packages catch it by this name, so that only the store imports sqlite3.
QueryError = sqlite3.Error


class StateDBError(UserError):
    """The state database cannot be used; the message is one sentence naming the file."""

    disk_full = False  # True when it failed for want of space (the daemon waits for room)


def connect(path: Path, timeout_s: float) -> sqlite3.Connection:
    """A connection to the state DB at ``path``, created and migrated as needed (WAL)."""
    try:
        make_private_dir(path.parent)
        if not path.exists():
            path.touch(mode=FILE_MODE)
        conn = sqlite3.connect(
            str(path), timeout=timeout_s, isolation_level=None, check_same_thread=False
        )
    except (sqlite3.Error, OSError) as e:
        err = StateDBError(f"cannot read the state database {path}: {e}")
        err.disk_full = is_disk_full(e)
        raise err from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across process crashes in WAL mode; only power loss can drop
        # the last commits, which the at-most-once rule tolerates (it re-checks nothing twice).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        _migrate(conn, path)
    except sqlite3.DatabaseError as e:
        conn.close()
        hint = " (if it is damaged, move it aside: a new one starts an empty history)"
        locked = isinstance(e, sqlite3.OperationalError)
        err = StateDBError(f"cannot read the state database {path}: {e}{'' if locked else hint}")
        err.disk_full = is_disk_full(e)
        raise err from None
    except StateDBError:
        conn.close()
        raise
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StateDBError(
                f"the state database {path} was written by a newer bassi-schedd "
                f"(schema {version}); upgrade bassi-schedd to use it"
            )
        for v in range(version + 1, SCHEMA_VERSION + 1):
            for stmt in MIGRATIONS[v].split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {v}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def insert_run(
    execute: Callable[[str, Sequence[object]], sqlite3.Cursor],
    sql: str,
    run_id: str,
    params_for: Callable[[str], tuple[object, ...]],
) -> tuple[str, int]:
    """Run one insert of a run row, re-drawing a taken run id; return (id used, rows inserted)."""
    for _ in range(ID_TRIES):
        try:
            return run_id, execute(sql, params_for(run_id)).rowcount
        except sqlite3.IntegrityError as e:
            if "UNIQUE constraint failed: runs.run_id" not in str(e):
                raise
            run_id = reroll_run_id(run_id)
    raise sqlite3.IntegrityError(f"no free run id like {run_id} after {ID_TRIES} tries")
