"""``trigger TASK``, ``pause TASK``, ``resume TASK``: steering a task from the command line."""

from __future__ import annotations

import argparse
import os
import signal
from datetime import UTC, datetime

from bassi_schedd.errors import UserError
from bassi_schedd.lock import read_holder
from bassi_schedd.paths import Home


def _task_path(home: Home, name: str) -> str:
    path = home.tasks_dir / f"{name}.toml"
    if not path.is_file():
        raise UserError(f"no task named '{name}' (no file {path})")
    return str(path)


def trigger(home: Home, name: str) -> int:
    """Queue a manual run for the running daemon and wake it with SIGUSR1."""
    _task_path(home, name)
    pid = read_holder(home)
    if pid is None:
        raise UserError(
            f"no daemon is running for {home.root}; run the task in the foreground with "
            f"'bassi-schedd execute {name}'"
        )
    from bassi_schedd.state import StateDB

    db = StateDB.open(home.state_db)
    try:
        db.add_request(name, datetime.now(UTC))
    finally:
        db.close()
    try:
        os.kill(pid, signal.SIGUSR1)
    except ProcessLookupError:
        raise UserError(f"the daemon (pid {pid}) exited before it could be woken") from None
    print(f"triggered {name} (daemon pid {pid})")
    return 0


def main(args: argparse.Namespace, home: Home) -> int:
    """Dispatch trigger/pause/resume."""
    if args.command == "trigger":
        return trigger(home, args.task)
    raise UserError(f"'{args.command}' is not available yet")
