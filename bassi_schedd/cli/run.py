"""``bassi-schedd run [--once]``: the daemon in the foreground."""

from __future__ import annotations

import argparse
import sys

# structlog renders tracebacks with rich when it can import it. rich and pygments are in the
# environment for other tools; in the long-running daemon they would cost ~6 MiB of RSS for
# nothing (tracebacks go to the JSON log file as plain text), so the daemon does not load them.
for _name in ("rich", "pygments"):
    sys.modules.setdefault(_name, None)  # type: ignore[arg-type]

from bassi_schedd.config.paths import Home  # noqa: E402
from bassi_schedd.daemon.loop import Daemon  # noqa: E402


def main(args: argparse.Namespace, home: Home) -> int:
    """Run the daemon until SIGTERM/SIGINT (or one tick with --once)."""
    return Daemon(home, once=args.once).run()
