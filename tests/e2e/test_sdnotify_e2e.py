"""sd_notify from the real daemon: READY, WATCHDOG at half a short period, STOPPING on SIGTERM."""

from __future__ import annotations

import itertools
import signal
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from support import DaemonProc, datagram_receiver

from bassi_schedd.config.paths import Home


def test_the_daemon_speaks_the_protocol(short_tmp: Path, daemon: Callable[..., DaemonProc]) -> None:
    """What Type=notify and WatchdogSec= in the unit rely on: READY=1 once started, WATCHDOG=1
    from the loop, STOPPING=1 on SIGTERM, exit 0."""
    path = short_tmp / "notify"
    with datagram_receiver(str(path)) as sock:
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
    with datagram_receiver(str(path)) as sock:
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
    short_tmp: Path,
    home: Home,
    daemon: Callable[..., DaemonProc],
    write_task: Callable[[str, str], Path],
    cli,
) -> None:
    """sd_notify(3): STOPPING=1 when shutdown starts - while a run that ignores SIGTERM is still
    in its kill grace (6 s here) - not after the runs were killed."""
    home.config_file.write_text('kill_grace = "6s"\n')
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
    with datagram_receiver(str(path)) as sock:
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
        assert time.monotonic() - t0 < 5.0, "STOPPING=1 came only after the 6 s kill grace"
        try:
            alive = psutil.Process(run_pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            alive = False
        assert alive, "STOPPING=1 came only after the run was killed"
        assert d.proc.wait(timeout=30) == 0
