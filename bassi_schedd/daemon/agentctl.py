"""The daemon's side of SPEC 10's agent controls, called from the scheduler at a few points:
the budget check and the previous success's facts before a run starts, ``stop`` requests, and
the gate's verdict and result hash when a run ends.

Kept out of scheduler.py and runwatch.py so those stay about scheduling and watching.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from bassi_schedd.core.records import iso_utc
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import TaskSpec
from bassi_schedd.runner.previous import RunExtras, last_result, result_sha256, session_id
from bassi_schedd.store.spend import check_budget
from bassi_schedd.store.state import RunRow, StateDB

if TYPE_CHECKING:
    from bassi_schedd.daemon.scheduler import Scheduler

log = structlog.get_logger()


def controls_for_start(
    sched: Scheduler, row: RunRow, spec: TaskSpec, now: datetime
) -> RunExtras | None:
    """The extras of a run about to start, or None when a cap is spent (then the row is
    recorded ``budget_exceeded``, logged ``run.skipped`` and notified as ``budget``)."""
    max_budget = spec.agent.max_budget_usd
    if spec.is_agent:
        decision = check_budget(sched.db, spec, sched.config, now)
        if decision.exceeded is not None:
            _refuse(sched, row, spec, decision.exceeded)
            return None
        max_budget = decision.max_budget_usd
    previous = sched.db.last_success(spec.name)
    prev_dir = Path(previous.run_dir) if previous is not None and previous.run_dir else None
    resume = session_id(prev_dir) if spec.agent.continue_session else None
    return RunExtras(last_result(prev_dir, spec.is_agent), max_budget, resume)


def _refuse(sched: Scheduler, row: RunRow, spec: TaskSpec, why: str) -> None:
    with sched.db.tx() as tx:
        tx.set_status(row.run_id, RunStatus.BUDGET_EXCEEDED, why)
    log.warning(
        "run.skipped",
        task=row.task,
        run_id=row.run_id,
        scheduled_for=iso_utc(row.scheduled_for),
        trigger=row.trigger,
        status=RunStatus.BUDGET_EXCEEDED,
        reason=why,
    )
    if sched.notifier is not None:
        try:
            refused = sched.db.get_run(row.run_id)
            if refused is not None:
                sched.notifier.budget_exceeded(spec, refused)
        except Exception as e:
            sched.troubles.failed(e, "notify", task=row.task, run_id=row.run_id)


def changed_hash(
    db: StateDB, spec: TaskSpec | None, run: RunRow, status: RunStatus
) -> tuple[str | None, bool]:
    """(sha256 of a success's result, whether it differs from the previous success's)."""
    if status != RunStatus.SUCCESS or not run.run_dir:
        return None, False
    is_agent = spec.is_agent if spec is not None else True
    sha = result_sha256(Path(run.run_dir), is_agent)
    previous = db.last_success(run.task)
    return sha, previous is None or previous.result_sha256 != sha


def serve_stop_requests(sched: Scheduler) -> None:
    """Answer pending ``stop`` requests: stop the run named (or every running run of the task
    named) with SIGTERM to its tree, SIGKILL after the grace; it ends ``cancelled``.

    A failure here is logged (``daemon.error``) and never keeps the tick from planning."""
    try:
        _serve_stop_requests(sched)
    except Exception as e:
        sched.troubles.failed(e, "stop")


def _serve_stop_requests(sched: Scheduler) -> None:
    with sched.db.tx() as tx:
        pending = tx.pending_stop_requests()
    if not pending:
        return
    mono = sched.clock.mono()
    for request_id, target in pending:
        hit = [
            a
            for a in sched.active
            if (a.run_id == target or a.task == target) and a.stop_reason is None
        ]
        for a in hit:
            log.info("run.stop", task=a.task, run_id=a.run_id, requested=target)
            sched.runs.stop_run(a, RunStatus.CANCELLED, mono)
        with sched.db.tx() as tx:
            tx.answer_stop_request(request_id, [a.run_id for a in hit])
