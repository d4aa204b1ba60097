"""What does not carry over: one :class:`Note` per task key that has no equivalent on the target.

A key counts only when its value changes what bassi-schedd would do (``overlap = "skip"`` maps,
``overlap = "queue"`` does not; ``retry_delay`` matters only with ``retries``), so a plain task
exports without a word. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bassi_schedd.core.durations import format_duration_s
from bassi_schedd.core.spec import DaemonConfig, TaskSpec

# bassi-schedd enforces `timeout` itself (SIGTERM, grace, SIGKILL, and records the run as
# `timeout`); the scheduler's own deadline is a backstop that leaves it the time to do so
# (Kubernetes also counts pod start-up and image pulls in it).
DEADLINE_MARGIN_S = 60


@dataclass(frozen=True)
class Note:
    """One key of one task that the export cannot carry over (a warning line on stderr)."""

    task: str
    key: str
    text: str

    def line(self) -> str:
        return f"warning: task '{self.task}': key '{self.key}': {self.text}"


@dataclass(frozen=True)
class Problem:
    """A task that cannot be exported (an error for that task only)."""

    task: str
    text: str

    def line(self) -> str:
        return f"error: task '{self.task}': {self.text}"


def _common(task: TaskSpec, config: DaemonConfig, where: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if task.on_missed == "all":
        out.append(("on_missed", f"'all' runs every missed time; {where} runs only the newest"))
    if task.notify is not None or config.notify is not None:
        src = "" if task.notify is not None else " (the default from schedd.toml)"
        out.append(("notify", f"notifications{src} are sent by the daemon, which is not there"))
    if task.healthcheck_url is not None or config.healthcheck_url:
        src = "" if task.healthcheck_url is not None else " (the default from schedd.toml)"
        out.append(("healthcheck_url", f"health-check pings{src} are sent by the daemon only"))
    return out


def kubernetes_notes(task: TaskSpec, config: DaemonConfig) -> list[Note]:
    """The keys of ``task`` a CronJob cannot express (SPEC 12)."""
    out = _common(task, config, "a CronJob")
    if task.overlap == "queue":
        out.append(("overlap", "'queue' becomes concurrencyPolicy Forbid: a due run is skipped"))
    if task.retries:
        out.append(
            (
                "retry_delay",
                f"{format_duration_s(task.retry_delay_s)} is not kept: Kubernetes retries "
                "with its own back-off (10s, 20s, 40s... up to 6m)",
            )
        )
    if task.jitter_s > 0:
        out.append(("jitter", "a CronJob starts on time; the delay is dropped"))
    if task.env:
        out.append(
            (
                "env",
                "its values are stored in the ConfigMap as plain text; keep secret values in "
                "the Secret bassi-secrets and their names in schedd.toml's pass_env",
            )
        )
    if task.cwd != Path.home():
        out.append(("cwd", f"{task.cwd} must exist in the image, or the task will not load there"))
    if task.agent.cli_path is not None:
        out.append(("agent.cli_path", f"{task.agent.cli_path} must exist in the image"))
    out += _history_keys(task, config)
    return [Note(task.name, key, text) for key, text in out]


def _history_keys(task: TaskSpec, config: DaemonConfig) -> list[tuple[str, str]]:
    """SPEC 10 keys that read the task's history, which a pod's empty volume does not have."""
    out = []
    if task.is_agent and (task.budget.any or config.budget.any):
        out.append(("budget", "caps count the runs in one history; each pod starts an empty one"))
    if task.agent.continue_session:
        out.append(("agent.continue_session", "a pod has no earlier session to resume"))
    if task.prompt is not None and "{last_result}" in task.prompt:
        out.append(("prompt", "{last_result} is empty: a pod has no earlier result"))
    return out


def systemd_notes(task: TaskSpec, config: DaemonConfig) -> list[Note]:
    """The keys of ``task`` a timer and a oneshot service cannot express."""
    out = _common(task, config, "a Persistent= timer")
    if task.overlap != "skip":
        out.append(("overlap", f"'{task.overlap}': a timer never starts its service while it runs"))
    if task.missed_deadline_s is not None and task.on_missed != "skip":
        out.append(("missed_deadline", "a Persistent= timer catches up however late it is"))
    if task.retries:
        out.append(("retries", "a oneshot service is not retried; the timer's next time is"))
        out.append(("retry_delay", "there are no retries to delay"))
    if not task.enabled:
        out.append(("enabled", "false: the units are written, do not enable the timer"))
    return [Note(task.name, key, text) for key, text in out]
