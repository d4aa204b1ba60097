"""``doctor`` checks of what the daemon runs with: the installed service file (interpreter,
BASSI_HOME, PATH, lingering), the claude CLI, credentials and the time zone."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import install as svc
from bassi_schedd.ops.doctor import Check, Context
from bassi_schedd.ops.service_state import Condition, LockHolder, lock_holder, query_unit

CREDENTIAL_VARS = ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")
PATH_TOOLS = ("bassi", "node", "claude")


def check_service(ctx: Context) -> list[Check]:
    """The unit/agent is installed, runs this interpreter on this home, matches the template."""
    if ctx.platform is None:
        return [Check("warn", "service", f"no service support on {sys.platform}", None)]
    path = svc.service_file(ctx.platform, ctx.user_home)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return [Check("warn", "service", f"not installed ({path})", "bassi-schedd install")]
    except (OSError, UnicodeDecodeError) as e:
        return [Check("fail", "service", f"cannot read {path}: {e}", "bassi-schedd install")]
    ctx.service = svc.parse_installed(ctx.platform, text)
    installed = ctx.service
    python = os.path.abspath(sys.executable)
    home = installed.env.get("BASSI_HOME")
    checks: list[Check] = []
    reinstall = "run 'bassi-schedd install' with the Python environment the service should use"
    if installed.python is None:
        checks.append(Check("fail", "service", f"{path} names no program", reinstall))
    elif installed.python != python:
        detail = f"{path} runs {installed.python}, but this bassi-schedd is {python}"
        if not os.access(installed.python, os.X_OK):
            detail = f"{path} runs {installed.python}, which does not exist (any more)"
        checks.append(Check("fail", "service", detail, reinstall))
    elif home != str(ctx.home.root):
        detail = f"{path} uses BASSI_HOME {home}, not {ctx.home.root}"
        fix = f"bassi-schedd --home {home} doctor, or re-run install for {ctx.home.root}"
        checks.append(Check("fail", "service", detail, fix))
    else:
        values = svc.ServiceValues(python, installed.env.get("PATH", ""), str(ctx.home.root))
        try:
            current = svc.render(ctx.platform, values) == text
        except UserError:
            current = False
        if current:
            checks.append(Check("ok", "service", f"installed and current ({path})"))
        else:
            detail = f"{path} differs from this version's template (edited, or an older version)"
            checks.append(Check("warn", "service", detail, "bassi-schedd install"))
    checks.append(check_service_path(installed, ctx.environ))
    if ctx.platform == "linux":
        user = svc.user_name()
        if not svc.linger_enabled(user):
            detail = f"off for {user}: the service stops at logout and starts at the next login"
            checks.append(Check("warn", "lingering", detail, f"loginctl enable-linger {user}"))
        else:
            checks.append(Check("ok", "lingering", f"on for {user}"))
    return checks


def check_service_state(ctx: Context) -> list[Check]:
    """The service manager runs the installed unit/agent, and its main process is the daemon
    holding the lock (not, say, a restart loop behind a daemon started by hand)."""
    if ctx.service is None or ctx.platform is None:
        return []  # not installed: the daemon check says all there is
    name = "service state"
    unit = query_unit(ctx.platform)
    if isinstance(unit, str):
        return [Check("warn", name, f"cannot ask the service manager: {unit}", _reach_fix(ctx))]
    if not unit.loaded:
        manager = "systemd" if ctx.platform == "linux" else "launchd"
        return [Check("fail", name, f"not loaded by {manager}", "bassi-schedd install")]
    detail = unit.describe()
    # A service for another home (reported by the service check) runs another lock's daemon.
    same_home = ctx.service.env.get("BASSI_HOME") == str(ctx.home.root)
    holder = lock_holder(ctx.home) if same_home else None
    if unit.condition == "running" and (not same_home or (holder and holder.pid == unit.pid)):
        return [Check("ok", name, detail)]
    intruder = holder if holder is not None and holder.pid != unit.pid else None
    if unit.condition == "restarting":
        detail += ": its daemon keeps exiting and is restarted"
    if intruder is not None:
        detail += (
            f"; the daemon holding the lock of {ctx.home.root} is pid {intruder.pid} "
            f"({intruder.who()})"
        )
    elif unit.condition == "running":
        detail += f", but no daemon holds the lock of {ctx.home.root}"
    elif unit.condition == "starting":
        return [Check("warn", name, f"{detail}: still starting", "run doctor again in a minute")]
    return [Check("fail", name, detail, _state_fix(ctx, unit.condition, intruder))]


def _state_fix(ctx: Context, condition: Condition, intruder: LockHolder | None) -> str:
    manager = "systemd" if ctx.platform == "linux" else "launchd"
    if ctx.platform == "linux":
        restart = "systemctl --user restart bassi-schedd"
        why = "journalctl --user -u bassi-schedd -n 50"
    else:
        restart = f"launchctl kickstart -k gui/{os.getuid()}/{svc.LABEL}"
        why = f"{ctx.home.logs_dir}/launchd-stderr.log"
    if intruder is None:
        return f"see why in {why}, then {restart}"
    then = f"{manager} then starts its own" if condition == "restarting" else f"then {restart}"
    return f"stop the daemon {intruder.who()} ({intruder.stop_hint()}); {then}"


def _reach_fix(ctx: Context) -> str:
    if ctx.platform == "darwin":
        return "run doctor in your own login session (not over sudo or su)"
    user = svc.user_name()
    return (
        f"a systemd user manager must run for {user}: loginctl enable-linger {user}, log in "
        f"again and check that XDG_RUNTIME_DIR=/run/user/{os.getuid()}"
    )


def check_service_path(installed: svc.InstalledService, environ: dict[str, str]) -> Check:
    """The PATH captured in the service has the folders of bassi/node/claude from this shell."""
    service_dirs = set(installed.env.get("PATH", "").split(os.pathsep))
    found: list[str] = []
    missing: list[str] = []
    for tool in PATH_TOOLS:
        where = shutil.which(tool, path=environ.get("PATH", ""))
        if where is None:
            continue
        folder = os.path.dirname(os.path.abspath(where))
        (found if folder in service_dirs else missing).append(f"{tool} ({folder})")
    if missing:
        detail = f"the service's PATH lacks the folder of {', '.join(missing)}"
        return Check(
            "warn", "service PATH", detail, "re-run 'bassi-schedd install' from this shell"
        )
    detail = f"has {', '.join(found)}" if found else "none of bassi, node, claude is on PATH here"
    return Check("ok", "service PATH", detail)


def bundled_claude() -> Path | None:
    """claude-agent-sdk's bundled CLI, found without importing the SDK (slow, and heavy)."""
    try:
        spec = importlib.util.find_spec("claude_agent_sdk")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / "_bundled" / "claude"
    return path if os.access(path, os.X_OK) else None


def check_claude_cli(ctx: Context, bundled: Path | None) -> Check:
    """The claude CLI the executor uses: the bundled one, else ``claude`` on PATH."""
    if bundled is not None:
        return Check("ok", "claude CLI", f"bundled: {bundled}")
    on_path = shutil.which("claude", path=ctx.environ.get("PATH", ""))
    if on_path:
        return Check("ok", "claude CLI", on_path)
    fix = "pip install claude-agent-sdk (bundles it), or npm install -g @anthropic-ai/claude-code"
    if ctx.agent_tasks:
        return Check("fail", "claude CLI", f"not found; {ctx.agent_tasks} agent tasks need it", fix)
    return Check("warn", "claude CLI", "not found (no enabled agent task needs it yet)", fix)


def check_credentials(ctx: Context) -> Check:
    """Something the claude CLI can authenticate with, where the daemon will see it."""
    names = [n for n in CREDENTIAL_VARS if ctx.environ.get(n)]
    if ctx.service is not None:
        in_service = [n for n in CREDENTIAL_VARS if ctx.service.env.get(n)]
        in_service += _dropin_vars(ctx)
        if in_service:
            return Check("ok", "credentials", f"{in_service[0]} is set for the service")
    elif names:
        return Check("ok", "credentials", f"{names[0]} is set in this environment")
    config_dir = Path(ctx.environ.get("CLAUDE_CONFIG_DIR") or ctx.user_home / ".claude")
    login = config_dir / ".credentials.json"
    if login.is_file():
        return Check("ok", "credentials", f"Claude login found ({login})")
    if ctx.platform == "darwin" and _keychain_has_claude_login():
        return Check("ok", "credentials", "Claude login found in the macOS keychain")
    fix = "run 'claude' once and log in, or create a token with 'claude setup-token'"
    if names:
        detail = f"{names[0]} is set in this shell but not for the service, so runs will not see it"
        if ctx.platform == "linux":
            fix += f"; or add Environment={names[0]}=... with 'systemctl --user edit bassi-schedd'"
        return Check("warn", "credentials", detail, fix)
    detail = f"none found (no {' / '.join(CREDENTIAL_VARS)}, no {login})"
    return Check("warn", "credentials", detail, fix)


def _dropin_vars(ctx: Context) -> list[str]:
    if ctx.platform != "linux":
        return []
    dropins = svc.service_file("linux", ctx.user_home).with_name(f"{svc.UNIT}.d")
    found: list[str] = []
    for conf in sorted(dropins.glob("*.conf")) if dropins.is_dir() else []:
        try:
            text = conf.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        found += [n for n in CREDENTIAL_VARS if f"{n}=" in text]
    return found


def _keychain_has_claude_login() -> bool:
    if shutil.which("security") is None:
        return False
    # Without -w/-g, `security` only looks the item up: no secret is read, no prompt appears.
    cmd = svc.Cmd(("security", "find-generic-password", "-s", "Claude Code-credentials"))
    return svc.run_cmd(cmd, timeout_s=10).returncode == 0


def check_zone(ctx: Context) -> Check:
    """The zone tasks default to is known (configured, or the system's)."""
    from bassi_schedd.config.settings import system_timezone
    from bassi_schedd.config.validate import is_zone

    if ctx.config is not None and ctx.config_ok and _zone_configured(ctx.home):
        return Check("ok", "time zone", f"{ctx.config.timezone} (schedd.toml)")
    fix = 'set timezone = "Area/City" in schedd.toml, or fix TZ'
    tz = ctx.environ.get("TZ", "").strip().lstrip(":")
    if tz and not is_zone(tz):
        detail = f"TZ={tz!r} is not an IANA zone name; using {system_timezone()}"
        return Check("warn", "time zone", detail, fix)
    zone = system_timezone()
    if zone == "UTC" and not tz and not _system_says_utc():
        return Check("warn", "time zone", "cannot tell the system zone; using UTC", fix)
    return Check("ok", "time zone", f"{zone} (system)")


def _zone_configured(home: Home) -> bool:
    from bassi_schedd.config.tomlfile import read_checked_toml

    try:
        return "timezone" in read_checked_toml(home.config_file)[0]
    except UserError:
        return False


def _system_says_utc(localtime: str = "/etc/localtime", tz_file: str = "/etc/timezone") -> bool:
    """Whether the system really is set to UTC (rather than UTC being the fallback)."""
    utc = {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "Universal", "Etc/Universal", "Zulu", "Etc/Zulu"}
    try:
        if os.readlink(localtime).rsplit("zoneinfo/", 1)[-1] in utc:
            return True
    except OSError:
        pass
    try:
        return Path(tz_file).read_text(encoding="utf-8").strip() in utc
    except (OSError, UnicodeDecodeError):
        return False
