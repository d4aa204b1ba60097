"""Reliability of time: DST nights, a suspended laptop (clock jumps forward), a clock stepped back.

DST: short daemon lives (``run --once`` under libfaketime) 30 s after every :00 and :30 of a
transition night, in the task's zone, with fixed-hour and hourly cron tasks; then a second home
that sleeps through the whole night and wakes once, for each ``on_missed`` policy. The fast
variant checks 2026 in Europe/Berlin and America/New_York against hand-written expectations; the
soak variant checks 2026-2030 in four zones against a brute-force oracle (every UTC minute mapped
to its wall time), which the fast variant first checks against the hand-written table.

Jumps: a running daemon whose clock file is rewritten (libfaketime re-reads it), so its wall
clock steps while its monotonic clock does not.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support import CLI, Start, base_env, db_rows, faketime_env, wait_for

from bassi_schedd.config.paths import Home

ON_TIME_S = 90  # SPEC 4
FIXED = {"f0130": (1, 30), "f0200": (2, 0), "f0230": (2, 30), "f0330": (3, 30)}
SCHEDULES = {**{n: f"{m} {h} * * *" for n, (h, m) in FIXED.items()}, "hourly": "0 * * * *"}
POLICIES = ("skip", "latest", "all")


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def fake(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


# -- DST: expectations ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DstCase:
    """One transition night: first sight at ``register``, last look at ``end`` (both UTC)."""

    name: str
    zone: str
    register: datetime
    end: datetime
    expected: dict[str, list[datetime]]  # task -> scheduled UTC instants in (register, end]


def _hand(name: str, zone: str, day: str, register: str, end: str, **times: str) -> DstCase:
    expected = {task: [] for task in SCHEDULES}
    for task, hhmm in times.items():
        expected[task] = [utc(f"{day}T{x}") for x in hhmm.split()]
    start = utc(register) if "T" in register else utc(f"{day}T{register}")
    return DstCase(name, zone, start, utc(f"{day}T{end}"), expected)


# Worked out by hand from the 2026 transitions (UTC instants).
HAND_CASES = [
    # 01:00 UTC: 02:00 CET -> 03:00 CEST. 02:00 and 02:30 do not exist: both run at 03:00 CEST.
    _hand(
        "berlin-spring",
        "Europe/Berlin",
        "2026-03-29",
        "2026-03-28T23:50:00",
        "02:00:30",
        f0130="00:30",
        f0200="01:00",
        f0230="01:00",
        f0330="01:30",
        hourly="00:00 01:00 02:00",
    ),
    # 01:00 UTC: 03:00 CEST -> 02:00 CET. 02:00 and 02:30 happen twice: the first counts;
    # the hourly task runs in both 02:00 hours.
    _hand(
        "berlin-fall",
        "Europe/Berlin",
        "2026-10-25",
        "2026-10-24T23:50:00",
        "02:30:30",
        f0200="00:00",
        f0230="00:30",
        f0330="02:30",
        hourly="00:00 01:00 02:00",
    ),
    # 07:00 UTC: 02:00 EST -> 03:00 EDT.
    _hand(
        "newyork-spring",
        "America/New_York",
        "2026-03-08",
        "06:50:00",
        "08:00:30",
        f0200="07:00",
        f0230="07:00",
        f0330="07:30",
        hourly="07:00 08:00",
    ),
    # 06:00 UTC: 02:00 EDT -> 01:00 EST. 01:30 happens twice (05:30 and 06:30 UTC).
    _hand(
        "newyork-fall",
        "America/New_York",
        "2026-11-01",
        "04:50:00",
        "07:30:30",
        f0130="05:30",
        f0200="07:00",
        f0230="07:30",
        hourly="05:00 06:00 07:00",
    ),
    # First seen between the two 01:30s: the first was not owed, the second is not a new time.
    _hand(
        "newyork-fall-seen-between",
        "America/New_York",
        "2026-11-01",
        "05:45:00",
        "07:00:30",
        f0200="07:00",
        hourly="06:00 07:00",
    ),
]


def oracle(zone: ZoneInfo, register: datetime, end: datetime) -> dict[str, list[datetime]]:
    """SPEC 4's DST rules by brute force: every UTC minute around the window and its wall time."""
    start = register.replace(second=0) - timedelta(days=1)
    count = int((end - start).total_seconds() // 60) + 2 * 1440
    minutes = [start + timedelta(minutes=i) for i in range(count)]
    walls = [(t, t.astimezone(zone).replace(tzinfo=None)) for t in minutes]

    def owed(t: datetime) -> bool:
        return register < t <= end

    out = {"hourly": [t for t, w in walls if w.minute == 0 and owed(t)]}  # real elapsed hours
    days = sorted({w.date() for _, w in walls})[1:-1]  # whole days only
    for name, (hour, minute) in FIXED.items():
        times = []
        for day in days:
            target = datetime.combine(day, dtime(hour, minute))
            hits = [t for t, w in walls if w == target]
            # Repeated: the first occurrence. Skipped: the first instant after the gap.
            first = min(hits) if hits else min(t for t, w in walls if w > target)
            if owed(first):
                times.append(first)
        out[name] = sorted(times)
    return out


def transitions(zone: ZoneInfo, year: int) -> list[datetime]:
    """The UTC instants (to the minute) at which ``zone`` changes its offset in ``year``."""
    found = []
    t = datetime(year, 1, 1, tzinfo=UTC)
    while t.year == year:
        nxt = t + timedelta(hours=1)
        if t.astimezone(zone).utcoffset() != nxt.astimezone(zone).utcoffset():
            lo = t
            while lo.astimezone(zone).utcoffset() == t.astimezone(zone).utcoffset():
                lo += timedelta(minutes=1)
            found.append(lo)
        t = nxt
    return found


def oracle_cases(years: range, zones: list[str]) -> list[DstCase]:
    cases = []
    for zone_name in zones:
        zone = ZoneInfo(zone_name)
        for year in years:
            for at in transitions(zone, year):
                # From 3 h before to 3 h after: every fixed time of the night is inside.
                register = at - timedelta(hours=3, minutes=10)
                end = at + timedelta(hours=3, seconds=30)
                cases.append(
                    DstCase(
                        f"{zone_name}-{at:%Y-%m-%d}",
                        zone_name,
                        register,
                        end,
                        oracle(zone, register, end),
                    )
                )
    return cases


def test_the_oracle_agrees_with_the_hand_written_2026_nights() -> None:
    for case in HAND_CASES:
        assert oracle(ZoneInfo(case.zone), case.register, case.end) == case.expected, case.name
    berlin = transitions(ZoneInfo("Europe/Berlin"), 2026)
    assert berlin == [utc("2026-03-29T01:00:00"), utc("2026-10-25T01:00:00")]


# -- DST: running the daemon ---------------------------------------------------------------------


def run_once(root: Path, at: datetime) -> None:
    """``run --once`` with the wall clock starting at ``at`` (real speed)."""
    env = base_env(root)
    env.update(faketime_env(fake(at)))
    p = subprocess.run(
        [*CLI, "run", "--once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert p.returncode == 0, p.stderr


def make_home(root: Path, zone: str, policies: tuple[str, ...]) -> Home:
    home = Home(root)
    home.ensure()
    for task, schedule in SCHEDULES.items():
        for policy in policies:
            path = home.tasks_dir / f"{task}-{policy}.toml"
            path.write_text(
                f'schedule = "{schedule}"\ntimezone = "{zone}"\ncommand = ["/bin/true"]\n'
                f'on_missed = "{policy}"\n'
            )
            path.chmod(0o600)
    return home


def rows_by_task(home: Home) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {}
    for r in db_rows(home, "SELECT task, scheduled_for, trigger, status FROM runs ORDER BY seq"):
        out.setdefault(str(r["task"]), []).append(
            (str(r["scheduled_for"]), str(r["trigger"]), str(r["status"]))
        )
    return {k: sorted(v) for k, v in out.items()}


def look_times(case: DstCase) -> list[datetime]:
    """30 s after every :00 and :30 in the window: every fixed and hourly time is seen on time."""
    first = case.register.replace(minute=0, second=0) + timedelta(seconds=30)
    looks = [first + timedelta(minutes=30 * i) for i in range(200)]
    return [t for t in looks if case.register < t <= case.end]


def play_dst_case(case: DstCase, root: Path) -> list[str]:
    """Run both homes of one night; return the differences from what SPEC 4 expects."""
    problems = []
    on_time = make_home(root / "on-time", case.zone, ("latest",))
    run_once(on_time.root, case.register)
    for look in look_times(case):
        run_once(on_time.root, look)
    got = rows_by_task(on_time)
    for task, times in case.expected.items():
        want = [(iso(t), "schedule", "success") for t in times]
        if got.get(f"{task}-latest", []) != want:
            problems.append(f"{case.name} on time {task}: got {got.get(f'{task}-latest')}")

    asleep = make_home(root / "asleep", case.zone, POLICIES)
    run_once(asleep.root, case.register)
    run_once(asleep.root, case.end + timedelta(minutes=10))  # one wake-up after the night
    got = rows_by_task(asleep)
    for task, times in case.expected.items():
        missed = {
            "skip": [(iso(t), "catchup", "missed") for t in times],
            "latest": [(iso(t), "catchup", "coalesced") for t in times[:-1]]
            + [(iso(t), "catchup", "success") for t in times[-1:]],
            "all": [(iso(t), "catchup", "success") for t in times],
        }
        for policy, want in missed.items():
            if got.get(f"{task}-{policy}", []) != sorted(want):
                problems.append(
                    f"{case.name} asleep {task}-{policy}: got {got.get(f'{task}-{policy}')}"
                )
    return problems


# make test plays three hand-made nights (two zones, both directions, a look between the two
# 01:00s); make soak plays all of them and five years of four zones from the oracle.
FAST_NIGHTS = ("berlin-spring", "berlin-fall", "newyork-fall-seen-between")
DST_SIZES = [
    pytest.param([c for c in HAND_CASES if c.name in FAST_NIGHTS], id="fast"),
    pytest.param(
        [c for c in HAND_CASES if c.name not in FAST_NIGHTS]
        + oracle_cases(
            range(2026, 2031),
            ["Europe/Berlin", "America/New_York", "Europe/London", "Australia/Sydney"],
        ),
        id="soak",
        marks=pytest.mark.soak,
    ),
]


@pytest.mark.parametrize("cases", DST_SIZES)
def test_dst_nights_run_each_time_once(tmp_path: Path, cases: list[DstCase]) -> None:
    # Nights are independent homes: play them side by side (each is a string of subprocesses).
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = pool.map(lambda c: play_dst_case(c, tmp_path / c.name), cases)
        problems = [p for r in results for p in r]
    assert problems == []


# -- clock jumps on a running daemon -------------------------------------------------------------


class Clock:
    """The daemon's libfaketime clock file; remembers where it set the clock and when."""

    def __init__(self, path: Path, start: datetime):
        self.path = path
        self.set(start)

    def set(self, at: datetime) -> None:
        self.path.write_text(f"@{fake(at)}\n")
        self.at, self.mono = at, time.monotonic()

    def now(self) -> datetime:
        """The daemon's wall clock, assuming it has read the file since the last set."""
        return self.at + timedelta(seconds=time.monotonic() - self.mono)

    def resync(self, seen: datetime) -> None:
        # libfaketime starts the new time when the process first reads the clock after the
        # file changed, not when the file was written: follow what the daemon logged.
        self.at, self.mono = seen, time.monotonic()


def jump_events(home: Home) -> list[dict[str, object]]:
    lines = home.log_file.read_text().splitlines() if home.log_file.exists() else []
    return [e for e in map(json.loads, lines) if e.get("event") == "clock.jump"]


def minute_marks(after: datetime, until: datetime, step_min: int) -> list[datetime]:
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    out = []
    while t <= until:
        if (t.minute % step_min) == 0:
            out.append(t)
        t += timedelta(minutes=1)
    return out


def expected_after_jump(
    policy: str, times: list[datetime], now: datetime
) -> list[tuple[str, str, str]]:
    """SPEC 4's dispositions of ``times`` found late by a tick at ``now``."""
    late = [t for t in times if (now - t).total_seconds() > ON_TIME_S]
    on_time = [t for t in times if t not in late]
    rows = [(iso(t), "schedule", "success") for t in on_time]
    if policy == "skip":
        rows += [(iso(t), "catchup", "missed") for t in late]
    elif policy == "latest":
        newest = None if on_time else late[-1:]
        rows += [
            (iso(t), "catchup", "success" if newest and t == newest[0] else "coalesced")
            for t in late
        ]
    else:
        cut = max(0, len(late) - 100)
        rows += [(iso(t), "catchup", "missed") for t in late[:cut]]
        rows += [(iso(t), "catchup", "success") for t in late[cut:]]
    return sorted(rows)


JUMP_TASKS = {"hourly": ("0 * * * *", 60), "minutely": ("* * * * *", 1)}


@pytest.mark.parametrize(
    "jumps", [pytest.param(1, id="fast"), pytest.param(3, id="soak", marks=pytest.mark.soak)]
)
def test_forward_jump_of_a_running_daemon(
    home: Home, write_task, daemon: Start, tmp_path: Path, jumps: int
) -> None:
    for kind, (schedule, _) in JUMP_TASKS.items():
        for policy in POLICIES:
            write_task(
                f"{kind}-{policy}",
                f'schedule = "{schedule}"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'
                f'on_missed = "{policy}"\n',
            )
    home.config_file.write_text("max_concurrent = 8\n")
    clock = Clock(tmp_path / "clock", utc("2026-11-01T05:59:50"))
    d = daemon(clock_file=clock.path)
    d.wait_ready()
    time.sleep(0.5)  # past the loop's first wall/monotonic reading
    for k in range(jumps):
        # Step only away from a boundary, so no tick slips in between reading and stepping.
        wait_for(lambda: 3 < clock.now().second < 57, 60, every=0.2)
        checked = {
            str(r["task"]): datetime.fromisoformat(str(r["last_checked"]))
            for r in db_rows(home, "SELECT task, last_checked FROM task_state")
        }
        clock.set(clock.now().replace(microsecond=0) + timedelta(hours=3))
        event = wait_for(lambda n=k: len(jump_events(home)) > n and jump_events(home)[n], 45)
        assert isinstance(event, dict)
        now = datetime.fromisoformat(str(event["now"]))
        clock.resync(now)
        # The daemon notices at its next wake-up (at most 30 s later); the step is 3 h minus that.
        assert 3 * 3600 - 35 < float(str(event["jump_s"])) < 3 * 3600 + 1, event

        def settled(n: datetime = now) -> bool:
            # The jump's tick has committed (last_checked moved to it) and its runs are over.
            # (The state DB keeps milliseconds: allow for the truncation.)
            checks = db_rows(home, "SELECT last_checked FROM task_state")
            tick = n - timedelta(milliseconds=1)
            if any(datetime.fromisoformat(str(r["last_checked"])) < tick for r in checks):
                return False
            rows = db_rows(home, "SELECT status FROM runs WHERE scheduled_for <= ?", (iso(n),))
            return all(r["status"] not in ("queued", "running") for r in rows)

        wait_for(settled, 90, every=0.25)
        got = rows_by_task(home)
        for kind, (_, step_min) in JUMP_TASKS.items():
            for policy in POLICIES:
                task = f"{kind}-{policy}"
                times = minute_marks(checked[task], now, step_min)
                assert len(times) >= 3 * 60 // step_min - 1, (task, checked[task], now)
                window = [r for r in got[task] if iso(checked[task]) < r[0] <= iso(now)]
                assert window == expected_after_jump(policy, times, now), (task, now)
    assert d.stop() == 0
    # Times after the last jump were ticked on time; nothing else ever ran twice.
    for task, rows in rows_by_task(home).items():
        assert len({r[0] for r in rows}) == len(rows), task


@pytest.mark.parametrize(
    "steps", [pytest.param(1, id="fast"), pytest.param(3, id="soak", marks=pytest.mark.soak)]
)
def test_clock_stepped_back_reruns_nothing_and_loses_nothing(
    home: Home, write_task, daemon: Start, tmp_path: Path, steps: int
) -> None:
    for kind, (schedule, _) in JUMP_TASKS.items():
        for policy in ("latest", "all"):
            write_task(
                f"{kind}-{policy}",
                f'schedule = "{schedule}"\ntimezone = "UTC"\ncommand = ["/bin/true"]\n'
                f'on_missed = "{policy}"\n',
            )
    clock = Clock(tmp_path / "clock", utc("2026-11-01T05:59:56"))
    d = daemon(clock_file=clock.path)
    d.wait_ready()
    minute = utc("2026-11-01T06:00:00")
    for k in range(steps):
        # The runs of `minute` happen on time.
        wait_for(
            lambda m=minute: len(db_rows(home, ok_sql(m))) == 2 * (2 if m.minute == 0 else 1), 20
        )
        # Step back an hour, 4 s before a boundary: hourly 05:00 is only 56 s old then.
        clock.set(minute - timedelta(hours=1) + timedelta(seconds=56))
        d.signal(signal.SIGHUP)  # wake at once rather than at the loop's 30 s cap
        wait_for(lambda n=2 * k + 1: len(jump_events(home)) == n, 20)
        # The daemon lives through a boundary of the past hour (05:01 on the first step).
        back = minute - timedelta(hours=1)
        wait_for(
            lambda b=back: b + timedelta(minutes=1) <= last_tick(home) < b + timedelta(minutes=2),
            20,
        )
        # Forward again, 3 s before the next boundary.
        clock.set(minute + timedelta(seconds=57))
        d.signal(signal.SIGHUP)
        wait_for(lambda n=2 * k + 2: len(jump_events(home)) == n, 20)
        minute += timedelta(minutes=1)
        wait_for(lambda m=minute: len(db_rows(home, ok_sql(m))) == 2, 20)
    assert d.stop() == 0
    rows = rows_by_task(home)
    minutes = [utc("2026-11-01T06:00:00") + timedelta(minutes=i) for i in range(steps + 1)]
    for policy in ("latest", "all"):
        assert rows[f"minutely-{policy}"] == [(iso(m), "schedule", "success") for m in minutes]
        assert rows[f"hourly-{policy}"] == [(iso(minutes[0]), "schedule", "success")]
    jumps = [float(str(e["jump_s"])) for e in jump_events(home)]
    # Each step is about an hour (less the seconds between the last tick and the step).
    assert all(3500 < abs(j) < 3601 for j in jumps), jumps
    assert [j < 0 for j in jumps] == [True, False] * steps


def ok_sql(minute: datetime) -> str:
    return f"SELECT 1 FROM runs WHERE scheduled_for = '{iso(minute)}' AND status = 'success'"


def last_tick(home: Home) -> datetime:
    rows = db_rows(home, "SELECT value FROM meta WHERE key = 'last_tick'")
    return (
        datetime.fromisoformat(str(rows[0]["value"])) if rows else datetime.min.replace(tzinfo=UTC)
    )
