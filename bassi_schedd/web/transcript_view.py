"""transcript.jsonl as a conversation: user and assistant text in turn, tool calls and their
results folded in ``<details>``, the closing result with cost and tokens. Everything is text
to the browser (escaped); a line that is not JSON is shown as it is, never dropped silently."""

from __future__ import annotations

import json
from typing import Any

from bassi_schedd.web.html import esc, money

MAX_LINES = 5000
FOLD_CHARS = 20_000  # a tool result longer than this is cut in the page


def render_transcript(text: str, prompt: str | None = None) -> str:
    """The HTML of a whole transcript (its lines are JSON objects), after the run's prompt."""
    lines = text.splitlines()
    out: list[str] = [] if prompt is None else [_text("prompt", prompt)]
    if len(lines) > MAX_LINES:
        out.append(f'<p class="note">showing the last {MAX_LINES} of {len(lines)} messages</p>')
        lines = lines[-MAX_LINES:]
    for line in lines:
        if not line.strip():
            continue
        try:
            msg = json.loads(line)
        except ValueError:
            out.append(f'<pre class="msg raw">{esc(line)}</pre>')
            continue
        if isinstance(msg, dict):
            out.append(_message(msg))
    return '<div class="conversation">' + "".join(out) + "</div>"


def _message(msg: dict[str, Any]) -> str:
    kind = msg.get("type")
    if kind == "system":
        bits = [f"{k} {msg[k]}" for k in ("subtype", "model", "cwd") if msg.get(k)]
        return f'<div class="msg system">{esc(" · ".join(map(str, bits)))}</div>'
    if kind in ("user", "assistant"):
        return _turn(kind, msg.get("content"))
    if kind == "result":
        return _result(msg)
    return ""  # stream and rate-limit events: nothing a reader needs


def _turn(role: str, content: Any) -> str:
    if isinstance(content, str):
        return _text(role, content)
    if not isinstance(content, list):
        return ""
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        t = block.get("type")
        if t == "text":
            parts.append(_text(role, str(block.get("text", ""))))
        elif t == "thinking":
            parts.append(_fold("thinking", "thinking", str(block.get("thinking", ""))))
        elif t == "tool_use":
            body = json.dumps(block.get("input"), indent=2, ensure_ascii=False)
            parts.append(_fold("tool-use", f"tool call: {block.get('name', '?')}", body))
        elif t == "tool_result":
            body = _result_text(block.get("content"))
            label = "tool error" if block.get("is_error") else "tool result"
            lines = body.count("\n") + 1 if body else 0
            parts.append(_fold("tool-result", f"{label} ({lines} lines)", body))
    return "".join(parts)


def _text(role: str, text: str) -> str:
    cls = "user" if role == "prompt" else role
    return f'<div class="msg {esc(cls)}"><div class="who">{esc(role)}</div>{esc(text)}</div>'


def _fold(cls: str, summary: str, body: str) -> str:
    if len(body) > FOLD_CHARS:
        body = body[:FOLD_CHARS] + f"\n[... {len(body) - FOLD_CHARS} more characters]"
    return (
        f'<details class="msg {cls}"><summary>{esc(summary)}</summary>'
        f"<pre>{esc(body)}</pre></details>"
    )


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) if isinstance(b, dict) else str(b) for b in content)
    return "" if content is None else json.dumps(content)


def _result(msg: dict[str, Any]) -> str:
    usage = msg.get("usage") if isinstance(msg.get("usage"), dict) else {}
    assert isinstance(usage, dict)
    cost = msg.get("total_cost_usd")
    facts = [
        str(msg.get("subtype", "result")),
        f"{msg.get('num_turns', '?')} turns",
        money(cost if isinstance(cost, int | float) else None),
        f"{usage.get('input_tokens', '?')} tokens in",
        f"{usage.get('output_tokens', '?')} out",
    ]
    return f'<div class="msg result">{esc(" · ".join(facts))}</div>'
