"""Running a child: the run folder and clean environment, spawning an isolated process,
killing its whole tree, and capping its output.

May import ``core`` and ``config``.
"""
