"""What the running daemon re-checks at every wake-up: its state DB file, its lock, schedd.toml.

A daemon whose state DB was deleted or replaced stops: its rows (and every `trigger` request)
would go to a file nobody else can open. A deleted or overwritten pid file is written again.
``schedd.toml`` is read again when it changed or on SIGHUP; an invalid one keeps the settings in
use and is reported once.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import structlog

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.core.spec import DaemonConfig
from bassi_schedd.store.lock import LockLostError, PidLock

log = structlog.get_logger()


class HomeWatch:
    """Identity of the files the daemon holds on to, compared with what is on disk now."""

    def __init__(self, home: Home, lock: PidLock):
        self.home = home
        self.lock = lock
        self._state_id: tuple[int, int] | None = None
        self._config_fp = fingerprint(home.config_file)
        self._config_error: str | None = None

    def state_db_opened(self) -> None:
        """Remember which file the daemon's state DB connection uses."""
        self._state_id = _file_id(self.home.state_db)

    def lost(self) -> str | None:
        """Why the daemon must stop now (one sentence), or None. Repairs the pid file.

        Raises OSError when the pid file cannot be written again (retried at the next call).
        """
        db_path = self.home.state_db
        if _file_id(db_path) != self._state_id:
            return (
                f"the state database {db_path} was deleted or replaced while the daemon ran; "
                "it stopped: start it again to go on with a new state database"
            )
        try:
            repaired = self.lock.check()
        except LockLostError as e:
            return f"the daemon lock was lost ({e}); it stopped: start it again"
        if repaired is not None:
            log.warning("lock.restored", pid_file=str(self.lock.path), reason=repaired)
        return None

    def new_config(self, current: DaemonConfig, hup: bool) -> DaemonConfig | None:
        """schedd.toml's settings when they differ from ``current``, else None.

        Read when the file changed (or vanished: defaults) or on SIGHUP. An invalid file is
        logged once per distinct problem (``config.invalid``, naming the file and key) and
        changes nothing.
        """
        from bassi_schedd.config.settings import load_config

        fp = fingerprint(self.home.config_file)
        if fp == self._config_fp and not hup:
            return None
        self._config_fp = fp
        try:
            new = load_config(self.home)
        except UserError as e:
            if str(e) != self._config_error:
                log.error(
                    "config.invalid",
                    file=str(self.home.config_file),
                    error=str(e),
                    kept="the settings in use",
                )
            self._config_error = str(e)
            return None
        self._config_error = None
        if new == current:
            return None
        changed = [f.name for f in fields(new) if getattr(new, f.name) != getattr(current, f.name)]
        log.info("config.changed", file=str(self.home.config_file), changed=changed)
        return new


def _file_id(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def fingerprint(path: Path) -> tuple[int, ...] | None:
    """What tells a file's content may have changed (None: no file)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns
