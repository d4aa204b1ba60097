"""Ending a process tree: SIGTERM its group and every process of it, SIGKILL survivors after a
grace period.

:func:`signal_tree` is one step (the daemon's loop never blocks: it sends SIGTERM, then SIGKILL
at a later wake-up); :func:`stop_tree` does the whole stop, blocking, for a notify program or
``execute`` in the foreground. Which processes make up a tree is the caller's to say: a notify
program's descendants, or everything belonging to a run (``process.run_processes``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterable

import psutil

# How long a run's processes get between SIGTERM and SIGKILL (timeout, stop, leftovers).
KILL_GRACE_S = 10.0
# How often stop_tree looks whether the tree is gone (each look may scan every process).
_POLL_S = 0.1


def tree_of(pid: int) -> Callable[[], list[psutil.Process]]:
    """A ``find`` for :func:`stop_tree`: ``pid`` and its descendants, for as long as that very
    process exists (once it is reaped, its pid may name another process)."""
    try:
        root = psutil.Process(pid)
    except psutil.Error:
        return list

    def find() -> list[psutil.Process]:
        try:
            return [root, *root.children(recursive=True)] if root.is_running() else []
        except psutil.Error:
            return []

    return find


def running(procs: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of ``procs`` that still run (a zombie only waits to be reaped; a reused pid is not
    the process that was found)."""
    alive = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    return alive


def signal_tree(group: int, procs: Iterable[psutil.Process], sig: int) -> int:
    """Send ``sig`` to the process group ``group`` and to each of ``procs``; returns how many of
    ``procs`` were alive (zombies are skipped)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, sig)
    alive = 0
    for p in procs:
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            p.send_signal(sig)
            alive += 1
        except psutil.Error:
            continue
    return alive


def stop_tree(
    group: int,
    find: Callable[[], Iterable[psutil.Process]],
    grace_s: float,
    *,
    reap: Callable[[], object] | None = None,
    settle_s: float = 0.0,
) -> None:
    """SIGTERM the group ``group`` and every process ``find`` returns; SIGKILL what still runs
    once ``grace_s`` passed; then wait up to ``settle_s`` for the survivors to be gone.

    ``find`` is asked again at each look, and a process it returned once stays a target: the
    tree may grow, and its members may leave it once their parent is gone. ``reap`` collects
    those of them that are our own children (else they stay zombies).
    """
    targets: dict[int, psutil.Process] = {}

    def alive() -> list[psutil.Process]:
        for p in find():
            targets.setdefault(p.pid, p)
        return running(targets.values())

    signal_tree(group, alive(), signal.SIGTERM)
    if _wait_gone(alive, grace_s, reap):
        return
    signal_tree(group, alive(), signal.SIGKILL)
    _wait_gone(alive, settle_s, reap)


def _wait_gone(
    alive: Callable[[], list[psutil.Process]], limit_s: float, reap: Callable[[], object] | None
) -> bool:
    """Whether every process is gone within ``limit_s`` (0: no wait, no look)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        if not alive():
            if reap is not None:
                reap()  # those that became zombies since the reap above
            return True
        time.sleep(_POLL_S)
    return False
