"""The daemon: the loop (the only place that sleeps), signals, ticks and dispatching, watching
runs, start-up recovery, retention, sd_notify, the checks of the home it watches, fault guards.

May import every package but ``ops``, ``agent`` and ``cli``.
"""
