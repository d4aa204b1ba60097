"""The range every numeric setting must fall in: task files, schedd.toml and the CLI.

One table, so that validation, ``check`` and the README's table (tests/unit/test_readme.py compares
them) agree. The bounds keep values meaningful, and keep the date arithmetic done with them
(``now - keep_runs_days``, a scheduled time plus its jitter, ``now - --since``) far from the ends
of the calendar Python can represent (years 1 to 9999).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DAY_S = 86400
KB = 1024
MB = 1024**2
GB = 1024**3

Kind = Literal["duration", "count", "size", "usd"]


@dataclass(frozen=True)
class Limit:
    """``low <= value <= high`` (``low < value`` when ``low_exclusive``) for one key."""

    key: str  # as written in the file, dotted for tables ("agent.max_turns")
    where: str  # "task", "schedd.toml" or the command that takes it
    kind: Kind
    low: float
    high: float
    low_exclusive: bool = False

    def allows(self, value: float) -> bool:
        """Whether ``value`` is inside the range (NaN never is)."""
        above = value > self.low if self.low_exclusive else value >= self.low
        return above and value <= self.high

    def show(self, value: float) -> str:
        """A bound as users write it: "30d", "10MB", "1000"."""
        if self.kind == "duration":
            return show_duration(value)
        if self.kind == "size":
            return show_size(int(value))
        return str(int(value)) if value == int(value) else f"{value:g}"

    def span(self) -> str:
        """The range in words, for error messages: "between 1s and 30d"."""
        if self.low_exclusive:
            return f"greater than {self.show(self.low)} and at most {self.show(self.high)}"
        return f"between {self.show(self.low)} and {self.show(self.high)}"


def show_duration(seconds: float) -> str:
    """Whole days, hours, minutes or seconds, in the largest unit that is exact."""
    for unit, size in (("d", DAY_S), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def show_size(n: int) -> str:
    """Bytes in the largest exact unit of 1024: "4KB", "10MB", "1GB"."""
    for unit, size in (("GB", GB), ("MB", MB), ("KB", KB)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n} bytes"


# -- task files ---------------------------------------------------------------------------------
TIMEOUT = Limit("timeout", "task", "duration", 1, 30 * DAY_S)
MISSED_DEADLINE = Limit("missed_deadline", "task", "duration", 1, 366 * DAY_S)
RETRIES = Limit("retries", "task", "count", 0, 100)
# The delay doubles per attempt and is capped at 1 h (policy.py); `check` warns above that.
RETRY_DELAY = Limit("retry_delay", "task", "duration", 0, DAY_S)
JITTER = Limit("jitter", "task", "duration", 0, DAY_S)
MAX_OUTPUT = Limit("max_output", "task", "size", KB, GB)
MAX_TURNS = Limit("agent.max_turns", "task", "count", 1, 10_000)
MAX_BUDGET_USD = Limit("agent.max_budget_usd", "task", "usd", 0, 1000, low_exclusive=True)
WHEN_TIMEOUT = Limit("when_timeout", "task", "duration", 1, DAY_S)
# 0 is allowed: a cap of nothing pauses a task's agent runs without editing `enabled`.
DAILY_USD = Limit("budget.daily_usd", "task, schedd.toml", "usd", 0, 1_000_000)
MONTHLY_USD = Limit("budget.monthly_usd", "task, schedd.toml", "usd", 0, 1_000_000)

# -- schedd.toml --------------------------------------------------------------------------------
MAX_CONCURRENT = Limit("max_concurrent", "schedd.toml", "count", 1, 1000)
LOG_MAX_BYTES = Limit("log_max_bytes", "schedd.toml", "size", 4 * KB, GB)
LOG_BACKUPS = Limit("log_backups", "schedd.toml", "count", 1, 100)
KEEP_RUNS_DAYS = Limit("keep_runs_days", "schedd.toml", "count", 1, 3650)
KEEP_RUNS = Limit("keep_runs", "schedd.toml", "count", 1, 1_000_000)
KILL_GRACE = Limit("kill_grace", "schedd.toml", "duration", 1, 300)
NOTIFY_TIMEOUT = Limit("notify_timeout", "schedd.toml", "duration", 1, 600)

# -- command line -------------------------------------------------------------------------------
LOGS_SINCE = Limit("--since", "logs", "duration", 0, 36500 * DAY_S)
COST_SINCE = Limit("--since", "cost", "duration", 0, 36500 * DAY_S)

ALL = (
    TIMEOUT,
    MISSED_DEADLINE,
    RETRIES,
    RETRY_DELAY,
    JITTER,
    MAX_OUTPUT,
    MAX_TURNS,
    MAX_BUDGET_USD,
    WHEN_TIMEOUT,
    DAILY_USD,
    MONTHLY_USD,
    MAX_CONCURRENT,
    LOG_MAX_BYTES,
    LOG_BACKUPS,
    KEEP_RUNS_DAYS,
    KEEP_RUNS,
    KILL_GRACE,
    NOTIFY_TIMEOUT,
    LOGS_SINCE,
    COST_SINCE,
)

# Defaults that are not bounds but belong with them.
DEFAULT_MAX_OUTPUT_BYTES = 10 * MB
