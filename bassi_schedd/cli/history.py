"""``history [TASK] [-n N] [--status S] [--json]``: past runs, newest first, and per-task figures.

The per-task figures (success rate, mean duration) are computed over the runs shown, so they
always agree with the table above them; ``-n`` widens the window.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bassi_schedd.config.paths import Home
from bassi_schedd.config.taskfile import NAME_RE
from bassi_schedd.core.durations import format_duration_s
from bassi_schedd.core.errors import UsageError, UserError
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.store.state import RunRow, open_existing

MAX_N = 100_000


@dataclass(frozen=True)
class TaskFigures:
    """Per-task numbers over a set of history rows."""

    runs: int
    success: int
    failed: int
    timeout: int
    mean_duration_s: float | None

    @property
    def success_rate(self) -> float | None:
        rated = self.success + self.failed + self.timeout
        return None if rated == 0 else self.success / rated

    def to_json(self) -> dict[str, Any]:
        rate = self.success_rate
        return {
            "runs": self.runs,
            "success": self.success,
            "failed": self.failed,
            "timeout": self.timeout,
            "success_rate": None if rate is None else round(rate, 4),
            "mean_duration_s": (
                None if self.mean_duration_s is None else round(self.mean_duration_s, 3)
            ),
        }


def figures(rows: list[RunRow]) -> dict[str, TaskFigures]:
    """Success rate = success / (success + failed + timeout); mean over runs that ended."""
    out: dict[str, TaskFigures] = {}
    for task in sorted({r.task for r in rows}):
        mine = [r for r in rows if r.task == task]
        durations = [r.duration_s for r in mine if r.duration_s is not None]
        out[task] = TaskFigures(
            runs=len(mine),
            success=sum(r.status == RunStatus.SUCCESS for r in mine),
            failed=sum(r.status == RunStatus.FAILED for r in mine),
            timeout=sum(r.status == RunStatus.TIMEOUT for r in mine),
            mean_duration_s=sum(durations) / len(durations) if durations else None,
        )
    return out


def main(args: argparse.Namespace, home: Home) -> int:
    """Print the history of one task or of all tasks."""
    task: str | None = args.task
    n: int = args.n
    if n < 1 or n > MAX_N:
        raise UsageError(f"-n must be between 1 and {MAX_N}, got {n}")
    if task is not None and not NAME_RE.match(task):
        raise UserError(f"'{task}' is not a task name")
    status = _status(args.status)
    db = open_existing(home)
    rows: list[RunRow] = []
    if db is not None:
        try:
            rows = db.recent_runs(task, n, status)
        finally:
            db.close()
    if task is not None and not rows and not (home.tasks_dir / f"{task}.toml").exists():
        raise UserError(f"no task named '{task}' (no file and no history)")
    if args.json:
        doc = {
            "runs": [r.public() for r in rows],
            "tasks": {name: f.to_json() for name, f in figures(rows).items()},
        }
        print(json.dumps(doc, indent=2))
        return 0
    if not rows:
        what = f" {status}" if status is not None else ""
        print(f"no{what} runs of {task} yet" if task else f"no{what} runs yet")
        return 0
    print(render(rows))
    return 0


def _status(text: str | None) -> RunStatus | None:
    if text is None:
        return None
    try:
        return RunStatus(text)
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise UsageError(f"--status must be one of {known}; got {text!r}") from None


def _when(dt: datetime | None) -> str:
    return "-" if dt is None else dt.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _cost(v: float | None) -> str:
    return "-" if v is None else f"${v:.4f}"


def _tokens(r: RunRow) -> str:
    if r.input_tokens is None and r.output_tokens is None:
        return "-"
    return f"{r.input_tokens or 0}/{r.output_tokens or 0}"


def _row(r: RunRow) -> list[str]:
    return [
        _when(r.started_at),
        r.task,
        r.status,
        r.trigger + (f" #{r.attempt}" if r.attempt > 1 else ""),
        _when(r.scheduled_for),
        "-" if r.duration_s is None else format_duration_s(r.duration_s),
        "-" if r.exit_code is None else str(r.exit_code),
        _cost(r.cost_usd),
        _tokens(r),
        r.run_id,
    ]


_HEAD = [
    "STARTED",
    "TASK",
    "STATUS",
    "TRIGGER",
    "SCHEDULED",
    "DURATION",
    "EXIT",
    "COST",
    "TOKENS IN/OUT",
    "RUN ID",
]


def render(rows: list[RunRow]) -> str:
    """The table (newest first) and one summary line per task."""
    table = [_HEAD, *(_row(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(_HEAD))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in table
    ]
    lines.append(f"(times in the local zone, {datetime.now().astimezone():%Z})")
    for name, f in figures(rows).items():
        rate = f.success_rate
        rate_text = "no finished runs" if rate is None else f"{rate:.0%} success"
        rated = f.success + f.failed + f.timeout
        if rate is not None:
            rate_text += f" ({f.success}/{rated})"
        mean = "-" if f.mean_duration_s is None else format_duration_s(f.mean_duration_s)
        lines.append(f"{name}: {f.runs} shown, {rate_text}, mean duration {mean}")
    return "\n".join(lines)
