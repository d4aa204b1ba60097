"""The PID lock: one holder, its PID readable, released by death."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from bassi_schedd.config.paths import Home
from bassi_schedd.store.lock import LockBusyError, LockLostError, PidLock, read_holder
from bassi_schedd.store.state import StateDB


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
        "from bassi_schedd.store.lock import PidLock\nfrom bassi_schedd.config.paths import Home\n"
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


def test_the_folder_lock_outlives_a_deleted_pid_file(home: Home) -> None:
    db = StateDB.open(home.state_db)
    db.set_meta({"daemon_pid": str(os.getpid())})
    db.close()
    lock = PidLock(home)
    lock.acquire()
    try:
        home.pid_file.unlink()
        with pytest.raises(LockBusyError, match=rf"already running \(pid {os.getpid()}\)"):
            PidLock(home).acquire()
        assert read_holder(home) == os.getpid()  # found through the state DB meanwhile
    finally:
        lock.release()
    assert read_holder(home) is None


def test_check_writes_a_deleted_replaced_or_overwritten_pid_file_again(home: Home) -> None:
    lock = PidLock(home)
    lock.acquire()
    try:
        assert lock.check() is None
        home.pid_file.unlink()
        assert lock.check() == f"{home.pid_file} was deleted; written again"
        assert home.pid_file.read_text() == f"{os.getpid()}\n"
        home.pid_file.write_text("1\n")
        assert lock.check() == f"{home.pid_file} did not hold our PID; written again"
        other = home.schedd_dir / "other.pid"
        other.write_text("2\n")
        other.replace(home.pid_file)
        assert lock.check() == f"{home.pid_file} was replaced; written again"
        assert home.pid_file.read_text() == f"{os.getpid()}\n"
        assert lock.check() is None
        with pytest.raises(LockBusyError):
            PidLock(home).acquire()
    finally:
        lock.release()


def test_a_replaced_lock_folder_is_a_lost_lock(home: Home) -> None:
    lock = PidLock(home)
    lock.acquire()
    try:
        home.schedd_dir.rename(home.root / "schedd.old")
        home.schedd_dir.mkdir()
        with pytest.raises(LockLostError, match="was replaced"):
            lock.check()
    finally:
        lock.release()
