"""``bassi-schedd run [--once]``: the daemon in the foreground."""

from __future__ import annotations

import argparse

from bassi_schedd.config.paths import Home
from bassi_schedd.daemon.loop import Daemon


def main(args: argparse.Namespace, home: Home) -> int:
    """Run the daemon until SIGTERM/SIGINT (or one tick with --once)."""
    return Daemon(home, once=args.once).run()
