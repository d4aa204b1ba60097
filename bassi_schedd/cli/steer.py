"""``trigger TASK``, ``pause TASK``, ``resume TASK``: steering a task from the command line.

The work is in ``ops/steer.py`` (the dashboard calls the same functions); this prints it.
"""

from __future__ import annotations

import argparse
import sys

from bassi_schedd.config.paths import Home
from bassi_schedd.ops.steer import request_trigger, set_enabled


def _warn(text: str) -> None:
    print(f"bassi-schedd: warning: {text}", file=sys.stderr)


def trigger(home: Home, name: str) -> int:
    """Ask the running daemon to start ``name`` now; say so once it took the request."""
    pid = request_trigger(home, name, _warn)
    print(f"triggered {name} (daemon pid {pid})")
    return 0


def enable(home: Home, name: str, enabled: bool) -> int:
    """Flip ``enabled`` in the task file and report what changed."""
    r = set_enabled(home, name, enabled)
    if not r.changed:
        print(f"{name} is already {'enabled' if enabled else 'paused'} ({r.path})")
        return 0
    verb = "resumed" if enabled else "paused"
    state = "enabled = true" if enabled else "enabled = false"
    where = (
        f"daemon pid {r.daemon_pid} reloaded"
        if r.daemon_pid is not None
        else ("no daemon is running")
    )
    print(f"{verb} {name} ({r.path}: {state}; {where})")
    if r.running:
        print(f"  its run in progress ({', '.join(r.running)}) keeps going until it ends")
    return 0


def main(args: argparse.Namespace, home: Home) -> int:
    """Dispatch trigger/pause/resume."""
    if args.command == "trigger":
        return trigger(home, args.task)
    return enable(home, args.task, args.command == "resume")
