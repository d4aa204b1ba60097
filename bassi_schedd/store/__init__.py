"""The state on disk: the SQLite state database (schema, migrations and every SQL statement)
and the per-home daemon lock.

May import ``core`` and ``config``.
"""
