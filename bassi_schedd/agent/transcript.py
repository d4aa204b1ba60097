"""Writing agent messages out: one JSON line each for transcript.jsonl, short text for people.

Works on claude-agent-sdk's message dataclasses by their class and field names, without
importing the SDK (only the executor may), so the formats here can be tested with stand-ins.
"""

from __future__ import annotations

import dataclasses
import json
import re
from datetime import UTC, datetime
from typing import Any

_WIRE_TYPES = {
    "UserMessage": "user",
    "AssistantMessage": "assistant",
    "ResultMessage": "result",
    "StreamEvent": "stream_event",
    "RateLimitEvent": "rate_limit_event",
    "ConversationResetMessage": "conversation_reset",
}
TOOL_SUMMARY_CHARS = 120


def message_record(msg: Any) -> dict[str, Any]:
    """One transcript.jsonl line: arrival time, the wire ``type`` and the message's fields.

    System messages keep the CLI's raw frame; typed messages are their dataclass fields with
    each content block tagged with its wire type (``text``, ``tool_use``...).
    """
    record: dict[str, Any] = {"ts": datetime.now(UTC).isoformat(timespec="milliseconds")}
    data = getattr(msg, "data", None)
    if isinstance(data, dict) and hasattr(msg, "subtype"):  # SystemMessage and its subclasses
        record.update(data)
        record.setdefault("type", "system")
        return record
    record["type"] = _WIRE_TYPES.get(type(msg).__name__, type(msg).__name__)
    if dataclasses.is_dataclass(msg) and not isinstance(msg, type):
        for f in dataclasses.fields(msg):
            record[f.name] = _plain(getattr(msg, f.name))
    return record


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        name = type(value).__name__
        out: dict[str, Any] = {}
        if name.endswith("Block"):  # TextBlock -> text, ToolUseBlock -> tool_use
            out["type"] = re.sub(r"(?<!^)(?=[A-Z])", "_", name[: -len("Block")]).lower()
        for f in dataclasses.fields(value):
            out[f.name] = _plain(getattr(value, f.name))
        return out
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def render(msg: Any) -> list[str]:
    """What a person watching the run sees of ``msg``: agent text, tool calls, retries."""
    kind = type(msg).__name__
    lines: list[str] = []
    if kind == "AssistantMessage":
        nested = "  " if getattr(msg, "parent_tool_use_id", None) else ""
        for block in msg.content:
            bkind = type(block).__name__
            if bkind == "TextBlock" and block.text.strip():
                lines.extend(nested + line for line in block.text.rstrip().splitlines())
            elif bkind in ("ToolUseBlock", "ServerToolUseBlock"):
                lines.append(f"{nested}> {block.name} {_tool_summary(block.input)}".rstrip())
    elif kind == "UserMessage" and isinstance(msg.content, list):
        for block in msg.content:
            if type(block).__name__ == "ToolResultBlock" and block.is_error:
                lines.append(f"  ! tool error: {_short(_text_of(block.content))}")
    elif hasattr(msg, "subtype") and isinstance(getattr(msg, "data", None), dict):
        data = msg.data
        if msg.subtype == "init":
            lines.append(
                f"[claude {data.get('claude_code_version', '?')} · model {data.get('model')} · "
                f"cwd {data.get('cwd')}]"
            )
        elif msg.subtype == "api_retry":
            status = data.get("error_status")
            lines.append(
                f"[API retry {data.get('attempt')}/{data.get('max_retries')}: "
                f"{data.get('error')}{f' (HTTP {status})' if status else ''}]"
            )
    elif kind == "RateLimitEvent" and msg.rate_limit_info.status != "allowed":
        lines.append(f"[rate limit: {msg.rate_limit_info.status}]")
    return lines


def _tool_summary(tool_input: Any) -> str:
    if not isinstance(tool_input, dict):
        return _short(str(tool_input))
    for key in ("command", "file_path", "path", "pattern", "url", "query", "description"):
        if isinstance(tool_input.get(key), str):
            return _short(tool_input[key])
    return _short(json.dumps(tool_input, ensure_ascii=False))


def _text_of(content: Any) -> str:
    if isinstance(content, list):
        return " ".join(str(c.get("text", "")) for c in content if isinstance(c, dict))
    return str(content or "")


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= TOOL_SUMMARY_CHARS else flat[: TOOL_SUMMARY_CHARS - 1] + "…"
