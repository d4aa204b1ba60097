"""Schedule engine speed: cold first computation and warm per-minute due computation.

Prints figures; asserts nothing. Run: .venv/bin/python bench/bench_schedule.py
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from bassi_schedd.core.schedule import (
    DueCache,
    Schedule,
    next_times,
    parse_schedule,
    scheduled_times,
)

ZONES = [ZoneInfo(z) for z in ("Europe/Berlin", "America/New_York", "Australia/Lord_Howe",
                               "Asia/Kolkata", "UTC")]  # fmt: skip
START = datetime(2026, 10, 24, 22, 0, tzinfo=UTC)  # the night of Berlin's fall-back
TICKS = 120
LIMIT = 1000


def make_tasks(n: int, rng: random.Random) -> list[tuple[Schedule, ZoneInfo]]:
    """A mix of cron, macro, every and alias schedules over a few zones."""
    makers = [
        lambda: "* * * * *",
        lambda: f"*/{rng.choice((5, 10, 15, 20, 30))} * * * *",
        lambda: f"{rng.randrange(60)} * * * *",
        lambda: f"{rng.randrange(60)} {rng.randrange(24)} * * *",
        lambda: f"{rng.randrange(60)} {rng.randrange(7, 19)} * * MON-FRI",
        lambda: f"0 {rng.randrange(24)} {rng.randrange(1, 29)} * *",
        lambda: rng.choice(("@hourly", "@daily", "@weekly", "@monthly")),
        lambda: f"every {rng.choice((1, 5, 15, 90))}m",
        lambda: f"every {rng.choice((2, 6))}h",
        lambda: f"daily {rng.randrange(24):02d}:{rng.randrange(60):02d}",
        lambda: f"weekdays {rng.randrange(24):02d}:{rng.randrange(60):02d}",
        lambda: f"{rng.choice(('monday', 'fri', 'sunday'))} 09:00",
        lambda: f"monthly {rng.randrange(1, 32)} 08:00",
        lambda: "0 0 L * *",
    ]
    return [(parse_schedule(rng.choice(makers)()), rng.choice(ZONES)) for _ in range(n)]


def cold(tasks: list[tuple[Schedule, ZoneInfo]]) -> float:
    """What the daemon does for a task it has not memoised: the window, then the next time."""
    t0 = time.perf_counter()
    for s, zone in tasks:
        if not scheduled_times(s, zone, START - timedelta(minutes=1), START, limit=LIMIT):
            next_times(s, zone, START, 1)
    return (time.perf_counter() - t0) * 1000


def ticks(tasks: list[tuple[Schedule, ZoneInfo]], cache: DueCache | None) -> list[float]:
    """Per-minute due computation for every task over TICKS minutes; ms per tick."""
    out = []
    after = START
    for minute in range(1, TICKS + 1):
        until = START + timedelta(minutes=minute, seconds=1)
        t0 = time.perf_counter()
        for i, (s, zone) in enumerate(tasks):
            if cache is not None:
                cache.due(i, s, zone, after, until, LIMIT)
            else:
                scheduled_times(s, zone, after, until, LIMIT)
        out.append((time.perf_counter() - t0) * 1000)
        after = until
    return out


def summary(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"mean {statistics.mean(ms):7.2f}  p50 {q[9]:7.2f}  p95 {q[18]:7.2f}  max {max(ms):7.2f}"


def main() -> None:
    rng = random.Random(42)
    for n in (1_000, 10_000):
        tasks = make_tasks(n, rng)
        print(f"== {n} tasks (cron, macros, every, aliases; 5 zones; {TICKS} one-minute ticks)")
        print(f"cold first computation (window + next time): {cold(tasks):8.1f} ms")
        cache = DueCache()
        t0 = time.perf_counter()
        for i, (s, zone) in enumerate(tasks):
            cache.due(i, s, zone, START - timedelta(minutes=1), START, LIMIT)
        print(f"cold DueCache fill:                          "
              f"{(time.perf_counter() - t0) * 1000:8.1f} ms")  # fmt: skip
        print(f"warm DueCache per tick (ms):      {summary(ticks(tasks, cache))}")
        idle = [(s, z) for s, z in tasks if s.text not in ("* * * * *", "every 1m")]
        idle_cache = DueCache()
        for i, (s, zone) in enumerate(idle):
            idle_cache.due(i, s, zone, START - timedelta(minutes=1), START, LIMIT)
        print(f"  without every-minute tasks:     {summary(ticks(idle, idle_cache))}"
              f"  ({len(idle)} tasks)")  # fmt: skip
        print(f"no memo, scheduled_times per tick: {summary(ticks(tasks, None))}")
    outage = parse_schedule("* * * * *")
    t0 = time.perf_counter()
    got = scheduled_times(outage, ZONES[0], START - timedelta(days=365), START, limit=LIMIT)
    print(f"year-long outage of '* * * * *', limit {LIMIT}: {len(got)} times in "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
