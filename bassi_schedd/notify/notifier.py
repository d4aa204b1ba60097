"""Telling the user about runs: notify programs, desktop banners and health-check pings.

The scheduler calls the hooks (``run_started``, ``run_ended``, ``time_missed``); they only put a
job on a queue and return, so a slow or hanging receiver never delays a run. A few daemon worker
threads deliver the jobs. Jobs of one (channel, task) lane are delivered in order, one at a time,
so a health check never sees ``/start`` after the run's end ping; different lanes run side by
side. Every delivery is bounded: programs are killed after ``command_timeout_s``, HTTP pings give
up after ``http_tries`` attempts of ``http_timeout_s`` each.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import structlog

from bassi_schedd.config.paths import Home
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import DaemonConfig, NotifySpec, TaskSpec
from bassi_schedd.notify.delivery import (
    Children,
    Outcome,
    desktop_argv,
    elapsed_s,
    http_ping,
    ping_url,
    redact_url,
    run_program,
)
from bassi_schedd.notify.record import (
    desktop_text,
    effective_healthcheck_url,
    effective_notify,
    end_event,
    healthcheck_suffix,
    notify_problems,
    run_record,
)
from bassi_schedd.runner.rundir import child_env
from bassi_schedd.store.state import RunRow

log = structlog.get_logger()

Channel = Literal["command", "desktop", "healthcheck"]
# What a desktop session needs to show a banner; the clean run environment drops these.
# Missed times recorded within this long of each other make one notification (missed_count).
MISSED_SETTLE_S = 1.0
DESKTOP_ENV = ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")
__all__ = ["Notifier", "notify_problems"]


@dataclass
class _Job:
    """One delivery. Mutable only so a queued ``missed`` job can absorb later missed times."""

    channel: Channel
    task: TaskSpec
    run: RunRow
    event: str  # a notify event, or the ping kind for health checks: start|success|fail|<rc>
    url: str = ""
    missed_count: int = 1
    queued_mono: float = field(default_factory=time.monotonic)

    @property
    def lane(self) -> str:
        return f"{self.channel}:{self.task.name}"


class Notifier:
    """Asynchronous, bounded delivery of run notifications (see the module docstring)."""

    def __init__(
        self,
        home: Home,
        config: DaemonConfig,
        *,
        parent_env: Mapping[str, str] | None = None,
        command_timeout_s: float = 30.0,
        http_timeout_s: float = 10.0,
        http_tries: int = 3,
        http_backoff_s: float = 1.0,
        workers: int = 4,
        max_pending: int = 1000,
    ):
        self.home = home
        self.config = config
        self.parent_env = dict(os.environ if parent_env is None else parent_env)
        self.command_timeout_s = command_timeout_s
        self.http_timeout_s = http_timeout_s
        self.http_tries = http_tries
        self.http_backoff_s = http_backoff_s
        self.max_pending = max_pending
        self.children = Children()
        self._abort = threading.Event()
        self._cv = threading.Condition()
        self._lanes: dict[str, deque[_Job]] = {}
        self._ready: deque[str] = deque()  # lanes with jobs and no worker on them
        self._busy: set[str] = set()
        self._pending = 0
        self._closing = False
        self._desktop_missing_logged = False
        self._threads = [
            threading.Thread(target=self._work, name=f"bassi-notify-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    # -- hooks (called by the scheduler; never block) ----------------------------------------

    def run_started(self, task: TaskSpec, run: RunRow) -> None:
        """A run started: ping ``URL/start``."""
        url = effective_healthcheck_url(task, self.config)
        if url is not None:
            self._submit(_Job("healthcheck", task, run, "start", ping_url(url, "start")))

    def run_ended(
        self, task: TaskSpec, run: RunRow, previous_ok: bool | None, *, changed: bool = False
    ) -> None:
        """A run finished (``run`` is its final row); ``previous_ok`` is last_ok before it;
        ``changed``: a success whose result differs from the previous success's."""
        url = effective_healthcheck_url(task, self.config)
        suffix = healthcheck_suffix(run.status, run.exit_code)
        if url is not None and suffix is not None:
            kind = suffix or "success"
            self._submit(_Job("healthcheck", task, run, kind, ping_url(url, suffix)))
        spec = effective_notify(task, self.config)
        if spec is not None:
            event = end_event(run.status, previous_ok, spec.on, changed=changed)
            if event is not None:
                self._notify(spec, task, run, event)

    def budget_exceeded(self, task: TaskSpec, run: RunRow) -> None:
        """A run was not started because a spend cap is spent (SPEC 10)."""
        spec = effective_notify(task, self.config)
        if spec is not None and "budget" in spec.on:
            self._notify(spec, task, run, "budget")

    def time_missed(self, task: TaskSpec, run: RunRow) -> None:
        """A scheduled time was recorded as ``missed``."""
        spec = effective_notify(task, self.config)
        if spec is not None and run.status == RunStatus.MISSED and "missed" in spec.on:
            self._notify(spec, task, run, "missed")

    def close(self, timeout_s: float) -> None:
        """Deliver what is queued for up to ``timeout_s``; then drop the rest, kill programs."""
        deadline = time.monotonic() + timeout_s
        with self._cv:
            self._closing = True
            self._cv.notify_all()
            while self._pending > 0 and (left := deadline - time.monotonic()) > 0:
                self._cv.wait(left)
            dropped = sum(len(q) for q in self._lanes.values())
            self._lanes = {k: q for k, q in self._lanes.items() if k in self._busy}
            for q in self._lanes.values():
                q.clear()
            self._ready.clear()
            self._pending -= dropped
        self._abort.set()
        killed = self.children.kill_all()
        if dropped or killed:
            log.warning(
                "notify.failed",
                reason="the daemon stopped before delivery",
                dropped=dropped,
                killed=killed,
            )

    # -- queue --------------------------------------------------------------------------------

    def _notify(self, spec: NotifySpec, task: TaskSpec, run: RunRow, event: str) -> None:
        if spec.command:
            self._submit(_Job("command", task, run, event))
        if spec.desktop:
            self._submit(_Job("desktop", task, run, event))

    def _submit(self, job: _Job) -> None:
        with self._cv:
            if self._closing:
                return
            lane = self._lanes.setdefault(job.lane, deque())
            if job.event == "missed" and lane and lane[-1].event == "missed":
                # Many times missed at once (a long outage) make one notification, not hundreds.
                lane[-1].missed_count += 1
                lane[-1].run = job.run
                return
            if self._pending >= self.max_pending:
                self._log_failed(job, "too many notifications waiting; this one is dropped")
                return
            lane.append(job)
            self._pending += 1
            if job.lane not in self._busy and len(lane) == 1:
                self._ready.append(job.lane)
                self._cv.notify()

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._ready and not self._closing:
                    self._cv.wait()
                if not self._ready:
                    return
                key = self._ready.popleft()
                job = self._lanes[key].popleft()
                self._busy.add(key)
            if job.event == "missed":
                self._gather_missed(key, job)
            try:
                self._deliver(job)
            except Exception as e:  # a bug here must not kill the worker
                with contextlib.suppress(Exception):
                    self._log_failed(job, f"internal error: {type(e).__name__}: {e}")
            with self._cv:
                self._busy.discard(key)
                self._pending -= 1
                if self._lanes.get(key):
                    self._ready.append(key)
                else:
                    self._lanes.pop(key, None)
                self._cv.notify_all()

    def _gather_missed(self, key: str, job: _Job) -> None:
        """Wait a moment so the other times of one outage join this notification."""
        self._abort.wait(max(job.queued_mono + MISSED_SETTLE_S - time.monotonic(), 0.0))
        with self._cv:
            lane = self._lanes.get(key)
            while lane and lane[0].event == "missed":
                later = lane.popleft()
                job.missed_count += later.missed_count
                job.run = later.run
                self._pending -= 1

    # -- delivery -----------------------------------------------------------------------------

    def _deliver(self, job: _Job) -> None:
        start = time.monotonic()
        if job.channel == "healthcheck":
            outcome = http_ping(
                job.url, self.http_timeout_s, self.http_tries, self.http_backoff_s, self._abort
            )
        elif job.channel == "command":
            outcome = self._run_command(job)
        else:
            maybe = self._desktop(job)
            if maybe is None:
                return
            outcome = maybe
        fields = self._fields(job)
        if outcome.ok:
            log.info("notify.sent", **fields, detail=outcome.detail, duration_s=elapsed_s(start))
        else:
            self._log_failed(job, outcome.detail, outcome.output, elapsed_s(start))

    def _run_command(self, job: _Job) -> Outcome:
        spec = effective_notify(job.task, self.config)
        assert spec is not None and spec.command
        record = run_record(job.task, job.run, job.event, job.missed_count)
        env = self._env(job)
        payload = (json.dumps(record) + "\n").encode()
        argv = list(spec.command)
        return run_program(argv, payload, env, job.task.cwd, self.command_timeout_s, self.children)

    def _desktop(self, job: _Job) -> Outcome | None:
        title, body = desktop_text(job.task, job.run, job.event, job.missed_count)
        urgent = job.event in ("failure", "timeout")
        argv = desktop_argv(title, body, urgent, self.parent_env.get("PATH", os.defpath))
        if argv is None:
            with self._cv:  # workers of other tasks' lanes may get here at the same time
                first, self._desktop_missing_logged = not self._desktop_missing_logged, True
            if first:
                log.info(
                    "notify.skipped",
                    channel="desktop",
                    task=job.task.name,
                    reason="neither notify-send nor osascript is on the PATH",
                )
            return None
        env = self._env(job)
        env.update({k: self.parent_env[k] for k in DESKTOP_ENV if k in self.parent_env})
        return run_program(argv, b"", env, job.task.cwd, self.command_timeout_s, self.children)

    def _env(self, job: _Job) -> dict[str, str]:
        """The clean run environment plus BASSI_EVENT; BASSI_RUN_DIR is empty without a run."""
        run = job.run
        scheduled = run.scheduled_for or run.started_at or datetime.now(UTC)
        run_dir = Path(run.run_dir) if run.run_dir else Path()
        env = child_env(
            self.home, self.config, job.task, run.run_id, scheduled, run_dir, self.parent_env
        )
        if not run.run_dir:
            env["BASSI_RUN_DIR"] = ""
        env["BASSI_EVENT"] = job.event
        return env

    def _fields(self, job: _Job) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "task": job.task.name,
            "run_id": job.run.run_id,
            "channel": job.channel,
            "kind": job.event,  # not "event": that is the log line's own name
        }
        if job.channel == "healthcheck":
            fields["url"] = redact_url(job.url)
        return fields

    def _log_failed(
        self, job: _Job, reason: str, output: str = "", duration_s: float | None = None
    ) -> None:
        extra: dict[str, Any] = {"output": output} if output else {}
        if duration_s is not None:
            extra["duration_s"] = duration_s
        log.warning("notify.failed", **self._fields(job), reason=reason, **extra)
