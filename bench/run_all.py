"""Run every bench script and print one table of figures, with Debian cron beside ours.

Protocol: a bench script prints, besides its human output, lines
    FIGURE name=<key> value=<number> unit=<unit> target=<text or ->
A target is "-" or a comparison such as "<1000" (in the figure's unit). A figure named
``cron.X`` is Debian cron's counterpart of ``daemon.X``. bench_schedule.py prints no FIGURE
lines; its summary lines are read instead (see SCHEDULE_LINES).

bench_cron.py mostly waits for real minute boundaries, so it runs alongside the others (use
--sequential to run it on its own, last). The machine and its load average are printed first.

    .venv/bin/python bench/run_all.py [--quick | --full] [--sequential] [--skip NAME ...]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

BENCH = Path(__file__).resolve().parent
SCRIPTS = ["bench_load", "bench_schedule", "bench_executor", "bench_daemon", "bench_budget"]
MODE_SCRIPTS = {"bench_daemon", "bench_cron"}  # these take --quick / --full
FIGURE = re.compile(r"^FIGURE name=(\S+) value=(\S+) unit=(\S+) target=(.*)$")
SCHEDULE_LINES = [
    (re.compile(r"cold first computation.*?([\d.]+) ms"), "schedule.cold_{n}", "ms"),
    (re.compile(r"warm DueCache per tick.*?p50\s+([\d.]+)"), "schedule.warm_tick_p50_{n}", "ms"),
    (re.compile(r"warm DueCache per tick.*?p95\s+([\d.]+)"), "schedule.warm_tick_p95_{n}", "ms"),
]


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str
    script: str


def machine() -> list[str]:
    """nproc, memory, CPU model, kernel, Python, load."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError):
        pass
    return [
        f"machine: {os.cpu_count()} CPUs ({model}), {mem} RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}",
        load_line(),
    ]


def load_line() -> str:
    a, b, c = os.getloadavg()
    return f"load average (1/5/15 min): {a:.2f} {b:.2f} {c:.2f} - other work shares this machine"


def start(name: str, mode: str, out: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, str(BENCH / f"{name}.py")]
    if name in MODE_SCRIPTS:
        argv.append(f"--{mode}")
    with out.open("wb") as f:
        return subprocess.Popen(
            argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=BENCH.parent
        )


def finish(
    name: str, proc: subprocess.Popen[bytes], out: Path, timeout_s: float, t0: float
) -> tuple[int, list[Figure]]:
    """Wait for one script, echo its output, return (exit code, figures)."""
    try:
        rc = proc.wait(timeout=max(timeout_s - (time.monotonic() - t0), 1.0))
    except subprocess.TimeoutExpired:
        proc.terminate()  # our child; bench_cron cleans its crontab up on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        rc = -1
        print(f"{name}: timed out after {timeout_s:.0f} s")
    text = out.read_text(errors="replace")
    elapsed_s = time.monotonic() - t0
    print(f"\n===== {name} (exit {rc}, {elapsed_s:.0f} s) =====")
    print("\n".join(line for line in text.splitlines() if not line.startswith("FIGURE ")))
    return rc, parse(name, text)


def parse(script: str, text: str) -> list[Figure]:
    figures = []
    for line in text.splitlines():
        m = FIGURE.match(line.strip())
        if m:
            try:
                value = float(m.group(2))
            except ValueError:
                continue
            figures.append(Figure(m.group(1), value, m.group(3), m.group(4).strip(), script))
    if figures or script != "bench_schedule":
        return figures
    n = "?"
    for line in text.splitlines():
        header = re.match(r"== (\d+) tasks", line)
        if header:
            n = header.group(1)
        for pattern, key, unit in SCHEDULE_LINES:
            m = pattern.search(line)
            if m:
                figures.append(Figure(key.format(n=n), float(m.group(1)), unit, "-", script))
    return figures


def meets(value: float, target: str) -> str:
    m = re.fullmatch(r"([<>]=?)\s*([\d.]+)", target)
    if not m:
        return ""
    limit = float(m.group(2))
    ok = {"<": value < limit, "<=": value <= limit, ">": value > limit, ">=": value >= limit}
    return "yes" if ok[m.group(1)] else "NO"


def fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if value.is_integer():
        return str(int(value))
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def table(figures: list[Figure]) -> list[str]:
    cron = {f.name.removeprefix("cron."): f for f in figures if f.name.startswith("cron.")}
    rows = [("figure", "bassi-schedd", "target", "met", "cron", "ratio")]
    for f in figures:
        if f.name.startswith("cron."):
            continue
        twin = cron.get(f.name.removeprefix("daemon.")) if f.name.startswith("daemon.") else None
        cron_text = ratio = ""
        if twin is not None:
            cron_text = f"{fmt(twin.value)} {twin.unit}"
            ratio = f"{f.value / twin.value:.2f}x" if twin.value and f.unit != "runs" else "-"
        target = "" if f.target == "-" else f"{f.target} {f.unit}"
        rows.append(
            (f.name, f"{fmt(f.value)} {f.unit}", target, meets(f.value, f.target), cron_text, ratio)
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="idle CPU over 60 s x10 (default)")
    mode.add_argument("--full", action="store_true", help="idle CPU over the real 10 minutes")
    ap.add_argument("--sequential", action="store_true", help="run bench_cron alone, last")
    ap.add_argument("--skip", nargs="*", default=[], help="script names to leave out")
    args = ap.parse_args()
    run_mode = "full" if args.full else "quick"
    timeout_s = 3600.0 if args.full else 900.0
    signal.signal(signal.SIGTERM, _raise_exit)
    t_start = time.monotonic()
    print(f"bassi-schedd benchmarks ({run_mode})")
    print("\n".join(machine()), flush=True)
    figures: list[Figure] = []
    failed: list[str] = []
    running: dict[str, tuple[subprocess.Popen[bytes], Path, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bassi-bench-all-") as tmp:
        try:
            order = [s for s in SCRIPTS if s not in args.skip]
            if "bench_cron" not in args.skip:
                if args.sequential:
                    order.append("bench_cron")
                else:
                    out = Path(tmp) / "bench_cron.out"
                    running["bench_cron"] = (
                        start("bench_cron", run_mode, out),
                        out,
                        time.monotonic(),
                    )
            for name in order:
                out = Path(tmp) / f"{name}.out"
                t0 = time.monotonic()
                rc, got = finish(name, start(name, run_mode, out), out, timeout_s, t0)
                figures += got
                if rc != 0:
                    failed.append(name)
            for name, (proc, out, t0) in running.items():
                rc, got = finish(name, proc, out, timeout_s, t0)
                figures += got
                if rc != 0:
                    failed.append(name)
        finally:
            for proc, _, _ in running.values():
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=30)
    print(f"\n===== summary ({run_mode}, {time.monotonic() - t_start:.0f} s) =====")
    print("\n".join(machine()))
    if run_mode == "quick":
        print(
            "idle CPU per 10 min: measured over 60 s and multiplied by 10 (--full measures 10 min)"
        )
    if "bench_cron" not in args.skip and not any(f.name.startswith("cron.") for f in figures):
        print("cron: no figures (cron unavailable or failed; see its output above)")
    print()
    print("\n".join(table(figures)))
    if failed:
        print(f"\nscripts that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
