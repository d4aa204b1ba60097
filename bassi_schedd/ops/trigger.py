"""``trigger TASK``: queue a manual run for the running daemon, shared by the CLI and the dashboard.

The request goes through the state DB (a ``requests`` row) and SIGUSR1 wakes the daemon; the
caller returns once the daemon took it. ``stop`` works the same way (ops/stop.py).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config, system_timezone
from bassi_schedd.config.taskfile import NAME_RE, load_task_file, tasks_dir_error
from bassi_schedd.core.errors import TaskFileError, UserError
from bassi_schedd.core.spec import DaemonConfig
from bassi_schedd.store.lock import read_holder

if TYPE_CHECKING:
    from bassi_schedd.store.state import StateDB

# The daemon takes a request at once when woken; this long means it is stuck or stopping.
TRIGGER_WAIT_S = 10.0


def task_path(home: Home, name: str) -> str:
    """The file of task ``name``; UserError when the name or the file is not usable."""
    if not NAME_RE.match(name):
        raise UserError(
            f"'{name}' is not a task name (lowercase letters, digits, '-' and '_', "
            "starting with a letter or digit)"
        )
    path = home.tasks_dir / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"no task named '{name}' (no file {path})")
    folder_error = tasks_dir_error(home.tasks_dir)
    if folder_error is not None:
        raise folder_error
    return str(path)


def request_trigger(home: Home, name: str, warn: Callable[[str], object] = lambda _: None) -> int:
    """Queue a manual run of ``name``, wake the daemon with SIGUSR1, wait until it took it;
    return the daemon's pid. ``warn`` hears about a schedd.toml the daemon ignores.

    The task file is validated first: the daemon cannot run a task it cannot load, so saying
    "triggered" for one would be a lie (it logs ``trigger.refused`` if one reaches it anyway).
    """
    path = task_path(home, name)
    try:
        config = load_config(home)
    except TaskFileError as e:
        # The running daemon keeps the settings it has (config.invalid); the task is checked
        # against the defaults instead, and the user hears about the file.
        warn(f"bassi-schedd: warning: {e}; the daemon keeps the settings in use")
        config = DaemonConfig(timezone=system_timezone())
    try:
        load_task_file(Path(path), config)
    except TaskFileError as e:
        raise UserError(f"cannot trigger '{name}': {e}") from None
    pid = read_holder(home)
    if pid is None:
        raise UserError(
            f"no daemon is running for {home.root}; run the task in the foreground with "
            f"'bassi-schedd execute {name}'"
        )
    from bassi_schedd.store.state import QueryError, open_existing

    db = open_existing(home)
    if db is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGUSR1)  # it checks its state DB when woken, and stops
        raise UserError(
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
            raise UserError(f"the daemon (pid {pid}) exited before it could be woken") from None
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
            raise UserError(
                f"the daemon (pid {pid}) stopped before it took the request (see "
                "'bassi-schedd logs'); the next daemon to start runs it"
            )
        if time.monotonic() > deadline:
            raise UserError(
                f"the daemon (pid {pid}) has not taken the request within {TRIGGER_WAIT_S:.0f} s "
                "(see 'bassi-schedd logs'); it runs the task when it does"
            )
        time.sleep(0.05)
