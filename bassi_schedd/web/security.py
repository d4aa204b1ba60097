"""Every request passes here first (SPEC 11): Host allowlist, token, Origin on POST, headers.

An ASGI middleware rather than a Starlette one, so that it also guards streaming responses and
adds its headers to every answer, the errors it makes itself included.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from bassi_schedd.config.paths import FILE_MODE, Home
from bassi_schedd.core.errors import UserError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TOKEN_FILE = "web.token"  # noqa: S105 (a file name, not a secret)
COOKIE = "bassi_session"
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
OPEN_PATHS = frozenset({"/healthz"})


def token_path(home: Home) -> os.PathLike[str]:
    """Where the dashboard's token lives: ``BASSI_HOME/web.token``."""
    return home.root / TOKEN_FILE


def load_or_create_token(home: Home) -> str:
    """The token in ``BASSI_HOME/web.token``, made (0600, 32 random bytes) on first start."""
    path = home.root / TOKEN_FILE
    home.ensure(home.root)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return _read_token(path)
    except OSError as e:
        raise UserError(f"cannot create the dashboard token {path}: {e.strerror or e}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(token + "\n")
    return token


def _read_token(path: os.PathLike[str]) -> str:
    try:
        st = os.stat(path)
        if st.st_mode & 0o077:
            raise UserError(
                f"the dashboard token {path} is readable by others (mode "
                f"{st.st_mode & 0o777:o}); run 'chmod 600 {path}' or delete it to make a new one"
            )
        with open(path, encoding="ascii") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read the dashboard token {path}: {e}") from None
    if len(token) < 16:
        raise UserError(f"the dashboard token {path} is too short; delete it to make a new one")
    return token


@dataclass(frozen=True)
class GuardSettings:
    """What the guard checks against: the token, the port in Host, whether any Host goes."""

    token: str
    port: int
    allow_remote: bool = False

    def allowed_hosts(self) -> frozenset[str]:
        """The Host header values a loopback dashboard answers (DNS rebinding defence)."""
        return frozenset(f"{h}:{self.port}" for h in ("127.0.0.1", "localhost", "[::1]"))


def _header(scope: Scope, name: bytes) -> str | None:
    for k, v in scope.get("headers", []):
        if k == name:
            return str(v.decode("latin-1"))
    return None


class Guard:
    """ASGI middleware applying the rules of SPEC 11 before the app sees a request."""

    def __init__(self, app: ASGIApp, settings: GuardSettings):
        self.app = app
        self.settings = settings
        self._hosts = settings.allowed_hosts()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        refusal = self.check(scope)
        if refusal is not None:
            status, body, extra = refusal
            await _respond(send_with_headers, status, body, extra)
            return
        await self.app(scope, receive, send_with_headers)

    def check(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """None to let the request through, else (status, body, extra headers) to answer."""
        host = _header(scope, b"host") or ""
        if not self.settings.allow_remote and host.lower() not in self._hosts:
            return _error(403, "this dashboard answers only to 127.0.0.1, localhost or [::1]")
        method, path = scope["method"], scope["path"]
        if method not in ("GET", "HEAD") and not self._same_origin(scope, host):
            return _error(403, "a request from another site may not change anything here")
        if path in OPEN_PATHS:
            return None
        if path == "/" and method == "GET":
            login = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
            if login:
                if not hmac.compare_digest(login[0].encode(), self.settings.token.encode()):
                    return _error(401, "the token in this link is not the dashboard's token")
                return 303, b"", [(b"location", b"/"), (b"set-cookie", self._cookie())]
        if not self._authenticated(scope):
            return _error(
                401,
                "log in with the link 'bassi-schedd web' printed, or send "
                f"'Authorization: Bearer TOKEN' (the token is in BASSI_HOME/{TOKEN_FILE})",
            )
        return None

    def _same_origin(self, scope: Scope, host: str) -> bool:
        origin = _header(scope, b"origin")
        return origin is None or origin == f"http://{host}"

    def _authenticated(self, scope: Scope) -> bool:
        expected = self.settings.token.encode()
        auth = _header(scope, b"authorization") or ""
        if auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].encode(), expected):
            return True
        cookie_header = _header(scope, b"cookie")
        if not cookie_header:
            return False
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(cookie_header)
        except Exception:  # a malformed Cookie header is simply no cookie
            return False
        morsel = jar.get(COOKIE)
        return morsel is not None and hmac.compare_digest(morsel.value.encode(), expected)

    def _cookie(self) -> bytes:
        return f"{COOKIE}={self.settings.token}; HttpOnly; SameSite=Strict; Path=/".encode()


def _error(status: int, sentence: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps({"error": sentence}).encode()
    return status, body, [(b"content-type", b"application/json")]


async def _respond(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
