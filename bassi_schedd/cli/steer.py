"""``trigger TASK``, ``pause TASK``, ``resume TASK``: steering a task from the command line."""

from __future__ import annotations

import argparse
import os
import signal
import stat
import sys
from pathlib import Path

from bassi_schedd.config.paths import Home
from bassi_schedd.config.tomledit import TomlEditError, set_top_level_bool
from bassi_schedd.config.tomlfile import read_checked_toml
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops.trigger import task_path
from bassi_schedd.store.lock import read_holder


def trigger(home: Home, name: str) -> int:
    """Queue a manual run for the running daemon and wait until it took it (ops/trigger.py)."""
    from bassi_schedd.ops.trigger import request_trigger

    pid = request_trigger(home, name, warn=lambda text: print(text, file=sys.stderr))
    print(f"triggered {name} (daemon pid {pid})")
    return 0


# -- pause / resume ------------------------------------------------------------------------------


def set_enabled(home: Home, name: str, enabled: bool) -> int:
    """Flip ``enabled`` in the task file (every other byte kept) and tell the daemon."""
    link = Path(task_path(home, name))
    # Edit the file a symlink points to: replacing the link would cut it from its real home.
    path = Path(os.path.realpath(link))
    data, text, st = read_checked_toml(path)
    verb = "resumed" if enabled else "paused"
    if enabled and "enabled" not in data:
        new_text = text  # no `enabled` key means enabled: nothing to write
    else:
        try:
            new_text = set_top_level_bool(text, "enabled", enabled)
        except TomlEditError as e:
            raise UserError(f"cannot {verb[:-1]} '{name}': {link}: {e}; edit it by hand") from None
    if new_text == text:
        print(f"{name} is already {'enabled' if enabled else 'paused'} ({link})")
        return 0
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
    state = "enabled = true" if enabled else "enabled = false"
    where = f"daemon pid {pid} reloaded" if pid is not None else "no daemon is running"
    print(f"{verb} {name} ({link}: {state}; {where})")
    if not enabled:
        running = _running_runs(home, name)
        if running:
            print(f"  its run in progress ({', '.join(running)}) keeps going until it ends")
    return 0


def _running_runs(home: Home, name: str) -> list[str]:
    from bassi_schedd.store.state import QueryError, RunStatus, StateDBError, open_existing

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
            raise UserError(f"{path} changed while it was being edited; try again")
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


def main(args: argparse.Namespace, home: Home) -> int:
    """Dispatch trigger/pause/resume."""
    if args.command == "trigger":
        return trigger(home, args.task)
    return set_enabled(home, args.task, args.command == "resume")
