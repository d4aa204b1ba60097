"""sd_notify over a real AF_UNIX datagram socket (path and abstract names), and the watchdog."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest
from conftest import DaemonProc

from bassi_schedd.daemon.sdnotify import notify, watchdog_interval_s


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A short folder: AF_UNIX paths are limited to ~104 bytes, pytest's tmp_path can be longer."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="sdn") as d:
        yield Path(d)


def _receiver(address: str | bytes) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_ready_and_watchdog_reach_a_path_socket(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = short_tmp / "notify"
    with _receiver(str(path)) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"
        assert notify("WATCHDOG=1") is True
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_abstract_socket_name(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"bassi-schedd-test-{uuid.uuid4().hex}"
    with _receiver(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        assert notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"


def test_a_daemon_child_process_notifies(short_tmp: Path) -> None:
    """The way systemd sees it: another process with NOTIFY_SOCKET in its environment."""
    path = short_tmp / "notify"
    with _receiver(str(path)) as sock:
        env = {**os.environ, "NOTIFY_SOCKET": str(path)}
        code = (
            "from bassi_schedd.daemon.sdnotify import notify; "
            "raise SystemExit(not notify('READY=1'))"
        )
        subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
        assert sock.recv(4096) == b"READY=1"


def test_no_socket_is_a_silent_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert notify("READY=1") is False


def test_unusable_addresses_return_false(short_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(short_tmp / "nobody-listens"))
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", "relative/path")
    assert notify("READY=1") is False


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() is None
    monkeypatch.setenv("WATCHDOG_USEC", "180000000")
    assert watchdog_interval_s() == 180.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    assert watchdog_interval_s() == 180.0
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval_s() is None  # meant for another process
    monkeypatch.setenv("WATCHDOG_PID", "x")
    assert watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_PID")
    for bad in ("0", "-5", "abc", ""):
        monkeypatch.setenv("WATCHDOG_USEC", bad)
        assert watchdog_interval_s() is None


def test_the_daemon_speaks_the_protocol(short_tmp: Path, daemon: Callable[..., DaemonProc]) -> None:
    """What Type=notify and WatchdogSec= in the unit rely on: READY=1 once started, WATCHDOG=1
    from the loop, STOPPING=1 on SIGTERM, exit 0."""
    path = short_tmp / "notify"
    with _receiver(str(path)) as sock:
        sock.settimeout(30)
        d = daemon(env={"NOTIFY_SOCKET": str(path)})
        assert sock.recv(4096) == b"READY=1"
        d.signal(signal.SIGHUP)  # wakes the loop at once instead of at the next minute
        assert sock.recv(4096) == b"WATCHDOG=1"
        d.signal(signal.SIGTERM)
        seen = []
        while b"STOPPING=1" not in seen:
            seen.append(sock.recv(4096))
        assert set(seen) <= {b"WATCHDOG=1", b"STOPPING=1"}
        assert d.proc.wait(timeout=30) == 0


def test_watchdog_pings_come_at_half_a_short_period(
    short_tmp: Path, daemon: Callable[..., DaemonProc]
) -> None:
    """With WatchdogSec=2s (WATCHDOG_USEC) an idle daemon pings every second, not every 30 s."""

    path = short_tmp / "notify"
    with _receiver(str(path)) as sock:
        sock.settimeout(30)
        d = daemon(env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "2000000"})
        assert sock.recv(4096) == b"READY=1"
        sock.settimeout(5)
        stamps = []
        while len(stamps) < 5:
            if sock.recv(4096) == b"WATCHDOG=1":
                stamps.append(time.monotonic())
        gaps_s = [b - a for a, b in itertools.pairwise(stamps)]
        assert max(gaps_s) < 1.6, gaps_s  # 1 s plus scheduling slack, well inside the 2 s limit
        d.signal(signal.SIGTERM)
        assert d.proc.wait(timeout=30) == 0


def test_stopping_is_sent_as_shutdown_begins(
    short_tmp: Path, daemon: Callable[..., DaemonProc], write_task: Callable[[str, str], Path], cli
) -> None:
    """sd_notify(3): STOPPING=1 when shutdown starts - while a run that ignores SIGTERM is still
    in its 10 s grace - not after the runs were killed."""
    pidfile = short_tmp / "run.pid"
    write_task(
        "stubborn",
        f"""
        schedule = "0 0 1 1 *"
        timezone = "UTC"
        command = ["/bin/sh", "-c", "trap '' TERM; echo $$ > {pidfile}; sleep 60"]
        """,
    )
    path = short_tmp / "notify"
    with _receiver(str(path)) as sock:
        sock.settimeout(30)
        d = daemon(env={"NOTIFY_SOCKET": str(path)})
        assert sock.recv(4096) == b"READY=1"
        assert cli("trigger", "stubborn").returncode == 0
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        run_pid = int(pidfile.read_text())
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        while sock.recv(4096) != b"STOPPING=1":
            pass
        assert time.monotonic() - t0 < 8.0, "STOPPING=1 came only after the 10 s kill grace"
        try:
            alive = psutil.Process(run_pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        assert alive, "STOPPING=1 came only after the run was killed"
        assert d.proc.wait(timeout=30) == 0
