"""service_state: the reason line of a failed systemctl/launchctl and the unit's state, read from
outputs captured from the real tools (systemd 252 user manager; launchd as public reports and
captures show it)."""

from __future__ import annotations

import pytest

from bassi_schedd.ops.service_state import (
    UnitState,
    parse_launchctl_print,
    parse_systemctl_show,
    reason_line,
)

# -- captured from systemd 252 (Debian 12), `systemd --user`, a daemon started by hand holding
# the lock; HOME was /tmp/g5-exp/home ----------------------------------------------------------
ENABLE_NOW_LOCK_HELD = (
    "Created symlink /tmp/g5-exp/home/.config/systemd/user/default.target.wants/"
    "bassi-schedd.service \u2192 /tmp/g5-exp/home/.config/systemd/user/bassi-schedd.service.\n"
    "Job for bassi-schedd.service failed because the control process exited with error code.\n"
    'See "systemctl --user status bassi-schedd.service" and '
    '"journalctl --user -xeu bassi-schedd.service" for details.\n'
)
JOB_FAILED = (
    "Job for bassi-schedd.service failed because the control process exited with error code"
)
DISABLE_NOW = (
    'Removed "/tmp/g5-exp/home/.config/systemd/user/default.target.wants/bassi-schedd.service".\n'
)
SHOW_AUTO_RESTART = (
    "MainPID=0\nNRestarts=0\nLoadState=loaded\nActiveState=activating\nSubState=auto-restart\n"
)
SHOW_INACTIVE = "MainPID=0\nNRestarts=0\nLoadState=loaded\nActiveState=inactive\nSubState=dead\n"
SHOW_NOT_FOUND = (
    "MainPID=0\nNRestarts=0\nLoadState=not-found\nActiveState=inactive\nSubState=dead\n"
)


def show_active(pid: int, restarts: int = 0) -> str:
    """`systemctl --user show` of the running unit (captured with MainPID=11766, NRestarts=2)."""
    return (
        f"MainPID={pid}\nNRestarts={restarts}\nLoadState=loaded\n"
        "ActiveState=active\nSubState=running\n"
    )


# -- launchd -----------------------------------------------------------------------------------
# `launchctl bootstrap` on macOS 12-15 (as reported verbatim in e.g. asmvik/yabai#986 and
# pirj/noclamshell#30): the reason first, then a pointer.
BOOTSTRAP_EIO = (
    "Bootstrap failed: 5: Input/output error\n"
    "Try re-running the command as root for richer errors.\n"
)


def launchctl_print(state: str, pid: int | None, runs: int, last_exit: str) -> str:
    """`launchctl print gui/501/com.bassi.schedd` in the shape launchd prints (macOS 14-26):
    one tab per top-level key, and nested blocks whose keys collide with the top-level ones
    (the coalitions carry their own `state = active`)."""
    pid_line = f"\tpid = {pid}\n" if pid is not None else ""
    return (
        "gui/501/com.bassi.schedd = {\n"
        f"\tactive count = {1 if pid else 0}\n"
        "\tpath = /Users/ada/Library/LaunchAgents/com.bassi.schedd.plist\n"
        "\ttype = LaunchAgent\n"
        f"\tstate = {state}\n"
        "\n"
        "\tprogram = /Users/ada/.venvs/bassi/bin/python3\n"
        "\targuments = {\n"
        "\t\t/Users/ada/.venvs/bassi/bin/python3\n"
        "\t\t-m\n"
        "\t\tbassi_schedd\n"
        "\t\trun\n"
        "\t}\n"
        "\n"
        "\tstdout path = /Users/ada/.bassi/logs/launchd-stdout.log\n"
        "\tstderr path = /Users/ada/.bassi/logs/launchd-stderr.log\n"
        "\tdefault environment = {\n"
        "\t\tPATH => /usr/bin:/bin:/usr/sbin:/sbin\n"
        "\t}\n"
        "\n"
        "\tenvironment = {\n"
        "\t\tBASSI_HOME => /Users/ada/.bassi\n"
        "\t\tXPC_SERVICE_NAME => com.bassi.schedd\n"
        "\t}\n"
        "\n"
        "\tdomain = gui/501 [100005]\n"
        "\tasid = 100005\n"
        "\tminimum runtime = 10\n"
        "\texit timeout = 30\n"
        f"\truns = {runs}\n"
        f"{pid_line}"
        "\timmediate reason = speculative\n"
        f"\tlast exit code = {last_exit}\n"
        "\n"
        "\tresource coalition = {\n"
        "\t\tID = 713839\n"
        "\t\ttype = resource\n"
        "\t\tstate = active\n"
        "\t\tactive count = 1\n"
        "\t\tname = com.bassi.schedd\n"
        "\t}\n"
        "\n"
        "\tspawn type = interactive (4)\n"
        "\tjetsam priority = 40\n"
        "\n"
        "\tproperties = keepalive | runatload | inferred program\n"
        "}\n"
    )


# -- reason_line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stdout", "stderr", "expected"),
    [
        # systemctl lines below were captured in the same systemd 252 session.
        # The bug: the first line is systemctl's note about the symlink it made.
        ("", ENABLE_NOW_LOCK_HELD, JOB_FAILED),
        ("", ENABLE_NOW_LOCK_HELD.split("\n", 1)[1], JOB_FAILED),  # `restart` prints no note
        (
            "",
            "Failed to connect to bus: No medium found\n",
            "Failed to connect to bus: No medium found",
        ),
        (
            "",
            "Failed to start nope.service: Unit nope.service not found.\n",
            "Failed to start nope.service: Unit nope.service not found",
        ),
        (
            "",
            "Failed to enable unit: Unit file nope.service does not exist.\n",
            "Failed to enable unit: Unit file nope.service does not exist",
        ),
        ("", BOOTSTRAP_EIO, "Bootstrap failed: 5: Input/output error"),
        # the legacy `launchctl load` (e.g. sparkfabrik/sparkdock#151)
        (
            "",
            "Load failed: 5: Input/output error\n"
            "Try running `launchctl bootstrap` as root for richer errors.\n",
            "Load failed: 5: Input/output error",
        ),
        # the pointer alone is still better than nothing
        (
            "",
            "Try re-running the command as root for richer errors.\n",
            "Try re-running the command as root for richer errors",
        ),
        # an unknown message: its first line that is not a note
        ("", DISABLE_NOW + "something odd happened\n", "something odd happened"),
        ("some words on stdout\n", "", "some words on stdout"),
        ("", "", ""),
    ],
)
def test_reason_line(stdout: str, stderr: str, expected: str) -> None:
    assert reason_line(stdout, stderr) == expected


# -- systemctl show ----------------------------------------------------------------------------


def test_parse_systemctl_show_captured_states() -> None:
    stuck = parse_systemctl_show(SHOW_AUTO_RESTART)
    assert stuck == UnitState("restarting", "activating (auto-restart)", None, restarts=0)
    assert stuck.describe() == "activating (auto-restart)"
    stopped = parse_systemctl_show(SHOW_INACTIVE)
    assert (stopped.condition, stopped.state, stopped.pid, stopped.loaded) == (
        "stopped",
        "inactive (dead)",
        None,
        True,
    )
    assert parse_systemctl_show(SHOW_NOT_FOUND).loaded is False
    running = parse_systemctl_show(show_active(11766, restarts=2))
    assert running == UnitState("running", "active (running)", 11766, restarts=2)
    assert running.describe() == "active (running), pid 11766, 2 restarts"


def test_parse_systemctl_show_other_states() -> None:
    starting = parse_systemctl_show("ActiveState=activating\nSubState=start\nMainPID=7\n")
    assert (starting.condition, starting.pid) == ("starting", 7)
    failed = parse_systemctl_show("ActiveState=failed\nSubState=failed\nMainPID=0\nNRestarts=5")
    assert (failed.condition, failed.restarts) == ("stopped", 5)
    assert parse_systemctl_show("").state == "unknown (unknown)"


# -- launchctl print ---------------------------------------------------------------------------


def test_parse_launchctl_print_running() -> None:
    state = parse_launchctl_print(launchctl_print("running", 4242, 1, "(never exited)"))
    assert state == UnitState(
        "running", "state = running", 4242, runs=1, last_exit="(never exited)"
    )
    assert state.describe() == "state = running, pid 4242, 1 run"


def test_parse_launchctl_print_restart_loop_ignores_nested_state() -> None:
    text = launchctl_print("spawn scheduled", None, 37, "1")
    assert "\t\tstate = active" in text  # the trap is really there
    state = parse_launchctl_print(text)
    assert (state.condition, state.state, state.pid) == (
        "restarting",
        "state = spawn scheduled",
        None,
    )
    assert state.describe() == "state = spawn scheduled, 37 runs, last exit code 1"


def test_parse_launchctl_print_other_states() -> None:
    stopped = parse_launchctl_print(launchctl_print("not running", None, 6, "78: EX_CONFIG"))
    assert (stopped.condition, stopped.last_exit) == ("stopped", "78: EX_CONFIG")
    first = parse_launchctl_print(launchctl_print("spawn scheduled", None, 0, "(never exited)"))
    assert first.condition == "starting"
    # "running" without a pid is not a process anyone can check
    assert parse_launchctl_print(launchctl_print("running", None, 1, "0")).condition == "stopped"
