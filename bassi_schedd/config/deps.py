"""What a loaded task depends on besides its file (prompt file, cwd), as fingerprints: a change
re-validates the task; no change means no re-parse (the loader's cache)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def file_fingerprint(st: os.stat_result) -> tuple[int, ...]:
    """What says "this file may have changed": content identity plus the bits we refuse on."""
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_mode, st.st_uid)


def dep_fingerprint(kind: str, path: str) -> object:
    """The current state of something a task depends on (its prompt file, its cwd)."""
    if kind == "dir":
        return os.path.isdir(path)
    try:
        return file_fingerprint(os.stat(path))
    except OSError:
        return None


@dataclass
class Deps:
    """Things outside the task file whose change must re-validate the task."""

    items: list[tuple[str, str, object]] = field(default_factory=list)

    def add(self, kind: str, path: Path) -> None:
        self.items.append((kind, str(path), dep_fingerprint(kind, str(path))))

    def unchanged(self) -> bool:
        return all(dep_fingerprint(kind, p) == fp for kind, p, fp in self.items)
