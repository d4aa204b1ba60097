"""A local HTTP server that records healthcheck pings, for the notifier's unit and e2e tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class PingServer:
    """A local HTTP server recording request paths; ``hang`` / ``status`` control answers."""

    url: str
    paths: list[str] = field(default_factory=list)
    status: int = 200
    hang: bool = False
    release: threading.Event = field(default_factory=threading.Event)
    delay_start_s: float = 0.0


@contextmanager
def serve_pings() -> Iterator[PingServer]:
    """Run a PingServer on 127.0.0.1 (ephemeral port) in a thread for the with-block."""
    state = PingServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.paths.append(self.path)
            if state.hang:
                state.release.wait(60)
                return
            if self.path.endswith("/start") and state.delay_start_s:
                time.sleep(state.delay_start_s)
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/ping/abc-123"
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
