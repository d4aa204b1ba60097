"""Frozen, typed specs: a task as loaded from its TOML file, and the daemon settings.

Specs are immutable values; anything that changes at run time lives in the state DB.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from bassi_schedd.core.limits import DEFAULT_MAX_OUTPUT_BYTES
from bassi_schedd.core.schedule import Schedule

OnMissed = Literal["skip", "latest", "all"]
Overlap = Literal["skip", "queue", "replace", "allow"]
NotifyEvent = Literal["success", "failure", "timeout", "missed", "recovered", "changed", "budget"]

DEFAULT_PASS_ENV = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_BASE_URL")


@dataclass(frozen=True)
class AgentOptions:
    """The ``[agent]`` table: options for the bundled claude-agent-sdk executor."""

    model: str | None = None
    max_turns: int | None = None
    max_budget_usd: float | None = None
    allowed_tools: tuple[str, ...] | None = None
    permission_mode: str | None = None
    append_system_prompt: str | None = None
    cli_path: str | None = None
    continue_session: bool = False  # resume the session of the task's last successful run


@dataclass(frozen=True)
class BudgetSpec:
    """The ``[budget]`` table (SPEC 10): spend caps per calendar day and month, in USD."""

    daily_usd: float | None = None
    monthly_usd: float | None = None

    @property
    def any(self) -> bool:
        return self.daily_usd is not None or self.monthly_usd is not None


@dataclass(frozen=True)
class NotifySpec:
    """The ``notify`` table: who hears about which run outcomes."""

    on: tuple[NotifyEvent, ...] = ("failure", "timeout")
    command: tuple[str, ...] | None = None
    desktop: bool = False


@dataclass(frozen=True)
class TaskSpec:
    """One task file, validated. ``name`` is the file stem."""

    name: str
    path: Path
    schedule: Schedule
    timezone: str
    description: str = ""
    prompt: str | None = None
    prompt_file: Path | None = None
    enabled: bool = True
    timeout_s: float = 3600.0
    on_missed: OnMissed = "latest"
    missed_deadline_s: float | None = None
    overlap: Overlap = "skip"
    retries: int = 0
    retry_delay_s: float = 60.0
    jitter_s: float = 0.0
    max_output_bytes: int = DEFAULT_MAX_OUTPUT_BYTES
    cwd: Path = field(default_factory=Path.home)
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] | None = None
    agent: AgentOptions = field(default_factory=AgentOptions)
    notify: NotifySpec | None = None
    healthcheck_url: str | None = None
    when: tuple[str, ...] | None = None  # the gate (SPEC 10): argv run before every run
    when_timeout_s: float = 60.0
    budget: BudgetSpec = field(default_factory=BudgetSpec)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def is_agent(self) -> bool:
        return self.command is None

    def to_json(self) -> dict[str, Any]:
        """The resolved task as written to a run's ``task.json``."""
        data = asdict(self)
        data["path"] = str(self.path)
        data["cwd"] = str(self.cwd)
        data["prompt_file"] = str(self.prompt_file) if self.prompt_file else None
        data["schedule"] = self.schedule.text
        data["schedule_kind"] = self.schedule.kind
        # Values stay out of run folders: the child gets them through its environment.
        data["env"] = {k: "***" for k, _ in self.env}
        return data


@dataclass(frozen=True)
class DaemonConfig:
    """``schedd.toml``: daemon-wide settings and task defaults."""

    timezone: str
    max_concurrent: int = 4
    runner: tuple[str, ...] | None = None
    pass_env: tuple[str, ...] = DEFAULT_PASS_ENV
    log_max_bytes: int = 10 * 1024 * 1024
    log_backups: int = 5
    keep_runs_days: int = 30
    keep_runs: int = 100
    kill_grace_s: float = 10.0  # SIGTERM -> SIGKILL for a run the daemon stops (SPEC 5)
    notify_timeout_s: float = 30.0  # a notify program is killed after this
    notify: NotifySpec | None = None
    healthcheck_url: str | None = None
    budget: BudgetSpec = field(default_factory=BudgetSpec)  # over all tasks together
