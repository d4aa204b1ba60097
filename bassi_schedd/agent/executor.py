"""The bundled executor: one agent run through claude-agent-sdk, recorded in its run folder.

``execute --run-dir DIR`` (what the daemon starts) and ``execute TASK`` both end up in
:func:`execute_run_dir`. It reads ``task.json`` and ``prompt.txt``, runs the prompt with
``query()``, appends every message to ``transcript.jsonl`` as it arrives (so a killed run leaves
a readable partial transcript) and writes ``result.md`` and ``result.json`` at the end.

Exit codes (SPEC 6), chosen by :func:`bassi_schedd.core.outcome.classify`: 0 success; 1 the task
failed (not logged in, max turns, budget, other agent errors); 2 bad task or usage; 75 temporary
(rate limit, overload, network, API 5xx); 128+N when stopped by signal N.

Command tasks never reach the executor: the daemon starts their command itself, and
``execute TASK`` runs it directly. A ``task.json`` with a ``command`` is refused (exit 2) rather
than run, so the one path that runs user programs stays the daemon's (and its timeout rules).

This is the only module (with ``commands/execute.py``) that imports claude_agent_sdk; the
daemon never imports it, which keeps the SDK's ~1 s import and its memory out of the daemon.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import anyio

from bassi_schedd.agent.options import build_options, load_run_dir, session_to_resume
from bassi_schedd.agent.transcript import message_record
from bassi_schedd.config.paths import FILE_MODE, write_private_file
from bassi_schedd.core.errors import UsageError
from bassi_schedd.core.outcome import EXIT_FAILED, EXIT_USAGE, Outcome, RunFacts, classify
from bassi_schedd.runner.gate import gate_run_dir
from bassi_schedd.runner.previous import read_run_json

STDERR_TAIL_LINES = 20

OnMessage = Callable[[Any], None]


@dataclass
class _Run:
    """What one run has seen so far; turned into result.json at the end."""

    transcript_fd: int
    on_message: OnMessage | None
    started_mono: float = field(default_factory=time.monotonic)
    facts: RunFacts = field(default_factory=RunFacts)
    model: str | None = None
    session_id: str | None = None
    result: Any = None  # ResultMessage
    final_text: str = ""  # the result text, else the agent's last words (API errors excluded)
    started_session: bool = False  # the CLI said init: a resumed session was found

    def add(self, msg: Any) -> None:
        from claude_agent_sdk import (
            AssistantMessage,
            RateLimitEvent,
            ResultMessage,
            SystemMessage,
            TextBlock,
        )

        line = json.dumps(message_record(msg), default=str, ensure_ascii=False) + "\n"
        os.write(self.transcript_fd, line.encode())  # one write per line: never half a line
        if isinstance(msg, SystemMessage) and msg.subtype == "init":
            self.started_session = True
            self.model = msg.data.get("model") or self.model
            self.session_id = msg.data.get("session_id") or self.session_id
        elif isinstance(msg, AssistantMessage) and msg.parent_tool_use_id is None:
            text = "".join(b.text for b in msg.content if isinstance(b, TextBlock))
            if msg.error is not None:
                self.facts.assistant_error = msg.error
                self.facts.texts.append(text)
            elif text:
                self.final_text = text
                self.model = msg.model or self.model
        elif isinstance(msg, RateLimitEvent) and msg.rate_limit_info.status == "rejected":
            self.facts.rate_limit_resets_at = msg.rate_limit_info.resets_at or 0
        elif isinstance(msg, ResultMessage):
            self.take_result(msg)
        if self.on_message is not None:
            try:
                self.on_message(msg)
            except OSError:
                pass  # a closed terminal or full disk must not end the run: the transcript has it

    def take_result(self, msg: Any) -> None:
        self.result = msg
        self.session_id = msg.session_id or self.session_id
        f = self.facts
        f.subtype, f.is_error, f.api_error_status = msg.subtype, msg.is_error, msg.api_error_status
        f.texts.extend(e for e in (msg.errors or []) if isinstance(e, str))
        if msg.is_error and msg.result:
            f.texts.append(msg.result)
        elif msg.result:
            self.final_text = msg.result

    def take_exception(self, e: Exception) -> None:
        from claude_agent_sdk import (
            CLIConnectionError,
            CLIJSONDecodeError,
            CLINotFoundError,
            ProcessError,
            ResultError,
        )

        if isinstance(e, ResultError):
            if self.result is None and e.data:  # the result frame itself did not parse
                self.facts.subtype, self.facts.is_error = e.subtype or "success", True
                self.facts.api_error_status = e.api_error_status
                self.facts.texts.extend([*e.errors, e.result or ""])
            return  # the expected non-zero exit after an error result
        kinds: list[tuple[type[Exception], str]] = [
            (CLINotFoundError, "cli_not_found"),
            (CLIJSONDecodeError, "protocol"),
            (ProcessError, "process"),
            (CLIConnectionError, "connection"),
        ]
        self.facts.exception_kind = next((k for t, k in kinds if isinstance(e, t)), "other")
        self.facts.exception_text = str(e) or type(e).__name__

    def stderr_line(self, line: str) -> None:
        """The CLI's stderr: passed on (to output.log or the terminal) and kept for errors."""
        print(line, file=sys.stderr, flush=True)
        self.facts.stderr_tail.append(line)
        del self.facts.stderr_tail[:-STDERR_TAIL_LINES]


def execute_run_dir(
    run_dir: Path, on_message: OnMessage | None = None, timeout_s: float | None = None
) -> tuple[int, dict[str, Any]]:
    """Run the prepared run folder; returns the exit code and what went into result.json."""
    if not run_dir.is_dir():
        return _fail_early(None, f"run folder {run_dir} does not exist")
    started_at = datetime.now(UTC)
    verdict = gate_run_dir(run_dir)  # SPEC 10: before anything is paid for
    if verdict is not None and not verdict.go:
        status = "skipped_condition" if verdict.verdict == "skip" else "failed"
        outcome = Outcome(EXIT_FAILED, status, "gate", verdict.reason)
        data = _result_json(outcome, read_run_json(run_dir, "task.json"), started_at)
        write_private_file(run_dir / "result.json", json.dumps(data, indent=2) + "\n")
        return outcome.exit_code, data
    try:
        task, prompt = load_run_dir(run_dir)
        fd = os.open(
            run_dir / "transcript.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE
        )
    except (UsageError, OSError) as e:
        return _fail_early(run_dir, str(e), started_at)
    resume = session_to_resume(task)
    resume_error: str | None = None
    try:
        run = _attempt(task, prompt, fd, on_message, timeout_s, resume)
        if resume is not None and not run.started_session and _stopped_by(run) is None:
            # The CLI could not resume (a session pruned or from another machine): say why
            # and start afresh, rather than fail every run until someone edits the task.
            tail = run.facts.stderr_tail  # the CLI says why in its last line
            resume_error = tail[-1] if tail else classify(run.facts).error or "unknown error"
            run.stderr_line(f"bassi-schedd: cannot resume session {resume}: {resume_error}")
            run = _attempt(task, prompt, fd, on_message, timeout_s, None)
    except UsageError as e:
        return _fail_early(run_dir, str(e), started_at, task)
    finally:
        os.close(fd)
    outcome = classify(run.facts)
    data = _result_json(outcome, task, started_at, run)
    data["resumed"] = resume is not None and resume_error is None and run.started_session
    if resume_error is not None:
        data["resume_error"] = resume_error
    write_private_file(run_dir / "result.md", run.final_text)
    write_private_file(run_dir / "result.json", json.dumps(data, indent=2) + "\n")
    return outcome.exit_code, data


def _attempt(
    task: Mapping[str, Any],
    prompt: str,
    fd: int,
    on_message: OnMessage | None,
    timeout_s: float | None,
    resume: str | None,
) -> _Run:
    run = _Run(fd, on_message)
    options = build_options(task, run.stderr_line, resume=resume)
    run.model = options.model
    _quiet_sdk_logging()
    anyio.run(_drive, prompt, options, run, timeout_s)
    return run


def _stopped_by(run: _Run) -> int | float | None:
    """A signal or the timeout that ended the attempt (then nothing is tried again)."""
    return run.facts.signal if run.facts.signal is not None else run.facts.timed_out_s


async def _drive(prompt: str, options: Any, run: _Run, timeout_s: float | None) -> None:
    """Stream query() into ``run``; SIGTERM/SIGINT/SIGHUP or the timeout stop it cleanly."""
    from claude_agent_sdk import query

    async with anyio.create_task_group() as tg:
        tg.start_soon(_watch_signals, tg.cancel_scope, run.facts)
        if timeout_s is not None:
            tg.start_soon(_deadline, timeout_s, tg.cancel_scope, run.facts)
        try:
            stream = cast(AsyncGenerator[Any, None], query(prompt=prompt, options=options))
            async with aclosing(stream):
                async for msg in stream:
                    run.add(msg)
        except Exception as e:  # the SDK raises plain Exception too (control timeouts)
            run.take_exception(e)
        tg.cancel_scope.cancel()


async def _watch_signals(scope: anyio.CancelScope, facts: RunFacts) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            facts.signal = int(signum)
            _stop_children()
            scope.cancel()
            return


async def _deadline(timeout_s: float, scope: anyio.CancelScope, facts: RunFacts) -> None:
    await anyio.sleep(timeout_s)
    facts.timed_out_s = timeout_s
    _stop_children()
    scope.cancel()


def _stop_children() -> None:
    # SIGTERM the CLI and the tools it runs before the SDK closes the session: otherwise the
    # SDK waits 5 s for a busy CLI to notice the closed stdin, and tool processes outlive us.
    import psutil

    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return
    for child in children:
        try:
            child.terminate()
        except psutil.Error:
            continue


def _quiet_sdk_logging() -> None:
    # The SDK logs "Fatal error in message reader" to stderr for failures we already report in
    # one line and in result.json; output.log should not carry the same error twice.
    logging.getLogger("claude_agent_sdk").setLevel(logging.CRITICAL + 1)


def _result_json(
    outcome: Outcome, task: Mapping[str, Any], started_at: datetime, run: _Run | None = None
) -> dict[str, Any]:
    r = run.result if run is not None else None
    wall_ms = int((time.monotonic() - run.started_mono) * 1000) if run is not None else 0
    return {
        "status": outcome.status,
        "exit_code": outcome.exit_code,
        "is_error": outcome.exit_code != 0,
        "subtype": r.subtype if r is not None else None,
        "num_turns": r.num_turns if r is not None else 0,
        "duration_ms": r.duration_ms if r is not None else wall_ms,
        "total_cost_usd": r.total_cost_usd if r is not None else None,
        "usage": r.usage if r is not None else None,
        "session_id": run.session_id if run is not None else None,
        "model": run.model if run is not None else None,
        "error": outcome.error,
        "error_kind": outcome.kind,
        "task": task.get("name"),
        "run_id": task.get("run_id"),
        "started_at": started_at.isoformat(),
        "ended_at": datetime.now(UTC).isoformat(),
        "resumed": False,
    }


def _fail_early(
    run_dir: Path | None,
    error: str,
    started_at: datetime | None = None,
    task: Mapping[str, Any] | None = None,
) -> tuple[int, dict[str, Any]]:
    """A bad task or usage (exit 2), recorded in result.json when there is a folder for it."""
    outcome = Outcome(EXIT_USAGE, "bad_task", "bad_task", error)
    data = _result_json(outcome, task or {}, started_at or datetime.now(UTC))
    if run_dir is not None:
        try:
            write_private_file(run_dir / "result.json", json.dumps(data, indent=2) + "\n")
        except OSError:
            pass  # a read-only or vanished folder: the one line on stderr still says why
    return EXIT_USAGE, data
