"""Fixtures: a temporary BASSI_HOME and the real CLI and daemon in subprocesses on it.

The helpers they use, and that test modules import, are in ``tests/support``.
"""

from __future__ import annotations

import subprocess
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import CLI, CliResult, DaemonProc, Start, assert_known_events, base_env, faketime_env
from support.web import WebProc, start_web

from bassi_schedd.config.paths import Home


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


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder: AF_UNIX paths are limited to ~104 bytes, pytest's tmp_path can be longer."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sdn") as d:
        yield Path(d)


@pytest.fixture(autouse=True)
def _no_bassi_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's own BASSI_HOME."""
    monkeypatch.delenv("BASSI_HOME", raising=False)
    yield


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


@pytest.fixture
def web(home: Home, tmp_path: Path) -> Iterator[Callable[..., WebProc]]:
    """Start real ``bassi-schedd web`` processes on the temp home (a free port each); every one
    still running at the end is stopped."""
    started: list[WebProc] = []

    def _start(*args: str, wait: bool = True, env: dict[str, str] | None = None) -> WebProc:
        w = start_web(home.root, tmp_path / f"web-{len(started)}.out", *args, env=env)
        started.append(w)
        if wait:
            w.wait_started()
        return w

    yield _start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait(timeout=10)
