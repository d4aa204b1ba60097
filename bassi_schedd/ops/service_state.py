"""What the service manager says, read truthfully: the line of a failed systemctl/launchctl that
gives the reason, the unit's state (``systemctl show`` / ``launchctl print``), and whether the
daemon holding a home's lock is the one the service runs.

Read-only: nothing here starts, stops or writes anything.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from typing import Literal

import psutil

from bassi_schedd.config.paths import Home
from bassi_schedd.ops import install as svc
from bassi_schedd.store.lock import read_holder

# systemctl/launchctl lines that are never the reason for a failure: systemctl reports the
# symlinks it made or removed before it tries to start, and both tools add pointers to more.
_INFO_LINE = re.compile(
    r"^(Created symlink |Removed |See |Try (re-)?running |Warning: |Hint: |Executing: "
    r"|Synchronizing state |Unit \S+ is added as a dependency )",
    re.IGNORECASE,
)
# Lines that state the reason: systemd's job result and its "Failed to ..." errors, launchctl's
# "<Verb> failed: <errno>: <text>" and "Could not find service ...".
_REASON_LINE = re.compile(
    r"^(Job for \S+ failed|Failed to |\S+ failed: \d+: |Could not |Unit \S+ not found)",
    re.IGNORECASE,
)

Condition = Literal["running", "starting", "restarting", "stopped"]


def reason_line(stdout: str, stderr: str) -> str:
    """The line of a failed service-manager command that says why it failed.

    A reason line (``Job for ... failed ...``, ``Failed to ...``, ``Bootstrap failed: 5: ...``)
    wins; else the first line that is not merely informational; else the first line at all.
    Without its closing period: callers quote it inside a sentence of their own.
    """
    lines = [s for s in (x.strip() for x in f"{stderr}\n{stdout}".splitlines()) if s]
    telling = [s for s in lines if not _INFO_LINE.match(s)]
    reasons = [s for s in telling if _REASON_LINE.match(s)]
    return (reasons or telling or lines or [""])[0].removesuffix(".")


@dataclass(frozen=True)
class UnitState:
    """The service as its manager reports it; fields it did not print are None."""

    condition: Condition
    state: str  # the manager's own words: "activating (auto-restart)", "spawn scheduled"
    pid: int | None  # the main process, None when there is none
    restarts: int | None = None  # systemd's NRestarts
    runs: int | None = None  # launchd's count of launches
    last_exit: str | None = None  # launchd's "last exit code" ("1", "78: EX_CONFIG")
    loaded: bool = True  # False: the manager does not know the unit at all

    def describe(self) -> str:
        """The state in one phrase, e.g. ``activating (auto-restart), 3 restarts``."""
        parts = [self.state]
        if self.pid is not None:
            parts.append(f"pid {self.pid}")
        if self.restarts:
            parts.append(f"{self.restarts} restart{'s' if self.restarts != 1 else ''}")
        if self.runs is not None:
            parts.append(f"{self.runs} run{'s' if self.runs != 1 else ''}")
        if self.last_exit is not None and self.last_exit != "(never exited)":
            parts.append(f"last exit code {self.last_exit}")
        return ", ".join(parts)


def _int(raw: str | None) -> int | None:
    match = re.match(r"-?\d+", raw or "")
    return int(match.group()) if match else None


def parse_systemctl_show(text: str) -> UnitState:
    """``systemctl --user show -p LoadState,ActiveState,SubState,MainPID,NRestarts`` output."""
    props: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep:
            props[key] = value
    active, sub = props.get("ActiveState", ""), props.get("SubState", "")
    condition: Condition = "stopped"
    if active in ("active", "reloading"):
        condition = "running"
    elif active == "activating":
        # auto-restart: the main process exited and systemd waits RestartSec to try again.
        condition = "restarting" if sub == "auto-restart" else "starting"
    pid = _int(props.get("MainPID"))
    return UnitState(
        condition,
        f"{active or 'unknown'} ({sub or 'unknown'})",
        pid if pid else None,  # systemd says MainPID=0 when there is no main process
        restarts=_int(props.get("NRestarts")),
        loaded=props.get("LoadState", "loaded") != "not-found",
    )


def parse_launchctl_print(text: str) -> UnitState:
    """``launchctl print gui/UID/LABEL`` output; only the service's own top-level keys count.

    The description nests blocks (``resource coalition = { ... state = active ... }``, the
    arguments, three environments) whose keys collide with the top-level ones: only lines
    indented by exactly one tab are the service's own.
    """
    top: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("\t") or line.startswith("\t\t"):
            continue
        key, sep, value = line.strip().partition(" = ")
        if sep and key not in top:
            top[key] = value
    state = top.get("state", "unknown")
    pid = _int(top.get("pid"))
    last_exit = top.get("last exit code")
    condition: Condition = "stopped"
    if state == "running" and pid:
        condition = "running"
    elif state == "spawn scheduled":
        # KeepAlive relaunches an exited job after ThrottleInterval: a restart loop, unless
        # it never ran yet.
        exited = last_exit is not None and last_exit != "(never exited)"
        condition = "restarting" if exited else "starting"
    return UnitState(
        condition,
        f"state = {state}",
        pid if pid else None,
        runs=_int(top.get("runs")),
        last_exit=last_exit,
    )


def query_command(platform: svc.Platform) -> svc.Cmd:
    """The read-only command that reports the unit's state."""
    if platform == "linux":
        props = "LoadState,ActiveState,SubState,MainPID,NRestarts"
        return svc.Cmd(("systemctl", "--user", "show", "-p", props, svc.UNIT), may_fail=True)
    return svc.Cmd(("launchctl", "print", f"gui/{os.getuid()}/{svc.LABEL}"), may_fail=True)


def query_unit(platform: svc.Platform, timeout_s: float = 15.0) -> UnitState | str:
    """The unit's state, or one sentence saying why the manager could not tell."""
    cmd = query_command(platform)
    tool = cmd.argv[0]
    if shutil.which(tool) is None:
        return f"{tool} was not found on PATH"
    result = svc.run_cmd(cmd, timeout_s=timeout_s)
    if platform == "darwin" and result.returncode == 113:
        # "Could not find service ... in domain for user gui: UID": the agent is not loaded.
        return UnitState("stopped", "not loaded", None, loaded=False)
    if result.returncode != 0:
        reason = reason_line(result.stdout, result.stderr) or f"exit {result.returncode}"
        return f"'{cmd}' failed: {reason}"
    if platform == "linux":
        return parse_systemctl_show(result.stdout)
    return parse_launchctl_print(result.stdout)


# -- the daemon holding the lock -------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    """The live daemon holding a home's lock, and who keeps it running."""

    pid: int
    supervisor: str  # "systemd", "launchd" or "manual", as ``status`` reports it

    @property
    def ours(self) -> bool:
        """Whether a service manager runs it: then a (re)install restarts or keeps it.

        Which unit runs it is not checked here: doctor compares the unit's main pid.
        """
        return self.supervisor != "manual"

    def who(self) -> str:
        """``started by hand`` or ``run by systemd``, for sentences about it."""
        return "started by hand" if self.supervisor == "manual" else f"run by {self.supervisor}"

    def stop_hint(self) -> str:
        """How to stop it (killing a supervised one would only have it restarted)."""
        if self.supervisor == "manual":
            return f"kill {self.pid}"
        return f"stop the {self.supervisor} job that runs pid {self.pid}"


def lock_holder(home: Home) -> LockHolder | None:
    """The daemon holding ``home``'s lock, classified as ``status`` does; None when none runs."""
    # Imported here: status pulls in the scheduling and state modules, needed only if one runs.
    from bassi_schedd.ops.status import supervisor_of

    try:
        pid = read_holder(home)
    except OSError:
        return None  # unreadable: install names the path when it gets there
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
    except psutil.Error:
        return None  # it exited just now
    return LockHolder(pid, supervisor_of(proc))


def foreign_holder(home: Home) -> LockHolder | None:
    """The daemon holding ``home``'s lock when the service does not run it, else None.

    Such a daemon (typically a ``bassi-schedd run`` in a terminal) makes the service's own
    daemon exit at start, and systemd/launchd then restart it forever.
    """
    holder = lock_holder(home)
    return None if holder is None or holder.ours else holder
