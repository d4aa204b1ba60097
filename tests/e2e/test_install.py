"""install / uninstall against fake systemctl, loginctl and launchctl; the rendered files
checked by systemd-analyze and plistlib."""

from __future__ import annotations

import os
import plistlib
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import BIN_DIR, CLI, REPO, CliResult, DaemonProc, base_env, wait_for
from support.service_fakes import BOOTSTRAP_EIO, DISABLE_NOW, ENABLE_NOW_LOCK_HELD, FAKE

from bassi_schedd.config.loader import load_config, load_task_file
from bassi_schedd.config.paths import DEFAULT_PATH, Home, service_path
from bassi_schedd.core.errors import UserError
from bassi_schedd.ops import install as svc
from bassi_schedd.store.lock import read_holder

UID = os.getuid()
USER = svc.user_name()
UNIT_CMDS = ["systemctl --user daemon-reload", "systemctl --user enable --now bassi-schedd.service"]
LINGER = f"loginctl show-user {USER} -p Linger"


@dataclass
class Env:
    """A fake user: HOME, BASSI_HOME inside it, fake service tools first on PATH."""

    user_home: Path
    bassi: Path
    fake_bin: Path
    log: Path
    vars: dict[str, str]

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def reset(self) -> None:
        self.log.unlink(missing_ok=True)


@pytest.fixture
def fake_env(tmp_path: Path) -> Env:
    user_home = tmp_path / "user"
    user_home.mkdir()
    fake_bin = tmp_path / "fakebin"
    fake_bin.mkdir()
    for tool in ("systemctl", "loginctl", "launchctl"):
        p = fake_bin / tool
        p.write_text(FAKE)
        p.chmod(0o755)
    log = tmp_path / "calls.log"
    bassi = user_home / ".bassi"
    env = {
        "HOME": str(user_home),
        "BASSI_HOME": str(bassi),
        "PATH": f"{fake_bin}:{BIN_DIR}:/usr/bin:/bin",
        "FAKE_LOG": str(log),
    }
    return Env(user_home, bassi, fake_bin, log, env)


@pytest.fixture
def run(cli: Callable[..., CliResult], fake_env: Env) -> Callable[..., CliResult]:
    def _run(*args: str, **extra: str) -> CliResult:
        return cli(*args, env={**fake_env.vars, **extra})

    return _run


def unit_path(e: Env) -> Path:
    return e.user_home / ".config/systemd/user/bassi-schedd.service"


def plist_path(e: Env) -> Path:
    return e.user_home / "Library/LaunchAgents/com.bassi.schedd.plist"


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    """Every path under root with its mode, mtime and content: 'nothing changed' made exact."""
    out: dict[str, tuple[int, int, bytes]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        data = p.read_bytes() if p.is_file() and not p.is_symlink() else b""
        out[str(p.relative_to(root))] = (st.st_mode, st.st_mtime_ns, data)
    return out


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


# -- Linux -----------------------------------------------------------------------------------


def test_linux_install_writes_unit_home_and_example_then_enables(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    r = run("install", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert fake_env.calls() == [*UNIT_CMDS, LINGER]
    unit = unit_path(fake_env)
    assert mode(unit) == 0o644
    text = unit.read_text()
    assert f'ExecStart="{os.path.abspath(sys.executable)}" -m bassi_schedd run' in text
    assert f'"BASSI_HOME={fake_env.bassi}"' in text
    assert f'"PATH={fake_env.fake_bin}:{BIN_DIR}:/usr/bin:/bin"' in text
    assert "@PYTHON@" not in text and "@PATH@" not in text
    home = Home(fake_env.bassi)
    for d in (home.root, home.tasks_dir, home.schedd_dir, home.logs_dir, home.runs_dir):
        assert mode(d) == 0o700, d
    example = home.tasks_dir / "example.toml"
    assert mode(example) == 0o600
    spec = load_task_file(example, load_config(home))
    assert spec.enabled is False
    assert f"wrote {unit}" in r.stdout
    assert "warning" not in r.stderr  # lingering is on (fake loginctl says yes)


def test_second_install_changes_nothing(run: Callable[..., CliResult], fake_env: Env) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    before = snapshot(fake_env.user_home)
    fake_env.reset()
    r = run("install", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert snapshot(fake_env.user_home) == before
    assert "service file unchanged" in r.stdout
    assert fake_env.calls() == [*UNIT_CMDS, LINGER]  # no restart


def test_changed_unit_is_rewritten_and_restarted(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    unit = unit_path(fake_env)
    unit.write_text(unit.read_text().replace("RestartSec=10s", "RestartSec=99s"))
    fake_env.reset()
    r = run("install", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert "RestartSec=10s" in unit.read_text()
    assert f"updated {unit}" in r.stdout
    assert fake_env.calls() == [
        "systemctl --user daemon-reload",
        "systemctl --user enable bassi-schedd.service",
        "systemctl --user restart bassi-schedd.service",
        LINGER,
    ]


def test_example_task_only_into_an_empty_tasks_folder(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    tasks = fake_env.bassi / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "mine.toml").write_text('schedule = "@daily"\nprompt = "hi"\n')
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    assert not (tasks / "example.toml").exists()


def test_lingering_off_prints_the_fix(run: Callable[..., CliResult], fake_env: Env) -> None:
    r = run("install", BASSI_SCHEDD_PLATFORM="linux", FAKE_LINGER="no")
    assert r.returncode == 0
    assert "lingering is off" in r.stderr
    assert f"loginctl enable-linger {USER}" in r.stderr


def test_dry_run_changes_nothing_and_shows_everything(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    before = snapshot(fake_env.user_home)
    r = run("install", "--dry-run", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert snapshot(fake_env.user_home) == before
    assert not fake_env.bassi.exists()
    assert fake_env.calls() == [LINGER]  # read-only question only
    assert f"would write {unit_path(fake_env)}:" in r.stdout
    assert "    Type=notify" in r.stdout
    assert f"would write {fake_env.bassi / 'tasks/example.toml'}:" in r.stdout
    assert "    enabled = false" in r.stdout
    assert f"would create folder {fake_env.bassi} (0700)" in r.stdout
    for cmd in UNIT_CMDS:
        assert f"would run: {cmd}" in r.stdout


def test_dry_run_on_an_installed_service_says_unchanged(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    before = snapshot(fake_env.user_home)
    r = run("install", "--dry-run", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0
    assert snapshot(fake_env.user_home) == before
    assert f"unchanged: {unit_path(fake_env)}" in r.stdout


def test_no_start_writes_but_runs_no_systemctl(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    r = run("install", "--no-start", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert unit_path(fake_env).exists()
    assert fake_env.calls() == [LINGER]
    assert "not started (--no-start); to start: systemctl --user daemon-reload" in r.stdout


def test_missing_systemctl_fails_before_writing(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    (fake_env.fake_bin / "systemctl").unlink()
    r = run("install", BASSI_SCHEDD_PLATFORM="linux", PATH=str(fake_env.fake_bin))
    assert r.returncode == 1
    assert "systemctl was not found on PATH" in r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not unit_path(fake_env).exists() and not fake_env.bassi.exists()
    # --no-start does not need it
    r = run("install", "--no-start", BASSI_SCHEDD_PLATFORM="linux", PATH=str(fake_env.fake_bin))
    assert r.returncode == 0, r.stderr
    assert unit_path(fake_env).exists()


def test_failing_systemctl_is_one_clear_error(run: Callable[..., CliResult], fake_env: Env) -> None:
    r = run("install", BASSI_SCHEDD_PLATFORM="linux", FAKE_FAIL="enable")
    assert r.returncode == 1
    assert (
        "bassi-schedd: 'systemctl --user enable --now bassi-schedd.service' failed: "
        "fake failure of systemctl --user; see 'journalctl --user -u bassi-schedd -n 50'"
    ) in r.stderr
    assert "Traceback" not in r.stderr


def test_failing_systemctl_quotes_the_reason_not_the_symlink_note(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    # systemd 252's own words when the service's daemon exited at start (lock held)
    r = run(
        "install",
        BASSI_SCHEDD_PLATFORM="linux",
        FAKE_FAIL="enable",
        FAKE_STDERR=ENABLE_NOW_LOCK_HELD,
    )
    assert r.returncode == 1
    assert r.stderr == (
        "bassi-schedd: 'systemctl --user enable --now bassi-schedd.service' failed: "
        "Job for bassi-schedd.service failed because the control process exited with error "
        "code; see 'journalctl --user -u bassi-schedd -n 50'\n"
    )


def _refusal(pid: int, home: Home) -> str:
    return (
        f"bassi-schedd: a bassi-schedd daemon started by hand (pid {pid}) holds the lock of "
        f"{home.root}, so the service's own daemon cannot start; stop it first (kill {pid}), "
        "then run install again\n"
    )


def test_daemon_started_by_hand_is_named_before_anything_is_touched(
    run: Callable[..., CliResult],
    fake_env: Env,
    home: Home,
    daemon: Callable[..., DaemonProc],
) -> None:
    d = daemon()  # `bassi-schedd run` from a shell: nobody restarts it, nobody stops it
    d.wait_ready()
    for platform in ("linux", "darwin"):
        for flags in ((), ("--dry-run",)):
            r = run("install", *flags, BASSI_SCHEDD_PLATFORM=platform, BASSI_HOME=str(home.root))
            assert (r.returncode, r.stdout) == (1, ""), (platform, flags)
            assert r.stderr == _refusal(d.pid, home), (platform, flags)
    assert fake_env.calls() == []
    assert not unit_path(fake_env).exists() and not plist_path(fake_env).exists()
    assert not (home.tasks_dir / "example.toml").exists()
    # --no-start starts nothing now, so it only warns
    r = run("install", "--no-start", BASSI_SCHEDD_PLATFORM="linux", BASSI_HOME=str(home.root))
    assert r.returncode == 0, r.stderr
    assert (
        f"bassi-schedd: warning: a bassi-schedd daemon started by hand (pid {d.pid}) holds the "
        f"lock of {home.root}; stop it (kill {d.pid}) before you start the service"
    ) in r.stderr
    assert unit_path(fake_env).exists()
    # once it is stopped, install goes ahead
    assert d.stop() == 0
    fake_env.reset()
    r = run("install", BASSI_SCHEDD_PLATFORM="linux", BASSI_HOME=str(home.root))
    assert r.returncode == 0, r.stderr
    assert fake_env.calls() == [*UNIT_CMDS, LINGER]


def test_reinstall_while_the_service_runs_the_daemon(
    run: Callable[..., CliResult], fake_env: Env, home: Home, tmp_path: Path
) -> None:
    # A daemon whose parent is a process named "systemd" is supervised (as `status` says).
    manager = tmp_path / "systemd"
    manager.symlink_to(sys.executable)
    wrapper = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"
    proc = subprocess.Popen(
        [str(manager), "-c", wrapper, *CLI, "run"],
        env=base_env(home.root),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    pid = None
    try:
        pid = wait_for(lambda: read_holder(home))
        r = run("install", BASSI_SCHEDD_PLATFORM="linux", BASSI_HOME=str(home.root))
        assert r.returncode == 0, r.stderr
        assert fake_env.calls() == [*UNIT_CMDS, LINGER]
    finally:
        if isinstance(pid, int):
            os.kill(pid, 15)
        try:
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)


def test_unwritable_places_are_one_clear_error(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    (fake_env.user_home / ".config").mkdir()
    (fake_env.user_home / ".config/systemd").write_text("a file where a folder should be")
    r = run("install", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 1
    assert f"bassi-schedd: cannot write {unit_path(fake_env)}: " in r.stderr
    assert "Traceback" not in r.stderr
    assert fake_env.calls() == []
    fake_env.bassi.parent.joinpath("blocked").write_text("")
    r = run(
        "install", BASSI_SCHEDD_PLATFORM="linux", BASSI_HOME=str(fake_env.user_home / "blocked/b")
    )
    assert r.returncode == 1
    assert "bassi-schedd: cannot set up " in r.stderr and "Traceback" not in r.stderr


def test_unreadable_installed_file(run: Callable[..., CliResult], fake_env: Env) -> None:
    unit = unit_path(fake_env)
    unit.parent.mkdir(parents=True)
    unit.write_bytes(b"\xff\xfe not text")
    r = run("install", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 1
    assert f"bassi-schedd: the installed service file {unit} is not UTF-8 text" in r.stderr
    unit.unlink()
    unit.mkdir()
    r = run("install", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 1
    assert f"cannot read the installed service file {unit}: Is a directory" in r.stderr
    assert fake_env.calls() == []


def test_moving_the_service_to_another_home_says_so(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    other = fake_env.user_home / "other"
    r = run("install", BASSI_SCHEDD_PLATFORM="linux", BASSI_HOME=str(other))
    assert r.returncode == 0, r.stderr
    assert f"the service now uses BASSI_HOME {other} (was {fake_env.bassi})" in r.stdout
    assert "systemctl --user restart bassi-schedd.service" in fake_env.calls()


def test_no_user_manager_gets_its_own_hint(run: Callable[..., CliResult], fake_env: Env) -> None:
    r = run(
        "install",
        BASSI_SCHEDD_PLATFORM="linux",
        FAKE_FAIL="daemon-reload",
        FAKE_STDERR="Failed to connect to bus: No medium found",
    )
    assert r.returncode == 1
    assert (
        "'systemctl --user daemon-reload' failed: Failed to connect to bus: No medium found; "
        f"no systemd user manager is reachable: enable lingering (loginctl enable-linger {USER})"
    ) in r.stderr
    assert f"XDG_RUNTIME_DIR=/run/user/{UID}" in r.stderr


def test_unsupported_platform(run: Callable[..., CliResult], fake_env: Env) -> None:
    r = run("install", BASSI_SCHEDD_PLATFORM="win32")
    assert r.returncode == 1
    assert "needs Linux (systemd) or macOS (launchd), not 'win32'" in r.stderr
    assert not fake_env.bassi.exists()


# -- macOS -----------------------------------------------------------------------------------


def test_darwin_install_bootstraps_the_agent(run: Callable[..., CliResult], fake_env: Env) -> None:
    # the hidden --platform flag wins over the environment
    r = run("install", "--platform", "darwin", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    plist = plist_path(fake_env)
    assert fake_env.calls() == [
        f"launchctl bootout gui/{UID}/com.bassi.schedd",
        f"launchctl enable gui/{UID}/com.bassi.schedd",
        f"launchctl bootstrap gui/{UID} {plist}",
    ]
    assert mode(plist) == 0o644
    data = plistlib.loads(plist.read_bytes())
    assert data["ProgramArguments"] == [
        os.path.abspath(sys.executable),
        "-m",
        "bassi_schedd",
        "run",
    ]
    assert data["EnvironmentVariables"]["BASSI_HOME"] == str(fake_env.bassi)
    assert data["StandardErrorPath"] == f"{fake_env.bassi}/logs/launchd-stderr.log"
    assert (fake_env.bassi / "logs").is_dir()  # launchd does not create it


def test_darwin_reinstall_only_checks_when_loaded(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="darwin").returncode == 0
    before = snapshot(fake_env.user_home)
    fake_env.reset()
    r = run("install", BASSI_SCHEDD_PLATFORM="darwin", FAKE_LOADED="1")
    assert r.returncode == 0, r.stderr
    assert fake_env.calls() == [f"launchctl print gui/{UID}/com.bassi.schedd"]
    assert snapshot(fake_env.user_home) == before
    # not loaded (e.g. after a logout race): load it again, without a bootout
    fake_env.reset()
    assert run("install", BASSI_SCHEDD_PLATFORM="darwin").returncode == 0
    assert fake_env.calls() == [
        f"launchctl print gui/{UID}/com.bassi.schedd",
        f"launchctl enable gui/{UID}/com.bassi.schedd",
        f"launchctl bootstrap gui/{UID} {plist_path(fake_env)}",
    ]


def test_darwin_bootstrap_is_retried_after_a_bootout(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    r = run("install", BASSI_SCHEDD_PLATFORM="darwin", FAKE_FAIL_ONCE="bootstrap")
    assert r.returncode == 0, r.stderr
    assert [c.split()[1] for c in fake_env.calls()] == [
        "bootout",
        "enable",
        "bootstrap",
        "bootstrap",
    ]
    # a bootstrap that keeps failing: 1 + 3 attempts, then one clear error
    fake_env.reset()
    r = run(
        "install", BASSI_SCHEDD_PLATFORM="darwin", FAKE_FAIL="bootstrap", FAKE_STDERR=BOOTSTRAP_EIO
    )
    assert r.returncode == 1
    assert [c.split()[1] for c in fake_env.calls()].count("bootstrap") == 4
    assert r.stderr == (
        f"bassi-schedd: 'launchctl bootstrap gui/{UID} {plist_path(fake_env)}' failed: "
        "Bootstrap failed: 5: Input/output error\n"
    )


def test_darwin_dry_run_changes_nothing(run: Callable[..., CliResult], fake_env: Env) -> None:
    before = snapshot(fake_env.user_home)
    r = run("install", "--dry-run", BASSI_SCHEDD_PLATFORM="darwin")
    assert r.returncode == 0, r.stderr
    assert snapshot(fake_env.user_home) == before
    assert fake_env.calls() == []
    assert f"would write {plist_path(fake_env)}:" in r.stdout
    assert "<key>RunAtLoad</key>" in r.stdout
    assert f"would run: launchctl bootstrap gui/{UID} {plist_path(fake_env)}" in r.stdout


# -- uninstall -------------------------------------------------------------------------------


def test_linux_uninstall_keeps_the_home(run: Callable[..., CliResult], fake_env: Env) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    fake_env.reset()
    r = run("uninstall", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert fake_env.calls() == [
        "systemctl --user disable --now bassi-schedd.service",
        "systemctl --user daemon-reload",
    ]
    assert not unit_path(fake_env).exists()
    assert (fake_env.bassi / "tasks/example.toml").exists()
    assert f"kept tasks, history and logs in {fake_env.bassi}" in r.stdout


def test_darwin_uninstall(run: Callable[..., CliResult], fake_env: Env) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="darwin").returncode == 0
    fake_env.reset()
    r = run("uninstall", BASSI_SCHEDD_PLATFORM="darwin")
    assert r.returncode == 0, r.stderr
    assert fake_env.calls() == [f"launchctl bootout gui/{UID}/com.bassi.schedd"]
    assert not plist_path(fake_env).exists()
    assert (fake_env.bassi / "tasks").is_dir()


def test_uninstall_when_not_installed(run: Callable[..., CliResult], fake_env: Env) -> None:
    for platform in ("linux", "darwin"):
        r = run("uninstall", BASSI_SCHEDD_PLATFORM=platform)
        assert r.returncode == 0
        assert "bassi-schedd is not installed as a service" in r.stdout
    assert fake_env.calls() == []


def test_uninstall_dry_run(run: Callable[..., CliResult], fake_env: Env) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    before = snapshot(fake_env.user_home)
    fake_env.reset()
    r = run("uninstall", "--dry-run", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0
    assert snapshot(fake_env.user_home) == before
    assert fake_env.calls() == []
    assert "would run: systemctl --user disable --now bassi-schedd.service" in r.stdout
    assert f"would remove {unit_path(fake_env)}" in r.stdout


def test_uninstall_failure_still_removes_and_says_so(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    # disable --now reports the symlink it removed (as systemd 252 does) before the stop that
    # failed (in systemctl's "Failed to <verb> <unit>: <reason>" form)
    stderr = DISABLE_NOW + "Failed to stop bassi-schedd.service: Connection timed out\n"
    r = run("uninstall", BASSI_SCHEDD_PLATFORM="linux", FAKE_FAIL="disable", FAKE_STDERR=stderr)
    assert r.returncode == 1
    assert not unit_path(fake_env).exists()
    assert (
        "but 'systemctl --user disable --now bassi-schedd.service' failed: "
        "Failed to stop bassi-schedd.service: Connection timed out;"
    ) in r.stderr
    assert "the daemon may still be running" in r.stderr


def test_uninstall_without_systemctl(run: Callable[..., CliResult], fake_env: Env) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    (fake_env.fake_bin / "systemctl").unlink()
    r = run("uninstall", BASSI_SCHEDD_PLATFORM="linux", PATH=str(fake_env.fake_bin))
    assert r.returncode == 1
    assert not unit_path(fake_env).exists()
    assert "systemctl was not found on PATH" in r.stderr


def test_uninstall_dry_run_without_systemctl_says_what_the_real_run_does(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    assert run("install", BASSI_SCHEDD_PLATFORM="linux").returncode == 0
    (fake_env.fake_bin / "systemctl").unlink()
    fake_env.reset()
    no_tool = {"BASSI_SCHEDD_PLATFORM": "linux", "PATH": str(fake_env.fake_bin)}
    dry = run("uninstall", "--dry-run", **no_tool)
    assert dry.returncode == 0, dry.stderr
    assert unit_path(fake_env).exists()
    assert "would run" not in dry.stdout  # the real run cannot run systemctl either
    assert f"would remove {unit_path(fake_env)}" in dry.stdout
    real = run("uninstall", **no_tool)
    assert real.returncode == 1
    error = real.stderr.removeprefix("bassi-schedd: ").strip()
    assert error == (
        f"removed {unit_path(fake_env)}, but systemctl was not found on PATH, so a running "
        "daemon was not stopped"
    )
    assert dry.stderr == f"bassi-schedd: warning: a real run would end with: {error}\n"


@pytest.mark.parametrize("platform", ["linux", "darwin"])
def test_dry_run_shows_the_commands_the_real_run_runs(
    run: Callable[..., CliResult], fake_env: Env, platform: str
) -> None:
    def tool_calls() -> list[str]:
        return [c for c in fake_env.calls() if not c.startswith(("loginctl", "launchctl print"))]

    def compare(*args: str, **extra: str) -> None:
        dry = run(*args, "--dry-run", BASSI_SCHEDD_PLATFORM=platform, **extra)
        shown = [line.removeprefix("would run: ") for line in dry.stdout.splitlines()]
        shown = [line for line in shown if line.startswith(("systemctl", "launchctl"))]
        fake_env.reset()
        real = run(*args, BASSI_SCHEDD_PLATFORM=platform, **extra)
        assert real.returncode == 0, real.stderr
        ran = [line.removeprefix("running: ") for line in real.stdout.splitlines()]
        assert shown == tool_calls() == [line for line in ran if line in shown], args
        assert shown, args
        fake_env.reset()

    compare("install")  # new
    service = unit_path(fake_env) if platform == "linux" else plist_path(fake_env)
    service.write_text(service.read_text() + "\n")
    compare("install")  # changed
    compare("uninstall")


# -- rendering -------------------------------------------------------------------------------


def test_templates_in_the_package_equal_the_repository_copies() -> None:
    for platform, rel in (
        ("linux", "service/systemd/bassi-schedd.service"),
        ("darwin", "service/launchd/com.bassi.schedd.plist"),
    ):
        shipped = REPO / "bassi_schedd/data" / svc.TEMPLATES[platform]  # type: ignore[index]
        assert shipped.read_bytes() == (REPO / rel).read_bytes(), rel


def _verify(unit: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )


needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed"
)


@needs_analyze
def test_rendered_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    values = svc.current_values(tmp_path / "bassi home")
    unit = tmp_path / "bassi-schedd.service"
    unit.write_text(svc.render("linux", values))
    r = _verify(unit)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@needs_analyze
def test_awkward_paths_are_escaped(tmp_path: Path) -> None:
    odd = tmp_path / "my env 100%h$x"
    odd.mkdir()
    python = odd / "python"
    python.symlink_to(sys.executable)
    values = svc.ServiceValues(str(python), '/a b/bin:/100%/bin:/q"u\\o', "/h %h/$HOME")
    unit = tmp_path / "bassi-schedd.service"
    unit.write_text(svc.render("linux", values))
    r = _verify(unit)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    # the check has teeth: unescaped, systemd would expand %h to a home folder
    broken = unit.read_text().replace("100%%h", "100%h", 1)
    assert broken != unit.read_text()
    unit.write_text(broken)
    assert _verify(unit).returncode != 0
    back = svc.parse_installed("linux", svc.render("linux", values))
    assert back.python == values.python
    assert back.env == {"PATH": values.path, "BASSI_HOME": values.bassi_home}


def test_rendered_plist_has_the_required_keys(tmp_path: Path) -> None:
    values = svc.ServiceValues("/opt/py 3/bin/python", "/usr/bin:/bin", "/Users/a&b/<x>")
    text = svc.render("darwin", values)
    data = plistlib.loads(text.encode())
    expected_types = {
        "Label": str,
        "ProgramArguments": list,
        "RunAtLoad": bool,
        "KeepAlive": bool,
        "EnvironmentVariables": dict,
        "StandardOutPath": str,
        "StandardErrorPath": str,
        "ProcessType": str,
        "ThrottleInterval": int,
        "ExitTimeOut": int,
    }
    for key, typ in expected_types.items():
        assert isinstance(data[key], typ), key
    assert data["Label"] == "com.bassi.schedd"
    assert data["RunAtLoad"] is True and data["KeepAlive"] is True
    assert data["ProcessType"] == "Interactive"
    assert data["ExitTimeOut"] > 12  # the daemon's 10 s kill grace plus bookkeeping
    assert data["EnvironmentVariables"] == {
        "PATH": "/usr/bin:/bin",
        "BASSI_HOME": values.bassi_home,
        "BASSI_SCHEDD_LOG_STDERR": "off",  # schedd.log rotates; launchd's stderr file does not
    }
    assert data["StandardOutPath"] == "/Users/a&b/<x>/logs/launchd-stdout.log"
    assert "a&amp;b/&lt;x&gt;" in text
    assert svc.parse_installed("darwin", text) == svc.InstalledService(
        values.python, data["EnvironmentVariables"]
    )


def test_values_a_service_file_cannot_carry() -> None:
    with pytest.raises(UserError, match="control characters"):
        svc.render("linux", svc.ServiceValues("/usr/bin/python3", "/bin\n[Service]", "/h"))
    with pytest.raises(UserError, match="control characters"):
        svc.render("darwin", svc.ServiceValues("/usr/bin/python3", "/bin", "/h\x01"))
    with pytest.raises(UserError, match="quotes or backslashes"):
        svc.render("linux", svc.ServiceValues('/opt/"py"/python', "/bin", "/h"))


def test_service_path_keeps_order_drops_junk() -> None:
    got = service_path("/a:.:/b::/a:bin:/c", "/venv/bin/python")
    assert got == "/a:/b:/c:/venv/bin"
    assert service_path("/venv/bin:/x", "/venv/bin/python") == "/venv/bin:/x"
    assert service_path(None, "/usr/bin/python3") == DEFAULT_PATH


def test_systemd_words() -> None:
    assert svc.systemd_words("\"a b\" c\\ d 'e f' 1%%2") == ["a b", "c d", "e f", "1%2"]
    assert svc.systemd_words('  "x\\"y\\\\z"  ') == ['x"y\\z']
    assert svc.systemd_words("") == []


# -- the dashboard's own service (install --web) -----------------------------------------------

WEB_UNIT = "bassi-schedd-web.service"


def test_linux_install_web_adds_the_dashboard_unit_and_uninstall_removes_both(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    r = run("install", "--web", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    web_unit = fake_env.user_home / ".config/systemd/user" / WEB_UNIT
    assert fake_env.calls() == [
        *UNIT_CMDS,
        "systemctl --user daemon-reload",
        f"systemctl --user enable --now {WEB_UNIT}",
        LINGER,
    ]
    text = web_unit.read_text()
    assert mode(web_unit) == 0o644
    assert f'ExecStart="{os.path.abspath(sys.executable)}" -m bassi_schedd web' in text
    assert f'"BASSI_HOME={fake_env.bassi}"' in text
    assert "http://127.0.0.1:8765/" in r.stdout and "web.token" in r.stdout
    fake_env.reset()
    again = run("install", "--web", BASSI_SCHEDD_PLATFORM="linux")
    assert again.returncode == 0 and "dashboard service file unchanged" in again.stdout
    fake_env.reset()
    r = run("uninstall", BASSI_SCHEDD_PLATFORM="linux")
    assert r.returncode == 0, r.stderr
    assert fake_env.calls() == [
        f"systemctl --user disable --now {WEB_UNIT}",
        "systemctl --user daemon-reload",
        "systemctl --user disable --now bassi-schedd.service",
        "systemctl --user daemon-reload",
    ]
    assert not web_unit.exists() and not unit_path(fake_env).exists()


def test_darwin_install_web_bootstraps_the_dashboard_agent(
    run: Callable[..., CliResult], fake_env: Env
) -> None:
    r = run("install", "--web", BASSI_SCHEDD_PLATFORM="darwin")
    assert r.returncode == 0, r.stderr
    plist = fake_env.user_home / "Library/LaunchAgents/com.bassi.schedd.web.plist"
    assert fake_env.calls()[3:] == [
        f"launchctl bootout gui/{UID}/com.bassi.schedd.web",
        f"launchctl enable gui/{UID}/com.bassi.schedd.web",
        f"launchctl bootstrap gui/{UID} {plist}",
    ]
    data = plistlib.loads(plist.read_bytes())
    assert data["ProgramArguments"][-2:] == ["bassi_schedd", "web"]
    assert data["KeepAlive"] is True and data["RunAtLoad"] is True
    fake_env.reset()
    assert run("uninstall", BASSI_SCHEDD_PLATFORM="darwin").returncode == 0
    assert fake_env.calls() == [
        f"launchctl bootout gui/{UID}/com.bassi.schedd.web",
        f"launchctl bootout gui/{UID}/com.bassi.schedd",
    ]
    assert not plist.exists()


def test_web_templates_equal_the_repository_copies_and_verify(tmp_path: Path) -> None:
    for platform, rel in (
        ("linux", "service/systemd/bassi-schedd-web.service"),
        ("darwin", "service/launchd/com.bassi.schedd.web.plist"),
    ):
        shipped = REPO / "bassi_schedd/data" / svc.WEB.template(platform)  # type: ignore[arg-type]
        assert shipped.read_bytes() == (REPO / rel).read_bytes(), rel
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze not installed")
    unit = tmp_path / WEB_UNIT
    unit.write_text(svc.render("linux", svc.current_values(tmp_path / "bassi home"), svc.WEB))
    r = _verify(unit)
    assert r.returncode == 0, r.stderr
