"""What the dashboard shows, read from the state DB (read-only), the task files and run folders.

One ``Reader`` lives as long as the app: it keeps the parsed task files between requests (only
changed files are parsed again). Every method opens its own read-only connection, so the
threads Starlette runs handlers on never share one.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time as clock
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bassi_schedd.config.paths import Home
from bassi_schedd.config.tomlfile import read_checked_toml
from bassi_schedd.core.errors import TaskFileError, UserError
from bassi_schedd.core.records import RunRow, TaskSummary
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.ops.status import STALE_TICK_S, gather
from bassi_schedd.ops.tasklist import TaskLister, next_run
from bassi_schedd.ops.trigger import task_path
from bassi_schedd.store.lock import read_holder
from bassi_schedd.store.readview import ReadView, TaskStats
from bassi_schedd.store.spend import over_caps
from bassi_schedd.store.state import QueryError, StateDBError

STATS_DAYS = 30
# Many open pages poll the same lists: within this long they share one read of the task files
# and the history (an action from the dashboard itself clears it at once).
TASKS_TTL_S = 1.0
STATS_TTL_S = 5.0
MASK = "********"
# Besides env values, keys whose values are often credentials (a webhook URL holds its token).
_SECRET_KEY = re.compile(r"url|token|secret|password|api_key|headers", re.IGNORECASE)
ACTIVE = (RunStatus.RUNNING, RunStatus.QUEUED)


class NotFoundError(UserError):
    """No such task or run (404)."""


@dataclass(frozen=True)
class DaemonFacts:
    """Running or not, and how long ago it last ticked."""

    pid: int | None
    last_tick_age_s: float | None

    @property
    def stale(self) -> bool:
        age = self.last_tick_age_s
        return self.pid is not None and (age is None or age > STALE_TICK_S)


class Reader:
    """Reads for one BASSI_HOME; safe to call from several threads."""

    def __init__(self, home: Home):
        self.home = home
        self._lister = TaskLister(home)
        self._lister_lock = threading.Lock()
        self._rows: tuple[float, list[dict[str, Any]], bytes] | None = None
        self._stats: tuple[float, dict[str, TaskStats]] | None = None
        self._json: dict[str, tuple[dict[str, Any], bytes]] = {}

    def invalidate(self) -> None:
        """Forget the shared reads: the next request sees an action's effect at once."""
        self._rows = None
        self._stats = None

    @contextmanager
    def db(self) -> Iterator[ReadView | None]:
        """A read-only connection for one request (None: no state DB yet)."""
        view = ReadView.open_readonly(self.home)
        try:
            yield view
        except QueryError as e:
            raise StateDBError(f"cannot read the state database {self.home.state_db}: {e}") from e
        finally:
            if view is not None:
                view.close()

    # -- tasks ------------------------------------------------------------------------------

    def status_json(self) -> dict[str, Any]:
        """The ``status --json`` document."""
        return gather(self.home).to_json()

    def daemon(self, now: datetime) -> DaemonFacts:
        """The daemon's pid (None: not running) and the age of its last tick."""
        with self.db() as db:
            tick = db.get_meta("last_tick") if db is not None else None
        age = None
        if tick is not None:
            at = datetime.fromisoformat(tick)
            age = (now - (at if at.tzinfo else at.replace(tzinfo=UTC))).total_seconds()
        return DaemonFacts(read_holder(self.home), age)

    def tasks(self, now: datetime) -> list[dict[str, Any]]:
        """The ``list --json`` rows (with ``_``-keys for display)."""
        return self._tasks(now)[0]

    def tasks_json(self, now: datetime) -> bytes:
        """``GET /api/tasks``: the rows without display keys, as JSON bytes."""
        return self._tasks(now)[1]

    def _tasks(self, now: datetime) -> tuple[list[dict[str, Any]], bytes]:
        with self._lister_lock:
            cached = self._rows
            if cached is not None and clock.monotonic() - cached[0] < TASKS_TTL_S:
                return cached[1], cached[2]
            result, config = self._lister.load()
            summaries: dict[str, TaskSummary] = {}
            over: dict[str, str] = {}
            with self.db() as db:
                if db is not None:
                    summaries = db.task_summaries()
                # with no state DB yet, a cap of 0 is already spent
                over = over_caps(db, result.tasks.values(), config, now)
            rows = self._lister.rows(result, summaries, over, now)
            old, self._json = self._json, {}
            body = b"[" + b",".join(self._row_json(r, old) for r in rows) + b"]"
            self._rows = (clock.monotonic(), rows, body)
            return rows, body

    def _row_json(self, row: dict[str, Any], old: dict[str, tuple[dict[str, Any], bytes]]) -> bytes:
        # The lister hands back the same row object while its task is unchanged: its JSON too.
        cached = old.get(row["name"])
        if cached is not None and cached[0] is row:
            self._json[row["name"]] = cached
            return cached[1]
        data = json.dumps({k: v for k, v in row.items() if not k.startswith("_")}).encode()
        self._json[row["name"]] = (row, data)
        return data

    def stats(self, now: datetime, task: str | None = None) -> dict[str, TaskStats]:
        """Success and cost per task over the last 30 days (all tasks: shared for a while)."""
        cached = self._stats
        if task is None and cached is not None and clock.monotonic() - cached[0] < STATS_TTL_S:
            return cached[1]
        with self.db() as db:
            if db is None:
                return {}
            stats = db.stats_since(now - timedelta(days=STATS_DAYS), task)
        if task is None:
            self._stats = (clock.monotonic(), stats)
        return stats

    def check_task(self, name: str) -> Path:
        """``tasks/NAME.toml``; NotFoundError for a bad name or no file (the folder's own
        problem stays a TaskFileError)."""
        try:
            return Path(task_path(self.home, name))
        except TaskFileError:
            raise
        except UserError as e:
            raise NotFoundError(str(e)) from None

    def task(self, name: str, now: datetime) -> dict[str, Any]:
        """One task: its ``list`` row, the file with secrets masked, the next 5 times, stats."""
        path = self.check_task(name)
        row = next((r for r in self.tasks(now) if r["name"] == name), None)
        if row is None:
            raise NotFoundError(f"no task named '{name}'")
        out = {k: v for k, v in row.items() if not k.startswith("_")}
        try:
            data, _, _ = read_checked_toml(path)
            out["definition"] = mask(data)
        except TaskFileError as e:
            out["definition"] = None
            out["error"] = out["error"] or str(e)
        out["next_runs"] = self._next_runs(name, now)
        stats = self.stats(now, name).get(name, TaskStats(0, 0, 0.0))
        out["stats_30d"] = {
            "finished": stats.finished,
            "succeeded": stats.succeeded,
            "success_rate": stats.success_rate,
            "cost_usd": round(stats.cost_usd, 6),
        }
        return out

    def _next_runs(self, name: str, now: datetime, n: int = 5) -> list[str]:
        from bassi_schedd.config.loader import load_config, load_task_file
        from bassi_schedd.core.schedule import next_times

        try:
            spec = load_task_file(self.check_task(name), load_config(self.home))
        except UserError:
            return []
        if not spec.enabled:
            return []
        first = next_run(spec, now)
        if first is None:
            return []
        later = next_times(spec.schedule, spec.zone, first, n - 1)
        return [t.isoformat() for t in [first, *later]]

    # -- runs -------------------------------------------------------------------------------

    def task_runs(self, name: str, limit: int, before: str | None) -> list[RunRow]:
        """A page of the task's history, newest first."""
        with self.db() as db:
            return [] if db is None else db.task_runs(name, limit, before)

    def run(self, run_id: str) -> RunRow:
        """The history row of ``run_id``; NotFoundError if there is none."""
        with self.db() as db:
            row = db.get_run(run_id) if db is not None else None
        if row is None:
            raise NotFoundError(f"no run with id '{run_id}'")
        return row

    def run_json(self, run_id: str) -> dict[str, Any]:
        """The history row plus ``result`` (result.json, None when absent or unreadable)."""
        row = self.run(run_id)
        out = row.public()
        out["result"] = read_json(run_file(row, "result.json"))
        return out

    def output(self, row: RunRow, offset: int, max_bytes: int) -> tuple[bytes, int]:
        """Bytes of output.log from ``offset`` (at most ``max_bytes``) and the next offset."""
        path = run_file(row, "output.log")
        if path is None:
            return b"", offset
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read(max_bytes)
        except FileNotFoundError:
            return b"", offset
        return data, offset + len(data)

    def output_size(self, row: RunRow) -> int:
        """The size of the run's output.log now (0 when there is none)."""
        path = run_file(row, "output.log")
        try:
            return 0 if path is None else os.path.getsize(path)
        except OSError:
            return 0


def run_file(row: RunRow, name: str) -> Path | None:
    """A file of the run's folder, None when the run has no folder."""
    return None if not row.run_dir else Path(row.run_dir) / name


def read_json(path: Path | None, max_bytes: int = 1 << 20) -> Any:
    """A small JSON file, or None when absent, too large or not JSON."""
    if path is None:
        return None
    try:
        if os.path.getsize(path) > max_bytes:
            return None
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_text(path: Path | None, max_bytes: int) -> tuple[str, bool] | None:
    """The last ``max_bytes`` of a text file and whether it was cut; None when absent."""
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return None
    return data.decode("utf-8", errors="replace"), size > max_bytes


def mask(value: Any, key: str = "") -> Any:
    """A task definition with env values and likely credentials replaced by ``********``."""
    if isinstance(value, dict):
        if key == "env":
            return {k: MASK for k in value}
        return {k: mask(v, k) for k, v in value.items()}
    if key and _SECRET_KEY.search(key):
        return MASK
    if isinstance(value, list):
        return [mask(v) for v in value]
    if isinstance(value, date | time):  # TOML dates and times (datetime is a date)
        return value.isoformat()
    return value
