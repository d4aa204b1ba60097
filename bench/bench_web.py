"""The dashboard under load: memory, API latency with a big home, live-output latency.

Prints: the ``web`` process's RSS idle and after 1,000 requests; p50/p99 of ``GET /api/tasks``
with 1,000 task files and 100,000 history rows (target p99 < 50 ms); p50/p99 of the task list
page ``/`` on the same home; and the time from a line written to a running run's output.log to
its first byte on the SSE stream (target < 250 ms).

Usage: .venv/bin/python bench/bench_web.py [--requests N]
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).parent))
from bench_load import task_body

from bassi_schedd.config.paths import Home
from bassi_schedd.store.state import StateDB

TASKS = 1000
HISTORY = 100_000
STATUSES = ["success"] * 8 + ["failed", "timeout", "skipped_overlap"]


def figure(name: str, value: float, unit: str, target: str = "-") -> None:
    print(f"FIGURE name={name} value={value:.6g} unit={unit} target={target}", flush=True)


def make_home(root: Path) -> tuple[Home, Path]:
    home = Home(root)
    home.ensure()
    for i in range(TASKS):
        p = home.tasks_dir / f"task-{i:04d}.toml"
        p.write_text(task_body(i))
        p.chmod(0o600)
    StateDB.open(home.state_db).close()  # the schema, as the daemon makes it
    con = sqlite3.connect(home.state_db)
    now = datetime.now(UTC)
    rng = random.Random(1)
    rows = []
    for n in range(HISTORY):
        at = now - timedelta(minutes=HISTORY - n)
        status = rng.choice(STATUSES)
        started = None if status == "skipped_overlap" else at.isoformat()
        rows.append(
            (
                f"{at:%Y%m%dT%H%M%SZ}-{n:06x}",
                f"task-{n % TASKS:04d}",
                "schedule",
                at.isoformat(),
                started,
                started,
                1.5 if started else None,
                status,
                0,
                1,
                rng.random() / 100 if n % 3 else None,
                None,
                at.isoformat(),
            )
        )
    con.executemany(
        "INSERT INTO runs (run_id, task, trigger, scheduled_for, started_at, ended_at, duration_s,"
        " status, exit_code, attempt, cost_usd, run_dir, created_at)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    con.executemany(
        "INSERT INTO task_state (task, first_seen, last_checked, last_status, last_run_at)"
        " VALUES (?,?,?,?,?)",
        [
            (f"task-{i:04d}", now.isoformat(), now.isoformat(), "success", now.isoformat())
            for i in range(TASKS)
        ],
    )
    # one run in progress, for the live-output figure
    run_dir = home.run_dir("task-0000", "live")
    run_dir.mkdir(parents=True)
    log = run_dir / "output.log"
    log.write_bytes(b"")
    con.execute(
        "INSERT INTO runs (run_id, task, trigger, scheduled_for, started_at, status, attempt,"
        " run_dir, created_at) VALUES ('live', 'task-0000', 'manual', ?, ?, 'running', 1, ?, ?)",
        (now.isoformat(), now.isoformat(), str(run_dir), now.isoformat()),
    )
    con.commit()
    con.close()
    return home, log


def start_web(home: Home) -> tuple[subprocess.Popen[bytes], int, str]:
    env = {**os.environ, "BASSI_HOME": str(home.root)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bassi_schedd", "web", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    m = re.search(r"127\.0\.0\.1:(\d+)/\?token=(\S+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"web did not start: {line}")
    return proc, int(m.group(1)), m.group(2)


def timed_gets(port: int, token: str, path: str, n: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {token}"}
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path, headers=headers)
        resp = conn.getresponse()
        resp.read()
        out.append((time.perf_counter() - t0) * 1000)
        assert resp.status == 200, resp.status
    conn.close()
    return out


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def sse_latency(port: int, token: str, log: Path, n: int = 30) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "GET",
        "/api/runs/live/stream",
        headers={"Host": f"127.0.0.1:{port}", "Authorization": f"Bearer {token}"},
    )
    resp = conn.getresponse()
    out = []
    with log.open("ab") as f:
        for i in range(n):
            time.sleep(random.uniform(0.05, 0.3))  # not in step with the server's poll
            t0 = time.perf_counter()
            f.write(f"line {i}\n".encode())
            f.flush()
            while True:
                line = resp.fp.readline()
                if line.startswith(b"data: line"):
                    break
            out.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return out


def uncached(home: Home, n: int = 200) -> list[float]:
    """/api/tasks's work without the 1 s sharing between requests: every call re-scans the
    task folder, re-reads task_state and renders the JSON (in-process, no HTTP)."""
    from bassi_schedd.web import reader as reader_mod

    reader_mod.TASKS_TTL_S = 0.0
    r = reader_mod.Reader(home)
    r.tasks_json(datetime.now(UTC))  # the first parse of every file
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r.tasks_json(datetime.now(UTC))
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-web") as tmp:
        t0 = time.perf_counter()
        home, log = make_home(Path(tmp) / "home")
        print(
            f"home: {TASKS} task files, {HISTORY} history rows ({time.perf_counter() - t0:.1f} s)"
        )
        proc, port, token = start_web(home)
        try:
            ps = psutil.Process(proc.pid)
            time.sleep(1.0)
            idle = ps.memory_info().rss / 2**20
            cold = timed_gets(port, token, "/api/tasks", 1)[0]
            times = timed_gets(port, token, "/api/tasks", args.requests)
            after = ps.memory_info().rss / 2**20
            page = timed_gets(port, token, "/", 50)
            sse = sse_latency(port, token, log)
            raw = uncached(home)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"web RSS: idle {idle:.1f} MiB, after {args.requests + 1} requests {after:.1f} MiB")
    print(
        f"GET /api/tasks: first (parses {TASKS} files) {cold:.0f} ms; then p50 "
        f"{statistics.median(times):.1f} ms, p99 {pct(times, 0.99):.1f} ms, max {max(times):.1f}"
    )
    print(
        f"  without sharing between requests (in-process): p50 {statistics.median(raw):.1f} ms, "
        f"p99 {pct(raw, 0.99):.1f} ms"
    )
    print(
        f"GET / (task list page, 30-day stats over {HISTORY} rows): p50 "
        f"{statistics.median(page):.1f} ms, p99 {pct(page, 0.99):.1f} ms"
    )
    print(
        f"SSE first byte of a new output line: p50 {statistics.median(sse):.0f} ms, "
        f"p99 {pct(sse, 0.99):.0f} ms, max {max(sse):.0f} ms"
    )
    figure("web.rss_idle", idle, "MiB")
    figure("web.rss_after_1000", after, "MiB")
    figure("web.api_tasks_p50", statistics.median(times), "ms")
    figure("web.api_tasks_p99", pct(times, 0.99), "ms", "<50")
    figure("web.api_tasks_unshared_p50", statistics.median(raw), "ms")
    figure("web.api_tasks_unshared_p99", pct(raw, 0.99), "ms")
    figure("web.page_index_p50", statistics.median(page), "ms")
    figure("web.sse_line_p50", statistics.median(sse), "ms")
    figure("web.sse_line_max", max(sse), "ms", "<250")
    return 0


if __name__ == "__main__":
    sys.exit(main())
