"""The process toolkit every child goes through (runner/spawn.py, runner/kill.py) and the
output-tail reader, with real processes and files."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from support import wait_for

from bassi_schedd.core.records import as_integer, as_number
from bassi_schedd.runner.kill import stop_tree, tree_of
from bassi_schedd.runner.outputcap import tail_text
from bassi_schedd.runner.spawn import ChildSpec, read_exit_status, start_child


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_a_wrapped_child_gets_stdin_its_env_only_and_records_its_exit_status(
    tmp_path: Path,
) -> None:
    out, status = tmp_path / "out" / "output", tmp_path / "status"
    out.parent.mkdir()
    script = 'cat; echo "umask $(umask)"; echo "X=$X HOME=${HOME-unset}"; exit 3'
    spec = ChildSpec(
        ("/bin/sh", "-c", script),
        {"PATH": os.defpath, "X": "y"},
        tmp_path,
        output=out,
        stdin_pipe=True,
        exit_code_file=Path(os.path.relpath(status)),  # relative to our cwd, not the child's
        name="bassi-notify",
    )
    p = start_child(spec)
    assert os.getsid(p.pid) == p.pid  # its own session
    p.communicate(b"from stdin\n", timeout=10)
    assert p.returncode == 3  # the wrapper passes the status on
    assert read_exit_status(status) == 3
    assert out.read_text() == "from stdin\numask 0077\nX=y HOME=unset\n"
    assert out.stat().st_mode & 0o777 == 0o600


def test_an_unwrapped_child_writes_to_a_pipe_and_a_missing_program_raises(
    tmp_path: Path,
) -> None:
    argv = ("/bin/sh", "-c", "echo hi; read x || echo stdin closed")
    p = start_child(ChildSpec(argv, {"PATH": os.defpath}, tmp_path))
    assert p.args == list(argv)  # no wrapper
    stdout, _ = p.communicate(timeout=10)
    assert stdout == b"hi\nstdin closed\n"
    with pytest.raises(FileNotFoundError):
        start_child(ChildSpec(("/no/such/program",), {}, tmp_path))


def test_stop_tree_kills_a_term_ignoring_descendant_that_left_the_tree(tmp_path: Path) -> None:
    # The root obeys SIGTERM; the grandchild ignores it, has its own session, and is no longer
    # the root's descendant once the root is gone: it was found at the first look, so the
    # SIGKILL after the grace still reaches it.
    script = (
        "setsid sh -c 'trap \"\" TERM; echo $$ > gc.pid; exec sleep 300' & "
        "while [ ! -s gc.pid ]; do sleep 0.01; done; sleep 300"
    )
    log = tmp_path / "output.log"
    p = start_child(ChildSpec(("/bin/sh", "-c", script), {"PATH": os.defpath}, tmp_path, log))
    pid_file = tmp_path / "gc.pid"
    grandchild = int(str(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())))
    wait_for(lambda: any(c.pid == grandchild for c in psutil.Process(p.pid).children(True)))
    try:
        start = time.monotonic()
        stop_tree(p.pid, tree_of(p.pid), grace_s=1.0, reap=p.poll)
        assert time.monotonic() - start >= 1.0  # it waited for the grace, then killed
        assert p.poll() is not None
        wait_for(lambda: _gone(grandchild), 10)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(grandchild, signal.SIGKILL)


def test_stop_tree_returns_as_soon_as_the_tree_obeys(tmp_path: Path) -> None:
    argv = ("/bin/sh", "-c", "sleep 300")
    p = start_child(ChildSpec(argv, {"PATH": os.defpath}, tmp_path, tmp_path / "output.log"))
    start = time.monotonic()
    stop_tree(p.pid, tree_of(p.pid), grace_s=60.0, reap=p.poll)
    assert time.monotonic() - start < 30.0
    assert p.returncode is not None and p.returncode < 0


def test_tail_text_bounds_lines_and_characters(tmp_path: Path) -> None:
    log = tmp_path / "output.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "é" * 50)
    assert tail_text(log, 10_000, lines=3) == "line 98\nline 99\n" + "é" * 50
    assert tail_text(log, 20) == "é" * 20
    assert tail_text(tmp_path / "missing", 10) == ""


def test_result_numbers_take_numbers_only() -> None:
    assert as_number(2) == 2.0 and as_number(0.5) == 0.5
    assert as_integer(7) == 7 and as_integer(7.0) is None
    for junk in (True, "3", None, [1]):
        assert as_number(junk) is None and as_integer(junk) is None
