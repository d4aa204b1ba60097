"""Starting the dashboard: refuse a non-loopback host, bind the socket ourselves (so a port in
use is one sentence and exit 2, not a uvicorn traceback), print the login URL, serve."""

from __future__ import annotations

import errno
import ipaddress
import socket
import sys
import webbrowser
from dataclasses import dataclass
from types import FrameType
from typing import Any

from bassi_schedd.config.paths import Home
from bassi_schedd.core.errors import UserError
from bassi_schedd.web.security import GuardSettings, load_or_create_token

GRACEFUL_S = 2  # open event streams would otherwise hold a shutdown forever


class ServeError(UserError):
    """The dashboard cannot start as asked (exit 2, like a usage error)."""

    exit_code = 2


@dataclass(frozen=True)
class WebOptions:
    """``web [--host H] [--port P] [--open] [--allow-remote]``."""

    host: str = "127.0.0.1"
    port: int = 8765
    open_browser: bool = False
    allow_remote: bool = False


def is_loopback(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ServeError (one sentence) when it cannot be had."""
    bare = host.strip("[]")
    try:
        infos = socket.getaddrinfo(bare, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ServeError(f"cannot listen on '{host}': {e.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise ServeError(
                f"port {port} on {host} is already in use (another dashboard?); "
                "choose another with --port"
            ) from None
        raise ServeError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    return sock


def url_host(host: str) -> str:
    """The host as it goes in a URL (IPv6 in brackets)."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            # uvicorn re-raises the signal once it has shut down, so the process would die of
            # it; a stop asked for (Ctrl-C, SIGTERM from systemd or launchd) is a clean exit 0.
            self._captured_signals.clear()

    return Server


def serve(home: Home, opts: WebOptions) -> int:
    """Run the dashboard until SIGINT/SIGTERM; 0 on a clean stop."""
    if not opts.allow_remote and not is_loopback(opts.host.strip("[]")):
        raise ServeError(
            f"refusing to listen on '{opts.host}', which is not a loopback address: anyone who "
            "can reach it could steer your tasks; add --allow-remote if you mean it"
        )
    if not 0 <= opts.port <= 65535:
        raise ServeError(f"--port must be between 0 and 65535, got {opts.port}")
    token = load_or_create_token(home)
    sock = bind(opts.host, opts.port)
    port = sock.getsockname()[1]
    import uvicorn

    from bassi_schedd.web.app import build_app

    app = build_app(home, GuardSettings(token=token, port=port, allow_remote=opts.allow_remote))
    url = f"http://{url_host(opts.host)}:{port}/"
    print(f"bassi-schedd web: open {url}?token={token} (Ctrl-C stops)", flush=True)
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_S,
        lifespan="off",
    )
    server = _server_class()(config)
    if opts.open_browser:
        webbrowser.open(f"{url}?token={token}")
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    sys.stdout.flush()
    return 0
