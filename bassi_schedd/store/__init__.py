"""The state on disk: the SQLite state database (schema, migrations and every SQL statement)
and the per-home daemon lock.

The only package that imports sqlite3 (a contract in ``make lint``): others read through
``StateDB`` methods, write through the methods of its transactions (``StateDB.tx``), and catch
``StateDBError`` and ``QueryError``.

May import ``core`` and ``config``.
"""
