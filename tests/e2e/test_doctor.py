"""doctor through the real CLI: a healthy installation, then each problem it reports."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import BIN_DIR, CliResult, DaemonProc
from support.service_fakes import FAKE, SHOW_AUTO_RESTART, launchctl_print, show_active

from bassi_schedd.config.paths import Home
from bassi_schedd.ops import doctor, doctor_env
from bassi_schedd.store.lock import PidLock
from bassi_schedd.store.state import StateDB

COMMAND_TASK = 'schedule = "@daily"\ncommand = ["/bin/true"]\n'
AGENT_TASK = 'schedule = "@daily"\nprompt = "hello"\n'


@dataclass
class Setup:
    home: Home
    user_home: Path
    fake_bin: Path
    env: dict[str, str]
    cli: Callable[..., CliResult]

    def run(self, *args: str, **extra: str) -> CliResult:
        return self.cli(*args, env={**self.env, **extra})

    def doctor(self, **extra: str) -> CliResult:
        return self.run("doctor", **extra)

    @property
    def unit(self) -> Path:
        return self.user_home / ".config/systemd/user/bassi-schedd.service"


@pytest.fixture
def setup(
    tmp_path: Path,
    home: Home,
    cli: Callable[..., CliResult],
    write_task: Callable[[str, str], Path],
) -> Setup:
    """A user with a Claude login, fake service tools, a valid task and the unit installed."""
    user_home = tmp_path / "user"
    (user_home / ".claude").mkdir(parents=True)
    (user_home / ".claude/.credentials.json").write_text("{}")
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    for tool in ("systemctl", "loginctl", "launchctl"):
        (fake_bin / tool).write_text(FAKE)
        (fake_bin / tool).chmod(0o755)
    env = {
        "HOME": str(user_home),
        "PATH": f"{fake_bin}:{BIN_DIR}:/usr/bin:/bin",
        "BASSI_SCHEDD_PLATFORM": "linux",
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "ANTHROPIC_API_KEY": "",
        "CLAUDE_CODE_OAUTH_TOKEN": "",
        "CLAUDE_CONFIG_DIR": "",
        "TZ": "Europe/Berlin",
    }
    write_task("backup", COMMAND_TASK)
    s = Setup(home, user_home, fake_bin, env, cli)
    r = s.run("install", "--no-start")
    assert r.returncode == 0, r.stderr
    return s


@pytest.fixture
def held_lock(home: Home) -> Iterator[PidLock]:
    """This test process poses as a running daemon (holds the PID lock)."""
    lock = PidLock(home)
    lock.acquire()
    yield lock
    lock.release()


def set_last_tick(home: Home, when: datetime | None) -> None:
    db = StateDB.open(home.state_db)
    try:
        if when is not None:
            db.set_meta({"last_tick": when.astimezone(UTC).isoformat()})
    finally:
        db.close()


def line(r: CliResult, name: str) -> str:
    """The verdict line of check ``name``."""
    for text in r.stdout.splitlines():
        if text[:4].strip() in ("ok", "warn", "fail") and text[6:].startswith(f"{name}:"):
            return text
    raise AssertionError(f"no {name!r} line in:\n{r.stdout}")


def fix_after(r: CliResult, name: str) -> str:
    """The fix line that follows check ``name``."""
    lines = r.stdout.splitlines()
    i = lines.index(line(r, name))
    for text in lines[i + 1 :]:
        if not text.startswith(" "):
            break
        if text.strip().startswith("fix: "):
            return text.strip()[5:]
    raise AssertionError(f"no fix after {name!r} in:\n{r.stdout}")


# -- healthy ---------------------------------------------------------------------------------


def test_healthy_installation(setup: Setup, daemon: Callable[..., DaemonProc]) -> None:
    d = daemon()
    d.wait_ready()
    r = setup.doctor(FAKE_SHOW=show_active(d.pid))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    verdicts = [x for x in lines if not x.startswith(" ")]
    assert all(x.startswith("ok    ") for x in verdicts), r.stdout
    assert line(r, "python") == f"ok    python: {sys.version.split()[0]} ({sys.executable})"
    for name in ("package bassi-schedd", "package croniter", "package claude-agent-sdk"):
        assert line(r, name)
    assert line(r, "tasks") == "ok    tasks: 1 valid (1 enabled)"
    assert line(r, "service") == f"ok    service: installed and current ({setup.unit})"
    assert line(r, "daemon") == f"ok    daemon: running, pid {d.pid}"
    assert line(r, "last tick").startswith("ok    last tick: ")
    assert line(r, "service state") == f"ok    service state: active (running), pid {d.pid}"
    assert line(r, "lingering").startswith("ok    lingering: on for ")
    assert "claude_agent_sdk/_bundled/claude" in line(r, "claude CLI")
    assert line(r, "credentials").startswith("ok    credentials: Claude login found")
    assert line(r, "time zone") == "ok    time zone: Europe/Berlin (system)"
    assert r.stderr == ""


# -- failures --------------------------------------------------------------------------------


def test_bad_task_file(setup: Setup, write_task: Callable[[str, str], Path]) -> None:
    path = write_task("broken", 'schedule = "61 * * * *"\nprompt = "x"\n')
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "tasks") == "fail  tasks: 1 of 2 task files invalid"
    assert any(str(path) in x and "schedule" in x for x in r.stdout.splitlines())
    assert fix_after(r, "tasks") == "bassi-schedd check"


def test_unreachable_notify_program(setup: Setup, write_task: Callable[[str, str], Path]) -> None:
    assert line(setup.doctor(), "notify") == "ok    notify: every notify program found"
    path = write_task("pinged", COMMAND_TASK + 'notify = { command = ["/no/such/notify.sh"] }\n')
    r = setup.doctor()
    assert line(r, "notify").startswith("warn  notify: ")
    assert str(path) in line(r, "notify") and "/no/such/notify.sh" in line(r, "notify")
    assert "chmod +x" in (fix_after(r, "notify") or "")


def test_wrong_permissions(setup: Setup) -> None:
    setup.home.root.chmod(0o755)
    setup.home.tasks_dir.chmod(0o750)
    r = setup.doctor()
    assert r.returncode == 1
    root, tasks = setup.home.root, setup.home.tasks_dir
    assert line(r, "BASSI_HOME") == (
        f"fail  BASSI_HOME: {root} has mode 0755, not 0700; {tasks} has mode 0750, not 0700"
    )
    assert fix_after(r, "BASSI_HOME") == f"chmod 700 {root} && chmod 700 {tasks}"


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to give a folder to another user")
def test_folder_owned_by_someone_else(setup: Setup) -> None:
    os.chown(setup.home.logs_dir, 54321, -1)
    r = setup.doctor()
    assert r.returncode == 1
    assert f"{setup.home.logs_dir} is owned by uid 54321" in line(r, "BASSI_HOME")
    assert fix_after(r, "BASSI_HOME").startswith("chown -R ")


def test_missing_home_is_reported_not_created(setup: Setup, tmp_path: Path) -> None:
    nowhere = tmp_path / "nowhere"
    r = setup.doctor(BASSI_HOME=str(nowhere))
    assert r.returncode == 1
    assert line(r, "BASSI_HOME") == f"fail  BASSI_HOME: {nowhere} does not exist"
    assert fix_after(r, "BASSI_HOME") == "bassi-schedd install"
    assert not nowhere.exists()


def test_bad_schedd_toml(setup: Setup) -> None:
    setup.home.config_file.write_text("max_concurrent = 0\n")
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "schedd.toml").startswith("fail  schedd.toml: ")
    assert "max_concurrent" in line(r, "schedd.toml")


def test_service_with_another_interpreter(setup: Setup, tmp_path: Path) -> None:
    other = tmp_path / "other-python"
    other.symlink_to(sys.executable)
    text = setup.unit.read_text()
    setup.unit.write_text(text.replace(f'"{sys.executable}"', f'"{other}"'))
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "service") == (
        f"fail  service: {setup.unit} runs {other}, but this bassi-schedd is {sys.executable}"
    )
    assert "bassi-schedd install" in fix_after(r, "service")
    other.unlink()  # a deleted virtualenv
    r = setup.doctor()
    assert f"runs {other}, which does not exist (any more)" in line(r, "service")


def test_service_for_another_home(setup: Setup, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    r = setup.run("install", "--no-start", BASSI_HOME=str(elsewhere))
    assert r.returncode == 0
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "service") == (
        f"fail  service: {setup.unit} uses BASSI_HOME {elsewhere}, not {setup.home.root}"
    )


def test_edited_service_file_is_a_warning(setup: Setup) -> None:
    setup.unit.write_text(setup.unit.read_text().replace("RestartSec=10s", "RestartSec=1s"))
    r = setup.doctor()
    assert line(r, "service").startswith("warn  service: ")
    assert "differs from this version's template" in line(r, "service")
    assert fix_after(r, "service") == "bassi-schedd install"


def test_not_installed_is_a_warning(setup: Setup) -> None:
    setup.unit.unlink()
    r = setup.doctor()
    assert line(r, "service") == f"warn  service: not installed ({setup.unit})"
    assert fix_after(r, "daemon") == (
        "bassi-schedd install (or run 'bassi-schedd run' in a terminal)"
    )
    assert "service state" not in r.stdout  # nothing to ask the service manager about
    assert "systemctl --user show" not in (setup.user_home.parent / "calls.log").read_text()


def test_no_daemon(setup: Setup) -> None:
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "daemon") == "fail  daemon: not running (nothing holds the PID lock)"
    assert fix_after(r, "daemon").startswith("systemctl --user start bassi-schedd; ")
    assert "last tick" not in r.stdout
    assert line(r, "service state") == "fail  service state: inactive (dead)"
    assert fix_after(r, "service state") == (
        "see why in journalctl --user -u bassi-schedd -n 50, then "
        "systemctl --user restart bassi-schedd"
    )


def test_unit_restarting_behind_a_daemon_started_by_hand(
    setup: Setup, daemon: Callable[..., DaemonProc]
) -> None:
    # What a real systemd 252 showed: the unit's daemon exits at start (the lock is taken) and
    # systemd restarts it every RestartSec, while the daemon from a terminal runs on.
    d = daemon()
    d.wait_ready()
    r = setup.doctor(FAKE_SHOW=SHOW_AUTO_RESTART)
    assert r.returncode == 1, r.stdout
    assert line(r, "service") == f"ok    service: installed and current ({setup.unit})"
    assert line(r, "daemon") == f"ok    daemon: running, pid {d.pid}"
    assert line(r, "service state") == (
        "fail  service state: activating (auto-restart): its daemon keeps exiting and is "
        f"restarted; the daemon holding the lock of {setup.home.root} is pid {d.pid} "
        "(started by hand)"
    )
    assert fix_after(r, "service state") == (
        f"stop the daemon started by hand (kill {d.pid}); systemd then starts its own"
    )


def test_unit_main_pid_is_not_the_lock_holder(setup: Setup, held_lock: PidLock) -> None:
    r = setup.doctor(FAKE_SHOW=show_active(4242, restarts=3))
    assert r.returncode == 1
    assert line(r, "service state") == (
        "fail  service state: active (running), pid 4242, 3 restarts; the daemon holding the "
        f"lock of {setup.home.root} is pid {os.getpid()} (started by hand)"
    )
    assert fix_after(r, "service state") == (
        f"stop the daemon started by hand (kill {os.getpid()}); "
        "then systemctl --user restart bassi-schedd"
    )


def test_unit_active_but_nothing_holds_the_lock(setup: Setup) -> None:
    r = setup.doctor(FAKE_SHOW=show_active(4242))
    assert r.returncode == 1
    assert line(r, "service state") == (
        f"fail  service state: active (running), pid 4242, but no daemon holds the lock of "
        f"{setup.home.root}"
    )


def test_unit_state_cannot_be_asked(setup: Setup) -> None:
    r = setup.doctor(
        FAKE_FAIL="--user show", FAKE_STDERR="Failed to connect to bus: No medium found"
    )
    assert line(r, "service state") == (
        "warn  service state: cannot ask the service manager: 'systemctl --user show -p "
        "LoadState,ActiveState,SubState,MainPID,NRestarts bassi-schedd.service' failed: "
        "Failed to connect to bus: No medium found"
    )
    assert f"loginctl enable-linger {doctor.svc.user_name()}" in fix_after(r, "service state")
    r = setup.doctor(FAKE_SHOW="MainPID=0\nLoadState=not-found\nActiveState=inactive")
    assert line(r, "service state") == "fail  service state: not loaded by systemd"
    assert fix_after(r, "service state") == "bassi-schedd install"


def test_stale_last_tick(setup: Setup, held_lock: PidLock) -> None:
    set_last_tick(setup.home, datetime.now(UTC) - timedelta(minutes=10))
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "daemon") == f"ok    daemon: running, pid {os.getpid()}"
    tick = line(r, "last tick")
    assert tick.startswith("fail  last tick: 10 min ago (") and "looks stuck" in tick
    assert fix_after(r, "last tick") == "systemctl --user restart bassi-schedd"


def test_status_and_doctor_call_the_same_tick_stale(setup: Setup, held_lock: PidLock) -> None:
    """One threshold: a tick 160 s old (between the old 150 s and 180 s limits) is stale for both,
    and a 140 s old one for neither."""
    for age_s, stale in ((160, True), (140, False)):
        set_last_tick(setup.home, datetime.now(UTC) - timedelta(seconds=age_s))
        status = json.loads(setup.run("status", "--json").stdout)
        assert status["stale"] is stale
        assert line(setup.doctor(), "last tick").startswith("fail" if stale else "ok")


def test_no_tick_recorded(setup: Setup, held_lock: PidLock) -> None:
    r = setup.doctor()
    assert line(r, "last tick") == "fail  last tick: no state database yet"
    set_last_tick(setup.home, None)
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "last tick") == "fail  last tick: none recorded"


def test_tick_in_the_future(setup: Setup, held_lock: PidLock) -> None:
    set_last_tick(setup.home, datetime.now(UTC) + timedelta(hours=1))
    r = setup.doctor()
    assert line(r, "last tick").startswith("warn  last tick: in the future")


def test_lingering_off(setup: Setup) -> None:
    r = setup.doctor(FAKE_LINGER="no")
    user = doctor.svc.user_name()
    assert line(r, "lingering").startswith(f"warn  lingering: off for {user}")
    assert fix_after(r, "lingering") == f"loginctl enable-linger {user}"


def test_service_path_lacks_a_tool_folder(setup: Setup, tmp_path: Path) -> None:
    tools = tmp_path / "node-bin"
    tools.mkdir()
    (tools / "node").write_text("#!/bin/sh\n")
    (tools / "node").chmod(0o755)
    r = setup.doctor(PATH=f"{tools}:{setup.env['PATH']}")
    assert line(r, "service PATH") == (
        f"warn  service PATH: the service's PATH lacks the folder of node ({tools})"
    )
    # after a re-install from this shell it is there
    assert setup.run("install", "--no-start", PATH=f"{tools}:{setup.env['PATH']}").returncode == 0
    r = setup.doctor(PATH=f"{tools}:{setup.env['PATH']}")
    assert line(r, "service PATH").startswith("ok    service PATH: has ")
    assert f"node ({tools})" in line(r, "service PATH")


def test_credentials(setup: Setup) -> None:
    (setup.user_home / ".claude/.credentials.json").unlink()
    r = setup.doctor()
    assert line(r, "credentials").startswith("warn  credentials: none found")
    # a key in this shell does not reach the service
    r = setup.doctor(CLAUDE_CODE_OAUTH_TOKEN="sk-secret-value")
    assert line(r, "credentials") == (
        "warn  credentials: CLAUDE_CODE_OAUTH_TOKEN is set in this shell but not for the "
        "service, so runs will not see it"
    )
    assert "systemctl --user edit bassi-schedd" in fix_after(r, "credentials")
    assert "sk-secret-value" not in r.stdout
    # ... unless a drop-in sets it
    dropin = setup.unit.with_name("bassi-schedd.service.d")
    dropin.mkdir()
    (dropin / "override.conf").write_text("[Service]\nEnvironment=ANTHROPIC_API_KEY=sk-x\n")
    r = setup.doctor()
    assert line(r, "credentials") == "ok    credentials: ANTHROPIC_API_KEY is set for the service"
    # without a service, this shell's environment is what a foreground daemon gets
    setup.unit.unlink()
    r = setup.doctor(ANTHROPIC_API_KEY="sk-y")
    assert line(r, "credentials") == (
        "ok    credentials: ANTHROPIC_API_KEY is set in this environment"
    )


def test_invalid_tz(setup: Setup) -> None:
    r = setup.doctor(TZ="Not/AZone")
    assert line(r, "time zone").startswith("warn  time zone: TZ='Not/AZone' is not an IANA zone")


def test_configured_zone(setup: Setup) -> None:
    setup.home.config_file.write_text('timezone = "Asia/Tokyo"\n')
    r = setup.doctor()
    assert line(r, "time zone") == "ok    time zone: Asia/Tokyo (schedd.toml)"


def test_darwin_service(setup: Setup) -> None:
    r = setup.run("install", "--no-start", BASSI_SCHEDD_PLATFORM="darwin")
    assert r.returncode == 0
    plist = setup.user_home / "Library/LaunchAgents/com.bassi.schedd.plist"
    r = setup.doctor(BASSI_SCHEDD_PLATFORM="darwin")
    assert line(r, "service") == f"ok    service: installed and current ({plist})"
    assert "lingering" not in r.stdout
    assert fix_after(r, "daemon").startswith(f"launchctl kickstart gui/{os.getuid()}/")


def test_darwin_agent_state(
    setup: Setup, daemon: Callable[..., DaemonProc], tmp_path: Path
) -> None:
    assert setup.run("install", "--no-start", BASSI_SCHEDD_PLATFORM="darwin").returncode == 0
    printed = tmp_path / "print.txt"
    darwin = {"BASSI_SCHEDD_PLATFORM": "darwin", "FAKE_LOADED": "1", "FAKE_PRINT": str(printed)}
    d = daemon()
    d.wait_ready()
    # launchd runs it, and it is the daemon holding the lock
    printed.write_text(launchctl_print("running", d.pid, 1, "(never exited)"))
    r = setup.doctor(**darwin)
    assert line(r, "service state") == f"ok    service state: state = running, pid {d.pid}, 1 run"
    # KeepAlive relaunching an agent that exits at once, behind a daemon started by hand
    printed.write_text(launchctl_print("spawn scheduled", None, 37, "1"))
    r = setup.doctor(**darwin)
    assert r.returncode == 1
    assert line(r, "service state") == (
        "fail  service state: state = spawn scheduled, 37 runs, last exit code 1: its daemon "
        f"keeps exiting and is restarted; the daemon holding the lock of {setup.home.root} is "
        f"pid {d.pid} (started by hand)"
    )
    assert fix_after(r, "service state") == (
        f"stop the daemon started by hand (kill {d.pid}); launchd then starts its own"
    )
    # launchd runs another process than the one holding the lock
    printed.write_text(launchctl_print("running", 4242, 2, "1"))
    r = setup.doctor(**darwin)
    assert r.returncode == 1
    assert line(r, "service state").startswith(
        "fail  service state: state = running, pid 4242, 2 runs, last exit code 1; the daemon "
        f"holding the lock of {setup.home.root} is pid {d.pid}"
    )
    assert fix_after(r, "service state").endswith(
        f"then launchctl kickstart -k gui/{os.getuid()}/com.bassi.schedd"
    )
    # the plist is there but launchd has not loaded it (`launchctl print` exits 113)
    r = setup.doctor(BASSI_SCHEDD_PLATFORM="darwin")
    assert line(r, "service state") == "fail  service state: not loaded by launchd"
    assert fix_after(r, "service state") == "bassi-schedd install"


def test_unsupported_platform_is_not_a_crash(setup: Setup) -> None:
    r = setup.doctor(BASSI_SCHEDD_PLATFORM="sunos5")
    assert line(r, "service").startswith("warn  service: no service support")
    assert "Traceback" not in r.stderr


def test_only_warnings_exit_0(setup: Setup, daemon: Callable[..., DaemonProc]) -> None:
    (setup.user_home / ".claude/.credentials.json").unlink()
    d = daemon()
    d.wait_ready()
    r = setup.doctor(FAKE_SHOW=show_active(d.pid))
    assert r.returncode == 0, r.stdout
    assert line(r, "credentials").startswith("warn  ")


# -- checks that need a world the CLI cannot fake --------------------------------------------


def _ctx(home: Home, tmp_path: Path, path: str) -> doctor.Context:
    return doctor.Context(home, tmp_path, {"PATH": path}, datetime.now(UTC), "linux")


def test_claude_cli_missing(home: Home, tmp_path: Path) -> None:
    ctx = _ctx(home, tmp_path, str(tmp_path))
    ctx.agent_tasks = 2
    check = doctor_env.check_claude_cli(ctx, None)
    assert (check.status, check.detail) == ("fail", "not found; 2 agent tasks need it")
    ctx.agent_tasks = 0
    assert doctor_env.check_claude_cli(ctx, None).status == "warn"
    claude = tmp_path / "claude"
    claude.write_text("#!/bin/sh\n")
    claude.chmod(0o755)
    check = doctor_env.check_claude_cli(ctx, None)
    assert (check.status, check.detail) == ("ok", str(claude))


def test_bundled_claude_is_found_without_importing_the_sdk() -> None:
    sys.modules.pop("claude_agent_sdk", None)
    found = doctor_env.bundled_claude()
    assert found is not None and found.name == "claude"
    assert "claude_agent_sdk" not in sys.modules


def test_agent_tasks_are_counted(
    setup: Setup, write_task: Callable[[str, str], Path], tmp_path: Path
) -> None:
    write_task("agent", AGENT_TASK)
    ctx = _ctx(setup.home, tmp_path, "")
    doctor.check_config(ctx)
    assert doctor.check_tasks(ctx).status == "ok"
    assert ctx.agent_tasks == 1  # backup is a command task


def test_system_says_utc(tmp_path: Path) -> None:
    link = tmp_path / "localtime"
    link.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    assert doctor_env._system_says_utc(str(link), str(tmp_path / "none"))
    link.unlink()
    link.symlink_to("/usr/share/zoneinfo/Europe/Paris")
    assert not doctor_env._system_says_utc(str(link), str(tmp_path / "none"))
    tz_file = tmp_path / "timezone"
    tz_file.write_text("Etc/UTC\n")
    assert doctor_env._system_says_utc(str(tmp_path / "none"), str(tz_file))
    assert not doctor_env._system_says_utc(str(tmp_path / "none"), str(tmp_path / "none"))


def test_unreadable_or_odd_service_files(setup: Setup) -> None:
    text = setup.unit.read_text()
    setup.unit.write_text("\n".join(x for x in text.splitlines() if "ExecStart" not in x))
    r = setup.doctor()
    assert line(r, "service") == f"fail  service: {setup.unit} names no program"
    setup.unit.unlink()
    setup.unit.mkdir()
    r = setup.doctor()
    assert line(r, "service").startswith(f"fail  service: cannot read {setup.unit}")


def test_odd_last_tick_values(setup: Setup, held_lock: PidLock) -> None:
    db = StateDB.open(setup.home.state_db)
    db.set_meta({"last_tick": "yesterday-ish"})
    db.close()
    r = setup.doctor()
    assert line(r, "last tick") == "fail  last tick: unreadable value 'yesterday-ish'"
    setup.home.state_db.unlink()
    for extra in setup.home.schedd_dir.glob("state.db-*"):
        extra.unlink()
    setup.home.state_db.write_bytes(b"not a database at all" * 100)
    r = setup.doctor()
    assert line(r, "last tick").startswith(f"fail  last tick: cannot read {setup.home.state_db}")
    assert "Traceback" not in r.stderr


def test_missing_and_old_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    def fake_version(name: str) -> str:
        if name == "claude-agent-sdk":
            raise md.PackageNotFoundError(name)
        return "6.1.0" if name == "croniter" else "0.1.0"

    monkeypatch.setattr(md, "version", fake_version)
    got = {c.name: (c.status, c.detail) for c in doctor.check_packages()}
    assert got["package claude-agent-sdk"] == ("fail", "not installed")
    assert got["package croniter"] == ("warn", "6.1.0; tested with 7.x")
    assert got["package bassi-schedd"] == ("ok", "0.1.0")


# -- the dashboard -------------------------------------------------------------------------------


def test_dashboard_service_answer_and_token(setup: Setup, web, tmp_path: Path) -> None:
    from bassi_schedd.ops.doctor import Context
    from bassi_schedd.ops.doctor_web import check_web

    r = setup.doctor()
    assert line(r, "dashboard").startswith("ok    dashboard: no service installed")
    assert setup.run("install", "--no-start", "--web").returncode == 0
    web_unit = setup.user_home / ".config/systemd/user/bassi-schedd-web.service"
    r = setup.doctor()
    assert line(r, "dashboard") == f"ok    dashboard: service installed and current ({web_unit})"
    w = web()
    ctx = Context(setup.home, setup.user_home, {}, datetime.now(UTC), "linux")
    verdicts = {(c.status, c.detail) for c in check_web(ctx, port=w.port)}
    assert ("ok", f"answers on http://127.0.0.1:{w.port}/") in verdicts
    token = setup.home.root / "web.token"
    assert ("ok", f"{token} (0600)") in verdicts
    w.stop()
    ctx = Context(setup.home, setup.user_home, {}, datetime.now(UTC), "linux")
    not_answering = {(c.status, c.detail) for c in check_web(ctx, port=w.port)}
    assert ("warn", f"installed but not answering on 127.0.0.1:{w.port}") in not_answering
    token.chmod(0o644)
    r = setup.doctor()
    assert r.returncode == 1
    assert line(r, "dashboard token").startswith("fail  dashboard token: ")
    assert fix_after(r, "dashboard token") == f"chmod 600 {token}"
