"""Delivering one notification: a program under a hard time limit, an HTTP ping, a desktop banner.

Every function here blocks (it runs on a Notifier worker thread, never on the scheduler's) and
returns an :class:`Outcome` instead of raising.

Notify programs run behind a one-line ``/bin/sh`` wrapper that writes the program's exit status
to a private file. The daemon is a child subreaper and reaps children it does not track, so it
may collect our child's exit status before ``Popen.wait`` does (Python then reports 0); the file
is the reliable source.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psutil

from bassi_schedd import __version__

_WRAPPER = 'f=$1; shift; "$@"; echo "$?" > "$f"'
KILL_GRACE_S = 1.0
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
            kill_tree(pid, grace_s=0.0)
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
        wrapped = ["/bin/sh", "-c", _WRAPPER, "bassi-notify", str(status_file), program, *argv[1:]]
        try:
            with out_file.open("wb") as out, children.starting():
                proc = subprocess.Popen(
                    wrapped,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd if cwd.is_dir() else env.get("HOME", "/"),
                    start_new_session=True,
                    umask=0o077,
                    close_fds=True,
                )
                children.add(proc.pid)
        except OSError as e:
            return Outcome(False, f"cannot start {program}: {e.strerror or e}")
        timed_out = False
        try:
            proc.communicate(stdin_data, timeout=limit_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            kill_tree(proc.pid, KILL_GRACE_S)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5.0)
        finally:
            children.discard(proc.pid)
        output = _tail_text(out_file, OUTPUT_LOG_CHARS)
        if timed_out:
            return Outcome(False, f"killed after {limit_s:g}s without finishing", output)
        if children.abandoned:
            return Outcome(False, "killed: the daemon stopped", output)
        rc = _read_status(status_file)
        if rc is None:
            return Outcome(False, "ended without an exit status (killed by a signal?)", output)
        if rc != 0:
            return Outcome(False, f"exited with status {rc}", output)
        return Outcome(True, "exit status 0", output)


def kill_tree(pid: int, grace_s: float) -> None:
    """SIGTERM the session ``pid`` leads and every descendant; SIGKILL survivors after grace."""
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        procs = []
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if sig == signal.SIGKILL and grace_s > 0:
            _, procs = psutil.wait_procs(procs, timeout=grace_s)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)


def _read_status(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _tail_text(path: Path, max_chars: int) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(f.tell() - max_chars * 4, 0))
            data = f.read()
    except OSError:
        return ""
    return data.decode("utf-8", errors="replace")[-max_chars:].strip()


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
