"""How fast and how big is ``bassi-schedd execute --run-dir``? Prints figures, asserts nothing.

For each of --runs runs against the fake claude CLI (tests/support/fake_claude.py, success
scenario):
- first message: process start -> the first line (system init) lands in transcript.jsonl;
- total: process start -> exit;
- peak RSS of the executor process alone (psutil, polled every 2 ms) and of the fake CLI.
Also: ``python -c "import claude_agent_sdk"`` alone (the floor for the first message), and with
--bundled, the bundled claude CLI logged out (empty HOME, no key) end to end.

    .venv/bin/python bench/bench_executor.py [--runs 10] [--bundled]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # for the support package

from support.fake_claude import install, write_run_dir  # noqa: E402

CLI = [sys.executable, "-m", "bassi_schedd", "execute", "--run-dir"]


def clean_env(home: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASSI_", "FAKETIME"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if home is not None:
        env = {k: v for k, v in env.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
        env["HOME"] = str(home)
    return env


def one_run(run_dir: Path, env: dict[str, str]) -> tuple[float, float, int, int, int]:
    """(first message s, total s, executor peak RSS, CLI peak RSS, exit code)."""
    transcript = run_dir / "transcript.jsonl"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*CLI, str(run_dir)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
    )
    ps = psutil.Process(proc.pid)
    first_s = float("nan")
    peak_exec = peak_cli = 0
    while proc.poll() is None:
        if first_s != first_s and transcript.exists() and transcript.stat().st_size > 0:
            first_s = time.perf_counter() - started
        try:
            peak_exec = max(peak_exec, ps.memory_info().rss)
            for child in ps.children(recursive=True):
                peak_cli = max(peak_cli, child.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.002)
    total_s = time.perf_counter() - started
    if first_s != first_s and transcript.exists() and transcript.stat().st_size > 0:
        first_s = total_s  # finished between two polls
    return first_s, total_s, peak_exec, peak_cli, proc.returncode


def fmt(values: list[float], unit: str = "s", scale: float = 1.0) -> str:
    vals = [v * scale for v in values]
    return (
        f"median {statistics.median(vals):7.3f} {unit}  min {min(vals):7.3f}  max {max(vals):7.3f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--bundled", action="store_true", help="also time the bundled CLI, logged out")
    args = ap.parse_args()
    mib = 1 / (1024 * 1024)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cli = install(root)
        firsts, totals, execs, clis = [], [], [], []
        for i in range(args.runs):
            run_dir = write_run_dir(root / f"run{i}", cli, root)
            first_s, total_s, peak_exec, peak_cli, rc = one_run(run_dir, clean_env())
            if rc != 0:
                print(f"run {i}: exit {rc}; see {run_dir}", file=sys.stderr)
            firsts.append(first_s)
            totals.append(total_s)
            execs.append(peak_exec)
            clis.append(peak_cli)
        imports = []
        for _ in range(max(3, args.runs // 2)):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", "import claude_agent_sdk"], check=True)
            imports.append(time.perf_counter() - t)
        maxrss_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(
            f"execute --run-dir with the fake claude CLI, {args.runs} runs (cpus: {os.cpu_count()})"
        )
        print(f"  start -> first message in transcript  {fmt(firsts)}")
        print(f"  start -> exit (total)                 {fmt(totals)}")
        print(f"  executor peak RSS (psutil)            {fmt(execs, 'MiB', mib)}")
        print(f"  fake CLI peak RSS (psutil)            {fmt(clis, 'MiB', mib)}")
        print(f"  largest child ru_maxrss               {maxrss_kib / 1024:7.1f} MiB")
        print(f"  python -c 'import claude_agent_sdk'   {fmt(imports)}")
        print(f"FIGURE name=executor.first_message value={statistics.median(firsts):.4f} unit=s",
              "target=-")  # fmt: skip
        print(f"FIGURE name=executor.total value={statistics.median(totals):.4f} unit=s target=-")
        print(f"FIGURE name=executor.peak_rss value={statistics.median(execs) * mib:.2f} unit=MiB",
              "target=-")  # fmt: skip
        if args.bundled:
            empty = root / "emptyhome"
            empty.mkdir()
            bundled = []
            for i in range(3):
                run_dir = write_run_dir(root / f"bundled{i}", None, root)
                _, total_s, peak_exec, peak_cli, rc = one_run(run_dir, clean_env(empty))
                bundled.append(total_s)
            print(f"bundled claude CLI, logged out (exit {rc}), 3 runs")
            print(f"  start -> exit (total)                 {fmt(bundled)}")
            print(f"  bundled CLI peak RSS (last run)       {peak_cli * mib:7.1f} MiB")


if __name__ == "__main__":
    main()
