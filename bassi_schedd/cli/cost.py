"""``cost [TASK] [--since 30d] [--by task|day|month] [--json]``: what runs cost, from history."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bassi_schedd.config.paths import Home
from bassi_schedd.config.taskfile import NAME_RE
from bassi_schedd.core.durations import parse_duration_s
from bassi_schedd.core.errors import UsageError, UserError
from bassi_schedd.core.limits import COST_SINCE
from bassi_schedd.ops.cost import By, CostRow, cost_json, group_costs
from bassi_schedd.store.state import QueryError, open_existing

DEFAULT_SINCE = "30d"


def _since(text: str, now: datetime) -> datetime:
    try:
        since_s = parse_duration_s(text)
    except ValueError as e:
        raise UsageError(f"--since: {e}") from None
    if not COST_SINCE.allows(since_s):
        raise UsageError(f"--since must be {COST_SINCE.span()}, got {text!r}")
    return now - timedelta(seconds=since_s)


def _zone(home: Home) -> ZoneInfo:
    from bassi_schedd.config.settings import load_config, system_timezone
    from bassi_schedd.core.errors import TaskFileError

    try:
        return ZoneInfo(load_config(home).timezone)
    except TaskFileError:
        return ZoneInfo(system_timezone())  # days still mean something with a bad schedd.toml


def main(args: argparse.Namespace, home: Home) -> int:
    """Print spend and tokens grouped by task, day or month (days in the daemon's zone)."""
    task: str | None = args.task
    if task is not None and not NAME_RE.match(task):
        raise UsageError(f"'{task}' is not a task name")
    by: By = args.by
    since = _since(args.since, datetime.now(UTC))
    db = open_existing(home)
    rows = []
    if db is not None:
        try:
            rows = db.cost_rows(task, since)
        except QueryError as e:
            raise UserError(f"cannot read the state database {home.state_db}: {e}") from None
        finally:
            db.close()
    groups = group_costs(rows, by, _zone(home))
    if args.json:
        print(json.dumps(cost_json(groups), indent=2))
        return 0
    if not groups:
        print(f"no runs in the last {args.since}" + (f" of {task}" if task else ""))
        return 0
    print(render(groups, by))
    return 0


def render(groups: list[CostRow], by: By) -> str:
    """A table with a total line."""
    head = [by.upper(), "RUNS", "COST", "TOKENS IN", "TOKENS OUT"]
    body = [
        [g.key, str(g.runs), f"${g.cost_usd:.4f}", str(g.input_tokens), str(g.output_tokens)]
        for g in groups
    ]
    total = [
        "total",
        str(sum(g.runs for g in groups)),
        f"${sum(g.cost_usd for g in groups):.4f}",
        str(sum(g.input_tokens for g in groups)),
        str(sum(g.output_tokens for g in groups)),
    ]
    table = [head, *body, total]
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in table
    )
