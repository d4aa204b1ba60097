"""Starting runs and ending process trees, with real processes."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
from support import wait_for

from bassi_schedd.runner.process import (
    Active,
    create_time,
    is_alive,
    read_exit_code,
    run_processes,
    spawn,
)


def env_for(run_dir: Path, run_id: str = "r1") -> dict[str, str]:
    return {"PATH": os.defpath, "BASSI_RUN_DIR": str(run_dir), "BASSI_RUN_ID": run_id}


def test_spawn_isolates_and_records_exit_code(tmp_path: Path) -> None:
    script = 'echo "out $(pwd)"; echo err >&2; read x || echo "stdin closed"; umask; exit 7'
    p = spawn(["/bin/sh", "-c", script], env_for(tmp_path), tmp_path, tmp_path)
    assert os.getsid(p.pid) == p.pid  # its own session
    assert p.wait(10) == 7
    out = (tmp_path / "output.log").read_text()
    assert f"out {tmp_path}" in out and "err" in out and "stdin closed" in out
    assert "0077" in out
    assert read_exit_code(tmp_path) == 7
    assert oct((tmp_path / "output.log").stat().st_mode & 0o777) == "0o600"


def test_spawn_of_a_missing_program_fails_in_the_child(tmp_path: Path) -> None:
    p = spawn(["/no/such/program"], env_for(tmp_path), tmp_path, tmp_path)
    assert p.wait(10) == 127
    assert "/no/such/program" in (tmp_path / "output.log").read_text()


def test_spawn_in_a_missing_cwd_raises(tmp_path: Path) -> None:
    try:
        spawn(["/bin/true"], env_for(tmp_path), tmp_path / "nope", tmp_path)
    except OSError:
        return
    raise AssertionError("spawn into a missing cwd must raise")


def test_is_alive_checks_create_time(tmp_path: Path) -> None:
    p = spawn(["/bin/sh", "-c", "sleep 30"], env_for(tmp_path), tmp_path, tmp_path)
    created = create_time(p.pid)
    assert is_alive(p.pid, created)
    assert not is_alive(p.pid, (created or 0) - 100)  # same pid, other process
    p.kill()
    p.wait()
    assert not is_alive(p.pid, created)


def test_terminate_reaches_escaped_and_term_ignoring_descendants(tmp_path: Path) -> None:
    script = (
        "trap '' TERM; "
        "setsid sh -c 'trap \"\" TERM; echo $$ > escaped.pid; sleep 300' & "
        "(trap '' TERM; echo $$ > sub.pid; exec sleep 300) & "
        "sleep 300"
    )
    p = spawn(["/bin/sh", "-c", script], env_for(tmp_path, "run-x"), tmp_path, tmp_path)
    wait_for(lambda: (tmp_path / "escaped.pid").exists() and (tmp_path / "sub.pid").exists())
    pids = [int((tmp_path / f).read_text()) for f in ("escaped.pid", "sub.pid")]
    found = {q.pid for q in run_processes(p.pid, "run-x")}
    assert set(pids) <= found and p.pid in found
    a = Active("run-x", "t", p.pid, create_time(p.pid), tmp_path, 0.0, popen=p)
    now = time.monotonic()
    a.terminate("timeout", now, grace_s=0.5)
    time.sleep(0.3)
    assert not a.poll()[0]  # everyone ignores SIGTERM
    a.kill_if_due(now + 1.0)
    _, rc = wait_for(lambda: a.poll()[0] and a.poll(), 5)  # type: ignore[misc]
    assert rc in (128 + signal.SIGTERM, 128 + signal.SIGKILL)
    for pid in pids:
        wait_for(
            lambda pid=pid: (
                not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
            ),
            5,
        )
