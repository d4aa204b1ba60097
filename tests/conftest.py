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

from bassi_schedd.paths import Home

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
