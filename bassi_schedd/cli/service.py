"""``install [--dry-run] [--no-start]`` and ``uninstall [--dry-run]``: the launchd agent or systemd
user unit (SPEC 9). Both are safe to repeat; ``--dry-run`` prints what would happen and changes
nothing (it may still ask the service manager read-only questions)."""

from __future__ import annotations

import argparse
import sys

from bassi_schedd.config.paths import Home
from bassi_schedd.ops import install as svc
from bassi_schedd.ops.plan import carry_out, show
from bassi_schedd.ops.service_plan import install_plan, uninstall_plan


def main(args: argparse.Namespace, home: Home) -> int:
    """Work out the plan of ``install`` / ``uninstall``; show it (--dry-run) or carry it out."""
    platform = svc.detect_platform(getattr(args, "platform", None))
    if args.command == "uninstall":
        plan = uninstall_plan(platform, home)
    else:
        plan = install_plan(platform, home, no_start=args.no_start, web=args.web)
    (show if args.dry_run else carry_out)(plan, _say, _warn)
    return 0


def _say(text: str) -> None:
    print(text, flush=True)


def _warn(text: str) -> None:
    print(f"bassi-schedd: warning: {text}", file=sys.stderr, flush=True)
