"""Keeping the daemon up: a failure while handling one task or run is logged and set aside.

An unexpected exception becomes one ``daemon.error`` line (with its traceback in one field) and
the loop goes on; the same problem is logged again at most once an hour. A full disk (ENOSPC,
EDQUOT, SQLITE_FULL) is no bug but a state: logged once as ``daemon.disk_full`` when it begins and
``daemon.disk_ok`` when a write succeeds again; meanwhile nothing new starts.
"""

from __future__ import annotations

import time
import traceback

import structlog

from bassi_schedd.store.schema import is_disk_full

log = structlog.get_logger()

REPEAT_AFTER_S = 3600.0


class Troubles:
    """What is failing now, so each problem is logged once rather than at every wake-up."""

    def __init__(self) -> None:
        self.disk_full: str | None = None  # the error, while the disk is full
        self._logged: dict[tuple[str, str, str], float] = {}

    def failed(self, exc: BaseException, stage: str, **fields: object) -> None:
        """Log ``exc``, raised while doing ``stage`` (plan, start, finish...) for ``fields``."""
        if is_disk_full(exc):
            if self.disk_full is None:
                log.error(
                    "daemon.disk_full",
                    stage=stage,
                    error=str(exc),
                    action="nothing new starts until a write succeeds again",
                    **fields,
                )
            self.disk_full = str(exc)
            return
        message = f"{type(exc).__name__}: {exc}"
        key = (stage, str(fields.get("task", "")), message)
        now = time.monotonic()
        last = self._logged.get(key)
        if last is not None and now - last < REPEAT_AFTER_S:
            return
        if len(self._logged) > 1000:  # messages that vary (ids, times) must not pile up
            self._logged = {k: t for k, t in self._logged.items() if now - t < REPEAT_AFTER_S}
        self._logged[key] = now
        log.error(
            "daemon.error",
            stage=stage,
            error=message,
            traceback="".join(traceback.format_exception(exc)),
            **fields,
        )

    def disk_ok(self) -> None:
        """A write went through: the disk has room again."""
        if self.disk_full is not None:
            log.info("daemon.disk_ok", previous_error=self.disk_full)
            self.disk_full = None
