"""What a notification says: which event a run raises, the JSON record, the desktop text.

Pure functions of specs and history rows (plus reading a run's output.log and checking programs
on the PATH); the Notifier in ``notify.py`` decides when and how they are delivered.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from bassi_schedd.core.durations import format_duration_s
from bassi_schedd.core.records import iso_utc
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import DaemonConfig, NotifySpec, TaskSpec
from bassi_schedd.notify.delivery import desktop_argv, program_problem
from bassi_schedd.runner.outputcap import tail_text
from bassi_schedd.store.state import RunRow

OUTPUT_TAIL_LINES = 50
OUTPUT_TAIL_MAX_CHARS = 16_000
_LABELS = {
    "success": "succeeded",
    "failure": "failed",
    "timeout": "timed out",
    "missed": "missed a scheduled time",
    "recovered": "recovered",
    "changed": "has a new result",
    "budget": "is over its budget",
}


def effective_notify(task: TaskSpec, config: DaemonConfig) -> NotifySpec | None:
    """The task's ``notify`` table, else the schedd.toml default (the whole table, no merging)."""
    return task.notify if task.notify is not None else config.notify


def effective_healthcheck_url(task: TaskSpec, config: DaemonConfig) -> str | None:
    """The task's ``healthcheck_url``, else the schedd.toml default."""
    url = task.healthcheck_url if task.healthcheck_url is not None else config.healthcheck_url
    return url or None


def end_event(
    status: RunStatus, previous_ok: bool | None, on: Iterable[str], *, changed: bool = False
) -> str | None:
    """The one notify event a finished run raises, given the events the user asked for.

    A success right after a failure is ``recovered``; a success whose result differs from the
    previous success's is ``changed``; preferred in that order over ``success`` when several are
    asked for: one notification per run.
    """
    wanted = set(on)
    ok = ["recovered"] if previous_ok is False else []
    ok += ["changed"] if changed else []
    candidates = {
        RunStatus.SUCCESS: [*ok, "success"],
        RunStatus.FAILED: ["failure"],
        RunStatus.TIMEOUT: ["timeout"],
    }.get(status, [])
    return next((e for e in candidates if e in wanted), None)


def healthcheck_suffix(status: RunStatus, exit_code: int | None) -> str | None:
    """The ping for a finished run: "" (success), the exit code, "fail", or None (no ping)."""
    if status == RunStatus.SUCCESS:
        return ""
    if status == RunStatus.FAILED:
        return str(exit_code) if exit_code is not None and 0 < exit_code <= 255 else "fail"
    if status == RunStatus.TIMEOUT:
        return "fail"
    return None  # interrupted, replaced, lost: the run did not finish; the check notices


def run_record(task: TaskSpec, run: RunRow, event: str, missed_count: int = 1) -> dict[str, Any]:
    """The JSON object a notify program reads on stdin."""
    run_dir = Path(run.run_dir) if run.run_dir else None
    result_md = run_dir / "result.md" if run_dir is not None else None
    record: dict[str, Any] = {
        "event": event,
        "task": task.name,
        "description": task.description,
        "run_id": run.run_id,
        "trigger": run.trigger,
        "attempt": run.attempt,
        "status": run.status,
        "exit_code": run.exit_code,
        "scheduled_for": iso_utc(run.scheduled_for),
        "started_at": iso_utc(run.started_at),
        "ended_at": iso_utc(run.ended_at),
        "duration_s": run.duration_s,
        "cost_usd": run.cost_usd,
        "run_dir": str(run_dir) if run_dir is not None else None,
        "result_md": str(result_md) if result_md is not None and result_md.is_file() else None,
        "output_tail": output_tail(run_dir / "output.log") if run_dir is not None else "",
    }
    if event == "missed":
        record["missed_count"] = missed_count
    if event == "budget":
        record["reason"] = run.detail  # which cap is spent
    return record


def output_tail(path: Path, lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last ``lines`` lines of a run's output.log (at most 16,000 characters)."""
    return tail_text(path, OUTPUT_TAIL_MAX_CHARS, lines)


def notify_problems(
    tasks: Iterable[TaskSpec], config: DaemonConfig, search_path: str | None = None
) -> list[str]:
    """Notify programs that cannot run and desktop notifications that cannot show (doctor).

    One sentence per problem, naming the task file (or schedd.toml for the default).
    ``search_path`` defaults to this process's PATH.
    """
    path = search_path if search_path is not None else os.environ.get("PATH", os.defpath)
    no_desktop = desktop_argv("t", "b", False, path) is None
    problems: list[str] = []
    owners: list[tuple[str, NotifySpec | None]] = [("schedd.toml (default notify)", config.notify)]
    owners += [(str(t.path), t.notify) for t in sorted(tasks, key=lambda t: t.name)]
    for where, spec in owners:
        if spec is None:
            continue
        if spec.command:
            problem = program_problem(spec.command[0], path)
            if problem is not None:
                problems.append(f"{where}: notify program {problem}.")
        if spec.desktop and no_desktop:
            problems.append(
                f"{where}: notify.desktop is on but neither notify-send nor osascript is on "
                "the PATH, so desktop notifications are skipped."
            )
    return problems


def desktop_text(task: TaskSpec, run: RunRow, event: str, missed_count: int = 1) -> tuple[str, str]:
    """Title and body of a desktop notification."""
    title = f"bassi-schedd: {task.name} {_LABELS.get(event, event)}"
    parts = [f"Run {run.run_id}: {run.status}"]
    if run.exit_code is not None:
        parts.append(f"exit code {run.exit_code}")
    if run.duration_s is not None:
        parts.append(f"after {format_duration_s(run.duration_s)}")
    if event == "missed" and missed_count > 1:
        parts.append(f"{missed_count} times missed")
    body = ", ".join(parts)
    return title, f"{body}\n{task.description}" if task.description else body
