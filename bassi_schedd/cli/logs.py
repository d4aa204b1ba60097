"""``logs [-f] [--task T] [--run ID] [--level L] [--since 1h] [--json]``: read the daemon log.

Readable lines by default (see :mod:`bassi_schedd.logs.view`); with ``--json`` the raw JSON lines,
unchanged (lines that are not JSON objects are left out so the output stays parseable).
``--run ID`` (full id or the short suffix shown as ``run=``) shows that run's lines and then its
``output.log``; with ``--json`` or ``-f`` only the log lines, so the output stays one kind of
thing (JSON lines, or a live stream).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bassi_schedd.config.paths import Home
from bassi_schedd.core.durations import parse_duration_s
from bassi_schedd.core.errors import UsageError, UserError
from bassi_schedd.core.limits import LOGS_SINCE
from bassi_schedd.logs.view import (
    Follower,
    LineSelector,
    LogFilter,
    format_line,
    log_files,
    parse_level,
    read_lines,
)

_RUN_ARG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def main(args: argparse.Namespace, home: Home) -> int:
    """Print (or follow) the selected log lines."""
    try:
        return _main(args, home)
    except BrokenPipeError:
        # `logs | head`: stop quietly, and keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def build_filter(args: argparse.Namespace, now: datetime) -> LogFilter:
    """The filter of the command-line options (UsageError for a bad level or duration)."""
    min_level = None
    if args.level is not None:
        try:
            min_level = parse_level(args.level)
        except ValueError as e:
            raise UsageError(f"--level: {e}") from None
    since = None
    if args.since is not None:
        try:
            since_s = parse_duration_s(args.since)
        except ValueError as e:
            raise UsageError(f"--since: {e}") from None
        if not LOGS_SINCE.allows(since_s):  # also keeps `now - since` inside the calendar
            raise UsageError(f"--since must be {LOGS_SINCE.span()}, got {args.since!r}")
        since = now - timedelta(seconds=since_s)
    return LogFilter(task=args.task, run_id=args.run, min_level=min_level, since=since)


def _main(args: argparse.Namespace, home: Home) -> int:
    flt = build_filter(args, datetime.now(UTC))
    run_dir = None
    if args.run is not None:
        run_dir = find_run_dir(home, args.run)
        if run_dir is not None:  # filter on the full id, not a suffix that might collide
            flt = LogFilter(flt.task, run_dir.name, flt.min_level, flt.since)
    color = not args.json and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    select = LineSelector(flt)
    out = sys.stdout

    def emit(line: str) -> bool:
        keep, rec = select.select(line)
        if keep and args.json and rec is None:
            return False  # --json output stays parseable: stray non-JSON lines are left out
        if keep:
            out.write((line if args.json else format_line(line, rec, color=color)) + "\n")
        return keep

    if args.follow:
        if args.run is not None and run_dir is None and not _any(home, flt):
            raise UserError(f"no run '{args.run}' in the log or under {home.runs_dir}")

        def missing() -> None:
            print(f"No log yet at {home.log_file}; waiting for it to appear...", file=sys.stderr)

        for line in Follower(home.log_file).lines(on_missing=missing):
            if emit(line):
                out.flush()
        return 0  # pragma: no cover - the follower only ends by interrupt

    files = log_files(home.log_file)
    if not files and args.run is None:
        print(
            f"No log yet: {home.log_file} does not exist (the daemon writes it once it runs).",
            file=sys.stderr,
        )
        return 0
    shown = sum(1 for line in read_lines(files) if emit(line))
    if args.run is not None:
        if run_dir is None and shown == 0:
            raise UserError(f"no run '{args.run}' in the log, the history or under {home.runs_dir}")
        if not args.json:
            _print_output(run_dir)
    return 0


def _any(home: Home, flt: LogFilter) -> bool:
    probe = LineSelector(flt)
    return any(probe.select(line)[0] for line in read_lines(log_files(home.log_file)))


def find_run_dir(home: Home, run: str) -> Path | None:
    """The folder of a run by full id or short suffix: runs/*/ID, else the history's run_dir."""
    if not _RUN_ARG.fullmatch(run):
        raise UserError(f"'{run}' is not a run id (like 20261122T080001Z-a1b2c3, or a1b2c3)")
    candidates = {*home.runs_dir.glob(f"*/{run}"), *home.runs_dir.glob(f"*/*-{run}")}
    found = sorted(p for p in candidates if p.is_dir())
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        raise UserError(f"run id '{run}' is ambiguous ({names}); give the full id")
    if found:
        return found[0]
    return _run_dir_from_history(home, run)


def _run_dir_from_history(home: Home, run_id: str) -> Path | None:
    from bassi_schedd.store.state import QueryError, StateDBError, open_existing

    try:
        db = open_existing(home)
        if db is None:
            return None
        try:
            row = db.get_run(run_id)
        finally:
            db.close()
    except (StateDBError, QueryError, OSError):
        return None
    return Path(row.run_dir) if row is not None and row.run_dir else None


def _print_output(run_dir: Path | None) -> None:
    if run_dir is None:
        print("(no run folder found for this run)", file=sys.stderr)
        return
    output = run_dir / "output.log"
    try:
        f = output.open("rb")
    except OSError:
        print(f"(no output.log in {run_dir})", file=sys.stderr)
        return
    with f:
        sys.stdout.write(f"--- output.log ({output}) ---\n")
        sys.stdout.flush()
        shutil.copyfileobj(f, sys.stdout.buffer)
        sys.stdout.buffer.flush()
