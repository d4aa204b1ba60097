"""Chaos: a daemon SIGKILLed around every tick, again and again; the books must still balance.

Twenty minutely command tasks (mixed on_missed, overlap, durations, failures, timeouts). Round k
starts a daemon 3 s before minute k of a fake clock (libfaketime, real speed) and SIGKILLs it
at a seeded random moment 0.5-4 s after the boundary, often with runs still going. Those runs
are left alone: the next daemon must adopt them or close them correctly. One clean
``run --once`` at the end lets recovery settle. Then, from the state DB and the run folders:

- no scheduled time ran twice: at most one live (not lost/interrupted) row per time, run folders
  agree with the rows, and no run recorded ``lost`` had in fact finished (its exit code file);
- every scheduled time from first sight to the last tick has exactly one settled disposition,
  and a lost/interrupted time is followed by its catch-up as its on_missed policy says;
- nothing of any run is left running; ``PRAGMA integrity_check`` is ok.

Each run writes ``started`` into its run folder first thing, so the folders show which runs
really began.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
from support import Start, db_rows, faketime_env, wait_for

from bassi_schedd.config.paths import Home

BASE = datetime(2026, 11, 1, 6, 0, tzinfo=UTC)  # minute 0 of round 0
LEAD_S = 3.0  # each daemon starts this long before its round's boundary
POLICIES = ("skip", "latest", "all")
OVERLAPS = ("skip", "queue", "replace", "allow")
DURATIONS_S = (0, 0.3, 1.5, 3, 6)
SETTLED = {"success", "failed", "timeout", "replaced", "missed", "coalesced", "skipped_overlap"}
RAN = {"success", "failed", "timeout"}  # these certainly executed the command
STARTED = RAN | {"replaced", "interrupted", "lost"}


def task_body(i: int) -> str:
    duration = DURATIONS_S[i % len(DURATIONS_S)]
    code = 3 if i in (7, 13) else 0
    lines = [
        'schedule = "* * * * *"',
        'timezone = "UTC"',
        f'on_missed = "{POLICIES[i % 3]}"',
        f'overlap = "{OVERLAPS[i % 4]}"',
        # Run folders record that the run began (first thing) and its pid.
        f'command = ["/bin/sh", "-c", "echo $$ > \\"$BASSI_RUN_DIR/started\\"; '
        f'sleep {duration}; exit {code}"]',
    ]
    if code:
        lines += ["retries = 1", 'retry_delay = "2s"']
    if i in (4, 9):
        lines.append('timeout = "4s"')  # 6 s runs: they time out
    return "\n".join(lines) + "\n"


def fake(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S")


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def run_processes_of(home: Home) -> list[psutil.Process]:
    """Every live process started for a run of this home (the daemon's env marks them)."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            env = p.environ()
        except (psutil.Error, OSError):
            continue
        if env.get("BASSI_HOME") == str(home.root) and "BASSI_RUN_ID" in env:
            found.append(p)
    return found


@pytest.fixture
def reap_runs(home: Home) -> Iterator[None]:
    """Whatever happens, no run of this test outlives it."""
    yield
    for p in run_processes_of(home):
        try:
            p.kill()
        except psutil.Error:
            pass


def kill_a_run(home: Home, rng: random.Random) -> str | None:
    """SIGKILL the process group of one running run (its wrapper leads it); its run id."""
    leaders = {}
    for p in run_processes_of(home):
        try:
            if os.getpgid(p.pid) == p.pid:
                leaders[p.pid] = p.environ()["BASSI_RUN_ID"]
        except (psutil.Error, OSError, KeyError):
            continue
    if not leaders:
        return None
    pid = rng.choice(sorted(leaders))
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        return None
    return leaders[pid]


def minute_marks(after: datetime, until: datetime) -> list[datetime]:
    t = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    out = []
    while t <= until:
        out.append(t)
        t += timedelta(minutes=1)
    return out


def audit(
    home: Home, names: list[str], final_at: datetime
) -> tuple[list[str], list[dict[str, object]], set[str]]:
    """Everything wrong with the books after the final clean start: (problems, rows, adopted)."""
    rows = db_rows(home, "SELECT * FROM runs ORDER BY seq")
    state = {str(r["task"]): r for r in db_rows(home, "SELECT * FROM task_state")}
    # A retry due after the final `run --once` stays queued for the next start, by design.
    problems: list[str] = [
        f"{r['run_id']} still {r['status']}"
        for r in rows
        if r["status"] in ("queued", "running")
        and not (r["status"] == "queued" and r["trigger"] == "retry")
    ]
    by_time: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        if r["trigger"] in ("schedule", "catchup"):
            by_time[(str(r["task"]), str(r["scheduled_for"]))].append(r)

    # Every scheduled time from first sight to the last tick: one settled disposition.
    for i, name in enumerate(names):
        first_seen = datetime.fromisoformat(str(state[name]["first_seen"]))
        last_checked = datetime.fromisoformat(str(state[name]["last_checked"]))
        if last_checked < final_at - timedelta(seconds=1):
            problems.append(f"{name}: last checked {last_checked}, the last tick was {final_at}")
        owed = {iso(t) for t in minute_marks(first_seen, last_checked)}
        seen = {t for (task, t) in by_time if task == name}
        if seen != owed:
            problems.append(f"{name}: missing {sorted(owed - seen)}, extra {sorted(seen - owed)}")
        policy = POLICIES[i % 3]
        for t in sorted(owed & seen):
            group = by_time[(name, t)]
            live = [r for r in group if r["status"] not in ("lost", "interrupted")]
            dead = [r for r in group if r["status"] in ("lost", "interrupted")]
            if len(live) != 1 or live[0]["status"] not in SETTLED:
                problems.append(f"{name} {t}: {[(r['trigger'], r['status']) for r in group]}")
                continue
            if dead:
                # A lost/interrupted time counts as missed and follows on_missed.
                row = live[0]
                ok = row["trigger"] == "catchup" and (
                    (policy == "skip" and row["status"] == "missed")
                    or (policy == "latest" and row["status"] != "missed")
                    or (policy == "all" and row["status"] in RAN | {"replaced"})
                )
                if not ok or group.index(row) < group.index(dead[-1]):
                    problems.append(f"{name} {t} after lost: {row['trigger']} {row['status']}")

    # Run folders agree with the rows: no folder without a row, no start the DB does not know.
    rows_by_id = {str(r["run_id"]): r for r in rows}
    markers: Counter[tuple[str, str]] = Counter()
    for folder in sorted(home.runs_dir.glob("chaos*/*")):
        row = rows_by_id.get(folder.name)
        if row is None or row["task"] != folder.parent.name:
            problems.append(f"run folder without a row: {folder}")
            continue
        status = str(row["status"])
        began = (folder / "started").exists()
        finished = (folder / "exit_code").exists()
        if status not in STARTED:
            problems.append(f"{folder.name}: folder for a run recorded {status}")
        if status in RAN - {"timeout"} and not (began and finished):
            problems.append(
                f"{folder.name}: recorded {status} but started={began} ended={finished}"
            )
        if status == "lost" and finished:
            problems.append(f"{folder.name}: recorded lost, but it ran to its end (exit_code)")
        if began and row["trigger"] in ("schedule", "catchup"):
            markers[(str(row["task"]), str(row["scheduled_for"]))] += 1
    for key, group in by_time.items():
        ran = [r for r in group if r["status"] in RAN]
        could = [r for r in group if r["status"] in STARTED]
        if not len(ran) <= markers[key] <= len(could):
            problems.append(f"{key}: {markers[key]} started folders for {len(could)} started rows")
        if len(ran) > 1:
            problems.append(f"{key}: ran {len(ran)} times")

    # Adopted runs were watched to their end (or lost when a crash took them: see the caller).
    events = [json.loads(x) for x in home.log_file.read_text().splitlines() if x.startswith("{")]
    adopted = {e["run_id"] for e in events if e.get("event") == "run.adopted"}
    for run_id in adopted:
        if rows_by_id[run_id]["status"] not in RAN | {"replaced", "lost"}:
            problems.append(f"adopted {run_id} ended {rows_by_id[run_id]['status']}")

    # Late times (trigger catchup) follow the task's on_missed, tick by tick.
    ticks: dict[tuple[str, str], list[dict[str, object]]] = defaultdict(list)
    for r in rows:
        if r["trigger"] in ("schedule", "catchup"):  # a lost run was a `run` disposition too
            ticks[(str(r["task"]), str(r["created_at"]))].append(r)
    for (name, created), group in ticks.items():
        policy = POLICIES[names.index(name) % 3]
        late = sorted((r for r in group if r["trigger"] == "catchup"), key=_when)
        on_time = [r for r in group if r["trigger"] == "schedule"]
        got = [str(r["status"]) for r in late]
        if policy == "skip":
            ok = all(x == "missed" for x in got)
        elif policy == "all":
            # `lost`: the test killed that run (the caller checks that only killed runs are).
            ok = all(x in RAN | {"replaced", "lost"} for x in got)
        else:
            folded = got if on_time else got[:-1]
            ok = all(x == "coalesced" for x in folded) and (
                on_time or not got or got[-1] != "coalesced"
            )
        if not ok:
            problems.append(f"{name} tick {created} ({policy}): late {got}, on time {len(on_time)}")

    return problems, rows, adopted


@pytest.mark.parametrize(
    "rounds", [pytest.param(5, id="fast"), pytest.param(50, id="soak", marks=pytest.mark.soak)]
)
def test_sigkill_around_every_tick_keeps_the_books(
    home: Home, write_task, daemon: Start, reap_runs: None, rounds: int
) -> None:
    rng = random.Random(20261101 + rounds)
    # Keep every run folder: the audit compares them with the rows.
    home.config_file.write_text("max_concurrent = 12\nkeep_runs = 100000\n")
    names = [f"chaos{i:02d}" for i in range(20)]
    for i, name in enumerate(names):
        write_task(name, task_body(i))
    kills: list[float] = []
    crashed: set[str] = set()
    minute = 0
    for k in range(rounds):
        boundary = BASE + timedelta(minutes=minute)
        d = daemon(fake_at=fake(boundary - timedelta(seconds=LEAD_S)))
        started = time.monotonic()
        kill_after_s = rng.uniform(0.5, 4.0)
        time.sleep(max(0.0, started + LEAD_S + kill_after_s - time.monotonic()))
        alive = d.proc.poll() is None
        d.proc.kill()
        d.proc.wait(10)
        assert alive, f"round {k}: the daemon exited by itself:\n{d.output()}"
        assert "Traceback" not in d.output(), d.output()
        kills.append(round(kill_after_s, 2))
        if rng.random() < 0.3:
            # Sometimes the crash takes a run with it (OOM killer, logout): it must become lost.
            victim = kill_a_run(home, rng)
            if victim:
                crashed.add(victim)
        # Sometimes the machine stays down a minute or two: those times are missed.
        minute += 1 + (rng.choice((1, 2)) if rng.random() < 0.25 else 0)

    final_at = BASE + timedelta(minutes=minute, seconds=10)
    last = daemon(fake_at=fake(final_at), once=True)
    assert last.proc.wait(180) == 0, last.output()
    assert "Traceback" not in last.output()

    # Nothing of any run is left (adopted runs were waited for; no lost run still runs).
    assert run_processes_of(home) == []
    check = sqlite3.connect(f"file:{home.state_db}?mode=ro", uri=True)
    try:
        assert check.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        check.close()

    problems, rows, adopted = audit(home, names, final_at)
    # Only runs we killed may be lost: a live run is adopted, a finished one keeps its exit code.
    lost = {str(r["run_id"]) for r in rows if r["status"] == "lost"}
    problems += [f"{run_id} recorded lost, but it was not killed" for run_id in lost - crashed]
    summary = Counter(str(r["status"]) for r in rows)
    triggers = Counter(str(r["trigger"]) for r in rows)
    print(
        f"chaos {rounds} rounds to minute {minute}, kills at {kills}, {len(crashed)} runs "
        f"killed: {dict(summary)} {dict(triggers)}, adopted {len(adopted)}"
    )
    assert problems == [], "\n".join(problems[:40])
    assert summary["success"] > rounds  # the runs did run


def test_the_audit_catches_broken_books(home: Home, write_task, daemon: Start) -> None:
    # Three tasks, two clean ticks: the books balance; then each kind of damage is reported.
    names = [f"chaos{i:02d}" for i in range(3)]
    for i, name in enumerate(names):
        write_task(name, task_body(i))
    for at in (BASE - timedelta(seconds=3), BASE + timedelta(seconds=5)):
        assert daemon(fake_at=fake(at), once=True).proc.wait(60) == 0
    final_at = BASE + timedelta(minutes=1, seconds=5)
    assert daemon(fake_at=fake(final_at), once=True).proc.wait(60) == 0
    problems, rows, _ = audit(home, names, final_at)
    assert problems == []
    assert len(rows) == 6

    victim = next(r for r in rows if r["task"] == "chaos00" and r["status"] == "success")
    folder = Path(str(victim["run_dir"]))
    shutil.copytree(folder, folder.with_name("20261101T060000Z-ffffff"))
    db = sqlite3.connect(home.state_db)
    with db:
        db.execute("UPDATE runs SET status = 'lost' WHERE run_id = ?", (victim["run_id"],))
        db.execute("DELETE FROM runs WHERE task = 'chaos01' AND scheduled_for LIKE '%06:01%'")
    db.close()
    report = "\n".join(audit(home, names, final_at)[0])
    assert "run folder without a row" in report
    assert "recorded lost, but it ran to its end" in report
    assert "chaos01: missing ['2026-11-01T06:01:00+00:00']" in report
    assert "chaos00 2026-11-01T06:00:00+00:00: [('schedule', 'lost')]" in report


REPLACED_RUN = "trap 'sleep 2; exit 143' TERM; sleep 30 & wait"  # takes 2 s to stop


def test_a_run_being_replaced_when_the_daemon_dies_is_not_lost(
    home: Home, write_task, daemon: Start, cli, reap_runs: None
) -> None:
    write_task(
        "swap",
        'schedule = "* * * * *"\ntimezone = "UTC"\non_missed = "all"\noverlap = "replace"\n'
        f'command = ["/bin/sh", "-c", "{REPLACED_RUN}"]\n',
    )
    d = daemon(fake_at="2026-11-01 05:59:57")
    born = time.monotonic()
    d.wait_ready()

    def running(trigger: str) -> list[dict[str, object]]:
        return [
            r
            for r in db_rows(home, "SELECT * FROM runs")
            if r["trigger"] == trigger and r["status"] == "running" and r["pid"]
        ]

    wait_for(lambda: running("schedule"), 15)
    # `trigger` stamps the request with its own clock: give it the daemon's (a second behind).
    daemon_now = BASE - timedelta(seconds=LEAD_S - (time.monotonic() - born) + 1)
    assert cli("trigger", "swap", env=faketime_env(fake(daemon_now))).returncode == 0
    wait_for(lambda: running("manual"), 5, every=0.02)  # the 06:00 run got SIGTERM: 2 s to go
    d.proc.kill()
    d.proc.wait(10)
    d = daemon(fake_at="2026-11-01 06:00:20")
    d.wait_ready()
    time.sleep(3)  # the replaced run is gone by now; any catch-up has been queued
    rows = db_rows(home, "SELECT trigger, scheduled_for, status FROM runs ORDER BY seq")
    at_six = [(r["trigger"], r["status"]) for r in rows if r["scheduled_for"] == iso(BASE)]
    assert at_six == [("schedule", "replaced")]
    d.stop()


def _when(row: dict[str, object]) -> str:
    return str(row["scheduled_for"])


def test_the_tasks_load(home: Home, write_task, cli) -> None:
    # The chaos tasks are what they claim to be (a typo would make the chaos test vacuous).
    for i in range(20):
        write_task(f"chaos{i:02d}", task_body(i))
    r = cli("check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("ok chaos") == 20
