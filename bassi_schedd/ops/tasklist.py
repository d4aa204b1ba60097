"""The rows of ``list --json`` (and of the dashboard's ``GET /api/tasks``): every task file,
valid or not, with its schedule, next run, last status and state.

A long-lived reader (the dashboard) keeps a :class:`TaskLister`: its loader parses only changed
files, and a task's next run is computed again only once that time has passed or the task
changed, so a page of 1,000 tasks costs a directory scan rather than 1,000 parses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bassi_schedd.config.loader import LoadResult, TaskLoader
from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config
from bassi_schedd.config.taskfile import NAME_RE
from bassi_schedd.core.errors import TaskFileError, printable
from bassi_schedd.core.records import TaskSummary
from bassi_schedd.core.schedule import next_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.store.spend import over_caps
from bassi_schedd.store.state import QueryError, StateDBError, open_existing


def fmt_time(dt: datetime) -> str:
    """A scheduled time as ``list`` and ``next`` print it (in the task's zone)."""
    return dt.strftime("%a %Y-%m-%d %H:%M %Z")


def next_run(spec: TaskSpec, now: datetime) -> datetime | None:
    """The task's first scheduled time after ``now``, in its zone."""
    times = next_times(spec.schedule, spec.zone, now.astimezone(spec.zone), 1)
    return times[0] if times else None


def read_state(
    home: Home,
    tasks: dict[str, TaskSpec],
    config: DaemonConfig,
    now: datetime,
    warn: Callable[[str], None],
) -> tuple[dict[str, TaskSummary], dict[str, str]]:
    """Per-task state from the daemon's DB, and the tasks over a spend cap (SPEC 10); empty
    when there is no DB (yet) or it is unreadable."""
    try:
        db = open_existing(home)
        if db is None:
            return {}, over_caps(None, tasks.values(), config, now)  # a cap of 0 is spent
        try:
            return dict(db.task_summaries()), over_caps(db, tasks.values(), config, now)
        finally:
            db.close()
    except (StateDBError, QueryError, OSError) as e:
        warn(f"cannot read {home.state_db} ({e}); last status not shown")
        return {}, {}


class TaskLister:
    """Builds the ``list --json`` rows; keep one to reuse parsed files between calls."""

    def __init__(self, home: Home):
        self.home = home
        self._loader: TaskLoader | None = None
        self._next: dict[str, tuple[TaskSpec, datetime | None]] = {}
        # name -> (what the row was made from, the row): a task whose spec (same object: the
        # loader keeps unchanged ones), summary and next run did not change keeps its row (rows
        # are shared between calls: callers copy, never change them)
        self._made: dict[str, tuple[tuple[object, ...], dict[str, Any]]] = {}

    def load(self) -> tuple[LoadResult, DaemonConfig]:
        """Re-read the task files that changed; the folder's error if it is refused."""
        config = load_config(self.home)
        if self._loader is None:
            self._loader = TaskLoader(self.home, config)
        elif self._loader.config != config:
            self._loader.set_config(config)
        result = self._loader.load()
        if result.folder_error is not None:
            raise result.folder_error  # nothing in the folder is loaded: say why
        return result, config

    def rows(
        self,
        result: LoadResult,
        summaries: dict[str, TaskSummary],
        over: dict[str, str],
        now: datetime,
    ) -> list[dict[str, Any]]:
        """One row per task file, sorted by name; keys starting with ``_`` are for display."""
        rows: list[dict[str, Any]] = []
        made: dict[str, tuple[tuple[object, ...], dict[str, Any]]] = {}
        for name in sorted(set(result.tasks) | set(result.errors)):
            summary = summaries.get(name)
            spec = result.tasks.get(name)
            source = spec if spec is not None else result.errors[name]
            enabled = spec is not None and spec.enabled and not (summary and summary.done)
            nxt = self._next_run(spec, now) if spec is not None and enabled else None
            key = (source, summary, nxt, over.get(name))
            old = self._made.get(name)
            if old is not None and old[0][0] is source and old[0][1:] == key[1:]:
                made[name] = old
                rows.append(old[1])
                continue
            row = self._row(name, spec, result.errors.get(name), summary, nxt)
            row["over_budget"] = over.get(name)
            made[name] = (key, row)
            rows.append(row)
        self._made = made
        self._next = {k: v for k, v in self._next.items() if k in result.tasks}
        return rows

    def _row(
        self,
        name: str,
        spec: TaskSpec | None,
        err: TaskFileError | None,
        summary: TaskSummary | None,
        nxt: datetime | None,
    ) -> dict[str, Any]:
        last_at = summary.last_run_at if summary is not None else None
        row: dict[str, Any] = {
            "name": name,
            "file": None,
            "description": None,
            "schedule": None,
            "timezone": None,
            "kind": None,
            "state": "invalid",
            "next_run": None,
            "last_status": summary.last_status if summary is not None else None,
            "last_run_at": last_at.astimezone(UTC).isoformat() if last_at else None,
            "error": None,
        }
        if spec is None:
            assert err is not None
            row.update(file=printable(err.path), error=str(err))
            if not NAME_RE.match(name):
                row["name"] = Path(name).name
            return row
        done = summary is not None and summary.done
        state = "done" if done else ("enabled" if spec.enabled else "paused")
        row.update(
            file=str(spec.path),
            description=spec.description,
            schedule=spec.schedule.text,
            timezone=spec.timezone,
            kind="agent" if spec.is_agent else "command",
            state=state,
            next_run=nxt.isoformat() if nxt else None,
            _next=fmt_time(nxt) if nxt else "-",
        )
        return row

    def _next_run(self, spec: TaskSpec, now: datetime) -> datetime | None:
        # The first time after `now` is still the first time after a later `now` as long as
        # that time has not come: the cached answer is exact, not an approximation.
        cached = self._next.get(spec.name)
        if cached is not None and cached[0] is spec and cached[1] is not None and cached[1] > now:
            return cached[1]
        nxt = next_run(spec, now)
        self._next[spec.name] = (spec, nxt)
        return nxt


def task_rows(home: Home, warn: Callable[[str], None]) -> list[dict[str, Any]]:
    """The ``list --json`` rows of ``home`` now (a one-off: the CLI)."""
    lister = TaskLister(home)
    result, config = lister.load()
    now = datetime.now(UTC)
    summaries, over = read_state(home, result.tasks, config, now, warn)
    return lister.rows(result, summaries, over, now)
