"""`export systemd` against real systemd: the timers' next elapse times (`systemd-analyze calendar`)
equal `bassi-schedd next`, and `systemd-analyze verify` is clean on every exported unit.

Both sides start from one fixed instant away from DST changes: systemd-analyze with
``--base-time=`` (or, where it is too old for that, under libfaketime), ``next`` under
libfaketime. Without systemd-analyze on the machine these tests skip and say why.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from support import CliResult, faketime_env

from bassi_schedd.config.paths import Home
from bassi_schedd.core.schedule import next_times, parse_schedule
from bassi_schedd.export.schedules import oncalendar

BASE = "2026-06-10 07:13:20"  # a Wednesday; months away from any DST change in these zones
N = 20
SCHEDULES = {
    "list": "0,30 9,17 * * *",
    "range": "15 9-17 * * 1-5",
    "step": "*/20 */3 * * *",
    "range-step": "5 8-18/2 * * *",
    "names": "0 7 * JAN-MAR,JUN,OCT MON,WED,FRI",
    "dom-or-dow": "30 6 1,15 * SUN",
    "last-day": "0 12 L * *",
    "hourly": "@hourly",
    "daily": "@daily",
    "weekly": "@weekly",
    "monthly": "@monthly",
    "alias-daily": "daily 09:00",
    "alias-weekdays": "weekdays 08:15",
    "alias-monday": "monday 10:45",
    "alias-monthly": "monthly 31 08:00",
    "every-15m": "every 15m",
    "every-90m": "every 90m",
    "every-6h": "every 6h",
}
ZONES = {"utc": "UTC", "berlin": "Europe/Berlin"}
_ELAPSE = re.compile(
    r"(?:Next elapse|Iter\. #\d+): \w+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC$", re.M
)

Cli = Callable[..., CliResult]


@cache
def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is not installed on this machine (apt-get install systemd)")
    return found


@cache
def _has_base_time() -> bool:
    p = subprocess.run(
        [_analyze(), "calendar", f"--base-time={BASE} UTC", "daily"],
        capture_output=True,
        text=True,
        env={"TZ": "UTC", "PATH": "/usr/bin:/bin"},
    )
    return p.returncode == 0


def systemd_times(calendars: Sequence[str], base: str = BASE) -> list[list[datetime]]:
    """For each OnCalendar= value, its next N elapse times (UTC) after ``base``, per systemd."""
    env = {"TZ": "UTC", "PATH": "/usr/bin:/bin", "SYSTEMD_COLORS": "0"}
    argv = [_analyze(), "calendar", f"--iterations={N}"]
    if _has_base_time():
        argv.append(f"--base-time={base} UTC")
    else:  # older systemd: make its "now" the base instead
        env.update({k: v for k, v in faketime_env(base).items() if k != "FAKETIME_NO_CACHE"})
    p = subprocess.run([*argv, *calendars], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    blocks = p.stdout.split("Normalized form:")[1:]
    assert len(blocks) == len(calendars), p.stdout
    return [
        [datetime.fromisoformat(t).replace(tzinfo=UTC) for t in _ELAPSE.findall(b)] for b in blocks
    ]


def merged(per_calendar: list[list[datetime]]) -> list[datetime]:
    """A timer with several OnCalendar= lines elapses at their union."""
    return sorted({t for times in per_calendar for t in times})[:N]


def timer_calendars(path: Path) -> list[str]:
    lines = path.read_text().splitlines()
    return [line.split("=", 1)[1] for line in lines if line.startswith("OnCalendar=")]


def cli_next(cli: Cli, task: str, zone: str) -> list[datetime]:
    """`bassi-schedd next TASK -n N` at BASE, parsed back to UTC instants."""
    r = cli("next", task, "-n", str(N), env=faketime_env(BASE))
    assert r.returncode == 0, r.stderr
    z = ZoneInfo(zone)
    return [
        datetime.strptime(" ".join(line.split()[1:3]), "%Y-%m-%d %H:%M")
        .replace(tzinfo=z)
        .astimezone(UTC)
        for line in r.stdout.splitlines()
    ]


def near_dst(t: datetime, zone: ZoneInfo) -> bool:
    """Within 2 hours of a change of the zone's UTC offset (gaps and folds are 1 hour here)."""
    return (t - timedelta(hours=2)).astimezone(zone).utcoffset() != (
        t + timedelta(hours=2)
    ).astimezone(zone).utcoffset()


def test_timers_elapse_when_next_says(
    home: Home, write_task: Callable[[str, str], Path], cli: Cli, tmp_path: Path
) -> None:
    _analyze()
    tasks = {}
    for label, schedule in SCHEDULES.items():
        for slug, zone in ZONES.items():
            name = f"{label}-{slug}"
            write_task(name, f'schedule = "{schedule}"\ntimezone = "{zone}"\nprompt = "hi"\n')
            tasks[name] = zone
    out = tmp_path / "units"
    r = cli("export", "systemd", "-o", str(out))
    assert r.returncode == 0 and r.stderr == "", r.stderr

    def compare(name: str) -> tuple[str, list[datetime], list[datetime]]:
        want = cli_next(cli, name, tasks[name])
        got = merged(systemd_times(timer_calendars(out / f"bassi-{name}.timer")))
        return name, want, got

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(compare, sorted(tasks)))
    for name, want, got in results:
        assert len(want) == N and not any(near_dst(t, ZoneInfo(tasks[name])) for t in want)
        assert got == want, name


def test_systemd_analyze_verify_is_clean_on_every_exported_unit(
    home: Home, write_task: Callable[[str, str], Path], cli: Cli, tmp_path: Path
) -> None:
    _analyze()
    write_task(
        "everything",
        'description = "50% of a report; a \\"quoted\\" word"\nschedule = "0 9 1,15 * MON"\n'
        'timezone = "Europe/Berlin"\nprompt = "hi"\ntimeout = "2h"\njitter = "5m"\n'
        'on_missed = "skip"\nretries = 2\n',
    )
    write_task("every", 'schedule = "every 90m"\ncommand = ["/bin/true"]\n')
    write_task("paused", 'schedule = "@daily"\ncommand = ["/bin/true"]\nenabled = false\n')
    write_task("once", 'at = "2030-01-01T00:00"\ncommand = ["/bin/true"]\n')
    for label, schedule in SCHEDULES.items():  # every calendar form the table above has
        write_task(label, f'schedule = "{schedule}"\ntimezone = "Europe/Berlin"\nprompt = "hi"\n')
    out = tmp_path / "units"
    r = cli("export", "systemd", "-o", str(out))
    assert r.returncode == 0, r.stderr
    units = sorted(out.iterdir())
    assert len(units) == 2 * (4 + len(SCHEDULES))
    p = subprocess.run(
        [_analyze(), "verify", *map(str, units)], capture_output=True, text=True, timeout=120
    )
    assert (p.returncode, p.stderr) == (0, "")


def _random_cron(rng: random.Random) -> str:
    def field(lo: int, hi: int) -> str:
        if rng.random() < 0.3:
            return "*"
        parts = []
        for _ in range(rng.randint(1, 3)):
            a, b = sorted(rng.randint(lo, hi) for _ in range(2))
            parts.append(
                rng.choice(
                    [
                        str(a),
                        f"{a}-{b}",
                        f"{a}-{b}/{rng.randint(2, 5)}",
                        f"*/{rng.randint(2, min(9, hi - lo))}",
                    ]
                )
            )
        return ",".join(parts)

    return " ".join([field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)])


def test_random_crons_elapse_as_the_engine_says() -> None:
    """A wider, in-process sweep: 150 random cron lines in four zones, one systemd-analyze call."""
    _analyze()
    rng = random.Random(16)
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"]
    cases = []
    for i in range(150):
        schedule, zone = parse_schedule(_random_cron(rng)), zones[i % len(zones)]
        cases.append((schedule, zone, oncalendar(schedule, zone)))
    flat = [c for _, _, calendars in cases for c in calendars]
    per_line = iter(systemd_times(flat))
    base = datetime.fromisoformat(BASE).replace(tzinfo=UTC)
    compared = 0
    for schedule, zone, calendars in cases:
        got = merged([next(per_line) for _ in calendars])
        want = [t.astimezone(UTC) for t in next_times(schedule, ZoneInfo(zone), base, N)]
        # away from DST: compare up to the first time near a change of offset
        cut = next((i for i, t in enumerate(want) if near_dst(t, ZoneInfo(zone))), N)
        assert got[:cut] == want[:cut], (schedule.text, zone, calendars)
        compared += cut
    assert compared > 150 * N * 0.9


# (schedule, after (UTC), what only bassi runs, what only systemd runs), in Europe/Berlin 2026:
# the differences README "One timer per task with systemd" lists.
DST_CASES = [
    ("30 2 * * *", "2026-03-28 23:30", ["2026-03-29 01:00"], []),  # in the gap: 03:00 CEST
    ("0 * * * *", "2026-10-24 23:30", ["2026-10-25 01:00"], []),  # repeated 02:00 CET
    ("30 2 * * *", "2026-10-24 23:30", [], []),  # repeated fixed time: once, the first
    ("0 * * * *", "2026-03-28 23:30", [], []),  # no 02:00 on the spring-forward night
]


def test_where_systemd_differs_at_dst_is_as_the_readme_says() -> None:
    _analyze()
    zone = ZoneInfo("Europe/Berlin")
    for text, after, only_bassi, only_systemd in DST_CASES:
        schedule = parse_schedule(text)
        calendars = oncalendar(schedule, "Europe/Berlin")
        base = datetime.fromisoformat(after).replace(tzinfo=UTC)
        day_end = base + timedelta(hours=12)
        want = {t.astimezone(UTC) for t in next_times(schedule, zone, base, N) if t < day_end}
        got = {t for t in merged(systemd_times(calendars, base=f"{after}:00")) if t < day_end}
        fmt = "%Y-%m-%d %H:%M"
        assert sorted(t.strftime(fmt) for t in want - got) == only_bassi, text
        assert sorted(t.strftime(fmt) for t in got - want) == only_systemd, text
