"""The real daemon: dispatch latency, idle memory and idle CPU. Prints figures, asserts nothing.

(a) Dispatch latency: TASKS ``* * * * *`` command tasks (``date +%s.%N``: the child's own
    wall-clock stamp in its output.log) over TICKS minute boundaries. Each boundary gets its own
    daemon, started under libfaketime a few seconds before a fake boundary with a fixed clock
    offset (``FAKETIME=+N``), so waiting for the boundary costs seconds, not a minute. Children
    get a clean environment (no LD_PRELOAD), so their stamp is real time: stamp + N is the
    daemon's clock. "child" latency = stamp + N - scheduled time (includes fork/exec of the
    wrapper shell and `date`); "recorded" = started_at - scheduled_for from the state DB (the
    daemon's own clock, taken before it prepares the run folder); the `latency_s` of `run.start`
    log lines is the same figure rounded. max_concurrent is raised to 64 so this measures the
    daemon, not the queue; one more boundary runs with the default (4) to show the queue.
(b) Idle memory with 100 far-future tasks after a few ticks (SIGHUP forces a reload and a tick):
    RSS and USS (psutil).
(c) Idle CPU (user+system, psutil) over 60 s scaled x10 (--quick, default) or over the real
    10 minutes (--full).

Targets: dispatch p99 < 1 s, idle RSS < 40 MiB, idle CPU < 1 s per 10 minutes.
Every figure is also printed as ``FIGURE name=<key> value=<number> unit=<unit> target=<text>``
for bench/run_all.py.

    .venv/bin/python bench/bench_daemon.py [--quick | --full] [--tasks 30] [--ticks 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # for the support package

from support import base_env, faketime_lib  # noqa: E402

from bassi_schedd.config.paths import Home  # noqa: E402

CLI = [sys.executable, "-m", "bassi_schedd"]
MIB = 1024 * 1024
# Fake boundaries live far from the real date so no real minute is ever mistaken for one.
FAKE_BASE = datetime(2031, 1, 6, 12, 0, tzinfo=UTC)


# -- shared helpers (bench_cron.py imports these) ---------------------------------------------


def figure(name: str, value: float, unit: str, target: str = "-") -> None:
    """One machine-readable figure line for run_all.py (the protocol: see its docstring)."""
    print(f"FIGURE name={name} value={value:.6g} unit={unit} target={target}", flush=True)


def percentile(values: Iterable[float], p: float) -> float:
    """Linear-interpolated percentile (p in 0..100) of a non-empty sample."""
    xs = sorted(values)
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def load_note() -> str:
    """The 1/5/15-minute load average (other work shares this machine)."""
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} on {os.cpu_count()} CPUs"


def memory_mib(proc: psutil.Process) -> tuple[float, float | None]:
    """(RSS, USS or None) in MiB."""
    try:
        full = proc.memory_full_info()
        return full.rss / MIB, full.uss / MIB
    except psutil.AccessDenied:
        return proc.memory_info().rss / MIB, None


def cpu_s(proc: psutil.Process) -> float:
    """User + system CPU seconds of the process itself."""
    t = proc.cpu_times()
    return float(t.user + t.system)


def _schedstat(pid: int) -> tuple[float, int] | None:
    """(on-CPU seconds, times scheduled in) summed over live threads, from schedstat (ns)."""
    try:
        fields = [
            Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()
            for t in os.listdir(f"/proc/{pid}/task")
        ]
        return sum(int(f[0]) for f in fields) / 1e9, sum(int(f[2]) for f in fields)
    except (OSError, ValueError, IndexError):
        return None


@dataclass(frozen=True)
class Idle:
    """What an idle window cost the daemon."""

    window_s: float  # from one tick to a later one
    cpu_s: float  # psutil user + system (clock ticks: 10 ms steps)
    fine_cpu_s: float | None  # schedstat (ns); None where unavailable
    wakeups: int  # returns from the loop's sleep, as the daemon counts them (meta.wakeups)
    scheduled_in: int | None  # times any thread was put on a CPU (includes I/O waits)


def _tick_meta(home: Home, after: str | None, timeout_s: float) -> tuple[str, int]:
    """(last_tick, wakeups) once a tick later than ``after`` is on record."""

    def read() -> tuple[str, int] | None:
        last, wakeups = meta(home, "last_tick"), meta(home, "wakeups")
        if last is None or wakeups is None or (after is not None and last <= after):
            return None
        return last, int(wakeups)

    return wait_until(read, timeout_s, "the daemon's next tick")  # type: ignore[return-value]


def idle_cpu(home: Home, proc: psutil.Process, window_s: float) -> Idle:
    """Measure from one tick to the first tick ``window_s`` later: the wake-ups are the
    daemon's own count of returns from its sleep, exactly what the figure names."""
    tick0, woke0 = _tick_meta(home, meta(home, "last_tick"), 90)
    cpu0, fine0 = cpu_s(proc), _schedstat(proc.pid)
    time.sleep(window_s - 5)
    tick1, woke1 = _tick_meta(home, tick0, 90)
    while (datetime.fromisoformat(tick1) - datetime.fromisoformat(tick0)).total_seconds() < (
        window_s - 5
    ):
        tick1, woke1 = _tick_meta(home, tick1, 90)
    cpu1, fine1 = cpu_s(proc), _schedstat(proc.pid)
    span_s = (datetime.fromisoformat(tick1) - datetime.fromisoformat(tick0)).total_seconds()
    fine = None if fine0 is None or fine1 is None or fine1[0] < fine0[0] else fine1[0] - fine0[0]
    sched_in = (
        None if fine0 is None or fine1 is None or fine1[1] < fine0[1] else fine1[1] - fine0[1]
    )
    return Idle(span_s, cpu1 - cpu0, fine, woke1 - woke0, sched_in)


def wait_until(predicate: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


# -- the daemon -------------------------------------------------------------------------------


def write_file(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def query(home: Home, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
    if not home.state_db.exists():
        return []
    con = sqlite3.connect(f"file:{home.state_db}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return list(con.execute(sql, params))
    except sqlite3.OperationalError:
        return []  # schema not created yet
    finally:
        con.close()


def meta(home: Home, key: str) -> str | None:
    rows = query(home, "SELECT value FROM meta WHERE key = ?", (key,))
    return str(rows[0]["value"]) if rows else None


def start_daemon(home: Home, extra_env: dict[str, str], out: Path) -> subprocess.Popen[bytes]:
    env = base_env(home.root)
    env.update(extra_env)
    with out.open("ab") as f:
        return subprocess.Popen(
            [*CLI, "--home", str(home.root), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=f,
            stderr=subprocess.STDOUT,
        )


def wait_started(home: Home, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> datetime:
    """Wait for this daemon's first tick; returns its (daemon clock) time."""

    def ticked() -> datetime | None:
        if proc.poll() is not None:
            raise RuntimeError(f"daemon exited with {proc.returncode}")
        if meta(home, "daemon_pid") != str(proc.pid):
            return None
        started, last = meta(home, "daemon_started"), meta(home, "last_tick")
        if started is None or last is None or last < started[:19]:
            return None
        return datetime.fromisoformat(last)

    return wait_until(ticked, timeout_s, "the daemon's first tick")  # type: ignore[return-value]


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- (a) dispatch latency ---------------------------------------------------------------------


def one_boundary(
    home: Home, boundary: datetime, n_tasks: int, lead_s: float, out: Path
) -> tuple[float, str]:
    """Run one daemon across ``boundary``; returns (clock offset N, note)."""
    offset_s = boundary.timestamp() - (time.time() + lead_s)
    env = {
        "LD_PRELOAD": faketime_lib(),
        "FAKETIME": f"{offset_s:+.6f}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
        "TZ": "UTC",
    }
    proc = start_daemon(home, env, out)
    try:
        first = wait_started(home, proc)
        if first >= boundary:
            return offset_s, f"daemon started too late ({first.isoformat()}): raise --lead"
        key = boundary.isoformat(timespec="seconds")

        def all_ended() -> bool:
            rows = query(
                home,
                "SELECT status FROM runs WHERE scheduled_for = ? AND trigger = 'schedule'",
                (key,),
            )
            return len(rows) >= n_tasks and all(
                r["status"] not in ("running", "queued") for r in rows
            )

        wait_until(all_ended, lead_s + 60, f"{n_tasks} runs at {key}")
        return offset_s, ""
    finally:
        stop_daemon(proc)


def latency(n_tasks: int, ticks: int, lead_s: float, tmp: Path) -> None:
    home = Home(tmp / "latency")
    home.ensure()
    for i in range(n_tasks):
        write_file(
            home.tasks_dir / f"lat-{i:03d}.toml",
            'schedule = "* * * * *"\ncommand = ["date", "+%s.%N"]\ntimeout = "1m"\n',
        )
    offsets: dict[str, tuple[float, int]] = {}  # scheduled_for -> (offset, max_concurrent)
    for k in range(ticks + 1):
        max_concurrent = 64 if k < ticks else 4
        write_file(home.config_file, f"max_concurrent = {max_concurrent}\n")
        boundary = FAKE_BASE + timedelta(minutes=k)
        offset_s, note = one_boundary(home, boundary, n_tasks, lead_s, tmp / "latency.out")
        if note:
            print(f"boundary {boundary.isoformat()}: {note}")
        offsets[boundary.isoformat(timespec="seconds")] = (offset_s, max_concurrent)

    run_start = {}  # run_id -> latency_s from the run.start log line
    for line in home.log_file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if rec.get("event") == "run.start" and "latency_s" in rec:
            run_start[rec["run_id"]] = float(rec["latency_s"])

    child: dict[int, list[float]] = {64: [], 4: []}
    recorded: dict[int, list[float]] = {64: [], 4: []}
    logged: list[float] = []
    spawn: list[float] = []  # child stamp - started_at: run folder, DB, fork/exec (a sanity check)
    bad = 0
    rows = query(home, "SELECT * FROM runs WHERE trigger = 'schedule' ORDER BY seq")
    for r in rows:
        offset_s, conc = offsets.get(r["scheduled_for"], (math.nan, 0))
        if conc == 0 or r["status"] != "success" or not r["run_dir"]:
            bad += 1
            continue
        sched = datetime.fromisoformat(r["scheduled_for"])
        started = datetime.fromisoformat(r["started_at"])
        recorded[conc].append((started - sched).total_seconds())
        try:
            stamp = float((Path(r["run_dir"]) / "output.log").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            bad += 1
            continue
        child[conc].append(stamp + offset_s - sched.timestamp())
        spawn.append(child[conc][-1] - recorded[conc][-1])
        if conc == 64 and r["run_id"] in run_start:
            logged.append(run_start[r["run_id"]])

    print(f"(a) dispatch latency, {n_tasks} '* * * * *' command tasks, real daemon, libfaketime")
    print(f"    runs not counted (failed, missing stamp, other time): {bad}")
    for conc, label in ((64, f"max_concurrent=64, {ticks} boundaries"), (4, "default 4, 1")):
        xs, ys = child[conc], recorded[conc]
        if not xs:
            print(f"    {label}: no samples")
            continue
        print(
            f"    {label}: {len(xs)} samples\n"
            f"      child stamp - scheduled:  p50 {percentile(xs, 50) * 1e3:7.1f} ms  "
            f"p99 {percentile(xs, 99) * 1e3:7.1f} ms  max {max(xs) * 1e3:7.1f} ms  "
            f"min {min(xs) * 1e3:6.1f} ms\n"
            f"      started_at - scheduled:   p50 {percentile(ys, 50) * 1e3:7.1f} ms  "
            f"p99 {percentile(ys, 99) * 1e3:7.1f} ms  max {max(ys) * 1e3:7.1f} ms"
        )
    if spawn:
        print(
            f"    child stamp - started_at (folder, DB, fork+exec): median "
            f"{percentile(spawn, 50) * 1e3:.1f} ms, min {min(spawn) * 1e3:.1f} ms "
            "(> 0: the two clocks agree)"
        )
    if logged:
        print(f"    run.start latency_s (log, 64): p99 {percentile(logged, 99) * 1e3:.0f} ms")
    xs, xs4 = child[64], child[4]
    if xs:
        figure("daemon.dispatch_samples", len(xs), "runs")
        figure("daemon.dispatch_p50", percentile(xs, 50) * 1e3, "ms")
        figure("daemon.dispatch_p99", percentile(xs, 99) * 1e3, "ms", "<1000")
        figure("daemon.dispatch_recorded_p99", percentile(recorded[64], 99) * 1e3, "ms")
    if xs4:
        figure("daemon.dispatch_p99_queued_conc4", percentile(xs4, 99) * 1e3, "ms")


# -- (b), (c) idle ----------------------------------------------------------------------------


def idle_task(i: int, now: datetime) -> str:
    """A task that cannot come due during the bench: its month is 2..7 months away."""
    month = (now.month + 1 + i % 6) % 12 + 1
    schedule = f"{i % 60} {i % 24} {1 + i % 28} {month} *"
    if i % 2:
        return f'schedule = "{schedule}"\ncommand = ["/bin/true"]\n'
    return (
        f'description = "idle bench {i}"\nschedule = "{schedule}"\ntimezone = "Europe/Berlin"\n'
        f'prompt = "Summarise {{date}} for task {i}."\n[agent]\nmax_turns = 5\n'
    )


def idle(n_tasks: int, window_s: float, scale: float, tmp: Path) -> None:
    home = Home(tmp / "idle")
    home.ensure()
    now = datetime.now(UTC)
    for i in range(n_tasks):
        write_file(home.tasks_dir / f"idle-{i:03d}.toml", idle_task(i, now))
    proc = start_daemon(home, {}, tmp / "idle.out")
    try:
        wait_started(home, proc)
        ps = psutil.Process(proc.pid)
        startup_cpu_s = cpu_s(ps)
        for _ in range(3):  # three more ticks, each with a reload of all 100 files
            proc.send_signal(signal.SIGHUP)
            time.sleep(1.0)
        time.sleep(1.0)
        rss0, uss0 = memory_mib(ps)
        m = idle_cpu(home, ps, window_s)
        coarse_s, fine_s, window_s = m.cpu_s, m.fine_cpu_s, m.window_s
        rss1, uss1 = memory_mib(ps)
        loaded = home.log_file.read_text(errors="replace").count('"event": "task.loaded"')
        if loaded == 0:
            loaded = home.log_file.read_text(errors="replace").count('"task.loaded"')
    finally:
        stop_daemon(proc)
    # schedstat counts nanoseconds; psutil's ticks are 10 ms, too coarse for an idle minute.
    cpu_used_s = fine_s if fine_s is not None else coarse_s
    per_10min_s = cpu_used_s * 600.0 / window_s
    how = "measured" if scale == 1 else f"{window_s:.0f} s measured, scaled to 10 min"
    print(f"(b) idle daemon, {n_tasks} tasks loaded ({loaded} task.loaded lines), pid {proc.pid}")
    print(f"    after 4 ticks:          RSS {rss0:6.1f} MiB  USS {_mib(uss0)}")
    print(f"    after the idle window:  RSS {rss1:6.1f} MiB  USS {_mib(uss1)}")
    print(f"    startup CPU (imports, load, first tick): {startup_cpu_s:.2f} s")
    print(f"(c) idle CPU: {cpu_used_s:.4f} s in {window_s:.0f} s -> {per_10min_s:.4f} s per 10 min")
    print(f"    ({how}; psutil user+system {coarse_s:.2f} s, schedstat {_s(fine_s)})")
    print(f"    {m.wakeups} wake-ups (the loop's returns from sleep) in {window_s:.0f} s;")
    print(f"    threads scheduled in {m.scheduled_in} times (each wake-up also waits on I/O)")
    figure("daemon.idle_rss", max(rss0, rss1), "MiB", "<40")
    if uss1 is not None:
        figure("daemon.idle_uss", uss1, "MiB")
    figure("daemon.idle_cpu_per_10min", per_10min_s, "s", "<0.1")
    figure("daemon.idle_cpu_per_tick", cpu_used_s * 1000 / max(window_s / 60, 1), "ms", "<10")
    figure("daemon.idle_wakeups_per_min", m.wakeups * 60 / window_s, "wakeups", "<=3")


def _s(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.4f} s"


def _mib(v: float | None) -> str:
    return "n/a" if v is None else f"{v:6.1f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="idle CPU over 120 s, scaled (default)")
    mode.add_argument("--full", action="store_true", help="idle CPU over the real 10 minutes")
    ap.add_argument("--tasks", type=int, default=30, help="every-minute tasks for latency")
    ap.add_argument("--ticks", type=int, default=3, help="boundaries at max_concurrent=64")
    ap.add_argument("--lead", type=float, default=6.0, help="seconds from start to boundary")
    ap.add_argument("--idle-tasks", type=int, default=100)
    ap.add_argument("--skip-latency", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    args = ap.parse_args()
    window_s, scale = (600.0, 1.0) if args.full else (120.0, 5.0)
    if os.environ.get("BENCH_IDLE_WINDOW_S"):  # for trying the script out quickly
        window_s = float(os.environ["BENCH_IDLE_WINDOW_S"])
        scale = 600.0 / window_s
    print(f"bench_daemon ({'full' if args.full else 'quick'}): {load_note()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bassi-bench-daemon-") as tmp:
        if not args.skip_latency:
            latency(args.tasks, args.ticks, args.lead, Path(tmp))
            print(f"    {load_note()}", flush=True)
        if not args.skip_idle:
            idle(args.idle_tasks, window_s, scale, Path(tmp))
            print(f"    {load_note()}", flush=True)


if __name__ == "__main__":
    main()
