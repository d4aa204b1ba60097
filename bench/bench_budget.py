"""The budget check before each agent run start (SPEC 10), with 100k history rows.

Measures ``store.spend.check_budget`` (period arithmetic + one query over the spend slots and
days of schema v4 + the decision) per start, in two histories of 100,000 rows:

- spread: 50 tasks over the last 365 days, 70 % agent runs with a cost (the usual shape);
- this month: every row started this month (the worst case: the index narrows nothing).

For comparison, the same month's sum taken straight from the history rows (what the spend
slots and days avoid).
Prints figures; asserts nothing. Run: .venv/bin/python bench/bench_budget.py
Target: under 1 ms per start.
"""

from __future__ import annotations

import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bassi_schedd.core.records import to_db
from bassi_schedd.core.schedule import parse_schedule
from bassi_schedd.core.spec import AgentOptions, BudgetSpec, DaemonConfig, TaskSpec
from bassi_schedd.store.spend import check_budget
from bassi_schedd.store.state import StateDB

ROWS = 100_000
TASKS = 50
CALLS = 2000
NOW = datetime(2026, 12, 20, 12, 0, tzinfo=UTC)


def fill(path: Path, span_days: float, rng: random.Random) -> None:
    StateDB.open(path).close()  # creates the schema, migrations and all
    con = sqlite3.connect(path)
    rows = []
    for i in range(ROWS):
        started = NOW - timedelta(seconds=rng.uniform(0, span_days * 86400))
        cost = round(rng.uniform(0.001, 0.05), 4) if rng.random() < 0.7 else None
        rows.append((f"r{i:07d}", f"task-{i % TASKS:02d}", to_db(started), to_db(started), cost))
    con.executemany(
        "INSERT INTO runs (run_id, task, trigger, status, scheduled_for, started_at, cost_usd, "
        "created_at) VALUES (?, ?, 'schedule', 'success', ?, ?, ?, '2026-01-01T00:00:00+00:00')",
        rows,
    )
    # What the v4 migration does for an existing history (record_end does it run by run).
    from bassi_schedd.store.schema import MIGRATIONS

    for stmt in MIGRATIONS[4].split(";"):
        if stmt.strip().startswith("INSERT INTO spend_"):
            con.execute(stmt)
    con.commit()
    con.execute("ANALYZE")
    con.close()


def task(name: str) -> TaskSpec:
    return TaskSpec(
        name=name,
        path=Path(f"/tmp/{name}.toml"),
        schedule=parse_schedule("@hourly"),
        timezone="Europe/Berlin",
        prompt="p",
        budget=BudgetSpec(daily_usd=1000.0, monthly_usd=100000.0),
        agent=AgentOptions(max_budget_usd=2.0),
    )


def per_start_ms(db: StateDB, config: DaemonConfig) -> list[float]:
    specs = [task(f"task-{i:02d}") for i in range(TASKS)]
    out = []
    for k in range(CALLS):
        t0 = time.perf_counter()
        check_budget(db, specs[k % TASKS], config, NOW)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def scan_ms(path: Path) -> float:
    """The month's sums straight from the history rows (what the slots and days avoid)."""
    con = sqlite3.connect(path)
    since = to_db(NOW.replace(day=1, hour=0))
    t0 = time.perf_counter()
    for _ in range(20):
        con.execute(
            "SELECT TOTAL(CASE WHEN task = 'task-01' THEN cost_usd END), TOTAL(cost_usd) "
            "FROM runs WHERE cost_usd IS NOT NULL AND started_at >= ?",
            (since,),
        ).fetchone()
    con.close()
    return (time.perf_counter() - t0) * 1000 / 20


def report(label: str, key: str, path: Path) -> None:
    config = DaemonConfig(timezone="UTC", budget=BudgetSpec(daily_usd=1e6, monthly_usd=1e7))
    db = StateDB.open(path)
    try:
        times = per_start_ms(db, config)
    finally:
        db.close()
    times.sort()
    p99 = times[int(len(times) * 0.99)]
    print(
        f"{label:<34} median {statistics.median(times):.3f} ms  p99 {p99:.3f} ms  "
        f"max {times[-1]:.3f} ms  (from the history rows: {scan_ms(path):.2f} ms)"
    )
    # bench/run_all.py reads these.
    print(
        f"FIGURE name=budget.check_{key}_p50 value={statistics.median(times):.4f} unit=ms target=<1"
    )
    print(f"FIGURE name=budget.check_{key}_p99 value={p99:.4f} unit=ms target=<1")


def end_ms(path: Path) -> float:
    """What keeping the spend slots and days costs a run's end: record_end (its own
    transaction, as the daemon does) with a cost, minus the same without one."""
    from bassi_schedd.core.runstatus import RunStatus

    db = StateDB.open(path)
    try:
        rows = [r for r in db.recent_runs(limit=1000) if r.started_at is not None]
        timings: dict[bool, list[float]] = {True: [], False: []}
        for i, row in enumerate(rows):
            with_cost = i % 2 == 0
            t0 = time.perf_counter()
            with db.tx() as tx:
                tx.record_end(row, RunStatus.SUCCESS, 0, NOW, cost_usd=1.0 if with_cost else None)
            timings[with_cost].append((time.perf_counter() - t0) * 1000)
    finally:
        db.close()
    return statistics.median(timings[True]) - statistics.median(timings[False])


def main() -> None:
    rng = random.Random(14)
    print(f"budget check per agent run start, {ROWS:,} history rows, {CALLS} starts")
    with tempfile.TemporaryDirectory() as d:
        spread = Path(d) / "spread.db"
        fill(spread, 365, rng)
        report("spread over a year (50 tasks)", "spread", spread)
        extra = end_ms(spread)
        print(f"keeping the spend totals adds {extra:.3f} ms to a run's end (median)")
        print(f"FIGURE name=budget.end_overhead value={extra:.4f} unit=ms target=-")
        month = Path(d) / "month.db"
        fill(month, 19, rng)  # every row since the 1st of this month
        report("all in this month (worst case)", "month", month)


if __name__ == "__main__":
    main()
