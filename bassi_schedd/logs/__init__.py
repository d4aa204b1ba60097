"""Structured logs: the event list and structlog set-up, the rotating, redacting log file,
and reading the log back for ``bassi-schedd logs``.

May import ``core`` and ``config``.
"""
