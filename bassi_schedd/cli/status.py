"""``status [--json]``: is the daemon running and what is it doing.

Exit status follows ``systemctl status`` / LSB: 0 when the daemon runs, 3 when it does not
(the rest of the report is still printed), 1 when the state cannot be read.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime

from bassi_schedd import __version__
from bassi_schedd.config.paths import Home
from bassi_schedd.core.durations import format_duration_s
from bassi_schedd.core.errors import printable
from bassi_schedd.ops.status import Status, gather

EXIT_NOT_RUNNING = 3
_SUPERVISORS = {
    "systemd": "supervised by systemd",
    "launchd": "supervised by launchd",
    "manual": "started by hand (not supervised)",
}


def main(args: argparse.Namespace, home: Home) -> int:
    """Print the status of the daemon and tasks of ``home``."""
    st = gather(home)
    if args.json:
        print(json.dumps(st.to_json(), indent=2))
    else:
        print(render(st))
    return 0 if st.daemon is not None else EXIT_NOT_RUNNING


def local_time(dt: datetime) -> str:
    """A timestamp in the user's local zone, as people read clocks."""
    return dt.astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _ago(seconds: float) -> str:
    if seconds < 0:
        return f"in {format_duration_s(-seconds)}"
    return f"{format_duration_s(seconds)} ago"


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def render(st: Status) -> str:
    """The human report: one fact per line, labels aligned."""
    out: list[str] = [f"bassi-schedd {__version__}, home {printable(str(st.home.root))}"]

    def line(label: str, text: str) -> None:
        out.append(f"{label + ':':<11} {text}")

    def detail(text: str) -> None:
        out.append(f"{'':<11}   {text}")

    d = st.daemon
    if d is None:
        line(
            "daemon",
            "not running (start it with 'bassi-schedd run', "
            "or keep it running with 'bassi-schedd install')",
        )
    else:
        facts = [f"pid {d.pid}"]
        uptime_s = d.uptime_s(st.now)
        if uptime_s is not None:
            facts.append(f"up {format_duration_s(max(uptime_s, 0.0))}")
        if d.rss_bytes is not None:
            facts.append(f"{_mb(d.rss_bytes)} RSS")
        facts.append(_SUPERVISORS.get(d.supervisor, d.supervisor))
        line("daemon", f"running ({', '.join(facts)})")
        if d.version is not None and d.version != __version__:
            detail(f"the daemon runs version {d.version}; restart it to use {__version__}")
    if st.last_tick is None:
        line("last tick", "never" if st.has_state else "never (no state database yet)")
    else:
        age = st.last_tick_age_s or 0.0
        line("last tick", f"{local_time(st.last_tick)} ({_ago(age)})")
        if st.stale:
            detail("warning: the daemon has not ticked for too long; see 'bassi-schedd logs'")
    enabled = st.loaded - len(st.paused)
    counts = f"{st.loaded} loaded: {enabled} enabled, {len(st.paused)} paused"
    line("tasks", f"{counts}, {len(st.done)} done, {len(st.invalid)} invalid")
    if st.paused:
        detail(f"paused: {', '.join(sorted(st.paused))}")
    for name, error in sorted(st.invalid.items()):
        name, error = printable(name), printable(error)
        # An error keyed by its path already starts with it.
        detail(f"invalid {error}" if error.startswith(name) else f"invalid {name}: {error}")
    if st.config_error:
        detail(f"schedd.toml ignored: {st.config_error}")
    for task, reason in sorted(st.over_budget.items()):
        detail(f"over budget: {task}: {reason}")
    line("running", str(len(st.running)))
    for r in st.running:
        since = local_time(r.run.started_at) if r.run.started_at else "?"
        elapsed = format_duration_s(max(r.elapsed_s, 0.0)) if r.elapsed_s is not None else "?"
        detail(f"{r.run.task}  {r.run.run_id}  {r.run.trigger}  since {since} ({elapsed})")
    if st.running and d is None:
        detail("(no daemon: the next one adopts these runs if alive, else records them lost)")
    line("queued", str(st.queued))
    if st.next_run is None:
        line("next run", "none scheduled")
    else:
        task, at = st.next_run
        line("next run", f"{task} at {local_time(at)} ({_ago((st.now - at).total_seconds())})")
    return "\n".join(out)
