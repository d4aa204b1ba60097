"""One task file (SPEC 3): every key checked, turned into a frozen :class:`TaskSpec`."""

from __future__ import annotations

import os
import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, cast

from bassi_schedd.config.deps import Deps
from bassi_schedd.config.tomlfile import FieldError, file_error, parse_toml, read_checked_toml
from bassi_schedd.config.userfile import UnreadableFileError, read_user_text, unsafe_dir_reason
from bassi_schedd.config.validate import (
    ENV_NAME,
    check_argv,
    check_bool,
    check_budget,
    check_choice,
    check_count,
    check_duration,
    check_notify,
    check_number,
    check_size,
    check_str,
    check_str_list,
    check_table,
    check_url,
    check_zone,
    kind_of,
    reject_unknown,
)
from bassi_schedd.core import limits
from bassi_schedd.core.errors import TaskFileError, UserError, printable
from bassi_schedd.core.schedule import Schedule, ScheduleError, parse_at, parse_schedule
from bassi_schedd.core.spec import AgentOptions, DaemonConfig, OnMissed, Overlap, TaskSpec

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
TASK_KEYS = (
    "description",
    "schedule",
    "at",
    "timezone",
    "prompt",
    "prompt_file",
    "enabled",
    "timeout",
    "on_missed",
    "missed_deadline",
    "overlap",
    "retries",
    "retry_delay",
    "jitter",
    "max_output",
    "cwd",
    "env",
    "command",
    "agent",
    "notify",
    "healthcheck_url",
    "when",
    "when_timeout",
    "budget",
)
AGENT_KEYS = (
    "model",
    "max_turns",
    "max_budget_usd",
    "allowed_tools",
    "permission_mode",
    "append_system_prompt",
    "cli_path",
    "continue_session",
)
PERMISSION_MODES = ("default", "acceptEdits", "bypassPermissions", "plan", "dontAsk", "auto")


def is_task_file_name(file_name: str) -> bool:
    """Files the daemon reads: ``*.toml`` not starting with ``.`` or ``_``."""
    return file_name.endswith(".toml") and not file_name.startswith((".", "_"))


def tasks_dir_error(tasks_dir: Path) -> TaskFileError | None:
    """The error that refuses the whole tasks folder (writable by others), or None."""
    reason = unsafe_dir_reason(tasks_dir)
    return None if reason is None else TaskFileError(str(tasks_dir), reason)


def _schedule(data: dict[str, Any]) -> Schedule:
    if "schedule" in data and "at" in data:
        raise FieldError("at", "cannot be combined with 'schedule'; a task has one or the other")
    if "schedule" in data:
        text = check_str(data["schedule"], "schedule", non_empty=True)
        try:
            return parse_schedule(text)
        except ScheduleError as e:
            raise FieldError("schedule", str(e)) from None
    if "at" in data:
        value = data["at"]
        if isinstance(value, datetime | date | time):
            # A TOML local date-time (at = 2026-12-25T10:00:00) is as good as a string.
            value = value.isoformat()
        text = check_str(value, "at", non_empty=True)
        try:
            return parse_at(text)
        except ScheduleError as e:
            raise FieldError("at", str(e)) from None
    raise FieldError("schedule", 'is missing; add schedule = "..." (or at = "..." for a one-shot)')


def _prompt_file(value: object, base_dir: Path, deps: Deps) -> Path:
    raw = check_str(value, "prompt_file", non_empty=True)
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        path = base_dir / path
    path = path.absolute()
    deps.add("file", path)
    try:
        text, _ = read_user_text(path)
    except UnreadableFileError as e:
        where = f" (relative to {base_dir})" if e.missing else ""
        at = f" (line {e.line})" if e.line is not None else ""
        raise FieldError("prompt_file", f"{str(path)!r} {e.reason}{where}{at}") from None
    if not text.strip():
        raise FieldError("prompt_file", f"{str(path)!r} is empty")
    return path


def _cwd(value: object, deps: Deps) -> Path:
    raw = check_str(value, "cwd", non_empty=True)
    path = Path(os.path.expanduser(raw))
    if not path.is_absolute():
        raise FieldError("cwd", f"must be an absolute path or start with '~', got {raw!r}")
    deps.add("dir", path)
    if not path.is_dir():
        raise FieldError("cwd", f"{str(path)!r} is not an existing directory")
    return path


def _env(value: object) -> tuple[tuple[str, str], ...]:
    # Errors name the key and the type, never the value: env values are where secrets live.
    if not isinstance(value, dict):
        raise FieldError("env", f"must be a table, got {kind_of(value)}")
    table = value
    out: list[tuple[str, str]] = []
    for name, val in table.items():
        key = f"env.{name}"
        if not ENV_NAME.match(name):
            raise FieldError(key, f"{name!r} is not a valid environment variable name")
        if name.startswith("BASSI_"):
            raise FieldError(
                key, "BASSI_* variables are set by bassi-schedd and cannot be overridden"
            )
        if not isinstance(val, str):
            raise FieldError(key, f'must be a string (write {name} = "..."), got {kind_of(val)}')
        out.append((name, check_str(val, key)))
    return tuple(out)


def _agent(value: object) -> AgentOptions:
    table = check_table(value, "agent")
    reject_unknown(table, AGENT_KEYS, "agent.")
    opts: dict[str, Any] = {}
    for key in ("model", "append_system_prompt"):
        if key in table:
            opts[key] = check_str(table[key], f"agent.{key}", non_empty=key == "model")
    if "max_turns" in table:
        opts["max_turns"] = check_count(table["max_turns"], "agent.max_turns", limits.MAX_TURNS)
    if "max_budget_usd" in table:
        opts["max_budget_usd"] = check_number(
            table["max_budget_usd"], "agent.max_budget_usd", limits.MAX_BUDGET_USD
        )
    if "allowed_tools" in table:
        opts["allowed_tools"] = check_str_list(
            table["allowed_tools"], "agent.allowed_tools", non_empty=False
        )
    if "permission_mode" in table:
        opts["permission_mode"] = check_choice(
            table["permission_mode"], "agent.permission_mode", PERMISSION_MODES
        )
    if "cli_path" in table:
        raw = check_str(table["cli_path"], "agent.cli_path", non_empty=True)
        opts["cli_path"] = os.path.expanduser(raw)
    if "continue_session" in table:
        opts["continue_session"] = check_bool(table["continue_session"], "agent.continue_session")
    return AgentOptions(**opts)


def task_from_dict(
    data: dict[str, Any], *, name: str, path: Path, base_dir: Path, config: DaemonConfig, deps: Deps
) -> TaskSpec:
    """Validate a parsed task file; raises :class:`FieldError` for the first bad key."""
    reject_unknown(data, TASK_KEYS)
    values: dict[str, Any] = {"name": name, "path": path, "schedule": _schedule(data)}
    values["timezone"] = (
        check_zone(data["timezone"], "timezone") if "timezone" in data else config.timezone
    )
    if "description" in data:
        values["description"] = check_str(data["description"], "description")
    if "prompt" in data and "prompt_file" in data:
        raise FieldError("prompt_file", "cannot be combined with 'prompt'; use one or the other")
    if "prompt" in data:
        values["prompt"] = check_str(data["prompt"], "prompt", non_empty=True)
    if "prompt_file" in data:
        values["prompt_file"] = _prompt_file(data["prompt_file"], base_dir, deps)
    if "enabled" in data:
        values["enabled"] = check_bool(data["enabled"], "enabled")
    if "timeout" in data:
        values["timeout_s"] = check_duration(data["timeout"], "timeout", limits.TIMEOUT)
    if "on_missed" in data:
        choice = check_choice(data["on_missed"], "on_missed", ("skip", "latest", "all"))
        values["on_missed"] = cast(OnMissed, choice)
    if "missed_deadline" in data:
        values["missed_deadline_s"] = check_duration(
            data["missed_deadline"], "missed_deadline", limits.MISSED_DEADLINE
        )
    if "overlap" in data:
        choice = check_choice(data["overlap"], "overlap", ("skip", "queue", "replace", "allow"))
        values["overlap"] = cast(Overlap, choice)
    if "retries" in data:
        values["retries"] = check_count(data["retries"], "retries", limits.RETRIES)
    if "retry_delay" in data:
        values["retry_delay_s"] = check_duration(
            data["retry_delay"], "retry_delay", limits.RETRY_DELAY
        )
    if "jitter" in data:
        values["jitter_s"] = check_duration(data["jitter"], "jitter", limits.JITTER)
    if "max_output" in data:
        values["max_output_bytes"] = check_size(data["max_output"], "max_output", limits.MAX_OUTPUT)
    if "cwd" in data:
        values["cwd"] = _cwd(data["cwd"], deps)
    if "env" in data:
        values["env"] = _env(data["env"])
    if "command" in data:
        values["command"] = check_argv(data["command"], "command")
    elif "prompt" not in data and "prompt_file" not in data:
        raise FieldError(
            "prompt", "is missing; an agent task needs prompt or prompt_file (or give a command)"
        )
    if "agent" in data:
        values["agent"] = _agent(data["agent"])
        if values["agent"].continue_session and "command" in data:
            raise FieldError(
                "agent.continue_session",
                "applies to agent tasks only; a task with a command has no session to continue",
            )
    if "when" in data:
        values["when"] = check_argv(data["when"], "when")
    if "when_timeout" in data:
        values["when_timeout_s"] = check_duration(
            data["when_timeout"], "when_timeout", limits.WHEN_TIMEOUT
        )
    if "budget" in data:
        values["budget"] = check_budget(data["budget"], "budget")
    if "notify" in data:
        values["notify"] = check_notify(data["notify"], "notify")
    if "healthcheck_url" in data:
        values["healthcheck_url"] = check_url(data["healthcheck_url"], "healthcheck_url")
    if not NAME_RE.match(name):
        raise FieldError(
            None,
            f"the file name gives the task name '{printable(name)}', which is not allowed; "
            "rename the file to lowercase letters, digits, '-' and '_' "
            "(at most 64, starting with a letter or digit)",
        )
    return TaskSpec(**values)


def task_from_text(
    path: Path,
    text: str,
    config: DaemonConfig,
    *,
    base_dir: Path | None = None,
    deps: Deps | None = None,
    locate_lines: bool = True,
) -> TaskSpec:
    """Validate task-file text as if it were stored at ``path`` (used by ``new`` before writing)."""
    data = parse_toml(path, text)
    return _validated(path, text if locate_lines else None, data, config, base_dir, deps or Deps())


def _validated(
    path: Path,
    text: str | None,
    data: dict[str, Any],
    config: DaemonConfig,
    base_dir: Path | None,
    deps: Deps,
) -> TaskSpec:
    try:
        return task_from_dict(
            data,
            name=path.name.removesuffix(".toml"),
            path=path,
            base_dir=base_dir or path.parent,
            config=config,
            deps=deps,
        )
    except FieldError as problem:
        raise file_error(path, text, problem) from None


def load_task_file(path: Path, config: DaemonConfig, deps: Deps | None = None) -> TaskSpec:
    """Read and validate one task file; raises :class:`TaskFileError` naming file, key, line.

    ``deps`` collects what outside the file the result depends on (prompt file, cwd).
    """
    path = path.absolute()
    data, text, _ = read_checked_toml(path)
    return _validated(path, text, data, config, None, deps or Deps())


__all__ = ["TaskFileError", "load_task_file", "read_prompt", "task_from_text"]


def read_prompt(task: TaskSpec) -> str:
    """The task's raw prompt (before templating); reads ``prompt_file`` now so edits apply.

    Raises :class:`~bassi_schedd.core.errors.UserError` naming the file when it cannot be read.
    """
    if task.prompt is not None:
        return task.prompt
    if task.prompt_file is not None:
        # It was fine when the task was loaded, but may have been replaced since (with a
        # FIFO, a huge file, invalid UTF-8): fail this run with the reason, not the daemon.
        try:
            return read_user_text(task.prompt_file)[0]
        except UnreadableFileError as e:
            raise UserError(f"the prompt file {e}") from None
    return ""
