"""Operating the daemon: installing the service (systemd, launchd), doctor, status, the
service state, and the demo home.

May import every package but ``daemon``, ``agent`` and ``cli``.
"""
