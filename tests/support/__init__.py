"""Helpers the tests share: paths, the CLI and daemon as subprocesses, waiting, state-DB reads.

Fixtures live in ``tests/conftest.py``; everything a test module imports comes from here (pytest
puts ``tests/`` on ``sys.path``, so ``from support import wait_for`` works from every folder).
Shared fakes have modules of their own: ``support.fake_claude``, ``support.service_fakes``,
``support.pings``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bassi_schedd.config.paths import Home

REPO = Path(__file__).resolve().parents[2]
BIN_DIR = Path(sys.executable).parent
CLI = [sys.executable, "-m", "bassi_schedd"]


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def base_env(home: Path) -> dict[str, str]:
    """A predictable environment for subprocesses: our home, UTC unless a test says otherwise."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BASSI_", "FAKETIME"))}
    env.pop("LD_PRELOAD", None)
    env["BASSI_HOME"] = str(home)
    env.setdefault("TZ", "UTC")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PATH"] = f"{BIN_DIR}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    return env


def datagram_receiver(address: str | bytes) -> socket.socket:
    """A bound AF_UNIX datagram socket, as systemd listens on NOTIFY_SOCKET (a path, or bytes
    starting with NUL for an abstract name); recv times out after 5 s unless the test says so."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


# -- the real daemon as a subprocess -----------------------------------------------------------


def faketime_lib() -> str:
    """Path of the libfaketime.so that PyPI's libfaketime package vendors."""
    import importlib.util

    spec = importlib.util.find_spec("libfaketime")
    assert spec is not None and spec.origin is not None, "libfaketime is a test dependency"
    lib = Path(spec.origin).parent / "vendor" / "libfaketime" / "src" / "libfaketime.so.1"
    assert lib.exists(), lib
    return str(lib)


def faketime_env(at: str) -> dict[str, str]:
    """Start the process's wall clock at ``at`` (UTC, "YYYY-MM-DD HH:MM:SS"), real speed."""
    return {
        "LD_PRELOAD": faketime_lib(),
        "FAKETIME": f"@{at}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "FAKETIME_NO_CACHE": "1",
        "TZ": "UTC",
    }


def wait_for(predicate: Callable[[], object], timeout: float = 20.0, every: float = 0.05) -> object:
    """Poll ``predicate`` until it returns something truthy; fail the test on timeout."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(every)


def flag_value(argv: list[str], flag: str) -> str | None:
    """The value of ``--flag VALUE`` or ``--flag=VALUE`` in a CLI argv (SDK releases differ)."""
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def has_flag(argv: list[str], flag: str) -> bool:
    """True when ``flag`` appears in argv in either spelling."""
    return any(arg == flag or arg.startswith(flag + "=") for arg in argv)


class DaemonProc:
    """One ``bassi-schedd run`` subprocess with its output captured to files."""

    def __init__(self, home: Home, proc: subprocess.Popen[bytes], out: Path):
        self.home = home
        self.proc = proc
        self.out = out

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out.read_text(errors="replace") if self.out.exists() else ""

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = 15, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Wait until the daemon holds the lock and has written its first tick."""
        import sqlite3

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.output()}")
            if not self.home.state_db.exists():
                return False
            try:
                con = sqlite3.connect(f"file:{self.home.state_db}?mode=ro", uri=True, timeout=5)
                try:
                    row = con.execute("SELECT value FROM meta WHERE key='last_tick'").fetchone()
                finally:
                    con.close()
            except sqlite3.Error:
                return False
            return row is not None

        wait_for(ready, timeout)


Start = Callable[..., DaemonProc]  # the type of the `daemon` fixture


def assert_known_events(home: Home) -> None:
    """Every line the daemons logged carries an event name listed in logs.EVENTS."""
    import json

    from bassi_schedd.logs.events import EVENTS

    unknown = set()
    for path in home.log_file.parent.glob(home.log_file.name + "*"):
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line).get("event")
            except ValueError:
                continue  # a line cut by a kill -9 is the chaos tests' business
            if event not in EVENTS:
                unknown.add(event)
    assert not unknown, f"events not in logs.EVENTS: {sorted(map(str, unknown))}"


def runs(home: Home, task: str | None = None) -> list[dict[str, object]]:
    """History rows (of one task, or all), oldest first."""
    sql = "SELECT * FROM runs" + (" WHERE task = ?" if task else "") + " ORDER BY seq"
    return db_rows(home, sql, (task,) if task else ())


def statuses(home: Home, task: str) -> list[tuple[object, ...]]:
    """(scheduled_for, trigger, status) of each of a task's rows, oldest first."""
    return [(r["scheduled_for"], r["trigger"], r["status"]) for r in runs(home, task)]


def iso(hhmm: str, day: str = "2026-11-01") -> str:
    """A UTC time as the state DB stores it."""
    return f"{day}T{hhmm}:00+00:00"


def db_rows(home: Home, sql: str, params: tuple[object, ...] = ()) -> list[dict[str, object]]:
    """Read the daemon's state DB the way an outside tool would."""
    import sqlite3

    con = sqlite3.connect(f"file:{home.state_db}?mode=ro", uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(sql, params)]
    finally:
        con.close()
