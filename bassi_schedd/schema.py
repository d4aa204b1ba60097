"""The state store's schema and the statement that enforces "each scheduled time once".

A partial unique index allows each (task, scheduled_for) at most one live disposition row
(queued, running, finished, missed, coalesced, skipped); only rows that ended `interrupted` or
`lost` may be followed by a second one (the catch-up of that time). Migrations are keyed by the
version they produce and run in order on open.
"""

from __future__ import annotations

from datetime import datetime

from bassi_schedd.records import NewRun, to_db

SCHEMA_VERSION = 1

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

MIGRATIONS: dict[int, str] = {1: _SCHEMA_V1}

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
