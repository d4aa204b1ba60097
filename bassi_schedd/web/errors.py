"""Every error the dashboard answers is JSON ``{"error": "one sentence"}`` (SPEC 11)."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bassi_schedd.core.errors import UserError, printable

# stdlib logging to the web process's stderr (beside uvicorn's), not an event of schedd.log
logger = logging.getLogger("bassi_schedd.web")


class ApiError(Exception):
    """An answer other than success: its status and one sentence."""

    def __init__(self, status: int, sentence: str):
        super().__init__(sentence)
        self.status = status
        self.sentence = sentence


def status_of(exc: UserError) -> int:
    """The HTTP status for a user-facing error from the ops layer."""
    from bassi_schedd.web.reader import NotFoundError

    if isinstance(exc, NotFoundError):
        return 404
    # Any other sentence is about the state of things, not the request: no daemon, a task file
    # that does not load or cannot be edited, a state DB that cannot be read.
    return 409


def error_response(status: int, sentence: str) -> Response:
    """The JSON error body."""
    return JSONResponse({"error": printable(sentence)}, status_code=status)


async def on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.sentence)


async def on_user_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UserError)
    return error_response(status_of(exc), str(exc))


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, f"there is no page {request.url.path}")
    if exc.status_code == 405:
        return error_response(405, f"{request.method} is not allowed on {request.url.path}")
    return error_response(exc.status_code, str(exc.detail))


async def on_crash(request: Request, exc: Exception) -> Response:
    logger.exception("error answering %s %s", request.method, request.url.path)
    return error_response(500, f"the dashboard failed on this request ({type(exc).__name__})")


HANDLERS = {
    ApiError: on_api_error,
    UserError: on_user_error,
    HTTPException: on_http_error,
    Exception: on_crash,
}
