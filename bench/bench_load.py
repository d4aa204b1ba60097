"""Task loading and due computation at 1,000 and 10,000 task files.

Prints, per size: cold load (every file parsed and validated), warm reload (nothing changed:
one scandir plus one stat per file), one changed file, and the due computation for one minute
for all tasks, both with plain ``scheduled_times`` and with ``DueCache`` (the daemon's memo).
Target: warm reload + due for 1,000 tasks under 30 ms, growing linearly.

Usage: .venv/bin/python bench/bench_load.py [SIZES...]   (default: 1000 10000)
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bassi_schedd.config.loader import TaskLoader
from bassi_schedd.config.paths import Home
from bassi_schedd.core.duecache import DueCache
from bassi_schedd.core.schedule import scheduled_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec

SCHEDULES = [
    "* * * * *",
    "*/5 * * * *",
    "0 9 * * MON",
    "30 2 * * *",
    "0 */2 * * 1-5",
    "@hourly",
    "@daily",
    "every 15m",
    "every 2h",
    "daily 09:00",
    "weekdays 08:30",
    "monday 07:00",
    "monthly 1 08:00",
    "15 10 1,15 * *",
]
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney"]


def task_body(i: int) -> str:
    schedule = SCHEDULES[i % len(SCHEDULES)]
    zone = ZONES[i % len(ZONES)]
    if i % 3 == 0:
        kind = 'command = ["/bin/echo", "task"]\n'
    else:
        kind = (
            f'prompt = """\nSummarise the day up to {{date}} for task {i}.\n'
            'Reply as JSON {"ok": true}.\n"""\n'
            '[agent]\nmax_turns = 10\nmax_budget_usd = 0.5\nallowed_tools = ["Read", "Bash"]\n'
        )
    return (
        f'description = "bench task {i}"\nschedule = "{schedule}"\ntimezone = "{zone}"\n'
        f'timeout = "10m"\nretries = 1\noverlap = "skip"\nenv = {{ N = "{i}" }}\n{kind}'
    )


def make_home(root: Path, n: int) -> Home:
    home = Home(root)
    home.ensure()
    for i in range(n):
        path = home.tasks_dir / f"task-{i:05d}.toml"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(task_body(i))
    return home


def ms(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    value = fn()
    return (time.perf_counter() - t0) * 1000, value


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    return statistics.median(ms(fn)[0] for _ in range(repeat))


def due_plain(tasks: dict[str, TaskSpec], after: datetime, until: datetime) -> int:
    return sum(len(scheduled_times(s.schedule, s.zone, after, until)) for s in tasks.values())


def due_cached(
    cache: DueCache, tasks: dict[str, TaskSpec], after: datetime, until: datetime
) -> int:
    return sum(len(cache.due(name, s.schedule, s.zone, after, until)) for name, s in tasks.items())


def bench(n: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bassi-bench-") as tmp:
        t0 = time.perf_counter()
        home = make_home(Path(tmp) / "home", n)
        gen_ms = (time.perf_counter() - t0) * 1000
        loader = TaskLoader(home, DaemonConfig(timezone="UTC"))
        cold_ms, result = ms(loader.load)
        tasks = result.tasks  # type: ignore[attr-defined]
        assert len(tasks) == n, (len(tasks), list(result.errors.items())[:3])  # type: ignore[attr-defined]
        warm_ms = median_ms(loader.load, 7)

        one = home.tasks_dir / "task-00000.toml"
        st = one.stat()
        os.utime(one, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
        one_changed_ms, _ = ms(loader.load)

        now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
        after = now - timedelta(minutes=1)
        due_ms, due_count = ms(lambda: due_plain(tasks, after, now))
        cache = DueCache()
        fill_ms, _ = ms(lambda: due_cached(cache, tasks, after, now))
        nxt = now + timedelta(minutes=1)
        cached_ms = median_ms(lambda: due_cached(cache, tasks, now, nxt), 5)
        tick_ms = median_ms(lambda: due_cached(cache, loader.load().tasks, now, nxt), 5)

    print(f"--- {n} task files (written in {gen_ms:.0f} ms)")
    print(
        f"cold load                         {cold_ms:9.1f} ms  ({cold_ms * 1000 / n:.0f} us/file)"
    )
    print(
        f"warm reload, nothing changed      {warm_ms:9.2f} ms  ({warm_ms * 1000 / n:.2f} us/file)"
    )
    print(f"warm reload, one file touched     {one_changed_ms:9.2f} ms")
    print(f"due for one minute, scheduled_times {due_ms:7.1f} ms  ({due_count} due)")
    print(f"due for one minute, DueCache first  {fill_ms:7.1f} ms")
    print(f"due for one minute, DueCache warm   {cached_ms:7.2f} ms")
    print(f"warm reload + due (DueCache warm)   {tick_ms:7.2f} ms")
    print(f"FIGURE name=load.cold_{n} value={cold_ms:.3f} unit=ms target=-")
    print(f"FIGURE name=load.warm_reload_{n} value={warm_ms:.3f} unit=ms target=-")
    print(f"FIGURE name=load.tick_{n} value={tick_ms:.3f} unit=ms",
          f"target={'<30' if n == 1000 else '-'}")  # fmt: skip


def main(argv: list[str]) -> None:
    sizes = [int(a) for a in argv] or [1000, 10000]
    for n in sizes:
        bench(n)


if __name__ == "__main__":
    main(sys.argv[1:])
