"""The service files (SPEC 9): rendering the templates, reading installed copies back, and the
launchctl/systemctl commands that load and unload them on each platform.

The templates ship as package data (``bassi_schedd/data/``), so an installed package finds them;
``service/`` in the repository holds byte-identical copies for people reading the source (a test
keeps them equal).
"""

from __future__ import annotations

import os
import plistlib
import pwd
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from bassi_schedd.config.paths import service_path
from bassi_schedd.core.errors import UserError

Platform = Literal["linux", "darwin"]
PLATFORM_ENV = "BASSI_SCHEDD_PLATFORM"  # forces the platform (tests; doctor on another box)
LABEL = "com.bassi.schedd"
UNIT = "bassi-schedd.service"
TEMPLATES: dict[Platform, str] = {"linux": UNIT, "darwin": f"{LABEL}.plist"}
EXAMPLE_TASK = "example.toml"
FileState = Literal["new", "changed", "unchanged"]

_PLACEHOLDER = re.compile(r"@(PYTHON|PATH|BASSI_HOME)@")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# systemd refuses to execute a program whose path has these ("contains special characters").
_SYSTEMD_UNSAFE_EXEC = re.compile(r"[\x00-\x1f\x7f\"'\\]")


@dataclass(frozen=True)
class Service:
    """One user service bassi-schedd installs: the daemon, or the dashboard (``install --web``)."""

    label: str  # launchd label; the plist is LABEL.plist
    unit: str  # systemd unit file name
    name: str  # how messages call it

    def template(self, platform: Platform) -> str:
        return self.unit if platform == "linux" else f"{self.label}.plist"


DAEMON = Service(LABEL, UNIT, "bassi-schedd")
WEB = Service(f"{LABEL}.web", "bassi-schedd-web.service", "the dashboard")


@dataclass(frozen=True)
class ServiceValues:
    """What install fills into a template."""

    python: str
    path: str
    bassi_home: str


@dataclass(frozen=True)
class InstalledService:
    """What an installed service file says: its interpreter and its environment."""

    python: str | None
    env: dict[str, str]


@dataclass(frozen=True)
class Cmd:
    """One external command; ``may_fail`` ones are best-effort (their failure is expected)."""

    argv: tuple[str, ...]
    may_fail: bool = False
    retries: int = 0  # extra attempts, 1 s apart (launchd finishes a bootout asynchronously)

    def __str__(self) -> str:
        return " ".join(self.argv)


def detect_platform(forced: str | None = None) -> Platform:
    """``--platform``, then ``BASSI_SCHEDD_PLATFORM``, then the running system."""
    name = forced or os.environ.get(PLATFORM_ENV) or sys.platform
    if name.startswith("linux"):
        return "linux"
    if name == "darwin":
        return "darwin"
    raise UserError(
        f"installing as a service needs Linux (systemd) or macOS (launchd), not {name!r}; "
        "run 'bassi-schedd run' under your own supervisor instead"
    )


def user_home() -> Path:
    """The user's home folder: ``HOME``, else the password database."""
    raw = os.environ.get("HOME") or pwd.getpwuid(os.getuid()).pw_dir
    return Path(raw)


def user_name() -> str:
    """The login name of the current uid (not ``USER``, which a shell may have changed)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return os.environ.get("USER") or str(os.getuid())


def service_file(platform: Platform, home_dir: Path, service: Service = DAEMON) -> Path:
    """Where the unit or agent is installed."""
    if platform == "linux":
        return home_dir / ".config" / "systemd" / "user" / service.unit
    return home_dir / "Library" / "LaunchAgents" / f"{service.label}.plist"


def current_values(bassi_home: Path) -> ServiceValues:
    """The values for this interpreter, this PATH and ``bassi_home``."""
    python = os.path.abspath(sys.executable)
    return ServiceValues(python, service_path(os.environ.get("PATH"), python), str(bassi_home))


def template_text(name: str) -> str:
    """A file from ``bassi_schedd/data`` (a service template or the example task)."""
    return (resources.files("bassi_schedd") / "data" / name).read_text(encoding="utf-8")


def render(platform: Platform, values: ServiceValues, service: Service = DAEMON) -> str:
    """The service file for ``values``; raises UserError for values the format cannot carry."""
    for label, value in (
        ("interpreter path", values.python),
        ("PATH", values.path),
        ("BASSI_HOME", values.bassi_home),
    ):
        if _CONTROL.search(value):
            raise UserError(f"the {label} {value!r} contains control characters; cannot install")
    if platform == "linux":
        return _render_systemd(values, service.template(platform))
    return _render_launchd(values, service.template(platform))


def _render_systemd(values: ServiceValues, template: str) -> str:
    if _SYSTEMD_UNSAFE_EXEC.search(values.python):
        raise UserError(
            f"systemd cannot start an interpreter whose path contains quotes or backslashes "
            f"({values.python}); install bassi-schedd in a folder without them"
        )
    # Every placeholder sits inside "..." in the template: there only \ and " need a backslash,
    # and % must be doubled because systemd expands %-specifiers even inside quotes.
    mapping = {"PYTHON": values.python, "PATH": values.path, "BASSI_HOME": values.bassi_home}
    return _PLACEHOLDER.sub(
        lambda m: _systemd_quoted_body(mapping[m.group(1)]), template_text(template)
    )


def _systemd_quoted_body(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")


def _render_launchd(values: ServiceValues, template_name: str) -> str:
    mapping = {"PYTHON": values.python, "PATH": values.path, "BASSI_HOME": values.bassi_home}
    template = plistlib.loads(template_text(template_name).encode())

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            return _PLACEHOLDER.sub(lambda m: mapping[m.group(1)], node)
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    # plistlib does the XML escaping; sort_keys=False keeps the template's order for readers.
    return plistlib.dumps(fill(template), sort_keys=False).decode()


def parse_installed(platform: Platform, text: str) -> InstalledService:
    """Read an installed unit or plist back (best effort: hand edits are tolerated)."""
    if platform == "darwin":
        try:
            data = plistlib.loads(text.encode())
        except Exception:
            return InstalledService(None, {})
        args = data.get("ProgramArguments") if isinstance(data, dict) else None
        python = args[0] if isinstance(args, list) and args and isinstance(args[0], str) else None
        raw_env = data.get("EnvironmentVariables") if isinstance(data, dict) else None
        env = {str(k): str(v) for k, v in raw_env.items()} if isinstance(raw_env, dict) else {}
        return InstalledService(python, env)
    python = None
    env = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep:
            continue
        if key == "ExecStart":
            words = systemd_words(value.lstrip("@-:+!"))
            python = words[0] if words else None
        elif key == "Environment":
            for word in systemd_words(value):
                name, eq, val = word.partition("=")
                if eq:
                    env[name] = val
    return InstalledService(python, env)


def systemd_words(value: str) -> list[str]:
    """Split a unit-file value into words as systemd does (quotes, C escapes, %%)."""
    words: list[str] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and value[i] in " \t":
            i += 1
        if i >= n:
            break
        word: list[str] = []
        quote = ""
        while i < n and (quote or value[i] not in " \t"):
            ch = value[i]
            if ch == "\\" and i + 1 < n:
                nxt = value[i + 1]
                word.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                i += 2
                continue
            if quote and ch == quote:
                quote = ""
            elif not quote and ch in "\"'":
                quote = ch
            elif ch == "%" and i + 1 < n and value[i + 1] == "%":
                word.append("%")
                i += 1
            else:
                word.append(ch)
            i += 1
        words.append("".join(word))
    return words


# -- loading and unloading -------------------------------------------------------------------


def tool_for(platform: Platform) -> str:
    """The service manager's command-line tool."""
    return "systemctl" if platform == "linux" else "launchctl"


def load_commands(
    platform: Platform,
    state: FileState,
    target: Path,
    loaded: bool | None = None,
    service: Service = DAEMON,
) -> list[Cmd]:
    """Commands that (re)load the service after its file was written (``state``).

    ``loaded`` (macOS, unchanged file only): whether launchd already has the agent.
    """
    if platform == "linux":
        ctl = ("systemctl", "--user")
        if state == "changed":
            # enable --now would leave the old version running: restart it explicitly.
            return [
                Cmd((*ctl, "daemon-reload")),
                Cmd((*ctl, "enable", service.unit)),
                Cmd((*ctl, "restart", service.unit)),
            ]
        # daemon-reload even when unchanged: a previous install may have written the file
        # without being able to reload (no user manager then); both are no-ops otherwise.
        return [Cmd((*ctl, "daemon-reload")), Cmd((*ctl, "enable", "--now", service.unit))]
    domain = f"gui/{os.getuid()}"
    if state == "unchanged" and loaded:
        return []
    # enable before bootstrap: bootstrap refuses a service left disabled by `launchctl disable`.
    cmds = [Cmd(("launchctl", "enable", f"{domain}/{service.label}"))]
    cmds.append(Cmd(("launchctl", "bootstrap", domain, str(target)), retries=3))
    if state != "unchanged":
        # An old copy must go first; bootout fails when nothing is loaded, which is fine.
        cmds.insert(0, Cmd(("launchctl", "bootout", f"{domain}/{service.label}"), may_fail=True))
    return cmds


def loaded_query(platform: Platform, service: Service = DAEMON) -> Cmd | None:
    """The read-only command telling whether the service is loaded (macOS only)."""
    if platform == "darwin":
        return Cmd(("launchctl", "print", f"gui/{os.getuid()}/{service.label}"), may_fail=True)
    return None


def unload_commands(platform: Platform, service: Service = DAEMON) -> tuple[list[Cmd], list[Cmd]]:
    """Commands before and after removing the service file."""
    if platform == "linux":
        return (
            [Cmd(("systemctl", "--user", "disable", "--now", service.unit))],
            [Cmd(("systemctl", "--user", "daemon-reload"))],
        )
    return [Cmd(("launchctl", "bootout", f"gui/{os.getuid()}/{service.label}"), may_fail=True)], []


def run_cmd(cmd: Cmd, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
    """Run one command, output captured; a missing program or a hang is a failed result."""
    try:
        return subprocess.run(
            list(cmd.argv),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(cmd.argv), 127, "", f"{cmd.argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            list(cmd.argv), 124, "", f"no answer within {timeout_s:.0f} s"
        )


def linger_enabled(user: str) -> bool:
    """Whether systemd keeps this user's manager (and so the service) running without a login."""
    if shutil.which("loginctl"):
        out = run_cmd(Cmd(("loginctl", "show-user", user, "-p", "Linger")), timeout_s=15)
        for line in out.stdout.splitlines():
            if line.strip().startswith("Linger="):
                return line.strip() == "Linger=yes"
    # logind answers nothing for a user without sessions; its on-disk flag still tells.
    return Path("/var/lib/systemd/linger", user).exists()
