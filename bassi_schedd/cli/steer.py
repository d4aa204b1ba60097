"""``trigger TASK``, ``pause TASK``, ``resume TASK``: steering a task from the command line.

The work is in ``ops/trigger.py`` and ``ops/steer.py`` (the dashboard calls the same
functions); this prints it.
"""

from __future__ import annotations

import argparse
import sys

from bassi_schedd.config.paths import Home
from bassi_schedd.ops.steer import set_enabled
from bassi_schedd.ops.trigger import request_trigger


def trigger(home: Home, name: str) -> int:
    """Queue a manual run for the running daemon and wait until it took it (ops/trigger.py)."""
    pid = request_trigger(home, name, warn=lambda text: print(text, file=sys.stderr))
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
        else "no daemon is running"
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
