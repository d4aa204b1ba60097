"""Shared fixtures: a temporary BASSI_HOME and a way to run the real CLI in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bassi_schedd.config.paths import Home

REPO = Path(__file__).resolve().parent.parent
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


@pytest.fixture
def home(tmp_path: Path) -> Home:
    """An empty BASSI_HOME with a tasks folder (0700, as the daemon would create it)."""
    h = Home(tmp_path / "bassi")
    h.ensure()
    return h


@pytest.fixture
def write_task(home: Home) -> Callable[[str, str], Path]:
    """Write ``tasks/NAME.toml`` (dedented) with mode 0600; returns its path."""

    def _write(name: str, body: str) -> Path:
        path = home.tasks_dir / f"{name}.toml"
        path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
        path.chmod(0o600)
        return path

    return _write


@pytest.fixture
def cli(home: Home) -> Callable[..., CliResult]:
    """Run ``python -m bassi_schedd ARGS`` against the temp home, as a user would."""

    def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> CliResult:
        full_env = base_env(home.root)
        if env:
            full_env.update(env)
        p = subprocess.run(
            [*CLI, *args],
            env=full_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=str(home.root),
        )
        return CliResult(p.returncode, p.stdout, p.stderr)

    return _run


@pytest.fixture(autouse=True)
def _no_bassi_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's own BASSI_HOME."""
    monkeypatch.delenv("BASSI_HOME", raising=False)
    yield


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


@pytest.fixture
def daemon(home: Home, tmp_path: Path) -> Iterator[Start]:
    """Start real daemons on the temp home; every one still alive at the end is SIGKILLed."""
    started: list[DaemonProc] = []

    def _start(
        *args: str,
        fake_at: str | None = None,
        clock_file: Path | None = None,
        env: dict[str, str] | None = None,
        once: bool = False,
    ) -> DaemonProc:
        full_env = base_env(home.root)
        if fake_at:
            full_env.update(faketime_env(fake_at))
        if clock_file is not None:
            # The clock follows the file's "@YYYY-MM-DD HH:MM:SS": rewrite it to step the clock.
            full_env.update(faketime_env("2000-01-01 00:00:00"))
            del full_env["FAKETIME"]
            full_env["FAKETIME_TIMESTAMP_FILE"] = str(clock_file)
        if env:
            full_env.update(env)
        out = tmp_path / f"daemon-{len(started)}.out"
        argv = [*CLI, "run", *(["--once"] if once else []), *args]
        with out.open("wb") as f:
            proc = subprocess.Popen(
                argv, env=full_env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        d = DaemonProc(home, proc, out)
        started.append(d)
        return d

    yield _start
    for d in started:
        if d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(timeout=10)
    if started:
        assert_known_events(home)


def assert_known_events(home: Home) -> None:
    """Every line the daemons logged carries an event name listed in logs.EVENTS."""
    import json

    from bassi_schedd.logs.setup import EVENTS

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
