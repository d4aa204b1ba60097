"""service_state: the reason line of a failed systemctl/launchctl and the unit's state, read from
outputs captured from the real tools (systemd 252 user manager; launchd as public reports and
captures show it)."""

from __future__ import annotations

import pytest
from support.service_fakes import (
    BOOTSTRAP_EIO,
    DISABLE_NOW,
    ENABLE_NOW_LOCK_HELD,
    JOB_FAILED,
    SHOW_AUTO_RESTART,
    SHOW_INACTIVE,
    SHOW_NOT_FOUND,
    launchctl_print,
    show_active,
)

from bassi_schedd.ops.service_state import (
    UnitState,
    parse_launchctl_print,
    parse_systemctl_show,
    reason_line,
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
