"""The dashboard's pure parts: escaping, transcript folding, masking, chart, the request guard,
SSE framing and the run-event watcher."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime
from typing import Any

from bassi_schedd.core.records import RunRow
from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.web.chart import duration_cost_svg
from bassi_schedd.web.events import RunWatcher
from bassi_schedd.web.reader import MASK, mask
from bassi_schedd.web.security import COOKIE, Guard, GuardSettings
from bassi_schedd.web.sse import CHUNK_BYTES, complete_lines, encode
from bassi_schedd.web.transcript_view import render_transcript

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def row(run_id: str, seq: int, status: RunStatus, started: bool = True, **kw: Any) -> RunRow:
    return RunRow(
        run_id=run_id,
        task="t",
        trigger="manual",
        scheduled_for=T0,
        started_at=T0 if started else None,
        ended_at=None,
        duration_s=kw.pop("duration_s", None),
        status=status,
        exit_code=kw.pop("exit_code", None),
        attempt=1,
        cost_usd=kw.pop("cost_usd", None),
        input_tokens=None,
        output_tokens=None,
        run_dir=None,
        seq=seq,
    )


def test_transcript_is_escaped_and_tool_calls_are_folded() -> None:
    lines = [
        {"type": "system", "subtype": "init", "model": "m<1>"},
        {
            "type": "assistant",
            "content": [
                {"type": "text", "text": "<script>alert(1)</script>"},
                {"type": "tool_use", "id": "x", "name": "Bash", "input": {"command": "rm -rf <x>"}},
            ],
        },
        {"type": "user", "content": [{"type": "tool_result", "content": "<b>out</b>\nline2"}]},
        {
            "type": "result",
            "subtype": "success",
            "num_turns": 2,
            "total_cost_usd": 0.5,
            "usage": {"input_tokens": 10, "output_tokens": 3},
        },
    ]
    text = "\n".join(json.dumps(x) for x in lines) + "\nnot json <i>\n"
    html = render_transcript(text, prompt="Do <this>")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>out</b>" not in html and "&lt;b&gt;out&lt;/b&gt;" in html
    assert '<details class="msg tool-use"><summary>tool call: Bash</summary>' in html
    assert "<summary>tool result (2 lines)</summary>" in html
    assert "success · 2 turns · $0.5000 · 10 tokens in · 3 out" in html
    assert "Do &lt;this&gt;" in html and "not json &lt;i&gt;" in html
    assert "model m&lt;1&gt;" in html


def test_mask_hides_env_values_and_credentials_only() -> None:
    data = {
        "schedule": "@daily",
        "env": {"TOKEN": "s3cret", "MODE": "short"},
        "notify": {"url": "https://hooks.example/abc", "on": ["failure"]},
        "at": date(2026, 12, 25),
        "command": ["/bin/echo", "hi"],
    }
    out = mask(data)
    assert out["env"] == {"TOKEN": MASK, "MODE": MASK}
    assert out["notify"] == {"url": MASK, "on": ["failure"]}
    assert out["at"] == "2026-12-25" and out["command"] == ["/bin/echo", "hi"]
    assert "s3cret" not in json.dumps(out)


def test_chart_draws_bars_and_cost_without_style_attributes() -> None:
    assert duration_cost_svg([row("a", 1, RunStatus.RUNNING)]) == ""
    runs = [
        row("b", 2, RunStatus.SUCCESS, duration_s=2.0, cost_usd=0.02),
        row("a", 1, RunStatus.FAILED, duration_s=4.0, cost_usd=0.01),
    ]
    svg = duration_cost_svg(runs)
    assert svg.count("<rect") == 2 and "st-failed" in svg and "<polyline" in svg
    assert "style=" not in svg and "4.0 s" in svg and "$0.0200" in svg


def guard(allow_remote: bool = False) -> Guard:
    return Guard(lambda s, r, send: None, GuardSettings("tok" * 8, 8765, allow_remote))  # type: ignore[arg-type,return-value]


def scope(method: str = "GET", path: str = "/api/tasks", **headers: str) -> dict[str, Any]:
    hs = {"host": "127.0.0.1:8765", **{k.lower().replace("_", "-"): v for k, v in headers.items()}}
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in hs.items()],
    }


def test_guard_rules() -> None:
    g, token = guard(), "tok" * 8
    bearer = f"Bearer {token}"
    assert g.check(scope(authorization=bearer)) is None
    assert g.check(scope())[0] == 401  # type: ignore[index]
    assert g.check(scope(cookie=f"{COOKIE}={token}")) is None
    assert g.check(scope(cookie='bad"cookie; ;==')) is not None
    for host in ("evil.example", "127.0.0.1", "localhost:1", "127.0.0.1:8765.evil.example"):
        assert g.check(scope(host=host, authorization=bearer))[0] == 403, host  # type: ignore[index]
    for host in ("localhost:8765", "[::1]:8765", "LOCALHOST:8765"):
        assert g.check(scope(host=host, authorization=bearer)) is None, host
    assert guard(allow_remote=True).check(scope(host="box.lan:8765", authorization=bearer)) is None
    assert g.check(scope(path="/healthz")) is None
    post = scope("POST", "/api/tasks/x/pause", authorization=bearer, origin="http://evil.example")
    assert g.check(post)[0] == 403  # type: ignore[index]
    same = scope("POST", "/api/tasks/x/pause", authorization=bearer, origin="http://127.0.0.1:8765")
    assert g.check(same) is None
    login = scope(path="/")
    login["query_string"] = f"token={token}".encode()
    status, _, headers = g.check(login)  # type: ignore[misc]
    assert status == 303 and (b"location", b"/") in headers


def test_sse_framing() -> None:
    assert encode("a\nb", event="end", event_id=7) == b"event: end\nid: 7\ndata: a\ndata: b\n\n"
    assert encode("x\r\ny\rz") == b"data: x\ndata: y\ndata: z\n\n"
    assert complete_lines(b"one\ntw", final=False) == b"one\n"
    assert complete_lines(b"tw", final=False) == b""
    assert complete_lines(b"tw", final=True) == b"tw"
    assert complete_lines(b"x" * CHUNK_BYTES, final=False) == b"x" * CHUNK_BYTES


class FakeHistory:
    """The reads RunWatcher makes, over a list of rows."""

    def __init__(self) -> None:
        self.rows: dict[str, RunRow] = {}

    def put(self, r: RunRow) -> None:
        self.rows[r.run_id] = r

    def max_seq(self) -> int:
        return max((r.seq for r in self.rows.values()), default=0)

    def active_runs(self) -> list[RunRow]:
        active = (RunStatus.RUNNING, RunStatus.QUEUED)
        return sorted((r for r in self.rows.values() if r.status in active), key=lambda r: r.seq)

    def runs_after(self, seq: int) -> list[RunRow]:
        return sorted((r for r in self.rows.values() if r.seq > seq), key=lambda r: r.seq)

    def runs_by_id(self, ids: list[str]) -> list[RunRow]:
        return [self.rows[i] for i in ids if i in self.rows]


def names(events: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, str]]:
    return [(e, p["run_id"]) for e, p in events]


def test_run_watcher_never_misses_an_end() -> None:
    h, w = FakeHistory(), RunWatcher()
    h.put(row("old", 1, RunStatus.RUNNING))
    assert w.poll(h) == []  # baseline: what already runs is not news
    h.put(row("q", 2, RunStatus.QUEUED, started=False))
    h.put(row("skip", 3, RunStatus.SKIPPED_OVERLAP, started=False))
    assert w.poll(h) == []
    h.put(dataclasses.replace(h.rows["q"], status=RunStatus.RUNNING, started_at=T0))
    assert names(w.poll(h)) == [("run.start", "q")]
    # both end, and a new one starts and ends, all between two polls
    h.put(dataclasses.replace(h.rows["old"], status=RunStatus.SUCCESS, exit_code=0))
    h.put(dataclasses.replace(h.rows["q"], status=RunStatus.FAILED, exit_code=1))
    h.put(row("flash", 4, RunStatus.SUCCESS))
    events = w.poll(h)
    assert names(events) == [
        ("run.end", "old"),
        ("run.end", "q"),
        ("run.start", "flash"),
        ("run.end", "flash"),
    ]
    assert events[1][1]["status"] == "failed" and events[1][1]["exit_code"] == 1
    assert w.poll(h) == []
