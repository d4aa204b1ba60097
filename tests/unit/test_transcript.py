"""transcript.jsonl records and the human-readable rendering, on the SDK's real message types."""

from __future__ import annotations

import json
from datetime import datetime

from claude_agent_sdk import (
    AssistantMessage,
    RateLimitEvent,
    ResultMessage,
    SystemMessage,
    TextBlock,
    ToolResultBlock,
    ToolUseBlock,
    UserMessage,
)
from claude_agent_sdk.types import RateLimitInfo

from bassi_schedd.agent.transcript import TOOL_SUMMARY_CHARS, message_record, render


def assistant(*blocks: object, parent: str | None = None) -> AssistantMessage:
    return AssistantMessage(content=list(blocks), model="m1", parent_tool_use_id=parent)  # type: ignore[arg-type]


def test_system_message_keeps_the_raw_frame() -> None:
    data = {"type": "system", "subtype": "init", "model": "m1", "cwd": "/w", "extra": [1]}
    rec = message_record(SystemMessage(subtype="init", data=data))
    assert {k: v for k, v in rec.items() if k != "ts"} == data
    datetime.fromisoformat(rec["ts"])


def test_assistant_blocks_are_tagged_with_their_wire_type() -> None:
    msg = assistant(TextBlock("hi"), ToolUseBlock(id="t1", name="Bash", input={"command": "ls"}))
    rec = json.loads(json.dumps(message_record(msg)))
    assert rec["type"] == "assistant"
    assert rec["model"] == "m1"
    assert rec["content"] == [
        {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}},
    ]


def test_user_tool_result_and_result_and_rate_limit_records() -> None:
    user = UserMessage(content=[ToolResultBlock(tool_use_id="t1", content="ok", is_error=False)])
    assert message_record(user)["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": "ok", "is_error": False}
    ]
    result = ResultMessage(
        subtype="success",
        duration_ms=5,
        duration_api_ms=4,
        is_error=False,
        num_turns=1,
        session_id="s",
        total_cost_usd=0.5,
        usage={"input_tokens": 3},
    )
    rec = message_record(result)
    assert (rec["type"], rec["total_cost_usd"], rec["usage"]) == (
        "result",
        0.5,
        {"input_tokens": 3},
    )
    event = RateLimitEvent(RateLimitInfo(status="rejected", resets_at=9), uuid="u", session_id="s")
    rec = message_record(event)
    assert rec["type"] == "rate_limit_event"
    assert rec["rate_limit_info"]["status"] == "rejected"
    assert "rejected" in render(event)[0]


def test_render_shows_text_and_tool_calls() -> None:
    msg = assistant(
        TextBlock("line one\nline two\n"),
        ToolUseBlock(id="t1", name="Read", input={"file_path": "/etc/hosts"}),
        ToolUseBlock(id="t2", name="Custom", input={"a": 1}),
    )
    assert render(msg) == ["line one", "line two", "> Read /etc/hosts", '> Custom {"a": 1}']


def test_render_indents_subagent_output_and_cuts_long_tool_input() -> None:
    long_cmd = "echo " + "x" * 500
    msg = assistant(ToolUseBlock(id="t", name="Bash", input={"command": long_cmd}), parent="p")
    (line,) = render(msg)
    assert line.startswith("  > Bash echo xxx")
    assert len(line) <= len("  > Bash ") + TOOL_SUMMARY_CHARS


def test_render_tool_errors_init_and_retries_but_not_results() -> None:
    user = UserMessage(
        content=[
            ToolResultBlock(
                tool_use_id="t", content=[{"type": "text", "text": "denied"}], is_error=True
            ),
            ToolResultBlock(tool_use_id="u", content="fine", is_error=False),
        ]
    )
    assert render(user) == ["  ! tool error: denied"]
    init = SystemMessage("init", {"model": "m1", "cwd": "/w", "claude_code_version": "2.1"})
    assert render(init) == ["[claude 2.1 · model m1 · cwd /w]"]
    retry = SystemMessage(
        "api_retry", {"attempt": 2, "max_retries": 10, "error": "rate_limit", "error_status": 429}
    )
    assert render(retry) == ["[API retry 2/10: rate_limit (HTTP 429)]"]
    assert render(SystemMessage("status", {})) == []
    result = ResultMessage("success", 1, 1, False, 1, "s", result="done")
    assert render(result) == []
