"""What a run folder asks of the agent: task.json and prompt.txt read and checked, and the
claude-agent-sdk options built from them.

Only :func:`build_options` touches the SDK, and imports it when called, so this module stays
importable (and testable) without paying for the SDK import.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bassi_schedd.core.errors import UsageError

# Project + user + local settings: CLAUDE.md of the task's cwd and the user's own settings load
# exactly as in an interactive session.
SETTING_SOURCES = ["user", "project", "local"]


def build_options(
    task: Mapping[str, Any], stderr: Callable[[str], None], resume: str | None = None
) -> Any:
    """ClaudeAgentOptions from a task.json dict: ``[agent]`` options, cwd, preset prompt, and
    the session to ``resume`` (continue_session)."""
    from claude_agent_sdk import ClaudeAgentOptions

    agent = task.get("agent") or {}
    if not isinstance(agent, Mapping):
        raise UsageError("task.json: 'agent' must be an object")
    system_prompt: dict[str, Any] = {"type": "preset", "preset": "claude_code"}
    append = _opt(agent, "append_system_prompt", str)
    if append:
        system_prompt["append"] = append
    kwargs: dict[str, Any] = {
        "system_prompt": system_prompt,
        "setting_sources": SETTING_SOURCES,
        "cwd": str(task_cwd(task)),
        "stderr": stderr,
        "model": _opt(agent, "model", str),
        "max_turns": _opt(agent, "max_turns", int),
        "max_budget_usd": _opt(agent, "max_budget_usd", (int, float)),
        "permission_mode": _opt(agent, "permission_mode", str),
        "resume": resume,
    }
    tools = agent.get("allowed_tools")
    if tools is not None:
        if not isinstance(tools, list | tuple) or not all(isinstance(t, str) for t in tools):
            raise UsageError("task.json: agent.allowed_tools must be a list of strings")
        kwargs["allowed_tools"] = list(tools)
    cli_path = _opt(agent, "cli_path", str)
    if cli_path:
        path = Path(cli_path).expanduser()
        if not path.is_file() or not os.access(path, os.X_OK):
            raise UsageError(f"agent.cli_path {path} is not an executable file")
        kwargs["cli_path"] = str(path)
    return ClaudeAgentOptions(**{k: v for k, v in kwargs.items() if v is not None})


def _opt(agent: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = agent.get(key)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise UsageError(f"task.json: agent.{key} has the wrong type ({type(value).__name__})")
    return value


def task_cwd(task: Mapping[str, Any]) -> Path:
    """The task's working folder; it must exist (the CLI would fail later, less clearly)."""
    cwd = Path(str(task.get("cwd") or "~")).expanduser()
    if not cwd.is_dir():
        raise UsageError(f"the task's cwd {cwd} is not a folder")
    return cwd


def load_run_dir(run_dir: Path) -> tuple[dict[str, Any], str]:
    """task.json (as a plain dict) and prompt.txt of a prepared run folder; UsageError if bad."""
    try:
        task = json.loads((run_dir / "task.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{run_dir} has no task.json") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {run_dir / 'task.json'}: {e}") from None
    except ValueError as e:
        raise UsageError(f"{run_dir / 'task.json'} is not valid JSON: {e}") from None
    if not isinstance(task, dict):
        raise UsageError(f"{run_dir / 'task.json'} must hold a JSON object")
    if task.get("command"):
        raise UsageError(
            f"task '{task.get('name')}' is a command task; the daemon runs its command directly"
        )
    try:
        prompt = (run_dir / "prompt.txt").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{run_dir} has no prompt.txt") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read {run_dir / 'prompt.txt'}: {e}") from None
    if not prompt.strip():
        raise UsageError(f"{run_dir / 'prompt.txt'} is empty")
    return task, prompt


def session_to_resume(task: Mapping[str, Any]) -> str | None:
    """The previous success's session id when the task continues its session, else None."""
    agent = task.get("agent") or {}
    if not isinstance(agent, Mapping) or agent.get("continue_session") is not True:
        return None
    sid = task.get("resume_session_id")
    return sid if isinstance(sid, str) and sid else None
