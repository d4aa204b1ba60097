"""The command line: argument parsing only; each command is its own ``bassi_schedd.cli`` module.

Command modules are imported lazily so that ``run`` never loads what the daemon does not need
(in particular claude_agent_sdk, which only the ``execute`` child imports).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bassi_schedd import __version__
from bassi_schedd.config.paths import resolve_home
from bassi_schedd.core.errors import UsageError, UserError, printable

# command name -> module under bassi_schedd.cli exposing main(args, home) -> int
COMMANDS = {
    "run": "run",
    "install": "service",
    "uninstall": "service",
    "doctor": "doctor",
    "status": "status",
    "list": "tasks",
    "next": "tasks",
    "check": "tasks",
    "new": "tasks",
    "pause": "steer",
    "resume": "steer",
    "trigger": "steer",
    "stop": "stop",
    "cost": "cost",
    "execute": "execute",
    "history": "history",
    "logs": "logs",
    "export": "export",
}


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as one sentence and exit 2, without the usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """All commands and options of SPEC 8."""
    p = _Parser(prog="bassi-schedd", description="Run bassi prompts and scripts on a schedule.")
    p.add_argument("--home", metavar="DIR", help="BASSI_HOME (default: $BASSI_HOME or ~/.bassi)")
    p.add_argument("--version", action="version", version=f"bassi-schedd {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    s = sub.add_parser("run", help="run the daemon in the foreground")
    s.add_argument("--once", action="store_true", help="one tick, wait for its runs, exit")

    s = sub.add_parser("install", help="install and start the launchd agent or systemd user unit")
    s.add_argument(
        "--dry-run", action="store_true", help="print files and commands, change nothing"
    )
    s.add_argument(
        "--no-start", action="store_true", help="write the service file but do not load it"
    )
    s.add_argument("--platform", choices=["linux", "darwin"], help=argparse.SUPPRESS)
    s = sub.add_parser("uninstall", help="stop and remove the service (tasks and history stay)")
    s.add_argument("--dry-run", action="store_true", help="print commands, change nothing")
    s.add_argument("--platform", choices=["linux", "darwin"], help=argparse.SUPPRESS)
    sub.add_parser("doctor", help="check the installation, one line per check")

    s = sub.add_parser("status", help="is the daemon running, what is it doing")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("list", help="tasks with schedule, zone, next run, last status")
    s.add_argument("--json", action="store_true")
    s = sub.add_parser("next", help="the next scheduled times of a task")
    s.add_argument("task")
    s.add_argument("-n", type=int, default=5, metavar="N", help="how many (default 5)")
    s = sub.add_parser("check", help="validate task files (all, or the ones named)")
    s.add_argument("files", nargs="*", metavar="FILE")
    s = sub.add_parser("new", help="write a new task file")
    s.add_argument("name")
    s.add_argument("--schedule", required=True)
    s.add_argument("--timezone")
    s.add_argument("--description")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--prompt")
    g.add_argument("--prompt-file")
    g.add_argument("--command", nargs=argparse.REMAINDER, dest="task_command")

    for name, text in (("pause", "disable a task"), ("resume", "enable a task")):
        s = sub.add_parser(name, help=f"{text} (flips 'enabled' in its file)")
        s.add_argument("task")
    s = sub.add_parser("trigger", help="ask the running daemon to start a task now")
    s.add_argument("task")

    s = sub.add_parser("stop", help="stop a running run, or every running run of a task")
    s.add_argument("target", metavar="RUN_ID|TASK")
    s = sub.add_parser("cost", help="spend and tokens per task, day or month")
    s.add_argument("task", nargs="?")
    s.add_argument("--since", default="30d", metavar="DURATION", help="default 30d")
    s.add_argument("--by", choices=["task", "day", "month"], default="task")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("execute", help="run a task now in the foreground (or a prepared run dir)")
    s.add_argument("task", nargs="?")
    s.add_argument("--run-dir", metavar="DIR")

    s = sub.add_parser("history", help="past runs, newest first")
    s.add_argument("task", nargs="?")
    s.add_argument("-n", type=int, default=20, metavar="N")
    s.add_argument("--status", metavar="S", help="only runs with this status")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("logs", help="read the daemon log")
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("--task")
    s.add_argument("--run", metavar="ID")
    s.add_argument("--level")
    s.add_argument("--since", metavar="DURATION")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("export", help="the tasks as Kubernetes CronJobs or systemd timers")
    targets = s.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser, required=True)
    t = targets.add_parser("kubernetes", help="a ConfigMap and one CronJob per task, as YAML")
    t.add_argument("tasks", nargs="*", metavar="TASK", help="the tasks to export (default: all)")
    t.add_argument("--image", required=True, help="the image with bassi-schedd installed")
    t.add_argument("--namespace", metavar="NS")
    t.add_argument("-o", dest="output", metavar="FILE", help="write here ('-': stdout, default)")
    t = targets.add_parser("systemd", help="bassi-NAME.service and .timer per task")
    t.add_argument("tasks", nargs="*", metavar="TASK", help="the tasks to export (default: all)")
    t.add_argument(
        "-o", dest="output", metavar="DIR", help="write the units here (default: stdout)"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bassi-schedd`` script."""
    try:
        args = build_parser().parse_args(argv)
        if not args.command:
            raise UsageError("no command given (see 'bassi-schedd --help')")
        home = resolve_home(args.home)
        module = importlib.import_module(f"bassi_schedd.cli.{COMMANDS[args.command]}")
        rc: int = module.main(args, home)
        return rc
    except UserError as e:
        print(f"bassi-schedd: {printable(str(e))}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as e:
        # Last resort for file trouble a command did not foresee: one sentence, not a traceback.
        where = f" ({e.filename})" if e.filename else ""
        print(f"bassi-schedd: {printable(f'{e.strerror or e}{where}')}", file=sys.stderr)
        return 1
