"""The budget check of SPEC 10 against the state DB: one indexed query, then core.budget's rule."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from bassi_schedd.core.budget import Decision, Spent, decide, periods
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.store.state import StateDB


def has_caps(task: TaskSpec, config: DaemonConfig) -> bool:
    """Whether any cap applies to ``task`` (command tasks have no cost and ignore budgets)."""
    return task.is_agent and (task.budget.any or config.budget.any)


def check_budget(
    db: StateDB | None, task: TaskSpec, config: DaemonConfig, now: datetime
) -> Decision:
    """May an agent run of ``task`` start at ``now``, and with which ``max_budget_usd``
    (``db`` None: no history yet, nothing spent)."""
    run_max = task.agent.max_budget_usd
    if not has_caps(task, config):
        return Decision(None, run_max)
    from zoneinfo import ZoneInfo

    spent = Spent()
    if db is not None:
        spent = db.spend(task.name, periods(now, task.zone, ZoneInfo(config.timezone)), now)
    return decide(task.budget, config.budget, spent, run_max)


def over_caps(
    db: StateDB | None, tasks: Iterable[TaskSpec], config: DaemonConfig, now: datetime
) -> dict[str, str]:
    """The tasks whose next agent run would be refused now, with the sentence why."""
    out = {}
    for task in tasks:
        if has_caps(task, config):
            exceeded = check_budget(db, task, config, now).exceeded
            if exceeded is not None:
                out[task.name] = exceeded
    return out
