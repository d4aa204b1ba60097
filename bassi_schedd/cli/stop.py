"""``stop RUN_ID|TASK``: the running daemon stops that run, or every running run of TASK.

Exit 0 when something was stopped, 1 when nothing was running (or no daemon runs).
"""

from __future__ import annotations

import argparse
import sys

from bassi_schedd.config.paths import Home
from bassi_schedd.ops.stop import request_stop


def main(args: argparse.Namespace, home: Home) -> int:
    """Ask the daemon to stop ``args.target`` and report how the runs ended."""
    result = request_stop(home, args.target)
    if not result.stopped_any:
        print(f"bassi-schedd: nothing of '{args.target}' is running", file=sys.stderr)
        return 1
    for run_id, status in result.ended.items():
        how = status if status is not None else "still stopping (see 'bassi-schedd status')"
        print(f"stopped {run_id}: {how}")
    return 0
