"""Spend caps (SPEC 10): which calendar periods count, whether a cap is spent, what a run may spend.

Pure arithmetic; the state store sums the costs (``StateDB.spend``) and the daemon decides with
:func:`decide` before each agent run starts. A task's caps count that task's runs in the task's
zone; the caps of schedd.toml count every run, in the daemon's zone.

The store keeps the spend per task (and for all tasks) in 15-minute slots and in UTC days, by
the time runs started. Every zone in use today is a whole number of quarter hours off UTC, so
any zone's day or month is a range of slots: :func:`spans` cuts it into slots at its ends and
whole UTC days in between, and a month's sum reads at most a few hundred rows, however long the
history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bassi_schedd.core.spec import BudgetSpec


@dataclass(frozen=True)
class Periods:
    """The UTC instants the current day and month began, for the task's and the daemon's zone."""

    task_day: datetime
    task_month: datetime
    all_day: datetime
    all_month: datetime


@dataclass(frozen=True)
class Spent:
    """USD spent by runs that started in each period (``StateDB.spend``)."""

    task_day: float = 0.0
    task_month: float = 0.0
    all_day: float = 0.0
    all_month: float = 0.0


@dataclass(frozen=True)
class Decision:
    """Either a spent cap (``exceeded``: one sentence naming it) or what the run may spend."""

    exceeded: str | None
    max_budget_usd: float | None  # None: no cap and no per-run limit applies


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Local midnight of ``now``'s day in ``zone``, as a UTC instant."""
    local = now.astimezone(zone)
    return _local_midnight(local.year, local.month, local.day, zone)


def month_start(now: datetime, zone: ZoneInfo) -> datetime:
    """Local midnight of the 1st of ``now``'s month in ``zone``, as a UTC instant."""
    local = now.astimezone(zone)
    return _local_midnight(local.year, local.month, 1, zone)


def _local_midnight(year: int, month: int, day: int, zone: ZoneInfo) -> datetime:
    # fold=0 and zoneinfo's handling of a gap: a zone whose midnight is skipped by DST
    # (America/Santiago...) starts the day at the first instant that exists.
    return datetime(year, month, day, tzinfo=zone).astimezone(UTC)


def periods(now: datetime, task_zone: ZoneInfo, daemon_zone: ZoneInfo) -> Periods:
    """The current day and month of a task (its zone) and of all tasks (the daemon's zone)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return Periods(
        task_day=day_start(now, task_zone),
        task_month=month_start(now, task_zone),
        all_day=day_start(now, daemon_zone),
        all_month=month_start(now, daemon_zone),
    )


def decide(
    task_caps: BudgetSpec, global_caps: BudgetSpec, spent: Spent, run_max_usd: float | None
) -> Decision:
    """Whether an agent run may start, and its ``max_budget_usd``.

    A cap is spent when what was spent is at or over it. Otherwise the run gets the smallest of
    its own ``max_budget_usd`` and every cap's remaining amount, so it cannot spend past a cap
    by more than the SDK's own overshoot.
    """
    checks = (
        ("the task's budget.daily_usd", task_caps.daily_usd, spent.task_day, "today"),
        ("the task's budget.monthly_usd", task_caps.monthly_usd, spent.task_month, "this month"),
        ("schedd.toml's budget.daily_usd", global_caps.daily_usd, spent.all_day, "today"),
        (
            "schedd.toml's budget.monthly_usd",
            global_caps.monthly_usd,
            spent.all_month,
            "this month",
        ),
    )
    limit = run_max_usd
    for name, cap, used, when in checks:
        if cap is None:
            continue
        if used >= cap:
            return Decision(f"{name} of ${cap:.2f} is spent (${used:.2f} {when})", None)
        remaining = cap - used
        limit = remaining if limit is None else min(limit, remaining)
    return Decision(None, None if limit is None else round(limit, 6))


SLOT = timedelta(minutes=15)
DAY = timedelta(days=1)


def slot_of(t: datetime) -> datetime:
    """The start of the 15-minute UTC slot ``t`` falls in."""
    u = t.astimezone(UTC)
    return u.replace(minute=u.minute - u.minute % 15, second=0, microsecond=0)


def day_of(t: datetime) -> datetime:
    """The start of the UTC day ``t`` falls in."""
    return t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def spans(start: datetime, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(a, b, c) such that the spend since ``start`` is the slots in [a, b), the UTC days in
    [b, c) and the slots from c on."""
    a = slot_of(start)
    b = day_of(a) if day_of(a) == a else day_of(a) + DAY
    c = day_of(now)
    if b >= c:  # less than one whole UTC day in between: slots only
        return a, a, a
    return a, b, c
