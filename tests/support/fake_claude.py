#!/usr/bin/env python3
"""A fake ``claude`` CLI that speaks the stream-json protocol claude-agent-sdk uses.

Point ``[agent] cli_path`` (or ``ClaudeAgentOptions(cli_path=...)``) at this file. It reads
stream-json from stdin, answers the SDK's ``initialize`` control request, waits for the user
message and then plays a scenario, writing the same frames the real CLI (2.1.x) writes: the
shapes of the error scenarios were recorded from the bundled CLI against a local HTTP server
returning 429/529/500/401/400 and a refused connection.

Environment:
  FAKE_CLAUDE_SCENARIO  which scenario to play (default ``success``; see SCENARIOS)
  FAKE_CLAUDE_RECORD    file to write {argv, cwd, env, stdin} to (rewritten as stdin arrives)
  FAKE_CLAUDE_DELAY_S   pause between emitted messages (default 0)
  FAKE_CLAUDE_COST_USD  what the ``success`` scenario's result says it cost (default 0.0123)
  FAKE_CLAUDE_RESUME_FAILS  when set, ``--resume ID`` fails as the real CLI does for a session it
                        does not have (one line on stderr, exit 1, no stream-json at all)

Only the standard library is used, so any python3 can run it. Tests use :func:`install` to get
an executable ``claude`` wrapper with the scenario baked in (a daemon run's clean environment
would drop FAKE_CLAUDE_* variables), and :func:`write_run_dir` for a prepared run folder.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from typing import Any

SESSION_ID = str(uuid.uuid4())
CLI_VERSION = "2.1.330"
RESULT_TEXT = "All done: FAKE RESULT"
RECORDED_ENV = (
    "HOME",
    "PATH",
    "PWD",
    "TZ",
    "ANTHROPIC_API_KEY",
    "CLAUDE_CODE_ENTRYPOINT",
    "BASSI_RUN_ID",
    "BASSI_TASK",
    "BASSI_RUN_DIR",
    "REPORT_FORMAT",
)


def argv_value(flag: str) -> str | None:
    """The value of ``--flag VALUE`` or ``--flag=VALUE`` in our argv."""
    args = sys.argv[1:]
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


class Recorder:
    """Keeps what the SDK sent us in FAKE_CLAUDE_RECORD, rewritten after every stdin line."""

    def __init__(self) -> None:
        self.path = os.environ.get("FAKE_CLAUDE_RECORD")
        self.stdin: list[Any] = []
        self.flush()

    def add(self, frame: Any) -> None:
        self.stdin.append(frame)
        self.flush()

    def flush(self) -> None:
        if not self.path:
            return
        data = {
            "argv": sys.argv[1:],
            "cwd": os.getcwd(),
            "pid": os.getpid(),
            "env": {k: os.environ[k] for k in RECORDED_ENV if k in os.environ},
            "env_names": sorted(os.environ),
            "stdin": self.stdin,
        }
        tmp = f"{self.path}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f)
        os.replace(tmp, self.path)


def emit(frame: dict[str, Any]) -> None:
    """Write one NDJSON frame and pause if asked to (to make streaming observable)."""
    sys.stdout.write(json.dumps(frame) + "\n")
    sys.stdout.flush()
    delay_s = float(os.environ.get("FAKE_CLAUDE_DELAY_S", "0") or 0)
    if delay_s:
        time.sleep(delay_s)


def model() -> str:
    return argv_value("--model") or "claude-fake-1"


def init_frame() -> dict[str, Any]:
    return {
        "type": "system",
        "subtype": "init",
        "cwd": os.getcwd(),
        "session_id": SESSION_ID,
        "tools": ["Bash", "Read", "Write"],
        "mcp_servers": [],
        "model": model(),
        "permissionMode": argv_value("--permission-mode") or "default",
        "slash_commands": [],
        "apiKeySource": "none",
        "claude_code_version": CLI_VERSION,
        "output_style": "default",
        "agents": [],
        "skills": [],
        "plugins": [],
        "uuid": str(uuid.uuid4()),
    }


def usage(input_tokens: int = 0, output_tokens: int = 0) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
    }


def assistant(
    content: list[dict[str, Any]], error: str | None = None, synthetic: bool = False
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "assistant",
        "message": {
            "id": f"msg_{uuid.uuid4().hex[:12]}",
            "type": "message",
            "role": "assistant",
            "model": "<synthetic>" if synthetic else model(),
            "content": content,
            "stop_reason": "stop_sequence" if synthetic else "end_turn",
            "usage": usage(0 if synthetic else 50, 0 if synthetic else 20),
        },
        "parent_tool_use_id": None,
        "session_id": SESSION_ID,
        "uuid": str(uuid.uuid4()),
    }
    if error is not None:
        frame["error"] = error
    return frame


def text(t: str) -> dict[str, Any]:
    return {"type": "text", "text": t}


def tool_round(n: int = 1) -> None:
    """One tool call and its result, as the CLI streams them."""
    tool_id = f"toolu_{n:04d}"
    emit(
        assistant(
            [
                text(f"Step {n}: listing files."),
                {"type": "tool_use", "id": tool_id, "name": "Bash", "input": {"command": "ls"}},
            ]
        )
    )
    emit(
        {
            "type": "user",
            "message": {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": "a\nb"}],
            },
            "parent_tool_use_id": None,
            "session_id": SESSION_ID,
            "uuid": str(uuid.uuid4()),
        }
    )


def result(
    subtype: str,
    is_error: bool,
    num_turns: int,
    text_out: str | None = None,
    errors: list[str] | None = None,
    api_error_status: int | None = None,
    cost_usd: float = 0.0,
    tokens: tuple[int, int] = (0, 0),
    terminal_reason: str = "completed",
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "result",
        "subtype": subtype,
        "is_error": is_error,
        "duration_ms": 1234,
        "duration_api_ms": 1000,
        "num_turns": num_turns,
        "stop_reason": "end_turn",
        "session_id": SESSION_ID,
        "total_cost_usd": cost_usd,
        "usage": usage(*tokens),
        "modelUsage": {},
        "permission_denials": [],
        "terminal_reason": terminal_reason,
        "uuid": str(uuid.uuid4()),
    }
    if text_out is not None:
        frame["result"] = text_out
    if errors is not None:
        frame["errors"] = errors
    if api_error_status is not None:
        frame["api_error_status"] = api_error_status
    return frame


def api_failure(status: int | None, error: str, message: str, retry_error: str) -> int:
    """How the CLI reports an API call that failed after its retries (recorded shape)."""
    emit(
        {
            "type": "system",
            "subtype": "api_retry",
            "attempt": 1,
            "max_retries": 1,
            "retry_delay_ms": 500,
            "error_status": status,
            "error": retry_error,
            "session_id": SESSION_ID,
            "uuid": str(uuid.uuid4()),
        }
    )
    emit(assistant([text(message)], error=error, synthetic=True))
    emit(
        result(
            "success",
            True,
            1,
            text_out=message,
            api_error_status=status,
            terminal_reason="api_error",
        )
    )
    return 1


def play(scenario: str) -> int:
    """Emit the frames of ``scenario`` after the user message; returns the exit code."""
    max_turns = argv_value("--max-turns") or "3"
    budget = argv_value("--max-budget-usd") or "1.0"
    if scenario == "garbage":
        sys.stdout.write("Segmentation fault (core dumped)\n{this is not json\n")
        sys.stdout.flush()
        return 1
    emit(init_frame())
    if scenario == "success":
        tool_round(1)
        emit(assistant([text(RESULT_TEXT)]))
        emit(
            result(
                "success",
                False,
                2,
                text_out=RESULT_TEXT,
                cost_usd=float(os.environ.get("FAKE_CLAUDE_COST_USD") or 0.0123),
                tokens=(120, 45),
            )
        )
        return 0
    if scenario == "error_max_turns":
        tool_round(1)
        emit(
            result(
                "error_max_turns",
                True,
                int(max_turns) + 1,
                errors=[f"Reached maximum number of turns ({max_turns})"],
                cost_usd=0.002,
                tokens=(100, 10),
                terminal_reason="max_turns",
            )
        )
        return 1
    if scenario == "error_max_budget":
        tool_round(1)
        emit(
            result(
                "error_max_budget_usd",
                True,
                1,
                errors=[f"Reached maximum budget (${budget})"],
                cost_usd=float(budget) + 0.01,
                tokens=(5000, 300),
                terminal_reason="budget_exhausted",
            )
        )
        return 1
    if scenario == "error_during_execution":
        emit(result("error_during_execution", True, 1, errors=["fake tool crashed"]))
        return 1
    if scenario == "rate_limit":
        return api_failure(
            429,
            "rate_limit",
            "API Error: Request rejected (429) · fake rate_limit_error",
            "rate_limit",
        )
    if scenario == "usage_limit":
        emit(
            {
                "type": "rate_limit_event",
                "rate_limit_info": {
                    "status": "rejected",
                    "resetsAt": 1893456000,
                    "rateLimitType": "five_hour",
                },
                "uuid": str(uuid.uuid4()),
                "session_id": SESSION_ID,
            }
        )
        emit(assistant([text("You've hit your limit · resets 5pm")], "rate_limit", True))
        emit(result("success", True, 1, text_out="You've hit your limit · resets 5pm"))
        return 1
    if scenario == "overloaded":
        return api_failure(
            529,
            "server_error",
            "API Error: 529 fake overloaded_error. This is a server-side issue, usually "
            "temporary — try again in a moment.",
            "overloaded",
        )
    if scenario == "server_error":
        return api_failure(500, "server_error", "API Error: 500 fake api_error.", "server_error")
    if scenario == "network":
        return api_failure(
            None,
            "server_error",
            "API Error: Connection refused — a firewall or proxy may be blocking it (ECONNREFUSED)",
            "unknown",
        )
    if scenario == "not_logged_in":
        msg = "Not logged in · Please run /login"
        emit(assistant([text(msg)], "authentication_failed", True))
        emit(result("success", True, 1, text_out=msg, terminal_reason="api_error"))
        return 1
    if scenario == "auth_failed":
        return api_failure(
            401,
            "authentication_failed",
            "Failed to authenticate. API Error: 401 fake authentication_error",
            "authentication_failed",
        )
    if scenario == "billing":
        msg = "Credit balance is too low"
        emit(assistant([text(msg)], "billing_error", True))
        emit(result("success", True, 1, text_out=msg, api_error_status=400))
        return 1
    if scenario == "invalid_request":
        msg = "API Error: 400 fake invalid_request_error"
        emit(assistant([text(msg)], "unknown", True))
        emit(result("success", True, 1, text_out=msg, api_error_status=400))
        return 1
    if scenario == "no_result":
        emit(assistant([text("I stopped without a result.")]))
        return 0
    if scenario == "crash":
        emit(assistant([text("About to crash.")]))
        sys.stderr.write("fake claude: fatal internal error\n")
        sys.stderr.flush()
        return 3
    if scenario in ("hang", "hang_ignore_term"):
        if scenario == "hang_ignore_term":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        emit(assistant([text("Starting a long job.")]))
        while True:
            time.sleep(3600)
    sys.stderr.write(f"fake claude: unknown scenario {scenario!r}\n")
    return 2


def main() -> int:
    """Serve the SDK's control protocol until the user message arrives, then play."""
    if "--version" in sys.argv[1:] or "-v" in sys.argv[1:]:
        print(f"{CLI_VERSION} (Claude Code)")
        return 0
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # ^C ends it quietly, as it does the real CLI
    scenario = os.environ.get("FAKE_CLAUDE_SCENARIO", "success")
    rec = Recorder()
    resume = argv_value("--resume")
    if resume is not None:
        if os.environ.get("FAKE_CLAUDE_RESUME_FAILS"):
            sys.stderr.write(f"No conversation found with session ID: {resume}\n")
            return 1
        global SESSION_ID
        SESSION_ID = resume  # a resumed session keeps its id
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        frame = json.loads(line)
        rec.add(frame)
        if frame.get("type") == "control_request":
            sub = frame.get("request", {}).get("subtype")
            body: dict[str, Any] = {}
            if sub == "initialize":
                body = {"commands": [], "models": [], "account": {}, "output_style": "default"}
            emit(
                {
                    "type": "control_response",
                    "response": {
                        "subtype": "success",
                        "request_id": frame["request_id"],
                        "response": body,
                    },
                }
            )
        elif frame.get("type") == "user":
            return play(scenario)
    return 0  # stdin closed before any prompt: nothing to do, as the real CLI


# -- helpers for tests (not used when run as the CLI) --------------------------------------------


def install(
    folder: Any,
    scenario: str = "success",
    record: Any = None,
    delay_s: float = 0.0,
    cost_usd: float | None = None,
    resume_fails: bool = False,
) -> Any:
    """Write ``folder/claude``: runs this fake with ``sys.executable`` and the scenario baked in."""
    from pathlib import Path

    path = Path(folder) / "claude"
    env = f"FAKE_CLAUDE_SCENARIO={scenario} FAKE_CLAUDE_DELAY_S={delay_s}"
    if record is not None:
        env += f" FAKE_CLAUDE_RECORD='{record}'"
    if cost_usd is not None:
        env += f" FAKE_CLAUDE_COST_USD={cost_usd}"
    if resume_fails:
        env += " FAKE_CLAUDE_RESUME_FAILS=1"
    path.write_text(f'#!/bin/sh\n{env} exec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    path.chmod(0o755)
    return path


def write_run_dir(
    run_dir: Any, cli_path: Any, cwd: Any, prompt: str = "Say hi", **agent: Any
) -> Any:
    """A run folder as the daemon prepares it: task.json from a real TaskSpec, prompt.txt."""
    from pathlib import Path

    from bassi_schedd.core.schedule import Schedule
    from bassi_schedd.core.spec import AgentOptions, TaskSpec

    spec = TaskSpec(
        name="demo",
        path=Path(cwd) / "demo.toml",
        schedule=Schedule(text="@daily", kind="cron", cron="0 0 * * *"),
        timezone="UTC",
        prompt=prompt,
        cwd=Path(cwd),
        agent=AgentOptions(cli_path=str(cli_path) if cli_path else None, **agent),
    )
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = spec.to_json()
    data["run_id"] = "20260101T000000Z-abcdef"
    (run_dir / "task.json").write_text(json.dumps(data, indent=2))
    (run_dir / "prompt.txt").write_text(prompt)
    return run_dir


if __name__ == "__main__":
    sys.exit(main())
