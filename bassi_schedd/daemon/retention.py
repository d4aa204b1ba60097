"""Run-folder retention: ``runs/NAME/RUN_ID`` folders go after ``keep_runs_days`` days or beyond
the ``keep_runs`` newest per task. History rows in the state DB always stay.

A folder's age comes from its run id (``YYYYmmddTHHMMSSZ-xxxxxx``, the UTC second the run was
scheduled or requested), not from its mtime, which any ``ls``-and-edit or backup restore can
change. Entries whose names are not run ids, and symlinks, are never touched: we delete only
what we created.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

from bassi_schedd.config.paths import Home

log = structlog.get_logger()

RUN_ID_RE = re.compile(r"^(\d{8}T\d{6}Z)-[0-9a-f]{6}$")


def run_id_time(run_id: str) -> datetime | None:
    """The UTC instant encoded at the start of a run id, or None if it is not a run id."""
    m = RUN_ID_RE.match(run_id)
    if m is None:
        return None
    try:
        return datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def prune_runs(
    home: Home,
    keep_runs_days: int,
    keep_runs: int,
    now: datetime,
    active_run_ids: Collection[str],
) -> int:
    """Remove old run folders; return how many were removed.

    Per task, the ``keep_runs`` newest folders are candidates to keep, and of those only the
    ones younger than ``keep_runs_days`` stay. A folder named in ``active_run_ids`` (running or
    queued) is never removed and counts towards ``keep_runs``.
    """
    if keep_runs_days < 1 or keep_runs < 1:
        raise ValueError("keep_runs_days and keep_runs must be at least 1")
    cutoff = now - timedelta(days=keep_runs_days)
    removed = 0
    try:
        task_dirs = [e for e in os.scandir(home.runs_dir) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return 0
    for task_dir in sorted(task_dirs, key=lambda e: e.name):
        path = Path(task_dir.path)
        removed += _prune_task(path, cutoff, keep_runs, active_run_ids)
        if not (home.tasks_dir / f"{task_dir.name}.toml").exists():
            _remove_if_empty(path)  # the task is gone and so are all its folders
    return removed


def _prune_task(
    task_dir: Path, cutoff: datetime, keep_runs: int, active_run_ids: Collection[str]
) -> int:
    runs: list[tuple[datetime, str]] = []
    try:
        with os.scandir(task_dir) as it:
            for e in it:
                at = run_id_time(e.name)
                if at is not None and e.is_dir(follow_symlinks=False):
                    runs.append((at, e.name))
    except OSError as e:
        log.warning("runs.prune_failed", path=str(task_dir), error=e.strerror or str(e))
        return 0
    runs.sort(reverse=True)  # newest first; ties broken by the random suffix, stably
    removed = 0
    for index, (at, run_id) in enumerate(runs):
        if run_id in active_run_ids:
            continue
        if index < keep_runs and at >= cutoff:
            continue
        path = task_dir / run_id
        try:
            shutil.rmtree(path)
        except OSError as e:
            log.warning("runs.prune_failed", path=str(path), error=e.strerror or str(e))
            continue
        removed += 1
    return removed


def _remove_if_empty(path: Path) -> None:
    try:
        path.rmdir()  # fails (harmlessly) unless empty
    except OSError:
        pass
