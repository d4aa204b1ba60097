"""Debian cron measured the way bench_daemon.py measures bassi-schedd. Prints figures only.

Installs cron with apt when it is missing (prints "cron unavailable" and exits 0 if that fails),
starts ``cron -f`` as our own child (or, when a cron daemon already runs, measures that one and
says so; we never stop a process we did not start), then:
- idle: 100 far-future jobs in /etc/cron.d/bassi-bench; RSS and USS, and CPU over 60 s scaled x10
  (--quick, default) or over the real 10 minutes (--full);
- dispatch latency: 30 ``* * * * *`` jobs that each append ``date +%s.%N``; latency = stamp -
  the minute boundary. Cron runs on the real clock, so this waits for real minutes: 3 boundaries
  (90 samples) with --quick, 10 with --full.
The crontab file is removed afterwards, also on SIGTERM/SIGINT.

    .venv/bin/python bench/bench_cron.py [--quick | --full] [--jobs 30] [--boundaries N]
"""

from __future__ import annotations

import argparse
import fcntl
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

import psutil
from bench_daemon import figure, idle_cpu, load_note, memory_mib, percentile

CRON_FILE = Path("/etc/cron.d/bassi-bench")
# Two runs at once would share the crontab file and the cron daemon: the second one waits.
LOCK_FILE = Path(tempfile.gettempdir()) / "bassi-bench-cron.lock"


def find_cron() -> str | None:
    return shutil.which("cron") or next(
        (p for p in ("/usr/sbin/cron", "/sbin/cron") if os.access(p, os.X_OK)), None
    )


def install_cron() -> str | None:
    """apt-get install cron (we are root; policy-rc.d keeps apt from starting it)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    print("cron is not installed: apt-get update && apt-get install -y cron", flush=True)
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "cron"]):
        try:
            p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            print(f"{' '.join(argv)}: {e}")
            return None
        if p.returncode != 0:
            print(f"{' '.join(argv)} exited {p.returncode}: {p.stderr.strip()[-500:]}")
            return None
    return find_cron()


def running_crons() -> list[psutil.Process]:
    found = []
    for p in psutil.process_iter(["name", "exe"]):
        if p.info["name"] in ("cron", "crond") or (p.info["exe"] or "").endswith("/cron"):
            found.append(p)
    return found


def write_crontab(lines: list[str]) -> None:
    """Atomic replace: cron ignores names with a dot, so the temp file is never read."""
    tmp = CRON_FILE.with_name(".bassi-bench.tmp")
    tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    tmp.chmod(0o644)
    os.replace(tmp, CRON_FILE)


def idle_lines(n: int) -> list[str]:
    """Jobs whose month is 2..7 months away: never due during the bench."""
    month_now = time.gmtime().tm_mon
    return [
        f"{i % 60} {i % 24} {1 + i % 28} {(month_now + 1 + i % 6) % 12 + 1} * root /bin/true"
        for i in range(n)
    ]


def measure_idle(cron: psutil.Process, n_jobs: int, window_s: float, scale: float) -> None:
    write_crontab(idle_lines(n_jobs))
    time.sleep(3.0)
    rss0, _ = memory_mib(cron)
    coarse_s, fine_s, switches = idle_cpu(cron, window_s)
    rss1, uss1 = memory_mib(cron)
    used_s = fine_s if fine_s is not None else coarse_s
    how = "measured" if scale == 1 else f"{window_s:.0f} s measured, x{scale:g}"
    print(f"idle cron, {n_jobs} far-future jobs in {CRON_FILE}, pid {cron.pid}")
    print(f"    RSS {max(rss0, rss1):6.1f} MiB  USS {'n/a' if uss1 is None else f'{uss1:.1f} MiB'}")
    print(f"    idle CPU: {used_s:.4f} s in {window_s:.0f} s -> {used_s * scale:.4f} s per 10 min")
    print(f"    ({how}; psutil user+system {coarse_s:.2f} s); {switches} wake-ups")
    figure("cron.idle_rss", max(rss0, rss1), "MiB")
    if uss1 is not None:
        figure("cron.idle_uss", uss1, "MiB")
    figure("cron.idle_cpu_per_10min", used_s * scale, "s")
    figure("cron.idle_wakeups_per_min", switches * 60 / window_s, "wakeups")


def measure_latency(n_jobs: int, boundaries: int, idle_jobs: int, tmp: Path) -> None:
    stamps = tmp / "stamps"
    stamps.touch()
    job = f"root date +\\%s.\\%N >> {stamps} 2>&1"
    write_crontab(idle_lines(idle_jobs) + [f"* * * * * {job}"] * n_jobs)
    installed = time.time()
    # The first boundary after the file changed may or may not see it; count whole minutes.
    deadline = installed + 60 * (boundaries + 2) + 10
    by_minute: dict[int, list[float]] = {}
    print(
        f"cron latency: {n_jobs} '* * * * *' jobs, waiting for {boundaries} boundaries", flush=True
    )
    while time.time() < deadline:
        time.sleep(2.0)
        by_minute = {}
        for line in stamps.read_text(errors="replace").split():
            try:
                t = float(line)
            except ValueError:
                continue
            by_minute.setdefault(math.floor(t / 60), []).append(t - math.floor(t / 60) * 60)
        if sum(1 for xs in by_minute.values() if len(xs) >= n_jobs) >= boundaries:
            break
    samples = [x for xs in by_minute.values() for x in xs]
    if not samples:
        print("    no job ran: is cron reading /etc/cron.d?")
        return
    print(
        f"    {len(samples)} samples over {len(by_minute)} boundaries: "
        f"p50 {percentile(samples, 50) * 1e3:.1f} ms  p99 {percentile(samples, 99) * 1e3:.1f} ms"
        f"  min {min(samples) * 1e3:.1f} ms  max {max(samples) * 1e3:.1f} ms"
    )
    for m, xs in sorted(by_minute.items()):
        print(f"    {time.strftime('%H:%M', time.gmtime(m * 60))}Z: {len(xs)} jobs, "
              f"first {min(xs) * 1e3:.1f} ms, last {max(xs) * 1e3:.1f} ms")  # fmt: skip
    figure("cron.dispatch_samples", len(samples), "runs")
    figure("cron.dispatch_p50", percentile(samples, 50) * 1e3, "ms")
    figure("cron.dispatch_p99", percentile(samples, 99) * 1e3, "ms")


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # run the `finally` clauses: remove the crontab, stop cron


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="60 s idle x10, 3 boundaries")
    mode.add_argument("--full", action="store_true", help="10 min idle, 10 boundaries")
    ap.add_argument("--jobs", type=int, default=30)
    ap.add_argument("--idle-jobs", type=int, default=100)
    ap.add_argument("--boundaries", type=int, default=None)
    args = ap.parse_args()
    window_s, scale = (600.0, 1.0) if args.full else (60.0, 10.0)
    if os.environ.get("BENCH_IDLE_WINDOW_S"):  # for trying the script out quickly
        window_s = float(os.environ["BENCH_IDLE_WINDOW_S"])
        scale = 600.0 / window_s
    boundaries = args.boundaries or (10 if args.full else 3)
    signal.signal(signal.SIGTERM, _raise_exit)
    signal.signal(signal.SIGINT, _raise_exit)
    print(f"bench_cron ({'full' if args.full else 'quick'}): {load_note()}", flush=True)

    lock = LOCK_FILE.open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print("another bench_cron.py is running: waiting for it", flush=True)
        fcntl.flock(lock, fcntl.LOCK_EX)
    cron_bin = find_cron() or install_cron()
    if cron_bin is None or os.geteuid() != 0:
        print("cron unavailable (needs the cron package and root)")
        return 0
    version = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", "cron"], capture_output=True, text=True
    ).stdout
    print(f"cron: {cron_bin} (Debian package {version or 'unknown'})")
    ours: subprocess.Popen[bytes] | None = None
    others = running_crons()
    try:
        if others:
            cron = others[0]
            print(f"a cron daemon already runs (pid {cron.pid}, not ours): measuring that one")
        else:
            ours = subprocess.Popen(
                [cron_bin, "-f"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            cron = psutil.Process(ours.pid)
            time.sleep(0.5)
            if ours.poll() is not None:
                print(f"cron unavailable (cron -f exited {ours.returncode})")
                return 0
        with tempfile.TemporaryDirectory(prefix="bassi-bench-cron-") as tmp:
            measure_idle(cron, args.idle_jobs, window_s, scale)
            print(f"    {load_note()}", flush=True)
            measure_latency(args.jobs, boundaries, args.idle_jobs, Path(tmp))
            print(f"    {load_note()}", flush=True)
    finally:
        CRON_FILE.unlink(missing_ok=True)
        CRON_FILE.with_name(".bassi-bench.tmp").unlink(missing_ok=True)
        if ours is not None and ours.poll() is None:
            ours.terminate()
            try:
                ours.wait(timeout=10)
            except subprocess.TimeoutExpired:
                ours.kill()
                ours.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
