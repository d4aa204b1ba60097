"""``cost``: spend and tokens from the history, per task, day or month (SPEC 10).

Shared by the CLI and the dashboard; the rows come from the store (``StateDB.cost_rows``), the
grouping is here. Days and months are calendar days in the daemon's zone (schedd.toml), the
zone the all-task caps count in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

By = Literal["task", "day", "month"]
Row = tuple[str, datetime, float | None, int | None, int | None]


@dataclass
class CostRow:
    """One group: how many runs started in it, what they cost, their tokens."""

    key: str
    runs: int = 0
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "runs": self.runs,
            "cost_usd": round(self.cost_usd, 6),
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }


def group_costs(rows: list[Row], by: By, zone: ZoneInfo) -> list[CostRow]:
    """Sum ``rows`` (task, started_at, cost, tokens in, tokens out) by task, day or month;
    sorted by key. A run without a cost (a command, a crash) counts as a run costing 0."""
    groups: dict[str, CostRow] = {}
    for task, started, cost, tokens_in, tokens_out in rows:
        local = started.astimezone(zone)
        key = {"task": task, "day": f"{local:%Y-%m-%d}", "month": f"{local:%Y-%m}"}[by]
        g = groups.setdefault(key, CostRow(key))
        g.runs += 1
        g.cost_usd += cost or 0.0
        g.input_tokens += tokens_in or 0
        g.output_tokens += tokens_out or 0
    return [groups[k] for k in sorted(groups)]


def cost_json(groups: list[CostRow]) -> dict[str, Any]:
    """The ``cost --json`` document: rows sorted by key, and the total."""
    return {
        "rows": [g.to_json() for g in groups],
        "total_usd": round(sum(g.cost_usd for g in groups), 6),
    }
