"""``stop RUN_ID|TASK``: ask the running daemon to stop a run, or every running run of a task.

Shared by the CLI and the dashboard. Like ``trigger``, the request goes through the state DB (the
daemon is the only one that may signal and record its runs) and SIGUSR1 wakes the daemon; the
caller waits until the daemon answered with the runs it is stopping, then until they ended
(SIGTERM to each run's tree, SIGKILL after the grace: status ``cancelled``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bassi_schedd.config.paths import Home
from bassi_schedd.config.taskfile import NAME_RE
from bassi_schedd.core.errors import UsageError, UserError
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.runner.kill import KILL_GRACE_S
from bassi_schedd.store.lock import read_holder
from bassi_schedd.store.state import QueryError, StateDB, open_existing

RUN_ID_RE = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
# The daemon answers at once when woken; this long means it is stuck or stopping.
ANSWER_WAIT_S = 10.0
# The runs end within the kill grace (schedd.toml kill_grace), plus time to notice and record it.
END_SLACK_S = 10.0


@dataclass
class StopResult:
    """The runs the daemon stopped for one request, and how each ended (None: still ending)."""

    target: str
    daemon_pid: int
    ended: dict[str, RunStatus | None] = field(default_factory=dict)

    @property
    def stopped_any(self) -> bool:
        return bool(self.ended)


def check_target(target: str) -> None:
    """A run id (``20261206T101500Z-a1b2c3``) or a task name; else a usage error."""
    if not (RUN_ID_RE.match(target) or NAME_RE.match(target)):
        raise UsageError(f"'{target}' is neither a run id nor a task name")


def request_stop(home: Home, target: str, *, wait_end: bool = True) -> StopResult:
    """Have the daemon stop ``target``; raises UserError when no daemon takes the request."""
    check_target(target)
    pid = read_holder(home)
    if pid is None:
        raise UserError(f"no daemon is running for {home.root}, so no run of it is running")
    db = open_existing(home)
    if db is None:
        raise UserError(f"no state database in {home.root}: nothing has run yet")
    try:
        try:
            request_id = db.add_stop_request(target, datetime.now(UTC))
        except QueryError as e:
            raise UserError(f"cannot queue the request in {home.state_db}: {e}") from None
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            _forget(db, request_id)
            raise UserError(f"the daemon (pid {pid}) exited before it could be woken") from None
        run_ids = _wait_answer(home, db, request_id, pid)
        result = StopResult(target, pid, dict.fromkeys(run_ids))
        if wait_end:
            _wait_ended(db, result, _grace_s(home) + END_SLACK_S)
        return result
    finally:
        db.close()


def _forget(db: StateDB, request_id: int) -> None:
    with contextlib.suppress(QueryError), db.tx() as tx:
        tx.forget_stop_request(request_id)


def _wait_answer(home: Home, db: StateDB, request_id: int, pid: int) -> list[str]:
    deadline = time.monotonic() + ANSWER_WAIT_S
    while True:
        answer = db.stop_answer(request_id)
        if answer is not None:
            return answer
        if read_holder(home) != pid:
            _forget(db, request_id)
            raise UserError(f"the daemon (pid {pid}) stopped before it took the request")
        if time.monotonic() > deadline:
            _forget(db, request_id)
            raise UserError(
                f"the daemon (pid {pid}) has not taken the request within "
                f"{ANSWER_WAIT_S:.0f} s (see 'bassi-schedd logs')"
            )
        time.sleep(0.05)


def _grace_s(home: Home) -> float:
    from bassi_schedd.config.settings import load_config
    from bassi_schedd.core.errors import TaskFileError

    try:
        return load_config(home).kill_grace_s
    except TaskFileError:
        return KILL_GRACE_S  # the daemon keeps the settings it has; the default is a fair guess


def _wait_ended(db: StateDB, result: StopResult, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        for run_id in result.ended:
            row = db.get_run(run_id)
            if row is not None and row.status != RunStatus.RUNNING:
                result.ended[run_id] = row.status
        if all(s is not None for s in result.ended.values()):
            return
        time.sleep(0.1)
