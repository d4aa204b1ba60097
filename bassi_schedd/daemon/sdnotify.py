"""The systemd notify protocol (``Type=notify``, ``WatchdogSec=``) without a dependency.

systemd passes ``NOTIFY_SOCKET`` (a filesystem path, or an abstract name written with a leading
``@``); the protocol is one datagram per message, e.g. ``READY=1`` or ``WATCHDOG=1``. Outside
systemd (a terminal, launchd, tests) the variable is absent and every call is a silent no-op.
"""

from __future__ import annotations

import os
import socket


def _address(raw: str) -> str | bytes | None:
    """The sendto() address for a NOTIFY_SOCKET value, or None when we cannot use it."""
    if raw.startswith("@"):
        # Abstract namespace: the kernel name starts with a NUL byte instead of the '@'.
        return b"\0" + raw[1:].encode()
    if raw.startswith("/"):
        return raw
    return None  # e.g. "vsock:..." (systemd 253+ for VMs): not for a user daemon


def notify(message: str) -> bool:
    """Send ``message`` (e.g. "READY=1", "WATCHDOG=1", "STOPPING=1") to systemd.

    Returns True when a datagram was sent, False without ``NOTIFY_SOCKET`` or when sending failed;
    never raises, because a lost notification must not take the daemon down.
    """
    raw = os.environ.get("NOTIFY_SOCKET", "")
    address = _address(raw) if raw else None
    if address is None:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(message.encode(), address)
    except OSError:
        return False
    return True


def watchdog_interval_s() -> float | None:
    """The watchdog period systemd expects pings within (``WATCHDOG_USEC``), or None.

    None when no watchdog is set, the value is not a positive integer, or ``WATCHDOG_PID`` names
    another process (the variables leaked into a child that systemd does not watch).
    """
    raw_usec = os.environ.get("WATCHDOG_USEC", "")
    try:
        usec = int(raw_usec)
    except ValueError:
        return None
    if usec <= 0:
        return None
    raw_pid = os.environ.get("WATCHDOG_PID", "")
    if raw_pid:
        try:
            if int(raw_pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 1_000_000
