"""``list``, ``next``, ``check`` and ``new``: looking at and writing task files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bassi_schedd.config.loader import TaskLoader
from bassi_schedd.config.paths import FILE_MODE, Home
from bassi_schedd.config.settings import config_from_dict, load_config, system_timezone
from bassi_schedd.config.taskfile import (
    NAME_RE,
    is_task_file_name,
    load_task_file,
    task_from_text,
    tasks_dir_error,
)
from bassi_schedd.config.taskwarn import task_warnings
from bassi_schedd.config.tomlfile import FieldError, file_error, read_checked_toml
from bassi_schedd.core.errors import TaskFileError, UsageError, UserError, printable
from bassi_schedd.core.schedule import HORIZON, next_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec

MAX_NEXT = 1000


def main(args: argparse.Namespace, home: Home) -> int:
    """Dispatch list / next / check / new."""
    handlers = {"list": cmd_list, "next": cmd_next, "check": cmd_check, "new": cmd_new}
    return handlers[args.command](args, home)


def _fmt_time(dt: datetime) -> str:
    return dt.strftime("%a %Y-%m-%d %H:%M %Z")


def _next_run(spec: TaskSpec, now: datetime) -> datetime | None:
    times = next_times(spec.schedule, spec.zone, now.astimezone(spec.zone), 1)
    return times[0] if times else None


def _summaries(
    home: Home, tasks: dict[str, TaskSpec], config: DaemonConfig, now: datetime
) -> tuple[dict[str, Any], dict[str, str]]:
    """Per-task state from the daemon's DB, and the tasks over a spend cap (SPEC 10); empty
    when there is no DB (yet) or it is unreadable."""
    from bassi_schedd.store.spend import over_caps
    from bassi_schedd.store.state import QueryError, StateDBError, open_existing

    try:
        db = open_existing(home)
        if db is None:
            return {}, over_caps(None, tasks.values(), config, now)  # a cap of 0 is spent
        try:
            return dict(db.task_summaries()), over_caps(db, tasks.values(), config, now)
        finally:
            db.close()
    except (StateDBError, QueryError, OSError) as e:
        print(
            f"bassi-schedd: cannot read {home.state_db} ({e}); last status not shown",
            file=sys.stderr,
        )
        return {}, {}


# -- list ---------------------------------------------------------------------------------------


def _rows(home: Home) -> list[dict[str, Any]]:
    config = load_config(home)
    result = TaskLoader(home, config).load()
    if result.folder_error is not None:
        raise result.folder_error  # nothing in the folder is loaded: say why, exit 1
    now = datetime.now(UTC)
    summaries, over = _summaries(home, result.tasks, config, now)
    rows: list[dict[str, Any]] = []
    for name in sorted(set(result.tasks) | set(result.errors)):
        summary = summaries.get(name)
        last_at = summary.last_run_at if summary is not None else None
        row: dict[str, Any] = {
            "name": name,
            "file": None,
            "description": None,
            "schedule": None,
            "timezone": None,
            "kind": None,
            "state": "invalid",
            "next_run": None,
            "last_status": summary.last_status if summary is not None else None,
            "last_run_at": last_at.astimezone(UTC).isoformat() if last_at else None,
            "error": None,
            "over_budget": over.get(name),
        }
        spec = result.tasks.get(name)
        if spec is None:
            err = result.errors[name]
            row.update(file=printable(err.path), error=str(err))
            if not NAME_RE.match(name):
                row["name"] = Path(name).name
        else:
            done = summary is not None and summary.done
            state = "done" if done else ("enabled" if spec.enabled else "paused")
            nxt = _next_run(spec, now) if state == "enabled" else None
            row.update(
                file=str(spec.path),
                description=spec.description,
                schedule=spec.schedule.text,
                timezone=spec.timezone,
                kind="agent" if spec.is_agent else "command",
                state=state,
                next_run=nxt.isoformat() if nxt else None,
                _next=_fmt_time(nxt) if nxt else "-",
            )
        rows.append(row)
    return rows


def cmd_list(args: argparse.Namespace, home: Home) -> int:
    """Every task, valid or not: schedule, zone, next run (task zone), last status, state."""
    rows = _rows(home)
    if args.json:
        print(
            json.dumps(
                [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows], indent=2
            )
        )
        return 0
    if not rows:
        print(f"no tasks in {printable(str(home.tasks_dir))}")
        return 0
    header = ("NAME", "SCHEDULE", "ZONE", "NEXT RUN", "LAST", "STATE")
    table = [header] + [
        (
            printable(r["name"]),
            r["schedule"] or "-",
            r["timezone"] or "-",
            r.get("_next", "-"),
            r["last_status"] or "-",
            r["state"] + (", over budget" if r["over_budget"] else ""),
        )
        for r in rows
    ]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r["over_budget"]:
            print(f"{printable(r['name'])}: over budget: {r['over_budget']}", file=sys.stderr)
    bad = sum(1 for r in rows if r["state"] == "invalid")
    if bad:
        noun = "file is" if bad == 1 else "files are"
        print(f"{bad} task {noun} invalid; run 'bassi-schedd check' for details", file=sys.stderr)
    return 0


# -- next ---------------------------------------------------------------------------------------


def _named_task(home: Home, config: DaemonConfig, name: str) -> TaskSpec:
    path = home.tasks_dir / f"{name}.toml"
    if not NAME_RE.match(name) or not path.is_file():
        raise UserError(f"no task named '{name}' (no file {path})")
    folder_error = tasks_dir_error(home.tasks_dir)
    if folder_error is not None:
        raise folder_error
    return load_task_file(path, config)


def cmd_next(args: argparse.Namespace, home: Home) -> int:
    """The next N times in the task zone, with the local time in brackets when it differs."""
    if not 1 <= args.n <= MAX_NEXT:
        raise UsageError(f"-n must be between 1 and {MAX_NEXT}, got {args.n}")
    config = load_config(home)
    spec = _named_task(home, config, args.task)
    if not spec.enabled:
        print(f"note: {spec.name} is paused; these times apply once it is resumed", file=sys.stderr)
    from zoneinfo import ZoneInfo

    local_zone = ZoneInfo(system_timezone())
    now = datetime.now(UTC).astimezone(spec.zone)
    times = next_times(spec.schedule, spec.zone, now, args.n)
    if not times:
        print(f"{spec.name} has no upcoming runs (schedule {spec.schedule.text!r})")
        return 0
    for t in times:
        text = _fmt_time(t)
        local = _fmt_time(t.astimezone(local_zone))
        print(text if local == text else f"{text}  [{local}]")
    if len(times) < args.n and spec.schedule.kind != "at":
        print(
            f"note: no later times before {HORIZON:%Y-%m-%d}, the end of the supported calendar",
            file=sys.stderr,
        )
    return 0


# -- check --------------------------------------------------------------------------------------


def _check_paths(home: Home, files: list[str]) -> list[Path]:
    if files:
        out = []
        for f in files:
            if "/" not in f and not f.endswith(".toml"):
                # A bare name is always the task, even where ./NAME happens to exist.
                out.append(home.tasks_dir / f"{f}.toml")
            else:
                out.append(Path(f).expanduser().absolute())
        return out
    try:
        with os.scandir(home.tasks_dir) as it:
            # Not only regular files: a FIFO or a broken symlink gets its own error line.
            names = sorted(e.name for e in it if is_task_file_name(e.name) and not _is_dir(e))
    except FileNotFoundError:
        return []
    return [home.tasks_dir / n for n in names]


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symlink loop: not a folder, reported by the read
        return False


def _check_config_file(path: Path) -> None:
    data, text, _ = read_checked_toml(path)
    try:
        config_from_dict(data)
    except FieldError as problem:
        raise file_error(path, text, problem) from None


def cmd_check(args: argparse.Namespace, home: Home) -> int:
    """Validate schedd.toml and the task files; one line per file (and one per warning);
    exit 1 on any error, warnings do not change the exit code."""
    failures = 0
    try:
        config = load_config(home)
        if home.config_file.exists():
            print("ok schedd.toml")
    except UserError as e:
        print(f"error {e}")
        failures += 1
        config = DaemonConfig(timezone=system_timezone())
    paths = _check_paths(home, list(args.files))
    if not paths and not args.files:
        print(f"no task files in {printable(str(home.tasks_dir))}")
    tasks_dir = home.tasks_dir.resolve()
    folder_error = tasks_dir_error(home.tasks_dir)
    if folder_error is not None and any(p.parent.resolve() == tasks_dir for p in paths):
        print(f"error {folder_error}")
        failures += 1
    for path in paths:
        in_tasks = path.parent.resolve() == tasks_dir
        if in_tasks and folder_error is not None:
            continue  # nothing in it is loaded; said once above
        try:
            # Only BASSI_HOME/schedd.toml and ones outside tasks/ are daemon settings:
            # tasks/schedd.toml is the task named "schedd".
            if path.name == "schedd.toml" and not in_tasks:
                if path.resolve() != home.config_file.resolve():
                    _check_config_file(path)
                    print(f"ok {printable(str(path))}")
                continue
            spec = load_task_file(path, config)
        except TaskFileError as e:
            print(f"error {e}")
            failures += 1
            continue
        print(f"ok {spec.name}")
        for warning in task_warnings(spec, datetime.now(UTC)):
            print(f"warn {TaskFileError(str(path), warning.message, key=warning.key)}")
    return 1 if failures else 0


# -- new ----------------------------------------------------------------------------------------


def _new_task_dict(args: argparse.Namespace) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if args.description is not None:
        data["description"] = args.description
    data["schedule"] = args.schedule
    if args.timezone is not None:
        data["timezone"] = args.timezone
    if args.prompt is not None:
        data["prompt"] = args.prompt
    elif args.prompt_file is not None:
        data["prompt_file"] = args.prompt_file
    else:
        if not args.task_command:
            raise UsageError(
                "--command needs the program and its arguments, and must come last "
                "(e.g. --command /usr/local/bin/backup.sh --quick)"
            )
        data["command"] = list(args.task_command)
    return data


def cmd_new(args: argparse.Namespace, home: Home) -> int:
    """Write ``tasks/NAME.toml`` (0600) after checking it would load; never overwrite."""
    import tomli_w

    name = args.name
    if not NAME_RE.match(name):
        raise UsageError(
            f"'{name}' is not a valid task name; use lowercase letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)"
        )
    path = home.tasks_dir / f"{name}.toml"
    if path.exists():
        raise UserError(f"{path} already exists; edit it, or delete it first")
    config = load_config(home)
    text = tomli_w.dumps(_new_task_dict(args), multiline_strings=True)
    try:
        spec = task_from_text(path, text, config, base_dir=home.tasks_dir, locate_lines=False)
    except TaskFileError as e:
        raise UsageError(f"cannot create task '{name}': {e}") from None
    home.ensure(home.tasks_dir)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise UserError(f"{path} already exists; edit it, or delete it first") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    nxt = _next_run(spec, datetime.now(UTC))
    print(f"created {path}" + (f"; next run {_fmt_time(nxt)}" if nxt else ""))
    return 0
