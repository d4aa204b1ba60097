"""Prompt templating (SPEC 3): a fixed set of ``{name}`` variables, everything else verbatim.

Only the documented names (:data:`VARIABLES`) are replaced, and only in the exact form
``{name}`` (no spaces, no format spec). Any other brace text - JSON such as ``{"a": 1}``,
code, ``{unknown}``, ``{ date }`` - is left exactly as written, so prompts never need escaping.

To write a literal ``{date}`` in a prompt, double the braces: ``{{date}}`` becomes ``{date}``.
This applies to those names only; ``{{anything_else}}`` (e.g. a Jinja example) is kept as is.

Values when the task has no previous run: ``last_run_date`` and ``last_run_status`` are
"never", ``last_run_success`` is "false".

SPEC 10 adds ``{last_result}`` (the previous success's result, see :func:`clip_last_result`) and
``{when_output}`` (the gate's stdout, last 10 KB; filled in by the run's child once the gate ran,
so the daemon renders prompts of gated tasks with :data:`LATE` left for later).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

VARIABLES = (
    "date",
    "time",
    "timestamp",
    "weekday",
    "task_name",
    "scheduled_for",
    "run_id",
    "last_run_date",
    "last_run_status",
    "last_run_success",
    "last_result",
    "when_output",
)
# Known only after the gate ran, in the run's child: the first rendering keeps it as written.
LATE = ("when_output",)
LAST_RESULT_MAX_BYTES = 20 * 1024
LAST_RESULT_LINES = 200  # of a command task's output.log
WHEN_OUTPUT_MAX_BYTES = 10 * 1024
CUT_MARK = "[...]"
NEVER = "never"
# English on purpose: strftime("%A") follows the daemon's locale, which users do not control.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_NAMES = "|".join(VARIABLES)
_PLACEHOLDER = re.compile(r"\{\{(" + _NAMES + r")\}\}|\{(" + _NAMES + r")\}")


class LastRun(Protocol):
    """What templating needs of the previous run (a state.RunRow fits)."""

    @property
    def started_at(self) -> datetime | None: ...
    @property
    def status(self) -> str: ...


def render_prompt(text: str, values: Mapping[str, str], keep: tuple[str, ...] = ()) -> str:
    """Replace the documented ``{name}`` variables found in ``values``; leave all else alone.

    Names in ``keep`` stay exactly as written, escaped or not, for a later rendering.
    """

    def sub(m: re.Match[str]) -> str:
        escaped, name = m.group(1), m.group(2)
        if (escaped or name) in keep:
            return m.group(0)
        if escaped is not None:
            return "{" + escaped + "}"
        return values.get(name, m.group(0))

    return _PLACEHOLDER.sub(sub, text)


def clip_tail(text: str, max_bytes: int, max_lines: int | None = None) -> str:
    """The end of ``text``: at most ``max_lines`` lines and ``max_bytes`` UTF-8 bytes; when
    something was cut, a ``[...]`` line says so at the start."""
    cut = False
    if max_lines is not None:
        lines = text.splitlines(keepends=True)
        if len(lines) > max_lines:
            text, cut = "".join(lines[-max_lines:]), True
    data = text.encode("utf-8")
    budget = max_bytes - len(CUT_MARK) - 1
    if len(data) > max_bytes:
        tail = data[-budget:].decode("utf-8", errors="ignore")
        newline = tail.find("\n")
        # Start at a whole line when one begins in the kept part: a half line reads as noise.
        text, cut = (tail[newline + 1 :] if 0 <= newline < len(tail) - 1 else tail), True
    return f"{CUT_MARK}\n{text}" if cut else text


def clip_last_result(text: str, *, command: bool) -> str:
    """``{last_result}``: a result.md, or for a command task its output.log's last 200 lines,
    at most 20 KB."""
    lines = LAST_RESULT_LINES if command else None
    return clip_tail(text, LAST_RESULT_MAX_BYTES, lines)


def template_values(
    task_name: str,
    scheduled_for: datetime,
    run_id: str,
    last_run: LastRun | None,
    last_result: str = "",
) -> dict[str, str]:
    """The variables for one run; ``scheduled_for`` is aware, in the task's zone.

    ``date``/``time``/``weekday``/``timestamp`` are the scheduled time in the task zone
    (timestamp is ISO 8601 with offset); ``scheduled_for`` is the same instant in UTC, as in
    ``BASSI_SCHEDULED_FOR``; ``last_run_date`` is the previous run's start date in the task zone.
    """
    if scheduled_for.tzinfo is None:
        raise ValueError("scheduled_for must be timezone-aware")
    local = scheduled_for.replace(microsecond=0)
    values = {
        "date": local.strftime("%Y-%m-%d"),
        "time": local.strftime("%H:%M"),
        "timestamp": local.isoformat(),
        "weekday": WEEKDAYS[local.weekday()],
        "task_name": task_name,
        "scheduled_for": local.astimezone(UTC).isoformat(),
        "run_id": run_id,
        "last_run_date": NEVER,
        "last_run_status": NEVER,
        "last_run_success": "false",
        "last_result": last_result,
        "when_output": "",  # the gate's, filled in by the run's child (runner/gate.py)
    }
    if last_run is not None:
        started = last_run.started_at
        if started is not None:
            values["last_run_date"] = started.astimezone(local.tzinfo).strftime("%Y-%m-%d")
        values["last_run_status"] = last_run.status
        values["last_run_success"] = "true" if last_run.status == "success" else "false"
    return values
