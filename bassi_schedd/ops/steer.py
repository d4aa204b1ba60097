"""Steering a task: ``pause``/``resume`` flip ``enabled`` in its file, every other byte kept
(``trigger`` is ``ops/trigger.py``, ``stop`` is ``ops/stop.py``). The CLI and the dashboard both
call these, so a task is steered the same way whichever one the user picks.
"""

from __future__ import annotations

import os
import signal
import stat
from dataclasses import dataclass
from pathlib import Path

from bassi_schedd.config.paths import Home
from bassi_schedd.config.tomledit import TomlEditError, set_top_level_bool
from bassi_schedd.config.tomlfile import read_checked_toml
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops.trigger import task_path
from bassi_schedd.store.lock import read_holder
from bassi_schedd.store.state import QueryError, RunStatus, StateDBError, open_existing


class RefusedError(UserError):
    """The task exists but its file cannot be edited as asked."""


@dataclass(frozen=True)
class EnableResult:
    """What ``set_enabled`` did: ``changed`` False when the file already said so."""

    name: str
    enabled: bool
    changed: bool
    path: Path
    daemon_pid: int | None  # the daemon told to reload, if one runs
    running: tuple[str, ...]  # run ids still going after a pause


def set_enabled(home: Home, name: str, enabled: bool) -> EnableResult:
    """Flip ``enabled`` in the task file (every other byte kept) and tell the daemon."""
    link = Path(task_path(home, name))
    # Edit the file a symlink points to: replacing the link would cut it from its real home.
    path = Path(os.path.realpath(link))
    data, text, st = read_checked_toml(path)
    verb = "resume" if enabled else "pause"
    if enabled and "enabled" not in data:
        new_text = text  # no `enabled` key means enabled: nothing to write
    else:
        try:
            new_text = set_top_level_bool(text, "enabled", enabled)
        except TomlEditError as e:
            raise RefusedError(f"cannot {verb} '{name}': {link}: {e}; edit it by hand") from None
    if new_text == text:
        return EnableResult(name, enabled, False, link, None, ())
    try:
        _replace_keeping_mode(path, new_text.encode("utf-8"), st)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None
    pid = read_holder(home)
    if pid is not None:
        try:
            os.kill(pid, signal.SIGHUP)  # apply now rather than at the next minute's tick
        except ProcessLookupError:
            pid = None
    running = () if enabled else tuple(_running_runs(home, name))
    return EnableResult(name, enabled, True, link, pid, running)


def _running_runs(home: Home, name: str) -> list[str]:
    try:
        db = open_existing(home)
        if db is None:
            return []
        try:
            return [r.run_id for r in db.runs_with_status(RunStatus.RUNNING) if r.task == name]
        finally:
            db.close()
    except (StateDBError, QueryError, OSError):
        return []  # only a courtesy note: the pause itself is done


def _replace_keeping_mode(path: Path, data: bytes, st: os.stat_result) -> None:
    """Write ``data`` over ``path`` atomically, with the file's mode; refuse if it changed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # dot: the loader ignores it
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        now = os.stat(path)
        if (now.st_ino, now.st_size, now.st_mtime_ns) != (st.st_ino, st.st_size, st.st_mtime_ns):
            raise RefusedError(f"{path} changed while it was being edited; try again")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)  # the rename itself survives a power cut
    finally:
        os.close(dir_fd)
