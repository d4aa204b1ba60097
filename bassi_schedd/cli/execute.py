"""``execute TASK`` (a person runs a task now) and ``execute --run-dir DIR`` (the daemon's child).

Both forms run agent tasks through :mod:`bassi_schedd.agent.executor` and show the agent's text and
tool calls as they happen (on the terminal, or in output.log for the daemon). ``execute TASK``
also does what the daemon would do around a run: a new run folder, the clean environment and
umask 077 of SPEC 5, the task's timeout, and a ``manual`` row in the history. A command task
runs its program directly, in its own session, its output copied to the terminal and output.log.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, cast

from bassi_schedd.config.paths import FILE_MODE, Home, write_private_file
from bassi_schedd.core.errors import TaskFileError, UsageError, UserError
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.core.spec import TaskSpec
from bassi_schedd.runner.gate import gate_outcome
from bassi_schedd.runner.outputcap import trim_output
from bassi_schedd.runner.process import EXIT_CODE_FILE, create_time


def main(args: argparse.Namespace, home: Home) -> int:
    """Dispatch the two forms of ``execute``."""
    if args.run_dir and args.task:
        raise UsageError("give a TASK or --run-dir DIR, not both")
    if args.run_dir:
        return execute_run_dir(Path(args.run_dir).expanduser().absolute())
    if not args.task:
        raise UsageError("execute needs a TASK name (or --run-dir DIR)")
    return execute_task(home, args.task)


def execute_run_dir(run_dir: Path, timeout_s: float | None = None) -> int:
    """Run a prepared run folder (what the daemon starts); one line on stderr if it failed."""
    from bassi_schedd.agent.executor import execute_run_dir as run

    rc, data = run(run_dir, on_message=_print_message, timeout_s=timeout_s)
    _print_summary(rc, data)
    return rc


def _print_message(msg: Any) -> None:
    from bassi_schedd.agent.transcript import render

    lines = render(msg)
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def _print_summary(rc: int, data: dict[str, Any]) -> None:
    turns = data.get("num_turns") or 0
    parts = [str(data.get("status")), f"{turns} turn{'' if turns == 1 else 's'}"]
    if isinstance(data.get("total_cost_usd"), int | float):
        parts.append(f"${data['total_cost_usd']:.4f}")
    if isinstance(data.get("duration_ms"), int | float):
        parts.append(f"{data['duration_ms'] / 1000:.1f}s")
    print(f"-- {' · '.join(parts)} (exit {rc})", flush=True)
    if rc != 0 and data.get("error"):
        print(f"bassi-schedd: {data['error']}", file=sys.stderr, flush=True)


# -- execute TASK ------------------------------------------------------------------------------


def _load(home: Home, ref: str) -> tuple[Any, TaskSpec]:
    """The daemon config and the task named ``ref`` (or the task file at path ``ref``)."""
    from bassi_schedd.config.loader import load_config, load_task_file

    path = Path(ref).expanduser() if ref.endswith(".toml") else home.tasks_dir / f"{ref}.toml"
    if not path.is_file():
        raise UsageError(f"no task named '{ref}' (no file {path})")
    from bassi_schedd.config.taskfile import tasks_dir_error

    folder_error = tasks_dir_error(home.tasks_dir)
    if folder_error is not None and path.parent.resolve() == home.tasks_dir.resolve():
        raise folder_error
    try:
        config = load_config(home)
        return config, load_task_file(path, config)
    except TaskFileError as e:
        raise UsageError(str(e)) from None


def execute_task(home: Home, ref: str) -> int:
    """Run a task now in the foreground and record it as a ``manual`` run."""
    from bassi_schedd.core.records import as_integer, as_number, new_run_id
    from bassi_schedd.runner.rundir import child_env, prepare_run_dir
    from bassi_schedd.store.state import StateDB

    config, task = _load(home, ref)
    home.ensure()
    now = datetime.now(UTC)
    db = StateDB.open(home.state_db)
    try:
        extras = _extras(db, config, task, now)
        last = db.last_finished_run(task.name)
        run_id = db.start_manual_run(
            task.name,
            new_run_id(now),
            lambda rid: str(home.run_dir(task.name, rid)),
            os.getpid(),
            create_time(os.getpid()),
            now,
        )
        run_dir = home.run_dir(task.name, run_id)
        rc, result = 1, cast(dict[str, Any], {})
        try:
            prepare_run_dir(home, task, run_id, now, now, last, extras)
            env = child_env(home, config, task, run_id, now, run_dir, os.environ)
            print(f"bassi-schedd: running {task.name} (run {run_id}, folder {run_dir})", flush=True)
            if task.is_agent:
                rc, result = _agent_in_foreground(task, run_dir, env)
            else:
                rc = _gated_command(task, run_id, run_dir, env, config.kill_grace_s)
        except KeyboardInterrupt:
            rc = 128 + signal.SIGINT
            raise
        finally:
            trim_output(run_dir / "output.log", task.max_output_bytes)  # as the daemon does
            # As the daemon's wrapper does: a daemon that adopted this run learns how it ended.
            with contextlib.suppress(OSError):
                write_private_file(run_dir / EXIT_CODE_FILE, f"{rc}\n")
            raw_usage = result.get("usage")
            usage: dict[str, Any] = raw_usage if isinstance(raw_usage, dict) else {}
            status, rc_db, _ = gate_outcome(run_dir, _status(rc), rc)
            db.end_manual_run(
                run_id,
                status,
                rc_db,
                datetime.now(UTC),
                cost_usd=as_number(result.get("total_cost_usd")),
                input_tokens=as_integer(usage.get("input_tokens")),
                output_tokens=as_integer(usage.get("output_tokens")),
            )
    finally:
        db.close()
    return rc


def _extras(db: Any, config: Any, task: TaskSpec, now: datetime) -> Any:
    """SPEC 10 for a run by hand: the same caps, {last_result} and session as the daemon's."""
    from bassi_schedd.runner.previous import RunExtras, last_result, session_id
    from bassi_schedd.store.spend import check_budget

    decision = check_budget(db, task, config, now)
    if decision.exceeded is not None:
        raise UserError(f"not started: {decision.exceeded}")
    previous = db.last_success(task.name)
    prev_dir = Path(previous.run_dir) if previous is not None and previous.run_dir else None
    resume = session_id(prev_dir) if task.agent.continue_session else None
    max_budget = decision.max_budget_usd if task.is_agent else None
    return RunExtras(last_result(prev_dir, task.is_agent), max_budget, resume)


def _gated_command(
    task: TaskSpec, run_id: str, run_dir: Path, env: dict[str, str], grace_s: float
) -> int:
    """A command task by hand: its gate first (SPEC 10), then the command if the gate said go."""
    from bassi_schedd.runner.gate import gate_run_dir

    verdict = gate_run_dir(run_dir, env)
    if verdict is not None and not verdict.go:
        print(f"bassi-schedd: {verdict.reason}", file=sys.stderr, flush=True)
        return 1
    from bassi_schedd.runner.foreground import command_in_foreground

    return command_in_foreground(task, run_id, run_dir, env, grace_s)


def _status(rc: int) -> RunStatus:
    if rc == 0:
        return RunStatus.SUCCESS
    if rc == 124:
        return RunStatus.TIMEOUT
    if rc in (128 + signal.SIGINT, 128 + signal.SIGTERM, 128 + signal.SIGHUP):
        return RunStatus.INTERRUPTED
    return RunStatus.FAILED


def _agent_in_foreground(
    task: TaskSpec, run_dir: Path, env: dict[str, str]
) -> tuple[int, dict[str, Any]]:
    from bassi_schedd.agent.executor import execute_run_dir as run
    from bassi_schedd.runner.spawn import CHILD_UMASK

    # The same environment and umask as a daemon run, so "works here, fails from the daemon"
    # shows up here first. This process ends with the run, so changing its own is fine.
    os.environ.clear()
    os.environ.update(env)
    os.umask(CHILD_UMASK)
    with _tee_output(run_dir / "output.log"):
        rc, data = run(run_dir, on_message=_print_message, timeout_s=task.timeout_s)
        _print_summary(rc, data)
    return rc, data


@contextlib.contextmanager
def _tee_output(path: Path) -> Iterator[None]:
    """Copy everything printed (ours and the CLI's stderr) to ``path`` too."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Tee(saved[0], fd), _Tee(saved[1], fd)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
        os.close(fd)


class _Tee:
    """A text stream writing to a terminal stream and appending to a file descriptor."""

    def __init__(self, stream: IO[str], fd: int):
        self.stream = stream
        self.fd = fd

    def write(self, text: str) -> int:
        self.stream.write(text)
        os.write(self.fd, text.encode(errors="replace"))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()
