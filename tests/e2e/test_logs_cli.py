"""``bassi-schedd logs`` through the real CLI: output forms, filters, --run, -f across rotation."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import CLI, CliResult, base_env, wait_for

from bassi_schedd.config.paths import Home
from bassi_schedd.logs.setup import LogFile
from bassi_schedd.store.state import StateDB

RUN_A = "20261122T080001Z-a1b2c3"
RUN_B = "20261122T090000Z-d4e5f6"


def rec(ts: datetime, event: str, level: str = "info", **fields: object) -> str:
    stamp = ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return json.dumps({"ts": stamp, "level": level, "event": event, **fields})


def write_log(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


T0 = datetime(2026, 11, 22, 8, 0, 1, tzinfo=UTC)
OK_LINE = rec(
    T0 + timedelta(seconds=12),
    "run.end",
    task="weekly",
    run_id=RUN_A,
    scheduled_for="2026-11-22T08:00:00+00:00",
    trigger="schedule",
    status="success",
    exit_code=0,
    duration_s=12.34,
    cost_usd=0.0123,
)
FAIL_LINE = rec(
    T0 + timedelta(hours=1),
    "run.end",
    level="error",
    task="backup",
    run_id=RUN_B,
    scheduled_for="2026-11-22T09:00:00+00:00",
    trigger="schedule",
    status="failed",
    exit_code=3,
    duration_s=0.5,
    error="disk full",
)


@pytest.fixture
def sample_log(home: Home) -> list[str]:
    """A rotated file and the current one; one stray non-JSON line."""
    old = [
        rec(T0 - timedelta(minutes=1), "daemon.start", pid=42, version="0.1.0"),
        rec(T0, "run.start", task="weekly", run_id=RUN_A, trigger="schedule", pid=77),
    ]
    current = [OK_LINE, "Traceback (most recent call last): not json", FAIL_LINE]
    write_log(home.logs_dir / "schedd.log.1", old)
    write_log(home.log_file, current)
    return old + current


# -- reading ----------------------------------------------------------------------------------


def test_no_log_yet_is_a_friendly_message(cli: Callable[..., CliResult]) -> None:
    r = cli("logs")
    assert r.returncode == 0
    assert r.stdout == ""
    assert "No log yet" in r.stderr and "Traceback" not in r.stderr


def test_readable_lines_oldest_file_first(
    cli: Callable[..., CliResult], sample_log: list[str]
) -> None:
    r = cli("logs", env={"TZ": "Europe/Berlin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "2026-11-22 08:59:01 INFO  - daemon.start pid=42 version=0.1.0",
        "2026-11-22 09:00:01 INFO  weekly run.start run=a1b2c3 pid=77",
        "2026-11-22 09:00:13 INFO  weekly run.end success 12.3s exit=0 cost=$0.0123 run=a1b2c3",
        "Traceback (most recent call last): not json",
        '2026-11-22 10:00:01 ERROR backup run.end failed 0.5s exit=3 run=d4e5f6 error="disk full"',
    ]
    assert "\x1b" not in r.stdout  # not a terminal: no colour codes


def test_colour_on_a_terminal(home: Home, sample_log: list[str]) -> None:
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*CLI, "logs"], env=base_env(home.root), stdout=slave, stderr=subprocess.PIPE
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    assert proc.stderr is not None
    proc.stderr.close()
    out = b"".join(chunks).decode()
    assert "\x1b[32mINFO \x1b[0m" in out and "\x1b[1;31mERROR\x1b[0m" in out


def test_json_passes_lines_through_unchanged(
    cli: Callable[..., CliResult], sample_log: list[str]
) -> None:
    r = cli("logs", "--json")
    assert r.returncode == 0, r.stderr
    json_lines = [line for line in sample_log if line.startswith("{")]
    assert r.stdout.splitlines() == json_lines  # byte for byte, non-JSON left out
    r = cli("logs", "--json", "--task", "backup")
    assert r.stdout == FAIL_LINE + "\n"


def test_level_filter(cli: Callable[..., CliResult], sample_log: list[str]) -> None:
    r = cli("logs", "--json", "--level", "warning")
    assert r.stdout.splitlines() == [FAIL_LINE]
    r = cli("logs", "--level", "loud")
    assert r.returncode == 2
    assert r.stderr.startswith("bassi-schedd: --level: unknown level 'loud'")
    assert len(r.stderr.splitlines()) == 1


def test_task_filter(cli: Callable[..., CliResult], sample_log: list[str]) -> None:
    r = cli("logs", "--task", "weekly")
    assert r.returncode == 0
    assert [line.split()[4] for line in r.stdout.splitlines()] == ["run.start", "run.end"]
    assert cli("logs", "--task", "nope").stdout == ""


def test_since_filter(cli: Callable[..., CliResult], home: Home) -> None:
    now = datetime.now(UTC)
    lines = [
        rec(now - timedelta(days=3), "old"),
        rec(now - timedelta(hours=5), "hours-ago"),
        rec(now - timedelta(minutes=10), "recent"),
    ]
    write_log(home.log_file, lines)

    def events(*args: str) -> list[str]:
        r = cli("logs", "--json", *args)
        assert r.returncode == 0, r.stderr
        return [json.loads(line)["event"] for line in r.stdout.splitlines()]

    assert events("--since", "30m") == ["recent"]
    assert events("--since", "1d") == ["hours-ago", "recent"]
    assert events("--since", "2h") == ["recent"]
    assert events("--since", "7d") == ["old", "hours-ago", "recent"]
    r = cli("logs", "--since", "yesterday")
    assert r.returncode == 2 and r.stderr.startswith("bassi-schedd: --since:")


@pytest.mark.parametrize("since", ["3000000d", "36501d", "9" * 400 + "d"])
def test_since_beyond_the_calendar_is_a_usage_error(
    cli: Callable[..., CliResult], home: Home, since: str
) -> None:
    write_log(home.log_file, [rec(datetime.now(UTC), "recent")])
    r = cli("logs", "--since", since)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.startswith("bassi-schedd: --since must be between 0s and 36500d, got ")
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("logs", "--json", "--since", "36500d").stdout.count('"recent"') == 1


# -- --run ------------------------------------------------------------------------------------


def test_run_shows_its_lines_then_output_log(
    cli: Callable[..., CliResult], home: Home, sample_log: list[str]
) -> None:
    run_dir = home.run_dir("weekly", RUN_A)
    run_dir.mkdir(parents=True)
    (run_dir / "output.log").write_text("hello from the task\nsecond line\n")
    for run_arg in (RUN_A, "a1b2c3"):
        r = cli("logs", "--run", run_arg)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines() == [
            "2026-11-22 08:00:01 INFO  weekly run.start run=a1b2c3 pid=77",
            "2026-11-22 08:00:13 INFO  weekly run.end success 12.3s exit=0 cost=$0.0123 run=a1b2c3",
            f"--- output.log ({run_dir / 'output.log'}) ---",
            "hello from the task",
            "second line",
        ]
    r = cli("logs", "--run", "a1b2c3", "--json")
    assert r.stdout.splitlines() == [sample_log[1], OK_LINE]  # JSON only, no output.log


def test_run_found_through_the_history(
    cli: Callable[..., CliResult], home: Home, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "moved-run"
    elsewhere.mkdir()
    (elsewhere / "output.log").write_text("from the history's run_dir\n")
    db = StateDB.open(home.state_db)
    try:
        db.start_manual_run("weekly", RUN_B, lambda _: str(elsewhere), 1234, None, T0)
    finally:
        db.close()
    r = cli("logs", "--run", RUN_B)
    assert r.returncode == 0, r.stderr
    assert r.stdout.endswith("from the history's run_dir\n")


def test_run_without_output_log(
    cli: Callable[..., CliResult], home: Home, sample_log: list[str]
) -> None:
    run_dir = home.run_dir("backup", RUN_B)
    run_dir.mkdir(parents=True)
    r = cli("logs", "--run", "d4e5f6")
    assert r.returncode == 0
    assert "run.end failed" in r.stdout
    assert f"(no output.log in {run_dir})" in r.stderr


def test_unknown_bad_and_ambiguous_run_ids(
    cli: Callable[..., CliResult], home: Home, sample_log: list[str]
) -> None:
    r = cli("logs", "--run", "ffffff")
    assert r.returncode == 1
    assert r.stderr.startswith("bassi-schedd: no run 'ffffff'")
    assert len(r.stderr.splitlines()) == 1
    r = cli("logs", "--run", "../../etc")
    assert r.returncode == 1 and "is not a run id" in r.stderr
    home.run_dir("a", "20261122T080001Z-cafe01").mkdir(parents=True)
    home.run_dir("b", "20261122T090001Z-cafe01").mkdir(parents=True)
    r = cli("logs", "--run", "cafe01")
    assert r.returncode == 1 and "ambiguous" in r.stderr


# -- pipes ------------------------------------------------------------------------------------


def test_closed_pipe_ends_quietly(home: Home) -> None:
    write_log(home.log_file, [rec(T0, "tick", seq=i, pad="x" * 100) for i in range(5000)])
    proc = subprocess.Popen(
        [*CLI, "logs"], env=base_env(home.root), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"2026-11-22 08:00:01 INFO  - tick")
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=30) == 0
    assert err == b""


# -- follow -----------------------------------------------------------------------------------


class Tail:
    """A running ``bassi-schedd logs -f``; its stdout lines are collected by a thread."""

    def __init__(self, home: Home, tmp_path: Path, *args: str):
        self.err_path = tmp_path / "follow.err"
        with self.err_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [*CLI, "logs", "-f", *args],
                env=base_env(home.root),
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
            )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode().rstrip("\n"))

    def wait_lines(self, n: int, timeout: float = 20.0) -> list[str]:
        def enough() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"logs -f exited: {self.err_path.read_text()}")
            return len(self.lines) >= n

        wait_for(enough, timeout)
        return list(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def tail(home: Home, tmp_path: Path) -> Iterator[Callable[..., Tail]]:
    started: list[Tail] = []

    def _start(*args: str) -> Tail:
        t = Tail(home, tmp_path, *args)
        started.append(t)
        return t

    yield _start
    for t in started:
        t.stop()


def test_follow_prints_history_then_new_lines_across_rotations(
    home: Home, tail: Callable[..., Tail]
) -> None:
    write_log(home.log_file, [rec(T0, "before", seq=-2), rec(T0, "before", seq=-1)])
    t = tail("--json")
    assert [json.loads(x)["seq"] for x in t.wait_lines(2)] == [-2, -1]

    writer = LogFile(home.log_file, max_bytes=600, backups=20, retry_s=60)
    written = [rec(datetime.now(UTC), "tick", seq=i, pad="r" * 40) for i in range(30)]
    try:
        for i, line in enumerate(written):
            assert writer.write(line) is None
            if i == 12:  # let the follower catch up once, mid-stream
                t.wait_lines(2 + 13)
    finally:
        writer.close()
    assert (home.logs_dir / "schedd.log.2").exists()  # it did rotate, more than once
    got = t.wait_lines(32)
    assert got[2:] == written  # every line, in order, unchanged


def test_follow_with_filter_and_readable_output(home: Home, tail: Callable[..., Tail]) -> None:
    write_log(home.log_file, [OK_LINE, FAIL_LINE])
    t = tail("--task", "backup")
    assert t.wait_lines(1) == [
        '2026-11-22 09:00:01 ERROR backup run.end failed 0.5s exit=3 run=d4e5f6 error="disk full"'
    ]
    writer = LogFile(home.log_file, max_bytes=10_000, backups=2, retry_s=60)
    try:
        writer.write(rec(T0, "run.start", task="weekly", run_id=RUN_A))
        writer.write(rec(T0, "run.start", task="backup", run_id=RUN_B))
    finally:
        writer.close()
    got = t.wait_lines(2)
    assert got[1] == "2026-11-22 08:00:01 INFO  backup run.start run=d4e5f6"
    assert len(t.lines) == 2


def test_follow_waits_for_the_log_to_appear(
    home: Home, tail: Callable[..., Tail], tmp_path: Path
) -> None:
    t = tail()
    wait_for(lambda: "waiting" in t.err_path.read_text())
    assert t.proc.poll() is None
    writer = LogFile(home.log_file, max_bytes=10_000, backups=2, retry_s=60)
    try:
        writer.write(rec(T0, "daemon.start", pid=1))
    finally:
        writer.close()
    assert t.wait_lines(1) == ["2026-11-22 08:00:01 INFO  - daemon.start pid=1"]
    assert "Traceback" not in t.err_path.read_text()


def test_run_with_lines_but_no_folder_and_a_broken_history(
    cli: Callable[..., CliResult], home: Home, sample_log: list[str]
) -> None:
    home.state_db.write_bytes(b"this is not a database")
    r = cli("logs", "--run", "d4e5f6")
    assert r.returncode == 0
    assert "run.end failed" in r.stdout
    assert "(no run folder found for this run)" in r.stderr and "Traceback" not in r.stderr
    r = cli("logs", "--run", "0000aa")
    assert r.returncode == 1 and r.stderr.startswith("bassi-schedd: no run '0000aa'")


def test_follow_an_unknown_run_fails_at_once(
    cli: Callable[..., CliResult], sample_log: list[str]
) -> None:
    r = cli("logs", "-f", "--run", "ffffff", timeout=30)
    assert r.returncode == 1
    assert r.stderr.startswith("bassi-schedd: no run 'ffffff'")
