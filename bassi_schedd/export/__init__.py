"""Exporting tasks to schedulers that run across machines (SPEC 12): Kubernetes CronJobs and
systemd timers.

Pure translation (``schedules``: a parsed schedule to ``OnCalendar=`` lines or a Kubernetes
cron line; ``kubernetes`` and ``systemd``: a task to manifests or unit files; ``notes``: the
keys that do not carry over) is kept apart from ``collect``, the one module here that reads
files (through the config loader) and writes the results.

Sits beside ``ops`` and ``daemon``: may import ``config`` and ``core`` (and ``yaml``), never
``daemon``, ``ops``, ``agent``, ``runner``, ``store`` or ``cli``.
"""
