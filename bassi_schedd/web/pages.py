"""The HTML pages of SPEC 11: ``/`` (every task), ``/tasks/NAME`` and ``/runs/RUN_ID``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import tomli_w
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from bassi_schedd.core.records import RunRow
from bassi_schedd.web.chart import duration_cost_svg
from bassi_schedd.web.html import (
    button,
    dl,
    esc,
    link,
    money,
    page,
    status_badge,
    table,
    when,
)
from bassi_schedd.web.reader import ACTIVE, Reader, read_json, read_text, run_file
from bassi_schedd.web.transcript_view import render_transcript

PAGE_SIZE = 25
CHART_RUNS = 50
OUTPUT_TAIL_BYTES = 256 * 1024
TEXT_MAX_BYTES = 1 << 20


def _html(request: Request, title: str, body: str, page_id: str) -> Response:
    reader: Reader = request.app.state.reader
    facts = reader.daemon(datetime.now(UTC))
    return HTMLResponse(page(title, body, facts, str(reader.home.root), page_id))


def _task_url(name: str) -> str:
    return "/tasks/" + quote(name, safe="")


def _run_url(run_id: str) -> str:
    return "/runs/" + quote(run_id, safe="")


def _actions(name: str, state: str) -> str:
    base = f"/api/tasks/{quote(name, safe='')}"
    if state == "invalid":
        return ""
    toggle = (
        button("Resume", f"{base}/resume", "resume")
        if state == "paused"
        else button("Pause", f"{base}/pause", "pause")
    )
    return button("Run now", f"{base}/trigger", "run") + " " + toggle


def _over_budget(reason: str | None) -> str:
    if not reason:
        return ""
    return f' <span class="badge st-budget_exceeded" title="{esc(reason)}">over budget</span>'


def _last_cell(name: str, status: object) -> str:
    # data-task lets the page's script update the cell when run events arrive
    return f'<span class="last" data-task="{esc(name)}">{status_badge(status)}</span>'


def index(request: Request) -> Response:
    """``/``: every task, with the daemon's status in the header."""
    reader: Reader = request.app.state.reader
    now = datetime.now(UTC)
    rows = reader.tasks(now)
    stats = reader.stats(now)
    cells = []
    for r in rows:
        name = r["name"]
        s = stats.get(name)
        rate = (
            "-"
            if s is None or s.success_rate is None
            else (f"{s.success_rate:.0%} of {s.finished}")
        )
        cells.append(
            [
                link(name, _task_url(name)),
                esc(r["description"] or (r["error"] or "")),
                esc(r["schedule"] or "-"),
                esc(r.get("_next", "-")),
                _last_cell(name, r["last_status"]),
                esc(rate),
                esc(money(s.cost_usd) if s is not None else "-"),
                status_badge(r["state"]) + _over_budget(r.get("over_budget")),
                _actions(name, r["state"]),
            ]
        )
    headers = [
        "task",
        "description",
        "schedule",
        "next run",
        "last",
        "success 30d",
        "cost 30d",
        "state",
        "",
    ]
    body = (
        "<h1>Tasks</h1>"
        + (table(headers, cells, "tasks") if cells else '<p class="note">no tasks yet</p>')
        + '<h2>Live</h2><ul id="live" class="live"></ul>'
    )
    return _html(request, "Tasks", body, "index")


def _history_rows(runs: list[RunRow]) -> list[list[str]]:
    return [
        [
            link(r.run_id, _run_url(r.run_id)),
            esc(r.trigger),
            esc(when(r.started_at or r.scheduled_for)),
            esc("-" if r.duration_s is None else f"{r.duration_s:.1f} s"),
            status_badge(r.status),
            esc("-" if r.exit_code is None else r.exit_code),
            esc(money(r.cost_usd)),
        ]
        for r in runs
    ]


HISTORY_HEADERS = ["run", "trigger", "started", "duration", "status", "exit", "cost"]


def task_page(request: Request) -> Response:
    """``/tasks/NAME``: the file (read-only, secrets masked), next 5 times, history, chart."""
    reader: Reader = request.app.state.reader
    name = request.path_params["name"]
    now = datetime.now(UTC)
    t = reader.task(name, now)
    before = request.query_params.get("before")
    runs = reader.task_runs(name, PAGE_SIZE + 1, before)
    more = len(runs) > PAGE_SIZE
    runs = runs[:PAGE_SIZE]
    chart = duration_cost_svg(reader.task_runs(name, CHART_RUNS, None)) if before is None else ""
    s = t["stats_30d"]
    rate = "-" if s["success_rate"] is None else f"{s['success_rate']:.0%} of {s['finished']}"
    facts = dl(
        [
            ("description", esc(t["description"] or "-")),
            ("schedule", esc(f"{t['schedule'] or '-'} ({t['timezone'] or '-'})")),
            ("kind", esc(t["kind"] or "-")),
            ("state", status_badge(t["state"])),
            ("last status", status_badge(t["last_status"])),
            ("success 30d", esc(rate)),
            ("cost 30d", esc(money(s["cost_usd"]))),
            ("file", esc(t["file"])),
        ]
    )
    definition = (
        f'<pre class="file">{esc(tomli_w.dumps(t["definition"]))}</pre>'
        if t["definition"] is not None
        else f'<p class="error">{esc(t["error"])}</p>'
    )
    nexts = "".join(f"<li>{esc(when(x))}</li>" for x in t["next_runs"]) or "<li>none</li>"
    pager = ""
    if more and runs:
        pager = link("older runs →", f"{_task_url(name)}?before={quote(runs[-1].run_id)}")
    body = (
        f"<h1>Task {esc(name)}</h1>"
        f'<p class="actions">{_actions(name, t["state"])}</p>'
        + facts
        + f'<h2>Live</h2><ul id="live" class="live" data-task="{esc(name)}"></ul>'
        + (f"<h2>Recent runs</h2>{chart}" if chart else "")
        + "<h2>History</h2>"
        + (table(HISTORY_HEADERS, _history_rows(runs), "history") if runs else "<p>no runs</p>")
        + f'<p class="pager">{pager}</p>'
        + f"<h2>Next 5 times</h2><ul>{nexts}</ul>"
        + '<h2>Task file</h2><p class="note">read-only; env values and credentials masked</p>'
        + definition
    )
    return _html(request, f"Task {name}", body, "task")


def _run_facts(row: RunRow, result: Any) -> str:
    tokens = "-"
    if row.input_tokens is not None or row.output_tokens is not None:
        tokens = f"{row.input_tokens or 0} in · {row.output_tokens or 0} out"
    items = [
        ("task", link(row.task, _task_url(row.task))),
        ("status", f'<span id="run-status">{status_badge(row.status)}</span>'),
        ("trigger", esc(row.trigger)),
        ("scheduled for", esc(when(row.scheduled_for))),
        ("started", esc(when(row.started_at))),
        ("ended", esc(when(row.ended_at))),
        ("duration", esc("-" if row.duration_s is None else f"{row.duration_s:.1f} s")),
        ("exit code", esc("-" if row.exit_code is None else row.exit_code)),
        ("attempt", esc(row.attempt)),
        ("cost", esc(money(row.cost_usd))),
        ("tokens", esc(tokens)),
    ]
    if isinstance(result, dict):
        for key in ("model", "num_turns", "subtype", "error"):
            if result.get(key) is not None:
                items.append((key.replace("_", " "), esc(result[key])))
    if row.detail:
        items.append(("detail", esc(row.detail)))
    return dl(items)


def run_page(request: Request) -> Response:
    """``/runs/RUN_ID``: metadata, live output while running, transcript, result.md, Stop."""
    reader: Reader = request.app.state.reader
    row = reader.run(request.path_params["run_id"])
    result = read_json(run_file(row, "result.json"))
    running = row.status in ACTIVE
    stop = ""
    if running:
        stop = button(
            "Stop",
            f"/api/runs/{quote(row.run_id, safe='')}/stop",
            "stop",
            confirm=f"Stop run {row.run_id} of {row.task}?",
        )
    if running:
        stream = f"/api/runs/{quote(row.run_id, safe='')}/stream"
        output = f'<pre id="output" class="output" data-stream="{esc(stream)}"></pre>'
    else:
        got = read_text(run_file(row, "output.log"), OUTPUT_TAIL_BYTES)
        if got is None:
            output = '<p class="note">no output.log</p>'
        else:
            cut = '<p class="note">showing the end of output.log</p>' if got[1] else ""
            output = f'{cut}<pre id="output" class="output">{esc(got[0])}</pre>'
    parts = [
        f"<h1>Run {esc(row.run_id)}</h1>",
        f'<p class="actions">{stop}</p>',
        _run_facts(row, result),
        "<h2>Output</h2>",
        output,
    ]
    transcript = read_text(run_file(row, "transcript.jsonl"), TEXT_MAX_BYTES)
    if transcript is not None:
        prompt = read_text(run_file(row, "prompt.txt"), TEXT_MAX_BYTES)
        conversation = render_transcript(transcript[0], None if prompt is None else prompt[0])
        parts += ["<h2>Transcript</h2>", conversation]
    result_md = read_text(run_file(row, "result.md"), TEXT_MAX_BYTES)
    if result_md is not None:
        parts += ["<h2>result.md</h2>", f'<pre class="result-md">{esc(result_md[0])}</pre>']
    if isinstance(result, dict):
        parts += [
            "<details><summary>result.json</summary>",
            f"<pre>{esc(json.dumps(result, indent=2))}</pre></details>",
        ]
    return _html(request, f"Run {row.run_id}", "".join(parts), "run")


ROUTES = [
    Route("/", index),
    Route("/tasks/{name}", task_page),
    Route("/runs/{run_id}", run_page),
]
