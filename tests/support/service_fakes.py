"""Fake service tools and what the real ones print, shared by the install, doctor and
service_state tests.

``FAKE`` stands in for systemctl, loginctl and launchctl (one script under each name): it logs
each call to ``$FAKE_LOG`` and fails or answers as the ``FAKE_*`` variables say. The constants
and builders below are outputs captured from the real tools (systemd 252 user manager; launchd
as public reports and captures show it).
"""

from __future__ import annotations

FAKE = r"""#!/bin/sh
# `systemctl show` of an installed unit that is not running, as systemd 252 prints it
SHOW_STOPPED='MainPID=0
NRestarts=0
LoadState=loaded
ActiveState=inactive
SubState=dead'
name=$(basename "$0")
{ printf '%s' "$name"; for a in "$@"; do printf ' %s' "$a"; done; printf '\n'; } >> "$FAKE_LOG"
if [ -n "$FAKE_FAIL" ]; then
  case "$name $*" in
    *"$FAKE_FAIL"*) echo "${FAKE_STDERR:-fake failure of $name $1}" >&2; exit 1;;
  esac
fi
if [ -n "$FAKE_FAIL_ONCE" ] && [ ! -e "$FAKE_LOG.failed" ]; then
  case "$name $*" in *"$FAKE_FAIL_ONCE"*) : > "$FAKE_LOG.failed"; echo "busy" >&2; exit 5;; esac
fi
case "$name $1" in
  "loginctl show-user") echo "Linger=${FAKE_LINGER:-yes}";;
  "launchctl print")
    if [ "${FAKE_LOADED:-0}" != 1 ]; then
      echo "Could not find service \"com.bassi.schedd\" in domain for user gui: $(id -u)" >&2
      exit 113
    fi
    [ -z "$FAKE_PRINT" ] || cat "$FAKE_PRINT";;
  "systemctl --user") if [ "$2" = show ]; then printf '%s\n' "${FAKE_SHOW:-$SHOW_STOPPED}"; fi;;
esac
exit 0
"""


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
