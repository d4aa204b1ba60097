"""sd_notify over a real AF_UNIX datagram socket (path and abstract names), and the watchdog."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from support import datagram_receiver

from bassi_schedd.daemon.sdnotify import notify, watchdog_interval_s


def test_ready_and_watchdog_reach_a_path_socket(
    short_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = short_tmp / "notify"
    with datagram_receiver(str(path)) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        assert notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"
        assert notify("WATCHDOG=1") is True
        assert sock.recv(4096) == b"WATCHDOG=1"


def test_abstract_socket_name(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"bassi-schedd-test-{uuid.uuid4().hex}"
    with datagram_receiver(b"\0" + name.encode()) as sock:
        monkeypatch.setenv("NOTIFY_SOCKET", f"@{name}")
        assert notify("READY=1") is True
        assert sock.recv(4096) == b"READY=1"


def test_a_daemon_child_process_notifies(short_tmp: Path) -> None:
    """The way systemd sees it: another process with NOTIFY_SOCKET in its environment."""
    path = short_tmp / "notify"
    with datagram_receiver(str(path)) as sock:
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
