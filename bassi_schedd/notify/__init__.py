"""Telling the user about runs: notify programs, desktop banners and health-check pings,
delivered off the scheduling thread with bounded time.

May import ``core``, ``config``, ``runner``, ``store`` and ``logs``.
"""
