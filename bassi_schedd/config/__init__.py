"""Reading what the user wrote: BASSI_HOME layout, task files, schedd.toml, validation, the
one guarded reader of user files, TOML reading and byte-preserving edits, and the task loader.

May import ``core``; knows nothing of the store, processes or the daemon.
"""
