"""``doctor`` checks of the package, BASSI_HOME, the task files and the running daemon; each is
an ``ok``/``warn``/``fail`` with a fix hint. The service file and the run environment are checked
in :mod:`bassi_schedd.ops.doctor_env`.

Checks only read: they never create the home, the state DB or a service file.
"""

from __future__ import annotations

import importlib.metadata
import os
import stat
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.records import from_db
from bassi_schedd.core.spec import DaemonConfig, TaskSpec
from bassi_schedd.ops import install as svc
from bassi_schedd.ops.status import STALE_TICK_S

Status = Literal["ok", "warn", "fail"]
PACKAGES = (("bassi-schedd", "pip install -e ."), ("croniter", "pip install 'croniter>=7,<8'"))
SDK = ("claude-agent-sdk", "pip install claude-agent-sdk")


@dataclass(frozen=True)
class Check:
    """One line of the report (plus optional detail lines and a fix)."""

    status: Status
    name: str
    detail: str
    fix: str | None = None
    more: tuple[str, ...] = ()


@dataclass
class Context:
    """What the checks look at; tests build one to point them elsewhere."""

    home: Home
    user_home: Path
    environ: dict[str, str]
    now: datetime
    platform: svc.Platform | None
    service: svc.InstalledService | None = None
    agent_tasks: int = 0
    config: DaemonConfig | None = None
    config_ok: bool = True
    tasks: list[TaskSpec] = field(default_factory=list)


def check_python() -> Check:
    """The interpreter: version and path (the one the service must use)."""
    version = ".".join(str(v) for v in sys.version_info[:3])
    return Check("ok", "python", f"{version} ({sys.executable})")


def check_packages() -> list[Check]:
    """bassi-schedd and the dependencies that matter at run time."""
    out = []
    for name, fix in (*PACKAGES, SDK):
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(Check("fail", f"package {name}", "not installed", fix))
            continue
        if name == "croniter" and not version.startswith("7."):
            out.append(Check("warn", f"package {name}", f"{version}; tested with 7.x", fix))
        else:
            out.append(Check("ok", f"package {name}", version))
    return out


def check_home(ctx: Context) -> Check:
    """BASSI_HOME and its folders exist, belong to us and are private (0700)."""
    root = ctx.home.root
    try:
        st = root.stat()
    except FileNotFoundError:
        return Check("fail", "BASSI_HOME", f"{root} does not exist", "bassi-schedd install")
    if not stat.S_ISDIR(st.st_mode):
        return Check("fail", "BASSI_HOME", f"{root} is not a folder", f"move {root} away")
    problems: list[str] = []
    fixes: list[str] = []
    h = ctx.home
    for d in (h.root, h.tasks_dir, h.schedd_dir, h.logs_dir, h.runs_dir):
        try:
            dst = d.stat()
        except FileNotFoundError:
            continue
        mode = stat.S_IMODE(dst.st_mode)
        if dst.st_uid != os.getuid():
            problems.append(f"{d} is owned by uid {dst.st_uid}, not {os.getuid()}")
            fixes.append(f"chown -R {svc.user_name()} {root}")
        elif mode & 0o077:
            problems.append(f"{d} has mode {mode:04o}, not 0700")
            fixes.append(f"chmod 700 {d}")
    if problems:
        return Check("fail", "BASSI_HOME", "; ".join(problems), " && ".join(dict.fromkeys(fixes)))
    return Check("ok", "BASSI_HOME", f"{root} (0700, yours)")


def check_config(ctx: Context) -> Check:
    """schedd.toml parses (a missing file means defaults)."""
    from bassi_schedd.config.settings import load_config, system_timezone

    try:
        ctx.config = load_config(ctx.home)
    except UserError as e:
        ctx.config, ctx.config_ok = DaemonConfig(timezone=system_timezone()), False
        return Check("fail", "schedd.toml", str(e), f"fix {ctx.home.config_file}")
    what = "valid" if ctx.home.config_file.exists() else "absent, defaults apply"
    return Check("ok", "schedd.toml", what)


def check_tasks(ctx: Context) -> Check:
    """Every task file loads."""
    from bassi_schedd.config.loader import TaskLoader

    assert ctx.config is not None
    result = TaskLoader(ctx.home, ctx.config).load()
    ctx.tasks = list(result.tasks.values())
    ctx.agent_tasks = sum(1 for t in result.tasks.values() if t.enabled and t.is_agent)
    total = len(result.tasks) + len(result.errors)
    if result.errors:
        more = tuple(str(e) for e in result.errors.values())
        detail = f"{len(result.errors)} of {total} task files invalid"
        return Check("fail", "tasks", detail, "bassi-schedd check", more)
    if not result.tasks:
        fix = "bassi-schedd new NAME --schedule 'daily 09:00' --prompt '...'"
        return Check("warn", "tasks", f"no task files in {ctx.home.tasks_dir}", fix)
    enabled = sum(1 for t in result.tasks.values() if t.enabled)
    return Check("ok", "tasks", f"{total} valid ({enabled} enabled)")


def check_notify(ctx: Context) -> Check:
    """Notify programs exist and are executable (on the PATH the service will have)."""
    from bassi_schedd.notify.record import notify_problems

    assert ctx.config is not None
    problems = notify_problems(ctx.tasks, ctx.config, ctx.environ.get("PATH"))
    if problems:
        fix = "fix the notify.command path or make it executable (chmod +x)"
        return Check("warn", "notify", problems[0], fix, tuple(problems[1:]))
    return Check("ok", "notify", "every notify program found")


def check_daemon(ctx: Context) -> list[Check]:
    """A daemon holds the lock, and it ticked recently."""
    from bassi_schedd.store.lock import read_holder

    pid = read_holder(ctx.home)
    if pid is None:
        return [
            Check("fail", "daemon", "not running (nothing holds the PID lock)", _start_fix(ctx))
        ]
    checks = [Check("ok", "daemon", f"running, pid {pid}")]
    checks.append(check_last_tick(ctx))
    return checks


def check_last_tick(ctx: Context) -> Check:
    """The running daemon's last tick is at most a few minutes old."""
    from bassi_schedd.store.state import open_existing

    try:
        db = open_existing(ctx.home)
        if db is None:
            return Check("fail", "last tick", "no state database yet", _restart_fix(ctx))
        try:
            raw = db.get_meta("last_tick")
        finally:
            db.close()
    except Exception as e:  # a locked or damaged DB is a finding, not a crash
        return Check("fail", "last tick", f"cannot read {ctx.home.state_db}: {e}", None)
    if raw is None:
        return Check("fail", "last tick", "none recorded", _restart_fix(ctx))
    try:
        last = from_db(raw)
    except ValueError:
        last = None
    if last is None:
        return Check("fail", "last tick", f"unreadable value {raw!r}", _restart_fix(ctx))
    if last.tzinfo is None:
        last = last.replace(tzinfo=UTC)
    age_s = (ctx.now - last).total_seconds()
    if age_s > STALE_TICK_S:
        detail = f"{_ago(age_s)} ago ({raw}); the daemon looks stuck"
        return Check("fail", "last tick", detail, _restart_fix(ctx))
    if age_s < -STALE_TICK_S:
        return Check("warn", "last tick", f"in the future ({raw}); did the clock change?", None)
    return Check("ok", "last tick", f"{_ago(max(age_s, 0.0))} ago")


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _start_fix(ctx: Context) -> str:
    if ctx.service is None:
        return "bassi-schedd install (or run 'bassi-schedd run' in a terminal)"
    if ctx.platform == "linux":
        return (
            "systemctl --user start bassi-schedd; "
            "why it stopped: journalctl --user -u bassi-schedd -n 50"
        )
    return (
        f"launchctl kickstart gui/{os.getuid()}/{svc.LABEL}; "
        f"why it stopped: {ctx.home.logs_dir}/launchd-stderr.log"
    )


def _restart_fix(ctx: Context) -> str:
    if ctx.service is None:
        return "stop and start 'bassi-schedd run'"
    if ctx.platform == "linux":
        return "systemctl --user restart bassi-schedd"
    return f"launchctl kickstart -k gui/{os.getuid()}/{svc.LABEL}"
