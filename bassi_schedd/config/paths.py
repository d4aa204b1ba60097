"""The BASSI_HOME layout (SPEC 2) and the permission rules for it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bassi_schedd.core.errors import UserError

DIR_MODE = 0o700
FILE_MODE = 0o600


@dataclass(frozen=True)
class Home:
    """Every path the daemon and CLI use, derived from one root."""

    root: Path

    @property
    def tasks_dir(self) -> Path:
        return self.root / "tasks"

    @property
    def config_file(self) -> Path:
        return self.root / "schedd.toml"

    @property
    def schedd_dir(self) -> Path:
        return self.root / "schedd"

    @property
    def state_db(self) -> Path:
        return self.schedd_dir / "state.db"

    @property
    def pid_file(self) -> Path:
        return self.schedd_dir / "schedd.pid"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "schedd.log"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def run_dir(self, task: str, run_id: str) -> Path:
        """Folder of one run: runs/NAME/RUN_ID."""
        return self.runs_dir / task / run_id

    def ensure(self, *folders: Path) -> None:
        """Create the root and ``folders`` (default: all a daemon needs), 0700; UserError if not."""
        wanted = folders or (self.tasks_dir, self.schedd_dir, self.logs_dir, self.runs_dir)
        for d in (self.root, *wanted):
            try:
                make_private_dir(d)
            except OSError as e:
                raise UserError(
                    f"cannot create the folder {d} (BASSI_HOME {self.root}): {e.strerror or e}"
                ) from None


def resolve_home(cli_home: str | None = None) -> Home:
    """``--home`` wins, then ``BASSI_HOME``, then ``~/.bassi``."""
    raw = cli_home or os.environ.get("BASSI_HOME") or "~/.bassi"
    return Home(Path(raw).expanduser().absolute())


def make_private_dir(path: Path) -> None:
    """mkdir -p with mode 0700 for every folder we create (umask would otherwise widen it)."""
    if path.is_dir():
        return
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, DIR_MODE)


def write_private_file(path: Path, data: str | bytes) -> None:
    """Write a file created 0600, replacing it atomically so readers never see half of it."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, raw)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def service_path(raw: str | None, program: str) -> str:
    """The PATH a service (or an exported unit) should get: the user's, without empty, relative
    (meaningless in a service, and a hijack risk) or repeated entries, plus the folder of
    ``program`` last, so runs find the same tools as by hand."""
    parts: list[str] = []
    for entry in (raw or DEFAULT_PATH).split(os.pathsep):
        if entry and os.path.isabs(entry) and entry not in parts:
            parts.append(entry)
    folder = os.path.dirname(program)
    if folder not in parts:
        parts.append(folder)
    return os.pathsep.join(parts)
