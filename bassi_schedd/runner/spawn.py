"""Starting an isolated child: the one ``Popen`` of daemon runs, notify programs and ``execute``.

Every child gets its own session (so its whole process group can be signalled), umask 077, the
environment it is given and nothing else, stdin ``/dev/null`` or a pipe, stdout and stderr
together in a file or a pipe, and no inherited descriptors. Optionally:

- an exit-code file: the child runs behind a one-line ``/bin/sh`` wrapper that writes the
  command's exit status there. Someone other than ``Popen.wait`` may collect the status (a
  daemon restarted after a crash adopts the run; a subreaper daemon reaps children it does not
  track), so the file is the reliable source;
- subreaper: on Linux, once this process is a child subreaper (:func:`become_subreaper`), the
  child becomes one too between fork and exec, so descendants that double-fork away from it
  stay in its tree (README, "Which processes belong to a run"). That costs a fork with a
  pre-exec step instead of a vfork, so only daemon runs ask for it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from bassi_schedd.config.paths import FILE_MODE

CHILD_UMASK = 0o077
# $1 is the exit-code file, the rest the command; the wrapper exits with the command's status.
_EXIT_CODE_WRAPPER = 'f=$1; shift; "$@"; rc=$?; echo "$rc" > "$f"; exit "$rc"'
_PR_SET_CHILD_SUBREAPER = 36
# Set once this process is a subreaper: then children started with subreaper=True become ones.
_subreaper_preexec: Callable[[], None] | None = None


@dataclass(frozen=True)
class ChildSpec:
    """How to start one child (see the module notes for what every child gets)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    cwd: Path | str
    # Appended to (created 0600) with stdout and stderr; None: a pipe, in ``Popen.stdout``.
    output: Path | None = None
    stdin_pipe: bool = False  # else /dev/null
    exit_code_file: Path | None = None  # run behind the exit-code wrapper (module notes)
    name: str = "bassi-run"  # the wrapper's $0: how ps shows it, how its errors start
    subreaper: bool = False  # module notes
    # Appended to (created 0600) with stderr alone, when stdout must stay apart (the gate's).
    stderr_file: Path | None = None


def start_child(spec: ChildSpec) -> subprocess.Popen[bytes]:
    """Start ``spec``; raises OSError when it cannot be (missing cwd, unwritable output...).

    A missing program is an OSError only without a wrapper; behind one, the shell reports it
    in the output and exits 127.
    """
    argv = list(spec.argv)
    if spec.exit_code_file is not None:
        exit_file = str(spec.exit_code_file.absolute())  # the child's cwd is not ours
        argv = ["/bin/sh", "-c", _EXIT_CODE_WRAPPER, spec.name, exit_file, *argv]
    out_fd: int | None = None
    err_fd: int | None = None
    if spec.output is not None:
        out_fd = os.open(spec.output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    if spec.stderr_file is not None:
        err_fd = os.open(spec.stderr_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if spec.stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE if out_fd is None else out_fd,
            stderr=subprocess.STDOUT if err_fd is None else err_fd,
            cwd=spec.cwd,
            env=dict(spec.env),
            start_new_session=True,
            umask=CHILD_UMASK,
            close_fds=True,
            preexec_fn=_subreaper_preexec if spec.subreaper else None,
        )
    finally:
        for fd in (out_fd, err_fd):
            if fd is not None:
                os.close(fd)


def read_exit_status(path: Path) -> int | None:
    """The exit status the wrapper wrote to ``path``, if the command ended on its own."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def become_subreaper() -> bool:
    """On Linux, adopt our orphaned descendants so none escapes to init (best effort).

    From then on children started with ``subreaper=True`` become subreapers too.
    """
    global _subreaper_preexec
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        prctl = libc.prctl
        if int(prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) != 0:
            return False
    except (OSError, AttributeError):
        return False

    def child_becomes_subreaper() -> None:
        # Runs in the forked child before exec. It only calls a libc function resolved before
        # the fork (no import, no lock another thread could hold); the flag survives exec.
        prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

    _subreaper_preexec = child_becomes_subreaper
    return True


def runs_are_subreapers() -> bool:
    """Whether children started with ``subreaper=True`` keep their orphans in their own tree
    (Linux, after :func:`become_subreaper`)."""
    return _subreaper_preexec is not None
