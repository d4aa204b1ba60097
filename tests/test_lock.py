"""The PID lock: one holder, its PID readable, released by death."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bassi_schedd.lock import LockBusyError, PidLock, read_holder
from bassi_schedd.paths import Home


def test_acquire_writes_pid_and_blocks_a_second(home: Home) -> None:
    a = PidLock(home)
    a.acquire()
    assert home.pid_file.read_text().strip() == str(os.getpid())
    assert read_holder(home) == os.getpid()
    with pytest.raises(LockBusyError, match=rf"already running \(pid {os.getpid()}\)"):
        PidLock(home).acquire()
    a.release()
    assert read_holder(home) is None
    b = PidLock(home)
    b.acquire()
    b.release()


def test_no_file_means_no_holder(home: Home) -> None:
    assert read_holder(home) is None


def test_lock_dies_with_its_process(home: Home) -> None:
    code = (
        "import time; from pathlib import Path\n"
        "from bassi_schedd.lock import PidLock\nfrom bassi_schedd.paths import Home\n"
        f"PidLock(Home(Path({str(home.root)!r}))).acquire()\n"
        "print('held', flush=True); time.sleep(60)"
    )
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None and p.stdout.readline().strip() == "held"
    assert read_holder(home) == p.pid
    p.kill()
    p.wait()
    p.stdout.close()
    deadline = time.monotonic() + 5
    while read_holder(home) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert read_holder(home) is None
    assert home.pid_file.read_text().strip() == str(p.pid)  # stale content, no lock: harmless
    last = PidLock(home)
    last.acquire()
    last.release()
