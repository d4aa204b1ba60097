"""``doctor``: one line per check, ``ok|warn|fail  <check>: <detail>``, with a fix for the
others; exit 1 when any check fails."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import doctor_env as env
from bassi_schedd.ops import install as svc
from bassi_schedd.ops.doctor import (
    Check,
    Context,
    check_config,
    check_daemon,
    check_home,
    check_notify,
    check_packages,
    check_python,
    check_tasks,
)
from bassi_schedd.ops.doctor_web import check_web

INDENT = " " * 6


def run_checks(home: Home) -> list[Check]:
    """Every check, in the order a user would fix things (later ones use what earlier found)."""
    try:
        platform: svc.Platform | None = svc.detect_platform()
    except UserError:
        platform = None
    ctx = Context(home, svc.user_home(), dict(os.environ), datetime.now(UTC), platform)
    checks = [check_python(), *check_packages(), check_home(ctx)]
    if home.root.is_dir():
        checks += [check_config(ctx), check_tasks(ctx), check_notify(ctx)]
    checks += env.check_service(ctx)
    checks += check_daemon(ctx)
    checks += env.check_service_state(ctx)
    checks += check_web(ctx)
    checks.append(env.check_claude_cli(ctx, env.bundled_claude()))
    checks += [env.check_credentials(ctx), env.check_zone(ctx)]
    return checks


def format_check(check: Check) -> list[str]:
    """The lines of one check: the verdict, its details, then the fix."""
    lines = [f"{check.status:<4}  {check.name}: {check.detail}"]
    lines += [f"{INDENT}  {line}" for line in check.more]
    if check.fix and check.status != "ok":
        lines.append(f"{INDENT}fix: {check.fix}")
    return lines


def main(args: argparse.Namespace, home: Home) -> int:
    """Run every check and print the report."""
    checks = run_checks(home)
    for check in checks:
        for line in format_check(check):
            print(line, flush=True)
    return 1 if any(c.status == "fail" for c in checks) else 0
