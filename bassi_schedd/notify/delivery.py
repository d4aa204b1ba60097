"""Delivering one notification: a program under a hard time limit, an HTTP ping, a desktop banner.

Every function here blocks (it runs on a Notifier worker thread, never on the scheduler's) and
returns an :class:`Outcome` instead of raising.

Notify programs are started with ``runner.spawn`` behind its exit-code wrapper, the file in a
private temporary folder. The daemon is a child subreaper and reaps children it does not track,
so it may collect our child's exit status before ``Popen.wait`` does (Python then reports 0);
the file is the reliable source.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from bassi_schedd import __version__
from bassi_schedd.runner.kill import stop_tree, tree_of
from bassi_schedd.runner.outputcap import tail_text
from bassi_schedd.runner.spawn import ChildSpec, read_exit_status, start_child

# Shorter than a run's grace: a notify program's whole delivery is bounded (``run --once``
# waits 35 s for a program limited to 30 s).
PROGRAM_KILL_GRACE_S = 1.0
OUTPUT_LOG_CHARS = 300


@dataclass(frozen=True)
class Outcome:
    """How a delivery went; ``detail`` is short enough for one log line."""

    ok: bool
    detail: str
    output: str = ""


class Children:
    """Notify programs still running, so that closing the notifier can kill their groups."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # Held from fork to registration: until a program is registered (and has exec'd, so its
        # environment shows BASSI_EVENT) the daemon would take it for an orphan and sweep it.
        self._starting = threading.Lock()
        self._pids: set[int] = set()
        self.abandoned = False

    @contextlib.contextmanager
    def held(self) -> Iterator[set[int]]:
        """The running programs' pids, with no new program starting until the block ends."""
        with self._starting:
            yield self.pids()

    def starting(self) -> threading.Lock:
        """Hold while starting and registering a program (see ``held``)."""
        return self._starting

    def add(self, pid: int) -> None:
        with self._lock:
            self._pids.add(pid)

    def discard(self, pid: int) -> None:
        with self._lock:
            self._pids.discard(pid)

    def pids(self) -> set[int]:
        """The notify programs running now."""
        with self._lock:
            return set(self._pids)

    def kill_all(self) -> int:
        """SIGKILL every running notify program's whole tree; returns how many there were."""
        with self._lock:
            self.abandoned = True
            pids = list(self._pids)
        for pid in pids:
            stop_tree(pid, tree_of(pid), grace_s=0.0)
        return len(pids)


def resolve_program(program: str, search_path: str) -> str | None:
    """The path ``program`` names: itself when it contains a slash, else found on the PATH."""
    program = os.path.expanduser(program)
    if "/" in program:
        return program
    return shutil.which(program, path=search_path)


def program_problem(program: str, search_path: str) -> str | None:
    """Why ``program`` cannot be started (not found, a folder, not executable), or None."""
    path = resolve_program(program, search_path)
    if path is None:
        return f"{program!r} is not on the PATH"
    if not os.path.exists(path):
        return f"{path} does not exist"
    if os.path.isdir(path):
        return f"{path} is a folder, not a program"
    if not os.access(path, os.X_OK):
        return f"{path} is not executable"
    return None


def run_program(
    argv: list[str],
    stdin_data: bytes,
    env: dict[str, str],
    cwd: Path,
    limit_s: float,
    children: Children,
) -> Outcome:
    """Run ``argv`` in its own session with ``stdin_data`` on stdin; kill it after ``limit_s``."""
    search_path = env.get("PATH", os.defpath)
    problem = program_problem(argv[0], search_path)
    if problem is not None:
        return Outcome(False, f"cannot start the notify program: {problem}")
    program = resolve_program(argv[0], search_path) or argv[0]
    with tempfile.TemporaryDirectory(prefix="bassi-notify-") as tmp:
        status_file, out_file = Path(tmp) / "status", Path(tmp) / "output"
        child = ChildSpec(
            (program, *argv[1:]),
            env,
            cwd if cwd.is_dir() else env.get("HOME", "/"),
            output=out_file,
            stdin_pipe=True,
            exit_code_file=status_file,
            name="bassi-notify",
        )
        try:
            with children.starting():
                proc = start_child(child)
                children.add(proc.pid)
        except OSError as e:
            return Outcome(False, f"cannot start {program}: {e.strerror or e}")
        timed_out = False
        try:
            proc.communicate(stdin_data, timeout=limit_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            stop_tree(proc.pid, tree_of(proc.pid), PROGRAM_KILL_GRACE_S, reap=proc.poll)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
        finally:
            children.discard(proc.pid)
        output = tail_text(out_file, OUTPUT_LOG_CHARS).strip()
        if timed_out:
            return Outcome(False, f"killed after {limit_s:g}s without finishing", output)
        if children.abandoned:
            return Outcome(False, "killed: the daemon stopped", output)
        rc = read_exit_status(status_file)
        if rc is None:
            return Outcome(False, "ended without an exit status (killed by a signal?)", output)
        if rc != 0:
            return Outcome(False, f"exited with status {rc}", output)
        return Outcome(True, "exit status 0", output)


# -- HTTP pings ---------------------------------------------------------------------------------


def ping_url(base: str, suffix: str) -> str:
    """``base`` with ``/suffix`` appended to its path (before any query string)."""
    if not suffix:
        return base
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"{parts.path.rstrip('/')}/{suffix}"))


def http_ping(
    url: str, timeout_s: float, tries: int, backoff_s: float, abort: threading.Event
) -> Outcome:
    """GET ``url``; retry network errors and 5xx up to ``tries`` times with doubling pauses."""
    # Imported here: urllib.request pulls in ssl and http.client, several MB the daemon only
    # needs once a health check is configured.
    import http.client
    import urllib.error
    import urllib.request

    if urlsplit(url).scheme not in ("http", "https"):
        return Outcome(False, "not an http:// or https:// URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, headers={"User-Agent": f"bassi-schedd/{__version__}"}, method="GET"
    )
    reason = "not tried"
    for attempt in range(1, tries + 1):
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:  # noqa: S310
                resp.read(4096)
                return Outcome(True, f"HTTP {resp.status} after {attempt} tries")
        except urllib.error.HTTPError as e:
            e.close()  # it holds the response's socket
            reason = f"HTTP {e.code}"
            if 400 <= e.code < 500:
                return Outcome(False, f"{reason} (not retried)")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = _net_reason(e)
        if attempt < tries and abort.wait(backoff_s * 2 ** (attempt - 1)):
            return Outcome(False, f"{reason}; the daemon stopped before a retry")
    return Outcome(False, f"{reason} ({tries} tries)")


def _net_reason(e: Exception) -> str:
    import http.client
    import urllib.error

    inner = e.reason if isinstance(e, urllib.error.URLError) else e
    if isinstance(inner, TimeoutError):
        return "no answer within the timeout"
    if isinstance(inner, http.client.InvalidURL):  # its message quotes the URL, secret path too
        return "the URL was refused as invalid"
    return str(inner) or type(inner).__name__


def redact_url(url: str) -> str:
    """A ping URL for the log: scheme and host only (the path, or a user:password@, is secret)."""
    from bassi_schedd.config.validate import url_for_message

    return url_for_message(url)


# -- desktop ------------------------------------------------------------------------------------


def desktop_argv(title: str, body: str, urgent: bool, search_path: str) -> list[str] | None:
    """The command that shows a desktop notification here, or None when there is none."""
    if sys.platform == "darwin":
        osascript = shutil.which("osascript", path=search_path)
        if osascript:
            # Text travels as arguments, never inside the script: no AppleScript quoting issues.
            script = "display notification (item 2 of argv) with title (item 1 of argv)"
            return [osascript, "-e", "on run argv", "-e", script, "-e", "end run", title, body]
    notify_send = shutil.which("notify-send", path=search_path)
    if notify_send:
        urgency = "critical" if urgent else "normal"
        return [notify_send, "--app-name=bassi-schedd", f"--urgency={urgency}", title, body]
    return None


def elapsed_s(start_mono: float) -> float:
    """Seconds since ``start_mono`` (monotonic), rounded for the log."""
    return round(time.monotonic() - start_mono, 3)
