"""Tasks as systemd units (SPEC 12): ``bassi-NAME.service`` (Type=oneshot, runs
``bassi-schedd execute NAME``) and ``bassi-NAME.timer``. Pure: text in, text out.

The service runs the task exactly as ``bassi-schedd execute NAME`` does by hand: the run is
recorded in BASSI_HOME's history, with its run folder, transcript and result files, and
bassi-schedd enforces ``timeout`` itself; ``TimeoutStartSec=`` is only the backstop.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from bassi_schedd.core.spec import TaskSpec
from bassi_schedd.export.notes import DEADLINE_MARGIN_S
from bassi_schedd.export.schedules import oncalendar

DAEMON_UNIT = "bassi-schedd"  # the daemon's own unit (service/systemd): never a task's
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def unit_stem(task: str) -> str:
    """``bassi-NAME``: task names (``[a-z0-9][a-z0-9_-]*``) are valid unit names as they are."""
    return f"bassi-{task}"


def service_unit(task: TaskSpec, argv: Sequence[str], env: Mapping[str, str]) -> str:
    """The oneshot service; ``argv`` starts bassi-schedd (absolute path first)."""
    exec_start = " ".join(_quoted_arg(a) for a in (*argv, "execute", task.name))
    environment = " ".join(f'"{_quoted_body(f"{k}={v}")}"' for k, v in env.items())
    return "\n".join(
        [
            _header(task),
            "[Unit]",
            f"Description={_description(task)}",
            "",
            "[Service]",
            "Type=oneshot",
            f"ExecStart={exec_start}",
            f"Environment={environment}",
            "# Folders 0700, files 0600 (SPEC 2), as under the daemon.",
            "UMask=0077",
            "# bassi-schedd stops the run at its timeout and records it; this is the backstop.",
            f"TimeoutStartSec={math.ceil(task.timeout_s) + DEADLINE_MARGIN_S}",
            f"SyslogIdentifier={unit_stem(task.name)}",
            "",
        ]
    )


def timer_unit(task: TaskSpec) -> str:
    """The timer; raises ``NotExactError`` when the schedule has no exact ``OnCalendar=``."""
    calendars = oncalendar(task.schedule, task.timezone)
    lines = [
        _header(task),
        "[Unit]",
        f"Description={_description(task)} ({_escape(task.schedule.text.strip())})",
        "",
        "[Timer]",
        *(f"OnCalendar={c}" for c in calendars),
        # Persistent: a time missed while the machine was off runs once at the next boot, as
        # on_missed = latest does; skip runs only on time.
        f"Persistent={'false' if task.on_missed == 'skip' else 'true'}",
        "AccuracySec=1s",
    ]
    if task.jitter_s > 0:
        # FixedRandomDelay: the same delay every time, as bassi's per-task jitter.
        lines += [f"RandomizedDelaySec={math.ceil(task.jitter_s)}", "FixedRandomDelay=true"]
    if not task.enabled:
        lines.append("# The task is paused (enabled = false): do not enable this timer.")
    lines += ["", "[Install]", "WantedBy=timers.target", ""]
    return "\n".join(lines)


def _header(task: TaskSpec) -> str:
    return (
        f"# Written by `bassi-schedd export systemd` from {_CONTROL.sub(' ', str(task.path))}\n"
        "# Edit the task file and export again rather than this file.\n"
    )


def _description(task: TaskSpec) -> str:
    text = f"bassi-schedd task {task.name}"
    if task.description.strip():
        text += f": {task.description.strip()}"
    return _escape(text[:200])


def _escape(text: str) -> str:
    """A value on one line: no control characters, ``%`` doubled (specifiers), and no trailing
    backslash (which would continue the line)."""
    return _CONTROL.sub(" ", text).replace("%", "%%").rstrip("\\ ")


def _quoted_body(value: str) -> str:
    # Inside "...": \ and " need a backslash; % is doubled because systemd expands specifiers
    # even inside quotes.
    return _CONTROL.sub(" ", value).replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")


def _quoted_arg(value: str) -> str:
    # ExecStart also expands $VAR: $$ is a literal $.
    return f'"{_quoted_body(value).replace("$", "$$")}"'
