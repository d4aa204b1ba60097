"""What a run takes from the task's previous success (SPEC 10): ``{last_result}``, the session to
continue, and the result's sha256 that tells whether a new success ``changed`` anything.

The caller (the daemon, or ``execute TASK``) finds the previous success in the state DB and
passes its folder here; a folder pruned by retention simply gives nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bassi_schedd.core.template import LAST_RESULT_MAX_BYTES, clip_last_result
from bassi_schedd.runner.outputcap import tail_text


@dataclass(frozen=True)
class RunExtras:
    """What the daemon adds to a run's folder beyond the task: SPEC 10's controls."""

    last_result: str = ""
    max_budget_usd: float | None = None  # the task's, lowered to what its caps leave
    resume_session_id: str | None = None  # continue_session: the previous success's session


def result_file(run_dir: Path, is_agent: bool) -> Path:
    """The file whose content is a run's result: result.md, or a command's output.log."""
    return run_dir / ("result.md" if is_agent else "output.log")


def last_result(run_dir: Path | None, is_agent: bool) -> str:
    """``{last_result}`` from the previous success's folder ("" when there is none)."""
    if run_dir is None:
        return ""
    # Reads only the end: a longer file gives more than the limit, so the cut is marked.
    text = tail_text(result_file(run_dir, is_agent), 2 * LAST_RESULT_MAX_BYTES)
    return clip_last_result(text, command=not is_agent)


def read_run_json(run_dir: Path, name: str) -> dict[str, Any]:
    """A JSON object file of a run folder (task.json, result.json); empty when it is missing,
    unreadable or not a JSON object - callers that must tell why read it themselves."""
    try:
        data = json.loads((run_dir / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_result(run_dir: Path) -> dict[str, Any]:
    """A run's result.json as a dict; empty when it is missing or not a JSON object."""
    return read_run_json(run_dir, "result.json")


def result_usage(result: dict[str, object], key: str) -> object:
    """One token count from result.json's ``usage`` (None when absent)."""
    usage = result.get("usage")
    return usage.get(key) if isinstance(usage, dict) else None


def session_id(run_dir: Path | None) -> str | None:
    """The SDK session id in a run's result.json, if it has one."""
    if run_dir is None:
        return None
    sid = read_result(run_dir).get("session_id")
    return sid if isinstance(sid, str) and sid else None


def result_sha256(run_dir: Path, is_agent: bool) -> str | None:
    """sha256 (hex) of a run's result file; None when it cannot be read."""
    digest = hashlib.sha256()
    try:
        with result_file(run_dir, is_agent).open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 16), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
