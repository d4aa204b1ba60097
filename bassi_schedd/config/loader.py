"""Loading ``tasks/*.toml`` again and again, cheaply: only changed files are parsed.

The daemon calls :meth:`TaskLoader.load` every tick. A file is re-read only when its
(mtime, size, inode, mode, owner) changed, or something it depends on (its prompt file, its cwd)
did; otherwise the previous :class:`TaskSpec` object (or the previous error) is kept, so that
identity (``old is new``) means "unchanged" to the scheduler. One bad file never stops the others.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path

from bassi_schedd.config.deps import Deps, file_fingerprint
from bassi_schedd.config.paths import Home
from bassi_schedd.config.settings import load_config, system_timezone
from bassi_schedd.config.taskfile import (
    NAME_RE,
    is_task_file_name,
    load_task_file,
    tasks_dir_error,
)
from bassi_schedd.core.errors import TaskFileError, printable
from bassi_schedd.core.spec import DaemonConfig, TaskSpec


@dataclass
class LoadResult:
    """One reload. ``added``/``changed``/``removed`` compare ``tasks`` with the previous load:
    a task that became invalid is in ``removed`` (and in ``errors``); one that became valid
    again is in ``added``."""

    tasks: dict[str, TaskSpec]
    errors: dict[str, TaskFileError]
    # The tasks folder itself is refused (writable by others): no task is loaded, and this error
    # is also in ``errors`` (keyed by the folder) for readers that just list problems.
    folder_error: TaskFileError | None = None
    added: set[str] = field(default_factory=set)
    changed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)


@dataclass
class _Entry:
    fingerprint: tuple[int, ...]
    deps: Deps
    spec: TaskSpec | None
    error: TaskFileError | None

    def deps_unchanged(self) -> bool:
        return not self.deps.items or self.deps.unchanged()


def error_key(path: Path) -> str:
    """How an invalid file is named in ``LoadResult.errors``: its task name, else its path
    (escaped: the name may hold bytes that are not UTF-8, or control characters)."""
    name = path.name.removesuffix(".toml")
    return name if NAME_RE.match(name) else printable(str(path))


class TaskLoader:
    """Keeps the parsed tasks of one home between reloads."""

    def __init__(self, home: Home, config: DaemonConfig):
        self.home = home
        self.config = config
        self._entries: dict[str, _Entry] = {}
        self._tasks: dict[str, TaskSpec] = {}
        self._errors: dict[str, TaskFileError] = {}
        self._folder_refused = False
        self.parses = 0  # files actually read and validated (for tests and benchmarks)

    def set_config(self, config: DaemonConfig) -> None:
        """New schedd.toml settings: the next load validates every file again against them
        (a task that comes out the same keeps its spec object, so it is not "changed")."""
        self.config = config
        self._entries = {k: replace(e, fingerprint=()) for k, e in self._entries.items()}

    def load(self) -> LoadResult:
        """Scan ``tasks/`` once; re-validate only what changed."""
        previous_entries = self._entries
        entries: dict[str, _Entry] = {}
        tasks_dir = self.home.tasks_dir
        folder_error = tasks_dir_error(tasks_dir)
        if folder_error is not None:
            return self._refuse_folder(folder_error)
        dirty = self._folder_refused
        self._folder_refused = False
        try:
            with os.scandir(tasks_dir) as it:
                for dir_entry in it:
                    file_name = dir_entry.name
                    if not is_task_file_name(file_name):
                        continue
                    try:
                        st = dir_entry.stat()
                    except OSError:
                        try:  # a symlink leading nowhere: reported (by the read) as invalid
                            st = dir_entry.stat(follow_symlinks=False)
                        except OSError:
                            continue  # removed between the listing and the stat
                    if stat.S_ISDIR(st.st_mode):
                        continue
                    fp = file_fingerprint(st)
                    old = previous_entries.get(file_name)
                    if old is not None and old.fingerprint == fp and old.deps_unchanged():
                        entries[file_name] = old
                        continue
                    dirty = True
                    entry = self._parse(tasks_dir / file_name, fp)
                    if old is not None and old.spec is not None and entry.spec == old.spec:
                        entry.spec = old.spec  # same content (a touch, an identical save)
                    entries[file_name] = entry
        except FileNotFoundError:
            pass
        except OSError as e:
            # Not a folder, unreadable...: no task can be trusted until it is back (then every
            # file is read anew).
            return self._refuse_folder(_folder_error(tasks_dir, e))
        self._entries = entries
        if not dirty and len(entries) == len(previous_entries):
            # Nothing re-read and no file gone: the same tasks and errors as last time.
            return LoadResult(tasks=dict(self._tasks), errors=dict(self._errors))

        tasks: dict[str, TaskSpec] = {}
        errors: dict[str, TaskFileError] = {}
        for file_name, entry in sorted(entries.items()):
            if entry.spec is not None:
                tasks[entry.spec.name] = entry.spec
            elif entry.error is not None:
                errors[error_key(tasks_dir / file_name)] = entry.error
        previous = self._tasks
        self._tasks, self._errors = tasks, errors
        return LoadResult(
            tasks=dict(tasks),
            errors=dict(errors),
            added=set(tasks) - set(previous),
            changed={n for n in tasks.keys() & previous.keys() if tasks[n] is not previous[n]},
            removed=set(previous) - set(tasks),
        )

    def _refuse_folder(self, error: TaskFileError) -> LoadResult:
        """Nothing is loaded from a folder that is unsafe or unusable (the previous tasks go)."""
        previous = self._tasks
        self._entries, self._tasks, self._folder_refused = {}, {}, True
        self._errors = {printable(error.path): error}
        return LoadResult(
            tasks={}, errors=dict(self._errors), folder_error=error, removed=set(previous)
        )

    def _parse(self, path: Path, fingerprint: tuple[int, ...]) -> _Entry:
        self.parses += 1
        deps = Deps()
        try:
            spec = load_task_file(path, self.config, deps)
        except TaskFileError as e:
            return _Entry(fingerprint, deps, None, e)
        except Exception as e:  # a bug on one file must not stop the daemon
            err = TaskFileError(str(path), f"could not be loaded ({type(e).__name__}: {e})")
            return _Entry(fingerprint, deps, None, err)
        return _Entry(fingerprint, deps, spec, None)


def _folder_error(tasks_dir: Path, e: OSError) -> TaskFileError:
    if tasks_dir.exists() and not tasks_dir.is_dir():
        problem, until = "is not a folder", "it is a folder again"
    else:
        problem, until = f"cannot be read ({e.strerror or e})", "it can be read again"
    return TaskFileError(str(tasks_dir), f"the task folder {problem}; no task runs until {until}")


__all__ = [
    "LoadResult",
    "TaskLoader",
    "error_key",
    "load_config",
    "load_task_file",
    "system_timezone",
]
