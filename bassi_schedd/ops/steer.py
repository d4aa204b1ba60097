"""Steering a task: ``trigger`` (ask the running daemon for a manual run) and ``pause``/``resume``
(flip ``enabled`` in its file, every other byte kept). The CLI and the dashboard both call these,
so a task is steered the same way whichever one the user picks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config, system_timezone
from bassi_schedd.config.taskfile import NAME_RE, load_task_file, tasks_dir_error
from bassi_schedd.config.tomledit import TomlEditError, set_top_level_bool
from bassi_schedd.config.tomlfile import read_checked_toml
from bassi_schedd.core.errors import TaskFileError, UserError
from bassi_schedd.core.spec import DaemonConfig
from bassi_schedd.store.lock import read_holder
from bassi_schedd.store.state import QueryError, RunStatus, StateDB, StateDBError, open_existing

# The daemon takes a request at once when woken; this long means it is stuck or stopping.
TRIGGER_WAIT_S = 10.0


class NoSuchTaskError(UserError):
    """The name is not a task (bad name, or no file)."""


class NotRunningError(UserError):
    """The action needs the daemon, and none runs (or it went away)."""


class RefusedError(UserError):
    """The task exists but cannot be steered as asked (its file is invalid or cannot be edited)."""


def task_path(home: Home, name: str) -> Path:
    """``tasks/NAME.toml``, after checking the name, the file and its folder."""
    if not NAME_RE.match(name):
        raise NoSuchTaskError(
            f"'{name}' is not a task name (lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit)"
        )
    path = home.tasks_dir / f"{name}.toml"
    if not path.is_file():
        raise NoSuchTaskError(f"no task named '{name}' (no file {path})")
    folder_error = tasks_dir_error(home.tasks_dir)
    if folder_error is not None:
        raise folder_error
    return path


def request_trigger(home: Home, name: str, warn: Callable[[str], None]) -> int:
    """Queue a manual run for the running daemon, wake it with SIGUSR1, wait until it took it;
    return the daemon's pid. ``warn`` hears about a schedd.toml the daemon does not use.

    The task file is validated first: the daemon cannot run a task it cannot load, so saying
    "triggered" for one would be a lie (it logs ``trigger.refused`` if one reaches it anyway).
    """
    path = task_path(home, name)
    try:
        config = load_config(home)
    except TaskFileError as e:
        # The running daemon keeps the settings it has (config.invalid); the task is checked
        # against the defaults instead, and the user hears about the file.
        warn(f"{e}; the daemon keeps the settings in use")
        config = DaemonConfig(timezone=system_timezone())
    try:
        load_task_file(path, config)
    except TaskFileError as e:
        raise RefusedError(f"cannot trigger '{name}': {e}") from None
    pid = read_holder(home)
    if pid is None:
        raise NotRunningError(
            f"no daemon is running for {home.root}; run the task in the foreground with "
            f"'bassi-schedd execute {name}'"
        )
    db = open_existing(home)
    if db is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # it checks its state DB when woken, and stops
        raise NotRunningError(
            f"the state database {home.state_db} was deleted under the running daemon "
            f"(pid {pid}), which stops now; start it again, then trigger '{name}'"
        )
    try:
        try:
            request_id = db.add_request(name, datetime.now(UTC))
        except QueryError as e:
            raise UserError(f"cannot queue the request in {home.state_db}: {e}") from None
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            gone = f"the daemon (pid {pid}) exited before it could be woken"
            raise NotRunningError(gone) from None
        _wait_taken(home, db, request_id, pid)
    finally:
        db.close()
    return pid


def _wait_taken(home: Home, db: StateDB, request_id: int, pid: int) -> None:
    """Return once the daemon took the request: "triggered" is never said of a request that
    no daemon reads (a daemon stopping, or one whose state DB was deleted under it)."""
    deadline = time.monotonic() + TRIGGER_WAIT_S
    while db.request_pending(request_id):
        if read_holder(home) != pid:
            raise NotRunningError(
                f"the daemon (pid {pid}) stopped before it took the request (see "
                "'bassi-schedd logs'); the next daemon to start runs it"
            )
        if time.monotonic() > deadline:
            raise NotRunningError(
                f"the daemon (pid {pid}) has not taken the request within {TRIGGER_WAIT_S:.0f} s "
                "(see 'bassi-schedd logs'); it runs the task when it does"
            )
        time.sleep(0.05)


# -- pause / resume ------------------------------------------------------------------------------


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
    link = task_path(home, name)
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
