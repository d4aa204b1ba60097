"""Gathering what ``status`` shows: the daemon process, its last tick, tasks, runs, next run.

Read-only towards the daemon: it reads the PID lock, the state DB and the task files, and asks
psutil about the process. Nothing here fails because the daemon is down or was never started.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psutil

from bassi_schedd import __version__
from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.schedule import next_times
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.store.lock import read_holder
from bassi_schedd.store.state import QueryError, RunRow, TaskSummary, from_db, open_existing, to_db

# A tick older than this while the daemon runs means it is stuck: it ticks every minute, so two
# missed ticks plus slack. `status` and `doctor` both judge by this one number.
STALE_TICK_S = 150.0


@dataclass(frozen=True)
class DaemonInfo:
    """The running daemon process, as far as the OS tells us."""

    pid: int
    started_at: datetime | None
    rss_bytes: int | None
    supervisor: str  # "systemd", "launchd" or "manual"
    version: str | None

    def uptime_s(self, now: datetime) -> float | None:
        return None if self.started_at is None else (now - self.started_at).total_seconds()


@dataclass(frozen=True)
class RunningRun:
    """A run in progress."""

    run: RunRow
    elapsed_s: float | None


@dataclass
class Status:
    """Everything ``status`` reports; ``to_json`` gives the documented keys."""

    home: Home
    now: datetime
    daemon: DaemonInfo | None = None
    last_tick: datetime | None = None
    loaded: int = 0
    paused: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    config_error: str | None = None
    running: list[RunningRun] = field(default_factory=list)
    queued: int = 0
    next_run: tuple[str, datetime] | None = None
    has_state: bool = False
    over_budget: dict[str, str] = field(default_factory=dict)  # task -> which cap is spent

    @property
    def last_tick_age_s(self) -> float | None:
        return None if self.last_tick is None else (self.now - self.last_tick).total_seconds()

    @property
    def stale(self) -> bool:
        """The daemon runs but has not ticked for too long (hung, or its clock is off)."""
        age = self.last_tick_age_s
        return self.daemon is not None and (age is None or age > STALE_TICK_S)

    def to_json(self) -> dict[str, Any]:
        """The ``status --json`` document (keys documented in the README)."""
        d = self.daemon
        return {
            "home": str(self.home.root),
            "version": __version__,
            "now": to_db(self.now),
            "daemon": {
                "running": d is not None,
                "pid": d.pid if d else None,
                "started_at": to_db(d.started_at) if d else None,
                "uptime_s": _round(d.uptime_s(self.now)) if d else None,
                "rss_bytes": d.rss_bytes if d else None,
                "supervisor": d.supervisor if d else None,
                "version": d.version if d else None,
            },
            "last_tick": to_db(self.last_tick),
            "last_tick_age_s": _round(self.last_tick_age_s),
            "stale": self.stale,
            "tasks": {
                "loaded": self.loaded,
                "enabled": self.loaded - len(self.paused),
                "paused": len(self.paused),
                "done": len(self.done),
                "invalid": len(self.invalid),
            },
            "paused": sorted(self.paused),
            "invalid": [{"task": k, "error": v} for k, v in sorted(self.invalid.items())],
            "config_error": self.config_error,
            "running": [
                {
                    "task": r.run.task,
                    "run_id": r.run.run_id,
                    "trigger": r.run.trigger,
                    "scheduled_for": to_db(r.run.scheduled_for),
                    "started_at": to_db(r.run.started_at),
                    "elapsed_s": _round(r.elapsed_s),
                    "pid": r.run.pid,
                }
                for r in self.running
            ],
            "queued": self.queued,
            "over_budget": [{"task": k, "reason": v} for k, v in sorted(self.over_budget.items())],
            "next_run": (
                None
                if self.next_run is None
                else {"task": self.next_run[0], "at": to_db(self.next_run[1])}
            ),
        }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 3)


def gather(home: Home, now: datetime | None = None) -> Status:
    """Collect the status of ``home``'s daemon and tasks."""
    now = now or datetime.now(UTC)
    st = Status(home=home, now=now)
    db = open_existing(home)  # StateDBError: one sentence naming the file
    meta: dict[str, str | None] = {}
    summaries: dict[str, TaskSummary] = {}
    if db is not None:
        st.has_state = True
        try:
            for key in ("last_tick", "daemon_started", "version", "daemon_pid"):
                meta[key] = db.get_meta(key)
            summaries = db.task_summaries()
            for run in db.runs_with_status(RunStatus.RUNNING):
                started = run.started_at
                elapsed_s = None if started is None else (now - started).total_seconds()
                st.running.append(RunningRun(run, elapsed_s))
            st.queued = len(db.runs_with_status(RunStatus.QUEUED))
        except QueryError as e:
            raise UserError(f"cannot read the state database {home.state_db}: {e}") from None
        finally:
            db.close()
    st.last_tick = _parse_time(meta.get("last_tick"))
    pid = read_holder(home)
    if pid is not None:
        st.daemon = daemon_info(pid, meta)
    _gather_tasks(home, st, summaries)
    return st


def _parse_time(text: str | None) -> datetime | None:
    try:
        dt = from_db(text)
    except ValueError:
        return None
    if dt is not None and dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def _gather_tasks(home: Home, st: Status, summaries: dict[str, TaskSummary]) -> None:
    from bassi_schedd.config.loader import TaskLoader
    from bassi_schedd.config.settings import load_config, system_timezone
    from bassi_schedd.core.errors import TaskFileError

    try:
        config = load_config(home)
    except TaskFileError as e:
        st.config_error = str(e)
        config = DaemonConfig(timezone=system_timezone())
    result = TaskLoader(home, config).load()
    st.over_budget = _over_budget(home, result.tasks, config, st.now)
    st.loaded = len(result.tasks)
    st.invalid = {name: str(err) for name, err in result.errors.items()}
    best: tuple[datetime, str] | None = None
    for name, spec in result.tasks.items():
        if not spec.enabled:
            st.paused.append(name)
            continue
        summary = summaries.get(name)
        if summary is not None and summary.done:
            st.done.append(name)
            continue
        try:
            times = next_times(spec.schedule, spec.zone, st.now, 1)
        except ValueError:
            continue  # a schedule the loader accepted but cannot be expanded: nothing due
        if times and (best is None or (times[0], name) < best):
            best = (times[0], name)
    if best is not None:
        st.next_run = (best[1], best[0])


def _over_budget(
    home: Home, tasks: dict[str, TaskSpec], config: DaemonConfig, now: datetime
) -> dict[str, str]:
    from bassi_schedd.store.spend import over_caps

    db = open_existing(home)
    if db is None:
        return over_caps(None, tasks.values(), config, now)  # a cap of 0 is spent already
    try:
        return over_caps(db, tasks.values(), config, now)
    except QueryError:
        return {}  # the rest of the report matters more than this line
    finally:
        db.close()


def daemon_info(pid: int, meta: dict[str, str | None]) -> DaemonInfo:
    """psutil facts about the daemon; fields it may not read (another user, macOS) stay None."""
    started = _parse_time(meta.get("daemon_started"))
    rss: int | None = None
    supervisor = "manual"
    version = meta.get("version") if meta.get("daemon_pid") == str(pid) else None
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            started = datetime.fromtimestamp(proc.create_time(), UTC)
            rss = proc.memory_info().rss
        supervisor = supervisor_of(proc)
    except (psutil.Error, OSError):
        pass
    return DaemonInfo(pid, started, rss, supervisor, version)


def supervisor_of(proc: psutil.Process) -> str:
    """How the daemon is kept alive: "systemd", "launchd" or "manual" (a shell, a test...)."""
    try:
        env = proc.environ()
    except (psutil.Error, OSError):
        env = {}
    try:
        parent = proc.parent()
        parent_name = parent.name() if parent is not None else ""
        ppid = proc.ppid()
    except (psutil.Error, OSError):
        parent_name, ppid = "", 0
    return classify_supervisor(sys.platform, env, parent_name, ppid, _systemd_unit(proc.pid))


def classify_supervisor(
    platform: str, env: dict[str, str], parent_name: str, ppid: int, unit: str | None
) -> str:
    """The supervisor from process facts (pure, so every branch is testable)."""
    if platform == "darwin":
        if parent_name == "launchd" or (ppid == 1 and "XPC_SERVICE_NAME" in env):
            return "launchd"
        return "manual"
    if parent_name == "systemd":
        return "systemd"  # a direct child of the system or a user manager (`systemd --user`)
    # Started through a wrapper by our unit. INVOCATION_ID alone is not enough: shells in a
    # terminal that systemd started inherit it, so the unit must be ours.
    if "INVOCATION_ID" in env and unit is not None and unit.startswith("bassi-schedd"):
        return "systemd"
    return "manual"


def _systemd_unit(pid: int) -> str | None:
    """The ``*.service`` unit whose cgroup holds ``pid`` (Linux), else None."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    for line in text.splitlines():
        for part in reversed(line.rsplit(":", 1)[-1].split("/")):
            if part.endswith(".service"):
                return part
    return None
