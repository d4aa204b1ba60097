"""Prompt templating (SPEC 3): a fixed set of ``{name}`` variables, everything else verbatim.

Only the ten documented names are replaced, and only in the exact form ``{name}`` (no spaces,
no format spec). Any other brace text - JSON such as ``{"a": 1}``, code, ``{unknown}``,
``{ date }`` - is left exactly as written, so prompts never need escaping.

To write a literal ``{date}`` in a prompt, double the braces: ``{{date}}`` becomes ``{date}``.
This applies to the ten names only; ``{{anything_else}}`` (e.g. a Jinja example) is kept as is.

Values when the task has no previous run: ``last_run_date`` and ``last_run_status`` are
"never", ``last_run_success`` is "false".
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
)
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


def render_prompt(text: str, values: Mapping[str, str]) -> str:
    """Replace the documented ``{name}`` variables found in ``values``; leave all else alone."""

    def sub(m: re.Match[str]) -> str:
        escaped, name = m.group(1), m.group(2)
        if escaped is not None:
            return "{" + escaped + "}"
        return values.get(name, m.group(0))

    return _PLACEHOLDER.sub(sub, text)


def template_values(
    task_name: str, scheduled_for: datetime, run_id: str, last_run: LastRun | None
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
    }
    if last_run is not None:
        started = last_run.started_at
        if started is not None:
            values["last_run_date"] = started.astimezone(local.tzinfo).strftime("%Y-%m-%d")
        values["last_run_status"] = last_run.status
        values["last_run_success"] = "true" if last_run.status == "success" else "false"
    return values
