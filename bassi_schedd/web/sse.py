"""Server-sent events: a run's output.log as it grows, and run.start / run.end as they happen.

Output events carry ``id:`` = the byte offset just past the lines they hold, so a reconnecting
EventSource (which sends ``Last-Event-ID``) resumes exactly where it stopped: nothing lost,
nothing twice. Both streams poll (the file every 0.1 s, the state DB every 0.5 s): cheap, and
the same on Linux and macOS.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bassi_schedd.core.records import RunRow
from bassi_schedd.web.errors import ApiError
from bassi_schedd.web.events import RunWatcher
from bassi_schedd.web.reader import ACTIVE, Reader

FILE_POLL_S = 0.1
DB_POLL_S = 0.5
KEEPALIVE_S = 15.0
CHUNK_BYTES = 64 * 1024
TRIMMED = "[bassi-schedd web: output.log was cut to its max_output; showing what it kept]"


def encode(data: str, event: str | None = None, event_id: int | None = None) -> bytes:
    """One SSE event; every line of ``data`` becomes a ``data:`` line."""
    head = ""
    if event is not None:
        head += f"event: {event}\n"
    if event_id is not None:
        head += f"id: {event_id}\n"
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return (head + "".join(f"data: {line}\n" for line in lines) + "\n").encode()


def complete_lines(data: bytes, final: bool) -> bytes:
    """The part of ``data`` up to its last newline (all of it when the run has ended, or when
    a single line fills a whole chunk and must go out anyway)."""
    if final or len(data) >= CHUNK_BYTES:
        return data
    cut = data.rfind(b"\n")
    return data[: cut + 1] if cut >= 0 else b""


def _start_offset(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("offset") or "0"
    try:
        offset = int(raw)
    except ValueError:
        raise ApiError(400, f"Last-Event-ID must be a byte offset, got '{raw[:40]}'") from None
    if offset < 0:
        raise ApiError(400, f"Last-Event-ID must be a byte offset, got {offset}")
    return offset


async def _output_events(reader: Reader, row: RunRow, offset: int) -> AsyncIterator[bytes]:
    run_id = row.run_id
    last_db = anyio.current_time()
    last_sent = last_db
    done = row.status not in ACTIVE
    while True:
        data, _ = reader.output(row, offset, CHUNK_BYTES)
        chunk = complete_lines(data, final=done)
        if chunk:
            offset += len(chunk)
            text = chunk.decode("utf-8", errors="replace").removesuffix("\n")
            yield encode(text, event_id=offset)
            last_sent = anyio.current_time()
            continue  # more may be waiting: read again before sleeping
        if done:
            end = {"status": str(row.status), "exit_code": row.exit_code}
            yield encode(json.dumps(end), event="end", event_id=offset)
            return
        if reader.output_size(row) < offset:
            # max_output cut the file in place: what it kept starts again at byte 0
            offset = 0
            yield encode(TRIMMED, event_id=0)
            continue
        now = anyio.current_time()
        if now - last_db >= DB_POLL_S:
            last_db = now
            row = await anyio.to_thread.run_sync(reader.run, run_id)
            done = row.status not in ACTIVE  # then read once more: the last lines, if any
            continue
        if now - last_sent >= KEEPALIVE_S:
            last_sent = now
            yield b": keepalive\n\n"
        await anyio.sleep(FILE_POLL_S)


async def run_stream(request: Request) -> Response:
    """``GET /api/runs/RUN_ID/stream``: output.log as SSE, then ``event: end`` with the status."""
    reader: Reader = request.app.state.reader
    offset = _start_offset(request)
    row = await anyio.to_thread.run_sync(reader.run, request.path_params["run_id"])
    return StreamingResponse(_output_events(reader, row, offset), media_type="text/event-stream")


async def _run_events(reader: Reader) -> AsyncIterator[bytes]:
    watcher = RunWatcher()
    yield b"retry: 2000\n\n"
    last_sent = anyio.current_time()
    while True:
        events: list[tuple[str, dict[str, Any]]] = await anyio.to_thread.run_sync(
            _poll, reader, watcher
        )
        for name, payload in events:
            yield encode(json.dumps(payload), event=name)
            last_sent = anyio.current_time()
        if anyio.current_time() - last_sent >= KEEPALIVE_S:
            last_sent = anyio.current_time()
            yield b": keepalive\n\n"
        await anyio.sleep(DB_POLL_S)


def _poll(reader: Reader, watcher: RunWatcher) -> list[tuple[str, dict[str, Any]]]:
    with reader.db() as db:
        return [] if db is None else watcher.poll(db)


async def events(request: Request) -> Response:
    """``GET /api/events``: run.start and run.end as they happen."""
    reader: Reader = request.app.state.reader
    return StreamingResponse(_run_events(reader), media_type="text/event-stream")


ROUTES = [
    Route("/api/runs/{run_id}/stream", run_stream),
    Route("/api/events", events),
]
