"""Reloading at a tick or on SIGHUP: schedd.toml, then the task files, handed to the scheduler."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from types import EllipsisType

import structlog

from bassi_schedd.config.loader import TaskLoader
from bassi_schedd.config.paths import Home
from bassi_schedd.daemon.homewatch import HomeWatch
from bassi_schedd.daemon.scheduler import Scheduler

log = structlog.get_logger()


@dataclass
class Reloader:
    """What the daemon re-reads, and the problems it already reported."""

    home: Home
    watch: HomeWatch
    loader: TaskLoader
    log_stderr: EllipsisType | None
    logged_errors: dict[str, str] = field(default_factory=dict)

    def reload(self, sched: Scheduler, now: datetime, hup: bool = False) -> None:
        """Re-read schedd.toml and the task files; hand the scheduler what changed (logged once
        per distinct problem, not per tick)."""
        self._reload_config(sched, hup)
        result = self.loader.load()
        for name in sorted(result.added):
            log.info("task.loaded", task=name, file=str(result.tasks[name].path))
        for name in sorted(result.changed):
            log.info("task.changed", task=name, file=str(result.tasks[name].path))
        for name in sorted(result.removed):
            log.info("task.removed", task=name)
        errors = {str(k): str(e) for k, e in result.errors.items()}
        for key, message in sorted(errors.items()):
            if self.logged_errors.get(key) != message:  # once per distinct problem, not per tick
                log.error("task.invalid", task=key, error=message)
        self.logged_errors = errors
        if hup:
            log.info("daemon.reload", tasks=len(result.tasks), invalid=len(result.errors))
        self._register_secrets(sched, result.tasks.values())
        sched.set_tasks(dict(result.tasks), now, errors)

    def _reload_config(self, sched: Scheduler, hup: bool) -> None:
        from bassi_schedd.logs.setup import configure_logging

        old = sched.config
        new = self.watch.new_config(old, hup)
        if new is None:
            return
        sched.config = new
        sched.runs.kill_grace_s = new.kill_grace_s
        if sched.notifier is not None:
            sched.notifier.config = new
            sched.notifier.command_timeout_s = new.notify_timeout_s
        self.loader.set_config(new)  # task defaults (timezone...) come from it
        if (new.log_max_bytes, new.log_backups) != (old.log_max_bytes, old.log_backups):
            configure_logging(
                self.home.log_file,
                max_bytes=new.log_max_bytes,
                backups=new.log_backups,
                stderr=self.log_stderr,
            )

    def _register_secrets(self, sched: Scheduler, specs: object) -> None:
        from bassi_schedd.logs.setup import register_secret_values, secret_env_values

        variables = [pair for s in specs for pair in s.env]  # type: ignore[attr-defined]
        variables += [(n, os.environ[n]) for n in sched.config.pass_env if n in os.environ]
        register_secret_values(secret_env_values(variables))
