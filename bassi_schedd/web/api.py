"""The JSON API of SPEC 11. Reads go through ``Reader``; actions call the same ops functions
as the CLI (``ops/steer.py``), so the dashboard steers tasks exactly as the commands do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bassi_schedd.core.runstatus import RunStatus
from bassi_schedd.ops.steer import set_enabled
from bassi_schedd.ops.stop import request_stop
from bassi_schedd.ops.trigger import request_trigger
from bassi_schedd.web.errors import ApiError
from bassi_schedd.web.reader import Reader

MAX_LIMIT = 500
WARNING = "bassi-schedd: warning: "
MAX_OUTPUT_BYTES = 1 << 20


def _reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


def _now() -> datetime:
    return datetime.now(UTC)


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' must be a whole number, got '{raw[:40]}'") from None
    if not low <= value <= high:
        raise ApiError(400, f"'{name}' must be between {low} and {high}, got {value}")
    return value


def status(request: Request) -> Response:
    """``GET /api/status``: the ``status --json`` document."""
    return JSONResponse(_reader(request).status_json())


def tasks(request: Request) -> Response:
    """``GET /api/tasks``: the ``list --json`` rows."""
    return Response(_reader(request).tasks_json(_now()), media_type="application/json")


def task(request: Request) -> Response:
    """``GET /api/tasks/NAME``: one task with its masked definition and next times."""
    return JSONResponse(_reader(request).task(request.path_params["name"], _now()))


def task_runs(request: Request) -> Response:
    """``GET /api/tasks/NAME/runs?limit=N&before=RUN_ID``: a page of history, newest first."""
    reader = _reader(request)
    name = request.path_params["name"]
    reader.check_task(name)  # 404 for an unknown task rather than an empty page
    limit = _int_param(request, "limit", 20, 1, MAX_LIMIT)
    before = request.query_params.get("before")
    if before is not None:
        reader.run(before)  # 404: paging from a run that does not exist
    rows = reader.task_runs(name, limit, before)
    return JSONResponse({"runs": [r.public() for r in rows]})


def run(request: Request) -> Response:
    """``GET /api/runs/RUN_ID``: the history row plus ``result`` from result.json."""
    return JSONResponse(_reader(request).run_json(request.path_params["run_id"]))


def output(request: Request) -> Response:
    """``GET /api/runs/RUN_ID/output?offset=N``: bytes of output.log from N."""
    reader = _reader(request)
    row = reader.run(request.path_params["run_id"])
    offset = _int_param(request, "offset", 0, 0, 1 << 62)
    data, next_offset = reader.output(row, offset, MAX_OUTPUT_BYTES)
    return Response(
        data,
        media_type="text/plain; charset=utf-8",
        headers={"X-Next-Offset": str(next_offset), "X-Run-Status": str(row.status)},
    )


def trigger(request: Request) -> Response:
    """``POST /api/tasks/NAME/trigger``: 202 once the daemon took the request."""
    name = request.path_params["name"]
    warnings: list[str] = []
    reader = _reader(request)
    reader.check_task(name)  # 404 rather than a sentence about the file
    try:
        pid = request_trigger(
            reader.home, name, lambda text: warnings.append(text.removeprefix(WARNING))
        )
    finally:
        reader.invalidate()
    body: dict[str, Any] = {"requested": True, "task": name, "daemon_pid": pid}
    if warnings:
        body["warnings"] = warnings
    return JSONResponse(body, status_code=202)


def _enable(request: Request, enabled: bool) -> Response:
    reader = _reader(request)
    reader.check_task(request.path_params["name"])
    try:
        r = set_enabled(reader.home, request.path_params["name"], enabled)
    finally:
        reader.invalidate()
    return JSONResponse(
        {
            "task": r.name,
            "enabled": r.enabled,
            "changed": r.changed,
            "daemon_pid": r.daemon_pid,
            "running": list(r.running),
        }
    )


def pause(request: Request) -> Response:
    """``POST /api/tasks/NAME/pause``: ``enabled = false`` in the file, every other byte kept."""
    return _enable(request, False)


def resume(request: Request) -> Response:
    """``POST /api/tasks/NAME/resume``."""
    return _enable(request, True)


def stop(request: Request) -> Response:
    """``POST /api/runs/RUN_ID/stop``: 202 once the daemon is stopping the run (SIGTERM to its
    tree, SIGKILL after the grace; it ends ``cancelled``), as ``stop RUN_ID`` does."""
    reader = _reader(request)
    run_id = request.path_params["run_id"]
    row = reader.run(run_id)  # 404 first
    if row.status != RunStatus.RUNNING:
        raise ApiError(409, f"run {run_id} is not running (it is {row.status})")
    try:
        result = request_stop(reader.home, run_id, wait_end=False)
    finally:
        reader.invalidate()
    if not result.stopped_any:
        raise ApiError(409, f"run {run_id} is not running any more")
    body = {"stopping": sorted(result.ended), "daemon_pid": result.daemon_pid}
    return JSONResponse(body, status_code=202)


def healthz(request: Request) -> Response:
    """``GET /healthz``: the process answers (no token needed, no data)."""
    return JSONResponse({"ok": True})


ROUTES = [
    Route("/healthz", healthz),
    Route("/api/status", status),
    Route("/api/tasks", tasks),
    Route("/api/tasks/{name}", task),
    Route("/api/tasks/{name}/runs", task_runs),
    Route("/api/tasks/{name}/trigger", trigger, methods=["POST"]),
    Route("/api/tasks/{name}/pause", pause, methods=["POST"]),
    Route("/api/tasks/{name}/resume", resume, methods=["POST"]),
    Route("/api/runs/{run_id}", run),
    Route("/api/runs/{run_id}/output", output),
    Route("/api/runs/{run_id}/stop", stop, methods=["POST"]),
]
